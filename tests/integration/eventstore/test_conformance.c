/* SPDX-License-Identifier: MIT */
/*
 * test_conformance.c - one list of record-log tests run against every
 * backend: the group "file" opens a fresh directory under a mkdtemp root per
 * test; the group "kafka" starts $CAIRN_TOOLS_DIR/cairn-mock-kafka (its own
 * process, spoken to over TCP exactly as a real cluster) and opens a fresh
 * pre-created topic per test, so tests never see each other's records.
 *
 * What both backends must agree on: round trips with headers, the three kinds
 * of expected version (a conflict carries the actual version in err->cause
 * and writes nothing), batches all or nothing, order within a stream, replay
 * of every partition equal to what was appended, tails that see new appends,
 * stop and resume from checkpoints without repeats or gaps, stream reads from
 * a middle version, and bad input (stream ids, sizes, URLs, checkpoints)
 * refused with CAIRN_E_INVALID before anything is written.
 *
 * CAIRN_CONFORMANCE_GROUP=file|kafka runs one group only (for debugging);
 * a missing mock binary fails the kafka group, naming CAIRN_TOOLS_DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cairn/eventstore.h"

#define TOPICS      16
#define PARTITIONS  3
#define WAIT_MS     15000
#define MAX_RECORDS 4096

struct suite {
    int kafka;
    char root[PATH_MAX];
    pid_t mock;
    char bootstrap[512];
    int next;
};

struct fx {
    struct suite *s;
    char url[PATH_MAX + 1024];
    cairn_log_t *log;
};

/* A copy of a delivered record. */
struct rec {
    char stream[128];
    uint64_t version;
    uint64_t position;
    int32_t partition;
    char value[256];
    size_t value_len;
    char hname[4][32];
    char hval[4][64];
    size_t nh;
};

struct sink {
    struct rec r[MAX_RECORDS];
    size_t n;
    size_t stop_at; /* refuse the record with this index (1-based); 0: never */
};

static int collect(void *opaque, const cairn_record_t *r)
{
    struct sink *k = opaque;
    if (k->stop_at && k->n + 1 == k->stop_at) {
        k->stop_at = 0;
        return 1;
    }
    if (k->n >= MAX_RECORDS)
        return 1;
    struct rec *c = &k->r[k->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->stream, sizeof c->stream, "%s", r->stream);
    c->version = r->version;
    c->position = r->position;
    c->partition = r->partition;
    c->value_len = r->value_len;
    memcpy(c->value, r->value, r->value_len < sizeof c->value ? r->value_len : sizeof c->value);
    /* Only our own test headers: a backend may carry its own (cairn.*). */
    for (size_t i = 0; i < r->header_count && c->nh < 4; i++) {
        if (!strncmp(r->headers[i].name, "cairn.", 6))
            continue;
        snprintf(c->hname[c->nh], sizeof c->hname[0], "%s", r->headers[i].name);
        size_t l = r->headers[i].value_len < 63 ? r->headers[i].value_len : 63;
        memcpy(c->hval[c->nh], r->headers[i].value, l);
        c->nh++;
    }
    return 0;
}

static struct sink *sink_new(void)
{
    struct sink *k = calloc(1, sizeof *k);
    assert_non_null(k);
    return k;
}

/* ---- the mock cluster ---------------------------------------------------- */

static int start_mock(struct suite *s)
{
    const char *tools = getenv("CAIRN_TOOLS_DIR");
    char bin[PATH_MAX];
    if (!tools || !*tools) {
        fprintf(stderr, "CAIRN_TOOLS_DIR is not set: it must name the directory of "
                        "cairn-mock-kafka (ctest sets it)\n");
        return -1;
    }
    snprintf(bin, sizeof bin, "%s/cairn-mock-kafka", tools);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "no executable %s (CAIRN_TOOLS_DIR=%s): build target cairn-mock-kafka\n",
                bin, tools);
        return -1;
    }
    char *argv[3 + 2 * TOPICS + 1];
    static char topics[TOPICS][64], flag[] = "--topic";
    int a = 0;
    argv[a++] = bin;
    for (int i = 0; i < TOPICS; i++) {
        snprintf(topics[i], sizeof topics[i], "conf-%d-%d:%d", (int)getpid(), i, PARTITIONS);
        argv[a++] = flag;
        argv[a++] = topics[i];
    }
    argv[a] = NULL;
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(p[1]);
    s->mock = pid;
    /* The first line of its output is the bootstrap address. */
    size_t n = 0;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    while (n + 1 < sizeof s->bootstrap) {
        if (poll(&pf, 1, 30000) <= 0)
            break;
        ssize_t k = read(p[0], s->bootstrap + n, 1);
        if (k <= 0 || s->bootstrap[n] == '\n')
            break;
        n++;
    }
    s->bootstrap[n] = '\0';
    close(p[0]);
    if (n == 0) {
        fprintf(stderr, "%s printed no bootstrap address within 30 s\n", bin);
        return -1;
    }
    return 0;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char sub[PATH_MAX * 2];
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static int group_setup_file(void **state)
{
    struct suite *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    snprintf(s->root, sizeof s->root, "/tmp/cairn-conformance-XXXXXX");
    if (!mkdtemp(s->root)) {
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int group_setup_kafka(void **state)
{
    struct suite *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->kafka = 1;
    s->mock = -1;
    *state = s;
    return start_mock(s);
}

static int group_teardown(void **state)
{
    struct suite *s = *state;
    if (!s)
        return 0;
    if (s->kafka && s->mock > 0) {
        kill(s->mock, SIGTERM);
        waitpid(s->mock, NULL, 0);
    }
    if (!s->kafka && s->root[0])
        rm_tree(s->root);
    free(s);
    return 0;
}

/* A fresh log URL (a new directory or a new topic). */
static void fresh_url(struct suite *s, char *buf, size_t size)
{
    int i = s->next++;
    if (s->kafka) {
        assert_true(i < TOPICS);
        snprintf(buf, size, "kafka:%s?topic=conf-%d-%d", s->bootstrap, (int)getpid(), i);
    } else {
        snprintf(buf, size, "file:%s/t%d", s->root, i);
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    cairn_error_t err = {0};
    if (!f)
        return -1;
    f->s = *state;
    fresh_url(f->s, f->url, sizeof f->url);
    if (cairn_log_open(f->url, NULL, &f->log, &err) != CAIRN_OK) {
        fprintf(stderr, "cannot open '%s': %s: %s\n", f->url, cairn_rc_name(err.code), err.text);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cairn_log_close(f->log);
    free(f);
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static cairn_rc_t put(cairn_log_t *log,
                      const char *stream,
                      int64_t expect,
                      const char *value,
                      uint64_t *version,
                      cairn_error_t *err)
{
    cairn_record_t r = {.value = value, .value_len = strlen(value)};
    return cairn_log_append(log, stream, expect, &r, 1, version, err);
}

static struct sink *replay_all(cairn_log_t *log)
{
    struct sink *k = sink_new();
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn_log_replay(log, 0, collect, k, &err);
    if (rc != CAIRN_DONE)
        fail_msg("replay: %s: %s", cairn_rc_name(rc), err.text);
    return k;
}

static struct sink *read_stream(cairn_log_t *log, const char *stream, uint64_t from)
{
    struct sink *k = sink_new();
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn_log_read_stream(log, stream, from, collect, k, &err);
    if (rc != CAIRN_DONE)
        fail_msg("read_stream '%s': %s: %s", stream, cairn_rc_name(rc), err.text);
    return k;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls until @p want records in all arrived in @p k (or WAIT_MS passed). */
static void poll_until(cairn_tail_t *t, struct sink *k, size_t want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (k->n < want && now_ms() < deadline) {
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn_tail_poll(t, 200, want - k->n, collect, k, NULL, &err);
        if (rc != CAIRN_OK)
            fail_msg("tail poll: %s: %s", cairn_rc_name(rc), err.text);
    }
    assert_int_equal(k->n, want);
}

/* ---- the cases ----------------------------------------------------------- */

static void test_round_trip_with_headers(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_header_t h1[] = {{"type", "Created", 7}, {"bin", "\0\1\2", 3}};
    cairn_header_t h2[] = {{"type", "Renamed", 7}};
    cairn_record_t recs[] = {
        {.value = "first", .value_len = 5, .headers = h1, .header_count = 2},
        {.value = "second", .value_len = 6, .headers = h2, .header_count = 1},
        {.value = "", .value_len = 0},
    };
    uint64_t last = 0;
    assert_int_equal(
        cairn_log_append(f->log, "order-1", CAIRN_EXPECT_NO_STREAM, recs, 3, &last, &err),
        CAIRN_OK);
    assert_int_equal(last, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(recs[i].version, (uint64_t)i + 1);
        assert_int_equal(recs[i].partition, cairn_log_partition_of(f->log, "order-1"));
    }
    struct sink *k = read_stream(f->log, "order-1", 1);
    assert_int_equal(k->n, 3);
    assert_string_equal(k->r[0].stream, "order-1");
    assert_int_equal(k->r[0].value_len, 5);
    assert_memory_equal(k->r[0].value, "first", 5);
    assert_int_equal(k->r[0].nh, 2);
    assert_string_equal(k->r[0].hname[0], "type");
    assert_string_equal(k->r[0].hval[0], "Created");
    assert_string_equal(k->r[0].hname[1], "bin");
    assert_memory_equal(k->r[0].hval[1], "\0\1\2", 3);
    assert_memory_equal(k->r[1].value, "second", 6);
    assert_int_equal(k->r[1].nh, 1);
    assert_string_equal(k->r[1].hval[0], "Renamed");
    assert_int_equal(k->r[2].value_len, 0);
    assert_int_equal(k->r[2].nh, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(k->r[i].version, (uint64_t)i + 1);
        assert_int_equal(k->r[i].position, recs[i].position);
        assert_int_equal(k->r[i].partition, recs[i].partition);
    }
    free(k);
}

static void test_expect_any(void **state)
{
    struct fx *f = *state;
    uint64_t v = 0;
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, "a", &v, NULL), CAIRN_OK);
    assert_int_equal(v, 1);
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, "b", &v, NULL), CAIRN_OK);
    assert_int_equal(v, 2);
    assert_int_equal(cairn_log_stream_version(f->log, "s"), 2);
}

static void test_expect_no_stream(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    uint64_t v = 0;
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_NO_STREAM, "a", &v, NULL), CAIRN_OK);
    assert_int_equal(v, 1);
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_NO_STREAM, "b", &v, &err),
                     CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.code, CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 1);
    assert_true(err.flags & CAIRN_ERR_CONFLICT);
    /* Expected version 0 means "no stream" too. */
    assert_int_equal(put(f->log, "t", 0, "c", &v, NULL), CAIRN_OK);
    assert_int_equal(v, 1);
    struct sink *k = read_stream(f->log, "s", 1);
    assert_int_equal(k->n, 1);
    assert_memory_equal(k->r[0].value, "a", 1);
    free(k);
}

static void test_expect_exact_and_conflict_writes_nothing(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    uint64_t v = 0;
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, "1", NULL, NULL), CAIRN_OK);
    assert_int_equal(put(f->log, "s", 1, "2", &v, NULL), CAIRN_OK);
    assert_int_equal(v, 2);
    assert_int_equal(put(f->log, "s", 1, "stale", &v, &err), CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 2);
    memset(&err, 0, sizeof err);
    assert_int_equal(put(f->log, "s", 5, "ahead", &v, &err), CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 2);
    assert_int_equal(cairn_log_stream_version(f->log, "s"), 2);
    assert_int_equal(put(f->log, "s", 2, "3", &v, NULL), CAIRN_OK);
    assert_int_equal(v, 3);
    struct sink *k = replay_all(f->log);
    assert_int_equal(k->n, 3);
    for (size_t i = 0; i < k->n; i++) {
        assert_int_equal(k->r[i].version, i + 1);
        assert_int_equal(k->r[i].value[0], (char)('1' + i));
    }
    free(k);
}

static void test_batch_all_or_nothing(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    static char big[9u << 20]; /* over the default 8 MiB record limit */
    cairn_record_t bad[3] = {
        {.value = "a", .value_len = 1},
        {.value = big, .value_len = sizeof big},
        {.value = "c", .value_len = 1},
    };
    assert_int_equal(cairn_log_append(f->log, "b", CAIRN_EXPECT_ANY, bad, 3, NULL, &err),
                     CAIRN_E_INVALID);
    assert_int_equal(cairn_log_stream_version(f->log, "b"), 0);
    cairn_record_t good[3] = {
        {.value = "a", .value_len = 1},
        {.value = "b", .value_len = 1},
        {.value = "c", .value_len = 1},
    };
    assert_int_equal(put(f->log, "b", CAIRN_EXPECT_ANY, "x", NULL, NULL), CAIRN_OK);
    memset(&err, 0, sizeof err);
    /* A wrong expectation refuses the whole batch. */
    assert_int_equal(cairn_log_append(f->log, "b", CAIRN_EXPECT_NO_STREAM, good, 3, NULL, &err),
                     CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 1);
    uint64_t last = 0;
    assert_int_equal(cairn_log_append(f->log, "b", 1, good, 3, &last, NULL), CAIRN_OK);
    assert_int_equal(last, 4);
    struct sink *k = replay_all(f->log);
    assert_int_equal(k->n, 4);
    assert_memory_equal(k->r[0].value, "x", 1);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(k->r[i].version, i + 1);
        assert_int_equal(k->r[i].value[0], (char)('a' + i - 1));
    }
    free(k);
}

static void test_order_within_streams(void **state)
{
    struct fx *f = *state;
    const char *streams[] = {"alpha", "beta", "gamma", "delta"};
    char v[32];
    for (int i = 0; i < 20; i++)
        for (int s = 0; s < 4; s++) {
            snprintf(v, sizeof v, "%s-%d", streams[s], i);
            assert_int_equal(put(f->log, streams[s], i, v, NULL, NULL), CAIRN_OK);
        }
    for (int s = 0; s < 4; s++) {
        struct sink *k = read_stream(f->log, streams[s], 0);
        assert_int_equal(k->n, 20);
        for (int i = 0; i < 20; i++) {
            snprintf(v, sizeof v, "%s-%d", streams[s], i);
            assert_int_equal(k->r[i].version, (uint64_t)i + 1);
            assert_int_equal(k->r[i].value_len, strlen(v));
            assert_memory_equal(k->r[i].value, v, strlen(v));
            if (i)
                assert_true(k->r[i].position > k->r[i - 1].position);
        }
        free(k);
    }
    /* In the whole-log replay, too, each stream comes in version order. */
    struct sink *k = replay_all(f->log);
    assert_int_equal(k->n, 80);
    uint64_t seen[4] = {0};
    for (size_t i = 0; i < k->n; i++)
        for (int s = 0; s < 4; s++)
            if (!strcmp(k->r[i].stream, streams[s]))
                assert_int_equal(k->r[i].version, ++seen[s]);
    free(k);
}

static void test_replay_equals_appended(void **state)
{
    struct fx *f = *state;
    char stream[32], v[32];
    int parts = cairn_log_partition_count(f->log);
    assert_true(parts >= 1);
    for (int i = 0; i < 60; i++) {
        snprintf(stream, sizeof stream, "acct-%d", i % 12);
        snprintf(v, sizeof v, "value-%d", i);
        assert_int_equal(put(f->log, stream, CAIRN_EXPECT_ANY, v, NULL, NULL), CAIRN_OK);
    }
    struct sink *k = replay_all(f->log);
    assert_int_equal(k->n, 60);
    int got[60] = {0};
    size_t per_part = 0;
    for (size_t i = 0; i < k->n; i++) {
        int n = -1;
        assert_int_equal(sscanf(k->r[i].value, "value-%d", &n), 1);
        assert_true(n >= 0 && n < 60);
        got[n]++;
        snprintf(stream, sizeof stream, "acct-%d", n % 12);
        assert_string_equal(k->r[i].stream, stream);
        assert_int_equal(k->r[i].version, (uint64_t)(n / 12) + 1);
        assert_int_equal(k->r[i].partition, cairn_log_partition_of(f->log, stream));
    }
    for (int n = 0; n < 60; n++)
        assert_int_equal(got[n], 1);
    /* Partition by partition, the same records. */
    for (int p = 0; p < parts; p++) {
        struct sink *q = sink_new();
        assert_int_equal(cairn_log_replay_partition(f->log, p, 0, collect, q, NULL), CAIRN_DONE);
        for (size_t i = 0; i < q->n; i++) {
            assert_int_equal(q->r[i].partition, p);
            if (i)
                assert_true(q->r[i].position > q->r[i - 1].position);
            assert_true(q->r[i].position < cairn_log_partition_end(f->log, p));
        }
        per_part += q->n;
        free(q);
    }
    assert_int_equal(per_part, 60);
    assert_int_equal(cairn_log_replay_partition(f->log, parts, 0, collect, k, NULL),
                     CAIRN_E_INVALID);
    free(k);
}

struct later {
    cairn_log_t *log;
    int delay_ms;
    cairn_rc_t rc;
};

static void *append_later(void *arg)
{
    struct later *l = arg;
    struct timespec ts = {0, (long)l->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    l->rc = put(l->log, "late", CAIRN_EXPECT_ANY, "late-value", NULL, NULL);
    return NULL;
}

static void test_tail_sees_new_appends(void **state)
{
    struct fx *f = *state;
    cairn_tail_t *t = NULL;
    cairn_error_t err = {0};
    assert_int_equal(put(f->log, "old", CAIRN_EXPECT_ANY, "before", NULL, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_open(f->log, "end", &t, &err), CAIRN_OK);
    struct sink *k = sink_new();
    size_t got = 99;
    assert_int_equal(cairn_tail_poll(t, 0, 10, collect, k, &got, &err), CAIRN_OK);
    assert_int_equal(got, 0);
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, "new-1", NULL, NULL), CAIRN_OK);
    assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, "new-2", NULL, NULL), CAIRN_OK);
    poll_until(t, k, 2);
    assert_memory_equal(k->r[0].value, "new-1", 5);
    assert_memory_equal(k->r[1].value, "new-2", 5);
    /* A poll that waits sees an append made while it waits. */
    struct later l = {f->log, 300, CAIRN_E_INTERNAL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, append_later, &l), 0);
    int64_t t0 = now_ms();
    while (k->n < 3 && now_ms() - t0 < WAIT_MS)
        assert_int_equal(cairn_tail_poll(t, WAIT_MS, 10, collect, k, NULL, &err), CAIRN_OK);
    pthread_join(th, NULL);
    assert_int_equal(l.rc, CAIRN_OK);
    assert_int_equal(k->n, 3);
    assert_string_equal(k->r[2].stream, "late");
    cairn_tail_close(t);
    free(k);
}

static void test_tail_from_start_and_resume_from_checkpoint(void **state)
{
    struct fx *f = *state;
    cairn_tail_t *t = NULL;
    cairn_error_t err = {0};
    char cp[CAIRN_CHECKPOINT_MAX], v[16];
    for (int i = 0; i < 10; i++) {
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, v, NULL, NULL), CAIRN_OK);
    }
    assert_int_equal(cairn_tail_open(f->log, NULL, &t, &err), CAIRN_OK);
    struct sink *k = sink_new();
    poll_until(t, k, 4); /* max_records bounds each poll: exactly 4 */
    assert_int_equal(cairn_tail_checkpoint(t, cp, sizeof cp, &err), CAIRN_OK);
    cairn_tail_close(t);
    for (int i = 10; i < 15; i++) {
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(put(f->log, "s", CAIRN_EXPECT_ANY, v, NULL, NULL), CAIRN_OK);
    }
    assert_int_equal(cairn_tail_open(f->log, cp, &t, &err), CAIRN_OK);
    poll_until(t, k, 15);
    for (size_t i = 0; i < 15; i++) {
        assert_int_equal(k->r[i].version, i + 1);
        assert_int_equal(atoi(k->r[i].value), (int)i);
    }
    /* Nothing more: no repeats. */
    size_t got = 7;
    assert_int_equal(cairn_tail_poll(t, 100, 10, collect, k, &got, &err), CAIRN_OK);
    assert_int_equal(got, 0);
    cairn_tail_close(t);
    free(k);
}

static void test_tail_refused_record_is_redelivered(void **state)
{
    struct fx *f = *state;
    cairn_tail_t *t = NULL;
    cairn_error_t err = {0};
    cairn_record_t recs[5];
    char vals[5][4];
    for (int i = 0; i < 5; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        recs[i] = (cairn_record_t){.value = vals[i], .value_len = strlen(vals[i])};
    }
    assert_int_equal(cairn_log_append(f->log, "s", CAIRN_EXPECT_NO_STREAM, recs, 5, NULL, NULL),
                     CAIRN_OK);
    assert_int_equal(cairn_tail_open(f->log, "", &t, &err), CAIRN_OK);
    struct sink *k = sink_new();
    k->stop_at = 3;
    size_t got = 0;
    int64_t t0 = now_ms();
    cairn_rc_t rc = CAIRN_OK;
    while (k->n < 2 && rc == CAIRN_OK && now_ms() - t0 < WAIT_MS)
        rc = cairn_tail_poll(t, 200, 10, collect, k, &got, &err);
    assert_int_equal(rc, CAIRN_AGAIN);
    assert_int_equal(k->n, 2);
    poll_until(t, k, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(k->r[i].version, i + 1);
    cairn_tail_close(t);
    free(k);
}

static void test_read_stream_from_middle_and_stream_version(void **state)
{
    struct fx *f = *state;
    char v[16];
    assert_int_equal(cairn_log_stream_version(f->log, "m"), 0);
    for (int i = 1; i <= 5; i++) {
        snprintf(v, sizeof v, "m%d", i);
        assert_int_equal(put(f->log, "m", i - 1, v, NULL, NULL), CAIRN_OK);
        assert_int_equal(put(f->log, "other", CAIRN_EXPECT_ANY, "o", NULL, NULL), CAIRN_OK);
    }
    assert_int_equal(cairn_log_stream_version(f->log, "m"), 5);
    assert_int_equal(cairn_log_stream_version(f->log, "other"), 5);
    assert_int_equal(cairn_log_stream_version(f->log, "none"), 0);
    struct sink *k = read_stream(f->log, "m", 3);
    assert_int_equal(k->n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(k->r[i].version, i + 3);
        snprintf(v, sizeof v, "m%zu", i + 3);
        assert_memory_equal(k->r[i].value, v, strlen(v));
    }
    free(k);
    k = read_stream(f->log, "m", 6);
    assert_int_equal(k->n, 0);
    free(k);
    k = read_stream(f->log, "none", 1);
    assert_int_equal(k->n, 0);
    free(k);
}

static void test_bad_stream_ids_and_sizes_write_nothing(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    static char long_id[70001];
    memset(long_id, 'k', sizeof long_id - 1);
    assert_int_equal(put(f->log, "", CAIRN_EXPECT_ANY, "v", NULL, &err), CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "stream"));
    assert_int_equal(put(f->log, NULL, CAIRN_EXPECT_ANY, "v", NULL, NULL), CAIRN_E_INVALID);
    assert_int_equal(put(f->log, long_id, CAIRN_EXPECT_ANY, "v", NULL, NULL), CAIRN_E_INVALID);
    static char big[9u << 20];
    cairn_record_t r = {.value = big, .value_len = sizeof big};
    assert_int_equal(cairn_log_append(f->log, "s", CAIRN_EXPECT_ANY, &r, 1, NULL, NULL),
                     CAIRN_E_INVALID);
    cairn_header_t h = {"h", big, sizeof big};
    cairn_record_t r2 = {.value = "x", .value_len = 1, .headers = &h, .header_count = 1};
    assert_int_equal(cairn_log_append(f->log, "s", CAIRN_EXPECT_ANY, &r2, 1, NULL, NULL),
                     CAIRN_E_INVALID);
    assert_int_equal(cairn_log_append(f->log, "s", CAIRN_EXPECT_ANY, &r2, 0, NULL, NULL),
                     CAIRN_E_INVALID);
    assert_int_equal(put(f->log, "s", -7, "v", NULL, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn_log_stream_version(f->log, "s"), 0);
    struct sink *k = replay_all(f->log);
    assert_int_equal(k->n, 0);
    free(k);
}

static void test_invalid_urls(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "file:",
        "file://",
        "nosuch:/tmp/x",
        "averyveryverylongschemename:/tmp/x",
        "http://localhost:8081",
        "kafka:",
        "kafka:?topic=t",
        "kafka://localhost:9092",
        "kafka:localhost:9092",
        "kafka:localhost?topic=t",
        "kafka:localhost:99999?topic=t",
        "kafka:localhost:9092,?topic=t",
        "kafka:localhost:9092?topic=",
        "kafka:localhost:9092?partitions=3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cairn_log_t *log = (cairn_log_t *)&log;
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn_log_open(bad[i], NULL, &log, &err);
        if (rc != CAIRN_E_INVALID)
            fail_msg("url '%s': %s, expected CAIRN_E_INVALID", bad[i], cairn_rc_name(rc));
        assert_null(log);
        assert_true(err.text[0] != '\0');
    }
    cairn_log_t *log = NULL;
    assert_int_equal(cairn_log_open(NULL, NULL, &log, NULL), CAIRN_E_INVALID);
}

static void test_bad_checkpoints(void **state)
{
    struct fx *f = *state;
    cairn_tail_t *t = (cairn_tail_t *)&t;
    const char *bad[] = {"nonsense", "file:abc", "file:", "kafka:zz", "file:1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn_tail_open(f->log, bad[i], &t, &err);
        if (rc != CAIRN_E_INVALID)
            fail_msg("checkpoint '%s': %s, expected CAIRN_E_INVALID", bad[i], cairn_rc_name(rc));
        assert_null(t);
    }
    /* A checkpoint of the other backend. */
    cairn_error_t err = {0};
    const char *other = f->s->kafka ? "file:0" : "kafka:0=0@1";
    assert_int_equal(cairn_tail_open(f->log, other, &t, &err), CAIRN_E_INVALID);
}

static void test_partitions(void **state)
{
    struct fx *f = *state;
    int parts = cairn_log_partition_count(f->log);
    assert_int_equal(parts, f->s->kafka ? PARTITIONS : 1);
    char stream[32];
    int used[PARTITIONS] = {0};
    for (int i = 0; i < 40; i++) {
        snprintf(stream, sizeof stream, "p-%d", i);
        int p = cairn_log_partition_of(f->log, stream);
        assert_true(p >= 0 && p < parts);
        assert_int_equal(p, cairn_log_partition_of(f->log, stream));
        used[p]++;
        cairn_record_t r = {.value = "v", .value_len = 1};
        assert_int_equal(
            cairn_log_append(f->log, stream, CAIRN_EXPECT_NO_STREAM, &r, 1, NULL, NULL), CAIRN_OK);
        assert_int_equal(r.partition, p);
    }
    for (int p = 0; p < parts; p++)
        assert_true(used[p] > 0); /* 40 keys spread over every partition */
    assert_true(cairn_log_end(f->log) > 0);
}

#define CASES(X)                                                                                   \
    X(test_round_trip_with_headers)                                                                \
    X(test_expect_any)                                                                             \
    X(test_expect_no_stream)                                                                       \
    X(test_expect_exact_and_conflict_writes_nothing)                                               \
    X(test_batch_all_or_nothing)                                                                   \
    X(test_order_within_streams)                                                                   \
    X(test_replay_equals_appended)                                                                 \
    X(test_tail_sees_new_appends)                                                                  \
    X(test_tail_from_start_and_resume_from_checkpoint)                                             \
    X(test_tail_refused_record_is_redelivered)                                                     \
    X(test_read_stream_from_middle_and_stream_version)                                             \
    X(test_bad_stream_ids_and_sizes_write_nothing)                                                 \
    X(test_bad_checkpoints)                                                                        \
    X(test_partitions)

#define ENTRY(name) cmocka_unit_test_setup_teardown(name, setup, teardown),

int main(void)
{
    const char *only = getenv("CAIRN_CONFORMANCE_GROUP");
    const struct CMUnitTest tests[] = {CASES(ENTRY) cmocka_unit_test(test_invalid_urls)};
    int failed = 0;
    signal(SIGPIPE, SIG_IGN);
    if (!only || !strcmp(only, "file"))
        failed += _cmocka_run_group_tests("file", tests, sizeof tests / sizeof tests[0],
                                          group_setup_file, group_teardown);
    if (!only || !strcmp(only, "kafka"))
        failed += _cmocka_run_group_tests("kafka", tests, sizeof tests / sizeof tests[0],
                                          group_setup_kafka, group_teardown);
    return failed;
}
