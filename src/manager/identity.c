/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * identity.c: this manager's certificates (DESIGN.md, "Managers,
 * certificates and forwarding").
 *
 * The first manager of a cluster creates the root CA (src/ca: ECDSA
 * P-256) and signs its own node certificate with it: node id in CN,
 * role in OU, cluster id in O. Both go to <state>/certificates/, keys
 * 0600 in a 0700 folder, and the CA's certificate and key also go into
 * the cluster object, so that the join tokens pin this CA and any later
 * leader can sign. A restart loads them again; src/ca checks the modes
 * on the open files, and a key or folder open to others stops the start.
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/base.h"

/* Copy a buffer of src/ca into a wire byte field (the CA's buffers come
 * from OpenSSL's allocator). Returns 0 or ERR_NOMEM. */
static int
identity_bytes(struct shoal_bytes *out, const struct ca_buf *in)
{
    out->data = malloc(in->len);
    if (!out->data) {
        return ERR_NOMEM;
    }
    memcpy(out->data, in->data, in->len);
    out->len = in->len;
    return 0;
}

/* Keep the DER forms of the root that the cluster object carries. */
static int
identity_keep_der(struct manager *m)
{
    struct ca_buf cert = {0};
    struct ca_buf key = {0};
    int rc;

    rc = ca_cert_to_der(m->ca_root.cert, &cert);
    if (rc == 0) {
        rc = identity_bytes(&m->ca_cert_der, &cert);
    }
    if (rc == 0 && m->ca_root.key) {
        rc = ca_key_to_der(m->ca_root.key, &key);
        if (rc == 0) {
            rc = identity_bytes(&m->ca_key_der, &key);
        }
    }
    ca_buf_fini(&cert);
    ca_buf_fini(&key);
    return rc;
}

static void
identity_log(const char *what, int rc, const struct ca_msg *msg)
{
    log_err("identity", "%s: %s%s%s", what, ca_err_str(rc),
            msg->text[0] ? ": " : "", msg->text);
}

int
identity_create(struct manager *m)
{
    struct ca_issue iss = {.node_id = m->node_id, .role = CA_ROLE_MANAGER};
    struct ca_buf csr = {0};
    struct ca_buf cert = {0};
    struct ca_msg msg = {{0}};
    int rc;

    identity_fini(m);
    rc = ca_root_create(&m->ca_root, m->cluster_id, &msg);
    if (rc != 0) {
        identity_log("cannot create the root CA", rc, &msg);
        return rc;
    }
    rc = ca_node_csr_new(&m->ca_node, &csr, &msg);
    if (rc == 0) {
        rc = ca_root_sign(&m->ca_root, csr.data, csr.len, &iss, &cert, &msg);
    }
    if (rc == 0) {
        rc = ca_node_cert_set(&m->ca_node, cert.data, cert.len, &msg);
    }
    ca_buf_fini(&csr);
    ca_buf_fini(&cert);
    if (rc != 0) {
        identity_log("cannot sign this manager's certificate", rc, &msg);
        return rc;
    }
    /* The key before the certificate, each durable before the next
     * (src/ca): a crash leaves no certificate without its key. */
    rc = ca_root_save(&m->ca_root, m->cfg.state_dir, &msg);
    if (rc == 0) {
        rc = ca_node_save(&m->ca_node, m->cfg.state_dir, &msg);
    }
    if (rc != 0) {
        identity_log("cannot store the certificates", rc, &msg);
        return rc;
    }
    rc = identity_keep_der(m);
    if (rc != 0) {
        return rc;
    }
    log_notice("identity", "created the root CA and this manager's "
               "certificate: dir=%s/%s cluster=%s node=%s",
               m->cfg.state_dir, CA_DIR_NAME, m->cluster_id, m->node_id);
    return 0;
}

int
identity_load(struct manager *m)
{
    struct ca_msg msg = {{0}};
    struct ca_cert_info info;
    int rc;

    identity_fini(m);
    /* A manager that joined has no CA key on disk: any leader signs with
     * the key of the cluster object. */
    rc = ca_root_load(&m->ca_root, m->cfg.state_dir, !m->joined, &msg);
    if (rc == ERR_NOTFOUND && !m->joined) {
        /* A state written before managers had certificates: it gets
         * them now; its join tokens still pin the cluster id until they
         * are rotated. */
        log_notice("identity", "no certificates in the state directory; "
                   "creating them (rotate the join tokens to pin the new "
                   "CA): dir=%s/%s", m->cfg.state_dir, CA_DIR_NAME);
        return identity_create(m);
    }
    if (rc == 0) {
        rc = ca_node_load(&m->ca_node, m->cfg.state_dir, &msg);
    }
    if (rc != 0) {
        identity_log("cannot load the certificates", rc, &msg);
        /* A key others may read is no longer secret: refuse to start, as
         * for a state directory open to others. */
        if (rc == CA_ERR_DIR_MODE || rc == CA_ERR_KEY_MODE ||
            rc == CA_ERR_FILE_MODE || rc == CA_ERR_OWNER) {
            return -EPERM;
        }
        return rc;
    }
    rc = ca_cert_verify(&m->ca_root, m->ca_node.cert, 0, &info, &msg);
    if (rc == 0 && (strcmp(info.node_id, m->node_id) != 0 ||
                    strcmp(info.cluster_id, m->cluster_id) != 0)) {
        snprintf(msg.text, sizeof msg.text, "it names node %s of cluster %s",
                 info.node_id, info.cluster_id);
        rc = CA_ERR_BAD_CERT;
    }
    if (rc != 0) {
        identity_log("this manager's certificate is not valid", rc, &msg);
        return rc;
    }
    return identity_keep_der(m);
}

void
identity_fini(struct manager *m)
{
    ca_root_fini(&m->ca_root);
    ca_node_fini(&m->ca_node);
    free(m->ca_cert_der.data);
    m->ca_cert_der = (struct shoal_bytes){0};
    if (m->ca_key_der.data) {
        OPENSSL_cleanse(m->ca_key_der.data, m->ca_key_der.len);
    }
    free(m->ca_key_der.data);
    m->ca_key_der = (struct shoal_bytes){0};
}
