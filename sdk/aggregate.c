/* SPDX-License-Identifier: MIT */
/*
 * aggregate.c - loading an aggregate: the state cache, else the latest
 * usable snapshot and then the stream's events after it, each decoded with
 * the serde and resolved to its event type's current schema, passed through
 * the type's upcast hook when it has one, and folded with apply().
 *
 * While folding, the causation header of every event (the id of the command
 * that produced it) goes into the stream's recent-command window together
 * with the event's version and position: that window is what makes a
 * repeated command return its earlier result (handle.c), and because it is
 * rebuilt from the log on every load that is not a cache hit, a command
 * whose append timed out with an unknown outcome is recognised on its retry
 * exactly when its events are in the log.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_int.h"

struct fold {
    struct cairn_aggregate *agg;
    struct cairn__entry *e;
    cairn_rc_t rc;
    cairn_error_t err;
    struct cairn_emitter up; /* upcast output, reused */
    uint64_t replayed;
};

static const cairn_header_t *header(const cairn_record_t *r, const char *name)
{
    for (size_t i = 0; i < r->header_count; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return &r->headers[i];
    return NULL;
}

/* A header value as a NUL-terminated string in @p buf (truncated); "" when absent. */
static const char *header_str(const cairn_record_t *r, const char *name, char *buf, size_t size)
{
    const cairn_header_t *h = header(r, name);
    size_t n;
    buf[0] = '\0';
    if (!h)
        return buf;
    n = h->value_len < size - 1 ? h->value_len : size - 1;
    memcpy(buf, h->value, n);
    buf[n] = '\0';
    return buf;
}

static int fold_record(void *opaque, const cairn_record_t *r)
{
    struct fold *f = opaque;
    struct cairn_aggregate *agg = f->agg;
    struct cairn__entry *e = f->e;
    char type[256], causation[CAIRN__CMD_ID_MAX + 1];
    const struct cairn__evtype *t;
    json_t *body = NULL;
    int32_t writer_id = 0;

    if (r->version != e->version + 1) {
        f->rc = cairn__error_set(&f->err, CAIRN_E_CORRUPT, 0, e->stream,
                                 "stream '%s' jumps from version %" PRIu64 " to %" PRIu64,
                                 e->stream, e->version, r->version);
        return 1;
    }
    header_str(r, "cairn.type", type, sizeof type);
    t = cairn__evtype_find(agg, type);
    if (!t) {
        f->rc = cairn__error_set(&f->err, CAIRN_E_INVALID, 0, e->stream,
                                 "event type '%s' at version %" PRIu64
                                 " of stream '%s' is unknown to aggregate '%s'",
                                 type, r->version, e->stream, agg->name);
        return 1;
    }
    f->rc = cairn_serde_decode(agg->svc->serde, r->value, r->value_len, t->schema, &body,
                               &writer_id, &f->err);
    if (f->rc != CAIRN_OK)
        return 1;
    if (t->upcast) {
        cairn_event_view_t view = {
            .stream = e->stream,
            .version = r->version,
            .type = t->name,
            .writer_schema_id = writer_id,
            .reader_schema_id = t->schema ? cairn_registered_schema_id(t->schema) : 0,
            .body = body,
        };
        cairn__emitter_reset(&f->up);
        f->rc = t->upcast(agg->def.opaque, &view, &f->up, &f->err);
        if (f->rc == CAIRN_OK && f->up.failed != CAIRN_OK)
            f->rc = cairn__error_set(&f->err, f->up.failed, 0, e->stream, "upcast of '%s': %s",
                                     t->name, f->up.failed_text);
        for (size_t i = 0; f->rc == CAIRN_OK && i < f->up.n; i++)
            f->rc = agg->def.apply(agg->def.opaque, e->state, f->up.items[i].type,
                                   f->up.items[i].body, &f->err);
    } else {
        f->rc = agg->def.apply(agg->def.opaque, e->state, t->name, body, &f->err);
    }
    json_decref(body);
    if (f->rc != CAIRN_OK) {
        cairn__error_set(&f->err, f->rc, 0, e->stream,
                         "applying '%s' at version %" PRIu64 " of stream '%s' failed", type,
                         r->version, e->stream);
        return 1;
    }
    e->version = r->version;
    e->partition = r->partition;
    e->position = r->position;
    f->replayed++;
    header_str(r, "cairn.causation", causation, sizeof causation);
    if (causation[0] &&
        cairn__recent_put(&e->recent, causation, r->version, r->partition, r->position)) {
        f->rc = cairn__error_set(&f->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        return 1;
    }
    return 0;
}

static struct cairn__entry *entry_new(struct cairn_aggregate *agg, const char *stream)
{
    struct cairn__entry *e = cairn__calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->agg = agg;
    e->stream = cairn__strdup(stream);
    e->hash = cairn__hash64(stream, strlen(stream));
    cairn__recent_init(&e->recent, agg->svc->recent_max);
    if (!e->stream) {
        cairn__free(e);
        return NULL;
    }
    e->state = agg->def.init(agg->def.opaque, stream);
    if (!e->state) {
        cairn__entry_free(e);
        return NULL;
    }
    return e;
}

/* Folds the events of e's stream after e->version into e. */
static cairn_rc_t catch_up(struct cairn_aggregate *agg, struct cairn__entry *e, cairn_error_t *err)
{
    struct cairn_service *svc = agg->svc;
    struct fold f;
    cairn_rc_t rc;

    memset(&f, 0, sizeof f);
    f.agg = agg;
    f.e = e;
    cairn__emitter_init(&f.up, agg, 1);
    rc = cairn_log_read_stream(svc->log, e->stream, e->version + 1, fold_record, &f, &f.err);
    if (rc == CAIRN_DONE)
        rc = CAIRN_OK;
    else if (rc == CAIRN_AGAIN)
        rc = f.rc;
    cairn__emitter_release(&f.up);
    CAIRN__STAT_ADD(svc, events_replayed, f.replayed);
    if (rc != CAIRN_OK)
        cairn__error_copy(err, &f.err);
    return rc;
}

cairn_rc_t cairn__load(struct cairn_aggregate *agg,
                       const char *stream,
                       int fresh,
                       struct cairn__entry **out,
                       cairn_error_t *err)
{
    struct cairn_service *svc = agg->svc;
    struct cairn__entry *e = NULL;
    cairn_rc_t rc;

    *out = NULL;
    if (!svc->no_cache) {
        e = cairn__cache_take(&svc->cache, agg, stream);
        if (e) {
            CAIRN__STAT_ADD(svc, cache_hits, 1);
            e->from_cache = 1;
            /* A command needs no check (its append's expected version is
               one); a read asks the log whether others wrote since. */
            if (fresh && cairn_log_stream_version(svc->log, stream) != e->version) {
                rc = catch_up(agg, e, err);
                if (rc != CAIRN_OK) {
                    cairn__entry_free(e);
                    return rc;
                }
            }
            *out = e;
            return CAIRN_OK;
        }
    }
    CAIRN__STAT_ADD(svc, cache_misses, 1);
    e = entry_new(agg, stream);
    if (!e)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory loading '%s'",
                                stream);
    e->partition = cairn_log_partition_of(svc->log, stream);
    if (svc->snapshot_every > 0)
        (void)cairn__snapshot_load(agg, e); /* CAIRN_DONE: none usable, e untouched */
    rc = catch_up(agg, e, err);
    if (rc != CAIRN_OK) {
        cairn__entry_free(e);
        return rc;
    }
    e->from_cache = 0;
    *out = e;
    return CAIRN_OK;
}

void cairn__entry_keep(struct cairn_aggregate *agg, struct cairn__entry *e)
{
    if (agg->svc->no_cache)
        cairn__entry_free(e);
    else
        cairn__cache_put(&agg->svc->cache, e);
}

cairn_rc_t cairn_aggregate_state_json(
    cairn_aggregate_t *agg, const char *stream, json_t **out, uint64_t *version, cairn_error_t *err)
{
    struct cairn__entry *e = NULL;
    pthread_mutex_t *mu;
    cairn_rc_t rc;

    *out = NULL;
    if (!agg->def.state_to_json)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, agg->name,
                                "aggregate '%s' has no state_to_json", agg->name);
    if (!stream || !*stream)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "a stream id is needed");
    mu = cairn__stripe(agg->svc, stream);
    pthread_mutex_lock(mu);
    rc = cairn__load(agg, stream, 1, &e, err);
    if (rc == CAIRN_OK) {
        *out = agg->def.state_to_json(agg->def.opaque, e->state);
        if (version)
            *version = e->version;
        if (!*out)
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream,
                                  "state_to_json of '%s' returned nothing", stream);
        cairn__entry_keep(agg, e);
    }
    pthread_mutex_unlock(mu);
    return rc;
}

void cairn_aggregate_forget(cairn_aggregate_t *agg, const char *stream)
{
    pthread_mutex_t *mu = cairn__stripe(agg->svc, stream);
    pthread_mutex_lock(mu);
    cairn__entry_free(cairn__cache_take(&agg->svc->cache, agg, stream));
    pthread_mutex_unlock(mu);
}
