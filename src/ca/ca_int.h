/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_int.h: what the files of src/ca share and nobody else sees.
 *
 * Message helpers, name checks, key generation, the certificate builder
 * used by both the root and the signer, and the private-file I/O of
 * ca_file.c. Contracts as in ca.h: 0 or a negative code, msg may be NULL,
 * pointers borrowed unless said otherwise.
 */
#ifndef SHOAL_CA_CA_INT_H
#define SHOAL_CA_CA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "ca/ca.h"

/*
 * Write a printf-style reason into msg (when not NULL) and return rc, so
 * that a refusal is one statement: `return ca__fail(msg, rc, ...)`.
 */
int ca__fail(struct ca_msg *msg, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * As ca__fail(), then append OpenSSL's queued reasons and empty the queue.
 * Returns rc.
 */
int ca__tls_fail(struct ca_msg *msg, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when s is 1 to CA_ID_MAX characters of [0-9A-Za-z._-]. */
bool ca__id_valid(const char *s);

/* True when key is an EC key on P-256. */
bool ca__key_is_p256(const EVP_PKEY *key);

/* Generate a P-256 key into *out (transferred). Returns 0 or ERR_TLS. */
int ca__key_new(EVP_PKEY **out, struct ca_msg *msg);

/* Current Unix time in seconds. */
int64_t ca__now_s(void);

/*
 * Take an OpenSSL allocation of len bytes into the empty *out. Returns 0,
 * or ERR_TLS when len is not positive (the i2d call failed).
 */
int ca__buf_take(struct ca_buf *out, unsigned char *data, int len);

/* What ca__cert_build() makes. Every pointer is borrowed. */
struct ca__cert_spec {
    EVP_PKEY *pub;        /* the subject's public key */
    X509_NAME *subject;   /* the whole subject name */
    X509 *issuer;         /* NULL: self-signed (a root) */
    EVP_PKEY *signer;     /* issuer's key, or pub's own for a root */
    int64_t not_before_s; /* Unix seconds */
    int64_t not_after_s;  /* Unix seconds, after not_before_s */
    bool is_ca;           /* root profile instead of node profile */
};

/*
 * Build and sign a certificate (profiles in ca.h) into *out
 * (transferred). Returns 0 or ERR_TLS.
 */
int ca__cert_build(const struct ca__cert_spec *s, X509 **out,
                   struct ca_msg *msg);

/*
 * Copy the single entry nid of name into out (cap bytes with the NUL),
 * requiring exactly one entry. When id is true the value must pass
 * ca__id_valid(); otherwise it must be printable ASCII. what names the
 * field in the message. Returns 0 or CA_ERR_BAD_CERT.
 */
int ca__name_get(const X509_NAME *name, int nid, bool id, char *out, size_t cap,
                 const char *what, struct ca_msg *msg);

/* ---- Private files (ca_file.c) ------------------------------------- */

/*
 * Open <state_dir>/certificates as a descriptor (*out, transferred),
 * creating it 0700 when create is true, and check on the descriptor that
 * it is a real folder (O_NOFOLLOW), owned by the effective user, mode
 * 0700 or stricter. Returns 0; ERR_NOTFOUND (not creating, missing);
 * CA_ERR_NOT_REGULAR, CA_ERR_OWNER, CA_ERR_DIR_MODE; -errno.
 */
int ca__dir_open(const char *state_dir, bool create, int *out,
                 struct ca_msg *msg);

/*
 * Replace dirfd/name atomically with PEM of cert (when not NULL) or of
 * key: a temporary ".name.tmp" opened O_EXCL|O_NOFOLLOW, mode 0600,
 * written, fsynced, renamed over name, then the folder fsynced. A stale
 * temporary from a crash is removed first; on failure none is left.
 * Returns 0, -errno or ERR_TLS.
 */
int ca__pem_write(int dirfd, const char *name, X509 *cert, EVP_PKEY *key,
                  struct ca_msg *msg);

/*
 * Read the PEM certificate dirfd/name into *out (transferred) after
 * checking that it is a regular file of ours that others cannot write. Returns
 * 0; ERR_NOTFOUND; CA_ERR_NOT_REGULAR, CA_ERR_OWNER, CA_ERR_FILE_MODE;
 * ERR_TOOBIG; CA_ERR_BAD_CERT; -errno.
 */
int ca__pem_read_cert(int dirfd, const char *name, X509 **out,
                      struct ca_msg *msg);

/*
 * Read the PEM private key dirfd/name into *out (transferred) after
 * checking that it is a regular file of ours that others cannot access; the
 * file's bytes are wiped once parsed. An encrypted key is refused, never
 * prompted for. Returns 0; ERR_NOTFOUND; CA_ERR_NOT_REGULAR, CA_ERR_OWNER,
 * CA_ERR_KEY_MODE; ERR_TOOBIG; CA_ERR_BAD_KEY; -errno.
 */
int ca__pem_read_key(int dirfd, const char *name, EVP_PKEY **out,
                     struct ca_msg *msg);

#endif
