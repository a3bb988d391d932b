/* SPDX-License-Identifier: MIT */
/*
 * plugin_accounts.c - a code projector for the tests (include/cairn/projector.h),
 * built by test_projections_code.py as a shared library: it keeps the
 * accounts fold (id -> owner, balance) of tests/support/projections_fixture.py
 * in a JSON file, and stores each batch's checkpoint in the same file, which
 * it replaces atomically (write a temporary file, fsync, rename): the
 * library's half of exactly-once. It also counts the events it was handed
 * with `replaying` set.
 *
 * Config: {"dir": DIR}; the file is DIR/<projector>.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/projector.h"

struct state {
    char path[1024];
    json_t *doc; /* {"checkpoint", "events", "replayed", "accounts": {id: [owner, balance]}} */
};

static cairn_rc_t fail(cairn_error_t *err, cairn_rc_t rc, const char *what)
{
    if (err && !err->code) {
        err->code = rc;
        snprintf(err->text, sizeof err->text, "plugin_accounts: %s", what);
    }
    return rc;
}

static json_t *fresh(void)
{
    return json_pack("{s:s, s:I, s:I, s:{}}", "checkpoint", "", "events", (json_int_t)0, "replayed",
                     (json_int_t)0, "accounts");
}

static cairn_rc_t load(struct state *st, cairn_error_t *err)
{
    json_error_t je;
    json_decref(st->doc);
    st->doc = json_load_file(st->path, 0, &je);
    if (!st->doc) {
        if (access(st->path, F_OK) == 0)
            return fail(err, CAIRN_E_CORRUPT, je.text);
        st->doc = fresh();
    }
    return CAIRN_OK;
}

static cairn_rc_t pa_open(const char *projector, const char *config, void **out, cairn_error_t *err)
{
    json_t *cfg = json_loads(config, JSON_DECODE_ANY, NULL);
    const char *dir = json_string_value(json_object_get(cfg, "dir"));
    struct state *st = calloc(1, sizeof *st);
    if (!dir || !st) {
        json_decref(cfg);
        free(st);
        return fail(err, CAIRN_E_INVALID, "config needs {\"dir\": DIR}");
    }
    snprintf(st->path, sizeof st->path, "%s/%s.json", dir, projector);
    json_decref(cfg);
    cairn_rc_t rc = load(st, err);
    if (rc != CAIRN_OK) {
        free(st);
        return rc;
    }
    *out = st;
    return CAIRN_OK;
}

static cairn_rc_t
pa_checkpoint(void *state, char *buf, size_t size, uint64_t *events, cairn_error_t *err)
{
    struct state *st = state;
    (void)err;
    snprintf(buf, size, "%s", json_string_value(json_object_get(st->doc, "checkpoint")));
    *events = (uint64_t)json_integer_value(json_object_get(st->doc, "events"));
    return CAIRN_OK;
}

static cairn_rc_t pa_on_event(void *state, const cairn_projector_event_t *ev, cairn_error_t *err)
{
    struct state *st = state;
    json_t *accounts = json_object_get(st->doc, "accounts");
    const char *id = json_string_value(json_object_get(ev->value, "id"));
    if (!id)
        return fail(err, CAIRN_E_INVALID, "event without an id");
    json_t *row = json_object_get(accounts, id);
    if (!strcmp(ev->type, "Opened")) {
        json_object_set_new(accounts, id,
                            json_pack("[O,i]", json_object_get(ev->value, "owner"), 0));
    } else if (!strcmp(ev->type, "Renamed") && row) {
        json_array_set(row, 0, json_object_get(ev->value, "owner"));
    } else if (!strcmp(ev->type, "Deposited") && row) {
        json_int_t b = json_integer_value(json_array_get(row, 1)) +
                       json_integer_value(json_object_get(ev->value, "amount"));
        json_array_set_new(row, 1, json_integer(b));
    } else if (!strcmp(ev->type, "Closed")) {
        json_object_del(accounts, id);
    } else {
        return fail(err, CAIRN_E_INVALID, "an event for an account that is not open");
    }
    if (ev->replaying) {
        json_int_t r = json_integer_value(json_object_get(st->doc, "replayed"));
        json_object_set_new(st->doc, "replayed", json_integer(r + 1));
    }
    return CAIRN_OK;
}

static cairn_rc_t pa_on_batch(void *state,
                              const cairn_projector_event_t *evs,
                              size_t n,
                              const char *checkpoint,
                              uint64_t events,
                              long *failed_at,
                              cairn_error_t *err)
{
    struct state *st = state;
    char tmp[1100];
    (void)evs;
    (void)n;
    (void)failed_at;
    json_object_set_new(st->doc, "checkpoint", json_string(checkpoint));
    json_object_set_new(st->doc, "events", json_integer((json_int_t)events));
    snprintf(tmp, sizeof tmp, "%s.tmp", st->path);
    if (json_dump_file(st->doc, tmp, JSON_COMPACT | JSON_SORT_KEYS) != 0)
        return fail(err, CAIRN_E_IO, "cannot write the state file");
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0 || rename(tmp, st->path) != 0) {
        if (fd >= 0)
            close(fd);
        return fail(err, CAIRN_E_IO, strerror(errno));
    }
    close(fd);
    return CAIRN_OK;
}

static cairn_rc_t pa_reset(void *state, cairn_error_t *err)
{
    struct state *st = state;
    if (unlink(st->path) != 0 && errno != ENOENT)
        return fail(err, CAIRN_E_IO, strerror(errno));
    return load(st, err);
}

static void pa_close(void *state)
{
    struct state *st = state;
    json_decref(st->doc);
    free(st);
}

static const cairn_projector_t table = {
    .abi = CAIRN_PROJECTOR_ABI,
    .open = pa_open,
    .checkpoint = pa_checkpoint,
    .on_event = pa_on_event,
    .on_batch = pa_on_batch,
    .reset = pa_reset,
    .close = pa_close,
};

const cairn_projector_t *cairn_projector_entry(void);
const cairn_projector_t *cairn_projector_entry(void)
{
    return &table;
}
