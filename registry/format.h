/* SPDX-License-Identifier: MIT */
/*
 * format.h - the schema models: one small interface per schema format (AVRO
 * now; PROTOBUF and JSON join as one folder each under registry/), and the
 * format-independent rules that apply compatibility levels to a list of
 * earlier versions.
 *
 * This is the "models" CMake target (cairn_models): no store, no HTTP. The
 * registry service, the CLI's local check and later the SDK link it.
 *
 * Threading: a parsed cairn_schema_t is immutable and may be shared between
 * threads; its reference count is atomic. Parsing and checking are
 * reentrant.
 *
 * Invariants of cairn_schema_t:
 * - `canonical` is the schema with formatting removed and every attribute
 *   kept (doc, defaults, aliases, logical types, custom properties): two
 *   schemas are "the same schema" (re-registration, one id across subjects,
 *   look-up) iff their canonical strings and references are equal.
 * - `normalized` is the form used instead when a request asks for
 *   normalize=true (format-defined: see each format's file comment).
 * - `fingerprint` is a 64-bit fingerprint of the format's parsing canonical
 *   form (Avro: CRC-64-AVRO of Parsing Canonical Form), or 0.
 */
#ifndef CAIRN_REGISTRY_FORMAT_H
#define CAIRN_REGISTRY_FORMAT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"

typedef struct cairn_format cairn_format_t;
typedef struct cairn_schema cairn_schema_t;

/** A reference: a name the schema uses that another (already parsed) schema defines. */
typedef struct cairn_schema_ref {
    const char *name;             /* Avro: the full name of a named type */
    const cairn_schema_t *schema; /* borrowed, parsed with its own references */
} cairn_schema_ref_t;

struct cairn_schema {
    const cairn_format_t *format;
    char *canonical; /* owned, NUL-terminated */
    size_t canonical_len;
    char *normalized; /* owned, NUL-terminated */
    size_t normalized_len;
    uint64_t fingerprint;
    void *model; /* the format's own parsed form, owned */
    atomic_int refcount;
};

/** What every format provides. All functions are reentrant. */
struct cairn_format {
    const char *name; /* "AVRO": the schemaType of the REST API */
    /**
     * @brief Parses and validates @p text (not NUL-terminated necessarily).
     * @param refs the schemas that @p text may use by name (already parsed).
     * @param out on success a new schema with refcount 1.
     * @returns CAIRN_OK or CAIRN_E_INVALID_SCHEMA with err->text saying what
     *          is wrong and err->where the place ("/fields/2/default").
     */
    cairn_rc_t (*parse)(const char *text,
                        size_t len,
                        const cairn_schema_ref_t *refs,
                        size_t nrefs,
                        cairn_schema_t **out,
                        cairn_error_t *err);
    /**
     * @brief Can data written with @p writer be read with @p reader?
     * Appends one line per incompatibility to @p reasons (may be NULL), each
     * naming the kind and the place in the schema, in Confluent's form:
     * `{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'...',
     * additionalInfo:'f2'}`.
     * @returns CAIRN_OK when compatible, CAIRN_E_INCOMPATIBLE when not,
     *          CAIRN_E_NOMEM.
     */
    cairn_rc_t (*can_read)(const cairn_schema_t *reader,
                           const cairn_schema_t *writer,
                           cairn_strlist_t *reasons);
    /** @brief Frees the model of a schema whose refcount reached 0. */
    void (*model_free)(void *model);
};

/** @brief The format named @p name ("AVRO"; NULL or "" means AVRO), or NULL. */
const cairn_format_t *cairn_format_find(const char *name);
/** @brief NULL-terminated list of the supported format names, for /schemas/types. */
const char *const *cairn_format_names(void);

/** @brief Parses with the format of @p format_name; CAIRN_E_INVALID_SCHEMA for an unknown one. */
cairn_rc_t cairn_schema_parse(const char *format_name,
                              const char *text,
                              size_t len,
                              const cairn_schema_ref_t *refs,
                              size_t nrefs,
                              cairn_schema_t **out,
                              cairn_error_t *err);
/** @brief New reference. Accepts NULL. */
cairn_schema_t *cairn_schema_ref(const cairn_schema_t *s);
/** @brief Drops a reference; frees on the last. Accepts NULL. */
void cairn_schema_unref(cairn_schema_t *s);
/** @brief Allocates an empty schema shell for a format's parse (refcount 1). */
cairn_schema_t *cairn__schema_new(const cairn_format_t *format);

/* ---- compatibility levels -------------------------------------------- */

typedef enum cairn_compat_level {
    CAIRN_COMPAT_NONE = 0,
    CAIRN_COMPAT_BACKWARD,
    CAIRN_COMPAT_BACKWARD_TRANSITIVE,
    CAIRN_COMPAT_FORWARD,
    CAIRN_COMPAT_FORWARD_TRANSITIVE,
    CAIRN_COMPAT_FULL,
    CAIRN_COMPAT_FULL_TRANSITIVE,
} cairn_compat_level_t;

/** @brief "BACKWARD" etc. */
const char *cairn_compat_level_name(cairn_compat_level_t level);
/** @brief Parses a level name, case-insensitively; CAIRN_E_INVALID_LEVEL otherwise. */
cairn_rc_t cairn_compat_level_parse(const char *name, cairn_compat_level_t *out);

/**
 * @brief Applies @p level to a candidate and the earlier versions of a subject.
 * @param previous the live earlier versions, oldest first (deleted versions
 *        already left out by the caller); @p previous_versions their version
 *        numbers (for the reasons), may be NULL.
 * Non-transitive levels check against the newest only; transitive ones
 * against all. BACKWARD: the candidate reads data of the old; FORWARD: the
 * old reads the candidate's; FULL: both. Schemas of different formats are
 * incompatible. For each failing old version the reasons gain its own
 * lines, then `{oldSchemaVersion: N}`, `{oldSchema: '...'}` and
 * `{compatibility: 'LEVEL'}`, as Confluent 7.x's verbose answer has them.
 * @returns CAIRN_OK, CAIRN_E_INCOMPATIBLE or CAIRN_E_NOMEM.
 */
cairn_rc_t cairn_compat_check(cairn_compat_level_t level,
                              const cairn_schema_t *candidate,
                              const cairn_schema_t *const *previous,
                              const int *previous_versions,
                              size_t nprevious,
                              cairn_strlist_t *reasons);

#endif
