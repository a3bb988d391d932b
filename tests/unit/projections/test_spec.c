/* SPDX-License-Identifier: MIT */
/*
 * test_spec.c - declarative projector specs (projections/spec.c): what a
 * valid spec becomes, the place every load error names, the evaluation of
 * sources and key templates against an event, and the reading of log
 * checkpoints as positions (projections/checkpoint.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "projections.h"

static const char pg_spec[] =
    "{\n"
    "  \"name\": \"accounts\",\n"
    "  \"batch_size\": 10,\n"
    "  \"sink\": {\"postgres\": {\"conninfo\": \"host=x\", \"table\": \"acc\",\n"
    "            \"columns\": {\"id\": \"text\", \"balance\": \"BIGINT\"}, \"key\": \"id\"}},\n"
    "  \"types\": {\"Opened\": {\"fields\": [\"/id\"]}, \"Deposited\": {}},\n"
    "  \"on\": {\"Opened\": {\"upsert\": {\"id\": \"/id\", \"balance\": 0}},\n"
    "         \"Deposited\": [{\"upsert\": {\"id\": \"/id\", \"balance\": {\"add\": "
    "\"/amount\"}}}]}\n"
    "}\n";

static void test_spec_valid_postgres_spec_loads(void **state)
{
    (void)state;
    cairn__pj_spec_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn__pj_spec_parse(pg_spec, "a.json", &s, &err), CAIRN_OK);
    assert_string_equal(s->name, "accounts");
    assert_int_equal(s->batch_size, 10);
    assert_int_equal(s->sink, CAIRN__PJ_SINK_POSTGRES);
    assert_int_equal(s->ncolumns, 2);
    assert_string_equal(s->columns[1].type, "bigint");
    assert_true(s->columns[0].key);
    assert_false(s->columns[1].key);
    const cairn__pj_handler_t *h = cairn__pj_spec_handler(s, "Deposited");
    assert_non_null(h);
    assert_int_equal(h->nactions, 1);
    assert_int_equal(h->actions[0].op, CAIRN__PJ_PG_UPSERT);
    assert_true(h->actions[0].assigns[1].add);
    assert_null(cairn__pj_spec_handler(s, "Closed"));
    cairn__pj_spec_destroy(s);
}

/* Replaces the first @p from in pg_spec with @p to and expects a load error. */
static void
expect_error(const char *from, const char *to, cairn_rc_t rc, const char *where, const char *text)
{
    char buf[2048];
    const char *at = strstr(pg_spec, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - pg_spec), pg_spec, to, at + strlen(from));
    cairn__pj_spec_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn__pj_spec_parse(buf, "b.json", &s, &err), rc);
    assert_null(s);
    assert_string_equal(err.where, where);
    if (!strstr(err.text, text))
        fail_msg("'%s' does not contain '%s'", err.text, text);
}

static void test_spec_json_syntax_error_names_line_and_column(void **state)
{
    (void)state;
    expect_error("\"batch_size\": 10,", "\"batch_size\": 10", CAIRN_E_INVALID_JSON, "line 4",
                 "b.json:4:");
}

static void test_spec_errors_name_the_json_pointer(void **state)
{
    (void)state;
    expect_error("\"Deposited\": [{", "\"Nope\": [{", CAIRN_E_INVALID, "/on/Nope",
                 "unknown event type 'Nope'");
    expect_error("\"id\": \"/id\", \"balance\": 0", "\"id\": \"/ident\", \"balance\": 0",
                 CAIRN_E_INVALID, "/on/Opened/0/upsert/id", "unknown field '/ident'");
    expect_error("\"BIGINT\"", "\"bigint2\"", CAIRN_E_INVALID, "/sink/postgres/columns/balance",
                 "unknown column type 'bigint2'");
    expect_error("\"upsert\": {\"id\": \"/id\", \"balance\": {", "\"upsert\": {\"balance\": {",
                 CAIRN_E_INVALID, "/on/Deposited/0/upsert", "missing key column 'id'");
    expect_error(", \"key\": \"id\"", "", CAIRN_E_INVALID, "/sink/postgres",
                 "missing member 'key'");
    expect_error("\"batch_size\"", "\"batchsize\"", CAIRN_E_INVALID, "/batchsize",
                 "unknown member 'batchsize'");
    expect_error("{\"add\": \"/amount\"}", "{\"add\": \"amount\"}", CAIRN_E_INVALID,
                 "/on/Deposited/0/upsert/balance/add", "'amount' is not a source");
    expect_error("\"table\": \"acc\"", "\"table\": \"acc; drop\"", CAIRN_E_INVALID,
                 "/sink/postgres/table", "plain identifier");
}

static void test_spec_redis_templates_and_sources_evaluate(void **state)
{
    (void)state;
    static const char text[] =
        "{\"name\": \"r\", \"sink\": {\"redis\": {\"port\": 7000, \"prefix\": \"p:\"}},"
        " \"types\": {\"T\": {}},"
        " \"on\": {\"T\": [{\"hset\": {\"key\": \"a:{/id}:{$version}\","
        "                              \"fields\": {\"n\": \"/n\", \"s\": \"$stream\"}}},"
        "                  {\"incrby\": {\"key\": \"count\", \"by\": 1}}]}}";
    cairn__pj_spec_t *s = NULL;
    cairn_error_t err = {0};
    assert_int_equal(cairn__pj_spec_parse(text, "r.json", &s, &err), CAIRN_OK);
    assert_int_equal(s->sink, CAIRN__PJ_SINK_REDIS);
    assert_int_equal(s->port, 7000);
    assert_string_equal(s->prefix, "p:");
    assert_string_equal(s->host, "127.0.0.1");

    json_t *v = json_pack("{s:s, s:{s:[i,f]}, s:n}", "id", "x/y", "n", "a", 4, 1.5, "z");
    char stream[] = "st-1", type[] = "T", nope[] = "/nope", zp[] = "/z";
    cairn__pj_event_t ev = {.value = v, .stream = stream, .type = type, .version = 7};
    const cairn__pj_action_t *a = &cairn__pj_spec_handler(s, "T")->actions[0];
    cairn_buf_t b;
    int is_null = 0;
    cairn_buf_init(&b, 1024);
    assert_int_equal(cairn__pj_tmpl_text(&a->key, &ev, &b, &err), CAIRN_OK);
    assert_string_equal(b.data, "a:x/y:7");
    cairn_buf_reset(&b);
    assert_int_equal(cairn__pj_src_text(&a->assigns[0].src, &ev, &b, &is_null, &err), CAIRN_OK);
    assert_string_equal(b.data, "{\"a\":[4,1.5]}");
    cairn_buf_reset(&b);
    assert_int_equal(cairn__pj_src_text(&a->assigns[1].src, &ev, &b, &is_null, &err), CAIRN_OK);
    assert_string_equal(b.data, "st-1");
    /* A missing member is an error naming it; null is reported as null. */
    cairn__pj_src_t missing = {.kind = CAIRN__PJ_SRC_POINTER, .pointer = nope};
    cairn_buf_reset(&b);
    assert_int_equal(cairn__pj_src_text(&missing, &ev, &b, &is_null, &err), CAIRN_E_INVALID);
    assert_non_null(strstr(err.text, "'/nope'"));
    cairn__pj_src_t z = {.kind = CAIRN__PJ_SRC_POINTER, .pointer = zp};
    assert_int_equal(cairn__pj_src_text(&z, &ev, &b, &is_null, NULL), CAIRN_OK);
    assert_true(is_null);
    /* RFC 6901 escapes and array indexes. */
    json_t *w = json_pack("{s:{s:[i,i]}}", "a/b", "c~d", 1, 2);
    assert_int_equal(json_integer_value(cairn__pj_pointer_get(w, "/a~1b/c~0d/1")), 2);
    assert_null(cairn__pj_pointer_get(w, "/a~1b/c~0d/01"));
    assert_null(cairn__pj_pointer_get(w, "/a~1b/c~0d/2"));
    json_decref(w);
    json_decref(v);
    cairn_buf_release(&b);
    cairn__pj_spec_destroy(s);
}

static void test_checkpoint_positions_of_both_backends(void **state)
{
    (void)state;
    uint64_t pos[4];
    cairn_error_t err = {0};
    assert_int_equal(cairn__pj_checkpoint_positions("", pos, 4, &err), CAIRN_OK);
    assert_int_equal(pos[0], 0);
    assert_int_equal(cairn__pj_checkpoint_positions("file:12345", pos, 1, &err), CAIRN_OK);
    assert_int_equal(pos[0], 12345);
    assert_int_equal(cairn__pj_checkpoint_positions("kafka:0=5@1,2=9@3", pos, 4, &err), CAIRN_OK);
    assert_int_equal(pos[0], 5);
    assert_int_equal(pos[1], 0);
    assert_int_equal(pos[2], 9);
    assert_int_equal(pos[3], 0);
    assert_int_equal(cairn__pj_checkpoint_positions("file:-1", pos, 1, &err), CAIRN_E_INVALID);
    assert_int_equal(cairn__pj_checkpoint_positions("kafka:0=5", pos, 1, NULL), CAIRN_E_INVALID);
    assert_int_equal(cairn__pj_checkpoint_positions("redis:1", pos, 1, NULL), CAIRN_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_valid_postgres_spec_loads),
        cmocka_unit_test(test_spec_json_syntax_error_names_line_and_column),
        cmocka_unit_test(test_spec_errors_name_the_json_pointer),
        cmocka_unit_test(test_spec_redis_templates_and_sources_evaluate),
        cmocka_unit_test(test_checkpoint_positions_of_both_backends),
    };
    return cmocka_run_group_tests_name("projections.spec", tests, NULL, NULL);
}
