/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_peer.c: manager-to-manager links of src/peer over real TCP on
 * 127.0.0.1, with real TLS.
 *
 * One loop carries both ends: side A listens on an ephemeral port, side
 * B dials it, and a test drives the loop until a condition holds, with a
 * loop timer as the deadline. The certificates (a root CA, node
 * certificates, an expired one, one of a foreign CA) are made by the
 * fixture with the OpenSSL API. Hostile clients (plain TCP, TLS 1.2,
 * garbage after a handshake, a broken frame header) are a small
 * non-blocking client driven by the same loop. Log lines go to a file
 * that tests count: each refusal must be logged exactly once. The join
 * tests give side B a peer_net with no certificate at all.
 */
#include "peer/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/base.h"
#include "ca/ca.h"

#define NODE_A "node-a"
#define NODE_B "node-b"
#define NODE_C "node-c" /* expired */
#define NODE_D "node-d" /* B after a certificate renewal */
#define NODE_E "node-e" /* foreign CA */
#define ROLE "swarm-manager"
#define CLUSTER "cluster-1"
#define TK_RAW 0x7001 /* frame type of the tests' raw frames */
#define TK_WAIT_MS 5000
#define MIB (1u << 20)

/* ---- Certificates ------------------------------------------------------ */

struct tk_pems {
    char *ca;
    char *a_cert, *a_key;
    char *b_cert, *b_key;
    char *d_cert, *d_key;
    char *expired_cert, *expired_key;
    char *foreign_ca;
    char *foreign_cert, *foreign_key;
    char *noid_cert, *noid_key; /* no OU */
};

static struct tk_pems pems;
static long tk_serial = 1;

static void
tk_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);

    cr_assert_not_null(ext);
    cr_assert(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

static void
tk_name(X509_NAME *nm, const char *field, const char *value)
{
    if (value) {
        cr_assert(X509_NAME_add_entry_by_txt(
            nm, field, MBSTRING_ASC, (const unsigned char *)value, -1, -1, 0));
    }
}

/* A certificate for key, valid from from_s to to_s seconds from now,
 * signed by issuer (NULL: self-signed). */
static X509 *
tk_cert(EVP_PKEY *key, const char *cn, const char *ou, const char *o,
        X509 *issuer, EVP_PKEY *issuer_key, long from_s, long to_s, bool ca)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    X509V3_CTX v3;

    cr_assert(x && nm);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), tk_serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    tk_name(nm, "O", o);
    tk_name(nm, "OU", ou);
    tk_name(nm, "CN", cn);
    X509_set_subject_name(x, nm);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
    X509_NAME_free(nm);

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    tk_ext(x, &v3, NID_basic_constraints,
           ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    tk_ext(x, &v3, NID_key_usage,
           ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (!ca) {
        tk_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    tk_ext(x, &v3, NID_subject_key_identifier, "hash");
    cr_assert(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()));
    return x;
}

static char *
tk_bio_str(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = strndup(data, (size_t)n);

    BIO_free(bio);
    cr_assert_not_null(s);
    return s;
}

static char *
tk_cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());

    cr_assert(PEM_write_bio_X509(bio, x));
    return tk_bio_str(bio);
}

static char *
tk_key_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());

    cr_assert(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL));
    return tk_bio_str(bio);
}

/* A node certificate signed by ca, as PEM in *cert and *key. */
static void
tk_node(X509 *ca, EVP_PKEY *ca_key, const char *cn, const char *ou, long from_s,
        long to_s, char **cert, char **key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x;

    cr_assert_not_null(k);
    x = tk_cert(k, cn, ou, CLUSTER, ca, ca_key, from_s, to_s, false);
    *cert = tk_cert_pem(x);
    *key = tk_key_pem(k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void
tk_make_pems(void)
{
    const long day = 86400;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *fca_key = EVP_EC_gen("P-256");
    X509 *ca;
    X509 *fca;

    cr_assert(ca_key && fca_key);
    ca = tk_cert(ca_key, "shoal root ca", NULL, CLUSTER, NULL, NULL, -60,
                 3650 * day, true);
    fca = tk_cert(fca_key, "shoal root ca", NULL, "cluster-9", NULL, NULL, -60,
                  3650 * day, true);
    pems.ca = tk_cert_pem(ca);
    pems.foreign_ca = tk_cert_pem(fca);
    tk_node(ca, ca_key, NODE_A, ROLE, -60, 90 * day, &pems.a_cert, &pems.a_key);
    tk_node(ca, ca_key, NODE_B, ROLE, -60, 90 * day, &pems.b_cert, &pems.b_key);
    tk_node(ca, ca_key, NODE_D, ROLE, -60, 90 * day, &pems.d_cert, &pems.d_key);
    tk_node(ca, ca_key, NODE_C, ROLE, -2 * day, -day, &pems.expired_cert,
            &pems.expired_key);
    tk_node(ca, ca_key, NODE_B, NULL, -60, 90 * day, &pems.noid_cert,
            &pems.noid_key);
    tk_node(fca, fca_key, NODE_E, ROLE, -60, 90 * day, &pems.foreign_cert,
            &pems.foreign_key);
    X509_free(ca);
    X509_free(fca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(fca_key);
}

static void
tk_free_pems(void)
{
    char **all[] = {
        &pems.ca,         &pems.a_cert,       &pems.a_key,
        &pems.b_cert,     &pems.b_key,        &pems.d_cert,
        &pems.d_key,      &pems.expired_cert, &pems.expired_key,
        &pems.foreign_ca, &pems.foreign_cert, &pems.foreign_key,
        &pems.noid_cert,  &pems.noid_key,
    };

    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

/* ---- The loop and the deadline ----------------------------------------- */

static struct loop lp;
static struct loop_timer tk_deadline;
static struct loop_timer tk_poll;
static bool (*tk_pred)(void);
static bool tk_timed_out;

static void
tk_deadline_cb(struct loop *l, void *arg)
{
    (void)arg;
    tk_timed_out = true;
    loop_stop(l);
}

/* The condition is looked at every millisecond of loop time. */
static void
tk_poll_cb(struct loop *l, void *arg)
{
    (void)arg;
    if (tk_pred()) {
        loop_stop(l);
    } else {
        loop_timer_start(l, &tk_poll, 1);
    }
}

/* Drive the loop until pred() holds or ms passed; returns pred(). */
static bool
tk_run_until(bool (*pred)(void), uint32_t ms)
{
    tk_pred = pred;
    tk_timed_out = false;
    lp.now_ms = time_mono_ms();
    loop_timer_start(&lp, &tk_deadline, ms);
    loop_timer_start(&lp, &tk_poll, 1);
    if (!pred()) {
        cr_assert_eq(loop_run(&lp), 0);
    }
    loop_timer_stop(&lp, &tk_deadline);
    loop_timer_stop(&lp, &tk_poll);
    return pred();
}

static bool
tk_never(void)
{
    return false;
}

/* ---- Log lines ---------------------------------------------------------- */

static char tk_log_path[64];

/* Lines of the log holding a and, when not NULL, b. */
static int
tk_log_count(const char *a, const char *b)
{
    FILE *f = fopen(tk_log_path, "r");
    char *line = NULL;
    size_t cap = 0;
    int n = 0;

    cr_assert_not_null(f);
    while (getline(&line, &cap, f) > 0) {
        if (strstr(line, a) && (!b || strstr(line, b))) {
            n++;
        }
    }
    free(line);
    fclose(f);
    return n;
}

/* With TK_SHOW_LOG set in the environment, copy the test's log to
 * stderr: what a failing test logged is then in the runner's output. */
static void
tk_show_log(void)
{
    FILE *f;
    char buf[512];

    if (!getenv("TK_SHOW_LOG") || !(f = fopen(tk_log_path, "r"))) {
        return;
    }
    while (fgets(buf, sizeof buf, f)) {
        fputs(buf, stderr);
    }
    fclose(f);
}

/* ---- The two sides ----------------------------------------------------- */

struct side {
    struct peer_net net;
    bool inited;
    const char *refuse;        /* authorize refuses with this reason */
    bool send_on_up;           /* send a raw frame when up */
    bool close_on_first_frame; /* close the connection of frame 1 */
    bool echo;                 /* send every frame back as it came */
    int n_auth;
    int n_up;
    int n_down;
    int n_drain;
    int auth_send_rc;       /* peer_send tried inside authorize */
    struct peer_ident seen; /* given to authorize last */
    bool seen_dialer;
    bool seen_anon;  /* peer_conn_anonymous in authorize, last */
    bool up_anon;    /* peer_conn_anonymous of the connection up last */
    int n_dial_fail; /* on_dial_fail calls */
    int dial_fail_rc;
    char dial_fail_why[160];
    struct peer_conn *conn;  /* up last */
    struct peer_conn *first; /* up first, while up */
    int down_rc;
    char down_why[160];
    uint64_t send_id; /* next id to send */
    uint64_t next_id; /* next id expected */
    uint64_t n_frames;
    uint64_t n_bytes;
    int n_bad; /* out of order, or a body not as sent */
    uint8_t last_flags;
    char last_msg[64]; /* of the last status frame */
};

static struct side A;
static struct side B;

static uint8_t
tk_pat(uint64_t id, size_t i)
{
    return (uint8_t)(id * 131 + i * 7);
}

/* Send a raw frame of len pattern bytes with the side's next id. */
static int
tk_send(struct side *s, struct peer_conn *c, size_t len)
{
    uint8_t *body = malloc(len ? len : 1);
    int rc;

    cr_assert_not_null(body);
    for (size_t i = 0; i < len; i++) {
        body[i] = tk_pat(s->send_id, i);
    }
    rc = peer_send_raw(c, TK_RAW, 0, s->send_id, body, len);
    free(body);
    if (rc == 0) {
        s->send_id++;
    }
    return rc;
}

static int
tk_authorize(struct peer_conn *c, const char *node_id, const char *role,
             const char *cluster_id, const char **why, void *arg)
{
    struct side *s = arg;

    s->n_auth++;
    snprintf(s->seen.node_id, sizeof s->seen.node_id, "%s", node_id);
    snprintf(s->seen.role, sizeof s->seen.role, "%s", role);
    snprintf(s->seen.cluster_id, sizeof s->seen.cluster_id, "%s", cluster_id);
    s->seen_dialer = peer_conn_dialer(c) != NULL;
    s->seen_anon = peer_conn_anonymous(c);
    s->auth_send_rc = peer_send_raw(c, TK_RAW, 0, 99, "x", 1);
    if (s->refuse) {
        *why = s->refuse;
        return -EACCES;
    }
    return 0;
}

static void
tk_up(struct peer_conn *c, void *arg)
{
    struct side *s = arg;

    s->n_up++;
    s->conn = c;
    s->up_anon = peer_conn_anonymous(c);
    if (!s->first) {
        s->first = c;
    }
    if (s->send_on_up) {
        cr_assert_eq(tk_send(s, c, 100), 0);
    }
}

static void
tk_down(struct peer_conn *c, int rc, const char *why, void *arg)
{
    struct side *s = arg;

    s->n_down++;
    s->down_rc = rc;
    snprintf(s->down_why, sizeof s->down_why, "%s", why);
    if (s->conn == c) {
        s->conn = NULL;
    }
    if (s->first == c) {
        s->first = NULL;
    }
}

static void
tk_frame(struct peer_conn *c, const struct wire_hdr *h, const uint8_t *body,
         size_t len, void *arg)
{
    struct side *s = arg;

    if (h->id != s->next_id) {
        s->n_bad++;
    }
    s->next_id = h->id + 1;
    s->n_frames++;
    s->n_bytes += len;
    s->last_flags = h->flags;
    if (h->type == TK_RAW) {
        for (size_t i = 0; i < len; i++) {
            if (body[i] != tk_pat(h->id, i)) {
                s->n_bad++;
                break;
            }
        }
    } else if (h->type == WIRE_MSG_STATUS) {
        struct shoal_status_msg st = {0};

        cr_assert_eq(wire_decode(&wire_type_status_msg, &st, body, len), 0);
        snprintf(s->last_msg, sizeof s->last_msg, "%s",
                 st.message ? st.message : "");
        wire_free(&wire_type_status_msg, &st);
    }
    if (s->echo) {
        cr_assert_eq(peer_send_raw(c, h->type, h->flags, h->id, body, len), 0);
    }
    if (s->close_on_first_frame && s->n_frames == 1) {
        peer_conn_close(c, "test: closing on the first frame");
    }
}

static void
tk_drain(struct peer_conn *c, void *arg)
{
    struct side *s = arg;

    (void)c;
    s->n_drain++;
}

static void
tk_dial_fail(struct peer_dialer *d, int rc, const char *why, void *arg)
{
    struct side *s = arg;

    cr_expect_eq(peer_dialer_udata(d), s);
    s->n_dial_fail++;
    s->dial_fail_rc = rc;
    snprintf(s->dial_fail_why, sizeof s->dial_fail_why, "%s", why);
}

static const struct peer_ops tk_ops = {
    .authorize = tk_authorize,
    .on_frame = tk_frame,
    .on_up = tk_up,
    .on_down = tk_down,
    .on_drain = tk_drain,
    .on_dial_fail = tk_dial_fail,
};

static void
tk_side(struct side *s, const char *ca, const char *cert, const char *key,
        const struct peer_config *cfg)
{
    struct peer_tls_ctx *t;

    cr_assert_eq(peer_tls_ctx_new(ca, cert, key, &t), 0);
    cr_assert_eq(peer_net_init(&s->net, &lp, t, cfg, &tk_ops, s), 0);
    s->inited = true;
    s->send_id = 1;
    s->next_id = 1;
}

static uint16_t tk_port; /* of the last listener */

static uint16_t
tk_listen(struct side *s)
{
    struct peer_listener *pl;

    cr_assert_eq(peer_listen(&s->net, "127.0.0.1:0", &pl), 0);
    tk_port = peer_listener_port(pl);
    cr_assert_neq(tk_port, 0);
    return tk_port;
}

static struct peer_dialer *
tk_dial(struct side *s, uint16_t port)
{
    struct peer_dialer *d;
    char addr[32];

    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    cr_assert_eq(peer_dial(&s->net, addr, s, &d), 0);
    return d;
}

static struct peer_stats
tk_stats(struct side *s)
{
    struct peer_stats st;

    peer_net_stats(&s->net, &st);
    return st;
}

/* A and B with their own certificates, A listening, B dialing A. */
static struct peer_dialer *
tk_pair(const struct peer_config *cfg)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, cfg);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, cfg);
    return tk_dial(&B, tk_listen(&A));
}

static bool
tk_both_up(void)
{
    return A.conn && B.conn;
}

/* ---- A hostile client --------------------------------------------------- */

/* Plain TCP, or TLS with a context of the test's choosing; sends its
 * bytes once connected (through TLS, or raw on the socket after the
 * handshake when raw_after), then reads until the server closes. */
struct tclient {
    struct loop_io io;
    SSL_CTX *ctx;
    SSL *ssl;
    bool raw_after;
    bool hs_done;
    bool hs_failed;
    bool sent;
    bool eof;
    struct wire_buf out;
    struct wire_buf in;
};

static struct tclient tc;

/* The server closed: close our side too, as a peer would. */
static void
tc_finish(void)
{
    tc.eof = true;
    loop_io_stop(&lp, &tc.io);
    shutdown(tc.io.fd, SHUT_RDWR);
}

static void
tc_send(void)
{
    ssize_t n;

    if (tc.out.len == 0) {
        tc.sent = true;
        return;
    }
    if (tc.ssl && !tc.raw_after) {
        n = SSL_write(tc.ssl, tc.out.data, (int)tc.out.len);
    } else {
        n = send(tc.io.fd, tc.out.data, tc.out.len, MSG_NOSIGNAL);
    }
    cr_assert_eq(n, (ssize_t)tc.out.len, "a test payload is sent at once");
    tc.sent = true;
}

static void
tc_read(void)
{
    uint8_t buf[4096];

    for (;;) {
        int n;

        if (tc.ssl && !tc.raw_after) {
            n = SSL_read(tc.ssl, buf, sizeof buf);
            if (n <= 0) {
                int e = SSL_get_error(tc.ssl, n);

                ERR_clear_error();
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    tc_finish();
                }
                return;
            }
        } else {
            n = (int)recv(tc.io.fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EAGAIN) {
                return;
            }
            if (n <= 0) {
                tc_finish();
                return;
            }
        }
        cr_assert_eq(wire_buf_append(&tc.in, buf, (size_t)n), 0);
    }
}

static void
tc_io_cb(struct loop *l, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    if (tc.ssl && !tc.hs_done) {
        int r = SSL_connect(tc.ssl);

        if (r != 1) {
            int e = SSL_get_error(tc.ssl, r);

            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ) {
                loop_io_set(l, &tc.io, LOOP_READ);
            } else if (e == SSL_ERROR_WANT_WRITE) {
                loop_io_set(l, &tc.io, LOOP_READ | LOOP_WRITE);
            } else {
                tc.hs_failed = true;
                tc_finish();
            }
            return;
        }
        tc.hs_done = true;
    }
    if (!tc.sent) {
        tc_send();
        loop_io_set(l, &tc.io, LOOP_READ);
    }
    tc_read();
}

/* A client context: the given protocol range, B's certificate. */
static SSL_CTX *
tc_ctx(int min_version, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *bio;
    X509 *x;
    EVP_PKEY *k;

    cr_assert_not_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    if (min_version == 0) {
        return ctx; /* no certificate */
    }
    bio = BIO_new_mem_buf(pems.b_cert, -1);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = BIO_new_mem_buf(pems.b_key, -1);
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    cr_assert(x && k);
    cr_assert(SSL_CTX_use_certificate(ctx, x));
    cr_assert(SSL_CTX_use_PrivateKey(ctx, k));
    X509_free(x);
    EVP_PKEY_free(k);
    return ctx;
}

static void
tc_start(uint16_t port, SSL_CTX *ctx, const void *payload, size_t len,
         bool raw_after)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc;

    cr_assert_geq(fd, 0);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    cr_assert(rc == 0 || errno == EINPROGRESS);
    tc.ctx = ctx;
    tc.raw_after = raw_after;
    if (ctx) {
        tc.ssl = SSL_new(ctx);
        cr_assert_not_null(tc.ssl);
        SSL_set_fd(tc.ssl, fd);
        SSL_set_connect_state(tc.ssl);
    }
    if (len > 0) {
        cr_assert_eq(wire_buf_append(&tc.out, payload, len), 0);
    }
    tc.io = (struct loop_io){
        .fd = fd, .events = LOOP_WRITE, .cb = tc_io_cb, .arg = NULL};
    cr_assert_eq(loop_io_start(&lp, &tc.io), 0);
}

/* The number of whole frames the client has read so far, and the
 * header of the one at index want (when there are that many). */
static size_t
tc_frames(size_t want, struct wire_hdr *h_out, const uint8_t **body)
{
    size_t off = 0;
    size_t n = 0;
    struct wire_hdr h;

    while (wire_hdr_decode(&h, tc.in.data + off, tc.in.len - off) > 0 &&
           tc.in.len - off >= (size_t)h.len + 4) {
        if (n == want) {
            *h_out = h;
            *body = tc.in.data + off + WIRE_HDR_BYTES;
        }
        off += (size_t)h.len + 4;
        n++;
    }
    return n;
}

static void
tc_fini(void)
{
    if (tc.io.fd > 0) {
        loop_io_stop(&lp, &tc.io);
        close(tc.io.fd);
    }
    SSL_free(tc.ssl);
    SSL_CTX_free(tc.ctx);
    wire_buf_fini(&tc.out);
    wire_buf_fini(&tc.in);
    memset(&tc, 0, sizeof tc);
}

/* ---- Fixture ----------------------------------------------------------- */

static void
tk_setup(void)
{
    int fd;

    /* The test client's OpenSSL socket BIO writes with write(2). */
    signal(SIGPIPE, SIG_IGN);
    tk_make_pems();
    cr_assert_eq(loop_init(&lp), 0);
    tk_deadline = (struct loop_timer){.cb = tk_deadline_cb};
    tk_poll = (struct loop_timer){.cb = tk_poll_cb};
    snprintf(tk_log_path, sizeof tk_log_path, "/tmp/shoal-peer-log-XXXXXX");
    fd = mkstemp(tk_log_path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(log_open_file(tk_log_path), 0);
    log_set_level(LOG_INFO);
}

static void
tk_teardown(void)
{
    if (A.inited) {
        peer_net_fini(&A.net);
    }
    if (B.inited) {
        peer_net_fini(&B.net);
    }
    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    tc_fini();
    loop_timer_stop(&lp, &tk_deadline);
    loop_timer_stop(&lp, &tk_poll);
    loop_fini(&lp);
    log_open_file(NULL);
    tk_show_log();
    unlink(tk_log_path);
    tk_free_pems();
}

/* Conditions the tests wait for. */

static bool
tk_a_refused(void)
{
    return tk_stats(&A).refused >= 1;
}

static struct peer_dialer *tk_d; /* the dialer a test watches */

static bool
tk_a_refused_b_failed(void)
{
    struct peer_dialer_state st;

    peer_dialer_state(tk_d, &st);
    return tk_stats(&A).refused >= 1 && st.n_fail >= 1;
}

static bool
tk_b_failed_thrice(void)
{
    struct peer_dialer_state st;

    peer_dialer_state(tk_d, &st);
    return st.n_fail >= 3;
}

static bool
tk_client_done_a_refused(void)
{
    return tc.eof && tk_stats(&A).refused >= 1;
}

/* ---- peer_tls ----------------------------------------------------------- */

TestSuite(peer_tls, .init = tk_setup, .fini = tk_teardown, .timeout = 30);

/* Two nodes of one CA come up on both sides, each seeing the other's
 * identity from its certificate, and nothing is logged above notice. */
Test(peer_tls, handshake_brings_both_sides_up_with_identities)
{
    struct peer_dialer *d = tk_pair(NULL);

    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    cr_expect_str_eq(A.seen.node_id, NODE_B);
    cr_expect_str_eq(A.seen.role, ROLE);
    cr_expect_str_eq(A.seen.cluster_id, CLUSTER);
    cr_expect_str_eq(B.seen.node_id, NODE_A);
    cr_expect_str_eq(peer_conn_ident(A.conn)->node_id, NODE_B);
    cr_expect_str_eq(peer_conn_ident(B.conn)->node_id, NODE_A);
    cr_expect(B.seen_dialer);
    cr_expect(!A.seen_dialer);
    cr_expect_eq(peer_conn_dialer(B.conn), d);
    cr_expect_eq(peer_conn_udata(B.conn), &B);
    cr_expect_null(peer_conn_dialer(A.conn));
    cr_expect_eq(A.auth_send_rc, ERR_BADSTATE, "no frames before up");
    cr_expect_eq(tk_log_count("peer up", "dir=in"), 1);
    cr_expect_eq(tk_log_count("peer up", "dir=out"), 1);
    cr_expect_eq(tk_log_count(" warn ", NULL), 0);
}

/* A client whose certificate another CA signed is refused by the
 * listener during the handshake, logged once per connection with the
 * verification failure, and never reaches authorize. */
Test(peer_tls, refuses_certificate_of_foreign_ca)
{
    uint64_t refused;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.foreign_cert, pems.foreign_key, NULL);
    tk_d = tk_dial(&B, tk_listen(&A));

    cr_assert(tk_run_until(tk_a_refused, TK_WAIT_MS));
    peer_dialer_stop(tk_d);

    refused = tk_stats(&A).refused;
    cr_expect_eq(tk_log_count("refused peer", "dir=in"), (int)refused);
    cr_expect_eq(
        tk_log_count("refused peer", "unable to get local issuer certificate"),
        (int)refused);
    cr_expect_eq(A.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
}

/* The dialer refuses a listener whose certificate another CA signed,
 * and logs it once however often it tries again. */
Test(peer_tls, dialer_refuses_listener_of_foreign_ca)
{
    tk_side(&A, pems.ca, pems.foreign_cert, pems.foreign_key, NULL);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    tk_d = tk_dial(&B, tk_listen(&A));

    cr_assert(tk_run_until(tk_b_failed_thrice, TK_WAIT_MS));

    cr_expect_eq(
        tk_log_count("cannot connect to peer", "certificate verify failed"), 1);
    cr_expect_eq(tk_log_count("cannot connect to peer", NULL), 1);
    cr_expect_eq(B.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
}

/* An expired certificate from the cluster's own CA is refused. */
Test(peer_tls, refuses_expired_certificate)
{
    uint64_t refused;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.expired_cert, pems.expired_key, NULL);
    tk_d = tk_dial(&B, tk_listen(&A));

    cr_assert(tk_run_until(tk_a_refused, TK_WAIT_MS));
    peer_dialer_stop(tk_d);

    refused = tk_stats(&A).refused;
    cr_expect_eq(tk_log_count("refused peer", "certificate has expired"),
                 (int)refused);
    cr_expect_eq(tk_log_count("refused peer", NULL), (int)refused);
    cr_expect_eq(A.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
}

/* Plain TCP bytes on the peer port are refused and logged once; the
 * client sees its connection closed. */
Test(peer_tls, refuses_plain_tcp_client)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tc_start(tk_listen(&A), NULL, junk, sizeof junk - 1, false);

    cr_assert(tk_run_until(tk_client_done_a_refused, TK_WAIT_MS));

    cr_expect_eq(tk_stats(&A).refused, 1);
    cr_expect_eq(tk_log_count("refused peer", "tls handshake"), 1);
    cr_expect_eq(tk_log_count("peer", NULL), 2, "listening, refused");
    cr_expect_eq(A.n_auth, 0);
}

/* A TLS 1.2 client with a valid certificate is refused: 1.3 only. */
Test(peer_tls, refuses_tls12_client)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tc_start(tk_listen(&A), tc_ctx(TLS1_2_VERSION, TLS1_2_VERSION), NULL, 0,
             false);

    cr_assert(tk_run_until(tk_client_done_a_refused, TK_WAIT_MS));

    cr_expect(tc.hs_failed);
    cr_expect_eq(tk_stats(&A).refused, 1);
    cr_expect_eq(tk_log_count("refused peer", "unsupported protocol"), 1);
    cr_expect_eq(A.n_auth, 0);
}

/* A TLS 1.3 client that presents no certificate is refused. */
Test(peer_tls, refuses_client_without_certificate)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tc_start(tk_listen(&A), tc_ctx(0, TLS1_3_VERSION), NULL, 0, false);

    cr_assert(tk_run_until(tk_client_done_a_refused, TK_WAIT_MS));

    cr_expect_eq(tk_stats(&A).refused, 1);
    cr_expect_eq(
        tk_log_count("refused peer", "peer did not return a certificate"), 1);
    cr_expect_eq(A.n_auth, 0);
}

/* Bytes that are not TLS records, sent after a valid handshake, end the
 * connection with one log line, and the peer never comes up. */
Test(peer_tls, refuses_garbage_after_handshake)
{
    uint8_t junk[64];

    memset(junk, 0xa5, sizeof junk);
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tc_start(tk_listen(&A), tc_ctx(TLS1_3_VERSION, TLS1_3_VERSION), junk,
             sizeof junk, true);

    cr_assert(tk_run_until(tk_client_done_a_refused, TK_WAIT_MS));

    cr_expect(tc.hs_done);
    cr_expect_eq(A.n_auth, 1, "the handshake itself was valid");
    cr_expect_eq(A.n_up, 0);
    cr_expect_eq(tk_stats(&A).refused, 1);
    cr_expect_eq(tk_log_count("refused peer", "read: "), 1);
}

/* A peer the owner refuses (a removed node) is closed, logged once by
 * the listener with the owner's reason, and the dialer is told that
 * reason and logs it once. */
Test(peer_tls, authorize_refusal_is_logged_once_and_told_to_the_dialer)
{
    uint64_t refused;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    A.refuse = "node removed";
    tk_d = tk_dial(&B, tk_listen(&A));

    cr_assert(tk_run_until(tk_a_refused_b_failed, TK_WAIT_MS));
    peer_dialer_stop(tk_d);

    refused = tk_stats(&A).refused;
    cr_expect_eq(tk_log_count("refused peer", "reason=\"node removed\""),
                 (int)refused);
    cr_expect_eq(tk_log_count("cannot connect to peer",
                              "refused by the peer: node removed"),
                 1);
    cr_expect_eq(A.n_up + B.n_up, 0);
    cr_expect_str_eq(A.seen.node_id, NODE_B);
}

/* The dialer's owner may refuse the node it reached; the listener is
 * told why. */
Test(peer_tls, dialer_authorize_refusal_is_told_to_the_listener)
{
    uint64_t refused;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    B.refuse = "not the node expected";
    tk_d = tk_dial(&B, tk_listen(&A));

    cr_assert(tk_run_until(tk_a_refused_b_failed, TK_WAIT_MS));
    peer_dialer_stop(tk_d);

    refused = tk_stats(&A).refused;
    cr_expect_eq(tk_log_count("refused peer",
                              "refused by the peer: not the node expected"),
                 (int)refused);
    cr_expect_eq(tk_log_count("cannot connect to peer",
                              "reason=\"not the node expected\""),
                 1);
    cr_expect_eq(A.n_up + B.n_up, 0);
}

/* A client that connects and says nothing is closed at the handshake
 * deadline rather than holding a slot forever. */
Test(peer_tls, silent_client_is_closed_at_the_handshake_deadline)
{
    struct peer_config cfg = {.handshake_ms = 100};

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, &cfg);
    tc_start(tk_listen(&A), NULL, NULL, 0, false);

    cr_assert(tk_run_until(tk_client_done_a_refused, TK_WAIT_MS));

    cr_expect_eq(tk_log_count("refused peer", "handshake timed out"), 1);
}

/* Broken TLS material is refused with a code, and no key material
 * reaches the log. */
Test(peer_tls, ctx_new_rejects_bad_material)
{
    struct peer_tls_ctx *t = NULL;

    cr_expect_eq(peer_tls_ctx_new("not a pem", pems.a_cert, pems.a_key, &t),
                 ERR_TLS);
    cr_expect_eq(peer_tls_ctx_new(pems.ca, "junk", pems.a_key, &t), ERR_TLS);
    cr_expect_eq(peer_tls_ctx_new(pems.ca, pems.a_cert, pems.b_key, &t),
                 ERR_TLS, "a key of another certificate");
    cr_expect_eq(peer_tls_ctx_new(pems.ca, pems.noid_cert, pems.noid_key, &t),
                 -EINVAL, "a certificate without a role");
    cr_expect_null(t);

    cr_assert_eq(peer_tls_ctx_new(pems.ca, pems.a_cert, pems.a_key, &t), 0);
    cr_expect_str_eq(peer_tls_ctx_ident(t)->node_id, NODE_A);
    cr_expect_gt(peer_tls_ctx_not_after(t), (int64_t)time(NULL) + 89 * 86400);
    peer_tls_ctx_free(t);
    cr_expect_eq(tk_log_count("BEGIN", NULL), 0);
    cr_expect_eq(tk_log_count("cannot load tls material", NULL), 3);
}

static bool
tk_a_two_up(void)
{
    return A.n_up >= 2 && B.n_up >= 2;
}

static bool
tk_b_got_frame(void)
{
    return B.n_frames >= 1;
}

/* A renewed certificate is used for connections made after the swap;
 * the connection made before stays up and usable. */
Test(peer_tls, new_context_applies_to_new_connections)
{
    struct peer_tls_ctx *t;
    struct peer_conn *old_a;

    tk_pair(NULL);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));
    old_a = A.conn;

    cr_assert_eq(peer_tls_ctx_new(pems.ca, pems.d_cert, pems.d_key, &t), 0);
    peer_net_set_tls(&B.net, t);
    tk_dial(&B, tk_port);
    cr_assert(tk_run_until(tk_a_two_up, TK_WAIT_MS));
    cr_assert_eq(tk_send(&A, old_a, 10), 0);
    cr_assert(tk_run_until(tk_b_got_frame, TK_WAIT_MS));

    cr_expect_str_eq(A.seen.node_id, NODE_D);
    cr_expect_str_eq(peer_conn_ident(old_a)->node_id, NODE_B);
    cr_expect_eq(B.n_bad, 0);
    cr_expect_eq(A.n_down, 0);
}

/* ---- peer_frames -------------------------------------------------------- */

TestSuite(peer_frames, .init = tk_setup, .fini = tk_teardown, .timeout = 30);

static uint64_t tk_want_frames;

static bool
tk_both_got_frames(void)
{
    return A.n_frames >= tk_want_frames && B.n_frames >= tk_want_frames;
}

/* A schema frame one way and a raw frame the other arrive whole, with
 * their type, flags and id. */
Test(peer_frames, exchange_both_ways)
{
    struct shoal_status_msg st = {.code = 7, .message = "ping from b"};

    tk_pair(NULL);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    cr_assert_eq(peer_send(B.conn, WIRE_MSG_STATUS, WIRE_F_MORE, 1,
                           &wire_type_status_msg, &st),
                 0);
    cr_assert_eq(tk_send(&A, A.conn, 100), 0);
    tk_want_frames = 1;
    cr_assert(tk_run_until(tk_both_got_frames, TK_WAIT_MS));

    cr_expect_str_eq(A.last_msg, "ping from b");
    cr_expect_eq(A.last_flags, WIRE_F_MORE);
    cr_expect_eq(B.n_bytes, 100);
    cr_expect_eq(A.n_bad + B.n_bad, 0);
}

/* 1 MiB frames, four each way at once, arrive intact and in order. */
Test(peer_frames, large_frames_arrive_intact_in_order)
{
    tk_pair(NULL);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    for (int i = 0; i < 4; i++) {
        cr_assert_eq(tk_send(&A, A.conn, MIB), 0);
        cr_assert_eq(tk_send(&B, B.conn, MIB), 0);
    }
    tk_want_frames = 4;
    cr_assert(tk_run_until(tk_both_got_frames, TK_WAIT_MS));

    cr_expect_eq(A.n_bytes, 4 * MIB);
    cr_expect_eq(B.n_bytes, 4 * MIB);
    cr_expect_eq(A.n_bad + B.n_bad, 0);
    cr_expect_eq(peer_conn_queued(A.conn), 0);
}

/* 10,000 small frames pipelined each way in one turn arrive intact and
 * in order. */
Test(peer_frames, many_small_pipelined_frames_arrive_in_order)
{
    uint64_t bytes = 0;

    tk_pair(NULL);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    for (int i = 0; i < 10000; i++) {
        cr_assert_eq(tk_send(&A, A.conn, (size_t)(i % 61)), 0);
        cr_assert_eq(tk_send(&B, B.conn, (size_t)(i % 61)), 0);
        bytes += (uint64_t)(i % 61);
    }
    tk_want_frames = 10000;
    cr_assert(tk_run_until(tk_both_got_frames, TK_WAIT_MS));

    cr_expect_eq(A.n_frames, 10000);
    cr_expect_eq(B.n_bytes, bytes);
    cr_expect_eq(A.n_bad + B.n_bad, 0);
}

static bool
tk_b_drained(void)
{
    return B.n_drain >= 1;
}

static bool
tk_a_got_four(void)
{
    return A.n_frames >= 4;
}

/* A send that would take the queue over its bound returns ERR_AGAIN and
 * queues nothing; a frame over the frame limit returns ERR_TOOBIG;
 * on_drain says when to go on, and the frames arrive in order. */
Test(peer_frames, send_over_the_bound_returns_again_then_drains)
{
    struct peer_config cfg = {.out_max_bytes = WIRE_MAX_FRAME};
    static uint8_t huge[WIRE_MAX_BODY + 1];

    tk_pair(&cfg);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tk_send(&B, B.conn, MIB), 0);
    }
    cr_expect_eq(tk_send(&B, B.conn, MIB), ERR_AGAIN);
    cr_expect_eq(peer_conn_queued(B.conn), 3 * (MIB + WIRE_HDR_BYTES));
    cr_expect_eq(peer_send_raw(B.conn, TK_RAW, 0, 9, huge, sizeof huge),
                 ERR_TOOBIG);
    cr_assert(tk_run_until(tk_b_drained, TK_WAIT_MS));
    cr_expect_eq(tk_send(&B, B.conn, MIB), 0);
    cr_assert(tk_run_until(tk_a_got_four, TK_WAIT_MS));

    cr_expect_eq(A.n_bad, 0);
    cr_expect_eq(A.n_bytes, 4 * MIB);
}

static bool
tk_a_down_client_done(void)
{
    return A.n_down >= 1 && tc.eof;
}

/* A frame header with a length over the limit, after a valid hello,
 * closes the connection: the sender gets a status saying why, the
 * owner's on_down gets ERR_PROTO, and one line is logged. */
Test(peer_frames, bad_header_closes_the_connection)
{
    struct shoal_hello hello = {.proto_min = 1, .proto_max = 1};
    struct wire_buf out = {0};
    static const uint8_t bad[WIRE_HDR_BYTES] = {
        0xff, 0xff, 0xff, 0xf0, 1, 0, 0x70, 0x01, 0, 0, 0, 0, 0, 0, 0, 1,
    };
    struct wire_hdr h;
    size_t first;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    cr_assert_eq(
        wire_frame_append(&out, WIRE_MSG_HELLO, 0, 0, &wire_type_hello, &hello),
        0);
    cr_assert_eq(wire_buf_append(&out, bad, sizeof bad), 0);
    tc_start(tk_listen(&A), tc_ctx(TLS1_3_VERSION, TLS1_3_VERSION), out.data,
             out.len, false);
    wire_buf_fini(&out);

    cr_assert(tk_run_until(tk_a_down_client_done, TK_WAIT_MS));

    cr_expect_eq(A.n_up, 1);
    cr_expect_eq(A.down_rc, ERR_PROTO);
    cr_expect_str_eq(A.down_why, "frame length out of bounds");
    cr_expect_eq(tk_log_count("peer down", "frame length out of bounds"), 1);
    cr_expect_eq(tk_log_count(" warn ", NULL), 1);
    /* What the sender read: the hello reply, then the status. */
    cr_assert_eq(wire_hdr_decode(&h, tc.in.data, tc.in.len), WIRE_HDR_BYTES);
    cr_expect_eq(h.type, WIRE_MSG_HELLO | WIRE_REPLY);
    first = (size_t)h.len + 4;
    cr_assert_eq(wire_hdr_decode(&h, tc.in.data + first, tc.in.len - first),
                 WIRE_HDR_BYTES);
    cr_expect_eq(h.type, WIRE_MSG_STATUS);
}

static bool
tk_both_down(void)
{
    return A.n_down >= 1 && B.n_down >= 1;
}

/* After the owner closes a connection, sends return ERR_CLOSED, and
 * on_down reports the owner's reason on one side and the peer's close
 * on the other. */
Test(peer_frames, send_after_close_returns_closed)
{
    struct peer_dialer *d = tk_pair(NULL);
    struct peer_conn *c;

    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));
    c = B.conn;
    peer_conn_close(c, "test close");

    cr_expect_eq(tk_send(&B, c, 10), ERR_CLOSED);
    cr_assert(tk_run_until(tk_both_down, TK_WAIT_MS));
    peer_dialer_stop(d);

    cr_expect_eq(B.down_rc, 0);
    cr_expect_str_eq(B.down_why, "test close");
    cr_expect_eq(A.down_rc, ERR_CLOSED);
    cr_expect_eq(tk_log_count("peer down", "dir=in"), 1);
}

/* Socket writes that would block (forced in test builds) are retried
 * with the same bytes: large and small frames still arrive intact and
 * in order both ways. */
Test(peer_frames, blocked_writes_are_retried_with_the_same_bytes)
{
    tk_pair(NULL);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    peer_test_block_writes(200);
    for (int i = 0; i < 200; i++) {
        size_t len = i % 50 == 0 ? MIB / 4 : (size_t)(i % 97);

        cr_assert_eq(tk_send(&A, A.conn, len), 0);
        cr_assert_eq(tk_send(&B, B.conn, len), 0);
    }
    tk_want_frames = 200;
    cr_assert(tk_run_until(tk_both_got_frames, TK_WAIT_MS));

    cr_expect_eq(A.n_bad + B.n_bad, 0);
    cr_expect_eq(A.n_down + B.n_down, 0);
}

static bool
tc_got_echo(void)
{
    struct wire_hdr h;
    const uint8_t *body;

    return tc_frames(1, &h, &body) >= 2 || tc.eof;
}

static bool
tc_got_reply(void)
{
    struct wire_hdr h;
    const uint8_t *body;

    return tc_frames(0, &h, &body) >= 1 || tc.eof;
}

/* A TLS 1.3 key update the peer requests mid-stream, answered while
 * socket writes would block, leaves the link working both ways. */
Test(peer_frames, key_update_requested_by_the_peer_keeps_frames_flowing)
{
    struct shoal_hello hello = {.proto_min = 1, .proto_max = 1};
    struct wire_buf out = {0};
    struct wire_hdr h;
    const uint8_t *body;
    uint8_t frame[WIRE_HDR_BYTES + 64];
    static const uint8_t raw_hdr[WIRE_HDR_BYTES] = {
        0, 0, 0, 12 + 64, 1, 0, 0x70, 0x01, 0, 0, 0, 0, 0, 0, 0, 1,
    };

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    A.echo = true;
    cr_assert_eq(
        wire_frame_append(&out, WIRE_MSG_HELLO, 0, 0, &wire_type_hello, &hello),
        0);
    tc_start(tk_listen(&A), tc_ctx(TLS1_3_VERSION, TLS1_3_VERSION), out.data,
             out.len, false);
    wire_buf_fini(&out);
    cr_assert(tk_run_until(tc_got_reply, TK_WAIT_MS));
    cr_assert(!tc.eof);

    /* A frame of id 1 with the tests' pattern, after a key update that
     * asks A to update its own keys too. */
    memcpy(frame, raw_hdr, WIRE_HDR_BYTES);
    for (size_t i = 0; i < 64; i++) {
        frame[WIRE_HDR_BYTES + i] = tk_pat(1, i);
    }
    cr_assert_eq(SSL_key_update(tc.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    cr_assert_eq(SSL_write(tc.ssl, frame, sizeof frame), (int)sizeof frame);
    peer_test_block_writes(3);
    cr_assert(tk_run_until(tc_got_echo, TK_WAIT_MS));

    cr_assert(!tc.eof);
    cr_assert_eq(tc_frames(1, &h, &body), 2);
    cr_expect_eq(h.type, TK_RAW);
    cr_expect_eq(h.id, 1);
    cr_expect_eq(memcmp(body, frame + WIRE_HDR_BYTES, 64), 0);
    cr_expect_eq(A.n_bad, 0);
    cr_expect_eq(tk_log_count(" warn ", NULL), 0);
}

/* ---- peer_dial ---------------------------------------------------------- */

TestSuite(peer_dial, .init = tk_setup, .fini = tk_teardown, .timeout = 30);

static bool
tk_b_up_twice(void)
{
    return B.n_up >= 2 && A.n_frames >= 2;
}

/* When the listener's side closes the connection, the dialer dials
 * again after the first back-off step and comes up again. */
Test(peer_dial, redials_after_the_listener_side_closes)
{
    struct peer_dialer_state st;
    struct peer_dialer *d;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    A.close_on_first_frame = true;
    B.send_on_up = true;
    d = tk_dial(&B, tk_listen(&A));

    cr_assert(tk_run_until(tk_b_up_twice, TK_WAIT_MS));
    peer_dialer_state(d, &st);

    cr_expect_eq(B.n_down, 1);
    cr_expect_eq(B.down_rc, ERR_CLOSED);
    cr_expect_eq(A.n_down, 1);
    cr_expect_eq(st.n_up, 2);
    cr_expect_eq(st.n_fail, 0);
    cr_expect_eq(st.delay_ms, PEER_BACKOFF_FIRST_MS);
    cr_expect(st.up);
    cr_expect_eq(tk_stats(&A).accepted, 2);
    cr_expect_eq(A.n_bad, 0);
}

#define TK_N_DELAYS 7
static uint32_t tk_delays[TK_N_DELAYS];
static uint32_t tk_n_seen;

/* Record the delay chosen after each failure. */
static bool
tk_record_delays(void)
{
    struct peer_dialer_state st;

    peer_dialer_state(tk_d, &st);
    while (tk_n_seen < st.n_fail && tk_n_seen < TK_N_DELAYS) {
        cr_assert_eq(st.n_fail, tk_n_seen + 1, "one failure per poll");
        tk_delays[tk_n_seen++] = st.delay_ms;
    }
    return tk_n_seen >= TK_N_DELAYS;
}

/* The back-off starts at 50 ms, doubles per failure and stays at 1 s;
 * the repeated failure is logged once. */
Test(peer_dial, backoff_doubles_from_50ms_and_caps_at_1s)
{
    static const uint32_t want[TK_N_DELAYS] = {50,  100,  200, 400,
                                               800, 1000, 1000};
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_expect_eq(peer_backoff_ms(0), 50);
    cr_expect_eq(peer_backoff_ms(4), 800);
    cr_expect_eq(peer_backoff_ms(5), 1000);
    cr_expect_eq(peer_backoff_ms(31), 1000);
    cr_expect_eq(peer_backoff_ms(UINT32_MAX), 1000);

    /* A bound port that does not listen refuses connections, and no
     * one else can take it meanwhile. */
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    tk_d = tk_dial(&B, ntohs(sa.sin_port));
    cr_assert(tk_run_until(tk_record_delays, 10000));
    close(fd);

    cr_expect_arr_eq(tk_delays, want, sizeof want);
    cr_expect_eq(tk_log_count("cannot connect to peer", "refused"), 1);
}

/* Stopping a dialer closes its connection (the listener sees the peer
 * go) and no new connection is made afterwards. */
Test(peer_dial, stop_closes_and_dials_no_more)
{
    struct peer_dialer *d = tk_pair(NULL);

    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));
    peer_dialer_stop(d);
    cr_assert(tk_run_until(tk_both_down, TK_WAIT_MS));
    tk_run_until(tk_never, 3 * PEER_BACKOFF_FIRST_MS);

    cr_expect_eq(tk_stats(&A).accepted, 1);
    cr_expect_eq(tk_stats(&B).dialed, 1);
    cr_expect_eq(A.down_rc, ERR_CLOSED);
}

/* Addresses must be numeric with a port; nothing is looked up. */
Test(peer_dial, rejects_malformed_addresses)
{
    static const char *const bad[] = {
        "localhost:7000", "127.0.0.1",       "127.0.0.1:",
        "127.0.0.1:0",    "127.0.0.1:99999", "[::1:7000",
        "::1:7000",       ":7000",           "1.2.3.4.5:1",
    };
    struct peer_dialer *d;
    struct peer_listener *pl;

    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        cr_expect_eq(peer_dial(&B.net, bad[i], NULL, &d), -EINVAL, "%s",
                     bad[i]);
    }
    cr_expect_eq(peer_listen(&B.net, "localhost:0", &pl), -EINVAL);
    cr_expect_eq(peer_dial(&B.net, "[::1]:7000", NULL, &d), 0);
    peer_dialer_stop(d);
}

/* ---- peer_join ---------------------------------------------------------- */

TestSuite(peer_join, .init = tk_setup, .fini = tk_teardown, .timeout = 30);

/* What the last CA fetch reported. */
static struct {
    int n;
    int rc;
    uint8_t der[4096];
    size_t len;
    char why[160];
} tk_fetch;

static void
tk_fetch_cb(int rc, const uint8_t *ca_der, size_t len, const char *why,
            void *arg)
{
    cr_expect_eq(arg, &tk_fetch);
    tk_fetch.n++;
    tk_fetch.rc = rc;
    tk_fetch.len = 0;
    if (rc == 0) {
        cr_assert_not_null(ca_der);
        cr_assert_leq(len, sizeof tk_fetch.der);
        memcpy(tk_fetch.der, ca_der, len);
        tk_fetch.len = len;
    } else {
        cr_expect_null(ca_der);
    }
    snprintf(tk_fetch.why, sizeof tk_fetch.why, "%s", why);
}

/* A side with no certificate yet, as a joining node. */
static void
tk_side_bare(struct side *s)
{
    cr_assert_eq(peer_net_init(&s->net, &lp, NULL, NULL, &tk_ops, s), 0);
    s->inited = true;
    s->send_id = 1;
    s->next_id = 1;
}

static uint16_t
tk_listen_anon(struct side *s)
{
    struct peer_listener *pl;

    cr_assert_eq(
        peer_listen_flags(&s->net, "127.0.0.1:0", PEER_LISTEN_ANON, &pl), 0);
    return peer_listener_port(pl);
}

/* The DER of the first certificate of pem, in *der (free it). */
static size_t
tk_der(const char *pem, uint8_t **der)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    int len;

    cr_assert_not_null(x);
    *der = NULL;
    len = i2d_X509(x, der);
    cr_assert_gt(len, 0);
    X509_free(x);
    BIO_free(bio);
    return (size_t)len;
}

/* B dials A with no certificate, trusting the CA of ca_pem. */
static void
tk_dial_anon(uint16_t port, const char *ca_pem)
{
    struct peer_dialer *d;
    uint8_t *der;
    size_t len = tk_der(ca_pem, &der);
    char addr[32];

    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    cr_assert_eq(peer_dial_anon(&B.net, addr, der, len, &B, &d), 0);
    OPENSSL_free(der);
}

static void
tk_fetch_ca(uint16_t port)
{
    struct peer_dialer *d;
    char addr[32];

    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    cr_assert_eq(
        peer_fetch_ca_unverified(&B.net, addr, tk_fetch_cb, &tk_fetch, &d), 0);
}

static bool
tk_b_dial_failed(void)
{
    return B.n_dial_fail > 0;
}

static bool
tk_fetched(void)
{
    return tk_fetch.n > 0;
}

static bool
tk_frames_both_ways(void)
{
    return A.n_frames >= 1 && B.n_frames >= 1;
}

/* A client without a certificate comes up on an anonymous-ok listener,
 * which sees it as anonymous with empty identity strings, while the
 * client verified the listener's identity. */
Test(peer_join, anonymous_client_reaches_anon_listener)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);

    tk_dial_anon(tk_listen_anon(&A), pems.ca);
    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    cr_expect_eq(A.n_auth, 1);
    cr_expect(A.seen_anon);
    cr_expect(A.up_anon);
    cr_expect(peer_conn_anonymous(A.conn));
    cr_expect_str_eq(A.seen.node_id, "");
    cr_expect_str_eq(A.seen.role, "");
    cr_expect_str_eq(A.seen.cluster_id, "");
    cr_expect_str_eq(peer_conn_ident(A.conn)->node_id, "");
    cr_expect(!B.seen_anon);
    cr_expect(!peer_conn_anonymous(B.conn));
    cr_expect_str_eq(B.seen.node_id, NODE_A);
    cr_expect_eq(peer_conn_udata(B.conn), &B);
    cr_expect_eq(tk_log_count("peer up", "node=(anonymous)"), 1);
    cr_expect_eq(B.n_dial_fail, 0);
}

/* The same client is refused by a listener without the option, which
 * never calls authorize, and the one-shot dial reports its failure once
 * without trying again. */
Test(peer_join, anonymous_client_refused_by_listener_without_option)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);

    tk_dial_anon(tk_listen(&A), pems.ca);
    cr_assert(tk_run_until(tk_b_dial_failed, TK_WAIT_MS));
    tk_run_until(tk_never, 3 * PEER_BACKOFF_FIRST_MS);

    cr_expect_eq(A.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
    cr_expect_eq(tk_stats(&A).refused, 1);
    cr_expect_eq(
        tk_log_count("refused peer", "peer did not return a certificate"), 1);
    cr_expect_eq(B.n_dial_fail, 1);
    cr_expect_lt(B.dial_fail_rc, 0);
    cr_expect_eq(tk_stats(&B).dialed, 1, "a one-shot dial is not retried");
}

/* A certificate of another CA is refused during the handshake even by an
 * anonymous-ok listener: a bad certificate is never taken as none. */
Test(peer_join, foreign_certificate_is_refused_by_anon_listener)
{
    uint64_t refused;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.foreign_cert, pems.foreign_key, NULL);
    tk_d = tk_dial(&B, tk_listen_anon(&A));

    cr_assert(tk_run_until(tk_a_refused, TK_WAIT_MS));
    peer_dialer_stop(tk_d);

    refused = tk_stats(&A).refused;
    cr_expect_eq(
        tk_log_count("refused peer", "unable to get local issuer certificate"),
        (int)refused);
    cr_expect_eq(A.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
}

/* An expired certificate of the cluster's CA is refused by an
 * anonymous-ok listener too. */
Test(peer_join, expired_certificate_is_refused_by_anon_listener)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.expired_cert, pems.expired_key, NULL);
    tk_d = tk_dial(&B, tk_listen_anon(&A));

    cr_assert(tk_run_until(tk_a_refused, TK_WAIT_MS));
    peer_dialer_stop(tk_d);

    cr_expect_geq(tk_log_count("refused peer", "certificate has expired"), 1);
    cr_expect_eq(A.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
}

/* A member with a valid certificate keeps its identity on an
 * anonymous-ok listener. */
Test(peer_join, certified_peer_keeps_identity_on_anon_listener)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side(&B, pems.ca, pems.b_cert, pems.b_key, NULL);
    tk_d = tk_dial(&B, tk_listen_anon(&A));

    cr_assert(tk_run_until(tk_both_up, TK_WAIT_MS));

    cr_expect(!A.seen_anon);
    cr_expect(!peer_conn_anonymous(A.conn));
    cr_expect_str_eq(A.seen.node_id, NODE_B);
    cr_expect_str_eq(A.seen.cluster_id, CLUSTER);
}

/* A dial without a certificate that trusts another CA refuses the
 * listener, reports it through on_dial_fail, and never comes up. */
Test(peer_join, anon_dial_refuses_server_of_wrong_ca)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);

    tk_dial_anon(tk_listen_anon(&A), pems.foreign_ca);
    cr_assert(tk_run_until(tk_b_dial_failed, TK_WAIT_MS));

    cr_expect_eq(B.dial_fail_rc, ERR_TLS);
    cr_expect(strstr(B.dial_fail_why, "certificate verify failed"), "why: %s",
              B.dial_fail_why);
    cr_expect_eq(B.n_auth, 0);
    cr_expect_eq(A.n_up + B.n_up, 0);
    cr_expect_eq(
        tk_log_count("cannot connect to peer", "certificate verify failed"), 1);
}

/* The unverified fetch returns the root the listener sends, which pins
 * with the cluster's join token and not with another cluster's; nothing
 * comes up on the way. */
Test(peer_join, fetch_returns_root_that_pins_with_token)
{
    char text[CA_TOKEN_LEN + 1];
    struct ca_token tok;
    struct ca_msg msg;
    uint8_t *ca;
    uint8_t *fca;
    size_t ca_len = tk_der(pems.ca, &ca);
    size_t fca_len = tk_der(pems.foreign_ca, &fca);

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);

    tk_fetch_ca(tk_listen_anon(&A));
    cr_assert(tk_run_until(tk_fetched, TK_WAIT_MS));
    tk_run_until(tk_never, 50);

    cr_assert_eq(tk_fetch.rc, 0, "why: %s", tk_fetch.why);
    cr_expect_eq(tk_fetch.n, 1);
    cr_expect_eq(tk_fetch.len, ca_len);
    cr_assert_eq(ca_token_new(ca, ca_len, text, NULL), 0);
    cr_assert_eq(ca_token_parse(text, &tok, NULL), 0);
    cr_expect_eq(ca_token_pin(&tok, tk_fetch.der, tk_fetch.len, &msg), 0);
    cr_assert_eq(ca_token_new(fca, fca_len, text, NULL), 0);
    cr_assert_eq(ca_token_parse(text, &tok, NULL), 0);
    cr_expect_eq(ca_token_pin(&tok, tk_fetch.der, tk_fetch.len, &msg),
                 CA_ERR_CA_MISMATCH);
    cr_expect_eq(A.n_up + B.n_up, 0);
    cr_expect_eq(B.n_auth, 0, "an unverified server is never authorized");
    cr_expect_eq(tk_log_count(" warn ", NULL), 0);
    ca_token_clear(&tok);
    OPENSSL_free(ca);
    OPENSSL_free(fca);
}

/* The fetch also reads the root from a listener without the option,
 * whose server certificate comes before its refusal of the client. */
Test(peer_join, fetch_works_against_listener_without_option)
{
    uint8_t *ca;
    size_t ca_len = tk_der(pems.ca, &ca);

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);

    tk_fetch_ca(tk_listen(&A));
    cr_assert(tk_run_until(tk_fetched, TK_WAIT_MS));

    cr_assert_eq(tk_fetch.rc, 0, "why: %s", tk_fetch.why);
    cr_expect_eq(tk_fetch.len, ca_len);
    cr_expect_eq(memcmp(tk_fetch.der, ca, ca_len), 0);
    OPENSSL_free(ca);
}

/* A fetch from a port nobody listens on reports the failure once. */
Test(peer_join, fetch_from_closed_port_reports_failure)
{
    struct peer_listener *pl;
    uint16_t port;

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);
    cr_assert_eq(peer_listen(&A.net, "127.0.0.1:0", &pl), 0);
    port = peer_listener_port(pl);
    peer_listener_close(pl);
    tk_run_until(tk_never, 10);

    tk_fetch_ca(port);
    cr_assert(tk_run_until(tk_fetched, TK_WAIT_MS));
    tk_run_until(tk_never, 3 * PEER_BACKOFF_FIRST_MS);

    cr_expect_eq(tk_fetch.n, 1);
    cr_expect_eq(tk_fetch.rc, -ECONNREFUSED, "why: %s", tk_fetch.why);
    cr_expect_eq(tk_fetch.len, 0);
}

/* A fetch stopped by its owner reports nothing. */
Test(peer_join, stopped_fetch_reports_nothing)
{
    struct peer_dialer *d;
    char addr[32];

    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", tk_listen_anon(&A));

    cr_assert_eq(
        peer_fetch_ca_unverified(&B.net, addr, tk_fetch_cb, &tk_fetch, &d), 0);
    peer_dialer_stop(d);
    tk_run_until(tk_never, 100);

    cr_expect_eq(tk_fetch.n, 0);
}

/* Frames flow both ways on an anonymous connection. */
Test(peer_join, frames_flow_both_ways_on_anonymous_connection)
{
    tk_side(&A, pems.ca, pems.a_cert, pems.a_key, NULL);
    tk_side_bare(&B);
    A.send_on_up = true;
    B.send_on_up = true;

    tk_dial_anon(tk_listen_anon(&A), pems.ca);
    cr_assert(tk_run_until(tk_frames_both_ways, TK_WAIT_MS));

    cr_expect_eq(A.n_bad + B.n_bad, 0);
    cr_expect_eq(A.n_bytes, 100);
    cr_expect_eq(B.n_bytes, 100);
    cr_expect(A.up_anon);
}

/* A net without a certificate can neither listen nor dial normally, can
 * once given one, and refuses unknown listen flags and a CA that is not
 * one DER certificate. */
Test(peer_join, net_without_tls_refuses_listen_and_dial_until_set)
{
    static const uint8_t junk[] = {0x30, 0x03, 0x01, 0x01, 0xff};
    struct peer_listener *pl;
    struct peer_dialer *d;
    struct peer_tls_ctx *t;

    tk_side_bare(&B);

    cr_expect_eq(peer_listen(&B.net, "127.0.0.1:0", &pl), ERR_BADSTATE);
    cr_expect_eq(peer_dial(&B.net, "127.0.0.1:7000", NULL, &d), ERR_BADSTATE);
    cr_expect_eq(
        peer_dial_anon(&B.net, "127.0.0.1:7000", junk, sizeof junk, NULL, &d),
        ERR_TLS);
    cr_expect_eq(peer_dial_anon(&B.net, "127.0.0.1:7000", NULL, 0, NULL, &d),
                 ERR_TLS);
    cr_expect_eq(
        peer_fetch_ca_unverified(&B.net, "127.0.0.1:7000", NULL, NULL, &d),
        -EINVAL);
    cr_assert_eq(peer_tls_ctx_new(pems.ca, pems.b_cert, pems.b_key, &t), 0);
    peer_net_set_tls(&B.net, t);
    cr_expect_eq(peer_listen_flags(&B.net, "127.0.0.1:0", 0x2, &pl), -EINVAL);
    cr_expect_eq(peer_listen(&B.net, "127.0.0.1:0", &pl), 0);
}
