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
 * Overlap. A poll that came back full (a replay, a backlog) with nothing
 * refused is sent to a sink that can split its apply (Redis: the batch's
 * MULTI ... EXEC; PostgreSQL: a set-based batch's BEGIN, COPY, statements and
 * COMMIT as one query) and left in flight while the next poll reads and
 * decodes (and the sink prepares it: PostgreSQL folds it); land() then
 * reads the outcome of the one in flight. Each batch is still one unit with
 * its own checkpoint, and it counts (events, published progress, a later
 * batch sent) only once its outcome was read and checked; when it failed,
 * whatever was decoded after it is dropped and the runner reconnects and
 * resumes from the sink's checkpoint, or stops, as for a batch applied at
 * once. Nothing else uses the connection while a batch is in flight: the
 * Redis generation check lands it first, and projectors that park dead
 * letters (from inside the poll, on the sink's connection) or short polls
 * (live batches, whose latency wants them landed at once) apply at once.
 *
 * Catching up (fold_allowed): short of the log's end seen at start, a sink
 * that folds (PostgreSQL) gets each event folded into its pending batch as
 * soon as it is decoded (cairn__pj_sink_fold, from on_record), the decoded
 * value freed at once, and the batch goes (fold_flush) after FOLD_MS of
 * records or at the end of what there is to read, overlapped as above with
 * the folding of the next. Memory is per key, not per event, and the
 * server's work one row per key per batch. An event that cannot be folded,
 * or a folded batch the server refuses, sends the runner back to the sink's
 * checkpoint, from where those events go the unfolded way (nofold_until),
 * which names a poison event.
 *
 * Version checks: the runner keeps the last version seen per stream. A
 * stream first seen after a start from the beginning of the log must start
 * at version 1; after a start from a checkpoint the first version seen of a
 * stream is taken as it comes (the checkpoint does not say what came before).
 *
 * Lag: the main thread reads each partition's end (cairn_log_partition_end)
 * as it goes and compares it with each projector's checkpoint positions;
 * lag is in the log's positions (bytes on the file backend, offsets on Kafka).
 *
 * Live and shadow. A live projector resolves the target its read model is
 * under (a Redis generation: shadow_redis.c) and names its connection
 * `cairn-pj:<name>`, so that a rebuild's swap can end it; it then reconnects
 * as after any lost connection and resumes from the swapped-in checkpoint.
 * A rebuild runs the same loop on the shadow target (opts.target), flags
 * every event `replaying` and stops once its lag is at most opts.swap_lag.
 *
 * Dead letters ("on_error": "park"): an event that cannot be decoded or
 * whose values the actions cannot use, or that the sink refuses while
 * applying nothing of its batch (PostgreSQL; Redis EXECABORT), is parked
 * (deadletter.c) and the batch goes on without it. Parking is idempotent
 * (keyed by partition and position), so a crash between parking and the
 * batch's commit parks the same event again and nothing else. A Redis EXEC
 * error leaves the batch partly applied with its checkpoint: the event is
 * parked saying so. Gaps and repeats of stream versions always stop the
 * projector: they are a fault of the log, not of one event.
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
#ifndef CATCHUP_BATCH /* -DCATCHUP_BATCH=n: for measuring other replay batch sizes */
#define CATCHUP_BATCH 20000
#endif
#define CATCHUP_FACTOR 40
#define CATCHUP_FROM   100
/* Catch-up folding (fold_allowed): records per poll, and when a folded
   batch is sent: at FOLD_ROWS keys, FOLD_EVENTS records or FOLD_MS of
   folding. The environment may set the poll and the time (fold_knob). */
#define FOLD_POLL   20000
#define FOLD_ROWS   262144
#define FOLD_EVENTS 4000000
#define FOLD_MS     250

struct vmap_entry {
    char *stream;
    uint64_t version;
    uint64_t hash; /* hash_str(stream): most probes end without a strcmp */
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
    uint64_t batches, folded; /* applied in this run */
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
    /* The batch sent to the sink and not yet finished (see land()). */
    cairn__pj_event_t *fly;
    size_t nfly;
    uint64_t fly_accepted;
    char fly_cp[CAIRN_CHECKPOINT_MAX];
    int inflight;
    int from_start;
    uint64_t start_end[CAIRN__PJ_MAX_PARTITIONS]; /* the log's end when it started */
    uint64_t parked;                              /* events parked in this run */
    int poison;                                   /* the callback refused a record as poison */
    int stalled; /* the callback refused a record for a retriable reason */
    cairn_error_t cb_err;
    /* Catch-up folding (fold_allowed): this poll folds each event into the
       sink's pending batch instead of keeping it in `batch`. */
    int folding;
    int fold_pending; /* the sink holds a folded batch of `accepted` records */
    int fold_refused; /* cairn__pj_sink_fold failed: fold_rc (the batch is gone) */
    cairn_rc_t fold_rc;
    size_t fold_rows;  /* keys in the pending batch */
    double fold_began; /* cairn__mono_s() of its first record */
    int fly_fold;      /* the batch in flight is a folded one */
    size_t fold_poll;  /* records per poll while folding */
    long fold_ms;      /* a folded batch goes after this long */
    /* No folding until the checkpoint passes these (a folded batch was refused). */
    uint64_t nofold_until[CAIRN__PJ_MAX_PARTITIONS];
};

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
    uint64_t h = hash_str(stream);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slots[i].stream)
            return NULL;
        if (m->slots[i].hash == h && !strcmp(m->slots[i].stream, stream))
            return &m->slots[i];
    }
}

static cairn_rc_t
vmap_put(struct vmap *m, const char *stream, uint64_t version, struct vmap_entry **out)
{
    struct vmap_entry *e = vmap_find(m, stream);
    if (e) {
        e->version = version;
        if (out)
            *out = e;
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
            size_t j = m->slots[i].hash & (cap - 1);
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
    uint64_t h = hash_str(stream);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].stream)
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = (struct vmap_entry){copy, version, h};
    m->n++;
    if (out)
        *out = &m->slots[j];
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

/*
 * Whether @p src certainly yields a usable value for @p ev without
 * rendering its text: a member that is there and not null (nor an empty
 * string when @p nonempty, as a key template's part; an integer when
 * @p integer). 0 means "not certain": check_event then renders it and
 * says what is wrong, if anything.
 */
static int
src_certain(const cairn__pj_src_t *src, const cairn__pj_event_t *ev, int nonempty, int integer)
{
    if (src->kind != CAIRN__PJ_SRC_POINTER)
        return 0;
    json_t *v = cairn__pj_pointer_get(ev->value, src->pointer);
    if (integer)
        return json_is_integer(v);
    if (!v || json_is_null(v))
        return 0;
    return !nonempty || !json_is_string(v) || json_string_length(v) > 0;
}

static int tmpl_certain(const cairn__pj_tmpl_t *t, const cairn__pj_event_t *ev)
{
    for (size_t i = 0; i < t->n; i++)
        if (!t->parts[i].literal && !src_certain(&t->parts[i].src, ev, 1, 0))
            return 0;
    return 1;
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
        /* The common case, all sources certain, renders nothing. */
        int certain = 1;
        for (size_t k = 0; k < a->nassigns && certain; k++)
            certain = src_certain(&a->assigns[k].src, ev, 0, 0);
        certain = certain && (!a->key.n || tmpl_certain(&a->key, ev)) &&
                  (!a->member.n || tmpl_certain(&a->member, ev)) &&
                  (!a->value.kind ||
                   src_certain(&a->value, ev, 0,
                               a->op == CAIRN__PJ_R_INCRBY || a->op == CAIRN__PJ_R_HINCRBY ||
                                   a->op == CAIRN__PJ_R_ZADD));
        if (certain)
            continue;
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

/* Parks record @p r (its decoded @p value, or its raw bytes) as a dead letter. */
static cairn_rc_t park(struct proj *p,
                       const cairn_record_t *r,
                       const char *type,
                       const json_t *value,
                       const char *why,
                       cairn_error_t *err)
{
    cairn__pj_dead_t d;
    memset(&d, 0, sizeof d);
    snprintf(d.id, sizeof d.id, "%d:%" PRIu64, (int)r->partition, r->position);
    d.partition = r->partition;
    d.position = r->position;
    snprintf(d.stream, sizeof d.stream, "%s", r->stream);
    d.version = r->version;
    snprintf(d.type, sizeof d.type, "%s", type);
    d.timestamp_ms = r->timestamp_ms;
    snprintf(d.reason, sizeof d.reason, "%s", why);
    if (value) {
        snprintf(d.format, sizeof d.format, "json");
        d.value = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    } else {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *v = r->value;
        snprintf(d.format, sizeof d.format, "raw");
        d.value = malloc(2 * r->value_len + 1);
        if (d.value) {
            for (size_t i = 0; i < r->value_len; i++) {
                d.value[2 * i] = hex[v[i] >> 4];
                d.value[2 * i + 1] = hex[v[i] & 15];
            }
            d.value[2 * r->value_len] = '\0';
        }
    }
    if (!d.value)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    cairn_rc_t rc = cairn__pj_dead_park(p->sink, &d, err);
    free(d.value);
    if (rc == CAIRN_OK) {
        p->parked++;
        cairn__log(CAIRN_LOG_WARNING, "projections",
                   "projector '%s' parked the event at partition %d position %" PRIu64
                   " (stream '%s' version %" PRIu64 "): %s",
                   p->spec->name, (int)r->partition, r->position, r->stream, r->version, why);
    }
    return rc;
}

/* A bad event: parked (and passed over) when the spec says "park", else poison. */
CAIRN_PRINTF(5, 6)
static int refuse_or_park(struct proj *p,
                          const cairn_record_t *r,
                          const char *type,
                          const json_t *value,
                          const char *fmt,
                          ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (!p->spec->on_error_park)
        return refuse(p, r, "%s", why);
    cairn_error_t e = {0};
    if (park(p, r, type, value, why, &e) != CAIRN_OK) {
        p->stalled = 1;
        p->cb_err = e;
        return 1;
    }
    if (vmap_put(&p->versions, r->stream, r->version, NULL) != CAIRN_OK) {
        p->stalled = 1;
        cairn__error_set(&p->cb_err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        return 1;
    }
    p->accepted++;
    return 0;
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
    struct vmap_entry *seen = vmap_find(&p->versions, r->stream);
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
                return refuse_or_park(p, r, type, NULL,
                                      "a wire-format value, but no --registry to decode it");
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
                return refuse_or_park(p, r, type, NULL, "cannot decode its value: %s", e.text);
            }
        } else {
            json_error_t je;
            value = json_loadb(r->value, r->value_len, JSON_DECODE_ANY, &je);
            if (!value)
                return refuse_or_park(p, r, type, NULL, "its value is not JSON: %s", je.text);
        }
        ev = (cairn__pj_event_t){.handler = h,
                                 .value = value,
                                 .stream = (char *)(uintptr_t)r->stream,
                                 .type = type,
                                 .version = r->version,
                                 .position = r->position,
                                 .timestamp_ms = r->timestamp_ms,
                                 .partition = r->partition,
                                 .replaying = p->o->target != NULL ||
                                              (p->from_start && r->partition >= 0 &&
                                               r->partition < p->npart &&
                                               r->position < p->start_end[r->partition])};
        if (check_event(p->spec, &ev, &e) != CAIRN_OK) {
            int stop = refuse_or_park(p, r, type, value, "event type '%s': %s", type, e.text);
            json_decref(value);
            return stop;
        }
    }
    /* The event's strings outlive the callback without a copy per event:
       the stream's name is the version map's (freed only after the batch),
       the type the handler's (equal to it). */
    if (seen)
        seen->version = r->version;
    else if (vmap_put(&p->versions, r->stream, r->version, &seen) != CAIRN_OK) {
        json_decref(value);
        p->stalled = 1;
        cairn__error_set(&p->cb_err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        return 1;
    }
    if (h) {
        ev.stream = seen->stream;
        ev.type = h->type;
        if (p->folding) {
            /* Folded at once; its value goes now. A failure drops the whole
               pending batch: the runner resumes from the sink's checkpoint
               (fold_refused), so the version map's state does not matter. */
            size_t rows = 0;
            cairn_rc_t frc = cairn__pj_sink_fold(p->sink, &ev, &rows, &e);
            json_decref(value);
            if (frc != CAIRN_OK) {
                p->fold_refused = 1;
                p->fold_rc = frc;
                if (r->partition >= 0 && r->partition < p->npart)
                    p->nofold_until[r->partition] = r->position + 1;
                return 1;
            }
            p->fold_rows = rows;
        } else
            p->batch[p->nbatch++] = ev;
    }
    p->accepted++;
    return 0;
}

static void batch_clear(struct proj *p)
{
    for (size_t i = 0; i < p->nbatch; i++)
        json_decref(p->batch[i].value);
    p->nbatch = 0;
    p->accepted = 0;
}

static void publish(struct proj *p, const char *cp, uint64_t events, int applied);

static void fly_clear(struct proj *p)
{
    for (size_t i = 0; i < p->nfly; i++)
        json_decref(p->fly[i].value);
    p->nfly = 0;
    p->fly_accepted = 0;
    p->inflight = 0;
    p->fly_fold = 0;
}

/*
 * CAIRN_PJ_FOLD_POLL (records per poll, 1..FOLD_POLL) and CAIRN_PJ_FOLD_MS
 * (0..60000) override the defaults: for measuring other sizes, and for
 * tests that want many small folded batches out of a small log. Anything
 * else in them is ignored with a WARNING.
 */
static long fold_knob(const char *name, long dflt, long lo, long hi)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        cairn__log(CAIRN_LOG_WARNING, "projections", "%s='%.32s' is not in %ld..%ld: ignored", name,
                   v, lo, hi);
        return dflt;
    }
    return n;
}

/* Drops the batch being folded in the sink, if any. */
static void fold_discard(struct proj *p)
{
    if (p->fold_pending || p->folding)
        cairn__pj_sink_fold_drop(p->sink);
    p->fold_pending = p->folding = p->fold_refused = 0;
    p->fold_rows = 0;
}

/* No folding until the checkpoint passes @p cp: its batch goes the other way. */
static void nofold_until(struct proj *p, const char *cp)
{
    uint64_t pos[CAIRN__PJ_MAX_PARTITIONS];
    if (cairn__pj_checkpoint_positions(cp, pos, p->npart, NULL) != CAIRN_OK)
        return;
    for (int i = 0; i < p->npart; i++)
        if (pos[i] > p->nofold_until[i])
            p->nofold_until[i] = pos[i];
}

/*
 * Finishes the batch in flight, if any: reads and checks the sink's outcome
 * and only then counts and publishes it (CAIRN_OK), so progress never runs
 * ahead of what the sink applied. On an error the batch is dropped: the
 * caller reconnects and resumes from the sink's checkpoint, or stops. A
 * landed batch's values stay in p->fly until the next batch is sent (they
 * are freed while the sink works on it) or fly_clear.
 */
static cairn_rc_t land(struct proj *p, uint64_t *events, cairn_error_t *err)
{
    if (!p->inflight)
        return CAIRN_OK;
    long failed_at = -1;
    cairn_rc_t rc = cairn__pj_sink_finish(p->sink, p->fly, p->nfly, &failed_at, err);
    p->inflight = 0;
    if (rc == CAIRN_OK) {
        *events += p->fly_accepted;
        publish(p, p->fly_cp, *events, p->fly_fold ? 2 : 1);
    } else {
        if (rc == CAIRN_AGAIN && p->fly_fold) {
            /* The server refused a folded batch (nothing applied): its events
               go again the way that names a poison event. */
            nofold_until(p, p->fly_cp);
            cairn__error_set(err, CAIRN_AGAIN, 0, p->spec->name,
                             "a folded replay batch was refused; applying its events batch by "
                             "batch");
        }
        fly_clear(p);
    }
    return rc;
}

/* ---- one projector's thread ----------------------------------------------- */

/*
 * The largest batch of a replay from the log's start (a rebuild or a new
 * projector, up to the log's end seen at start): for PostgreSQL
 * CATCHUP_FACTOR times the spec's batch_size, at most CATCHUP_BATCH (the
 * default batch_size, 500, gives 20,000). A set-based batch's cost is
 * mostly per batch (a transaction, a commit's fsync, a few statements) and
 * per key it touches, so a replay goes several times faster in large
 * batches. A batch_size under CATCHUP_FROM is taken as a deliberate choice
 * of small transactions and kept. Otherwise a poll takes
 * batch_size records at most, so live batches and their latency stay small.
 */
static size_t batch_max(const struct proj *p)
{
    size_t n = p->spec->batch_size;
    if (p->spec->sink == CAIRN__PJ_SINK_POSTGRES && n >= CATCHUP_FROM && n < CATCHUP_BATCH)
        n = n * CATCHUP_FACTOR < CATCHUP_BATCH ? n * CATCHUP_FACTOR : CATCHUP_BATCH;
    return n;
}

/*
 * Whether the projector is catching up: short of the log's end seen when it
 * started (a replay from the log's start, a rebuild, or a backlog after a
 * stop). Catching up takes large batches (batch_max, fold_allowed): the
 * events are already there, and a large batch costs less per event.
 */
static int catching_up(const struct proj *p)
{
    for (int i = 0; i < p->npart; i++)
        if (p->pos[i] < p->start_end[i])
            return 1;
    return 0;
}

/*
 * Whether this poll folds its events into the sink (cairn__pj_sink_fold)
 * rather than keeping them for one batch: catching up, into a sink that
 * folds (PostgreSQL), with a batch_size of CATCHUP_FROM or more (a smaller
 * one asks for small transactions: batch_max), no dead letters (they park
 * from inside the poll), and not over a folded batch that was refused. A
 * folded batch then spans up to FOLD_MS of records (FOLD_ROWS keys,
 * FOLD_EVENTS records at most): the server's work is one row per key per
 * batch rather than one per event, and no more decoded values are alive
 * than one event's.
 */
static int fold_allowed(const struct proj *p)
{
    if (!catching_up(p) || p->spec->batch_size < CATCHUP_FROM || p->spec->on_error_park ||
        !cairn__pj_sink_can_fold(p->sink))
        return 0;
    for (int i = 0; i < p->npart; i++)
        if (p->pos[i] < p->nofold_until[i])
            return 0;
    return 1;
}

/*
 * Sends the pending folded batch with the tail's checkpoint @p cp, after
 * landing the one in flight; with @p end (a short poll, a refused record, quitting)
 * lands it at once too, as a short poll's batch is.
 */
static cairn_rc_t
fold_flush(struct proj *p, const char *cp, uint64_t *events, int end, cairn_error_t *err)
{
    cairn_rc_t rc = land(p, events, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = cairn__pj_sink_send_fold(p->sink, cp, *events + p->accepted, err);
    p->fold_pending = 0;
    p->fold_rows = 0;
    if (rc == CAIRN_AGAIN) {
        nofold_until(p, cp);
        return cairn__error_set(err, CAIRN_AGAIN, 0, p->spec->name,
                                "a folded replay batch cannot be sent; applying its events batch "
                                "by batch");
    }
    if (rc != CAIRN_OK)
        return rc;
    p->fly_accepted = p->accepted;
    p->nfly = 0;
    snprintf(p->fly_cp, sizeof p->fly_cp, "%s", cp);
    p->inflight = 1;
    p->fly_fold = 1;
    p->accepted = 0;
    return end ? land(p, events, err) : CAIRN_OK;
}

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

/*
 * Publishes the projector's checkpoint and event count: @p applied is 0 for
 * the state read at start, 1 after a batch was applied, 2 after a folded one.
 */
static void publish(struct proj *p, const char *cp, uint64_t events, int applied)
{
    uint64_t pos[CAIRN__PJ_MAX_PARTITIONS];
    if (cairn__pj_checkpoint_positions(cp, pos, p->npart, NULL) != CAIRN_OK)
        return;
    pthread_mutex_lock(&p->mu);
    memcpy(p->pos, pos, sizeof pos[0] * (size_t)p->npart);
    p->events = events;
    p->batches += applied != 0;
    p->folded += applied == 2;
    pthread_mutex_unlock(&p->mu);
}

/* Connects the sink, reads the state, opens the tail from it. */
static cairn_rc_t start(struct proj *p, cairn__pj_state_t *st, cairn_error_t *err)
{
    cairn_rc_t rc;
    cairn_tail_close(p->tail);
    p->tail = NULL;
    for (int attempt = 1; !p->sink; attempt++) {
        char live[64] = "";
        cairn_error_t e = {0};
        if (!p->o->target &&
            (rc = cairn__pj_live_target(p->spec, &p->o->retry, live, sizeof live, err)) != CAIRN_OK)
            return rc;
        rc = cairn__pj_sink_open(p->spec, p->o->target ? p->o->target : live, &p->o->retry,
                                 &p->sink, err);
        if (rc != CAIRN_OK)
            return rc;
        if (p->o->target || (rc = cairn__pj_sink_tag_live(p->sink, &e)) == CAIRN_OK)
            break;
        /* The live copy was swapped while we connected: connect again. */
        cairn__pj_sink_close(p->sink);
        p->sink = NULL;
        if (rc != CAIRN_E_UNAVAILABLE || attempt >= 5) {
            if (err)
                *err = e;
            return rc;
        }
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
    publish(p, st->checkpoint, st->events, 0);
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

/* Log positions between the projector's checkpoint and the log's end. */
static uint64_t lag(struct proj *p)
{
    uint64_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->npart; i++) {
        uint64_t end = cairn_log_partition_end(p->log, i);
        n += end > p->pos[i] ? end - p->pos[i] : 0;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Parks batch event @p i (the sink refused it) and takes it out of the batch. */
static cairn_rc_t park_batch_event(struct proj *p, size_t i, const char *why, cairn_error_t *err)
{
    cairn__pj_event_t *ev = &p->batch[i];
    cairn_record_t r;
    memset(&r, 0, sizeof r);
    r.stream = ev->stream;
    r.partition = ev->partition;
    r.position = ev->position;
    r.version = ev->version;
    r.timestamp_ms = ev->timestamp_ms;
    cairn_rc_t rc = park(p, &r, ev->type, ev->value, why, err);
    if (rc != CAIRN_OK)
        return rc;
    json_decref(ev->value); /* stream and type are borrowed (see on_record) */
    memmove(ev, ev + 1, (p->nbatch - i - 1) * sizeof *ev);
    p->nbatch--;
    return CAIRN_OK;
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

    size_t bmax = batch_max(p);
    p->batch = cairn__calloc(bmax, sizeof *p->batch);
    p->fly = cairn__calloc(bmax, sizeof *p->fly);
    if (!st || !p->batch || !p->fly) {
        rc = cairn__error_set(&err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    if ((rc = start(p, st, &err)) != CAIRN_OK)
        goto out;
    events = st->events;
    double gen_checked = cairn__mono_s();
    while (!atomic_load(p->quit)) {
        size_t delivered = 0, limit = catching_up(p) ? bmax : p->spec->batch_size;
        if (!p->o->target && p->spec->sink == CAIRN__PJ_SINK_REDIS &&
            cairn__mono_s() - gen_checked >= 1) {
            /* A flip whose kill of our connection never came (the rebuild died
               in between): notice it within a second and move over. */
            gen_checked = cairn__mono_s();
            /* The check uses the connection: the batch in flight lands first. */
            if ((rc = land(p, &events, &err)) != CAIRN_OK)
                goto batch_failed;
            if ((rc = cairn__pj_redis_check_generation(p->sink, &err)) == CAIRN_E_UNAVAILABLE) {
                if ((rc = recover(p, st, &events, &err)) != CAIRN_OK)
                    goto out;
                continue;
            }
            memset(&err, 0, sizeof err);
        }
        p->poison = p->stalled = 0;
        memset(&p->cb_err, 0, sizeof p->cb_err);
        if (!p->fold_pending && (p->folding = fold_allowed(p)) != 0)
            limit = p->fold_poll;
        rc = cairn_tail_poll(p->tail, POLL_MS, limit, on_record, p, &delivered, &err);
        if (rc != CAIRN_OK && rc != CAIRN_AGAIN) {
            batch_clear(p);
            goto out;
        }
        if (p->folding) {
            /* Catch-up folding: the events of this poll are in the sink's
               pending batch, which goes once it is large or old enough, or
               at the end of what there is to read. */
            if (p->fold_refused) {
                if (p->fold_rc != CAIRN_AGAIN) {
                    fold_discard(p);
                    rc = cairn__error_set(&err, p->fold_rc, 0, NULL, "out of memory");
                    goto out;
                }
                /* An event that cannot be folded: the batch goes the other way. */
                if ((rc = land(p, &events, &err)) != CAIRN_OK)
                    goto batch_failed;
                rc = cairn__error_set(&err, CAIRN_AGAIN, 0, p->spec->name,
                                      "an event cannot be folded into a replay batch; applying "
                                      "its batch's events batch by batch");
                goto batch_failed;
            }
            if (p->accepted > 0 && !p->fold_pending) {
                p->fold_pending = 1;
                p->fold_began = cairn__mono_s();
            }
            int end = delivered < limit || p->poison || p->stalled || atomic_load(p->quit);
            if (p->fold_pending &&
                (end || p->fold_rows >= FOLD_ROWS || p->accepted >= FOLD_EVENTS ||
                 (cairn__mono_s() - p->fold_began) * 1000 >= (double)p->fold_ms)) {
                if ((rc = cairn_tail_checkpoint(p->tail, cp, sizeof cp, &err)) != CAIRN_OK) {
                    fold_discard(p);
                    goto out;
                }
                if ((rc = fold_flush(p, cp, &events, end, &err)) != CAIRN_OK)
                    goto batch_failed;
            } else if (end && (rc = land(p, &events, &err)) != CAIRN_OK) {
                /* Nothing new to send, but the batch in flight ends here. */
                goto batch_failed;
            }
            if (p->fold_pending)
                continue; /* more records for this batch */
            goto checks;
        }
        int overlap = p->accepted > 0 && cairn__pj_sink_can_send(p->sink) &&
                      !p->spec->on_error_park && !p->poison && !p->stalled && delivered >= limit;
        if (p->accepted > 0 &&
            (rc = cairn_tail_checkpoint(p->tail, cp, sizeof cp, &err)) != CAIRN_OK) {
            batch_clear(p);
            goto out;
        }
        /* This poll decoded its batch, and the sink may prepare it (e.g. fold
           it), while the sink's server ran the previous one. */
        if (overlap &&
            (rc = cairn__pj_sink_prepare(p->sink, p->batch, p->nbatch, cp,
                                         events + (p->inflight ? p->fly_accepted : 0) + p->accepted,
                                         &err)) != CAIRN_OK) {
            batch_clear(p);
            goto out;
        }
        if ((rc = land(p, &events, &err)) != CAIRN_OK)
            goto batch_failed;
        if (p->accepted > 0) {
            long failed_at = -1;
            uint64_t n = p->accepted;
            /*
             * Overlap: a full poll with nothing refused is sent and left in
             * flight while the next poll decodes; land() reads its outcome
             * before anything else uses the connection, counts it or sends
             * the next batch. Not with dead letters, which park on the
             * connection from inside the poll, nor for a short poll (live
             * batches land at once, as their latency wants).
             */
            if (overlap) {
                rc = cairn__pj_sink_send(p->sink, p->batch, p->nbatch, cp, events + n, &failed_at,
                                         &err);
                if (rc != CAIRN_OK) {
                    batch_clear(p);
                    goto batch_failed;
                }
                cairn__pj_event_t *t = p->fly;
                size_t landed = p->nfly;
                p->fly = p->batch;
                p->batch = t;
                p->nfly = p->nbatch;
                p->fly_accepted = n;
                snprintf(p->fly_cp, sizeof p->fly_cp, "%s", cp);
                p->inflight = 1;
                /* The batch landed before this one: its values go while the sink works. */
                for (size_t i = 0; i < landed; i++)
                    json_decref(p->batch[i].value);
                p->nbatch = 0;
                p->accepted = 0;
                stalls = 0;
                goto checks;
            }
            fly_clear(p);
            rc = cairn__pj_sink_apply(p->sink, p->batch, p->nbatch, cp, events + n, &failed_at,
                                      &err);
            while (rc == CAIRN_E_INVALID && p->spec->on_error_park && failed_at >= 0 &&
                   (size_t)failed_at < p->nbatch) {
                /* Park the refused event; apply the rest again unless it was applied. */
                int partly = strstr(err.text, "nothing of the batch was applied") == NULL;
                if ((rc = park_batch_event(p, (size_t)failed_at, err.text, &err)) != CAIRN_OK)
                    break;
                memset(&err, 0, sizeof err);
                if (partly)
                    break; /* Redis ran the rest of the batch and its checkpoint */
                failed_at = -1;
                rc = cairn__pj_sink_apply(p->sink, p->batch, p->nbatch, cp, events + n, &failed_at,
                                          &err);
            }
            batch_clear(p);
            if (rc != CAIRN_OK)
                goto batch_failed;
            events += n;
            publish(p, cp, events, 1);
            stalls = 0;
        } else {
            batch_clear(p);
            fly_clear(p);
        }
    checks:
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
            cairn__sleep_ms(p->o->retry.backoff_ms << (stalls - 1));
            continue;
        }
        if (p->o->target && lag(p) <= p->o->swap_lag)
            break; /* a rebuild's shadow is close enough to the end to be swapped in */
        /* A short poll that reached the end needs no empty poll (POLL_MS) to say so. */
        if ((delivered == 0 || (p->o->exit_at_end && delivered < limit)) && caught_up(p)) {
            pthread_mutex_lock(&p->mu);
            p->caught_up = 1;
            pthread_mutex_unlock(&p->mu);
            if (p->o->exit_at_end)
                break;
        }
        continue;
    batch_failed:
        /* A batch the sink did not apply (the one in flight or this poll's):
           whatever was decoded after it goes; reconnect or stop. A folded
           batch refused (CAIRN_AGAIN) resumes from the checkpoint the same
           way, its events then going batch by batch (nofold_until). */
        batch_clear(p);
        fly_clear(p);
        fold_discard(p);
        if (rc == CAIRN_E_UNAVAILABLE || rc == CAIRN_AGAIN) {
            if ((rc = recover(p, st, &events, &err)) != CAIRN_OK)
                goto out;
            continue;
        }
        {
            cairn_error_t ignored = {0};
            if (p->sink)
                (void)cairn__pj_sink_mark_poison(p->sink, err.text, &ignored);
        }
        goto out;
    }
    /* The batch still in flight lands before the projector reports its end. */
    if ((rc = land(p, &events, &err)) != CAIRN_OK) {
        if (rc != CAIRN_E_UNAVAILABLE && p->sink) {
            cairn_error_t ignored = {0};
            (void)cairn__pj_sink_mark_poison(p->sink, err.text, &ignored);
        }
        goto out;
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
    fly_clear(p);
    vmap_clear(&p->versions);
    cairn__free(p->batch);
    cairn__free(p->fly);
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
        x->batches = p->batches;
        x->folded = p->folded;
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
    long fold_poll = fold_knob("CAIRN_PJ_FOLD_POLL", FOLD_POLL, 1, FOLD_POLL);
    long fold_ms = fold_knob("CAIRN_PJ_FOLD_MS", FOLD_MS, 0, 60000);
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
        p->fold_poll = (size_t)fold_poll;
        p->fold_ms = fold_ms;
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
    double t0 = cairn__mono_s(), tick = t0;
    while (rc == CAIRN_OK) {
        int all_done = 1;
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&ps[i].mu);
            all_done &= ps[i].done;
            pthread_mutex_unlock(&ps[i].mu);
        }
        if (all_done || (o->stop && *o->stop))
            break;
        cairn__sleep_ms(20);
        double now = cairn__mono_s();
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
        double now = cairn__mono_s();
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
