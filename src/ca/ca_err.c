/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_err.c: messages, error names and the small helpers of src/ca.
 *
 * Turns OpenSSL's per-thread error queue into one line for the caller's
 * log and always leaves the queue empty: a stale entry would make a later
 * SSL_get_error() on a peer connection report a failure that is not its
 * own. Nothing here ever sees key bytes or token secrets.
 */
#include "ca/ca.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "ca/ca_int.h"

static void
msg_vset(struct ca_msg *msg, const char *fmt, va_list ap)
{
    if (msg != NULL) {
        vsnprintf(msg->text, sizeof msg->text, fmt, ap);
    }
}

int
ca__fail(struct ca_msg *msg, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vset(msg, fmt, ap);
    va_end(ap);
    return rc;
}

/* Append "; lib: reason" for each queued error while there is room, and
 * pop every entry whatever the room. */
static void
drain_queue(struct ca_msg *msg)
{
    size_t used = msg != NULL ? strlen(msg->text) : 0;
    unsigned long e;
    int n = 0;

    while ((e = ERR_get_error()) != 0) {
        const char *lib = ERR_lib_error_string(e);
        const char *reason = ERR_reason_error_string(e);
        int w;

        n++;
        if (msg == NULL || used + 1 >= sizeof msg->text) {
            continue;
        }
        w = snprintf(msg->text + used, sizeof msg->text - used, "%s%s: %s",
                     n == 1 ? ": " : "; ", lib ? lib : "openssl",
                     reason ? reason : "unknown reason");
        if (w > 0) {
            used += (size_t)w;
            if (used >= sizeof msg->text) {
                used = sizeof msg->text - 1;
            }
        }
    }
    if (n == 0 && msg != NULL && used + 1 < sizeof msg->text) {
        snprintf(msg->text + used, sizeof msg->text - used,
                 ": no openssl detail");
    }
}

int
ca__tls_fail(struct ca_msg *msg, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vset(msg, fmt, ap);
    va_end(ap);
    drain_queue(msg);
    return rc;
}

int
ca_tls_error(struct ca_msg *msg, const char *what)
{
    return ca__tls_fail(msg, ERR_TLS, "%s", what);
}

const char *
ca_err_str(int rc)
{
    switch (rc) {
    case CA_ERR_DIR_MODE:
        return "certificates folder open to group or others";
    case CA_ERR_KEY_MODE:
        return "key file readable by group or others";
    case CA_ERR_FILE_MODE:
        return "certificate file writable by group or others";
    case CA_ERR_OWNER:
        return "file owned by another user";
    case CA_ERR_NOT_REGULAR:
        return "symbolic link or not a regular file";
    case CA_ERR_BAD_CERT:
        return "not a valid shoal certificate";
    case CA_ERR_BAD_KEY:
        return "key is not P-256 or does not match";
    case CA_ERR_CSR_MALFORMED:
        return "malformed certificate request";
    case CA_ERR_CSR_SIG:
        return "certificate request signature does not verify";
    case CA_ERR_EXPIRED:
        return "certificate expired";
    case CA_ERR_NOT_YET_VALID:
        return "certificate not yet valid";
    case CA_ERR_WRONG_CA:
        return "certificate not signed by this cluster's CA";
    case CA_ERR_WRONG_CLUSTER:
        return "certificate of another cluster";
    case CA_ERR_CERT_INVALID:
        return "certificate chain does not verify";
    case CA_ERR_CA_MISMATCH:
        return "CA certificate does not match the join token";
    case CA_ERR_TOKEN_EMPTY:
        return "join token empty";
    case CA_ERR_TOKEN_TOO_LONG:
        return "join token too long";
    case CA_ERR_TOKEN_PREFIX:
        return "join token prefix is not SHOAL-";
    case CA_ERR_TOKEN_PARTS:
        return "join token does not have 4 parts";
    case CA_ERR_TOKEN_VERSION:
        return "join token version not supported";
    case CA_ERR_TOKEN_DIGEST_LEN:
        return "join token digest length wrong";
    case CA_ERR_TOKEN_DIGEST_CHAR:
        return "join token digest has a bad character";
    case CA_ERR_TOKEN_DIGEST_RANGE:
        return "join token digest out of range";
    case CA_ERR_TOKEN_SECRET_LEN:
        return "join token secret length wrong";
    case CA_ERR_TOKEN_SECRET_CHAR:
        return "join token secret has a bad character";
    case CA_ERR_TOKEN_SECRET_RANGE:
        return "join token secret out of range";
    case CA_ERR_TOKEN_WRONG_CA:
        return "join token is for another CA";
    case CA_ERR_TOKEN_SECRET:
        return "join token is wrong or was rotated";
    default:
        return err_str(rc);
    }
}

const char *
ca_role_name(enum ca_role role)
{
    switch (role) {
    case CA_ROLE_WORKER:
        return "swarm-worker";
    case CA_ROLE_MANAGER:
        return "swarm-manager";
    default:
        return "unknown";
    }
}

void
ca_buf_fini(struct ca_buf *b)
{
    if (b->data != NULL) {
        OPENSSL_clear_free(b->data, b->len);
    }
    b->data = NULL;
    b->len = 0;
}

int
ca__buf_take(struct ca_buf *out, unsigned char *data, int len)
{
    if (len <= 0 || data == NULL) {
        return ERR_TLS;
    }
    out->data = data;
    out->len = (size_t)len;
    return 0;
}

bool
ca__id_valid(const char *s)
{
    size_t n;

    if (s == NULL) {
        return false;
    }
    n = strnlen(s, CA_ID_MAX + 1);
    if (n == 0 || n > CA_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                  (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-';

        if (!ok) {
            return false;
        }
    }
    return true;
}

bool
ca__key_is_p256(const EVP_PKEY *key)
{
    char group[32];
    size_t len = 0;

    if (key == NULL || !EVP_PKEY_is_a(key, "EC")) {
        return false;
    }
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof group, &len) != 1) {
        ERR_clear_error(); /* explicit curve parameters: not ours */
        return false;
    }
    return strcmp(group, "prime256v1") == 0;
}

int
ca__key_new(EVP_PKEY **out, struct ca_msg *msg)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");

    if (key == NULL) {
        return ca_tls_error(msg, "generating a P-256 key");
    }
    *out = key;
    return 0;
}

int64_t
ca__now_s(void)
{
    return time_now_ns() / 1000000000;
}
