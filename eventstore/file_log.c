/* SPDX-License-Identifier: MIT */
/*
 * file_log.c - the embedded file backend of the record log (`file:DIR`).
 *
 * Layout
 * ------
 * DIR/LOCK                     an fcntl write lock held by the one writer process
 * DIR/durable                  the published durable end (two 16-byte slots)
 * DIR/00000000000000000000.log segment files, each named by the position of
 * DIR/00000000000000004096.log its first byte
 *
 * The log is one contiguous byte range [0, end) cut into segments: a segment
 * starts exactly where the one before it ends, so a record's position (the
 * global offset of its frame) is segment base + offset in the segment and
 * positions strictly increase across segments. The writer rolls to a new
 * segment when a batch would take the current one past segment_bytes (a
 * batch never straddles two segments; a batch larger than segment_bytes gets
 * a segment of its own).
 *
 * Framing
 * -------
 * A frame is `u32 length | u32 crc32c(payload) | payload` (frame.c describes
 * the payload). The reader bounds the length by max_record_bytes before it
 * reads or allocates anything, so a garbled length field that asks for
 * gigabytes is just a bad frame. A zero-filled tail (preallocated or sparse
 * blocks after a crash) has length 0, below the smallest payload, and is a
 * bad frame too (crc32c of nothing is 0, so the CRC alone would accept it).
 * Every record carries its index and count within its append: recovery and
 * readers only accept complete batches, so an append is all or nothing even
 * when a crash tears it. A batch is written with one pwrite.
 *
 * Appends and group commit
 * ------------------------
 * The mutex `mu` serialises writers and guards the index (stream -> positions
 * of its records, whose count is the stream's version), the segment table and
 * the ends. An append checks the expected version, encodes the batch into one
 * buffer, pwrites it at `written_end` and returns `written_end` as its ticket.
 * cairn_log_wait_durable(ticket) returns at once when `durable_end` has
 * passed the ticket; otherwise, when no fdatasync runs, the caller becomes the
 * syncer: it takes the current `written_end` as its target, drops the mutex,
 * fdatasyncs the current segment, publishes the target and broadcasts; all
 * the appends written meanwhile ride on the next sync, so N concurrent
 * appenders share far fewer than N fsyncs. Rolling fdatasyncs the old
 * segment before the new file exists and fsyncs the directory after creating
 * it, so a sync of the current segment covers everything before it and no
 * record of a new segment is acknowledged before its directory entry is
 * durable. A failed fdatasync is fatal (after a failure the page cache may
 * have dropped the dirty pages and a retry would lie): the log is marked
 * failed, every later append and wait returns CAIRN_E_IO_FSYNC with
 * CAIRN_ERR_FATAL, and only a reopen (which recovers from what is on disk)
 * brings it back.
 *
 * The durable marker
 * ------------------
 * After every successful sync the syncer pwrites the durable end into
 * DIR/durable: `u64 end | u32 crc32c(end) | u32 magic`, alternately into slot
 * 0 and slot 1, and readers take the larger valid slot, so a torn marker
 * write leaves the previous value readable. The marker is not fsynced per
 * commit, and that is safe because it is only ever written after the data it
 * names is durable: whatever version of the file survives a crash names a
 * prefix of the log that really is on disk. It can only be stale (too low).
 * Readers in other processes read it through the shared page cache, so they
 * see each commit at once and never read past durable data. Recovery uses it
 * to tell a damaged durable record (refuse to open: CAIRN_E_CORRUPT) from a
 * torn tail (cut it); a stale marker after a power loss only weakens that
 * check for the last commits, which are then cut with a WARNING if damaged.
 * To keep that window small the marker is fsynced at open, at each segment
 * roll and at close.
 *
 * Recovery
 * --------
 * The writer scans every segment at open, checks each frame's length, CRC,
 * payload structure, batch sequence and stream version, and rebuilds the
 * index as it goes (about 100k records in tens of ms; see README.md). At the
 * first bad frame, or at the start of a batch that never completed: when that
 * point lies before the durable marker the log refuses to open
 * (CAIRN_E_CORRUPT, a durable record is damaged); otherwise the tail is cut
 * (ftruncate, fdatasync, later segments unlinked, directory fsynced) and a
 * WARNING says how many bytes went. Segments other than the last must end
 * exactly where the next one starts (they were synced before it was
 * created), otherwise the log is corrupt.
 *
 * Readers
 * -------
 * Replays and stream reads use pread (no shared file offset) and run
 * concurrently with appends; they snapshot `durable_end` and never read past
 * it. A read-only opener takes no lock and reads only up to the published
 * marker, which each read reads again; it builds the index (a scan up to
 * the marker) only when a stream read or a replay from a position needs it,
 * so a reader that only tails the log (a projector) neither scans the whole
 * log at open nor holds a position per record.
 *
 * Limits: fcntl locks belong to the process, so two opens of one directory
 * within one process are not detected (and closing either drops the lock):
 * open a directory once per process. Only the single writer process may
 * append.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "eventstore_int.h"

#define DEFAULT_SEGMENT_BYTES (64u * 1024u * 1024u)
#define DEFAULT_MAX_RECORD    (8u * 1024u * 1024u)
#define MAX_BATCH_BYTES       ((size_t)1 << 30)
#define MARKER_MAGIC          0x52554443u /* "CDUR" */
#define SCAN_AHEAD            (1u << 20)
#define REPLAY_AHEAD          (256u << 10)
#define POINT_AHEAD           4096u
#define NO_BAD                UINT64_MAX
#define CTX                   "eventstore"

struct segment {
    uint64_t base;
    int fd;
};

typedef struct file_log file_log_t;

struct file_log {
    char *dir;
    int read_only;
    int no_sync;
    size_t segment_bytes;
    size_t max_record_bytes;
    int dir_fd;
    int lock_fd;
    int durable_fd;
    int (*sync_fn)(int fd);
    int opened; /* open succeeded: close may publish the marker */

    pthread_mutex_t mu;
    pthread_cond_t synced;
    /* Guarded by mu. */
    struct segment *segs;
    size_t nseg;
    size_t segcap;
    uint64_t written_end;
    uint64_t durable_end;
    /* Read-only: the index covers [0, indexed_end); it is built when a
       stream read or a replay from a position needs it (refresh). */
    uint64_t indexed_end;
    int syncing;
    int failed;
    int fail_errno;
    struct cairn__es_index idx;
    unsigned char *wbuf;
    size_t wcap;
    struct cairn__log_stats stats;
    /* Touched only by the one syncer at a time (or at open and close). */
    uint64_t publish_seq;
};

/* A buffered, bounded pread window over one segment. */
struct reader {
    int fd;
    uint64_t base; /* position of file offset 0 */
    uint64_t end;  /* never read at or past this position */
    unsigned char *buf;
    size_t cap;
    uint64_t bpos; /* position of buf[0] */
    size_t blen;
    size_t ahead;
};

static void file_close_log(file_log_t *log);

/* ---- small helpers ------------------------------------------------------ */

static void put64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void segment_name(char *buf, size_t n, uint64_t base)
{
    snprintf(buf, n, "%020" PRIu64 ".log", base);
}

static cairn_rc_t pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t k = pwrite(fd, b, n, off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return CAIRN_E_IO;
        }
        b += k;
        n -= (size_t)k;
        off += k;
    }
    return CAIRN_OK;
}

static cairn_rc_t fatal_error(file_log_t *log, cairn_error_t *err)
{
    return cairn__error_setc(err, CAIRN_E_IO_FSYNC, log->fail_errno, CAIRN_ERR_FATAL, log->dir,
                             "fdatasync of log '%s' failed: %s; close and reopen it", log->dir,
                             strerror(log->fail_errno));
}

/* Locks: mu held. */
static void mark_failed(file_log_t *log, int e)
{
    if (!log->failed) {
        log->failed = 1;
        log->fail_errno = e ? e : EIO;
        cairn__log(CAIRN_LOG_ERR, CTX, "log '%s' failed: %s; it accepts no more appends", log->dir,
                   strerror(log->fail_errno));
    }
    pthread_cond_broadcast(&log->synced);
}

/* Locks: mu held. The index of the segment holding @p pos (largest base <= pos). */
static size_t seg_index(const file_log_t *log, uint64_t pos)
{
    size_t lo = 0, hi = log->nseg;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid].base <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the durable marker ------------------------------------------------- */

static uint64_t read_marker(int fd)
{
    unsigned char b[32];
    uint64_t best = 0;
    if (fd < 0)
        return 0;
    ssize_t k = pread(fd, b, sizeof b, 0);
    for (ssize_t s = 0; s + 16 <= k; s += 16) {
        const unsigned char *p = b + s;
        uint32_t crc = (uint32_t)get64le(p + 8) & 0xffffffffu;
        uint32_t magic = (uint32_t)(get64le(p + 8) >> 32);
        if (magic == MARKER_MAGIC && crc == cairn__crc32c(0, p, 8) && get64le(p) > best)
            best = get64le(p);
    }
    return best;
}

/* Thread: the syncer, or open/close. */
static void publish_marker(file_log_t *log, uint64_t end)
{
    unsigned char b[16];
    put64le(b, end);
    uint64_t tail = (uint64_t)MARKER_MAGIC << 32 | cairn__crc32c(0, b, 8);
    put64le(b + 8, tail);
    off_t slot = (off_t)(log->publish_seq++ & 1) * 16;
    if (pwrite_all(log->durable_fd, b, sizeof b, slot) != CAIRN_OK)
        cairn__log(CAIRN_LOG_WARNING, CTX, "cannot publish the durable end of log '%s': %s",
                   log->dir, strerror(errno));
}

/* ---- segments ----------------------------------------------------------- */

static int cmp_seg(const void *a, const void *b)
{
    const struct segment *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

static int parse_segment_name(const char *name, uint64_t *base)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *base = v;
    return 0;
}

static cairn_rc_t seg_reserve(file_log_t *log, size_t extra)
{
    if (log->nseg + extra <= log->segcap)
        return CAIRN_OK;
    size_t ncap = log->segcap ? log->segcap * 2 : 8;
    while (ncap < log->nseg + extra)
        ncap *= 2;
    struct segment *ns = cairn__realloc(log->segs, ncap * sizeof *ns);
    if (!ns)
        return CAIRN_E_NOMEM;
    log->segs = ns;
    log->segcap = ncap;
    return CAIRN_OK;
}

/* Locks: mu held (or open). Adds segment files not yet in the table. */
static cairn_rc_t list_segments(file_log_t *log, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    DIR *d = opendir(log->dir);
    if (!d)
        return cairn__error_errno(err, errno, log->dir, "opendir");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t base;
        if (parse_segment_name(e->d_name, &base) != 0)
            continue;
        int known = 0;
        for (size_t i = log->nseg; i-- > 0 && !known;)
            known = log->segs[i].base == base;
        if (known)
            continue;
        if (seg_reserve(log, 1) != CAIRN_OK) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, log->dir, "out of memory");
            goto out;
        }
        int fd = openat(log->dir_fd, e->d_name, (log->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (fd < 0) {
            rc = cairn__error_errno(err, errno, e->d_name, "open");
            goto out;
        }
        log->segs[log->nseg].base = base;
        log->segs[log->nseg].fd = fd;
        log->nseg++;
    }
    if (log->nseg > 1)
        qsort(log->segs, log->nseg, sizeof *log->segs, cmp_seg);
out:
    closedir(d);
    return rc;
}

/* Locks: mu held (or open). Creates the segment starting at written_end. */
static cairn_rc_t create_segment(file_log_t *log, cairn_error_t *err)
{
    char name[32];
    if (seg_reserve(log, 1) != CAIRN_OK)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, log->dir, "out of memory");
    segment_name(name, sizeof name, log->written_end);
    int fd = openat(log->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cairn__error_errno(err, errno, name, "create segment");
    if (fsync(log->dir_fd) != 0) {
        /* The new entry may not survive a crash: nothing may be acknowledged in it. */
        int e = errno;
        close(fd);
        unlinkat(log->dir_fd, name, 0);
        mark_failed(log, e);
        return fatal_error(log, err);
    }
    log->segs[log->nseg].base = log->written_end;
    log->segs[log->nseg].fd = fd;
    log->nseg++;
    log->stats.segments++;
    return CAIRN_OK;
}

/* Locks: mu held. Syncs the current segment, then starts a new one. */
static cairn_rc_t roll(file_log_t *log, cairn_error_t *err)
{
    int fd = log->segs[log->nseg - 1].fd;
    if (!log->no_sync) {
        if (log->sync_fn(fd) != 0) {
            mark_failed(log, errno);
            return fatal_error(log, err);
        }
        log->stats.fsyncs++;
        fsync(log->durable_fd);
    }
    return create_segment(log, err);
}

/* ---- reading frames ----------------------------------------------------- */

static void reader_init(struct reader *r, size_t ahead)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->ahead = ahead;
}

static void reader_set(struct reader *r, int fd, uint64_t base, uint64_t end)
{
    if (r->fd != fd)
        r->blen = 0;
    r->fd = fd;
    r->base = base;
    r->end = end;
}

/* Makes [pos, pos + need) readable in r->buf. CAIRN_DONE: not that many bytes. */
static cairn_rc_t reader_fill(struct reader *r, uint64_t pos, size_t need, cairn_error_t *err)
{
    if (pos > r->end || need > r->end - pos)
        return CAIRN_DONE;
    if (pos >= r->bpos && pos + need <= r->bpos + r->blen)
        return CAIRN_OK;
    size_t want = need > r->ahead ? need : r->ahead;
    if (want > r->end - pos)
        want = (size_t)(r->end - pos);
    if (want > r->cap) {
        unsigned char *nb = cairn__realloc(r->buf, want);
        if (!nb)
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        r->buf = nb;
        r->cap = want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(r->fd, r->buf + got, want - got, (off_t)(pos - r->base + got));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r->blen = 0;
            return cairn__error_errno(err, errno, NULL, "pread");
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    r->bpos = pos;
    r->blen = got;
    return got < need ? CAIRN_DONE : CAIRN_OK;
}

/*
 * Reads the frame at @p pos. CAIRN_DONE when pos is the reader's end;
 * CAIRN_E_CORRUPT (reason in *why, nothing in err) for a bad or short frame.
 */
static cairn_rc_t read_frame(struct reader *r,
                             uint64_t pos,
                             size_t max_payload,
                             const unsigned char **payload,
                             uint32_t *plen,
                             const char **why,
                             cairn_error_t *err)
{
    uint32_t len, crc;
    if (pos == r->end)
        return CAIRN_DONE;
    cairn_rc_t rc = reader_fill(r, pos, CAIRN__FRAME_HEADER, err);
    if (rc == CAIRN_DONE) {
        *why = "short frame header";
        return CAIRN_E_CORRUPT;
    }
    if (rc != CAIRN_OK)
        return rc;
    cairn__frame_header(r->buf + (pos - r->bpos), &len, &crc);
    if (len < CAIRN__FRAME_MIN_PAYLOAD || len > max_payload) {
        *why = "bad frame length";
        return CAIRN_E_CORRUPT;
    }
    rc = reader_fill(r, pos, CAIRN__FRAME_HEADER + (size_t)len, err);
    if (rc == CAIRN_DONE) {
        *why = "short frame";
        return CAIRN_E_CORRUPT;
    }
    if (rc != CAIRN_OK)
        return rc;
    const unsigned char *p = r->buf + (pos - r->bpos) + CAIRN__FRAME_HEADER;
    if (cairn__crc32c(0, p, len) != crc) {
        *why = "checksum mismatch";
        return CAIRN_E_CORRUPT;
    }
    *payload = p;
    *plen = len;
    return CAIRN_OK;
}

/*
 * Locks: mu held (or open). Scans frames from durable_end up to @p limit (or
 * the end of the files), adding complete batches to the index. *good is the
 * end of the last complete batch; *bad the first bad point (a bad frame or
 * the start of an incomplete batch), NO_BAD when none.
 */
static cairn_rc_t scan(file_log_t *log,
                       uint64_t limit,
                       uint64_t *good,
                       uint64_t *bad,
                       const char **why,
                       cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    struct reader r;
    cairn_header_t *hdrs = NULL;
    size_t hcap = 0;
    uint64_t *bpos = NULL;
    size_t bcap = 0;
    uint64_t pos = log->indexed_end, batch_start = pos, bver0 = 0;
    uint32_t bcount = 0, bnext = 0;
    struct cairn__es_stream *bs = NULL;

    reader_init(&r, SCAN_AHEAD);
    *good = pos;
    *bad = NO_BAD;
    for (size_t i = log->nseg ? seg_index(log, pos) : 0; i < log->nseg && pos < limit; i++) {
        struct stat st;
        char name[32];
        segment_name(name, sizeof name, log->segs[i].base);
        if (fstat(log->segs[i].fd, &st) != 0) {
            rc = cairn__error_errno(err, errno, name, "fstat");
            goto out;
        }
        uint64_t fend = log->segs[i].base + (uint64_t)st.st_size;
        if (i + 1 < log->nseg && fend != log->segs[i + 1].base) {
            rc = cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                  "segment '%s' of log '%s' ends at %" PRIu64
                                  ", not where the next one starts (%" PRIu64 ")",
                                  name, log->dir, fend, log->segs[i + 1].base);
            goto out;
        }
        reader_set(&r, log->segs[i].fd, log->segs[i].base, fend < limit ? fend : limit);
        while (pos < r.end) {
            const unsigned char *p;
            uint32_t len;
            cairn_record_t rec;
            struct cairn__frame_batch b;
            rc = read_frame(&r, pos, log->max_record_bytes, &p, &len, why, err);
            if (rc == CAIRN_E_CORRUPT) {
                *bad = pos;
                rc = CAIRN_OK;
                goto stop;
            }
            if (rc != CAIRN_OK)
                goto out;
            rc = cairn__frame_decode(p, len, &rec, &b, &hdrs, &hcap, why);
            if (rc == CAIRN_E_CORRUPT) {
                *bad = pos;
                rc = CAIRN_OK;
                goto stop;
            }
            if (rc != CAIRN_OK) {
                rc = cairn__error_set(err, rc, 0, log->dir, "out of memory");
                goto out;
            }
            if (b.index != bnext || (bnext && (b.count != bcount || strcmp(rec.stream, bs->name) ||
                                               rec.version != bver0 + b.index))) {
                *why = "record out of its batch's sequence";
                *bad = pos;
                goto stop;
            }
            if (bnext == 0) {
                rc = cairn__es_index_get(&log->idx, rec.stream, strlen(rec.stream), &bs);
                if (rc != CAIRN_OK) {
                    rc = cairn__error_set(err, rc, 0, log->dir, "out of memory");
                    goto out;
                }
                batch_start = pos;
                bcount = b.count;
                bver0 = bs->n + 1;
                if (rec.version != bver0) {
                    *why = "stream version out of sequence";
                    *bad = pos;
                    goto stop;
                }
            }
            if (bnext >= bcap) {
                size_t nc = bcap ? bcap * 2 : 16;
                uint64_t *nb = cairn__realloc(bpos, nc * sizeof *nb);
                if (!nb) {
                    rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, log->dir, "out of memory");
                    goto out;
                }
                bpos = nb;
                bcap = nc;
            }
            bpos[bnext++] = pos;
            pos += CAIRN__FRAME_HEADER + len;
            if (bnext == bcount) {
                if (cairn__es_index_reserve(&log->idx, bs, bcount) != CAIRN_OK) {
                    rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, log->dir, "out of memory");
                    goto out;
                }
                for (uint32_t k = 0; k < bcount; k++)
                    cairn__es_index_push(&log->idx, bs, bpos[k]);
                bnext = 0;
                *good = pos;
            }
        }
    }
stop:
    if (bnext != 0) {
        /* A batch never completed: it goes as a whole. */
        if (*bad == NO_BAD)
            *why = "incomplete batch";
        *bad = batch_start;
    }
out:
    cairn__free(r.buf);
    cairn__free(hdrs);
    cairn__free(bpos);
    return rc;
}

/* Locks: open only. Cuts everything from @p at (a torn tail). */
static cairn_rc_t cut_tail(file_log_t *log, uint64_t at, const char *why, cairn_error_t *err)
{
    size_t i = seg_index(log, at);
    uint64_t cut = 0;
    char name[32];
    for (size_t j = i; j < log->nseg; j++) {
        struct stat st;
        if (fstat(log->segs[j].fd, &st) != 0)
            return cairn__error_errno(err, errno, log->dir, "fstat");
        uint64_t fend = log->segs[j].base + (uint64_t)st.st_size;
        uint64_t from = j == i ? at : log->segs[j].base;
        cut += fend > from ? fend - from : 0;
    }
    segment_name(name, sizeof name, log->segs[i].base);
    if (ftruncate(log->segs[i].fd, (off_t)(at - log->segs[i].base)) != 0)
        return cairn__error_errno(err, errno, name, "ftruncate");
    if (log->sync_fn(log->segs[i].fd) != 0)
        return cairn__error_errno(err, errno, name, "fdatasync");
    for (size_t j = log->nseg; j-- > i + 1;) {
        segment_name(name, sizeof name, log->segs[j].base);
        close(log->segs[j].fd);
        if (unlinkat(log->dir_fd, name, 0) != 0 && errno != ENOENT)
            return cairn__error_errno(err, errno, name, "unlink");
        log->nseg--;
    }
    if (fsync(log->dir_fd) != 0)
        return cairn__error_errno(err, errno, log->dir, "fsync");
    cairn__log(CAIRN_LOG_WARNING, CTX,
               "cut %" PRIu64 " bytes of torn tail at position %" PRIu64 " of log '%s' (%s)", cut,
               at, log->dir, why);
    return CAIRN_OK;
}

/* Locks: open only. The writer's recovery. */
static cairn_rc_t recover(file_log_t *log, uint64_t marker, cairn_error_t *err)
{
    cairn_rc_t rc = list_segments(log, err);
    uint64_t good, bad;
    const char *why = "";
    if (rc != CAIRN_OK)
        return rc;
    if (log->nseg == 0) {
        if (marker)
            return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                    "log '%s' has no segments but a durable end of %" PRIu64,
                                    log->dir, marker);
        return create_segment(log, err);
    }
    if (log->segs[0].base != 0)
        return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                "log '%s' misses its first segment", log->dir);
    rc = scan(log, UINT64_MAX, &good, &bad, &why, err);
    if (rc != CAIRN_OK)
        return rc;
    if (bad != NO_BAD && bad < marker)
        return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                "log '%s' is damaged at position %" PRIu64
                                " before its durable end %" PRIu64 ": %s",
                                log->dir, bad, marker, why);
    if (good < marker)
        return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                "log '%s' ends at %" PRIu64 " before its durable end %" PRIu64,
                                log->dir, good, marker);
    if (bad != NO_BAD && (rc = cut_tail(log, bad, why, err)) != CAIRN_OK)
        return rc;
    log->written_end = log->durable_end = log->indexed_end = good;
    return CAIRN_OK;
}

/*
 * Locks: mu held. A read-only opener: takes the durable end the writer
 * published as what may be read, and with @p need_index brings the index up
 * to it (the scan checks every frame, batch and stream version on the way).
 * Tails and replays from the start need no index: a reader that only follows
 * the log (a projector) pays neither the scan of the whole log at open nor
 * the index's memory (a position per record); its reads check each frame's
 * length and CRC as they go.
 */
static cairn_rc_t refresh(file_log_t *log, int need_index, cairn_error_t *err)
{
    cairn_rc_t rc;
    if (log->durable_fd < 0) {
        log->durable_fd = openat(log->dir_fd, "durable", O_RDONLY | O_CLOEXEC);
        if (log->durable_fd < 0)
            return CAIRN_OK; /* no writer has committed yet */
    }
    uint64_t marker = read_marker(log->durable_fd);
    if (marker > log->durable_end) {
        if ((rc = list_segments(log, err)) != CAIRN_OK)
            return rc;
        log->durable_end = log->written_end = marker;
    }
    if (!need_index || log->indexed_end >= log->durable_end)
        return CAIRN_OK;
    uint64_t good, bad;
    const char *why = "";
    if ((rc = scan(log, log->durable_end, &good, &bad, &why, err)) != CAIRN_OK)
        return rc;
    if (bad != NO_BAD && bad < log->durable_end)
        return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                "log '%s' is damaged at position %" PRIu64 ": %s", log->dir, bad,
                                why);
    if (good < log->durable_end)
        return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                                "log '%s' ends at %" PRIu64 " before its durable end %" PRIu64,
                                log->dir, good, log->durable_end);
    log->indexed_end = good;
    return CAIRN_OK;
}

/* ---- open and close ----------------------------------------------------- */

static cairn_rc_t take_lock(file_log_t *log, cairn_error_t *err)
{
    log->lock_fd = openat(log->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (log->lock_fd < 0)
        return cairn__error_errno(err, errno, log->dir, "open lock of");
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(log->lock_fd, F_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN)
            return cairn__error_setc(err, CAIRN_E_CONFLICT_LOCKED, e, 0, log->dir,
                                     "log directory '%s' is locked by another process", log->dir);
        return cairn__error_errno(err, e, log->dir, "lock");
    }
    return CAIRN_OK;
}

static cairn_rc_t file_open_dir(const char *url,
                                const cairn_log_options_t *opts,
                                file_log_t **out,
                                cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    file_log_t *log = NULL;
    const char *path;

    if (!url || !out)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "log url and out are required");
    *out = NULL;
    path = url;
    if (!*path)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, url, "empty log directory");
    log = cairn__calloc(1, sizeof *log);
    if (!log)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, url, "out of memory");
    log->dir = cairn__strdup(path);
    if (!log->dir || pthread_mutex_init(&log->mu, NULL) != 0) {
        cairn__free(log->dir);
        cairn__free(log);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, url, "out of memory");
    }
    if (pthread_cond_init(&log->synced, NULL) != 0) {
        pthread_mutex_destroy(&log->mu);
        cairn__free(log->dir);
        cairn__free(log);
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, url, "cannot create a condition variable");
    }
    /* From here on file_close_log() undoes whatever was done. */
    log->dir_fd = log->lock_fd = log->durable_fd = -1;
    log->sync_fn = fdatasync;
    log->read_only = opts && opts->read_only;
    log->no_sync = opts && opts->no_sync;
    log->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT_BYTES;
    log->max_record_bytes =
        opts && opts->max_record_bytes ? opts->max_record_bytes : DEFAULT_MAX_RECORD;
    if (log->max_record_bytes > UINT32_MAX)
        log->max_record_bytes = UINT32_MAX;
    cairn__es_index_init(&log->idx);
    if (!log->read_only && mkdir(log->dir, 0700) != 0 && errno != EEXIST) {
        rc = cairn__error_errno(err, errno, log->dir, "mkdir");
        goto out;
    }
    log->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        if (errno == ENOENT)
            rc = cairn__error_setc(err, CAIRN_E_NOT_FOUND, ENOENT, 0, log->dir,
                                   "log directory '%s' does not exist", log->dir);
        else
            rc = cairn__error_errno(err, errno, log->dir, "open");
        goto out;
    }
    if (log->read_only) {
        rc = list_segments(log, err);
        if (rc == CAIRN_OK)
            rc = refresh(log, 0, err);
        goto out;
    }
    if ((rc = take_lock(log, err)) != CAIRN_OK)
        goto out;
    log->durable_fd = openat(log->dir_fd, "durable", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (log->durable_fd < 0) {
        rc = cairn__error_errno(err, errno, log->dir, "open durable marker of");
        goto out;
    }
    if ((rc = recover(log, read_marker(log->durable_fd), err)) != CAIRN_OK)
        goto out;
    /* Both slots name the recovered end: a stale slot cannot win later. */
    publish_marker(log, log->durable_end);
    publish_marker(log, log->durable_end);
    if (fsync(log->durable_fd) != 0 || fsync(log->dir_fd) != 0) {
        rc = cairn__error_errno(err, errno, log->dir, "fsync");
        goto out;
    }
out:
    if (rc != CAIRN_OK) {
        file_close_log(log);
        return rc;
    }
    log->opened = 1;
    *out = log;
    return CAIRN_OK;
}

static void file_close_log(file_log_t *log)
{
    if (!log)
        return;
    if (log->opened && !log->read_only && !log->failed) {
        /* Leave the marker itself durable for the next open's recovery. */
        publish_marker(log, log->durable_end);
        fsync(log->durable_fd);
    }
    for (size_t i = 0; i < log->nseg; i++)
        close(log->segs[i].fd);
    if (log->durable_fd >= 0)
        close(log->durable_fd);
    if (log->lock_fd >= 0)
        close(log->lock_fd);
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    cairn__es_index_release(&log->idx);
    pthread_cond_destroy(&log->synced);
    pthread_mutex_destroy(&log->mu);
    cairn__free(log->segs);
    cairn__free(log->wbuf);
    cairn__free(log->dir);
    cairn__free(log);
}

/* ---- appends ------------------------------------------------------------ */

static cairn_rc_t file_append_nowait_log(file_log_t *log,
                                         const char *stream,
                                         int64_t expected_version,
                                         cairn_record_t *records,
                                         size_t n,
                                         uint64_t *last_version,
                                         uint64_t *ticket,
                                         cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    size_t total = 0, slen;
    size_t *sizes = NULL;
    int64_t ts = cairn__wall_ms();

    if (!log || !stream || !records || n == 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                "an append needs a log, a stream and at least one record");
    if (log->read_only)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, log->dir, "log '%s' is open read-only",
                                log->dir);
    if (expected_version < CAIRN_EXPECT_NO_STREAM)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "bad expected version %" PRId64,
                                expected_version);
    if (n > UINT32_MAX || n > MAX_BATCH_BYTES / CAIRN__FRAME_MIN_PAYLOAD)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "batch of %zu records too large",
                                n);
    slen = strlen(stream);
    sizes = cairn__calloc(n, sizeof *sizes);
    if (!sizes)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
    for (size_t i = 0; i < n; i++) {
        rc = cairn__frame_size(stream, slen, &records[i], log->max_record_bytes, &sizes[i], err);
        if (rc != CAIRN_OK)
            goto out_free;
        total += CAIRN__FRAME_HEADER + sizes[i];
        if (total > MAX_BATCH_BYTES) {
            rc = cairn__error_set(err, CAIRN_E_INVALID, 0, stream, "batch larger than %zu bytes",
                                  MAX_BATCH_BYTES);
            goto out_free;
        }
    }

    pthread_mutex_lock(&log->mu);
    if (log->failed) {
        rc = fatal_error(log, err);
        goto out;
    }
    struct cairn__es_stream *s = cairn__es_index_find(&log->idx, stream, slen);
    uint64_t cur = s ? s->n : 0;
    if (expected_version != CAIRN_EXPECT_ANY &&
        cur != (expected_version == CAIRN_EXPECT_NO_STREAM ? 0 : (uint64_t)expected_version)) {
        if (expected_version == CAIRN_EXPECT_NO_STREAM)
            rc = cairn__error_setc(err, CAIRN_E_CONFLICT_VERSION,
                                   cur > INT_MAX ? INT_MAX : (int)cur, CAIRN_ERR_CONFLICT, stream,
                                   "stream '%s' is at version %" PRIu64 ", expected no stream",
                                   stream, cur);
        else
            rc = cairn__error_setc(err, CAIRN_E_CONFLICT_VERSION,
                                   cur > INT_MAX ? INT_MAX : (int)cur, CAIRN_ERR_CONFLICT, stream,
                                   "stream '%s' is at version %" PRIu64 ", expected %" PRId64,
                                   stream, cur, expected_version);
        goto out;
    }
    if (total > log->wcap) {
        unsigned char *nb = cairn__realloc(log->wbuf, total);
        if (!nb) {
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
            goto out;
        }
        log->wbuf = nb;
        log->wcap = total;
    }
    if (!s && cairn__es_index_get(&log->idx, stream, slen, &s) != CAIRN_OK) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
        goto out;
    }
    if (cairn__es_index_reserve(&log->idx, s, n) != CAIRN_OK) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
        goto out;
    }
    uint64_t seg_used = log->written_end - log->segs[log->nseg - 1].base;
    if (seg_used > 0 && seg_used + total > log->segment_bytes && (rc = roll(log, err)) != CAIRN_OK)
        goto out;

    struct segment *seg = &log->segs[log->nseg - 1];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cairn_record_t r = records[i];
        r.version = cur + 1 + i;
        if (!r.timestamp_ms)
            r.timestamp_ms = ts;
        struct cairn__frame_batch b = {(uint32_t)i, (uint32_t)n};
        cairn__frame_encode(log->wbuf + off, sizes[i], stream, slen, &r, b);
        off += CAIRN__FRAME_HEADER + sizes[i];
    }
    if (pwrite_all(seg->fd, log->wbuf, total, (off_t)(log->written_end - seg->base)) != CAIRN_OK) {
        int e = errno;
        /* Take back a partial write so that the next batch starts at a frame
         * boundary; when that fails too, only a reopen (recovery) is safe. */
        if (ftruncate(seg->fd, (off_t)(log->written_end - seg->base)) != 0)
            mark_failed(log, errno);
        rc = cairn__error_errno(err, e, log->dir, "write to log");
        goto out;
    }
    off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t pos = log->written_end + off;
        cairn__es_index_push(&log->idx, s, pos);
        records[i].version = cur + 1 + i;
        records[i].position = pos;
        if (!records[i].timestamp_ms)
            records[i].timestamp_ms = ts;
        off += CAIRN__FRAME_HEADER + sizes[i];
    }
    log->written_end += total;
    log->stats.appends++;
    log->stats.records += n;
    if (last_version)
        *last_version = s->n;
    if (ticket)
        *ticket = log->written_end;
out:
    pthread_mutex_unlock(&log->mu);
out_free:
    cairn__free(sizes);
    return rc;
}

static cairn_rc_t file_wait_durable_log(file_log_t *log, uint64_t ticket, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    if (!log)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "no log");
    if (log->read_only)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, log->dir, "log '%s' is open read-only",
                                log->dir);
    pthread_mutex_lock(&log->mu);
    if (ticket > log->written_end) {
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, log->dir,
                              "ticket %" PRIu64 " is past the written end %" PRIu64, ticket,
                              log->written_end);
        goto out;
    }
    for (;;) {
        if (log->failed) {
            rc = fatal_error(log, err);
            break;
        }
        if (log->durable_end >= ticket)
            break;
        if (log->syncing) {
            pthread_cond_wait(&log->synced, &log->mu);
            continue;
        }
        /* Become the syncer for everything written so far. */
        uint64_t target = log->written_end;
        int fd = log->segs[log->nseg - 1].fd, e = 0;
        log->syncing = 1;
        pthread_mutex_unlock(&log->mu);
        if (!log->no_sync && log->sync_fn(fd) != 0)
            e = errno ? errno : EIO;
        if (!e)
            publish_marker(log, target);
        pthread_mutex_lock(&log->mu);
        log->syncing = 0;
        if (e) {
            mark_failed(log, e);
            continue;
        }
        if (!log->no_sync)
            log->stats.fsyncs++;
        if (target > log->durable_end)
            log->durable_end = target;
        pthread_cond_broadcast(&log->synced);
    }
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

/* Locks: takes mu. Points @p r at the segment holding @p pos, bounded by @p limit. */
static void reader_seek(file_log_t *log, struct reader *r, uint64_t pos, uint64_t limit)
{
    pthread_mutex_lock(&log->mu);
    size_t i = seg_index(log, pos);
    uint64_t next = i + 1 < log->nseg ? log->segs[i + 1].base : UINT64_MAX;
    reader_set(r, log->segs[i].fd, log->segs[i].base, next < limit ? next : limit);
    pthread_mutex_unlock(&log->mu);
}

static cairn_rc_t damaged(file_log_t *log, uint64_t pos, const char *why, cairn_error_t *err)
{
    return cairn__error_set(err, CAIRN_E_CORRUPT, 0, log->dir,
                            "record at position %" PRIu64 " of log '%s' is damaged: %s", pos,
                            log->dir, why);
}

/* Reads and decodes the record at @p pos; CAIRN_E_CORRUPT when it is not one. */
static cairn_rc_t read_record(file_log_t *log,
                              struct reader *r,
                              uint64_t pos,
                              cairn_record_t *rec,
                              uint32_t *len,
                              cairn_header_t **hdrs,
                              size_t *hcap,
                              cairn_error_t *err)
{
    const unsigned char *p;
    const char *why = "";
    struct cairn__frame_batch b;
    cairn_rc_t rc = read_frame(r, pos, log->max_record_bytes, &p, len, &why, err);
    if (rc == CAIRN_DONE)
        why = "unexpected end of segment";
    if (rc == CAIRN_E_CORRUPT || rc == CAIRN_DONE)
        return damaged(log, pos, why, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = cairn__frame_decode(p, *len, rec, &b, hdrs, hcap, &why);
    if (rc == CAIRN_E_CORRUPT)
        return damaged(log, pos, why, err);
    if (rc != CAIRN_OK)
        return cairn__error_set(err, rc, 0, log->dir, "out of memory");
    rec->position = pos;
    rec->partition = 0;
    return CAIRN_OK;
}

static cairn_rc_t file_replay_log(
    file_log_t *log, uint64_t from_position, cairn_record_cb *cb, void *opaque, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    struct reader r;
    cairn_header_t *hdrs = NULL;
    size_t hcap = 0;
    uint64_t limit, pos;

    if (!log || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "replay needs a log and a callback");
    reader_init(&r, REPLAY_AHEAD);
    pthread_mutex_lock(&log->mu);
    if (log->read_only)
        rc = refresh(log, from_position > 0, err);
    limit = log->durable_end;
    /* Start at the first record at or after from_position (the log's first
       record is at 0: no index is needed for a replay from the start). */
    size_t lo = 0, hi = from_position > 0 ? log->idx.all_n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->idx.all[mid] < from_position)
            lo = mid + 1;
        else
            hi = mid;
    }
    pos = from_position == 0 ? 0 : lo < log->idx.all_n ? log->idx.all[lo] : limit;
    pthread_mutex_unlock(&log->mu);
    if (rc != CAIRN_OK)
        goto out;

    while (pos < limit) {
        cairn_record_t rec;
        uint32_t len;
        if (pos >= r.end || r.fd < 0)
            reader_seek(log, &r, pos, limit);
        rc = read_record(log, &r, pos, &rec, &len, &hdrs, &hcap, err);
        if (rc != CAIRN_OK)
            goto out;
        if (cb(opaque, &rec) != 0) {
            rc = CAIRN_AGAIN;
            goto out;
        }
        pos += CAIRN__FRAME_HEADER + len;
    }
    rc = CAIRN_DONE;
out:
    cairn__free(r.buf);
    cairn__free(hdrs);
    return rc;
}

static cairn_rc_t file_read_stream_log(file_log_t *log,
                                       const char *stream,
                                       uint64_t from_version,
                                       cairn_record_cb *cb,
                                       void *opaque,
                                       cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    struct reader r;
    cairn_header_t *hdrs = NULL;
    size_t hcap = 0, np = 0;
    uint64_t *pos = NULL, limit;

    if (!log || !stream || !cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, stream,
                                "read_stream needs a log, a stream and a callback");
    reader_init(&r, POINT_AHEAD);
    if (from_version == 0)
        from_version = 1;
    pthread_mutex_lock(&log->mu);
    if (log->read_only)
        rc = refresh(log, 1, err);
    limit = log->durable_end;
    struct cairn__es_stream *s = cairn__es_index_find(&log->idx, stream, strlen(stream));
    if (rc == CAIRN_OK && s && from_version <= s->n) {
        size_t first = (size_t)(from_version - 1);
        np = s->n - first;
        pos = cairn__calloc(np, sizeof *pos);
        if (pos)
            memcpy(pos, s->pos + first, np * sizeof *pos);
        else
            rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, stream, "out of memory");
    }
    pthread_mutex_unlock(&log->mu);
    if (rc != CAIRN_OK)
        goto out;

    for (size_t i = 0; i < np && pos[i] < limit; i++) {
        cairn_record_t rec;
        uint32_t len;
        if (pos[i] >= r.end || pos[i] < r.base || r.fd < 0)
            reader_seek(log, &r, pos[i], limit);
        rc = read_record(log, &r, pos[i], &rec, &len, &hdrs, &hcap, err);
        if (rc != CAIRN_OK)
            goto out;
        if (strcmp(rec.stream, stream) != 0) {
            rc = damaged(log, pos[i], "record of another stream", err);
            goto out;
        }
        if (cb(opaque, &rec) != 0) {
            rc = CAIRN_AGAIN;
            goto out;
        }
    }
    rc = CAIRN_DONE;
out:
    cairn__free(pos);
    cairn__free(r.buf);
    cairn__free(hdrs);
    return rc;
}

static uint64_t file_stream_version_log(file_log_t *log, const char *stream)
{
    uint64_t v = 0;
    if (!log || !stream)
        return 0;
    pthread_mutex_lock(&log->mu);
    if (log->read_only)
        (void)refresh(log, 1, NULL);
    struct cairn__es_stream *s = cairn__es_index_find(&log->idx, stream, strlen(stream));
    v = s ? s->n : 0;
    pthread_mutex_unlock(&log->mu);
    return v;
}

static uint64_t file_end_log(file_log_t *log)
{
    uint64_t v;
    if (!log)
        return 0;
    pthread_mutex_lock(&log->mu);
    if (log->read_only)
        (void)refresh(log, 0, NULL);
    v = log->durable_end;
    pthread_mutex_unlock(&log->mu);
    return v;
}

/* ---- tails -------------------------------------------------------------- */

#define TAIL_AHEAD   (64u << 10)
#define TAIL_POLL_MS 5

struct file_tail {
    file_log_t *log;
    uint64_t pos; /* the next record to deliver is the first at or after pos */
    struct reader r;
    cairn_header_t *hdrs;
    size_t hcap;
};

/* Locks: mu held. The position of the first record at or after @p pos, or
 * durable_end when there is none below it. Past a read-only log's index
 * (built on demand), @p pos is taken as the record boundary it was given as:
 * a checkpoint of a tail; a bad one fails the frame checks when read. */
static uint64_t next_record(const file_log_t *log, uint64_t pos)
{
    if (log->read_only && pos >= log->indexed_end)
        return pos;
    size_t lo = 0, hi = log->idx.all_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->idx.all[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t p = lo < log->idx.all_n ? log->idx.all[lo] : log->durable_end;
    return p < log->durable_end ? p : log->durable_end > pos ? log->durable_end : pos;
}

static cairn_rc_t parse_file_checkpoint(const char *cp, uint64_t *pos, cairn_error_t *err)
{
    const char *d = cp + 5;
    uint64_t v = 0;
    if (strncmp(cp, "file:", 5) != 0 || !*d)
        goto bad;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || v > (UINT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*d - '0');
    }
    *pos = v;
    return CAIRN_OK;
bad:
    return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL,
                            "checkpoint '%.64s' is not a file log checkpoint (file:<position>)",
                            cp);
}

static cairn_rc_t file_tail_open(void *impl, const char *checkpoint, void **out, cairn_error_t *err)
{
    file_log_t *log = impl;
    cairn_rc_t rc = CAIRN_OK;
    uint64_t pos = 0;
    int at_end = checkpoint && !strcmp(checkpoint, "end");

    if (checkpoint && *checkpoint && !at_end &&
        (rc = parse_file_checkpoint(checkpoint, &pos, err)) != CAIRN_OK)
        return rc;
    struct file_tail *t = cairn__calloc(1, sizeof *t);
    if (!t)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, log->dir, "out of memory");
    t->log = log;
    reader_init(&t->r, TAIL_AHEAD);
    if (at_end) {
        pthread_mutex_lock(&log->mu);
        if (log->read_only)
            rc = refresh(log, 0, err);
        pos = log->durable_end;
        pthread_mutex_unlock(&log->mu);
        if (rc != CAIRN_OK) {
            cairn__free(t);
            return rc;
        }
    }
    t->pos = pos;
    *out = t;
    return CAIRN_OK;
}

static void file_tail_close(void *tail)
{
    struct file_tail *t = tail;
    if (!t)
        return;
    cairn__free(t->r.buf);
    cairn__free(t->hdrs);
    cairn__free(t);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Waits (mu held) until a durable record lies at or after t->pos, or the
 * deadline. The writer's group commit broadcasts `synced` after every
 * fdatasync; a read-only opener in another process cannot be signalled, so
 * it re-reads the published marker every TAIL_POLL_MS.
 */
static cairn_rc_t
tail_wait(struct file_tail *t, int timeout_ms, uint64_t *start, cairn_error_t *err)
{
    file_log_t *log = t->log;
    struct timespec deadline, now;
    cairn_rc_t rc = CAIRN_OK;
    deadline_after(&deadline, timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (log->read_only && (rc = refresh(log, 0, err)) != CAIRN_OK)
            return rc;
        *start = next_record(log, t->pos);
        if (*start < log->durable_end || timeout_ms <= 0)
            return CAIRN_OK;
        clock_gettime(CLOCK_REALTIME, &now);
        if (!before(&now, &deadline))
            return CAIRN_OK;
        if (!log->read_only) {
            pthread_cond_timedwait(&log->synced, &log->mu, &deadline);
            continue;
        }
        pthread_mutex_unlock(&log->mu);
        struct timespec nap = {0, TAIL_POLL_MS * 1000000L};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&log->mu);
    }
}

static cairn_rc_t file_tail_poll(void *tail,
                                 int timeout_ms,
                                 size_t max_records,
                                 cairn_record_cb *cb,
                                 void *opaque,
                                 size_t *delivered,
                                 cairn_error_t *err)
{
    struct file_tail *t = tail;
    file_log_t *log = t->log;
    cairn_rc_t rc;
    uint64_t pos, limit;
    size_t n = 0;
    int seeked = 0;

    if (delivered)
        *delivered = 0;
    if (!cb)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, log->dir, "tail poll needs a callback");
    pthread_mutex_lock(&log->mu);
    rc = tail_wait(t, timeout_ms, &pos, err);
    limit = log->durable_end;
    pthread_mutex_unlock(&log->mu);
    if (rc != CAIRN_OK)
        return rc;
    /* Only max_records records are read, through a bounded window: the
     * consumer's pace bounds what the tail holds. */
    while (pos < limit && n < max_records) {
        cairn_record_t rec;
        uint32_t len;
        /* Re-seek once per poll: the durable end (the window's bound) moved. */
        if (!seeked || pos >= t->r.end || pos < t->r.base || t->r.fd < 0)
            reader_seek(log, &t->r, pos, limit);
        seeked = 1;
        rc = read_record(log, &t->r, pos, &rec, &len, &t->hdrs, &t->hcap, err);
        if (rc != CAIRN_OK)
            goto out;
        if (cb(opaque, &rec) != 0) {
            t->pos = pos;
            rc = CAIRN_AGAIN;
            goto out;
        }
        n++;
        pos += CAIRN__FRAME_HEADER + len;
        t->pos = pos;
    }
    rc = CAIRN_OK;
out:
    if (delivered)
        *delivered = n;
    return rc;
}

static cairn_rc_t file_tail_checkpoint(void *tail, char *buf, size_t size, cairn_error_t *err)
{
    struct file_tail *t = tail;
    int k = buf ? snprintf(buf, size, "file:%" PRIu64, t->pos) : -1;
    if (k < 0 || (size_t)k >= size)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, NULL, "checkpoint buffer too small");
    return CAIRN_OK;
}

/* ---- the backend table ---------------------------------------------------- */

static cairn_rc_t
file_open(const char *rest, const cairn_log_options_t *opts, void **impl, cairn_error_t *err)
{
    file_log_t *log = NULL;
    cairn_rc_t rc = file_open_dir(rest, opts, &log, err);
    *impl = log;
    return rc;
}

static void file_close(void *impl)
{
    file_close_log(impl);
}

static cairn_rc_t file_append_nowait(void *impl,
                                     const char *stream,
                                     int64_t expected_version,
                                     cairn_record_t *records,
                                     size_t n,
                                     uint64_t *last_version,
                                     uint64_t *ticket,
                                     cairn_error_t *err)
{
    cairn_rc_t rc = file_append_nowait_log(impl, stream, expected_version, records, n, last_version,
                                           ticket, err);
    if (rc == CAIRN_OK)
        for (size_t i = 0; i < n; i++)
            records[i].partition = 0;
    return rc;
}

static cairn_rc_t file_wait_durable(void *impl, uint64_t ticket, cairn_error_t *err)
{
    return file_wait_durable_log(impl, ticket, err);
}

static cairn_rc_t file_replay_partition(
    void *impl, int partition, uint64_t from, cairn_record_cb *cb, void *opaque, cairn_error_t *err)
{
    file_log_t *log = impl;
    if (partition != 0)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, log->dir,
                                "log '%s' has one partition (0), not %d", log->dir, partition);
    return file_replay_log(log, from, cb, opaque, err);
}

static cairn_rc_t file_read_stream(void *impl,
                                   const char *stream,
                                   uint64_t from_version,
                                   cairn_record_cb *cb,
                                   void *opaque,
                                   cairn_error_t *err)
{
    return file_read_stream_log(impl, stream, from_version, cb, opaque, err);
}

static uint64_t file_stream_version(void *impl, const char *stream)
{
    return file_stream_version_log(impl, stream);
}

static int file_partition_count(void *impl)
{
    (void)impl;
    return 1;
}

static int file_partition_of(void *impl, const char *stream)
{
    (void)impl;
    (void)stream;
    return 0;
}

static uint64_t file_end(void *impl, int partition)
{
    return partition == 0 ? file_end_log(impl) : 0;
}

const cairn__log_backend_t cairn__file_backend = {
    .scheme = "file",
    .open = file_open,
    .close = file_close,
    .append_nowait = file_append_nowait,
    .wait_durable = file_wait_durable,
    .replay_partition = file_replay_partition,
    .read_stream = file_read_stream,
    .stream_version = file_stream_version,
    .partition_count = file_partition_count,
    .partition_of = file_partition_of,
    .end = file_end,
    .tail_open = file_tail_open,
    .tail_poll = file_tail_poll,
    .tail_checkpoint = file_tail_checkpoint,
    .tail_close = file_tail_close,
};

/* ---- internal hooks ----------------------------------------------------- */

static file_log_t *file_of(cairn_log_t *log)
{
    return log && log->backend == &cairn__file_backend ? log->impl : NULL;
}

void cairn__log_stats(cairn_log_t *clog, struct cairn__log_stats *out)
{
    file_log_t *log = file_of(clog);
    memset(out, 0, sizeof *out);
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    *out = log->stats;
    out->segments = log->nseg;
    out->indexed = log->idx.all_n;
    pthread_mutex_unlock(&log->mu);
}

void cairn__log_set_sync_fn(cairn_log_t *clog, int (*sync_fn)(int fd))
{
    file_log_t *log = file_of(clog);
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    log->sync_fn = sync_fn ? sync_fn : fdatasync;
    pthread_mutex_unlock(&log->mu);
}
