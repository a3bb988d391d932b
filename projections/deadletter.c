/* SPDX-License-Identifier: MIT */
/*
 * deadletter.c - parked events of projectors whose spec says
 * "on_error": "park", and `cairn projections dead-letters list|retry|discard`.
 *
 * Where they go: PostgreSQL, the table cairn_dead_letters (projector, id,
 * partition, position, stream, version, type, timestamp_ms, reason, format,
 * value, parked_at), primary key (projector, id); Redis, the hash
 * cairn:dead:<projector>, field id -> a JSON object of the same members. The
 * id is "<partition>:<position>", so parking the same event again (a runner
 * killed between parking and its batch's commit, or a rebuild replaying the
 * log) changes nothing. `format` says what `value` holds: "json", the
 * decoded event; "raw", the record's value in hex (it could not be decoded).
 *
 * Retry applies the event to the live read model without moving the
 * checkpoint -- under a row lock on the checkpoint (PostgreSQL) or a WATCH on
 * it (Redis), so that a runner applying batches at the same time is neither
 * overwritten nor overwrites -- and then removes the dead letter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "cairn/serde.h"
#include "projections.h"

#define DL_TABLE "cairn_dead_letters"

static cairn_rc_t
pg_err(PGconn *c, PGresult *res, const char *name, const char *what, cairn_error_t *err)
{
    char m[300];
    const char *t = res ? PQresultErrorMessage(res) : NULL;
    snprintf(m, sizeof m, "%s", t && *t ? t : c ? PQerrorMessage(c) : "not connected");
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
    int lost = !c || PQstatus(c) == CONNECTION_BAD;
    PQclear(res);
    return cairn__error_set(err, lost ? CAIRN_E_UNAVAILABLE : CAIRN_E_INVALID,
                            lost ? CAIRN_ERR_RETRIABLE : 0, name,
                            "projector '%s': postgres: %s: %s", name, what, m);
}

static cairn_rc_t pg_run(PGconn *c,
                         const char *name,
                         const char *sql,
                         int n,
                         const char *const *params,
                         PGresult **out,
                         cairn_error_t *err)
{
    if (!c)
        return pg_err(c, NULL, name, sql, err);
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return pg_err(c, res, name, sql, err);
    if (out)
        *out = res;
    else
        PQclear(res);
    return CAIRN_OK;
}

static cairn_rc_t
rd_err(redisContext *c, redisReply *r, const char *name, const char *what, cairn_error_t *err)
{
    cairn_rc_t rc = r ? CAIRN_E_INVALID : CAIRN_E_UNAVAILABLE;
    cairn__error_set(err, rc, r ? 0 : CAIRN_ERR_RETRIABLE, name, "projector '%s': redis: %s: %s",
                     name, what,
                     r && r->type == REDIS_REPLY_ERROR ? r->str
                     : c && c->err                     ? c->errstr
                                                       : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

static json_t *dead_json(const cairn__pj_dead_t *d)
{
    return json_pack("{s:s, s:i, s:I, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s}", "id", d->id,
                     "partition", (int)d->partition, "position", (json_int_t)d->position, "stream",
                     d->stream, "version", (json_int_t)d->version, "type", d->type, "timestamp_ms",
                     (json_int_t)d->timestamp_ms, "reason", d->reason, "format", d->format, "value",
                     d->value ? d->value : "", "parked_at", d->parked_at);
}

static void copy_str(char *out, size_t size, json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    snprintf(out, size, "%s", v ? v : "");
}

cairn_rc_t cairn__pj_dead_park(cairn__pj_sink_t *s, const cairn__pj_dead_t *d, cairn_error_t *err)
{
    const char *name = s->spec->name;
    if (s->spec->sink == CAIRN__PJ_SINK_POSTGRES) {
        PGconn *c = cairn__pj_sink_pg_conn(s);
        char part[16], pos[24], ver[24], ts[24];
        snprintf(part, sizeof part, "%d", (int)d->partition);
        snprintf(pos, sizeof pos, "%" PRIu64, d->position);
        snprintf(ver, sizeof ver, "%" PRIu64, d->version);
        snprintf(ts, sizeof ts, "%" PRId64, d->timestamp_ms);
        const char *params[11] = {name,    d->id, part,      pos,       d->stream, ver,
                                  d->type, ts,    d->reason, d->format, d->value};
        cairn_rc_t rc = pg_run(c, name,
                               "CREATE TABLE IF NOT EXISTS " DL_TABLE
                               " (projector text NOT NULL, id text NOT NULL, "
                               "partition integer NOT NULL, position bigint NOT NULL, "
                               "stream text NOT NULL, version bigint NOT NULL, type text NOT NULL, "
                               "timestamp_ms bigint NOT NULL, reason text NOT NULL, "
                               "format text NOT NULL, value text NOT NULL, "
                               "parked_at timestamptz NOT NULL DEFAULT now(), "
                               "PRIMARY KEY (projector, id))",
                               0, NULL, NULL, err);
        if (rc != CAIRN_OK)
            return rc;
        return pg_run(c, name,
                      "INSERT INTO " DL_TABLE " (projector, id, partition, position, stream, "
                      "version, type, timestamp_ms, reason, format, value) VALUES ($1, $2, "
                      "$3::integer, $4::bigint, $5, $6::bigint, $7, $8::bigint, $9, $10, $11) "
                      "ON CONFLICT (projector, id) DO NOTHING",
                      11, params, NULL, err);
    }
    if (s->spec->sink == CAIRN__PJ_SINK_REDIS) {
        redisContext *c = cairn__pj_sink_redis_ctx(s);
        cairn__pj_dead_t copy = *d;
        snprintf(copy.parked_at, sizeof copy.parked_at, "%lld", (long long)time(NULL));
        json_t *j = dead_json(&copy);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text)
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        if (!c) {
            free(text);
            return rd_err(c, NULL, name, "HSETNX", err);
        }
        redisReply *r = redisCommand(c, "HSETNX cairn:dead:%s %s %s", name, d->id, text);
        free(text);
        if (!r || r->type == REDIS_REPLY_ERROR)
            return rd_err(c, r, name, "HSETNX dead letter", err);
        freeReplyObject(r);
        return CAIRN_OK;
    }
    return cairn__error_set(err, CAIRN_E_INVALID, 0, name,
                            "projector '%s': a code projector has no dead letters", name);
}

static int cmp_dead(const void *a, const void *b)
{
    const cairn__pj_dead_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->position < y->position ? -1 : x->position > y->position;
}

cairn_rc_t cairn__pj_dead_list(
    cairn__pj_sink_t *s, const char *id, cairn__pj_dead_cb *cb, void *opaque, cairn_error_t *err)
{
    const char *name = s->spec->name;
    cairn__pj_dead_t *all = NULL;
    size_t n = 0;
    cairn_rc_t rc = CAIRN_OK;

    if (s->spec->sink == CAIRN__PJ_SINK_POSTGRES) {
        PGconn *c = cairn__pj_sink_pg_conn(s);
        PGresult *res = NULL;
        const char *params[2] = {name, id ? id : ""};
        rc = pg_run(c, name, "SELECT to_regclass('" DL_TABLE "') IS NOT NULL", 0, NULL, &res, err);
        if (rc != CAIRN_OK)
            return rc;
        int exists = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (!exists)
            return CAIRN_OK;
        rc = pg_run(c, name,
                    "SELECT id, partition, position, stream, version, type, timestamp_ms, reason, "
                    "format, value, parked_at::text FROM " DL_TABLE
                    " WHERE projector = $1 AND ($2 = '' OR id = $2) ORDER BY partition, position",
                    2, params, &res, err);
        if (rc != CAIRN_OK)
            return rc;
        n = (size_t)PQntuples(res);
        all = cairn__calloc(n ? n : 1, sizeof *all);
        if (!all) {
            PQclear(res);
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            cairn__pj_dead_t *d = &all[i];
            int k = (int)i;
            snprintf(d->id, sizeof d->id, "%s", PQgetvalue(res, k, 0));
            d->partition = (int32_t)atoi(PQgetvalue(res, k, 1));
            d->position = strtoull(PQgetvalue(res, k, 2), NULL, 10);
            snprintf(d->stream, sizeof d->stream, "%s", PQgetvalue(res, k, 3));
            d->version = strtoull(PQgetvalue(res, k, 4), NULL, 10);
            snprintf(d->type, sizeof d->type, "%s", PQgetvalue(res, k, 5));
            d->timestamp_ms = strtoll(PQgetvalue(res, k, 6), NULL, 10);
            snprintf(d->reason, sizeof d->reason, "%s", PQgetvalue(res, k, 7));
            snprintf(d->format, sizeof d->format, "%s", PQgetvalue(res, k, 8));
            d->value = cairn__strdup(PQgetvalue(res, k, 9));
            snprintf(d->parked_at, sizeof d->parked_at, "%s", PQgetvalue(res, k, 10));
        }
        PQclear(res);
    } else if (s->spec->sink == CAIRN__PJ_SINK_REDIS) {
        redisContext *c = cairn__pj_sink_redis_ctx(s);
        if (!c)
            return rd_err(c, NULL, name, "HGETALL", err);
        redisReply *r = redisCommand(c, "HGETALL cairn:dead:%s", name);
        if (!r || r->type != REDIS_REPLY_ARRAY)
            return rd_err(c, r, name, "HGETALL dead letters", err);
        all = cairn__calloc(r->elements / 2 + 1, sizeof *all);
        if (!all) {
            freeReplyObject(r);
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        }
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            if (id && strcmp(r->element[i]->str, id))
                continue;
            json_t *o = json_loads(r->element[i + 1]->str, 0, NULL);
            if (!o)
                continue;
            cairn__pj_dead_t *d = &all[n++];
            copy_str(d->id, sizeof d->id, o, "id");
            d->partition = (int32_t)json_integer_value(json_object_get(o, "partition"));
            d->position = (uint64_t)json_integer_value(json_object_get(o, "position"));
            copy_str(d->stream, sizeof d->stream, o, "stream");
            d->version = (uint64_t)json_integer_value(json_object_get(o, "version"));
            copy_str(d->type, sizeof d->type, o, "type");
            d->timestamp_ms = json_integer_value(json_object_get(o, "timestamp_ms"));
            copy_str(d->reason, sizeof d->reason, o, "reason");
            copy_str(d->format, sizeof d->format, o, "format");
            const char *v = json_string_value(json_object_get(o, "value"));
            d->value = cairn__strdup(v ? v : "");
            copy_str(d->parked_at, sizeof d->parked_at, o, "parked_at");
            json_decref(o);
        }
        freeReplyObject(r);
        qsort(all, n, sizeof *all, cmp_dead);
    } else {
        return cairn__error_set(err, CAIRN_E_INVALID, 0, name,
                                "projector '%s': a code projector has no dead letters", name);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == CAIRN_OK && cb(opaque, &all[i]))
            rc = CAIRN_E_INTERNAL; /* stopped by the callback: not an error of ours */
        cairn__free(all[i].value);
    }
    cairn__free(all);
    return rc == CAIRN_E_INTERNAL ? CAIRN_OK : rc;
}

cairn_rc_t cairn__pj_dead_discard(cairn__pj_sink_t *s, const char *id, cairn_error_t *err)
{
    const char *name = s->spec->name;
    long gone = 0;
    if (s->spec->sink == CAIRN__PJ_SINK_POSTGRES) {
        PGconn *c = cairn__pj_sink_pg_conn(s);
        PGresult *res = NULL;
        const char *params[2] = {name, id};
        cairn_rc_t rc =
            pg_run(c, name, "SELECT to_regclass('" DL_TABLE "') IS NOT NULL", 0, NULL, &res, err);
        if (rc != CAIRN_OK)
            return rc;
        int exists = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (exists) {
            rc = pg_run(c, name, "DELETE FROM " DL_TABLE " WHERE projector = $1 AND id = $2", 2,
                        params, &res, err);
            if (rc != CAIRN_OK)
                return rc;
            gone = atol(PQcmdTuples(res));
            PQclear(res);
        }
    } else if (s->spec->sink == CAIRN__PJ_SINK_REDIS) {
        redisContext *c = cairn__pj_sink_redis_ctx(s);
        if (!c)
            return rd_err(c, NULL, name, "HDEL", err);
        redisReply *r = redisCommand(c, "HDEL cairn:dead:%s %s", name, id);
        if (!r || r->type != REDIS_REPLY_INTEGER)
            return rd_err(c, r, name, "HDEL dead letter", err);
        gone = (long)r->integer;
        freeReplyObject(r);
    }
    if (!gone)
        return cairn__error_set(err, CAIRN_E_NOT_FOUND, 0, id,
                                "projector '%s' has no dead letter '%s'", name, id);
    return CAIRN_OK;
}

cairn_rc_t
cairn__pj_dead_apply(cairn__pj_sink_t *s, const cairn__pj_event_t *ev, cairn_error_t *err)
{
    const char *name = s->spec->name;
    cairn__pj_state_t st;
    long failed_at = -1;
    cairn_rc_t rc;

    if (s->spec->sink == CAIRN__PJ_SINK_POSTGRES) {
        PGconn *c = cairn__pj_sink_pg_conn(s);
        /* The batch's own BEGIN/COMMIT then run inside this transaction, which
           holds the checkpoint row: a runner's batch waits for it. */
        if ((rc = pg_run(c, name, "BEGIN", 0, NULL, NULL, err)) != CAIRN_OK)
            return rc;
        PQclear(PQexec(c, "SET LOCAL client_min_messages = error"));
        PGresult *res = NULL;
        const char *params[1] = {name};
        rc = pg_run(c, name,
                    "SELECT checkpoint, events FROM cairn_checkpoints WHERE projector = $1 "
                    "FOR UPDATE",
                    1, params, &res, err);
        if (rc == CAIRN_OK && PQntuples(res) != 1) {
            rc = cairn__error_set(err, CAIRN_E_NOT_FOUND, 0, name,
                                  "projector '%s' has no checkpoint: run it first", name);
        }
        if (rc != CAIRN_OK) {
            PQclear(res);
            PQclear(PQexec(c, "ROLLBACK"));
            return rc;
        }
        char cp[CAIRN_CHECKPOINT_MAX];
        snprintf(cp, sizeof cp, "%s", PQgetvalue(res, 0, 0));
        uint64_t events = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
        rc = cairn__pj_sink_apply(s, ev, 1, cp, events, &failed_at, err);
        if (rc != CAIRN_OK && PQstatus(c) == CONNECTION_OK)
            PQclear(PQexec(c, "ROLLBACK"));
        return rc;
    }
    /* Redis: WATCH the checkpoint; a runner's batch in between makes EXEC
       answer nil, and we read the checkpoint again and retry. */
    redisContext *c = cairn__pj_sink_redis_ctx(s);
    char key[300];
    snprintf(key, sizeof key, "cairn:checkpoint:%s%s%s", name, *s->target ? "#" : "", s->target);
    for (int attempt = 0; attempt < 20; attempt++) {
        cairn_error_t e = {0};
        if (!c)
            return rd_err(c, NULL, name, "WATCH", err);
        redisReply *r = redisCommand(c, "WATCH %s", key);
        if (!r || r->type == REDIS_REPLY_ERROR)
            return rd_err(c, r, name, "WATCH", err);
        freeReplyObject(r);
        if ((rc = cairn__pj_sink_state(s, &st, err)) != CAIRN_OK)
            return rc;
        if (!st.checkpoint[0])
            return cairn__error_set(err, CAIRN_E_NOT_FOUND, 0, name,
                                    "projector '%s' has no checkpoint: run it first", name);
        rc = cairn__pj_sink_apply(s, ev, 1, st.checkpoint, st.events, &failed_at, &e);
        if (rc == CAIRN_OK || !strstr(e.text, "EXEC failed")) {
            if (rc != CAIRN_OK && err)
                *err = e;
            return rc;
        }
        c = cairn__pj_sink_redis_ctx(s);
    }
    return cairn__error_set(err, CAIRN_E_CONFLICT, CAIRN_ERR_RETRIABLE, name,
                            "projector '%s': the checkpoint kept moving; try again", name);
}

cairn_rc_t cairn__pj_dead_retry(cairn__pj_sink_t *s,
                                const cairn__pj_dead_t *d,
                                cairn_serde_t *serde,
                                cairn_error_t *err)
{
    const cairn__pj_spec_t *spec = s->spec;
    json_t *value = NULL;
    json_error_t je;
    cairn_rc_t rc = CAIRN_OK;

    if (!strcmp(d->format, "json")) {
        value = json_loads(d->value, JSON_DECODE_ANY, &je);
    } else {
        /* The value comes back from the sink's server: checked, never trusted. */
        size_t hexlen = strlen(d->value), len = hexlen / 2;
        unsigned char *raw = cairn__malloc(len + 1);
        if (!raw)
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        for (size_t i = 0; i < hexlen; i += 2) {
            int hi = cairn__hex_digit(d->value[i]),
                lo = i + 1 < hexlen ? cairn__hex_digit(d->value[i + 1]) : -1;
            if (hi < 0 || lo < 0) {
                cairn__free(raw);
                return cairn__error_set(err, CAIRN_E_INVALID, 0, d->id,
                                        "dead letter '%s': its raw value is not hex "
                                        "(character %zu of %zu)",
                                        d->id, hi < 0 ? i + 1 : i + 2, hexlen);
            }
            raw[i / 2] = (unsigned char)(hi << 4 | lo);
        }
        if (len >= 5 && raw[0] == 0) {
            if (!serde)
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, d->id,
                                      "dead letter '%s' is in the wire format: give --registry",
                                      d->id);
            else
                rc = cairn_serde_decode(serde, raw, len, NULL, &value, NULL, err);
        } else {
            value = json_loadb((const char *)raw, len, JSON_DECODE_ANY, &je);
        }
        cairn__free(raw);
        if (rc != CAIRN_OK)
            return rc;
    }
    if (!value)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, d->id,
                                "dead letter '%s': its value is not JSON", d->id);
    cairn__pj_event_t ev = {.handler = cairn__pj_spec_handler(spec, d->type),
                            .value = value,
                            .stream = (char *)(uintptr_t)d->stream,
                            .type = (char *)(uintptr_t)d->type,
                            .version = d->version,
                            .position = d->position,
                            .timestamp_ms = d->timestamp_ms,
                            .partition = d->partition};
    if (ev.handler)
        rc = cairn__pj_dead_apply(s, &ev, err);
    json_decref(value);
    if (rc == CAIRN_OK)
        rc = cairn__pj_dead_discard(s, d->id, err);
    return rc;
}
