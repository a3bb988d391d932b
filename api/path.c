/* SPDX-License-Identifier: MIT */
/*
 * path.c - the pure parsing of what a request carries: raw path segments,
 * percent-decoding, query values, version and id segments, booleans and
 * integers of the query, and request content types.
 *
 * Why we decode ourselves: libmicrohttpd unescapes the whole path before the
 * handler sees it, so "/subjects/a%2Fb/versions" would arrive as four
 * segments and "%00" would cut the string. server.c installs an unescape
 * callback that leaves the path raw; here we split on '/' first and decode
 * each segment after, so a subject may contain '/' and no value can smuggle
 * a NUL. Query values: MHD turns '+' into a space itself before calling the
 * unescape callback and leaves every %XX to us, so "%2B" still means '+'.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"

cairn_rc_t cairn__api_pct_decode(
    const char *in, size_t len, bool plus_is_space, char *out, size_t *out_len, cairn_error_t *err)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 1 < len ? cairn__hex_digit((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? cairn__hex_digit((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, NULL,
                                        "malformed percent-encoding at byte %zu", i);
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, NULL,
                                        "an encoded NUL (%%00) is not allowed");
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, NULL,
                                    "a NUL byte is not allowed");
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return CAIRN_OK;
}

cairn_rc_t
cairn__api_path_parse(const char *raw, char *scratch, cairn__api_path_t *out, cairn_error_t *err)
{
    out->n = 0;
    if (!raw || raw[0] != '/')
        return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, NULL,
                                "the request path must start with '/'");
    size_t len = strlen(raw);
    /* "/subjects/" is "/subjects", as Jersey answers it; "/" stays the root. */
    if (len > 1 && raw[len - 1] == '/')
        len--;
    const char *p = raw + 1, *end = raw + len;
    char *w = scratch;
    if (p >= end)
        return CAIRN_OK;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash ? slash : end;
        if (seg_end == p)
            return cairn__error_set(err, CAIRN_E_NOT_FOUND_PATH, 0, NULL, "HTTP 404 Not Found");
        if (out->n == CAIRN__API_MAX_SEGMENTS)
            return cairn__error_set(err, CAIRN_E_NOT_FOUND_PATH, 0, NULL, "HTTP 404 Not Found");
        size_t dlen;
        cairn_rc_t rc = cairn__api_pct_decode(p, (size_t)(seg_end - p), false, w, &dlen, err);
        if (rc != CAIRN_OK)
            return rc;
        out->seg[out->n] = w;
        out->len[out->n] = dlen;
        out->n++;
        w += dlen + 1;
        if (!slash)
            break;
        p = slash + 1;
    }
    return CAIRN_OK;
}

/* Decimal with an optional sign, as Java's Integer.parseInt; false on overflow. */
static bool parse_decimal(const char *s, long long lo, long long hi, long long *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (!*p)
        return false;
    long long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > (long long)INT_MAX + 1)
            return false;
    }
    if (neg)
        v = -v;
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

cairn_rc_t cairn__api_parse_version(const char *s, int *out, cairn_error_t *err)
{
    long long v;
    if (!strcasecmp(s, "latest")) {
        *out = -1;
        return CAIRN_OK;
    }
    if (parse_decimal(s, -1, INT_MAX, &v) && v != 0) {
        *out = (int)v;
        return CAIRN_OK;
    }
    return cairn__error_set(err, CAIRN_E_INVALID_VERSION, 0, NULL,
                            "The specified version '%s' is not a valid version id. Allowed "
                            "values are between [1, 2^31-1] and the string \"latest\"",
                            s);
}

bool cairn__api_parse_id(const char *s, int *out)
{
    long long v;
    if (*s == '+' || *s == '-' || !parse_decimal(s, 1, INT_MAX, &v))
        return false;
    *out = (int)v;
    return true;
}

cairn_rc_t
cairn__api_parse_bool(const char *name, const char *value, bool dflt, bool *out, cairn_error_t *err)
{
    if (!value || !*value)
        *out = dflt;
    else if (!strcasecmp(value, "true"))
        *out = true;
    else if (!strcasecmp(value, "false"))
        *out = false;
    else
        return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, name,
                                "query parameter '%s' must be true or false", name);
    return CAIRN_OK;
}

cairn_rc_t cairn__api_parse_int(const char *name,
                                const char *value,
                                long min,
                                long max,
                                long dflt,
                                long *out,
                                cairn_error_t *err)
{
    long long v;
    if (!value || !*value) {
        *out = dflt;
        return CAIRN_OK;
    }
    if (!parse_decimal(value, min, max, &v))
        return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, name,
                                "query parameter '%s' must be an integer between %ld and %ld", name,
                                min, max);
    *out = (long)v;
    return CAIRN_OK;
}

bool cairn__api_content_type_ok(const char *ct)
{
    static const char *const ok[] = {
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
    };
    if (!ct)
        return true;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 0) /* an empty header is no header */
        return ct[0] == '\0';
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && !strncasecmp(ct, ok[i], n))
            return true;
    return false;
}
