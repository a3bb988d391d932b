/* SPDX-License-Identifier: MIT */
/*
 * test_avro_canonical.c - the written forms of an Avro schema: the canonical
 * string (Confluent's "same schema" test, Avro Java's toString), the
 * normalized form, the spec's Parsing Canonical Form and its CRC-64-AVRO
 * fingerprint (vectors from Avro's share/test/data/schema-tests.txt).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "avro/avro.h"

/* 'quoted' text -> JSON, parsed; fails the test on error. */
static cairn_schema_t *parse_q(const char *quoted)
{
    char *text = strdup(quoted);
    assert_non_null(text);
    for (char *p = text; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    if (cairn_schema_parse("AVRO", text, strlen(text), NULL, 0, &s, &err) != CAIRN_OK)
        fail_msg("cannot parse %s: %s at %s", text, err.text, err.where);
    free(text);
    return s;
}

static char *dq(const char *quoted)
{
    char *s = strdup(quoted);
    assert_non_null(s);
    for (char *p = s; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return s;
}

static void assert_form(const char *got, const char *want_quoted)
{
    char *want = dq(want_quoted);
    if (strcmp(got, want) != 0)
        fail_msg("\n got: %s\nwant: %s", got, want);
    free(want);
}

static void assert_canonical(const char *in, const char *want)
{
    cairn_schema_t *s = parse_q(in);
    assert_form(s->canonical, want);
    assert_int_equal(strlen(s->canonical), s->canonical_len);
    cairn_schema_unref(s);
}

static void assert_same_canonical(const char *a, const char *b, bool same)
{
    cairn_schema_t *x = parse_q(a), *y = parse_q(b);
    if ((strcmp(x->canonical, y->canonical) == 0) != same)
        fail_msg("expected %s canonical strings:\n%s\n%s", same ? "equal" : "different",
                 x->canonical, y->canonical);
    cairn_schema_unref(x);
    cairn_schema_unref(y);
}

#define ORDER                                                                                      \
    "{ 'namespace': 'com.acme', 'type': 'record', 'name': 'Order', 'doc': 'an order',\n"           \
    "  'fields': [\n"                                                                              \
    "    {'name':'id','type':'string','doc':'the id','order':'ascending'},\n"                      \
    "    {'name':'amount','type':{'type':'bytes','logicalType':'decimal','precision':9,"           \
    "'scale':2},'default':'\\u0000'},\n"                                                           \
    "    {'x-prop':1,'name':'status','type':{'type':'enum','name':'Status','symbols':['NEW',"      \
    "'DONE'],'default':'NEW'},'aliases':['state']},\n"                                             \
    "    {'name':'next','type':['null','Order'],'default':null},\n"                                \
    "    {'name':'item','type':{'type':'record','name':'Item','namespace':'com.other',"            \
    "'fields':[{'name':'s','type':'com.acme.Status'}]}}\n"                                         \
    "  ],\n"                                                                                       \
    "  'aliases':['Ord'], 'custom':{'b':1,'a':2} }"

static void test_canonical_keeps_every_attribute_in_java_order(void **state)
{
    (void)state;
    assert_canonical(
        ORDER,
        "{'type':'record','name':'Order','namespace':'com.acme','doc':'an order','fields':["
        "{'name':'id','type':'string','doc':'the id'},"
        "{'name':'amount','type':{'type':'bytes','logicalType':'decimal','precision':9,'scale':2},"
        "'default':'\\u0000'},"
        "{'name':'status','type':{'type':'enum','name':'Status','symbols':['NEW','DONE'],"
        "'default':'NEW'},'aliases':['state'],'x-prop':1},"
        "{'name':'next','type':['null','Order'],'default':null},"
        "{'name':'item','type':{'type':'record','name':'Item','namespace':'com.other','fields':["
        "{'name':'s','type':'com.acme.Status'}]}}],"
        "'custom':{'b':1,'a':2},'aliases':['Ord']}");
}

static void test_normalized_uses_full_names_and_sorted_props(void **state)
{
    (void)state;
    cairn_schema_t *s = parse_q(ORDER);
    assert_form(
        s->normalized,
        "{'type':'record','name':'com.acme.Order','doc':'an order','fields':["
        "{'name':'id','type':'string','doc':'the id'},"
        "{'name':'amount','type':{'type':'bytes','logicalType':'decimal','precision':9,'scale':2},"
        "'default':'\\u0000'},"
        "{'name':'status','type':{'type':'enum','name':'com.acme.Status','symbols':['NEW','DONE'],"
        "'default':'NEW'},'aliases':['state'],'x-prop':1},"
        "{'name':'next','type':['null','com.acme.Order'],'default':null},"
        "{'name':'item','type':{'type':'record','name':'com.other.Item','fields':["
        "{'name':'s','type':'com.acme.Status'}]}}],"
        "'custom':{'a':2,'b':1},'aliases':['com.acme.Ord']}");
    assert_int_equal(strlen(s->normalized), s->normalized_len);
    cairn_schema_unref(s);
}

static void test_pcf_strips_to_parsing_attributes(void **state)
{
    (void)state;
    cairn_schema_t *s = parse_q(ORDER);
    char *pcf = NULL;
    size_t len = 0;
    assert_int_equal(cairn__avro_write(s->model, CAIRN_AVRO_FORM_PCF, &pcf, &len), CAIRN_OK);
    assert_form(pcf, "{'name':'com.acme.Order','type':'record','fields':["
                     "{'name':'id','type':'string'},{'name':'amount','type':'bytes'},"
                     "{'name':'status','type':{'name':'com.acme.Status','type':'enum','symbols':"
                     "['NEW','DONE']}},"
                     "{'name':'next','type':['null','com.acme.Order']},"
                     "{'name':'item','type':{'name':'com.other.Item','type':'record','fields':["
                     "{'name':'s','type':'com.acme.Status'}]}}]}");
    assert_true(s->fingerprint == cairn__avro_crc64(pcf, len));
    cairn_free(pcf);
    cairn_schema_unref(s);
}

static void test_canonical_ignores_whitespace_and_key_order(void **state)
{
    (void)state;
    assert_same_canonical("{'type':'record','name':'R','fields':[{'name':'a','type':'int'}]}",
                          "{ \"fields\" : [ { \"type\" : \"int\" , \"name\" : \"a\" } ] ,\n"
                          "  \"name\" : \"R\" , \"type\" : \"record\" }",
                          true);
}

static void test_canonical_changes_when_a_default_is_added(void **state)
{
    (void)state;
    assert_same_canonical("{'type':'record','name':'R','fields':[{'name':'a','type':'int'}]}",
                          "{'type':'record','name':'R','fields':[{'name':'a','type':'int',"
                          "'default':0}]}",
                          false);
}

static void test_canonical_changes_when_a_doc_is_added(void **state)
{
    (void)state;
    assert_same_canonical("{'type':'record','name':'R','fields':[{'name':'a','type':'int'}]}",
                          "{'type':'record','name':'R','doc':'d','fields':[{'name':'a','type':"
                          "'int'}]}",
                          false);
}

static void test_canonical_changes_with_custom_property(void **state)
{
    (void)state;
    assert_same_canonical("'string'", "{'type':'string','avro.java.string':'String'}", false);
}

static void test_canonical_primitive_object_becomes_string(void **state)
{
    (void)state;
    assert_canonical("{'type':'string'}", "'string'");
    assert_canonical("{'type':'long','logicalType':'timestamp-millis'}",
                     "{'type':'long','logicalType':'timestamp-millis'}");
}

static void test_canonical_drops_ascending_order_keeps_others(void **state)
{
    (void)state;
    assert_same_canonical("{'type':'record','name':'R','fields':[{'name':'a','type':'int'}]}",
                          "{'type':'record','name':'R','fields':[{'name':'a','type':'int',"
                          "'order':'ascending'}]}",
                          true);
    assert_canonical("{'type':'record','name':'R','fields':[{'name':'a','type':'int','order':"
                     "'ignore'}]}",
                     "{'type':'record','name':'R','fields':[{'name':'a','type':'int','order':"
                     "'ignore'}]}");
}

static void test_canonical_splits_dotted_name(void **state)
{
    (void)state;
    assert_canonical("{'type':'record','name':'x.y.A','namespace':'ignored','fields':[]}",
                     "{'type':'record','name':'A','namespace':'x.y','fields':[]}");
}

static void test_canonical_omits_inherited_namespace(void **state)
{
    (void)state;
    assert_canonical(
        "{'type':'record','name':'A','namespace':'x','fields':[{'name':'b','type':"
        "{'type':'fixed','name':'B','namespace':'x','size':2}},{'name':'c','type':'x.B'}]}",
        "{'type':'record','name':'A','namespace':'x','fields':[{'name':'b','type':"
        "{'type':'fixed','name':'B','size':2}},{'name':'c','type':'B'}]}");
}

static void test_canonical_writes_empty_namespace_inside_a_namespace(void **state)
{
    (void)state;
    assert_canonical("{'type':'record','name':'A','namespace':'x','fields':[{'name':'b','type':"
                     "{'type':'record','name':'B','namespace':'','fields':[]}}]}",
                     "{'type':'record','name':'A','namespace':'x','fields':[{'name':'b','type':"
                     "{'type':'record','name':'B','namespace':'','fields':[]}}]}");
}

static void test_canonical_same_for_equivalent_qualification(void **state)
{
    (void)state;
    assert_same_canonical(
        "{'type':'record','name':'A','namespace':'x','fields':[{'name':'e','type':{'type':'enum',"
        "'name':'E','symbols':['Z']}},{'name':'f','type':'E'}]}",
        "{'type':'record','name':'x.A','fields':[{'name':'e','type':{'type':'enum',"
        "'name':'x.E','symbols':['Z']}},{'name':'f','type':'x.E'}]}",
        true);
}

static void test_canonical_escapes_like_jackson(void **state)
{
    (void)state;
    assert_canonical("{'type':'record','name':'R','doc':'a\\\"b\\\\c\\n\\u0001\\u00e9/',"
                     "'fields':[]}",
                     "{'type':'record','name':'R','doc':'a\\\"b\\\\c\\n\\u0001\xc3\xa9/',"
                     "'fields':[]}");
}

static void test_canonical_numbers_keep_their_kind(void **state)
{
    (void)state;
    assert_canonical("{'type':'record','name':'R','fields':[{'name':'d','type':'double',"
                     "'default':0.1},{'name':'e','type':'double','default':1.0},"
                     "{'name':'l','type':'long','default':9007199254740993}]}",
                     "{'type':'record','name':'R','fields':[{'name':'d','type':'double',"
                     "'default':0.1},{'name':'e','type':'double','default':1.0},"
                     "{'name':'l','type':'long','default':9007199254740993}]}");
}

static void test_canonical_is_a_fixed_point(void **state)
{
    (void)state;
    cairn_schema_t *a = parse_q(ORDER);
    cairn_schema_t *b = parse_q(a->canonical);
    cairn_schema_t *c = parse_q(a->normalized);
    assert_string_equal(a->canonical, b->canonical);
    assert_string_equal(a->normalized, c->normalized);
    assert_true(a->fingerprint == b->fingerprint && a->fingerprint == c->fingerprint);
    cairn_schema_unref(a);
    cairn_schema_unref(b);
    cairn_schema_unref(c);
}

static void test_normalized_equal_when_only_property_order_differs(void **state)
{
    (void)state;
    cairn_schema_t *a = parse_q("{'type':'string','b':1,'a':{'y':1,'x':2}}");
    cairn_schema_t *b = parse_q("{'a':{'x':2,'y':1},'type':'string','b':1}");
    assert_string_not_equal(a->canonical, b->canonical);
    assert_string_equal(a->normalized, b->normalized);
    assert_form(a->normalized, "{'type':'string','a':{'x':2,'y':1},'b':1}");
    cairn_schema_unref(a);
    cairn_schema_unref(b);
}

static void test_canonical_does_not_inline_references(void **state)
{
    (void)state;
    cairn_schema_t *dep = parse_q("{'type':'record','name':'Address','namespace':'a','fields':"
                                  "[{'name':'city','type':'string'}]}");
    char *text = dq("{'type':'record','name':'User','namespace':'a','fields':["
                    "{'name':'home','type':'Address'},{'name':'work','type':'a.Address'}]}");
    cairn_schema_ref_t refs[] = {{.name = "a.Address", .schema = dep}};
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_schema_parse("AVRO", text, strlen(text), refs, 1, &s, &err), CAIRN_OK);
    assert_form(s->canonical,
                "{'type':'record','name':'User','namespace':'a','fields':["
                "{'name':'home','type':'Address'},{'name':'work','type':'Address'}]}");
    assert_form(s->normalized, "{'type':'record','name':'a.User','fields':["
                               "{'name':'home','type':'a.Address'},{'name':'work','type':"
                               "'a.Address'}]}");
    /* The referenced schema may go: the parsed one holds its own reference. */
    cairn_schema_unref(dep);
    char *pcf = NULL;
    size_t len;
    assert_int_equal(cairn__avro_write(s->model, CAIRN_AVRO_FORM_PCF, &pcf, &len), CAIRN_OK);
    assert_form(pcf, "{'name':'a.User','type':'record','fields':[{'name':'home','type':"
                     "{'name':'a.Address','type':'record','fields':[{'name':'city','type':"
                     "'string'}]}},{'name':'work','type':'a.Address'}]}");
    cairn_free(pcf);
    free(text);
    cairn_schema_unref(s);
}

/* ---- PCF and fingerprints: Avro's schema-tests.txt ---------------------- */

typedef struct pcf_case {
    const char *in, *pcf;
    int64_t fp; /* as the spec's test file prints it: signed */
    bool has_fp;
} pcf_case_t;

static const pcf_case_t pcf_cases[] = {
    {"'null'", "'null'", 7195948357588979594LL, true},
    {"{'type':'null'}", "'null'", 7195948357588979594LL, true},
    {"'boolean'", "'boolean'", -6970731678124411036LL, true},
    {"'int'", "'int'", 8247732601305521295LL, true},
    {"{'type':'int'}", "'int'", 8247732601305521295LL, true},
    {"'long'", "'long'", -3434872931120570953LL, true},
    {"'float'", "'float'", 5583340709985441680LL, true},
    {"'double'", "'double'", -8181574048448539266LL, true},
    {"'string'", "'string'", -8142146995180207161LL, true},
    {"['int','boolean']", "['int','boolean']", 5392556393470105090LL, true},
    {"{'type':'fixed','name':'foo','size':15}", "{'name':'foo','type':'fixed','size':15}",
     1756455273707447556LL, true},
    {"{'type':'record','name':'foo','fields':[]}", "{'name':'foo','type':'record','fields':[]}",
     -4824392279771201922LL, true},
    {"{'type':'record','name':'foo','fields':[{'name':'f1','type':'boolean'}]}",
     "{'name':'foo','type':'record','fields':[{'name':'f1','type':'boolean'}]}",
     7843277075252814651LL, true},
    {"{'type':'record','name':'PigValue','fields':[{'name':'value','type':['null','int','long',"
     "'PigValue']}]}",
     "{'name':'PigValue','type':'record','fields':[{'name':'value','type':['null','int','long',"
     "'PigValue']}]}",
     -1759257747318642341LL, true},
    {"{'type':'enum','name':'x.e','doc':'d','aliases':['y'],'symbols':['A','B'],'default':'A'}",
     "{'name':'x.e','type':'enum','symbols':['A','B']}", 0, false},
    {"{'type':'map','values':{'type':'array','items':{'type':'string','logicalType':'uuid'}},"
     "'p':1}",
     "{'type':'map','values':{'type':'array','items':'string'}}", 0, false},
    {"{'type':'error','name':'E','namespace':'n','fields':[{'name':'f','type':'int','default':1,"
     "'doc':'x'}]}",
     "{'name':'n.E','type':'record','fields':[{'name':'f','type':'int'}]}", 0, false},
};

static void test_pcf_matches_spec_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pcf_cases / sizeof pcf_cases[0]; i++) {
        const pcf_case_t *c = &pcf_cases[i];
        cairn_schema_t *s = parse_q(c->in);
        char *pcf = NULL;
        size_t len;
        assert_int_equal(cairn__avro_write(s->model, CAIRN_AVRO_FORM_PCF, &pcf, &len), CAIRN_OK);
        assert_form(pcf, c->pcf);
        if (c->has_fp && s->fingerprint != (uint64_t)c->fp)
            fail_msg("case %zu (%s): fingerprint %lld, want %lld", i, c->in,
                     (long long)s->fingerprint, (long long)c->fp);
        cairn_free(pcf);
        cairn_schema_unref(s);
    }
}

static void test_crc64_of_raw_bytes(void **state)
{
    (void)state;
    /* The empty input gives the CRC's initial value. */
    assert_true(cairn__avro_crc64("", 0) == 0xc15d213aa4d7a795ull);
    assert_true(cairn__avro_crc64("\"null\"", 6) == 0x63dd24e7cc258f8aull);
    assert_true(cairn__avro_crc64("\"int\"", 5) == 0x7275d51a3f395c8full);
}

static void test_fingerprint_ignores_doc_and_defaults(void **state)
{
    (void)state;
    cairn_schema_t *a =
        parse_q("{'type':'record','name':'R','fields':[{'name':'a','type':'int'}]}");
    cairn_schema_t *b = parse_q("{'type':'record','name':'R','doc':'x','fields':[{'name':'a',"
                                "'type':'int','default':3}]}");
    assert_true(a->fingerprint == b->fingerprint);
    assert_string_not_equal(a->canonical, b->canonical);
    cairn_schema_unref(a);
    cairn_schema_unref(b);
}

static void test_canonical_reads_textual_float_default_as_number(void **state)
{
    (void)state;
    assert_canonical("{'type':'record','name':'R','fields':[{'name':'d','type':'double','default':"
                     "'1.5'},{'name':'n','type':'float','default':'NaN'}]}",
                     "{'type':'record','name':'R','fields':[{'name':'d','type':'double','default':"
                     "1.5},{'name':'n','type':'float','default':'NaN'}]}");
}

static void test_canonical_writes_order_in_lower_case(void **state)
{
    (void)state;
    assert_canonical("{'type':'record','name':'R','fields':[{'name':'a','type':'int','order':"
                     "'DESCENDING'}]}",
                     "{'type':'record','name':'R','fields':[{'name':'a','type':'int','order':"
                     "'descending'}]}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_keeps_every_attribute_in_java_order),
        cmocka_unit_test(test_normalized_uses_full_names_and_sorted_props),
        cmocka_unit_test(test_pcf_strips_to_parsing_attributes),
        cmocka_unit_test(test_canonical_ignores_whitespace_and_key_order),
        cmocka_unit_test(test_canonical_changes_when_a_default_is_added),
        cmocka_unit_test(test_canonical_changes_when_a_doc_is_added),
        cmocka_unit_test(test_canonical_changes_with_custom_property),
        cmocka_unit_test(test_canonical_primitive_object_becomes_string),
        cmocka_unit_test(test_canonical_drops_ascending_order_keeps_others),
        cmocka_unit_test(test_canonical_splits_dotted_name),
        cmocka_unit_test(test_canonical_omits_inherited_namespace),
        cmocka_unit_test(test_canonical_writes_empty_namespace_inside_a_namespace),
        cmocka_unit_test(test_canonical_same_for_equivalent_qualification),
        cmocka_unit_test(test_canonical_escapes_like_jackson),
        cmocka_unit_test(test_canonical_numbers_keep_their_kind),
        cmocka_unit_test(test_canonical_is_a_fixed_point),
        cmocka_unit_test(test_canonical_reads_textual_float_default_as_number),
        cmocka_unit_test(test_canonical_writes_order_in_lower_case),
        cmocka_unit_test(test_normalized_equal_when_only_property_order_differs),
        cmocka_unit_test(test_canonical_does_not_inline_references),
        cmocka_unit_test(test_pcf_matches_spec_vectors),
        cmocka_unit_test(test_crc64_of_raw_bytes),
        cmocka_unit_test(test_fingerprint_ignores_doc_and_defaults),
    };
    return cmocka_run_group_tests_name("registry.avro_canonical", tests, NULL, NULL);
}
