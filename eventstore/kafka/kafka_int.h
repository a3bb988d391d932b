/* SPDX-License-Identifier: MIT */
/*
 * kafka_int.h - private header of the Kafka backend (eventstore/kafka/): the
 * Java-compatible murmur2 partitioner and the reader rule, the two pure parts
 * that unit tests reach directly, and the settle hook.
 *
 * Invariants of struct cairn__rr (one per partition and per reader):
 * - `epoch` is the epoch of the latest valid claim read so far (0: none);
 *   a claim is valid iff its epoch is `epoch + 1`.
 * - `pending` is set iff records [0, pend_next) of append `pend_id` (of
 *   `pend_count` records, epoch `epoch`) were read contiguously and the
 *   append is not complete yet; the caller holds those records.
 * - `recent` holds the ids of the last CAIRN__RR_RECENT accepted appends
 *   (a ring): a repeat of one of them is skipped, an older repeat is not
 *   recognised (the bound is documented in eventstore/README.md). `table`
 *   indexes exactly the filled ring slots by a hash of their id.
 */
#ifndef CAIRN_EVENTSTORE_KAFKA_INT_H
#define CAIRN_EVENTSTORE_KAFKA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/eventstore.h"
#include "common.h"

/* ---- murmur2 (murmur2.c) ------------------------------------------------ */

/** @brief Kafka's murmur2 (seed 0x9747b28c) of @p len bytes, as Java's Utils.murmur2. */
uint32_t cairn__kafka_murmur2(const void *data, size_t len);
/** @brief The partition of key @p key: (murmur2 & 0x7fffffff) % @p partitions. */
int cairn__kafka_partition_of(const void *key, size_t len, int partitions);

/* ---- the reader rule (reader_rule.c) ------------------------------------ */

#define CAIRN__RR_ID_LEN 16
#define CAIRN__RR_RECENT 1024
#define CAIRN__RR_TABLE  2048 /* hash of the recent ids: power of two, load <= 1/2 */

enum cairn__rr_kind {
    CAIRN__RR_KIND_FOREIGN, /* no (or malformed) cairn headers */
    CAIRN__RR_KIND_EVENT,
    CAIRN__RR_KIND_CLAIM,
    CAIRN__RR_KIND_META
};

/** What the rule needs of one record (parsed from its headers). */
struct cairn__rr_meta {
    enum cairn__rr_kind kind;
    int64_t epoch; /* event: writer's epoch; claim: the claimed epoch */
    unsigned char append[CAIRN__RR_ID_LEN];
    uint32_t index; /* event: position within its append */
    uint32_t count; /* event: records in its append */
};

enum cairn__rr_verdict {
    CAIRN__RR_PENDING = 0,        /* part of an incomplete append: hold it */
    CAIRN__RR_COMPLETE,           /* completes the held append: accept held + this */
    CAIRN__RR_CLAIM_VALID,        /* a claim that is now the epoch in force */
    CAIRN__RR_SKIP_CLAIM_INVALID, /* a claim whose epoch is not 1 + the one in force */
    CAIRN__RR_SKIP_META,          /* the topic's metadata record */
    CAIRN__RR_SKIP_FOREIGN,       /* no cairn headers (written by another tool) */
    CAIRN__RR_SKIP_EPOCH,         /* written under an epoch not in force (fenced) */
    CAIRN__RR_SKIP_ORPHAN,        /* a piece of an append whose start was not read */
    CAIRN__RR_SKIP_DUPLICATE,     /* repeats a recently accepted append */
    CAIRN__RR_VERDICTS
};

struct cairn__rr {
    int64_t epoch;
    int pending;
    unsigned char pend_id[CAIRN__RR_ID_LEN];
    uint32_t pend_next;
    uint32_t pend_count;
    unsigned char recent[CAIRN__RR_RECENT][CAIRN__RR_ID_LEN];
    size_t recent_n;                       /* filled slots, at most CAIRN__RR_RECENT */
    size_t recent_head;                    /* next slot to overwrite */
    uint16_t table[CAIRN__RR_TABLE];       /* linear probing: ring slot + 1, 0 = empty */
    uint64_t verdicts[CAIRN__RR_VERDICTS]; /* how many records got each verdict */
    uint64_t dropped_records;              /* held records of appends cut short */
};

/** @brief Starts a rule at epoch @p epoch (0 at offset 0; a checkpoint's epoch otherwise). */
void cairn__rr_init(struct cairn__rr *rr, int64_t epoch);

/**
 * @brief Feeds the next record of the partition, in offset order.
 * @param[out] dropped the number of held records that this record made
 *             incomplete for good (the caller discards them), else 0.
 * @returns the verdict on this record.
 */
enum cairn__rr_verdict
cairn__rr_feed(struct cairn__rr *rr, const struct cairn__rr_meta *m, size_t *dropped);

/** @brief A short name of @p v ("skip-epoch"). */
const char *cairn__rr_verdict_name(enum cairn__rr_verdict v);

/* ---- the event header (reader_rule.c) ----------------------------------- */

/*
 * Every event record carries one binary header named "cairn" (after the
 * user's headers), CAIRN__RR_HEADER_LEN bytes, integers big-endian:
 *
 *   offset size field
 *   0      1    layout: CAIRN__RR_HEADER_V1 (another value: not ours, FOREIGN)
 *   1      8    stream version of this record (>= 1)
 *   9      8    writer's epoch (< 2^63)
 *   17     16   append id: writer's random 64-bit id, then its 64-bit counter
 *   33     4    index of this record within its append
 *   37     4    count of records in its append
 *   41     8    record time, ms since the Unix epoch (signed)
 *
 * One header instead of six text ones: librdkafka allocates each header
 * separately, and the parse is one name compare and fixed-offset loads.
 */
#define CAIRN__RR_HEADER     "cairn"
#define CAIRN__RR_HEADER_LEN 49
#define CAIRN__RR_HEADER_V1  1

/** The fields of the "cairn" header of one event record. */
struct cairn__rr_event {
    uint64_t version;
    int64_t epoch;
    unsigned char append[CAIRN__RR_ID_LEN];
    uint32_t index;
    uint32_t count;
    int64_t time_ms;
};

/** @brief Writes @p e as the value of the "cairn" header (CAIRN__RR_HEADER_LEN bytes). */
void cairn__rr_header_encode(const struct cairn__rr_event *e,
                             unsigned char out[CAIRN__RR_HEADER_LEN]);

/**
 * @brief Reads the value of a "cairn" header.
 * @returns 0, or -1 when @p len or the layout byte is not ours, the epoch
 *          does not fit int64_t or the version is 0 (@p e is then undefined).
 */
int cairn__rr_header_decode(const void *val, size_t len, struct cairn__rr_event *e);

/* ---- settling an append whose confirmation timed out (kafka_backend.c) --- */

/**
 * @brief Decides for good an append of this process whose wait_durable
 * returned CAIRN_E_TIMEOUT (CAIRN_ERR_OUTCOME_UNKNOWN): claims the append's
 * partition anew (fencing any other writer) and reads up to that claim.
 * @param ticket the ticket cairn_log_append_nowait gave for the append.
 * @returns CAIRN_OK when the append is in the log (accepted), CAIRN_E_CONFLICT
 *          when it is not and never will be, CAIRN_E_INVALID for a log that is
 *          not Kafka or an unknown ticket, CAIRN_E_UNAVAILABLE (RETRIABLE,
 *          OUTCOME_UNKNOWN) when the claim could not be made yet: try again.
 * Thread: any.
 */
cairn_rc_t cairn__kafka_settle(cairn_log_t *log, uint64_t ticket, cairn_error_t *err);

/* ---- index snapshots (index_snapshot.c) ---------------------------------- */

/*
 * A snapshot of one partition's reader state at an append boundary: what
 * the records [0, offset) leave behind (the rule's epoch and recent append
 * ids, the index stream -> version and offsets), so that a claim or a first
 * read continues from `offset` instead of 0. Only a cache: the format and
 * its checks are described at the top of index_snapshot.c.
 */

#define CAIRN__KSNAP_MAX_TOPIC 255
#define CAIRN__KSNAP_MAX_NAME  65535
#define CAIRN__KSNAP_MAX_BYTES ((size_t)1 << 31) /* the most a snapshot file may hold */

struct cairn__ksnap_head {
    int partition;
    int partitions;
    int64_t offset;       /* the snapshot covers [0, offset) */
    int64_t accepted_end; /* offset just past the last accepted record (<= offset) */
    int64_t end_epoch;    /* epoch in force at accepted_end */
    int64_t claim_ts;     /* timestamp (ms) of the valid claim in force */
    uint64_t claim_writer;
    uint64_t streams; /* how many cairn__ksnap_add calls follow begin */
};

/** @brief Starts a snapshot in @p b (reset first) from @p h and the rule @p rr
 * (which must hold no partial append). @returns CAIRN_OK, CAIRN_E_INVALID, CAIRN_E_NOMEM. */
cairn_rc_t cairn__ksnap_begin(cairn_buf_t *b,
                              const char *topic,
                              const struct cairn__ksnap_head *h,
                              const struct cairn__rr *rr,
                              cairn_error_t *err);
/** @brief Adds one stream: @p offs[i] is the offset of version i + 1, strictly increasing. */
cairn_rc_t cairn__ksnap_add(
    cairn_buf_t *b, const char *name, uint64_t version, const int64_t *offs, cairn_error_t *err);
/** @brief Ends the snapshot (appends its CRC32C). */
cairn_rc_t cairn__ksnap_end(cairn_buf_t *b, cairn_error_t *err);

/** Called once per stream of a snapshot being loaded; @p offs is borrowed.
 * Returns CAIRN_OK, or an error code (CAIRN_E_NOMEM, CAIRN_E_CORRUPT) that stops the load. */
typedef cairn_rc_t
cairn__ksnap_stream_cb(void *opaque, const char *name, uint64_t version, const int64_t *offs);

/**
 * @brief Checks and decodes a snapshot: magic, format, CRC32C, topic,
 * partition and partition count, every length against what remains.
 * @param[out] rr the rule as the snapshot left it (epoch, recent ids).
 * @returns CAIRN_OK; CAIRN_E_CORRUPT (anything wrong with it); CAIRN_E_NOMEM.
 * On failure @p cb may already have been called: the caller drops what it built.
 */
cairn_rc_t cairn__ksnap_load(const void *data,
                             size_t len,
                             const char *topic,
                             int partition,
                             int partitions,
                             struct cairn__ksnap_head *h,
                             struct cairn__rr *rr,
                             cairn__ksnap_stream_cb *cb,
                             void *opaque,
                             cairn_error_t *err);

/** @brief The snapshot file of a partition: DIR/<topic, %-escaped>-<partition>.ksnap.
 * @returns 0, or -1 when it does not fit @p size. */
int cairn__ksnap_path(char *buf, size_t size, const char *dir, const char *topic, int partition);
/** @brief Writes @p path atomically: temporary file, fsync, rename, fsync of the directory. */
cairn_rc_t
cairn__ksnap_write_file(const char *path, const void *data, size_t len, cairn_error_t *err);
/** @brief Reads a whole file of at most @p cap bytes (free *data with cairn__free).
 * @returns CAIRN_OK, CAIRN_E_NOT_FOUND, CAIRN_E_CORRUPT (too large, not a file), CAIRN_E_IO. */
cairn_rc_t
cairn__ksnap_read_file(const char *path, size_t cap, void **data, size_t *len, cairn_error_t *err);

/** What the snapshots of one partition did in this process (tests, figures). */
struct cairn__ksnap_stats {
    int64_t follow_from;     /* offset this process started reading the partition at */
    int64_t loaded_offset;   /* offset of the snapshot loaded, 0 when none was */
    uint64_t loads_rejected; /* snapshots found but ignored */
    uint64_t written;        /* snapshots written */
    int64_t written_offset;  /* offset of the last one written, 0 when none */
};

/** @brief The snapshot figures of partition @p partition of a Kafka log.
 * @returns CAIRN_OK or CAIRN_E_INVALID (not a kafka log, bad partition). Thread: any. */
cairn_rc_t cairn__kafka_snapshot_stats(cairn_log_t *log,
                                       int partition,
                                       struct cairn__ksnap_stats *out,
                                       cairn_error_t *err);

#endif
