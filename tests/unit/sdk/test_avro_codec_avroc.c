/* SPDX-License-Identifier: MIT */
/*
 * test_avro_codec_avroc.c - the codec against a codec nobody here wrote:
 * avro-c 1.11.1 (as a binary codec only, shared/ENVIRONMENT.md). Each case
 * fills an avro_value_t by hand, writes it with avro_value_write, encodes
 * the same value in the JSON form with cairn__avro_encode, requires the same
 * bytes, then decodes avro-c's bytes with cairn__avro_decode and requires
 * the JSON back; finally avro-c reads our bytes and writes them again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <avro.h>

#include "test_avro_codec_fixture.h"

typedef struct ac {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
} ac_t;

static void ac_open(ac_t *a, const char *sch)
{
    char *t = dq(sch);
    if (avro_schema_from_json_length(t, strlen(t), &a->schema) != 0)
        fail_msg("avro-c schema: %s", avro_strerror());
    free(t);
    a->iface = avro_generic_class_from_schema(a->schema);
    assert_non_null(a->iface);
    assert_int_equal(avro_generic_value_new(a->iface, &a->value), 0);
}

static void ac_close(ac_t *a)
{
    avro_value_decref(&a->value);
    avro_value_iface_decref(a->iface);
    avro_schema_decref(a->schema);
}

static avro_value_t field(avro_value_t *rec, const char *name)
{
    avro_value_t f = {NULL, NULL};
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        fail_msg("avro-c has no field %s", name);
    return f;
}

/* The bytes avro-c writes for @p v, as hex. */
static char *ac_hex(avro_value_t *v)
{
    static char buf[4096];
    avro_writer_t w = avro_writer_memory(buf, sizeof buf);
    assert_int_equal(avro_value_write(w, v), 0);
    size_t n = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    return hex(buf, n);
}

/*
 * Compares avro-c's bytes for @p a with ours for @p json, checks that we
 * decode avro-c's bytes to @p json, and that avro-c reads ours back to the
 * same bytes.
 */
static void cross_check(ac_t *a, const char *sch, const char *json)
{
    cairn_avro_model_t *m = schema(sch);
    char *theirs = ac_hex(&a->value);
    char *ours = enc_hex(m, json);
    assert_string_equal(ours, theirs);

    unsigned char bytes[4096];
    size_t n = unhex(theirs, bytes);
    cairn_error_t err = {0};
    json_t *v = decode_as(m, m, bytes, n, &err);
    if (!v)
        fail_msg("decode: %s at %s", err.text, err.where);
    assert_json_eq(v, json);
    json_decref(v);

    avro_value_t again;
    assert_int_equal(avro_generic_value_new(a->iface, &again), 0);
    avro_reader_t r = avro_reader_memory((const char *)bytes, (int64_t)n);
    assert_int_equal(avro_value_read(r, &again), 0);
    avro_reader_free(r);
    assert_true(avro_value_equal(&a->value, &again));
    avro_value_decref(&again);
    free(theirs);
    free(ours);
    cairn__avro_model_free(m);
}

#define PRIMS                                                                                      \
    "{'type':'record','name':'P','fields':[{'name':'n','type':'null'},"                            \
    "{'name':'b','type':'boolean'},{'name':'i','type':'int'},{'name':'l','type':'long'},"          \
    "{'name':'f','type':'float'},{'name':'d','type':'double'},{'name':'s','type':'string'},"       \
    "{'name':'y','type':'bytes'},{'name':'x','type':{'type':'fixed','name':'X','size':4}}]}"

static void fill_prims(ac_t *a, int32_t i, int64_t l, float f, double d, const char *s)
{
    avro_value_t v = field(&a->value, "n");
    avro_value_set_null(&v);
    v = field(&a->value, "b");
    avro_value_set_boolean(&v, 1);
    v = field(&a->value, "i");
    avro_value_set_int(&v, i);
    v = field(&a->value, "l");
    avro_value_set_long(&v, l);
    v = field(&a->value, "f");
    avro_value_set_float(&v, f);
    v = field(&a->value, "d");
    avro_value_set_double(&v, d);
    v = field(&a->value, "s");
    avro_value_set_string(&v, s);
    v = field(&a->value, "y");
    char bytes[] = {0x00, (char)0xff, 0x41};
    avro_value_set_bytes(&v, bytes, sizeof bytes);
    v = field(&a->value, "x");
    char fx[] = {0x01, (char)0x80, 0x7f, (char)0xfe};
    avro_value_set_fixed(&v, fx, sizeof fx);
}

static void test_primitives_match_avro_c(void **state)
{
    (void)state;
    ac_t a;
    ac_open(&a, PRIMS);
    fill_prims(&a, 42, 9007199254740993LL, 1.5f, -2.25, "caf\u00e9");
    cross_check(&a, PRIMS,
                "{'n':null,'b':true,'i':42,'l':9007199254740993,'f':1.5,'d':-2.25,"
                "'s':'caf\u00e9','y':'\\u0000\\u00ff\\u0041','x':'\\u0001\\u0080\\u007f\\u00fe'}");
    fill_prims(&a, INT32_MIN, INT64_MIN, -0.0f, 1e300, "");
    cross_check(&a, PRIMS,
                "{'n':null,'b':true,'i':-2147483648,'l':-9223372036854775808,'f':-0.0,'d':1e300,"
                "'s':'','y':'\\u0000\\u00ffA','x':'\\u0001\\u0080\\u007f\\u00fe'}");
    fill_prims(&a, INT32_MAX, INT64_MAX, 1e10f, 5e-324, "x");
    cross_check(&a, PRIMS,
                "{'n':null,'b':true,'i':2147483647,'l':9223372036854775807,"
                "'f':1e10,'d':5e-324,"
                "'s':'x','y':'\\u0000\\u00ffA','x':'\\u0001\\u0080\\u007f\\u00fe'}");
    ac_close(&a);
}

#define EVENT                                                                                      \
    "{'type':'record','name':'Placed','namespace':'shop','fields':["                               \
    "{'name':'id','type':'string'},{'name':'at','type':'long'},"                                   \
    "{'name':'status','type':{'type':'enum','name':'Status','symbols':['NEW','PAID','SHIPPED']}}," \
    "{'name':'note','type':['null','string']},"                                                    \
    "{'name':'n','type':['null','int','long']},"                                                   \
    "{'name':'lines','type':{'type':'array','items':{'type':'record','name':'Line','fields':["     \
    "{'name':'sku','type':'string'},{'name':'qty','type':'int'},{'name':'price','type':'double'}"  \
    "]}}},"                                                                                        \
    "{'name':'tags','type':{'type':'map','values':'string'}}]}"

static void test_event_record_matches_avro_c(void **state)
{
    (void)state;
    ac_t a;
    ac_open(&a, EVENT);
    avro_value_t v = field(&a.value, "id"), b, it, e;
    avro_value_set_string(&v, "ord-1");
    v = field(&a.value, "at");
    avro_value_set_long(&v, 1700000000123LL);
    v = field(&a.value, "status");
    avro_value_set_enum(&v, 1);
    v = field(&a.value, "note");
    avro_value_set_branch(&v, 1, &b);
    avro_value_set_string(&b, "leave at door");
    v = field(&a.value, "n");
    avro_value_set_branch(&v, 2, &b);
    avro_value_set_long(&b, -5);
    v = field(&a.value, "lines");
    for (int i = 0; i < 3; i++) {
        char sku[8];
        snprintf(sku, sizeof sku, "sku-%d", i);
        avro_value_append(&v, &it, NULL);
        e = field(&it, "sku");
        avro_value_set_string(&e, sku);
        e = field(&it, "qty");
        avro_value_set_int(&e, i + 1);
        e = field(&it, "price");
        avro_value_set_double(&e, 9.5 * (i + 1));
    }
    v = field(&a.value, "tags");
    avro_value_add(&v, "channel", &e, NULL, NULL);
    avro_value_set_string(&e, "web");
    avro_value_add(&v, "region", &e, NULL, NULL);
    avro_value_set_string(&e, "eu");
    cross_check(&a, EVENT,
                "{'id':'ord-1','at':1700000000123,'status':'PAID','note':'leave at door',"
                "'n':{'long':-5},'lines':[{'sku':'sku-0','qty':1,'price':9.5},"
                "{'sku':'sku-1','qty':2,'price':19.0},{'sku':'sku-2','qty':3,'price':28.5}],"
                "'tags':{'channel':'web','region':'eu'}}");
    /* the other branches, empty array and map */
    v = field(&a.value, "note");
    avro_value_set_branch(&v, 0, &b);
    avro_value_set_null(&b);
    v = field(&a.value, "n");
    avro_value_set_branch(&v, 1, &b);
    avro_value_set_int(&b, 7);
    v = field(&a.value, "lines");
    avro_value_reset(&v);
    v = field(&a.value, "tags");
    avro_value_reset(&v);
    cross_check(&a, EVENT,
                "{'id':'ord-1','at':1700000000123,'status':'PAID','note':null,"
                "'n':{'int':7},'lines':[],'tags':{}}");
    ac_close(&a);
}

static void test_nested_arrays_and_maps_match_avro_c(void **state)
{
    (void)state;
    const char *sch = "{'type':'map','values':{'type':'array','items':['null','double']}}";
    ac_t a;
    ac_open(&a, sch);
    avro_value_t arr, it, br;
    avro_value_add(&a.value, "k", &arr, NULL, NULL);
    avro_value_append(&arr, &it, NULL);
    avro_value_set_branch(&it, 1, &br);
    avro_value_set_double(&br, 0.5);
    avro_value_append(&arr, &it, NULL);
    avro_value_set_branch(&it, 0, &br);
    avro_value_set_null(&br);
    avro_value_add(&a.value, "empty", &arr, NULL, NULL);
    cross_check(&a, sch, "{'k':[0.5,null],'empty':[]}");
    ac_close(&a);
}

static void test_named_union_branches_match_avro_c(void **state)
{
    (void)state;
    const char *sch =
        "{'type':'array','items':['null',"
        "{'type':'record','name':'a.Pt','fields':[{'name':'x','type':'int'}]},"
        "{'type':'enum','name':'a.E','symbols':['ON','OFF']},"
        "{'type':'fixed','name':'a.F','size':2},'string',{'type':'map','values':'bytes'}]}";
    ac_t a;
    ac_open(&a, sch);
    avro_value_t it, br, f;
    avro_value_append(&a.value, &it, NULL);
    avro_value_set_branch(&it, 1, &br);
    f = field(&br, "x");
    avro_value_set_int(&f, -3);
    avro_value_append(&a.value, &it, NULL);
    avro_value_set_branch(&it, 2, &br);
    avro_value_set_enum(&br, 1);
    avro_value_append(&a.value, &it, NULL);
    avro_value_set_branch(&it, 3, &br);
    char fx[] = {0x01, (char)0xff};
    avro_value_set_fixed(&br, fx, sizeof fx);
    avro_value_append(&a.value, &it, NULL);
    avro_value_set_branch(&it, 4, &br);
    avro_value_set_string(&br, "OFF");
    avro_value_append(&a.value, &it, NULL);
    avro_value_set_branch(&it, 5, &br);
    avro_value_add(&br, "k", &f, NULL, NULL);
    char by[] = {0x00, (char)0x80};
    avro_value_set_bytes(&f, by, sizeof by);
    avro_value_append(&a.value, &it, NULL);
    avro_value_set_branch(&it, 0, &br);
    avro_value_set_null(&br);
    /* enum, fixed and string share the JSON kind string, record and map
     * object: every value of this union is wrapped, by full name */
    cross_check(&a, sch,
                "[{'a.Pt':{'x':-3}},{'a.E':'OFF'},{'a.F':'\\u0001\\u00ff'},{'string':'OFF'},"
                "{'map':{'k':'\\u0000\\u0080'}},null]");
    ac_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives_match_avro_c),
        cmocka_unit_test(test_event_record_matches_avro_c),
        cmocka_unit_test(test_nested_arrays_and_maps_match_avro_c),
        cmocka_unit_test(test_named_union_branches_match_avro_c),
    };
    return cmocka_run_group_tests_name("sdk.avro_codec_avroc", tests, NULL, NULL);
}
