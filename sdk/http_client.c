/* SPDX-License-Identifier: MIT */
/*
 * http_client.c - the registry client's transport over libcurl's easy
 * interface (see http_client.h for what it promises).
 *
 * Handles: libcurl forbids using one easy handle from two threads at once,
 * and a fresh handle per request would lose keep-alive. So idle handles sit
 * in a small pool guarded by a mutex; a request pops one (or creates one),
 * resets and configures it, performs, and pushes it back. Pooled handles
 * keep their connection caches, which gives keep-alive per handle.
 *
 * Credentials are taken out of the configured URL once and handed to
 * libcurl as CURLOPT_USERNAME / CURLOPT_PASSWORD, so the URL libcurl sees
 * (and so every libcurl error text) has none; our own messages use
 * `display`, the URL with the password replaced by ***.
 *
 * Retries: a request is attempted at most max_retries + 1 times; only
 * transport failures that may pass (refused or reset connections, timeouts,
 * empty answers) and 5xx answers are retried, after a wait that starts at
 * backoff_ms and doubles up to a cap. 4xx answers are final. The whole call
 * is therefore bounded by (retries + 1) x timeout + the sum of the waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_client.h"

#define DEFAULT_TIMEOUT_MS         5000L
#define DEFAULT_CONNECT_TIMEOUT_MS 2000L
#define DEFAULT_RETRIES            2
#define DEFAULT_BACKOFF_MS         100L
#define BACKOFF_CAP_MS             2000L
#define MAX_ANSWER_BYTES           (16u * 1024u * 1024u)
#define MAX_IDLE_HANDLES           32
#define MEDIA_TYPE                 "application/vnd.schemaregistry.v1+json"
#define ACCEPT                     "Accept: " MEDIA_TYPE ", application/json;q=0.9"

struct pooled {
    CURL *easy;
    struct pooled *next;
};

struct cairn__http {
    char *base;    /* scheme://host[:port][/prefix], no credentials, no trailing '/' */
    char *display; /* base with "user:***@" when there is a user */
    char *user;    /* NULL: no basic auth */
    char *password;
    char *ca_file, *cert_file, *key_file;
    int insecure;
    long timeout_ms, connect_timeout_ms, backoff_ms;
    int max_retries;
    struct curl_slist *hdr_get;  /* Accept */
    struct curl_slist *hdr_body; /* Accept, Content-Type, no Expect */
    pthread_mutex_t lock;        /* guards idle, nidle */
    struct pooled *idle;
    size_t nidle;
    atomic_ulong attempts;
};

/* ---- URL handling ------------------------------------------------------ */

/*
 * Writes @p raw with the password of its userinfo replaced by ***, for
 * messages about a URL that may not even parse.
 */
static void mask_url(const char *raw, char *out, size_t size)
{
    const char *start = strstr(raw, "://");
    start = start ? start + 3 : raw;
    size_t auth_len = strcspn(start, "/?#");
    const char *at = NULL;
    for (const char *p = start; p < start + auth_len; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
    if (!colon)
        snprintf(out, size, "%s", raw);
    else
        snprintf(out, size, "%.*s***%s", (int)(colon + 1 - raw), raw, at);
}

static char *dup_curl(char *s)
{
    char *copy = s ? cairn__strdup(s) : NULL;
    curl_free(s);
    return copy;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    cairn__free(s);
}

static cairn_rc_t parse_url(cairn__http_t *h, const char *url, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    char masked[512];
    char *scheme = NULL, *full = NULL, *part = NULL;
    CURLU *u = curl_url();
    CURLUcode uc;

    mask_url(url, masked, sizeof masked);
    if (!u)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    if (!strstr(url, "://")) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                              "invalid registry url '%s': it must start with http:// or https://",
                              masked);
        goto out;
    }
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        rc = cairn__error_setc(err, CAIRN_E_INVALID, (int)uc, 0, NULL,
                               "invalid registry url '%s': %s", masked, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                              "invalid registry url '%s': only http and https are supported",
                              masked);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, CURLU_URLDECODE) == CURLUE_OK && part && *part) {
        h->user = dup_curl(part);
        part = NULL;
        if (curl_url_get(u, CURLUPART_PASSWORD, &part, CURLU_URLDECODE) == CURLUE_OK && part) {
            h->password = dup_curl(part);
            part = NULL;
        } else {
            h->password = cairn__strdup("");
        }
        if (!h->user || !h->password) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    curl_free(part);
    part = NULL;
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "invalid registry url '%s'", masked);
        goto out;
    }
    if (!(h->base = cairn__strdup(full))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    for (size_t n = strlen(h->base); n && h->base[n - 1] == '/'; n--)
        h->base[n - 1] = '\0';
out:
    curl_free(part);
    curl_free(scheme);
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}

static cairn_rc_t make_display(cairn__http_t *h)
{
    cairn_buf_t b;
    cairn_rc_t rc;
    const char *rest = strstr(h->base, "://");
    cairn_buf_init(&b, 4096);
    if (h->user && rest)
        rc = cairn_buf_printf(&b, "%.*s%s:***@%s", (int)(rest + 3 - h->base), h->base, h->user,
                              rest + 3);
    else
        rc = cairn_buf_appends(&b, h->base);
    if (rc == CAIRN_OK && !(h->display = cairn_buf_detach(&b, NULL)))
        rc = CAIRN_E_NOMEM;
    cairn_buf_release(&b);
    return rc;
}

char *cairn__http_escape(const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(segment);
    char *out = cairn__malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)segment; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- lifecycle --------------------------------------------------------- */

static cairn_rc_t copy_opt(const char *in, char **out)
{
    if (!in || !*in)
        return CAIRN_OK;
    *out = cairn__strdup(in);
    return *out ? CAIRN_OK : CAIRN_E_NOMEM;
}

static cairn_rc_t check_file(const char *path, const char *what, cairn_error_t *err)
{
    if (path && *path && access(path, R_OK) != 0)
        return cairn__error_setc(err, CAIRN_E_INVALID, errno, 0, path,
                                 "cannot read the %s '%s': %s", what, path, strerror(errno));
    return CAIRN_OK;
}

cairn_rc_t cairn__http_new(const cairn_registry_client_options_t *opts,
                           cairn__http_t **out,
                           cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn__http_t *h = NULL;

    *out = NULL;
    if (!opts || !opts->url || !*opts->url)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no registry url given");
    if (opts->timeout_ms < 0 || opts->connect_timeout_ms < 0 || opts->backoff_ms < 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "registry client timeouts and backoff must not be negative");
    if ((rc = check_file(opts->ca_file, "ca file", err)) != CAIRN_OK ||
        (rc = check_file(opts->cert_file, "client certificate", err)) != CAIRN_OK ||
        (rc = check_file(opts->key_file, "client key", err)) != CAIRN_OK)
        return rc;
    if (!(h = cairn__calloc(1, sizeof *h)))
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        cairn__free(h);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot create a mutex");
    }
    atomic_init(&h->attempts, 0);
    h->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    h->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    if (h->connect_timeout_ms > h->timeout_ms)
        h->connect_timeout_ms = h->timeout_ms;
    h->max_retries = opts->max_retries == 0  ? DEFAULT_RETRIES
                     : opts->max_retries < 0 ? 0
                                             : opts->max_retries;
    h->backoff_ms = opts->backoff_ms ? opts->backoff_ms : DEFAULT_BACKOFF_MS;
    h->insecure = opts->insecure_skip_verify != 0;

    if ((rc = parse_url(h, opts->url, err)) != CAIRN_OK)
        goto out;
    /* Credentials in the URL win over the separate options. */
    if (!h->user && opts->user && *opts->user) {
        h->user = cairn__strdup(opts->user);
        h->password = cairn__strdup(opts->password ? opts->password : "");
        if (!h->user || !h->password) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
    }
    if (make_display(h) != CAIRN_OK || copy_opt(opts->ca_file, &h->ca_file) != CAIRN_OK ||
        copy_opt(opts->cert_file, &h->cert_file) != CAIRN_OK ||
        copy_opt(opts->key_file, &h->key_file) != CAIRN_OK) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    h->hdr_get = curl_slist_append(NULL, ACCEPT);
    h->hdr_body = curl_slist_append(NULL, ACCEPT);
    if (!h->hdr_get || !h->hdr_body ||
        !curl_slist_append(h->hdr_body, "Content-Type: " MEDIA_TYPE) ||
        !curl_slist_append(h->hdr_body, "Expect:")) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    *out = h;
    h = NULL;
out:
    cairn__http_destroy(h);
    return rc;
}

void cairn__http_destroy(cairn__http_t *h)
{
    if (!h)
        return;
    while (h->idle) {
        struct pooled *p = h->idle;
        h->idle = p->next;
        curl_easy_cleanup(p->easy);
        cairn__free(p);
    }
    curl_slist_free_all(h->hdr_get);
    curl_slist_free_all(h->hdr_body);
    pthread_mutex_destroy(&h->lock);
    cairn__free(h->base);
    cairn__free(h->display);
    cairn__free(h->user);
    wipe_free(h->password);
    cairn__free(h->ca_file);
    cairn__free(h->cert_file);
    cairn__free(h->key_file);
    cairn__free(h);
}

const char *cairn__http_display(const cairn__http_t *h)
{
    return h->display;
}

unsigned long cairn__http_attempts(const cairn__http_t *h)
{
    return atomic_load(&h->attempts);
}

/* ---- the handle pool --------------------------------------------------- */

/* Locks: takes h->lock briefly. */
static struct pooled *pool_take(cairn__http_t *h)
{
    struct pooled *p;
    pthread_mutex_lock(&h->lock);
    p = h->idle;
    if (p) {
        h->idle = p->next;
        h->nidle--;
    }
    pthread_mutex_unlock(&h->lock);
    if (p)
        return p;
    if (!(p = cairn__calloc(1, sizeof *p)))
        return NULL;
    if (!(p->easy = curl_easy_init())) {
        cairn__free(p);
        return NULL;
    }
    return p;
}

/* Locks: takes h->lock briefly. Handles beyond MAX_IDLE_HANDLES are closed. */
static void pool_give(cairn__http_t *h, struct pooled *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&h->lock);
    if (h->nidle < MAX_IDLE_HANDLES) {
        p->next = h->idle;
        h->idle = p;
        h->nidle++;
        p = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (p) {
        curl_easy_cleanup(p->easy);
        cairn__free(p);
    }
}

/* ---- one attempt ------------------------------------------------------- */

struct sink {
    cairn_buf_t buf;
    cairn_rc_t rc; /* why the write callback refused */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct sink *s = opaque;
    cairn_rc_t rc = cairn_buf_append(&s->buf, data, size * nmemb);
    if (rc != CAIRN_OK) {
        s->rc = rc;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    return size * nmemb;
}

static CURLcode attempt(cairn__http_t *h,
                        CURL *e,
                        const char *method,
                        const char *url,
                        const char *payload,
                        size_t payload_len,
                        struct sink *s,
                        char *errbuf,
                        long *status)
{
    atomic_fetch_add(&h->attempts, 1);
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_ANSWER_BYTES);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "cairn-sdk/" CAIRN_VERSION_STR);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, payload ? h->hdr_body : h->hdr_get);
    if (h->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, h->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, h->password);
    }
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (h->cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, h->cert_file);
    if (h->key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, h->key_file);
    if (h->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload_len);
    }
    errbuf[0] = '\0';
    CURLcode cc = curl_easy_perform(e);
    *status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    /* libcurl keeps these pointers until the next reset: drop them now. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    return cc;
}

/* Transport failures that may pass if tried again. */
static bool transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* " after N attempts" when the request was retried, else "" (a single try needs no count). */
static void attempts_note(char *buf, size_t size, int tries)
{
    if (tries > 1)
        snprintf(buf, size, " after %d attempts", tries);
    else if (size)
        buf[0] = '\0';
}

static cairn_rc_t transport_error(const cairn__http_t *h,
                                  const char *method,
                                  CURLcode cc,
                                  const struct sink *s,
                                  const char *errbuf,
                                  int tries,
                                  const char *where,
                                  cairn_error_t *err)
{
    const char *why = errbuf && *errbuf ? errbuf : curl_easy_strerror(cc);
    char note[48];
    attempts_note(note, sizeof note, tries);
    /* A request that may have reached the server: its effect is unknown. */
    unsigned unknown = strcmp(method, "GET") != 0 ? CAIRN_ERR_OUTCOME_UNKNOWN : 0;
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR:
        return cairn__error_setc(err, CAIRN_E_UNAVAILABLE, (int)cc, CAIRN_ERR_RETRIABLE, where,
                                 "cannot reach registry %s%s: %s", h->display, note, why);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return cairn__error_setc(err, CAIRN_E_UNAVAILABLE, (int)cc, CAIRN_ERR_RETRIABLE | unknown,
                                 where, "registry %s dropped the request%s: %s", h->display, note,
                                 why);
    case CURLE_OPERATION_TIMEDOUT:
        return cairn__error_setc(err, CAIRN_E_TIMEOUT, (int)cc, CAIRN_ERR_RETRIABLE | unknown,
                                 where, "registry %s did not answer in time (%ld ms)%s: %s",
                                 h->display, h->timeout_ms, note, why);
    case CURLE_FILESIZE_EXCEEDED:
        return cairn__error_setc(err, CAIRN_E_INVALID_TOO_LARGE, (int)cc, 0, where,
                                 "answer of registry %s is larger than %u bytes", h->display,
                                 MAX_ANSWER_BYTES);
    case CURLE_WRITE_ERROR:
        if (s->rc == CAIRN_E_INVALID_TOO_LARGE)
            return cairn__error_setc(err, CAIRN_E_INVALID_TOO_LARGE, (int)cc, 0, where,
                                     "answer of registry %s is larger than %u bytes", h->display,
                                     MAX_ANSWER_BYTES);
        if (s->rc == CAIRN_E_NOMEM)
            return cairn__error_setc(err, CAIRN_E_NOMEM, (int)cc, 0, where,
                                     "out of memory reading the answer of registry %s", h->display);
        break;
    case CURLE_OUT_OF_MEMORY:
        return cairn__error_setc(err, CAIRN_E_NOMEM, (int)cc, 0, where, "out of memory in libcurl");
    default:
        break;
    }
    return cairn__error_setc(err, CAIRN_E_IO, (int)cc, 0, where,
                             "request to registry %s failed: %s", h->display, why);
}

/* ---- answers ----------------------------------------------------------- */

struct code_row {
    cairn_rc_t rc;
    int confluent;
};

static const struct code_row code_rows[] = {
#define CODE_ROW(name, value, http, code, exitc, text) {CAIRN_##name, (code)},
    CAIRN_RC_MAP(CODE_ROW)
#undef CODE_ROW
};

/* The Cairn code of a non-2xx answer. */
static cairn_rc_t answer_rc(long status, int code)
{
    if (status >= 500)
        return code == 50002 ? CAIRN_E_TIMEOUT : CAIRN_E_UNAVAILABLE;
    /* Confluent uses 409 only for "incompatible schema". */
    if (code == 409 || (code <= 0 && status == 409))
        return CAIRN_E_INCOMPATIBLE;
    if (code > 0)
        for (size_t i = 0; i < sizeof code_rows / sizeof code_rows[0]; i++)
            if (code_rows[i].confluent == code && code_rows[i].rc != CAIRN_OK)
                return code_rows[i].rc;
    switch (status) {
    case 404:
        return CAIRN_E_NOT_FOUND;
    case 413:
        return CAIRN_E_INVALID_TOO_LARGE;
    case 415:
        return CAIRN_E_INVALID_MEDIA_TYPE;
    case 422:
        return CAIRN_E_INVALID_SCHEMA;
    default:
        return CAIRN_E_INVALID_REQUEST;
    }
}

cairn_rc_t cairn__http_answer_rc(const cairn__http_answer_t *ans)
{
    if (ans->status >= 200 && ans->status < 300)
        return CAIRN_OK;
    return answer_rc(ans->status, ans->error_code);
}

static cairn_rc_t http_error(const cairn__http_t *h,
                             const cairn__http_answer_t *ans,
                             int tries,
                             const char *where,
                             cairn_error_t *err)
{
    long status = ans->status;
    int code = ans->error_code;
    const char *msg = ans->message;
    cairn_rc_t rc = cairn__http_answer_rc(ans);
    char note[48];
    attempts_note(note, sizeof note, tries);

    if (rc == CAIRN_E_INCOMPATIBLE && *msg)
        cairn__error_setc(err, rc, (int)status, 0, where, "%s", msg);
    else if (status == 401 || status == 403)
        cairn__error_setc(err, rc, (int)status, 0, where,
                          "registry %s refused the request (http %ld): check the credentials%s%s",
                          h->display, status, *msg ? ": " : "", msg);
    else if (status >= 500)
        cairn__error_setc(err, rc, (int)status, CAIRN_ERR_RETRIABLE, where,
                          "registry %s failed%s (http %ld, error_code %d)%s%s", h->display, note,
                          status, code, *msg ? ": " : "", msg);
    else
        cairn__error_setc(err, rc, (int)status, 0, where, "%s (registry http %ld, error_code %d)",
                          *msg ? msg : cairn_rc_str(rc), status, code);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *dump_json(const json_t *body, size_t *len)
{
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
    char *s = n ? cairn__malloc(n + 1) : NULL;
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

void cairn__http_answer_release(cairn__http_answer_t *ans)
{
    if (!ans)
        return;
    json_decref(ans->json);
    cairn__free(ans->body);
    memset(ans, 0, sizeof *ans);
    ans->message = "";
}

/*
 * The request with its retries; on CAIRN_OK @p ans holds the last attempt's
 * answer, whatever its status, and @p tries how many attempts were made.
 */
static cairn_rc_t exchange(cairn__http_t *h,
                           const char *method,
                           const char *path,
                           const json_t *body,
                           const char *where,
                           cairn__http_answer_t *ans,
                           int *tries,
                           cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    char *url = NULL, *payload = NULL;
    size_t payload_len = 0;
    struct sink s = {.rc = CAIRN_OK};
    char errbuf[CURL_ERROR_SIZE];
    long status = 0, wait = h->backoff_ms;
    long cap = h->backoff_ms > BACKOFF_CAP_MS ? h->backoff_ms : BACKOFF_CAP_MS;
    CURLcode cc = CURLE_OK;

    memset(ans, 0, sizeof *ans);
    ans->message = "";
    *tries = 0;
    cairn_buf_init(&s.buf, MAX_ANSWER_BYTES);
    size_t url_len = strlen(h->base) + strlen(path) + 1;
    if (!(url = cairn__malloc(url_len))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, where, "out of memory");
        goto out;
    }
    snprintf(url, url_len, "%s%s", h->base, path);
    if (body && !(payload = dump_json(body, &payload_len))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, where, "cannot serialise the request");
        goto out;
    }

    for (;;) {
        struct pooled *p = pool_take(h);
        if (!p) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, where, "cannot create an http handle");
            goto out;
        }
        cairn_buf_reset(&s.buf);
        s.rc = CAIRN_OK;
        (*tries)++;
        cc = attempt(h, p->easy, method, url, payload, payload_len, &s, errbuf, &status);
        pool_give(h, p);
        bool again = cc != CURLE_OK ? transient(cc) : status >= 500;
        if (!again || *tries > h->max_retries)
            break;
        if (cairn__log_enabled(CAIRN_LOG_INFO))
            cairn__log(CAIRN_LOG_INFO, "http",
                       "registry %s: %s %s failed (%s), attempt %d of %d, next in %ld ms",
                       h->display, method, path,
                       cc != CURLE_OK ? curl_easy_strerror(cc) : "http 5xx", *tries,
                       h->max_retries + 1, wait);
        sleep_ms(wait);
        wait = wait * 2 > cap ? cap : wait * 2;
    }

    if (cc != CURLE_OK) {
        rc = transport_error(h, method, cc, &s, errbuf, *tries, where, err);
        goto out;
    }
    ans->status = status;
    if (!(ans->body = cairn_buf_detach(&s.buf, &ans->body_len))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, where, "out of memory");
        goto out;
    }
    ans->json = ans->body_len ? json_loadb(ans->body, ans->body_len, JSON_DECODE_ANY, NULL) : NULL;
    if ((status < 200 || status >= 300) && json_is_object(ans->json)) {
        json_t *jc = json_object_get(ans->json, "error_code");
        json_t *jm = json_object_get(ans->json, "message");
        if (json_is_integer(jc))
            ans->error_code = (int)json_integer_value(jc);
        if (json_is_string(jm))
            ans->message = json_string_value(jm);
    }
out:
    cairn_buf_release(&s.buf);
    cairn__free(payload);
    cairn__free(url);
    if (rc != CAIRN_OK)
        cairn__http_answer_release(ans);
    return rc;
}

cairn_rc_t cairn__http_exchange(cairn__http_t *h,
                                const char *method,
                                const char *path,
                                const json_t *body,
                                const char *where,
                                cairn__http_answer_t *ans,
                                cairn_error_t *err)
{
    int tries;
    return exchange(h, method, path, body, where, ans, &tries, err);
}

cairn_rc_t cairn__http_request(cairn__http_t *h,
                               const char *method,
                               const char *path,
                               const json_t *body,
                               const char *where,
                               json_t **answer,
                               cairn_error_t *err)
{
    cairn__http_answer_t ans;
    int tries = 0;
    cairn_rc_t rc;

    if (answer)
        *answer = NULL;
    if ((rc = exchange(h, method, path, body, where, &ans, &tries, err)) != CAIRN_OK)
        return rc;
    if (ans.status < 200 || ans.status >= 300) {
        rc = http_error(h, &ans, tries, where, err);
    } else if (ans.body_len && !ans.json) {
        json_error_t je;
        json_t *again = json_loadb(ans.body, ans.body_len, JSON_DECODE_ANY, &je);
        json_decref(again); /* NULL: parsed again only for the parser's message */
        rc = cairn__error_set(err, CAIRN_E_IO, 0, where, "registry %s answered malformed json: %s",
                              h->display, je.text);
    } else if (answer) {
        *answer = ans.json;
        ans.json = NULL;
    }
    cairn__http_answer_release(&ans);
    return rc;
}
