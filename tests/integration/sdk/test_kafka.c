/* SPDX-License-Identifier: MIT */
/*
 * test_kafka.c - the SDK on the Kafka backend (ctest sdk.kafka, label
 * integration): what only Kafka can show. cairn-mock-kafka runs as its own
 * process (tests/integration/eventstore/kafka_mock.h) with its control
 * socket for faults, and a real registry runs in this process
 * (tests/unit/sdk/test_service_fixture.h, its bank-account aggregate).
 *
 * - Idempotent commands across an outcome-unknown append: the leader of the
 *   stream's partition goes down (the append is never written), or answers
 *   later than the append's confirmation timeout (the append is written but
 *   not confirmed); either way cairn_handle returns OUTCOME_UNKNOWN; after
 *   healing, the same command id gives exactly one set of the command's
 *   events in the log and the version the log shows, also from a service
 *   that never saw the first attempt; a retry by another writer while the
 *   first attempt is still unconfirmed writes it once, and the first
 *   service then answers the id from the log; a service on a borrowed log
 *   handle does the same (nothing of it lives in the SDK: the backend gives
 *   the partition up on the timeout, and the retry's append claims it
 *   anew) (docs/SDK.md, "Idempotent commands").
 * - Snapshots on Kafka: written to "<topic>.snapshots" (created in the mock
 *   by this test, as a real cluster needs it created by hand) every N
 *   events, used on load by a fresh service (counted applies), ignored after
 *   a code-version bump.
 * - Fencing and the state cache: a second process (this executable again,
 *   in child mode) writes the same stream in turns with this one; the claim
 *   hold keeps it off the partition for the hold time; this process's cached
 *   state is never used stale; the final state equals a fold of the log.
 * - The registry stopped mid-run: cached schemas keep commands and loads
 *   working; an uncached schema fails within a bounded time.
 *
 * Every topic stays far below the mock's retention, and at the end every
 * partition's low watermark is checked to be 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>

#include <librdkafka/rdkafka.h>

#include "../../unit/sdk/test_service_fixture.h"
#include "../eventstore/kafka_mock.h"

#define CHILD_ENV "CAIRN_SDK_KAFKA_CHILD"

static struct kmock mock;

/* Topics (NAME:PARTITIONS): one (or two) per test, created at mock start. */
static const char *const topics[] = {
    "idem_lost:1",  "idem_landed:1",   "snap:2", "snap.snapshots:2", "fence:1", "regdown:2",
    "idem_other:1", "idem_borrowed:1", NULL,
};

static void kurl(char *buf, size_t size, const char *topic, const char *extra)
{
    snprintf(buf, size, "kafka:%s?topic=%s%s%s", mock.bootstrap, topic, extra ? "&" : "",
             extra ? extra : "");
}

static cairn_service_t *
ksvc(const char *topic, const char *extra, cairn_serde_t *serde, unsigned every, long hold)
{
    char url[1024];
    cairn_error_t err = {0};
    cairn_service_t *svc = NULL;
    kurl(url, sizeof url, topic, extra);
    cairn_service_options_t so = {.log_url = url,
                                  .serde = serde,
                                  .topic = topic,
                                  .snapshot_every = every,
                                  .claim_hold_ms = hold};
    if (cairn_service_new(&so, &svc, &err) != CAIRN_OK)
        fprintf(stderr, "kafka service on '%s': %s\n", topic, err.text);
    return svc;
}

/* ---- reading the log back ------------------------------------------------- */

/* A fold of one stream as the log holds it, with what one command id wrote. */
struct logfold {
    cairn_serde_t *serde;
    struct bank bank;
    struct account acct;
    const char *cmd_id;
    int cmd_events;        /* events whose cairn.causation is cmd_id */
    uint64_t cmd_version;  /* the version of the last of them */
    uint64_t cmd_position; /* and its position (offset) */
    uint64_t last_version; /* the stream's last version */
    int errors;
};

static int header_is(const cairn_record_t *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->header_count; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value_len == strlen(value) &&
                   memcmp(r->headers[i].value, value, r->headers[i].value_len) == 0;
    return 0;
}

static int fold_cb(void *opaque, const cairn_record_t *r)
{
    struct logfold *lf = opaque;
    cairn_error_t err = {0};
    json_t *body = NULL;
    int32_t wid = 0;
    char type[64] = "";
    for (size_t i = 0; i < r->header_count; i++)
        if (strcmp(r->headers[i].name, "cairn.type") == 0)
            snprintf(type, sizeof type, "%.*s", (int)r->headers[i].value_len,
                     (const char *)r->headers[i].value);
    if (r->version != lf->last_version + 1)
        lf->errors++;
    lf->last_version = r->version;
    if (lf->cmd_id && header_is(r, "cairn.causation", lf->cmd_id)) {
        lf->cmd_events++;
        lf->cmd_version = r->version;
        lf->cmd_position = r->position;
    }
    if (cairn_serde_decode(lf->serde, r->value, r->value_len, NULL, &body, &wid, &err) !=
            CAIRN_OK ||
        acct_apply(&lf->bank, &lf->acct, type, body, &err) != CAIRN_OK)
        lf->errors++;
    json_decref(body);
    return 0;
}

/* Folds @p stream of @p topic through a read-only log opened here (a reader
 * that shares nothing with the services under test). */
static void log_fold(const char *topic, const char *stream, const char *cmd_id, struct logfold *lf)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    cairn_log_options_t ro = {.read_only = 1};
    cairn_serde_t *serde = lf->serde;
    memset(lf, 0, sizeof *lf);
    lf->serde = serde;
    lf->cmd_id = cmd_id;
    kurl(url, sizeof url, topic, NULL);
    assert_int_equal(cairn_log_open(url, &ro, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_read_stream(log, stream, 1, fold_cb, lf, &err), CAIRN_DONE);
    cairn_log_close(log);
    assert_int_equal(lf->errors, 0);
}

/* Every partition of every topic of the mock starts at offset 0: nothing was
 * lost to the mock's retention. */
static void assert_low_watermarks_zero(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", mock.bootstrap, errstr, sizeof errstr),
        RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    for (size_t t = 0; topics[t]; t++) {
        char name[128];
        int parts = 0;
        const char *colon = strchr(topics[t], ':');
        snprintf(name, sizeof name, "%.*s", (int)(colon - topics[t]), topics[t]);
        parts = atoi(colon + 1);
        for (int p = 0; p < parts; p++) {
            int64_t lo = -1, hi = -1;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, name, p, &lo, &hi, 10000);
            if (e)
                fprintf(stderr, "watermarks of %s/%d: %s\n", name, p, rd_kafka_err2str(e));
            assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
            assert_int_equal(lo, 0);
        }
    }
    rd_kafka_destroy(rk);
}

static cairn_rc_t deposit(cairn_aggregate_t *agg,
                          const char *stream,
                          long amount,
                          const char *id,
                          cairn_result_t *res,
                          cairn_error_t *err)
{
    char body[64];
    snprintf(body, sizeof body, "{\"amount\":%ld}", amount);
    memset(err, 0, sizeof *err);
    cairn_result_release(res);
    return send_cmd(agg, stream, "Deposit", body, id, res, err);
}

static cairn_rc_t
open_acct(cairn_aggregate_t *agg, const char *stream, cairn_result_t *res, cairn_error_t *err)
{
    char id[128];
    snprintf(id, sizeof id, "open-%s", stream);
    memset(err, 0, sizeof *err);
    cairn_result_release(res);
    return send_cmd(agg, stream, "Open", "{\"owner\":\"ada\",\"kind\":\"CHECKING\"}", id, res, err);
}

/* ---- 1. idempotent commands across an outcome-unknown append ------------- */

/*
 * After an outcome-unknown failure the caller sends the same command id
 * again (docs/SDK.md: "call again with the same command id") until it gets
 * a definite answer; a retriable failure meanwhile is allowed, anything
 * else is not. Returns the final rc.
 */
static cairn_rc_t retry_same_id(cairn_aggregate_t *agg,
                                const char *stream,
                                const char *id,
                                cairn_result_t *res,
                                cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    long long deadline = kmock_now_ms() + 60000;
    int tries = 0;
    do {
        rc = deposit(agg, stream, 5, id, res, err);
        tries++;
        if (rc == CAIRN_OK)
            break;
        fprintf(stderr, "retry %d of '%s': %s (flags %#x) %s\n", tries, id, cairn_rc_name(rc),
                err->flags, err->text);
        assert_true(err->flags & (CAIRN_ERR_RETRIABLE | CAIRN_ERR_CONFLICT));
        kmock_sleep_ms(250);
    } while (kmock_now_ms() < deadline);
    return rc;
}

/* The claim made in one scenario: the command id's events, once, at the
 * version the call returned and the log shows; a repeat (here and in a
 * fresh service) answers the same version without writing. */
static void assert_applied_once(
    struct fx *f, const char *topic, const char *stream, const char *id, const cairn_result_t *res)
{
    struct logfold lf = {.serde = f->serde};
    cairn_result_t again = {0};
    cairn_error_t err = {0};
    log_fold(topic, stream, id, &lf);
    fprintf(stderr,
            "%s: '%s' wrote %d event(s), at version %" PRIu64 "; stream at %" PRIu64
            "; call said version %" PRIu64 " repeated %d\n",
            topic, id, lf.cmd_events, lf.cmd_version, lf.last_version, res->version, res->repeated);
    assert_int_equal(lf.cmd_events, 1);
    assert_int_equal(res->version, lf.cmd_version);
    assert_int_equal(res->position, lf.cmd_position);
    assert_int_equal(lf.acct.balance, 5);
    assert_int_equal(lf.last_version, 2);

    /* A fresh service (another process would be the same: nothing shared
       but the log) answers from the log. */
    struct bank b2 = {0};
    cairn_service_t *svc2 = ksvc(topic, "message.timeout.ms=5000", f->serde, 0, 200);
    assert_non_null(svc2);
    cairn_aggregate_t *agg2 = fx_account(svc2, &b2);
    assert_non_null(agg2);
    long long deadline = kmock_now_ms() + 20000;
    cairn_rc_t rc;
    do {
        rc = deposit(agg2, stream, 5, id, &again, &err);
    } while (rc != CAIRN_OK && (err.flags & CAIRN_ERR_RETRIABLE) && kmock_now_ms() < deadline);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(again.repeated, 1);
    assert_int_equal(again.events, 0);
    assert_int_equal(again.version, lf.cmd_version);
    assert_int_equal(again.position, lf.cmd_position);
    cairn_result_release(&again);
    cairn_service_destroy(svc2);
    log_fold(topic, stream, id, &lf);
    assert_int_equal(lf.cmd_events, 1);
    assert_int_equal(lf.last_version, 2);
}

/* The leader is down while the append is produced: it is never written, the
 * confirmation times out, and the retry must write it exactly once. */
static void test_outcome_unknown_append_not_written_is_applied_once_on_retry(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    assert_int_equal(kmock_ctl(&mock, "leader idem_lost 0 3"), 0);
    cairn_service_t *svc = ksvc("idem_lost", "message.timeout.ms=1500", f->serde, 0, 200);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    assert_int_equal(open_acct(agg, "acc-lost", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 1);

    assert_int_equal(kmock_ctl(&mock, "down 3"), 0);
    long long t0 = kmock_now_ms();
    cairn_rc_t rc = deposit(agg, "acc-lost", 5, "dep-lost", &res, &err);
    fprintf(stderr, "broker down: %s (flags %#x) after %lld ms: %s\n", cairn_rc_name(rc), err.flags,
            kmock_now_ms() - t0, err.text);
    assert_int_not_equal(rc, CAIRN_OK);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    assert_int_equal(kmock_ctl(&mock, "up 3"), 0);

    rc = retry_same_id(agg, "acc-lost", "dep-lost", &res, &err);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(res.version, 2);
    assert_applied_once(f, "idem_lost", "acc-lost", "dep-lost", &res);
    /* and the service goes on */
    assert_int_equal(deposit(agg, "acc-lost", 1, "dep-after", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
}

/* The leader answers 8 s late: the append is in the log, but not confirmed
 * within its timeout; the retry must find it and write nothing. */
static void test_outcome_unknown_append_written_is_answered_from_log(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    assert_int_equal(kmock_ctl(&mock, "leader idem_landed 0 2"), 0);
    cairn_service_t *svc = ksvc("idem_landed", "message.timeout.ms=1500", f->serde, 0, 200);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    assert_int_equal(open_acct(agg, "acc-landed", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 1);

    assert_int_equal(kmock_ctl(&mock, "rtt 2 8000"), 0);
    long long t0 = kmock_now_ms();
    cairn_rc_t rc = deposit(agg, "acc-landed", 5, "dep-landed", &res, &err);
    fprintf(stderr, "slow broker: %s (flags %#x) after %lld ms: %s\n", cairn_rc_name(rc), err.flags,
            kmock_now_ms() - t0, err.text);
    assert_int_equal(kmock_ctl(&mock, "rtt 2 0"), 0);
    assert_int_not_equal(rc, CAIRN_OK);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);

    rc = retry_same_id(agg, "acc-landed", "dep-landed", &res, &err);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(res.version, 2);
    assert_applied_once(f, "idem_landed", "acc-landed", "dep-landed", &res);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
}

/* The retry comes from another service (its own log handle and writer id,
 * as another process) while the first attempt is still unconfirmed in the
 * first service: the retry's claim fences it, the retry writes the command
 * once, and the first service then answers the id from the log. */
static void test_outcome_unknown_append_retried_by_another_writer_is_applied_once(void **state)
{
    struct fx *f = *state;
    struct bank b = {0}, b2 = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    assert_int_equal(kmock_ctl(&mock, "leader idem_other 0 3"), 0);
    cairn_service_t *svc = ksvc("idem_other", "message.timeout.ms=1500", f->serde, 0, 200);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    assert_int_equal(open_acct(agg, "acc-other", &res, &err), CAIRN_OK);

    assert_int_equal(kmock_ctl(&mock, "down 3"), 0);
    cairn_rc_t rc = deposit(agg, "acc-other", 5, "dep-other", &res, &err);
    fprintf(stderr, "broker down: %s (flags %#x): %s\n", cairn_rc_name(rc), err.flags, err.text);
    assert_int_not_equal(rc, CAIRN_OK);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    assert_int_equal(kmock_ctl(&mock, "up 3"), 0);

    cairn_service_t *svc2 = ksvc("idem_other", "message.timeout.ms=5000", f->serde, 0, 200);
    assert_non_null(svc2);
    cairn_aggregate_t *agg2 = fx_account(svc2, &b2);
    assert_non_null(agg2);
    rc = retry_same_id(agg2, "acc-other", "dep-other", &res, &err);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(res.version, 2);
    assert_int_equal(res.events, 1);

    /* the first service: the same id is answered from the log */
    rc = retry_same_id(agg, "acc-other", "dep-other", &res, &err);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(res.repeated, 1);
    assert_int_equal(res.version, 2);
    struct logfold lf = {.serde = f->serde};
    log_fold("idem_other", "acc-other", "dep-other", &lf);
    assert_int_equal(lf.cmd_events, 1);
    assert_int_equal(lf.cmd_version, 2);
    assert_int_equal(res.position, lf.cmd_position);
    assert_int_equal(lf.last_version, 2);
    /* and it writes on (claiming the partition back) */
    assert_int_equal(deposit(agg, "acc-other", 1, "dep-other-2", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    cairn_service_destroy(svc2);
    cairn_service_destroy(svc);
}

/* The service borrows its log handle (cairn_service_options_t.log): the
 * leader is down while the append is produced, and the retry through the
 * same handle writes the command once, without a version conflict storm:
 * the backend gave the partition up when the confirmation timed out, so the
 * retry's append claims it anew. */
static void test_outcome_unknown_append_on_borrowed_log_is_applied_once(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    char url[1024];
    cairn_log_t *log = NULL;
    assert_int_equal(kmock_ctl(&mock, "leader idem_borrowed 0 3"), 0);
    kurl(url, sizeof url, "idem_borrowed", "message.timeout.ms=1500&cairn.claim.hold.ms=200");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    cairn_service_options_t so = {
        .log = log, .serde = f->serde, .topic = "idem_borrowed", .claim_hold_ms = 200};
    cairn_service_t *svc = NULL;
    assert_int_equal(cairn_service_new(&so, &svc, &err), CAIRN_OK);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    assert_int_equal(open_acct(agg, "acc-borrowed", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 1);

    assert_int_equal(kmock_ctl(&mock, "down 3"), 0);
    cairn_rc_t rc = deposit(agg, "acc-borrowed", 5, "dep-borrowed", &res, &err);
    fprintf(stderr, "broker down (borrowed log): %s (flags %#x): %s\n", cairn_rc_name(rc),
            err.flags, err.text);
    assert_int_not_equal(rc, CAIRN_OK);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    assert_int_equal(kmock_ctl(&mock, "up 3"), 0);

    cairn_service_stats_t st0, st1;
    cairn_service_stats(svc, &st0);
    rc = retry_same_id(agg, "acc-borrowed", "dep-borrowed", &res, &err);
    assert_int_equal(rc, CAIRN_OK);
    assert_int_equal(res.version, 2);
    cairn_service_stats(svc, &st1);
    fprintf(stderr, "retry met %" PRIu64 " conflict(s)\n", st1.conflicts - st0.conflicts);
    assert_true(st1.conflicts - st0.conflicts <= 2);
    assert_applied_once(f, "idem_borrowed", "acc-borrowed", "dep-borrowed", &res);
    assert_int_equal(deposit(agg, "acc-borrowed", 1, "dep-borrowed-2", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
    cairn_log_close(log);
}

/* ---- 2. snapshots on Kafka ------------------------------------------------ */

static void test_snapshots_on_kafka_are_written_used_and_ignored_after_code_bump(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    cairn_service_stats_t st;
    json_t *js = NULL;
    uint64_t version = 0;
    const char *streams[] = {"snap-a", "snap-b", "snap-c"};
    char id[64];

    cairn_service_t *svc = ksvc("snap", NULL, f->serde, 5, 200);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    /* 3 streams x 12 events: snapshots at versions 5 and 10 of each */
    for (int s = 0; s < 3; s++) {
        assert_int_equal(open_acct(agg, streams[s], &res, &err), CAIRN_OK);
        for (int i = 2; i <= 12; i++) {
            snprintf(id, sizeof id, "%s-%d", streams[s], i);
            assert_int_equal(deposit(agg, streams[s], i, id, &res, &err), CAIRN_OK);
            assert_int_equal(res.version, (uint64_t)i);
        }
    }
    cairn_service_stats(svc, &st);
    assert_int_equal(st.snapshots_written, 6);
    cairn_service_destroy(svc);

    /* The snapshot topic holds them, keyed by stream: 2 per stream. */
    {
        char url[1024];
        cairn_log_t *log = NULL;
        cairn_log_options_t ro = {.read_only = 1};
        kurl(url, sizeof url, "snap.snapshots", NULL);
        assert_int_equal(cairn_log_open(url, &ro, &log, &err), CAIRN_OK);
        for (int s = 0; s < 3; s++)
            assert_int_equal(cairn_log_stream_version(log, streams[s]), 2);
        cairn_log_close(log);
    }

    /* A fresh service loads the latest snapshot (version 10) and applies
       only events 11 and 12. */
    struct bank b2 = {0};
    svc = ksvc("snap", NULL, f->serde, 5, 200);
    assert_non_null(svc);
    agg = fx_account(svc, &b2);
    assert_non_null(agg);
    assert_int_equal(cairn_aggregate_state_json(agg, "snap-a", &js, &version, &err), CAIRN_OK);
    assert_int_equal(version, 12);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 77);
    json_decref(js);
    assert_int_equal(atomic_load(&b2.applies), 2);
    cairn_service_stats(svc, &st);
    assert_int_equal(st.snapshots_loaded, 1);
    assert_int_equal(st.snapshots_ignored, 0);
    assert_int_equal(st.events_replayed, 2);
    /* a command on a snapshot-loaded stream goes on from there */
    assert_int_equal(deposit(agg, "snap-b", 100, "snap-b-13", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 13);
    assert_int_equal(atomic_load(&b2.applies), 2 + 2 + 1);
    /* a repeat of a command inside the snapshot's window is still known */
    assert_int_equal(deposit(agg, "snap-c", 9, "snap-c-9", &res, &err), CAIRN_OK);
    assert_int_equal(res.repeated, 1);
    assert_int_equal(res.version, 9);
    cairn_service_destroy(svc);

    /* Code version 2: the snapshots are ignored, the stream is replayed. */
    struct bank b3 = {0};
    svc = ksvc("snap", NULL, f->serde, 5, 200);
    assert_non_null(svc);
    cairn_aggregate_def_t d = acct_def(&b3);
    d.code_version = 2;
    assert_int_equal(cairn_service_add_aggregate(svc, &d, &agg, &err), CAIRN_OK);
    assert_int_equal(cairn_aggregate_state_json(agg, "snap-a", &js, &version, &err), CAIRN_OK);
    assert_int_equal(version, 12);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 77);
    json_decref(js);
    assert_int_equal(atomic_load(&b3.applies), 12);
    cairn_service_stats(svc, &st);
    assert_int_equal(st.snapshots_loaded, 0);
    assert_int_equal(st.snapshots_ignored, 1);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
}

/* ---- 3. fencing and the cache: two processes on one stream ---------------- */

/* Child mode: CHILD_ENV = "BOOTSTRAP|REGISTRY|TOPIC|HOLD_MS". Reads
 * "deposit STREAM AMOUNT ID" / "withdraw ..." lines on stdin, answers
 * "ok VERSION EVENTS REPEATED MS" or "err RC MS" on stdout. */
static int child_main(const char *spec)
{
    char boot[512], reg[128], topic[64], line[512];
    long hold = 0;
    cairn_registry_client_t *client = NULL;
    cairn_serde_t *serde = NULL;
    cairn_error_t err = {0};
    struct bank b = {0};
    const char *p1 = strchr(spec, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL,
               *p3 = p2 ? strchr(p2 + 1, '|') : NULL;
    if (!p3)
        return 2;
    snprintf(boot, sizeof boot, "%.*s", (int)(p1 - spec), spec);
    snprintf(reg, sizeof reg, "%.*s", (int)(p2 - p1 - 1), p1 + 1);
    snprintf(topic, sizeof topic, "%.*s", (int)(p3 - p2 - 1), p2 + 1);
    hold = atol(p3 + 1);
    snprintf(mock.bootstrap, sizeof mock.bootstrap, "%s", boot);
    cairn_registry_client_options_t co = {.url = reg, .timeout_ms = 2000, .max_retries = 1};
    if (cairn_registry_client_new(&co, &client, &err) != CAIRN_OK ||
        cairn_serde_new(client, NULL, &serde, &err) != CAIRN_OK)
        return 2;
    cairn_service_t *svc = ksvc(topic, NULL, serde, 0, hold);
    cairn_aggregate_t *agg = svc ? fx_account(svc, &b) : NULL;
    if (!agg)
        return 2;
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        char verb[16], stream[64], id[128], body[64];
        long amount;
        cairn_result_t res = {0};
        if (sscanf(line, "%15s %63s %ld %127s", verb, stream, &amount, id) != 4)
            break;
        snprintf(body, sizeof body, "{\"amount\":%ld}", amount);
        long long t0 = kmock_now_ms();
        memset(&err, 0, sizeof err);
        cairn_rc_t rc =
            send_cmd(agg, stream, strcmp(verb, "withdraw") == 0 ? "Withdraw" : "Deposit", body, id,
                     &res, &err);
        if (rc == CAIRN_OK)
            printf("ok %" PRIu64 " %zu %d %lld\n", res.version, res.events, res.repeated,
                   kmock_now_ms() - t0);
        else
            printf("err %s %lld %s\n", cairn_rc_name(rc), kmock_now_ms() - t0, err.text);
        fflush(stdout);
        cairn_result_release(&res);
    }
    cairn_service_destroy(svc);
    cairn_serde_destroy(serde);
    cairn_registry_client_destroy(client);
    return 0;
}

struct child {
    pid_t pid;
    FILE *in, *out;
};

static int child_start(struct child *c, const char *spec)
{
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        static char name[] = "itest_sdk_kafka";
        char *argv[] = {name, NULL};
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        setenv(CHILD_ENV, spec, 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c->in = fdopen(to[1], "w");
    c->out = fdopen(from[0], "r");
    char line[64];
    if (!c->in || !c->out || !fgets(line, sizeof line, c->out) || strncmp(line, "ready", 5) != 0)
        return -1;
    return 0;
}

/* Sends one command to the child; returns its answer line in @p line. */
static void child_cmd(struct child *c,
                      const char *verb,
                      const char *stream,
                      long amount,
                      const char *id,
                      char *line,
                      size_t size)
{
    fprintf(c->in, "%s %s %ld %s\n", verb, stream, amount, id);
    fflush(c->in);
    assert_non_null(fgets(line, (int)size, c->out));
}

static void child_stop(struct child *c)
{
    int status = 0;
    if (c->in)
        fclose(c->in);
    if (c->out)
        fclose(c->out);
    if (c->pid > 0)
        waitpid(c->pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#define FENCE_HOLD_MS 700
#define FENCE_ROUNDS  4

static void test_two_processes_take_turns_and_never_decide_on_a_stale_cache(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    struct child c = {0};
    char spec[1024], line[512], id[64];
    json_t *js = NULL;
    uint64_t version = 0;
    long long expect_balance = 0;

    cairn_service_t *svc = ksvc("fence", NULL, f->serde, 0, FENCE_HOLD_MS);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    snprintf(spec, sizeof spec, "%s|%s|fence|%d", mock.bootstrap, f->base, FENCE_HOLD_MS);
    assert_int_equal(child_start(&c, spec), 0);

    assert_int_equal(open_acct(agg, "acc-f", &res, &err), CAIRN_OK);
    uint64_t v = res.version;
    /* When this process last started a command that claimed the partition:
       its claim is made at or after that time. Round 0's deposit claims; in
       later rounds we still own the partition from the previous round's
       withdrawal, so the deposit does not claim again. */
    long long t_claim = 0;
    for (int round = 0; round < FENCE_ROUNDS; round++) {
        /* This process writes (claiming the partition when the child holds
           it: at most the hold time after the child's claim). */
        if (round == 0)
            t_claim = kmock_now_ms();
        snprintf(id, sizeof id, "here-%d", round);
        cairn_rc_t rc = deposit(agg, "acc-f", 10, id, &res, &err);
        if (rc != CAIRN_OK)
            fprintf(stderr, "here: %s %s\n", cairn_rc_name(rc), err.text);
        assert_int_equal(rc, CAIRN_OK);
        assert_int_equal(res.version, v + 1);
        v = res.version;
        expect_balance += 10;

        /* The child writes right away: our claim is younger than the hold,
           so it must wait for it to pass before fencing us. */
        snprintf(id, sizeof id, "child-%d", round);
        child_cmd(&c, "deposit", "acc-f", 100, id, line, sizeof line);
        long long t_child = kmock_now_ms();
        uint64_t cv = 0;
        size_t cev = 0;
        int crep = 0;
        long long cms = 0;
        fprintf(stderr, "round %d: child: %s", round, line);
        assert_int_equal(sscanf(line, "ok %" SCNu64 " %zu %d %lld", &cv, &cev, &crep, &cms), 4);
        assert_int_equal(cv, v + 1);
        assert_int_equal(cev, 1);
        v = cv;
        expect_balance += 100;
        /* No ping-pong inside the hold: the child got the partition only
           once our claim (made at or after t_claim) was FENCE_HOLD_MS old. */
        assert_true(t_child - t_claim >= FENCE_HOLD_MS - 50);

        /* Our cached state is at the version before the child's event: the
           next decision must see the child's deposit. Withdrawing the full
           balance is possible only on a fresh state; on the stale one it
           would be refused as INSUFFICIENT_FUNDS. */
        char body[64];
        snprintf(body, sizeof body, "{\"amount\":%lld}", expect_balance);
        snprintf(id, sizeof id, "all-%d", round);
        memset(&err, 0, sizeof err);
        cairn_result_release(&res);
        t_claim = kmock_now_ms(); /* the child holds the partition: this claims it */
        rc = send_cmd(agg, "acc-f", "Withdraw", body, id, &res, &err);
        if (rc != CAIRN_OK)
            fprintf(stderr, "withdraw all: %s %s\n", cairn_rc_name(rc), err.text);
        assert_int_equal(rc, CAIRN_OK);
        assert_int_equal(res.version, v + 1);
        v = res.version;
        expect_balance = 0;

        /* The child's cache is stale now too: its withdrawal of 1 must be
           refused on the fresh state (balance 0), not accepted on its old
           one (balance 100+). */
        snprintf(id, sizeof id, "child-w-%d", round);
        child_cmd(&c, "withdraw", "acc-f", 1, id, line, sizeof line);
        fprintf(stderr, "round %d: child withdraw: %s", round, line);
        assert_int_equal(strncmp(line, "err CAIRN_E_REJECTED", 20), 0);
    }
    /* A read through our cache sees the same as a fold of the log. */
    struct logfold lf = {.serde = f->serde};
    log_fold("fence", "acc-f", NULL, &lf);
    assert_int_equal(lf.last_version, v);
    assert_int_equal(cairn_aggregate_state_json(agg, "acc-f", &js, &version, &err), CAIRN_OK);
    assert_int_equal(version, v);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), lf.acct.balance);
    assert_int_equal(lf.acct.balance, 0);
    json_decref(js);
    child_stop(&c);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
}

/* ---- 4. the registry down mid-run ---------------------------------------- */

static void test_registry_down_cached_schemas_keep_working_on_kafka(void **state)
{
    struct fx *f = *state;
    struct bank b = {0};
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    json_t *js = NULL;
    uint64_t version = 0;
    cairn_registry_client_t *c2 = NULL;
    cairn_serde_t *s2 = NULL;

    /* A client of its own that has seen every schema, and one that has not. */
    assert_int_equal(fx_client(f, &c2, &s2), 0);
    cairn_service_t *svc = ksvc("regdown", NULL, f->serde, 0, 200);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    assert_non_null(agg);
    assert_int_equal(open_acct(agg, "acc-r1", &res, &err), CAIRN_OK);
    assert_int_equal(deposit(agg, "acc-r1", 7, "r1-2", &res, &err), CAIRN_OK);

    fx_registry_stop(f);
    /* commands on a cached stream, on a new stream, and a load from the log */
    assert_int_equal(deposit(agg, "acc-r1", 8, "r1-3", &res, &err), CAIRN_OK);
    assert_int_equal(res.version, 3);
    assert_int_equal(open_acct(agg, "acc-r2", &res, &err), CAIRN_OK);
    assert_int_equal(deposit(agg, "acc-r2", 9, "r2-2", &res, &err), CAIRN_OK);
    cairn_aggregate_forget(agg, "acc-r1");
    assert_int_equal(cairn_aggregate_state_json(agg, "acc-r1", &js, &version, &err), CAIRN_OK);
    assert_int_equal(version, 3);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 15);
    json_decref(js);
    /* validation still refuses a bad command, with nothing appended */
    cairn_result_release(&res);
    memset(&err, 0, sizeof err);
    assert_int_equal(send_cmd(agg, "acc-r1", "Deposit", "{\"amount\":\"x\"}", "bad", &res, &err),
                     CAIRN_E_INVALID);

    /* A service with a cold client cannot start: bounded, retriable. */
    struct bank b2 = {0};
    cairn_service_t *svc2 = ksvc("regdown", NULL, s2, 0, 200);
    assert_non_null(svc2);
    cairn_aggregate_def_t d = acct_def(&b2);
    cairn_aggregate_t *agg2 = NULL;
    memset(&err, 0, sizeof err);
    double t0 = mono_s();
    cairn_rc_t rc = cairn_service_add_aggregate(svc2, &d, &agg2, &err);
    double took = mono_s() - t0;
    fprintf(stderr, "cold client, registry down: %s after %.2f s: %s\n", cairn_rc_name(rc), took,
            err.text);
    assert_true(rc == CAIRN_E_UNAVAILABLE || rc == CAIRN_E_TIMEOUT);
    assert_true(err.flags & CAIRN_ERR_RETRIABLE);
    assert_true(took < 10.0);
    cairn_service_destroy(svc2);

    /* the log is what the commands said (decoded with cached schemas) */
    struct logfold lf = {.serde = f->serde};
    log_fold("regdown", "acc-r2", NULL, &lf);
    assert_int_equal(lf.last_version, 2);
    assert_int_equal(lf.acct.balance, 9);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
    cairn_serde_destroy(s2);
    cairn_registry_client_destroy(c2);
}

/* ---- group ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    if (kmock_start(&mock, 3, topics) != 0)
        return -1;
    return fx_setup(state);
}

static int group_teardown(void **state)
{
    int rc = *state ? fx_teardown(state) : 0;
    kmock_stop(&mock);
    return rc;
}

static void test_low_watermarks_are_zero(void **state)
{
    (void)state;
    assert_low_watermarks_zero();
}

int main(void)
{
    const char *spec = getenv(CHILD_ENV);
    if (spec)
        return child_main(spec);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_unknown_append_not_written_is_applied_once_on_retry),
        cmocka_unit_test(test_outcome_unknown_append_written_is_answered_from_log),
        cmocka_unit_test(test_outcome_unknown_append_retried_by_another_writer_is_applied_once),
        cmocka_unit_test(test_outcome_unknown_append_on_borrowed_log_is_applied_once),
        cmocka_unit_test(test_snapshots_on_kafka_are_written_used_and_ignored_after_code_bump),
        cmocka_unit_test(test_two_processes_take_turns_and_never_decide_on_a_stale_cache),
        cmocka_unit_test(test_registry_down_cached_schemas_keep_working_on_kafka),
        cmocka_unit_test(test_low_watermarks_are_zero),
    };
    return cmocka_run_group_tests_name("sdk.kafka", tests, group_setup, group_teardown);
}
