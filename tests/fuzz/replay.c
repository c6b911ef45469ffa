/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * replay.c: a main() that feeds files to a fuzz target, without libFuzzer.
 *
 *   fuzz-<target> [-q] PATH...
 *
 * Each PATH is a file, or a folder whose regular files are read in name
 * order; each file is one call of LLVMFuzzerTestOneInput() with a buffer
 * of exactly its size, so that ASan sees a read past the end. This is
 * how make check-fuzz replays the corpora and the regression inputs with
 * gcc, ASan and UBSan. -q sends the target's own stdout and stderr to
 * /dev/null (shoalctl prints on both) while sanitizer reports and this
 * program's lines still reach the real stderr. When an input crashes,
 * the file's name is printed before the process dies.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* The sanitizers' runtime interface; weak, so a plain build links too. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static int out_fd = 2;     /* where this program writes */
static char current[4096]; /* the input being run, for a crash */
static size_t n_inputs;

/* Async-signal-safe: name the input that crashed. */
static void
say_current(void)
{
    static const char head[] = "fuzz-replay: crashed on input ";

    if (current[0] == '\0') {
        return;
    }
    (void)!write(out_fd, head, sizeof head - 1);
    (void)!write(out_fd, current, strlen(current));
    (void)!write(out_fd, "\n", 1);
}

static void
on_fatal_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Send fds 1 and 2 to /dev/null, keeping a copy of stderr for reports. */
static int
quiet(void)
{
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int saved = dup(2);

    if (null_fd < 0 || saved < 0) {
        return -errno;
    }
    fflush(stdout);
    fflush(stderr);
    if (dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0) {
        return -errno;
    }
    close(null_fd);
    out_fd = saved;
    if (__sanitizer_set_report_fd) {
        __sanitizer_set_report_fd((void *)(intptr_t)saved);
    }
    return 0;
}

static int
run_file(const char *path)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        dprintf(out_fd, "fuzz-replay: %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    /* malloc(0) may return NULL: one byte more, never handed out. */
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    snprintf(current, sizeof current, "%s", path);
    LLVMFuzzerTestOneInput(buf, got);
    current[0] = '\0';
    free(buf);
    n_inputs++;
    return 0;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_dir(const char *dir)
{
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    DIR *d = opendir(dir);

    if (!d) {
        dprintf(out_fd, "fuzz-replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        char **v;

        if (de->d_name[0] == '.') {
            continue;
        }
        v = realloc(names, (n + 1) * sizeof *names);
        if (!v) {
            rc = -1;
            break;
        }
        names = v;
        if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof *names, cmp_names);
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;

        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            rc = run_file(names[i]);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *prog =
        strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int first = 1;

    if (argc > 1 && strcmp(argv[1], "-q") == 0) {
        if (quiet() != 0) {
            fprintf(stderr, "fuzz-replay: cannot silence the target\n");
            return 2;
        }
        first = 2;
    }
    if (first >= argc) {
        dprintf(out_fd, "usage: %s [-q] FILE_OR_FOLDER...\n", prog);
        return 2;
    }
    signal(SIGABRT, on_fatal_signal);
    signal(SIGILL, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(say_current);
    }
    for (int i = first; i < argc; i++) {
        struct stat st;
        int rc;

        if (stat(argv[i], &st) != 0) {
            dprintf(out_fd, "fuzz-replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        rc = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
        if (rc != 0) {
            return 1;
        }
    }
    dprintf(out_fd, "%s: %zu inputs replayed, no failure\n", prog, n_inputs);
    return 0;
}
