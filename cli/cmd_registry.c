/* SPDX-License-Identifier: MIT */
/*
 * cmd_registry.c - `cairn registry serve`: opens the registry's data
 * directory (its embedded log), starts the REST API and runs until SIGINT or
 * SIGTERM. Settings come from flags, then CAIRN_* environment variables,
 * then a --config file of `key = value` lines; a flag wins over the
 * environment, which wins over the file.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "cli.h"
#include "common.h"
#include "registry/registry.h"

struct serve_settings {
    char listen[300];
    char data[PATH_MAX];
    unsigned threads;
    size_t max_body;
    unsigned timeout_s;
    int no_sync;
};

static const char serve_usage[] =
    "usage: cairn registry serve [--listen HOST:PORT] [--data DIR] [--config FILE]\n"
    "                            [--threads N] [--max-body BYTES] [--timeout SECONDS]\n"
    "\n"
    "Serves the Confluent-compatible schema registry API on its embedded log.\n"
    "\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8081; env CAIRN_LISTEN)\n"
    "  --data DIR          data directory, created when absent, locked to this process\n"
    "                      (default ./cairn-data; env CAIRN_DATA)\n"
    "  --config FILE       `key = value` lines: listen, data, threads, max_body, timeout\n"
    "  --threads N         HTTP worker threads (default: number of cores)\n"
    "  --max-body BYTES    larger request bodies get 413 (default 2097152)\n"
    "  --timeout SECONDS   close connections idle or slow for this long (default 30)\n";

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int apply_setting(struct serve_settings *st, const char *key, const char *value)
{
    unsigned long long v;
    if (!strcmp(key, "listen")) {
        snprintf(st->listen, sizeof st->listen, "%s", value);
    } else if (!strcmp(key, "data")) {
        snprintf(st->data, sizeof st->data, "%s", value);
    } else if (!strcmp(key, "threads")) {
        if (parse_uint(value, 256, &v) || v == 0)
            return -1;
        st->threads = (unsigned)v;
    } else if (!strcmp(key, "max_body") || !strcmp(key, "max-body")) {
        if (parse_uint(value, 1ull << 30, &v) || v < 1024)
            return -1;
        st->max_body = (size_t)v;
    } else if (!strcmp(key, "timeout")) {
        if (parse_uint(value, 3600, &v) || v == 0)
            return -1;
        st->timeout_s = (unsigned)v;
    } else if (!strcmp(key, "no_sync") || !strcmp(key, "no-sync")) {
        /* For benchmarks of CPU cost only: acknowledges before fdatasync. */
        st->no_sync = !strcmp(value, "1") || !strcmp(value, "true");
    } else {
        return -2;
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int load_config_file(struct serve_settings *st, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cairn: cannot open config file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            fprintf(stderr, "cairn: %s:%d: expected 'key = value'\n", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(l), *value = trim(eq + 1);
        int r = apply_setting(st, key, value);
        if (r) {
            fprintf(stderr, "cairn: %s:%d: %s '%s'\n", path, lineno,
                    r == -2 ? "unknown setting" : "bad value for", key);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int split_listen(const char *listen, char *host, size_t host_size, unsigned short *port)
{
    const char *colon = strrchr(listen, ':');
    unsigned long long p;
    if (!colon || colon == listen || (size_t)(colon - listen) >= host_size ||
        parse_uint(colon + 1, 65535, &p))
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    *port = (unsigned short)p;
    return 0;
}

static int serve(int argc, char **argv)
{
    struct serve_settings st = {.listen = "127.0.0.1:8081", .data = "cairn-data"};
    const char *config = NULL;

    /* The file first, then the environment, then flags, so the later wins. */
    for (int i = 1; i < argc - 1; i++)
        if (!strcmp(argv[i], "--config"))
            config = argv[i + 1];
    if (config && load_config_file(&st, config))
        return 2;
    if (getenv("CAIRN_LISTEN"))
        apply_setting(&st, "listen", getenv("CAIRN_LISTEN"));
    if (getenv("CAIRN_DATA"))
        apply_setting(&st, "data", getenv("CAIRN_DATA"));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *key = NULL;
        if (!strcmp(a, "--listen"))
            key = "listen";
        else if (!strcmp(a, "--data"))
            key = "data";
        else if (!strcmp(a, "--threads"))
            key = "threads";
        else if (!strcmp(a, "--max-body"))
            key = "max_body";
        else if (!strcmp(a, "--timeout"))
            key = "timeout";
        else if (!strcmp(a, "--no-sync"))
            key = "no_sync";
        else if (!strcmp(a, "--config")) {
            i++;
            continue;
        } else {
            fprintf(stderr, "cairn registry serve: unknown argument '%s'\n%s", a, serve_usage);
            return 2;
        }
        if (!strcmp(key, "no_sync")) {
            apply_setting(&st, key, "1");
            continue;
        }
        if (i + 1 >= argc || apply_setting(&st, key, argv[i + 1])) {
            fprintf(stderr, "cairn registry serve: %s needs a valid value\n", a);
            return 2;
        }
        i++;
    }

    char host[256];
    unsigned short port;
    if (split_listen(st.listen, host, sizeof host, &port)) {
        fprintf(stderr, "cairn registry serve: --listen wants HOST:PORT, not '%s'\n", st.listen);
        return 2;
    }

    /* Signals are taken synchronously by this thread; workers never see them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    cairn_error_t err = {0};
    cairn_registry_t *reg = NULL;
    cairn_api_t *api = NULL;
    cairn_registry_options_t ropts = {.data_dir = st.data, .no_sync = st.no_sync};
    cairn_rc_t rc = cairn_registry_open(&ropts, &reg, &err);
    if (rc != CAIRN_OK) {
        fprintf(stderr, "level=err msg=\"cannot open registry data\" data=\"%s\" error=\"%s\"\n",
                st.data, err.text);
        return cairn_rc_exit_code(rc);
    }
    cairn_api_options_t aopts = {.listen_host = host,
                                 .port = port,
                                 .threads = st.threads,
                                 .max_body_bytes = st.max_body,
                                 .connection_timeout_s = st.timeout_s};
    rc = cairn_api_start(reg, &aopts, &api, &err);
    if (rc != CAIRN_OK) {
        fprintf(stderr, "level=err msg=\"cannot listen\" listen=\"%s\" error=\"%s\"\n", st.listen,
                err.text);
        cairn_registry_close(reg);
        return cairn_rc_exit_code(rc);
    }
    printf("level=info msg=\"registry listening\" listen=\"%s:%u\" data=\"%s\" max_id=%d\n", host,
           (unsigned)cairn_api_port(api), st.data, cairn_registry_max_id(reg));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    printf("level=info msg=\"stopping\" signal=%d\n", sig);
    fflush(stdout);
    cairn_api_stop(api);
    cairn_registry_close(reg);
    return 0;
}

int cmd_registry(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: cairn registry serve [options]\n\n%s",
                serve_usage);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "serve")) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(serve_usage, stdout);
            return 0;
        }
        return serve(argc - 1, argv + 1);
    }
    fprintf(stderr, "cairn registry: unknown subcommand '%s'\n", argv[1]);
    return 2;
}
