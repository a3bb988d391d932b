/* SPDX-License-Identifier: MIT */
/*
 * registry_client_int.h - what the rest of sdk/ (serde.c, the aggregates)
 * and the unit tests reach inside the registry client: the parsed model of
 * a registered schema, a const-safe retain, a raw request for endpoints
 * without their own function, and the count of HTTP attempts (tests use it
 * to prove that an answer came from the cache).
 *
 * Threading: every function here may be called from any thread.
 */
#ifndef CAIRN_SDK_REGISTRY_CLIENT_INT_H
#define CAIRN_SDK_REGISTRY_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "avro/avro.h"
#include "cairn/registry_client.h"
#include "common.h"
#include "format.h"

/**
 * @brief The root of an AVRO schema's parsed model, or NULL for other types.
 * @remark Borrowed: valid while the caller holds a reference on @p s.
 */
const cairn_avro_node_t *cairn__registered_schema_avro(const cairn_registered_schema_t *s);

/** @brief The parsed schema (format interface), or NULL for a type kept unparsed. Borrowed. */
const cairn_schema_t *cairn__registered_schema_parsed(const cairn_registered_schema_t *s);

/**
 * @brief A new reference on a schema the caller only holds as const (the
 * schema is immutable; only its atomic count changes).
 */
cairn_registered_schema_t *cairn__registered_schema_ref(const cairn_registered_schema_t *s);

/** @brief HTTP attempts made so far by @p c (retries count one each). */
unsigned long cairn__registry_client_attempts(const cairn_registry_client_t *c);

/**
 * @brief One request with the client's timeouts, retries, auth and TLS.
 * @param path relative to the registry URL, starting with '/', segments
 *        already percent-encoded (cairn__registry_client_escape).
 * @param body the JSON to send (POST/PUT), or NULL.
 * @param where recorded in err->where on failure (a subject), or NULL.
 * @param[out] answer the answer's JSON on 2xx (may be NULL when the body
 *        was empty); json_decref it.
 * @returns CAIRN_OK on 2xx; otherwise the Confluent error_code mapped through
 *          CAIRN_RC_MAP (err->cause: the HTTP status), CAIRN_E_UNAVAILABLE /
 *          CAIRN_E_TIMEOUT (flag RETRIABLE), CAIRN_E_INVALID_TOO_LARGE.
 */
cairn_rc_t cairn__registry_client_request(cairn_registry_client_t *c,
                                          const char *method,
                                          const char *path,
                                          const json_t *body,
                                          const char *where,
                                          json_t **answer,
                                          cairn_error_t *err);

/** @brief @p segment percent-encoded for a URL path (RFC 3986 unreserved kept); cairn_free. */
char *cairn__registry_client_escape(const char *segment);

#endif
