/* SPDX-License-Identifier: MIT */
/*
 * server.c - the libmicrohttpd glue of the REST API: daemon start and stop,
 * the per-connection request context, body intake with a cap, error bodies
 * and response queueing. Routing and the endpoints live in handlers.c.
 *
 * Request life cycle (measured facts in shared/ENVIRONMENT.md):
 * - The first access-handler call of a request only binds the connection's
 *   context and returns: queueing there would make MHD close the connection
 *   after the answer, which costs keep-alive (and 4.6x throughput). The one
 *   exception is an early refusal (413 by Content-Length, 415), where
 *   closing is what we want.
 * - Body calls append to a buffer capped at max_body; past the cap the rest
 *   is read and dropped (MHD does not let us answer mid-body), and the final
 *   call answers 413. A peer that keeps sending far past the cap is cut.
 * - The final call routes, runs the endpoint and queues the answer. The
 *   answer body stays in the context's `out` buffer, which MHD reads in
 *   place (MHD_RESPMEM_PERSISTENT), until the request-completed callback.
 * - The context is per connection, not per request: a keep-alive client
 *   reuses its buffers, so the hot GET /schemas/ids/{id} costs no malloc of
 *   ours (its answer is a response object cached beside the schema).
 */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_int.h"

/* MHD takes `void *` for data it only reads: the one place we drop const. */
static struct MHD_Response *
response_over(const void *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
    union {
        const void *c;
        void *m;
    } u = {.c = data};
    return MHD_create_response_from_buffer(len, u.m, mode);
}

static enum cairn__api_method method_of(const char *m)
{
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
        return CAIRN__API_GET;
    if (!strcmp(m, "POST"))
        return CAIRN__API_POST;
    if (!strcmp(m, "PUT"))
        return CAIRN__API_PUT;
    if (!strcmp(m, "DELETE"))
        return CAIRN__API_DELETE;
    return CAIRN__API_OTHER;
}

/* Frees what one request holds; keeps small buffers for the next request. */
static void request_release(cairn__api_req_t *r)
{
    if (r->json) {
        json_decref(r->json);
        r->json = NULL;
    }
    cairn_buf_t *bufs[] = {&r->body, &r->out, &r->msg, &r->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (bufs[i]->alloc > CAIRN__API_KEEP_BUF)
            cairn_buf_release(bufs[i]);
        else
            cairn_buf_reset(bufs[i]);
    }
    cairn_strlist_release(&r->reasons);
    if (r->held) {
        cairn_reg_schema_unref(r->held);
        r->held = NULL;
    }
    r->shared = NULL;
    r->active = false;
}

static void request_begin(cairn__api_req_t *r, struct MHD_Connection *conn, const char *method)
{
    r->conn = conn;
    r->method = method_of(method);
    r->active = true;
    r->body_over = false;
    r->discarded = 0;
    r->status = 200;
    r->content_type = NULL;
    r->shared = NULL;
    r->path.n = 0;
    r->body.cap_limit = r->api->max_body;
}

static void on_connection(void *cls,
                          struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        cairn__api_req_t *r = cairn__calloc(1, sizeof *r);
        if (r) {
            r->api = cls;
            cairn_buf_init(&r->body, r->api->max_body);
            cairn_buf_init(&r->out, CAIRN__API_MAX_OUT);
            cairn_buf_init(&r->msg, 1024 * 1024);
            cairn_buf_init(&r->scratch, CAIRN__API_MAX_PATH + 1);
            cairn_strlist_init(&r->reasons);
        }
        *socket_context = r; /* NULL: the handler refuses the connection's requests */
        return;
    }
    cairn__api_req_t *r = *socket_context;
    if (!r)
        return;
    request_release(r);
    cairn_buf_release(&r->body);
    cairn_buf_release(&r->out);
    cairn_buf_release(&r->msg);
    cairn_buf_release(&r->scratch);
    cairn__free(r);
    *socket_context = NULL;
}

static void on_completed(void *cls,
                         struct MHD_Connection *conn,
                         void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    cairn__api_req_t *r = *con_cls;
    if (r)
        request_release(r);
    *con_cls = NULL;
}

/* Leaves the raw path alone: path.c splits first and decodes each segment. */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    return strlen(s);
}

CAIRN_PRINTF(2, 0)
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!cairn__log_enabled(CAIRN_LOG_INFO))
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    cairn__log(CAIRN_LOG_INFO, "http", "libmicrohttpd: %s", line);
}

static enum MHD_Result queue_body(cairn__api_req_t *r, unsigned status, const char *url)
{
    struct MHD_Response *resp =
        response_over(r->out.data ? r->out.data : "", r->out.len, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : CAIRN__API_CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (cairn__log_enabled(CAIRN_LOG_DEBUG))
        cairn__log(CAIRN_LOG_DEBUG, "http", "request path=\"%.200s\" status=%u bytes=%zu", url,
                   status, r->out.len);
    return ret;
}

/* {"error_code": <table>, "message": ...} with the table's HTTP status. */
static enum MHD_Result
queue_error(cairn__api_req_t *r, cairn_rc_t rc, const cairn_error_t *err, const char *url)
{
    const char *msg = r->msg.len ? r->msg.data : (err && err->text[0] ? err->text : NULL);
    if (!msg)
        msg = cairn_rc_str(rc);
    cairn_buf_reset(&r->out);
    r->content_type = NULL;
    cairn__jw_t w = {&r->out, CAIRN_OK};
    cairn__jw_lit(&w, "{\"error_code\":");
    cairn__jw_int(&w, cairn_rc_confluent_code(rc));
    cairn__jw_lit(&w, ",\"message\":");
    cairn__jw_cstr(&w, msg);
    cairn__jw_lit(&w, "}");
    if (w.rc != CAIRN_OK)
        return MHD_NO;
    unsigned status = (unsigned)cairn_rc_http_status(rc);
    if (status >= 500)
        cairn__log(CAIRN_LOG_ERR, "http", "request failed path=\"%.200s\" status=%u error=\"%s\"",
                   url, status, msg);
    return queue_body(r, status, url);
}

static enum MHD_Result
queue_early_error(cairn__api_req_t *r, cairn_rc_t rc, const char *text, const char *url)
{
    cairn_error_t err = {0};
    cairn__error_set(&err, rc, 0, NULL, "%s", text);
    return queue_error(r, rc, &err, url);
}

/* Refusals decided from the headers alone, before any body is read. */
static enum MHD_Result check_headers(cairn__api_req_t *r, const char *url, bool *refused)
{
    struct MHD_Connection *c = r->conn;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    unsigned long long len = 0;
    if (cl) {
        char *end;
        len = strtoull(cl, &end, 10);
    }
    *refused = false;
    if (len > r->api->max_body) {
        *refused = true;
        char text[128];
        snprintf(text, sizeof text, "request body is larger than the limit of %zu bytes",
                 r->api->max_body);
        return queue_early_error(r, CAIRN_E_INVALID_TOO_LARGE, text, url);
    }
    if ((len > 0 || te) && !cairn__api_content_type_ok(ct)) {
        *refused = true;
        return queue_early_error(r, CAIRN_E_INVALID_MEDIA_TYPE, "HTTP 415 Unsupported Media Type",
                                 url);
    }
    return MHD_YES;
}

static enum MHD_Result respond(cairn__api_req_t *r, const char *url)
{
    cairn_error_t err = {0};
    cairn_rc_t rc = CAIRN_OK;
    size_t len = strlen(url);

    if (r->body_over) {
        rc = cairn__error_set(&err, CAIRN_E_INVALID_TOO_LARGE, 0, NULL,
                              "request body is larger than the limit of %zu bytes",
                              r->api->max_body);
        goto out;
    }
    if (len > CAIRN__API_MAX_PATH) {
        rc = cairn__error_set(&err, CAIRN_E_INVALID_REQUEST, 0, NULL,
                              "request path is longer than %d bytes", CAIRN__API_MAX_PATH);
        goto out;
    }
    cairn_buf_reset(&r->scratch);
    rc = cairn_buf_append(&r->scratch, url, len); /* reserves len + 1 bytes */
    if (rc != CAIRN_OK) {
        rc = cairn__error_set(&err, rc, 0, NULL, "%s", cairn_rc_str(rc));
        goto out;
    }
    rc = cairn__api_path_parse(url, r->scratch.data, &r->path, &err);
    if (rc != CAIRN_OK)
        goto out;
    rc = cairn__api_dispatch(r, &err);
out:
    if (rc != CAIRN_OK)
        return queue_error(r, rc, &err, url);
    if (r->shared) {
        enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->shared);
        r->shared = NULL;
        cairn_reg_schema_unref(r->held); /* MHD holds the response now */
        r->held = NULL;
        if (cairn__log_enabled(CAIRN_LOG_DEBUG))
            cairn__log(CAIRN_LOG_DEBUG, "http", "request path=\"%.200s\" status=%u cached", url,
                       r->status);
        return ret;
    }
    return queue_body(r, r->status, url);
}

static enum MHD_Result on_request(void *cls,
                                  struct MHD_Connection *conn,
                                  const char *url,
                                  const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls, (void)version;
    cairn__api_req_t *r = *con_cls;
    if (!r) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r = ci ? ci->socket_context : NULL;
        if (!r)
            return MHD_NO; /* the context could not be allocated: drop the connection */
        request_begin(r, conn, method);
        *con_cls = r;
        bool refused;
        enum MHD_Result ret = check_headers(r, url, &refused);
        return refused ? ret : MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!r->body_over) {
            cairn_rc_t rc = cairn_buf_append(&r->body, upload_data, n);
            if (rc == CAIRN_OK)
                return MHD_YES;
            if (rc != CAIRN_E_INVALID_TOO_LARGE)
                return MHD_NO; /* out of memory: drop the connection */
            r->body_over = true;
            cairn_buf_release(&r->body);
        }
        r->discarded += n;
        /* Read and drop a little more so that the 413 can be answered; then cut. */
        if (r->discarded / 4 > r->api->max_body)
            return MHD_NO;
        return MHD_YES;
    }
    return respond(r, url);
}

static cairn_rc_t resolve(const char *host,
                          unsigned short port,
                          struct sockaddr_storage *ss,
                          int *family,
                          cairn_error_t *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    char bare[256];
    size_t n = strlen(host);
    /* "[::1]" as written in URLs and --listen */
    if (n > 2 && n < sizeof bare && host[0] == '[' && host[n - 1] == ']') {
        memcpy(bare, host + 1, n - 2);
        bare[n - 2] = '\0';
        host = bare;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e != 0 || !res)
        return cairn__error_setc(err, CAIRN_E_IO, e, 0, host, "cannot resolve listen host '%s': %s",
                                 host, gai_strerror(e));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *family = res->ai_family;
    freeaddrinfo(res);
    if (*family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else if (*family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        return cairn__error_set(err, CAIRN_E_IO, 0, host, "unsupported address family for '%s'",
                                host);
    return CAIRN_OK;
}

cairn_rc_t cairn_api_start(cairn_registry_t *reg,
                           const cairn_api_options_t *opts,
                           cairn_api_t **out,
                           cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_api_t *api = NULL;
    const char *host =
        opts && opts->listen_host && *opts->listen_host ? opts->listen_host : "127.0.0.1";
    unsigned short port = opts ? opts->port : 8081;
    unsigned threads = opts && opts->threads ? opts->threads : 0;
    unsigned timeout = opts && opts->connection_timeout_s ? opts->connection_timeout_s : 30;
    unsigned max_conn = opts && opts->max_connections ? opts->max_connections : 1024;
    struct sockaddr_storage ss;
    int family = AF_INET;

    *out = NULL;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 && n < 64 ? (unsigned)n : 2;
    }
    api = cairn__calloc(1, sizeof *api);
    if (!api) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    api->reg = reg;
    api->max_body = opts && opts->max_body_bytes ? opts->max_body_bytes : 2u * 1024 * 1024;
    rc = resolve(host, port, &ss, &family, err);
    if (rc != CAIRN_OK)
        goto out;

    /*
     * poll, not epoll: libmicrohttpd 0.9.75's edge-triggered epoll misses the
     * FIN of a client that sends part of a request and half-closes at once
     * (data and FIN in one edge), keeping such connections until the timeout.
     * poll sees the EOF on the next round; measured at the same GET rate.
     */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    api->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT, max_conn,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, api, MHD_OPTION_NOTIFY_CONNECTION, on_connection, api,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_END);
    if (!api->daemon) {
        rc = cairn__error_set(err, CAIRN_E_IO, 0, host, "cannot listen on %s:%u", host,
                              (unsigned)port);
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
    api->port = di && di->port ? di->port : port;
    cairn__log(CAIRN_LOG_INFO, "http", "listening host=%s port=%u threads=%u", host,
               (unsigned)api->port, threads);
    *out = api;
    api = NULL;
out:
    if (api)
        cairn__free(api);
    return rc;
}

unsigned short cairn_api_port(const cairn_api_t *api)
{
    return api ? api->port : 0;
}

void cairn_api_stop(cairn_api_t *api)
{
    if (!api)
        return;
    if (api->daemon)
        MHD_stop_daemon(api->daemon);
    cairn__free(api);
}

/* ---- helpers for handlers.c ------------------------------------------ */

cairn_rc_t
cairn__api_query(cairn__api_req_t *r, const char *name, const char **value, cairn_error_t *err)
{
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    *value = NULL;
    if (!raw)
        return CAIRN_OK;
    size_t n = strlen(raw);
    if (n > CAIRN__API_MAX_QUERY)
        return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, name,
                                "query parameter '%s' is longer than %d bytes", name,
                                CAIRN__API_MAX_QUERY);
    cairn_rc_t rc = cairn__api_pct_decode(raw, n, true, r->qbuf, NULL, err);
    if (rc != CAIRN_OK)
        return rc;
    *value = r->qbuf;
    return CAIRN_OK;
}

static void destroy_cached_response(void *p)
{
    MHD_destroy_response(p);
}

struct MHD_Response *cairn__api_schema_response(cairn_reg_schema_t *s)
{
    void *cached = atomic_load_explicit(&s->api_cache, memory_order_acquire);
    if (cached)
        return cached;
    cairn_buf_t b;
    cairn_buf_init(&b, CAIRN__API_MAX_OUT);
    cairn__jw_t w = {&b, CAIRN_OK};
    cairn__jw_lit(&w, "{");
    cairn__api_write_schema_fields(&w, s, false);
    cairn__jw_lit(&w, "}");
    struct MHD_Response *resp = NULL;
    if (w.rc == CAIRN_OK)
        resp = response_over(b.data, b.len, MHD_RESPMEM_MUST_COPY);
    cairn_buf_release(&b);
    if (!resp)
        return NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CAIRN__API_CONTENT_TYPE);
    void *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&s->api_cache, &expected, (void *)resp,
                                                memory_order_acq_rel, memory_order_acquire)) {
        /* Only the winner writes the free hook; the schema's last unref reads it. */
        s->api_cache_free = destroy_cached_response;
        return resp;
    }
    MHD_destroy_response(resp);
    return expected;
}
