/* SPDX-License-Identifier: MIT */
/*
 * test_kafka_unknown.c - what the Kafka backend does after an append whose
 * confirmation timed out (CAIRN_E_TIMEOUT, CAIRN_ERR_OUTCOME_UNKNOWN),
 * without anyone settling it by its ticket, against a 3-broker
 * cairn-mock-kafka whose faults are set through its control socket:
 *
 * - the partition's leader down while the append waits (the record is
 *   never written): once it is back, the next append to the same stream
 *   with the version the log shows (1) succeeds without any version
 *   conflict, and so does one to another stream of the partition; the
 *   timed-out ticket is then decided (not written), and readers see each
 *   stream 1..N with the unconfirmed record absent;
 * - the leader answering later than the confirmation timeout (the record
 *   may or may not be written): appends with the version the log shows
 *   succeed after at most a couple of conflicts (the old attempt landing
 *   meanwhile), the old ticket's answer agrees with the log, and readers
 *   see every append exactly once or not at all, versions contiguous.
 *
 * Before the backend gave up a partition on such a timeout, its in-memory
 * versions stayed ahead and every later append met a version conflict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>

#include "cairn/eventstore.h"
#include "kafka_mock.h"

static struct kmock mock;

static void url_of(char *buf, size_t size, const char *topic, const char *extra)
{
    snprintf(buf, size, "kafka:%s?topic=%s%s%s", mock.bootstrap, topic, extra ? "&" : "",
             extra ? extra : "");
}

#define MAX_SEEN 16

/* What a reader saw of one stream. */
struct seen {
    int n;
    char value[MAX_SEEN][16];
    uint64_t version[MAX_SEEN];
};

static int seen_cb(void *opaque, const cairn_record_t *r)
{
    struct seen *s = opaque;
    if (s->n < MAX_SEEN) {
        snprintf(s->value[s->n], sizeof(s->value[0]), "%.*s", (int)r->value_len,
                 (const char *)r->value);
        s->version[s->n] = r->version;
    }
    s->n++;
    return 0;
}

static int seen_count(const struct seen *s, const char *value)
{
    int c = 0;
    for (int i = 0; i < s->n && i < MAX_SEEN; i++)
        c += strcmp(s->value[i], value) == 0;
    return c;
}

/* Reads @p stream through a fresh read-only handle: versions must be 1..n. */
static void read_fresh(const char *topic, const char *stream, struct seen *s)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    cairn_log_options_t o = {.read_only = 1};
    memset(s, 0, sizeof(*s));
    url_of(url, sizeof(url), topic, NULL);
    assert_int_equal(cairn_log_open(url, &o, &log, &err), CAIRN_OK);
    assert_int_equal(cairn_log_read_stream(log, stream, 1, seen_cb, s, &err), CAIRN_DONE);
    cairn_log_close(log);
    assert_true(s->n <= MAX_SEEN);
    for (int i = 0; i < s->n; i++)
        assert_int_equal(s->version[i], (uint64_t)i + 1);
}

/*
 * Appends @p value to @p stream with the expected version @p expected (or,
 * when negative, the version the log shows at each attempt) until it is
 * acknowledged, for up to 30 s. Retriable failures (the cluster healing)
 * are tried again; version conflicts are counted in @p conflicts.
 */
static cairn_rc_t append_until_done(cairn_log_t *log,
                                    const char *stream,
                                    int64_t expected,
                                    const char *value,
                                    uint64_t *last,
                                    int *conflicts)
{
    long long deadline = kmock_now_ms() + 30000;
    cairn_rc_t rc;
    for (;;) {
        cairn_error_t err = {0};
        cairn_record_t r = {.value = value, .value_len = strlen(value)};
        int64_t ev = expected >= 0 ? expected : (int64_t)cairn_log_stream_version(log, stream);
        rc = cairn_log_append(log, stream, ev, &r, 1, last, &err);
        fprintf(stderr, "append '%s' to '%s' at %" PRId64 ": %s %s\n", value, stream, ev,
                cairn_rc_name(rc), err.text);
        if (rc == CAIRN_OK)
            return rc;
        if (rc == CAIRN_E_CONFLICT_VERSION)
            (*conflicts)++;
        else if (!(err.flags & CAIRN_ERR_RETRIABLE))
            return rc;
        if (*conflicts > 3 || kmock_now_ms() >= deadline)
            return rc;
        kmock_sleep_ms(200);
    }
}

/* The leader is down while the append waits: never written. */
static void test_append_after_unconfirmed_unwritten_append_is_exact(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    uint64_t ticket = 0, last = 0;
    int conflicts = 0;
    struct seen s;
    (void)state;
    assert_int_equal(kmock_ctl(&mock, "leader unwritten 0 3"), 0);
    url_of(url, sizeof(url), "unwritten", "message.timeout.ms=1500");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    cairn_record_t s1 = {.value = "s1", .value_len = 2}, t1 = {.value = "t1", .value_len = 2};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_NO_STREAM, &s1, 1, NULL, &err),
                     CAIRN_OK);
    assert_int_equal(cairn_log_append(log, "t", CAIRN_EXPECT_NO_STREAM, &t1, 1, NULL, &err),
                     CAIRN_OK);

    assert_int_equal(kmock_ctl(&mock, "down 3"), 0);
    cairn_record_t lost = {.value = "lost", .value_len = 4};
    assert_int_equal(cairn_log_append_nowait(log, "s", 1, &lost, 1, &last, &ticket, &err),
                     CAIRN_OK);
    assert_int_equal(last, 2);
    cairn_rc_t rc = cairn_log_wait_durable(log, ticket, &err);
    fprintf(stderr, "leader down: %s %s\n", cairn_rc_name(rc), err.text);
    assert_int_equal(rc, CAIRN_E_TIMEOUT);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    assert_int_equal(kmock_ctl(&mock, "up 3"), 0);

    /* No settle: the next append, with the version the log shows, goes in
     * without a single version conflict. */
    assert_int_equal(append_until_done(log, "s", 1, "s2", &last, &conflicts), CAIRN_OK);
    assert_int_equal(conflicts, 0);
    assert_int_equal(last, 2);
    assert_int_equal(append_until_done(log, "t", 1, "t2", &last, &conflicts), CAIRN_OK);
    assert_int_equal(conflicts, 0);
    assert_int_equal(last, 2);
    assert_int_equal(cairn_log_stream_version(log, "s"), 2);
    /* the timed-out append is decided by now: not written */
    memset(&err, 0, sizeof(err));
    rc = cairn_log_wait_durable(log, ticket, &err);
    fprintf(stderr, "old ticket: %s %s\n", cairn_rc_name(rc), err.text);
    assert_int_equal(rc, CAIRN_E_CONFLICT);
    assert_false(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);
    cairn_log_close(log);

    read_fresh("unwritten", "s", &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.value[0], "s1");
    assert_string_equal(s.value[1], "s2");
    assert_int_equal(seen_count(&s, "lost"), 0);
    read_fresh("unwritten", "t", &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.value[1], "t2");
}

/* The leader answers 8 s late: the append may land after its wait ended. */
static void test_append_after_unconfirmed_slow_append_is_exact(void **state)
{
    char url[1024];
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    uint64_t ticket = 0, last = 0, last2 = 0;
    int conflicts = 0;
    struct seen s;
    (void)state;
    assert_int_equal(kmock_ctl(&mock, "leader slow 0 3"), 0);
    url_of(url, sizeof(url), "slow", "message.timeout.ms=1500");
    assert_int_equal(cairn_log_open(url, NULL, &log, &err), CAIRN_OK);
    cairn_record_t s1 = {.value = "s1", .value_len = 2};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_NO_STREAM, &s1, 1, NULL, &err),
                     CAIRN_OK);

    assert_int_equal(kmock_ctl(&mock, "rtt 3 8000"), 0);
    cairn_record_t maybe = {.value = "maybe", .value_len = 5};
    assert_int_equal(cairn_log_append_nowait(log, "s", 1, &maybe, 1, NULL, &ticket, &err),
                     CAIRN_OK);
    cairn_rc_t rc = cairn_log_wait_durable(log, ticket, &err);
    fprintf(stderr, "slow leader: %s %s\n", cairn_rc_name(rc), err.text);
    assert_int_equal(kmock_ctl(&mock, "rtt 3 0"), 0);
    assert_int_equal(rc, CAIRN_E_TIMEOUT);
    assert_true(err.flags & CAIRN_ERR_OUTCOME_UNKNOWN);

    /* With the version the log shows: at most a conflict or two (the old
     * attempt landing between the look and the claim), never a storm. */
    assert_int_equal(append_until_done(log, "s", -1, "next", &last, &conflicts), CAIRN_OK);
    fprintf(stderr, "appended at %" PRIu64 " after %d conflict(s)\n", last, conflicts);
    assert_true(conflicts <= 2);
    assert_int_equal(append_until_done(log, "s", (int64_t)last, "after", &last2, &conflicts),
                     CAIRN_OK);
    assert_int_equal(last2, last + 1);
    /* the old ticket's answer is definite and agrees with the log */
    memset(&err, 0, sizeof(err));
    rc = cairn_log_wait_durable(log, ticket, &err);
    fprintf(stderr, "old ticket: %s %s\n", cairn_rc_name(rc), err.text);
    assert_true(rc == CAIRN_OK || rc == CAIRN_E_CONFLICT);
    int landed = rc == CAIRN_OK;
    assert_int_equal(last, landed ? 3 : 2);
    cairn_log_close(log);

    read_fresh("slow", "s", &s);
    assert_int_equal(s.n, (int)last2);
    assert_string_equal(s.value[0], "s1");
    assert_int_equal(seen_count(&s, "maybe"), landed);
    assert_int_equal(seen_count(&s, "next"), 1);
    assert_int_equal(seen_count(&s, "after"), 1);
    assert_string_equal(s.value[last - 1], "next");
}

static int group_setup(void **state)
{
    static const char *const topics[] = {"unwritten:1", "slow:1", NULL};
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
        cmocka_unit_test(test_append_after_unconfirmed_unwritten_append_is_exact),
        cmocka_unit_test(test_append_after_unconfirmed_slow_append_is_exact),
    };
    return cmocka_run_group_tests_name("eventstore.kafka_unknown", tests, group_setup,
                                       group_teardown);
}
