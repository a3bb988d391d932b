/* SPDX-License-Identifier: MIT */
/*
 * format.c - the table of schema formats and the format-independent parts of
 * a parsed schema: look-up by the REST API's schemaType, parsing through the
 * format's vtable, the shared reference count, and the names of the
 * compatibility levels. A new format (PROTOBUF, JSON) adds one row to
 * `formats` and one folder under registry/.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "format.h"
#include "avro/avro.h"

static const cairn_format_t *const formats[] = {&cairn__avro_format};
static const char *const format_names[] = {"AVRO", NULL};

const cairn_format_t *cairn_format_find(const char *name)
{
    if (!name || !*name)
        return &cairn__avro_format;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(formats[i]->name, name) == 0)
            return formats[i];
    }
    return NULL;
}

const char *const *cairn_format_names(void)
{
    return format_names;
}

cairn_rc_t cairn_schema_parse(const char *format_name,
                              const char *text,
                              size_t len,
                              const cairn_schema_ref_t *refs,
                              size_t nrefs,
                              cairn_schema_t **out,
                              cairn_error_t *err)
{
    const cairn_format_t *f = cairn_format_find(format_name);
    *out = NULL;
    if (!f)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "unknown schema type '%s'",
                                format_name);
    if (!text)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "empty schema");
    return f->parse(text, len, refs, nrefs, out, err);
}

cairn_schema_t *cairn__schema_new(const cairn_format_t *format)
{
    cairn_schema_t *s = cairn__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->format = format;
    atomic_init(&s->refcount, 1);
    return s;
}

cairn_schema_t *cairn_schema_ref(const cairn_schema_t *s)
{
    /* The schema is immutable except for its count, which is atomic: the
     * const of the borrowed pointer is dropped only to count the new owner. */
    cairn_schema_t *m = (cairn_schema_t *)(uintptr_t)s;
    if (m)
        atomic_fetch_add_explicit(&m->refcount, 1, memory_order_relaxed);
    return m;
}

void cairn_schema_unref(cairn_schema_t *s)
{
    if (!s)
        return;
    if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1)
        return;
    if (s->model && s->format && s->format->model_free)
        s->format->model_free(s->model);
    cairn__free(s->canonical);
    cairn__free(s->normalized);
    cairn__free(s);
}

/* ---- compatibility levels -------------------------------------------- */

static const char *const level_names[] = {
    [CAIRN_COMPAT_NONE] = "NONE",
    [CAIRN_COMPAT_BACKWARD] = "BACKWARD",
    [CAIRN_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
    [CAIRN_COMPAT_FORWARD] = "FORWARD",
    [CAIRN_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
    [CAIRN_COMPAT_FULL] = "FULL",
    [CAIRN_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
};

const char *cairn_compat_level_name(cairn_compat_level_t level)
{
    if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
        return "UNKNOWN";
    return level_names[level];
}

cairn_rc_t cairn_compat_level_parse(const char *name, cairn_compat_level_t *out)
{
    if (name) {
        for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
            if (strcasecmp(level_names[i], name) == 0) {
                *out = (cairn_compat_level_t)i;
                return CAIRN_OK;
            }
        }
    }
    return CAIRN_E_INVALID_LEVEL;
}
