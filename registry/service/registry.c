/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the registry handle: open (lock the data directory, fold the
 * "_registry" stream), close, the durability rule for readers, the commit
 * of one record, and every read call of registry.h.
 *
 * Durability: a write appends its record without waiting (under the writer
 * mutex), applies it, publishes `applied_end` = its ticket, releases the
 * mutex and only then waits for the group commit that covers the ticket.
 * So several writers share one fdatasync. A reader must not see a change
 * that is not durable yet: it takes the rwlock shared, and if `applied_end`
 * is past `durable_end` it lets go, waits for `applied_end` to be durable
 * and tries again. When nothing is pending that is two atomic loads.
 *
 * A failed fdatasync is fatal for the log (DESIGN.md): the registry then
 * enters a failed state in which every call returns CAIRN_E_IO_FSYNC; a
 * restart reopens the log, whose recovery keeps what was durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_int.h"

/* ---- durability and locks --------------------------------------------- */

cairn_rc_t cairn__reg_check_failed(cairn_registry_t *reg, cairn_error_t *err)
{
    if (atomic_load_explicit(&reg->failed, memory_order_acquire))
        return cairn__error_set(err, CAIRN_E_IO_FSYNC, CAIRN_ERR_FATAL, reg->data_dir,
                                "registry log failed to sync: restart the registry");
    return CAIRN_OK;
}

cairn_rc_t cairn__reg_wait_durable(cairn_registry_t *reg, uint64_t end, cairn_error_t *err)
{
    uint64_t d = atomic_load_explicit(&reg->durable_end, memory_order_acquire);
    if (end <= d)
        return CAIRN_OK;
    cairn_rc_t rc = cairn_log_wait_durable(reg->log, end, err);
    if (rc != CAIRN_OK) {
        atomic_store_explicit(&reg->failed, true, memory_order_release);
        cairn__log(CAIRN_LOG_ERR, "registry", "registry log sync failed: %s", cairn_rc_str(rc));
        return cairn__error_set(err, CAIRN_E_IO_FSYNC, CAIRN_ERR_FATAL, reg->data_dir,
                                "registry log failed to sync");
    }
    while (d < end && !atomic_compare_exchange_weak_explicit(
                          &reg->durable_end, &d, end, memory_order_acq_rel, memory_order_acquire))
        ;
    return CAIRN_OK;
}

cairn_rc_t cairn__reg_read_lock(cairn_registry_t *reg, cairn_error_t *err)
{
    for (;;) {
        cairn_rc_t rc = cairn__reg_check_failed(reg, err);
        if (rc != CAIRN_OK)
            return rc;
        pthread_rwlock_rdlock(&reg->rw);
        uint64_t a = atomic_load_explicit(&reg->applied_end, memory_order_acquire);
        if (a <= atomic_load_explicit(&reg->durable_end, memory_order_acquire))
            return CAIRN_OK;
        pthread_rwlock_unlock(&reg->rw);
        if ((rc = cairn__reg_wait_durable(reg, a, err)) != CAIRN_OK)
            return rc;
    }
}

cairn_rc_t
cairn__reg_commit(cairn_registry_t *reg, json_t *ev, uint64_t *ticket, cairn_error_t *err)
{
    cairn_rc_t rc;
    char *value = json_dumps(ev, JSON_COMPACT);
    if (!value)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot encode a registry record");
    cairn_record_t rec = {.stream = CAIRN__REG_STREAM, .value = value, .value_len = strlen(value)};
    uint64_t last = 0, t = 0;
    rc = cairn_log_append_nowait(reg->log, CAIRN__REG_STREAM, (int64_t)reg->stream_version, &rec, 1,
                                 &last, &t, err);
    free(value);
    if (rc != CAIRN_OK) {
        if (rc == CAIRN_E_IO_FSYNC || (err && (err->flags & CAIRN_ERR_FATAL)))
            atomic_store_explicit(&reg->failed, true, memory_order_release);
        return rc;
    }
    reg->stream_version = last;
    pthread_rwlock_wrlock(&reg->rw);
    rc = cairn__reg_apply(&reg->st, ev, err);
    atomic_store_explicit(&reg->applied_end, t, memory_order_release);
    pthread_rwlock_unlock(&reg->rw);
    if (rc != CAIRN_OK) {
        /* The record is in the log but not in memory: only a reopen (which
         * folds it) can make them agree again. */
        atomic_store_explicit(&reg->failed, true, memory_order_release);
        cairn__log(CAIRN_LOG_ERR, "registry", "cannot apply a written record: %s",
                   cairn_rc_str(rc));
        return rc;
    }
    *ticket = t;
    return CAIRN_OK;
}

/* ---- open and close --------------------------------------------------- */

struct fold_ctx {
    cairn_registry_t *reg;
    cairn_rc_t rc;
    cairn_error_t *err;
    uint64_t last_version;
};

static int fold_one(void *opaque, const cairn_record_t *r)
{
    struct fold_ctx *ctx = opaque;
    cairn_error_t e = {0};
    json_error_t jerr;
    json_t *ev = json_loadb(r->value, r->value_len, JSON_REJECT_DUPLICATES, &jerr);
    cairn_rc_t rc;
    if (!ev)
        rc = cairn__error_set(&e, CAIRN_E_CORRUPT, 0, NULL, "not json: %s", jerr.text);
    else
        rc = cairn__reg_apply(&ctx->reg->st, ev, &e);
    json_decref(ev);
    if (rc != CAIRN_OK) {
        ctx->rc = rc;
        char where[64];
        snprintf(where, sizeof where, "%s@%llu", CAIRN__REG_STREAM,
                 (unsigned long long)r->position);
        cairn__error_set(ctx->err, rc, rc == CAIRN_E_CORRUPT ? CAIRN_ERR_FATAL : 0, where,
                         "registry log record %llu at position %llu: %s",
                         (unsigned long long)r->version, (unsigned long long)r->position, e.text);
        return 1;
    }
    ctx->last_version = r->version;
    return 0;
}

cairn_rc_t cairn_registry_open(const cairn_registry_options_t *opts,
                               cairn_registry_t **out,
                               cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_registry_t *reg = NULL;
    char *url = NULL;
    bool mu = false, rw = false, cache = false;

    *out = NULL;
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no data directory given");
    reg = cairn__calloc(1, sizeof *reg);
    if (!reg)
        return CAIRN_E_NOMEM;
    reg->data_dir = cairn__strdup(opts->data_dir);
    reg->max_schema_bytes = opts->max_schema_bytes ? opts->max_schema_bytes : (size_t)1 << 20;
    cairn__reg_state_init(&reg->st);
    atomic_init(&reg->applied_end, 0);
    atomic_init(&reg->durable_end, 0);
    atomic_init(&reg->failed, false);
    size_t ulen = strlen(opts->data_dir) + 6;
    url = cairn__malloc(ulen);
    if (!reg->data_dir || !url) {
        rc = CAIRN_E_NOMEM;
        goto out;
    }
    snprintf(url, ulen, "file:%s", opts->data_dir);
    if (pthread_mutex_init(&reg->wmu, NULL)) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot create a mutex");
        goto out;
    }
    mu = true;
    if (pthread_rwlock_init(&reg->rw, NULL)) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot create a lock");
        goto out;
    }
    rw = true;
    if ((rc = cairn__reg_cache_init(&reg->cache, opts->model_cache_entries)) != CAIRN_OK)
        goto out;
    cache = true;

    cairn_log_options_t lopts = {.no_sync = opts->no_sync};
    if ((rc = cairn_log_open(url, &lopts, &reg->log, err)) != CAIRN_OK)
        goto out;

    struct fold_ctx ctx = {.reg = reg, .rc = CAIRN_OK, .err = err};
    rc = cairn_log_read_stream(reg->log, CAIRN__REG_STREAM, 0, fold_one, &ctx, err);
    if (rc == CAIRN_AGAIN)
        rc = ctx.rc;
    else if (rc == CAIRN_DONE)
        rc = CAIRN_OK;
    if (rc != CAIRN_OK)
        goto out;
    reg->stream_version = cairn_log_stream_version(reg->log, CAIRN__REG_STREAM);
    if (reg->stream_version != ctx.last_version) {
        rc = cairn__error_set(err, CAIRN_E_CORRUPT, CAIRN_ERR_FATAL, CAIRN__REG_STREAM,
                              "registry stream has version %llu but %llu records were read",
                              (unsigned long long)reg->stream_version,
                              (unsigned long long)ctx.last_version);
        goto out;
    }
    uint64_t end = cairn_log_end(reg->log);
    atomic_store(&reg->applied_end, end);
    atomic_store(&reg->durable_end, end);
    cairn__log(CAIRN_LOG_INFO, "registry", "registry folded %llu records, max id %d",
               (unsigned long long)reg->stream_version, reg->st.max_id);
out:
    cairn__free(url);
    if (rc != CAIRN_OK) {
        cairn_log_close(reg->log);
        cairn__reg_state_release(&reg->st);
        if (cache)
            cairn__reg_cache_release(&reg->cache);
        if (rw)
            pthread_rwlock_destroy(&reg->rw);
        if (mu)
            pthread_mutex_destroy(&reg->wmu);
        cairn__free(reg->data_dir);
        cairn__free(reg);
        return rc;
    }
    *out = reg;
    return CAIRN_OK;
}

void cairn_registry_close(cairn_registry_t *reg)
{
    if (!reg)
        return;
    /* Writers have all returned (the caller stopped the API first), so
     * everything applied was waited for; closing the log finishes the rest. */
    cairn_log_close(reg->log);
    cairn__reg_cache_release(&reg->cache);
    cairn__reg_state_release(&reg->st);
    pthread_rwlock_destroy(&reg->rw);
    pthread_mutex_destroy(&reg->wmu);
    cairn__free(reg->data_dir);
    cairn__free(reg);
}

/* ---- helpers for the reads -------------------------------------------- */

static int cmp_subject_ptr(const void *a, const void *b)
{
    const struct reg_subject *x = *(const struct reg_subject *const *)a;
    const struct reg_subject *y = *(const struct reg_subject *const *)b;
    return strcmp(x->name, y->name);
}

static bool subject_listed(const struct reg_subject *s, cairn_reg_deleted_t deleted)
{
    switch (deleted) {
    case CAIRN_DELETED_EXCLUDE:
        return s->nlive > 0;
    case CAIRN_DELETED_INCLUDE:
        return s->nv > 0;
    case CAIRN_DELETED_ONLY:
        /* Confluent's deletedOnly: every version of the subject is soft-deleted. */
        return s->nv > 0 && s->nlive == 0;
    }
    return false;
}

/* The subjects matching @p prefix for which @p keep is true, sorted by name. */
static cairn_rc_t sorted_subjects(const struct reg_state *st,
                                  const char *prefix,
                                  cairn_reg_deleted_t deleted,
                                  struct reg_subject ***out,
                                  size_t *n)
{
    size_t cnt = 0, b = 0, plen = prefix ? strlen(prefix) : 0;
    struct reg_subject **arr = cairn__calloc(st->subjects.n ? st->subjects.n : 1, sizeof *arr);
    if (!arr)
        return CAIRN_E_NOMEM;
    for (struct cairn__hnode *node = cairn__htab_iter(&st->subjects, &b, NULL); node;
         node = cairn__htab_iter(&st->subjects, &b, node)) {
        struct reg_subject *s = cairn__container_of(node, struct reg_subject, node);
        if ((plen && strncmp(s->name, prefix, plen)) || !subject_listed(s, deleted))
            continue;
        arr[cnt++] = s;
    }
    if (cnt > 1)
        qsort(arr, cnt, sizeof *arr, cmp_subject_ptr);
    *out = arr;
    *n = cnt;
    return CAIRN_OK;
}

static cairn_rc_t subject_arg(const char *subject, cairn_error_t *err)
{
    return cairn_registry_subject_valid(subject, err);
}

static cairn_rc_t not_found_subject(cairn_error_t *err, const char *subject)
{
    return cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT, 0, subject, "subject '%s' not found",
                            subject);
}

static cairn_rc_t not_found_version(cairn_error_t *err, const char *subject, int version)
{
    return cairn__error_set(err, CAIRN_E_NOT_FOUND_VERSION, 0, subject,
                            "version %d of subject '%s' not found", version, subject);
}

static cairn_rc_t nomem(cairn_error_t *err)
{
    return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
}

/* ---- subjects and versions -------------------------------------------- */

cairn_rc_t cairn_registry_subjects(cairn_registry_t *reg,
                                   const char *prefix,
                                   cairn_reg_deleted_t deleted,
                                   cairn_strlist_t *out,
                                   cairn_error_t *err)
{
    struct reg_subject **arr = NULL;
    size_t n = 0;
    cairn_strlist_init(out);
    cairn_rc_t rc = cairn__reg_read_lock(reg, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = sorted_subjects(&reg->st, prefix, deleted, &arr, &n);
    for (size_t i = 0; rc == CAIRN_OK && i < n; i++)
        rc = cairn_strlist_push(out, arr[i]->name);
    pthread_rwlock_unlock(&reg->rw);
    cairn__free(arr);
    if (rc != CAIRN_OK) {
        cairn_strlist_release(out);
        return nomem(err);
    }
    return CAIRN_OK;
}

cairn_rc_t cairn_registry_versions(cairn_registry_t *reg,
                                   const char *subject,
                                   cairn_reg_deleted_t deleted,
                                   int **versions,
                                   size_t *n,
                                   cairn_error_t *err)
{
    cairn_rc_t rc;
    *versions = NULL;
    *n = 0;
    if ((rc = subject_arg(subject, err)) || (rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    if (!s || !s->nv || (deleted == CAIRN_DELETED_EXCLUDE && !s->nlive)) {
        rc = not_found_subject(err, subject);
        goto out;
    }
    int *arr = cairn__calloc(s->nv, sizeof *arr);
    if (!arr) {
        rc = nomem(err);
        goto out;
    }
    size_t cnt = 0;
    for (size_t i = 0; i < s->nv; i++) {
        bool d = s->v[i].deleted;
        if ((deleted == CAIRN_DELETED_EXCLUDE && d) || (deleted == CAIRN_DELETED_ONLY && !d))
            continue;
        arr[cnt++] = s->v[i].version;
    }
    *versions = arr;
    *n = cnt;
out:
    pthread_rwlock_unlock(&reg->rw);
    return rc;
}

cairn_rc_t cairn_registry_get_version(cairn_registry_t *reg,
                                      const char *subject,
                                      int version,
                                      bool include_deleted,
                                      cairn_reg_version_t *out,
                                      cairn_error_t *err)
{
    cairn_rc_t rc;
    memset(out, 0, sizeof *out);
    if ((rc = subject_arg(subject, err)))
        return rc;
    if (version == 0 || version < -1)
        return cairn__error_set(err, CAIRN_E_INVALID_VERSION, 0, subject,
                                "the specified version '%d' is not a valid version id", version);
    if ((rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    if (!s || !s->nv || (!include_deleted && !s->nlive)) {
        rc = not_found_subject(err, subject);
        goto out;
    }
    const struct reg_version *v = version == -1 ? cairn__reg_version_latest(s, include_deleted)
                                                : cairn__reg_version_find(s, version);
    if (!v || (v->deleted && !include_deleted)) {
        rc = not_found_version(err, subject, version);
        goto out;
    }
    if (cairn__reg_version_out(s, v, true, out) != CAIRN_OK)
        rc = nomem(err);
out:
    pthread_rwlock_unlock(&reg->rw);
    return rc;
}

cairn_rc_t cairn_registry_lookup(cairn_registry_t *reg,
                                 const char *subject,
                                 const cairn_reg_request_t *req,
                                 bool include_deleted,
                                 cairn_reg_version_t *out,
                                 cairn_error_t *err)
{
    cairn_rc_t rc;
    struct reg_prepared p = {0};
    memset(out, 0, sizeof *out);
    if ((rc = subject_arg(subject, err)) || (rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    if (!s || !s->nv || (!include_deleted && !s->nlive)) {
        rc = not_found_subject(err, subject);
        goto out;
    }
    if ((rc = cairn__reg_prepare(reg, req, &p, err)) != CAIRN_OK)
        goto out;
    const struct reg_version *v =
        cairn__reg_find_equal(reg, s, &p, req->normalize, include_deleted);
    if (!v) {
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SCHEMA, 0, subject,
                              "schema not found under subject '%s'", subject);
        goto out;
    }
    if (cairn__reg_version_out(s, v, true, out) != CAIRN_OK)
        rc = nomem(err);
out:
    pthread_rwlock_unlock(&reg->rw);
    cairn__reg_prepared_release(&p);
    return rc;
}

cairn_rc_t cairn_registry_referenced_by(cairn_registry_t *reg,
                                        const char *subject,
                                        int version,
                                        int **ids,
                                        size_t *n,
                                        cairn_error_t *err)
{
    cairn_rc_t rc;
    *ids = NULL;
    *n = 0;
    if ((rc = subject_arg(subject, err)))
        return rc;
    if (version == 0 || version < -1)
        return cairn__error_set(err, CAIRN_E_INVALID_VERSION, 0, subject,
                                "the specified version '%d' is not a valid version id", version);
    if ((rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    if (!s || !s->nv) {
        rc = not_found_subject(err, subject);
        goto out;
    }
    const struct reg_version *v =
        version == -1 ? cairn__reg_version_latest(s, false) : cairn__reg_version_find(s, version);
    if (!v) {
        rc = not_found_version(err, subject, version);
        goto out;
    }
    if (cairn__reg_referrers(&reg->st, subject, v->version, ids, n) != CAIRN_OK)
        rc = nomem(err);
out:
    pthread_rwlock_unlock(&reg->rw);
    return rc;
}

/* ---- schemas by id ----------------------------------------------------- */

static bool sch_used_by(const struct reg_sch *sch, const char *subject)
{
    for (size_t i = 0; i < sch->nuses; i++) {
        if (!strcmp(sch->uses[i].subject->name, subject))
            return true;
    }
    return false;
}

static cairn_rc_t schema_not_found(cairn_error_t *err, int id)
{
    return cairn__error_set(err, CAIRN_E_NOT_FOUND_SCHEMA, 0, NULL, "schema %d not found", id);
}

/* The hot read path: a hash look-up and a reference, nothing allocated. */
cairn_rc_t cairn_registry_schema_by_id(cairn_registry_t *reg,
                                       int id,
                                       const char *subject,
                                       cairn_reg_schema_t **out,
                                       cairn_error_t *err)
{
    cairn_rc_t rc;
    *out = NULL;
    if (subject && (rc = subject_arg(subject, err)))
        return rc;
    if ((rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_sch *sch = cairn__reg_sch_by_id(&reg->st, id);
    if (!sch || !sch->nuses || (subject && !sch_used_by(sch, subject)))
        rc = schema_not_found(err, id);
    else
        *out = cairn_reg_schema_ref(sch->pub);
    pthread_rwlock_unlock(&reg->rw);
    return rc;
}

int cairn_registry_max_id(cairn_registry_t *reg)
{
    if (cairn__reg_read_lock(reg, NULL) != CAIRN_OK)
        return 0;
    int id = reg->st.max_id;
    pthread_rwlock_unlock(&reg->rw);
    return id;
}

static int cmp_use(const void *a, const void *b)
{
    const struct reg_use *x = a, *y = b;
    int c = strcmp(x->subject->name, y->subject->name);
    return c ? c : (x->version > y->version) - (x->version < y->version);
}

/* The uses of @p id, filtered and sorted (caller frees); NOT_FOUND_SCHEMA when gone. */
static cairn_rc_t uses_of(cairn_registry_t *reg,
                          int id,
                          bool include_deleted,
                          struct reg_use **out,
                          size_t *n,
                          cairn_error_t *err)
{
    const struct reg_sch *sch = cairn__reg_sch_by_id(&reg->st, id);
    *out = NULL;
    *n = 0;
    if (!sch || !sch->nuses)
        return schema_not_found(err, id);
    struct reg_use *arr = cairn__calloc(sch->nuses, sizeof *arr);
    if (!arr)
        return nomem(err);
    size_t cnt = 0;
    for (size_t i = 0; i < sch->nuses; i++) {
        const struct reg_version *v =
            cairn__reg_version_find(sch->uses[i].subject, sch->uses[i].version);
        if (v && (include_deleted || !v->deleted))
            arr[cnt++] = sch->uses[i];
    }
    if (cnt > 1)
        qsort(arr, cnt, sizeof *arr, cmp_use);
    *out = arr;
    *n = cnt;
    return CAIRN_OK;
}

cairn_rc_t cairn_registry_subjects_by_id(
    cairn_registry_t *reg, int id, bool include_deleted, cairn_strlist_t *out, cairn_error_t *err)
{
    struct reg_use *uses = NULL;
    size_t n = 0;
    cairn_strlist_init(out);
    cairn_rc_t rc = cairn__reg_read_lock(reg, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = uses_of(reg, id, include_deleted, &uses, &n, err);
    for (size_t i = 0; rc == CAIRN_OK && i < n; i++) {
        if (i && uses[i].subject == uses[i - 1].subject)
            continue;
        if (cairn_strlist_push(out, uses[i].subject->name) != CAIRN_OK)
            rc = nomem(err);
    }
    pthread_rwlock_unlock(&reg->rw);
    cairn__free(uses);
    if (rc != CAIRN_OK)
        cairn_strlist_release(out);
    return rc;
}

cairn_rc_t cairn_registry_versions_by_id(cairn_registry_t *reg,
                                         int id,
                                         bool include_deleted,
                                         cairn_reg_version_t **out,
                                         size_t *n,
                                         cairn_error_t *err)
{
    struct reg_use *uses = NULL;
    size_t cnt = 0;
    *out = NULL;
    *n = 0;
    cairn_rc_t rc = cairn__reg_read_lock(reg, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = uses_of(reg, id, include_deleted, &uses, &cnt, err);
    cairn_reg_version_t *arr = NULL;
    if (rc == CAIRN_OK && !(arr = cairn__calloc(cnt ? cnt : 1, sizeof *arr)))
        rc = nomem(err);
    for (size_t i = 0; rc == CAIRN_OK && i < cnt; i++) {
        const struct reg_version *v = cairn__reg_version_find(uses[i].subject, uses[i].version);
        if (cairn__reg_version_out(uses[i].subject, v, false, &arr[i]) != CAIRN_OK)
            rc = nomem(err);
    }
    pthread_rwlock_unlock(&reg->rw);
    cairn__free(uses);
    if (rc != CAIRN_OK) {
        cairn_reg_versions_free(arr, cnt);
        return rc;
    }
    *out = arr;
    *n = cnt;
    return CAIRN_OK;
}

cairn_rc_t cairn_registry_list_schemas(cairn_registry_t *reg,
                                       const char *prefix,
                                       bool include_deleted,
                                       bool latest_only,
                                       cairn_reg_version_t **out,
                                       size_t *n,
                                       cairn_error_t *err)
{
    struct reg_subject **subs = NULL;
    size_t nsubs = 0, total = 0, cnt = 0;
    cairn_reg_version_t *arr = NULL;
    *out = NULL;
    *n = 0;
    cairn_rc_t rc = cairn__reg_read_lock(reg, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = sorted_subjects(&reg->st, prefix,
                         include_deleted ? CAIRN_DELETED_INCLUDE : CAIRN_DELETED_EXCLUDE, &subs,
                         &nsubs);
    if (rc != CAIRN_OK) {
        rc = nomem(err);
        goto out;
    }
    for (size_t i = 0; i < nsubs; i++)
        total += latest_only ? 1 : subs[i]->nv;
    if (!(arr = cairn__calloc(total ? total : 1, sizeof *arr))) {
        rc = nomem(err);
        goto out;
    }
    for (size_t i = 0; i < nsubs && rc == CAIRN_OK; i++) {
        const struct reg_subject *s = subs[i];
        if (latest_only) {
            const struct reg_version *v = cairn__reg_version_latest(s, include_deleted);
            if (v && cairn__reg_version_out(s, v, true, &arr[cnt++]) != CAIRN_OK)
                rc = nomem(err);
            continue;
        }
        for (size_t j = 0; j < s->nv && rc == CAIRN_OK; j++) {
            if (s->v[j].deleted && !include_deleted)
                continue;
            if (cairn__reg_version_out(s, &s->v[j], true, &arr[cnt++]) != CAIRN_OK)
                rc = nomem(err);
        }
    }
out:
    pthread_rwlock_unlock(&reg->rw);
    cairn__free(subs);
    if (rc != CAIRN_OK) {
        cairn_reg_versions_free(arr, cnt);
        return rc;
    }
    *out = arr;
    *n = cnt;
    return CAIRN_OK;
}

/* ---- compatibility ------------------------------------------------------ */

/* The direction of a level when only one version is checked. */
static cairn_compat_level_t one_version_level(cairn_compat_level_t level)
{
    switch (level) {
    case CAIRN_COMPAT_BACKWARD_TRANSITIVE:
        return CAIRN_COMPAT_BACKWARD;
    case CAIRN_COMPAT_FORWARD_TRANSITIVE:
        return CAIRN_COMPAT_FORWARD;
    case CAIRN_COMPAT_FULL_TRANSITIVE:
        return CAIRN_COMPAT_FULL;
    default:
        return level;
    }
}

cairn_rc_t cairn_registry_check(cairn_registry_t *reg,
                                const char *subject,
                                int version,
                                const cairn_reg_request_t *req,
                                bool *compatible,
                                cairn_strlist_t *reasons,
                                cairn_error_t *err)
{
    cairn_rc_t rc;
    struct reg_prepared p = {0};
    cairn_schema_t *old = NULL;
    *compatible = false;
    if ((rc = subject_arg(subject, err)))
        return rc;
    if (version < -1)
        return cairn__error_set(err, CAIRN_E_INVALID_VERSION, 0, subject,
                                "the specified version '%d' is not a valid version id", version);
    if ((rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_subject *s = cairn__reg_subject_find(&reg->st, subject);
    const struct reg_version *v = NULL;
    if (version > 0) {
        if (!s || !s->nlive) {
            rc = not_found_subject(err, subject);
            goto out;
        }
        v = cairn__reg_version_find(s, version);
        if (!v || v->deleted) {
            rc = not_found_version(err, subject, version);
            goto out;
        }
    } else if (version == -1 && s) {
        v = cairn__reg_version_latest(s, false);
    }
    if ((rc = cairn__reg_prepare(reg, req, &p, err)) != CAIRN_OK)
        goto out;
    cairn_compat_level_t level = cairn__reg_level_of(&reg->st, s);
    if (version == 0) {
        rc = cairn__reg_compat(reg, s, level, p.cand, compatible, reasons, err);
        goto out;
    }
    if (!v || level == CAIRN_COMPAT_NONE) {
        *compatible = true; /* an empty subject accepts anything */
        goto out;
    }
    if ((rc = cairn__reg_model(reg, v->sch, 1, &old, err)) != CAIRN_OK)
        goto out;
    const cairn_schema_t *prev[1] = {old};
    int vers[1] = {v->version};
    rc = cairn_compat_check(one_version_level(level), p.cand, prev, vers, 1, reasons);
    if (rc == CAIRN_OK) {
        *compatible = true;
    } else if (rc == CAIRN_E_INCOMPATIBLE) {
        rc = CAIRN_OK;
    } else {
        rc = cairn__error_set(err, rc, 0, subject, "compatibility check failed");
    }
out:
    pthread_rwlock_unlock(&reg->rw);
    cairn_schema_unref(old);
    cairn__reg_prepared_release(&p);
    return rc;
}

/* ---- config and mode (reads) ------------------------------------------- */

/*
 * The shared body of get_level and get_mode: a subject's own setting, else
 * (with @p default_to_global) the global one; 40408 / 40409 when neither.
 */
static cairn_rc_t get_setting(cairn_registry_t *reg,
                              const char *subject,
                              bool default_to_global,
                              bool is_mode,
                              int *out,
                              cairn_error_t *err)
{
    cairn_rc_t rc;
    if ((subject && (rc = subject_arg(subject, err))) || (rc = cairn__reg_read_lock(reg, err)))
        return rc;
    const struct reg_subject *s = subject ? cairn__reg_subject_find(&reg->st, subject) : NULL;
    bool own = s && (is_mode ? s->has_mode : s->has_level);
    if (subject && !own && !default_to_global)
        rc = is_mode ? cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT_MODE, 0, subject,
                                        "subject '%s' does not have subject-level mode configured",
                                        subject)
                     : cairn__error_set(err, CAIRN_E_NOT_FOUND_SUBJECT_LEVEL, 0, subject,
                                        "subject '%s' does not have subject-level compatibility "
                                        "configured",
                                        subject);
    else
        *out =
            is_mode ? (int)cairn__reg_mode_of(&reg->st, s) : (int)cairn__reg_level_of(&reg->st, s);
    pthread_rwlock_unlock(&reg->rw);
    return rc;
}

cairn_rc_t cairn_registry_get_level(cairn_registry_t *reg,
                                    const char *subject,
                                    bool default_to_global,
                                    cairn_compat_level_t *out,
                                    cairn_error_t *err)
{
    int v = 0;
    cairn_rc_t rc = get_setting(reg, subject, default_to_global, false, &v, err);
    if (rc == CAIRN_OK)
        *out = (cairn_compat_level_t)v;
    return rc;
}

cairn_rc_t cairn_registry_get_mode(cairn_registry_t *reg,
                                   const char *subject,
                                   bool default_to_global,
                                   cairn_reg_mode_t *out,
                                   cairn_error_t *err)
{
    int v = 0;
    cairn_rc_t rc = get_setting(reg, subject, default_to_global, true, &v, err);
    if (rc == CAIRN_OK)
        *out = (cairn_reg_mode_t)v;
    return rc;
}
