/* SPDX-License-Identifier: MIT */
/*
 * log.c - the public record-log API of include/cairn/eventstore.h: parses the
 * log URL, picks the backend and dispatches every call to its table
 * (backend.h).
 *
 * URLs: "file:DIR" (also "file://DIR") or a plain path without a scheme is
 * the embedded file backend; "kafka:HOST:PORT[,HOST:PORT...]?topic=T[&k=v...]"
 * is Kafka. A scheme is a leading run of letters, digits, '+', '-' or '.'
 * that starts with a letter and ends at the first ':' (RFC 3986), so "/a:b"
 * and "dir/x:y" are plain paths; a directory whose name looks like a scheme
 * ("data:1") must be written "file:data:1". Unknown schemes and malformed
 * URLs are CAIRN_E_INVALID here, before any backend runs.
 *
 * What is checked here once for every backend, so that they all answer bad
 * input alike and write nothing: the stream id (non-empty, at most
 * CAIRN__STREAM_MAX bytes), the batch (at least one record) and each record's
 * size (stream id + value + headers, at most max_record_bytes). Backends may
 * refuse more (the file backend bounds the encoded frame).
 *
 * Whole-log replay on a log of several partitions runs them one after the
 * other (partition 0 first) and only from the start: a position is a
 * partition's offset, so "from position P" means something only for one
 * partition (cairn_log_replay_partition).
 */
#include <inttypes.h>
#include <string.h>

#include "backend.h"
#include "eventstore_int.h"

#define DEFAULT_MAX_RECORD (8u * 1024u * 1024u)
#define SCHEME_MAX         16

/*
 * The Kafka table lives in eventstore/kafka/kafka_backend.c, which CMake's
 * glob builds into the same library whenever the file exists. A reference to
 * it must be strong (a weak one would not pull it out of the static
 * archive), so it is compiled in only when that file is there: a tree
 * without it still builds, and refuses "kafka:" URLs.
 */
#if defined(__has_include)
#if __has_include("kafka/kafka_backend.c")
#define HAVE_KAFKA_BACKEND 1
#endif
#endif

static const cairn__log_backend_t *kafka_backend(void)
{
#ifdef HAVE_KAFKA_BACKEND
    return &cairn__kafka_backend;
#else
    return NULL;
#endif
}

struct cairn_tail {
    const cairn__log_backend_t *backend;
    void *impl;
};

/* The scheme of @p url into @p buf; 0 when the url has none (a plain path). */
static int url_scheme(const char *url, char *buf, size_t size, const char **rest)
{
    size_t i = 0;
    if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
        return 0;
    for (i = 1; url[i] && url[i] != ':'; i++) {
        char c = url[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return 0;
    }
    if (url[i] != ':')
        return 0;
    /* A longer scheme than any we know is kept truncated: still unknown. */
    size_t len = i < size ? i : size - 1;
    for (size_t k = 0; k < len; k++)
        buf[k] = (char)(url[k] >= 'A' && url[k] <= 'Z' ? url[k] - 'A' + 'a' : url[k]);
    buf[len] = '\0';
    *rest = url + i + 1;
    return 1;
}

/* "HOST:PORT[,HOST:PORT...]?topic=T[&k=v...]": the shape only; the backend
 * checks the properties. */
static cairn_rc_t check_kafka_url(const char *url, const char *rest, cairn_error_t *err)
{
    const char *q = strchr(rest, '?');
    const char *hosts_end = q ? q : rest + strlen(rest);
    const char *p = rest;

    if (p == hosts_end)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, url,
                                "kafka url '%s' names no broker (kafka:HOST:PORT?topic=T)", url);
    while (p < hosts_end) {
        const char *comma = memchr(p, ',', (size_t)(hosts_end - p));
        const char *e = comma ? comma : hosts_end;
        const char *colon = NULL;
        for (const char *c = p; c < e; c++)
            if (*c == ':')
                colon = c;
        unsigned long port = 0;
        int ok = colon && colon > p && colon + 1 < e && (e - colon - 1) <= 5;
        for (const char *c = colon ? colon + 1 : e; ok && c < e; c++) {
            ok = *c >= '0' && *c <= '9';
            port = port * 10 + (unsigned long)(*c - '0');
        }
        for (const char *c = p; ok && c < colon; c++)
            ok = *c != '/' && *c != ' ' && *c != '?' && *c != '&' && *c != '=';
        if (!ok || port == 0 || port > 65535)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, url,
                                    "kafka url '%s': broker '%.*s' is not HOST:PORT", url,
                                    (int)(e - p), p);
        p = comma ? comma + 1 : e;
        if (comma && p == hosts_end)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, url,
                                    "kafka url '%s' has an empty broker", url);
    }
    /* The query must name a non-empty topic. */
    for (p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 6 && !strncmp(p, "topic=", 6))
            return CAIRN_OK;
        p = amp ? amp + 1 : NULL;
    }
    return cairn__error_set(err, CAIRN_E_INVALID, 0, url,
                            "kafka url '%s' names no topic (kafka:HOST:PORT?topic=T)", url);
}

cairn_rc_t cairn_log_open(const char *url,
                          const cairn_log_options_t *opts,
                          cairn_log_t **out,
                          cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    const cairn__log_backend_t *be = NULL;
    const char *rest = url;
    char scheme[SCHEME_MAX];
    cairn_log_t *log = NULL;

    if (!out)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "cairn_log_open needs out");
    *out = NULL;
    if (!url || !*url)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "empty log url");
    if (!url_scheme(url, scheme, sizeof scheme, &rest)) {
        be = &cairn__file_backend;
        rest = url;
    } else if (!strcmp(scheme, "file")) {
        be = &cairn__file_backend;
        if (!strncmp(rest, "//", 2))
            rest += 2;
        if (!*rest)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, url, "log url '%s' names no directory",
                                    url);
    } else if (!strcmp(scheme, "kafka")) {
        if ((rc = check_kafka_url(url, rest, err)) != CAIRN_OK)
            return rc;
        be = kafka_backend();
        if (!be)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, url,
                                    "log url '%s': this build has no kafka backend", url);
    } else {
        return cairn__error_set(err, CAIRN_E_INVALID, 0, url,
                                "log url '%s' has an unsupported scheme '%s' (file: or kafka:)",
                                url, scheme);
    }

    log = cairn__calloc(1, sizeof *log);
    if (!log)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, url, "out of memory");
    log->backend = be;
    log->max_record_bytes =
        opts && opts->max_record_bytes ? opts->max_record_bytes : DEFAULT_MAX_RECORD;
    rc = be->open(rest, opts, &log->impl, err);
    if (rc != CAIRN_OK) {
        cairn__free(log);
        return rc;
    }
    *out = log;
    return CAIRN_OK;
}

void cairn_log_close(cairn_log_t *log)
{
    if (!log)
        return;
    log->backend->close(log->impl);
    cairn__free(log);
}

/* The checks every backend shares (see the top of the file). */
static cairn_rc_t check_append(cairn_log_t *log,
                               const char *stream,
                               int64_t expected_version,
                               const cairn_record_t *records,
                               size_t n,
                               cairn_error_t *err)
{
    size_t slen;
    if (!log || !stream || !records || n == 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                "an append needs a log, a stream and at least one record");
    slen = strlen(stream);
    if (slen == 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "empty stream id");
    if (slen > CAIRN__STREAM_MAX)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "stream id of %zu bytes is longer than %u", slen,
                                CAIRN__STREAM_MAX);
    if (expected_version < CAIRN_EXPECT_NO_STREAM)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "bad expected version %" PRId64,
                                expected_version);
    for (size_t i = 0; i < n; i++) {
        const cairn_record_t *r = &records[i];
        size_t total = slen;
        int over = r->value_len > log->max_record_bytes;
        if ((r->value_len && !r->value) || (r->header_count && !r->headers))
            return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                    "record %zu of stream '%s' has a length but no data", i,
                                    stream);
        total += r->value_len;
        for (size_t h = 0; !over && h < r->header_count; h++) {
            const cairn_header_t *hd = &r->headers[h];
            if (!hd->name || !*hd->name || (hd->value_len && !hd->value))
                return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                        "record %zu of stream '%s' has a header without a name "
                                        "or value",
                                        i, stream);
            over = hd->value_len > log->max_record_bytes;
            total += strlen(hd->name) + hd->value_len;
        }
        if (over || total > log->max_record_bytes)
            return cairn__error_set(
                err, CAIRN_E_INVALID, 0, stream,
                "record %zu of stream '%s' is larger than max_record_bytes (%zu)", i, stream,
                log->max_record_bytes);
    }
    return CAIRN_OK;
}

cairn_rc_t cairn_log_append_nowait(cairn_log_t *log,
                                   const char *stream,
                                   int64_t expected_version,
                                   cairn_record_t *records,
                                   size_t n,
                                   uint64_t *last_version,
                                   uint64_t *ticket,
                                   cairn_error_t *err)
{
    cairn_rc_t rc = check_append(log, stream, expected_version, records, n, err);
    if (rc != CAIRN_OK)
        return rc;
    return log->backend->append_nowait(log->impl, stream, expected_version, records, n,
                                       last_version, ticket, err);
}

cairn_rc_t cairn_log_wait_durable(cairn_log_t *log, uint64_t ticket, cairn_error_t *err)
{
    if (!log)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no log");
    return log->backend->wait_durable(log->impl, ticket, err);
}

cairn_rc_t cairn_log_append(cairn_log_t *log,
                            const char *stream,
                            int64_t expected_version,
                            cairn_record_t *records,
                            size_t n,
                            uint64_t *last_version,
                            cairn_error_t *err)
{
    uint64_t ticket = 0;
    cairn_rc_t rc = cairn_log_append_nowait(log, stream, expected_version, records, n, last_version,
                                            &ticket, err);
    if (rc != CAIRN_OK)
        return rc;
    /* A backend that learns positions only once durable (Kafka) fills them here. */
    if (log->backend->wait_append)
        return log->backend->wait_append(log->impl, ticket, records, n, err);
    return log->backend->wait_durable(log->impl, ticket, err);
}

cairn_rc_t cairn_log_replay(
    cairn_log_t *log, uint64_t from_position, cairn_record_cb *cb, void *opaque, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_DONE;
    if (!log || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "replay needs a log and a callback");
    int parts = log->backend->partition_count(log->impl);
    if (parts == 1)
        return log->backend->replay_partition(log->impl, 0, from_position, cb, opaque, err);
    if (from_position != 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "a log of %d partitions replays from a position only per "
                                "partition (cairn_log_replay_partition)",
                                parts);
    for (int p = 0; p < parts && rc == CAIRN_DONE; p++)
        rc = log->backend->replay_partition(log->impl, p, 0, cb, opaque, err);
    return rc;
}

cairn_rc_t cairn_log_read_stream(cairn_log_t *log,
                                 const char *stream,
                                 uint64_t from_version,
                                 cairn_record_cb *cb,
                                 void *opaque,
                                 cairn_error_t *err)
{
    if (!log || !stream || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                "read_stream needs a log, a stream and a callback");
    if (!*stream)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "empty stream id");
    return log->backend->read_stream(log->impl, stream, from_version, cb, opaque, err);
}

uint64_t cairn_log_stream_version(cairn_log_t *log, const char *stream)
{
    if (!log || !stream || !*stream)
        return 0;
    return log->backend->stream_version(log->impl, stream);
}

uint64_t cairn_log_end(cairn_log_t *log)
{
    uint64_t sum = 0;
    if (!log)
        return 0;
    int parts = log->backend->partition_count(log->impl);
    for (int p = 0; p < parts; p++)
        sum += log->backend->end(log->impl, p);
    return sum;
}

const char *cairn_log_scheme(cairn_log_t *log)
{
    return log ? log->backend->scheme : "";
}

int cairn_log_partition_count(cairn_log_t *log)
{
    return log ? log->backend->partition_count(log->impl) : 0;
}

int cairn_log_partition_of(cairn_log_t *log, const char *stream)
{
    if (!log || !stream)
        return -1;
    return log->backend->partition_of(log->impl, stream);
}

uint64_t cairn_log_partition_end(cairn_log_t *log, int partition)
{
    if (!log || partition < 0 || partition >= log->backend->partition_count(log->impl))
        return 0;
    return log->backend->end(log->impl, partition);
}

cairn_rc_t cairn_log_replay_partition(cairn_log_t *log,
                                      int partition,
                                      uint64_t from,
                                      cairn_record_cb *cb,
                                      void *opaque,
                                      cairn_error_t *err)
{
    if (!log || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "replay needs a log and a callback");
    int parts = log->backend->partition_count(log->impl);
    if (partition < 0 || partition >= parts)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "partition %d out of range (the log has %d)", partition, parts);
    return log->backend->replay_partition(log->impl, partition, from, cb, opaque, err);
}

/* ---- tails ---------------------------------------------------------------- */

cairn_rc_t
cairn_tail_open(cairn_log_t *log, const char *checkpoint, cairn_tail_t **out, cairn_error_t *err)
{
    cairn_rc_t rc;
    if (!log || !out)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "a tail needs a log and out");
    *out = NULL;
    if (checkpoint && *checkpoint && strcmp(checkpoint, "end") != 0) {
        size_t sl = strlen(log->backend->scheme);
        if (strlen(checkpoint) >= CAIRN_CHECKPOINT_MAX ||
            strncmp(checkpoint, log->backend->scheme, sl) != 0 || checkpoint[sl] != ':')
            return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                    "checkpoint '%.64s' does not belong to a %s log", checkpoint,
                                    log->backend->scheme);
    }
    cairn_tail_t *t = cairn__calloc(1, sizeof *t);
    if (!t)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    t->backend = log->backend;
    rc = log->backend->tail_open(log->impl, checkpoint, &t->impl, err);
    if (rc != CAIRN_OK) {
        cairn__free(t);
        return rc;
    }
    *out = t;
    return CAIRN_OK;
}

cairn_rc_t cairn_tail_poll(cairn_tail_t *tail,
                           int timeout_ms,
                           size_t max_records,
                           cairn_record_cb *cb,
                           void *opaque,
                           size_t *delivered,
                           cairn_error_t *err)
{
    if (delivered)
        *delivered = 0;
    if (!tail || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "poll needs a tail and a callback");
    if (max_records == 0)
        return CAIRN_OK;
    return tail->backend->tail_poll(tail->impl, timeout_ms, max_records, cb, opaque, delivered,
                                    err);
}

cairn_rc_t cairn_tail_checkpoint(cairn_tail_t *tail, char *buf, size_t size, cairn_error_t *err)
{
    if (!tail || !buf || size == 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                                "checkpoint needs a tail and a buffer");
    return tail->backend->tail_checkpoint(tail->impl, buf, size, err);
}

void cairn_tail_close(cairn_tail_t *tail)
{
    if (!tail)
        return;
    tail->backend->tail_close(tail->impl);
    cairn__free(tail);
}
