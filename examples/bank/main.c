/* SPDX-License-Identifier: MIT */
/*
 * main.c - cairn-bank, the example service: bank accounts kept as event
 * streams by libcairn. Each command goes through cairn_handle(): validated
 * against its registered Avro schema, the account loaded (state cache or
 * replay), decided (account.c), its events encoded in the Confluent wire
 * format and appended with the expected version, retried on conflicts.
 *
 *   cairn-bank [options] open ACCOUNT OWNER [EUR|USD|GBP] [--overdraft CENTS]
 *   cairn-bank [options] deposit ACCOUNT CENTS [--memo TEXT] [--reference TEXT]
 *   cairn-bank [options] withdraw ACCOUNT CENTS [--memo TEXT]
 *   cairn-bank [options] show ACCOUNT
 *   cairn-bank --registry URL decode        (stdin: hex wire values, one per line)
 *   cairn-bank [options] load --accounts N --commands N [--threads N] [--seed N]
 *                             [--prefix P] [--run NAME] [--overdraft CENTS] [--report FILE]
 *
 * options: --log URL (file:DIR or kafka:HOST:PORT?topic=T; default $CAIRN_BANK_LOG,
 *          else file:bank-data)
 *          --registry URL (default $CAIRN_REGISTRY_URL, else http://127.0.0.1:8081)
 *          --topic NAME (subject naming; default the Kafka topic, else "bank")
 *          --id COMMAND_ID (idempotency: the same id twice appends once)
 *          --print-events (stdout: one JSON line per event built; the summary
 *          goes to stderr) --json (show) --claim-hold-ms MS --snapshot-every N
 *          --retry-for SECONDS (retriable failures are retried with the
 *          same command id for that long; default 10)
 *
 * Exit codes: 0 done, 1 rejected by the domain, 2 invalid or error, 3 a
 * version conflict that the retries did not resolve.
 *
 * `load` is the multi-writer driver of tests/integration/test_sdk_concurrency.py:
 * it opens the accounts (command id "open-<account>", so that every process
 * opening them is idempotent), then sends random deposits and withdrawals
 * from --threads threads and writes one JSON line per command to --report:
 * {"id","account","kind","amount","outcome":"applied"|"repeated"|"rejected"|
 * "failed","version","events","code","flags","attempts"}.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bank.h"
#include "cairn/cairn.h"
#include "cairn/registry_client.h"
#include "cairn/sdk.h"
#include "cairn/serde.h"

struct options {
    const char *log_url;
    const char *registry_url;
    const char *topic;
    const char *command_id;
    int print_events;
    int json;
    long claim_hold_ms;
    unsigned snapshot_every;
    double retry_for;
};

struct app {
    struct options o;
    char topic[256];
    cairn_registry_client_t *client;
    cairn_serde_t *serde;
    cairn_service_t *svc;
    cairn_aggregate_t *agg;
};

static void usage(void)
{
    fputs("usage: cairn-bank [--log URL] [--registry URL] [--topic NAME] [--id ID]\n"
          "                  [--print-events] [--json] [--claim-hold-ms MS]\n"
          "                  [--snapshot-every N] [--retry-for SECONDS] COMMAND ...\n"
          "  open ACCOUNT OWNER [EUR|USD|GBP] [--overdraft CENTS]\n"
          "  deposit ACCOUNT CENTS [--memo TEXT] [--reference TEXT]\n"
          "  withdraw ACCOUNT CENTS [--memo TEXT]\n"
          "  show ACCOUNT\n"
          "  decode                 (stdin: hex wire values, one per line)\n"
          "  load --accounts N --commands N [--threads N] [--seed N] [--prefix P]\n"
          "       [--run NAME] [--overdraft CENTS] [--report FILE]\n",
          stderr);
}

static int parse_ll(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        fprintf(stderr, "cairn-bank: \"%s\" is not an integer\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void flags_text(unsigned flags, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s", flags & CAIRN_ERR_RETRIABLE ? "retriable," : "",
             flags & CAIRN_ERR_FATAL ? "fatal," : "", flags & CAIRN_ERR_CONFLICT ? "conflict," : "",
             flags & CAIRN_ERR_OUTCOME_UNKNOWN ? "outcome_unknown," : "");
    size_t n = strlen(buf);
    if (n > 0) {
        buf[n - 1] = '\0';
    }
}

/* Writes @p s as a JSON string (quoted, escaped) so that key=value lines stay parseable. */
static void put_quoted(FILE *f, const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(text ? text : "\"?\"", f);
    free(text);
    json_decref(j);
}

static void print_error(const char *what, cairn_rc_t rc, const cairn_error_t *err)
{
    char flags[80];
    flags_text(err->flags, flags, sizeof(flags));
    fprintf(stderr, "error %s code=%s flags=%s where=", what, cairn_rc_name(rc),
            flags[0] ? flags : "-");
    put_quoted(stderr, err->where);
    fputs(" message=", stderr);
    put_quoted(stderr, err->text[0] ? err->text : cairn_rc_str(rc));
    fputc('\n', stderr);
}

/* The subject-naming topic: --topic, else the Kafka URL's topic, else "bank". */
static void pick_topic(struct app *a)
{
    const char *t = a->o.topic;
    size_t n = t ? strlen(t) : 0;
    if (t == NULL && strncmp(a->o.log_url, "kafka:", 6) == 0) {
        const char *q = strstr(a->o.log_url, "?topic=");
        if (q == NULL) {
            q = strstr(a->o.log_url, "&topic=");
        }
        if (q != NULL) {
            t = q + 7;
            n = strcspn(t, "&");
        }
    }
    if (t == NULL || n == 0) {
        t = "bank";
        n = 4;
    }
    snprintf(a->topic, sizeof(a->topic), "%.*s", (int)n, t);
}

static cairn_rc_t app_open(struct app *a, int with_service)
{
    cairn_error_t err = {0};
    cairn_rc_t rc;
    cairn_registry_client_options_t copts = {.url = a->o.registry_url};
    rc = cairn_registry_client_new(&copts, &a->client, &err);
    if (rc != CAIRN_OK) {
        print_error("opening the registry client", rc, &err);
        return rc;
    }
    rc = cairn_serde_new(a->client, NULL, &a->serde, &err);
    if (rc != CAIRN_OK) {
        print_error("creating the serde", rc, &err);
        return rc;
    }
    if (!with_service) {
        return CAIRN_OK;
    }
    pick_topic(a);
    cairn_service_options_t sopts = {
        .log_url = a->o.log_url,
        .serde = a->serde,
        .topic = a->topic,
        .claim_hold_ms = a->o.claim_hold_ms,
        .snapshot_every = a->o.snapshot_every,
    };
    rc = cairn_service_new(&sopts, &a->svc, &err);
    if (rc != CAIRN_OK) {
        print_error("opening the service", rc, &err);
        return rc;
    }
    rc = bank_add_aggregate(a->svc, &a->agg, &err);
    if (rc != CAIRN_OK) {
        print_error("adding the account aggregate", rc, &err);
    }
    return rc;
}

static void app_close(struct app *a)
{
    cairn_service_destroy(a->svc);
    cairn_serde_destroy(a->serde);
    cairn_registry_client_destroy(a->client);
    bank_thread_done();
}

/*
 * Runs one command through cairn_handle, retrying failures that say the
 * same call may succeed later (RETRIABLE: a Kafka partition held by another
 * writer, the registry briefly away; OUTCOME_UNKNOWN) with the same command
 * id, so that an attempt that did land is answered as a repeat rather than
 * applied twice. *attempts counts the calls.
 */
static cairn_rc_t run_command(struct app *a,
                              const char *stream,
                              const char *type,
                              const json_t *body,
                              const char *id,
                              cairn_result_t *res,
                              cairn_error_t *err,
                              int *attempts)
{
    cairn_command_t cmd = {.stream = stream, .type = type, .body = body, .id = id};
    double deadline = now_s() + a->o.retry_for;
    long backoff = 10;
    cairn_rc_t rc;
    *attempts = 0;
    for (;;) {
        memset(err, 0, sizeof(*err));
        cairn_result_release(res);
        (*attempts)++;
        rc = cairn_handle(a->agg, &cmd, res, err);
        if (rc == CAIRN_OK || !(err->flags & (CAIRN_ERR_RETRIABLE | CAIRN_ERR_OUTCOME_UNKNOWN)) ||
            now_s() + (double)backoff / 1000 > deadline) {
            return rc;
        }
        sleep_ms(backoff + rand() % 10);
        backoff = backoff < 200 ? backoff * 2 : 200;
    }
}

static int exit_code(cairn_rc_t rc)
{
    if (rc == CAIRN_OK) {
        return 0;
    }
    if (rc == CAIRN_E_REJECTED) {
        return 1;
    }
    if (CAIRN_RC_PRIMARY(rc) == CAIRN_E_CONFLICT) {
        return 3;
    }
    return 2;
}

/* Prints the outcome of a single command; returns the exit code. */
static int report_one(struct app *a,
                      const char *stream,
                      cairn_rc_t rc,
                      const cairn_result_t *res,
                      const cairn_error_t *err)
{
    FILE *summary = a->o.print_events ? stderr : stdout;
    if (rc == CAIRN_OK) {
        const json_t *built = bank_last_decision();
        if (a->o.print_events && res->events > 0) {
            if (json_array_size(built) != res->events) {
                fprintf(stderr, "cairn-bank: %zu events appended but %zu built\n", res->events,
                        json_array_size(built));
                return 2;
            }
            size_t i;
            const json_t *ev;
            json_array_foreach(built, i, ev)
            {
                json_t *line =
                    json_pack("{s:s, s:I, s:O, s:O}", "stream", stream, "version",
                              (json_int_t)(res->version - res->events + 1 + i), "type",
                              json_object_get(ev, "type"), "value", json_object_get(ev, "value"));
                char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
                json_decref(line);
                if (text == NULL) {
                    return 2;
                }
                printf("%s\n", text);
                free(text);
            }
        }
        fprintf(summary,
                "ok account=%s version=%" PRIu64 " events=%zu repeated=%d partition=%d "
                "position=%" PRIu64 " command=%s\n",
                stream, res->version, res->events, res->repeated, (int)res->partition,
                res->position, res->command_id);
        return 0;
    }
    if (rc == CAIRN_E_REJECTED) {
        fprintf(summary, "rejected account=%s code=%s message=", stream, res->reject_code);
        put_quoted(summary, err->text);
        fputc('\n', summary);
        return 1;
    }
    if (rc == CAIRN_E_INVALID && res->violations != NULL) {
        size_t i;
        const json_t *v;
        json_array_foreach(res->violations, i, v)
        {
            fprintf(stderr,
                    "invalid path=%s message=", json_string_value(json_object_get(v, "path")));
            put_quoted(stderr, json_string_value(json_object_get(v, "message")));
            fputc('\n', stderr);
        }
        return 2;
    }
    print_error("handling the command", rc, err);
    return exit_code(rc);
}

/* ---- open / deposit / withdraw / show ------------------------------------ */

static int cmd_single(struct app *a, int argc, char **argv)
{
    const char *verb = argv[0];
    const char *memo = NULL, *reference = NULL, *overdraft_s = NULL;
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--memo") == 0 && i + 1 < argc) {
            memo = argv[++i];
        } else if (strcmp(argv[i], "--reference") == 0 && i + 1 < argc) {
            reference = argv[++i];
        } else if (strcmp(argv[i], "--overdraft") == 0 && i + 1 < argc) {
            overdraft_s = argv[++i];
        } else if (npos < 3 && strncmp(argv[i], "--", 2) != 0) {
            pos[npos++] = argv[i];
        } else {
            usage();
            return 2;
        }
    }
    const char *type;
    json_t *body = NULL;
    long long amount = 0, overdraft = 0;
    if (strcmp(verb, "open") == 0) {
        if (npos < 2 || (overdraft_s && parse_ll(overdraft_s, &overdraft) != 0)) {
            usage();
            return 2;
        }
        type = "OpenAccount";
        body = json_pack("{s:s, s:s, s:s, s:I}", "account", pos[0], "owner", pos[1], "currency",
                         pos[2] ? pos[2] : "EUR", "overdraft", (json_int_t)overdraft);
    } else {
        if (npos != 2 || parse_ll(pos[1], &amount) != 0) {
            usage();
            return 2;
        }
        int deposit = strcmp(verb, "deposit") == 0;
        type = deposit ? "Deposit" : "Withdraw";
        if (!deposit && reference != NULL) {
            usage();
            return 2;
        }
        /* "s?": a missing memo is JSON null, the union's null branch */
        body = deposit ? json_pack("{s:s, s:I, s:s?, s:s}", "account", pos[0], "amount",
                                   (json_int_t)amount, "memo", memo, "reference",
                                   reference ? reference : "")
                       : json_pack("{s:s, s:I, s:s?}", "account", pos[0], "amount",
                                   (json_int_t)amount, "memo", memo);
    }
    if (body == NULL) {
        fprintf(stderr, "cairn-bank: arguments are not valid UTF-8 or memory ran out\n");
        return 2;
    }
    char id[CAIRN_UUID_LEN + 1];
    cairn_error_t err = {0};
    if (a->o.command_id == NULL && cairn_uuid_new(id, &err) != CAIRN_OK) {
        json_decref(body);
        print_error("making a command id", err.code, &err);
        return 2;
    }
    cairn_result_t res = {0};
    int attempts = 0;
    cairn_rc_t rc = run_command(a, pos[0], type, body, a->o.command_id ? a->o.command_id : id, &res,
                                &err, &attempts);
    int code = report_one(a, pos[0], rc, &res, &err);
    cairn_result_release(&res);
    json_decref(body);
    return code;
}

static int cmd_show(struct app *a, int argc, char **argv)
{
    if (argc != 2) {
        usage();
        return 2;
    }
    cairn_error_t err = {0};
    json_t *state = NULL;
    uint64_t version = 0;
    cairn_rc_t rc = cairn_aggregate_state_json(a->agg, argv[1], &state, &version, &err);
    if (rc != CAIRN_OK) {
        print_error("loading the account", rc, &err);
        return exit_code(rc);
    }
    int code = 0;
    if (a->o.json) {
        char *text = json_object_set_new(state, "version", json_integer((json_int_t)version)) == 0
                         ? json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS)
                         : NULL;
        if (text != NULL) {
            printf("%s\n", text);
        }
        code = text ? 0 : 2;
        free(text);
    } else {
        json_t *owner = json_object_get(state, "owner");
        char *owner_s = owner ? json_dumps(owner, JSON_ENCODE_ANY) : NULL;
        printf("account=%s open=%s owner=%s currency=%s balance=%" JSON_INTEGER_FORMAT
               " overdraft=%" JSON_INTEGER_FORMAT " deposits=%" JSON_INTEGER_FORMAT
               " withdrawals=%" JSON_INTEGER_FORMAT " version=%" PRIu64 "\n",
               argv[1], json_is_true(json_object_get(state, "open")) ? "yes" : "no",
               owner_s ? owner_s : "-",
               json_string_value(json_object_get(state, "currency"))
                   ? json_string_value(json_object_get(state, "currency"))
                   : "-",
               json_integer_value(json_object_get(state, "balance")),
               json_integer_value(json_object_get(state, "overdraft")),
               json_integer_value(json_object_get(state, "deposits")),
               json_integer_value(json_object_get(state, "withdrawals")), version);
        free(owner_s);
    }
    json_decref(state);
    return code;
}

/* ---- decode ---------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int cmd_decode(struct app *a)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int code = 0;
    unsigned long lineno = 0;
    while (code == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) {
            line[--n] = '\0';
        }
        if (n == 0) {
            continue;
        }
        if (n % 2 != 0) {
            fprintf(stderr, "cairn-bank: line %lu: odd number of hex digits\n", lineno);
            code = 2;
            break;
        }
        size_t len = (size_t)n / 2;
        unsigned char *bytes = malloc(len);
        if (bytes == NULL) {
            code = 2;
            break;
        }
        for (size_t i = 0; i < len && code == 0; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "cairn-bank: line %lu: not hex\n", lineno);
                code = 2;
                break;
            }
            bytes[i] = (unsigned char)(hi << 4 | lo);
        }
        json_t *value = NULL;
        int32_t id = 0;
        cairn_error_t err = {0};
        if (code == 0) {
            cairn_rc_t rc = cairn_serde_decode(a->serde, bytes, len, NULL, &value, &id, &err);
            if (rc != CAIRN_OK) {
                print_error("decoding", rc, &err);
                code = exit_code(rc);
            }
        }
        free(bytes);
        if (code == 0) {
            json_t *out = json_pack("{s:i, s:o}", "schema_id", (int)id, "value", value);
            char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
            json_decref(out);
            if (text == NULL) {
                code = 2;
                break;
            }
            printf("%s\n", text);
            free(text);
        }
    }
    free(line);
    return code;
}

/* ---- load ------------------------------------------------------------------ */

struct load {
    struct app *a;
    const char *prefix;
    const char *run;
    long long accounts, commands, overdraft;
    int threads;
    unsigned long long seed;
    FILE *report;
    pthread_mutex_t lock;
    unsigned long applied, repeated, rejected, failed;
};

struct load_thread {
    struct load *l;
    int index;
    long long commands;
    pthread_t tid;
    int started;
};

static void load_record(struct load *l,
                        const char *id,
                        const char *account,
                        const char *kind,
                        long long amount,
                        cairn_rc_t rc,
                        const cairn_result_t *res,
                        const cairn_error_t *err,
                        int attempts)
{
    const char *outcome = rc == CAIRN_OK           ? (res->repeated ? "repeated" : "applied")
                          : rc == CAIRN_E_REJECTED ? "rejected"
                                                   : "failed";
    char flags[80];
    flags_text(rc == CAIRN_OK ? 0 : err->flags, flags, sizeof(flags));
    json_t *line =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:s, s:s, s:s, s:i}", "id", id, "account",
                  account, "kind", kind, "amount", (json_int_t)amount, "outcome", outcome,
                  "version", (json_int_t)res->version, "events", (json_int_t)res->events, "code",
                  rc == CAIRN_E_REJECTED ? res->reject_code : cairn_rc_name(rc), "flags", flags,
                  "text", rc == CAIRN_OK ? "" : err->text, "attempts", attempts);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    pthread_mutex_lock(&l->lock);
    if (rc == CAIRN_OK && res->repeated) {
        l->repeated++;
    } else if (rc == CAIRN_OK) {
        l->applied++;
    } else if (rc == CAIRN_E_REJECTED) {
        l->rejected++;
    } else {
        l->failed++;
    }
    if (l->report != NULL && text != NULL) {
        fprintf(l->report, "%s\n", text);
    }
    pthread_mutex_unlock(&l->lock);
    if (rc != CAIRN_OK && rc != CAIRN_E_REJECTED) {
        print_error(id, rc, err);
    }
    free(text);
}

static int
load_one(struct load *l, const char *id, const char *account, const char *kind, long long amount)
{
    json_t *body;
    const char *type;
    if (strcmp(kind, "open") == 0) {
        type = "OpenAccount";
        body = json_pack("{s:s, s:s, s:s, s:I}", "account", account, "owner", "load", "currency",
                         "EUR", "overdraft", (json_int_t)l->overdraft);
    } else if (strcmp(kind, "deposit") == 0) {
        type = "Deposit";
        body = json_pack("{s:s, s:I, s:n, s:s}", "account", account, "amount", (json_int_t)amount,
                         "memo", "reference", id);
    } else {
        type = "Withdraw";
        body =
            json_pack("{s:s, s:I, s:n}", "account", account, "amount", (json_int_t)amount, "memo");
    }
    if (body == NULL) {
        return -1;
    }
    cairn_result_t res = {0};
    cairn_error_t err = {0};
    int attempts = 0;
    cairn_rc_t rc = run_command(l->a, account, type, body, id, &res, &err, &attempts);
    load_record(l, id, account, kind, amount, rc, &res, &err, attempts);
    cairn_result_release(&res);
    json_decref(body);
    return 0;
}

static void *load_main(void *arg)
{
    struct load_thread *t = arg;
    struct load *l = t->l;
    uint64_t rng = l->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)t->index * 7919 + 1;
    char account[128], id[256];
    for (long long k = 0; k < t->commands; k++) {
        long long acc = (long long)(bank_random(&rng) % (uint64_t)l->accounts);
        int deposit = bank_random(&rng) % 2 == 0;
        long long amount = 1 + (long long)(bank_random(&rng) % 1000);
        snprintf(account, sizeof(account), "%s%lld", l->prefix, acc);
        snprintf(id, sizeof(id), "%s-t%d-%lld", l->run, t->index, k);
        if (load_one(l, id, account, deposit ? "deposit" : "withdraw", amount) != 0) {
            break;
        }
    }
    bank_thread_done();
    return NULL;
}

static int cmd_load(struct app *a, int argc, char **argv)
{
    struct load l = {.a = a, .prefix = "acc-", .threads = 1, .seed = 1};
    const char *report = NULL;
    char run[64];
    snprintf(run, sizeof(run), "p%ld", (long)getpid());
    l.run = run;
    long long v;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(arg, "--prefix") == 0) {
            l.prefix = val;
        } else if (strcmp(arg, "--run") == 0) {
            l.run = val;
        } else if (strcmp(arg, "--report") == 0) {
            report = val;
        } else if (parse_ll(val, &v) != 0) {
            return 2;
        } else if (strcmp(arg, "--accounts") == 0 && v > 0) {
            l.accounts = v;
        } else if (strcmp(arg, "--commands") == 0 && v >= 0) {
            l.commands = v;
        } else if (strcmp(arg, "--threads") == 0 && v > 0 && v <= 256) {
            l.threads = (int)v;
        } else if (strcmp(arg, "--seed") == 0) {
            l.seed = (unsigned long long)v;
        } else if (strcmp(arg, "--overdraft") == 0 && v >= 0) {
            l.overdraft = v;
        } else {
            usage();
            return 2;
        }
    }
    if (l.accounts == 0) {
        usage();
        return 2;
    }
    if (report != NULL && (l.report = fopen(report, "w")) == NULL) {
        fprintf(stderr, "cairn-bank: cannot write \"%s\": %s\n", report, strerror(errno));
        return 2;
    }
    pthread_mutex_init(&l.lock, NULL);
    double t0 = now_s();
    char account[128], id[192];
    int code = 0;
    for (long long i = 0; code == 0 && i < l.accounts; i++) {
        snprintf(account, sizeof(account), "%s%lld", l.prefix, i);
        snprintf(id, sizeof(id), "open-%s", account);
        if (load_one(&l, id, account, "open", 0) != 0) {
            fprintf(stderr, "cairn-bank: out of memory\n");
            code = 2;
        }
    }
    double t1 = now_s();
    struct load_thread *ts = code == 0 ? calloc((size_t)l.threads, sizeof(*ts)) : NULL;
    if (ts == NULL) {
        code = 2;
    }
    for (int i = 0; code == 0 && i < l.threads; i++) {
        ts[i].l = &l;
        ts[i].index = i;
        ts[i].commands = l.commands / l.threads + (i < l.commands % l.threads ? 1 : 0);
        if (pthread_create(&ts[i].tid, NULL, load_main, &ts[i]) != 0) {
            fprintf(stderr, "cairn-bank: pthread_create failed\n");
            code = 2;
            break;
        }
        ts[i].started = 1;
    }
    for (int i = 0; ts && i < l.threads; i++) {
        if (ts[i].started) {
            pthread_join(ts[i].tid, NULL);
        }
    }
    double t2 = now_s();
    free(ts);
    cairn_service_stats_t st;
    cairn_service_stats(a->svc, &st);
    fprintf(stderr,
            "load commands=%lld threads=%d applied=%lu repeated=%lu rejected=%lu failed=%lu "
            "open_s=%.3f run_s=%.3f commands_per_s=%.0f conflicts=%" PRIu64 " cache_hits=%" PRIu64
            " cache_misses=%" PRIu64 "\n",
            l.commands, l.threads, l.applied, l.repeated, l.rejected, l.failed, t1 - t0, t2 - t1,
            t2 > t1 ? (double)l.commands / (t2 - t1) : 0.0, st.conflicts, st.cache_hits,
            st.cache_misses);
    if (l.report != NULL && fclose(l.report) != 0) {
        fprintf(stderr, "cairn-bank: writing \"%s\" failed\n", report);
        code = 2;
    }
    pthread_mutex_destroy(&l.lock);
    return code;
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *env_log = getenv("CAIRN_BANK_LOG");
    const char *env_registry = getenv("CAIRN_REGISTRY_URL");
    struct app a = {.o = {.log_url = env_log && *env_log ? env_log : "file:bank-data",
                          .registry_url = env_registry && *env_registry ? env_registry
                                                                        : "http://127.0.0.1:8081",
                          .retry_for = 10.0}};
    int i = 1;
    long long v;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--print-events") == 0) {
            a.o.print_events = 1;
            continue;
        }
        if (strcmp(opt, "--json") == 0) {
            a.o.json = 1;
            continue;
        }
        if (strcmp(opt, "--help") == 0) {
            usage();
            return 0;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(opt, "--log") == 0) {
            a.o.log_url = val;
        } else if (strcmp(opt, "--registry") == 0) {
            a.o.registry_url = val;
        } else if (strcmp(opt, "--topic") == 0) {
            a.o.topic = val;
        } else if (strcmp(opt, "--id") == 0) {
            a.o.command_id = val;
        } else if (parse_ll(val, &v) != 0 || v < 0) {
            usage();
            return 2;
        } else if (strcmp(opt, "--claim-hold-ms") == 0) {
            a.o.claim_hold_ms = (long)v;
        } else if (strcmp(opt, "--snapshot-every") == 0) {
            a.o.snapshot_every = (unsigned)v;
        } else if (strcmp(opt, "--retry-for") == 0) {
            a.o.retry_for = (double)v;
        } else {
            usage();
            return 2;
        }
    }
    if (i >= argc) {
        usage();
        return 2;
    }
    const char *verb = argv[i];
    int known = strcmp(verb, "open") == 0 || strcmp(verb, "deposit") == 0 ||
                strcmp(verb, "withdraw") == 0 || strcmp(verb, "show") == 0 ||
                strcmp(verb, "decode") == 0 || strcmp(verb, "load") == 0;
    if (!known) {
        fprintf(stderr, "cairn-bank: unknown command \"%s\"\n", verb);
        usage();
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "cairn-bank: curl_global_init failed\n");
        return 2;
    }
    int code = 2;
    if (app_open(&a, strcmp(verb, "decode") != 0) == CAIRN_OK) {
        if (strcmp(verb, "decode") == 0) {
            code = cmd_decode(&a);
        } else if (strcmp(verb, "show") == 0) {
            code = cmd_show(&a, argc - i, argv + i);
        } else if (strcmp(verb, "load") == 0) {
            code = cmd_load(&a, argc - i, argv + i);
        } else {
            code = cmd_single(&a, argc - i, argv + i);
        }
    }
    app_close(&a);
    curl_global_cleanup();
    return code;
}
