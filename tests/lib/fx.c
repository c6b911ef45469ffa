/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fx.c: real daemons and ctl runs for the end-to-end tests.
 *
 * Readiness comes over an abstract-namespace datagram socket given to
 * shoald as NOTIFY_SOCKET, the protocol systemd uses; the wait is a
 * poll() on it with a deadline, so a test proceeds the moment the daemon
 * is ready and fails with a message if it never is.
 */
#include "fx.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *
fx_env(const char *name)
{
    const char *v = getenv(name);

    cr_assert(v && *v, "%s must name the binary (run through make)", name);
    return v;
}

void
fx_daemon_prepare(struct fx_daemon *d)
{
    memset(d, 0, sizeof *d);
    d->pid = -1;
    d->notify_fd = -1;
    d->end_status = -1;
    snprintf(d->dir, sizeof d->dir, "/tmp/shoal-e2e-XXXXXX");
    cr_assert(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
    snprintf(d->sock, sizeof d->sock, "%s/control.sock", d->dir);
    snprintf(d->log, sizeof d->log, "%s.log", d->dir);
}

/* An abstract socket: nothing to clean up on disk, and unique by pid. */
static int
fx_notify_socket(char *name, size_t n)
{
    static unsigned seq;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len;

    cr_assert(fd >= 0);
    snprintf(name, n, "@shoal-fx-%d-%u", (int)getpid(), seq++);
    memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    cr_assert(bind(fd, (struct sockaddr *)&sa, len) == 0, "bind: %s",
              strerror(errno));
    return fd;
}

static void
fx_exec_daemon(struct fx_daemon *d, const char *notify,
               const char *const *extra)
{
    const char *argv[32] = {fx_env("SHOALD"), "--state-dir", d->dir,
                            "--hostname", "e2e-node", "--log-level", "info"};
    size_t n = 7;
    int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

    for (size_t i = 0; extra && extra[i] && n < 31; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
    }
    if (d->nofile) {
        struct rlimit rl = {d->nofile, d->nofile};

        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setenv("NOTIFY_SOCKET", notify, 1);
    for (size_t i = 0; d->env && d->env[i]; i++) {
        putenv((char *)d->env[i]);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

int
fx_daemon_start(struct fx_daemon *d, const char *const *extra)
{
    char notify[64];
    char buf[512];
    struct pollfd p;

    d->notify_fd = fx_notify_socket(notify, sizeof notify);
    d->pid = fork();
    cr_assert(d->pid >= 0);
    if (d->pid == 0) {
        fx_exec_daemon(d, notify, extra);
    }

    p = (struct pollfd){.fd = d->notify_fd, .events = POLLIN};
    for (int waited = 0; waited < 20000; waited += 100) {
        int status;

        if (poll(&p, 1, 100) == 1) {
            ssize_t n = recv(d->notify_fd, buf, sizeof buf - 1, 0);

            buf[n > 0 ? n : 0] = '\0';
            if (strstr(buf, "READY=1")) {
                return 0;
            }
        }
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->end_status = status;
            d->pid = -1;
            close(d->notify_fd);
            d->notify_fd = -1;
            return -1;
        }
    }
    fx_daemon_stop(d, SIGKILL);
    return -1;
}

int
fx_daemon_stop(struct fx_daemon *d, int sig)
{
    int status = -1;

    if (d->notify_fd >= 0) {
        close(d->notify_fd);
        d->notify_fd = -1;
    }
    if (d->pid <= 0) {
        return -1;
    }
    kill(d->pid, sig);
    while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR) {
    }
    d->pid = -1;
    return status;
}

int
fx_daemon_wait(struct fx_daemon *d, int timeout_ms)
{
    int pfd;
    int status;
    struct pollfd p;

    if (d->pid <= 0) {
        return -1;
    }
    /* A pidfd becomes readable when the process ends: no polling loop. */
    pfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
    cr_assert(pfd >= 0, "pidfd_open: %s", strerror(errno));
    p = (struct pollfd){.fd = pfd, .events = POLLIN};
    while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
    }
    close(pfd);
    if (waitpid(d->pid, &status, WNOHANG) != d->pid) {
        return -1;
    }
    if (d->notify_fd >= 0) {
        close(d->notify_fd);
        d->notify_fd = -1;
    }
    d->pid = -1;
    d->end_status = status;
    return status;
}

void
fx_daemon_cleanup(struct fx_daemon *d)
{
    char cmd[600];

    fx_daemon_stop(d, SIGKILL);
    if (d->dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", d->dir, d->log);
        if (system(cmd) != 0) {
            cr_log_warn("could not remove %s", d->dir);
        }
    }
}

/* Read all of fd into a NUL-terminated string. */
static char *
fx_slurp(int fd)
{
    size_t len = 0;
    size_t cap = 4096;
    char *s = malloc(cap);
    ssize_t n;

    cr_assert(s);
    while ((n = read(fd, s + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            cap *= 2;
            s = realloc(s, cap);
            cr_assert(s);
        }
    }
    s[len] = '\0';
    return s;
}

void
fx_ctlv(struct fx_daemon *d, const char *in, struct fx_run *r,
        const char *const *args, size_t n)
{
    const char *argv[64] = {fx_env("SHOALCTL"), "--socket", d->sock};
    char tmpl_out[] = "/tmp/shoal-fx-out-XXXXXX";
    char tmpl_err[] = "/tmp/shoal-fx-err-XXXXXX";
    int fo = mkstemp(tmpl_out);
    int fe = mkstemp(tmpl_err);
    int pin[2];
    int status;
    pid_t pid;

    cr_assert(n < 60 && fo >= 0 && fe >= 0 && pipe(pin) == 0);
    for (size_t i = 0; i < n; i++) {
        argv[3 + i] = args[i];
    }
    argv[3 + n] = NULL;
    unlink(tmpl_out);
    unlink(tmpl_err);

    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(pin[0], STDIN_FILENO);
        dup2(fo, STDOUT_FILENO);
        dup2(fe, STDERR_FILENO);
        close(pin[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pin[0]);
    if (in && write(pin[1], in, strlen(in)) < 0) {
        cr_log_warn("could not feed stdin");
    }
    close(pin[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r->status = WIFEXITED(status) ? WEXITSTATUS(status)
                                  : 128 + WTERMSIG(status);
    lseek(fo, 0, SEEK_SET);
    lseek(fe, 0, SEEK_SET);
    r->out = fx_slurp(fo);
    r->err = fx_slurp(fe);
    close(fo);
    close(fe);
}

void
fx_ctl(struct fx_daemon *d, const char *in, struct fx_run *r, ...)
{
    const char *args[60];
    size_t n = 0;
    va_list ap;
    const char *a;

    va_start(ap, r);
    while ((a = va_arg(ap, const char *)) && n < 60) {
        args[n++] = a;
    }
    va_end(ap);
    fx_ctlv(d, in, r, args, n);
}

void
fx_run_free(struct fx_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

char *
fx_read_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    char *s;

    if (fd < 0) {
        return NULL;
    }
    s = fx_slurp(fd);
    close(fd);
    return s;
}

bool
fx_file_contains(const char *path, const char *needle)
{
    char *s = fx_read_file(path);
    bool found = s && strstr(s, needle);

    free(s);
    return found;
}
