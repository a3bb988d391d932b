/* SPDX-License-Identifier: MIT */
/*
 * serde.c - values in the Confluent wire format (byte 0, the schema id as a
 * 4-byte big-endian integer, the Avro binary) over the registry client and
 * the SDK's Avro codec (avro_codec.h).
 *
 * Two caches make the steady state free of requests and of planning:
 * - (topic, schema text) -> registered schema: cairn_serde_schema asks the
 *   registry once per pair (registering it, or looking it up with
 *   no_auto_register) and then answers from here;
 * - (writer id, reader id) -> resolver: decode fetches the writer's schema
 *   by id (through the client's cache) and builds the plan to read it as
 *   the reader once. Each entry holds references on the two schemas whose
 *   models the plan points into, so that the client evicting them from its
 *   own cache never leaves a plan dangling.
 * Both are read under a shared lock and filled under an exclusive one; no
 * request and no planning ever runs under either (two threads missing the
 * same entry both build it, the first to insert wins). Entries live until
 * the serde is destroyed; beyond CACHE_MAX entries a map stops growing and
 * further results are used once and dropped, which keeps memory bounded for
 * a service that meets unbounded numbers of writer schemas.
 *
 * Subjects registered by the serde get the options' compatibility level
 * (BACKWARD_TRANSITIVE by default: replay reads the whole history with the
 * newest schema) when they have no level of their own yet; a level someone
 * set on purpose is left alone.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "avro_codec.h"
#include "cairn/serde.h"
#include "registry_client_int.h"

#define CACHE_MAX       10000u
#define MAX_VIOLATIONS  100u
#define MAX_ENCODED     (64u * 1024u * 1024u)
#define MAX_SUBJECT_LEN 1024u

struct schema_entry {
    struct schema_entry *next;
    uint64_t hash;
    char *key; /* "topic\0text" */
    size_t keylen;
    cairn_registered_schema_t *schema;
};

struct plan_entry {
    struct plan_entry *next;
    int32_t writer_id, reader_id;
    cairn_avro_resolver_t *resolver;
    cairn_registered_schema_t *writer, *reader; /* held while the plan lives */
};

#define NBUCKETS 1024u

struct cairn_serde {
    cairn_registry_client_t *client; /* borrowed */
    cairn_subject_strategy_t strategy;
    int is_key;
    int no_auto_register;
    const char *level;     /* a static level name, or NULL: leave levels alone */
    pthread_rwlock_t lock; /* guards the two maps */
    struct schema_entry *schemas[NBUCKETS];
    size_t nschemas;
    struct plan_entry *plans[NBUCKETS];
    size_t nplans;
};

static size_t plan_bucket(int32_t w, int32_t r)
{
    uint64_t h = ((uint64_t)(uint32_t)w << 32 | (uint32_t)r) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 40) & (NBUCKETS - 1);
}

/* ---- lifecycle --------------------------------------------------------- */

cairn_rc_t cairn_serde_new(cairn_registry_client_t *client,
                           const cairn_serde_options_t *opts,
                           cairn_serde_t **out,
                           cairn_error_t *err)
{
    cairn_serde_options_t dflt = {0};
    cairn_serde_t *s = NULL;
    cairn_compat_level_t level = CAIRN_COMPAT_BACKWARD_TRANSITIVE;

    *out = NULL;
    if (!client)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "a serde needs a registry client");
    if (!opts)
        opts = &dflt;
    if (opts->strategy != CAIRN_SUBJECT_TOPIC_RECORD_NAME &&
        opts->strategy != CAIRN_SUBJECT_TOPIC_NAME && opts->strategy != CAIRN_SUBJECT_RECORD_NAME)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "unknown subject strategy %d",
                                (int)opts->strategy);
    if (opts->compatibility && *opts->compatibility &&
        cairn_compat_level_parse(opts->compatibility, &level) != CAIRN_OK)
        return cairn__error_set(err, CAIRN_E_INVALID_LEVEL, 0, NULL,
                                "unknown compatibility level '%s'", opts->compatibility);
    if (!(s = cairn__calloc(1, sizeof *s)))
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    if (pthread_rwlock_init(&s->lock, NULL) != 0) {
        cairn__free(s);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot create a lock");
    }
    s->client = client;
    s->strategy = opts->strategy;
    s->is_key = opts->is_key != 0;
    s->no_auto_register = opts->no_auto_register != 0;
    s->level = opts->compatibility && !*opts->compatibility ? NULL : cairn_compat_level_name(level);
    *out = s;
    return CAIRN_OK;
}

void cairn_serde_destroy(cairn_serde_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        for (struct schema_entry *e = s->schemas[i], *next; e; e = next) {
            next = e->next;
            cairn_registered_schema_release(e->schema);
            cairn__free(e->key);
            cairn__free(e);
        }
        for (struct plan_entry *p = s->plans[i], *next; p; p = next) {
            next = p->next;
            cairn__avro_resolver_free(p->resolver);
            cairn_registered_schema_release(p->writer);
            cairn_registered_schema_release(p->reader);
            cairn__free(p);
        }
    }
    pthread_rwlock_destroy(&s->lock);
    cairn__free(s);
}

/* ---- subjects ---------------------------------------------------------- */

static const char *strategy_name(cairn_subject_strategy_t st)
{
    return st == CAIRN_SUBJECT_RECORD_NAME ? "RecordNameStrategy" : "TopicRecordNameStrategy";
}

cairn_rc_t cairn_serde_subject(cairn_serde_t *s,
                               const char *topic,
                               const char *text,
                               char *buf,
                               size_t size,
                               cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_avro_model_t *m = NULL;
    int n = 0;

    if (size)
        buf[0] = '\0';
    if (s->strategy != CAIRN_SUBJECT_RECORD_NAME && (!topic || !*topic))
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no topic given");
    if (s->strategy == CAIRN_SUBJECT_TOPIC_NAME) {
        n = snprintf(buf, size, "%s-%s", topic, s->is_key ? "key" : "value");
        goto out;
    }
    if (!text || !*text)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "no schema text given");
    if ((rc = cairn__avro_parse(text, strlen(text), NULL, 0, &m, err)) != CAIRN_OK)
        goto out;
    const cairn_avro_node_t *root = cairn__avro_model_root(m);
    if (root->kind != CAIRN_AVRO_RECORD) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                              "the %s names subjects after a record, but this schema's root is "
                              "%s %s; use the topic name strategy for it",
                              strategy_name(s->strategy),
                              root->kind == CAIRN_AVRO_ARRAY || root->kind == CAIRN_AVRO_ENUM ? "an"
                                                                                              : "a",
                              cairn__avro_kind_name(root->kind));
        goto out;
    }
    if (s->strategy == CAIRN_SUBJECT_RECORD_NAME)
        n = snprintf(buf, size, "%s", root->fullname);
    else
        n = snprintf(buf, size, "%s-%s", topic, root->fullname);
out:
    if (rc == CAIRN_OK && (n < 0 || (size_t)n >= size))
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                              "subject name needs %d bytes, the buffer has %zu", n + 1, size);
    cairn__avro_model_free(m);
    return rc;
}

/* ---- schemas ----------------------------------------------------------- */

/* Gives @p subject the serde's level unless it has one of its own. */
static cairn_rc_t ensure_level(cairn_serde_t *s, const char *subject, cairn_error_t *err)
{
    char have[64];
    cairn_error_t local = {0};
    cairn_rc_t rc =
        cairn_registry_client_get_compatibility(s->client, subject, 0, have, sizeof have, &local);
    if (rc == CAIRN_OK)
        return CAIRN_OK;
    if (rc != CAIRN_E_NOT_FOUND_SUBJECT_LEVEL) {
        if (err && err->code == CAIRN_OK)
            *err = local;
        return rc;
    }
    return cairn_registry_client_set_compatibility(s->client, subject, s->level, err);
}

static cairn_rc_t ask_registry(cairn_serde_t *s,
                               const char *subject,
                               const char *text,
                               cairn_registered_schema_t **out,
                               cairn_error_t *err)
{
    cairn_rc_t rc;
    if (s->no_auto_register) {
        cairn_error_t local = {0};
        rc = cairn_registry_client_lookup(s->client, subject, "AVRO", text, out, NULL, &local);
        if (rc == CAIRN_E_NOT_FOUND_SUBJECT || rc == CAIRN_E_NOT_FOUND_SCHEMA)
            return cairn__error_set(err, rc, 0, subject,
                                    "schema is not registered under subject '%s' and the serde "
                                    "does not register schemas (no_auto_register)",
                                    subject);
        if (rc != CAIRN_OK && err && err->code == CAIRN_OK)
            *err = local;
        return rc;
    }
    if (s->level && (rc = ensure_level(s, subject, err)) != CAIRN_OK)
        return rc;
    return cairn_registry_client_register(s->client, subject, "AVRO", text, out, err);
}

cairn_rc_t cairn_serde_schema(cairn_serde_t *s,
                              const char *topic,
                              const char *text,
                              cairn_registered_schema_t **out,
                              cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    char subject[MAX_SUBJECT_LEN];
    cairn_registered_schema_t *found = NULL;
    struct schema_entry *fresh = NULL;

    *out = NULL;
    if (!text || !*text)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "no schema text given");
    topic = topic ? topic : "";
    size_t lt = strlen(topic), lx = strlen(text), keylen = lt + 1 + lx;
    char *key = cairn__malloc(keylen + 1);
    if (!key)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    memcpy(key, topic, lt + 1);
    memcpy(key + lt + 1, text, lx + 1);
    uint64_t h = cairn__sdk_fnv1a(key, keylen);
    size_t b = (size_t)(h >> 40) & (NBUCKETS - 1);

    pthread_rwlock_rdlock(&s->lock);
    for (struct schema_entry *e = s->schemas[b]; e; e = e->next)
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            found = cairn_registered_schema_retain(e->schema);
            break;
        }
    pthread_rwlock_unlock(&s->lock);
    if (found) {
        *out = found;
        goto out;
    }

    if ((rc = cairn_serde_subject(s, topic, text, subject, sizeof subject, err)) != CAIRN_OK ||
        (rc = ask_registry(s, subject, text, &found, err)) != CAIRN_OK)
        goto out;
    if (!(fresh = cairn__calloc(1, sizeof *fresh))) {
        *out = found; /* uncached, still correct */
        goto out;
    }
    pthread_rwlock_wrlock(&s->lock);
    struct schema_entry *e = s->schemas[b];
    for (; e; e = e->next)
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            break;
    if (!e && s->nschemas < CACHE_MAX) {
        fresh->hash = h;
        fresh->key = key;
        fresh->keylen = keylen;
        fresh->schema = cairn_registered_schema_retain(found);
        fresh->next = s->schemas[b];
        s->schemas[b] = fresh;
        s->nschemas++;
        key = NULL;
        fresh = NULL;
    }
    pthread_rwlock_unlock(&s->lock);
    *out = found;
out:
    cairn__free(fresh);
    cairn__free(key);
    return rc;
}

/* ---- encode and validate ----------------------------------------------- */

static cairn_rc_t avro_root(const cairn_registered_schema_t *schema,
                            const cairn_avro_node_t **root,
                            cairn_error_t *err)
{
    if (!schema)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no schema given");
    *root = cairn__registered_schema_avro(schema);
    if (!*root)
        return cairn__error_set(
            err, CAIRN_E_INVALID, 0, NULL, "schema %d is of type %s; the serde handles AVRO only",
            (int)cairn_registered_schema_id(schema), cairn_registered_schema_type(schema));
    return CAIRN_OK;
}

cairn_rc_t cairn_serde_encode(cairn_serde_t *s,
                              const cairn_registered_schema_t *schema,
                              const json_t *value,
                              unsigned char **out,
                              size_t *len,
                              cairn_error_t *err)
{
    const cairn_avro_node_t *root = NULL;
    cairn_buf_t b;
    cairn_rc_t rc;

    (void)s;
    *out = NULL;
    *len = 0;
    if ((rc = avro_root(schema, &root, err)) != CAIRN_OK)
        return rc;
    if (!value)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, "", "no value given");
    uint32_t id = (uint32_t)cairn_registered_schema_id(schema);
    unsigned char prefix[CAIRN_WIRE_PREFIX] = {0, (unsigned char)(id >> 24),
                                               (unsigned char)(id >> 16), (unsigned char)(id >> 8),
                                               (unsigned char)id};
    cairn_buf_init(&b, MAX_ENCODED);
    if ((rc = cairn_buf_append(&b, prefix, sizeof prefix)) != CAIRN_OK) {
        rc = cairn__error_set(err, rc, 0, NULL, "out of memory");
        goto out;
    }
    if ((rc = cairn__avro_encode(root, value, &b, err)) != CAIRN_OK)
        goto out;
    if (!(*out = (unsigned char *)cairn_buf_detach(&b, len)))
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
out:
    cairn_buf_release(&b);
    return rc;
}

/* Splits "<pointer>: <message>" into a {"path","message"} object. */
static json_t *violation(const char *item)
{
    const char *sep = strstr(item, ": ");
    if (!sep)
        return json_pack("{s:s, s:s}", "path", "", "message", item);
    return json_pack("{s:s%, s:s}", "path", item, (size_t)(sep - item), "message", sep + 2);
}

cairn_rc_t cairn_serde_validate(cairn_serde_t *s,
                                const cairn_registered_schema_t *schema,
                                const json_t *value,
                                json_t **violations,
                                cairn_error_t *err)
{
    const cairn_avro_node_t *root = NULL;
    cairn_strlist_t list;
    cairn_rc_t rc;
    json_t *arr = NULL;

    (void)s;
    if (violations)
        *violations = NULL;
    cairn_strlist_init(&list);
    if (!(arr = json_array())) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    if ((rc = avro_root(schema, &root, err)) != CAIRN_OK) {
        json_array_append_new(arr, json_pack("{s:s, s:s}", "path", "", "message",
                                             "the schema is not an AVRO schema"));
        goto out;
    }
    if (!value) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, "", "no value given");
        json_array_append_new(arr, json_pack("{s:s, s:s}", "path", "", "message", "no value"));
        goto out;
    }
    rc = cairn__avro_validate(root, value, &list, MAX_VIOLATIONS);
    if (rc == CAIRN_E_NOMEM) {
        cairn__error_set(err, rc, 0, NULL, "out of memory validating a value");
        goto out;
    }
    for (size_t i = 0; i < list.n; i++) {
        json_t *v = violation(list.items[i]);
        if (!v || json_array_append_new(arr, v) != 0) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    if (rc == CAIRN_E_INVALID) {
        json_t *first = json_array_get(arr, 0);
        cairn__error_set(err, rc, 0, json_string_value(json_object_get(first, "path")), "%s",
                         first ? json_string_value(json_object_get(first, "message"))
                               : "the value does not fit the schema");
    }
out:
    cairn_strlist_release(&list);
    if (violations && rc != CAIRN_E_NOMEM) {
        *violations = arr;
        arr = NULL;
    }
    json_decref(arr);
    return rc;
}

/* ---- decode ------------------------------------------------------------ */

/* Builds the plan to read @p wid as @p reader (NULL: as itself); @p keep: cacheable. */
static cairn_rc_t build_plan(cairn_serde_t *s,
                             int32_t wid,
                             const cairn_registered_schema_t *reader,
                             struct plan_entry **out,
                             cairn_error_t *err)
{
    cairn_rc_t rc;
    struct plan_entry *p = cairn__calloc(1, sizeof *p);
    const cairn_avro_node_t *wroot = NULL, *rroot = NULL;

    *out = NULL;
    if (!p)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    if ((rc = cairn_registry_client_schema_by_id(s->client, wid, &p->writer, err)) != CAIRN_OK ||
        (rc = avro_root(p->writer, &wroot, err)) != CAIRN_OK)
        goto out;
    p->reader =
        reader ? cairn__registered_schema_ref(reader) : cairn_registered_schema_retain(p->writer);
    if ((rc = avro_root(p->reader, &rroot, err)) != CAIRN_OK)
        goto out;
    p->writer_id = wid;
    p->reader_id = cairn_registered_schema_id(p->reader);
    rc = cairn__avro_resolver_new(rroot, wroot, &p->resolver, err);
out:
    if (rc != CAIRN_OK) {
        cairn_registered_schema_release(p->writer);
        cairn_registered_schema_release(p->reader);
        cairn__free(p);
        return rc;
    }
    *out = p;
    return CAIRN_OK;
}

static void plan_free(struct plan_entry *p)
{
    if (!p)
        return;
    cairn__avro_resolver_free(p->resolver);
    cairn_registered_schema_release(p->writer);
    cairn_registered_schema_release(p->reader);
    cairn__free(p);
}

cairn_rc_t cairn_serde_decode(cairn_serde_t *s,
                              const void *data,
                              size_t len,
                              const cairn_registered_schema_t *reader,
                              json_t **out,
                              int32_t *writer_id,
                              cairn_error_t *err)
{
    const unsigned char *d = data;
    const cairn_avro_resolver_t *res = NULL;
    struct plan_entry *mine = NULL;
    cairn_rc_t rc = CAIRN_OK;

    *out = NULL;
    if (writer_id)
        *writer_id = 0;
    if (!d || len < CAIRN_WIRE_PREFIX)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "wire data of %zu bytes is shorter than the %d-byte prefix "
                                "(magic byte and schema id)",
                                d ? len : 0, CAIRN_WIRE_PREFIX);
    if (d[0] != 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "wire data does not start with the magic byte 0 (found 0x%02x): "
                                "not in the Confluent wire format",
                                d[0]);
    int32_t wid = (int32_t)((uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 |
                            (uint32_t)d[4]);
    if (writer_id)
        *writer_id = wid;
    int32_t rid = reader ? cairn_registered_schema_id(reader) : wid;
    size_t b = plan_bucket(wid, rid);

    pthread_rwlock_rdlock(&s->lock);
    for (struct plan_entry *p = s->plans[b]; p; p = p->next)
        if (p->writer_id == wid && p->reader_id == rid) {
            res = p->resolver; /* entries live until the serde is destroyed */
            break;
        }
    pthread_rwlock_unlock(&s->lock);

    if (!res) {
        if ((rc = build_plan(s, wid, reader, &mine, err)) != CAIRN_OK)
            return rc;
        pthread_rwlock_wrlock(&s->lock);
        struct plan_entry *p = s->plans[b];
        for (; p; p = p->next)
            if (p->writer_id == wid && p->reader_id == rid)
                break;
        if (p) {
            res = p->resolver;
        } else if (s->nplans < CACHE_MAX) {
            mine->next = s->plans[b];
            s->plans[b] = mine;
            s->nplans++;
            res = mine->resolver;
            mine = NULL;
        } else {
            res = mine->resolver; /* used once, freed below */
        }
        pthread_rwlock_unlock(&s->lock);
    }
    rc = cairn__avro_decode(res, d + CAIRN_WIRE_PREFIX, len - CAIRN_WIRE_PREFIX, out, err);
    plan_free(mine);
    return rc;
}
