/* SPDX-License-Identifier: MIT */
/*
 * test_kafka_snapshot_reopen.c - the Kafka backend's index snapshots
 * (cairn.snapshot.dir) against cairn-mock-kafka, one single-partition topic
 * per case:
 *
 * - close writes a snapshot; a reopen starts reading the partition at the
 *   snapshot's offset (cairn__kafka_snapshot_stats), not at 0, and knows
 *   every stream's version (expected versions, stream reads);
 * - a corrupt snapshot is ignored: full rescan from 0, same versions;
 * - a stale snapshot (an older offset) is used and the rest is read;
 * - a snapshot whose offset is beyond the partition's end (the topic was
 *   recreated) is ignored;
 * - the reader rule's window of recent append ids survives the snapshot: an
 *   accepted append produced again right after the snapshot's offset (a
 *   producer retry written twice) is still skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cairn/eventstore.h"
#include "kafka/kafka_int.h"
#include "kafka_mock.h"

#define STREAMS 8
#define PER     12 /* events per stream */

static struct kmock mock;

struct fx {
    char dir[64];
    char path[4096];
    char url[1024];
};

static void fx_init(struct fx *f, const char *topic)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-ksnap-it-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof(f->url), "kafka:%s?topic=%s&cairn.snapshot.dir=%s", mock.bootstrap,
             topic, f->dir);
    assert_int_equal(cairn__ksnap_path(f->path, sizeof(f->path), f->dir, topic, 0), 0);
}

static void fx_release(struct fx *f)
{
    unlink(f->path);
    rmdir(f->dir);
}

static cairn_log_t *open_log(const struct fx *f)
{
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    if (cairn_log_open(f->url, NULL, &log, &err) != CAIRN_OK)
        fail_msg("open %s: %s", f->url, err.text);
    return log;
}

static void stream_name(char *buf, size_t size, int i)
{
    snprintf(buf, size, "acct-%d", i);
}

/* Appends @p per events to each stream with the exact expected version. */
static void append_round(cairn_log_t *log, int per)
{
    char stream[32], value[64];
    for (int r = 0; r < per; r++) {
        for (int i = 0; i < STREAMS; i++) {
            cairn_error_t err = {0};
            cairn_record_t rec;
            uint64_t v = 0;
            stream_name(stream, sizeof(stream), i);
            uint64_t cur = cairn_log_stream_version(log, stream);
            snprintf(value, sizeof(value), "%s #%" PRIu64, stream, cur + 1);
            memset(&rec, 0, sizeof(rec));
            rec.value = value;
            rec.value_len = strlen(value);
            if (cairn_log_append(log, stream, (int64_t)cur, &rec, 1, &v, &err) != CAIRN_OK)
                fail_msg("append to %s at %" PRIu64 ": %s", stream, cur, err.text);
            assert_int_equal(v, cur + 1);
        }
    }
}

struct seen {
    uint64_t versions[256];
    int64_t positions[256];
    size_t n;
};

static int collect(void *opaque, const cairn_record_t *r)
{
    struct seen *s = opaque;
    if (s->n < 256) {
        s->versions[s->n] = r->version;
        s->positions[s->n] = (int64_t)r->position;
    }
    s->n++;
    return 0;
}

/* Every stream has versions 1..@p per, and the next append with the right
 * expectation succeeds while a stale one conflicts. */
static void check_streams(cairn_log_t *log, uint64_t per)
{
    char stream[32];
    for (int i = 0; i < STREAMS; i++) {
        struct seen s;
        cairn_error_t err = {0};
        stream_name(stream, sizeof(stream), i);
        memset(&s, 0, sizeof(s));
        assert_int_equal(cairn_log_read_stream(log, stream, 1, collect, &s, &err), CAIRN_DONE);
        assert_int_equal(s.n, per);
        for (size_t j = 0; j < s.n; j++)
            assert_int_equal(s.versions[j], j + 1);
        assert_int_equal(cairn_log_stream_version(log, stream), per);
    }
    cairn_record_t rec;
    cairn_error_t err = {0};
    uint64_t v = 0;
    memset(&rec, 0, sizeof(rec));
    rec.value = "stale";
    rec.value_len = 5;
    stream_name(stream, sizeof(stream), 0);
    assert_int_equal(cairn_log_append(log, stream, (int64_t)per - 1, &rec, 1, &v, &err),
                     CAIRN_E_CONFLICT_VERSION);
}

static struct cairn__ksnap_stats stats_of(cairn_log_t *log)
{
    struct cairn__ksnap_stats st;
    cairn_error_t err = {0};
    assert_int_equal(cairn__kafka_snapshot_stats(log, 0, &st, &err), CAIRN_OK);
    return st;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void copy_file(const char *from, const char *to)
{
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(cairn__ksnap_read_file(from, 1 << 26, &data, &len, NULL), CAIRN_OK);
    assert_int_equal(cairn__ksnap_write_file(to, data, len, NULL), CAIRN_OK);
    cairn__free(data);
}

/* ---- the cases ------------------------------------------------------------------ */

static void test_reopen_reads_only_what_follows_the_snapshot(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "snap1");
    cairn_log_t *log = open_log(&f);
    append_round(log, PER);
    struct cairn__ksnap_stats st = stats_of(log);
    assert_int_equal(st.follow_from, 0);
    assert_int_equal(st.loaded_offset, 0);
    uint64_t end = cairn_log_partition_end(log, 0);
    cairn_log_close(log);
    assert_true(file_exists(f.path));

    log = open_log(&f);
    check_streams(log, PER); /* claims, reads, appends with expectations */
    st = stats_of(log);
    assert_true(st.loaded_offset > 0);
    assert_true((uint64_t)st.loaded_offset >= end); /* everything accepted was in it */
    assert_int_equal(st.follow_from, st.loaded_offset);
    assert_int_equal(st.loads_rejected, 0);
    append_round(log, 1);
    cairn_log_close(log);

    /* and the snapshot written by that close is used in turn */
    log = open_log(&f);
    check_streams(log, PER + 1);
    st = stats_of(log);
    assert_true(st.follow_from > 0);
    cairn_log_close(log);
    fx_release(&f);
}

static void test_corrupt_snapshot_is_ignored_and_partition_read_from_zero(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "snap2");
    cairn_log_t *log = open_log(&f);
    append_round(log, PER);
    cairn_log_close(log);

    /* flip one byte in the middle of the file */
    FILE *fp = fopen(f.path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_true(size > 64);
    assert_int_equal(fseek(fp, size / 2, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, size / 2, SEEK_SET), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);

    log = open_log(&f);
    check_streams(log, PER);
    struct cairn__ksnap_stats st = stats_of(log);
    assert_int_equal(st.loads_rejected, 1);
    assert_int_equal(st.loaded_offset, 0);
    assert_int_equal(st.follow_from, 0);
    cairn_log_close(log);

    /* the close replaced it with a good one */
    log = open_log(&f);
    check_streams(log, PER);
    st = stats_of(log);
    assert_int_equal(st.loads_rejected, 0);
    assert_true(st.follow_from > 0);
    cairn_log_close(log);
    fx_release(&f);
}

static void test_stale_snapshot_is_used_and_the_rest_read(void **state)
{
    (void)state;
    struct fx f;
    char old[4200];
    fx_init(&f, "snap3");
    snprintf(old, sizeof(old), "%s/old", f.dir);
    cairn_log_t *log = open_log(&f);
    append_round(log, PER / 2);
    cairn_log_close(log);
    copy_file(f.path, old);

    log = open_log(&f);
    append_round(log, PER / 2);
    cairn_log_close(log);
    static struct cairn__rr rr;
    struct cairn__ksnap_head h;
    void *data = NULL;
    size_t len = 0;
    copy_file(old, f.path); /* back to the older one */
    assert_int_equal(cairn__ksnap_read_file(f.path, 1 << 26, &data, &len, NULL), CAIRN_OK);
    assert_int_equal(cairn__ksnap_load(data, len, "snap3", 0, 1, &h, &rr, NULL, NULL, NULL),
                     CAIRN_OK);
    cairn__free(data);

    log = open_log(&f);
    check_streams(log, PER);
    struct cairn__ksnap_stats st = stats_of(log);
    assert_int_equal(st.loaded_offset, h.offset);
    assert_int_equal(st.follow_from, h.offset);
    assert_true((uint64_t)h.offset < cairn_log_partition_end(log, 0));
    cairn_log_close(log);
    unlink(old);
    fx_release(&f);
}

static void test_catch_up_writes_a_snapshot_after_every_n_records(void **state)
{
    (void)state;
    struct fx f, g;
    fx_init(&f, "snap6");
    cairn_log_t *log = open_log(&f);
    append_round(log, 3);
    cairn_log_close(log);
    unlink(f.path);

    /* a reader with its own directory and a small period: its first catch-up
     * reads more than that from 0 and leaves a snapshot before any close */
    fx_init(&g, "snap6");
    strncat(g.url, "&cairn.snapshot.every=5", sizeof(g.url) - strlen(g.url) - 1);
    cairn_log_options_t o = {.read_only = 1};
    cairn_error_t err = {0};
    log = NULL;
    assert_int_equal(cairn_log_open(g.url, &o, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_stream_version(log, "acct-1"), 3);
    struct cairn__ksnap_stats st = stats_of(log);
    assert_int_equal(st.follow_from, 0);
    assert_int_equal(st.written, 1);
    assert_true(st.written_offset >= 3 * STREAMS);
    assert_true(file_exists(g.path));
    cairn_log_close(log);

    /* a bad period is refused */
    strncat(g.url, "&cairn.snapshot.every=0", sizeof(g.url) - strlen(g.url) - 1);
    memset(&err, 0, sizeof(err));
    log = NULL;
    assert_int_equal(cairn_log_open(g.url, &o, &log, &err), CAIRN_E_INVALID);
    assert_null(log);
    fx_release(&g);
    fx_release(&f);
}

static void test_snapshot_beyond_the_partition_end_is_ignored(void **state)
{
    (void)state;
    struct fx f;
    static struct cairn__rr rr;
    cairn_buf_t b;
    fx_init(&f, "snap4");
    cairn_log_t *log = open_log(&f);
    append_round(log, 2);
    cairn_log_close(log);
    unlink(f.path);

    /* what a recreated topic leaves behind: a good snapshot of a longer log */
    struct cairn__ksnap_head h;
    static const int64_t offs[] = {10, 20};
    memset(&h, 0, sizeof(h));
    h.partitions = 1;
    h.offset = 1000000;
    h.streams = 1;
    cairn__rr_init(&rr, 5);
    cairn_buf_init(&b, 1 << 20);
    assert_int_equal(cairn__ksnap_begin(&b, "snap4", &h, &rr, NULL), CAIRN_OK);
    assert_int_equal(cairn__ksnap_add(&b, "acct-0", 2, offs, NULL), CAIRN_OK);
    assert_int_equal(cairn__ksnap_end(&b, NULL), CAIRN_OK);
    assert_int_equal(cairn__ksnap_write_file(f.path, b.data, b.len, NULL), CAIRN_OK);
    cairn_buf_release(&b);

    log = open_log(&f);
    check_streams(log, 2);
    struct cairn__ksnap_stats st = stats_of(log);
    assert_int_equal(st.loads_rejected, 1);
    assert_int_equal(st.follow_from, 0);
    cairn_log_close(log);
    fx_release(&f);
}

/* Produces the record at @p offset of partition 0 of @p topic once more,
 * byte for byte (key, value, every header): a retry written twice. */
static void reproduce(const char *topic, int64_t offset)
{
    char es[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(cc, "bootstrap.servers", mock.bootstrap, es, sizeof(es)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, es, sizeof(es));
    assert_non_null(consumer);
    rd_kafka_topic_t *crkt = rd_kafka_topic_new(consumer, topic, NULL);
    assert_int_equal(rd_kafka_consume_start(crkt, 0, offset), 0);
    rd_kafka_message_t *m = NULL;
    for (int i = 0; i < 100 && !m; i++) {
        m = rd_kafka_consume(crkt, 0, 100);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    if (!m) {
        fail_msg("record at offset %" PRId64 " of '%s' not read", offset, topic);
        return; /* not reached */
    }
    assert_int_equal(m->offset, offset);
    rd_kafka_headers_t *hdrs = NULL;
    assert_int_equal(rd_kafka_message_detach_headers(m, &hdrs), RD_KAFKA_RESP_ERR_NO_ERROR);

    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "bootstrap.servers", mock.bootstrap, es, sizeof(es)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, es, sizeof(es));
    assert_non_null(producer);
    rd_kafka_vu_t vu[5];
    memset(vu, 0, sizeof(vu));
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = topic;
    vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[1].u.i32 = 0;
    vu[2].vtype = RD_KAFKA_VTYPE_KEY;
    vu[2].u.mem.ptr = m->key;
    vu[2].u.mem.size = m->key_len;
    vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[3].u.mem.ptr = m->payload;
    vu[3].u.mem.size = m->len;
    vu[4].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[4].u.headers = hdrs; /* the producer takes them */
    rd_kafka_error_t *e = rd_kafka_produceva(producer, vu, 5);
    assert_null(e);
    assert_int_equal(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_message_destroy(m);
    rd_kafka_consume_stop(crkt, 0);
    rd_kafka_topic_destroy(crkt);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);
}

static void test_repeat_across_the_snapshot_boundary_is_still_skipped(void **state)
{
    (void)state;
    struct fx f;
    struct seen s;
    cairn_error_t err = {0};
    fx_init(&f, "snap5");
    cairn_log_t *log = open_log(&f);
    append_round(log, PER);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cairn_log_read_stream(log, "acct-3", 1, collect, &s, &err), CAIRN_DONE);
    assert_int_equal(s.n, PER);
    int64_t original = s.positions[PER - 1];
    cairn_log_close(log);

    reproduce("snap5", original); /* lands right after the snapshot's offset */

    log = open_log(&f);
    check_streams(log, PER);
    struct cairn__ksnap_stats st = stats_of(log);
    assert_true(st.follow_from > original);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cairn_log_read_stream(log, "acct-3", 1, collect, &s, &err), CAIRN_DONE);
    assert_int_equal(s.n, PER);
    /* the record of the last version is still the original, not the repeat */
    assert_int_equal(s.positions[PER - 1], original);
    cairn_log_close(log);
    fx_release(&f);
}

static int group_setup(void **state)
{
    static const char *const topics[] = {"snap1:1", "snap2:1", "snap3:1", "snap4:1",
                                         "snap5:1", "snap6:1", NULL};
    (void)state;
    return kmock_start(&mock, 1, topics);
}

static int group_teardown(void **state)
{
    (void)state;
    kmock_stop(&mock);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_reads_only_what_follows_the_snapshot),
        cmocka_unit_test(test_corrupt_snapshot_is_ignored_and_partition_read_from_zero),
        cmocka_unit_test(test_stale_snapshot_is_used_and_the_rest_read),
        cmocka_unit_test(test_catch_up_writes_a_snapshot_after_every_n_records),
        cmocka_unit_test(test_snapshot_beyond_the_partition_end_is_ignored),
        cmocka_unit_test(test_repeat_across_the_snapshot_boundary_is_still_skipped),
    };
    return cmocka_run_group_tests_name("eventstore.kafka_snapshot_reopen", tests, group_setup,
                                       group_teardown);
}
