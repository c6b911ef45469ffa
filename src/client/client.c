/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * client.c: libshoal, a blocking client of the manager's local socket.
 *
 * Owns one socket, an input buffer of bytes not yet parsed into frames, an
 * output buffer of queued request frames, and a FIFO of frames that a
 * blocking call read for other request ids. Uses the codec of wire/ and
 * nothing of the daemon. Invariant: once a transport or protocol failure
 * has been seen the connection is marked broken and is never read again,
 * because the byte stream can no longer be trusted to be at a frame edge.
 */
#include "shoal/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"

#define CLIENT_FLUSH_BYTES (64u << 10) /* queued bytes that force a write */
#define CLIENT_READ_CHUNK (64u << 10)
#define CLIENT_MAX_ITEMS 1000000 /* items one merged list may hold */

/* A frame set aside by shoal_call for a later shoal_recv. */
struct stash {
    struct shoal_frame frame;
    struct stash *next;
};

struct shoal_client {
    int fd;
    int timeout_ms;          /* each wait for the socket; < 0: forever */
    uint64_t next_id;        /* the id of the next request; never 0 */
    bool broken;             /* see the file comment */
    struct wire_buf in;      /* received bytes not yet made into frames */
    size_t in_off;           /* bytes of in already taken as frames */
    struct wire_buf out;     /* queued frames not yet written */
    struct stash *stash;     /* oldest first */
    struct stash *stash_end; /* last element, for appending */
    struct shoal_hello_reply hello;
};

static int set_err(struct shoal_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill err with a client-side failure and return the negated code. */
static int
set_err(struct shoal_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        memset(err, 0, sizeof *err);
        err->code = code;
        err->local = true;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -code;
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Mark the connection unusable and report code. */
static int
fail_broken(struct shoal_client *c, struct shoal_error *err, int code,
            const char *what)
{
    c->broken = true;
    return set_err(err, code, "%s", what);
}

/*
 * Wait until fd is ready for events, up to timeout_ms. Returns 0,
 * -SHOAL_DEADLINE_EXCEEDED, or -SHOAL_UNAVAILABLE.
 */
static int
wait_fd(int fd, short events, int timeout_ms, struct shoal_error *err)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    do {
        n = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        return set_err(err, SHOAL_DEADLINE_EXCEEDED,
                       "no answer from shoald within %d ms", timeout_ms);
    }
    if (n < 0) {
        return set_err(err, SHOAL_UNAVAILABLE, "poll: %s", strerror(errno));
    }
    return 0;
}

/* Map a connect() errno to the status a user acts on. */
static int
connect_err(const char *path, int e, struct shoal_error *err)
{
    if (e == EACCES || e == EPERM) {
        return set_err(err, SHOAL_PERMISSION_DENIED,
                       "cannot connect to shoald at %s: %s", path,
                       strerror(e));
    }
    return set_err(err, SHOAL_UNAVAILABLE,
                   "cannot connect to shoald at %s: %s (is shoald running? "
                   "set -s or SHOAL_SOCKET)",
                   path, strerror(e));
}

/* Wait for a non-blocking connect to finish; return its errno or 0. */
static int
connect_finish(int fd, int timeout_ms, int *e, struct shoal_error *err)
{
    socklen_t len = sizeof *e;
    int rc = wait_fd(fd, POLLOUT, timeout_ms, err);

    if (rc != 0) {
        return rc;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, e, &len) != 0) {
        *e = errno;
    }
    return 0;
}

/* Open and connect the socket; returns the fd or a negated status. */
static int
open_socket(const char *path, int timeout_ms, struct shoal_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, e = 0, rc;

    if (!path || strlen(path) >= sizeof sa.sun_path || !path[0]) {
        return set_err(err, SHOAL_INVALID_ARGUMENT,
                       "socket path is empty or longer than %zu bytes",
                       sizeof sa.sun_path - 1);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return set_err(err, SHOAL_UNAVAILABLE, "socket: %s", strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        e = errno;
        if (e == EINPROGRESS || e == EAGAIN) {
            rc = connect_finish(fd, timeout_ms, &e, err);
            if (rc != 0) {
                goto fail_close;
            }
        }
    }
    if (e != 0) {
        rc = connect_err(path, e, err);
        goto fail_close;
    }
    return fd;

fail_close:
    close(fd);
    return rc;
}

/* Write the output buffer completely. */
int
shoal_flush(struct shoal_client *c, struct shoal_error *err)
{
    int rc;

    if (c->broken) {
        return set_err(err, SHOAL_UNAVAILABLE, "connection to shoald is "
                                               "broken");
    }
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);

        if (n > 0) {
            wire_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(c->fd, POLLOUT, c->timeout_ms, err);
            if (rc != 0) {
                c->broken = true;
                return rc;
            }
            continue;
        }
        return fail_broken(c, err, SHOAL_UNAVAILABLE,
                           "connection to shoald lost while writing");
    }
    return 0;
}

/* Read more bytes into the input buffer, waiting up to timeout_ms. */
static int
read_more(struct shoal_client *c, int timeout_ms, struct shoal_error *err)
{
    ssize_t n;
    int rc;

    /* The frames taken since the last read are dropped here, once per
     * read: moving the rest after every frame cost quadratic time when a
     * read brought many frames (a watcher at 1,000 events/s spent 96% of
     * its time in memmove). */
    if (c->in_off > 0) {
        wire_buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
    if (wire_buf_reserve(&c->in, CLIENT_READ_CHUNK) != 0) {
        return fail_broken(c, err, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (;;) {
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            return 0;
        }
        if (n == 0) {
            return fail_broken(c, err, SHOAL_UNAVAILABLE,
                               c->in.len > c->in_off
                                   ? "shoald closed the connection "
                                     "in the middle of a reply"
                                   : "shoald closed the connection");
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return fail_broken(c, err, SHOAL_UNAVAILABLE,
                               "connection to shoald lost while reading");
        }
        rc = wait_fd(c->fd, POLLIN, timeout_ms, err);
        if (rc != 0) {
            c->broken = true;
            return rc;
        }
    }
}

/*
 * Take one whole frame off the input buffer if it is there. Returns 1
 * with *f filled, 0 when more bytes are needed, or a negated status.
 */
static int
take_frame(struct shoal_client *c, struct shoal_frame *f,
           struct shoal_error *err)
{
    const uint8_t *at = c->in.data + c->in_off;
    size_t avail = c->in.len - c->in_off;
    struct wire_hdr h;
    ssize_t rc = wire_hdr_decode(&h, at, avail);
    size_t total;

    if (rc == ERR_AGAIN) {
        return 0;
    }
    if (rc < 0) {
        return fail_broken(c, err, SHOAL_INTERNAL,
                           "shoald sent a frame with an invalid length");
    }
    if (h.version != WIRE_PROTO_VERSION) {
        return fail_broken(c, err, SHOAL_INTERNAL,
                           "shoald sent a frame of another protocol version");
    }
    total = (size_t)h.len + 4;
    if (avail < total) {
        return 0;
    }
    *f = (struct shoal_frame){.type = h.type, .flags = h.flags, .id = h.id};
    f->len = total - WIRE_HDR_BYTES;
    if (f->len > 0) {
        f->body = malloc(f->len);
        if (!f->body) {
            return fail_broken(c, err, SHOAL_RESOURCE_EXHAUSTED,
                               "out of memory");
        }
        memcpy(f->body, at + WIRE_HDR_BYTES, f->len);
    }
    c->in_off += total;
    if (c->in_off == c->in.len) {
        c->in.len = 0;
        c->in_off = 0;
    }
    return 1;
}

/* Read one frame from the socket, waiting up to timeout_ms each time. */
static int
read_frame(struct shoal_client *c, struct shoal_frame *f, int timeout_ms,
           struct shoal_error *err)
{
    int rc;

    memset(f, 0, sizeof *f);
    if (c->broken) {
        return set_err(err, SHOAL_UNAVAILABLE, "connection to shoald is "
                                               "broken");
    }
    rc = shoal_flush(c, err);
    while (rc == 0) {
        rc = take_frame(c, f, err);
        if (rc == 1) {
            return 0;
        }
        if (rc == 0) {
            rc = read_more(c, timeout_ms, err);
        }
    }
    return rc;
}

void
shoal_frame_fini(struct shoal_frame *f)
{
    free(f->body);
    memset(f, 0, sizeof *f);
}

static bool
stash_pop(struct shoal_client *c, struct shoal_frame *f)
{
    struct stash *s = c->stash;

    if (!s) {
        return false;
    }
    c->stash = s->next;
    if (!c->stash) {
        c->stash_end = NULL;
    }
    *f = s->frame;
    free(s);
    return true;
}

/* Take the oldest stashed frame of request id, if any. */
static bool
stash_take(struct shoal_client *c, uint64_t id, struct shoal_frame *f)
{
    struct stash **pp = &c->stash;
    struct stash *prev = NULL;

    for (; *pp; prev = *pp, pp = &(*pp)->next) {
        struct stash *s = *pp;

        if (s->frame.id != id) {
            continue;
        }
        *pp = s->next;
        if (c->stash_end == s) {
            c->stash_end = prev;
        }
        *f = s->frame;
        free(s);
        return true;
    }
    return false;
}

/* Keep f (transferred) for a later shoal_recv. */
static int
stash_push(struct shoal_client *c, struct shoal_frame *f,
           struct shoal_error *err)
{
    struct stash *s = calloc(1, sizeof *s);

    if (!s) {
        shoal_frame_fini(f);
        return set_err(err, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    }
    s->frame = *f;
    memset(f, 0, sizeof *f);
    if (c->stash_end) {
        c->stash_end->next = s;
    } else {
        c->stash = s;
    }
    c->stash_end = s;
    return 0;
}

int
shoal_recv(struct shoal_client *c, struct shoal_frame *f,
           struct shoal_error *err)
{
    if (stash_pop(c, f)) {
        return 0;
    }
    return read_frame(c, f, c->timeout_ms, err);
}

/* Read frames until one for request id arrives; others are stashed. */
static int
recv_for(struct shoal_client *c, uint64_t id, int timeout_ms,
         struct shoal_frame *f, struct shoal_error *err)
{
    int rc;

    if (stash_take(c, id, f)) {
        return 0;
    }
    for (;;) {
        rc = read_frame(c, f, timeout_ms, err);
        if (rc != 0 || f->id == id) {
            return rc;
        }
        rc = stash_push(c, f, err);
        if (rc != 0) {
            return rc;
        }
    }
}

int
shoal_send(struct shoal_client *c, uint16_t type, const void *body,
           uint64_t *id, struct shoal_error *err)
{
    const struct wire_msg_info *info = wire_msg_info(type);
    const struct wire_type *t = NULL;
    int rc;

    if (!info || (type & WIRE_REPLY)) {
        return set_err(err, SHOAL_INVALID_ARGUMENT,
                       "unknown request type %u", type);
    }
    if (c->broken) {
        return set_err(err, SHOAL_UNAVAILABLE, "connection to shoald is "
                                               "broken");
    }
    if (body) {
        t = info->request;
    }
    rc = wire_frame_append(&c->out, type, 0, c->next_id, t, body);
    if (rc == ERR_TOOBIG) {
        return set_err(err, SHOAL_INVALID_ARGUMENT,
                       "%s request is larger than the frame limit of %u "
                       "bytes", info->name, WIRE_MAX_FRAME);
    }
    if (rc != 0) {
        return set_err(err, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (id) {
        *id = c->next_id;
    }
    c->next_id++;
    if (c->out.len >= CLIENT_FLUSH_BYTES) {
        return shoal_flush(c, err);
    }
    return 0;
}

/* Fill err from a status frame's body; returns the negated code. */
static int
decode_status(const struct shoal_frame *f, struct shoal_error *err)
{
    struct shoal_status_msg st = {0};
    int code;

    if (wire_decode(&wire_type_status_msg, &st, f->body, f->len) != 0) {
        return set_err(err, SHOAL_INTERNAL,
                       "shoald sent a malformed status frame");
    }
    code = (int)st.code;
    if (code < 0 || code > 0xffff) {
        code = SHOAL_INTERNAL; /* keeps -code a small negative number */
    }
    if (err) {
        memset(err, 0, sizeof *err);
        err->code = code;
        copy_str(err->message, sizeof err->message, st.message);
        if (!st.message || !st.message[0]) {
            copy_str(err->message, sizeof err->message,
                     shoal_status_name(code));
        }
        copy_str(err->leader_addr, sizeof err->leader_addr, st.leader_addr);
        err->current_version = st.current_version;
        err->resume_from = st.resume_from;
    }
    wire_free(&wire_type_status_msg, &st);
    return -code;
}

int
shoal_frame_decode(const struct shoal_frame *f, uint16_t req_type,
                   void *reply, struct shoal_error *err)
{
    const struct wire_msg_info *info = wire_msg_info(req_type);

    if (f->type == WIRE_MSG_STATUS) {
        return decode_status(f, err);
    }
    if (!info || f->type != (req_type | WIRE_REPLY)) {
        return set_err(err, SHOAL_INTERNAL,
                       "shoald answered with an unexpected frame type %u",
                       f->type);
    }
    if (!info->reply || !reply) {
        return 0;
    }
    if (wire_decode(info->reply, reply, f->body, f->len) != 0) {
        return set_err(err, SHOAL_INTERNAL,
                       "shoald sent a malformed %s reply", info->name);
    }
    return 0;
}

/* Append src's array to dst's, taking src's elements. */
#define MERGE_LIST(dst, src, f)                                            \
    do {                                                                   \
        size_t n_ = (dst)->n_##f + (src)->n_##f;                           \
        void *p_;                                                          \
        if ((src)->n_##f == 0) {                                           \
            break;                                                         \
        }                                                                  \
        if (n_ > CLIENT_MAX_ITEMS) {                                       \
            return ERR_TOOBIG;                                             \
        }                                                                  \
        p_ = realloc((dst)->f, n_ * sizeof *(dst)->f);                     \
        if (!p_) {                                                         \
            return ERR_NOMEM;                                              \
        }                                                                  \
        (dst)->f = p_;                                                     \
        memcpy((dst)->f + (dst)->n_##f, (src)->f,                          \
               (src)->n_##f * sizeof *(src)->f);                           \
        (dst)->n_##f = n_;                                                 \
        free((src)->f);                                                    \
        (src)->f = NULL;                                                   \
        (src)->n_##f = 0;                                                  \
    } while (0)

/* Move the lists of src behind those of dst. On failure src keeps what
 * was not moved, so freeing both frees everything once. */
static int
merge_list_reply(struct shoal_list_reply *dst, struct shoal_list_reply *src)
{
    MERGE_LIST(dst, src, nodes);
    MERGE_LIST(dst, src, services);
    MERGE_LIST(dst, src, tasks);
    MERGE_LIST(dst, src, networks);
    MERGE_LIST(dst, src, clusters);
    MERGE_LIST(dst, src, secrets);
    MERGE_LIST(dst, src, configs);
    return 0;
}

static int
merge_statuses(struct shoal_service_statuses_reply *dst,
               struct shoal_service_statuses_reply *src)
{
    MERGE_LIST(dst, src, statuses);
    return 0;
}

/* Merge a continuation of type t into acc; part is freed either way. */
static int
merge_reply(const struct wire_type *t, void *acc, void *part,
            struct shoal_error *err)
{
    int rc = ERR_PROTO;

    if (t == &wire_type_list_reply) {
        rc = merge_list_reply(acc, part);
    } else if (t == &wire_type_service_statuses_reply) {
        rc = merge_statuses(acc, part);
    }
    wire_free(t, part);
    if (rc == ERR_NOMEM) {
        return set_err(err, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (rc != 0) {
        return set_err(err, SHOAL_INTERNAL,
                       "shoald sent a reply in parts that cannot be merged "
                       "or that holds more than %u items",
                       CLIENT_MAX_ITEMS);
    }
    return 0;
}

/* Read the frames of request id until the one without WIRE_F_MORE. */
static int
read_reply(struct shoal_client *c, uint64_t id, uint16_t type, void *reply,
           struct shoal_error *err)
{
    const struct wire_type *t = wire_msg_info(type)->reply;
    struct shoal_frame f;
    void *part = NULL;
    bool first = true, more;
    int rc;

    do {
        rc = recv_for(c, id, c->timeout_ms, &f, err);
        if (rc != 0) {
            break;
        }
        /* A status ends the reply whatever its flags say. */
        more = (f.flags & WIRE_F_MORE) && f.type != WIRE_MSG_STATUS;
        if (!first && f.type == (type | WIRE_REPLY)) {
            if (!part) {
                part = calloc(1, wire_type_size(t));
            }
            rc = part ? shoal_frame_decode(&f, type, part, err)
                      : set_err(err, SHOAL_RESOURCE_EXHAUSTED, "out of "
                                                               "memory");
            rc = rc == 0 ? merge_reply(t, reply, part, err) : rc;
        } else {
            rc = shoal_frame_decode(&f, type, reply, err);
        }
        first = false;
        shoal_frame_fini(&f);
    } while (rc == 0 && more);
    free(part);
    return rc;
}

int
shoal_call(struct shoal_client *c, uint16_t type, const void *req,
           void *reply, struct shoal_error *err)
{
    const struct wire_msg_info *info = wire_msg_info(type);
    uint64_t id;
    int rc;

    if (!info) {
        return set_err(err, SHOAL_INVALID_ARGUMENT,
                       "unknown request type %u", type);
    }
    if (info->reply && !reply) {
        return set_err(err, SHOAL_INVALID_ARGUMENT,
                       "%s needs a reply struct", info->name);
    }
    rc = shoal_send(c, type, req, &id, err);
    if (rc == 0) {
        rc = read_reply(c, id, type, reply, err);
    }
    if (rc != 0 && info->reply) {
        wire_free(info->reply, reply);
    }
    return rc;
}

/* Send the hello and check the server's answer. */
static int
do_hello(struct shoal_client *c, const char *client_name,
         struct shoal_error *err)
{
    struct shoal_hello h = {
        .proto_min = WIRE_PROTO_VERSION,
        .proto_max = WIRE_PROTO_VERSION,
        .client_name = (char *)client_name,
    };
    struct shoal_frame f;
    int rc;

    rc = wire_frame_append(&c->out, WIRE_MSG_HELLO, 0, 0, &wire_type_hello,
                           &h);
    if (rc != 0) {
        return set_err(err, SHOAL_INVALID_ARGUMENT, "client name too long");
    }
    rc = recv_for(c, 0, c->timeout_ms, &f, err);
    if (rc != 0) {
        return rc;
    }
    rc = shoal_frame_decode(&f, WIRE_MSG_HELLO, &c->hello, err);
    shoal_frame_fini(&f);
    if (rc == 0 && c->hello.proto != WIRE_PROTO_VERSION) {
        rc = set_err(err, SHOAL_INTERNAL,
                     "shoald speaks protocol %u, this client %u",
                     c->hello.proto, WIRE_PROTO_VERSION);
    }
    return rc;
}

int
shoal_connect(struct shoal_client **out, const char *path, int timeout_ms,
              const char *client_name, struct shoal_error *err)
{
    struct shoal_client *c;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (!c) {
        return set_err(err, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    }
    c->timeout_ms = timeout_ms;
    c->next_id = 1; /* 0 is the hello's */
    c->fd = open_socket(path, timeout_ms, err);
    if (c->fd < 0) {
        rc = c->fd;
        goto fail_free;
    }
    rc = do_hello(c, client_name, err);
    if (rc != 0) {
        shoal_close(c); /* frees what the hello left behind */
        return rc;
    }
    *out = c;
    return 0;

fail_free:
    free(c);
    return rc;
}

void
shoal_close(struct shoal_client *c)
{
    struct shoal_frame f;

    if (!c) {
        return;
    }
    close(c->fd);
    while (stash_pop(c, &f)) {
        shoal_frame_fini(&f);
    }
    wire_buf_fini(&c->in);
    wire_buf_fini(&c->out);
    wire_free(&wire_type_hello_reply, &c->hello);
    free(c);
}

const struct shoal_hello_reply *
shoal_server_hello(const struct shoal_client *c)
{
    return &c->hello;
}

void
shoal_set_timeout(struct shoal_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

int
shoal_fd(const struct shoal_client *c)
{
    return c->fd;
}

int
shoal_watch_start(struct shoal_client *c,
                  const struct shoal_watch_request *req, uint64_t *stream_id,
                  struct shoal_error *err)
{
    struct shoal_watch_message first = {0};
    struct shoal_frame f;
    int rc;

    rc = shoal_send(c, WIRE_MSG_WATCH, req, stream_id, err);
    if (rc == 0) {
        rc = recv_for(c, *stream_id, c->timeout_ms, &f, err);
    }
    if (rc != 0) {
        return rc;
    }
    rc = shoal_frame_decode(&f, WIRE_MSG_WATCH, &first, err);
    if (rc == 0 && f.type == WIRE_MSG_STATUS) {
        rc = set_err(err, SHOAL_INTERNAL, "shoald ended the watch at once");
    }
    shoal_frame_fini(&f);
    wire_free(&wire_type_watch_message, &first);
    return rc;
}

int
shoal_watch_next(struct shoal_client *c, uint64_t stream_id,
                 struct shoal_watch_message *msg, struct shoal_error *err)
{
    struct shoal_frame f;
    int rc;

    /* A watch waits for events as long as it takes. */
    rc = recv_for(c, stream_id, -1, &f, err);
    if (rc != 0) {
        return rc;
    }
    rc = shoal_frame_decode(&f, WIRE_MSG_WATCH, msg, err);
    if (f.type == WIRE_MSG_STATUS && (rc == 0 || rc == -SHOAL_CANCELLED)) {
        rc = 1;
    }
    shoal_frame_fini(&f);
    return rc;
}

int
shoal_watch_cancel(struct shoal_client *c, uint64_t stream_id,
                   struct shoal_error *err)
{
    int rc;

    if (c->broken) {
        return set_err(err, SHOAL_UNAVAILABLE, "connection to shoald is "
                                               "broken");
    }
    rc = wire_frame_append(&c->out, WIRE_MSG_CANCEL, 0, stream_id, NULL,
                           NULL);
    if (rc != 0) {
        return set_err(err, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    }
    return shoal_flush(c, err);
}
