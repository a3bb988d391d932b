/* SPDX-License-Identifier: MIT */
/*
 * test_frame.c - the file log's record encoding: a round trip, and the
 * decoder's refusal of payloads whose lengths, names or counts do not fit
 * (the file is input, so every field is checked against what is there).
 */
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "eventstore_int.h"

struct encoded {
    unsigned char buf[512];
    size_t payload_len;
};

static void encode(struct encoded *e, const char *stream, const cairn_record_t *rec)
{
    assert_int_equal(cairn__frame_size(stream, strlen(stream), rec, 1024, &e->payload_len, NULL),
                     CAIRN_OK);
    assert_true(e->payload_len + CAIRN__FRAME_HEADER <= sizeof e->buf);
    struct cairn__frame_batch b = {1, 3};
    cairn__frame_encode(e->buf, e->payload_len, stream, strlen(stream), rec, b);
}

static cairn_rc_t decode(struct encoded *e, cairn_record_t *out, const char **why)
{
    cairn_header_t *hdrs = NULL;
    size_t cap = 0;
    struct cairn__frame_batch b;
    cairn_rc_t rc = cairn__frame_decode(e->buf + CAIRN__FRAME_HEADER, e->payload_len, out, &b,
                                        &hdrs, &cap, why);
    /* Views point into e->buf; copy the header names the tests look at first. */
    if (rc == CAIRN_OK && out->header_count)
        assert_string_equal(hdrs[0].name, "k");
    free(hdrs);
    return rc;
}

static const cairn_header_t one_header = {"k", "val", 3};
static const cairn_record_t sample = {.value = "hello",
                                      .value_len = 5,
                                      .version = 7,
                                      .timestamp_ms = 42,
                                      .headers = &one_header,
                                      .header_count = 1};

static void test_frame_round_trip_keeps_every_field(void **state)
{
    (void)state;
    struct encoded e;
    encode(&e, "order-9", &sample);
    uint32_t len, crc;
    cairn__frame_header(e.buf, &len, &crc);
    assert_int_equal(len, e.payload_len);
    assert_int_equal(crc, cairn__crc32c(0, e.buf + CAIRN__FRAME_HEADER, len));

    cairn_header_t *hdrs = NULL;
    size_t cap = 0;
    struct cairn__frame_batch b;
    cairn_record_t r;
    const char *why = NULL;
    assert_int_equal(cairn__frame_decode(e.buf + 8, len, &r, &b, &hdrs, &cap, &why), CAIRN_OK);
    assert_string_equal(r.stream, "order-9");
    assert_int_equal(r.version, 7);
    assert_int_equal(r.timestamp_ms, 42);
    assert_int_equal(b.index, 1);
    assert_int_equal(b.count, 3);
    assert_int_equal(r.value_len, 5);
    assert_memory_equal(r.value, "hello", 5);
    assert_int_equal(r.header_count, 1);
    assert_string_equal(r.headers[0].name, "k");
    assert_int_equal(r.headers[0].value_len, 3);
    assert_memory_equal(r.headers[0].value, "val", 3);
    free(hdrs);
}

static void test_frame_decode_refuses_a_value_length_past_the_end(void **state)
{
    (void)state;
    struct encoded e;
    cairn_record_t r;
    const char *why = NULL;
    encode(&e, "s", &sample);
    /* The value length is the u32 before the last 5 bytes. */
    unsigned char *vl = e.buf + CAIRN__FRAME_HEADER + e.payload_len - 5 - 4;
    vl[0] = 6;
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    vl[0] = 4; /* too short leaves trailing bytes */
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    vl[3] = 0xff;
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
}

static void test_frame_decode_refuses_a_header_count_beyond_the_payload(void **state)
{
    (void)state;
    struct encoded e;
    cairn_record_t r;
    const char *why = NULL;
    encode(&e, "s", &sample);
    e.buf[CAIRN__FRAME_HEADER + 2] = 0xff;
    e.buf[CAIRN__FRAME_HEADER + 3] = 0xff;
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    assert_string_equal(why, "header count exceeds the payload");
}

static void test_frame_decode_refuses_names_without_their_nul(void **state)
{
    (void)state;
    struct encoded e;
    cairn_record_t r;
    const char *why = NULL;
    encode(&e, "ab", &sample);
    unsigned char *stream = e.buf + CAIRN__FRAME_HEADER + CAIRN__FRAME_FIXED;
    stream[2 + 2] = 'x'; /* the NUL after "ab" */
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    stream[2 + 2] = 0;
    stream[2 + 1] = 0; /* an embedded NUL */
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    stream[2 + 1] = 'b';
    stream[0] = 200; /* stream length past the payload */
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    stream[0] = 2;
    assert_int_equal(decode(&e, &r, &why), CAIRN_OK);
}

static void test_frame_decode_refuses_bad_format_batch_and_version(void **state)
{
    (void)state;
    struct encoded e;
    cairn_record_t r;
    const char *why = NULL;
    encode(&e, "s", &sample);
    unsigned char *p = e.buf + CAIRN__FRAME_HEADER;
    p[0] = 2;
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    p[0] = CAIRN__FRAME_FORMAT;
    p[4] = 3; /* batch index == count */
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    p[4] = 1;
    memset(p + 12, 0, 8); /* version 0 */
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
    e.payload_len = CAIRN__FRAME_MIN_PAYLOAD - 1;
    assert_int_equal(decode(&e, &r, &why), CAIRN_E_CORRUPT);
}

static void test_frame_size_enforces_the_limits(void **state)
{
    (void)state;
    size_t n;
    cairn_error_t err = {0};
    cairn_record_t r = {.value = "x", .value_len = 1};
    assert_int_equal(cairn__frame_size("", 0, &r, 1024, &n, &err), CAIRN_E_INVALID);
    cairn_record_t empty = {.value = NULL, .value_len = 0};
    assert_int_equal(cairn__frame_size("s", 1, &empty, 1024, &n, NULL), CAIRN_OK);
    assert_int_equal(n, CAIRN__FRAME_MIN_PAYLOAD);
    assert_int_equal(cairn__frame_size("s", 1, &r, 1024, &n, NULL), CAIRN_OK);
    assert_int_equal(n, CAIRN__FRAME_MIN_PAYLOAD + 1);
    assert_int_equal(cairn__frame_size("s", 1, &r, n - 1, &n, NULL), CAIRN_E_INVALID);
    cairn_record_t bad = {.value = NULL, .value_len = 3};
    assert_int_equal(cairn__frame_size("s", 1, &bad, 1024, &n, NULL), CAIRN_E_INVALID);
    cairn_header_t h = {NULL, "v", 1};
    cairn_record_t nameless = {.value = "x", .value_len = 1, .headers = &h, .header_count = 1};
    assert_int_equal(cairn__frame_size("s", 1, &nameless, 1024, &n, NULL), CAIRN_E_INVALID);
    cairn_record_t huge = {.value = "x", .value_len = SIZE_MAX - 2};
    assert_int_equal(cairn__frame_size("s", 1, &huge, 1024, &n, NULL), CAIRN_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_round_trip_keeps_every_field),
        cmocka_unit_test(test_frame_decode_refuses_a_value_length_past_the_end),
        cmocka_unit_test(test_frame_decode_refuses_a_header_count_beyond_the_payload),
        cmocka_unit_test(test_frame_decode_refuses_names_without_their_nul),
        cmocka_unit_test(test_frame_decode_refuses_bad_format_batch_and_version),
        cmocka_unit_test(test_frame_size_enforces_the_limits),
    };
    return cmocka_run_group_tests_name("eventstore.frame", tests, NULL, NULL);
}
