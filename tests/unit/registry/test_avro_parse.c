/* SPDX-License-Identifier: MIT */
/*
 * test_avro_parse.c - parsing and validating Avro schemas as Avro Java does:
 * one named cmocka test per row (valid schemas parse, each kind of invalid
 * schema gives CAIRN_E_INVALID_SCHEMA with a message and the JSON pointer of
 * the place), plus name resolution, references, logical types and limits.
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

typedef struct row {
    const char *name;
    const char *text; /* single quotes stand for double quotes */
    bool valid;
    const char *want_text;  /* substring of err.text when invalid */
    const char *want_where; /* err.where when invalid, or NULL */
} row_t;

#define REC(fields) "{'type':'record','name':'R','fields':[" fields "]}"

static const row_t rows[] = {
    /* valid */
    {"valid_primitive_string", "'string'", true, NULL, NULL},
    {"valid_primitive_object_with_props", "{'type':'string','avro.java.string':'String'}", true,
     NULL, NULL},
    {"valid_record_with_everything",
     "{'type':'record','name':'a.b.R','doc':'d','aliases':['Old'],'fields':[{'name':'f','type':"
     "'int','doc':'x','default':1,'order':'descending','aliases':['g'],'p':true}]}",
     true, NULL, NULL},
    {"valid_error_type", "{'type':'error','name':'Oops','fields':[]}", true, NULL, NULL},
    {"valid_union_of_two_records", "['null'," REC("") ",{'type':'record','name':'S','fields':[]}]",
     true, NULL, NULL},
    {"valid_union_default_first_branch_null",
     REC("{'name':'u','type':['null','int'],'default':null}"), true, NULL, NULL},
    {"valid_union_default_first_branch_int", REC("{'name':'u','type':['int','null'],'default':1}"),
     true, NULL, NULL},
    {"valid_record_default",
     REC("{'name':'r','type':{'type':'record','name':'In','fields':[{'name':"
         "'a','type':'int'},{'name':'b','type':'int','default':2}]},"
         "'default':{'a':1}}"),
     true, NULL, NULL},
    {"valid_bytes_and_fixed_defaults_are_strings",
     REC("{'name':'b','type':'bytes','default':'\\u00ff'},{'name':'x','type':{'type':'fixed','name'"
         ":"
         "'X','size':2},'default':'ab'}"),
     true, NULL, NULL},
    {"valid_array_and_map_defaults",
     REC("{'name':'a','type':{'type':'array','items':'long'},'default':[1,2]},{'name':'m','type':{"
         "'type':'map','values':'string'},'default':{'k':'v'}}"),
     true, NULL, NULL},
    {"valid_float_default_integer", REC("{'name':'d','type':'double','default':1}"), true, NULL,
     NULL},
    {"valid_named_reference_via_type_key",
     "{'type':'record','name':'R','fields':[{'name':'e','type':{'type':'enum','name':'E','symbols':"
     "['A']}},{'name':'f','type':{'type':'E'}}]}",
     true, NULL, NULL},
    {"valid_null_namespace_fallback",
     "{'type':'record','name':'A','fields':[{'name':'b','type':{'type':'record','name':'B',"
     "'namespace':'x','fields':[{'name':'a','type':['null','A']}]}}]}",
     true, NULL, NULL},
    {"valid_namespace_inherited_by_nested",
     "{'type':'record','name':'A','namespace':'x','fields':[{'name':'b','type':{'type':'enum','"
     "name':"
     "'B','symbols':['Q']}},{'name':'c','type':'x.B'}]}",
     true, NULL, NULL},
    {"valid_invalid_logical_type_ignored", "{'type':'bytes','logicalType':'decimal','scale':2}",
     true, NULL, NULL},
    {"valid_unknown_logical_type_kept", "{'type':'string','logicalType':'ipv4'}", true, NULL, NULL},
    {"valid_fixed_size_zero", "{'type':'fixed','name':'Z','size':0}", true, NULL, NULL},

    /* invalid */
    {"invalid_json", "{'type':", false, "invalid json", NULL},
    {"invalid_empty_text", "", false, "invalid json", NULL},
    {"invalid_unknown_type_name", REC("{'name':'a','type':'Missing'}"), false,
     "unknown type name 'Missing'", "/fields/0/type"},
    {"invalid_unknown_type_object", "{'type':'foo'}", false, "unknown type name 'foo'", NULL},
    {"invalid_type_number", "5", false, "a type must be", NULL},
    {"invalid_no_type", "{'name':'x'}", false, "no type", NULL},
    {"invalid_record_name", "{'type':'record','name':'1abc','fields':[]}", false,
     "invalid name '1abc'", NULL},
    {"invalid_name_with_dash", "{'type':'enum','name':'a-b','symbols':['A']}", false,
     "invalid name", NULL},
    {"invalid_namespace_component", "{'type':'record','name':'R','namespace':'a..b','fields':[]}",
     false, "invalid namespace 'a..b'", NULL},
    {"invalid_dotted_name_component", "{'type':'record','name':'a.9.R','fields':[]}", false,
     "invalid name 'a.9.R'", NULL},
    {"invalid_record_without_name", "{'type':'record','fields':[]}", false, "a record needs a name",
     NULL},
    {"invalid_named_after_primitive", "{'type':'record','name':'int','fields':[]}", false,
     "named after primitives", NULL},
    {"invalid_record_without_fields", "{'type':'record','name':'R'}", false, "no fields",
     "/fields"},
    {"invalid_field_name", REC("{'name':'a-b','type':'int'}"), false, "invalid field name 'a-b'",
     "/fields/0"},
    {"invalid_field_without_name", REC("{'type':'int'}"), false, "field has no name", "/fields/0"},
    {"invalid_field_without_type", REC("{'name':'a'}"), false, "field 'a' has no type",
     "/fields/0"},
    {"invalid_duplicate_field", REC("{'name':'a','type':'int'},{'name':'a','type':'long'}"), false,
     "duplicate field 'a'", "/fields/1"},
    {"invalid_field_order", REC("{'name':'a','type':'int','order':'up'}"), false, "invalid order",
     "/fields/0/order"},
    {"invalid_enum_duplicate_symbol", "{'type':'enum','name':'E','symbols':['A','B','A']}", false,
     "duplicate enum symbol 'A'", "/symbols/2"},
    {"invalid_enum_symbol", "{'type':'enum','name':'E','symbols':['A','b c']}", false,
     "invalid enum symbol 'b c'", "/symbols/1"},
    {"invalid_enum_without_symbols", "{'type':'enum','name':'E'}", false, "no symbols", NULL},
    {"invalid_enum_default_not_symbol", "{'type':'enum','name':'E','symbols':['A'],'default':'B'}",
     false, "not one of its symbols", "/default"},
    {"invalid_union_duplicate_primitive", "['int','null','int']", false,
     "duplicate in union: 'int'", "/2"},
    {"invalid_union_duplicate_logical_same_type",
     "['long',{'type':'long','logicalType':'timestamp-millis'}]", false, "duplicate in union",
     NULL},
    {"invalid_union_duplicate_named", "[" REC("") ",'R']", false, "duplicate in union: 'R'", "/1"},
    {"invalid_nested_union", "['null',['int','string']]", false,
     "may not immediately contain other unions", "/1"},
    {"invalid_redefined_type",
     REC("{'name':'a','type':{'type':'fixed','name':'F','size':1}},{'name':'b','type':{'type':"
         "'fixed','name':'F','size':2}}"),
     false, "can't redefine: 'F'", "/fields/1/type"},
    {"invalid_redefined_record_self", REC("{'name':'a','type':" REC("") "}"), false,
     "can't redefine: 'R'", NULL},
    {"invalid_fixed_negative_size", "{'type':'fixed','name':'F','size':-1}", false,
     "invalid or no size", "/size"},
    {"invalid_fixed_without_size", "{'type':'fixed','name':'F'}", false, "invalid or no size",
     NULL},
    {"invalid_fixed_size_not_integer", "{'type':'fixed','name':'F','size':'4'}", false,
     "invalid or no size", NULL},
    {"invalid_array_without_items", "{'type':'array'}", false, "array has no items", NULL},
    {"invalid_map_without_values", "{'type':'map','items':'int'}", false, "map has no values",
     NULL},
    {"invalid_aliases_not_array", "{'type':'record','name':'R','aliases':'X','fields':[]}", false,
     "aliases must be an array", "/aliases"},
    {"invalid_alias_name", "{'type':'record','name':'R','aliases':['9x'],'fields':[]}", false,
     "invalid alias '9x'", "/aliases/0"},
    {"invalid_default_int_out_of_range", REC("{'name':'a','type':'int','default':2147483648}"),
     false, "invalid default for field 'a'", "/fields/0/default"},
    {"invalid_default_string_for_int", REC("{'name':'a','type':'int','default':'1'}"), false,
     "invalid default", "/fields/0/default"},
    {"invalid_default_null_for_string", REC("{'name':'a','type':'string','default':null}"), false,
     "invalid default", NULL},
    {"invalid_default_float_for_long", REC("{'name':'a','type':'long','default':1.5}"), false,
     "invalid default", NULL},
    {"invalid_default_union_not_first_branch",
     REC("{'name':'u','type':['null','int'],'default':1}"), false, "whose first branch matches",
     "/fields/0/default"},
    {"invalid_default_bytes_not_string", REC("{'name':'b','type':'bytes','default':1}"), false,
     "invalid default", NULL},
    {"invalid_default_boolean", REC("{'name':'b','type':'boolean','default':'true'}"), false,
     "invalid default", NULL},
    {"invalid_default_enum_not_symbol",
     REC("{'name':'e','type':{'type':'enum','name':'E','symbols':['A']},'default':'B'}"), false,
     "invalid default", NULL},
    {"invalid_default_array_element",
     REC("{'name':'a','type':{'type':'array','items':'int'},"
         "'default':[1,'x']}"),
     false, "invalid default", NULL},
    {"invalid_default_map_value",
     REC("{'name':'m','type':{'type':'map','values':'int'},"
         "'default':{'k':true}}"),
     false, "invalid default", NULL},
    {"invalid_default_record_missing_field",
     REC("{'name':'r','type':{'type':'record','name':'In','fields':[{'name':'a','type':'int'}]},"
         "'default':{}}"),
     false, "invalid default", NULL},
    {"invalid_default_record_wrong_field",
     REC("{'name':'r','type':{'type':'record','name':'In','fields':[{'name':'a','type':'int'}]},"
         "'default':{'a':'x'}}"),
     false, "invalid default", NULL},
    {"invalid_default_null_for_null_branch_second",
     REC("{'name':'u','type':['string','null'],'default':null}"), false, "invalid default", NULL},
};

#define NROWS (sizeof rows / sizeof rows[0])

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

static cairn_rc_t parse_text(const char *quoted, cairn_schema_t **out, cairn_error_t *err)
{
    char *text = dq(quoted);
    cairn_rc_t rc = cairn_schema_parse("AVRO", text, strlen(text), NULL, 0, out, err);
    free(text);
    return rc;
}

static void run_row(void **state)
{
    const row_t *r = *state;
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    cairn_rc_t rc = parse_text(r->text, &s, &err);
    if (r->valid) {
        if (rc != CAIRN_OK)
            fail_msg("%s: expected valid, got %s: %s at %s", r->name, cairn_rc_name(rc), err.text,
                     err.where);
        assert_non_null(s);
        assert_non_null(s->canonical);
        /* Every valid schema reads its own data, and its canonical form parses to itself. */
        assert_int_equal(s->format->can_read(s, s, NULL), CAIRN_OK);
        cairn_schema_t *again = NULL;
        assert_int_equal(
            cairn_schema_parse("AVRO", s->canonical, s->canonical_len, NULL, 0, &again, &err),
            CAIRN_OK);
        assert_string_equal(again->canonical, s->canonical);
        cairn_schema_unref(again);
        cairn_schema_unref(s);
        return;
    }
    if (rc != CAIRN_E_INVALID_SCHEMA)
        fail_msg("%s: expected CAIRN_E_INVALID_SCHEMA, got %s", r->name, cairn_rc_name(rc));
    assert_null(s);
    assert_int_equal(err.code, CAIRN_E_INVALID_SCHEMA);
    if (r->want_text && !strstr(err.text, r->want_text))
        fail_msg("%s: message '%s' lacks '%s'", r->name, err.text, r->want_text);
    if (r->want_where && strcmp(err.where, r->want_where) != 0)
        fail_msg("%s: place '%s', want '%s'", r->name, err.where, r->want_where);
}

/* ---- model details --------------------------------------------------- */

static cairn_schema_t *parse_ok(const char *quoted)
{
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    if (parse_text(quoted, &s, &err) != CAIRN_OK)
        fail_msg("cannot parse %s: %s at %s", quoted, err.text, err.where);
    return s;
}

static void test_parse_resolves_names_with_namespaces(void **state)
{
    (void)state;
    cairn_schema_t *s = parse_ok(
        "{'type':'record','name':'A','namespace':'x','fields':["
        "{'name':'b','type':{'type':'enum','name':'B','symbols':['Q']}},"
        "{'name':'c','type':{'type':'fixed','name':'y.C','size':1}},"
        "{'name':'d','type':{'type':'record','name':'D','namespace':'z','fields':[{'name':'e',"
        "'type':'x.B'}]}}]}");
    const cairn_avro_model_t *m = s->model;
    const cairn_avro_node_t *root = cairn__avro_model_root(m);
    assert_string_equal(root->fullname, "x.A");
    assert_string_equal(root->name, "A");
    assert_string_equal(root->fields[0].type->fullname, "x.B");
    assert_string_equal(root->fields[1].type->fullname, "y.C");
    assert_string_equal(root->fields[2].type->fullname, "z.D");
    assert_ptr_equal(root->fields[2].type->fields[0].type, root->fields[0].type);
    assert_ptr_equal(cairn__avro_model_lookup(m, "y.C"), root->fields[1].type);
    assert_null(cairn__avro_model_lookup(m, "C"));
    cairn_schema_unref(s);
}

static void test_parse_short_name_resolves_in_enclosing_namespace_first(void **state)
{
    (void)state;
    cairn_schema_t *s = parse_ok(
        "{'type':'record','name':'Top','fields':["
        "{'name':'a','type':{'type':'fixed','name':'F','size':1}},"
        "{'name':'b','type':{'type':'record','name':'In','namespace':'n','fields':["
        "{'name':'c','type':{'type':'fixed','name':'F','size':2}},{'name':'d','type':'F'}]}},"
        "{'name':'e','type':'F'}]}");
    const cairn_avro_node_t *root = cairn__avro_model_root(s->model);
    const cairn_avro_node_t *in = root->fields[1].type;
    assert_int_equal(in->fields[1].type->size, 2);   /* n.F */
    assert_int_equal(root->fields[2].type->size, 1); /* F */
    cairn_schema_unref(s);
}

static void test_parse_keeps_field_attributes(void **state)
{
    (void)state;
    cairn_schema_t *s = parse_ok(
        "{'type':'record','name':'R','aliases':['p.Old'],'fields':[{'name':'f','type':"
        "'int','doc':'x','default':1,'order':'descending','aliases':['g','h'],'p':true}]}");
    const cairn_avro_node_t *root = cairn__avro_model_root(s->model);
    const cairn_avro_field_t *f = &root->fields[0];
    assert_string_equal(f->doc, "x");
    assert_int_equal(json_integer_value(f->def), 1);
    assert_int_equal(f->order, CAIRN_AVRO_ORDER_DESCENDING);
    assert_int_equal(f->naliases, 2);
    assert_string_equal(f->aliases[1], "h");
    assert_true(json_is_true(json_object_get(f->props, "p")));
    assert_int_equal(root->naliases, 1);
    assert_string_equal(root->aliases[0], "p.Old");
    cairn_schema_unref(s);
}

static void test_parse_logical_types(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        cairn_avro_logical_t lt;
    } cases[] = {
        {"{'type':'bytes','logicalType':'decimal','precision':9,'scale':2}", CAIRN_AVRO_LT_DECIMAL},
        {"{'type':'fixed','name':'D','size':4,'logicalType':'decimal','precision':9}",
         CAIRN_AVRO_LT_DECIMAL},
        {"{'type':'fixed','name':'D','size':4,'logicalType':'decimal','precision':10}",
         CAIRN_AVRO_LT_NONE}, /* 4 bytes hold at most 9 digits */
        {"{'type':'bytes','logicalType':'decimal','precision':2,'scale':3}", CAIRN_AVRO_LT_NONE},
        {"{'type':'bytes','logicalType':'decimal','precision':'9'}", CAIRN_AVRO_LT_NONE},
        {"{'type':'string','logicalType':'uuid'}", CAIRN_AVRO_LT_UUID},
        {"{'type':'int','logicalType':'date'}", CAIRN_AVRO_LT_DATE},
        {"{'type':'long','logicalType':'date'}", CAIRN_AVRO_LT_NONE},
        {"{'type':'int','logicalType':'time-millis'}", CAIRN_AVRO_LT_TIME_MILLIS},
        {"{'type':'long','logicalType':'time-micros'}", CAIRN_AVRO_LT_TIME_MICROS},
        {"{'type':'long','logicalType':'timestamp-millis'}", CAIRN_AVRO_LT_TIMESTAMP_MILLIS},
        {"{'type':'long','logicalType':'timestamp-micros'}", CAIRN_AVRO_LT_TIMESTAMP_MICROS},
        {"{'type':'long','logicalType':'local-timestamp-millis'}",
         CAIRN_AVRO_LT_LOCAL_TIMESTAMP_MILLIS},
        {"{'type':'long','logicalType':'local-timestamp-micros'}",
         CAIRN_AVRO_LT_LOCAL_TIMESTAMP_MICROS},
        {"{'type':'fixed','name':'Dur','size':12,'logicalType':'duration'}",
         CAIRN_AVRO_LT_DURATION},
        {"{'type':'fixed','name':'Dur','size':11,'logicalType':'duration'}", CAIRN_AVRO_LT_NONE},
        {"{'type':'string','logicalType':'ipv4'}", CAIRN_AVRO_LT_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cairn_schema_t *s = parse_ok(cases[i].text);
        const cairn_avro_node_t *n = cairn__avro_model_root(s->model);
        if (n->logical != cases[i].lt)
            fail_msg("%s: logical %d, want %d", cases[i].text, n->logical, cases[i].lt);
        /* Valid or not, logicalType stays a property of the written schema. */
        assert_non_null(strstr(s->canonical, "logicalType"));
        cairn_schema_unref(s);
    }
    cairn_schema_t *s =
        parse_ok("{'type':'bytes','logicalType':'decimal','precision':9,'scale':2}");
    const cairn_avro_node_t *n = cairn__avro_model_root(s->model);
    assert_int_equal(n->precision, 9);
    assert_int_equal(n->scale, 2);
    cairn_schema_unref(s);
}

static void test_parse_uses_named_types_of_references(void **state)
{
    (void)state;
    cairn_schema_t *inner = parse_ok("{'type':'enum','name':'a.Color','symbols':['RED']}");
    char *t1 = dq("{'type':'record','name':'a.Box','fields':[{'name':'c','type':'Color'},"
                  "{'name':'n','type':{'type':'fixed','name':'a.N','size':1}}]}");
    cairn_schema_ref_t r1[] = {{.name = "a.Color", .schema = inner}};
    cairn_schema_t *box = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_schema_parse("AVRO", t1, strlen(t1), r1, 1, &box, &err), CAIRN_OK);

    /* Nested types of a reference are visible too, transitively. */
    char *t2 = dq("{'type':'record','name':'x.Top','fields':[{'name':'b','type':'a.Box'},"
                  "{'name':'n','type':'a.N'},{'name':'c','type':'a.Color'}]}");
    cairn_schema_ref_t r2[] = {{.name = "a.Box", .schema = box}};
    cairn_schema_t *top = NULL;
    assert_int_equal(cairn_schema_parse("AVRO", t2, strlen(t2), r2, 1, &top, &err), CAIRN_OK);
    assert_non_null(cairn__avro_model_lookup(top->model, "a.Color"));

    /* Without the reference the name is unknown. */
    cairn_schema_t *none = NULL;
    assert_int_equal(cairn_schema_parse("AVRO", t2, strlen(t2), NULL, 0, &none, &err),
                     CAIRN_E_INVALID_SCHEMA);
    assert_non_null(strstr(err.text, "unknown type name 'a.Box'"));

    /* A reference's type may not be redefined. */
    char *t3 = dq("{'type':'enum','name':'a.Color','symbols':['BLUE']}");
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_schema_parse("AVRO", t3, strlen(t3), r1, 1, &none, &err),
                     CAIRN_E_INVALID_SCHEMA);
    assert_non_null(strstr(err.text, "can't redefine"));

    cairn_schema_unref(inner);
    cairn_schema_unref(box);
    cairn_schema_unref(top);
    free(t1);
    free(t2);
    free(t3);
}

static char *nested_arrays(int levels)
{
    size_t n = (size_t)levels * 32 + 16;
    char *s = malloc(n);
    assert_non_null(s);
    s[0] = '\0';
    for (int i = 0; i < levels; i++)
        strcat(s, "{\"type\":\"array\",\"items\":");
    strcat(s, "\"int\"");
    for (int i = 0; i < levels; i++)
        strcat(s, "}");
    return s;
}

static void test_parse_bounds_nesting_depth(void **state)
{
    (void)state;
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    char *ok = nested_arrays(CAIRN_AVRO_MAX_DEPTH - 1);
    assert_int_equal(cairn_schema_parse("AVRO", ok, strlen(ok), NULL, 0, &s, &err), CAIRN_OK);
    cairn_schema_unref(s);
    char *deep = nested_arrays(CAIRN_AVRO_MAX_DEPTH + 1);
    assert_int_equal(cairn_schema_parse("AVRO", deep, strlen(deep), NULL, 0, &s, &err),
                     CAIRN_E_INVALID_SCHEMA);
    assert_non_null(strstr(err.text, "nesting exceeds"));
    free(ok);
    free(deep);
}

static void test_parse_text_need_not_be_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = "\"long\"garbage";
    cairn_schema_t *s = NULL;
    assert_int_equal(cairn_schema_parse(NULL, buf, 6, NULL, 0, &s, NULL), CAIRN_OK);
    assert_string_equal(s->canonical, "\"long\"");
    cairn_schema_unref(s);
}

static void test_parse_rejects_nul_inside_names(void **state)
{
    (void)state;
    const char text[] = "{\"type\":\"record\",\"name\":\"A\\u0000B\",\"fields\":[]}";
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_schema_parse(NULL, text, strlen(text), NULL, 0, &s, &err),
                     CAIRN_E_INVALID_SCHEMA);
}

/* Fails the n-th allocation: every failure must come back as NOMEM, leak-free. */
static int fail_at, alloc_count;
static void *failing_malloc(size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return malloc(n);
}
static void *failing_realloc(void *p, size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return realloc(p, n);
}

static void test_parse_survives_every_allocation_failure(void **state)
{
    (void)state;
    char *text = dq("{'type':'record','name':'R','namespace':'n','fields':[{'name':'a','type':"
                    "{'type':'enum','name':'E','symbols':['A','B'],'default':'A'},'aliases':['z']},"
                    "{'name':'b','type':['null',{'type':'array','items':'R'}],'default':null}]}");
    bool succeeded = false;
    for (fail_at = 1; !succeeded && fail_at < 500; fail_at++) {
        alloc_count = 0;
        cairn_set_alloc_funcs(failing_malloc, failing_realloc, free);
        cairn_schema_t *s = NULL;
        cairn_error_t err = {0};
        cairn_rc_t rc = cairn_schema_parse(NULL, text, strlen(text), NULL, 0, &s, &err);
        if (rc == CAIRN_OK) {
            cairn_strlist_t reasons;
            cairn_strlist_init(&reasons);
            rc = s->format->can_read(s, s, &reasons);
            assert_true(rc == CAIRN_OK || rc == CAIRN_E_NOMEM);
            cairn_strlist_release(&reasons);
            succeeded = rc == CAIRN_OK;
        } else {
            assert_int_equal(rc, CAIRN_E_NOMEM);
            assert_null(s);
        }
        cairn_set_alloc_funcs(NULL, NULL, NULL);
        cairn_schema_unref(s);
    }
    assert_true(succeeded);
    free(text);
}

/* Truncated and mutated texts are refused or accepted, never crash or leak (run under ASan). */
static void test_parse_survives_truncated_and_mutated_text(void **state)
{
    (void)state;
    char *text = dq("{'type':'record','name':'R','namespace':'n','fields':[{'name':'a','type':"
                    "{'type':'enum','name':'E','symbols':['A','B'],'default':'A'},'default':'B'},"
                    "{'name':'b','type':['null',{'type':'array','items':'R'}],'default':null},"
                    "{'name':'c','type':{'type':'fixed','name':'F','size':4,'logicalType':"
                    "'decimal','precision':4}},{'name':'d','type':{'type':'map','values':'E'}}]}");
    size_t len = strlen(text);
    static const char subst[] = {'"', '{', '}', '[', ']', ',', ':', '1', 'x', '.'};
    size_t accepted = 0, refused = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        cairn_schema_t *s = NULL;
        cairn_rc_t rc = cairn_schema_parse(NULL, text, cut, NULL, 0, &s, NULL);
        assert_true(rc == CAIRN_OK || rc == CAIRN_E_INVALID_SCHEMA);
        cairn_schema_unref(s);
    }
    for (size_t i = 0; i < len; i++) {
        char saved = text[i];
        for (size_t k = 0; k < sizeof subst; k++) {
            cairn_schema_t *s = NULL;
            text[i] = subst[k];
            cairn_rc_t rc = cairn_schema_parse(NULL, text, len, NULL, 0, &s, NULL);
            assert_true(rc == CAIRN_OK || rc == CAIRN_E_INVALID_SCHEMA);
            if (rc == CAIRN_OK) {
                accepted++;
                assert_int_equal(s->format->can_read(s, s, NULL), CAIRN_OK);
            } else {
                refused++;
            }
            cairn_schema_unref(s);
        }
        text[i] = saved;
    }
    assert_true(accepted > 0 && refused > 0);
    free(text);
}

int main(void)
{
    static const struct CMUnitTest extra[] = {
        cmocka_unit_test(test_parse_resolves_names_with_namespaces),
        cmocka_unit_test(test_parse_short_name_resolves_in_enclosing_namespace_first),
        cmocka_unit_test(test_parse_keeps_field_attributes),
        cmocka_unit_test(test_parse_logical_types),
        cmocka_unit_test(test_parse_uses_named_types_of_references),
        cmocka_unit_test(test_parse_bounds_nesting_depth),
        cmocka_unit_test(test_parse_text_need_not_be_nul_terminated),
        cmocka_unit_test(test_parse_rejects_nul_inside_names),
        cmocka_unit_test(test_parse_survives_every_allocation_failure),
        cmocka_unit_test(test_parse_survives_truncated_and_mutated_text),
    };
    size_t nextra = sizeof extra / sizeof extra[0];
    struct CMUnitTest *tests = calloc(NROWS + nextra, sizeof *tests);
    assert_non_null(tests);
    size_t n = 0;
    for (size_t i = 0; i < NROWS; i++) {
        tests[n++] = (struct CMUnitTest){.name = rows[i].name,
                                         .test_func = run_row,
                                         .initial_state = (void *)(uintptr_t)&rows[i]};
    }
    for (size_t i = 0; i < nextra; i++)
        tests[n++] = extra[i];
    int failed = _cmocka_run_group_tests("registry.avro_parse", tests, n, NULL, NULL);
    free(tests);
    return failed;
}
