/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * base.c: error names, assertions, time, ids and small string helpers.
 *
 * Depends only on libc and OpenSSL's random source. Ids are drawn from
 * RAND_bytes so that they are safe to use as capability-like handles.
 */
#include "base/base.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

const char *
err_str(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case ERR_AGAIN:
        return "try again";
    case ERR_PROTO:
        return "protocol error";
    case ERR_NOMEM:
        return "out of memory";
    case ERR_CORRUPT:
        return "corrupt data";
    case ERR_TOOBIG:
        return "over the size limit";
    case ERR_TLS:
        return "tls or crypto failure";
    case ERR_BADSTATE:
        return "invalid in this state";
    case ERR_NOTFOUND:
        return "not found";
    case ERR_EXISTS:
        return "already exists";
    case ERR_CLOSED:
        return "connection closed";
    default:
        break;
    }
    if (rc < 0 && rc > -4096) {
        return strerror(-rc);
    }
    return "unknown error";
}

const char *
shoal_status_name(int code)
{
    static const char *const names[] = {
        [SHOAL_OK] = "ok",
        [SHOAL_CANCELLED] = "cancelled",
        [SHOAL_INVALID_ARGUMENT] = "invalid_argument",
        [SHOAL_DEADLINE_EXCEEDED] = "deadline_exceeded",
        [SHOAL_NOT_FOUND] = "not_found",
        [SHOAL_ALREADY_EXISTS] = "already_exists",
        [SHOAL_PERMISSION_DENIED] = "permission_denied",
        [SHOAL_RESOURCE_EXHAUSTED] = "resource_exhausted",
        [SHOAL_FAILED_PRECONDITION] = "failed_precondition",
        [SHOAL_CONFLICT] = "conflict",
        [SHOAL_OUT_OF_RANGE] = "out_of_range",
        [SHOAL_UNIMPLEMENTED] = "unimplemented",
        [SHOAL_INTERNAL] = "internal",
        [SHOAL_UNAVAILABLE] = "unavailable",
    };

    if (code < 0 || (size_t)code >= ARRAY_LEN(names) || !names[code]) {
        return "unknown";
    }
    return names[code];
}

void
base_assert_fail(const char *expr, const char *file, int line,
                 const char *func)
{
    log_crit("base", "assertion failed: expr=\"%s\" at=%s:%d func=%s", expr,
             file, line, func);
    abort();
}

int64_t
time_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t
time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
rand_bytes(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1) {
        return ERR_TLS;
    }
    return 0;
}

/*
 * An id is 128 random bits written in base 36, as SwarmKit does, so that
 * ids from either system look alike: 25 digits hold 36^25 > 2^128 values.
 */
int
id_new(char out[ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t raw[16];
    int rc;

    rc = rand_bytes(raw, sizeof raw);
    if (rc != 0) {
        return rc;
    }

    /* Long division of the 128-bit number by 36, one digit at a time. */
    for (int pos = ID_LEN - 1; pos >= 0; pos--) {
        unsigned rem = 0;

        for (size_t i = 0; i < sizeof raw; i++) {
            unsigned cur = rem * 256 + raw[i];

            raw[i] = (uint8_t)(cur / 36);
            rem = cur % 36;
        }
        out[pos] = digits[rem];
    }
    out[ID_LEN] = '\0';
    return 0;
}

char *
str_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *
str_printf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&out, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

int
str_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = tolower((unsigned char)*a);
        int cb = tolower((unsigned char)*b);

        if (ca != cb || ca == 0) {
            return ca - cb;
        }
    }
}
