/* SPDX-License-Identifier: MIT */
/*
 * kafka_backend.c - the Kafka backend of the record log (URL
 * "kafka:HOST:PORT[,HOST:PORT...]?topic=T[&partitions=N][&prop=value...]"),
 * through librdkafka.
 *
 * Expected version on Kafka: one writer per partition, fenced in the log.
 * Kafka has no conditional append and we cannot rest on transactions, so:
 *
 * - A process becomes the writer (owner) of partition p by producing a claim
 *   record (header cairn.claim = e, no key). A claim is valid iff e is one
 *   more than the epoch of the latest valid claim before it. Before
 *   claiming, the process reads p up to its high watermark (learning the
 *   epoch in force and every stream's version: the index); it then reads on
 *   up to its own claim and owns p iff the reader rule found it valid.
 * - Every event carries one binary header "cairn" after the user's headers:
 *   its stream version, its writer's epoch, its append id (16 bytes: the
 *   writer's random id + a counter), its index and count within the append
 *   and its time (the 49-byte layout is in kafka_int.h). The key is the
 *   stream id; we produce to the partition murmur2 picks
 *   (murmur2.c), which is what librdkafka's murmur2_random and Java pick.
 * - Which records count is decided by the reader rule (reader_rule.c), the
 *   same for every reader of this file: replays, stream reads, tails and the
 *   owner's own tail.
 * - The owner checks expected versions in memory (exact: nobody else can
 *   write acceptable records to p while its claim stands) and pipelines its
 *   appends; an append is acknowledged (wait_durable) only when the owner's
 *   own tail of p has read it complete and accepted, with no newer claim
 *   before it. When the tail reads a newer valid claim, the owner is fenced:
 *   its unacknowledged appends fail with CAIRN_E_CONFLICT ("fenced by epoch
 *   N"), and the next append claims p again (fencing the other writer: no
 *   minimum hold time yet). A confirmation that does not come within the
 *   ack timeout is CAIRN_E_TIMEOUT with CAIRN_ERR_OUTCOME_UNKNOWN. The
 *   owner then stops trusting its in-memory state of p (the streams'
 *   versions count that append): it gives p up, and the next append to p
 *   (or cairn__kafka_settle() by the append's ticket) claims p anew. Once
 *   the tail has read that claim, records of the older epoch can never be
 *   accepted, so an append not seen by then is definitely absent, and the
 *   versions are again exactly what the log accepted.
 *
 * Threads: one background thread per log (the "tailer") owns the consumer
 * that follows the partitions this process writes or has read (legacy
 * consume_start_queue API, no consumer group, auto.offset.reset=error,
 * partition EOF events tell when it has caught up), serves the producer's
 * delivery reports, applies the rule and keeps, per followed partition, the
 * epoch in force, the index stream -> (version, offsets) and the state of
 * each in-flight append. `mu` guards all of it. The tailer parses a batch's
 * headers before taking `mu`; a thread waiting for its append sleeps on a
 * waiter slot of its own, which the tailer signals after releasing `mu` and
 * only when that append ended; claims and catch-ups wait on `cond`, which it
 * broadcasts after each batch of messages.
 * Synchronous reads (replay, a stream read) and public tails use their own
 * short-lived consumer handle, so a callback may call back into the log.
 *
 * librdkafka errors are translated to cairn_rc_t here and nowhere else.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "backend.h"
#include "kafka_int.h"

#define ID_HEX              (CAIRN__RR_ID_LEN * 2)
#define DEFAULT_MSG_TIMEOUT 30000
#define OPEN_TIMEOUT_MS     10000
#define READ_STALL_MS       15000
#define DEFAULT_MAX_RECORD  (1000u * 1000u) /* Kafka's default message.max.bytes is ~1 MB */
#define FETCH_WAIT_MAX      10
#define META_VALUE          "partitioner=murmur2_random;partitions="

/* ---- small helpers -------------------------------------------------------- */

static void deadline_ts(struct timespec *ts, int64_t ms_from_now)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms_from_now / 1000;
    ts->tv_nsec += (ms_from_now % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void hex_encode(const unsigned char *id, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < CAIRN__RR_ID_LEN; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[ID_HEX] = '\0';
}

static int hex_decode(const void *v, size_t len, unsigned char *id)
{
    const char *s = v;
    if (len != ID_HEX)
        return -1;
    for (size_t i = 0; i < CAIRN__RR_ID_LEN; i++) {
        int hi = cairn__hex_digit(s[2 * i]), lo = cairn__hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* A decimal header value (no sign, at most 19 digits). */
static int parse_u64(const void *v, size_t len, uint64_t *out)
{
    const char *s = v;
    uint64_t x = 0;
    if (!v || len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *out = x;
    return 0;
}

static void id_of(unsigned char *id, uint64_t writer, uint64_t n)
{
    for (int i = 0; i < 8; i++) {
        id[i] = (unsigned char)(writer >> (56 - 8 * i));
        id[8 + i] = (unsigned char)(n >> (56 - 8 * i));
    }
}

static uint64_t id_u64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

/* ---- librdkafka errors -> cairn_rc_t (only here) ------------------------- */

static cairn_rc_t
kerr(cairn_error_t *err, rd_kafka_resp_err_t e, const char *where, const char *what)
{
    cairn_rc_t rc = CAIRN_E_UNAVAILABLE;
    unsigned flags = CAIRN_ERR_RETRIABLE;

    switch (e) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        rc = CAIRN_E_TIMEOUT;
        flags = CAIRN_ERR_RETRIABLE | CAIRN_ERR_OUTCOME_UNKNOWN;
        break;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        rc = CAIRN_E_NOT_FOUND;
        flags = 0;
        break;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        rc = CAIRN_E_INVALID_TOO_LARGE;
        flags = 0;
        break;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
        rc = CAIRN_E_CORRUPT;
        flags = 0;
        break;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__CONFLICT:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        rc = CAIRN_E_INVALID;
        flags = 0;
        break;
    case RD_KAFKA_RESP_ERR__FATAL:
        /* the producer is recreated by the tail thread: try again */
        rc = CAIRN_E_UNAVAILABLE;
        flags = CAIRN_ERR_RETRIABLE;
        break;
    default:
        break;
    }
    return cairn__error_setc(err, rc, (int)e, flags, where, "%s: %s", what, rd_kafka_err2str(e));
}

/* ---- the index: stream -> version and offsets of one partition ---------- */

struct kstream {
    char *name;
    uint64_t hash;
    uint64_t version; /* accepted by the rule */
    uint64_t written; /* version + this process's appends still in flight */
    int64_t *offs;    /* offs[i]: offset of version i + 1 */
    size_t cap;
};

struct kindex {
    struct kstream **slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct kstream *kindex_find(const struct kindex *x, const char *name)
{
    if (!x->cap)
        return NULL;
    uint64_t h = fnv1a(name);
    for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
        struct kstream *s = x->slots[i];
        if (!s)
            return NULL;
        if (s->hash == h && strcmp(s->name, name) == 0)
            return s;
    }
}

static int kindex_grow(struct kindex *x)
{
    size_t ncap = x->cap ? x->cap * 2 : 64;
    struct kstream **ns = cairn__calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < x->cap; i++) {
        struct kstream *s = x->slots[i];
        if (!s)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    cairn__free(x->slots);
    x->slots = ns;
    x->cap = ncap;
    return 0;
}

static struct kstream *kindex_get(struct kindex *x, const char *name)
{
    struct kstream *s = kindex_find(x, name);
    if (s)
        return s;
    if ((x->count + 1) * 2 > x->cap && kindex_grow(x) != 0)
        return NULL;
    s = cairn__calloc(1, sizeof(*s));
    if (!s || !(s->name = cairn__strdup(name))) {
        cairn__free(s);
        return NULL;
    }
    s->hash = fnv1a(name);
    size_t j = s->hash & (x->cap - 1);
    while (x->slots[j])
        j = (j + 1) & (x->cap - 1);
    x->slots[j] = s;
    x->count++;
    return s;
}

static void kindex_release(struct kindex *x)
{
    for (size_t i = 0; i < x->cap; i++) {
        if (x->slots[i]) {
            cairn__free(x->slots[i]->name);
            cairn__free(x->slots[i]->offs);
            cairn__free(x->slots[i]);
        }
    }
    cairn__free(x->slots);
    memset(x, 0, sizeof(*x));
}

/* ---- parsed records ------------------------------------------------------- */

/* A record read from Kafka with what the rule and the record view need. */
struct krec {
    rd_kafka_message_t *msg;
    struct cairn__rr_meta meta;
    uint64_t version;
    int64_t time_ms;
    int has_our_time;
    size_t user_headers; /* the leading headers that are the user's */
};

/* Header names of ours that a user header may not take: the event header
 * ("cairn", the layout in kafka_int.h) and the control records' ones. */
static const char *const reserved_headers[] = {CAIRN__RR_HEADER, "cairn.claim", "cairn.append",
                                               "cairn.meta"};

static int is_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++)
        if (strcmp(name, reserved_headers[i]) == 0)
            return 1;
    return 0;
}

/*
 * Parses our headers of @p m into @p r (kind FOREIGN when they are absent or
 * bad). An event has one "cairn" header, after the user's; a claim has
 * cairn.claim (its epoch in decimal) and cairn.append (its id in hex); the
 * metadata record has cairn.meta.
 */
static void parse_record(rd_kafka_message_t *m, struct krec *r)
{
    rd_kafka_headers_t *hdrs = NULL;
    const char *name;
    const void *val;
    size_t size;
    uint64_t claim = 0;
    struct cairn__rr_event ev;
    int have = 0; /* bits: event, claim, append id, meta */
    size_t first_ours = (size_t)-1, n = 0;

    memset(r, 0, sizeof(*r));
    r->msg = m;
    r->meta.kind = CAIRN__RR_KIND_FOREIGN;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        goto out;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == 0; i++) {
        int bit = -1;
        n = i + 1;
        if (strncmp(name, "cairn", 5) != 0)
            continue;
        if (name[5] == '\0' && !(have & 1) && cairn__rr_header_decode(val, size, &ev) == 0)
            bit = 0;
        else if (strcmp(name, "cairn.claim") == 0 && parse_u64(val, size, &claim) == 0)
            bit = 1;
        else if (strcmp(name, "cairn.append") == 0 && hex_decode(val, size, r->meta.append) == 0)
            bit = 2;
        else if (strcmp(name, "cairn.meta") == 0)
            bit = 3;
        if (bit >= 0) {
            have |= 1 << bit;
            if (first_ours == (size_t)-1)
                first_ours = i;
        }
    }
    r->user_headers = first_ours == (size_t)-1 ? n : first_ours;
    if (have & (1 << 3)) {
        r->meta.kind = CAIRN__RR_KIND_META;
    } else if ((have & (1 << 1)) && claim <= INT64_MAX) {
        r->meta.kind = CAIRN__RR_KIND_CLAIM;
        r->meta.epoch = (int64_t)claim;
    } else if ((have & 1) && m->key && m->key_len > 0) {
        r->meta.kind = CAIRN__RR_KIND_EVENT;
        r->meta.epoch = ev.epoch;
        memcpy(r->meta.append, ev.append, CAIRN__RR_ID_LEN);
        r->meta.index = ev.index;
        r->meta.count = ev.count;
        r->version = ev.version;
        r->time_ms = ev.time_ms;
        r->has_our_time = 1;
        return;
    }
out:
    r->time_ms = rd_kafka_message_timestamp(m, NULL);
}

/*
 * Builds the record view of an accepted event and calls @p cb. The view's
 * strings live in @p scratch (the key with a NUL) and @p hv (header views).
 */
static int deliver(const struct krec *r,
                   int partition,
                   cairn_record_cb *cb,
                   void *opaque,
                   cairn_buf_t *scratch,
                   cairn_header_t **hv,
                   size_t *hv_cap)
{
    rd_kafka_headers_t *hdrs = NULL;
    cairn_record_t rec;
    const char *name;
    const void *val;
    size_t size;

    memset(&rec, 0, sizeof(rec));
    cairn_buf_reset(scratch);
    if (cairn_buf_append(scratch, r->msg->key, r->msg->key_len) != CAIRN_OK)
        return -1;
    if (r->user_headers > *hv_cap) {
        cairn_header_t *n = cairn__realloc(*hv, r->user_headers * sizeof(*n));
        if (!n)
            return -1;
        *hv = n;
        *hv_cap = r->user_headers;
    }
    if (r->user_headers && rd_kafka_message_headers(r->msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (size_t i = 0; i < r->user_headers; i++) {
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != 0)
                break;
            (*hv)[i].name = name;
            (*hv)[i].value = val ? val : "";
            (*hv)[i].value_len = val ? size : 0;
            rec.header_count = i + 1;
        }
    }
    rec.stream = scratch->data;
    rec.value = r->msg->payload ? r->msg->payload : "";
    rec.value_len = r->msg->payload ? r->msg->len : 0;
    rec.headers = rec.header_count ? *hv : NULL;
    rec.version = r->version;
    rec.position = (uint64_t)r->msg->offset;
    rec.timestamp_ms = r->time_ms;
    rec.partition = partition;
    return cb(opaque, &rec);
}

/* ---- the log handle --------------------------------------------------------- */

enum append_state { A_PENDING, A_DONE, A_FAILED };

struct kappend {
    uint64_t ticket;
    int partition;
    int64_t epoch;
    enum append_state state;
    int64_t first_off; /* offset of its first record, once accepted */
    cairn_error_t fail;
    unsigned wslot;               /* 1 + the waiter slot of the thread waiting for it, 0: none */
    uint64_t *wakes;              /* with wslot: the log's wake_mask */
    struct kappend *next_in_part; /* in-flight queue of the partition, in produce order */
    struct kappend *hnext;        /* ticket hash chain */
};

#define TICKET_BUCKETS 4096
#define WSLOTS         64 /* bits of a uint64_t */

enum part_state { P_NONE, P_CLAIMING, P_OWNED };

struct hrec {
    int64_t off;
    uint64_t version;
};

struct kpart {
    int id;
    int following;
    int64_t next; /* offset after the last one the tailer processed (or EOF offset) */
    struct cairn__rr rr;
    struct hrec *held; /* records of the append the rule holds */
    size_t held_n, held_cap;
    char *held_stream; /* the held append's stream (a buffer kept across appends) */
    size_t held_stream_cap;
    int64_t accepted_end; /* offset just past the last accepted record */
    int64_t end_epoch;    /* epoch in force at accepted_end */
    enum part_state state;
    int64_t my_epoch;
    unsigned char claim_id[CAIRN__RR_ID_LEN];
    int claim_result; /* 0 waiting, 1 won, -1 lost */
    int64_t fenced_by;
    int64_t claim_ts;      /* timestamp (ms) of the valid claim in force */
    uint64_t claim_writer; /* writer id of the valid claim in force */
    cairn_error_t fault;   /* a read error of the tailer (data loss) */
    struct kindex idx;
    struct cairn__ksnap_stats snap; /* index snapshots (index_snapshot.c) */
    int snap_busy;                  /* a snapshot of it is being written */
    struct kappend *q_head, *q_tail;
};

struct kprop {
    char *name;
    char *value;
};

struct klog {
    char *url;
    char *brokers;
    char *topic;
    int partitions;
    int read_only;
    size_t max_record;
    struct kprop *props;
    size_t nprops;
    int msg_timeout_ms;
    int ack_timeout_ms;
    int64_t hold_ms; /* cairn.claim.hold.ms: how long another writer's claim is left alone */
    /* cairn.snapshot.dir: where index snapshots live (NULL: none);
     * cairn.snapshot.every: records read between two snapshots */
    char *snap_dir;
    uint64_t snap_every;
    uint64_t writer_id;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Waiter slots: a thread waiting for its append sleeps on its own slot's
     * condition (not on `cond`), which the tailer signals after it releases
     * mu, only for the appends it ended (bits of wake_mask). Slots live as
     * long as the log, so a late signal only wakes a later user spuriously. */
    pthread_cond_t wslot[WSLOTS];
    uint64_t wslot_used; /* bit i: slot i is taken */
    uint64_t wake_mask;  /* bit i: signal slot i once mu is released */
    rd_kafka_t *producer;
    rd_kafka_topic_t *prkt;
    rd_kafka_t *consumer; /* the tailer's */
    rd_kafka_topic_t *crkt;
    rd_kafka_queue_t *queue;
    pthread_t thread;
    int thread_started;
    int stop;
    uint64_t next_ticket;
    uint64_t producer_fatal; /* count of producer re-creations */
    struct kpart *parts;
    struct kappend *tickets[TICKET_BUCKETS];
    /* the retention check (DescribeConfigs), answered to the tailer */
    rd_kafka_queue_t *admin_q;
    rd_kafka_ConfigResource_t *admin_cr;
    rd_kafka_AdminOptions_t *admin_ao;
    cairn_error_t config_fault; /* set when the topic may expire or be compacted */
};

/* ---- configuration ---------------------------------------------------------- */

/* Settings we pin: the value the user may not change. */
static const char *const pinned[][2] = {
    {"enable.idempotence", "true"},    {"enable.gapless.guarantee", "true"},
    {"partitioner", "murmur2_random"}, {"auto.offset.reset", "error"},
    {"enable.auto.commit", "false"},   {"group.id", NULL},
    {"enable.partition.eof", NULL},    {"bootstrap.servers", NULL},
    {"metadata.broker.list", NULL},    {"topic.auto.offset.reset", "error"},
    {"transactional.id", NULL},
};

static int url_decode(const char *s, size_t n, char **out)
{
    char *d = cairn__malloc(n + 1);
    size_t j = 0;
    if (!d)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && cairn__hex_digit(s[i + 1]) >= 0 &&
            cairn__hex_digit(s[i + 2]) >= 0) {
            d[j++] = (char)(cairn__hex_digit(s[i + 1]) << 4 | cairn__hex_digit(s[i + 2]));
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    *out = d;
    return 0;
}

static cairn_rc_t parse_url(struct klog *k, const char *rest, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    const char *q = strchr(rest, '?');
    const char *p;

    if (!q || q == rest)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, rest,
                                "kafka url needs brokers and ?topic=T (kafka:HOST:PORT?topic=T)");
    if (!(k->brokers = cairn__strndup(rest, (size_t)(q - rest))))
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char *name = NULL, *value = NULL;
        if (len == 0) {
            p = amp ? amp + 1 : p + len;
            continue;
        }
        if (!eq || eq == p)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, rest,
                                    "kafka url: '%.*s' is not name=value", (int)len, p);
        if (url_decode(p, (size_t)(eq - p), &name) ||
            url_decode(eq + 1, len - (size_t)(eq - p) - 1, &value)) {
            cairn__free(name);
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        }
        if (strcmp(name, "topic") == 0) {
            cairn__free(k->topic);
            k->topic = value;
            cairn__free(name);
        } else if (strcmp(name, "cairn.claim.hold.ms") == 0) {
            char *end = NULL;
            long long v = strtoll(value, &end, 10);
            if (!*value || *end || v < 0)
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, rest,
                                      "kafka url: bad cairn.claim.hold.ms '%s'", value);
            k->hold_ms = v;
            cairn__free(name);
            cairn__free(value);
            if (rc)
                return rc;
        } else if (strcmp(name, "cairn.snapshot.dir") == 0) {
            cairn__free(k->snap_dir);
            k->snap_dir = *value ? value : NULL;
            if (!*value)
                cairn__free(value);
            cairn__free(name);
        } else if (strcmp(name, "cairn.snapshot.every") == 0) {
            char *end = NULL;
            unsigned long long v = strtoull(value, &end, 10);
            if (!*value || *end || v < 1 || *value == '-')
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, rest,
                                      "kafka url: bad cairn.snapshot.every '%s'", value);
            k->snap_every = v;
            cairn__free(name);
            cairn__free(value);
            if (rc)
                return rc;
        } else if (strcmp(name, "partitions") == 0) {
            char *end = NULL;
            long v = strtol(value, &end, 10);
            if (!*value || *end || v < 1 || v > 100000) {
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, rest,
                                      "kafka url: bad partitions '%s'", value);
            }
            k->partitions = (int)v;
            cairn__free(name);
            cairn__free(value);
            if (rc)
                return rc;
        } else {
            for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
                if (strcmp(name, pinned[i][0]) == 0 &&
                    (!pinned[i][1] || strcmp(value, pinned[i][1]) != 0)) {
                    rc = cairn__error_set(err, CAIRN_E_INVALID, 0, name,
                                          "kafka property '%s' is pinned by cairn (%s)", name,
                                          pinned[i][1] ? pinned[i][1] : "set by the backend");
                    break;
                }
            }
            if (!rc && strcmp(name, "message.timeout.ms") == 0) {
                long v = strtol(value, NULL, 10);
                if (v < 1 || v > DEFAULT_MSG_TIMEOUT)
                    rc = cairn__error_set(err, CAIRN_E_INVALID, 0, name,
                                          "message.timeout.ms may only be lowered (1..%d)",
                                          DEFAULT_MSG_TIMEOUT);
                else
                    k->msg_timeout_ms = (int)v;
            }
            if (!rc && strcmp(name, "fetch.wait.max.ms") == 0) {
                long v = strtol(value, NULL, 10);
                if (v < 0 || v > FETCH_WAIT_MAX)
                    rc = cairn__error_set(err, CAIRN_E_INVALID, 0, name,
                                          "fetch.wait.max.ms must stay small (0..%d)",
                                          FETCH_WAIT_MAX);
            }
            if (rc) {
                cairn__free(name);
                cairn__free(value);
                return rc;
            }
            struct kprop *np = cairn__realloc(k->props, (k->nprops + 1) * sizeof(*np));
            if (!np) {
                cairn__free(name);
                cairn__free(value);
                return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            }
            k->props = np;
            k->props[k->nprops].name = name;
            k->props[k->nprops].value = value;
            k->nprops++;
        }
        p = amp ? amp + 1 : p + len;
    }
    if (!k->topic || !*k->topic)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, rest, "kafka url needs ?topic=T");
    return CAIRN_OK;
}

static cairn_rc_t
conf_set(rd_kafka_conf_t *c, const char *name, const char *value, cairn_error_t *err)
{
    char es[256];
    if (rd_kafka_conf_set(c, name, value, es, sizeof(es)) != RD_KAFKA_CONF_OK)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, name, "kafka property '%s': %s", name, es);
    return CAIRN_OK;
}

static int user_has(const struct klog *k, const char *name)
{
    for (size_t i = 0; i < k->nprops; i++)
        if (strcmp(k->props[i].name, name) == 0)
            return 1;
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (strstr(buf, "enable.gapless.guarantee is experimental"))
        level = 7; /* we pin it on purpose */
    cairn__log(level <= 2   ? CAIRN_LOG_ERR
               : level <= 4 ? CAIRN_LOG_WARNING
                            : CAIRN_LOG_DEBUG,
               "kafka", "%s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    cairn__log(e == RD_KAFKA_RESP_ERR__FATAL ? CAIRN_LOG_ERR : CAIRN_LOG_INFO, "kafka", "%s: %s",
               rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
}

/* Builds a producer (@p consumer 0) or a consumer configuration. */
static cairn_rc_t make_handle(struct klog *k, int consumer, rd_kafka_t **out, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char es[512], num[32];

    if (!c)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    rd_kafka_conf_set_log_cb(c, log_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    if ((rc = conf_set(c, "bootstrap.servers", k->brokers, err)))
        goto out;
    if ((rc = conf_set(c, "log.connection.close", "false", err)))
        goto out;
    for (size_t i = 0; i < k->nprops; i++)
        if ((rc = conf_set(c, k->props[i].name, k->props[i].value, err)))
            goto out;
    if (!consumer) {
        snprintf(num, sizeof(num), "%d", k->msg_timeout_ms);
        if ((rc = conf_set(c, "enable.idempotence", "true", err)) ||
            (rc = conf_set(c, "enable.gapless.guarantee", "true", err)) ||
            (rc = conf_set(c, "partitioner", "murmur2_random", err)) ||
            (rc = conf_set(c, "message.timeout.ms", num, err)))
            goto out;
        if (!user_has(k, "linger.ms") && !user_has(k, "queue.buffering.max.ms") &&
            (rc = conf_set(c, "linger.ms", "1", err)))
            goto out;
        if (!user_has(k, "queue.buffering.max.kbytes") &&
            (rc = conf_set(c, "queue.buffering.max.kbytes", "65536", err)))
            goto out;
    } else {
        if ((rc = conf_set(c, "enable.partition.eof", "true", err)) ||
            (rc = conf_set(c, "auto.offset.reset", "error", err)) ||
            (rc = conf_set(c, "enable.auto.commit", "false", err)) ||
            (rc = conf_set(c, "enable.auto.offset.store", "false", err)))
            goto out;
        if (!user_has(k, "fetch.wait.max.ms") && (rc = conf_set(c, "fetch.wait.max.ms", "2", err)))
            goto out;
        if (!user_has(k, "queued.max.messages.kbytes") &&
            (rc = conf_set(c, "queued.max.messages.kbytes", "4096", err)))
            goto out;
        if (!user_has(k, "fetch.error.backoff.ms") &&
            (rc = conf_set(c, "fetch.error.backoff.ms", "50", err)))
            goto out;
    }
    if (!user_has(k, "reconnect.backoff.max.ms") &&
        (rc = conf_set(c, "reconnect.backoff.max.ms", "1000", err)))
        goto out;
    if (!user_has(k, "socket.connection.setup.timeout.ms") &&
        (rc = conf_set(c, "socket.connection.setup.timeout.ms", "5000", err)))
        goto out;
    *out = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, c, es, sizeof(es));
    if (!*out) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, k->url, "kafka client: %s", es);
        goto out;
    }
    c = NULL; /* the handle owns it now */
out:
    if (c)
        rd_kafka_conf_destroy(c);
    return rc;
}

/* ---- in-flight appends ---------------------------------------------------- */

static struct kappend *ticket_find(struct klog *k, uint64_t t)
{
    for (struct kappend *a = k->tickets[t % TICKET_BUCKETS]; a; a = a->hnext)
        if (a->ticket == t)
            return a;
    return NULL;
}

static void ticket_remove(struct klog *k, struct kappend *a)
{
    struct kappend **pp = &k->tickets[a->ticket % TICKET_BUCKETS];
    while (*pp && *pp != a)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = a->hnext;
}

static void queue_remove(struct kpart *P, struct kappend *a)
{
    struct kappend *prev = NULL;
    for (struct kappend *x = P->q_head; x; prev = x, x = x->next_in_part) {
        if (x != a)
            continue;
        if (prev)
            prev->next_in_part = x->next_in_part;
        else
            P->q_head = x->next_in_part;
        if (P->q_tail == x)
            P->q_tail = prev;
        x->next_in_part = NULL;
        return;
    }
}

/* Ends @p a (DONE, or FAILED with the error recorded) and takes it off its queue. */
static void
append_end(struct kpart *P, struct kappend *a, cairn_rc_t rc, unsigned flags, const char *fmt, ...)
    CAIRN_PRINTF(5, 6);
static void
append_end(struct kpart *P, struct kappend *a, cairn_rc_t rc, unsigned flags, const char *fmt, ...)
{
    queue_remove(P, a);
    if (a->wslot) /* woken by the tailer after it releases mu (wake_slots) */
        *a->wakes |= (uint64_t)1 << (a->wslot - 1);
    if (rc == CAIRN_OK) {
        a->state = A_DONE;
        return;
    }
    char text[sizeof(a->fail.text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    a->state = A_FAILED;
    memset(&a->fail, 0, sizeof(a->fail));
    cairn__error_set(&a->fail, rc, flags, NULL, "%s", text);
}

/* The streams' in-flight versions fall back to what the log accepted. */
static void reset_written(struct kpart *P)
{
    for (size_t i = 0; i < P->idx.cap; i++)
        if (P->idx.slots[i])
            P->idx.slots[i]->written = P->idx.slots[i]->version;
}

/* ---- the tailer: follows partitions, applies the rule, acknowledges ------ */

static void held_clear(struct kpart *P)
{
    P->held_n = 0;
}

static int held_push(struct kpart *P, int64_t off, uint64_t version, const rd_kafka_message_t *m)
{
    if (P->held_n == P->held_cap) {
        size_t ncap = P->held_cap ? P->held_cap * 2 : 16;
        struct hrec *n = cairn__realloc(P->held, ncap * sizeof(*n));
        if (!n)
            return -1;
        P->held = n;
        P->held_cap = ncap;
    }
    if (P->held_n == 0) {
        if (m->key_len >= P->held_stream_cap) {
            char *ns = cairn__realloc(P->held_stream, m->key_len + 1);
            if (!ns)
                return -1;
            P->held_stream = ns;
            P->held_stream_cap = m->key_len + 1;
        }
        if (m->key_len)
            memcpy(P->held_stream, m->key, m->key_len);
        P->held_stream[m->key_len] = '\0';
    }
    P->held[P->held_n].off = off;
    P->held[P->held_n].version = version;
    P->held_n++;
    return 0;
}

static int index_push(struct kstream *s, int64_t off, uint64_t version)
{
    if (version > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4;
        while (ncap < version)
            ncap *= 2;
        int64_t *n = cairn__realloc(s->offs, ncap * sizeof(*n));
        if (!n)
            return -1;
        for (size_t i = s->cap; i < ncap; i++)
            n[i] = -1;
        s->offs = n;
        s->cap = ncap;
    }
    if (version != s->version + 1)
        cairn__log(CAIRN_LOG_ERR, "kafka",
                   "stream '%s': accepted version %" PRIu64 " after %" PRIu64, s->name, version,
                   s->version);
    s->offs[version - 1] = off;
    s->version = version;
    if (s->written < version)
        s->written = version;
    return 0;
}

/* The accepted append held in @p P (ending at offset @p last) goes to the index. */
static void accept_held(struct klog *k, struct kpart *P, const struct krec *r)
{
    struct kstream *s = kindex_get(&P->idx, P->held_stream);
    if (!s) {
        cairn__error_set(&P->fault, CAIRN_E_NOMEM, CAIRN_ERR_FATAL, NULL,
                         "out of memory indexing partition %d", P->id);
    } else {
        for (size_t i = 0; i < P->held_n; i++)
            if (index_push(s, P->held[i].off, P->held[i].version) != 0)
                cairn__error_set(&P->fault, CAIRN_E_NOMEM, CAIRN_ERR_FATAL, NULL,
                                 "out of memory indexing partition %d", P->id);
    }
    int64_t first_off = P->held[0].off;
    P->accepted_end = P->held[P->held_n - 1].off + 1;
    P->end_epoch = P->rr.epoch;
    held_clear(P);
    if (id_u64(r->meta.append) != k->writer_id)
        return;
    uint64_t t = id_u64(r->meta.append + 8);
    /* Ours: every earlier append of ours still in flight here was not accepted
     * (the producer keeps order), this one is. */
    while (P->q_head && P->q_head->ticket < t)
        append_end(P, P->q_head, CAIRN_E_CONFLICT, CAIRN_ERR_CONFLICT,
                   "append was not written (partition %d, rejected by the reader rule)", P->id);
    struct kappend *a = ticket_find(k, t);
    if (a && a->state == A_PENDING) {
        a->first_off = first_off;
        append_end(P, a, CAIRN_OK, 0, "ok");
    }
}

static void
fail_queue(struct kpart *P, int64_t below_epoch, cairn_rc_t rc, unsigned flags, const char *text)
{
    struct kappend *a = P->q_head;
    while (a) {
        struct kappend *next = a->next_in_part;
        if (a->epoch < below_epoch)
            append_end(P, a, rc, flags, "%s", text);
        a = next;
    }
}

/* Applies the rule to message @p m (parsed into @p r by parse_record, outside
 * mu) of partition @p P. Locks: mu held. */
static void
tailer_record(struct klog *k, struct kpart *P, rd_kafka_message_t *m, const struct krec *pr)
{
    const struct krec r = *pr;
    size_t dropped = 0;
    char text[128];

    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset > P->next)
                P->next = m->offset;
        } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                   m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
            kerr(&P->fault, m->err, k->topic, "partition lost data (offset out of range)");
        } else {
            cairn__log(CAIRN_LOG_INFO, "kafka", "partition %d: %s", P->id,
                       rd_kafka_err2str(m->err));
        }
        return;
    }
    if (m->offset < P->next)
        return;
    P->next = m->offset + 1;
    enum cairn__rr_verdict v = cairn__rr_feed(&P->rr, &r.meta, &dropped);
    if (cairn__log_enabled(CAIRN_LOG_DEBUG))
        cairn__log(CAIRN_LOG_DEBUG, "kafka",
                   "tail p%d offset %" PRId64 ": %s (epoch %" PRId64 ", append %016" PRIx64
                   "/%" PRIu64 ", state %d)",
                   P->id, (int64_t)m->offset, cairn__rr_verdict_name(v), r.meta.epoch,
                   id_u64(r.meta.append), id_u64(r.meta.append + 8), (int)P->state);
    if (dropped)
        held_clear(P);
    switch (v) {
    case CAIRN__RR_PENDING:
        if (held_push(P, m->offset, r.version, m) != 0)
            cairn__error_set(&P->fault, CAIRN_E_NOMEM, CAIRN_ERR_FATAL, NULL, "out of memory");
        break;
    case CAIRN__RR_COMPLETE:
        if (held_push(P, m->offset, r.version, m) != 0) {
            cairn__error_set(&P->fault, CAIRN_E_NOMEM, CAIRN_ERR_FATAL, NULL, "out of memory");
            held_clear(P);
            break;
        }
        accept_held(k, P, &r);
        break;
    case CAIRN__RR_CLAIM_VALID:
        P->claim_ts = rd_kafka_message_timestamp(m, NULL);
        P->claim_writer = id_u64(r.meta.append);
        if (P->state == P_CLAIMING && memcmp(r.meta.append, P->claim_id, CAIRN__RR_ID_LEN) == 0) {
            P->state = P_OWNED;
            P->my_epoch = r.meta.epoch;
            P->claim_result = 1;
            snprintf(
                text, sizeof(text),
                "append was not written (partition %d, superseded by our claim of epoch %" PRId64
                ")",
                P->id, r.meta.epoch);
            fail_queue(P, r.meta.epoch, CAIRN_E_CONFLICT, CAIRN_ERR_CONFLICT, text);
            reset_written(P);
        } else {
            if (P->state == P_OWNED) {
                P->state = P_NONE;
                cairn__log(CAIRN_LOG_NOTICE, "kafka",
                           "partition %d of '%s': fenced by epoch %" PRId64, P->id, k->topic,
                           r.meta.epoch);
            }
            P->fenced_by = r.meta.epoch;
            snprintf(text, sizeof(text), "fenced by epoch %" PRId64 " (partition %d)", r.meta.epoch,
                     P->id);
            fail_queue(P, INT64_MAX, CAIRN_E_CONFLICT, CAIRN_ERR_CONFLICT | CAIRN_ERR_RETRIABLE,
                       text);
            reset_written(P);
        }
        break;
    case CAIRN__RR_SKIP_CLAIM_INVALID:
        if (P->state == P_CLAIMING && memcmp(r.meta.append, P->claim_id, CAIRN__RR_ID_LEN) == 0) {
            P->state = P_NONE;
            P->claim_result = -1;
        }
        break;
    default:
        break;
    }
}

/*
 * The topic is the system of record: it must never be compacted nor expire.
 * Open asks DescribeConfigs without waiting (a cluster that does not answer
 * it, like the mock, would add seconds to every open); the tailer reads the
 * answer. Once it says the topic may expire or be compacted, appends are
 * refused (CAIRN_E_INVALID); no answer or an error is a WARNING only. We do
 * not alter the settings: librdkafka 2.0.2 has only the non-incremental
 * AlterConfigs, which would reset the topic's other settings.
 */
static void retention_ask(struct klog *k)
{
    char es[256];
    k->admin_cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, k->topic);
    k->admin_q = rd_kafka_queue_new(k->producer);
    k->admin_ao = rd_kafka_AdminOptions_new(k->producer, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    if (!k->admin_cr || !k->admin_q || !k->admin_ao)
        return;
    rd_kafka_AdminOptions_set_request_timeout(k->admin_ao, 10000, es, sizeof(es));
    rd_kafka_DescribeConfigs(k->producer, &k->admin_cr, 1, k->admin_ao, k->admin_q);
}

/* Locks: mu held. */
static void retention_answer(struct klog *k, rd_kafka_event_t *ev)
{
    const char *why = NULL;
    if (rd_kafka_event_error(ev)) {
        why = rd_kafka_event_error_string(ev);
    } else {
        const rd_kafka_DescribeConfigs_result_t *res = rd_kafka_event_DescribeConfigs_result(ev);
        size_t nres = 0, nent = 0;
        const rd_kafka_ConfigResource_t **rs =
            res ? rd_kafka_DescribeConfigs_result_resources(res, &nres) : NULL;
        if (!rs || nres != 1 || rd_kafka_ConfigResource_error(rs[0])) {
            why = rs && nres == 1 ? rd_kafka_ConfigResource_error_string(rs[0]) : "no result";
        } else {
            const rd_kafka_ConfigEntry_t **ents = rd_kafka_ConfigResource_configs(rs[0], &nent);
            for (size_t i = 0; i < nent; i++) {
                const char *name = rd_kafka_ConfigEntry_name(ents[i]);
                const char *value = rd_kafka_ConfigEntry_value(ents[i]);
                if (!name || !value)
                    continue;
                if ((strcmp(name, "cleanup.policy") == 0 && strstr(value, "compact")) ||
                    ((strcmp(name, "retention.ms") == 0 || strcmp(name, "retention.bytes") == 0) &&
                     strcmp(value, "-1") != 0)) {
                    cairn__error_set(&k->config_fault, CAIRN_E_INVALID, 0, k->topic,
                                     "topic '%s' has %s=%s: an event log must never be compacted "
                                     "nor expire (cleanup.policy=delete, retention.ms=-1, "
                                     "retention.bytes=-1)",
                                     k->topic, name, value);
                    cairn__log(CAIRN_LOG_ERR, "kafka", "%s", k->config_fault.text);
                    break;
                }
            }
        }
    }
    if (why)
        cairn__log(CAIRN_LOG_WARNING, "kafka",
                   "cannot check the retention settings of topic '%s' (%s): make sure it has "
                   "cleanup.policy=delete and retention.ms=-1",
                   k->topic, why);
}

static cairn_rc_t recreate_producer(struct klog *k, cairn_error_t *err);

/* Signals the waiter slots of @p mask. Locks: mu not held (the woken
 * threads would only block on it). */
static void wake_slots(struct klog *k, uint64_t mask)
{
    for (unsigned i = 0; mask; i++, mask >>= 1)
        if (mask & 1)
            pthread_cond_signal(&k->wslot[i]);
}

#define TAIL_BATCH 256 /* messages the tailer takes from its queue at once */

static void *tailer_main(void *arg)
{
    struct klog *k = arg;
    rd_kafka_message_t *msgs[TAIL_BATCH];
    struct krec recs[TAIL_BATCH]; /* ~22 KiB of this thread's stack */

    for (;;) {
        pthread_mutex_lock(&k->mu);
        if (k->stop) {
            pthread_mutex_unlock(&k->mu);
            break;
        }
        rd_kafka_poll(k->producer, 0);
        rd_kafka_event_t *ev = k->admin_q ? rd_kafka_queue_poll(k->admin_q, 0) : NULL;
        if (ev) {
            retention_answer(k, ev);
            rd_kafka_event_destroy(ev);
        }
        char es[256];
        if (rd_kafka_fatal_error(k->producer, es, sizeof(es)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cairn__log(CAIRN_LOG_ERR, "kafka", "producer failed for good (%s): recreating it", es);
            recreate_producer(k, NULL);
        }
        pthread_mutex_unlock(&k->mu);

        /* consume_batch_queue waits for its whole timeout unless the batch
         * fills: wait for one message, then take what else is there. */
        msgs[0] = rd_kafka_consume_queue(k->queue, 5);
        if (!msgs[0])
            continue;
        ssize_t n = rd_kafka_consume_batch_queue(k->queue, 0, msgs + 1, TAIL_BATCH - 1);
        n = n < 0 ? 1 : n + 1;
        /* Header parsing (librdkafka allocates the parsed headers) is done
         * before taking mu: appenders and waiters need it meanwhile. */
        for (ssize_t i = 0; i < n; i++)
            parse_record(msgs[i], &recs[i]);
        pthread_mutex_lock(&k->mu);
        for (ssize_t i = 0; i < n; i++) {
            int32_t p = msgs[i]->partition;
            if (p >= 0 && p < k->partitions && k->parts[p].following)
                tailer_record(k, &k->parts[p], msgs[i], &recs[i]);
        }
        pthread_cond_broadcast(&k->cond);
        uint64_t wake = k->wake_mask;
        k->wake_mask = 0;
        pthread_mutex_unlock(&k->mu);
        wake_slots(k, wake);
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
    }
    return NULL;
}

/* Locks: mu held. */
static cairn_rc_t recreate_producer(struct klog *k, cairn_error_t *err)
{
    rd_kafka_t *np = NULL;
    cairn_rc_t rc = make_handle(k, 0, &np, err);
    if (rc)
        return rc;
    rd_kafka_topic_t *nt = rd_kafka_topic_new(np, k->topic, NULL);
    if (!nt) {
        rd_kafka_destroy(np);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    }
    /* nothing of the old handle may stay held, or rd_kafka_destroy hangs */
    if (k->admin_q) {
        if (k->admin_ao)
            rd_kafka_AdminOptions_destroy(k->admin_ao);
        if (k->admin_cr)
            rd_kafka_ConfigResource_destroy(k->admin_cr);
        rd_kafka_queue_destroy(k->admin_q);
        k->admin_ao = NULL;
        k->admin_cr = NULL;
        k->admin_q = NULL;
    }
    rd_kafka_topic_destroy(k->prkt);
    rd_kafka_destroy_flags(k->producer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    k->producer = np;
    k->prkt = nt;
    k->producer_fatal++;
    /* Our claims die with the producer's sequence: claim again on the next
     * append; appends in flight are decided by that claim (or time out). */
    for (int p = 0; p < k->partitions; p++) {
        struct kpart *P = &k->parts[p];
        if (P->state == P_CLAIMING)
            P->claim_result = -1;
        P->state = P_NONE;
    }
    pthread_cond_broadcast(&k->cond);
    return CAIRN_OK;
}

/* ---- index snapshots (index_snapshot.c): catch-up from a snapshot ----------
 *
 * With cairn.snapshot.dir set, a partition this process starts to follow is
 * first looked up there: a snapshot that passes every check and whose offset
 * is not beyond the partition's high watermark gives the index, the rule's
 * state and the claim in force, and the tailer reads on from its offset
 * instead of 0. Anything else (missing, corrupt, another topic or partition
 * count, beyond the end: the topic was recreated) is a WARNING and a read
 * from 0: the log stays the truth. Snapshots are written at an append
 * boundary on close and by a catch-up that has read cairn.snapshot.every
 * records since the last one.
 */

#define SNAP_EVERY_DEFAULT 50000

struct snap_load {
    struct kindex idx;
};

static cairn_rc_t snap_stream(void *opaque, const char *name, uint64_t version, const int64_t *offs)
{
    struct snap_load *L = opaque;
    struct kstream *s = kindex_find(&L->idx, name);
    if (s)
        return CAIRN_E_CORRUPT; /* the same stream twice */
    if (!(s = kindex_get(&L->idx, name)))
        return CAIRN_E_NOMEM;
    size_t cap = 4;
    while (cap < version)
        cap *= 2;
    if (!(s->offs = cairn__malloc(cap * sizeof(*s->offs))))
        return CAIRN_E_NOMEM;
    memcpy(s->offs, offs, version * sizeof(*offs));
    for (size_t i = version; i < cap; i++)
        s->offs[i] = -1;
    s->cap = cap;
    s->version = version;
    s->written = version;
    return CAIRN_OK;
}

/* Loads @p P's snapshot if there is a good one. Returns the offset to read
 * from (0 without one). Locks: mu held. */
static int64_t snap_load(struct klog *k, struct kpart *P, int64_t high)
{
    char path[4096];
    void *data = NULL;
    size_t len = 0;
    cairn_error_t e = {0};
    struct snap_load L;
    struct cairn__ksnap_head h;
    struct cairn__rr *rr = NULL;
    int64_t from = 0;

    memset(&L, 0, sizeof(L));
    if (cairn__ksnap_path(path, sizeof(path), k->snap_dir, k->topic, P->id) != 0)
        return 0;
    cairn_rc_t rc = cairn__ksnap_read_file(path, CAIRN__KSNAP_MAX_BYTES, &data, &len, &e);
    if (rc == CAIRN_E_NOT_FOUND) {
        cairn__log(CAIRN_LOG_DEBUG, "kafka", "partition %d of '%s': no snapshot, reading from 0",
                   P->id, k->topic);
        return 0;
    }
    if (!rc && !(rr = cairn__malloc(sizeof(*rr))))
        rc = cairn__error_set(&e, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    if (!rc)
        rc = cairn__ksnap_load(data, len, k->topic, P->id, k->partitions, &h, rr, snap_stream, &L,
                               &e);
    if (!rc && h.offset > high)
        rc = cairn__error_set(&e, CAIRN_E_CORRUPT, 0, k->topic,
                              "snapshot at offset %" PRId64
                              " is beyond the partition's end %" PRId64 " (topic recreated?)",
                              h.offset, high);
    if (rc) {
        P->snap.loads_rejected++;
        cairn__log(CAIRN_LOG_WARNING, "kafka",
                   "partition %d of '%s': ignoring snapshot '%s' (%s), reading from offset 0",
                   P->id, k->topic, path, e.text);
        kindex_release(&L.idx);
        goto out;
    }
    kindex_release(&P->idx);
    P->idx = L.idx;
    P->rr = *rr;
    P->next = h.offset;
    P->accepted_end = h.accepted_end;
    P->end_epoch = h.end_epoch;
    P->claim_ts = h.claim_ts;
    P->claim_writer = h.claim_writer;
    P->snap.loaded_offset = h.offset;
    from = h.offset;
    cairn__log(CAIRN_LOG_INFO, "kafka",
               "partition %d of '%s': snapshot of %" PRIu64 " streams up to offset %" PRId64
               " loaded (epoch %" PRId64 ")",
               P->id, k->topic, h.streams, h.offset, P->rr.epoch);
out:
    cairn__free(rr);
    cairn__free(data);
    return from;
}

/* Writes @p P's snapshot if it stands at an append boundary and has read
 * something new. Locks: mu held; released during the file I/O if @p unlock. */
static void snap_write(struct klog *k, struct kpart *P, int unlock)
{
    char path[4096];
    cairn_error_t e = {0};
    cairn_buf_t b;
    struct cairn__ksnap_head h;
    cairn_rc_t rc = CAIRN_OK;

    if (!k->snap_dir || !P->following || P->snap_busy || P->rr.pending || P->held_n ||
        P->fault.code || P->next <= 0 || P->next == P->snap.written_offset ||
        P->next == P->snap.loaded_offset)
        return;
    if (cairn__ksnap_path(path, sizeof(path), k->snap_dir, k->topic, P->id) != 0)
        return;
    memset(&h, 0, sizeof(h));
    h.partition = P->id;
    h.partitions = k->partitions;
    h.offset = P->next;
    h.accepted_end = P->accepted_end;
    h.end_epoch = P->end_epoch;
    h.claim_ts = P->claim_ts;
    h.claim_writer = P->claim_writer;
    h.streams = P->idx.count;
    cairn_buf_init(&b, CAIRN__KSNAP_MAX_BYTES);
    rc = cairn__ksnap_begin(&b, k->topic, &h, &P->rr, &e);
    for (size_t i = 0; !rc && i < P->idx.cap; i++) {
        const struct kstream *s = P->idx.slots[i];
        if (s)
            rc = cairn__ksnap_add(&b, s->name, s->version, s->offs, &e);
    }
    if (!rc)
        rc = cairn__ksnap_end(&b, &e);
    if (!rc) {
        P->snap_busy = 1;
        if (unlock)
            pthread_mutex_unlock(&k->mu);
        rc = cairn__ksnap_write_file(path, b.data, b.len, &e);
        if (unlock)
            pthread_mutex_lock(&k->mu);
        P->snap_busy = 0;
    }
    if (rc) {
        cairn__log(CAIRN_LOG_WARNING, "kafka", "partition %d of '%s': no snapshot written (%s)",
                   P->id, k->topic, e.text);
    } else {
        P->snap.written++;
        P->snap.written_offset = h.offset;
        cairn__log(CAIRN_LOG_DEBUG, "kafka",
                   "partition %d of '%s': snapshot up to offset %" PRId64 " (%zu bytes)", P->id,
                   k->topic, h.offset, b.len);
    }
    cairn_buf_release(&b);
}

cairn_rc_t cairn__kafka_snapshot_stats(cairn_log_t *log,
                                       int partition,
                                       struct cairn__ksnap_stats *out,
                                       cairn_error_t *err)
{
    if (!log || log->backend != &cairn__kafka_backend || !out)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "not a kafka log");
    struct klog *k = log->impl;
    if (partition < 0 || partition >= k->partitions)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic, "no partition %d", partition);
    pthread_mutex_lock(&k->mu);
    *out = k->parts[partition].snap;
    pthread_mutex_unlock(&k->mu);
    return CAIRN_OK;
}

/* Starts following @p P: from its snapshot's offset when a good one exists,
 * else from 0. @p high is the partition's high watermark. Locks: mu held. */
static cairn_rc_t follow(struct klog *k, struct kpart *P, int64_t high, cairn_error_t *err)
{
    if (P->following)
        return CAIRN_OK;
    int64_t from = k->snap_dir ? snap_load(k, P, high) : 0;
    if (rd_kafka_consume_start_queue(k->crkt, P->id, from, k->queue) != 0)
        return kerr(err, rd_kafka_last_error(), k->topic, "cannot follow the partition");
    P->following = 1;
    P->snap.follow_from = from;
    return CAIRN_OK;
}

/* Waits (mu held, released while waiting) until the tailer has read
 * partition @p P up to the high watermark the cluster reports now. */
static cairn_rc_t catch_up(struct klog *k, struct kpart *P, int64_t deadline, cairn_error_t *err)
{
    int64_t low = 0, high = 0;
    cairn_rc_t rc;
    rd_kafka_t *rk = k->consumer; /* never replaced, unlike the producer */
    pthread_mutex_unlock(&k->mu);
    int64_t left = deadline - cairn__mono_ms();
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, k->topic, P->id, &low, &high,
                                         left > 0 ? (int)(left > INT32_MAX ? INT32_MAX : left) : 1);
    pthread_mutex_lock(&k->mu);
    if (e)
        return kerr(err, e, k->topic, "cannot read the partition's watermarks");
    if (low > 0)
        return cairn__error_setc(err, CAIRN_E_CORRUPT, (int)P->id, 0, k->topic,
                                 "partition %d of '%s' starts at offset %" PRId64
                                 ": records were deleted (data loss)",
                                 P->id, k->topic, low);
    if ((rc = follow(k, P, high, err)))
        return rc;
    while (P->next < high && !P->fault.code) {
        struct timespec ts;
        if (cairn__mono_ms() >= deadline)
            return cairn__error_set(err, CAIRN_E_TIMEOUT, CAIRN_ERR_RETRIABLE, k->topic,
                                    "reading partition %d up to offset %" PRId64 " timed out",
                                    P->id, high);
        deadline_ts(&ts, 50);
        pthread_cond_timedwait(&k->cond, &k->mu, &ts);
    }
    if (P->fault.code) {
        if (err && !err->code)
            *err = P->fault;
        return P->fault.code;
    }
    int64_t last = P->snap.written_offset > P->snap.loaded_offset ? P->snap.written_offset
                                                                  : P->snap.loaded_offset;
    if (k->snap_dir && P->next - (last > 0 ? last : 0) >= (int64_t)k->snap_every)
        snap_write(k, P, 1);
    return CAIRN_OK;
}

/* ---- producing -------------------------------------------------------------- */

static void set_header(rd_kafka_vu_t *vu, const char *name, const void *val, size_t len)
{
    vu->vtype = RD_KAFKA_VTYPE_HEADER;
    vu->u.header.name = name;
    vu->u.header.val = val;
    vu->u.header.size = (ssize_t)len;
}

/* Produces one control record (claim or metadata) to partition @p p. Locks: mu held. */
static cairn_rc_t produce_control(struct klog *k,
                                  int p,
                                  const char *hname,
                                  const char *hvalue,
                                  const unsigned char *id,
                                  cairn_error_t *err)
{
    rd_kafka_vu_t vu[6];
    char hex[ID_HEX + 1];
    size_t n = 0;

    memset(vu, 0, sizeof(vu));
    vu[n].vtype = RD_KAFKA_VTYPE_RKT;
    vu[n++].u.rkt = k->prkt;
    vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[n++].u.i32 = p;
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
    set_header(&vu[n++], hname, hvalue, strlen(hvalue));
    if (id) {
        hex_encode(id, hex);
        set_header(&vu[n++], "cairn.append", hex, ID_HEX);
    }
    rd_kafka_error_t *e = rd_kafka_produceva(k->producer, vu, n);
    if (e) {
        rd_kafka_resp_err_t code = rd_kafka_error_code(e);
        rd_kafka_error_destroy(e);
        return kerr(err, code, k->topic, "cannot produce a control record");
    }
    return CAIRN_OK;
}

/*
 * Makes this process the owner of @p P: reads it up to its end, produces a
 * claim of the next epoch and reads on up to that claim.
 * Locks: mu held (released while waiting).
 */
static cairn_rc_t
claim(struct klog *k, struct kpart *P, int64_t deadline, int force, cairn_error_t *err)
{
    cairn_rc_t rc;
    char num[32];

    while (P->state == P_CLAIMING) { /* another thread of ours claims it */
        struct timespec ts;
        if (cairn__mono_ms() >= deadline)
            return cairn__error_set(err, CAIRN_E_TIMEOUT, CAIRN_ERR_RETRIABLE, k->topic,
                                    "claiming partition %d timed out", P->id);
        deadline_ts(&ts, 50);
        pthread_cond_timedwait(&k->cond, &k->mu, &ts);
    }
    if (P->state == P_OWNED)
        return CAIRN_OK;
    if ((rc = catch_up(k, P, deadline, err)))
        return rc;
    if (P->state == P_OWNED)
        return CAIRN_OK;
    if (P->state == P_CLAIMING)
        return claim(k, P, deadline, force, err);
    int64_t age = cairn__wall_ms() - P->claim_ts;
    if (!force && P->rr.epoch > 0 && P->claim_writer != k->writer_id && age < k->hold_ms)
        return cairn__error_setc(err, CAIRN_E_CONFLICT, (int)P->rr.epoch,
                                 CAIRN_ERR_CONFLICT | CAIRN_ERR_RETRIABLE, k->topic,
                                 "partition %d is owned by another writer (epoch %" PRId64
                                 ", claimed %" PRId64 " ms ago, held for %" PRId64 " ms)",
                                 P->id, P->rr.epoch, age, k->hold_ms);
    int64_t epoch = P->rr.epoch + 1;
    id_of(P->claim_id, k->writer_id, ++k->next_ticket);
    snprintf(num, sizeof(num), "%" PRId64, epoch);
    if ((rc = produce_control(k, P->id, "cairn.claim", num, P->claim_id, err)))
        return rc;
    P->state = P_CLAIMING;
    P->claim_result = 0;
    while (P->claim_result == 0 && !P->fault.code) {
        struct timespec ts;
        if (cairn__mono_ms() >= deadline) {
            P->state = P_NONE;
            return cairn__error_set(
                err, CAIRN_E_TIMEOUT, CAIRN_ERR_RETRIABLE | CAIRN_ERR_OUTCOME_UNKNOWN, k->topic,
                "claim of partition %d (epoch %" PRId64 ") not read back in time", P->id, epoch);
        }
        deadline_ts(&ts, 50);
        pthread_cond_timedwait(&k->cond, &k->mu, &ts);
    }
    if (P->fault.code) {
        P->state = P_NONE;
        if (err && !err->code)
            *err = P->fault;
        return P->fault.code;
    }
    if (P->claim_result < 0)
        return cairn__error_set(
            err, CAIRN_E_CONFLICT, CAIRN_ERR_CONFLICT | CAIRN_ERR_RETRIABLE, k->topic,
            "lost the claim of partition %d (epoch %" PRId64 ") to another writer", P->id, epoch);
    if (P->state != P_OWNED) /* won, then fenced before this thread woke up */
        return cairn__error_setc(err, CAIRN_E_CONFLICT, (int)P->fenced_by,
                                 CAIRN_ERR_CONFLICT | CAIRN_ERR_RETRIABLE, k->topic,
                                 "fenced by epoch %" PRId64 " (partition %d)", P->fenced_by, P->id);
    cairn__log(CAIRN_LOG_INFO, "kafka", "partition %d of '%s': owned with epoch %" PRId64, P->id,
               k->topic, P->my_epoch);
    return CAIRN_OK;
}

static cairn_rc_t check_records(
    struct klog *k, const char *stream, const cairn_record_t *records, size_t n, cairn_error_t *err)
{
    if (!stream || !*stream || !records || n == 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                "an append needs a stream and at least one record");
    if (n > UINT32_MAX)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "batch too large");
    size_t slen = strlen(stream);
    for (size_t i = 0; i < n; i++) {
        size_t size = slen + records[i].value_len + 256;
        if (records[i].value_len && !records[i].value)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "record %zu has no value", i);
        for (size_t h = 0; h < records[i].header_count; h++) {
            const cairn_header_t *hd = &records[i].headers[h];
            if (!hd->name || !*hd->name || (hd->value_len && !hd->value))
                return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "record %zu: bad header",
                                        i);
            if (is_reserved(hd->name))
                return cairn__error_set(err, CAIRN_E_INVALID, 0, hd->name,
                                        "header '%s' is reserved by the kafka backend", hd->name);
            size += strlen(hd->name) + hd->value_len + 8;
        }
        if (size > k->max_record)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                    "record %zu is larger than %zu bytes", i, k->max_record);
    }
    return CAIRN_OK;
}

/* Produces the records of one append. Locks: mu held. */
static cairn_rc_t produce_append(struct klog *k,
                                 int p,
                                 const char *stream,
                                 cairn_record_t *records,
                                 size_t n,
                                 uint64_t first_version,
                                 int64_t epoch,
                                 const unsigned char *id,
                                 cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    unsigned char hdr[CAIRN__RR_HEADER_LEN];
    struct cairn__rr_event ev;
    rd_kafka_vu_t stack_vu[16], *vu = stack_vu;
    size_t cap = sizeof(stack_vu) / sizeof(stack_vu[0]), klen = strlen(stream);

    memset(&ev, 0, sizeof(ev));
    ev.epoch = epoch;
    memcpy(ev.append, id, CAIRN__RR_ID_LEN);
    ev.count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        cairn_record_t *r = &records[i];
        size_t need = 6 + r->header_count + 1, m = 0;
        if (need > cap) {
            rd_kafka_vu_t *nv = cairn__realloc(vu == stack_vu ? NULL : vu, need * sizeof(*nv));
            if (!nv) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
                goto out;
            }
            vu = nv;
            cap = need;
        }
        if (!r->timestamp_ms)
            r->timestamp_ms = cairn__wall_ms();
        ev.version = first_version + i;
        ev.index = (uint32_t)i;
        ev.time_ms = r->timestamp_ms;
        cairn__rr_header_encode(&ev, hdr);
        vu[m].vtype = RD_KAFKA_VTYPE_RKT;
        vu[m++].u.rkt = k->prkt;
        vu[m].vtype = RD_KAFKA_VTYPE_PARTITION;
        vu[m++].u.i32 = p;
        vu[m].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[m++].u.i = RD_KAFKA_MSG_F_COPY;
        vu[m].vtype = RD_KAFKA_VTYPE_KEY;
        vu[m].u.mem.ptr = (void *)(uintptr_t)stream;
        vu[m++].u.mem.size = klen;
        vu[m].vtype = RD_KAFKA_VTYPE_VALUE;
        vu[m].u.mem.ptr = (void *)(uintptr_t)(r->value_len ? r->value : NULL);
        vu[m++].u.mem.size = r->value_len;
        vu[m].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
        vu[m++].u.i64 = r->timestamp_ms;
        for (size_t h = 0; h < r->header_count; h++)
            set_header(&vu[m++], r->headers[h].name, r->headers[h].value, r->headers[h].value_len);
        set_header(&vu[m++], CAIRN__RR_HEADER, hdr, sizeof(hdr));
        rd_kafka_error_t *e = rd_kafka_produceva(k->producer, vu, m);
        if (e) {
            rd_kafka_resp_err_t code = rd_kafka_error_code(e);
            rd_kafka_error_destroy(e);
            /* Records already queued form an incomplete append: every
             * reader drops it when our next record follows it. */
            rc = kerr(err, code, stream,
                      i ? "cannot produce (the records already queued will be rejected)"
                        : "cannot produce");
            goto out;
        }
        r->version = first_version + i;
        r->partition = p;
        r->position = 0;
    }
out:
    if (vu != stack_vu)
        cairn__free(vu);
    return rc;
}

/* ---- backend functions: appends ---------------------------------------------- */

static cairn_rc_t k_append_nowait(void *impl,
                                  const char *stream,
                                  int64_t expected_version,
                                  cairn_record_t *records,
                                  size_t n,
                                  uint64_t *last_version,
                                  uint64_t *ticket,
                                  cairn_error_t *err)
{
    struct klog *k = impl;
    cairn_rc_t rc;
    unsigned char id[CAIRN__RR_ID_LEN];

    if ((rc = check_records(k, stream, records, n, err)))
        return rc;
    if (expected_version < CAIRN_EXPECT_NO_STREAM)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "bad expected version %" PRId64,
                                expected_version);
    if (k->read_only)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic, "log '%s' is open read-only",
                                k->topic);
    int p = cairn__kafka_partition_of(stream, strlen(stream), k->partitions);
    struct kpart *P = &k->parts[p];
    int64_t deadline = cairn__mono_ms() + k->ack_timeout_ms;
    /* What needs no lock is done before taking mu, which 16 appenders and
     * the tailer share: the records' times and the append's memory. */
    int64_t now = 0;
    for (size_t i = 0; i < n; i++)
        if (!records[i].timestamp_ms)
            records[i].timestamp_ms = now ? now : (now = cairn__wall_ms());
    struct kappend *a = cairn__calloc(1, sizeof(*a));
    if (!a)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");

    pthread_mutex_lock(&k->mu);
    if (k->config_fault.code || P->fault.code) {
        const cairn_error_t *f = k->config_fault.code ? &k->config_fault : &P->fault;
        if (err && !err->code)
            *err = *f;
        rc = f->code;
        goto out;
    }
    if (P->state != P_OWNED && (rc = claim(k, P, deadline, 0, err)))
        goto out;
    /* Invariant: records are produced only while this partition is owned
     * (under mu), so that a fencing claim read later fails them. */
    struct kstream *s = kindex_get(&P->idx, stream);
    if (!s) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
        goto out;
    }
    uint64_t cur = s->written;
    if ((expected_version == CAIRN_EXPECT_NO_STREAM && cur != 0) ||
        (expected_version >= 0 && (uint64_t)expected_version != cur)) {
        rc = cairn__error_setc(err, CAIRN_E_CONFLICT_VERSION,
                               cur > INT32_MAX ? INT32_MAX : (int)cur, CAIRN_ERR_CONFLICT, stream,
                               "stream '%s' is at version %" PRIu64 ", expected %" PRId64, stream,
                               cur, expected_version);
        goto out;
    }
    a->ticket = ++k->next_ticket;
    a->partition = p;
    a->epoch = P->my_epoch;
    a->state = A_PENDING;
    id_of(id, k->writer_id, a->ticket);
    if ((rc = produce_append(k, p, stream, records, n, cur + 1, P->my_epoch, id, err)))
        goto out;
    s->written = cur + n;
    a->hnext = k->tickets[a->ticket % TICKET_BUCKETS];
    k->tickets[a->ticket % TICKET_BUCKETS] = a;
    if (P->q_tail)
        P->q_tail->next_in_part = a;
    else
        P->q_head = a;
    P->q_tail = a;
    if (last_version)
        *last_version = cur + n;
    if (ticket)
        *ticket = a->ticket;
    a = NULL; /* the ticket table and the partition's queue hold it */
out:
    pthread_mutex_unlock(&k->mu);
    cairn__free(a);
    return rc;
}

static cairn_rc_t
k_wait_append(void *impl, uint64_t ticket, cairn_record_t *records, size_t n, cairn_error_t *err)
{
    struct klog *k = impl;
    cairn_rc_t rc = CAIRN_OK;
    int64_t deadline = 0;          /* read the clock only if the append is still pending */
    pthread_cond_t *wc = &k->cond; /* without a free slot: woken after every tail batch */

    pthread_mutex_lock(&k->mu);
    struct kappend *a = ticket_find(k, ticket);
    if (!a) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic,
                              "unknown append ticket %" PRIu64 " (already waited for?)", ticket);
        goto out;
    }
    if (a->wslot) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic,
                              "append ticket %" PRIu64 " is already waited for", ticket);
        a = NULL;
        goto out;
    }
    if (a->state == A_PENDING)
        deadline = cairn__mono_ms() + k->ack_timeout_ms;
    if (a->state == A_PENDING && ~k->wslot_used) {
        unsigned i = 0;
        while (k->wslot_used >> i & 1)
            i++;
        k->wslot_used |= (uint64_t)1 << i;
        a->wslot = i + 1;
        a->wakes = &k->wake_mask;
        wc = &k->wslot[i];
    }
    while (a->state == A_PENDING) {
        struct timespec ts;
        struct kpart *P = &k->parts[a->partition];
        if (P->state == P_NONE && !P->fault.code) {
            /* Not fenced (that would have failed it) but no longer owned:
             * the producer was recreated, or another append's wait timed
             * out. Our own new claim decides it. */
            cairn_error_t ce = {0};
            if (claim(k, P, deadline, 1, &ce) == CAIRN_OK || a->state != A_PENDING)
                continue;
            cairn__log(CAIRN_LOG_WARNING, "kafka", "re-claiming partition %d: %s", a->partition,
                       ce.text);
        }
        if (cairn__mono_ms() >= deadline) {
            /* Outcome unknown: the partition's in-memory state counts this
             * append (its streams' written versions) though it may never
             * land. Stop trusting it: the next append to the partition (or
             * a settle, or another wait) claims it anew, which fences this
             * attempt, and reads up to that claim, which decides it and
             * rebuilds the versions from what the log accepted. */
            if (P->state == P_OWNED && P->my_epoch <= a->epoch) {
                P->state = P_NONE;
                cairn__log(CAIRN_LOG_NOTICE, "kafka",
                           "partition %d of '%s': append %" PRIu64
                           " unconfirmed, the partition will be claimed anew",
                           a->partition, k->topic, ticket);
            }
            rc = cairn__error_set(
                err, CAIRN_E_TIMEOUT, CAIRN_ERR_RETRIABLE | CAIRN_ERR_OUTCOME_UNKNOWN, k->topic,
                "append %" PRIu64 " to partition %d not confirmed within %d ms: outcome unknown "
                "(the partition's next claim decides it)",
                ticket, a->partition, k->ack_timeout_ms);
            goto out;
        }
        /* A re-created producer (P_NONE above) is noticed within 20 ms. */
        deadline_ts(&ts, 20);
        pthread_cond_timedwait(wc, &k->mu, &ts);
    }
    if (a->state == A_FAILED) {
        if (err && !err->code)
            *err = a->fail;
        rc = a->fail.code;
    } else {
        /* an accepted append's records stand contiguous (the reader rule) */
        for (size_t i = 0; i < n; i++)
            records[i].position = (uint64_t)(a->first_off + (int64_t)i);
    }
    ticket_remove(k, a);
out:
    if (a && a->wslot) {
        k->wslot_used &= ~((uint64_t)1 << (a->wslot - 1));
        a->wslot = 0;
    }
    if (a && a->state != A_PENDING)
        cairn__free(a);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

cairn_rc_t cairn__kafka_settle(cairn_log_t *log, uint64_t ticket, cairn_error_t *err)
{
    if (!log || log->backend != &cairn__kafka_backend)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "not a kafka log");
    struct klog *k = log->impl;
    cairn_rc_t rc = CAIRN_OK;
    int64_t deadline = cairn__mono_ms() + k->ack_timeout_ms;

    pthread_mutex_lock(&k->mu);
    struct kappend *a = ticket_find(k, ticket);
    if (!a) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic, "unknown append ticket %" PRIu64,
                              ticket);
        goto out;
    }
    if (a->state == A_PENDING) {
        /* A claim of ours newer than the append's epoch decides it: once the
         * tail has read the claim, the append is either accepted or never. */
        struct kpart *P = &k->parts[a->partition];
        if (P->state == P_OWNED && P->my_epoch <= a->epoch)
            P->state = P_NONE;
        cairn_error_t ce = {0};
        if (claim(k, P, deadline, 1, &ce) != CAIRN_OK && a->state == A_PENDING) {
            /* CAIRN_E_CONFLICT from here always means "definitely absent" */
            rc = cairn__error_setc(err, CAIRN_E_UNAVAILABLE, (int)ce.code,
                                   CAIRN_ERR_RETRIABLE | CAIRN_ERR_OUTCOME_UNKNOWN, k->topic,
                                   "cannot settle append %" PRIu64 " yet: %s", ticket, ce.text);
            goto out;
        }
        if (a->state == A_PENDING)
            append_end(P, a, CAIRN_E_CONFLICT, CAIRN_ERR_CONFLICT,
                       "append was not written (settled by a new claim of partition %d)",
                       a->partition);
    }
    pthread_mutex_unlock(&k->mu);
    return k_wait_append(k, ticket, NULL, 0, err);
out:
    pthread_mutex_unlock(&k->mu);
    return rc;
}

static cairn_rc_t k_wait_durable(void *impl, uint64_t ticket, cairn_error_t *err)
{
    return k_wait_append(impl, ticket, NULL, 0, err);
}

/* ---- synchronous reads with their own consumer ------------------------------- */

struct reader {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int started;
    int partition;
};

static void reader_close(struct reader *r)
{
    if (r->started)
        rd_kafka_consume_stop(r->rkt, r->partition);
    if (r->rkt)
        rd_kafka_topic_destroy(r->rkt);
    if (r->rk)
        rd_kafka_destroy(r->rk);
    memset(r, 0, sizeof(*r));
}

/* Opens a reader of partition @p p at offset 0 and reports its watermarks. */
static cairn_rc_t
reader_open(struct klog *k, int p, int64_t at, struct reader *r, int64_t *high, cairn_error_t *err)
{
    int64_t low = 0;
    cairn_rc_t rc;

    memset(r, 0, sizeof(*r));
    r->partition = p;
    if ((rc = make_handle(k, 1, &r->rk, err)))
        return rc;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(r->rk, k->topic, p, &low, high, OPEN_TIMEOUT_MS);
    if (e)
        return kerr(err, e, k->topic, "cannot read the partition's watermarks");
    if (low > 0)
        return cairn__error_setc(err, CAIRN_E_CORRUPT, p, 0, k->topic,
                                 "partition %d of '%s' starts at offset %" PRId64
                                 ": records were deleted (data loss)",
                                 p, k->topic, low);
    if (*high == 0)
        return CAIRN_OK;
    if (!(r->rkt = rd_kafka_topic_new(r->rk, k->topic, NULL)))
        return kerr(err, rd_kafka_last_error(), k->topic, "cannot open the topic");
    if (rd_kafka_consume_start(r->rkt, p, at) != 0)
        return kerr(err, rd_kafka_last_error(), k->topic, "cannot read the partition");
    r->started = 1;
    return CAIRN_OK;
}

/* The next message before @p high; NULL at the end. */
static cairn_rc_t reader_next(struct klog *k,
                              struct reader *r,
                              int64_t *next,
                              int64_t high,
                              rd_kafka_message_t **out,
                              cairn_error_t *err)
{
    int64_t stalled = cairn__mono_ms() + READ_STALL_MS;
    *out = NULL;
    while (*next < high) {
        rd_kafka_message_t *m = rd_kafka_consume(r->rkt, r->partition, 100);
        if (!m) {
            if (cairn__mono_ms() > stalled)
                return cairn__error_set(err, CAIRN_E_TIMEOUT, CAIRN_ERR_RETRIABLE, k->topic,
                                        "reading partition %d stalled at offset %" PRId64
                                        " for %d ms",
                                        r->partition, *next, READ_STALL_MS);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset > *next)
                *next = m->offset;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            cairn_rc_t rc = kerr(err, m->err, k->topic, "reading the partition failed");
            rd_kafka_message_destroy(m);
            return rc;
        }
        if (m->offset < *next) {
            rd_kafka_message_destroy(m);
            continue;
        }
        *next = m->offset + 1;
        *out = m;
        return CAIRN_OK;
    }
    return CAIRN_OK;
}

struct held_msgs {
    struct krec *v;
    size_t n, cap;
};

static void held_msgs_clear(struct held_msgs *h)
{
    for (size_t i = 0; i < h->n; i++)
        rd_kafka_message_destroy(h->v[i].msg);
    h->n = 0;
}

static int held_msgs_push(struct held_msgs *h, const struct krec *r)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;
        struct krec *nv = cairn__realloc(h->v, ncap * sizeof(*nv));
        if (!nv)
            return -1;
        h->v = nv;
        h->cap = ncap;
    }
    h->v[h->n++] = *r;
    return 0;
}

/*
 * Reads partition @p p from its start up to its current high watermark,
 * applying the reader rule, and delivers the accepted records at offsets
 * >= @p from (of stream @p stream from version @p from_version when given).
 */
static cairn_rc_t scan(struct klog *k,
                       int p,
                       int64_t from,
                       const char *stream,
                       uint64_t from_version,
                       cairn_record_cb *cb,
                       void *opaque,
                       cairn_error_t *err)
{
    struct reader rd;
    struct held_msgs held = {0};
    struct cairn__rr *rr = cairn__malloc(sizeof(*rr));
    cairn_buf_t scratch;
    cairn_header_t *hv = NULL;
    size_t hv_cap = 0, slen = stream ? strlen(stream) : 0;
    int64_t high = 0, next = 0;
    cairn_rc_t rc;

    cairn_buf_init(&scratch, 1u << 20);
    if (!rr)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    cairn__rr_init(rr, 0);
    if ((rc = reader_open(k, p, 0, &rd, &high, err)))
        goto out;
    for (;;) {
        rd_kafka_message_t *m = NULL;
        struct krec r;
        size_t dropped = 0;
        if ((rc = reader_next(k, &rd, &next, high, &m, err)))
            goto out;
        if (!m)
            break;
        parse_record(m, &r);
        enum cairn__rr_verdict v = cairn__rr_feed(rr, &r.meta, &dropped);
        if (dropped)
            held_msgs_clear(&held);
        if (v != CAIRN__RR_PENDING && v != CAIRN__RR_COMPLETE) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (held_msgs_push(&held, &r) != 0) {
            rd_kafka_message_destroy(m);
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
        if (v == CAIRN__RR_PENDING)
            continue;
        for (size_t i = 0; i < held.n; i++) {
            const struct krec *x = &held.v[i];
            if (x->msg->offset < from)
                continue;
            if (stream && (x->msg->key_len != slen || memcmp(x->msg->key, stream, slen) != 0 ||
                           x->version < from_version))
                continue;
            int stop = deliver(x, p, cb, opaque, &scratch, &hv, &hv_cap);
            if (stop < 0) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
                goto out;
            }
            if (stop) {
                rc = CAIRN_AGAIN;
                goto out;
            }
        }
        held_msgs_clear(&held);
    }
    if (rr->verdicts[CAIRN__RR_SKIP_FOREIGN])
        cairn__log(CAIRN_LOG_INFO, "kafka",
                   "partition %d of '%s': skipped %" PRIu64 " records without cairn headers", p,
                   k->topic, rr->verdicts[CAIRN__RR_SKIP_FOREIGN]);
    rc = CAIRN_DONE;
out:
    held_msgs_clear(&held);
    cairn__free(held.v);
    reader_close(&rd);
    cairn__free(hv);
    cairn_buf_release(&scratch);
    cairn__free(rr);
    return rc;
}

/* ---- backend functions: reads ------------------------------------------------ */

static cairn_rc_t k_replay_partition(
    void *impl, int partition, uint64_t from, cairn_record_cb *cb, void *opaque, cairn_error_t *err)
{
    struct klog *k = impl;
    if (partition < 0 || partition >= k->partitions || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic, "no partition %d in '%s'",
                                partition, k->topic);
    return scan(k, partition, from > INT64_MAX ? INT64_MAX : (int64_t)from, NULL, 0, cb, opaque,
                err);
}

/*
 * A cold read of one stream: this process's tail of the partition is caught
 * up to the current end (the first time, that reads the partition from
 * offset 0 through the rule; afterwards only what is new), and its index
 * names the offsets of the stream's accepted records, which a reader then
 * fetches from the first one on, skipping the records in between.
 */
static cairn_rc_t k_read_stream(void *impl,
                                const char *stream,
                                uint64_t from_version,
                                cairn_record_cb *cb,
                                void *opaque,
                                cairn_error_t *err)
{
    struct klog *k = impl;
    cairn_rc_t rc;
    int64_t *offs = NULL, high = 0, next = 0;
    uint64_t first = from_version ? from_version : 1, n = 0;
    struct reader rd;
    cairn_buf_t scratch;
    cairn_header_t *hv = NULL;
    size_t hv_cap = 0;

    if (!stream || !*stream || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                "read_stream needs a stream and a callback");
    int p = cairn__kafka_partition_of(stream, strlen(stream), k->partitions);
    struct kpart *P = &k->parts[p];
    pthread_mutex_lock(&k->mu);
    rc = catch_up(k, P, cairn__mono_ms() + k->ack_timeout_ms, err);
    struct kstream *s = rc ? NULL : kindex_find(&P->idx, stream);
    if (s && s->version >= first) {
        n = s->version - first + 1;
        offs = cairn__malloc(n * sizeof(*offs));
        if (offs)
            memcpy(offs, s->offs + (first - 1), n * sizeof(*offs));
        else
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
    }
    pthread_mutex_unlock(&k->mu);
    if (rc || !n) {
        cairn__free(offs);
        return rc ? rc : CAIRN_DONE;
    }
    for (uint64_t i = 0; i < n; i++)
        if (offs[i] < 0) {
            cairn__free(offs);
            return cairn__error_set(err, CAIRN_E_CORRUPT, 0, stream,
                                    "stream '%s' has no record of version %" PRIu64, stream,
                                    first + i);
        }
    cairn_buf_init(&scratch, 1u << 20);
    if ((rc = reader_open(k, p, offs[0], &rd, &high, err)))
        goto out;
    next = offs[0];
    high = offs[n - 1] + 1;
    for (uint64_t i = 0; i < n;) {
        rd_kafka_message_t *m = NULL;
        struct krec r;
        if ((rc = reader_next(k, &rd, &next, high, &m, err)))
            goto out;
        if (!m) {
            rc = cairn__error_set(err, CAIRN_E_CORRUPT, 0, stream,
                                  "record of version %" PRIu64 " not found at offset %" PRId64,
                                  first + i, offs[i]);
            goto out;
        }
        if (m->offset != offs[i]) {
            rd_kafka_message_destroy(m);
            continue;
        }
        parse_record(m, &r);
        int stop = 0;
        if (r.meta.kind != CAIRN__RR_KIND_EVENT || r.version != first + i) {
            rc = cairn__error_set(err, CAIRN_E_CORRUPT, 0, stream,
                                  "offset %" PRId64 " does not hold version %" PRIu64, offs[i],
                                  first + i);
        } else {
            stop = deliver(&r, p, cb, opaque, &scratch, &hv, &hv_cap);
            if (stop < 0)
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            else if (stop)
                rc = CAIRN_AGAIN;
        }
        rd_kafka_message_destroy(m);
        if (rc)
            goto out;
        i++;
    }
    rc = CAIRN_DONE;
out:
    reader_close(&rd);
    cairn__free(hv);
    cairn_buf_release(&scratch);
    cairn__free(offs);
    return rc;
}

static uint64_t k_stream_version(void *impl, const char *stream)
{
    struct klog *k = impl;
    cairn_error_t e = {0};
    uint64_t v = 0;
    if (!stream || !*stream)
        return 0;
    int p = cairn__kafka_partition_of(stream, strlen(stream), k->partitions);
    struct kpart *P = &k->parts[p];
    pthread_mutex_lock(&k->mu);
    if (P->state != P_OWNED && catch_up(k, P, cairn__mono_ms() + k->ack_timeout_ms, &e) != CAIRN_OK)
        cairn__log(CAIRN_LOG_ERR, "kafka", "stream version of '%s': %s", stream, e.text);
    struct kstream *s = kindex_find(&P->idx, stream);
    if (s)
        v = P->state == P_OWNED ? s->written : s->version;
    pthread_mutex_unlock(&k->mu);
    return v;
}

static int k_partition_count(void *impl)
{
    return ((struct klog *)impl)->partitions;
}

static int k_partition_of(void *impl, const char *stream)
{
    struct klog *k = impl;
    return stream ? cairn__kafka_partition_of(stream, strlen(stream), k->partitions) : 0;
}

static uint64_t k_end(void *impl, int partition)
{
    struct klog *k = impl;
    cairn_error_t e = {0};
    uint64_t end = 0;
    if (partition < 0 || partition >= k->partitions)
        return 0;
    struct kpart *P = &k->parts[partition];
    pthread_mutex_lock(&k->mu);
    if (catch_up(k, P, cairn__mono_ms() + k->ack_timeout_ms, &e) != CAIRN_OK)
        cairn__log(CAIRN_LOG_ERR, "kafka", "end of partition %d: %s", partition, e.text);
    end = (uint64_t)P->accepted_end;
    pthread_mutex_unlock(&k->mu);
    return end;
}

/* ---- tails ---------------------------------------------------------------------- */

struct tready {
    struct krec r;
    int last;      /* the last record of its append: the checkpoint may move past it */
    int64_t epoch; /* the epoch in force when it was accepted */
};

struct tpart {
    struct cairn__rr rr;
    int64_t ckpt_off;
    int64_t ckpt_epoch;
    int64_t next;
    struct held_msgs held;
};

struct ktail {
    struct klog *k;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_queue_t *q;
    int started;
    struct tpart *tp;
    struct tready *ready; /* ring */
    size_t r_head, r_n, r_cap;
    cairn_buf_t scratch;
    cairn_header_t *hv;
    size_t hv_cap;
};

static void k_tail_close(void *t)
{
    struct ktail *T = t;
    if (!T)
        return;
    for (size_t i = 0; i < T->r_n; i++)
        rd_kafka_message_destroy(T->ready[(T->r_head + i) % T->r_cap].r.msg);
    cairn__free(T->ready);
    if (T->tp) {
        for (int p = 0; p < T->k->partitions; p++) {
            held_msgs_clear(&T->tp[p].held);
            cairn__free(T->tp[p].held.v);
            if (p < T->started)
                rd_kafka_consume_stop(T->rkt, p);
        }
    }
    cairn__free(T->tp);
    if (T->q)
        rd_kafka_queue_destroy(T->q);
    if (T->rkt)
        rd_kafka_topic_destroy(T->rkt);
    if (T->rk)
        rd_kafka_destroy(T->rk);
    cairn__free(T->hv);
    cairn_buf_release(&T->scratch);
    cairn__free(T);
}

static cairn_rc_t
parse_checkpoint(struct klog *k, const char *cp, struct ktail *T, cairn_error_t *err)
{
    const char *s = cp + strlen("kafka:");
    while (*s) {
        char *end = NULL;
        long p = strtol(s, &end, 10);
        if (end == s || *end != '=' || p < 0 || p >= k->partitions)
            goto bad;
        s = end + 1;
        long long off = strtoll(s, &end, 10);
        if (end == s || *end != '@' || off < 0)
            goto bad;
        s = end + 1;
        long long ep = strtoll(s, &end, 10);
        if (end == s || ep < 0 || (*end && *end != ','))
            goto bad;
        T->tp[p].ckpt_off = off;
        T->tp[p].ckpt_epoch = ep;
        s = *end ? end + 1 : end;
    }
    return CAIRN_OK;
bad:
    return cairn__error_set(err, CAIRN_E_INVALID, 0, cp,
                            "bad kafka checkpoint '%s' (kafka:<p>=<offset>@<epoch>,...)", cp);
}

static cairn_rc_t k_tail_open(void *impl, const char *checkpoint, void **out, cairn_error_t *err)
{
    struct klog *k = impl;
    cairn_rc_t rc = CAIRN_OK;
    struct ktail *T = cairn__calloc(1, sizeof(*T));

    if (!T)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    T->k = k;
    cairn_buf_init(&T->scratch, 1u << 20);
    if (!(T->tp = cairn__calloc((size_t)k->partitions, sizeof(*T->tp)))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    if (checkpoint && strcmp(checkpoint, "end") == 0) {
        pthread_mutex_lock(&k->mu);
        for (int p = 0; p < k->partitions && !rc; p++) {
            rc = catch_up(k, &k->parts[p], cairn__mono_ms() + k->ack_timeout_ms, err);
            T->tp[p].ckpt_off = k->parts[p].accepted_end;
            T->tp[p].ckpt_epoch = k->parts[p].end_epoch;
        }
        pthread_mutex_unlock(&k->mu);
        if (rc)
            goto out;
    } else if (checkpoint && *checkpoint) {
        if (strncmp(checkpoint, "kafka:", 6) != 0) {
            rc = cairn__error_set(err, CAIRN_E_INVALID, 0, checkpoint,
                                  "checkpoint '%s' is not a kafka checkpoint", checkpoint);
            goto out;
        }
        if ((rc = parse_checkpoint(k, checkpoint, T, err)))
            goto out;
    }
    if ((rc = make_handle(k, 1, &T->rk, err)))
        goto out;
    if (!(T->rkt = rd_kafka_topic_new(T->rk, k->topic, NULL)) ||
        !(T->q = rd_kafka_queue_new(T->rk))) {
        rc = kerr(err, rd_kafka_last_error(), k->topic, "cannot open the topic");
        goto out;
    }
    for (int p = 0; p < k->partitions; p++) {
        cairn__rr_init(&T->tp[p].rr, T->tp[p].ckpt_epoch);
        T->tp[p].next = T->tp[p].ckpt_off;
        if (rd_kafka_consume_start_queue(T->rkt, p, T->tp[p].ckpt_off, T->q) != 0) {
            rc = kerr(err, rd_kafka_last_error(), k->topic, "cannot read the partition");
            goto out;
        }
        T->started = p + 1;
    }
    *out = T;
    T = NULL;
out:
    k_tail_close(T);
    return rc;
}

static int ready_push(struct ktail *T, const struct krec *r, int last, int64_t epoch)
{
    if (T->r_n == T->r_cap) {
        size_t ncap = T->r_cap ? T->r_cap * 2 : 64;
        struct tready *nr = cairn__malloc(ncap * sizeof(*nr));
        if (!nr)
            return -1;
        for (size_t i = 0; i < T->r_n; i++)
            nr[i] = T->ready[(T->r_head + i) % T->r_cap];
        cairn__free(T->ready);
        T->ready = nr;
        T->r_cap = ncap;
        T->r_head = 0;
    }
    struct tready *e = &T->ready[(T->r_head + T->r_n) % T->r_cap];
    e->r = *r;
    e->last = last;
    e->epoch = epoch;
    T->r_n++;
    return 0;
}

/* Feeds one fetched message to its partition's rule; accepted appends go to the ready ring. */
static cairn_rc_t tail_take(struct ktail *T, rd_kafka_message_t *m, cairn_error_t *err)
{
    struct klog *k = T->k;
    int p = m->partition;
    cairn_rc_t rc = CAIRN_OK;
    struct krec r;
    size_t dropped = 0;

    if (p < 0 || p >= k->partitions) {
        rd_kafka_message_destroy(m);
        return CAIRN_OK;
    }
    struct tpart *tp = &T->tp[p];
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
            m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
            rc = kerr(err, m->err, k->topic, "tail of the partition lost data");
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            cairn__log(CAIRN_LOG_INFO, "kafka", "tail of partition %d: %s", p,
                       rd_kafka_err2str(m->err));
        rd_kafka_message_destroy(m);
        return rc;
    }
    if (m->offset < tp->next) {
        rd_kafka_message_destroy(m);
        return CAIRN_OK;
    }
    tp->next = m->offset + 1;
    parse_record(m, &r);
    enum cairn__rr_verdict v = cairn__rr_feed(&tp->rr, &r.meta, &dropped);
    if (dropped)
        held_msgs_clear(&tp->held);
    if (v != CAIRN__RR_PENDING && v != CAIRN__RR_COMPLETE) {
        rd_kafka_message_destroy(m);
        return CAIRN_OK;
    }
    if (held_msgs_push(&tp->held, &r) != 0) {
        rd_kafka_message_destroy(m);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    }
    if (v == CAIRN__RR_PENDING)
        return CAIRN_OK;
    for (size_t i = 0; i < tp->held.n; i++) {
        if (ready_push(T, &tp->held.v[i], i + 1 == tp->held.n, tp->rr.epoch) != 0) {
            /* keep what is left held; nothing is lost but memory */
            memmove(tp->held.v, tp->held.v + i, (tp->held.n - i) * sizeof(*tp->held.v));
            tp->held.n -= i;
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        }
    }
    tp->held.n = 0; /* the messages now belong to the ready ring */
    return CAIRN_OK;
}

static cairn_rc_t k_tail_poll(void *t,
                              int timeout_ms,
                              size_t max_records,
                              cairn_record_cb *cb,
                              void *opaque,
                              size_t *delivered,
                              cairn_error_t *err)
{
    struct ktail *T = t;
    cairn_rc_t rc = CAIRN_OK;
    size_t done = 0;
    int64_t deadline = cairn__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    rd_kafka_message_t *msgs[64];

    if (delivered)
        *delivered = 0;
    if (!cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "tail_poll needs a callback");
    while (done < max_records) {
        if (T->r_n) {
            struct tready *e = &T->ready[T->r_head];
            int stop =
                deliver(&e->r, e->r.msg->partition, cb, opaque, &T->scratch, &T->hv, &T->hv_cap);
            if (stop < 0) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
                break;
            }
            if (stop) {
                rc = CAIRN_AGAIN;
                break;
            }
            if (e->last) {
                T->tp[e->r.msg->partition].ckpt_off = e->r.msg->offset + 1;
                T->tp[e->r.msg->partition].ckpt_epoch = e->epoch;
            }
            rd_kafka_message_destroy(e->r.msg);
            T->r_head = (T->r_head + 1) % T->r_cap;
            T->r_n--;
            done++;
            continue;
        }
        int64_t left = deadline - cairn__mono_ms();
        int wait = done ? 0 : (left > 0 ? (int)left : 0);
        /* one message as soon as there is one (consume_batch_queue would
         * wait out its timeout), then what else is already fetched */
        ssize_t n = 0;
        msgs[0] = rd_kafka_consume_queue(T->q, wait);
        if (msgs[0]) {
            n = rd_kafka_consume_batch_queue(T->q, 0, msgs + 1, 63);
            n = n < 0 ? 1 : n + 1;
        }
        for (ssize_t i = 0; i < n; i++) {
            cairn_rc_t r = tail_take(T, msgs[i], err);
            if (r && !rc)
                rc = r;
        }
        if (rc)
            break;
        if (n == 0 && (done || cairn__mono_ms() >= deadline))
            break;
    }
    if (delivered)
        *delivered = done;
    return rc;
}

static cairn_rc_t k_tail_checkpoint(void *t, char *buf, size_t size, cairn_error_t *err)
{
    struct ktail *T = t;
    size_t off = 0;
    int w = snprintf(buf, size, "kafka:");
    if (w < 0 || (size_t)w >= size)
        goto small;
    off = (size_t)w;
    for (int p = 0; p < T->k->partitions; p++) {
        w = snprintf(buf + off, size - off, "%s%d=%" PRId64 "@%" PRId64, p ? "," : "", p,
                     T->tp[p].ckpt_off, T->tp[p].ckpt_epoch);
        if (w < 0 || (size_t)w >= size - off)
            goto small;
        off += (size_t)w;
    }
    return CAIRN_OK;
small:
    return cairn__error_set(err, CAIRN_E_INVALID_TOO_LARGE, 0, NULL,
                            "checkpoint buffer of %zu bytes is too small", size);
}

/* ---- open, set-up checks, close ----------------------------------------------- */

static void k_close(void *impl)
{
    struct klog *k = impl;
    if (!k)
        return;
    if (k->thread_started) {
        pthread_mutex_lock(&k->mu);
        k->stop = 1;
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
    }
    if (k->producer) /* give queued records their chance; appends were acknowledged or not */
        rd_kafka_flush(k->producer, 2000);
    if (k->parts) {
        for (int p = 0; p < k->partitions; p++) {
            struct kpart *P = &k->parts[p];
            if (P->following)
                rd_kafka_consume_stop(k->crkt, p);
            if (k->snap_dir) { /* the tailer has stopped: the state is final */
                pthread_mutex_lock(&k->mu);
                snap_write(k, P, 0);
                pthread_mutex_unlock(&k->mu);
            }
            held_clear(P);
            cairn__free(P->held);
            cairn__free(P->held_stream);
            kindex_release(&P->idx);
        }
    }
    for (size_t b = 0; b < TICKET_BUCKETS; b++) {
        struct kappend *a = k->tickets[b];
        while (a) {
            struct kappend *next = a->hnext;
            cairn__free(a);
            a = next;
        }
    }
    cairn__free(k->parts);
    if (k->admin_ao)
        rd_kafka_AdminOptions_destroy(k->admin_ao);
    if (k->admin_cr)
        rd_kafka_ConfigResource_destroy(k->admin_cr);
    if (k->admin_q)
        rd_kafka_queue_destroy(k->admin_q);
    if (k->queue)
        rd_kafka_queue_destroy(k->queue);
    if (k->crkt)
        rd_kafka_topic_destroy(k->crkt);
    if (k->consumer)
        rd_kafka_destroy(k->consumer);
    if (k->prkt)
        rd_kafka_topic_destroy(k->prkt);
    if (k->producer)
        rd_kafka_destroy(k->producer);
    for (size_t i = 0; i < k->nprops; i++) {
        cairn__free(k->props[i].name);
        cairn__free(k->props[i].value);
    }
    cairn__free(k->props);
    cairn__free(k->brokers);
    cairn__free(k->snap_dir);
    cairn__free(k->topic);
    cairn__free(k->url);
    pthread_cond_destroy(&k->cond);
    for (int i = 0; i < WSLOTS; i++)
        pthread_cond_destroy(&k->wslot[i]);
    pthread_mutex_destroy(&k->mu);
    cairn__free(k);
}

static uint64_t random_id(void)
{
    uint64_t x = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&x, sizeof(x), 1, f) != 1)
            x = 0;
        fclose(f);
    }
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec * 6364136223846793005ull ^ (uint64_t)ts.tv_sec;
    }
    return x;
}

/* Checks the topic's metadata record (the first one of partition 0) or writes it. */
static cairn_rc_t check_meta(struct klog *k, cairn_error_t *err)
{
    char want[96];
    struct reader rd;
    int64_t high = 0, next = 0;
    cairn_rc_t rc;
    int found = 0;

    snprintf(want, sizeof(want), META_VALUE "%d", k->partitions);
    if ((rc = reader_open(k, 0, 0, &rd, &high, err)))
        goto out;
    int64_t limit = high < 16 ? high : 16;
    while (!found && next < limit) {
        rd_kafka_message_t *m = NULL;
        rd_kafka_headers_t *hdrs = NULL;
        const void *val = NULL;
        size_t size = 0;
        if ((rc = reader_next(k, &rd, &next, limit, &m, err)))
            goto out;
        if (!m)
            break;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, "cairn.meta", &val, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR) {
            found = 1;
            if (!val || size != strlen(want) || memcmp(val, want, size) != 0)
                rc = cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic,
                                      "topic '%s' was set up as '%.*s', this log expects '%s'",
                                      k->topic, (int)(val ? size : 0), val ? (const char *)val : "",
                                      want);
        }
        rd_kafka_message_destroy(m);
    }
    if (rc || found || k->read_only)
        goto out;
    pthread_mutex_lock(&k->mu);
    rc = produce_control(k, 0, "cairn.meta", want, NULL, err);
    pthread_mutex_unlock(&k->mu);
    if (!rc) {
        rd_kafka_resp_err_t e = rd_kafka_flush(k->producer, OPEN_TIMEOUT_MS);
        if (e)
            rc = kerr(err, e, k->topic, "cannot write the topic's metadata record");
    }
out:
    reader_close(&rd);
    return rc;
}

static cairn_rc_t
k_open(const char *rest, const cairn_log_options_t *opts, void **impl, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    const struct rd_kafka_metadata *md = NULL;
    struct klog *k = cairn__calloc(1, sizeof(*k));

    if (!k)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cond, NULL);
    for (int i = 0; i < WSLOTS; i++)
        pthread_cond_init(&k->wslot[i], NULL);
    k->msg_timeout_ms = DEFAULT_MSG_TIMEOUT;
    k->hold_ms = 0; /* re-claim at once; see cairn.claim.hold.ms in README.md */
    k->snap_every = SNAP_EVERY_DEFAULT;
    k->read_only = opts && opts->read_only;
    k->max_record = opts && opts->max_record_bytes && opts->max_record_bytes < DEFAULT_MAX_RECORD
                        ? opts->max_record_bytes
                        : DEFAULT_MAX_RECORD;
    k->writer_id = random_id();
    if (!(k->url = cairn__strdup(rest))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    if ((rc = parse_url(k, rest, err)))
        goto out;
    k->ack_timeout_ms = k->msg_timeout_ms + 5000;
    if ((rc = make_handle(k, 0, &k->producer, err)))
        goto out;
    if (!(k->prkt = rd_kafka_topic_new(k->producer, k->topic, NULL))) {
        rc = kerr(err, rd_kafka_last_error(), k->topic, "cannot open the topic");
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->producer, 0, k->prkt, &md, OPEN_TIMEOUT_MS);
    if (e) {
        rc = kerr(err, e, k->brokers, "cannot read the topic's metadata from the brokers");
        if (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT)
            err && err->code == rc ? (void)snprintf(err->text, sizeof(err->text),
                                                    "no kafka broker of '%s' answered within %d ms",
                                                    k->brokers, OPEN_TIMEOUT_MS)
                                   : (void)0;
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        rd_kafka_resp_err_t te =
            md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        rc = cairn__error_setc(err,
                               te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? CAIRN_E_NOT_FOUND
                                                                             : CAIRN_E_UNAVAILABLE,
                               (int)te, 0, k->topic,
                               "topic '%s' is not available (%s): create it first "
                               "(see eventstore/README.md)",
                               k->topic, rd_kafka_err2str(te));
        goto out;
    }
    if (k->partitions && md->topics[0].partition_cnt != k->partitions) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, k->topic,
                              "topic '%s' has %d partitions, the url says %d", k->topic,
                              md->topics[0].partition_cnt, k->partitions);
        goto out;
    }
    k->partitions = md->topics[0].partition_cnt;
    if (!(k->parts = cairn__calloc((size_t)k->partitions, sizeof(*k->parts)))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    for (int p = 0; p < k->partitions; p++) {
        int64_t low = 0, high = 0;
        k->parts[p].id = p;
        cairn__rr_init(&k->parts[p].rr, 0);
        e = rd_kafka_query_watermark_offsets(k->producer, k->topic, p, &low, &high,
                                             OPEN_TIMEOUT_MS);
        if (e) {
            rc = kerr(err, e, k->topic, "cannot read the partition's watermarks");
            goto out;
        }
        if (low > 0) {
            rc = cairn__error_setc(err, CAIRN_E_CORRUPT, p, 0, k->topic,
                                   "partition %d of '%s' starts at offset %" PRId64
                                   ": records were deleted (data loss); refusing the topic",
                                   p, k->topic, low);
            goto out;
        }
    }
    if ((rc = check_meta(k, err)))
        goto out;
    retention_ask(k);
    if ((rc = make_handle(k, 1, &k->consumer, err)))
        goto out;
    if (!(k->crkt = rd_kafka_topic_new(k->consumer, k->topic, NULL)) ||
        !(k->queue = rd_kafka_queue_new(k->consumer))) {
        rc = kerr(err, rd_kafka_last_error(), k->topic, "cannot open the topic");
        goto out;
    }
    if (pthread_create(&k->thread, NULL, tailer_main, k) != 0) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "cannot start the tail thread");
        goto out;
    }
    k->thread_started = 1;
    *impl = k;
    k = NULL;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    k_close(k);
    return rc;
}

const cairn__log_backend_t cairn__kafka_backend = {
    .scheme = "kafka",
    .open = k_open,
    .close = k_close,
    .append_nowait = k_append_nowait,
    .wait_durable = k_wait_durable,
    .replay_partition = k_replay_partition,
    .read_stream = k_read_stream,
    .stream_version = k_stream_version,
    .partition_count = k_partition_count,
    .partition_of = k_partition_of,
    .end = k_end,
    .tail_open = k_tail_open,
    .tail_poll = k_tail_poll,
    .tail_checkpoint = k_tail_checkpoint,
    .tail_close = k_tail_close,
    .wait_append = k_wait_append,
};
