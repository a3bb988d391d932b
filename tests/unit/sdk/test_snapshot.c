/* SPDX-License-Identifier: MIT */
/*
 * test_snapshot.c - snapshots on the file backend: written every N events,
 * used on load (proved by counting apply calls), carrying the recent command
 * ids (a repeat straddling a snapshot is still recognised), ignored after a
 * code version bump or a schema change (replay from version 1), and ignored
 * with a warning when corrupt, truncated or of another stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sdk_int.h"
#include "test_service_fixture.h"

static int count_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Writes 1 Open + @p deposits deposits of 10 to "acct-s", command ids d1, d2, ... */
static void fill(struct fx *f, unsigned every, int deposits)
{
    struct bank b = {0};
    cairn_service_t *svc = fx_service(f, NULL, every);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    cairn_result_t res;
    cairn_error_t err = {0};
    assert_int_equal(send_cmd(agg, "acct-s", "Open", "{\"owner\":\"ed\",\"kind\":\"SAVINGS\"}",
                              "open", &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);
    for (int i = 1; i <= deposits; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%d", i);
        assert_int_equal(send_cmd(agg, "acct-s", "Deposit", "{\"amount\":10}", id, &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
    }
    cairn_service_stats_t st;
    cairn_service_stats(svc, &st);
    assert_int_equal(st.snapshots_written, every ? (1 + (unsigned)deposits) / every : 0);
    cairn_service_destroy(svc);
}

/* Loads acct-s in a new service with @p def_version; returns the applies it took. */
static long load_count(
    struct fx *f, unsigned every, int code_version, long long *balance, cairn_service_stats_t *st)
{
    struct bank b = {0};
    cairn_service_t *svc = fx_service(f, NULL, every);
    cairn_aggregate_def_t d = acct_def(&b);
    cairn_aggregate_t *agg = NULL;
    cairn_error_t err = {0};
    d.code_version = code_version;
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_OK);
    json_t *js = NULL;
    uint64_t v = 0;
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-s", &js, &v, &err), CAIRN_OK);
    *balance = json_integer_value(json_object_get(js, "balance"));
    json_decref(js);
    cairn_service_stats(svc, st);
    cairn_service_destroy(svc);
    return atomic_load(&b.applies);
}

static void test_snapshot_every_n_is_used_on_load(void **state)
{
    struct fx *f = *state;
    char snapdir[128];
    long long bal = 0;
    cairn_service_stats_t st;
    fill(f, 5, 11); /* versions 1..12: snapshots at 5 and 10 */
    snprintf(snapdir, sizeof snapdir, "%s/snapshots", f->dir);
    assert_int_equal(count_files(snapdir), 1); /* one file per stream, replaced */

    assert_int_equal(load_count(f, 5, 1, &bal, &st), 2); /* only versions 11 and 12 */
    assert_int_equal(bal, 110);
    assert_int_equal(st.snapshots_loaded, 1);
    assert_int_equal(st.events_replayed, 2);

    /* Snapshots off: the whole stream. */
    assert_int_equal(load_count(f, 0, 1, &bal, &st), 12);
    assert_int_equal(bal, 110);
}

static void test_snapshot_ignored_after_code_version_bump(void **state)
{
    struct fx *f = *state;
    long long bal = 0;
    cairn_service_stats_t st;
    fill(f, 5, 11);
    assert_int_equal(load_count(f, 5, 2, &bal, &st), 12);
    assert_int_equal(bal, 110);
    assert_int_equal(st.snapshots_loaded, 0);
    assert_int_equal(st.snapshots_ignored, 1);
}

static void test_snapshot_ignored_when_event_schemas_change(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    fill(f, 5, 11);
    cairn_service_t *svc = fx_service(f, NULL, 5);
    cairn_aggregate_def_t d = acct_def(&b);
    /* Deposited gains a field with a default: compatible, but a new fingerprint. */
    cairn_event_type_t ev[3] = {acct_events[0], acct_events[1], acct_events[2]};
    ev[1].schema = "{\"type\":\"record\",\"name\":\"Deposited\",\"namespace\":\"" NS
                   "\",\"fields\":[{\"name\":\"amount\",\"type\":\"long\"},"
                   "{\"name\":\"memo\",\"type\":\"string\",\"default\":\"\"}]}";
    d.events = ev;
    cairn_aggregate_t *agg = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_OK);
    json_t *js = NULL;
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-s", &js, NULL, &err), CAIRN_OK);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 110);
    json_decref(js);
    assert_int_equal(atomic_load(&b.applies), 12);
    cairn_service_stats_t st;
    cairn_service_stats(svc, &st);
    assert_int_equal(st.snapshots_ignored, 1);
    cairn_service_destroy(svc);
}

static void test_snapshot_keeps_recent_command_ids(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    fill(f, 5, 11);
    cairn_service_t *svc = fx_service(f, NULL, 5);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    cairn_result_t res;
    cairn_error_t err = {0};
    /* d3 is version 4, inside the snapshot at 10: only the snapshot knows it. */
    assert_int_equal(send_cmd(agg, "acct-s", "Deposit", "{\"amount\":10}", "d3", &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.repeated, 1);
    assert_int_equal(res.version, 4);
    assert_int_equal(atomic_load(&b.applies), 2);
    cairn_result_release(&res);
    assert_int_equal(cairn_log_stream_version(cairn_service_log(svc), "acct-s"), 12);
    cairn_service_destroy(svc);
}

static void corrupt_and_load(struct fx *f, void (*damage)(const char *path))
{
    char path[4096], snapdir[128];
    long long bal = 0;
    cairn_service_stats_t st;
    fill(f, 5, 11);
    snprintf(snapdir, sizeof snapdir, "%s/snapshots", f->dir);
    assert_int_equal(cairn__snapshot_path(snapdir, "acct-s", path, sizeof path), CAIRN_OK);
    damage(path);
    assert_int_equal(load_count(f, 5, 1, &bal, &st), 12);
    assert_int_equal(bal, 110);
    assert_int_equal(st.snapshots_loaded, 0);
}

static void flip_a_byte(const char *path)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, -20, SEEK_END), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, -20, SEEK_END), 0);
    fputc(c ^ 0x20, fp);
    fclose(fp);
}

static void truncate_it(const char *path)
{
    assert_int_equal(truncate(path, 30), 0);
}

static void garbage(const char *path)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("not a snapshot at all\n", fp);
    fclose(fp);
}

static void test_corrupt_snapshot_is_ignored(void **state)
{
    corrupt_and_load(*state, flip_a_byte);
}

static void test_truncated_snapshot_is_ignored(void **state)
{
    corrupt_and_load(*state, truncate_it);
}

static void test_garbage_snapshot_is_ignored(void **state)
{
    corrupt_and_load(*state, garbage);
}

static void test_snapshot_of_another_stream_is_ignored(void **state)
{
    struct fx *f = *state;
    char from[4096], to[4096], snapdir[128];
    long long bal = 0;
    cairn_service_stats_t st;
    fill(f, 5, 11);
    snprintf(snapdir, sizeof snapdir, "%s/snapshots", f->dir);
    assert_int_equal(cairn__snapshot_path(snapdir, "acct-s", from, sizeof from), CAIRN_OK);
    /* Another stream with 2 events, given acct-s's snapshot as its own. */
    {
        struct bank b = {0};
        cairn_service_t *svc = fx_service(f, NULL, 0);
        cairn_aggregate_t *agg = fx_account(svc, &b);
        cairn_result_t res;
        cairn_error_t err = {0};
        assert_int_equal(send_cmd(agg, "acct-t", "Open", "{\"owner\":\"fi\",\"kind\":\"SAVINGS\"}",
                                  NULL, &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
        cairn_service_destroy(svc);
    }
    assert_int_equal(cairn__snapshot_path(snapdir, "acct-t", to, sizeof to), CAIRN_OK);
    assert_int_equal(rename(from, to), 0);
    struct bank b = {0};
    cairn_service_t *svc = fx_service(f, NULL, 5);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    json_t *js = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-t", &js, NULL, &err), CAIRN_OK);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 0);
    json_decref(js);
    cairn_service_stats(svc, &st);
    assert_int_equal(st.snapshots_ignored, 1);
    assert_int_equal(atomic_load(&b.applies), 1);
    cairn_service_destroy(svc);
    (void)bal;
}

static void test_long_stream_ids_get_hashed_file_names(void **state)
{
    char path[4096], longid[300];
    (void)state;
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(cairn__snapshot_path("/d", longid, path, sizeof path), CAIRN_OK);
    assert_true(strlen(path) < 40);
    assert_int_equal(cairn__snapshot_path("/d", "a/b", path, sizeof path), CAIRN_OK);
    assert_string_equal(path, "/d/612f62.snap");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_every_n_is_used_on_load, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_ignored_after_code_version_bump, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_ignored_when_event_schemas_change, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_keeps_recent_command_ids, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot_is_ignored, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_snapshot_is_ignored, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_snapshot_is_ignored, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_of_another_stream_is_ignored, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(test_long_stream_ids_get_hashed_file_names),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("sdk.snapshot", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
