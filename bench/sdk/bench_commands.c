/* SPDX-License-Identifier: MIT */
/*
 * bench_commands.c - commands/s through libcairn end to end: cairn_handle()
 * validates a Deposit command against its registered schema, loads the
 * account (state cache, or the log when cold), decides (the bank example's
 * aggregate, examples/bank/account.c), encodes the event in the Confluent
 * wire format and appends it with the expected version, and returns once the
 * append is acknowledged (file: after fdatasync, group commit; Kafka: read
 * back by the partition owner's tail). bench/sdk/run.sh drives it.
 *
 *   bench_sdk_commands [--seconds S] [--threads T] [--aggregates N] [--cold]
 *                      [--name VARIANT] REGISTRY_URL LOG_URL
 *
 * Set-up (not timed): opens N accounts from T threads. Hot: then runs
 * deposits on random accounts for S seconds from T threads, the states
 * cached since the opens. Cold: closes the service, opens a new one (empty
 * state cache) and deposits once into every account in a random order, so
 * every command loads its account from the log (stops after S seconds when
 * not done). On a Kafka URL it then checks that every partition's low
 * watermark is still 0 (the mock's retention dropped nothing).
 *
 * Prints one line: name=sdk.commands.<VARIANT> threads= aggregates= iters=
 * commands_per_s= ns_per_op= p50_us= p99_us= cache_hits= cache_misses=
 * conflicts= [low_watermarks_zero=yes|no], and exits 1 when a command failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "bank.h"
#include "cairn/registry_client.h"
#include "cairn/sdk.h"
#include "cairn/serde.h"

#define MAX_SAMPLES (1u << 20)

struct bench {
    const char *registry_url;
    const char *log_url;
    const char *name;
    double seconds;
    int threads;
    long aggregates;
    int cold;
    cairn_registry_client_t *client;
    cairn_serde_t *serde;
    cairn_service_t *svc;
    cairn_aggregate_t *agg;
    long *order; /* cold: the accounts in random order */
    atomic_long next;
    atomic_int stop;
    atomic_int failed;
    pthread_barrier_t barrier;
};

struct worker {
    struct bench *b;
    int index;
    int opening; /* 1: set-up (open accounts), 0: the timed run */
    pthread_t tid;
    uint64_t ops;
    uint32_t *samples_ns; /* one per op, up to MAX_SAMPLES / threads */
    size_t n_samples, cap_samples;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report_error(const char *what, cairn_rc_t rc, const cairn_error_t *err)
{
    fprintf(stderr, "bench_sdk_commands: %s: %s (%s) where=\"%s\" flags=0x%x\n", what,
            err->text[0] ? err->text : cairn_rc_str(rc), cairn_rc_name(rc), err->where, err->flags);
}

static int one_command(struct bench *b, long account, int open)
{
    char stream[32];
    snprintf(stream, sizeof(stream), "acct-%ld", account);
    json_t *body = open ? json_pack("{s:s, s:s, s:s, s:I}", "account", stream, "owner", "bench",
                                    "currency", "EUR", "overdraft", (json_int_t)0)
                        : json_pack("{s:s, s:I, s:n, s:s}", "account", stream, "amount",
                                    (json_int_t)1, "memo", "reference", "");
    if (body == NULL) {
        return -1;
    }
    cairn_command_t cmd = {
        .stream = stream, .type = open ? "OpenAccount" : "Deposit", .body = body};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn_handle(b->agg, &cmd, &res, &err);
    int ok = rc == CAIRN_OK && res.events == 1;
    if (!ok && atomic_fetch_add(&b->failed, 1) < 5) {
        report_error(stream, rc, &err);
    }
    cairn_result_release(&res);
    json_decref(body);
    return ok ? 0 : -1;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->index + 1);
    pthread_barrier_wait(&b->barrier);
    while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
        long account;
        if (w->opening || b->cold) {
            account = atomic_fetch_add(&b->next, 1);
            if (account >= b->aggregates) {
                break;
            }
            if (!w->opening) {
                account = b->order[account];
            }
        } else {
            account = (long)(bank_random(&rng) % (uint64_t)b->aggregates);
        }
        uint64_t t0 = now_ns();
        if (one_command(b, account, w->opening) != 0) {
            break;
        }
        uint64_t dt = now_ns() - t0;
        w->ops++;
        if (w->n_samples < w->cap_samples) {
            w->samples_ns[w->n_samples++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
        }
    }
    bank_thread_done();
    return NULL;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return a < c ? -1 : a > c;
}

static int service_open(struct bench *b)
{
    cairn_error_t err = {0};
    cairn_service_options_t o = {.log_url = b->log_url, .serde = b->serde, .topic = "bench"};
    cairn_rc_t rc = cairn_service_new(&o, &b->svc, &err);
    if (rc == CAIRN_OK) {
        rc = bank_add_aggregate(b->svc, &b->agg, &err);
    }
    if (rc != CAIRN_OK) {
        report_error("opening the service", rc, &err);
        return -1;
    }
    return 0;
}

/* Runs T workers; opening = 1 for the set-up. Returns the elapsed seconds. */
static double run_workers(struct bench *b, struct worker *ws, int opening)
{
    atomic_store(&b->next, 0);
    atomic_store(&b->stop, 0);
    pthread_barrier_init(&b->barrier, NULL, (unsigned)b->threads + 1);
    for (int i = 0; i < b->threads; i++) {
        ws[i].b = b;
        ws[i].index = i;
        ws[i].opening = opening;
        ws[i].ops = 0;
        ws[i].n_samples = 0;
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "bench_sdk_commands: pthread_create failed\n");
            exit(2);
        }
    }
    pthread_barrier_wait(&b->barrier);
    uint64_t t0 = now_ns();
    if (!opening) {
        /* Sleep in small steps: a cold run may end early when every account is done. */
        while ((double)(now_ns() - t0) / 1e9 < b->seconds) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
            if (b->cold && atomic_load(&b->next) >= b->aggregates) {
                break;
            }
        }
        atomic_store(&b->stop, 1);
    }
    for (int i = 0; i < b->threads; i++) {
        pthread_join(ws[i].tid, NULL);
    }
    pthread_barrier_destroy(&b->barrier);
    return (double)(now_ns() - t0) / 1e9;
}

/* Every partition's low watermark of the Kafka URL's topic is 0. */
static int kafka_low_watermarks_zero(const char *url, int *all_zero)
{
    char brokers[1024], topic[256];
    const char *q = strchr(url, '?');
    const char *t = q ? strstr(q, "topic=") : NULL;
    if (strncmp(url, "kafka:", 6) != 0 || q == NULL || t == NULL ||
        (size_t)(q - url - 6) >= sizeof(brokers)) {
        return -1;
    }
    snprintf(brokers, sizeof(brokers), "%.*s", (int)(q - url - 6), url + 6);
    snprintf(topic, sizeof(topic), "%.*s", (int)strcspn(t + 6, "&"), t + 6);
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int rc = -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt != NULL && rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].partition_cnt > 0) {
        rc = 0;
        *all_zero = 1;
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int64_t lo = -1, hi = -1;
            if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                rc = -1;
                break;
            }
            if (lo != 0) {
                *all_zero = 0;
            }
        }
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_destroy(rk);
    return rc;
}

static void usage(void)
{
    fputs("usage: bench_sdk_commands [--seconds S] [--threads T] [--aggregates N] [--cold]\n"
          "                          [--name VARIANT] REGISTRY_URL LOG_URL\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    struct bench b = {.seconds = 3, .threads = 16, .aggregates = 1000, .name = "file.hot"};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--cold") == 0) {
            b.cold = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
        }
        const char *opt = argv[i], *val = argv[++i];
        if (strcmp(opt, "--seconds") == 0) {
            b.seconds = atof(val);
        } else if (strcmp(opt, "--threads") == 0) {
            b.threads = atoi(val);
        } else if (strcmp(opt, "--aggregates") == 0) {
            b.aggregates = atol(val);
        } else if (strcmp(opt, "--name") == 0) {
            b.name = val;
        } else {
            usage();
        }
    }
    if (argc - i != 2 || b.threads < 1 || b.threads > 1024 || b.aggregates < 1 || b.seconds <= 0) {
        usage();
    }
    b.registry_url = argv[i];
    b.log_url = argv[i + 1];

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 2;
    }
    cairn_error_t err = {0};
    cairn_registry_client_options_t copts = {.url = b.registry_url};
    cairn_rc_t rc = cairn_registry_client_new(&copts, &b.client, &err);
    if (rc == CAIRN_OK) {
        rc = cairn_serde_new(b.client, NULL, &b.serde, &err);
    }
    if (rc != CAIRN_OK) {
        report_error("registry client", rc, &err);
        return 2;
    }
    struct worker *ws = calloc((size_t)b.threads, sizeof(*ws));
    if (ws == NULL || service_open(&b) != 0) {
        return 2;
    }
    for (int t = 0; t < b.threads; t++) {
        ws[t].cap_samples = MAX_SAMPLES / (size_t)b.threads;
        ws[t].samples_ns = malloc(ws[t].cap_samples * sizeof(uint32_t));
        if (ws[t].samples_ns == NULL) {
            return 2;
        }
    }

    double open_s = run_workers(&b, ws, 1);
    if (atomic_load(&b.failed)) {
        fprintf(stderr, "bench_sdk_commands: set-up failed\n");
        return 1;
    }
    if (b.cold) {
        /* A new service: nothing cached, every account read from the log. */
        cairn_service_destroy(b.svc);
        b.svc = NULL;
        if (service_open(&b) != 0) {
            return 2;
        }
        b.order = malloc((size_t)b.aggregates * sizeof(long));
        if (b.order == NULL) {
            return 2;
        }
        uint64_t rng = 88172645463325252ULL;
        for (long k = 0; k < b.aggregates; k++) {
            b.order[k] = k;
        }
        for (long k = b.aggregates - 1; k > 0; k--) {
            long j = (long)(bank_random(&rng) % (uint64_t)(k + 1));
            long tmp = b.order[k];
            b.order[k] = b.order[j];
            b.order[j] = tmp;
        }
    }
    cairn_service_stats_t before, after;
    cairn_service_stats(b.svc, &before);
    double secs = run_workers(&b, ws, 0);
    cairn_service_stats(b.svc, &after);

    uint64_t ops = 0;
    size_t n = 0;
    for (int t = 0; t < b.threads; t++) {
        ops += ws[t].ops;
        n += ws[t].n_samples;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof(uint32_t));
    if (all == NULL) {
        return 2;
    }
    n = 0;
    for (int t = 0; t < b.threads; t++) {
        memcpy(all + n, ws[t].samples_ns, ws[t].n_samples * sizeof(uint32_t));
        n += ws[t].n_samples;
    }
    qsort(all, n, sizeof(uint32_t), cmp_u32);
    double p50 = n ? all[n / 2] / 1e3 : 0, p99 = n ? all[(n * 99) / 100] / 1e3 : 0;

    char wm[48] = "";
    cairn_service_destroy(b.svc); /* closes the log: its producer and consumers go first */
    b.svc = NULL;
    if (strncmp(b.log_url, "kafka:", 6) == 0) {
        int zero = 0;
        int q = kafka_low_watermarks_zero(b.log_url, &zero);
        snprintf(wm, sizeof(wm), " low_watermarks_zero=%s",
                 q != 0 ? "unknown"
                 : zero ? "yes"
                        : "no");
        if (q != 0 || !zero) {
            atomic_fetch_add(&b.failed, 1);
        }
    }
    printf("name=sdk.commands.%s threads=%d aggregates=%ld iters=%" PRIu64
           " commands_per_s=%.0f ns_per_op=%.0f p50_us=%.0f p99_us=%.0f open_s=%.2f"
           " cache_hits=%" PRIu64 " cache_misses=%" PRIu64 " conflicts=%" PRIu64 "%s\n",
           b.name, b.threads, b.aggregates, ops, secs > 0 ? (double)ops / secs : 0.0,
           ops ? secs * 1e9 / (double)ops : 0.0, p50, p99, open_s,
           after.cache_hits - before.cache_hits, after.cache_misses - before.cache_misses,
           after.conflicts - before.conflicts, wm);
    fflush(stdout);

    for (int t = 0; t < b.threads; t++) {
        free(ws[t].samples_ns);
    }
    free(ws);
    free(all);
    free(b.order);
    cairn_serde_destroy(b.serde);
    cairn_registry_client_destroy(b.client);
    curl_global_cleanup();
    return atomic_load(&b.failed) ? 1 : 0;
}
