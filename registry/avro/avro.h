/* SPDX-License-Identifier: MIT */
/*
 * avro.h - Cairn's own Avro schema model (on jansson), shared by the registry
 * (parsing, canonical forms, compatibility) and later the SDK (resolution of
 * writer data to a reader schema). avro-c is not used for schemas: it drops
 * defaults, aliases and logical types and accepts invalid schemas
 * (shared/ENVIRONMENT.md).
 *
 * Invariants of a parsed model (cairn_avro_model_t):
 * - It is immutable after cairn__avro_parse returns and may be read from any
 *   number of threads.
 * - Every node reachable from `root` is owned either by this model (its
 *   `owned` list), by a referenced schema that the model holds a reference
 *   on (`refs`), or is one of the static plain primitive nodes. Node
 *   pointers inside a model are never owned by the pointing node, so the
 *   graph may have cycles (recursive records) and shared nodes (a named type
 *   used in several places is one node).
 * - Named nodes (record, enum, fixed) have `fullname` set ("a.b.Name" or
 *   "Name"), `name` pointing at its last component inside `fullname`, and
 *   aliases stored as full names. Names are valid Avro names.
 * - Field, enum symbol and union branch lists are free of duplicates; union
 *   branches are never unions; defaults have been checked against their
 *   types; `logical` is set only for a valid logical type (an invalid one
 *   stays a plain custom property, as Avro Java ignores it).
 * - `props` holds the custom properties in text order (logicalType,
 *   precision and scale included, as Avro Java keeps them), or is NULL.
 * - Nesting depth of definitions is at most CAIRN_AVRO_MAX_DEPTH.
 * - A record of at least CAIRN_AVRO_FIELD_INDEX_MIN fields has `by_name`:
 *   its field indexes ordered by strcmp of the names, for the by-name
 *   look-ups of compatibility and resolution; smaller records (and nodes
 *   built by hand) have NULL there and are searched linearly.
 */
#ifndef CAIRN_REGISTRY_AVRO_H
#define CAIRN_REGISTRY_AVRO_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "format.h"

#define CAIRN_AVRO_MAX_DEPTH 64
/* Records with fewer fields are searched linearly (4 bytes a field saved). */
#define CAIRN_AVRO_FIELD_INDEX_MIN 8

typedef enum cairn_avro_kind {
    CAIRN_AVRO_NULL = 0,
    CAIRN_AVRO_BOOLEAN,
    CAIRN_AVRO_INT,
    CAIRN_AVRO_LONG,
    CAIRN_AVRO_FLOAT,
    CAIRN_AVRO_DOUBLE,
    CAIRN_AVRO_BYTES,
    CAIRN_AVRO_STRING,
    CAIRN_AVRO_RECORD,
    CAIRN_AVRO_ENUM,
    CAIRN_AVRO_ARRAY,
    CAIRN_AVRO_MAP,
    CAIRN_AVRO_FIXED,
    CAIRN_AVRO_UNION,
} cairn_avro_kind_t;

typedef enum cairn_avro_logical {
    CAIRN_AVRO_LT_NONE = 0,
    CAIRN_AVRO_LT_DECIMAL,
    CAIRN_AVRO_LT_UUID,
    CAIRN_AVRO_LT_DATE,
    CAIRN_AVRO_LT_TIME_MILLIS,
    CAIRN_AVRO_LT_TIME_MICROS,
    CAIRN_AVRO_LT_TIMESTAMP_MILLIS,
    CAIRN_AVRO_LT_TIMESTAMP_MICROS,
    CAIRN_AVRO_LT_LOCAL_TIMESTAMP_MILLIS,
    CAIRN_AVRO_LT_LOCAL_TIMESTAMP_MICROS,
    CAIRN_AVRO_LT_DURATION,
} cairn_avro_logical_t;

typedef enum cairn_avro_order {
    CAIRN_AVRO_ORDER_ASCENDING = 0,
    CAIRN_AVRO_ORDER_DESCENDING,
    CAIRN_AVRO_ORDER_IGNORE,
} cairn_avro_order_t;

typedef struct cairn_avro_node cairn_avro_node_t;

typedef struct cairn_avro_field {
    char *name;
    const cairn_avro_node_t *type; /* borrowed (see the invariants) */
    char *doc;                     /* or NULL */
    json_t *def;                   /* the default value, or NULL when none */
    char **aliases;                /* field aliases, as written */
    uint32_t naliases;
    cairn_avro_order_t order;
    json_t *props; /* custom properties, or NULL */
} cairn_avro_field_t;

struct cairn_avro_node {
    cairn_avro_kind_t kind;
    cairn_avro_logical_t logical;
    bool is_error;            /* a record declared as "error" */
    int32_t precision, scale; /* decimal */
    char *fullname;           /* named types only */
    const char *name;         /* last component of fullname */
    char *doc;
    char **aliases; /* full names */
    uint32_t naliases;
    uint32_t nfields;   /* record */
    uint32_t nsymbols;  /* enum */
    uint32_t nbranches; /* union */
    cairn_avro_field_t *fields;
    uint32_t *by_name; /* record: field indexes sorted by name, or NULL */
    char **symbols;
    char *enum_default;                 /* or NULL */
    int64_t size;                       /* fixed */
    const cairn_avro_node_t *items;     /* array items or map values */
    const cairn_avro_node_t **branches; /* union */
    json_t *props;                      /* custom properties, or NULL */
    cairn_avro_node_t *next_owned;      /* the model's ownership list */
};

/** A parsed schema: the root node and everything the model owns. */
typedef struct cairn_avro_model {
    const cairn_avro_node_t *root;
    cairn_avro_node_t *owned;  /* every node allocated for this model */
    cairn_avro_node_t **named; /* hash of the named types this text defines */
    size_t named_cap;          /* a power of two, or 0 */
    size_t named_n;
    cairn_schema_t **refs; /* held: refs[] and their own refs, closed, no repeats */
    size_t nrefs;
} cairn_avro_model_t;

/* ---- parsing --------------------------------------------------------- */

/**
 * @brief Parses and validates an Avro schema text as Avro Java's parser does.
 * @param refs schemas whose named types (and their nested ones) @p text may
 *        use by name; AVRO ones only, others are ignored. The model keeps a
 *        reference on each.
 * @param out a new model on success (free with cairn__avro_model_free).
 * @returns CAIRN_OK, CAIRN_E_INVALID_SCHEMA (err->text says what, err->where
 *          the JSON pointer of the place), CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__avro_parse(const char *text,
                             size_t len,
                             const cairn_schema_ref_t *refs,
                             size_t nrefs,
                             cairn_avro_model_t **out,
                             cairn_error_t *err);
void cairn__avro_model_free(cairn_avro_model_t *m);
const cairn_avro_node_t *cairn__avro_model_root(const cairn_avro_model_t *m);
/** @brief True when @p node is defined by @p m's own text (not by a reference). */
bool cairn__avro_model_defines(const cairn_avro_model_t *m, const cairn_avro_node_t *node);
/** @brief The named type @p fullname defined by the model or its references, or NULL. */
const cairn_avro_node_t *cairn__avro_model_lookup(const cairn_avro_model_t *m,
                                                  const char *fullname);
/** @brief "record", "int", ... as the Avro spec names the kind. */
const char *cairn__avro_kind_name(cairn_avro_kind_t kind);

/* ---- written forms --------------------------------------------------- */

typedef enum cairn_avro_form {
    CAIRN_AVRO_FORM_CANONICAL,  /* Avro Java's Schema.toString(), every attribute kept */
    CAIRN_AVRO_FORM_NORMALIZED, /* full names everywhere, custom properties sorted */
    CAIRN_AVRO_FORM_PCF,        /* the spec's Parsing Canonical Form */
} cairn_avro_form_t;

/**
 * @brief Writes @p m in @p form as compact JSON. Named types of references
 * are written by name, never inlined.
 * @param out a new NUL-terminated string (cairn_free).
 * @returns CAIRN_OK or CAIRN_E_NOMEM.
 */
cairn_rc_t
cairn__avro_write(const cairn_avro_model_t *m, cairn_avro_form_t form, char **out, size_t *len);
/** @brief CRC-64-AVRO (Rabin) of @p len bytes, as the spec defines the fingerprint. */
uint64_t cairn__avro_crc64(const void *data, size_t len);

/* ---- resolution and compatibility ------------------------------------ */

/**
 * @brief Can data written with @p writer be read with @p reader (Avro Java's
 * SchemaCompatibility)? Appends one Confluent-style line per incompatibility
 * to @p reasons (may be NULL).
 * @returns CAIRN_OK, CAIRN_E_INCOMPATIBLE or CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__avro_can_read(const cairn_avro_node_t *reader,
                                const cairn_avro_node_t *writer,
                                cairn_strlist_t *reasons);
/** @brief True when a writer value of kind @p w is read as kind @p r (same kind or a promotion). */
bool cairn__avro_promotes(cairn_avro_kind_t r, cairn_avro_kind_t w);
/** @brief Named types match by unqualified name, or a reader alias names the writer. */
bool cairn__avro_names_match(const cairn_avro_node_t *reader, const cairn_avro_node_t *writer);
/**
 * @brief The index of the writer record field that feeds reader field @p rf
 * (by name, then by the reader field's aliases), or -1.
 */
long cairn__avro_writer_field(const cairn_avro_field_t *rf, const cairn_avro_node_t *writer);
/**
 * @brief The branch of reader union @p reader that reads @p writer (a
 * non-union): the first of the same kind and name, else the first that can
 * read it; -1 when none.
 */
long cairn__avro_union_branch(const cairn_avro_node_t *reader, const cairn_avro_node_t *writer);

/** The AVRO format (avro_format.c). */
extern const cairn_format_t cairn__avro_format;

#endif
