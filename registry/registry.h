/* SPDX-License-Identifier: MIT */
/*
 * registry.h - the schema registry service: subjects, versions, global ids,
 * compatibility config and modes, folded from one stream of its own log.
 * Knows no HTTP: api/ maps requests onto these calls and their results onto
 * Confluent's JSON shapes.
 *
 * Semantics follow Confluent Schema Registry 7.x (see docs/API.md):
 * - register: a schema equal to any live version of the subject returns that
 *   version's id and adds nothing; otherwise it is checked against the
 *   versions its level requires (deleted versions excluded), gets the global
 *   id of an equal schema under any subject or the next id, and the version
 *   after the subject's highest (soft-deleted versions count; hard-deleted
 *   ones are gone, so a subject hard-deleted whole starts again at 1).
 * - "equal schema": same format, same canonical string (or normalized form
 *   when normalize is asked), same references.
 *
 * Durability: every change is a record appended to the registry's log and
 * acknowledged only after it is durable; readers never observe a change
 * before it is durable (a read that finds undurable changes applied waits
 * for the group commit that covers them).
 *
 * Threading: every function may be called from any thread. Writes are
 * serialised by one lock held while deciding and writing (not while
 * fsyncing); reads take a shared lock. Results are copies owned by the
 * caller, except cairn_reg_schema_t, which is refcounted and immutable.
 */
#ifndef CAIRN_REGISTRY_REGISTRY_H
#define CAIRN_REGISTRY_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "format.h"

typedef struct cairn_registry cairn_registry_t;

typedef enum cairn_reg_mode {
    CAIRN_MODE_READWRITE = 0,
    CAIRN_MODE_READONLY,
    CAIRN_MODE_IMPORT,
} cairn_reg_mode_t;

const char *cairn_reg_mode_name(cairn_reg_mode_t mode);
/** @returns CAIRN_OK or CAIRN_E_INVALID_MODE. Case-sensitive, as Confluent. */
cairn_rc_t cairn_reg_mode_parse(const char *name, cairn_reg_mode_t *out);

/** Which versions a listing includes (Confluent's deleted / deletedOnly). */
typedef enum cairn_reg_deleted {
    CAIRN_DELETED_EXCLUDE = 0,
    CAIRN_DELETED_INCLUDE,
    CAIRN_DELETED_ONLY,
} cairn_reg_deleted_t;

/** A schema reference as the REST API carries it. */
typedef struct cairn_reg_ref {
    char *name;
    char *subject;
    int version;
} cairn_reg_ref_t;

/**
 * A stored schema: immutable, shared by every version that has its id.
 * `api_cache` lets the HTTP layer keep a pre-serialised answer beside it
 * (set once with compare-and-swap; freed with `api_cache_free`).
 */
typedef struct cairn_reg_schema {
    int id;
    const char *type; /* "AVRO" */
    char *text;       /* the canonical string (what GET returns) */
    size_t text_len;
    cairn_reg_ref_t *refs;
    size_t nrefs;
    _Atomic(void *) api_cache;
    void (*api_cache_free)(void *);
    atomic_int refcount;
} cairn_reg_schema_t;

cairn_reg_schema_t *cairn_reg_schema_ref(cairn_reg_schema_t *s);
void cairn_reg_schema_unref(cairn_reg_schema_t *s);

/** One subject/version, as returned by the version, look-up and listing calls. */
typedef struct cairn_reg_version {
    char *subject;
    int version;
    bool deleted;
    cairn_reg_schema_t *schema; /* a reference owned by this struct */
} cairn_reg_version_t;

void cairn_reg_version_release(cairn_reg_version_t *v);
void cairn_reg_versions_free(cairn_reg_version_t *v, size_t n);

/** What a register, look-up or compatibility request carries. */
typedef struct cairn_reg_request {
    const char *schema; /* the schema text */
    size_t schema_len;
    const char *schema_type; /* NULL means "AVRO" */
    const cairn_reg_ref_t *refs;
    size_t nrefs;
    int id;      /* 0 = assign; IMPORT mode only */
    int version; /* 0 = assign; IMPORT mode only */
    bool normalize;
} cairn_reg_request_t;

typedef struct cairn_registry_options {
    const char *data_dir;       /* the log's directory */
    size_t max_schema_bytes;    /* 0 = 1 MiB */
    size_t model_cache_entries; /* parsed schemas kept for checks; 0 = 4096 */
    int no_sync;                /* benchmarks of CPU cost only */
} cairn_registry_options_t;

/**
 * @brief Opens the data directory (locking it to this process) and folds the log.
 * @returns CAIRN_OK; CAIRN_E_CONFLICT_LOCKED when another server holds it;
 *          CAIRN_E_CORRUPT, CAIRN_E_IO.
 */
cairn_rc_t cairn_registry_open(const cairn_registry_options_t *opts,
                               cairn_registry_t **out,
                               cairn_error_t *err);
void cairn_registry_close(cairn_registry_t *reg);

/* ---- subjects and versions ------------------------------------------ */

/** @brief Subjects with a live version (or per @p deleted), sorted, filtered by prefix. */
cairn_rc_t cairn_registry_subjects(cairn_registry_t *reg,
                                   const char *prefix,
                                   cairn_reg_deleted_t deleted,
                                   cairn_strlist_t *out,
                                   cairn_error_t *err);

/** @brief Version numbers of @p subject, ascending; CAIRN_E_NOT_FOUND_SUBJECT when none. */
cairn_rc_t cairn_registry_versions(cairn_registry_t *reg,
                                   const char *subject,
                                   cairn_reg_deleted_t deleted,
                                   int **versions,
                                   size_t *n,
                                   cairn_error_t *err);

/**
 * @brief One version; @p version -1 is the latest live one.
 * @returns CAIRN_E_NOT_FOUND_SUBJECT, CAIRN_E_NOT_FOUND_VERSION (also for a
 *          soft-deleted version unless @p include_deleted).
 */
cairn_rc_t cairn_registry_get_version(cairn_registry_t *reg,
                                      const char *subject,
                                      int version,
                                      bool include_deleted,
                                      cairn_reg_version_t *out,
                                      cairn_error_t *err);

/**
 * @brief Registers a schema under @p subject.
 * @param[out] id the schema's global id.
 * @param reasons on CAIRN_E_INCOMPATIBLE, why (may be NULL).
 * @returns CAIRN_OK; CAIRN_E_INVALID_SCHEMA (err says why, also for a
 *          reference that does not resolve); CAIRN_E_INCOMPATIBLE;
 *          CAIRN_E_INVALID_OPERATION in READONLY mode or for an explicit id
 *          or version outside IMPORT mode; CAIRN_E_INVALID_ID when IMPORT
 *          gives an id already taken by another schema; CAIRN_E_IO* when
 *          the log could not make it durable (nothing acknowledged).
 */
cairn_rc_t cairn_registry_register(cairn_registry_t *reg,
                                   const char *subject,
                                   const cairn_reg_request_t *req,
                                   int *id,
                                   cairn_strlist_t *reasons,
                                   cairn_error_t *err);

/**
 * @brief Finds the version of @p subject whose schema equals the request's.
 * @returns CAIRN_E_NOT_FOUND_SUBJECT, CAIRN_E_NOT_FOUND_SCHEMA, CAIRN_E_INVALID_SCHEMA.
 */
cairn_rc_t cairn_registry_lookup(cairn_registry_t *reg,
                                 const char *subject,
                                 const cairn_reg_request_t *req,
                                 bool include_deleted,
                                 cairn_reg_version_t *out,
                                 cairn_error_t *err);

/**
 * @brief Deletes every version of @p subject: soft, or hard when @p permanent
 * (which needs a soft delete first).
 * @param[out] versions the versions deleted, ascending.
 * @returns CAIRN_E_NOT_FOUND_SUBJECT, CAIRN_E_NOT_FOUND_SUBJECT_SOFT_DELETED
 *          (soft delete of a soft-deleted subject),
 *          CAIRN_E_NOT_FOUND_SUBJECT_NOT_SOFT_DELETED (hard delete first),
 *          CAIRN_E_CONFLICT_REFERENCE_EXISTS, CAIRN_E_INVALID_OPERATION (READONLY).
 */
cairn_rc_t cairn_registry_delete_subject(cairn_registry_t *reg,
                                         const char *subject,
                                         bool permanent,
                                         int **versions,
                                         size_t *n,
                                         cairn_error_t *err);

/**
 * @brief Deletes one version (-1 = latest live one).
 * @returns also CAIRN_E_NOT_FOUND_VERSION, CAIRN_E_NOT_FOUND_VERSION_SOFT_DELETED,
 *          CAIRN_E_NOT_FOUND_VERSION_NOT_SOFT_DELETED, CAIRN_E_CONFLICT_REFERENCE_EXISTS.
 */
cairn_rc_t cairn_registry_delete_version(cairn_registry_t *reg,
                                         const char *subject,
                                         int version,
                                         bool permanent,
                                         int *deleted_version,
                                         cairn_error_t *err);

/** @brief Ids of the live schemas that reference @p subject / @p version, ascending. */
cairn_rc_t cairn_registry_referenced_by(cairn_registry_t *reg,
                                        const char *subject,
                                        int version,
                                        int **ids,
                                        size_t *n,
                                        cairn_error_t *err);

/* ---- schemas by id --------------------------------------------------- */

/**
 * @brief The schema with global id @p id; when @p subject is given, only if
 * that subject has a version with this id.
 * @param[out] out a new reference.
 * @returns CAIRN_E_NOT_FOUND_SCHEMA (also when every version using it was hard-deleted).
 */
cairn_rc_t cairn_registry_schema_by_id(cairn_registry_t *reg,
                                       int id,
                                       const char *subject,
                                       cairn_reg_schema_t **out,
                                       cairn_error_t *err);

/** @brief The highest id assigned so far (0 when none). */
int cairn_registry_max_id(cairn_registry_t *reg);

/** @brief Subjects that use id @p id, sorted. CAIRN_E_NOT_FOUND_SCHEMA when none. */
cairn_rc_t cairn_registry_subjects_by_id(
    cairn_registry_t *reg, int id, bool include_deleted, cairn_strlist_t *out, cairn_error_t *err);

/** @brief (subject, version) pairs that use id @p id; out[i].schema is NULL. */
cairn_rc_t cairn_registry_versions_by_id(cairn_registry_t *reg,
                                         int id,
                                         bool include_deleted,
                                         cairn_reg_version_t **out,
                                         size_t *n,
                                         cairn_error_t *err);

/** @brief Every version of every subject matching @p prefix (GET /schemas), by subject then
 * version. */
cairn_rc_t cairn_registry_list_schemas(cairn_registry_t *reg,
                                       const char *prefix,
                                       bool include_deleted,
                                       bool latest_only,
                                       cairn_reg_version_t **out,
                                       size_t *n,
                                       cairn_error_t *err);

/* ---- compatibility --------------------------------------------------- */

/**
 * @brief Checks a candidate against @p subject without registering it.
 * @param version 0 = the versions the subject's level requires; -1 = the
 *        latest live version; N = that one version.
 * @param[out] compatible the verdict; @p reasons why not (may be NULL).
 * @returns CAIRN_OK with a verdict; CAIRN_E_NOT_FOUND_SUBJECT /
 *          CAIRN_E_NOT_FOUND_VERSION when an explicit version N is missing
 *          (an empty subject with 0 or -1 is compatible); CAIRN_E_INVALID_SCHEMA.
 */
cairn_rc_t cairn_registry_check(cairn_registry_t *reg,
                                const char *subject,
                                int version,
                                const cairn_reg_request_t *req,
                                bool *compatible,
                                cairn_strlist_t *reasons,
                                cairn_error_t *err);

/* ---- config and mode (subject NULL = global) ------------------------- */

/**
 * @returns CAIRN_E_NOT_FOUND_SUBJECT_LEVEL when the subject has none and not
 *          @p default_to_global.
 */
cairn_rc_t cairn_registry_get_level(cairn_registry_t *reg,
                                    const char *subject,
                                    bool default_to_global,
                                    cairn_compat_level_t *out,
                                    cairn_error_t *err);
cairn_rc_t cairn_registry_set_level(cairn_registry_t *reg,
                                    const char *subject,
                                    cairn_compat_level_t level,
                                    cairn_error_t *err);
/** @brief Removes a subject's level (global: back to BACKWARD); @p old is what it was. */
cairn_rc_t cairn_registry_delete_level(cairn_registry_t *reg,
                                       const char *subject,
                                       cairn_compat_level_t *old,
                                       cairn_error_t *err);

cairn_rc_t cairn_registry_get_mode(cairn_registry_t *reg,
                                   const char *subject,
                                   bool default_to_global,
                                   cairn_reg_mode_t *out,
                                   cairn_error_t *err);
/**
 * @returns CAIRN_E_INVALID_OPERATION when switching to IMPORT while schemas
 *          exist (in scope) unless @p force.
 */
cairn_rc_t cairn_registry_set_mode(cairn_registry_t *reg,
                                   const char *subject,
                                   cairn_reg_mode_t mode,
                                   bool force,
                                   cairn_error_t *err);
cairn_rc_t cairn_registry_delete_mode(cairn_registry_t *reg,
                                      const char *subject,
                                      cairn_reg_mode_t *old,
                                      cairn_error_t *err);

/**
 * @brief Subject names are 1..255 bytes of valid UTF-8 with no control
 * characters (C0, DEL), and neither "." nor "..". A slash is allowed (it
 * arrives percent-encoded in a path, as Confluent's clients send it).
 * @returns CAIRN_OK or CAIRN_E_INVALID_SUBJECT.
 */
cairn_rc_t cairn_registry_subject_valid(const char *subject, cairn_error_t *err);

#endif
