/* SPDX-License-Identifier: MIT */
/*
 * sink.c - dispatch from cairn__pj_sink_* to the back end the spec names
 * (sink_pg.c, sink_redis.c), and the connection retry policy they share:
 * a bounded number of attempts with doubling waits, so an unreachable server
 * ends in a clear error within a known time and never in a silent hang.
 */
#include <string.h>

#include "projections.h"

cairn_rc_t cairn__pj_sink_open(const cairn__pj_spec_t *spec,
                               const char *target,
                               const cairn__pj_retry_t *retry,
                               cairn__pj_sink_t **out,
                               cairn_error_t *err)
{
    cairn__pj_sink_t *s = cairn__calloc(1, sizeof *s);
    cairn_rc_t rc;

    *out = NULL;
    if (!s || !(s->target = cairn__strdup(target ? target : ""))) {
        cairn__free(s);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    }
    s->spec = spec;
    if (spec->sink == CAIRN__PJ_SINK_POSTGRES)
        s->ops = &cairn__pj_sink_pg_ops;
    else if (spec->sink == CAIRN__PJ_SINK_REDIS)
        s->ops = &cairn__pj_sink_redis_ops;
    else
        s->ops = &cairn__pj_sink_code_ops;
    s->retry.attempts = retry && retry->attempts > 0 ? retry->attempts : 5;
    s->retry.backoff_ms = retry && retry->backoff_ms > 0 ? retry->backoff_ms : 200;
    rc = s->ops->open(s, err);
    if (rc != CAIRN_OK) {
        cairn__free(s->target);
        cairn__free(s);
        return rc;
    }
    *out = s;
    return CAIRN_OK;
}

void cairn__pj_sink_close(cairn__pj_sink_t *s)
{
    if (!s)
        return;
    s->ops->close(s);
    cairn__free(s->target);
    cairn__free(s);
}

cairn_rc_t cairn__pj_sink_state(cairn__pj_sink_t *s, cairn__pj_state_t *st, cairn_error_t *err)
{
    memset(st, 0, sizeof *st);
    return s->ops->state(s, st, err);
}

cairn_rc_t cairn__pj_sink_apply(cairn__pj_sink_t *s,
                                const cairn__pj_event_t *evs,
                                size_t n,
                                const char *checkpoint,
                                uint64_t events,
                                long *failed_at,
                                cairn_error_t *err)
{
    *failed_at = -1;
    return s->ops->apply(s, evs, n, checkpoint, events, failed_at, err);
}

int cairn__pj_sink_can_send(const cairn__pj_sink_t *s)
{
    return s && s->ops->send && s->ops->finish;
}

cairn_rc_t cairn__pj_sink_send(cairn__pj_sink_t *s,
                               const cairn__pj_event_t *evs,
                               size_t n,
                               const char *checkpoint,
                               uint64_t events,
                               long *failed_at,
                               cairn_error_t *err)
{
    *failed_at = -1;
    return s->ops->send(s, evs, n, checkpoint, events, failed_at, err);
}

cairn_rc_t cairn__pj_sink_finish(cairn__pj_sink_t *s,
                                 const cairn__pj_event_t *evs,
                                 size_t n,
                                 long *failed_at,
                                 cairn_error_t *err)
{
    *failed_at = -1;
    return s->ops->finish(s, evs, n, failed_at, err);
}

cairn_rc_t cairn__pj_sink_prepare(cairn__pj_sink_t *s,
                                  const cairn__pj_event_t *evs,
                                  size_t n,
                                  const char *checkpoint,
                                  uint64_t events,
                                  cairn_error_t *err)
{
    return s->ops->prepare ? s->ops->prepare(s, evs, n, checkpoint, events, err) : CAIRN_OK;
}

int cairn__pj_sink_can_fold(const cairn__pj_sink_t *s)
{
    return s && s->ops->can_fold && s->ops->fold && s->ops->fold_drop && s->ops->send_fold &&
           s->ops->finish && s->ops->can_fold(s);
}

cairn_rc_t cairn__pj_sink_fold(cairn__pj_sink_t *s,
                               const cairn__pj_event_t *ev,
                               size_t *rows,
                               cairn_error_t *err)
{
    return s->ops->fold(s, ev, rows, err);
}

void cairn__pj_sink_fold_drop(cairn__pj_sink_t *s)
{
    if (s && s->ops->fold_drop)
        s->ops->fold_drop(s);
}

cairn_rc_t cairn__pj_sink_send_fold(cairn__pj_sink_t *s,
                                    const char *checkpoint,
                                    uint64_t events,
                                    cairn_error_t *err)
{
    return s->ops->send_fold(s, checkpoint, events, err);
}

cairn_rc_t cairn__pj_sink_reset(cairn__pj_sink_t *s, cairn_error_t *err)
{
    return s->ops->reset(s, err);
}

cairn_rc_t cairn__pj_sink_mark_poison(cairn__pj_sink_t *s, const char *why, cairn_error_t *err)
{
    return s->ops->mark_poison(s, why, err);
}
