/* SPDX-License-Identifier: MIT */
/*
 * cairn.h - the umbrella header of Cairn: version, result codes, error
 * detail, allocator and log hooks.
 *
 * Threading: every function here is thread-safe, except the hook setters
 * (cairn_set_alloc_funcs, cairn_set_log_hook), which must be called once
 * before any other Cairn call.
 *
 * Result codes come from one table, CAIRN_RC_MAP, whose rows also carry the
 * HTTP status, the Confluent Schema Registry error_code and the exit code of
 * the `cairn` program for that result: api/ and cli/ read them from here and
 * never map ad hoc. Codes are grouped in families as SQLite's extended codes
 * are: the low byte is the primary code (CAIRN_E_NOT_FOUND), the extended
 * code adds `n << 8` (CAIRN_E_NOT_FOUND_SUBJECT). The table is append-only.
 */
#ifndef CAIRN_CAIRN_H
#define CAIRN_CAIRN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CAIRN_API __attribute__((visibility("default")))
#else
#define CAIRN_API
#endif

#define CAIRN_VERSION_MAJOR 0
#define CAIRN_VERSION_MINOR 1
#define CAIRN_VERSION_PATCH 0
#define CAIRN_VERSION_STR   "0.1.0"

/**
 * @brief The version of libcairn.so in use ("0.1.0"), which may differ from
 * the CAIRN_VERSION_* a program was compiled against. Only in the shared
 * library (libcairn/): the static module libraries do not have it.
 */
CAIRN_API const char *cairn_version(void);

/*
 * X(NAME, value, http_status, confluent_error_code, exit_code, "text")
 *
 * Exit codes follow `cairn schema check`: 0 ok, 1 incompatible, 2 error,
 * 3 version conflict (`cairn events append`).
 */
#define CAIRN_PRIMARY(p, n) ((p) | ((n) << 8))
#define CAIRN_RC_MAP(X)                                                                            \
    X(OK, 0, 200, 0, 0, "success")                                                                 \
    X(E_INVALID, 1, 400, 400, 2, "invalid argument")                                               \
    X(E_NOT_FOUND, 2, 404, 404, 2, "not found")                                                    \
    X(E_CONFLICT, 3, 409, 409, 3, "conflict")                                                      \
    X(E_INCOMPATIBLE, 4, 409, 409, 1, "schema is incompatible")                                    \
    X(E_UNAVAILABLE, 5, 503, 50003, 2, "service unavailable")                                      \
    X(E_TIMEOUT, 6, 500, 50002, 2, "operation timed out")                                          \
    X(E_IO, 7, 500, 50001, 2, "i/o error")                                                         \
    X(E_CORRUPT, 8, 500, 50001, 2, "data is corrupt")                                              \
    X(E_NOMEM, 9, 500, 50001, 2, "out of memory")                                                  \
    X(E_INTERNAL, 10, 500, 50001, 2, "internal error")                                             \
    X(DONE, 100, 200, 0, 0, "end of data")                                                         \
    X(AGAIN, 101, 200, 0, 0, "try again")                                                          \
    X(E_INVALID_JSON, CAIRN_PRIMARY(1, 1), 400, 400, 2, "malformed json")                          \
    X(E_INVALID_SCHEMA, CAIRN_PRIMARY(1, 2), 422, 42201, 2, "invalid schema")                      \
    X(E_INVALID_VERSION, CAIRN_PRIMARY(1, 3), 422, 42202, 2, "invalid version")                    \
    X(E_INVALID_LEVEL, CAIRN_PRIMARY(1, 4), 422, 42203, 2, "invalid compatibility level")          \
    X(E_INVALID_MODE, CAIRN_PRIMARY(1, 5), 422, 42204, 2, "invalid mode")                          \
    X(E_INVALID_OPERATION, CAIRN_PRIMARY(1, 6), 422, 42205, 2, "operation not permitted")          \
    X(E_INVALID_ID, CAIRN_PRIMARY(1, 7), 422, 42207, 2, "id does not match")                       \
    X(E_INVALID_SUBJECT, CAIRN_PRIMARY(1, 8), 422, 42208, 2, "invalid subject")                    \
    X(E_INVALID_MEDIA_TYPE, CAIRN_PRIMARY(1, 9), 415, 415, 2, "unsupported media type")            \
    X(E_INVALID_TOO_LARGE, CAIRN_PRIMARY(1, 10), 413, 413, 2, "request too large")                 \
    X(E_INVALID_METHOD, CAIRN_PRIMARY(1, 11), 405, 405, 2, "method not allowed")                   \
    X(E_INVALID_REQUEST, CAIRN_PRIMARY(1, 12), 400, 400, 2, "bad request")                         \
    X(E_NOT_FOUND_SUBJECT, CAIRN_PRIMARY(2, 1), 404, 40401, 2, "subject not found")                \
    X(E_NOT_FOUND_VERSION, CAIRN_PRIMARY(2, 2), 404, 40402, 2, "version not found")                \
    X(E_NOT_FOUND_SCHEMA, CAIRN_PRIMARY(2, 3), 404, 40403, 2, "schema not found")                  \
    X(E_NOT_FOUND_SUBJECT_SOFT_DELETED, CAIRN_PRIMARY(2, 4), 404, 40404, 2,                        \
      "subject was soft deleted")                                                                  \
    X(E_NOT_FOUND_SUBJECT_NOT_SOFT_DELETED, CAIRN_PRIMARY(2, 5), 404, 40405, 2,                    \
      "subject was not soft deleted first")                                                        \
    X(E_NOT_FOUND_VERSION_SOFT_DELETED, CAIRN_PRIMARY(2, 6), 404, 40406, 2,                        \
      "version was soft deleted")                                                                  \
    X(E_NOT_FOUND_VERSION_NOT_SOFT_DELETED, CAIRN_PRIMARY(2, 7), 404, 40407, 2,                    \
      "version was not soft deleted first")                                                        \
    X(E_NOT_FOUND_SUBJECT_LEVEL, CAIRN_PRIMARY(2, 8), 404, 40408, 2,                               \
      "subject compatibility level not configured")                                                \
    X(E_NOT_FOUND_SUBJECT_MODE, CAIRN_PRIMARY(2, 9), 404, 40409, 2, "subject mode not configured") \
    X(E_NOT_FOUND_PATH, CAIRN_PRIMARY(2, 10), 404, 404, 2, "no such resource")                     \
    X(E_CONFLICT_VERSION, CAIRN_PRIMARY(3, 1), 409, 409, 3, "wrong expected version")              \
    X(E_CONFLICT_REFERENCE_EXISTS, CAIRN_PRIMARY(3, 2), 422, 42206, 2,                             \
      "schema is referenced by another schema")                                                    \
    X(E_CONFLICT_LOCKED, CAIRN_PRIMARY(3, 3), 409, 409, 2, "data directory is locked")             \
    X(E_IO_FSYNC, CAIRN_PRIMARY(7, 1), 500, 50001, 2, "fsync failed")                              \
    X(E_REJECTED, CAIRN_PRIMARY(1, 13), 422, 422, 2, "command rejected by the domain")

typedef enum cairn_rc {
#define CAIRN_RC_ENUM(name, value, http, code, exitc, text) CAIRN_##name = (value),
    CAIRN_RC_MAP(CAIRN_RC_ENUM)
#undef CAIRN_RC_ENUM
} cairn_rc_t;

/** @brief The primary code (family) of an extended code. */
#define CAIRN_RC_PRIMARY(rc) ((cairn_rc_t)((int)(rc)&0xff))

/** @brief Stable symbolic name of @p rc ("CAIRN_E_NOT_FOUND_SUBJECT"). */
CAIRN_API const char *cairn_rc_name(cairn_rc_t rc);
/** @brief Short human text of @p rc ("subject not found"). */
CAIRN_API const char *cairn_rc_str(cairn_rc_t rc);
/** @brief HTTP status the REST API answers for @p rc. */
CAIRN_API int cairn_rc_http_status(cairn_rc_t rc);
/** @brief Confluent Schema Registry `error_code` for @p rc. */
CAIRN_API int cairn_rc_confluent_code(cairn_rc_t rc);
/** @brief Exit code of the `cairn` program for @p rc. */
CAIRN_API int cairn_rc_exit_code(cairn_rc_t rc);

/* Classes of a failure (librdkafka's rd_kafka_error_t has the same). */
#define CAIRN_ERR_RETRIABLE       0x1u /* the same call may succeed later */
#define CAIRN_ERR_FATAL           0x2u /* the handle is unusable: close and reopen */
#define CAIRN_ERR_CONFLICT        0x4u /* lost a race: reload and decide again */
#define CAIRN_ERR_OUTCOME_UNKNOWN 0x8u /* may or may not have happened */

/**
 * Detail of a failure, caller-owned and fixed-size so that reporting never
 * allocates (jansson's json_error_t). Zero it before use; the first error
 * recorded wins, later ones are ignored.
 */
typedef struct cairn_error {
    cairn_rc_t code; /**< CAIRN_OK while nothing was recorded */
    int cause;       /**< the dependency's own code (errno, SQLSTATE number...) */
    unsigned flags;  /**< CAIRN_ERR_* */
    char where[128]; /**< subject, stream, path or place in a schema */
    char text[320];  /**< lowercase message, no final period */
    char reserved[32];
} cairn_error_t;

/**
 * @brief Allocator hooks (jansson's json_set_alloc_funcs, with realloc added
 * since the log and the buffers grow in place); call before anything else.
 * NULL for any of them restores libc's.
 */
CAIRN_API void cairn_set_alloc_funcs(void *(*malloc_fn)(size_t),
                                     void *(*realloc_fn)(void *, size_t),
                                     void (*free_fn)(void *));
/** @brief Frees memory that a Cairn function handed to the caller. Accepts NULL. */
CAIRN_API void cairn_free(void *p);

/* syslog levels */
#define CAIRN_LOG_ERR     3
#define CAIRN_LOG_WARNING 4
#define CAIRN_LOG_NOTICE  5
#define CAIRN_LOG_INFO    6
#define CAIRN_LOG_DEBUG   7

/**
 * @brief Where library log lines go. @p ctx names the module ("registry",
 * "http", "eventstore"). The default hook writes WARNING and worse to stderr.
 * @remark Called from any thread; the hook must be thread-safe.
 */
typedef void(cairn_log_hook_t)(void *opaque, int level, const char *ctx, const char *msg);
CAIRN_API void cairn_set_log_hook(cairn_log_hook_t *hook, void *opaque, int max_level);

#ifdef __cplusplus
}
#endif
#endif
