/* SPDX-License-Identifier: MIT */
/*
 * state_cache.c - the in-memory cache of loaded aggregates (stream -> state,
 * version, recent command ids) for the streams this process writes, and the
 * window of recent command ids of one stream.
 *
 * The cache is a bounded LRU: a chained hash table on (aggregate, stream)
 * plus a doubly linked recency list, under one mutex held only for pointer
 * moves (never while a callback or the log runs). cairn_handle takes an
 * entry out (detaching it) while it works on the stream and puts it back
 * after a successful append, so an entry in use can never be evicted or
 * seen half-updated by another thread, and any failure simply does not put
 * it back: that is how the cache is dropped on a conflict, a fence or any
 * append error. Evicted entries are freed after the mutex is released,
 * since free_state is the service's code.
 *
 * The recent-command window is a ring of the last N (command id, last
 * event's version and position), grown by doubling as commands arrive (a
 * cached stream with few commands costs little), searched linearly with a
 * 64-bit hash compared first: N is small (1,000 by default) and the scan is
 * a few microseconds at worst, which is less than one fdatasync.
 */
#include <string.h>

#include "sdk_int.h"

uint64_t cairn__hash64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- recent command ids ---------------------------------------------------- */

void cairn__recent_init(struct cairn__recent *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap;
}

void cairn__recent_release(struct cairn__recent *r)
{
    for (size_t i = 0; i < r->n; i++)
        cairn__free(r->items[i].id);
    cairn__free(r->items);
    memset(r, 0, sizeof *r);
}

const struct cairn__cmdrec *cairn__recent_find(const struct cairn__recent *r, const char *id)
{
    uint64_t h = cairn__hash64(id, strlen(id));
    for (size_t i = 0; i < r->n; i++) {
        const struct cairn__cmdrec *c = &r->items[i];
        if (c->hash == h && strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

cairn_rc_t cairn__recent_put(
    struct cairn__recent *r, const char *id, uint64_t version, int32_t partition, uint64_t pos)
{
    struct cairn__cmdrec *c;
    uint64_t h = cairn__hash64(id, strlen(id));
    if (r->cap == 0)
        return CAIRN_OK;
    /* The events of one command are consecutive: update the newest in place. */
    if (r->n) {
        c = &r->items[(r->head + r->n - 1) % r->n];
        if (c->hash == h && strcmp(c->id, id) == 0) {
            c->version = version;
            c->partition = partition;
            c->position = pos;
            return CAIRN_OK;
        }
    }
    char *copy = cairn__strdup(id);
    if (!copy)
        return CAIRN_E_NOMEM;
    if (r->n == r->alloc && r->alloc < r->cap) {
        size_t na = r->alloc ? r->alloc * 2 : 4;
        if (na > r->cap)
            na = r->cap;
        struct cairn__cmdrec *p = cairn__realloc(r->items, na * sizeof *p);
        if (!p) {
            cairn__free(copy);
            return CAIRN_E_NOMEM;
        }
        r->items = p;
        r->alloc = na;
    }
    if (r->n < r->cap) {
        c = &r->items[r->n++];
        r->head = r->n % r->cap;
    } else {
        c = &r->items[r->head];
        cairn__free(c->id);
        r->head = (r->head + 1) % r->cap;
    }
    c->id = copy;
    c->hash = h;
    c->version = version;
    c->partition = partition;
    c->position = pos;
    return CAIRN_OK;
}

/* ---- entries ---------------------------------------------------------------- */

void cairn__entry_free(struct cairn__entry *e)
{
    if (!e)
        return;
    if (e->state)
        e->agg->def.free_state(e->agg->def.opaque, e->state);
    cairn__recent_release(&e->recent);
    cairn__free(e->stream);
    cairn__free(e);
}

/* ---- the cache ------------------------------------------------------------------ */

cairn_rc_t cairn__cache_init(struct cairn__cache *c, size_t capacity)
{
    memset(c, 0, sizeof *c);
    c->capacity = capacity;
    c->nslots = 64;
    while (c->nslots < capacity && c->nslots < ((size_t)1 << 24))
        c->nslots <<= 1;
    c->slots = cairn__calloc(c->nslots, sizeof *c->slots);
    if (!c->slots)
        return CAIRN_E_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    return CAIRN_OK;
}

void cairn__cache_release(struct cairn__cache *c)
{
    if (!c->slots)
        return;
    struct cairn__entry *e = c->lru_head;
    while (e) {
        struct cairn__entry *next = e->lru_next;
        cairn__entry_free(e);
        e = next;
    }
    cairn__free(c->slots);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}

static void lru_unlink(struct cairn__cache *c, struct cairn__entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

/* Unlinks @p e from its hash chain and the LRU list. Locks: c->mu held. */
static void unlink_entry(struct cairn__cache *c, struct cairn__entry *e)
{
    struct cairn__entry **pp = &c->slots[e->hash & (c->nslots - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    e->hnext = NULL;
    lru_unlink(c, e);
    c->n--;
}

struct cairn__entry *
cairn__cache_take(struct cairn__cache *c, const struct cairn_aggregate *agg, const char *stream)
{
    uint64_t h = cairn__hash64(stream, strlen(stream));
    struct cairn__entry *e;
    pthread_mutex_lock(&c->mu);
    for (e = c->slots[h & (c->nslots - 1)]; e; e = e->hnext)
        if (e->hash == h && e->agg == agg && strcmp(e->stream, stream) == 0)
            break;
    if (e)
        unlink_entry(c, e);
    pthread_mutex_unlock(&c->mu);
    return e;
}

void cairn__cache_put(struct cairn__cache *c, struct cairn__entry *e)
{
    struct cairn__entry *evicted = NULL;
    struct cairn__entry **slot = &c->slots[e->hash & (c->nslots - 1)];
    pthread_mutex_lock(&c->mu);
    e->hnext = *slot;
    *slot = e;
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
    c->n++;
    /* Evict the least recently used beyond capacity; free them unlocked. */
    while (c->n > c->capacity && c->lru_tail && c->lru_tail != e) {
        struct cairn__entry *v = c->lru_tail;
        unlink_entry(c, v);
        v->lru_next = evicted;
        evicted = v;
    }
    pthread_mutex_unlock(&c->mu);
    while (evicted) {
        struct cairn__entry *next = evicted->lru_next;
        cairn__entry_free(evicted);
        evicted = next;
    }
}
