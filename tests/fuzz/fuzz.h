/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz.h: what the fuzz targets of tests/fuzz share: the entry point,
 * a cursor that reads the fuzzer's bytes as fields, and the check that
 * turns a broken property into a crash the fuzzer keeps.
 *
 * Every target is built twice by tests/fuzz/suite.mk: with libFuzzer
 * (clang) to search, and with replay.c's main() (any compiler) to replay
 * the corpus and the regression inputs in make test. Helpers are static
 * inline so that a target uses only what it needs without a warning.
 */
#ifndef SHOAL_TESTS_FUZZ_H
#define SHOAL_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer calls this once per input; replay.c once per file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sanitizers' report channel; weak, so a plain build links too. */
void __sanitizer_report_error_summary(const char *summary)
    __attribute__((weak));

/*
 * A broken property: say which and where, then trap, so that libFuzzer
 * saves the input as a crash and replay.c names the file. The line goes
 * where sanitizer reports go, which stays open when the target's own
 * output is silenced (-close_fd_mask, replay -q). This checks the code
 * under test, never the input.
 */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fuzz_fail(#cond, __FILE__, __LINE__);                              \
        }                                                                      \
    } while (0)

static inline _Noreturn void
fuzz_fail(const char *what, const char *file, int line)
{
    char msg[512];

    snprintf(msg, sizeof msg, "fuzz: property broken: %s (%s:%d)", what, file,
             line);
    if (__sanitizer_report_error_summary) {
        __sanitizer_report_error_summary(msg);
    } else {
        fprintf(stderr, "%s\n", msg);
    }
    __builtin_trap();
}

/* The bytes not read yet. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

/* Take n bytes; false (and nothing taken) when fewer are left. */
static inline bool
fuzz_take(struct fuzz_in *in, size_t n, const uint8_t **out)
{
    if (in->n < n) {
        return false;
    }
    *out = in->p;
    in->p += n;
    in->n -= n;
    return true;
}

/* The next byte, or 0 once the input is used up. */
static inline uint8_t
fuzz_u8(struct fuzz_in *in)
{
    const uint8_t *p;

    return fuzz_take(in, 1, &p) ? p[0] : 0;
}

/* The next two bytes, little-endian; missing bytes count as 0. */
static inline uint16_t
fuzz_u16(struct fuzz_in *in)
{
    uint16_t lo = fuzz_u8(in);

    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

/*
 * A length-prefixed field: a u16 length, then at most that many bytes
 * (fewer when the input ends first). Returns false once nothing is left.
 */
static inline bool
fuzz_field(struct fuzz_in *in, const uint8_t **out, size_t *len)
{
    size_t want;

    if (in->n == 0) {
        return false;
    }
    want = fuzz_u16(in);
    *len = want < in->n ? want : in->n;
    *out = in->p;
    in->p += *len;
    in->n -= *len;
    return true;
}

/*
 * A malloc'd NUL-terminated copy of the first n bytes of p, cut at the
 * first NUL; NULL when out of memory. The exact size lets ASan see a
 * read past the terminator.
 */
static inline char *
fuzz_str(const uint8_t *p, size_t n)
{
    size_t len = strnlen((const char *)p, n);
    char *s = malloc(len + 1);

    if (s) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* True when all n bytes at p are zero: an object left empty. */
static inline bool
fuzz_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

#endif
