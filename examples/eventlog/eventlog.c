/* SPDX-License-Identifier: MIT */
/*
 * eventlog.c - the smallest program that links libcairn: it appends events
 * to a stream of an event log with expected versions, shows that a stale
 * expectation is refused as a conflict and writes nothing, and reads the
 * stream back.
 *
 *   cairn-eventlog file:/tmp/orders          # the embedded file log
 *   cairn-eventlog 'kafka:127.0.0.1:9092?topic=orders'
 *
 * Build it against an installed libcairn with pkg-config
 *   cc eventlog.c $(pkg-config --cflags --libs cairn) -o cairn-eventlog
 * or with CMake (this folder's CMakeLists.txt: find_package(Cairn)).
 * Exits 0 when everything behaved as described, 1 otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cairn/eventstore.h>

struct seen {
    uint64_t count, last_version;
    char last[64];
};

static int on_record(void *opaque, const cairn_record_t *r)
{
    struct seen *s = opaque;
    s->count++;
    s->last_version = r->version;
    snprintf(s->last, sizeof s->last, "%.*s", (int)r->value_len, (const char *)r->value);
    printf("  version %" PRIu64 " at position %" PRIu64 ": %.*s\n", r->version, r->position,
           (int)r->value_len, (const char *)r->value);
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "file:cairn-eventlog.d";
    const char *stream = "order-1";
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    int status = 1;

    printf("libcairn %s (compiled against %s)\n", cairn_version(), CAIRN_VERSION_STR);
    if (strcmp(cairn_version(), CAIRN_VERSION_STR) != 0)
        fprintf(stderr, "eventlog: note: the library is not the version of the headers\n");
    if (cairn_log_open(url, NULL, &log, &err) != CAIRN_OK) {
        fprintf(stderr, "eventlog: cannot open %s: %s\n", url, err.text);
        return 1;
    }

    /* Two events, each expecting the version the stream has now. */
    const char *values[] = {"{\"placed\":3}", "{\"paid\":3}"};
    uint64_t version = cairn_log_stream_version(log, stream);
    for (size_t i = 0; i < 2; i++) {
        cairn_record_t rec = {.value = values[i], .value_len = strlen(values[i])};
        if (cairn_log_append(log, stream, (int64_t)version, &rec, 1, &version, &err) != CAIRN_OK) {
            fprintf(stderr, "eventlog: append: %s\n", err.text);
            goto out;
        }
        printf("appended version %" PRIu64 "\n", version);
    }

    /* A writer that still believes the stream is one version older loses. */
    cairn_record_t stale = {.value = "{\"cancelled\":3}", .value_len = 15};
    cairn_rc_t rc = cairn_log_append(log, stream, (int64_t)version - 1, &stale, 1, NULL, &err);
    if (rc != CAIRN_E_CONFLICT_VERSION) {
        fprintf(stderr, "eventlog: a stale append got %s, not a conflict\n", cairn_rc_name(rc));
        goto out;
    }
    printf("stale append refused: %s (%s)\n", cairn_rc_str(rc), err.text);

    struct seen seen = {0};
    printf("stream %s:\n", stream);
    rc = cairn_log_read_stream(log, stream, 1, on_record, &seen, &err);
    if (rc != CAIRN_DONE) {
        fprintf(stderr, "eventlog: read: %s\n", err.text);
        goto out;
    }
    if (seen.last_version != version || seen.count != version ||
        strcmp(seen.last, values[1]) != 0) {
        fprintf(stderr,
                "eventlog: read back %" PRIu64 " events up to version %" PRIu64
                ", expected %" PRIu64 "\n",
                seen.count, seen.last_version, version);
        goto out;
    }
    status = 0;
out:
    cairn_log_close(log);
    return status;
}
