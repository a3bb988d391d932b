/* SPDX-License-Identifier: MIT */
/*
 * jsonw.c - a small JSON writer over a capped buffer, used for every
 * response body. Responses are flat and known in advance, so writing them
 * directly is cheaper than building a jansson tree and dumping it, and the
 * sticky error lets a handler write a whole body and check once.
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 (a query
 * value echoed in an error message may be anything) become U+FFFD, so the
 * output is always valid JSON.
 */
#include <stdio.h>
#include <string.h>

#include "api_int.h"

void cairn__jw_raw(cairn__jw_t *w, const char *s, size_t n)
{
    if (w->rc == CAIRN_OK)
        w->rc = cairn_buf_append(w->b, s, n);
}

void cairn__jw_lit(cairn__jw_t *w, const char *s)
{
    cairn__jw_raw(w, s, strlen(s));
}

void cairn__jw_int(cairn__jw_t *w, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    cairn__jw_raw(w, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are invalid. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void cairn__jw_str(cairn__jw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes at p[i - run .. i) that need no escaping */
    cairn__jw_raw(w, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[7];
        size_t elen = 0, step = 1;
        if (c == '"')
            esc = "\\\"", elen = 2;
        else if (c == '\\')
            esc = "\\\\", elen = 2;
        else if (c == '\n')
            esc = "\\n", elen = 2;
        else if (c == '\r')
            esc = "\\r", elen = 2;
        else if (c == '\t')
            esc = "\\t", elen = 2;
        else if (c < 0x20 || c == 0x7f) {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
            esc = u, elen = 6;
        } else if (c >= 0x80) {
            step = utf8_len(p + i, n - i);
            if (step == 0) {
                esc = "\\ufffd", elen = 6;
                step = 1;
            }
        }
        if (esc) {
            cairn__jw_raw(w, (const char *)p + i - run, run);
            run = 0;
            cairn__jw_raw(w, esc, elen);
        } else {
            run += step;
        }
        i += step;
    }
    cairn__jw_raw(w, (const char *)p + n - run, run);
    cairn__jw_raw(w, "\"", 1);
}

void cairn__jw_cstr(cairn__jw_t *w, const char *s)
{
    cairn__jw_str(w, s, strlen(s));
}
