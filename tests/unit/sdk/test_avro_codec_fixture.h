/* SPDX-License-Identifier: MIT */
/*
 * test_avro_codec_fixture.h - helpers shared by the codec tests: schemas and
 * JSON written with single quotes for legibility, parsed with the registry's
 * Avro model, encoded and decoded with sdk/avro_codec.h, bytes compared as
 * hex text so that a failure shows both sides.
 */
#ifndef CAIRN_TEST_AVRO_CODEC_FIXTURE_H
#define CAIRN_TEST_AVRO_CODEC_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_codec.h"

/* Single quotes to double quotes (test texts hold no quote inside strings). */
static inline char *dq(const char *s)
{
    char *t = strdup(s);
    assert_non_null(t);
    for (char *p = t; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return t;
}

static inline cairn_avro_model_t *schema(const char *text)
{
    char *t = dq(text);
    cairn_avro_model_t *m = NULL;
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn__avro_parse(t, strlen(t), NULL, 0, &m, &err);
    if (rc != CAIRN_OK)
        fail_msg("schema %s: %s at %s", t, err.text, err.where);
    free(t);
    return m;
}

static inline json_t *js(const char *text)
{
    char *t = dq(text);
    json_error_t je;
    json_t *v = json_loads(t, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("json %s: %s", t, je.text);
    free(t);
    return v;
}

static inline char *hex(const void *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", ((const unsigned char *)p)[i]);
    h[2 * n] = '\0';
    return h;
}

static inline size_t unhex(const char *h, unsigned char *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        sscanf(h + 2 * i, "%2x", &x);
        out[i] = (unsigned char)x;
    }
    return n;
}

/* Encodes @p value (text) under @p m's root; asserts success; returns hex. */
static inline char *enc_hex(const cairn_avro_model_t *m, const char *value)
{
    json_t *v = js(value);
    cairn_buf_t b;
    cairn_error_t err = {0};
    cairn_buf_init(&b, 1 << 20);
    cairn_rc_t rc = cairn__avro_encode(cairn__avro_model_root(m), v, &b, &err);
    if (rc != CAIRN_OK)
        fail_msg("encode %s: %s at '%s'", value, err.text, err.where);
    char *h = hex(b.data, b.len);
    cairn_buf_release(&b);
    json_decref(v);
    return h;
}

static inline void assert_enc(const char *sch, const char *value, const char *want_hex)
{
    cairn_avro_model_t *m = schema(sch);
    char *h = enc_hex(m, value);
    assert_string_equal(h, want_hex);
    free(h);
    cairn__avro_model_free(m);
}

/* Encoding fails with CAIRN_E_INVALID at @p where, the text containing @p what. */
static inline void
assert_enc_fails(const char *sch, const char *value, const char *where, const char *what)
{
    cairn_avro_model_t *m = schema(sch);
    json_t *v = js(value);
    cairn_buf_t b;
    cairn_error_t err = {0};
    cairn_buf_init(&b, 1 << 20);
    assert_int_equal(cairn__avro_encode(cairn__avro_model_root(m), v, &b, &err), CAIRN_E_INVALID);
    assert_int_equal(err.code, CAIRN_E_INVALID);
    assert_string_equal(err.where, where);
    if (!strstr(err.text, what))
        fail_msg("error text '%s' lacks '%s'", err.text, what);
    cairn_buf_release(&b);
    json_decref(v);
    cairn__avro_model_free(m);
}

/* Decodes @p bytes written with @p wm as @p rm; returns the value or NULL
 * with @p err filled. */
static inline json_t *decode_as(const cairn_avro_model_t *rm,
                                const cairn_avro_model_t *wm,
                                const void *bytes,
                                size_t len,
                                cairn_error_t *err)
{
    cairn_avro_resolver_t *r = NULL;
    cairn_rc_t rc =
        cairn__avro_resolver_new(cairn__avro_model_root(rm), cairn__avro_model_root(wm), &r, err);
    if (rc != CAIRN_OK)
        fail_msg("resolver: %s", err->text);
    json_t *v = NULL;
    rc = cairn__avro_decode(r, bytes, len, &v, err);
    cairn__avro_resolver_free(r);
    if (rc != CAIRN_OK)
        assert_null(v);
    return v;
}

static inline void assert_json_eq(const json_t *got, const char *want)
{
    json_t *w = js(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        char *e = json_dumps(w, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", g, e);
    }
    json_decref(w);
}

/* Encodes @p value with writer schema @p wsch, decodes with reader @p rsch
 * (the same text: no resolution) and compares with @p want. */
static inline void
assert_resolves(const char *rsch, const char *wsch, const char *value, const char *want)
{
    cairn_avro_model_t *wm = schema(wsch);
    cairn_avro_model_t *rm = rsch == wsch ? wm : schema(rsch);
    json_t *v = js(value);
    cairn_buf_t b;
    cairn_error_t err = {0};
    cairn_buf_init(&b, 1 << 20);
    if (cairn__avro_encode(cairn__avro_model_root(wm), v, &b, &err) != CAIRN_OK)
        fail_msg("encode %s: %s at '%s'", value, err.text, err.where);
    json_t *got = decode_as(rm, wm, b.data, b.len, &err);
    if (!got)
        fail_msg("decode: %s at '%s'", err.text, err.where);
    assert_json_eq(got, want);
    json_decref(got);
    json_decref(v);
    cairn_buf_release(&b);
    if (rm != wm)
        cairn__avro_model_free(rm);
    cairn__avro_model_free(wm);
}

static inline void assert_roundtrip(const char *sch, const char *value, const char *want)
{
    assert_resolves(sch, sch, value, want ? want : value);
}

/* Decoding hex @p data under @p sch fails with CAIRN_E_INVALID, text containing @p what. */
static inline void assert_dec_fails(const char *sch, const char *data, const char *what)
{
    cairn_avro_model_t *m = schema(sch);
    unsigned char bytes[512];
    size_t n = unhex(data, bytes);
    cairn_error_t err = {0};
    json_t *v = decode_as(m, m, bytes, n, &err);
    assert_null(v);
    assert_int_equal(err.code, CAIRN_E_INVALID);
    if (!strstr(err.text, what))
        fail_msg("error text '%s' lacks '%s'", err.text, what);
    cairn__avro_model_free(m);
}

#endif
