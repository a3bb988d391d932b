/* SPDX-License-Identifier: MIT */
/*
 * test_service_fixture.h - shared set-up of the registry service tests: a
 * registry over a fresh temporary data directory (removed afterwards), a
 * reopen helper, schema builders and a dump of the whole visible state used
 * to compare a registry before and after a reopen.
 */
#ifndef CAIRN_TEST_SERVICE_FIXTURE_H
#define CAIRN_TEST_SERVICE_FIXTURE_H

#include <dirent.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry/registry.h"

struct fx {
    char dir[256];
    cairn_registry_t *reg;
};

static inline void fx_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1024];
            int len = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            if (len > 0 && (size_t)len < sizeof sub)
                fx_rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline cairn_registry_t *fx_open_dir(const char *dir)
{
    cairn_registry_options_t o = {.data_dir = dir};
    cairn_registry_t *reg = NULL;
    cairn_error_t err = {0};
    cairn_rc_t rc = cairn_registry_open(&o, &reg, &err);
    if (rc != CAIRN_OK)
        fail_msg("cannot open registry at %s: %s (%s)", dir, cairn_rc_name(rc), err.text);
    return reg;
}

static inline int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/cairn-svc-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->reg = fx_open_dir(f->dir);
    *state = f;
    return 0;
}

static inline void fx_reopen(struct fx *f)
{
    cairn_registry_close(f->reg);
    f->reg = NULL;
    f->reg = fx_open_dir(f->dir);
}

static inline int fx_teardown(void **state)
{
    struct fx *f = *state;
    cairn_registry_close(f->reg);
    fx_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A record "r" with fields f0..f(n-1) of type int; @p extra adds one more
 * field "x" with a default when 1, without one when 2. */
static inline const char *fx_record(char *buf, size_t cap, const char *name, int n, int extra)
{
    size_t o =
        (size_t)snprintf(buf, cap, "{\"type\":\"record\",\"name\":\"%s\",\"fields\":[", name);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s{\"name\":\"f%d\",\"type\":\"int\"}",
                              i ? "," : "", i);
    if (extra == 1)
        o += (size_t)snprintf(buf + o, cap - o,
                              "%s{\"name\":\"x\",\"type\":\"string\",\"default\":\"d\"}",
                              n ? "," : "");
    else if (extra == 2)
        o += (size_t)snprintf(buf + o, cap - o, "%s{\"name\":\"x\",\"type\":\"string\"}",
                              n ? "," : "");
    snprintf(buf + o, cap - o, "]}");
    return buf;
}

static inline cairn_rc_t fx_register_full(cairn_registry_t *reg,
                                          const char *subject,
                                          const cairn_reg_request_t *req,
                                          int *id,
                                          cairn_error_t *err)
{
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    cairn_rc_t rc = cairn_registry_register(reg, subject, req, id, &reasons, err);
    cairn_strlist_release(&reasons);
    return rc;
}

static inline cairn_rc_t
fx_register(cairn_registry_t *reg, const char *subject, const char *text, int *id)
{
    cairn_reg_request_t req = {.schema = text, .schema_len = strlen(text)};
    cairn_error_t err = {0};
    return fx_register_full(reg, subject, &req, id, &err);
}

static inline int fx_register_ok(cairn_registry_t *reg, const char *subject, const char *text)
{
    int id = 0;
    cairn_reg_request_t req = {.schema = text, .schema_len = strlen(text)};
    cairn_error_t err = {0};
    cairn_rc_t rc = fx_register_full(reg, subject, &req, &id, &err);
    if (rc != CAIRN_OK)
        fail_msg("register under '%s' failed: %s (%s)", subject, cairn_rc_name(rc), err.text);
    return id;
}

/* Number of versions of @p subject per @p deleted, or -1 when the call fails. */
static inline int
fx_nversions(cairn_registry_t *reg, const char *subject, cairn_reg_deleted_t deleted)
{
    int *v = NULL;
    size_t n = 0;
    if (cairn_registry_versions(reg, subject, deleted, &v, &n, NULL) != CAIRN_OK)
        return -1;
    cairn_free(v);
    return (int)n;
}

/* Everything a client can see, as one string (caller frees). */
static inline char *fx_dump(cairn_registry_t *reg)
{
    size_t cap = 1 << 20, o = 0;
    char *out = calloc(1, cap);
    cairn_reg_version_t *all = NULL;
    size_t n = 0;
    assert_int_equal(cairn_registry_list_schemas(reg, NULL, true, false, &all, &n, NULL), CAIRN_OK);
    for (size_t i = 0; i < n; i++) {
        cairn_compat_level_t level = CAIRN_COMPAT_NONE;
        cairn_reg_mode_t mode = CAIRN_MODE_READWRITE;
        int lrc = cairn_registry_get_level(reg, all[i].subject, false, &level, NULL);
        int mrc = cairn_registry_get_mode(reg, all[i].subject, false, &mode, NULL);
        o += (size_t)snprintf(out + o, cap - o, "%s v%d id=%d del=%d level=%d/%d mode=%d/%d %s",
                              all[i].subject, all[i].version, all[i].schema->id, all[i].deleted,
                              lrc, (int)level, mrc, (int)mode, all[i].schema->text);
        for (size_t r = 0; r < all[i].schema->nrefs; r++)
            o += (size_t)snprintf(out + o, cap - o, " ref=%s/%s/%d", all[i].schema->refs[r].name,
                                  all[i].schema->refs[r].subject, all[i].schema->refs[r].version);
        o += (size_t)snprintf(out + o, cap - o, "\n");
    }
    cairn_reg_versions_free(all, n);
    cairn_compat_level_t gl;
    cairn_reg_mode_t gm;
    assert_int_equal(cairn_registry_get_level(reg, NULL, true, &gl, NULL), CAIRN_OK);
    assert_int_equal(cairn_registry_get_mode(reg, NULL, true, &gm, NULL), CAIRN_OK);
    snprintf(out + o, cap - o, "global level=%d mode=%d max_id=%d\n", (int)gl, (int)gm,
             cairn_registry_max_id(reg));
    return out;
}

#endif
