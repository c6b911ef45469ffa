/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * server.c: the local control socket: accept, frames in, replies out.
 *
 * Each connection owns one input buffer and one output buffer. A frame is
 * handled only once all of it is in; its length is judged from the header
 * before waiting for it. A client that breaks the framing gets a status
 * frame and is closed after it is flushed; a malformed body costs only
 * that request. Connections are freed at the end of a turn, never inside
 * a callback, so the loop never touches freed memory.
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"

#define READ_CHUNK 65536

static void conn_io_cb(struct loop *l, unsigned events, void *arg);
static void server_dispatch(struct conn *c, const struct wire_hdr *h,
                            const uint8_t *body, size_t len);

/* Output. */

/* What conn_frame and conn_frame_raw do with their append's result. */
static int
conn_frame_done(struct conn *c, int rc)
{
    if (rc == ERR_NOMEM) {
        /* Closed once what is queued is flushed; closing now would free
         * state that the caller is still using. */
        log_warn("server", "out of memory for a reply: conn=%" PRIu64,
                 c->serial);
        c->closing = true;
    }
    return rc;
}

int
conn_frame(struct conn *c, uint16_t type, uint8_t flags, uint64_t id,
           const struct wire_type *t, const void *obj)
{
    if (c->dead) {
        return ERR_CLOSED;
    }
    return conn_frame_done(
        c, wire_frame_append(&c->out, type, flags, id, t, obj));
}

int
conn_frame_raw(struct conn *c, uint16_t type, uint8_t flags, uint64_t id,
               const void *body, size_t len)
{
    if (c->dead) {
        return ERR_CLOSED;
    }
    return conn_frame_done(
        c, wire_frame_append_raw(&c->out, type, flags, id, body, len));
}

/*
 * Replies are written once per connection at the end of the turn, so that
 * the replies to a pipeline of requests go out in one send, not one each.
 */
void
conn_flush_later(struct conn *c)
{
    if (!c->dead && !c->in_flushq) {
        TAILQ_INSERT_TAIL(&c->m->flushq, c, flink);
        c->in_flushq = true;
        loop_defer(&c->m->loop, &c->m->flush_defer);
    }
}

static void
server_flush_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;
    struct conn *c;

    (void)l;
    while ((c = TAILQ_FIRST(&m->flushq))) {
        TAILQ_REMOVE(&m->flushq, c, flink);
        c->in_flushq = false;
        conn_flush(c);
    }
}

void
conn_status(struct conn *c, uint64_t id, const struct control_out *o)
{
    struct shoal_status_msg st = {
        .code = (uint32_t)o->code,
        .message = (char *)o->message,
        .current_version = o->current_version,
    };

    conn_frame(c, WIRE_MSG_STATUS, 0, id, &wire_type_status_msg, &st);
    conn_flush_later(c);
}

static void
conn_status_msg(struct conn *c, uint64_t id, int code, const char *msg)
{
    struct control_out o = {.code = code};

    snprintf(o.message, sizeof o.message, "%s", msg);
    conn_status(c, id, &o);
}

/* The one array a list reply fills, seen generically, so that it can be
 * sent in slices without copying. */
struct list_view {
    uint8_t **items;
    size_t *n;
    const struct wire_type *type;
};

static bool
list_view_of(struct shoal_list_reply *r, struct list_view *v)
{
#define LIST_CASE(f, ty)                                                   \
    if (r->n_##f > 0) {                                                    \
        v->items = (uint8_t **)&r->f;                                      \
        v->n = &r->n_##f;                                                  \
        v->type = &wire_type_##ty;                                         \
        return true;                                                       \
    }
    LIST_CASE(nodes, node)
    LIST_CASE(services, service)
    LIST_CASE(tasks, task)
    LIST_CASE(networks, network)
    LIST_CASE(clusters, cluster)
    LIST_CASE(secrets, secret)
    LIST_CASE(configs, config)
#undef LIST_CASE
    return false;
}

int
server_list_slices(struct shoal_list_reply *r, server_list_sink *sink,
                   void *arg)
{
    struct list_view v;
    uint8_t *base;
    size_t total;
    size_t start = 0;
    int rc = 0;

    if (!list_view_of(r, &v)) {
        return sink(arg, 0, r);
    }
    base = *v.items;
    total = *v.n;
    while (start < total && rc == 0) {
        size_t size = wire_type_size(v.type);
        size_t bytes = 0;
        size_t end = start;

        while (end < total && (end == start || bytes < LIST_CHUNK_BYTES)) {
            bytes += wire_encoded_size(v.type, base + end * size) + 16;
            end++;
        }
        *v.items = base + start * size;
        *v.n = end - start;
        rc = sink(arg, end < total ? WIRE_F_MORE : 0, r);
        start = end;
    }
    *v.items = base;
    *v.n = total;
    return rc;
}

struct conn_list_ctx {
    struct conn *c;
    uint64_t id;
    uint16_t type;
};

static int
conn_list_sink(void *arg, uint8_t flags, const struct shoal_list_reply *r)
{
    struct conn_list_ctx *x = arg;

    if (x->c->dead) {
        return ERR_CLOSED;
    }
    conn_frame(x->c, x->type | WIRE_REPLY, flags, x->id,
               &wire_type_list_reply, r);
    return 0;
}

/*
 * Send a list in frames of about LIST_CHUNK_BYTES, each a list_reply over
 * a slice of the one array, all but the last flagged MORE.
 */
static void
conn_reply_list(struct conn *c, uint64_t id, uint16_t type,
                struct shoal_list_reply *r)
{
    struct conn_list_ctx x = {.c = c, .id = id, .type = type};

    (void)server_list_slices(r, conn_list_sink, &x);
}

void
conn_reply(struct conn *c, uint64_t id, uint16_t type,
           const struct wire_type *t, const void *obj)
{
    if (t == &wire_type_list_reply) {
        conn_reply_list(c, id, type, (struct shoal_list_reply *)obj);
    } else if (conn_frame(c, type | WIRE_REPLY, 0, id, t, obj) ==
               ERR_TOOBIG) {
        conn_status_msg(c, id, SHOAL_RESOURCE_EXHAUSTED,
                        "reply exceeds the frame size limit");
    }
    conn_flush_later(c);
}

static void
conn_update_events(struct conn *c)
{
    unsigned ev = 0;

    if (!c->closing && conn_out_queued(c) < CONN_OUT_HIGH) {
        ev |= LOOP_READ;
    }
    if (conn_out_queued(c) > 0) {
        ev |= LOOP_WRITE;
    }
    if (loop_io_set(&c->m->loop, &c->io, ev) != 0) {
        conn_close(c, "epoll_ctl failed");
    }
}

size_t
conn_out_queued(const struct conn *c)
{
    return c->out.len - c->out_sent;
}

/*
 * Drop the bytes already sent from the front of c->out. Moving the rest
 * down after every send would copy a big reply once per send, quadratic
 * in its size (a 150 MB list held the loop for minutes): the front is
 * only reclaimed once it is at least half of the buffer. A drained
 * buffer that grew large is given back, so that one big reply does not
 * cost an idle client that memory for good.
 */
static void
conn_out_compact(struct conn *c)
{
    if (c->out_sent == c->out.len) {
        c->out.len = 0;
        c->out_sent = 0;
        if (c->out.cap > LIST_CHUNK_BYTES) {
            wire_buf_fini(&c->out);
        }
    } else if (c->out_sent >= c->out.len / 2) {
        wire_buf_consume(&c->out, c->out_sent);
        c->out_sent = 0;
    }
}

void
conn_flush(struct conn *c)
{
    bool was_high = conn_out_queued(c) >= CONN_OUT_HIGH / 2;

    /* A bounded number of sends per call: a client that reads as fast as
     * we write must not keep the loop to itself. The rest goes when the
     * socket is writable again. */
    for (int i = 0; i < 16 && !c->dead && conn_out_queued(c) > 0; i++) {
        ssize_t n = send(c->io.fd, c->out.data + c->out_sent,
                         conn_out_queued(c), MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            conn_close(c, "write failed");
            return;
        }
        c->out_sent += (size_t)n;
    }
    if (c->dead) {
        return;
    }
    conn_out_compact(c);
    if (c->closing && c->out.len == 0) {
        conn_close(c, "closed after an error");
        return;
    }
    conn_update_events(c);

    /* Frames that waited for output room are handled at the end of the
     * turn, never from here: a flush runs inside the commit path, which
     * must not take new writes while it applies the synced ones. */
    if (c->stalled && conn_out_queued(c) < CONN_OUT_HIGH) {
        loop_defer(&c->m->loop, &c->m->resume);
    }

    /* Room again: streams that waited for it may go on. */
    if (was_high && conn_out_queued(c) < CONN_OUT_HIGH / 2) {
        watch_pump_conn(c);
    }
}

/* Send a status, then close once it is flushed: the stream of frames
 * can no longer be trusted. */
static void
conn_fail(struct conn *c, uint64_t id, int code, const char *msg)
{
    log_info("server", "closing client: conn=%" PRIu64 " pid=%d reason=\"%s\"",
             c->serial, (int)c->pid, msg);
    c->closing = true;
    conn_status_msg(c, id, code, msg);
}

void
conn_close(struct conn *c, const char *why)
{
    struct manager *m = c->m;

    if (c->dead) {
        return;
    }
    log_debug("server", "client closed: conn=%" PRIu64 " reason=\"%s\"",
              c->serial, why);
    c->dead = true;
    if (c->in_flushq) {
        TAILQ_REMOVE(&m->flushq, c, flink);
        c->in_flushq = false;
    }
    loop_io_stop(&m->loop, &c->io);
    close(c->io.fd);
    watch_drop_conn(c);
    TAILQ_REMOVE(&m->conns, c, link);
    TAILQ_INSERT_TAIL(&m->dead_conns, c, link);
    m->n_conns--;
    loop_defer(&m->loop, &m->reap);
}

static void
server_reap_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;
    struct conn *c;
    struct pending *pd;

    (void)l;
    /* Writes still in flight answer nobody once their client is gone. */
    TAILQ_FOREACH(pd, &m->proposed, link) {
        if (pd->conn && pd->conn->dead) {
            pd->conn = NULL;
        }
    }
    TAILQ_FOREACH(c, &m->dead_conns, link) {
        forward_conn_gone(m, c);
        reads_conn_gone(m, c, NULL);
    }
    while ((c = TAILQ_FIRST(&m->dead_conns))) {
        TAILQ_REMOVE(&m->dead_conns, c, link);
        wire_buf_fini(&c->in);
        wire_buf_fini(&c->out);
        free(c);
    }
}

/* Input. */

/*
 * Handle the whole frames in c->in. Frames are taken at an offset and
 * the buffer is moved down once at the end: moving it after each frame
 * copies it once per frame, quadratic for a pipeline of small ones.
 * Handling stops while the client's output is over CONN_OUT_HIGH, since
 * one small request can queue a large reply: checking only between reads
 * let 20 KB of pipelined gets queue gigabytes. The frames left wait for
 * conn_flush to make room (c->stalled).
 */
static void
conn_handle_frames(struct conn *c)
{
    size_t off = 0;

    c->stalled = false;
    while (!c->dead && !c->closing) {
        struct wire_hdr h;
        ssize_t rc;
        size_t total;

        if (conn_out_queued(c) >= CONN_OUT_HIGH) {
            c->stalled = c->in.len - off >= WIRE_HDR_BYTES;
            break;
        }
        rc = wire_hdr_decode(&h, c->in.data + off, c->in.len - off);
        if (rc == ERR_AGAIN) {
            break;
        }
        if (rc < 0) {
            conn_fail(c, h.id, SHOAL_INVALID_ARGUMENT,
                      "frame length out of bounds");
            break;
        }
        if (h.version != WIRE_PROTO_VERSION) {
            conn_fail(c, h.id, SHOAL_INVALID_ARGUMENT,
                      "unsupported protocol version");
            break;
        }
        if (h.flags & ~WIRE_F_KNOWN) {
            conn_fail(c, h.id, SHOAL_INVALID_ARGUMENT, "unknown frame flags");
            break;
        }
        total = (size_t)h.len + 4;
        if (c->in.len - off < total) {
            break; /* the rest of the frame is still on its way */
        }
        server_dispatch(c, &h, c->in.data + off + WIRE_HDR_BYTES,
                        total - WIRE_HDR_BYTES);
        off += total;
    }
    if (!c->dead && off > 0) {
        wire_buf_consume(&c->in, off);
    }
}

/* End-of-turn work: handle the frames of every connection that stalled
 * for output room and has some again. A connection closed meanwhile is
 * no longer in the list. */
static void
server_resume_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;
    struct conn *c;
    struct conn *next;

    (void)l;
    for (c = TAILQ_FIRST(&m->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->stalled && conn_out_queued(c) < CONN_OUT_HIGH) {
            conn_handle_frames(c);
            if (!c->dead) {
                conn_flush(c);
            }
        }
    }
}

/*
 * One read per readiness event: epoll is level-triggered, so what is left
 * comes back in the next turn, after every other ready client had its
 * turn. Reading a busy client until it has nothing left made the others
 * wait behind it (the read latency of shoal-bench was bimodal).
 */
static void
conn_read(struct conn *c)
{
    ssize_t n;

    if (c->closing) {
        return;
    }
    if (wire_buf_reserve(&c->in, READ_CHUNK) != 0) {
        conn_close(c, "out of memory for input");
        return;
    }
    do {
        n = recv(c->io.fd, c->in.data + c->in.len, READ_CHUNK, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (n <= 0) {
        conn_close(c, n == 0 ? "end of stream" : "read failed");
        return;
    }
    c->in.len += (size_t)n;
    conn_handle_frames(c);

    /* Unused room is given back, so idle clients cost little. */
    if (!c->dead && c->in.len == 0 && c->in.cap > READ_CHUNK) {
        wire_buf_fini(&c->in);
    }
}

static void
conn_io_cb(struct loop *l, unsigned events, void *arg)
{
    struct conn *c = arg;

    (void)l;
    if (events & LOOP_READ) {
        conn_read(c);
    }
    if (!c->dead && (events & LOOP_WRITE || conn_out_queued(c) > 0)) {
        conn_flush(c);
    }
}

/* Dispatch. */

static void
server_hello(struct conn *c, const struct wire_hdr *h, const uint8_t *body,
             size_t len)
{
    struct manager *m = c->m;
    struct shoal_hello hello = {0};
    struct shoal_hello_reply reply = {
        .proto = WIRE_PROTO_VERSION,
        .node_id = m->node_id,
        .cluster_id = m->cluster_id,
        .leader_id = m->node_id,
        .leader_addr = "",
        .server_version = SHOAL_VERSION,
        .max_frame_bytes = WIRE_MAX_FRAME,
    };
    uint64_t leader = m->raft_live ? raft_leader(&m->raft) : 0;

    /* The leader as this manager knows it (PROTOCOL.md section 4): none
     * during an election; its peer address once there are peers. */
    if (leader == 0) {
        reply.leader_id = NULL;
        reply.leader_addr = NULL;
    } else if (leader != m->raft_id) {
        const struct shoal_node *ln = links_node_of(m, leader);

        reply.leader_id = ln ? ln->id : NULL;
        reply.leader_addr = ln && ln->manager_status
                                ? ln->manager_status->addr
                                : NULL;
    } else if (m->advertise[0]) {
        reply.leader_addr = m->advertise;
    }

    if (h->type != WIRE_MSG_HELLO || h->id != 0) {
        conn_fail(c, h->id, SHOAL_FAILED_PRECONDITION,
                  "the first frame must be a hello with request id 0");
        return;
    }
    if (wire_decode(&wire_type_hello, &hello, body, len) != 0) {
        conn_fail(c, h->id, SHOAL_INVALID_ARGUMENT, "malformed hello");
        return;
    }
    if (hello.proto_min > WIRE_PROTO_VERSION ||
        hello.proto_max < WIRE_PROTO_VERSION) {
        wire_free(&wire_type_hello, &hello);
        conn_fail(c, h->id, SHOAL_UNIMPLEMENTED,
                  "no common protocol version: server speaks 1 to 1");
        return;
    }
    wire_free(&wire_type_hello, &hello);
    c->hello_done = true;
    conn_reply(c, h->id, WIRE_MSG_HELLO, &wire_type_hello_reply, &reply);
}

static void
server_stats(struct conn *c, uint64_t id)
{
    struct manager *m = c->m;
    struct shoal_stats_reply st = m->stats;
    struct wal_stats ws;

    wal_get_stats(m->wal, &ws);
    st.applied_index = store_applied(m->store);
    st.log_first_index = ws.first_index;
    st.log_last_index = ws.last_index;
    st.fsyncs = ws.n_fdatasync;
    st.connections = m->n_conns;
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        st.objects += store_count(m->store, (enum shoal_kind)k);
    }
    conn_reply(c, id, WIRE_MSG_STATS, &wire_type_stats_reply, &st);
}

static void
server_answer(struct conn *c, uint64_t id, uint16_t type,
              struct control_out *o)
{
    if (o->code != SHOAL_OK) {
        conn_status(c, id, o);
    } else {
        conn_reply(c, id, type, o->reply_type, o->reply);
    }
}

/* A control request: a read is answered now, a write goes to the log. */
static void
server_control(struct conn *c, const struct wire_hdr *h,
               const struct wire_msg_info *info, void *req)
{
    struct manager *m = c->m;
    struct pending *pd;
    int rc;

    pd = calloc(1, sizeof *pd);
    if (!pd) {
        conn_status_msg(c, h->id, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    rc = control_handle(&m->control, h->type, req, &pd->out);
    if (rc != 0 || !pd->out.proposal) {
        if (rc != 0) {
            pd->out.code = SHOAL_RESOURCE_EXHAUSTED;
            snprintf(pd->out.message, sizeof pd->out.message,
                     "out of memory");
        }
        server_answer(c, h->id, info->type, &pd->out);
        control_out_fini(&pd->out);
        free(pd);
        return;
    }

    pd->conn = c;
    pd->req_id = h->id;
    pd->type = h->type;
    pd->proposal = pd->out.proposal;
    pd->out.proposal = NULL;
    rc = cluster_propose(m, pd);
    if (rc != 0) {
        cluster_refusal(m, rc, &pd->out);
        conn_status(c, h->id, &pd->out);
        wire_free(&wire_type_proposal, pd->proposal);
        free(pd->proposal);
        control_out_fini(&pd->out);
        free(pd);
    }
}

void
server_request(struct conn *c, uint16_t type, uint64_t id,
               const uint8_t *body, size_t len)
{
    const struct wire_msg_info *info = wire_msg_info(type);
    struct wire_hdr h = {.type = type, .id = id};
    void *req;

    req = calloc(1, wire_type_size(info->request));
    if (!req) {
        conn_status_msg(c, id, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (wire_decode(info->request, req, body, len) != 0) {
        conn_status_msg(c, id, SHOAL_INVALID_ARGUMENT,
                        "malformed request body");
        free(req);
        return;
    }
    server_control(c, &h, info, req);
    wire_free(info->request, req);
    free(req);
}

static void
server_dispatch(struct conn *c, const struct wire_hdr *h,
                const uint8_t *body, size_t len)
{
    const struct wire_msg_info *info;
    void *req;

    c->m->stats.requests++;
    if (!c->hello_done) {
        server_hello(c, h, body, len);
        return;
    }
    if (h->type == WIRE_MSG_HELLO) {
        conn_fail(c, h->id, SHOAL_FAILED_PRECONDITION, "a second hello");
        return;
    }
    if (h->flags & WIRE_F_MORE) {
        conn_status_msg(c, h->id, SHOAL_INVALID_ARGUMENT,
                        "a request cannot carry the MORE flag");
        return;
    }
    if (h->flags & WIRE_F_FORWARDED) {
        conn_status_msg(c, h->id, SHOAL_PERMISSION_DENIED,
                        "only managers may forward requests");
        return;
    }
    if (h->type == WIRE_MSG_CANCEL) {
        watch_cancel(c, h->id);
        return;
    }
    if (h->type == WIRE_MSG_STATS) {
        server_stats(c, h->id);
        return;
    }
    info = wire_msg_info(h->type);
    if (!info || !info->request || h->type == WIRE_MSG_STATUS) {
        conn_status_msg(c, h->id, SHOAL_UNIMPLEMENTED,
                        "unknown message type");
        return;
    }
    if (info->peer) {
        conn_status_msg(c, h->id, SHOAL_PERMISSION_DENIED,
                        "a message between managers, not for the local "
                        "socket");
        return;
    }

    req = calloc(1, wire_type_size(info->request));
    if (!req) {
        conn_status_msg(c, h->id, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (wire_decode(info->request, req, body, len) != 0) {
        conn_status_msg(c, h->id, SHOAL_INVALID_ARGUMENT,
                        "malformed request body");
        free(req);
        return;
    }
    if (h->type == WIRE_MSG_WATCH) {
        watch_start(c, h->id, req);
        return;
    }
    if (c->m->net_live && !cluster_is_leader(c->m)) {
        /* Only the leader decides a write or answers a linearizable
         * read: the request goes there (forward.c). */
        forward_request(c->m, c, h, body, len);
        wire_free(info->request, req);
        free(req);
        return;
    }
    if (!info->write && reads_needed(c->m)) {
        /* A leader with other voters confirms it still leads first. */
        reads_start(c->m, c, NULL, h->type, h->id, body, len);
        wire_free(info->request, req);
        free(req);
        return;
    }
    server_control(c, h, info, req);
    wire_free(info->request, req);
    free(req);
}

/* Accept. */

static void
server_accept_one(struct manager *m, int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    struct ucred cred;
    socklen_t cl = sizeof cred;

    if (!c) {
        close(fd);
        return;
    }
    c->m = m;
    c->serial = ++m->conn_serial;
    c->io.fd = fd;
    c->io.events = LOOP_READ;
    c->io.cb = conn_io_cb;
    c->io.arg = c;
    TAILQ_INIT(&c->watches);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
    }
    if (loop_io_start(&m->loop, &c->io) != 0) {
        close(fd);
        free(c);
        return;
    }
    TAILQ_INSERT_TAIL(&m->conns, c, link);
    m->n_conns++;
    m->stats.connections++;
    log_debug("server", "client connected: conn=%" PRIu64 " pid=%d uid=%d",
              c->serial, (int)c->pid, (int)c->uid);
}

/*
 * Out of descriptors: give up the spare one, accept and close at once so
 * the client learns it instead of waiting, then take the spare back.
 */
static void
server_shed(struct manager *m)
{
    static uint64_t suppressed;
    int fd;

    if (suppressed++ % 1000 == 0) {
        log_warn("server", "out of file descriptors, refusing clients: "
                 "conns=%zu suppressed=%" PRIu64, m->n_conns, suppressed - 1);
    }
    if (m->reserve_fd >= 0) {
        close(m->reserve_fd);
        fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
        }
        m->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

/*
 * Over the connection cap: say so in a status frame and close. The cap
 * stays below the descriptor limit so that the log and LMDB always find
 * the descriptors they need (a rotation failed for want of one).
 */
static void
server_refuse(struct manager *m, int fd)
{
    static uint64_t refused;
    struct wire_buf b = {0};

    if (refused++ % 1000 == 0) {
        log_warn("server", "too many connections, refusing clients: "
                 "conns=%zu max=%zu suppressed=%" PRIu64, m->n_conns,
                 m->max_conns, refused - 1);
    }
    if (wire_status_append(&b, 0, SHOAL_RESOURCE_EXHAUSTED,
                           "too many connections (%zu); try again later",
                           m->max_conns) == 0 &&
        send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* The client learns it from the close alone. */
    }
    wire_buf_fini(&b);
    close(fd);
}

static void
server_accept_cb(struct loop *l, unsigned events, void *arg)
{
    struct manager *m = arg;

    (void)l;
    (void)events;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(m->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0 && m->n_conns >= m->max_conns) {
            server_refuse(m, fd);
            continue;
        }
        if (fd >= 0) {
            server_accept_one(m, fd);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            server_shed(m);
        } else if (errno != EAGAIN && errno != EINTR &&
                   errno != ECONNABORTED) {
            log_warn("server", "accept failed: errno=%d", errno);
        }
        return;
    }
}

static int
server_socket_mode(struct manager *m)
{
    const char *path = m->cfg.control_socket;
    struct group *g;

    if (!m->cfg.socket_group) {
        return chmod(path, 0600) == 0 ? 0 : -errno;
    }
    g = getgrnam(m->cfg.socket_group);
    if (!g) {
        log_err("server", "no such group: group=%s", m->cfg.socket_group);
        return -ENOENT;
    }
    if (chown(path, (uid_t)-1, g->gr_gid) != 0 || chmod(path, 0660) != 0) {
        return -errno;
    }
    return 0;
}

/* Descriptors kept back from clients: the log's segments and directory,
 * LMDB, the loop's own, and room for what a later module opens. */
#define SERVER_FD_RESERVE 64

static size_t
server_max_conns(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return 1u << 20;
    }
    return rl.rlim_cur > 2 * SERVER_FD_RESERVE
               ? (size_t)rl.rlim_cur - SERVER_FD_RESERVE
               : (size_t)rl.rlim_cur / 2;
}

int
server_start(struct manager *m)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = m->cfg.control_socket;
    mode_t old_mask;
    int rc;

    TAILQ_INIT(&m->conns);
    TAILQ_INIT(&m->dead_conns);
    m->reap.cb = server_reap_cb;
    m->reap.arg = m;
    m->resume.cb = server_resume_cb;
    m->resume.arg = m;
    m->flush_defer.cb = server_flush_cb;
    m->flush_defer.arg = m;
    TAILQ_INIT(&m->flushq);
    if (strlen(path) >= sizeof sa.sun_path) {
        log_err("server", "socket path too long: path=%s max=%zu", path,
                sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);

    m->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                          SOCK_CLOEXEC, 0);
    if (m->listen_fd < 0) {
        return -errno;
    }
    /* A socket file left by a killed daemon: the state lock is ours, so
     * no live manager of this state directory is serving it. */
    unlink(path);
    old_mask = umask(0177); /* never visible with a looser mode */
    rc = bind(m->listen_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old_mask);
    if (rc != 0 || listen(m->listen_fd, 1024) != 0) {
        rc = -errno;
        log_err("server", "cannot listen: path=%s: %s", path, err_str(rc));
        goto fail_close;
    }
    rc = server_socket_mode(m);
    if (rc != 0) {
        log_err("server", "cannot set socket mode: path=%s: %s", path,
                err_str(rc));
        goto fail_close;
    }
    m->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    m->max_conns = server_max_conns();
    m->listen_io = (struct loop_io){
        .fd = m->listen_fd, .events = LOOP_READ,
        .cb = server_accept_cb, .arg = m,
    };
    rc = loop_io_start(&m->loop, &m->listen_io);
    if (rc != 0) {
        goto fail_close;
    }
    return 0;

fail_close:
    close(m->listen_fd);
    m->listen_fd = -1;
    ASSERT(rc != 0);
    return rc;
}

void
server_stop(struct manager *m)
{
    struct conn *c;

    if (m->listen_fd >= 0) {
        loop_io_stop(&m->loop, &m->listen_io);
        close(m->listen_fd);
        unlink(m->cfg.control_socket);
        m->listen_fd = -1;
    }
    if (m->reserve_fd >= 0) {
        close(m->reserve_fd);
        m->reserve_fd = -1;
    }
    loop_defer_cancel(&m->loop, &m->resume);
    server_flush_cb(&m->loop, m);
    loop_defer_cancel(&m->loop, &m->flush_defer);
    while ((c = TAILQ_FIRST(&m->conns))) {
        watch_end_all(c, SHOAL_UNAVAILABLE, "the manager is shutting down");
        conn_flush(c);
        conn_close(c, "server stopping");
    }
    server_reap_cb(&m->loop, m);
}
