/* SPDX-License-Identifier: MIT */
/*
 * test_upcast.c - how old events load: retired event types (renamed, or
 * split in two) turned into current ones by upcast hooks; an event schema
 * evolved compatibly (v2 adds a field with a default: v1 events load with
 * the default, and an upcast hook can tell old writer ids from the current
 * one); an incompatible v3 refused at registration; and the registry going
 * away: commands whose schemas are cached keep working, one that needs an
 * uncached schema fails quickly with a RETRIABLE error and appends nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_service_fixture.h"

#define EV_MONEY_ADDED                                                                             \
    "{\"type\":\"record\",\"name\":\"MoneyAdded\",\"namespace\":\"" NS "\",\"fields\":["           \
    "{\"name\":\"amount\",\"type\":\"long\"}]}"
#define EV_OPENED_WITH_DEPOSIT                                                                     \
    "{\"type\":\"record\",\"name\":\"OpenedWithDeposit\",\"namespace\":\"" NS "\",\"fields\":["    \
    "{\"name\":\"owner\",\"type\":\"string\"},{\"name\":\"amount\",\"type\":\"long\"}]}"
#define EV_DEPOSITED_V2                                                                            \
    "{\"type\":\"record\",\"name\":\"Deposited\",\"namespace\":\"" NS "\",\"fields\":["            \
    "{\"name\":\"amount\",\"type\":\"long\"},"                                                     \
    "{\"name\":\"memo\",\"type\":\"string\",\"default\":\"\"}]}"
#define EV_DEPOSITED_V3_BAD                                                                        \
    "{\"type\":\"record\",\"name\":\"Deposited\",\"namespace\":\"" NS "\",\"fields\":["            \
    "{\"name\":\"amount\",\"type\":\"string\"},"                                                   \
    "{\"name\":\"memo\",\"type\":\"string\",\"default\":\"\"}]}"
#define CMD_DEPOSIT_V2                                                                             \
    "{\"type\":\"record\",\"name\":\"Deposit\",\"namespace\":\"" NS ".cmd\",\"fields\":["          \
    "{\"name\":\"amount\",\"type\":\"long\"},"                                                     \
    "{\"name\":\"memo\",\"type\":\"string\",\"default\":\"\"}]}"

/* An old writer: appends one event as a former version of the service did. */
static void append_old(cairn_log_t *log,
                       cairn_serde_t *serde,
                       const char *stream,
                       const char *type,
                       const char *schema_text,
                       const char *json)
{
    cairn_registered_schema_t *schema = NULL;
    cairn_error_t err = {0};
    unsigned char *buf = NULL;
    size_t len = 0;
    json_t *v = json_loads(json, 0, NULL);
    assert_non_null(v);
    assert_int_equal(cairn_serde_schema(serde, "bank", schema_text, &schema, &err), CAIRN_OK);
    assert_int_equal(cairn_serde_encode(serde, schema, v, &buf, &len, &err), CAIRN_OK);
    cairn_header_t h[2] = {{.name = "cairn.type", .value = type, .value_len = strlen(type)},
                           {.name = "cairn.causation", .value = "old", .value_len = 3}};
    cairn_record_t rec = {.value = buf, .value_len = len, .headers = h, .header_count = 2};
    assert_int_equal(cairn_log_append(log, stream, CAIRN_EXPECT_ANY, &rec, 1, NULL, &err),
                     CAIRN_OK);
    cairn_free(buf);
    cairn_registered_schema_release(schema);
    json_decref(v);
}

static cairn_rc_t upcast_money_added(void *opaque,
                                     const cairn_event_view_t *ev,
                                     cairn_emitter_t *out,
                                     cairn_error_t *err)
{
    (void)opaque;
    (void)err;
    assert_string_equal(ev->type, "MoneyAdded");
    assert_int_equal(ev->reader_schema_id, 0); /* retired: read with its writer's schema */
    return cairn_emit_take(
        out, "Deposited",
        json_pack("{s:O, s:s}", "amount", json_object_get(ev->body, "amount"), "memo", "renamed"));
}

static cairn_rc_t upcast_opened_with_deposit(void *opaque,
                                             const cairn_event_view_t *ev,
                                             cairn_emitter_t *out,
                                             cairn_error_t *err)
{
    cairn_rc_t rc;
    (void)opaque;
    (void)err;
    rc = cairn_emit_take(out, "Opened",
                         json_pack("{s:O}", "owner", json_object_get(ev->body, "owner")));
    if (rc == CAIRN_OK)
        rc = cairn_emit_take(out, "Deposited",
                             json_pack("{s:O, s:s}", "amount", json_object_get(ev->body, "amount"),
                                       "memo", "split"));
    return rc;
}

/* Current Deposited: v1 data gets memo "legacy" (Avro's default would be ""). */
static cairn_rc_t upcast_deposited(void *opaque,
                                   const cairn_event_view_t *ev,
                                   cairn_emitter_t *out,
                                   cairn_error_t *err)
{
    json_t *copy = json_deep_copy(ev->body);
    (void)opaque;
    (void)err;
    /* Resolution already filled the default: the hook sees a v2-shaped body. */
    assert_true(json_is_string(json_object_get(ev->body, "memo")));
    assert_true(ev->reader_schema_id > 0);
    if (ev->writer_schema_id != ev->reader_schema_id)
        json_object_set_new(copy, "memo", json_string("legacy"));
    return cairn_emit_take(out, "Deposited", copy);
}

static const cairn_command_type_t v2_commands[] = {
    {.name = "Open", .schema = CMD_OPEN},
    {.name = "Deposit", .schema = CMD_DEPOSIT_V2},
    {.name = "Withdraw", .schema = CMD_WITHDRAW},
};

static void test_retired_types_are_upcast_renamed_and_split(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_log_t *log = NULL;
    cairn_log_options_t lo = {.no_sync = 1};
    assert_int_equal(cairn_log_open(f->url, &lo, &log, &err), CAIRN_OK);
    append_old(log, f->serde, "acct-u", "OpenedWithDeposit", EV_OPENED_WITH_DEPOSIT,
               "{\"owner\":\"gu\",\"amount\":50}");
    append_old(log, f->serde, "acct-u", "MoneyAdded", EV_MONEY_ADDED, "{\"amount\":20}");

    struct bank b = {0};
    cairn_event_type_t ev[] = {
        {.name = "Opened", .schema = EV_OPENED},
        {.name = "Deposited", .schema = EV_DEPOSITED_V2},
        {.name = "Withdrawn", .schema = EV_WITHDRAWN},
        {.name = "MoneyAdded", .retired = 1, .upcast = upcast_money_added},
        {.name = "OpenedWithDeposit", .retired = 1, .upcast = upcast_opened_with_deposit},
    };
    cairn_aggregate_def_t d = acct_def(&b);
    d.events = ev;
    d.n_events = 5;
    d.commands = v2_commands;
    cairn_service_options_t so = {.log = log, .serde = f->serde, .topic = "bank"};
    cairn_service_t *svc = NULL;
    cairn_aggregate_t *agg = NULL;
    assert_int_equal(cairn_service_new(&so, &svc, &err), CAIRN_OK);
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_OK);

    json_t *js = NULL;
    uint64_t v = 0;
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-u", &js, &v, &err), CAIRN_OK);
    assert_int_equal(v, 2);
    assert_true(json_is_true(json_object_get(js, "opened")));
    assert_string_equal(json_string_value(json_object_get(js, "owner")), "gu");
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 70);
    assert_string_equal(json_string_value(json_object_get(js, "last_memo")), "renamed");
    json_decref(js);
    assert_int_equal(atomic_load(&b.applies), 3); /* 2 from the split + 1 */

    /* The aggregate goes on in its current form. */
    cairn_result_t res;
    assert_int_equal(
        send_cmd(agg, "acct-u", "Deposit", "{\"amount\":5,\"memo\":\"now\"}", NULL, &res, &err),
        CAIRN_OK);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    cairn_aggregate_forget(agg, "acct-u");
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-u", &js, &v, &err), CAIRN_OK);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 75);
    assert_string_equal(json_string_value(json_object_get(js, "last_memo")), "now");
    json_decref(js);

    cairn_service_destroy(svc);
    cairn_log_close(log);
}

static void test_retired_type_without_upcast_is_refused(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_error_t err = {0};
    cairn_event_type_t ev[] = {
        {.name = "Opened", .schema = EV_OPENED},
        {.name = "MoneyAdded", .retired = 1},
    };
    cairn_aggregate_def_t d = acct_def(&b);
    d.events = ev;
    d.n_events = 2;
    cairn_service_t *svc = fx_service(f, NULL, 0);
    cairn_aggregate_t *agg = NULL;
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_E_INVALID);
    assert_null(agg);
    cairn_service_destroy(svc);
}

static void test_compatible_v2_loads_v1_events_and_v3_is_refused(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_result_t res;
    /* v1 of the service. */
    {
        struct bank b = {0};
        cairn_service_t *svc = fx_service(f, NULL, 0);
        cairn_aggregate_t *agg = fx_account(svc, &b);
        assert_int_equal(send_cmd(agg, "acct-e", "Open", "{\"owner\":\"hu\",\"kind\":\"SAVINGS\"}",
                                  NULL, &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
        assert_int_equal(send_cmd(agg, "acct-e", "Deposit", "{\"amount\":10}", NULL, &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
        cairn_service_destroy(svc);
    }
    /* v2: Deposited and Deposit gain a memo with a default. */
    struct bank b = {0};
    cairn_event_type_t ev[] = {
        {.name = "Opened", .schema = EV_OPENED},
        {.name = "Deposited", .schema = EV_DEPOSITED_V2},
        {.name = "Withdrawn", .schema = EV_WITHDRAWN},
    };
    cairn_aggregate_def_t d = acct_def(&b);
    d.events = ev;
    d.commands = v2_commands;
    cairn_service_t *svc = fx_service(f, NULL, 0);
    cairn_aggregate_t *agg = NULL;
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_OK);
    json_t *js = NULL;
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-e", &js, NULL, &err), CAIRN_OK);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 10);
    assert_int_equal(json_integer_value(json_object_get(js, "memos")), 1); /* default filled */
    assert_string_equal(json_string_value(json_object_get(js, "last_memo")), "");
    json_decref(js);
    assert_int_equal(
        send_cmd(agg, "acct-e", "Deposit", "{\"amount\":5,\"memo\":\"v2\"}", NULL, &res, &err),
        CAIRN_OK);
    cairn_result_release(&res);
    cairn_service_destroy(svc);

    /* v2 with an upcast hook that tells old writer ids from the current one. */
    {
        struct bank b2 = {0};
        ev[1].upcast = upcast_deposited;
        cairn_aggregate_def_t d2 = acct_def(&b2);
        d2.events = ev;
        d2.commands = v2_commands;
        cairn_service_t *s2 = fx_service(f, NULL, 0);
        cairn_aggregate_t *a2 = NULL;
        assert_int_equal(cairn_service_add_aggregate(s2, &d2, &a2, &err), CAIRN_OK);
        assert_int_equal(send_cmd(a2, "acct-e", "Deposit", "{\"amount\":1}", NULL, &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
        cairn_aggregate_forget(a2, "acct-e");
        assert_int_equal(cairn_aggregate_state_json(a2, "acct-e", &js, NULL, &err), CAIRN_OK);
        assert_int_equal(json_integer_value(json_object_get(js, "balance")), 16);
        assert_int_equal(json_integer_value(json_object_get(js, "memos")), 3);
        assert_string_equal(json_string_value(json_object_get(js, "last_memo")), "");
        json_decref(js);
        cairn_service_destroy(s2);
        ev[1].upcast = NULL;
    }

    /* v3: amount becomes a string: the registry refuses it at start. */
    struct bank b3 = {0};
    ev[1].schema = EV_DEPOSITED_V3_BAD;
    cairn_aggregate_def_t d3 = acct_def(&b3);
    d3.events = ev;
    d3.commands = v2_commands;
    svc = fx_service(f, NULL, 0);
    agg = NULL;
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_service_add_aggregate(svc, &d3, &agg, &err), CAIRN_E_INCOMPATIBLE);
    assert_null(agg);
    assert_true(strstr(err.where, "Deposited") != NULL || strstr(err.text, "Deposited") != NULL);
    cairn_service_destroy(svc);
}

static void test_registry_down_cached_schemas_work_uncached_fail_fast(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_result_t res;
    cairn_log_t *log = NULL;
    cairn_log_options_t lo = {.no_sync = 1};
    assert_int_equal(cairn_log_open(f->url, &lo, &log, &err), CAIRN_OK);

    /* Writer A (v1 schemas) fills acct-a. */
    struct bank ba = {0};
    cairn_service_options_t so = {.log = log, .serde = f->serde, .topic = "bank"};
    cairn_service_t *sa = NULL;
    assert_int_equal(cairn_service_new(&so, &sa, &err), CAIRN_OK);
    cairn_aggregate_t *aa = fx_account(sa, &ba);
    assert_int_equal(
        send_cmd(aa, "acct-a", "Open", "{\"owner\":\"io\",\"kind\":\"SAVINGS\"}", NULL, &res, &err),
        CAIRN_OK);
    cairn_result_release(&res);
    assert_int_equal(send_cmd(aa, "acct-a", "Deposit", "{\"amount\":3}", NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);

    /* Service B: its own client (own cache), v2 schemas, no state cache (every
       command replays, so decoding must work from the schema cache). */
    cairn_registry_client_t *cb = NULL;
    cairn_serde_t *sb_serde = NULL;
    assert_int_equal(fx_client(f, &cb, &sb_serde), 0);
    struct bank bb = {0};
    cairn_event_type_t ev[] = {
        {.name = "Opened", .schema = EV_OPENED},
        {.name = "Deposited", .schema = EV_DEPOSITED_V2},
        {.name = "Withdrawn", .schema = EV_WITHDRAWN},
    };
    cairn_aggregate_def_t d = acct_def(&bb);
    d.events = ev;
    d.commands = v2_commands;
    cairn_service_options_t so2 = {.log = log, .serde = sb_serde, .topic = "bank", .no_cache = 1};
    cairn_service_t *sb = NULL;
    cairn_aggregate_t *ab = NULL;
    assert_int_equal(cairn_service_new(&so2, &sb, &err), CAIRN_OK);
    assert_int_equal(cairn_service_add_aggregate(sb, &d, &ab, &err), CAIRN_OK);
    assert_int_equal(
        send_cmd(ab, "acct-b", "Open", "{\"owner\":\"jo\",\"kind\":\"SAVINGS\"}", NULL, &res, &err),
        CAIRN_OK);
    cairn_result_release(&res);

    fx_registry_stop(f);

    /* Cached schemas: validate, replay (decode), decide, encode, append. */
    double t0 = mono_s();
    assert_int_equal(
        send_cmd(ab, "acct-b", "Deposit", "{\"amount\":4,\"memo\":\"m\"}", NULL, &res, &err),
        CAIRN_OK);
    assert_int_equal(res.version, 2);
    cairn_result_release(&res);
    assert_int_equal(send_cmd(ab, "acct-b", "Deposit", "{\"amount\":4}", NULL, &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    assert_true(mono_s() - t0 < 1.0);

    /* acct-a holds Deposited v1, whose id B never fetched: fails, fast, retriable. */
    memset(&err, 0, sizeof err);
    t0 = mono_s();
    cairn_rc_t rc = send_cmd(ab, "acct-a", "Deposit", "{\"amount\":1}", NULL, &res, &err);
    double took = mono_s() - t0;
    cairn_result_release(&res);
    assert_true(rc == CAIRN_E_UNAVAILABLE || rc == CAIRN_E_TIMEOUT);
    assert_true(err.flags & CAIRN_ERR_RETRIABLE);
    assert_false(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    assert_true(took < 3.0); /* timeout 500 ms, 1 retry, 50 ms backoff */
    assert_int_equal(cairn_log_stream_version(log, "acct-a"), 2);
    /* A, whose caches hold everything, goes on. */
    assert_int_equal(send_cmd(aa, "acct-a", "Deposit", "{\"amount\":1}", NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);

    cairn_service_destroy(sb);
    cairn_serde_destroy(sb_serde);
    cairn_registry_client_destroy(cb);
    cairn_service_destroy(sa);
    cairn_log_close(log);
}

static cairn_rc_t decide_emits_retired(void *opaque,
                                       const void *state,
                                       const char *type,
                                       const json_t *cmd,
                                       cairn_emitter_t *out,
                                       cairn_error_t *err)
{
    (void)opaque;
    (void)state;
    (void)type;
    (void)err;
    cairn_emit(out, "Opened", cmd); /* fine on its own */
    return cairn_emit_take(out, "MoneyAdded", json_pack("{s:i}", "amount", 1));
}

static void test_decide_cannot_emit_a_retired_type(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_error_t err = {0};
    cairn_event_type_t ev[] = {
        {.name = "Opened", .schema = EV_OPENED},
        {.name = "MoneyAdded", .retired = 1, .upcast = upcast_money_added},
    };
    cairn_aggregate_def_t d = acct_def(&b);
    d.events = ev;
    d.n_events = 2;
    d.decide = decide_emits_retired;
    cairn_service_t *svc = fx_service(f, NULL, 0);
    cairn_aggregate_t *agg = NULL;
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_OK);
    cairn_result_t res;
    assert_int_equal(send_cmd(agg, "acct-r", "Open", "{\"owner\":\"ny\",\"kind\":\"SAVINGS\"}",
                              NULL, &res, &err),
                     CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "MoneyAdded"));
    assert_null(res.violations);
    cairn_result_release(&res);
    assert_int_equal(cairn_log_stream_version(cairn_service_log(svc), "acct-r"), 0);
    cairn_service_destroy(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retired_types_are_upcast_renamed_and_split, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_retired_type_without_upcast_is_refused, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_decide_cannot_emit_a_retired_type, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_compatible_v2_loads_v1_events_and_v3_is_refused,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_registry_down_cached_schemas_work_uncached_fail_fast,
                                        fx_setup, fx_teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("sdk.upcast", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
