/* SPDX-License-Identifier: MIT */
/*
 * sdk_int.h - private umbrella of the service side of libcairn (sdk.h):
 * the service and aggregate structs, the loaded-aggregate entry that the
 * state cache keeps, the recent-command window, the state cache and the
 * snapshot store. registry_client_int.h and avro_codec.h are the other
 * engineers' private headers of this folder.
 *
 * Invariants:
 * - struct cairn__entry: `version` is the stream version that `state`
 *   reflects (0: initial state); `position`/`partition` locate the record of
 *   that version (valid when version > 0); `recent` holds at most
 *   svc->recent_max command ids, oldest overwritten first.
 * - An entry is either in the state cache or held by exactly one thread,
 *   the one holding its stream's stripe lock (cairn__cache_take detaches it).
 */
#ifndef CAIRN_SDK_INT_H
#define CAIRN_SDK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cairn/sdk.h"
#include "common.h"

#define CAIRN__SDK_STRIPES 256
#define CAIRN__CMD_ID_MAX  127
#define CAIRN__LOG_CTX     "sdk"

/* ---- recent command ids of one stream ------------------------------------ */

struct cairn__cmdrec {
    uint64_t hash;
    char *id;
    uint64_t version; /* stream version of the command's last event */
    int32_t partition;
    uint64_t position; /* position of that event */
};

/* Until full (n < cap) items[0..n) are in order, oldest first, and head == n;
 * the array grows by doubling up to cap. Once full it is a ring whose oldest
 * entry is at head. */
struct cairn__recent {
    struct cairn__cmdrec *items;
    size_t n, alloc, cap, head;
};

void cairn__recent_init(struct cairn__recent *r, size_t cap);
void cairn__recent_release(struct cairn__recent *r);
const struct cairn__cmdrec *cairn__recent_find(const struct cairn__recent *r, const char *id);
/** @brief Records (or updates, when @p id is the newest) a command's last event. */
cairn_rc_t cairn__recent_put(
    struct cairn__recent *r, const char *id, uint64_t version, int32_t partition, uint64_t pos);
uint64_t cairn__hash64(const void *p, size_t n);

/* ---- a loaded aggregate --------------------------------------------------- */

struct cairn__entry {
    struct cairn_aggregate *agg;
    char *stream;
    uint64_t hash; /* of stream */
    void *state;
    uint64_t version;
    int32_t partition;
    uint64_t position;
    struct cairn__recent recent;
    int from_cache; /* set by cairn__load: 1 when this load was a cache hit */
    /* cache links */
    struct cairn__entry *hnext, *lru_prev, *lru_next;
};

void cairn__entry_free(struct cairn__entry *e);

/* ---- the state cache (state_cache.c) --------------------------------------- */

struct cairn__cache {
    pthread_mutex_t mu;
    struct cairn__entry **slots;
    size_t nslots, n, capacity;
    struct cairn__entry *lru_head, *lru_tail; /* head = most recent */
};

cairn_rc_t cairn__cache_init(struct cairn__cache *c, size_t capacity);
void cairn__cache_release(struct cairn__cache *c);
/** @brief Detaches and returns the entry of (@p agg, @p stream), or NULL. Locks: cache. */
struct cairn__entry *
cairn__cache_take(struct cairn__cache *c, const struct cairn_aggregate *agg, const char *stream);
/** @brief Inserts @p e (not present), evicting the least recently used beyond capacity. */
void cairn__cache_put(struct cairn__cache *c, struct cairn__entry *e);

/* ---- types --------------------------------------------------------------- */

struct cairn__evtype {
    char *name;
    char *schema_text; /* NULL for a retired type read with its writer's schema */
    int retired;
    cairn_upcast_cb *upcast;
    cairn_registered_schema_t *schema; /* NULL when schema_text is NULL */
};

struct cairn__cmdtype {
    char *name;
    char *schema_text;
    cairn_registered_schema_t *schema;
};

struct cairn_aggregate {
    struct cairn_service *svc;
    cairn_aggregate_def_t def; /* callbacks and opaque; string members point below */
    char *name;
    char *state_schema;
    struct cairn__evtype *events;
    size_t n_events;
    struct cairn__cmdtype *commands;
    size_t n_commands;
    char fingerprint[17]; /* hex of a 64-bit hash of the schemas in force */
    struct cairn_aggregate *next;
};

/* The fields of cairn_service_stats_t, each atomic. */
struct cairn__stats {
    _Atomic uint64_t commands, appended, repeated, rejected, invalid, conflicts, cache_hits,
        cache_misses, events_replayed, snapshots_written, snapshots_loaded, snapshots_ignored;
};

struct cairn_service {
    cairn_log_t *log;
    int owns_log;
    int is_kafka;
    cairn_serde_t *serde;
    char *topic;
    int max_retries;
    unsigned snapshot_every;
    char *snapshot_url; /* NULL: no snapshots */
    int snapshot_kafka;
    cairn_log_t *snap_log; /* Kafka snapshot topic, opened on first use */
    int snap_failed;       /* opening it failed: snapshots off, said once */
    pthread_mutex_t snap_mu;
    long claim_hold_ms;
    size_t recent_max;
    int no_cache;
    struct cairn__cache cache;
    pthread_mutex_t stripes[CAIRN__SDK_STRIPES];
    pthread_mutex_t mu; /* the aggregates list */
    struct cairn_aggregate *aggs;
    struct cairn__stats stats;
};

/* Counters are relaxed atomics: 16 callers must not meet on a lock to count. */
#define CAIRN__STAT_ADD(svc, field, v)                                                             \
    atomic_fetch_add_explicit(&(svc)->stats.field, (uint64_t)(v), memory_order_relaxed)

/* ---- emitters (service.c) --------------------------------------------------- */

struct cairn__emitted {
    char *type;
    json_t *body;
};

struct cairn_emitter {
    struct cairn_aggregate *agg;
    int for_upcast; /* upcast hooks emit current types only */
    struct cairn__emitted *items;
    size_t n, cap;
    int rejected;
    char reject_code[CAIRN_REJECT_CODE_MAX];
    char reject_text[320];
    cairn_rc_t failed; /* a failed emit (NOMEM, unknown type) */
    char failed_text[160];
};

void cairn__emitter_init(struct cairn_emitter *em, struct cairn_aggregate *agg, int for_upcast);
void cairn__emitter_reset(struct cairn_emitter *em);
void cairn__emitter_release(struct cairn_emitter *em);

const struct cairn__evtype *cairn__evtype_find(const struct cairn_aggregate *agg, const char *name);

/* ---- load (aggregate.c) ---------------------------------------------------- */

/**
 * @brief The entry of @p stream: from the cache (detached), else built from
 * the latest usable snapshot and the events after it. With @p fresh, a
 * cached entry is also brought up to the log's version (reads; commands
 * rely on their append's expected version instead).
 * Locks: the caller holds the stream's stripe lock.
 */
cairn_rc_t cairn__load(struct cairn_aggregate *agg,
                       const char *stream,
                       int fresh,
                       struct cairn__entry **out,
                       cairn_error_t *err);
/** @brief Returns an entry to the cache (or frees it when caching is off). */
void cairn__entry_keep(struct cairn_aggregate *agg, struct cairn__entry *e);
pthread_mutex_t *cairn__stripe(struct cairn_service *svc, const char *stream);

/* ---- snapshots (snapshot.c) ------------------------------------------------ */

/** @brief Fills @p e from the latest usable snapshot. @returns CAIRN_OK, or
 * CAIRN_DONE when there is none usable (e untouched). Never fails otherwise. */
cairn_rc_t cairn__snapshot_load(struct cairn_aggregate *agg, struct cairn__entry *e);
/** @brief Writes a snapshot of @p e; failures are logged, never returned. */
void cairn__snapshot_save(struct cairn_aggregate *agg, const struct cairn__entry *e);
/** @brief Bytes of a snapshot (for tests): a new buffer, cairn_free. */
char *
cairn__snapshot_encode(struct cairn_aggregate *agg, const struct cairn__entry *e, size_t *len);
/** @brief Checks and parses snapshot bytes. @returns CAIRN_OK, CAIRN_DONE (unusable). */
cairn_rc_t cairn__snapshot_decode(struct cairn_aggregate *agg,
                                  const char *stream,
                                  const void *data,
                                  size_t len,
                                  struct cairn__entry *e);
/** @brief The file of @p stream's snapshot under @p dir, into @p buf. */
cairn_rc_t cairn__snapshot_path(const char *dir, const char *stream, char *buf, size_t size);

/** @brief Copies @p src into @p dst unless @p dst is NULL or holds an error already. */
void cairn__error_copy(cairn_error_t *dst, const cairn_error_t *src);

#endif
