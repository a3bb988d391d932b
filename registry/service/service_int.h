/* SPDX-License-Identifier: MIT */
/*
 * service_int.h - private umbrella header of the registry service: the
 * in-memory state folded from the "_registry" stream, the intrusive hash
 * tables it is indexed with, the bounded cache of parsed models and the
 * registry handle with its locks.
 *
 * Invariants (see docs/REGISTRY-STATE.md for the records and the fold):
 * - The state changes only in cairn__reg_apply(), called with the writer
 *   mutex and the write side of the rwlock held, for a record that is
 *   already in the log (live path) or read from it (fold at open).
 * - struct reg_subject.v is sorted by version, ascending, without duplicates;
 *   `nlive` counts its entries whose `deleted` is false.
 * - struct reg_sch is never freed before close: an id stays known (and its
 *   text reusable) even once every version using it was hard-deleted; it is
 *   "gone" for readers when `nuses` is 0.
 * - Every struct reg_sch is in `by_id` (key: id) and `by_text` (key: format,
 *   stored text and references); several ids may share one text key (IMPORT).
 * - applied_end >= durable_end; readers wait for applied_end to be durable
 *   before they look at the state.
 */
#ifndef CAIRN_REGISTRY_SERVICE_INT_H
#define CAIRN_REGISTRY_SERVICE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cairn/eventstore.h"
#include "common.h"
#include "format.h"
#include "registry.h"

#define CAIRN__REG_STREAM        "_registry"
#define CAIRN__REG_MAX_REF_DEPTH 16
#define CAIRN__REG_DEFAULT_LEVEL CAIRN_COMPAT_BACKWARD
#define CAIRN__REG_DEFAULT_MODE  CAIRN_MODE_READWRITE

#define cairn__container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* ---- intrusive chained hash table (htab.c) ---------------------------- */

struct cairn__hnode {
    struct cairn__hnode *next;
    uint64_t hash;
};

struct cairn__htab {
    struct cairn__hnode **buckets;
    size_t nbuckets; /* a power of two, or 0 before the first insert */
    size_t n;
};

void cairn__htab_init(struct cairn__htab *t);
/** @brief Frees the bucket array only; the nodes belong to their objects. */
void cairn__htab_release(struct cairn__htab *t);
/** @brief Inserts @p node; growing is best effort: NOMEM only for an empty table. */
cairn_rc_t cairn__htab_insert(struct cairn__htab *t, struct cairn__hnode *node, uint64_t hash);
void cairn__htab_remove(struct cairn__htab *t, struct cairn__hnode *node);
/** @brief First node with @p hash (then cairn__htab_next), or NULL. */
struct cairn__hnode *cairn__htab_first(const struct cairn__htab *t, uint64_t hash);
struct cairn__hnode *cairn__htab_next(const struct cairn__hnode *node, uint64_t hash);
/** @brief Iteration over every node: *bucket starts at 0, *node at NULL. */
struct cairn__hnode *
cairn__htab_iter(const struct cairn__htab *t, size_t *bucket, struct cairn__hnode *node);

uint64_t cairn__hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t cairn__hash_int(uint64_t h, int64_t v);
#define CAIRN__HASH_SEED 0xcbf29ce484222325ull

/* ---- state (state.c) -------------------------------------------------- */

struct reg_subject;

struct reg_use {
    struct reg_subject *subject;
    int version;
};

struct reg_sch {
    struct cairn__hnode by_id;
    struct cairn__hnode by_text;
    const cairn_format_t *format;
    cairn_reg_schema_t *pub; /* the shared immutable view; one reference held here */
    struct reg_use *uses;
    size_t nuses, auses;
};

struct reg_version {
    int version;
    bool deleted;
    struct reg_sch *sch;
};

struct reg_subject {
    struct cairn__hnode node;
    char *name;
    size_t name_len;
    struct reg_version *v;
    size_t nv, av;
    size_t nlive;
    bool has_level;
    cairn_compat_level_t level;
    bool has_mode;
    cairn_reg_mode_t mode;
};

struct reg_state {
    struct cairn__htab subjects;
    struct cairn__htab by_id;
    struct cairn__htab by_text;
    cairn_compat_level_t level;
    cairn_reg_mode_t mode;
    int max_id;
};

void cairn__reg_state_init(struct reg_state *st);
void cairn__reg_state_release(struct reg_state *st);

struct reg_subject *cairn__reg_subject_find(const struct reg_state *st, const char *name);
/** @brief The entry of @p version in @p s, or NULL. */
struct reg_version *cairn__reg_version_find(const struct reg_subject *s, int version);
/** @brief The latest version, live only unless @p include_deleted; NULL when none. */
struct reg_version *cairn__reg_version_latest(const struct reg_subject *s, bool include_deleted);
struct reg_sch *cairn__reg_sch_by_id(const struct reg_state *st, int id);
/** @brief True when some use of @p sch is a version that is not soft-deleted. */
bool cairn__reg_sch_live(const struct reg_sch *sch);
/** @brief Lowest id whose stored schema has this format, text and references, or NULL. */
struct reg_sch *cairn__reg_sch_by_text(const struct reg_state *st,
                                       const cairn_format_t *format,
                                       const char *text,
                                       size_t len,
                                       const cairn_reg_ref_t *refs,
                                       size_t nrefs);
bool cairn__reg_sch_equals(const struct reg_sch *sch,
                           const cairn_format_t *format,
                           const char *text,
                           size_t len,
                           const cairn_reg_ref_t *refs,
                           size_t nrefs);
/** @brief The subject's own mode, else the global one. */
cairn_reg_mode_t cairn__reg_mode_of(const struct reg_state *st, const struct reg_subject *s);
cairn_compat_level_t cairn__reg_level_of(const struct reg_state *st, const struct reg_subject *s);
/** @brief Ids of the live schemas referencing @p subject / @p version, ascending (caller frees). */
cairn_rc_t cairn__reg_referrers(
    const struct reg_state *st, const char *subject, int version, int **ids, size_t *n);

/**
 * @brief Applies one record of the registry log to @p st: the one place the
 * state changes, for the fold at open and for every live write alike.
 * @returns CAIRN_OK; CAIRN_E_CORRUPT for an unknown or malformed record, or
 *          one that contradicts the state; CAIRN_E_NOMEM.
 * Locks: the caller holds whatever excludes readers.
 */
cairn_rc_t cairn__reg_apply(struct reg_state *st, const json_t *ev, cairn_error_t *err);

/* ---- parsed-model cache (models.c) ------------------------------------ */

struct reg_cached {
    struct cairn__hnode node;
    int id;
    cairn_schema_t *model;
    struct reg_cached *prev, *next; /* LRU list: head is the most recent */
};

struct reg_model_cache {
    pthread_mutex_t mu;
    struct cairn__htab by_id;
    struct reg_cached *head, *tail;
    size_t n, cap;
};

cairn_rc_t cairn__reg_cache_init(struct reg_model_cache *c, size_t cap);
void cairn__reg_cache_release(struct reg_model_cache *c);
/** @brief A new reference to the cached model of @p id, or NULL. Thread: any. */
cairn_schema_t *cairn__reg_cache_get(struct reg_model_cache *c, int id);
/** @brief Keeps a reference to @p model for @p id (evicting the least recent). Thread: any. */
void cairn__reg_cache_put(struct reg_model_cache *c, int id, cairn_schema_t *model);

/* ---- the handle (registry.c) ------------------------------------------ */

struct cairn_registry {
    char *data_dir;
    size_t max_schema_bytes;
    cairn_log_t *log;
    pthread_mutex_t wmu; /* one writer deciding and appending at a time */
    pthread_rwlock_t rw; /* readers shared; apply exclusive */
    struct reg_state st; /* Locks: read under rw (shared) or wmu; write under wmu + rw */
    struct reg_model_cache cache;
    uint64_t stream_version; /* Locks: wmu */
    _Atomic uint64_t applied_end;
    _Atomic uint64_t durable_end;
    atomic_bool failed;
};

/** @brief CAIRN_E_IO_FSYNC once the registry has failed. */
cairn_rc_t cairn__reg_check_failed(cairn_registry_t *reg, cairn_error_t *err);
/** @brief Waits until everything up to @p end is durable; enters the failed state on error. */
cairn_rc_t cairn__reg_wait_durable(cairn_registry_t *reg, uint64_t end, cairn_error_t *err);
/**
 * @brief Start of every read: the failed check, then the rwlock shared, with
 * everything applied so far durable (waits and retries when it is not).
 * On CAIRN_OK the caller holds rw shared and releases it with
 * pthread_rwlock_unlock.
 */
cairn_rc_t cairn__reg_read_lock(cairn_registry_t *reg, cairn_error_t *err);

/**
 * @brief The parsed model of a stored schema, resolving its references
 * (recursively, at most CAIRN__REG_MAX_REF_DEPTH deep) through the cache.
 * @param[out] out a new reference.
 * Locks: the state must not change (rw shared, or wmu).
 */
cairn_rc_t cairn__reg_model(cairn_registry_t *reg,
                            const struct reg_sch *sch,
                            int depth,
                            cairn_schema_t **out,
                            cairn_error_t *err);

/** A request's schema, parsed with its references resolved. */
struct reg_prepared {
    const cairn_format_t *format;
    cairn_schema_t *cand;
    cairn_reg_ref_t *refs; /* resolved copies: concrete versions */
    int *ref_ids;          /* the id each reference resolved to */
    size_t nrefs;
};

/** Locks: the state must not change (rw shared, or wmu). */
cairn_rc_t cairn__reg_prepare(cairn_registry_t *reg,
                              const cairn_reg_request_t *req,
                              struct reg_prepared *p,
                              cairn_error_t *err);
/** @brief True when the resolved references still point at the same ids. Locks: as prepare. */
bool cairn__reg_prepared_current(cairn_registry_t *reg, const struct reg_prepared *p);
void cairn__reg_prepared_release(struct reg_prepared *p);

/**
 * @brief The latest version of @p s (live only unless @p include_deleted)
 * whose schema equals the prepared one: same format and references, and the
 * same canonical text, or with @p normalize the same normalized form.
 * Locks: as prepare.
 */
const struct reg_version *cairn__reg_find_equal(cairn_registry_t *reg,
                                                const struct reg_subject *s,
                                                const struct reg_prepared *p,
                                                bool normalize,
                                                bool include_deleted);

/**
 * @brief Checks @p cand against the live versions of @p s that @p level
 * requires (all for transitive levels, the latest otherwise).
 * Locks: as prepare.
 */
cairn_rc_t cairn__reg_compat(cairn_registry_t *reg,
                             const struct reg_subject *s,
                             cairn_compat_level_t level,
                             const cairn_schema_t *cand,
                             bool *compatible,
                             cairn_strlist_t *reasons,
                             cairn_error_t *err);

/** @brief Deep copy of references (NULL, 0 gives NULL). */
cairn_rc_t cairn__reg_refs_copy(const cairn_reg_ref_t *refs, size_t n, cairn_reg_ref_t **out);
void cairn__reg_refs_free(cairn_reg_ref_t *refs, size_t n);

/** @brief Fills @p out with a copy of (subject, version) and a new schema reference. */
cairn_rc_t cairn__reg_version_out(const struct reg_subject *s,
                                  const struct reg_version *v,
                                  bool with_schema,
                                  cairn_reg_version_t *out);

/**
 * @brief Appends @p ev to the log (expected version = the tracked stream
 * version), applies it, and returns the ticket to wait for.
 * Locks: the caller holds wmu; this takes rw exclusively for the apply.
 */
cairn_rc_t
cairn__reg_commit(cairn_registry_t *reg, json_t *ev, uint64_t *ticket, cairn_error_t *err);

#endif
