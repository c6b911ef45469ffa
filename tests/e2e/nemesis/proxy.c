/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * proxy.c: nemesis-proxy, a fault-injecting TCP proxy between managers.
 *
 * One thread, one epoll loop, 127.0.0.1 only. It forwards the bytes of
 * every connection both ways, unchanged, and on command cuts, holds,
 * drops, delays or clogs them, so that a test can make partitions of any
 * shape between real shoald processes without network namespaces.
 *
 * Links and port mapping
 * ----------------------
 * A link is a listening port and the port it forwards to, named after
 * the two endpoints it joins: link "1>2" is the path on which manager 1
 * dials manager 2. With --mesh N:BASE:T1,...,TN (managers 1..N whose
 * real peer ports are T1..TN, N <= 7) the proxy opens, for every ordered
 * pair i != j, the link i>j listening on BASE + 10*i + j and forwarding
 * to Tj; manager i must dial manager j at 127.0.0.1:BASE+10*i+j. (With
 * BASE 47000, port 47012 is "1 dials 2" and 47021 is "2 dials 1".) Every
 * directed pair thus has a path of its own, even though all managers of
 * a cluster would otherwise dial j at the one address j advertises.
 *
 * Directions. A connection carries bytes both ways: on link i>j the
 * forward direction runs from i (the dialer) to j, the reverse one from
 * j to i. Raft traffic uses whichever connection is up, so a fault meant
 * for "the bytes from i to j" must hit the forward half of link i>j and
 * the reverse half of link j>i: the flow selector "i->j" names exactly
 * those two halves, whoever dialed.
 *
 * Faults, and why none corrupts a TLS stream
 * ------------------------------------------
 *   cut    close every connection of the link with a reset, and reset
 *          each new one as soon as it is accepted (the dialer's connect
 *          succeeds, its first read fails: a refusal, as seen through a
 *          listening proxy). A partition. A cut is of whole links: a
 *          flow selector cuts both links it touches.
 *   hold   stop forwarding a direction; bytes wait in the proxy (then in
 *          the kernel, once the proxy's queue is full: TCP flow control)
 *          and flow again, whole and in order, on heal. The other
 *          direction keeps flowing: "can send but not receive", exactly
 *          what a one-way partition does to an established TCP stream,
 *          whose lost segments are retransmitted until the path heals.
 *   drop   discard a direction's bytes. A stream missing bytes cannot be
 *          resumed (the next TLS record would fail its MAC), so each
 *          connection that lost bytes is marked and is reset on heal;
 *          meanwhile its other direction keeps flowing. The end of
 *          stream (FIN) of a dropped direction is held, not forwarded.
 *   delay  forward each chunk MS milliseconds after it was read (the
 *          chunks already waiting keep their time; order is kept).
 *   clog   hold for MS milliseconds from now, then release everything.
 *   heal   undo all of the above on the selection.
 * No fault ever removes or alters bytes in the middle of a connection
 * that then goes on: bytes are delayed whole, or the connection dies.
 *
 * Control channel
 * ---------------
 * A Unix stream socket (--control PATH), any number of clients, one
 * command a line, each answered by one line "ok[ ...]" or "err <why>"
 * after it took effect, so a test waits for the answer and never sleeps:
 *
 *   cut SEL...        hold SEL...       drop SEL...
 *   delay MS SEL...   clog MS SEL...    heal [SEL...]   (none: all)
 *   links             -> ok NAME LISTEN TARGET ...
 *   stats LINK        -> ok conns=N accepted=N reset=N cut=0|1
 *                        fwd=pass|hold|drop rev=... fwd_bytes=N ...
 *                        (see cmd_stats)
 *   fds               -> ok N (open descriptors, for leak checks)
 *   ping              -> ok
 *   quit              -> ok, then the proxy frees everything and exits 0
 *
 * SEL is "A>B" (both directions of that link), "A->B" (the bytes from A
 * to B on both links between them), "A-B" (both links between A and B,
 * both directions), "@A" (every link touching A) or "*" (every link).
 * Endpoint names are [A-Za-z0-9_.]. Once every listener and the control
 * socket are bound, the proxy prints "ready" on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define PROXY_MAX_LINKS 64
#define PROXY_NAME_MAX 15 /* bytes of an endpoint name */
#define PROXY_CHUNK 65536 /* bytes read at once */
/* Bytes queued per direction before the proxy stops reading from its
 * source, so that TCP flow control pushes back on the sender. */
#define PROXY_QUEUE_MAX (1 << 20)
#define PROXY_LINE_MAX 4096 /* bytes of one control command */
#define FWD 0               /* dialer -> listener's target */
#define REV 1               /* back */

enum ep_kind {
    EP_LISTEN,
    EP_CONN,
    EP_CTL_LISTEN,
    EP_CTL,
    EP_SIGNAL,
};

/* What an epoll event points at. */
struct endpoint {
    enum ep_kind kind;
    int fd;
    uint32_t events; /* the interest registered now */
    void *owner;     /* struct link, conn or ctl */
    bool off;        /* taken out of epoll: finished both ways */
};

enum block_mode {
    BLOCK_PASS,
    BLOCK_HOLD,
    BLOCK_DROP,
};

/* The faults set on one direction of a link. */
struct dir_fault {
    enum block_mode block;
    int64_t delay_ns;
    int64_t clog_until; /* monotonic ns; 0 when not clogged */
};

struct chunk {
    struct chunk *next;
    int64_t due; /* monotonic ns before which it is held */
    size_t len;
    size_t off; /* bytes of it already sent */
    char data[];
};

/* One direction of one connection: src's bytes on their way to dst. */
struct half {
    struct endpoint *src;
    struct endpoint *dst;
    struct chunk *head;
    struct chunk *tail;
    size_t queued;
    bool eof;  /* src ended its stream */
    bool shut; /* and we passed the end on to dst */
};

struct conn {
    struct link *link;
    struct conn *next;
    struct endpoint down; /* accepted from the dialer */
    struct endpoint up;   /* ours to the target */
    struct half h[2];     /* FWD: down -> up, REV: up -> down */
    bool connecting;
    bool tainted; /* bytes were dropped: reset on heal */
    bool dead;
};

struct link {
    char a[PROXY_NAME_MAX + 1]; /* the dialer's end */
    char b[PROXY_NAME_MAX + 1]; /* the listener's end */
    uint16_t port;
    uint16_t target;
    struct endpoint listen;
    bool cut;
    struct dir_fault dir[2];
    struct conn *conns;
    size_t n_conns;
    uint64_t accepted;
    uint64_t reset;      /* connections we reset (cut, heal, errors) */
    uint64_t bytes[2];   /* forwarded */
    uint64_t dropped[2]; /* discarded by drop */
};

struct ctl {
    struct endpoint ep;
    struct ctl *next;
    char buf[PROXY_LINE_MAX];
    size_t len;
    bool dead;
};

struct proxy {
    int epfd;
    struct link links[PROXY_MAX_LINKS];
    size_t n_links;
    struct endpoint ctl_listen;
    struct endpoint sig;
    struct ctl *ctls;
    const char *ctl_path;
    bool quit;
};

/* One selected piece of a link: which directions a command touches. */
struct sel {
    struct link *link;
    bool dir[2];
};

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "nemesis-proxy: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- Epoll helpers ------------------------------------------------------ */

static int
ep_set(struct proxy *p, struct endpoint *ep, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = ep};

    if (ep->events == events || ep->off) {
        return 0;
    }
    if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, ep->fd, &ev) != 0) {
        return -errno;
    }
    ep->events = events;
    return 0;
}

static int
ep_add(struct proxy *p, struct endpoint *ep, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = ep};

    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, ep->fd, &ev) != 0) {
        return -errno;
    }
    ep->events = events;
    return 0;
}

/* Close fd so that the other end sees a reset, not an orderly end: a
 * cut path must not look like a peer that finished its stream. */
static void
close_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* ---- Connections -------------------------------------------------------- */

static void
half_free_queue(struct half *h)
{
    while (h->head != NULL) {
        struct chunk *c = h->head;

        h->head = c->next;
        free(c);
    }
    h->tail = NULL;
    h->queued = 0;
}

/* Mark c dead and close its sockets; the memory goes at the turn's end,
 * since an event for it may still be pending in this turn. */
static void
conn_kill(struct proxy *p, struct conn *c, bool reset)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    if (reset) {
        c->link->reset++;
    }
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->down.fd, NULL);
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->up.fd, NULL);
    if (reset) {
        close_reset(c->down.fd);
        close_reset(c->up.fd);
    } else {
        close(c->down.fd);
        close(c->up.fd);
    }
    c->down.fd = c->up.fd = -1;
    half_free_queue(&c->h[FWD]);
    half_free_queue(&c->h[REV]);
}

static const struct dir_fault *
half_fault(const struct conn *c, const struct half *h)
{
    return &c->link->dir[h == &c->h[FWD] ? FWD : REV];
}

/* Whether h's head may leave now: nothing holds the direction. */
static bool
half_open(const struct conn *c, const struct half *h, int64_t now)
{
    const struct dir_fault *f = half_fault(c, h);

    return !c->connecting && f->block == BLOCK_PASS && f->clog_until <= now;
}

static bool
half_wants_read(const struct conn *c, const struct half *h)
{
    if (h->eof || (c->connecting && h->src == &c->up)) {
        return false;
    }
    return h->queued < PROXY_QUEUE_MAX;
}

static int
half_read(struct conn *c, struct half *h)
{
    const struct dir_fault *f = half_fault(c, h);
    int d = h == &c->h[FWD] ? FWD : REV;
    struct chunk *ch = malloc(sizeof *ch + PROXY_CHUNK);
    ssize_t n;

    if (ch == NULL) {
        return -ENOMEM;
    }
    n = recv(h->src->fd, ch->data, PROXY_CHUNK, 0);
    if (n <= 0) {
        free(ch);
        if (n == 0) {
            h->eof = true;
            return 0;
        }
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    }
    if (f->block == BLOCK_DROP) {
        /* The stream is now missing bytes: it must never resume. */
        c->link->dropped[d] += (uint64_t)n;
        c->tainted = true;
        free(ch);
        return 0;
    }
    ch->next = NULL;
    ch->len = (size_t)n;
    ch->off = 0;
    ch->due = now_ns() + f->delay_ns;
    if (h->tail != NULL) {
        h->tail->next = ch;
    } else {
        h->head = ch;
    }
    h->tail = ch;
    h->queued += (size_t)n;
    return 0;
}

/* Send what h may send now. Returns 0 or -errno of the socket. */
static int
half_flush(struct conn *c, struct half *h, int64_t now)
{
    int d = h == &c->h[FWD] ? FWD : REV;

    while (h->head != NULL && half_open(c, h, now) && h->head->due <= now) {
        struct chunk *ch = h->head;
        ssize_t n = send(h->dst->fd, ch->data + ch->off, ch->len - ch->off,
                         MSG_NOSIGNAL);

        if (n < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        }
        ch->off += (size_t)n;
        h->queued -= (size_t)n;
        c->link->bytes[d] += (uint64_t)n;
        if (ch->off < ch->len) {
            return 0;
        }
        h->head = ch->next;
        if (h->head == NULL) {
            h->tail = NULL;
        }
        free(ch);
    }
    /* Pass the end of stream on once every byte before it went. */
    if (h->eof && !h->shut && h->head == NULL && half_open(c, h, now)) {
        shutdown(h->dst->fd, SHUT_WR);
        h->shut = true;
    }
    return 0;
}

static int
conn_update_events(struct proxy *p, struct conn *c, int64_t now)
{
    struct endpoint *eps[2] = {&c->down, &c->up};
    int rc = 0;

    for (int i = 0; i < 2 && rc == 0; i++) {
        struct endpoint *ep = eps[i];
        struct half *in = ep == &c->down ? &c->h[FWD] : &c->h[REV];
        struct half *out = ep == &c->down ? &c->h[REV] : &c->h[FWD];
        uint32_t ev = 0;

        if (ep == &c->up && c->connecting) {
            ev = EPOLLOUT;
        } else {
            if (half_wants_read(c, in)) {
                ev |= EPOLLIN | EPOLLRDHUP;
            }
            if (out->head != NULL && half_open(c, out, now) &&
                out->head->due <= now) {
                ev |= EPOLLOUT; /* the last send met a full socket */
            }
        }
        rc = ep_set(p, ep, ev);
    }
    return rc;
}

/* Move whatever can move on c, and close it once both ends finished. */
static void
conn_pump(struct proxy *p, struct conn *c, int64_t now)
{
    int rc;

    if (c->dead) {
        return;
    }
    rc = half_flush(c, &c->h[FWD], now);
    if (rc == 0) {
        rc = half_flush(c, &c->h[REV], now);
    }
    if (rc != 0) {
        conn_kill(p, c, true);
        return;
    }
    if (c->h[FWD].shut && c->h[REV].shut) {
        conn_kill(p, c, false);
        return;
    }
    if (conn_update_events(p, c, now) != 0) {
        conn_kill(p, c, true);
    }
}

static void
conn_on_event(struct proxy *p, struct conn *c, struct endpoint *ep,
              uint32_t events)
{
    struct half *in = ep == &c->down ? &c->h[FWD] : &c->h[REV];
    struct half *out = ep == &c->down ? &c->h[REV] : &c->h[FWD];
    int rc = 0;

    if (c->dead) {
        return;
    }
    if ((events & EPOLLHUP) && !(events & EPOLLERR) && in->eof && out->shut) {
        /* Both ways done on this socket while the other still has bytes
         * to deliver (held, say): epoll would report the hang-up again
         * on every turn, so stop watching it. */
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
        ep->off = true;
        return;
    }
    if (ep == &c->up && c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;

        getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            /* The target is down: the dialer sees a refusal. */
            conn_kill(p, c, true);
            return;
        }
        c->connecting = false;
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (half_wants_read(c, in)) {
            rc = half_read(c, in);
        } else if (events & EPOLLERR) {
            rc = -ECONNRESET;
        }
    }
    if (rc != 0) {
        conn_kill(p, c, true);
    }
}

static int
connect_target(uint16_t port, int *out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0) {
        return -errno;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static void
link_on_accept(struct proxy *p, struct link *l)
{
    int fd = accept4(l->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct conn *c;
    int up, one = 1;

    if (fd < 0) {
        return; /* EAGAIN, or the dialer gave up already */
    }
    l->accepted++;
    if (l->cut || connect_target(l->target, &up) != 0) {
        l->reset++;
        close_reset(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        close_reset(fd);
        close_reset(up);
        return;
    }
    c->link = l;
    c->down = (struct endpoint){.kind = EP_CONN, .fd = fd, .owner = c};
    c->up = (struct endpoint){.kind = EP_CONN, .fd = up, .owner = c};
    c->h[FWD].src = c->h[REV].dst = &c->down;
    c->h[FWD].dst = c->h[REV].src = &c->up;
    c->connecting = true;
    if (ep_add(p, &c->down, EPOLLIN | EPOLLRDHUP) != 0 ||
        ep_add(p, &c->up, EPOLLOUT) != 0) {
        close_reset(fd);
        close_reset(up);
        free(c);
        return;
    }
    c->next = l->conns;
    l->conns = c;
    l->n_conns++;
}

/* Free the conns and ctls that died in this turn (their sockets are
 * closed; a ctl's is closed here). */
static void
reap(struct proxy *p)
{
    for (size_t i = 0; i < p->n_links; i++) {
        struct conn **pc = &p->links[i].conns;

        while (*pc != NULL) {
            struct conn *c = *pc;

            if (c->dead) {
                *pc = c->next;
                p->links[i].n_conns--;
                free(c);
            } else {
                pc = &c->next;
            }
        }
    }
    for (struct ctl **pc = &p->ctls; *pc != NULL;) {
        struct ctl *c = *pc;

        if (c->dead) {
            *pc = c->next;
            close(c->ep.fd);
            free(c);
        } else {
            pc = &c->next;
        }
    }
}

/* ---- Selectors ---------------------------------------------------------- */

static bool
valid_name(const char *s, size_t len)
{
    if (len == 0 || len > PROXY_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.')) {
            return false;
        }
    }
    return true;
}

/* Split "A<op>B" at op into a and b. */
static int
split_pair(const char *s, const char *op, char *a, char *b)
{
    const char *m = strstr(s, op);
    size_t la, lb;

    if (m == NULL) {
        return -EINVAL;
    }
    la = (size_t)(m - s);
    lb = strlen(m + strlen(op));
    if (!valid_name(s, la) || !valid_name(m + strlen(op), lb)) {
        return -EINVAL;
    }
    memcpy(a, s, la);
    a[la] = '\0';
    memcpy(b, m + strlen(op), lb + 1);
    return 0;
}

static struct link *
find_link(struct proxy *p, const char *a, const char *b)
{
    for (size_t i = 0; i < p->n_links; i++) {
        if (strcmp(p->links[i].a, a) == 0 && strcmp(p->links[i].b, b) == 0) {
            return &p->links[i];
        }
    }
    return NULL;
}

/* Mark in sel[] the pieces that selector s names. Returns 0, or -EINVAL
 * when s is malformed or names nothing. */
static int
select_links(struct proxy *p, const char *s, struct sel *sel)
{
    char a[PROXY_NAME_MAX + 1], b[PROXY_NAME_MAX + 1];
    bool any = false;

    for (size_t i = 0; i < p->n_links; i++) {
        struct link *l = &p->links[i];
        bool fwd = false, rev = false;

        if (strcmp(s, "*") == 0) {
            fwd = rev = true;
        } else if (s[0] == '@') {
            if (!valid_name(s + 1, strlen(s + 1))) {
                return -EINVAL;
            }
            fwd = rev = strcmp(l->a, s + 1) == 0 || strcmp(l->b, s + 1) == 0;
        } else if (split_pair(s, "->", a, b) == 0) {
            /* The bytes from a to b, whoever dialed. */
            fwd = strcmp(l->a, a) == 0 && strcmp(l->b, b) == 0;
            rev = strcmp(l->a, b) == 0 && strcmp(l->b, a) == 0;
        } else if (split_pair(s, ">", a, b) == 0) {
            fwd = rev = strcmp(l->a, a) == 0 && strcmp(l->b, b) == 0;
        } else if (split_pair(s, "-", a, b) == 0) {
            fwd = rev = (strcmp(l->a, a) == 0 && strcmp(l->b, b) == 0) ||
                        (strcmp(l->a, b) == 0 && strcmp(l->b, a) == 0);
        } else {
            return -EINVAL;
        }
        sel[i].link = l;
        sel[i].dir[FWD] |= fwd;
        sel[i].dir[REV] |= rev;
        any |= fwd || rev;
    }
    return any ? 0 : -ENOENT;
}

/* ---- Commands ----------------------------------------------------------- */

static void
link_cut(struct proxy *p, struct link *l)
{
    l->cut = true;
    for (struct conn *c = l->conns; c != NULL; c = c->next) {
        conn_kill(p, c, true);
    }
}

/* Undo the faults of the selected directions. A connection that lost
 * bytes in them cannot go on, so it is reset now. */
static void
link_heal(struct proxy *p, struct link *l, const bool dir[2])
{
    /* A cut is of the whole link: any selected direction lifts it. */
    l->cut = false;
    for (int d = 0; d < 2; d++) {
        if (dir[d]) {
            bool was_drop = l->dir[d].block == BLOCK_DROP;

            memset(&l->dir[d], 0, sizeof l->dir[d]);
            for (struct conn *c = l->conns; c != NULL; c = c->next) {
                if (was_drop && c->tainted) {
                    conn_kill(p, c, true);
                }
                /* Delayed bytes go now, in their order. */
                for (struct chunk *ch = c->h[d].head; ch; ch = ch->next) {
                    ch->due = 0;
                }
            }
        }
    }
}

static const char *
block_name(enum block_mode m)
{
    return m == BLOCK_HOLD ? "hold" : m == BLOCK_DROP ? "drop" : "pass";
}

static int
parse_ms(const char *s, int64_t *ns)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 3600000) {
        return -EINVAL;
    }
    *ns = (int64_t)v * 1000000;
    return 0;
}

static int reply(struct ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Answers are short and a test reads each before its next command, so
 * a control socket that cannot take one is a client gone bad: drop it. */
static int
reply(struct ctl *c, const char *fmt, ...)
{
    char out[PROXY_LINE_MAX * 2];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, sizeof out - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -EINVAL;
    }
    if ((size_t)n > sizeof out - 2) {
        n = (int)sizeof out - 2;
    }
    out[n++] = '\n';
    if (send(c->ep.fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
        c->dead = true;
        return -EIO;
    }
    return 0;
}

static void
cmd_links(struct proxy *p, struct ctl *c)
{
    char out[PROXY_LINE_MAX];
    size_t n = (size_t)snprintf(out, sizeof out, "ok");

    for (size_t i = 0; i < p->n_links && n < sizeof out; i++) {
        n += (size_t)snprintf(out + n, sizeof out - n, " %s>%s %u %u",
                              p->links[i].a, p->links[i].b, p->links[i].port,
                              p->links[i].target);
    }
    reply(c, "%s", out);
}

static void
cmd_stats(struct proxy *p, struct ctl *c, char **arg, int n_arg)
{
    char a[PROXY_NAME_MAX + 1], b[PROXY_NAME_MAX + 1];
    struct link *l;
    size_t q[2] = {0, 0};

    if (n_arg != 1 || split_pair(arg[0], ">", a, b) != 0 ||
        (l = find_link(p, a, b)) == NULL) {
        reply(c, "err stats takes one link name");
        return;
    }
    for (struct conn *x = l->conns; x != NULL; x = x->next) {
        if (!x->dead) {
            q[FWD] += x->h[FWD].queued;
            q[REV] += x->h[REV].queued;
        }
    }
    reply(c,
          "ok conns=%zu accepted=%" PRIu64 " reset=%" PRIu64
          " cut=%d fwd=%s rev=%s fwd_bytes=%" PRIu64 " rev_bytes=%" PRIu64
          " fwd_dropped=%" PRIu64 " rev_dropped=%" PRIu64
          " fwd_queued=%zu rev_queued=%zu",
          l->n_conns, l->accepted, l->reset, l->cut,
          block_name(l->dir[FWD].block), block_name(l->dir[REV].block),
          l->bytes[FWD], l->bytes[REV], l->dropped[FWD], l->dropped[REV],
          q[FWD], q[REV]);
}

static void
cmd_fds(struct ctl *c)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL) {
        reply(c, "err %s", strerror(errno));
        return;
    }
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    reply(c, "ok %d", n - 1); /* not the directory's own descriptor */
}

/* Apply a fault command to every piece of the selection. */
static void
apply(struct proxy *p, const char *cmd, int64_t ms, struct sel *sel)
{
    int64_t now = now_ns();

    for (size_t i = 0; i < p->n_links; i++) {
        struct link *l = sel[i].link;

        if (l == NULL || (!sel[i].dir[FWD] && !sel[i].dir[REV])) {
            continue;
        }
        if (strcmp(cmd, "cut") == 0) {
            link_cut(p, l);
            continue;
        }
        if (strcmp(cmd, "heal") == 0) {
            link_heal(p, l, sel[i].dir);
            continue;
        }
        for (int d = 0; d < 2; d++) {
            if (!sel[i].dir[d]) {
                continue;
            }
            if (strcmp(cmd, "hold") == 0) {
                l->dir[d].block = BLOCK_HOLD;
            } else if (strcmp(cmd, "drop") == 0) {
                l->dir[d].block = BLOCK_DROP;
                /* What waits in the queue is lost as well. */
                for (struct conn *c = l->conns; c != NULL; c = c->next) {
                    if (c->h[d].queued > 0) {
                        l->dropped[d] += c->h[d].queued;
                        c->tainted = true;
                        half_free_queue(&c->h[d]);
                    }
                }
            } else if (strcmp(cmd, "delay") == 0) {
                l->dir[d].delay_ns = ms;
            } else {
                l->dir[d].clog_until = now + ms;
            }
        }
    }
}

/* A fault command: "<cmd> [MS] SEL...". */
static void
cmd_fault(struct proxy *p, struct ctl *c, const char *cmd, char **arg,
          int n_arg)
{
    bool timed = strcmp(cmd, "delay") == 0 || strcmp(cmd, "clog") == 0;
    struct sel sel[PROXY_MAX_LINKS];
    int64_t ms = 0;
    int rc;

    memset(sel, 0, sizeof sel);
    if (timed && (n_arg < 1 || parse_ms(arg[0], &ms) != 0)) {
        reply(c, "err %s takes MS (0..3600000) then selectors", cmd);
        return;
    }
    arg += timed;
    n_arg -= timed;
    if (n_arg == 0 && strcmp(cmd, "heal") == 0) {
        rc = select_links(p, "*", sel);
        if (rc == -ENOENT) {
            reply(c, "ok");
            return;
        }
    } else if (n_arg == 0) {
        reply(c, "err %s needs a selector", cmd);
        return;
    }
    for (int i = 0; i < n_arg; i++) {
        /* Check every selector before applying any: all or nothing. */
        rc = select_links(p, arg[i], sel);
        if (rc != 0) {
            reply(c, "err %s: %s", arg[i],
                  rc == -ENOENT ? "selects no link" : "not a selector");
            return;
        }
    }
    apply(p, cmd, ms, sel);
    reply(c, "ok");
}

static void
run_command(struct proxy *p, struct ctl *c, char *line)
{
    static const char *const faults[] = {"cut",   "hold", "drop",
                                         "delay", "clog", "heal"};
    char *arg[64], *save = NULL;
    int n = 0;

    for (char *t = strtok_r(line, " \t\r", &save); t != NULL && n < 64;
         t = strtok_r(NULL, " \t\r", &save)) {
        arg[n++] = t;
    }
    if (n == 0) {
        reply(c, "err empty command");
        return;
    }
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        if (strcmp(arg[0], faults[i]) == 0) {
            cmd_fault(p, c, arg[0], arg + 1, n - 1);
            return;
        }
    }
    if (strcmp(arg[0], "links") == 0) {
        cmd_links(p, c);
    } else if (strcmp(arg[0], "stats") == 0) {
        cmd_stats(p, c, arg + 1, n - 1);
    } else if (strcmp(arg[0], "fds") == 0) {
        cmd_fds(c);
    } else if (strcmp(arg[0], "ping") == 0) {
        reply(c, "ok");
    } else if (strcmp(arg[0], "quit") == 0) {
        reply(c, "ok");
        p->quit = true;
    } else {
        reply(c, "err unknown command '%s'", arg[0]);
    }
}

static void
ctl_on_read(struct proxy *p, struct ctl *c)
{
    ssize_t n = recv(c->ep.fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    char *nl;

    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->dead = true;
        }
        return;
    }
    c->len += (size_t)n;
    while (!c->dead && (nl = memchr(c->buf, '\n', c->len)) != NULL) {
        size_t used = (size_t)(nl - c->buf) + 1;

        *nl = '\0';
        run_command(p, c, c->buf);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
    if (c->len == sizeof c->buf) {
        reply(c, "err line too long");
        c->dead = true;
    }
}

static void
ctl_on_accept(struct proxy *p)
{
    int fd =
        accept4(p->ctl_listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct ctl *c;

    if (fd < 0) {
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->ep = (struct endpoint){.kind = EP_CTL, .fd = fd, .owner = c};
    if (ep_add(p, &c->ep, EPOLLIN) != 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = p->ctls;
    p->ctls = c;
}

/* ---- Loop --------------------------------------------------------------- */

/* Milliseconds until the next delayed chunk or clog falls due, or -1. */
static int
next_timeout(struct proxy *p, int64_t now)
{
    int64_t next = INT64_MAX;

    for (size_t i = 0; i < p->n_links; i++) {
        struct link *l = &p->links[i];

        for (struct conn *c = l->conns; c != NULL; c = c->next) {
            for (int d = 0; d < 2 && !c->dead; d++) {
                const struct half *h = &c->h[d];
                int64_t t;

                if ((h->head == NULL && !(h->eof && !h->shut)) ||
                    l->dir[d].block != BLOCK_PASS || c->connecting) {
                    continue;
                }
                t = h->head != NULL ? h->head->due : 0;
                t = t > l->dir[d].clog_until ? t : l->dir[d].clog_until;
                /* What is due already waits for EPOLLOUT, not a timer:
                 * the pump sent what the socket took. */
                if (t > now && t < next) {
                    next = t;
                }
            }
        }
    }
    if (next == INT64_MAX) {
        return -1;
    }
    /* Round up: waking a little late is harmless, early spins. */
    return (int)((next - now + 999999) / 1000000);
}

static void
on_event(struct proxy *p, struct endpoint *ep, uint32_t events)
{
    switch (ep->kind) {
    case EP_LISTEN:
        link_on_accept(p, ep->owner);
        break;
    case EP_CONN:
        conn_on_event(p, ep->owner, ep, events);
        break;
    case EP_CTL_LISTEN:
        ctl_on_accept(p);
        break;
    case EP_CTL:
        ctl_on_read(p, ep->owner);
        break;
    case EP_SIGNAL:
        p->quit = true;
        break;
    }
}

static void
run(struct proxy *p)
{
    struct epoll_event evs[64];
    int timeout = -1;

    while (!p->quit) {
        int n = epoll_wait(p->epfd, evs, 64, timeout);
        int64_t now;

        if (n < 0 && errno != EINTR) {
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            on_event(p, evs[i].data.ptr, evs[i].events);
        }
        /* One instant for the pump and the timer: what fell due by now
         * was sent or waits for EPOLLOUT, what falls due later has the
         * timer, and nothing slips between the two. */
        now = now_ns();
        for (size_t i = 0; i < p->n_links; i++) {
            for (struct conn *c = p->links[i].conns; c; c = c->next) {
                conn_pump(p, c, now);
            }
        }
        reap(p);
        timeout = next_timeout(p, now);
    }
}

/* ---- Setup -------------------------------------------------------------- */

static int
listen_tcp(uint16_t port, int *fd_out, uint16_t *port_out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rc;

    if (fd < 0) {
        return -errno;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *port_out = ntohs(sa.sin_port);
    return 0;
}

static void
add_link(struct proxy *p, const char *a, const char *b, long port, long target)
{
    struct link *l;
    int rc;

    if (p->n_links == PROXY_MAX_LINKS) {
        die("more than %d links", PROXY_MAX_LINKS);
    }
    if (!valid_name(a, strlen(a)) || !valid_name(b, strlen(b)) ||
        find_link(p, a, b) != NULL || port < 0 || port > 65535 || target < 1 ||
        target > 65535) {
        die("bad or repeated link %s>%s:%ld:%ld", a, b, port, target);
    }
    l = &p->links[p->n_links];
    snprintf(l->a, sizeof l->a, "%s", a);
    snprintf(l->b, sizeof l->b, "%s", b);
    l->target = (uint16_t)target;
    rc = listen_tcp((uint16_t)port, &l->listen.fd, &l->port);
    if (rc != 0) {
        die("listen on 127.0.0.1:%ld for %s>%s: %s", port, a, b, strerror(-rc));
    }
    l->listen.kind = EP_LISTEN;
    l->listen.owner = l;
    if (ep_add(p, &l->listen, EPOLLIN) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
    p->n_links++;
}

/* --link A>B:LISTEN:TARGET (LISTEN 0: any free port). */
static void
parse_link(struct proxy *p, const char *arg)
{
    char a[PROXY_NAME_MAX + 1], b[PROXY_NAME_MAX + 1], spec[64];
    char *c1, *c2;

    snprintf(spec, sizeof spec, "%s", arg);
    c1 = strchr(spec, ':');
    c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) {
        die("--link wants A>B:LISTEN:TARGET, not %s", arg);
    }
    *c1 = *c2 = '\0';
    if (split_pair(spec, ">", a, b) != 0) {
        die("--link: bad name %s", spec);
    }
    add_link(p, a, b, strtol(c1 + 1, NULL, 10), strtol(c2 + 1, NULL, 10));
}

/* --mesh N:BASE:T1,...,TN: link i>j on BASE+10i+j to Tj, for i != j. */
static void
parse_mesh(struct proxy *p, const char *arg)
{
    long n, base, t[8];
    char *end, name_a[24], name_b[24];
    const char *s;

    n = strtol(arg, &end, 10);
    if (*end != ':' || n < 1 || n > 7) {
        die("--mesh wants N:BASE:T1,...,TN with N in 1..7");
    }
    base = strtol(end + 1, &end, 10);
    if (*end != ':' || base < 1 || base + 77 > 65535) {
        die("--mesh: bad base port");
    }
    s = end + 1;
    for (long i = 1; i <= n; i++) {
        t[i] = strtol(s, &end, 10);
        if ((i < n && *end != ',') || (i == n && *end != '\0')) {
            die("--mesh: expected %ld target ports", n);
        }
        s = end + 1;
    }
    for (long i = 1; i <= n; i++) {
        for (long j = 1; j <= n; j++) {
            if (i != j) {
                snprintf(name_a, sizeof name_a, "%ld", i);
                snprintf(name_b, sizeof name_b, "%ld", j);
                add_link(p, name_a, name_b, base + 10 * i + j, t[j]);
            }
        }
    }
}

static void
open_control(struct proxy *p, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        die("control path too long");
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 16) != 0) {
        die("control socket %s: %s", path, strerror(errno));
    }
    p->ctl_listen = (struct endpoint){.kind = EP_CTL_LISTEN, .fd = fd};
    p->ctl_path = path;
    if (ep_add(p, &p->ctl_listen, EPOLLIN) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

/* SIGTERM and SIGINT end the loop like quit, so that the sanitizers'
 * exit checks run. */
static void
open_signals(struct proxy *p)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        die("signalfd: %s", strerror(errno));
    }
    p->sig = (struct endpoint){.kind = EP_SIGNAL, .fd = fd};
    if (ep_add(p, &p->sig, EPOLLIN) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

static void
teardown(struct proxy *p)
{
    for (size_t i = 0; i < p->n_links; i++) {
        for (struct conn *c = p->links[i].conns; c != NULL; c = c->next) {
            conn_kill(p, c, true);
        }
        close(p->links[i].listen.fd);
    }
    for (struct ctl *c = p->ctls; c != NULL; c = c->next) {
        c->dead = true;
    }
    reap(p);
    close(p->ctl_listen.fd);
    unlink(p->ctl_path);
    close(p->sig.fd);
    close(p->epfd);
}

static void
usage(void)
{
    fprintf(stderr, "usage: nemesis-proxy --control PATH\n"
                    "           [--link A>B:LISTEN:TARGET]... "
                    "[--mesh N:BASE:T1,...,TN]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static struct proxy p;
    const char *ctl = NULL;

    signal(SIGPIPE, SIG_IGN);
    p.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p.epfd < 0) {
        die("epoll_create1: %s", strerror(errno));
    }
    for (int i = 1; i < argc; i++) {
        if (i + 1 == argc) {
            usage();
        }
        if (strcmp(argv[i], "--control") == 0) {
            ctl = argv[++i];
        } else if (strcmp(argv[i], "--link") == 0) {
            parse_link(&p, argv[++i]);
        } else if (strcmp(argv[i], "--mesh") == 0) {
            parse_mesh(&p, argv[++i]);
        } else {
            usage();
        }
    }
    if (ctl == NULL) {
        usage();
    }
    open_control(&p, ctl);
    open_signals(&p);
    printf("ready\n");
    fflush(stdout);
    run(&p);
    teardown(&p);
    return 0;
}
