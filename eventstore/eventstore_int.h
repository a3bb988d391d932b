/* SPDX-License-Identifier: MIT */
/*
 * eventstore_int.h - private umbrella header of eventstore/: the frame codec,
 * the in-memory stream index and the internal hooks that unit tests use
 * (statistics, fsync fault injection).
 *
 * Invariants:
 * - A frame is `u32 len | u32 crc32c(payload) | payload[len]`, little endian;
 *   CAIRN__FRAME_MIN_PAYLOAD <= len <= the opener's max_record_bytes.
 * - struct cairn__es_stream: `pos[i]` is the position of version i + 1, so
 *   the stream's current version is `n`; positions strictly increase.
 * - struct cairn__es_index: `all[0..all_n)` holds every indexed record's
 *   position in log order (used to start a replay at a record boundary).
 */
#ifndef CAIRN_EVENTSTORE_INT_H
#define CAIRN_EVENTSTORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/eventstore.h"
#include "common.h"

/* ---- frame codec (frame.c) --------------------------------------------- */

#define CAIRN__FRAME_HEADER      8u /* u32 length + u32 crc32c */
#define CAIRN__FRAME_FORMAT      1u /* first payload byte */
#define CAIRN__FRAME_FIXED       28u /* format, flags, header count, batch index/count, version, ts */
#define CAIRN__FRAME_MIN_PAYLOAD (CAIRN__FRAME_FIXED + 2u + 1u + 1u + 4u)
#define CAIRN__STREAM_MAX        65535u
#define CAIRN__HEADERS_MAX       65535u

/** Where a record sits in its append (so that recovery can drop half batches). */
struct cairn__frame_batch {
    uint32_t index; /* 0 .. count - 1 */
    uint32_t count;
};

/**
 * @brief The payload size of @p rec in stream @p stream (of @p stream_len bytes).
 * @returns CAIRN_OK, or CAIRN_E_INVALID (with @p err) when a name or the
 *          whole payload exceeds the format's or @p max_payload's bounds.
 */
cairn_rc_t cairn__frame_size(const char *stream,
                             size_t stream_len,
                             const cairn_record_t *rec,
                             size_t max_payload,
                             size_t *out,
                             cairn_error_t *err);

/**
 * @brief Writes the frame (header and payload) of @p rec at @p dst, which has
 * room for CAIRN__FRAME_HEADER + @p payload_len bytes (from cairn__frame_size).
 */
void cairn__frame_encode(unsigned char *dst,
                         size_t payload_len,
                         const char *stream,
                         size_t stream_len,
                         const cairn_record_t *rec,
                         struct cairn__frame_batch batch);

/** @brief Reads the u32 length and crc of a frame header. */
void cairn__frame_header(const unsigned char *src, uint32_t *len, uint32_t *crc);

/**
 * @brief Decodes and validates a payload (the CRC was checked by the caller).
 * @param[out] rec a view into @p p; its headers go to *@p hdrs (grown with
 *             cairn__realloc, caller frees with cairn__free).
 * @returns CAIRN_OK or CAIRN_E_CORRUPT (a reason in @p why), CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__frame_decode(const unsigned char *p,
                               size_t len,
                               cairn_record_t *rec,
                               struct cairn__frame_batch *batch,
                               cairn_header_t **hdrs,
                               size_t *hdrs_cap,
                               const char **why);

/* ---- stream index (index.c) ------------------------------------------- */

struct cairn__es_stream {
    char *name;
    size_t name_len;
    uint64_t hash;
    uint64_t *pos;
    size_t n;
    size_t cap;
};

struct cairn__es_index {
    struct cairn__es_stream **slots; /* open addressing, power-of-two size */
    size_t cap;
    size_t count;
    uint64_t *all;
    size_t all_n;
    size_t all_cap;
};

void cairn__es_index_init(struct cairn__es_index *idx);
void cairn__es_index_release(struct cairn__es_index *idx);
/** @returns the stream or NULL. */
struct cairn__es_stream *
cairn__es_index_find(const struct cairn__es_index *idx, const char *name, size_t len);
/** @returns CAIRN_OK (the stream in *out, created empty when absent) or CAIRN_E_NOMEM. */
cairn_rc_t cairn__es_index_get(struct cairn__es_index *idx,
                               const char *name,
                               size_t len,
                               struct cairn__es_stream **out);
/** @brief Makes room for @p extra more records in @p s and in the global list. */
cairn_rc_t
cairn__es_index_reserve(struct cairn__es_index *idx, struct cairn__es_stream *s, size_t extra);
/** @brief Adds the next version of @p s at @p pos; room was reserved. */
void cairn__es_index_push(struct cairn__es_index *idx, struct cairn__es_stream *s, uint64_t pos);

/* ---- internal hooks for tests and benchmarks -------------------------- */

struct cairn__log_stats {
    uint64_t appends; /* successful batches */
    uint64_t records; /* records in them */
    uint64_t fsyncs;  /* fdatasync calls on segments (group commits and rolls) */
    uint64_t segments;
    uint64_t indexed; /* records in the stream index (read-only: built on demand) */
};

/** @brief A snapshot of the counters. Thread: any. */
void cairn__log_stats(cairn_log_t *log, struct cairn__log_stats *out);

/**
 * @brief Replaces fdatasync for this log (fault injection in tests).
 * Call before any append.
 */
void cairn__log_set_sync_fn(cairn_log_t *log, int (*sync_fn)(int fd));

#endif
