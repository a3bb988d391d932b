/* SPDX-License-Identifier: MIT */
/*
 * test_service_delete.c - soft and hard deletes of versions and subjects,
 * version numbering around them, what reads see of deleted versions, and
 * references (resolution, referenced-by, deletion blocked while referenced).
 */
#include "test_service_fixture.h"

static const char *rec(char *buf, int n, int extra)
{
    return fx_record(buf, 512, "r", n, extra);
}

static void test_soft_delete_keeps_numbering_going(void **state)
{
    struct fx *f = *state;
    char b[512];
    fx_register_ok(f->reg, "s", rec(b, 1, 0));
    fx_register_ok(f->reg, "s", rec(b, 1, 1));
    int dv = 0;
    assert_int_equal(cairn_registry_delete_version(f->reg, "s", -1, false, &dv, NULL), CAIRN_OK);
    assert_int_equal(dv, 2);
    fx_register_ok(f->reg, "s", rec(b, 0, 0));
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_get_version(f->reg, "s", -1, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.version, 3);
    cairn_reg_version_release(&v);
    /* v2 is hidden unless asked for. */
    assert_int_equal(cairn_registry_get_version(f->reg, "s", 2, false, &v, NULL),
                     CAIRN_E_NOT_FOUND_VERSION);
    assert_int_equal(cairn_registry_get_version(f->reg, "s", 2, true, &v, NULL), CAIRN_OK);
    assert_true(v.deleted);
    cairn_reg_version_release(&v);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_EXCLUDE), 2);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), 3);
    int *list = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_versions(f->reg, "s", CAIRN_DELETED_ONLY, &list, &n, NULL),
                     CAIRN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0], 2);
    cairn_free(list);
}

static void test_hard_delete_of_whole_subject_restarts_versions_at_one(void **state)
{
    struct fx *f = *state;
    char b[512];
    fx_register_ok(f->reg, "s", rec(b, 1, 0));
    fx_register_ok(f->reg, "s", rec(b, 1, 1));
    int *vs = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_delete_subject(f->reg, "s", false, &vs, &n, NULL), CAIRN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(vs[0], 1);
    assert_int_equal(vs[1], 2);
    cairn_free(vs);
    /* Soft-deleted: registering again continues the numbering. */
    int id = fx_register_ok(f->reg, "t", rec(b, 3, 0));
    assert_int_equal(cairn_registry_delete_subject(f->reg, "s", true, &vs, &n, NULL), CAIRN_OK);
    assert_int_equal(n, 2);
    cairn_free(vs);
    assert_int_equal(fx_nversions(f->reg, "s", CAIRN_DELETED_INCLUDE), -1);
    int id2 = fx_register_ok(f->reg, "s", rec(b, 3, 0));
    assert_int_equal(id2, id);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_get_version(f->reg, "s", -1, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.version, 1);
    cairn_reg_version_release(&v);
}

static void test_soft_deleted_subject_reregistration_continues_numbering(void **state)
{
    struct fx *f = *state;
    char b[512];
    fx_register_ok(f->reg, "s", rec(b, 1, 0));
    int *vs = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_delete_subject(f->reg, "s", false, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    /* The equal schema is not live any more: it becomes version 2, same id. */
    assert_int_equal(fx_register_ok(f->reg, "s", rec(b, 1, 0)), 1);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_get_version(f->reg, "s", -1, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.version, 2);
    cairn_reg_version_release(&v);
}

static void test_deletes_in_the_wrong_order_give_the_right_codes(void **state)
{
    struct fx *f = *state;
    char b[512];
    int *vs = NULL;
    size_t n = 0;
    int dv = 0;
    cairn_registry_t *r = f->reg;
    assert_int_equal(cairn_registry_delete_subject(r, "s", false, &vs, &n, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, false, &dv, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    fx_register_ok(r, "s", rec(b, 1, 0));
    fx_register_ok(r, "s", rec(b, 1, 1));
    assert_int_equal(cairn_registry_delete_subject(r, "s", true, &vs, &n, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_NOT_SOFT_DELETED);
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, true, &dv, NULL),
                     CAIRN_E_NOT_FOUND_VERSION_NOT_SOFT_DELETED);
    assert_int_equal(cairn_registry_delete_version(r, "s", 9, false, &dv, NULL),
                     CAIRN_E_NOT_FOUND_VERSION);
    assert_int_equal(cairn_registry_delete_version(r, "s", 0, false, &dv, NULL),
                     CAIRN_E_INVALID_VERSION);
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, false, &dv, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, false, &dv, NULL),
                     CAIRN_E_NOT_FOUND_VERSION_SOFT_DELETED);
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, true, &dv, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_version(r, "s", 1, true, &dv, NULL),
                     CAIRN_E_NOT_FOUND_VERSION);
    assert_int_equal(cairn_registry_delete_subject(r, "s", false, &vs, &n, NULL), CAIRN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(vs[0], 2);
    cairn_free(vs);
    assert_int_equal(cairn_registry_delete_subject(r, "s", false, &vs, &n, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT_SOFT_DELETED);
    assert_int_equal(cairn_registry_delete_subject(r, "s", true, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_delete_subject(r, "s", true, &vs, &n, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);
}

static void test_reads_of_deleted_versions_by_id_and_subject(void **state)
{
    struct fx *f = *state;
    char b[512];
    int id = fx_register_ok(f->reg, "s", rec(b, 1, 0));
    fx_register_ok(f->reg, "keep", rec(b, 5, 0));
    int *vs = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_delete_subject(f->reg, "s", false, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    /* Soft-deleted ids stay readable for consumers. */
    cairn_reg_schema_t *sch = NULL;
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id, NULL, &sch, NULL), CAIRN_OK);
    cairn_reg_schema_unref(sch);
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id, "s", &sch, NULL), CAIRN_OK);
    cairn_reg_schema_unref(sch);
    cairn_strlist_t subs;
    assert_int_equal(cairn_registry_subjects_by_id(f->reg, id, false, &subs, NULL), CAIRN_OK);
    assert_int_equal(subs.n, 0);
    cairn_strlist_release(&subs);
    assert_int_equal(cairn_registry_subjects_by_id(f->reg, id, true, &subs, NULL), CAIRN_OK);
    assert_int_equal(subs.n, 1);
    cairn_strlist_release(&subs);
    /* Subject listings per filter. */
    assert_int_equal(cairn_registry_subjects(f->reg, NULL, CAIRN_DELETED_EXCLUDE, &subs, NULL),
                     CAIRN_OK);
    assert_int_equal(subs.n, 1);
    assert_string_equal(subs.items[0], "keep");
    cairn_strlist_release(&subs);
    assert_int_equal(cairn_registry_subjects(f->reg, NULL, CAIRN_DELETED_INCLUDE, &subs, NULL),
                     CAIRN_OK);
    assert_int_equal(subs.n, 2);
    cairn_strlist_release(&subs);
    assert_int_equal(cairn_registry_subjects(f->reg, NULL, CAIRN_DELETED_ONLY, &subs, NULL),
                     CAIRN_OK);
    assert_int_equal(subs.n, 1);
    assert_string_equal(subs.items[0], "s");
    cairn_strlist_release(&subs);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_get_version(f->reg, "s", -1, false, &v, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    int *list = NULL;
    assert_int_equal(cairn_registry_versions(f->reg, "s", CAIRN_DELETED_EXCLUDE, &list, &n, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    /* Hard-deleted: the id is gone. */
    assert_int_equal(cairn_registry_delete_subject(f->reg, "s", true, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id, NULL, &sch, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    assert_int_equal(cairn_registry_subjects_by_id(f->reg, id, true, &subs, NULL),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    /* ...but ids are never reused for another schema, and the same schema gets it back. */
    assert_int_equal(cairn_registry_max_id(f->reg), 2);
    assert_int_equal(fx_register_ok(f->reg, "n", rec(b, 7, 0)), 3);
    assert_int_equal(fx_register_ok(f->reg, "s", rec(b, 1, 0)), id);
}

#define BASE                                                                                       \
    "{\"type\":\"record\",\"name\":\"Base\",\"namespace\":\"com.x\",\"fields\":[{\"name\":\"a\","  \
    "\"type\":\"int\"}]}"
#define USER                                                                                       \
    "{\"type\":\"record\",\"name\":\"User\",\"fields\":[{\"name\":\"b\",\"type\":\"com.x.Base\"}]" \
    "}"

static int register_user(cairn_registry_t *reg,
                         const char *subject,
                         int ref_version,
                         cairn_rc_t want,
                         cairn_error_t *err)
{
    char name[] = "com.x.Base", base[] = "base";
    cairn_reg_ref_t ref = {.name = name, .subject = base, .version = ref_version};
    cairn_reg_request_t req = {.schema = USER, .refs = &ref, .nrefs = 1};
    int id = 0;
    assert_int_equal(fx_register_full(reg, subject, &req, &id, err), want);
    return id;
}

static void test_references_resolve_and_block_deletion(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    /* Unresolvable: no such subject yet, the error names the reference. */
    register_user(f->reg, "user", 1, CAIRN_E_INVALID_SCHEMA, &err);
    assert_non_null(strstr(err.text, "com.x.Base"));
    /* Without the reference the type is unknown. */
    int id0 = 0;
    assert_int_equal(fx_register(f->reg, "user", USER, &id0), CAIRN_E_INVALID_SCHEMA);

    int base = fx_register_ok(f->reg, "base", BASE);
    int user = register_user(f->reg, "user", 1, CAIRN_OK, NULL);
    assert_int_not_equal(user, base);
    /* Registering it again is the same schema: same id, no new version. */
    assert_int_equal(register_user(f->reg, "user", 1, CAIRN_OK, NULL), user);
    assert_int_equal(fx_nversions(f->reg, "user", CAIRN_DELETED_INCLUDE), 1);
    cairn_reg_schema_t *s = NULL;
    assert_int_equal(cairn_registry_schema_by_id(f->reg, user, NULL, &s, NULL), CAIRN_OK);
    assert_int_equal(s->nrefs, 1);
    assert_string_equal(s->refs[0].name, "com.x.Base");
    assert_string_equal(s->refs[0].subject, "base");
    assert_int_equal(s->refs[0].version, 1);
    cairn_reg_schema_unref(s);

    int *ids = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_referenced_by(f->reg, "base", 1, &ids, &n, NULL), CAIRN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], user);
    cairn_free(ids);
    assert_int_equal(cairn_registry_referenced_by(f->reg, "base", 2, &ids, &n, NULL),
                     CAIRN_E_NOT_FOUND_VERSION);
    assert_int_equal(cairn_registry_referenced_by(f->reg, "nope", 1, &ids, &n, NULL),
                     CAIRN_E_NOT_FOUND_SUBJECT);

    int dv;
    int *vs = NULL;
    assert_int_equal(cairn_registry_delete_version(f->reg, "base", 1, false, &dv, NULL),
                     CAIRN_E_CONFLICT_REFERENCE_EXISTS);
    assert_int_equal(cairn_registry_delete_subject(f->reg, "base", false, &vs, &n, NULL),
                     CAIRN_E_CONFLICT_REFERENCE_EXISTS);
    assert_int_equal(fx_nversions(f->reg, "base", CAIRN_DELETED_EXCLUDE), 1);

    /* A referrer that is soft-deleted no longer holds the reference. */
    assert_int_equal(cairn_registry_delete_subject(f->reg, "user", false, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_referenced_by(f->reg, "base", 1, &ids, &n, NULL), CAIRN_OK);
    assert_int_equal(n, 0);
    cairn_free(ids);
    assert_int_equal(cairn_registry_delete_version(f->reg, "base", 1, false, &dv, NULL), CAIRN_OK);
    /* A soft-deleted version cannot be referenced by a new schema. */
    register_user(f->reg, "user2", 1, CAIRN_E_INVALID_SCHEMA, NULL);
}

static void test_reference_to_latest_is_stored_as_a_concrete_version(void **state)
{
    struct fx *f = *state;
    fx_register_ok(f->reg, "base", BASE);
    int user = register_user(f->reg, "user", -1, CAIRN_OK, NULL);
    cairn_reg_schema_t *s = NULL;
    assert_int_equal(cairn_registry_schema_by_id(f->reg, user, NULL, &s, NULL), CAIRN_OK);
    assert_int_equal(s->refs[0].version, 1);
    cairn_reg_schema_unref(s);
    /* And after a reopen the referencing schema still parses (checks use it). */
    fx_reopen(f);
    char name[] = "com.x.Base", base[] = "base";
    cairn_reg_ref_t ref = {.name = name, .subject = base, .version = 1};
    cairn_reg_request_t req = {.schema = USER, .refs = &ref, .nrefs = 1};
    bool ok = false;
    assert_int_equal(cairn_registry_check(f->reg, "user", 0, &req, &ok, NULL, NULL), CAIRN_OK);
    assert_true(ok);
    cairn_reg_version_t v;
    assert_int_equal(cairn_registry_lookup(f->reg, "user", &req, false, &v, NULL), CAIRN_OK);
    assert_int_equal(v.schema->id, user);
    cairn_reg_version_release(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        T(test_soft_delete_keeps_numbering_going),
        T(test_hard_delete_of_whole_subject_restarts_versions_at_one),
        T(test_soft_deleted_subject_reregistration_continues_numbering),
        T(test_deletes_in_the_wrong_order_give_the_right_codes),
        T(test_reads_of_deleted_versions_by_id_and_subject),
        T(test_references_resolve_and_block_deletion),
        T(test_reference_to_latest_is_stored_as_a_concrete_version),
#undef T
    };
    return cmocka_run_group_tests_name("registry.service_delete", tests, NULL, NULL);
}
