/* SPDX-License-Identifier: MIT */
/*
 * index.c - the file log's in-memory index: stream id -> positions of its
 * records (so the current version is their count), plus every record's
 * position in log order. It is rebuilt by the recovery scan at open and kept
 * by the writer; a persisted index is a follow-up (issue #3).
 *
 * Open addressing with linear probing over a power-of-two table kept at most
 * half full; streams are never removed. Not thread-safe: the log's mutex
 * guards it.
 */
#include <string.h>

#include "eventstore_int.h"

static uint64_t hash_name(const char *s, size_t n)
{
    /* FNV-1a, 64 bits: streams are not attacker-chosen in bulk here, and the
     * table stays half empty. */
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

void cairn__es_index_init(struct cairn__es_index *idx)
{
    memset(idx, 0, sizeof *idx);
}

void cairn__es_index_release(struct cairn__es_index *idx)
{
    for (size_t i = 0; i < idx->cap; i++) {
        struct cairn__es_stream *s = idx->slots[i];
        if (s) {
            cairn__free(s->name);
            cairn__free(s->pos);
            cairn__free(s);
        }
    }
    cairn__free(idx->slots);
    cairn__free(idx->all);
    memset(idx, 0, sizeof *idx);
}

struct cairn__es_stream *
cairn__es_index_find(const struct cairn__es_index *idx, const char *name, size_t len)
{
    if (!idx->cap)
        return NULL;
    uint64_t h = hash_name(name, len);
    for (size_t i = (size_t)h & (idx->cap - 1);; i = (i + 1) & (idx->cap - 1)) {
        struct cairn__es_stream *s = idx->slots[i];
        if (!s)
            return NULL;
        if (s->hash == h && s->name_len == len && memcmp(s->name, name, len) == 0)
            return s;
    }
}

static cairn_rc_t grow_table(struct cairn__es_index *idx)
{
    size_t ncap = idx->cap ? idx->cap * 2 : 64;
    struct cairn__es_stream **ns = cairn__calloc(ncap, sizeof *ns);
    if (!ns)
        return CAIRN_E_NOMEM;
    for (size_t i = 0; i < idx->cap; i++) {
        struct cairn__es_stream *s = idx->slots[i];
        if (!s)
            continue;
        size_t j = (size_t)s->hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    cairn__free(idx->slots);
    idx->slots = ns;
    idx->cap = ncap;
    return CAIRN_OK;
}

cairn_rc_t cairn__es_index_get(struct cairn__es_index *idx,
                               const char *name,
                               size_t len,
                               struct cairn__es_stream **out)
{
    struct cairn__es_stream *s = cairn__es_index_find(idx, name, len);
    if (s) {
        *out = s;
        return CAIRN_OK;
    }
    if ((idx->count + 1) * 2 > idx->cap && grow_table(idx) != CAIRN_OK)
        return CAIRN_E_NOMEM;
    s = cairn__calloc(1, sizeof *s);
    if (!s)
        return CAIRN_E_NOMEM;
    s->name = cairn__strndup(name, len);
    if (!s->name) {
        cairn__free(s);
        return CAIRN_E_NOMEM;
    }
    s->name_len = len;
    s->hash = hash_name(name, len);
    size_t j = (size_t)s->hash & (idx->cap - 1);
    while (idx->slots[j])
        j = (j + 1) & (idx->cap - 1);
    idx->slots[j] = s;
    idx->count++;
    *out = s;
    return CAIRN_OK;
}

static cairn_rc_t reserve(uint64_t **v, size_t *cap, size_t n, size_t extra)
{
    if (extra > SIZE_MAX / sizeof **v - n)
        return CAIRN_E_NOMEM;
    if (n + extra <= *cap)
        return CAIRN_OK;
    size_t ncap = *cap ? *cap : 4;
    while (ncap < n + extra)
        ncap = ncap > SIZE_MAX / (2 * sizeof **v) ? n + extra : ncap * 2;
    uint64_t *nv = cairn__realloc(*v, ncap * sizeof *nv);
    if (!nv)
        return CAIRN_E_NOMEM;
    *v = nv;
    *cap = ncap;
    return CAIRN_OK;
}

cairn_rc_t
cairn__es_index_reserve(struct cairn__es_index *idx, struct cairn__es_stream *s, size_t extra)
{
    if (reserve(&s->pos, &s->cap, s->n, extra) != CAIRN_OK)
        return CAIRN_E_NOMEM;
    return reserve(&idx->all, &idx->all_cap, idx->all_n, extra);
}

void cairn__es_index_push(struct cairn__es_index *idx, struct cairn__es_stream *s, uint64_t pos)
{
    s->pos[s->n++] = pos;
    idx->all[idx->all_n++] = pos;
}
