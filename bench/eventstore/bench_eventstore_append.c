/* SPDX-License-Identifier: MIT */
/*
 * bench_eventstore_append.c - what the record log delivers on this machine:
 * durable appends and replay on the file backend, next to what the disk and
 * `cat` do in the same directory; pipelined and single appends on the Kafka
 * backend, next to a plain idempotent librdkafka producer on the same mock
 * cluster. Run by hand through bench/eventstore/run.sh (medians of 3, targets)
 * in a Release build without sanitizers, on a real disk (never tmpfs: it
 * makes fdatasync free).
 *
 *   bench_eventstore_append [--seconds S] [--threads N] [--events N] CASE ARGS...
 *     fsync DIR                  4 KiB write + fdatasync loop for S seconds
 *     file-append DIR BATCH      N threads, cairn_log_append of BATCH 100-byte
 *                                events each (durable, group commit), S seconds
 *     file-replay DIR            fills DIR with --events events once (kept for
 *                                later rounds), then times a whole replay and
 *                                `cat` of the segment files into /dev/null;
 *                                the page cache is left as it is for both
 *     kafka-plain BOOTSTRAP TOPIC       --events messages, idempotent producer,
 *                                acks=all, delivery reports polled (no flush
 *                                per message), keys spread like the log's;
 *                                --plain-headers 1 adds the header cairn puts
 *                                on an event (kafka.plain_headers)
 *     kafka-pipelined BOOTSTRAP TOPIC   --events events through
 *                                cairn_log_append_nowait from N threads, each
 *                                keeping a window of tickets it waits on in order
 *     kafka-single BOOTSTRAP TOPIC      S seconds of one cairn_log_append at a
 *                                time: p50/p99 of an acknowledged append
 *     kafka-watermarks BOOTSTRAP TOPIC... low watermark of every partition
 *                                (must be 0: the mock's retention cut nothing)
 *
 * Each case prints one line `name=eventstore.<case> key=value ...`
 * (STYLE.md's benchmark format: ns_per_op, p99_us where they apply) and
 * exits non-zero when any operation failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cairn/eventstore.h"
#include "eventstore_int.h"

#define VALUE_BYTES 100
#define MAX_THREADS 256
#define MAX_BATCH   10000
#define NSTREAMS    1000 /* streams per run in the fill and Kafka cases */
#define MAX_WINDOW  4096 /* outstanding tickets per pipelined thread */

static double g_seconds = 3.0;
static int g_threads = 16;
static long g_events = 2000000;
static int g_window = 64;
static int g_plain_headers = 0; /* kafka-plain: add cairn-like headers to each message */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency samples -------------------------------------------------- */

struct samples {
    uint64_t *v;
    size_t n, cap;
};

static int samples_add(struct samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4096;
        uint64_t *nv = realloc(s->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = ns;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts and returns the @p q quantile (0..1) in microseconds. */
static double quantile_us(struct samples *s, double q)
{
    size_t i = 0;
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return (double)s->v[i] / 1000.0;
}

static int samples_merge(struct samples *into, const struct samples *from)
{
    size_t i = 0;
    for (i = 0; i < from->n; i++)
        if (samples_add(into, from->v[i]) != 0)
            return -1;
    return 0;
}

static void fill_value(char *v, uint64_t seq)
{
    memset(v, 'a' + (int)(seq % 26), VALUE_BYTES);
    snprintf(v, VALUE_BYTES, "event %" PRIu64 " ", seq);
    v[strlen(v)] = ' '; /* keep exactly VALUE_BYTES bytes, no NUL inside */
}

/* ---- fsync ------------------------------------------------------------ */

static int case_fsync(const char *dir)
{
    char path[4096];
    char block[4096];
    struct samples s = {0};
    uint64_t t0 = 0, t1 = 0;
    off_t off = 0;
    int fd = -1;
    int rc = 1;

    snprintf(path, sizeof path, "%s/fsync-probe.%ld", dir, (long)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", path, strerror(errno));
        return 1;
    }
    memset(block, 'x', sizeof block);
    t0 = now_ns();
    do {
        uint64_t a = now_ns();
        if (pwrite(fd, block, sizeof block, off) != (ssize_t)sizeof block || fdatasync(fd) != 0) {
            fprintf(stderr, "write/fdatasync %s: %s\n", path, strerror(errno));
            goto out;
        }
        off += (off_t)sizeof block;
        t1 = now_ns();
        if (samples_add(&s, t1 - a) != 0)
            goto out;
    } while ((double)(t1 - t0) < g_seconds * 1e9);
    printf("name=eventstore.fsync bytes=4096 iters=%zu seconds=%.2f fsyncs_per_s=%.0f "
           "ns_per_op=%.0f p50_us=%.1f p99_us=%.1f\n",
           s.n, (double)(t1 - t0) / 1e9, (double)s.n * 1e9 / (double)(t1 - t0),
           (double)(t1 - t0) / (double)s.n, quantile_us(&s, 0.5), quantile_us(&s, 0.99));
    rc = 0;
out:
    close(fd);
    unlink(path);
    free(s.v);
    return rc;
}

/* ---- file appends ----------------------------------------------------- */

struct appender {
    pthread_t th;
    cairn_log_t *log;
    int id;
    int batch;
    atomic_int *stop;
    uint64_t appends;
    uint64_t failures;
    struct samples lat;
    cairn_error_t err;
};

static void *appender_main(void *arg)
{
    struct appender *a = arg;
    char stream[32];
    char *values = malloc((size_t)a->batch * VALUE_BYTES);
    cairn_record_t *recs = calloc((size_t)a->batch, sizeof *recs);
    uint64_t seq = 0;
    int i = 0;

    if (values == NULL || recs == NULL) {
        a->failures++;
        goto out;
    }
    snprintf(stream, sizeof stream, "bench-%d", a->id);
    while (!atomic_load(a->stop)) {
        uint64_t t0 = 0;
        for (i = 0; i < a->batch; i++) {
            memset(&recs[i], 0, sizeof recs[i]);
            fill_value(values + (size_t)i * VALUE_BYTES, seq++);
            recs[i].value = values + (size_t)i * VALUE_BYTES;
            recs[i].value_len = VALUE_BYTES;
        }
        t0 = now_ns();
        if (cairn_log_append(a->log, stream, CAIRN_EXPECT_ANY, recs, (size_t)a->batch, NULL,
                             &a->err) != CAIRN_OK) {
            a->failures++;
            break;
        }
        a->appends++;
        if (samples_add(&a->lat, now_ns() - t0) != 0) {
            a->failures++;
            break;
        }
    }
out:
    free(values);
    free(recs);
    return NULL;
}

static int rm_log_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e = NULL;
    char path[4096];
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path)
            unlink(path);
    }
    closedir(d);
    return rmdir(dir);
}

static int case_file_append(const char *dir, int batch)
{
    char logdir[4096];
    struct appender *ap = NULL;
    atomic_int stop = 0;
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    struct cairn__log_stats st;
    struct samples all = {0};
    uint64_t appends = 0, failures = 0, t0 = 0, t1 = 0;
    int i = 0;
    int rc = 1;

    snprintf(logdir, sizeof logdir, "%s/append-%d-%ld", dir, batch, (long)getpid());
    rm_log_dir(logdir);
    if (cairn_log_open(logdir, NULL, &log, &err) != CAIRN_OK) {
        fprintf(stderr, "open %s: %s\n", logdir, err.text);
        return 1;
    }
    ap = calloc((size_t)g_threads, sizeof *ap);
    if (ap == NULL)
        goto out;
    t0 = now_ns();
    for (i = 0; i < g_threads; i++) {
        ap[i].log = log;
        ap[i].id = i;
        ap[i].batch = batch;
        ap[i].stop = &stop;
        if (pthread_create(&ap[i].th, NULL, appender_main, &ap[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            atomic_store(&stop, 1);
            g_threads = i;
            break;
        }
    }
    {
        struct timespec ts = {(time_t)g_seconds,
                              (long)((g_seconds - (double)(time_t)g_seconds) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    atomic_store(&stop, 1);
    for (i = 0; i < g_threads; i++) {
        pthread_join(ap[i].th, NULL);
        appends += ap[i].appends;
        failures += ap[i].failures;
        if (ap[i].failures)
            fprintf(stderr, "appender %d: %s\n", i, ap[i].err.text);
        samples_merge(&all, &ap[i].lat);
        free(ap[i].lat.v);
    }
    t1 = now_ns();
    cairn__log_stats(log, &st);
    {
        double secs = (double)(t1 - t0) / 1e9;
        double events = (double)appends * batch;
        printf(
            "name=eventstore.file.append.%s threads=%d batch=%d seconds=%.2f appends=%" PRIu64
            " events=%.0f events_per_s=%.0f appends_per_s=%.0f fsyncs=%" PRIu64
            " events_per_fsync=%.1f ns_per_op=%.0f p50_us=%.1f p99_us=%.1f failures=%" PRIu64 "\n",
            batch == 1 ? "single" : "batch", g_threads, batch, secs, appends, events, events / secs,
            (double)appends / secs, st.fsyncs, st.fsyncs ? events / (double)st.fsyncs : 0.0,
            appends ? secs * 1e9 / (double)appends : 0.0, quantile_us(&all, 0.5),
            quantile_us(&all, 0.99), failures);
    }
    rc = failures ? 1 : 0;
out:
    free(ap);
    free(all.v);
    cairn_log_close(log);
    rm_log_dir(logdir);
    return rc;
}

/* ---- file replay ------------------------------------------------------ */

struct replay_count {
    uint64_t events;
    uint64_t value_bytes;
    uint64_t last_position;
    int disorder;
};

static int count_record(void *opaque, const cairn_record_t *r)
{
    struct replay_count *c = opaque;
    if (c->events > 0 && r->position <= c->last_position)
        c->disorder = 1;
    c->last_position = r->position;
    c->events++;
    c->value_bytes += r->value_len;
    return 0;
}

/* Sum of the segment files' sizes, and a NULL-terminated argv for cat. */
static char **segment_files(const char *dir, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    struct dirent *e = NULL;
    char **argv = NULL;
    size_t n = 1, cap = 0;
    *bytes = 0;
    if (d == NULL)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char path[4096];
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".log") != 0)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            stat(path, &st) != 0)
            continue;
        if (n + 2 > cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **na = realloc(argv, ncap * sizeof *na);
            if (na == NULL)
                break;
            argv = na;
            cap = ncap;
        }
        argv[n++] = strdup(path);
        *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    if (argv != NULL) {
        argv[0] = strdup("cat");
        argv[n] = NULL;
    }
    return argv;
}

static double time_cat(char **argv)
{
    uint64_t t0 = now_ns();
    int status = 0;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        execvp("cat", argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return (double)(now_ns() - t0) / 1e9;
}

static int fill_log(const char *logdir, long events)
{
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    cairn_record_t *recs = NULL;
    char *values = NULL;
    const int batch = 1000;
    uint64_t seq = 0;
    int rc = 1;
    int i = 0;

    if (cairn_log_open(logdir, NULL, &log, &err) != CAIRN_OK) {
        fprintf(stderr, "open %s: %s\n", logdir, err.text);
        return 1;
    }
    recs = calloc((size_t)batch, sizeof *recs);
    values = malloc((size_t)batch * VALUE_BYTES);
    if (recs == NULL || values == NULL)
        goto out;
    while ((long)seq < events) {
        char stream[32];
        int n = events - (long)seq < batch ? (int)(events - (long)seq) : batch;
        snprintf(stream, sizeof stream, "stream-%d", (int)((seq / (uint64_t)batch) % NSTREAMS));
        for (i = 0; i < n; i++) {
            memset(&recs[i], 0, sizeof recs[i]);
            fill_value(values + (size_t)i * VALUE_BYTES, seq + (uint64_t)i);
            recs[i].value = values + (size_t)i * VALUE_BYTES;
            recs[i].value_len = VALUE_BYTES;
        }
        if (cairn_log_append(log, stream, CAIRN_EXPECT_ANY, recs, (size_t)n, NULL, &err) !=
            CAIRN_OK) {
            fprintf(stderr, "fill append: %s\n", err.text);
            goto out;
        }
        seq += (uint64_t)n;
    }
    rc = 0;
out:
    free(recs);
    free(values);
    cairn_log_close(log);
    return rc;
}

static int case_file_replay(const char *dir)
{
    char logdir[4096];
    char stamp[4200];
    char **argv = NULL;
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    cairn_log_options_t opts = {0};
    struct replay_count c = {0};
    struct stat st;
    uint64_t bytes = 0, t0 = 0, t_open = 0, t1 = 0;
    double cat_s = 0;
    cairn_rc_t r = CAIRN_OK;
    int rc = 1;
    size_t i = 0;

    /* The filled log is kept between rounds; a stamp file says it is whole. */
    snprintf(logdir, sizeof logdir, "%s/replay-%ld", dir, g_events);
    snprintf(stamp, sizeof stamp, "%s.filled", logdir);
    if (stat(stamp, &st) != 0) {
        int fd = -1;
        uint64_t f0 = now_ns();
        rm_log_dir(logdir);
        if (fill_log(logdir, g_events) != 0)
            return 1;
        fd = open(stamp, O_WRONLY | O_CREAT, 0600);
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "# filled %s with %ld events in %.1f s\n", logdir, g_events,
                (double)(now_ns() - f0) / 1e9);
    }

    opts.read_only = 1;
    t0 = now_ns();
    if (cairn_log_open(logdir, &opts, &log, &err) != CAIRN_OK) {
        fprintf(stderr, "open %s: %s\n", logdir, err.text);
        return 1;
    }
    t_open = now_ns();
    r = cairn_log_replay(log, 0, count_record, &c, &err);
    t1 = now_ns();
    cairn_log_close(log);
    if (r != CAIRN_DONE || (long)c.events != g_events || c.disorder) {
        fprintf(stderr, "replay: rc %d (%s), %" PRIu64 " of %ld events, disorder %d\n", (int)r,
                err.text, c.events, g_events, c.disorder);
        return 1;
    }
    argv = segment_files(logdir, &bytes);
    if (argv == NULL)
        return 1;
    cat_s = time_cat(argv);
    if (cat_s > 0) {
        double secs = (double)(t1 - t_open) / 1e9;
        printf("name=eventstore.file.replay events=%" PRIu64 " segment_bytes=%" PRIu64
               " open_ms=%.1f seconds=%.3f events_per_s=%.0f mb_per_s=%.1f ns_per_op=%.1f "
               "cat_seconds=%.3f cat_mb_per_s=%.1f replay_vs_cat=%.2f cache=warm\n",
               c.events, bytes, (double)(t_open - t0) / 1e6, secs, (double)c.events / secs,
               (double)bytes / secs / 1e6, secs * 1e9 / (double)c.events, cat_s,
               (double)bytes / cat_s / 1e6, cat_s / secs);
        rc = 0;
    } else {
        fprintf(stderr, "cat of the segments failed\n");
    }
    for (i = 0; argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
    return rc;
}

/* ---- Kafka ------------------------------------------------------------ */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    uint64_t *counts = opaque; /* [0] delivered, [1] failed */
    (void)rk;
    if (m->err)
        counts[1]++;
    else
        counts[0]++;
}

static int case_kafka_plain(const char *bootstrap, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    char errstr[512];
    char value[VALUE_BYTES];
    uint64_t counts[2] = {0, 0};
    uint64_t t0 = 0, t1 = 0;
    long i = 0;
    static const char *const props[][2] = {
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
        {"message.timeout.ms", "30000"},
    };

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK)
        goto conf_fail;
    for (i = 0; i < (long)(sizeof props / sizeof props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK)
            goto conf_fail;
    rd_kafka_conf_set_opaque(conf, counts);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL)
        goto conf_fail;

    /* Warm-up, as for the cairn log: one acknowledged message per partition
     * (metadata, producer id, connections) before the clock starts. */
    {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int parts = 0, p = 0;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            parts = md->topics[0].partition_cnt;
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (parts == 0) {
            fprintf(stderr, "no metadata for topic %s\n", topic);
            rd_kafka_destroy(rk);
            return 1;
        }
        char wkey[] = "warmup"; /* RD_KAFKA_V_KEY takes a non-const pointer */
        fill_value(value, 0);
        for (p = 0; p < parts; p++)
            if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                  RD_KAFKA_V_KEY(wkey, 6), RD_KAFKA_V_VALUE(value, VALUE_BYTES),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
                counts[1]++;
        t0 = now_ns();
        while (counts[0] + counts[1] < (uint64_t)parts && now_ns() - t0 < 30000000000ull)
            rd_kafka_poll(rk, 10);
        if (counts[0] != (uint64_t)parts) {
            fprintf(stderr, "warm-up: %" PRIu64 " of %d delivered\n", counts[0], parts);
            rd_kafka_destroy(rk);
            return 1;
        }
        counts[0] = 0;
    }

    t0 = now_ns();
    for (i = 0; i < g_events; i++) {
        char key[32];
        rd_kafka_resp_err_t e;
        snprintf(key, sizeof key, "stream-%ld", i % NSTREAMS);
        fill_value(value, (uint64_t)i);
        for (;;) {
            rd_kafka_headers_t *hdrs = NULL;
            if (g_plain_headers) {
                /* The one header cairn adds to an event: "cairn", 49 bytes
                 * (eventstore/kafka/kafka_int.h), with a plausible value. */
                unsigned char hv[49];
                memset(hv, 0, sizeof hv);
                hv[0] = 1;
                hv[8] = (unsigned char)(i / NSTREAMS + 1);
                hv[16] = 1;
                memcpy(hv + 17, "0123456789abcdef", 16);
                hv[40] = 1;
                hdrs = rd_kafka_headers_new(1);
                rd_kafka_header_add(hdrs, "cairn", -1, hv, sizeof hv);
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(value, VALUE_BYTES),
                                      RD_KAFKA_V_HEADERS(hdrs),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                    rd_kafka_headers_destroy(hdrs); /* not taken on failure */
            } else {
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(value, VALUE_BYTES),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            }
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 1);
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
            counts[1]++;
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    /* Wait on the delivery reports (a bounded poll loop, not a flush per message). */
    while (counts[0] + counts[1] < (uint64_t)i && (now_ns() - t0) < 120000000000ull)
        rd_kafka_poll(rk, 10);
    t1 = now_ns();
    {
        double secs = (double)(t1 - t0) / 1e9;
        printf("name=eventstore.kafka.plain%s events=%ld delivered=%" PRIu64 " failed=%" PRIu64
               " seconds=%.3f events_per_s=%.0f ns_per_op=%.0f\n",
               g_plain_headers ? "_headers" : "", g_events, counts[0], counts[1], secs,
               (double)counts[0] / secs, secs * 1e9 / (double)(counts[0] ? counts[0] : 1));
    }
    rd_kafka_destroy(rk);
    return counts[0] == (uint64_t)g_events && counts[1] == 0 ? 0 : 1;

conf_fail:
    fprintf(stderr, "kafka producer: %s\n", errstr);
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return 1;
}

/* Opens the log and appends one event to a stream of every partition, so
 * that the claims (one per partition, made at the first append) and the
 * start of the owner's tails are done before anything is timed. */
static int open_kafka_log(const char *bootstrap, const char *topic, cairn_log_t **log)
{
    char url[2048];
    cairn_error_t err = {0};
    uint64_t t0 = now_ns();
    int parts = 0, p = 0, found = 0;
    long i = 0;

    /* BENCH_KAFKA_PROPS: extra URL properties ("linger.ms=5&..."), to try settings */
    const char *extra = getenv("BENCH_KAFKA_PROPS");
    snprintf(url, sizeof url, "kafka:%s?topic=%s%s%s", bootstrap, topic, extra && *extra ? "&" : "",
             extra ? extra : "");
    if (cairn_log_open(url, NULL, log, &err) != CAIRN_OK) {
        fprintf(stderr, "open %s: %s (%s)\n", url, err.text, cairn_rc_name(err.code));
        return -1;
    }
    parts = cairn_log_partition_count(*log);
    for (p = 0; p < parts; p++) {
        char stream[32];
        char value[VALUE_BYTES];
        cairn_record_t rec;
        for (i = 0; i < 100000; i++) {
            snprintf(stream, sizeof stream, "warmup-%ld", i);
            if (cairn_log_partition_of(*log, stream) == p)
                break;
        }
        if (i == 100000)
            continue;
        memset(&rec, 0, sizeof rec);
        fill_value(value, (uint64_t)p);
        rec.value = value;
        rec.value_len = VALUE_BYTES;
        if (cairn_log_append(*log, stream, CAIRN_EXPECT_ANY, &rec, 1, NULL, &err) != CAIRN_OK) {
            fprintf(stderr, "warm-up append to partition %d: %s (%s)\n", p, err.text,
                    cairn_rc_name(err.code));
            cairn_log_close(*log);
            *log = NULL;
            return -1;
        }
        found++;
    }
    fprintf(stderr, "# %s: %d partitions, %d claimed by warm-up appends in %.0f ms\n", topic, parts,
            found, (double)(now_ns() - t0) / 1e6);
    return 0;
}

struct piper {
    pthread_t th;
    cairn_log_t *log;
    int id;
    long events;
    uint64_t acked;
    uint64_t failures;
    cairn_error_t err;
};

static void *piper_main(void *arg)
{
    struct piper *p = arg;
    uint64_t tickets[MAX_WINDOW];
    size_t head = 0, count = 0;
    char value[VALUE_BYTES];
    long i = 0;

    for (i = 0; i < p->events || count > 0;) {
        if (i < p->events && count < (size_t)g_window) {
            char stream[32];
            cairn_record_t rec;
            uint64_t ticket = 0;
            memset(&rec, 0, sizeof rec);
            /* Streams spread over partitions; each thread owns its own. */
            snprintf(stream, sizeof stream, "s%d-%ld", p->id, i % (NSTREAMS / 16));
            fill_value(value, (uint64_t)i);
            rec.value = value;
            rec.value_len = VALUE_BYTES;
            if (cairn_log_append_nowait(p->log, stream, CAIRN_EXPECT_ANY, &rec, 1, NULL, &ticket,
                                        &p->err) != CAIRN_OK) {
                p->failures++;
                break;
            }
            tickets[(head + count) % (size_t)g_window] = ticket;
            count++;
            i++;
            continue;
        }
        if (cairn_log_wait_durable(p->log, tickets[head], &p->err) != CAIRN_OK) {
            p->failures++;
            break;
        }
        p->acked++;
        head = (head + 1) % (size_t)g_window;
        count--;
    }
    return NULL;
}

static int case_kafka_pipelined(const char *bootstrap, const char *topic)
{
    cairn_log_t *log = NULL;
    struct piper *pp = NULL;
    uint64_t acked = 0, failures = 0, t0 = 0, t1 = 0;
    int started = 0;
    int i = 0;

    if (open_kafka_log(bootstrap, topic, &log) != 0)
        return 1;
    pp = calloc((size_t)g_threads, sizeof *pp);
    if (pp == NULL)
        goto out;
    t0 = now_ns();
    for (i = 0; i < g_threads; i++) {
        pp[i].log = log;
        pp[i].id = i;
        pp[i].events = g_events / g_threads + (i < g_events % g_threads ? 1 : 0);
        if (pthread_create(&pp[i].th, NULL, piper_main, &pp[i]) != 0)
            break;
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(pp[i].th, NULL);
        acked += pp[i].acked;
        failures += pp[i].failures;
        if (pp[i].failures)
            fprintf(stderr, "pipeliner %d: %s (%s)\n", i, pp[i].err.text,
                    cairn_rc_name(pp[i].err.code));
    }
    t1 = now_ns();
    {
        double secs = (double)(t1 - t0) / 1e9;
        printf("name=eventstore.kafka.pipelined threads=%d window=%d events=%ld acked=%" PRIu64
               " failures=%" PRIu64 " seconds=%.3f events_per_s=%.0f ns_per_op=%.0f\n",
               g_threads, g_window, g_events, acked, failures, secs, (double)acked / secs,
               secs * 1e9 / (double)(acked ? acked : 1));
    }
out:
    free(pp);
    cairn_log_close(log);
    return (started == g_threads && failures == 0 && acked == (uint64_t)g_events) ? 0 : 1;
}

static int case_kafka_single(const char *bootstrap, const char *topic)
{
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    struct samples s = {0};
    char value[VALUE_BYTES];
    uint64_t t0 = 0, t1 = 0, failures = 0;
    long i = 0;

    if (open_kafka_log(bootstrap, topic, &log) != 0)
        return 1;
    t0 = now_ns();
    do {
        char stream[32];
        cairn_record_t rec;
        uint64_t a = now_ns();
        memset(&rec, 0, sizeof rec);
        snprintf(stream, sizeof stream, "single-%ld", i % 64);
        fill_value(value, (uint64_t)i);
        rec.value = value;
        rec.value_len = VALUE_BYTES;
        if (cairn_log_append(log, stream, CAIRN_EXPECT_ANY, &rec, 1, NULL, &err) != CAIRN_OK) {
            fprintf(stderr, "append: %s (%s)\n", err.text, cairn_rc_name(err.code));
            failures++;
            break;
        }
        t1 = now_ns();
        if (samples_add(&s, t1 - a) != 0)
            break;
        i++;
    } while ((double)(t1 - t0) < g_seconds * 1e9 && i < g_events);
    printf("name=eventstore.kafka.single appends=%zu failures=%" PRIu64
           " seconds=%.2f ns_per_op=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           s.n, failures, (double)(t1 - t0) / 1e9, s.n ? (double)(t1 - t0) / (double)s.n : 0.0,
           quantile_us(&s, 0.5), quantile_us(&s, 0.99), quantile_us(&s, 1.0));
    free(s.v);
    cairn_log_close(log);
    return failures || s.n == 0 ? 1 : 0;
}

static int case_kafka_watermarks(const char *bootstrap, char **topics, int ntopics)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    char errstr[512];
    int bad = 0, parts = 0;
    int64_t high_total = 0;
    int t = 0;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "conf: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    for (t = 0; t < ntopics; t++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        int p = 0;
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
            fprintf(stderr, "metadata %s: %s\n", topics[t], rd_kafka_err2str(e));
            bad++;
        } else {
            for (p = 0; p < md->topics[0].partition_cnt; p++) {
                int64_t lo = -1, hi = -1;
                int32_t id = md->topics[0].partitions[p].id;
                e = rd_kafka_query_watermark_offsets(rk, topics[t], id, &lo, &hi, 10000);
                parts++;
                if (e != RD_KAFKA_RESP_ERR_NO_ERROR || lo != 0) {
                    fprintf(stderr, "%s/%d: low watermark %" PRId64 " (%s)\n", topics[t], id, lo,
                            rd_kafka_err2str(e));
                    bad++;
                } else {
                    high_total += hi;
                }
            }
        }
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    printf("name=eventstore.kafka.watermarks topics=%d partitions=%d records=%" PRId64
           " low_not_zero=%d ok=%s\n",
           ntopics, parts, high_total, bad, bad ? "no" : "yes");
    rd_kafka_destroy(rk);
    return bad ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_eventstore_append [--seconds S] [--threads N] [--events N] [--window W]\n"
            "                              [--plain-headers 0|1]\n"
            "                              CASE ARGS\n"
            "  fsync DIR | file-append DIR BATCH | file-replay DIR\n"
            "  kafka-plain|kafka-pipelined|kafka-single BOOTSTRAP TOPIC\n"
            "  kafka-watermarks BOOTSTRAP TOPIC...\n");
}

int main(int argc, char **argv)
{
    int i = 1;
    const char *c = NULL;

    signal(SIGPIPE, SIG_IGN);
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        char *end = NULL;
        if (strcmp(argv[i], "--seconds") == 0) {
            g_seconds = strtod(argv[i + 1], &end);
            if (*end || !(g_seconds > 0 && g_seconds < 3600))
                goto bad;
        } else if (strcmp(argv[i], "--threads") == 0) {
            g_threads = (int)strtol(argv[i + 1], &end, 10);
            if (*end || g_threads < 1 || g_threads > MAX_THREADS)
                goto bad;
        } else if (strcmp(argv[i], "--plain-headers") == 0) {
            g_plain_headers = strcmp(argv[i + 1], "1") == 0;
            if (!g_plain_headers && strcmp(argv[i + 1], "0") != 0)
                goto bad;
        } else if (strcmp(argv[i], "--window") == 0) {
            g_window = (int)strtol(argv[i + 1], &end, 10);
            if (*end || g_window < 1 || g_window > MAX_WINDOW)
                goto bad;
        } else if (strcmp(argv[i], "--events") == 0) {
            g_events = strtol(argv[i + 1], &end, 10);
            if (*end || g_events < 1 || g_events > 1000000000L)
                goto bad;
        } else {
            goto bad;
        }
    }
    if (i >= argc)
        goto bad;
    c = argv[i];
    if (strcmp(c, "fsync") == 0 && argc == i + 2)
        return case_fsync(argv[i + 1]);
    if (strcmp(c, "file-append") == 0 && argc == i + 3) {
        int batch = atoi(argv[i + 2]);
        if (batch < 1 || batch > MAX_BATCH)
            goto bad;
        return case_file_append(argv[i + 1], batch);
    }
    if (strcmp(c, "file-replay") == 0 && argc == i + 2)
        return case_file_replay(argv[i + 1]);
    if (strcmp(c, "kafka-plain") == 0 && argc == i + 3)
        return case_kafka_plain(argv[i + 1], argv[i + 2]);
    if (strcmp(c, "kafka-pipelined") == 0 && argc == i + 3)
        return case_kafka_pipelined(argv[i + 1], argv[i + 2]);
    if (strcmp(c, "kafka-single") == 0 && argc == i + 3)
        return case_kafka_single(argv[i + 1], argv[i + 2]);
    if (strcmp(c, "kafka-watermarks") == 0 && argc >= i + 3)
        return case_kafka_watermarks(argv[i + 1], argv + i + 2, argc - i - 2);
bad:
    usage();
    return 2;
}
