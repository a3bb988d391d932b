/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - snapshots of loaded aggregates, so that a load reads the
 * latest snapshot and only the events after it.
 *
 * A snapshot is derivable data: losing one costs a replay, never
 * correctness. So nothing about it is trusted and nothing about it is fatal:
 * a missing, corrupt, foreign or stale snapshot is ignored (corrupt ones
 * with a WARNING, stale ones at INFO) and the stream is replayed from
 * version 1.
 *
 * Bytes (the same on both stores):
 *
 *     cairn-snapshot 1 <crc32c of the body, 8 hex> <body length>\n<body>
 *
 * and the body is a JSON object: stream, aggregate (the type's name),
 * code_version (the aggregate's declared code version), fingerprint (a hash
 * of the event schemas and the state schema in force), version and
 * partition/position (the last event it covers), commands (the recent
 * command ids, oldest first, as [id, version, partition, position]) and
 * state (the aggregate's state_to_json). On load, a snapshot whose
 * aggregate, code version or fingerprint differs from the code's, or whose
 * version lies beyond the stream's current version (a log recreated under
 * it), is stale.
 *
 * Stores: the file backend keeps one file per stream in a directory beside
 * the log (DIR/snapshots/<hex of the stream id>.snap, or h<hash>.snap for
 * ids over 100 bytes; the stream id inside is checked), written as a
 * temporary file, fsynced, renamed over the old one, and the directory
 * fsynced, so a crash leaves the old snapshot or the new one. Kafka keeps
 * a snapshot topic ("<topic>.snapshots" by default) appended through a
 * second cairn_log_t with CAIRN_EXPECT_ANY, keyed by stream; the latest
 * record of a stream wins (the topic may be compacted: snapshots are
 * derivable).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sdk_int.h"

#define SNAP_MAGIC     "cairn-snapshot 1 "
#define SNAP_MAX_BYTES ((size_t)64 << 20)

cairn_rc_t cairn__snapshot_path(const char *dir, const char *stream, char *buf, size_t size)
{
    size_t n = strlen(stream);
    int w;
    if (n <= 100) {
        static const char hex[] = "0123456789abcdef";
        char name[2 * 100 + 1];
        for (size_t i = 0; i < n; i++) {
            name[2 * i] = hex[(unsigned char)stream[i] >> 4];
            name[2 * i + 1] = hex[(unsigned char)stream[i] & 0xf];
        }
        name[2 * n] = '\0';
        w = snprintf(buf, size, "%s/%s.snap", dir, name);
    } else {
        w = snprintf(buf, size, "%s/h%016" PRIx64 "%08" PRIx32 ".snap", dir,
                     cairn__hash64(stream, n), cairn__crc32c(0, stream, n));
    }
    return w < 0 || (size_t)w >= size ? CAIRN_E_INVALID : CAIRN_OK;
}

char *cairn__snapshot_encode(struct cairn_aggregate *agg, const struct cairn__entry *e, size_t *len)
{
    json_t *state = NULL, *cmds = NULL, *root = NULL;
    char *body = NULL, *out = NULL;
    size_t body_len;

    state = agg->def.state_to_json(agg->def.opaque, e->state);
    cmds = json_array();
    if (!state || !cmds)
        goto out;
    /* Oldest first: in order until full, then a ring whose oldest slot is `head`. */
    for (size_t k = 0; k < e->recent.n; k++) {
        size_t i = e->recent.n < e->recent.cap ? k : (e->recent.head + k) % e->recent.cap;
        const struct cairn__cmdrec *c = &e->recent.items[i];
        if (json_array_append_new(cmds, json_pack("[sIiI]", c->id, (json_int_t)c->version,
                                                  (int)c->partition, (json_int_t)c->position)))
            goto out;
    }
    root =
        json_pack("{s:s, s:s, s:i, s:s, s:I, s:i, s:I, s:O, s:O}", "stream", e->stream, "aggregate",
                  agg->name, "code_version", agg->def.code_version, "fingerprint", agg->fingerprint,
                  "version", (json_int_t)e->version, "partition", (int)e->partition, "position",
                  (json_int_t)e->position, "commands", cmds, "state", state);
    if (!root)
        goto out;
    body = json_dumps(root, JSON_COMPACT);
    if (!body)
        goto out;
    body_len = strlen(body);
    size_t cap = body_len + 64;
    out = cairn__malloc(cap);
    if (!out)
        goto out;
    int w = snprintf(out, cap, SNAP_MAGIC "%08" PRIx32 " %zu\n", cairn__crc32c(0, body, body_len),
                     body_len);
    memcpy(out + w, body, body_len);
    *len = (size_t)w + body_len;
out:
    free(body); /* jansson's allocator */
    json_decref(root);
    json_decref(cmds);
    json_decref(state);
    return out;
}

cairn_rc_t cairn__snapshot_decode(struct cairn_aggregate *agg,
                                  const char *stream,
                                  const void *data,
                                  size_t len,
                                  struct cairn__entry *e)
{
    const char *p = data;
    const char *why = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    unsigned long crc;
    unsigned long long body_len;
    char *end;
    size_t ml = sizeof SNAP_MAGIC - 1;
    int stale = 0;
    cairn_rc_t rc = CAIRN_DONE;
    void *state = NULL;
    struct cairn__recent recent;

    cairn__recent_init(&recent, agg->svc->recent_max);
    if (len < ml + 12 || memcmp(p, SNAP_MAGIC, ml) != 0) {
        why = "no snapshot header";
        goto out;
    }
    /* Bounded parsing: a NUL-free, newline-terminated header within the first 64 bytes. */
    const char *nl = memchr(p + ml, '\n', len - ml < 48 ? len - ml : 48);
    if (!nl) {
        why = "header without end";
        goto out;
    }
    char hdr[64];
    memcpy(hdr, p + ml, (size_t)(nl - (p + ml)));
    hdr[nl - (p + ml)] = '\0';
    errno = 0;
    crc = strtoul(hdr, &end, 16);
    if (end != hdr + 8 || *end != ' ') {
        why = "bad checksum field";
        goto out;
    }
    body_len = strtoull(end + 1, &end, 10);
    if (*end != '\0' || errno || body_len != (unsigned long long)(len - (size_t)(nl + 1 - p))) {
        why = "length does not match";
        goto out;
    }
    if (cairn__crc32c(0, nl + 1, (size_t)body_len) != (uint32_t)crc) {
        why = "checksum mismatch";
        goto out;
    }
    root = json_loadb(nl + 1, (size_t)body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *jstream = json_object_get(root, "stream");
    json_t *jagg = json_object_get(root, "aggregate");
    json_t *jcv = json_object_get(root, "code_version");
    json_t *jfp = json_object_get(root, "fingerprint");
    json_t *jver = json_object_get(root, "version");
    json_t *jpart = json_object_get(root, "partition");
    json_t *jpos = json_object_get(root, "position");
    json_t *jcmds = json_object_get(root, "commands");
    json_t *jstate = json_object_get(root, "state");
    if (!json_is_string(jstream) || !json_is_string(jagg) || !json_is_integer(jcv) ||
        !json_is_string(jfp) || !json_is_integer(jver) || json_integer_value(jver) < 1 ||
        !json_is_integer(jpart) || !json_is_integer(jpos) || !json_is_array(jcmds) || !jstate) {
        why = "body is not a snapshot";
        goto out;
    }
    if (strcmp(json_string_value(jstream), stream) != 0) {
        why = "snapshot of another stream";
        goto out;
    }
    if (strcmp(json_string_value(jagg), agg->name) != 0) {
        stale = 1;
        why = "written for another aggregate type";
        goto out;
    }
    if (json_integer_value(jcv) != agg->def.code_version) {
        stale = 1;
        why = "written by another code version";
        goto out;
    }
    if (strcmp(json_string_value(jfp), agg->fingerprint) != 0) {
        stale = 1;
        why = "written under other schemas";
        goto out;
    }
    size_t i;
    json_t *c;
    json_array_foreach(jcmds, i, c)
    {
        json_t *id = json_array_get(c, 0), *v = json_array_get(c, 1), *pa = json_array_get(c, 2),
               *po = json_array_get(c, 3);
        if (!json_is_string(id) || !json_is_integer(v) || !json_is_integer(pa) ||
            !json_is_integer(po)) {
            why = "bad command entry";
            goto out;
        }
        if (cairn__recent_put(&recent, json_string_value(id), (uint64_t)json_integer_value(v),
                              (int32_t)json_integer_value(pa),
                              (uint64_t)json_integer_value(po)) != CAIRN_OK) {
            why = "out of memory";
            goto out;
        }
    }
    state = agg->def.state_from_json(agg->def.opaque, jstate);
    if (!state) {
        why = "state_from_json refused the state";
        goto out;
    }
    if (e->state)
        agg->def.free_state(agg->def.opaque, e->state);
    e->state = state;
    e->version = (uint64_t)json_integer_value(jver);
    e->partition = (int32_t)json_integer_value(jpart);
    e->position = (uint64_t)json_integer_value(jpos);
    cairn__recent_release(&e->recent);
    e->recent = recent;
    cairn__recent_init(&recent, 0);
    rc = CAIRN_OK;
out:
    if (why) {
        cairn__log(stale ? CAIRN_LOG_INFO : CAIRN_LOG_WARNING, CAIRN__LOG_CTX,
                   "snapshot of stream '%s' ignored: %s; replaying from version 1", stream, why);
        CAIRN__STAT_ADD(agg->svc, snapshots_ignored, 1);
    }
    cairn__recent_release(&recent);
    json_decref(root);
    return rc;
}

/* ---- file store ------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void file_save(struct cairn_service *svc, const char *stream, const char *data, size_t len)
{
    char path[4096], tmp[4200];
    int fd = -1;
    if (cairn__snapshot_path(svc->snapshot_url, stream, path, sizeof path) != CAIRN_OK)
        return;
    if (mkdir(svc->snapshot_url, 0755) != 0 && errno != EEXIST) {
        cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX, "snapshot directory '%s': %s",
                   svc->snapshot_url, strerror(errno));
        return;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX, "snapshot '%s' not written: %s", tmp,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX, "snapshot '%s' not renamed: %s", path,
                   strerror(errno));
        unlink(tmp);
        return;
    }
    fd = open(svc->snapshot_url, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    CAIRN__STAT_ADD(svc, snapshots_written, 1);
}

static char *file_read(const char *path, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || (size_t)st.st_size > SNAP_MAX_BYTES)
        goto out;
    buf = cairn__malloc((size_t)st.st_size);
    if (!buf)
        goto out;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            cairn__free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    *len = got;
out:
    close(fd);
    return buf;
}

/* ---- Kafka store ------------------------------------------------------------- */

static cairn_log_t *snap_log(struct cairn_service *svc)
{
    cairn_log_t *l;
    pthread_mutex_lock(&svc->snap_mu);
    if (!svc->snap_log && !svc->snap_failed) {
        cairn_error_t err = {0};
        if (cairn_log_open(svc->snapshot_url, NULL, &svc->snap_log, &err) != CAIRN_OK) {
            svc->snap_failed = 1;
            cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX,
                       "snapshots off: cannot open the snapshot topic: %s", err.text);
        }
    }
    l = svc->snap_log;
    pthread_mutex_unlock(&svc->snap_mu);
    return l;
}

struct last_value {
    char *data;
    size_t len;
};

static int keep_value(void *opaque, const cairn_record_t *r)
{
    struct last_value *lv = opaque;
    cairn__free(lv->data);
    lv->data = r->value_len ? cairn__malloc(r->value_len) : NULL;
    lv->len = lv->data ? r->value_len : 0;
    if (lv->data)
        memcpy(lv->data, r->value, r->value_len);
    return 0;
}

/* ---- the two entry points ------------------------------------------------------ */

void cairn__snapshot_save(struct cairn_aggregate *agg, const struct cairn__entry *e)
{
    struct cairn_service *svc = agg->svc;
    size_t len = 0;
    char *data;
    if (!svc->snapshot_url || !agg->def.state_to_json)
        return;
    data = cairn__snapshot_encode(agg, e, &len);
    if (!data) {
        cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX, "snapshot of '%s' not encoded", e->stream);
        return;
    }
    if (!svc->snapshot_kafka) {
        file_save(svc, e->stream, data, len);
    } else {
        cairn_log_t *l = snap_log(svc);
        cairn_error_t err = {0};
        cairn_record_t rec = {.value = data, .value_len = len};
        if (l && cairn_log_append(l, e->stream, CAIRN_EXPECT_ANY, &rec, 1, NULL, &err) == CAIRN_OK)
            CAIRN__STAT_ADD(svc, snapshots_written, 1);
        else if (l)
            cairn__log(CAIRN_LOG_INFO, CAIRN__LOG_CTX, "snapshot of '%s' not appended: %s",
                       e->stream, err.text);
    }
    cairn__free(data);
}

cairn_rc_t cairn__snapshot_load(struct cairn_aggregate *agg, struct cairn__entry *e)
{
    struct cairn_service *svc = agg->svc;
    struct last_value lv = {0};
    cairn_rc_t rc = CAIRN_DONE;
    if (!svc->snapshot_url || !agg->def.state_from_json)
        return CAIRN_DONE;
    if (!svc->snapshot_kafka) {
        char path[4096];
        if (cairn__snapshot_path(svc->snapshot_url, e->stream, path, sizeof path) != CAIRN_OK)
            return CAIRN_DONE;
        lv.data = file_read(path, &lv.len);
        if (!lv.data && errno != ENOENT)
            cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX, "snapshot '%s' unreadable: replaying",
                       path);
    } else {
        cairn_log_t *l = snap_log(svc);
        cairn_error_t err = {0};
        uint64_t v = l ? cairn_log_stream_version(l, e->stream) : 0;
        if (v > 0 && cairn_log_read_stream(l, e->stream, v, keep_value, &lv, &err) != CAIRN_DONE)
            cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX, "snapshot of '%s' unreadable: %s",
                       e->stream, err.text);
    }
    if (!lv.data)
        goto out;
    struct cairn__entry tmp = {.agg = agg, .stream = e->stream};
    rc = cairn__snapshot_decode(agg, e->stream, lv.data, lv.len, &tmp);
    if (rc == CAIRN_OK) {
        uint64_t now = cairn_log_stream_version(svc->log, e->stream);
        if (tmp.version > now) {
            cairn__log(CAIRN_LOG_WARNING, CAIRN__LOG_CTX,
                       "snapshot of stream '%s' ignored: it covers version %" PRIu64
                       " but the stream has %" PRIu64,
                       e->stream, tmp.version, now);
            CAIRN__STAT_ADD(svc, snapshots_ignored, 1);
            agg->def.free_state(agg->def.opaque, tmp.state);
            cairn__recent_release(&tmp.recent);
            rc = CAIRN_DONE;
            goto out;
        }
        if (e->state)
            agg->def.free_state(agg->def.opaque, e->state);
        e->state = tmp.state;
        e->version = tmp.version;
        e->partition = tmp.partition;
        e->position = tmp.position;
        cairn__recent_release(&e->recent);
        e->recent = tmp.recent;
        CAIRN__STAT_ADD(svc, snapshots_loaded, 1);
    }
out:
    cairn__free(lv.data);
    return rc;
}
