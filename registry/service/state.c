/* SPDX-License-Identifier: MIT */
/*
 * state.c - the registry's in-memory state and the fold that builds it.
 *
 * The state is a pure function of the "_registry" stream: cairn__reg_apply()
 * takes one record (a small JSON object, see docs/REGISTRY-STATE.md) and
 * changes the state accordingly. Open replays the stream through it; every
 * live write builds its record, appends it, and then applies that same
 * record through it, so that the fold and the live path cannot drift apart.
 *
 * Apply does not decide: the rules (modes, compatibility, delete order) are
 * checked before a record is written (write.c). Apply only refuses records
 * that cannot be applied at all (unknown type, missing fields, a version
 * that already exists, an id reused for another schema): such a record
 * means the log is not one this code wrote, and open reports CAIRN_E_CORRUPT.
 *
 * Memory: a schema is kept as its stored text (canonical or normalized) and
 * its references, shared by every version that uses its id; parsed models
 * live only in the bounded cache (models.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_int.h"

void cairn__reg_state_init(struct reg_state *st)
{
    cairn__htab_init(&st->subjects);
    cairn__htab_init(&st->by_id);
    cairn__htab_init(&st->by_text);
    st->level = CAIRN__REG_DEFAULT_LEVEL;
    st->mode = CAIRN__REG_DEFAULT_MODE;
    st->max_id = 0;
}

static void subject_free(struct reg_subject *s)
{
    cairn__free(s->name);
    cairn__free(s->v);
    cairn__free(s);
}

static void sch_free(struct reg_sch *sch)
{
    cairn_reg_schema_unref(sch->pub);
    cairn__free(sch->uses);
    cairn__free(sch);
}

void cairn__reg_state_release(struct reg_state *st)
{
    size_t b = 0;
    struct cairn__hnode *n = cairn__htab_iter(&st->subjects, &b, NULL);
    while (n) {
        struct cairn__hnode *next = cairn__htab_iter(&st->subjects, &b, n);
        subject_free(cairn__container_of(n, struct reg_subject, node));
        n = next;
    }
    b = 0;
    n = cairn__htab_iter(&st->by_id, &b, NULL);
    while (n) {
        struct cairn__hnode *next = cairn__htab_iter(&st->by_id, &b, n);
        sch_free(cairn__container_of(n, struct reg_sch, by_id));
        n = next;
    }
    cairn__htab_release(&st->subjects);
    cairn__htab_release(&st->by_id);
    cairn__htab_release(&st->by_text);
}

/* ---- look-ups --------------------------------------------------------- */

static uint64_t subject_hash(const char *name, size_t len)
{
    return cairn__hash_bytes(CAIRN__HASH_SEED, name, len);
}

struct reg_subject *cairn__reg_subject_find(const struct reg_state *st, const char *name)
{
    size_t len = strlen(name);
    uint64_t h = subject_hash(name, len);
    for (struct cairn__hnode *n = cairn__htab_first(&st->subjects, h); n;
         n = cairn__htab_next(n, h)) {
        struct reg_subject *s = cairn__container_of(n, struct reg_subject, node);
        if (s->name_len == len && !memcmp(s->name, name, len))
            return s;
    }
    return NULL;
}

static size_t version_pos(const struct reg_subject *s, int version, bool *found)
{
    size_t lo = 0, hi = s->nv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->nv && s->v[lo].version == version;
    return lo;
}

struct reg_version *cairn__reg_version_find(const struct reg_subject *s, int version)
{
    bool found;
    size_t i = version_pos(s, version, &found);
    return found ? &s->v[i] : NULL;
}

struct reg_version *cairn__reg_version_latest(const struct reg_subject *s, bool include_deleted)
{
    for (size_t i = s->nv; i-- > 0;) {
        if (include_deleted || !s->v[i].deleted)
            return &s->v[i];
    }
    return NULL;
}

struct reg_sch *cairn__reg_sch_by_id(const struct reg_state *st, int id)
{
    uint64_t h = cairn__hash_int(CAIRN__HASH_SEED, id);
    for (struct cairn__hnode *n = cairn__htab_first(&st->by_id, h); n; n = cairn__htab_next(n, h)) {
        struct reg_sch *sch = cairn__container_of(n, struct reg_sch, by_id);
        if (sch->pub->id == id)
            return sch;
    }
    return NULL;
}

bool cairn__reg_sch_live(const struct reg_sch *sch)
{
    for (size_t i = 0; i < sch->nuses; i++) {
        const struct reg_version *v =
            cairn__reg_version_find(sch->uses[i].subject, sch->uses[i].version);
        if (v && !v->deleted)
            return true;
    }
    return false;
}

static uint64_t text_hash(const cairn_format_t *format,
                          const char *text,
                          size_t len,
                          const cairn_reg_ref_t *refs,
                          size_t nrefs)
{
    uint64_t h = cairn__hash_bytes(CAIRN__HASH_SEED, format->name, strlen(format->name) + 1);
    h = cairn__hash_bytes(h, text, len);
    for (size_t i = 0; i < nrefs; i++) {
        h = cairn__hash_bytes(h, refs[i].name, strlen(refs[i].name) + 1);
        h = cairn__hash_bytes(h, refs[i].subject, strlen(refs[i].subject) + 1);
        h = cairn__hash_int(h, refs[i].version);
    }
    return h;
}

bool cairn__reg_sch_equals(const struct reg_sch *sch,
                           const cairn_format_t *format,
                           const char *text,
                           size_t len,
                           const cairn_reg_ref_t *refs,
                           size_t nrefs)
{
    const cairn_reg_schema_t *p = sch->pub;
    if (sch->format != format || p->text_len != len || memcmp(p->text, text, len) ||
        p->nrefs != nrefs)
        return false;
    for (size_t i = 0; i < nrefs; i++) {
        if (strcmp(p->refs[i].name, refs[i].name) || strcmp(p->refs[i].subject, refs[i].subject) ||
            p->refs[i].version != refs[i].version)
            return false;
    }
    return true;
}

struct reg_sch *cairn__reg_sch_by_text(const struct reg_state *st,
                                       const cairn_format_t *format,
                                       const char *text,
                                       size_t len,
                                       const cairn_reg_ref_t *refs,
                                       size_t nrefs)
{
    uint64_t h = text_hash(format, text, len, refs, nrefs);
    struct reg_sch *best = NULL;
    for (struct cairn__hnode *n = cairn__htab_first(&st->by_text, h); n;
         n = cairn__htab_next(n, h)) {
        struct reg_sch *sch = cairn__container_of(n, struct reg_sch, by_text);
        if (cairn__reg_sch_equals(sch, format, text, len, refs, nrefs) &&
            (!best || sch->pub->id < best->pub->id))
            best = sch;
    }
    return best;
}

cairn_reg_mode_t cairn__reg_mode_of(const struct reg_state *st, const struct reg_subject *s)
{
    return s && s->has_mode ? s->mode : st->mode;
}

cairn_compat_level_t cairn__reg_level_of(const struct reg_state *st, const struct reg_subject *s)
{
    return s && s->has_level ? s->level : st->level;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

cairn_rc_t cairn__reg_referrers(
    const struct reg_state *st, const char *subject, int version, int **ids, size_t *n)
{
    int *out = NULL;
    size_t cnt = 0, alloc = 0;
    size_t b = 0;
    *ids = NULL;
    *n = 0;
    for (struct cairn__hnode *node = cairn__htab_iter(&st->by_id, &b, NULL); node;
         node = cairn__htab_iter(&st->by_id, &b, node)) {
        struct reg_sch *sch = cairn__container_of(node, struct reg_sch, by_id);
        bool refers = false;
        for (size_t i = 0; i < sch->pub->nrefs && !refers; i++)
            refers =
                sch->pub->refs[i].version == version && !strcmp(sch->pub->refs[i].subject, subject);
        if (!refers || !cairn__reg_sch_live(sch))
            continue;
        if (cnt == alloc) {
            size_t na = alloc ? alloc * 2 : 8;
            int *p = cairn__realloc(out, na * sizeof *p);
            if (!p) {
                cairn__free(out);
                return CAIRN_E_NOMEM;
            }
            out = p;
            alloc = na;
        }
        out[cnt++] = sch->pub->id;
    }
    if (cnt)
        qsort(out, cnt, sizeof *out, cmp_int);
    *ids = out;
    *n = cnt;
    return CAIRN_OK;
}

/* ---- changes ---------------------------------------------------------- */

static struct reg_subject *subject_get_or_create(struct reg_state *st, const char *name)
{
    struct reg_subject *s = cairn__reg_subject_find(st, name);
    if (s)
        return s;
    s = cairn__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name_len = strlen(name);
    s->name = cairn__strndup(name, s->name_len);
    if (!s->name ||
        cairn__htab_insert(&st->subjects, &s->node, subject_hash(name, s->name_len)) != CAIRN_OK) {
        subject_free(s);
        return NULL;
    }
    return s;
}

/* A subject with no version and no config of its own is dropped. */
static void subject_maybe_drop(struct reg_state *st, struct reg_subject *s)
{
    if (s->nv || s->has_level || s->has_mode)
        return;
    cairn__htab_remove(&st->subjects, &s->node);
    subject_free(s);
}

static void sch_remove_use(struct reg_sch *sch, const struct reg_subject *s, int version)
{
    for (size_t i = 0; i < sch->nuses; i++) {
        if (sch->uses[i].subject == s && sch->uses[i].version == version) {
            sch->uses[i] = sch->uses[--sch->nuses];
            return;
        }
    }
}

static void version_remove(struct reg_subject *s, size_t i)
{
    struct reg_version *v = &s->v[i];
    if (!v->deleted)
        s->nlive--;
    sch_remove_use(v->sch, s, v->version);
    memmove(&s->v[i], &s->v[i + 1], (s->nv - i - 1) * sizeof s->v[0]);
    s->nv--;
}

static cairn_rc_t corrupt(cairn_error_t *err, const char *what)
{
    return cairn__error_set(err, CAIRN_E_CORRUPT, 0, CAIRN__REG_STREAM, "registry record: %s",
                            what);
}

/* Reads "subject": a string, or null when @p allow_null (global config). */
static cairn_rc_t
get_subject(const json_t *ev, bool allow_null, const char **out, cairn_error_t *err)
{
    const json_t *j = json_object_get(ev, "subject");
    if (allow_null && (!j || json_is_null(j))) {
        *out = NULL;
        return CAIRN_OK;
    }
    if (!json_is_string(j) || cairn_registry_subject_valid(json_string_value(j), NULL) != CAIRN_OK)
        return corrupt(err, "missing or invalid \"subject\"");
    *out = json_string_value(j);
    return CAIRN_OK;
}

static cairn_rc_t get_int(const json_t *ev, const char *key, int *out, cairn_error_t *err)
{
    const json_t *j = json_object_get(ev, key);
    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > INT32_MAX) {
        char what[64];
        snprintf(what, sizeof what, "missing or invalid \"%s\"", key);
        return corrupt(err, what);
    }
    *out = (int)json_integer_value(j);
    return CAIRN_OK;
}

static cairn_rc_t
parse_refs(const json_t *ev, cairn_reg_ref_t **refs, size_t *nrefs, cairn_error_t *err)
{
    const json_t *a = json_object_get(ev, "refs");
    *refs = NULL;
    *nrefs = 0;
    if (!a || json_is_null(a))
        return CAIRN_OK;
    if (!json_is_array(a))
        return corrupt(err, "\"refs\" is not an array");
    size_t n = json_array_size(a);
    if (!n)
        return CAIRN_OK;
    cairn_reg_ref_t *r = cairn__calloc(n, sizeof *r);
    if (!r)
        return CAIRN_E_NOMEM;
    cairn_rc_t rc = CAIRN_OK;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        const json_t *name = json_object_get(e, "name"), *subj = json_object_get(e, "subject"),
                     *ver = json_object_get(e, "version");
        if (!json_is_string(name) || !json_is_string(subj) || !json_is_integer(ver) ||
            json_integer_value(ver) < 1 || json_integer_value(ver) > INT32_MAX) {
            rc = corrupt(err, "malformed reference");
            goto out;
        }
        r[i].name = cairn__strdup(json_string_value(name));
        r[i].subject = cairn__strdup(json_string_value(subj));
        r[i].version = (int)json_integer_value(ver);
        if (!r[i].name || !r[i].subject) {
            rc = CAIRN_E_NOMEM;
            goto out;
        }
    }
out:
    if (rc != CAIRN_OK) {
        cairn__reg_refs_free(r, n);
        return rc;
    }
    *refs = r;
    *nrefs = n;
    return CAIRN_OK;
}

static cairn_rc_t apply_schema(struct reg_state *st, const json_t *ev, cairn_error_t *err)
{
    const char *subject = NULL, *text;
    int version = 0, id = 0;
    cairn_reg_ref_t *refs = NULL;
    size_t nrefs = 0, text_len;
    struct reg_sch *sch = NULL, *fresh = NULL;
    cairn_rc_t rc;

    if ((rc = get_subject(ev, false, &subject, err)) ||
        (rc = get_int(ev, "version", &version, err)) || (rc = get_int(ev, "id", &id, err)))
        return rc;
    const json_t *jtype = json_object_get(ev, "type"), *jtext = json_object_get(ev, "schema");
    if (!json_is_string(jtype) || !json_is_string(jtext))
        return corrupt(err, "missing \"type\" or \"schema\"");
    const cairn_format_t *format = cairn_format_find(json_string_value(jtype));
    if (!format)
        return corrupt(err, "unknown schema type");
    text = json_string_value(jtext);
    text_len = json_string_length(jtext);
    if ((rc = parse_refs(ev, &refs, &nrefs, err)))
        return rc;

    sch = cairn__reg_sch_by_id(st, id);
    if (sch && !cairn__reg_sch_equals(sch, format, text, text_len, refs, nrefs)) {
        rc = corrupt(err, "id reused for a different schema");
        goto out;
    }
    struct reg_subject *s = subject_get_or_create(st, subject);
    if (!s) {
        rc = CAIRN_E_NOMEM;
        goto out;
    }
    bool found;
    size_t pos = version_pos(s, version, &found);
    if (found) {
        rc = corrupt(err, "version registered twice");
        goto out;
    }
    if (!sch) {
        fresh = cairn__calloc(1, sizeof *fresh);
        cairn_reg_schema_t *pub = cairn__calloc(1, sizeof *pub);
        char *copy = cairn__strndup(text, text_len);
        if (!fresh || !pub || !copy) {
            cairn__free(fresh);
            cairn__free(pub);
            cairn__free(copy);
            fresh = NULL;
            rc = CAIRN_E_NOMEM;
            goto out;
        }
        pub->id = id;
        pub->type = format->name;
        pub->text = copy;
        pub->text_len = text_len;
        pub->refs = refs;
        pub->nrefs = nrefs;
        refs = NULL;
        atomic_init(&pub->api_cache, NULL);
        pub->api_cache_free = NULL;
        atomic_init(&pub->refcount, 1);
        fresh->format = format;
        fresh->pub = pub;
        sch = fresh;
    }
    /* Reserve room first so that nothing below can fail half-way. */
    if (s->nv == s->av) {
        size_t na = s->av ? s->av * 2 : 4;
        struct reg_version *p = cairn__realloc(s->v, na * sizeof *p);
        if (!p) {
            rc = CAIRN_E_NOMEM;
            goto out;
        }
        s->v = p;
        s->av = na;
    }
    if (sch->nuses == sch->auses) {
        size_t na = sch->auses ? sch->auses * 2 : 2;
        struct reg_use *p = cairn__realloc(sch->uses, na * sizeof *p);
        if (!p) {
            rc = CAIRN_E_NOMEM;
            goto out;
        }
        sch->uses = p;
        sch->auses = na;
    }
    if (fresh) {
        if ((rc = cairn__htab_insert(&st->by_id, &fresh->by_id,
                                     cairn__hash_int(CAIRN__HASH_SEED, id))))
            goto out;
        rc = cairn__htab_insert(
            &st->by_text, &fresh->by_text,
            text_hash(format, text, text_len, fresh->pub->refs, fresh->pub->nrefs));
        if (rc) {
            cairn__htab_remove(&st->by_id, &fresh->by_id);
            goto out;
        }
        fresh = NULL; /* owned by the state now */
    }
    memmove(&s->v[pos + 1], &s->v[pos], (s->nv - pos) * sizeof s->v[0]);
    s->v[pos] = (struct reg_version){.version = version, .deleted = false, .sch = sch};
    s->nv++;
    s->nlive++;
    sch->uses[sch->nuses++] = (struct reg_use){.subject = s, .version = version};
    if (id > st->max_id)
        st->max_id = id;
out:
    if (fresh)
        sch_free(fresh);
    cairn__reg_refs_free(refs, nrefs);
    if (rc != CAIRN_OK && (s = cairn__reg_subject_find(st, subject)))
        subject_maybe_drop(st, s);
    return rc;
}

static cairn_rc_t get_permanent(const json_t *ev, bool *out, cairn_error_t *err)
{
    const json_t *j = json_object_get(ev, "permanent");
    if (!json_is_boolean(j))
        return corrupt(err, "missing \"permanent\"");
    *out = json_is_true(j);
    return CAIRN_OK;
}

static cairn_rc_t apply_delete_version(struct reg_state *st, const json_t *ev, cairn_error_t *err)
{
    const char *subject = NULL;
    int version = 0;
    bool permanent = false;
    cairn_rc_t rc;
    if ((rc = get_subject(ev, false, &subject, err)) ||
        (rc = get_int(ev, "version", &version, err)) || (rc = get_permanent(ev, &permanent, err)))
        return rc;
    struct reg_subject *s = cairn__reg_subject_find(st, subject);
    bool found = false;
    size_t i = s ? version_pos(s, version, &found) : 0;
    if (!found)
        return corrupt(err, "delete of a version that does not exist");
    if (permanent) {
        version_remove(s, i);
        subject_maybe_drop(st, s);
    } else if (!s->v[i].deleted) {
        s->v[i].deleted = true;
        s->nlive--;
    }
    return CAIRN_OK;
}

static cairn_rc_t apply_delete_subject(struct reg_state *st, const json_t *ev, cairn_error_t *err)
{
    const char *subject = NULL;
    bool permanent = false;
    cairn_rc_t rc;
    if ((rc = get_subject(ev, false, &subject, err)) || (rc = get_permanent(ev, &permanent, err)))
        return rc;
    struct reg_subject *s = cairn__reg_subject_find(st, subject);
    if (!s)
        return corrupt(err, "delete of a subject that does not exist");
    if (permanent) {
        /* Confluent keeps a subject's config on a soft delete and drops it
         * with the hard delete. */
        while (s->nv)
            version_remove(s, s->nv - 1);
        s->has_level = false;
        s->has_mode = false;
        subject_maybe_drop(st, s);
    } else {
        for (size_t i = 0; i < s->nv; i++)
            s->v[i].deleted = true;
        s->nlive = 0;
    }
    return CAIRN_OK;
}

static cairn_rc_t
apply_config(struct reg_state *st, const json_t *ev, bool is_mode, bool remove, cairn_error_t *err)
{
    const char *subject = NULL;
    cairn_rc_t rc;
    int value = 0;
    if ((rc = get_subject(ev, true, &subject, err)))
        return rc;
    if (!remove) {
        const json_t *j = json_object_get(ev, is_mode ? "mode" : "level");
        if (!json_is_string(j))
            return corrupt(err, is_mode ? "missing \"mode\"" : "missing \"level\"");
        if (is_mode) {
            cairn_reg_mode_t m;
            if (cairn_reg_mode_parse(json_string_value(j), &m) != CAIRN_OK)
                return corrupt(err, "unknown mode");
            value = (int)m;
        } else {
            cairn_compat_level_t l;
            if (cairn_compat_level_parse(json_string_value(j), &l) != CAIRN_OK)
                return corrupt(err, "unknown compatibility level");
            value = (int)l;
        }
    }
    if (!subject) {
        if (is_mode)
            st->mode = remove ? CAIRN__REG_DEFAULT_MODE : (cairn_reg_mode_t)value;
        else
            st->level = remove ? CAIRN__REG_DEFAULT_LEVEL : (cairn_compat_level_t)value;
        return CAIRN_OK;
    }
    struct reg_subject *s;
    if (remove) {
        s = cairn__reg_subject_find(st, subject);
        if (!s)
            return CAIRN_OK;
        if (is_mode)
            s->has_mode = false;
        else
            s->has_level = false;
        subject_maybe_drop(st, s);
        return CAIRN_OK;
    }
    s = subject_get_or_create(st, subject);
    if (!s)
        return CAIRN_E_NOMEM;
    if (is_mode) {
        s->has_mode = true;
        s->mode = (cairn_reg_mode_t)value;
    } else {
        s->has_level = true;
        s->level = (cairn_compat_level_t)value;
    }
    return CAIRN_OK;
}

cairn_rc_t cairn__reg_apply(struct reg_state *st, const json_t *ev, cairn_error_t *err)
{
    const char *t = json_string_value(json_object_get(ev, "t"));
    if (!json_is_object(ev) || !t)
        return corrupt(err, "not an object with a type \"t\"");
    if (!strcmp(t, "schema"))
        return apply_schema(st, ev, err);
    if (!strcmp(t, "delete_version"))
        return apply_delete_version(st, ev, err);
    if (!strcmp(t, "delete_subject"))
        return apply_delete_subject(st, ev, err);
    if (!strcmp(t, "level"))
        return apply_config(st, ev, false, false, err);
    if (!strcmp(t, "level_delete"))
        return apply_config(st, ev, false, true, err);
    if (!strcmp(t, "mode"))
        return apply_config(st, ev, true, false, err);
    if (!strcmp(t, "mode_delete"))
        return apply_config(st, ev, true, true, err);
    return corrupt(err, "unknown record type");
}
