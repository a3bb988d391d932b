/* SPDX-License-Identifier: MIT */
/*
 * registry_client.h - a small HTTP client for the Confluent Schema Registry
 * REST API, built on libcurl's easy interface and jansson. It is what
 * `cairn schema check|register|get` talks through; the SDK's registry client
 * may later absorb it.
 *
 * What it takes care of, so that callers only think in paths and JSON:
 * - the base URL may carry `user:password@`; the credentials are taken out
 *   of the URL and sent as HTTP basic auth, and the URL shown in messages has
 *   the password replaced by `***` (it never appears in any output);
 * - timeouts (connect and whole request), a cap on the answer's size, only
 *   http and https, no redirects followed;
 * - the media type application/vnd.schemaregistry.v1+json both ways;
 * - an answer of any HTTP status is a successful request: the caller reads
 *   `status`, and for error answers Confluent's `error_code` and `message`.
 *   Only transport failures (unreachable, timeout, answer too large) fail.
 *
 * Threading: a client is used by one thread at a time. Call curl_global_init
 * once before the first client is created (the `cairn` program does).
 */
#ifndef CAIRN_CLI_REGISTRY_CLIENT_H
#define CAIRN_CLI_REGISTRY_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "common.h"

typedef struct cairn_rclient cairn_rclient_t;

typedef struct cairn_rclient_options {
    const char *url;         /* base URL, http or https, may hold user:password@ */
    const char *user;        /* used when the URL has no user; may be NULL */
    const char *password;    /* used with @c user; may be NULL */
    long timeout_ms;         /* whole request; 0 means 30000 */
    long connect_timeout_ms; /* 0 means 5000; never more than timeout_ms */
    size_t max_answer;       /* bytes; 0 means 16 MiB */
} cairn_rclient_options_t;

/** One HTTP answer. Release with cairn__rclient_answer_release. */
typedef struct cairn_rclient_answer {
    long status; /* HTTP status */
    char *body;  /* owned, NUL-terminated (may hold NULs before body_len) */
    size_t body_len;
    json_t *json;        /* the body parsed, or NULL when it is not JSON; owned */
    int error_code;      /* Confluent's error_code of an error answer, else 0 */
    const char *message; /* Confluent's message of an error answer, else ""; borrowed */
} cairn_rclient_answer_t;

/**
 * @brief Creates a client for the registry at @p opts->url.
 * @returns CAIRN_OK, CAIRN_E_INVALID (bad URL, unsupported scheme) with a
 *          message that shows the URL masked, or CAIRN_E_NOMEM.
 */
cairn_rc_t
cairn__rclient_new(const cairn_rclient_options_t *opts, cairn_rclient_t **out, cairn_error_t *err);
/** @brief Closes connections and frees. Accepts NULL. */
void cairn__rclient_destroy(cairn_rclient_t *c);

/** @brief The base URL for messages, password masked. Borrowed, lives as long as @p c. */
const char *cairn__rclient_url(const cairn_rclient_t *c);

/** @brief Percent-encodes one path segment (a subject name). Free with cairn_free; NULL on OOM. */
char *cairn__rclient_escape(cairn_rclient_t *c, const char *segment);

/**
 * @brief Sends @p method ("GET", "POST") to base URL + @p path (which starts
 * with '/', segments already escaped, query included) with @p body (may be
 * NULL) serialised as JSON, and fills @p ans.
 * @returns CAIRN_OK when an HTTP answer came back, whatever its status;
 *          CAIRN_E_UNAVAILABLE (cannot connect or resolve), CAIRN_E_TIMEOUT,
 *          CAIRN_E_INVALID_TOO_LARGE (answer over the cap), CAIRN_E_IO
 *          (other transport failures), CAIRN_E_NOMEM. @p ans is zeroed on
 *          failure.
 */
cairn_rc_t cairn__rclient_request(cairn_rclient_t *c,
                                  const char *method,
                                  const char *path,
                                  const json_t *body,
                                  cairn_rclient_answer_t *ans,
                                  cairn_error_t *err);

/** @brief Frees what @p ans owns and zeroes it. */
void cairn__rclient_answer_release(cairn_rclient_answer_t *ans);

/**
 * @brief The result code of an answer, from CAIRN_RC_MAP's Confluent column:
 * CAIRN_OK for 2xx, the row whose error_code matches otherwise (Confluent's
 * 409 is CAIRN_E_INCOMPATIBLE), else a family chosen by the HTTP status.
 */
cairn_rc_t cairn__rclient_answer_rc(const cairn_rclient_answer_t *ans);

#endif
