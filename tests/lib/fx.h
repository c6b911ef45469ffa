/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fx.h: fixtures of the end-to-end tests: real shoald processes in
 * temporary directories, and shoalctl runs with their output captured.
 *
 * A daemon is waited for through its readiness notification (the
 * sd_notify protocol on a socket of the test's own), never by sleeping.
 * The binaries come from $SHOALD and $SHOALCTL (set by make check-e2e).
 */
#ifndef SHOAL_TESTS_FX_H
#define SHOAL_TESTS_FX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fx_daemon {
    pid_t pid;
    char dir[256];    /* the state directory (a temp dir of the test) */
    char sock[300];   /* its control socket */
    char log[300];    /* its stderr, kept for checks after it ends */
    int notify_fd;
    unsigned nofile;  /* if set, the daemon's descriptor limit */
    const char *const *env; /* if set, NAME=VALUE strings (NULL-ended)
                               added to the daemon's environment */
    int end_status;   /* wait status once it ended, else -1 */
};

/* What one shoalctl run printed and how it ended. */
struct fx_run {
    int status; /* exit code, or 128 + signal */
    char *out;  /* stdout, NUL-terminated; owned */
    char *err;  /* stderr; owned */
};

/*
 * Make a fresh state directory (mode 0700) for d under /tmp. Returns 0.
 * Criterion-asserts on failure.
 */
void fx_daemon_prepare(struct fx_daemon *d);

/*
 * Start shoald on d->dir (prepared, possibly holding state from an
 * earlier run) and wait until it reports readiness, at most 20 s. extra
 * is a NULL-terminated list of further arguments, or NULL. Returns 0 when
 * ready, -1 when the process ended first (its wait status is then in
 * d->end_status) or the wait timed out (it is then killed). stderr goes
 * to d->log (appended); d->env is added to its environment.
 */
int fx_daemon_start(struct fx_daemon *d, const char *const *extra);

/*
 * Send sig to the daemon and reap it. Returns its wait status, or -1 when
 * it was not running.
 */
int fx_daemon_stop(struct fx_daemon *d, int sig);

/*
 * Wait at most timeout_ms for the daemon to end by itself (a crash), and
 * reap it. Returns its wait status (also left in d->end_status), or -1
 * when it was not running or still runs at the deadline (it is left
 * running).
 */
int fx_daemon_wait(struct fx_daemon *d, int timeout_ms);

/* Stop the daemon if running and remove its directory. */
void fx_daemon_cleanup(struct fx_daemon *d);

/*
 * Run shoalctl against d with the NULL-terminated argv (without the
 * program name), feeding in (may be NULL) on stdin. Fills *r; free it with
 * fx_run_free(). Criterion-asserts on spawn failures.
 */
void fx_ctl(struct fx_daemon *d, const char *in, struct fx_run *r, ...);

/* Same, with the arguments in an array of n strings. */
void fx_ctlv(struct fx_daemon *d, const char *in, struct fx_run *r,
             const char *const *argv, size_t n);

void fx_run_free(struct fx_run *r);

/* Whether the file at path contains needle. */
bool fx_file_contains(const char *path, const char *needle);

/* Read a whole file; owned, NUL-terminated; NULL when missing. */
char *fx_read_file(const char *path);

#endif
