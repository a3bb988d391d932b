/* SPDX-License-Identifier: MIT */
/*
 * test_kafka_reader_rule.c - the Kafka backend's reader rule
 * (eventstore/kafka/reader_rule.c), fed hand-made record sequences of one
 * partition: claims and epochs, appends that must stand contiguous and
 * complete, repeats, foreign records, the bound on remembered append ids,
 * and an exhaustive check of every short sequence against a reference
 * model written independently of the implementation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "kafka/kafka_int.h"

static struct cairn__rr rr; /* 16 KiB: not on the stack */

static struct cairn__rr_meta ev(int64_t epoch, unsigned id, uint32_t index, uint32_t count)
{
    struct cairn__rr_meta m;
    memset(&m, 0, sizeof(m));
    m.kind = CAIRN__RR_KIND_EVENT;
    m.epoch = epoch;
    m.append[0] = (unsigned char)(id >> 8);
    m.append[15] = (unsigned char)id;
    m.index = index;
    m.count = count;
    return m;
}

static struct cairn__rr_meta claim(int64_t epoch)
{
    struct cairn__rr_meta m;
    memset(&m, 0, sizeof(m));
    m.kind = CAIRN__RR_KIND_CLAIM;
    m.epoch = epoch;
    return m;
}

static struct cairn__rr_meta other(enum cairn__rr_kind kind)
{
    struct cairn__rr_meta m;
    memset(&m, 0, sizeof(m));
    m.kind = kind;
    return m;
}

static enum cairn__rr_verdict feed(struct cairn__rr_meta m, size_t *dropped)
{
    size_t d = 0;
    enum cairn__rr_verdict v = cairn__rr_feed(&rr, &m, &d);
    if (dropped)
        *dropped = d;
    return v;
}

static void test_rule_claims_are_valid_only_in_sequence(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    assert_int_equal(feed(claim(2), NULL), CAIRN__RR_SKIP_CLAIM_INVALID);
    assert_int_equal(rr.epoch, 0);
    assert_int_equal(feed(claim(1), NULL), CAIRN__RR_CLAIM_VALID);
    assert_int_equal(feed(claim(1), NULL), CAIRN__RR_SKIP_CLAIM_INVALID); /* a racing twin */
    assert_int_equal(feed(claim(3), NULL), CAIRN__RR_SKIP_CLAIM_INVALID);
    assert_int_equal(feed(claim(2), NULL), CAIRN__RR_CLAIM_VALID);
    assert_int_equal(rr.epoch, 2);
    assert_int_equal(rr.verdicts[CAIRN__RR_SKIP_CLAIM_INVALID], 3);
}

static void test_rule_rejects_events_before_any_claim(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    assert_int_equal(feed(ev(0, 1, 0, 1), NULL), CAIRN__RR_SKIP_EPOCH);
    assert_int_equal(feed(ev(1, 2, 0, 1), NULL), CAIRN__RR_SKIP_EPOCH);
}

static void test_rule_accepts_single_and_multi_record_appends(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    assert_int_equal(feed(ev(1, 1, 0, 1), NULL), CAIRN__RR_COMPLETE);
    assert_int_equal(feed(ev(1, 2, 0, 3), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(ev(1, 2, 1, 3), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(ev(1, 2, 2, 3), NULL), CAIRN__RR_COMPLETE);
}

static void test_rule_fenced_writer_records_are_skipped(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    assert_int_equal(feed(ev(1, 1, 0, 1), NULL), CAIRN__RR_COMPLETE);
    feed(claim(2), NULL);                                               /* new owner */
    assert_int_equal(feed(ev(1, 2, 0, 1), NULL), CAIRN__RR_SKIP_EPOCH); /* old owner, late */
    assert_int_equal(feed(ev(2, 3, 0, 1), NULL), CAIRN__RR_COMPLETE);   /* new owner */
    assert_int_equal(feed(ev(3, 4, 0, 1), NULL), CAIRN__RR_SKIP_EPOCH); /* epoch not claimed */
    assert_int_equal(rr.verdicts[CAIRN__RR_SKIP_EPOCH], 2);
}

static void test_rule_claim_in_the_middle_drops_the_append(void **state)
{
    size_t dropped = 0;
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    assert_int_equal(feed(ev(1, 1, 0, 3), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(ev(1, 1, 1, 3), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(claim(2), &dropped), CAIRN__RR_CLAIM_VALID);
    assert_int_equal(dropped, 2);
    /* the rest of the append, even complete now, is never accepted */
    assert_int_equal(feed(ev(1, 1, 2, 3), &dropped), CAIRN__RR_SKIP_EPOCH);
    assert_int_equal(dropped, 0);
    assert_int_equal(rr.dropped_records, 2);
}

static void test_rule_interleaved_append_drops_the_held_one(void **state)
{
    size_t dropped = 0;
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    assert_int_equal(feed(ev(1, 1, 0, 2), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(ev(1, 2, 0, 1), &dropped), CAIRN__RR_COMPLETE);
    assert_int_equal(dropped, 1);
    assert_int_equal(feed(ev(1, 1, 1, 2), NULL), CAIRN__RR_SKIP_ORPHAN);
}

static void test_rule_foreign_record_in_the_middle_drops_the_append(void **state)
{
    size_t dropped = 0;
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    feed(ev(1, 1, 0, 2), NULL);
    assert_int_equal(feed(other(CAIRN__RR_KIND_FOREIGN), &dropped), CAIRN__RR_SKIP_FOREIGN);
    assert_int_equal(dropped, 1);
    assert_int_equal(feed(ev(1, 1, 1, 2), NULL), CAIRN__RR_SKIP_ORPHAN);
}

static void test_rule_out_of_order_index_is_rejected(void **state)
{
    size_t dropped = 0;
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    assert_int_equal(feed(ev(1, 1, 1, 2), NULL), CAIRN__RR_SKIP_ORPHAN);
    assert_int_equal(feed(ev(1, 1, 0, 2), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(ev(1, 1, 0, 2), &dropped), CAIRN__RR_PENDING); /* restart: repeat of 0 */
    assert_int_equal(dropped, 1);
    assert_int_equal(feed(ev(1, 1, 1, 3), &dropped), CAIRN__RR_SKIP_ORPHAN); /* count changed */
    assert_int_equal(dropped, 1);
    assert_int_equal(feed(ev(1, 5, 2, 2), NULL), CAIRN__RR_SKIP_FOREIGN); /* index >= count */
}

static void test_rule_repeated_append_is_skipped(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    assert_int_equal(feed(ev(1, 7, 0, 2), NULL), CAIRN__RR_PENDING);
    assert_int_equal(feed(ev(1, 7, 1, 2), NULL), CAIRN__RR_COMPLETE);
    assert_int_equal(feed(ev(1, 7, 0, 2), NULL), CAIRN__RR_SKIP_DUPLICATE);
    assert_int_equal(feed(ev(1, 7, 1, 2), NULL), CAIRN__RR_SKIP_DUPLICATE);
    assert_int_equal(feed(ev(1, 8, 0, 1), NULL), CAIRN__RR_COMPLETE);
    assert_int_equal(feed(ev(1, 8, 0, 1), NULL), CAIRN__RR_SKIP_DUPLICATE);
}

static void test_rule_remembers_a_bounded_number_of_appends(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    for (unsigned i = 0; i < CAIRN__RR_RECENT + 1; i++)
        assert_int_equal(feed(ev(1, 1000 + i, 0, 1), NULL), CAIRN__RR_COMPLETE);
    /* the first one fell out of the window; the second is still in it */
    assert_int_equal(feed(ev(1, 1001, 0, 1), NULL), CAIRN__RR_SKIP_DUPLICATE);
    assert_int_equal(feed(ev(1, 1000, 0, 1), NULL), CAIRN__RR_COMPLETE);
    assert_int_equal(rr.recent_n, CAIRN__RR_RECENT);
}

/* Repeats over a long random run, against a plain list of the last
 * CAIRN__RR_RECENT accepted ids (the rule indexes its window by a hash). */
static void test_rule_repeat_window_matches_a_plain_list(void **state)
{
    static unsigned window[CAIRN__RR_RECENT];
    size_t wn = 0, whead = 0;
    unsigned seed = 12345;
    (void)state;
    cairn__rr_init(&rr, 0);
    feed(claim(1), NULL);
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned id = (seed >> 8) % 3000; /* repeats in and out of the window */
        int in_window = 0;
        for (size_t i = 0; i < wn; i++)
            in_window |= window[i] == id;
        enum cairn__rr_verdict v = feed(ev(1, id, 0, 1), NULL);
        if (in_window) {
            assert_int_equal(v, CAIRN__RR_SKIP_DUPLICATE);
        } else {
            assert_int_equal(v, CAIRN__RR_COMPLETE);
            window[whead] = id;
            whead = (whead + 1) % CAIRN__RR_RECENT;
            if (wn < CAIRN__RR_RECENT)
                wn++;
        }
    }
}

static void test_rule_meta_and_foreign_are_counted(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 0);
    assert_int_equal(feed(other(CAIRN__RR_KIND_META), NULL), CAIRN__RR_SKIP_META);
    assert_int_equal(feed(other(CAIRN__RR_KIND_FOREIGN), NULL), CAIRN__RR_SKIP_FOREIGN);
    assert_int_equal(feed(other(CAIRN__RR_KIND_FOREIGN), NULL), CAIRN__RR_SKIP_FOREIGN);
    assert_int_equal(rr.verdicts[CAIRN__RR_SKIP_FOREIGN], 2);
    assert_int_equal(rr.verdicts[CAIRN__RR_SKIP_META], 1);
}

static void test_rule_resumes_from_a_checkpoint_epoch(void **state)
{
    (void)state;
    cairn__rr_init(&rr, 4);
    assert_int_equal(feed(ev(4, 1, 0, 1), NULL), CAIRN__RR_COMPLETE);
    assert_int_equal(feed(claim(4), NULL), CAIRN__RR_SKIP_CLAIM_INVALID);
    assert_int_equal(feed(claim(5), NULL), CAIRN__RR_CLAIM_VALID);
}

/*
 * Exhaustive: every sequence of up to 6 records drawn from a small alphabet
 * (claims 1..2, events of appends A/B with count 1..2 and index 0..1 under
 * epochs 1..2, a foreign record), judged by a reference model that decides
 * acceptance on the whole sequence after the fact: an event is accepted iff
 * the epoch in force before it equals its epoch and its append's records
 * 0..count-1 stand in a contiguous run that contains it, starting at an
 * index-0 record, and no earlier accepted run had the same append id.
 */
struct sym {
    struct cairn__rr_meta m;
};

#define NSYM   12
#define MAXLEN 6

static struct sym alphabet[NSYM];

static void build_alphabet(void)
{
    size_t n = 0;
    alphabet[n++].m = claim(1);
    alphabet[n++].m = claim(2);
    alphabet[n++].m = other(CAIRN__RR_KIND_FOREIGN);
    alphabet[n++].m = ev(1, 1, 0, 1);
    alphabet[n++].m = ev(1, 2, 0, 2);
    alphabet[n++].m = ev(1, 2, 1, 2);
    alphabet[n++].m = ev(2, 2, 0, 2);
    alphabet[n++].m = ev(2, 2, 1, 2);
    alphabet[n++].m = ev(1, 3, 0, 2);
    alphabet[n++].m = ev(1, 3, 1, 2);
    alphabet[n++].m = ev(2, 4, 0, 1);
    alphabet[n++].m = ev(1, 4, 0, 1);
    assert_int_equal(n, NSYM);
}

static int same_id(const struct cairn__rr_meta *a, const struct cairn__rr_meta *b)
{
    return memcmp(a->append, b->append, CAIRN__RR_ID_LEN) == 0;
}

/* Reference: accepted[i] for the sequence s[0..len). */
static void reference(const int *s, int len, int *accepted)
{
    int64_t epoch_before[MAXLEN];
    int64_t e = 0;
    for (int i = 0; i < len; i++) {
        const struct cairn__rr_meta *m = &alphabet[s[i]].m;
        epoch_before[i] = e;
        if (m->kind == CAIRN__RR_KIND_CLAIM && m->epoch == e + 1)
            e = m->epoch;
        accepted[i] = 0;
    }
    for (int i = 0; i < len; i++) {
        const struct cairn__rr_meta *m = &alphabet[s[i]].m;
        if (m->kind != CAIRN__RR_KIND_EVENT || m->index != 0 || m->epoch != epoch_before[i] ||
            m->epoch < 1 || i + (int)m->count > len)
            continue;
        int ok = 1;
        for (uint32_t j = 0; j < m->count && ok; j++) {
            const struct cairn__rr_meta *x = &alphabet[s[i + (int)j]].m;
            ok = x->kind == CAIRN__RR_KIND_EVENT && same_id(x, m) && x->index == j &&
                 x->count == m->count && x->epoch == m->epoch;
        }
        /* a repeat of an append accepted earlier is skipped */
        for (int p = 0; p < i && ok; p++)
            if (accepted[p] && same_id(&alphabet[s[p]].m, m))
                ok = 0;
        if (ok)
            for (uint32_t j = 0; j < m->count; j++)
                accepted[i + (int)j] = 1;
    }
}

static void test_rule_matches_reference_on_every_short_sequence(void **state)
{
    int s[MAXLEN], acc[MAXLEN];
    long checked = 0;
    (void)state;
    build_alphabet();
    for (int len = 1; len <= MAXLEN; len++) {
        long total = 1;
        for (int i = 0; i < len; i++)
            total *= NSYM;
        for (long code = 0; code < total; code++) {
            long c = code;
            for (int i = 0; i < len; i++) {
                s[i] = (int)(c % NSYM);
                c /= NSYM;
            }
            reference(s, len, acc);
            cairn__rr_init(&rr, 0);
            int held = 0;
            int got[MAXLEN];
            for (int i = 0; i < len; i++) {
                size_t dropped = 0;
                enum cairn__rr_verdict v = cairn__rr_feed(&rr, &alphabet[s[i]].m, &dropped);
                assert_int_equal((int)dropped, dropped ? held : 0);
                if (dropped) {
                    for (int j = i - held; j < i; j++)
                        got[j] = 0;
                    held = 0;
                }
                got[i] = 0;
                if (v == CAIRN__RR_PENDING) {
                    held++;
                } else if (v == CAIRN__RR_COMPLETE) {
                    for (int j = i - held; j <= i; j++)
                        got[j] = 1;
                    held = 0;
                }
            }
            for (int j = len - held; j < len; j++)
                got[j] = 0; /* incomplete at the end: not (yet) accepted */
            for (int i = 0; i < len; i++) {
                if (got[i] != acc[i])
                    fail_msg("sequence code %ld len %d: record %d got %d want %d", code, len, i,
                             got[i], acc[i]);
            }
            checked++;
        }
    }
    assert_true(checked > 3000000);
}

/* ---- the "cairn" event header ------------------------------------------- */

static struct cairn__rr_event sample_event(void)
{
    struct cairn__rr_event e;
    memset(&e, 0, sizeof(e));
    e.version = 0x0102030405060708ull;
    e.epoch = 0x1112131415161718ll;
    for (int i = 0; i < CAIRN__RR_ID_LEN; i++)
        e.append[i] = (unsigned char)(0xa0 + i);
    e.index = 0x21222324u;
    e.count = 0x31323334u;
    e.time_ms = 1764000000123ll;
    return e;
}

static void test_header_layout_is_the_documented_bytes(void **state)
{
    (void)state;
    struct cairn__rr_event e = sample_event();
    unsigned char b[CAIRN__RR_HEADER_LEN];
    static const unsigned char want[CAIRN__RR_HEADER_LEN] = {
        1,                                               /* layout */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  /* version */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  /* epoch */
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,  /* append id: writer */
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,  /* append id: counter */
        0x21, 0x22, 0x23, 0x24,                          /* index */
        0x31, 0x32, 0x33, 0x34,                          /* count */
        0x00, 0x00, 0x01, 0x9a, 0xb6, 0x97, 0xe8, 0x7b}; /* time 1764000000123 ms */
    assert_int_equal(CAIRN__RR_HEADER_LEN, 49);
    cairn__rr_header_encode(&e, b);
    assert_memory_equal(b, want, sizeof(want));
}

static void test_header_round_trips_every_field(void **state)
{
    (void)state;
    struct cairn__rr_event e = sample_event(), d;
    unsigned char b[CAIRN__RR_HEADER_LEN];
    cairn__rr_header_encode(&e, b);
    memset(&d, 0xee, sizeof(d));
    assert_int_equal(cairn__rr_header_decode(b, sizeof(b), &d), 0);
    assert_true(d.version == e.version);
    assert_true(d.epoch == e.epoch);
    assert_memory_equal(d.append, e.append, CAIRN__RR_ID_LEN);
    assert_int_equal(d.index, e.index);
    assert_int_equal(d.count, e.count);
    assert_true(d.time_ms == e.time_ms);
    /* times before 1970 stay negative */
    e.time_ms = -5;
    cairn__rr_header_encode(&e, b);
    assert_int_equal(cairn__rr_header_decode(b, sizeof(b), &d), 0);
    assert_true(d.time_ms == -5);
}

static void test_header_decode_refuses_what_is_not_ours(void **state)
{
    (void)state;
    struct cairn__rr_event e = sample_event(), d;
    unsigned char b[CAIRN__RR_HEADER_LEN + 1];
    cairn__rr_header_encode(&e, b);
    b[CAIRN__RR_HEADER_LEN] = 0;
    assert_int_equal(cairn__rr_header_decode(b, CAIRN__RR_HEADER_LEN - 1, &d), -1);
    assert_int_equal(cairn__rr_header_decode(b, CAIRN__RR_HEADER_LEN + 1, &d), -1);
    assert_int_equal(cairn__rr_header_decode(NULL, CAIRN__RR_HEADER_LEN, &d), -1);
    b[0] = 2; /* an unknown layout */
    assert_int_equal(cairn__rr_header_decode(b, CAIRN__RR_HEADER_LEN, &d), -1);
    b[0] = CAIRN__RR_HEADER_V1;
    b[9] = 0x80; /* epoch >= 2^63 */
    assert_int_equal(cairn__rr_header_decode(b, CAIRN__RR_HEADER_LEN, &d), -1);
    b[9] = 0x11;
    memset(b + 1, 0, 8); /* version 0 */
    assert_int_equal(cairn__rr_header_decode(b, CAIRN__RR_HEADER_LEN, &d), -1);
    b[8] = 1;
    assert_int_equal(cairn__rr_header_decode(b, CAIRN__RR_HEADER_LEN, &d), 0);
    assert_true(d.version == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_claims_are_valid_only_in_sequence),
        cmocka_unit_test(test_rule_rejects_events_before_any_claim),
        cmocka_unit_test(test_rule_accepts_single_and_multi_record_appends),
        cmocka_unit_test(test_rule_fenced_writer_records_are_skipped),
        cmocka_unit_test(test_rule_claim_in_the_middle_drops_the_append),
        cmocka_unit_test(test_rule_interleaved_append_drops_the_held_one),
        cmocka_unit_test(test_rule_foreign_record_in_the_middle_drops_the_append),
        cmocka_unit_test(test_rule_out_of_order_index_is_rejected),
        cmocka_unit_test(test_rule_repeated_append_is_skipped),
        cmocka_unit_test(test_rule_remembers_a_bounded_number_of_appends),
        cmocka_unit_test(test_rule_repeat_window_matches_a_plain_list),
        cmocka_unit_test(test_rule_meta_and_foreign_are_counted),
        cmocka_unit_test(test_rule_resumes_from_a_checkpoint_epoch),
        cmocka_unit_test(test_rule_matches_reference_on_every_short_sequence),
        cmocka_unit_test(test_header_layout_is_the_documented_bytes),
        cmocka_unit_test(test_header_round_trips_every_field),
        cmocka_unit_test(test_header_decode_refuses_what_is_not_ours),
    };
    return cmocka_run_group_tests_name("eventstore.kafka_reader_rule", tests, NULL, NULL);
}
