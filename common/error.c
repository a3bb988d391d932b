/* SPDX-License-Identifier: MIT */
/* error.c - recording failures in a caller's cairn_error_t; the first wins. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

CAIRN_PRINTF(6, 0)
static cairn_rc_t error_vset(cairn_error_t *err,
                             cairn_rc_t code,
                             int cause,
                             unsigned flags,
                             const char *where,
                             const char *fmt,
                             va_list ap)
{
    if (!err || err->code != CAIRN_OK)
        return code;
    err->code = code;
    err->cause = cause;
    err->flags = flags;
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
    if (fmt)
        vsnprintf(err->text, sizeof err->text, fmt, ap);
    else
        snprintf(err->text, sizeof err->text, "%s", cairn_rc_str(code));
    return code;
}

cairn_rc_t cairn__error_set(
    cairn_error_t *err, cairn_rc_t code, unsigned flags, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, 0, flags, where, fmt, ap);
    va_end(ap);
    return code;
}

cairn_rc_t cairn__error_setc(cairn_error_t *err,
                             cairn_rc_t code,
                             int cause,
                             unsigned flags,
                             const char *where,
                             const char *fmt,
                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, cause, flags, where, fmt, ap);
    va_end(ap);
    return code;
}

cairn_rc_t cairn__error_errno(cairn_error_t *err, int e, const char *what, const char *op)
{
    cairn_rc_t code = e == ENOMEM ? CAIRN_E_NOMEM : CAIRN_E_IO;
    unsigned flags = (e == EINTR || e == EAGAIN) ? CAIRN_ERR_RETRIABLE : 0;
    return cairn__error_setc(err, code, e, flags, what, "%s '%s' failed: %s", op, what ? what : "",
                             strerror(e));
}
