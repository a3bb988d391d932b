/* SPDX-License-Identifier: MIT */
/*
 * cmd_schema.c - `cairn schema check|register|get`: what a CI job runs
 * against a Confluent-compatible schema registry (ours or Confluent's).
 *
 * Exit codes come from CAIRN_RC_MAP: 0 compatible / done, 1 incompatible
 * (the reasons printed, one per line, grouped by the version they fail
 * against), 2 any error (unreachable registry, unreadable or invalid schema,
 * an HTTP answer other than the expected ones).
 *
 * `check` has three ways to decide:
 * - by default the registry decides, with POST
 *   /compatibility/subjects/{s}/versions?verbose=true, which checks every
 *   version that the subject's configured level requires (a subject without
 *   versions is compatible), or one version with --version;
 * - with --level the registry only supplies the live versions and the check
 *   runs here with the shared schema model (registry/format.h), because
 *   Confluent's API has no per-request level and changing the subject's
 *   config would be a write;
 * - with --against there is no registry at all: local files, given newest
 *   first as a person lists them ("the previous one, the one before"), are
 *   handed to cairn_compat_check oldest first.
 *
 * The registry's verbose messages (and cairn_compat_check's reasons) put
 * `{oldSchemaVersion: N}` after the reasons of each failing version, then
 * `{oldSchema: ...}` and `{compatibility: ...}`: reasons are printed under
 * the version that follows them, the bookkeeping lines only with --verbose.
 *
 * HTTP goes through the SDK's transport (sdk/http_client.h) with retries
 * off: each request is one attempt bounded by --timeout, and answers of any
 * status come back whole so that Confluent's error_code and message can be
 * printed and a 404 told from an error.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "common.h"
#include "http_client.h"
#include "registry/format.h"

#define MAX_SCHEMA_FILE   (8u * 1024u * 1024u)
#define MAX_REF_DEPTH     16
#define DEFAULT_TIMEOUT_S 30L
#define CONNECT_TIMEOUT_S 5L

enum sub {
    SUB_CHECK = 1,
    SUB_REGISTER = 2,
    SUB_GET = 4,
};

struct opts {
    enum sub sub;
    const char *registry, *subject, *type, *version, *level, *id, *file;
    int verbose, normalize, json;
    long timeout_s;
    const char **against; /* newest first, as given */
    size_t nagainst;
    const char **refs; /* NAME=SUBJECT:VERSION */
    size_t nrefs;
};

struct optspec {
    const char *name;
    int takes_value;
    unsigned subs;
};

static const struct optspec optspecs[] = {
    {"registry", 1, SUB_CHECK | SUB_REGISTER | SUB_GET},
    {"subject", 1, SUB_CHECK | SUB_REGISTER | SUB_GET},
    {"type", 1, SUB_CHECK | SUB_REGISTER},
    {"version", 1, SUB_CHECK | SUB_GET},
    {"level", 1, SUB_CHECK},
    {"against", 1, SUB_CHECK},
    {"reference", 1, SUB_CHECK | SUB_REGISTER},
    {"normalize", 0, SUB_REGISTER},
    {"id", 1, SUB_GET},
    {"json", 0, SUB_GET},
    {"verbose", 0, SUB_CHECK | SUB_REGISTER},
    {"timeout", 1, SUB_CHECK | SUB_REGISTER | SUB_GET},
};

/* The state of one run of a subcommand. */
struct ctx {
    struct opts o;
    const char *prog; /* "cairn schema check", the prefix of every message */
    cairn__http_t *client;
    char *subject_esc;     /* --subject percent-encoded */
    cairn_schema_t **keep; /* referenced schemas, alive until the end of the run */
    size_t nkeep, akeep;
};

static const char schema_usage[] =
    "usage: cairn schema <check|register|get> [<options>]\n"
    "\n"
    "  check     is a schema compatible with a subject's versions (or with local files)?\n"
    "            exit 0 compatible, 1 incompatible (reasons printed), 2 error\n"
    "  register  registers a schema under a subject and prints id=N\n"
    "  get       prints a registered schema, by subject and version or by id\n"
    "\n"
    "The registry URL comes from --registry or CAIRN_REGISTRY_URL. Basic auth comes from\n"
    "user:password@ in the URL, else CAIRN_REGISTRY_USER and CAIRN_REGISTRY_PASSWORD.\n"
    "'cairn schema <command> --help' tells more.\n";

static const char check_usage[] =
    "usage: cairn schema check [--registry URL] --subject S [--type TYPE]\n"
    "                          [--version V | --level LEVEL]\n"
    "                          [--reference NAME=SUBJECT:VERSION]...\n"
    "                          [--timeout SECONDS] [--verbose] FILE\n"
    "       cairn schema check --against OLD [--against OLDER]... [--level LEVEL] [--type TYPE]\n"
    "                          FILE\n"
    "\n"
    "Checks whether the schema in FILE ('-' reads stdin) is compatible.\n"
    "Exit status: 0 compatible, 1 incompatible (each reason printed under the version it\n"
    "fails against), 2 error (unreachable registry, unreadable file, invalid schema...).\n"
    "\n"
    "With a registry, by default the registry decides at the subject's configured level,\n"
    "checking every version that level requires; a subject without versions is compatible.\n"
    "\n"
    "  --registry URL     the registry (default: env CAIRN_REGISTRY_URL)\n"
    "  --subject S        the subject whose versions the schema is checked against\n"
    "  --type TYPE        AVRO (default), PROTOBUF or JSON\n"
    "  --version V        check against version V only (a number or 'latest'); a missing\n"
    "                     subject or version is an error\n"
    "  --level LEVEL      fetch the subject's live versions and check here at LEVEL instead\n"
    "                     of the subject's configured level: NONE, BACKWARD,\n"
    "                     BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL,\n"
    "                     FULL_TRANSITIVE\n"
    "  --reference R      a schema reference NAME=SUBJECT:VERSION (repeatable)\n"
    "  --timeout SECONDS  bound on each request (default 30; connecting: at most 5)\n"
    "  --verbose          also print the registry's bookkeeping lines (old schemas, level)\n"
    "\n"
    "Without a registry:\n"
    "  --against FILE     check against a local schema file (repeatable). Give the files\n"
    "                     NEWEST FIRST: the previous schema, then the one before it, and so\n"
    "                     on. Non-transitive levels use the first one only. --level defaults\n"
    "                     to BACKWARD.\n";

static const char register_usage[] =
    "usage: cairn schema register [--registry URL] --subject S [--type TYPE] [--normalize]\n"
    "                             [--reference NAME=SUBJECT:VERSION]... [--timeout SECONDS]\n"
    "                             FILE\n"
    "\n"
    "Registers the schema in FILE ('-' reads stdin) under subject S and prints id=N.\n"
    "Exit status: 0 registered (or already there), 1 incompatible (reasons printed), 2 error.\n"
    "\n"
    "  --registry URL     the registry (default: env CAIRN_REGISTRY_URL)\n"
    "  --subject S        the subject\n"
    "  --type TYPE        AVRO (default), PROTOBUF or JSON\n"
    "  --normalize        ask the registry to normalize the schema first\n"
    "  --reference R      a schema reference NAME=SUBJECT:VERSION (repeatable)\n"
    "  --timeout SECONDS  bound on each request (default 30; connecting: at most 5)\n"
    "  --verbose          with reasons, also print the registry's bookkeeping lines\n";

static const char get_usage[] =
    "usage: cairn schema get [--registry URL] (--subject S [--version V|latest] | --id N)\n"
    "                        [--json] [--timeout SECONDS]\n"
    "\n"
    "Prints a registered schema's text; with --json the registry's JSON answer.\n"
    "Exit status: 0 found, 2 not found or any other error.\n"
    "\n"
    "  --registry URL     the registry (default: env CAIRN_REGISTRY_URL)\n"
    "  --subject S        the subject\n"
    "  --version V        a version number or 'latest' (the default)\n"
    "  --id N             the schema's global id instead of subject and version\n"
    "  --json             print the registry's JSON answer instead of the schema text\n"
    "  --timeout SECONDS  bound on the request (default 30; connecting: at most 5)\n";

/* ---- messages ---------------------------------------------------------- */

/* An error exit: 2 for every failure, from the code table. */
static int exit_error(cairn_rc_t rc)
{
    int code = cairn_rc_exit_code(rc);
    /* Incompatible (1) and conflict (3) are answers, not failures of this command. */
    return code == 2 ? code : cairn_rc_exit_code(CAIRN_E_INVALID);
}

static int report(const struct ctx *x, cairn_rc_t rc, const char *fmt, ...) CAIRN_PRINTF(3, 4);

static int report(const struct ctx *x, cairn_rc_t rc, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", x->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return exit_error(rc);
}

static int report_err(const struct ctx *x, const cairn_error_t *err)
{
    cairn_rc_t rc = err->code != CAIRN_OK ? err->code : CAIRN_E_INTERNAL;
    return report(x, rc, "%s", err->text[0] ? err->text : cairn_rc_str(rc));
}

/* Records a failed HTTP answer in @p err: "<what>: registry answered ...". */
static cairn_rc_t
answer_error(const cairn__http_answer_t *a, cairn_error_t *err, const char *fmt, ...)
    CAIRN_PRINTF(3, 4);

static cairn_rc_t
answer_error(const cairn__http_answer_t *a, cairn_error_t *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cairn_rc_t rc = cairn__http_answer_rc(a);
    if (rc == CAIRN_OK || cairn_rc_exit_code(rc) != 2)
        rc = CAIRN_E_INVALID_REQUEST;
    if (a->error_code)
        return cairn__error_setc(err, rc, a->error_code, 0, NULL,
                                 "%s: registry answered HTTP %ld, error_code %d: %s", what,
                                 a->status, a->error_code, a->message);
    return cairn__error_set(err, rc, 0, NULL, "%s: registry answered HTTP %ld%s", what, a->status,
                            a->status < 300 ? " with an unexpected body" : "");
}

/* ---- arguments ----------------------------------------------------------- */

static const struct optspec *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof optspecs / sizeof optspecs[0]; i++)
        if (strlen(optspecs[i].name) == len && !strncmp(optspecs[i].name, name, len))
            return &optspecs[i];
    return NULL;
}

static int set_opt(struct ctx *x, const char *name, const char *value)
{
    struct opts *o = &x->o;
    if (!strcmp(name, "registry")) {
        o->registry = value;
    } else if (!strcmp(name, "subject")) {
        o->subject = value;
    } else if (!strcmp(name, "type")) {
        o->type = value;
    } else if (!strcmp(name, "version")) {
        o->version = value;
    } else if (!strcmp(name, "level")) {
        o->level = value;
    } else if (!strcmp(name, "id")) {
        o->id = value;
    } else if (!strcmp(name, "against")) {
        o->against[o->nagainst++] = value;
    } else if (!strcmp(name, "reference")) {
        o->refs[o->nrefs++] = value;
    } else if (!strcmp(name, "normalize")) {
        o->normalize = 1;
    } else if (!strcmp(name, "json")) {
        o->json = 1;
    } else if (!strcmp(name, "verbose")) {
        o->verbose = 1;
    } else if (!strcmp(name, "timeout")) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 1 || v > 3600)
            return report(x, CAIRN_E_INVALID, "--timeout wants seconds from 1 to 3600, not '%s'",
                          value);
        o->timeout_s = v;
    }
    return 0;
}

/* Fills x->o from argv (argv[0] is the subcommand). Returns 0 or an exit code. */
static int parse_args(struct ctx *x, int argc, char **argv)
{
    struct opts *o = &x->o;
    int no_more_options = 0;

    o->timeout_s = DEFAULT_TIMEOUT_S;
    o->against = cairn__calloc((size_t)argc, sizeof *o->against);
    o->refs = cairn__calloc((size_t)argc, sizeof *o->refs);
    if (!o->against || !o->refs)
        return report(x, CAIRN_E_NOMEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (no_more_options || a[0] != '-' || !strcmp(a, "-")) {
            if (o->file)
                return report(x, CAIRN_E_INVALID, "one schema file only, not '%s' and '%s'",
                              o->file, a);
            o->file = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            no_more_options = 1;
            continue;
        }
        if (strncmp(a, "--", 2))
            return report(x, CAIRN_E_INVALID, "unknown option '%s'; see '%s --help'", a, x->prog);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct optspec *spec = find_opt(name, name_len);
        if (!spec || !(spec->subs & o->sub))
            return report(x, CAIRN_E_INVALID, "unknown option '%.*s'; see '%s --help'",
                          (int)name_len + 2, a, x->prog);
        const char *value = NULL;
        if (spec->takes_value) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return report(x, CAIRN_E_INVALID, "option '--%s' needs a value", spec->name);
            }
        } else if (eq) {
            return report(x, CAIRN_E_INVALID, "option '--%s' takes no value", spec->name);
        }
        int r = set_opt(x, spec->name, value);
        if (r)
            return r;
    }
    return 0;
}

/* "latest" or a positive number that fits an int. */
static int valid_version(const char *v)
{
    if (!strcmp(v, "latest"))
        return 1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    return v[0] >= '1' && v[0] <= '9' && !errno && !*end && n <= INT_MAX;
}

/* The schema type as the REST API spells it, or NULL when unknown. */
static const char *schema_type(const char *t)
{
    static const char *const known[] = {"AVRO", "PROTOBUF", "JSON"};
    if (!t)
        return "AVRO";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcasecmp(t, known[i]))
            return known[i];
    return NULL;
}

/* ---- files ---------------------------------------------------------------- */

/* Reads a schema file (or stdin for "-") whole, under MAX_SCHEMA_FILE. */
static cairn_rc_t read_schema_file(const char *path, char **out, size_t *len, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn_buf_t b;
    int is_stdin = !strcmp(path, "-");
    const char *shown = is_stdin ? "(stdin)" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    char chunk[65536];

    cairn_buf_init(&b, MAX_SCHEMA_FILE);
    *out = NULL;
    if (!f)
        return cairn__error_setc(err, CAIRN_E_IO, errno, 0, shown,
                                 "cannot read schema file '%s': %s", shown, strerror(errno));
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n && (rc = cairn_buf_append(&b, chunk, n)) != CAIRN_OK) {
            if (rc == CAIRN_E_INVALID_TOO_LARGE)
                cairn__error_set(err, rc, 0, shown, "schema file '%s' is larger than %u bytes",
                                 shown, MAX_SCHEMA_FILE);
            else
                cairn__error_set(err, rc, 0, shown, "out of memory reading schema file '%s'",
                                 shown);
            goto out;
        }
        if (n < sizeof chunk) {
            if (ferror(f)) {
                rc = cairn__error_setc(err, CAIRN_E_IO, errno, 0, shown,
                                       "cannot read schema file '%s': %s", shown,
                                       strerror(errno ? errno : EIO));
                goto out;
            }
            if (feof(f))
                break;
        }
    }
    size_t blank = 0;
    while (blank < b.len && strchr(" \t\r\n", b.data[blank]))
        blank++;
    if (blank == b.len) {
        rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, shown, "schema file '%s' is empty",
                              shown);
        goto out;
    }
    *out = cairn_buf_detach(&b, len);
    if (!*out)
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, shown, "out of memory");
out:
    if (!is_stdin)
        fclose(f);
    cairn_buf_release(&b);
    return rc;
}

/* ---- reasons ------------------------------------------------------------ */

static int starts_with(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

/* Lines of a verbose answer that describe the check, not a reason. */
static int is_bookkeeping(const char *line)
{
    return starts_with(line, "{oldSchema:") || starts_with(line, "{compatibility:") ||
           starts_with(line, "{validateFields:") || starts_with(line, "{oldSchemaVersion:");
}

/*
 * Prints one reason. Confluent's form
 * {errorType:'T', description:'D', additionalInfo:'A'} becomes "T: D (A)";
 * anything else is printed as it is.
 */
static void print_reason(const char *line)
{
    static const char head[] = "{errorType:'", mid[] = "', description:'",
                      info[] = "', additionalInfo:'";
    size_t len = strlen(line);
    const char *d = starts_with(line, head) ? strstr(line + sizeof head - 1, mid) : NULL;
    if (!d || len < 2 || strcmp(line + len - 2, "'}")) {
        printf("  %s\n", line);
        return;
    }
    const char *type = line + sizeof head - 1;
    const char *desc = d + sizeof mid - 1;
    const char *end = line + len - 2;
    const char *ai = NULL;
    for (const char *p = desc; (p = strstr(p, info)) != NULL && p < end; p++)
        ai = p;
    const char *desc_end = ai ? ai : end;
    if (desc_end < desc) {
        printf("  %s\n", line);
        return;
    }
    printf("  %.*s: %.*s", (int)(d - type), type, (int)(desc_end - desc), desc);
    if (ai && ai + sizeof info - 1 < end)
        printf(" (%.*s)", (int)(end - (ai + sizeof info - 1)), ai + sizeof info - 1);
    putchar('\n');
}

/* Names an old version in a group header: "version 3" or a file name. */
struct version_names {
    const char *const *files; /* files[v - 1] names version v; NULL for registry versions */
    size_t nfiles;
};

static void print_group_header(const struct version_names *names, int version)
{
    if (version < 0)
        printf("reasons:\n");
    else if (names->files && version >= 1 && (size_t)version <= names->nfiles)
        printf("against '%s':\n", names->files[version - 1]);
    else
        printf("against version %d:\n", version);
}

/*
 * Prints reasons grouped per old version: a reason belongs to the
 * `{oldSchemaVersion: N}` line that follows it. Returns how many reasons.
 */
static size_t
print_reasons(const char *const *lines, size_t n, const struct version_names *names, int verbose)
{
    size_t start = 0, count = 0;
    for (size_t i = 0; i <= n; i++) {
        int version = -1;
        if (i < n && sscanf(lines[i], "{oldSchemaVersion: %d}", &version) != 1)
            continue;
        size_t reasons = 0;
        for (size_t j = start; j < i; j++)
            reasons += !is_bookkeeping(lines[j]);
        if (reasons) {
            print_group_header(names, version);
            for (size_t j = start; j < i; j++)
                if (!is_bookkeeping(lines[j]))
                    print_reason(lines[j]);
        }
        count += reasons;
        start = i + 1;
    }
    /* --verbose: the lines as they came, old schemas and levels included. */
    if (verbose && n)
        printf("messages:\n");
    for (size_t j = 0; verbose && j < n; j++)
        printf("  %s\n", lines[j]);
    return count;
}

/* Prints the "messages" array of a compatibility answer; returns the number of reasons. */
static size_t print_answer_reasons(const json_t *messages, int verbose)
{
    size_t n = json_array_size(messages);
    const char **lines = cairn__calloc(n ? n : 1, sizeof *lines);
    struct version_names names = {NULL, 0};
    size_t k = 0, count;
    if (!lines)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(messages, i));
        if (s)
            lines[k++] = s;
    }
    count = print_reasons(lines, k, &names, verbose);
    cairn__free(lines);
    return count;
}

/* ---- registry requests ----------------------------------------------------- */

static int open_client(struct ctx *x)
{
    int ret = 0;
    cairn_error_t err = {0};
    cairn_buf_t url;
    const char *given = x->o.registry ? x->o.registry : getenv("CAIRN_REGISTRY_URL");

    if (!given || !*given)
        return report(x, CAIRN_E_INVALID,
                      "no registry given: use --registry URL or set CAIRN_REGISTRY_URL");
    /* "host:8081" means http, as a person typing it expects; the SDK wants a scheme. */
    cairn_buf_init(&url, (size_t)-1);
    if ((!strstr(given, "://") && cairn_buf_appends(&url, "http://") != CAIRN_OK) ||
        cairn_buf_appends(&url, given) != CAIRN_OK) {
        ret = report(x, CAIRN_E_NOMEM, "out of memory");
        goto out;
    }
    /* One attempt per request, bounded by --timeout: a CI step must not hang or repeat. */
    cairn_registry_client_options_t copts = {
        .url = url.data,
        .user = getenv("CAIRN_REGISTRY_USER"),
        .password = getenv("CAIRN_REGISTRY_PASSWORD"),
        .timeout_ms = x->o.timeout_s * 1000,
        .connect_timeout_ms = CONNECT_TIMEOUT_S * 1000,
        .max_retries = -1,
    };
    if (cairn__http_new(&copts, &x->client, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    if (x->o.subject && !(x->subject_esc = cairn__http_escape(x->o.subject)))
        ret = report(x, CAIRN_E_NOMEM, "out of memory");
out:
    cairn_buf_release(&url);
    return ret;
}

/* Splits NAME=SUBJECT:VERSION into a JSON reference. */
static cairn_rc_t parse_reference(const char *spec, json_t **out, cairn_error_t *err)
{
    const char *eq = strchr(spec, '=');
    const char *colon = strrchr(spec, ':');
    *out = NULL;
    if (!eq || eq == spec || !colon || colon < eq + 2 || !colon[1])
        return cairn__error_set(err, CAIRN_E_INVALID, 0, spec,
                                "bad --reference '%s': want NAME=SUBJECT:VERSION", spec);
    char *end;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (errno || *end || v < 1 || v > INT_MAX)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, spec,
                                "bad --reference '%s': the version must be a positive number",
                                spec);
    *out = json_pack("{s:s%, s:s%, s:I}", "name", spec, (size_t)(eq - spec), "subject", eq + 1,
                     (size_t)(colon - eq - 1), "version", (json_int_t)v);
    if (!*out)
        return cairn__error_set(err, CAIRN_E_INVALID, 0, spec,
                                "bad --reference '%s': not valid utf-8", spec);
    return CAIRN_OK;
}

/* The request body of check and register: schema, schemaType, references. */
static cairn_rc_t
build_body(const struct ctx *x, const char *text, size_t len, json_t **out, cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    json_t *root = json_object(), *refs = NULL, *ref = NULL;
    json_t *schema = json_stringn(text, len);

    *out = NULL;
    if (!root || !schema) {
        rc = cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, x->o.file,
                              "schema file '%s' is not valid utf-8", x->o.file);
        goto out;
    }
    json_object_set_new(root, "schema", schema);
    schema = NULL;
    if (x->o.type)
        json_object_set_new(root, "schemaType", json_string(schema_type(x->o.type)));
    if (x->o.nrefs) {
        refs = json_array();
        for (size_t i = 0; refs && i < x->o.nrefs; i++) {
            rc = parse_reference(x->o.refs[i], &ref, err);
            if (rc != CAIRN_OK)
                goto out;
            json_array_append_new(refs, ref);
        }
        json_object_set_new(root, "references", refs);
        refs = NULL;
    }
    *out = root;
    root = NULL;
out:
    json_decref(schema);
    json_decref(refs);
    json_decref(root);
    return rc;
}

/* ---- check ----------------------------------------------------------------- */

static int print_incompatible_header(const char *what, size_t nreasons)
{
    printf("incompatible: %s", what);
    if (nreasons)
        printf(" (%zu reason%s)", nreasons, nreasons == 1 ? "" : "s");
    putchar('\n');
    return 0;
}

/* Asks the registry, at the subject's own level (or against one --version). */
static int check_by_registry(struct ctx *x, const char *text, size_t len)
{
    int ret = 0;
    cairn_error_t err = {0};
    cairn__http_answer_t ans = {0};
    json_t *body = NULL;
    char path[1024 + 64];
    const char *subject = x->o.subject;

    if (strlen(x->subject_esc) > 1024)
        return report(x, CAIRN_E_INVALID_SUBJECT, "subject '%s' is too long", subject);
    if (x->o.version)
        snprintf(path, sizeof path, "/compatibility/subjects/%s/versions/%s?verbose=true",
                 x->subject_esc, x->o.version);
    else
        snprintf(path, sizeof path, "/compatibility/subjects/%s/versions?verbose=true",
                 x->subject_esc);
    if (build_body(x, text, len, &body, &err) != CAIRN_OK ||
        cairn__http_exchange(x->client, "POST", path, body, NULL, &ans, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    json_t *verdict = json_object_get(ans.json, "is_compatible");
    if (ans.status == 200 && json_is_boolean(verdict)) {
        if (json_is_true(verdict)) {
            if (x->o.version)
                printf("compatible: subject '%s' version %s\n", subject, x->o.version);
            else
                printf("compatible: subject '%s'\n", subject);
            ret = cairn_rc_exit_code(CAIRN_OK);
            goto out;
        }
        /* Count first (quietly) so that the header can say how many. */
        json_t *messages = json_object_get(ans.json, "messages");
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(messages); i++) {
            const char *s = json_string_value(json_array_get(messages, i));
            n += s && !is_bookkeeping(s);
        }
        char what[1200];
        if (x->o.version)
            snprintf(what, sizeof what, "subject '%s' version %s", subject, x->o.version);
        else
            snprintf(what, sizeof what, "subject '%s'", subject);
        print_incompatible_header(what, n);
        if (!print_answer_reasons(messages, x->o.verbose))
            printf("  (the registry gave no reasons)\n");
        ret = cairn_rc_exit_code(CAIRN_E_INCOMPATIBLE);
        goto out;
    }
    if (ans.error_code == 40401)
        answer_error(&ans, &err, "subject '%s' not found", subject);
    else if (ans.error_code == 40402)
        answer_error(&ans, &err, "version %s of subject '%s' not found", x->o.version, subject);
    else if (ans.error_code == 42201)
        answer_error(&ans, &err, "schema file '%s' is not a valid schema for subject '%s'",
                     x->o.file, subject);
    else
        answer_error(&ans, &err, "compatibility check of subject '%s' failed", subject);
    ret = report_err(x, &err);
out:
    cairn__http_answer_release(&ans);
    json_decref(body);
    return ret;
}

static cairn_rc_t keep_schema(struct ctx *x, cairn_schema_t *s, cairn_error_t *err)
{
    if (x->nkeep == x->akeep) {
        size_t n = x->akeep ? x->akeep * 2 : 8;
        cairn_schema_t **p = cairn__realloc(x->keep, n * sizeof *p);
        if (!p) {
            cairn_schema_unref(s);
            return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        }
        x->keep = p;
        x->akeep = n;
    }
    x->keep[x->nkeep++] = s;
    return CAIRN_OK;
}

static cairn_rc_t fetch_schema(struct ctx *x,
                               const char *subject,
                               const char *version,
                               int depth,
                               cairn_schema_t **out,
                               cairn_error_t *err);

/*
 * Fetches and parses the schemas a "references" array names, so that a
 * schema using them can be parsed. They are kept until the end of the run.
 */
static cairn_rc_t fetch_references(struct ctx *x,
                                   const json_t *refs_json,
                                   int depth,
                                   cairn_schema_ref_t **out,
                                   size_t *nout,
                                   cairn_error_t *err)
{
    size_t n = json_array_size(refs_json);
    *out = NULL;
    *nout = 0;
    if (!n)
        return CAIRN_OK;
    if (depth >= MAX_REF_DEPTH)
        return cairn__error_set(err, CAIRN_E_INVALID_SCHEMA, 0, NULL,
                                "schema references nest deeper than %d", MAX_REF_DEPTH);
    cairn_schema_ref_t *refs = cairn__calloc(n, sizeof *refs);
    if (!refs)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(refs_json, i);
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *subject = json_string_value(json_object_get(r, "subject"));
        json_t *version = json_object_get(r, "version");
        char vbuf[32];
        if (!name || !subject || !json_is_integer(version)) {
            cairn__free(refs);
            return cairn__error_set(err, CAIRN_E_INVALID_REQUEST, 0, NULL,
                                    "a schema reference lacks name, subject or version");
        }
        if (json_integer_value(version) < 0)
            snprintf(vbuf, sizeof vbuf, "latest");
        else
            snprintf(vbuf, sizeof vbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(version));
        cairn_schema_t *s = NULL;
        cairn_rc_t rc = fetch_schema(x, subject, vbuf, depth + 1, &s, err);
        if (rc != CAIRN_OK) {
            cairn__free(refs);
            return rc;
        }
        refs[i].name = name; /* borrowed from refs_json, which outlives the parse */
        refs[i].schema = s;
    }
    *out = refs;
    *nout = n;
    return CAIRN_OK;
}

/* Parses @p text of @p type with the references @p refs_json names. */
static cairn_rc_t parse_with_refs(struct ctx *x,
                                  const char *type,
                                  const char *text,
                                  size_t len,
                                  const json_t *refs_json,
                                  int depth,
                                  const char *what,
                                  cairn_schema_t **out,
                                  cairn_error_t *err)
{
    cairn_schema_ref_t *refs = NULL;
    size_t nrefs = 0;
    cairn_error_t perr = {0};
    cairn_rc_t rc = fetch_references(x, refs_json, depth, &refs, &nrefs, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = cairn_schema_parse(type, text, len, refs, nrefs, out, &perr);
    cairn__free(refs);
    if (rc != CAIRN_OK) {
        if (perr.where[0])
            return cairn__error_set(err, rc, 0, perr.where,
                                    "%s is not a valid %s schema: %s (at %s)", what, type,
                                    perr.text, perr.where);
        return cairn__error_set(err, rc, 0, NULL, "%s is not a valid %s schema: %s", what, type,
                                perr.text[0] ? perr.text : cairn_rc_str(rc));
    }
    return CAIRN_OK;
}

/* GET /subjects/{s}/versions/{v} and parse the schema (kept in x->keep). */
static cairn_rc_t fetch_schema(struct ctx *x,
                               const char *subject,
                               const char *version,
                               int depth,
                               cairn_schema_t **out,
                               cairn_error_t *err)
{
    cairn_rc_t rc = CAIRN_OK;
    cairn__http_answer_t ans = {0};
    char *esc = cairn__http_escape(subject);
    char *path = NULL;
    char what[600];

    *out = NULL;
    if (!esc)
        return cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
    size_t plen = strlen(esc) + strlen(version) + 32;
    path = cairn__malloc(plen);
    if (!path) {
        rc = cairn__error_set(err, CAIRN_E_NOMEM, 0, NULL, "out of memory");
        goto out;
    }
    snprintf(path, plen, "/subjects/%s/versions/%s", esc, version);
    rc = cairn__http_exchange(x->client, "GET", path, NULL, NULL, &ans, err);
    if (rc != CAIRN_OK)
        goto out;
    const char *text = json_string_value(json_object_get(ans.json, "schema"));
    if (ans.status != 200 || !text) {
        rc = answer_error(&ans, err, "cannot get version %s of subject '%s'", version, subject);
        goto out;
    }
    const char *type = json_string_value(json_object_get(ans.json, "schemaType"));
    snprintf(what, sizeof what, "version %s of subject '%s'", version, subject);
    rc = parse_with_refs(x, type ? type : "AVRO", text,
                         json_string_length(json_object_get(ans.json, "schema")),
                         json_object_get(ans.json, "references"), depth, what, out, err);
    if (rc == CAIRN_OK)
        rc = keep_schema(x, *out, err);
    if (rc != CAIRN_OK)
        *out = NULL;
out:
    cairn__http_answer_release(&ans);
    cairn__free(path);
    cairn__free(esc);
    return rc;
}

/* Runs cairn_compat_check and prints the verdict. */
static int run_local_check(struct ctx *x,
                           cairn_compat_level_t level,
                           const cairn_schema_t *cand,
                           cairn_schema_t **prev,
                           const int *versions,
                           size_t nprev,
                           const struct version_names *names,
                           const char *what)
{
    cairn_strlist_t reasons;
    cairn_strlist_init(&reasons);
    cairn_rc_t rc = cairn_compat_check(level, cand, (const cairn_schema_t *const *)prev, versions,
                                       nprev, &reasons);
    int ret;
    if (rc == CAIRN_OK) {
        printf("compatible: %s at level %s", what, cairn_compat_level_name(level));
        if (!nprev)
            printf(" (nothing to check against)");
        putchar('\n');
        ret = cairn_rc_exit_code(CAIRN_OK);
    } else if (rc == CAIRN_E_INCOMPATIBLE) {
        size_t n = 0;
        for (size_t i = 0; i < reasons.n; i++)
            n += !is_bookkeeping(reasons.items[i]);
        char head[1200];
        snprintf(head, sizeof head, "%s at level %s", what, cairn_compat_level_name(level));
        print_incompatible_header(head, n);
        if (!print_reasons((const char *const *)reasons.items, reasons.n, names, x->o.verbose))
            printf("  (no reasons given)\n");
        ret = cairn_rc_exit_code(CAIRN_E_INCOMPATIBLE);
    } else {
        ret = report(x, rc, "compatibility check failed: %s", cairn_rc_str(rc));
    }
    cairn_strlist_release(&reasons);
    return ret;
}

static int parse_level(struct ctx *x, cairn_compat_level_t *level)
{
    *level = CAIRN_COMPAT_BACKWARD;
    if (x->o.level && cairn_compat_level_parse(x->o.level, level) != CAIRN_OK)
        return report(x, CAIRN_E_INVALID_LEVEL,
                      "invalid level '%s': want NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, "
                      "FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE",
                      x->o.level);
    return 0;
}

/* Reads and parses a local schema file. */
static cairn_rc_t
load_local(const char *type, const char *path, cairn_schema_t **out, cairn_error_t *err)
{
    char *text = NULL;
    size_t len = 0;
    cairn_error_t perr = {0};
    cairn_rc_t rc = read_schema_file(path, &text, &len, err);
    if (rc != CAIRN_OK)
        return rc;
    rc = cairn_schema_parse(type, text, len, NULL, 0, out, &perr);
    if (rc != CAIRN_OK) {
        if (perr.where[0])
            cairn__error_set(err, rc, 0, path,
                             "schema file '%s' is not a valid %s schema: %s (at %s)", path, type,
                             perr.text, perr.where);
        else
            cairn__error_set(err, rc, 0, path, "schema file '%s' is not a valid %s schema: %s",
                             path, type, perr.text[0] ? perr.text : cairn_rc_str(rc));
    }
    cairn__free(text);
    return rc;
}

/* --against: local files only, given newest first. */
static int check_local_files(struct ctx *x)
{
    int ret = 0;
    cairn_error_t err = {0};
    cairn_compat_level_t level;
    const char *type = schema_type(x->o.type);
    size_t n = x->o.nagainst;
    cairn_schema_t *cand = NULL;
    cairn_schema_t **prev = cairn__calloc(n, sizeof *prev);
    int *versions = cairn__calloc(n, sizeof *versions);
    const char **files = cairn__calloc(n, sizeof *files);

    if (!prev || !versions || !files) {
        ret = report(x, CAIRN_E_NOMEM, "out of memory");
        goto out;
    }
    if ((ret = parse_level(x, &level)) != 0)
        goto out;
    if (load_local(type, x->o.file, &cand, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    /* Oldest first for cairn_compat_check: the last --against is version 1. */
    for (size_t i = 0; i < n; i++) {
        const char *path = x->o.against[n - 1 - i];
        if (load_local(type, path, &prev[i], &err) != CAIRN_OK) {
            ret = report_err(x, &err);
            goto out;
        }
        versions[i] = (int)i + 1;
        files[i] = path;
    }
    struct version_names names = {files, n};
    char what[600];
    snprintf(what, sizeof what, "schema file '%s'", x->o.file);
    ret = run_local_check(x, level, cand, prev, versions, n, &names, what);
out:
    for (size_t i = 0; prev && i < n; i++)
        cairn_schema_unref(prev[i]);
    cairn_schema_unref(cand);
    cairn__free(prev);
    cairn__free(versions);
    cairn__free(files);
    return ret;
}

/* --level with a registry: fetch the live versions, check here. */
static int check_at_level(struct ctx *x, const char *text, size_t len)
{
    int ret = 0;
    cairn_error_t err = {0};
    cairn__http_answer_t ans = {0};
    cairn_compat_level_t level;
    const char *type = schema_type(x->o.type);
    const char *subject = x->o.subject;
    cairn_schema_t *cand = NULL, **prev = NULL;
    int *versions = NULL;
    json_t *body = NULL;
    size_t n = 0;
    char path[1024 + 64], what[1200];

    if ((ret = parse_level(x, &level)) != 0)
        return ret;
    if (strlen(x->subject_esc) > 1024)
        return report(x, CAIRN_E_INVALID_SUBJECT, "subject '%s' is too long", subject);

    /* The candidate, with its --reference schemas fetched from the registry. */
    if (build_body(x, text, len, &body, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    snprintf(what, sizeof what, "schema file '%s'", x->o.file);
    if (parse_with_refs(x, type, text, len, json_object_get(body, "references"), 0, what, &cand,
                        &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }

    snprintf(path, sizeof path, "/subjects/%s/versions", x->subject_esc);
    if (cairn__http_exchange(x->client, "GET", path, NULL, NULL, &ans, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    if (ans.status == 200 && json_is_array(ans.json)) {
        n = json_array_size(ans.json);
    } else if (ans.error_code != 40401) {
        answer_error(&ans, &err, "cannot list the versions of subject '%s'", subject);
        ret = report_err(x, &err);
        goto out;
    }
    prev = cairn__calloc(n ? n : 1, sizeof *prev);
    versions = cairn__calloc(n ? n : 1, sizeof *versions);
    if (!prev || !versions) {
        ret = report(x, CAIRN_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ans.json, i);
        char vbuf[32];
        if (!json_is_integer(v)) {
            ret = report(x, CAIRN_E_INVALID_REQUEST,
                         "cannot list the versions of subject '%s': the answer is not a list of "
                         "numbers",
                         subject);
            goto out;
        }
        versions[i] = (int)json_integer_value(v);
        snprintf(vbuf, sizeof vbuf, "%d", versions[i]);
        /* fetch_schema keeps the schema in x->keep; prev only borrows it. */
        if (fetch_schema(x, subject, vbuf, 0, &prev[i], &err) != CAIRN_OK) {
            ret = report_err(x, &err);
            goto out;
        }
    }
    /* The registry lists versions ascending; make sure: oldest first. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && versions[j - 1] > versions[j]; j--) {
            int tv = versions[j];
            versions[j] = versions[j - 1];
            versions[j - 1] = tv;
            cairn_schema_t *ts = prev[j];
            prev[j] = prev[j - 1];
            prev[j - 1] = ts;
        }
    struct version_names names = {NULL, 0};
    snprintf(what, sizeof what, "subject '%s'", subject);
    ret = run_local_check(x, level, cand, prev, versions, n, &names, what);
out:
    cairn__http_answer_release(&ans);
    cairn_schema_unref(cand);
    cairn__free(prev);
    cairn__free(versions);
    json_decref(body);
    return ret;
}

static int cmd_check(struct ctx *x)
{
    int ret = 0;
    cairn_error_t err = {0};
    char *text = NULL;
    size_t len = 0;

    if (!x->o.file)
        return report(x, CAIRN_E_INVALID, "no schema file given; see '%s --help'", x->prog);
    if (x->o.type && !schema_type(x->o.type))
        return report(x, CAIRN_E_INVALID, "unknown schema type '%s': want AVRO, PROTOBUF or JSON",
                      x->o.type);
    if (x->o.nagainst) {
        if (x->o.registry || x->o.subject || x->o.version || x->o.nrefs)
            return report(x, CAIRN_E_INVALID,
                          "--against checks local files: it takes no --registry, --subject, "
                          "--version or --reference");
        return check_local_files(x);
    }
    if (!x->o.subject)
        return report(x, CAIRN_E_INVALID,
                      "no subject given: use --subject S (or --against FILE for local files)");
    if (x->o.version && x->o.level)
        return report(x, CAIRN_E_INVALID, "--version and --level cannot be combined");
    if (x->o.version && !valid_version(x->o.version))
        return report(x, CAIRN_E_INVALID_VERSION,
                      "invalid version '%s': want a positive number or 'latest'", x->o.version);
    if ((ret = open_client(x)) != 0)
        return ret;
    if (read_schema_file(x->o.file, &text, &len, &err) != CAIRN_OK)
        return report_err(x, &err);
    if (x->o.level)
        ret = check_at_level(x, text, len);
    else
        ret = check_by_registry(x, text, len);
    cairn__free(text);
    return ret;
}

/* ---- register ------------------------------------------------------------ */

/* After a 409, asks the verbose check for the reasons and prints them. */
static void print_register_reasons(struct ctx *x, const json_t *body, const char *message)
{
    cairn_error_t err = {0};
    cairn__http_answer_t ans = {0};
    char path[1024 + 64];
    size_t n = 0;

    snprintf(path, sizeof path, "/compatibility/subjects/%s/versions?verbose=true", x->subject_esc);
    if (strlen(x->subject_esc) <= 1024 &&
        cairn__http_exchange(x->client, "POST", path, body, NULL, &ans, &err) == CAIRN_OK &&
        ans.status == 200)
        n = print_answer_reasons(json_object_get(ans.json, "messages"), x->o.verbose);
    if (!n)
        printf("  %s\n", message && *message ? message : "(the registry gave no reasons)");
    cairn__http_answer_release(&ans);
}

static int cmd_register(struct ctx *x)
{
    int ret = 0;
    cairn_error_t err = {0};
    cairn__http_answer_t ans = {0};
    json_t *body = NULL;
    char *text = NULL;
    size_t len = 0;
    char path[1024 + 64];

    if (!x->o.subject)
        return report(x, CAIRN_E_INVALID, "no subject given: use --subject S");
    if (!x->o.file)
        return report(x, CAIRN_E_INVALID, "no schema file given; see '%s --help'", x->prog);
    if (x->o.type && !schema_type(x->o.type))
        return report(x, CAIRN_E_INVALID, "unknown schema type '%s': want AVRO, PROTOBUF or JSON",
                      x->o.type);
    if ((ret = open_client(x)) != 0)
        return ret;
    if (strlen(x->subject_esc) > 1024)
        return report(x, CAIRN_E_INVALID_SUBJECT, "subject '%s' is too long", x->o.subject);
    if (read_schema_file(x->o.file, &text, &len, &err) != CAIRN_OK ||
        build_body(x, text, len, &body, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    snprintf(path, sizeof path, "/subjects/%s/versions%s", x->subject_esc,
             x->o.normalize ? "?normalize=true" : "");
    if (cairn__http_exchange(x->client, "POST", path, body, NULL, &ans, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    json_t *id = json_object_get(ans.json, "id");
    if (ans.status == 200 && json_is_integer(id)) {
        printf("id=%" JSON_INTEGER_FORMAT "\n", json_integer_value(id));
        ret = cairn_rc_exit_code(CAIRN_OK);
        goto out;
    }
    if (cairn__http_answer_rc(&ans) == CAIRN_E_INCOMPATIBLE) {
        printf("incompatible: subject '%s' rejected schema file '%s'\n", x->o.subject, x->o.file);
        print_register_reasons(x, body, ans.message);
        ret = cairn_rc_exit_code(CAIRN_E_INCOMPATIBLE);
        goto out;
    }
    if (ans.error_code == 42201)
        answer_error(&ans, &err, "schema file '%s' is not a valid schema for subject '%s'",
                     x->o.file, x->o.subject);
    else
        answer_error(&ans, &err, "registering schema file '%s' under subject '%s' failed",
                     x->o.file, x->o.subject);
    ret = report_err(x, &err);
out:
    cairn__http_answer_release(&ans);
    json_decref(body);
    cairn__free(text);
    return ret;
}

/* ---- get ------------------------------------------------------------------ */

static int cmd_get(struct ctx *x)
{
    int ret = 0;
    cairn_error_t err = {0};
    cairn__http_answer_t ans = {0};
    char path[1024 + 64];
    char what[1200];
    const char *version = x->o.version ? x->o.version : "latest";

    if (x->o.file)
        return report(x, CAIRN_E_INVALID, "get takes no file, but got '%s'", x->o.file);
    if (!x->o.subject == !x->o.id)
        return report(x, CAIRN_E_INVALID, "give either --subject S [--version V] or --id N");
    if (x->o.id && x->o.version)
        return report(x, CAIRN_E_INVALID, "--version goes with --subject, not with --id");
    if (x->o.id) {
        char *end;
        errno = 0;
        long id = strtol(x->o.id, &end, 10);
        if (errno || *end || id < 1 || id > INT_MAX || x->o.id[0] < '1' || x->o.id[0] > '9')
            return report(x, CAIRN_E_INVALID, "invalid id '%s': want a positive number", x->o.id);
    } else if (!valid_version(version)) {
        return report(x, CAIRN_E_INVALID_VERSION,
                      "invalid version '%s': want a positive number or 'latest'", version);
    }
    if ((ret = open_client(x)) != 0)
        return ret;
    if (x->o.id) {
        snprintf(path, sizeof path, "/schemas/ids/%s", x->o.id);
        snprintf(what, sizeof what, "schema id %s", x->o.id);
    } else {
        if (strlen(x->subject_esc) > 1024)
            return report(x, CAIRN_E_INVALID_SUBJECT, "subject '%s' is too long", x->o.subject);
        snprintf(path, sizeof path, "/subjects/%s/versions/%s", x->subject_esc, version);
        snprintf(what, sizeof what, "version %s of subject '%s'", version, x->o.subject);
    }
    if (cairn__http_exchange(x->client, "GET", path, NULL, NULL, &ans, &err) != CAIRN_OK) {
        ret = report_err(x, &err);
        goto out;
    }
    const char *schema = json_string_value(json_object_get(ans.json, "schema"));
    if (ans.status != 200 || !schema) {
        answer_error(&ans, &err, "cannot get %s", what);
        ret = report_err(x, &err);
        goto out;
    }
    if (x->o.json) {
        fwrite(ans.body, 1, ans.body_len, stdout);
        if (!ans.body_len || ans.body[ans.body_len - 1] != '\n')
            putchar('\n');
    } else {
        size_t n = json_string_length(json_object_get(ans.json, "schema"));
        fwrite(schema, 1, n, stdout);
        if (!n || schema[n - 1] != '\n')
            putchar('\n');
    }
    ret = cairn_rc_exit_code(CAIRN_OK);
out:
    cairn__http_answer_release(&ans);
    return ret;
}

/* ---- dispatch --------------------------------------------------------------- */

int cmd_schema(int argc, char **argv)
{
    static const struct {
        const char *name;
        enum sub sub;
        const char *prog;
        const char *usage;
        int (*run)(struct ctx *x);
    } subs[] = {
        {"check", SUB_CHECK, "cairn schema check", check_usage, cmd_check},
        {"register", SUB_REGISTER, "cairn schema register", register_usage, cmd_register},
        {"get", SUB_GET, "cairn schema get", get_usage, cmd_get},
    };

    if (argc < 2) {
        fputs(schema_usage, stderr);
        return exit_error(CAIRN_E_INVALID);
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(schema_usage, stdout);
        return cairn_rc_exit_code(CAIRN_OK);
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name))
            continue;
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(subs[i].usage, stdout);
            return cairn_rc_exit_code(CAIRN_OK);
        }
        struct ctx x = {.prog = subs[i].prog};
        x.o.sub = subs[i].sub;
        int ret = parse_args(&x, argc - 1, argv + 1);
        if (!ret) {
            if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                ret = report(&x, CAIRN_E_INTERNAL, "cannot initialise libcurl");
            } else {
                ret = subs[i].run(&x);
                cairn__http_destroy(x.client);
                x.client = NULL;
                curl_global_cleanup();
            }
        }
        fflush(stdout);
        for (size_t k = 0; k < x.nkeep; k++)
            cairn_schema_unref(x.keep[k]);
        cairn__free(x.keep);
        cairn__free(x.subject_esc);
        cairn__free(x.o.against);
        cairn__free(x.o.refs);
        return ret;
    }
    fprintf(stderr, "cairn schema: unknown subcommand '%s'; see 'cairn schema --help'\n", argv[1]);
    return exit_error(CAIRN_E_INVALID);
}
