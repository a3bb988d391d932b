/* SPDX-License-Identifier: MIT */
/*
 * registry_client.c - HTTP to a Confluent-compatible schema registry through
 * libcurl's easy interface (see registry_client.h for what it guarantees).
 *
 * Credentials never travel inside the URL handed to libcurl: they are parsed
 * out of the configured URL once, and given to libcurl as CURLOPT_USERNAME /
 * CURLOPT_PASSWORD, so neither libcurl's error texts nor ours can echo them.
 * One easy handle is kept for the life of the client and reset before each
 * request, which keeps its connection cache (keep-alive across the several
 * requests of `cairn schema check --level`).
 *
 * CURLcode is translated into cairn_rc_t here and nowhere else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "registry_client.h"

#define DEFAULT_TIMEOUT_MS         30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_MAX_ANSWER         (16u * 1024u * 1024u)
#define MEDIA_TYPE                 "application/vnd.schemaregistry.v1+json"

struct cairn_rclient {
    CURL *curl;
    char *base;    /* scheme://host[:port][/path], no credentials, no trailing '/' */
    char *display; /* the same with user:***@ when a user is set */
    char *user;    /* NULL when no basic auth */
    char *password;
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_answer;
};

/* Where libcurl writes the answer's body. */
struct sink {
    cairn_buf_t buf;
    cairn_rc_t rc; /* why the write callback refused, or CAIRN_OK */
};

/*
 * Masks the password of a URL as typed by a person, for messages about a URL
 * that could not even be parsed: "http://u:pw@h/" becomes "http://u:***@h/".
 */
static void mask_raw_url(const char *raw, char *out, size_t size)
{
    const char *auth = strstr(raw, "://");
    auth = auth ? auth + 3 : raw;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        snprintf(out, size, "%s", raw);
        return;
    }
    snprintf(out, size, "%.*s***%s", (int)(colon + 1 - raw), raw, at);
}

static char *curl_strdup_free(char *s)
{
    char *copy = s ? cairn__strdup(s) : NULL;
    curl_free(s);
    return copy;
}

static cairn_rc_t split_url(cairn_rclient_t *c, const char *url, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    char masked[512];
    char *scheme = NULL, *full = NULL;
    CURLU *u = curl_url();

    mask_raw_url(url, masked, sizeof masked);
    if (!u)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    /* "host:8081" means http, as a person typing it expects (libcurl would guess https). */
    CURLUcode uc = CURLUE_OK;
    if (!strstr(url, "://")) {
        size_t n = strlen(url) + sizeof "http://";
        char *with_scheme = cairn__malloc(n);
        if (!with_scheme) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
        snprintf(with_scheme, n, "http://%s", url);
        uc = curl_url_set(u, CURLUPART_URL, with_scheme, 0);
        cairn__free(with_scheme);
    } else {
        uc = curl_url_set(u, CURLUPART_URL, url, 0);
    }
    if (uc != CURLUE_OK) {
        rc = cairn__error_setc(err, CAIRN_E_INVALID, (int)uc, 0, masked,
                               "invalid registry url '%s': %s", masked, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, masked,
                              "invalid registry url '%s': only http and https are supported",
                              masked);
        goto out;
    }

    char *part = NULL;
    if (curl_url_get(u, CURLUPART_USER, &part, CURLU_URLDECODE) == CURLUE_OK && part && *part) {
        c->user = curl_strdup_free(part);
        part = NULL;
        if (curl_url_get(u, CURLUPART_PASSWORD, &part, CURLU_URLDECODE) == CURLUE_OK)
            c->password = curl_strdup_free(part);
        else
            c->password = cairn__strdup("");
        if (!c->user || !c->password) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    } else {
        curl_free(part);
    }
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, masked, "invalid registry url '%s'", masked);
        goto out;
    }
    c->base = cairn__strdup(full);
    if (!c->base) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    size_t n = strlen(c->base);
    while (n && c->base[n - 1] == '/')
        c->base[--n] = '\0';

out:
    curl_free(scheme);
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}

static cairn_rc_t make_display(cairn_rclient_t *c)
{
    cairn_buf_t b;
    cairn_buf_init(&b, 4096);
    const char *rest = strstr(c->base, "://");
    cairn_rc_t rc = CAIRN_OK;
    if (c->user && rest) {
        rc = cairn_buf_printf(&b, "%.*s%s:***@%s", (int)(rest + 3 - c->base), c->base, c->user,
                              rest + 3);
    } else {
        rc = cairn_buf_appends(&b, c->base);
    }
    if (rc != CAIRN_OK) {
        cairn_buf_release(&b);
        return rc;
    }
    c->display = cairn_buf_detach(&b, NULL);
    return c->display ? CAIRN_OK : CAIRN_E_NOMEM;
}

cairn_rc_t
cairn__rclient_new(const cairn_rclient_options_t *opts, cairn_rclient_t **out, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_rclient_t *c = NULL;

    *out = NULL;
    if (!opts || !opts->url || !*opts->url)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no registry url given");
    c = cairn__calloc(1, sizeof *c);
    if (!c)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->connect_timeout_ms > c->timeout_ms)
        c->connect_timeout_ms = c->timeout_ms;
    c->max_answer = opts->max_answer ? opts->max_answer : DEFAULT_MAX_ANSWER;

    rc = split_url(c, opts->url, err);
    if (rc != CAIRN_OK)
        goto out;
    /* Credentials in the URL win over the ones given separately (environment). */
    if (!c->user && opts->user && *opts->user) {
        c->user = cairn__strdup(opts->user);
        c->password = cairn__strdup(opts->password ? opts->password : "");
        if (!c->user || !c->password) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    rc = make_display(c);
    if (rc != CAIRN_OK) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot create an http handle");
        goto out;
    }
    *out = c;
    c = NULL;
out:
    cairn__rclient_destroy(c);
    return rc;
}

void cairn__rclient_destroy(cairn_rclient_t *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    cairn__free(c->base);
    cairn__free(c->display);
    cairn__free(c->user);
    if (c->password) {
        /* Do not leave the password lying in freed memory. */
        volatile char *p = c->password;
        while (*p)
            *p++ = '\0';
        cairn__free(c->password);
    }
    cairn__free(c);
}

const char *cairn__rclient_url(const cairn_rclient_t *c)
{
    return c->display;
}

char *cairn__rclient_escape(cairn_rclient_t *c, const char *segment)
{
    char *e = curl_easy_escape(c->curl, segment, (int)strlen(segment));
    return e ? curl_strdup_free(e) : NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct sink *s = opaque;
    size_t n = size * nmemb;
    cairn_rc_t rc = cairn_buf_append(&s->buf, data, n);
    if (rc != CAIRN_OK) {
        s->rc = rc;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    return n;
}

static cairn_rc_t transport_error(const cairn_rclient_t *c,
                                  CURLcode cc,
                                  const struct sink *s,
                                  const char *detail,
                                  cairn_error_t *err)
{
    const char *what = detail && *detail ? detail : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return cairn__error_setc(err, CAIRN_E_UNAVAILABLE, (int)cc, CAIRN_ERR_RETRIABLE, c->display,
                                 "cannot reach registry %s: %s", c->display, what);
    case CURLE_OPERATION_TIMEDOUT:
        return cairn__error_setc(err, CAIRN_E_TIMEOUT, (int)cc, CAIRN_ERR_RETRIABLE, c->display,
                                 "registry %s did not answer in time: %s", c->display, what);
    case CURLE_FILESIZE_EXCEEDED:
        return cairn__error_setc(err, CAIRN_E_INVALID_TOO_LARGE, (int)cc, 0, c->display,
                                 "answer of registry %s is larger than %zu bytes", c->display,
                                 c->max_answer);
    case CURLE_WRITE_ERROR:
        if (s->rc == CAIRN_E_INVALID_TOO_LARGE)
            return cairn__error_setc(err, CAIRN_E_INVALID_TOO_LARGE, (int)cc, 0, c->display,
                                     "answer of registry %s is larger than %zu bytes", c->display,
                                     c->max_answer);
        if (s->rc == CAIRN_E_NOMEM)
            return cairn__error_setc(err, CAIRN_E_NOMEM, (int)cc, 0, c->display,
                                     "out of memory reading the answer of registry %s", c->display);
        break;
    default:
        break;
    }
    return cairn__error_setc(err, CAIRN_E_IO, (int)cc, 0, c->display,
                             "request to registry %s failed: %s", c->display, what);
}

/* Serialises @p body into a string owned by the caller (cairn_free). */
static char *dump_json(const json_t *body, size_t *len)
{
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
    if (n == 0)
        return NULL;
    char *s = cairn__malloc(n + 1);
    if (!s)
        return NULL;
    if (json_dumpb(body, s, n, JSON_COMPACT) != n) {
        cairn__free(s);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

cairn_rc_t cairn__rclient_request(cairn_rclient_t *c,
                                  const char *method,
                                  const char *path,
                                  const json_t *body,
                                  cairn_rclient_answer_t *ans,
                                  cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    char *url = NULL, *payload = NULL;
    size_t payload_len = 0;
    struct curl_slist *headers = NULL, *h;
    struct sink sink = {.rc = CAIRN_OK};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *e = c->curl;

    memset(ans, 0, sizeof *ans);
    ans->message = "";
    cairn_buf_init(&sink.buf, c->max_answer);

    size_t url_len = strlen(c->base) + strlen(path) + 1;
    url = cairn__malloc(url_len);
    if (!url) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    snprintf(url, url_len, "%s%s", c->base, path);
    if (body) {
        payload = dump_json(body, &payload_len);
        if (!payload) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot serialise the request");
            goto out;
        }
    }
    headers = curl_slist_append(NULL, "Accept: " MEDIA_TYPE ", application/json;q=0.9");
    if (headers && body) {
        h = curl_slist_append(headers, "Content-Type: " MEDIA_TYPE);
        headers = h ? h : headers;
        if (!h) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    if (!headers) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_answer);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "cairn/" CAIRN_VERSION_STR);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (c->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
    }
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload_len);
    }

    CURLcode cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        rc = transport_error(c, cc, &sink, errbuf, err);
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &ans->status);
    ans->body = cairn_buf_detach(&sink.buf, &ans->body_len);
    if (!ans->body) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    json_error_t jerr;
    ans->json = ans->body_len ? json_loadb(ans->body, ans->body_len, 0, &jerr) : NULL;
    if (ans->status >= 300 && json_is_object(ans->json)) {
        json_t *code = json_object_get(ans->json, "error_code");
        json_t *msg = json_object_get(ans->json, "message");
        if (json_is_integer(code))
            ans->error_code = (int)json_integer_value(code);
        if (json_is_string(msg))
            ans->message = json_string_value(msg);
    }

out:
    /* libcurl keeps pointers to these until the next reset: clear them now. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    curl_slist_free_all(headers);
    cairn__free(payload);
    cairn__free(url);
    cairn_buf_release(&sink.buf);
    if (rc != CAIRN_OK)
        cairn__rclient_answer_release(ans);
    return rc;
}

void cairn__rclient_answer_release(cairn_rclient_answer_t *ans)
{
    if (!ans)
        return;
    json_decref(ans->json);
    cairn__free(ans->body);
    memset(ans, 0, sizeof *ans);
    ans->message = "";
}

struct code_row {
    cairn_rc_t rc;
    int confluent;
};

static const struct code_row code_rows[] = {
#define CODE_ROW(name, value, http, code, exitc, text) {CAIRN_##name, (code)},
    CAIRN_RC_MAP(CODE_ROW)
#undef CODE_ROW
};

cairn_rc_t cairn__rclient_answer_rc(const cairn_rclient_answer_t *ans)
{
    if (ans->status >= 200 && ans->status < 300)
        return CAIRN_OK;
    /* Confluent answers 409 only for "incompatible schema". */
    if (ans->error_code == 409)
        return CAIRN_E_INCOMPATIBLE;
    if (ans->error_code > 0)
        for (size_t i = 0; i < sizeof code_rows / sizeof code_rows[0]; i++)
            if (code_rows[i].confluent == ans->error_code)
                return code_rows[i].rc;
    if (ans->status == 404)
        return CAIRN_E_NOT_FOUND;
    if (ans->status == 409)
        return CAIRN_E_INCOMPATIBLE;
    if (ans->status == 413)
        return CAIRN_E_INVALID_TOO_LARGE;
    if (ans->status >= 500)
        return CAIRN_E_UNAVAILABLE;
    return CAIRN_E_INVALID_REQUEST;
}
