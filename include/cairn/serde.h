/* SPDX-License-Identifier: MIT */
/*
 * serde.h - values in the Confluent wire format: byte 0, the schema id as a
 * 4-byte big-endian integer, then the Avro binary encoding of the value.
 *
 * A service builds events and commands as jansson values in the SDK's JSON
 * form (docs/JSON-FORM.md); the serde encodes them with a schema
 * registered under the subject its naming strategy picks, and decodes wire
 * bytes back to the same JSON form, resolving data written with an older
 * schema to a reader schema by Avro's rules (defaults filled, enums by
 * symbol, promotions, aliases) through Cairn's own Avro model — never
 * avro-c's resolver. Members a record schema does not know are refused
 * (the SDK's stated policy, since Avro itself cannot forbid them).
 *
 * Threading: a serde may be used from any number of threads at once.
 * Ownership: arguments are borrowed; outputs are the caller's.
 */
#ifndef CAIRN_SERDE_H
#define CAIRN_SERDE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cairn/cairn.h"
#include "cairn/registry_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the wire format's prefix: magic byte + schema id. */
#define CAIRN_WIRE_PREFIX 5

/** Which subject a schema is registered under (Confluent's strategies). */
typedef enum cairn_subject_strategy {
    /* "<topic>-<record full name>": the default, since one aggregate's topic
       carries several event types */
    CAIRN_SUBJECT_TOPIC_RECORD_NAME = 0,
    CAIRN_SUBJECT_TOPIC_NAME,  /* "<topic>-value" (or "-key") */
    CAIRN_SUBJECT_RECORD_NAME, /* "<record full name>" */
} cairn_subject_strategy_t;

typedef struct cairn_serde cairn_serde_t;

typedef struct cairn_serde_options {
    cairn_subject_strategy_t strategy;
    int is_key;                /* TopicNameStrategy: "-key" instead of "-value" */
    int no_auto_register;      /* look schemas up, never register them */
    const char *compatibility; /* level set on subjects this serde registers;
                                  NULL = "BACKWARD_TRANSITIVE" ("" = leave as is) */
} cairn_serde_options_t;

/**
 * @brief Creates a serde over @p client (borrowed: it must outlive the serde).
 * @param opts may be NULL for the defaults.
 */
CAIRN_API cairn_rc_t cairn_serde_new(cairn_registry_client_t *client,
                                     const cairn_serde_options_t *opts,
                                     cairn_serde_t **out,
                                     cairn_error_t *err);
/** @brief Frees the serde. Accepts NULL. */
CAIRN_API void cairn_serde_destroy(cairn_serde_t *s);

/**
 * @brief The subject the strategy names for @p topic and the Avro schema
 * @p text, written into @p buf (NUL-terminated).
 * @returns CAIRN_OK, CAIRN_E_INVALID_SCHEMA, CAIRN_E_INVALID (buf too small).
 */
CAIRN_API cairn_rc_t cairn_serde_subject(cairn_serde_t *s,
                                         const char *topic,
                                         const char *text,
                                         char *buf,
                                         size_t size,
                                         cairn_error_t *err);

/**
 * @brief The registered schema for @p text on @p topic: registered under the
 * strategy's subject (and that subject's level set) on first use unless
 * no_auto_register, else looked up. Cached: later calls ask nothing.
 * @param[out] out a new reference.
 */
CAIRN_API cairn_rc_t cairn_serde_schema(cairn_serde_t *s,
                                        const char *topic,
                                        const char *text,
                                        cairn_registered_schema_t **out,
                                        cairn_error_t *err);

/**
 * @brief Checks @p value against @p schema as encode would.
 * @param[out] violations a new JSON array of {"path": "/amount", "message":
 *             "..."} objects, one per violation, empty when the value fits.
 * @returns CAIRN_OK when it fits, CAIRN_E_INVALID when it does not (the
 *          first violation also in err), CAIRN_E_NOMEM.
 */
CAIRN_API cairn_rc_t cairn_serde_validate(cairn_serde_t *s,
                                          const cairn_registered_schema_t *schema,
                                          const json_t *value,
                                          json_t **violations,
                                          cairn_error_t *err);

/**
 * @brief Encodes @p value with @p schema in the wire format.
 * @param[out] out a new buffer (cairn_free), @p len bytes.
 * @returns CAIRN_OK, CAIRN_E_INVALID when the value does not fit (err->where
 *          is the JSON pointer of the first bad member, err->text says why).
 */
CAIRN_API cairn_rc_t cairn_serde_encode(cairn_serde_t *s,
                                        const cairn_registered_schema_t *schema,
                                        const json_t *value,
                                        unsigned char **out,
                                        size_t *len,
                                        cairn_error_t *err);

/**
 * @brief Decodes wire bytes: fetches (or finds cached) the writer's schema
 * by the id in the prefix and resolves the data to @p reader (NULL: read
 * with the writer's own schema).
 * @param[out] out a new JSON value in the SDK's JSON form.
 * @param[out] writer_id the id in the prefix (may be NULL).
 * @returns CAIRN_OK; CAIRN_E_INVALID (no magic byte, truncated, trailing
 *          bytes, bad data); CAIRN_E_INCOMPATIBLE (the reader cannot read
 *          the writer's schema); the registry client's errors.
 */
CAIRN_API cairn_rc_t cairn_serde_decode(cairn_serde_t *s,
                                        const void *data,
                                        size_t len,
                                        const cairn_registered_schema_t *reader,
                                        json_t **out,
                                        int32_t *writer_id,
                                        cairn_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
