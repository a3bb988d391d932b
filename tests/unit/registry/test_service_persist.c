/* SPDX-License-Identifier: MIT */
/*
 * test_service_persist.c - the registry is a fold of its own log: a reopen
 * rebuilds exactly the state that was visible, concurrent registrations get
 * distinct ids and all survive a reopen, and a log holding a record the
 * fold cannot apply is reported as corrupt at open.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "cairn/eventstore.h"
#include "test_service_fixture.h"

static void test_reopen_rebuilds_the_identical_state(void **state)
{
    struct fx *f = *state;
    cairn_registry_t *r = f->reg;
    char b[512];
    int *vs = NULL, dv = 0;
    size_t n = 0;
    fx_register_ok(r, "a", fx_record(b, sizeof b, "r", 1, 0));
    fx_register_ok(r, "a", fx_record(b, sizeof b, "r", 1, 1));
    fx_register_ok(r, "a", fx_record(b, sizeof b, "r", 0, 1));
    fx_register_ok(r, "b", fx_record(b, sizeof b, "r", 1, 0));
    fx_register_ok(r, "c", "\"int\"");
    fx_register_ok(r, "d", "\"long\"");
    cairn_reg_request_t norm = {.schema = "{\"type\":\"enum\",\"name\":\"e\",\"namespace\":\"n\","
                                          "\"symbols\":[\"A\",\"B\"]}",
                                .normalize = true};
    int id = 0;
    assert_int_equal(fx_register_full(r, "e", &norm, &id, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_version(r, "a", 2, false, &dv, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_subject(r, "c", false, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_delete_subject(r, "d", false, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_delete_subject(r, "d", true, &vs, &n, NULL), CAIRN_OK);
    cairn_free(vs);
    assert_int_equal(cairn_registry_set_level(r, "b", CAIRN_COMPAT_FULL_TRANSITIVE, NULL),
                     CAIRN_OK);
    assert_int_equal(cairn_registry_set_level(r, NULL, CAIRN_COMPAT_FORWARD, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_set_mode(r, "c", CAIRN_MODE_READONLY, false, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_set_mode(r, "zz", CAIRN_MODE_IMPORT, false, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_set_level(r, "e", CAIRN_COMPAT_NONE, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_delete_level(r, "e", NULL, NULL), CAIRN_OK);

    char *before = fx_dump(r);
    cairn_strlist_t subs_before;
    assert_int_equal(cairn_registry_subjects(r, NULL, CAIRN_DELETED_INCLUDE, &subs_before, NULL),
                     CAIRN_OK);
    cairn_reg_mode_t zz;
    assert_int_equal(cairn_registry_get_mode(r, "zz", false, &zz, NULL), CAIRN_OK);
    fx_reopen(f);
    char *after = fx_dump(f->reg);
    assert_string_equal(before, after);
    cairn_strlist_t subs_after;
    assert_int_equal(
        cairn_registry_subjects(f->reg, NULL, CAIRN_DELETED_INCLUDE, &subs_after, NULL), CAIRN_OK);
    assert_int_equal(subs_before.n, subs_after.n);
    for (size_t i = 0; i < subs_before.n; i++)
        assert_string_equal(subs_before.items[i], subs_after.items[i]);
    cairn_reg_mode_t zz2;
    assert_int_equal(cairn_registry_get_mode(f->reg, "zz", false, &zz2, NULL), CAIRN_OK);
    assert_int_equal(zz, zz2);
    /* The dump is not trivially empty. */
    assert_non_null(strstr(before, "a v2 id=2 del=1"));
    assert_non_null(strstr(before, "global level=3"));
    cairn_strlist_release(&subs_before);
    cairn_strlist_release(&subs_after);
    free(before);
    free(after);
    /* And the reopened registry goes on writing after what it folded. */
    int fresh = fx_register_ok(f->reg, "new", "\"float\"");
    assert_int_equal(fresh, 7);
    assert_int_equal(cairn_registry_max_id(f->reg), 7);
    fx_reopen(f);
    assert_int_equal(fx_nversions(f->reg, "new", CAIRN_DELETED_EXCLUDE), 1);
}

#define NTHREADS   16
#define PER_THREAD 12

struct worker {
    cairn_registry_t *reg;
    int index;
    int ids[PER_THREAD];
    cairn_rc_t rc;
};

static void *register_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char subject[64], schema[256];
        snprintf(subject, sizeof subject, "t%d-%d", w->index, i);
        snprintf(schema, sizeof schema,
                 "{\"type\":\"record\",\"name\":\"R%d_%d\",\"fields\":[{\"name\":\"a\",\"type\":"
                 "\"int\"}]}",
                 w->index, i);
        cairn_reg_request_t req = {.schema = schema};
        cairn_error_t err = {0};
        w->rc = cairn_registry_register(w->reg, subject, &req, &w->ids[i], NULL, &err);
        if (w->rc != CAIRN_OK)
            break;
    }
    return NULL;
}

struct reader {
    cairn_registry_t *reg;
    atomic_bool *stop;
    long reads;
    int failures;
};

/* Whatever id a reader sees as assigned must be readable right away. */
static void *read_while_writing(void *arg)
{
    struct reader *r = arg;
    for (;;) {
        /* The last round runs after every writer returned. */
        bool last = atomic_load(r->stop);
        int max = cairn_registry_max_id(r->reg);
        if (max) {
            cairn_reg_schema_t *s = NULL;
            if (cairn_registry_schema_by_id(r->reg, max, NULL, &s, NULL) != CAIRN_OK ||
                s->id != max)
                r->failures++;
            cairn_reg_schema_unref(s);
            r->reads++;
        }
        if (last)
            break;
    }
    return NULL;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void test_concurrent_registrations_get_distinct_ids_and_survive_reopen(void **state)
{
    struct fx *f = *state;
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS], rth[2];
    atomic_bool stop = false;
    struct reader rd[2];
    for (int t = 0; t < 2; t++) {
        rd[t] = (struct reader){.reg = f->reg, .stop = &stop};
        assert_int_equal(pthread_create(&rth[t], NULL, read_while_writing, &rd[t]), 0);
    }
    for (int t = 0; t < NTHREADS; t++) {
        w[t] = (struct worker){.reg = f->reg, .index = t};
        assert_int_equal(pthread_create(&th[t], NULL, register_many, &w[t]), 0);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&stop, true);
    for (int t = 0; t < 2; t++) {
        pthread_join(rth[t], NULL);
        assert_int_equal(rd[t].failures, 0);
        assert_true(rd[t].reads > 0);
    }
    int all[NTHREADS * PER_THREAD];
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(w[t].rc, CAIRN_OK);
        memcpy(&all[t * PER_THREAD], w[t].ids, sizeof w[t].ids);
    }
    qsort(all, NTHREADS * PER_THREAD, sizeof all[0], cmp_int);
    for (int i = 0; i < NTHREADS * PER_THREAD; i++)
        assert_int_equal(all[i], i + 1); /* distinct, dense */
    assert_int_equal(cairn_registry_max_id(f->reg), NTHREADS * PER_THREAD);

    fx_reopen(f);
    for (int t = 0; t < NTHREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            char subject[64];
            snprintf(subject, sizeof subject, "t%d-%d", t, i);
            cairn_reg_version_t v;
            assert_int_equal(cairn_registry_get_version(f->reg, subject, 1, false, &v, NULL),
                             CAIRN_OK);
            assert_int_equal(v.schema->id, w[t].ids[i]);
            char name[32];
            snprintf(name, sizeof name, "R%d_%d", t, i);
            assert_non_null(strstr(v.schema->text, name));
            cairn_reg_version_release(&v);
        }
    }
}

/* Appends @p value as a raw record of the registry's stream, as a foreign
 * writer (or a bug) could have. */
static void append_raw(const char *dir, const char *value)
{
    char url[400];
    snprintf(url, sizeof url, "file:%s", dir);
    cairn_log_t *log = NULL;
    assert_int_equal(cairn_log_open(url, NULL, &log, NULL), CAIRN_OK);
    cairn_record_t rec = {.value = value, .value_len = strlen(value)};
    assert_int_equal(cairn_log_append(log, "_registry", CAIRN_EXPECT_ANY, &rec, 1, NULL, NULL),
                     CAIRN_OK);
    cairn_log_close(log);
}

static void expect_corrupt(struct fx *f, const char *value)
{
    cairn_registry_close(f->reg);
    f->reg = NULL;
    append_raw(f->dir, value);
    cairn_registry_options_t o = {.data_dir = f->dir};
    cairn_error_t err = {0};
    cairn_registry_t *reg = NULL;
    assert_int_equal(cairn_registry_open(&o, &reg, &err), CAIRN_E_CORRUPT);
    assert_null(reg);
    assert_non_null(strstr(err.text, "position"));
}

static void test_corrupt_registry_log_is_reported_at_open(void **state)
{
    struct fx *f = *state;
    fx_register_ok(f->reg, "s", "\"int\"");
    expect_corrupt(f, "this is not json");
}

static void test_unknown_record_type_is_corrupt(void **state)
{
    expect_corrupt(*state, "{\"t\":\"frobnicate\",\"subject\":\"s\"}");
}

static void test_record_contradicting_the_state_is_corrupt(void **state)
{
    struct fx *f = *state;
    fx_register_ok(f->reg, "s", "\"int\"");
    /* Version 1 of "s" already exists with id 1. */
    expect_corrupt(f, "{\"t\":\"schema\",\"subject\":\"s\",\"version\":1,\"id\":2,\"type\":"
                      "\"AVRO\",\"schema\":\"\\\"long\\\"\",\"refs\":[]}");
}

static void test_record_missing_fields_is_corrupt(void **state)
{
    expect_corrupt(*state, "{\"t\":\"delete_version\",\"subject\":\"s\"}");
}

static void test_second_open_of_a_data_dir_is_refused(void **state)
{
    struct fx *f = *state;
    /* The directory lock is per process (fcntl): try from a child. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cairn_registry_options_t o = {.data_dir = f->dir};
        cairn_registry_t *other = NULL;
        cairn_rc_t rc = cairn_registry_open(&o, &other, NULL);
        _exit(rc == CAIRN_E_CONFLICT_LOCKED && !other ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        T(test_reopen_rebuilds_the_identical_state),
        T(test_concurrent_registrations_get_distinct_ids_and_survive_reopen),
        T(test_corrupt_registry_log_is_reported_at_open),
        T(test_unknown_record_type_is_corrupt),
        T(test_record_contradicting_the_state_is_corrupt),
        T(test_record_missing_fields_is_corrupt),
        T(test_second_open_of_a_data_dir_is_refused),
#undef T
    };
    return cmocka_run_group_tests_name("registry.service_persist", tests, NULL, NULL);
}
