/* SPDX-License-Identifier: MIT */
/*
 * runner.c - the projector runner: one thread per projector, each reading
 * the log from its own checkpoint and writing batches to its own sink.
 *
 * One projector's loop:
 *   1. connect to the sink (bounded retries) and read the checkpoint there;
 *      a Redis projector marked with a poison event refuses to start;
 *   2. open a tail of the log from that checkpoint;
 *   3. poll up to batch_size records; for each: check its stream's version
 *      (a gap or a repeat stops the projector: never silently skipped),
 *      decode its value (JSON, or the Confluent wire format through the
 *      registry's serde), check the values its actions need; an event that
 *      fails any of these is a poison event: the callback refuses it, so the
 *      batch ends just before it and its checkpoint covers exactly the events
 *      before it;
 *   4. apply the batch and its checkpoint as one unit (sink_pg.c,
 *      sink_redis.c); a lost connection means: reconnect (bounded), read the
 *      checkpoint again (it tells whether the batch committed), reopen the
 *      tail from it; a poison event stops the projector with its position
 *      and reason.
 *
 * Version checks: the runner keeps the last version seen per stream. A
 * stream first seen after a start from the beginning of the log must start
 * at version 1; after a start from a checkpoint the first version seen of a
 * stream is taken as it comes (the checkpoint does not say what came before).
 *
 * Lag: the main thread reads each partition's end (cairn_log_partition_end)
 * as it goes and compares it with each projector's checkpoint positions;
 * lag is in the log's positions (bytes on the file backend, offsets on Kafka).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/serde.h"
#include "projections.h"

#define POLL_MS 200

struct vmap_entry {
    char *stream;
    uint64_t version;
};

/* stream -> last version seen (open addressing, linear probing). */
struct vmap {
    struct vmap_entry *slots;
    size_t cap, n;
};

struct proj {
    cairn__pj_spec_t *spec;
    const cairn__pj_run_opts_t *o;
    cairn_log_t *log;
    cairn_serde_t *serde;
    atomic_int *quit;
    int npart;
    pthread_t th;
    int started;

    pthread_mutex_t mu; /* guards the progress fields below */
    uint64_t events;
    uint64_t pos[CAIRN__PJ_MAX_PARTITIONS];
    int caught_up, failed, done;
    char error[sizeof(((cairn_error_t *)0)->text) + 64];
    cairn_error_t err;

    /* the thread's own */
    cairn__pj_sink_t *sink;
    cairn_tail_t *tail;
    cairn__pj_event_t *batch;
    size_t nbatch;
    uint64_t accepted; /* records accepted by the callback in this poll */
    struct vmap versions;
    struct vmap pending; /* versions seen in this poll, committed to `versions` after it */
    int from_start;
    uint64_t start_end[CAIRN__PJ_MAX_PARTITIONS]; /* the log's end when it started */
    int poison;                                   /* the callback refused a record as poison */
    int stalled; /* the callback refused a record for a retriable reason */
    cairn_error_t cb_err;
};

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- version map ---------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct vmap_entry *vmap_find(struct vmap *m, const char *stream)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash_str(stream) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slots[i].stream)
            return NULL;
        if (!strcmp(m->slots[i].stream, stream))
            return &m->slots[i];
    }
}

static cairn_rc_t vmap_put(struct vmap *m, const char *stream, uint64_t version)
{
    struct vmap_entry *e = vmap_find(m, stream);
    if (e) {
        e->version = version;
        return CAIRN_OK;
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        struct vmap_entry *slots = cairn__calloc(cap, sizeof *slots);
        if (!slots)
            return CAIRN_E_NOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].stream)
                continue;
            size_t j = hash_str(m->slots[i].stream) & (cap - 1);
            while (slots[j].stream)
                j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        cairn__free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    char *copy = cairn__strdup(stream);
    if (!copy)
        return CAIRN_E_NOMEM;
    size_t j = hash_str(stream) & (m->cap - 1);
    while (m->slots[j].stream)
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = (struct vmap_entry){copy, version};
    m->n++;
    return CAIRN_OK;
}

static void vmap_clear(struct vmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        cairn__free(m->slots[i].stream);
    cairn__free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- one record ------------------------------------------------------------ */

static const cairn_header_t *header(const cairn_record_t *r, const char *name)
{
    for (size_t i = 0; i < r->header_count; i++)
        if (!strcmp(r->headers[i].name, name))
            return &r->headers[i];
    return NULL;
}

/* Checks that every source of the event's actions yields a usable value. */
static cairn_rc_t
check_event(const cairn__pj_spec_t *spec, const cairn__pj_event_t *ev, cairn_error_t *err)
{
    cairn_buf_t b;
    cairn_rc_t rc = CAIRN_OK;
    const cairn__pj_handler_t *h = ev->handler;
    cairn_buf_init(&b, 16u << 20);
    for (size_t j = 0; j < h->nactions && rc == CAIRN_OK; j++) {
        const cairn__pj_action_t *a = &h->actions[j];
        for (size_t k = 0; k < a->nassigns && rc == CAIRN_OK; k++) {
            int is_null = 0;
            cairn_buf_reset(&b);
            rc = cairn__pj_src_text(&a->assigns[k].src, ev, &b, &is_null, err);
            if (rc != CAIRN_OK)
                break;
            int key =
                spec->sink == CAIRN__PJ_SINK_POSTGRES && spec->columns[a->assigns[k].column].key;
            if (is_null && (key || spec->sink == CAIRN__PJ_SINK_REDIS))
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, a->where, "%s: a null value",
                                      a->where);
        }
        if (rc != CAIRN_OK)
            break;
        if (a->key.n) {
            cairn_buf_reset(&b);
            rc = cairn__pj_tmpl_text(&a->key, ev, &b, err);
        }
        if (rc == CAIRN_OK && a->member.n) {
            cairn_buf_reset(&b);
            rc = cairn__pj_tmpl_text(&a->member, ev, &b, err);
        }
        if (rc == CAIRN_OK && a->value.kind) {
            int is_null = 0;
            cairn_buf_reset(&b);
            rc = cairn__pj_src_text(&a->value, ev, &b, &is_null, err);
            if (rc == CAIRN_OK && is_null)
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, a->where, "%s: a null value",
                                      a->where);
            if (rc == CAIRN_OK && (a->op == CAIRN__PJ_R_INCRBY || a->op == CAIRN__PJ_R_HINCRBY ||
                                   a->op == CAIRN__PJ_R_ZADD)) {
                char *end;
                const char *t = b.data ? b.data : "";
                errno = 0;
                if (a->op == CAIRN__PJ_R_ZADD)
                    (void)strtod(t, &end);
                else
                    (void)strtoll(t, &end, 10);
                if (!*t || *end || errno)
                    rc = cairn__error_set(err, CAIRN_E_INVALID, 0, a->where, "%s: '%s' is not %s",
                                          a->where, t,
                                          a->op == CAIRN__PJ_R_ZADD ? "a number" : "an integer");
            }
        }
    }
    cairn_buf_release(&b);
    return rc;
}

CAIRN_PRINTF(3, 4)
static int refuse(struct proj *p, const cairn_record_t *r, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    p->poison = 1;
    cairn__error_set(&p->cb_err, CAIRN_E_INVALID, 0, r->stream,
                     "projector '%s' stopped on a poison event at partition %d position %" PRIu64
                     " (stream '%s' version %" PRIu64 "): %s",
                     p->spec->name, (int)r->partition, r->position, r->stream, r->version, why);
    return 1;
}

static int on_record(void *opaque, const cairn_record_t *r)
{
    struct proj *p = opaque;
    const cairn_header_t *th = header(r, "cairn.type");
    char type[256] = "";
    cairn__pj_event_t ev;
    cairn_error_t e = {0};
    json_t *value = NULL;

    if (th)
        snprintf(type, sizeof type, "%.*s", (int)(th->value_len < 255 ? th->value_len : 255),
                 (const char *)th->value);
    /* The stream's version: the next one, never a gap or a repeat. */
    struct vmap_entry *seen = vmap_find(&p->pending, r->stream);
    if (!seen)
        seen = vmap_find(&p->versions, r->stream);
    if (seen && r->version != seen->version + 1)
        return refuse(p, r, "%s in stream '%s': version %" PRIu64 " after %" PRIu64,
                      r->version <= seen->version ? "a repeat" : "a gap", r->stream, r->version,
                      seen->version);
    if (!seen && p->from_start && r->version != 1)
        return refuse(p, r, "a gap in stream '%s': its first record is version %" PRIu64, r->stream,
                      r->version);

    const cairn__pj_handler_t *h = cairn__pj_spec_handler(p->spec, th ? type : NULL);
    if (h) {
        const unsigned char *v = r->value;
        int wire = p->o->values == CAIRN__PJ_VALUES_WIRE ||
                   (p->o->values == CAIRN__PJ_VALUES_AUTO && r->value_len >= 5 && v[0] == 0);
        if (wire) {
            if (!p->serde)
                return refuse(p, r, "a wire-format value, but no --registry to decode it");
            cairn_rc_t rc =
                cairn_serde_decode(p->serde, r->value, r->value_len, NULL, &value, NULL, &e);
            if (rc != CAIRN_OK) {
                if (e.flags & CAIRN_ERR_RETRIABLE) {
                    p->stalled = 1;
                    cairn__error_set(&p->cb_err, rc, CAIRN_ERR_RETRIABLE, r->stream,
                                     "projector '%s': cannot decode the event at partition %d "
                                     "position %" PRIu64 ": %s",
                                     p->spec->name, (int)r->partition, r->position, e.text);
                    return 1;
                }
                return refuse(p, r, "cannot decode its value: %s", e.text);
            }
        } else {
            json_error_t je;
            value = json_loadb(r->value, r->value_len, JSON_DECODE_ANY, &je);
            if (!value)
                return refuse(p, r, "its value is not JSON: %s", je.text);
        }
        ev = (cairn__pj_event_t){.handler = h,
                                 .value = value,
                                 .stream = (char *)(uintptr_t)r->stream,
                                 .type = type,
                                 .version = r->version,
                                 .position = r->position,
                                 .timestamp_ms = r->timestamp_ms,
                                 .partition = r->partition,
                                 .replaying = p->from_start && r->partition >= 0 &&
                                              r->partition < p->npart &&
                                              r->position < p->start_end[r->partition]};
        if (check_event(p->spec, &ev, &e) != CAIRN_OK) {
            json_decref(value);
            return refuse(p, r, "event type '%s': %s", type, e.text);
        }
        ev.stream = cairn__strdup(r->stream);
        ev.type = cairn__strdup(type);
        if (!ev.stream || !ev.type) {
            cairn__free(ev.stream);
            cairn__free(ev.type);
            json_decref(value);
            p->stalled = 1;
            cairn__error_set(&p->cb_err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            return 1;
        }
        p->batch[p->nbatch++] = ev;
    }
    if (vmap_put(&p->pending, r->stream, r->version) != CAIRN_OK) {
        p->stalled = 1;
        cairn__error_set(&p->cb_err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        if (h) {
            p->nbatch--;
            cairn__free(p->batch[p->nbatch].stream);
            cairn__free(p->batch[p->nbatch].type);
            json_decref(p->batch[p->nbatch].value);
        }
        return 1;
    }
    p->accepted++;
    return 0;
}

static void batch_clear(struct proj *p)
{
    for (size_t i = 0; i < p->nbatch; i++) {
        json_decref(p->batch[i].value);
        cairn__free(p->batch[i].stream);
        cairn__free(p->batch[i].type);
    }
    p->nbatch = 0;
    p->accepted = 0;
}

static void pending_commit(struct proj *p)
{
    for (size_t i = 0; i < p->pending.cap; i++)
        if (p->pending.slots[i].stream)
            (void)vmap_put(&p->versions, p->pending.slots[i].stream, p->pending.slots[i].version);
    vmap_clear(&p->pending);
}

/* ---- one projector's thread ----------------------------------------------- */

static void set_failed(struct proj *p, const cairn_error_t *e)
{
    pthread_mutex_lock(&p->mu);
    p->failed = 1;
    p->err = *e;
    if (!p->err.code)
        p->err.code = CAIRN_E_INTERNAL;
    snprintf(p->error, sizeof p->error, "%s", e->text[0] ? e->text : cairn_rc_str(e->code));
    pthread_mutex_unlock(&p->mu);
}

static void publish(struct proj *p, const char *cp, uint64_t events)
{
    uint64_t pos[CAIRN__PJ_MAX_PARTITIONS];
    if (cairn__pj_checkpoint_positions(cp, pos, p->npart, NULL) != CAIRN_OK)
        return;
    pthread_mutex_lock(&p->mu);
    memcpy(p->pos, pos, sizeof pos[0] * (size_t)p->npart);
    p->events = events;
    pthread_mutex_unlock(&p->mu);
}

/* Connects the sink, reads the state, opens the tail from it. */
static cairn_rc_t start(struct proj *p, cairn__pj_state_t *st, cairn_error_t *err)
{
    cairn_rc_t rc;
    cairn_tail_close(p->tail);
    p->tail = NULL;
    if (!p->sink) {
        rc = cairn__pj_sink_open(p->spec, NULL, &p->o->retry, &p->sink, err);
        if (rc != CAIRN_OK)
            return rc;
    }
    rc = cairn__pj_sink_state(p->sink, st, err);
    if (rc != CAIRN_OK)
        return rc;
    if (st->poison[0] && p->spec->sink == CAIRN__PJ_SINK_REDIS)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, p->spec->name,
                                "projector '%s' stopped on a poison event and its redis read "
                                "model holds part of a batch; 'cairn projections reset %s' and "
                                "run it again (%s)",
                                p->spec->name, p->spec->name, st->poison);
    rc = cairn_tail_open(p->log, st->checkpoint, &p->tail, err);
    if (rc != CAIRN_OK)
        return rc;
    p->from_start = st->checkpoint[0] == '\0';
    for (int i = 0; i < p->npart; i++)
        p->start_end[i] = cairn_log_partition_end(p->log, i);
    vmap_clear(&p->versions);
    vmap_clear(&p->pending);
    publish(p, st->checkpoint, st->events);
    cairn__log(CAIRN_LOG_INFO, "projections", "projector '%s' starts at checkpoint '%s'",
               p->spec->name, st->checkpoint[0] ? st->checkpoint : "(start)");
    return CAIRN_OK;
}

/* After a lost connection: reconnect (bounded) and resume from the sink's checkpoint. */
static cairn_rc_t
recover(struct proj *p, cairn__pj_state_t *st, uint64_t *events, cairn_error_t *err)
{
    cairn__log(CAIRN_LOG_WARNING, "projections", "projector '%s': %s; reconnecting", p->spec->name,
               err->text);
    cairn__pj_sink_close(p->sink);
    p->sink = NULL;
    cairn_error_t e = {0};
    cairn_rc_t rc = start(p, st, &e);
    if (rc != CAIRN_OK) {
        *err = e;
        return rc;
    }
    *events = st->events;
    memset(err, 0, sizeof *err);
    return CAIRN_OK;
}

static int caught_up(struct proj *p)
{
    int up = 1;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->npart && up; i++)
        up = p->pos[i] >= cairn_log_partition_end(p->log, i);
    pthread_mutex_unlock(&p->mu);
    return up;
}

static void *proj_main(void *arg)
{
    struct proj *p = arg;
    cairn__pj_state_t *st = cairn__calloc(1, sizeof *st);
    cairn_error_t err = {0};
    cairn_rc_t rc;
    uint64_t events = 0;
    char cp[CAIRN_CHECKPOINT_MAX];
    int stalls = 0;

    p->batch = cairn__calloc(p->spec->batch_size, sizeof *p->batch);
    if (!st || !p->batch) {
        rc = cairn__error_set(&err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    if ((rc = start(p, st, &err)) != CAIRN_OK)
        goto out;
    events = st->events;
    while (!atomic_load(p->quit)) {
        size_t delivered = 0;
        p->poison = p->stalled = 0;
        memset(&p->cb_err, 0, sizeof p->cb_err);
        rc = cairn_tail_poll(p->tail, POLL_MS, p->spec->batch_size, on_record, p, &delivered, &err);
        if (rc != CAIRN_OK && rc != CAIRN_AGAIN) {
            batch_clear(p);
            vmap_clear(&p->pending);
            goto out;
        }
        rc = CAIRN_OK;
        if (p->accepted > 0) {
            long failed_at = -1;
            uint64_t n = p->accepted;
            if ((rc = cairn_tail_checkpoint(p->tail, cp, sizeof cp, &err)) != CAIRN_OK)
                goto out;
            rc = cairn__pj_sink_apply(p->sink, p->batch, p->nbatch, cp, events + n, &failed_at,
                                      &err);
            batch_clear(p);
            if (rc == CAIRN_E_UNAVAILABLE) {
                if ((rc = recover(p, st, &events, &err)) != CAIRN_OK)
                    goto out;
                continue;
            }
            if (rc != CAIRN_OK) {
                vmap_clear(&p->pending);
                cairn_error_t ignored = {0};
                if (p->sink)
                    (void)cairn__pj_sink_mark_poison(p->sink, err.text, &ignored);
                goto out;
            }
            events += n;
            pending_commit(p);
            publish(p, cp, events);
            stalls = 0;
        } else {
            batch_clear(p);
            vmap_clear(&p->pending);
        }
        if (p->poison) {
            cairn_error_t ignored = {0};
            err = p->cb_err;
            rc = err.code;
            (void)cairn__pj_sink_mark_poison(p->sink, err.text, &ignored);
            goto out;
        }
        if (p->stalled) {
            if (++stalls >= p->o->retry.attempts) {
                err = p->cb_err;
                rc = err.code;
                goto out;
            }
            nap_ms(p->o->retry.backoff_ms << (stalls - 1));
            continue;
        }
        if (delivered == 0 && caught_up(p)) {
            pthread_mutex_lock(&p->mu);
            p->caught_up = 1;
            pthread_mutex_unlock(&p->mu);
            if (p->o->exit_at_end)
                break;
        }
    }
    rc = CAIRN_OK;
out:
    if (rc != CAIRN_OK) {
        if (!err.code)
            err.code = rc;
        set_failed(p, &err);
    }
    cairn_tail_close(p->tail);
    p->tail = NULL;
    cairn__pj_sink_close(p->sink);
    p->sink = NULL;
    batch_clear(p);
    vmap_clear(&p->versions);
    vmap_clear(&p->pending);
    cairn__free(p->batch);
    cairn__free(st);
    pthread_mutex_lock(&p->mu);
    p->done = 1;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the main thread -------------------------------------------------------- */

static void report(struct proj *ps,
                   size_t n,
                   cairn_log_t *log,
                   cairn__pj_progress_t *pr,
                   uint64_t *last_events,
                   uint64_t *last_pos,
                   double dt,
                   const cairn__pj_run_opts_t *o,
                   int final)
{
    int npart = cairn_log_partition_count(log);
    uint64_t ends[CAIRN__PJ_MAX_PARTITIONS];
    for (int i = 0; i < npart && i < CAIRN__PJ_MAX_PARTITIONS; i++)
        ends[i] = cairn_log_partition_end(log, i);
    for (size_t k = 0; k < n; k++) {
        struct proj *p = &ps[k];
        cairn__pj_progress_t *x = &pr[k];
        pthread_mutex_lock(&p->mu);
        x->name = p->spec->name;
        x->events = p->events;
        x->processed = x->total = x->lag = 0;
        for (int i = 0; i < p->npart; i++) {
            x->processed += p->pos[i];
            x->total += ends[i];
            if (ends[i] > p->pos[i])
                x->lag += ends[i] - p->pos[i];
        }
        x->caught_up = p->caught_up && x->lag == 0;
        x->failed = p->failed;
        x->done = p->done;
        x->error = p->failed ? p->error : NULL;
        pthread_mutex_unlock(&p->mu);
        x->events_per_s = dt > 0 ? (double)(x->events - last_events[k]) / dt : 0;
        last_events[k] = x->events;
        double covered =
            dt > 0 && x->processed > last_pos[k] ? (double)(x->processed - last_pos[k]) / dt : 0;
        x->eta_s = x->lag == 0 ? 0 : covered > 0 ? (double)x->lag / covered : -1;
        last_pos[k] = x->processed;
    }
    if (o->progress_cb)
        o->progress_cb(o->progress_opaque, pr, n, final);
}

cairn_rc_t cairn__pj_run(cairn__pj_spec_t *const *specs,
                         size_t n,
                         const cairn__pj_run_opts_t *o,
                         cairn_error_t *err)
{
    cairn_log_t *log = NULL;
    cairn_registry_client_t *client = NULL;
    cairn_serde_t *serde = NULL;
    struct proj *ps = NULL;
    cairn__pj_progress_t *pr = NULL;
    uint64_t *last = NULL;
    atomic_int quit = 0;
    cairn_rc_t rc = CAIRN_OK;
    cairn__pj_run_opts_t opts = *o;
    int every = o->progress_ms > 0 ? o->progress_ms : 1000;

    if (opts.retry.attempts <= 0)
        opts.retry.attempts = 5;
    if (opts.retry.backoff_ms <= 0)
        opts.retry.backoff_ms = 200;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(specs[i]->name, specs[j]->name))
                return cairn__error_set(err, CAIRN_E_INVALID, 0, specs[i]->name,
                                        "two projectors named '%s' (%s and %s)", specs[i]->name,
                                        specs[j]->path, specs[i]->path);
    cairn_log_options_t lo = {.read_only = 1};
    if ((rc = cairn_log_open(o->log_url, &lo, &log, err)) != CAIRN_OK)
        goto out;
    if (cairn_log_partition_count(log) > CAIRN__PJ_MAX_PARTITIONS) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, o->log_url,
                              "the log has more than %d partitions", CAIRN__PJ_MAX_PARTITIONS);
        goto out;
    }
    if (o->registry_url) {
        cairn_registry_client_options_t co = {.url = o->registry_url};
        if ((rc = cairn_registry_client_new(&co, &client, err)) != CAIRN_OK ||
            (rc = cairn_serde_new(client, NULL, &serde, err)) != CAIRN_OK)
            goto out;
        for (size_t i = 0; i < n; i++)
            if ((rc = cairn__pj_spec_check_registry(specs[i], client, err)) != CAIRN_OK)
                goto out;
    }
    ps = cairn__calloc(n, sizeof *ps);
    pr = cairn__calloc(n, sizeof *pr);
    last = cairn__calloc(2 * n, sizeof *last);
    if (!ps || !pr || !last) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct proj *p = &ps[i];
        p->spec = specs[i];
        p->o = &opts;
        p->log = log;
        p->serde = serde;
        p->quit = &quit;
        p->npart = cairn_log_partition_count(log);
        pthread_mutex_init(&p->mu, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&ps[i].th, NULL, proj_main, &ps[i]) != 0) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot start a thread");
            atomic_store(&quit, 1);
            break;
        }
        ps[i].started = 1;
    }
    double t0 = mono_s(), tick = t0;
    while (rc == CAIRN_OK) {
        int all_done = 1;
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&ps[i].mu);
            all_done &= ps[i].done;
            pthread_mutex_unlock(&ps[i].mu);
        }
        if (all_done || (o->stop && *o->stop))
            break;
        nap_ms(20);
        double now = mono_s();
        if ((now - tick) * 1000 >= every) {
            report(ps, n, log, pr, last, last + n, now - tick, &opts, 0);
            tick = now;
        }
    }
    atomic_store(&quit, 1);
    for (size_t i = 0; i < n; i++)
        if (ps[i].started)
            pthread_join(ps[i].th, NULL);
    if (rc == CAIRN_OK) {
        double now = mono_s();
        report(ps, n, log, pr, last, last + n, now - tick, &opts, 1);
        for (size_t i = 0; i < n; i++) {
            if (ps[i].failed) {
                if (err && err->code == CAIRN_OK)
                    *err = ps[i].err;
                if (rc == CAIRN_OK)
                    rc = ps[i].err.code ? ps[i].err.code : CAIRN_E_INTERNAL;
            }
        }
    }
out:
    if (ps)
        for (size_t i = 0; i < n; i++)
            if (ps[i].spec) /* its mutex was initialised */
                pthread_mutex_destroy(&ps[i].mu);
    cairn__free(ps);
    cairn__free(pr);
    cairn__free(last);
    cairn_serde_destroy(serde);
    cairn_registry_client_destroy(client);
    cairn_log_close(log);
    return rc;
}
