/* SPDX-License-Identifier: MIT */
/*
 * models.c - parsed schemas, on demand: the bounded LRU cache of models by
 * id, the resolution of references (a schema is parsed with the models of
 * the versions it references, recursively and depth-bounded), the parse of
 * a request, and the compatibility check of a candidate against a subject.
 *
 * Why a cache and not a model per schema: the state must stay small (10,000
 * schemas in a few MiB of canonical text), while compatibility checks must
 * be fast (a check against 20 versions of a 50-field schema well under 2 ms).
 * Parsed models are immutable and refcounted, so a reader keeps its
 * reference while the cache evicts.
 *
 * Locks: the cache has its own mutex, held only for the table and list
 * operations (never while parsing). The state-reading functions here need
 * the state to stay still: the caller holds the rwlock shared or the
 * writer mutex.
 */
#include <string.h>

#include "service_int.h"

cairn_rc_t cairn__reg_cache_init(struct reg_model_cache *c, size_t cap)
{
    memset(c, 0, sizeof *c);
    cairn__htab_init(&c->by_id);
    c->cap = cap ? cap : 4096;
    if (pthread_mutex_init(&c->mu, NULL))
        return CAIRN_E_NOMEM;
    return CAIRN_OK;
}

void cairn__reg_cache_release(struct reg_model_cache *c)
{
    struct reg_cached *e = c->head;
    while (e) {
        struct reg_cached *next = e->next;
        cairn_schema_unref(e->model);
        cairn__free(e);
        e = next;
    }
    cairn__htab_release(&c->by_id);
    pthread_mutex_destroy(&c->mu);
}

static struct reg_cached *cache_find(struct reg_model_cache *c, int id)
{
    uint64_t h = cairn__hash_int(CAIRN__HASH_SEED, id);
    for (struct cairn__hnode *n = cairn__htab_first(&c->by_id, h); n; n = cairn__htab_next(n, h)) {
        struct reg_cached *e = cairn__container_of(n, struct reg_cached, node);
        if (e->id == id)
            return e;
    }
    return NULL;
}

static void lru_unlink(struct reg_model_cache *c, struct reg_cached *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct reg_model_cache *c, struct reg_cached *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

cairn_schema_t *cairn__reg_cache_get(struct reg_model_cache *c, int id)
{
    cairn_schema_t *m = NULL;
    pthread_mutex_lock(&c->mu);
    struct reg_cached *e = cache_find(c, id);
    if (e) {
        if (c->head != e) {
            lru_unlink(c, e);
            lru_push_front(c, e);
        }
        m = cairn_schema_ref(e->model);
    }
    pthread_mutex_unlock(&c->mu);
    return m;
}

void cairn__reg_cache_put(struct reg_model_cache *c, int id, cairn_schema_t *model)
{
    struct reg_cached *evicted = NULL;
    struct reg_cached *e = cairn__calloc(1, sizeof *e);
    if (!e)
        return; /* a cache may forget */
    e->id = id;
    e->model = cairn_schema_ref(model);
    pthread_mutex_lock(&c->mu);
    if (cache_find(c, id) ||
        cairn__htab_insert(&c->by_id, &e->node, cairn__hash_int(CAIRN__HASH_SEED, id)) !=
            CAIRN_OK) {
        pthread_mutex_unlock(&c->mu);
        cairn_schema_unref(e->model);
        cairn__free(e);
        return;
    }
    lru_push_front(c, e);
    c->n++;
    if (c->n > c->cap) {
        evicted = c->tail;
        lru_unlink(c, evicted);
        cairn__htab_remove(&c->by_id, &evicted->node);
        c->n--;
    }
    pthread_mutex_unlock(&c->mu);
    if (evicted) {
        cairn_schema_unref(evicted->model);
        cairn__free(evicted);
    }
}

/* ---- models of stored schemas ---------------------------------------- */

/* Resolves references to stored versions, returning new model references in
 * @p models (which the caller unrefs) and the entries in @p schs. */
static cairn_rc_t resolve_refs(cairn_registry_t *reg,
                               const cairn_reg_ref_t *refs,
                               size_t nrefs,
                               bool live_only,
                               int depth,
                               cairn_schema_ref_t *out,
                               const struct reg_sch **schs,
                               cairn_error_t *err)
{
    for (size_t i = 0; i < nrefs; i++)
        out[i] = (cairn_schema_ref_t){.name = refs[i].name, .schema = NULL};
    for (size_t i = 0; i < nrefs; i++) {
        const cairn_reg_ref_t *r = &refs[i];
        const struct reg_subject *s =
            r->subject && cairn_registry_subject_valid(r->subject, NULL) == CAIRN_OK
                ? cairn__reg_subject_find(&reg->st, r->subject)
                : NULL;
        const struct reg_version *v = NULL;
        if (s)
            v = r->version == -1 ? cairn__reg_version_latest(s, false)
                                 : cairn__reg_version_find(s, r->version);
        if (!v || (live_only && v->deleted))
            return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, r->name,
                                    "reference '%s' to subject '%s' version %d does not exist",
                                    r->name ? r->name : "", r->subject ? r->subject : "",
                                    r->version);
        cairn_schema_t *m = NULL;
        cairn_rc_t rc = cairn__reg_model(reg, v->sch, depth + 1, &m, err);
        if (rc != CAIRN_OK)
            return rc;
        out[i].schema = m;
        if (schs)
            schs[i] = v->sch;
    }
    return CAIRN_OK;
}

static void unref_models(cairn_schema_ref_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cairn_schema_t *m = (cairn_schema_t *)(uintptr_t)r[i].schema;
        cairn_schema_unref(m);
    }
}

cairn_rc_t cairn__reg_model(cairn_registry_t *reg,
                            const struct reg_sch *sch,
                            int depth,
                            cairn_schema_t **out,
                            cairn_error_t *err)
{
    const cairn_reg_schema_t *p = sch->pub;
    *out = cairn__reg_cache_get(&reg->cache, p->id);
    if (*out)
        return CAIRN_OK;
    if (depth > CAIRN__REG_MAX_REF_DEPTH)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                "references are nested deeper than %d", CAIRN__REG_MAX_REF_DEPTH);
    cairn_rc_t rc = CAIRN_OK;
    cairn_schema_ref_t *refs = NULL;
    if (p->nrefs && !(refs = cairn__calloc(p->nrefs, sizeof *refs)))
        return CAIRN_E_NOMEM;
    /* A stored schema may reference a version soft-deleted since. */
    rc = resolve_refs(reg, p->refs, p->nrefs, false, depth, refs, NULL, err);
    if (rc == CAIRN_OK)
        rc = sch->format->parse(p->text, p->text_len, refs, p->nrefs, out, err);
    if (refs) {
        unref_models(refs, p->nrefs);
        cairn__free(refs);
    }
    if (rc == CAIRN_OK)
        cairn__reg_cache_put(&reg->cache, p->id, *out);
    return rc;
}

/* ---- requests --------------------------------------------------------- */

void cairn__reg_prepared_release(struct reg_prepared *p)
{
    cairn_schema_unref(p->cand);
    cairn__reg_refs_free(p->refs, p->nrefs);
    cairn__free(p->ref_ids);
    memset(p, 0, sizeof *p);
}

cairn_rc_t cairn__reg_prepare(cairn_registry_t *reg,
                              const cairn_reg_request_t *req,
                              struct reg_prepared *p,
                              cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_schema_ref_t *mrefs = NULL;
    const struct reg_sch **schs = NULL;

    memset(p, 0, sizeof *p);
    if (!req || !req->schema)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "no schema given");
    size_t len = req->schema_len ? req->schema_len : strlen(req->schema);
    if (len > reg->max_schema_bytes)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                "schema of %zu bytes exceeds the limit of %zu bytes", len,
                                reg->max_schema_bytes);
    p->format = cairn_format_find(req->schema_type);
    if (!p->format)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "unknown schema type '%s'",
                                req->schema_type);
    if (req->nrefs) {
        mrefs = cairn__calloc(req->nrefs, sizeof *mrefs);
        schs = cairn__calloc(req->nrefs, sizeof *schs);
        p->ref_ids = cairn__calloc(req->nrefs, sizeof *p->ref_ids);
        if (!mrefs || !schs || !p->ref_ids ||
            cairn__reg_refs_copy(req->refs, req->nrefs, &p->refs) != CAIRN_OK) {
            rc = CAIRN_E_NOMEM;
            goto out;
        }
        p->nrefs = req->nrefs;
        for (size_t i = 0; i < req->nrefs; i++) {
            if (!req->refs[i].name || !*req->refs[i].name) {
                rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                      "reference %zu has no name", i);
                goto out;
            }
        }
        rc = resolve_refs(reg, req->refs, req->nrefs, true, 0, mrefs, schs, err);
        if (rc != CAIRN_OK)
            goto out;
        for (size_t i = 0; i < req->nrefs; i++) {
            p->ref_ids[i] = schs[i]->pub->id;
            if (p->refs[i].version == -1) {
                /* Store the version it resolved to, so the stored schema
                 * always means the same thing. */
                for (size_t u = 0; u < schs[i]->nuses; u++) {
                    const struct reg_use *use = &schs[i]->uses[u];
                    const struct reg_version *lv = cairn__reg_version_latest(use->subject, false);
                    if (!strcmp(use->subject->name, p->refs[i].subject) && lv &&
                        lv->version == use->version) {
                        p->refs[i].version = use->version;
                        break;
                    }
                }
            }
        }
    }
    rc = p->format->parse(req->schema, len, mrefs, req->nrefs, &p->cand, err);
out:
    if (mrefs) {
        unref_models(mrefs, req->nrefs);
        cairn__free(mrefs);
    }
    cairn__free(schs);
    if (rc != CAIRN_OK)
        cairn__reg_prepared_release(p);
    return rc;
}

bool cairn__reg_prepared_current(cairn_registry_t *reg, const struct reg_prepared *p)
{
    for (size_t i = 0; i < p->nrefs; i++) {
        const struct reg_subject *s = cairn__reg_subject_find(&reg->st, p->refs[i].subject);
        const struct reg_version *v = s ? cairn__reg_version_find(s, p->refs[i].version) : NULL;
        if (!v || v->deleted || v->sch->pub->id != p->ref_ids[i])
            return false;
    }
    return true;
}

/* ---- compatibility ---------------------------------------------------- */

cairn_rc_t cairn__reg_compat(cairn_registry_t *reg,
                             const struct reg_subject *s,
                             cairn_compat_level_t level,
                             const cairn_schema_t *cand,
                             bool *compatible,
                             cairn_strlist_t *reasons,
                             cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    const cairn_schema_t **prev = NULL;
    int *vers = NULL;
    size_t n = 0;

    *compatible = true;
    if (level == CAIRN_COMPAT_NONE || !s || !s->nlive)
        return CAIRN_OK;
    bool transitive = level == CAIRN_COMPAT_BACKWARD_TRANSITIVE ||
                      level == CAIRN_COMPAT_FORWARD_TRANSITIVE ||
                      level == CAIRN_COMPAT_FULL_TRANSITIVE;
    size_t want = transitive ? s->nlive : 1;
    prev = cairn__calloc(want, sizeof *prev);
    vers = cairn__calloc(want, sizeof *vers);
    if (!prev || !vers) {
        rc = CAIRN_E_NOMEM;
        goto out;
    }
    /* Oldest first; a non-transitive level needs only the latest. */
    for (size_t i = 0; i < s->nv && n < want; i++) {
        const struct reg_version *v = &s->v[i];
        if (v->deleted)
            continue;
        if (!transitive && v != cairn__reg_version_latest(s, false))
            continue;
        cairn_schema_t *m = NULL;
        rc = cairn__reg_model(reg, v->sch, 1, &m, err);
        if (rc != CAIRN_OK)
            goto out;
        prev[n] = m;
        vers[n] = v->version;
        n++;
    }
    rc = cairn_compat_check(level, cand, prev, vers, n, reasons);
    if (rc == CAIRN_E_INCOMPATIBLE) {
        *compatible = false;
        rc = CAIRN_OK;
    } else if (rc != CAIRN_OK) {
        rc = cairn__error_set(err, rc, 0, s->name, "compatibility check failed");
    }
out:
    for (size_t i = 0; i < n; i++)
        cairn_schema_unref((cairn_schema_t *)(uintptr_t)prev[i]);
    cairn__free(prev);
    cairn__free(vers);
    return rc;
}

/* ---- equality --------------------------------------------------------- */

static bool refs_equal(const cairn_reg_schema_t *pub, const struct reg_prepared *p)
{
    if (pub->nrefs != p->nrefs)
        return false;
    for (size_t i = 0; i < p->nrefs; i++) {
        if (strcmp(pub->refs[i].name, p->refs[i].name) ||
            strcmp(pub->refs[i].subject, p->refs[i].subject) ||
            pub->refs[i].version != p->refs[i].version)
            return false;
    }
    return true;
}

static bool text_is(const cairn_reg_schema_t *pub, const char *text, size_t len)
{
    return pub->text_len == len && !memcmp(pub->text, text, len);
}

const struct reg_version *cairn__reg_find_equal(cairn_registry_t *reg,
                                                const struct reg_subject *s,
                                                const struct reg_prepared *p,
                                                bool normalize,
                                                bool include_deleted)
{
    if (!s)
        return NULL;
    const cairn_schema_t *c = p->cand;
    for (size_t i = s->nv; i-- > 0;) {
        const struct reg_version *v = &s->v[i];
        const cairn_reg_schema_t *pub = v->sch->pub;
        if ((v->deleted && !include_deleted) || v->sch->format != p->format || !refs_equal(pub, p))
            continue;
        if (text_is(pub, c->canonical, c->canonical_len))
            return v;
        if (!normalize)
            continue;
        if (c->normalized && text_is(pub, c->normalized, c->normalized_len))
            return v;
        /* Stored in canonical form: compare its normalized form. */
        cairn_schema_t *m = NULL;
        if (cairn__reg_model(reg, v->sch, 1, &m, NULL) != CAIRN_OK)
            continue;
        bool same = m->normalized && c->normalized && m->normalized_len == c->normalized_len &&
                    !memcmp(m->normalized, c->normalized, c->normalized_len);
        cairn_schema_unref(m);
        if (same)
            return v;
    }
    return NULL;
}
