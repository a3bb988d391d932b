/* SPDX-License-Identifier: MIT */
/*
 * main.c - the `cairn` program: a table of subcommands (git's builtin/), each
 * in cli/cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/cairn.h"
#include "cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"registry", cmd_registry, "run the schema registry (serve)"},
    {"schema", cmd_schema, "check, register and get schemas (what CI jobs run)"},
    {"events", cmd_events, "append, read, tail and copy records of an event log"},
    {"projections", cmd_projections, "keep read models in PostgreSQL and Redis"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: cairn <command> [<args>]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cairn <command> --help' tells more. cairn %s\n", CAIRN_VERSION_STR);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return 0;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    }
    return 0;
}

int cli_dispatch(
    const char *cmd, const char *usage, const cli_sub_t *subs, size_t nsubs, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(argv[1], subs[i].name))
            continue;
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(subs[i].usage, stdout);
            return 0;
        }
        return subs[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "cairn %s: unknown subcommand '%s'; see 'cairn %s --help'\n", cmd, argv[1],
            cmd);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cairn %s\n", CAIRN_VERSION_STR);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cairn: '%s' is not a command; see 'cairn --help'\n", argv[1]);
    return 2;
}
