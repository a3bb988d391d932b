/* SPDX-License-Identifier: MIT */
/*
 * test_service_fixture.h - what the service tests share: a real registry
 * (the registry service over a temporary directory and the REST API on a
 * free port, in the test process), a registry client and serde against it,
 * a temporary directory for the file log, and a bank-account aggregate
 * defined here with plain callbacks that count their calls.
 *
 * The account: events Opened{owner}, Deposited{amount}, Withdrawn{amount};
 * commands Open{owner, kind: CHECKING|SAVINGS}, Deposit{amount},
 * Withdraw{amount}. Withdrawing more than the balance is rejected with
 * INSUFFICIENT_FUNDS, depositing to an unopened account with NOT_OPEN.
 */
#ifndef CAIRN_TEST_SERVICE_FIXTURE_H
#define CAIRN_TEST_SERVICE_FIXTURE_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "api/api.h"
#include "cairn/sdk.h"
#include "registry/registry.h"

/* Each test file uses a part of this kit. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define NS "test.bank"

#define EV_OPENED                                                                                  \
    "{\"type\":\"record\",\"name\":\"Opened\",\"namespace\":\"" NS "\",\"fields\":["               \
    "{\"name\":\"owner\",\"type\":\"string\"}]}"
#define EV_DEPOSITED                                                                               \
    "{\"type\":\"record\",\"name\":\"Deposited\",\"namespace\":\"" NS "\",\"fields\":["            \
    "{\"name\":\"amount\",\"type\":\"long\"}]}"
#define EV_WITHDRAWN                                                                               \
    "{\"type\":\"record\",\"name\":\"Withdrawn\",\"namespace\":\"" NS "\",\"fields\":["            \
    "{\"name\":\"amount\",\"type\":\"long\"}]}"
#define CMD_OPEN                                                                                   \
    "{\"type\":\"record\",\"name\":\"Open\",\"namespace\":\"" NS ".cmd\",\"fields\":["             \
    "{\"name\":\"owner\",\"type\":\"string\"},"                                                    \
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","                            \
    "\"symbols\":[\"CHECKING\",\"SAVINGS\"]}}]}"
#define CMD_DEPOSIT                                                                                \
    "{\"type\":\"record\",\"name\":\"Deposit\",\"namespace\":\"" NS ".cmd\",\"fields\":["          \
    "{\"name\":\"amount\",\"type\":\"long\"}]}"
#define CMD_WITHDRAW                                                                               \
    "{\"type\":\"record\",\"name\":\"Withdraw\",\"namespace\":\"" NS ".cmd\",\"fields\":["         \
    "{\"name\":\"amount\",\"type\":\"long\"}]}"

struct account {
    int opened;
    long long balance;
    char owner[64];
    char last_memo[64]; /* the "memo" of the last Deposited, when it had one */
    int memos;          /* Deposited events that had a memo */
};

/* The aggregate's opaque: counters the tests read. */
struct bank {
    atomic_long applies;
    atomic_long decides;
    /* Called once from decide when set (then cleared): lets a test act
       between a load and its append. */
    void (*on_decide)(struct bank *b);
    void *on_decide_arg;
};

static void *acct_init(void *opaque, const char *stream)
{
    (void)opaque;
    (void)stream;
    return calloc(1, sizeof(struct account));
}

static void acct_free(void *opaque, void *state)
{
    (void)opaque;
    free(state);
}

static cairn_rc_t
acct_apply(void *opaque, void *state, const char *type, const json_t *ev, cairn_error_t *err)
{
    struct bank *b = opaque;
    struct account *a = state;
    (void)err;
    atomic_fetch_add(&b->applies, 1);
    if (strcmp(type, "Opened") == 0) {
        a->opened = 1;
        snprintf(a->owner, sizeof a->owner, "%s", json_string_value(json_object_get(ev, "owner")));
    } else if (strcmp(type, "Deposited") == 0) {
        const json_t *memo = json_object_get(ev, "memo");
        a->balance += json_integer_value(json_object_get(ev, "amount"));
        if (json_is_string(memo) && ++a->memos)
            snprintf(a->last_memo, sizeof a->last_memo, "%s", json_string_value(memo));
    } else if (strcmp(type, "Withdrawn") == 0) {
        a->balance -= json_integer_value(json_object_get(ev, "amount"));
    } else {
        return CAIRN_E_INVALID;
    }
    return CAIRN_OK;
}

static cairn_rc_t acct_decide(void *opaque,
                              const void *state,
                              const char *type,
                              const json_t *cmd,
                              cairn_emitter_t *out,
                              cairn_error_t *err)
{
    struct bank *b = opaque;
    const struct account *a = state;
    (void)err;
    atomic_fetch_add(&b->decides, 1);
    if (b->on_decide) {
        void (*fn)(struct bank *) = b->on_decide;
        b->on_decide = NULL;
        fn(b);
    }
    if (strcmp(type, "Open") == 0) {
        if (a->opened)
            return cairn_reject(out, "ALREADY_OPEN", "account is open already");
        return cairn_emit_take(out, "Opened",
                               json_pack("{s:O}", "owner", json_object_get(cmd, "owner")));
    }
    json_int_t amount = json_integer_value(json_object_get(cmd, "amount"));
    if (!a->opened)
        return cairn_reject(out, "NOT_OPEN", "account is not open");
    if (strcmp(type, "Deposit") == 0) {
        json_t *ev = json_pack("{s:I}", "amount", amount);
        if (json_object_get(cmd, "memo")) /* v2 commands carry a memo to the v2 event */
            json_object_set(ev, "memo", json_object_get(cmd, "memo"));
        return cairn_emit_take(out, "Deposited", ev);
    }
    if (a->balance < amount)
        return cairn_reject(out, "INSUFFICIENT_FUNDS", "balance %lld is below %lld", a->balance,
                            (long long)amount);
    return cairn_emit_take(out, "Withdrawn", json_pack("{s:I}", "amount", amount));
}

static json_t *acct_to_json(void *opaque, const void *state)
{
    const struct account *a = state;
    (void)opaque;
    return json_pack("{s:b, s:I, s:s, s:s, s:i}", "opened", a->opened, "balance",
                     (json_int_t)a->balance, "owner", a->owner, "last_memo", a->last_memo, "memos",
                     a->memos);
}

static void *acct_from_json(void *opaque, const json_t *j)
{
    struct account *a;
    (void)opaque;
    if (!json_is_integer(json_object_get(j, "balance")))
        return NULL;
    a = calloc(1, sizeof *a);
    a->opened = json_is_true(json_object_get(j, "opened"));
    a->balance = json_integer_value(json_object_get(j, "balance"));
    snprintf(a->owner, sizeof a->owner, "%s", json_string_value(json_object_get(j, "owner")));
    snprintf(a->last_memo, sizeof a->last_memo, "%s",
             json_string_value(json_object_get(j, "last_memo")));
    a->memos = (int)json_integer_value(json_object_get(j, "memos"));
    return a;
}

static const cairn_event_type_t acct_events[] = {
    {.name = "Opened", .schema = EV_OPENED},
    {.name = "Deposited", .schema = EV_DEPOSITED},
    {.name = "Withdrawn", .schema = EV_WITHDRAWN},
};
static const cairn_command_type_t acct_commands[] = {
    {.name = "Open", .schema = CMD_OPEN},
    {.name = "Deposit", .schema = CMD_DEPOSIT},
    {.name = "Withdraw", .schema = CMD_WITHDRAW},
};

static cairn_aggregate_def_t acct_def(struct bank *b)
{
    cairn_aggregate_def_t d = {
        .name = "account",
        .code_version = 1,
        .events = acct_events,
        .n_events = 3,
        .commands = acct_commands,
        .n_commands = 3,
        .opaque = b,
        .init = acct_init,
        .apply = acct_apply,
        .decide = acct_decide,
        .free_state = acct_free,
        .state_to_json = acct_to_json,
        .state_from_json = acct_from_json,
    };
    return d;
}

/* ---- the registry and a client ------------------------------------------- */

struct fx {
    char regdir[64];
    char dir[64]; /* the log's directory */
    char url[128];
    cairn_registry_t *reg;
    cairn_api_t *api;
    char base[64];
    cairn_registry_client_t *client;
    cairn_serde_t *serde;
    struct bank bank;
};

static int fx_registry_start(struct fx *f)
{
    cairn_error_t err = {0};
    cairn_registry_options_t ro = {.data_dir = f->regdir, .no_sync = 1};
    if (cairn_registry_open(&ro, &f->reg, &err) != CAIRN_OK) {
        fprintf(stderr, "registry open: %s\n", err.text);
        return -1;
    }
    cairn_api_options_t ao = {.listen_host = "127.0.0.1", .port = 0, .threads = 2};
    if (cairn_api_start(f->reg, &ao, &f->api, &err) != CAIRN_OK) {
        fprintf(stderr, "api start: %s\n", err.text);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)cairn_api_port(f->api));
    return 0;
}

/* Stops the REST server (the registry goes away for clients). */
static void fx_registry_stop(struct fx *f)
{
    cairn_api_stop(f->api);
    f->api = NULL;
}

/* A new client + serde against the fixture's registry. */
static int fx_client(struct fx *f, cairn_registry_client_t **c, cairn_serde_t **s)
{
    cairn_error_t err = {0};
    cairn_registry_client_options_t co = {.url = f->base,
                                          .timeout_ms = 500,
                                          .connect_timeout_ms = 300,
                                          .max_retries = 1,
                                          .backoff_ms = 50};
    if (cairn_registry_client_new(&co, c, &err) != CAIRN_OK ||
        cairn_serde_new(*c, NULL, s, &err) != CAIRN_OK) {
        fprintf(stderr, "client: %s\n", err.text);
        return -1;
    }
    return 0;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->regdir, sizeof f->regdir, "/tmp/cairn-sdk-reg-XXXXXX");
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-sdk-log-XXXXXX");
    if (!mkdtemp(f->regdir) || !mkdtemp(f->dir))
        return -1;
    snprintf(f->url, sizeof f->url, "file:%s", f->dir);
    if (fx_registry_start(f) != 0 || fx_client(f, &f->client, &f->serde) != 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[256];
    cairn_serde_destroy(f->serde);
    cairn_registry_client_destroy(f->client);
    if (f->api)
        cairn_api_stop(f->api);
    cairn_registry_close(f->reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", f->regdir, f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* A service over the fixture's file log (opened by URL) with @p every snapshots. */
static cairn_service_t *fx_service(struct fx *f, cairn_serde_t *serde, unsigned every)
{
    cairn_error_t err = {0};
    cairn_service_t *svc = NULL;
    cairn_service_options_t so = {.log_url = f->url,
                                  .serde = serde ? serde : f->serde,
                                  .topic = "bank",
                                  .snapshot_every = every};
    cairn_log_options_t lo = {.no_sync = 1};
    so.log_options = &lo;
    if (cairn_service_new(&so, &svc, &err) != CAIRN_OK)
        fprintf(stderr, "service: %s\n", err.text);
    return svc;
}

static cairn_aggregate_t *fx_account(cairn_service_t *svc, struct bank *b)
{
    cairn_error_t err = {0};
    cairn_aggregate_t *agg = NULL;
    cairn_aggregate_def_t d = acct_def(b);
    if (cairn_service_add_aggregate(svc, &d, &agg, &err) != CAIRN_OK)
        fprintf(stderr, "add aggregate: %s (%s)\n", err.text, err.where);
    return agg;
}

/* Sends one command; body is JSON text. */
static cairn_rc_t send_cmd(cairn_aggregate_t *agg,
                           const char *stream,
                           const char *type,
                           const char *body,
                           const char *id,
                           cairn_result_t *res,
                           cairn_error_t *err)
{
    json_t *j = json_loads(body, 0, NULL);
    cairn_command_t c = {.stream = stream, .type = type, .body = j, .id = id};
    cairn_rc_t rc = cairn_handle(agg, &c, res, err);
    json_decref(j);
    return rc;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
