/* SPDX-License-Identifier: MIT */
/*
 * sink_pg.c - the PostgreSQL sink (libpq): a declarative projector's table
 * and its checkpoint row, written together.
 *
 * Exactly once. Each batch is one transaction, its rows and the checkpoint
 * that covers them committing or vanishing together: a runner killed at any
 * point restarts from the checkpoint of the last committed batch and neither
 * applies an event twice nor skips one. A batch goes one of two ways.
 *
 * Set-based (apply_folded; batches of FOLD_MIN events and more): the batch
 * is folded per key in the runner's process (a delete wipes what came
 * before it; later upserts overwrite earlier columns; {"add": ...} counters
 * are summed, or the batch goes the per-event way when a value is not a
 * 64-bit integer), the folded rows are COPYed into a temporary staging
 * table, then one DELETE ... WHERE key IN (its deletes), one INSERT ... SELECT ... ON CONFLICT
 * per (set columns, added columns) pair, so that a column no upsert of the
 * batch names keeps its value, the checkpoint, COMMIT: one COPY row per key
 * the batch touches instead of one statement per event, which is what lets
 * a replay's large batches (runner.c) approach COPY's own rate.
 *
 * Overlapped (pg_send, pg_finish: the runner's replay): a set-based batch
 * goes as one simple query, "BEGIN; COPY stage FROM STDIN; <statements>;
 * COMMIT", its rows streamed after COPY starts; pg_send waits only for BEGIN
 * and the start of COPY, pg_finish reads the rest, so the server applies
 * and commits the batch while the runner decodes the next one. A statement
 * that fails aborts the rest of that query; pg_finish rolls back and goes
 * the per-event way as apply_folded does.
 *
 * Folded as decoded (pg_fold, pg_send_fold: the runner's catch-up): events
 * are folded into the same buffers one at a time as the runner decodes
 * them, and the batch is sent as an overlapped set-based one. Its events
 * are gone by then, so a refusal goes back to the runner (CAIRN_AGAIN),
 * which applies them again from its checkpoint the other ways.
 *
 * Per event (small batches, and a set-based batch the server refused for a
 * reason of the data, to name the poison event), sent in pipeline mode:
 *
 *   BEGIN; <one prepared statement per action of each event, in log order>;
 *   INSERT INTO cairn_checkpoints ... ON CONFLICT (projector) DO UPDATE ...;
 *   COMMIT
 *
 * Pipelining: the statements go out in chunks of CHUNK commands, each ended by
 * a Sync (which, inside BEGIN, does not end the transaction), and each
 * chunk's results are read before the next is sent, so neither side's socket
 * buffer can fill while the other waits (libpq's pipeline deadlock).
 *
 * Failures: a lost connection (or SQLSTATE class 08, 57P, 53, 40) is
 * CAIRN_E_UNAVAILABLE with RETRIABLE: nothing of the batch is known to be
 * committed except through the checkpoint, which the runner re-reads after
 * reconnecting. Any other error of a statement is a poison event: the
 * transaction rolls back (nothing of the batch applied) and the index of the
 * event is returned.
 *
 * Names: the read model table is the spec's table, plus "_<target>" for a
 * shadow copy; the checkpoint row's key is the projector's name, plus
 * "#<target>" for a shadow. Identifiers are checked as plain at load and
 * quoted here.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "projections.h"

#define CHUNK      256
#define CP_TABLE   "cairn_checkpoints"
#define MAX_PARAMS CAIRN__PJ_MAX_COLUMNS
#define STAGE      "pg_temp.\"cairn$stage\"" /* no spec identifier has a '$' */
#define FOLD_MIN   32 /* smaller batches go the per-event way: fewer round trips */

struct pg {
    PGconn *conn;
    char table[160];     /* quoted, with the target suffix */
    char projector[200]; /* the checkpoint row's key */
    char **stmt_names;   /* per handler and action: "cairn_a<h>_<j>" */
    size_t nstmts;
    int foldable;      /* batches go set-based (apply_folded) */
    int staged;        /* the session's staging table exists */
    struct fold *fold; /* apply_folded's buffers, kept from batch to batch */
    /* pg_send's batch: 0 none, 1 a set-based batch whose final statements and
       COMMIT are in flight (pg_finish reads them), 2 applied in pg_send. */
    int sent;
    char sent_cp[CAIRN_CHECKPOINT_MAX];
    uint64_t sent_events;
    /* pg_prepare's batch, built in `fold` for the next pg_send with this
       checkpoint and count: 0 none, 1 built, 2 not foldable (CAIRN_AGAIN). */
    int prepared;
    char prep_cp[CAIRN_CHECKPOINT_MAX];
    uint64_t prep_events;
    /* pg_fold's batch: `folding` while events are being folded into `fold`;
       `sent_fold`: the batch in flight is one. */
    int folding, sent_fold;
};

static int spec_foldable(const cairn__pj_spec_t *spec);
static void fold_destroy(struct fold *f);
static void pg_close(cairn__pj_sink_t *s);

/* PQerrorMessage without its trailing newline. */
static const char *pg_msg(PGconn *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

static int sqlstate_retriable(const char *st)
{
    return st && (!strncmp(st, "08", 2) || !strncmp(st, "57P", 3) || !strncmp(st, "53", 2) ||
                  !strncmp(st, "40", 2));
}

/* Records the failure of @p res (or of the connection) in err. */
static cairn_rc_t pg_fail(
    struct pg *p, PGresult *res, const cairn__pj_spec_t *spec, const char *what, cairn_error_t *err)
{
    char msg[256];
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *text = res ? PQresultErrorMessage(res) : NULL;
    if (!text || !*text)
        text = pg_msg(p->conn, msg, sizeof msg);
    else {
        snprintf(msg, sizeof msg, "%s", text);
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            msg[--n] = '\0';
        text = msg;
    }
    int lost = !p->conn || PQstatus(p->conn) == CONNECTION_BAD || sqlstate_retriable(st);
    int cause = st ? (int)strtol(st, NULL, 36) : 0;
    return cairn__error_setc(err, lost ? CAIRN_E_UNAVAILABLE : CAIRN_E_INVALID, cause,
                             lost ? CAIRN_ERR_RETRIABLE : 0, st ? st : NULL,
                             "projector '%s': postgres: %s: %s%s%s%s", spec->name, what, text,
                             st ? " (SQLSTATE " : "", st ? st : "", st ? ")" : "");
}

/* Runs one command outside a pipeline; CAIRN_OK when it succeeded. */
static cairn_rc_t exec_cmd(struct pg *p,
                           const cairn__pj_spec_t *spec,
                           const char *sql,
                           int nparams,
                           const char *const *params,
                           PGresult **out,
                           cairn_error_t *err)
{
    PGresult *res = PQexecParams(p->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        cairn_rc_t rc = pg_fail(p, res, spec, sql, err);
        PQclear(res);
        return rc;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return CAIRN_OK;
}

static void quote_ident(char *out, size_t size, const char *name, const char *suffix)
{
    /* Plain identifiers (checked at load): quote each dotted part. */
    size_t n = 0;
    const char *dot = strchr(name, '.');
    if (dot) {
        n = (size_t)snprintf(out, size, "\"%.*s\".", (int)(dot - name), name);
        name = dot + 1;
    }
    snprintf(out + n, size - n, "\"%s%s%s\"", name, suffix && *suffix ? "_" : "",
             suffix ? suffix : "");
}

static cairn_rc_t build_statements(cairn__pj_sink_t *s, struct pg *p, cairn_error_t *err)
{
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    cairn_buf_t sql;
    size_t total = 0;

    cairn_buf_init(&sql, 1 << 20);
    for (size_t h = 0; h < spec->nhandlers; h++)
        total += spec->handlers[h].nactions;
    p->stmt_names = cairn__calloc(total + 1, sizeof *p->stmt_names);
    if (!p->stmt_names)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");

    /* The read model's table. */
    cairn_buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (", p->table);
    for (size_t i = 0; i < spec->ncolumns; i++)
        cairn_buf_printf(&sql, "%s\"%s\" %s", i ? ", " : "", spec->columns[i].name,
                         spec->columns[i].type);
    cairn_buf_appends(&sql, ", PRIMARY KEY (");
    for (size_t i = 0, k = 0; i < spec->ncolumns; i++)
        if (spec->columns[i].key)
            cairn_buf_printf(&sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[i].name);
    cairn_buf_appends(&sql, "))");
    /* Two runners creating one table at once race in the catalog: retry. */
    for (int attempt = 0;; attempt++) {
        cairn_error_t e = {0};
        rc = exec_cmd(p, spec, sql.data, 0, NULL, NULL, &e);
        if (rc == CAIRN_OK || attempt == 3) {
            if (rc != CAIRN_OK && err)
                *err = e;
            break;
        }
        cairn__sleep_ms(50);
    }
    if (rc != CAIRN_OK)
        goto out;

    for (size_t h = 0; h < spec->nhandlers && rc == CAIRN_OK; h++) {
        const cairn__pj_handler_t *hd = &spec->handlers[h];
        for (size_t j = 0; j < hd->nactions && rc == CAIRN_OK; j++) {
            const cairn__pj_action_t *a = &hd->actions[j];
            char name[64];
            cairn_buf_reset(&sql);
            if (a->op == CAIRN__PJ_PG_UPSERT) {
                int nupd = 0;
                cairn_buf_printf(&sql, "INSERT INTO %s AS t (", p->table);
                for (size_t k = 0; k < a->nassigns; k++)
                    cairn_buf_printf(&sql, "%s\"%s\"", k ? ", " : "",
                                     spec->columns[a->assigns[k].column].name);
                cairn_buf_appends(&sql, ") VALUES (");
                for (size_t k = 0; k < a->nassigns; k++)
                    cairn_buf_printf(&sql, "%s$%zu::%s", k ? ", " : "", k + 1,
                                     spec->columns[a->assigns[k].column].type);
                cairn_buf_appends(&sql, ") ON CONFLICT (");
                for (size_t i = 0, k = 0; i < spec->ncolumns; i++)
                    if (spec->columns[i].key)
                        cairn_buf_printf(&sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[i].name);
                cairn_buf_appends(&sql, ") DO ");
                for (size_t k = 0; k < a->nassigns; k++) {
                    const cairn__pj_column_t *col = &spec->columns[a->assigns[k].column];
                    if (col->key)
                        continue;
                    cairn_buf_printf(&sql, "%s", nupd++ ? ", " : "UPDATE SET ");
                    if (a->assigns[k].add)
                        cairn_buf_printf(&sql, "\"%s\" = COALESCE(t.\"%s\", 0) + EXCLUDED.\"%s\"",
                                         col->name, col->name, col->name);
                    else
                        cairn_buf_printf(&sql, "\"%s\" = EXCLUDED.\"%s\"", col->name, col->name);
                }
                if (!nupd)
                    cairn_buf_appends(&sql, "NOTHING");
            } else {
                cairn_buf_printf(&sql, "DELETE FROM %s WHERE ", p->table);
                for (size_t k = 0; k < a->nassigns; k++) {
                    const cairn__pj_column_t *col = &spec->columns[a->assigns[k].column];
                    cairn_buf_printf(&sql, "%s\"%s\" = $%zu::%s", k ? " AND " : "", col->name,
                                     k + 1, col->type);
                }
            }
            snprintf(name, sizeof name, "cairn_a%zu_%zu", h, j);
            if (!(p->stmt_names[p->nstmts++] = cairn__strdup(name))) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
                break;
            }
            if (sql.data == NULL) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
                break;
            }
            PGresult *res = PQprepare(p->conn, name, sql.data, (int)a->nassigns, NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                rc = pg_fail(p, res, spec, a->where, err);
            PQclear(res);
        }
    }
    if (rc == CAIRN_OK) {
        PGresult *res = PQprepare(
            p->conn, "cairn_cp",
            "INSERT INTO " CP_TABLE " (projector, checkpoint, events, updated_at, poison) "
            "VALUES ($1, $2, $3::bigint, now(), NULL) ON CONFLICT (projector) DO UPDATE SET "
            "checkpoint = EXCLUDED.checkpoint, events = EXCLUDED.events, "
            "updated_at = EXCLUDED.updated_at, poison = NULL",
            3, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(p, res, spec, "prepare checkpoint", err);
        PQclear(res);
    }
out:
    cairn_buf_release(&sql);
    return rc;
}

static void pg_disconnect(struct pg *p)
{
    if (p->conn)
        PQfinish(p->conn);
    p->conn = NULL;
    fold_destroy(p->fold);
    p->fold = NULL;
    p->staged = 0;
    for (size_t i = 0; i < p->nstmts; i++)
        cairn__free(p->stmt_names[i]);
    cairn__free(p->stmt_names);
    p->stmt_names = NULL;
    p->nstmts = 0;
}

static cairn_rc_t pg_open(cairn__pj_sink_t *s, cairn_error_t *err)
{
    const cairn__pj_spec_t *spec = s->spec;
    struct pg *p = cairn__calloc(1, sizeof *p);
    cairn_rc_t rc = CAIRN_OK;
    char msg[256] = "";
    long wait = s->retry.backoff_ms;
    static const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "cairn-projections", spec->conninfo, NULL};

    if (!p)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    s->impl = p;
    quote_ident(p->table, sizeof p->table, spec->table, s->target);
    snprintf(p->projector, sizeof p->projector, "%s%s%s", spec->name, *s->target ? "#" : "",
             s->target);
    for (int attempt = 1;; attempt++) {
        p->conn = PQconnectdbParams(keys, vals, 1);
        if (p->conn && PQstatus(p->conn) == CONNECTION_OK)
            break;
        pg_msg(p->conn, msg, sizeof msg);
        PQfinish(p->conn);
        p->conn = NULL;
        if (attempt >= s->retry.attempts) {
            rc = cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, spec->name,
                                  "projector '%s': postgres unreachable after %d attempts: %s",
                                  spec->name, attempt, msg);
            goto out;
        }
        cairn__log(CAIRN_LOG_WARNING, "projections",
                   "projector '%s': postgres connection attempt %d failed: %s; retrying in %ld ms",
                   spec->name, attempt, msg, wait);
        cairn__sleep_ms(wait);
        wait *= 2;
    }
    PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
    for (int attempt = 0;; attempt++) {
        cairn_error_t e = {0};
        rc = exec_cmd(p, spec,
                      "CREATE TABLE IF NOT EXISTS " CP_TABLE " (projector text PRIMARY KEY, "
                      "checkpoint text NOT NULL, events bigint NOT NULL, "
                      "updated_at timestamptz NOT NULL DEFAULT now(), poison text)",
                      0, NULL, NULL, &e);
        if (rc == CAIRN_OK || attempt == 3) {
            if (rc != CAIRN_OK && err)
                *err = e;
            break;
        }
        cairn__sleep_ms(50);
    }
    if (rc == CAIRN_OK)
        rc = build_statements(s, p, err);
    p->foldable = spec_foldable(spec);
out:
    if (rc != CAIRN_OK)
        pg_close(s);
    return rc;
}

static void pg_close(cairn__pj_sink_t *s)
{
    struct pg *p = s->impl;
    if (!p)
        return;
    pg_disconnect(p);
    cairn__free(p);
    s->impl = NULL;
}

static cairn_rc_t pg_state(cairn__pj_sink_t *s, cairn__pj_state_t *st, cairn_error_t *err)
{
    struct pg *p = s->impl;
    PGresult *res = NULL;
    const char *params[1] = {p->projector};
    cairn_rc_t rc = exec_cmd(p, s->spec,
                             "SELECT checkpoint, events, COALESCE(poison, ''), updated_at::text "
                             "FROM " CP_TABLE " WHERE projector = $1",
                             1, params, &res, err);
    if (rc != CAIRN_OK)
        return rc;
    if (PQntuples(res) == 1) {
        snprintf(st->checkpoint, sizeof st->checkpoint, "%s", PQgetvalue(res, 0, 0));
        st->events = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        snprintf(st->poison, sizeof st->poison, "%s", PQgetvalue(res, 0, 2));
        snprintf(st->updated_at, sizeof st->updated_at, "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return CAIRN_OK;
}

/* One command sent in the pipeline: which event it belongs to (-1: none). */
struct sent {
    long event;
};

/* Reads the results of @p n commands and the Sync that ends them. */
static cairn_rc_t read_chunk(struct pg *p,
                             const cairn__pj_spec_t *spec,
                             const struct sent *sent,
                             size_t n,
                             const cairn__pj_event_t *evs,
                             long *failed_at,
                             cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    for (size_t i = 0; i < n; i++) {
        PGresult *res = PQgetResult(p->conn);
        if (!res) {
            if (rc == CAIRN_OK)
                rc = pg_fail(p, NULL, spec, "pipeline", err);
            return rc;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_ABORTED &&
            rc == CAIRN_OK) {
            long ev = sent[i].event;
            char what[200];
            if (ev >= 0)
                snprintf(what, sizeof what, "event at partition %d position %llu (stream '%s')",
                         (int)evs[ev].partition, (unsigned long long)evs[ev].position,
                         evs[ev].stream);
            else
                snprintf(what, sizeof what, "batch");
            rc = pg_fail(p, res, spec, what, err);
            if (rc != CAIRN_E_UNAVAILABLE && ev >= 0)
                *failed_at = ev;
        }
        PQclear(res);
        /* Each command's results end with NULL. */
        while ((res = PQgetResult(p->conn)) != NULL)
            PQclear(res);
    }
    PGresult *res = PQgetResult(p->conn);
    if (PQresultStatus(res) != PGRES_PIPELINE_SYNC && rc == CAIRN_OK)
        rc = pg_fail(p, res, spec, "pipeline sync", err);
    PQclear(res);
    return rc;
}

/* Applies the batch one prepared statement per action (see the top). */
static cairn_rc_t apply_rows(cairn__pj_sink_t *s,
                             const cairn__pj_event_t *evs,
                             size_t n,
                             const char *checkpoint,
                             uint64_t events,
                             long *failed_at,
                             cairn_error_t *err)
{
    struct pg *p = s->impl;
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    struct sent sent[CHUNK + 4];
    size_t nsent = 0;
    cairn_buf_t vals[MAX_PARAMS];
    const char *params[MAX_PARAMS];
    int in_pipeline = 0;
    char count[32];

    for (size_t i = 0; i < MAX_PARAMS; i++)
        cairn_buf_init(&vals[i], 16u << 20);
    if (!p || !p->conn) {
        rc = cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, spec->name,
                              "projector '%s': postgres: not connected", spec->name);
        goto out;
    }
    if (!PQenterPipelineMode(p->conn)) {
        rc = pg_fail(p, NULL, spec, "enter pipeline mode", err);
        goto out;
    }
    in_pipeline = 1;
    if (!PQsendQueryParams(p->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) {
        rc = pg_fail(p, NULL, spec, "BEGIN", err);
        goto out;
    }
    sent[nsent++].event = -1;
    for (size_t e = 0; e < n && rc == CAIRN_OK; e++) {
        const cairn__pj_handler_t *h = evs[e].handler;
        if (!h)
            continue;
        size_t hidx = (size_t)(h - spec->handlers), base = 0;
        for (size_t k = 0; k < hidx; k++)
            base += spec->handlers[k].nactions;
        for (size_t j = 0; j < h->nactions && rc == CAIRN_OK; j++) {
            const cairn__pj_action_t *a = &h->actions[j];
            for (size_t k = 0; k < a->nassigns && k < MAX_PARAMS; k++) {
                int is_null = 0;
                cairn_buf_reset(&vals[k]);
                rc = cairn__pj_src_text(&a->assigns[k].src, &evs[e], &vals[k], &is_null, err);
                if (rc != CAIRN_OK) {
                    *failed_at = (long)e;
                    break;
                }
                params[k] = is_null ? NULL : (vals[k].data ? vals[k].data : "");
            }
            if (rc != CAIRN_OK)
                break;
            if (!PQsendQueryPrepared(p->conn, p->stmt_names[base + j], (int)a->nassigns, params,
                                     NULL, NULL, 0)) {
                rc = pg_fail(p, NULL, spec, "send", err);
                break;
            }
            sent[nsent++].event = (long)e;
            if (nsent >= CHUNK) {
                if (!PQpipelineSync(p->conn)) {
                    rc = pg_fail(p, NULL, spec, "sync", err);
                    break;
                }
                rc = read_chunk(p, spec, sent, nsent, evs, failed_at, err);
                nsent = 0;
            }
        }
    }
    if (rc == CAIRN_OK) {
        const char *cp[3] = {p->projector, checkpoint, count};
        snprintf(count, sizeof count, "%llu", (unsigned long long)events);
        if (!PQsendQueryPrepared(p->conn, "cairn_cp", 3, cp, NULL, NULL, 0) ||
            !PQsendQueryParams(p->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
            !PQpipelineSync(p->conn)) {
            rc = pg_fail(p, NULL, spec, "commit", err);
        } else {
            sent[nsent++].event = -1;
            sent[nsent++].event = -1;
            rc = read_chunk(p, spec, sent, nsent, evs, failed_at, err);
            nsent = 0;
        }
    } else if (nsent > 0 && PQstatus(p->conn) == CONNECTION_OK && PQpipelineSync(p->conn)) {
        cairn_error_t ignored = {0};
        long dummy = -1;
        read_chunk(p, spec, sent, nsent, evs, &dummy, &ignored);
    }
out:
    if (in_pipeline && PQstatus(p->conn) == CONNECTION_OK) {
        PQexitPipelineMode(p->conn);
        if (rc != CAIRN_OK)
            PQclear(PQexec(p->conn, "ROLLBACK"));
    }
    if (rc == CAIRN_E_INVALID && err && *failed_at >= 0) {
        size_t len = strlen(err->text);
        snprintf(err->text + len, sizeof err->text - len, "; nothing of the batch was applied");
    }
    for (size_t i = 0; i < MAX_PARAMS; i++)
        cairn_buf_release(&vals[i]);
    return rc;
}

/* ---- set-based batches ----------------------------------------------------- */

/* Appends the decimal text of @p v (faster than printf on the hot path). */
static cairn_rc_t append_i64(cairn_buf_t *out, long long v)
{
    char tmp[24], *q = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    return cairn_buf_append(out, q, (size_t)(tmp + sizeof tmp - q));
}

/* cairn__pj_src_text with the common cases (a string or an integer member) inline. */
static cairn_rc_t src_text(const cairn__pj_src_t *src,
                           const cairn__pj_event_t *ev,
                           cairn_buf_t *out,
                           int *is_null,
                           cairn_error_t *err)
{
    if (src->kind == CAIRN__PJ_SRC_POINTER) {
        json_t *v = cairn__pj_pointer_get(ev->value, src->pointer);
        cairn_rc_t rc = CAIRN_OK;
        *is_null = 0;
        if (json_is_string(v))
            rc = cairn_buf_append(out, json_string_value(v), json_string_length(v));
        else if (json_is_integer(v))
            rc = append_i64(out, (long long)json_integer_value(v));
        else
            return cairn__pj_src_text(src, ev, out, is_null, err);
        if (rc != CAIRN_OK)
            return cairn__error_set(err, rc, 0, NULL, "value too large");
        return CAIRN_OK;
    }
    return cairn__pj_src_text(src, ev, out, is_null, err);
}

/* One value of a folded row: bytes in the fold's arena, or NULL. */
struct fval {
    size_t off;
    long len; /* -1: NULL */
};

/* A row after the batch's actions on its key: deleted first, then upserted with `mask`. */
struct frow {
    uint64_t hash;
    uint64_t mask; /* the columns the upserts after the last delete set (bit = column index) */
    uint64_t add;  /* those of them only added to: their value is the sum of the additions */
    int del;
};

struct fold {
    size_t ncols;
    cairn_buf_t arena;
    struct frow *rows;
    struct fval *vals; /* ncols per row */
    size_t nrows, arows;
    size_t *slots; /* row index + 1; 0 = empty */
    size_t cap;
    uint64_t *masks; /* the distinct non-zero (mask, add) pairs, in first-seen order */
    size_t nmasks, amasks;
    int ndel;
    cairn_buf_t data; /* the COPY data */
    cairn_buf_t sql;  /* the statements after it */
};

static void fold_destroy(struct fold *f)
{
    if (!f)
        return;
    cairn_buf_release(&f->arena);
    cairn_buf_release(&f->data);
    cairn_buf_release(&f->sql);
    cairn__free(f->rows);
    cairn__free(f->vals);
    cairn__free(f->slots);
    cairn__free(f->masks);
    cairn__free(f);
}

/* Empties @p f for the next batch, keeping its memory (but not a huge one's). */
static void fold_reset(struct fold *f)
{
    if (f->arena.alloc > (256u << 20) || f->data.alloc > (256u << 20)) {
        cairn_buf_release(&f->arena);
        cairn_buf_release(&f->data);
    }
    cairn_buf_reset(&f->arena);
    cairn_buf_reset(&f->data);
    cairn_buf_reset(&f->sql);
    if (f->nrows)
        memset(f->slots, 0, f->cap * sizeof *f->slots);
    f->nrows = f->nmasks = 0;
    f->ndel = 0;
}

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return (h ^ n) * 1099511628211ull;
}

static cairn_rc_t fold_grow(struct fold *f)
{
    if (f->nrows == f->arows) {
        size_t n = f->arows ? f->arows * 2 : 1024;
        struct frow *rows = cairn__realloc(f->rows, n * sizeof *rows);
        if (!rows)
            return CAIRN_E_NOMEM;
        f->rows = rows;
        struct fval *vals = cairn__realloc(f->vals, n * f->ncols * sizeof *vals);
        if (!vals)
            return CAIRN_E_NOMEM;
        f->vals = vals;
        f->arows = n;
    }
    if ((f->nrows + 1) * 2 > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 2048;
        size_t *slots = cairn__calloc(cap, sizeof *slots);
        if (!slots)
            return CAIRN_E_NOMEM;
        for (size_t r = 0; r < f->nrows; r++) {
            size_t j = f->rows[r].hash & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = r + 1;
        }
        cairn__free(f->slots);
        f->slots = slots;
        f->cap = cap;
    }
    return CAIRN_OK;
}

/* Parses a value of the arena as a 64-bit integer: 0 when it is not one (or NULL). */
static int int_text(const struct fold *f, const struct fval *v, long long *out)
{
    char tmp[24], *end;
    if (v->len <= 0 || (size_t)v->len >= sizeof tmp)
        return 0;
    memcpy(tmp, f->arena.data + v->off, (size_t)v->len);
    tmp[v->len] = '\0';
    errno = 0;
    *out = strtoll(tmp, &end, 10);
    return !errno && *end == '\0' && (tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'));
}

/*
 * Folds one action of one event into its key's row. CAIRN_AGAIN: the batch
 * cannot be folded (an addition that is not a 64-bit integer, or overflows):
 * it goes the per-event way.
 */
static cairn_rc_t fold_action(struct fold *f,
                              const cairn__pj_spec_t *spec,
                              const cairn__pj_action_t *a,
                              const cairn__pj_event_t *ev,
                              cairn_error_t *err)
{
    struct fval cur[MAX_PARAMS];
    uint64_t set = 0, h = 1469598103934665603ull;
    cairn_rc_t rc;

    for (size_t k = 0; k < a->nassigns; k++) {
        size_t col = a->assigns[k].column, before = f->arena.len;
        int is_null = 0;
        if ((rc = src_text(&a->assigns[k].src, ev, &f->arena, &is_null, err)) != CAIRN_OK)
            return rc;
        /* A value ends at a NUL, as the per-event way's C string parameters do. */
        const char *nul = f->arena.len > before
                              ? memchr(f->arena.data + before, '\0', f->arena.len - before)
                              : NULL;
        size_t len = nul ? (size_t)(nul - (f->arena.data + before)) : f->arena.len - before;
        cur[col] = (struct fval){before, is_null ? -1 : (long)len};
        set |= 1ull << col;
    }
    for (size_t c = 0; c < spec->ncolumns; c++)
        if (spec->columns[c].key)
            h = hash_bytes(h, cur[c].len > 0 ? f->arena.data + cur[c].off : "",
                           cur[c].len > 0 ? (size_t)cur[c].len : 0);
    if ((rc = fold_grow(f)) != CAIRN_OK)
        return cairn__error_set(err, rc, 0, NULL, "out of memory");
    size_t j = h & (f->cap - 1), r;
    for (;; j = (j + 1) & (f->cap - 1)) {
        if (!f->slots[j]) {
            r = f->nrows++;
            f->slots[j] = r + 1;
            f->rows[r] = (struct frow){h, 0, 0, 0};
            for (size_t c = 0; c < f->ncols; c++)
                f->vals[r * f->ncols + c] = (struct fval){0, -1};
            for (size_t c = 0; c < spec->ncolumns; c++)
                if (spec->columns[c].key)
                    f->vals[r * f->ncols + c] = cur[c];
            break;
        }
        r = f->slots[j] - 1;
        if (f->rows[r].hash != h)
            continue;
        int same = 1;
        for (size_t c = 0; c < spec->ncolumns && same; c++) {
            const struct fval *x = &f->vals[r * f->ncols + c];
            if (spec->columns[c].key)
                same = x->len == cur[c].len &&
                       (x->len <= 0 || !memcmp(f->arena.data + x->off, f->arena.data + cur[c].off,
                                               (size_t)x->len));
        }
        if (same)
            break;
    }
    struct frow *row = &f->rows[r];
    if (a->op == CAIRN__PJ_PG_DELETE) {
        if (!row->del)
            f->ndel++;
        row->del = 1;
        row->mask = row->add = 0;
        return CAIRN_OK;
    }
    for (size_t k = 0; k < a->nassigns; k++) {
        size_t col = a->assigns[k].column;
        uint64_t bit = 1ull << col;
        struct fval *dst = &f->vals[r * f->ncols + col];
        if (!a->assigns[k].add) {
            *dst = cur[col];
            row->add &= ~bit;
        } else if (!(row->mask & bit)) {
            /* A first addition: the sum so far, added to the stored value
               (COALESCE(c, 0) + sum) or inserted as it is. */
            long long x;
            if (!int_text(f, &cur[col], &x))
                return CAIRN_AGAIN;
            *dst = cur[col];
            row->add |= bit;
        } else {
            /* c = COALESCE(c, 0) + v over a value of this batch: summed here. */
            long long x, y = 0;
            if (!int_text(f, &cur[col], &x) || (dst->len >= 0 && !int_text(f, dst, &y)) ||
                (x > 0 && y > LLONG_MAX - x) || (x < 0 && y < LLONG_MIN - x))
                return CAIRN_AGAIN;
            size_t before = f->arena.len;
            if (append_i64(&f->arena, x + y) != CAIRN_OK)
                return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            *dst = (struct fval){before, (long)(f->arena.len - before)};
        }
    }
    row->mask |= set;
    return CAIRN_OK;
}

/* Appends @p n bytes escaped for COPY's text format. */
static cairn_rc_t copy_text(cairn_buf_t *out, const char *p, size_t n)
{
    size_t start = 0;
    cairn_rc_t rc = CAIRN_OK;
    for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
        const char *esc = NULL;
        switch (p[i]) {
        case '\\':
            esc = "\\\\";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\0': /* as a C string parameter would: the value ends here */
            n = i;
            continue;
        default:
            continue;
        }
        rc = cairn_buf_append(out, p + start, i - start);
        if (rc == CAIRN_OK)
            rc = cairn_buf_append(out, esc, 2);
        start = i + 1;
    }
    if (rc == CAIRN_OK && n > start)
        rc = cairn_buf_append(out, p + start, n - start);
    return rc;
}

/* The staging table's COPY data for the folded rows. */
static cairn_rc_t
fold_copy_data(const struct fold *f, const cairn__pj_spec_t *spec, cairn_buf_t *out)
{
    cairn_rc_t rc = CAIRN_OK;
    for (size_t r = 0; r < f->nrows && rc == CAIRN_OK; r++) {
        const struct frow *row = &f->rows[r];
        rc = cairn_buf_append(out, row->del ? "t\t" : "f\t", 2);
        if (rc == CAIRN_OK)
            rc = append_i64(out, (long long)row->mask);
        if (rc == CAIRN_OK)
            rc = cairn_buf_append(out, "\t", 1);
        if (rc == CAIRN_OK)
            rc = append_i64(out, (long long)row->add);
        for (size_t c = 0; c < spec->ncolumns && rc == CAIRN_OK; c++) {
            const struct fval *v = &f->vals[r * f->ncols + c];
            int present = spec->columns[c].key || (row->mask >> c & 1);
            rc = cairn_buf_append(out, "\t", 1);
            if (rc != CAIRN_OK)
                break;
            if (!present || v->len < 0)
                rc = cairn_buf_append(out, "\\N", 2);
            else if (v->len > 0)
                rc = copy_text(out, f->arena.data + v->off, (size_t)v->len);
        }
        if (rc == CAIRN_OK)
            rc = cairn_buf_append(out, "\n", 1);
    }
    return rc;
}

/* Whether the spec's batches can be folded per key: a mask bit per column. */
static int spec_foldable(const cairn__pj_spec_t *spec)
{
    return spec->ncolumns <= 64;
}

/* Creates the session's staging table (once per connection). */
static cairn_rc_t make_stage(struct pg *p, const cairn__pj_spec_t *spec, cairn_error_t *err)
{
    cairn_buf_t sql;
    cairn_rc_t rc;
    int typed_key = 0;
    cairn_buf_init(&sql, 1 << 20);
    cairn_buf_appends(&sql, "CREATE TEMP TABLE IF NOT EXISTS " STAGE
                            " (\"cairn$del\" boolean, \"cairn$mask\" bigint, \"cairn$add\" bigint");
    for (size_t i = 0; i < spec->ncolumns; i++) {
        cairn_buf_printf(&sql, ", \"%s\" %s", spec->columns[i].name, spec->columns[i].type);
        if (spec->columns[i].key && strcmp(spec->columns[i].type, "text") &&
            strcmp(spec->columns[i].type, "varchar"))
            typed_key = 1;
    }
    /* Two texts of one typed key ("1" and "01") fold apart but name one row: a
       key on the stage refuses them, and the batch goes the per-event way. */
    if (typed_key) {
        cairn_buf_appends(&sql, ", PRIMARY KEY (");
        for (size_t i = 0, k = 0; i < spec->ncolumns; i++)
            if (spec->columns[i].key)
                cairn_buf_printf(&sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[i].name);
        cairn_buf_appends(&sql, ")");
    }
    cairn_buf_appends(&sql, ") ON COMMIT DELETE ROWS");
    if (!sql.data)
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    else
        rc = exec_cmd(p, spec, sql.data, 0, NULL, NULL, err);
    cairn_buf_release(&sql);
    if (rc == CAIRN_OK)
        p->staged = 1;
    return rc;
}

/* DELETE ... WHERE key IN (the stage's deletes), one INSERT ... SELECT per mask, the checkpoint,
 * COMMIT. */
static cairn_rc_t fold_sql(struct pg *p,
                           const struct fold *f,
                           const cairn__pj_spec_t *spec,
                           const char *checkpoint,
                           uint64_t events,
                           cairn_buf_t *sql,
                           cairn_error_t *err)
{
    if (f->ndel) {
        /* "key IN (SELECT ...)", not "USING stage": the stage is never
           analyzed, and the join form let the planner hash the whole target
           table for every batch (18 ms of a 100,000-row table for 1,000
           deletes); the IN form probes the key's index per deleted key. */
        cairn_buf_printf(sql, "DELETE FROM %s WHERE (", p->table);
        for (size_t c = 0, k = 0; c < spec->ncolumns; c++)
            if (spec->columns[c].key)
                cairn_buf_printf(sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[c].name);
        cairn_buf_appends(sql, ") IN (SELECT ");
        for (size_t c = 0, k = 0; c < spec->ncolumns; c++)
            if (spec->columns[c].key)
                cairn_buf_printf(sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[c].name);
        cairn_buf_appends(sql, " FROM " STAGE " WHERE \"cairn$del\");\n");
    }
    for (size_t m = 0; m < f->nmasks; m++) {
        uint64_t mask = f->masks[2 * m], add = f->masks[2 * m + 1];
        int nupd = 0;
        cairn_buf_printf(sql, "INSERT INTO %s AS t (", p->table);
        for (size_t c = 0, k = 0; c < spec->ncolumns; c++)
            if (mask >> c & 1)
                cairn_buf_printf(sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[c].name);
        cairn_buf_appends(sql, ") SELECT ");
        for (size_t c = 0, k = 0; c < spec->ncolumns; c++)
            if (mask >> c & 1)
                cairn_buf_printf(sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[c].name);
        cairn_buf_appends(sql, " FROM " STAGE " WHERE \"cairn$mask\" = ");
        append_i64(sql, (long long)mask);
        cairn_buf_appends(sql, " AND \"cairn$add\" = ");
        append_i64(sql, (long long)add);
        cairn_buf_appends(sql, " ON CONFLICT (");
        for (size_t c = 0, k = 0; c < spec->ncolumns; c++)
            if (spec->columns[c].key)
                cairn_buf_printf(sql, "%s\"%s\"", k++ ? ", " : "", spec->columns[c].name);
        cairn_buf_appends(sql, ") DO ");
        for (size_t c = 0; c < spec->ncolumns; c++) {
            const char *name = spec->columns[c].name;
            if (!(mask >> c & 1) || spec->columns[c].key)
                continue;
            cairn_buf_appends(sql, nupd++ ? ", " : "UPDATE SET ");
            if (add >> c & 1)
                cairn_buf_printf(sql, "\"%s\" = COALESCE(t.\"%s\", 0) + EXCLUDED.\"%s\"", name,
                                 name, name);
            else
                cairn_buf_printf(sql, "\"%s\" = EXCLUDED.\"%s\"", name, name);
        }
        cairn_buf_appends(sql, nupd ? ";\n" : "NOTHING;\n");
    }
    char *proj = PQescapeLiteral(p->conn, p->projector, strlen(p->projector));
    char *cp = PQescapeLiteral(p->conn, checkpoint, strlen(checkpoint));
    if (proj && cp) {
        cairn_buf_printf(sql,
                         "INSERT INTO " CP_TABLE
                         " (projector, checkpoint, events, updated_at, poison) VALUES (%s, %s, ",
                         proj, cp);
        append_i64(sql, (long long)events);
        cairn_buf_appends(sql, ", now(), NULL) ON CONFLICT (projector) DO UPDATE SET "
                               "checkpoint = EXCLUDED.checkpoint, events = EXCLUDED.events, "
                               "updated_at = EXCLUDED.updated_at, poison = NULL;\nCOMMIT");
    }
    if (proj)
        PQfreemem(proj);
    if (cp)
        PQfreemem(cp);
    if (!proj || !cp || !sql->data)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    return CAIRN_OK;
}

/* Empties p->fold (creating it) for a new set-based batch. */
static cairn_rc_t fold_begin(struct pg *p, const cairn__pj_spec_t *spec, cairn_error_t *err)
{
    if (!p->fold) {
        if (!(p->fold = cairn__calloc(1, sizeof *p->fold)))
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        p->fold->ncols = spec->ncolumns;
        cairn_buf_init(&p->fold->arena, (size_t)1 << 31);
        cairn_buf_init(&p->fold->data, (size_t)1 << 31);
        cairn_buf_init(&p->fold->sql, 16u << 20);
    }
    fold_reset(p->fold);
    return CAIRN_OK;
}

/* Folds the actions of one event into p->fold. CAIRN_AGAIN: not foldable. */
static cairn_rc_t fold_event(struct pg *p,
                             const cairn__pj_spec_t *spec,
                             const cairn__pj_event_t *ev,
                             cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_error_t e = {0};
    const cairn__pj_handler_t *h = ev->handler;
    for (size_t j = 0; h && j < h->nactions && rc == CAIRN_OK; j++)
        rc = fold_action(p->fold, spec, &h->actions[j], ev, &e);
    if (rc != CAIRN_OK)
        return rc == CAIRN_E_NOMEM ? cairn__error_set(err, rc, 0, NULL, "out of memory")
                                   : CAIRN_AGAIN;
    return CAIRN_OK;
}

/*
 * Ends the set-based batch folded in p->fold: its distinct (mask, add)
 * pairs, the folded rows as COPY text and the statements after COPY (with
 * @p checkpoint and @p events). CAIRN_E_NOMEM.
 */
static cairn_rc_t fold_complete(struct pg *p,
                                const cairn__pj_spec_t *spec,
                                const char *checkpoint,
                                uint64_t events,
                                cairn_error_t *err)
{
    struct fold *f = p->fold;
    for (size_t r = 0; r < f->nrows; r++) {
        uint64_t mask = f->rows[r].mask, add = f->rows[r].add;
        size_t m = 0;
        while (m < f->nmasks && (f->masks[2 * m] != mask || f->masks[2 * m + 1] != add))
            m++;
        if (!mask || m < f->nmasks)
            continue;
        if (f->nmasks == f->amasks) {
            size_t na = f->amasks ? f->amasks * 2 : 8;
            uint64_t *x = cairn__realloc(f->masks, 2 * na * sizeof *x);
            if (!x)
                return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            f->masks = x;
            f->amasks = na;
        }
        f->masks[2 * f->nmasks] = mask;
        f->masks[2 * f->nmasks++ + 1] = add;
    }
    if (fold_copy_data(f, spec, &f->data) != CAIRN_OK ||
        fold_sql(p, f, spec, checkpoint, events, &f->sql, err) != CAIRN_OK)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    return CAIRN_OK;
}

/*
 * The set-based batch of @p n events built in p->fold, with @p checkpoint
 * and @p events. CAIRN_AGAIN: the fold is not exact (the per-event way);
 * CAIRN_E_NOMEM.
 */
static cairn_rc_t fold_build(cairn__pj_sink_t *s,
                             const cairn__pj_event_t *evs,
                             size_t n,
                             const char *checkpoint,
                             uint64_t events,
                             cairn_error_t *err)
{
    struct pg *p = s->impl;
    p->folding = 0; /* a pending pg_fold batch, if any, is gone */
    cairn_rc_t rc = fold_begin(p, s->spec, err);
    for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
        rc = fold_event(p, s->spec, &evs[i], err);
    if (rc == CAIRN_OK)
        rc = fold_complete(p, s->spec, checkpoint, events, err);
    return rc;
}

/*
 * A set-based batch that failed with @p rc (@p e): a lost connection is
 * reported as it is (the caller reconnects); anything else was the server
 * refusing the batch for a reason of its data, nothing applied: CAIRN_AGAIN,
 * the batch goes the per-event way, which names the event.
 */
static cairn_rc_t set_based_failed(const cairn__pj_spec_t *spec,
                                   cairn_rc_t rc,
                                   const cairn_error_t *e,
                                   cairn_error_t *err)
{
    if (rc == CAIRN_E_UNAVAILABLE) {
        if (err)
            *err = *e;
        return rc;
    }
    cairn__log(CAIRN_LOG_INFO, "projections",
               "projector '%s': the set-based batch failed (%s); applying it event by event",
               spec->name, e->text);
    return CAIRN_AGAIN;
}

/*
 * The batch set-based, as one transaction: fold its actions per key (the
 * last delete wins over what came before it; upserts after it merge, later
 * columns over earlier ones), COPY the folded rows into the session's staging
 * table, then one DELETE ... WHERE key IN (its deletes), one INSERT ... SELECT ... ON CONFLICT
 * per set of columns the upserts set (so a column no upsert of the batch
 * names keeps its value), the checkpoint, COMMIT. About one COPY row per key
 * instead of one statement per event: what makes large batches cheap.
 * CAIRN_AGAIN: the fold or the server refused the batch for a reason of an
 * event (nothing applied): the caller applies it the per-event way, which
 * names the poison event. With @p async the last step (the statements after
 * COPY and COMMIT, one simple query) is sent and not waited for:
 * folded_finish reads its outcome.
 */
static cairn_rc_t apply_folded(cairn__pj_sink_t *s,
                               const cairn__pj_event_t *evs,
                               size_t n,
                               const char *checkpoint,
                               uint64_t events,
                               int async,
                               cairn_error_t *err)
{
    struct pg *p = s->impl;
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    cairn_error_t e = {0};
    int in_tx = 0;

    struct fold *f;
    cairn_buf_t *data, *sql;

    if (!evs)
        rc = fold_complete(p, spec, checkpoint, events, err); /* pg_fold built it */
    else if (p->prepared)
        rc = p->prepared == 1 ? CAIRN_OK : CAIRN_AGAIN; /* pg_prepare built it */
    else
        rc = fold_build(s, evs, n, checkpoint, events, err);
    p->prepared = 0;
    if (rc != CAIRN_OK)
        goto out;
    f = p->fold;
    data = &f->data;
    sql = &f->sql;
    if (!p->staged && (rc = make_stage(p, spec, &e)) != CAIRN_OK) {
        p->foldable = rc == CAIRN_E_UNAVAILABLE; /* refused: the per-event way from now on */
        goto out;
    }
    if (async) {
        /* One simple query: BEGIN, COPY (its rows follow), the statements,
           COMMIT. Only BEGIN and the start of COPY are waited for here. */
        cairn_buf_t q;
        cairn_buf_init(&q, 16u << 20);
        int sent = cairn_buf_appends(&q, "BEGIN;\nCOPY " STAGE " FROM STDIN;\n") == CAIRN_OK &&
                   cairn_buf_appends(&q, sql->data) == CAIRN_OK && PQsendQuery(p->conn, q.data);
        cairn_buf_release(&q);
        if (!sent) {
            rc = pg_fail(p, NULL, spec, "set-based batch", &e);
            goto out;
        }
        in_tx = 1;
        PGresult *r1 = PQgetResult(p->conn);
        int began = PQresultStatus(r1) == PGRES_COMMAND_OK;
        if (!began)
            rc = pg_fail(p, r1, spec, "BEGIN", &e);
        PQclear(r1);
        PGresult *r2 = began ? PQgetResult(p->conn) : NULL;
        if (began && PQresultStatus(r2) != PGRES_COPY_IN)
            rc = pg_fail(p, r2, spec, "COPY", &e);
        PQclear(r2);
        if (rc != CAIRN_OK) {
            while ((r1 = PQgetResult(p->conn)) != NULL)
                PQclear(r1);
            goto out;
        }
        int ok = 1;
        for (size_t off = 0; ok && off < data->len; off += 1 << 20) {
            size_t len = data->len - off < (1u << 20) ? data->len - off : 1u << 20;
            ok = PQputCopyData(p->conn, data->data + off, (int)len) == 1;
        }
        if (PQputCopyEnd(p->conn, ok ? NULL : "cairn: sending failed") != 1 || !ok) {
            rc = pg_fail(p, NULL, spec, "COPY", &e);
            while ((r1 = PQgetResult(p->conn)) != NULL)
                PQclear(r1);
            goto out;
        }
        in_tx = 0; /* folded_finish reads the rest and ends it */
        p->sent = 1;
        goto out;
    }
    if ((rc = exec_cmd(p, spec, "BEGIN", 0, NULL, NULL, &e)) != CAIRN_OK)
        goto out;
    in_tx = 1;
    PGresult *res = PQexec(p->conn, "COPY " STAGE " FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(p, res, spec, "COPY", &e);
        PQclear(res);
        goto out;
    }
    PQclear(res);
    int ok = 1;
    for (size_t off = 0; ok && off < data->len; off += 1 << 20) {
        size_t len = data->len - off < (1u << 20) ? data->len - off : 1u << 20;
        ok = PQputCopyData(p->conn, data->data + off, (int)len) == 1;
    }
    ok = PQputCopyEnd(p->conn, ok ? NULL : "cairn: sending failed") == 1 && ok;
    res = PQgetResult(p->conn);
    if (!ok || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pg_fail(p, res, spec, "COPY", &e);
        PQclear(res);
        while ((res = PQgetResult(p->conn)) != NULL)
            PQclear(res);
        goto out;
    }
    PQclear(res);
    while ((res = PQgetResult(p->conn)) != NULL)
        PQclear(res);
    res = PQexec(p->conn, sql->data);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(p, res, spec, "set-based batch", &e);
    else
        in_tx = 0;
    PQclear(res);
out:
    if (in_tx && p->conn && PQstatus(p->conn) == CONNECTION_OK)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    if (rc != CAIRN_OK && rc != CAIRN_AGAIN && e.code)
        rc = set_based_failed(spec, rc, &e, err);
    return rc;
}

/*
 * The outcome of the set-based batch apply_folded sent (async): every result
 * of its statements and COMMIT. CAIRN_AGAIN as apply_folded's: the server
 * refused it for a reason of the data, rolled back, nothing applied.
 */
static cairn_rc_t folded_finish(cairn__pj_sink_t *s, cairn_error_t *err)
{
    struct pg *p = s->impl;
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    cairn_error_t e = {0};
    PGresult *res;
    int got = 0;

    while ((res = PQgetResult(p->conn)) != NULL) {
        if (rc == CAIRN_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(p, res, spec, "set-based batch", &e);
        got++;
        PQclear(res);
    }
    if (rc == CAIRN_OK && !got)
        rc = pg_fail(p, NULL, spec, "set-based batch", &e);
    if (rc == CAIRN_OK)
        return CAIRN_OK;
    if (p->conn && PQstatus(p->conn) == CONNECTION_OK &&
        PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    return set_based_failed(spec, rc, &e, err);
}

static cairn_rc_t pg_apply(cairn__pj_sink_t *s,
                           const cairn__pj_event_t *evs,
                           size_t n,
                           const char *checkpoint,
                           uint64_t events,
                           long *failed_at,
                           cairn_error_t *err)
{
    struct pg *p = s->impl;
    p->prepared = 0;
    if (p && p->conn && p->foldable && n >= FOLD_MIN) {
        cairn_rc_t rc = apply_folded(s, evs, n, checkpoint, events, 0, err);
        if (rc != CAIRN_AGAIN)
            return rc;
    }
    return apply_rows(s, evs, n, checkpoint, events, failed_at, err);
}

/*
 * pg_apply in two halves for the runner's overlap: a set-based batch is
 * sent up to its COMMIT, which pg_finish waits for; a batch that goes the
 * per-event way is applied here at once and pg_finish only says so.
 */
static cairn_rc_t pg_send(cairn__pj_sink_t *s,
                          const cairn__pj_event_t *evs,
                          size_t n,
                          const char *checkpoint,
                          uint64_t events,
                          long *failed_at,
                          cairn_error_t *err)
{
    struct pg *p = s->impl;
    cairn_rc_t rc;
    p->sent = 0;
    if (p->prepared && (p->prep_events != events || strcmp(p->prep_cp, checkpoint)))
        p->prepared = 0; /* built for another batch: build again */
    if (p->conn && p->foldable && n >= FOLD_MIN) {
        rc = apply_folded(s, evs, n, checkpoint, events, 1, err);
        if (rc == CAIRN_OK) {
            snprintf(p->sent_cp, sizeof p->sent_cp, "%s", checkpoint);
            p->sent_events = events;
            return CAIRN_OK;
        }
        p->sent = 0;
        if (rc != CAIRN_AGAIN)
            return rc;
    }
    p->prepared = 0;
    rc = apply_rows(s, evs, n, checkpoint, events, failed_at, err);
    if (rc == CAIRN_OK)
        p->sent = 2;
    return rc;
}

/*
 * Builds the set-based batch pg_send will send (the fold and its COPY rows)
 * while the batch in flight is still being applied: the runner's CPU then
 * overlaps the server's. Uses no connection.
 */
static cairn_rc_t pg_prepare(cairn__pj_sink_t *s,
                             const cairn__pj_event_t *evs,
                             size_t n,
                             const char *checkpoint,
                             uint64_t events,
                             cairn_error_t *err)
{
    struct pg *p = s->impl;
    p->prepared = 0;
    if (!p->foldable || n < FOLD_MIN)
        return CAIRN_OK;
    cairn_rc_t rc = fold_build(s, evs, n, checkpoint, events, err);
    if (rc != CAIRN_OK && rc != CAIRN_AGAIN)
        return rc;
    p->prepared = rc == CAIRN_OK ? 1 : 2;
    snprintf(p->prep_cp, sizeof p->prep_cp, "%s", checkpoint);
    p->prep_events = events;
    return CAIRN_OK;
}

static cairn_rc_t pg_finish(cairn__pj_sink_t *s,
                            const cairn__pj_event_t *evs,
                            size_t n,
                            long *failed_at,
                            cairn_error_t *err)
{
    struct pg *p = s->impl;
    int sent = p->sent, folded = p->sent_fold;
    p->sent = p->sent_fold = 0;
    if (sent == 2)
        return CAIRN_OK;
    if (sent != 1 || !p->conn)
        return cairn__error_set(err, CAIRN_E_INTERNAL, 0, s->spec->name,
                                "projector '%s': postgres: no batch was sent", s->spec->name);
    cairn_rc_t rc = folded_finish(s, err);
    if (rc != CAIRN_AGAIN || folded)
        return rc; /* a pg_fold batch has no events here: the runner replays them */
    return apply_rows(s, evs, n, p->sent_cp, p->sent_events, failed_at, err);
}

/*
 * Folding as events are decoded (the runner's catch-up batches): each event is
 * folded into p->fold at once, so a batch holds one row per key it touches
 * rather than its decoded events, and may span many more events than a
 * batch of decoded values could. pg_send_fold sends the batch as pg_send
 * sends a set-based one and pg_finish reads its outcome; when the server
 * refuses it (CAIRN_AGAIN, nothing applied) the runner replays its events
 * the per-event way from the checkpoint before it, which names the poison
 * event. Uses no connection until pg_send_fold.
 */
static int pg_can_fold(const cairn__pj_sink_t *s)
{
    const struct pg *p = s->impl;
    return p->conn && p->foldable;
}

/* CAIRN_AGAIN: the event cannot be folded (the batch is dropped); CAIRN_E_NOMEM. */
static cairn_rc_t
pg_fold(cairn__pj_sink_t *s, const cairn__pj_event_t *ev, size_t *rows, cairn_error_t *err)
{
    struct pg *p = s->impl;
    cairn_rc_t rc;
    if (!p->folding) {
        if ((rc = fold_begin(p, s->spec, err)) != CAIRN_OK)
            return rc;
        p->folding = 1;
    }
    if ((rc = fold_event(p, s->spec, ev, err)) != CAIRN_OK) {
        p->folding = 0;
        return rc;
    }
    *rows = p->fold->nrows;
    return CAIRN_OK;
}

static void pg_fold_drop(cairn__pj_sink_t *s)
{
    struct pg *p = s->impl;
    p->folding = 0;
}

static cairn_rc_t
pg_send_fold(cairn__pj_sink_t *s, const char *checkpoint, uint64_t events, cairn_error_t *err)
{
    struct pg *p = s->impl;
    cairn_rc_t rc;
    p->sent = p->sent_fold = 0;
    p->prepared = 0;
    /* Events no action touched still move the checkpoint: an empty batch. */
    if (!p->folding && (rc = fold_begin(p, s->spec, err)) != CAIRN_OK)
        return rc;
    p->folding = 0;
    if (!p->conn || !p->foldable)
        return CAIRN_AGAIN;
    rc = apply_folded(s, NULL, 0, checkpoint, events, 1, err);
    if (rc != CAIRN_OK) {
        p->sent = 0;
        return rc;
    }
    p->sent_fold = 1;
    snprintf(p->sent_cp, sizeof p->sent_cp, "%s", checkpoint);
    p->sent_events = events;
    return CAIRN_OK;
}

static cairn_rc_t pg_reset(cairn__pj_sink_t *s, cairn_error_t *err)
{
    struct pg *p = s->impl;
    char sql[256];
    const char *params[1] = {p->projector};
    cairn_rc_t rc = exec_cmd(p, s->spec, "BEGIN", 0, NULL, NULL, err);
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", p->table);
    if (rc == CAIRN_OK)
        rc = exec_cmd(p, s->spec, sql, 0, NULL, NULL, err);
    if (rc == CAIRN_OK)
        rc = exec_cmd(p, s->spec, "DELETE FROM " CP_TABLE " WHERE projector = $1", 1, params, NULL,
                      err);
    if (rc == CAIRN_OK)
        rc = exec_cmd(p, s->spec, "COMMIT", 0, NULL, NULL, err);
    else
        PQclear(PQexec(p->conn, "ROLLBACK"));
    return rc;
}

static cairn_rc_t pg_mark_poison(cairn__pj_sink_t *s, const char *why, cairn_error_t *err)
{
    struct pg *p = s->impl;
    const char *params[2] = {p->projector, why};
    return exec_cmd(p, s->spec,
                    "INSERT INTO " CP_TABLE " (projector, checkpoint, events, poison) "
                    "VALUES ($1, '', 0, $2) ON CONFLICT (projector) DO UPDATE SET "
                    "poison = EXCLUDED.poison",
                    2, params, NULL, err);
}

const struct cairn__pj_sink_ops cairn__pj_sink_pg_ops = {
    .open = pg_open,
    .close = pg_close,
    .state = pg_state,
    .apply = pg_apply,
    .reset = pg_reset,
    .mark_poison = pg_mark_poison,
    .send = pg_send,
    .finish = pg_finish,
    .prepare = pg_prepare,
    .can_fold = pg_can_fold,
    .fold = pg_fold,
    .fold_drop = pg_fold_drop,
    .send_fold = pg_send_fold,
};

/* For rebuild and dead letters (shadow_pg.c, deadletter.c): the connection. */
struct pg_conn *cairn__pj_sink_pg_conn(cairn__pj_sink_t *s)
{
    struct pg *p = s && s->ops == &cairn__pj_sink_pg_ops ? s->impl : NULL;
    return p ? p->conn : NULL;
}
