/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_e2e_abuse.c: one real manager under hostile or careless clients.
 *
 * Each test starts its own shoald (sanitized build) and talks to it with
 * raw frames on its socket: clients that never read, pipeline far ahead,
 * ask for huge lists, or send bodies that decode but make no sense. The
 * properties are the ones a user relies on: memory stays bounded, other
 * clients keep being served, and every request still gets its answer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fx.h"
#include "shoal/status.h"
#include "shoal/types.h"
#include "shoal/wire.h"

static struct fx_daemon d;

static void
abuse_setup(void)
{
    fx_daemon_prepare(&d);
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "shoald did not start: %s",
                 d.log);
}

static void
abuse_teardown(void)
{
    /* A clean stop, and nothing the sanitizers or asserts reported. */
    int st = fx_daemon_stop(&d, SIGTERM);
    char *log = fx_read_file(d.log);

    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "shoald did not exit cleanly on SIGTERM: status %d", st);
    cr_expect(!log || (!strstr(log, "AddressSanitizer") &&
                       !strstr(log, "runtime error") &&
                       !strstr(log, "assertion failed")),
              "shoald reported a fault:\n%s", log ? log : "");
    free(log);
    fx_daemon_cleanup(&d);
}

TestSuite(e2e_abuse, .init = abuse_setup, .fini = abuse_teardown,
          .timeout = 120);

/* Raw frames. */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Send a whole buffer on a blocking socket. */
static void
ab_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        cr_assert(w > 0, "send: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
}

static void
ab_send(int fd, uint16_t type, uint64_t id, const struct wire_type *t,
        const void *obj)
{
    struct wire_buf b = {0};

    cr_assert_eq(wire_frame_append(&b, type, 0, id, t, obj), 0);
    ab_send_all(fd, b.data, b.len);
    wire_buf_fini(&b);
}

/* One received frame; body owned by the caller. */
struct ab_frame {
    struct wire_hdr h;
    uint8_t *body;
    size_t len;
};

/*
 * Read one frame from fd, waiting at most timeout_ms. Returns 0, or -1 on
 * the end of the stream or a timeout.
 */
static int
ab_recv(int fd, struct ab_frame *f, int timeout_ms)
{
    uint8_t hdr[WIRE_HDR_BYTES];
    size_t got = 0;
    size_t need = sizeof hdr;
    uint8_t *dst = hdr;

    memset(f, 0, sizeof *f);
    for (int phase = 0; phase < 2; phase++) {
        while (got < need) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            ssize_t n;

            if (poll(&p, 1, timeout_ms) != 1) {
                return -1;
            }
            n = recv(fd, dst + got, need - got, 0);
            if (n <= 0) {
                return -1;
            }
            got += (size_t)n;
        }
        if (phase == 0) {
            cr_assert_eq(wire_hdr_decode(&f->h, hdr, sizeof hdr),
                         WIRE_HDR_BYTES);
            f->len = f->h.len + 4 - WIRE_HDR_BYTES;
            f->body = malloc(f->len ? f->len : 1);
            cr_assert(f->body);
            dst = f->body;
            got = 0;
            need = f->len;
        }
    }
    return 0;
}

/* The status code of a status frame, or 0 for any other frame. */
static uint32_t
ab_status(const struct ab_frame *f, uint64_t *resume_from)
{
    struct shoal_status_msg st = {0};
    uint32_t code;

    if (f->h.type != WIRE_MSG_STATUS) {
        return 0;
    }
    cr_assert_eq(wire_decode(&wire_type_status_msg, &st, f->body, f->len),
                 0);
    code = st.code;
    if (resume_from) {
        *resume_from = st.resume_from;
    }
    wire_free(&wire_type_status_msg, &st);
    return code;
}

/* Connect to the daemon's socket and say hello. */
static int
ab_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct shoal_hello hello = {.proto_min = 1, .proto_max = 1};
    struct ab_frame f;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0 && strlen(d.sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect: %s", strerror(errno));
    ab_send(fd, WIRE_MSG_HELLO, 0, &wire_type_hello, &hello);
    cr_assert_eq(ab_recv(fd, &f, 10000), 0);
    cr_assert_eq(f.h.type, WIRE_MSG_HELLO | WIRE_REPLY);
    free(f.body);
    return fd;
}

/* Create a config of n bytes of data; returns its id (owned). */
static char *
ab_create_config(int fd, const char *name, size_t n)
{
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request req = {.spec = &spec};
    struct shoal_config cfg = {0};
    struct ab_frame f;
    uint8_t *data = malloc(n);
    char *id;

    cr_assert(data);
    memset(data, 'c', n);
    spec.annotations.name = (char *)name;
    spec.data = (struct shoal_bytes){.data = data, .len = n};
    ab_send(fd, WIRE_MSG_CREATE_CONFIG, 1, &wire_type_create_config_request,
            &req);
    free(data);
    cr_assert_eq(ab_recv(fd, &f, 20000), 0);
    cr_assert_eq(f.h.type, WIRE_MSG_CREATE_CONFIG | WIRE_REPLY,
                 "create_config failed: code %u", ab_status(&f, NULL));
    cr_assert_eq(wire_decode(&wire_type_config, &cfg, f.body, f.len), 0);
    id = strdup(cfg.id);
    wire_free(&wire_type_config, &cfg);
    free(f.body);
    return id;
}

/* Resident memory of the daemon in KiB, from /proc. */
static long
ab_rss_kb(void)
{
    char path[64];
    char line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)d.pid);
    f = fopen(path, "r");
    cr_assert(f);
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

/* A round trip on a second connection: once it is answered, the daemon
 * has handled everything it had read from the other connections. */
static void
ab_barrier(int fd, uint64_t id)
{
    struct ab_frame f;

    ab_send(fd, WIRE_MSG_STATS, id, NULL, NULL);
    cr_assert_eq(ab_recv(fd, &f, 60000), 0);
    cr_assert_eq(f.h.type, WIRE_MSG_STATS | WIRE_REPLY);
    free(f.body);
}

/* Output bounds. */

/* A client that pipelines many reads of a large object without reading
 * the replies makes the manager hold at most about one output buffer,
 * and still gets every reply, in order, once it reads. */
Test(e2e_abuse, pipelined_reads_keep_memory_bounded)
{
    enum { N_REQ = 300, DATA = 600 * 1000 };
    struct shoal_id_request get = {0};
    struct wire_buf reqs = {0};
    int fd = ab_connect();
    int probe = ab_connect();
    long before;
    long after;
    char *id = ab_create_config(fd, "big", DATA);

    get.id = id;
    for (uint64_t i = 0; i < N_REQ; i++) {
        cr_assert_eq(wire_frame_append(&reqs, WIRE_MSG_GET_CONFIG, 0, 100 + i,
                                       &wire_type_id_request, &get), 0);
    }
    ab_barrier(probe, 1);
    before = ab_rss_kb();

    ab_send_all(fd, reqs.data, reqs.len); /* about 20 KB: one read */
    ab_barrier(probe, 2);
    after = ab_rss_kb();

    /* 300 replies of 600 KB would be 180 MB; the bound is 8 MiB. */
    cr_expect_lt(after - before, 64 * 1024,
                 "RSS grew by %ld KiB for replies nobody read",
                 after - before);
    for (uint64_t i = 0; i < N_REQ; i++) {
        struct ab_frame f;

        cr_assert_eq(ab_recv(fd, &f, 20000), 0, "reply %" PRIu64
                     " never came", i);
        cr_assert_eq(f.h.type, WIRE_MSG_GET_CONFIG | WIRE_REPLY);
        cr_assert_eq(f.h.id, 100 + i);
        free(f.body);
    }
    wire_buf_fini(&reqs);
    free(id);
    close(probe);
    close(fd);
}

/* While one client reads a list of many megabytes as fast as it can, a
 * second client's requests are still answered promptly: sending a big
 * reply does not hold the loop. */
Test(e2e_abuse, big_list_does_not_block_other_clients)
{
    enum { N_CFG = 48, DATA = 1000 * 1000 };
    struct shoal_list_request lr = {0};
    int fd = ab_connect();
    int probe = ab_connect();
    uint64_t worst = 0;
    uint64_t sent_at = 0;
    uint64_t probe_id = 1;
    size_t list_frames = 0;
    bool list_done = false;
    char name[32];

    for (int i = 0; i < N_CFG; i++) {
        snprintf(name, sizeof name, "cfg-%d", i);
        free(ab_create_config(fd, name, DATA));
    }

    ab_send(fd, WIRE_MSG_LIST_CONFIGS, 7, &wire_type_list_request, &lr);
    while (!list_done) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = probe, .events = POLLIN}};
        struct ab_frame f;

        if (sent_at == 0) {
            ab_send(probe, WIRE_MSG_STATS, probe_id++, NULL, NULL);
            sent_at = now_ms();
        }
        cr_assert(poll(p, 2, 60000) > 0, "nothing for a minute");
        if (p[1].revents & POLLIN) {
            cr_assert_eq(ab_recv(probe, &f, 60000), 0);
            worst = now_ms() - sent_at > worst ? now_ms() - sent_at : worst;
            sent_at = 0;
            free(f.body);
        }
        if (p[0].revents & POLLIN) {
            cr_assert_eq(ab_recv(fd, &f, 60000), 0);
            cr_assert_eq(f.h.type, WIRE_MSG_LIST_CONFIGS | WIRE_REPLY);
            list_done = !(f.h.flags & WIRE_F_MORE);
            list_frames++;
            free(f.body);
        }
    }

    cr_expect_geq(list_frames, N_CFG / 2);
    cr_expect_lt(worst, 1000, "another client waited %" PRIu64 " ms",
                 worst);
    close(probe);
    close(fd);
}

/* Slow and stalled clients. */

/* How many lines of the daemon's log contain needle. */
static int
ab_log_count(const char *needle)
{
    char *log = fx_read_file(d.log);
    int n = 0;

    cr_assert(log, "cannot read %s", d.log);
    for (const char *p = log; (p = strstr(p, needle)); p += strlen(needle)) {
        n++;
    }
    free(log);
    return n;
}

/* A client that sends its request one byte at a time, with pauses,
 * holds nothing up: between its bytes another client is served, and the
 * slow request is answered once its last byte arrives. */
Test(e2e_abuse, slow_sender_does_not_hold_others)
{
    struct wire_buf b = {0};
    struct ab_frame f;
    int slow = ab_connect();
    int probe = ab_connect();

    cr_assert_eq(wire_frame_append(&b, WIRE_MSG_STATS, 0, 77, NULL, NULL), 0);
    for (size_t i = 0; i + 1 < b.len; i++) {
        struct pollfd p = {.fd = slow, .events = POLLIN};

        ab_send_all(slow, b.data + i, 1);
        /* The pause is the point of the test, not a wait for an event:
         * the daemon must be left holding a partial frame. */
        cr_assert_eq(poll(&p, 1, 20), 0, "a reply came before the frame "
                     "was complete (byte %zu of %zu)", i + 1, b.len);
        ab_barrier(probe, 1000 + i);
    }
    ab_send_all(slow, b.data + b.len - 1, 1);
    cr_assert_eq(ab_recv(slow, &f, 10000), 0, "the slow request was "
                 "never answered");
    cr_expect_eq(f.h.type, WIRE_MSG_STATS | WIRE_REPLY);
    cr_expect_eq(f.h.id, 77);
    free(f.body);
    wire_buf_fini(&b);
    close(probe);
    close(slow);
}

/* Send n creates of configs named <prefix>-<i> with data bytes each,
 * at most window in flight, and check that each was acknowledged. */
static void
ab_create_many(int fd, const char *prefix, int n, size_t data, int window)
{
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request req = {.spec = &spec};
    uint8_t *buf = malloc(data);
    char name[64];
    int sent = 0;
    int acked = 0;

    cr_assert(buf);
    memset(buf, 'w', data);
    spec.data = (struct shoal_bytes){.data = buf, .len = data};
    spec.annotations.name = name;
    while (acked < n) {
        struct wire_buf out = {0};
        struct ab_frame f;

        while (sent < n && sent - acked < window) {
            snprintf(name, sizeof name, "%s-%d", prefix, sent);
            cr_assert_eq(wire_frame_append(&out, WIRE_MSG_CREATE_CONFIG, 0,
                                           (uint64_t)sent + 1,
                                           &wire_type_create_config_request,
                                           &req), 0);
            sent++;
        }
        if (out.len) {
            ab_send_all(fd, out.data, out.len);
        }
        wire_buf_fini(&out);
        cr_assert_eq(ab_recv(fd, &f, 30000), 0, "create %d was never "
                     "answered", acked);
        cr_assert_eq(f.h.type, WIRE_MSG_CREATE_CONFIG | WIRE_REPLY,
                     "create %d refused: code %u", acked, ab_status(&f, NULL));
        free(f.body);
        acked++;
    }
    free(buf);
}

/* A watcher that stops reading costs the manager one bounded output
 * buffer: writes go on being acknowledged, and when the watcher reads
 * again it gets what was buffered, then an end that names the version
 * to resume from, logged once. */
Test(e2e_abuse, stalled_watcher_is_ended_with_a_resume_version)
{
    /* 4 KiB events: the 8 MiB output bound holds about 2,000 of them, so
     * 6,500 writes pass the 4,096 entries of retained history. */
    enum { N_WRITES = 6500, DATA = 4096 };
    struct shoal_watch_request wr = {0};
    int watcher = ab_connect();
    int writer = ab_connect();
    size_t events = 0;
    uint64_t resume = 0;
    unsigned code = 0;

    ab_send(watcher, WIRE_MSG_WATCH, 5, &wire_type_watch_request, &wr);
    ab_barrier(writer, 1); /* the watch is registered */
    ab_create_many(writer, "stall", N_WRITES, DATA, 64);

    for (;;) {
        struct ab_frame f;

        cr_assert_eq(ab_recv(watcher, &f, 30000), 0, "the watch neither "
                     "sent events nor ended (%zu events)", events);
        cr_assert_eq(f.h.id, 5);
        if (f.h.type == WIRE_MSG_STATUS) {
            code = ab_status(&f, &resume);
            free(f.body);
            break;
        }
        events++;
        free(f.body);
    }
    cr_log_info("events=%zu resume=%" PRIu64, events, resume);
    cr_expect_eq(code, SHOAL_OUT_OF_RANGE, "the watch ended with code %u",
                 code);
    cr_expect_gt(events, 0, "nothing was delivered before the end");
    cr_expect_lt(events, (size_t)N_WRITES, "every event was buffered");
    cr_expect_gt(resume, 0, "the end names no version to resume from");

    /* The manager still answers, and said it once. */
    ab_barrier(writer, 2);
    cr_expect_eq(ab_log_count("watch ended"), 1,
                 "want one \"watch ended\" line");
    close(writer);
    close(watcher);
}

/* Who may connect. */

/* The control socket admits only its owner: a process of another user
 * is refused by the kernel before shoald sees it. Run as root, the test
 * tries it from a child that drops to "nobody"; otherwise it can only
 * check the permissions that make it so. */
Test(e2e_abuse, socket_refuses_other_users)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    pid_t pid;
    int status;
    int fd;

    cr_assert_eq(stat(d.sock, &st), 0, "stat %s: %s", d.sock,
                 strerror(errno));
    cr_expect_eq(st.st_mode & 0777, 0600, "socket mode %o",
                 (unsigned)(st.st_mode & 0777));
    cr_expect_eq(st.st_uid, geteuid());
    if (geteuid() != 0) {
        return; /* no other user to become */
    }
    memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
    pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
            setuid(65534) != 0) {
            _exit(3);
        }
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            _exit(4);
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            _exit(1);
        }
        _exit(errno == EACCES ? 0 : 2);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "another user's connect: %s",
              !WIFEXITED(status) ? "child died"
              : WEXITSTATUS(status) == 1 ? "was accepted"
              : WEXITSTATUS(status) == 2 ? "failed, but not with EACCES"
                                         : "could not become nobody");
    /* And the owner is still served. */
    fd = ab_connect();
    ab_barrier(fd, 1);
    close(fd);
}
