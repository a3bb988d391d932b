/* SPDX-License-Identifier: MIT */
/*
 * projections.h - the private API of projections/: declarative projector
 * specs (spec.c), the sinks that hold read models and their checkpoints
 * (sink_pg.c, sink_redis.c) and the runner that feeds them from the log
 * (runner.c). `cairn projections` (cli/cmd_projections.c) is its one user.
 *
 * Invariants:
 * - A spec is immutable once loaded; a sink and a runner only read it.
 * - A sink's checkpoint is written in the same unit of work as the writes of
 *   the events it covers (PostgreSQL: one transaction; Redis: one
 *   MULTI/EXEC), so a crash of the runner never applies an event twice nor
 *   skips one. The checkpoint is the log's own string (cairn_tail_checkpoint).
 * - Every name a sink writes under (table, key prefix, checkpoint row/key)
 *   derives from the spec plus an optional `target` suffix given at open, so
 *   that a rebuild can write a shadow copy next to the live one.
 *
 * Threading: one sink per thread (each owns its PGconn / redisContext); a
 * runner starts one thread per projector.
 */
#ifndef CAIRN_PROJECTIONS_H
#define CAIRN_PROJECTIONS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cairn/cairn.h"
#include "cairn/eventstore.h"
#include "cairn/registry_client.h"
#include "common.h"

/* ---- specs (spec.c) ----------------------------------------------------- */

typedef enum cairn__pj_sink_kind {
    CAIRN__PJ_SINK_POSTGRES = 1,
    CAIRN__PJ_SINK_REDIS,
    CAIRN__PJ_SINK_CODE, /* a code projector in a shared library (plugin.c) */
} cairn__pj_sink_kind_t;

/* Where a value comes from: a JSON pointer into the event's value, a
   metadata item of the record, or a constant. */
typedef enum cairn__pj_src_kind {
    CAIRN__PJ_SRC_POINTER = 1,
    CAIRN__PJ_SRC_STREAM,
    CAIRN__PJ_SRC_VERSION,
    CAIRN__PJ_SRC_TYPE,
    CAIRN__PJ_SRC_POSITION,
    CAIRN__PJ_SRC_TIMESTAMP,
    CAIRN__PJ_SRC_CONST,
} cairn__pj_src_kind_t;

typedef struct cairn__pj_src {
    cairn__pj_src_kind_t kind;
    char *pointer;    /* POINTER: "/a/b" */
    json_t *constant; /* CONST: a string, number or boolean (owned) */
} cairn__pj_src_t;

/* A key template such as "account:{/id}": literal parts and sources. */
typedef struct cairn__pj_tmpl_part {
    char *literal; /* NULL when this part is a source */
    cairn__pj_src_t src;
} cairn__pj_tmpl_part_t;

typedef struct cairn__pj_tmpl {
    cairn__pj_tmpl_part_t *parts;
    size_t n;
    char *text; /* as written in the spec */
} cairn__pj_tmpl_t;

typedef enum cairn__pj_op {
    CAIRN__PJ_PG_UPSERT = 1,
    CAIRN__PJ_PG_DELETE,
    CAIRN__PJ_R_HSET,
    CAIRN__PJ_R_HDEL,
    CAIRN__PJ_R_DEL,
    CAIRN__PJ_R_SET,
    CAIRN__PJ_R_ZADD,
    CAIRN__PJ_R_ZREM,
    CAIRN__PJ_R_INCRBY,
    CAIRN__PJ_R_HINCRBY,
} cairn__pj_op_t;

/* One column (PostgreSQL) or hash field (Redis) an action sets. */
typedef struct cairn__pj_assign {
    char *name;    /* hash field name (Redis) */
    size_t column; /* index into the spec's columns (PostgreSQL) */
    int add;       /* PostgreSQL: column = column + value (a counter) */
    cairn__pj_src_t src;
} cairn__pj_assign_t;

typedef struct cairn__pj_action {
    cairn__pj_op_t op;
    char *where; /* JSON pointer of the action in the spec, for messages */
    cairn__pj_assign_t *assigns;
    size_t nassigns;
    cairn__pj_tmpl_t key;    /* Redis */
    cairn__pj_tmpl_t member; /* Redis: zadd/zrem member, hincrby/hdel field */
    cairn__pj_src_t value;   /* Redis: zadd score, incrby/hincrby amount, set value */
} cairn__pj_action_t;

typedef struct cairn__pj_handler {
    char *type; /* the event type (header cairn.type) */
    cairn__pj_action_t *actions;
    size_t nactions;
} cairn__pj_handler_t;

#define CAIRN__PJ_MAX_COLUMNS 64

typedef struct cairn__pj_column {
    char *name;
    char *type; /* normalised SQL type name */
    int key;
} cairn__pj_column_t;

typedef struct cairn__pj_spec {
    char *name;
    char *path; /* the file it came from */
    size_t batch_size;
    cairn__pj_sink_kind_t sink;
    /* PostgreSQL */
    char *conninfo;
    char *table;
    cairn__pj_column_t *columns;
    size_t ncolumns;
    /* Redis */
    char *host;
    int port;
    int db;
    char *password;
    char *prefix; /* prepended to every key the projector writes */
    /* code */
    char *library;     /* path of the shared library */
    char *config_json; /* the spec's "config", as JSON text (free()) */
    /* events */
    char **types;          /* the declared event types */
    json_t *type_fields;   /* type -> array of declared field pointers, or null */
    json_t *type_subjects; /* type -> registry subject (string), when declared */
    size_t ntypes;
    cairn__pj_handler_t *handlers;
    size_t nhandlers;
    int on_error_park; /* "on_error": "park": poison events go to the dead letters */
} cairn__pj_spec_t;

/**
 * @brief Loads and checks a spec file. A JSON syntax error names the line and
 * column; a semantic one the JSON pointer of the bad member (err->where,
 * also in err->text), e.g. "/on/Deposited/0/set/balance".
 * @returns CAIRN_OK, CAIRN_E_INVALID_JSON, CAIRN_E_INVALID, CAIRN_E_IO, CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__pj_spec_load(const char *path, cairn__pj_spec_t **out, cairn_error_t *err);
/** @brief Same from a string (tests); @p path only names it in messages. */
cairn_rc_t cairn__pj_spec_parse(const char *text,
                                const char *path,
                                cairn__pj_spec_t **out,
                                cairn_error_t *err);
void cairn__pj_spec_destroy(cairn__pj_spec_t *spec);
/**
 * @brief Checks the declared types that name a registry subject: the subject
 * must exist, and every field an action of that type reads must be a field
 * of the subject's latest (Avro record) schema.
 * @returns CAIRN_OK, CAIRN_E_INVALID (err->where: the pointer of the
 *          subject or of the action), or the registry client's error.
 */
cairn_rc_t cairn__pj_spec_check_registry(const cairn__pj_spec_t *spec,
                                         cairn_registry_client_t *client,
                                         cairn_error_t *err);
/** @brief The handler of @p type, or NULL when the projector ignores it. */
const cairn__pj_handler_t *cairn__pj_spec_handler(const cairn__pj_spec_t *spec, const char *type);

/* ---- events and values --------------------------------------------------- */

/** One decoded event as sinks see it (borrowed from the runner for one batch). */
typedef struct cairn__pj_event {
    const cairn__pj_handler_t *handler;
    json_t *value; /* the decoded value (owned by the batch) */
    char *stream;
    char *type;
    uint64_t version;
    uint64_t position;
    int64_t timestamp_ms;
    int32_t partition;
    int replaying; /* a replay from the log's start, before the end seen at start */
} cairn__pj_event_t;

/**
 * @brief The text of @p src for @p ev into @p out (reset first).
 * @param[out] is_null set when the value is JSON null (SQL NULL).
 * @returns CAIRN_OK or CAIRN_E_INVALID (a missing member, an object where a
 *          scalar is needed: err->text says which).
 */
cairn_rc_t cairn__pj_src_text(const cairn__pj_src_t *src,
                              const cairn__pj_event_t *ev,
                              cairn_buf_t *out,
                              int *is_null,
                              cairn_error_t *err);
/** @brief The text of a key template for @p ev, appended to @p out. */
cairn_rc_t cairn__pj_tmpl_text(const cairn__pj_tmpl_t *t,
                               const cairn__pj_event_t *ev,
                               cairn_buf_t *out,
                               cairn_error_t *err);
/** @brief RFC 6901: the member of @p root at @p pointer, or NULL (borrowed). */
json_t *cairn__pj_pointer_get(json_t *root, const char *pointer);

/* ---- sinks (sink_pg.c, sink_redis.c) ---------------------------------- */

typedef struct cairn__pj_sink cairn__pj_sink_t;

/** What a sink remembers of a projector: its checkpoint and state. */
typedef struct cairn__pj_state {
    char checkpoint[CAIRN_CHECKPOINT_MAX]; /* "" when none */
    uint64_t events;                       /* events processed so far */
    char poison[512];                      /* "" unless stopped on a poison event */
    char updated_at[64];                   /* as the sink wrote it, "" when none */
} cairn__pj_state_t;

/** Connection retry policy: @p attempts tries, waits doubling from @p backoff_ms. */
typedef struct cairn__pj_retry {
    int attempts;
    long backoff_ms;
} cairn__pj_retry_t;

/**
 * @brief Connects to the spec's sink (bounded retries) and creates what it
 * needs (PostgreSQL: the checkpoint table and the read model table).
 * @param target "" or NULL for the live read model, else a suffix naming a
 *        shadow copy (rebuild).
 * @returns CAIRN_OK, CAIRN_E_UNAVAILABLE (flag RETRIABLE) after the retries,
 *          CAIRN_E_INVALID (the server refused the table or statements).
 */
cairn_rc_t cairn__pj_sink_open(const cairn__pj_spec_t *spec,
                               const char *target,
                               const cairn__pj_retry_t *retry,
                               cairn__pj_sink_t **out,
                               cairn_error_t *err);
void cairn__pj_sink_close(cairn__pj_sink_t *s);
/** @brief Reads the projector's state; a missing checkpoint is CAIRN_OK with "". */
cairn_rc_t cairn__pj_sink_state(cairn__pj_sink_t *s, cairn__pj_state_t *st, cairn_error_t *err);
/**
 * @brief Applies @p n events and then sets the checkpoint to @p checkpoint and
 * the event count to @p events, as one unit.
 * @param[out] failed_at the index of the event that failed (poison), or -1.
 * @returns CAIRN_OK; CAIRN_E_UNAVAILABLE (RETRIABLE: reconnect and re-read
 *          the state, the batch's outcome is in the checkpoint); CAIRN_E_INVALID
 *          for an event the sink refused (poison; err->text says whether the
 *          batch was partly applied).
 */
cairn_rc_t cairn__pj_sink_apply(cairn__pj_sink_t *s,
                                const cairn__pj_event_t *evs,
                                size_t n,
                                const char *checkpoint,
                                uint64_t events,
                                long *failed_at,
                                cairn_error_t *err);
/**
 * @brief Whether the sink can split an apply into cairn__pj_sink_send and
 * cairn__pj_sink_finish (Redis), so that the runner decodes the next batch
 * while the server runs this one.
 */
int cairn__pj_sink_can_send(const cairn__pj_sink_t *s);
/**
 * @brief The first half of cairn__pj_sink_apply: writes the batch and its
 * checkpoint to the server as one unit and returns without its outcome.
 * Until cairn__pj_sink_finish, the sink's connection must not be used (no
 * other call on @p s) and @p evs must stay alive.
 * @returns as cairn__pj_sink_apply (CAIRN_E_INVALID: an event that cannot be
 *          written; nothing was sent).
 */
cairn_rc_t cairn__pj_sink_send(cairn__pj_sink_t *s,
                               const cairn__pj_event_t *evs,
                               size_t n,
                               const char *checkpoint,
                               uint64_t events,
                               long *failed_at,
                               cairn_error_t *err);
/**
 * @brief The second half: reads and checks the outcome of the batch sent
 * (@p evs, @p n as given to cairn__pj_sink_send). The batch counts as applied
 * only when this returns CAIRN_OK.
 * @returns as cairn__pj_sink_apply.
 */
cairn_rc_t cairn__pj_sink_finish(cairn__pj_sink_t *s,
                                 const cairn__pj_event_t *evs,
                                 size_t n,
                                 long *failed_at,
                                 cairn_error_t *err);
/**
 * @brief Optionally prepares the batch the next cairn__pj_sink_send will get
 * (same events, @p checkpoint and @p events), without using the connection,
 * so that it may run while another batch is in flight. A send with other
 * arguments prepares again. @returns CAIRN_OK or CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__pj_sink_prepare(cairn__pj_sink_t *s,
                                  const cairn__pj_event_t *evs,
                                  size_t n,
                                  const char *checkpoint,
                                  uint64_t events,
                                  cairn_error_t *err);
/**
 * @brief Whether the sink can fold events one at a time into a pending batch
 * (PostgreSQL's set-based batches), for the runner's replay batches: a batch
 * then costs memory per key it touches, not per event, and its decoded
 * values can go as soon as they are folded.
 */
int cairn__pj_sink_can_fold(const cairn__pj_sink_t *s);
/**
 * @brief Folds @p ev into the pending batch (opening one), without using the
 * connection: it may run while another batch is in flight.
 * @param[out] rows the rows (keys) the pending batch holds now.
 * @returns CAIRN_OK; CAIRN_AGAIN when the event cannot be folded (the
 *          pending batch is dropped: apply those events the other way);
 *          CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__pj_sink_fold(cairn__pj_sink_t *s,
                               const cairn__pj_event_t *ev,
                               size_t *rows,
                               cairn_error_t *err);
/** @brief Drops the pending batch. */
void cairn__pj_sink_fold_drop(cairn__pj_sink_t *s);
/**
 * @brief Sends the pending batch (possibly empty) with its checkpoint as one
 * unit, as cairn__pj_sink_send does; cairn__pj_sink_finish (with no
 * events) reads its outcome, CAIRN_AGAIN there meaning the server refused
 * it and applied nothing.
 * @returns CAIRN_OK; CAIRN_AGAIN (not sent: apply those events the other
 *          way); CAIRN_E_UNAVAILABLE; CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__pj_sink_send_fold(cairn__pj_sink_t *s,
                                    const char *checkpoint,
                                    uint64_t events,
                                    cairn_error_t *err);
/** @brief Drops the read model and the checkpoint (`cairn projections reset`). */
cairn_rc_t cairn__pj_sink_reset(cairn__pj_sink_t *s, cairn_error_t *err);
/** @brief Records that the projector stopped on a poison event (Redis: it must be reset). */
cairn_rc_t cairn__pj_sink_mark_poison(cairn__pj_sink_t *s, const char *why, cairn_error_t *err);

/* Sink back ends behind cairn__pj_sink_* (one table per kind). */
struct cairn__pj_sink_ops {
    cairn_rc_t (*open)(cairn__pj_sink_t *s, cairn_error_t *err);
    void (*close)(cairn__pj_sink_t *s);
    cairn_rc_t (*state)(cairn__pj_sink_t *s, cairn__pj_state_t *st, cairn_error_t *err);
    cairn_rc_t (*apply)(cairn__pj_sink_t *s,
                        const cairn__pj_event_t *evs,
                        size_t n,
                        const char *checkpoint,
                        uint64_t events,
                        long *failed_at,
                        cairn_error_t *err);
    cairn_rc_t (*reset)(cairn__pj_sink_t *s, cairn_error_t *err);
    cairn_rc_t (*mark_poison)(cairn__pj_sink_t *s, const char *why, cairn_error_t *err);
    /* Optional (NULL: apply only): apply split in two, see cairn__pj_sink_send. */
    cairn_rc_t (*send)(cairn__pj_sink_t *s,
                       const cairn__pj_event_t *evs,
                       size_t n,
                       const char *checkpoint,
                       uint64_t events,
                       long *failed_at,
                       cairn_error_t *err);
    cairn_rc_t (*finish)(cairn__pj_sink_t *s,
                         const cairn__pj_event_t *evs,
                         size_t n,
                         long *failed_at,
                         cairn_error_t *err);
    /* Optional: see cairn__pj_sink_prepare. */
    cairn_rc_t (*prepare)(cairn__pj_sink_t *s,
                          const cairn__pj_event_t *evs,
                          size_t n,
                          const char *checkpoint,
                          uint64_t events,
                          cairn_error_t *err);
    /* Optional (NULL: not supported): see cairn__pj_sink_fold. */
    int (*can_fold)(const cairn__pj_sink_t *s);
    cairn_rc_t (*fold)(cairn__pj_sink_t *s,
                       const cairn__pj_event_t *ev,
                       size_t *rows,
                       cairn_error_t *err);
    void (*fold_drop)(cairn__pj_sink_t *s);
    cairn_rc_t (*send_fold)(cairn__pj_sink_t *s,
                            const char *checkpoint,
                            uint64_t events,
                            cairn_error_t *err);
};

struct cairn__pj_sink {
    const struct cairn__pj_sink_ops *ops;
    const cairn__pj_spec_t *spec;
    char *target; /* "" or a shadow suffix */
    cairn__pj_retry_t retry;
    void *impl;
};

extern const struct cairn__pj_sink_ops cairn__pj_sink_pg_ops;
extern const struct cairn__pj_sink_ops cairn__pj_sink_redis_ops;
extern const struct cairn__pj_sink_ops cairn__pj_sink_code_ops;

/* ---- checkpoints (checkpoint.c) ----------------------------------------- */

#define CAIRN__PJ_MAX_PARTITIONS 1024

/**
 * @brief Parses a log checkpoint ("file:N", "kafka:p=o@e,...", "" = start)
 * into the next position per partition (absent partitions: 0).
 * @returns CAIRN_OK or CAIRN_E_INVALID.
 */
cairn_rc_t cairn__pj_checkpoint_positions(const char *checkpoint,
                                          uint64_t *pos,
                                          int npartitions,
                                          cairn_error_t *err);

/* ---- the runner (runner.c) ---------------------------------------------- */

typedef enum cairn__pj_values {
    CAIRN__PJ_VALUES_AUTO = 0, /* wire format when byte 0 is 0, else JSON */
    CAIRN__PJ_VALUES_JSON,
    CAIRN__PJ_VALUES_WIRE,
} cairn__pj_values_t;

/** A projector's progress as the runner's main thread reports it. */
typedef struct cairn__pj_progress {
    const char *name;
    uint64_t events;    /* processed in total (as the checkpoint counts) */
    uint64_t processed; /* positions covered by the checkpoint, summed over partitions */
    uint64_t total;     /* the log's end, summed over partitions */
    uint64_t lag;       /* total - processed, never below 0 */
    uint64_t batches;   /* batches applied in this run */
    uint64_t folded;    /* of them, folded as they were decoded (catching up) */
    double events_per_s;
    double eta_s; /* lag / the rate positions were covered since the last report; -1: unknown */
    int caught_up;
    int failed;
    int done;
    const char *error; /* when failed */
} cairn__pj_progress_t;

typedef void(cairn__pj_progress_cb)(void *opaque,
                                    const cairn__pj_progress_t *p,
                                    size_t n,
                                    int final);

typedef struct cairn__pj_run_opts {
    const char *log_url;
    const char *registry_url; /* NULL: wire-format values cannot be decoded */
    cairn__pj_values_t values;
    int exit_at_end;         /* stop each projector once it reached the log's end */
    cairn__pj_retry_t retry; /* sink connections */
    int progress_ms;         /* how often progress_cb runs; 0 = 1000 */
    cairn__pj_progress_cb *progress_cb;
    void *progress_opaque;
    volatile sig_atomic_t *stop; /* set by a signal handler */
    /* A rebuild (rebuild.c): write to the shadow copy named by `target`, flag
       every event `replaying`, and stop once the lag is at most `swap_lag`. */
    const char *target;
    uint64_t swap_lag;
} cairn__pj_run_opts_t;

/**
 * @brief Runs the projectors, one thread each, until *stop, or (exit_at_end)
 * until each has reached the log's end, or until each has failed.
 * @returns CAIRN_OK when none failed; else the first failure (err names the
 *          projector, and for a poison event its partition and position).
 */
cairn_rc_t cairn__pj_run(cairn__pj_spec_t *const *specs,
                         size_t n,
                         const cairn__pj_run_opts_t *o,
                         cairn_error_t *err);

/* ---- rebuild, shadows and dead letters (rebuild.c, shadow_pg.c,
 *      shadow_redis.c, deadletter.c) ------------------------------------ */

struct pg_conn;
struct redisContext;
struct cairn_serde;

/** @brief The sink's PGconn (NULL when not connected). Thread: the sink's. */
struct pg_conn *cairn__pj_sink_pg_conn(cairn__pj_sink_t *s);
/** @brief The sink's redisContext (NULL when not connected). Thread: the sink's. */
struct redisContext *cairn__pj_sink_redis_ctx(cairn__pj_sink_t *s);

/**
 * @brief The target the live read model is under: "" for PostgreSQL and for
 * a Redis projector never rebuilt, else the generation its pointer key
 * (`<prefix>gen`) names ("g1", ...).
 */
cairn_rc_t cairn__pj_live_target(const cairn__pj_spec_t *spec,
                                 const cairn__pj_retry_t *retry,
                                 char *out,
                                 size_t size,
                                 cairn_error_t *err);
/** @brief Names a live sink's connection so that a swap can find and end it. */
cairn_rc_t cairn__pj_sink_tag_live(cairn__pj_sink_t *s, cairn_error_t *err);

typedef struct cairn__pj_rebuild_opts {
    const char *log_url;
    const char *registry_url;
    cairn__pj_values_t values;
    cairn__pj_retry_t retry;
    uint64_t swap_lag;    /* swap once the shadow's lag is at most this (log positions) */
    long grace_ms;        /* how long the old copy stays after the swap */
    long lock_timeout_ms; /* PostgreSQL: lock_timeout of the swap transaction */
    int swap_attempts;    /* PostgreSQL: swap transactions tried before giving up */
    int dry_run;          /* report, change nothing */
    int restart;          /* drop the shadow first instead of resuming it */
    int progress_ms;
    cairn__pj_progress_cb *progress_cb;
    void *progress_opaque;
    volatile sig_atomic_t *stop;
    FILE *out; /* key=value report lines */
} cairn__pj_rebuild_opts_t;

/**
 * @brief `cairn projections rebuild`: replays the log into a shadow copy
 * (resuming the shadow's own checkpoint), swaps it in once its lag is at
 * most swap_lag, and drops the old copy after grace_ms.
 */
cairn_rc_t cairn__pj_rebuild(const cairn__pj_spec_t *spec,
                             const cairn__pj_rebuild_opts_t *o,
                             cairn_error_t *err);

/* PostgreSQL (shadow_pg.c). */
#define CAIRN__PJ_PG_SHADOW "shadow"
cairn_rc_t cairn__pj_pg_describe(const cairn__pj_spec_t *spec,
                                 const cairn__pj_retry_t *retry,
                                 FILE *out,
                                 cairn_error_t *err);
cairn_rc_t cairn__pj_pg_swap(const cairn__pj_spec_t *spec,
                             const cairn__pj_rebuild_opts_t *o,
                             FILE *out,
                             cairn_error_t *err);
cairn_rc_t cairn__pj_pg_drop_retired(const cairn__pj_spec_t *spec,
                                     const cairn__pj_rebuild_opts_t *o,
                                     FILE *out,
                                     cairn_error_t *err);

cairn_rc_t cairn__pj_pg_tag(cairn__pj_sink_t *s, cairn_error_t *err);

/* Redis (shadow_redis.c). */
cairn_rc_t cairn__pj_redis_tag(cairn__pj_sink_t *s, cairn_error_t *err);
/** @brief CAIRN_E_UNAVAILABLE (RETRIABLE) when the pointer no longer names the sink's target. */
cairn_rc_t cairn__pj_redis_check_generation(cairn__pj_sink_t *s, cairn_error_t *err);
cairn_rc_t cairn__pj_redis_generation(const cairn__pj_spec_t *spec,
                                      const cairn__pj_retry_t *retry,
                                      char *out,
                                      size_t size,
                                      cairn_error_t *err);
cairn_rc_t cairn__pj_redis_describe(const cairn__pj_spec_t *spec,
                                    const cairn__pj_retry_t *retry,
                                    const char *live,
                                    const char *shadow,
                                    FILE *out,
                                    cairn_error_t *err);
cairn_rc_t cairn__pj_redis_flip(const cairn__pj_spec_t *spec,
                                const cairn__pj_retry_t *retry,
                                const char *shadow,
                                FILE *out,
                                cairn_error_t *err);
cairn_rc_t cairn__pj_redis_drop_generation(const cairn__pj_spec_t *spec,
                                           const cairn__pj_retry_t *retry,
                                           const char *gen,
                                           FILE *out,
                                           cairn_error_t *err);
/** @brief Whether @p rest, a key after the spec's prefix, is a generation's key or the pointer. */
int cairn__pj_redis_generation_key(const char *rest);
/** @brief Escapes the glob characters of @p s for SCAN MATCH into @p out. */
void cairn__pj_glob_escape(char *out, size_t size, const char *s);
/**
 * @brief The SCAN patterns of the keys a Redis spec's templates make under
 * @p keyprefix: the literal head of each template, deduplicated, appended
 * to @p out.
 * @returns CAIRN_OK; CAIRN_E_INVALID when a key starts with a field and
 *          nothing else tells the projector's keys apart; CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__pj_redis_key_patterns(const cairn__pj_spec_t *spec,
                                        const char *keyprefix,
                                        cairn_strlist_t *out,
                                        cairn_error_t *err);
/** @brief Drops the generations older than @p live that earlier rebuilds left. */
cairn_rc_t cairn__pj_redis_drop_leftovers(const cairn__pj_spec_t *spec,
                                          const cairn__pj_retry_t *retry,
                                          const char *live,
                                          FILE *out,
                                          cairn_error_t *err);

/** One parked event. */
typedef struct cairn__pj_dead {
    char id[48]; /* "<partition>:<position>" */
    int32_t partition;
    uint64_t position;
    char stream[256];
    uint64_t version;
    char type[256];
    int64_t timestamp_ms;
    char reason[512];
    char format[8]; /* "json": value is the decoded event; "raw": hex of the record's value */
    char *value;    /* owned (cairn__free) */
    char parked_at[64];
} cairn__pj_dead_t;

/** @brief Parks an event (idempotent: the same id again changes nothing). */
cairn_rc_t cairn__pj_dead_park(cairn__pj_sink_t *s, const cairn__pj_dead_t *d, cairn_error_t *err);
typedef int(cairn__pj_dead_cb)(void *opaque, const cairn__pj_dead_t *d);
/** @brief Calls @p cb for each parked event (or only @p id) in log order. */
cairn_rc_t cairn__pj_dead_list(
    cairn__pj_sink_t *s, const char *id, cairn__pj_dead_cb *cb, void *opaque, cairn_error_t *err);
/** @brief Removes parked event @p id; CAIRN_E_NOT_FOUND when there is none. */
cairn_rc_t cairn__pj_dead_discard(cairn__pj_sink_t *s, const char *id, cairn_error_t *err);
/**
 * @brief Applies one event to the live read model without moving the
 * checkpoint (PostgreSQL: under a lock on the checkpoint row; Redis: WATCHed),
 * so that a runner working at the same time is not disturbed.
 */
cairn_rc_t
cairn__pj_dead_apply(cairn__pj_sink_t *s, const cairn__pj_event_t *ev, cairn_error_t *err);
/**
 * @brief Decodes dead letter @p d (wire-format raw values through @p serde,
 * which may be NULL), applies it with cairn__pj_dead_apply and discards it.
 */
cairn_rc_t cairn__pj_dead_retry(cairn__pj_sink_t *s,
                                const cairn__pj_dead_t *d,
                                struct cairn_serde *serde,
                                cairn_error_t *err);

#endif
