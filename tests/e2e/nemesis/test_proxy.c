/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_proxy.c: nemesis-proxy ($NEMESIS_PROXY) between plain TCP
 * endpoints that the test holds itself on 127.0.0.1 ephemeral ports.
 *
 * Two endpoints, "c" and "e", each with a listener; the proxy runs the
 * links c>e (c dials e), e>c (e dials c) and c>x (to a port where nobody
 * listens). Holding both ends of each connection lets a test see each
 * direction on its own. Every wait is for an event (a byte, a reset, a
 * command's answer, a counter of the proxy reaching a value) with a
 * deadline; nothing sleeps. Each test ends with "quit", and the proxy must
 * then exit 0, which under LeakSanitizer means it leaked nothing.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#define PX_WAIT_MS 10000 /* the deadline of every wait */

struct px {
    pid_t pid;
    int out; /* the proxy's stdout */
    int ctl;
    char dir[64];
    char ctl_path[100];
    int listen_c;     /* endpoint c's listener (target of e>c) */
    int listen_e;     /* endpoint e's listener (target of c>e) */
    uint16_t port_ce; /* the proxy's port for c>e */
    uint16_t port_ec;
    uint16_t port_cx;
    int mesh_fd[4]; /* managers 1..3 of the mesh suite */
    uint16_t mesh_port[4];
    char line[8192]; /* the last answer */
};

static struct px px;

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
tcp_listen(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 64), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int
tcp_connect(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect to %u: %s", port, strerror(errno));
    return fd;
}

/* Whether fd has an event among what within ms. */
static bool
wait_fd(int fd, short what, int ms)
{
    struct pollfd p = {.fd = fd, .events = what};

    return poll(&p, 1, ms) == 1;
}

static int
accept_one(int lfd)
{
    cr_assert(wait_fd(lfd, POLLIN, PX_WAIT_MS), "no connection came");
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(fd, 0);
    return fd;
}

/* Read one line of the proxy's control socket into px.line. */
static void
read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    for (;;) {
        cr_assert(wait_fd(fd, POLLIN, PX_WAIT_MS), "no answer");
        cr_assert_eq(read(fd, buf + n, 1), 1, "the proxy went away");
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return;
        }
        cr_assert_lt(++n, cap - 1);
    }
}

static const char *cmd(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Send one command and return its answer (px.line). */
static const char *
cmd(const char *fmt, ...)
{
    char out[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, sizeof out - 1, fmt, ap);
    va_end(ap);
    out[n++] = '\n';
    cr_assert_eq(write(px.ctl, out, (size_t)n), n);
    read_line(px.ctl, px.line, sizeof px.line);
    return px.line;
}

static void
cmd_ok(const char *c)
{
    const char *ans = cmd("%s", c);

    cr_assert(strncmp(ans, "ok", 2) == 0, "'%s' answered '%s'", c, ans);
}

/* A counter of `stats link`. */
static uint64_t
stat_of(const char *link, const char *field)
{
    char key[64];
    const char *ans = cmd("stats %s", link), *at;

    cr_assert(strncmp(ans, "ok ", 3) == 0, "stats: %s", ans);
    snprintf(key, sizeof key, " %s=", field);
    at = strstr(ans, key);
    cr_assert_not_null(at, "no %s in %s", field, ans);
    return strtoull(at + strlen(key), NULL, 10);
}

/* Wait until the proxy's counter reaches want. Each round trip is a wait
 * for the proxy's answer, which comes after it handled what was already
 * on its sockets. */
static void
wait_stat(const char *link, const char *field, uint64_t want)
{
    int64_t end = now_ms() + PX_WAIT_MS;
    uint64_t got;

    while ((got = stat_of(link, field)) != want) {
        cr_assert_lt(now_ms(), end, "%s %s is %" PRIu64 ", not %" PRIu64, link,
                     field, got, want);
    }
}

/*
 * Start the proxy with its control socket in a fresh folder and the
 * further arguments args (NULL-ended), and connect to it. Returns false
 * when it ended before it was ready (a port of --mesh was taken).
 */
static bool
px_start(const char *const *args)
{
    const char *bin = getenv("NEMESIS_PROXY");
    const char *argv[16] = {bin, "--control", px.ctl_path};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char ready[16] = "";
    size_t n = 0;
    int pfd[2], argc = 3;

    cr_assert_not_null(bin, "NEMESIS_PROXY is not set");
    for (; *args != NULL && argc < 15; args++) {
        argv[argc++] = *args;
    }
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    px.pid = fork();
    cr_assert_geq(px.pid, 0);
    if (px.pid == 0) {
        dup2(pfd[1], 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    px.out = pfd[0];
    /* "ready" once every listener is bound, or the end of its output. */
    while (n + 1 < sizeof ready && read(px.out, ready + n, 1) == 1 &&
           ready[n] != '\n') {
        n++;
    }
    if (strncmp(ready, "ready\n", 6) != 0) {
        close(px.out);
        cr_assert_eq(waitpid(px.pid, NULL, 0), px.pid);
        return false;
    }
    px.ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", px.ctl_path);
    cr_assert_eq(connect(px.ctl, (struct sockaddr *)&sa, sizeof sa), 0);
    return true;
}

static void
px_prepare_dir(void)
{
    snprintf(px.dir, sizeof px.dir, "/tmp/nemesis-proxy-XXXXXX");
    cr_assert_not_null(mkdtemp(px.dir));
    snprintf(px.ctl_path, sizeof px.ctl_path, "%s/ctl.sock", px.dir);
}

static void
px_setup(void)
{
    uint16_t pc, pe, dead;
    char l1[64], l2[64], l3[64];
    unsigned p1, p2, p3;
    const char *ans;

    px_prepare_dir();
    px.listen_c = tcp_listen(&pc);
    px.listen_e = tcp_listen(&pe);
    /* A port that was free a moment ago: nobody listens on it. */
    close(tcp_listen(&dead));
    snprintf(l1, sizeof l1, "c>e:0:%u", pe);
    snprintf(l2, sizeof l2, "e>c:0:%u", pc);
    snprintf(l3, sizeof l3, "c>x:0:%u", dead);

    cr_assert(px_start(
        (const char *const[]){"--link", l1, "--link", l2, "--link", l3, NULL}));

    ans = cmd("links");
    cr_assert_eq(sscanf(ans, "ok c>e %u %*u e>c %u %*u c>x %u", &p1, &p2, &p3),
                 3, "links: %s", ans);
    px.port_ce = (uint16_t)p1;
    px.port_ec = (uint16_t)p2;
    px.port_cx = (uint16_t)p3;
}

/* Quit the proxy, which must then exit 0: under LeakSanitizer a leak
 * makes it exit otherwise. Each test ends with this, in the test itself,
 * because Criterion does not count an assertion of a .fini. */
static void
px_quit(void)
{
    int status;

    cmd_ok("quit");
    cr_assert_eq(waitpid(px.pid, &status, 0), px.pid);
    px.pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the proxy ended with status %#x (a leak, or a crash)", status);
}

/* Stop a proxy that a failed test left running, and clean up. */
static void
px_teardown(void)
{
    if (px.pid > 0) {
        kill(px.pid, SIGKILL);
        waitpid(px.pid, NULL, 0);
    }
    close(px.ctl);
    close(px.out);
    close(px.listen_c);
    close(px.listen_e);
    for (int i = 1; i <= 3; i++) {
        if (px.mesh_fd[i] > 0) {
            close(px.mesh_fd[i]);
        }
    }
    /* The proxy removes its socket when it quits; the folder is ours. */
    unlink(px.ctl_path);
    rmdir(px.dir);
}

TestSuite(nemesis_proxy, .init = px_setup, .fini = px_teardown,
          .timeout = 60.0);

/* A connection through link c>e: *c is the dialer's end, *e the
 * accepted one. */
static void
pair_ce(int *c, int *e)
{
    *c = tcp_connect(px.port_ce);
    *e = accept_one(px.listen_e);
}

/* And through e>c: *e dials, *c accepts. */
static void
pair_ec(int *e, int *c)
{
    *e = tcp_connect(px.port_ec);
    *c = accept_one(px.listen_c);
}

static void
send_all(int fd, const void *buf, size_t n)
{
    cr_assert_eq(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Receive exactly n bytes within the deadline. */
static void
recv_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k;

        cr_assert(wait_fd(fd, POLLIN, PX_WAIT_MS), "only %zu of %zu bytes", got,
                  n);
        k = recv(fd, (char *)buf + got, n - got, 0);
        cr_assert_gt(k, 0, "stream ended after %zu of %zu bytes", got, n);
        got += (size_t)k;
    }
}

/* Whether the other end of fd is gone: reset or closed. */
static bool
closed(int fd)
{
    char b;

    if (!wait_fd(fd, POLLIN, PX_WAIT_MS)) {
        return false;
    }
    return recv(fd, &b, 1, 0) <= 0;
}

/* Nothing is waiting on fd now (the proxy already holds it, as a counter
 * told; this is no wait for something to not happen). */
static bool
quiet(int fd)
{
    return !wait_fd(fd, POLLIN, 0);
}

static void
ping_pong(int a, int b)
{
    char buf[4];

    send_all(a, "ping", 4);
    recv_exact(b, buf, 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    send_all(b, "pong", 4);
    recv_exact(a, buf, 4);
    cr_assert_eq(memcmp(buf, "pong", 4), 0);
}

static void
fill(uint8_t *buf, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (uint8_t)(seed >> 56);
    }
}

#define BULK (4u << 20)

/* 4 MiB sent by c through an echoing e come back intact: both directions
 * run at the same time, each carrying every byte in order. */
Test(nemesis_proxy, bytes_flow_both_ways_intact)
{
    uint8_t *out = malloc(BULK), *at_e = malloc(BULK), *back = malloc(BULK);
    size_t sent = 0, got_e = 0, echoed = 0, got_c = 0;
    int c, e;

    cr_assert(out && at_e && back);
    fill(out, BULK, 1);
    pair_ce(&c, &e);
    fcntl(c, F_SETFL, O_NONBLOCK);
    fcntl(e, F_SETFL, O_NONBLOCK);

    while (got_c < BULK) {
        struct pollfd p[2] = {{.fd = c, .events = POLLIN},
                              {.fd = e, .events = POLLIN}};
        ssize_t k;

        p[0].events |= sent < BULK ? POLLOUT : 0;
        p[1].events |= echoed < got_e ? POLLOUT : 0;
        cr_assert_gt(poll(p, 2, PX_WAIT_MS), 0,
                     "stalled: sent %zu, e got "
                     "%zu, c got %zu back",
                     sent, got_e, got_c);
        if ((p[0].revents & POLLOUT) &&
            (k = send(c, out + sent, BULK - sent, MSG_NOSIGNAL)) > 0) {
            sent += (size_t)k;
        }
        if ((p[1].revents & POLLIN) &&
            (k = recv(e, at_e + got_e, BULK - got_e, 0)) > 0) {
            got_e += (size_t)k;
        }
        if ((p[1].revents & POLLOUT) &&
            (k = send(e, at_e + echoed, got_e - echoed, MSG_NOSIGNAL)) > 0) {
            echoed += (size_t)k;
        }
        if ((p[0].revents & POLLIN) &&
            (k = recv(c, back + got_c, BULK - got_c, 0)) > 0) {
            got_c += (size_t)k;
        }
    }

    cr_expect_eq(memcmp(at_e, out, BULK), 0, "c to e corrupted");
    cr_expect_eq(memcmp(back, out, BULK), 0, "e to c corrupted");
    cr_expect_eq(stat_of("c>e", "fwd_bytes"), BULK);
    cr_expect_eq(stat_of("c>e", "rev_bytes"), BULK);
    close(c);
    close(e);
    free(out);
    free(at_e);
    free(back);

    px_quit();
}

/* A cut link resets its connections and every new one, and reaches
 * nobody; heal makes it work again. */
Test(nemesis_proxy, cut_refuses_and_drops_until_heal)
{
    int c, e, c2, e2;

    pair_ce(&c, &e);
    ping_pong(c, e);

    cmd_ok("cut c>e");

    cr_expect(closed(c), "the dialer's connection survived the cut");
    cr_expect(closed(e), "the target's connection survived the cut");
    c2 = tcp_connect(px.port_ce);
    cr_expect(closed(c2), "a new connection went through a cut link");
    /* Reset at accept, before any connect to the target: none came. */
    cr_expect(quiet(px.listen_e), "the cut link dialed the target");
    cr_expect_eq(stat_of("c>e", "cut"), 1);
    cr_expect_eq(stat_of("c>e", "reset"), 2);
    close(c);
    close(e);
    close(c2);

    cmd_ok("heal c>e");
    pair_ce(&c2, &e2);
    ping_pong(c2, e2);
    close(c2);
    close(e2);

    px_quit();
}

/* Hold flow (the bytes from `from` to `to`), whose held bytes show in
 * field of link; check that only that direction stopped, then heal and
 * check the held bytes arrive whole. */
static void
check_one_way(int from, int to, const char *flow, const char *link,
              const char *field)
{
    uint8_t msg[1000], got[1000];
    char buf[4];

    fill(msg, sizeof msg, 7);
    cmd_ok(flow);

    send_all(from, msg, sizeof msg);
    wait_stat(link, field, sizeof msg);
    /* The other way still flows: "can send but not receive". */
    send_all(to, "back", 4);
    recv_exact(from, buf, 4);
    cr_expect_eq(memcmp(buf, "back", 4), 0);
    cr_expect(quiet(to), "held bytes arrived");

    cmd_ok("heal *");
    recv_exact(to, got, sizeof got);
    cr_expect_eq(memcmp(got, msg, sizeof msg), 0, "held bytes corrupted");
    ping_pong(from, to);
}

/* hold c->e stops the bytes from c to e only, on the link c dialed and
 * on the one e dialed, and heal delivers them whole. */
Test(nemesis_proxy, one_way_hold_stops_one_direction)
{
    int c, e, e2, c2;

    pair_ce(&c, &e);
    pair_ec(&e2, &c2);

    check_one_way(c, e, "hold c->e", "c>e", "fwd_queued");
    check_one_way(c2, e2, "hold c->e", "e>c", "rev_queued");
    check_one_way(e, c, "hold e->c", "c>e", "rev_queued");
    check_one_way(e2, c2, "hold e->c", "e>c", "fwd_queued");
    close(c);
    close(e);
    close(c2);
    close(e2);

    px_quit();
}

/* The flow selector sets exactly the two halves it names. */
Test(nemesis_proxy, flow_selector_names_both_links)
{
    cmd_ok("hold c->e");

    cr_expect_not_null(strstr(cmd("stats c>e"), "fwd=hold rev=pass"), "%s",
                       px.line);
    cr_expect_not_null(strstr(cmd("stats e>c"), "fwd=pass rev=hold"), "%s",
                       px.line);
    cr_expect_not_null(strstr(cmd("stats c>x"), "fwd=pass rev=pass"), "%s",
                       px.line);
    cmd_ok("drop @x");
    cr_expect_not_null(strstr(cmd("stats c>x"), "fwd=drop rev=drop"), "%s",
                       px.line);
    cmd_ok("heal c-e");
    cr_expect_not_null(strstr(cmd("stats e>c"), "fwd=pass rev=pass"), "%s",
                       px.line);
    cr_expect_not_null(strstr(cmd("stats c>x"), "fwd=drop"), "%s", px.line);
    cmd_ok("heal");
    cr_expect_not_null(strstr(cmd("stats c>x"), "fwd=pass"), "%s", px.line);

    px_quit();
}

/* drop discards one direction while the other flows, and heal then
 * resets the connection, whose stream is missing bytes; new ones work. */
Test(nemesis_proxy, drop_discards_then_heal_resets)
{
    uint8_t msg[1000];
    char buf[4];
    int c, e;

    fill(msg, sizeof msg, 3);
    pair_ce(&c, &e);
    cmd_ok("drop c->e");

    send_all(c, msg, sizeof msg);
    wait_stat("c>e", "fwd_dropped", sizeof msg);
    send_all(e, "back", 4);
    recv_exact(c, buf, 4);
    cr_expect(quiet(e), "dropped bytes arrived");

    cmd_ok("heal c->e");
    cr_expect(closed(c), "a connection that lost bytes went on");
    cr_expect(closed(e), "a connection that lost bytes went on");
    close(c);
    close(e);
    pair_ce(&c, &e);
    ping_pong(c, e);
    close(c);
    close(e);

    px_quit();
}

/* delay holds each chunk for the given time, both ways of a link. */
Test(nemesis_proxy, delay_postpones_each_chunk)
{
    char buf[4];
    int64_t t0;
    int c, e;

    pair_ce(&c, &e);
    cmd_ok("delay 150 c>e");

    t0 = now_ms();
    send_all(c, "ping", 4);
    recv_exact(e, buf, 4);
    cr_expect_geq(now_ms() - t0, 150);
    t0 = now_ms();
    send_all(e, "pong", 4);
    recv_exact(c, buf, 4);
    cr_expect_geq(now_ms() - t0, 150);

    cmd_ok("heal c>e");
    ping_pong(c, e);
    close(c);
    close(e);

    px_quit();
}

/* clog holds a direction for a while, then releases it by itself. */
Test(nemesis_proxy, clog_releases_after_its_time)
{
    uint8_t msg[3000], got[3000];
    int64_t t0;
    int c, e;

    fill(msg, sizeof msg, 5);
    pair_ce(&c, &e);
    t0 = now_ms();
    cmd_ok("clog 200 c->e");

    send_all(c, msg, sizeof msg);
    recv_exact(e, got, sizeof got);

    cr_expect_geq(now_ms() - t0, 200);
    cr_expect_eq(memcmp(got, msg, sizeof msg), 0);
    ping_pong(c, e);
    close(c);
    close(e);

    px_quit();
}

/* A link whose target is down resets the dialer's connection. */
Test(nemesis_proxy, dead_target_refuses)
{
    int c = tcp_connect(px.port_cx);

    cr_expect(closed(c));
    cr_expect_eq(stat_of("c>x", "reset"), 1);
    close(c);

    px_quit();
}

/* Every command gets one answer, in order, even when sent together;
 * a bad selector changes nothing. */
Test(nemesis_proxy, every_command_answered)
{
    static const char *const lines[][2] = {
        {"ping", "ok"},
        {"bogus", "err unknown command"},
        {"", "err empty command"},
        {"cut", "err cut needs a selector"},
        {"cut y>z", "err y>z: selects no link"},
        {"cut c>e c~e", "err c~e: not a selector"},
        {"delay abc c>e", "err delay takes MS"},
        {"delay 10", "err delay needs a selector"},
        {"stats", "err stats takes one link name"},
        {"stats c>e", "ok conns=0"},
        {"links", "ok c>e"},
        {"heal", "ok"},
    };
    size_t n = sizeof lines / sizeof lines[0];
    char all[1024] = "", ans[8192];

    for (size_t i = 0; i < n; i++) {
        strcat(all, lines[i][0]);
        strcat(all, "\n");
    }
    cr_assert_eq(write(px.ctl, all, strlen(all)), (ssize_t)strlen(all));

    for (size_t i = 0; i < n; i++) {
        read_line(px.ctl, ans, sizeof ans);
        cr_expect(strncmp(ans, lines[i][1], strlen(lines[i][1])) == 0,
                  "'%s' answered '%s'", lines[i][0], ans);
    }
    cr_expect_eq(stat_of("c>e", "cut"), 0, "a refused command acted");

    px_quit();
}

/* Connections that end, orderly or by a cut, leave no descriptor or
 * memory behind (memory: the exit status checked at teardown). */
Test(nemesis_proxy, no_descriptor_leaks)
{
    const char *ans = cmd("fds");
    int base, after, c, e;

    cr_assert_eq(sscanf(ans, "ok %d", &base), 1, "%s", ans);

    for (int i = 0; i < 20; i++) {
        pair_ce(&c, &e);
        ping_pong(c, e);
        close(c);
        cr_expect(closed(e));
        close(e);
    }
    for (int i = 0; i < 5; i++) {
        pair_ce(&c, &e);
        cmd_ok("hold c>e");
        send_all(c, "held", 4);
        wait_stat("c>e", "fwd_queued", 4);
        cmd_ok("cut c>e");
        cr_expect(closed(c));
        cr_expect(closed(e));
        close(c);
        close(e);
        cmd_ok("heal c>e");
    }
    wait_stat("c>e", "conns", 0);
    ans = cmd("fds");

    cr_assert_eq(sscanf(ans, "ok %d", &after), 1, "%s", ans);
    cr_expect_eq(after, base);
    cr_expect_eq(stat_of("c>e", "accepted"), 25);

    px_quit();
}

/* ---- --mesh ------------------------------------------------------------- */

/* Three "managers" (listeners of ours) and a proxy made with --mesh on a
 * base port below the ephemeral range, tried until one is free. */
static void
mesh_setup(void)
{
    char spec[64];
    bool up = false;

    px_prepare_dir();
    px.listen_c = tcp_listen(&(uint16_t){0});
    px.listen_e = tcp_listen(&(uint16_t){0});
    for (int i = 1; i <= 3; i++) {
        px.mesh_fd[i] = tcp_listen(&px.mesh_port[i]);
    }
    for (int try = 0; try < 8 && !up; try++) {
        unsigned base = 10000 + (unsigned)((getpid() + 37 * try) % 250) * 80;

        snprintf(spec, sizeof spec, "3:%u:%u,%u,%u", base, px.mesh_port[1],
                 px.mesh_port[2], px.mesh_port[3]);
        up = px_start((const char *const[]){"--mesh", spec, NULL});
        px.port_ce = (uint16_t)base;
    }
    cr_assert(up, "no free base port for --mesh");
}

TestSuite(nemesis_proxy_mesh, .init = mesh_setup, .fini = px_teardown,
          .timeout = 60.0);

/* --mesh opens i>j on BASE+10i+j to manager j for every ordered pair;
 * "@1" isolates manager 1 and leaves 2>3 alone; a flow selector holds
 * the right halves of both links of a pair. */
Test(nemesis_proxy_mesh, every_directed_pair_has_its_path)
{
    unsigned base = px.port_ce;
    char want[512];
    int a, b;

    snprintf(want, sizeof want,
             "ok 1>2 %u %u 1>3 %u %u 2>1 %u %u 2>3 %u %u "
             "3>1 %u %u 3>2 %u %u",
             base + 12, px.mesh_port[2], base + 13, px.mesh_port[3], base + 21,
             px.mesh_port[1], base + 23, px.mesh_port[3], base + 31,
             px.mesh_port[1], base + 32, px.mesh_port[2]);
    cr_expect_str_eq(cmd("links"), want);
    a = tcp_connect((uint16_t)(base + 12));
    b = accept_one(px.mesh_fd[2]);
    ping_pong(a, b);

    cmd_ok("cut @1");

    cr_expect(closed(a));
    cr_expect(closed(b));
    close(a);
    close(b);
    a = tcp_connect((uint16_t)(base + 31));
    cr_expect(closed(a), "3 reached the isolated 1");
    close(a);
    a = tcp_connect((uint16_t)(base + 23));
    b = accept_one(px.mesh_fd[3]);
    ping_pong(a, b);
    close(a);
    close(b);

    cmd_ok("hold 2->3");
    cr_expect_not_null(strstr(cmd("stats 2>3"), "fwd=hold rev=pass"), "%s",
                       px.line);
    cr_expect_not_null(strstr(cmd("stats 3>2"), "fwd=pass rev=hold"), "%s",
                       px.line);
    cmd_ok("heal");
    cr_expect_eq(stat_of("1>2", "cut"), 0);

    px_quit();
}
