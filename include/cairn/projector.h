/* SPDX-License-Identifier: MIT */
/*
 * projector.h - code projectors: a shared library that `cairn projections
 * run` loads (dlopen) for a spec whose sink is {"code": {"library": PATH,
 * "config": {...}}}, and calls for the events of the spec's declared types.
 *
 * The library exports one function, cairn_projector_entry, returning a table
 * of callbacks. The runner calls, per projector and from that projector's
 * own thread only:
 *
 *   open          once, with the projector's name and the spec's "config"
 *                 as JSON text; returns the library's state;
 *   checkpoint    to read the checkpoint the library stored ("" when none)
 *                 and its event count, at start and after a failure;
 *   on_event      for each event of a batch, in log order (optional);
 *   on_batch      once per batch, after its on_event calls, with the whole
 *                 batch and the checkpoint that covers it: the library must
 *                 make the batch's effects and this checkpoint durable
 *                 together (one transaction, one atomic file rename, ...):
 *                 that is what makes a crash of the runner neither apply an
 *                 event twice nor skip one;
 *   reset         for `cairn projections reset` (optional);
 *   close         once.
 *
 * An event's `replaying` is set while the projector replays history: it
 * started from the beginning of the log (no checkpoint) and the event lies
 * before the log's end as it was when the projector started. Side effects
 * beyond the read model (mails, calls) should be off then.
 *
 * A callback that returns an error stops the projector: CAIRN_E_UNAVAILABLE
 * with CAIRN_ERR_RETRIABLE means "reconnect" (the runner closes, reopens with
 * bounded retries, reads the checkpoint again and resumes from it); any other
 * error is a poison event at *failed_at (an index into the batch, or -1).
 *
 * Threading: each projector has its own state; callbacks of one state never
 * run concurrently. Event views and their JSON values are borrowed and die
 * when the callback returns.
 */
#ifndef CAIRN_PROJECTOR_H
#define CAIRN_PROJECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cairn/cairn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_PROJECTOR_ABI 1

/** One decoded event (a view, borrowed for the callback). */
typedef struct cairn_projector_event {
    const char *stream; /* the stream id (record key) */
    const char *type;   /* header cairn.type */
    uint64_t version;   /* the stream version */
    int32_t partition;
    uint64_t position;
    int64_t timestamp_ms;
    int replaying;       /* see above */
    const json_t *value; /* the value, decoded to JSON (borrowed) */
} cairn_projector_event_t;

typedef struct cairn_projector {
    int abi; /* CAIRN_PROJECTOR_ABI */
    cairn_rc_t (*open)(const char *projector,
                       const char *config_json,
                       void **state,
                       cairn_error_t *err);
    cairn_rc_t (*checkpoint)(
        void *state, char *buf, size_t size, uint64_t *events, cairn_error_t *err);
    cairn_rc_t (*on_event)(void *state, const cairn_projector_event_t *ev, cairn_error_t *err);
    cairn_rc_t (*on_batch)(void *state,
                           const cairn_projector_event_t *evs,
                           size_t n,
                           const char *checkpoint,
                           uint64_t events,
                           long *failed_at,
                           cairn_error_t *err);
    cairn_rc_t (*reset)(void *state, cairn_error_t *err);
    void (*close)(void *state);
} cairn_projector_t;

/** The one symbol a code projector library exports. */
typedef const cairn_projector_t *(cairn_projector_entry_fn)(void);
#define CAIRN_PROJECTOR_ENTRY "cairn_projector_entry"

#ifdef __cplusplus
}
#endif
#endif
