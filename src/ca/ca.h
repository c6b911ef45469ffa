/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca.h: the cluster's certificate authority, node identities and join
 * tokens (SWARMKIT.md 6, ECOSYSTEM.md (d) 1-5).
 *
 * The root CA is an ECDSA P-256 key and a self-signed certificate whose O
 * names the cluster. A node makes its own P-256 key and a CSR; the CA
 * signs it with CN = node id, OU = role, O = cluster id, all taken from
 * what the caller authorised, never from the CSR. Join tokens pin the CA
 * certificate and carry a 128-bit secret. Everything here is synchronous
 * and CPU- or local-file-bound (about 1 ms of CPU at most: creating a
 * root 0.8 ms, signing a CSR 0.6 ms, verifying 0.1 ms), so an epoll
 * daemon may call it from a loop turn; only the save functions fsync. The
 * module never logs: every failing call returns a code and, through an
 * optional struct ca_msg, one line the caller may log. Messages never hold
 * keys or token secrets.
 *
 * Error codes: 0 or negative; -errno for system calls, enum err_code of
 * base.h (ERR_TLS when OpenSSL failed, ERR_NOMEM, ERR_NOTFOUND, ERR_TOOBIG)
 * and enum ca_code below for this module's own refusals. Unless a comment
 * says otherwise, pointer parameters are borrowed and msg may be NULL.
 */
#ifndef SHOAL_CA_CA_H
#define SHOAL_CA_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

/*
 * This module's refusals. They sit below base.h's enum err_code (which
 * starts at -10000) so the ranges never overlap; ca_err_str() names them.
 */
enum ca_code {
    CA_ERR_DIR_MODE = -10100,  /* certificates folder open to others */
    CA_ERR_KEY_MODE,           /* a key file readable by group or others */
    CA_ERR_FILE_MODE,          /* a certificate writable by group/others */
    CA_ERR_OWNER,              /* a file or folder of another user */
    CA_ERR_NOT_REGULAR,        /* a symlink, or not a file or folder */
    CA_ERR_BAD_CERT,           /* not a certificate shoal issued/accepts */
    CA_ERR_BAD_KEY,            /* not P-256, or not the certificate's key */
    CA_ERR_CSR_MALFORMED,      /* CSR bytes do not parse */
    CA_ERR_CSR_SIG,            /* CSR self-signature does not verify */
    CA_ERR_EXPIRED,            /* past notAfter (leaf or root) */
    CA_ERR_NOT_YET_VALID,      /* before notBefore */
    CA_ERR_WRONG_CA,           /* not signed by the given root */
    CA_ERR_WRONG_CLUSTER,      /* O names another cluster */
    CA_ERR_CERT_INVALID,       /* any other chain verification failure */
    CA_ERR_CA_MISMATCH,        /* CA certificate differs from token digest */
    CA_ERR_TOKEN_EMPTY,        /* NULL or "" */
    CA_ERR_TOKEN_TOO_LONG,     /* over CA_TOKEN_INPUT_MAX characters */
    CA_ERR_TOKEN_PREFIX,       /* does not start with "SHOAL-" */
    CA_ERR_TOKEN_PARTS,        /* not 4 dash-separated parts */
    CA_ERR_TOKEN_VERSION,      /* a version other than 1 */
    CA_ERR_TOKEN_DIGEST_LEN,   /* digest part not 50 characters */
    CA_ERR_TOKEN_DIGEST_CHAR,  /* digest part outside [0-9a-z] */
    CA_ERR_TOKEN_DIGEST_RANGE, /* digest part above 2^256 - 1 */
    CA_ERR_TOKEN_SECRET_LEN,   /* secret part not 25 characters */
    CA_ERR_TOKEN_SECRET_CHAR,  /* secret part outside [0-9a-z] */
    CA_ERR_TOKEN_SECRET_RANGE, /* secret part above 2^128 - 1 */
    CA_ERR_TOKEN_WRONG_CA,     /* well formed, but for another CA */
    CA_ERR_TOKEN_SECRET,       /* well formed, wrong or rotated secret */
};

#define CA_MSG_MAX 256

/* One line saying why a call failed, for the caller to log. */
struct ca_msg {
    char text[CA_MSG_MAX]; /* NUL-terminated; set only on failure */
};

/* A byte buffer this module allocated. Transferred to the caller, who
 * releases it with ca_buf_fini(). */
struct ca_buf {
    uint8_t *data; /* OPENSSL_malloc'd; NULL when empty */
    size_t len;    /* bytes in data */
};

enum ca_role {
    CA_ROLE_WORKER,  /* OU "swarm-worker" */
    CA_ROLE_MANAGER, /* OU "swarm-manager" */
};

#define CA_ID_MAX 64               /* CN and O: RFC 5280 bound */
#define CA_DIR_NAME "certificates" /* under the state folder */
#define CA_ROOT_CN "shoal-root-ca"
#define CA_ROOT_VALIDITY_S (20LL * 365 * 86400) /* root lifetime */
#define CA_NODE_VALIDITY_S (90LL * 86400)       /* default node lifetime */
#define CA_NODE_VALIDITY_MIN_S 3600LL           /* shortest node lifetime */
#define CA_BACKDATE_S 3600LL                    /* notBefore slack: skew */
#define CA_CSR_MAX 8192                         /* bytes of a CSR we parse */
#define CA_FILE_MAX 65536                       /* bytes of a file we read */

/* What a node certificate says, as parsed back by ca_cert_info(). */
struct ca_cert_info {
    char node_id[CA_ID_MAX + 1];    /* CN */
    char cluster_id[CA_ID_MAX + 1]; /* O */
    enum ca_role role;              /* OU */
    int64_t not_before_s;           /* Unix seconds */
    int64_t not_after_s;            /* Unix seconds */
};

/* The cluster's root CA. key is NULL on a node that only trusts it. */
struct ca_root {
    X509 *cert;                     /* owned; NULL until loaded/created */
    EVP_PKEY *key;                  /* owned; NULL when not a signer */
    char cluster_id[CA_ID_MAX + 1]; /* the certificate's O */
};

/* What the caller authorised for one node certificate. */
struct ca_issue {
    const char *node_id;  /* CN: 1-64 of [0-9A-Za-z._-]; borrowed */
    enum ca_role role;    /* OU */
    int64_t not_before_s; /* Unix seconds; 0: now - CA_BACKDATE_S */
    int64_t validity_s;   /* 0: CA_NODE_VALIDITY_S; see ca_root_sign() */
};

/* This node's own identity: its key and, once signed, its certificate. */
struct ca_node {
    EVP_PKEY *key; /* owned; P-256; NULL until ca_node_csr_new/load */
    X509 *cert;    /* owned; NULL until ca_node_cert_set/load */
};

/* ---- Errors -------------------------------------------------------- */

/*
 * Drain OpenSSL's error queue of this thread into msg as one line,
 * "what: lib: reason; lib: reason", cut at CA_MSG_MAX. The queue is
 * emptied even when msg is NULL or full. Always returns ERR_TLS, so a
 * caller can write `return ca_tls_error(msg, "signing the certificate")`.
 */
int ca_tls_error(struct ca_msg *msg, const char *what);

/*
 * Name an error code: this module's, base.h's or an errno. Returns a
 * static string, never NULL.
 */
const char *ca_err_str(int rc);

/* Return "swarm-manager" or "swarm-worker"; "unknown" for other values. */
const char *ca_role_name(enum ca_role role);

/* Wipe (OPENSSL_cleanse) and free b's bytes, leaving it empty. A zeroed
 * buffer is a no-op. */
void ca_buf_fini(struct ca_buf *b);

/* ---- Root CA ------------------------------------------------------- */

/* Zero r. */
void ca_root_init(struct ca_root *r);

/* Free what r holds (OpenSSL wipes the private key) and zero it. A zeroed
 * root is a no-op. */
void ca_root_fini(struct ca_root *r);

/*
 * Create a new root CA for cluster_id (1-64 of [0-9A-Za-z._-]): a P-256
 * key and a self-signed certificate, CN "shoal-root-ca", O = cluster_id,
 * valid from now - CA_BACKDATE_S for CA_ROOT_VALIDITY_S, basicConstraints
 * CA:TRUE (critical), keyUsage keyCertSign and cRLSign (critical), SKI and
 * AKI, a random 128-bit serial. r must be empty (init'ed or fini'ed).
 * Returns 0 with r filled; -EINVAL for a bad cluster_id; ERR_TLS (with
 * OpenSSL's reasons in msg). On failure r stays empty.
 */
int ca_root_create(struct ca_root *r, const char *cluster_id,
                   struct ca_msg *msg);

/*
 * Fill the empty r from a DER certificate and, when key is not NULL, a
 * DER private key (both borrowed; the caller wipes its key copy). The
 * certificate must be a self-signed CA certificate with one O naming a
 * valid cluster id, the key a P-256 key matching it. This is how a
 * joining node adopts the CA it downloaded (after ca_token_pin()) and how
 * a manager takes the CA from the replicated cluster object. Returns 0;
 * CA_ERR_BAD_CERT, CA_ERR_BAD_KEY, ERR_TOOBIG (over CA_FILE_MAX). On
 * failure r stays empty.
 */
int ca_root_from_der(struct ca_root *r, const uint8_t *cert, size_t cert_len,
                     const uint8_t *key, size_t key_len, struct ca_msg *msg);

/*
 * Write r to <state_dir>/certificates/: ca.key (PEM, 0600) when r has a
 * key, then ca.crt (PEM, 0600), each atomically (temporary file, fsync,
 * rename, fsync of the folder), so that ca.crt exists only once the key
 * is durable. The folder is created 0700 when missing; state_dir must
 * exist. Returns 0; CA_ERR_DIR_MODE, CA_ERR_OWNER or CA_ERR_NOT_REGULAR
 * when the existing folder is unsafe; -errno; ERR_TLS.
 */
int ca_root_save(const struct ca_root *r, const char *state_dir,
                 struct ca_msg *msg);

/*
 * Fill the empty r from <state_dir>/certificates/ca.crt and, when
 * with_key, ca.key. Files and folder are opened with O_NOFOLLOW and
 * checked on the open descriptor: owned by the effective user, folder
 * 0700 or stricter, key 0600 or stricter, certificate not writable by
 * others. Returns 0; ERR_NOTFOUND when the folder or a wanted file is
 * missing (a fresh node); CA_ERR_DIR_MODE, CA_ERR_KEY_MODE,
 * CA_ERR_FILE_MODE, CA_ERR_OWNER, CA_ERR_NOT_REGULAR (refuse to start);
 * CA_ERR_BAD_CERT, CA_ERR_BAD_KEY, ERR_TOOBIG; -errno. On failure r stays
 * empty.
 */
int ca_root_load(struct ca_root *r, const char *state_dir, bool with_key,
                 struct ca_msg *msg);

/*
 * Sign a node certificate for the DER CSR csr (untrusted bytes). The CSR
 * must parse, carry a P-256 key and verify under it; only its public key
 * is used. Subject and extensions come from iss and the root: CN =
 * node_id, OU = role, O = the root's cluster id; keyUsage digitalSignature
 * and keyEncipherment, extendedKeyUsage serverAuth and clientAuth,
 * basicConstraints CA:FALSE, SKI, AKI, a random 128-bit serial. Validity:
 * with not_before_s 0, from now - CA_BACKDATE_S to now + validity_s;
 * otherwise from not_before_s to not_before_s + validity_s (an explicit
 * past window makes an expired certificate, for tests). validity_s must
 * be 0 or within [CA_NODE_VALIDITY_MIN_S, CA_ROOT_VALIDITY_S].
 * On success *cert_der (empty on entry; transferred) holds the DER
 * certificate. Returns 0; -EINVAL for a bad iss or a root without key;
 * ERR_TOOBIG (csr over CA_CSR_MAX), CA_ERR_CSR_MALFORMED, CA_ERR_BAD_KEY,
 * CA_ERR_CSR_SIG; ERR_TLS.
 */
int ca_root_sign(const struct ca_root *r, const uint8_t *csr, size_t csr_len,
                 const struct ca_issue *iss, struct ca_buf *cert_der,
                 struct ca_msg *msg);

/* ---- Certificates -------------------------------------------------- */

/*
 * Parse one DER certificate (untrusted bytes, all of them). On success
 * *out is a new X509 (transferred: X509_free). Returns 0;
 * CA_ERR_BAD_CERT for bytes that do not parse or trail; ERR_TOOBIG.
 */
int ca_cert_from_der(X509 **out, const uint8_t *der, size_t len,
                     struct ca_msg *msg);

/*
 * Encode cert as DER into the empty *out (transferred). Returns 0,
 * ERR_NOMEM or ERR_TLS.
 */
int ca_cert_to_der(const X509 *cert, struct ca_buf *out);

/*
 * Encode a private key as DER into the empty *out (transferred; secret:
 * release it with ca_buf_fini, which wipes it). For replicating the root
 * key in the cluster object. Returns 0, ERR_NOMEM or ERR_TLS.
 */
int ca_key_to_der(const EVP_PKEY *key, struct ca_buf *out);

/*
 * Read a node certificate's identity without judging its chain: exactly
 * one CN and one O (1-64 of [0-9A-Za-z._-]), exactly one OU that names a
 * role, not a CA. Returns 0 with *info filled; CA_ERR_BAD_CERT otherwise.
 */
int ca_cert_info(X509 *cert, struct ca_cert_info *info, struct ca_msg *msg);

/*
 * Decide whether cert is a node certificate of r's cluster, in this
 * order: its fields parse (CA_ERR_BAD_CERT); its O is r's cluster id
 * (CA_ERR_WRONG_CLUSTER); it chains to r->cert alone, checked by
 * X509_verify_cert at time now_s (0: the current time) with a store
 * holding only r->cert and no intermediates (CA_ERR_EXPIRED,
 * CA_ERR_NOT_YET_VALID, CA_ERR_WRONG_CA, CA_ERR_CERT_INVALID). Returns 0
 * and fills *info (may be NULL); ERR_TLS when OpenSSL itself failed.
 */
int ca_cert_verify(const struct ca_root *r, X509 *cert, int64_t now_s,
                   struct ca_cert_info *info, struct ca_msg *msg);

/* ---- Node identity ------------------------------------------------- */

/* Zero n. */
void ca_node_init(struct ca_node *n);

/* Free what n holds (OpenSSL wipes the key) and zero it. A zeroed node is
 * a no-op. */
void ca_node_fini(struct ca_node *n);

/*
 * Make a CSR for this node: generate n->key (P-256) when n has none, and
 * write into the empty *csr (transferred) a DER CSR signed by it, with an
 * empty subject (the CA decides the names). Returns 0 or ERR_TLS; on
 * failure *csr is empty and a key generated here is dropped.
 */
int ca_node_csr_new(struct ca_node *n, struct ca_buf *csr, struct ca_msg *msg);

/*
 * Adopt the DER certificate the CA returned (untrusted until checked with
 * ca_cert_verify()). It must parse and hold n->key's public key; it
 * replaces any certificate n had. Returns 0; -EINVAL when n has no key;
 * CA_ERR_BAD_CERT, CA_ERR_BAD_KEY (not our key), ERR_TOOBIG.
 */
int ca_node_cert_set(struct ca_node *n, const uint8_t *der, size_t len,
                     struct ca_msg *msg);

/*
 * Write n's key and certificate to <state_dir>/certificates/node.key
 * (0600) and node.crt (0600) as ca_root_save() does (key first). n must
 * hold both (-EINVAL otherwise). Returns as ca_root_save().
 */
int ca_node_save(const struct ca_node *n, const char *state_dir,
                 struct ca_msg *msg);

/*
 * Fill the empty n from <state_dir>/certificates/node.key and node.crt,
 * with ca_root_load()'s checks; the key must be P-256 and match the
 * certificate. The chain is not checked here: call ca_cert_verify().
 * Returns as ca_root_load(); on failure n stays empty.
 */
int ca_node_load(struct ca_node *n, const char *state_dir, struct ca_msg *msg);

/* ---- Join tokens --------------------------------------------------- */

/*
 * "SHOAL-1-<digest>-<secret>": digest is the SHA-256 of the DER CA
 * certificate as a base-36 number, lowercase, left-padded with '0' to 50
 * characters; secret is 128 random bits the same way in 25 characters.
 */
#define CA_TOKEN_PREFIX "SHOAL-1-"
#define CA_TOKEN_DIGEST_CHARS 50
#define CA_TOKEN_SECRET_CHARS 25
#define CA_TOKEN_LEN (8 + CA_TOKEN_DIGEST_CHARS + 1 + CA_TOKEN_SECRET_CHARS)
#define CA_TOKEN_INPUT_MAX 256 /* longer input is refused unread */

/* A parsed token. The secret is key material: ca_token_clear() it. */
struct ca_token {
    uint8_t digest[32]; /* SHA-256 of the DER CA certificate */
    uint8_t secret[16]; /* big-endian 128-bit secret */
};

/*
 * Make a fresh token for the CA whose DER certificate is ca_der: its
 * digest and 128 new random bits. out receives CA_TOKEN_LEN characters
 * and a NUL. Rotating a token is calling this again: the digest stays,
 * the secret changes. Returns 0 or ERR_TLS (out then holds "").
 */
int ca_token_new(const uint8_t *ca_der, size_t len, char out[CA_TOKEN_LEN + 1],
                 struct ca_msg *msg);

/* Write t as text: CA_TOKEN_LEN characters and a NUL. Never fails. */
void ca_token_format(const struct ca_token *t, char out[CA_TOKEN_LEN + 1]);

/*
 * Parse untrusted text strictly: the prefix "SHOAL-", exactly four
 * dash-separated parts, version "1", a 50-character digest and a
 * 25-character secret of [0-9a-z] whose values fit 256 and 128 bits. Each
 * malformed shape has its own code (CA_ERR_TOKEN_EMPTY ...
 * CA_ERR_TOKEN_SECRET_RANGE) and a message that names the part and
 * position but never repeats the secret. Returns 0 with *t filled, or
 * the code with *t wiped.
 */
int ca_token_parse(const char *text, struct ca_token *t, struct ca_msg *msg);

/*
 * Check a downloaded CA certificate (DER, untrusted) against the digest
 * of the token the operator gave, before anything trusts it. Returns 0
 * when SHA-256(ca_der) is t->digest, CA_ERR_CA_MISMATCH when not, ERR_TLS.
 */
int ca_token_pin(const struct ca_token *t, const uint8_t *ca_der, size_t len,
                 struct ca_msg *msg);

/*
 * Compare two secrets in constant time (CRYPTO_memcmp). Returns true when
 * they are equal.
 */
bool ca_token_secret_equal(const struct ca_token *a, const struct ca_token *b);

/*
 * Decide which role a join token grants (the leader's check). presented
 * is untrusted text; manager and worker are the cluster's current tokens
 * (worker may be NULL when workers cannot join). Both secrets are always
 * compared, in constant time. Returns 0 with *role set; the parse codes
 * for a malformed presented token; CA_ERR_TOKEN_WRONG_CA for a token of
 * another CA (another cluster, or before a root change);
 * CA_ERR_TOKEN_SECRET for a wrong or rotated secret; ERR_CORRUPT when a
 * stored token does not parse.
 */
int ca_token_check(const char *presented, const char *manager,
                   const char *worker, enum ca_role *role, struct ca_msg *msg);

/* Wipe t (OPENSSL_cleanse). */
void ca_token_clear(struct ca_token *t);

#endif
