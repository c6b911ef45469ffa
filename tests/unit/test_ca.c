/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_ca.c: the root CA, node certificates, join tokens and key files
 * of src/ca.
 *
 * Certificates are made with the module's own API except where a test
 * needs what shoal would never produce (a forged CSR, a P-384 key, an
 * encrypted key file): those are built with OpenSSL directly. File tests
 * work in their own folder under /tmp (mkdtemp), removed by the suite's
 * fini. Every successful path also checks that OpenSSL's error queue is
 * left empty, since a stale entry would confuse SSL_get_error later.
 */
#include "ca/ca.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/base.h"

#define CLUSTER "c0ffee0cluster0id00000001"
#define NODE "n0de0id000000000000000001"
#define DAY (86400LL)

static char tdir[64];

/* ---- Fixture and helpers ---------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
tmp_setup(void)
{
    snprintf(tdir, sizeof tdir, "/tmp/shoal-ca-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
}

static void
tmp_teardown(void)
{
    if (nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        cr_log_warn("cannot remove %s: %s", tdir, strerror(errno));
    }
}

TestSuite(ca_root, .timeout = 20.0);
TestSuite(ca_node, .timeout = 20.0);
TestSuite(ca_token, .timeout = 20.0);
TestSuite(ca_files, .init = tmp_setup, .fini = tmp_teardown, .timeout = 20.0);

static void
expect_queue_clean(void)
{
    cr_expect_eq(ERR_peek_error(), 0ul, "OpenSSL error queue left dirty");
}

static int64_t
now_s(void)
{
    return (int64_t)time(NULL);
}

static void
root_new(struct ca_root *r, const char *cluster)
{
    struct ca_msg msg = {{0}};

    ca_root_init(r);
    cr_assert_eq(ca_root_create(r, cluster, &msg), 0, "%s", msg.text);
}

/* Issue a certificate to a fresh node through the CSR path. */
static void
node_issue(const struct ca_root *r, const char *id, enum ca_role role,
           int64_t not_before_s, int64_t validity_s, struct ca_node *n)
{
    struct ca_issue iss = {id, role, not_before_s, validity_s};
    struct ca_buf csr = {0}, der = {0};
    struct ca_msg msg = {{0}};

    ca_node_init(n);
    cr_assert_eq(ca_node_csr_new(n, &csr, &msg), 0, "%s", msg.text);
    cr_assert_eq(ca_root_sign(r, csr.data, csr.len, &iss, &der, &msg), 0, "%s",
                 msg.text);
    cr_assert_eq(ca_node_cert_set(n, der.data, der.len, &msg), 0, "%s",
                 msg.text);
    ca_buf_fini(&csr);
    ca_buf_fini(&der);
}

/* One subject field of cert as text, or "" when absent. */
static const char *
subject_field(X509 *cert, int nid, char *buf, int cap)
{
    buf[0] = '\0';
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, cap);
    return buf;
}

static bool
ext_critical(X509 *cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);

    cr_assert_geq(idx, 0, "extension %s missing", OBJ_nid2sn(nid));
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

static int
serial_bits(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    int bits = BN_num_bits(bn);

    BN_free(bn);
    return bits;
}

static int64_t
cert_time(const ASN1_TIME *t)
{
    struct tm tm;

    cr_assert_eq(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

/* A DER CSR built by hand: subject fields and a CA:TRUE request of the
 * caller's choosing, public key of pub, signed by signer. */
static struct ca_buf
csr_forged(EVP_PKEY *pub, EVP_PKEY *signer, const char *cn, const char *ou,
           const char *o)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    struct ca_buf out = {0};
    int len;

    X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                               (const unsigned char *)o, -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, MBSTRING_UTF8,
                               (const unsigned char *)ou, -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    cr_assert_eq(X509_REQ_set_subject_name(req, name), 1);
    cr_assert_eq(X509_REQ_set_pubkey(req, pub), 1);
    sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL,
                                                     NID_basic_constraints,
                                                     "critical,CA:TRUE"));
    cr_assert_eq(X509_REQ_add_extensions(req, exts), 1);
    cr_assert_gt(X509_REQ_sign(req, signer, EVP_sha256()), 0);

    len = i2d_X509_REQ(req, &der);
    cr_assert_gt(len, 0);
    out.data = der;
    out.len = (size_t)len;

    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return out;
}

/* ---- Root CA ---------------------------------------------------------- */

/* A new root is a self-signed P-256 CA certificate with shoal's names,
 * critical CA and key-usage extensions, key identifiers and a 20-year
 * life. */
Test(ca_root, create_makes_self_signed_p256_ca)
{
    struct ca_root r;
    char buf[128];
    int64_t now = now_s();

    root_new(&r, CLUSTER);

    cr_expect_str_eq(r.cluster_id, CLUSTER);
    cr_expect_str_eq(subject_field(r.cert, NID_commonName, buf, sizeof buf),
                     "shoal-root-ca");
    cr_expect_str_eq(
        subject_field(r.cert, NID_organizationName, buf, sizeof buf), CLUSTER);
    cr_expect_eq(X509_self_signed(r.cert, 1), 1);
    cr_expect_eq(X509_check_ca(r.cert), 1);
    cr_expect(ext_critical(r.cert, NID_basic_constraints));
    cr_expect(ext_critical(r.cert, NID_key_usage));
    cr_expect_eq(X509_get_key_usage(r.cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    cr_expect_not_null(X509_get0_subject_key_id(r.cert));
    cr_expect_eq(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(r.cert),
                                       X509_get0_authority_key_id(r.cert)),
                 0, "a root's AKI names its own SKI");
    cr_expect_eq(EVP_PKEY_get_bits(r.key), 256);
    cr_expect(EVP_PKEY_is_a(r.key, "EC"));
    cr_expect_geq(serial_bits(r.cert), 96);
    cr_expect_leq(
        llabs(cert_time(X509_get0_notAfter(r.cert)) - now - CA_ROOT_VALIDITY_S),
        5);
    cr_expect_leq(cert_time(X509_get0_notBefore(r.cert)), now);
    expect_queue_clean();

    ca_root_fini(&r);
}

/* The DER forms of the certificate and key give back the same root. */
Test(ca_root, der_round_trip_keeps_root)
{
    struct ca_buf cert = {0}, key = {0};
    struct ca_root a, b;
    struct ca_msg msg = {{0}};

    root_new(&a, CLUSTER);
    cr_assert_eq(ca_cert_to_der(a.cert, &cert), 0);
    cr_assert_eq(ca_key_to_der(a.key, &key), 0);

    ca_root_init(&b);
    int rc = ca_root_from_der(&b, cert.data, cert.len, key.data, key.len, &msg);

    cr_assert_eq(rc, 0, "%s", msg.text);
    cr_expect_eq(X509_cmp(a.cert, b.cert), 0);
    cr_expect_eq(EVP_PKEY_eq(a.key, b.key), 1);
    cr_expect_str_eq(b.cluster_id, CLUSTER);
    expect_queue_clean();

    ca_buf_fini(&key);
    cr_expect_null(key.data);
    cr_expect_eq(key.len, 0);
    ca_buf_fini(&cert);
    ca_root_fini(&a);
    ca_root_fini(&b);
}

/* A trust-only root (certificate without key) can be adopted, verifies
 * nodes, and refuses to sign. */
Test(ca_root, cert_only_root_verifies_but_cannot_sign)
{
    struct ca_root r, trust;
    struct ca_buf cert = {0}, csr = {0}, out = {0};
    struct ca_issue iss = {NODE, CA_ROLE_MANAGER, 0, 0};
    struct ca_msg msg = {{0}};
    struct ca_node n;

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_MANAGER, 0, 0, &n);
    cr_assert_eq(ca_cert_to_der(r.cert, &cert), 0);
    ca_root_init(&trust);
    cr_assert_eq(ca_root_from_der(&trust, cert.data, cert.len, NULL, 0, &msg),
                 0, "%s", msg.text);

    cr_expect_null(trust.key);
    cr_expect_eq(ca_cert_verify(&trust, n.cert, 0, NULL, &msg), 0, "%s",
                 msg.text);
    cr_assert_eq(ca_node_csr_new(&n, &csr, NULL), 0);
    cr_expect_eq(ca_root_sign(&trust, csr.data, csr.len, &iss, &out, &msg),
                 -EINVAL);
    cr_expect_null(out.data);

    ca_buf_fini(&csr);
    ca_buf_fini(&cert);
    ca_node_fini(&n);
    ca_root_fini(&trust);
    ca_root_fini(&r);
}

/* Adopting a root refuses a node certificate, a key of another root and
 * bytes after the certificate. */
Test(ca_root, from_der_refuses_non_root_and_wrong_key)
{
    struct ca_buf root_der = {0}, other_key = {0}, node_der = {0};
    struct ca_msg msg = {{0}};
    struct ca_root r, other, out;
    struct ca_node n;
    uint8_t *padded;

    root_new(&r, CLUSTER);
    root_new(&other, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_WORKER, 0, 0, &n);
    cr_assert_eq(ca_cert_to_der(r.cert, &root_der), 0);
    cr_assert_eq(ca_key_to_der(other.key, &other_key), 0);
    cr_assert_eq(ca_cert_to_der(n.cert, &node_der), 0);
    padded = malloc(root_der.len + 1);
    memcpy(padded, root_der.data, root_der.len);
    padded[root_der.len] = 0;
    ca_root_init(&out);

    cr_expect_eq(
        ca_root_from_der(&out, node_der.data, node_der.len, NULL, 0, &msg),
        CA_ERR_BAD_CERT);
    cr_expect(strstr(msg.text, "not a CA") != NULL, "%s", msg.text);
    cr_expect_eq(ca_root_from_der(&out, root_der.data, root_der.len,
                                  other_key.data, other_key.len, &msg),
                 CA_ERR_BAD_KEY);
    cr_expect_eq(
        ca_root_from_der(&out, padded, root_der.len + 1, NULL, 0, &msg),
        CA_ERR_BAD_CERT);
    cr_expect_eq(ca_root_from_der(&out, root_der.data, 10, NULL, 0, &msg),
                 CA_ERR_BAD_CERT);
    cr_expect_null(out.cert);
    cr_expect_null(out.key);
    expect_queue_clean();

    free(padded);
    ca_buf_fini(&root_der);
    ca_buf_fini(&other_key);
    ca_buf_fini(&node_der);
    ca_node_fini(&n);
    ca_root_fini(&r);
    ca_root_fini(&other);
}

/* A cluster id that cannot be an O (empty, too long, a slash) is refused
 * before any key is made. */
Test(ca_root, create_refuses_bad_cluster_id)
{
    char longid[CA_ID_MAX + 2];
    struct ca_root r;

    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    ca_root_init(&r);

    cr_expect_eq(ca_root_create(&r, "", NULL), -EINVAL);
    cr_expect_eq(ca_root_create(&r, NULL, NULL), -EINVAL);
    cr_expect_eq(ca_root_create(&r, longid, NULL), -EINVAL);
    cr_expect_eq(ca_root_create(&r, "a/b", NULL), -EINVAL);
    cr_expect_null(r.cert);
}

/* OpenSSL's queued errors end up in the message, the queue is emptied,
 * and the result is ERR_TLS. */
Test(ca_root, tls_error_drains_queue_into_message)
{
    struct ca_msg msg = {{0}};
    const unsigned char *p = (const unsigned char *)"\x30\x03garbage";

    cr_assert_null(d2i_X509(NULL, &p, 9));
    cr_assert_neq(ERR_peek_error(), 0ul);

    int rc = ca_tls_error(&msg, "parsing a test certificate");

    cr_expect_eq(rc, ERR_TLS);
    cr_expect(strncmp(msg.text, "parsing a test certificate: ", 28) == 0, "%s",
              msg.text);
    cr_expect_gt(strlen(msg.text), 28);
    expect_queue_clean();
    cr_expect_eq(ca_tls_error(NULL, "no message"), ERR_TLS);
}

/* Every code of the module has its own name, distinct from base.h's. */
Test(ca_root, err_str_names_every_code)
{
    for (int a = CA_ERR_DIR_MODE; a <= CA_ERR_TOKEN_SECRET; a++) {
        cr_expect_str_neq(ca_err_str(a), "unknown error", "code %d", a);
        for (int b = CA_ERR_DIR_MODE; b < a; b++) {
            cr_expect_str_neq(ca_err_str(a), ca_err_str(b));
        }
    }
    cr_expect_str_eq(ca_err_str(ERR_TLS), err_str(ERR_TLS));
    cr_expect_str_eq(ca_role_name(CA_ROLE_MANAGER), "swarm-manager");
    cr_expect_str_eq(ca_role_name(CA_ROLE_WORKER), "swarm-worker");
}

/* ---- Node certificates ------------------------------------------------ */

/* A signed node certificate carries the authorised CN, OU and O, the node
 * profile's extensions, a 90-day life backdated one hour, and the root as
 * issuer; ca_cert_info reads the same fields back. */
Test(ca_node, cert_carries_authorised_fields)
{
    struct ca_cert_info info;
    struct ca_msg msg = {{0}};
    struct ca_root r;
    struct ca_node n;
    char buf[128];
    int64_t now = now_s();

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_MANAGER, 0, 0, &n);

    cr_expect_str_eq(subject_field(n.cert, NID_commonName, buf, sizeof buf),
                     NODE);
    cr_expect_str_eq(
        subject_field(n.cert, NID_organizationalUnitName, buf, sizeof buf),
        "swarm-manager");
    cr_expect_str_eq(
        subject_field(n.cert, NID_organizationName, buf, sizeof buf), CLUSTER);
    cr_expect_eq(X509_NAME_cmp(X509_get_issuer_name(n.cert),
                               X509_get_subject_name(r.cert)),
                 0);
    cr_expect_eq(X509_check_ca(n.cert), 0);
    cr_expect(ext_critical(n.cert, NID_basic_constraints));
    cr_expect(ext_critical(n.cert, NID_key_usage));
    cr_expect_eq(X509_get_key_usage(n.cert),
                 KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    cr_expect_eq(X509_get_extended_key_usage(n.cert),
                 XKU_SSL_SERVER | XKU_SSL_CLIENT);
    cr_expect_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(n.cert),
                                       X509_get0_subject_key_id(r.cert)),
                 0);
    cr_expect_not_null(X509_get0_subject_key_id(n.cert));
    cr_expect_geq(serial_bits(n.cert), 96);
    cr_expect_leq(serial_bits(n.cert), 128);
    cr_expect_eq(X509_check_issued(r.cert, n.cert), X509_V_OK);

    cr_assert_eq(ca_cert_info(n.cert, &info, &msg), 0, "%s", msg.text);
    cr_expect_str_eq(info.node_id, NODE);
    cr_expect_str_eq(info.cluster_id, CLUSTER);
    cr_expect_eq(info.role, CA_ROLE_MANAGER);
    cr_expect_leq(llabs(info.not_after_s - (now + 90 * DAY)), 5);
    cr_expect_leq(llabs(info.not_before_s - (now - 3600)), 5);
    expect_queue_clean();

    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* The validity is the caller's: two days from now when asked, and the
 * worker role reads back as a worker. */
Test(ca_node, validity_and_role_are_configurable)
{
    struct ca_cert_info info;
    struct ca_root r;
    struct ca_node n;
    int64_t now = now_s();

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_WORKER, 0, 2 * DAY, &n);

    cr_assert_eq(ca_cert_info(n.cert, &info, NULL), 0);
    cr_expect_eq(info.role, CA_ROLE_WORKER);
    cr_expect_leq(llabs(info.not_after_s - (now + 2 * DAY)), 5);

    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* Two certificates get different random serials. */
Test(ca_node, serials_are_random)
{
    struct ca_root r;
    struct ca_node a, b;

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_WORKER, 0, 0, &a);
    node_issue(&r, NODE, CA_ROLE_WORKER, 0, 0, &b);

    cr_expect_neq(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.cert),
                                   X509_get0_serialNumber(b.cert)),
                  0);

    ca_node_fini(&a);
    ca_node_fini(&b);
    ca_root_fini(&r);
}

/* A CSR asking for another CN, the manager OU, another cluster's O and
 * CA:TRUE gets exactly what the caller authorised, and no CA bit. */
Test(ca_node, forged_csr_subject_gets_authorised_names)
{
    struct ca_issue iss = {NODE, CA_ROLE_WORKER, 0, 0};
    struct ca_buf csr, der = {0};
    struct ca_cert_info info;
    struct ca_msg msg = {{0}};
    EVP_PKEY *key = EVP_EC_gen("P-256");
    struct ca_root r;
    X509 *cert = NULL;

    root_new(&r, CLUSTER);
    csr = csr_forged(key, key, "evil-admin", "swarm-manager", "othercluster");

    cr_assert_eq(ca_root_sign(&r, csr.data, csr.len, &iss, &der, &msg), 0, "%s",
                 msg.text);
    cr_assert_eq(ca_cert_from_der(&cert, der.data, der.len, &msg), 0);

    cr_assert_eq(ca_cert_info(cert, &info, &msg), 0, "%s", msg.text);
    cr_expect_str_eq(info.node_id, NODE);
    cr_expect_eq(info.role, CA_ROLE_WORKER);
    cr_expect_str_eq(info.cluster_id, CLUSTER);
    cr_expect_eq(X509_check_ca(cert), 0);
    cr_expect_eq(X509_NAME_entry_count(X509_get_subject_name(cert)), 3);
    cr_expect_eq(X509_check_private_key(cert, key), 1,
                 "the CSR's public key is the one certified");

    X509_free(cert);
    EVP_PKEY_free(key);
    ca_buf_fini(&csr);
    ca_buf_fini(&der);
    ca_root_fini(&r);
}

/* A CSR whose public key did not sign it (no proof of possession) is
 * refused, and nothing is issued. */
Test(ca_node, csr_signed_by_another_key_is_refused)
{
    struct ca_issue iss = {NODE, CA_ROLE_MANAGER, 0, 0};
    EVP_PKEY *victim = EVP_EC_gen("P-256");
    EVP_PKEY *forger = EVP_EC_gen("P-256");
    struct ca_msg msg = {{0}};
    struct ca_buf csr, der = {0};
    struct ca_root r;

    root_new(&r, CLUSTER);
    csr = csr_forged(victim, forger, NODE, "swarm-manager", CLUSTER);

    int rc = ca_root_sign(&r, csr.data, csr.len, &iss, &der, &msg);

    cr_expect_eq(rc, CA_ERR_CSR_SIG, "%s", ca_err_str(rc));
    cr_expect(strstr(msg.text, "signature") != NULL, "%s", msg.text);
    cr_expect_null(der.data);
    expect_queue_clean();

    EVP_PKEY_free(victim);
    EVP_PKEY_free(forger);
    ca_buf_fini(&csr);
    ca_root_fini(&r);
}

/* A CSR whose signature was altered in transit is refused. */
Test(ca_node, csr_with_altered_signature_is_refused)
{
    struct ca_issue iss = {NODE, CA_ROLE_MANAGER, 0, 0};
    struct ca_buf csr = {0}, der = {0};
    struct ca_root r;
    struct ca_node n;

    root_new(&r, CLUSTER);
    ca_node_init(&n);
    cr_assert_eq(ca_node_csr_new(&n, &csr, NULL), 0);
    csr.data[csr.len - 1] ^= 0x01; /* last byte of the ECDSA s value */

    int rc = ca_root_sign(&r, csr.data, csr.len, &iss, &der, NULL);

    cr_expect_eq(rc, CA_ERR_CSR_SIG, "%s", ca_err_str(rc));
    cr_expect_null(der.data);
    expect_queue_clean();

    ca_buf_fini(&csr);
    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* Garbage, truncated, padded, oversized and non-P-256 CSRs are each
 * refused with their own code. */
Test(ca_node, malformed_csr_is_refused)
{
    struct ca_issue iss = {NODE, CA_ROLE_MANAGER, 0, 0};
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    struct ca_buf csr = {0}, der = {0}, big;
    uint8_t *padded;
    struct ca_root r;
    struct ca_node n;

    root_new(&r, CLUSTER);
    ca_node_init(&n);
    cr_assert_eq(ca_node_csr_new(&n, &csr, NULL), 0);
    padded = calloc(1, CA_CSR_MAX + 1);
    memcpy(padded, csr.data, csr.len);
    big = csr_forged(p384, p384, NODE, "swarm-manager", CLUSTER);

    cr_expect_eq(ca_root_sign(&r, (const uint8_t *)"junk", 4, &iss, &der, NULL),
                 CA_ERR_CSR_MALFORMED);
    cr_expect_eq(ca_root_sign(&r, csr.data, csr.len - 5, &iss, &der, NULL),
                 CA_ERR_CSR_MALFORMED);
    cr_expect_eq(ca_root_sign(&r, padded, csr.len + 1, &iss, &der, NULL),
                 CA_ERR_CSR_MALFORMED);
    cr_expect_eq(ca_root_sign(&r, NULL, 0, &iss, &der, NULL),
                 CA_ERR_CSR_MALFORMED);
    cr_expect_eq(ca_root_sign(&r, padded, CA_CSR_MAX + 1, &iss, &der, NULL),
                 ERR_TOOBIG);
    cr_expect_eq(ca_root_sign(&r, big.data, big.len, &iss, &der, NULL),
                 CA_ERR_BAD_KEY);
    cr_expect_null(der.data);
    expect_queue_clean();

    free(padded);
    EVP_PKEY_free(p384);
    ca_buf_fini(&big);
    ca_buf_fini(&csr);
    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* What the caller authorises is checked too: a node id that is not an
 * id, a role out of range and a lifetime under an hour. */
Test(ca_node, sign_refuses_bad_authorisation)
{
    struct ca_buf csr = {0}, der = {0};
    struct ca_root r;
    struct ca_node n;
    struct ca_issue bad[] = {
        {"", CA_ROLE_WORKER, 0, 0},
        {NULL, CA_ROLE_WORKER, 0, 0},
        {"node/../x", CA_ROLE_WORKER, 0, 0},
        {NODE, (enum ca_role)7, 0, 0},
        {NODE, CA_ROLE_WORKER, 0, 600},
        {NODE, CA_ROLE_WORKER, 0, -DAY},
        {NODE, CA_ROLE_WORKER, 0, CA_ROOT_VALIDITY_S + 1},
    };

    root_new(&r, CLUSTER);
    ca_node_init(&n);
    cr_assert_eq(ca_node_csr_new(&n, &csr, NULL), 0);

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct ca_msg msg = {{0}};

        cr_expect_eq(ca_root_sign(&r, csr.data, csr.len, &bad[i], &der, &msg),
                     -EINVAL, "case %zu", i);
        cr_expect_neq(msg.text[0], '\0', "case %zu has no message", i);
    }
    cr_expect_null(der.data);

    ca_buf_fini(&csr);
    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* A certificate issued by the root verifies against it, and the verdict
 * fills the identity. */
Test(ca_node, verify_accepts_own_root)
{
    struct ca_cert_info info;
    struct ca_msg msg = {{0}};
    struct ca_root r;
    struct ca_node n;

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_MANAGER, 0, 0, &n);

    cr_expect_eq(ca_cert_verify(&r, n.cert, 0, &info, &msg), 0, "%s", msg.text);
    cr_expect_str_eq(info.node_id, NODE);
    cr_expect_eq(info.role, CA_ROLE_MANAGER);
    expect_queue_clean();

    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* A certificate from another root with the same cluster id and the same
 * names (an impostor CA) is "wrong CA". */
Test(ca_node, verify_refuses_foreign_root)
{
    struct ca_msg msg = {{0}};
    struct ca_root r, impostor;
    struct ca_node n;

    root_new(&r, CLUSTER);
    root_new(&impostor, CLUSTER);
    node_issue(&impostor, NODE, CA_ROLE_MANAGER, 0, 0, &n);

    int rc = ca_cert_verify(&r, n.cert, 0, NULL, &msg);

    cr_expect_eq(rc, CA_ERR_WRONG_CA, "%s: %s", ca_err_str(rc), msg.text);
    cr_expect(strstr(msg.text, NODE) != NULL, "%s", msg.text);
    expect_queue_clean();

    ca_node_fini(&n);
    ca_root_fini(&impostor);
    ca_root_fini(&r);
}

/* A certificate whose window ended yesterday is "expired", and a
 * current one is "expired" when checked past its notAfter. */
Test(ca_node, verify_refuses_expired)
{
    struct ca_msg msg = {{0}};
    struct ca_root r;
    struct ca_node old, cur;
    int64_t now = now_s();

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_MANAGER, now - 3 * DAY, 2 * DAY, &old);
    node_issue(&r, NODE, CA_ROLE_MANAGER, 0, 0, &cur);

    int rc = ca_cert_verify(&r, old.cert, 0, NULL, &msg);

    cr_expect_eq(rc, CA_ERR_EXPIRED, "%s: %s", ca_err_str(rc), msg.text);
    cr_expect(strstr(msg.text, "expired") != NULL, "%s", msg.text);
    cr_expect_eq(ca_cert_verify(&r, cur.cert, now + 91 * DAY, NULL, NULL),
                 CA_ERR_EXPIRED);
    cr_expect_eq(ca_cert_verify(&r, cur.cert, now + 89 * DAY, NULL, NULL), 0);
    expect_queue_clean();

    ca_node_fini(&old);
    ca_node_fini(&cur);
    ca_root_fini(&r);
}

/* A certificate whose window starts tomorrow is "not yet valid". */
Test(ca_node, verify_refuses_not_yet_valid)
{
    struct ca_root r;
    struct ca_node n;

    root_new(&r, CLUSTER);
    node_issue(&r, NODE, CA_ROLE_MANAGER, now_s() + DAY, DAY, &n);

    cr_expect_eq(ca_cert_verify(&r, n.cert, 0, NULL, NULL),
                 CA_ERR_NOT_YET_VALID);

    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* A certificate of another cluster is "wrong cluster", named in the
 * message, before any chain check. */
Test(ca_node, verify_refuses_other_cluster)
{
    struct ca_msg msg = {{0}};
    struct ca_root r, other;
    struct ca_node n;

    root_new(&r, CLUSTER);
    root_new(&other, "othercluster");
    node_issue(&other, NODE, CA_ROLE_MANAGER, 0, 0, &n);

    int rc = ca_cert_verify(&r, n.cert, 0, NULL, &msg);

    cr_expect_eq(rc, CA_ERR_WRONG_CLUSTER, "%s", ca_err_str(rc));
    cr_expect(strstr(msg.text, "othercluster") != NULL, "%s", msg.text);

    ca_node_fini(&n);
    ca_root_fini(&other);
    ca_root_fini(&r);
}

/* The root certificate itself is not a node identity. */
Test(ca_node, verify_refuses_root_as_node_cert)
{
    struct ca_cert_info info;
    struct ca_root r;

    root_new(&r, CLUSTER);

    cr_expect_eq(ca_cert_verify(&r, r.cert, 0, NULL, NULL), CA_ERR_BAD_CERT);
    cr_expect_eq(ca_cert_info(r.cert, &info, NULL), CA_ERR_BAD_CERT);

    ca_root_fini(&r);
}

/* A certificate for another node's key is refused by the node, which
 * keeps the one it had. */
Test(ca_node, cert_set_refuses_certificate_for_other_key)
{
    struct ca_buf der = {0};
    struct ca_msg msg = {{0}};
    struct ca_root r;
    struct ca_node a, b;
    X509 *before;

    root_new(&r, CLUSTER);
    node_issue(&r, "node-a", CA_ROLE_MANAGER, 0, 0, &a);
    node_issue(&r, "node-b", CA_ROLE_MANAGER, 0, 0, &b);
    before = a.cert;
    cr_assert_eq(ca_cert_to_der(b.cert, &der), 0);

    int rc = ca_node_cert_set(&a, der.data, der.len, &msg);

    cr_expect_eq(rc, CA_ERR_BAD_KEY, "%s", ca_err_str(rc));
    cr_expect_eq(a.cert, before);
    expect_queue_clean();

    ca_buf_fini(&der);
    ca_node_fini(&a);
    ca_node_fini(&b);
    ca_root_fini(&r);
}

/* ---- Join tokens ------------------------------------------------------ */

/* A new token is SHOAL-1-, 50 digest and 25 secret characters of
 * [0-9a-z], and its digest is SHA-256 of the DER CA certificate. */
Test(ca_token, new_token_has_format_and_digest)
{
    char text[CA_TOKEN_LEN + 1];
    struct ca_buf der = {0};
    uint8_t sum[32];
    struct ca_token t;
    struct ca_root r;

    root_new(&r, CLUSTER);
    cr_assert_eq(ca_cert_to_der(r.cert, &der), 0);
    SHA256(der.data, der.len, sum);

    cr_assert_eq(ca_token_new(der.data, der.len, text, NULL), 0);

    cr_expect_eq(strlen(text), 84);
    cr_expect(strncmp(text, "SHOAL-1-", 8) == 0, "%s", text);
    cr_expect_eq(text[58], '-');
    cr_expect_eq(strspn(text + 8, "0123456789abcdefghijklmnopqrstuvwxyz"), 50);
    cr_expect_eq(strspn(text + 59, "0123456789abcdefghijklmnopqrstuvwxyz"), 25);
    cr_assert_eq(ca_token_parse(text, &t, NULL), 0);
    cr_expect_arr_eq(t.digest, sum, 32);
    cr_expect_eq(ca_token_pin(&t, der.data, der.len, NULL), 0);

    ca_buf_fini(&der);
    ca_root_fini(&r);
}

/* The text form matches a vector computed independently (Python's
 * big-integer base 36): the format is fixed, not just self-consistent. */
Test(ca_token, format_matches_golden_vector)
{
    static const char want[] =
        "SHOAL-1-5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p-"
        "000avh9he7dy896m08s18udxr";
    char text[CA_TOKEN_LEN + 1];
    struct ca_token t, back;

    SHA256((const unsigned char *)"", 0, t.digest); /* SHA-256 of "" */
    for (int i = 0; i < 16; i++) {
        t.secret[i] = (uint8_t)i;
    }

    ca_token_format(&t, text);

    cr_expect_str_eq(text, want);
    cr_assert_eq(ca_token_parse(want, &back, NULL), 0);
    cr_expect_arr_eq(&back, &t, sizeof t);
}

/* Rotation (a second ca_token_new) keeps the digest and changes the
 * secret. */
Test(ca_token, rotation_changes_only_the_secret)
{
    char a[CA_TOKEN_LEN + 1], b[CA_TOKEN_LEN + 1];
    struct ca_token ta, tb;

    cr_assert_eq(ca_token_new((const uint8_t *)"ca", 2, a, NULL), 0);
    cr_assert_eq(ca_token_new((const uint8_t *)"ca", 2, b, NULL), 0);
    cr_assert_eq(ca_token_parse(a, &ta, NULL), 0);
    cr_assert_eq(ca_token_parse(b, &tb, NULL), 0);

    cr_expect_arr_eq(ta.digest, tb.digest, sizeof ta.digest);
    cr_expect_not(ca_token_secret_equal(&ta, &tb));
    cr_expect_str_neq(a, b);
}

struct bad_token {
    const char *text;
    int rc;
};

/* Every malformed shape gets its own code and a message that does not
 * repeat the secret; the largest valid values still parse. */
Test(ca_token, parse_refuses_each_malformed_shape)
{
#define D50 "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p"
#define S25 "000avh9he7dy896m08s18udxr"
    static const char dmax[] =
        "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof";
    static const char smax[] = "f5lxx1zz5pnorynqglhzmsp33";
    char longtok[CA_TOKEN_INPUT_MAX + 2];
    char ok[CA_TOKEN_LEN + 1];
    struct ca_token t;
    const struct bad_token bad[] = {
        {"", CA_ERR_TOKEN_EMPTY},
        {longtok, CA_ERR_TOKEN_TOO_LONG},
        {"SWMTKN-1-" D50 "-" S25, CA_ERR_TOKEN_PREFIX},
        {"shoal-1-" D50 "-" S25, CA_ERR_TOKEN_PREFIX},
        {"SHOAL", CA_ERR_TOKEN_PREFIX},
        {"SHOAL-1-" D50 S25, CA_ERR_TOKEN_PARTS},
        {"SHOAL-1-" D50 "-" S25 "-", CA_ERR_TOKEN_PARTS},
        {"SHOAL-1-" D50 "-" S25 "-x", CA_ERR_TOKEN_PARTS},
        {"SHOAL-2-" D50 "-" S25, CA_ERR_TOKEN_VERSION},
        {"SHOAL--" D50 "-" S25, CA_ERR_TOKEN_VERSION},
        {"SHOAL-01-" D50 "-" S25, CA_ERR_TOKEN_VERSION},
        {"SHOAL-1-" D50 "0-" S25, CA_ERR_TOKEN_DIGEST_LEN},
        {"SHOAL-1-"
         "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3"
         "-" S25,
         CA_ERR_TOKEN_DIGEST_LEN},
        {"SHOAL-1--" S25, CA_ERR_TOKEN_DIGEST_LEN},
        {"SHOAL-1-"
         "5OAQ0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p"
         "-" S25,
         CA_ERR_TOKEN_DIGEST_CHAR},
        {"SHOAL-1-"
         "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhk 3p"
         "-" S25,
         CA_ERR_TOKEN_DIGEST_CHAR},
        {"SHOAL-1-"
         "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtog"
         "-" S25,
         CA_ERR_TOKEN_DIGEST_RANGE},
        {"SHOAL-1-"
         "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
         "-" S25,
         CA_ERR_TOKEN_DIGEST_RANGE},
        {"SHOAL-1-" D50 "-"
         "000avh9he7dy896m08s18udx",
         CA_ERR_TOKEN_SECRET_LEN},
        {"SHOAL-1-" D50 "-" S25 "0", CA_ERR_TOKEN_SECRET_LEN},
        {"SHOAL-1-" D50 "-", CA_ERR_TOKEN_SECRET_LEN},
        {"SHOAL-1-" D50 "-" S25 "\n", CA_ERR_TOKEN_SECRET_LEN},
        {"SHOAL-1-" D50 "-"
         "000AVH9he7dy896m08s18udxr",
         CA_ERR_TOKEN_SECRET_CHAR},
        {"SHOAL-1-" D50 "-"
         "000avh9he7dy896m08s18udx\n",
         CA_ERR_TOKEN_SECRET_CHAR},
        {"SHOAL-1-" D50 "-"
         "f5lxx1zz5pnorynqglhzmsp34",
         CA_ERR_TOKEN_SECRET_RANGE},
        {"SHOAL-1-" D50 "-"
         "zzzzzzzzzzzzzzzzzzzzzzzzz",
         CA_ERR_TOKEN_SECRET_RANGE},
    };
#undef D50
#undef S25

    memset(longtok, 'a', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = '\0';

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct ca_msg msg = {{0}};
        int rc = ca_token_parse(bad[i].text, &t, &msg);

        cr_expect_eq(rc, bad[i].rc, "case %zu: got %s, want %s", i,
                     ca_err_str(rc), ca_err_str(bad[i].rc));
        cr_expect_neq(msg.text[0], '\0', "case %zu has no message", i);
        cr_expect_null(strstr(msg.text, "avh9he7dy896"),
                       "case %zu leaks the secret: %s", i, msg.text);
    }
    cr_expect_eq(ca_token_parse(NULL, &t, NULL), CA_ERR_TOKEN_EMPTY);

    snprintf(ok, sizeof ok, "SHOAL-1-%s-%s", dmax, smax);
    cr_expect_eq(ca_token_parse(ok, &t, NULL), 0, "largest values parse");
    for (size_t i = 0; i < sizeof t.secret; i++) {
        cr_expect_eq(t.secret[i], 0xff);
    }
}

/* Secrets are equal only when every byte is; a difference in the first
 * or last byte is seen alike. */
Test(ca_token, secret_compare_sees_any_byte)
{
    struct ca_token a, b;

    memset(&a, 0x5a, sizeof a);
    b = a;

    cr_expect(ca_token_secret_equal(&a, &b));
    b.secret[0] ^= 1;
    cr_expect_not(ca_token_secret_equal(&a, &b));
    b = a;
    b.secret[15] ^= 0x80;
    cr_expect_not(ca_token_secret_equal(&a, &b));
    b = a;
    b.digest[0] ^= 1; /* the digest is not part of the secret */
    cr_expect(ca_token_secret_equal(&a, &b));

    ca_token_clear(&a);
    for (size_t i = 0; i < sizeof a.secret; i++) {
        cr_expect_eq(a.secret[i], 0);
    }
}

/* The leader's check: the manager token grants manager, the worker token
 * worker; a rotated or invented secret, another CA's token, a malformed
 * one and a corrupt stored token are each told apart. */
Test(ca_token, check_grants_role_and_refuses_the_rest)
{
    char mgr[CA_TOKEN_LEN + 1], wrk[CA_TOKEN_LEN + 1];
    char rotated[CA_TOKEN_LEN + 1], foreign[CA_TOKEN_LEN + 1];
    const uint8_t *ca = (const uint8_t *)"our ca der";
    enum ca_role role = (enum ca_role) - 1;
    struct ca_msg msg = {{0}};

    cr_assert_eq(ca_token_new(ca, 10, mgr, NULL), 0);
    cr_assert_eq(ca_token_new(ca, 10, wrk, NULL), 0);
    cr_assert_eq(ca_token_new(ca, 10, rotated, NULL), 0);
    cr_assert_eq(ca_token_new((const uint8_t *)"their ca", 8, foreign, NULL),
                 0);

    cr_expect_eq(ca_token_check(mgr, mgr, wrk, &role, &msg), 0);
    cr_expect_eq(role, CA_ROLE_MANAGER);
    cr_expect_eq(ca_token_check(wrk, mgr, wrk, &role, &msg), 0);
    cr_expect_eq(role, CA_ROLE_WORKER);

    /* The old manager token after a rotation. */
    cr_expect_eq(ca_token_check(mgr, rotated, wrk, &role, &msg),
                 CA_ERR_TOKEN_SECRET);
    cr_expect(strstr(msg.text, "rotated") != NULL, "%s", msg.text);
    cr_expect_null(strstr(msg.text, mgr + 59), "%s", msg.text);
    cr_expect_eq(ca_token_check(wrk, mgr, NULL, &role, &msg),
                 CA_ERR_TOKEN_SECRET);
    cr_expect_eq(ca_token_check(foreign, mgr, wrk, &role, &msg),
                 CA_ERR_TOKEN_WRONG_CA);
    cr_expect_eq(ca_token_check("SHOAL-1-x-y", mgr, wrk, &role, &msg),
                 CA_ERR_TOKEN_DIGEST_LEN);
    cr_expect_eq(ca_token_check(mgr, "corrupt", wrk, &role, &msg), ERR_CORRUPT);
    cr_expect_eq(ca_token_check(mgr, mgr, "corrupt", &role, &msg), ERR_CORRUPT);
}

/* The joiner pins the CA: the certificate the token was made for
 * passes; another CA, or the same one with one byte changed, does not. */
Test(ca_token, pin_accepts_own_ca_and_refuses_others)
{
    char text[CA_TOKEN_LEN + 1];
    struct ca_buf ours = {0}, theirs = {0};
    struct ca_msg msg = {{0}};
    struct ca_root r, other;
    struct ca_token t;

    root_new(&r, CLUSTER);
    root_new(&other, CLUSTER);
    cr_assert_eq(ca_cert_to_der(r.cert, &ours), 0);
    cr_assert_eq(ca_cert_to_der(other.cert, &theirs), 0);
    cr_assert_eq(ca_token_new(ours.data, ours.len, text, NULL), 0);
    cr_assert_eq(ca_token_parse(text, &t, NULL), 0);

    cr_expect_eq(ca_token_pin(&t, ours.data, ours.len, &msg), 0);
    cr_expect_eq(ca_token_pin(&t, theirs.data, theirs.len, &msg),
                 CA_ERR_CA_MISMATCH);
    cr_expect(strstr(msg.text, "digest") != NULL, "%s", msg.text);
    ours.data[ours.len / 2] ^= 1;
    cr_expect_eq(ca_token_pin(&t, ours.data, ours.len, NULL),
                 CA_ERR_CA_MISMATCH);
    cr_expect_eq(ca_token_pin(&t, ours.data, ours.len - 1, NULL),
                 CA_ERR_CA_MISMATCH);

    ca_buf_fini(&ours);
    ca_buf_fini(&theirs);
    ca_root_fini(&r);
    ca_root_fini(&other);
}

/* ---- Files ------------------------------------------------------------ */

static void
cert_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s/%s", tdir, CA_DIR_NAME, name);
}

static mode_t
mode_of(const char *path)
{
    struct stat st;

    cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* Names in the certificates folder, sorted, joined with spaces. */
static void
list_dir(char *out, size_t cap)
{
    char path[128];
    struct dirent **ents;
    int n;

    snprintf(path, sizeof path, "%s/%s", tdir, CA_DIR_NAME);
    n = scandir(path, &ents, NULL, alphasort);
    cr_assert_geq(n, 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;

        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            cr_assert_lt(strlen(out) + strlen(name) + 2, cap);
            strcat(out, name);
            strcat(out, " ");
        }
        free(ents[i]);
    }
    free(ents);
}

static void
saved_root(struct ca_root *r)
{
    struct ca_msg msg = {{0}};

    root_new(r, CLUSTER);
    cr_assert_eq(ca_root_save(r, tdir, &msg), 0, "%s", msg.text);
}

/* A saved root loads back identical, with or without its key; the key is
 * 0600 and the folder 0700. */
Test(ca_files, root_save_load_round_trip)
{
    char path[128];
    struct ca_msg msg = {{0}};
    struct ca_root r, back, trust;

    saved_root(&r);
    ca_root_init(&back);
    ca_root_init(&trust);

    cr_assert_eq(ca_root_load(&back, tdir, true, &msg), 0, "%s", msg.text);
    cr_expect_eq(X509_cmp(back.cert, r.cert), 0);
    cr_expect_eq(EVP_PKEY_eq(back.key, r.key), 1);
    cr_expect_str_eq(back.cluster_id, CLUSTER);
    cr_assert_eq(ca_root_load(&trust, tdir, false, &msg), 0, "%s", msg.text);
    cr_expect_null(trust.key);
    cert_path(path, sizeof path, "ca.key");
    cr_expect_eq(mode_of(path), 0600);
    cert_path(path, sizeof path, "");
    cr_expect_eq(mode_of(path), 0700);
    expect_queue_clean();

    ca_root_fini(&r);
    ca_root_fini(&back);
    ca_root_fini(&trust);
}

/* A fresh state folder (no certificates folder, or no ca.crt in it) is
 * "not found", which tells the daemon to create a CA or join. */
Test(ca_files, load_of_fresh_state_is_not_found)
{
    char path[128];
    struct ca_root r;
    struct ca_node n;

    ca_root_init(&r);
    ca_node_init(&n);

    cr_expect_eq(ca_root_load(&r, tdir, true, NULL), ERR_NOTFOUND);
    snprintf(path, sizeof path, "%s/%s", tdir, CA_DIR_NAME);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_expect_eq(ca_root_load(&r, tdir, true, NULL), ERR_NOTFOUND);
    cr_expect_eq(ca_node_load(&n, tdir, NULL), ERR_NOTFOUND);
    cr_expect_null(r.cert);
}

/* A key file readable by others (0644) is refused, with a message that
 * names the file and its mode. */
Test(ca_files, load_refuses_key_mode_0644)
{
    char path[128];
    struct ca_msg msg = {{0}};
    struct ca_root r, back;

    saved_root(&r);
    cert_path(path, sizeof path, "ca.key");
    cr_assert_eq(chmod(path, 0644), 0);
    ca_root_init(&back);

    int rc = ca_root_load(&back, tdir, true, &msg);

    cr_expect_eq(rc, CA_ERR_KEY_MODE, "%s", ca_err_str(rc));
    cr_expect(strstr(msg.text, "ca.key") && strstr(msg.text, "0644"), "%s",
              msg.text);
    cr_expect_null(back.cert);
    cr_expect_eq(ca_root_load(&back, tdir, false, NULL), 0,
                 "the certificate alone is still usable");

    ca_root_fini(&back);
    ca_root_fini(&r);
}

/* A certificates folder open to others (0755) is refused on load and on
 * save. */
Test(ca_files, dir_mode_0755_is_refused)
{
    char path[128];
    struct ca_msg msg = {{0}};
    struct ca_root r, back;

    saved_root(&r);
    snprintf(path, sizeof path, "%s/%s", tdir, CA_DIR_NAME);
    cr_assert_eq(chmod(path, 0755), 0);
    ca_root_init(&back);

    int rc = ca_root_load(&back, tdir, true, &msg);

    cr_expect_eq(rc, CA_ERR_DIR_MODE, "%s", ca_err_str(rc));
    cr_expect(strstr(msg.text, "0755") != NULL, "%s", msg.text);
    cr_expect_eq(ca_root_save(&r, tdir, NULL), CA_ERR_DIR_MODE);

    ca_root_fini(&r);
}

/* A certificate writable by the group is refused: it is a trust anchor. */
Test(ca_files, load_refuses_group_writable_cert)
{
    char path[128];
    struct ca_root r, back;

    saved_root(&r);
    cert_path(path, sizeof path, "ca.crt");
    cr_assert_eq(chmod(path, 0620), 0);
    ca_root_init(&back);

    cr_expect_eq(ca_root_load(&back, tdir, false, NULL), CA_ERR_FILE_MODE);

    ca_root_fini(&r);
}

/* A key file or folder owned by another user is refused even with a
 * strict mode. Needs root to chown; skipped otherwise. */
Test(ca_files, load_refuses_other_owner)
{
    char path[128];
    struct ca_msg msg = {{0}};
    struct ca_root r, back;

    if (geteuid() != 0) {
        cr_skip_test("chown needs root");
    }
    saved_root(&r);
    cert_path(path, sizeof path, "ca.key");
    cr_assert_eq(chown(path, 65534, 65534), 0);
    ca_root_init(&back);

    int rc = ca_root_load(&back, tdir, true, &msg);

    cr_expect_eq(rc, CA_ERR_OWNER, "%s", ca_err_str(rc));
    cr_expect(strstr(msg.text, "65534") != NULL, "%s", msg.text);

    cr_assert_eq(chown(path, 0, 0), 0);
    snprintf(path, sizeof path, "%s/%s", tdir, CA_DIR_NAME);
    cr_assert_eq(chown(path, 65534, 65534), 0);
    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), CA_ERR_OWNER);

    ca_root_fini(&r);
}

/* A key that is a symbolic link (even to a private file), a FIFO, or a
 * symlinked folder is refused without being followed or blocking. */
Test(ca_files, load_refuses_links_and_special_files)
{
    char path[128], target[128];
    struct ca_root r, back;

    saved_root(&r);
    cert_path(path, sizeof path, "ca.key");
    snprintf(target, sizeof target, "%s/elsewhere.key", tdir);
    cr_assert_eq(rename(path, target), 0);
    cr_assert_eq(symlink(target, path), 0);
    ca_root_init(&back);

    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), CA_ERR_NOT_REGULAR);

    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), CA_ERR_NOT_REGULAR);

    snprintf(path, sizeof path, "%s/%s", tdir, CA_DIR_NAME);
    snprintf(target, sizeof target, "%s/real", tdir);
    cr_assert_eq(rename(path, target), 0);
    cr_assert_eq(symlink(target, path), 0);
    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), CA_ERR_NOT_REGULAR);
    cr_expect_null(back.cert);

    ca_root_fini(&r);
}

/* Saving (twice, over the first) leaves exactly the final files, and a
 * temporary left by a crash is cleaned up by the next save. */
Test(ca_files, atomic_write_leaves_no_temp_files)
{
    char path[128], names[256];
    struct ca_root r;
    struct ca_node n;
    int fd;

    saved_root(&r);
    cr_assert_eq(ca_root_save(&r, tdir, NULL), 0);
    list_dir(names, sizeof names);
    cr_expect_str_eq(names, "ca.crt ca.key ");

    cert_path(path, sizeof path, ".node.key.tmp");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "half a key", 10), 10);
    close(fd);
    node_issue(&r, NODE, CA_ROLE_MANAGER, 0, 0, &n);
    cr_assert_eq(ca_node_save(&n, tdir, NULL), 0);

    list_dir(names, sizeof names);
    cr_expect_str_eq(names, "ca.crt ca.key node.crt node.key ");
    cert_path(path, sizeof path, "node.key");
    cr_expect_eq(mode_of(path), 0600);

    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* A node's key and certificate load back as a matching pair; a key of
 * another node in their place is refused. */
Test(ca_files, node_save_load_round_trip)
{
    char path[128], other_path[128];
    struct ca_msg msg = {{0}};
    struct ca_node n, back, other;
    struct ca_root r;

    saved_root(&r);
    node_issue(&r, NODE, CA_ROLE_MANAGER, 0, 0, &n);
    cr_assert_eq(ca_node_save(&n, tdir, &msg), 0, "%s", msg.text);
    ca_node_init(&back);

    cr_assert_eq(ca_node_load(&back, tdir, &msg), 0, "%s", msg.text);
    cr_expect_eq(X509_cmp(back.cert, n.cert), 0);
    cr_expect_eq(EVP_PKEY_eq(back.key, n.key), 1);
    cr_expect_eq(ca_cert_verify(&r, back.cert, 0, NULL, NULL), 0);
    expect_queue_clean();
    ca_node_fini(&back);

    /* Another node's key, saved in its own folder, moved over ours. */
    snprintf(other_path, sizeof other_path, "%s/other", tdir);
    cr_assert_eq(mkdir(other_path, 0700), 0);
    node_issue(&r, "node-b", CA_ROLE_MANAGER, 0, 0, &other);
    cr_assert_eq(ca_node_save(&other, other_path, NULL), 0);
    snprintf(other_path, sizeof other_path, "%s/other/%s/node.key", tdir,
             CA_DIR_NAME);
    cert_path(path, sizeof path, "node.key");
    cr_assert_eq(rename(other_path, path), 0);
    cr_expect_eq(ca_node_load(&back, tdir, &msg), CA_ERR_BAD_KEY);
    cr_expect_null(back.key);
    expect_queue_clean();

    ca_node_fini(&other);
    ca_node_fini(&n);
    ca_root_fini(&r);
}

/* A key file that is garbage, an encrypted key (refused, never prompted
 * for) and an oversized file are each refused. */
Test(ca_files, load_refuses_bad_key_files)
{
    char path[128];
    struct ca_root r, back;
    FILE *f;

    saved_root(&r);
    cert_path(path, sizeof path, "ca.key");
    ca_root_init(&back);

    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n", f);
    fclose(f);
    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), CA_ERR_BAD_KEY);

    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_PKCS8PrivateKey(f, r.key, EVP_aes_128_cbc(), "pass",
                                           4, NULL, NULL),
                 1);
    fclose(f);
    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), CA_ERR_BAD_KEY);

    cr_assert_eq(truncate(path, CA_FILE_MAX + 1), 0);
    cr_expect_eq(ca_root_load(&back, tdir, true, NULL), ERR_TOOBIG);
    cr_expect_null(back.cert);
    expect_queue_clean();

    ca_root_fini(&r);
}
