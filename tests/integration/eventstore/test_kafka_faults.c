/* SPDX-License-Identifier: MIT */
/*
 * test_kafka_faults.c - the Kafka backend under faults and bad input,
 * against a 3-broker cairn-mock-kafka:
 *
 * - Produce requests failing (injected through the mock's control socket)
 *   and a broker taken down and up again during appends: no acknowledged
 *   event lost, none duplicated, every stream 1..N, every failed append
 *   absent;
 * - an append whose confirmation times out while its partition's leader is
 *   down is outcome-unknown, and settled by its ticket once it is back;
 * - unreachable brokers: a clear error within a stated bound (10 s + slack);
 * - a topic with another partition count, or whose metadata record says
 *   another partitioner, is refused; pinned librdkafka settings cannot be
 *   overridden;
 * - records without our headers (written by kcat) are skipped and counted;
 * - a topic whose low watermark is above 0 (records deleted) is refused;
 * - cairn_log_partition_of agrees with the partition librdkafka's
 *   murmur2_random partitioner picks when it produces a keyed record.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "cairn/eventstore.h"
#include "kafka/kafka_int.h"
#include "kafka_mock.h"

static struct kmock mock;

static void url_of(char *buf, size_t size, const char *topic, const char *extra)
{
    snprintf(buf, size, "kafka:%s?topic=%s%s%s", mock.bootstrap, topic, extra ? "&" : "",
             extra ? extra : "");
}

/* ---- faults during appends ------------------------------------------------ */

#define FSTREAMS 6
#define FAPPENDS 240

struct fault_plan {
    volatile int progress; /* appends done, written by the appender */
    int ok;
};

static void *fault_thread(void *arg)
{
    struct fault_plan *fp = arg;
    fp->ok = 1;
    while (fp->progress < 40)
        kmock_sleep_ms(5);
    fp->ok &= kmock_ctl(&mock, "errors Produce 4 NOT_LEADER_FOR_PARTITION") == 0;
    while (fp->progress < 80)
        kmock_sleep_ms(5);
    fp->ok &= kmock_ctl(&mock, "errors Produce 3 REQUEST_TIMED_OUT") == 0;
    while (fp->progress < 120)
        kmock_sleep_ms(5);
    fp->ok &= kmock_ctl(&mock, "down 2") == 0;
    kmock_sleep_ms(1500);
    fp->ok &= kmock_ctl(&mock, "up 2") == 0;
    while (fp->progress < 170)
        kmock_sleep_ms(5);
    fp->ok &= kmock_ctl(&mock, "errors Produce 2 NOT_ENOUGH_REPLICAS") == 0;
    return NULL;
}

struct fseen {
    char value[FAPPENDS][24];
    uint64_t version[FAPPENDS];
    size_t n;
};

static int fcollect(void *opaque, const cairn_record_t *r)
{
    struct fseen *s = opaque;
    if (s->n < FAPPENDS) {
        snprintf(s->value[s->n], sizeof(s->value[0]), "%.*s", (int)r->value_len,
                 (const char *)r->value);
        s->version[s->n] = r->version;
    }
    s->n++;
    return 0;
}

static void test_produce_errors_and_broker_down_lose_and_duplicate_nothing(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    static int acked[FAPPENDS];
    uint64_t version[FSTREAMS] = {0};
    struct fault_plan fp = {0};
    pthread_t th;
    int settled = 0;
    (void)state;

    url_of(url, sizeof(url), "faults", "message.timeout.ms=10000");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    assert_int_equal(pthread_create(&th, NULL, fault_thread, &fp), 0);
    for (int i = 0; i < FAPPENDS; i++) {
        char stream[16], value[24];
        uint64_t ticket = 0, last = 0;
        int s = i % FSTREAMS;
        snprintf(stream, sizeof(stream), "f%d", s);
        snprintf(value, sizeof(value), "v%d", i);
        cairn_record_t rec = {.value = value, .value_len = strlen(value)};
        memset(&err, 0, sizeof(err));
        cairn_rc_t rc = cairn_log_append_nowait(log, stream, (int64_t)version[s], &rec, 1, &last,
                                                &ticket, &err);
        if (rc == CAIRN_OK)
            rc = cairn_log_wait_durable(log, ticket, &err);
        if (rc != CAIRN_OK && (err.flags & CAIRN_ERR_OUTCOME_UNKNOWN) && ticket) {
            cairn_error_t e2 = {0};
            rc = cairn__kafka_settle(log, ticket, &e2);
            settled++;
        }
        if (rc == CAIRN_OK) {
            acked[i] = 1;
            version[s] = last;
        } else {

            version[s] = cairn_log_stream_version(log, stream);
            fprintf(stderr, "append %d failed: %s %s\n", i, cairn_rc_name(rc), err.text);
        }
        fp.progress = i + 1;
    }
    pthread_join(th, NULL);
    assert_true(fp.ok);
    cairn_log_close(log);

    /* A fresh reader sees every acknowledged append once, nothing else. */
    cairn_log_options_t o = {.read_only = 1};
    url_of(url, sizeof(url), "faults", NULL);
    assert_int_equal(cairn_log_open(url, &o, &log, &err), CAIRN_OK);
    int total_acked = 0;
    for (int s = 0; s < FSTREAMS; s++) {
        static struct fseen seen;
        char stream[16];
        memset(&seen, 0, sizeof(seen));
        snprintf(stream, sizeof(stream), "f%d", s);
        assert_int_equal(cairn_log_read_stream(log, stream, 1, fcollect, &seen, &err), CAIRN_DONE);
        for (size_t j = 0; j < seen.n; j++) {
            int i = -1;
            assert_int_equal(seen.version[j], j + 1); /* 1..N, no gap, no duplicate */
            assert_int_equal(sscanf(seen.value[j], "v%d", &i), 1);
            assert_true(i >= 0 && i < FAPPENDS && i % FSTREAMS == s);
            if (!acked[i])
                fail_msg("%s is in the log but was reported failed", seen.value[j]);
            for (size_t x = 0; x < j; x++)
                assert_string_not_equal(seen.value[x], seen.value[j]);
        }
        for (int i = s; i < FAPPENDS; i += FSTREAMS)
            total_acked += acked[i];
        int here = 0;
        for (int i = s; i < FAPPENDS; i += FSTREAMS)
            here += acked[i];
        assert_int_equal((int)seen.n, here); /* every acknowledged one is there */
    }
    cairn_log_close(log);
    fprintf(stderr, "faults: %d acknowledged, %d failed, %d settled\n", total_acked,
            FAPPENDS - total_acked, settled);
    assert_true(total_acked >= FAPPENDS * 9 / 10);
}

/* ---- bad input --------------------------------------------------------------- */

static void test_unreachable_brokers_fail_within_bound(void **state)
{
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    (void)state;
    long long t0 = kmock_now_ms();
    cairn_rc_t rc = cairn_log_open("kafka:127.0.0.1:9?topic=nowhere", NULL, &log, &err);
    long long took = kmock_now_ms() - t0;
    assert_null(log);
    assert_true(rc == CAIRN_E_UNAVAILABLE || rc == CAIRN_E_TIMEOUT);
    assert_true(took < 15000);
    assert_non_null(strstr(err.text, "127.0.0.1:9"));
    fprintf(stderr, "unreachable brokers: %s after %lld ms: %s\n", cairn_rc_name(rc), took,
            err.text);
}

static void test_wrong_partition_count_is_refused(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    (void)state;
    url_of(url, sizeof(url), "parts", "partitions=3");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "has 2 partitions"));
    memset(&err, 0, sizeof(err));
    url_of(url, sizeof(url), "parts", "partitions=2");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_partition_count(log), 2);
    cairn_log_close(log);
}

static void test_pinned_settings_cannot_be_overridden(void **state)
{
    static const char *const bad[] = {
        "enable.idempotence=false",  "partitioner=consistent_random",  "auto.offset.reset=latest",
        "message.timeout.ms=600000", "enable.gapless.guarantee=false", "fetch.wait.max.ms=500"};
    char url[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cairn_log_t *log = NULL;
        cairn_error_t err = {0};
        url_of(url, sizeof(url), "parts", bad[i]);
        assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_E_INVALID);
        assert_null(log);
    }
}

static rd_kafka_t *raw_producer(const char *partitioner)
{
    char es[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", mock.bootstrap, es, sizeof(es)),
                     RD_KAFKA_CONF_OK);
    if (partitioner)
        assert_int_equal(rd_kafka_conf_set(c, "partitioner", partitioner, es, sizeof(es)),
                         RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof(es));
    assert_non_null(rk);
    return rk;
}

static void test_metadata_of_another_setup_is_refused(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    static char meta[] = "partitioner=consistent_random;partitions=2";
    (void)state;
    rd_kafka_t *rk = raw_producer(NULL);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("badmeta"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_HEADER("cairn.meta", meta, -1), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    url_of(url, sizeof(url), "badmeta", NULL);
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "consistent_random"));
}

static char hook_text[4096];

static void capture_hook(void *opaque, int level, const char *ctx, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)ctx;
    if (strstr(msg, "without cairn headers"))
        snprintf(hook_text, sizeof(hook_text), "%s", msg);
}

struct counted {
    int n;
    char first[32];
};

static int count_cb(void *opaque, const cairn_record_t *r)
{
    struct counted *c = opaque;
    if (c->n++ == 0)
        snprintf(c->first, sizeof(c->first), "%.*s", (int)r->value_len, (const char *)r->value);
    return 0;
}

static int kcat_produce(const char *topic, const char *lines)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "kcat -b '%s' -P -t %s -p 0 2>/dev/null", mock.bootstrap, topic);
    FILE *p = popen(cmd, "w");
    if (!p)
        return -1;
    fputs(lines, p);
    return pclose(p);
}

static void test_records_without_headers_are_skipped_and_counted(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    struct counted c = {0};
    (void)state;
    assert_int_equal(kcat_produce("foreign", "alien-1\nalien-2\nalien-3\n"), 0);
    url_of(url, sizeof(url), "foreign", NULL);
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    cairn_record_t rec = {.value = "ours", .value_len = 4};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_NO_STREAM, &rec, 1, NULL, &err),
                     CAIRN_OK);
    assert_int_equal(kcat_produce("foreign", "alien-4\n"), 0);
    cairn_record_t rec2 = {.value = "ours2", .value_len = 5};
    assert_int_equal(cairn_log_append(log, "s", 1, &rec2, 1, NULL, &err), CAIRN_OK);
    cairn_set_log_hook(capture_hook, NULL, CAIRN_LOG_INFO);
    hook_text[0] = '\0';
    assert_int_equal(cairn_log_replay_partition(log, 0, 0, count_cb, &c, &err), CAIRN_DONE);
    cairn_set_log_hook(NULL, NULL, CAIRN_LOG_WARNING);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.first, "ours");
    assert_non_null(strstr(hook_text, "skipped 4 records without cairn headers"));
    cairn_log_close(log);
}

static int32_t dr_partitions[200];

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    intptr_t i = (intptr_t)m->_private;
    if (i >= 0 && i < 200)
        dr_partitions[i] = m->err ? -2 : m->partition;
}

static void test_partition_of_agrees_with_the_produced_partition(void **state)
{
    char url[1024], es[256], key[32];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    (void)state;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", mock.bootstrap, es, sizeof(es));
    rd_kafka_conf_set(c, "partitioner", "murmur2_random", es, sizeof(es));
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof(es));
    assert_non_null(rk);
    for (intptr_t i = 0; i < 200; i++) {
        dr_partitions[i] = -1;
        snprintf(key, sizeof(key), "order-%d", (int)i * 7919);
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("hashcheck"),
                                           RD_KAFKA_V_KEY(key, strlen(key)),
                                           RD_KAFKA_V_OPAQUE((void *)i), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    url_of(url, sizeof(url), "hashcheck", NULL);
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_partition_count(log), 5);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "order-%d", i * 7919);
        assert_int_equal(cairn_log_partition_of(log, key), dr_partitions[i]);
    }
    cairn_log_close(log);
}

static void test_unconfirmed_append_is_settled_by_its_ticket(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    uint64_t ticket = 0;
    struct counted c = {0};
    (void)state;
    /* Partition 0 of "unknown" is led by broker 3, which goes down while an
     * append waits: its confirmation times out (message.timeout.ms 1500 +
     * 5 s), outcome unknown; settling it after the broker is back gives a
     * definite answer that readers agree with. */
    assert_int_equal(kmock_ctl(&mock, "leader unknown 0 3"), 0);
    url_of(url, sizeof(url), "unknown", "message.timeout.ms=1500");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    cairn_record_t first = {.value = "before", .value_len = 6};
    assert_int_equal(cairn_log_append(log, "u", CAIRN_EXPECT_NO_STREAM, &first, 1, NULL, &err),
                     CAIRN_OK);
    assert_int_equal(kmock_ctl(&mock, "down 3"), 0);
    cairn_record_t rec = {.value = "during", .value_len = 6};
    assert_int_equal(cairn_log_append_nowait(log, "u", 1, &rec, 1, NULL, &ticket, &err), CAIRN_OK);
    cairn_rc_t rc = cairn_log_wait_durable(log, ticket, &err);
    assert_int_equal(rc, CAIRN_E_TIMEOUT);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    assert_int_equal(kmock_ctl(&mock, "up 3"), 0);
    /* Settling claims the partition; while the producer reconnects that
     * may time out (retriable): a client tries again. */
    for (int attempt = 0; attempt < 5; attempt++) {
        memset(&err, 0, sizeof(err));
        rc = cairn__kafka_settle(log, ticket, &err);
        fprintf(stderr, "settle: %s %s\n", cairn_rc_name(rc), err.text);
        if (!(err.flags & CAIRN_ERR_RETRIABLE) || rc == CAIRN_E_CONFLICT)
            break;
    }
    assert_true(rc == CAIRN_OK || rc == CAIRN_E_CONFLICT);
    /* the log goes on after settling, at the version the settlement implies */
    cairn_record_t after = {.value = "after", .value_len = 5};
    memset(&err, 0, sizeof(err));
    assert_int_equal(cairn_log_append(log, "u", rc == CAIRN_OK ? 2 : 1, &after, 1, NULL, &err),
                     CAIRN_OK);
    cairn_log_close(log);
    cairn_log_options_t o = {.read_only = 1};
    url_of(url, sizeof(url), "unknown", NULL);
    assert_int_equal(cairn_log_open(url, &o, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_read_stream(log, "u", 1, count_cb, &c, &err), CAIRN_DONE);
    assert_int_equal(c.n, rc == CAIRN_OK ? 3 : 2);
    assert_string_equal(c.first, "before");
    cairn_log_close(log);
}

static void test_permanent_produce_error_fails_the_append_and_recovers(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    struct counted c = {0};
    uint64_t last = 0;
    (void)state;
    url_of(url, sizeof(url), "permanent", NULL);
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    cairn_record_t a = {.value = "a", .value_len = 1};
    assert_int_equal(cairn_log_append(log, "p", CAIRN_EXPECT_NO_STREAM, &a, 1, &last, &err),
                     CAIRN_OK);
    /* A non-retriable error on the next Produce: the record is not written;
     * whatever librdkafka makes of it (a failed delivery, or a fatal error
     * under the gapless guarantee and a new producer), the append must end
     * with a definite answer and the log must go on. */
    assert_int_equal(kmock_ctl(&mock, "errors Produce 1 INVALID_RECORD"), 0);
    cairn_record_t b = {.value = "b", .value_len = 1};
    cairn_rc_t rc = cairn_log_append(log, "p", 1, &b, 1, &last, &err);
    fprintf(stderr, "permanent error: %s %s\n", cairn_rc_name(rc), err.text);
    if (rc != CAIRN_OK)
        assert_false(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    uint64_t v = rc == CAIRN_OK ? 2 : 1;
    cairn_record_t d = {.value = "c", .value_len = 1};
    memset(&err, 0, sizeof(err));
    rc = cairn_log_append(log, "p", (int64_t)v, &d, 1, &last, &err);
    fprintf(stderr, "after: %s %s\n", cairn_rc_name(rc), err.text);
    assert_int_equal(rc, CAIRN_OK);
    cairn_log_close(log);
    cairn_log_options_t o = {.read_only = 1};
    assert_int_equal(cairn_log_open(url, &o, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_read_stream(log, "p", 1, count_cb, &c, &err), CAIRN_DONE);
    assert_int_equal(c.n, (int)v + 1);
    cairn_log_close(log);
}

static void test_low_watermark_above_zero_is_refused(void **state)
{
    char url[1024];
    static char value[300];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    (void)state;
    /* The mock keeps 5 MiB per partition: 9 MB makes it delete the oldest. */
    memset(value, 'x', sizeof(value));
    rd_kafka_t *rk = raw_producer(NULL);
    for (int i = 0; i < 30000; i++) {
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("lost"), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_VALUE(value, sizeof(value)),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    url_of(url, sizeof(url), "lost", NULL);
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_E_CORRUPT);
    assert_null(log);
    assert_non_null(strstr(err.text, "data loss"));
}

static int group_setup(void **state)
{
    static const char *const topics[] = {"faults:3",    "parts:2", "badmeta:2", "foreign:1",
                                         "hashcheck:5", "lost:1",  "unknown:1", NULL};
    (void)state;
    return kmock_start(&mock, 3, topics);
}

static int group_teardown(void **state)
{
    (void)state;
    kmock_stop(&mock);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_errors_and_broker_down_lose_and_duplicate_nothing),
        cmocka_unit_test(test_unreachable_brokers_fail_within_bound),
        cmocka_unit_test(test_wrong_partition_count_is_refused),
        cmocka_unit_test(test_pinned_settings_cannot_be_overridden),
        cmocka_unit_test(test_metadata_of_another_setup_is_refused),
        cmocka_unit_test(test_records_without_headers_are_skipped_and_counted),
        cmocka_unit_test(test_partition_of_agrees_with_the_produced_partition),
        cmocka_unit_test(test_low_watermark_above_zero_is_refused),
        cmocka_unit_test(test_unconfirmed_append_is_settled_by_its_ticket),
        cmocka_unit_test(test_permanent_produce_error_fails_the_append_and_recovers),
    };
    return cmocka_run_group_tests_name("eventstore.kafka_faults", tests, group_setup,
                                       group_teardown);
}
