/* SPDX-License-Identifier: MIT */
/*
 * test_service.c - cairn_handle against a real registry and the file log:
 * the happy path and its record headers, domain rejections and schema
 * violations that append nothing, conflict retries between two services
 * sharing one log, idempotent repeats (also from a service that never saw
 * the first attempt, which is what a retry after an unknown outcome does),
 * and 8 threads x 200 commands over 20 accounts whose final states equal an
 * independent fold of the log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>

#include "eventstore_int.h"

#include "test_service_fixture.h"

/* ---- reading the log back independently ------------------------------------- */

struct readback {
    cairn_serde_t *serde;
    json_t *records; /* [{"type","body","causation","id","version","schema"}] */
};

static const char *hdr(const cairn_record_t *r, const char *name, char *buf, size_t size)
{
    for (size_t i = 0; i < r->header_count; i++) {
        if (strcmp(r->headers[i].name, name) == 0) {
            size_t n = r->headers[i].value_len < size - 1 ? r->headers[i].value_len : size - 1;
            memcpy(buf, r->headers[i].value, n);
            buf[n] = '\0';
            return buf;
        }
    }
    return NULL;
}

static int collect(void *opaque, const cairn_record_t *r)
{
    struct readback *rb = opaque;
    char t[64], c[160], id[64], v[32], tm[32];
    json_t *body = NULL;
    int32_t wid = 0;
    cairn_error_t err = {0};
    assert_int_equal(cairn_serde_decode(rb->serde, r->value, r->value_len, NULL, &body, &wid, &err),
                     CAIRN_OK);
    assert_non_null(hdr(r, "cairn.type", t, sizeof t));
    assert_non_null(hdr(r, "cairn.causation", c, sizeof c));
    assert_non_null(hdr(r, "cairn.id", id, sizeof id));
    assert_non_null(hdr(r, "cairn.version", v, sizeof v));
    assert_non_null(hdr(r, "cairn.time", tm, sizeof tm));
    assert_non_null(hdr(r, "cairn.correlation", tm, sizeof tm));
    assert_int_equal(atoi(v), wid);
    json_array_append_new(rb->records,
                          json_pack("{s:s, s:o, s:s, s:s, s:I, s:I}", "type", t, "body", body,
                                    "causation", c, "id", id, "version", (json_int_t)r->version,
                                    "position", (json_int_t)r->position));
    return 0;
}

static json_t *read_stream(cairn_log_t *log, cairn_serde_t *serde, const char *stream)
{
    struct readback rb = {.serde = serde, .records = json_array()};
    cairn_error_t err = {0};
    assert_int_equal(cairn_log_read_stream(log, stream, 1, collect, &rb, &err), CAIRN_DONE);
    return rb.records;
}

/* The balance a fold of the events gives. */
static long long fold_balance(const json_t *records)
{
    long long bal = 0;
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *t = json_string_value(json_object_get(r, "type"));
        json_int_t amt = json_integer_value(json_object_get(json_object_get(r, "body"), "amount"));
        if (strcmp(t, "Deposited") == 0)
            bal += amt;
        else if (strcmp(t, "Withdrawn") == 0)
            bal -= amt;
    }
    return bal;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_handle_appends_events_with_headers_and_returns_position(void **state)
{
    struct fx *f = *state;
    cairn_service_t *svc = fx_service(f, NULL, 0);
    assert_non_null(svc);
    cairn_aggregate_t *agg = fx_account(svc, &f->bank);
    assert_non_null(agg);
    cairn_result_t res;
    cairn_error_t err = {0};

    assert_int_equal(send_cmd(agg, "acct-1", "Open", "{\"owner\":\"ann\",\"kind\":\"SAVINGS\"}",
                              "c-open", &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.version, 1);
    assert_int_equal(res.events, 1);
    assert_int_equal(res.repeated, 0);
    assert_string_equal(res.command_id, "c-open");
    char want[64];
    snprintf(want, sizeof want, "file:%llu", (unsigned long long)res.position + 1);
    assert_string_equal(res.checkpoint, want);
    cairn_result_release(&res);

    assert_int_equal(send_cmd(agg, "acct-1", "Deposit", "{\"amount\":100}", "c-dep", &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.version, 2);
    uint64_t dep_pos = res.position;
    cairn_result_release(&res);
    assert_int_equal(send_cmd(agg, "acct-1", "Withdraw", "{\"amount\":30}", NULL, &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.version, 3);
    assert_int_equal(strlen(res.command_id), CAIRN_UUID_LEN); /* generated */
    char gen_id[sizeof res.command_id];
    snprintf(gen_id, sizeof gen_id, "%s", res.command_id);
    cairn_result_release(&res);

    json_t *recs = read_stream(cairn_service_log(svc), f->serde, "acct-1");
    assert_int_equal(json_array_size(recs), 3);
    json_t *r1 = json_array_get(recs, 0), *r2 = json_array_get(recs, 1),
           *r3 = json_array_get(recs, 2);
    assert_string_equal(json_string_value(json_object_get(r1, "type")), "Opened");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r1, "body"), "owner")),
                        "ann");
    assert_string_equal(json_string_value(json_object_get(r1, "causation")), "c-open");
    assert_string_equal(json_string_value(json_object_get(r2, "type")), "Deposited");
    assert_string_equal(json_string_value(json_object_get(r2, "causation")), "c-dep");
    assert_int_equal(json_integer_value(json_object_get(r2, "position")), dep_pos);
    assert_string_equal(json_string_value(json_object_get(r3, "causation")), gen_id);
    /* Event ids are distinct v4 UUIDs. */
    const char *id1 = json_string_value(json_object_get(r1, "id"));
    const char *id2 = json_string_value(json_object_get(r2, "id"));
    assert_int_equal(strlen(id1), 36);
    assert_int_equal(id1[14], '4');
    assert_true(strchr("89ab", id1[19]) != NULL);
    assert_string_not_equal(id1, id2);
    assert_int_equal(fold_balance(recs), 70);
    json_decref(recs);

    json_t *st = NULL;
    uint64_t ver = 0;
    assert_int_equal(cairn_aggregate_state_json(agg, "acct-1", &st, &ver, &err), CAIRN_OK);
    assert_int_equal(ver, 3);
    assert_int_equal(json_integer_value(json_object_get(st, "balance")), 70);
    json_decref(st);

    cairn_service_stats_t stats;
    cairn_service_stats(svc, &stats);
    assert_int_equal(stats.appended, 3);
    assert_int_equal(stats.cache_misses, 1); /* the first load; then the cache */
    assert_true(stats.cache_hits >= 3);
    cairn_service_destroy(svc);
}

static void test_domain_rejection_appends_nothing(void **state)
{
    struct fx *f = *state;
    cairn_service_t *svc = fx_service(f, NULL, 0);
    cairn_aggregate_t *agg = fx_account(svc, &f->bank);
    cairn_result_t res;
    cairn_error_t err = {0};

    assert_int_equal(send_cmd(agg, "acct-2", "Deposit", "{\"amount\":5}", NULL, &res, &err),
                     CAIRN_E_REJECTED);
    assert_string_equal(res.reject_code, "NOT_OPEN");
    assert_int_equal(err.code, CAIRN_E_REJECTED);
    assert_string_equal(err.where, "NOT_OPEN");
    assert_string_equal(err.text, "account is not open");
    assert_int_equal(err.flags, 0);
    assert_int_equal(cairn_log_stream_version(cairn_service_log(svc), "acct-2"), 0);
    cairn_result_release(&res);

    assert_int_equal(send_cmd(agg, "acct-2", "Open", "{\"owner\":\"bo\",\"kind\":\"CHECKING\"}",
                              NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);
    memset(&err, 0, sizeof err);
    assert_int_equal(send_cmd(agg, "acct-2", "Withdraw", "{\"amount\":1}", "w1", &res, &err),
                     CAIRN_E_REJECTED);
    assert_string_equal(res.reject_code, "INSUFFICIENT_FUNDS");
    assert_string_equal(err.text, "balance 0 is below 1");
    assert_int_equal(res.version, 1);
    cairn_result_release(&res);
    assert_int_equal(cairn_log_stream_version(cairn_service_log(svc), "acct-2"), 1);
    /* A rejected command is not remembered: the same id may succeed later. */
    memset(&err, 0, sizeof err);
    assert_int_equal(send_cmd(agg, "acct-2", "Deposit", "{\"amount\":1}", NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);
    assert_int_equal(send_cmd(agg, "acct-2", "Withdraw", "{\"amount\":1}", "w1", &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.repeated, 0);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
}

static int has_violation(const json_t *v, const char *path)
{
    size_t i;
    json_t *o;
    json_array_foreach(v, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "path")), path) == 0)
            return 1;
    }
    return 0;
}

static void test_invalid_commands_report_every_violation_with_paths(void **state)
{
    struct fx *f = *state;
    cairn_service_t *svc = fx_service(f, NULL, 0);
    cairn_aggregate_t *agg = fx_account(svc, &f->bank);
    cairn_result_t res;
    cairn_error_t err = {0};

    /* Missing owner, bad enum symbol, an extra member: three violations. */
    assert_int_equal(
        send_cmd(agg, "acct-3", "Open", "{\"kind\":\"GOLD\",\"extra\":1}", NULL, &res, &err),
        CAIRN_E_INVALID);
    assert_non_null(res.violations);
    assert_int_equal(json_array_size(res.violations), 3);
    assert_true(has_violation(res.violations, "/owner"));
    assert_true(has_violation(res.violations, "/kind"));
    assert_true(has_violation(res.violations, "/extra"));
    cairn_result_release(&res);

    /* Wrong type. */
    memset(&err, 0, sizeof err);
    assert_int_equal(
        send_cmd(agg, "acct-3", "Open", "{\"owner\":5,\"kind\":\"SAVINGS\"}", NULL, &res, &err),
        CAIRN_E_INVALID);
    assert_int_equal(json_array_size(res.violations), 1);
    assert_true(has_violation(res.violations, "/owner"));
    assert_int_equal(err.code, CAIRN_E_INVALID);
    cairn_result_release(&res);

    assert_int_equal(atomic_load(&f->bank.decides), 0); /* no handler ran */
    assert_int_equal(cairn_log_stream_version(cairn_service_log(svc), "acct-3"), 0);
    assert_int_equal(cairn_log_end(cairn_service_log(svc)), 0);

    /* Unknown command type. */
    memset(&err, 0, sizeof err);
    assert_int_equal(send_cmd(agg, "acct-3", "Close", "{}", NULL, &res, &err), CAIRN_E_NOT_FOUND);
    cairn_result_release(&res);
    cairn_service_destroy(svc);
}

/* Two services over one log: B writes to the stream while A is deciding. */
struct race {
    cairn_aggregate_t *other;
    const char *stream;
    int times; /* how many times to interfere */
};

static struct race g_race;

static void interfere(struct bank *b)
{
    cairn_result_t res;
    cairn_error_t err = {0};
    assert_int_equal(
        send_cmd(g_race.other, g_race.stream, "Deposit", "{\"amount\":1}", NULL, &res, &err),
        CAIRN_OK);
    cairn_result_release(&res);
    if (--g_race.times > 0)
        b->on_decide = interfere;
}

static cairn_service_t *service_on(struct fx *f, cairn_log_t *log, int retries)
{
    cairn_error_t err = {0};
    cairn_service_t *svc = NULL;
    cairn_service_options_t so = {
        .log = log, .serde = f->serde, .topic = "bank", .max_conflict_retries = retries};
    assert_int_equal(cairn_service_new(&so, &svc, &err), CAIRN_OK);
    return svc;
}

static void test_conflict_reloads_and_decides_again(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_log_t *log = NULL;
    cairn_log_options_t lo = {.no_sync = 1};
    assert_int_equal(cairn_log_open(f->url, &lo, &log, &err), CAIRN_OK);
    struct bank ba = {0}, bb = {0};
    cairn_service_t *a = service_on(f, log, 2), *b = service_on(f, log, 2);
    cairn_aggregate_t *aa = fx_account(a, &ba), *ab = fx_account(b, &bb);
    cairn_result_t res;

    assert_int_equal(
        send_cmd(aa, "acct-4", "Open", "{\"owner\":\"cy\",\"kind\":\"SAVINGS\"}", NULL, &res, &err),
        CAIRN_OK);
    cairn_result_release(&res);
    /* A has acct-4 cached at version 1; B deposits while A decides: A conflicts once. */
    g_race = (struct race){.other = ab, .stream = "acct-4", .times = 1};
    ba.on_decide = interfere;
    long decides = atomic_load(&ba.decides);
    assert_int_equal(send_cmd(aa, "acct-4", "Deposit", "{\"amount\":10}", NULL, &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.version, 3);
    assert_int_equal(atomic_load(&ba.decides) - decides, 2); /* decided twice */
    cairn_result_release(&res);
    cairn_service_stats_t st;
    cairn_service_stats(a, &st);
    assert_int_equal(st.conflicts, 1);
    json_t *js = NULL;
    assert_int_equal(cairn_aggregate_state_json(aa, "acct-4", &js, NULL, &err), CAIRN_OK);
    assert_int_equal(json_integer_value(json_object_get(js, "balance")), 11);
    json_decref(js);

    /* Interfering on every attempt exhausts the retries: CONFLICT, nothing of A's appended. */
    g_race = (struct race){.other = ab, .stream = "acct-4", .times = 3};
    ba.on_decide = interfere;
    memset(&err, 0, sizeof err);
    assert_int_equal(send_cmd(aa, "acct-4", "Deposit", "{\"amount\":1000}", NULL, &res, &err),
                     CAIRN_E_CONFLICT_VERSION);
    assert_true(err.flags & CAIRN_ERR_CONFLICT);
    assert_int_equal(err.cause, 6); /* the stream's actual version at the last attempt */
    cairn_result_release(&res);
    json_t *recs = read_stream(log, f->serde, "acct-4");
    assert_int_equal(json_array_size(recs), 6); /* Opened + 1 + 10 + three interfering 1s */
    assert_int_equal(fold_balance(recs), 14);
    json_decref(recs);

    cairn_service_destroy(a);
    cairn_service_destroy(b);
    cairn_log_close(log);
}

static void test_repeated_command_id_returns_the_earlier_result(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_log_t *log = NULL;
    cairn_log_options_t lo = {.no_sync = 1};
    assert_int_equal(cairn_log_open(f->url, &lo, &log, &err), CAIRN_OK);
    struct bank ba = {0}, bb = {0};
    cairn_service_t *a = service_on(f, log, 0), *b = service_on(f, log, 0);
    cairn_aggregate_t *aa = fx_account(a, &ba), *ab = fx_account(b, &bb);
    cairn_result_t r1, r2, r3;

    assert_int_equal(send_cmd(aa, "acct-5", "Open", "{\"owner\":\"di\",\"kind\":\"SAVINGS\"}",
                              "open-5", &r1, &err),
                     CAIRN_OK);
    cairn_result_release(&r1);
    assert_int_equal(send_cmd(aa, "acct-5", "Deposit", "{\"amount\":7}", "dep-5", &r1, &err),
                     CAIRN_OK);
    long decides = atomic_load(&ba.decides);
    assert_int_equal(send_cmd(aa, "acct-5", "Deposit", "{\"amount\":7}", "dep-5", &r2, &err),
                     CAIRN_OK);
    assert_int_equal(atomic_load(&ba.decides), decides); /* not decided again */
    assert_int_equal(r2.repeated, 1);
    assert_int_equal(r2.events, 0);
    assert_int_equal(r2.version, r1.version);
    assert_int_equal(r2.position, r1.position);
    assert_string_equal(r2.checkpoint, r1.checkpoint);

    /* B never saw it (as a retry after an unknown outcome): it reloads from the log. */
    assert_int_equal(send_cmd(ab, "acct-5", "Deposit", "{\"amount\":7}", "dep-5", &r3, &err),
                     CAIRN_OK);
    assert_int_equal(r3.repeated, 1);
    assert_int_equal(r3.version, r1.version);
    assert_int_equal(r3.position, r1.position);
    assert_int_equal(atomic_load(&bb.decides), 0);
    /* After more commands the earlier result is still the earlier one. */
    cairn_result_t r4;
    assert_int_equal(send_cmd(ab, "acct-5", "Deposit", "{\"amount\":1}", "dep-6", &r4, &err),
                     CAIRN_OK);
    cairn_result_release(&r4);
    assert_int_equal(send_cmd(aa, "acct-5", "Deposit", "{\"amount\":7}", "dep-5", &r4, &err),
                     CAIRN_OK); /* A's cache still knows dep-5 */
    assert_int_equal(r4.repeated, 1);
    assert_int_equal(r4.version, 2);
    cairn_result_release(&r4);

    json_t *recs = read_stream(log, f->serde, "acct-5");
    assert_int_equal(json_array_size(recs), 3);
    assert_int_equal(fold_balance(recs), 8);
    json_decref(recs);
    cairn_result_release(&r1);
    cairn_result_release(&r2);
    cairn_result_release(&r3);
    cairn_service_destroy(a);
    cairn_service_destroy(b);
    cairn_log_close(log);
}

/* ---- 8 threads x 200 commands over 20 accounts ----------------------------------- */

#define THREADS  8
#define PER      200
#define ACCOUNTS 20

struct worker {
    cairn_aggregate_t *agg;
    unsigned seed;
    int ok, rejected, conflicts, other;
    long long net[ACCOUNTS]; /* deposits - withdrawals this worker got acknowledged */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER; i++) {
        int a = (int)(rand_r(&w->seed) % ACCOUNTS);
        int dep = rand_r(&w->seed) % 3 != 0;
        long long amt = 1 + rand_r(&w->seed) % 50;
        char stream[32], body[64];
        cairn_result_t res;
        cairn_error_t err = {0};
        snprintf(stream, sizeof stream, "acct-%02d", a);
        snprintf(body, sizeof body, "{\"amount\":%lld}", amt);
        cairn_rc_t rc =
            send_cmd(w->agg, stream, dep ? "Deposit" : "Withdraw", body, NULL, &res, &err);
        if (rc == CAIRN_OK) {
            w->ok++;
            w->net[a] += dep ? amt : -amt;
        } else if (rc == CAIRN_E_REJECTED) {
            w->rejected++;
        } else if (rc == CAIRN_E_CONFLICT_VERSION && (err.flags & CAIRN_ERR_CONFLICT)) {
            w->conflicts++;
        } else {
            fprintf(stderr, "unexpected: %s %s\n", cairn_rc_name(rc), err.text);
            w->other++;
        }
        cairn_result_release(&res);
    }
    return NULL;
}

static void test_threads_final_state_equals_fold_of_log(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_log_t *log = NULL;
    cairn_log_options_t lo = {.no_sync = 1};
    assert_int_equal(cairn_log_open(f->url, &lo, &log, &err), CAIRN_OK);
    /* Two services on one log, so that threads really conflict across caches. */
    struct bank ba = {0}, bb = {0};
    cairn_service_t *a = service_on(f, log, 10), *b = service_on(f, log, 10);
    cairn_aggregate_t *aa = fx_account(a, &ba), *ab = fx_account(b, &bb);
    cairn_result_t res;

    for (int i = 0; i < ACCOUNTS; i++) {
        char stream[32];
        snprintf(stream, sizeof stream, "acct-%02d", i);
        assert_int_equal(send_cmd(aa, stream, "Open", "{\"owner\":\"x\",\"kind\":\"CHECKING\"}",
                                  NULL, &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
    }
    pthread_t th[THREADS];
    struct worker w[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].agg = i % 2 ? ab : aa;
        w[i].seed = 1234u + (unsigned)i;
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int ok = 0, conflicts = 0, other = 0;
    long long net[ACCOUNTS] = {0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        conflicts += w[i].conflicts;
        other += w[i].other;
        for (int k = 0; k < ACCOUNTS; k++)
            net[k] += w[i].net[k];
    }
    assert_int_equal(other, 0);
    assert_true(ok > THREADS * PER / 2);
    size_t events = 0;
    for (int k = 0; k < ACCOUNTS; k++) {
        char stream[32];
        snprintf(stream, sizeof stream, "acct-%02d", k);
        json_t *recs = read_stream(log, f->serde, stream);
        events += json_array_size(recs) - 1;
        long long fold = fold_balance(recs);
        /* No lost update: the acknowledged commands are exactly the log's. */
        assert_int_equal(fold, net[k]);
        assert_true(fold >= 0);
        json_t *s1 = NULL, *s2 = NULL;
        uint64_t v1 = 0, v2 = 0;
        assert_int_equal(cairn_aggregate_state_json(aa, stream, &s1, &v1, &err), CAIRN_OK);
        assert_int_equal(cairn_aggregate_state_json(ab, stream, &s2, &v2, &err), CAIRN_OK);
        assert_int_equal(json_integer_value(json_object_get(s1, "balance")), fold);
        assert_int_equal(json_integer_value(json_object_get(s2, "balance")), fold);
        assert_int_equal(v1, json_array_size(recs));
        assert_int_equal(v2, json_array_size(recs));
        json_decref(s1);
        json_decref(s2);
        json_decref(recs);
    }
    assert_int_equal(events, (size_t)ok);
    cairn_service_stats_t sa, sb;
    cairn_service_stats(a, &sa);
    cairn_service_stats(b, &sb);
    printf("# ok=%d conflicts_reported=%d conflicts_retried=%llu\n", ok, conflicts,
           (unsigned long long)(sa.conflicts + sb.conflicts));
    cairn_service_destroy(a);
    cairn_service_destroy(b);
    cairn_log_close(log);
}

/* ---- append failures and the cache ------------------------------------------------- */

static int g_fail_sync;

static int flaky_sync(int fd)
{
    (void)fd;
    if (g_fail_sync) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static void test_fsync_failure_is_fatal_and_drops_the_cached_state(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_log_t *log = NULL;
    assert_int_equal(cairn_log_open(f->url, NULL, &log, &err), CAIRN_OK);
    cairn__log_set_sync_fn(log, flaky_sync);
    g_fail_sync = 0;
    struct bank b = {0};
    cairn_service_t *svc = service_on(f, log, 2);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    cairn_result_t res;
    assert_int_equal(send_cmd(agg, "acct-f", "Open", "{\"owner\":\"li\",\"kind\":\"SAVINGS\"}",
                              NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);
    g_fail_sync = 1;
    assert_int_equal(send_cmd(agg, "acct-f", "Deposit", "{\"amount\":9}", NULL, &res, &err),
                     CAIRN_E_IO_FSYNC);
    assert_true(err.flags & CAIRN_ERR_FATAL);
    assert_false(err.flags & CAIRN_ERR_RETRIABLE);
    cairn_result_release(&res);
    cairn_service_stats_t st;
    cairn_service_stats(svc, &st);
    uint64_t misses = st.cache_misses;
    /* The state was dropped: the next command loads again (and the log refuses it). */
    memset(&err, 0, sizeof err);
    assert_int_not_equal(send_cmd(agg, "acct-f", "Deposit", "{\"amount\":9}", NULL, &res, &err),
                         CAIRN_OK);
    cairn_result_release(&res);
    cairn_service_stats(svc, &st);
    assert_int_equal(st.cache_misses, misses + 1);
    cairn_service_destroy(svc);
    cairn_log_close(log);
}

static void test_cache_evicts_least_recently_used(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    struct bank b = {0};
    cairn_service_options_t so = {
        .log_url = f->url, .serde = f->serde, .topic = "bank", .cache_capacity = 2};
    cairn_service_t *svc = NULL;
    assert_int_equal(cairn_service_new(&so, &svc, &err), CAIRN_OK);
    cairn_aggregate_t *agg = fx_account(svc, &b);
    cairn_result_t res;
    const char *streams[] = {"e-1", "e-2", "e-3", "e-1", "e-3"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(send_cmd(agg, streams[i], "Open",
                                  "{\"owner\":\"mo\",\"kind\":\"SAVINGS\"}", NULL, &res, &err),
                         i < 3 ? CAIRN_OK : CAIRN_E_REJECTED);
        cairn_result_release(&res);
    }
    cairn_service_stats_t st;
    cairn_service_stats(svc, &st);
    /* e-1, e-2, e-3 miss; e-1 was evicted by e-3 (capacity 2) and misses again; e-3 hits. */
    assert_int_equal(st.cache_misses, 4);
    assert_int_equal(st.cache_hits, 1);
    cairn_service_destroy(svc);
}

static void test_idempotency_window_keeps_the_last_n_command_ids(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    for (int no_cache = 0; no_cache <= 1; no_cache++) {
        struct bank b = {0};
        char stream[16];
        cairn_service_options_t so = {.log_url = f->url,
                                      .serde = f->serde,
                                      .topic = "bank",
                                      .recent_commands = 3,
                                      .no_cache = no_cache};
        cairn_service_t *svc = NULL;
        assert_int_equal(cairn_service_new(&so, &svc, &err), CAIRN_OK);
        cairn_aggregate_t *agg = fx_account(svc, &b);
        cairn_result_t res;
        snprintf(stream, sizeof stream, "win-%d", no_cache);
        assert_int_equal(send_cmd(agg, stream, "Open", "{\"owner\":\"pa\",\"kind\":\"SAVINGS\"}",
                                  "c0", &res, &err),
                         CAIRN_OK);
        cairn_result_release(&res);
        for (int i = 1; i <= 5; i++) {
            char id[8];
            snprintf(id, sizeof id, "c%d", i);
            assert_int_equal(send_cmd(agg, stream, "Deposit", "{\"amount\":1}", id, &res, &err),
                             CAIRN_OK);
            assert_int_equal(res.version, (uint64_t)i + 1);
            cairn_result_release(&res);
        }
        /* c3..c5 are remembered, c2 is not: it is decided (and applied) again. */
        for (int i = 3; i <= 5; i++) {
            char id[8];
            snprintf(id, sizeof id, "c%d", i);
            assert_int_equal(send_cmd(agg, stream, "Deposit", "{\"amount\":1}", id, &res, &err),
                             CAIRN_OK);
            assert_int_equal(res.repeated, 1);
            assert_int_equal(res.version, (uint64_t)i + 1);
            cairn_result_release(&res);
        }
        assert_int_equal(send_cmd(agg, stream, "Deposit", "{\"amount\":1}", "c2", &res, &err),
                         CAIRN_OK);
        assert_int_equal(res.repeated, 0);
        assert_int_equal(res.version, 7);
        cairn_result_release(&res);
        cairn_service_destroy(svc);
    }
}

static void test_rejection_on_a_stale_cached_state_is_decided_again(void **state)
{
    struct fx *f = *state;
    cairn_error_t err = {0};
    cairn_log_t *log = NULL;
    cairn_log_options_t lo = {.no_sync = 1};
    assert_int_equal(cairn_log_open(f->url, &lo, &log, &err), CAIRN_OK);
    struct bank ba = {0}, bb = {0};
    cairn_service_t *a = service_on(f, log, 2), *b = service_on(f, log, 2);
    cairn_aggregate_t *aa = fx_account(a, &ba), *ab = fx_account(b, &bb);
    cairn_result_t res;
    assert_int_equal(send_cmd(aa, "acct-st", "Open", "{\"owner\":\"qi\",\"kind\":\"SAVINGS\"}",
                              NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);
    /* A caches balance 0; B deposits 100 behind its back. */
    assert_int_equal(send_cmd(ab, "acct-st", "Deposit", "{\"amount\":100}", NULL, &res, &err),
                     CAIRN_OK);
    cairn_result_release(&res);
    /* On A's stale state this is INSUFFICIENT_FUNDS; on the log's, it is fine. */
    assert_int_equal(send_cmd(aa, "acct-st", "Withdraw", "{\"amount\":50}", NULL, &res, &err),
                     CAIRN_OK);
    assert_int_equal(res.version, 3);
    cairn_result_release(&res);
    /* A true rejection still is one (and costs one fresh load at most). */
    assert_int_equal(send_cmd(ab, "acct-st", "Withdraw", "{\"amount\":51}", NULL, &res, &err),
                     CAIRN_E_REJECTED);
    assert_string_equal(res.reject_code, "INSUFFICIENT_FUNDS");
    cairn_result_release(&res);
    cairn_service_destroy(a);
    cairn_service_destroy(b);
    cairn_log_close(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_handle_appends_events_with_headers_and_returns_position, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_domain_rejection_appends_nothing, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_commands_report_every_violation_with_paths,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conflict_reloads_and_decides_again, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_repeated_command_id_returns_the_earlier_result,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rejection_on_a_stale_cached_state_is_decided_again,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_threads_final_state_equals_fold_of_log, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_is_fatal_and_drops_the_cached_state,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cache_evicts_least_recently_used, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_window_keeps_the_last_n_command_ids,
                                        fx_setup, fx_teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("sdk.service", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
