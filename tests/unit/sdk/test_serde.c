/* SPDX-License-Identifier: MIT */
/*
 * test_serde.c - the Confluent wire-format serde against a real Cairn
 * registry started in this process: exact prefix bytes, subject names of
 * the three strategies, auto-registration and the level it sets, lookups
 * without registration, resolution of old data to a new reader schema, bad
 * wire bytes, validation reports, and one serde shared by 8 threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cairn/serde.h"
#include "registry_fixture.h"

#define ORDER_V1                                                                                   \
    "{\"type\":\"record\",\"name\":\"OrderPlaced\",\"namespace\":\"com.acme\",\"fields\":["        \
    "{\"name\":\"id\",\"type\":\"int\"},{\"name\":\"amount\",\"type\":\"long\"}]}"
#define ORDER_V2                                                                                   \
    "{\"type\":\"record\",\"name\":\"OrderPlaced\",\"namespace\":\"com.acme\",\"fields\":["        \
    "{\"name\":\"id\",\"type\":\"int\"},{\"name\":\"amount\",\"type\":\"long\"},"                  \
    "{\"name\":\"note\",\"type\":\"string\",\"default\":\"none\"}]}"
#define ORDER_OTHER                                                                                \
    "{\"type\":\"record\",\"name\":\"OrderPlaced\",\"namespace\":\"com.acme\",\"fields\":["        \
    "{\"name\":\"sku\",\"type\":\"string\"}]}"

static struct server g_server; /* registry_fixture.h */

static int group_setup(void **state)
{
    (void)state;
    return server_start(&g_server, "cairn-serde-test");
}

static int group_teardown(void **state)
{
    (void)state;
    return server_stop(&g_server);
}

static cairn_serde_t *new_serde(cairn_registry_client_t *c, const cairn_serde_options_t *o)
{
    cairn_serde_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn_serde_new(c, o, &s, &err), CAIRN_OK);
    return s;
}

static void assert_json_equal(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "got %s, want %s\n", g ? g : "(null)", want_text);
        free(g);
    }
    assert_true(json_equal(got, want));
    json_decref(want);
}

/* ---- wire format ------------------------------------------------------- */

static void test_wire_prefix_is_magic_zero_then_big_endian_id(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    /* An id whose four bytes all differ, placed with IMPORT mode on one subject. */
    const int id = 0x01020304;
    const char *text = "{\"type\":\"record\",\"name\":\"Wire\",\"fields\":[{\"name\":\"n\","
                       "\"type\":\"int\"}]}";
    assert_int_equal(
        cairn_registry_set_mode(g_server.reg, "wire-import", CAIRN_MODE_IMPORT, true, &err),
        CAIRN_OK);
    cairn_reg_request_t req = {.schema = text, .schema_len = strlen(text), .id = id, .version = 1};
    int got_id = 0;
    assert_int_equal(
        cairn_registry_register(g_server.reg, "wire-import", &req, &got_id, NULL, &err), CAIRN_OK);
    assert_int_equal(got_id, id);

    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_t *s = new_serde(c, NULL);
    cairn_registered_schema_t *schema = NULL;
    assert_int_equal(cairn_registry_client_schema_by_id(c, id, &schema, &err), CAIRN_OK);
    json_t *v = json_pack("{s:i}", "n", -3);
    unsigned char *bytes = NULL;
    size_t len = 0;
    assert_int_equal(cairn_serde_encode(s, schema, v, &bytes, &len, &err), CAIRN_OK);
    /* 0, 01 02 03 04, then zigzag(-3) = 5 */
    const unsigned char want[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(bytes, want, sizeof want);

    json_t *back = NULL;
    int32_t wid = 0;
    assert_int_equal(cairn_serde_decode(s, bytes, len, NULL, &back, &wid, &err), CAIRN_OK);
    assert_int_equal(wid, id);
    assert_true(json_equal(back, v));
    json_decref(back);
    json_decref(v);
    cairn_free(bytes);
    cairn_registered_schema_release(schema);
    cairn_serde_destroy(s);
    cairn_registry_client_destroy(c);
}

static void test_bad_wire_bytes_are_refused_clearly(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_t *s = new_serde(c, NULL);
    json_t *out = NULL;
    int32_t wid = -1;

    const unsigned char short_prefix[] = {0x00, 0x00, 0x01};
    assert_int_equal(
        cairn_serde_decode(s, short_prefix, sizeof short_prefix, NULL, &out, &wid, &err),
        CAIRN_E_INVALID);
    assert_null(out);
    assert_non_null(strstr(err.text, "shorter than the 5-byte prefix"));
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_serde_decode(s, "", 0, NULL, &out, NULL, &err), CAIRN_E_INVALID);

    memset(&err, 0, sizeof err);
    const unsigned char no_magic[] = {'{', '"', 'a', '"', ':', '1', '}'};
    assert_int_equal(cairn_serde_decode(s, no_magic, sizeof no_magic, NULL, &out, &wid, &err),
                     CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "magic byte"));
    assert_non_null(strstr(err.text, "0x7b"));

    memset(&err, 0, sizeof err);
    const unsigned char unknown[] = {0x00, 0x00, 0x0f, 0x42, 0x3f, 0x02}; /* id 999999 */
    assert_int_equal(cairn_serde_decode(s, unknown, sizeof unknown, NULL, &out, &wid, &err),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    assert_int_equal(wid, 999999);

    /* Trailing bytes after a whole value. */
    cairn_registered_schema_t *schema = NULL;
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_serde_schema(s, "bad-wire", ORDER_V1, &schema, &err), CAIRN_OK);
    json_t *v = json_pack("{s:i, s:i}", "id", 1, "amount", 2);
    unsigned char *bytes = NULL;
    size_t len = 0;
    assert_int_equal(cairn_serde_encode(s, schema, v, &bytes, &len, &err), CAIRN_OK);
    unsigned char longer[64];
    assert_true(len + 1 <= sizeof longer);
    memcpy(longer, bytes, len);
    longer[len] = 0x00;
    assert_int_equal(cairn_serde_decode(s, longer, len + 1, NULL, &out, NULL, &err),
                     CAIRN_E_INVALID);
    assert_null(out);
    /* Truncated data. */
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_serde_decode(s, bytes, len - 1, NULL, &out, NULL, &err),
                     CAIRN_E_INVALID);
    json_decref(v);
    cairn_free(bytes);
    cairn_registered_schema_release(schema);
    cairn_serde_destroy(s);
    cairn_registry_client_destroy(c);
}

/* ---- subjects ---------------------------------------------------------- */

static void test_subject_names_of_the_three_strategies(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    char buf[128];
    cairn_registry_client_t *c = client_for(g_server.url, 0);

    cairn_serde_t *s = new_serde(c, NULL); /* TopicRecordName is the default */
    assert_int_equal(cairn_serde_subject(s, "orders", ORDER_V1, buf, sizeof buf, &err), CAIRN_OK);
    assert_string_equal(buf, "orders-com.acme.OrderPlaced");
    /* Too small a buffer. */
    assert_int_equal(cairn_serde_subject(s, "orders", ORDER_V1, buf, 10, &err), CAIRN_E_INVALID);
    memset(&err, 0, sizeof err);
    /* A non-record root cannot be named after a record. */
    assert_int_equal(cairn_serde_subject(s, "orders", "\"string\"", buf, sizeof buf, &err),
                     CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "TopicRecordNameStrategy"));
    assert_non_null(strstr(err.text, "string"));
    memset(&err, 0, sizeof err);
    assert_int_equal(
        cairn_serde_subject(s, "orders", "{\"type\":\"bogus\"}", buf, sizeof buf, &err),
        CAIRN_E_INVALID_SCHEMA);
    cairn_serde_destroy(s);

    cairn_serde_options_t o = {.strategy = CAIRN_SUBJECT_TOPIC_NAME};
    s = new_serde(c, &o);
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_serde_subject(s, "orders", ORDER_V1, buf, sizeof buf, &err), CAIRN_OK);
    assert_string_equal(buf, "orders-value");
    assert_int_equal(cairn_serde_subject(s, "orders", "\"string\"", buf, sizeof buf, &err),
                     CAIRN_OK);
    assert_string_equal(buf, "orders-value");
    cairn_serde_destroy(s);
    o.is_key = 1;
    s = new_serde(c, &o);
    assert_int_equal(cairn_serde_subject(s, "orders", ORDER_V1, buf, sizeof buf, &err), CAIRN_OK);
    assert_string_equal(buf, "orders-key");
    cairn_serde_destroy(s);

    o = (cairn_serde_options_t){.strategy = CAIRN_SUBJECT_RECORD_NAME};
    s = new_serde(c, &o);
    assert_int_equal(cairn_serde_subject(s, "orders", ORDER_V1, buf, sizeof buf, &err), CAIRN_OK);
    assert_string_equal(buf, "com.acme.OrderPlaced");
    assert_int_equal(cairn_serde_subject(s, NULL, ORDER_V1, buf, sizeof buf, &err), CAIRN_OK);
    assert_string_equal(buf, "com.acme.OrderPlaced");
    assert_int_equal(cairn_serde_subject(s, "orders",
                                         "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}",
                                         buf, sizeof buf, &err),
                     CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "RecordNameStrategy"));
    cairn_serde_destroy(s);

    memset(&err, 0, sizeof err);
    o = (cairn_serde_options_t){.compatibility = "SIDEWAYS"};
    assert_int_equal(cairn_serde_new(c, &o, &s, &err), CAIRN_E_INVALID_LEVEL);
    cairn_registry_client_destroy(c);
}

/* ---- registration ------------------------------------------------------ */

static void test_auto_register_sets_backward_transitive_once(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    char level[64];
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_t *s = new_serde(c, NULL);
    cairn_registered_schema_t *a = NULL, *b = NULL;

    assert_int_equal(cairn_serde_schema(s, "auto", ORDER_V1, &a, &err), CAIRN_OK);
    assert_true(cairn_registered_schema_id(a) > 0);
    assert_string_equal(cairn_registered_schema_name(a), "com.acme.OrderPlaced");
    /* GET /config/auto-com.acme.OrderPlaced, the subject's own level */
    assert_int_equal(cairn_registry_client_get_compatibility(c, "auto-com.acme.OrderPlaced", 0,
                                                             level, sizeof level, &err),
                     CAIRN_OK);
    assert_string_equal(level, "BACKWARD_TRANSITIVE");

    /* The second call asks nothing. */
    unsigned long before = cairn__registry_client_attempts(c);
    assert_int_equal(cairn_serde_schema(s, "auto", ORDER_V1, &b, &err), CAIRN_OK);
    assert_ptr_equal(a, b);
    assert_int_equal(cairn__registry_client_attempts(c), before);
    cairn_registered_schema_release(b);

    /* The level is enforced: a change BACKWARD_TRANSITIVE forbids is refused. */
    assert_int_equal(cairn_serde_schema(s, "auto", ORDER_OTHER, &b, &err), CAIRN_E_INCOMPATIBLE);
    assert_null(b);
    cairn_registered_schema_release(a);
    cairn_serde_destroy(s);

    /* Another level by option; and a level someone set is left alone. */
    memset(&err, 0, sizeof err);
    cairn_serde_options_t o = {.compatibility = "FULL_TRANSITIVE"};
    s = new_serde(c, &o);
    assert_int_equal(cairn_serde_schema(s, "full", ORDER_V1, &a, &err), CAIRN_OK);
    cairn_registered_schema_release(a);
    assert_int_equal(cairn_registry_client_get_compatibility(c, "full-com.acme.OrderPlaced", 0,
                                                             level, sizeof level, &err),
                     CAIRN_OK);
    assert_string_equal(level, "FULL_TRANSITIVE");
    assert_int_equal(
        cairn_registry_client_set_compatibility(c, "kept-com.acme.OrderPlaced", "NONE", &err),
        CAIRN_OK);
    assert_int_equal(cairn_serde_schema(s, "kept", ORDER_V1, &a, &err), CAIRN_OK);
    cairn_registered_schema_release(a);
    assert_int_equal(cairn_registry_client_get_compatibility(c, "kept-com.acme.OrderPlaced", 0,
                                                             level, sizeof level, &err),
                     CAIRN_OK);
    assert_string_equal(level, "NONE");
    cairn_serde_destroy(s);

    /* "" leaves levels alone entirely. */
    o.compatibility = "";
    s = new_serde(c, &o);
    assert_int_equal(cairn_serde_schema(s, "plain", ORDER_V1, &a, &err), CAIRN_OK);
    cairn_registered_schema_release(a);
    assert_int_equal(cairn_registry_client_get_compatibility(c, "plain-com.acme.OrderPlaced", 0,
                                                             level, sizeof level, &err),
                     CAIRN_E_NOT_FOUND_SUBJECT_LEVEL);
    cairn_serde_destroy(s);
    cairn_registry_client_destroy(c);
}

static void test_no_auto_register_looks_up_and_fails_clearly_on_unknown(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_options_t o = {.no_auto_register = 1};
    cairn_serde_t *ro = new_serde(c, &o);
    cairn_registered_schema_t *a = NULL, *b = NULL;

    assert_int_equal(cairn_serde_schema(ro, "lookup", ORDER_V1, &a, &err),
                     CAIRN_E_NOT_FOUND_SUBJECT);
    assert_null(a);
    assert_non_null(strstr(err.text, "lookup-com.acme.OrderPlaced"));
    assert_non_null(strstr(err.text, "no_auto_register"));

    /* Once another party registered it, the look-up finds the same id. */
    cairn_serde_t *rw = new_serde(c, NULL);
    memset(&err, 0, sizeof err);
    assert_int_equal(cairn_serde_schema(rw, "lookup", ORDER_V1, &a, &err), CAIRN_OK);
    assert_int_equal(cairn_serde_schema(ro, "lookup", ORDER_V1, &b, &err), CAIRN_OK);
    assert_int_equal(cairn_registered_schema_id(a), cairn_registered_schema_id(b));
    /* A version not registered: schema not found. */
    cairn_registered_schema_release(b);
    assert_int_equal(cairn_serde_schema(ro, "lookup", ORDER_V2, &b, &err),
                     CAIRN_E_NOT_FOUND_SCHEMA);
    cairn_registered_schema_release(a);
    cairn_serde_destroy(rw);
    cairn_serde_destroy(ro);
    cairn_registry_client_destroy(c);
}

/* ---- resolution -------------------------------------------------------- */

static void test_v1_data_reads_as_v2_with_the_default_filled(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_t *s = new_serde(c, NULL);
    cairn_registered_schema_t *v1 = NULL, *v2 = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;
    json_t *out = NULL;
    int32_t wid = 0;

    assert_int_equal(cairn_serde_schema(s, "evolve", ORDER_V1, &v1, &err), CAIRN_OK);
    assert_int_equal(cairn_serde_schema(s, "evolve", ORDER_V2, &v2, &err), CAIRN_OK);
    assert_int_not_equal(cairn_registered_schema_id(v1), cairn_registered_schema_id(v2));
    json_t *v = json_pack("{s:i, s:I}", "id", 5, "amount", (json_int_t)1234567890123LL);
    assert_int_equal(cairn_serde_encode(s, v1, v, &bytes, &len, &err), CAIRN_OK);

    assert_int_equal(cairn_serde_decode(s, bytes, len, v2, &out, &wid, &err), CAIRN_OK);
    assert_int_equal(wid, cairn_registered_schema_id(v1));
    assert_json_equal(out, "{\"id\":5,\"amount\":1234567890123,\"note\":\"none\"}");
    json_decref(out);
    assert_int_equal(cairn_serde_decode(s, bytes, len, NULL, &out, NULL, &err), CAIRN_OK);
    assert_json_equal(out, "{\"id\":5,\"amount\":1234567890123}");
    json_decref(out);

    /* A reader on a fresh client fetches the writer by id once, then plans from cache. */
    cairn_registry_client_t *c2 = client_for(g_server.url, 0);
    cairn_serde_t *s2 = new_serde(c2, NULL);
    cairn_registered_schema_t *r2 = NULL;
    assert_int_equal(
        cairn_registry_client_schema_by_id(c2, cairn_registered_schema_id(v2), &r2, &err),
        CAIRN_OK);
    unsigned long before = cairn__registry_client_attempts(c2);
    assert_int_equal(cairn_serde_decode(s2, bytes, len, r2, &out, NULL, &err), CAIRN_OK);
    json_decref(out);
    assert_int_equal(cairn__registry_client_attempts(c2), before + 1);
    assert_int_equal(cairn_serde_decode(s2, bytes, len, r2, &out, NULL, &err), CAIRN_OK);
    assert_json_equal(out, "{\"id\":5,\"amount\":1234567890123,\"note\":\"none\"}");
    json_decref(out);
    assert_int_equal(cairn__registry_client_attempts(c2), before + 1);
    cairn_registered_schema_release(r2);
    cairn_serde_destroy(s2);
    cairn_registry_client_destroy(c2);

    /* A reader that cannot read the writer. */
    cairn_registered_schema_t *other = NULL;
    cairn_serde_options_t o = {.compatibility = "NONE"};
    cairn_serde_t *s3 = new_serde(c, &o);
    assert_int_equal(cairn_serde_schema(s3, "unrelated", ORDER_OTHER, &other, &err), CAIRN_OK);
    assert_int_equal(cairn_serde_decode(s, bytes, len, other, &out, NULL, &err),
                     CAIRN_E_INCOMPATIBLE);
    assert_null(out);
    cairn_registered_schema_release(other);
    cairn_serde_destroy(s3);

    json_decref(v);
    cairn_free(bytes);
    cairn_registered_schema_release(v1);
    cairn_registered_schema_release(v2);
    cairn_serde_destroy(s);
    cairn_registry_client_destroy(c);
}

/* ---- validation -------------------------------------------------------- */

static bool has_path(const json_t *violations, const char *path)
{
    size_t i;
    json_t *v;
    json_array_foreach(violations, i, v)
    {
        const char *p = json_string_value(json_object_get(v, "path"));
        const char *m = json_string_value(json_object_get(v, "message"));
        if (p && m && *m && strcmp(p, path) == 0)
            return true;
    }
    return false;
}

static void test_validate_lists_every_violation_and_encode_names_the_first(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_t *s = new_serde(c, NULL);
    cairn_registered_schema_t *v1 = NULL;
    json_t *violations = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;

    assert_int_equal(cairn_serde_schema(s, "validate", ORDER_V1, &v1, &err), CAIRN_OK);
    json_t *good = json_pack("{s:i, s:i}", "id", 1, "amount", 2);
    assert_int_equal(cairn_serde_validate(s, v1, good, &violations, &err), CAIRN_OK);
    assert_true(json_is_array(violations));
    assert_int_equal(json_array_size(violations), 0);
    json_decref(violations);

    json_t *bad = json_pack("{s:s, s:i}", "id", "one", "extra", 3); /* amount missing too */
    assert_int_equal(cairn_serde_validate(s, v1, bad, &violations, &err), CAIRN_E_INVALID);
    assert_true(json_array_size(violations) >= 3);
    assert_true(has_path(violations, "/id"));
    assert_true(has_path(violations, "/extra"));
    assert_true(err.text[0] != '\0');
    json_decref(violations);

    memset(&err, 0, sizeof err);
    json_t *bad_amount = json_pack("{s:i, s:s}", "id", 1, "amount", "lots");
    assert_int_equal(cairn_serde_encode(s, v1, bad_amount, &bytes, &len, &err), CAIRN_E_INVALID);
    assert_null(bytes);
    assert_string_equal(err.where, "/amount");
    json_decref(bad_amount);
    json_decref(bad);
    json_decref(good);
    cairn_registered_schema_release(v1);
    cairn_serde_destroy(s);
    cairn_registry_client_destroy(c);
}

/* ---- threads ----------------------------------------------------------- */

#define THREADS 8
#define ROUNDS  200

struct worker {
    cairn_serde_t *s;
    cairn_registered_schema_t *v1, *v2;
    int seed;
    atomic_int *failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < ROUNDS; r++) {
        cairn_error_t err = {0};
        unsigned char *bytes = NULL;
        size_t len = 0;
        json_t *out = NULL;
        cairn_registered_schema_t *schema = NULL;
        int id = w->seed * 1000 + r;
        /* Half the rounds go through the serde's schema cache. */
        if (cairn_serde_schema(w->s, "threads", r % 2 ? ORDER_V1 : ORDER_V2, &schema, &err) !=
            CAIRN_OK) {
            atomic_fetch_add(w->failures, 1);
            continue;
        }
        json_t *v = r % 2 ? json_pack("{s:i, s:i}", "id", id, "amount", r)
                          : json_pack("{s:i, s:i, s:s}", "id", id, "amount", r, "note", "n");
        if (cairn_serde_encode(w->s, schema, v, &bytes, &len, &err) != CAIRN_OK ||
            cairn_serde_decode(w->s, bytes, len, w->v2, &out, NULL, &err) != CAIRN_OK ||
            json_integer_value(json_object_get(out, "id")) != id ||
            !json_is_string(json_object_get(out, "note")))
            atomic_fetch_add(w->failures, 1);
        json_decref(out);
        json_decref(v);
        cairn_free(bytes);
        cairn_registered_schema_release(schema);
    }
    return NULL;
}

static void test_one_serde_is_shared_by_8_threads(void **state)
{
    (void)state;
    cairn_error_t err = {0};
    cairn_registry_client_t *c = client_for(g_server.url, 0);
    cairn_serde_t *s = new_serde(c, NULL);
    cairn_registered_schema_t *v1 = NULL, *v2 = NULL;
    atomic_int failures;
    struct worker w[THREADS];

    assert_int_equal(cairn_serde_schema(s, "threads", ORDER_V1, &v1, &err), CAIRN_OK);
    assert_int_equal(cairn_serde_schema(s, "threads", ORDER_V2, &v2, &err), CAIRN_OK);
    cairn_serde_destroy(s);
    s = new_serde(c, NULL); /* empty caches: the threads race to fill them */
    atomic_init(&failures, 0);
    for (int t = 0; t < THREADS; t++)
        w[t] = (struct worker){.s = s, .v1 = v1, .v2 = v2, .seed = t, .failures = &failures};
    run_threads(worker_main, w, sizeof w[0], THREADS);
    assert_int_equal(atomic_load(&failures), 0);
    cairn_registered_schema_release(v1);
    cairn_registered_schema_release(v2);
    cairn_serde_destroy(s);
    cairn_registry_client_destroy(c);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_prefix_is_magic_zero_then_big_endian_id),
        cmocka_unit_test(test_bad_wire_bytes_are_refused_clearly),
        cmocka_unit_test(test_subject_names_of_the_three_strategies),
        cmocka_unit_test(test_auto_register_sets_backward_transitive_once),
        cmocka_unit_test(test_no_auto_register_looks_up_and_fails_clearly_on_unknown),
        cmocka_unit_test(test_v1_data_reads_as_v2_with_the_default_filled),
        cmocka_unit_test(test_validate_lists_every_violation_and_encode_names_the_first),
        cmocka_unit_test(test_one_serde_is_shared_by_8_threads),
    };
    int failed = cmocka_run_group_tests_name("sdk.serde", tests, group_setup, group_teardown);
    curl_global_cleanup();
    return failed;
}
