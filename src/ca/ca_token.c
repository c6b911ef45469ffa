/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ca_token.c: join tokens: make, parse, compare, and pin the CA.
 *
 * Format (SWARMKIT.md 6, shoal's prefix), 84 characters:
 *
 *   SHOAL-1-<digest: 50 x [0-9a-z]>-<secret: 25 x [0-9a-z]>
 *   0     6 8                     58 59                    84
 *
 * Both numbers are big-endian base 36, left-padded with '0': the digest
 * is SHA-256 of the DER CA certificate (36^50 > 2^256), the secret 128
 * random bits (36^25 > 2^128). Parsing is strict because the text comes
 * from an operator or a network peer; the secret is compared only with
 * CRYPTO_memcmp and never written into a message.
 */
#include "ca/ca.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "ca/ca_int.h"

#define DIGITS "0123456789abcdefghijklmnopqrstuvwxyz"

_Static_assert(CA_TOKEN_LEN == 84, "the token length is part of the format");

/* Write the big-endian number in[0..n) as width base-36 digits. */
static void
b36_encode(const uint8_t *in, size_t n, char *out, size_t width)
{
    uint8_t num[32];

    ASSERT(n <= sizeof num);
    memcpy(num, in, n);

    /* Long division by 36, one digit per pass, least significant last. */
    for (size_t pos = width; pos-- > 0;) {
        unsigned rem = 0;

        for (size_t i = 0; i < n; i++) {
            unsigned cur = rem * 256 + num[i];

            num[i] = (uint8_t)(cur / 36);
            rem = cur % 36;
        }
        out[pos] = DIGITS[rem];
    }
    OPENSSL_cleanse(num, sizeof num);
}

static int
b36_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decode width digits of s (already checked to be digits) into the
 * big-endian out[0..n). Returns false when the value needs more than n
 * bytes. */
static bool
b36_decode(const char *s, size_t width, uint8_t *out, size_t n)
{
    memset(out, 0, n);
    for (size_t i = 0; i < width; i++) {
        unsigned carry = (unsigned)b36_digit(s[i]);

        for (size_t j = n; j-- > 0;) {
            unsigned cur = out[j] * 36u + carry;

            out[j] = (uint8_t)(cur & 0xff);
            carry = cur >> 8;
        }
        if (carry != 0) {
            return false;
        }
    }
    return true;
}

static int
sha256(const uint8_t *data, size_t len, uint8_t out[32], struct ca_msg *msg)
{
    unsigned n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        return ca_tls_error(msg, "hashing the CA certificate");
    }
    return 0;
}

void
ca_token_format(const struct ca_token *t, char out[CA_TOKEN_LEN + 1])
{
    char *p = out;

    memcpy(p, CA_TOKEN_PREFIX, strlen(CA_TOKEN_PREFIX));
    p += strlen(CA_TOKEN_PREFIX);
    b36_encode(t->digest, sizeof t->digest, p, CA_TOKEN_DIGEST_CHARS);
    p += CA_TOKEN_DIGEST_CHARS;
    *p++ = '-';
    b36_encode(t->secret, sizeof t->secret, p, CA_TOKEN_SECRET_CHARS);
    p += CA_TOKEN_SECRET_CHARS;
    *p = '\0';
    ASSERT(p == out + CA_TOKEN_LEN);
}

int
ca_token_new(const uint8_t *ca_der, size_t len, char out[CA_TOKEN_LEN + 1],
             struct ca_msg *msg)
{
    struct ca_token t;
    int rc;

    out[0] = '\0';
    rc = sha256(ca_der, len, t.digest, msg);
    if (rc != 0) {
        return rc;
    }
    if (rand_bytes(t.secret, sizeof t.secret) != 0) {
        return ca_tls_error(msg, "drawing a token secret");
    }
    ca_token_format(&t, out);
    ca_token_clear(&t);
    return 0;
}

/* Check one number part: its length, its characters, its range. Offsets
 * in messages count from the start of the token. */
static int
part_parse(const char *part, size_t len, size_t offset, size_t width,
           uint8_t *out, size_t n, bool secret, struct ca_msg *msg)
{
    const char *what = secret ? "secret" : "digest";

    if (len != width) {
        return ca__fail(
            msg, secret ? CA_ERR_TOKEN_SECRET_LEN : CA_ERR_TOKEN_DIGEST_LEN,
            "join token %s part has %zu characters, expected %zu", what, len,
            width);
    }
    for (size_t i = 0; i < len; i++) {
        if (b36_digit(part[i]) < 0) {
            return ca__fail(msg,
                            secret ? CA_ERR_TOKEN_SECRET_CHAR
                                   : CA_ERR_TOKEN_DIGEST_CHAR,
                            "join token %s part has a character outside "
                            "[0-9a-z] at offset %zu (tokens are lowercase)",
                            what, offset + i);
        }
    }
    if (!b36_decode(part, len, out, n)) {
        return ca__fail(
            msg, secret ? CA_ERR_TOKEN_SECRET_RANGE : CA_ERR_TOKEN_DIGEST_RANGE,
            "join token %s part is larger than %zu bits", what, n * 8);
    }
    return 0;
}

/* Structural checks, in the order a person would fix them. */
static int
token_parse(const char *text, struct ca_token *t, struct ca_msg *msg)
{
    const char *parts[4];
    size_t lens[4];
    size_t len, n_parts = 1;
    int rc;

    if (text == NULL || text[0] == '\0') {
        return ca__fail(msg, CA_ERR_TOKEN_EMPTY, "join token is empty");
    }
    len = strnlen(text, CA_TOKEN_INPUT_MAX + 1);
    if (len > CA_TOKEN_INPUT_MAX) {
        return ca__fail(msg, CA_ERR_TOKEN_TOO_LONG,
                        "join token is longer than %d characters, expected "
                        "%d",
                        CA_TOKEN_INPUT_MAX, CA_TOKEN_LEN);
    }
    if (strncmp(text, "SHOAL-", 6) != 0) {
        return ca__fail(msg, CA_ERR_TOKEN_PREFIX,
                        strncmp(text, "SWMTKN-", 7) == 0
                            ? "join token is a Docker Swarm token, not a "
                              "shoal one (SHOAL-1-...)"
                            : "join token does not start with SHOAL-");
    }

    parts[0] = text;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '-') {
            continue;
        }
        if (n_parts < ARRAY_LEN(parts)) {
            lens[n_parts - 1] = (size_t)(text + i - parts[n_parts - 1]);
            parts[n_parts] = text + i + 1;
        }
        n_parts++;
    }
    if (n_parts != ARRAY_LEN(parts)) {
        return ca__fail(msg, CA_ERR_TOKEN_PARTS,
                        "join token has %zu parts separated by '-', "
                        "expected 4 (SHOAL-1-<digest>-<secret>)",
                        n_parts);
    }
    lens[3] = (size_t)(text + len - parts[3]);

    if (lens[1] != 1 || parts[1][0] != '1') {
        return ca__fail(msg, CA_ERR_TOKEN_VERSION,
                        "join token version \"%.*s\" is not supported "
                        "(only 1)",
                        (int)(lens[1] < 8 ? lens[1] : 8), parts[1]);
    }

    rc = part_parse(parts[2], lens[2], (size_t)(parts[2] - text),
                    CA_TOKEN_DIGEST_CHARS, t->digest, sizeof t->digest, false,
                    msg);
    if (rc != 0) {
        return rc;
    }
    return part_parse(parts[3], lens[3], (size_t)(parts[3] - text),
                      CA_TOKEN_SECRET_CHARS, t->secret, sizeof t->secret, true,
                      msg);
}

int
ca_token_parse(const char *text, struct ca_token *t, struct ca_msg *msg)
{
    int rc = token_parse(text, t, msg);

    if (rc != 0) {
        ca_token_clear(t);
    }
    return rc;
}

int
ca_token_pin(const struct ca_token *t, const uint8_t *ca_der, size_t len,
             struct ca_msg *msg)
{
    uint8_t sum[32];
    int rc;

    rc = sha256(ca_der, len, sum, msg);
    if (rc != 0) {
        return rc;
    }
    if (CRYPTO_memcmp(sum, t->digest, sizeof sum) != 0) {
        return ca__fail(msg, CA_ERR_CA_MISMATCH,
                        "the CA certificate offered does not match the "
                        "join token's digest: wrong cluster or a forged CA");
    }
    return 0;
}

bool
ca_token_secret_equal(const struct ca_token *a, const struct ca_token *b)
{
    return CRYPTO_memcmp(a->secret, b->secret, sizeof a->secret) == 0;
}

/* True when presented carries exactly stored's digest and secret. Both
 * comparisons always run, so timing says nothing about which differed. */
static bool
token_equal(const struct ca_token *presented, const struct ca_token *stored)
{
    bool same_secret = ca_token_secret_equal(presented, stored);
    bool same_digest = CRYPTO_memcmp(presented->digest, stored->digest,
                                     sizeof stored->digest) == 0;

    return same_secret & same_digest;
}

int
ca_token_check(const char *presented, const char *manager, const char *worker,
               enum ca_role *role, struct ca_msg *msg)
{
    struct ca_token p, m, w;
    bool is_manager, is_worker;
    int rc;

    rc = ca_token_parse(presented, &p, msg);
    if (rc != 0) {
        return rc;
    }
    memset(&w, 0, sizeof w);
    if (ca_token_parse(manager, &m, NULL) != 0 ||
        (worker != NULL && ca_token_parse(worker, &w, NULL) != 0)) {
        rc = ca__fail(msg, ERR_CORRUPT,
                      "the cluster's stored join token does not parse");
        goto out_wipe;
    }

    is_manager = token_equal(&p, &m);
    is_worker = worker != NULL && token_equal(&p, &w);
    if (is_manager) {
        *role = CA_ROLE_MANAGER;
    } else if (is_worker) {
        *role = CA_ROLE_WORKER;
    } else if (CRYPTO_memcmp(p.digest, m.digest, sizeof m.digest) != 0) {
        rc = ca__fail(msg, CA_ERR_TOKEN_WRONG_CA,
                      "the join token was made for another CA: another "
                      "cluster, or before its CA changed");
    } else {
        rc = ca__fail(msg, CA_ERR_TOKEN_SECRET,
                      "the join token is not valid: wrong, or rotated "
                      "since it was issued");
    }

out_wipe:
    ca_token_clear(&p);
    ca_token_clear(&m);
    ca_token_clear(&w);
    return rc;
}

void
ca_token_clear(struct ca_token *t)
{
    OPENSSL_cleanse(t, sizeof *t);
}
