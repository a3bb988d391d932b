/* SPDX-License-Identifier: MIT */
/*
 * cli.h - the subcommands of `cairn`. Each takes argv from its own name on
 * (argv[0] = "registry") and returns the process exit code: 0 ok, 1 the
 * answer is "no" (incompatible), 2 error, 3 version conflict.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

int cmd_registry(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_projections(int argc, char **argv);

/** @brief True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

#endif
