/* SPDX-License-Identifier: MIT */
/*
 * shadow_pg.c - the PostgreSQL half of `cairn projections rebuild`: the
 * shadow table, the swap and the drop of the old table.
 *
 * Names. The live read model is the spec's table `t`, which readers query by
 * name. A rebuild writes the shadow `t_shadow` (the sink opened with target
 * "shadow") and its checkpoint row `<name>#shadow`, so a killed rebuild
 * resumes from there. The swap renames `t` to `t_retired` and `t_shadow` to
 * `t` (and their indexes likewise, since index names share the table
 * namespace), and copies the shadow's checkpoint row over the live one, all
 * in one transaction:
 *
 *   BEGIN; SET LOCAL lock_timeout = ...;
 *   DROP TABLE IF EXISTS t_retired;            -- a leftover of an earlier swap
 *   LOCK TABLE t IN ACCESS EXCLUSIVE MODE;     -- waits for readers and the live writer
 *   LOCK TABLE cairn_checkpoints IN EXCLUSIVE MODE;   -- no checkpoint writes
 *   pg_terminate_backend(live projector's backend, wait);
 *   ALTER TABLE t RENAME TO t_retired; ALTER TABLE t_shadow RENAME TO t;
 *   checkpoint row <name> := row <name>#shadow; DELETE row <name>#shadow;
 *   COMMIT
 *
 * A reader (or the live writer) that queries `t` while the swap holds its
 * lock waits at most until the commit and then, because PostgreSQL looks the
 * name up again after a lock wait in which the catalog changed, reads the new
 * table: it never sees a missing table nor a half-built one. A reader inside
 * a transaction that already read `t` holds its lock, so the swap waits for
 * it; when that takes longer than lock_timeout the swap rolls back and is
 * tried again (bounded), so readers are never blocked for long.
 *
 * The live projector. A `cairn projections run` process keeps following the
 * log in the old table while the rebuild runs. Its connection is named
 * `cairn-pj:<name>` (application_name, set by the runner), and the swap
 * terminates it inside the transaction: the runner sees a lost connection,
 * reconnects and reads its checkpoint again -- now the shadow's, since before
 * reading it the runner touches the live table (cairn__pj_pg_tag), which
 * waits for the swap's lock -- and goes on from there in the new table.
 * cairn_checkpoints is locked against writers only, so that a reader that
 * reads it and then the live table cannot deadlock with the swap; a
 * deadlock or lock timeout all the same rolls the swap back and retries. So no event is applied
 * twice nor skipped across the swap, whether the shadow was ahead of or behind the live model.
 *
 * The old table stays as `t_retired` for the grace period, then is dropped
 * (with lock_timeout and retries: a reader still holding it delays the drop,
 * never the other way round).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "projections.h"

#define CP_TABLE "cairn_checkpoints"

/* The table's schema part ("" or "s") and base name, from "t" or "s.t". */
static void split_table(const char *table, char *schema, size_t ss, char *base, size_t bs)
{
    const char *dot = strchr(table, '.');
    if (dot) {
        snprintf(schema, ss, "%.*s", (int)(dot - table), table);
        snprintf(base, bs, "%s", dot + 1);
    } else {
        snprintf(schema, ss, "%s", "");
        snprintf(base, bs, "%s", table);
    }
}

/* "\"s\".\"<base><suffix>\"" or "\"<base><suffix>\"". */
static void qualified(char *out, size_t size, const char *schema, const char *base, const char *sfx)
{
    if (*schema)
        snprintf(out, size, "\"%s\".\"%s%s\"", schema, base, sfx);
    else
        snprintf(out, size, "\"%s%s\"", base, sfx);
}

static const char *msg(PGconn *c, PGresult *res, char *buf, size_t size)
{
    const char *t = res ? PQresultErrorMessage(res) : NULL;
    if (!t || !*t)
        t = c ? PQerrorMessage(c) : "out of memory";
    snprintf(buf, size, "%s", t);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

static cairn_rc_t connect_pg(const cairn__pj_spec_t *spec,
                             const cairn__pj_retry_t *retry,
                             PGconn **out,
                             cairn_error_t *err)
{
    static const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "cairn-rebuild", spec->conninfo, NULL};
    long wait = retry && retry->backoff_ms > 0 ? retry->backoff_ms : 200;
    int attempts = retry && retry->attempts > 0 ? retry->attempts : 5;
    char m[256];
    for (int attempt = 1;; attempt++) {
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        if (c && PQstatus(c) == CONNECTION_OK) {
            PQclear(PQexec(c, "SET client_min_messages = warning"));
            *out = c;
            return CAIRN_OK;
        }
        msg(c, NULL, m, sizeof m);
        PQfinish(c);
        if (attempt >= attempts)
            return cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, spec->name,
                                    "projector '%s': postgres unreachable after %d attempts: %s",
                                    spec->name, attempt, m);
        cairn__sleep_ms(wait);
        wait *= 2;
    }
}

/* Runs @p sql; *out gets the result when asked. CAIRN_E_TIMEOUT on a lock timeout. */
static cairn_rc_t q(PGconn *c,
                    const cairn__pj_spec_t *spec,
                    const char *sql,
                    int n,
                    const char *const *params,
                    PGresult **out,
                    cairn_error_t *err)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return CAIRN_OK;
    }
    char m[300];
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    /* A lock timeout, or a deadlock with a reader (it was chosen to give way): try again. */
    cairn_rc_t code = state && (!strcmp(state, "55P03") || !strcmp(state, "40P01"))
                          ? CAIRN_E_TIMEOUT
                      : PQstatus(c) == CONNECTION_BAD ? CAIRN_E_UNAVAILABLE
                                                      : CAIRN_E_INVALID;
    cairn__error_set(err, code, code == CAIRN_E_INVALID ? 0 : CAIRN_ERR_RETRIABLE, state,
                     "projector '%s': postgres: %s: %s", spec->name, sql, msg(c, res, m, sizeof m));
    PQclear(res);
    return code;
}

/* SET application_name = 'cairn-pj:<name>' on the live sink's connection. */
cairn_rc_t cairn__pj_pg_tag(cairn__pj_sink_t *s, cairn_error_t *err)
{
    PGconn *c = cairn__pj_sink_pg_conn(s);
    char name[64];
    const char *params[1] = {name};
    if (!c)
        return cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, s->spec->name,
                                "projector '%s': postgres: not connected", s->spec->name);
    snprintf(name, sizeof name, "cairn-pj:%s", s->spec->name);
    cairn_rc_t rc =
        q(c, s->spec, "SELECT set_config('application_name', $1, false)", 1, params, NULL, err);
    /* Wait out a swap in progress (it holds the live table) before the runner
       reads its checkpoint, so that it reads the swapped-in one. */
    char schema[80], base[80], live[200], sql[300];
    split_table(s->spec->table, schema, sizeof schema, base, sizeof base);
    qualified(live, sizeof live, schema, base, "");
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s LIMIT 0", live);
    if (rc == CAIRN_OK)
        rc = q(c, s->spec, sql, 0, NULL, NULL, err);
    return rc;
}

/* Reads projector @p row's checkpoint into @p cp ("" when none). */
static cairn_rc_t read_cp(PGconn *c,
                          const cairn__pj_spec_t *spec,
                          const char *row,
                          char *cp,
                          size_t size,
                          uint64_t *events,
                          int *found,
                          cairn_error_t *err)
{
    PGresult *res = NULL;
    const char *params[1] = {row};
    *found = 0;
    cp[0] = '\0';
    *events = 0;
    cairn_rc_t rc = q(c, spec,
                      "SELECT checkpoint, events FROM " CP_TABLE " WHERE projector = $1 AND "
                      "to_regclass('" CP_TABLE "') IS NOT NULL",
                      1, params, &res, err);
    if (rc != CAIRN_OK)
        return rc;
    if (PQntuples(res) == 1) {
        *found = 1;
        snprintf(cp, size, "%s", PQgetvalue(res, 0, 0));
        *events = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return CAIRN_OK;
}

static int rel_exists(PGconn *c, const char *qname)
{
    const char *params[1] = {qname};
    PGresult *res =
        PQexecParams(c, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL, NULL, 0);
    int yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
              PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return yes;
}

cairn_rc_t cairn__pj_pg_describe(const cairn__pj_spec_t *spec,
                                 const cairn__pj_retry_t *retry,
                                 FILE *out,
                                 cairn_error_t *err)
{
    PGconn *c = NULL;
    char schema[80], base[80], live[200], shadow[200], retired[200], row[200];
    char cp[CAIRN_CHECKPOINT_MAX], scp[CAIRN_CHECKPOINT_MAX];
    uint64_t ev = 0, sev = 0;
    int found = 0, sfound = 0;
    cairn_rc_t rc = connect_pg(spec, retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    split_table(spec->table, schema, sizeof schema, base, sizeof base);
    qualified(live, sizeof live, schema, base, "");
    qualified(shadow, sizeof shadow, schema, base, "_" CAIRN__PJ_PG_SHADOW);
    qualified(retired, sizeof retired, schema, base, "_retired");
    snprintf(row, sizeof row, "%s#%s", spec->name, CAIRN__PJ_PG_SHADOW);
    int has_cp = rel_exists(c, CP_TABLE);
    if (has_cp && (rc = read_cp(c, spec, spec->name, cp, sizeof cp, &ev, &found, err)) == CAIRN_OK)
        rc = read_cp(c, spec, row, scp, sizeof scp, &sev, &sfound, err);
    if (rc == CAIRN_OK) {
        int shadow_exists = rel_exists(c, shadow);
        fprintf(out,
                "live=%s live_exists=%s live_checkpoint=%s live_events=%" PRIu64
                " shadow=%s shadow_exists=%s shadow_checkpoint=%s shadow_events=%" PRIu64
                " start=%s swap=\"rename %s to %s, %s to %s\" drop_after_grace=%s%s\n",
                live, rel_exists(c, live) ? "yes" : "no", found ? cp : "none", ev, shadow,
                shadow_exists ? "yes" : "no", sfound ? scp : "none", sev,
                sfound && scp[0] ? "resume" : "beginning", live, retired, shadow, live, retired,
                rel_exists(c, retired) ? " retired_exists=yes" : "");
    }
    PQfinish(c);
    return rc;
}

/* Renames every index of @p rel: to "<to>_i<k>" (retired) or by prefix. */
static cairn_rc_t rename_indexes(PGconn *c,
                                 const cairn__pj_spec_t *spec,
                                 const char *schema,
                                 const char *rel,
                                 const char *from_prefix,
                                 const char *to_prefix,
                                 int numbered,
                                 cairn_error_t *err)
{
    PGresult *res = NULL;
    const char *params[1] = {rel};
    cairn_rc_t rc = q(c, spec,
                      "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                      "WHERE i.indrelid = to_regclass($1) ORDER BY c.relname",
                      1, params, &res, err);
    if (rc != CAIRN_OK)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == CAIRN_OK; i++) {
        const char *name = PQgetvalue(res, i, 0);
        char to[200], sql[600], qn[200];
        size_t fl = strlen(from_prefix);
        size_t nl = strlen(name), sl = strlen("_" CAIRN__PJ_PG_SHADOW);
        if (numbered)
            snprintf(to, sizeof to, "%s_i%d", to_prefix, i);
        else if (!strncmp(name, from_prefix, fl))
            snprintf(to, sizeof to, "%s%s", to_prefix, name + fl);
        else if (nl > sl && !strcmp(name + nl - sl, "_" CAIRN__PJ_PG_SHADOW))
            snprintf(to, sizeof to, "%.*s", (int)(nl - sl), name); /* a copied index */
        else
            continue;
        qualified(qn, sizeof qn, schema, name, "");
        snprintf(sql, sizeof sql, "ALTER INDEX %s RENAME TO \"%.63s\"", qn, to);
        rc = q(c, spec, sql, 0, NULL, NULL, err);
    }
    PQclear(res);
    return rc;
}

/* One attempt at the swap transaction. */
static cairn_rc_t swap_once(PGconn *c,
                            const cairn__pj_spec_t *spec,
                            const cairn__pj_rebuild_opts_t *o,
                            int *terminated,
                            cairn_error_t *err)
{
    char schema[80], base[80], live[200], shadow[200], retired[200], row[200], sql[800];
    char tag[64], lt[64];
    cairn_rc_t rc;
    PGresult *res = NULL;

    split_table(spec->table, schema, sizeof schema, base, sizeof base);
    qualified(live, sizeof live, schema, base, "");
    qualified(shadow, sizeof shadow, schema, base, "_" CAIRN__PJ_PG_SHADOW);
    qualified(retired, sizeof retired, schema, base, "_retired");
    snprintf(row, sizeof row, "%s#%s", spec->name, CAIRN__PJ_PG_SHADOW);
    snprintf(tag, sizeof tag, "cairn-pj:%s", spec->name);
    snprintf(lt, sizeof lt, "SET LOCAL lock_timeout = '%ldms'",
             o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 2000);

    if ((rc = q(c, spec, "BEGIN", 0, NULL, NULL, err)) != CAIRN_OK)
        return rc;
    if ((rc = q(c, spec, lt, 0, NULL, NULL, err)) != CAIRN_OK)
        goto out;
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", retired);
    if ((rc = q(c, spec, sql, 0, NULL, NULL, err)) != CAIRN_OK)
        goto out;
    int live_exists = rel_exists(c, live);
    if (live_exists) {
        snprintf(sql, sizeof sql, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", live);
        if ((rc = q(c, spec, sql, 0, NULL, NULL, err)) != CAIRN_OK)
            goto out;
    }
    /* EXCLUSIVE: no checkpoint is written meanwhile, but readers go on. */
    if ((rc = q(c, spec, "LOCK TABLE " CP_TABLE " IN EXCLUSIVE MODE", 0, NULL, NULL, err)) !=
        CAIRN_OK)
        goto out;
    {
        char cp[CAIRN_CHECKPOINT_MAX];
        uint64_t ev;
        int found;
        if ((rc = read_cp(c, spec, row, cp, sizeof cp, &ev, &found, err)) != CAIRN_OK)
            goto out;
        if (!found || !rel_exists(c, shadow)) {
            rc = cairn__error_set(err, CAIRN_E_NOT_FOUND, 0, spec->name,
                                  "projector '%s': no shadow %s with a checkpoint to swap in",
                                  spec->name, shadow);
            goto out;
        }
    }
    /* End the live projector's connection: it reconnects and resumes from the
       checkpoint this transaction installs (its read waits for our lock). */
    {
        const char *params[1] = {tag};
        rc = q(c, spec,
               "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM "
               "pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
               1, params, &res, err);
        if (rc != CAIRN_OK)
            goto out;
        *terminated += atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        res = NULL;
    }
    if (live_exists) {
        char rbase[160];
        snprintf(rbase, sizeof rbase, "%s_retired", base);
        if ((rc = rename_indexes(c, spec, schema, live, "", rbase, 1, err)) != CAIRN_OK)
            goto out;
        snprintf(sql, sizeof sql, "ALTER TABLE %s RENAME TO \"%s\"", live, rbase);
        if ((rc = q(c, spec, sql, 0, NULL, NULL, err)) != CAIRN_OK)
            goto out;
    }
    {
        char sbase[160];
        snprintf(sbase, sizeof sbase, "%s_%s", base, CAIRN__PJ_PG_SHADOW);
        if ((rc = rename_indexes(c, spec, schema, shadow, sbase, base, 0, err)) != CAIRN_OK)
            goto out;
        snprintf(sql, sizeof sql, "ALTER TABLE %s RENAME TO \"%s\"", shadow, base);
        if ((rc = q(c, spec, sql, 0, NULL, NULL, err)) != CAIRN_OK)
            goto out;
    }
    {
        const char *params[2] = {spec->name, row};
        rc = q(c, spec,
               "INSERT INTO " CP_TABLE " (projector, checkpoint, events, updated_at, poison) "
               "SELECT $1, checkpoint, events, now(), NULL FROM " CP_TABLE " WHERE projector = $2 "
               "ON CONFLICT (projector) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, "
               "events = EXCLUDED.events, updated_at = EXCLUDED.updated_at, poison = NULL",
               2, params, NULL, err);
        if (rc == CAIRN_OK)
            rc = q(c, spec, "DELETE FROM " CP_TABLE " WHERE projector = $1", 1, params + 1, NULL,
                   err);
    }
    if (rc == CAIRN_OK)
        rc = q(c, spec, "COMMIT", 0, NULL, NULL, err);
out:
    PQclear(res);
    if (rc != CAIRN_OK && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

/*
 * Builds on the shadow every index of the live table but its primary key
 * (indexes made by hand), named "<name>_shadow"; the swap gives them the
 * live names. Done once the shadow has caught up, so the replay did not
 * maintain them row by row.
 */
static cairn_rc_t
build_indexes(PGconn *c, const cairn__pj_spec_t *spec, FILE *out, cairn_error_t *err)
{
    char schema[80], base[80], live[200], shadow[200];
    PGresult *res = NULL;
    split_table(spec->table, schema, sizeof schema, base, sizeof base);
    qualified(live, sizeof live, schema, base, "");
    qualified(shadow, sizeof shadow, schema, base, "_" CAIRN__PJ_PG_SHADOW);
    const char *params[1] = {live};
    cairn_rc_t rc = q(c, spec,
                      "SELECT c.relname, i.indisunique, pg_get_indexdef(i.indexrelid) "
                      "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                      "WHERE i.indrelid = to_regclass($1) AND NOT i.indisprimary",
                      1, params, &res, err);
    if (rc != CAIRN_OK)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == CAIRN_OK; i++) {
        const char *def = PQgetvalue(res, i, 2), *using = strstr(def, " USING ");
        char sql[2048];
        if (!using)
            continue;
        snprintf(sql, sizeof sql, "CREATE %sINDEX IF NOT EXISTS \"%.56s_%s\" ON %s%s",
                 PQgetvalue(res, i, 1)[0] == 't' ? "UNIQUE " : "", PQgetvalue(res, i, 0),
                 CAIRN__PJ_PG_SHADOW, shadow, using);
        rc = q(c, spec, sql, 0, NULL, NULL, err);
        if (rc == CAIRN_OK && out)
            fprintf(out, "projector=%s state=indexed index=\"%s\"\n", spec->name,
                    PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return rc;
}

cairn_rc_t cairn__pj_pg_swap(const cairn__pj_spec_t *spec,
                             const cairn__pj_rebuild_opts_t *o,
                             FILE *out,
                             cairn_error_t *err)
{
    PGconn *c = NULL;
    int attempts = o->swap_attempts > 0 ? o->swap_attempts : 10, terminated = 0;
    cairn_rc_t rc = connect_pg(spec, &o->retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    if ((rc = build_indexes(c, spec, out, err)) != CAIRN_OK) {
        PQfinish(c);
        return rc;
    }
    for (int attempt = 1;; attempt++) {
        cairn_error_t e = {0};
        rc = swap_once(c, spec, o, &terminated, &e);
        if (rc == CAIRN_OK) {
            if (out)
                fprintf(out,
                        "projector=%s state=swapped table=%s attempts=%d "
                        "live_connections_ended=%d\n",
                        spec->name, spec->table, attempt, terminated);
            break;
        }
        if (rc != CAIRN_E_TIMEOUT || attempt >= attempts) {
            if (err)
                *err = e;
            break;
        }
        cairn__log(CAIRN_LOG_WARNING, "projections",
                   "projector '%s': swap attempt %d: %s; trying again", spec->name, attempt,
                   e.text);
        cairn__sleep_ms(100L * attempt);
    }
    PQfinish(c);
    return rc;
}

cairn_rc_t cairn__pj_pg_drop_retired(const cairn__pj_spec_t *spec,
                                     const cairn__pj_rebuild_opts_t *o,
                                     FILE *out,
                                     cairn_error_t *err)
{
    PGconn *c = NULL;
    char schema[80], base[80], retired[200], sql[300], lt[64];
    int attempts = o->swap_attempts > 0 ? o->swap_attempts : 10;
    cairn_rc_t rc = connect_pg(spec, &o->retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    split_table(spec->table, schema, sizeof schema, base, sizeof base);
    qualified(retired, sizeof retired, schema, base, "_retired");
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", retired);
    snprintf(lt, sizeof lt, "SET lock_timeout = '%ldms'",
             o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 2000);
    PQclear(PQexec(c, lt));
    for (int attempt = 1;; attempt++) {
        cairn_error_t e = {0};
        rc = q(c, spec, sql, 0, NULL, NULL, &e);
        if (rc == CAIRN_OK) {
            if (out)
                fprintf(out, "projector=%s state=dropped old=%s\n", spec->name, retired);
            break;
        }
        if (rc != CAIRN_E_TIMEOUT || attempt >= attempts) {
            if (err)
                *err = e;
            break;
        }
        cairn__sleep_ms(200L * attempt);
    }
    PQfinish(c);
    return rc;
}
