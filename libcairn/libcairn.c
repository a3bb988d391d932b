/* SPDX-License-Identifier: MIT */
/*
 * libcairn.c - what only the shared library has: its own version, which a
 * program may compare with the CAIRN_VERSION_* it was compiled against.
 * Everything else in libcairn.so comes from the module libraries linked
 * whole into it (libcairn/CMakeLists.txt).
 */
#include "cairn/cairn.h"

const char *cairn_version(void)
{
    return CAIRN_VERSION_STR;
}
