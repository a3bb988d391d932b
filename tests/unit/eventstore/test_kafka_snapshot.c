/* SPDX-License-Identifier: MIT */
/*
 * test_kafka_snapshot.c - the index snapshots of the Kafka backend
 * (eventstore/kafka/index_snapshot.c): a snapshot of a partition's reader
 * state and index loads back to the same state (the rule's epoch and window
 * of recent append ids included), and every damaged or foreign snapshot is
 * rejected as CAIRN_E_CORRUPT without a crash and without an allocation
 * larger than the file justifies (checked through the allocator hooks):
 * truncated at every length, any byte flipped, another topic, partition or
 * partition count, absurd counts and lengths behind a valid CRC.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka/kafka_int.h"

#define TOPIC "orders"

/* The rule's state is 20 KiB: keep these off the stack. */
static struct cairn__rr rr_src, rr_got, rr_a, rr_b;

/* ---- allocation watch ------------------------------------------------------ */

static size_t biggest_alloc;

static void *watch_malloc(size_t n)
{
    if (n > biggest_alloc)
        biggest_alloc = n;
    return malloc(n);
}

static void *watch_realloc(void *p, size_t n)
{
    if (n > biggest_alloc)
        biggest_alloc = n;
    return realloc(p, n);
}

/* ---- building a state ------------------------------------------------------- */

static struct cairn__rr_meta ev(int64_t epoch, unsigned id, uint32_t index, uint32_t count)
{
    struct cairn__rr_meta m;
    memset(&m, 0, sizeof(m));
    m.kind = CAIRN__RR_KIND_EVENT;
    m.epoch = epoch;
    m.append[0] = (unsigned char)(id >> 24);
    m.append[1] = (unsigned char)(id >> 16);
    m.append[14] = (unsigned char)(id >> 8);
    m.append[15] = (unsigned char)id;
    m.index = index;
    m.count = count;
    return m;
}

static void feed_claim(struct cairn__rr *rr, int64_t epoch)
{
    struct cairn__rr_meta m;
    memset(&m, 0, sizeof(m));
    m.kind = CAIRN__RR_KIND_CLAIM;
    m.epoch = epoch;
    assert_int_equal(cairn__rr_feed(rr, &m, NULL), CAIRN__RR_CLAIM_VALID);
}

/* @p n one-record appends with ids 1..n under epoch @p epoch. */
static void feed_appends(struct cairn__rr *rr, int64_t epoch, unsigned first, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct cairn__rr_meta m = ev(epoch, first + i, 0, 1);
        assert_int_equal(cairn__rr_feed(rr, &m, NULL), CAIRN__RR_COMPLETE);
    }
}

struct got_stream {
    char name[64];
    uint64_t version;
    int64_t offs[16];
};

struct got {
    struct got_stream s[8];
    size_t n;
};

static cairn_rc_t collect(void *opaque, const char *name, uint64_t version, const int64_t *offs)
{
    struct got *g = opaque;
    if (g->n == 8 || version > 16 || strlen(name) >= 64)
        return CAIRN_E_INVALID;
    snprintf(g->s[g->n].name, sizeof(g->s[g->n].name), "%s", name);
    g->s[g->n].version = version;
    memcpy(g->s[g->n].offs, offs, version * sizeof(*offs));
    g->n++;
    return CAIRN_OK;
}

static const int64_t offs_a[] = {2, 5, 9};
static const int64_t offs_b[] = {3};
static const int64_t offs_c[] = {4, 6, 7, 8, 200000};

static struct cairn__ksnap_head head_of(uint64_t streams)
{
    struct cairn__ksnap_head h;
    memset(&h, 0, sizeof(h));
    h.partition = 2;
    h.partitions = 4;
    h.offset = 200001;
    h.accepted_end = 200001;
    h.end_epoch = 3;
    h.claim_ts = 1700000000123;
    h.claim_writer = 0x1122334455667788ull;
    h.streams = streams;
    return h;
}

/* A snapshot of rr_src (epoch 3, some recent ids) and three streams. */
static void build(cairn_buf_t *b)
{
    struct cairn__ksnap_head h = head_of(3);
    cairn_error_t err = {0};
    cairn_buf_init(b, CAIRN__KSNAP_MAX_BYTES);
    assert_int_equal(cairn__ksnap_begin(b, TOPIC, &h, &rr_src, &err), CAIRN_OK);
    assert_int_equal(cairn__ksnap_add(b, "a", 3, offs_a, &err), CAIRN_OK);
    assert_int_equal(cairn__ksnap_add(b, "stream-b", 1, offs_b, &err), CAIRN_OK);
    assert_int_equal(cairn__ksnap_add(b, "c/é", 5, offs_c, &err), CAIRN_OK);
    assert_int_equal(cairn__ksnap_end(b, &err), CAIRN_OK);
}

static int setup(void **state)
{
    (void)state;
    cairn__rr_init(&rr_src, 0);
    feed_claim(&rr_src, 1);
    feed_appends(&rr_src, 1, 1, 5);
    feed_claim(&rr_src, 2);
    feed_claim(&rr_src, 3);
    feed_appends(&rr_src, 3, 100, 20);
    return 0;
}

static cairn_rc_t load(const cairn_buf_t *b, struct cairn__ksnap_head *h, struct got *g)
{
    cairn_error_t err = {0};
    memset(g, 0, sizeof(*g));
    cairn_rc_t rc = cairn__ksnap_load(b->data, b->len, TOPIC, 2, 4, h, &rr_got, collect, g, &err);
    if (rc)
        assert_true(err.code == rc && err.text[0] != '\0');
    return rc;
}

/* The verdict on appending @p id (one record, epoch @p epoch) to a copy of @p rr. */
static enum cairn__rr_verdict probe(const struct cairn__rr *rr, int64_t epoch, unsigned id)
{
    static struct cairn__rr copy;
    struct cairn__rr_meta m = ev(epoch, id, 0, 1);
    copy = *rr;
    return cairn__rr_feed(&copy, &m, NULL);
}

/* ---- round trips -------------------------------------------------------------- */

static void test_snapshot_round_trip_restores_index_and_rule(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    build(&b);
    assert_int_equal(load(&b, &h, &g), CAIRN_OK);
    assert_int_equal(h.offset, 200001);
    assert_int_equal(h.accepted_end, 200001);
    assert_int_equal(h.end_epoch, 3);
    assert_int_equal(h.claim_ts, 1700000000123);
    assert_true(h.claim_writer == 0x1122334455667788ull);
    assert_int_equal(h.streams, 3);
    assert_int_equal(rr_got.epoch, 3);
    assert_int_equal(rr_got.recent_n, 25);
    assert_false(rr_got.pending);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.s[0].name, "a");
    assert_int_equal(g.s[0].version, 3);
    assert_memory_equal(g.s[0].offs, offs_a, sizeof(offs_a));
    assert_string_equal(g.s[1].name, "stream-b");
    assert_memory_equal(g.s[1].offs, offs_b, sizeof(offs_b));
    assert_string_equal(g.s[2].name, "c/é");
    assert_int_equal(g.s[2].version, 5);
    assert_memory_equal(g.s[2].offs, offs_c, sizeof(offs_c));
    /* the rule goes on as the original would: repeats skipped, new ids accepted,
     * a claim of epoch 4 valid, one of 3 not */
    for (unsigned id = 1; id <= 130; id++)
        assert_int_equal(probe(&rr_got, 3, id), probe(&rr_src, 3, id));
    assert_int_equal(probe(&rr_got, 3, 105), CAIRN__RR_SKIP_DUPLICATE);
    assert_int_equal(probe(&rr_got, 3, 1000), CAIRN__RR_COMPLETE);
    assert_int_equal(probe(&rr_got, 2, 1000), CAIRN__RR_SKIP_EPOCH);
    cairn_buf_release(&b);
}

static void test_snapshot_keeps_the_window_of_a_full_ring_in_order(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    /* more appends than the window holds: the ring has wrapped */
    feed_appends(&rr_src, 3, 5000, CAIRN__RR_RECENT + 300);
    build(&b);
    assert_int_equal(load(&b, &h, &g), CAIRN_OK);
    assert_int_equal(rr_got.recent_n, CAIRN__RR_RECENT);
    /* same verdicts for ids that left the window and ids still in it */
    for (unsigned id = 5000; id < 5000 + CAIRN__RR_RECENT + 310; id++)
        assert_int_equal(probe(&rr_got, 3, id), probe(&rr_src, 3, id));
    assert_int_equal(probe(&rr_got, 3, 5000 + 299), CAIRN__RR_COMPLETE);
    assert_int_equal(probe(&rr_got, 3, 5000 + 300), CAIRN__RR_SKIP_DUPLICATE);
    /* and the oldest leaves first afterwards, as in the original */
    rr_a = rr_got;
    rr_b = rr_src;
    feed_appends(&rr_a, 3, 90000, 10);
    feed_appends(&rr_b, 3, 90000, 10);
    for (unsigned id = 5000 + 300; id < 5000 + 320; id++)
        assert_int_equal(probe(&rr_a, 3, id), probe(&rr_b, 3, id));
    assert_int_equal(probe(&rr_a, 3, 5000 + 309), CAIRN__RR_COMPLETE);
    assert_int_equal(probe(&rr_a, 3, 5000 + 310), CAIRN__RR_SKIP_DUPLICATE);
    cairn_buf_release(&b);
}

static void test_snapshot_of_an_empty_partition_loads(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h = head_of(0), got_h;
    struct got g;
    cairn_error_t err = {0};
    cairn__rr_init(&rr_a, 0);
    h.offset = 1; /* the metadata record only */
    h.accepted_end = 0;
    h.end_epoch = 0;
    cairn_buf_init(&b, CAIRN__KSNAP_MAX_BYTES);
    assert_int_equal(cairn__ksnap_begin(&b, TOPIC, &h, &rr_a, &err), CAIRN_OK);
    assert_int_equal(cairn__ksnap_end(&b, &err), CAIRN_OK);
    assert_int_equal(load(&b, &got_h, &g), CAIRN_OK);
    assert_int_equal(got_h.offset, 1);
    assert_int_equal(g.n, 0);
    assert_int_equal(rr_got.epoch, 0);
    assert_int_equal(rr_got.recent_n, 0);
    cairn_buf_release(&b);
}

/* ---- what the writer refuses ---------------------------------------------------- */

static void test_snapshot_refuses_a_partial_append_and_bad_offsets(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h = head_of(1);
    cairn_error_t err = {0};
    struct cairn__rr_meta m = ev(3, 777, 0, 2);
    static const int64_t down[] = {5, 4};
    static const int64_t gap[] = {5, -1};
    cairn_buf_init(&b, CAIRN__KSNAP_MAX_BYTES);
    rr_a = rr_src;
    assert_int_equal(cairn__rr_feed(&rr_a, &m, NULL), CAIRN__RR_PENDING);
    assert_int_equal(cairn__ksnap_begin(&b, TOPIC, &h, &rr_a, &err), CAIRN_E_INVALID);
    assert_int_equal(cairn__ksnap_begin(&b, TOPIC, &h, &rr_src, NULL), CAIRN_OK);
    assert_int_equal(cairn__ksnap_add(&b, "s", 2, down, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn__ksnap_add(&b, "s", 2, gap, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn__ksnap_add(&b, "", 1, down, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn__ksnap_add(&b, "s", 0, down, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn__ksnap_begin(&b, "", &h, &rr_src, NULL), CAIRN_E_INVALID);
    cairn_buf_release(&b);
}

/* ---- what the loader rejects ------------------------------------------------------ */

static void test_snapshot_truncated_at_any_length_is_rejected(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    build(&b);
    for (size_t n = 0; n < b.len; n++) {
        cairn_buf_t cut = b;
        cut.len = n;
        assert_int_equal(load(&cut, &h, &g), CAIRN_E_CORRUPT);
    }
    cairn_buf_release(&b);
}

static void test_snapshot_with_any_byte_flipped_is_rejected(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    build(&b);
    for (size_t i = 0; i < b.len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 3) {
            b.data[i] ^= (char)(1u << bit);
            assert_int_equal(load(&b, &h, &g), CAIRN_E_CORRUPT);
            b.data[i] ^= (char)(1u << bit);
        }
    }
    assert_int_equal(load(&b, &h, &g), CAIRN_OK);
    cairn_buf_release(&b);
}

static void test_snapshot_of_another_topic_or_partitioning_is_rejected(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    cairn_error_t err = {0};
    build(&b);
    assert_int_equal(
        cairn__ksnap_load(b.data, b.len, "orders2", 2, 4, &h, &rr_got, collect, &g, &err),
        CAIRN_E_CORRUPT);
    assert_non_null(strstr(err.text, "topic"));
    assert_int_equal(cairn__ksnap_load(b.data, b.len, "order", 2, 4, &h, &rr_got, NULL, NULL, NULL),
                     CAIRN_E_CORRUPT);
    assert_int_equal(cairn__ksnap_load(b.data, b.len, TOPIC, 1, 4, &h, &rr_got, NULL, NULL, NULL),
                     CAIRN_E_CORRUPT);
    memset(&err, 0, sizeof(err));
    assert_int_equal(cairn__ksnap_load(b.data, b.len, TOPIC, 2, 8, &h, &rr_got, NULL, NULL, &err),
                     CAIRN_E_CORRUPT);
    assert_non_null(strstr(err.text, "partition"));
    assert_int_equal(cairn__ksnap_load(b.data, b.len, TOPIC, 2, 4, &h, &rr_got, NULL, NULL, NULL),
                     CAIRN_OK);
    cairn_buf_release(&b);
}

/* Writes @p v little-endian at @p at and seals the snapshot with a fresh CRC,
 * so that only the structural checks can catch it. */
static void poke(cairn_buf_t *b, size_t at, uint64_t v, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        b->data[at + i] = (char)(unsigned char)(v >> (8 * i));
    uint32_t crc = cairn__crc32c(0, b->data, b->len - 4);
    for (size_t i = 0; i < 4; i++)
        b->data[b->len - 4 + i] = (char)(unsigned char)(crc >> (8 * i));
}

/* Offsets of fields in build()'s snapshot. */
#define AT_FORMAT     8
#define AT_TOPIC_LEN  16
#define AT_PARTITION  (18 + sizeof(TOPIC) - 1)
#define AT_OFFSET     (AT_PARTITION + 8)
#define AT_EPOCH      (AT_OFFSET + 8)
#define AT_ACCEPTED   (AT_EPOCH + 8)
#define AT_RECENT_N   (AT_ACCEPTED + 32)
#define AT_STREAMS(n) (AT_RECENT_N + 4 + (n)*CAIRN__RR_ID_LEN)

static void expect_rejected_after_poke(size_t at, uint64_t v, size_t bytes)
{
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    build(&b);
    poke(&b, at, v, bytes);
    biggest_alloc = 0;
    assert_int_equal(load(&b, &h, &g), CAIRN_E_CORRUPT);
    /* no allocation beyond a small multiple of the file */
    assert_true(biggest_alloc <= 16 * b.len + 4096);
    cairn_buf_release(&b);
}

static void test_snapshot_with_absurd_lengths_is_rejected_without_big_allocations(void **state)
{
    (void)state;
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    struct got g;
    build(&b);
    assert_int_equal(load(&b, &h, &g), CAIRN_OK); /* the layout the offsets assume */
    assert_int_equal((unsigned char)b.data[AT_TOPIC_LEN], sizeof(TOPIC) - 1);
    assert_int_equal((unsigned char)b.data[AT_PARTITION], 2);
    size_t streams_at = AT_STREAMS(rr_src.recent_n);
    size_t name_at = streams_at + 8;
    size_t version_at = name_at + 4 + 1; /* stream "a" */
    assert_int_equal((unsigned char)b.data[name_at], 1);
    assert_int_equal((unsigned char)b.data[version_at], 3);
    cairn_buf_release(&b);

    cairn_set_alloc_funcs(watch_malloc, watch_realloc, free);
    expect_rejected_after_poke(AT_FORMAT, 2, 4);                      /* unknown format */
    expect_rejected_after_poke(AT_TOPIC_LEN, 0xffff, 2);              /* topic past the end */
    expect_rejected_after_poke(AT_TOPIC_LEN, 0, 2);                   /* empty topic */
    expect_rejected_after_poke(AT_OFFSET, (uint64_t)1 << 63, 8);      /* negative offset */
    expect_rejected_after_poke(AT_OFFSET, 100, 8);                    /* offsets past it */
    expect_rejected_after_poke(AT_EPOCH, 0, 8);                       /* ids without epoch */
    expect_rejected_after_poke(AT_ACCEPTED, 300000, 8);               /* past the offset */
    expect_rejected_after_poke(AT_RECENT_N, CAIRN__RR_RECENT + 1, 4); /* too many ids */
    expect_rejected_after_poke(AT_RECENT_N, 0xffffffffu, 4);          /* absurd count */
    expect_rejected_after_poke(streams_at, (uint64_t)1 << 60, 8);     /* absurd streams */
    expect_rejected_after_poke(streams_at, 4, 8);                     /* one too many */
    expect_rejected_after_poke(streams_at, 2, 8);                     /* trailing bytes */
    expect_rejected_after_poke(name_at, 0xffffffffu, 4);              /* absurd name */
    expect_rejected_after_poke(name_at, 0, 4);                        /* empty name */
    expect_rejected_after_poke(name_at + 4, 0, 1);                    /* NUL in a name */
    expect_rejected_after_poke(version_at, 0, 1);                     /* version 0 */
    expect_rejected_after_poke(version_at, 0x7f, 1);                  /* more than there is */
    expect_rejected_after_poke(version_at, 0xffffffffffffffffull, 8); /* huge varint */
    expect_rejected_after_poke(version_at + 2, 0, 1);                 /* offsets not rising */
    /* a version that is a valid varint but larger than the bytes left */
    build(&b);
    poke(&b, version_at, 0x80, 1);
    biggest_alloc = 0;
    assert_int_equal(load(&b, &h, &g), CAIRN_E_CORRUPT);
    assert_true(biggest_alloc <= 16 * b.len + 4096);
    cairn_buf_release(&b);
    cairn_set_alloc_funcs(NULL, NULL, NULL);
}

/* ---- files ------------------------------------------------------------------------- */

static void test_snapshot_file_round_trip_and_safe_names(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-ksnap-unit-XXXXXX", path[4096];
    cairn_buf_t b;
    void *data = NULL;
    size_t len = 0;
    cairn_error_t err = {0};
    assert_non_null(mkdtemp(dir));
    assert_int_equal(cairn__ksnap_path(path, sizeof(path), dir, TOPIC, 2), 0);
    assert_non_null(strstr(path, "/orders-2.ksnap"));
    assert_int_equal(cairn__ksnap_read_file(path, 1 << 20, &data, &len, &err), CAIRN_E_NOT_FOUND);
    build(&b);
    assert_int_equal(cairn__ksnap_write_file(path, b.data, b.len, &err), CAIRN_OK);
    assert_int_equal(cairn__ksnap_read_file(path, 1 << 20, &data, &len, &err), CAIRN_OK);
    assert_int_equal(len, b.len);
    assert_memory_equal(data, b.data, len);
    cairn__free(data);
    /* larger than the cap: refused before reading */
    assert_int_equal(cairn__ksnap_read_file(path, 16, &data, &len, NULL), CAIRN_E_CORRUPT);
    assert_null(data);
    /* a name cannot leave the directory */
    assert_int_equal(cairn__ksnap_path(path, sizeof(path), dir, "../etc/x", 0), 0);
    assert_null(strstr(path + strlen(dir) + 1, "/"));
    assert_null(strstr(path + strlen(dir) + 1, ".."));
    assert_int_equal(cairn__ksnap_path(path, 8, dir, TOPIC, 0), -1);
    assert_int_equal(cairn__ksnap_path(path, sizeof(path), dir, TOPIC, 2), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_snapshot_round_trip_restores_index_and_rule, setup),
        cmocka_unit_test_setup(test_snapshot_keeps_the_window_of_a_full_ring_in_order, setup),
        cmocka_unit_test_setup(test_snapshot_of_an_empty_partition_loads, setup),
        cmocka_unit_test_setup(test_snapshot_refuses_a_partial_append_and_bad_offsets, setup),
        cmocka_unit_test_setup(test_snapshot_truncated_at_any_length_is_rejected, setup),
        cmocka_unit_test_setup(test_snapshot_with_any_byte_flipped_is_rejected, setup),
        cmocka_unit_test_setup(test_snapshot_of_another_topic_or_partitioning_is_rejected, setup),
        cmocka_unit_test_setup(
            test_snapshot_with_absurd_lengths_is_rejected_without_big_allocations, setup),
        cmocka_unit_test_setup(test_snapshot_file_round_trip_and_safe_names, setup),
    };
    return cmocka_run_group_tests_name("eventstore.kafka_snapshot", tests, NULL, NULL);
}
