/* SPDX-License-Identifier: MIT */
/*
 * test_service_failed.c - a failed fdatasync is fatal: the registration that
 * met it is not acknowledged, every later call refuses with
 * CAIRN_E_IO_FSYNC, and a reopen recovers the state the log holds.
 */
#include "test_service_fixture.h"

#include <errno.h>

#include "eventstore/eventstore_int.h"
#include "registry/service/service_int.h"

static int failing_sync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

static void test_failed_fsync_refuses_the_write_and_everything_after(void **state)
{
    struct fx *f = *state;
    char a[512], b[512];
    int id1 = fx_register_ok(f->reg, "before", fx_record(a, sizeof a, "A", 2, 0));
    assert_true(id1 > 0);

    cairn__log_set_sync_fn(f->reg->log, failing_sync);
    int id2 = 0;
    cairn_reg_request_t req = {.schema = fx_record(b, sizeof b, "B", 3, 0)};
    req.schema_len = strlen(req.schema);
    cairn_error_t err = {0};
    assert_int_equal(fx_register_full(f->reg, "during", &req, &id2, &err), CAIRN_E_IO_FSYNC);
    assert_true(err.flags & CAIRN_ERR_FATAL);

    /* Reads and writes alike refuse from now on: nothing undurable leaks out. */
    cairn_reg_schema_t *s = NULL;
    cairn_error_t err2 = {0};
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id1, NULL, &s, &err2), CAIRN_E_IO_FSYNC);
    assert_null(s);
    assert_int_equal(fx_register(f->reg, "after", fx_record(b, sizeof b, "C", 1, 0), &id2),
                     CAIRN_E_IO_FSYNC);

    /* The acknowledged registration survives the reopen. */
    fx_reopen(f);
    assert_int_equal(cairn_registry_schema_by_id(f->reg, id1, "before", &s, NULL), CAIRN_OK);
    cairn_reg_schema_unref(s);
    assert_int_equal(fx_nversions(f->reg, "after", CAIRN_DELETED_INCLUDE), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failed_fsync_refuses_the_write_and_everything_after,
                                        fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests_name("registry.service_failed", tests, NULL, NULL);
}
