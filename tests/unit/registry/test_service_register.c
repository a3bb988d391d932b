/* SPDX-License-Identifier: MIT */
/*
 * test_service_register.c - registration, look-up, reads by id and
 * compatibility checks of the registry service (Confluent 7.x semantics, as
 * registry/registry.h states them), over a real log in a temp directory.
 */
#include "test_service_fixture.h"

#define SCHEMA_A                                                                                   \
    "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"
#define SCHEMA_A_SPACED                                                                            \
    "{ \"type\" : \"record\",\n  \"name\": \"r\",\n  \"fields\": [ { \"name\": \"a\", \"type\": "  \
    "\"int\" } ] }"
#define SCHEMA_A_PLUS_DEFAULT                                                                      \
    "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"           \
    "{\"name\":\"b\",\"type\":\"string\",\"default\":\"x\"}]}"
#define SCHEMA_A_PLUS_REQUIRED                                                                     \
    "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"           \
    "{\"name\":\"b\",\"type\":\"string\"}]}"

static void test_register_same_schema_twice_returns_same_id_and_no_new_version(void **state)
{
    struct fx *f = *state;
    int id1 = fx_register_ok(f->reg, "s", SCHEMA_A);
    int id2 = fx_register_ok(f->reg, "s", SCHEMA_A);
    assert_int_equal(id1, 1);
    assert_int_equal(id2, id1);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 1);
    assert_int_equal(cairn_registry_max_id(f->reg), 1);
}

static void test_register_same_schema_in_two_subjects_shares_the_id(void **state)
{
    struct fx *f = *state;
    int id1 = fx_register_ok(f->reg, "one", SCHEMA_A);
    int id2 = fx_register_ok(f->reg, "two", SCHEMA_A);
    assert_int_equal(id1, id2);
    cairn_strlist_t subs;
    assert_int_equal(cairn_registry_subjects_by_id(f->reg, id1, false, &subs, NULL), CAIRN_OK);
    assert_int_equal(subs.n, 2);
    assert_string_equal(subs.items[0], "one");
    assert_string_equal(subs.items[1], "two");
    cairn_strlist_release(&subs);
    cairn_reg_version_t *vs = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_versions_by_id(f->reg, id1, false, &vs, &n, NULL), CAIRN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(vs[0].subject, "one");
    assert_int_equal(vs[0].version, 1);
    assert_null(vs[0].schema);
    assert_string_equal(vs[1].subject, "two");
    cairn_reg_versions_free(vs, n);
}

static void test_register_formatting_only_difference_gives_same_id(void **state)
{
    struct fx *f = *state;
    int id1 = fx_register_ok(f->reg, "s", SCHEMA_A);
    int id2 = fx_register_ok(f->reg, "s", SCHEMA_A_SPACED);
    int id3 = fx_register_ok(f->reg, "other", SCHEMA_A_SPACED);
    assert_int_equal(id1, id2);
    assert_int_equal(id1, id3);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 1);
    /* What is stored and returned is the canonical text, not the request's. */
    cairn_reg_schema_t *s = NULL;
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id1, NULL, &s, NULL), CAIRN_OK);
    assert_null(strchr(s->text, '\n'));
    assert_string_equal(s->type, "AVRO");
    assert_int_equal(s->text_len, strlen(s->text));
    cairn_reg_schema_unref(s);
}

static void test_register_added_default_field_gives_new_version_and_id(void **state)
{
    struct fx *f = *state;
    int id1 = fx_register_ok(f->reg, "s", SCHEMA_A);
    int id2 = fx_register_ok(f->reg, "s", SCHEMA_A_PLUS_DEFAULT);
    assert_int_equal(id2, id1 + 1);
    int *v = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_versions(f->reg, "s", CAIRN_DELETED_EXCLUDE, &v, &n, NULL),
                     CAIRN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 2);
    cairn_free(v);
    cairn_reg_version_t latest;
    assert_int_equal(cairn_registry_get_version(f->reg, "s", -1, false, &latest, NULL), CAIRN_OK);
    assert_int_equal(latest.version, 2);
    assert_int_equal(latest.schema->id, id2);
    assert_false(latest.deleted);
    cairn_reg_version_release(&latest);
}

static void test_register_incompatible_under_backward_is_refused_and_nothing_stored(void **state)
{
    struct fx *f = *state;
    fx_register_ok(f->reg, "s", SCHEMA_A);
    cairn_reg_request_t req = {.schema = SCHEMA_A_PLUS_REQUIRED};
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    cairn_error_t err = {0};
    int id = -7;
    assert_int_equal(cairn_registry_register(f->reg, "s", &req, &id, &reasons, &err),
                     CAIRN_E_INCOMPATIBLE);
    assert_int_equal(id, -7);
    assert_int_equal(err.code, CAIRN_E_INCOMPATIBLE);
    assert_string_equal(err.text,
                        "Schema being registered is incompatible with an earlier schema for "
                        "subject \"s\"");
    assert_true(reasons.n > 0);
    cairn_strlist_release(&reasons);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 1);
    assert_int_equal(cairn_registry_max_id(f->reg), 1);
    /* Nothing went to the log either. */
    fx_reopen(f);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 1);
    assert_int_equal(cairn_registry_max_id(f->reg), 1);
}

static void test_register_rejects_invalid_and_oversized_schemas(void **state)
{
    struct fx *f = *state;
    int id = 0;
    assert_int_equal(fx_register(f->reg, "s", "{\"type\":\"record\"", &id), CAIRN_E_INVALID_SCHEMA);
    assert_int_equal(fx_register(f->reg, "s", "{\"type\":\"nosuchtype\"}", &id),
                     CAIRN_E_INVALID_SCHEMA);
    cairn_reg_request_t req = {.schema = SCHEMA_A, .schema_type = "NOSUCHFORMAT"};
    cairn_error_t err = {0};
    assert_int_equal(fx_register_full(f->reg, "s", &req, &id, &err), CAIRN_E_INVALID_SCHEMA);

    /* A registry with a small limit refuses a larger schema. */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/small", f->dir);
    cairn_registry_options_t o = {.data_dir = dir, .max_schema_bytes = 40};
    cairn_registry_t *small = NULL;
    assert_int_equal(cairn_registry_open(&o, &small, NULL), CAIRN_OK);
    memset(&err, 0, sizeof err);
    req = (cairn_reg_request_t){.schema = SCHEMA_A};
    assert_int_equal(fx_register_full(small, "s", &req, &id, &err), CAIRN_E_INVALID_SCHEMA);
    assert_non_null(strstr(err.text, "exceeds"));
    assert_int_equal(fx_register(small, "s", "\"int\"", &id), CAIRN_OK);
    cairn_registry_close(small);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), -1);
}

static void test_subject_names_are_validated_everywhere(void **state)
{
    struct fx *f = *state;
    char long_name[300];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    const char *bad[] = {"", ".", "..", "a\nb", "a\x7f", "\xc3\x28", "\xed\xa0\x80", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cairn_registry_subject_valid(bad[i], NULL), CAIRN_E_INVALID_SUBJECT);
        int id;
        assert_int_equal(fx_register(f->reg, bad[i], SCHEMA_A, &id), CAIRN_E_INVALID_SUBJECT);
    }
    long_name[255] = '\0';
    const char *good[] = {"a", "a/b", "...", "caf\xc3\xa9", "topic-value", long_name};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(cairn_registry_subject_valid(good[i], NULL), CAIRN_OK);
    assert_int_equal(fx_register_ok(f->reg, "a/b", SCHEMA_A), 1);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_get_version(f->reg, "..", 1, false, &v, NULL),
                     CAIRN_E_INVALID_SUBJECT);
    assert_int_equal(
        cairn_registry_delete_subject(f->reg, "", false, &(int *){NULL}, &(size_t){0}, NULL),
        CAIRN_E_INVALID_SUBJECT);
}

static void test_lookup_finds_version_or_reports_what_is_missing(void **state)
{
    struct fx *f = *state;
    cairn_reg_version_t v;
    cairn_reg_request_t req = {.schema = SCHEMA_A_SPACED};
    cairn_error_t err = {0};
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, false, &v, &err),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    int id = fx_register_ok(f->reg, "s", SCHEMA_A);
    fx_register_ok(f->reg, "s", SCHEMA_A_PLUS_DEFAULT);
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, false, &v, NULL), CAIRN_OK);
    assert_string_equal(v.subject, "s");
    assert_int_equal(v.version, 1);
    assert_int_equal(v.schema->id, id);
    cairn_reg_version_release(&v);
    req.schema = "\"string\"";
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, false, &v, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    req.schema = "{not json";
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, false, &v, NULL),
                     CAIRN_E_INVALID_SCHEMA);

    /* The same schema at two versions: the latest one is returned. */
    assert_int_equal(cairn_registry_delete_version(f->reg, "s", 1, false, NULL, NULL), CAIRN_OK);
    req.schema = SCHEMA_A;
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, false, &v, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, true, &v, NULL), CAIRN_OK);
    assert_int_equal(v.version, 1);
    assert_true(v.deleted);
    cairn_reg_version_release(&v);
    assert_int_equal(fx_register_ok(f->reg, "s", SCHEMA_A), id);
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, true, &v, NULL), CAIRN_OK);
    assert_int_equal(v.version, 3);
    assert_false(v.deleted);
    cairn_reg_version_release(&v);
}

static void test_normalize_stores_and_matches_the_normalized_form(void **state)
{
    struct fx *f = *state;
    const char *qualified = "{\"type\":\"record\",\"name\":\"r\",\"namespace\":\"ns\",\"fields\":"
                            "[{\"name\":\"a\",\"type\":\"int\"}]}";
    const char *full = "{\"type\":\"record\",\"name\":\"ns.r\",\"fields\":"
                       "[{\"name\":\"a\",\"type\":\"int\"}]}";
    cairn_reg_request_t req = {.schema = qualified, .normalize = true};
    int id1 = 0, id2 = 0;
    assert_int_equal(fx_register_full(f->reg, "s", &req, &id1, NULL), CAIRN_OK);
    req.schema = full;
    assert_int_equal(fx_register_full(f->reg, "s", &req, &id2, NULL), CAIRN_OK);
    assert_int_equal(id1, id2);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 1);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_lookup(f->reg, "s", &req, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.schema->id, id1);
    cairn_reg_version_release(&v);
}

static void test_schema_by_id_and_its_subject_filter(void **state)
{
    struct fx *f = *state;
    cairn_reg_schema_t *s = NULL;
    assert_int_equal(cairn_registry_schema_by_id(f->reg, 1, NULL, &s, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    int id = fx_register_ok(f->reg, "s", SCHEMA_A);
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id, "s", &s, NULL), CAIRN_OK);
    assert_int_equal(s->id, id);
    cairn_reg_schema_t *again = NULL;
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id, NULL, &again, NULL), CAIRN_OK);
    assert_ptr_equal(s, again); /* shared, not copied */
    cairn_reg_schema_unref(again);
    cairn_reg_schema_unref(s);
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id, "other", &s, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id + 1, NULL, &s, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
}

static void test_list_schemas_sorted_and_latest_only(void **state)
{
    struct fx *f = *state;
    fx_register_ok(f->reg, "b", SCHEMA_A);
    fx_register_ok(f->reg, "a", SCHEMA_A);
    fx_register_ok(f->reg, "a", SCHEMA_A_PLUS_DEFAULT);
    fx_register_ok(f->reg, "c", "\"int\"");
    cairn_reg_version_t *all = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_list_schemas(f->reg, NULL, false, false, &all, &n, NULL),
                     CAIRN_OK);
    assert_int_equal(n, 4);
    assert_string_equal(all[0].subject, "a");
    assert_int_equal(all[0].version, 1);
    assert_string_equal(all[1].subject, "a");
    assert_int_equal(all[1].version, 2);
    assert_string_equal(all[2].subject, "b");
    assert_string_equal(all[3].subject, "c");
    cairn_reg_versions_free(all, n);
    assert_int_equal(cairn_registry_list_schemas(f->reg, "a", false, true, &all, &n, NULL),
                     CAIRN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].version, 2);
    cairn_reg_versions_free(all, n);
    cairn_strlist_t subs;
    assert_int_equal(cairn_registry_subjects(f->reg, NULL, CAIRN_DELETED_EXCLUDE, &subs, NULL),
                     CAIRN_OK);
    assert_int_equal(subs.n, 3);
    assert_string_equal(subs.items[0], "a");
    assert_string_equal(subs.items[2], "c");
    cairn_strlist_release(&subs);
}

static void test_check_versions_per_level_latest_and_explicit(void **state)
{
    struct fx *f = *state;
    bool ok = false;
    cairn_reg_request_t req = {.schema = SCHEMA_A_PLUS_REQUIRED};
    /* Unknown subject: 0 and -1 are compatible, N is not found. */
    assert_int_equal(cairn_registry_check(f->reg, "s", 0, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_true(ok);
    ok = false;
    assert_int_equal(cairn_registry_check(f->reg, "s", -1, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_true(ok);
    assert_int_equal(cairn_registry_check(f->reg, "s", 1, &req, &ok, NULL, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    fx_register_ok(f->reg, "s", SCHEMA_A);
    assert_int_equal(cairn_registry_check(f->reg, "s", 2, &req, &ok, NULL, NULL),
                     CAIRN_E_NOT_FOUND_VERSION);
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    assert_int_equal(cairn_registry_check(f->reg, "s", 0, &req, &ok, &reasons, NULL), CAIRN_OK);
    assert_false(ok);
    assert_true(reasons.n > 0);
    cairn_strlist_release(&reasons);
    assert_int_equal(cairn_registry_check(f->reg, "s", 1, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_false(ok);
    req.schema = SCHEMA_A_PLUS_DEFAULT;
    assert_int_equal(cairn_registry_check(f->reg, "s", -1, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_true(ok);
    req.schema = "{bad";
    assert_int_equal(cairn_registry_check(f->reg, "s", 0, &req, &ok, NULL, NULL),
                     CAIRN_E_INVALID_SCHEMA);
    /* Checking stored nothing. */
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 1);
}

static void test_check_transitive_level_uses_every_live_version(void **state)
{
    struct fx *f = *state;
    /* v1 {a}, v2 {} (removing a field is BACKWARD-compatible), then a
     * candidate {a:string}: fine against v2 alone, not against v1. */
    fx_register_ok(f->reg, "s", SCHEMA_A);
    fx_register_ok(f->reg, "s", "{\"type\":\"record\",\"name\":\"r\",\"fields\":[]}");
    const char *cand = "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":"
                       "\"string\",\"default\":\"\"}]}";
    cairn_reg_request_t req = {.schema = cand};
    bool ok = false;
    assert_int_equal(cairn_registry_check(f->reg, "s", 0, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_true(ok);
    assert_int_equal(cairn_registry_set_level(f->reg, "s", CAIRN_COMPAT_BACKWARD_TRANSITIVE, NULL),
                     CAIRN_OK);
    assert_int_equal(cairn_registry_check(f->reg, "s", 0, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_false(ok);
    int id = 0;
    assert_int_equal(fx_register(f->reg, "s", cand, &id), CAIRN_E_INCOMPATIBLE);
    /* A single-version check is one direction only, transitive or not. */
    assert_int_equal(cairn_registry_check(f->reg, "s", 2, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        T(test_register_same_schema_twice_returns_same_id_and_no_new_version),
        T(test_register_same_schema_in_two_subjects_shares_the_id),
        T(test_register_formatting_only_difference_gives_same_id),
        T(test_register_added_default_field_gives_new_version_and_id),
        T(test_register_incompatible_under_backward_is_refused_and_nothing_stored),
        T(test_register_rejects_invalid_and_oversized_schemas),
        T(test_subject_names_are_validated_everywhere),
        T(test_lookup_finds_version_or_reports_what_is_missing),
        T(test_normalize_stores_and_matches_the_normalized_form),
        T(test_schema_by_id_and_its_subject_filter),
        T(test_list_schemas_sorted_and_latest_only),
        T(test_check_versions_per_level_latest_and_explicit),
        T(test_check_transitive_level_uses_every_live_version),
#undef T
    };
    return cmocka_run_group_tests_name("registry.service_register", tests, NULL, NULL);
}
