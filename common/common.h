/* SPDX-License-Identifier: MIT */
/*
 * common.h - the small shared kit every module uses: error recording,
 * allocation through the hooks, logging through the hook, capped buffers and
 * string lists.
 *
 * Invariants:
 * - cairn_buf_t: `data` is NUL-terminated whenever it is non-NULL, `len`
 *   never exceeds `cap_limit`; a failed append leaves the buffer unchanged.
 * - cairn_strlist_t: `items[0..n)` are owned, NUL-terminated strings.
 */
#ifndef CAIRN_COMMON_H
#define CAIRN_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "cairn/cairn.h"

#if defined(__GNUC__)
#define CAIRN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CAIRN_PRINTF(a, b)
#endif

/* ---- errors ---------------------------------------------------------- */

/**
 * @brief Records an error in @p err (may be NULL) unless one is already
 * recorded, and returns @p code so callers can `return cairn__error_set(...)`.
 * @p where may be NULL.
 */
cairn_rc_t cairn__error_set(
    cairn_error_t *err, cairn_rc_t code, unsigned flags, const char *where, const char *fmt, ...)
    CAIRN_PRINTF(5, 6);
/** @brief Same, also recording the dependency's own code in `cause`. */
cairn_rc_t cairn__error_setc(cairn_error_t *err,
                             cairn_rc_t code,
                             int cause,
                             unsigned flags,
                             const char *where,
                             const char *fmt,
                             ...) CAIRN_PRINTF(6, 7);
/** @brief Records errno @p e as an I/O error about @p what (a path). */
cairn_rc_t cairn__error_errno(cairn_error_t *err, int e, const char *what, const char *op);

/* ---- memory ---------------------------------------------------------- */

void *cairn__malloc(size_t n);
void *cairn__calloc(size_t n, size_t size);
void *cairn__realloc(void *p, size_t n);
void cairn__free(void *p);
char *cairn__strdup(const char *s);
char *cairn__strndup(const char *s, size_t n);

/* ---- clocks (clock.c) ------------------------------------------------- */

/** @brief Wall-clock time in ms since the epoch (stored, shown). */
int64_t cairn__wall_ms(void);
/** @brief Monotonic time in ms (timeouts, intervals). */
int64_t cairn__mono_ms(void);
/** @brief Monotonic time in seconds (rates). */
double cairn__mono_s(void);
/** @brief Sleeps @p ms (nothing for ms <= 0); a signal may end it early. */
void cairn__sleep_ms(long ms);

/** @brief The value of hex digit @p c (either case), or -1 when it is none. */
int cairn__hex_digit(int c);

/* ---- logging ---------------------------------------------------------- */

void cairn__log(int level, const char *ctx, const char *fmt, ...) CAIRN_PRINTF(3, 4);
/** @brief True when a line of @p level would reach the hook (skip costly formatting). */
bool cairn__log_enabled(int level);

/* ---- capped buffers (curl's dynbuf) ---------------------------------- */

typedef struct cairn_buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap_limit; /* the most `len` may reach */
} cairn_buf_t;

void cairn_buf_init(cairn_buf_t *b, size_t cap_limit);
void cairn_buf_release(cairn_buf_t *b);
void cairn_buf_reset(cairn_buf_t *b);
/** @returns CAIRN_OK, CAIRN_E_INVALID_TOO_LARGE past the cap, CAIRN_E_NOMEM. */
cairn_rc_t cairn_buf_append(cairn_buf_t *b, const void *p, size_t n);
cairn_rc_t cairn_buf_appends(cairn_buf_t *b, const char *s);
cairn_rc_t cairn_buf_printf(cairn_buf_t *b, const char *fmt, ...) CAIRN_PRINTF(2, 3);
/** @brief Hands the bytes to the caller (free with cairn_free) and empties @p b. */
char *cairn_buf_detach(cairn_buf_t *b, size_t *len);

/* ---- string lists ---------------------------------------------------- */

typedef struct cairn_strlist {
    char **items;
    size_t n;
    size_t alloc;
} cairn_strlist_t;

void cairn_strlist_init(cairn_strlist_t *l);
void cairn_strlist_release(cairn_strlist_t *l);
cairn_rc_t cairn_strlist_push(cairn_strlist_t *l, const char *s);
/** @brief Takes ownership of @p s (allocated with cairn__malloc) even on failure. */
cairn_rc_t cairn_strlist_push_take(cairn_strlist_t *l, char *s);
cairn_rc_t cairn_strlist_pushf(cairn_strlist_t *l, const char *fmt, ...) CAIRN_PRINTF(2, 3);

/* ---- CRC32C (Castagnoli), used by the log framing --------------------- */

uint32_t cairn__crc32c(uint32_t crc, const void *data, size_t len);

#endif
