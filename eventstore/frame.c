/* SPDX-License-Identifier: MIT */
/*
 * frame.c - the binary encoding of one record in the file log, and its
 * checked decoding. The file is input: every length read is bounded by the
 * bytes that remain in the payload, which the caller bounded in turn by
 * max_record_bytes before reading it, so no field can ask for memory or
 * bytes that are not there.
 *
 * Payload layout (little endian):
 *
 *   u8  format (1)        u8  flags (0)         u16 header count
 *   u32 batch index       u32 batch count       u64 stream version
 *   i64 timestamp ms
 *   u16 stream length     stream bytes          0
 *   header count x { u16 name length, name bytes, 0, u32 value length, value }
 *   u32 value length      value bytes
 *
 * Names carry a NUL so that a decoded record can point into the read buffer
 * instead of copying; the decoder checks that NUL and refuses names with an
 * embedded one. The batch fields let recovery drop a batch whose tail was
 * torn, so that an append stays all or nothing across a crash.
 */
#include <string.h>

#include "eventstore_int.h"

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

cairn_rc_t cairn__frame_size(const char *stream,
                             size_t stream_len,
                             const cairn_record_t *rec,
                             size_t max_payload,
                             size_t *out,
                             cairn_error_t *err)
{
    /* Each term is checked against max_payload before it is added, so the
     * sum cannot overflow a size_t. */
    size_t total = CAIRN__FRAME_FIXED + 2 + stream_len + 1 + 4;
    if (stream_len == 0 || stream_len > CAIRN__STREAM_MAX)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "stream id must have 1 to %u bytes",
                                CAIRN__STREAM_MAX);
    if (rec->header_count > CAIRN__HEADERS_MAX)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "more than %u headers",
                                CAIRN__HEADERS_MAX);
    if (rec->header_count && !rec->headers)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "headers missing");
    if (rec->value_len && !rec->value)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "value missing");
    if (rec->value_len > max_payload)
        goto too_large;
    total += rec->value_len;
    for (size_t i = 0; i < rec->header_count; i++) {
        const cairn_header_t *h = &rec->headers[i];
        if (!h->name)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "header %zu has no name", i);
        size_t nl = strlen(h->name);
        if (nl > CAIRN__STREAM_MAX)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                    "header name longer than %u bytes", CAIRN__STREAM_MAX);
        if (h->value_len && !h->value)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "header '%s' has no value",
                                    h->name);
        if (h->value_len > max_payload || total > max_payload)
            goto too_large;
        total += 2 + nl + 1 + 4 + h->value_len;
    }
    if (total > max_payload || total > UINT32_MAX)
        goto too_large;
    *out = total;
    return CAIRN_OK;
too_large:
    return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                            "record larger than max_record_bytes (%zu)", max_payload);
}

void cairn__frame_encode(unsigned char *dst,
                         size_t payload_len,
                         const char *stream,
                         size_t stream_len,
                         const cairn_record_t *rec,
                         struct cairn__frame_batch batch)
{
    unsigned char *p = dst + CAIRN__FRAME_HEADER;
    p[0] = CAIRN__FRAME_FORMAT;
    p[1] = 0;
    put16(p + 2, (uint16_t)rec->header_count);
    put32(p + 4, batch.index);
    put32(p + 8, batch.count);
    put64(p + 12, rec->version);
    put64(p + 20, (uint64_t)rec->timestamp_ms);
    p += CAIRN__FRAME_FIXED;
    put16(p, (uint16_t)stream_len);
    memcpy(p + 2, stream, stream_len);
    p[2 + stream_len] = 0;
    p += 2 + stream_len + 1;
    for (size_t i = 0; i < rec->header_count; i++) {
        const cairn_header_t *h = &rec->headers[i];
        size_t nl = strlen(h->name);
        put16(p, (uint16_t)nl);
        memcpy(p + 2, h->name, nl + 1);
        p += 2 + nl + 1;
        put32(p, (uint32_t)h->value_len);
        if (h->value_len)
            memcpy(p + 4, h->value, h->value_len);
        p += 4 + h->value_len;
    }
    put32(p, (uint32_t)rec->value_len);
    if (rec->value_len)
        memcpy(p + 4, rec->value, rec->value_len);
    const unsigned char *payload = dst + CAIRN__FRAME_HEADER;
    put32(dst, (uint32_t)payload_len);
    put32(dst + 4, cairn__crc32c(0, payload, payload_len));
}

void cairn__frame_header(const unsigned char *src, uint32_t *len, uint32_t *crc)
{
    *len = get32(src);
    *crc = get32(src + 4);
}

/* A NUL-terminated name of get16 length at *p, inside [*p, end). */
static int take_name(const unsigned char **p, const unsigned char *end, const char **name)
{
    if (end - *p < 2)
        return -1;
    size_t nl = get16(*p);
    if ((size_t)(end - *p) < 2 + nl + 1)
        return -1;
    const char *s = (const char *)(*p + 2);
    if (s[nl] != '\0' || memchr(s, '\0', nl))
        return -1;
    *name = s;
    *p += 2 + nl + 1;
    return 0;
}

/* A u32-length-prefixed byte string at *p, inside [*p, end). */
static int take_bytes(const unsigned char **p, const unsigned char *end, const void **v, size_t *vl)
{
    if (end - *p < 4)
        return -1;
    size_t n = get32(*p);
    if ((size_t)(end - *p) - 4 < n)
        return -1;
    *v = *p + 4;
    *vl = n;
    *p += 4 + n;
    return 0;
}

cairn_rc_t cairn__frame_decode(const unsigned char *p,
                               size_t len,
                               cairn_record_t *rec,
                               struct cairn__frame_batch *batch,
                               cairn_header_t **hdrs,
                               size_t *hdrs_cap,
                               const char **why)
{
    const unsigned char *end = p + len;
    if (len < CAIRN__FRAME_MIN_PAYLOAD) {
        *why = "payload too short";
        return CAIRN_E_CORRUPT;
    }
    if (p[0] != CAIRN__FRAME_FORMAT) {
        *why = "unknown record format";
        return CAIRN_E_CORRUPT;
    }
    size_t nh = get16(p + 2);
    batch->index = get32(p + 4);
    batch->count = get32(p + 8);
    rec->version = get64(p + 12);
    rec->timestamp_ms = (int64_t)get64(p + 20);
    if (batch->count == 0 || batch->index >= batch->count || rec->version == 0) {
        *why = "bad batch or version field";
        return CAIRN_E_CORRUPT;
    }
    p += CAIRN__FRAME_FIXED;
    if (take_name(&p, end, &rec->stream) || rec->stream[0] == '\0') {
        *why = "bad stream id";
        return CAIRN_E_CORRUPT;
    }
    /* Every header takes at least 7 bytes: bound the count before allocating. */
    if (nh > (size_t)(end - p) / 7) {
        *why = "header count exceeds the payload";
        return CAIRN_E_CORRUPT;
    }
    if (nh > *hdrs_cap) {
        cairn_header_t *nv = cairn__realloc(*hdrs, nh * sizeof *nv);
        if (!nv) {
            *why = "out of memory";
            return CAIRN_E_NOMEM;
        }
        *hdrs = nv;
        *hdrs_cap = nh;
    }
    for (size_t i = 0; i < nh; i++) {
        cairn_header_t *h = &(*hdrs)[i];
        if (take_name(&p, end, &h->name) || take_bytes(&p, end, &h->value, &h->value_len)) {
            *why = "bad header";
            return CAIRN_E_CORRUPT;
        }
    }
    rec->headers = nh ? *hdrs : NULL;
    rec->header_count = nh;
    if (take_bytes(&p, end, &rec->value, &rec->value_len) || p != end) {
        *why = "bad value length";
        return CAIRN_E_CORRUPT;
    }
    return CAIRN_OK;
}
