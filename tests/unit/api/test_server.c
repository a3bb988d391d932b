/* SPDX-License-Identifier: MIT */
/*
 * test_server.c - the REST server in-process: a real registry in a temporary
 * directory, the API on a free port, and requests over HTTP with libcurl.
 * Covers the request plumbing this module owns (raw path decoding, query
 * values, content types, body cap, error bodies, keep-alive, the cached
 * GET /schemas/ids/{id} answer, slow clients); the full endpoint suite is
 * tests/acceptance/.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api/api.h"

#define RECORD_A                                                                                   \
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"
#define RECORD_AB                                                                                  \
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"           \
    "{\"name\":\"b\",\"type\":\"string\"}]}"

struct fixture {
    char dir[64];
    cairn_registry_t *reg;
    cairn_api_t *api;
    CURL *curl;
    char base[64];
};

struct resp {
    long status;
    char ctype[128];
    cairn_buf_t body;
    json_t *json;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    return cairn_buf_append(&r->body, p, size * n) == CAIRN_OK ? size * n : 0;
}

static void resp_release(struct resp *r)
{
    cairn_buf_release(&r->body);
    json_decref(r->json);
    r->json = NULL;
}

/* One request; the answer's JSON (when it parses) in r->json. */
static long http(struct fixture *f,
                 const char *method,
                 const char *path,
                 const char *ctype,
                 const char *body,
                 struct resp *r)
{
    char url[2048];
    struct curl_slist *hdrs = NULL;
    memset(r, 0, sizeof *r);
    cairn_buf_init(&r->body, 1 << 20);
    snprintf(url, sizeof url, "%s%s", f->base, path);
    curl_easy_reset(f->curl);
    curl_easy_setopt(f->curl, CURLOPT_URL, url);
    curl_easy_setopt(f->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(f->curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(f->curl, CURLOPT_TIMEOUT, 10L);
    if (ctype) {
        char h[256];
        snprintf(h, sizeof h, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, h);
    } else if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type:"); /* no Content-Type at all */
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(f->curl);
    curl_slist_free_all(hdrs);
    assert_int_equal(cc, CURLE_OK);
    curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(f->curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->ctype, sizeof r->ctype, "%s", ct ? ct : "");
    if (r->body.len)
        r->json = json_loadb(r->body.data, r->body.len, JSON_DECODE_ANY, NULL);
    return r->status;
}

static long error_code(const struct resp *r)
{
    return (long)json_integer_value(json_object_get(r->json, "error_code"));
}

/* POST {"schema": text} to path; returns the status. */
static long post_schema(struct fixture *f, const char *path, const char *schema, struct resp *r)
{
    json_t *o = json_pack("{s:s}", "schema", schema);
    char *body = json_dumps(o, JSON_COMPACT);
    long st = http(f, "POST", path, "application/vnd.schemaregistry.v1+json", body, r);
    free(body);
    json_decref(o);
    return st;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    cairn_error_t err = {0};
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-api-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    cairn_registry_options_t ro = {.data_dir = f->dir, .no_sync = 1};
    if (cairn_registry_open(&ro, &f->reg, &err) != CAIRN_OK) {
        fprintf(stderr, "registry open: %s\n", err.text);
        return -1;
    }
    cairn_api_options_t ao = {.listen_host = "127.0.0.1",
                              .port = 0,
                              .threads = 2,
                              .max_body_bytes = 4096,
                              .connection_timeout_s = 1};
    if (cairn_api_start(f->reg, &ao, &f->api, &err) != CAIRN_OK) {
        fprintf(stderr, "api start: %s\n", err.text);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)cairn_api_port(f->api));
    f->curl = curl_easy_init();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    curl_easy_cleanup(f->curl);
    cairn_api_stop(f->api);
    cairn_registry_close(f->reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void test_port_zero_binds_a_free_port(void **state)
{
    struct fixture *f = *state;
    assert_true(cairn_api_port(f->api) > 0);
}

static void test_root_health_contexts_types(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(http(f, "GET", "/", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "{}");
    assert_string_equal(r.ctype, "application/vnd.schemaregistry.v1+json");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/health", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "{\"status\":\"UP\"}");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/contexts", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[\".\"]");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/schemas/types", NULL, NULL, &r), 200);
    assert_true(json_is_array(r.json));
    assert_non_null(strstr(r.body.data, "\"AVRO\""));
    resp_release(&r);
}

static void test_register_and_get_by_id_twice_gives_same_cached_body(void **state)
{
    struct fixture *f = *state;
    struct resp r, a, b;
    assert_int_equal(post_schema(f, "/subjects/s1/versions", RECORD_A, &r), 200);
    int id = (int)json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    resp_release(&r);
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", id);
    assert_int_equal(http(f, "GET", path, NULL, NULL, &a), 200);
    assert_int_equal(http(f, "GET", path, NULL, NULL, &b), 200);
    assert_string_equal(a.body.data, b.body.data);
    assert_string_equal(a.ctype, "application/vnd.schemaregistry.v1+json");
    assert_true(json_is_string(json_object_get(a.json, "schema")));
    assert_null(json_object_get(a.json, "schemaType")); /* AVRO: left out */
    assert_null(json_object_get(a.json, "maxId"));
    /* the same text as the version's */
    assert_int_equal(http(f, "GET", "/subjects/s1/versions/latest", NULL, NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "schema")),
                        json_string_value(json_object_get(a.json, "schema")));
    assert_string_equal(json_string_value(json_object_get(r.json, "subject")), "s1");
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "id")), id);
    resp_release(&r);
    resp_release(&a);
    resp_release(&b);
    snprintf(path, sizeof path, "/schemas/ids/%d?fetchMaxId=true", id);
    assert_int_equal(http(f, "GET", path, NULL, NULL, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "maxId")), id);
    resp_release(&r);
}

static void test_bad_or_unknown_schema_id_is_40403(void **state)
{
    struct fixture *f = *state;
    const char *paths[] = {"/schemas/ids/abc", "/schemas/ids/0", "/schemas/ids/-1",
                           "/schemas/ids/99999999999", "/schemas/ids/12345"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct resp r;
        assert_int_equal(http(f, "GET", paths[i], NULL, NULL, &r), 404);
        assert_int_equal(error_code(&r), 40403);
        resp_release(&r);
    }
}

static void test_encoded_slash_is_part_of_the_subject(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(post_schema(f, "/subjects/a%2Fb/versions", RECORD_A, &r), 200);
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"a/b\""));
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects/a%2Fb/versions", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[1]");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects/a%2fb/versions/1", NULL, NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "subject")), "a/b");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects?subjectPrefix=a%2F", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[\"a/b\"]");
    resp_release(&r);
}

static void test_plus_in_query_is_a_space(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(post_schema(f, "/subjects/x%20y/versions", RECORD_A, &r), 200);
    resp_release(&r);
    assert_int_equal(post_schema(f, "/subjects/x+y/versions", RECORD_A, &r), 200);
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects?subjectPrefix=x+", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[\"x y\"]");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects?subjectPrefix=x%2B", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[\"x+y\"]");
    resp_release(&r);
}

static void test_bad_versions_are_42202(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(post_schema(f, "/subjects/v/versions", RECORD_A, &r), 200);
    resp_release(&r);
    const char *bad[] = {"abc", "0", "-2", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/subjects/v/versions/%s", bad[i]);
        assert_int_equal(http(f, "GET", path, NULL, NULL, &r), 422);
        assert_int_equal(error_code(&r), 42202);
        assert_non_null(strstr(json_string_value(json_object_get(r.json, "message")), bad[i]));
        resp_release(&r);
    }
    assert_int_equal(http(f, "GET", "/subjects/v/versions/-1", NULL, NULL, &r), 200);
    resp_release(&r);
}

static void test_unknown_path_is_404_and_wrong_method_405(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(http(f, "GET", "/nope", NULL, NULL, &r), 404);
    assert_string_equal(r.body.data, "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    resp_release(&r);
    assert_int_equal(http(f, "PUT", "/subjects", NULL, NULL, &r), 405);
    assert_string_equal(r.body.data,
                        "{\"error_code\":405,\"message\":\"HTTP 405 Method Not Allowed\"}");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects//versions", NULL, NULL, &r), 404);
    resp_release(&r);
}

static void test_content_types_415_and_accepted(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    const char *body = "{\"schema\":\"\\\"int\\\"\"}";
    assert_int_equal(http(f, "POST", "/subjects/ct/versions", "text/plain", body, &r), 415);
    assert_int_equal(error_code(&r), 415);
    resp_release(&r);
    const char *ok[] = {"application/json; charset=utf-8", "application/vnd.schemaregistry+json",
                        "application/octet-stream", NULL};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(http(f, "POST", "/subjects/ct/versions", ok[i], body, &r), 200);
        resp_release(&r);
    }
    assert_int_equal(http(f, "GET", "/subjects/ct/versions", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[1]"); /* one schema, registered once */
    resp_release(&r);
}

static void test_body_over_the_cap_is_413(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    char *big = malloc(6000);
    memset(big, ' ', 5999);
    big[0] = '{';
    big[5998] = '}';
    big[5999] = '\0';
    assert_int_equal(http(f, "POST", "/subjects/big/versions", NULL, big, &r), 413);
    assert_int_equal(error_code(&r), 413);
    resp_release(&r);
    free(big);
    /* the server still answers on a new connection */
    assert_int_equal(http(f, "GET", "/", NULL, NULL, &r), 200);
    resp_release(&r);
}

static void test_bad_bodies_are_4xx_and_store_nothing(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(http(f, "POST", "/subjects/bad/versions", NULL, "{", &r), 400);
    assert_int_equal(error_code(&r), 400);
    resp_release(&r);
    assert_int_equal(http(f, "POST", "/subjects/bad/versions", NULL, "[1]", &r), 400);
    resp_release(&r);
    assert_int_equal(http(f, "POST", "/subjects/bad/versions", NULL, "{\"x\":1}", &r), 422);
    assert_int_equal(error_code(&r), 42201);
    resp_release(&r);
    assert_int_equal(http(f, "POST", "/subjects/bad/versions", NULL,
                          "{\"schema\":\"\\\"int\\\"\",\"schemaType\":\"XML\"}", &r),
                     422);
    assert_int_equal(error_code(&r), 42201);
    resp_release(&r);
    assert_int_equal(http(f, "POST", "/subjects/bad/versions", NULL,
                          "{\"schema\":\"\\\"int\\\"\",\"metadata\":{\"a\":1},\"ruleSet\":null}",
                          &r),
                     200);
    resp_release(&r);
    assert_int_equal(
        http(f, "POST", "/subjects/a%00b/versions", NULL, "{\"schema\":\"\\\"int\\\"\"}", &r), 400);
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects?deleted=maybe", NULL, NULL, &r), 400);
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[\"bad\"]");
    resp_release(&r);
}

static void test_incompatible_registration_is_409_with_details(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(post_schema(f, "/subjects/inc/versions", RECORD_A, &r), 200);
    resp_release(&r);
    assert_int_equal(post_schema(f, "/subjects/inc/versions", RECORD_AB, &r), 409);
    assert_int_equal(error_code(&r), 409);
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Schema being registered is incompatible with an earlier schema "
                                "for subject \"inc\", details: ["));
    resp_release(&r);
    assert_int_equal(
        post_schema(f, "/compatibility/subjects/inc/versions/latest?verbose=true", RECORD_AB, &r),
        200);
    assert_true(json_is_false(json_object_get(r.json, "is_compatible")));
    assert_true(json_array_size(json_object_get(r.json, "messages")) > 0);
    resp_release(&r);
    assert_int_equal(post_schema(f, "/compatibility/subjects/inc/versions/latest", RECORD_A, &r),
                     200);
    assert_string_equal(r.body.data, "{\"is_compatible\":true}");
    resp_release(&r);
}

static void test_config_and_mode_round_trip(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(http(f, "GET", "/config", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "{\"compatibilityLevel\":\"BACKWARD\"}");
    resp_release(&r);
    assert_int_equal(http(f, "PUT", "/config/cfg", NULL, "{\"compatibility\":\"FULL\"}", &r), 200);
    assert_string_equal(r.body.data, "{\"compatibility\":\"FULL\"}");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/config/cfg", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "{\"compatibilityLevel\":\"FULL\"}");
    resp_release(&r);
    assert_int_equal(http(f, "PUT", "/config", NULL, "{\"compatibility\":\"SIDEWAYS\"}", &r), 422);
    assert_int_equal(error_code(&r), 42203);
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/mode", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "{\"mode\":\"READWRITE\"}");
    resp_release(&r);
    assert_int_equal(http(f, "PUT", "/mode", NULL, "{\"mode\":\"SOMETIMES\"}", &r), 422);
    assert_int_equal(error_code(&r), 42204);
    resp_release(&r);
    assert_int_equal(http(f, "DELETE", "/mode", NULL, NULL, &r), 405);
    resp_release(&r);
}

static void test_deletes_answer_versions_and_a_bare_number(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(post_schema(f, "/subjects/del/versions", RECORD_A, &r), 200);
    resp_release(&r);
    assert_int_equal(http(f, "DELETE", "/subjects/del/versions/1", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "1");
    resp_release(&r);
    assert_int_equal(post_schema(f, "/subjects/del/versions", RECORD_AB, &r), 200);
    resp_release(&r);
    assert_int_equal(http(f, "DELETE", "/subjects/del", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[2]");
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/subjects?deletedOnly=true", NULL, NULL, &r), 200);
    assert_string_equal(r.body.data, "[\"del\"]");
    resp_release(&r);
}

static void test_keep_alive_reuses_the_connection(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    long connects = -1;
    assert_int_equal(http(f, "GET", "/", NULL, NULL, &r), 200);
    resp_release(&r);
    assert_int_equal(http(f, "GET", "/health", NULL, NULL, &r), 200);
    curl_easy_getinfo(f->curl, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
    resp_release(&r);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_slow_client_is_cut_while_others_are_served(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cairn_api_port(f->api))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char half[] = "GET /subjects HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send(fd, half, sizeof half - 1, 0), (ssize_t)(sizeof half - 1));
    double t0 = now_s();
    assert_int_equal(http(f, "GET", "/health", NULL, NULL, &r), 200);
    resp_release(&r);
    struct timeval tv = {.tv_sec = 6};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    double waited = now_s() - t0;
    close(fd);
    assert_true(n <= 0);       /* closed (0) or reset (-1), never answered */
    assert_true(waited < 5.0); /* timeout is 1 s; MHD checks about once a second */
    assert_int_equal(http(f, "GET", "/health", NULL, NULL, &r), 200);
    resp_release(&r);
}

struct reader {
    struct fixture *f;
    int id;
    int ok;
    char first[512];
};

/* Many GETs of one id from one thread, with its own connection. */
static void *read_by_id(void *arg)
{
    struct reader *rd = arg;
    struct fixture mine = *rd->f;
    char path[64];
    mine.curl = curl_easy_init();
    snprintf(path, sizeof path, "/schemas/ids/%d", rd->id);
    for (int i = 0; i < 50; i++) {
        struct resp r;
        if (http(&mine, "GET", path, NULL, NULL, &r) == 200) {
            if (!rd->first[0])
                snprintf(rd->first, sizeof rd->first, "%s", r.body.data);
            if (!strcmp(rd->first, r.body.data))
                rd->ok++;
        }
        resp_release(&r);
    }
    curl_easy_cleanup(mine.curl);
    return NULL;
}

static void test_concurrent_first_reads_share_one_cached_answer(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    assert_int_equal(post_schema(f, "/subjects/conc/versions", RECORD_A, &r), 200);
    int id = (int)json_integer_value(json_object_get(r.json, "id"));
    resp_release(&r);
    struct reader rd[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        memset(&rd[i], 0, sizeof rd[i]);
        rd[i].f = f;
        rd[i].id = id;
        assert_int_equal(pthread_create(&th[i], NULL, read_by_id, &rd[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rd[i].ok, 50);
        assert_string_equal(rd[i].first, rd[0].first);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_port_zero_binds_a_free_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_health_contexts_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_and_get_by_id_twice_gives_same_cached_body,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_or_unknown_schema_id_is_40403, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoded_slash_is_part_of_the_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plus_in_query_is_a_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_versions_are_42202, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_is_404_and_wrong_method_405, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_content_types_415_and_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_over_the_cap_is_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies_are_4xx_and_store_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incompatible_registration_is_409_with_details, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_and_mode_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_answer_versions_and_a_bare_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_reuses_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_is_cut_while_others_are_served, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_reads_share_one_cached_answer, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests_name("api.server", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
