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

#endif
