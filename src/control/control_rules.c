/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_rules.c: the stateless syntax rules of the control API: object
 * names, docker image references, placement constraints, IP networks,
 * and the join token format.
 *
 * Each matcher is a hand-written equivalent of the regular expression
 * SwarmKit (or docker/distribution) uses, named in its comment, so no
 * regex library is needed. They read only their argument: no store, no
 * clock (the token's random part comes from rand_bytes()).
 */
#include "control/control_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ca/ca.h"

static int rule_fail(char *msg, size_t msg_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
rule_fail(char *msg, size_t msg_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
    return SHOAL_INVALID_ARGUMENT;
}

static bool
is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9');
}

static bool
is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/*
 * Both name rules reduce to: every character from an allowed set, the
 * first and the last alphanumeric. For rule A the set is [a-zA-Z0-9-_]
 * (the regex allows runs of - and _ only between alphanumeric runs); for
 * rule B it adds the dot.
 */
static bool
name_shape(const char *name, bool dots)
{
    size_t len = strlen(name);

    if (len == 0 || !is_alnum(name[0]) || !is_alnum(name[len - 1])) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];

        if (!is_alnum(ch) && ch != '-' && ch != '_' && !(dots && ch == '.')) {
            return false;
        }
    }
    return true;
}

int
control_name_rule_a(const char *name, char *msg, size_t msg_len)
{
    if (!name || !*name) {
        return rule_fail(msg, msg_len, "meta: name must be provided");
    }
    if (!name_shape(name, false)) {
        return rule_fail(msg, msg_len,
                         "name must be valid as a DNS name component");
    }
    if (strlen(name) > 63) {
        return rule_fail(msg, msg_len, "name must be 63 characters or fewer");
    }
    return SHOAL_OK;
}

int
control_name_rule_b(const char *name, char *msg, size_t msg_len)
{
    if (!name || !*name) {
        return rule_fail(msg, msg_len, "name must be provided");
    }
    if (strlen(name) > 64 || !name_shape(name, true)) {
        return rule_fail(msg, msg_len,
                         "invalid name, only 64 [a-zA-Z0-9-_.] characters "
                         "allowed, and the start and end character must be "
                         "[a-zA-Z0-9]");
    }
    return SHOAL_OK;
}

/* Image references (docker/distribution reference/regexp.go). */

/* domain-component: [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]. */
static bool
ref_domain_component(const char *s, size_t n)
{
    if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && s[i] != '-') {
            return false;
        }
    }
    return true;
}

/* domain: component(.component)*(:[0-9]+)? */
static bool
ref_domain(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t host_len = colon ? (size_t)(colon - s) : n;
    size_t start = 0;

    if (colon) {
        size_t port_len = n - host_len - 1;

        if (port_len == 0) {
            return false;
        }
        for (size_t i = host_len + 1; i < n; i++) {
            if (!isdigit((unsigned char)s[i])) {
                return false;
            }
        }
    }
    for (size_t i = 0; i <= host_len; i++) {
        if (i == host_len || s[i] == '.') {
            if (!ref_domain_component(s + start, i - start)) {
                return false;
            }
            start = i + 1;
        }
    }
    return true;
}

/* path-component: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* */
static bool
ref_path_component(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1])) {
        return false;
    }
    while (i < n) {
        size_t sep = 0;

        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        /* A separator: ".", "_", "__" or a run of "-". */
        if (s[i] == '.') {
            sep = 1;
        } else if (s[i] == '_') {
            sep = (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        } else if (s[i] == '-') {
            while (i + sep < n && s[i + sep] == '-') {
                sep++;
            }
        } else {
            return false;
        }
        i += sep;
        if (i >= n || !is_lower_alnum(s[i])) {
            return false;
        }
    }
    return true;
}

/* tag: [\w][\w.-]{0,127} */
static bool
ref_tag(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !(is_alnum(s[0]) || s[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-') {
            return false;
        }
    }
    return true;
}

/*
 * digest: algorithm ":" hex, where the algorithm must be one that
 * go-digest knows (sha256, sha384, sha512) and the hex part is lowercase
 * and as long as that algorithm's sum.
 */
static bool
ref_digest(const char *s)
{
    static const struct {
        const char *name;
        size_t hex_len;
    } algos[] = {{"sha256", 64}, {"sha384", 96}, {"sha512", 128}};
    const char *colon = strchr(s, ':');

    if (!colon) {
        return false;
    }
    for (size_t a = 0; a < ARRAY_LEN(algos); a++) {
        size_t name_len = strlen(algos[a].name);

        if ((size_t)(colon - s) != name_len ||
            strncmp(s, algos[a].name, name_len) != 0) {
            continue;
        }
        if (strlen(colon + 1) != algos[a].hex_len) {
            return false;
        }
        for (const char *p = colon + 1; *p; p++) {
            if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f')) {
                return false;
            }
        }
        return true;
    }
    return false;
}

/* The name and tag part: path-component(/path-component)*(:tag)? */
static bool
ref_remainder(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    size_t start = 0;

    if (colon && !ref_tag(colon + 1, n - name_len - 1)) {
        return false;
    }
    for (size_t i = 0; i <= name_len; i++) {
        if (i == name_len || s[i] == '/') {
            if (!ref_path_component(s + start, i - start)) {
                return false;
            }
            start = i + 1;
        }
    }
    return true;
}

/*
 * Mirrors ParseNormalizedNamed: refuse a bare 64-hex id; split off the
 * domain when the first component looks like one (has "." or ":", is
 * "localhost", or has an upper-case letter); the repository name must be
 * lowercase; the whole must then match the reference grammar, with the
 * name at most 255 characters.
 */
int
control_image_ref(const char *ref, char *msg, size_t msg_len)
{
    const char *slash, *at, *rest;
    size_t len, rest_len, dom_len = 0, name_len;
    bool has_domain = false;

    if (!ref || !*ref) {
        return rule_fail(msg, msg_len,
                         "ContainerSpec: image reference must be provided");
    }
    len = strlen(ref);
    if (len == 64 && strspn(ref, "0123456789abcdef") == 64) {
        goto bad;
    }
    slash = strchr(ref, '/');
    if (slash) {
        size_t first = (size_t)(slash - ref);
        bool upper = false;

        for (size_t i = 0; i < first; i++) {
            upper = upper || isupper((unsigned char)ref[i]);
        }
        if (memchr(ref, '.', first) || memchr(ref, ':', first) ||
            (first == 9 && strncmp(ref, "localhost", 9) == 0) || upper) {
            has_domain = true;
            dom_len = first;
        }
    }
    rest = has_domain ? ref + dom_len + 1 : ref;
    at = strchr(rest, '@');
    rest_len = at ? (size_t)(at - rest) : strlen(rest);
    name_len = rest_len;
    if (memchr(rest, ':', rest_len)) {
        name_len = (size_t)((const char *)memchr(rest, ':', rest_len) - rest);
    }
    for (size_t i = 0; i < name_len; i++) {
        if (isupper((unsigned char)rest[i])) {
            return rule_fail(msg, msg_len,
                             "ContainerSpec: \"%s\" is not a valid "
                             "repository/tag: repository name must be "
                             "lowercase",
                             ref);
        }
    }
    if (has_domain && !ref_domain(ref, dom_len)) {
        goto bad;
    }
    if (!ref_remainder(rest, rest_len) || (at && !ref_digest(at + 1))) {
        goto bad;
    }
    /* The normalised name gets "docker.io/" (and maybe "library/"). */
    if ((has_domain ? dom_len + 1 : 10 + 8) + name_len > 255) {
        goto bad;
    }
    return SHOAL_OK;

bad:
    return rule_fail(msg, msg_len,
                     "ContainerSpec: image \"%s\" is not a valid repository/tag",
                     ref);
}

/* Constraints (swarmkit manager/constraint/constraint.go). */

static void
trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1])) {
        (*n)--;
    }
}

/* key: (?i)^[a-z_][a-z0-9\-_.]+$ */
static bool
constraint_key(const char *s, size_t n)
{
    if (n < 2 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!is_alnum(s[i]) && !strchr("-_.", s[i])) {
            return false;
        }
    }
    return true;
}

/* value: (?i)^[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$ */
static bool
constraint_value(const char *s, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && !strchr(":-_ \t\n\f\r.*()?+[]\\^$|/", s[i])) {
            return false;
        }
    }
    return true;
}

int
control_constraint(const char *expr, char *msg, size_t msg_len)
{
    static const char *const ops[] = {"==", "!="};
    const char *e = expr ? expr : "";

    /* As in SwarmKit, the first operator found (in this order) splits
     * the expression at its first occurrence. */
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        const char *at = strstr(e, ops[i]);
        const char *key = e, *val;
        size_t key_len, val_len;

        if (!at) {
            continue;
        }
        key_len = (size_t)(at - e);
        val = at + 2;
        val_len = strlen(val);
        trim(&key, &key_len);
        trim(&val, &val_len);
        if (!constraint_key(key, key_len)) {
            return rule_fail(msg, msg_len, "key '%.*s' is invalid",
                             (int)key_len, key);
        }
        if (!constraint_value(val, val_len)) {
            return rule_fail(msg, msg_len, "value '%.*s' is invalid",
                             (int)val_len, val);
        }
        return SHOAL_OK;
    }
    return rule_fail(msg, msg_len,
                     "constraint expected one operator from ==, !=");
}

/* IP networks. */

bool
control_ip_parse(const char *s, uint8_t addr[16], int *family)
{
    memset(addr, 0, 16);
    if (!s) {
        return false;
    }
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = 6;
        return true;
    }
    return false;
}

bool
control_cidr_parse(const char *s, uint8_t addr[16], int *family, int *bits)
{
    char ip[64];
    const char *slash = s ? strchr(s, '/') : NULL;
    size_t ip_len;
    long v = 0;

    if (!slash) {
        return false;
    }
    ip_len = (size_t)(slash - s);
    if (ip_len == 0 || ip_len >= sizeof ip) {
        return false;
    }
    memcpy(ip, s, ip_len);
    ip[ip_len] = '\0';
    if (!control_ip_parse(ip, addr, family)) {
        return false;
    }

    /* The length: 1 to 3 decimal digits, no sign, within the family. */
    if (slash[1] == '\0' || strlen(slash + 1) > 3) {
        return false;
    }
    for (const char *p = slash + 1; *p; p++) {
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    if (v > (*family == 4 ? 32 : 128)) {
        return false;
    }
    *bits = (int)v;
    return true;
}

bool
control_cidr_contains(const uint8_t net[16], int net_family, int bits,
                      const uint8_t addr[16], int family)
{
    int full = bits / 8, rest = bits % 8;

    if (net_family != family) {
        return false;
    }
    if (memcmp(net, addr, (size_t)full) != 0) {
        return false;
    }
    if (rest != 0) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));

        return (net[full] & mask) == (addr[full] & mask);
    }
    return true;
}

/* Join tokens (SWARMKIT.md 6, with shoal's prefix). */

/* The token format and its generator belong to the CA module: the same
 * code makes the tokens that joiners later parse and pin. */
int
control_join_token(const struct shoal_cluster *cl, const char *cluster_id,
                   char *out)
{
    const void *src = cluster_id ? cluster_id : "";
    size_t src_len = strlen(src);

    if (cl && cl->root_ca.ca_cert.len > 0) {
        src = cl->root_ca.ca_cert.data;
        src_len = cl->root_ca.ca_cert.len;
    }
    return ca_token_new(src, src_len, out, NULL);
}
