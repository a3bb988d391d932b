/* SPDX-License-Identifier: MIT */
/*
 * handlers.c - the routes of Confluent Schema Registry's REST API (7.x) and
 * their JSON shapes, mapped onto registry/registry.h.
 *
 * Each handler reads its path parameters and query values, calls the
 * registry and writes the answer into r->out. Failures return a result code
 * with the text in `err`: server.c turns it into Confluent's error body with
 * the status and error_code of the one table (CAIRN_RC_MAP), never mapped
 * here. The shapes and the places where Confluent versions differ are in
 * docs/API.md.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "api_int.h"

typedef cairn_rc_t (*handler_fn)(cairn__api_req_t *r, cairn_error_t *err);

/* ---- small helpers --------------------------------------------------- */

static const char *seg(const cairn__api_req_t *r, size_t i)
{
    return r->path.seg[i];
}

static cairn_rc_t
subject_at(cairn__api_req_t *r, size_t i, const char **subject, cairn_error_t *err)
{
    *subject = seg(r, i);
    return cairn_registry_subject_valid(*subject, err);
}

static cairn_rc_t qbool(cairn__api_req_t *r, const char *name, bool *out, cairn_error_t *err)
{
    const char *v;
    cairn_rc_t rc = cairn__api_query(r, name, &v, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_parse_bool(name, v, false, out, err);
    return rc;
}

/* A string query value copied out of r->qbuf into @p dst; *out NULL when absent. */
static cairn_rc_t
qstr(cairn__api_req_t *r, const char *name, char *dst, const char **out, cairn_error_t *err)
{
    const char *v;
    cairn_rc_t rc = cairn__api_query(r, name, &v, err);
    *out = NULL;
    if (rc == CAIRN_OK && v) {
        strcpy(dst, v); /* both are CAIRN__API_MAX_QUERY + 1 bytes */
        *out = dst;
    }
    return rc;
}

/* offset (>= 0, default 0) and limit (-1 or absent = all; 0 = all, as Confluent). */
struct page {
    size_t offset;
    size_t limit;
};

static cairn_rc_t qpage(cairn__api_req_t *r, struct page *p, cairn_error_t *err)
{
    const char *v;
    long off, lim;
    cairn_rc_t rc = cairn__api_query(r, "offset", &v, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_parse_int("offset", v, 0, INT_MAX, 0, &off, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_query(r, "limit", &v, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_parse_int("limit", v, -1, INT_MAX, -1, &lim, err);
    if (rc != CAIRN_OK)
        return rc;
    p->offset = (size_t)off;
    p->limit = lim > 0 ? (size_t)lim : SIZE_MAX;
    return CAIRN_OK;
}

static void page_range(const struct page *p, size_t n, size_t *from, size_t *to)
{
    *from = p->offset < n ? p->offset : n;
    *to = n - *from > p->limit ? *from + p->limit : n;
}

static cairn_rc_t qdeleted(cairn__api_req_t *r, cairn_reg_deleted_t *out, cairn_error_t *err)
{
    bool deleted = false, only = false;
    cairn_rc_t rc = qbool(r, "deleted", &deleted, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "deletedOnly", &only, err);
    *out = only ? CAIRN_DELETED_ONLY : deleted ? CAIRN_DELETED_INCLUDE : CAIRN_DELETED_EXCLUDE;
    return rc;
}

static cairn_rc_t finish(cairn__jw_t *w, cairn_error_t *err)
{
    if (w->rc == CAIRN_OK)
        return CAIRN_OK;
    if (w->rc == CAIRN_E_INVALID_TOO_LARGE)
        return cairn__error_set(err, CAIRN_E_INTERNAL, 0, NULL, "response body too large");
    return cairn__error_set(err, w->rc, 0, NULL, "%s", cairn_rc_str(w->rc));
}

static cairn_rc_t reply_lit(cairn__api_req_t *r, const char *body, cairn_error_t *err)
{
    cairn__jw_t w = {&r->out, CAIRN_OK};
    cairn__jw_lit(&w, body);
    return finish(&w, err);
}

static bool is_avro(const cairn_reg_schema_t *s)
{
    return !s->type || !strcmp(s->type, "AVRO");
}

void cairn__api_write_schema_fields(cairn__jw_t *w, const cairn_reg_schema_t *s, bool lead_comma)
{
    if (lead_comma)
        cairn__jw_lit(w, ",");
    if (!is_avro(s)) {
        cairn__jw_lit(w, "\"schemaType\":");
        cairn__jw_cstr(w, s->type);
        cairn__jw_lit(w, ",");
    }
    if (s->nrefs) {
        cairn__jw_lit(w, "\"references\":[");
        for (size_t i = 0; i < s->nrefs; i++) {
            cairn__jw_lit(w, i ? ",{\"name\":" : "{\"name\":");
            cairn__jw_cstr(w, s->refs[i].name ? s->refs[i].name : "");
            cairn__jw_lit(w, ",\"subject\":");
            cairn__jw_cstr(w, s->refs[i].subject ? s->refs[i].subject : "");
            cairn__jw_lit(w, ",\"version\":");
            cairn__jw_int(w, s->refs[i].version);
            cairn__jw_lit(w, "}");
        }
        cairn__jw_lit(w, "],");
    }
    cairn__jw_lit(w, "\"schema\":");
    cairn__jw_str(w, s->text ? s->text : "", s->text ? s->text_len : 0);
}

/* {"subject","version","id",("schemaType"),("references"),"schema"} */
static void write_version(cairn__jw_t *w, const cairn_reg_version_t *v)
{
    cairn__jw_lit(w, "{\"subject\":");
    cairn__jw_cstr(w, v->subject);
    cairn__jw_lit(w, ",\"version\":");
    cairn__jw_int(w, v->version);
    cairn__jw_lit(w, ",\"id\":");
    cairn__jw_int(w, v->schema ? v->schema->id : 0);
    if (v->schema)
        cairn__api_write_schema_fields(w, v->schema, true);
    cairn__jw_lit(w, "}");
}

static void write_ints(cairn__jw_t *w, const int *v, size_t from, size_t to)
{
    cairn__jw_lit(w, "[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            cairn__jw_lit(w, ",");
        cairn__jw_int(w, v[i]);
    }
    cairn__jw_lit(w, "]");
}

static void write_strs(cairn__jw_t *w, const cairn_strlist_t *l, size_t from, size_t to)
{
    cairn__jw_lit(w, "[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            cairn__jw_lit(w, ",");
        cairn__jw_cstr(w, l->items[i]);
    }
    cairn__jw_lit(w, "]");
}

/* ---- request bodies -------------------------------------------------- */

static cairn_rc_t body_object(cairn__api_req_t *r, cairn_error_t *err)
{
    json_error_t je;
    if (r->body.len == 0)
        return cairn__error_set(err, CAIRN_E_INVALID_JSON, 0, NULL,
                                "request body is empty; a JSON object is expected");
    r->json = json_loadb(r->body.data, r->body.len, 0, &je);
    if (!r->json)
        return cairn__error_set(err, CAIRN_E_INVALID_JSON, 0, NULL,
                                "malformed JSON at line %d, column %d: %s", je.line, je.column,
                                je.text);
    if (!json_is_object(r->json))
        return cairn__error_set(err, CAIRN_E_INVALID_JSON, 0, NULL,
                                "request body must be a JSON object");
    return CAIRN_OK;
}

/* An optional integer field; absent, null or <= 0 mean "not given" (0). */
static cairn_rc_t opt_int(json_t *o, const char *name, int *out, cairn_error_t *err)
{
    json_t *v = json_object_get(o, name);
    *out = 0;
    if (!v || json_is_null(v))
        return CAIRN_OK;
    if (!json_is_integer(v) || json_integer_value(v) > INT_MAX)
        return cairn__error_set(err, CAIRN_E_INVALID_JSON, 0, name,
                                "field '%s' must be an integer between 1 and 2^31-1", name);
    json_int_t i = json_integer_value(v);
    *out = i > 0 ? (int)i : 0;
    return CAIRN_OK;
}

#define MAX_REFS 1000

struct schema_body {
    cairn_reg_request_t req;
    cairn_reg_ref_t *refs;
    size_t nrefs;
};

static void schema_body_release(struct schema_body *b)
{
    for (size_t i = 0; i < b->nrefs; i++) {
        cairn__free(b->refs[i].name);
        cairn__free(b->refs[i].subject);
    }
    cairn__free(b->refs);
    b->refs = NULL;
    b->nrefs = 0;
}

static cairn_rc_t parse_refs(json_t *arr, struct schema_body *b, cairn_error_t *err)
{
    size_t n = json_array_size(arr);
    if (n > MAX_REFS)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "more than %d references",
                                MAX_REFS);
    if (n == 0)
        return CAIRN_OK;
    b->refs = cairn__calloc(n, sizeof *b->refs);
    if (!b->refs)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        json_t *name = json_object_get(e, "name"), *subject = json_object_get(e, "subject");
        json_t *version = json_object_get(e, "version");
        if (!json_is_object(e) || !json_is_string(name) || !json_is_string(subject) ||
            !json_is_integer(version) || json_integer_value(version) > INT_MAX ||
            json_integer_value(version) < INT_MIN)
            return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                    "invalid reference at index %zu: expected "
                                    "{\"name\": string, \"subject\": string, \"version\": integer}",
                                    i);
        b->refs[i].name = cairn__strdup(json_string_value(name));
        b->refs[i].subject = cairn__strdup(json_string_value(subject));
        b->refs[i].version = (int)json_integer_value(version);
        b->nrefs = i + 1;
        if (!b->refs[i].name || !b->refs[i].subject)
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    }
    return CAIRN_OK;
}

/*
 * {"schema": "...", "schemaType"?, "references"?, "id"?, "version"?, ...}.
 * Unknown fields (metadata, ruleSet, anything newer) are accepted and ignored.
 */
static cairn_rc_t parse_schema_body(cairn__api_req_t *r, struct schema_body *b, cairn_error_t *err)
{
    cairn_rc_t rc = body_object(r, err);
    if (rc != CAIRN_OK)
        return rc;
    json_t *schema = json_object_get(r->json, "schema");
    if (!json_is_string(schema) || json_string_length(schema) == 0)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL, "Empty schema");
    b->req.schema = json_string_value(schema);
    b->req.schema_len = json_string_length(schema);

    json_t *type = json_object_get(r->json, "schemaType");
    if (type && !json_is_null(type)) {
        if (!json_is_string(type))
            return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                    "Invalid schema type: schemaType must be a string");
        const char *t = json_string_value(type);
        const cairn_format_t *fmt = cairn_format_find(t);
        if (!fmt) {
            if (!strcmp(t, "PROTOBUF") || !strcmp(t, "JSON"))
                return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                        "schema type %s is not supported yet", t);
            return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                    "Invalid schema type %.100s", t);
        }
        b->req.schema_type = fmt->name;
    }
    json_t *refs = json_object_get(r->json, "references");
    if (refs && !json_is_null(refs)) {
        if (!json_is_array(refs))
            return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                    "references must be an array");
        rc = parse_refs(refs, b, err);
        if (rc != CAIRN_OK)
            return rc;
        b->req.refs = b->refs;
        b->req.nrefs = b->nrefs;
    }
    rc = opt_int(r->json, "id", &b->req.id, err);
    if (rc == CAIRN_OK)
        rc = opt_int(r->json, "version", &b->req.version, err);
    return rc;
}

/* ---- root, health, contexts, types ------------------------------------ */

static cairn_rc_t h_root(cairn__api_req_t *r, cairn_error_t *err)
{
    return reply_lit(r, "{}", err);
}

static cairn_rc_t h_health(cairn__api_req_t *r, cairn_error_t *err)
{
    return reply_lit(r, "{\"status\":\"UP\"}", err);
}

static cairn_rc_t h_contexts(cairn__api_req_t *r, cairn_error_t *err)
{
    return reply_lit(r, "[\".\"]", err);
}

static cairn_rc_t h_types(cairn__api_req_t *r, cairn_error_t *err)
{
    cairn__jw_t w = {&r->out, CAIRN_OK};
    const char *const *names = cairn_format_names();
    cairn__jw_lit(&w, "[");
    for (size_t i = 0; names && names[i]; i++) {
        if (i)
            cairn__jw_lit(&w, ",");
        cairn__jw_cstr(&w, names[i]);
    }
    cairn__jw_lit(&w, "]");
    return finish(&w, err);
}

/* ---- subjects ---------------------------------------------------------- */

static cairn_rc_t h_subjects(cairn__api_req_t *r, cairn_error_t *err)
{
    char prefix_buf[CAIRN__API_MAX_QUERY + 1];
    const char *prefix;
    cairn_reg_deleted_t del;
    struct page pg;
    cairn_strlist_t l;
    cairn_strlist_init(&l);
    cairn_rc_t rc = qdeleted(r, &del, err);
    if (rc == CAIRN_OK)
        rc = qstr(r, "subjectPrefix", prefix_buf, &prefix, err);
    if (rc == CAIRN_OK)
        rc = qpage(r, &pg, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_subjects(r->api->reg, prefix, del, &l, err);
    if (rc == CAIRN_OK) {
        size_t from, to;
        cairn__jw_t w = {&r->out, CAIRN_OK};
        page_range(&pg, l.n, &from, &to);
        write_strs(&w, &l, from, to);
        rc = finish(&w, err);
    }
    cairn_strlist_release(&l);
    return rc;
}

static cairn_rc_t h_versions(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    cairn_reg_deleted_t del;
    struct page pg;
    int *versions = NULL;
    size_t n = 0;
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = qdeleted(r, &del, err);
    if (rc == CAIRN_OK)
        rc = qpage(r, &pg, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_versions(r->api->reg, subject, del, &versions, &n, err);
    if (rc == CAIRN_OK) {
        size_t from, to;
        cairn__jw_t w = {&r->out, CAIRN_OK};
        page_range(&pg, n, &from, &to);
        write_ints(&w, versions, from, to);
        rc = finish(&w, err);
    }
    cairn_free(versions);
    return rc;
}

/* Confluent 7.x puts the reasons into the message of the 409. */
static cairn_rc_t incompatible(cairn__api_req_t *r, const char *subject, cairn_error_t *err)
{
    cairn_buf_t *m = &r->msg;
    cairn_buf_reset(m);
    cairn_rc_t rc = cairn_buf_printf(m,
                                     "Schema being registered is incompatible with an earlier "
                                     "schema for subject \"%s\", details: [",
                                     subject);
    for (size_t i = 0; rc == CAIRN_OK && i < r->reasons.n; i++) {
        if (i)
            rc = cairn_buf_appends(m, ", ");
        if (rc == CAIRN_OK)
            rc = cairn_buf_appends(m, r->reasons.items[i]);
    }
    if (rc == CAIRN_OK)
        rc = cairn_buf_appends(m, "]");
    if (rc != CAIRN_OK) /* too long for the cap: keep what fits, closed */
        cairn_buf_reset(m);
    return cairn__error_set(err, CAIRN_E_INCOMPATIBLE, 0, subject,
                            "Schema being registered is incompatible with an earlier schema "
                            "for subject \"%s\"",
                            subject);
}

static cairn_rc_t h_register(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    struct schema_body b = {0};
    int id = 0;
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "normalize", &b.req.normalize, err);
    if (rc == CAIRN_OK)
        rc = parse_schema_body(r, &b, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_register(r->api->reg, subject, &b.req, &id, &r->reasons, err);
    if (rc == CAIRN_E_INCOMPATIBLE) {
        cairn_error_t detail = {0};
        rc = incompatible(r, subject, &detail);
        *err = detail;
    }
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        cairn__jw_lit(&w, "{\"id\":");
        cairn__jw_int(&w, id);
        cairn__jw_lit(&w, "}");
        rc = finish(&w, err);
    }
    schema_body_release(&b);
    return rc;
}

static cairn_rc_t h_lookup(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    struct schema_body b = {0};
    bool deleted = false;
    cairn_reg_version_t v = {0};
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "normalize", &b.req.normalize, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "deleted", &deleted, err);
    if (rc == CAIRN_OK)
        rc = parse_schema_body(r, &b, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_lookup(r->api->reg, subject, &b.req, deleted, &v, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        write_version(&w, &v);
        rc = finish(&w, err);
        cairn_reg_version_release(&v);
    }
    schema_body_release(&b);
    return rc;
}

static cairn_rc_t h_subject_delete(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    bool permanent = false;
    int *versions = NULL;
    size_t n = 0;
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "permanent", &permanent, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_delete_subject(r->api->reg, subject, permanent, &versions, &n, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        write_ints(&w, versions, 0, n);
        rc = finish(&w, err);
    }
    cairn_free(versions);
    return rc;
}

/* GET /subjects/{s}/versions/{v} and .../schema: the one version. */
static cairn_rc_t get_version(cairn__api_req_t *r, cairn_reg_version_t *v, cairn_error_t *err)
{
    const char *subject;
    int version;
    bool deleted = false;
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_parse_version(seg(r, 3), &version, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "deleted", &deleted, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_get_version(r->api->reg, subject, version, deleted, v, err);
    return rc;
}

static cairn_rc_t h_version(cairn__api_req_t *r, cairn_error_t *err)
{
    cairn_reg_version_t v = {0};
    cairn_rc_t rc = get_version(r, &v, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        write_version(&w, &v);
        rc = finish(&w, err);
        cairn_reg_version_release(&v);
    }
    return rc;
}

static cairn_rc_t h_version_schema(cairn__api_req_t *r, cairn_error_t *err)
{
    cairn_reg_version_t v = {0};
    cairn_rc_t rc = get_version(r, &v, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        if (v.schema)
            cairn__jw_raw(&w, v.schema->text, v.schema->text_len);
        rc = finish(&w, err);
        cairn_reg_version_release(&v);
    }
    return rc;
}

static cairn_rc_t h_version_delete(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    int version, deleted = 0;
    bool permanent = false;
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_parse_version(seg(r, 3), &version, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "permanent", &permanent, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_delete_version(r->api->reg, subject, version, permanent, &deleted, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        cairn__jw_int(&w, deleted);
        rc = finish(&w, err);
    }
    return rc;
}

static cairn_rc_t h_referenced_by(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    int version;
    int *ids = NULL;
    size_t n = 0;
    cairn_rc_t rc = subject_at(r, 1, &subject, err);
    if (rc == CAIRN_OK)
        rc = cairn__api_parse_version(seg(r, 3), &version, err);
    if (rc == CAIRN_OK && version == -1) {
        /* "latest" names the latest live version; the registry wants its number. */
        cairn_reg_version_t v = {0};
        rc = cairn_registry_get_version(r->api->reg, subject, -1, false, &v, err);
        if (rc == CAIRN_OK)
            version = v.version;
        cairn_reg_version_release(&v);
    }
    if (rc == CAIRN_OK)
        rc = cairn_registry_referenced_by(r->api->reg, subject, version, &ids, &n, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        write_ints(&w, ids, 0, n);
        rc = finish(&w, err);
    }
    cairn_free(ids);
    return rc;
}

/* ---- schemas ----------------------------------------------------------- */

static cairn_rc_t h_schemas(cairn__api_req_t *r, cairn_error_t *err)
{
    char prefix_buf[CAIRN__API_MAX_QUERY + 1];
    const char *prefix;
    bool deleted = false, latest = false;
    struct page pg;
    cairn_reg_version_t *vs = NULL;
    size_t n = 0;
    cairn_rc_t rc = qstr(r, "subjectPrefix", prefix_buf, &prefix, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "deleted", &deleted, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "latestOnly", &latest, err);
    if (rc == CAIRN_OK)
        rc = qpage(r, &pg, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_list_schemas(r->api->reg, prefix, deleted, latest, &vs, &n, err);
    if (rc == CAIRN_OK) {
        size_t from, to;
        cairn__jw_t w = {&r->out, CAIRN_OK};
        page_range(&pg, n, &from, &to);
        cairn__jw_lit(&w, "[");
        for (size_t i = from; i < to; i++) {
            if (i > from)
                cairn__jw_lit(&w, ",");
            write_version(&w, &vs[i]);
        }
        cairn__jw_lit(&w, "]");
        rc = finish(&w, err);
    }
    cairn_reg_versions_free(vs, n);
    return rc;
}

/* Confluent answers "not found" for an id that is not a number in range. */
static cairn_rc_t id_at(cairn__api_req_t *r, size_t i, int *id, cairn_error_t *err)
{
    if (cairn__api_parse_id(seg(r, i), id))
        return CAIRN_OK;
    return cairn__error_set(err, CAIRN_E_NOT_FOUND_SCHEMA, 0, NULL, "Schema %.64s not found",
                            seg(r, i));
}

static cairn_rc_t schema_by_id(cairn__api_req_t *r, cairn_reg_schema_t **s, cairn_error_t *err)
{
    char subject_buf[CAIRN__API_MAX_QUERY + 1];
    const char *subject;
    int id;
    cairn_rc_t rc = id_at(r, 2, &id, err);
    if (rc == CAIRN_OK)
        rc = qstr(r, "subject", subject_buf, &subject, err);
    if (rc == CAIRN_OK && subject && !*subject)
        subject = NULL;
    if (rc == CAIRN_OK)
        rc = cairn_registry_schema_by_id(r->api->reg, id, subject, s, err);
    return rc;
}

/* The hot path: a cached, pre-serialised response unless maxId is asked. */
static cairn_rc_t h_schema_by_id(cairn__api_req_t *r, cairn_error_t *err)
{
    cairn_reg_schema_t *s = NULL;
    bool max_id = false;
    cairn_rc_t rc = schema_by_id(r, &s, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "fetchMaxId", &max_id, err);
    if (rc != CAIRN_OK)
        goto out;
    if (!max_id) {
        r->shared = cairn__api_schema_response(s);
        if (r->shared) {
            r->held = s; /* released once the response is queued */
            return CAIRN_OK;
        }
    }
    cairn__jw_t w = {&r->out, CAIRN_OK};
    cairn__jw_lit(&w, "{");
    cairn__api_write_schema_fields(&w, s, false);
    if (max_id) {
        cairn__jw_lit(&w, ",\"maxId\":");
        cairn__jw_int(&w, cairn_registry_max_id(r->api->reg));
    }
    cairn__jw_lit(&w, "}");
    rc = finish(&w, err);
out:
    cairn_reg_schema_unref(s);
    return rc;
}

static cairn_rc_t h_schema_by_id_text(cairn__api_req_t *r, cairn_error_t *err)
{
    cairn_reg_schema_t *s = NULL;
    cairn_rc_t rc = schema_by_id(r, &s, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        cairn__jw_raw(&w, s->text, s->text_len);
        rc = finish(&w, err);
    }
    cairn_reg_schema_unref(s);
    return rc;
}

static cairn_rc_t h_schema_by_id_subjects(cairn__api_req_t *r, cairn_error_t *err)
{
    int id;
    bool deleted = false;
    cairn_strlist_t l;
    cairn_strlist_init(&l);
    cairn_rc_t rc = id_at(r, 2, &id, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "deleted", &deleted, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_subjects_by_id(r->api->reg, id, deleted, &l, err);
    if (rc == CAIRN_OK && l.n == 0) /* registry.h: no subject uses it = not found */
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SCHEMA, 0, NULL, "Schema %d not found", id);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        write_strs(&w, &l, 0, l.n);
        rc = finish(&w, err);
    }
    cairn_strlist_release(&l);
    return rc;
}

static cairn_rc_t h_schema_by_id_versions(cairn__api_req_t *r, cairn_error_t *err)
{
    int id;
    bool deleted = false;
    cairn_reg_version_t *vs = NULL;
    size_t n = 0;
    cairn_rc_t rc = id_at(r, 2, &id, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "deleted", &deleted, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_versions_by_id(r->api->reg, id, deleted, &vs, &n, err);
    if (rc == CAIRN_OK && n == 0)
        rc = cairn__error_set(err, CAIRN_E_NOT_FOUND_SCHEMA, 0, NULL, "Schema %d not found", id);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        cairn__jw_lit(&w, "[");
        for (size_t i = 0; i < n; i++) {
            cairn__jw_lit(&w, i ? ",{\"subject\":" : "{\"subject\":");
            cairn__jw_cstr(&w, vs[i].subject);
            cairn__jw_lit(&w, ",\"version\":");
            cairn__jw_int(&w, vs[i].version);
            cairn__jw_lit(&w, "}");
        }
        cairn__jw_lit(&w, "]");
        rc = finish(&w, err);
    }
    cairn_reg_versions_free(vs, n);
    return rc;
}

/* ---- compatibility ------------------------------------------------------ */

static cairn_rc_t h_compat(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    struct schema_body b = {0};
    bool verbose = false, compatible = false;
    int version = 0; /* the versions the subject's level requires */
    cairn_rc_t rc = subject_at(r, 2, &subject, err);
    if (rc == CAIRN_OK && r->path.n == 5)
        rc = cairn__api_parse_version(seg(r, 4), &version, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "verbose", &verbose, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "normalize", &b.req.normalize, err);
    if (rc == CAIRN_OK)
        rc = parse_schema_body(r, &b, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_check(r->api->reg, subject, version, &b.req, &compatible,
                                  verbose ? &r->reasons : NULL, err);
    if (rc == CAIRN_OK) {
        cairn__jw_t w = {&r->out, CAIRN_OK};
        cairn__jw_lit(&w, compatible ? "{\"is_compatible\":true" : "{\"is_compatible\":false");
        if (verbose) {
            cairn__jw_lit(&w, ",\"messages\":");
            write_strs(&w, &r->reasons, 0, r->reasons.n);
        }
        cairn__jw_lit(&w, "}");
        rc = finish(&w, err);
    }
    schema_body_release(&b);
    return rc;
}

/* ---- config and mode ---------------------------------------------------- */

/* /config or /mode: subject NULL; /config/{s} or /mode/{s}: validated. */
static cairn_rc_t scope_subject(cairn__api_req_t *r, const char **subject, cairn_error_t *err)
{
    *subject = NULL;
    return r->path.n == 2 ? subject_at(r, 1, subject, err) : CAIRN_OK;
}

static cairn_rc_t
reply_field(cairn__api_req_t *r, const char *key, const char *value, cairn_error_t *err)
{
    cairn__jw_t w = {&r->out, CAIRN_OK};
    cairn__jw_lit(&w, "{");
    cairn__jw_cstr(&w, key);
    cairn__jw_lit(&w, ":");
    cairn__jw_cstr(&w, value);
    cairn__jw_lit(&w, "}");
    return finish(&w, err);
}

static cairn_rc_t h_config_get(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    bool dflt = false;
    cairn_compat_level_t level;
    cairn_rc_t rc = scope_subject(r, &subject, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "defaultToGlobal", &dflt, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_get_level(r->api->reg, subject, dflt, &level, err);
    if (rc == CAIRN_OK)
        rc = reply_field(r, "compatibilityLevel", cairn_compat_level_name(level), err);
    return rc;
}

static cairn_rc_t h_config_put(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    cairn_compat_level_t level;
    cairn_rc_t rc = scope_subject(r, &subject, err);
    if (rc == CAIRN_OK)
        rc = body_object(r, err);
    if (rc == CAIRN_OK) {
        json_t *c = json_object_get(r->json, "compatibility");
        if (!json_is_string(c) ||
            cairn_compat_level_parse(json_string_value(c), &level) != CAIRN_OK)
            rc = cairn__error_set(err, CAIRN_E_INVALID_LEVEL, 0, NULL,
                                  "Invalid compatibility level. Valid values are none, backward, "
                                  "forward, full, backward_transitive, forward_transitive, and "
                                  "full_transitive");
    }
    if (rc == CAIRN_OK)
        rc = cairn_registry_set_level(r->api->reg, subject, level, err);
    if (rc == CAIRN_OK)
        rc = reply_field(r, "compatibility", cairn_compat_level_name(level), err);
    return rc;
}

static cairn_rc_t h_config_delete(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    cairn_compat_level_t old;
    cairn_rc_t rc = scope_subject(r, &subject, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_delete_level(r->api->reg, subject, &old, err);
    if (rc == CAIRN_OK)
        rc = reply_field(r, "compatibilityLevel", cairn_compat_level_name(old), err);
    return rc;
}

static cairn_rc_t h_mode_get(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    bool dflt = false;
    cairn_reg_mode_t mode;
    cairn_rc_t rc = scope_subject(r, &subject, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "defaultToGlobal", &dflt, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_get_mode(r->api->reg, subject, dflt, &mode, err);
    if (rc == CAIRN_OK)
        rc = reply_field(r, "mode", cairn_reg_mode_name(mode), err);
    return rc;
}

static cairn_rc_t h_mode_put(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    bool force = false;
    cairn_reg_mode_t mode;
    cairn_rc_t rc = scope_subject(r, &subject, err);
    if (rc == CAIRN_OK)
        rc = qbool(r, "force", &force, err);
    if (rc == CAIRN_OK)
        rc = body_object(r, err);
    if (rc == CAIRN_OK) {
        json_t *m = json_object_get(r->json, "mode");
        if (!json_is_string(m) || cairn_reg_mode_parse(json_string_value(m), &mode) != CAIRN_OK)
            rc = cairn__error_set(err, CAIRN_E_INVALID_MODE, 0, NULL,
                                  "Invalid mode. Valid values are READWRITE, READONLY and IMPORT");
    }
    if (rc == CAIRN_OK)
        rc = cairn_registry_set_mode(r->api->reg, subject, mode, force, err);
    if (rc == CAIRN_OK)
        rc = reply_field(r, "mode", cairn_reg_mode_name(mode), err);
    return rc;
}

static cairn_rc_t h_mode_delete(cairn__api_req_t *r, cairn_error_t *err)
{
    const char *subject;
    cairn_reg_mode_t old;
    cairn_rc_t rc = scope_subject(r, &subject, err);
    if (rc == CAIRN_OK)
        rc = cairn_registry_delete_mode(r->api->reg, subject, &old, err);
    if (rc == CAIRN_OK)
        rc = reply_field(r, "mode", cairn_reg_mode_name(old), err);
    return rc;
}

/* ---- routing ------------------------------------------------------------ */

#define ANY "*" /* a path parameter: any non-empty segment */

struct route {
    const char *pat[6]; /* NULL-terminated */
    handler_fn fn[4];   /* indexed by enum cairn__api_method: GET, POST, PUT, DELETE */
};

static const struct route routes[] = {
    {{NULL}, {h_root, NULL, NULL, NULL}},
    {{"health", NULL}, {h_health, NULL, NULL, NULL}},
    {{"contexts", NULL}, {h_contexts, NULL, NULL, NULL}},
    {{"subjects", NULL}, {h_subjects, NULL, NULL, NULL}},
    {{"subjects", ANY, NULL}, {NULL, h_lookup, NULL, h_subject_delete}},
    {{"subjects", ANY, "versions", NULL}, {h_versions, h_register, NULL, NULL}},
    {{"subjects", ANY, "versions", ANY, NULL}, {h_version, NULL, NULL, h_version_delete}},
    {{"subjects", ANY, "versions", ANY, "schema", NULL}, {h_version_schema, NULL, NULL, NULL}},
    {{"subjects", ANY, "versions", ANY, "referencedby", NULL}, {h_referenced_by, NULL, NULL, NULL}},
    {{"schemas", NULL}, {h_schemas, NULL, NULL, NULL}},
    {{"schemas", "types", NULL}, {h_types, NULL, NULL, NULL}},
    {{"schemas", "ids", ANY, NULL}, {h_schema_by_id, NULL, NULL, NULL}},
    {{"schemas", "ids", ANY, "schema", NULL}, {h_schema_by_id_text, NULL, NULL, NULL}},
    {{"schemas", "ids", ANY, "subjects", NULL}, {h_schema_by_id_subjects, NULL, NULL, NULL}},
    {{"schemas", "ids", ANY, "versions", NULL}, {h_schema_by_id_versions, NULL, NULL, NULL}},
    {{"compatibility", "subjects", ANY, "versions", NULL}, {NULL, h_compat, NULL, NULL}},
    {{"compatibility", "subjects", ANY, "versions", ANY, NULL}, {NULL, h_compat, NULL, NULL}},
    {{"config", NULL}, {h_config_get, NULL, h_config_put, h_config_delete}},
    {{"config", ANY, NULL}, {h_config_get, NULL, h_config_put, h_config_delete}},
    {{"mode", NULL}, {h_mode_get, NULL, h_mode_put, NULL}},
    {{"mode", ANY, NULL}, {h_mode_get, NULL, h_mode_put, h_mode_delete}},
};

static bool route_matches(const struct route *rt, const cairn__api_path_t *p)
{
    size_t i = 0;
    for (; rt->pat[i]; i++) {
        if (i >= p->n)
            return false;
        if (strcmp(rt->pat[i], ANY) != 0 && strcmp(rt->pat[i], p->seg[i]) != 0)
            return false;
    }
    return i == p->n;
}

cairn_rc_t cairn__api_dispatch(cairn__api_req_t *r, cairn_error_t *err)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_matches(&routes[i], &r->path))
            continue;
        handler_fn fn = r->method < CAIRN__API_OTHER ? routes[i].fn[r->method] : NULL;
        if (!fn)
            return cairn__error_set(err, CAIRN_E_INVALID_METHOD, 0, NULL,
                                    "HTTP 405 Method Not Allowed");
        r->status = 200;
        return fn(r, err);
    }
    return cairn__error_set(err, CAIRN_E_NOT_FOUND_PATH, 0, NULL, "HTTP 404 Not Found");
}
