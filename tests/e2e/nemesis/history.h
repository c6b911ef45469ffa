/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * history.h: the operation log of the nemesis workloads: writing it while
 * clients run, and reading it back as paired operations for the checkers.
 *
 * One event a line, fields separated by single spaces:
 *
 *     <phase> <client> <op> <key> <args...> <time>
 *
 * phase is invoke, ok, fail (definitely did not happen) or info (outcome
 * unknown); client, op, key and every argument are tokens without spaces;
 * time is a decimal count of nanoseconds on one monotonic clock shared by
 * every client of the run. A client has at most one operation in flight:
 * each ok, fail or info closes the invoke of the same client, op and key
 * before it. An invoke still open at the end of the file counts as info.
 * Lines that are empty or start with '#' are comments.
 */
#ifndef SHOAL_TESTS_NEMESIS_HISTORY_H
#define SHOAL_TESTS_NEMESIS_HISTORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum nem_phase {
    NEM_INVOKE,
    NEM_OK,
    NEM_FAIL,
    NEM_INFO,
};

/* The completion time of an operation whose outcome is unknown. */
#define NEM_TIME_NEVER INT64_MAX

/* An invocation paired with its completion. The strings point into the
 * struct nem_hist that holds the op. */
struct nem_op {
    const char *client;
    const char *op;
    const char *key;
    char **in_args; /* the arguments of the invoke line */
    size_t n_in;
    char **out_args; /* those of the completion line (any phase) */
    size_t n_out;
    enum nem_phase outcome; /* NEM_OK, NEM_FAIL or NEM_INFO */
    int64_t inv;            /* time of the invoke */
    int64_t ret;            /* time of an ok or fail; NEM_TIME_NEVER
                               for info */
    size_t line_inv;        /* 1-based line numbers, for messages */
    size_t line_ret;        /* 0 when never completed */
};

/* A parsed history: every operation, in the order of their invokes. */
struct nem_hist {
    struct nem_op *ops;
    size_t n;
    size_t cap;
    char **lines;  /* owned line buffers that ops point into */
    char ***argvs; /* owned argument arrays */
    size_t n_lines;
    size_t cap_lines;
};

/*
 * Read a whole history from f into h (which the caller zeroes first).
 * f is borrowed. Returns 0; -EINVAL for a malformed line or an event that
 * breaks the pairing rules, with a message naming the line in err (errlen
 * bytes, may be 0); -ENOMEM. On failure h holds what was read so far and
 * must still be freed with nem_hist_fini.
 */
int nem_hist_read(FILE *f, struct nem_hist *h, char *err, size_t errlen);

/* As nem_hist_read, from the file at path (-errno when it cannot be
 * opened). */
int nem_hist_load(const char *path, struct nem_hist *h, char *err,
                  size_t errlen);

/* Free what h holds and zero it. A zeroed h is a no-op. */
void nem_hist_fini(struct nem_hist *h);

/* The name of a phase as written in the log ("invoke", "ok", ...). */
const char *nem_phase_name(enum nem_phase ph);

/* ---- Recording --------------------------------------------------------- */

/* A history being written by the clients of a run, possibly from several
 * threads: each event is stamped and written under one lock, so the times
 * in the file never go backwards. */
struct nem_rec {
    FILE *f;
    pthread_mutex_t mu;
};

/*
 * Create (truncate) the log at path. Returns 0 or -errno.
 */
int nem_rec_open(struct nem_rec *r, const char *path);

/*
 * Append one event, stamped now. args is one string of space-separated
 * tokens (borrowed, may be NULL or ""). Call it for an invoke before the
 * request leaves and for a completion after the reply arrived: a stamp
 * taken late only widens the operation's interval, which can hide an
 * anomaly but never invent one. Each line is flushed, so that a run that
 * dies keeps its history. Returns 0, -EINVAL when a token holds a space
 * or a newline, or -errno of the write.
 */
int nem_rec_event(struct nem_rec *r, enum nem_phase ph, const char *client,
                  const char *op, const char *key, const char *args);

/* Flush and close. Returns 0 or -errno of the final flush. */
int nem_rec_close(struct nem_rec *r);

/* Nanoseconds on the monotonic clock, the time base of the log. */
int64_t nem_now_ns(void);

#endif
