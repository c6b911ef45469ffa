/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/echo.c: the echo target, the machine's request/response
 * limit over a Unix socket.
 *
 * The simplest server that speaks shoal's framing: one thread, one epoll
 * set, non-blocking sockets. The hello gets a real hello reply, so that
 * libshoal's clients connect to it unchanged; every other frame is sent
 * back byte for byte with the reply bit set in its type. What a manager
 * does beyond this (decode, look up, encode) is what its fraction of the
 * echo rate measures.
 */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shoal/wire.h"

struct echo_conn {
    int fd;
    struct wire_buf in;
    struct wire_buf out;
    bool want_out; /* EPOLLOUT is armed */
};

static volatile sig_atomic_t echo_stop;

static void
echo_term_cb(int sig)
{
    (void)sig;
    echo_stop = 1;
}

static void
echo_conn_free(struct echo_conn *c)
{
    close(c->fd);
    wire_buf_fini(&c->in);
    wire_buf_fini(&c->out);
    free(c);
}

/* Answer every whole frame in c->in. Returns 0, or -1 on garbage. */
static int
echo_frames(struct echo_conn *c)
{
    struct shoal_hello_reply hr = {0};
    struct wire_hdr h;
    size_t off = 0, n;
    uint8_t *f;

    hr.proto = WIRE_PROTO_VERSION;
    hr.node_id = "echo";
    hr.server_version = "echo";
    hr.max_frame_bytes = WIRE_MAX_FRAME;
    while (wire_hdr_decode(&h, c->in.data + off, c->in.len - off) > 0) {
        n = 4 + (size_t)h.len;
        if (c->in.len - off < n) {
            break;
        }
        if (h.type == WIRE_MSG_HELLO) {
            if (wire_frame_append(&c->out, WIRE_MSG_HELLO | WIRE_REPLY, 0,
                                  h.id, &wire_type_hello_reply, &hr) != 0) {
                return -1;
            }
        } else {
            if (wire_buf_append(&c->out, c->in.data + off, n) != 0) {
                return -1;
            }
            f = c->out.data + c->out.len - n;
            f[6] |= WIRE_REPLY >> 8;
        }
        off += n;
    }
    if (off == 0 && c->in.len >= WIRE_HDR_BYTES &&
        wire_hdr_decode(&h, c->in.data, c->in.len) < 0) {
        return -1;
    }
    wire_buf_consume(&c->in, off);
    return 0;
}

/* Write what is queued; arm EPOLLOUT while some is left. */
static int
echo_flush(int ep, struct echo_conn *c)
{
    struct epoll_event ev = {.data.ptr = c};
    ssize_t n;

    while (c->out.len > 0) {
        n = write(c->fd, c->out.data, c->out.len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n < 0) {
            return -1;
        }
        wire_buf_consume(&c->out, (size_t)n);
    }
    if ((c->out.len > 0) != c->want_out) {
        c->want_out = c->out.len > 0;
        ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Read what is there and answer it. Returns -1 when c must close. */
static int
echo_readable(int ep, struct echo_conn *c)
{
    ssize_t n;

    for (;;) {
        if (wire_buf_reserve(&c->in, 65536) != 0) {
            return -1;
        }
        n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            return -1;
        }
        c->in.len += (size_t)n;
        if ((size_t)n < 65536) {
            break;
        }
    }
    if (echo_frames(c) != 0) {
        return -1;
    }
    return echo_flush(ep, c);
}

static void
echo_accept(int ep, int lfd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    struct echo_conn *c;
    int fd;

    for (;;) {
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            echo_conn_free(c);
        }
    }
}

void
bench_echo_serve(int lfd)
{
    struct epoll_event evs[64], ev = {.events = EPOLLIN, .data.ptr = NULL};
    struct sigaction sa = {.sa_handler = echo_term_cb};
    struct echo_conn *c;
    int ep, n;

    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        _exit(1);
    }
    while (!echo_stop) {
        n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            if (!c) {
                echo_accept(ep, lfd);
                continue;
            }
            if ((evs[i].events & (EPOLLERR | EPOLLHUP)) &&
                !(evs[i].events & EPOLLIN)) {
                echo_conn_free(c);
                continue;
            }
            if (((evs[i].events & EPOLLIN) && echo_readable(ep, c) != 0) ||
                ((evs[i].events & EPOLLOUT) && echo_flush(ep, c) != 0)) {
                echo_conn_free(c);
            }
        }
    }
    _exit(0);
}
