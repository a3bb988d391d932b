/* SPDX-License-Identifier: MIT */
/*
 * registry_client.h - libcairn's client of a Confluent-compatible schema
 * registry (Cairn's own, Confluent's, Karapace, Apicurio's ccompat API),
 * over HTTP with libcurl.
 *
 * What a service gets from it:
 * - schemas by id and ids by (subject, schema), cached in memory: a schema
 *   id never changes its text, so cached entries stay valid for the
 *   process's life; the cache is what keeps a service working while the
 *   registry is down (see the SDK's documentation for what still needs it);
 * - bounded time: every request has a connect and a total timeout, and
 *   transport failures and 5xx answers are retried a bounded number of
 *   times with doubling backoff; 4xx answers are never retried;
 * - basic auth (in the URL as user:password@ or in the options) and TLS
 *   options; the password never appears in any message or log line.
 *
 * Threading: a client may be used from any number of threads at once
 * (requests run on per-thread libcurl handles; the cache has its own lock).
 * Call curl_global_init(CURL_GLOBAL_DEFAULT) once before creating the first
 * client (libcurl's rule; `cairn_registry_client_new` does not).
 *
 * Ownership: arguments are borrowed; results that a function hands out are
 * the caller's (release as each function says).
 */
#ifndef CAIRN_REGISTRY_CLIENT_H
#define CAIRN_REGISTRY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cairn/cairn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cairn_registry_client cairn_registry_client_t;

typedef struct cairn_registry_client_options {
    const char *url;           /* http(s)://[user:password@]host:port[/prefix] */
    const char *user;          /* basic auth when the URL has none; may be NULL */
    const char *password;      /* with user; may be NULL */
    const char *ca_file;       /* TLS: CA bundle to verify the server; NULL = system */
    const char *cert_file;     /* TLS client certificate (PEM); may be NULL */
    const char *key_file;      /* its key (PEM); may be NULL */
    int insecure_skip_verify;  /* TLS: do not verify the server (tests only) */
    long timeout_ms;           /* one request, whole; 0 = 5000 */
    long connect_timeout_ms;   /* 0 = 2000 (never more than timeout_ms) */
    int max_retries;           /* extra attempts on transport errors and 5xx; 0 = 2, <0 = none */
    long backoff_ms;           /* first wait before a retry, doubled each time; 0 = 100 */
    size_t max_cached_schemas; /* 0 = 100000 */
} cairn_registry_client_options_t;

/**
 * @brief Creates a client. Nothing is sent yet.
 * @returns CAIRN_OK, CAIRN_E_INVALID (bad URL or options; the message shows
 *          the URL with its password masked), CAIRN_E_NOMEM.
 */
CAIRN_API cairn_rc_t cairn_registry_client_new(const cairn_registry_client_options_t *opts,
                                               cairn_registry_client_t **out,
                                               cairn_error_t *err);
/** @brief Frees the client and its cache. Schemas handed out stay valid. Accepts NULL. */
CAIRN_API void cairn_registry_client_destroy(cairn_registry_client_t *c);

/**
 * A schema as registered: its id, type and text, parsed once. Immutable and
 * reference-counted: the cache holds one reference, every caller that
 * received one from a function below holds another.
 */
typedef struct cairn_registered_schema cairn_registered_schema_t;

CAIRN_API int32_t cairn_registered_schema_id(const cairn_registered_schema_t *s);
/** @brief "AVRO" (the only type the serde handles today), "PROTOBUF", "JSON". */
CAIRN_API const char *cairn_registered_schema_type(const cairn_registered_schema_t *s);
CAIRN_API const char *cairn_registered_schema_text(const cairn_registered_schema_t *s);
/** @brief The full name of an Avro schema's root named type ("com.acme.Deposited"), or NULL. */
CAIRN_API const char *cairn_registered_schema_name(const cairn_registered_schema_t *s);
CAIRN_API cairn_registered_schema_t *cairn_registered_schema_retain(cairn_registered_schema_t *s);
/** @brief Drops one reference. Accepts NULL. */
CAIRN_API void cairn_registered_schema_release(cairn_registered_schema_t *s);

/**
 * @brief The schema with @p id (GET /schemas/ids/{id}), from the cache when
 * there, else fetched, parsed and cached. References are fetched too.
 * @param[out] out a new reference.
 * @returns CAIRN_OK, CAIRN_E_NOT_FOUND_SCHEMA, CAIRN_E_INVALID_SCHEMA (the
 *          registry's text does not parse), CAIRN_E_UNAVAILABLE or
 *          CAIRN_E_TIMEOUT (flag RETRIABLE) after the retries, CAIRN_E_NOMEM.
 */
CAIRN_API cairn_rc_t cairn_registry_client_schema_by_id(cairn_registry_client_t *c,
                                                        int32_t id,
                                                        cairn_registered_schema_t **out,
                                                        cairn_error_t *err);

/**
 * @brief Registers @p text under @p subject (POST /subjects/{s}/versions),
 * or finds it registered already; cached by (subject, type, text).
 * @param type "AVRO" or NULL (AVRO).
 * @param[out] out a new reference to the schema with its id.
 * @returns CAIRN_OK, CAIRN_E_INCOMPATIBLE (err->text holds the registry's
 *          reasons), CAIRN_E_INVALID_SCHEMA, CAIRN_E_UNAVAILABLE,
 *          CAIRN_E_TIMEOUT, CAIRN_E_NOMEM, or the registry's own error.
 */
CAIRN_API cairn_rc_t cairn_registry_client_register(cairn_registry_client_t *c,
                                                    const char *subject,
                                                    const char *type,
                                                    const char *text,
                                                    cairn_registered_schema_t **out,
                                                    cairn_error_t *err);

/**
 * @brief Looks @p text up under @p subject without registering it
 * (POST /subjects/{s}); cached as register is.
 * @param[out] version the subject version that holds it (may be NULL).
 * @returns CAIRN_OK, CAIRN_E_NOT_FOUND_SUBJECT, CAIRN_E_NOT_FOUND_SCHEMA, ...
 */
CAIRN_API cairn_rc_t cairn_registry_client_lookup(cairn_registry_client_t *c,
                                                  const char *subject,
                                                  const char *type,
                                                  const char *text,
                                                  cairn_registered_schema_t **out,
                                                  int32_t *version,
                                                  cairn_error_t *err);

/**
 * @brief The latest version of @p subject (GET /subjects/{s}/versions/latest),
 * always asked of the registry (it changes), its schema then cached by id.
 */
CAIRN_API cairn_rc_t cairn_registry_client_latest(cairn_registry_client_t *c,
                                                  const char *subject,
                                                  cairn_registered_schema_t **out,
                                                  int32_t *version,
                                                  cairn_error_t *err);

/**
 * @brief Asks whether @p text may be registered under @p subject
 * (POST /compatibility/subjects/{s}/versions/latest?verbose=true).
 * @param[out] compatible 1 or 0.
 * @param[out] messages a new JSON array of the registry's reasons (may be
 *             NULL; json_decref it).
 * @returns CAIRN_OK whatever the verdict (a subject without versions is
 *          compatible), or a transport/registry error.
 */
CAIRN_API cairn_rc_t cairn_registry_client_check(cairn_registry_client_t *c,
                                                 const char *subject,
                                                 const char *type,
                                                 const char *text,
                                                 int *compatible,
                                                 json_t **messages,
                                                 cairn_error_t *err);

/**
 * @brief Sets @p subject's compatibility level (PUT /config/{s}), e.g.
 * "BACKWARD_TRANSITIVE".
 */
CAIRN_API cairn_rc_t cairn_registry_client_set_compatibility(cairn_registry_client_t *c,
                                                             const char *subject,
                                                             const char *level,
                                                             cairn_error_t *err);

/**
 * @brief A subject's compatibility level (GET /config/{s}), or the global
 * one when @p subject is NULL, written into @p buf ("BACKWARD_TRANSITIVE").
 * @param default_to_global answer the global level when the subject has none.
 * @returns CAIRN_OK, CAIRN_E_NOT_FOUND_SUBJECT_LEVEL (the subject has no level
 *          of its own and not @p default_to_global), CAIRN_E_INVALID (@p buf
 *          too small), or a transport/registry error.
 */
CAIRN_API cairn_rc_t cairn_registry_client_get_compatibility(cairn_registry_client_t *c,
                                                             const char *subject,
                                                             int default_to_global,
                                                             char *buf,
                                                             size_t size,
                                                             cairn_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
