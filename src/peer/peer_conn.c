/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * peer_conn.c: one peer connection, from TCP connect or accept to down.
 *
 *   CONNECTING --> HANDSHAKE --> HELLO --> UP
 *   (dialed only)   (TLS)        (authorized; hello of PROTOCOL.md 4)
 *
 * Any state may end: at once (peer__conn_end), or, for a refusal the
 * peer should hear about, after a status frame and a close_notify were
 * flushed and the peer closed or PEER_LINGER_MS passed ("closing").
 * Every connection writes at most one log line at info or above, where
 * its fate is decided. Frames are queued by sends and written at the end
 * of the turn; OpenSSL's WANT_READ/WANT_WRITE are remembered per
 * direction, so a read that needs the socket writable (or a write that
 * needs it readable) is retried on the event it waits for.
 *
 * Two kinds of connection bend the mutual authentication for the join:
 * an accepted one whose listener allows anonymous clients comes up
 * without a peer identity when the client presented no certificate, and
 * a CA fetch ends as soon as TLS is done, with the server's root in its
 * dialer and nothing sent.
 */
#include "peer/peer_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define PEER_READ_CHUNK 65536
#define PEER_READS_PER_EVENT 64       /* records read before others' turn */
#define PEER_WRITE_MAX (256u << 10)   /* bytes offered to one SSL_write */
#define PEER_COMPACT_BYTES (1u << 20) /* move queued output down past it */

static void peer_conn_flush(struct peer_conn *c);
static void peer_conn_read(struct peer_conn *c);

static const char *
peer_dir(const struct peer_conn *c)
{
    return c->outbound ? "out" : "in";
}

/* The peer's node id for the log; an anonymous one has none. */
static const char *
peer_who(const struct peer_conn *c)
{
    return c->anonymous ? "(anonymous)" : c->ident.node_id;
}

/* Put what a peer sent into a log line safely: printable ASCII, no
 * quotes or backslashes, cut to fit. */
static void
peer_sanitize(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < cap && src[i] != '\0'; i++) {
        char ch = src[i];

        dst[n++] =
            (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? ch : '?';
    }
    dst[n] = '\0';
}

/* ---- The one log line -------------------------------------------------- */

static void
peer_conn_log(struct peer_conn *c, enum log_level level, const char *why)
{
    if (level >= LOG_DEBUG_LEVEL) {
        log_debug("peer", "connection closed: dir=%s addr=%s reason=\"%s\"",
                  peer_dir(c), c->addr, why);
        return;
    }
    if (c->logged) {
        return;
    }
    c->logged = true;
    if (c->was_up) {
        log_write(level, "peer",
                  "peer down: dir=%s node=%s addr=%s reason=\"%s\"",
                  peer_dir(c), peer_who(c), c->addr, why);
    } else if (c->dialer) {
        peer__dialer_log(c->dialer, level, why);
    } else if (!c->outbound) {
        c->net->stats.refused++;
        log_write(level, "peer", "refused peer: dir=in addr=%s reason=\"%s\"",
                  c->addr, why);
    }
}

/* ---- Ending ------------------------------------------------------------ */

static void
peer_conn_set_why(struct peer_conn *c, int rc, const char *why)
{
    c->end_rc = rc;
    snprintf(c->why, sizeof c->why, "%s", why);
}

void
peer__conn_end(struct peer_conn *c, int rc, enum log_level level,
               const char *why)
{
    struct peer_net *n = c->net;

    if (c->dead) {
        return;
    }
    if (!c->closing) {
        peer_conn_set_why(c, rc, why);
        peer_conn_log(c, level, why);
    }
    c->dead = true;

    /* A close_notify tells the peer this was no cut cable. After a fatal
     * OpenSSL error the session must not be used any more. */
    if (c->state >= PEER_HELLO && !c->fatal && !c->shutdown_sent) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    loop_io_stop(n->loop, &c->io);
    loop_timer_stop(n->loop, &c->timer);
    loop_defer_cancel(n->loop, &c->work);
    close(c->io.fd);
    c->io.fd = -1;

    TAILQ_REMOVE(&n->conns, c, link);
    TAILQ_INSERT_TAIL(&n->dead_conns, c, link);
    if (!c->outbound) {
        n->n_inbound--;
    }
    if (c->was_up) {
        n->stats.down++;
    }
    if (c->dialer) {
        peer__dialer_conn_ended(c->dialer, c->was_up, c->end_rc, c->why);
    }
    peer__net_reap_soon(n);
}

void
peer__conn_free(struct peer_conn *c)
{
    ASSERT(c->dead);
    SSL_free(c->ssl);
    wire_buf_fini(&c->in);
    wire_buf_fini(&c->out);
    free(c);
}

/* An OpenSSL call failed for good: end with its reason. A peer that just
 * went away is routine (info); anything else is worth a warning. */
static void
peer_conn_tls_fail(struct peer_conn *c, int ssl_err, const char *doing)
{
    char reason[PEER_WHY_MAX - 32];
    char why[PEER_WHY_MAX];
    int rc;

    c->fatal = ssl_err == SSL_ERROR_SSL || ssl_err == SSL_ERROR_SYSCALL;
    rc = peer__tls_reason(c->ssl, ssl_err, reason, sizeof reason);
    if (rc == ERR_CLOSED) {
        snprintf(why, sizeof why, "%s", reason);
    } else {
        snprintf(why, sizeof why, "%s: %s", doing, reason);
    }
    peer__conn_end(c, rc, rc == ERR_TLS ? LOG_WARN : LOG_INFO, why);
}

static void
peer_conn_timer_cb(struct loop *l, void *arg)
{
    struct peer_conn *c = arg;

    (void)l;
    if (c->closing) {
        peer__conn_end(c, -ETIMEDOUT, LOG_INFO,
                       "peer did not close after a refusal");
    } else {
        peer__conn_end(c, -ETIMEDOUT, LOG_INFO,
                       c->state == PEER_CONNECTING ? "connect timed out"
                                                   : "handshake timed out");
    }
}

/*
 * Refuse c with a reason the peer is told: a status frame when TLS is
 * up, then a close_notify, then wait for the peer to close (so that it
 * reads the status before any reset) or PEER_LINGER_MS. Logged now.
 */
static void
peer_conn_refuse(struct peer_conn *c, int rc, int code, enum log_level level,
                 const char *why)
{
    struct peer_net *n = c->net;

    if (c->dead || c->closing) {
        return;
    }
    peer_conn_set_why(c, rc, why);
    peer_conn_log(c, level, why);
    if (c->state < PEER_HELLO) {
        peer__conn_end(c, rc, level, why);
        return;
    }
    /* Frames queued before stay: OpenSSL may hold a record of them
     * half-written, which only the same bytes may complete. */
    c->closing = true;
    if (wire_status_append(&c->out, 0, code, "%s", why) != 0) {
        peer__conn_end(c, rc, level, why);
        return;
    }
    loop_timer_start(n->loop, &c->timer, PEER_LINGER_MS);
    loop_defer(n->loop, &c->work);
}

/* ---- Output ------------------------------------------------------------ */

static void
peer_conn_update_events(struct peer_conn *c)
{
    unsigned ev = 0;
    int rc;

    if (c->dead) {
        return;
    }
    switch (c->state) {
    case PEER_CONNECTING:
        ev = LOOP_WRITE;
        break;
    case PEER_HANDSHAKE:
        ev = c->hs_events;
        break;
    case PEER_HELLO:
    case PEER_UP:
        /* Always read: that is how a close or an alert is seen. */
        ev = LOOP_READ;
        if (c->read_wants_write ||
            (peer_conn_queued(c) > 0 && !c->write_wants_read)) {
            ev |= LOOP_WRITE;
        }
        break;
    }
    rc = loop_io_set(c->net->loop, &c->io, ev);
    if (rc != 0) {
        peer__conn_end(c, rc, LOG_WARN, "epoll_ctl failed");
    }
}

/* Give back the space of written bytes: cheaply when all is written,
 * by moving the rest down once enough was written. */
static void
peer_conn_compact(struct peer_conn *c)
{
    if (c->out_off == c->out.len) {
        c->out_off = 0;
        c->out.len = 0;
        if (c->out.cap > 4 * PEER_READ_CHUNK) {
            wire_buf_fini(&c->out);
        }
    } else if (c->out_off >= PEER_COMPACT_BYTES &&
               c->out_off >= c->out.len / 2) {
        wire_buf_consume(&c->out, c->out_off);
        c->out_off = 0;
    }
}

static void
peer_conn_closing_step(struct peer_conn *c)
{
    int r;

    if (peer_conn_queued(c) > 0 || c->shutdown_sent) {
        return;
    }
    /* A close_notify that does not fit now is not retried: the peer
     * has the status, and closing on our side ends it anyway. */
    ERR_clear_error();
    r = SSL_shutdown(c->ssl);
    ERR_clear_error();
    c->shutdown_sent = true;
    if (r < 0) {
        peer__conn_end(c, c->end_rc, LOG_DEBUG_LEVEL, c->why);
    }
}

static void
peer_conn_flush(struct peer_conn *c)
{
    struct peer_net *n = c->net;

    if (c->dead || c->state < PEER_HELLO) {
        return;
    }
    while (peer_conn_queued(c) > 0) {
        size_t len = peer_conn_queued(c);
        int w;
        int e;

        /* After a WANT_ retry SSL_write must be offered at least as
         * many bytes as before: the queue only grows at its end, and
         * the cap is constant, so this holds. */
        if (len > PEER_WRITE_MAX) {
            len = PEER_WRITE_MAX;
        }
        ERR_clear_error();
        w = SSL_write(c->ssl, c->out.data + c->out_off, (int)len);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->write_wants_read = false;
            continue;
        }
        e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            c->write_wants_read = e == SSL_ERROR_WANT_READ;
            break;
        }
        if (c->closing) {
            peer__conn_end(c, c->end_rc, LOG_DEBUG_LEVEL, c->why);
        } else {
            peer_conn_tls_fail(c, e, "write");
        }
        return;
    }
    peer_conn_compact(c);
    if (c->closing) {
        peer_conn_closing_step(c);
    }
    peer_conn_update_events(c);
    if (!c->dead && c->blocked &&
        peer_conn_queued(c) < n->cfg.out_max_bytes / 2) {
        c->blocked = false;
        if (n->ops.on_drain) {
            n->ops.on_drain(c, n->arg);
        }
    }
}

/*
 * Append one frame to c's queue, within its bound: the body encoded from
 * obj by t, or raw_len bytes at raw when raw is not NULL. The state is
 * the callers' to check: the hello goes out before up.
 */
static int
peer_conn_queue(struct peer_conn *c, uint16_t type, uint8_t flags, uint64_t id,
                const struct wire_type *t, const void *obj, const void *raw,
                size_t raw_len)
{
    struct peer_net *n = c->net;
    size_t queued = peer_conn_queued(c);
    size_t start = c->out.len;
    size_t size;
    int rc;

    if (raw && raw_len > WIRE_MAX_BODY) {
        return ERR_TOOBIG;
    }
    if (raw && queued + WIRE_HDR_BYTES + raw_len > n->cfg.out_max_bytes) {
        c->blocked = true;
        return ERR_AGAIN;
    }
    rc = wire_frame_append(&c->out, type, flags, id, t, obj);
    if (rc == 0 && raw) {
        uint32_t flen = (uint32_t)(WIRE_HDR_BYTES - 4 + raw_len);
        uint8_t *h;

        rc = wire_buf_append(&c->out, raw, raw_len);
        /* The length field, big-endian at offset 0 (PROTOCOL.md 2),
         * counts what follows it: the header's other 12 bytes and the
         * body, which wire_frame_append did not see. */
        h = c->out.data + start;
        if (rc == 0) {
            h[0] = (uint8_t)(flen >> 24);
            h[1] = (uint8_t)(flen >> 16);
            h[2] = (uint8_t)(flen >> 8);
            h[3] = (uint8_t)flen;
        }
    }
    if (rc != 0) {
        c->out.len = start;
        return rc;
    }
    size = c->out.len - start;
    if (queued + size > n->cfg.out_max_bytes) {
        c->out.len = start;
        c->blocked = true;
        return ERR_AGAIN;
    }
    n->stats.frames_out++;
    n->stats.bytes_out += size;
    loop_defer(n->loop, &c->work);
    return 0;
}

static int
peer_conn_can_send(const struct peer_conn *c)
{
    if (c->dead || c->closing) {
        return ERR_CLOSED;
    }
    if (c->state != PEER_UP) {
        return ERR_BADSTATE;
    }
    return 0;
}

int
peer_send(struct peer_conn *c, uint16_t type, uint8_t flags, uint64_t id,
          const struct wire_type *t, const void *obj)
{
    int rc = peer_conn_can_send(c);

    if (rc != 0) {
        return rc;
    }
    return peer_conn_queue(c, type, flags, id, t, obj, NULL, 0);
}

int
peer_send_raw(struct peer_conn *c, uint16_t type, uint8_t flags, uint64_t id,
              const void *body, size_t len)
{
    static const uint8_t empty;
    int rc = peer_conn_can_send(c);

    if (rc != 0) {
        return rc;
    }
    return peer_conn_queue(c, type, flags, id, NULL, NULL, body ? body : &empty,
                           body ? len : 0);
}

/* ---- Coming up --------------------------------------------------------- */

static void
peer_conn_up(struct peer_conn *c)
{
    struct peer_net *n = c->net;

    c->state = PEER_UP;
    c->was_up = true;
    loop_timer_stop(n->loop, &c->timer);
    n->stats.up++;
    log_notice("peer", "peer up: dir=%s node=%s role=%s addr=%s", peer_dir(c),
               peer_who(c), c->ident.role, c->addr);
    if (c->dialer) {
        peer__dialer_conn_up(c->dialer);
    }
    if (n->ops.on_up) {
        n->ops.on_up(c, n->arg);
    }
}

/* The dialer speaks first (PROTOCOL.md 4). */
static int
peer_conn_send_hello(struct peer_conn *c)
{
    struct shoal_hello hello = {
        .proto_min = WIRE_PROTO_VERSION,
        .proto_max = WIRE_PROTO_VERSION,
        .client_name = c->self.node_id, /* "" for a dial without cert */
    };

    return peer_conn_queue(c, WIRE_MSG_HELLO, 0, 0, &wire_type_hello, &hello,
                           NULL, 0);
}

/* A status as the first frame: the peer refused us, and says why. */
static void
peer_conn_status_in(struct peer_conn *c, const uint8_t *body, size_t len)
{
    struct shoal_status_msg st = {0};
    char msg[PEER_WHY_MAX - 32] = "no reason given";
    char why[PEER_WHY_MAX];

    if (wire_decode(&wire_type_status_msg, &st, body, len) == 0 && st.message) {
        peer_sanitize(msg, sizeof msg, st.message, strlen(st.message));
    }
    wire_free(&wire_type_status_msg, &st);
    snprintf(why, sizeof why, "refused by the peer: %s", msg);
    peer__conn_end(c, ERR_CLOSED, LOG_WARN, why);
}

/* The listener's side of the hello: check it, answer, and come up. */
static void
peer_conn_hello_in(struct peer_conn *c, const struct wire_hdr *h,
                   const uint8_t *body, size_t len)
{
    const struct peer_ident *me = &c->self;
    struct shoal_hello hello = {0};
    struct shoal_hello_reply reply = {
        .proto = WIRE_PROTO_VERSION,
        .node_id = (char *)me->node_id,
        .cluster_id = (char *)me->cluster_id,
        .server_version = SHOAL_VERSION,
        .max_frame_bytes = WIRE_MAX_FRAME,
    };
    bool ok;

    if (h->type == WIRE_MSG_STATUS) {
        peer_conn_status_in(c, body, len);
        return;
    }
    if (h->type != WIRE_MSG_HELLO || h->id != 0) {
        peer_conn_refuse(c, ERR_PROTO, SHOAL_FAILED_PRECONDITION, LOG_WARN,
                         "the first frame is not a hello with id 0");
        return;
    }
    if (wire_decode(&wire_type_hello, &hello, body, len) != 0) {
        peer_conn_refuse(c, ERR_PROTO, SHOAL_INVALID_ARGUMENT, LOG_WARN,
                         "malformed hello");
        return;
    }
    ok = hello.proto_min <= WIRE_PROTO_VERSION &&
         hello.proto_max >= WIRE_PROTO_VERSION;
    wire_free(&wire_type_hello, &hello);
    if (!ok) {
        peer_conn_refuse(c, ERR_PROTO, SHOAL_UNIMPLEMENTED, LOG_WARN,
                         "no common protocol version: we speak 1 to 1");
        return;
    }
    if (peer_conn_queue(c, WIRE_MSG_HELLO | WIRE_REPLY, 0, 0,
                        &wire_type_hello_reply, &reply, NULL, 0) != 0) {
        peer__conn_end(c, ERR_NOMEM, LOG_WARN, "out of memory for a hello");
        return;
    }
    peer_conn_up(c);
}

/* The dialer's side: a hello reply, or a status saying why not. */
static void
peer_conn_hello_reply_in(struct peer_conn *c, const struct wire_hdr *h,
                         const uint8_t *body, size_t len)
{
    struct shoal_hello_reply reply = {0};
    bool ok;

    if (h->type == WIRE_MSG_STATUS) {
        peer_conn_status_in(c, body, len);
        return;
    }
    if (h->type != (WIRE_MSG_HELLO | WIRE_REPLY) || h->id != 0 ||
        wire_decode(&wire_type_hello_reply, &reply, body, len) != 0) {
        peer__conn_end(c, ERR_PROTO, LOG_WARN, "no valid hello reply");
        return;
    }
    ok = reply.proto == WIRE_PROTO_VERSION && reply.node_id &&
         strcmp(reply.node_id, c->ident.node_id) == 0;
    wire_free(&wire_type_hello_reply, &reply);
    if (!ok) {
        peer__conn_end(c, ERR_PROTO, LOG_WARN,
                       "hello reply with another version or node id");
        return;
    }
    peer_conn_up(c);
}

/*
 * A CA fetch got the server's chain: keep its root in the dialer for the
 * fetch callback and end here. Nothing is sent on a session whose server
 * nobody verified, so a join token cannot leak through it.
 */
static void
peer_conn_fetch_done(struct peer_conn *c)
{
    struct peer_dialer *d = c->dialer;
    int rc;

    if (SSL_version(c->ssl) != TLS1_3_VERSION) {
        peer__conn_end(c, ERR_TLS, LOG_WARN, "tls session is not 1.3");
        return;
    }
    rc = peer__chain_root_der(c->ssl, &d->ca_der, &d->ca_len);
    if (rc == ERR_NOTFOUND) {
        peer__conn_end(c, rc, LOG_WARN,
                       "the server sent no self-signed root certificate");
        return;
    }
    if (rc != 0) {
        peer__conn_end(c, rc, LOG_WARN, "out of memory for the ca");
        return;
    }
    peer__conn_end(c, 0, LOG_DEBUG_LEVEL, "ca fetched");
}

/*
 * Whether the session on c is one we accept: TLS 1.3 and a verified
 * certificate, or no certificate at all from an anonymous client. A
 * certificate that failed verification never gets here on an
 * anonymous-ok listener either: OpenSSL ends the handshake.
 */
static bool
peer_conn_session_ok(const struct peer_conn *c, X509 *cert)
{
    if (SSL_version(c->ssl) != TLS1_3_VERSION) {
        return false;
    }
    if (!cert) {
        return c->anonymous;
    }
    return SSL_get_verify_result(c->ssl) == X509_V_OK;
}

/* TLS is established: check the peer's identity, then the hello. */
static void
peer_conn_tls_done(struct peer_conn *c)
{
    struct peer_net *n = c->net;
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    const char *why = NULL;
    int rc;

    c->state = PEER_HELLO;
    if (c->dialer && c->dialer->fetch) {
        peer_conn_fetch_done(c);
        return;
    }
    /* anon_ok is set on accepted connections only. */
    c->anonymous = !cert && c->anon_ok;
    /* The context allows nothing else; this guards against a change
     * of it that would quietly widen what is accepted. */
    if (!peer_conn_session_ok(c, cert)) {
        peer__conn_end(c, ERR_TLS, LOG_WARN,
                       "tls session is not 1.3 with a verified certificate");
        return;
    }
    if (cert && peer__ident_from_cert(cert, &c->ident) != 0) {
        peer_conn_refuse(c, ERR_TLS, SHOAL_PERMISSION_DENIED, LOG_WARN,
                         "certificate lacks a node id, role or cluster id");
        return;
    }
    rc = n->ops.authorize(c, c->ident.node_id, c->ident.role,
                          c->ident.cluster_id, &why, n->arg);
    if (rc != 0) {
        char msg[PEER_WHY_MAX];

        snprintf(msg, sizeof msg, "%s", why ? why : "not authorized");
        peer_conn_refuse(c, rc, SHOAL_PERMISSION_DENIED, LOG_WARN, msg);
        return;
    }
    if (c->outbound && peer_conn_send_hello(c) != 0) {
        peer__conn_end(c, ERR_NOMEM, LOG_WARN, "out of memory for a hello");
    }
}

static void
peer_conn_handshake(struct peer_conn *c)
{
    int r;

    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        peer_conn_tls_done(c);
        if (!c->dead) {
            /* The peer's first frame may have come with the handshake. */
            peer_conn_read(c);
            peer_conn_flush(c);
        }
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        c->hs_events = LOOP_READ;
        break;
    case SSL_ERROR_WANT_WRITE:
        c->hs_events = LOOP_WRITE;
        break;
    default:
        peer_conn_tls_fail(c, SSL_get_error(c->ssl, r), "tls handshake");
        return;
    }
    peer_conn_update_events(c);
}

/* The non-blocking connect finished, one way or the other. */
static void
peer_conn_connected(struct peer_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    char why[PEER_WHY_MAX];

    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
    }
    if (err != 0) {
        snprintf(why, sizeof why, "connect: %s", strerror(err));
        peer__conn_end(c, -err, LOG_INFO, why);
        return;
    }
    c->state = PEER_HANDSHAKE;
    peer_conn_handshake(c);
}

/* ---- Input ------------------------------------------------------------- */

/* Check h; returns 0 or ends c. */
static int
peer_conn_check_hdr(struct peer_conn *c, const struct wire_hdr *h, ssize_t rc)
{
    const char *why = NULL;

    if (rc < 0) {
        why = "frame length out of bounds";
    } else if (h->version != WIRE_PROTO_VERSION) {
        why = "unsupported protocol version in a frame";
    } else if (h->flags & ~WIRE_F_KNOWN) {
        why = "unknown frame flags";
    }
    if (why) {
        peer_conn_refuse(c, ERR_PROTO, SHOAL_INVALID_ARGUMENT, LOG_WARN, why);
        return ERR_PROTO;
    }
    return 0;
}

/*
 * Hand every whole frame in the input to its reader, judging each header
 * before waiting for its body (its length is the peer's claim), and
 * consume them in one move at the end.
 */
static void
peer_conn_frames(struct peer_conn *c)
{
    struct peer_net *n = c->net;
    size_t off = 0;

    while (!c->dead && !c->closing) {
        struct wire_hdr h;
        ssize_t rc = wire_hdr_decode(&h, c->in.data + off, c->in.len - off);
        size_t total;
        const uint8_t *body;

        if (rc == ERR_AGAIN) {
            break;
        }
        if (peer_conn_check_hdr(c, &h, rc) != 0) {
            break;
        }
        total = (size_t)h.len + 4;
        if (c->in.len - off < total) {
            break; /* the rest of the frame is on its way */
        }
        body = c->in.data + off + WIRE_HDR_BYTES;
        off += total;
        if (c->state == PEER_HELLO) {
            if (c->outbound) {
                peer_conn_hello_reply_in(c, &h, body, total - WIRE_HDR_BYTES);
            } else {
                peer_conn_hello_in(c, &h, body, total - WIRE_HDR_BYTES);
            }
            continue;
        }
        if (h.type == WIRE_MSG_HELLO) {
            peer_conn_refuse(c, ERR_PROTO, SHOAL_FAILED_PRECONDITION, LOG_WARN,
                             "a second hello");
            break;
        }
        n->stats.frames_in++;
        n->stats.bytes_in += total;
        n->ops.on_frame(c, &h, body, total - WIRE_HDR_BYTES, n->arg);
    }
    /* Freed only by the reap, so the buffer is still there when c died
     * in a callback. */
    wire_buf_consume(&c->in, off);
}

static void
peer_conn_read(struct peer_conn *c)
{
    int i;

    for (i = 0; i < PEER_READS_PER_EVENT && !c->dead; i++) {
        int r;
        int e;

        if (wire_buf_reserve(&c->in, PEER_READ_CHUNK) != 0) {
            peer__conn_end(c, ERR_NOMEM, LOG_WARN, "out of memory for input");
            return;
        }
        ERR_clear_error();
        r = SSL_read(c->ssl, c->in.data + c->in.len,
                     (int)(c->in.cap - c->in.len));
        if (r > 0) {
            c->read_wants_write = false;
            if (c->closing) {
                continue; /* a refused peer's bytes are not looked at */
            }
            c->in.len += (size_t)r;
            peer_conn_frames(c);
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            c->read_wants_write = e == SSL_ERROR_WANT_WRITE;
            break;
        }
        if (c->closing) {
            /* The peer closed after our refusal, as hoped. */
            peer__conn_end(c, c->end_rc, LOG_DEBUG_LEVEL, c->why);
        } else {
            peer_conn_tls_fail(c, e, "read");
        }
        return;
    }
    if (c->dead) {
        return;
    }
    /* Stopped for fairness with records decrypted but not read: no
     * socket event would announce them. */
    if (i == PEER_READS_PER_EVENT || SSL_has_pending(c->ssl)) {
        loop_defer(c->net->loop, &c->work);
    }
    /* An idle connection gives its input space back. */
    if (c->in.len == 0 && c->in.cap > 4 * PEER_READ_CHUNK) {
        wire_buf_fini(&c->in);
    }
    peer_conn_update_events(c);
}

/* ---- Loop callbacks ---------------------------------------------------- */

static void
peer_conn_io_cb(struct loop *l, unsigned events, void *arg)
{
    struct peer_conn *c = arg;

    (void)l;
    (void)events; /* each step below finds out itself what it can do */
    switch (c->state) {
    case PEER_CONNECTING:
        peer_conn_connected(c);
        break;
    case PEER_HANDSHAKE:
        peer_conn_handshake(c);
        break;
    case PEER_HELLO:
    case PEER_UP:
        peer_conn_read(c);
        peer_conn_flush(c);
        break;
    }
}

static void
peer_conn_work_cb(struct loop *l, void *arg)
{
    struct peer_conn *c = arg;

    (void)l;
    if (c->dead || c->state < PEER_HELLO) {
        return;
    }
    if (SSL_has_pending(c->ssl)) {
        peer_conn_read(c);
    }
    peer_conn_flush(c);
}

/* ---- Making ------------------------------------------------------------ */

int
peer__conn_new(struct peer_net *n, int fd, const char *addr,
               struct peer_dialer *d, bool connecting, bool anon_ok,
               struct peer_conn **out)
{
    struct peer_tls_ctx *tls = d && d->tls ? d->tls : n->tls;
    struct peer_conn *c = calloc(1, sizeof *c);
    int rc;

    if (!c) {
        rc = ERR_NOMEM;
        goto fail_close;
    }
    c->net = n;
    c->outbound = d != NULL;
    c->dialer = d;
    c->anon_ok = anon_ok && !d;
    c->self = tls->ident;
    c->udata = d ? d->udata : NULL;
    c->state = connecting ? PEER_CONNECTING : PEER_HANDSHAKE;
    c->hs_events = LOOP_READ | LOOP_WRITE;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    c->io = (struct loop_io){
        .fd = fd,
        .events = connecting ? LOOP_WRITE : LOOP_READ,
        .cb = peer_conn_io_cb,
        .arg = c,
    };
    c->timer = (struct loop_timer){.cb = peer_conn_timer_cb, .arg = c};
    c->work = (struct loop_defer){.cb = peer_conn_work_cb, .arg = c};

    rc = peer__ssl_new(tls, fd, !c->outbound, &c->ssl);
    if (rc != 0) {
        goto fail_free;
    }
    if (c->anon_ok) {
        /* Ask for a certificate without requiring one. One that is
         * presented is still verified, and a failure still ends the
         * handshake: without a verify callback OpenSSL does not let a
         * bad certificate through as if none had been sent. */
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    }
    rc = loop_io_start(n->loop, &c->io);
    if (rc != 0) {
        goto fail_free_ssl;
    }
    loop_timer_start(n->loop, &c->timer, n->cfg.handshake_ms);
    TAILQ_INSERT_TAIL(&n->conns, c, link);
    if (!c->outbound) {
        n->n_inbound++;
    }
    *out = c;
    return 0;

fail_free_ssl:
    SSL_free(c->ssl);
fail_free:
    free(c);
fail_close:
    close(fd);
    ASSERT(rc != 0);
    return rc;
}

void
peer_conn_close(struct peer_conn *c, const char *why)
{
    peer__conn_end(c, 0, LOG_DEBUG_LEVEL, why ? why : "closed by owner");
}

const struct peer_ident *
peer_conn_ident(const struct peer_conn *c)
{
    return &c->ident;
}

bool
peer_conn_anonymous(const struct peer_conn *c)
{
    return c->anonymous;
}

const char *
peer_conn_addr(const struct peer_conn *c)
{
    return c->addr;
}

struct peer_dialer *
peer_conn_dialer(const struct peer_conn *c)
{
    return c->dialer;
}

void *
peer_conn_udata(const struct peer_conn *c)
{
    return c->udata;
}

void
peer_conn_set_udata(struct peer_conn *c, void *udata)
{
    c->udata = udata;
}

size_t
peer_conn_queued(const struct peer_conn *c)
{
    return c->out.len - c->out_off;
}
