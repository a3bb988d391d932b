/* SPDX-License-Identifier: MIT */
/*
 * spec.c - declarative projectors: a JSON file that names the projector, its
 * sink (a PostgreSQL table or a Redis instance), the event types it declares
 * and, per event type, the writes each event makes (docs/PROJECTIONS.md has
 * the format).
 *
 * Everything is checked at load, before any event is read, so that a typo
 * fails the start with a message naming the place instead of stopping the
 * projector hours later: JSON syntax errors name the line and column (from
 * jansson's json_error_t), every other error the JSON pointer of the bad
 * member ("/on/Deposited/0/upsert/balance"). Checked: unknown members,
 * event types handled but not declared, field pointers outside a type's
 * declared fields, unknown column types, missing or misused key columns,
 * malformed key templates and sources.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "projections.h"

#define SPEC_MAX_BYTES (4u << 20)
#define DEFAULT_BATCH  500
#define MAX_BATCH      100000

struct ctx {
    const char *path;
    cairn_error_t *err;
};

CAIRN_PRINTF(3, 4)
static cairn_rc_t bad(struct ctx *c, const char *where, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cairn__error_set(c->err, CAIRN_E_INVALID, 0, where, "%s: %s: %s", c->path,
                            where[0] ? where : "/", msg);
}

/* Appends "/" + escaped @p member to the pointer @p base (RFC 6901). */
static void ptr_join(char *out, size_t size, const char *base, const char *member)
{
    size_t n = (size_t)snprintf(out, size, "%s/", base);
    for (const char *p = member; *p && n + 3 < size; p++) {
        if (*p == '~') {
            out[n++] = '~';
            out[n++] = '0';
        } else if (*p == '/') {
            out[n++] = '~';
            out[n++] = '1';
        } else {
            out[n++] = *p;
        }
    }
    out[n < size ? n : size - 1] = '\0';
}

static void ptr_index(char *out, size_t size, const char *base, size_t i)
{
    char num[24];
    snprintf(num, sizeof num, "%zu", i);
    ptr_join(out, size, base, num);
}

/* Refuses members of @p obj not in the NULL-terminated @p allowed. */
static cairn_rc_t
only_members(struct ctx *c, json_t *obj, const char *where, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok) {
            char w[256];
            ptr_join(w, sizeof w, where, k);
            return bad(c, w, "unknown member '%s'", k);
        }
    }
    return CAIRN_OK;
}

static int is_ident(const char *s, int dots)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || (dots && *p == '.')))
            return 0;
    return strlen(s) <= 63 * (dots ? 2 : 1);
}

static cairn_rc_t
get_string(struct ctx *c, json_t *obj, const char *where, const char *key, int required, char **out)
{
    json_t *v = json_object_get(obj, key);
    char w[256];
    ptr_join(w, sizeof w, where, key);
    if (!v) {
        if (required)
            return bad(c, where, "missing member '%s'", key);
        return CAIRN_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return bad(c, w, "'%s' must be a non-empty string", key);
    if (!(*out = cairn__strdup(json_string_value(v))))
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    return CAIRN_OK;
}

/* ---- sources and templates ------------------------------------------- */

static const struct {
    const char *name;
    cairn__pj_src_kind_t kind;
} meta_sources[] = {
    {"$stream", CAIRN__PJ_SRC_STREAM},       {"$version", CAIRN__PJ_SRC_VERSION},
    {"$type", CAIRN__PJ_SRC_TYPE},           {"$position", CAIRN__PJ_SRC_POSITION},
    {"$timestamp", CAIRN__PJ_SRC_TIMESTAMP},
};

/* Checks a pointer against the declared fields of @p type (NULL: not declared). */
static cairn_rc_t
check_field(struct ctx *c, json_t *fields, const char *type, const char *ptr, const char *where)
{
    size_t i;
    json_t *f;
    if (!fields || !json_is_array(fields))
        return CAIRN_OK;
    json_array_foreach(fields, i, f)
    {
        const char *d = json_string_value(f);
        size_t n = strlen(d);
        if (!strncmp(ptr, d, n) && (ptr[n] == '\0' || ptr[n] == '/'))
            return CAIRN_OK;
    }
    char list[160] = "";
    size_t len = 0;
    json_array_foreach(fields, i, f)
    {
        int k =
            snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", json_string_value(f));
        if (k < 0 || (size_t)k >= sizeof list - len)
            break;
        len += (size_t)k;
    }
    return bad(c, where, "unknown field '%s' of event type '%s' (declared: %s)", ptr, type, list);
}

static cairn_rc_t parse_src_string(struct ctx *c,
                                   const char *s,
                                   json_t *fields,
                                   const char *type,
                                   const char *where,
                                   cairn__pj_src_t *out)
{
    if (s[0] == '/') {
        out->kind = CAIRN__PJ_SRC_POINTER;
        if (!(out->pointer = cairn__strdup(s)))
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        return check_field(c, fields, type, s, where);
    }
    for (size_t i = 0; i < sizeof meta_sources / sizeof meta_sources[0]; i++) {
        if (!strcmp(s, meta_sources[i].name)) {
            out->kind = meta_sources[i].kind;
            return CAIRN_OK;
        }
    }
    return bad(c, where,
               "'%s' is not a source: use a JSON pointer into the event (\"/id\"), $stream, "
               "$version, $type, $position, $timestamp or {\"const\": value}",
               s);
}

static cairn_rc_t parse_src(struct ctx *c,
                            json_t *v,
                            json_t *fields,
                            const char *type,
                            const char *where,
                            cairn__pj_src_t *out)
{
    if (json_is_string(v))
        return parse_src_string(c, json_string_value(v), fields, type, where, out);
    if (json_is_number(v) || json_is_boolean(v)) {
        out->kind = CAIRN__PJ_SRC_CONST;
        out->constant = json_incref(v);
        return CAIRN_OK;
    }
    if (json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, "const")) {
        json_t *k = json_object_get(v, "const");
        if (!json_is_string(k) && !json_is_number(k) && !json_is_boolean(k)) {
            char w[256];
            ptr_join(w, sizeof w, where, "const");
            return bad(c, w, "a constant is a string, a number or a boolean");
        }
        out->kind = CAIRN__PJ_SRC_CONST;
        out->constant = json_incref(k);
        return CAIRN_OK;
    }
    return bad(c, where,
               "a source is a JSON pointer string, $stream, $version, $type, "
               "$position, $timestamp, a number, a boolean or {\"const\": value}");
}

static void src_release(cairn__pj_src_t *s)
{
    cairn__free(s->pointer);
    json_decref(s->constant);
    memset(s, 0, sizeof *s);
}

static cairn_rc_t parse_tmpl(struct ctx *c,
                             json_t *v,
                             json_t *fields,
                             const char *type,
                             const char *where,
                             cairn__pj_tmpl_t *t)
{
    cairn_rc_t rc = CAIRN_OK;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return bad(c, where, "a key template is a non-empty string such as \"account:{/id}\"");
    const char *s = json_string_value(v);
    if (!(t->text = cairn__strdup(s)))
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    /* At most one part per character. */
    t->parts = cairn__calloc(strlen(s) + 1, sizeof *t->parts);
    if (!t->parts)
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    const char *p = s;
    while (*p && rc == CAIRN_OK) {
        cairn__pj_tmpl_part_t *part = &t->parts[t->n];
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end || end == p + 1)
                return bad(c, where, "template \"%s\": '{' without a source and '}'", s);
            char *inner = cairn__strndup(p + 1, (size_t)(end - p - 1));
            if (!inner)
                return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            rc = parse_src_string(c, inner, fields, type, where, &part->src);
            cairn__free(inner);
            t->n++;
            p = end + 1;
        } else {
            if (*p == '}')
                return bad(c, where, "template \"%s\": '}' without '{'", s);
            size_t n = strcspn(p, "{}");
            if (!(part->literal = cairn__strndup(p, n)))
                return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            t->n++;
            p += n;
        }
    }
    return rc;
}

static void tmpl_release(cairn__pj_tmpl_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        cairn__free(t->parts[i].literal);
        src_release(&t->parts[i].src);
    }
    cairn__free(t->parts);
    cairn__free(t->text);
    memset(t, 0, sizeof *t);
}

/* ---- sinks ----------------------------------------------------------- */

static const char *const sql_types[] = {
    "text", "varchar", "bigint",  "integer", "int",  "smallint",    "double precision",
    "real", "numeric", "boolean", "jsonb",   "json", "timestamptz", "timestamp",
    "date", "uuid",    NULL,
};

static cairn_rc_t parse_postgres(struct ctx *c, json_t *pg, cairn__pj_spec_t *s)
{
    static const char *const allowed[] = {"conninfo", "table", "columns", "key", NULL};
    const char *where = "/sink/postgres";
    cairn_rc_t rc;
    json_t *cols, *key, *v;
    const char *k;
    size_t i;

    if (!json_is_object(pg))
        return bad(c, where, "must be an object");
    if ((rc = only_members(c, pg, where, allowed)) != CAIRN_OK)
        return rc;
    if ((rc = get_string(c, pg, where, "conninfo", 1, &s->conninfo)) != CAIRN_OK ||
        (rc = get_string(c, pg, where, "table", 1, &s->table)) != CAIRN_OK)
        return rc;
    if (!is_ident(s->table, 1))
        return bad(c, "/sink/postgres/table",
                   "table '%s' must be a plain identifier (letters, digits, '_', one '.')",
                   s->table);
    cols = json_object_get(pg, "columns");
    if (!cols)
        return bad(c, where, "missing member 'columns'");
    if (!json_is_object(cols) || json_object_size(cols) == 0)
        return bad(c, "/sink/postgres/columns",
                   "must be an object of column name -> SQL type, e.g. {\"id\": \"text\"}");
    if (json_object_size(cols) > CAIRN__PJ_MAX_COLUMNS)
        return bad(c, "/sink/postgres/columns", "at most %d columns", CAIRN__PJ_MAX_COLUMNS);
    s->columns = cairn__calloc(json_object_size(cols), sizeof *s->columns);
    if (!s->columns)
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    json_object_foreach(cols, k, v)
    {
        char w[256];
        ptr_join(w, sizeof w, "/sink/postgres/columns", k);
        if (!is_ident(k, 0))
            return bad(c, w, "column name '%s' must be a plain identifier", k);
        if (!json_is_string(v))
            return bad(c, w, "a column type is a string such as \"bigint\"");
        char type[64];
        snprintf(type, sizeof type, "%s", json_string_value(v));
        for (char *p = type; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        int known = 0;
        for (i = 0; sql_types[i] && !known; i++)
            known = !strcmp(type, sql_types[i]);
        if (!known)
            return bad(c, w,
                       "unknown column type '%s' (known: text, varchar, bigint, integer, "
                       "smallint, double precision, real, numeric, boolean, jsonb, json, "
                       "timestamptz, timestamp, date, uuid)",
                       json_string_value(v));
        cairn__pj_column_t *col = &s->columns[s->ncolumns++];
        if (!(col->name = cairn__strdup(k)) || !(col->type = cairn__strdup(type)))
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    }
    key = json_object_get(pg, "key");
    if (!key)
        return bad(c, where, "missing member 'key' (the primary key columns)");
    if (json_is_string(key)) {
        json_t *a = json_array();
        json_array_append(a, key);
        json_object_set_new(pg, "key", a);
        key = a;
    }
    if (!json_is_array(key) || json_array_size(key) == 0)
        return bad(c, "/sink/postgres/key", "must be a column name or a non-empty array of them");
    json_array_foreach(key, i, v)
    {
        char w[256];
        ptr_index(w, sizeof w, "/sink/postgres/key", i);
        size_t j;
        for (j = 0; j < s->ncolumns; j++)
            if (json_is_string(v) && !strcmp(s->columns[j].name, json_string_value(v)))
                break;
        if (j == s->ncolumns)
            return bad(c, w, "key column '%s' is not among the columns",
                       json_is_string(v) ? json_string_value(v) : "?");
        s->columns[j].key = 1;
    }
    return CAIRN_OK;
}

static cairn_rc_t parse_redis(struct ctx *c, json_t *r, cairn__pj_spec_t *s)
{
    static const char *const allowed[] = {"host", "port", "db", "password", "prefix", NULL};
    const char *where = "/sink/redis";
    cairn_rc_t rc;
    json_t *v;

    if (!json_is_object(r))
        return bad(c, where, "must be an object");
    if ((rc = only_members(c, r, where, allowed)) != CAIRN_OK)
        return rc;
    if ((rc = get_string(c, r, where, "host", 0, &s->host)) != CAIRN_OK ||
        (rc = get_string(c, r, where, "password", 0, &s->password)) != CAIRN_OK)
        return rc;
    if (!s->host && !(s->host = cairn__strdup("127.0.0.1")))
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    s->port = 6379;
    if ((v = json_object_get(r, "port"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
            return bad(c, "/sink/redis/port", "must be an integer 1..65535");
        s->port = (int)json_integer_value(v);
    }
    if ((v = json_object_get(r, "db"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)
            return bad(c, "/sink/redis/db", "must be an integer 0..1000");
        s->db = (int)json_integer_value(v);
    }
    v = json_object_get(r, "prefix");
    if (v && !json_is_string(v))
        return bad(c, "/sink/redis/prefix", "must be a string");
    if (!(s->prefix = cairn__strdup(v ? json_string_value(v) : "")))
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    return CAIRN_OK;
}

static cairn_rc_t parse_code(struct ctx *c, json_t *code, cairn__pj_spec_t *s)
{
    static const char *const allowed[] = {"library", "config", NULL};
    const char *where = "/sink/code";
    cairn_rc_t rc;
    if (!json_is_object(code))
        return bad(c, where, "must be an object {\"library\": PATH, \"config\": {...}}");
    if ((rc = only_members(c, code, where, allowed)) != CAIRN_OK ||
        (rc = get_string(c, code, where, "library", 1, &s->library)) != CAIRN_OK)
        return rc;
    json_t *cfg = json_object_get(code, "config");
    s->config_json = json_dumps(cfg ? cfg : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s->config_json)
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    return CAIRN_OK;
}

/* ---- actions ----------------------------------------------------------- */

static long find_column(const cairn__pj_spec_t *s, const char *name)
{
    for (size_t i = 0; i < s->ncolumns; i++)
        if (!strcmp(s->columns[i].name, name))
            return (long)i;
    return -1;
}

static cairn_rc_t parse_pg_action(struct ctx *c,
                                  cairn__pj_spec_t *s,
                                  const char *op,
                                  json_t *body,
                                  json_t *fields,
                                  const char *type,
                                  const char *where,
                                  cairn__pj_action_t *a)
{
    int del = !strcmp(op, "delete");
    const char *k;
    json_t *v;
    cairn_rc_t rc = CAIRN_OK;

    if (!del && strcmp(op, "upsert"))
        return bad(c, where, "unknown action '%s' for a postgres sink (upsert, delete)", op);
    a->op = del ? CAIRN__PJ_PG_DELETE : CAIRN__PJ_PG_UPSERT;
    if (!json_is_object(body) || json_object_size(body) == 0)
        return bad(c, where, "'%s' takes an object of column -> source", op);
    a->assigns = cairn__calloc(json_object_size(body), sizeof *a->assigns);
    if (!a->assigns)
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    json_object_foreach(body, k, v)
    {
        char w[256];
        ptr_join(w, sizeof w, where, k);
        long col = find_column(s, k);
        if (col < 0)
            return bad(c, w, "unknown column '%s' of table '%s'", k, s->table);
        cairn__pj_assign_t *as = &a->assigns[a->nassigns++];
        as->column = (size_t)col;
        if (json_is_object(v) && json_object_get(v, "add")) {
            if (del || s->columns[col].key)
                return bad(c, w, "'add' is for non-key columns of an upsert");
            if (json_object_size(v) != 1)
                return bad(c, w, "{\"add\": source} takes nothing else");
            as->add = 1;
            char w2[256];
            ptr_join(w2, sizeof w2, w, "add");
            rc = parse_src(c, json_object_get(v, "add"), fields, type, w2, &as->src);
        } else {
            rc = parse_src(c, v, fields, type, w, &as->src);
        }
        if (rc != CAIRN_OK)
            return rc;
        if (del && !s->columns[col].key)
            return bad(c, w, "a delete names the key columns only; '%s' is not one", k);
    }
    for (size_t i = 0; i < s->ncolumns; i++) {
        if (!s->columns[i].key)
            continue;
        size_t j;
        for (j = 0; j < a->nassigns; j++)
            if (a->assigns[j].column == i)
                break;
        if (j == a->nassigns)
            return bad(c, where, "missing key column '%s'", s->columns[i].name);
    }
    return CAIRN_OK;
}

static cairn_rc_t parse_redis_action(struct ctx *c,
                                     const char *op,
                                     json_t *body,
                                     json_t *fields,
                                     const char *type,
                                     const char *where,
                                     cairn__pj_action_t *a)
{
    static const struct {
        const char *name;
        cairn__pj_op_t op;
        const char *member; /* the name of its member/field template, or NULL */
        const char *value;  /* the name of its value source, or NULL */
        int fields;         /* takes "fields" */
    } ops[] = {
        {"hset", CAIRN__PJ_R_HSET, NULL, NULL, 1},
        {"hdel", CAIRN__PJ_R_HDEL, "field", NULL, 0},
        {"del", CAIRN__PJ_R_DEL, NULL, NULL, 0},
        {"set", CAIRN__PJ_R_SET, NULL, "value", 0},
        {"zadd", CAIRN__PJ_R_ZADD, "member", "score", 0},
        {"zrem", CAIRN__PJ_R_ZREM, "member", NULL, 0},
        {"incrby", CAIRN__PJ_R_INCRBY, NULL, "by", 0},
        {"hincrby", CAIRN__PJ_R_HINCRBY, "field", "by", 0},
    };
    size_t i;
    cairn_rc_t rc;
    char w[256];

    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i].name))
            break;
    if (i == sizeof ops / sizeof ops[0])
        return bad(c, where,
                   "unknown action '%s' for a redis sink (hset, hdel, del, set, zadd, zrem, "
                   "incrby, hincrby)",
                   op);
    a->op = ops[i].op;
    if (!json_is_object(body))
        return bad(c, where, "'%s' takes an object", op);
    const char *allowed[5] = {"key", NULL, NULL, NULL, NULL};
    size_t na = 1;
    if (ops[i].member)
        allowed[na++] = ops[i].member;
    if (ops[i].value)
        allowed[na++] = ops[i].value;
    if (ops[i].fields)
        allowed[na++] = "fields";
    if ((rc = only_members(c, body, where, allowed)) != CAIRN_OK)
        return rc;
    for (size_t j = 0; j < na; j++) {
        if (!json_object_get(body, allowed[j]))
            return bad(c, where, "missing member '%s'", allowed[j]);
    }
    ptr_join(w, sizeof w, where, "key");
    if ((rc = parse_tmpl(c, json_object_get(body, "key"), fields, type, w, &a->key)) != CAIRN_OK)
        return rc;
    if (ops[i].member) {
        ptr_join(w, sizeof w, where, ops[i].member);
        json_t *m = json_object_get(body, ops[i].member);
        if ((rc = parse_tmpl(c, m, fields, type, w, &a->member)) != CAIRN_OK)
            return rc;
    }
    if (ops[i].value) {
        ptr_join(w, sizeof w, where, ops[i].value);
        json_t *m = json_object_get(body, ops[i].value);
        if ((rc = parse_src(c, m, fields, type, w, &a->value)) != CAIRN_OK)
            return rc;
    }
    if (ops[i].fields) {
        json_t *f = json_object_get(body, "fields");
        const char *k;
        json_t *v;
        ptr_join(w, sizeof w, where, "fields");
        if (!json_is_object(f) || json_object_size(f) == 0)
            return bad(c, w, "must be an object of hash field -> source");
        a->assigns = cairn__calloc(json_object_size(f), sizeof *a->assigns);
        if (!a->assigns)
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        json_object_foreach(f, k, v)
        {
            char w2[256];
            ptr_join(w2, sizeof w2, w, k);
            cairn__pj_assign_t *as = &a->assigns[a->nassigns++];
            if (!(as->name = cairn__strdup(k)))
                return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            if ((rc = parse_src(c, v, fields, type, w2, &as->src)) != CAIRN_OK)
                return rc;
        }
    }
    return CAIRN_OK;
}

static cairn_rc_t parse_handlers(struct ctx *c, json_t *on, cairn__pj_spec_t *s)
{
    const char *type;
    json_t *list;
    cairn_rc_t rc;

    if (!json_is_object(on) || json_object_size(on) == 0)
        return bad(c, "/on", "must be an object of event type -> list of actions");
    s->handlers = cairn__calloc(json_object_size(on), sizeof *s->handlers);
    if (!s->handlers)
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    json_object_foreach(on, type, list)
    {
        char where[256];
        ptr_join(where, sizeof where, "/on", type);
        size_t t;
        for (t = 0; t < s->ntypes; t++)
            if (!strcmp(s->types[t], type))
                break;
        if (t == s->ntypes)
            return bad(c, where, "unknown event type '%s': it is not among the declared \"types\"",
                       type);
        json_t *fields = json_object_get(s->type_fields, type);
        cairn__pj_handler_t *h = &s->handlers[s->nhandlers++];
        if (!(h->type = cairn__strdup(type)))
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        if (json_is_object(list)) {
            /* One action may be written without its list. */
            json_t *a = json_array();
            json_array_append(a, list);
            json_object_set_new(on, type, a);
            list = a;
        }
        if (!json_is_array(list) || json_array_size(list) == 0)
            return bad(c, where, "must be a non-empty list of actions");
        h->actions = cairn__calloc(json_array_size(list), sizeof *h->actions);
        if (!h->actions)
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        size_t i;
        json_t *act;
        json_array_foreach(list, i, act)
        {
            char w[256];
            ptr_index(w, sizeof w, where, i);
            if (!json_is_object(act) || json_object_size(act) != 1)
                return bad(c, w,
                           "an action is an object with one member naming it, "
                           "e.g. {\"upsert\": {...}}");
            const char *op = json_object_iter_key(json_object_iter(act));
            json_t *body = json_object_iter_value(json_object_iter(act));
            char w2[256];
            ptr_join(w2, sizeof w2, w, op);
            cairn__pj_action_t *a = &h->actions[h->nactions++];
            if (!(a->where = cairn__strdup(w2)))
                return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
            if (s->sink == CAIRN__PJ_SINK_POSTGRES)
                rc = parse_pg_action(c, s, op, body, fields, type, w2, a);
            else
                rc = parse_redis_action(c, op, body, fields, type, w2, a);
            if (rc != CAIRN_OK)
                return rc;
        }
    }
    return CAIRN_OK;
}

static cairn_rc_t parse_types(struct ctx *c, json_t *types, cairn__pj_spec_t *s)
{
    const char *name;
    json_t *v;
    if (!json_is_object(types) || json_object_size(types) == 0)
        return bad(c, "/types",
                   "must be an object of event type -> {}, {\"fields\": [\"/id\", ...]} "
                   "or {\"subject\": \"...\"}");
    s->types = cairn__calloc(json_object_size(types), sizeof *s->types);
    if (!s->types || !(s->type_fields = json_object()) || !(s->type_subjects = json_object()))
        return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    json_object_foreach(types, name, v)
    {
        static const char *const allowed[] = {"fields", "subject", NULL};
        char where[256];
        cairn_rc_t rc;
        ptr_join(where, sizeof where, "/types", name);
        if (!json_is_object(v))
            return bad(c, where, "must be an object ({} or {\"fields\": [...]})");
        if ((rc = only_members(c, v, where, allowed)) != CAIRN_OK)
            return rc;
        json_t *fields = json_object_get(v, "fields");
        if (fields) {
            size_t i;
            json_t *f;
            char w[256];
            ptr_join(w, sizeof w, where, "fields");
            if (!json_is_array(fields))
                return bad(c, w, "must be an array of JSON pointers");
            json_array_foreach(fields, i, f)
            {
                char w2[256];
                ptr_index(w2, sizeof w2, w, i);
                if (!json_is_string(f) || json_string_value(f)[0] != '/')
                    return bad(c, w2, "a field is a JSON pointer such as \"/id\"");
            }
            json_object_set(s->type_fields, name, fields);
        }
        json_t *subject = json_object_get(v, "subject");
        if (subject) {
            char w[256];
            ptr_join(w, sizeof w, where, "subject");
            if (!json_is_string(subject) || json_string_length(subject) == 0)
                return bad(c, w, "a subject is a non-empty string");
            json_object_set(s->type_subjects, name, subject);
        }
        if (!(s->types[s->ntypes++] = cairn__strdup(name)))
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    }
    return CAIRN_OK;
}

static cairn_rc_t parse_root(struct ctx *c, json_t *root, cairn__pj_spec_t *s)
{
    static const char *const allowed[] = {"name", "batch_size", "sink", "types",
                                          "on",   "on_error",   NULL};
    cairn_rc_t rc;
    json_t *v, *sink;

    if (!json_is_object(root))
        return bad(c, "", "a projector spec is a JSON object");
    if ((rc = only_members(c, root, "", allowed)) != CAIRN_OK)
        return rc;
    if ((rc = get_string(c, root, "", "name", 1, &s->name)) != CAIRN_OK)
        return rc;
    for (const char *p = s->name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
            return bad(c, "/name", "a projector name uses letters, digits, '_', '-' and '.'");
    if (strlen(s->name) > 100)
        return bad(c, "/name", "a projector name has at most 100 characters");
    s->batch_size = DEFAULT_BATCH;
    if ((v = json_object_get(root, "batch_size"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_BATCH)
            return bad(c, "/batch_size", "must be an integer 1..%d", MAX_BATCH);
        s->batch_size = (size_t)json_integer_value(v);
    }
    sink = json_object_get(root, "sink");
    if (!sink)
        return bad(c, "", "missing member 'sink'");
    if (!json_is_object(sink) || json_object_size(sink) != 1)
        return bad(c, "/sink", "must be {\"postgres\": {...}} or {\"redis\": {...}}");
    if ((v = json_object_get(sink, "postgres"))) {
        s->sink = CAIRN__PJ_SINK_POSTGRES;
        rc = parse_postgres(c, v, s);
    } else if ((v = json_object_get(sink, "redis"))) {
        s->sink = CAIRN__PJ_SINK_REDIS;
        rc = parse_redis(c, v, s);
    } else if ((v = json_object_get(sink, "code"))) {
        s->sink = CAIRN__PJ_SINK_CODE;
        rc = parse_code(c, v, s);
    } else {
        const char *k = json_object_iter_key(json_object_iter(sink));
        char w[256];
        ptr_join(w, sizeof w, "/sink", k);
        return bad(c, w, "unknown sink '%s' (postgres, redis, code)", k);
    }
    if (rc != CAIRN_OK)
        return rc;
    if ((v = json_object_get(root, "on_error"))) {
        if (json_is_string(v) && !strcmp(json_string_value(v), "stop"))
            s->on_error_park = 0;
        else if (json_is_string(v) && !strcmp(json_string_value(v), "park"))
            s->on_error_park = 1;
        else
            return bad(c, "/on_error", "must be \"stop\" (the default) or \"park\"");
        if (s->on_error_park && s->sink == CAIRN__PJ_SINK_CODE)
            return bad(c, "/on_error",
                       "\"park\" needs a postgres or redis sink (a code projector keeps "
                       "its own dead letters)");
    }
    if (!(v = json_object_get(root, "types")))
        return bad(c, "", "missing member 'types' (the event types the projector reads)");
    if ((rc = parse_types(c, v, s)) != CAIRN_OK)
        return rc;
    if (s->sink == CAIRN__PJ_SINK_CODE) {
        /* A code projector gets every event of the declared types. */
        if (json_object_get(root, "on"))
            return bad(c, "/on",
                       "a code projector takes no 'on': its library handles the "
                       "declared types");
        if (!(s->handlers = cairn__calloc(s->ntypes, sizeof *s->handlers)))
            return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        for (size_t i = 0; i < s->ntypes; i++)
            if (!(s->handlers[s->nhandlers++].type = cairn__strdup(s->types[i])))
                return cairn__error_set(c->err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        return CAIRN_OK;
    }
    if (!(v = json_object_get(root, "on")))
        return bad(c, "", "missing member 'on' (event type -> actions)");
    return parse_handlers(c, v, s);
}

cairn_rc_t
cairn__pj_spec_parse(const char *text, const char *path, cairn__pj_spec_t **out, cairn_error_t *err)
{
    struct ctx c = {path ? path : "spec", err};
    json_error_t jerr;
    cairn_rc_t rc = CAIRN_OK;
    cairn__pj_spec_t *s = NULL;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

    *out = NULL;
    if (!root) {
        char where[64];
        snprintf(where, sizeof where, "line %d", jerr.line);
        return cairn__error_set(err, CAIRN_E_INVALID_JSON, 0, where, "%s:%d:%d: %s", c.path,
                                jerr.line, jerr.column, jerr.text);
    }
    if (!(s = cairn__calloc(1, sizeof *s)) || !(s->path = cairn__strdup(c.path))) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    rc = parse_root(&c, root, s);
out:
    json_decref(root);
    if (rc != CAIRN_OK)
        cairn__pj_spec_destroy(s);
    else
        *out = s;
    return rc;
}

cairn_rc_t cairn__pj_spec_load(const char *path, cairn__pj_spec_t **out, cairn_error_t *err)
{
    cairn_buf_t b;
    cairn_rc_t rc = CAIRN_OK;
    FILE *f = fopen(path, "rb");
    char chunk[8192];
    size_t n;

    *out = NULL;
    cairn_buf_init(&b, SPEC_MAX_BYTES);
    if (!f)
        return cairn__error_errno(err, errno, path, "open");
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && rc == CAIRN_OK) {
        rc = cairn_buf_append(&b, chunk, n);
        if (rc != CAIRN_OK)
            cairn__error_set(err, rc, 0, path, "%s: larger than %u bytes", path, SPEC_MAX_BYTES);
    }
    if (rc == CAIRN_OK && ferror(f))
        rc = cairn__error_errno(err, errno, path, "read");
    fclose(f);
    if (rc == CAIRN_OK)
        rc = cairn__pj_spec_parse(b.data ? b.data : "", path, out, err);
    cairn_buf_release(&b);
    return rc;
}

void cairn__pj_spec_destroy(cairn__pj_spec_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nhandlers; i++) {
        cairn__pj_handler_t *h = &s->handlers[i];
        for (size_t j = 0; j < h->nactions; j++) {
            cairn__pj_action_t *a = &h->actions[j];
            for (size_t k = 0; k < a->nassigns; k++) {
                cairn__free(a->assigns[k].name);
                src_release(&a->assigns[k].src);
            }
            cairn__free(a->assigns);
            cairn__free(a->where);
            tmpl_release(&a->key);
            tmpl_release(&a->member);
            src_release(&a->value);
        }
        cairn__free(h->actions);
        cairn__free(h->type);
    }
    cairn__free(s->handlers);
    for (size_t i = 0; i < s->ntypes; i++)
        cairn__free(s->types[i]);
    cairn__free(s->types);
    json_decref(s->type_fields);
    json_decref(s->type_subjects);
    for (size_t i = 0; i < s->ncolumns; i++) {
        cairn__free(s->columns[i].name);
        cairn__free(s->columns[i].type);
    }
    cairn__free(s->columns);
    cairn__free(s->name);
    cairn__free(s->path);
    cairn__free(s->conninfo);
    cairn__free(s->table);
    cairn__free(s->host);
    cairn__free(s->password);
    cairn__free(s->prefix);
    cairn__free(s->library);
    free(s->config_json); /* from json_dumps */
    cairn__free(s);
}

const cairn__pj_handler_t *cairn__pj_spec_handler(const cairn__pj_spec_t *s, const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < s->nhandlers; i++)
        if (!strcmp(s->handlers[i].type, type))
            return &s->handlers[i];
    return NULL;
}

/* ---- evaluation -------------------------------------------------------- */

json_t *cairn__pj_pointer_get(json_t *root, const char *pointer)
{
    json_t *cur = root;
    const char *p = pointer;
    char tok[256];

    if (!p || !*p)
        return root;
    if (*p != '/')
        return NULL;
    while (cur && *p == '/') {
        size_t n = 0;
        p++;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0')
                    ch = '~';
                else if (*p == '1')
                    ch = '/';
                else
                    return NULL;
                p++;
            }
            if (n + 1 >= sizeof tok)
                return NULL;
            tok[n++] = ch;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            errno = 0;
            unsigned long i = strtoul(tok, &end, 10);
            if (!n || *end || errno || (tok[0] == '0' && n > 1))
                return NULL;
            cur = json_array_get(cur, i);
        } else {
            return NULL;
        }
    }
    return cur;
}

static cairn_rc_t json_text(json_t *v, cairn_buf_t *out, int *is_null)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return cairn_buf_append(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return cairn_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return cairn_buf_printf(out, "%.17g", json_real_value(v));
    case JSON_TRUE:
        return cairn_buf_appends(out, "true");
    case JSON_FALSE:
        return cairn_buf_appends(out, "false");
    case JSON_NULL:
        if (is_null)
            *is_null = 1;
        return CAIRN_OK;
    default: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!s)
            return CAIRN_E_NOMEM;
        cairn_rc_t rc = cairn_buf_appends(out, s);
        free(s);
        return rc;
    }
    }
}

cairn_rc_t cairn__pj_src_text(const cairn__pj_src_t *src,
                              const cairn__pj_event_t *ev,
                              cairn_buf_t *out,
                              int *is_null,
                              cairn_error_t *err)
{
    json_t *v;
    cairn_rc_t rc;
    if (is_null)
        *is_null = 0;
    switch (src->kind) {
    case CAIRN__PJ_SRC_POINTER:
        v = cairn__pj_pointer_get(ev->value, src->pointer);
        if (!v)
            return cairn__error_set(err, CAIRN_E_INVALID, 0, src->pointer,
                                    "event has no member '%s'", src->pointer);
        rc = json_text(v, out, is_null);
        break;
    case CAIRN__PJ_SRC_STREAM:
        rc = cairn_buf_appends(out, ev->stream);
        break;
    case CAIRN__PJ_SRC_VERSION:
        rc = cairn_buf_printf(out, "%llu", (unsigned long long)ev->version);
        break;
    case CAIRN__PJ_SRC_TYPE:
        rc = cairn_buf_appends(out, ev->type ? ev->type : "");
        break;
    case CAIRN__PJ_SRC_POSITION:
        rc = cairn_buf_printf(out, "%llu", (unsigned long long)ev->position);
        break;
    case CAIRN__PJ_SRC_TIMESTAMP:
        rc = cairn_buf_printf(out, "%lld", (long long)ev->timestamp_ms);
        break;
    case CAIRN__PJ_SRC_CONST:
        rc = json_text(src->constant, out, is_null);
        break;
    default:
        return cairn__error_set(err, CAIRN_E_INTERNAL, 0, NULL, "source without a kind");
    }
    if (rc != CAIRN_OK)
        return cairn__error_set(err, rc, 0, NULL, "value too large");
    return CAIRN_OK;
}

cairn_rc_t cairn__pj_tmpl_text(const cairn__pj_tmpl_t *t,
                               const cairn__pj_event_t *ev,
                               cairn_buf_t *out,
                               cairn_error_t *err)
{
    for (size_t i = 0; i < t->n; i++) {
        cairn_rc_t rc;
        if (t->parts[i].literal) {
            rc = cairn_buf_appends(out, t->parts[i].literal);
            if (rc != CAIRN_OK)
                return cairn__error_set(err, rc, 0, NULL, "key too large");
        } else {
            int is_null = 0;
            size_t before = out->len;
            rc = cairn__pj_src_text(&t->parts[i].src, ev, out, &is_null, err);
            if (rc != CAIRN_OK)
                return rc;
            if (is_null || out->len == before)
                return cairn__error_set(err, CAIRN_E_INVALID, 0, t->text,
                                        "key template \"%s\": an empty or null part", t->text);
        }
    }
    return CAIRN_OK;
}

/* ---- checks against the registry's schemas ------------------------------ */

/* Collects "/a", "/a/b", ... for the fields of an Avro record (nested records too). */
static void avro_fields(json_t *schema, const char *base, json_t *out, int depth)
{
    json_t *fields = json_object_get(schema, "fields");
    size_t i;
    json_t *f;
    if (depth > 8 || !json_is_array(fields))
        return;
    json_array_foreach(fields, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        char ptr[256];
        if (!name)
            continue;
        ptr_join(ptr, sizeof ptr, base, name);
        json_array_append_new(out, json_string(ptr));
        json_t *t = json_object_get(f, "type");
        if (json_is_object(t))
            avro_fields(t, ptr, out, depth + 1);
        else if (json_is_array(t)) { /* a union: the record branches */
            size_t j;
            json_t *b;
            json_array_foreach(t, j, b)
            {
                if (json_is_object(b))
                    avro_fields(b, ptr, out, depth + 1);
            }
        }
    }
}

static int pointer_known(json_t *fields, const char *ptr)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        const char *d = json_string_value(f);
        size_t n = strlen(d);
        if (!strncmp(ptr, d, n) && (ptr[n] == '\0' || ptr[n] == '/'))
            return 1;
    }
    return 0;
}

static const char *first_unknown_src(const cairn__pj_src_t *src, json_t *fields)
{
    if (src->kind == CAIRN__PJ_SRC_POINTER && !pointer_known(fields, src->pointer))
        return src->pointer;
    return NULL;
}

static const char *first_unknown_tmpl(const cairn__pj_tmpl_t *t, json_t *fields)
{
    for (size_t i = 0; i < t->n; i++) {
        const char *u = t->parts[i].literal ? NULL : first_unknown_src(&t->parts[i].src, fields);
        if (u)
            return u;
    }
    return NULL;
}

cairn_rc_t cairn__pj_spec_check_registry(const cairn__pj_spec_t *s,
                                         cairn_registry_client_t *client,
                                         cairn_error_t *err)
{
    const char *type;
    json_t *subject;
    json_object_foreach(s->type_subjects, type, subject)
    {
        cairn_registered_schema_t *rs = NULL;
        cairn_error_t e = {0};
        char tw[256], where[256];
        ptr_join(tw, sizeof tw, "/types", type);
        ptr_join(where, sizeof where, tw, "subject");
        cairn_rc_t rc =
            cairn_registry_client_latest(client, json_string_value(subject), &rs, NULL, &e);
        if (rc != CAIRN_OK) {
            return cairn__error_set(
                err, CAIRN_RC_PRIMARY(rc) == CAIRN_E_NOT_FOUND ? CAIRN_E_INVALID : rc, e.flags,
                where, "%s: %s: %s subject '%s': %s", s->path, where,
                CAIRN_RC_PRIMARY(rc) == CAIRN_E_NOT_FOUND ? "unknown registry" : "cannot read",
                json_string_value(subject), e.text);
        }
        json_t *schema = json_loads(cairn_registered_schema_text(rs), 0, NULL);
        json_t *fields = json_array();
        avro_fields(schema, "", fields, 0);
        cairn_registered_schema_release(rs);
        const cairn__pj_handler_t *h = cairn__pj_spec_handler(s, type);
        const char *unknown = NULL, *at = NULL;
        for (size_t j = 0; h && j < h->nactions && !unknown; j++) {
            const cairn__pj_action_t *a = &h->actions[j];
            at = a->where;
            for (size_t k = 0; k < a->nassigns && !unknown; k++)
                unknown = first_unknown_src(&a->assigns[k].src, fields);
            if (!unknown)
                unknown = first_unknown_tmpl(&a->key, fields);
            if (!unknown)
                unknown = first_unknown_tmpl(&a->member, fields);
            if (!unknown)
                unknown = first_unknown_src(&a->value, fields);
        }
        cairn_rc_t out = CAIRN_OK;
        if (unknown) {
            char list[160] = "";
            size_t len = 0, i;
            json_t *f;
            json_array_foreach(fields, i, f)
            {
                int k = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                 json_string_value(f));
                if (k < 0 || (size_t)k >= sizeof list - len)
                    break;
                len += (size_t)k;
            }
            out = cairn__error_set(err, CAIRN_E_INVALID, 0, at,
                                   "%s: %s: unknown field '%s' of event type '%s': not in the "
                                   "latest schema of subject '%s' (fields: %s)",
                                   s->path, at, unknown, type, json_string_value(subject), list);
        }
        json_decref(fields);
        json_decref(schema);
        if (out != CAIRN_OK)
            return out;
    }
    return CAIRN_OK;
}
