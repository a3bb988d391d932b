/* SPDX-License-Identifier: MIT */
/*
 * reader_rule.c - the one reader rule of the Kafka backend, written once and
 * used by every reader (replay, read_stream, tail, the owner's own tail).
 *
 * Kafka has no conditional append, so several processes may write to one
 * partition; what makes the log correct is what readers accept. Fed the
 * records of one partition in offset order, the rule says for each one:
 *
 * - A claim (header cairn.claim = e) is valid iff e is one more than the
 *   epoch of the latest valid claim before it; a valid claim becomes the
 *   epoch in force. Invalid claims change nothing.
 * - An event record carries its writer's epoch, its append id and its index
 *   and count within that append. It is accepted iff its epoch is the epoch
 *   in force and its append's records stand contiguous and complete: the
 *   rule holds the records of an append until the last one is read
 *   (PENDING), then accepts them all (COMPLETE). Any other record in the
 *   middle (another append, a claim, a foreign record) cuts the held append
 *   short: its records are dropped for good, even if the rest follows.
 * - A repeat of an append accepted among the last CAIRN__RR_RECENT ones is
 *   skipped (a producer retry that was written twice, a copy run twice).
 *   The bound keeps memory at 20 KiB per partition and reader (the ids and
 *   a hash table over them); a repeat further back is not recognised.
 * - Records without our headers (written by other tools) and the topic's
 *   metadata record are skipped and counted.
 *
 * The rule's input (struct cairn__rr_meta) comes from a record's headers:
 * events carry it in the one binary "cairn" header, whose encoder and
 * decoder are at the end of this file (layout in kafka_int.h), so that the
 * writer and every reader agree byte for byte.
 *
 * The rule is pure: no I/O, no allocation. A checkpoint restarts it at an
 * append boundary with the epoch then in force (the recent ids are lost,
 * which only matters for repeats straddling the checkpoint).
 */
#include <string.h>

#include "kafka_int.h"

void cairn__rr_init(struct cairn__rr *rr, int64_t epoch)
{
    memset(rr, 0, sizeof(*rr));
    rr->epoch = epoch;
}

static size_t id_hash(const unsigned char *id)
{
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; i++) {
        a = a << 8 | id[i];
        b = b << 8 | id[8 + i];
    }
    uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return (size_t)(h >> 32) & (CAIRN__RR_TABLE - 1);
}

static int recent_has(const struct cairn__rr *rr, const unsigned char *id)
{
    for (size_t i = id_hash(id); rr->table[i]; i = (i + 1) & (CAIRN__RR_TABLE - 1))
        if (memcmp(rr->recent[rr->table[i] - 1], id, CAIRN__RR_ID_LEN) == 0)
            return 1;
    return 0;
}

/* Removes ring slot @p slot from the table (linear probing, backward shift). */
static void table_remove(struct cairn__rr *rr, size_t slot)
{
    const size_t mask = CAIRN__RR_TABLE - 1;
    size_t i = id_hash(rr->recent[slot]);
    while (rr->table[i] && rr->table[i] != slot + 1)
        i = (i + 1) & mask;
    if (!rr->table[i])
        return;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!rr->table[j])
            break;
        size_t home = id_hash(rr->recent[rr->table[j] - 1]);
        /* the entry at j may move to the hole at i unless its home lies
         * cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            rr->table[i] = rr->table[j];
            i = j;
        }
    }
    rr->table[i] = 0;
}

static void recent_add(struct cairn__rr *rr, const unsigned char *id)
{
    size_t slot = rr->recent_head;
    if (rr->recent_n == CAIRN__RR_RECENT)
        table_remove(rr, slot); /* the oldest id leaves the window */
    memcpy(rr->recent[slot], id, CAIRN__RR_ID_LEN);
    size_t i = id_hash(id);
    while (rr->table[i])
        i = (i + 1) & (CAIRN__RR_TABLE - 1);
    rr->table[i] = (uint16_t)(slot + 1);
    rr->recent_head = (slot + 1) % CAIRN__RR_RECENT;
    if (rr->recent_n < CAIRN__RR_RECENT)
        rr->recent_n++;
}

static enum cairn__rr_verdict
judge(struct cairn__rr *rr, const struct cairn__rr_meta *m, size_t *dropped)
{
    if (rr->pending) {
        if (m->kind == CAIRN__RR_KIND_EVENT && m->epoch == rr->epoch &&
            memcmp(m->append, rr->pend_id, CAIRN__RR_ID_LEN) == 0 && m->index == rr->pend_next &&
            m->count == rr->pend_count) {
            rr->pend_next++;
            if (rr->pend_next < rr->pend_count)
                return CAIRN__RR_PENDING;
            rr->pending = 0;
            recent_add(rr, m->append);
            return CAIRN__RR_COMPLETE;
        }
        /* Anything else in the middle cuts the held append short. */
        *dropped = rr->pend_next;
        rr->dropped_records += rr->pend_next;
        rr->pending = 0;
    }
    switch (m->kind) {
    case CAIRN__RR_KIND_CLAIM:
        if (m->epoch == rr->epoch + 1) {
            rr->epoch = m->epoch;
            return CAIRN__RR_CLAIM_VALID;
        }
        return CAIRN__RR_SKIP_CLAIM_INVALID;
    case CAIRN__RR_KIND_META:
        return CAIRN__RR_SKIP_META;
    case CAIRN__RR_KIND_FOREIGN:
        return CAIRN__RR_SKIP_FOREIGN;
    case CAIRN__RR_KIND_EVENT:
        break;
    }
    if (m->epoch < 1 || m->epoch != rr->epoch)
        return CAIRN__RR_SKIP_EPOCH;
    if (m->count == 0 || m->index >= m->count)
        return CAIRN__RR_SKIP_FOREIGN;
    if (recent_has(rr, m->append))
        return CAIRN__RR_SKIP_DUPLICATE;
    if (m->index != 0)
        return CAIRN__RR_SKIP_ORPHAN;
    if (m->count == 1) {
        recent_add(rr, m->append);
        return CAIRN__RR_COMPLETE;
    }
    rr->pending = 1;
    memcpy(rr->pend_id, m->append, CAIRN__RR_ID_LEN);
    rr->pend_next = 1;
    rr->pend_count = m->count;
    return CAIRN__RR_PENDING;
}

enum cairn__rr_verdict
cairn__rr_feed(struct cairn__rr *rr, const struct cairn__rr_meta *m, size_t *dropped)
{
    size_t d = 0;
    enum cairn__rr_verdict v = judge(rr, m, &d);
    rr->verdicts[v]++;
    if (dropped)
        *dropped = d;
    return v;
}

const char *cairn__rr_verdict_name(enum cairn__rr_verdict v)
{
    switch (v) {
    case CAIRN__RR_PENDING:
        return "pending";
    case CAIRN__RR_COMPLETE:
        return "complete";
    case CAIRN__RR_CLAIM_VALID:
        return "claim-valid";
    case CAIRN__RR_SKIP_CLAIM_INVALID:
        return "skip-claim-invalid";
    case CAIRN__RR_SKIP_META:
        return "skip-meta";
    case CAIRN__RR_SKIP_FOREIGN:
        return "skip-foreign";
    case CAIRN__RR_SKIP_EPOCH:
        return "skip-epoch";
    case CAIRN__RR_SKIP_ORPHAN:
        return "skip-orphan";
    case CAIRN__RR_SKIP_DUPLICATE:
        return "skip-duplicate";
    case CAIRN__RR_VERDICTS:
        break;
    }
    return "?";
}

/* ---- the event header ---------------------------------------------------- */

static void put_be(unsigned char *p, uint64_t x, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, x >>= 8)
        p[i] = (unsigned char)x;
}

static uint64_t get_be(const unsigned char *p, int bytes)
{
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x = x << 8 | p[i];
    return x;
}

void cairn__rr_header_encode(const struct cairn__rr_event *e,
                             unsigned char out[CAIRN__RR_HEADER_LEN])
{
    out[0] = CAIRN__RR_HEADER_V1;
    put_be(out + 1, e->version, 8);
    put_be(out + 9, (uint64_t)e->epoch, 8);
    memcpy(out + 17, e->append, CAIRN__RR_ID_LEN);
    put_be(out + 33, e->index, 4);
    put_be(out + 37, e->count, 4);
    put_be(out + 41, (uint64_t)e->time_ms, 8);
}

int cairn__rr_header_decode(const void *val, size_t len, struct cairn__rr_event *e)
{
    const unsigned char *p = val;
    if (!p || len != CAIRN__RR_HEADER_LEN || p[0] != CAIRN__RR_HEADER_V1)
        return -1;
    uint64_t epoch = get_be(p + 9, 8);
    e->version = get_be(p + 1, 8);
    if (epoch > INT64_MAX || e->version == 0)
        return -1;
    e->epoch = (int64_t)epoch;
    memcpy(e->append, p + 17, CAIRN__RR_ID_LEN);
    e->index = (uint32_t)get_be(p + 33, 4);
    e->count = (uint32_t)get_be(p + 37, 4);
    /* two's complement back: a time before 1970 stays negative */
    uint64_t t = get_be(p + 41, 8);
    e->time_ms = t > INT64_MAX ? -(int64_t)(~t) - 1 : (int64_t)t;
    return 0;
}
