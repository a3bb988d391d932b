/* SPDX-License-Identifier: MIT */
/*
 * sdk.h - libcairn's service API: aggregates described with plain C
 * callbacks, commands validated against their registered schemas, and
 * cairn_handle(), which loads an aggregate (state cache, else the latest
 * usable snapshot and the events after it), decides, encodes the new events
 * in the Confluent wire format and appends them with the expected version it
 * loaded, retrying on version conflicts. docs/SDK.md is the user's guide.
 *
 * Objects:
 * - cairn_service_t: the log (a URL the service opens, or an open
 *   cairn_log_t it borrows), a serde (borrowed), a topic name for subject
 *   naming, the state cache and snapshot store, options.
 * - cairn_aggregate_t: one aggregate type added to a service from a
 *   cairn_aggregate_def_t (copied): its event and command types, each naming
 *   an Avro schema text, registered through the serde when added.
 * - cairn_emitter_t: what decide() emits to (events, or a domain rejection)
 *   and what an upcast hook emits to (the current form of an old event).
 *
 * Event records carry headers (DESIGN.md "Wire format"): cairn.type (the
 * event type name), cairn.id (a UUID v4), cairn.version (the registry's
 * schema id of the writer schema, decimal), cairn.correlation (the
 * command's correlation id, else its id), cairn.causation (the command id),
 * cairn.time (ms since 1970, decimal).
 *
 * Threading: a service, its aggregates and cairn_handle may be used from any
 * number of threads at once. Commands on one stream are serialised inside
 * the process (striped locks), so threads of one process do not conflict
 * with each other; other processes (Kafka) conflict and are retried.
 * Callbacks of an aggregate run in the calling thread, under the stream's
 * lock: they must not call cairn_handle on the same service.
 *
 * Ownership: arguments are borrowed (copied when kept); results are the
 * caller's as each function says.
 */
#ifndef CAIRN_SDK_H
#define CAIRN_SDK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cairn/cairn.h"
#include "cairn/eventstore.h"
#include "cairn/serde.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cairn_service cairn_service_t;
typedef struct cairn_aggregate cairn_aggregate_t;
typedef struct cairn_emitter cairn_emitter_t;

/* ---- UUIDs ---------------------------------------------------------------- */

/** Length of a UUID's text form without its NUL. */
#define CAIRN_UUID_LEN 36

/**
 * @brief Writes a random (version 4) UUID in its lowercase text form into
 * @p buf (CAIRN_UUID_LEN + 1 bytes), from getrandom(2).
 * @returns CAIRN_OK or CAIRN_E_IO when the kernel gives no randomness.
 */
CAIRN_API cairn_rc_t cairn_uuid_new(char buf[CAIRN_UUID_LEN + 1], cairn_error_t *err);

/* ---- the service ---------------------------------------------------------- */

typedef struct cairn_service_options {
    /* The log: either a URL the service opens (and closes), or an open log
       that it borrows (log_url then ignored). A Kafka URL without
       cairn.claim.hold.ms gets claim_hold_ms appended. */
    const char *log_url;
    cairn_log_t *log;
    const cairn_log_options_t *log_options; /* for log_url; may be NULL */
    cairn_serde_t *serde;                   /* borrowed, required; must outlive the service */
    const char *topic; /* subject naming (on Kafka: the topic; file: a name of the service's) */
    int max_conflict_retries; /* reloads after a version conflict; 0 = 5, <0 = none */
    unsigned snapshot_every;  /* snapshot each time a stream passes a multiple of N; 0 = off */
    /* Where snapshots go: a directory (file backend) or a Kafka URL of the
       snapshot topic. NULL: "DIR/snapshots" for log_url "file:DIR", the
       topic "<topic>.snapshots" on the same brokers for a Kafka log_url, and
       no snapshots for a borrowed log. */
    const char *snapshot_url;
    size_t cache_capacity;  /* streams in the state cache; 0 = 10000 */
    int no_cache;           /* 1: no state cache (every command replays) */
    long claim_hold_ms;     /* Kafka: cairn.claim.hold.ms when the URL has none; 0 = 500 */
    size_t recent_commands; /* command ids remembered per stream; 0 = 1000 */
} cairn_service_options_t;

/**
 * @brief Creates a service: opens the log when given a URL. Sends nothing to
 * the registry yet.
 * @returns CAIRN_OK, CAIRN_E_INVALID (missing serde or topic, bad URL), the
 *          log's open errors, CAIRN_E_NOMEM.
 */
CAIRN_API cairn_rc_t cairn_service_new(const cairn_service_options_t *opts,
                                       cairn_service_t **out,
                                       cairn_error_t *err);

/** @brief Frees the service, its aggregates and cached states; closes a log it opened. NULL ok. */
CAIRN_API void cairn_service_destroy(cairn_service_t *svc);

/** @brief The service's log (borrowed: lives as long as the service). */
CAIRN_API cairn_log_t *cairn_service_log(cairn_service_t *svc);

typedef struct cairn_service_stats {
    uint64_t commands;        /* cairn_handle calls that returned */
    uint64_t appended;        /* commands whose events were appended */
    uint64_t repeated;        /* commands answered from their earlier result */
    uint64_t rejected;        /* domain rejections */
    uint64_t invalid;         /* commands that failed validation */
    uint64_t conflicts;       /* version conflicts met (each retry counts) */
    uint64_t cache_hits;      /* loads answered by the state cache */
    uint64_t cache_misses;    /* loads that read the log */
    uint64_t events_replayed; /* events read from the log and applied on load */
    uint64_t snapshots_written;
    uint64_t snapshots_loaded;
    uint64_t snapshots_ignored; /* stale (code version / fingerprint) or corrupt */
} cairn_service_stats_t;

/** @brief A copy of the service's counters (each read atomically, not all at one instant). */
CAIRN_API void cairn_service_stats(cairn_service_t *svc, cairn_service_stats_t *out);

/* ---- aggregate types -------------------------------------------------------- */

/** What an upcast hook sees: one event as loaded from the log. */
typedef struct cairn_event_view {
    const char *stream;
    uint64_t version;         /* its stream version */
    const char *type;         /* its cairn.type header */
    int32_t writer_schema_id; /* the id in its wire prefix */
    int32_t reader_schema_id; /* the id of the type's schema here (0 when it has none) */
    const json_t *body;       /* decoded, resolved to the type's schema when it has one */
} cairn_event_view_t;

/**
 * Upcast hook: turns an old event into its current form by emitting, with
 * cairn_emit/cairn_emit_take, zero or more events of current types (the same
 * type to keep or reshape it, another to rename it, several to split it;
 * none drops it). Called on load for every event of the type it belongs to,
 * before apply.
 * @returns CAIRN_OK, or an error that fails the load (put detail in @p err).
 */
typedef cairn_rc_t(cairn_upcast_cb)(void *opaque,
                                    const cairn_event_view_t *event,
                                    cairn_emitter_t *out,
                                    cairn_error_t *err);

typedef struct cairn_event_type {
    const char *name;   /* cairn.type header value, e.g. "Deposited" */
    const char *schema; /* Avro schema text, current form. NULL only for a retired type:
                           its events are then read with their writer's schema */
    int retired; /* 1: an old name, only read on load; needs upcast; decide may not emit it */
    cairn_upcast_cb *upcast; /* may be NULL (events used as decoded) */
} cairn_event_type_t;

typedef struct cairn_command_type {
    const char *name;   /* the command type given to cairn_handle, e.g. "Deposit" */
    const char *schema; /* Avro schema text that commands of this type must fit */
} cairn_command_type_t;

/**
 * An aggregate type. State is an opaque pointer owned by the SDK between
 * calls (in its cache): init creates it, apply mutates it, decide only reads
 * it, free_state frees it.
 */
typedef struct cairn_aggregate_def {
    const char *name; /* e.g. "account"; part of snapshot identity */
    /* Bump when apply() changes meaning: snapshots of other code versions are ignored. */
    int code_version;
    const cairn_event_type_t *events;
    size_t n_events;
    const cairn_command_type_t *commands;
    size_t n_commands;
    void *opaque; /* passed to every callback */

    /** @returns a new initial state for @p stream, NULL on out-of-memory. */
    void *(*init)(void *opaque, const char *stream);
    /** @brief Folds one event into @p state. A failure fails the load. */
    cairn_rc_t (*apply)(
        void *opaque, void *state, const char *type, const json_t *event, cairn_error_t *err);
    /**
     * @brief Decides: emits events (cairn_emit*) and returns CAIRN_OK, or
     * rejects (cairn_reject; then CAIRN_E_REJECTED is what cairn_handle
     * returns, whatever this returns). Emitting nothing is a valid decision
     * (nothing is appended). Any other error is returned as is.
     */
    cairn_rc_t (*decide)(void *opaque,
                         const void *state,
                         const char *command_type,
                         const json_t *command,
                         cairn_emitter_t *out,
                         cairn_error_t *err);
    void (*free_state)(void *opaque, void *state);
    /* Snapshots (both or neither; neither = no snapshots of this type). */
    json_t *(*state_to_json)(void *opaque, const void *state);  /* new reference or NULL */
    void *(*state_from_json)(void *opaque, const json_t *json); /* NULL when unusable */
    const char *state_schema; /* optional: any text describing the state's form; fingerprinted */
} cairn_aggregate_def_t;

/**
 * @brief Adds an aggregate type: copies @p def and registers (or, with the
 * serde's no_auto_register, looks up) every schema it names under the
 * serde's subject for the service's topic.
 * @param[out] out borrowed, lives as long as the service.
 * @returns CAIRN_OK; CAIRN_E_INVALID (duplicate or missing names, a retired
 *          type without upcast, missing callbacks); CAIRN_E_INCOMPATIBLE
 *          when the registry refuses a schema (err->where is the subject);
 *          CAIRN_E_UNAVAILABLE / CAIRN_E_TIMEOUT (RETRIABLE); CAIRN_E_NOMEM.
 */
CAIRN_API cairn_rc_t cairn_service_add_aggregate(cairn_service_t *svc,
                                                 const cairn_aggregate_def_t *def,
                                                 cairn_aggregate_t **out,
                                                 cairn_error_t *err);

/* ---- emitters ------------------------------------------------------------- */

/** @brief Emits an event of @p type (copied: a deep copy of @p event). */
CAIRN_API cairn_rc_t cairn_emit(cairn_emitter_t *out, const char *type, const json_t *event);
/** @brief Emits an event, taking the caller's reference to @p event (also on failure;
 * a NULL @p event is CAIRN_E_NOMEM, so `cairn_emit_take(out, "T", json_pack(...))` is safe). */
CAIRN_API cairn_rc_t cairn_emit_take(cairn_emitter_t *out, const char *type, json_t *event);
/**
 * @brief Rejects the command (decide only): @p code is a short domain code
 * ("INSUFFICIENT_FUNDS"), the message a printf format. Events emitted before
 * are discarded. @returns CAIRN_E_REJECTED, for `return cairn_reject(...)`.
 */
CAIRN_API cairn_rc_t cairn_reject(cairn_emitter_t *out, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- commands ------------------------------------------------------------- */

typedef struct cairn_command {
    const char *stream;      /* the aggregate's stream id (the record key) */
    const char *type;        /* a command type of the aggregate */
    const json_t *body;      /* the command in the SDK's JSON form */
    const char *id;          /* command id; NULL: a new UUID (no idempotency then) */
    const char *correlation; /* NULL: the command id */
} cairn_command_t;

/** Longest domain rejection code kept, NUL included. */
#define CAIRN_REJECT_CODE_MAX 64

typedef struct cairn_result {
    uint64_t version;  /* the stream's version after the command (repeat: after its events) */
    size_t events;     /* events appended by this call (0 for a repeat or an empty decision) */
    int repeated;      /* 1: the command id was seen in this stream: earlier result returned */
    int32_t partition; /* of the stream; position fields valid when events or repeated */
    uint64_t position; /* log position of the command's last event */
    /* Lower bound for a projector's checkpoint that covers the events:
       "file:<position + 1>" or "kafka:<partition>=<position + 1>@0" (epoch 0:
       unknown); "" when none.
       A checkpoint at or past it (same partition) has processed them; it is
       for comparing (a projector wait), not a place to open a tail at. */
    char checkpoint[64];
    char reject_code[CAIRN_REJECT_CODE_MAX]; /* CAIRN_E_REJECTED: the domain code */
    char command_id[128]; /* the id used (given or generated; ids are at most 127 bytes) */
    json_t *violations;   /* CAIRN_E_INVALID: [{"path","message"}...]; release with
                             cairn_result_release */
} cairn_result_t;

/** @brief Releases what a result holds (violations) and zeroes it. Accepts NULL. */
CAIRN_API void cairn_result_release(cairn_result_t *res);

/**
 * @brief Handles one command: validate, load, check the command id, decide,
 * encode, append with the loaded version; on a version conflict drop the
 * cached state, reload and decide again (max_conflict_retries times).
 * @param[out] res zeroed and filled; release with cairn_result_release.
 * @returns CAIRN_OK (events appended, none to append, or a repeat);
 *   CAIRN_E_INVALID with res->violations (nothing appended);
 *   CAIRN_E_NOT_FOUND for an unknown command type;
 *   CAIRN_E_REJECTED with res->reject_code and err->text (nothing appended);
 *   CAIRN_E_CONFLICT_VERSION (flag CONFLICT) when the retries ran out;
 *   registry errors (CAIRN_E_UNAVAILABLE, CAIRN_E_TIMEOUT: flag RETRIABLE);
 *   append errors: OUTCOME_UNKNOWN (call again with the same command id:
 *   the retry reloads from the log and returns the earlier result if the
 *   append happened), FATAL (CAIRN_E_IO_FSYNC: recreate the service);
 *   CAIRN_E_CONFLICT (Kafka: fenced, or the partition is held by another
 *   writer; RETRIABLE), CAIRN_E_NOMEM.
 * Thread: any; commands on one stream are serialised within the process.
 */
CAIRN_API cairn_rc_t cairn_handle(cairn_aggregate_t *agg,
                                  const cairn_command_t *cmd,
                                  cairn_result_t *res,
                                  cairn_error_t *err);

/**
 * @brief Loads @p stream (cache, snapshot, events) and returns its state
 * through the aggregate's state_to_json.
 * @param[out] out a new JSON value; @param[out] version may be NULL.
 * @returns CAIRN_OK, CAIRN_E_INVALID (no state_to_json), load errors.
 */
CAIRN_API cairn_rc_t cairn_aggregate_state_json(cairn_aggregate_t *agg,
                                                const char *stream,
                                                json_t **out,
                                                uint64_t *version,
                                                cairn_error_t *err);

/** @brief Drops @p stream's cached state (the next command reloads it). */
CAIRN_API void cairn_aggregate_forget(cairn_aggregate_t *agg, const char *stream);

#ifdef __cplusplus
}
#endif
#endif
