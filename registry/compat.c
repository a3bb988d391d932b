/* SPDX-License-Identifier: MIT */
/*
 * compat.c - applying a compatibility level to a candidate schema and the
 * earlier versions of a subject, independently of the schema format.
 *
 * Which versions: non-transitive levels compare with the newest earlier
 * version only, transitive ones with every earlier version. Direction:
 * BACKWARD asks whether the candidate (reader) reads data written with the
 * old schema (writer); FORWARD whether the old schema reads the candidate's
 * data; FULL asks both (backward reasons first). Old versions are checked
 * newest first, as Confluent's checker walks them, and every failing one
 * contributes its reasons followed by `{oldSchemaVersion: N}`,
 * `{oldSchema: '<canonical>'}` and `{compatibility: 'LEVEL'}` (Confluent 7.x
 * verbose form; Confluent stops at the first failing version, we report all
 * of them so that a CI job sees every conflict at once). Schemas of different
 * formats are never compatible.
 */
#include <string.h>

#include "format.h"

static cairn_rc_t
check_one(const cairn_schema_t *reader, const cairn_schema_t *writer, cairn_strlist_t *reasons)
{
    if (reader->format != writer->format) {
        if (reasons && cairn_strlist_push(
                           reasons, "Incompatible because of different schema type") != CAIRN_OK)
            return CAIRN_E_NOMEM;
        return CAIRN_E_INCOMPATIBLE;
    }
    return reader->format->can_read(reader, writer, reasons);
}

cairn_rc_t cairn_compat_check(cairn_compat_level_t level,
                              const cairn_schema_t *candidate,
                              const cairn_schema_t *const *previous,
                              const int *previous_versions,
                              size_t nprevious,
                              cairn_strlist_t *reasons)
{
    cairn_rc_t rc = CAIRN_OK;
    bool backward = false, forward = false, transitive = false;

    switch (level) {
    case CAIRN_COMPAT_NONE:
        return CAIRN_OK;
    case CAIRN_COMPAT_BACKWARD:
    case CAIRN_COMPAT_BACKWARD_TRANSITIVE:
        backward = true;
        break;
    case CAIRN_COMPAT_FORWARD:
    case CAIRN_COMPAT_FORWARD_TRANSITIVE:
        forward = true;
        break;
    case CAIRN_COMPAT_FULL:
    case CAIRN_COMPAT_FULL_TRANSITIVE:
        backward = forward = true;
        break;
    default:
        return CAIRN_E_INVALID_LEVEL;
    }
    transitive = level == CAIRN_COMPAT_BACKWARD_TRANSITIVE ||
                 level == CAIRN_COMPAT_FORWARD_TRANSITIVE || level == CAIRN_COMPAT_FULL_TRANSITIVE;
    if (!candidate || nprevious == 0)
        return CAIRN_OK;

    size_t stop = transitive ? 0 : nprevious - 1;
    for (size_t i = nprevious; i-- > stop;) {
        const cairn_schema_t *old = previous[i];
        bool failed = false;
        cairn_rc_t r;

        if (!old)
            continue;
        if (backward) {
            r = check_one(candidate, old, reasons);
            if (r == CAIRN_E_NOMEM) {
                rc = r;
                goto out;
            }
            failed |= r != CAIRN_OK;
        }
        if (forward) {
            r = check_one(old, candidate, reasons);
            if (r == CAIRN_E_NOMEM) {
                rc = r;
                goto out;
            }
            failed |= r != CAIRN_OK;
        }
        if (!failed)
            continue;
        rc = CAIRN_E_INCOMPATIBLE;
        if (!reasons)
            continue;
        int version = previous_versions ? previous_versions[i] : (int)i + 1;
        if (cairn_strlist_pushf(reasons, "{oldSchemaVersion: %d}", version) != CAIRN_OK ||
            cairn_strlist_pushf(reasons, "{oldSchema: '%s'}",
                                old->canonical ? old->canonical : "") != CAIRN_OK ||
            cairn_strlist_pushf(reasons, "{compatibility: '%s'}", cairn_compat_level_name(level)) !=
                CAIRN_OK) {
            rc = CAIRN_E_NOMEM;
            goto out;
        }
    }
out:
    return rc;
}
