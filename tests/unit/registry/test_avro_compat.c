/* SPDX-License-Identifier: MIT */
/*
 * test_avro_compat.c - Avro schema resolution as a compatibility check
 * (reader vs writer), one named cmocka test per row of a table. Schemas are
 * written with single quotes for legibility and turned into JSON at run
 * time; `want` is a text that must appear among the reasons of a failing
 * row (every failing row names the error type it expects).
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
    const char *reader;
    const char *writer;
    bool ok;
    const char *want; /* substring of one reason when !ok */
} row_t;

/* A record R with the given fields; F(...) one field, FD(...) one with a default. */
#define REC(fields)         "{'type':'record','name':'R','fields':[" fields "]}"
#define RECN(name, fields)  "{'type':'record','name':'" name "','fields':[" fields "]}"
#define F(name, type)       "{'name':'" name "','type':" type "}"
#define FD(name, type, def) "{'name':'" name "','type':" type ",'default':" def "}"
#define ENUM(syms)          "{'type':'enum','name':'E','symbols':[" syms "]}"
#define LIST(extra)                                                                                \
    "{'type':'record','name':'Node','fields':[{'name':'v','type':'int'}," extra                    \
    "{'name':'next','type':['null','Node'],'default':null}]}"

static const row_t rows[] = {
    /* records of at least CAIRN_AVRO_FIELD_INDEX_MIN fields: the writer's
     * fields are found through the by-name index, in any order */
    {"wide_record_reads_reordered_writer",
     REC(F("a", "'int'") "," F("b", "'int'") "," F("c", "'int'") "," F("d", "'int'") "," F(
         "e", "'int'") "," F("f", "'int'") "," F("g", "'int'") "," F("h", "'long'") "," F("i",
                                                                                          "'int'")),
     REC(F("i", "'int'") "," F("h", "'int'") "," F("g", "'int'") "," F("f", "'int'") "," F(
         "e", "'int'") "," F("d", "'int'") "," F("c", "'int'") "," F("b", "'int'") "," F("a",
                                                                                         "'int'")),
     true, NULL},
    {"wide_record_rejects_field_missing_from_reordered_writer",
     REC(F("a", "'int'") "," F("b", "'int'") "," F("c", "'int'") "," F("d", "'int'") "," F(
         "e", "'int'") "," F("f", "'int'") "," F("g", "'int'") "," F("h", "'int'") "," F("z",
                                                                                         "'int'")),
     REC(F("h", "'int'") "," F("g", "'int'") "," F("f", "'int'") "," F("e", "'int'") "," F(
         "d", "'int'") "," F("c", "'int'") "," F("b", "'int'") "," F("a", "'int'") "," F("y",
                                                                                         "'int'")),
     false, "The field 'z' at path '/fields/8' in the new schema has no default value"},
    {"wide_record_rejects_type_change_found_by_name",
     REC(F("a", "'int'") "," F("b", "'int'") "," F("c", "'int'") "," F("d", "'int'") "," F(
         "e", "'int'") "," F("f", "'int'") "," F("g", "'int'") "," F("h", "'int'") "," F("i",
                                                                                         "'int'")),
     REC(F("i", "'int'") "," F("h", "'int'") "," F("g", "'int'") "," F("f", "'int'") "," F(
         "e", "'int'") "," F("d", "'int'") "," F("c", "'string'") "," F("b",
                                                                        "'int'") "," F("a",
                                                                                       "'int'")),
     false, "writer type: STRING"},
    /* primitives and promotions, both directions */
    {"int_reads_int", "'int'", "'int'", true, NULL},
    {"null_reads_null", "'null'", "'null'", true, NULL},
    {"boolean_reads_boolean", "'boolean'", "'boolean'", true, NULL},
    {"long_reads_int", "'long'", "'int'", true, NULL},
    {"int_rejects_long", "'int'", "'long'", false,
     "{errorType:'TYPE_MISMATCH', description:'The type (path '/') of a field in the new schema "
     "does not match with the old schema', additionalInfo:'reader type: INT not compatible with "
     "writer type: LONG'}"},
    {"float_reads_int", "'float'", "'int'", true, NULL},
    {"int_rejects_float", "'int'", "'float'", false, "writer type: FLOAT"},
    {"double_reads_int", "'double'", "'int'", true, NULL},
    {"int_rejects_double", "'int'", "'double'", false, "reader type: INT not compatible"},
    {"float_reads_long", "'float'", "'long'", true, NULL},
    {"long_rejects_float", "'long'", "'float'", false, "reader type: LONG"},
    {"double_reads_long", "'double'", "'long'", true, NULL},
    {"long_rejects_double", "'long'", "'double'", false, "writer type: DOUBLE"},
    {"double_reads_float", "'double'", "'float'", true, NULL},
    {"float_rejects_double", "'float'", "'double'", false, "reader type: FLOAT"},
    {"string_reads_bytes", "'string'", "'bytes'", true, NULL},
    {"bytes_reads_string", "'bytes'", "'string'", true, NULL},
    {"string_rejects_int", "'string'", "'int'", false, "TYPE_MISMATCH"},
    {"int_rejects_string", "'int'", "'string'", false, "writer type: STRING"},
    {"boolean_rejects_int", "'boolean'", "'int'", false, "reader type: BOOLEAN"},
    {"null_rejects_string", "'null'", "'string'", false, "reader type: NULL"},
    {"string_rejects_null", "'string'", "'null'", false, "writer type: NULL"},
    {"long_rejects_string", "'long'", "'string'", false, "TYPE_MISMATCH"},

    /* records: fields added and removed */
    {"record_reader_added_field_with_default", REC(F("a", "'int'") "," FD("b", "'string'", "'x'")),
     REC(F("a", "'int'")), true, NULL},
    {"record_reader_added_field_without_default", REC(F("a", "'int'") "," F("f2", "'string'")),
     REC(F("a", "'int'")), false,
     "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'f2' at path "
     "'/fields/1' in the new schema has no default value and is missing in the old schema', "
     "additionalInfo:'f2'}"},
    {"record_writer_extra_field_is_skipped", REC(F("a", "'int'")),
     REC(F("a", "'int'") "," F("b", "'string'")), true, NULL},
    {"record_removed_field_that_had_default", REC(F("a", "'int'")),
     REC(F("a", "'int'") "," FD("b", "'string'", "'x'")), true, NULL},
    {"record_every_missing_field_reported",
     REC(F("a", "'int'") "," F("b", "'int'") "," F("c", "'int'")), REC(F("a", "'int'")), false,
     "additionalInfo:'c'"},
    {"record_field_order_changed", REC(F("b", "'string'") "," F("a", "'int'")),
     REC(F("a", "'int'") "," F("b", "'string'")), true, NULL},
    {"record_field_promoted", REC(F("a", "'long'")), REC(F("a", "'int'")), true, NULL},
    {"record_field_narrowed", REC(F("a", "'int'")), REC(F("a", "'long'")), false,
     "The type (path '/fields/0/type') of a field"},
    {"record_empty_reads_any_same_name", REC(""), REC(F("a", "'int'")), true, NULL},
    {"record_added_optional_field_null_default",
     REC(F("a", "'int'") "," FD("o", "['null','string']", "null")), REC(F("a", "'int'")), true,
     NULL},
    {"record_optional_field_made_required", REC(F("a", "'int'")), REC(F("a", "['null','int']")),
     false, "writer type: NULL"},
    {"record_required_field_made_optional", REC(F("a", "['null','int']")), REC(F("a", "'int'")),
     true, NULL},

    /* aliases and names */
    {"field_alias_reads_renamed_field", REC("{'name':'b','type':'int','aliases':['a']}"),
     REC(F("a", "'int'")), true, NULL},
    {"field_renamed_without_alias", REC(F("b", "'int'")), REC(F("a", "'int'")), false,
     "additionalInfo:'b'"},
    {"writer_field_alias_does_not_count", REC(F("b", "'int'")),
     REC("{'name':'a','type':'int','aliases':['b']}"), false, "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"record_renamed", RECN("S", F("a", "'int'")), REC(F("a", "'int'")), false,
     "{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path "
     "'/name')', additionalInfo:'expected: R'}"},
    {"record_renamed_with_alias_of_full_name",
     "{'type':'record','name':'S','namespace':'n','aliases':['o.R'],'fields':[{'name':'a','type':'"
     "int'}]}",
     "{'type':'record','name':'R','namespace':'o','fields':[{'name':'a','type':'int'}]}", true,
     NULL},
    {"record_renamed_with_alias_of_short_name",
     "{'type':'record','name':'S','aliases':['R'],'fields':[{'name':'a','type':'int'}]}",
     "{'type':'record','name':'R','namespace':'o','fields':[{'name':'a','type':'int'}]}", true,
     NULL},
    {"record_namespace_only_change",
     "{'type':'record','name':'R','namespace':'new.ns','fields':[{'name':'a','type':'int'}]}",
     "{'type':'record','name':'R','namespace':'old.ns','fields':[{'name':'a','type':'int'}]}", true,
     NULL},
    {"record_renamed_reports_fields_too", RECN("S", F("a", "'int'") "," F("z", "'int'")),
     REC(F("a", "'int'")), false, "additionalInfo:'z'"},
    {"writer_alias_does_not_rename_record", RECN("S", F("a", "'int'")),
     "{'type':'record','name':'R','aliases':['S'],'fields':[{'name':'a','type':'int'}]}", false,
     "NAME_MISMATCH"},

    /* enums */
    {"enum_reader_added_symbol", ENUM("'A','B','C'"), ENUM("'A','B'"), true, NULL},
    {"enum_writer_symbol_missing_in_reader", ENUM("'A','B'"), ENUM("'A','B','C'"), false,
     "{errorType:'MISSING_ENUM_SYMBOLS', description:'The new schema is missing enum symbols "
     "'[C]' at path '/symbols' in the old schema', additionalInfo:'[C]'}"},
    {"enum_missing_symbols_listed_sorted", ENUM("'A'"), ENUM("'D','A','C'"), false,
     "additionalInfo:'[C, D]'"},
    {"enum_missing_symbol_with_reader_default",
     "{'type':'enum','name':'E','symbols':['A','B','U'],'default':'U'}", ENUM("'A','B','C'"), true,
     NULL},
    {"enum_writer_default_does_not_help", ENUM("'A','B'"),
     "{'type':'enum','name':'E','symbols':['A','B','C'],'default':'A'}", false,
     "MISSING_ENUM_SYMBOLS"},
    {"enum_renamed", "{'type':'enum','name':'F','symbols':['A']}", ENUM("'A'"), false,
     "expected: E"},
    {"enum_rejects_string", ENUM("'A'"), "'string'", false, "reader type: ENUM"},
    {"string_rejects_enum", "'string'", ENUM("'A'"), false, "writer type: ENUM"},
    {"enum_in_field_missing_symbol_path", REC(F("e", ENUM("'A'"))), REC(F("e", ENUM("'A','B'"))),
     false, "at path '/fields/0/type/symbols'"},
    {"missing_enum_field_with_enum_default_compares_types",
     REC(F(
         "a",
         "'int'") ",{'name':'e','type':{'type':'enum','name':'E','symbols':['A'],'default':'A'}}"),
     REC(F("a", "'int'")), false, "reader type: ENUM not compatible with writer type: RECORD"},

    /* fixed */
    {"fixed_same", "{'type':'fixed','name':'X','size':4}", "{'type':'fixed','name':'X','size':4}",
     true, NULL},
    {"fixed_size_changed", "{'type':'fixed','name':'X','size':4}",
     "{'type':'fixed','name':'X','size':8}", false,
     "{errorType:'FIXED_SIZE_MISMATCH', description:'The size of FIXED type field at path "
     "'/size' in the new schema does not match with the old schema', additionalInfo:'expected: "
     "8, found: 4'}"},
    {"fixed_renamed", "{'type':'fixed','name':'Y','size':4}",
     "{'type':'fixed','name':'X','size':4}", false, "NAME_MISMATCH"},
    {"fixed_renamed_with_alias", "{'type':'fixed','name':'Y','aliases':['X'],'size':4}",
     "{'type':'fixed','name':'X','size':4}", true, NULL},
    {"fixed_rejects_bytes", "{'type':'fixed','name':'X','size':4}", "'bytes'", false,
     "reader type: FIXED not compatible with writer type: BYTES"},
    {"bytes_rejects_fixed", "'bytes'", "{'type':'fixed','name':'X','size':4}", false,
     "writer type: FIXED"},

    /* unions on each side */
    {"union_reader_contains_writer", "['null','int']", "'int'", true, NULL},
    {"union_reader_promotes_writer", "['null','long']", "'int'", true, NULL},
    {"union_reader_lacks_writer", "['null','int']", "'string'", false,
     "{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type inside a "
     "union field at path '/' in the old schema', additionalInfo:'reader union lacking writer "
     "type: STRING'}"},
    {"union_writer_all_branches_readable", "'long'", "['int','long']", true, NULL},
    {"union_writer_branch_unreadable", "'int'", "['null','int']", false,
     "The type (path '/0') of a field"},
    {"union_to_union_superset", "['null','int','string']", "['null','int']", true, NULL},
    {"union_to_union_missing_branch", "['null','int']", "['null','int','string']", false,
     "union field at path '/2' in the old schema', additionalInfo:'reader union lacking writer "
     "type: STRING'"},
    {"union_branch_order_changed", "['string','null']", "['null','string']", true, NULL},
    {"union_to_union_with_promotion", "['null','double']", "['null','int','float']", true, NULL},
    {"union_reader_record_branch_by_name",
     "['null'," RECN("A", F("x", "'int'")) "," RECN("B", F("y", "'int'")) "]",
     RECN("B", F("y", "'int'")), true, NULL},
    {"union_reader_lacks_record", "['null','string']", REC(F("a", "'int'")), false,
     "reader union lacking writer type: RECORD"},
    {"union_reader_record_branch_incompatible",
     "['null'," REC(F("a", "'int'") "," F("b", "'int'")) "]", REC(F("a", "'int'")), false,
     "MISSING_UNION_BRANCH"},
    {"union_field_path_names_branch", REC(F("u", "['null','int']")),
     REC(F("u", "['null','int','string']")), false, "at path '/fields/0/type/2'"},
    {"union_empty_writer_is_readable", "'int'", "[]", true, NULL},

    /* arrays, maps and nesting */
    {"array_items_promoted", "{'type':'array','items':'long'}", "{'type':'array','items':'int'}",
     true, NULL},
    {"array_items_narrowed", "{'type':'array','items':'int'}", "{'type':'array','items':'long'}",
     false, "The type (path '/items') of a field"},
    {"map_values_promoted", "{'type':'map','values':'double'}", "{'type':'map','values':'float'}",
     true, NULL},
    {"map_values_mismatch", "{'type':'map','values':'int'}", "{'type':'map','values':'string'}",
     false, "(path '/values')"},
    {"array_rejects_map", "{'type':'array','items':'int'}", "{'type':'map','values':'int'}", false,
     "reader type: ARRAY not compatible with writer type: MAP"},
    {"map_rejects_array", "{'type':'map','values':'int'}", "{'type':'array','items':'int'}", false,
     "reader type: MAP"},
    {"array_of_records_new_field_without_default",
     REC(F("xs", "{'type':'array','items':" RECN("I", F("a", "'int'") "," F("b", "'int'")) "}")),
     REC(F("xs", "{'type':'array','items':" RECN("I", F("a", "'int'")) "}")), false,
     "at path '/fields/0/type/items/fields/1'"},
    {"map_of_arrays_nested_mismatch", "{'type':'map','values':{'type':'array','items':'int'}}",
     "{'type':'map','values':{'type':'array','items':'bytes'}}", false, "(path '/values/items')"},
    {"nested_record_field_mismatch", REC(F("n", RECN("N", F("x", "'int'")))),
     REC(F("n", RECN("N", F("x", "'string'")))), false, "(path '/fields/0/type/fields/0/type')"},
    {"nested_record_field_added_with_default",
     REC(F("n", RECN("N", F("x", "'int'") "," FD("y", "'int'", "0")))),
     REC(F("n", RECN("N", F("x", "'int'")))), true, NULL},
    {"named_type_used_by_reference", REC(F("a", ENUM("'A','B'")) "," F("b", "'E'")),
     REC(F("a", ENUM("'A','B'")) "," F("b", "'E'")), true, NULL},
    {"named_type_reference_incompatible_in_second_use",
     REC(F("a", ENUM("'A','B'")) "," F("b", "'E'")),
     REC(F("a", ENUM("'A','B','C'")) "," F("b", "'E'")), false, "MISSING_ENUM_SYMBOLS"},

    /* recursive types */
    {"recursive_list_identical", LIST(""), LIST(""), true, NULL},
    {"recursive_list_reader_field_with_default", LIST("{'name':'w','type':'int','default':0},"),
     LIST(""), true, NULL},
    {"recursive_list_reader_field_without_default", LIST("{'name':'w','type':'int'},"), LIST(""),
     false, "additionalInfo:'w'"},
    {"recursive_list_writer_extra_field", LIST(""), LIST("{'name':'w','type':'int'},"), true, NULL},
    {"recursive_tree_in_array_and_map",
     "{'type':'record','name':'T','fields':[{'name':'kids','type':{'type':'array','items':'T'}},{'"
     "name':'m','type':{'type':'map','values':'T'}},{'name':'v','type':'long'}]}",
     "{'type':'record','name':'T','fields':[{'name':'kids','type':{'type':'array','items':'T'}},{'"
     "name':'m','type':{'type':'map','values':'T'}},{'name':'v','type':'int'}]}",
     true, NULL},
    {"recursive_tree_narrowed",
     "{'type':'record','name':'T','fields':[{'name':'kids','type':{'type':'array','items':'T'}},{'"
     "name':'v','type':'int'}]}",
     "{'type':'record','name':'T','fields':[{'name':'kids','type':{'type':'array','items':'T'}},{'"
     "name':'v','type':'long'}]}",
     false, "(path '/fields/1/type')"},

    /* logical types are judged by their underlying types */
    {"timestamp_millis_reads_long", "{'type':'long','logicalType':'timestamp-millis'}", "'long'",
     true, NULL},
    {"long_reads_timestamp_micros", "'long'", "{'type':'long','logicalType':'timestamp-micros'}",
     true, NULL},
    {"date_reads_int", "{'type':'int','logicalType':'date'}", "'int'", true, NULL},
    {"long_reads_date_by_promotion", "'long'", "{'type':'int','logicalType':'date'}", true, NULL},
    {"date_rejects_timestamp", "{'type':'int','logicalType':'date'}",
     "{'type':'long','logicalType':'timestamp-millis'}", false, "reader type: INT"},
    {"uuid_reads_string", "{'type':'string','logicalType':'uuid'}", "'string'", true, NULL},
    {"decimal_precision_change_same_bytes",
     "{'type':'bytes','logicalType':'decimal','precision':10,'scale':2}",
     "{'type':'bytes','logicalType':'decimal','precision':5,'scale':1}", true, NULL},
    {"decimal_fixed_size_change",
     "{'type':'fixed','name':'D','size':8,'logicalType':'decimal','precision':10}",
     "{'type':'fixed','name':'D','size':16,'logicalType':'decimal','precision':10}", false,
     "FIXED_SIZE_MISMATCH"},
};

#define NROWS (sizeof rows / sizeof rows[0])

/* 'quoted' schema text -> JSON */
static char *json_of(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return d;
}

static cairn_schema_t *parse_or_fail(const char *quoted)
{
    char *text = json_of(quoted);
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn_schema_parse("AVRO", text, strlen(text), NULL, 0, &s, &err);
    if (rc != CAIRN_OK)
        fail_msg("cannot parse %s: %s at %s", text, err.text, err.where);
    free(text);
    return s;
}

static void run_row(void **state)
{
    const row_t *r = *state;
    cairn_schema_t *reader = parse_or_fail(r->reader);
    cairn_schema_t *writer = parse_or_fail(r->writer);
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);

    cairn_rc_t rc = reader->format->can_read(reader, writer, &reasons);
    bool found = r->want == NULL;
    for (size_t i = 0; i < reasons.n; i++) {
        if (r->want && strstr(reasons.items[i], r->want))
            found = true;
    }
    if ((rc == CAIRN_OK) != r->ok || (!r->ok && !found) || (r->ok && reasons.n)) {
        for (size_t i = 0; i < reasons.n; i++)
            print_message("  reason: %s\n", reasons.items[i]);
        fail_msg("%s: expected %s%s%s, got %s", r->name, r->ok ? "compatible" : "incompatible",
                 r->want ? " with " : "", r->want ? r->want : "", cairn_rc_name(rc));
    }
    cairn_strlist_release(&reasons);
    cairn_schema_unref(reader);
    cairn_schema_unref(writer);
}

/* Every reason is one line in Confluent's shape. */
static void test_compat_reasons_have_confluent_shape(void **state)
{
    (void)state;
    cairn_schema_t *r = parse_or_fail(REC(F("a", "'int'") "," F("b", "'int'")));
    cairn_schema_t *w = parse_or_fail(RECN("S", F("a", "'string'")));
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    assert_int_equal(r->format->can_read(r, w, &reasons), CAIRN_E_INCOMPATIBLE);
    assert_int_equal(reasons.n, 3); /* name, field a's type, field b's default */
    for (size_t i = 0; i < reasons.n; i++) {
        assert_true(strncmp(reasons.items[i], "{errorType:'", 12) == 0);
        assert_non_null(strstr(reasons.items[i], "', description:'"));
        assert_non_null(strstr(reasons.items[i], "', additionalInfo:'"));
        assert_int_equal(reasons.items[i][strlen(reasons.items[i]) - 1], '}');
        assert_null(strchr(reasons.items[i], '\n'));
    }
    cairn_strlist_release(&reasons);
    cairn_schema_unref(r);
    cairn_schema_unref(w);
}

/* NULL reasons are allowed and the verdict is the same. */
static void test_compat_accepts_null_reasons(void **state)
{
    (void)state;
    cairn_schema_t *r = parse_or_fail("'int'");
    cairn_schema_t *w = parse_or_fail("'long'");
    assert_int_equal(r->format->can_read(r, w, NULL), CAIRN_E_INCOMPATIBLE);
    assert_int_equal(w->format->can_read(w, r, NULL), CAIRN_OK);
    cairn_schema_unref(r);
    cairn_schema_unref(w);
}

/* The resolution helpers the SDK uses pick the branch and field Avro Java would. */
static void test_resolution_helpers_pick_java_branch_and_field(void **state)
{
    (void)state;
    cairn_schema_t *u = parse_or_fail(
        "['null','double','long'," RECN("A", "") ",{'type':'record',"
                                                 "'name':'B','aliases':['Old'],'fields':[]}]");
    cairn_schema_t *w_int = parse_or_fail("'int'");
    cairn_schema_t *w_long = parse_or_fail("'long'");
    cairn_schema_t *w_old = parse_or_fail("{'type':'record','name':'x.Old','fields':[]}");
    cairn_schema_t *w_str = parse_or_fail("'string'");
    const cairn_avro_node_t *un = cairn__avro_model_root(u->model);
    /* The exact type wins over a promotion, else the first promotion. */
    assert_int_equal(cairn__avro_union_branch(un, cairn__avro_model_root(w_long->model)), 2);
    assert_int_equal(cairn__avro_union_branch(un, cairn__avro_model_root(w_int->model)), 1);
    assert_int_equal(cairn__avro_union_branch(un, cairn__avro_model_root(w_old->model)), 4);
    assert_int_equal(cairn__avro_union_branch(un, cairn__avro_model_root(w_str->model)), -1);

    cairn_schema_t *r = parse_or_fail(REC("{'name':'n','type':'int','aliases':['m','k']}"));
    cairn_schema_t *w = parse_or_fail(REC(F("k", "'int'") "," F("m", "'int'")));
    const cairn_avro_node_t *rn = cairn__avro_model_root(r->model);
    assert_int_equal(cairn__avro_writer_field(&rn->fields[0], cairn__avro_model_root(w->model)), 1);
    assert_true(cairn__avro_promotes(CAIRN_AVRO_DOUBLE, CAIRN_AVRO_INT));
    assert_false(cairn__avro_promotes(CAIRN_AVRO_INT, CAIRN_AVRO_DOUBLE));
    cairn_schema_unref(u);
    cairn_schema_unref(w_int);
    cairn_schema_unref(w_long);
    cairn_schema_unref(w_old);
    cairn_schema_unref(w_str);
    cairn_schema_unref(r);
    cairn_schema_unref(w);
}

/* A chain of distinct named records deeper than the checker follows ends with a reason. */
static void test_compat_deep_named_chain_is_bounded(void **state)
{
    (void)state;
    enum { N = 1200 };
    size_t cap = (size_t)N * 96 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    /* R0 has fields t1..tN defining T1..TN, each Ti with a field of type T(i-1). */
    size_t len = (size_t)snprintf(text, cap, "{\"type\":\"record\",\"name\":\"T0\",\"fields\":[");
    for (int i = 1; i <= N; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "%s{\"name\":\"f%d\",\"type\":{\"type\":\"record\",\"name\":"
                                "\"T%d\",\"fields\":[{\"name\":\"p\",\"type\":\"T%d\"}]}}",
                                i > 1 ? "," : "", i, i, i - 1);
    snprintf(text + len, cap - len, "]}");
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_schema_parse(NULL, text, strlen(text), NULL, 0, &s, &err), CAIRN_OK);
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    const cairn_avro_model_t *m = s->model;
    const cairn_avro_node_t *top = cairn__avro_model_lookup(m, "T1200");
    assert_non_null(top);
    assert_int_equal(cairn__avro_can_read(top, top, &reasons), CAIRN_E_INCOMPATIBLE);
    assert_true(reasons.n >= 1);
    assert_non_null(strstr(reasons.items[0], "nest too deeply"));
    /* A shallower one is checked fully. */
    cairn_strlist_release(&reasons);
    assert_int_equal(cairn__avro_can_read(cairn__avro_model_lookup(m, "T300"),
                                          cairn__avro_model_lookup(m, "T300"), &reasons),
                     CAIRN_OK);
    cairn_strlist_release(&reasons);
    cairn_schema_unref(s);
    free(text);
}

int main(void)
{
    struct CMUnitTest *tests = calloc(NROWS + 4, sizeof *tests);
    size_t n = 0;
    assert_non_null(tests);
    for (size_t i = 0; i < NROWS; i++) {
        tests[n++] = (struct CMUnitTest){.name = rows[i].name,
                                         .test_func = run_row,
                                         .initial_state = (void *)(uintptr_t)&rows[i]};
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compat_reasons_have_confluent_shape);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compat_accepts_null_reasons);
    tests[n++] =
        (struct CMUnitTest)cmocka_unit_test(test_resolution_helpers_pick_java_branch_and_field);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compat_deep_named_chain_is_bounded);
    int failed = _cmocka_run_group_tests("registry.avro_compat", tests, n, NULL, NULL);
    free(tests);
    return failed;
}
