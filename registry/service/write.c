/* SPDX-License-Identifier: MIT */
/*
 * write.c - every call of registry.h that changes the registry: register,
 * the deletes, and the config and mode setters.
 *
 * Each follows one pattern (decide -> record -> apply): under the writer
 * mutex it checks the rules against the current state (Confluent 7.x
 * semantics, see registry.h and docs/REGISTRY-STATE.md), builds the record,
 * and hands it to cairn__reg_commit(), which appends it without waiting
 * and applies it through the same function the fold at open uses. The
 * mutex is released before waiting for durability, so that concurrent
 * writers share one group commit. Every outcome, refusals included, waits
 * for what it observed to be durable before it is returned: an answer never
 * depends on a change that could still be lost.
 *
 * Register parses the candidate before taking the mutex (under the shared
 * lock), so that concurrent registrations parse in parallel; under the
 * mutex it only re-checks that the references still resolve to the same ids.
 */
#include <string.h>

#include "service_int.h"

static cairn_rc_t read_only(cairn_error_t *err, const char *subject)
{
    return cairn__error_set(err, CAIRN_E_INVALID_OPERATION, 0, subject,
                            "subject '%s' is in read-only mode", subject ? subject : "");
}

/* Locks: rw shared or wmu. */
static cairn_rc_t register_gate(cairn_registry_t *reg,
                                const char *subject,
                                const cairn_reg_request_t *req,
                                cairn_error_t *err)
{
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    cairn_reg_mode_t mode = cairn__reg_mode_of(&reg->st, s);
    if (mode == CAIRN_MODE_READONLY)
        return read_only(err, subject);
    if ((req->id || req->version) && mode != CAIRN_MODE_IMPORT)
        return cairn__error_set(err, CAIRN_E_INVALID_OPERATION, 0, subject,
                                "subject '%s' is not in import mode: an id or a version cannot "
                                "be given",
                                subject);
    return CAIRN_OK;
}

static json_t *refs_json(const cairn_reg_ref_t *refs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:i}", "name", refs[i].name, "subject", refs[i].subject,
                              "version", refs[i].version);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Waits for @p end (what the caller observed) unless @p rc already failed hard. */
static cairn_rc_t finish(cairn_registry_t *reg, cairn_rc_t rc, uint64_t end, cairn_error_t *err)
{
    if (!end)
        return rc;
    cairn_rc_t w = cairn__reg_wait_durable(reg, end, rc == CAIRN_OK ? err : NULL);
    return rc == CAIRN_OK ? w : rc;
}

/* ---- register ----------------------------------------------------------- */

cairn_rc_t cairn_registry_register(cairn_registry_t *reg,
                                   const char *subject,
                                   const cairn_reg_request_t *req,
                                   int *id,
                                   cairn_strlist_t *reasons,
                                   cairn_error_t *err)
{
    struct reg_prepared p = {0};
    json_t *ev = NULL;
    uint64_t end = 0;
    bool locked = false;
    cairn_rc_t rc;

    if ((rc = cairn__reg_check_failed(reg, err)) ||
        (rc = cairn_registry_subject_valid(subject, err)))
        return rc;
    if (!req || !req->schema)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, subject, "no schema given");
    if (req->id < 0)
        return cairn__error_set(err, CAIRN_E_INVALID_ID, 0, subject, "invalid id %d", req->id);
    if (req->version < 0)
        return cairn__error_set(err, CAIRN_E_INVALID_VERSION, 0, subject,
                                "the specified version '%d' is not a valid version id",
                                req->version);

    /* Parse outside the writer mutex. */
    pthread_rwlock_rdlock(&reg->rw);
    rc = register_gate(reg, subject, req, err);
    if (rc == CAIRN_OK)
        rc = cairn__reg_prepare(reg, req, &p, err);
    pthread_rwlock_unlock(&reg->rw);
    if (rc != CAIRN_OK)
        goto out;

    pthread_mutex_lock(&reg->wmu);
    locked = true;
    end = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
    if ((rc = cairn__reg_check_failed(reg, err)) || (rc = register_gate(reg, subject, req, err)))
        goto out;
    if (!cairn__reg_prepared_current(reg, &p)) {
        cairn__reg_prepared_release(&p);
        if ((rc = cairn__reg_prepare(reg, req, &p, err)) != CAIRN_OK)
            goto out;
    }
    struct reg_state *st = &reg->st;
    const struct reg_subject *s = cairn__reg_subject_find(st, subject);

    /* An equal schema already live under the subject: its id, nothing new. */
    const struct reg_version *same = cairn__reg_find_equal(reg, s, &p, req->normalize, false);
    if (same) {
        if (req->id && req->id != same->sch->pub->id) {
            rc = cairn__error_set(err, CAIRN_E_INVALID_ID, 0, subject,
                                  "schema already registered under subject '%s' with id %d, "
                                  "not %d",
                                  subject, same->sch->pub->id, req->id);
            goto out;
        }
        *id = same->sch->pub->id;
        goto out;
    }

    if (cairn__reg_mode_of(st, s) != CAIRN_MODE_IMPORT) {
        bool ok = true;
        rc = cairn__reg_compat(reg, s, cairn__reg_level_of(st, s), p.cand, &ok, reasons, err);
        if (rc != CAIRN_OK)
            goto out;
        if (!ok) {
            rc = cairn__error_set(err, CAIRN_E_INCOMPATIBLE, 0, subject,
                                  "Schema being registered is incompatible with an earlier schema "
                                  "for subject \"%s\"",
                                  subject);
            goto out;
        }
    }

    const char *text = req->normalize ? p.cand->normalized : p.cand->canonical;
    size_t text_len = req->normalize ? p.cand->normalized_len : p.cand->canonical_len;
    if (!text) {
        text = p.cand->canonical;
        text_len = p.cand->canonical_len;
    }
    int new_id;
    if (req->id) {
        const struct reg_sch *taken = cairn__reg_sch_by_id(st, req->id);
        if (taken && !cairn__reg_sch_equals(taken, p.format, text, text_len, p.refs, p.nrefs)) {
            rc = cairn__error_set(err, CAIRN_E_INVALID_ID, 0, subject,
                                  "id %d is already used by a different schema", req->id);
            goto out;
        }
        new_id = req->id;
    } else {
        const struct reg_sch *eq =
            cairn__reg_sch_by_text(st, p.format, text, text_len, p.refs, p.nrefs);
        if (eq) {
            new_id = eq->pub->id;
        } else if (st->max_id == INT32_MAX) {
            rc = cairn__error_set(err, CAIRN_E_INTERNAL, 0, subject, "schema ids exhausted");
            goto out;
        } else {
            new_id = st->max_id + 1;
        }
    }
    int new_version;
    if (req->version) {
        if (s && cairn__reg_version_find(s, req->version)) {
            rc = cairn__error_set(err, CAIRN_E_INVALID_OPERATION, 0, subject,
                                  "version %d of subject '%s' already exists", req->version,
                                  subject);
            goto out;
        }
        new_version = req->version;
    } else {
        int highest = s && s->nv ? s->v[s->nv - 1].version : 0;
        if (highest == INT32_MAX) {
            rc = cairn__error_set(err, CAIRN_E_INTERNAL, 0, subject, "versions exhausted");
            goto out;
        }
        new_version = highest + 1;
    }

    json_t *refs = refs_json(p.refs, p.nrefs);
    ev = refs ? json_pack("{s:s, s:s, s:i, s:i, s:s, s:s%, s:o, s:b}", "t", "schema", "subject",
                          subject, "version", new_version, "id", new_id, "type", p.format->name,
                          "schema", text, text_len, "refs", refs, "normalize", req->normalize)
              : NULL;
    if (!ev) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "cannot build a registry record");
        goto out;
    }
    if ((rc = cairn__reg_commit(reg, ev, &end, err)) != CAIRN_OK)
        goto out;
    /* The candidate's model is the stored schema's when the text is its
     * canonical form: keep it for the next check against this subject. */
    if (!req->normalize || text == p.cand->canonical)
        cairn__reg_cache_put(&reg->cache, new_id, p.cand);
    *id = new_id;
out:
    if (locked)
        pthread_mutex_unlock(&reg->wmu);
    rc = finish(reg, rc, end, err);
    json_decref(ev);
    cairn__reg_prepared_release(&p);
    return rc;
}

/* ---- deletes ------------------------------------------------------------ */

static cairn_rc_t
reference_exists(cairn_registry_t *reg, const char *subject, int version, cairn_error_t *err)
{
    int *ids = NULL;
    size_t n = 0;
    if (cairn__reg_referrers(&reg->st, subject, version, &ids, &n) != CAIRN_OK)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
    cairn_rc_t rc = CAIRN_OK;
    if (n)
        rc = cairn__error_set(err, CAIRN_E_CONFLICT_REFERENCE_EXISTS, 0, subject,
                              "version %d of subject '%s' is referenced by schema %d", version,
                              subject, ids[0]);
    cairn__free(ids);
    return rc;
}

cairn_rc_t cairn_registry_delete_subject(cairn_registry_t *reg,
                                         const char *subject,
                                         bool permanent,
                                         int **versions,
                                         size_t *n,
                                         cairn_error_t *err)
{
    cairn_rc_t rc;
    json_t *ev = NULL;
    int *list = NULL;
    size_t cnt = 0;
    uint64_t end = 0;

    *versions = NULL;
    *n = 0;
    if ((rc = cairn__reg_check_failed(reg, err)) ||
        (rc = cairn_registry_subject_valid(subject, err)))
        return rc;
    pthread_mutex_lock(&reg->wmu);
    end = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
    if ((rc = cairn__reg_check_failed(reg, err)))
        goto out;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    if (cairn__reg_mode_of(&reg->st, s) == CAIRN_MODE_READONLY) {
        rc = read_only(err, subject);
        goto out;
    }
    if (!s || !s->nv) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT, 0, subject, "subject '%s' not found",
                              subject);
        goto out;
    }
    if (!permanent && !s->nlive) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT_SOFT_DELETED, 0, subject,
                              "subject '%s' was soft deleted: set permanent=true to delete it "
                              "permanently",
                              subject);
        goto out;
    }
    if (permanent && s->nlive) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT_NOT_SOFT_DELETED, 0, subject,
                              "subject '%s' was not deleted first before being permanently "
                              "deleted",
                              subject);
        goto out;
    }
    if (!(list = cairn__calloc(s->nv, sizeof *list))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s->nv; i++) {
        if (!permanent && s->v[i].deleted)
            continue;
        if ((rc = reference_exists(reg, subject, s->v[i].version, err)))
            goto out;
        list[cnt++] = s->v[i].version;
    }
    ev = json_pack("{s:s, s:s, s:b}", "t", "delete_subject", "subject", subject, "permanent",
                   permanent);
    if (!ev) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "cannot build a registry record");
        goto out;
    }
    rc = cairn__reg_commit(reg, ev, &end, err);
out:
    pthread_mutex_unlock(&reg->wmu);
    rc = finish(reg, rc, end, err);
    json_decref(ev);
    if (rc != CAIRN_OK) {
        cairn__free(list);
        return rc;
    }
    *versions = list;
    *n = cnt;
    return CAIRN_OK;
}

cairn_rc_t cairn_registry_delete_version(cairn_registry_t *reg,
                                         const char *subject,
                                         int version,
                                         bool permanent,
                                         int *deleted_version,
                                         cairn_error_t *err)
{
    cairn_rc_t rc;
    json_t *ev = NULL;
    uint64_t end = 0;

    if ((rc = cairn__reg_check_failed(reg, err)) ||
        (rc = cairn_registry_subject_valid(subject, err)))
        return rc;
    if (version == 0 || version < -1)
        return cairn__error_set(err, CAIRN_E_INVALID_VERSION, 0, subject,
                                "the specified version '%d' is not a valid version id", version);
    pthread_mutex_lock(&reg->wmu);
    end = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
    if ((rc = cairn__reg_check_failed(reg, err)))
        goto out;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    if (cairn__reg_mode_of(&reg->st, s) == CAIRN_MODE_READONLY) {
        rc = read_only(err, subject);
        goto out;
    }
    if (!s || !s->nv) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT, 0, subject, "subject '%s' not found",
                              subject);
        goto out;
    }
    const struct reg_version *v =
        version == -1 ? cairn__reg_version_latest(s, false) : cairn__reg_version_find(s, version);
    if (!v) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_VERSION, 0, subject,
                              "version %d of subject '%s' not found", version, subject);
        goto out;
    }
    if (!permanent && v->deleted) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_VERSION_SOFT_DELETED, 0, subject,
                              "version %d of subject '%s' was soft deleted: set permanent=true "
                              "to delete it permanently",
                              v->version, subject);
        goto out;
    }
    if (permanent && !v->deleted) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_VERSION_NOT_SOFT_DELETED, 0, subject,
                              "version %d of subject '%s' was not deleted first before being "
                              "permanently deleted",
                              v->version, subject);
        goto out;
    }
    int which = v->version;
    if ((rc = reference_exists(reg, subject, which, err)))
        goto out;
    ev = json_pack("{s:s, s:s, s:i, s:b}", "t", "delete_version", "subject", subject, "version",
                   which, "permanent", permanent);
    if (!ev) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "cannot build a registry record");
        goto out;
    }
    if ((rc = cairn__reg_commit(reg, ev, &end, err)) == CAIRN_OK && deleted_version)
        *deleted_version = which;
out:
    pthread_mutex_unlock(&reg->wmu);
    rc = finish(reg, rc, end, err);
    json_decref(ev);
    return rc;
}

/* ---- config and mode ------------------------------------------------------ */

/* Builds {"t":t,"subject":subject|null[,key:value]}. */
static json_t *config_event(const char *t, const char *subject, const char *key, const char *value)
{
    json_t *ev = json_pack("{s:s, s:s?}", "t", t, "subject", subject);
    if (ev && key && json_object_set_new(ev, key, json_string(value))) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

static cairn_rc_t commit_config(
    cairn_registry_t *reg, const char *subject, json_t *ev, uint64_t *end, cairn_error_t *err)
{
    if (!ev)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, subject, "cannot build a registry record");
    return cairn__reg_commit(reg, ev, end, err);
}

cairn_rc_t cairn_registry_set_level(cairn_registry_t *reg,
                                    const char *subject,
                                    cairn_compat_level_t level,
                                    cairn_error_t *err)
{
    cairn_rc_t rc;
    json_t *ev = NULL;
    uint64_t end = 0;
    if ((rc = cairn__reg_check_failed(reg, err)) ||
        (subject && (rc = cairn_registry_subject_valid(subject, err))))
        return rc;
    if ((unsigned)level > (unsigned)CAIRN_COMPAT_FULL_TRANSITIVE)
        return cairn__error_set(err, CAIRN_E_INVALID_LEVEL, 0, subject,
                                "invalid compatibility level %d", (int)level);
    pthread_mutex_lock(&reg->wmu);
    end = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
    if ((rc = cairn__reg_check_failed(reg, err)) == CAIRN_OK) {
        ev = config_event("level", subject, "level", cairn_compat_level_name(level));
        rc = commit_config(reg, subject, ev, &end, err);
    }
    pthread_mutex_unlock(&reg->wmu);
    json_decref(ev);
    return finish(reg, rc, end, err);
}

/*
 * The shared body of delete_level and delete_mode: both remove a subject's
 * own setting (Confluent answers 40401 whenever the subject has none) or
 * reset the global one, and report in @p old what it was.
 */
static cairn_rc_t delete_setting(
    cairn_registry_t *reg, const char *subject, bool is_mode, int *old, cairn_error_t *err)
{
    cairn_rc_t rc;
    json_t *ev = NULL;
    uint64_t end = 0;
    if ((rc = cairn__reg_check_failed(reg, err)) ||
        (subject && (rc = cairn_registry_subject_valid(subject, err))))
        return rc;
    pthread_mutex_lock(&reg->wmu);
    end = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
    if ((rc = cairn__reg_check_failed(reg, err)))
        goto out;
    int was = is_mode ? (int)reg->st.mode : (int)reg->st.level;
    if (subject) {
        const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
        if (!s || !(is_mode ? s->has_mode : s->has_level)) {
            rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT, 0, subject,
                                  "subject '%s' not found", subject);
            goto out;
        }
        was = is_mode ? (int)s->mode : (int)s->level;
    }
    ev = config_event(is_mode ? "mode_delete" : "level_delete", subject, NULL, NULL);
    if ((rc = commit_config(reg, subject, ev, &end, err)) == CAIRN_OK && old)
        *old = was;
out:
    pthread_mutex_unlock(&reg->wmu);
    json_decref(ev);
    return finish(reg, rc, end, err);
}

cairn_rc_t cairn_registry_delete_level(cairn_registry_t *reg,
                                       const char *subject,
                                       cairn_compat_level_t *old,
                                       cairn_error_t *err)
{
    int was = 0;
    cairn_rc_t rc = delete_setting(reg, subject, false, &was, err);
    if (rc == CAIRN_OK && old)
        *old = (cairn_compat_level_t)was;
    return rc;
}

cairn_rc_t cairn_registry_set_mode(cairn_registry_t *reg,
                                   const char *subject,
                                   cairn_reg_mode_t mode,
                                   bool force,
                                   cairn_error_t *err)
{
    cairn_rc_t rc;
    json_t *ev = NULL;
    uint64_t end = 0;
    if ((rc = cairn__reg_check_failed(reg, err)) ||
        (subject && (rc = cairn_registry_subject_valid(subject, err))))
        return rc;
    if ((unsigned)mode > (unsigned)CAIRN_MODE_IMPORT)
        return cairn__error_set(err, CAIRN_E_INVALID_MODE, 0, subject, "invalid mode %d",
                                (int)mode);
    pthread_mutex_lock(&reg->wmu);
    end = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
    if ((rc = cairn__reg_check_failed(reg, err)))
        goto out;
    if (mode == CAIRN_MODE_IMPORT && !force) {
        bool has = false;
        if (subject) {
            const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
            has = s && s->nlive;
        } else {
            size_t b = 0;
            for (struct cairn__hnode *node = cairn__htab_iter(&reg->st.subjects, &b, NULL);
                 node && !has; node = cairn__htab_iter(&reg->st.subjects, &b, node))
                has = cairn__container_of(node, struct reg_subject, node)->nlive > 0;
        }
        if (has) {
            rc = cairn__error_set(err, CAIRN_E_INVALID_OPERATION, 0, subject,
                                  "cannot import since found existing subjects");
            goto out;
        }
    }
    ev = config_event("mode", subject, "mode", cairn_reg_mode_name(mode));
    rc = commit_config(reg, subject, ev, &end, err);
out:
    pthread_mutex_unlock(&reg->wmu);
    json_decref(ev);
    return finish(reg, rc, end, err);
}

cairn_rc_t cairn_registry_delete_mode(cairn_registry_t *reg,
                                      const char *subject,
                                      cairn_reg_mode_t *old,
                                      cairn_error_t *err)
{
    int was = 0;
    cairn_rc_t rc = delete_setting(reg, subject, true, &was, err);
    if (rc == CAIRN_OK && old)
        *old = (cairn_reg_mode_t)was;
    return rc;
}
