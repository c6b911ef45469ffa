/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * peer_int.h: what the files of the peer module share.
 *
 * peer_tls.c owns the OpenSSL side (contexts, identities, the socket BIO,
 * error reasons), peer_conn.c one connection's life from TCP to down, and
 * peer_net.c the set: listeners, dialers, back-off and the end-of-turn
 * reap. Invariant: a struct peer_conn, peer_listener or peer_dialer is
 * freed only by the reap, after every callback of its turn returned.
 */
#ifndef SHOAL_PEER_PEER_INT_H
#define SHOAL_PEER_PEER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "base/base.h"
#include "peer/peer.h"

#define PEER_ADDR_MAX 64    /* "[v6]:port" and a NUL */
#define PEER_WHY_MAX 160    /* a reason for the log and on_down */
#define PEER_LINGER_MS 1000 /* wait for the peer to read a refusal */

struct peer_tls_ctx {
    SSL_CTX *ctx;
    struct peer_ident ident; /* from our own certificate; empty without */
    int64_t not_after;       /* seconds since the epoch */
};

/*
 * Life of a connection. CONNECTING only for dialed ones. From HELLO on
 * the TLS session is established and the peer authorized; UP once the
 * hello was exchanged. closing (a flag, orthogonal) means a refusal is
 * being flushed before the close.
 */
enum peer_conn_state {
    PEER_CONNECTING,
    PEER_HANDSHAKE,
    PEER_HELLO,
    PEER_UP,
};

struct peer_conn {
    struct peer_net *net;
    struct loop_io io;
    struct loop_timer timer; /* handshake deadline, then linger */
    struct loop_defer work;  /* end-of-turn flush and pending reads */
    SSL *ssl;
    enum peer_conn_state state;
    bool outbound;
    bool anon_ok;               /* accepted: a client may show no cert */
    bool anonymous;             /* the client showed none: ident empty */
    bool dead;                  /* closed; freed by the reap */
    bool closing;               /* flushing a refusal; input discarded */
    bool shutdown_sent;         /* close_notify written */
    bool fatal;                 /* OpenSSL failed: no SSL_shutdown */
    bool logged;                /* the one info+ line was written */
    bool was_up;                /* on_up was called: on_down is due */
    bool blocked;               /* a send got ERR_AGAIN: on_drain due */
    bool read_wants_write;      /* SSL_read needs the socket writable */
    bool write_wants_read;      /* SSL_write needs the socket readable */
    unsigned hs_events;         /* what the handshake waits for */
    struct peer_dialer *dialer; /* NULL when accepted */
    void *udata;
    struct wire_buf in;  /* decrypted bytes, whole frames consumed */
    struct wire_buf out; /* frames queued, written from out_off */
    size_t out_off;
    int end_rc; /* for on_down */
    char why[PEER_WHY_MAX];
    char addr[PEER_ADDR_MAX];
    struct peer_ident ident; /* the peer's */
    struct peer_ident self;  /* of the certificate we presented */
    TAILQ_ENTRY(peer_conn) link;
};

struct peer_listener {
    struct peer_net *net;
    struct loop_io io;
    struct loop_timer pause; /* accept paused after EMFILE and alike */
    uint16_t port;
    bool closed;
    bool anon_ok; /* PEER_LISTEN_ANON */
    char addr[PEER_ADDR_MAX];
    TAILQ_ENTRY(peer_listener) link;
};

struct peer_dialer {
    struct peer_net *net;
    struct sockaddr_storage sa;
    socklen_t sa_len;
    char addr[PEER_ADDR_MAX];
    void *udata;
    struct peer_conn *conn; /* the current try or connection */
    struct loop_timer retry;
    bool stopped;
    bool once;   /* one connection, no retry; retires when it ends */
    bool fetch;  /* once, unverified, ends at the chain: CA fetch */
    bool report; /* a once dial failed (or a fetch ended): cb due */
    struct peer_tls_ctx *tls; /* owned; NULL: the net's context */
    int end_rc;               /* for the report */
    char end_why[PEER_WHY_MAX];
    peer_ca_fetch_cb *fetch_cb;
    void *fetch_arg;
    uint8_t *ca_der; /* OPENSSL_malloc'd root the server sent */
    size_t ca_len;
    struct peer_dialer_state st;
    uint32_t suppressed;         /* failures not logged: same reason */
    char last_why[PEER_WHY_MAX]; /* of the last failure logged */
    TAILQ_ENTRY(peer_dialer) link;
};

/* ---- peer_tls.c ------------------------------------------------------- */

/*
 * Make the SSL object of a connection on fd (borrowed: the caller closes
 * it after SSL_free) with t's context, in the server role when server.
 * Writes never raise SIGPIPE. Returns 0 and *out (transferred), or
 * ERR_NOMEM.
 */
int peer__ssl_new(struct peer_tls_ctx *t, int fd, bool server, SSL **out);

/*
 * Make a client context that presents no certificate: with ca_der (one
 * DER certificate, borrowed) it verifies the server against that CA
 * alone; with ca_der NULL it verifies nothing (the CA fetch). The ident
 * of *out is empty. Returns 0 and *out (transferred); CA material that
 * does not parse is ERR_TLS (logged at warn); ERR_NOMEM.
 */
int peer__tls_ctx_client(const uint8_t *ca_der, size_t ca_len,
                         struct peer_tls_ctx **out);

/*
 * The last certificate of the chain the server sent on ssl (client
 * side), when it is self-signed, as DER into *der (OPENSSL_malloc'd,
 * transferred) and *len. Untrusted. Returns 0, ERR_NOTFOUND when the
 * chain ends with no self-signed certificate, ERR_NOMEM.
 */
int peer__chain_root_der(SSL *ssl, uint8_t **der, size_t *len);

/*
 * Read the identity of cert into *id. Returns 0, or -EINVAL when CN, OU
 * or O is missing, repeated, too long, or holds other characters than
 * [A-Za-z0-9._-]. Never logs.
 */
int peer__ident_from_cert(X509 *cert, struct peer_ident *id);

/*
 * Describe why an SSL call on ssl failed (ssl_err from SSL_get_error, not
 * a WANT_ value) in buf, and drain OpenSSL's error queue. Returns the
 * code for the connection's end: ERR_CLOSED when the peer just went
 * away, -errno for a socket error, ERR_TLS otherwise.
 */
int peer__tls_reason(SSL *ssl, int ssl_err, char *buf, size_t len);

/* ---- peer_conn.c ------------------------------------------------------ */

/*
 * Make a connection of n on fd (transferred: closed with the connection)
 * with peer address addr, dialed by d (NULL: accepted, and anon_ok says
 * whether the client may present no certificate). It uses d's own TLS
 * context when d has one, else n's. When connecting, the TCP connect is
 * still in progress. Starts the handshake deadline. Returns 0 and *out
 * (kept by n), or ERR_NOMEM / -errno (fd closed).
 */
int peer__conn_new(struct peer_net *n, int fd, const char *addr,
                   struct peer_dialer *d, bool connecting, bool anon_ok,
                   struct peer_conn **out);

/*
 * Close c now, whatever its state: the first reason given is kept for
 * on_down, level is that of its one log line (LOG_DEBUG_LEVEL: the
 * owner decided and logs). Tells its dialer. Idempotent.
 */
void peer__conn_end(struct peer_conn *c, int rc, enum log_level level,
                    const char *why);

/* Release what c holds and c itself. Only the reap calls it. */
void peer__conn_free(struct peer_conn *c);

/* ---- peer_net.c ------------------------------------------------------- */

/* Have the reap run at the end of this turn. */
void peer__net_reap_soon(struct peer_net *n);

/*
 * The dialer's connection ended (was_up: it had come up) with rc and why
 * (borrowed). A dialer that keeps a link schedules the next try after
 * the back-off unless stopped; a one-shot dialer retires, its failure
 * reported by the reap.
 */
void peer__dialer_conn_ended(struct peer_dialer *d, bool was_up, int rc,
                             const char *why);

/* The dialer's connection came up: reset its failures. */
void peer__dialer_conn_up(struct peer_dialer *d);

/*
 * Log a failure to connect at level, once per reason in a row: repeats
 * are counted and reported with the next line that is written.
 */
void peer__dialer_log(struct peer_dialer *d, enum log_level level,
                      const char *why);

#endif
