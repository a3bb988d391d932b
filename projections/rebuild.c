/* SPDX-License-Identifier: MIT */
/*
 * rebuild.c - `cairn projections rebuild NAME`: replay the whole log into a
 * shadow copy of a read model while the live one keeps serving, then swap.
 *
 * Process model. The rebuild is its own process, next to the `cairn
 * projections run` process that keeps the live model following the log
 * (or with no live process at all). It runs the ordinary runner loop
 * (runner.c) on the shadow target, every event flagged `replaying`, from the
 * shadow's own checkpoint (`<name>#<target>`): a rebuild killed at any point
 * resumes where its last batch committed. When the shadow's lag is at most
 * --swap-lag log positions the runner stops and the swap runs:
 *
 * - PostgreSQL (shadow_pg.c): one short transaction with lock_timeout,
 *   retried, renames the live table away and the shadow in, and makes the
 *   shadow's checkpoint the live one; it ends the live projector's
 *   connection, which reconnects and resumes from that checkpoint, so the
 *   events that arrived after the shadow's last batch are applied by the
 *   live projector to the new table.
 * - Redis (shadow_redis.c): the shadow is generation gN+1; the pointer key
 *   flips to it in one MULTI with its checkpoint, and the live projector's
 *   connection is ended likewise.
 *
 * The old copy (table `<t>_retired`, or the old generation's keys) is kept
 * for --grace-ms and then dropped, so a reader mid-transaction or
 * mid-lookup never sees it vanish. A rebuild killed during the grace period
 * leaves the old copy: the next swap drops a leftover retired table first,
 * and the next Redis rebuild, after dropping the generation it retires,
 * drops any older one still there.
 *
 * A code projector's library owns its storage and ABI 1 has no swap: its
 * rebuild builds the shadow (the library is opened as "<name>#shadow", every
 * event flagged replaying, resumable like the others) and stops there.
 *
 * --dry-run prints what would happen (the log's end, the live and shadow
 * names and checkpoints, resume or start, the swap, what would be dropped)
 * and opens nothing that creates or writes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "projections.h"

cairn_rc_t cairn__pj_live_target(const cairn__pj_spec_t *spec,
                                 const cairn__pj_retry_t *retry,
                                 char *out,
                                 size_t size,
                                 cairn_error_t *err)
{
    out[0] = '\0';
    if (spec->sink != CAIRN__PJ_SINK_REDIS)
        return CAIRN_OK;
    return cairn__pj_redis_generation(spec, retry, out, size, err);
}

cairn_rc_t cairn__pj_sink_tag_live(cairn__pj_sink_t *s, cairn_error_t *err)
{
    if (s->spec->sink == CAIRN__PJ_SINK_POSTGRES)
        return cairn__pj_pg_tag(s, err);
    if (s->spec->sink == CAIRN__PJ_SINK_REDIS)
        return cairn__pj_redis_tag(s, err);
    return CAIRN_OK;
}

/* The generation after @p live: "" -> "g1", "g7" -> "g8". */
static void next_generation(const char *live, char *out, size_t size)
{
    unsigned long n = live[0] == 'g' ? strtoul(live + 1, NULL, 10) : 0;
    snprintf(out, size, "g%lu", n + 1);
}

cairn_rc_t cairn__pj_rebuild(const cairn__pj_spec_t *spec,
                             const cairn__pj_rebuild_opts_t *o,
                             cairn_error_t *err)
{
    char live[64] = "", shadow[64];
    cairn_rc_t rc;
    FILE *out = o->out ? o->out : stdout;

    if ((rc = cairn__pj_live_target(spec, &o->retry, live, sizeof live, err)) != CAIRN_OK)
        return rc;
    if (spec->sink == CAIRN__PJ_SINK_REDIS)
        next_generation(live, shadow, sizeof shadow);
    else
        snprintf(shadow, sizeof shadow, "%s", CAIRN__PJ_PG_SHADOW);

    if (o->dry_run && spec->sink == CAIRN__PJ_SINK_CODE) {
        fprintf(out,
                "projector=%s dry_run=yes sink=code shadow=%s#%s swap=none (the library owns "
                "its storage: ABI 1 has no swap)\n",
                spec->name, spec->name, shadow);
        return CAIRN_OK;
    }
    if (o->dry_run) {
        cairn_log_t *log = NULL;
        cairn_log_options_t lo = {.read_only = 1};
        uint64_t end = 0;
        if ((rc = cairn_log_open(o->log_url, &lo, &log, err)) != CAIRN_OK)
            return rc;
        for (int i = 0; i < cairn_log_partition_count(log); i++)
            end += cairn_log_partition_end(log, i);
        cairn_log_close(log);
        fprintf(out,
                "projector=%s dry_run=yes sink=%s log_end=%" PRIu64 " swap_lag=%" PRIu64
                " grace_ms=%ld restart=%s ",
                spec->name, spec->sink == CAIRN__PJ_SINK_POSTGRES ? "postgres" : "redis", end,
                o->swap_lag, o->grace_ms, o->restart ? "yes" : "no");
        if (spec->sink == CAIRN__PJ_SINK_POSTGRES)
            rc = cairn__pj_pg_describe(spec, &o->retry, out, err);
        else
            rc = cairn__pj_redis_describe(spec, &o->retry, live, shadow, out, err);
        fflush(out);
        return rc;
    }

    if (o->restart) {
        cairn__pj_sink_t *s = NULL;
        if ((rc = cairn__pj_sink_open(spec, shadow, &o->retry, &s, err)) == CAIRN_OK)
            rc = cairn__pj_sink_reset(s, err);
        cairn__pj_sink_close(s);
        if (rc != CAIRN_OK)
            return rc;
        fprintf(out, "projector=%s state=shadow-dropped shadow=%s\n", spec->name, shadow);
    }
    {
        /* Where the shadow starts: its own checkpoint (a resumed rebuild) or the beginning. */
        cairn__pj_sink_t *s = NULL;
        cairn__pj_state_t st;
        if ((rc = cairn__pj_sink_open(spec, shadow, &o->retry, &s, err)) == CAIRN_OK)
            rc = cairn__pj_sink_state(s, &st, err);
        cairn__pj_sink_close(s);
        if (rc != CAIRN_OK)
            return rc;
        fprintf(out,
                "projector=%s state=rebuilding shadow=%s live=%s start=%s "
                "shadow_checkpoint=%s shadow_events=%" PRIu64 "\n",
                spec->name, shadow,
                *live ? live : (spec->sink == CAIRN__PJ_SINK_POSTGRES ? spec->table : "(root)"),
                st.checkpoint[0] ? "resume" : "beginning",
                st.checkpoint[0] ? st.checkpoint : "none", st.events);
    }
    fflush(out);

    cairn__pj_spec_t *const specs[1] = {(cairn__pj_spec_t *)(uintptr_t)spec};
    cairn__pj_run_opts_t ro = {.log_url = o->log_url,
                               .registry_url = o->registry_url,
                               .values = o->values,
                               .retry = o->retry,
                               .progress_ms = o->progress_ms,
                               .progress_cb = o->progress_cb,
                               .progress_opaque = o->progress_opaque,
                               .stop = o->stop,
                               .target = shadow,
                               .swap_lag = o->swap_lag};
    if ((rc = cairn__pj_run(specs, 1, &ro, err)) != CAIRN_OK)
        return rc;
    if (o->stop && *o->stop) {
        fprintf(out, "projector=%s state=interrupted shadow=%s (run again to resume)\n", spec->name,
                shadow);
        return CAIRN_OK;
    }
    if (spec->sink == CAIRN__PJ_SINK_CODE) {
        /* The library built its shadow under "<name>#shadow", every event
           flagged replaying; moving it in is the library's business. */
        fprintf(out, "projector=%s state=built shadow=%s#%s swap=none\n", spec->name, spec->name,
                shadow);
        fflush(out);
        return CAIRN_OK;
    }
    if (spec->sink == CAIRN__PJ_SINK_POSTGRES)
        rc = cairn__pj_pg_swap(spec, o, out, err);
    else
        rc = cairn__pj_redis_flip(spec, &o->retry, shadow, out, err);
    if (rc != CAIRN_OK)
        return rc;
    fflush(out);
    if (o->grace_ms > 0)
        cairn__sleep_ms(o->grace_ms);
    if (spec->sink == CAIRN__PJ_SINK_POSTGRES)
        rc = cairn__pj_pg_drop_retired(spec, o, out, err);
    else
        rc = cairn__pj_redis_drop_generation(spec, &o->retry, live, out, err);
    if (rc == CAIRN_OK && spec->sink == CAIRN__PJ_SINK_REDIS)
        rc = cairn__pj_redis_drop_leftovers(spec, &o->retry, shadow, out, err);
    fflush(out);
    return rc;
}
