/* SPDX-License-Identifier: MIT */
/* test_common.c - the result-code table, error recording, capped buffers, CRC32C. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "common.h"

static void test_rc_table_maps_confluent_codes(void **state)
{
    (void)state;
    assert_int_equal(cairn_rc_confluent_code(CAIRN_E_NOT_FOUND_SUBJECT), 40401);
    assert_int_equal(cairn_rc_http_status(CAIRN_E_NOT_FOUND_SUBJECT), 404);
    assert_int_equal(cairn_rc_confluent_code(CAIRN_E_NOT_FOUND_VERSION_NOT_SOFT_DELETED), 40407);
    assert_int_equal(cairn_rc_confluent_code(CAIRN_E_INVALID_SCHEMA), 42201);
    assert_int_equal(cairn_rc_http_status(CAIRN_E_INVALID_SCHEMA), 422);
    assert_int_equal(cairn_rc_confluent_code(CAIRN_E_CONFLICT_REFERENCE_EXISTS), 42206);
    assert_int_equal(cairn_rc_http_status(CAIRN_E_INCOMPATIBLE), 409);
    assert_int_equal(cairn_rc_confluent_code(CAIRN_E_INCOMPATIBLE), 409);
    assert_int_equal(cairn_rc_exit_code(CAIRN_E_INCOMPATIBLE), 1);
    assert_int_equal(cairn_rc_exit_code(CAIRN_E_CONFLICT_VERSION), 3);
    assert_int_equal(cairn_rc_exit_code(CAIRN_OK), 0);
    assert_string_equal(cairn_rc_name(CAIRN_E_NOT_FOUND_SCHEMA), "CAIRN_E_NOT_FOUND_SCHEMA");
}

static void test_rc_extended_codes_belong_to_their_family(void **state)
{
    (void)state;
    assert_int_equal(CAIRN_RC_PRIMARY(CAIRN_E_NOT_FOUND_SUBJECT), CAIRN_E_NOT_FOUND);
    assert_int_equal(CAIRN_RC_PRIMARY(CAIRN_E_INVALID_SCHEMA), CAIRN_E_INVALID);
    assert_int_equal(CAIRN_RC_PRIMARY(CAIRN_E_IO_FSYNC), CAIRN_E_IO);
    /* An extended code missing from the table answers with its family's row. */
    cairn_rc_t unknown = (cairn_rc_t)CAIRN_PRIMARY(2, 200);
    assert_int_equal(cairn_rc_http_status(unknown), 404);
    assert_string_equal(cairn_rc_name(unknown), "CAIRN_E_NOT_FOUND");
}

static void test_error_first_recorded_wins(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    assert_int_equal(cairn__error_set(&err, CAIRN_E_NOT_FOUND_SUBJECT, 0, "orders",
                                      "subject '%s' not found", "orders"),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    cairn__error_set(&err, CAIRN_E_IO, CAIRN_ERR_FATAL, "x", "later");
    assert_int_equal(err.code, CAIRN_E_NOT_FOUND_SUBJECT);
    assert_string_equal(err.text, "subject 'orders' not found");
    assert_string_equal(err.where, "orders");
    assert_int_equal(err.flags, 0);
    /* NULL err is allowed and still returns the code. */
    assert_int_equal(cairn__error_set(NULL, CAIRN_E_IO, 0, NULL, "x"), CAIRN_E_IO);
}

static void test_buf_refuses_past_its_cap_and_stays_unchanged(void **state)
{
    (void)state;
    cairn_buf_t b;
    cairn_buf_init(&b, 8);
    assert_int_equal(cairn_buf_appends(&b, "abcdef"), CAIRN_OK);
    assert_int_equal(cairn_buf_appends(&b, "ghi"), CAIRN_E_INVALID_TOO_LARGE);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    assert_int_equal(cairn_buf_printf(&b, "%d", 12), CAIRN_OK);
    assert_string_equal(b.data, "abcdef12");
    assert_int_equal(cairn_buf_append(&b, "x", 1), CAIRN_E_INVALID_TOO_LARGE);
    size_t len;
    char *s = cairn_buf_detach(&b, &len);
    assert_int_equal(len, 8);
    assert_string_equal(s, "abcdef12");
    assert_null(b.data);
    cairn_free(s);
    cairn_buf_release(&b);
}

static void test_crc32c_matches_known_vectors(void **state)
{
    (void)state;
    assert_int_equal(cairn__crc32c(0, "123456789", 9), 0xE3069283u);
    unsigned char zeros[32] = {0};
    assert_int_equal(cairn__crc32c(0, zeros, sizeof zeros), 0x8A9136AAu);
    /* Incremental use equals one pass. */
    uint32_t c = cairn__crc32c(0, "1234", 4);
    assert_int_equal(cairn__crc32c(c, "56789", 5), 0xE3069283u);
}

static void test_strlist_owns_its_strings(void **state)
{
    (void)state;
    cairn_strlist_t l;
    cairn_strlist_init(&l);
    for (int i = 0; i < 20; i++)
        assert_int_equal(cairn_strlist_pushf(&l, "item-%d", i), CAIRN_OK);
    assert_int_equal(l.n, 20);
    assert_string_equal(l.items[19], "item-19");
    cairn_strlist_release(&l);
    assert_int_equal(l.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rc_table_maps_confluent_codes),
        cmocka_unit_test(test_rc_extended_codes_belong_to_their_family),
        cmocka_unit_test(test_error_first_recorded_wins),
        cmocka_unit_test(test_buf_refuses_past_its_cap_and_stays_unchanged),
        cmocka_unit_test(test_crc32c_matches_known_vectors),
        cmocka_unit_test(test_strlist_owns_its_strings),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
