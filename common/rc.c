/* SPDX-License-Identifier: MIT */
/* rc.c - the accessors of the result-code table (CAIRN_RC_MAP in cairn.h). */
#include "common.h"

struct rc_row {
    cairn_rc_t rc;
    const char *name;
    const char *text;
    int http;
    int confluent;
    int exit_code;
};

static const struct rc_row rc_rows[] = {
#define ROW(name, value, http, code, exitc, text)                                                  \
    {CAIRN_##name, "CAIRN_" #name, text, http, code, exitc},
    CAIRN_RC_MAP(ROW)
#undef ROW
};

static const struct rc_row *rc_find(cairn_rc_t rc)
{
    for (size_t i = 0; i < sizeof rc_rows / sizeof rc_rows[0]; i++)
        if (rc_rows[i].rc == rc)
            return &rc_rows[i];
    /* An unknown extended code falls back to its family's row. */
    for (size_t i = 0; i < sizeof rc_rows / sizeof rc_rows[0]; i++)
        if (rc_rows[i].rc == CAIRN_RC_PRIMARY(rc))
            return &rc_rows[i];
    return NULL;
}

const char *cairn_rc_name(cairn_rc_t rc)
{
    const struct rc_row *r = rc_find(rc);
    return r ? r->name : "CAIRN_E_UNKNOWN";
}

const char *cairn_rc_str(cairn_rc_t rc)
{
    const struct rc_row *r = rc_find(rc);
    return r ? r->text : "unknown error";
}

int cairn_rc_http_status(cairn_rc_t rc)
{
    const struct rc_row *r = rc_find(rc);
    return r ? r->http : 500;
}

int cairn_rc_confluent_code(cairn_rc_t rc)
{
    const struct rc_row *r = rc_find(rc);
    return r ? r->confluent : 50001;
}

int cairn_rc_exit_code(cairn_rc_t rc)
{
    const struct rc_row *r = rc_find(rc);
    return r ? r->exit_code : 2;
}
