/* SPDX-License-Identifier: MIT */
/*
 * test_service_config.c - compatibility levels and modes of the registry
 * service: defaults, per-subject overrides, deletes, what READONLY refuses,
 * IMPORT with explicit ids and versions, and what a hard delete drops.
 */
#include "test_service_fixture.h"

static void test_levels_default_override_and_delete(void **state)
{
    struct fx *f = *state;
    cairn_registry_t *r = f->reg;
    cairn_compat_level_t l = CAIRN_COMPAT_NONE, old = CAIRN_COMPAT_NONE;
    assert_int_equal(cairn_registry_get_level(r, NULL, false, &l, NULL), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_BACKWARD);
    assert_int_equal(cairn_registry_get_level(r, "s", false, &l, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_LEVEL);
    assert_int_equal(cairn_registry_get_level(r, "s", true, &l, NULL), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_BACKWARD);
    /* A subject's level may be set before it has versions. */
    assert_int_equal(cairn_registry_set_level(r, "s", CAIRN_COMPAT_FULL, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_get_level(r, "s", false, &l, NULL), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_FULL);
    assert_int_equal(cairn_registry_set_level(r, NULL, CAIRN_COMPAT_FORWARD, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_get_level(r, "t", true, &l, NULL), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_FORWARD);
    assert_int_equal(cairn_registry_set_level(r, "s", (cairn_compat_level_t)42, NULL),
                     CAIRN_E_INVALID_LEVEL);

    assert_int_equal(cairn_registry_delete_level(r, "s", &old, NULL), CAIRN_OK);
    assert_int_equal(old, CAIRN_COMPAT_FULL);
    assert_int_equal(cairn_registry_get_level(r, "s", false, &l, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_LEVEL);
    /* Confluent answers 40401 when the subject has no level of its own,
     * whether or not it has versions. */
    assert_int_equal(cairn_registry_delete_level(r, "s", &old, NULL), CAIRN_E_NOT_FOUND_SUBJECT);
    fx_register_ok(r, "s", "\"int\"");
    assert_int_equal(cairn_registry_delete_level(r, "s", &old, NULL), CAIRN_E_NOT_FOUND_SUBJECT);
    assert_int_equal(cairn_registry_delete_level(r, NULL, &old, NULL), CAIRN_OK);
    assert_int_equal(old, CAIRN_COMPAT_FORWARD);
    assert_int_equal(cairn_registry_get_level(r, NULL, false, &l, NULL), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_BACKWARD);
}

static void test_level_none_accepts_incompatible_and_subject_level_wins(void **state)
{
    struct fx *f = *state;
    char b[512];
    fx_register_ok(f->reg, "s", fx_record(b, sizeof b, "r", 1, 0));
    int id = 0;
    assert_int_equal(fx_register(f->reg, "s", fx_record(b, sizeof b, "r", 1, 2), &id),
                     CAIRN_E_INCOMPATIBLE);
    assert_int_equal(cairn_registry_set_level(f->reg, "s", CAIRN_COMPAT_NONE, NULL), CAIRN_OK);
    assert_int_equal(fx_register(f->reg, "s", fx_record(b, sizeof b, "r", 1, 2), &id), CAIRN_OK);
    /* The global level does not apply to a subject with its own. */
    assert_int_equal(cairn_registry_set_level(f->reg, NULL, CAIRN_COMPAT_FULL, NULL), CAIRN_OK);
    assert_int_equal(fx_register(f->reg, "s", "\"string\"", &id), CAIRN_OK);
    fx_register_ok(f->reg, "t", fx_record(b, sizeof b, "r", 1, 0));
    assert_int_equal(fx_register(f->reg, "t", fx_record(b, sizeof b, "r", 1, 1), &id), CAIRN_OK);
    assert_int_equal(fx_register(f->reg, "t", fx_record(b, sizeof b, "r", 0, 0), &id),
                     CAIRN_E_INCOMPATIBLE); /* FULL: removing a field without default fails */
}

static void test_modes_default_override_and_delete(void **state)
{
    struct fx *f = *state;
    cairn_registry_t *r = f->reg;
    cairn_reg_mode_t m = CAIRN_MODE_IMPORT, old = CAIRN_MODE_IMPORT;
    assert_int_equal(cairn_registry_get_mode(r, NULL, false, &m, NULL), CAIRN_OK);
    assert_int_equal(m, CAIRN_MODE_READWRITE);
    assert_int_equal(cairn_registry_get_mode(r, "s", false, &m, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_MODE);
    assert_int_equal(cairn_registry_set_mode(r, "s", CAIRN_MODE_READONLY, false, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_get_mode(r, "s", false, &m, NULL), CAIRN_OK);
    assert_int_equal(m, CAIRN_MODE_READONLY);
    assert_int_equal(cairn_registry_delete_mode(r, "s", &old, NULL), CAIRN_OK);
    assert_int_equal(old, CAIRN_MODE_READONLY);
    assert_int_equal(cairn_registry_delete_mode(r, "s", &old, NULL), CAIRN_E_NOT_FOUND_SUBJECT);
    assert_int_equal(cairn_registry_set_mode(r, NULL, CAIRN_MODE_READONLY, false, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_mode(r, NULL, &old, NULL), CAIRN_OK);
    assert_int_equal(old, CAIRN_MODE_READONLY);
    assert_int_equal(cairn_registry_get_mode(r, NULL, false, &m, NULL), CAIRN_OK);
    assert_int_equal(m, CAIRN_MODE_READWRITE);
    assert_int_equal(cairn_reg_mode_parse("READONLY", &m), CAIRN_OK);
    assert_int_equal(m, CAIRN_MODE_READONLY);
    assert_int_equal(cairn_reg_mode_parse("readonly", &m), CAIRN_E_INVALID_MODE);
    assert_string_equal(cairn_reg_mode_name(CAIRN_MODE_IMPORT), "IMPORT");
}

static void test_readonly_refuses_writes_of_schemas_and_deletes_not_config(void **state)
{
    struct fx *f = *state;
    cairn_registry_t *r = f->reg;
    fx_register_ok(r, "s", "\"int\"");
    assert_int_equal(cairn_registry_set_mode(r, "s", CAIRN_MODE_READONLY, false, NULL), CAIRN_OK);
    int id = 0, dv = 0, *vs = NULL;
    size_t n = 0;
    cairn_error_t err = {0};
    cairn_reg_request_t req = {.schema = "\"int\""};
    assert_int_equal(fx_register_full(r, "s", &req, &id, &err), CAIRN_E_INVALID_OPERATION);
    assert_string_equal(err.text, "subject 's' is in read-only mode");
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, false, &dv, NULL),
                     CAIRN_E_INVALID_OPERATION);
    assert_int_equal(cairn_registry_delete_subject(r, "s", false, &vs, &n, NULL),
                     CAIRN_E_INVALID_OPERATION);
    assert_int_equal(cairn_registry_set_level(r, "s", CAIRN_COMPAT_NONE, NULL), CAIRN_OK);
    /* Other subjects follow the global mode. */
    assert_int_equal(fx_register(r, "t", "\"int\"", &id), CAIRN_OK);
    assert_int_equal(cairn_registry_set_mode(r, NULL, CAIRN_MODE_READONLY, false, NULL), CAIRN_OK);
    assert_int_equal(fx_register(r, "u", "\"int\"", &id), CAIRN_E_INVALID_OPERATION);
    /* A subject's own READWRITE wins over a global READONLY. */
    assert_int_equal(cairn_registry_set_mode(r, "s", CAIRN_MODE_READWRITE, false, NULL), CAIRN_OK);
    assert_int_equal(fx_register(r, "s", "\"long\"", &id), CAIRN_OK);
    assert_int_equal(fx_nversions(r, "s", CAIRN_DELETED_INCLUDE), 2);
}

static void test_import_mode_with_explicit_ids_and_versions(void **state)
{
    struct fx *f = *state;
    cairn_registry_t *r = f->reg;
    cairn_reg_request_t req = {.schema = "\"int\"", .id = 42, .version = 7};
    int id = 0;
    cairn_error_t err = {0};
    /* Outside IMPORT an explicit id or version is refused. */
    assert_int_equal(fx_register_full(r, "s", &req, &id, &err), CAIRN_E_INVALID_OPERATION);
    fx_register_ok(r, "existing", "\"string\"");
    assert_int_equal(cairn_registry_set_mode(r, NULL, CAIRN_MODE_IMPORT, false, NULL),
                     CAIRN_E_INVALID_OPERATION);
    assert_int_equal(cairn_registry_set_mode(r, "s", CAIRN_MODE_IMPORT, false, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_set_mode(r, "existing", CAIRN_MODE_IMPORT, false, NULL),
                     CAIRN_E_INVALID_OPERATION);
    assert_int_equal(cairn_registry_set_mode(r, NULL, CAIRN_MODE_IMPORT, true, NULL), CAIRN_OK);

    assert_int_equal(fx_register_full(r, "s", &req, &id, NULL), CAIRN_OK);
    assert_int_equal(id, 42);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_get_version(r, "s", 7, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.schema->id, 42);
    cairn_reg_version_release(&v);
    assert_int_equal(cairn_registry_max_id(r), 42);
    /* IMPORT skips the compatibility check; an id holding another schema is refused. */
    cairn_reg_request_t other = {.schema = "{\"type\":\"array\",\"items\":\"int\"}", .id = 42};
    memset(&err, 0, sizeof err);
    assert_int_equal(fx_register_full(r, "s", &other, &id, &err), CAIRN_E_INVALID_ID);
    other.id = 0;
    assert_int_equal(fx_register_full(r, "s", &other, &id, NULL), CAIRN_OK);
    assert_int_equal(id, 43);
    assert_int_equal(cairn_registry_get_version(r, "s", -1, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.version, 8);
    cairn_reg_version_release(&v);
    /* An explicit version that exists is refused. */
    cairn_reg_request_t dup = {.schema = "\"bytes\"", .version = 7};
    assert_int_equal(fx_register_full(r, "s", &dup, &id, NULL), CAIRN_E_INVALID_OPERATION);
    /* Back to READWRITE, ids continue after the highest one imported. */
    assert_int_equal(cairn_registry_set_mode(r, NULL, CAIRN_MODE_READWRITE, false, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_mode(r, "s", NULL, NULL), CAIRN_OK);
    assert_int_equal(fx_register_ok(r, "new", "\"double\""), 44);
    fx_reopen(f);
    assert_int_equal(cairn_registry_max_id(f->reg), 44);
    assert_int_equal(cairn_registry_get_version(f->reg, "s", 7, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.schema->id, 42);
    cairn_reg_version_release(&v);
}

static void test_hard_delete_drops_subject_config_soft_delete_keeps_it(void **state)
{
    struct fx *f = *state;
    cairn_registry_t *r = f->reg;
    fx_register_ok(r, "s", "\"int\"");
    assert_int_equal(cairn_registry_set_level(r, "s", CAIRN_COMPAT_NONE, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_set_mode(r, "s", CAIRN_MODE_READWRITE, false, NULL), CAIRN_OK);
    int *vs = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_delete_subject(r, "s", false, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    cairn_compat_level_t l;
    cairn_reg_mode_t m;
    assert_int_equal(cairn_registry_get_level(r, "s", false, &l, NULL), CAIRN_OK);
    assert_int_equal(l, CAIRN_COMPAT_NONE);
    assert_int_equal(cairn_registry_delete_subject(r, "s", true, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_get_level(r, "s", false, &l, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_LEVEL);
    assert_int_equal(cairn_registry_get_mode(r, "s", false, &m, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_MODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        T(test_levels_default_override_and_delete),
        T(test_level_none_accepts_incompatible_and_subject_level_wins),
        T(test_modes_default_override_and_delete),
        T(test_readonly_refuses_writes_of_schemas_and_deletes_not_config),
        T(test_import_mode_with_explicit_ids_and_versions),
        T(test_hard_delete_drops_subject_config_soft_delete_keeps_it),
#undef T
    };
    return cmocka_run_group_tests_name("registry.service_config", tests, NULL, NULL);
}
