/* SPDX-License-Identifier: MIT */
/*
 * avro_compat.c - can data written with one Avro schema be read with
 * another? This is Avro Java's SchemaCompatibility (what Confluent uses),
 * rule for rule, collecting every incompatibility rather than the first:
 *
 * - Same kinds: primitives match; arrays compare items, maps values; fixed
 *   compare names (NAME_MISMATCH at .../name) and sizes
 *   (FIXED_SIZE_MISMATCH at .../size); enums compare names and symbols: a
 *   writer symbol the reader lacks is MISSING_ENUM_SYMBOLS (at
 *   .../symbols) unless the reader has an enum default; records compare
 *   names, then each reader field: the writer field of the same name (or of
 *   one of the reader field's aliases) must be readable (.../fields/i/type),
 *   and a reader field the writer lacks needs a default
 *   (READER_FIELD_MISSING_DEFAULT_VALUE at .../fields/i); writer fields the
 *   reader lacks are skipped. Unions: each writer branch must be readable
 *   by the reader union, else MISSING_UNION_BRANCH at .../i.
 * - Different kinds: a writer union needs each branch readable (.../i); a
 *   reader union needs one branch that reads the writer
 *   (MISSING_UNION_BRANCH); promotions int->long/float/double,
 *   long->float/double, float->double, string<->bytes; anything else is
 *   TYPE_MISMATCH.
 * - Named types match by unqualified name, or when a reader alias names the
 *   writer (its full name, or its unqualified name: we are one step more
 *   lenient than Avro Java here, consistent with comparing unqualified
 *   names). Logical types are judged by their underlying types.
 * - Recursion: a (reader, writer) record pair being checked is assumed
 *   compatible when met again inside itself, and a finished pair's verdict
 *   and reasons are reused (Avro Java's memo), so recursive and heavily
 *   shared types cost one visit per pair. Following named types can still
 *   chain deeply, so the walk stops at CHECK_MAX_DEPTH with a reason.
 *
 * Reasons are Confluent 7.x lines: {errorType:'...', description:'...',
 * additionalInfo:'...'}, the description naming the place as a path in the
 * reader ("new") schema, e.g. /fields/1/type/items.
 */
#include <stdlib.h>
#include <string.h>

#include "avro.h"

#define CHECK_MAX_DEPTH 1000

typedef struct memo {
    const cairn_avro_node_t *r, *w;
    bool done, ok;
    cairn_strlist_t reasons; /* the pair's own lines, replayed on a later hit */
} memo_t;

typedef struct cctx {
    memo_t *memo;
    size_t nmemo, cap;
    cairn_buf_t path;
    int depth;
    cairn_rc_t rc; /* CAIRN_E_NOMEM once anything failed to allocate */
} cctx_t;

static const char *upper_kind(cairn_avro_kind_t k)
{
    static const char *const names[] = {"NULL",   "BOOLEAN", "INT",    "LONG",   "FLOAT",
                                        "DOUBLE", "BYTES",   "STRING", "RECORD", "ENUM",
                                        "ARRAY",  "MAP",     "FIXED",  "UNION"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static const char *path_of(const cctx_t *c)
{
    return c->path.len ? c->path.data : "/";
}

static size_t push(cctx_t *c, const char *seg)
{
    size_t save = c->path.len;
    if (cairn_buf_printf(&c->path, "/%s", seg) != CAIRN_OK)
        c->rc = CAIRN_E_NOMEM;
    return save;
}

static size_t pushi(cctx_t *c, size_t i)
{
    size_t save = c->path.len;
    if (cairn_buf_printf(&c->path, "/%zu", i) != CAIRN_OK)
        c->rc = CAIRN_E_NOMEM;
    return save;
}

static void pop(cctx_t *c, size_t save)
{
    if (c->path.data) {
        c->path.len = save;
        c->path.data[save] = '\0';
    }
}

static void
report(cctx_t *c, cairn_strlist_t *out, const char *type, const char *desc, const char *info)
{
    if (cairn_strlist_pushf(out, "{errorType:'%s', description:'%s', additionalInfo:'%s'}", type,
                            desc, info) != CAIRN_OK)
        c->rc = CAIRN_E_NOMEM;
}

/* Formats into a fixed buffer; long names are cut, which only shortens a message. */
static void
reportf(cctx_t *c, cairn_strlist_t *out, const char *type, const char *info, const char *fmt, ...)
    CAIRN_PRINTF(5, 6);

static void
reportf(cctx_t *c, cairn_strlist_t *out, const char *type, const char *info, const char *fmt, ...)
{
    char desc[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    report(c, out, type, desc, info);
}

static void type_mismatch(cctx_t *c,
                          const cairn_avro_node_t *r,
                          const cairn_avro_node_t *w,
                          cairn_strlist_t *out)
{
    char info[128];
    snprintf(info, sizeof info, "reader type: %s not compatible with writer type: %s",
             upper_kind(r->kind), upper_kind(w->kind));
    reportf(c, out, "TYPE_MISMATCH", info,
            "The type (path '%s') of a field in the new schema does not match with the old schema",
            path_of(c));
}

static void missing_branch(cctx_t *c, const cairn_avro_node_t *w, cairn_strlist_t *out)
{
    char info[128];
    snprintf(info, sizeof info, "reader union lacking writer type: %s", upper_kind(w->kind));
    reportf(c, out, "MISSING_UNION_BRANCH", info,
            "The new schema is missing a type inside a union field at path '%s' in the old schema",
            path_of(c));
}

/* ---- exported helpers -------------------------------------------------- */

bool cairn__avro_promotes(cairn_avro_kind_t r, cairn_avro_kind_t w)
{
    if (r == w)
        return true;
    switch (r) {
    case CAIRN_AVRO_LONG:
        return w == CAIRN_AVRO_INT;
    case CAIRN_AVRO_FLOAT:
        return w == CAIRN_AVRO_INT || w == CAIRN_AVRO_LONG;
    case CAIRN_AVRO_DOUBLE:
        return w == CAIRN_AVRO_INT || w == CAIRN_AVRO_LONG || w == CAIRN_AVRO_FLOAT;
    case CAIRN_AVRO_BYTES:
        return w == CAIRN_AVRO_STRING;
    case CAIRN_AVRO_STRING:
        return w == CAIRN_AVRO_BYTES;
    default:
        return false;
    }
}

bool cairn__avro_names_match(const cairn_avro_node_t *r, const cairn_avro_node_t *w)
{
    if (!r->fullname || !w->fullname)
        return false;
    if (strcmp(r->name, w->name) == 0)
        return true;
    for (uint32_t i = 0; i < r->naliases; i++) {
        const char *a = r->aliases[i];
        const char *dot = strrchr(a, '.');
        if (strcmp(a, w->fullname) == 0 || strcmp(dot ? dot + 1 : a, w->name) == 0)
            return true;
    }
    return false;
}

static long field_named(const cairn_avro_node_t *w, const char *name)
{
    for (uint32_t i = 0; i < w->nfields; i++) {
        if (strcmp(w->fields[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

long cairn__avro_writer_field(const cairn_avro_field_t *rf, const cairn_avro_node_t *w)
{
    long i = field_named(w, rf->name);
    for (uint32_t a = 0; i < 0 && a < rf->naliases; a++)
        i = field_named(w, rf->aliases[a]);
    return i;
}

long cairn__avro_union_branch(const cairn_avro_node_t *r, const cairn_avro_node_t *w)
{
    /* Avro Java's best branch: the same type (same full name when named),
     * then a named type of a matching name, then the first promotion. */
    for (uint32_t i = 0; i < r->nbranches; i++) {
        const cairn_avro_node_t *b = r->branches[i];
        if (b->kind == w->kind && (!b->fullname || strcmp(b->fullname, w->fullname) == 0))
            return (long)i;
    }
    for (uint32_t i = 0; i < r->nbranches; i++) {
        const cairn_avro_node_t *b = r->branches[i];
        if (b->kind == w->kind && b->fullname && cairn__avro_names_match(b, w))
            return (long)i;
    }
    for (uint32_t i = 0; i < r->nbranches; i++) {
        if (r->branches[i]->fullname == NULL && cairn__avro_promotes(r->branches[i]->kind, w->kind))
            return (long)i;
    }
    return -1;
}

/* ---- the checker ------------------------------------------------------- */

static bool
check(cctx_t *c, const cairn_avro_node_t *r, const cairn_avro_node_t *w, cairn_strlist_t *out);

static bool
check_names(cctx_t *c, const cairn_avro_node_t *r, const cairn_avro_node_t *w, cairn_strlist_t *out)
{
    if (cairn__avro_names_match(r, w))
        return true;
    size_t save = push(c, "name");
    char info[512];
    snprintf(info, sizeof info, "expected: %s", w->fullname);
    reportf(c, out, "NAME_MISMATCH", info, "The name of the schema has changed (path '%s')",
            path_of(c));
    pop(c, save);
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool check_symbols(cctx_t *c,
                          const cairn_avro_node_t *r,
                          const cairn_avro_node_t *w,
                          cairn_strlist_t *out)
{
    if (r->enum_default)
        return true;
    const char **missing = w->nsymbols ? cairn__calloc(w->nsymbols, sizeof *missing) : NULL;
    size_t n = 0;
    bool ok = true;
    if (w->nsymbols && !missing) {
        c->rc = CAIRN_E_NOMEM;
        return false;
    }
    for (uint32_t i = 0; i < w->nsymbols; i++) {
        bool found = false;
        for (uint32_t j = 0; j < r->nsymbols && !found; j++)
            found = strcmp(w->symbols[i], r->symbols[j]) == 0;
        if (!found)
            missing[n++] = w->symbols[i];
    }
    if (n) {
        /* Avro Java prints the TreeSet of missing symbols: sorted, "[A, B]". */
        cairn_buf_t list;
        cairn_buf_init(&list, 64 * 1024);
        qsort(missing, n, sizeof *missing, cmp_str);
        cairn_rc_t rc = cairn_buf_appends(&list, "[");
        for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
            rc = cairn_buf_printf(&list, "%s%s", i ? ", " : "", missing[i]);
        if (rc == CAIRN_OK)
            rc = cairn_buf_appends(&list, "]");
        if (rc == CAIRN_E_NOMEM)
            c->rc = rc;
        const char *s = list.data ? list.data : "[...]";
        size_t save = push(c, "symbols");
        reportf(c, out, "MISSING_ENUM_SYMBOLS", s,
                "The new schema is missing enum symbols '%s' at path '%s' in the old schema", s,
                path_of(c));
        pop(c, save);
        cairn_buf_release(&list);
        ok = false;
    }
    cairn__free(missing);
    return ok;
}

static bool check_fields(cctx_t *c,
                         const cairn_avro_node_t *r,
                         const cairn_avro_node_t *w,
                         cairn_strlist_t *out)
{
    bool ok = true;
    size_t save = push(c, "fields");
    for (uint32_t i = 0; i < r->nfields; i++) {
        const cairn_avro_field_t *rf = &r->fields[i];
        size_t isave = pushi(c, i);
        long wi = cairn__avro_writer_field(rf, w);
        if (wi >= 0) {
            size_t tsave = push(c, "type");
            ok &= check(c, rf->type, w->fields[wi].type, out);
            pop(c, tsave);
        } else if (!rf->def) {
            if (rf->type->kind == CAIRN_AVRO_ENUM && rf->type->enum_default) {
                /* Avro Java compares such a field with the writer record itself. */
                size_t tsave = push(c, "type");
                ok &= check(c, rf->type, w, out);
                pop(c, tsave);
            } else {
                reportf(c, out, "READER_FIELD_MISSING_DEFAULT_VALUE", rf->name,
                        "The field '%s' at path '%s' in the new schema has no default value and "
                        "is missing in the old schema",
                        rf->name, path_of(c));
                ok = false;
            }
        }
        pop(c, isave);
    }
    pop(c, save);
    return ok;
}

static bool
calc(cctx_t *c, const cairn_avro_node_t *r, const cairn_avro_node_t *w, cairn_strlist_t *out)
{
    bool ok = true;
    size_t save;

    if (r->kind == w->kind) {
        switch (r->kind) {
        case CAIRN_AVRO_ARRAY:
        case CAIRN_AVRO_MAP:
            save = push(c, r->kind == CAIRN_AVRO_ARRAY ? "items" : "values");
            ok = check(c, r->items, w->items, out);
            pop(c, save);
            return ok;
        case CAIRN_AVRO_FIXED:
            ok = check_names(c, r, w, out);
            if (r->size != w->size) {
                char info[64];
                snprintf(info, sizeof info, "expected: %lld, found: %lld", (long long)w->size,
                         (long long)r->size);
                save = push(c, "size");
                reportf(c, out, "FIXED_SIZE_MISMATCH", info,
                        "The size of FIXED type field at path '%s' in the new schema does not "
                        "match with the old schema",
                        path_of(c));
                pop(c, save);
                ok = false;
            }
            return ok;
        case CAIRN_AVRO_ENUM:
            ok = check_names(c, r, w, out);
            return check_symbols(c, r, w, out) && ok;
        case CAIRN_AVRO_RECORD:
            ok = check_names(c, r, w, out);
            return check_fields(c, r, w, out) && ok;
        case CAIRN_AVRO_UNION:
            for (uint32_t i = 0; i < w->nbranches; i++) {
                cairn_strlist_t scratch;
                cairn_strlist_init(&scratch);
                save = pushi(c, i);
                if (!check(c, r, w->branches[i], &scratch)) {
                    missing_branch(c, w->branches[i], out);
                    ok = false;
                }
                pop(c, save);
                cairn_strlist_release(&scratch);
            }
            return ok;
        default:
            return true;
        }
    }
    if (w->kind == CAIRN_AVRO_UNION) {
        for (uint32_t i = 0; i < w->nbranches; i++) {
            save = pushi(c, i);
            ok &= check(c, r, w->branches[i], out);
            pop(c, save);
        }
        return ok;
    }
    if (r->kind == CAIRN_AVRO_UNION) {
        for (uint32_t i = 0; i < r->nbranches; i++) {
            cairn_strlist_t scratch;
            cairn_strlist_init(&scratch);
            bool b = check(c, r->branches[i], w, &scratch);
            cairn_strlist_release(&scratch);
            if (b)
                return true;
        }
        missing_branch(c, w, out);
        return false;
    }
    if (cairn__avro_promotes(r->kind, w->kind))
        return true;
    type_mismatch(c, r, w, out);
    return false;
}

static long memo_find(const cctx_t *c, const cairn_avro_node_t *r, const cairn_avro_node_t *w)
{
    for (size_t i = 0; i < c->nmemo; i++) {
        if (c->memo[i].r == r && c->memo[i].w == w)
            return (long)i;
    }
    return -1;
}

static bool
check(cctx_t *c, const cairn_avro_node_t *r, const cairn_avro_node_t *w, cairn_strlist_t *out)
{
    bool ok;
    if (c->rc != CAIRN_OK)
        return false;
    if (c->depth >= CHECK_MAX_DEPTH) {
        reportf(c, out, "TYPE_MISMATCH", "schemas nest too deeply to be compared",
                "The type (path '%s') of a field in the new schema does not match with the old "
                "schema",
                path_of(c));
        return false;
    }
    c->depth++;
    /* Only records recurse and only named types are shared: memoise those. */
    if (r->kind != CAIRN_AVRO_RECORD || w->kind != CAIRN_AVRO_RECORD) {
        ok = calc(c, r, w, out);
        goto out;
    }
    long at = memo_find(c, r, w);
    if (at >= 0) {
        memo_t *m = &c->memo[at];
        ok = m->done ? m->ok : true; /* in progress: assume compatible */
        for (size_t i = 0; m->done && i < m->reasons.n && c->rc == CAIRN_OK; i++) {
            if (cairn_strlist_push(out, m->reasons.items[i]) != CAIRN_OK)
                c->rc = CAIRN_E_NOMEM;
        }
        goto out;
    }
    if (c->nmemo == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        memo_t *p = cairn__realloc(c->memo, cap * sizeof *p);
        if (!p) {
            c->rc = CAIRN_E_NOMEM;
            ok = false;
            goto out;
        }
        c->memo = p;
        c->cap = cap;
    }
    at = (long)c->nmemo++;
    c->memo[at] = (memo_t){.r = r, .w = w};
    cairn_strlist_init(&c->memo[at].reasons);
    size_t mark = out->n;
    ok = calc(c, r, w, out);
    memo_t *m = &c->memo[at];
    m->done = true;
    m->ok = ok;
    for (size_t i = mark; i < out->n && c->rc == CAIRN_OK; i++) {
        if (cairn_strlist_push(&m->reasons, out->items[i]) != CAIRN_OK)
            c->rc = CAIRN_E_NOMEM;
    }
out:
    c->depth--;
    return ok;
}

cairn_rc_t cairn__avro_can_read(const cairn_avro_node_t *reader,
                                const cairn_avro_node_t *writer,
                                cairn_strlist_t *reasons)
{
    cctx_t c = {0};
    cairn_strlist_t local;
    cairn_strlist_t *out = reasons;
    if (!out) {
        cairn_strlist_init(&local);
        out = &local;
    }
    cairn_buf_init(&c.path, 64 * 1024);
    size_t mark = out->n;
    bool ok = check(&c, reader, writer, out);
    for (size_t i = 0; i < c.nmemo; i++)
        cairn_strlist_release(&c.memo[i].reasons);
    cairn__free(c.memo);
    cairn_buf_release(&c.path);
    if (c.rc != CAIRN_OK) {
        /* Leave the caller's list as it was. */
        while (out->n > mark)
            cairn__free(out->items[--out->n]);
    }
    if (out == &local)
        cairn_strlist_release(&local);
    if (c.rc != CAIRN_OK)
        return c.rc;
    return ok ? CAIRN_OK : CAIRN_E_INCOMPATIBLE;
}
