/* SPDX-License-Identifier: MIT */
/*
 * sink_pg.c - the PostgreSQL sink (libpq): a declarative projector's table
 * and its checkpoint row, written together.
 *
 * Exactly once. Each batch is one transaction sent in pipeline mode:
 *
 *   BEGIN; <one prepared statement per action of each event, in log order>;
 *   INSERT INTO cairn_checkpoints ... ON CONFLICT (projector) DO UPDATE ...;
 *   COMMIT
 *
 * so the rows and the checkpoint that covers them commit or vanish together:
 * a runner killed at any point restarts from the checkpoint of the last
 * committed batch and neither applies an event twice nor skips one. Events
 * are applied one statement each, in order, rather than merged into one
 * multi-row upsert, because several events of one batch often touch the same
 * row (INSERT ... ON CONFLICT cannot affect a row twice in one statement) and
 * counters ({"add": ...}) must see every increment.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "projections.h"

#define CHUNK      256
#define CP_TABLE   "cairn_checkpoints"
#define MAX_PARAMS CAIRN__PJ_MAX_COLUMNS

struct pg {
    PGconn *conn;
    char table[160];     /* quoted, with the target suffix */
    char projector[200]; /* the checkpoint row's key */
    char **stmt_names;   /* per handler and action: "cairn_a<h>_<j>" */
    size_t nstmts;
};

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

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
        nap_ms(50);
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
        nap_ms(wait);
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
        nap_ms(50);
    }
    if (rc == CAIRN_OK)
        rc = build_statements(s, p, err);
out:
    if (rc != CAIRN_OK) {
        pg_disconnect(p);
        cairn__free(p);
        s->impl = NULL;
    }
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

static cairn_rc_t pg_apply(cairn__pj_sink_t *s,
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
};
