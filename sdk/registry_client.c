/* SPDX-License-Identifier: MIT */
/*
 * registry_client.c - the SDK's registry client: Confluent's REST calls
 * (over http_client.c) and the in-memory schema cache in front of them.
 *
 * The cache has two maps, both bounded by max_cached_schemas and both
 * evicting their oldest entry first:
 * - by id: id -> registered schema. A schema id never changes its text, so
 *   an entry is valid for the process's life; this map is what keeps a
 *   service decoding while the registry is down.
 * - by text: (subject, type, text) -> registered schema (+ the version when
 *   a look-up told it), answering register and lookup.
 * A registered schema is immutable and reference-counted: each map entry
 * holds one reference and each caller that received one holds another, so
 * evicting an entry never frees a schema somebody still uses.
 *
 * Locking: one mutex guards both maps, held only for map operations. No
 * request and no parse ever runs under it: two threads that miss the same id
 * both fetch and parse it, and the first to insert wins (the other's copy is
 * dropped and the winner handed out), which costs one redundant request in a
 * rare race and never blocks every thread behind one slow registry.
 *
 * Schemas are parsed once, when they enter the cache, through the format
 * interface (registry/format.h): AVRO into Cairn's own model, which serde.c
 * and the aggregates read through cairn__registered_schema_avro(). Types
 * without a format here (PROTOBUF, JSON today) are kept as text. References
 * ("references": [{name, subject, version}]) are fetched version by version
 * (each through the by-id map) and handed to the parser.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "registry_client_int.h"

#define DEFAULT_MAX_CACHED 100000u
#define MAX_REF_DEPTH      16
#define MAX_REFS           1000

struct cairn_registered_schema {
    atomic_int refs;
    int32_t id;
    char *type;
    char *text;
    char *name;             /* AVRO root named type's full name, or NULL */
    cairn_schema_t *parsed; /* NULL for a type without a format here */
};

struct entry {
    struct entry *hnext;         /* bucket chain */
    struct entry *older, *newer; /* insertion order, for eviction */
    uint64_t hash;
    int32_t id;      /* by-id key */
    int32_t version; /* by-text: the subject version when known, else 0 */
    char *key;       /* by-text key "subject\0type\0text", NULL in the by-id map */
    size_t keylen;
    cairn_registered_schema_t *schema; /* one reference */
};

struct cmap {
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t n, max;
    struct entry *oldest, *newest;
};

struct cairn_registry_client {
    cairn__http_t *http;
    pthread_mutex_t lock; /* guards by_id and by_text */
    struct cmap by_id, by_text;
};

/* ---- registered schemas ------------------------------------------------ */

int32_t cairn_registered_schema_id(const cairn_registered_schema_t *s)
{
    return s->id;
}

const char *cairn_registered_schema_type(const cairn_registered_schema_t *s)
{
    return s->type;
}

const char *cairn_registered_schema_text(const cairn_registered_schema_t *s)
{
    return s->text;
}

const char *cairn_registered_schema_name(const cairn_registered_schema_t *s)
{
    return s->name;
}

cairn_registered_schema_t *cairn_registered_schema_retain(cairn_registered_schema_t *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

cairn_registered_schema_t *cairn__registered_schema_ref(const cairn_registered_schema_t *s)
{
    /* The schema is immutable but for its atomic count: dropping const is sound. */
    cairn_registered_schema_t *m = (cairn_registered_schema_t *)(uintptr_t)s;
    return cairn_registered_schema_retain(m);
}

void cairn_registered_schema_release(cairn_registered_schema_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    cairn_schema_unref(s->parsed);
    cairn__free(s->type);
    cairn__free(s->text);
    cairn__free(s->name);
    cairn__free(s);
}

const cairn_avro_node_t *cairn__registered_schema_avro(const cairn_registered_schema_t *s)
{
    if (!s || !s->parsed || strcmp(s->type, "AVRO") != 0)
        return NULL;
    return cairn__avro_model_root(s->parsed->model);
}

const cairn_schema_t *cairn__registered_schema_parsed(const cairn_registered_schema_t *s)
{
    return s ? s->parsed : NULL;
}

/* ---- the maps (callers hold c->lock) ----------------------------------- */

static uint64_t hash_id(int32_t id)
{
    return ((uint64_t)(uint32_t)id + 1) * 0x9E3779B97F4A7C15ull;
}

uint64_t cairn__sdk_fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void entry_free(struct entry *e)
{
    cairn_registered_schema_release(e->schema);
    cairn__free(e->key);
    cairn__free(e);
}

static struct entry *
cmap_find(const struct cmap *m, uint64_t hash, int32_t id, const char *key, size_t keylen)
{
    if (!m->nbuckets)
        return NULL;
    for (struct entry *e = m->buckets[hash & (m->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash != hash)
            continue;
        if (key ? (e->keylen == keylen && memcmp(e->key, key, keylen) == 0) : e->id == id)
            return e;
    }
    return NULL;
}

static void cmap_unlink(struct cmap *m, struct entry *e)
{
    struct entry **pp = &m->buckets[e->hash & (m->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    m->n--;
}

/* Doubles the bucket array; on OOM keeps the old one (longer chains, still correct). */
static void cmap_grow(struct cmap *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 64;
    struct entry **b = cairn__calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry *e = m->buckets[i];
        while (e) {
            struct entry *next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    cairn__free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

/* Inserts @p e (not present), evicting the oldest entries beyond the bound. */
static cairn_rc_t cmap_put(struct cmap *m, struct entry *e)
{
    if (m->n >= m->nbuckets)
        cmap_grow(m);
    if (!m->nbuckets)
        return CAIRN_E_NOMEM;
    while (m->n >= m->max && m->oldest) {
        struct entry *old = m->oldest;
        cmap_unlink(m, old);
        entry_free(old);
    }
    size_t i = e->hash & (m->nbuckets - 1);
    e->hnext = m->buckets[i];
    m->buckets[i] = e;
    e->newer = NULL;
    e->older = m->newest;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
    m->n++;
    return CAIRN_OK;
}

static void cmap_release(struct cmap *m)
{
    struct entry *e = m->oldest;
    while (e) {
        struct entry *next = e->newer;
        entry_free(e);
        e = next;
    }
    cairn__free(m->buckets);
    memset(m, 0, sizeof *m);
}

/* A new reference on the cached schema @p id, or NULL. Locks: c->lock. */
static cairn_registered_schema_t *cached_id(cairn_registry_client_t *c, int32_t id)
{
    cairn_registered_schema_t *s = NULL;
    pthread_mutex_lock(&c->lock);
    struct entry *e = cmap_find(&c->by_id, hash_id(id), id, NULL, 0);
    if (e)
        s = cairn_registered_schema_retain(e->schema);
    pthread_mutex_unlock(&c->lock);
    return s;
}

/*
 * Caches @p s by its id unless another thread did first; returns the
 * schema to use (a new reference: @p s itself, or the earlier one, in which
 * case @p s is released). Out of memory just leaves @p s uncached.
 * Locks: c->lock.
 */
static cairn_registered_schema_t *cache_id(cairn_registry_client_t *c, cairn_registered_schema_t *s)
{
    cairn_registered_schema_t *use = s;
    uint64_t h = hash_id(s->id);
    struct entry *fresh = cairn__calloc(1, sizeof *fresh);
    pthread_mutex_lock(&c->lock);
    struct entry *e = cmap_find(&c->by_id, h, s->id, NULL, 0);
    if (e) {
        use = cairn_registered_schema_retain(e->schema);
    } else if (fresh) {
        fresh->hash = h;
        fresh->id = s->id;
        fresh->schema = cairn_registered_schema_retain(s);
        if (cmap_put(&c->by_id, fresh) == CAIRN_OK)
            fresh = NULL;
        else
            cairn_registered_schema_release(s);
    }
    pthread_mutex_unlock(&c->lock);
    if (fresh)
        cairn__free(fresh);
    if (use != s)
        cairn_registered_schema_release(s);
    return use;
}

/* ---- by-text keys ------------------------------------------------------ */

struct tkey {
    char *key;
    size_t len;
    uint64_t hash;
};

static cairn_rc_t tkey_make(struct tkey *k, const char *subject, const char *type, const char *text)
{
    size_t ls = strlen(subject), lt = strlen(type), lx = strlen(text);
    k->len = ls + lt + lx + 2;
    if (!(k->key = cairn__malloc(k->len + 1)))
        return CAIRN_E_NOMEM;
    memcpy(k->key, subject, ls + 1);
    memcpy(k->key + ls + 1, type, lt + 1);
    memcpy(k->key + ls + lt + 2, text, lx + 1);
    k->hash = cairn__sdk_fnv1a(k->key, k->len);
    return CAIRN_OK;
}

/* A new reference from the by-text map, or NULL. Locks: c->lock. */
static cairn_registered_schema_t *
cached_text(cairn_registry_client_t *c, const struct tkey *k, bool need_version, int32_t *version)
{
    cairn_registered_schema_t *s = NULL;
    pthread_mutex_lock(&c->lock);
    struct entry *e = cmap_find(&c->by_text, k->hash, 0, k->key, k->len);
    if (e && (!need_version || e->version > 0)) {
        s = cairn_registered_schema_retain(e->schema);
        if (version)
            *version = e->version;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Caches @p s under key @p k (taking the key's memory). Locks: c->lock. */
static void cache_text(cairn_registry_client_t *c,
                       struct tkey *k,
                       cairn_registered_schema_t *s,
                       int32_t version)
{
    struct entry *fresh = cairn__calloc(1, sizeof *fresh);
    if (!fresh)
        return; /* not cached: the next call asks again */
    pthread_mutex_lock(&c->lock);
    struct entry *e = cmap_find(&c->by_text, k->hash, 0, k->key, k->len);
    if (e) {
        if (version > 0)
            e->version = version;
    } else {
        fresh->hash = k->hash;
        fresh->key = k->key;
        fresh->keylen = k->len;
        fresh->version = version;
        fresh->schema = cairn_registered_schema_retain(s);
        if (cmap_put(&c->by_text, fresh) == CAIRN_OK) {
            k->key = NULL;
            fresh = NULL;
        } else {
            cairn_registered_schema_release(s);
            fresh->key = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
    cairn__free(fresh);
}

/* ---- building schemas from answers ------------------------------------- */

static cairn_rc_t fetch_ref(cairn_registry_client_t *c,
                            const char *subject,
                            int version,
                            int depth,
                            cairn_registered_schema_t **out,
                            cairn_error_t *err);

static cairn_rc_t build_schema(cairn_registry_client_t *c,
                               int32_t id,
                               const char *type,
                               const char *text,
                               const json_t *refs,
                               int depth,
                               cairn_registered_schema_t **out,
                               cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_registered_schema_t *s = NULL;
    cairn_registered_schema_t **held = NULL;
    cairn_schema_ref_t *prefs = NULL;
    size_t nrefs = json_is_array(refs) ? json_array_size(refs) : 0, nheld = 0;
    const cairn_format_t *fmt = cairn_format_find(type);

    *out = NULL;
    if (nrefs > MAX_REFS) {
        rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                              "schema %d has more than %d references", (int)id, MAX_REFS);
        goto out;
    }
    if (!(s = cairn__calloc(1, sizeof *s)) || !(s->type = cairn__strdup(type)) ||
        !(s->text = cairn__strdup(text))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    atomic_init(&s->refs, 1);
    s->id = id;
    if (!fmt)
        goto done; /* kept as text */
    if (nrefs) {
        if (depth >= MAX_REF_DEPTH) {
            rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                  "schema %d: references nested deeper than %d", (int)id,
                                  MAX_REF_DEPTH);
            goto out;
        }
        held = cairn__calloc(nrefs, sizeof *held);
        prefs = cairn__calloc(nrefs, sizeof *prefs);
        if (!held || !prefs) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < nrefs; i++) {
            json_t *r = json_array_get(refs, i);
            json_t *name = json_object_get(r, "name"), *subj = json_object_get(r, "subject");
            json_t *ver = json_object_get(r, "version");
            if (!json_is_string(name) || !json_is_string(subj) || !json_is_integer(ver) ||
                json_integer_value(ver) > INT_MAX || json_integer_value(ver) < -1) {
                rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                      "schema %d: reference %zu is not {name, subject, version}",
                                      (int)id, i);
                goto out;
            }
            rc = fetch_ref(c, json_string_value(subj), (int)json_integer_value(ver), depth + 1,
                           &held[nheld], err);
            if (rc != CAIRN_OK)
                goto out;
            prefs[i].name = json_string_value(name);
            prefs[i].schema = held[nheld++]->parsed;
        }
    }
    cairn_error_t perr = {0};
    rc = cairn_schema_parse(type, text, strlen(text), prefs, nrefs, &s->parsed, &perr);
    if (rc == CAIRN_E_NOMEM) {
        rc = cairn__error_set(err, rc, 0, NULL, "out of memory parsing schema %d", (int)id);
        goto out;
    }
    if (rc != CAIRN_OK) {
        rc = cairn__error_setc(err, CAIRN_E_INVALID_SCHEMA, (int)rc, 0, perr.where,
                               "schema %d does not parse: %s", (int)id, perr.text);
        goto out;
    }
    const cairn_avro_node_t *root = cairn__registered_schema_avro(s);
    if (root && root->fullname && !(s->name = cairn__strdup(root->fullname))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
done:
    *out = s;
    s = NULL;
out:
    for (size_t i = 0; i < nheld; i++)
        cairn_registered_schema_release(held[i]);
    cairn__free(held);
    cairn__free(prefs);
    cairn_registered_schema_release(s);
    return rc;
}

static const char *answer_type(const json_t *ans)
{
    json_t *t = json_object_get(ans, "schemaType");
    return json_is_string(t) ? json_string_value(t) : "AVRO";
}

static int32_t answer_int(const json_t *ans, const char *name)
{
    json_t *v = json_object_get(ans, name);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT32_MAX)
        return 0;
    return (int32_t)json_integer_value(v);
}

/*
 * The schema of a version answer ({id, schema, schemaType?, references?}):
 * from the by-id map, else built from the answer and cached.
 */
static cairn_rc_t schema_from_answer(cairn_registry_client_t *c,
                                     const json_t *ans,
                                     int depth,
                                     const char *where,
                                     cairn_registered_schema_t **out,
                                     cairn_error_t *err)
{
    int32_t id = answer_int(ans, "id");
    json_t *text = json_object_get(ans, "schema");
    cairn_registered_schema_t *s = NULL;
    if (!id || !json_is_string(text))
        return cairn__error_set(err, CAIRN_E_IO, 0, where,
                                "registry %s answered without an id or a schema",
                                cairn__http_display(c->http));
    if ((s = cached_id(c, id))) {
        *out = s;
        return CAIRN_OK;
    }
    cairn_rc_t rc = build_schema(c, id, answer_type(ans), json_string_value(text),
                                 json_object_get(ans, "references"), depth, &s, err);
    if (rc != CAIRN_OK)
        return rc;
    *out = cache_id(c, s);
    return CAIRN_OK;
}

/* GET /subjects/{s}/versions/{v}: one referenced schema, via the by-id map. */
static cairn_rc_t fetch_ref(cairn_registry_client_t *c,
                            const char *subject,
                            int version,
                            int depth,
                            cairn_registered_schema_t **out,
                            cairn_error_t *err)
{
    char path[64];
    cairn_buf_t p;
    json_t *ans = NULL;
    char *esc = cairn__http_escape(subject);
    cairn_rc_t rc = CAIRN_OK;

    cairn_buf_init(&p, (size_t)-1);
    if (version > 0)
        snprintf(path, sizeof path, "/versions/%d", version);
    else
        snprintf(path, sizeof path, "/versions/latest");
    if (!esc || cairn_buf_printf(&p, "/subjects/%s%s", esc, path) != CAIRN_OK) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
        goto out;
    }
    rc = cairn__http_request(c->http, "GET", p.data, NULL, subject, &ans, err);
    if (rc == CAIRN_OK)
        rc = schema_from_answer(c, ans, depth, subject, out, err);
out:
    json_decref(ans);
    cairn__free(esc);
    cairn_buf_release(&p);
    return rc;
}

/* ---- lifecycle --------------------------------------------------------- */

cairn_rc_t cairn_registry_client_new(const cairn_registry_client_options_t *opts,
                                     cairn_registry_client_t **out,
                                     cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_registry_client_t *c = NULL;

    *out = NULL;
    if (!(c = cairn__calloc(1, sizeof *c)))
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    if ((rc = cairn__http_new(opts, &c->http, err)) != CAIRN_OK) {
        cairn__free(c);
        return rc;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        cairn__http_destroy(c->http);
        cairn__free(c);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot create a mutex");
    }
    c->by_id.max = c->by_text.max =
        opts->max_cached_schemas ? opts->max_cached_schemas : DEFAULT_MAX_CACHED;
    *out = c;
    return rc;
}

void cairn_registry_client_destroy(cairn_registry_client_t *c)
{
    if (!c)
        return;
    cmap_release(&c->by_id);
    cmap_release(&c->by_text);
    pthread_mutex_destroy(&c->lock);
    cairn__http_destroy(c->http);
    cairn__free(c);
}

unsigned long cairn__registry_client_attempts(const cairn_registry_client_t *c)
{
    return cairn__http_attempts(c->http);
}

cairn__http_t *cairn__registry_client_http(cairn_registry_client_t *c)
{
    return c->http;
}

/* ---- the calls --------------------------------------------------------- */

/* "/<prefix>/<escaped subject><suffix>" into @p p. */
static cairn_rc_t subject_path(
    cairn_buf_t *p, const char *prefix, const char *subject, const char *suffix, cairn_error_t *err)
{
    char *esc = cairn__http_escape(subject);
    cairn_buf_init(p, (size_t)-1);
    cairn_rc_t rc = esc ? cairn_buf_printf(p, "%s%s%s", prefix, esc, suffix) : CAIRN_E_NOMEM;
    cairn__free(esc);
    if (rc != CAIRN_OK)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
    return CAIRN_OK;
}

static cairn_rc_t check_args(const char *subject, const char *text, cairn_error_t *err)
{
    if (!subject || !*subject)
        return cairn__error_set(err, CAIRN_E_INVALID_SUBJECT, 0, NULL, "no subject given");
    if (text && !*text)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, subject, "empty schema text");
    return CAIRN_OK;
}

static json_t *schema_body(const char *type, const char *text)
{
    json_t *b = json_object();
    if (!b || json_object_set_new(b, "schema", json_string(text)) != 0 ||
        (strcmp(type, "AVRO") != 0 &&
         json_object_set_new(b, "schemaType", json_string(type)) != 0)) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/*
 * The arguments of the calls that send a schema: @p type defaulted to AVRO,
 * and, when @p k is given, the by-text key made.
 */
static cairn_rc_t schema_args(
    const char *subject, const char **type, const char *text, struct tkey *k, cairn_error_t *err)
{
    cairn_rc_t rc;
    *type = *type && **type ? *type : "AVRO";
    if ((rc = check_args(subject, text, err)) != CAIRN_OK)
        return rc;
    if (!text)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, subject, "no schema");
    if (k && tkey_make(k, subject, *type, text) != CAIRN_OK)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
    return CAIRN_OK;
}

/* POST {"schema", "schemaType"?} to "<prefix><escaped subject><suffix>". */
static cairn_rc_t post_schema(cairn_registry_client_t *c,
                              const char *prefix,
                              const char *subject,
                              const char *suffix,
                              const char *type,
                              const char *text,
                              json_t **ans,
                              cairn_error_t *err)
{
    cairn_buf_t path = {0};
    json_t *body = NULL;
    cairn_rc_t rc = subject_path(&path, prefix, subject, suffix, err);
    if (rc != CAIRN_OK)
        goto out;
    if (!(body = schema_body(type, text))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
        goto out;
    }
    rc = cairn__http_request(c->http, "POST", path.data, body, subject, ans, err);
out:
    json_decref(body);
    cairn_buf_release(&path);
    return rc;
}

/* "/config" for the global level, else "/config/<escaped subject><suffix>". */
static cairn_rc_t
config_path(cairn_buf_t *p, const char *subject, const char *suffix, cairn_error_t *err)
{
    if (subject)
        return subject_path(p, "/config/", subject, suffix, err);
    return subject_path(p, "/config", "", "", err);
}

cairn_rc_t cairn_registry_client_schema_by_id(cairn_registry_client_t *c,
                                              int32_t id,
                                              cairn_registered_schema_t **out,
                                              cairn_error_t *err)
{
    char path[48];
    json_t *ans = NULL;
    cairn_registered_schema_t *s = NULL;
    cairn_rc_t rc = CAIRN_OK;

    *out = NULL;
    if (id <= 0)
        return cairn__error_set(err, CAIRN_E_NOT_FOUND_SCHEMA, 0, NULL, "schema %d not found",
                                (int)id);
    if ((*out = cached_id(c, id)))
        return CAIRN_OK;
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    if ((rc = cairn__http_request(c->http, "GET", path, NULL, NULL, &ans, err)) != CAIRN_OK)
        goto out;
    json_t *text = json_object_get(ans, "schema");
    if (!json_is_string(text)) {
        rc = cairn__error_set(err, CAIRN_E_IO, 0, NULL,
                              "registry %s answered schema %d without text",
                              cairn__http_display(c->http), (int)id);
        goto out;
    }
    rc = build_schema(c, id, answer_type(ans), json_string_value(text),
                      json_object_get(ans, "references"), 0, &s, err);
    if (rc == CAIRN_OK)
        *out = cache_id(c, s);
out:
    json_decref(ans);
    return rc;
}

/*
 * Register (POST /subjects/{s}/versions) or look up (POST /subjects/{s}) a
 * schema text, answered from the by-text map when it can be: a look-up that
 * wants the version needs an entry that knows it (a registration's does not).
 */
static cairn_rc_t send_schema(cairn_registry_client_t *c,
                              bool lookup,
                              const char *subject,
                              const char *type,
                              const char *text,
                              cairn_registered_schema_t **out,
                              int32_t *version,
                              cairn_error_t *err)
{
    cairn_rc_t rc;
    struct tkey k = {0};
    json_t *ans = NULL;
    cairn_registered_schema_t *s = NULL;
    int32_t v = 0;

    *out = NULL;
    if ((rc = schema_args(subject, &type, text, &k, err)) != CAIRN_OK)
        return rc;
    if ((*out = cached_text(c, &k, version != NULL, version)))
        goto out;
    rc = post_schema(c, "/subjects/", subject, lookup ? "" : "/versions", type, text, &ans, err);
    if (rc != CAIRN_OK)
        goto out;
    if (lookup) {
        if ((rc = schema_from_answer(c, ans, 0, subject, &s, err)) != CAIRN_OK)
            goto out;
        v = answer_int(ans, "version");
    } else {
        int32_t id = answer_int(ans, "id");
        if (!id) {
            rc = cairn__error_set(err, CAIRN_E_IO, 0, subject,
                                  "registry %s answered a registration without an id",
                                  cairn__http_display(c->http));
            goto out;
        }
        if (!(s = cached_id(c, id))) {
            if ((rc = build_schema(c, id, type, text, NULL, 0, &s, err)) != CAIRN_OK)
                goto out;
            s = cache_id(c, s);
        }
    }
    cache_text(c, &k, s, v);
    if (version)
        *version = v;
    *out = s;
out:
    json_decref(ans);
    cairn__free(k.key);
    return rc;
}

cairn_rc_t cairn_registry_client_register(cairn_registry_client_t *c,
                                          const char *subject,
                                          const char *type,
                                          const char *text,
                                          cairn_registered_schema_t **out,
                                          cairn_error_t *err)
{
    return send_schema(c, false, subject, type, text, out, NULL, err);
}

cairn_rc_t cairn_registry_client_lookup(cairn_registry_client_t *c,
                                        const char *subject,
                                        const char *type,
                                        const char *text,
                                        cairn_registered_schema_t **out,
                                        int32_t *version,
                                        cairn_error_t *err)
{
    return send_schema(c, true, subject, type, text, out, version, err);
}

cairn_rc_t cairn_registry_client_latest(cairn_registry_client_t *c,
                                        const char *subject,
                                        cairn_registered_schema_t **out,
                                        int32_t *version,
                                        cairn_error_t *err)
{
    cairn_rc_t rc;
    cairn_buf_t path = {0};
    json_t *ans = NULL;

    *out = NULL;
    if ((rc = check_args(subject, NULL, err)) != CAIRN_OK)
        return rc;
    if ((rc = subject_path(&path, "/subjects/", subject, "/versions/latest", err)) != CAIRN_OK)
        goto out;
    if ((rc = cairn__http_request(c->http, "GET", path.data, NULL, subject, &ans, err)) != CAIRN_OK)
        goto out;
    if ((rc = schema_from_answer(c, ans, 0, subject, out, err)) == CAIRN_OK && version)
        *version = answer_int(ans, "version");
out:
    json_decref(ans);
    cairn_buf_release(&path);
    return rc;
}

cairn_rc_t cairn_registry_client_check(cairn_registry_client_t *c,
                                       const char *subject,
                                       const char *type,
                                       const char *text,
                                       int *compatible,
                                       json_t **messages,
                                       cairn_error_t *err)
{
    cairn_rc_t rc;
    json_t *ans = NULL;
    cairn_error_t local = {0};

    *compatible = 0;
    if (messages)
        *messages = NULL;
    if ((rc = schema_args(subject, &type, text, NULL, err)) != CAIRN_OK)
        return rc;
    rc = post_schema(c, "/compatibility/subjects/", subject, "/versions/latest?verbose=true", type,
                     text, &ans, &local);
    if (rc == CAIRN_E_NOT_FOUND_SUBJECT || rc == CAIRN_E_NOT_FOUND_VERSION) {
        /* Confluent answers 404 for a subject without versions: anything may go first. */
        *compatible = 1;
        rc = CAIRN_OK;
    } else if (rc != CAIRN_OK) {
        if (err && err->code == CAIRN_OK)
            *err = local;
        goto out;
    } else {
        json_t *ok = json_object_get(ans, "is_compatible");
        if (!json_is_boolean(ok)) {
            rc = cairn__error_set(err, CAIRN_E_IO, 0, subject,
                                  "registry %s answered a check without is_compatible",
                                  cairn__http_display(c->http));
            goto out;
        }
        *compatible = json_is_true(ok);
    }
    if (messages) {
        json_t *m = json_object_get(ans, "messages");
        *messages = json_is_array(m) ? json_incref(m) : json_array();
        if (!*messages)
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
    }
out:
    json_decref(ans);
    return rc;
}

cairn_rc_t cairn_registry_client_set_compatibility(cairn_registry_client_t *c,
                                                   const char *subject,
                                                   const char *level,
                                                   cairn_error_t *err)
{
    cairn_rc_t rc;
    cairn_buf_t path = {0};
    json_t *body = NULL, *ans = NULL;

    if (!level || !*level)
        return cairn__error_set(err, CAIRN_E_INVALID_LEVEL, 0, subject, "no level given");
    if ((rc = config_path(&path, subject, "", err)) != CAIRN_OK)
        goto out;
    if (!(body = json_pack("{s:s}", "compatibility", level))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
        goto out;
    }
    rc = cairn__http_request(c->http, "PUT", path.data, body, subject, &ans, err);
out:
    json_decref(body);
    json_decref(ans);
    cairn_buf_release(&path);
    return rc;
}

cairn_rc_t cairn_registry_client_get_compatibility(cairn_registry_client_t *c,
                                                   const char *subject,
                                                   int default_to_global,
                                                   char *buf,
                                                   size_t size,
                                                   cairn_error_t *err)
{
    cairn_rc_t rc;
    cairn_buf_t path = {0};
    json_t *ans = NULL;
    const char *q = default_to_global ? "?defaultToGlobal=true" : "";

    if ((rc = config_path(&path, subject, q, err)) != CAIRN_OK)
        goto out;
    if ((rc = cairn__http_request(c->http, "GET", path.data, NULL, subject, &ans, err)) != CAIRN_OK)
        goto out;
    json_t *l = json_object_get(ans, "compatibilityLevel");
    if (!json_is_string(l)) {
        rc = cairn__error_set(err, CAIRN_E_IO, 0, subject,
                              "registry %s answered a config without compatibilityLevel",
                              cairn__http_display(c->http));
        goto out;
    }
    if ((size_t)snprintf(buf, size, "%s", json_string_value(l)) >= size)
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, subject, "level buffer too small");
out:
    json_decref(ans);
    cairn_buf_release(&path);
    return rc;
}
