/* SPDX-License-Identifier: MIT */
/*
 * buf.c - growable byte buffers with a cap (curl's dynbuf), owned string
 * lists and the hex digit every decoder of hex text uses. Every input-driven buffer in Cairn has a
 * cap so that a peer cannot make the process grow without bound.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"

void cairn_buf_init(cairn_buf_t *b, size_t cap_limit)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap_limit = cap_limit;
}

void cairn_buf_release(cairn_buf_t *b)
{
    cairn__free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void cairn_buf_reset(cairn_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static cairn_rc_t buf_reserve(cairn_buf_t *b, size_t extra)
{
    if (extra > b->cap_limit - b->len || b->len > b->cap_limit)
        return CAIRN_E_INVALID_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return CAIRN_OK;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need)
        n = n > ((size_t)-1) / 2 ? need : n * 2;
    char *p = cairn__realloc(b->data, n);
    if (!p)
        return CAIRN_E_NOMEM;
    b->data = p;
    b->alloc = n;
    return CAIRN_OK;
}

cairn_rc_t cairn_buf_append(cairn_buf_t *b, const void *p, size_t n)
{
    cairn_rc_t rc = buf_reserve(b, n);
    if (rc != CAIRN_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CAIRN_OK;
}

cairn_rc_t cairn_buf_appends(cairn_buf_t *b, const char *s)
{
    return cairn_buf_append(b, s, strlen(s));
}

cairn_rc_t cairn_buf_printf(cairn_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CAIRN_E_INTERNAL;
    cairn_rc_t rc = buf_reserve(b, (size_t)n);
    if (rc != CAIRN_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CAIRN_OK;
}

char *cairn_buf_detach(cairn_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (!p)
        p = cairn__strdup("");
    if (len)
        *len = p ? b->len : 0;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

void cairn_strlist_init(cairn_strlist_t *l)
{
    l->items = NULL;
    l->n = l->alloc = 0;
}

void cairn_strlist_release(cairn_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        cairn__free(l->items[i]);
    cairn__free(l->items);
    cairn_strlist_init(l);
}

cairn_rc_t cairn_strlist_push_take(cairn_strlist_t *l, char *s)
{
    if (!s)
        return CAIRN_E_NOMEM;
    if (l->n == l->alloc) {
        size_t n = l->alloc ? l->alloc * 2 : 8;
        char **p = cairn__realloc(l->items, n * sizeof *p);
        if (!p) {
            cairn__free(s);
            return CAIRN_E_NOMEM;
        }
        l->items = p;
        l->alloc = n;
    }
    l->items[l->n++] = s;
    return CAIRN_OK;
}

cairn_rc_t cairn_strlist_push(cairn_strlist_t *l, const char *s)
{
    return cairn_strlist_push_take(l, cairn__strdup(s));
}

cairn_rc_t cairn_strlist_pushf(cairn_strlist_t *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CAIRN_E_INTERNAL;
    char *s = cairn__malloc((size_t)n + 1);
    if (!s)
        return CAIRN_E_NOMEM;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return cairn_strlist_push_take(l, s);
}

int cairn__hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
