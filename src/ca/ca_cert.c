/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_cert.c: building, encoding, reading and verifying certificates.
 *
 * The two profiles (root CA and node) are built here and nowhere else, so
 * every certificate shoal issues has the same extensions. Reading treats
 * a certificate as untrusted bytes: each subject field must appear once
 * and hold what shoal would have written, and verification trusts only
 * the one root it is given, never a system store.
 */
#include "ca/ca.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/base.h"
#include "ca/ca_int.h"

#define OU_MAX 32 /* longer than any role name */

/* Set a random, non-zero, positive 128-bit serial (RFC 5280 4.1.2.2). */
static int
set_serial(X509 *x, struct ca_msg *msg)
{
    uint8_t raw[16];
    BIGNUM *bn = NULL;
    int rc = 0;

    do {
        if (rand_bytes(raw, sizeof raw) != 0) {
            return ca_tls_error(msg, "drawing a serial number");
        }
        BN_free(bn);
        bn = BN_bin2bn(raw, sizeof raw, NULL);
        if (bn == NULL) {
            return ca_tls_error(msg, "making a serial number");
        }
    } while (BN_is_zero(bn));

    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        rc = ca_tls_error(msg, "setting the serial number");
    }
    BN_free(bn);
    return rc;
}

/* Add one extension in openssl.cnf syntax; ctx names issuer and subject
 * for the key identifiers. */
static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
        struct ca_msg *msg)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL) {
        return ca__tls_fail(msg, ERR_TLS, "making extension %s",
                            OBJ_nid2sn(nid));
    }
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (ok != 1) {
        return ca__tls_fail(msg, ERR_TLS, "adding extension %s",
                            OBJ_nid2sn(nid));
    }
    return 0;
}

/* The extensions of each profile. SKI must precede AKI: for a root the
 * AKI is read from the certificate's own SKI. */
static int
add_profile(X509 *x, X509 *issuer, bool is_ca, struct ca_msg *msg)
{
    X509V3_CTX ctx;
    int rc;

    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);

    rc = add_ext(x, &ctx, NID_basic_constraints,
                 is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE", msg);
    if (rc == 0) {
        rc = add_ext(x, &ctx, NID_key_usage,
                     is_ca ? "critical,keyCertSign,cRLSign"
                           : "critical,digitalSignature,keyEncipherment",
                     msg);
    }
    if (rc == 0 && !is_ca) {
        rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", msg);
    }
    if (rc == 0) {
        rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", msg);
    }
    if (rc == 0) {
        rc =
            add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", msg);
    }
    return rc;
}

int
ca__cert_build(const struct ca__cert_spec *s, X509 **out, struct ca_msg *msg)
{
    X509_NAME *issuer_name;
    X509 *x;
    int rc;

    ASSERT(s->not_after_s > s->not_before_s); /* callers validate */

    x = X509_new();
    if (x == NULL) {
        return ca_tls_error(msg, "allocating a certificate");
    }

    issuer_name =
        s->issuer != NULL ? X509_get_subject_name(s->issuer) : s->subject;
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_set_subject_name(x, s->subject) != 1 ||
        X509_set_issuer_name(x, issuer_name) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before_s) ==
            NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after_s) == NULL ||
        X509_set_pubkey(x, s->pub) != 1) {
        rc = ca_tls_error(msg, "filling a certificate");
        goto fail_free;
    }

    rc = set_serial(x, msg);
    if (rc != 0) {
        goto fail_free;
    }

    rc = add_profile(x, s->issuer, s->is_ca, msg);
    if (rc != 0) {
        goto fail_free;
    }

    if (X509_sign(x, s->signer, EVP_sha256()) <= 0) {
        rc = ca_tls_error(msg, "signing a certificate");
        goto fail_free;
    }

    *out = x;
    return 0;

fail_free:
    X509_free(x);
    ASSERT(rc != 0);
    return rc;
}

int
ca__name_get(const X509_NAME *name, int nid, bool id, char *out, size_t cap,
             const char *what, struct ca_msg *msg)
{
    const unsigned char *bytes;
    const ASN1_STRING *data;
    int idx, len;

    idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) {
        return ca__fail(msg, CA_ERR_BAD_CERT, "certificate has no %s", what);
    }
    if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
        return ca__fail(msg, CA_ERR_BAD_CERT,
                        "certificate has more than one %s", what);
    }

    data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    len = ASN1_STRING_length(data);
    bytes = ASN1_STRING_get0_data(data);
    if (len <= 0 || (size_t)len >= cap || bytes == NULL) {
        return ca__fail(msg, CA_ERR_BAD_CERT,
                        "certificate %s is empty or longer than %zu", what,
                        cap - 1);
    }

    /* Printable ASCII only: the value may end up in a log line. */
    for (int i = 0; i < len; i++) {
        if (bytes[i] < 0x20 || bytes[i] > 0x7e) {
            return ca__fail(msg, CA_ERR_BAD_CERT,
                            "certificate %s holds a non-printable byte", what);
        }
    }
    memcpy(out, bytes, (size_t)len);
    out[len] = '\0';

    if (id && !ca__id_valid(out)) {
        return ca__fail(msg, CA_ERR_BAD_CERT,
                        "certificate %s has characters outside "
                        "[0-9A-Za-z._-]",
                        what);
    }
    return 0;
}

int
ca_cert_from_der(X509 **out, const uint8_t *der, size_t len, struct ca_msg *msg)
{
    const unsigned char *p = der;
    X509 *x;

    if (len > CA_FILE_MAX) {
        return ca__fail(msg, ERR_TOOBIG,
                        "certificate has %zu bytes, more than %d", len,
                        CA_FILE_MAX);
    }
    if (der == NULL || len == 0) {
        return ca__fail(msg, CA_ERR_BAD_CERT, "certificate is empty");
    }

    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL) {
        return ca__tls_fail(msg, CA_ERR_BAD_CERT, "certificate does not parse");
    }
    if (p != der + len) {
        X509_free(x);
        return ca__fail(msg, CA_ERR_BAD_CERT,
                        "certificate is followed by %zu stray bytes",
                        (size_t)(der + len - p));
    }
    *out = x;
    return 0;
}

int
ca_cert_to_der(const X509 *cert, struct ca_buf *out)
{
    unsigned char *p = NULL;
    int len = i2d_X509(cert, &p);

    if (len <= 0) {
        ERR_clear_error();
        return ERR_TLS;
    }
    return ca__buf_take(out, p, len);
}

int
ca_key_to_der(const EVP_PKEY *key, struct ca_buf *out)
{
    unsigned char *p = NULL;
    int len = i2d_PrivateKey(key, &p);

    if (len <= 0) {
        ERR_clear_error();
        return ERR_TLS;
    }
    return ca__buf_take(out, p, len);
}

/* Convert an ASN1_TIME of a certificate we parsed to Unix seconds. */
static int
time_get(const ASN1_TIME *t, int64_t *out, struct ca_msg *msg)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return ca__tls_fail(msg, CA_ERR_BAD_CERT,
                            "certificate validity does not parse");
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

int
ca_cert_info(X509 *cert, struct ca_cert_info *info, struct ca_msg *msg)
{
    const X509_NAME *name;
    char ou[OU_MAX];
    int rc;

    memset(info, 0, sizeof *info);
    if (cert == NULL) {
        return ca__fail(msg, -EINVAL, "no certificate");
    }
    name = X509_get_subject_name(cert);

    rc = ca__name_get(name, NID_commonName, true, info->node_id,
                      sizeof info->node_id, "CN (node id)", msg);
    if (rc == 0) {
        rc = ca__name_get(name, NID_organizationName, true, info->cluster_id,
                          sizeof info->cluster_id, "O (cluster id)", msg);
    }
    if (rc == 0) {
        rc = ca__name_get(name, NID_organizationalUnitName, false, ou,
                          sizeof ou, "OU (role)", msg);
    }
    if (rc != 0) {
        goto fail;
    }

    if (strcmp(ou, ca_role_name(CA_ROLE_MANAGER)) == 0) {
        info->role = CA_ROLE_MANAGER;
    } else if (strcmp(ou, ca_role_name(CA_ROLE_WORKER)) == 0) {
        info->role = CA_ROLE_WORKER;
    } else {
        rc = ca__fail(msg, CA_ERR_BAD_CERT,
                      "certificate OU \"%s\" names no role", ou);
        goto fail;
    }

    /* A CA certificate is never a node's identity, whatever its names. */
    if (X509_check_ca(cert) != 0) {
        rc = ca__fail(msg, CA_ERR_BAD_CERT,
                      "certificate of %s is a CA certificate", info->node_id);
        goto fail;
    }

    rc = time_get(X509_get0_notBefore(cert), &info->not_before_s, msg);
    if (rc == 0) {
        rc = time_get(X509_get0_notAfter(cert), &info->not_after_s, msg);
    }
    if (rc != 0) {
        goto fail;
    }
    return 0;

fail:
    memset(info, 0, sizeof *info);
    ASSERT(rc != 0);
    return rc;
}

/* Map a chain verification failure to our code and one line. */
static int
verify_fail(int err, int depth, const char *node_id, struct ca_msg *msg)
{
    const char *what = depth == 0 ? "node" : "CA";
    const char *text = X509_verify_cert_error_string(err);

    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return ca__fail(msg, CA_ERR_EXPIRED,
                        "the %s certificate of node %s has expired", what,
                        node_id);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return ca__fail(msg, CA_ERR_NOT_YET_VALID,
                        "the %s certificate of node %s is not valid yet", what,
                        node_id);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
        return ca__fail(msg, CA_ERR_WRONG_CA,
                        "the certificate of node %s is not signed by this "
                        "cluster's CA: %s",
                        node_id, text);
    default:
        return ca__fail(msg, CA_ERR_CERT_INVALID,
                        "the certificate of node %s does not verify: %s "
                        "(depth %d)",
                        node_id, text, depth);
    }
}

int
ca_cert_verify(const struct ca_root *r, X509 *cert, int64_t now_s,
               struct ca_cert_info *info, struct ca_msg *msg)
{
    struct ca_cert_info got;
    X509_STORE_CTX *ctx = NULL;
    X509_STORE *store;
    int rc, ok;

    if (r == NULL || r->cert == NULL) {
        return ca__fail(msg, -EINVAL, "no root certificate to verify with");
    }

    rc = ca_cert_info(cert, &got, msg);
    if (rc != 0) {
        return rc;
    }

    /* Checked before the chain so that a node pointed at the wrong
     * cluster is told so, rather than "unknown CA". */
    if (strcmp(got.cluster_id, r->cluster_id) != 0) {
        return ca__fail(msg, CA_ERR_WRONG_CLUSTER,
                        "the certificate of node %s belongs to cluster %s, "
                        "not %s",
                        got.node_id, got.cluster_id, r->cluster_id);
    }

    store = X509_STORE_new();
    if (store == NULL || X509_STORE_add_cert(store, r->cert) != 1) {
        rc = ca_tls_error(msg, "making a certificate store");
        goto out_free_store;
    }
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
        rc = ca_tls_error(msg, "making a verification context");
        goto out_free_ctx;
    }
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)(now_s != 0 ? now_s : ca__now_s()));

    ERR_set_mark();
    ok = X509_verify_cert(ctx);
    if (ok < 0) {
        ERR_clear_last_mark();
        rc = ca_tls_error(msg, "verifying a certificate");
        goto out_free_ctx;
    }
    /* A refused chain may queue "certificate verify failed"; the verdict
     * is in the context, and the queue must stay clean for SSL. */
    ERR_pop_to_mark();
    if (ok == 0) {
        rc = verify_fail(X509_STORE_CTX_get_error(ctx),
                         X509_STORE_CTX_get_error_depth(ctx), got.node_id, msg);
        goto out_free_ctx;
    }

    if (info != NULL) {
        *info = got;
    }
    rc = 0;

out_free_ctx:
    X509_STORE_CTX_free(ctx);
out_free_store:
    X509_STORE_free(store);
    return rc;
}
