/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_root.c: the root CA: creation, adoption, files, and signing nodes.
 *
 * Invariant: a struct ca_root that is not empty holds a self-signed CA
 * certificate with a P-256 key and one valid O, and, when it has a key,
 * the key matches the certificate. Every way in (create, from_der, load)
 * goes through root_adopt(), which checks this. Signing takes only the
 * public key from a CSR; names and extensions come from the caller.
 */
#include "ca/ca.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/base.h"
#include "ca/ca_int.h"

void
ca_root_init(struct ca_root *r)
{
    memset(r, 0, sizeof *r);
}

void
ca_root_fini(struct ca_root *r)
{
    /* EVP_PKEY_free clears the private scalar (BN_clear_free). */
    EVP_PKEY_free(r->key);
    X509_free(r->cert);
    memset(r, 0, sizeof *r);
}

/* Check cert (and key) as the invariant above says and move both into
 * the empty r. Takes ownership of cert and key whatever the outcome. */
static int
root_adopt(struct ca_root *r, X509 *cert, EVP_PKEY *key, struct ca_msg *msg)
{
    char cluster[CA_ID_MAX + 1];
    int rc;

    ASSERT(r->cert == NULL && r->key == NULL); /* contract: r is empty */

    if (X509_check_ca(cert) != 1) {
        rc = ca__fail(msg, CA_ERR_BAD_CERT,
                      "the root certificate is not a CA certificate");
        goto fail_free;
    }
    if (X509_self_signed(cert, 1) != 1) {
        rc = ca__tls_fail(msg, CA_ERR_BAD_CERT,
                          "the root certificate is not self-signed");
        goto fail_free;
    }
    if (!ca__key_is_p256(X509_get0_pubkey(cert))) {
        rc = ca__fail(msg, CA_ERR_BAD_CERT,
                      "the root certificate's key is not P-256");
        goto fail_free;
    }
    rc = ca__name_get(X509_get_subject_name(cert), NID_organizationName, true,
                      cluster, sizeof cluster, "O (cluster id) of the root",
                      msg);
    if (rc != 0) {
        goto fail_free;
    }

    if (key != NULL) {
        if (!ca__key_is_p256(key)) {
            rc = ca__fail(msg, CA_ERR_BAD_KEY, "the root key is not P-256");
            goto fail_free;
        }
        if (X509_check_private_key(cert, key) != 1) {
            rc = ca__tls_fail(msg, CA_ERR_BAD_KEY,
                              "the root key does not match the root "
                              "certificate");
            goto fail_free;
        }
    }

    r->cert = cert;
    r->key = key;
    memcpy(r->cluster_id, cluster, sizeof cluster);
    return 0;

fail_free:
    EVP_PKEY_free(key);
    X509_free(cert);
    ASSERT(rc != 0);
    return rc;
}

/* Build a subject name from (nid, value) pairs in the given order. */
static X509_NAME *
name_new(const int *nids, const char *const *values, size_t n)
{
    X509_NAME *name = X509_NAME_new();

    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (X509_NAME_add_entry_by_NID(name, nids[i], MBSTRING_UTF8,
                                       (const unsigned char *)values[i], -1, -1,
                                       0) != 1) {
            X509_NAME_free(name);
            return NULL;
        }
    }
    return name;
}

int
ca_root_create(struct ca_root *r, const char *cluster_id, struct ca_msg *msg)
{
    static const int nids[] = {NID_organizationName, NID_commonName};
    const char *values[] = {cluster_id, CA_ROOT_CN};
    struct ca__cert_spec spec;
    X509_NAME *name = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int64_t now = ca__now_s();
    int rc;

    if (!ca__id_valid(cluster_id)) {
        return ca__fail(msg, -EINVAL,
                        "cluster id must be 1-%d of [0-9A-Za-z._-]", CA_ID_MAX);
    }

    rc = ca__key_new(&key, msg);
    if (rc != 0) {
        return rc;
    }

    name = name_new(nids, values, ARRAY_LEN(nids));
    if (name == NULL) {
        rc = ca_tls_error(msg, "making the root subject");
        goto fail_free_key;
    }

    spec = (struct ca__cert_spec){
        .pub = key,
        .subject = name,
        .issuer = NULL,
        .signer = key,
        .not_before_s = now - CA_BACKDATE_S,
        .not_after_s = now + CA_ROOT_VALIDITY_S,
        .is_ca = true,
    };
    rc = ca__cert_build(&spec, &cert, msg);
    X509_NAME_free(name);
    if (rc != 0) {
        goto fail_free_key;
    }

    return root_adopt(r, cert, key, msg);

fail_free_key:
    EVP_PKEY_free(key);
    ASSERT(rc != 0);
    return rc;
}

int
ca_root_from_der(struct ca_root *r, const uint8_t *cert, size_t cert_len,
                 const uint8_t *key, size_t key_len, struct ca_msg *msg)
{
    const unsigned char *p = key;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    int rc;

    rc = ca_cert_from_der(&x, cert, cert_len, msg);
    if (rc != 0) {
        return rc;
    }

    if (key != NULL) {
        if (key_len == 0 || key_len > CA_FILE_MAX) {
            X509_free(x);
            return ca__fail(msg, key_len == 0 ? CA_ERR_BAD_KEY : ERR_TOOBIG,
                            "root key has %zu bytes", key_len);
        }
        ERR_set_mark();
        pkey = d2i_AutoPrivateKey(NULL, &p, (long)key_len);
        if (pkey == NULL || p != key + key_len) {
            ERR_clear_last_mark();
            EVP_PKEY_free(pkey);
            X509_free(x);
            return ca__tls_fail(msg, CA_ERR_BAD_KEY,
                                "root key does not parse as one DER key");
        }
        ERR_pop_to_mark(); /* decoders queue the formats that failed */
    }

    return root_adopt(r, x, pkey, msg);
}

int
ca_root_save(const struct ca_root *r, const char *state_dir, struct ca_msg *msg)
{
    int dfd, rc;

    if (r->cert == NULL) {
        return ca__fail(msg, -EINVAL, "no root certificate to save");
    }

    rc = ca__dir_open(state_dir, true, &dfd, msg);
    if (rc != 0) {
        return rc;
    }

    /* Key first: ca.crt is what load looks for, so it must appear only
     * once the key it goes with is durable. */
    if (r->key != NULL) {
        rc = ca__pem_write(dfd, "ca.key", NULL, r->key, msg);
    }
    if (rc == 0) {
        rc = ca__pem_write(dfd, "ca.crt", r->cert, NULL, msg);
    }
    close(dfd);
    return rc;
}

int
ca_root_load(struct ca_root *r, const char *state_dir, bool with_key,
             struct ca_msg *msg)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int dfd, rc;

    rc = ca__dir_open(state_dir, false, &dfd, msg);
    if (rc != 0) {
        return rc;
    }

    rc = ca__pem_read_cert(dfd, "ca.crt", &cert, msg);
    if (rc == 0 && with_key) {
        rc = ca__pem_read_key(dfd, "ca.key", &key, msg);
    }
    close(dfd);
    if (rc != 0) {
        X509_free(cert);
        return rc;
    }
    return root_adopt(r, cert, key, msg);
}

/* Check what the caller authorised and work out the validity window. */
static int
issue_check(const struct ca_issue *iss, int64_t *nb, int64_t *na,
            struct ca_msg *msg)
{
    int64_t validity =
        iss->validity_s != 0 ? iss->validity_s : CA_NODE_VALIDITY_S;
    int64_t now = ca__now_s();

    if (!ca__id_valid(iss->node_id)) {
        return ca__fail(msg, -EINVAL, "node id must be 1-%d of [0-9A-Za-z._-]",
                        CA_ID_MAX);
    }
    if (iss->role != CA_ROLE_MANAGER && iss->role != CA_ROLE_WORKER) {
        return ca__fail(msg, -EINVAL, "role %d is not a role", (int)iss->role);
    }
    if (validity < CA_NODE_VALIDITY_MIN_S || validity > CA_ROOT_VALIDITY_S) {
        return ca__fail(msg, -EINVAL, "validity %lld s is outside [%lld, %lld]",
                        (long long)validity, CA_NODE_VALIDITY_MIN_S,
                        CA_ROOT_VALIDITY_S);
    }

    /* Backdating covers clocks a little behind ours (SwarmKit does the
     * same); the lifetime still counts from now. */
    if (iss->not_before_s == 0) {
        *nb = now - CA_BACKDATE_S;
        *na = now + validity;
    } else {
        *nb = iss->not_before_s;
        *na = iss->not_before_s + validity;
    }
    return 0;
}

/* Parse and check an untrusted CSR; on success *out holds it. */
static int
csr_parse(const uint8_t *csr, size_t len, X509_REQ **out, struct ca_msg *msg)
{
    const unsigned char *p = csr;
    EVP_PKEY *pub;
    X509_REQ *req;
    int rc;

    if (len > CA_CSR_MAX) {
        return ca__fail(msg, ERR_TOOBIG, "CSR has %zu bytes, more than %d", len,
                        CA_CSR_MAX);
    }
    if (csr == NULL || len == 0) {
        return ca__fail(msg, CA_ERR_CSR_MALFORMED, "CSR is empty");
    }

    req = d2i_X509_REQ(NULL, &p, (long)len);
    if (req == NULL) {
        return ca__tls_fail(msg, CA_ERR_CSR_MALFORMED, "CSR does not parse");
    }
    if (p != csr + len) {
        rc = ca__fail(msg, CA_ERR_CSR_MALFORMED,
                      "CSR is followed by %zu stray bytes",
                      (size_t)(csr + len - p));
        goto fail_free;
    }

    pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL) {
        rc = ca__tls_fail(msg, CA_ERR_CSR_MALFORMED,
                          "CSR public key does not parse");
        goto fail_free;
    }
    if (!ca__key_is_p256(pub)) {
        rc = ca__fail(msg, CA_ERR_BAD_KEY, "CSR key is not a P-256 key");
        goto fail_free;
    }

    /* Proof of possession: whoever sent this holds the private key. */
    if (X509_REQ_verify(req, pub) != 1) {
        rc = ca__tls_fail(msg, CA_ERR_CSR_SIG, "CSR signature does not verify");
        goto fail_free;
    }

    *out = req;
    return 0;

fail_free:
    X509_REQ_free(req);
    ASSERT(rc != 0);
    return rc;
}

int
ca_root_sign(const struct ca_root *r, const uint8_t *csr, size_t csr_len,
             const struct ca_issue *iss, struct ca_buf *cert_der,
             struct ca_msg *msg)
{
    static const int nids[] = {NID_organizationName, NID_organizationalUnitName,
                               NID_commonName};
    const char *values[3];
    struct ca__cert_spec spec;
    X509_NAME *name = NULL;
    X509_REQ *req = NULL;
    X509 *cert = NULL;
    int64_t nb = 0, na = 0;
    int rc;

    if (r->cert == NULL || r->key == NULL) {
        return ca__fail(msg, -EINVAL, "this root CA has no key to sign");
    }
    rc = issue_check(iss, &nb, &na, msg);
    if (rc != 0) {
        return rc;
    }
    rc = csr_parse(csr, csr_len, &req, msg);
    if (rc != 0) {
        return rc;
    }

    /* The names come from the caller and the root only: whatever subject
     * or extensions the CSR asked for are ignored. */
    values[0] = r->cluster_id;
    values[1] = ca_role_name(iss->role);
    values[2] = iss->node_id;
    name = name_new(nids, values, ARRAY_LEN(nids));
    if (name == NULL) {
        rc = ca_tls_error(msg, "making the node subject");
        goto out_free_req;
    }

    spec = (struct ca__cert_spec){
        .pub = X509_REQ_get0_pubkey(req),
        .subject = name,
        .issuer = r->cert,
        .signer = r->key,
        .not_before_s = nb,
        .not_after_s = na,
        .is_ca = false,
    };
    rc = ca__cert_build(&spec, &cert, msg);
    if (rc != 0) {
        goto out_free_name;
    }

    rc = ca_cert_to_der(cert, cert_der);
    if (rc != 0) {
        ca__fail(msg, rc, "encoding the node certificate");
    }
    X509_free(cert);

out_free_name:
    X509_NAME_free(name);
out_free_req:
    X509_REQ_free(req);
    return rc;
}
