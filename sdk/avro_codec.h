/* SPDX-License-Identifier: MIT */
/*
 * avro_codec.h - Avro binary encoding of values in the SDK's JSON form, and
 * decoding (with resolution of a writer schema to a reader schema) back to
 * that form, over Cairn's own Avro model (registry/avro/avro.h). No
 * registry, no wire-format prefix: serde.c adds those.
 *
 * The JSON form is defined in docs/JSON-FORM.md; this codec is
 * its one implementation.
 *
 * Threading: encode and validate are pure functions of their arguments; a
 * resolver is immutable once built and may be used from many threads.
 */
#ifndef CAIRN_SDK_AVRO_CODEC_H
#define CAIRN_SDK_AVRO_CODEC_H

#include <stddef.h>

#include <jansson.h>

#include "avro/avro.h"
#include "common.h"

/**
 * @brief Appends the Avro binary encoding of @p value under @p schema to @p out.
 * @returns CAIRN_OK; CAIRN_E_INVALID when the value does not fit (err->where
 *          is the JSON pointer of the member, err->text why), @p out then
 *          holding a partial encoding the caller discards; CAIRN_E_NOMEM or
 *          CAIRN_E_INVALID_TOO_LARGE from the buffer.
 */
cairn_rc_t cairn__avro_encode(const cairn_avro_node_t *schema,
                              const json_t *value,
                              cairn_buf_t *out,
                              cairn_error_t *err);

/**
 * @brief Every way @p value does not fit @p schema, one item per violation
 * as "<json pointer>: <message>" (path "" for the root), up to @p max.
 * @returns CAIRN_OK when it fits, CAIRN_E_INVALID otherwise, CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__avro_validate(const cairn_avro_node_t *schema,
                                const json_t *value,
                                cairn_strlist_t *violations,
                                size_t max);

/** A plan for reading data written with one schema as another. */
typedef struct cairn_avro_resolver cairn_avro_resolver_t;

/**
 * @brief Builds the plan to read @p writer data as @p reader (the same node
 * for no resolution).
 * @returns CAIRN_OK, CAIRN_E_INCOMPATIBLE (err->text: the first reason),
 *          CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__avro_resolver_new(const cairn_avro_node_t *reader,
                                    const cairn_avro_node_t *writer,
                                    cairn_avro_resolver_t **out,
                                    cairn_error_t *err);
void cairn__avro_resolver_free(cairn_avro_resolver_t *r);

/**
 * @brief Decodes exactly @p len bytes with @p r into a new JSON value.
 * @returns CAIRN_OK; CAIRN_E_INVALID for truncated data, trailing bytes,
 *          out-of-range union or enum indexes, lengths over the input, bad
 *          UTF-8 in strings; CAIRN_E_NOMEM.
 */
cairn_rc_t cairn__avro_decode(
    const cairn_avro_resolver_t *r, const void *data, size_t len, json_t **out, cairn_error_t *err);

#endif
