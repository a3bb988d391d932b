/* SPDX-License-Identifier: MIT */
/*
 * handle.c - cairn_handle(): one command, start to end.
 *
 *   validate the command against its type's registered schema (every
 *   violation with its path; nothing else happens when one is found)
 *   lock the stream's stripe (one command per stream at a time in-process)
 *   loop:
 *     load (cache, else snapshot + events)
 *     command id in the stream's recent window -> the earlier result
 *     decide -> events, or a domain rejection (nothing appended); a
 *       rejection or empty decision made on a cached state is re-made on a
 *       fresh load when the log's version of the stream has moved on
 *     encode each event (wire format) with headers cairn.type, cairn.id,
 *       cairn.version (schema id), cairn.correlation, cairn.causation
 *       (= command id), cairn.time
 *     append with the loaded version as the expected version
 *     ok: apply the events to the loaded state, remember the command id,
 *         maybe snapshot, put the entry back in the cache, return
 *     version conflict: drop the entry, reload and decide again, at most
 *         max_conflict_retries times (from the second on after a random
 *         sleep of up to 2^n ms, n <= 6), then CONFLICT
 *     Kafka CAIRN_E_CONFLICT (fenced, or the partition held by another
 *         writer): drop the entry and retry after a short, doubling sleep
 *         for up to twice the claim hold + 1 s, then return it (RETRIABLE)
 *     any other append error: drop the entry, return it with the log's
 *         flags (FATAL for a failed fsync, OUTCOME_UNKNOWN for an
 *         unconfirmed Kafka append: the caller retries with the same
 *         command id; the Kafka backend has given the partition up, so
 *         the retry reloads what the log accepted and its append goes
 *         through a new claim that decides the unconfirmed append for
 *         good: eventstore/README.md, "Outcome unknown")
 *
 * Errors reach the caller's cairn_error_t only at the end, from a local one
 * per attempt: cairn_error_t keeps the first error recorded, and an early
 * conflict that a retry resolved must not be what the caller reads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sdk_int.h"

#define N_HEADERS 6

struct outrec {
    unsigned char *value;
    size_t len;
    cairn_header_t headers[N_HEADERS];
    char id[CAIRN_UUID_LEN + 1];
    char schema_id[16];
    char time[24];
};

static void set_header(cairn_header_t *h, const char *name, const char *value)
{
    h->name = name;
    h->value = value;
    h->value_len = strlen(value);
}

/* The checkpoint-like bound (sdk.h, cairn_result_t.checkpoint). Kafka's
 * has epoch 0 ("unknown") so that checkpoint parsers accept it; positions
 * are what a wait compares. */
static void
fill_position(struct cairn_service *svc, cairn_result_t *res, int32_t partition, uint64_t position)
{
    res->partition = partition;
    res->position = position;
    if (strcmp(cairn_log_scheme(svc->log), "kafka") == 0)
        snprintf(res->checkpoint, sizeof res->checkpoint, "kafka:%d=%" PRIu64 "@0", (int)partition,
                 position + 1);
    else
        snprintf(res->checkpoint, sizeof res->checkpoint, "file:%" PRIu64, position + 1);
}

/* Encodes the emitted events into records. Locks: none needed (serde is thread-safe). */
static cairn_rc_t encode_all(struct cairn_aggregate *agg,
                             const struct cairn_emitter *em,
                             const char *command_id,
                             const char *correlation,
                             struct outrec *out,
                             cairn_record_t *recs,
                             cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    int64_t t = cairn__wall_ms();
    for (size_t i = 0; i < em->n; i++) {
        const struct cairn__evtype *et = cairn__evtype_find(agg, em->items[i].type);
        struct outrec *o = &out[i];
        rc = cairn_serde_encode(agg->svc->serde, et->schema, em->items[i].body, &o->value, &o->len,
                                err);
        if (rc != CAIRN_OK) {
            cairn__error_set(err, rc, 0, em->items[i].type,
                             "event '%s' emitted by decide does not fit its schema",
                             em->items[i].type);
            return rc;
        }
        rc = cairn_uuid_new(o->id, err);
        if (rc != CAIRN_OK)
            return rc;
        snprintf(o->schema_id, sizeof o->schema_id, "%" PRId32,
                 cairn_registered_schema_id(et->schema));
        snprintf(o->time, sizeof o->time, "%" PRId64, t);
        set_header(&o->headers[0], "cairn.type", em->items[i].type);
        set_header(&o->headers[1], "cairn.id", o->id);
        set_header(&o->headers[2], "cairn.version", o->schema_id);
        set_header(&o->headers[3], "cairn.correlation", correlation);
        set_header(&o->headers[4], "cairn.causation", command_id);
        set_header(&o->headers[5], "cairn.time", o->time);
        memset(&recs[i], 0, sizeof recs[i]);
        recs[i].value = o->value;
        recs[i].value_len = o->len;
        recs[i].headers = o->headers;
        recs[i].header_count = N_HEADERS;
        recs[i].timestamp_ms = t;
    }
    return CAIRN_OK;
}

static void free_out(struct outrec *out, size_t n)
{
    if (!out)
        return;
    for (size_t i = 0; i < n; i++)
        cairn_free(out[i].value);
    cairn__free(out);
}

/* After a successful append: fold the new events into the loaded state. */
static cairn_rc_t apply_new(struct cairn_aggregate *agg,
                            struct cairn__entry *e,
                            const struct cairn_emitter *em,
                            cairn_error_t *err)
{
    for (size_t i = 0; i < em->n; i++) {
        cairn_rc_t rc =
            agg->def.apply(agg->def.opaque, e->state, em->items[i].type, em->items[i].body, err);
        if (rc != CAIRN_OK)
            return rc;
    }
    return CAIRN_OK;
}

cairn_rc_t cairn_handle(cairn_aggregate_t *agg,
                        const cairn_command_t *cmd,
                        cairn_result_t *res,
                        cairn_error_t *err)
{
    struct cairn_service *svc = agg->svc;
    const struct cairn__cmdtype *ct = NULL;
    struct cairn_emitter em;
    struct cairn__entry *e = NULL;
    struct outrec *out = NULL;
    cairn_record_t *recs = NULL;
    size_t out_n = 0;
    cairn_error_t lerr = {0};
    cairn_rc_t rc = CAIRN_OK;
    pthread_mutex_t *mu = NULL;
    const char *id, *correlation;
    json_t *violations = NULL;
    int64_t deadline = 0;
    long backoff = 20;
    int vconflicts = 0; /* version conflicts met: what max_conflict_retries bounds */

    memset(res, 0, sizeof *res);
    cairn__emitter_init(&em, agg, 0);
    if (!cmd || !cmd->stream || !*cmd->stream || !cmd->type || !cmd->body) {
        rc = cairn__error_set(&lerr, CAIRN_E_INVALID, 0, NULL,
                              "a command needs a stream, a type and a body");
        goto out;
    }
    if (cmd->id && (!*cmd->id || strlen(cmd->id) > CAIRN__CMD_ID_MAX)) {
        rc = cairn__error_set(&lerr, CAIRN_E_INVALID, 0, cmd->stream,
                              "a command id must have 1 to %d bytes", CAIRN__CMD_ID_MAX);
        goto out;
    }
    if (cmd->id) {
        snprintf(res->command_id, sizeof res->command_id, "%s", cmd->id);
    } else {
        rc = cairn_uuid_new(res->command_id, &lerr);
        if (rc != CAIRN_OK)
            goto out;
    }
    id = res->command_id;
    correlation = cmd->correlation && *cmd->correlation ? cmd->correlation : id;
    for (size_t i = 0; i < agg->n_commands; i++)
        if (strcmp(agg->commands[i].name, cmd->type) == 0)
            ct = &agg->commands[i];
    if (!ct) {
        rc = cairn__error_set(&lerr, CAIRN_E_NOT_FOUND, 0, cmd->type,
                              "'%s' is not a command type of aggregate '%s'", cmd->type, agg->name);
        goto out;
    }

    /* 1. Validation: every violation, before anything else. */
    rc = cairn_serde_validate(svc->serde, ct->schema, cmd->body, &violations, &lerr);
    if (rc != CAIRN_OK) {
        if (rc == CAIRN_E_INVALID) {
            res->violations = violations;
            violations = NULL;
            CAIRN__STAT_ADD(svc, invalid, 1);
        }
        goto out;
    }

    mu = cairn__stripe(svc, cmd->stream);
    pthread_mutex_lock(mu);
    for (;;) {
        uint64_t last = 0;
        int64_t expected;
        const struct cairn__cmdrec *seen;

        memset(&lerr, 0, sizeof lerr);
        rc = cairn__load(agg, cmd->stream, 0, &e, &lerr);
        if (rc != CAIRN_OK)
            break;

        /* 2. A command id seen in this stream: its earlier result. */
        seen = cairn__recent_find(&e->recent, id);
        if (seen) {
            res->repeated = 1;
            res->version = seen->version;
            fill_position(svc, res, seen->partition, seen->position);
            CAIRN__STAT_ADD(svc, repeated, 1);
            cairn__entry_keep(agg, e);
            e = NULL;
            break;
        }

        /* 3. Decide. */
        cairn__emitter_reset(&em);
        rc = agg->def.decide(agg->def.opaque, e->state, cmd->type, cmd->body, &em, &lerr);
        if (em.rejected) {
            rc = CAIRN_E_REJECTED;
            memset(&lerr, 0, sizeof lerr);
            cairn__error_set(&lerr, rc, 0, em.reject_code, "%s", em.reject_text);
            snprintf(res->reject_code, sizeof res->reject_code, "%s", em.reject_code);
            res->version = e->version;
        } else if (em.failed != CAIRN_OK) {
            memset(&lerr, 0, sizeof lerr);
            rc = cairn__error_set(&lerr, em.failed, 0, cmd->stream, "decide: %s", em.failed_text);
        } else if (rc != CAIRN_OK) {
            cairn__error_set(&lerr, rc, 0, cmd->stream, "decide of '%s' failed", cmd->type);
        }
        /* A rejection or an empty decision appends nothing, so no expected
           version would catch a stale cached state: when the state came
           from the cache and the log has moved on (another process or
           service wrote), reload and decide again. */
        if ((rc == CAIRN_E_REJECTED || (rc == CAIRN_OK && em.n == 0)) && e->from_cache &&
            cairn_log_stream_version(svc->log, cmd->stream) != e->version) {
            cairn__entry_free(e);
            e = NULL;
            memset(res->reject_code, 0, sizeof res->reject_code);
            CAIRN__STAT_ADD(svc, conflicts, 1);
            continue;
        }
        if (rc != CAIRN_OK || em.n == 0) {
            if (rc == CAIRN_OK)
                res->version = e->version;
            else if (rc == CAIRN_E_REJECTED)
                CAIRN__STAT_ADD(svc, rejected, 1);
            cairn__entry_keep(agg, e); /* decide does not change the state */
            e = NULL;
            break;
        }

        /* 4. Encode. */
        out = cairn__calloc(em.n, sizeof *out);
        recs = cairn__calloc(em.n, sizeof *recs);
        if (!out || !recs) {
            rc = cairn__error_set(&lerr, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            cairn__entry_keep(agg, e);
            e = NULL;
            break;
        }
        out_n = em.n;
        rc = encode_all(agg, &em, id, correlation, out, recs, &lerr);
        if (rc != CAIRN_OK) {
            cairn__entry_keep(agg, e);
            e = NULL;
            break;
        }

        /* 5. Append with the version the decision was made on. */
        expected = e->version == 0 ? CAIRN_EXPECT_NO_STREAM : (int64_t)e->version;
        rc = cairn_log_append(svc->log, cmd->stream, expected, recs, em.n, &last, &lerr);
        if (rc == CAIRN_OK) {
            uint64_t before = e->version;
            const cairn_record_t *lr = &recs[em.n - 1];
            res->version = last;
            res->events = em.n;
            fill_position(svc, res, lr->partition, lr->position);
            CAIRN__STAT_ADD(svc, appended, 1);
            cairn_error_t aerr = {0};
            if (apply_new(agg, e, &em, &aerr) != CAIRN_OK ||
                cairn__recent_put(&e->recent, id, last, lr->partition, lr->position) != CAIRN_OK) {
                /* Appended, but the cached state cannot follow: reload next time. */
                cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX,
                           "stream '%s': state not updated after append (%s); dropped from "
                           "the cache",
                           cmd->stream, aerr.text);
                cairn__entry_free(e);
                e = NULL;
                break;
            }
            e->version = last;
            e->partition = lr->partition;
            e->position = lr->position;
            if (svc->snapshot_every && before / svc->snapshot_every != last / svc->snapshot_every)
                cairn__snapshot_save(agg, e);
            cairn__entry_keep(agg, e);
            e = NULL;
            break;
        }

        /* Failed: the cached state is not trusted any more. */
        cairn__entry_free(e);
        e = NULL;
        free_out(out, out_n);
        cairn__free(recs);
        out = NULL;
        recs = NULL;
        out_n = 0;
        if (rc == CAIRN_E_CONFLICT_VERSION) {
            CAIRN__STAT_ADD(svc, conflicts, 1);
            if (vconflicts++ < svc->max_retries) {
                /* Several writers racing on one stream would collide again
                   at once: from the second conflict on, wait a random few ms. */
                if (vconflicts > 1) {
                    struct timespec ts;
                    int k = vconflicts - 1;
                    clock_gettime(CLOCK_MONOTONIC, &ts);
                    long cap = 1L << (k < 6 ? k : 6);
                    cairn__sleep_ms((long)(((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts) %
                                           (uint64_t)(cap + 1)));
                }
                continue;
            }
            int actual = lerr.cause;
            memset(&lerr, 0, sizeof lerr);
            cairn__error_setc(&lerr, rc, actual, CAIRN_ERR_CONFLICT, cmd->stream,
                              "stream '%s' changed under %d attempts of command '%s': version "
                              "conflict",
                              cmd->stream, vconflicts, id);
            break;
        }
        if (rc == CAIRN_E_CONFLICT) { /* Kafka: fenced, lost a claim, or held by another */
            int64_t now = cairn__mono_ms();
            if (!deadline)
                deadline = now + 2 * svc->claim_hold_ms + 1000;
            if (now < deadline) {
                CAIRN__STAT_ADD(svc, conflicts, 1);
                cairn__sleep_ms(backoff);
                backoff = backoff * 2 > 250 ? 250 : backoff * 2;
                continue;
            }
            lerr.flags |= CAIRN_ERR_CONFLICT | CAIRN_ERR_RETRIABLE;
        }
        break;
    }
    pthread_mutex_unlock(mu);

out:
    CAIRN__STAT_ADD(svc, commands, 1);
    free_out(out, out_n);
    cairn__free(recs);
    cairn__emitter_release(&em);
    json_decref(violations);
    if (rc != CAIRN_OK && lerr.code == CAIRN_OK)
        cairn__error_set(&lerr, rc, 0, cmd ? cmd->stream : NULL, "%s", cairn_rc_str(rc));
    cairn__error_copy(err, &lerr);
    return rc;
}
