/* SPDX-License-Identifier: MIT */
/*
 * backend.h - what a log backend provides. cairn_log_t is a backend table
 * and the backend's own handle; eventstore/log.c parses the URL
 * ("file:DIR" or a plain path, "kafka:HOST:PORT[,HOST:PORT...]?topic=T&k=v")
 * and dispatches every public call of include/cairn/eventstore.h here.
 *
 * Positions are per partition: the file backend has one partition (0) whose
 * offsets are byte positions of frames; Kafka's are the partition's offsets.
 * A ticket (append_nowait -> wait_durable) is backend-defined: the file
 * backend's is the position past the batch; Kafka's identifies the append.
 *
 * Checkpoints are strings so that projections can store them anywhere:
 * file "file:<position>"; kafka "kafka:<p>=<offset>@<epoch>,..." (one entry
 * per partition, always at append boundaries).
 */
#ifndef CAIRN_EVENTSTORE_BACKEND_H
#define CAIRN_EVENTSTORE_BACKEND_H

#include "cairn/eventstore.h"
#include "common.h"

typedef struct cairn__log_backend cairn__log_backend_t;

struct cairn__log_backend {
    const char *scheme; /* "file", "kafka" */
    /** @param rest the URL after "scheme:" (file: the directory). */
    cairn_rc_t (*open)(const char *rest,
                       const cairn_log_options_t *opts,
                       void **impl,
                       cairn_error_t *err);
    void (*close)(void *impl);
    cairn_rc_t (*append_nowait)(void *impl,
                                const char *stream,
                                int64_t expected_version,
                                cairn_record_t *records,
                                size_t n,
                                uint64_t *last_version,
                                uint64_t *ticket,
                                cairn_error_t *err);
    cairn_rc_t (*wait_durable)(void *impl, uint64_t ticket, cairn_error_t *err);
    cairn_rc_t (*replay_partition)(void *impl,
                                   int partition,
                                   uint64_t from,
                                   cairn_record_cb *cb,
                                   void *opaque,
                                   cairn_error_t *err);
    cairn_rc_t (*read_stream)(void *impl,
                              const char *stream,
                              uint64_t from_version,
                              cairn_record_cb *cb,
                              void *opaque,
                              cairn_error_t *err);
    uint64_t (*stream_version)(void *impl, const char *stream);
    int (*partition_count)(void *impl);
    int (*partition_of)(void *impl, const char *stream);
    /** @returns the offset just past the last durable (accepted) record of @p partition. */
    uint64_t (*end)(void *impl, int partition);

    cairn_rc_t (*tail_open)(void *impl, const char *checkpoint, void **tail, cairn_error_t *err);
    cairn_rc_t (*tail_poll)(void *tail,
                            int timeout_ms,
                            size_t max_records,
                            cairn_record_cb *cb,
                            void *opaque,
                            size_t *delivered,
                            cairn_error_t *err);
    cairn_rc_t (*tail_checkpoint)(void *tail, char *buf, size_t size, cairn_error_t *err);
    void (*tail_close)(void *tail);

    /**
     * Optional (NULL: the dispatcher calls wait_durable): wait_durable that
     * also sets records[i].position for the @p n records of the append, for
     * backends that learn positions only once the records are durable (Kafka
     * reads its offsets back). cairn_log_append, whose records are alive
     * across both halves, calls it; added by the kafka backend (issue 3).
     */
    cairn_rc_t (*wait_append)(
        void *impl, uint64_t ticket, cairn_record_t *records, size_t n, cairn_error_t *err);
};

struct cairn_log {
    const cairn__log_backend_t *backend;
    void *impl;
    size_t max_record_bytes; /* log.c refuses larger records before any backend sees them */
};

extern const cairn__log_backend_t cairn__file_backend;
extern const cairn__log_backend_t cairn__kafka_backend;

#endif
