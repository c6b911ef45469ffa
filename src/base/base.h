/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * base.h: the bottom module's whole face: error codes, assertions,
 * logging, time and ids.
 *
 * Every other module may include this header; it includes nothing of
 * shoal's own but the public status codes. Error codes are negative ints:
 * -errno for system calls, enum err_code for our own conditions.
 */
#ifndef SHOAL_BASE_BASE_H
#define SHOAL_BASE_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/status.h"

/* Our own failure codes start far below any errno so the two never mix. */
enum err_code {
    ERR_AGAIN = -10000, /* not yet: more input or a later turn is needed */
    ERR_PROTO,          /* the peer broke the protocol */
    ERR_NOMEM,          /* an allocation failed */
    ERR_CORRUPT,        /* bytes on disk fail their checksum or layout */
    ERR_TOOBIG,         /* a length is over its limit */
    ERR_TLS,            /* OpenSSL failed; its queue was logged */
    ERR_BADSTATE,       /* the call is not valid in the current state */
    ERR_NOTFOUND,       /* no such key */
    ERR_EXISTS,         /* the key is taken */
    ERR_CLOSED,         /* the other end is gone */
};

/*
 * Name an error code, errno or ours. Returns a static string, never NULL.
 */
const char *err_str(int rc);

/* Always compiled in: a broken invariant of our own code is worse than a
 * restart. Never used on bytes that come from outside. */
#define ASSERT(cond)                                                       \
    do {                                                                   \
        if (!(cond)) {                                                     \
            base_assert_fail(#cond, __FILE__, __LINE__, __func__);         \
        }                                                                  \
    } while (0)

#define ASSERT_UNREACHABLE() base_assert_fail("unreachable", __FILE__,    \
                                              __LINE__, __func__)

/*
 * Log the failed expression at crit with its place, then abort(). Never
 * returns.
 */
_Noreturn void base_assert_fail(const char *expr, const char *file, int line,
                                const char *func);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Logging: one line per event, "time level module: message: k=v ...". */
enum log_level {
    LOG_CRIT,
    LOG_ERR,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG_LEVEL,
};

/*
 * Parse a level name ("crit", "err"/"error", "warn"/"warning", "notice",
 * "info", "debug"). Returns 0 and sets *out, or -EINVAL.
 */
int log_level_parse(const char *name, enum log_level *out);

/*
 * Send log lines to the file at path (appended, created 0600) instead of
 * stderr, or back to stderr when path is NULL. Called again with the same
 * path, it reopens the file: the way to follow a log rotation. Returns 0
 * or -errno (the previous destination stays).
 */
int log_open_file(const char *path);

/* Set the most verbose level written. Default: LOG_NOTICE. */
void log_set_level(enum log_level level);

/* Return the current level. */
enum log_level log_get_level(void);

/*
 * Write one log line to stderr if level is enabled. module is a short
 * lowercase name; fmt has no trailing newline. Never fails: a short write
 * is dropped.
 */
void log_write(enum log_level level, const char *module, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));

#define log_crit(m, ...) log_write(LOG_CRIT, m, __VA_ARGS__)
#define log_err(m, ...) log_write(LOG_ERR, m, __VA_ARGS__)
#define log_warn(m, ...) log_write(LOG_WARN, m, __VA_ARGS__)
#define log_notice(m, ...) log_write(LOG_NOTICE, m, __VA_ARGS__)
#define log_info(m, ...) log_write(LOG_INFO, m, __VA_ARGS__)

/* Debug lines cost nothing when off: the arguments are not evaluated. */
#define log_debug(m, ...)                                                  \
    do {                                                                   \
        if (log_get_level() >= LOG_DEBUG_LEVEL) {                          \
            log_write(LOG_DEBUG_LEVEL, m, __VA_ARGS__);                    \
        }                                                                  \
    } while (0)

/* Time. */

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t time_now_ns(void);

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and timers. */
uint64_t time_mono_ms(void);

/* Ids. */

#define ID_LEN 25 /* characters of an object id, without the NUL */

/*
 * Write a fresh random object id (25 lowercase base-36 characters and a
 * NUL) into out. Returns 0, or ERR_TLS when the random source fails.
 */
int id_new(char out[ID_LEN + 1]);

/*
 * Fill buf with n cryptographically random bytes. Returns 0 or ERR_TLS.
 */
int rand_bytes(void *buf, size_t n);

/* Strings. */

/*
 * Return a malloc'd copy of s, or NULL when s is NULL or memory runs out.
 * Transferred: the caller frees it.
 */
char *str_dup(const char *s);

/*
 * Return a malloc'd printf-style string, or NULL on failure. Transferred.
 */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Case-insensitive ASCII compare, for names unique in any case. */
int str_casecmp(const char *a, const char *b);

#endif
