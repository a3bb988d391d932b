/* SPDX-License-Identifier: MIT */
/*
 * uuid.c - random (version 4, RFC 9562) UUIDs for event ids and generated
 * command ids. The bytes come from getrandom(2), which blocks only until the
 * kernel's pool is first initialised and never fails short for 16 bytes; a
 * UUID is never made from a weaker source, since event ids must not collide
 * across processes.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

#include "sdk_int.h"

cairn_rc_t cairn_uuid_new(char buf[CAIRN_UUID_LEN + 1], cairn_error_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t got = 0;
    size_t o = 0;
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            buf[0] = '\0';
            return cairn__error_errno(err, errno, "getrandom", "read");
        }
        got += (size_t)r;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[o++] = '-';
        buf[o++] = hex[b[i] >> 4];
        buf[o++] = hex[b[i] & 0x0f];
    }
    buf[o] = '\0';
    return CAIRN_OK;
}
