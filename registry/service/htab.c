/* SPDX-License-Identifier: MIT */
/*
 * htab.c - the intrusive chained hash table that indexes the registry's
 * state (subjects by name, schemas by id and by text). Nodes live inside
 * the objects they index, so an insert never allocates except to grow the
 * bucket array, and growing is best effort: a full table only gets longer
 * chains (only the very first bucket array can fail an insert). This keeps the state's apply path
 * free of failure points that would leave it half-changed.
 */
#include <string.h>

#include "service_int.h"

void cairn__htab_init(struct cairn__htab *t)
{
    t->buckets = NULL;
    t->nbuckets = 0;
    t->n = 0;
}

void cairn__htab_release(struct cairn__htab *t)
{
    cairn__free(t->buckets);
    cairn__htab_init(t);
}

static void grow(struct cairn__htab *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
    struct cairn__hnode **b = cairn__calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct cairn__hnode *n = t->buckets[i];
        while (n) {
            struct cairn__hnode *next = n->next;
            size_t j = (size_t)(n->hash & (nb - 1));
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    cairn__free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

cairn_rc_t cairn__htab_insert(struct cairn__htab *t, struct cairn__hnode *node, uint64_t hash)
{
    if (t->n >= t->nbuckets)
        grow(t);
    if (!t->nbuckets)
        return CAIRN_E_NOMEM;
    node->hash = hash;
    size_t j = (size_t)(hash & (t->nbuckets - 1));
    node->next = t->buckets[j];
    t->buckets[j] = node;
    t->n++;
    return CAIRN_OK;
}

void cairn__htab_remove(struct cairn__htab *t, struct cairn__hnode *node)
{
    if (!t->nbuckets)
        return;
    struct cairn__hnode **pp = &t->buckets[node->hash & (t->nbuckets - 1)];
    while (*pp) {
        if (*pp == node) {
            *pp = node->next;
            node->next = NULL;
            t->n--;
            return;
        }
        pp = &(*pp)->next;
    }
}

struct cairn__hnode *cairn__htab_first(const struct cairn__htab *t, uint64_t hash)
{
    if (!t->nbuckets)
        return NULL;
    struct cairn__hnode *n = t->buckets[hash & (t->nbuckets - 1)];
    while (n && n->hash != hash)
        n = n->next;
    return n;
}

struct cairn__hnode *cairn__htab_next(const struct cairn__hnode *node, uint64_t hash)
{
    struct cairn__hnode *n = node->next;
    while (n && n->hash != hash)
        n = n->next;
    return n;
}

struct cairn__hnode *
cairn__htab_iter(const struct cairn__htab *t, size_t *bucket, struct cairn__hnode *node)
{
    if (node && node->next)
        return node->next;
    if (node)
        (*bucket)++;
    while (*bucket < t->nbuckets) {
        if (t->buckets[*bucket])
            return t->buckets[*bucket];
        (*bucket)++;
    }
    return NULL;
}

/* FNV-1a, 64 bits: keys are short names and schema texts; no attacker can
 * choose them faster than the registration rate, and chains stay short. */
uint64_t cairn__hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t cairn__hash_int(uint64_t h, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    return cairn__hash_bytes(h, b, sizeof b);
}
