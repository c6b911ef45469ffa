/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_token.c: a libFuzzer target for the join-token parser and the
 * other untrusted inputs of src/ca: the CA certificate a joining node
 * downloads and pins, and the CSR a leader signs.
 *
 * The first byte picks a mode; the rest is the mode's input:
 *
 *   0  a token text (up to the first NUL): ca_token_parse(), and
 *      ca_token_check() of it against a fixed pair of cluster tokens.
 *   1  three u16-length fields: presented, manager and worker texts (an
 *      empty worker field stands for "workers cannot join"), checked
 *      with ca_token_check(): stored tokens are untrusted too when the
 *      cluster object was damaged.
 *   2  a u16-length token text, then DER bytes: ca_token_pin() of the
 *      bytes under that token and under a token made for them; then the
 *      bytes as a certificate (ca_cert_from_der, ca_cert_info,
 *      ca_cert_verify against a root made at the first run) and as a root
 *      CA (ca_root_from_der).
 *   3  DER bytes as a CSR, signed by that root (ca_root_sign).
 *
 * Properties: a parsed token formats back to the very same text (the
 * parser is strict, so there is one spelling of a token); a refusal
 * message never holds the secret part; a role is granted only to the
 * exact text of a stored token; a pin succeeds exactly when SHA-256 of
 * the bytes is the token's digest; a signed certificate verifies under
 * the root and names the node, cluster and role it was issued for.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <openssl/x509.h>

#include "base/base.h"
#include "ca/ca.h"
#include "fuzz.h"

#define CLUSTER "fuzzcluster"

/* The cluster's current tokens for mode 0: one CA, two secrets. */
static const char tok_manager[] =
    "SHOAL-1-0000000000000000000000000000000000000000000000000a-"
    "0000000000000000000000001";
static const char tok_worker[] =
    "SHOAL-1-0000000000000000000000000000000000000000000000000a-"
    "0000000000000000000000002";

static struct ca_root root; /* made at the first run that needs it */
static bool root_ready;

/* A secret part of 8 characters or more must not be echoed in msg. */
static void
check_msg_hides_secret(const char *text, const struct ca_msg *msg)
{
    const char *p = text;
    char part[CA_TOKEN_INPUT_MAX + 1];
    size_t len;

    for (int dashes = 0; dashes < 3; dashes++) {
        p = strchr(p, '-');
        if (!p) {
            return;
        }
        p++;
    }
    len = strcspn(p, "-");
    if (len < 8 || len > CA_TOKEN_INPUT_MAX) {
        return;
    }
    memcpy(part, p, len);
    part[len] = '\0';
    FUZZ_CHECK(strstr(msg->text, part) == NULL);
}

/* Mode 0: one text, parsed and checked. */
static void
fuzz_text(const char *text)
{
    char again[CA_TOKEN_LEN + 1];
    struct ca_token t;
    struct ca_msg msg = {{0}};
    enum ca_role role;
    int rc;

    if (ca_token_parse(text, &t, &msg) == 0) {
        ca_token_format(&t, again);
        FUZZ_CHECK(strcmp(again, text) == 0);
    } else {
        FUZZ_CHECK(fuzz_all_zero(&t, sizeof t));
        check_msg_hides_secret(text, &msg);
    }
    ca_token_clear(&t);

    memset(&msg, 0, sizeof msg);
    rc = ca_token_check(text, tok_manager, tok_worker, &role, &msg);
    FUZZ_CHECK(
        rc != 0 ||
        strcmp(text, role == CA_ROLE_MANAGER ? tok_manager : tok_worker) == 0);
    if (rc != 0) {
        check_msg_hides_secret(text, &msg);
    }
}

/* Mode 1: the stored tokens come from the input too. */
static void
fuzz_check(struct fuzz_in *in)
{
    const uint8_t *f[3] = {NULL, NULL, NULL};
    size_t n[3] = {0, 0, 0};
    char *s[3] = {NULL, NULL, NULL};
    enum ca_role role;
    int rc;

    for (int i = 0; i < 3; i++) {
        if (!fuzz_field(in, &f[i], &n[i])) {
            f[i] = (const uint8_t *)"";
            n[i] = 0;
        }
        s[i] = fuzz_str(f[i], n[i]);
        if (!s[i]) {
            goto out_free;
        }
    }
    rc = ca_token_check(s[0], s[1], s[2][0] ? s[2] : NULL, &role, NULL);
    if (rc == 0 && role == CA_ROLE_MANAGER) {
        FUZZ_CHECK(strcmp(s[0], s[1]) == 0);
    } else if (rc == 0) {
        FUZZ_CHECK(role == CA_ROLE_WORKER && strcmp(s[0], s[2]) == 0);
    }

out_free:
    for (int i = 0; i < 3; i++) {
        free(s[i]);
    }
}

static int
root_make(void)
{
    if (!root_ready) {
        ca_root_init(&root);
        if (ca_root_create(&root, CLUSTER, NULL) != 0) {
            return -1;
        }
        root_ready = true;
    }
    return 0;
}

/* Mode 2: bytes offered as the CA certificate, or as a node's. */
static void
fuzz_der(struct fuzz_in *in)
{
    const uint8_t *f;
    size_t n = 0;
    char *text;
    struct ca_token t, mine;
    struct ca_cert_info info;
    struct ca_root r;
    uint8_t sum[32];
    X509 *cert = NULL;
    int rc;

    if (!fuzz_field(in, &f, &n)) {
        f = (const uint8_t *)"";
    }
    text = fuzz_str(f, n);
    if (!text) {
        return;
    }
    SHA256(in->p, in->n, sum);
    if (ca_token_parse(text, &t, NULL) == 0) {
        rc = ca_token_pin(&t, in->p, in->n, NULL);
        FUZZ_CHECK((rc == 0) == (memcmp(sum, t.digest, sizeof sum) == 0));
    }
    ca_token_clear(&t);
    free(text);
    memset(&mine, 0, sizeof mine);
    memcpy(mine.digest, sum, sizeof sum);
    FUZZ_CHECK(ca_token_pin(&mine, in->p, in->n, NULL) == 0);

    if (ca_cert_from_der(&cert, in->p, in->n, NULL) == 0) {
        ca_cert_info(cert, &info, NULL);
        if (root_make() == 0) {
            ca_cert_verify(&root, cert, 0, &info, NULL);
        }
        X509_free(cert);
    }
    ca_root_init(&r);
    if (ca_root_from_der(&r, in->p, in->n, NULL, 0, NULL) == 0) {
        FUZZ_CHECK(r.cert != NULL && r.key == NULL);
    }
    ca_root_fini(&r);
}

/* Mode 3: a CSR from a joining node, signed if it deserves it. */
static void
fuzz_csr(const uint8_t *p, size_t n)
{
    struct ca_issue iss = {.node_id = "fuzznode1", .role = CA_ROLE_WORKER};
    struct ca_buf der = {0};
    struct ca_cert_info info;
    X509 *cert = NULL;

    if (root_make() != 0 || ca_root_sign(&root, p, n, &iss, &der, NULL) != 0) {
        return;
    }
    FUZZ_CHECK(ca_cert_from_der(&cert, der.data, der.len, NULL) == 0);
    FUZZ_CHECK(ca_cert_verify(&root, cert, 0, &info, NULL) == 0);
    FUZZ_CHECK(strcmp(info.node_id, iss.node_id) == 0);
    FUZZ_CHECK(strcmp(info.cluster_id, CLUSTER) == 0);
    FUZZ_CHECK(info.role == CA_ROLE_WORKER);
    X509_free(cert);
    ca_buf_fini(&der);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    char *text;

    log_set_level(LOG_CRIT);
    switch (fuzz_u8(&in) % 4) {
    case 0:
        text = fuzz_str(in.p, in.n);
        if (text) {
            fuzz_text(text);
            free(text);
        }
        break;
    case 1:
        fuzz_check(&in);
        break;
    case 2:
        fuzz_der(&in);
        break;
    default:
        fuzz_csr(in.p, in.n);
        break;
    }
    return 0;
}
