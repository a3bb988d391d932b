/* SPDX-License-Identifier: MIT */
/*
 * bench_gen.c - bench_projections_gen: the event log of the projections
 * benchmark (bench/projections/run.sh), and the live-lag probe.
 *
 *   bench_projections_gen log --log URL --registry URL [--events N] [--entities M]
 *                             [--window W] [--seed S] [--json] [--expect FILE]
 *                             [--events-tsv FILE]
 *   bench_projections_gen live --log URL --registry URL --projector NAME
 *                             (--pg CONNINFO | --redis HOST:PORT) [--rate R] [--seconds S]
 *                             [--entities M] [--json]
 *
 * The history. Every entity (stream "e<id>", ids 0..M-1) has N/M events:
 * event 0 is Created {id, name, balance}, the next ones Updated {id,
 * balance}, and the last one is Deleted {id} for even ids (another Updated
 * for odd ones). With the defaults (1,000,000 events, 100,000 entities):
 * 100,000 creates, 850,000 updates, 50,000 deletes, and 50,000 entities left.
 * Entities are interleaved: W of them (default M/10) are "in flight" at
 * once and each event goes to a random one of those (a fixed seed), so
 * creates, updates and deletes are spread over the whole log and one stream's
 * events lie far apart, as in a real log. Values are Avro in the Confluent
 * wire format (byte 0, schema id, Avro binary), encoded with the SDK's serde
 * against schemas it registers in the registry at --registry; --json writes
 * the same values as JSON text instead. The header cairn.type names the type.
 * --expect writes the read model the history must leave (id TAB name TAB
 * balance, sorted by id), so that run.sh checks every rebuild's result;
 * --events-tsv writes the history itself (seq TAB type TAB id TAB name TAB
 * balance, \N when absent) for pg_batch_experiment.py.
 *
 * live: appends the same kind of history (streams "l<id>") at --rate events
 * per second for --seconds, timestamping each event just before its append,
 * while a second thread reads the projector's checkpoint in the sink (the
 * cairn_checkpoints row in PostgreSQL, the cairn:checkpoint:<name> hash in
 * Redis) about every millisecond. An event counts as committed in the sink when
 * the first checkpoint read past its position is seen, so its lag is the
 * time from its append to that read: append, fsync, the runner's tail, decode,
 * the sink's transaction and its commit, plus at most one poll interval.
 * Prints one line: name=projections.live_lag.<sink> ... p50_ms= p99_ms=.
 *
 * Both modes wait for every append to be durable before they finish.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "cairn/eventstore.h"
#include "cairn/registry_client.h"
#include "cairn/serde.h"

#define PIPELINE 256
#define TOPIC    "bench"

static const char *const schema_text[3] = {
    "{\"type\":\"record\",\"name\":\"Created\",\"namespace\":\"bench.pj\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"balance\",\"type\":\"long\"}]}",
    "{\"type\":\"record\",\"name\":\"Updated\",\"namespace\":\"bench.pj\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"balance\",\"type\":\"long\"}]}",
    "{\"type\":\"record\",\"name\":\"Deleted\",\"namespace\":\"bench.pj\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"}]}",
};
static const char *const type_name[3] = {"Created", "Updated", "Deleted"};

enum { EV_CREATED = 0, EV_UPDATED, EV_DELETED };

struct ent {
    uint32_t id;
    uint32_t step;
};

/* The interleaved history: W entities in flight, a fixed-seed generator. */
struct gen {
    uint64_t rng;
    uint32_t entities, per_entity, next_new;
    struct ent *active;
    size_t nactive;
};

struct event {
    uint32_t id;
    int type;
    long long balance;
};

static uint64_t next_rand(struct gen *g)
{
    /* xorshift64* */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 2685821657736338717ull;
}

static long long update_balance(uint32_t id, uint32_t step)
{
    return (long long)(((uint64_t)id * 31u + (uint64_t)step * 977u) % 100000u);
}

static int
gen_init(struct gen *g, uint32_t entities, uint32_t per_entity, size_t window, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->rng = seed ? seed : 88172645463325252ull;
    g->entities = entities;
    g->per_entity = per_entity;
    if (window == 0 || window > entities)
        window = entities;
    g->active = calloc(window, sizeof *g->active);
    if (!g->active)
        return -1;
    for (size_t i = 0; i < window; i++)
        g->active[g->nactive++] = (struct ent){g->next_new++, 0};
    return 0;
}

/* The next event of the history; 0 when the history is over. */
static int gen_next(struct gen *g, struct event *ev)
{
    if (g->nactive == 0)
        return 0;
    size_t k = (size_t)(next_rand(g) % g->nactive);
    struct ent *e = &g->active[k];
    uint32_t step = e->step++;
    ev->id = e->id;
    if (step == 0) {
        ev->type = EV_CREATED;
        ev->balance = e->id % 1000;
    } else if (step == g->per_entity - 1 && e->id % 2 == 0) {
        ev->type = EV_DELETED;
        ev->balance = 0;
    } else {
        ev->type = EV_UPDATED;
        ev->balance = update_balance(e->id, step);
    }
    if (e->step == g->per_entity) {
        if (g->next_new < g->entities)
            *e = (struct ent){g->next_new++, 0};
        else
            g->active[k] = g->active[--g->nactive];
    }
    return 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

/* ---- encoding and appending ------------------------------------------------ */

struct writer {
    cairn_log_t *log;
    cairn_registry_client_t *client;
    cairn_serde_t *serde;
    cairn_registered_schema_t *schemas[3];
    int json;
    const char *prefix; /* stream and id prefix: "e" or "l" */
    uint64_t tickets[PIPELINE];
    size_t nt;
};

static int writer_open(
    struct writer *w, const char *log_url, const char *registry, int json, const char *prefix)
{
    cairn_error_t err = {0};
    memset(w, 0, sizeof *w);
    w->json = json;
    w->prefix = prefix;
    if (cairn_log_open(log_url, NULL, &w->log, &err) != CAIRN_OK) {
        fprintf(stderr, "bench_projections_gen: %s\n", err.text);
        return -1;
    }
    if (json)
        return 0;
    if (!registry) {
        fprintf(stderr, "bench_projections_gen: --registry is needed (or --json)\n");
        return -1;
    }
    cairn_registry_client_options_t co = {.url = registry};
    if (cairn_registry_client_new(&co, &w->client, &err) != CAIRN_OK ||
        cairn_serde_new(w->client, NULL, &w->serde, &err) != CAIRN_OK) {
        fprintf(stderr, "bench_projections_gen: %s\n", err.text);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (cairn_serde_schema(w->serde, TOPIC, schema_text[i], &w->schemas[i], &err) != CAIRN_OK) {
            fprintf(stderr, "bench_projections_gen: registering %s: %s\n", type_name[i], err.text);
            return -1;
        }
    return 0;
}

/* Waits until everything appended so far is durable. */
static int writer_drain(struct writer *w)
{
    cairn_error_t err = {0};
    if (w->nt && cairn_log_wait_durable(w->log, w->tickets[w->nt - 1], &err) != CAIRN_OK) {
        fprintf(stderr, "bench_projections_gen: %s\n", err.text);
        return -1;
    }
    w->nt = 0;
    return 0;
}

static void writer_close(struct writer *w)
{
    for (int i = 0; i < 3; i++)
        cairn_registered_schema_release(w->schemas[i]);
    cairn_serde_destroy(w->serde);
    cairn_registry_client_destroy(w->client);
    cairn_log_close(w->log);
}

/* Appends @p ev without waiting for it to be durable; @p position gets its position. */
static int writer_append(struct writer *w, const struct event *ev, uint64_t *position)
{
    char id[32];
    cairn_error_t err = {0};
    json_t *v = NULL;
    unsigned char *wire = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    snprintf(id, sizeof id, "%s%06" PRIu32, w->prefix, ev->id);
    if (ev->type == EV_CREATED) {
        char name[48];
        snprintf(name, sizeof name, "name-%s", id);
        v = json_pack("{s:s, s:s, s:I}", "id", id, "name", name, "balance",
                      (json_int_t)ev->balance);
    } else if (ev->type == EV_UPDATED) {
        v = json_pack("{s:s, s:I}", "id", id, "balance", (json_int_t)ev->balance);
    } else {
        v = json_pack("{s:s}", "id", id);
    }
    if (!v)
        goto out;
    if (w->json) {
        if (!(text = json_dumps(v, JSON_COMPACT)))
            goto out;
        len = strlen(text);
    } else if (cairn_serde_encode(w->serde, w->schemas[ev->type], v, &wire, &len, &err) !=
               CAIRN_OK) {
        fprintf(stderr, "bench_projections_gen: encode: %s\n", err.text);
        goto out;
    }
    if (w->nt == PIPELINE && writer_drain(w) != 0)
        goto out;
    cairn_header_t h = {"cairn.type", type_name[ev->type], strlen(type_name[ev->type])};
    cairn_record_t r = {.value = w->json ? (const void *)text : (const void *)wire,
                        .value_len = len,
                        .headers = &h,
                        .header_count = 1};
    if (cairn_log_append_nowait(w->log, id, CAIRN_EXPECT_ANY, &r, 1, NULL, &w->tickets[w->nt],
                                &err) != CAIRN_OK) {
        fprintf(stderr, "bench_projections_gen: append: %s\n", err.text);
        goto out;
    }
    w->nt++;
    if (position)
        *position = r.position;
    rc = 0;
out:
    json_decref(v);
    free(text);
    cairn_free(wire);
    return rc;
}

/* ---- options ------------------------------------------------------------------ */

struct opts {
    const char *log, *registry, *expect, *pg, *redis, *projector, *events_tsv;
    long long events, entities, window, seed, rate;
    double seconds;
    int json;
};

static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->events = 1000000;
    o->entities = 100000;
    o->seed = 42;
    o->rate = 10000;
    o->seconds = 20;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_projections_gen: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--log"))
            o->log = v;
        else if (!strcmp(a, "--registry"))
            o->registry = v;
        else if (!strcmp(a, "--expect"))
            o->expect = v;
        else if (!strcmp(a, "--events-tsv"))
            o->events_tsv = v;
        else if (!strcmp(a, "--pg"))
            o->pg = v;
        else if (!strcmp(a, "--redis"))
            o->redis = v;
        else if (!strcmp(a, "--projector"))
            o->projector = v;
        else if (!strcmp(a, "--events"))
            bad = parse_ll(v, 1, 100000000, &o->events);
        else if (!strcmp(a, "--entities"))
            bad = parse_ll(v, 1, 10000000, &o->entities);
        else if (!strcmp(a, "--window"))
            bad = parse_ll(v, 1, 10000000, &o->window);
        else if (!strcmp(a, "--seed"))
            bad = parse_ll(v, 0, (long long)1 << 62, &o->seed);
        else if (!strcmp(a, "--rate"))
            bad = parse_ll(v, 1, 1000000, &o->rate);
        else if (!strcmp(a, "--seconds")) {
            char *end;
            o->seconds = strtod(v, &end);
            bad = *end || o->seconds <= 0 || o->seconds > 3600;
        } else {
            fprintf(stderr, "bench_projections_gen: unknown option '%s'\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "bench_projections_gen: bad value '%s' for %s\n", v, a);
            return -1;
        }
    }
    if (!o->log) {
        fprintf(stderr, "bench_projections_gen: --log is required\n");
        return -1;
    }
    return 0;
}

/* ---- log: the history ------------------------------------------------------------ */

static int write_expect(const char *path, uint32_t entities, uint32_t per_entity)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_projections_gen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* ids are zero-padded: numeric order is the text order of the ids */
    for (uint32_t id = 0; id < entities; id++) {
        if (id % 2 == 0 && per_entity > 1)
            continue;
        long long balance = per_entity > 1 ? update_balance(id, per_entity - 1) : id % 1000;
        fprintf(f, "e%06" PRIu32 "\tname-e%06" PRIu32 "\t%lld\n", id, id, balance);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_projections_gen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmd_log(const struct opts *o)
{
    struct writer w;
    struct gen g;
    struct event ev;
    long long counts[3] = {0, 0, 0}, n = 0;
    int code = 2;
    FILE *tsv = NULL;

    if (o->events % o->entities != 0 || o->events / o->entities < 2) {
        fprintf(stderr, "bench_projections_gen: --events must be a multiple (>= 2x) of "
                        "--entities\n");
        return 2;
    }
    uint32_t per = (uint32_t)(o->events / o->entities);
    size_t window =
        o->window ? (size_t)o->window : (size_t)(o->entities / 10 ? o->entities / 10 : 1);
    if (gen_init(&g, (uint32_t)o->entities, per, window, (uint64_t)o->seed) != 0)
        return 2;
    if (writer_open(&w, o->log, o->registry, o->json, "e") != 0)
        goto out;
    if (o->events_tsv && !(tsv = fopen(o->events_tsv, "w"))) {
        fprintf(stderr, "bench_projections_gen: %s: %s\n", o->events_tsv, strerror(errno));
        goto out;
    }
    double t0 = now_s();
    while (gen_next(&g, &ev)) {
        if (writer_append(&w, &ev, NULL) != 0)
            goto out;
        if (tsv && ev.type == EV_CREATED)
            fprintf(tsv, "%lld\tC\te%06" PRIu32 "\tname-e%06" PRIu32 "\t%lld\n", n, ev.id, ev.id,
                    ev.balance);
        else if (tsv)
            fprintf(tsv, "%lld\t%c\te%06" PRIu32 "\t\\N\t%lld\n", n,
                    ev.type == EV_UPDATED ? 'U' : 'D', ev.id, ev.balance);
        counts[ev.type]++;
        n++;
    }
    if (tsv && fclose(tsv) != 0) {
        tsv = NULL;
        fprintf(stderr, "bench_projections_gen: %s: %s\n", o->events_tsv, strerror(errno));
        goto out;
    }
    tsv = NULL;
    if (writer_drain(&w) != 0)
        goto out;
    double dt = now_s() - t0;
    if (o->expect && write_expect(o->expect, (uint32_t)o->entities, per) != 0)
        goto out;
    printf("appended=%lld creates=%lld updates=%lld deletes=%lld live_entities=%lld "
           "end=%" PRIu64 " values=%s seconds=%.2f\n",
           n, counts[EV_CREATED], counts[EV_UPDATED], counts[EV_DELETED],
           counts[EV_CREATED] - counts[EV_DELETED], cairn_log_end(w.log),
           o->json ? "json" : "avro-wire", dt);
    code = 0;
out:
    if (tsv)
        fclose(tsv);
    writer_close(&w);
    free(g.active);
    return code;
}

/* ---- live: appends at a rate, watches the sink's checkpoint --------------------- */

struct probe {
    const struct opts *o;
    uint64_t *pos;    /* position of event i */
    double *t_append; /* when event i was appended (monotonic s) */
    double *lag;      /* its lag in s, once seen committed */
    atomic_size_t appended;
    atomic_int stop;
    atomic_size_t committed; /* events seen committed, in append order */
    long polls;
    char error[256];
};

static int parse_cp(const char *s, uint64_t *pos)
{
    if (!s || strncmp(s, "file:", 5) != 0)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s + 5, &end, 10);
    if (errno || *end)
        return -1;
    *pos = v;
    return 0;
}

static void *probe_main(void *arg)
{
    struct probe *p = arg;
    PGconn *pg = NULL;
    redisContext *rd = NULL;
    const char *params[1] = {p->o->projector};
    char key[300];

    if (p->o->pg) {
        pg = PQconnectdb(p->o->pg);
        if (PQstatus(pg) != CONNECTION_OK) {
            snprintf(p->error, sizeof p->error, "postgres: %s", PQerrorMessage(pg));
            goto out;
        }
    } else {
        char host[256];
        snprintf(host, sizeof host, "%s", p->o->redis);
        char *colon = strrchr(host, ':');
        if (!colon) {
            snprintf(p->error, sizeof p->error, "--redis takes HOST:PORT");
            goto out;
        }
        *colon = '\0';
        rd = redisConnect(host, atoi(colon + 1));
        if (!rd || rd->err) {
            snprintf(p->error, sizeof p->error, "redis: %s", rd ? rd->errstr : "out of memory");
            goto out;
        }
        snprintf(key, sizeof key, "cairn:checkpoint:%s", p->o->projector);
    }
    for (;;) {
        int stopping = atomic_load(&p->stop);
        size_t n = atomic_load(&p->appended);
        uint64_t cp = 0;
        int have = 0;
        if (pg) {
            PGresult *res =
                PQexecParams(pg, "SELECT checkpoint FROM cairn_checkpoints WHERE projector = $1", 1,
                             NULL, params, NULL, NULL, 0);
            if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
                have = parse_cp(PQgetvalue(res, 0, 0), &cp) == 0;
            else if (PQresultStatus(res) != PGRES_TUPLES_OK)
                snprintf(p->error, sizeof p->error, "postgres: %s", PQerrorMessage(pg));
            PQclear(res);
        } else {
            redisReply *r = redisCommand(rd, "HGET %s checkpoint", key);
            if (!r) {
                snprintf(p->error, sizeof p->error, "redis: %s", rd->errstr);
                goto out;
            }
            if (r->type == REDIS_REPLY_STRING)
                have = parse_cp(r->str, &cp) == 0;
            freeReplyObject(r);
        }
        double t = now_s();
        p->polls++;
        size_t c = atomic_load(&p->committed);
        if (have)
            while (c < n && p->pos[c] < cp) {
                p->lag[c] = t - p->t_append[c];
                c++;
            }
        atomic_store(&p->committed, c);
        if (stopping && (c >= n || stopping > 1))
            break;
        nap_us(1000);
    }
out:
    if (pg)
        PQfinish(pg);
    if (rd)
        redisFree(rd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_live(const struct opts *o)
{
    struct writer w;
    struct gen g;
    struct event ev;
    struct probe p;
    pthread_t th;
    int started = 0, code = 2;
    size_t total = (size_t)((double)o->rate * o->seconds);

    memset(&p, 0, sizeof p);
    memset(&g, 0, sizeof g);
    p.o = o;
    if (!o->projector || (!o->pg == !o->redis)) {
        fprintf(stderr, "bench_projections_gen live: --projector and one of --pg, --redis\n");
        return 2;
    }
    p.pos = calloc(total + 1, sizeof *p.pos);
    p.t_append = calloc(total + 1, sizeof *p.t_append);
    p.lag = calloc(total + 1, sizeof *p.lag);
    /* ten events per entity; the history never runs out before `total` */
    uint32_t entities = (uint32_t)(total / 10 + 10);
    if (!p.pos || !p.t_append || !p.lag ||
        gen_init(&g, entities, 10, o->entities ? (size_t)o->entities / 10 + 1 : 1000, 7) != 0)
        goto out;
    if (writer_open(&w, o->log, o->registry, o->json, "l") != 0) {
        writer_close(&w);
        goto out;
    }
    if (pthread_create(&th, NULL, probe_main, &p) != 0) {
        writer_close(&w);
        goto out;
    }
    started = 1;
    double t0 = now_s();
    size_t n = 0;
    int failed = 0;
    while (n < total && !failed) {
        double el = now_s() - t0;
        size_t due = (size_t)(el * (double)o->rate) + 1;
        if (due > total)
            due = total;
        while (n < due && !failed) {
            if (!gen_next(&g, &ev))
                break;
            p.t_append[n] = now_s();
            if (writer_append(&w, &ev, &p.pos[n]) != 0) {
                failed = 1;
                break;
            }
            n++;
        }
        /* the records become visible to the runner once durable */
        if (!failed && writer_drain(&w) != 0)
            failed = 1;
        atomic_store(&p.appended, n);
        double next = t0 + (double)(n + 1) / (double)o->rate;
        double wait = next - now_s();
        if (wait > 0)
            nap_us((long)(wait * 1e6));
    }
    double append_s = now_s() - t0;
    atomic_store(&p.stop, 1);
    /* let the projector catch up: 30 s at most */
    double deadline = now_s() + 30;
    while (now_s() < deadline) {
        nap_us(10000);
        if (p.error[0])
            break;
        if (atomic_load(&p.committed) >= n)
            break;
    }
    atomic_store(&p.stop, 2);
    pthread_join(th, NULL);
    started = 0;
    writer_close(&w);
    if (failed)
        goto out;
    if (atomic_load(&p.committed) < n) {
        fprintf(stderr,
                "bench_projections_gen live: only %zu of %zu events committed in the sink%s%s\n",
                atomic_load(&p.committed), n, p.error[0] ? ": " : "", p.error);
        goto out;
    }
    qsort(p.lag, n, sizeof *p.lag, cmp_double);
    double p50 = p.lag[n / 2], p99 = p.lag[(size_t)((double)n * 0.99)], max = p.lag[n - 1];
    printf("name=projections.live_lag.%s events=%zu rate=%.0f target_rate=%lld p50_ms=%.2f "
           "p99_ms=%.2f max_ms=%.2f polls=%ld values=%s\n",
           o->pg ? "postgres" : "redis", n, (double)n / append_s, o->rate, p50 * 1e3, p99 * 1e3,
           max * 1e3, p.polls, o->json ? "json" : "avro-wire");
    code = 0;
out:
    if (started) {
        atomic_store(&p.stop, 2);
        pthread_join(th, NULL);
    }
    free(p.pos);
    free(p.t_append);
    free(p.lag);
    free(g.active);
    return code;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (argc < 2 || (strcmp(argv[1], "log") && strcmp(argv[1], "live"))) {
        fprintf(stderr, "usage: bench_projections_gen log|live --log URL ... "
                        "(bench/projections/bench_gen.c says more)\n");
        return 2;
    }
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    return !strcmp(argv[1], "log") ? cmd_log(&o) : cmd_live(&o);
}
