/* SPDX-License-Identifier: MIT */
/*
 * memory.c - every allocation goes through these hooks so that tests can fail
 * the n-th allocation (jansson's json_set_alloc_funcs, curl's torture mode).
 * The hooks are set once, before any other call: they are not a mutable
 * global in the sense of state that changes while the library runs.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void *(*alloc_fn)(size_t) = malloc;
static void *(*realloc_fn)(void *, size_t) = realloc;
static void (*free_fn)(void *) = free;

void cairn_set_alloc_funcs(void *(*m)(size_t), void *(*r)(void *, size_t), void (*f)(void *))
{
    alloc_fn = m ? m : malloc;
    realloc_fn = r ? r : realloc;
    free_fn = f ? f : free;
}

void *cairn__malloc(size_t n)
{
    return alloc_fn(n ? n : 1);
}

void *cairn__calloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        return NULL;
    void *p = cairn__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *cairn__realloc(void *p, size_t n)
{
    return realloc_fn(p, n ? n : 1);
}

void cairn__free(void *p)
{
    if (p)
        free_fn(p);
}

void cairn_free(void *p)
{
    cairn__free(p);
}

char *cairn__strndup(const char *s, size_t n)
{
    char *d = cairn__malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cairn__strdup(const char *s)
{
    return s ? cairn__strndup(s, strlen(s)) : NULL;
}
