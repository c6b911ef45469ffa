/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * peer_net.c: the set of peer links: listeners, dialers with capped
 * exponential back-off, and the end-of-turn reap.
 *
 * Addresses are numeric (a name lookup would block the loop). A dialer
 * has at most one connection at a time and, while not stopped, always
 * either a connection or a retry timer. The reap calls on_down for the
 * connections that were up, then frees connections, listeners and
 * dialers, in that order, so that on_down may still ask a connection for
 * its dialer. A one-shot dialer (peer_dial_anon, the CA fetch) has one
 * connection and no retry timer: when that ends, the dialer retires to
 * the dead list, and the reap reports a failure or a fetched CA just
 * before it frees the dialer.
 */
#include "peer/peer_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEER_ACCEPTS_PER_EVENT 64
#define PEER_ACCEPT_PAUSE_MS 100 /* after EMFILE and alike */
#define PEER_LISTEN_BACKLOG 128

/* ---- Addresses --------------------------------------------------------- */

/* Parse "IPv4:port" or "[IPv6]:port", numeric only. */
static int
peer_addr_parse(const char *addr, bool passive, struct sockaddr_storage *sa,
                socklen_t *sa_len)
{
    struct addrinfo hints = {
        .ai_socktype = SOCK_STREAM,
        .ai_flags =
            AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    struct addrinfo *res = NULL;
    char host[PEER_ADDR_MAX];
    const char *colon = strrchr(addr, ':');
    bool bracketed = addr[0] == '[';
    size_t hlen;

    if (!colon || colon == addr || colon[1] == '\0') {
        return -EINVAL;
    }
    hlen = (size_t)(colon - addr);
    if (bracketed) {
        if (hlen < 3 || addr[hlen - 1] != ']') {
            return -EINVAL;
        }
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        return -EINVAL;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    /* An IPv6 host needs its brackets: "::1:7000" is ambiguous. */
    if (!bracketed && strchr(host, ':')) {
        return -EINVAL;
    }
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
    }
    if (strlen(colon + 1) > 5 || atoi(colon + 1) > 65535) {
        return -EINVAL;
    }
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) {
        return -EINVAL;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *sa_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static uint16_t
peer_sa_port(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

/* "ip:port" or "[ip]:port" into out. */
static void
peer_sa_format(const struct sockaddr_storage *sa, char out[PEER_ADDR_MAX])
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
                  sizeof ip);
        snprintf(out, PEER_ADDR_MAX, "[%s]:%u", ip, peer_sa_port(sa));
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip,
                  sizeof ip);
        snprintf(out, PEER_ADDR_MAX, "%s:%u", ip, peer_sa_port(sa));
    }
}

/* Raft messages are small and latency-bound: no Nagle. Keepalive finds
 * a peer whose host vanished while no raft message was due. */
static void
peer_sock_opts(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

/* ---- The reap ---------------------------------------------------------- */

/* Tell the owner how a one-shot dialer ended, if it is still owed. */
static void
peer_dialer_report(struct peer_dialer *d)
{
    struct peer_net *n = d->net;

    if (!d->report) {
        return;
    }
    d->report = false;
    if (d->fetch) {
        d->fetch_cb(d->end_rc, d->end_rc == 0 ? d->ca_der : NULL,
                    d->end_rc == 0 ? d->ca_len : 0, d->end_why, d->fetch_arg);
    } else if (n->ops.on_dial_fail) {
        n->ops.on_dial_fail(d, d->end_rc, d->end_why, n->arg);
    }
}

static void
peer_net_reap_cb(struct loop *l, void *arg)
{
    struct peer_net *n = arg;
    struct peer_conn *c;
    struct peer_listener *pl;
    struct peer_dialer *d;

    (void)l;
    while ((c = TAILQ_FIRST(&n->dead_conns))) {
        TAILQ_REMOVE(&n->dead_conns, c, link);
        if (c->was_up && n->ops.on_down) {
            n->ops.on_down(c, c->end_rc, c->why, n->arg);
        }
        peer__conn_free(c);
    }
    while ((pl = TAILQ_FIRST(&n->dead_listeners))) {
        TAILQ_REMOVE(&n->dead_listeners, pl, link);
        free(pl);
    }
    while ((d = TAILQ_FIRST(&n->dead_dialers))) {
        TAILQ_REMOVE(&n->dead_dialers, d, link);
        peer_dialer_report(d);
        peer_tls_ctx_free(d->tls);
        OPENSSL_free(d->ca_der);
        free(d);
    }
}

void
peer__net_reap_soon(struct peer_net *n)
{
    loop_defer(n->loop, &n->reap);
}

/* ---- The set ----------------------------------------------------------- */

int
peer_net_init(struct peer_net *n, struct loop *l, struct peer_tls_ctx *tls,
              const struct peer_config *cfg, const struct peer_ops *ops,
              void *arg)
{
    struct peer_config c = cfg ? *cfg : (struct peer_config){0};

    if (!ops || !ops->authorize || !ops->on_frame) {
        return -EINVAL;
    }
    if (c.out_max_bytes == 0) {
        c.out_max_bytes = PEER_OUT_MAX_DEFAULT;
    }
    if (c.out_max_bytes < WIRE_MAX_FRAME) {
        return -EINVAL;
    }
    if (c.handshake_ms == 0) {
        c.handshake_ms = PEER_HANDSHAKE_MS_DEFAULT;
    }
    if (c.max_conns == 0) {
        c.max_conns = PEER_MAX_CONNS_DEFAULT;
    }
    memset(n, 0, sizeof *n);
    n->loop = l;
    n->tls = tls;
    n->cfg = c;
    n->ops = *ops;
    n->arg = arg;
    TAILQ_INIT(&n->conns);
    TAILQ_INIT(&n->dead_conns);
    TAILQ_INIT(&n->listeners);
    TAILQ_INIT(&n->dead_listeners);
    TAILQ_INIT(&n->dialers);
    TAILQ_INIT(&n->dead_dialers);
    n->reap = (struct loop_defer){.cb = peer_net_reap_cb, .arg = n};
    return 0;
}

void
peer_net_fini(struct peer_net *n)
{
    struct peer_conn *c;
    struct peer_listener *pl;
    struct peer_dialer *d;

    if (!n->loop) {
        return;
    }
    while ((d = TAILQ_FIRST(&n->dialers))) {
        peer_dialer_stop(d);
    }
    while ((pl = TAILQ_FIRST(&n->listeners))) {
        peer_listener_close(pl);
    }
    while ((c = TAILQ_FIRST(&n->conns))) {
        peer__conn_end(c, 0, LOG_DEBUG_LEVEL, "shutting down");
    }
    /* Nobody listens any more: no on_down, and no report a one-shot
     * dialer that ended earlier in this turn still owed. */
    n->ops.on_down = NULL;
    for (d = TAILQ_FIRST(&n->dead_dialers); d; d = TAILQ_NEXT(d, link)) {
        d->report = false;
    }
    loop_defer_cancel(n->loop, &n->reap);
    peer_net_reap_cb(n->loop, n);
    peer_tls_ctx_free(n->tls);
    memset(n, 0, sizeof *n);
}

void
peer_net_set_tls(struct peer_net *n, struct peer_tls_ctx *tls)
{
    ASSERT(tls);
    peer_tls_ctx_free(n->tls);
    n->tls = tls;
}

void
peer_net_stats(const struct peer_net *n, struct peer_stats *st)
{
    *st = n->stats;
}

/* ---- Listeners --------------------------------------------------------- */

static void
peer_listener_pause_cb(struct loop *l, void *arg)
{
    struct peer_listener *pl = arg;

    if (loop_io_start(l, &pl->io) != 0) {
        /* Try again later rather than never accept again. */
        loop_timer_start(l, &pl->pause, PEER_ACCEPT_PAUSE_MS);
    }
}

/* Out of descriptors or memory: the pending connection stays queued and
 * epoll would report it on every turn, so stop watching for a while. */
static void
peer_listener_pause(struct peer_listener *pl, int err)
{
    struct loop *l = pl->net->loop;

    log_warn("peer", "accept paused: addr=%s: %s", pl->addr, strerror(err));
    loop_io_stop(l, &pl->io);
    loop_timer_start(l, &pl->pause, PEER_ACCEPT_PAUSE_MS);
}

static void
peer_listener_accept(struct peer_listener *pl, int fd,
                     const struct sockaddr_storage *sa)
{
    struct peer_net *n = pl->net;
    char addr[PEER_ADDR_MAX];
    struct peer_conn *c;
    int rc;

    peer_sa_format(sa, addr);
    n->stats.accepted++;
    if (n->n_inbound >= n->cfg.max_conns) {
        n->stats.refused++;
        log_warn("peer", "refused peer: dir=in addr=%s reason=\"%s\"", addr,
                 "too many connections");
        close(fd);
        return;
    }
    peer_sock_opts(fd);
    rc = peer__conn_new(n, fd, addr, NULL, false, pl->anon_ok, &c);
    if (rc != 0) {
        n->stats.refused++;
        log_warn("peer", "refused peer: dir=in addr=%s reason=\"%s\"", addr,
                 err_str(rc));
    }
}

static void
peer_listener_io_cb(struct loop *l, unsigned events, void *arg)
{
    struct peer_listener *pl = arg;

    (void)l;
    (void)events;
    for (int i = 0; i < PEER_ACCEPTS_PER_EVENT && !pl->closed; i++) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept4(pl->io.fd, (struct sockaddr *)&sa, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            peer_listener_accept(pl, fd, &sa);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            peer_listener_pause(pl, errno);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_warn("peer", "accept failed: addr=%s: %s", pl->addr,
                     strerror(errno));
        }
        break;
    }
}

int
peer_listen(struct peer_net *n, const char *addr, struct peer_listener **out)
{
    return peer_listen_flags(n, addr, 0, out);
}

int
peer_listen_flags(struct peer_net *n, const char *addr, unsigned flags,
                  struct peer_listener **out)
{
    struct sockaddr_storage sa;
    socklen_t sa_len = sizeof sa;
    struct peer_listener *pl;
    int one = 1;
    int fd;
    int rc;

    if (flags & ~PEER_LISTEN_ANON) {
        return -EINVAL;
    }
    /* Accepted connections present n's certificate. */
    if (!n->tls) {
        return ERR_BADSTATE;
    }
    rc = peer_addr_parse(addr, true, &sa, &sa_len);
    if (rc != 0) {
        return rc;
    }
    pl = calloc(1, sizeof *pl);
    if (!pl) {
        return ERR_NOMEM;
    }
    fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto fail_free;
    }
    /* A restarted manager must get its port back while connections of
     * its previous life are in TIME_WAIT. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sa_len) != 0 ||
        listen(fd, PEER_LISTEN_BACKLOG) != 0) {
        rc = -errno;
        goto fail_close;
    }
    sa_len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sa_len) != 0) {
        rc = -errno;
        goto fail_close;
    }
    pl->net = n;
    pl->anon_ok = (flags & PEER_LISTEN_ANON) != 0;
    pl->port = peer_sa_port(&sa);
    peer_sa_format(&sa, pl->addr);
    pl->io = (struct loop_io){
        .fd = fd, .events = LOOP_READ, .cb = peer_listener_io_cb, .arg = pl};
    pl->pause = (struct loop_timer){.cb = peer_listener_pause_cb, .arg = pl};
    rc = loop_io_start(n->loop, &pl->io);
    if (rc != 0) {
        goto fail_close;
    }
    TAILQ_INSERT_TAIL(&n->listeners, pl, link);
    log_notice("peer", "listening: addr=%s anonymous=%s", pl->addr,
               pl->anon_ok ? "allowed" : "refused");
    *out = pl;
    return 0;

fail_close:
    close(fd);
fail_free:
    free(pl);
    ASSERT(rc != 0);
    return rc;
}

uint16_t
peer_listener_port(const struct peer_listener *pl)
{
    return pl->port;
}

void
peer_listener_close(struct peer_listener *pl)
{
    struct peer_net *n = pl->net;

    if (pl->closed) {
        return;
    }
    pl->closed = true;
    loop_io_stop(n->loop, &pl->io);
    loop_timer_stop(n->loop, &pl->pause);
    close(pl->io.fd);
    TAILQ_REMOVE(&n->listeners, pl, link);
    TAILQ_INSERT_TAIL(&n->dead_listeners, pl, link);
    peer__net_reap_soon(n);
}

/* ---- Dialers ----------------------------------------------------------- */

uint32_t
peer_backoff_ms(uint32_t n_fail)
{
    uint32_t ms;

    /* 50 << 5 already exceeds the cap; larger shifts would overflow. */
    if (n_fail >= 5) {
        return PEER_BACKOFF_MAX_MS;
    }
    ms = (uint32_t)PEER_BACKOFF_FIRST_MS << n_fail;
    return ms < PEER_BACKOFF_MAX_MS ? ms : PEER_BACKOFF_MAX_MS;
}

void
peer__dialer_log(struct peer_dialer *d, enum log_level level, const char *why)
{
    if (strcmp(why, d->last_why) == 0) {
        d->suppressed++;
        log_debug("peer",
                  "cannot connect to peer: dir=out addr=%s "
                  "reason=\"%s\" repeat=%u",
                  d->addr, why, d->suppressed);
        return;
    }
    if (d->suppressed > 0) {
        log_write(level, "peer",
                  "cannot connect to peer: dir=out addr=%s reason=\"%s\" "
                  "suppressed=%u",
                  d->addr, why, d->suppressed);
    } else {
        log_write(level, "peer",
                  "cannot connect to peer: dir=out addr=%s reason=\"%s\"",
                  d->addr, why);
    }
    snprintf(d->last_why, sizeof d->last_why, "%s", why);
    d->suppressed = 0;
}

static void
peer_dialer_schedule(struct peer_dialer *d)
{
    d->st.delay_ms = peer_backoff_ms(d->st.n_fail);
    d->st.n_fail++;
    loop_timer_start(d->net->loop, &d->retry, d->st.delay_ms);
}

/* A one-shot dialer is done: free it at the end of the turn, with the
 * report due when its connection never came up. */
static void
peer_dialer_retire(struct peer_dialer *d, bool report, int rc, const char *why)
{
    struct peer_net *n = d->net;

    d->stopped = true;
    d->report = report;
    d->end_rc = rc;
    snprintf(d->end_why, sizeof d->end_why, "%s", why);
    TAILQ_REMOVE(&n->dialers, d, link);
    TAILQ_INSERT_TAIL(&n->dead_dialers, d, link);
    peer__net_reap_soon(n);
}

static void
peer_dialer_try(struct peer_dialer *d)
{
    struct peer_net *n = d->net;
    char why[PEER_WHY_MAX];
    int fd;
    int rc;

    d->st.n_tries++;
    n->stats.dialed++;
    fd = socket(d->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    peer_sock_opts(fd);
    if (connect(fd, (struct sockaddr *)&d->sa, d->sa_len) != 0 &&
        errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        goto fail;
    }
    /* The connection reports its end to peer__dialer_conn_ended. */
    rc = peer__conn_new(n, fd, d->addr, d, true, false, &d->conn);
    if (rc != 0) {
        d->conn = NULL;
        goto fail;
    }
    return;

fail:
    snprintf(why, sizeof why, "connect: %s", err_str(rc));
    peer__dialer_log(d, LOG_INFO, why);
    if (d->once) {
        peer_dialer_retire(d, true, rc, why);
    } else {
        peer_dialer_schedule(d);
    }
}

static void
peer_dialer_retry_cb(struct loop *l, void *arg)
{
    struct peer_dialer *d = arg;

    (void)l;
    peer_dialer_try(d);
}

void
peer__dialer_conn_ended(struct peer_dialer *d, bool was_up, int rc,
                        const char *why)
{
    d->conn = NULL;
    d->st.up = false;
    if (d->stopped) {
        return;
    }
    if (d->once) {
        /* One that was up was reported by on_down already; a fetch
         * always reports, its success included. */
        peer_dialer_retire(d, !was_up, rc, why);
        return;
    }
    if (was_up) {
        d->st.n_fail = 0;
    }
    peer_dialer_schedule(d);
}

void
peer__dialer_conn_up(struct peer_dialer *d)
{
    if (d->st.n_fail > 0 && d->last_why[0] != '\0') {
        log_notice("peer",
                   "connected after failures: dir=out addr=%s "
                   "tries=%u suppressed=%u",
                   d->addr, d->st.n_fail, d->suppressed);
    }
    d->st.up = true;
    d->st.n_up++;
    d->st.n_fail = 0;
    d->suppressed = 0;
    d->last_why[0] = '\0';
}

/* A dialer of n for addr, not yet dialing. */
static int
peer_dialer_new(struct peer_net *n, const char *addr, void *udata,
                struct peer_dialer **out)
{
    struct peer_dialer *d = calloc(1, sizeof *d);
    int rc;

    if (!d) {
        return ERR_NOMEM;
    }
    d->sa_len = sizeof d->sa;
    rc = peer_addr_parse(addr, false, &d->sa, &d->sa_len);
    if (rc != 0 || peer_sa_port(&d->sa) == 0) {
        free(d);
        return -EINVAL;
    }
    d->net = n;
    d->udata = udata;
    peer_sa_format(&d->sa, d->addr);
    d->retry = (struct loop_timer){.cb = peer_dialer_retry_cb, .arg = d};
    *out = d;
    return 0;
}

/* Put d in n's set and make its first try. */
static void
peer_dialer_start(struct peer_dialer *d, struct peer_dialer **out)
{
    TAILQ_INSERT_TAIL(&d->net->dialers, d, link);
    *out = d;
    peer_dialer_try(d);
}

int
peer_dial(struct peer_net *n, const char *addr, void *udata,
          struct peer_dialer **out)
{
    struct peer_dialer *d;
    int rc;

    /* The dialed node checks our certificate: without one it refuses. */
    if (!n->tls) {
        return ERR_BADSTATE;
    }
    rc = peer_dialer_new(n, addr, udata, &d);
    if (rc != 0) {
        return rc;
    }
    peer_dialer_start(d, out);
    return 0;
}

int
peer_dial_anon(struct peer_net *n, const char *addr, const uint8_t *ca_der,
               size_t ca_len, void *udata, struct peer_dialer **out)
{
    struct peer_dialer *d;
    int rc;

    if (!ca_der) {
        return ERR_TLS; /* never a dial that verifies nothing */
    }
    rc = peer_dialer_new(n, addr, udata, &d);
    if (rc != 0) {
        return rc;
    }
    rc = peer__tls_ctx_client(ca_der, ca_len, &d->tls);
    if (rc != 0) {
        free(d);
        return rc;
    }
    d->once = true;
    peer_dialer_start(d, out);
    return 0;
}

int
peer_fetch_ca_unverified(struct peer_net *n, const char *addr,
                         peer_ca_fetch_cb *cb, void *arg,
                         struct peer_dialer **out)
{
    struct peer_dialer *d;
    int rc;

    if (!cb) {
        return -EINVAL;
    }
    rc = peer_dialer_new(n, addr, NULL, &d);
    if (rc != 0) {
        return rc;
    }
    rc = peer__tls_ctx_client(NULL, 0, &d->tls);
    if (rc != 0) {
        free(d);
        return rc;
    }
    d->once = true;
    d->fetch = true;
    d->fetch_cb = cb;
    d->fetch_arg = arg;
    peer_dialer_start(d, out);
    return 0;
}

void
peer_dialer_stop(struct peer_dialer *d)
{
    struct peer_net *n = d->net;

    /* The owner decided: what a one-shot dialer still owed is void. */
    d->report = false;
    if (d->stopped) {
        return;
    }
    d->stopped = true;
    loop_timer_stop(n->loop, &d->retry);
    if (d->conn) {
        peer__conn_end(d->conn, 0, LOG_DEBUG_LEVEL, "dialer stopped");
    }
    TAILQ_REMOVE(&n->dialers, d, link);
    TAILQ_INSERT_TAIL(&n->dead_dialers, d, link);
    peer__net_reap_soon(n);
}

void *
peer_dialer_udata(const struct peer_dialer *d)
{
    return d->udata;
}

void
peer_dialer_state(const struct peer_dialer *d, struct peer_dialer_state *st)
{
    *st = d->st;
}
