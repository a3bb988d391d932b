/* SPDX-License-Identifier: MIT */
/*
 * test_registry_client.c - the SDK's registry client against a real Cairn
 * registry started in this process (the service over a temporary data
 * directory, the REST API on a free port), and against small in-test
 * stand-ins for a registry that is down: a closed port, a listener that
 * never answers, and a responder thread that answers scripted HTTP (503s,
 * errors, redirects, oversized answers) and records what it was sent.
 * Cache hits are proven by counting HTTP attempts and by stopping the
 * server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>

#include "registry_fixture.h"

#define RECORD_A                                                                                   \
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[{\"name\":\"a\","         \
    "\"type\":\"int\"}]}"
#define RECORD_AB_REQUIRED                                                                         \
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[{\"name\":\"a\","         \
    "\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}]}"
#define RECORD_AB_DEFAULT                                                                          \
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[{\"name\":\"a\","         \
    "\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\",\"default\":\"x\"}]}"

/* ---- a real registry in this process (registry_fixture.h) ------------ */

static struct server g_server; /* shared by the tests that need a live registry */

static int group_setup(void **state)
{
    (void)state;
    return server_start(&g_server, "cairn-rclient-test");
}

static int group_teardown(void **state)
{
    (void)state;
    return server_stop(&g_server);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- a scripted HTTP responder ----------------------------------------- */

#define MAX_SCRIPT 4

struct responder {
    int fd;
    unsigned short port;
    pthread_t thread;
    atomic_int stop;
    atomic_int requests;
    int nscript;
    char script[MAX_SCRIPT][1024]; /* raw answers; the last one repeats */
    char last_request[8192];
};

static void responder_add(struct responder *r, int status, const char *extra, const char *body)
{
    assert_true(r->nscript < MAX_SCRIPT);
    snprintf(r->script[r->nscript++], sizeof r->script[0],
             "HTTP/1.1 %d X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
             "Connection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
             status, extra ? extra : "", strlen(body), body);
}

static int listen_any(unsigned short *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads one request (head and Content-Length body) into @p buf. */
static void read_request(int fd, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (n + 1 >= size || poll(&p, 1, 2000) <= 0)
            return;
        ssize_t got = read(fd, buf + n, size - 1 - n);
        if (got <= 0)
            return;
        n += (size_t)got;
        buf[n] = '\0';
        if ((unsigned char)buf[0] == 0x16)
            return; /* a TLS handshake: answer it with plain HTTP at once */
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strstr(buf, "Content-Length: ");
        size_t want = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
        if (n >= (size_t)(end + 4 - buf) + want)
            return;
    }
}

static void *responder_main(void *arg)
{
    struct responder *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int cfd = accept(r->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        char req[8192];
        read_request(cfd, req, sizeof req);
        int i = atomic_fetch_add(&r->requests, 1);
        memcpy(r->last_request, req, sizeof req);
        const char *ans = r->script[i < r->nscript ? i : r->nscript - 1];
        ssize_t w = write(cfd, ans, strlen(ans));
        (void)w;
        close(cfd);
    }
    return NULL;
}

static void responder_start(struct responder *r)
{
    r->fd = listen_any(&r->port);
    atomic_init(&r->stop, 0);
    atomic_init(&r->requests, 0);
    assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(struct responder *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

static cairn_registry_client_t *client_opts(const char *url, int retries, long timeout_ms)
{
    cairn_registry_client_t *c = NULL;
    cairn_error_t err = {0};
    cairn_registry_client_options_t o = {.url = url,
                                         .timeout_ms = timeout_ms,
                                         .connect_timeout_ms = timeout_ms,
                                         .max_retries = retries,
                                         .backoff_ms = 50};
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    return c;
}

/*
 * Starts @p r (its script added) and asks a new client of it (http, with
 * @p retries and 2 s timeouts) for schema 7; *s is the schema on success.
 */
static cairn_rc_t responder_fetch_7(struct responder *r,
                                    int retries,
                                    cairn_registered_schema_t **s,
                                    cairn_error_t *err)
{
    char url[64];
    responder_start(r);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)r->port);
    cairn_registry_client_t *c = client_opts(url, retries, 2000);
    cairn_rc_t rc = cairn_registry_client_schema_by_id(c, 7, s, err);
    cairn_registry_client_destroy(c);
    return rc;
}

/*
 * One scripted answer (repeated) served to a fetch of schema 7 with
 * @p retries: the result code, @p err, and the requests the responder saw.
 */
static cairn_rc_t fetch_7_answered(
    int status, const char *extra, const char *body, int retries, cairn_error_t *err, int *requests)
{
    struct responder r = {0};
    cairn_registered_schema_t *s = NULL;
    responder_add(&r, status, extra, body);
    cairn_rc_t rc = responder_fetch_7(&r, retries, &s, err);
    *requests = atomic_load(&r.requests);
    responder_stop(&r);
    cairn_registered_schema_release(s);
    return rc;
}

/* ---- against the real registry ----------------------------------------- */

static void test_register_lookup_by_id_and_latest(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_registered_schema_t *s = NULL, *t = NULL;
    int32_t version = 0;

    assert_int_equal(cairn_registry_client_register(c, "basic-value", NULL, RECORD_A, &s, &err),
                     CAIRN_OK);
    assert_true(cairn_registered_schema_id(s) > 0);
    assert_string_equal(cairn_registered_schema_type(s), "AVRO");
    assert_string_equal(cairn_registered_schema_name(s), "t.R");
    assert_non_null(cairn__registered_schema_avro(s));
    assert_int_equal(cairn__registered_schema_avro(s)->kind, CAIRN_AVRO_RECORD);

    unsigned long before = cairn__registry_client_attempts(c);
    assert_int_equal(cairn_registry_client_schema_by_id(c, cairn_registered_schema_id(s), &t, &err),
                     CAIRN_OK);
    assert_ptr_equal(t, s); /* the by-id map, filled by the registration */
    assert_int_equal(cairn__registry_client_attempts(c), before);
    cairn_registered_schema_release(t);

    /* Registering again is answered from the by-text map. */
    assert_int_equal(cairn_registry_client_register(c, "basic-value", "AVRO", RECORD_A, &t, &err),
                     CAIRN_OK);
    assert_ptr_equal(t, s);
    assert_int_equal(cairn__registry_client_attempts(c), before);
    cairn_registered_schema_release(t);

    /* A look-up wanting the version asks once (registration did not say it), then not again. */
    assert_int_equal(
        cairn_registry_client_lookup(c, "basic-value", NULL, RECORD_A, &t, &version, &err),
        CAIRN_OK);
    assert_int_equal(version, 1);
    assert_int_equal(cairn_registered_schema_id(t), cairn_registered_schema_id(s));
    assert_int_equal(cairn__registry_client_attempts(c), before + 1);
    cairn_registered_schema_release(t);
    version = 0;
    assert_int_equal(
        cairn_registry_client_lookup(c, "basic-value", NULL, RECORD_A, &t, &version, &err),
        CAIRN_OK);
    assert_int_equal(version, 1);
    assert_int_equal(cairn__registry_client_attempts(c), before + 1);
    cairn_registered_schema_release(t);

    /* Latest always asks (it changes). */
    assert_int_equal(
        cairn_registry_client_register(c, "basic-value", NULL, RECORD_AB_DEFAULT, &t, &err),
        CAIRN_OK);
    int32_t id2 = cairn_registered_schema_id(t);
    assert_int_not_equal(id2, cairn_registered_schema_id(s));
    cairn_registered_schema_release(t);
    before = cairn__registry_client_attempts(c);
    assert_int_equal(cairn_registry_client_latest(c, "basic-value", &t, &version, &err), CAIRN_OK);
    assert_int_equal(version, 2);
    assert_int_equal(cairn_registered_schema_id(t), id2);
    assert_int_equal(cairn__registry_client_attempts(c), before + 1);
    cairn_registered_schema_release(t);

    /* A fresh client fetches by id and parses the registry's text. */
    cairn_registry_client_t *c2 = client_for(g_server.url, 0);
    assert_int_equal(cairn_registry_client_schema_by_id(c2, id2, &t, &err), CAIRN_OK);
    assert_int_equal(cairn__registry_client_attempts(c2), 1);
    assert_non_null(strstr(cairn_registered_schema_text(t), "\"default\":\"x\""));
    assert_int_equal(cairn__registered_schema_avro(t)->nfields, 2);
    cairn_registered_schema_release(t);
    cairn_registry_client_destroy(c2);

    cairn_registered_schema_release(s);
    cairn_registry_client_destroy(c);
}

static void test_check_and_compatibility_levels(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_registered_schema_t *s = NULL;
    json_t *messages = NULL;
    int compatible = -1;
    char level[64];

    /* A subject without versions accepts anything. */
    assert_int_equal(
        cairn_registry_client_check(c, "check-value", NULL, RECORD_A, &compatible, &messages, &err),
        CAIRN_OK);
    assert_int_equal(compatible, 1);
    assert_true(json_is_array(messages));
    json_decref(messages);

    assert_int_equal(cairn_registry_client_register(c, "check-value", NULL, RECORD_A, &s, &err),
                     CAIRN_OK);
    cairn_registered_schema_release(s);
    assert_int_equal(cairn_registry_client_check(c, "check-value", NULL, RECORD_AB_REQUIRED,
                                                 &compatible, &messages, &err),
                     CAIRN_OK);
    assert_int_equal(compatible, 0);
    assert_true(json_array_size(messages) > 0);
    json_decref(messages);
    assert_int_equal(cairn_registry_client_check(c, "check-value", NULL, RECORD_AB_DEFAULT,
                                                 &compatible, NULL, &err),
                     CAIRN_OK);
    assert_int_equal(compatible, 1);

    /* Levels: none of its own, then set and read back. */
    assert_int_equal(
        cairn_registry_client_get_compatibility(c, "check-value", 0, level, sizeof level, &err),
        CAIRN_E_NOT_FOUND_SUBJECT_LEVEL);
    memset(&err, 0, sizeof err);
    assert_int_equal(
        cairn_registry_client_get_compatibility(c, "check-value", 1, level, sizeof level, &err),
        CAIRN_OK);
    assert_string_equal(level, "BACKWARD");
    assert_int_equal(
        cairn_registry_client_set_compatibility(c, "check-value", "FULL_TRANSITIVE", &err),
        CAIRN_OK);
    assert_int_equal(
        cairn_registry_client_get_compatibility(c, "check-value", 0, level, sizeof level, &err),
        CAIRN_OK);
    assert_string_equal(level, "FULL_TRANSITIVE");
    assert_int_equal(cairn_registry_client_set_compatibility(c, "check-value", "SIDEWAYS", &err),
                     CAIRN_E_INVALID_LEVEL);
    cairn_registry_client_destroy(c);
}

static void test_confluent_errors_are_mapped(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_registered_schema_t *s = NULL;
    int32_t version = 0;

    assert_int_equal(cairn_registry_client_schema_by_id(c, 999999, &s, &err),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    assert_int_equal(err.cause, 404);
    assert_null(s);
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_registry_client_latest(c, "no-such-subject", &s, &version, &err),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    assert_string_equal(err.where, "no-such-subject");
    memset(&err, 0, sizeof err);
    assert_int_equal(
        cairn_registry_client_register(c, "errors-value", NULL, "{\"type\":\"nope\"}", &s, &err),
        CAIRN_E_INVALID_SCHEMA);
    assert_int_equal(err.cause, 422);
    memset(&err, 0, sizeof err);
    assert_int_equal(
        cairn_registry_client_lookup(c, "no-such-subject", NULL, RECORD_A, &s, &version, &err),
        CAIRN_E_NOT_FOUND_SUBJECT);

    assert_int_equal(cairn_registry_client_register(c, "errors-value", NULL, RECORD_A, &s, &err),
                     CAIRN_OK);
    cairn_registered_schema_release(s);
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_registry_client_lookup(c, "errors-value", NULL, RECORD_AB_DEFAULT, &s,
                                                  &version, &err),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    memset(&err, 0, sizeof err);
    assert_int_equal(
        cairn_registry_client_register(c, "errors-value", NULL, RECORD_AB_REQUIRED, &s, &err),
        CAIRN_E_INCOMPATIBLE);
    assert_int_equal(err.cause, 409);
    assert_false(err.flags & CAIRN_ERR_RETRIABLE);
    /* The registry's reasons, as it wrote them. */
    assert_non_null(strstr(err.text, "READER_FIELD_MISSING_DEFAULT_VALUE"));
    cairn_registry_client_destroy(c);
}

static void test_subject_with_slash_and_space_is_escaped(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_registered_schema_t *s = NULL;
    int32_t version = 0;
    assert_int_equal(cairn_registry_client_register(c, "a/b c?d", NULL, RECORD_A, &s, &err),
                     CAIRN_OK);
    cairn_registered_schema_release(s);
    cairn_registry_client_t *c2 = client_for(g_server.url, 0);
    assert_int_equal(cairn_registry_client_latest(c2, "a/b c?d", &s, &version, &err), CAIRN_OK);
    assert_int_equal(version, 1);
    cairn_registered_schema_release(s);
    cairn_registry_client_destroy(c2);
    cairn_registry_client_destroy(c);
}

static void test_references_are_fetched_and_parsed(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_registered_schema_t *money = NULL, *s = NULL;
    json_t *ans = NULL;

    assert_int_equal(
        cairn_registry_client_register(c, "money", "AVRO",
                                       "{\"type\":\"record\",\"name\":\"Money\",\"namespace\":"
                                       "\"com.acme\",\"fields\":[{\"name\":\"cents\",\"type\":"
                                       "\"long\"}]}",
                                       &money, &err),
        CAIRN_OK);
    /* The public register has no references: send this one raw. */
    json_t *body = json_pack(
        "{s:s, s:[{s:s, s:s, s:i}]}", "schema",
        "{\"type\":\"record\",\"name\":\"Payment\",\"namespace\":\"com.acme\",\"fields\":["
        "{\"name\":\"amount\",\"type\":\"com.acme.Money\"}]}",
        "references", "name", "com.acme.Money", "subject", "money", "version", 1);
    assert_int_equal(cairn__http_request(cairn__registry_client_http(c), "POST",
                                         "/subjects/payment/versions", body, "payment", &ans, &err),
                     CAIRN_OK);
    int32_t id = (int32_t)json_integer_value(json_object_get(ans, "id"));
    json_decref(ans);
    json_decref(body);
    assert_true(id > 0);

    /* A fresh client: the schema by id, then its reference by subject/version. */
    cairn_registry_client_t *c2 = client_for(g_server.url, 0);
    assert_int_equal(cairn_registry_client_schema_by_id(c2, id, &s, &err), CAIRN_OK);
    assert_int_equal(cairn__registry_client_attempts(c2), 2);
    const cairn_avro_node_t *root = cairn__registered_schema_avro(s);
    assert_non_null(root);
    assert_string_equal(root->fullname, "com.acme.Payment");
    assert_int_equal(root->fields[0].type->kind, CAIRN_AVRO_RECORD);
    assert_string_equal(root->fields[0].type->fullname, "com.acme.Money");
    /* The referenced schema went to the by-id map too. */
    cairn_registered_schema_t *m2 = NULL;
    assert_int_equal(
        cairn_registry_client_schema_by_id(c2, cairn_registered_schema_id(money), &m2, &err),
        CAIRN_OK);
    assert_int_equal(cairn__registry_client_attempts(c2), 2);
    cairn_registered_schema_release(m2);
    cairn_registered_schema_release(s);
    cairn_registered_schema_release(money);
    cairn_registry_client_destroy(c2);
    cairn_registry_client_destroy(c);
}

static void test_eviction_never_frees_a_schema_in_use(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_registered_schema_t *s[4];
    int32_t ids[4];
    char text[256], subject[32];
    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof text,
                 "{\"type\":\"record\",\"name\":\"E%d\",\"fields\":[{\"name\":\"a\",\"type\":"
                 "\"int\"}]}",
                 i);
        snprintf(subject, sizeof subject, "evict-%d", i);
        assert_int_equal(cairn_registry_client_register(c, subject, NULL, text, &s[i], &err),
                         CAIRN_OK);
        ids[i] = cairn_registered_schema_id(s[i]);
        cairn_registered_schema_release(s[i]);
    }
    cairn_registry_client_destroy(c);

    c = client_for(g_server.url, 2);
    assert_int_equal(cairn_registry_client_schema_by_id(c, ids[0], &s[0], &err), CAIRN_OK);
    for (int i = 1; i < 4; i++)
        assert_int_equal(cairn_registry_client_schema_by_id(c, ids[i], &s[i], &err), CAIRN_OK);
    assert_int_equal(cairn__registry_client_attempts(c), 4);
    /* ids[0] and ids[1] were evicted; the schema still held is intact. */
    assert_string_equal(cairn_registered_schema_name(s[0]), "E0");
    assert_int_equal(cairn__registered_schema_avro(s[0])->nfields, 1);
    cairn_registered_schema_t *again = NULL;
    assert_int_equal(cairn_registry_client_schema_by_id(c, ids[3], &again, &err), CAIRN_OK);
    assert_ptr_equal(again, s[3]);
    assert_int_equal(cairn__registry_client_attempts(c), 4);
    cairn_registered_schema_release(again);
    assert_int_equal(cairn_registry_client_schema_by_id(c, ids[0], &again, &err), CAIRN_OK);
    assert_int_equal(cairn__registry_client_attempts(c), 5);
    assert_ptr_not_equal(again, s[0]);
    cairn_registered_schema_release(again);
    cairn_registry_client_destroy(c); /* schemas outlive their client */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cairn_registered_schema_id(s[i]), ids[i]);
        cairn_registered_schema_release(s[i]);
    }
}

/* 8 threads share one client: registrations, look-ups and by-id reads. */
#define THREADS 8
#define ROUNDS  40
#define NSCHEMA 6

struct worker {
    cairn_registry_client_t *c;
    const int32_t *ids;
    int seed;
    atomic_int *failures;
};

static void schema_text(int i, char *buf, size_t size)
{
    snprintf(buf, size,
             "{\"type\":\"record\",\"name\":\"C%d\",\"fields\":[{\"name\":\"n\",\"type\":"
             "\"long\"}]}",
             i);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char text[256], subject[32];
    for (int r = 0; r < ROUNDS; r++) {
        int i = (r + w->seed) % NSCHEMA;
        cairn_error_t err = {0};
        cairn_registered_schema_t *s = NULL;
        int32_t version = 0;
        schema_text(i, text, sizeof text);
        snprintf(subject, sizeof subject, "conc-%d", i);
        switch (r % 3) {
        case 0:
            if (cairn_registry_client_register(w->c, subject, NULL, text, &s, &err) != CAIRN_OK)
                s = NULL;
            break;
        case 1:
            if (cairn_registry_client_lookup(w->c, subject, NULL, text, &s, &version, &err) !=
                    CAIRN_OK ||
                version != 1) {
                cairn_registered_schema_release(s);
                s = NULL;
            }
            break;
        default:
            if (cairn_registry_client_schema_by_id(w->c, w->ids[i], &s, &err) != CAIRN_OK)
                s = NULL;
            break;
        }
        if (!s || cairn_registered_schema_id(s) != w->ids[i] ||
            cairn__registered_schema_avro(s)->nfields != 1)
            atomic_fetch_add(w->failures, 1);
        cairn_registered_schema_release(s);
    }
    return NULL;
}

static void run_workers(size_t max_cached, const int32_t *ids)
{
    cairn_registry_client_t *c = client_for(g_server.url, max_cached);
    atomic_int failures;
    struct worker w[THREADS];
    atomic_init(&failures, 0);
    for (int t = 0; t < THREADS; t++)
        w[t] = (struct worker){.c = c, .ids = ids, .seed = t, .failures = &failures};
    run_threads(worker_main, w, sizeof w[0], THREADS);
    assert_int_equal(atomic_load(&failures), 0);
    cairn_registry_client_destroy(c);
}

static void test_one_client_is_shared_by_8_threads(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    int32_t ids[NSCHEMA];
    char text[256], subject[32];
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    for (int i = 0; i < NSCHEMA; i++) {
        cairn_registered_schema_t *s = NULL;
        schema_text(i, text, sizeof text);
        snprintf(subject, sizeof subject, "conc-%d", i);
        assert_int_equal(cairn_registry_client_register(c, subject, NULL, text, &s, &err),
                         CAIRN_OK);
        ids[i] = cairn_registered_schema_id(s);
        cairn_registered_schema_release(s);
    }
    cairn_registry_client_destroy(c);
    run_workers(0, ids); /* a cache that holds everything */
    run_workers(2, ids); /* constant eviction while other threads hold schemas */
}

static void test_cached_schemas_answer_while_the_registry_is_down(void **state)
{
    (void)state;
    struct server srv;
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL, *t = NULL;
    assert_int_equal(server_start(&srv, "cairn-rclient-test"), 0);
    cairn_registry_client_t *c = client_opts(srv.url, 1, 1000);
    assert_int_equal(cairn_registry_client_register(c, "down-value", NULL, RECORD_A, &s, &err),
                     CAIRN_OK);
    int32_t id = cairn_registered_schema_id(s);
    server_stop_api(&srv);

    assert_int_equal(cairn_registry_client_schema_by_id(c, id, &t, &err), CAIRN_OK);
    assert_ptr_equal(t, s);
    cairn_registered_schema_release(t);
    assert_int_equal(cairn_registry_client_register(c, "down-value", NULL, RECORD_A, &t, &err),
                     CAIRN_OK);
    assert_ptr_equal(t, s);
    cairn_registered_schema_release(t);
    /* What is not cached needs the registry, and says so. */
    assert_int_equal(cairn_registry_client_schema_by_id(c, id + 1, &t, &err), CAIRN_E_UNAVAILABLE);
    assert_true(err.flags & CAIRN_ERR_RETRIABLE);
    cairn_registered_schema_release(s);
    cairn_registry_client_destroy(c);
    assert_int_equal(server_stop(&srv), 0);
}

/* ---- registry down or misbehaving -------------------------------------- */

static void test_closed_port_is_unavailable_quickly(void **state)
{
    (void)state;
    unsigned short port;
    char url[64];
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    int fd = listen_any(&port);
    close(fd); /* nothing listens there now */
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    cairn_registry_client_t *c = client_opts(url, 2, 1000);
    double t0 = now_ms();
    assert_int_equal(cairn_registry_client_schema_by_id(c, 1, &s, &err), CAIRN_E_UNAVAILABLE);
    double took = now_ms() - t0;
    assert_true(err.flags & CAIRN_ERR_RETRIABLE);
    assert_int_equal(cairn__registry_client_attempts(c), 3);
    assert_true(took >= 50 + 100 - 5); /* the two backoffs were waited */
    assert_true(took < 2000);
    assert_non_null(strstr(err.text, "3 attempts"));
    cairn_registry_client_destroy(c);
}

static void test_silent_listener_times_out_within_bounds(void **state)
{
    (void)state;
    unsigned short port;
    char url[64];
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    /* The kernel completes the handshake; nobody ever reads or answers. */
    int fd = listen_any(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    cairn_registry_client_t *c = client_opts(url, 1, 300);
    double t0 = now_ms();
    assert_int_equal(cairn_registry_client_schema_by_id(c, 1, &s, &err), CAIRN_E_TIMEOUT);
    double took = now_ms() - t0;
    assert_true(err.flags & CAIRN_ERR_RETRIABLE);
    assert_int_equal(cairn__registry_client_attempts(c), 2);
    /* (retries + 1) x timeout + backoff = 2 x 300 + 50 ms; loose bounds for a busy machine. */
    assert_true(took >= 600);
    assert_true(took < 3000);
    cairn_registry_client_destroy(c);
    close(fd);
}

static void test_503_twice_then_200_succeeds_after_retries(void **state)
{
    (void)state;
    struct responder r = {0};
    char body[512];
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    json_t *j = json_pack("{s:s}", "schema", RECORD_A);
    size_t n = json_dumpb(j, body, sizeof body - 1, JSON_COMPACT);
    body[n] = '\0';
    json_decref(j);
    responder_add(&r, 503, NULL, "{\"error_code\":50003,\"message\":\"busy\"}");
    responder_add(&r, 503, NULL, "{\"error_code\":50003,\"message\":\"busy\"}");
    responder_add(&r, 200, NULL, body);
    assert_int_equal(responder_fetch_7(&r, 2, &s, &err), CAIRN_OK);
    assert_int_equal(atomic_load(&r.requests), 3);
    assert_int_equal(cairn_registered_schema_id(s), 7);
    assert_string_equal(cairn_registered_schema_name(s), "t.R");
    assert_non_null(strstr(r.last_request, "GET /schemas/ids/7 HTTP/1.1"));
    assert_non_null(strstr(r.last_request, "application/vnd.schemaregistry.v1+json"));
    cairn_registered_schema_release(s);
    responder_stop(&r);
}

static void test_5xx_after_the_retries_is_unavailable_and_retriable(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    int requests = 0;
    assert_int_equal(fetch_7_answered(500, NULL,
                                      "{\"error_code\":50001,\"message\":\"store failed\"}", 2,
                                      &err, &requests),
                     CAIRN_E_UNAVAILABLE);
    assert_true(err.flags & CAIRN_ERR_RETRIABLE);
    assert_int_equal(err.cause, 500);
    assert_non_null(strstr(err.text, "store failed"));
    assert_int_equal(requests, 3);
}

static void test_4xx_is_not_retried(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    int requests = 0;
    assert_int_equal(fetch_7_answered(404, NULL,
                                      "{\"error_code\":40403,\"message\":\"Schema 7 not found\"}",
                                      3, &err, &requests),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    assert_false(err.flags & CAIRN_ERR_RETRIABLE);
    assert_non_null(strstr(err.text, "Schema 7 not found"));
    assert_int_equal(requests, 1);
}

static void test_redirects_are_not_followed(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    int requests = 0;
    assert_int_equal(
        fetch_7_answered(302, "Location: http://127.0.0.1:1/elsewhere\r\n", "", 2, &err, &requests),
        CAIRN_E_INVALID_REQUEST);
    assert_int_equal(err.cause, 302);
    assert_int_equal(requests, 1);
}

static void test_oversized_answer_is_refused(void **state)
{
    (void)state;
    struct responder r = {0};
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    /* Announces 64 MiB and sends nothing of it: refused on the header. */
    snprintf(r.script[0], sizeof r.script[0],
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 67108864\r\n"
             "Connection: close\r\n\r\n{");
    r.nscript = 1;
    assert_int_equal(responder_fetch_7(&r, 2, &s, &err), CAIRN_E_INVALID_TOO_LARGE);
    assert_int_equal(atomic_load(&r.requests), 1);
    responder_stop(&r);
}

static void test_basic_auth_is_sent_and_the_password_never_shown(void **state)
{
    (void)state;
    struct responder r = {0};
    char url[96];
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    responder_add(&r, 503, NULL, "{\"error_code\":50003,\"message\":\"down\"}");
    responder_start(&r);
    snprintf(url, sizeof url, "http://alice:s3cret@127.0.0.1:%u/", (unsigned)r.port);
    cairn_registry_client_t *c = client_opts(url, -1, 2000);
    assert_int_equal(cairn_registry_client_schema_by_id(c, 7, &s, &err), CAIRN_E_UNAVAILABLE);
    assert_int_equal(atomic_load(&r.requests), 1); /* max_retries < 0: none */
    /* base64("alice:s3cret") */
    assert_non_null(strstr(r.last_request, "Authorization: Basic YWxpY2U6czNjcmV0"));
    assert_non_null(strstr(err.text, "alice:***@"));
    assert_null(strstr(err.text, "s3cret"));
    cairn_registry_client_destroy(c);

    /* From the options when the URL has none. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)r.port);
    cairn_registry_client_options_t o = {
        .url = url, .user = "bob", .password = "hunter2", .max_retries = -1};
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_registry_client_schema_by_id(c, 7, &s, &err), CAIRN_E_UNAVAILABLE);
    assert_non_null(strstr(r.last_request, "Authorization: Basic Ym9iOmh1bnRlcjI="));
    assert_non_null(strstr(err.text, "bob:***@"));
    assert_null(strstr(err.text, "hunter2"));
    cairn_registry_client_destroy(c);
    responder_stop(&r);
}

static void test_bad_urls_and_options_are_refused_with_the_password_masked(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = NULL;
    cairn_registry_client_options_t o = {.url = "ftp://carol:topsecret@example.com/"};
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_E_INVALID);
    assert_null(c);
    assert_non_null(strstr(err.text, "carol:***@"));
    assert_null(strstr(err.text, "topsecret"));
    memset(&err, 0, sizeof err);
    o.url = "carol:topsecret@example.com:8081";
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_E_INVALID);
    assert_null(strstr(err.text, "topsecret"));
    memset(&err, 0, sizeof err);
    o.url = "";
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_E_INVALID);
    memset(&err, 0, sizeof err);
    o.url = "https://registry.example.com";
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "/nonexistent/ca.pem"));
    memset(&err, 0, sizeof err);
    o.ca_file = NULL;
    o.timeout_ms = -5;
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_E_INVALID);
    cairn_registry_client_destroy(NULL);
    cairn_registered_schema_release(NULL);
}

static void test_tls_failure_against_a_plain_listener_is_reported(void **state)
{
    (void)state;
    struct responder r = {0};
    char url[64];
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    responder_add(&r, 200, NULL, "{}");
    responder_start(&r);
    /* https to a plain-HTTP listener: the TLS handshake fails (insecure or not). */
    snprintf(url, sizeof url, "https://127.0.0.1:%u", (unsigned)r.port);
    cairn_registry_client_options_t o = {
        .url = url, .insecure_skip_verify = 1, .max_retries = -1, .timeout_ms = 2000};
    cairn_registry_client_t *c = NULL;
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    cairn_rc_t rc = cairn_registry_client_schema_by_id(c, 7, &s, &err);
    assert_true(rc == CAIRN_E_UNAVAILABLE || rc == CAIRN_E_IO);
    assert_null(s);
    cairn_registry_client_destroy(c);
    responder_stop(&r);
}

/* ---- TLS: a libmicrohttpd (GnuTLS) server with a self-signed certificate -- */

/* CN and subjectAltName 127.0.0.1, valid for 100 years; a test-only key. */
static const char tls_cert[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBkDCCATagAwIBAgIUC7soljN7/+wnBVTgsDq1Ws3D67IwCgYIKoZIzj0EAwIw\n"
                               "FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNTE0NTk1OVoYDzIxMjYxMTAx\n"
                               "MTQ1OTU5WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO\n"
                               "PQMBBwNCAAQtKFfE+rSxEFqueyexsQb4RLn6+icKakS1Nl4Mfu2TAvSCemusva6j\n"
                               "8mZmPVT6eNuHReKG/xjKIl35nPLBoLm/o2QwYjAdBgNVHQ4EFgQU7Heg5YBiGBg+\n"
                               "66cmbxT5qaOwHB4wHwYDVR0jBBgwFoAU7Heg5YBiGBg+66cmbxT5qaOwHB4wDwYD\n"
                               "VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC\n"
                               "IGytFBNxDlN5vY6Ab2InBKk9te4CgPfCtqeJnmZogJKQAiEA4A7zw8lC5xQvDmW1\n"
                               "SAT+QUelNAj71a0xuydeKyAkBWI=\n"
                               "-----END CERTIFICATE-----\n";
static const char tls_key[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXfV+l8c2TMhCz0Lh\n"
                              "hrxQwoWQj0VU2ePDenscOAp52uuhRANCAAQtKFfE+rSxEFqueyexsQb4RLn6+icK\n"
                              "akS1Nl4Mfu2TAvSCemusva6j8mZmPVT6eNuHReKG/xjKIl35nPLBoLm/\n"
                              "-----END PRIVATE KEY-----\n";

static enum MHD_Result tls_answer(void *cls,
                                  struct MHD_Connection *conn,
                                  const char *url,
                                  const char *method,
                                  const char *version,
                                  const char *upload,
                                  size_t *upload_size,
                                  void **ctx)
{
    static char body[] = "{\"schema\":\"{\\\"type\\\":\\\"string\\\"}\"}";
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
    if (!*ctx) {
        *ctx = conn; /* answer on the second call (shared/ENVIRONMENT.md) */
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void test_tls_options_reach_libcurl(void **state)
{
    (void)state;
    char url[64], ca[] = "/tmp/cairn-rclient-ca-XXXXXX";
    cairn_error_t err = {0};
    cairn_registered_schema_t *s = NULL;
    cairn_registry_client_t *c = NULL;
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                         NULL, tls_answer, NULL, MHD_OPTION_HTTPS_MEM_KEY, tls_key,
                         MHD_OPTION_HTTPS_MEM_CERT, tls_cert, MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(url, sizeof url, "https://127.0.0.1:%u", (unsigned)info->port);
    int fd = mkstemp(ca);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, tls_cert, strlen(tls_cert)), (ssize_t)strlen(tls_cert));
    close(fd);

    /* Verified against the CA file given. */
    cairn_registry_client_options_t o = {.url = url, .ca_file = ca, .backoff_ms = 10};
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    assert_int_equal(cairn_registry_client_schema_by_id(c, 7, &s, &err), CAIRN_OK);
    assert_string_equal(cairn_registered_schema_text(s), "{\"type\":\"string\"}");
    cairn_registered_schema_release(s);
    cairn_registry_client_destroy(c);

    /* The system store does not know this certificate: refused, and not retried. */
    o.ca_file = NULL;
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    assert_int_equal(cairn_registry_client_schema_by_id(c, 7, &s, &err), CAIRN_E_IO);
    assert_int_equal(err.cause, CURLE_PEER_FAILED_VERIFICATION);
    assert_int_equal(cairn__registry_client_attempts(c), 1);
    cairn_registry_client_destroy(c);

    /* Unless verification is turned off. */
    o.insecure_skip_verify = 1;
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_registry_client_new(&o, &c, &err), CAIRN_OK);
    assert_int_equal(cairn_registry_client_schema_by_id(c, 7, &s, &err), CAIRN_OK);
    cairn_registered_schema_release(s);
    cairn_registry_client_destroy(c);

    MHD_stop_daemon(d);
    unlink(ca);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_register_lookup_by_id_and_latest),
        cmocka_unit_test(test_check_and_compatibility_levels),
        cmocka_unit_test(test_confluent_errors_are_mapped),
        cmocka_unit_test(test_subject_with_slash_and_space_is_escaped),
        cmocka_unit_test(test_references_are_fetched_and_parsed),
        cmocka_unit_test(test_eviction_never_frees_a_schema_in_use),
        cmocka_unit_test(test_one_client_is_shared_by_8_threads),
    };
    const struct CMUnitTest down[] = {
        cmocka_unit_test(test_cached_schemas_answer_while_the_registry_is_down),
        cmocka_unit_test(test_closed_port_is_unavailable_quickly),
        cmocka_unit_test(test_silent_listener_times_out_within_bounds),
        cmocka_unit_test(test_503_twice_then_200_succeeds_after_retries),
        cmocka_unit_test(test_5xx_after_the_retries_is_unavailable_and_retriable),
        cmocka_unit_test(test_4xx_is_not_retried),
        cmocka_unit_test(test_redirects_are_not_followed),
        cmocka_unit_test(test_oversized_answer_is_refused),
        cmocka_unit_test(test_basic_auth_is_sent_and_the_password_never_shown),
        cmocka_unit_test(test_bad_urls_and_options_are_refused_with_the_password_masked),
        cmocka_unit_test(test_tls_failure_against_a_plain_listener_is_reported),
        cmocka_unit_test(test_tls_options_reach_libcurl),
    };
    int failed =
        cmocka_run_group_tests_name("sdk.registry_client", live, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("sdk.registry_client.down", down, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
