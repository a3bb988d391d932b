/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c - reading the log's checkpoint strings as positions, which the
 * runner needs for lag and `cairn projections wait` needs to compare.
 *
 * A projector stores the checkpoint string of the log exactly as
 * cairn_tail_checkpoint wrote it (the eventstore owns the format and reopens
 * tails from it); here we only read the next position per partition out of
 * it: "file:<position>" is partition 0, "kafka:<p>=<offset>@<epoch>,..." one
 * offset per partition. "" (no checkpoint yet) is position 0 everywhere.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "projections.h"

cairn_rc_t
cairn__pj_checkpoint_positions(const char *cp, uint64_t *pos, int npartitions, cairn_error_t *err)
{
    char *end;
    for (int i = 0; i < npartitions; i++)
        pos[i] = 0;
    if (!cp || !*cp)
        return CAIRN_OK;
    if (!strncmp(cp, "file:", 5)) {
        errno = 0;
        unsigned long long v = strtoull(cp + 5, &end, 10);
        if (errno || end == cp + 5 || *end || cp[5] == '-')
            goto bad;
        if (npartitions > 0)
            pos[0] = v;
        return CAIRN_OK;
    }
    if (!strncmp(cp, "kafka:", 6)) {
        const char *s = cp + 6;
        while (*s) {
            errno = 0;
            long p = strtol(s, &end, 10);
            if (errno || end == s || *end != '=' || p < 0)
                goto bad;
            s = end + 1;
            unsigned long long off = strtoull(s, &end, 10);
            if (errno || end == s || *end != '@' || *s == '-')
                goto bad;
            s = end + 1;
            (void)strtoull(s, &end, 10);
            if (errno || end == s || (*end && *end != ','))
                goto bad;
            if (p < npartitions)
                pos[p] = off;
            s = *end ? end + 1 : end;
        }
        return CAIRN_OK;
    }
bad:
    return cairn__error_set(
        err, CAIRN_E_INVALID, 0, cp,
        "bad checkpoint '%s' (file:<position> or kafka:<p>=<offset>@<epoch>,...)", cp);
}
