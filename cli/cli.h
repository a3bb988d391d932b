/* SPDX-License-Identifier: MIT */
/*
 * cli.h - the subcommands of `cairn`. Each takes argv from its own name on
 * (argv[0] = "registry") and returns the process exit code: 0 ok, 1 the
 * answer is "no" (incompatible), 2 error, 3 version conflict.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stddef.h>

int cmd_registry(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_projections(int argc, char **argv);

/** @brief True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

/** A subcommand of a command with several (`cairn events append`). */
typedef struct cli_sub {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
    const char *usage;
} cli_sub_t;

/**
 * @brief Runs the subcommand argv[1] of command @p cmd: the command's
 * @p usage for none (exit 2) or -h/--help (exit 0), the subcommand's for
 * `<sub> --help`, an error naming an unknown one (exit 2).
 */
int cli_dispatch(
    const char *cmd, const char *usage, const cli_sub_t *subs, size_t nsubs, int argc, char **argv);

#endif
