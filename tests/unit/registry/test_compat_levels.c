/* SPDX-License-Identifier: MIT */
/*
 * test_compat_levels.c - the format table, level names, and
 * cairn_compat_check applying NONE..FULL_TRANSITIVE to a list of earlier
 * versions: which versions are compared, in which direction, and the
 * Confluent-style lines that follow each failing version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

/* Three versions of one subject:
 * V1 {a:int}; V2 {a:int, b:string (no default)}; V3 {a:int, b:string, c:int=0}.
 * V2 read V1 data? no (b missing). V3 reads V2 data: yes. V3 reads V1: no. */
static const char *const V1 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":"
                              "[{\"name\":\"a\",\"type\":\"int\"}]}";
static const char *const V2 =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":"
    "[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}]}";
static const char *const V3 =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
    "{\"name\":\"b\",\"type\":\"string\"},{\"name\":\"c\",\"type\":\"int\",\"default\":0}]}";

struct fixture {
    cairn_schema_t *v1, *v2, *v3;
    cairn_strlist_t reasons;
};

static cairn_schema_t *parse(const char *text)
{
    cairn_schema_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_schema_parse(NULL, text, strlen(text), NULL, 0, &s, &err), CAIRN_OK);
    return s;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->v1 = parse(V1);
    f->v2 = parse(V2);
    f->v3 = parse(V3);
    cairn_strlist_init(&f->reasons);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_schema_unref(f->v1);
    cairn_schema_unref(f->v2);
    cairn_schema_unref(f->v3);
    cairn_strlist_release(&f->reasons);
    free(f);
    return 0;
}

static cairn_rc_t
check(struct fixture *f, cairn_compat_level_t level, cairn_schema_t *cand, size_t nprev, ...)
{
    const cairn_schema_t *prev[8];
    int versions[8];
    va_list ap;
    va_start(ap, nprev);
    for (size_t i = 0; i < nprev; i++) {
        prev[i] = va_arg(ap, cairn_schema_t *);
        versions[i] = (int)i + 1;
    }
    va_end(ap);
    cairn_strlist_release(&f->reasons);
    return cairn_compat_check(level, cand, prev, versions, nprev, &f->reasons);
}

static bool has_reason(const struct fixture *f, const char *text)
{
    for (size_t i = 0; i < f->reasons.n; i++) {
        if (strstr(f->reasons.items[i], text))
            return true;
    }
    return false;
}

static void test_format_find_defaults_to_avro(void **state)
{
    (void)state;
    assert_non_null(cairn_format_find(NULL));
    assert_ptr_equal(cairn_format_find(""), cairn_format_find("AVRO"));
    assert_ptr_equal(cairn_format_find(NULL), cairn_format_find("AVRO"));
    assert_string_equal(cairn_format_find("AVRO")->name, "AVRO");
    assert_null(cairn_format_find("avro"));
    assert_null(cairn_format_find("XML"));
    const char *const *names = cairn_format_names();
    assert_string_equal(names[0], "AVRO");
    assert_null(names[1]);
}

static void test_schema_parse_rejects_unknown_format(void **state)
{
    (void)state;
    cairn_schema_t *s = (cairn_schema_t *)1;
    cairn_error_t err = {0};
    assert_int_equal(cairn_schema_parse("XML", "\"int\"", 5, NULL, 0, &s, &err),
                     CAIRN_E_INVALID_SCHEMA);
    assert_null(s);
    assert_non_null(strstr(err.text, "XML"));
}

static void test_schema_refcount_keeps_schema_alive(void **state)
{
    (void)state;
    cairn_schema_t *s = parse("\"string\"");
    assert_int_equal(atomic_load(&s->refcount), 1);
    cairn_schema_t *t = cairn_schema_ref(s);
    assert_ptr_equal(s, t);
    assert_int_equal(atomic_load(&s->refcount), 2);
    cairn_schema_unref(s);
    assert_string_equal(t->canonical, "\"string\"");
    cairn_schema_unref(t);
    assert_null(cairn_schema_ref(NULL));
    cairn_schema_unref(NULL);
}

static void test_level_names_round_trip(void **state)
{
    (void)state;
    cairn_compat_level_t l;
    for (int i = CAIRN_COMPAT_NONE; i <= CAIRN_COMPAT_FULL_TRANSITIVE; i++) {
        const char *name = cairn_compat_level_name((cairn_compat_level_t)i);
        assert_int_equal(cairn_compat_level_parse(name, &l), CAIRN_OK);
        assert_int_equal(l, i);
    }
    assert_string_equal(cairn_compat_level_name(CAIRN_COMPAT_BACKWARD_TRANSITIVE),
                        "BACKWARD_TRANSITIVE");
}

static void test_level_parse_is_case_insensitive(void **state)
{
    (void)state;
    cairn_compat_level_t l = CAIRN_COMPAT_NONE;
    assert_int_equal(cairn_compat_level_parse("backward_transitive", &l), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_BACKWARD_TRANSITIVE);
    assert_int_equal(cairn_compat_level_parse("Full", &l), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_FULL);
}

static void test_level_parse_rejects_unknown(void **state)
{
    (void)state;
    cairn_compat_level_t l;
    assert_int_equal(cairn_compat_level_parse("BACKWARDS", &l), CAIRN_E_INVALID_LEVEL);
    assert_int_equal(cairn_compat_level_parse("", &l), CAIRN_E_INVALID_LEVEL);
    assert_int_equal(cairn_compat_level_parse(NULL, &l), CAIRN_E_INVALID_LEVEL);
}

static void test_compat_none_accepts_anything(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(check(f, CAIRN_COMPAT_NONE, f->v2, 1, f->v1), CAIRN_OK);
    assert_int_equal(f->reasons.n, 0);
}

static void test_compat_no_previous_is_compatible(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(check(f, CAIRN_COMPAT_FULL_TRANSITIVE, f->v2, 0), CAIRN_OK);
}

static void test_compat_backward_rejects_new_required_field(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(check(f, CAIRN_COMPAT_BACKWARD, f->v2, 1, f->v1), CAIRN_E_INCOMPATIBLE);
    assert_int_equal(f->reasons.n, 4);
    assert_non_null(strstr(f->reasons.items[0], "READER_FIELD_MISSING_DEFAULT_VALUE"));
    assert_string_equal(f->reasons.items[1], "{oldSchemaVersion: 1}");
    char want[512];
    snprintf(want, sizeof want, "{oldSchema: '%s'}", f->v1->canonical);
    assert_string_equal(f->reasons.items[2], want);
    assert_string_equal(f->reasons.items[3], "{compatibility: 'BACKWARD'}");
}

static void test_compat_forward_accepts_new_required_field(void **state)
{
    struct fixture *f = *state;
    /* The old schema reads data of the new one: b is simply skipped. */
    assert_int_equal(check(f, CAIRN_COMPAT_FORWARD, f->v2, 1, f->v1), CAIRN_OK);
}

static void test_compat_forward_rejects_removed_required_field(void **state)
{
    struct fixture *f = *state;
    /* Candidate V1 after V2: V2 (reader) lacks b in V1's data. */
    assert_int_equal(check(f, CAIRN_COMPAT_FORWARD, f->v1, 1, f->v2), CAIRN_E_INCOMPATIBLE);
    assert_true(has_reason(f, "{compatibility: 'FORWARD'}"));
    assert_true(has_reason(f, "additionalInfo:'b'"));
}

static void test_compat_full_needs_both_directions(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(check(f, CAIRN_COMPAT_FULL, f->v2, 1, f->v1), CAIRN_E_INCOMPATIBLE);
    assert_int_equal(check(f, CAIRN_COMPAT_FULL, f->v1, 1, f->v2), CAIRN_E_INCOMPATIBLE);
    assert_int_equal(check(f, CAIRN_COMPAT_FULL, f->v3, 1, f->v2), CAIRN_OK);
    assert_true(f->reasons.n == 0);
}

static void test_compat_backward_checks_newest_only(void **state)
{
    struct fixture *f = *state;
    /* V3 reads V2 data but not V1 data; non-transitive looks at V2 only. */
    assert_int_equal(check(f, CAIRN_COMPAT_BACKWARD, f->v3, 2, f->v1, f->v2), CAIRN_OK);
}

static void test_compat_backward_transitive_checks_all(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(check(f, CAIRN_COMPAT_BACKWARD_TRANSITIVE, f->v3, 2, f->v1, f->v2),
                     CAIRN_E_INCOMPATIBLE);
    assert_true(has_reason(f, "{oldSchemaVersion: 1}"));
    assert_false(has_reason(f, "{oldSchemaVersion: 2}"));
    assert_true(has_reason(f, "{compatibility: 'BACKWARD_TRANSITIVE'}"));
}

static void test_compat_forward_transitive_checks_all(void **state)
{
    struct fixture *f = *state;
    /* Candidate V1 after V2, V3: V3 and V2 both need b, which V1 lacks. */
    assert_int_equal(check(f, CAIRN_COMPAT_FORWARD, f->v1, 2, f->v3, f->v2), CAIRN_E_INCOMPATIBLE);
    assert_false(has_reason(f, "{oldSchemaVersion: 1}"));
    assert_int_equal(check(f, CAIRN_COMPAT_FORWARD_TRANSITIVE, f->v1, 2, f->v3, f->v2),
                     CAIRN_E_INCOMPATIBLE);
    assert_true(has_reason(f, "{oldSchemaVersion: 1}"));
    assert_true(has_reason(f, "{oldSchemaVersion: 2}"));
}

static void test_compat_full_transitive_reports_each_failing_version(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(check(f, CAIRN_COMPAT_FULL, f->v3, 2, f->v1, f->v2), CAIRN_OK);
    assert_int_equal(check(f, CAIRN_COMPAT_FULL_TRANSITIVE, f->v3, 2, f->v1, f->v2),
                     CAIRN_E_INCOMPATIBLE);
    assert_true(has_reason(f, "{oldSchemaVersion: 1}"));
    assert_false(has_reason(f, "{oldSchemaVersion: 2}"));
    assert_true(has_reason(f, "{compatibility: 'FULL_TRANSITIVE'}"));
}

static void test_compat_reports_newest_failing_version_first(void **state)
{
    struct fixture *f = *state;
    int versions[] = {4, 7};
    const cairn_schema_t *prev[] = {f->v1, f->v1};
    cairn_strlist_release(&f->reasons);
    assert_int_equal(
        cairn_compat_check(CAIRN_COMPAT_BACKWARD_TRANSITIVE, f->v2, prev, versions, 2, &f->reasons),
        CAIRN_E_INCOMPATIBLE);
    assert_int_equal(f->reasons.n, 8);
    assert_string_equal(f->reasons.items[1], "{oldSchemaVersion: 7}");
    assert_string_equal(f->reasons.items[5], "{oldSchemaVersion: 4}");
}

static void test_compat_accepts_null_reasons(void **state)
{
    struct fixture *f = *state;
    const cairn_schema_t *prev[] = {f->v1};
    assert_int_equal(cairn_compat_check(CAIRN_COMPAT_BACKWARD, f->v2, prev, NULL, 1, NULL),
                     CAIRN_E_INCOMPATIBLE);
}

/* A fake second format: its schemas never compare with AVRO ones. */
static cairn_rc_t
fake_can_read(const cairn_schema_t *r, const cairn_schema_t *w, cairn_strlist_t *reasons)
{
    (void)r;
    (void)w;
    (void)reasons;
    return CAIRN_OK;
}

static void test_compat_rejects_different_formats(void **state)
{
    struct fixture *f = *state;
    static const cairn_format_t fake = {.name = "FAKE", .can_read = fake_can_read};
    cairn_schema_t *other = cairn__schema_new(&fake);
    assert_non_null(other);
    assert_int_equal(check(f, CAIRN_COMPAT_BACKWARD, other, 1, f->v1), CAIRN_E_INCOMPATIBLE);
    assert_true(has_reason(f, "Incompatible because of different schema type"));
    assert_true(has_reason(f, "{oldSchemaVersion: 1}"));
    cairn_schema_unref(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_find_defaults_to_avro),
        cmocka_unit_test(test_schema_parse_rejects_unknown_format),
        cmocka_unit_test(test_schema_refcount_keeps_schema_alive),
        cmocka_unit_test(test_level_names_round_trip),
        cmocka_unit_test(test_level_parse_is_case_insensitive),
        cmocka_unit_test(test_level_parse_rejects_unknown),
        cmocka_unit_test_setup_teardown(test_compat_none_accepts_anything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_no_previous_is_compatible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_backward_rejects_new_required_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compat_forward_accepts_new_required_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compat_forward_rejects_removed_required_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compat_full_needs_both_directions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_backward_checks_newest_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_backward_transitive_checks_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compat_forward_transitive_checks_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_full_transitive_reports_each_failing_version,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_reports_newest_failing_version_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compat_accepts_null_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_rejects_different_formats, setup, teardown),
    };
    return cmocka_run_group_tests_name("registry.compat_levels", tests, NULL, NULL);
}
