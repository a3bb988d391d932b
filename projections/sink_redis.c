/* SPDX-License-Identifier: MIT */
/*
 * sink_redis.c - the Redis sink (hiredis 0.14, the old API): hashes, sorted
 * sets, strings and counters whose keys come from templates ("account:{/id}"),
 * and the projector's checkpoint in the hash cairn:checkpoint:<projector>.
 *
 * One batch is one MULTI ... EXEC, pipelined: every write of the batch, then
 * HSET of the checkpoint, then EXEC. Redis runs the block without other
 * clients' commands in between, so a runner killed at any point leaves either
 * the whole batch with its checkpoint or none of it: after a crash of the
 * projector, no event is applied twice nor skipped.
 *
 * The batch may be sent (rd_send) and its replies read later (rd_finish),
 * so that the runner decodes the next batch meanwhile; nothing else is
 * written to the connection in between.
 *
 * What MULTI/EXEC does not do is roll back. Errors come in two kinds:
 * - at queue time (wrong arity, unknown command): EXEC answers EXECABORT and
 *   nothing ran; the event is reported as poison with "nothing applied";
 * - at run time (WRONGTYPE, HINCRBY on a non-integer field): the other
 *   commands of the block, the checkpoint included, did run. Every reply of
 *   EXEC is checked; the first error stops the projector at its event as a
 *   poison event, the error says "batch partly applied", and the checkpoint
 *   hash gets a `poison` field: the runner refuses to start the projector
 *   again until `cairn projections reset`, since its read model now holds
 *   part of a batch.
 * The runner validates values before they are queued (numbers where Redis
 * wants numbers, no null key parts), so the second kind needs data that was
 * changed behind the projector's back.
 *
 * Durability is Redis's own: exactly-once covers projector crashes; a Redis
 * without persistence (no AOF, no RDB) that restarts loses data and
 * checkpoint together, and the projector then starts over from the log's
 * beginning, which rebuilds the same model.
 *
 * Names: every key is "<prefix><target>:" + the template (no "<target>:"
 * for the live model), and the checkpoint key is cairn:checkpoint:<name>,
 * plus "#<target>" for a shadow copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "projections.h"

/* One command of a batch: its name and its event (-1: the checkpoint). */
struct cmd {
    const char *name;
    long event;
};

struct rd {
    redisContext *c;
    char keyprefix[256];
    char cpkey[256];
    /* rd_apply's buffers, kept from batch to batch */
    cairn_buf_t resp; /* the batch in the Redis protocol */
    cairn_buf_t tmp;  /* one argument */
    struct cmd *cmds;
    size_t ncmds, acmds;
    int sent; /* rd_send wrote a batch whose replies rd_finish has not read */
};

static void rd_buffers_release(struct rd *r)
{
    cairn_buf_release(&r->resp);
    cairn_buf_release(&r->tmp);
    cairn__free(r->cmds);
    r->cmds = NULL;
    r->ncmds = r->acmds = 0;
}

static cairn_rc_t
lost(struct rd *r, const cairn__pj_spec_t *spec, const char *what, cairn_error_t *err)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s", r->c && r->c->err ? r->c->errstr : "connection lost");
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
    return cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, spec->name,
                            "projector '%s': redis: %s: %s", spec->name, what, msg);
}

/* Runs one command; a reply of type error is CAIRN_E_INVALID. */
static cairn_rc_t run(struct rd *r,
                      const cairn__pj_spec_t *spec,
                      redisReply **out,
                      cairn_error_t *err,
                      int argc,
                      const char **argv,
                      const size_t *lens)
{
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
    if (!rep)
        return lost(r, spec, argv[0], err);
    if (rep->type == REDIS_REPLY_ERROR) {
        cairn_rc_t rc =
            cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name, "projector '%s': redis: %s: %s",
                             spec->name, argv[0], rep->str);
        freeReplyObject(rep);
        return rc;
    }
    if (out)
        *out = rep;
    else
        freeReplyObject(rep);
    return CAIRN_OK;
}

static void rd_close(cairn__pj_sink_t *s);

static cairn_rc_t rd_open(cairn__pj_sink_t *s, cairn_error_t *err)
{
    const cairn__pj_spec_t *spec = s->spec;
    struct rd *r = cairn__calloc(1, sizeof *r);
    long wait = s->retry.backoff_ms;
    char msg[160] = "";
    cairn_rc_t rc = CAIRN_OK;

    if (!r)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    s->impl = r;
    cairn_buf_init(&r->resp, (size_t)1 << 30);
    cairn_buf_init(&r->tmp, 16u << 20);
    snprintf(r->keyprefix, sizeof r->keyprefix, "%s%s%s", spec->prefix, s->target,
             *s->target ? ":" : "");
    snprintf(r->cpkey, sizeof r->cpkey, "cairn:checkpoint:%s%s%s", spec->name,
             *s->target ? "#" : "", s->target);
    for (int attempt = 1;; attempt++) {
        struct timeval tv = {2, 0};
        r->c = redisConnectWithTimeout(spec->host, spec->port, tv);
        if (r->c && !r->c->err)
            break;
        snprintf(msg, sizeof msg, "%s", r->c ? r->c->errstr : "out of memory");
        if (r->c)
            redisFree(r->c);
        r->c = NULL;
        if (attempt >= s->retry.attempts) {
            rc =
                cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, spec->name,
                                 "projector '%s': redis at %s:%d unreachable after %d attempts: %s",
                                 spec->name, spec->host, spec->port, attempt, msg);
            goto out;
        }
        cairn__log(CAIRN_LOG_WARNING, "projections",
                   "projector '%s': redis connection attempt %d failed: %s; retrying in %ld ms",
                   spec->name, attempt, msg, wait);
        cairn__sleep_ms(wait);
        wait *= 2;
    }
    {
        struct timeval tv = {30, 0};
        redisSetTimeout(r->c, tv);
    }
    if (spec->password) {
        const char *argv[2] = {"AUTH", spec->password};
        size_t lens[2] = {4, strlen(spec->password)};
        rc = run(r, spec, NULL, err, 2, argv, lens);
    }
    if (rc == CAIRN_OK && spec->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", spec->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        rc = run(r, spec, NULL, err, 2, argv, lens);
    }
out:
    if (rc != CAIRN_OK)
        rd_close(s);
    return rc;
}

static void rd_close(cairn__pj_sink_t *s)
{
    struct rd *r = s->impl;
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    rd_buffers_release(r);
    cairn__free(r);
    s->impl = NULL;
}

static cairn_rc_t rd_state(cairn__pj_sink_t *s, cairn__pj_state_t *st, cairn_error_t *err)
{
    struct rd *r = s->impl;
    redisReply *rep = NULL;
    const char *argv[6] = {"HMGET", r->cpkey, "checkpoint", "events", "poison", "updated_at"};
    size_t lens[6];
    if (!r->c)
        return lost(r, s->spec, "HMGET", err);
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    cairn_rc_t rc = run(r, s->spec, &rep, err, 6, argv, lens);
    if (rc != CAIRN_OK)
        return rc;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
        if (rep->element[0]->type == REDIS_REPLY_STRING)
            snprintf(st->checkpoint, sizeof st->checkpoint, "%s", rep->element[0]->str);
        if (rep->element[1]->type == REDIS_REPLY_STRING)
            st->events = strtoull(rep->element[1]->str, NULL, 10);
        if (rep->element[2]->type == REDIS_REPLY_STRING)
            snprintf(st->poison, sizeof st->poison, "%s", rep->element[2]->str);
        if (rep->element[3]->type == REDIS_REPLY_STRING)
            snprintf(st->updated_at, sizeof st->updated_at, "%s", rep->element[3]->str);
    }
    freeReplyObject(rep);
    return CAIRN_OK;
}

/* ---- building a batch -------------------------------------------------- */

/*
 * A batch is built as the Redis protocol itself (RESP arrays of bulk
 * strings) in one buffer, MULTI first and EXEC last, and handed to hiredis
 * in one redisAppendFormattedCommand: no per-command formatting or argv
 * arrays. The buffers live in the sink and are reused from batch to batch.
 */

static cairn_rc_t append_u64(cairn_buf_t *out, unsigned long long u)
{
    char tmp[24], *q = tmp + sizeof tmp;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
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
        if (json_is_string(v)) {
            rc = cairn_buf_append(out, json_string_value(v), json_string_length(v));
        } else if (json_is_integer(v)) {
            json_int_t i = json_integer_value(v);
            if (i < 0)
                rc = cairn_buf_append(out, "-", 1);
            if (rc == CAIRN_OK)
                rc = append_u64(out, i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i);
        } else {
            return cairn__pj_src_text(src, ev, out, is_null, err);
        }
        if (rc != CAIRN_OK)
            return cairn__error_set(err, rc, 0, NULL, "value too large");
        return CAIRN_OK;
    }
    return cairn__pj_src_text(src, ev, out, is_null, err);
}

static cairn_rc_t cmd_begin(struct rd *r, const char *name, size_t argc, long event)
{
    if (r->ncmds == r->acmds) {
        size_t n = r->acmds ? r->acmds * 2 : 256;
        struct cmd *c = cairn__realloc(r->cmds, n * sizeof *c);
        if (!c)
            return CAIRN_E_NOMEM;
        r->cmds = c;
        r->acmds = n;
    }
    r->cmds[r->ncmds++] = (struct cmd){name, event};
    cairn_rc_t rc = cairn_buf_append(&r->resp, "*", 1);
    if (rc == CAIRN_OK)
        rc = append_u64(&r->resp, argc);
    if (rc == CAIRN_OK)
        rc = cairn_buf_append(&r->resp, "\r\n", 2);
    return rc;
}

static cairn_rc_t arg_push(struct rd *r, const char *p, size_t len)
{
    cairn_rc_t rc = cairn_buf_append(&r->resp, "$", 1);
    if (rc == CAIRN_OK)
        rc = append_u64(&r->resp, len);
    if (rc == CAIRN_OK)
        rc = cairn_buf_append(&r->resp, "\r\n", 2);
    if (rc == CAIRN_OK)
        rc = cairn_buf_append(&r->resp, p, len);
    if (rc == CAIRN_OK)
        rc = cairn_buf_append(&r->resp, "\r\n", 2);
    return rc;
}

static cairn_rc_t arg_pushs(struct rd *r, const char *s)
{
    return arg_push(r, s, strlen(s));
}

/* Pushes the text of a source as one argument. */
static cairn_rc_t
arg_src(struct rd *r, const cairn__pj_src_t *src, const cairn__pj_event_t *ev, cairn_error_t *err)
{
    int is_null = 0;
    cairn_buf_reset(&r->tmp);
    cairn_rc_t rc = src_text(src, ev, &r->tmp, &is_null, err);
    if (rc != CAIRN_OK)
        return rc;
    if (is_null)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "a null value cannot be written to redis");
    return arg_push(r, r->tmp.data ? r->tmp.data : "", r->tmp.len);
}

static cairn_rc_t arg_tmpl(struct rd *r,
                           const char *prefix,
                           const cairn__pj_tmpl_t *t,
                           const cairn__pj_event_t *ev,
                           cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_buf_reset(&r->tmp);
    if (*prefix)
        rc = cairn_buf_appends(&r->tmp, prefix);
    for (size_t i = 0; i < t->n && rc == CAIRN_OK; i++) {
        const cairn__pj_tmpl_part_t *part = &t->parts[i];
        if (part->literal) {
            rc = cairn_buf_appends(&r->tmp, part->literal);
        } else {
            /* The template's rules (no empty or null part) are cairn__pj_tmpl_text's. */
            int is_null = 0;
            size_t before = r->tmp.len;
            rc = src_text(&part->src, ev, &r->tmp, &is_null, err);
            if (rc == CAIRN_OK && (is_null || r->tmp.len == before))
                return cairn__error_set(err, CAIRN_E_INVALID, 0, t->text,
                                        "key template \"%s\": an empty or null part", t->text);
            if (rc != CAIRN_OK)
                return rc;
        }
    }
    if (rc != CAIRN_OK)
        return cairn__error_set(err, rc, 0, NULL, "key too large");
    return arg_push(r, r->tmp.data ? r->tmp.data : "", r->tmp.len);
}

static cairn_rc_t build_event(struct rd *r, const cairn__pj_event_t *ev, long e, cairn_error_t *err)
{
    static const char *const names[] = {
        [CAIRN__PJ_R_HSET] = "HSET",     [CAIRN__PJ_R_HDEL] = "HDEL",
        [CAIRN__PJ_R_DEL] = "DEL",       [CAIRN__PJ_R_SET] = "SET",
        [CAIRN__PJ_R_ZADD] = "ZADD",     [CAIRN__PJ_R_ZREM] = "ZREM",
        [CAIRN__PJ_R_INCRBY] = "INCRBY", [CAIRN__PJ_R_HINCRBY] = "HINCRBY",
    };
    cairn_rc_t rc = CAIRN_OK;
    const cairn__pj_handler_t *h = ev->handler;
    for (size_t j = 0; h && j < h->nactions && rc == CAIRN_OK; j++) {
        const cairn__pj_action_t *a = &h->actions[j];
        size_t argc = 3;
        if (a->op == CAIRN__PJ_R_HSET)
            argc = 2 + 2 * a->nassigns;
        else if (a->op == CAIRN__PJ_R_ZADD || a->op == CAIRN__PJ_R_HINCRBY)
            argc = 4;
        else if (a->op == CAIRN__PJ_R_DEL)
            argc = 2;
        if ((rc = cmd_begin(r, names[a->op], argc, e)) != CAIRN_OK ||
            (rc = arg_pushs(r, names[a->op])) != CAIRN_OK ||
            (rc = arg_tmpl(r, r->keyprefix, &a->key, ev, err)) != CAIRN_OK)
            break;
        switch (a->op) {
        case CAIRN__PJ_R_HSET:
            for (size_t k = 0; k < a->nassigns && rc == CAIRN_OK; k++) {
                rc = arg_pushs(r, a->assigns[k].name);
                if (rc == CAIRN_OK)
                    rc = arg_src(r, &a->assigns[k].src, ev, err);
            }
            break;
        case CAIRN__PJ_R_ZADD:
            rc = arg_src(r, &a->value, ev, err);
            if (rc == CAIRN_OK)
                rc = arg_tmpl(r, "", &a->member, ev, err);
            break;
        case CAIRN__PJ_R_HINCRBY:
            rc = arg_tmpl(r, "", &a->member, ev, err);
            if (rc == CAIRN_OK)
                rc = arg_src(r, &a->value, ev, err);
            break;
        case CAIRN__PJ_R_HDEL:
        case CAIRN__PJ_R_ZREM:
            rc = arg_tmpl(r, "", &a->member, ev, err);
            break;
        case CAIRN__PJ_R_INCRBY:
        case CAIRN__PJ_R_SET:
            rc = arg_src(r, &a->value, ev, err);
            break;
        default:
            break;
        }
    }
    return rc;
}

static cairn_rc_t rd_send(cairn__pj_sink_t *s,
                          const cairn__pj_event_t *evs,
                          size_t n,
                          const char *checkpoint,
                          uint64_t events,
                          long *failed_at,
                          cairn_error_t *err)
{
    struct rd *r = s->impl;
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    char count[32], now[32];

    if (!r->c) {
        rc = lost(r, spec, "MULTI", err);
        goto out;
    }
    r->sent = 0;
    cairn_buf_reset(&r->resp);
    r->ncmds = 0;
    if ((rc = cairn_buf_appends(&r->resp, "*1\r\n$5\r\nMULTI\r\n")) != CAIRN_OK) {
        rc = cairn__error_set(err, rc, 0, NULL, "out of memory");
        goto out;
    }
    for (size_t e = 0; e < n && rc == CAIRN_OK; e++) {
        rc = build_event(r, &evs[e], (long)e, err);
        if (rc != CAIRN_OK && rc != CAIRN_E_NOMEM && rc != CAIRN_E_INVALID_TOO_LARGE)
            *failed_at = (long)e;
    }
    if (rc == CAIRN_E_NOMEM || rc == CAIRN_E_INVALID_TOO_LARGE)
        rc = cairn__error_set(err, rc, 0, NULL, "batch too large");
    if (rc != CAIRN_OK)
        goto out;
    snprintf(count, sizeof count, "%llu", (unsigned long long)events);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    if ((rc = cmd_begin(r, "HSET", 8, -1)) != CAIRN_OK || (rc = arg_pushs(r, "HSET")) != CAIRN_OK ||
        (rc = arg_pushs(r, r->cpkey)) != CAIRN_OK ||
        (rc = arg_pushs(r, "checkpoint")) != CAIRN_OK ||
        (rc = arg_pushs(r, checkpoint)) != CAIRN_OK || (rc = arg_pushs(r, "events")) != CAIRN_OK ||
        (rc = arg_pushs(r, count)) != CAIRN_OK || (rc = arg_pushs(r, "updated_at")) != CAIRN_OK ||
        (rc = arg_pushs(r, now)) != CAIRN_OK ||
        (rc = cairn_buf_appends(&r->resp, "*1\r\n$4\r\nEXEC\r\n")) != CAIRN_OK) {
        rc = cairn__error_set(err, rc, 0, NULL, "batch too large");
        goto out;
    }
    /* Queue everything and write it out now; rd_finish reads the replies. */
    if (redisAppendFormattedCommand(r->c, r->resp.data, r->resp.len) != REDIS_OK) {
        rc = lost(r, spec, "MULTI", err);
        goto out;
    }
    for (int done = 0; !done;) {
        if (redisBufferWrite(r->c, &done) != REDIS_OK) {
            rc = lost(r, spec, "MULTI", err);
            goto out;
        }
    }
    r->sent = 1;
out:
    /* A large batch's buffers are not kept beyond it. */
    if (r->resp.alloc > (64u << 20))
        cairn_buf_release(&r->resp);
    return rc;
}

/*
 * Reads the replies of the batch rd_send wrote (MULTI, one QUEUED per
 * command, EXEC) and checks every one. @p evs and @p n are the batch given
 * to rd_send, still alive: errors name their events.
 */
static cairn_rc_t rd_finish(cairn__pj_sink_t *s,
                            const cairn__pj_event_t *evs,
                            size_t n,
                            long *failed_at,
                            cairn_error_t *err)
{
    struct rd *r = s->impl;
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    long queue_error_at = -1;
    char queue_error[200] = "";

    (void)n;
    if (!r->sent || !r->c) {
        rc = r->c ? cairn__error_set(err, CAIRN_E_INTERNAL, 0, spec->name,
                                     "projector '%s': redis: no batch was sent", spec->name)
                  : lost(r, spec, "EXEC", err);
        goto out;
    }
    r->sent = 0;
    /* MULTI, one QUEUED per command, then EXEC. */
    for (size_t i = 0; i < r->ncmds + 2; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(r->c, (void **)&rep) != REDIS_OK || !rep) {
            rc = lost(r, spec, "EXEC", err);
            goto out;
        }
        if (i > 0 && i <= r->ncmds && rep->type == REDIS_REPLY_ERROR && queue_error_at < 0) {
            queue_error_at = r->cmds[i - 1].event;
            snprintf(queue_error, sizeof queue_error, "%s", rep->str);
        }
        if (i == r->ncmds + 1) {
            if (rep->type == REDIS_REPLY_ERROR || rep->type != REDIS_REPLY_ARRAY) {
                if (queue_error_at >= 0) {
                    const cairn__pj_event_t *ev = &evs[queue_error_at];
                    *failed_at = queue_error_at;
                    rc =
                        cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name,
                                         "projector '%s': redis refused the event at partition "
                                         "%d position %llu (stream '%s'): %s; nothing of the "
                                         "batch was applied",
                                         spec->name, (int)ev->partition,
                                         (unsigned long long)ev->position, ev->stream, queue_error);
                } else {
                    rc = cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name,
                                          "projector '%s': redis: EXEC failed: %s", spec->name,
                                          rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
                }
            } else {
                /* Every reply of EXEC is checked: the first error is a poison event. */
                for (size_t k = 0; k < rep->elements && k < r->ncmds; k++) {
                    redisReply *x = rep->element[k];
                    if (x->type != REDIS_REPLY_ERROR)
                        continue;
                    long e = r->cmds[k].event;
                    if (e < 0) {
                        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name,
                                              "projector '%s': redis: writing the checkpoint "
                                              "failed: %s; batch partly applied",
                                              spec->name, x->str);
                    } else {
                        *failed_at = e;
                        rc = cairn__error_set(
                            err, CAIRN_E_INVALID, 0, spec->name,
                            "projector '%s': redis: %s failed for the event at partition %d "
                            "position %llu (stream '%s'): %s; batch partly applied",
                            spec->name, r->cmds[k].name, (int)evs[e].partition,
                            (unsigned long long)evs[e].position, evs[e].stream, x->str);
                    }
                    break;
                }
            }
        }
        freeReplyObject(rep);
    }
out:
    return rc;
}

static cairn_rc_t rd_apply(cairn__pj_sink_t *s,
                           const cairn__pj_event_t *evs,
                           size_t n,
                           const char *checkpoint,
                           uint64_t events,
                           long *failed_at,
                           cairn_error_t *err)
{
    cairn_rc_t rc = rd_send(s, evs, n, checkpoint, events, failed_at, err);
    if (rc != CAIRN_OK)
        return rc;
    return rd_finish(s, evs, n, failed_at, err);
}

void cairn__pj_glob_escape(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 3 < size; s++) {
        if (strchr("*?[]\\", *s))
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = '\0';
}

cairn_rc_t cairn__pj_redis_key_patterns(const cairn__pj_spec_t *spec,
                                        const char *keyprefix,
                                        cairn_strlist_t *out,
                                        cairn_error_t *err)
{
    /* The literal head of every key template names this projector's keys. */
    for (size_t h = 0; h < spec->nhandlers; h++) {
        for (size_t j = 0; j < spec->handlers[h].nactions; j++) {
            const cairn__pj_tmpl_t *t = &spec->handlers[h].actions[j].key;
            char head[600], pat[1300];
            snprintf(head, sizeof head, "%s%s", keyprefix,
                     t->n && t->parts[0].literal ? t->parts[0].literal : "");
            if (!head[0])
                return cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name,
                                        "projector '%s': cannot tell its keys apart from others "
                                        "(key \"%s\" starts with a field): set sink.redis.prefix",
                                        spec->name, t->text);
            cairn__pj_glob_escape(pat, sizeof pat - 2, head);
            strcat(pat, t->n > 1 || !t->parts[0].literal ? "*" : "");
            int seen = 0;
            for (size_t k = 0; k < out->n; k++)
                seen |= !strcmp(out->items[k], pat);
            if (!seen && cairn_strlist_push(out, pat) != CAIRN_OK)
                return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        }
    }
    return CAIRN_OK;
}

static cairn_rc_t rd_reset(cairn__pj_sink_t *s, cairn_error_t *err)
{
    struct rd *r = s->impl;
    const cairn__pj_spec_t *spec = s->spec;
    cairn_rc_t rc = CAIRN_OK;
    cairn_strlist_t patterns;

    const char *prefix = spec->prefix ? spec->prefix : "";
    size_t plen = strlen(prefix);
    int root = !strcmp(r->keyprefix, prefix); /* not a generation's target */
    cairn_strlist_init(&patterns);
    rc = cairn__pj_redis_key_patterns(spec, r->keyprefix, &patterns, err);
    for (size_t k = 0; k < patterns.n && rc == CAIRN_OK; k++) {
        char cursor[32] = "0";
        do {
            redisReply *rep = NULL;
            const char *argv[6] = {"SCAN", cursor, "MATCH", patterns.items[k], "COUNT", "1000"};
            size_t lens[6];
            for (int i = 0; i < 6; i++)
                lens[i] = strlen(argv[i]);
            if ((rc = run(r, spec, &rep, err, 6, argv, lens)) != CAIRN_OK)
                break;
            if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
                freeReplyObject(rep);
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name, "unexpected SCAN reply");
                break;
            }
            snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
            redisReply *keys = rep->element[1];
            for (size_t i = 0; i < keys->elements && rc == CAIRN_OK; i++) {
                /* The root generation's patterns may also match other
                   generations' keys under the same prefix: not ours. */
                const char *key = keys->element[i]->str;
                if (root && strlen(key) >= plen && cairn__pj_redis_generation_key(key + plen))
                    continue;
                const char *dv[2] = {"UNLINK", keys->element[i]->str};
                size_t dl[2] = {6, keys->element[i]->len};
                rc = run(r, spec, NULL, err, 2, dv, dl);
            }
            freeReplyObject(rep);
        } while (rc == CAIRN_OK && strcmp(cursor, "0"));
    }
    if (rc == CAIRN_OK) {
        const char *argv[2] = {"DEL", r->cpkey};
        size_t lens[2] = {3, strlen(r->cpkey)};
        rc = run(r, spec, NULL, err, 2, argv, lens);
    }
    cairn_strlist_release(&patterns);
    return rc;
}

static cairn_rc_t rd_mark_poison(cairn__pj_sink_t *s, const char *why, cairn_error_t *err)
{
    struct rd *r = s->impl;
    if (!r->c)
        return lost(r, s->spec, "HSET", err);
    const char *argv[4] = {"HSET", r->cpkey, "poison", why};
    size_t lens[4] = {4, strlen(r->cpkey), 6, strlen(why)};
    return run(r, s->spec, NULL, err, 4, argv, lens);
}

const struct cairn__pj_sink_ops cairn__pj_sink_redis_ops = {
    .open = rd_open,
    .close = rd_close,
    .state = rd_state,
    .apply = rd_apply,
    .reset = rd_reset,
    .mark_poison = rd_mark_poison,
    .send = rd_send,
    .finish = rd_finish,
};

/* For rebuild and dead letters (shadow_redis.c, deadletter.c): the connection. */
struct redisContext *cairn__pj_sink_redis_ctx(cairn__pj_sink_t *s)
{
    struct rd *r = s && s->ops == &cairn__pj_sink_redis_ops ? s->impl : NULL;
    return r ? r->c : NULL;
}
