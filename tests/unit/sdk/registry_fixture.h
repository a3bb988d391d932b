/* SPDX-License-Identifier: MIT */
/*
 * registry_fixture.h - what the registry client and serde tests share: a
 * real Cairn registry started in the test process (the registry service
 * over a temporary data directory and the REST API on a free port), a
 * registry client for a URL, and a helper that runs worker threads and joins
 * them. Each test file uses a part of it, so the functions are static inline.
 */
#ifndef CAIRN_TEST_SDK_REGISTRY_FIXTURE_H
#define CAIRN_TEST_SDK_REGISTRY_FIXTURE_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "registry_client_int.h"

struct server {
    char dir[64];
    cairn_registry_t *reg;
    cairn_api_t *api;
    char url[64];
};

/*
 * Opens a registry over a new directory /tmp/<prefix>-XXXXXX and serves it
 * on 127.0.0.1 with two threads. Returns 0, or -1 with a line on stderr.
 */
static inline int server_start(struct server *s, const char *prefix)
{
    cairn_error_t err = {0};
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(s->dir))
        return -1;
    cairn_registry_options_t ro = {.data_dir = s->dir, .no_sync = 1};
    if (cairn_registry_open(&ro, &s->reg, &err) != CAIRN_OK) {
        fprintf(stderr, "registry open: %s\n", err.text);
        return -1;
    }
    cairn_api_options_t ao = {.listen_host = "127.0.0.1", .threads = 2};
    if (cairn_api_start(s->reg, &ao, &s->api, &err) != CAIRN_OK) {
        fprintf(stderr, "api start: %s\n", err.text);
        return -1;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%u", (unsigned)cairn_api_port(s->api));
    return 0;
}

/* Stops serving (the registry stays open): the registry is "down". */
static inline void server_stop_api(struct server *s)
{
    cairn_api_stop(s->api);
    s->api = NULL;
}

/* Stops serving, closes the registry and removes its directory; 0 on success. */
static inline int server_stop(struct server *s)
{
    char cmd[128];
    server_stop_api(s);
    cairn_registry_close(s->reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A client of @p url: 3 s timeouts, 20 ms backoff, @p max_cached schemas (0: the default). */
static inline cairn_registry_client_t *client_for(const char *url, size_t max_cached)
{
    cairn_registry_client_t *c = NULL;
    cairn_error_t err = {0};
    cairn_registry_client_options_t o = {
        .url = url, .timeout_ms = 3000, .backoff_ms = 20, .max_cached_schemas = max_cached};
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    return c;
}

/*
 * Runs @p fn on each of the @p n items of @p workers (an array of @p size
 * byte items) in a thread of its own, and joins them all.
 */
static inline void run_threads(void *(*fn)(void *), void *workers, size_t size, int n)
{
    pthread_t th[64];
    assert_true(n > 0 && n <= 64);
    for (int t = 0; t < n; t++)
        assert_int_equal(pthread_create(&th[t], NULL, fn, (char *)workers + (size_t)t * size), 0);
    for (int t = 0; t < n; t++)
        pthread_join(th[t], NULL);
}

#endif
