/* SPDX-License-Identifier: MIT */
/*
 * plugin.c - code projectors (include/cairn/projector.h): the sink that hands
 * batches to a shared library loaded with dlopen, for specs whose sink is
 * {"code": {"library": PATH, "config": {...}}}.
 *
 * The library stores its checkpoint itself, with its effects, in one unit
 * (its on_batch contract), so the runner treats it as any other sink: read
 * the checkpoint, tail from it, hand over batches; on a retriable error close,
 * reopen and resume from the library's checkpoint. Each projector loads the
 * library for itself (dlopen counts references), and its state is used from
 * that projector's thread only.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "cairn/projector.h"
#include "projections.h"

struct code {
    void *dl;
    const cairn_projector_t *p;
    void *state;
    cairn_projector_event_t *views;
    size_t nviews;
};

static cairn_rc_t code_open(cairn__pj_sink_t *s, cairn_error_t *err)
{
    const cairn__pj_spec_t *spec = s->spec;
    struct code *c = cairn__calloc(1, sizeof *c);
    cairn_rc_t rc = CAIRN_OK;
    char name[256];

    if (!c)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    s->impl = c;
    c->dl = dlopen(spec->library, RTLD_NOW | RTLD_LOCAL);
    if (!c->dl) {
        const char *why = dlerror();
        rc = cairn__error_set(err, CAIRN_E_INVALID, 0, spec->library,
                              "projector '%s': cannot load '%s': %s", spec->name, spec->library,
                              why ? why : "dlopen failed");
        goto out;
    }
    /* POSIX: a data pointer from dlsym converts to a function pointer. */
    cairn_projector_entry_fn *entry;
    void *sym = dlsym(c->dl, CAIRN_PROJECTOR_ENTRY);
    memcpy(&entry, &sym, sizeof entry);
    if (!sym || !(c->p = entry()) || c->p->abi != CAIRN_PROJECTOR_ABI || !c->p->open ||
        !c->p->checkpoint || !c->p->on_batch || !c->p->close) {
        rc =
            cairn__error_set(err, CAIRN_E_INVALID, 0, spec->library,
                             "projector '%s': '%s' is not a code projector of ABI %d (it must "
                             "export %s with open, checkpoint, on_batch and close)",
                             spec->name, spec->library, CAIRN_PROJECTOR_ABI, CAIRN_PROJECTOR_ENTRY);
        goto out;
    }
    snprintf(name, sizeof name, "%s%s%s", spec->name, *s->target ? "#" : "", s->target);
    rc = c->p->open(name, spec->config_json, &c->state, err);
out:
    if (rc != CAIRN_OK) {
        if (c->dl)
            dlclose(c->dl);
        cairn__free(c);
        s->impl = NULL;
    }
    return rc;
}

static void code_close(cairn__pj_sink_t *s)
{
    struct code *c = s->impl;
    if (!c)
        return;
    c->p->close(c->state);
    dlclose(c->dl);
    cairn__free(c->views);
    cairn__free(c);
    s->impl = NULL;
}

static cairn_rc_t code_state(cairn__pj_sink_t *s, cairn__pj_state_t *st, cairn_error_t *err)
{
    struct code *c = s->impl;
    return c->p->checkpoint(c->state, st->checkpoint, sizeof st->checkpoint, &st->events, err);
}

static cairn_rc_t code_apply(cairn__pj_sink_t *s,
                             const cairn__pj_event_t *evs,
                             size_t n,
                             const char *checkpoint,
                             uint64_t events,
                             long *failed_at,
                             cairn_error_t *err)
{
    struct code *c = s->impl;
    cairn_rc_t rc = CAIRN_OK;
    if (n > c->nviews) {
        cairn_projector_event_t *v = cairn__realloc(c->views, n * sizeof *v);
        if (!v)
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        c->views = v;
        c->nviews = n;
    }
    for (size_t i = 0; i < n; i++) {
        c->views[i] = (cairn_projector_event_t){.stream = evs[i].stream,
                                                .type = evs[i].type,
                                                .version = evs[i].version,
                                                .partition = evs[i].partition,
                                                .position = evs[i].position,
                                                .timestamp_ms = evs[i].timestamp_ms,
                                                .replaying = evs[i].replaying,
                                                .value = evs[i].value};
        if (c->p->on_event && (rc = c->p->on_event(c->state, &c->views[i], err)) != CAIRN_OK) {
            if (rc != CAIRN_E_UNAVAILABLE)
                *failed_at = (long)i;
            return rc;
        }
    }
    return c->p->on_batch(c->state, c->views, n, checkpoint, events, failed_at, err);
}

static cairn_rc_t code_reset(cairn__pj_sink_t *s, cairn_error_t *err)
{
    struct code *c = s->impl;
    if (!c->p->reset)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, s->spec->name,
                                "projector '%s': its library has no reset", s->spec->name);
    return c->p->reset(c->state, err);
}

static cairn_rc_t code_mark_poison(cairn__pj_sink_t *s, const char *why, cairn_error_t *err)
{
    (void)s;
    (void)why;
    (void)err;
    return CAIRN_OK; /* the runner's error says it; the library keeps its own state */
}

const struct cairn__pj_sink_ops cairn__pj_sink_code_ops = {
    .open = code_open,
    .close = code_close,
    .state = code_state,
    .apply = code_apply,
    .reset = code_reset,
    .mark_poison = code_mark_poison,
};
