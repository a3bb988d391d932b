/* SPDX-License-Identifier: MIT */
/*
 * avro_canonical.c - the written forms of an Avro schema model and its
 * fingerprint.
 *
 * CANONICAL is Confluent's "same schema" test: what Avro Java's
 * Schema.toString() writes, so formatting goes and every attribute stays.
 * Compact JSON; attributes in Avro Java's order (record: type, name,
 * namespace, doc, fields, custom properties, aliases; enum: type, name,
 * namespace, doc, symbols, default, properties, aliases; fixed: type, name,
 * namespace, doc, size, properties, aliases; array/map: type, items/values,
 * properties; field: name, type, doc, default, order unless ascending,
 * aliases, properties); a primitive without properties as a plain string;
 * "namespace" written only where it differs from the enclosing one ("" for
 * a null namespace inside a non-null one); a named type written in full at
 * its first occurrence and by name after it, the name shortened when its
 * namespace is the enclosing one. Custom properties keep their text order,
 * as Avro Java keeps them. Types defined by references are written by name,
 * never inlined.
 *
 * NORMALIZED (normalize=true) is CANONICAL with full names everywhere: a
 * definition writes "name":"full.Name" and no "namespace" (except "" where
 * a null-namespace type sits inside a namespaced one), references and
 * aliases are full names, and custom properties are sorted by key (the keys
 * of objects inside property values too). So two texts that differ only in
 * how names are qualified or in property order normalize equally.
 *
 * PCF is the spec's Parsing Canonical Form: full names, only type, name,
 * fields, symbols, items, values and size, in the order name, type, fields,
 * symbols, items, values, size, no whitespace. Here types of references are
 * inlined at their first occurrence, so that the fingerprint (CRC-64-AVRO of
 * the PCF) describes the whole schema.
 *
 * Strings are written as Jackson writes them: `"` and `\` escaped, control
 * characters as \n \t \r \b \f or \u00XX, everything else as UTF-8.
 * Numbers: integers as written; reals in the shortest form that reads back
 * to the same double.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro.h"

typedef struct wctx {
    const cairn_avro_model_t *m;
    cairn_avro_form_t form;
    cairn_buf_t b;
    const cairn_avro_node_t **seen; /* named types already written (open addressing) */
    size_t seen_cap, seen_n;
    cairn_rc_t rc;
} wctx_t;

static void put(wctx_t *w, const char *s, size_t n)
{
    if (w->rc == CAIRN_OK)
        w->rc = cairn_buf_append(&w->b, s, n);
}

static void puts_(wctx_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_str(wctx_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* Jackson writes upper case */
    size_t run = 0;
    puts_(w, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (ch) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (ch < 0x20) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[ch >> 4];
                u[5] = hex[ch & 15];
                u[6] = '\0';
                esc = u;
            }
        }
        if (!esc)
            continue;
        put(w, s + run, i - run);
        puts_(w, esc);
        run = i + 1;
    }
    put(w, s + run, n - run);
    puts_(w, "\"");
}

static void put_cstr(wctx_t *w, const char *s)
{
    put_str(w, s, strlen(s));
}

static void put_key(wctx_t *w, const char *key)
{
    put_cstr(w, key);
    puts_(w, ":");
}

static void put_real(wctx_t *w, double d)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    puts_(w, tmp);
    if (!strpbrk(tmp, ".eEn"))
        puts_(w, ".0");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_json(wctx_t *w, const json_t *v, bool sorted)
{
    char tmp[32];
    switch (json_typeof(v)) {
    case JSON_NULL:
        puts_(w, "null");
        break;
    case JSON_TRUE:
        puts_(w, "true");
        break;
    case JSON_FALSE:
        puts_(w, "false");
        break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        puts_(w, tmp);
        break;
    case JSON_REAL:
        put_real(w, json_real_value(v));
        break;
    case JSON_STRING:
        put_str(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_ARRAY:
        puts_(w, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                puts_(w, ",");
            put_json(w, json_array_get(v, i), sorted);
        }
        puts_(w, "]");
        break;
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = n ? cairn__calloc(n, sizeof *keys) : NULL;
        const char *k;
        json_t *e;
        if (n && !keys) {
            w->rc = CAIRN_E_NOMEM;
            return;
        }
        json_object_foreach((json_t *)(uintptr_t)v, k, e)
        {
            keys[i++] = k;
        }
        if (sorted && n > 1)
            qsort(keys, n, sizeof *keys, cmp_str);
        puts_(w, "{");
        for (i = 0; i < n; i++) {
            if (i)
                puts_(w, ",");
            put_key(w, keys[i]);
            put_json(w, json_object_get(v, keys[i]), sorted);
        }
        puts_(w, "}");
        cairn__free(keys);
        break;
    }
    }
}

/* Writes ",key:value" for each custom property. */
static void put_props(wctx_t *w, const json_t *props)
{
    if (!props || w->form == CAIRN_AVRO_FORM_PCF)
        return;
    bool sorted = w->form == CAIRN_AVRO_FORM_NORMALIZED;
    size_t n = json_object_size(props), i = 0;
    const char **keys = cairn__calloc(n, sizeof *keys);
    const char *k;
    json_t *e;
    if (!keys) {
        w->rc = CAIRN_E_NOMEM;
        return;
    }
    json_object_foreach((json_t *)(uintptr_t)props, k, e)
    {
        keys[i++] = k;
    }
    if (sorted && n > 1)
        qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++) {
        puts_(w, ",");
        put_key(w, keys[i]);
        put_json(w, json_object_get(props, keys[i]), sorted);
    }
    cairn__free(keys);
}

/* ---- the set of named types already written ---------------------------- */

static size_t ptr_hash(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= (uintptr_t)0x9e3779b97f4a7c15ull;
    return (size_t)(x ^ (x >> 29));
}

static bool seen_has(const wctx_t *w, const cairn_avro_node_t *n)
{
    if (!w->seen_cap)
        return false;
    for (size_t i = ptr_hash(n) & (w->seen_cap - 1);; i = (i + 1) & (w->seen_cap - 1)) {
        if (!w->seen[i])
            return false;
        if (w->seen[i] == n)
            return true;
    }
}

static void seen_add(wctx_t *w, const cairn_avro_node_t *n)
{
    if ((w->seen_n + 1) * 2 > w->seen_cap) {
        size_t cap = w->seen_cap ? w->seen_cap * 2 : 16;
        const cairn_avro_node_t **t = cairn__calloc(cap, sizeof *t);
        if (!t) {
            w->rc = CAIRN_E_NOMEM;
            return;
        }
        for (size_t i = 0; i < w->seen_cap; i++) {
            if (!w->seen[i])
                continue;
            size_t j = ptr_hash(w->seen[i]) & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = w->seen[i];
        }
        cairn__free(w->seen);
        w->seen = t;
        w->seen_cap = cap;
    }
    size_t i = ptr_hash(n) & (w->seen_cap - 1);
    while (w->seen[i])
        i = (i + 1) & (w->seen_cap - 1);
    w->seen[i] = n;
    w->seen_n++;
}

/* ---- names ------------------------------------------------------------ */

/* The namespace of a named node as (pointer, length); length 0 is the null namespace. */
static size_t ns_len(const cairn_avro_node_t *n)
{
    return n->name > n->fullname ? (size_t)(n->name - n->fullname - 1) : 0;
}

static bool same_space(const char *a, size_t alen, const char *space)
{
    size_t slen = space ? strlen(space) : 0;
    return alen == slen && (alen == 0 || memcmp(a, space, alen) == 0);
}

/* A full name as written relative to @p space (Avro Java's getQualified). */
static void put_qualified(wctx_t *w, const char *full, const char *space)
{
    const char *dot = strrchr(full, '.');
    if (w->form == CAIRN_AVRO_FORM_CANONICAL && dot &&
        same_space(full, (size_t)(dot - full), space))
        put_cstr(w, dot + 1);
    else
        put_cstr(w, full);
}

/* "name" and "namespace" of a definition (Avro Java's writeName). */
static void put_name(wctx_t *w, const cairn_avro_node_t *n, const char *space)
{
    size_t nl = ns_len(n);
    put_key(w, "name");
    if (w->form == CAIRN_AVRO_FORM_CANONICAL)
        put_cstr(w, n->name);
    else
        put_cstr(w, n->fullname);
    if (w->form == CAIRN_AVRO_FORM_PCF)
        return;
    if (nl) {
        if (w->form == CAIRN_AVRO_FORM_CANONICAL && !same_space(n->fullname, nl, space)) {
            puts_(w, ",");
            put_key(w, "namespace");
            put_str(w, n->fullname, nl);
        }
    } else if (space && *space) {
        puts_(w, ",\"namespace\":\"\"");
    }
}

static void put_aliases(wctx_t *w, char *const *aliases, uint32_t n, const char *space)
{
    if (!n || w->form == CAIRN_AVRO_FORM_PCF)
        return;
    puts_(w, ",\"aliases\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            puts_(w, ",");
        if (space)
            put_qualified(w, aliases[i], space);
        else
            put_cstr(w, aliases[i]);
    }
    puts_(w, "]");
}

/* ---- nodes ------------------------------------------------------------ */

static void put_node(wctx_t *w, const cairn_avro_node_t *n, const char *space);

static void put_doc(wctx_t *w, const char *doc)
{
    if (!doc || w->form == CAIRN_AVRO_FORM_PCF)
        return;
    puts_(w, ",\"doc\":");
    put_cstr(w, doc);
}

static void put_field(wctx_t *w, const cairn_avro_field_t *f, const char *space)
{
    static const char *const orders[] = {"ascending", "descending", "ignore"};
    puts_(w, "{\"name\":");
    put_cstr(w, f->name);
    puts_(w, ",\"type\":");
    put_node(w, f->type, space);
    if (w->form != CAIRN_AVRO_FORM_PCF) {
        put_doc(w, f->doc);
        if (f->def) {
            puts_(w, ",\"default\":");
            put_json(w, f->def, false);
        }
        if (f->order != CAIRN_AVRO_ORDER_ASCENDING) {
            puts_(w, ",\"order\":");
            put_cstr(w, orders[f->order]);
        }
        put_aliases(w, f->aliases, f->naliases, NULL);
        put_props(w, f->props);
    }
    puts_(w, "}");
}

static void put_named(wctx_t *w, const cairn_avro_node_t *n, const char *space)
{
    bool pcf = w->form == CAIRN_AVRO_FORM_PCF;
    /* Written by name after the first time, and always when a reference
     * defines it (except in PCF, which describes the whole schema). */
    if (seen_has(w, n) || (!pcf && !cairn__avro_model_defines(w->m, n))) {
        put_qualified(w, n->fullname, space);
        return;
    }
    seen_add(w, n);
    char *own = cairn__strndup(n->fullname, ns_len(n));
    if (!own) {
        w->rc = CAIRN_E_NOMEM;
        return;
    }
    const char *type = n->kind == CAIRN_AVRO_ENUM    ? "enum"
                       : n->kind == CAIRN_AVRO_FIXED ? "fixed"
                       : n->is_error && !pcf         ? "error"
                                                     : "record";
    puts_(w, "{");
    if (pcf) {
        put_name(w, n, space);
        puts_(w, ",\"type\":");
        put_cstr(w, type);
    } else {
        put_key(w, "type");
        put_cstr(w, type);
        puts_(w, ",");
        put_name(w, n, space);
        put_doc(w, n->doc);
    }
    const char *inner = *own ? own : NULL;
    switch (n->kind) {
    case CAIRN_AVRO_RECORD:
        puts_(w, ",\"fields\":[");
        for (uint32_t i = 0; i < n->nfields; i++) {
            if (i)
                puts_(w, ",");
            put_field(w, &n->fields[i], inner);
        }
        puts_(w, "]");
        break;
    case CAIRN_AVRO_ENUM:
        puts_(w, ",\"symbols\":[");
        for (uint32_t i = 0; i < n->nsymbols; i++) {
            if (i)
                puts_(w, ",");
            put_cstr(w, n->symbols[i]);
        }
        puts_(w, "]");
        if (n->enum_default && !pcf) {
            puts_(w, ",\"default\":");
            put_cstr(w, n->enum_default);
        }
        break;
    default: {
        char tmp[32];
        snprintf(tmp, sizeof tmp, ",\"size\":%lld", (long long)n->size);
        puts_(w, tmp);
        break;
    }
    }
    put_props(w, n->props);
    put_aliases(w, n->aliases, n->naliases, inner ? inner : "");
    puts_(w, "}");
    cairn__free(own);
}

static void put_node(wctx_t *w, const cairn_avro_node_t *n, const char *space)
{
    if (w->rc != CAIRN_OK)
        return;
    switch (n->kind) {
    case CAIRN_AVRO_RECORD:
    case CAIRN_AVRO_ENUM:
    case CAIRN_AVRO_FIXED:
        put_named(w, n, space);
        return;
    case CAIRN_AVRO_ARRAY:
    case CAIRN_AVRO_MAP: {
        bool arr = n->kind == CAIRN_AVRO_ARRAY;
        puts_(w, arr ? "{\"type\":\"array\",\"items\":" : "{\"type\":\"map\",\"values\":");
        put_node(w, n->items, space);
        put_props(w, n->props);
        puts_(w, "}");
        return;
    }
    case CAIRN_AVRO_UNION:
        puts_(w, "[");
        for (uint32_t i = 0; i < n->nbranches; i++) {
            if (i)
                puts_(w, ",");
            put_node(w, n->branches[i], space);
        }
        puts_(w, "]");
        return;
    default:
        if (!n->props || w->form == CAIRN_AVRO_FORM_PCF) {
            put_cstr(w, cairn__avro_kind_name(n->kind));
            return;
        }
        puts_(w, "{\"type\":");
        put_cstr(w, cairn__avro_kind_name(n->kind));
        put_props(w, n->props);
        puts_(w, "}");
        return;
    }
}

cairn_rc_t
cairn__avro_write(const cairn_avro_model_t *m, cairn_avro_form_t form, char **out, size_t *len)
{
    wctx_t w = {.m = m, .form = form};
    /* Output is bounded by the input's size times a small factor; the cap
     * only guards against a bug turning into unbounded growth. */
    cairn_buf_init(&w.b, (size_t)1 << 30);
    put_node(&w, m->root, NULL);
    cairn__free(w.seen);
    if (w.rc != CAIRN_OK) {
        cairn_buf_release(&w.b);
        *out = NULL;
        return w.rc == CAIRN_E_INVALID_TOO_LARGE ? CAIRN_E_NOMEM : w.rc;
    }
    *out = cairn_buf_detach(&w.b, len);
    return *out ? CAIRN_OK : CAIRN_E_NOMEM;
}

/* ---- fingerprint ------------------------------------------------------ */

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ull

uint64_t cairn__avro_crc64(const void *data, size_t len)
{
    uint64_t table[256];
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (0 - (fp & 1)));
        table[i] = fp;
    }
    const unsigned char *p = data;
    uint64_t fp = CRC64_AVRO_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ table[(fp ^ p[i]) & 0xff];
    return fp;
}
