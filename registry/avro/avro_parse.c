/* SPDX-License-Identifier: MIT */
/*
 * avro_parse.c - from schema text to the model of avro.h, validating as Avro
 * Java's Schema.Parser does (names, duplicates, nested unions, redefinitions,
 * unknown names, defaults against their types), since the registry must
 * refuse what Confluent refuses and keep every attribute it keeps.
 *
 * Names follow the spec: a name containing a dot is a full name; otherwise
 * the type's "namespace" attribute, else the namespace of the nearest
 * enclosing named type, qualifies it. A name used as a type is looked up in
 * the enclosing namespace first, then in the null namespace (Avro Java's
 * Names.get). Types defined by references are visible by name; redefining
 * any visible name is an error.
 *
 * Input comes from the network: nesting is bounded (CAIRN_AVRO_MAX_DEPTH
 * levels of type definitions), every allocation failure is reported as
 * CAIRN_E_NOMEM, and everything allocated so far is freed on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avro.h"

/* Plain primitives without properties are shared, static and never freed. */
static const cairn_avro_node_t primitives[] = {
    {.kind = CAIRN_AVRO_NULL},  {.kind = CAIRN_AVRO_BOOLEAN}, {.kind = CAIRN_AVRO_INT},
    {.kind = CAIRN_AVRO_LONG},  {.kind = CAIRN_AVRO_FLOAT},   {.kind = CAIRN_AVRO_DOUBLE},
    {.kind = CAIRN_AVRO_BYTES}, {.kind = CAIRN_AVRO_STRING},
};

static const char *const kind_names[] = {
    [CAIRN_AVRO_NULL] = "null",   [CAIRN_AVRO_BOOLEAN] = "boolean", [CAIRN_AVRO_INT] = "int",
    [CAIRN_AVRO_LONG] = "long",   [CAIRN_AVRO_FLOAT] = "float",     [CAIRN_AVRO_DOUBLE] = "double",
    [CAIRN_AVRO_BYTES] = "bytes", [CAIRN_AVRO_STRING] = "string",   [CAIRN_AVRO_RECORD] = "record",
    [CAIRN_AVRO_ENUM] = "enum",   [CAIRN_AVRO_ARRAY] = "array",     [CAIRN_AVRO_MAP] = "map",
    [CAIRN_AVRO_FIXED] = "fixed", [CAIRN_AVRO_UNION] = "union",
};

const char *cairn__avro_kind_name(cairn_avro_kind_t kind)
{
    if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0])
        return "?";
    return kind_names[kind];
}

static int primitive_kind(const char *s)
{
    for (int k = CAIRN_AVRO_NULL; k <= CAIRN_AVRO_STRING; k++) {
        if (strcmp(kind_names[k], s) == 0)
            return k;
    }
    return -1;
}

/* ---- the model's table of named types --------------------------------- */

static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603ull & (size_t)-1;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * (size_t)1099511628211ull;
    return h;
}

static cairn_avro_node_t *table_get(const cairn_avro_model_t *m, const char *fullname)
{
    if (!m->named_cap)
        return NULL;
    size_t mask = m->named_cap - 1;
    for (size_t i = name_hash(fullname) & mask;; i = (i + 1) & mask) {
        cairn_avro_node_t *n = m->named[i];
        if (!n)
            return NULL;
        if (strcmp(n->fullname, fullname) == 0)
            return n;
    }
}

static cairn_rc_t table_put(cairn_avro_model_t *m, cairn_avro_node_t *node)
{
    if ((m->named_n + 1) * 2 > m->named_cap) {
        size_t cap = m->named_cap ? m->named_cap * 2 : 16;
        cairn_avro_node_t **t = cairn__calloc(cap, sizeof *t);
        if (!t)
            return CAIRN_E_NOMEM;
        for (size_t i = 0; i < m->named_cap; i++) {
            cairn_avro_node_t *n = m->named[i];
            if (!n)
                continue;
            size_t j = name_hash(n->fullname) & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = n;
        }
        cairn__free(m->named);
        m->named = t;
        m->named_cap = cap;
    }
    size_t mask = m->named_cap - 1;
    size_t i = name_hash(node->fullname) & mask;
    while (m->named[i])
        i = (i + 1) & mask;
    m->named[i] = node;
    m->named_n++;
    return CAIRN_OK;
}

const cairn_avro_node_t *cairn__avro_model_lookup(const cairn_avro_model_t *m, const char *fullname)
{
    /* refs[] is closed over references of references, so one level suffices. */
    const cairn_avro_node_t *n = table_get(m, fullname);
    for (size_t i = 0; !n && i < m->nrefs; i++)
        n = table_get(m->refs[i]->model, fullname);
    return n;
}

bool cairn__avro_model_defines(const cairn_avro_model_t *m, const cairn_avro_node_t *node)
{
    return node->fullname && table_get(m, node->fullname) == node;
}

const cairn_avro_node_t *cairn__avro_model_root(const cairn_avro_model_t *m)
{
    return m->root;
}

/* ---- freeing ---------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cairn__free(v[i]);
    cairn__free(v);
}

static void node_free(cairn_avro_node_t *n)
{
    cairn__free(n->fullname);
    cairn__free(n->doc);
    strv_free(n->aliases, n->naliases);
    for (uint32_t i = 0; i < n->nfields; i++) {
        cairn_avro_field_t *f = &n->fields[i];
        cairn__free(f->name);
        cairn__free(f->doc);
        if (f->def)
            json_decref(f->def);
        strv_free(f->aliases, f->naliases);
        if (f->props)
            json_decref(f->props);
    }
    cairn__free(n->fields);
    cairn__free(n->by_name);
    strv_free(n->symbols, n->nsymbols);
    cairn__free(n->enum_default);
    cairn__free(n->branches);
    if (n->props)
        json_decref(n->props);
    cairn__free(n);
}

void cairn__avro_model_free(cairn_avro_model_t *m)
{
    if (!m)
        return;
    while (m->owned) {
        cairn_avro_node_t *n = m->owned;
        m->owned = n->next_owned;
        node_free(n);
    }
    cairn__free(m->named);
    for (size_t i = 0; i < m->nrefs; i++)
        cairn_schema_unref(m->refs[i]);
    cairn__free(m->refs);
    cairn__free(m);
}

/* ---- parse context ---------------------------------------------------- */

typedef struct pctx {
    cairn_avro_model_t *m;
    cairn_error_t *err;
    cairn_buf_t path; /* JSON pointer of the value being parsed */
    int depth;
} pctx_t;

static cairn_rc_t fail(pctx_t *c, const char *fmt, ...) CAIRN_PRINTF(2, 3);

static cairn_rc_t fail(pctx_t *c, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cairn__error_set(c->err, CAIRN_E_INVALID_SCHEMA, 0, c->path.len ? c->path.data : "/",
                            "%s", msg);
}

static cairn_rc_t nomem(pctx_t *c)
{
    return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory parsing a schema");
}

static void path_pop(pctx_t *c, size_t save)
{
    if (c->path.data) {
        c->path.len = save;
        c->path.data[save] = '\0';
    }
}

/* Pushes a path segment; returns the length to restore with path_pop. Every
 * field and type of every parse passes here, so no printf. */
static size_t path_push(pctx_t *c, const char *seg)
{
    size_t save = c->path.len;
    if (cairn_buf_append(&c->path, "/", 1) != CAIRN_OK ||
        cairn_buf_appends(&c->path, seg) != CAIRN_OK)
        path_pop(c, save); /* a path too long to record only degrades the message */
    return save;
}

static size_t path_pushi(pctx_t *c, size_t i)
{
    char seg[24];
    char *p = seg + sizeof seg;
    *--p = '\0';
    do {
        *--p = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    return path_push(c, p);
}

static cairn_avro_node_t *node_new(pctx_t *c, cairn_avro_kind_t kind)
{
    cairn_avro_node_t *n = cairn__calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->next_owned = c->m->owned;
    c->m->owned = n;
    return n;
}

/* ---- names ------------------------------------------------------------ */

static bool valid_simple_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        bool digit = ch >= '0' && ch <= '9';
        if (!alpha && !(digit && i > 0))
            return false;
    }
    return true;
}

/* A dotted name: every component must be a valid simple name. */
static bool valid_full_name(const char *s)
{
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_simple_name(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* "ns.name" or "name"; NULL on allocation failure. */
static char *qualify(const char *name, const char *ns)
{
    if (strchr(name, '.') || !ns || !*ns)
        return cairn__strdup(name);
    size_t a = strlen(ns), b = strlen(name);
    char *s = cairn__malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, ns, a);
    s[a] = '.';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* The namespace part of a full name, copied into @p buf; "" when none. */
static char *namespace_of(const char *fullname)
{
    const char *dot = strrchr(fullname, '.');
    return cairn__strndup(fullname, dot ? (size_t)(dot - fullname) : 0);
}

static cairn_rc_t
resolve_name(pctx_t *c, const char *s, const char *ns, const cairn_avro_node_t **out)
{
    char *full = qualify(s, ns);
    if (!full)
        return nomem(c);
    const cairn_avro_node_t *n = cairn__avro_model_lookup(c->m, full);
    cairn__free(full);
    if (!n && !strchr(s, '.'))
        n = cairn__avro_model_lookup(c->m, s);
    if (!n)
        return fail(c, "unknown type name '%s'", s);
    *out = n;
    return CAIRN_OK;
}

/* ---- small readers ---------------------------------------------------- */

/* A JSON string usable as an identifier: no embedded NUL (JSON_ALLOW_NUL is
 * on so that bytes defaults such as "\u0000" parse). */
static bool is_cstr(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static bool key_in(const char *key, const char *const *set)
{
    for (; *set; set++) {
        if (strcmp(key, *set) == 0)
            return true;
    }
    return false;
}

static const char *const schema_reserved[] = {"type",   "name",    "namespace", "doc",
                                              "fields", "items",   "size",      "symbols",
                                              "values", "aliases", NULL};
static const char *const enum_reserved[] = {"type",   "name",    "namespace", "doc",
                                            "fields", "items",   "size",      "symbols",
                                            "values", "aliases", "default",   NULL};
static const char *const field_reserved[] = {"name",  "type",    "doc", "default",
                                             "order", "aliases", NULL};

/* Copies the keys of @p obj not in @p reserved into a new object, or NULL when none. */
static cairn_rc_t collect_props(pctx_t *c, json_t *obj, const char *const *reserved, json_t **out)
{
    const char *key;
    json_t *v;
    *out = NULL;
    json_object_foreach(obj, key, v)
    {
        if (key_in(key, reserved))
            continue;
        if (!*out && !(*out = json_object()))
            return nomem(c);
        if (json_object_set(*out, key, v) != 0)
            return nomem(c);
    }
    return CAIRN_OK;
}

static cairn_rc_t opt_string(pctx_t *c, json_t *obj, const char *key, char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    /* Avro Java reads optional text with textValue(): a non-string is absent. */
    if (!json_is_string(v))
        return CAIRN_OK;
    if (!(*out = cairn__strndup(json_string_value(v), json_string_length(v))))
        return nomem(c);
    return CAIRN_OK;
}

/* Reads an "aliases" array; each alias qualified with @p ns when given. */
static cairn_rc_t
read_aliases(pctx_t *c, json_t *obj, const char *ns, bool qualified, char ***out, uint32_t *nout)
{
    json_t *a = json_object_get(obj, "aliases");
    *out = NULL;
    *nout = 0;
    if (!a)
        return CAIRN_OK;
    size_t save = path_push(c, "aliases");
    cairn_rc_t rc = CAIRN_OK;
    if (!json_is_array(a)) {
        rc = fail(c, "aliases must be an array of names");
        goto out;
    }
    size_t n = json_array_size(a);
    if (n == 0)
        goto out;
    char **v = cairn__calloc(n, sizeof *v);
    if (!v) {
        rc = nomem(c);
        goto out;
    }
    *out = v;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(a, i);
        if (!is_cstr(e) || !valid_full_name(json_string_value(e)) ||
            (!qualified && strchr(json_string_value(e), '.'))) {
            path_pushi(c, i);
            rc = fail(c, "invalid alias %s%s%s", json_is_string(e) ? "'" : "",
                      json_is_string(e) ? json_string_value(e) : "(not a string)",
                      json_is_string(e) ? "'" : "");
            goto out;
        }
        char *s =
            qualified ? qualify(json_string_value(e), ns) : cairn__strdup(json_string_value(e));
        if (!s) {
            rc = nomem(c);
            goto out;
        }
        /* Avro Java keeps aliases in a set: a repeated alias counts once. */
        bool dup = false;
        for (uint32_t j = 0; j < *nout; j++)
            dup |= strcmp(v[j], s) == 0;
        if (dup) {
            cairn__free(s);
            continue;
        }
        v[(*nout)++] = s;
    }
out:
    path_pop(c, save);
    return rc;
}

/* ---- logical types ---------------------------------------------------- */

static bool prop_int(const json_t *props, const char *key, bool *present, json_int_t *v)
{
    json_t *j = json_object_get(props, key);
    *present = j != NULL;
    if (!j)
        return true;
    if (!json_is_integer(j))
        return false;
    *v = json_integer_value(j);
    return true;
}

/* Largest decimal precision a fixed of @p size bytes holds: floor(log10(2^(8n-1) - 1)). */
static int64_t fixed_max_precision(int64_t size)
{
    if (size <= 0)
        return 0;
    /* log10(2^k - 1) and k*log10(2) have the same floor for k >= 1, since no
     * power of two is a power of ten. */
    double k = (double)(size * 8 - 1);
    return (int64_t)(k * 0.30102999566398119521);
}

static void set_logical(cairn_avro_node_t *n)
{
    static const struct {
        const char *name;
        cairn_avro_logical_t lt;
        cairn_avro_kind_t kind;
    } simple[] = {
        {"uuid", CAIRN_AVRO_LT_UUID, CAIRN_AVRO_STRING},
        {"date", CAIRN_AVRO_LT_DATE, CAIRN_AVRO_INT},
        {"time-millis", CAIRN_AVRO_LT_TIME_MILLIS, CAIRN_AVRO_INT},
        {"time-micros", CAIRN_AVRO_LT_TIME_MICROS, CAIRN_AVRO_LONG},
        {"timestamp-millis", CAIRN_AVRO_LT_TIMESTAMP_MILLIS, CAIRN_AVRO_LONG},
        {"timestamp-micros", CAIRN_AVRO_LT_TIMESTAMP_MICROS, CAIRN_AVRO_LONG},
        {"local-timestamp-millis", CAIRN_AVRO_LT_LOCAL_TIMESTAMP_MILLIS, CAIRN_AVRO_LONG},
        {"local-timestamp-micros", CAIRN_AVRO_LT_LOCAL_TIMESTAMP_MICROS, CAIRN_AVRO_LONG},
    };
    json_t *lt = n->props ? json_object_get(n->props, "logicalType") : NULL;
    if (!is_cstr(lt))
        return;
    const char *name = json_string_value(lt);
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (strcmp(name, simple[i].name) == 0) {
            if (n->kind == simple[i].kind)
                n->logical = simple[i].lt;
            return;
        }
    }
    if (strcmp(name, "duration") == 0) {
        if (n->kind == CAIRN_AVRO_FIXED && n->size == 12)
            n->logical = CAIRN_AVRO_LT_DURATION;
        return;
    }
    if (strcmp(name, "decimal") != 0)
        return;
    if (n->kind != CAIRN_AVRO_BYTES && n->kind != CAIRN_AVRO_FIXED)
        return;
    bool has_p, has_s;
    json_int_t p = 0, s = 0;
    if (!prop_int(n->props, "precision", &has_p, &p) || !has_p || p <= 0 || p > INT32_MAX)
        return;
    if (!prop_int(n->props, "scale", &has_s, &s) || s < 0 || s > p)
        return;
    if (n->kind == CAIRN_AVRO_FIXED && p > fixed_max_precision(n->size))
        return;
    n->logical = CAIRN_AVRO_LT_DECIMAL;
    n->precision = (int32_t)p;
    n->scale = (int32_t)s;
}

/* ---- defaults --------------------------------------------------------- */

static bool symbol_index(const cairn_avro_node_t *e, const char *s, size_t *at)
{
    for (uint32_t i = 0; i < e->nsymbols; i++) {
        if (strcmp(e->symbols[i], s) == 0) {
            if (at)
                *at = i;
            return true;
        }
    }
    return false;
}

/*
 * Is @p v a valid default for @p t (Avro Java's isValidDefault, plus enum
 * symbols)? Terminates: every recursion descends into a smaller JSON value.
 */
static bool valid_default(const cairn_avro_node_t *t, const json_t *v)
{
    switch (t->kind) {
    case CAIRN_AVRO_NULL:
        return json_is_null(v);
    case CAIRN_AVRO_BOOLEAN:
        return json_is_boolean(v);
    case CAIRN_AVRO_INT:
        return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
               json_integer_value(v) <= INT32_MAX;
    case CAIRN_AVRO_LONG:
        return json_is_integer(v);
    case CAIRN_AVRO_FLOAT:
    case CAIRN_AVRO_DOUBLE:
        return json_is_number(v);
    case CAIRN_AVRO_BYTES:
    case CAIRN_AVRO_STRING:
    case CAIRN_AVRO_FIXED:
        return json_is_string(v);
    case CAIRN_AVRO_ENUM:
        return is_cstr(v) && symbol_index(t, json_string_value(v), NULL);
    case CAIRN_AVRO_ARRAY:
        if (!json_is_array(v))
            return false;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!valid_default(t->items, json_array_get(v, i)))
                return false;
        }
        return true;
    case CAIRN_AVRO_MAP: {
        const char *k;
        json_t *e;
        if (!json_is_object(v))
            return false;
        json_object_foreach((json_t *)(uintptr_t)v, k, e)
        {
            if (!valid_default(t->items, e))
                return false;
        }
        return true;
    }
    case CAIRN_AVRO_UNION:
        return t->nbranches > 0 && valid_default(t->branches[0], v);
    case CAIRN_AVRO_RECORD:
        if (!json_is_object(v))
            return false;
        for (uint32_t i = 0; i < t->nfields; i++) {
            const json_t *fv = json_object_get(v, t->fields[i].name);
            if (fv ? !valid_default(t->fields[i].type, fv) : !t->fields[i].def)
                return false;
        }
        return true;
    }
    return false;
}

/* ---- types ------------------------------------------------------------ */

static cairn_rc_t parse_type(pctx_t *c, json_t *j, const char *ns, const cairn_avro_node_t **out);

static cairn_rc_t parse_union(pctx_t *c, json_t *j, const char *ns, const cairn_avro_node_t **out)
{
    cairn_rc_t rc = CAIRN_OK;
    size_t n = json_array_size(j);
    cairn_avro_node_t *u = node_new(c, CAIRN_AVRO_UNION);
    if (!u || (n && !(u->branches = cairn__calloc(n, sizeof *u->branches))))
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        size_t save = path_pushi(c, i);
        const cairn_avro_node_t *b;
        if ((rc = parse_type(c, json_array_get(j, i), ns, &b)) != CAIRN_OK)
            return rc;
        if (b->kind == CAIRN_AVRO_UNION)
            return fail(c, "unions may not immediately contain other unions");
        for (uint32_t k = 0; k < u->nbranches; k++) {
            const cairn_avro_node_t *o = u->branches[k];
            bool same =
                o->kind == b->kind && (!b->fullname || strcmp(o->fullname, b->fullname) == 0);
            if (same)
                return fail(c, "duplicate in union: '%s'",
                            b->fullname ? b->fullname : cairn__avro_kind_name(b->kind));
        }
        u->branches[u->nbranches++] = b;
        path_pop(c, save);
    }
    *out = u;
    return rc;
}

/*
 * The by-name index of a record (avro.h) is kept sorted while the fields are
 * read, which also finds duplicate names in O(log n) compares a field.
 * Returns where @p name is, or would be inserted, among the first @p n
 * entries of @p idx; @p found tells which.
 */
static uint32_t name_slot(
    const cairn_avro_node_t *r, const uint32_t *idx, uint32_t n, const char *name, bool *found)
{
    uint32_t lo = 0, hi = n;
    *found = false;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int d = strcmp(name, r->fields[idx[mid]].name);
        if (d == 0) {
            *found = true;
            return mid;
        }
        if (d < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static cairn_rc_t parse_fields(pctx_t *c, json_t *obj, cairn_avro_node_t *r)
{
    cairn_rc_t rc = CAIRN_OK;
    json_t *fields = json_object_get(obj, "fields");
    char *ns = NULL;
    uint32_t *idx = NULL; /* by name, over the fields named so far */
    uint32_t nidx = 0;
    size_t save = path_push(c, "fields");
    if (!json_is_array(fields)) {
        rc = fail(c, "record '%s' has no fields array", r->fullname);
        goto out;
    }
    if (!(ns = namespace_of(r->fullname))) {
        rc = nomem(c);
        goto out;
    }
    size_t n = json_array_size(fields);
    if (n && (!(r->fields = cairn__calloc(n, sizeof *r->fields)) ||
              !(idx = cairn__calloc(n, sizeof *idx)))) {
        rc = nomem(c);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *fj = json_array_get(fields, i);
        size_t fsave = path_pushi(c, i);
        if (!json_is_object(fj)) {
            rc = fail(c, "a field must be an object");
            goto out;
        }
        json_t *name = json_object_get(fj, "name");
        if (!json_is_string(name)) {
            rc = fail(c, "field has no name");
            goto out;
        }
        const char *fname = json_string_value(name);
        if (!valid_simple_name(fname, json_string_length(name))) {
            rc = fail(c, "invalid field name '%s'", fname);
            goto out;
        }
        bool dup;
        uint32_t slot = name_slot(r, idx, nidx, fname, &dup);
        if (dup) {
            rc = fail(c, "duplicate field '%s' in record '%s'", fname, r->fullname);
            goto out;
        }
        json_t *tj = json_object_get(fj, "type");
        if (!tj) {
            rc = fail(c, "field '%s' has no type", fname);
            goto out;
        }
        /* The field is counted before its type is parsed so that a failure
         * frees what was already attached to it. */
        cairn_avro_field_t *f = &r->fields[r->nfields++];
        if (!(f->name = cairn__strdup(fname))) {
            rc = nomem(c);
            goto out;
        }
        memmove(idx + slot + 1, idx + slot, (nidx - slot) * sizeof *idx);
        idx[slot] = r->nfields - 1;
        nidx++;
        size_t tsave = path_push(c, "type");
        if ((rc = parse_type(c, tj, ns, &f->type)) != CAIRN_OK)
            goto out;
        path_pop(c, tsave);
        if ((rc = opt_string(c, fj, "doc", &f->doc)) != CAIRN_OK)
            goto out;
        json_t *order = json_object_get(fj, "order");
        if (order) {
            const char *o = is_cstr(order) ? json_string_value(order) : "";
            /* Avro Java upper-cases the text before matching it. */
            if (strcasecmp(o, "ascending") == 0)
                f->order = CAIRN_AVRO_ORDER_ASCENDING;
            else if (strcasecmp(o, "descending") == 0)
                f->order = CAIRN_AVRO_ORDER_DESCENDING;
            else if (strcasecmp(o, "ignore") == 0)
                f->order = CAIRN_AVRO_ORDER_IGNORE;
            else {
                path_push(c, "order");
                rc = fail(c, "invalid order of field '%s'", fname);
                goto out;
            }
        }
        if ((rc = read_aliases(c, fj, NULL, false, &f->aliases, &f->naliases)) != CAIRN_OK)
            goto out;
        if ((rc = collect_props(c, fj, field_reserved, &f->props)) != CAIRN_OK)
            goto out;
        json_t *def = json_object_get(fj, "default");
        json_t *conv = NULL;
        if (def && (f->type->kind == CAIRN_AVRO_FLOAT || f->type->kind == CAIRN_AVRO_DOUBLE) &&
            is_cstr(def)) {
            /* Avro Java reads a textual float default as Double.valueOf(text). */
            const char *t = json_string_value(def);
            char *end;
            double d = strtod(t, &end);
            if (*t && !*end && d - d == 0) {
                if (!(conv = json_real(d))) {
                    rc = nomem(c);
                    goto out;
                }
                def = conv;
            } else if (strcmp(t, "NaN") == 0 || strcmp(t, "Infinity") == 0 ||
                       strcmp(t, "-Infinity") == 0) {
                f->def = json_incref(def); /* kept as written: JSON has no such number */
                def = NULL;
            }
        }
        if (def) {
            if (!valid_default(f->type, def)) {
                path_push(c, "default");
                rc = fail(c, "invalid default for field '%s': not a %s%s", fname,
                          cairn__avro_kind_name(f->type->kind),
                          f->type->kind == CAIRN_AVRO_UNION ? " whose first branch matches" : "");
                goto out;
            }
            f->def = json_incref(def);
        }
        if (conv)
            json_decref(conv);
        path_pop(c, fsave);
    }
    if (r->nfields >= CAIRN_AVRO_FIELD_INDEX_MIN) {
        r->by_name = idx;
        idx = NULL;
    }
out:
    cairn__free(idx);
    cairn__free(ns);
    if (rc == CAIRN_OK)
        path_pop(c, save);
    return rc;
}

static cairn_rc_t parse_enum(pctx_t *c, json_t *obj, cairn_avro_node_t *e)
{
    json_t *syms = json_object_get(obj, "symbols");
    size_t save = path_push(c, "symbols");
    if (!json_is_array(syms))
        return fail(c, "enum '%s' has no symbols array", e->fullname);
    size_t n = json_array_size(syms);
    if (n && !(e->symbols = cairn__calloc(n, sizeof *e->symbols)))
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(syms, i);
        size_t isave = path_pushi(c, i);
        if (!json_is_string(s))
            return fail(c, "enum symbols of '%s' must be strings", e->fullname);
        const char *sym = json_string_value(s);
        if (!valid_simple_name(sym, json_string_length(s)))
            return fail(c, "invalid enum symbol '%s' in '%s'", sym, e->fullname);
        if (symbol_index(e, sym, NULL))
            return fail(c, "duplicate enum symbol '%s' in '%s'", sym, e->fullname);
        if (!(e->symbols[e->nsymbols] = cairn__strdup(sym)))
            return nomem(c);
        e->nsymbols++;
        path_pop(c, isave);
    }
    path_pop(c, save);
    json_t *def = json_object_get(obj, "default");
    if (def) {
        save = path_push(c, "default");
        if (!is_cstr(def) || !symbol_index(e, json_string_value(def), NULL))
            return fail(c, "the default of enum '%s' is not one of its symbols", e->fullname);
        if (!(e->enum_default = cairn__strdup(json_string_value(def))))
            return nomem(c);
        path_pop(c, save);
    }
    return CAIRN_OK;
}

static cairn_rc_t
parse_named(pctx_t *c, json_t *obj, const char *type, const char *ns, const cairn_avro_node_t **out)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_avro_kind_t kind = strcmp(type, "enum") == 0    ? CAIRN_AVRO_ENUM
                             : strcmp(type, "fixed") == 0 ? CAIRN_AVRO_FIXED
                                                          : CAIRN_AVRO_RECORD;
    json_t *name = json_object_get(obj, "name");
    if (!is_cstr(name))
        return fail(c, "a %s needs a name", type);
    const char *nm = json_string_value(name);
    json_t *nsj = json_object_get(obj, "namespace");
    const char *space = ns;
    if (is_cstr(nsj))
        space = json_string_value(nsj);
    else if (nsj && !json_is_null(nsj))
        return fail(c, "namespace of '%s' must be a string", nm);
    if (!strchr(nm, '.') && space && *space && !valid_full_name(space))
        return fail(c, "invalid namespace '%s'", space);

    cairn_avro_node_t *n = node_new(c, kind);
    if (!n)
        return nomem(c);
    n->is_error = strcmp(type, "error") == 0;
    if (!(n->fullname = qualify(nm, space)))
        return nomem(c);
    if (!valid_full_name(n->fullname))
        return fail(c, "invalid name '%s'", n->fullname);
    const char *dot = strrchr(n->fullname, '.');
    n->name = dot ? dot + 1 : n->fullname;
    if (primitive_kind(n->fullname) >= 0)
        return fail(c, "schemas may not be named after primitives: '%s'", n->fullname);
    if (cairn__avro_model_lookup(c->m, n->fullname))
        return fail(c, "can't redefine: '%s'", n->fullname);
    if (table_put(c->m, n) != CAIRN_OK)
        return nomem(c);
    if ((rc = opt_string(c, obj, "doc", &n->doc)) != CAIRN_OK)
        return rc;
    char *own_ns = namespace_of(n->fullname);
    if (!own_ns)
        return nomem(c);
    rc = read_aliases(c, obj, own_ns, true, &n->aliases, &n->naliases);
    cairn__free(own_ns);
    if (rc != CAIRN_OK)
        return rc;
    if ((rc = collect_props(c, obj, kind == CAIRN_AVRO_ENUM ? enum_reserved : schema_reserved,
                            &n->props)) != CAIRN_OK)
        return rc;

    size_t save = c->path.len;
    if (kind == CAIRN_AVRO_RECORD) {
        rc = parse_fields(c, obj, n);
    } else if (kind == CAIRN_AVRO_ENUM) {
        rc = parse_enum(c, obj, n);
    } else {
        json_t *size = json_object_get(obj, "size");
        path_push(c, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0 ||
            json_integer_value(size) > INT32_MAX)
            return fail(c, "invalid or no size of fixed '%s'", n->fullname);
        n->size = json_integer_value(size);
        set_logical(n);
    }
    if (rc != CAIRN_OK)
        return rc;
    path_pop(c, save);
    *out = n;
    return CAIRN_OK;
}

static cairn_rc_t
parse_object(pctx_t *c, json_t *obj, const char *ns, const cairn_avro_node_t **out)
{
    cairn_rc_t rc = CAIRN_OK;
    json_t *tj = json_object_get(obj, "type");
    if (!tj)
        return fail(c, "no type");
    if (!is_cstr(tj))
        return fail(c, "type must be a string naming a type");
    const char *type = json_string_value(tj);
    int prim = primitive_kind(type);
    if (prim >= 0) {
        json_t *props;
        if ((rc = collect_props(c, obj, schema_reserved, &props)) != CAIRN_OK)
            return rc;
        if (!props) {
            *out = &primitives[prim];
            return CAIRN_OK;
        }
        cairn_avro_node_t *n = node_new(c, (cairn_avro_kind_t)prim);
        if (!n) {
            json_decref(props);
            return nomem(c);
        }
        n->props = props;
        set_logical(n);
        *out = n;
        return CAIRN_OK;
    }
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 ||
        strcmp(type, "fixed") == 0)
        return parse_named(c, obj, type, ns, out);
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        bool arr = type[0] == 'a';
        const char *key = arr ? "items" : "values";
        json_t *inner = json_object_get(obj, key);
        if (!inner)
            return fail(c, "%s has no %s", type, key);
        cairn_avro_node_t *n = node_new(c, arr ? CAIRN_AVRO_ARRAY : CAIRN_AVRO_MAP);
        if (!n)
            return nomem(c);
        if ((rc = collect_props(c, obj, schema_reserved, &n->props)) != CAIRN_OK)
            return rc;
        size_t save = path_push(c, key);
        if ((rc = parse_type(c, inner, ns, &n->items)) != CAIRN_OK)
            return rc;
        path_pop(c, save);
        *out = n;
        return CAIRN_OK;
    }
    /* {"type": "SomeName"} refers to a named type, as Avro Java allows. */
    return resolve_name(c, type, ns, out);
}

static cairn_rc_t parse_type(pctx_t *c, json_t *j, const char *ns, const cairn_avro_node_t **out)
{
    cairn_rc_t rc;
    if (++c->depth > CAIRN_AVRO_MAX_DEPTH)
        return fail(c, "schema nesting exceeds %d levels", CAIRN_AVRO_MAX_DEPTH);
    if (json_is_string(j)) {
        if (!is_cstr(j)) {
            c->depth--;
            return fail(c, "invalid type name");
        }
        int prim = primitive_kind(json_string_value(j));
        if (prim >= 0) {
            *out = &primitives[prim];
            rc = CAIRN_OK;
        } else {
            rc = resolve_name(c, json_string_value(j), ns, out);
        }
    } else if (json_is_array(j)) {
        rc = parse_union(c, j, ns, out);
    } else if (json_is_object(j)) {
        rc = parse_object(c, j, ns, out);
    } else {
        rc = fail(c, "a type must be a name, an object or an array");
    }
    c->depth--;
    return rc;
}

/* Adds @p s to the model's references unless it is there already. */
static void add_ref(cairn_avro_model_t *m, const cairn_schema_t *s)
{
    for (size_t i = 0; i < m->nrefs; i++) {
        if (m->refs[i] == s)
            return;
    }
    m->refs[m->nrefs++] = cairn_schema_ref(s);
}

/*
 * Holds a reference on every AVRO schema in @p refs and on each of their own
 * (already closed) reference lists, without repeats: lookups then visit
 * each defining schema once, however the references share each other.
 */
static cairn_rc_t hold_refs(pctx_t *c, const cairn_schema_ref_t *refs, size_t nrefs)
{
    size_t total = 0;
    for (size_t i = 0; i < nrefs; i++) {
        const cairn_schema_t *s = refs[i].schema;
        if (s && s->format == &cairn__avro_format && s->model)
            total += 1 + ((const cairn_avro_model_t *)s->model)->nrefs;
    }
    if (!total)
        return CAIRN_OK;
    if (!(c->m->refs = cairn__calloc(total, sizeof *c->m->refs)))
        return nomem(c);
    for (size_t i = 0; i < nrefs; i++) {
        const cairn_schema_t *s = refs[i].schema;
        if (!s || s->format != &cairn__avro_format || !s->model)
            continue;
        const cairn_avro_model_t *rm = s->model;
        add_ref(c->m, s);
        for (size_t k = 0; k < rm->nrefs; k++)
            add_ref(c->m, rm->refs[k]);
    }
    return CAIRN_OK;
}

cairn_rc_t cairn__avro_parse(const char *text,
                             size_t len,
                             const cairn_schema_ref_t *refs,
                             size_t nrefs,
                             cairn_avro_model_t **out,
                             cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    json_error_t jerr;
    json_t *doc = NULL;
    pctx_t c = {.err = err};

    *out = NULL;
    cairn_buf_init(&c.path, 4096);
    if (!(c.m = cairn__calloc(1, sizeof *c.m))) {
        rc = nomem(&c);
        goto out;
    }
    if ((rc = hold_refs(&c, refs, nrefs)) != CAIRN_OK)
        goto out;
    doc = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                              "invalid json at line %d column %d: %s", jerr.line, jerr.column,
                              jerr.text);
        goto out;
    }
    if ((rc = parse_type(&c, doc, NULL, &c.m->root)) != CAIRN_OK)
        goto out;
    *out = c.m;
    c.m = NULL;
out:
    if (doc)
        json_decref(doc);
    cairn__avro_model_free(c.m);
    cairn_buf_release(&c.path);
    return rc;
}
