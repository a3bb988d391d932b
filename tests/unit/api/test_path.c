/* SPDX-License-Identifier: MIT */
/*
 * test_path.c - the pure request parsing of the REST API: percent-decoding,
 * path segments, version and id segments, query booleans and integers,
 * content types, and the JSON string writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "api/api_int.h"

static cairn_rc_t decode(const char *in, bool plus, char *out)
{
    cairn_error_t err = {0};
    size_t n;
    return cairn__api_pct_decode(in, strlen(in), plus, out, &n, &err);
}

static void test_decode_turns_escaped_slash_into_slash(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a%2Fb", false, out), CAIRN_OK);
    assert_string_equal(out, "a/b");
    assert_int_equal(decode("%41%62c%7e", false, out), CAIRN_OK);
    assert_string_equal(out, "Abc~");
}

static void test_decode_refuses_bad_escapes_and_nul(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a%4", false, out), CAIRN_E_INVALID_REQUEST);
    assert_int_equal(decode("a%", false, out), CAIRN_E_INVALID_REQUEST);
    assert_int_equal(decode("%zz", false, out), CAIRN_E_INVALID_REQUEST);
    assert_int_equal(decode("a%00b", false, out), CAIRN_E_INVALID_REQUEST);
}

static void test_decode_plus_is_space_only_in_queries(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a+b%2B", true, out), CAIRN_OK);
    assert_string_equal(out, "a b+");
    assert_int_equal(decode("a+b", false, out), CAIRN_OK);
    assert_string_equal(out, "a+b");
}

static cairn_rc_t parse(const char *raw, char *scratch, cairn__api_path_t *p)
{
    cairn_error_t err = {0};
    return cairn__api_path_parse(raw, scratch, p, &err);
}

static void test_path_splits_before_decoding(void **state)
{
    (void)state;
    char scratch[256];
    cairn__api_path_t p;
    assert_int_equal(parse("/subjects/a%2Fb/versions", scratch, &p), CAIRN_OK);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.seg[0], "subjects");
    assert_string_equal(p.seg[1], "a/b");
    assert_int_equal(p.len[1], 3);
    assert_string_equal(p.seg[2], "versions");
}

static void test_path_root_and_trailing_slash(void **state)
{
    (void)state;
    char scratch[256];
    cairn__api_path_t p;
    assert_int_equal(parse("/", scratch, &p), CAIRN_OK);
    assert_int_equal(p.n, 0);
    assert_int_equal(parse("/subjects/", scratch, &p), CAIRN_OK);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.seg[0], "subjects");
}

static void test_path_refuses_empty_segments_depth_and_bad_escapes(void **state)
{
    (void)state;
    char scratch[256];
    cairn__api_path_t p;
    assert_int_equal(parse("/subjects//versions", scratch, &p), CAIRN_E_NOT_FOUND_PATH);
    assert_int_equal(parse("//subjects", scratch, &p), CAIRN_E_NOT_FOUND_PATH);
    assert_int_equal(parse("/a/b/c/d/e/f/g/h/i", scratch, &p), CAIRN_E_NOT_FOUND_PATH);
    assert_int_equal(parse("/a/b/c/d/e/f/g/h", scratch, &p), CAIRN_OK);
    assert_int_equal(parse("subjects", scratch, &p), CAIRN_E_INVALID_REQUEST);
    assert_int_equal(parse("/subjects/a%00/versions", scratch, &p), CAIRN_E_INVALID_REQUEST);
    assert_int_equal(parse("/subjects/a%G1", scratch, &p), CAIRN_E_INVALID_REQUEST);
}

static void test_version_accepts_latest_minus_one_and_positive_ints(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    int v = 0;
    assert_int_equal(cairn__api_parse_version("latest", &v, &err), CAIRN_OK);
    assert_int_equal(v, -1);
    assert_int_equal(cairn__api_parse_version("LATEST", &v, &err), CAIRN_OK);
    assert_int_equal(v, -1);
    assert_int_equal(cairn__api_parse_version("-1", &v, &err), CAIRN_OK);
    assert_int_equal(v, -1);
    assert_int_equal(cairn__api_parse_version("7", &v, &err), CAIRN_OK);
    assert_int_equal(v, 7);
    assert_int_equal(cairn__api_parse_version("2147483647", &v, &err), CAIRN_OK);
    assert_int_equal(v, 2147483647);
}

static void test_version_rejects_zero_negative_letters_and_overflow(void **state)
{
    (void)state;
    const char *bad[] = {"0", "-2", "abc", "99999999999", "2147483648", "", "1a", "-", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cairn_error_t err = {0};
        int v = 42;
        assert_int_equal(cairn__api_parse_version(bad[i], &v, &err), CAIRN_E_INVALID_VERSION);
        assert_int_equal(v, 42);
        assert_non_null(strstr(err.text, "is not a valid version id"));
    }
    cairn_error_t err = {0};
    int v;
    cairn__api_parse_version("abc", &v, &err);
    assert_string_equal(err.text, "The specified version 'abc' is not a valid version id. "
                                  "Allowed values are between [1, 2^31-1] and the string "
                                  "\"latest\"");
}

static void test_id_is_a_positive_int(void **state)
{
    (void)state;
    int id = 0;
    assert_true(cairn__api_parse_id("1", &id));
    assert_int_equal(id, 1);
    assert_true(cairn__api_parse_id("2147483647", &id));
    assert_false(cairn__api_parse_id("0", &id));
    assert_false(cairn__api_parse_id("-1", &id));
    assert_false(cairn__api_parse_id("+1", &id));
    assert_false(cairn__api_parse_id("abc", &id));
    assert_false(cairn__api_parse_id("2147483648", &id));
    assert_false(cairn__api_parse_id("", &id));
}

static void test_bool_is_true_or_false_in_any_case(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    bool b = true;
    assert_int_equal(cairn__api_parse_bool("deleted", NULL, false, &b, &err), CAIRN_OK);
    assert_false(b);
    assert_int_equal(cairn__api_parse_bool("deleted", "", true, &b, &err), CAIRN_OK);
    assert_true(b);
    assert_int_equal(cairn__api_parse_bool("deleted", "TRUE", false, &b, &err), CAIRN_OK);
    assert_true(b);
    assert_int_equal(cairn__api_parse_bool("deleted", "False", true, &b, &err), CAIRN_OK);
    assert_false(b);
    assert_int_equal(cairn__api_parse_bool("deleted", "yes", false, &b, &err),
                     CAIRN_E_INVALID_REQUEST);
    assert_non_null(strstr(err.text, "deleted"));
}

static void test_int_checks_range(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    long v = 0;
    assert_int_equal(cairn__api_parse_int("limit", NULL, -1, 100, -1, &v, &err), CAIRN_OK);
    assert_int_equal(v, -1);
    assert_int_equal(cairn__api_parse_int("limit", "-1", -1, 100, 5, &v, &err), CAIRN_OK);
    assert_int_equal(v, -1);
    assert_int_equal(cairn__api_parse_int("limit", "100", -1, 100, 5, &v, &err), CAIRN_OK);
    assert_int_equal(v, 100);
    assert_int_equal(cairn__api_parse_int("limit", "-2", -1, 100, 5, &v, &err),
                     CAIRN_E_INVALID_REQUEST);
    assert_int_equal(cairn__api_parse_int("limit", "101", -1, 100, 5, &v, &err),
                     CAIRN_E_INVALID_REQUEST);
    assert_int_equal(cairn__api_parse_int("limit", "x", -1, 100, 5, &v, &err),
                     CAIRN_E_INVALID_REQUEST);
}

static void test_content_types(void **state)
{
    (void)state;
    assert_true(cairn__api_content_type_ok(NULL));
    assert_true(cairn__api_content_type_ok("application/vnd.schemaregistry.v1+json"));
    assert_true(cairn__api_content_type_ok("application/vnd.schemaregistry+json"));
    assert_true(cairn__api_content_type_ok("Application/JSON; charset=utf-8"));
    assert_true(cairn__api_content_type_ok("application/octet-stream"));
    assert_false(cairn__api_content_type_ok("text/plain"));
    assert_false(cairn__api_content_type_ok("application/jsonx"));
    assert_false(cairn__api_content_type_ok("application/x-www-form-urlencoded"));
}

static void test_json_string_escapes_and_replaces_invalid_utf8(void **state)
{
    (void)state;
    cairn_buf_t b;
    cairn_buf_init(&b, 1024);
    cairn__jw_t w = {&b, CAIRN_OK};
    const char in[] = "a\"b\\c\n\x01\xc3\xa9\xff\xe2\x82";
    cairn__jw_str(&w, in, sizeof in - 1);
    assert_int_equal(w.rc, CAIRN_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\"");
    cairn_buf_release(&b);
}

static void test_json_writer_error_is_sticky(void **state)
{
    (void)state;
    cairn_buf_t b;
    cairn_buf_init(&b, 4);
    cairn__jw_t w = {&b, CAIRN_OK};
    cairn__jw_lit(&w, "[1,2,3]");
    cairn__jw_lit(&w, "]");
    assert_int_equal(w.rc, CAIRN_E_INVALID_TOO_LARGE);
    assert_int_equal(b.len, 0);
    cairn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_turns_escaped_slash_into_slash),
        cmocka_unit_test(test_decode_refuses_bad_escapes_and_nul),
        cmocka_unit_test(test_decode_plus_is_space_only_in_queries),
        cmocka_unit_test(test_path_splits_before_decoding),
        cmocka_unit_test(test_path_root_and_trailing_slash),
        cmocka_unit_test(test_path_refuses_empty_segments_depth_and_bad_escapes),
        cmocka_unit_test(test_version_accepts_latest_minus_one_and_positive_ints),
        cmocka_unit_test(test_version_rejects_zero_negative_letters_and_overflow),
        cmocka_unit_test(test_id_is_a_positive_int),
        cmocka_unit_test(test_bool_is_true_or_false_in_any_case),
        cmocka_unit_test(test_int_checks_range),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_json_string_escapes_and_replaces_invalid_utf8),
        cmocka_unit_test(test_json_writer_error_is_sticky),
    };
    return cmocka_run_group_tests_name("api.path", tests, NULL, NULL);
}
