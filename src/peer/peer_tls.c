/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * peer_tls.c: the OpenSSL side of peer links: contexts, certificate
 * identities, a socket BIO that cannot raise SIGPIPE, and error reasons.
 *
 * A context is TLS 1.3 only with mutual authentication against the
 * cluster CA alone (ECOSYSTEM.md (d) 1-2). Key material lives only in
 * OpenSSL's key object: the PEM is read from the caller's buffer in
 * place and nothing derived from it is logged. The join (issue #4) adds
 * client contexts without a certificate: one that verifies the server
 * against a pinned CA, and one that verifies nothing and exists only to
 * read the root a server sends.
 */
#include "peer/peer_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define PEER_CA_DER_MAX 65536 /* bytes of a pinned CA certificate */

/* ---- A socket BIO ------------------------------------------------------ */

/* OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE
 * on a connection the peer reset; shoald does not ignore that signal,
 * so ours sends with MSG_NOSIGNAL. */
static BIO_METHOD *peer_bio_method;

#ifdef SHOAL_TEST_BUILD
static unsigned peer_test_eagain_writes;

void
peer_test_block_writes(unsigned n)
{
    peer_test_eagain_writes = n;
}
#endif

static int
peer_bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
#ifdef SHOAL_TEST_BUILD
    if (peer_test_eagain_writes > 0) {
        peer_test_eagain_writes--;
        BIO_set_retry_write(b);
        errno = EAGAIN;
        return -1;
    }
#endif
    do {
        n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        BIO_set_retry_write(b);
    }
    return (int)n;
}

static int
peer_bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do {
        n = recv(fd, buf, (size_t)len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        BIO_set_retry_read(b);
    } else if (n == 0) {
        /* OpenSSL asks BIO_eof() to tell a peer that left from one
         * that cut a record short. */
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    }
    return (int)n;
}

static long
peer_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}

static BIO_METHOD *
peer_bio_get_method(void)
{
    BIO_METHOD *m;

    if (peer_bio_method) {
        return peer_bio_method;
    }
    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                     "shoal peer socket");
    if (!m) {
        return NULL;
    }
    if (!BIO_meth_set_write(m, peer_bio_write) ||
        !BIO_meth_set_read(m, peer_bio_read) ||
        !BIO_meth_set_ctrl(m, peer_bio_ctrl)) {
        BIO_meth_free(m);
        return NULL;
    }
    /* Kept for the life of the process, like OpenSSL's own methods. */
    peer_bio_method = m;
    return m;
}

int
peer__ssl_new(struct peer_tls_ctx *t, int fd, bool server, SSL **out)
{
    BIO_METHOD *m = peer_bio_get_method();
    SSL *ssl;
    BIO *bio;

    if (!m) {
        goto fail;
    }
    ssl = SSL_new(t->ctx);
    if (!ssl) {
        goto fail;
    }
    bio = BIO_new(m);
    if (!bio) {
        goto fail_free_ssl;
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio); /* ssl owns bio from here */
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
    }
    *out = ssl;
    return 0;

fail_free_ssl:
    SSL_free(ssl);
fail:
    ERR_clear_error();
    return ERR_NOMEM;
}

/* ---- Identities -------------------------------------------------------- */

static bool
peer_name_char_ok(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

/* One name entry of nid, present exactly once, into out. */
static int
peer_name_entry(const X509_NAME *nm, int nid, char out[PEER_NAME_MAX + 1])
{
    unsigned char *utf8 = NULL;
    int i = X509_NAME_get_index_by_NID(nm, nid, -1);
    int n;
    int rc = -EINVAL;

    if (i < 0 || X509_NAME_get_index_by_NID(nm, nid, i) >= 0) {
        return -EINVAL; /* missing, or ambiguous */
    }
    n = ASN1_STRING_to_UTF8(
        &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));
    if (n <= 0 || n > PEER_NAME_MAX) {
        goto out;
    }
    for (int k = 0; k < n; k++) {
        if (!peer_name_char_ok(utf8[k])) {
            goto out;
        }
    }
    memcpy(out, utf8, (size_t)n);
    out[n] = '\0';
    rc = 0;
out:
    OPENSSL_free(utf8);
    return rc;
}

int
peer__ident_from_cert(X509 *cert, struct peer_ident *id)
{
    const X509_NAME *nm = X509_get_subject_name(cert);
    int rc;

    memset(id, 0, sizeof *id);
    rc = peer_name_entry(nm, NID_commonName, id->node_id);
    if (rc == 0) {
        rc = peer_name_entry(nm, NID_organizationalUnitName, id->role);
    }
    if (rc == 0) {
        rc = peer_name_entry(nm, NID_organizationName, id->cluster_id);
    }
    if (rc != 0) {
        memset(id, 0, sizeof *id);
    }
    ERR_clear_error();
    return rc;
}

/* ---- Contexts ---------------------------------------------------------- */

/* Drain the queue into one line: what failed to load, and why. */
static int
peer_tls_load_fail(const char *what)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    log_warn("peer", "cannot load tls material: what=%s reason=\"%s\"", what,
             reason ? reason : "no pem object");
    ERR_clear_error();
    return ERR_TLS;
}

/*
 * Whether the PEM reader stopped at the end of its input rather than at a
 * broken object: the end is queued as a "no start line" error, dropped
 * here.
 */
static bool
peer_pem_ended(void)
{
    unsigned long e = ERR_peek_last_error();

    if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
        ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return true;
    }
    return e == 0;
}

/* Trust every certificate of ca_pem, and nothing else. */
static int
peer_tls_load_ca(SSL_CTX *ctx, const char *ca_pem)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    int n = 0;
    X509 *x;

    if (!bio) {
        return ERR_NOMEM;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        int ok = X509_STORE_add_cert(store, x);

        X509_free(x);
        if (!ok) {
            BIO_free(bio);
            return peer_tls_load_fail("ca");
        }
        n++;
    }
    BIO_free(bio);
    if (n == 0 || !peer_pem_ended()) {
        return peer_tls_load_fail("ca");
    }
    return 0;
}

/*
 * Fix the chain sent to peers now, root included: a joining node reads
 * the root from it (peer_fetch_ca_unverified), and OpenSSL's implicit
 * chain would leave the root out as soon as cert_pem carries an
 * intermediate. A certificate that does not chain to the trusted CAs (a
 * misconfiguration the peer will refuse) keeps the chain it came with.
 */
static void
peer_tls_build_chain(SSL_CTX *ctx)
{
    /* Without SSL_BUILD_CHAIN_FLAG_NO_ROOT the root stays in. */
    SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                      SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
    ERR_clear_error();
}

/* The first certificate is ours; any others are its chain. */
static int
peer_tls_load_cert(struct peer_tls_ctx *t, const char *cert_pem)
{
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    X509 *x;
    struct tm tm;
    int rc;

    if (!bio) {
        return ERR_NOMEM;
    }
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x || !SSL_CTX_use_certificate(t->ctx, x)) {
        X509_free(x);
        BIO_free(bio);
        return peer_tls_load_fail("cert");
    }
    rc = peer__ident_from_cert(x, &t->ident);
    if (rc == 0 && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
        t->not_after = (int64_t)timegm(&tm);
    }
    X509_free(x);
    while (rc == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (!SSL_CTX_add0_chain_cert(t->ctx, x)) {
            X509_free(x);
            rc = peer_tls_load_fail("cert chain");
        }
    }
    BIO_free(bio);
    if (rc == 0 && !peer_pem_ended()) {
        rc = peer_tls_load_fail("cert chain");
    }
    if (rc == 0) {
        peer_tls_build_chain(t->ctx);
    }
    return rc;
}

/* An encrypted key would make OpenSSL prompt on the terminal. */
static int
peer_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int
peer_tls_load_key(SSL_CTX *ctx, const char *key_pem)
{
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *key;
    int ok;

    if (!bio) {
        return ERR_NOMEM;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, peer_no_passphrase_cb, NULL);
    BIO_free(bio);
    if (!key) {
        return peer_tls_load_fail("key");
    }
    ok = SSL_CTX_use_PrivateKey(ctx, key) && SSL_CTX_check_private_key(ctx);
    EVP_PKEY_free(key);
    if (!ok) {
        return peer_tls_load_fail("key");
    }
    return 0;
}

/* Settings of ECOSYSTEM.md (d) 1-2; 1.3 is also the maximum, so that a
 * future default cannot widen it. */
static int
peer_tls_settings(SSL_CTX *ctx)
{
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set1_groups_list(ctx, "X25519:P-256") ||
        !SSL_CTX_set_num_tickets(ctx, 0)) {
        return peer_tls_load_fail("settings");
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_verify_depth(ctx, 3);
    /* The output queue is written from an offset that moves, and a
     * record at a time so that a large frame does not wait for all of
     * its bytes to fit in the socket. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

int
peer_tls_ctx_new(const char *ca_pem, const char *cert_pem, const char *key_pem,
                 struct peer_tls_ctx **out)
{
    struct peer_tls_ctx *t = calloc(1, sizeof *t);
    int rc;

    if (!t) {
        return ERR_NOMEM;
    }
    t->ctx = SSL_CTX_new(TLS_method());
    if (!t->ctx) {
        ERR_clear_error();
        rc = ERR_NOMEM;
        goto fail_free;
    }
    rc = peer_tls_settings(t->ctx);
    if (rc == 0) {
        rc = peer_tls_load_ca(t->ctx, ca_pem);
    }
    if (rc == 0) {
        rc = peer_tls_load_cert(t, cert_pem);
    }
    if (rc == 0) {
        rc = peer_tls_load_key(t->ctx, key_pem);
    }
    if (rc != 0) {
        goto fail_free_ctx;
    }
    *out = t;
    return 0;

fail_free_ctx:
    SSL_CTX_free(t->ctx);
fail_free:
    free(t);
    ASSERT(rc != 0);
    return rc;
}

/* Trust the one DER certificate ca_der, and nothing else. */
static int
peer_tls_load_ca_der(SSL_CTX *ctx, const uint8_t *ca_der, size_t ca_len)
{
    const unsigned char *p = ca_der;
    X509 *x;
    int ok;

    if (ca_len == 0 || ca_len > PEER_CA_DER_MAX) {
        return peer_tls_load_fail("ca");
    }
    x = d2i_X509(NULL, &p, (long)ca_len);
    if (!x || p != ca_der + ca_len) {
        X509_free(x);
        return peer_tls_load_fail("ca");
    }
    ok = X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x);
    X509_free(x);
    return ok ? 0 : peer_tls_load_fail("ca");
}

int
peer__tls_ctx_client(const uint8_t *ca_der, size_t ca_len,
                     struct peer_tls_ctx **out)
{
    struct peer_tls_ctx *t = calloc(1, sizeof *t);
    int rc;

    if (!t) {
        return ERR_NOMEM;
    }
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) {
        ERR_clear_error();
        rc = ERR_NOMEM;
        goto fail_free;
    }
    rc = peer_tls_settings(t->ctx);
    if (rc == 0 && ca_der) {
        rc = peer_tls_load_ca_der(t->ctx, ca_der, ca_len);
    } else if (rc == 0) {
        /* The CA fetch: what the server sends is judged by the caller
         * against its join token, not by a store we do not have. */
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    }
    if (rc != 0) {
        goto fail_free_ctx;
    }
    *out = t;
    return 0;

fail_free_ctx:
    SSL_CTX_free(t->ctx);
fail_free:
    free(t);
    ASSERT(rc != 0);
    return rc;
}

int
peer__chain_root_der(SSL *ssl, uint8_t **der, size_t *len)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    int n = chain ? sk_X509_num(chain) : 0;
    unsigned char *buf = NULL;
    X509 *root;
    int dlen;

    if (n == 0) {
        return ERR_NOTFOUND;
    }
    /* Self-signed by its names only: nothing here is trusted, the
     * caller's pin is what decides. */
    root = sk_X509_value(chain, n - 1);
    if (!(X509_get_extension_flags(root) & EXFLAG_SS)) {
        ERR_clear_error();
        return ERR_NOTFOUND;
    }
    dlen = i2d_X509(root, &buf);
    if (dlen <= 0) {
        ERR_clear_error();
        return ERR_NOMEM;
    }
    *der = buf;
    *len = (size_t)dlen;
    return 0;
}

void
peer_tls_ctx_free(struct peer_tls_ctx *t)
{
    if (!t) {
        return;
    }
    SSL_CTX_free(t->ctx);
    free(t);
}

const struct peer_ident *
peer_tls_ctx_ident(const struct peer_tls_ctx *t)
{
    return &t->ident;
}

int64_t
peer_tls_ctx_not_after(const struct peer_tls_ctx *t)
{
    return t->not_after;
}

/* ---- Error reasons ----------------------------------------------------- */

int
peer__tls_reason(SSL *ssl, int ssl_err, char *buf, size_t len)
{
    int saved_errno = errno; /* before any call can change it */
    unsigned long e = ERR_get_error();
    int rc = ERR_TLS;

    if (ssl_err == SSL_ERROR_ZERO_RETURN) {
        snprintf(buf, len, "closed by peer");
        rc = ERR_CLOSED;
    } else if (ssl_err == SSL_ERROR_SYSCALL && e == 0) {
        if (saved_errno == 0) {
            snprintf(buf, len, "closed by peer");
            rc = ERR_CLOSED;
        } else {
            snprintf(buf, len, "%s", strerror(saved_errno));
            rc = -saved_errno;
        }
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        snprintf(buf, len, "closed by peer");
        rc = ERR_CLOSED;
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(ssl);

        snprintf(buf, len, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else if (e != 0) {
        const char *r = ERR_reason_error_string(e);

        snprintf(buf, len, "%s", r ? r : "unknown error");
    } else {
        snprintf(buf, len, "failure without a reason (error %d)", ssl_err);
    }
    ERR_clear_error();
    return rc;
}
