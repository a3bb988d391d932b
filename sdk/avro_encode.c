/* SPDX-License-Identifier: MIT */
/*
 * avro_encode.c - the SDK's JSON form (docs/JSON-FORM.md) to Avro binary, and
 * the validation of a JSON value against a schema, in one walker.
 *
 * One walker serves three purposes, told apart by its context:
 * - encoding: `out` set, the first violation stops the walk and is recorded
 *   in `err` with the JSON pointer of the member;
 * - validation: `out` NULL, `viol` set, every violation is listed and the
 *   walk goes on with the next field, item or member;
 * - probing (`quiet` > 0): a union tries its branches in turn; a branch that
 *   does not fit is rolled back (output truncated to where it began) and
 *   reports nothing.
 * Only CAIRN_E_INVALID means "does not fit": NOMEM and TOO_LARGE from the
 * buffer always stop everything.
 *
 * Speed matters (the SDK encodes every event): record members are matched
 * to fields by walking the object's members in insertion order alongside
 * the fields, falling back to hash look-ups at the first mismatch; varints
 * are written straight into the buffer after one capacity check; no path
 * string is built unless a violation is reported.
 *
 * Defaults of missing fields are written from their Avro JSON encoding (the
 * way schemas carry them): a union default is for the first branch and a
 * decimal default is a string of byte code points, not a decimal number.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_codec.h"

/* Longest decimal number (in digits) the codec converts. */
#define DECIMAL_MAX_DIGITS 1024
/* Path segments kept for error messages (deeper ones are elided). */
/* A path segment whose length is taken only when an error is formatted. */
#define LAZY_LEN      ((size_t)-1)
#define PATH_MAX_SEGS (2 * CAIRN_AVRO_MAX_DEPTH + 8)

typedef struct seg {
    const char *s; /* member name, or NULL for an array index */
    size_t len;
    size_t idx;
} seg_t;

typedef struct ectx {
    cairn_buf_t *out; /* NULL when validating */
    cairn_error_t *err;
    cairn_strlist_t *viol; /* validation: where violations go */
    size_t max;
    size_t nviol;
    int quiet; /* > 0 while probing union branches */
    unsigned depth;
    unsigned npath;
    seg_t path[PATH_MAX_SEGS];
} ectx_t;

/* ---- paths and failures ------------------------------------------------ */

static void push_key(ectx_t *c, const char *s, size_t len)
{
    if (c->npath < PATH_MAX_SEGS)
        c->path[c->npath] = (seg_t){s, len, 0};
    c->npath++;
}

static void push_idx(ectx_t *c, size_t i)
{
    if (c->npath < PATH_MAX_SEGS)
        c->path[c->npath] = (seg_t){NULL, 0, i};
    c->npath++;
}

static void pop(ectx_t *c)
{
    c->npath--;
}

/* The RFC 6901 pointer of the current place into @p dst (truncated to fit). */
static void path_format(const ectx_t *c, char *dst, size_t cap)
{
    size_t n = 0;
    unsigned segs = c->npath < PATH_MAX_SEGS ? c->npath : PATH_MAX_SEGS;
    dst[0] = '\0';
    for (unsigned i = 0; i < segs && n + 1 < cap; i++) {
        const seg_t *s = &c->path[i];
        dst[n++] = '/';
        if (!s->s) {
            int w = snprintf(dst + n, cap - n, "%zu", s->idx);
            n = w < 0 ? n : (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
            continue;
        }
        size_t slen = s->len == LAZY_LEN ? strlen(s->s) : s->len;
        for (size_t k = 0; k < slen && n + 1 < cap; k++) {
            char ch = s->s[k];
            if (ch == '~' || ch == '/') {
                if (n + 2 >= cap)
                    break;
                dst[n++] = '~';
                dst[n++] = ch == '~' ? '0' : '1';
            } else {
                dst[n++] = ch;
            }
        }
    }
    if (n >= cap)
        n = cap - 1;
    dst[n] = '\0';
}

static cairn_rc_t fail(ectx_t *c, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static cairn_rc_t fail(ectx_t *c, const char *fmt, ...)
{
    if (c->quiet)
        return CAIRN_E_INVALID;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->viol) {
        c->nviol++;
        if (c->viol->n >= c->max)
            return CAIRN_E_INVALID;
        char where[1024];
        path_format(c, where, sizeof where);
        if (cairn_strlist_pushf(c->viol, "%s: %s", where, msg) != CAIRN_OK)
            return CAIRN_E_NOMEM;
        return CAIRN_E_INVALID;
    }
    char where[sizeof c->err->where];
    path_format(c, where, sizeof where);
    return cairn__error_set(c->err, CAIRN_E_INVALID, 0, where, "%s", msg);
}

/* Does the walk go on after @p rc (validation lists every violation)? */
static bool keep_going(const ectx_t *c, cairn_rc_t rc)
{
    return rc == CAIRN_E_INVALID && c->viol && !c->quiet;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* "int", "com.acme.Color": how the spec and the wrapped JSON form name a type. */
static const char *type_name(const cairn_avro_node_t *s)
{
    return s->fullname ? s->fullname : cairn__avro_kind_name(s->kind);
}

/* ---- output ------------------------------------------------------------ */

static cairn_rc_t grow(cairn_buf_t *b, size_t n)
{
    if (b->len > b->cap_limit || n > b->cap_limit - b->len)
        return CAIRN_E_INVALID_TOO_LARGE;
    size_t need = b->len + n + 1;
    size_t a = b->alloc ? b->alloc : 64;
    while (a < need)
        a = a > ((size_t)-1) / 2 ? need : a * 2;
    char *p = cairn__realloc(b->data, a);
    if (!p)
        return CAIRN_E_NOMEM;
    b->data = p;
    b->alloc = a;
    return CAIRN_OK;
}

/* Room for @p n more bytes plus the NUL the buffer keeps. */
static inline bool has_room(const cairn_buf_t *b, size_t n)
{
    return n < b->alloc - b->len && n <= b->cap_limit - b->len;
}

static inline cairn_rc_t reserve(cairn_buf_t *b, size_t n)
{
    if (n < b->alloc - b->len && n <= b->cap_limit - b->len)
        return CAIRN_OK; /* alloc > len always holds once data is set */
    return grow(b, n);
}

static inline size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v > 0x7f) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Bytes of the varint of @p v (reserving exactly that keeps the cap exact). */
static inline size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline cairn_rc_t write_long(ectx_t *c, int64_t v)
{
    if (!c->out)
        return CAIRN_OK;
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    cairn_rc_t rc;
    if (!has_room(c->out, 10) && (rc = reserve(c->out, varint_size(z))) != CAIRN_OK)
        return rc;
    c->out->len += put_varint((uint8_t *)c->out->data + c->out->len, z);
    return CAIRN_OK;
}

static inline cairn_rc_t write_raw(ectx_t *c, const void *p, size_t n)
{
    if (!c->out)
        return CAIRN_OK;
    cairn_rc_t rc = reserve(c->out, n);
    if (rc != CAIRN_OK)
        return rc;
    memcpy(c->out->data + c->out->len, p, n);
    c->out->len += n;
    return CAIRN_OK;
}

/* A length-prefixed run of bytes in one capacity check. */
static inline cairn_rc_t write_bytes(ectx_t *c, const void *p, size_t n)
{
    if (!c->out)
        return CAIRN_OK;
    cairn_rc_t rc;
    if (!has_room(c->out, n + 10) &&
        (rc = reserve(c->out, varint_size((uint64_t)n << 1) + n)) != CAIRN_OK)
        return rc;
    uint8_t *d = (uint8_t *)c->out->data + c->out->len;
    size_t k = put_varint(d, (uint64_t)n << 1);
    if (n)
        memcpy(d + k, p, n);
    c->out->len += k + n;
    return CAIRN_OK;
}

static cairn_rc_t write_float(ectx_t *c, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    return write_raw(c, b, 4);
}

static cairn_rc_t write_double(ectx_t *c, double d)
{
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    return write_raw(c, b, 8);
}

/* ---- scalar conversions ------------------------------------------------ */

/* A long written as a string of decimal digits (optional '-'). */
static bool parse_long_text(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || len - i > 19)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* A JSON number, or one of the strings "NaN", "Infinity", "-Infinity". */
static bool number_of(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else
        return false;
    return true;
}

/*
 * Avro's JSON encoding of bytes: each code point U+0000..U+00FF is one byte.
 * Writes the bytes to @p dst (room for @p len) and their count to @p n.
 * @returns false when a code point is above U+00FF.
 */
static bool latin1_bytes(const char *s, size_t len, uint8_t *dst, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) {
            if (dst)
                dst[k] = ch;
        } else if ((ch == 0xc2 || ch == 0xc3) && i + 1 < len) {
            if (dst)
                dst[k] = (uint8_t)(((ch & 0x03) << 6) | ((unsigned char)s[i + 1] & 0x3f));
            i++;
        } else {
            return false;
        }
        k++;
    }
    *n = k;
    return true;
}

/*
 * The decimal text @p s as the two's-complement big-endian bytes of its
 * unscaled value at @p scale (minimal length, as Java's BigInteger writes
 * it). @p out has room for DECIMAL_MAX_DIGITS / 2 + 2 bytes.
 * @returns NULL, or the message of why the text is not a fitting decimal.
 */
static const char *
decimal_bytes(const char *s, size_t len, const cairn_avro_node_t *t, uint8_t *out, size_t *outn)
{
    char digits[DECIMAL_MAX_DIGITS + 1];
    size_t nd = 0, i = 0, frac = 0;
    bool neg = false, point = false, any = false;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    for (; i < len; i++) {
        char ch = s[i];
        if (ch == '.' && !point) {
            point = true;
            continue;
        }
        if (ch < '0' || ch > '9')
            return "not a decimal number";
        any = true;
        if (point)
            frac++;
        if (nd == 0 && ch == '0')
            continue; /* leading zeros do not count against the precision */
        if (nd >= DECIMAL_MAX_DIGITS)
            return "decimal has too many digits";
        digits[nd++] = ch;
    }
    if (!any || (point && frac == 0 && i > 0 && s[len - 1] == '.'))
        return "not a decimal number";
    if (frac > (size_t)t->scale)
        return "decimal has more digits after the point than the scale allows";
    for (size_t k = frac; k < (size_t)t->scale; k++) {
        if (nd == 0)
            continue;
        if (nd >= DECIMAL_MAX_DIGITS)
            return "decimal has too many digits";
        digits[nd++] = '0';
    }
    if (nd > (size_t)t->precision)
        return "decimal has more digits than the precision allows";
    /* Base 2^32 limbs, least significant first, 9 digits at a time. */
    uint32_t limb[DECIMAL_MAX_DIGITS / 9 + 2];
    size_t nl = 0;
    for (size_t k = 0; k < nd;) {
        size_t take = nd - k < 9 ? nd - k : 9;
        uint32_t chunk = 0, mul = 1;
        for (size_t j = 0; j < take; j++, k++) {
            chunk = chunk * 10 + (uint32_t)(digits[k] - '0');
            mul *= 10;
        }
        uint64_t carry = chunk;
        for (size_t j = 0; j < nl; j++) {
            uint64_t x = (uint64_t)limb[j] * mul + carry;
            limb[j] = (uint32_t)x;
            carry = x >> 32;
        }
        if (carry)
            limb[nl++] = (uint32_t)carry;
    }
    /* Magnitude as big-endian bytes, leading zeros dropped. */
    uint8_t mag[sizeof limb];
    size_t nm = 0;
    for (size_t j = nl; j-- > 0;) {
        for (int b = 3; b >= 0; b--) {
            uint8_t x = (uint8_t)(limb[j] >> (8 * b));
            if (nm || x)
                mag[nm++] = x;
        }
    }
    if (nm == 0)
        neg = false;
    size_t n = 0;
    if (!neg) {
        if (nm == 0 || mag[0] & 0x80)
            out[n++] = 0;
        memcpy(out + n, mag, nm);
        n += nm;
    } else {
        /* 2^(8nm) - m; one more 0xff byte when its sign bit came out clear. */
        unsigned borrow = 1;
        uint8_t tmp[sizeof limb];
        for (size_t j = nm; j-- > 0;) {
            unsigned x = (unsigned)(uint8_t)~mag[j] + borrow;
            tmp[j] = (uint8_t)x;
            borrow = x >> 8;
        }
        if (!(tmp[0] & 0x80))
            out[n++] = 0xff;
        memcpy(out + n, tmp, nm);
        n += nm;
    }
    *outn = n;
    return NULL;
}

/* ---- the walker -------------------------------------------------------- */

static cairn_rc_t enc(ectx_t *c, const cairn_avro_node_t *s, const json_t *v, bool dflt);

static cairn_rc_t enc_decimal(ectx_t *c, const cairn_avro_node_t *s, const json_t *v)
{
    char text[32];
    const char *p;
    size_t len;
    if (json_is_integer(v)) {
        int w = snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        p = text;
        len = (size_t)w;
    } else if (json_is_string(v)) {
        p = json_string_value(v);
        len = json_string_length(v);
    } else {
        return fail(c, "expected decimal, got %s", json_kind(v));
    }
    uint8_t bytes[DECIMAL_MAX_DIGITS / 2 + 8];
    size_t n = 0;
    const char *why = decimal_bytes(p, len, s, bytes, &n);
    if (why)
        return fail(c, "%s", why);
    if (s->kind == CAIRN_AVRO_BYTES)
        return write_bytes(c, bytes, n);
    if ((int64_t)n > s->size)
        return fail(c, "decimal does not fit in fixed %s of %" PRId64 " bytes", s->fullname,
                    s->size);
    uint8_t pad[64];
    cairn_rc_t rc = CAIRN_OK;
    for (int64_t k = (int64_t)n; k < s->size && rc == CAIRN_OK;) {
        size_t step = (size_t)(s->size - k) < sizeof pad ? (size_t)(s->size - k) : sizeof pad;
        memset(pad, bytes[0] & 0x80 ? 0xff : 0x00, step);
        rc = write_raw(c, pad, step);
        k += (int64_t)step;
    }
    return rc == CAIRN_OK ? write_raw(c, bytes, n) : rc;
}

static cairn_rc_t enc_bytes(ectx_t *c, const cairn_avro_node_t *s, const json_t *v)
{
    if (!json_is_string(v))
        return fail(c, "expected %s, got %s", cairn__avro_kind_name(s->kind), json_kind(v));
    const char *p = json_string_value(v);
    size_t len = json_string_length(v), n;
    if (!latin1_bytes(p, len, NULL, &n))
        return fail(c, "%s holds a code point above U+00FF", cairn__avro_kind_name(s->kind));
    if (s->kind == CAIRN_AVRO_FIXED && (int64_t)n != s->size)
        return fail(c, "expected %" PRId64 " bytes for fixed %s, got %zu", s->size, s->fullname, n);
    if (!c->out)
        return CAIRN_OK;
    size_t k = s->kind == CAIRN_AVRO_BYTES ? varint_size((uint64_t)n << 1) : 0;
    cairn_rc_t rc = reserve(c->out, k + n);
    if (rc != CAIRN_OK)
        return rc;
    uint8_t *d = (uint8_t *)c->out->data + c->out->len;
    if (k)
        put_varint(d, (uint64_t)n << 1);
    latin1_bytes(p, len, d + k, &n);
    c->out->len += k + n;
    return CAIRN_OK;
}

static cairn_rc_t enc_record(ectx_t *c, const cairn_avro_node_t *s, const json_t *v, bool dflt)
{
    if (!json_is_object(v))
        return fail(c, "expected record %s, got %s", s->fullname, json_kind(v));
    cairn_rc_t rc = CAIRN_OK, first = CAIRN_OK;
    /* Members usually come in field order: walk both, hash only on a miss. */
    void *it = json_object_iter((json_t *)(uintptr_t)v);
    size_t found = 0;
    for (uint32_t i = 0; i < s->nfields; i++) {
        const cairn_avro_field_t *f = &s->fields[i];
        const json_t *fv;
        if (it && strcmp(json_object_iter_key(it), f->name) == 0) {
            fv = json_object_iter_value(it);
            it = json_object_iter_next((json_t *)(uintptr_t)v, it);
        } else {
            it = NULL;
            fv = json_object_get(v, f->name);
        }
        push_key(c, f->name, LAZY_LEN);
        if (fv) {
            found++;
            rc = enc(c, f->type, fv, dflt);
        } else if (f->def) {
            rc = enc(c, f->type, f->def, true);
        } else {
            rc = fail(c, "missing field \"%s\" (no default)", f->name);
        }
        pop(c);
        if (rc != CAIRN_OK) {
            if (!keep_going(c, rc))
                return rc;
            first = rc;
        }
    }
    if (found == json_object_size(v) || dflt)
        return first;
    /* Some member names no field: find each (a slow path, errors only). */
    const char *key;
    json_t *mv;
    json_object_foreach((json_t *)(uintptr_t)v, key, mv)
    {
        cairn_avro_field_t probe = {.name = (char *)(uintptr_t)key};
        if (cairn__avro_writer_field(&probe, s) >= 0)
            continue;
        push_key(c, key, strlen(key));
        rc = fail(c, "unknown member \"%s\"", key);
        pop(c);
        if (!keep_going(c, rc))
            return rc;
        first = rc;
    }
    return first;
}

static cairn_rc_t enc_array(ectx_t *c, const cairn_avro_node_t *s, const json_t *v, bool dflt)
{
    if (!json_is_array(v))
        return fail(c, "expected array, got %s", json_kind(v));
    size_t n = json_array_size(v);
    cairn_rc_t rc = CAIRN_OK, first = CAIRN_OK;
    if (n && (rc = write_long(c, (int64_t)n)) != CAIRN_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        push_idx(c, i);
        rc = enc(c, s->items, json_array_get(v, i), dflt);
        pop(c);
        if (rc != CAIRN_OK) {
            if (!keep_going(c, rc))
                return rc;
            first = rc;
        }
    }
    rc = write_long(c, 0);
    return rc == CAIRN_OK ? first : rc;
}

static cairn_rc_t enc_map(ectx_t *c, const cairn_avro_node_t *s, const json_t *v, bool dflt)
{
    if (!json_is_object(v))
        return fail(c, "expected map, got %s", json_kind(v));
    size_t n = json_object_size(v);
    cairn_rc_t rc = CAIRN_OK, first = CAIRN_OK;
    if (n && (rc = write_long(c, (int64_t)n)) != CAIRN_OK)
        return rc;
    const char *key;
    json_t *mv;
    json_object_foreach((json_t *)(uintptr_t)v, key, mv)
    {
        size_t klen = strlen(key);
        if ((rc = write_bytes(c, key, klen)) != CAIRN_OK)
            return rc;
        push_key(c, key, klen);
        rc = enc(c, s->items, mv, dflt);
        pop(c);
        if (rc != CAIRN_OK) {
            if (!keep_going(c, rc))
                return rc;
            first = rc;
        }
    }
    rc = write_long(c, 0);
    return rc == CAIRN_OK ? first : rc;
}

/* Order in which plain JSON values look for a union branch (JSON-FORM.md). */
static int branch_rank(const cairn_avro_node_t *b, const json_t *v)
{
    bool dec = b->logical == CAIRN_AVRO_LT_DECIMAL;
    switch (json_typeof(v)) {
    case JSON_TRUE:
    case JSON_FALSE:
        return b->kind == CAIRN_AVRO_BOOLEAN ? 1 : 0;
    case JSON_INTEGER:
        switch (b->kind) {
        case CAIRN_AVRO_INT:
            return 1;
        case CAIRN_AVRO_LONG:
            return 2;
        case CAIRN_AVRO_FLOAT:
        case CAIRN_AVRO_DOUBLE:
            return 3;
        case CAIRN_AVRO_BYTES:
        case CAIRN_AVRO_FIXED:
            return dec ? 4 : 0;
        default:
            return 0;
        }
    case JSON_REAL:
        return b->kind == CAIRN_AVRO_FLOAT || b->kind == CAIRN_AVRO_DOUBLE ? 1 : 0;
    case JSON_STRING:
        switch (b->kind) {
        case CAIRN_AVRO_STRING:
            return 1;
        case CAIRN_AVRO_ENUM:
            return 2;
        case CAIRN_AVRO_BYTES:
        case CAIRN_AVRO_FIXED:
            return 3;
        case CAIRN_AVRO_LONG:
            return 4;
        case CAIRN_AVRO_FLOAT:
        case CAIRN_AVRO_DOUBLE:
            return 5;
        default:
            return 0;
        }
    case JSON_OBJECT:
        return b->kind == CAIRN_AVRO_RECORD ? 1 : b->kind == CAIRN_AVRO_MAP ? 2 : 0;
    case JSON_ARRAY:
        return b->kind == CAIRN_AVRO_ARRAY ? 1 : 0;
    default:
        return b->kind == CAIRN_AVRO_NULL ? 1 : 0;
    }
}

static cairn_rc_t enc_branch(ectx_t *c, const cairn_avro_node_t *s, uint32_t i, const json_t *v)
{
    cairn_rc_t rc = write_long(c, (int64_t)i);
    return rc == CAIRN_OK ? enc(c, s->branches[i], v, false) : rc;
}

static cairn_rc_t enc_union(ectx_t *c, const cairn_avro_node_t *s, const json_t *v, bool dflt)
{
    if (s->nbranches == 0)
        return fail(c, "empty union has no value");
    if (dflt) /* Avro's JSON encoding: a default is for the first branch */
        return enc_branch(c, s, 0, v);
    /* Wrapped: {"<branch name>": value}, the value under that member. */
    if (json_is_object(v) && json_object_size(v) == 1) {
        void *it = json_object_iter((json_t *)(uintptr_t)v);
        const char *key = json_object_iter_key(it);
        for (uint32_t i = 0; i < s->nbranches; i++) {
            if (s->branches[i]->kind != CAIRN_AVRO_NULL &&
                strcmp(type_name(s->branches[i]), key) == 0) {
                push_key(c, key, strlen(key));
                cairn_rc_t rc = enc_branch(c, s, i, json_object_iter_value(it));
                pop(c);
                return rc;
            }
        }
    }
    /* Plain: the first branch it fits, in the order of branch_rank. */
    uint32_t cand[64];
    size_t nc = 0;
    for (int rank = 1; rank <= 5; rank++) {
        for (uint32_t i = 0; i < s->nbranches && nc < sizeof cand / sizeof cand[0]; i++) {
            if (branch_rank(s->branches[i], v) == rank)
                cand[nc++] = i;
        }
    }
    if (nc == 1) /* one candidate: its own error says best what is wrong */
        return enc_branch(c, s, cand[0], v);
    size_t mark = c->out ? c->out->len : 0;
    for (size_t k = 0; k < nc; k++) {
        c->quiet++;
        cairn_rc_t rc = enc_branch(c, s, cand[k], v);
        c->quiet--;
        if (rc == CAIRN_OK)
            return CAIRN_OK;
        if (rc != CAIRN_E_INVALID)
            return rc;
        if (c->out)
            c->out->len = mark;
    }
    char names[256];
    size_t n = 0;
    names[0] = '\0';
    for (uint32_t i = 0; i < s->nbranches && n < sizeof names; i++) {
        int w =
            snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", type_name(s->branches[i]));
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return fail(c, "%s fits no branch of union [%s]", json_kind(v), names);
}

static cairn_rc_t enc(ectx_t *c, const cairn_avro_node_t *s, const json_t *v, bool dflt)
{
    cairn_rc_t rc;
    switch (s->kind) {
    case CAIRN_AVRO_NULL:
        return json_is_null(v) ? CAIRN_OK : fail(c, "expected null, got %s", json_kind(v));
    case CAIRN_AVRO_BOOLEAN: {
        if (!json_is_boolean(v))
            return fail(c, "expected boolean, got %s", json_kind(v));
        uint8_t b = json_is_true(v) ? 1 : 0;
        return write_raw(c, &b, 1);
    }
    case CAIRN_AVRO_INT:
        if (!json_is_integer(v))
            return fail(c, "expected int, got %s", json_kind(v));
        if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
            return fail(c, "%" JSON_INTEGER_FORMAT " is out of the range of int",
                        json_integer_value(v));
        return write_long(c, json_integer_value(v));
    case CAIRN_AVRO_LONG: {
        int64_t x;
        if (json_is_integer(v))
            return write_long(c, json_integer_value(v));
        if (json_is_string(v) && parse_long_text(json_string_value(v), json_string_length(v), &x))
            return write_long(c, x);
        return fail(c, "expected long, got %s", json_kind(v));
    }
    case CAIRN_AVRO_FLOAT:
    case CAIRN_AVRO_DOUBLE: {
        double d;
        if (!number_of(v, &d))
            return fail(c, "expected %s, got %s", cairn__avro_kind_name(s->kind), json_kind(v));
        return s->kind == CAIRN_AVRO_FLOAT ? write_float(c, (float)d) : write_double(c, d);
    }
    case CAIRN_AVRO_STRING:
        if (!json_is_string(v))
            return fail(c, "expected string, got %s", json_kind(v));
        return write_bytes(c, json_string_value(v), json_string_length(v));
    case CAIRN_AVRO_BYTES:
    case CAIRN_AVRO_FIXED:
        if (s->logical == CAIRN_AVRO_LT_DECIMAL && !dflt)
            return enc_decimal(c, s, v);
        return enc_bytes(c, s, v);
    case CAIRN_AVRO_ENUM: {
        if (!json_is_string(v))
            return fail(c, "expected enum %s, got %s", s->fullname, json_kind(v));
        const char *sym = json_string_value(v);
        for (uint32_t i = 0; i < s->nsymbols; i++) {
            if (strcmp(s->symbols[i], sym) == 0)
                return write_long(c, (int64_t)i);
        }
        return fail(c, "\"%s\" is not a symbol of enum %s", sym, s->name);
    }
    case CAIRN_AVRO_UNION:
        return enc_union(c, s, v, dflt);
    case CAIRN_AVRO_RECORD:
    case CAIRN_AVRO_ARRAY:
    case CAIRN_AVRO_MAP:
        if (c->depth >= CAIRN_AVRO_MAX_DEPTH)
            return fail(c, "value nested deeper than %d levels", CAIRN_AVRO_MAX_DEPTH);
        c->depth++;
        rc = s->kind == CAIRN_AVRO_RECORD  ? enc_record(c, s, v, dflt)
             : s->kind == CAIRN_AVRO_ARRAY ? enc_array(c, s, v, dflt)
                                           : enc_map(c, s, v, dflt);
        c->depth--;
        return rc;
    }
    return fail(c, "unsupported schema kind");
}

/* ---- entry points ------------------------------------------------------ */

cairn_rc_t cairn__avro_encode(const cairn_avro_node_t *schema,
                              const json_t *value,
                              cairn_buf_t *out,
                              cairn_error_t *err)
{
    ectx_t c;
    c.out = out;
    c.err = err;
    c.viol = NULL;
    c.max = 0;
    c.nviol = 0;
    c.quiet = 0;
    c.depth = 0;
    c.npath = 0;
    if (!schema || !value || !out)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no schema, value or buffer");
    cairn_rc_t rc = enc(&c, schema, value, false);
    if (out->data)
        out->data[out->len] = '\0';
    if (rc == CAIRN_E_NOMEM || rc == CAIRN_E_INVALID_TOO_LARGE)
        cairn__error_set(err, rc, 0, NULL, "%s",
                         rc == CAIRN_E_NOMEM ? "out of memory encoding avro"
                                             : "encoded value exceeds the buffer's cap");
    return rc;
}

cairn_rc_t cairn__avro_validate(const cairn_avro_node_t *schema,
                                const json_t *value,
                                cairn_strlist_t *violations,
                                size_t max)
{
    ectx_t c;
    cairn_strlist_t scratch;
    cairn_strlist_init(&scratch);
    c.out = NULL;
    c.err = NULL;
    c.viol = violations ? violations : &scratch;
    c.max = violations ? violations->n + max : 0;
    c.nviol = 0;
    c.quiet = 0;
    c.depth = 0;
    c.npath = 0;
    if (!schema || !value)
        return CAIRN_E_INVALID;
    cairn_rc_t rc = enc(&c, schema, value, false);
    cairn_strlist_release(&scratch);
    if (rc == CAIRN_OK && c.nviol)
        rc = CAIRN_E_INVALID;
    return rc;
}
