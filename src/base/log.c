/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * log.c: one line per event on stderr.
 *
 * Format: "2026-08-21T14:03:07.412Z notice raft: became leader: term=12".
 * The line is built in one buffer and written with one write(2), so that
 * lines of concurrent processes sharing a terminal do not interleave.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level_now = LOG_NOTICE;
static int log_fd = STDERR_FILENO;

static const char *const log_names[] = {
    [LOG_CRIT] = "crit",     [LOG_ERR] = "err",   [LOG_WARN] = "warn",
    [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG_LEVEL] = "debug",
};

int
log_level_parse(const char *name, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } aliases[] = {
        {"error", LOG_ERR},
        {"warning", LOG_WARN},
    };

    for (size_t i = 0; i < ARRAY_LEN(log_names); i++) {
        if (strcasecmp(name, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    for (size_t i = 0; i < ARRAY_LEN(aliases); i++) {
        if (strcasecmp(name, aliases[i].name) == 0) {
            *out = aliases[i].level;
            return 0;
        }
    }
    return -22; /* EINVAL */
}

int
log_open_file(const char *path)
{
    int fd = STDERR_FILENO;

    if (path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            return -errno;
        }
    }
    if (log_fd != STDERR_FILENO) {
        close(log_fd);
    }
    log_fd = fd;
    return 0;
}

void
log_set_level(enum log_level level)
{
    log_level_now = level;
}

enum log_level
log_get_level(void)
{
    return log_level_now;
}

void
log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    size_t n;
    int w;

    if (level > log_level_now) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof line - n, ".%03ldZ %-6s %s: ",
                 ts.tv_nsec / 1000000, log_names[level], module);
    n += (size_t)w;

    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (w < 0) {
        return;
    }
    n += (size_t)w;
    if (n >= sizeof line - 1) {
        n = sizeof line - 2; /* A cut line still ends with a newline. */
    }
    line[n++] = '\n';

    /* A failed log write has nowhere to be reported. */
    if (write(log_fd, line, n) < 0) {
        return;
    }
}
