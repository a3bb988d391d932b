/* SPDX-License-Identifier: MIT */
/*
 * avro_decode.c - Avro binary to the SDK's JSON form (docs/JSON-FORM.md),
 * resolving data written with one schema to another by the spec's rules,
 * over Cairn's own schema model (never avro-c's resolver).
 *
 * A resolver is a graph of plan nodes, one per (reader node, writer node)
 * pair met while walking both schemas, built once and shared: a recursive
 * record refers back to its own plan, so cycles are allowed and the plan is
 * finite. A plan node with no reader skips writer data (a field the reader
 * dropped). Per record, a plan lists the writer's fields in writer order,
 * each read into a reader field or skipped, and the reader-only fields with
 * their defaults already turned into the JSON form, copied into each value.
 * Output members come in the reader's field order.
 *
 * The input is untrusted (it comes off a topic): every length is checked
 * against what remains before anything is read or allocated, varints are at
 * most 10 bytes (5 for an int), values nest at most CAIRN_AVRO_MAX_DEPTH
 * records, arrays and maps deep, strings must be valid UTF-8, and an array
 * or map block count must fit in the remaining bytes (at one byte an item
 * at least, or a fixed cap for items that take no bytes, such as nulls).
 * Errors carry the JSON pointer of the output member in err->where.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_codec.h"

/* Items of an array whose items take no bytes (nulls, empty records). */
#define ZERO_SIZE_ITEMS_MAX (1u << 20)
/* Longest decimal (unscaled, in bytes) turned into text. */
#define DECIMAL_MAX_BYTES 512
/* A path segment whose length is taken only when an error is formatted. */
#define LAZY_LEN      ((size_t)-1)
#define PATH_MAX_SEGS (2 * CAIRN_AVRO_MAX_DEPTH + 8)

typedef enum op {
    OP_SKIP, /* no reader: consume writer data of `w` */
    OP_NULL,
    OP_BOOL,
    OP_INT,  /* writer int -> JSON integer */
    OP_LONG, /* writer long -> JSON integer */
    OP_INT_REAL,
    OP_LONG_REAL,
    OP_FLOAT_REAL,
    OP_DOUBLE_REAL,
    OP_STRING, /* writer string or bytes -> string (UTF-8 checked) */
    OP_BYTES,  /* writer bytes, string or fixed -> bytes as code points */
    OP_DECIMAL,
    OP_ENUM,
    OP_ARRAY,
    OP_MAP,
    OP_RECORD,
    OP_WUNION, /* writer union: per writer branch a plan */
    OP_RUNION, /* reader union, writer not: one branch, maybe wrapped */
} op_t;

typedef struct plan plan_t;

typedef struct step {
    int32_t rfield; /* reader field index, or -1 to skip */
    const char *name;
    plan_t *plan;
} step_t;

typedef struct dflt {
    uint32_t rfield;
    json_t *value; /* in the JSON form */
} dflt_t;

struct plan {
    op_t op;
    bool reader_float;          /* OP_*_REAL into a float: round to float */
    bool fixed_in;              /* writer value is a fixed of `size` bytes */
    const cairn_avro_node_t *r; /* NULL for OP_SKIP */
    const cairn_avro_node_t *w;
    int64_t size;     /* writer fixed size */
    int32_t scale;    /* decimal */
    size_t minsize;   /* fewest bytes a writer value takes */
    plan_t *child;    /* array items, map values, union branch */
    const char *wrap; /* OP_RUNION: member name when wrapped, else NULL */
    step_t *steps;
    uint32_t nsteps;
    dflt_t *defs;
    uint32_t ndefs;
    size_t *name_len; /* OP_RECORD: length of each reader field name */
    int32_t *map;     /* OP_ENUM: writer symbol -> reader symbol or -1 */
    uint32_t nmap;
    plan_t **branches; /* OP_WUNION, one per writer branch (NULL: unreadable) */
    uint32_t nbranches;
    plan_t *next_owned;
};

struct cairn_avro_resolver {
    plan_t *root;
    plan_t *owned;
};

/* ---- the JSON form of a union ----------------------------------------- */

/* The JSON kind a branch's values take: 0 null, 1 number, 2 string, 3
 * object, 4 array, 5 boolean. */
static int json_class(const cairn_avro_node_t *b)
{
    switch (b->kind) {
    case CAIRN_AVRO_NULL:
        return 0;
    case CAIRN_AVRO_INT:
    case CAIRN_AVRO_LONG:
    case CAIRN_AVRO_FLOAT:
    case CAIRN_AVRO_DOUBLE:
        return 1;
    case CAIRN_AVRO_STRING:
    case CAIRN_AVRO_BYTES:
    case CAIRN_AVRO_FIXED:
    case CAIRN_AVRO_ENUM:
        return 2;
    case CAIRN_AVRO_RECORD:
    case CAIRN_AVRO_MAP:
        return 3;
    case CAIRN_AVRO_ARRAY:
        return 4;
    default:
        return 5;
    }
}

/* Written wrapped when two non-null branches share a JSON kind (avsc's
 * wrapUnions 'auto'). */
static bool union_wraps(const cairn_avro_node_t *u)
{
    unsigned seen = 0;
    for (uint32_t i = 0; i < u->nbranches; i++) {
        int k = json_class(u->branches[i]);
        if (k == 0)
            continue;
        if (seen & (1u << k))
            return true;
        seen |= 1u << k;
    }
    return false;
}

static const char *type_name(const cairn_avro_node_t *s)
{
    return s->fullname ? s->fullname : cairn__avro_kind_name(s->kind);
}

/* ---- decimals ---------------------------------------------------------- */

/* Two's-complement big-endian @p b as a decimal text at @p scale, into @p dst
 * (room for DECIMAL_MAX_BYTES * 3 + 8). */
static size_t decimal_text(const uint8_t *b, size_t n, int32_t scale, char *dst)
{
    uint8_t mag[DECIMAL_MAX_BYTES];
    bool neg = n && (b[0] & 0x80);
    memcpy(mag, b, n);
    if (neg) {
        unsigned carry = 1;
        for (size_t j = n; j-- > 0;) {
            unsigned x = (unsigned)(uint8_t)~mag[j] + carry;
            mag[j] = (uint8_t)x;
            carry = x >> 8;
        }
    }
    /* Base 10^9 digits by repeated division, least significant first. */
    uint32_t chunks[DECIMAL_MAX_BYTES / 3 + 2];
    size_t nc = 0, start = 0;
    while (start < n && mag[start] == 0)
        start++;
    while (start < n) {
        uint64_t rem = 0;
        for (size_t j = start; j < n; j++) {
            uint64_t x = (rem << 8) | mag[j];
            mag[j] = (uint8_t)(x / 1000000000u);
            rem = x % 1000000000u;
        }
        chunks[nc++] = (uint32_t)rem;
        while (start < n && mag[start] == 0)
            start++;
    }
    char digits[DECIMAL_MAX_BYTES * 3 + 16];
    size_t nd = 0;
    if (nc == 0) {
        digits[nd++] = '0';
    } else {
        nd = (size_t)snprintf(digits, sizeof digits, "%" PRIu32, chunks[nc - 1]);
        for (size_t j = nc - 1; j-- > 0;)
            nd += (size_t)snprintf(digits + nd, sizeof digits - nd, "%09" PRIu32, chunks[j]);
    }
    size_t o = 0;
    if (neg)
        dst[o++] = '-';
    size_t sc = scale > 0 ? (size_t)scale : 0;
    if (nd <= sc) {
        dst[o++] = '0';
        dst[o++] = '.';
        for (size_t j = nd; j < sc; j++)
            dst[o++] = '0';
        memcpy(dst + o, digits, nd);
        o += nd;
    } else {
        memcpy(dst + o, digits, nd - sc);
        o += nd - sc;
        if (sc) {
            dst[o++] = '.';
            memcpy(dst + o, digits + nd - sc, sc);
            o += sc;
        }
    }
    dst[o] = '\0';
    return o;
}

/* Bytes as a string of code points U+0000..U+00FF (Avro's JSON encoding). */
static json_t *latin1_string(const uint8_t *p, size_t n, char *tmp)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            tmp[o++] = (char)p[i];
        } else {
            tmp[o++] = (char)(0xc0 | (p[i] >> 6));
            tmp[o++] = (char)(0x80 | (p[i] & 0x3f));
        }
    }
    return json_stringn_nocheck(tmp, o);
}

/* ---- defaults in the JSON form ----------------------------------------- */

static json_t *real_or_text(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/*
 * A default (Avro's JSON encoding, checked by the parser) as the JSON form
 * of reader type @p t: unions take their first branch, bytes of a decimal
 * become its number, floats become reals. NULL when out of memory.
 */
static json_t *default_form(const cairn_avro_node_t *t, const json_t *d, unsigned depth)
{
    if (depth > CAIRN_AVRO_MAX_DEPTH)
        return NULL;
    switch (t->kind) {
    case CAIRN_AVRO_FLOAT:
    case CAIRN_AVRO_DOUBLE:
        if (json_is_number(d))
            return real_or_text(t->kind == CAIRN_AVRO_FLOAT ? (double)(float)json_number_value(d)
                                                            : json_number_value(d));
        return json_deep_copy(d);
    case CAIRN_AVRO_BYTES:
    case CAIRN_AVRO_FIXED:
        if (t->logical == CAIRN_AVRO_LT_DECIMAL && json_is_string(d)) {
            const char *s = json_string_value(d);
            size_t len = json_string_length(d), n = 0;
            uint8_t bytes[DECIMAL_MAX_BYTES];
            for (size_t i = 0; i < len && n < sizeof bytes; i++, n++) {
                unsigned char ch = (unsigned char)s[i];
                if (ch >= 0xc0 && i + 1 < len)
                    bytes[n] = (uint8_t)(((ch & 0x03) << 6) | ((unsigned char)s[++i] & 0x3f));
                else
                    bytes[n] = ch;
            }
            char text[DECIMAL_MAX_BYTES * 3 + 16];
            decimal_text(bytes, n, t->scale, text);
            return json_string(text);
        }
        return json_deep_copy(d);
    case CAIRN_AVRO_UNION: {
        if (t->nbranches == 0)
            return NULL;
        json_t *v = default_form(t->branches[0], d, depth + 1);
        if (!v || t->branches[0]->kind == CAIRN_AVRO_NULL || !union_wraps(t))
            return v;
        json_t *w = json_object();
        if (!w || json_object_set_new(w, type_name(t->branches[0]), v) != 0) {
            json_decref(w);
            return NULL;
        }
        return w;
    }
    case CAIRN_AVRO_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < json_array_size(d); i++) {
            if (json_array_append_new(a, default_form(t->items, json_array_get(d, i), depth + 1)) !=
                0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case CAIRN_AVRO_MAP: {
        json_t *o = json_object();
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)(uintptr_t)d, k, e)
        {
            if (o && json_object_set_new(o, k, default_form(t->items, e, depth + 1)) != 0) {
                json_decref(o);
                o = NULL;
            }
        }
        return o;
    }
    case CAIRN_AVRO_RECORD: {
        json_t *o = json_object();
        for (uint32_t i = 0; o && i < t->nfields; i++) {
            const json_t *fv = json_object_get(d, t->fields[i].name);
            if (!fv)
                fv = t->fields[i].def;
            if (!fv || json_object_set_new(o, t->fields[i].name,
                                           default_form(t->fields[i].type, fv, depth + 1)) != 0) {
                json_decref(o);
                o = NULL;
            }
        }
        return o;
    }
    default:
        return json_deep_copy(d);
    }
}

/* ---- building the plan ------------------------------------------------- */

typedef struct bctx {
    cairn_avro_resolver_t *res;
    cairn_error_t *err;
} bctx_t;

static cairn_rc_t
plan_for(bctx_t *b, const cairn_avro_node_t *r, const cairn_avro_node_t *w, plan_t **out);

static plan_t *plan_find(const bctx_t *b, const cairn_avro_node_t *r, const cairn_avro_node_t *w)
{
    for (plan_t *p = b->res->owned; p; p = p->next_owned) {
        if (p->r == r && p->w == w)
            return p;
    }
    return NULL;
}

static cairn_rc_t nomem(bctx_t *b)
{
    return cairn__error_set(b->err, CAIRN_E_NOMEM, 0, NULL, "out of memory building a resolver");
}

static cairn_rc_t incompatible(bctx_t *b, const cairn_avro_node_t *r, const cairn_avro_node_t *w)
{
    return cairn__error_set(b->err, CAIRN_E_INCOMPATIBLE, 0, NULL, "%s cannot read %s",
                            type_name(r), type_name(w));
}

static cairn_rc_t plan_record(bctx_t *b, plan_t *p)
{
    const cairn_avro_node_t *r = p->r, *w = p->w;
    cairn_rc_t rc = CAIRN_OK;
    bool *fed = NULL;
    p->nsteps = w->nfields;
    if (w->nfields && !(p->steps = cairn__calloc(w->nfields, sizeof *p->steps)))
        return nomem(b);
    if (r && r->nfields &&
        (!(fed = cairn__calloc(r->nfields, sizeof *fed)) ||
         !(p->name_len = cairn__calloc(r->nfields, sizeof *p->name_len)))) {
        cairn__free(fed);
        return nomem(b);
    }
    for (uint32_t i = 0; r && i < r->nfields; i++)
        p->name_len[i] = strlen(r->fields[i].name);
    for (uint32_t i = 0; i < w->nfields; i++) {
        p->steps[i].rfield = -1;
        p->steps[i].name = w->fields[i].name;
    }
    for (uint32_t i = 0; r && i < r->nfields; i++) {
        long wi = cairn__avro_writer_field(&r->fields[i], w);
        if (wi >= 0 && p->steps[wi].rfield < 0) {
            p->steps[wi].rfield = (int32_t)i;
            p->steps[wi].name = r->fields[i].name;
            fed[i] = true;
        }
    }
    for (uint32_t i = 0; i < w->nfields; i++) {
        int32_t ri = p->steps[i].rfield;
        if ((rc = plan_for(b, ri >= 0 ? r->fields[ri].type : NULL, w->fields[i].type,
                           &p->steps[i].plan)) != CAIRN_OK)
            goto out;
        p->minsize += p->steps[i].plan->minsize;
    }
    for (uint32_t i = 0; r && i < r->nfields; i++) {
        if (fed[i])
            continue;
        if (!r->fields[i].def) {
            rc = cairn__error_set(b->err, CAIRN_E_INCOMPATIBLE, 0, NULL,
                                  "field \"%s\" of %s has no default and is not written",
                                  r->fields[i].name, r->fullname);
            goto out;
        }
        if (!p->defs && !(p->defs = cairn__calloc(r->nfields, sizeof *p->defs))) {
            rc = nomem(b);
            goto out;
        }
        json_t *v = default_form(r->fields[i].type, r->fields[i].def, 0);
        if (!v) {
            rc = nomem(b);
            goto out;
        }
        p->defs[p->ndefs].rfield = i;
        p->defs[p->ndefs++].value = v;
    }
out:
    cairn__free(fed);
    return rc;
}

static cairn_rc_t plan_enum(bctx_t *b, plan_t *p)
{
    const cairn_avro_node_t *r = p->r, *w = p->w;
    p->nmap = w->nsymbols;
    if (w->nsymbols && !(p->map = cairn__calloc(w->nsymbols, sizeof *p->map)))
        return nomem(b);
    int32_t def = -1;
    for (uint32_t k = 0; r->enum_default && k < r->nsymbols; k++) {
        if (strcmp(r->symbols[k], r->enum_default) == 0)
            def = (int32_t)k;
    }
    for (uint32_t i = 0; i < w->nsymbols; i++) {
        p->map[i] = def;
        for (uint32_t k = 0; k < r->nsymbols; k++) {
            if (strcmp(r->symbols[k], w->symbols[i]) == 0) {
                p->map[i] = (int32_t)k;
                break;
            }
        }
    }
    return CAIRN_OK;
}

/* Fills in @p p (registered already, so cycles find it) for its pair. */
static cairn_rc_t plan_fill(bctx_t *b, plan_t *p)
{
    const cairn_avro_node_t *r = p->r, *w = p->w;
    cairn_rc_t rc = CAIRN_OK;
    switch (w->kind) {
    case CAIRN_AVRO_NULL:
        p->minsize = 0;
        break;
    case CAIRN_AVRO_FLOAT:
        p->minsize = 4;
        break;
    case CAIRN_AVRO_DOUBLE:
        p->minsize = 8;
        break;
    case CAIRN_AVRO_FIXED:
        p->minsize = (size_t)w->size;
        p->fixed_in = true;
        p->size = w->size;
        break;
    case CAIRN_AVRO_RECORD:
        p->minsize = 0; /* summed from the fields below */
        break;
    default:
        p->minsize = 1;
        break;
    }
    if (w->kind == CAIRN_AVRO_UNION) {
        p->op = OP_WUNION;
        p->nbranches = w->nbranches;
        if (w->nbranches && !(p->branches = cairn__calloc(w->nbranches, sizeof *p->branches)))
            return nomem(b);
        for (uint32_t i = 0; i < w->nbranches; i++) {
            if (r && r->kind != CAIRN_AVRO_UNION &&
                cairn__avro_can_read(r, w->branches[i], NULL) != CAIRN_OK)
                continue; /* an error if the data ever takes this branch */
            if ((rc = plan_for(b, r, w->branches[i], &p->branches[i])) != CAIRN_OK)
                return rc;
        }
        return CAIRN_OK;
    }
    if (!r) {
        p->op = OP_SKIP;
        switch (w->kind) {
        case CAIRN_AVRO_ARRAY:
        case CAIRN_AVRO_MAP:
            return plan_for(b, NULL, w->items, &p->child);
        case CAIRN_AVRO_RECORD:
            return plan_record(b, p);
        default:
            return CAIRN_OK;
        }
    }
    if (r->kind == CAIRN_AVRO_UNION) {
        long bi = cairn__avro_union_branch(r, w);
        if (bi < 0)
            return incompatible(b, r, w);
        p->op = OP_RUNION;
        const cairn_avro_node_t *rb = r->branches[bi];
        if (rb->kind != CAIRN_AVRO_NULL && union_wraps(r))
            p->wrap = type_name(rb);
        if ((rc = plan_for(b, rb, w, &p->child)) != CAIRN_OK)
            return rc;
        p->minsize = p->child->minsize;
        return CAIRN_OK;
    }
    if (!cairn__avro_promotes(r->kind, w->kind))
        return incompatible(b, r, w);
    bool decimal = r->logical == CAIRN_AVRO_LT_DECIMAL &&
                   (w->kind == CAIRN_AVRO_BYTES || w->kind == CAIRN_AVRO_FIXED);
    switch (r->kind) {
    case CAIRN_AVRO_NULL:
        p->op = OP_NULL;
        break;
    case CAIRN_AVRO_BOOLEAN:
        p->op = OP_BOOL;
        break;
    case CAIRN_AVRO_INT:
        p->op = OP_INT;
        break;
    case CAIRN_AVRO_LONG:
        p->op = w->kind == CAIRN_AVRO_INT ? OP_INT : OP_LONG;
        break;
    case CAIRN_AVRO_FLOAT:
    case CAIRN_AVRO_DOUBLE:
        p->reader_float = r->kind == CAIRN_AVRO_FLOAT;
        p->op = w->kind == CAIRN_AVRO_INT     ? OP_INT_REAL
                : w->kind == CAIRN_AVRO_LONG  ? OP_LONG_REAL
                : w->kind == CAIRN_AVRO_FLOAT ? OP_FLOAT_REAL
                                              : OP_DOUBLE_REAL;
        break;
    case CAIRN_AVRO_STRING:
        p->op = OP_STRING;
        break;
    case CAIRN_AVRO_BYTES:
    case CAIRN_AVRO_FIXED:
        if (r->kind == CAIRN_AVRO_FIXED &&
            (w->kind != CAIRN_AVRO_FIXED || w->size != r->size || !cairn__avro_names_match(r, w)))
            return incompatible(b, r, w);
        p->op = decimal ? OP_DECIMAL : OP_BYTES;
        /* The writer's scale keeps the value when both are decimals. */
        p->scale = w->logical == CAIRN_AVRO_LT_DECIMAL ? w->scale : r->scale;
        break;
    case CAIRN_AVRO_ENUM:
        if (!cairn__avro_names_match(r, w))
            return incompatible(b, r, w);
        p->op = OP_ENUM;
        return plan_enum(b, p);
    case CAIRN_AVRO_ARRAY:
        p->op = OP_ARRAY;
        return plan_for(b, r->items, w->items, &p->child);
    case CAIRN_AVRO_MAP:
        p->op = OP_MAP;
        return plan_for(b, r->items, w->items, &p->child);
    case CAIRN_AVRO_RECORD:
        if (!cairn__avro_names_match(r, w))
            return incompatible(b, r, w);
        p->op = OP_RECORD;
        return plan_record(b, p);
    case CAIRN_AVRO_UNION:
        break;
    }
    return CAIRN_OK;
}

static cairn_rc_t
plan_for(bctx_t *b, const cairn_avro_node_t *r, const cairn_avro_node_t *w, plan_t **out)
{
    plan_t *p = plan_find(b, r, w);
    if (p) {
        *out = p;
        return CAIRN_OK;
    }
    if (!(p = cairn__calloc(1, sizeof *p)))
        return nomem(b);
    p->r = r;
    p->w = w;
    p->next_owned = b->res->owned;
    b->res->owned = p;
    *out = p;
    return plan_fill(b, p);
}

void cairn__avro_resolver_free(cairn_avro_resolver_t *r)
{
    if (!r)
        return;
    for (plan_t *p = r->owned, *next; p; p = next) {
        next = p->next_owned;
        for (uint32_t i = 0; i < p->ndefs; i++)
            json_decref(p->defs[i].value);
        cairn__free(p->defs);
        cairn__free(p->steps);
        cairn__free(p->name_len);
        cairn__free(p->map);
        cairn__free(p->branches);
        cairn__free(p);
    }
    cairn__free(r);
}

cairn_rc_t cairn__avro_resolver_new(const cairn_avro_node_t *reader,
                                    const cairn_avro_node_t *writer,
                                    cairn_avro_resolver_t **out,
                                    cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    *out = NULL;
    cairn_avro_resolver_t *res = cairn__calloc(1, sizeof *res);
    if (!res)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory building a resolver");
    if (reader != writer) {
        rc = cairn__avro_can_read(reader, writer, &reasons);
        if (rc == CAIRN_E_INCOMPATIBLE) {
            cairn__error_set(err, rc, 0, NULL, "%s",
                             reasons.n ? reasons.items[0] : "reader cannot read the writer");
            goto out;
        }
        if (rc != CAIRN_OK) {
            cairn__error_set(err, rc, 0, NULL, "out of memory checking compatibility");
            goto out;
        }
    }
    bctx_t b = {res, err};
    if ((rc = plan_for(&b, reader, writer, &res->root)) != CAIRN_OK)
        goto out;
    *out = res;
    res = NULL;
out:
    cairn_strlist_release(&reasons);
    cairn__avro_resolver_free(res);
    return rc;
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct seg {
    const char *s; /* NULL for an array index */
    size_t len;
    size_t idx;
} seg_t;

typedef struct dctx {
    const uint8_t *p, *end;
    cairn_error_t *err;
    unsigned depth;
    unsigned npath;
    char *tmp; /* scratch for bytes as code points */
    size_t tmp_cap;
    seg_t path[PATH_MAX_SEGS];
} dctx_t;

static void push_key(dctx_t *c, const char *s, size_t len)
{
    if (c->npath < PATH_MAX_SEGS)
        c->path[c->npath] = (seg_t){s, len, 0};
    c->npath++;
}

static void push_idx(dctx_t *c, size_t i)
{
    if (c->npath < PATH_MAX_SEGS)
        c->path[c->npath] = (seg_t){NULL, 0, i};
    c->npath++;
}

static cairn_rc_t bad(dctx_t *c, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static cairn_rc_t bad(dctx_t *c, const char *fmt, ...)
{
    char where[sizeof c->err->where], msg[320];
    size_t n = 0, cap = sizeof where;
    unsigned segs = c->npath < PATH_MAX_SEGS ? c->npath : PATH_MAX_SEGS;
    where[0] = '\0';
    for (unsigned i = 0; i < segs && n + 2 < cap; i++) {
        where[n++] = '/';
        if (!c->path[i].s) {
            int w = snprintf(where + n, cap - n, "%zu", c->path[i].idx);
            n = w < 0 ? n : (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
            continue;
        }
        size_t slen = c->path[i].len == LAZY_LEN ? strlen(c->path[i].s) : c->path[i].len;
        for (size_t k = 0; k < slen && n + 3 < cap; k++) {
            char ch = c->path[i].s[k];
            if (ch == '~' || ch == '/') {
                where[n++] = '~';
                where[n++] = ch == '~' ? '0' : '1';
            } else {
                where[n++] = ch;
            }
        }
    }
    where[n < cap ? n : cap - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cairn__error_set(c->err, CAIRN_E_INVALID, 0, where, "%s", msg);
}

static cairn_rc_t oom(dctx_t *c)
{
    return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory decoding avro");
}

static inline cairn_rc_t read_varint(dctx_t *c, unsigned maxbytes, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < maxbytes; i++) {
        if (c->p == c->end)
            return bad(c, "truncated data");
        uint8_t x = *c->p++;
        v |= (uint64_t)(x & 0x7f) << (7 * i);
        if (!(x & 0x80)) {
            if (i == maxbytes - 1 && (x >> (maxbytes == 10 ? 1 : 4)))
                return bad(c, "varint overflows %s", maxbytes == 10 ? "long" : "int");
            *out = v;
            return CAIRN_OK;
        }
    }
    return bad(c, "varint longer than %u bytes", maxbytes);
}

static inline cairn_rc_t read_long(dctx_t *c, int64_t *out)
{
    uint64_t z = 0;
    cairn_rc_t rc;
    if (c->p < c->end && !(*c->p & 0x80)) { /* one-byte fast path */
        z = *c->p++;
    } else if ((rc = read_varint(c, 10, &z)) != CAIRN_OK) {
        return rc;
    }
    *out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    return CAIRN_OK;
}

static inline cairn_rc_t read_int(dctx_t *c, int64_t *out)
{
    uint64_t z = 0;
    cairn_rc_t rc;
    if (c->p < c->end && !(*c->p & 0x80)) {
        z = *c->p++;
    } else if ((rc = read_varint(c, 5, &z)) != CAIRN_OK) {
        return rc;
    }
    *out = (int64_t)(int32_t)((uint32_t)(z >> 1) ^ -(uint32_t)(z & 1));
    return CAIRN_OK;
}

/* A length prefix, checked against the bytes that remain. */
static inline cairn_rc_t read_len(dctx_t *c, size_t *out)
{
    int64_t n;
    cairn_rc_t rc = read_long(c, &n);
    if (rc != CAIRN_OK)
        return rc;
    if (n < 0)
        return bad(c, "negative length %" PRId64, n);
    if ((uint64_t)n > (uint64_t)(c->end - c->p))
        return bad(c, "length %" PRId64 " exceeds the %zu bytes left", n, (size_t)(c->end - c->p));
    *out = (size_t)n;
    return CAIRN_OK;
}

/* The raw bytes of a bytes, string or fixed value. */
static cairn_rc_t read_blob(dctx_t *c, const plan_t *p, const uint8_t **out, size_t *n)
{
    cairn_rc_t rc;
    if (p->fixed_in) {
        if ((uint64_t)p->size > (uint64_t)(c->end - c->p))
            return bad(c, "truncated data");
        *n = (size_t)p->size;
    } else if ((rc = read_len(c, n)) != CAIRN_OK) {
        return rc;
    }
    *out = c->p;
    c->p += *n;
    return CAIRN_OK;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Eight ASCII bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t ch = s[i];
        if (ch < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (ch >= 0xc2 && ch <= 0xdf) {
            need = 1;
            cp = ch & 0x1f;
        } else if (ch >= 0xe0 && ch <= 0xef) {
            need = 2;
            cp = ch & 0x0f;
        } else if (ch >= 0xf0 && ch <= 0xf4) {
            need = 3;
            cp = ch & 0x07;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

static char *scratch(dctx_t *c, size_t n)
{
    if (n <= c->tmp_cap)
        return c->tmp;
    size_t cap = c->tmp_cap ? c->tmp_cap : 256;
    while (cap < n)
        cap *= 2;
    char *t = cairn__realloc(c->tmp, cap);
    if (!t)
        return NULL;
    c->tmp = t;
    c->tmp_cap = cap;
    return t;
}

static json_t *real_json(double d)
{
    if (isfinite(d))
        return json_real(d);
    return real_or_text(d);
}

static cairn_rc_t dec(dctx_t *c, const plan_t *p, json_t **out);
static cairn_rc_t skip(dctx_t *c, const plan_t *p);

/* An array or map block count, bounded by the bytes left (JSON-FORM.md). */
static cairn_rc_t
read_count(dctx_t *c, const plan_t *item, size_t per_entry, size_t *total, int64_t *count)
{
    cairn_rc_t rc = read_long(c, count);
    if (rc != CAIRN_OK)
        return rc;
    if (*count < 0) {
        int64_t bytes;
        if (*count == INT64_MIN)
            return bad(c, "block count out of range");
        *count = -*count;
        if ((rc = read_long(c, &bytes)) != CAIRN_OK)
            return rc;
        if (bytes < 0)
            return bad(c, "negative block size");
    }
    size_t each = (item ? item->minsize : 0) + per_entry;
    uint64_t left = (uint64_t)(c->end - c->p);
    if (each ? (uint64_t)*count > left / each : (uint64_t)*count > ZERO_SIZE_ITEMS_MAX - *total)
        return bad(c, "block count %" PRId64 " exceeds the data", *count);
    *total += (size_t)*count;
    return CAIRN_OK;
}

static cairn_rc_t dec_array(dctx_t *c, const plan_t *p, json_t **out)
{
    json_t *a = json_array();
    cairn_rc_t rc = CAIRN_OK;
    size_t total = 0;
    if (!a)
        return oom(c);
    for (;;) {
        int64_t n;
        if ((rc = read_count(c, p->child, 0, &total, &n)) != CAIRN_OK)
            goto out;
        if (n == 0)
            break;
        for (int64_t i = 0; i < n; i++) {
            json_t *v;
            push_idx(c, json_array_size(a));
            rc = dec(c, p->child, &v);
            c->npath--;
            if (rc != CAIRN_OK)
                goto out;
            if (json_array_append_new(a, v) != 0) {
                rc = oom(c);
                goto out;
            }
        }
    }
out:
    if (rc != CAIRN_OK) {
        json_decref(a);
        a = NULL;
    }
    *out = a;
    return rc;
}

static cairn_rc_t dec_map(dctx_t *c, const plan_t *p, json_t **out)
{
    json_t *o = json_object();
    cairn_rc_t rc = CAIRN_OK;
    size_t total = 0;
    if (!o)
        return oom(c);
    for (;;) {
        int64_t n;
        if ((rc = read_count(c, p->child, 1, &total, &n)) != CAIRN_OK)
            goto out;
        if (n == 0)
            break;
        for (int64_t i = 0; i < n; i++) {
            size_t klen = 0;
            if ((rc = read_len(c, &klen)) != CAIRN_OK)
                goto out;
            const uint8_t *k = c->p;
            c->p += klen;
            push_key(c, (const char *)k, klen);
            if (!utf8_valid(k, klen) || memchr(k, 0, klen)) {
                rc = bad(c, "map key is not valid UTF-8 text");
                c->npath--;
                goto out;
            }
            json_t *v;
            rc = dec(c, p->child, &v);
            c->npath--;
            if (rc != CAIRN_OK)
                goto out;
            if (json_object_setn_new_nocheck(o, (const char *)k, klen, v) != 0) {
                rc = oom(c);
                goto out;
            }
        }
    }
out:
    if (rc != CAIRN_OK) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    return rc;
}

static cairn_rc_t dec_record(dctx_t *c, const plan_t *p, json_t **out)
{
    const cairn_avro_node_t *r = p->r;
    json_t *stackv[32];
    json_t **vals = stackv;
    cairn_rc_t rc = CAIRN_OK;
    json_t *o = NULL;
    if (r->nfields > 32 && !(vals = cairn__calloc(r->nfields, sizeof *vals)))
        return oom(c);
    for (uint32_t i = 0; i < r->nfields; i++)
        vals[i] = NULL;
    for (uint32_t i = 0; i < p->nsteps; i++) {
        const step_t *st = &p->steps[i];
        push_key(c, st->name, LAZY_LEN);
        rc = st->rfield >= 0 ? dec(c, st->plan, &vals[st->rfield]) : skip(c, st->plan);
        c->npath--;
        if (rc != CAIRN_OK)
            goto out;
    }
    for (uint32_t i = 0; i < p->ndefs; i++) {
        if (!(vals[p->defs[i].rfield] = json_deep_copy(p->defs[i].value))) {
            rc = oom(c);
            goto out;
        }
    }
    if (!(o = json_object())) {
        rc = oom(c);
        goto out;
    }
    for (uint32_t i = 0; i < r->nfields; i++) {
        json_t *v = vals[i];
        vals[i] = NULL;
        if (json_object_setn_new_nocheck(o, r->fields[i].name, p->name_len[i], v) != 0) {
            rc = oom(c);
            goto out;
        }
    }
out:
    if (rc != CAIRN_OK) {
        for (uint32_t i = 0; i < r->nfields; i++)
            json_decref(vals[i]);
        json_decref(o);
        o = NULL;
    }
    if (vals != stackv)
        cairn__free(vals);
    *out = o;
    return rc;
}

static cairn_rc_t dec_union_index(dctx_t *c, const plan_t *p, int64_t *idx)
{
    cairn_rc_t rc = read_long(c, idx);
    if (rc != CAIRN_OK)
        return rc;
    if (*idx < 0 || *idx >= (int64_t)p->w->nbranches)
        return bad(c, "union index %" PRId64 " out of range (%" PRIu32 " branches)", *idx,
                   p->w->nbranches);
    return CAIRN_OK;
}

static cairn_rc_t dec(dctx_t *c, const plan_t *p, json_t **out)
{
    cairn_rc_t rc;
    int64_t x = 0;
    json_t *v = NULL;
    *out = NULL;
    switch (p->op) {
    case OP_SKIP:
        return skip(c, p);
    case OP_NULL:
        *out = json_null();
        return CAIRN_OK;
    case OP_BOOL:
        if (c->p == c->end)
            return bad(c, "truncated data");
        if (*c->p > 1)
            return bad(c, "boolean byte %u is neither 0 nor 1", *c->p);
        *out = json_boolean(*c->p++);
        return CAIRN_OK;
    case OP_INT:
    case OP_INT_REAL:
        if ((rc = read_int(c, &x)) != CAIRN_OK)
            return rc;
        v = p->op == OP_INT ? json_integer(x)
                            : real_json(p->reader_float ? (double)(float)x : (double)x);
        break;
    case OP_LONG:
    case OP_LONG_REAL:
        if ((rc = read_long(c, &x)) != CAIRN_OK)
            return rc;
        v = p->op == OP_LONG ? json_integer(x)
                             : real_json(p->reader_float ? (double)(float)x : (double)x);
        break;
    case OP_FLOAT_REAL: {
        if (c->end - c->p < 4)
            return bad(c, "truncated data");
        uint32_t u = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 |
                     (uint32_t)c->p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        c->p += 4;
        v = real_json((double)f);
        break;
    }
    case OP_DOUBLE_REAL: {
        if (c->end - c->p < 8)
            return bad(c, "truncated data");
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | c->p[i];
        double d;
        memcpy(&d, &u, 8);
        c->p += 8;
        v = real_json(p->reader_float ? (double)(float)d : d);
        break;
    }
    case OP_STRING: {
        const uint8_t *s;
        size_t n = 0;
        if ((rc = read_blob(c, p, &s, &n)) != CAIRN_OK)
            return rc;
        if (!utf8_valid(s, n))
            return bad(c, "string is not valid UTF-8");
        v = json_stringn_nocheck((const char *)s, n);
        break;
    }
    case OP_BYTES: {
        const uint8_t *s;
        size_t n = 0;
        if ((rc = read_blob(c, p, &s, &n)) != CAIRN_OK)
            return rc;
        char *t = scratch(c, 2 * n + 1);
        if (!t)
            return oom(c);
        v = latin1_string(s, n, t);
        break;
    }
    case OP_DECIMAL: {
        const uint8_t *s;
        size_t n = 0;
        if ((rc = read_blob(c, p, &s, &n)) != CAIRN_OK)
            return rc;
        if (n > DECIMAL_MAX_BYTES)
            return bad(c, "decimal of %zu bytes is too long", n);
        char text[DECIMAL_MAX_BYTES * 3 + 16];
        decimal_text(s, n, p->scale, text);
        v = json_string(text);
        break;
    }
    case OP_ENUM:
        if ((rc = read_int(c, &x)) != CAIRN_OK)
            return rc;
        if (x < 0 || x >= (int64_t)p->nmap)
            return bad(c, "enum index %" PRId64 " out of range (%" PRIu32 " symbols)", x, p->nmap);
        if (p->map[x] < 0)
            return bad(c, "symbol \"%s\" is not in enum %s and it has no default", p->w->symbols[x],
                       p->r->name);
        v = json_string(p->r->symbols[p->map[x]]);
        break;
    case OP_ARRAY:
    case OP_MAP:
    case OP_RECORD:
        if (c->depth >= CAIRN_AVRO_MAX_DEPTH)
            return bad(c, "value nested deeper than %d levels", CAIRN_AVRO_MAX_DEPTH);
        c->depth++;
        rc = p->op == OP_RECORD  ? dec_record(c, p, out)
             : p->op == OP_ARRAY ? dec_array(c, p, out)
                                 : dec_map(c, p, out);
        c->depth--;
        return rc;
    case OP_WUNION:
        if ((rc = dec_union_index(c, p, &x)) != CAIRN_OK)
            return rc;
        if (!p->branches[x])
            return bad(c, "written union branch %s cannot be read as %s",
                       type_name(p->w->branches[x]), type_name(p->r));
        return dec(c, p->branches[x], out);
    case OP_RUNION:
        if (!p->wrap)
            return dec(c, p->child, out);
        push_key(c, p->wrap, LAZY_LEN);
        rc = dec(c, p->child, &v);
        c->npath--;
        if (rc != CAIRN_OK)
            return rc;
        json_t *w = json_object();
        if (!w || json_object_set_new_nocheck(w, p->wrap, v) != 0) {
            json_decref(w);
            return oom(c);
        }
        *out = w;
        return CAIRN_OK;
    }
    if (!v)
        return oom(c);
    *out = v;
    return CAIRN_OK;
}

static cairn_rc_t skip(dctx_t *c, const plan_t *p)
{
    const cairn_avro_node_t *w = p->w;
    cairn_rc_t rc = CAIRN_OK;
    int64_t x = 0;
    size_t n = 0;
    switch (w->kind) {
    case CAIRN_AVRO_NULL:
        return CAIRN_OK;
    case CAIRN_AVRO_BOOLEAN:
        if (c->p == c->end)
            return bad(c, "truncated data");
        c->p++;
        return CAIRN_OK;
    case CAIRN_AVRO_INT:
    case CAIRN_AVRO_ENUM:
        return read_int(c, &x);
    case CAIRN_AVRO_LONG:
        return read_long(c, &x);
    case CAIRN_AVRO_FLOAT:
    case CAIRN_AVRO_DOUBLE:
    case CAIRN_AVRO_FIXED:
        n = w->kind == CAIRN_AVRO_FLOAT ? 4 : w->kind == CAIRN_AVRO_DOUBLE ? 8 : (size_t)w->size;
        if ((size_t)(c->end - c->p) < n)
            return bad(c, "truncated data");
        c->p += n;
        return CAIRN_OK;
    case CAIRN_AVRO_BYTES:
    case CAIRN_AVRO_STRING:
        if ((rc = read_len(c, &n)) != CAIRN_OK)
            return rc;
        c->p += n;
        return CAIRN_OK;
    case CAIRN_AVRO_UNION:
        if ((rc = dec_union_index(c, p, &x)) != CAIRN_OK)
            return rc;
        return skip(c, p->branches[x]);
    case CAIRN_AVRO_ARRAY:
    case CAIRN_AVRO_MAP:
    case CAIRN_AVRO_RECORD:
        break;
    }
    if (c->depth >= CAIRN_AVRO_MAX_DEPTH)
        return bad(c, "value nested deeper than %d levels", CAIRN_AVRO_MAX_DEPTH);
    c->depth++;
    if (w->kind == CAIRN_AVRO_RECORD) {
        for (uint32_t i = 0; i < p->nsteps && rc == CAIRN_OK; i++)
            rc = skip(c, p->steps[i].plan);
    } else {
        size_t total = 0;
        bool map = w->kind == CAIRN_AVRO_MAP;
        for (;;) {
            int64_t count;
            if ((rc = read_count(c, p->child, map, &total, &count)) != CAIRN_OK || count == 0)
                break;
            for (int64_t i = 0; i < count && rc == CAIRN_OK; i++) {
                if (map && (rc = read_len(c, &n)) == CAIRN_OK)
                    c->p += n;
                if (rc == CAIRN_OK)
                    rc = skip(c, p->child);
            }
            if (rc != CAIRN_OK)
                break;
        }
    }
    c->depth--;
    return rc;
}

cairn_rc_t cairn__avro_decode(
    const cairn_avro_resolver_t *r, const void *data, size_t len, json_t **out, cairn_error_t *err)
{
    dctx_t c;
    c.p = data;
    c.end = c.p + len;
    c.err = err;
    c.depth = 0;
    c.npath = 0;
    c.tmp = NULL;
    c.tmp_cap = 0;
    *out = NULL;
    if (!r || (!data && len))
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no resolver or data");
    json_t *v = NULL;
    cairn_rc_t rc = dec(&c, r->root, &v);
    if (rc == CAIRN_OK && c.p != c.end) {
        rc = bad(&c, "%zu trailing bytes after the value", (size_t)(c.end - c.p));
        json_decref(v);
        v = NULL;
    }
    cairn__free(c.tmp);
    *out = v;
    return rc;
}
