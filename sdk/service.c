/* SPDX-License-Identifier: MIT */
/*
 * service.c - the service handle (sdk.h): opening or borrowing the log,
 * deriving the snapshot location and the Kafka claim hold, adding aggregate
 * types (copying their definitions and registering every schema they name
 * through the serde, so that an incompatible schema is refused when the
 * service starts rather than on its first command), emitters and counters.
 *
 * Why register at start: a schema the registry refuses must stop a
 * deployment before it writes anything, and once registered the serde's
 * cache answers every later encode without the registry (see docs/SDK.md,
 * "Registry down").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_int.h"

void cairn__error_copy(cairn_error_t *dst, const cairn_error_t *src)
{
    if (dst && dst->code == CAIRN_OK && src->code != CAIRN_OK)
        *dst = *src;
}

pthread_mutex_t *cairn__stripe(struct cairn_service *svc, const char *stream)
{
    return &svc->stripes[cairn__hash64(stream, strlen(stream)) % CAIRN__SDK_STRIPES];
}

/* The claim hold a Kafka URL sets itself ("cairn.claim.hold.ms=N"), else -1. */
static long url_claim_hold(const char *url)
{
    const char *q = strchr(url, '?');
    for (const char *p = q; p && *p; p++)
        if ((*p == '?' || *p == '&') && strncmp(p + 1, "cairn.claim.hold.ms=", 20) == 0)
            return strtol(p + 21, NULL, 10);
    return -1;
}

/* "kafka:B?topic=T&x=y" -> "kafka:B?topic=T.snapshots&x=y" (new string, NULL on failure). */
static char *kafka_snapshot_url(const char *url)
{
    const char *q = strchr(url, '?');
    const char *t = NULL;
    for (const char *p = q; p && *p; p++) {
        if ((*p == '?' || *p == '&') && strncmp(p + 1, "topic=", 6) == 0) {
            t = p + 7;
            break;
        }
    }
    if (!t)
        return NULL;
    size_t tl = strcspn(t, "&");
    size_t n = strlen(url) + sizeof ".snapshots";
    char *out = cairn__malloc(n);
    if (!out)
        return NULL;
    snprintf(out, n, "%.*s.snapshots%s", (int)((t - url) + (ptrdiff_t)tl), url, t + tl);
    return out;
}

static int is_kafka_url(const char *url)
{
    return strncmp(url, "kafka:", 6) == 0;
}

/* The directory of a file-backend URL ("file:DIR", "file://DIR", or a bare path). */
static const char *file_url_dir(const char *url)
{
    if (strncmp(url, "file://", 7) == 0)
        return url + 7;
    if (strncmp(url, "file:", 5) == 0)
        return url + 5;
    return url;
}

cairn_rc_t
cairn_service_new(const cairn_service_options_t *opts, cairn_service_t **out, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    struct cairn_service *svc = NULL;
    char *url = NULL;
    int cache_ready = 0;
    size_t locks = 0;

    *out = NULL;
    if (!opts || !opts->serde || !opts->topic || !*opts->topic || (!opts->log && !opts->log_url))
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "a service needs a log (url or handle), a serde and a topic");
    svc = cairn__calloc(1, sizeof *svc);
    if (!svc)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    svc->serde = opts->serde;
    svc->topic = cairn__strdup(opts->topic);
    svc->max_retries = opts->max_conflict_retries == 0  ? 5
                       : opts->max_conflict_retries < 0 ? 0
                                                        : opts->max_conflict_retries;
    svc->snapshot_every = opts->snapshot_every;
    svc->claim_hold_ms = opts->claim_hold_ms > 0 ? opts->claim_hold_ms : 500;
    svc->recent_max = opts->recent_commands ? opts->recent_commands : 1000;
    svc->no_cache = opts->no_cache;
    if (!svc->topic) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&svc->mu, NULL);
    pthread_mutex_init(&svc->snap_mu, NULL);
    for (locks = 0; locks < CAIRN__SDK_STRIPES; locks++)
        pthread_mutex_init(&svc->stripes[locks], NULL);
    rc = cairn__cache_init(&svc->cache, opts->cache_capacity ? opts->cache_capacity : 10000);
    if (rc != CAIRN_OK) {
        cairn__error_set(err, rc, 0, NULL, "out of memory");
        goto out;
    }
    cache_ready = 1;

    if (opts->log) {
        svc->log = opts->log;
    } else {
        svc->is_kafka = is_kafka_url(opts->log_url);
        if (svc->is_kafka && !strstr(opts->log_url, "cairn.claim.hold.ms=")) {
            size_t n = strlen(opts->log_url) + 64;
            url = cairn__malloc(n);
            if (!url) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
                goto out;
            }
            snprintf(url, n, "%s%ccairn.claim.hold.ms=%ld", opts->log_url,
                     strchr(opts->log_url, '?') ? '&' : '?', svc->claim_hold_ms);
        } else {
            url = cairn__strdup(opts->log_url);
        }
        if (!url) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
        rc = cairn_log_open(url, opts->log_options, &svc->log, err);
        if (rc != CAIRN_OK)
            goto out;
        svc->owns_log = 1;
        if (svc->is_kafka) {
            long hold = url_claim_hold(url);
            if (hold >= 0)
                svc->claim_hold_ms = hold;
        }
    }

    if (svc->snapshot_every > 0) {
        const char *su = opts->snapshot_url;
        if (su) {
            svc->snapshot_kafka = is_kafka_url(su);
            svc->snapshot_url = cairn__strdup(su);
        } else if (opts->log) {
            svc->snapshot_url = NULL; /* borrowed log: location unknown */
            cairn__log(CAIRN_LOG_INFO, CAIRN__LOG_CTX,
                       "snapshots off: a borrowed log needs snapshot_url");
        } else if (svc->is_kafka) {
            svc->snapshot_kafka = 1;
            svc->snapshot_url = kafka_snapshot_url(url);
        } else {
            size_t n = strlen(url) + 16;
            svc->snapshot_url = cairn__malloc(n);
            if (svc->snapshot_url)
                snprintf(svc->snapshot_url, n, "%s/snapshots", file_url_dir(url));
        }
        if ((su || (!opts->log)) && !svc->snapshot_url) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    *out = svc;
    svc = NULL;
out:
    cairn__free(url);
    if (svc) {
        if (svc->owns_log)
            cairn_log_close(svc->log);
        if (cache_ready)
            cairn__cache_release(&svc->cache);
        if (locks) {
            for (size_t i = 0; i < locks; i++)
                pthread_mutex_destroy(&svc->stripes[i]);
            pthread_mutex_destroy(&svc->mu);
            pthread_mutex_destroy(&svc->snap_mu);
        }
        cairn__free(svc->snapshot_url);
        cairn__free(svc->topic);
        cairn__free(svc);
    }
    return rc;
}

static void aggregate_free(struct cairn_aggregate *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_events; i++) {
        cairn__free(a->events[i].name);
        cairn__free(a->events[i].schema_text);
        cairn_registered_schema_release(a->events[i].schema);
    }
    for (size_t i = 0; i < a->n_commands; i++) {
        cairn__free(a->commands[i].name);
        cairn__free(a->commands[i].schema_text);
        cairn_registered_schema_release(a->commands[i].schema);
    }
    cairn__free(a->events);
    cairn__free(a->commands);
    cairn__free(a->name);
    cairn__free(a->state_schema);
    cairn__free(a);
}

void cairn_service_destroy(cairn_service_t *svc)
{
    if (!svc)
        return;
    /* Cached entries call their aggregate's free_state: free them first. */
    cairn__cache_release(&svc->cache);
    while (svc->aggs) {
        struct cairn_aggregate *a = svc->aggs;
        svc->aggs = a->next;
        aggregate_free(a);
    }
    if (svc->owns_log)
        cairn_log_close(svc->log);
    cairn_log_close(svc->snap_log);
    for (size_t i = 0; i < CAIRN__SDK_STRIPES; i++)
        pthread_mutex_destroy(&svc->stripes[i]);
    pthread_mutex_destroy(&svc->mu);
    pthread_mutex_destroy(&svc->snap_mu);
    cairn__free(svc->snapshot_url);
    cairn__free(svc->topic);
    cairn__free(svc);
}

cairn_log_t *cairn_service_log(cairn_service_t *svc)
{
    return svc->log;
}

void cairn_service_stats(cairn_service_t *svc, cairn_service_stats_t *out)
{
#define LOAD(f) out->f = atomic_load_explicit(&svc->stats.f, memory_order_relaxed)
    LOAD(commands);
    LOAD(appended);
    LOAD(repeated);
    LOAD(rejected);
    LOAD(invalid);
    LOAD(conflicts);
    LOAD(cache_hits);
    LOAD(cache_misses);
    LOAD(events_replayed);
    LOAD(snapshots_written);
    LOAD(snapshots_loaded);
    LOAD(snapshots_ignored);
#undef LOAD
}

/* FNV-1a over the schemas in force: what a snapshot's state was folded with. */
static void fingerprint(struct cairn_aggregate *a)
{
    uint64_t h = cairn__hash64(a->name, strlen(a->name) + 1);
    for (size_t i = 0; i < a->n_events; i++) {
        const struct cairn__evtype *t = &a->events[i];
        h ^= cairn__hash64(t->name, strlen(t->name) + 1) * 31u;
        if (t->schema_text)
            h ^= cairn__hash64(t->schema_text, strlen(t->schema_text)) * (2 * i + 3);
        h = h * 1099511628211ull + (uint64_t)t->retired;
    }
    if (a->state_schema)
        h ^= cairn__hash64(a->state_schema, strlen(a->state_schema)) * 7u;
    snprintf(a->fingerprint, sizeof a->fingerprint, "%016llx", (unsigned long long)h);
}

const struct cairn__evtype *cairn__evtype_find(const struct cairn_aggregate *agg, const char *name)
{
    for (size_t i = 0; i < agg->n_events; i++)
        if (strcmp(agg->events[i].name, name) == 0)
            return &agg->events[i];
    return NULL;
}

cairn_rc_t cairn_service_add_aggregate(cairn_service_t *svc,
                                       const cairn_aggregate_def_t *def,
                                       cairn_aggregate_t **out,
                                       cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    struct cairn_aggregate *a = NULL;

    *out = NULL;
    if (!def || !def->name || !*def->name || !def->init || !def->apply || !def->decide ||
        !def->free_state || (def->n_events && !def->events) || (def->n_commands && !def->commands))
        return cairn__error_set(err, CAIRN_E_INVALID, 0, def ? def->name : NULL,
                                "an aggregate needs a name and init, apply, decide, free_state");
    if (!def->state_to_json != !def->state_from_json)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, def->name,
                                "state_to_json and state_from_json go together");
    a = cairn__calloc(1, sizeof *a);
    if (!a)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    a->svc = svc;
    a->def = *def;
    a->name = cairn__strdup(def->name);
    a->state_schema = def->state_schema ? cairn__strdup(def->state_schema) : NULL;
    a->events = cairn__calloc(def->n_events + 1, sizeof *a->events);
    a->commands = cairn__calloc(def->n_commands + 1, sizeof *a->commands);
    if (!a->name || !a->events || !a->commands || (def->state_schema && !a->state_schema)) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < def->n_events; i++) {
        const cairn_event_type_t *t = &def->events[i];
        struct cairn__evtype *d = &a->events[i];
        if (!t->name || !*t->name || (!t->schema && !t->retired) || (t->retired && !t->upcast)) {
            rc = cairn__error_set(err, CAIRN_E_INVALID, 0, t->name ? t->name : def->name,
                                  "event type %zu needs a name and a schema (a retired one: an "
                                  "upcast hook)",
                                  i);
            goto out;
        }
        if (cairn__evtype_find(a, t->name)) {
            rc = cairn__error_set(err, CAIRN_E_INVALID, 0, t->name,
                                  "event type '%s' declared twice", t->name);
            goto out;
        }
        d->name = cairn__strdup(t->name);
        d->schema_text = t->schema ? cairn__strdup(t->schema) : NULL;
        d->retired = t->retired;
        d->upcast = t->upcast;
        a->n_events = i + 1;
        if (!d->name || (t->schema && !d->schema_text)) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < def->n_commands; i++) {
        const cairn_command_type_t *t = &def->commands[i];
        struct cairn__cmdtype *d = &a->commands[i];
        if (!t->name || !*t->name || !t->schema) {
            rc = cairn__error_set(err, CAIRN_E_INVALID, 0, def->name,
                                  "command type %zu needs a name and a schema", i);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(a->commands[j].name, t->name) == 0) {
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, t->name,
                                      "command type '%s' declared twice", t->name);
                goto out;
            }
        }
        d->name = cairn__strdup(t->name);
        d->schema_text = cairn__strdup(t->schema);
        a->n_commands = i + 1;
        if (!d->name || !d->schema_text) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    a->def.name = a->name;
    a->def.state_schema = a->state_schema;
    a->def.events = NULL; /* the copies above are what the SDK uses */
    a->def.commands = NULL;
    fingerprint(a);

    /* Register (or look up) every schema now: refusals stop the start. */
    for (size_t i = 0; i < a->n_events; i++) {
        if (!a->events[i].schema_text)
            continue;
        rc = cairn_serde_schema(svc->serde, svc->topic, a->events[i].schema_text,
                                &a->events[i].schema, err);
        if (rc != CAIRN_OK)
            goto out;
    }
    for (size_t i = 0; i < a->n_commands; i++) {
        rc = cairn_serde_schema(svc->serde, svc->topic, a->commands[i].schema_text,
                                &a->commands[i].schema, err);
        if (rc != CAIRN_OK)
            goto out;
    }

    pthread_mutex_lock(&svc->mu);
    a->next = svc->aggs;
    svc->aggs = a;
    pthread_mutex_unlock(&svc->mu);
    *out = a;
    a = NULL;
out:
    aggregate_free(a);
    return rc;
}

/* ---- emitters ---------------------------------------------------------------- */

void cairn__emitter_init(struct cairn_emitter *em, struct cairn_aggregate *agg, int for_upcast)
{
    memset(em, 0, sizeof *em);
    em->agg = agg;
    em->for_upcast = for_upcast;
}

void cairn__emitter_reset(struct cairn_emitter *em)
{
    for (size_t i = 0; i < em->n; i++) {
        cairn__free(em->items[i].type);
        json_decref(em->items[i].body);
    }
    em->n = 0;
    em->rejected = 0;
    em->reject_code[0] = '\0';
    em->reject_text[0] = '\0';
    em->failed = CAIRN_OK;
    em->failed_text[0] = '\0';
}

void cairn__emitter_release(struct cairn_emitter *em)
{
    cairn__emitter_reset(em);
    cairn__free(em->items);
    em->items = NULL;
    em->cap = 0;
}

static cairn_rc_t emit_fail(struct cairn_emitter *em, cairn_rc_t rc, const char *fmt, ...)
    CAIRN_PRINTF(3, 4);
static cairn_rc_t emit_fail(struct cairn_emitter *em, cairn_rc_t rc, const char *fmt, ...)
{
    if (em->failed == CAIRN_OK) {
        va_list ap;
        em->failed = rc;
        va_start(ap, fmt);
        vsnprintf(em->failed_text, sizeof em->failed_text, fmt, ap);
        va_end(ap);
    }
    return rc;
}

cairn_rc_t cairn_emit_take(cairn_emitter_t *em, const char *type, json_t *event)
{
    const struct cairn__evtype *t;
    if (!event)
        return emit_fail(em, CAIRN_E_NOMEM, "no value to emit for '%s' (out of memory?)",
                         type ? type : "");
    if (!type) {
        json_decref(event);
        return emit_fail(em, CAIRN_E_INVALID, "an emitted event needs a type");
    }
    t = cairn__evtype_find(em->agg, type);
    if (!t || t->retired) {
        json_decref(event);
        return emit_fail(em, CAIRN_E_INVALID, "'%s' is not a current event type of the aggregate",
                         type);
    }
    if (em->n == em->cap) {
        size_t cap = em->cap ? em->cap * 2 : 4;
        struct cairn__emitted *p = cairn__realloc(em->items, cap * sizeof *p);
        if (!p) {
            json_decref(event);
            return emit_fail(em, CAIRN_E_NOMEM, "out of memory emitting '%s'", type);
        }
        em->items = p;
        em->cap = cap;
    }
    em->items[em->n].type = cairn__strdup(type);
    if (!em->items[em->n].type) {
        json_decref(event);
        return emit_fail(em, CAIRN_E_NOMEM, "out of memory emitting '%s'", type);
    }
    em->items[em->n].body = event;
    em->n++;
    return CAIRN_OK;
}

cairn_rc_t cairn_emit(cairn_emitter_t *em, const char *type, const json_t *event)
{
    return cairn_emit_take(em, type, event ? json_deep_copy(event) : NULL);
}

cairn_rc_t cairn_reject(cairn_emitter_t *em, const char *code, const char *fmt, ...)
{
    va_list ap;
    em->rejected = 1;
    snprintf(em->reject_code, sizeof em->reject_code, "%s", code ? code : "REJECTED");
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(em->reject_text, sizeof em->reject_text, fmt, ap);
        va_end(ap);
    }
    return CAIRN_E_REJECTED;
}

void cairn_result_release(cairn_result_t *res)
{
    if (!res)
        return;
    json_decref(res->violations);
    memset(res, 0, sizeof *res);
}
