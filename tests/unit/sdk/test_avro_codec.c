/* SPDX-License-Identifier: MIT */
/*
 * test_avro_codec.c - the SDK's JSON form (docs/JSON-FORM.md) against Avro
 * binary: exact bytes for each type and edge case (longs past 2^53, NaN,
 * bytes as code points, decimals, unions plain and wrapped), round trips,
 * the errors of values that do not fit (with their JSON pointer), the
 * validation list, and every kind of bad binary input the decoder refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_avro_codec_fixture.h"

#define REC(fields) "{'type':'record','name':'R','fields':[" fields "]}"
#define ORDER                                                                                      \
    "{'type':'record','name':'Order','namespace':'shop','fields':["                                \
    "{'name':'id','type':'string'},"                                                               \
    "{'name':'color','type':{'type':'enum','name':'Color','symbols':['RED','GREEN','BLUE']}},"     \
    "{'name':'amount','type':'long'},"                                                             \
    "{'name':'note','type':['null','string'],'default':null},"                                     \
    "{'name':'lines','type':{'type':'array','items':{'type':'record','name':'Line','fields':["     \
    "{'name':'sku','type':'string'},{'name':'qty','type':'int'}]}}}]}"
#define DEC(scale, prec)                                                                           \
    "{'type':'bytes','logicalType':'decimal','precision':" #prec ",'scale':" #scale "}"
#define LIST "{'type':'record','name':'Node','fields':[{'name':'next','type':['null','Node']}]}"

/* ---- exact bytes, one type at a time ----------------------------------- */

static void test_int_and_long_use_zigzag_varints(void **state)
{
    (void)state;
    assert_enc("'int'", "1", "02");
    assert_enc("'int'", "-1", "01");
    assert_enc("'int'", "64", "8001");
    assert_enc("'int'", "-65", "8101");
    assert_enc("'int'", "2147483647", "feffffff0f");
    assert_enc("'long'", "9223372036854775807", "feffffffffffffffff01");
    assert_enc("'long'", "-9223372036854775808", "ffffffffffffffffff01");
}

static void test_long_beyond_2_53_is_exact_and_accepts_digit_strings(void **state)
{
    (void)state;
    assert_enc("'long'", "9007199254740993", "8280808080808020");
    assert_enc("'long'", "'9007199254740993'", "8280808080808020");
    assert_enc("'long'", "'-9223372036854775808'", "ffffffffffffffffff01");
    assert_roundtrip("'long'", "9007199254740993", NULL);
    assert_roundtrip("'long'", "'9223372036854775807'", "9223372036854775807");
    assert_enc_fails("'long'", "'12x'", "", "expected long, got string");
    assert_enc_fails("'long'", "'9223372036854775808'", "", "expected long, got string");
    assert_enc_fails("'long'", "1.5", "", "expected long, got number");
}

static void test_int_rejects_values_outside_int32(void **state)
{
    (void)state;
    assert_enc_fails("'int'", "2147483648", "", "out of the range of int");
    assert_enc_fails("'int'", "'5'", "", "expected int, got string");
}

static void test_floats_are_little_endian_and_nan_infinity_are_strings(void **state)
{
    (void)state;
    assert_enc("'float'", "1.5", "0000c03f");
    assert_enc("'float'", "2", "00000040");
    assert_enc("'double'", "1.5", "000000000000f83f");
    assert_enc("'double'", "'Infinity'", "000000000000f07f");
    assert_enc("'double'", "'-Infinity'", "000000000000f0ff");
    assert_roundtrip("'double'", "'NaN'", NULL);
    assert_roundtrip("'float'", "'-Infinity'", NULL);
    assert_roundtrip("'double'", "-0.25", NULL);
    assert_roundtrip("'double'", "3", "3.0");
    assert_enc_fails("'double'", "'nan'", "", "expected double, got string");
}

static void test_strings_and_booleans(void **state)
{
    (void)state;
    assert_enc("'string'", "'h\u00e9'", "0668c3a9");
    assert_enc("'string'", "''", "00");
    assert_enc("'boolean'", "true", "01");
    assert_enc("'null'", "null", "");
    assert_roundtrip("'string'", "'caf\u00e9 \\u0000 \u4e2d'", NULL);
    assert_enc_fails("'boolean'", "1", "", "expected boolean, got integer");
}

static void test_bytes_are_code_points_up_to_u00ff(void **state)
{
    (void)state;
    assert_enc("'bytes'", "'\\u00ff\\u0000a'", "06ff0061");
    assert_roundtrip("'bytes'", "'\\u0080\\u00c3\\u0001'", NULL);
    assert_enc_fails(REC("{'name':'b','type':'bytes'}"), "{'b':'\\u0100'}", "/b",
                     "code point above U+00FF");
}

static void test_fixed_needs_exactly_size_bytes(void **state)
{
    (void)state;
    const char *f = "{'type':'fixed','name':'F','size':3}";
    assert_enc(f, "'ab\\u00ff'", "6162ff");
    assert_roundtrip(f, "'\\u0000\\u0001\\u0002'", NULL);
    assert_enc_fails(f, "'ab'", "", "expected 3 bytes for fixed F, got 2");
}

static void test_decimal_is_twos_complement_of_the_unscaled_value(void **state)
{
    (void)state;
    assert_enc(DEC(2, 5), "'-12.34'", "04fb2e");
    assert_enc(DEC(2, 5), "'1.5'", "040096");
    assert_enc(DEC(2, 5), "7", "0402bc");
    assert_enc(DEC(2, 5), "'0'", "0200");
    assert_enc(DEC(2, 5), "'-0.05'", "02fb");
    assert_enc(DEC(0, 3), "'-128'", "0280");
    assert_enc(DEC(0, 3), "'-129'", "04ff7f");
    assert_enc(DEC(0, 3), "'128'", "040080");
    assert_roundtrip(DEC(2, 5), "'-12.34'", NULL);
    assert_roundtrip(DEC(2, 5), "'1.5'", "'1.50'");
    assert_roundtrip(DEC(2, 5), "7", "'7.00'");
    assert_roundtrip(DEC(2, 5), "'-0.05'", NULL);
    assert_roundtrip(DEC(0, 38), "'-99999999999999999999999999999999999999'", NULL);
    assert_roundtrip(DEC(30, 38), "'12345678.123456789012345678901234567890'", NULL);
    assert_enc_fails(DEC(2, 5), "'1.234'", "", "more digits after the point than the scale");
    assert_enc_fails(DEC(2, 5), "'1234.5'", "", "more digits than the precision");
    assert_enc_fails(DEC(2, 5), "'1e3'", "", "not a decimal number");
    assert_enc_fails(DEC(2, 5), "1.5", "", "expected decimal, got number");
}

static void test_decimal_on_fixed_is_sign_extended_to_size(void **state)
{
    (void)state;
    const char *f =
        "{'type':'fixed','name':'D','size':4,'logicalType':'decimal','precision':9,'scale':2}";
    assert_enc(f, "'-1.00'", "ffffff9c");
    assert_enc(f, "'1'", "00000064");
    assert_roundtrip(f, "'-1'", "'-1.00'");
    assert_roundtrip(f, "'9999999.99'", NULL);
}

static void test_other_logical_types_are_their_underlying_type(void **state)
{
    (void)state;
    assert_roundtrip("{'type':'long','logicalType':'timestamp-millis'}", "1700000000000", NULL);
    assert_roundtrip("{'type':'int','logicalType':'date'}", "19000", NULL);
    assert_roundtrip("{'type':'string','logicalType':'uuid'}",
                     "'6f1e3c9a-8d2b-4f57-9c1e-2a3b4c5d6e7f'", NULL);
}

static void test_enum_is_its_symbol(void **state)
{
    (void)state;
    const char *e = "{'type':'enum','name':'Color','symbols':['RED','GREEN','BLUE']}";
    assert_enc(e, "'BLUE'", "04");
    assert_roundtrip(e, "'GREEN'", NULL);
    assert_enc_fails(REC("{'name':'c','type':"
                         "{'type':'enum','name':'Color','symbols':['RED']}}"),
                     "{'c':'PURPLE'}", "/c", "\"PURPLE\" is not a symbol of enum Color");
}

static void test_arrays_and_maps_are_blocks_ended_by_zero(void **state)
{
    (void)state;
    assert_enc("{'type':'array','items':'int'}", "[1,2,3]", "0602040600");
    assert_enc("{'type':'array','items':'int'}", "[]", "00");
    assert_enc("{'type':'map','values':'int'}", "{'a':1}", "0202610200");
    assert_enc("{'type':'map','values':'int'}", "{}", "00");
    assert_roundtrip("{'type':'map','values':{'type':'array','items':'string'}}",
                     "{'a':['x','y'],'b':[],'':['']}", NULL);
}

/* ---- records ----------------------------------------------------------- */

static void test_record_fields_in_schema_order_whatever_the_member_order(void **state)
{
    (void)state;
    const char *r = REC("{'name':'a','type':'int'},{'name':'b','type':'string'}");
    assert_enc(r, "{'a':1,'b':'x'}", "020278");
    assert_enc(r, "{'b':'x','a':1}", "020278");
    assert_roundtrip(ORDER,
                     "{'id':'o1','color':'RED','amount':9007199254740993,'note':'gift',"
                     "'lines':[{'sku':'a','qty':1},{'sku':'b','qty':-2}]}",
                     NULL);
}

static void test_missing_field_takes_its_default_on_encode(void **state)
{
    (void)state;
    const char *r =
        REC("{'name':'a','type':'int'},"
            "{'name':'b','type':['null','string'],'default':null},"
            "{'name':'c','type':['string','null'],'default':'zz'},"
            "{'name':'d','type':" DEC(
                1, 4) ",'default':'\\u0000\\u00ff'},"
                      "{'name':'e','type':{'type':'array','items':'long'},'default':[1,2]}");
    assert_enc(r, "{'a':1}",
               "0200"
               "00047a7a"
               "0400ff"
               "04020400");
    assert_roundtrip(r, "{'a':1}", "{'a':1,'b':null,'c':'zz','d':'25.5','e':[1,2]}");
}

static void test_missing_field_without_default_is_named(void **state)
{
    (void)state;
    assert_enc_fails(ORDER, "{'id':'o1','color':'RED','lines':[]}", "/amount",
                     "missing field \"amount\" (no default)");
}

static void test_unknown_member_is_rejected(void **state)
{
    (void)state;
    assert_enc_fails(ORDER, "{'id':'o1','color':'RED','amount':1,'lines':[],'x':1}", "/x",
                     "unknown member \"x\"");
    assert_enc_fails(ORDER,
                     "{'id':'o1','color':'RED','amount':1,'lines':[{'sku':'a','qty':1,'qtty':2}]}",
                     "/lines/0/qtty", "unknown member \"qtty\"");
}

static void test_field_alias_is_not_a_member_name(void **state)
{
    (void)state;
    const char *r = REC("{'name':'a','type':'int','aliases':['old']}");
    assert_enc_fails(r, "{'old':1}", "/a", "missing field \"a\"");
}

static void test_error_path_is_a_json_pointer(void **state)
{
    (void)state;
    assert_enc_fails(ORDER,
                     "{'id':'o1','color':'RED','amount':1,'lines':[{'sku':'a','qty':1},"
                     "{'sku':'b','qty':1},{'sku':5,'qty':1}]}",
                     "/lines/2/sku", "expected string, got integer");
    assert_enc_fails("{'type':'map','values':'int'}", "{'a/b~c':'x'}", "/a~1b~0c",
                     "expected int, got string");
}

static void test_nesting_is_bounded(void **state)
{
    (void)state;
    char *deep = malloc(16 * 100 + 16);
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(deep + n, "{'next':");
    n += (size_t)sprintf(deep + n, "null");
    for (int i = 0; i < 100; i++)
        deep[n++] = '}';
    deep[n] = '\0';
    cairn_avro_model_t *m = schema(LIST);
    json_t *v = js(deep);
    cairn_buf_t b;
    cairn_error_t err = {0};
    cairn_buf_init(&b, 1 << 20);
    assert_int_equal(cairn__avro_encode(cairn__avro_model_root(m), v, &b, &err), CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "nested deeper"));
    cairn_buf_release(&b);
    json_decref(v);
    cairn__avro_model_free(m);
    free(deep);
    assert_roundtrip(LIST, "{'next':{'next':{'next':null}}}", NULL);
}

static void test_buffer_cap_is_reported(void **state)
{
    (void)state;
    cairn_avro_model_t *m = schema("'string'");
    json_t *v = js("'0123456789abcdef'");
    cairn_buf_t b;
    cairn_error_t err = {0};
    cairn_buf_init(&b, 8);
    assert_int_equal(cairn__avro_encode(cairn__avro_model_root(m), v, &b, &err),
                     CAIRN_E_INVALID_TOO_LARGE);
    assert_true(b.len <= 8);
    /* a buffer grown past its cap by an earlier append still holds the cap */
    cairn_buf_reset(&b);
    assert_int_equal(cairn_buf_append(&b, "\0", 1), CAIRN_OK);
    assert_true(b.alloc > 8);
    memset(&err, 0, sizeof err);
    json_t *s7 = js("'0123456'");
    assert_int_equal(cairn__avro_encode(cairn__avro_model_root(m), s7, &b, &err),
                     CAIRN_E_INVALID_TOO_LARGE);
    assert_true(b.len <= 8);
    cairn_buf_reset(&b);
    assert_int_equal(cairn__avro_encode(cairn__avro_model_root(m), s7, &b, &err), CAIRN_OK);
    assert_int_equal(b.len, 8);
    json_decref(s7);
    cairn_buf_release(&b);
    json_decref(v);
    cairn__avro_model_free(m);
}

/* ---- unions ------------------------------------------------------------ */

static void test_union_plain_when_unambiguous(void **state)
{
    (void)state;
    const char *u = "['null','string']";
    assert_enc(u, "null", "00");
    assert_enc(u, "'x'", "020278");
    assert_enc(u, "{'string':'x'}", "020278"); /* wrapped accepted too */
    assert_roundtrip(u, "'x'", NULL);
    assert_roundtrip(u, "{'string':'x'}", "'x'");
    assert_roundtrip(u, "null", NULL);
    assert_roundtrip("['null','long']", "'123'", "123");
    assert_enc("['null','long']", "'123'", "02f601");
}

static void test_union_wrapped_when_two_branches_share_a_json_kind(void **state)
{
    (void)state;
    const char *u = "['null','int','long']";
    assert_enc(u, "5", "020a");
    assert_enc(u, "{'long':5}", "040a");
    assert_enc(u, "1099511627776", "04808080808040");
    assert_roundtrip(u, "5", "{'int':5}");
    assert_roundtrip(u, "{'long':5}", NULL);
    assert_roundtrip(u, "null", NULL);
    assert_roundtrip("['string','bytes']", "'x'", "{'string':'x'}");
    assert_roundtrip("['string','bytes']", "{'bytes':'\\u00ff'}", NULL);
}

static void test_union_plain_object_goes_to_first_record_that_fits(void **state)
{
    (void)state;
    const char *u = "[{'type':'record','name':'A','fields':[{'name':'x','type':'int'}]},"
                    "{'type':'record','name':'B','fields':[{'name':'y','type':'string'}]},"
                    "{'type':'map','values':'string'}]";
    assert_enc(u, "{'x':1}", "0002");
    assert_enc(u, "{'y':'q'}", "020271");
    assert_enc(u, "{'k':'v','w':'z'}",
               "0404026b0276027702"
               "7a00");
    assert_roundtrip(u, "{'y':'q'}", "{'B':{'y':'q'}}");
    assert_roundtrip(u, "{'map':{'k':'v'}}", NULL);
    assert_enc_fails(u, "{'x':'no','y':1}", "", "object fits no branch of union [A, B, map]");
}

static void test_union_named_branches_wrap_by_full_name(void **state)
{
    (void)state;
    const char *u = "['null',{'type':'enum','name':'a.E','symbols':['X']},'string']";
    assert_enc(u, "{'a.E':'X'}", "0200");
    assert_enc(u, "'X'", "040258"); /* plain strings go to string first */
    assert_roundtrip(u, "{'a.E':'X'}", NULL);
    assert_roundtrip(u, "'X'", "{'string':'X'}");
}

static void test_union_single_candidate_reports_its_own_error(void **state)
{
    (void)state;
    const char *r = REC("{'name':'o','type':['null',{'type':'record','name':'In','fields':["
                        "{'name':'n','type':'int'}]}]}");
    assert_enc_fails(r, "{'o':{'n':'s'}}", "/o/n", "expected int, got string");
    assert_enc_fails(r, "{'o':{'In':{'n':true}}}", "/o/In/n", "expected int, got boolean");
}

/* ---- validation -------------------------------------------------------- */

static void test_validate_lists_every_violation_with_its_path(void **state)
{
    (void)state;
    cairn_avro_model_t *m = schema(ORDER);
    json_t *v = js("{'color':'PINK','amount':'x','lines':[{'sku':1,'qty':1},{'qty':2}],'z':0}");
    cairn_strlist_t l;
    cairn_strlist_init(&l);
    assert_int_equal(cairn__avro_validate(cairn__avro_model_root(m), v, &l, 10), CAIRN_E_INVALID);
    const char *want[] = {
        "/id: missing field \"id\" (no default)",
        "/color: \"PINK\" is not a symbol of enum Color",
        "/amount: expected long, got string",
        "/lines/0/sku: expected string, got integer",
        "/lines/1/sku: missing field \"sku\" (no default)",
        "/z: unknown member \"z\"",
    };
    assert_int_equal(l.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.items[i], want[i]);
    cairn_strlist_release(&l);
    assert_int_equal(cairn__avro_validate(cairn__avro_model_root(m), v, &l, 2), CAIRN_E_INVALID);
    assert_int_equal(l.n, 2);
    cairn_strlist_release(&l);
    json_decref(v);
    v = js("{'id':'a','color':'RED','amount':1,'lines':[]}");
    assert_int_equal(cairn__avro_validate(cairn__avro_model_root(m), v, &l, 10), CAIRN_OK);
    assert_int_equal(l.n, 0);
    json_decref(v);
    cairn__avro_model_free(m);
}

/* ---- bad binary input -------------------------------------------------- */

static void test_decode_rejects_truncated_and_trailing_data(void **state)
{
    (void)state;
    assert_dec_fails("'int'", "", "truncated data");
    assert_dec_fails("'int'", "80", "truncated data");
    assert_dec_fails("'int'", "0200", "1 trailing bytes");
    assert_dec_fails("'double'", "00000000", "truncated data");
    assert_dec_fails(ORDER, "02610002", "truncated data");
    assert_dec_fails("{'type':'fixed','name':'F','size':4}", "010203", "truncated data");
}

static void test_decode_rejects_overlong_varints(void **state)
{
    (void)state;
    assert_dec_fails("'int'", "ffffffff7f", "varint overflows int");
    assert_dec_fails("'int'", "ffffffffff01", "varint longer than 5 bytes");
    assert_dec_fails("'long'", "ffffffffffffffffff7f", "varint overflows long");
    assert_dec_fails("'long'", "ffffffffffffffffffff01", "varint longer than 10 bytes");
}

static void test_decode_rejects_lengths_over_the_input(void **state)
{
    (void)state;
    assert_dec_fails("'bytes'", "0a0102", "length 5 exceeds the 2 bytes left");
    assert_dec_fails("'string'", "01", "negative length");
    assert_dec_fails("'string'", "feffffffffffffffff01", "exceeds");
}

static void test_decode_rejects_huge_block_counts_without_allocating(void **state)
{
    (void)state;
    /* 2^60 items: zigzag 2^61 */
    assert_dec_fails("{'type':'array','items':'int'}",
                     "8080808080808080"
                     "20",
                     "block count");
    assert_dec_fails("{'type':'array','items':'null'}",
                     "8080808080808080"
                     "20",
                     "block count");
    assert_dec_fails("{'type':'map','values':'null'}",
                     "8080808080808080"
                     "20",
                     "block count");
    assert_dec_fails("{'type':'array','items':'double'}", "0400000000000000f03f00",
                     "block count 2 exceeds");
}

static void test_decode_rejects_bad_union_and_enum_indexes(void **state)
{
    (void)state;
    assert_dec_fails("['null','int']", "04", "union index 2 out of range");
    assert_dec_fails("['null','int']", "01", "union index -1 out of range");
    assert_dec_fails("{'type':'enum','name':'E','symbols':['A','B','C']}", "06",
                     "enum index 3 out of range");
    assert_dec_fails("'boolean'", "02", "neither 0 nor 1");
}

static void test_decode_rejects_bad_utf8(void **state)
{
    (void)state;
    assert_dec_fails("'string'", "04c328", "not valid UTF-8");
    assert_dec_fails("'string'", "04c0af", "not valid UTF-8");   /* overlong */
    assert_dec_fails("'string'", "06eda080", "not valid UTF-8"); /* surrogate */
    assert_dec_fails("'string'", "02ff", "not valid UTF-8");
    assert_dec_fails("{'type':'map','values':'int'}",
                     "0204c32802"
                     "00",
                     "map key");
}

static void test_decode_error_names_the_member(void **state)
{
    (void)state;
    cairn_avro_model_t *m = schema(ORDER);
    /* id "a", RED, amount 1, note null, lines: 2 items, the second's sku bad */
    unsigned char bytes[64];
    size_t n = unhex("02610002"
                     "00"
                     "04"
                     "027802"
                     "02ff02"
                     "00",
                     bytes);
    cairn_error_t err = {0};
    assert_null(decode_as(m, m, bytes, n, &err));
    assert_string_equal(err.where, "/lines/1/sku");
    assert_non_null(strstr(err.text, "UTF-8"));
    cairn__avro_model_free(m);
}

static void test_decode_bounds_nesting(void **state)
{
    (void)state;
    cairn_avro_model_t *m = schema(LIST);
    unsigned char bytes[200];
    memset(bytes, 0x02, 100); /* 100 times branch Node, then null */
    bytes[100] = 0x00;
    cairn_error_t err = {0};
    assert_null(decode_as(m, m, bytes, 101, &err));
    assert_non_null(strstr(err.text, "nested deeper"));
    cairn__avro_model_free(m);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_decode_of_mutated_input_fails_cleanly(void **state)
{
    (void)state;
    /* A valid ORDER value, then thousands of corruptions of it: each decode
     * either succeeds or says CAIRN_E_INVALID, never crashes (ASan build). */
    cairn_avro_model_t *m = schema(ORDER);
    char *good = enc_hex(m, "{'id':'o1','color':'RED','amount':-5,'note':'n',"
                            "'lines':[{'sku':'a','qty':1},{'sku':'bb','qty':300}]}");
    unsigned char base[64], buf[64];
    size_t n = unhex(good, base);
    free(good);
    cairn_avro_resolver_t *r = NULL;
    assert_int_equal(
        cairn__avro_resolver_new(cairn__avro_model_root(m), cairn__avro_model_root(m), &r, NULL),
        CAIRN_OK);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    size_t ok = 0, invalid = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, base, n);
        size_t len = n;
        int edits = 1 + (int)(xorshift(&seed) % 3);
        for (int e = 0; e < edits; e++)
            buf[xorshift(&seed) % n] = (unsigned char)xorshift(&seed);
        if (xorshift(&seed) % 4 == 0)
            len = (size_t)(xorshift(&seed) % (n + 1));
        json_t *v = NULL;
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn__avro_decode(r, buf, len, &v, &err);
        if (rc == CAIRN_OK) {
            assert_non_null(v);
            ok++;
        } else {
            assert_int_equal(rc, CAIRN_E_INVALID);
            assert_null(v);
            assert_true(err.text[0] != '\0');
            invalid++;
        }
        json_decref(v);
    }
    assert_true(ok > 0 && invalid > 0);
    cairn__avro_resolver_free(r);
    cairn__avro_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_and_long_use_zigzag_varints),
        cmocka_unit_test(test_long_beyond_2_53_is_exact_and_accepts_digit_strings),
        cmocka_unit_test(test_int_rejects_values_outside_int32),
        cmocka_unit_test(test_floats_are_little_endian_and_nan_infinity_are_strings),
        cmocka_unit_test(test_strings_and_booleans),
        cmocka_unit_test(test_bytes_are_code_points_up_to_u00ff),
        cmocka_unit_test(test_fixed_needs_exactly_size_bytes),
        cmocka_unit_test(test_decimal_is_twos_complement_of_the_unscaled_value),
        cmocka_unit_test(test_decimal_on_fixed_is_sign_extended_to_size),
        cmocka_unit_test(test_other_logical_types_are_their_underlying_type),
        cmocka_unit_test(test_enum_is_its_symbol),
        cmocka_unit_test(test_arrays_and_maps_are_blocks_ended_by_zero),
        cmocka_unit_test(test_record_fields_in_schema_order_whatever_the_member_order),
        cmocka_unit_test(test_missing_field_takes_its_default_on_encode),
        cmocka_unit_test(test_missing_field_without_default_is_named),
        cmocka_unit_test(test_unknown_member_is_rejected),
        cmocka_unit_test(test_field_alias_is_not_a_member_name),
        cmocka_unit_test(test_error_path_is_a_json_pointer),
        cmocka_unit_test(test_nesting_is_bounded),
        cmocka_unit_test(test_buffer_cap_is_reported),
        cmocka_unit_test(test_union_plain_when_unambiguous),
        cmocka_unit_test(test_union_wrapped_when_two_branches_share_a_json_kind),
        cmocka_unit_test(test_union_plain_object_goes_to_first_record_that_fits),
        cmocka_unit_test(test_union_named_branches_wrap_by_full_name),
        cmocka_unit_test(test_union_single_candidate_reports_its_own_error),
        cmocka_unit_test(test_validate_lists_every_violation_with_its_path),
        cmocka_unit_test(test_decode_rejects_truncated_and_trailing_data),
        cmocka_unit_test(test_decode_rejects_overlong_varints),
        cmocka_unit_test(test_decode_rejects_lengths_over_the_input),
        cmocka_unit_test(test_decode_rejects_huge_block_counts_without_allocating),
        cmocka_unit_test(test_decode_rejects_bad_union_and_enum_indexes),
        cmocka_unit_test(test_decode_rejects_bad_utf8),
        cmocka_unit_test(test_decode_error_names_the_member),
        cmocka_unit_test(test_decode_bounds_nesting),
        cmocka_unit_test(test_decode_of_mutated_input_fails_cleanly),
    };
    return cmocka_run_group_tests_name("sdk.avro_codec", tests, NULL, NULL);
}
