/* SPDX-License-Identifier: MIT */
/*
 * http_client.h - the registry client's transport: JSON requests to one
 * registry URL through libcurl, with connect and total timeouts, bounded
 * retries with doubling backoff on transport failures and 5xx answers, basic
 * auth, TLS options, an answer cap, http/https only and no redirects.
 * CURLcode and Confluent's error bodies are translated to cairn_rc_t here
 * and nowhere else in sdk/. It is also the transport of `cairn schema`
 * (cli/cmd_schema.c), which reads error answers itself through
 * cairn__http_exchange.
 *
 * Threading: requests may run from any number of threads at once; each
 * takes a libcurl easy handle from a small pool for the duration of one
 * request, so no handle is ever used by two threads at a time.
 */
#ifndef CAIRN_SDK_HTTP_CLIENT_H
#define CAIRN_SDK_HTTP_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "cairn/registry_client.h"
#include "common.h"

typedef struct cairn__http cairn__http_t;

/**
 * @brief Checks the URL and options and prepares the transport (no request).
 * @returns CAIRN_OK, CAIRN_E_INVALID (the message shows the URL with its
 *          password masked as ***), CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__http_new(const cairn_registry_client_options_t *opts,
                           cairn__http_t **out,
                           cairn_error_t *err);
/** @brief Closes every pooled handle and wipes the password. Accepts NULL. */
void cairn__http_destroy(cairn__http_t *h);

/** @brief The registry URL as it may be shown: no password. Borrowed. */
const char *cairn__http_display(const cairn__http_t *h);

/** @brief HTTP attempts made so far (each retry counts). */
unsigned long cairn__http_attempts(const cairn__http_t *h);

/**
 * @brief One request with the timeouts, retries, auth and TLS.
 * @param path relative to the registry URL, starting with '/', segments
 *        already percent-encoded (cairn__http_escape).
 * @param body the JSON to send (POST/PUT), or NULL.
 * @param where recorded in err->where on failure (a subject), or NULL.
 * @param[out] answer the answer's JSON on 2xx (may be NULL when the body
 *        was empty); json_decref it.
 * @returns CAIRN_OK on 2xx; otherwise the Confluent error_code mapped through
 *          CAIRN_RC_MAP (err->cause: the HTTP status), CAIRN_E_UNAVAILABLE /
 *          CAIRN_E_TIMEOUT (flag RETRIABLE), CAIRN_E_INVALID_TOO_LARGE.
 */
cairn_rc_t cairn__http_request(cairn__http_t *h,
                               const char *method,
                               const char *path,
                               const json_t *body,
                               const char *where,
                               json_t **answer,
                               cairn_error_t *err);

/**
 * One HTTP answer of any status. Invariants: @c body is NUL-terminated and
 * @c body_len long (it may hold NULs before that); @c message is never NULL.
 */
typedef struct cairn__http_answer {
    long status; /* HTTP status */
    char *body;  /* owned */
    size_t body_len;
    json_t *json;        /* the body parsed (any JSON value), or NULL when it is not JSON; owned */
    int error_code;      /* Confluent's error_code of a non-2xx answer, else 0 */
    const char *message; /* Confluent's message of a non-2xx answer, else ""; borrowed from json */
} cairn__http_answer_t;

/**
 * @brief The request of cairn__http_request (same timeouts, retries, auth,
 * TLS and cap) for a caller that reads error answers itself.
 * @param[out] ans the last attempt's answer, whatever its status; release it
 *        with cairn__http_answer_release (zeroed on failure).
 * @returns CAIRN_OK when an HTTP answer came back; CAIRN_E_UNAVAILABLE,
 *          CAIRN_E_TIMEOUT, CAIRN_E_INVALID_TOO_LARGE, CAIRN_E_IO or
 *          CAIRN_E_NOMEM when none did.
 */
cairn_rc_t cairn__http_exchange(cairn__http_t *h,
                                const char *method,
                                const char *path,
                                const json_t *body,
                                const char *where,
                                cairn__http_answer_t *ans,
                                cairn_error_t *err);

/** @brief Frees what @p ans owns and zeroes it. Accepts NULL. */
void cairn__http_answer_release(cairn__http_answer_t *ans);

/**
 * @brief The result code of an answer: CAIRN_OK for 2xx, else Confluent's
 * error_code through CAIRN_RC_MAP (409 is CAIRN_E_INCOMPATIBLE, 5xx
 * CAIRN_E_UNAVAILABLE), else a code chosen by the HTTP status.
 */
cairn_rc_t cairn__http_answer_rc(const cairn__http_answer_t *ans);

/** @brief @p segment percent-encoded (RFC 3986 unreserved kept); cairn_free, NULL on OOM. */
char *cairn__http_escape(const char *segment);

#endif
