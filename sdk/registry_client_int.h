/* SPDX-License-Identifier: MIT */
/*
 * registry_client_int.h - what the rest of sdk/ (serde.c, the aggregates)
 * and the unit tests reach inside the registry client: the parsed model of
 * a registered schema, a const-safe retain, the transport for endpoints
 * without their own function, the count of HTTP attempts (tests use it to
 * prove that an answer came from the cache) and the caches' hash.
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
#include "http_client.h"

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
 * @brief The client's transport, for endpoints without their own function
 * (cairn__http_request with the client's timeouts, retries, auth and TLS;
 * cairn__http_escape for path segments). Borrowed: lives as long as @p c.
 */
cairn__http_t *cairn__registry_client_http(cairn_registry_client_t *c);

/** @brief FNV-1a 64 of @p n bytes: the hash of the SDK's text-keyed caches. */
uint64_t cairn__sdk_fnv1a(const char *p, size_t n);

#endif
