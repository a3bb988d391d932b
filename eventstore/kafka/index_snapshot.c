/* SPDX-License-Identifier: MIT */
/*
 * index_snapshot.c - snapshots of one Kafka partition's reader state, so that
 * a process that claims (or first reads) a large partition does not rescan
 * it from offset 0.
 *
 * A snapshot is taken at an append boundary (the reader rule holds no
 * partial append) and says: "the records [0, offset) of partition p of topic
 * T (of N partitions) leave the rule at epoch e with these recent append ids,
 * and the index stream -> (version, offsets) is this". Loading it and
 * reading the partition from `offset` on gives exactly the state a read from
 * 0 would give. It is only a cache: the log stays the truth, so any doubt
 * (missing, corrupt, another topic or partition count, an offset past the
 * partition's high watermark) means "read from 0".
 *
 * Format (all integers little-endian; the file is input, every length is
 * checked against what remains before anything is allocated):
 *
 *   "CAIRNKSN" u32 format(1) u32 reserved(0)
 *   u16 topic_len, topic bytes (1..255)
 *   i32 partition, i32 partitions
 *   i64 offset, i64 epoch, i64 accepted_end, i64 end_epoch
 *   i64 claim_ts, u64 claim_writer
 *   u32 recent_n (<= CAIRN__RR_RECENT), recent_n x 16-byte ids, oldest first
 *   u64 streams
 *   streams x { u32 name_len (1..CAIRN__KSNAP_MAX_NAME), name,
 *               varint version (>= 1), version x varint offset delta }
 *   u32 crc32c of every byte before it
 *
 * Offsets of a stream increase strictly: the first is stored as is, the
 * others as the difference to the one before (LEB128 varints, so ~3 bytes
 * per record instead of 8). Every offset must lie below `offset`.
 *
 * Files are written atomically: a temporary file in the same directory,
 * fsync, rename over the old one, fsync of the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kafka_int.h"

#define MAGIC     "CAIRNKSN"
#define MAGIC_LEN 8
#define FORMAT    1u

/* ---- encoding ------------------------------------------------------------- */

static cairn_rc_t put(cairn_buf_t *b, const void *p, size_t n, cairn_error_t *err)
{
    cairn_rc_t rc = cairn_buf_append(b, p, n);
    if (rc == CAIRN_E_NOMEM)
        return cairn__error_set(err, rc, 0, NULL, "out of memory");
    if (rc)
        return cairn__error_set(err, rc, 0, NULL, "index snapshot larger than its cap");
    return CAIRN_OK;
}

static cairn_rc_t put_le(cairn_buf_t *b, uint64_t v, size_t bytes, cairn_error_t *err)
{
    unsigned char x[8];
    for (size_t i = 0; i < bytes; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    return put(b, x, bytes, err);
}

static cairn_rc_t put_varint(cairn_buf_t *b, uint64_t v, cairn_error_t *err)
{
    unsigned char x[10];
    size_t n = 0;
    do {
        x[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    return put(b, x, n, err);
}

cairn_rc_t cairn__ksnap_begin(cairn_buf_t *b,
                              const char *topic,
                              const struct cairn__ksnap_head *h,
                              const struct cairn__rr *rr,
                              cairn_error_t *err)
{
    cairn_rc_t rc;
    size_t tlen = topic ? strlen(topic) : 0;

    if (tlen == 0 || tlen > CAIRN__KSNAP_MAX_TOPIC)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, topic, "bad topic name for a snapshot");
    if (rr->pending)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, topic,
                                "a snapshot must be taken at an append boundary");
    if (h->offset < 0 || rr->epoch < 0 || h->partition < 0 || h->partitions <= h->partition)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, topic, "bad snapshot header");
    cairn_buf_reset(b);
    if ((rc = put(b, MAGIC, MAGIC_LEN, err)) || (rc = put_le(b, FORMAT, 4, err)) ||
        (rc = put_le(b, 0, 4, err)) || (rc = put_le(b, tlen, 2, err)) ||
        (rc = put(b, topic, tlen, err)) || (rc = put_le(b, (uint32_t)h->partition, 4, err)) ||
        (rc = put_le(b, (uint32_t)h->partitions, 4, err)) ||
        (rc = put_le(b, (uint64_t)h->offset, 8, err)) ||
        (rc = put_le(b, (uint64_t)rr->epoch, 8, err)) ||
        (rc = put_le(b, (uint64_t)h->accepted_end, 8, err)) ||
        (rc = put_le(b, (uint64_t)h->end_epoch, 8, err)) ||
        (rc = put_le(b, (uint64_t)h->claim_ts, 8, err)) ||
        (rc = put_le(b, h->claim_writer, 8, err)) || (rc = put_le(b, rr->recent_n, 4, err)))
        return rc;
    /* the ring, oldest first: once full, the oldest slot is the next to go */
    size_t start = rr->recent_n == CAIRN__RR_RECENT ? rr->recent_head : 0;
    for (size_t i = 0; i < rr->recent_n; i++)
        if ((rc = put(b, rr->recent[(start + i) % CAIRN__RR_RECENT], CAIRN__RR_ID_LEN, err)))
            return rc;
    return put_le(b, h->streams, 8, err);
}

cairn_rc_t cairn__ksnap_add(
    cairn_buf_t *b, const char *name, uint64_t version, const int64_t *offs, cairn_error_t *err)
{
    cairn_rc_t rc;
    size_t nlen = name ? strlen(name) : 0;

    if (nlen == 0 || nlen > CAIRN__KSNAP_MAX_NAME || version == 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, name, "bad stream for a snapshot");
    if ((rc = put_le(b, nlen, 4, err)) || (rc = put(b, name, nlen, err)) ||
        (rc = put_varint(b, version, err)))
        return rc;
    for (uint64_t i = 0; i < version; i++) {
        if (offs[i] < 0 || (i > 0 && offs[i] <= offs[i - 1]))
            return cairn__error_set(err, CAIRN_E_INVALID, 0, name,
                                    "stream '%s': offsets not increasing at version %" PRIu64, name,
                                    i + 1);
        uint64_t d = i ? (uint64_t)(offs[i] - offs[i - 1]) : (uint64_t)offs[0];
        if ((rc = put_varint(b, d, err)))
            return rc;
    }
    return CAIRN_OK;
}

cairn_rc_t cairn__ksnap_end(cairn_buf_t *b, cairn_error_t *err)
{
    uint32_t crc = cairn__crc32c(0, b->data, b->len);
    return put_le(b, crc, 4, err);
}

/* ---- decoding ------------------------------------------------------------- */

struct cursor {
    const unsigned char *p;
    size_t left;
};

static int get_le(struct cursor *c, size_t bytes, uint64_t *v)
{
    if (c->left < bytes)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < bytes; i++)
        x |= (uint64_t)c->p[i] << (8 * i);
    c->p += bytes;
    c->left -= bytes;
    *v = x;
    return 0;
}

static int get_varint(struct cursor *c, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (!c->left)
            return -1;
        unsigned char byte = *c->p++;
        c->left--;
        if (shift == 63 && (byte & 0x7e))
            return -1; /* more than 64 bits */
        x |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

#define BAD(...) (rc = cairn__error_set(err, CAIRN_E_CORRUPT, 0, where, __VA_ARGS__))

cairn_rc_t cairn__ksnap_load(const void *data,
                             size_t len,
                             const char *topic,
                             int partition,
                             int partitions,
                             struct cairn__ksnap_head *h,
                             struct cairn__rr *rr,
                             cairn__ksnap_stream_cb *cb,
                             void *opaque,
                             cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    const char *where = topic;
    struct cursor c;
    uint64_t v, tlen, epoch, nrecent, streams;
    int64_t *offs = NULL;
    size_t offs_cap = 0;
    char *name = NULL;
    uint32_t stored;

    memset(h, 0, sizeof(*h));
    if (!data || len < MAGIC_LEN + 8 + 4) {
        BAD("index snapshot truncated (%zu bytes)", len);
        goto out;
    }
    if (memcmp(data, MAGIC, MAGIC_LEN) != 0) {
        BAD("not an index snapshot (bad magic)");
        goto out;
    }
    c.p = (const unsigned char *)data + len - 4;
    c.left = 4;
    get_le(&c, 4, &v);
    stored = (uint32_t)v;
    if (cairn__crc32c(0, data, len - 4) != stored) {
        BAD("index snapshot fails its CRC32C");
        goto out;
    }
    c.p = (const unsigned char *)data + MAGIC_LEN;
    c.left = len - MAGIC_LEN - 4;
    if (get_le(&c, 4, &v) || v != FORMAT) {
        BAD("index snapshot of unknown format %" PRIu64, v);
        goto out;
    }
    if (get_le(&c, 4, &v) || get_le(&c, 2, &tlen) || tlen == 0 || tlen > CAIRN__KSNAP_MAX_TOPIC ||
        tlen > c.left) {
        BAD("index snapshot: bad topic length");
        goto out;
    }
    if (tlen != strlen(topic) || memcmp(c.p, topic, tlen) != 0) {
        BAD("index snapshot of topic '%.*s', not '%s'", (int)tlen, (const char *)c.p, topic);
        goto out;
    }
    c.p += tlen;
    c.left -= tlen;
    uint64_t sp, spp, off, aend, eep, cts, cw;
    if (get_le(&c, 4, &sp) || get_le(&c, 4, &spp) || get_le(&c, 8, &off) || get_le(&c, 8, &epoch) ||
        get_le(&c, 8, &aend) || get_le(&c, 8, &eep) || get_le(&c, 8, &cts) || get_le(&c, 8, &cw) ||
        get_le(&c, 4, &nrecent)) {
        BAD("index snapshot truncated in its header");
        goto out;
    }
    if ((int64_t)sp != partition || (int64_t)spp != partitions) {
        BAD("index snapshot of partition %" PRIu64 " of %" PRIu64 ", not %d of %d", sp, spp,
            partition, partitions);
        goto out;
    }
    if (off > INT64_MAX || epoch > INT64_MAX || aend > off || eep > epoch || cts > INT64_MAX) {
        BAD("index snapshot: offsets or epochs out of range");
        goto out;
    }
    if (nrecent > CAIRN__RR_RECENT || (nrecent && epoch == 0) ||
        nrecent * CAIRN__RR_ID_LEN > c.left) {
        BAD("index snapshot: bad count of recent appends");
        goto out;
    }
    /* The rule restarts at the epoch; the recent ids go in through the rule
     * itself (each as a complete one-record append of that epoch), so the
     * ring and its hash table are rebuilt by the code that owns them. */
    cairn__rr_init(rr, (int64_t)epoch);
    for (uint64_t i = 0; i < nrecent; i++) {
        struct cairn__rr_meta m;
        memset(&m, 0, sizeof(m));
        m.kind = CAIRN__RR_KIND_EVENT;
        m.epoch = (int64_t)epoch;
        memcpy(m.append, c.p, CAIRN__RR_ID_LEN);
        m.index = 0;
        m.count = 1;
        if (cairn__rr_feed(rr, &m, NULL) != CAIRN__RR_COMPLETE) {
            BAD("index snapshot: repeated recent append id");
            goto out;
        }
        c.p += CAIRN__RR_ID_LEN;
        c.left -= CAIRN__RR_ID_LEN;
    }
    memset(rr->verdicts, 0, sizeof(rr->verdicts));
    /* each stream takes at least 4 + 1 + 1 + 1 bytes */
    if (get_le(&c, 8, &streams) || streams > c.left / 7) {
        BAD("index snapshot: bad stream count");
        goto out;
    }
    for (uint64_t s = 0; s < streams; s++) {
        uint64_t nlen, version, prev = 0;
        if (get_le(&c, 4, &nlen) || nlen == 0 || nlen > CAIRN__KSNAP_MAX_NAME || nlen > c.left) {
            BAD("index snapshot: bad name length of stream %" PRIu64, s);
            goto out;
        }
        if (memchr(c.p, '\0', nlen)) {
            BAD("index snapshot: NUL in the name of stream %" PRIu64, s);
            goto out;
        }
        char *nn = cairn__realloc(name, nlen + 1);
        if (!nn) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            goto out;
        }
        name = nn;
        memcpy(name, c.p, nlen);
        name[nlen] = '\0';
        c.p += nlen;
        c.left -= nlen;
        /* every offset takes at least one byte: the version is bounded by what remains */
        if (get_varint(&c, &version) || version == 0 || version > c.left) {
            BAD("index snapshot: bad version of stream '%s'", name);
            goto out;
        }
        if (version > offs_cap) {
            size_t ncap = offs_cap ? offs_cap : 16;
            while (ncap < version)
                ncap *= 2;
            int64_t *no = cairn__realloc(offs, ncap * sizeof(*no));
            if (!no) {
                rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
                goto out;
            }
            offs = no;
            offs_cap = ncap;
        }
        for (uint64_t i = 0; i < version; i++) {
            uint64_t d, o;
            if (get_varint(&c, &d) || (i > 0 && d == 0) || d > off || (o = prev + d) >= off) {
                BAD("index snapshot: bad offset of stream '%s' version %" PRIu64, name, i + 1);
                goto out;
            }
            offs[i] = (int64_t)o;
            prev = o;
        }
        if (cb && (rc = cb(opaque, name, version, offs)) != CAIRN_OK) {
            cairn__error_set(err, rc, 0, where, "index snapshot: stream '%s' not taken", name);
            goto out;
        }
    }
    if (c.left != 0) {
        BAD("index snapshot: %zu bytes of trailing garbage", c.left);
        goto out;
    }
    h->partition = partition;
    h->partitions = partitions;
    h->offset = (int64_t)off;
    h->accepted_end = (int64_t)aend;
    h->end_epoch = (int64_t)eep;
    h->claim_ts = (int64_t)cts;
    h->claim_writer = cw;
    h->streams = streams;
out:
    cairn__free(offs);
    cairn__free(name);
    return rc;
}

/* ---- files ---------------------------------------------------------------- */

int cairn__ksnap_path(char *buf, size_t size, const char *dir, const char *topic, int partition)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;
    int w = snprintf(buf, size, "%s/", dir);
    if (w < 0 || (size_t)w >= size)
        return -1;
    n = (size_t)w;
    /* Kafka topic names are [a-zA-Z0-9._-]; anything else is %-escaped so
     * that no name can leave the directory */
    for (const char *t = topic; *t; t++) {
        unsigned char ch = (unsigned char)*t;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || (ch == '.' && t != topic);
        if (n + 4 >= size)
            return -1;
        if (plain) {
            buf[n++] = (char)ch;
        } else {
            buf[n++] = '%';
            buf[n++] = digits[ch >> 4];
            buf[n++] = digits[ch & 15];
        }
    }
    w = snprintf(buf + n, size - n, "-%d.ksnap", partition);
    if (w < 0 || (size_t)w >= size - n)
        return -1;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

cairn_rc_t
cairn__ksnap_write_file(const char *path, const void *data, size_t len, cairn_error_t *err)
{
    char tmp[4096 + 32];
    cairn_rc_t rc = CAIRN_OK;
    int fd = -1;

    /* one temporary name per process: two processes may snapshot at once */
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return cairn__error_set(err, CAIRN_E_INVALID, 0, path, "snapshot path too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return cairn__error_errno(err, errno, tmp, "open");
    if (write_all(fd, data, len) != 0) {
        rc = cairn__error_errno(err, errno ? errno : EIO, tmp, "write");
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = cairn__error_errno(err, errno, tmp, "fsync");
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = cairn__error_errno(err, errno, tmp, "close");
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = cairn__error_errno(err, errno, path, "rename");
        goto out;
    }
    /* the rename is durable once the directory is */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (dlen == 0 || dlen >= sizeof(dir)) {
        dir[0] = slash ? '/' : '.';
        dir[1] = '\0';
    } else {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cairn__error_errno(err, errno, dir, "open");
    if (fsync(dfd) != 0)
        rc = cairn__error_errno(err, errno, dir, "fsync");
    close(dfd);
    return rc;
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

cairn_rc_t
cairn__ksnap_read_file(const char *path, size_t cap, void **data, size_t *len, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return cairn__error_set(err, CAIRN_E_NOT_FOUND, 0, path, "no snapshot '%s'", path);
        return cairn__error_errno(err, errno, path, "open");
    }
    if (fstat(fd, &st) != 0) {
        rc = cairn__error_errno(err, errno, path, "fstat");
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > cap) {
        rc =
            cairn__error_set(err, CAIRN_E_CORRUPT, 0, path,
                             "snapshot '%s' is not a regular file of at most %zu bytes", path, cap);
        goto out;
    }
    if (!(buf = cairn__malloc((size_t)st.st_size + 1))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cairn__error_errno(err, errno, path, "read");
            goto out;
        }
        if (r == 0)
            break; /* shrank meanwhile: the checks will say */
        got += (size_t)r;
    }
    *data = buf;
    *len = got;
    buf = NULL;
out:
    cairn__free(buf);
    close(fd);
    return rc;
}
