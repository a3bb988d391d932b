/* SPDX-License-Identifier: MIT */
/*
 * shadow_redis.c - the Redis half of `cairn projections rebuild`: key
 * generations behind a pointer key, the flip, and the drop of the old
 * generation.
 *
 * Generations. A Redis projector never rebuilt writes its keys under the
 * spec's prefix ("<prefix>acc:1"), checkpoint cairn:checkpoint:<name>. A
 * rebuild writes generation gN+1 under "<prefix>gN+1:" (the sink's target),
 * checkpoint cairn:checkpoint:<name>#gN+1, while the pointer key
 * "<prefix>gen" still names the live generation (absent: the root one).
 * Readers GET the pointer first and read the keys under it; the runner does
 * the same when it starts. A killed rebuild finds its generation and its
 * checkpoint where it left them and resumes.
 *
 * The flip is one MULTI/EXEC: SET <prefix>gen gN+1 and a `swapped_at` field
 * in the new generation's checkpoint hash, whose checkpoint thereby becomes
 * the live one. Then the live projector's connection (CLIENT SETNAME
 * cairn-pj:<name>, set by the runner) is killed: its runner reconnects,
 * reads the pointer again and resumes from the new generation's checkpoint.
 * Whatever it wrote to the old generation after the flip is invisible to
 * readers. A runner that reconnects during the flip checks the pointer again
 * after naming its connection, so it cannot slip between flip and kill.
 *
 * The old generation is deleted after the grace period, so a reader that
 * resolved the pointer just before the flip still finds its keys; then any
 * older generation a rebuild killed during its grace period left behind
 * (cairn__pj_redis_drop_leftovers). The root
 * generation's keys are found as `reset` finds them (the literal head of
 * every key template), skipping the generation keys.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "projections.h"

static cairn_rc_t connect_rd(const cairn__pj_spec_t *spec,
                             const cairn__pj_retry_t *retry,
                             redisContext **out,
                             cairn_error_t *err)
{
    long wait = retry && retry->backoff_ms > 0 ? retry->backoff_ms : 200;
    int attempts = retry && retry->attempts > 0 ? retry->attempts : 5;
    char m[160];
    for (int attempt = 1;; attempt++) {
        struct timeval tv = {2, 0};
        redisContext *c = redisConnectWithTimeout(spec->host, spec->port, tv);
        if (c && !c->err) {
            struct timeval rt = {30, 0};
            redisSetTimeout(c, rt);
            redisReply *r = NULL;
            if (spec->password)
                r = redisCommand(c, "AUTH %s", spec->password);
            if (!spec->password || (r && r->type != REDIS_REPLY_ERROR)) {
                freeReplyObject(r);
                r = spec->db ? redisCommand(c, "SELECT %d", spec->db) : NULL;
                if (!spec->db || (r && r->type != REDIS_REPLY_ERROR)) {
                    freeReplyObject(r);
                    *out = c;
                    return CAIRN_OK;
                }
            }
            snprintf(m, sizeof m, "%s", r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            freeReplyObject(r);
            redisFree(c);
            return cairn__error_set(err, CAIRN_E_INVALID, 0, spec->name,
                                    "projector '%s': redis: %s", spec->name, m);
        }
        snprintf(m, sizeof m, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        if (attempt >= attempts)
            return cairn__error_set(
                err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, spec->name,
                "projector '%s': redis at %s:%d unreachable after %d attempts: %s", spec->name,
                spec->host, spec->port, attempt, m);
        cairn__sleep_ms(wait);
        wait *= 2;
    }
}

static cairn_rc_t failed(redisContext *c,
                         redisReply *r,
                         const cairn__pj_spec_t *spec,
                         const char *what,
                         cairn_error_t *err)
{
    cairn_rc_t rc = r ? CAIRN_E_INVALID : CAIRN_E_UNAVAILABLE;
    cairn__error_set(err, rc, r ? 0 : CAIRN_ERR_RETRIABLE, spec->name,
                     "projector '%s': redis: %s: %s", spec->name, what,
                     r && r->type == REDIS_REPLY_ERROR ? r->str
                     : c && c->err                     ? c->errstr
                                                       : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

static void pointer_key(char *out, size_t size, const cairn__pj_spec_t *spec)
{
    snprintf(out, size, "%sgen", spec->prefix ? spec->prefix : "");
}

static cairn_rc_t read_generation(
    redisContext *c, const cairn__pj_spec_t *spec, char *out, size_t size, cairn_error_t *err)
{
    char key[300];
    pointer_key(key, sizeof key, spec);
    redisReply *r = redisCommand(c, "GET %s", key);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
        return failed(c, r, spec, "GET generation", err);
    snprintf(out, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return CAIRN_OK;
}

cairn_rc_t cairn__pj_redis_generation(const cairn__pj_spec_t *spec,
                                      const cairn__pj_retry_t *retry,
                                      char *out,
                                      size_t size,
                                      cairn_error_t *err)
{
    redisContext *c = NULL;
    cairn_rc_t rc = connect_rd(spec, retry, &c, err);
    if (rc == CAIRN_OK)
        rc = read_generation(c, spec, out, size, err);
    if (c)
        redisFree(c);
    return rc;
}

cairn_rc_t cairn__pj_redis_tag(cairn__pj_sink_t *s, cairn_error_t *err)
{
    redisContext *c = cairn__pj_sink_redis_ctx(s);
    if (!c)
        return cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, s->spec->name,
                                "projector '%s': redis: not connected", s->spec->name);
    redisReply *r = redisCommand(c, "CLIENT SETNAME cairn-pj:%s", s->spec->name);
    if (!r || r->type == REDIS_REPLY_ERROR)
        return failed(c, r, s->spec, "CLIENT SETNAME", err);
    freeReplyObject(r);
    /* A flip between our pointer read and the name would miss us: look again. */
    return cairn__pj_redis_check_generation(s, err);
}

cairn_rc_t cairn__pj_redis_check_generation(cairn__pj_sink_t *s, cairn_error_t *err)
{
    redisContext *c = cairn__pj_sink_redis_ctx(s);
    char gen[64];
    if (!c)
        return cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, s->spec->name,
                                "projector '%s': redis: not connected", s->spec->name);
    cairn_rc_t rc = read_generation(c, s->spec, gen, sizeof gen, err);
    if (rc == CAIRN_OK && strcmp(gen, s->target))
        rc = cairn__error_set(err, CAIRN_E_UNAVAILABLE, CAIRN_ERR_RETRIABLE, s->spec->name,
                              "projector '%s': redis: the live generation moved from '%s' to "
                              "'%s'",
                              s->spec->name, s->target, gen);
    return rc;
}

static void cp_key(char *out, size_t size, const cairn__pj_spec_t *spec, const char *gen)
{
    snprintf(out, size, "cairn:checkpoint:%s%s%s", spec->name, *gen ? "#" : "", gen);
}

cairn_rc_t cairn__pj_redis_describe(const cairn__pj_spec_t *spec,
                                    const cairn__pj_retry_t *retry,
                                    const char *live,
                                    const char *shadow,
                                    FILE *out,
                                    cairn_error_t *err)
{
    redisContext *c = NULL;
    char lk[300], sk[300], pk[300];
    cairn_rc_t rc = connect_rd(spec, retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    cp_key(lk, sizeof lk, spec, live);
    cp_key(sk, sizeof sk, spec, shadow);
    pointer_key(pk, sizeof pk, spec);
    redisReply *a = redisCommand(c, "HMGET %s checkpoint events", lk);
    redisReply *b = redisCommand(c, "HMGET %s checkpoint events", sk);
    if (!a || !b || a->type != REDIS_REPLY_ARRAY || b->type != REDIS_REPLY_ARRAY ||
        a->elements != 2 || b->elements != 2) {
        freeReplyObject(b);
        rc = failed(c, a, spec, "HMGET", err);
    } else {
        const char *p = spec->prefix ? spec->prefix : "";
        int resume = b->element[0]->type == REDIS_REPLY_STRING && b->element[0]->len;
        fprintf(out,
                "pointer=%s live=%s%s%s live_checkpoint=%s live_events=%s shadow=%s%s: "
                "shadow_checkpoint=%s shadow_events=%s start=%s swap=\"SET %s %s\" "
                "drop_after_grace=\"keys of generation '%s'\"\n",
                pk, p, live, *live ? ":" : "",
                a->element[0]->type == REDIS_REPLY_STRING ? a->element[0]->str : "none",
                a->element[1]->type == REDIS_REPLY_STRING ? a->element[1]->str : "0", p, shadow,
                resume ? b->element[0]->str : "none",
                b->element[1]->type == REDIS_REPLY_STRING ? b->element[1]->str : "0",
                resume ? "resume" : "beginning", pk, shadow, *live ? live : "(root)");
        freeReplyObject(a);
        freeReplyObject(b);
    }
    redisFree(c);
    return rc;
}

/* Kills the connections named cairn-pj:<name>; returns how many. */
static int kill_live(redisContext *c, const cairn__pj_spec_t *spec)
{
    char want[160];
    int n = 0;
    snprintf(want, sizeof want, "name=cairn-pj:%s", spec->name);
    redisReply *r = redisCommand(c, "CLIENT LIST");
    if (!r || r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return 0;
    }
    for (char *line = r->str; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *nm = strstr(line, want);
        size_t wl = strlen(want);
        if (nm && (nm[wl] == ' ' || nm[wl] == '\0' || nm[wl] == '\r') && !strncmp(line, "id=", 3)) {
            redisReply *k = redisCommand(c, "CLIENT KILL ID %lld", atoll(line + 3));
            if (k && k->type == REDIS_REPLY_INTEGER)
                n += (int)k->integer;
            freeReplyObject(k);
        }
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    return n;
}

cairn_rc_t cairn__pj_redis_flip(const cairn__pj_spec_t *spec,
                                const cairn__pj_retry_t *retry,
                                const char *shadow,
                                FILE *out,
                                cairn_error_t *err)
{
    redisContext *c = NULL;
    char pk[300], sk[300], now[32];
    cairn_rc_t rc = connect_rd(spec, retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    pointer_key(pk, sizeof pk, spec);
    cp_key(sk, sizeof sk, spec, shadow);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SET %s %s", pk, shadow);
    redisAppendCommand(c, "HSET %s swapped_at %s", sk, now);
    redisAppendCommand(c, "EXEC");
    for (int i = 0; i < 4 && rc == CAIRN_OK; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            rc = failed(c, NULL, spec, "flip", err);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR ||
            (i == 3 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                        r->element[0]->type == REDIS_REPLY_ERROR ||
                        r->element[1]->type == REDIS_REPLY_ERROR))) {
            rc = failed(c, r, spec, "flip (MULTI SET pointer, HSET checkpoint)", err);
            break;
        }
        freeReplyObject(r);
    }
    if (rc == CAIRN_OK) {
        int killed = kill_live(c, spec);
        if (out)
            fprintf(out,
                    "projector=%s state=swapped pointer=%s generation=%s "
                    "live_connections_ended=%d\n",
                    spec->name, pk, shadow, killed);
    }
    redisFree(c);
    return rc;
}

int cairn__pj_redis_generation_key(const char *rest)
{
    if (!strcmp(rest, "gen"))
        return 1;
    if (rest[0] != 'g' || !isdigit((unsigned char)rest[1]))
        return 0;
    const char *p = rest + 1;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == ':';
}

static cairn_rc_t delete_matching(redisContext *c,
                                  const cairn__pj_spec_t *spec,
                                  const char *pattern,
                                  int skip_generations,
                                  long *deleted,
                                  cairn_error_t *err)
{
    char cursor[32] = "0";
    size_t plen = strlen(spec->prefix ? spec->prefix : "");
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            return failed(c, r, spec, "SCAN", err);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            if (skip_generations && strlen(k) >= plen && cairn__pj_redis_generation_key(k + plen))
                continue;
            redisReply *d = redisCommand(c, "UNLINK %b", k, keys->element[i]->len);
            if (!d || d->type == REDIS_REPLY_ERROR) {
                freeReplyObject(r);
                return failed(c, d, spec, "UNLINK", err);
            }
            *deleted += d->integer;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    return CAIRN_OK;
}

cairn_rc_t cairn__pj_redis_drop_generation(const cairn__pj_spec_t *spec,
                                           const cairn__pj_retry_t *retry,
                                           const char *gen,
                                           FILE *out,
                                           cairn_error_t *err)
{
    redisContext *c = NULL;
    char head[600], pat[1300], ck[300];
    long deleted = 0;
    const char *prefix = spec->prefix ? spec->prefix : "";
    cairn_rc_t rc = connect_rd(spec, retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    if (*gen) {
        snprintf(head, sizeof head, "%s%s:", prefix, gen);
        cairn__pj_glob_escape(pat, sizeof pat - 2, head);
        strcat(pat, "*");
        rc = delete_matching(c, spec, pat, 0, &deleted, err);
    } else {
        /* The root generation: the literal head of each key template, but
           not the generations' keys under the same prefix. */
        cairn_strlist_t pats;
        cairn_strlist_init(&pats);
        rc = cairn__pj_redis_key_patterns(spec, prefix, &pats, err);
        for (size_t k = 0; k < pats.n && rc == CAIRN_OK; k++)
            rc = delete_matching(c, spec, pats.items[k], 1, &deleted, err);
        cairn_strlist_release(&pats);
    }
    cp_key(ck, sizeof ck, spec, gen);
    if (rc == CAIRN_OK) {
        redisReply *r = redisCommand(c, "DEL %s", ck);
        if (!r || r->type == REDIS_REPLY_ERROR)
            rc = failed(c, r, spec, "DEL checkpoint", err);
        else
            freeReplyObject(r);
    }
    if (rc == CAIRN_OK && out)
        fprintf(out, "projector=%s state=dropped old=\"generation '%s'\" keys=%ld\n", spec->name,
                *gen ? gen : "(root)", deleted);
    redisFree(c);
    return rc;
}

/* The number N of generation "gN", or -1 when @p gen is not one. */
static long generation_number(const char *gen)
{
    if (gen[0] != 'g' || !isdigit((unsigned char)gen[1]) || strlen(gen) > 12)
        return -1;
    for (const char *p = gen + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return atol(gen + 1);
}

/*
 * Drops what earlier rebuilds left: a rebuild killed during its grace period
 * keeps the generation it retired, which no later flip would drop (each
 * drops only the one it retires). Every generation older than @p live, the
 * generation just swapped in, whose checkpoint hash is still there (a drop
 * deletes it last) goes as drop_generation does; the root generation too,
 * when its checkpoint is there and @p live is not it. No reader can be on
 * them: the pointer left them at least one grace period ago.
 */
cairn_rc_t cairn__pj_redis_drop_leftovers(const cairn__pj_spec_t *spec,
                                          const cairn__pj_retry_t *retry,
                                          const char *live,
                                          FILE *out,
                                          cairn_error_t *err)
{
    long n = generation_number(live);
    if (n <= 0)
        return CAIRN_OK; /* the root (or a hand-made name) is live: nothing older */
    redisContext *c = NULL;
    char name[300], pat[700], gens[64][16]; /* at most 64 a call: the next rebuild takes more */
    size_t ngens = 0;
    int root = 0;
    cairn_rc_t rc = connect_rd(spec, retry, &c, err);
    if (rc != CAIRN_OK)
        return rc;
    cp_key(name, sizeof name, spec, "");
    redisReply *r = redisCommand(c, "EXISTS %s", name);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        rc = failed(c, r, spec, "EXISTS", err);
    else {
        root = r->integer > 0;
        freeReplyObject(r);
    }
    cairn__pj_glob_escape(pat, sizeof pat - 4, name);
    strcat(pat, "#g*");
    char cursor[32] = "0";
    size_t cut = strlen(name) + 1;
    do {
        if (rc != CAIRN_OK)
            break;
        r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pat);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            rc = failed(c, r, spec, "SCAN", err);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements && ngens < 64; i++) {
            const char *k = r->element[1]->element[i]->str;
            long g = strlen(k) > cut ? generation_number(k + cut) : -1;
            if (g >= 0 && g < n)
                snprintf(gens[ngens++], sizeof gens[0], "%s", k + cut);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    redisFree(c);
    for (size_t i = 0; i < ngens && rc == CAIRN_OK; i++)
        rc = cairn__pj_redis_drop_generation(spec, retry, gens[i], out, err);
    if (rc == CAIRN_OK && root) {
        cairn_error_t e = {0};
        /* A root whose keys cannot be told apart (a key template starting
           with a field) is left, said so: the swap itself went well. */
        if (cairn__pj_redis_drop_generation(spec, retry, "", out, &e) != CAIRN_OK && out)
            fprintf(out, "projector=%s state=leftover old=\"generation '(root)'\" error=\"%s\"\n",
                    spec->name, e.text);
    }
    return rc;
}
