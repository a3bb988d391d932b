/* SPDX-License-Identifier: MIT */
/*
 * test_avro_codec_resolve.c - reading data written with one schema as
 * another (the spec's schema resolution) through cairn__avro_resolver_new:
 * each case encodes a value with the writer schema and checks the JSON the
 * reader schema yields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_avro_codec_fixture.h"

#define R(fields)   "{'type':'record','name':'R','fields':[" fields "]}"
#define F(n, t)     "{'name':'" n "','type':" t "}"
#define FD(n, t, d) "{'name':'" n "','type':" t ",'default':" d "}"

static void test_added_field_takes_its_default(void **state)
{
    (void)state;
    assert_resolves(R(F("a", "'int'") "," FD("b", "'string'", "'x'")), R(F("a", "'int'")),
                    "{'a':1}", "{'a':1,'b':'x'}");
    assert_resolves(
        R(F("a", "'int'") "," FD("b", "['null','int','long']", "null") "," FD(
            "c", "['int','long']",
            "3") "," FD("d", "'bytes'", "'\\u00ff'") "," FD("e", "'float'",
                                                            "'NaN'") "," FD("f", "'double'", "2")),
        R(F("a", "'int'")), "{'a':1}",
        "{'a':1,'b':null,'c':{'int':3},'d':'\\u00ff','e':'NaN','f':2.0}");
}

static void test_added_record_field_default_fills_nested_defaults(void **state)
{
    (void)state;
    assert_resolves(R(F("a", "'int'") "," FD("p",
                                             "{'type':'record','name':'P','fields':[" F(
                                                 "q", "'int'") "," FD("r", "'string'", "'s'") "]}",
                                             "{'q':1}")),
                    R(F("a", "'int'")), "{'a':7}", "{'a':7,'p':{'q':1,'r':'s'}}");
}

static void test_removed_fields_are_skipped(void **state)
{
    (void)state;
    const char *w = R(F("a", "'int'") "," F("b", "'string'") "," F(
        "c",
        "{'type':'array','items':{'type':'record','name':'I','fields':[" F(
            "x",
            "['null','"
            "double']") "," F("m",
                              "{'type':'map','values':'bytes'}") "]}}") "," F("d",
                                                                              "{'type':'fixed','"
                                                                              "name':'X','"
                                                                              "size':2}") "," F("e",
                                                                                                "'l"
                                                                                                "on"
                                                                                                "g"
                                                                                                "'"));
    assert_resolves(R(F("a", "'int'") "," F("e", "'long'")), w,
                    "{'a':1,'b':'gone','c':[{'x':1.5,'m':{'k':'v'}},{'x':null,'m':{}}],"
                    "'d':'zz','e':-3}",
                    "{'a':1,'e':-3}");
}

static void test_renamed_field_is_found_by_reader_alias(void **state)
{
    (void)state;
    assert_resolves(R("{'name':'new','type':'int','aliases':['old']}"), R(F("old", "'int'")),
                    "{'old':5}", "{'new':5}");
}

static void test_enum_symbol_unknown_to_reader_takes_the_reader_default(void **state)
{
    (void)state;
    const char *r = "{'type':'enum','name':'E','symbols':['A','B'],'default':'A'}";
    const char *w = "{'type':'enum','name':'E','symbols':['A','B','C']}";
    assert_resolves(r, w, "'C'", "'A'");
    assert_resolves(r, w, "'B'", "'B'");
    /* symbols mapped by name, not by index */
    assert_resolves("{'type':'enum','name':'E','symbols':['C','B','A']}",
                    "{'type':'enum','name':'E','symbols':['A','B','C']}", "'A'", "'A'");
}

static void test_promotions(void **state)
{
    (void)state;
    assert_resolves("'long'", "'int'", "-7", "-7");
    assert_resolves("'float'", "'int'", "3", "3.0");
    assert_resolves("'double'", "'int'", "3", "3.0");
    assert_resolves("'float'", "'long'", "16777217", "16777216.0");
    assert_resolves("'double'", "'long'", "9007199254740992", "9007199254740992.0");
    assert_resolves("'double'", "'float'", "1.5", "1.5");
    assert_resolves("'double'", "'float'", "'-Infinity'", "'-Infinity'");
    assert_resolves("'bytes'", "'string'", "'\u00e9'", "'\\u00c3\\u00a9'");
    assert_resolves("'string'", "'bytes'", "'\\u00c3\\u00a9'", "'\u00e9'");
}

static void test_bytes_that_are_not_utf8_do_not_read_as_string(void **state)
{
    (void)state;
    cairn_avro_model_t *w = schema("'bytes'"), *r = schema("'string'");
    unsigned char data[] = {0x02, 0xff};
    cairn_error_t err = {0};
    assert_null(decode_as(r, w, data, sizeof data, &err));
    assert_non_null(strstr(err.text, "UTF-8"));
    cairn__avro_model_free(w);
    cairn__avro_model_free(r);
}

static void test_union_and_non_union(void **state)
{
    (void)state;
    /* writer union, reader not: the written branch is read as the reader */
    assert_resolves("'long'", "['int','long']", "5", "5");
    assert_resolves("'long'", "['int','long']", "{'long':6}", "6");
    /* writer not, reader union: the best branch, wrapped when ambiguous */
    assert_resolves("['null','long']", "'int'", "5", "5");
    assert_resolves("['null','int','long']", "'int'", "5", "{'int':5}");
    assert_resolves("['null','string','long']", "'long'", "5", "5");
    assert_resolves("['null','double']", "'float'", "0.5", "0.5");
    /* both unions, branches in another order */
    assert_resolves("['string','null']", "['null','string']", "'x'", "'x'");
    assert_resolves("['string','null']", "['null','string']", "null", "null");
}

static void test_nested_records_resolve_recursively(void **state)
{
    (void)state;
    const char *w =
        R(F("in",
            "{'type':'record','name':'In','fields':[" F("x", "'int'") "," F("z", "'string'") "]}"));
    const char *r = R(F("in", "{'type':'record','name':'In','fields':[" F("x", "'long'") "," FD(
                                  "y", "'string'", "'d'") "]}"));
    assert_resolves(r, w, "{'in':{'x':1,'z':'gone'}}", "{'in':{'x':1,'y':'d'}}");
}

static void test_arrays_and_maps_of_records(void **state)
{
    (void)state;
    const char *item_w =
        "{'type':'record','name':'It','fields':[" F("a", "'int'") "," F("b", "'int'") "]}";
    const char *item_r = "{'type':'record','name':'It','fields':[" F("b", "'long'") "]}";
    char w[512], r[512];
    snprintf(w, sizeof w, "{'type':'array','items':%s}", item_w);
    snprintf(r, sizeof r, "{'type':'array','items':%s}", item_r);
    assert_resolves(r, w, "[{'a':1,'b':2},{'a':3,'b':4}]", "[{'b':2},{'b':4}]");
    snprintf(w, sizeof w, "{'type':'map','values':%s}", item_w);
    snprintf(r, sizeof r, "{'type':'map','values':%s}", item_r);
    assert_resolves(r, w, "{'k':{'a':1,'b':2}}", "{'k':{'b':2}}");
}

static void test_recursive_records_share_one_plan(void **state)
{
    (void)state;
    const char *w =
        "{'type':'record','name':'N','fields':[" F("v", "'int'") "," F("next", "['null','N']") "]}";
    const char *r = "{'type':'record','name':'N','fields':[" F("v", "'long'") "," F(
        "next", "['null','N']") "," FD("tag", "'string'", "'t'") "]}";
    assert_resolves(r, w, "{'v':1,'next':{'v':2,'next':null}}",
                    "{'v':1,'next':{'v':2,'next':null,'tag':'t'},'tag':'t'}");
}

static void test_members_come_in_reader_field_order(void **state)
{
    (void)state;
    cairn_avro_model_t *w = schema(R(F("b", "'string'") "," F("a", "'int'")));
    cairn_avro_model_t *r = schema(R(F("a", "'int'") "," F("b", "'string'")));
    unsigned char data[] = {0x02, 0x78, 0x04};
    cairn_error_t err = {0};
    json_t *v = decode_as(r, w, data, sizeof data, &err);
    assert_non_null(v);
    char *s = json_dumps(v, JSON_COMPACT);
    assert_string_equal(s, "{\"a\":2,\"b\":\"x\"}");
    free(s);
    json_decref(v);
    cairn__avro_model_free(w);
    cairn__avro_model_free(r);
}

static void test_incompatible_schemas_are_refused_with_a_reason(void **state)
{
    (void)state;
    cairn_avro_model_t *w = schema(R(F("a", "'string'")));
    cairn_avro_model_t *r = schema(R(F("a", "'int'") "," F("b", "'int'")));
    cairn_avro_resolver_t *res = NULL;
    cairn_error_t err = {0};
    assert_int_equal(
        cairn__avro_resolver_new(cairn__avro_model_root(r), cairn__avro_model_root(w), &res, &err),
        CAIRN_E_INCOMPATIBLE);
    assert_null(res);
    assert_true(strlen(err.text) > 0);
    cairn__avro_model_free(w);
    cairn__avro_model_free(r);
}

static void test_writer_union_with_a_branch_the_reader_cannot_read_is_refused(void **state)
{
    (void)state;
    cairn_avro_model_t *w = schema("['null','long']");
    cairn_avro_model_t *r = schema("'long'");
    cairn_avro_resolver_t *res = NULL;
    cairn_error_t err = {0};
    assert_int_equal(
        cairn__avro_resolver_new(cairn__avro_model_root(r), cairn__avro_model_root(w), &res, &err),
        CAIRN_E_INCOMPATIBLE);
    assert_null(res);
    cairn__avro_model_free(w);
    cairn__avro_model_free(r);
}

static void test_skipped_data_is_still_bounded(void **state)
{
    (void)state;
    cairn_avro_model_t *w =
        schema(R(F("gone", "{'type':'array','items':['null','string']}") "," F("a", "'int'")));
    cairn_avro_model_t *r = schema(R(F("a", "'int'")));
    cairn_error_t err = {0};
    unsigned char bad_index[] = {0x02, 0x06, 0x00, 0x02};
    assert_null(decode_as(r, w, bad_index, sizeof bad_index, &err));
    assert_non_null(strstr(err.text, "union index 3 out of range"));
    assert_string_equal(err.where, "/gone");
    memset(&err, 0, sizeof err);
    unsigned char huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00};
    assert_null(decode_as(r, w, huge, sizeof huge, &err));
    assert_non_null(strstr(err.text, "block count"));
    memset(&err, 0, sizeof err);
    unsigned char ok[] = {0x04, 0x00, 0x02, 0x02, 0x41, 0x00, 0x0e};
    json_t *v = decode_as(r, w, ok, sizeof ok, &err);
    assert_non_null(v);
    assert_json_eq(v, "{'a':7}");
    json_decref(v);
    cairn__avro_model_free(w);
    cairn__avro_model_free(r);
}

static void test_negative_block_counts_carry_a_size(void **state)
{
    (void)state;
    /* one block of -2 items with its byte size, then the end */
    cairn_avro_model_t *m = schema("{'type':'array','items':'int'}");
    unsigned char data[] = {0x03, 0x04, 0x02, 0x04, 0x00};
    cairn_error_t err = {0};
    json_t *v = decode_as(m, m, data, sizeof data, &err);
    assert_non_null(v);
    assert_json_eq(v, "[1,2]");
    json_decref(v);
    cairn__avro_model_free(m);
}

/* Allocation failure injection: the n-th allocation from now fails. */
static long fail_at = -1;

static void *failing_malloc(size_t n)
{
    if (fail_at == 0)
        return NULL;
    if (fail_at > 0)
        fail_at--;
    return malloc(n);
}

static void *failing_realloc(void *p, size_t n)
{
    if (fail_at == 0)
        return NULL;
    if (fail_at > 0)
        fail_at--;
    return realloc(p, n);
}

static void test_out_of_memory_is_reported_and_leaks_nothing(void **state)
{
    (void)state;
    const char *w = R(F("a", "'int'") "," F("s", "'string'") "," F(
        "l", "{'type':'array','items':{'type':'record','name':'I','fields':[" F(
                 "x", "'bytes'") "]}}") "," F("m", "{'type':'map','values':'long'}"));
    const char *r = R(F("a", "'long'") "," F("s", "['null','string']") "," F(
        "l",
        "{'type':'array','items':{'type':'record','name':'I',"
        "'fields':[" F(
            "x",
            "'string'") "]}}") "," FD("m", "{'type':'map','values':'long'}",
                                      "{}") "," FD("d", "['null','int','long']",
                                                   "null") "," FD("e",
                                                                  "{'type':'record','name':'E','"
                                                                  "fields':[" FD("z", "'bytes'",
                                                                                 "'\u00ff'") "]}",
                                                                  "{}"));
    cairn_avro_model_t *wm = schema(w), *rm = schema(r);
    json_t *v = js("{'a':1,'s':'x','l':[{'x':'p'},{'x':'q'}],'m':{'k':2}}");
    cairn_buf_t b;
    cairn_buf_init(&b, 1 << 20);
    assert_int_equal(cairn__avro_encode(cairn__avro_model_root(wm), v, &b, NULL), CAIRN_OK);
    bool built = false, decoded = false;
    for (long n = 0; n < 1000 && !(built && decoded); n++) {
        cairn_avro_resolver_t *res = NULL;
        json_t *out = NULL;
        cairn_error_t err = {0};
        cairn_set_alloc_funcs(failing_malloc, failing_realloc, free);
        json_set_alloc_funcs(failing_malloc, free);
        fail_at = n;
        cairn_rc_t rc = cairn__avro_resolver_new(cairn__avro_model_root(rm),
                                                 cairn__avro_model_root(wm), &res, &err);
        if (rc == CAIRN_OK) {
            built = true;
            rc = cairn__avro_decode(res, b.data, b.len, &out, &err);
            decoded = rc == CAIRN_OK;
        }
        fail_at = -1;
        cairn_set_alloc_funcs(NULL, NULL, NULL);
        json_set_alloc_funcs(malloc, free);
        if (rc != CAIRN_OK) {
            assert_int_equal(rc, CAIRN_E_NOMEM);
            assert_null(out);
        } else {
            assert_json_eq(out, "{'a':1,'s':'x','l':[{'x':'p'},{'x':'q'}],'m':{'k':2},'d':null,"
                                "'e':{'z':'\u00ff'}}");
        }
        json_decref(out);
        cairn__avro_resolver_free(res);
    }
    assert_true(built && decoded);
    cairn_buf_release(&b);
    json_decref(v);
    cairn__avro_model_free(wm);
    cairn__avro_model_free(rm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_added_field_takes_its_default),
        cmocka_unit_test(test_added_record_field_default_fills_nested_defaults),
        cmocka_unit_test(test_removed_fields_are_skipped),
        cmocka_unit_test(test_renamed_field_is_found_by_reader_alias),
        cmocka_unit_test(test_enum_symbol_unknown_to_reader_takes_the_reader_default),
        cmocka_unit_test(test_promotions),
        cmocka_unit_test(test_bytes_that_are_not_utf8_do_not_read_as_string),
        cmocka_unit_test(test_union_and_non_union),
        cmocka_unit_test(test_nested_records_resolve_recursively),
        cmocka_unit_test(test_arrays_and_maps_of_records),
        cmocka_unit_test(test_recursive_records_share_one_plan),
        cmocka_unit_test(test_members_come_in_reader_field_order),
        cmocka_unit_test(test_incompatible_schemas_are_refused_with_a_reason),
        cmocka_unit_test(test_writer_union_with_a_branch_the_reader_cannot_read_is_refused),
        cmocka_unit_test(test_skipped_data_is_still_bounded),
        cmocka_unit_test(test_negative_block_counts_carry_a_size),
        cmocka_unit_test(test_out_of_memory_is_reported_and_leaks_nothing),
    };
    return cmocka_run_group_tests_name("sdk.avro_codec_resolve", tests, NULL, NULL);
}
