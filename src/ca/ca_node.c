/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_node.c: this node's own key, its CSR, and its certificate on disk.
 *
 * The private key is generated here and never leaves the node; only the
 * CSR (public key and proof of possession) travels. Invariant: when a
 * struct ca_node holds a certificate, it holds the key that certificate
 * names.
 */
#include "ca/ca.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/base.h"
#include "ca/ca_int.h"

void
ca_node_init(struct ca_node *n)
{
    memset(n, 0, sizeof *n);
}

void
ca_node_fini(struct ca_node *n)
{
    /* EVP_PKEY_free clears the private scalar (BN_clear_free). */
    EVP_PKEY_free(n->key);
    X509_free(n->cert);
    memset(n, 0, sizeof *n);
}

int
ca_node_csr_new(struct ca_node *n, struct ca_buf *csr, struct ca_msg *msg)
{
    unsigned char *der = NULL;
    bool made_key = false;
    X509_REQ *req;
    int rc, len;

    if (n->key == NULL) {
        rc = ca__key_new(&n->key, msg);
        if (rc != 0) {
            return rc;
        }
        made_key = true;
    }

    req = X509_REQ_new();
    if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_pubkey(req, n->key) != 1 ||
        X509_REQ_sign(req, n->key, EVP_sha256()) <= 0) {
        rc = ca_tls_error(msg, "making the CSR");
        goto fail_free_req;
    }

    len = i2d_X509_REQ(req, &der);
    rc = ca__buf_take(csr, der, len);
    if (rc != 0) {
        ca_tls_error(msg, "encoding the CSR");
        goto fail_free_req;
    }
    X509_REQ_free(req);
    return 0;

fail_free_req:
    X509_REQ_free(req);
    if (made_key) {
        EVP_PKEY_free(n->key);
        n->key = NULL;
    }
    ASSERT(rc != 0);
    return rc;
}

int
ca_node_cert_set(struct ca_node *n, const uint8_t *der, size_t len,
                 struct ca_msg *msg)
{
    X509 *cert = NULL;
    int rc;

    if (n->key == NULL) {
        return ca__fail(msg, -EINVAL, "this node has no key yet");
    }

    rc = ca_cert_from_der(&cert, der, len, msg);
    if (rc != 0) {
        return rc;
    }

    /* A certificate for another key would fail every handshake. */
    if (X509_check_private_key(cert, n->key) != 1) {
        X509_free(cert);
        return ca__tls_fail(msg, CA_ERR_BAD_KEY,
                            "the certificate is not for this node's key");
    }

    X509_free(n->cert);
    n->cert = cert;
    return 0;
}

int
ca_node_save(const struct ca_node *n, const char *state_dir, struct ca_msg *msg)
{
    int dfd, rc;

    if (n->key == NULL || n->cert == NULL) {
        return ca__fail(msg, -EINVAL,
                        "the node needs a key and a certificate to save");
    }

    rc = ca__dir_open(state_dir, true, &dfd, msg);
    if (rc != 0) {
        return rc;
    }

    /* Key first: node.crt appears only once its key is durable. */
    rc = ca__pem_write(dfd, "node.key", NULL, n->key, msg);
    if (rc == 0) {
        rc = ca__pem_write(dfd, "node.crt", n->cert, NULL, msg);
    }
    close(dfd);
    return rc;
}

int
ca_node_load(struct ca_node *n, const char *state_dir, struct ca_msg *msg)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int dfd, rc;

    ASSERT(n->key == NULL && n->cert == NULL); /* contract: n is empty */

    rc = ca__dir_open(state_dir, false, &dfd, msg);
    if (rc != 0) {
        return rc;
    }

    rc = ca__pem_read_cert(dfd, "node.crt", &cert, msg);
    if (rc == 0) {
        rc = ca__pem_read_key(dfd, "node.key", &key, msg);
    }
    close(dfd);
    if (rc != 0) {
        goto fail_free;
    }

    if (X509_check_private_key(cert, key) != 1) {
        rc = ca__tls_fail(msg, CA_ERR_BAD_KEY,
                          "node.key does not match node.crt");
        goto fail_free;
    }

    n->key = key;
    n->cert = cert;
    return 0;

fail_free:
    EVP_PKEY_free(key);
    X509_free(cert);
    ASSERT(rc != 0);
    return rc;
}
