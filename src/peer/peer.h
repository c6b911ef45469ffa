/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * peer.h: manager-to-manager connections: TLS 1.3 with mutual
 * authentication, non-blocking inside the one epoll loop, carrying the
 * frames of wire/PROTOCOL.md.
 *
 * A struct peer_net (caller's storage) holds the callbacks, the TLS
 * context for new connections, and every listener, dialer and connection
 * made through it. A connection is "up" once TLS is done, the owner's
 * authorize callback accepted the peer's certificate identity and the
 * hello of PROTOCOL.md section 4 was exchanged (the dialer speaks first).
 * Only then is on_up called and may frames be sent; on_down follows once
 * for every connection that was up. Connections, listeners and dialers
 * are freed at the end of a loop turn, never inside a callback.
 *
 * Joining (issue #4, SWARMKIT.md 6) needs three exceptions to mutual
 * authentication, each asked for by name: a listener made with
 * PEER_LISTEN_ANON also accepts clients that present no certificate
 * (peer_conn_anonymous tells them apart; a certificate that is presented
 * is still verified in full); peer_dial_anon connects once without a
 * certificate, verifying the server against a CA the caller pinned; and
 * peer_fetch_ca_unverified reads the root certificate a server sends
 * without trusting it, for the caller to check against its join token
 * (ca_token_pin) before anything else. A node without a certificate
 * runs a peer_net made with no TLS context until peer_net_set_tls.
 *
 * Error codes: 0 or negative, -errno for system calls, enum err_code of
 * base.h for ours. Unless a comment says otherwise, pointer parameters
 * are borrowed. Single-threaded, like the loop.
 */
#ifndef SHOAL_PEER_PEER_H
#define SHOAL_PEER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bsd/sys/queue.h>

#include "loop/loop.h"
#include "shoal/wire.h"

/* ---- TLS context ------------------------------------------------------ */

#define PEER_NAME_MAX 64 /* bytes of a certificate name, without the NUL */

/* Who a certificate says its holder is (Swarm's convention). */
struct peer_ident {
    char node_id[PEER_NAME_MAX + 1];    /* subject CN */
    char role[PEER_NAME_MAX + 1];       /* subject OU */
    char cluster_id[PEER_NAME_MAX + 1]; /* subject O */
};

struct peer_tls_ctx;

/*
 * Make a TLS context: TLS 1.3 only, mutual authentication, trusting only
 * the certificates in ca_pem (one or more, e.g. old and new root during a
 * rotation), presenting cert_pem (this node's certificate, optionally
 * followed by intermediates) with the private key key_pem. Groups
 * X25519:P-256, no session tickets or session cache. The chain sent to
 * peers ends with the root of ca_pem that issued cert_pem, so that a
 * joining node can fetch it (peer_fetch_ca_unverified); when cert_pem
 * does not chain to ca_pem, only the certificates of cert_pem are sent.
 *
 * The three strings are NUL-terminated PEM and borrowed; nothing of
 * key_pem is kept outside OpenSSL's key object (the caller wipes its
 * copy). The certificate must carry a node id (CN), role (OU) and
 * cluster id (O) of at most PEER_NAME_MAX characters in [A-Za-z0-9._-].
 *
 * Returns 0 and *out (transferred: free with peer_tls_ctx_free or hand
 * to a peer_net); ERR_TLS when a PEM does not parse or the key does not
 * match the certificate (the OpenSSL queue is logged at warn);
 * -EINVAL when the certificate lacks a usable identity; ERR_NOMEM.
 */
int peer_tls_ctx_new(const char *ca_pem, const char *cert_pem,
                     const char *key_pem, struct peer_tls_ctx **out);

/* Free t. NULL is a no-op. Connections made with it keep working: each
 * holds its own reference to the OpenSSL context. */
void peer_tls_ctx_free(struct peer_tls_ctx *t);

/* This node's identity, from its own certificate. Borrowed from t. */
const struct peer_ident *peer_tls_ctx_ident(const struct peer_tls_ctx *t);

/* The end of the own certificate's validity, in seconds since the Unix
 * epoch, for an expiry metric. */
int64_t peer_tls_ctx_not_after(const struct peer_tls_ctx *t);

/* ---- Callbacks and configuration ------------------------------------- */

struct peer_conn;
struct peer_listener;
struct peer_dialer;

/*
 * Decide whether the peer that just completed the TLS handshake on c may
 * stay. The identity comes from its verified certificate (strings are
 * borrowed, valid during the call). Return 0 to accept; a negative code
 * to refuse, with *why set to a short static reason for the log ("node
 * removed", "foreign cluster"). A refused peer is told why in a status
 * frame (PERMISSION_DENIED), closed and logged once. Called on both
 * sides; peer_conn_dialer(c) tells the dialing side which dialer it is.
 * It must not free or close c (return a refusal instead).
 *
 * On a PEER_LISTEN_ANON listener a client may present no certificate:
 * then node_id, role and cluster_id are empty strings (never NULL, so
 * that an owner that forgets the case matches no member) and
 * peer_conn_anonymous(c) is true. Accept such a peer only to serve the
 * requests a node without a certificate may make (the join).
 */
typedef int peer_authorize_cb(struct peer_conn *c, const char *node_id,
                              const char *role, const char *cluster_id,
                              const char **why, void *arg);

/* c is up: frames may flow both ways. c stays valid until on_down. */
typedef void peer_up_cb(struct peer_conn *c, void *arg);

/*
 * c, which was up, is closed: rc says why (0 when the owner closed it,
 * ERR_CLOSED when the peer did, ERR_PROTO, ERR_TLS, -errno, ...) and why
 * in words (borrowed). Called at the end of the turn in which c closed;
 * c is freed right after this returns, so the owner drops its pointers.
 */
typedef void peer_down_cb(struct peer_conn *c, int rc, const char *why,
                          void *arg);

/*
 * A whole frame arrived on an up connection: h is its checked header
 * (version and flags are known ones; never a hello, since a second hello
 * closes the connection as ERR_PROTO), body its len bytes. Both are
 * borrowed until the callback returns. The callback may send, close c,
 * or stop c's dialer.
 */
typedef void peer_frame_cb(struct peer_conn *c, const struct wire_hdr *h,
                           const uint8_t *body, size_t len, void *arg);

/*
 * The output queue of c, after a send was refused with ERR_AGAIN, fell
 * below half of its bound: sending may resume.
 */
typedef void peer_drain_cb(struct peer_conn *c, void *arg);

/*
 * The one connection of d, a peer_dial_anon dialer, ended before it
 * came up (connect, TLS, the owner's or the peer's refusal, the hello):
 * rc and why (borrowed) say why, as on_down would. Called at the end of
 * the turn; d is freed right after this returns. Not called after
 * peer_dialer_stop(d) or peer_net_fini.
 */
typedef void peer_dial_fail_cb(struct peer_dialer *d, int rc, const char *why,
                               void *arg);

/*
 * A peer_fetch_ca_unverified ended: rc 0 with the DER of the root
 * certificate the server sent, len bytes at ca_der (borrowed until the
 * callback returns; UNTRUSTED: anyone on the path may have sent it, so
 * check it with ca_token_pin before any other use), why "ca fetched";
 * or rc < 0, ca_der NULL and why (borrowed) saying what failed:
 * ERR_NOTFOUND when the chain ends with no self-signed certificate,
 * ERR_TLS, ERR_CLOSED, -errno, -ETIMEDOUT. arg is the one given to
 * peer_fetch_ca_unverified. Called once at the end of the turn, never
 * after peer_dialer_stop or peer_net_fini.
 */
typedef void peer_ca_fetch_cb(int rc, const uint8_t *ca_der, size_t len,
                              const char *why, void *arg);

struct peer_ops {
    peer_authorize_cb *authorize; /* required */
    peer_frame_cb *on_frame;      /* required */
    peer_up_cb *on_up;            /* optional, as the three below */
    peer_down_cb *on_down;
    peer_drain_cb *on_drain;
    peer_dial_fail_cb *on_dial_fail;
};

#define PEER_OUT_MAX_DEFAULT (16u << 20)
#define PEER_HANDSHAKE_MS_DEFAULT 10000
#define PEER_MAX_CONNS_DEFAULT 1024
#define PEER_BACKOFF_FIRST_MS 50
#define PEER_BACKOFF_MAX_MS 1000

/* Zeroed fields take their default. */
struct peer_config {
    size_t out_max_bytes;  /* bound of one connection's queued output;
                              at least WIRE_MAX_FRAME */
    uint32_t handshake_ms; /* from accept or connect to up */
    uint32_t max_conns;    /* accepted connections held at once */
};

/* Counters since peer_net_init, for metrics and tests. */
struct peer_stats {
    uint64_t accepted; /* TCP connections accepted */
    uint64_t dialed;   /* TCP connects started */
    uint64_t refused;  /* inbound ones closed before up, any reason */
    uint64_t up;       /* connections that came up, both directions */
    uint64_t down;     /* of those, closed since */
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t bytes_in; /* frame bytes, headers included */
    uint64_t bytes_out;
};

TAILQ_HEAD(peer_conn_list, peer_conn);
TAILQ_HEAD(peer_listener_list, peer_listener);
TAILQ_HEAD(peer_dialer_list, peer_dialer);

/* Fields are private to the module; the struct is here so that the
 * owner can hold it. */
struct peer_net {
    struct loop *loop;
    struct peer_tls_ctx *tls; /* for new connections; owned */
    struct peer_config cfg;
    struct peer_ops ops;
    void *arg;
    struct peer_stats stats;
    uint32_t n_inbound; /* live accepted connections */
    struct peer_conn_list conns;
    struct peer_conn_list dead_conns;
    struct peer_listener_list listeners;
    struct peer_listener_list dead_listeners;
    struct peer_dialer_list dialers;
    struct peer_dialer_list dead_dialers;
    struct loop_defer reap;
};

/* ---- The set of connections ------------------------------------------ */

/*
 * Set up n (caller's storage) on loop l (kept until peer_net_fini).
 * tls is transferred (freed by peer_net_fini or a later
 * peer_net_set_tls); cfg may be NULL for the defaults; ops is copied;
 * arg is passed to every callback. Returns 0, or -EINVAL when a required
 * callback is missing or cfg->out_max_bytes is below WIRE_MAX_FRAME (tls
 * is then not taken).
 *
 * tls may be NULL on a node that has no certificate yet: n can then only
 * make peer_dial_anon and peer_fetch_ca_unverified connections, which
 * carry their own contexts; peer_listen and peer_dial return
 * ERR_BADSTATE until peer_net_set_tls gives n an identity.
 */
int peer_net_init(struct peer_net *n, struct loop *l, struct peer_tls_ctx *tls,
                  const struct peer_config *cfg, const struct peer_ops *ops,
                  void *arg);

/*
 * Close every connection, listener and dialer of n at once and free them
 * and the TLS context; no callback is called (not even a fetch or dial
 * failure already due). Not to be called from a
 * callback of n. A zeroed n is a no-op.
 */
void peer_net_fini(struct peer_net *n);

/*
 * Use tls (transferred) for connections made from now on, e.g. after a
 * certificate renewal; the previous context is freed, and connections
 * already made keep theirs. Never fails.
 */
void peer_net_set_tls(struct peer_net *n, struct peer_tls_ctx *tls);

/* Copy the counters of n into *st. */
void peer_net_stats(const struct peer_net *n, struct peer_stats *st);

/* ---- Listening -------------------------------------------------------- */

/*
 * Accept peers on addr, "IPv4:port" or "[IPv6]:port" with a numeric host
 * (no name lookup: it would block the loop); port 0 picks a free one.
 * Every client must present a certificate of the cluster CA. Returns 0
 * and *out (kept by n until peer_listener_close or peer_net_fini),
 * -EINVAL for a malformed address, ERR_BADSTATE when n has no TLS
 * context, or -errno from socket, bind or listen (nothing left open).
 */
int peer_listen(struct peer_net *n, const char *addr,
                struct peer_listener **out);

/* Flags of peer_listen_flags. */
#define PEER_LISTEN_ANON 0x1u /* a client may present no certificate */

/*
 * As peer_listen, with flags (0 or PEER_LISTEN_ANON; other bits are
 * -EINVAL). With PEER_LISTEN_ANON the server asks for a client
 * certificate but does not require one: a client that presents none
 * completes TLS 1.3 and reaches authorize as anonymous (see
 * peer_authorize_cb); a client that presents one is verified against the
 * cluster CA exactly as by peer_listen and refused when it fails (never
 * taken as anonymous). Same return codes as peer_listen.
 */
int peer_listen_flags(struct peer_net *n, const char *addr, unsigned flags,
                      struct peer_listener **out);

/* The port listened on (the one picked when the address said 0). */
uint16_t peer_listener_port(const struct peer_listener *pl);

/* Stop accepting and close the socket; connections already accepted
 * stay. pl is freed at the end of the turn. */
void peer_listener_close(struct peer_listener *pl);

/* ---- Dialing ---------------------------------------------------------- */

/*
 * Keep a connection to addr (as for peer_listen, port not 0): connect
 * now, and after every failed try or dropped connection try again after
 * peer_backoff_ms() of the failures in a row, until peer_dialer_stop.
 * udata is kept and given to each connection the dialer makes
 * (peer_conn_udata). Returns 0 and *out (kept by n until
 * peer_dialer_stop or peer_net_fini), -EINVAL for a malformed address,
 * or ERR_BADSTATE when n has no TLS context. A first connect that fails
 * at once is retried like any other.
 */
int peer_dial(struct peer_net *n, const char *addr, void *udata,
              struct peer_dialer **out);

/*
 * Connect to addr once, presenting no client certificate, and verify the
 * server against the CA certificate ca_der alone (ca_len bytes of DER,
 * borrowed: typically the root fetched by peer_fetch_ca_unverified and
 * checked with ca_token_pin). This is the joiner's link for its key
 * request: the listener must be a PEER_LISTEN_ANON one. The server's
 * identity goes to authorize as for peer_dial, and the connection comes
 * up (on_up, frames, on_down) like any other; its hello names no node.
 * There is no retry: when the connection ends before coming up,
 * ops.on_dial_fail reports why; either way d retires when its
 * connection ends and is freed at the end of that turn, so the owner
 * drops d in on_down or on_dial_fail. udata as for peer_dial. Works on
 * an n with no TLS context.
 *
 * Returns 0 and *out (kept by n until then, or peer_dialer_stop or
 * peer_net_fini); -EINVAL for a malformed address; ERR_TLS when ca_der
 * is not one DER certificate (logged at warn); ERR_NOMEM. A connect that
 * fails at once is reported by on_dial_fail at the end of the turn.
 */
int peer_dial_anon(struct peer_net *n, const char *addr, const uint8_t *ca_der,
                   size_t ca_len, void *udata, struct peer_dialer **out);

/*
 * UNVERIFIED: fetch the root CA certificate the server at addr sends in
 * its TLS chain, trusting nothing. The first step of a join: the caller
 * must check the certificate against its join token with ca_token_pin
 * before it trusts it, then use peer_dial_anon with it; the join token
 * must never travel on this connection, and none can: it closes as soon
 * as the handshake gives the chain, sending no frame and calling no
 * authorize. Any peer listener answers (one without PEER_LISTEN_ANON
 * logs a refusal of the client without certificate; an anonymous-ok one
 * does not). cb (required) is called once with arg, at the end of the
 * turn in which the fetch ended, unless peer_dialer_stop(*out) or
 * peer_net_fini came first; *out is freed right after cb returns. Works
 * on an n with no TLS context; bounded by cfg.handshake_ms.
 *
 * Returns 0 and *out; -EINVAL for a malformed address or a NULL cb;
 * ERR_NOMEM. A connect that fails at once is reported through cb.
 */
int peer_fetch_ca_unverified(struct peer_net *n, const char *addr,
                             peer_ca_fetch_cb *cb, void *arg,
                             struct peer_dialer **out);

/*
 * Stop dialing and close the dialer's connection, if any (on_down
 * follows at the end of the turn when it was up). d is freed at the end
 * of the turn. For a one-shot dialer (peer_dial_anon,
 * peer_fetch_ca_unverified) neither on_dial_fail nor the fetch callback
 * follows, even when already due; d may be stopped until the callback
 * that ends it returns, not after.
 */
void peer_dialer_stop(struct peer_dialer *d);

/* The udata given to peer_dial or peer_dial_anon (NULL for a fetch). */
void *peer_dialer_udata(const struct peer_dialer *d);

struct peer_dialer_state {
    bool up;           /* its connection is up now */
    uint32_t n_fail;   /* tries in a row that did not come up */
    uint32_t delay_ms; /* wait before the try scheduled last */
    uint64_t n_tries;  /* connects started */
    uint64_t n_up;     /* times a connection came up */
};

/* Copy d's state into *st. */
void peer_dialer_state(const struct peer_dialer *d,
                       struct peer_dialer_state *st);

/*
 * The wait before the next try after n_fail failures in a row (0 after a
 * connection that was up dropped): 50 ms doubled per failure, at most
 * 1 s, as SwarmKit's connection selector. Never fails.
 */
uint32_t peer_backoff_ms(uint32_t n_fail);

/* ---- Connections ------------------------------------------------------ */

/*
 * Queue a frame of type, flags and request id whose body is obj encoded
 * by t (t NULL: empty body); it is written at the end of the turn.
 * Returns 0; ERR_TOOBIG when the frame exceeds WIRE_MAX_FRAME; ERR_AGAIN
 * when it would take the queue over cfg.out_max_bytes (nothing queued;
 * on_drain tells when to try again); ERR_CLOSED when c is closed or
 * closing, ERR_BADSTATE when it is not up yet; ERR_NOMEM.
 */
int peer_send(struct peer_conn *c, uint16_t type, uint8_t flags, uint64_t id,
              const struct wire_type *t, const void *obj);

/*
 * As peer_send with a body already encoded: len bytes at body (borrowed,
 * copied into the queue). Same return codes.
 */
int peer_send_raw(struct peer_conn *c, uint16_t type, uint8_t flags,
                  uint64_t id, const void *body, size_t len);

/*
 * Close c now (a close_notify is sent if the socket takes it; queued
 * frames are dropped). why (borrowed, copied) is given to on_down, which
 * follows at the end of the turn if c was up; the owner made the
 * decision, so only a debug line is logged. A closed c is a no-op. A
 * dialed c is dialed again after the back-off.
 */
void peer_conn_close(struct peer_conn *c, const char *why);

/* The peer's identity from its certificate; empty strings before the
 * handshake and for an anonymous peer. Borrowed from c. */
const struct peer_ident *peer_conn_ident(const struct peer_conn *c);

/*
 * Whether the peer of c, accepted on a PEER_LISTEN_ANON listener,
 * completed TLS without a certificate: it has no identity, and the owner
 * should serve it the join requests only. False before the handshake,
 * for dialed connections and for peers with a certificate.
 */
bool peer_conn_anonymous(const struct peer_conn *c);

/* The peer's address, "ip:port". Borrowed from c. */
const char *peer_conn_addr(const struct peer_conn *c);

/* The dialer that made c, or NULL for an accepted connection. */
struct peer_dialer *peer_conn_dialer(const struct peer_conn *c);

/* The owner's pointer for c: the dialer's udata, or NULL for an accepted
 * connection, until peer_conn_set_udata changes it. */
void *peer_conn_udata(const struct peer_conn *c);

/* Set the owner's pointer for c (kept, never dereferenced by peer). */
void peer_conn_set_udata(struct peer_conn *c, void *udata);

/* Bytes queued on c and not yet written to the socket. */
size_t peer_conn_queued(const struct peer_conn *c);

#ifdef SHOAL_TEST_BUILD
/*
 * Test builds only: the next n socket writes of every peer link fail
 * with EAGAIN although the socket has room, so that OpenSSL's
 * WANT_WRITE paths (a write retried with the same bytes, a read that
 * must write) run on demand. Never fails.
 */
void peer_test_block_writes(unsigned n);
#endif

#endif
