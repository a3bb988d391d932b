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
 *
 * Cost: the registry checks a candidate against every version of a subject
 * per request (bench/README.md, case 3), so a compatible pair must format
 * nothing. The path is a stack of segments formatted only when a reason is
 * emitted; trials whose reasons are dropped (each branch of a reader union,
 * each writer branch against a reader union) run verdict-only (`out` NULL),
 * except that a record pair first met in a trial still records its reasons
 * for the memo; writer fields are found at the reader field's own index
 * first, then through the record's by-name index (avro.h).
 */
#include <stdlib.h>
#include <string.h>

#include "avro.h"

#define CHECK_MAX_DEPTH 1000
/* Path segments kept in the context itself; deeper paths go to the heap. */
#define PATH_INLINE 48
/* The longest path formatted into a reason, as the former path buffer was capped. */
#define PATH_MAX_BYTES (64 * 1024)

typedef struct memo {
    const cairn_avro_node_t *r, *w;
    bool done, ok;
    cairn_strlist_t reasons; /* the pair's own lines, replayed on a later hit */
} memo_t;

/* One step of the path in the reader schema: a fixed word or an index. */
typedef struct seg {
    const char *word; /* "fields", "type", ...; NULL for an index */
    size_t index;
} seg_t;

typedef struct cctx {
    memo_t *memo;
    size_t nmemo, cap;
    seg_t *path; /* path_inline, or a heap copy once it outgrew it */
    size_t npath, path_cap;
    seg_t path_inline[PATH_INLINE];
    cairn_buf_t text; /* the path formatted for the reason being reported */
    int depth;
    bool want_reasons; /* false: the caller wants the verdict only */
    cairn_rc_t rc;     /* CAIRN_E_NOMEM once anything failed to allocate */
} cctx_t;

static const char *upper_kind(cairn_avro_kind_t k)
{
    static const char *const names[] = {"NULL",   "BOOLEAN", "INT",    "LONG",   "FLOAT",
                                        "DOUBLE", "BYTES",   "STRING", "RECORD", "ENUM",
                                        "ARRAY",  "MAP",     "FIXED",  "UNION"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/*
 * The path is kept as a stack of segments and only formatted when a reason
 * is reported: a compatible pair of schemas never formats anything (the
 * walk visits every field of every version; formatting each step used to
 * be most of a check's cost).
 */
static const char *path_of(cctx_t *c)
{
    if (!c->npath)
        return "/";
    cairn_buf_reset(&c->text);
    for (size_t i = 0; i < c->npath && c->rc == CAIRN_OK; i++) {
        const seg_t *s = &c->path[i];
        cairn_rc_t rc = s->word ? cairn_buf_printf(&c->text, "/%s", s->word)
                                : cairn_buf_printf(&c->text, "/%zu", s->index);
        if (rc != CAIRN_OK)
            c->rc = CAIRN_E_NOMEM;
    }
    return c->text.data ? c->text.data : "/";
}

static size_t push_seg(cctx_t *c, const char *word, size_t index)
{
    size_t save = c->npath;
    if (c->npath == c->path_cap) {
        size_t cap = c->path_cap * 2;
        seg_t *p = cairn__malloc(cap * sizeof *p);
        if (!p) {
            c->rc = CAIRN_E_NOMEM;
            return save;
        }
        memcpy(p, c->path, c->npath * sizeof *p);
        if (c->path != c->path_inline)
            cairn__free(c->path);
        c->path = p;
        c->path_cap = cap;
    }
    c->path[c->npath++] = (seg_t){.word = word, .index = index};
    return save;
}

static size_t push(cctx_t *c, const char *seg)
{
    return push_seg(c, seg, 0);
}

static size_t pushi(cctx_t *c, size_t i)
{
    return push_seg(c, NULL, i);
}

static void pop(cctx_t *c, size_t save)
{
    if (save < c->npath)
        c->npath = save;
}

/*
 * Reporting: @p out NULL means "verdict only" (a reader union trying its
 * branches, a union branch tried against a reader): nothing is formatted.
 */
static void
report(cctx_t *c, cairn_strlist_t *out, const char *type, const char *desc, const char *info)
{
    if (!out)
        return;
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
    if (!out)
        return;
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
    if (!out)
        return;
    snprintf(info, sizeof info, "reader type: %s not compatible with writer type: %s",
             upper_kind(r->kind), upper_kind(w->kind));
    reportf(c, out, "TYPE_MISMATCH", info,
            "The type (path '%s') of a field in the new schema does not match with the old schema",
            path_of(c));
}

static void missing_branch(cctx_t *c, const cairn_avro_node_t *w, cairn_strlist_t *out)
{
    char info[128];
    if (!out)
        return;
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
    if (w->by_name) {
        /* Binary search in the parse-time index (avro.h). */
        uint32_t lo = 0, hi = w->nfields;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            uint32_t at = w->by_name[mid];
            int d = strcmp(name, w->fields[at].name);
            if (d == 0)
                return (long)at;
            if (d < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        return -1;
    }
    for (uint32_t i = 0; i < w->nfields; i++) {
        if (strcmp(w->fields[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

/* As cairn__avro_writer_field, trying writer field @p hint first: schemas
 * evolve by appending fields, so reader field i is usually writer field i.
 * Field names are unique, so a hit there is the only match by name. */
static long
writer_field_hint(const cairn_avro_field_t *rf, const cairn_avro_node_t *w, uint32_t hint)
{
    if (hint < w->nfields && strcmp(w->fields[hint].name, rf->name) == 0)
        return (long)hint;
    return cairn__avro_writer_field(rf, w);
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
    if (!out)
        return false;
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
    if (!out) {
        for (uint32_t i = 0; i < w->nsymbols; i++) {
            bool found = false;
            for (uint32_t j = 0; j < r->nsymbols && !found; j++)
                found = strcmp(w->symbols[i], r->symbols[j]) == 0;
            if (!found)
                return false;
        }
        return true;
    }
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
        long wi = writer_field_hint(rf, w, i);
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
            } else if (out) {
                reportf(c, out, "READER_FIELD_MISSING_DEFAULT_VALUE", rf->name,
                        "The field '%s' at path '%s' in the new schema has no default value and "
                        "is missing in the old schema",
                        rf->name, path_of(c));
                ok = false;
            } else {
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
            if (r->size != w->size && !out) {
                ok = false;
            } else if (r->size != w->size) {
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
                save = pushi(c, i);
                if (!check(c, r, w->branches[i], NULL)) {
                    missing_branch(c, w->branches[i], out);
                    ok = false;
                }
                pop(c, save);
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
        /* A primitive writer (the common ["null", T] field) meets no record
         * and no depth limit in any branch: the verdict is a promotion. */
        bool plain = w->kind <= CAIRN_AVRO_STRING && c->depth < CHECK_MAX_DEPTH;
        for (uint32_t i = 0; i < r->nbranches; i++) {
            if (plain ? cairn__avro_promotes(r->branches[i]->kind, w->kind)
                      : check(c, r->branches[i], w, NULL))
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
        if (!out)
            return false;
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
        for (size_t i = 0; out && m->done && i < m->reasons.n && c->rc == CAIRN_OK; i++) {
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
    /* A pair first met in a verdict-only trial still records its reasons
     * (into a scratch list) when reasons are wanted at all: a later hit
     * replays them, as they read at this first visit. */
    cairn_strlist_t scratch;
    cairn_strlist_init(&scratch);
    cairn_strlist_t *dst = out ? out : c->want_reasons ? &scratch : NULL;
    size_t mark = dst ? dst->n : 0;
    ok = calc(c, r, w, dst);
    memo_t *m = &c->memo[at];
    m->done = true;
    m->ok = ok;
    for (size_t i = mark; dst && i < dst->n && c->rc == CAIRN_OK; i++) {
        if (cairn_strlist_push(&m->reasons, dst->items[i]) != CAIRN_OK)
            c->rc = CAIRN_E_NOMEM;
    }
    cairn_strlist_release(&scratch);
out:
    c->depth--;
    return ok;
}

cairn_rc_t cairn__avro_can_read(const cairn_avro_node_t *reader,
                                const cairn_avro_node_t *writer,
                                cairn_strlist_t *reasons)
{
    cctx_t c = {.want_reasons = reasons != NULL};
    c.path = c.path_inline;
    c.path_cap = PATH_INLINE;
    cairn_buf_init(&c.text, PATH_MAX_BYTES);
    size_t mark = reasons ? reasons->n : 0;
    bool ok = check(&c, reader, writer, reasons);
    for (size_t i = 0; i < c.nmemo; i++)
        cairn_strlist_release(&c.memo[i].reasons);
    cairn__free(c.memo);
    if (c.path != c.path_inline)
        cairn__free(c.path);
    cairn_buf_release(&c.text);
    if (c.rc != CAIRN_OK && reasons) {
        /* Leave the caller's list as it was. */
        while (reasons->n > mark)
            cairn__free(reasons->items[--reasons->n]);
    }
    if (c.rc != CAIRN_OK)
        return c.rc;
    return ok ? CAIRN_OK : CAIRN_E_INCOMPATIBLE;
}
