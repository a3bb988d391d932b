/* SPDX-License-Identifier: MIT */
/*
 * api_int.h - private umbrella header of the REST API: the pure request
 * parsing helpers (path segments, percent-decoding, query values, version
 * and id parsing, content types), the small JSON writer, and the request
 * context that server.c (MHD glue) and handlers.c (endpoints) share.
 *
 * The parsing helpers are pure functions so that the unit tests reach them
 * without a server (tests/unit/api/test_path.c).
 *
 * Invariants of cairn__api_path_t: `seg[0..n)` point into the caller's
 * scratch buffer, are NUL-terminated, non-empty, contain no NUL byte and were
 * percent-decoded exactly once.
 */
#ifndef CAIRN_API_API_INT_H
#define CAIRN_API_API_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/api.h"
#include "common.h"

/* ---- limits (docs/API.md "Limits") ----------------------------------- */

#define CAIRN__API_MAX_PATH     8192                 /* raw path bytes; longer gets 414 */
#define CAIRN__API_MAX_SEGMENTS 8                    /* deeper paths are unknown paths (404) */
#define CAIRN__API_MAX_QUERY    1024                 /* bytes of one decoded query value */
#define CAIRN__API_MAX_OUT      (512u * 1024 * 1024) /* response body cap */
#define CAIRN__API_KEEP_BUF     (64u * 1024)         /* buffers above this are freed per request */

/* ---- pure parsing helpers (path.c) ------------------------------------ */

typedef struct cairn__api_path {
    size_t n;
    const char *seg[CAIRN__API_MAX_SEGMENTS];
    size_t len[CAIRN__API_MAX_SEGMENTS];
} cairn__api_path_t;

/**
 * @brief Percent-decodes @p in[0..len) into @p out (which needs len + 1
 * bytes); with @p plus_is_space a '+' becomes a space (query strings only).
 * @returns CAIRN_OK; CAIRN_E_INVALID_REQUEST for a bad escape ("%4", "%zz")
 *          or an encoded NUL ("%00"), which would truncate the value.
 */
cairn_rc_t cairn__api_pct_decode(
    const char *in, size_t len, bool plus_is_space, char *out, size_t *out_len, cairn_error_t *err);

/**
 * @brief Splits a raw (still percent-encoded) path into decoded segments.
 * One trailing slash is ignored ("/subjects/" is "/subjects"), as Confluent's
 * server does. @p scratch needs strlen(raw) + 1 bytes.
 * @returns CAIRN_OK; CAIRN_E_INVALID_REQUEST for a path that does not start
 *          with '/' or has a bad escape; CAIRN_E_NOT_FOUND_PATH for an empty
 *          segment in the middle ("//") or more than CAIRN__API_MAX_SEGMENTS.
 */
cairn_rc_t
cairn__api_path_parse(const char *raw, char *scratch, cairn__api_path_t *out, cairn_error_t *err);

/**
 * @brief Parses a version path segment as Confluent's VersionId does:
 * "latest" (any case) and -1 give -1; otherwise an integer 1..2^31-1.
 * @returns CAIRN_OK or CAIRN_E_INVALID_VERSION with Confluent's message.
 */
cairn_rc_t cairn__api_parse_version(const char *s, int *out, cairn_error_t *err);

/** @brief Parses a schema id segment: decimal 1..2^31-1. @returns false otherwise. */
bool cairn__api_parse_id(const char *s, int *out);

/**
 * @brief Parses a boolean query value: NULL or "" give @p dflt; "true" /
 * "false" in any case.
 * @returns CAIRN_OK or CAIRN_E_INVALID_REQUEST naming @p name.
 */
cairn_rc_t cairn__api_parse_bool(
    const char *name, const char *value, bool dflt, bool *out, cairn_error_t *err);

/**
 * @brief Parses an integer query value in [@p min, @p max]; NULL or "" give
 * @p dflt.
 * @returns CAIRN_OK or CAIRN_E_INVALID_REQUEST naming @p name.
 */
cairn_rc_t cairn__api_parse_int(const char *name,
                                const char *value,
                                long min,
                                long max,
                                long dflt,
                                long *out,
                                cairn_error_t *err);

/**
 * @brief Whether a request Content-Type means JSON to us: absent, the two
 * Schema Registry types, application/json or application/octet-stream,
 * parameters (";charset=utf-8") and case ignored.
 */
bool cairn__api_content_type_ok(const char *ct);

/* ---- JSON writer with a sticky error (jsonw.c) ------------------------ */

typedef struct cairn__jw {
    cairn_buf_t *b;
    cairn_rc_t rc; /* the first failure; later writes do nothing */
} cairn__jw_t;

void cairn__jw_raw(cairn__jw_t *w, const char *s, size_t n);
void cairn__jw_lit(cairn__jw_t *w, const char *s);
/** @brief A JSON string; bytes that are not valid UTF-8 become U+FFFD. */
void cairn__jw_str(cairn__jw_t *w, const char *s, size_t n);
void cairn__jw_cstr(cairn__jw_t *w, const char *s);
void cairn__jw_int(cairn__jw_t *w, long long v);

/* ---- the server and its requests (server.c, handlers.c) --------------- */

enum cairn__api_method {
    CAIRN__API_GET = 0,
    CAIRN__API_POST,
    CAIRN__API_PUT,
    CAIRN__API_DELETE,
    CAIRN__API_OTHER,
};

struct cairn_api {
    struct MHD_Daemon *daemon;
    cairn_registry_t *reg;
    size_t max_body;
    unsigned short port;
};

/**
 * One per connection (MHD's socket context), reused by each request on it
 * so that a keep-alive GET allocates nothing of ours. Per-request state is
 * reset on the first access-handler call and released in the
 * request-completed callback.
 * Thread: only the MHD thread that owns the connection touches it.
 */
typedef struct cairn__api_req {
    cairn_api_t *api;
    struct MHD_Connection *conn;
    enum cairn__api_method method;
    bool active;      /* between the first handler call and completion */
    bool body_over;   /* the body passed max_body: answer 413 */
    size_t discarded; /* body bytes dropped after the cap */
    cairn__api_path_t path;
    cairn_buf_t scratch; /* decoded path segments */
    cairn_buf_t body;    /* the request body, capped at max_body */
    cairn_buf_t out;     /* the response body (MHD reads it in place) */
    cairn_buf_t msg;     /* long error messages (incompatibility details) */
    cairn_strlist_t reasons;
    json_t *json; /* the parsed request body */
    unsigned status;
    const char *content_type;    /* of the response; NULL = the registry's */
    struct MHD_Response *shared; /* a cached response to queue instead of `out` */
    cairn_reg_schema_t *held;    /* keeps `shared` alive until it is queued */
    char qbuf[CAIRN__API_MAX_QUERY + 1];
} cairn__api_req_t;

/**
 * @brief Routes and runs one request (the whole body is in r->body).
 * On CAIRN_OK the answer is r->out with r->status (or r->shared); otherwise
 * the error in @p err (and r->msg when it is longer than err->text).
 */
cairn_rc_t cairn__api_dispatch(cairn__api_req_t *r, cairn_error_t *err);

/**
 * @brief A query value of the request, percent-decoded into r->qbuf (so one
 * at a time: copy it before asking for the next).
 * @param[out] value NULL when absent.
 * @returns CAIRN_OK or CAIRN_E_INVALID_REQUEST (bad escape, too long).
 */
cairn_rc_t
cairn__api_query(cairn__api_req_t *r, const char *name, const char **value, cairn_error_t *err);

/** @brief Builds (once) the shared response of GET /schemas/ids/{id} for @p s. */
struct MHD_Response *cairn__api_schema_response(cairn_reg_schema_t *s);

/** @brief Writes the schema's fields ("schemaType", "references", "schema") after a '{' or ','. */
void cairn__api_write_schema_fields(cairn__jw_t *w, const cairn_reg_schema_t *s, bool lead_comma);

#define CAIRN__API_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

#endif
