/* SPDX-License-Identifier: MIT */
/*
 * log.c - libraries never print: lines go to the hook set by the program.
 * The default hook writes WARNING and worse to stderr as key=value lines.
 */
#include <stdio.h>

#include "common.h"

static void stderr_hook(void *opaque, int level, const char *ctx, const char *msg)
{
    (void)opaque;
    static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                        "warning", "notice", "info", "debug"};
    const char *name = level >= 0 && level <= 7 ? names[level] : "info";
    fprintf(stderr, "level=%s ctx=%s msg=\"%s\"\n", name, ctx, msg);
}

static cairn_log_hook_t *log_hook = stderr_hook;
static void *log_opaque;
static int log_max_level = CAIRN_LOG_WARNING;

void cairn_set_log_hook(cairn_log_hook_t *hook, void *opaque, int max_level)
{
    log_hook = hook ? hook : stderr_hook;
    log_opaque = opaque;
    log_max_level = max_level;
}

bool cairn__log_enabled(int level)
{
    return level <= log_max_level;
}

void cairn__log(int level, const char *ctx, const char *fmt, ...)
{
    if (!cairn__log_enabled(level))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_hook(log_opaque, level, ctx, line);
}
