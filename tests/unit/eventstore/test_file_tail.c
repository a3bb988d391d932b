/* SPDX-License-Identifier: MIT */
/*
 * test_file_tail.c - tails and partitions of the file backend, where they
 * differ from what the conformance suite can see: a record written but not
 * yet fdatasynced is never delivered, neither to a tail on the writer's own
 * handle nor to one on a read-only opener (which follows the published
 * durable marker); it is delivered as soon as the sync completes. The sync
 * is held back by a hook (cairn__log_set_sync_fn) that blocks until the test
 * releases it.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cairn/eventstore.h"
#include "eventstore_int.h"

struct fixture {
    char dir[64];
};

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open = 1;
static atomic_int syncs_waiting;

static int gated_sync(int fd)
{
    pthread_mutex_lock(&gate_mu);
    atomic_fetch_add(&syncs_waiting, 1);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    atomic_fetch_sub(&syncs_waiting, 1);
    pthread_mutex_unlock(&gate_mu);
    return fdatasync(fd);
}

static void set_gate(int open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-tail-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    set_gate(1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static int count_cb(void *opaque, const cairn_record_t *r)
{
    size_t *n = opaque;
    (void)r;
    (*n)++;
    return 0;
}

struct appender {
    cairn_log_t *log;
    cairn_rc_t rc;
};

static void *append_one(void *arg)
{
    struct appender *a = arg;
    cairn_record_t r = {.value = "held", .value_len = 4};
    a->rc = cairn_log_append(a->log, "s", CAIRN_EXPECT_ANY, &r, 1, NULL, NULL);
    return NULL;
}

static void wait_for_sync_to_block(void)
{
    for (int i = 0; i < 5000 && atomic_load(&syncs_waiting) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&syncs_waiting), 1);
}

static void test_no_delivery_before_fsync(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = NULL, *ro = NULL;
    cairn_tail_t *own = NULL, *other = NULL;
    cairn_log_options_t ro_opts = {.read_only = 1};
    size_t n_own = 0, n_other = 0, got = 0;

    assert_int_equal(cairn_log_open(f->dir, NULL, &log, NULL), CAIRN_OK);
    cairn_record_t first = {.value = "first", .value_len = 5};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, &first, 1, NULL, NULL), CAIRN_OK);
    assert_int_equal(cairn_log_open(f->dir, &ro_opts, &ro, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_open(log, "end", &own, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_open(ro, "end", &other, NULL), CAIRN_OK);
    uint64_t end_before = cairn_log_end(log);

    cairn__log_set_sync_fn(log, gated_sync);
    set_gate(0);
    struct appender a = {log, CAIRN_E_INTERNAL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, append_one, &a), 0);
    wait_for_sync_to_block(); /* written (pwrite done), not yet synced */
    assert_int_equal(cairn_log_stream_version(log, "s"), 2);

    assert_int_equal(cairn_tail_poll(own, 150, 10, count_cb, &n_own, &got, NULL), CAIRN_OK);
    assert_int_equal(got, 0);
    assert_int_equal(cairn_tail_poll(other, 150, 10, count_cb, &n_other, &got, NULL), CAIRN_OK);
    assert_int_equal(got, 0);
    assert_int_equal(cairn_log_end(ro), end_before);
    assert_int_equal(cairn_log_stream_version(ro, "s"), 1);

    set_gate(1);
    /* Both tails wait for the commit: the writer's on its condition
     * variable, the read-only one by polling the durable marker. */
    assert_int_equal(cairn_tail_poll(own, 5000, 10, count_cb, &n_own, &got, NULL), CAIRN_OK);
    assert_int_equal(got, 1);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, CAIRN_OK);
    assert_int_equal(cairn_tail_poll(other, 5000, 10, count_cb, &n_other, &got, NULL), CAIRN_OK);
    assert_int_equal(got, 1);
    assert_true(cairn_log_end(ro) > end_before);

    cairn_tail_close(own);
    cairn_tail_close(other);
    cairn_log_close(ro);
    cairn_log_close(log);
}

static void test_checkpoint_strings_and_partitions(void **state)
{
    struct fixture *f = *state;
    cairn_log_t *log = NULL;
    cairn_tail_t *t = NULL;
    char cp[CAIRN_CHECKPOINT_MAX];
    size_t n = 0;

    assert_int_equal(cairn_log_open(f->dir, NULL, &log, NULL), CAIRN_OK);
    assert_int_equal(cairn_log_partition_count(log), 1);
    assert_int_equal(cairn_log_partition_of(log, "anything"), 0);
    cairn_record_t r = {.value = "v", .value_len = 1};
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, &r, 1, NULL, NULL), CAIRN_OK);
    uint64_t second = cairn_log_end(log);
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, &r, 1, NULL, NULL), CAIRN_OK);
    assert_int_equal(r.position, second);
    assert_int_equal(r.partition, 0);
    assert_int_equal(cairn_log_partition_end(log, 0), cairn_log_end(log));
    assert_int_equal(cairn_log_partition_end(log, 1), 0);

    /* A checkpoint is "file:<position after the last delivered record>". */
    assert_int_equal(cairn_tail_open(log, NULL, &t, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_poll(t, 0, 1, count_cb, &n, NULL, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_checkpoint(t, cp, sizeof cp, NULL), CAIRN_OK);
    char want[64];
    snprintf(want, sizeof want, "file:%llu", (unsigned long long)second);
    assert_string_equal(cp, want);
    assert_int_equal(cairn_tail_checkpoint(t, cp, 4, NULL), CAIRN_E_INVALID);
    cairn_tail_close(t);

    /* A position inside a record resumes at the next record boundary. */
    snprintf(want, sizeof want, "file:%llu", (unsigned long long)second - 3);
    n = 0;
    assert_int_equal(cairn_tail_open(log, want, &t, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_poll(t, 0, 10, count_cb, &n, NULL, NULL), CAIRN_OK);
    assert_int_equal(n, 1);
    cairn_tail_close(t);
    /* "end" delivers nothing old; max_records 0 delivers nothing at all. */
    n = 0;
    assert_int_equal(cairn_tail_open(log, "end", &t, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_poll(t, 0, 10, count_cb, &n, NULL, NULL), CAIRN_OK);
    assert_int_equal(cairn_log_append(log, "s", CAIRN_EXPECT_ANY, &r, 1, NULL, NULL), CAIRN_OK);
    assert_int_equal(cairn_tail_poll(t, 0, 0, count_cb, &n, NULL, NULL), CAIRN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(cairn_tail_poll(t, 0, 10, count_cb, &n, NULL, NULL), CAIRN_OK);
    assert_int_equal(n, 1);
    cairn_tail_close(t);
    cairn_log_close(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_delivery_before_fsync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_strings_and_partitions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
