/* SPDX-License-Identifier: MIT */
/*
 * cmd_events.c - `cairn events append|read|tail|copy`: look at and feed the
 * record log by hand, on any backend URL (file:DIR, a plain directory, or
 * kafka:HOST:PORT?topic=T).
 *
 * Exit codes come from the result-code table (cairn_rc_exit_code): 0 ok,
 * 3 a version conflict on append, 2 any other error.
 *
 * The file backend lets one process at a time hold a directory for writing,
 * so `append` and `copy` wait for the writer's lock (CAIRN_E_CONFLICT_LOCKED)
 * for up to --lock-timeout seconds (default 5) before they give up: several
 * `cairn events append` processes on one directory take turns instead of
 * failing. Readers (`read`, `tail`, the source of `copy`) open read-only and
 * never wait: they see what the writer has made durable.
 *
 * Output of `read` and `tail`, one line per record:
 *   partition=P position=N stream=S version=V timestamp=MS header:NAME=VALUE ... value=TEXT
 * where a value (or header value) that is not printable text (or, for
 * headers, contains a space) is written NAME:base64=... / value:base64=...;
 * --json writes one JSON object per line instead: {"partition", "position",
 * "stream", "version", "timestamp", "headers": {name: text}, "value": text},
 * with "headers_base64" / "value_base64" for binary ones.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/eventstore.h"
#include "cli.h"
#include "common.h"

#define MAX_HEADERS   64
#define MAX_VALUE     (64u << 20)
#define TAIL_BATCH    256
#define COPY_PIPELINE 512

static const char events_usage[] =
    "usage: cairn events append --log URL --stream S [--expect N|any|none] [--header k=v ...]\n"
    "                           [--type T] [--lock-timeout SECONDS] (VALUE | --file F)\n"
    "       cairn events read --log URL [--stream S] [--from POS] [--json]\n"
    "       cairn events tail --log URL [--from CHECKPOINT] [--json]\n"
    "       cairn events copy --from URL --to URL [--lock-timeout SECONDS]\n"
    "\n"
    "Log URLs: file:DIR (or a plain directory), kafka:HOST:PORT[,HOST:PORT...]?topic=T.\n"
    "'cairn events <command> --help' tells more.\n";

static const char append_usage[] =
    "usage: cairn events append --log URL --stream S [--expect N|any|none] [--header k=v ...]\n"
    "                           [--type T] [--lock-timeout SECONDS] (VALUE | --file F)\n"
    "\n"
    "Appends one record to stream S and prints 'stream=S version=N position=P'.\n"
    "\n"
    "  --expect N|any|none  the stream's current version (none: the stream must not exist);\n"
    "                       default any. A wrong expectation exits 3 and writes nothing\n"
    "  --header k=v         a record header (repeatable)\n"
    "  --type T             sets the header cairn.type\n"
    "  --file F             the value is the content of F ('-' for stdin)\n"
    "  --lock-timeout S     wait up to S seconds for another writer's lock on a file\n"
    "                       log (default 5)\n";

static const char read_usage[] =
    "usage: cairn events read --log URL [--stream S] [--from POS] [--json]\n"
    "\n"
    "Prints the durable records of the log (every partition, in log order) from\n"
    "position POS (default 0), or with --stream those of stream S from version POS\n"
    "(default 1), one line per record.\n"
    "\n"
    "  --json  one JSON object per line\n";

static const char tail_usage[] =
    "usage: cairn events tail --log URL [--from CHECKPOINT] [--json]\n"
    "\n"
    "Prints records as they become durable, from CHECKPOINT (default: the start of\n"
    "the log; 'end' for only new records), until SIGINT or SIGTERM; then prints\n"
    "'checkpoint=...' to stderr, which --from accepts to resume.\n";

static const char copy_usage[] =
    "usage: cairn events copy --from URL --to URL [--lock-timeout SECONDS]\n"
    "\n"
    "Copies the accepted records of one log to another, stream by stream with\n"
    "their versions and headers. Each record is appended with its stream's\n"
    "expected version, and versions already present in the destination are\n"
    "skipped (trusted to be the same records), so a re-run after an interruption\n"
    "duplicates nothing. A destination stream with a gap stops the copy (exit 3).\n";

struct opts {
    const char *log, *stream, *expect, *type, *file, *from, *to, *value;
    char *headers[MAX_HEADERS]; /* argv strings, cut at their '=' by append */
    size_t nheaders;
    int json;
    double lock_timeout;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int fail(const char *cmd, cairn_rc_t rc, const cairn_error_t *err)
{
    fprintf(stderr, "cairn events %s: %s\n", cmd,
            err && err->text[0] ? err->text : cairn_rc_str(rc));
    return cairn_rc_exit_code(rc);
}

static int usage_error(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "cairn events %s: %s%s%s%s; see 'cairn events %s --help'\n", cmd, msg,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "", cmd);
    return 2;
}

/* Parses argv[1..]; returns 0, or an exit code after printing why. */
static int parse(const char *cmd, int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->lock_timeout = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--log"))
            slot = &o->log;
        else if (!strcmp(a, "--stream"))
            slot = &o->stream;
        else if (!strcmp(a, "--expect"))
            slot = &o->expect;
        else if (!strcmp(a, "--type"))
            slot = &o->type;
        else if (!strcmp(a, "--file"))
            slot = &o->file;
        else if (!strcmp(a, "--from"))
            slot = &o->from;
        else if (!strcmp(a, "--to"))
            slot = &o->to;
        if (slot || !strcmp(a, "--header") || !strcmp(a, "--lock-timeout")) {
            if (i + 1 >= argc)
                return usage_error(cmd, "missing value after", a);
            char *v = argv[++i];
            if (slot) {
                *slot = v;
            } else if (!strcmp(a, "--header")) {
                if (o->nheaders >= MAX_HEADERS)
                    return usage_error(cmd, "too many headers", NULL);
                if (!strchr(v, '=') || v[0] == '=')
                    return usage_error(cmd, "a header is NAME=VALUE, not", v);
                o->headers[o->nheaders++] = v;
            } else {
                char *end;
                errno = 0;
                o->lock_timeout = strtod(v, &end);
                if (errno || *end || end == v || o->lock_timeout < 0 || o->lock_timeout > 86400)
                    return usage_error(cmd, "bad --lock-timeout", v);
            }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0' && strcmp(a, "--") != 0)
            return usage_error(cmd, "unknown option", a);
        if (!strcmp(a, "--") && i + 1 < argc)
            a = argv[++i];
        if (o->value)
            return usage_error(cmd, "unexpected argument", a);
        o->value = a;
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Opens a log for writing, waiting for another process's lock up to the timeout. */
static cairn_rc_t
open_writer(const char *url, double timeout_s, cairn_log_t **log, cairn_error_t *err)
{
    double deadline = cairn__mono_s() + timeout_s;
    for (unsigned n = 0;; n++) {
        cairn_error_t e = {0};
        cairn_rc_t rc = cairn_log_open(url, NULL, log, &e);
        if (rc != CAIRN_E_CONFLICT_LOCKED || cairn__mono_s() >= deadline) {
            if (err)
                *err = e;
            return rc;
        }
        /* 2..20 ms, spread so that waiters do not march in step. */
        cairn__sleep_ms(2 + (long)((unsigned)getpid() * 7u + n * 13u) % 19);
    }
}

static cairn_rc_t open_reader(const char *url, cairn_log_t **log, cairn_error_t *err)
{
    cairn_log_options_t o = {.read_only = 1};
    return cairn_log_open(url, &o, log, err);
}

/* ---- output ------------------------------------------------------------- */

static int printable(const void *p, size_t n, int no_space)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f || (no_space && s[i] == ' '))
            return 0;
    /* Text must also be valid UTF-8 (jansson checks it). */
    json_t *j = json_stringn((const char *)p, n);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

static char *base64(const void *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out) {
        fprintf(stderr, "cairn events: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void print_plain(const cairn_record_t *r)
{
    printf("partition=%" PRId32 " position=%" PRIu64 " stream=%s version=%" PRIu64
           " timestamp=%" PRId64,
           r->partition, r->position, r->stream, r->version, r->timestamp_ms);
    for (size_t i = 0; i < r->header_count; i++) {
        const cairn_header_t *h = &r->headers[i];
        if (printable(h->value, h->value_len, 1)) {
            printf(" header:%s=%.*s", h->name, (int)h->value_len, (const char *)h->value);
        } else {
            char *b = base64(h->value, h->value_len);
            printf(" header:%s:base64=%s", h->name, b);
            free(b);
        }
    }
    if (printable(r->value, r->value_len, 0)) {
        printf(" value=%.*s\n", (int)r->value_len, (const char *)r->value);
    } else {
        char *b = base64(r->value, r->value_len);
        printf(" value:base64=%s\n", b);
        free(b);
    }
}

static json_t *text_or_base64(const void *p, size_t n, int *binary)
{
    if (printable(p, n, 0))
        return json_stringn((const char *)p, n);
    char *b = base64(p, n);
    json_t *j = json_string(b);
    free(b);
    *binary = 1;
    return j;
}

static void print_json(const cairn_record_t *r)
{
    json_t *o = json_object(), *h = json_object(), *hb = json_object();
    json_object_set_new(o, "partition", json_integer(r->partition));
    json_object_set_new(o, "position", json_integer((json_int_t)r->position));
    json_object_set_new(o, "stream", json_string(r->stream));
    json_object_set_new(o, "version", json_integer((json_int_t)r->version));
    json_object_set_new(o, "timestamp", json_integer(r->timestamp_ms));
    for (size_t i = 0; i < r->header_count; i++) {
        int bin = 0;
        json_t *v = text_or_base64(r->headers[i].value, r->headers[i].value_len, &bin);
        json_object_set_new(bin ? hb : h, r->headers[i].name, v);
    }
    json_object_set_new(o, "headers", h);
    if (json_object_size(hb))
        json_object_set_new(o, "headers_base64", hb);
    else
        json_decref(hb);
    int bin = 0;
    json_t *v = text_or_base64(r->value, r->value_len, &bin);
    json_object_set_new(o, bin ? "value_base64" : "value", v);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

struct printer {
    int json;
    uint64_t n;
};

static int print_record(void *opaque, const cairn_record_t *r)
{
    struct printer *p = opaque;
    if (p->json)
        print_json(r);
    else
        print_plain(r);
    p->n++;
    return stop_requested ? 1 : 0;
}

/* ---- append ------------------------------------------------------------- */

static int read_value_file(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!f || !buf) {
        fprintf(stderr, "cairn events append: cannot read '%s': %s\n", path, strerror(errno));
        free(buf);
        return 2;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_VALUE) {
                fprintf(stderr, "cairn events append: '%s' is larger than %u bytes\n", path,
                        MAX_VALUE);
                free(buf);
                if (f != stdin)
                    fclose(f);
                return 2;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return 2;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "cairn events append: cannot read '%s'\n", path);
        free(buf);
        return 2;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int events_append(int argc, char **argv)
{
    struct opts o;
    int code = parse("append", argc, argv, &o);
    cairn_header_t hdrs[MAX_HEADERS + 1];
    size_t nh = 0;
    int64_t expect = CAIRN_EXPECT_ANY;
    char *file_value = NULL;
    size_t value_len = 0;
    const char *value;
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    cairn_rc_t rc;

    if (code)
        return code;
    if (!o.log || !o.stream)
        return usage_error("append", "--log and --stream are required", NULL);
    if (!!o.value == !!o.file)
        return usage_error("append", "give either VALUE or --file", NULL);
    if (o.expect && strcmp(o.expect, "any")) {
        uint64_t v;
        if (!strcmp(o.expect, "none"))
            expect = CAIRN_EXPECT_NO_STREAM;
        else if (parse_u64(o.expect, INT64_MAX, &v) == 0)
            expect = (int64_t)v;
        else
            return usage_error("append", "--expect takes N, any or none, not", o.expect);
    }
    for (size_t i = 0; i < o.nheaders; i++) {
        char *eq = strchr(o.headers[i], '=');
        *eq = '\0';
        hdrs[nh++] = (cairn_header_t){o.headers[i], eq + 1, strlen(eq + 1)};
    }
    if (o.type)
        hdrs[nh++] = (cairn_header_t){"cairn.type", o.type, strlen(o.type)};
    if (o.file) {
        if ((code = read_value_file(o.file, &file_value, &value_len)) != 0)
            return code;
        value = file_value;
    } else {
        value = o.value;
        value_len = strlen(value);
    }

    rc = open_writer(o.log, o.lock_timeout, &log, &err);
    if (rc == CAIRN_OK) {
        cairn_record_t r = {.value = value,
                            .value_len = value_len,
                            .headers = nh ? hdrs : NULL,
                            .header_count = nh};
        uint64_t version = 0;
        rc = cairn_log_append(log, o.stream, expect, &r, 1, &version, &err);
        if (rc == CAIRN_OK) {
            printf("stream=%s version=%" PRIu64 " position=%" PRIu64, o.stream, version,
                   r.position);
            if (cairn_log_partition_count(log) > 1)
                printf(" partition=%" PRId32, r.partition);
            printf("\n");
        }
    }
    cairn_log_close(log);
    free(file_value);
    if (rc != CAIRN_OK) {
        if (rc == CAIRN_E_CONFLICT_VERSION)
            fprintf(stderr, "cairn events append: conflict: actual=%d: %s\n", err.cause, err.text);
        else
            fail("append", rc, &err);
        return cairn_rc_exit_code(rc);
    }
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ---- read --------------------------------------------------------------- */

static int events_read(int argc, char **argv)
{
    struct opts o;
    int code = parse("read", argc, argv, &o);
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    uint64_t from = 0;
    struct printer p = {0};
    cairn_rc_t rc;

    if (code)
        return code;
    if (!o.log)
        return usage_error("read", "--log is required", NULL);
    if (o.value)
        return usage_error("read", "unexpected argument", o.value);
    if (o.from && parse_u64(o.from, UINT64_MAX, &from) != 0)
        return usage_error("read", "--from takes a number, not", o.from);
    p.json = o.json;
    rc = open_reader(o.log, &log, &err);
    if (rc == CAIRN_OK) {
        if (o.stream)
            rc = cairn_log_read_stream(log, o.stream, from, print_record, &p, &err);
        else
            rc = cairn_log_replay(log, from, print_record, &p, &err);
        if (rc == CAIRN_DONE)
            rc = CAIRN_OK;
    }
    cairn_log_close(log);
    if (fflush(stdout) != 0 && rc == CAIRN_OK)
        return 2;
    return rc == CAIRN_OK ? 0 : fail("read", rc, &err);
}

/* ---- tail --------------------------------------------------------------- */

static int events_tail(int argc, char **argv)
{
    struct opts o;
    int code = parse("tail", argc, argv, &o);
    cairn_log_t *log = NULL;
    cairn_tail_t *tail = NULL;
    cairn_error_t err = {0};
    struct printer p = {0};
    char cp[CAIRN_CHECKPOINT_MAX];
    cairn_rc_t rc;
    struct sigaction sa;

    if (code)
        return code;
    if (!o.log)
        return usage_error("tail", "--log is required", NULL);
    if (o.value)
        return usage_error("tail", "unexpected argument", o.value);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    p.json = o.json;

    rc = open_reader(o.log, &log, &err);
    if (rc == CAIRN_OK)
        rc = cairn_tail_open(log, o.from, &tail, &err);
    while (rc == CAIRN_OK && !stop_requested) {
        rc = cairn_tail_poll(tail, 200, TAIL_BATCH, print_record, &p, NULL, &err);
        if (rc == CAIRN_AGAIN) /* stopped by a signal: the refused record is not printed */
            rc = CAIRN_OK;
        if (fflush(stdout) != 0) {
            rc = CAIRN_E_IO;
            snprintf(err.text, sizeof err.text, "cannot write the output");
        }
    }
    if (tail && cairn_tail_checkpoint(tail, cp, sizeof cp, NULL) == CAIRN_OK)
        fprintf(stderr, "checkpoint=%s\n", cp);
    cairn_tail_close(tail);
    cairn_log_close(log);
    return rc == CAIRN_OK ? 0 : fail("tail", rc, &err);
}

/* ---- copy --------------------------------------------------------------- */

/* Headers the Kafka backend writes for itself: never copied as user headers. */
static int backend_header(const char *name)
{
    /* The names the Kafka backend reserves for its own bookkeeping. */
    static const char *const own[] = {"cairn", "cairn.append", "cairn.claim", "cairn.meta"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i]))
            return 1;
    return 0;
}

struct copier {
    cairn_log_t *to;
    uint64_t tickets[COPY_PIPELINE];
    size_t nt;
    uint64_t copied, skipped;
    cairn_rc_t rc;
    cairn_error_t *err;
};

static cairn_rc_t drain(struct copier *c)
{
    cairn_rc_t rc = CAIRN_OK;
    for (size_t i = 0; i < c->nt && rc == CAIRN_OK; i++)
        rc = cairn_log_wait_durable(c->to, c->tickets[i], c->err);
    c->nt = 0;
    return rc;
}

static int copy_one(void *opaque, const cairn_record_t *r)
{
    struct copier *c = opaque;
    cairn_header_t hdrs[MAX_HEADERS];
    size_t nh = 0;
    uint64_t have = cairn_log_stream_version(c->to, r->stream);

    if (r->version <= have) {
        c->skipped++;
        return 0;
    }
    if (r->version != have + 1) {
        c->rc = CAIRN_E_CONFLICT_VERSION;
        snprintf(c->err->text, sizeof c->err->text,
                 "stream '%s' is at version %" PRIu64 " in the destination but the source's "
                 "next record is version %" PRIu64,
                 r->stream, have, r->version);
        c->err->code = c->rc;
        return 1;
    }
    for (size_t i = 0; i < r->header_count; i++) {
        if (backend_header(r->headers[i].name))
            continue;
        if (nh == MAX_HEADERS) {
            c->rc = CAIRN_E_INVALID;
            snprintf(c->err->text, sizeof c->err->text,
                     "record %" PRIu64 " of stream '%s' has more than %d headers", r->version,
                     r->stream, MAX_HEADERS);
            c->err->code = c->rc;
            return 1;
        }
        hdrs[nh++] = r->headers[i];
    }
    cairn_record_t copy = {.value = r->value,
                           .value_len = r->value_len,
                           .headers = nh ? hdrs : NULL,
                           .header_count = nh,
                           .timestamp_ms = r->timestamp_ms};
    if (c->nt == COPY_PIPELINE && (c->rc = drain(c)) != CAIRN_OK)
        return 1;
    c->rc = cairn_log_append_nowait(c->to, r->stream, (int64_t)have, &copy, 1, NULL,
                                    &c->tickets[c->nt], c->err);
    if (c->rc != CAIRN_OK)
        return 1;
    c->nt++;
    c->copied++;
    return stop_requested ? 1 : 0;
}

static int events_copy(int argc, char **argv)
{
    struct opts o;
    int code = parse("copy", argc, argv, &o);
    cairn_log_t *from = NULL;
    struct copier c = {0};
    cairn_error_t err = {0};
    cairn_rc_t rc;

    if (code)
        return code;
    if (!o.from || !o.to)
        return usage_error("copy", "--from and --to are required", NULL);
    if (o.value)
        return usage_error("copy", "unexpected argument", o.value);
    c.err = &err;
    rc = open_reader(o.from, &from, &err);
    if (rc == CAIRN_OK)
        rc = open_writer(o.to, o.lock_timeout, &c.to, &err);
    if (rc == CAIRN_OK) {
        rc = cairn_log_replay(from, 0, copy_one, &c, &err);
        if (rc == CAIRN_AGAIN && c.rc != CAIRN_OK)
            rc = c.rc;
        else if (rc == CAIRN_DONE || rc == CAIRN_AGAIN)
            rc = CAIRN_OK;
        cairn_rc_t drc = drain(&c);
        if (rc == CAIRN_OK)
            rc = drc;
    }
    cairn_log_close(c.to);
    cairn_log_close(from);
    printf("copied=%" PRIu64 " skipped=%" PRIu64 "\n", c.copied, c.skipped);
    fflush(stdout);
    return rc == CAIRN_OK ? 0 : fail("copy", rc, &err);
}

int cmd_events(int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"append", events_append, append_usage},
        {"read", events_read, read_usage},
        {"tail", events_tail, tail_usage},
        {"copy", events_copy, copy_usage},
    };
    return cli_dispatch("events", events_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}
