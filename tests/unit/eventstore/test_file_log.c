/* SPDX-License-Identifier: MIT */
/*
 * test_file_log.c - the file backend of the record log: round trips,
 * expected versions, batches, segments, recovery of torn and damaged tails,
 * group commit, the writer's lock and read-only openers. Each test works in
 * its own mkdtemp directory under /tmp, removed by the teardown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cairn/eventstore.h"
#include "eventstore_int.h"

#define SEG0 "00000000000000000000.log"

struct fixture {
    char dir[64];
    char path[128]; /* scratch for file paths */
};

/* Largest single allocation seen (the corrupt-length test checks it). */
static _Atomic size_t max_alloc;

static void *counting_malloc(size_t n)
{
    size_t cur = atomic_load(&max_alloc);
    while (n > cur && !atomic_compare_exchange_weak(&max_alloc, &cur, n))
        ;
    return malloc(n);
}

static void *counting_realloc(void *p, size_t n)
{
    size_t cur = atomic_load(&max_alloc);
    while (n > cur && !atomic_compare_exchange_weak(&max_alloc, &cur, n))
        ;
    return realloc(p, n);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-es-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static const char *fpath(struct fixture *f, const char *name)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    return f->path;
}

static off_t file_size(struct fixture *f, const char *name)
{
    struct stat st;
    if (stat(fpath(f, name), &st) != 0)
        return -1;
    return st.st_size;
}

static void patch_file(struct fixture *f, const char *name, off_t off, const void *bytes, size_t n)
{
    int fd = open(fpath(f, name), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static cairn_log_t *open_log(struct fixture *f, const cairn_log_options_t *opts)
{
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn_log_open(f->dir, opts, &log, &err);
    if (rc != CAIRN_OK)
        fail_msg("open failed: %s %s", cairn_rc_name(rc), err.text);
    return log;
}

/* Appends one record with value @p value and expected version @p ev. */
static cairn_rc_t put(cairn_log_t *log,
                      const char *stream,
                      int64_t ev,
                      const char *value,
                      cairn_record_t *out,
                      cairn_error_t *err)
{
    cairn_record_t r = {.value = value, .value_len = strlen(value)};
    cairn_rc_t rc = cairn_log_append(log, stream, ev, &r, 1, NULL, err);
    if (out)
        *out = r;
    return rc;
}

static cairn_rc_t
put_nowait(cairn_log_t *log, const char *stream, const char *value, uint64_t *position)
{
    cairn_record_t r = {.value = value, .value_len = strlen(value)};
    uint64_t ticket;
    cairn_rc_t rc =
        cairn_log_append_nowait(log, stream, CAIRN_EXPECT_ANY, &r, 1, NULL, &ticket, NULL);
    *position = r.position;
    return rc;
}

/* ---- collecting replayed records ---------------------------------------- */

struct seen {
    size_t n;
    char stream[64][32];
    char value[64][64];
    uint64_t version[64];
    uint64_t position[64];
    size_t header_count[64];
    char header0[64][32];
    char header0_value[64][32];
    size_t total; /* every callback, also past the 64 kept */
    size_t stop_after;
};

static int collect(void *opaque, const cairn_record_t *r)
{
    struct seen *s = opaque;
    if (s->n < 64) {
        snprintf(s->stream[s->n], sizeof s->stream[0], "%s", r->stream);
        snprintf(s->value[s->n], sizeof s->value[0], "%.*s", (int)r->value_len,
                 (const char *)r->value);
        s->version[s->n] = r->version;
        s->position[s->n] = r->position;
        s->header_count[s->n] = r->header_count;
        if (r->header_count) {
            snprintf(s->header0[s->n], sizeof s->header0[0], "%s", r->headers[0].name);
            snprintf(s->header0_value[s->n], sizeof s->header0_value[0], "%.*s",
                     (int)r->headers[0].value_len, (const char *)r->headers[0].value);
        }
        s->n++;
    }
    s->total++;
    return s->stop_after && s->total >= s->stop_after;
}

static struct seen *replay_all(cairn_log_t *log, uint64_t from)
{
    static _Thread_local struct seen s;
    cairn_error_t err = {0};
    memset(&s, 0, sizeof s);
    cairn_rc_t rc = cairn_log_replay(log, from, collect, &s, &err);
    if (rc != CAIRN_DONE)
        fail_msg("replay: %s %s", cairn_rc_name(rc), err.text);
    return &s;
}

/* ---- tests -------------------------------------------------------------- */

static void test_append_and_replay_round_trip_with_headers(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    cairn_header_t h[2] = {{"cairn.type", "OrderPlaced", 11}, {"empty", NULL, 0}};
    cairn_record_t recs[2] = {
        {.value = "v1", .value_len = 2, .headers = h, .header_count = 2},
        {.value = "", .value_len = 0, .timestamp_ms = 1234},
    };
    uint64_t last = 0;
    assert_int_equal(cairn_log_append(log, "order-1", CAIRN_EXPECT_NO_STREAM, recs, 2, &last, &err),
                     CAIRN_OK);
    assert_int_equal(last, 2);
    assert_int_equal(recs[0].version, 1);
    assert_int_equal(recs[1].version, 2);
    assert_int_equal(recs[0].position, 0);
    assert_true(recs[1].position > recs[0].position);
    assert_true(recs[0].timestamp_ms > 1600000000000LL);
    assert_int_equal(recs[1].timestamp_ms, 1234);
    assert_int_equal(cairn_log_end(log) > recs[1].position, 1);

    struct seen *s = replay_all(log, 0);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->stream[0], "order-1");
    assert_string_equal(s->value[0], "v1");
    assert_int_equal(s->header_count[0], 2);
    assert_string_equal(s->header0[0], "cairn.type");
    assert_string_equal(s->header0_value[0], "OrderPlaced");
    assert_string_equal(s->value[1], "");
    assert_int_equal(s->header_count[1], 0);
    assert_int_equal(s->version[1], 2);
    assert_int_equal(s->position[1], recs[1].position);
    cairn_log_close(log);
}

static void test_expected_version_any_no_stream_and_exact(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    assert_int_equal(put(log, "a", CAIRN_EXPECT_ANY, "1", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "a", CAIRN_EXPECT_ANY, "2", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "b", CAIRN_EXPECT_NO_STREAM, "1", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "c", 0, "1", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "a", 2, "3", NULL, &err), CAIRN_OK);
    assert_int_equal(cairn_log_stream_version(log, "a"), 3);
    assert_int_equal(cairn_log_stream_version(log, "b"), 1);
    assert_int_equal(cairn_log_stream_version(log, "nope"), 0);
    assert_int_equal(put(log, "a", -7, "x", NULL, &err), CAIRN_E_INVALID);
    cairn_log_close(log);
}

static void test_conflict_reports_actual_version_and_writes_nothing(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    assert_int_equal(put(log, "a", CAIRN_EXPECT_ANY, "1", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "a", CAIRN_EXPECT_ANY, "2", NULL, &err), CAIRN_OK);
    uint64_t end = cairn_log_end(log);
    off_t size = file_size(f, SEG0);

    assert_int_equal(put(log, "a", 5, "x", NULL, &err), CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 2);
    assert_true(err.flags & CAIRN_ERR_CONFLICT);
    assert_string_equal(err.where, "a");

    memset(&err, 0, sizeof err);
    assert_int_equal(put(log, "a", CAIRN_EXPECT_NO_STREAM, "x", NULL, &err),
                     CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 2);
    memset(&err, 0, sizeof err);
    assert_int_equal(put(log, "fresh", 1, "x", NULL, &err), CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(err.cause, 0);

    assert_int_equal(cairn_log_end(log), end);
    assert_int_equal(file_size(f, SEG0), size);
    assert_int_equal(cairn_log_stream_version(log, "a"), 2);
    assert_int_equal(cairn_log_stream_version(log, "fresh"), 0);
    assert_int_equal(replay_all(log, 0)->n, 2);
    cairn_log_close(log);
}

static void test_batch_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.max_record_bytes = 1024};
    cairn_log_t *log = open_log(f, &o);
    cairn_error_t err = {0};
    static char big[2048];
    memset(big, 'x', sizeof big);
    cairn_record_t recs[3] = {
        {.value = "a", .value_len = 1},
        {.value = big, .value_len = sizeof big},
        {.value = "c", .value_len = 1},
    };
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, recs, 3, NULL, &err),
                     CAIRN_E_INVALID);
    assert_int_equal(cairn_log_end(log), 0);
    assert_int_equal(file_size(f, SEG0), 0);
    assert_int_equal(cairn_log_stream_version(log, "s"), 0);

    recs[1].value_len = 10;
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_NO_STREAM, recs, 3, NULL, &err),
                     CAIRN_OK);
    assert_int_equal(cairn_log_stream_version(log, "s"), 3);
    /* The same batch under a wrong expectation writes none of it. */
    assert_int_equal(cairn_log_append(log, "s", 1, recs, 3, NULL, &err), CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(cairn_log_stream_version(log, "s"), 3);
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, recs, 0, NULL, NULL),
                     CAIRN_E_INVALID);
    cairn_log_close(log);
}

static void test_oversized_record_is_invalid_and_nothing_written(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.max_record_bytes = 100};
    cairn_log_t *log = open_log(f, &o);
    cairn_error_t err = {0};
    char v[200];
    memset(v, 'v', sizeof v);
    cairn_record_t r = {.value = v, .value_len = sizeof v};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, &r, 1, NULL, &err),
                     CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "max_record_bytes"));
    /* A big header counts too. */
    cairn_header_t h = {"h", v, sizeof v};
    cairn_record_t r2 = {.value = "x", .value_len = 1, .headers = &h, .header_count = 1};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, &r2, 1, NULL, NULL),
                     CAIRN_E_INVALID);
    assert_int_equal(file_size(f, SEG0), 0);
    assert_int_equal(cairn_log_end(log), 0);
    cairn_log_close(log);
}

static void test_read_stream_from_a_version(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    char v[16];
    for (int i = 1; i <= 5; i++) {
        snprintf(v, sizeof v, "a%d", i);
        assert_int_equal(put(log, "a", CAIRN_EXPECT_ANY, v, NULL, &err), CAIRN_OK);
        snprintf(v, sizeof v, "b%d", i);
        assert_int_equal(put(log, "b", CAIRN_EXPECT_ANY, v, NULL, &err), CAIRN_OK);
    }
    struct seen s = {0};
    assert_int_equal(cairn_log_read_stream(log, "b", 3, collect, &s, &err), CAIRN_DONE);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.value[0], "b3");
    assert_int_equal(s.version[0], 3);
    assert_string_equal(s.value[2], "b5");
    assert_string_equal(s.stream[2], "b");

    memset(&s, 0, sizeof s);
    assert_int_equal(cairn_log_read_stream(log, "a", 0, collect, &s, &err), CAIRN_DONE);
    assert_int_equal(s.n, 5);
    memset(&s, 0, sizeof s);
    assert_int_equal(cairn_log_read_stream(log, "a", 6, collect, &s, &err), CAIRN_DONE);
    assert_int_equal(s.n, 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(cairn_log_read_stream(log, "none", 1, collect, &s, &err), CAIRN_DONE);
    assert_int_equal(s.n, 0);
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    assert_int_equal(cairn_log_read_stream(log, "a", 1, collect, &s, &err), CAIRN_AGAIN);
    assert_int_equal(s.n, 2);
    cairn_log_close(log);
}

static void test_replay_from_a_middle_position(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    cairn_record_t r[6];
    char v[16];
    for (int i = 0; i < 6; i++) {
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, v, &r[i], &err), CAIRN_OK);
    }
    struct seen *s = replay_all(log, r[3].position);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->value[0], "v3");
    assert_int_equal(s->position[0], r[3].position);
    /* A position inside a frame starts at the next record. */
    s = replay_all(log, r[3].position + 1);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->value[0], "v4");
    s = replay_all(log, cairn_log_end(log));
    assert_int_equal(s->n, 0);

    struct seen stop = {.stop_after = 1};
    assert_int_equal(cairn_log_replay(log, 0, collect, &stop, &err), CAIRN_AGAIN);
    assert_int_equal(stop.n, 1);
    cairn_log_close(log);
}

static void test_reopen_restores_versions_and_records(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(log, "a", CAIRN_EXPECT_ANY, "x", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "b", CAIRN_EXPECT_ANY, "y", NULL, &err), CAIRN_OK);
    uint64_t end = cairn_log_end(log);
    cairn_log_close(log);

    log = open_log(f, NULL);
    assert_int_equal(cairn_log_stream_version(log, "a"), 4);
    assert_int_equal(cairn_log_stream_version(log, "b"), 1);
    assert_int_equal(cairn_log_end(log), end);
    assert_int_equal(put(log, "a", 4, "z", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "a", 4, "z", NULL, &err), CAIRN_E_CONFLICT_VERSION);
    assert_int_equal(replay_all(log, 0)->n, 6);
    cairn_log_close(log);

    /* The file: prefix names the same directory. */
    char url[128];
    snprintf(url, sizeof url, "file:%s", f->dir);
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_stream_version(log, "a"), 5);
    cairn_log_close(log);
}

static int count_segments(struct fixture *f)
{
    int n = 0;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strlen(e->d_name) == 24 && strstr(e->d_name, ".log") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_segments_roll_and_replay_spans_them(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.segment_bytes = 300};
    cairn_log_t *log = open_log(f, &o);
    cairn_error_t err = {0};
    cairn_record_t last;
    char v[32];
    for (int i = 0; i < 40; i++) {
        snprintf(v, sizeof v, "value-%02d", i);
        assert_int_equal(put(log, i % 2 ? "odd" : "even", CAIRN_EXPECT_ANY, v, &last, &err),
                         CAIRN_OK);
    }
    int nseg = count_segments(f);
    assert_true(nseg > 3);
    struct cairn__log_stats st;
    cairn__log_stats(log, &st);
    assert_int_equal(st.segments, (uint64_t)nseg);
    struct seen *s = replay_all(log, 0);
    assert_int_equal(s->n, 40);
    for (int i = 1; i < 40; i++)
        assert_true(s->position[i] > s->position[i - 1]);
    assert_string_equal(s->value[39], "value-39");
    cairn_log_close(log);

    log = open_log(f, &o);
    s = replay_all(log, 0);
    assert_int_equal(s->n, 40);
    assert_string_equal(s->value[17], "value-17");
    assert_int_equal(s->position[39], last.position);
    struct seen odd = {0};
    assert_int_equal(cairn_log_read_stream(log, "odd", 10, collect, &odd, &err), CAIRN_DONE);
    assert_int_equal(odd.n, 11);
    assert_string_equal(odd.value[0], "value-19");
    assert_int_equal(cairn_log_stream_version(log, "even"), 20);
    /* Replay from the middle of a later segment. */
    s = replay_all(log, last.position);
    assert_int_equal(s->n, 1);
    cairn_log_close(log);
}

/* Writes three durable records and a fourth that is never synced; returns its position. */
static uint64_t three_durable_one_torn(struct fixture *f)
{
    cairn_log_t *log = open_log(f, NULL);
    uint64_t pos;
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "durable", NULL, NULL), CAIRN_OK);
    assert_int_equal(put_nowait(log, "s", "not yet durable", &pos), CAIRN_OK);
    cairn_log_close(log);
    return pos;
}

static void assert_three_left(struct fixture *f, uint64_t cut_at)
{
    cairn_log_t *log = open_log(f, NULL);
    assert_int_equal(cairn_log_stream_version(log, "s"), 3);
    assert_int_equal(cairn_log_end(log), cut_at);
    assert_int_equal(file_size(f, SEG0), (off_t)cut_at);
    struct seen *s = replay_all(log, 0);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->value[2], "durable");
    /* The log takes appends again where the cut left it. */
    cairn_record_t r;
    assert_int_equal(put(log, "s", 3, "again", &r, NULL), CAIRN_OK);
    assert_int_equal(r.position, cut_at);
    assert_int_equal(r.version, 4);
    cairn_log_close(log);
}

static void test_recovery_cuts_a_torn_tail(void **state)
{
    struct fixture *f = *state;
    uint64_t pos = three_durable_one_torn(f);
    assert_int_equal(truncate(fpath(f, SEG0), file_size(f, SEG0) - 5), 0);
    assert_three_left(f, pos);
}

static void test_recovery_cuts_a_torn_frame_header(void **state)
{
    struct fixture *f = *state;
    uint64_t pos = three_durable_one_torn(f);
    assert_int_equal(truncate(fpath(f, SEG0), (off_t)pos + 3), 0);
    assert_three_left(f, pos);
}

static void test_recovery_cuts_a_garbled_last_frame(void **state)
{
    struct fixture *f = *state;
    uint64_t pos = three_durable_one_torn(f);
    patch_file(f, SEG0, (off_t)pos + 20, "\xff\xfe", 2);
    assert_three_left(f, pos);
}

static void test_recovery_cuts_a_zero_filled_tail(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "durable", NULL, NULL), CAIRN_OK);
    uint64_t end = cairn_log_end(log);
    cairn_log_close(log);
    /* Preallocated, never written blocks read as zeros. */
    assert_int_equal(truncate(fpath(f, SEG0), (off_t)end + 8192), 0);
    assert_three_left(f, end);
}

static void test_recovery_cuts_a_huge_length_field_without_allocating_it(void **state)
{
    struct fixture *f = *state;
    uint64_t pos = three_durable_one_torn(f);
    patch_file(f, SEG0, (off_t)pos, "\xff\xff\xff\x7f", 4);
    atomic_store(&max_alloc, 0);
    assert_three_left(f, pos);
    /* Nothing near the 2 GiB the length asked for; the scan window is 1 MiB. */
    assert_true(atomic_load(&max_alloc) <= (size_t)2 << 20);
}

static void test_recovery_drops_an_incomplete_batch(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "durable", NULL, NULL), CAIRN_OK);
    uint64_t end = cairn_log_end(log), ticket;
    cairn_record_t batch[3] = {{.value = "b1", .value_len = 2},
                               {.value = "b2", .value_len = 2},
                               {.value = "b3", .value_len = 2}};
    assert_int_equal(cairn_log_append_nowait(log, "s", 3, batch, 3, NULL, &ticket, NULL), CAIRN_OK);
    cairn_log_close(log);
    /* Tear the last record of the batch: the first two are whole but must go too. */
    assert_int_equal(truncate(fpath(f, SEG0), (off_t)batch[2].position + 10), 0);
    assert_three_left(f, end);
}

static void test_recovery_cuts_a_torn_tail_in_a_new_segment(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.segment_bytes = 160};
    cairn_log_t *log = open_log(f, &o);
    uint64_t pos;
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "durable", NULL, NULL), CAIRN_OK);
    uint64_t end = cairn_log_end(log);
    assert_int_equal(put_nowait(log, "s", "rolled, never synced", &pos), CAIRN_OK);
    cairn_log_close(log);
    char name[32];
    snprintf(name, sizeof name, "%020llu.log", (unsigned long long)pos);
    assert_int_equal(pos, end);
    assert_true(file_size(f, name) > 0); /* the record opened a segment of its own */
    assert_int_equal(truncate(fpath(f, name), 12), 0);

    log = open_log(f, &o);
    assert_int_equal(cairn_log_end(log), end);
    assert_int_equal(file_size(f, name), 0);
    assert_int_equal(replay_all(log, 0)->n, 3);
    cairn_record_t r;
    assert_int_equal(put(log, "s", 3, "again", &r, NULL), CAIRN_OK);
    assert_int_equal(r.position, end);
    cairn_log_close(log);
    log = open_log(f, &o);
    struct seen *s = replay_all(log, 0);
    assert_int_equal(s->n, 4);
    assert_string_equal(s->value[3], "again");
    cairn_log_close(log);
}

static void test_recovery_refuses_a_damaged_durable_frame(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_record_t r[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "durable", &r[i], NULL), CAIRN_OK);
    cairn_log_close(log);
    off_t size = file_size(f, SEG0);
    patch_file(f, SEG0, (off_t)r[1].position + 30, "#", 1);

    cairn_error_t err = {0};
    log = NULL;
    assert_int_equal(cairn_log_open(f->dir, NULL, &log, &err), CAIRN_E_CORRUPT);
    assert_null(log);
    assert_non_null(strstr(err.text, f->dir));
    /* Refusing leaves every byte in place for a human to look at. */
    assert_int_equal(file_size(f, SEG0), size);
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_log_open(f->dir, NULL, &log, &err), CAIRN_E_CORRUPT);
}

struct writer_arg {
    cairn_log_t *log;
    int id;
    int acks;
    cairn_rc_t first_error;
};

#define THREADS    16
#define PER_THREAD 40

static void *writer(void *p)
{
    struct writer_arg *a = p;
    char stream[16], value[32];
    snprintf(stream, sizeof stream, "t%02d", a->id);
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(value, sizeof value, "%02d:%03d", a->id, i);
        cairn_record_t r = {.value = value, .value_len = strlen(value)};
        cairn_rc_t rc = cairn_log_append(a->log, stream, i, &r, 1, NULL, NULL);
        if (rc == CAIRN_OK)
            a->acks++;
        else if (!a->first_error)
            a->first_error = rc;
    }
    return NULL;
}

/* A slow disk makes group commit visible however fast the test machine's is. */
static int slow_sync(int fd)
{
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    return fdatasync(fd);
}

static int count_values(void *opaque, const cairn_record_t *r)
{
    int *seen = opaque;
    int t, i;
    char v[16];
    snprintf(v, sizeof v, "%.*s", (int)r->value_len, (const char *)r->value);
    if (sscanf(v, "%d:%d", &t, &i) == 2 && t >= 0 && t < THREADS && i >= 0 && i < PER_THREAD &&
        (uint64_t)i + 1 == r->version)
        seen[t * PER_THREAD + i]++;
    return 0;
}

static void test_group_commit_shares_fsyncs_among_16_threads(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.segment_bytes = 16384};
    cairn_log_t *log = open_log(f, &o);
    cairn__log_set_sync_fn(log, slow_sync);
    pthread_t th[THREADS];
    struct writer_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct writer_arg){.log = log, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(args[i].first_error, CAIRN_OK);
        assert_int_equal(args[i].acks, PER_THREAD);
    }
    struct cairn__log_stats st;
    cairn__log_stats(log, &st);
    assert_int_equal(st.appends, THREADS * PER_THREAD);
    assert_true(st.fsyncs > 0);
    assert_true(st.fsyncs < st.appends / 2);
    cairn_log_close(log);

    log = open_log(f, &o);
    static int seen[THREADS * PER_THREAD];
    memset(seen, 0, sizeof seen);
    assert_int_equal(cairn_log_replay(log, 0, count_values, seen, NULL), CAIRN_DONE);
    for (int i = 0; i < THREADS * PER_THREAD; i++)
        assert_int_equal(seen[i], 1);
    for (int i = 0; i < THREADS; i++) {
        char stream[16];
        snprintf(stream, sizeof stream, "t%02d", i);
        assert_int_equal(cairn_log_stream_version(log, stream), PER_THREAD);
    }
    cairn_log_close(log);
}

struct replayer_arg {
    cairn_log_t *log;
    atomic_int stop;
    int rounds;
    int bad;
};

static int check_order(void *opaque, const cairn_record_t *r)
{
    uint64_t *prev = opaque;
    if (*prev != UINT64_MAX && r->position <= *prev)
        return 1;
    *prev = r->position;
    return 0;
}

static void *replayer(void *p)
{
    struct replayer_arg *a = p;
    do {
        uint64_t prev = UINT64_MAX, end = cairn_log_end(a->log);
        if (cairn_log_replay(a->log, 0, check_order, &prev, NULL) != CAIRN_DONE)
            a->bad++;
        if (end && prev != UINT64_MAX && prev >= cairn_log_end(a->log))
            a->bad++;
        a->rounds++;
    } while (!atomic_load(&a->stop));
    return NULL;
}

static void test_replays_run_concurrently_with_appends(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.segment_bytes = 4096};
    cairn_log_t *log = open_log(f, &o);
    struct replayer_arg ra = {.log = log};
    pthread_t rt, th[4];
    struct writer_arg args[4];
    assert_int_equal(pthread_create(&rt, NULL, replayer, &ra), 0);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct writer_arg){.log = log, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    atomic_store(&ra.stop, 1);
    pthread_join(rt, NULL);
    assert_int_equal(ra.bad, 0);
    assert_true(ra.rounds > 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(args[i].acks, PER_THREAD);
    cairn_log_close(log);
}

static int failing_sync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

static void test_failed_fsync_is_fatal_and_never_retried(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "ok", NULL, &err), CAIRN_OK);
    uint64_t end = cairn_log_end(log);
    cairn__log_set_sync_fn(log, failing_sync);
    assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "lost?", NULL, &err), CAIRN_E_IO_FSYNC);
    assert_true(err.flags & CAIRN_ERR_FATAL);
    assert_int_equal(err.cause, EIO);
    /* Even with a working disk again the handle stays failed. */
    cairn__log_set_sync_fn(log, NULL);
    memset(&err, 0, sizeof err);
    assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "later", NULL, &err), CAIRN_E_IO_FSYNC);
    assert_true(err.flags & CAIRN_ERR_FATAL);
    assert_int_equal(cairn_log_wait_durable(log, end, NULL), CAIRN_E_IO_FSYNC);
    assert_int_equal(cairn_log_end(log), end);
    cairn_log_close(log);
    /* A reopen recovers from the disk. */
    log = open_log(f, NULL);
    assert_true(cairn_log_stream_version(log, "s") >= 1);
    cairn_log_close(log);
}

static void test_second_writer_process_gets_locked(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = open_log(f, NULL);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cairn_log_t *other = NULL;
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn_log_open(f->dir, NULL, &other, &err);
        int ok = rc == CAIRN_E_CONFLICT_LOCKED && other == NULL && strstr(err.text, f->dir);
        /* A reader needs no lock. */
        cairn_log_options_t ro = {.read_only = 1};
        ok = ok && cairn_log_open(f->dir, &ro, &other, NULL) == CAIRN_OK;
        cairn_log_close(other);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    cairn_log_close(log);

    /* Once the writer is gone, the next one gets in. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cairn_log_t *other = NULL;
        cairn_rc_t rc = cairn_log_open(f->dir, NULL, &other, NULL);
        cairn_log_close(other);
        _exit(rc == CAIRN_OK ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_read_only_opener_sees_only_the_durable_end(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t ro = {.read_only = 1};
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    uint64_t pos, ticket;
    assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "one", NULL, &err), CAIRN_OK);
    assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "two", NULL, &err), CAIRN_OK);
    uint64_t durable = cairn_log_end(log);
    assert_int_equal(put_nowait(log, "s", "three", &pos), CAIRN_OK);
    assert_int_equal(pos, durable);

    cairn_log_t *reader = open_log(f, &ro);
    assert_int_equal(cairn_log_end(reader), durable);
    assert_int_equal(cairn_log_stream_version(reader, "s"), 2);
    assert_int_equal(replay_all(reader, 0)->n, 2);
    /* The writer's own readers stop at the durable end too. */
    assert_int_equal(replay_all(log, 0)->n, 2);
    assert_int_equal(put(log, "t", CAIRN_EXPECT_ANY, "r", NULL, &err), CAIRN_OK);
    (void)ticket;
    /* After the next commit the reader catches up. */
    struct seen *s = replay_all(reader, 0);
    assert_int_equal(s->n, 4);
    assert_string_equal(s->value[2], "three");
    assert_int_equal(cairn_log_stream_version(reader, "t"), 1);
    struct seen st = {0};
    assert_int_equal(cairn_log_read_stream(reader, "s", 3, collect, &st, &err), CAIRN_DONE);
    assert_int_equal(st.n, 1);
    assert_int_equal(put(reader, "s", CAIRN_EXPECT_ANY, "no", NULL, NULL), CAIRN_E_INVALID);
    cairn_log_close(reader);
    cairn_log_close(log);
}

static void test_read_only_opener_follows_new_segments(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.segment_bytes = 200}, ro = {.read_only = 1};
    cairn_log_t *log = open_log(f, &o);
    assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "first", NULL, NULL), CAIRN_OK);
    cairn_log_t *reader = open_log(f, &ro);
    assert_int_equal(replay_all(reader, 0)->n, 1);
    for (int i = 0; i < 20; i++)
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "more values", NULL, NULL), CAIRN_OK);
    assert_true(count_segments(f) > 2);
    assert_int_equal(replay_all(reader, 0)->n, 21);
    assert_int_equal(cairn_log_stream_version(reader, "s"), 21);
    cairn_log_close(reader);
    cairn_log_close(log);
}

/* Polls @p t until it delivers nothing more; returns what it delivered. */
static size_t drain_tail(cairn_tail_t *t, struct seen *s, cairn_rc_t *rc, cairn_error_t *err)
{
    size_t total = 0, n = 0;
    do {
        n = 0;
        *rc = cairn_tail_poll(t, 0, 7, collect, s, &n, err);
        total += n;
    } while (*rc == CAIRN_OK && n > 0);
    return total;
}

/* A read-only opener builds its stream index only when a read needs it: a
 * tail or a replay from the start reads (and checks) frames without it. */
static void test_read_only_opener_indexes_on_demand(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t ro = {.read_only = 1};
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    struct cairn__log_stats st;
    cairn_rc_t rc;
    char value[16];
    const char *streams[] = {"a", "b", "c"};
    for (int i = 0; i < 30; i++) {
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(put(log, streams[i % 3], CAIRN_EXPECT_ANY, value, NULL, &err), CAIRN_OK);
    }
    cairn_log_t *reader = open_log(f, &ro);
    assert_int_equal(cairn_log_end(reader), cairn_log_end(log));

    /* Tail from the start, and from a checkpoint: no index. */
    cairn_tail_t *t = NULL;
    struct seen s = {0};
    char cp[64];
    assert_int_equal(cairn_tail_open(reader, "", &t, &err), CAIRN_OK);
    s.stop_after = 0;
    size_t n = 0;
    assert_int_equal(cairn_tail_poll(t, 0, 10, collect, &s, &n, &err), CAIRN_OK);
    assert_int_equal(n, 10);
    assert_int_equal(cairn_tail_checkpoint(t, cp, sizeof cp, &err), CAIRN_OK);
    cairn_tail_close(t);
    assert_int_equal(cairn_tail_open(reader, cp, &t, &err), CAIRN_OK);
    assert_int_equal(drain_tail(t, &s, &rc, &err), 20);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(s.n, 30);
    for (int i = 0; i < 30; i++) {
        snprintf(value, sizeof value, "v%d", i);
        assert_string_equal(s.value[i], value);
        assert_int_equal(s.version[i], (uint64_t)(i / 3 + 1));
    }
    assert_int_equal(replay_all(reader, 0)->n, 30);
    cairn__log_stats(reader, &st);
    assert_int_equal(st.indexed, 0);

    /* A stream read builds it; so does a replay from a position (which
       starts at the first record at or after it). */
    struct seen sb = {0};
    assert_int_equal(cairn_log_read_stream(reader, "b", 4, collect, &sb, &err), CAIRN_DONE);
    assert_int_equal(sb.n, 7);
    assert_string_equal(sb.value[0], "v10");
    assert_int_equal(cairn_log_stream_version(reader, "c"), 10);
    cairn__log_stats(reader, &st);
    assert_int_equal(st.indexed, 30);
    struct seen *from = replay_all(reader, s.position[5] + 1);
    assert_int_equal(from->n, 24);
    assert_string_equal(from->value[0], "v6");

    /* New appends: the tail sees them without the index; the index follows
       when a read needs it again. */
    for (int i = 30; i < 36; i++) {
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(put(log, streams[i % 3], CAIRN_EXPECT_ANY, value, NULL, &err), CAIRN_OK);
    }
    assert_int_equal(drain_tail(t, &s, &rc, &err), 6);
    assert_string_equal(s.value[35], "v35");
    cairn__log_stats(reader, &st);
    assert_int_equal(st.indexed, 30);
    assert_int_equal(cairn_log_stream_version(reader, "a"), 12);
    cairn__log_stats(reader, &st);
    assert_int_equal(st.indexed, 36);
    cairn_tail_close(t);

    /* A checkpoint that is not a record boundary, past what the index
       covers, fails the frame checks: an error, never a wrong record. */
    cairn_log_t *fresh = open_log(f, &ro);
    snprintf(cp, sizeof cp, "file:%" PRIu64, s.position[1] + 3);
    assert_int_equal(cairn_tail_open(fresh, cp, &t, &err), CAIRN_OK);
    struct seen bad = {0};
    n = 0;
    assert_int_equal(cairn_tail_poll(t, 0, 10, collect, &bad, &n, &err), CAIRN_E_CORRUPT);
    assert_int_equal(bad.n, 0);
    cairn_tail_close(t);
    cairn_log_close(fresh);
    cairn_log_close(reader);
    cairn_log_close(log);
}

/* A damaged frame in the middle stops a tail of a read-only opener there,
 * with the position, after the records before it. */
static void test_read_only_tail_reports_a_damaged_frame(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t ro = {.read_only = 1};
    cairn_log_t *log = open_log(f, NULL);
    cairn_error_t err = {0};
    cairn_record_t rec;
    uint64_t where = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(put(log, "s", CAIRN_EXPECT_ANY, "0123456789", &rec, &err), CAIRN_OK);
        if (i == 6)
            where = rec.position;
    }
    cairn_log_close(log);
    /* One byte of the 7th record's value, flipped: its CRC no longer holds. */
    struct stat sb;
    assert_int_equal(stat(fpath(f, SEG0), &sb), 0);
    unsigned char byte;
    int fd = open(fpath(f, SEG0), O_RDWR);
    assert_true(fd >= 0);
    off_t off = (off_t)where + 24;
    assert_int_equal(pread(fd, &byte, 1, off), 1);
    byte ^= 0x5a;
    close(fd);
    patch_file(f, SEG0, off, &byte, 1);

    cairn_log_t *reader = open_log(f, &ro);
    cairn_tail_t *t = NULL;
    struct seen s = {0};
    cairn_rc_t rc;
    assert_int_equal(cairn_tail_open(reader, "", &t, &err), CAIRN_OK);
    assert_int_equal(drain_tail(t, &s, &rc, &err), 6);
    assert_int_equal(rc, CAIRN_E_CORRUPT);
    char pos[32];
    snprintf(pos, sizeof pos, "%" PRIu64, where);
    assert_non_null(strstr(err.text, pos));
    cairn_tail_close(t);
    cairn_log_close(reader);
}

static void test_open_rejects_bad_urls_and_missing_read_only_dirs(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = NULL;
    cairn_log_options_t ro = {.read_only = 1};
    assert_int_equal(cairn_log_open("kafka://localhost:9092", NULL, &log, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn_log_open("file:", NULL, &log, NULL), CAIRN_E_INVALID);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing", f->dir);
    assert_int_equal(cairn_log_open(missing, &ro, &log, NULL), CAIRN_E_NOT_FOUND);
    assert_null(log);
    /* The writer creates it. */
    assert_int_equal(cairn_log_open(missing, NULL, &log, NULL), CAIRN_OK);
    cairn_log_close(log);
    cairn_log_close(NULL);
    char p[160];
    const char *names[] = {"LOCK", "durable", SEG0};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", missing, names[i]);
        assert_int_equal(unlink(p), 0);
    }
    assert_int_equal(rmdir(missing), 0);
}

static void test_open_of_100k_records_is_fast(void **state)
{
    struct fixture *f = *state;
    cairn_log_options_t o = {.no_sync = 1};
    cairn_log_t *log = open_log(f, &o);
    char stream[32], value[100];
    memset(value, 'v', sizeof value);
    for (int i = 0; i < 100000; i++) {
        snprintf(stream, sizeof stream, "stream-%d", i % 1000);
        cairn_record_t r = {.value = value, .value_len = sizeof value};
        assert_int_equal(cairn_log_append(log, stream, CAIRN_EXPECT_ANY, &r, 1, NULL, NULL),
                         CAIRN_OK);
    }
    cairn_log_close(log);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    log = open_log(f, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("open of 100k records: %.1f ms\n", ms);
    assert_int_equal(cairn_log_stream_version(log, "stream-999"), 100);
    /* Well under a second without sanitizers; generous for ASan builds. */
    assert_true(ms < 3000.0);
    cairn_log_close(log);
}

int main(void)
{
    cairn_set_alloc_funcs(counting_malloc, counting_realloc, free);
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_append_and_replay_round_trip_with_headers),
        T(test_expected_version_any_no_stream_and_exact),
        T(test_conflict_reports_actual_version_and_writes_nothing),
        T(test_batch_is_all_or_nothing),
        T(test_oversized_record_is_invalid_and_nothing_written),
        T(test_read_stream_from_a_version),
        T(test_replay_from_a_middle_position),
        T(test_reopen_restores_versions_and_records),
        T(test_segments_roll_and_replay_spans_them),
        T(test_recovery_cuts_a_torn_tail),
        T(test_recovery_cuts_a_torn_frame_header),
        T(test_recovery_cuts_a_garbled_last_frame),
        T(test_recovery_cuts_a_zero_filled_tail),
        T(test_recovery_cuts_a_huge_length_field_without_allocating_it),
        T(test_recovery_drops_an_incomplete_batch),
        T(test_recovery_cuts_a_torn_tail_in_a_new_segment),
        T(test_recovery_refuses_a_damaged_durable_frame),
        T(test_group_commit_shares_fsyncs_among_16_threads),
        T(test_replays_run_concurrently_with_appends),
        T(test_failed_fsync_is_fatal_and_never_retried),
        T(test_second_writer_process_gets_locked),
        T(test_read_only_opener_sees_only_the_durable_end),
        T(test_read_only_opener_follows_new_segments),
        T(test_read_only_opener_indexes_on_demand),
        T(test_read_only_tail_reports_a_damaged_frame),
        T(test_open_rejects_bad_urls_and_missing_read_only_dirs),
        T(test_open_of_100k_records_is_fast),
#undef T
    };
    return cmocka_run_group_tests_name("eventstore.file_log", tests, NULL, NULL);
}
