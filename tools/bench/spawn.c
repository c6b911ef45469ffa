/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/spawn.c: the processes shoal-bench starts and stops
 * (shoald, the echo server, etcd members) and the disk probe.
 *
 * Everything runs on 127.0.0.1 or Unix sockets in the run's temporary
 * directory, and every process started here is stopped by
 * bench_proc_stop: the harness leaves nothing behind.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The processes started and not yet stopped, for bench_kill_all. */
#define SPAWN_MAX 64
static volatile pid_t spawn_live[SPAWN_MAX];

volatile sig_atomic_t bench_stop;

static void
spawn_note(pid_t pid, bool live)
{
    for (unsigned i = 0; i < SPAWN_MAX; i++) {
        if (live ? spawn_live[i] == 0 : spawn_live[i] == pid) {
            spawn_live[i] = live ? pid : 0;
            return;
        }
    }
}

void
bench_kill_all(int sig)
{
    for (unsigned i = 0; i < SPAWN_MAX; i++) {
        if (spawn_live[i] > 0) {
            kill(spawn_live[i], sig);
        }
    }
}

/* An abstract datagram socket for the daemon's READY=1. */
static int
notify_open(char *name, size_t cap)
{
    static unsigned seq;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    int fd;

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    snprintf(name, cap, "@shoal-bench-%d-%u", (int)getpid(), seq++);
    memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
        close(fd);
        return -errno;
    }
    return fd;
}

/* Wait for READY=1 on fd while p lives, at most timeout_ms. */
static int
notify_wait(int fd, struct bench_proc *p, int timeout_ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    char buf[512];
    ssize_t n;
    int status;

    while (bench_now_ns() < end) {
        if (poll(&pf, 1, 100) > 0) {
            n = recv(fd, buf, sizeof buf - 1, 0);
            buf[n > 0 ? n : 0] = '\0';
            if (strstr(buf, "READY=1")) {
                return 0;
            }
        }
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            spawn_note(p->pid, false);
            p->pid = -1;
            return -ECHILD;
        }
    }
    return -ETIMEDOUT;
}

int
bench_spawn_shoald_args(struct bench_proc *p, const char *bin,
                        const char *dir, const char *const *extra,
                        int timeout_ms)
{
    char state[4096], sock[4096], logf[4096], notify[64];
    const char *argv[32];
    unsigned argc = 0;
    int fd, rc;

    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(sock, sizeof sock, "%s/control.sock", dir);
    snprintf(logf, sizeof logf, "%s/shoald.log", dir);
    if (!p->name[0]) {
        snprintf(p->name, sizeof p->name, "shoald");
    }
    argv[argc++] = bin;
    argv[argc++] = "--state-dir";
    argv[argc++] = state;
    argv[argc++] = "--control-socket";
    argv[argc++] = sock;
    argv[argc++] = "--log-level";
    argv[argc++] = "warn";
    argv[argc++] = "--log-file";
    argv[argc++] = logf;
    for (unsigned i = 0; extra && extra[i] && argc < 31; i++) {
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    fd = notify_open(notify, sizeof notify);
    if (fd < 0) {
        return fd;
    }
    p->pid = fork();
    if (p->pid < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (p->pid == 0) {
        setenv("NOTIFY_SOCKET", notify, 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    spawn_note(p->pid, true);
    rc = notify_wait(fd, p, timeout_ms);
    close(fd);
    if (rc != 0 && p->pid > 0) {
        bench_proc_stop(p);
    }
    return rc;
}

int
bench_spawn_shoald(struct bench_proc *p, const char *bin, const char *dir)
{
    static const char *const extra[] = {"--hostname", "bench", NULL};

    return bench_spawn_shoald_args(p, bin, dir, extra, 20000);
}

int
bench_spawn_echo(struct bench_proc *p, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, rc;

    if (strlen(path) >= sizeof sa.sun_path) {
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 4096) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    snprintf(p->name, sizeof p->name, "echo");
    p->pid = fork();
    if (p->pid == 0) {
        bench_echo_serve(fd);
    }
    rc = p->pid < 0 ? -errno : 0;
    if (p->pid > 0) {
        spawn_note(p->pid, true);
    }
    close(fd);
    return rc;
}

/* Whether GET /health on 127.0.0.1:port answers "true". */
static bool
etcd_healthy(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    static const char req[] = "GET /health HTTP/1.0\r\n\r\n";
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    int fd;

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return false;
    }
    while (got < sizeof buf - 1 &&
           (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return strstr(buf, "\"health\":\"true\"") != NULL;
}

/* exec one etcd member i of n; only returns on failure. */
static void
etcd_exec(unsigned i, unsigned n, const char *dir, unsigned base_port,
          unsigned heartbeat_ms, unsigned election_ms)
{
    char name[32], data[4096], logf[4096], curl[64], purl[64];
    char cluster[1024] = "", hb[32], el[32], part[96];
    int fd;

    snprintf(name, sizeof name, "m%u", i);
    snprintf(data, sizeof data, "%s/etcd-%u", dir, i);
    snprintf(logf, sizeof logf, "%s/etcd-%u.log", dir, i);
    snprintf(curl, sizeof curl, "http://127.0.0.1:%u", base_port + 10 * i);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%u",
             base_port + 10 * i + 1);
    for (unsigned j = 0; j < n; j++) {
        snprintf(part, sizeof part, "%sm%u=http://127.0.0.1:%u",
                 j ? "," : "", j, base_port + 10 * j + 1);
        strncat(cluster, part, sizeof cluster - strlen(cluster) - 1);
    }
    snprintf(hb, sizeof hb, "%u", heartbeat_ms ? heartbeat_ms : 100);
    snprintf(el, sizeof el, "%u", election_ms ? election_ms : 1000);
    fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    execlp("etcd", "etcd", "--name", name, "--data-dir", data,
           "--listen-client-urls", curl, "--advertise-client-urls", curl,
           "--listen-peer-urls", purl, "--initial-advertise-peer-urls",
           purl, "--initial-cluster", cluster, "--initial-cluster-state",
           "new", "--initial-cluster-token", "shoal-bench",
           "--heartbeat-interval", hb, "--election-timeout", el,
           (char *)NULL);
}

int
bench_spawn_etcd(struct bench_proc *procs, unsigned n, const char *dir,
                 unsigned base_port, unsigned heartbeat_ms,
                 unsigned election_ms, char *endpoints, size_t cap)
{
    uint64_t end = bench_now_ns() + 30ull * 1000000000u;
    unsigned ready = 0;
    size_t used = 0;

    endpoints[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        snprintf(procs[i].name, sizeof procs[i].name, "etcd-%u", i);
        procs[i].pid = fork();
        if (procs[i].pid == 0) {
            etcd_exec(i, n, dir, base_port, heartbeat_ms, election_ms);
            _exit(127);
        }
        if (procs[i].pid > 0) {
            spawn_note(procs[i].pid, true);
        }
        used += (size_t)snprintf(endpoints + used, used < cap ? cap - used : 0,
                                 "%shttp://127.0.0.1:%u", i ? "," : "",
                                 base_port + 10 * i);
    }
    while (ready < n && bench_now_ns() < end) {
        ready = 0;
        for (unsigned i = 0; i < n; i++) {
            ready += etcd_healthy(base_port + 10 * i);
        }
        if (ready < n) {
            usleep(100000);
        }
    }
    if (ready < n) {
        for (unsigned i = 0; i < n; i++) {
            bench_proc_stop(&procs[i]);
        }
        return -ETIMEDOUT;
    }
    return 0;
}

int
bench_etcd_restart(struct bench_proc *procs, unsigned i, unsigned n,
                   const char *dir, unsigned base_port,
                   unsigned heartbeat_ms, unsigned election_ms)
{
    uint64_t end = bench_now_ns() + 30ull * 1000000000u;
    unsigned ready = 0;

    procs[i].pid = fork();
    if (procs[i].pid == 0) {
        /* The data directory holds the member: the initial-cluster
         * flags are ignored. */
        etcd_exec(i, n, dir, base_port, heartbeat_ms, election_ms);
        _exit(127);
    }
    if (procs[i].pid < 0) {
        return -errno;
    }
    spawn_note(procs[i].pid, true);
    while (ready < n && bench_now_ns() < end && !bench_stop) {
        ready = 0;
        for (unsigned k = 0; k < n; k++) {
            ready += etcd_healthy(base_port + 10 * k);
        }
        if (ready < n) {
            usleep(50000);
        }
    }
    return ready == n ? 0 : -ETIMEDOUT;
}

int
bench_proc_stop(struct bench_proc *p)
{
    uint64_t end;
    int status = -1;

    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, SIGTERM);
    end = bench_now_ns() + 10ull * 1000000000u;
    while (waitpid(p->pid, &status, WNOHANG) == 0) {
        if (bench_now_ns() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    spawn_note(p->pid, false);
    p->pid = -1;
    return status;
}

static int
rmtree_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(path);
}

int
bench_rmtree(const char *dir)
{
    if (nftw(dir, rmtree_cb, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        return -errno;
    }
    return 0;
}

int
bench_fsync_probe(const char *dir, double seconds, double *rate,
                  struct bench_hist *h)
{
    char path[4096], block[4096];
    uint64_t start, end, t0, t1, n = 0;
    int fd, rc = 0;

    memset(block, 'f', sizeof block);
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    start = bench_now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    do {
        t0 = bench_now_ns();
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block ||
            fdatasync(fd) != 0) {
            rc = -errno;
            break;
        }
        t1 = bench_now_ns();
        if (h) {
            bench_hist_add(h, t1 - t0);
        }
        n++;
    } while (t1 < end);
    *rate = (double)n / ((double)(bench_now_ns() - start) / 1e9);
    close(fd);
    unlink(path);
    return rc;
}

int
bench_proc_kill(struct bench_proc *p)
{
    int status = -1;

    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    spawn_note(p->pid, false);
    p->pid = -1;
    return status;
}
