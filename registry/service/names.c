/* SPDX-License-Identifier: MIT */
/*
 * names.c - the small value helpers of the registry API: subject-name
 * validation, mode names, the refcounted cairn_reg_schema_t, result structs
 * and reference copies. Nothing here touches the registry's state or locks.
 */
#include <string.h>

#include "service_int.h"

static const char *const mode_names[] = {"READWRITE", "READONLY", "IMPORT"};

const char *cairn_reg_mode_name(cairn_reg_mode_t mode)
{
    if ((unsigned)mode < sizeof mode_names / sizeof mode_names[0])
        return mode_names[mode];
    return "UNKNOWN";
}

cairn_rc_t cairn_reg_mode_parse(const char *name, cairn_reg_mode_t *out)
{
    for (unsigned i = 0; name && i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (!strcmp(name, mode_names[i])) {
            *out = (cairn_reg_mode_t)i;
            return CAIRN_OK;
        }
    }
    return CAIRN_E_INVALID_MODE;
}

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), 0 if
 * invalid: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

cairn_rc_t cairn_registry_subject_valid(const char *subject, cairn_error_t *err)
{
    if (!subject || !*subject)
        return cairn__error_set(err, CAIRN_E_INVALID_SUBJECT, 0, NULL, "subject name is empty");
    size_t n = strlen(subject);
    if (n > 255)
        return cairn__error_set(err, CAIRN_E_INVALID_SUBJECT, 0, NULL,
                                "subject name is longer than 255 bytes");
    if (!strcmp(subject, ".") || !strcmp(subject, ".."))
        return cairn__error_set(err, CAIRN_E_INVALID_SUBJECT, 0, subject,
                                "subject name '%s' is not allowed", subject);
    const unsigned char *s = (const unsigned char *)subject;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return cairn__error_set(err, CAIRN_E_INVALID_SUBJECT, 0, NULL,
                                    "subject name contains a control character at byte %zu", i);
        size_t l = utf8_seq(s + i, n - i);
        if (!l)
            return cairn__error_set(err, CAIRN_E_INVALID_SUBJECT, 0, NULL,
                                    "subject name is not valid utf-8 at byte %zu", i);
        i += l;
    }
    return CAIRN_OK;
}

cairn_reg_schema_t *cairn_reg_schema_ref(cairn_reg_schema_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
    return s;
}

void cairn_reg_schema_unref(cairn_reg_schema_t *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1)
        return;
    void *cache = atomic_load_explicit(&s->api_cache, memory_order_acquire);
    if (cache && s->api_cache_free)
        s->api_cache_free(cache);
    cairn__free(s->text);
    cairn__reg_refs_free(s->refs, s->nrefs);
    cairn__free(s);
}

void cairn_reg_version_release(cairn_reg_version_t *v)
{
    if (!v)
        return;
    cairn__free(v->subject);
    cairn_reg_schema_unref(v->schema);
    memset(v, 0, sizeof *v);
}

void cairn_reg_versions_free(cairn_reg_version_t *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        cairn_reg_version_release(&v[i]);
    cairn__free(v);
}

void cairn__reg_refs_free(cairn_reg_ref_t *refs, size_t n)
{
    if (!refs)
        return;
    for (size_t i = 0; i < n; i++) {
        cairn__free(refs[i].name);
        cairn__free(refs[i].subject);
    }
    cairn__free(refs);
}

cairn_rc_t cairn__reg_refs_copy(const cairn_reg_ref_t *refs, size_t n, cairn_reg_ref_t **out)
{
    *out = NULL;
    if (!n)
        return CAIRN_OK;
    cairn_reg_ref_t *r = cairn__calloc(n, sizeof *r);
    if (!r)
        return CAIRN_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        r[i].name = cairn__strdup(refs[i].name ? refs[i].name : "");
        r[i].subject = cairn__strdup(refs[i].subject ? refs[i].subject : "");
        r[i].version = refs[i].version;
        if (!r[i].name || !r[i].subject) {
            cairn__reg_refs_free(r, n);
            return CAIRN_E_NOMEM;
        }
    }
    *out = r;
    return CAIRN_OK;
}

cairn_rc_t cairn__reg_version_out(const struct reg_subject *s,
                                  const struct reg_version *v,
                                  bool with_schema,
                                  cairn_reg_version_t *out)
{
    memset(out, 0, sizeof *out);
    out->subject = cairn__strndup(s->name, s->name_len);
    if (!out->subject)
        return CAIRN_E_NOMEM;
    out->version = v->version;
    out->deleted = v->deleted;
    if (with_schema)
        out->schema = cairn_reg_schema_ref(v->sch->pub);
    return CAIRN_OK;
}
