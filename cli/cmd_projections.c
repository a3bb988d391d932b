/* SPDX-License-Identifier: MIT */
/*
 * cmd_projections.c - `cairn projections run|rebuild|status|reset|wait|check|
 * dead-letters`: keep read models in PostgreSQL and Redis from the event log, with declarative
 * projector specs (docs/PROJECTIONS.md).
 *
 * Output: `run` writes key=value log lines when stdout is not a terminal
 * (one per projector when its progress changed, at most once a second, and
 * one when it stops), and a live progress line when it is (events/s,
 * processed/total positions, lag). `status` writes one key=value line per
 * projector. Exit codes: 0 ok; 1 `wait` timed out; 2 errors (a bad spec, an
 * unreachable sink after the retries, a poison event).
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/eventstore.h"
#include "cairn/serde.h"
#include "cli.h"
#include "projections.h"

#define MAX_SPECS 64

static const char projections_usage[] =
    "usage: cairn projections run --log URL [--registry URL] [--values auto|json|wire]\n"
    "                             [--exit-at-end] [--retries N] [--retry-backoff-ms MS] "
    "SPEC.json...\n"
    "       cairn projections status [--log URL] SPEC.json...\n"
    "       cairn projections reset NAME SPEC.json...\n"
    "       cairn projections wait NAME POSITION [--timeout SECONDS] SPEC.json...\n"
    "       cairn projections check [--registry URL] SPEC.json...\n"
    "       cairn projections rebuild NAME --log URL [--swap-lag N] [--grace-ms MS]\n"
    "                             [--lock-timeout-ms MS] [--dry-run] [--restart] SPEC.json...\n"
    "       cairn projections dead-letters list|retry|discard NAME [ID] SPEC.json...\n"
    "\n"
    "'cairn projections <command> --help' tells more; docs/PROJECTIONS.md has the spec format.\n";

static const char run_usage[] =
    "usage: cairn projections run --log URL [--registry URL] [--values auto|json|wire]\n"
    "                             [--exit-at-end] [--retries N] [--retry-backoff-ms MS] "
    "SPEC.json...\n"
    "\n"
    "Runs the projectors of the spec files, one thread each, from their checkpoints,\n"
    "until SIGINT/SIGTERM (or, with --exit-at-end, until each has reached the log's end).\n"
    "\n"
    "  --registry URL      schema registry that decodes wire-format values\n"
    "  --values MODE       auto (default: wire format when the first byte is 0, else JSON),\n"
    "                      json or wire\n"
    "  --retries N         connection attempts to a sink before giving up (default 5)\n"
    "  --retry-backoff-ms  first wait between attempts, doubled each time (default 200)\n";

static const char status_usage[] =
    "usage: cairn projections status [--log URL] SPEC.json...\n"
    "\n"
    "Prints each projector's checkpoint and event count; with --log also the log's\n"
    "end and the lag (in log positions: bytes for file logs, offsets for Kafka).\n";

static const char reset_usage[] =
    "usage: cairn projections reset NAME SPEC.json...\n"
    "\n"
    "Drops projector NAME's read model (PostgreSQL: its table; Redis: the keys its\n"
    "key templates name) and its checkpoint, so that the next run starts over.\n";

static const char wait_usage[] =
    "usage: cairn projections wait NAME POSITION [--timeout SECONDS] SPEC.json...\n"
    "\n"
    "Returns (exit 0) once projector NAME has applied the record at POSITION:\n"
    "  N          the record at position N of partition 0 (what 'cairn events append'\n"
    "             prints as position=)\n"
    "  P:N        the record at position N of partition P\n"
    "  file:N, kafka:p=o@e,...  a checkpoint: returns once the projector's checkpoint is\n"
    "             at or past it in every partition it names\n"
    "Exits 1 when --timeout (default 30) passes first, 2 on errors.\n";

static const char rebuild_usage[] =
    "usage: cairn projections rebuild NAME --log URL [--registry URL] [--values MODE]\n"
    "                             [--swap-lag N] [--grace-ms MS] [--lock-timeout-ms MS]\n"
    "                             [--dry-run] [--restart] SPEC.json...\n"
    "\n"
    "Replays the log into a shadow copy of projector NAME's read model (PostgreSQL:\n"
    "table <table>_shadow; Redis: the next key generation) while the live model keeps\n"
    "serving and a separate 'cairn projections run' keeps it following the log. Once\n"
    "the shadow's lag is at most --swap-lag log positions (default 0) it is swapped in\n"
    "(PostgreSQL: one short transaction with lock_timeout, retried; Redis: the pointer\n"
    "key <prefix>gen flips), and the old copy is dropped after --grace-ms (default\n"
    "5000). A killed rebuild resumes from its own checkpoint; --restart starts the\n"
    "shadow over. --dry-run prints what would happen and changes nothing.\n";

static const char dead_usage[] =
    "usage: cairn projections dead-letters list NAME [ID] SPEC.json...\n"
    "       cairn projections dead-letters retry NAME [ID] [--registry URL] SPEC.json...\n"
    "       cairn projections dead-letters discard NAME ID SPEC.json...\n"
    "\n"
    "Events parked by a projector whose spec says \"on_error\": \"park\". 'list' prints one\n"
    "line each; 'retry' applies them (all, or ID) to the live read model and removes\n"
    "those that applied; 'discard' removes one. IDs are <partition>:<position>.\n";

static const char check_usage[] =
    "usage: cairn projections check [--registry URL] SPEC.json...\n"
    "\n"
    "Loads the spec files and reports the first error of each; with --registry also\n"
    "checks the types that name a subject against its latest schema.\n";

struct opts {
    const char *log, *registry, *values, *timeout;
    int exit_at_end, retries, dry_run, restart;
    long backoff_ms, grace_ms, lock_timeout_ms;
    long swap_lag;
    const char *pos[MAX_SPECS + 2];
    size_t npos;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int usage_error(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "cairn projections %s: %s%s%s%s; see 'cairn projections %s --help'\n", cmd, msg,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "", cmd);
    return 2;
}

static int fail(const char *cmd, cairn_rc_t rc, const cairn_error_t *err)
{
    fprintf(stderr, "cairn projections %s: %s\n", cmd,
            err && err->text[0] ? err->text : cairn_rc_str(rc));
    return cairn_rc_exit_code(rc) ? cairn_rc_exit_code(rc) : 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse(const char *cmd, int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--exit-at-end")) {
            o->exit_at_end = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run") || !strcmp(a, "--restart")) {
            *(a[2] == 'd' ? &o->dry_run : &o->restart) = 1;
            continue;
        }
        if (!strcmp(a, "--swap-lag") || !strcmp(a, "--grace-ms") ||
            !strcmp(a, "--lock-timeout-ms")) {
            long n;
            if (i + 1 >= argc)
                return usage_error(cmd, "missing value after", a);
            const char *v = argv[++i];
            if (parse_long(v, 0, 2000000000L, &n))
                return usage_error(cmd, "a number 0..2000000000 expected, not", v);
            if (a[2] == 's')
                o->swap_lag = n;
            else if (a[2] == 'g')
                o->grace_ms = n;
            else
                o->lock_timeout_ms = n;
            continue;
        }
        if (!strcmp(a, "--log"))
            slot = &o->log;
        else if (!strcmp(a, "--registry"))
            slot = &o->registry;
        else if (!strcmp(a, "--values"))
            slot = &o->values;
        else if (!strcmp(a, "--timeout"))
            slot = &o->timeout;
        if (slot || !strcmp(a, "--retries") || !strcmp(a, "--retry-backoff-ms")) {
            if (i + 1 >= argc)
                return usage_error(cmd, "missing value after", a);
            const char *v = argv[++i];
            long n;
            if (slot) {
                *slot = v;
            } else if (!strcmp(a, "--retries")) {
                if (parse_long(v, 1, 100, &n))
                    return usage_error(cmd, "--retries takes 1..100, not", v);
                o->retries = (int)n;
            } else {
                if (parse_long(v, 1, 60000, &n))
                    return usage_error(cmd, "--retry-backoff-ms takes 1..60000, not", v);
                o->backoff_ms = n;
            }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0' && strcmp(a, "--") != 0)
            return usage_error(cmd, "unknown option", a);
        if (!strcmp(a, "--"))
            continue;
        if (o->npos >= sizeof o->pos / sizeof o->pos[0])
            return usage_error(cmd, "too many arguments", NULL);
        o->pos[o->npos++] = a;
    }
    return 0;
}

/* Loads spec files; prints the first error. */
static int load_specs(const char *cmd, const char *const *paths, size_t n, cairn__pj_spec_t **specs)
{
    for (size_t i = 0; i < n; i++) {
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn__pj_spec_load(paths[i], &specs[i], &err);
        if (rc != CAIRN_OK) {
            for (size_t j = 0; j < i; j++)
                cairn__pj_spec_destroy(specs[j]);
            return fail(cmd, rc, &err);
        }
    }
    return 0;
}

static void free_specs(cairn__pj_spec_t **specs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cairn__pj_spec_destroy(specs[i]);
}

static const char *sink_name(const cairn__pj_spec_t *s)
{
    return s->sink == CAIRN__PJ_SINK_POSTGRES ? "postgres"
           : s->sink == CAIRN__PJ_SINK_REDIS  ? "redis"
                                              : "code";
}

/* Opens the sink of the live read model (a Redis projector's current generation). */
static cairn_rc_t open_live(const cairn__pj_spec_t *spec,
                            const cairn__pj_retry_t *retry,
                            cairn__pj_sink_t **sink,
                            cairn_error_t *err)
{
    char live[64];
    cairn_rc_t rc = cairn__pj_live_target(spec, retry, live, sizeof live, err);
    if (rc != CAIRN_OK)
        return rc;
    return cairn__pj_sink_open(spec, live, retry, sink, err);
}

/* ---- run -------------------------------------------------------------------- */

struct printer {
    int tty;
    int printed_line;
    uint64_t *last_events;
    int *last_state;
    size_t n;
};

static void print_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void on_progress(void *opaque, const cairn__pj_progress_t *p, size_t n, int final)
{
    struct printer *pr = opaque;
    if (pr->tty && !final) {
        char line[512];
        size_t len = 0;
        for (size_t i = 0; i < n && len < sizeof line; i++) {
            double pct = p[i].total ? 100.0 * (double)p[i].processed / (double)p[i].total : 100.0;
            char eta[32] = "";
            if (!p[i].caught_up && !p[i].failed && p[i].eta_s >= 0)
                snprintf(eta, sizeof eta, " ETA %.0fs", p[i].eta_s);
            int k = snprintf(line + len, sizeof line - len,
                             "%s%s: %.0f ev/s %" PRIu64 "/%" PRIu64 " (%.1f%%) lag %" PRIu64 "%s%s",
                             i ? " | " : "", p[i].name, p[i].events_per_s, p[i].processed,
                             p[i].total, pct > 100 ? 100 : pct, p[i].lag, eta,
                             p[i].failed      ? " FAILED"
                             : p[i].caught_up ? " (live)"
                                              : "");
            if (k < 0)
                break;
            len += (size_t)k;
        }
        printf("\r%-100.*s", (int)(len < sizeof line ? len : sizeof line - 1), line);
        fflush(stdout);
        pr->printed_line = 1;
        return;
    }
    if (pr->tty && pr->printed_line) {
        printf("\n");
        pr->printed_line = 0;
    }
    for (size_t i = 0; i < n && i < pr->n; i++) {
        int state = p[i].failed ? 3 : p[i].caught_up ? 2 : 1;
        if (!final && p[i].events == pr->last_events[i] && state == pr->last_state[i])
            continue;
        pr->last_events[i] = p[i].events;
        pr->last_state[i] = state;
        printf("projector=%s state=%s events=%" PRIu64 " processed=%" PRIu64 " total=%" PRIu64
               " lag=%" PRIu64 " events_per_s=%.0f",
               p[i].name,
               final ? (p[i].failed ? "failed" : "stopped")
                     : (state == 3   ? "failed"
                        : state == 2 ? "live"
                                     : "catching-up"),
               p[i].events, p[i].processed, p[i].total, p[i].lag, p[i].events_per_s);
        if (final)
            printf(" batches=%" PRIu64 " folded=%" PRIu64, p[i].batches, p[i].folded);
        if (p[i].error) {
            printf(" error=");
            print_quoted(stdout, p[i].error);
        }
        printf("\n");
    }
    fflush(stdout);
}

static int projections_run(int argc, char **argv)
{
    struct opts o;
    int code = parse("run", argc, argv, &o);
    cairn__pj_spec_t *specs[MAX_SPECS + 2] = {0};
    cairn_error_t err = {0};
    struct sigaction sa;
    cairn_rc_t rc;

    if (code)
        return code;
    if (!o.log)
        return usage_error("run", "--log is required", NULL);
    if (!o.npos)
        return usage_error("run", "give at least one SPEC.json", NULL);
    cairn__pj_run_opts_t ro = {.log_url = o.log,
                               .registry_url = o.registry,
                               .exit_at_end = o.exit_at_end,
                               .retry = {o.retries, o.backoff_ms},
                               .stop = &stop_requested};
    if (o.values) {
        if (!strcmp(o.values, "auto"))
            ro.values = CAIRN__PJ_VALUES_AUTO;
        else if (!strcmp(o.values, "json"))
            ro.values = CAIRN__PJ_VALUES_JSON;
        else if (!strcmp(o.values, "wire"))
            ro.values = CAIRN__PJ_VALUES_WIRE;
        else
            return usage_error("run", "--values takes auto, json or wire, not", o.values);
    }
    if ((code = load_specs("run", o.pos, o.npos, specs)) != 0)
        return code;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t last_events[MAX_SPECS + 2];
    int last_state[MAX_SPECS + 2];
    for (size_t i = 0; i < o.npos; i++) {
        last_events[i] = UINT64_MAX;
        last_state[i] = 0;
    }
    struct printer pr = {isatty(STDOUT_FILENO), 0, last_events, last_state, o.npos};
    ro.progress_cb = on_progress;
    ro.progress_opaque = &pr;
    ro.progress_ms = pr.tty ? 250 : 1000;
    if (o.registry)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < o.npos; i++)
        printf("projector=%s state=starting sink=%s spec=%s\n", specs[i]->name, sink_name(specs[i]),
               specs[i]->path);
    fflush(stdout);
    rc = cairn__pj_run(specs, o.npos, &ro, &err);
    free_specs(specs, o.npos);
    if (o.registry)
        curl_global_cleanup();
    if (rc != CAIRN_OK)
        return fail("run", rc, &err);
    return 0;
}

/* ---- status, reset, wait, check ------------------------------------------ */

static int projections_status(int argc, char **argv)
{
    struct opts o;
    int code = parse("status", argc, argv, &o);
    cairn__pj_spec_t *specs[MAX_SPECS + 2] = {0};
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    int rcode = 0;

    if (code)
        return code;
    if (!o.npos)
        return usage_error("status", "give at least one SPEC.json", NULL);
    if ((code = load_specs("status", o.pos, o.npos, specs)) != 0)
        return code;
    if (o.log) {
        cairn_log_options_t lo = {.read_only = 1};
        cairn_rc_t rc = cairn_log_open(o.log, &lo, &log, &err);
        if (rc != CAIRN_OK) {
            free_specs(specs, o.npos);
            return fail("status", rc, &err);
        }
    }
    for (size_t i = 0; i < o.npos; i++) {
        cairn__pj_sink_t *sink = NULL;
        cairn__pj_state_t st;
        cairn__pj_retry_t retry = {o.retries ? o.retries : 2, o.backoff_ms ? o.backoff_ms : 100};
        memset(&err, 0, sizeof err);
        cairn_rc_t rc = open_live(specs[i], &retry, &sink, &err);
        if (rc == CAIRN_OK)
            rc = cairn__pj_sink_state(sink, &st, &err);
        cairn__pj_sink_close(sink);
        if (rc != CAIRN_OK) {
            printf("projector=%s sink=%s error=", specs[i]->name, sink_name(specs[i]));
            print_quoted(stdout, err.text);
            printf("\n");
            rcode = 2;
            continue;
        }
        printf("projector=%s sink=%s checkpoint=%s events=%" PRIu64, specs[i]->name,
               sink_name(specs[i]), st.checkpoint[0] ? st.checkpoint : "none", st.events);
        if (st.updated_at[0]) {
            printf(" updated_at=");
            print_quoted(stdout, st.updated_at);
        }
        if (log) {
            int np = cairn_log_partition_count(log);
            uint64_t pos[CAIRN__PJ_MAX_PARTITIONS], end = 0, lag = 0;
            if (np <= CAIRN__PJ_MAX_PARTITIONS &&
                cairn__pj_checkpoint_positions(st.checkpoint, pos, np, NULL) == CAIRN_OK) {
                for (int p = 0; p < np; p++) {
                    uint64_t e = cairn_log_partition_end(log, p);
                    end += e;
                    lag += e > pos[p] ? e - pos[p] : 0;
                }
                printf(" end=%" PRIu64 " lag=%" PRIu64, end, lag);
            }
        }
        if (st.poison[0]) {
            printf(" poison=");
            print_quoted(stdout, st.poison);
        }
        printf("\n");
    }
    cairn_log_close(log);
    free_specs(specs, o.npos);
    fflush(stdout);
    return rcode;
}

/* Finds the spec named @p name among pos[first..]. */
static int load_named(const char *cmd,
                      const struct opts *o,
                      size_t first,
                      const char *name,
                      cairn__pj_spec_t **specs,
                      cairn__pj_spec_t **found)
{
    int code;
    if (o->npos <= first)
        return usage_error(cmd, "give the SPEC.json files", NULL);
    if ((code = load_specs(cmd, o->pos + first, o->npos - first, specs)) != 0)
        return code;
    *found = NULL;
    for (size_t i = 0; i < o->npos - first; i++)
        if (!strcmp(specs[i]->name, name))
            *found = specs[i];
    if (!*found) {
        free_specs(specs, o->npos - first);
        fprintf(stderr, "cairn projections %s: no projector named '%s' in the spec files\n", cmd,
                name);
        return 2;
    }
    return 0;
}

static int projections_reset(int argc, char **argv)
{
    struct opts o;
    int code = parse("reset", argc, argv, &o);
    cairn__pj_spec_t *specs[MAX_SPECS + 2] = {0}, *spec;
    cairn__pj_sink_t *sink = NULL;
    cairn_error_t err = {0};

    if (code)
        return code;
    if (o.npos < 2)
        return usage_error("reset", "give NAME and the SPEC.json files", NULL);
    if ((code = load_named("reset", &o, 1, o.pos[0], specs, &spec)) != 0)
        return code;
    cairn__pj_retry_t retry = {o.retries ? o.retries : 3, o.backoff_ms ? o.backoff_ms : 200};
    cairn_rc_t rc = open_live(spec, &retry, &sink, &err);
    if (rc == CAIRN_OK)
        rc = cairn__pj_sink_reset(sink, &err);
    cairn__pj_sink_close(sink);
    free_specs(specs, o.npos - 1);
    if (rc != CAIRN_OK)
        return fail("reset", rc, &err);
    printf("projector=%s reset=ok\n", o.pos[0]);
    return 0;
}

static int projections_wait(int argc, char **argv)
{
    struct opts o;
    int code = parse("wait", argc, argv, &o);
    cairn__pj_spec_t *specs[MAX_SPECS + 2] = {0}, *spec;
    cairn__pj_sink_t *sink = NULL;
    cairn_error_t err = {0};
    uint64_t want[CAIRN__PJ_MAX_PARTITIONS] = {0}, have[CAIRN__PJ_MAX_PARTITIONS];
    int named[CAIRN__PJ_MAX_PARTITIONS] = {0};
    long timeout_s = 30;
    cairn_rc_t rc;

    if (code)
        return code;
    if (o.npos < 3)
        return usage_error("wait", "give NAME, POSITION and the SPEC.json files", NULL);
    if (o.timeout && parse_long(o.timeout, 0, 86400, &timeout_s))
        return usage_error("wait", "--timeout takes 0..86400 seconds, not", o.timeout);
    const char *p = o.pos[1];
    if (!strncmp(p, "file:", 5) || !strncmp(p, "kafka:", 6)) {
        if (cairn__pj_checkpoint_positions(p, want, CAIRN__PJ_MAX_PARTITIONS, &err) != CAIRN_OK)
            return usage_error("wait", "bad POSITION", p);
        if (!strncmp(p, "file:", 5))
            named[0] = 1;
        else
            for (const char *s = p + 6; *s;) {
                long part = strtol(s, NULL, 10);
                if (part >= 0 && part < CAIRN__PJ_MAX_PARTITIONS)
                    named[part] = 1;
                s = strchr(s, ',');
                s = s ? s + 1 : "";
            }
    } else {
        long part = 0;
        unsigned long long v;
        char *end;
        const char *colon = strchr(p, ':');
        if (colon) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.*s", (int)(colon - p), p);
            if (parse_long(buf, 0, CAIRN__PJ_MAX_PARTITIONS - 1, &part))
                return usage_error("wait", "bad POSITION", p);
            p = colon + 1;
        }
        errno = 0;
        v = strtoull(p, &end, 10);
        if (errno || end == p || *end || *p == '-')
            return usage_error("wait", "bad POSITION", o.pos[1]);
        want[part] =
            (uint64_t)v + 1; /* the record at v is applied once the checkpoint is past it */
        named[part] = 1;
    }
    if ((code = load_named("wait", &o, 2, o.pos[0], specs, &spec)) != 0)
        return code;
    cairn__pj_retry_t retry = {o.retries ? o.retries : 3, o.backoff_ms ? o.backoff_ms : 200};
    double deadline = cairn__mono_s() + (double)timeout_s;
    rc = open_live(spec, &retry, &sink, &err);
    code = 2;
    while (rc == CAIRN_OK) {
        cairn__pj_state_t st;
        if (spec->sink == CAIRN__PJ_SINK_REDIS &&
            cairn__pj_redis_check_generation(sink, &err) != CAIRN_OK) {
            /* A rebuild swapped generations (or the connection went): reopen the live one. */
            cairn__pj_sink_close(sink);
            sink = NULL;
            memset(&err, 0, sizeof err);
            if ((rc = open_live(spec, &retry, &sink, &err)) != CAIRN_OK)
                break;
        }
        rc = cairn__pj_sink_state(sink, &st, &err);
        if (rc != CAIRN_OK)
            break;
        int reached = 1;
        if (cairn__pj_checkpoint_positions(st.checkpoint, have, CAIRN__PJ_MAX_PARTITIONS, &err) !=
            CAIRN_OK) {
            rc = CAIRN_E_INVALID;
            break;
        }
        for (int i = 0; i < CAIRN__PJ_MAX_PARTITIONS && reached; i++)
            if (named[i] && have[i] < want[i])
                reached = 0;
        if (reached) {
            printf("projector=%s checkpoint=%s\n", spec->name, st.checkpoint);
            code = 0;
            break;
        }
        if (st.poison[0]) {
            fprintf(stderr, "cairn projections wait: projector '%s' stopped: %s\n", spec->name,
                    st.poison);
            break;
        }
        if (cairn__mono_s() >= deadline) {
            fprintf(stderr,
                    "cairn projections wait: timed out after %ld s: projector '%s' is at '%s'\n",
                    timeout_s, spec->name, st.checkpoint[0] ? st.checkpoint : "(start)");
            code = 1;
            break;
        }
        cairn__sleep_ms(20);
    }
    cairn__pj_sink_close(sink);
    free_specs(specs, o.npos - 2);
    if (rc != CAIRN_OK)
        return fail("wait", rc, &err);
    return code;
}

static int parse_values(const char *cmd, const char *v, cairn__pj_values_t *out)
{
    if (!v || !strcmp(v, "auto"))
        *out = CAIRN__PJ_VALUES_AUTO;
    else if (!strcmp(v, "json"))
        *out = CAIRN__PJ_VALUES_JSON;
    else if (!strcmp(v, "wire"))
        *out = CAIRN__PJ_VALUES_WIRE;
    else
        return usage_error(cmd, "--values takes auto, json or wire, not", v);
    return 0;
}

static int projections_rebuild(int argc, char **argv)
{
    struct opts o;
    int code = parse("rebuild", argc, argv, &o);
    cairn__pj_spec_t *specs[MAX_SPECS + 2] = {0}, *spec;
    cairn_error_t err = {0};
    struct sigaction sa;

    if (code)
        return code;
    if (!o.log)
        return usage_error("rebuild", "--log is required", NULL);
    if (o.npos < 2)
        return usage_error("rebuild", "give NAME and the SPEC.json files", NULL);
    cairn__pj_rebuild_opts_t ro = {.log_url = o.log,
                                   .registry_url = o.registry,
                                   .retry = {o.retries, o.backoff_ms},
                                   .swap_lag = (uint64_t)o.swap_lag,
                                   .grace_ms = o.grace_ms ? o.grace_ms : 5000,
                                   .lock_timeout_ms = o.lock_timeout_ms,
                                   .dry_run = o.dry_run,
                                   .restart = o.restart,
                                   .stop = &stop_requested,
                                   .out = stdout};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--grace-ms") && o.grace_ms == 0)
            ro.grace_ms = 0; /* --grace-ms 0 given: no grace */
    if ((code = parse_values("rebuild", o.values, &ro.values)) != 0)
        return code;
    if ((code = load_named("rebuild", &o, 1, o.pos[0], specs, &spec)) != 0)
        return code;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t last_events[1] = {UINT64_MAX};
    int last_state[1] = {0};
    struct printer pr = {isatty(STDOUT_FILENO), 0, last_events, last_state, 1};
    ro.progress_cb = on_progress;
    ro.progress_opaque = &pr;
    ro.progress_ms = pr.tty ? 250 : 1000;
    if (o.registry)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    cairn_rc_t rc = cairn__pj_rebuild(spec, &ro, &err);
    free_specs(specs, o.npos - 1);
    if (o.registry)
        curl_global_cleanup();
    fflush(stdout);
    if (rc != CAIRN_OK)
        return fail("rebuild", rc, &err);
    return 0;
}

/* ---- dead letters ------------------------------------------------------------ */

struct dead_ctx {
    cairn__pj_sink_t *sink;
    cairn_serde_t *serde;
    const char *action;
    size_t n, done, failed;
};

static int on_dead(void *opaque, const cairn__pj_dead_t *d)
{
    struct dead_ctx *c = opaque;
    c->n++;
    if (!strcmp(c->action, "list")) {
        printf("id=%s partition=%d position=%" PRIu64 " stream=", d->id, (int)d->partition,
               d->position);
        print_quoted(stdout, d->stream);
        printf(" version=%" PRIu64 " type=", d->version);
        print_quoted(stdout, d->type);
        printf(" parked_at=");
        print_quoted(stdout, d->parked_at);
        printf(" reason=");
        print_quoted(stdout, d->reason);
        printf(" format=%s value=", d->format);
        print_quoted(stdout, d->value ? d->value : "");
        printf("\n");
        return 0;
    }
    cairn_error_t err = {0};
    cairn_rc_t rc = !strcmp(c->action, "retry") ? cairn__pj_dead_retry(c->sink, d, c->serde, &err)
                                                : cairn__pj_dead_discard(c->sink, d->id, &err);
    if (rc == CAIRN_OK) {
        c->done++;
        printf("id=%s %s=ok\n", d->id, c->action);
    } else {
        c->failed++;
        printf("id=%s %s=failed error=", d->id, c->action);
        print_quoted(stdout, err.text);
        printf("\n");
    }
    return 0;
}

static int projections_dead_letters(int argc, char **argv)
{
    struct opts o;
    int code = parse("dead-letters", argc, argv, &o);
    cairn__pj_spec_t *specs[MAX_SPECS + 2] = {0}, *spec;
    cairn__pj_sink_t *sink = NULL;
    cairn_registry_client_t *client = NULL;
    cairn_serde_t *serde = NULL;
    cairn_error_t err = {0};
    const char *id = NULL;
    size_t first = 2;

    if (code)
        return code;
    if (o.npos < 3 ||
        (strcmp(o.pos[0], "list") && strcmp(o.pos[0], "retry") && strcmp(o.pos[0], "discard")))
        return usage_error("dead-letters", "give list, retry or discard, NAME and SPEC.json files",
                           NULL);
    /* An ID is <partition>:<position>; anything else is a spec file. */
    if (strchr(o.pos[2], ':') && !strstr(o.pos[2], ".json")) {
        id = o.pos[2];
        first = 3;
    }
    if (!strcmp(o.pos[0], "discard") && !id)
        return usage_error("dead-letters", "discard needs an ID", NULL);
    if ((code = load_named("dead-letters", &o, first, o.pos[1], specs, &spec)) != 0)
        return code;
    cairn__pj_retry_t retry = {o.retries ? o.retries : 3, o.backoff_ms ? o.backoff_ms : 200};
    if (o.registry) {
        cairn_registry_client_options_t co = {.url = o.registry};
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (cairn_registry_client_new(&co, &client, &err) != CAIRN_OK ||
            cairn_serde_new(client, NULL, &serde, &err) != CAIRN_OK) {
            code = fail("dead-letters", err.code ? err.code : CAIRN_E_INVALID, &err);
            goto out;
        }
    }
    cairn_rc_t rc = open_live(spec, &retry, &sink, &err);
    struct dead_ctx c = {sink, serde, o.pos[0], 0, 0, 0};
    if (rc == CAIRN_OK)
        rc = cairn__pj_dead_list(sink, id, on_dead, &c, &err);
    if (rc != CAIRN_OK) {
        code = fail("dead-letters", rc, &err);
        goto out;
    }
    if (id && c.n == 0) {
        fprintf(stderr, "cairn projections dead-letters: projector '%s' has no dead letter '%s'\n",
                spec->name, id);
        code = 2;
        goto out;
    }
    printf("projector=%s dead_letters=%zu", spec->name, c.n);
    if (strcmp(o.pos[0], "list"))
        printf(" %s=%zu failed=%zu", !strcmp(o.pos[0], "retry") ? "retried" : "discarded", c.done,
               c.failed);
    printf("\n");
    code = c.failed ? 2 : 0;
out:
    cairn__pj_sink_close(sink);
    cairn_serde_destroy(serde);
    cairn_registry_client_destroy(client);
    if (o.registry)
        curl_global_cleanup();
    free_specs(specs, o.npos - first);
    fflush(stdout);
    return code;
}

static int projections_check(int argc, char **argv)
{
    struct opts o;
    int code = parse("check", argc, argv, &o), bad = 0;
    if (code)
        return code;
    if (!o.npos)
        return usage_error("check", "give at least one SPEC.json", NULL);
    cairn_registry_client_t *client = NULL;
    if (o.registry) {
        cairn_error_t err = {0};
        cairn_registry_client_options_t co = {.url = o.registry};
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (cairn_registry_client_new(&co, &client, &err) != CAIRN_OK) {
            fprintf(stderr, "cairn projections check: %s\n", err.text);
            curl_global_cleanup();
            return 2;
        }
    }
    for (size_t i = 0; i < o.npos; i++) {
        cairn__pj_spec_t *s = NULL;
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn__pj_spec_load(o.pos[i], &s, &err);
        if (rc == CAIRN_OK && client)
            rc = cairn__pj_spec_check_registry(s, client, &err);
        if (rc != CAIRN_OK) {
            fprintf(stderr, "cairn projections check: %s\n", err.text);
            bad = 1;
        } else {
            printf("projector=%s sink=%s spec=%s ok\n", s->name, sink_name(s), o.pos[i]);
        }
        cairn__pj_spec_destroy(s);
    }
    if (client) {
        cairn_registry_client_destroy(client);
        curl_global_cleanup();
    }
    return bad ? 2 : 0;
}

int cmd_projections(int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"run", projections_run, run_usage},
        {"status", projections_status, status_usage},
        {"reset", projections_reset, reset_usage},
        {"wait", projections_wait, wait_usage},
        {"check", projections_check, check_usage},
        {"rebuild", projections_rebuild, rebuild_usage},
        {"dead-letters", projections_dead_letters, dead_usage},
    };
    return cli_dispatch("projections", projections_usage, subs, sizeof subs / sizeof subs[0], argc,
                        argv);
}
