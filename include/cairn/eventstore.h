/* SPDX-License-Identifier: MIT */
/*
 * eventstore.h - Cairn's record log: one record model, backends chosen by URL.
 *
 * URLs: "file:DIR" (or "file://DIR", or a plain path without a scheme) is the
 * embedded file backend; "kafka:HOST:PORT[,HOST:PORT...]?topic=T[&k=v...]"
 * is Kafka. Unknown schemes and malformed URLs are CAIRN_E_INVALID.
 *
 * Record model: a record belongs to a stream (its key), carries an opaque
 * value, headers (name -> bytes), the stream version it has within its stream
 * (1, 2, 3, ...), its partition (the file backend has one, 0; Kafka picks it
 * by murmur2 of the stream id), its position in that partition (for the file
 * backend a byte offset of the frame, for Kafka the offset; strictly
 * increasing within a partition) and a timestamp in ms since the epoch.
 *
 * Bad input, refused with CAIRN_E_INVALID before anything is written, alike
 * on every backend: an empty or NULL stream id, one over 65535 bytes, an
 * empty batch, a header without a name, a record (stream id + value +
 * headers) over max_record_bytes.
 *
 * Threading: a cairn_log_t may be used from many threads at once. Appends are
 * serialised internally and share one fdatasync (group commit): each append
 * returns only once its records are durable. Replay callbacks run in the
 * calling thread; record views passed to them die when the callback returns.
 *
 * Ownership: arguments are borrowed and copied when kept.
 */
#ifndef CAIRN_EVENTSTORE_H
#define CAIRN_EVENTSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/cairn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cairn_log cairn_log_t;

typedef struct cairn_header {
    const char *name; /* NUL-terminated */
    const void *value;
    size_t value_len;
} cairn_header_t;

/** A record as appended (input) or as read (a view that dies with the callback). */
typedef struct cairn_record {
    const char *stream; /* NUL-terminated stream id: the record key */
    const void *value;
    size_t value_len;
    const cairn_header_t *headers;
    size_t header_count;
    uint64_t version;     /* stream version; set by the log on append */
    uint64_t position;    /* position in the log; set by the log on append */
    int64_t timestamp_ms; /* set by the log on append when 0 */
    int32_t partition;    /* set by the log: 0 on the file backend */
} cairn_record_t;

/* Expected versions for cairn_log_append. */
#define CAIRN_EXPECT_ANY       (-1)
#define CAIRN_EXPECT_NO_STREAM (-2)

typedef struct cairn_log_options {
    int read_only;           /* open without the writer's lock; read up to the durable end */
    size_t segment_bytes;    /* roll segments at this size; 0 = 64 MiB */
    size_t max_record_bytes; /* refuse larger records; 0 = 8 MiB */
    int no_sync;             /* tests and benchmarks of CPU cost only: skip fdatasync */
} cairn_log_options_t;

/**
 * @brief Opens (creating when absent, unless read_only) the log at @p url.
 * File backend: recovery runs here: a torn or corrupt tail after the last
 * durable frame is cut and reported in the log at WARNING.
 * @param opts may be NULL for the defaults.
 * @returns CAIRN_OK; CAIRN_E_INVALID for an unknown scheme or a malformed
 *          URL; CAIRN_E_CONFLICT_LOCKED when another process holds the
 *          directory for writing (file); CAIRN_E_NOT_FOUND for a read-only
 *          open of a missing directory; CAIRN_E_CORRUPT when a bad frame
 *          sits before the last durable offset; CAIRN_E_IO.
 */
CAIRN_API cairn_rc_t cairn_log_open(const char *url,
                                    const cairn_log_options_t *opts,
                                    cairn_log_t **out,
                                    cairn_error_t *err);

/** @brief Closes the log, releasing its lock. Accepts NULL. */
CAIRN_API void cairn_log_close(cairn_log_t *log);

/**
 * @brief Appends @p n records to stream @p stream, all or nothing.
 * @param expected_version CAIRN_EXPECT_ANY, CAIRN_EXPECT_NO_STREAM, or the
 *        exact current version of the stream (0 is "no stream" too).
 * @param records their stream field is ignored (the stream is @p stream);
 *        version, position and timestamp are filled in on success.
 * @param[out] last_version the stream's version after the append (may be NULL).
 * @returns CAIRN_OK once the records are durable (fdatasync, shared with
 *          concurrent appenders); CAIRN_E_CONFLICT_VERSION with err->cause set
 *          to the actual version (nothing written); CAIRN_E_INVALID for an
 *          empty batch or an oversized record; CAIRN_E_IO_FSYNC (flag FATAL)
 *          when fdatasync failed: the log refuses further appends and must be
 *          closed and reopened, never retried.
 * Thread: any; appenders are serialised, their fsyncs grouped.
 */
CAIRN_API cairn_rc_t cairn_log_append(cairn_log_t *log,
                                      const char *stream,
                                      int64_t expected_version,
                                      cairn_record_t *records,
                                      size_t n,
                                      uint64_t *last_version,
                                      cairn_error_t *err);

/**
 * @brief The first half of cairn_log_append: checks the expectation and
 * writes the records in log order, but returns before they are durable.
 * @param[out] ticket the position just past the batch: pass it to
 *        cairn_log_wait_durable before acknowledging anything to anyone.
 * Lets a caller that serialises its own decisions (the registry) release
 * its lock before the fsync, so that concurrent writers share one.
 */
CAIRN_API cairn_rc_t cairn_log_append_nowait(cairn_log_t *log,
                                             const char *stream,
                                             int64_t expected_version,
                                             cairn_record_t *records,
                                             size_t n,
                                             uint64_t *last_version,
                                             uint64_t *ticket,
                                             cairn_error_t *err);

/**
 * @brief Waits until everything before @p ticket is durable, joining or
 * starting a group commit.
 * @returns CAIRN_OK, or CAIRN_E_IO_FSYNC (FATAL) when the fsync failed.
 */
CAIRN_API cairn_rc_t cairn_log_wait_durable(cairn_log_t *log, uint64_t ticket, cairn_error_t *err);

/** @returns 0 to go on, non-zero to stop the replay (returned as CAIRN_AGAIN). */
typedef int(cairn_record_cb)(void *opaque, const cairn_record_t *record);

/**
 * @brief Calls @p cb for every durable record from @p from_position (0 is
 * the start) in log order. On a log of several partitions they are replayed
 * one after the other (0 first), and only from the start: @p from_position
 * must be 0 there (else CAIRN_E_INVALID; see cairn_log_replay_partition).
 * @returns CAIRN_DONE at the end of the log, CAIRN_AGAIN when @p cb stopped
 *          the replay, or an error (CAIRN_E_CORRUPT, CAIRN_E_IO).
 */
CAIRN_API cairn_rc_t cairn_log_replay(cairn_log_t *log,
                                      uint64_t from_position,
                                      cairn_record_cb *cb,
                                      void *opaque,
                                      cairn_error_t *err);

/**
 * @brief Calls @p cb for the records of one stream from version @p from_version.
 * @returns CAIRN_DONE, CAIRN_AGAIN or an error as cairn_log_replay.
 */
CAIRN_API cairn_rc_t cairn_log_read_stream(cairn_log_t *log,
                                           const char *stream,
                                           uint64_t from_version,
                                           cairn_record_cb *cb,
                                           void *opaque,
                                           cairn_error_t *err);

/** @brief Current version of @p stream (0 when it has no records). */
CAIRN_API uint64_t cairn_log_stream_version(cairn_log_t *log, const char *stream);

/** @brief The position just past the last durable record (several
 * partitions: the sum of cairn_log_partition_end over them, a measure of
 * progress only). */
CAIRN_API uint64_t cairn_log_end(cairn_log_t *log);

/* ---- partitions (the file backend has one, partition 0) ---------------- */

/** @brief The backend's scheme as URLs and checkpoints name it: "file" or "kafka". */
CAIRN_API const char *cairn_log_scheme(cairn_log_t *log);
/** @brief Number of partitions of the log. */
CAIRN_API int cairn_log_partition_count(cairn_log_t *log);
/** @brief The partition that holds @p stream (Kafka: murmur2 of the key, as Java clients). */
CAIRN_API int cairn_log_partition_of(cairn_log_t *log, const char *stream);
/** @brief The offset just past the last durable (accepted) record of @p partition. */
CAIRN_API uint64_t cairn_log_partition_end(cairn_log_t *log, int partition);
/**
 * @brief Like cairn_log_replay, for one partition from offset @p from.
 * @returns CAIRN_DONE, CAIRN_AGAIN or an error.
 */
CAIRN_API cairn_rc_t cairn_log_replay_partition(cairn_log_t *log,
                                                int partition,
                                                uint64_t from,
                                                cairn_record_cb *cb,
                                                void *opaque,
                                                cairn_error_t *err);

/* ---- tailing ------------------------------------------------------------ */

/**
 * A subscription that delivers records in log order (per partition) from a
 * checkpoint and keeps going as new ones arrive. It delivers only from the
 * caller's cairn_tail_poll, at most max_records per call, so the consumer's
 * pace bounds memory (backpressure). It delivers durable records only; on
 * the file backend a poll in the writer's process is woken by the group
 * commit, one in a read-only opener re-reads the durable marker every 5 ms.
 * Checkpoints: "file:<position>" or "kafka:<p>=<offset>@<epoch>,...".
 * A tail is used by one thread at a time and must be closed before its log.
 */
typedef struct cairn_tail cairn_tail_t;

/** Longest checkpoint string, NUL included. */
#define CAIRN_CHECKPOINT_MAX 4096

/**
 * @brief Opens a tail.
 * @param checkpoint NULL or "" for the start of the log, "end" for its
 *        current end, or a string from cairn_tail_checkpoint.
 * @returns CAIRN_OK or CAIRN_E_INVALID for a checkpoint of another backend
 *          or a malformed one.
 */
CAIRN_API cairn_rc_t cairn_tail_open(cairn_log_t *log,
                                     const char *checkpoint,
                                     cairn_tail_t **out,
                                     cairn_error_t *err);
/**
 * @brief Delivers up to @p max_records records to @p cb, waiting up to
 * @p timeout_ms for the first one.
 * @param[out] delivered how many were delivered (may be NULL).
 * @returns CAIRN_OK (possibly with none delivered on timeout), CAIRN_AGAIN
 *          when @p cb returned non-zero (the record it refused will be
 *          delivered again), or an error.
 * Thread: the thread that polls; callbacks run inside this call.
 */
CAIRN_API cairn_rc_t cairn_tail_poll(cairn_tail_t *tail,
                                     int timeout_ms,
                                     size_t max_records,
                                     cairn_record_cb *cb,
                                     void *opaque,
                                     size_t *delivered,
                                     cairn_error_t *err);
/**
 * @brief The checkpoint just past the last record delivered (and accepted by
 * the callback), written into @p buf (CAIRN_CHECKPOINT_MAX bytes suffice).
 */
CAIRN_API cairn_rc_t cairn_tail_checkpoint(cairn_tail_t *tail,
                                           char *buf,
                                           size_t size,
                                           cairn_error_t *err);
/** @brief Closes a tail. Accepts NULL. */
CAIRN_API void cairn_tail_close(cairn_tail_t *tail);

#ifdef __cplusplus
}
#endif
#endif
