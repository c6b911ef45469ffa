/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * parse.c: shoalctl's parsers of option values: durations, sizes, CPUs,
 * integers, key=value pairs, published ports and secret references.
 *
 * Pure functions of their string: no allocation, no output, so that the
 * unit tests cover them completely. Every overflow is refused rather
 * than wrapped, since a wrapped value would reach the daemon as a
 * different request than the one the user typed.
 */
#include "ctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FRAC_DIGITS_MAX 9 /* nanosecond and nano-CPU precision */

/* A decimal number "12", "1.5" or ".5": integer part, fraction scaled to
 * 10^9, and how many fraction digits were beyond 9. */
struct decimal {
    uint64_t whole;
    uint64_t frac_nano; /* the fraction times 10^9 */
    size_t extra;       /* fraction digits dropped after the ninth */
};

/* Parse a decimal at *p and advance *p. Returns 0 or -EINVAL. */
static int
parse_decimal(const char **p, struct decimal *d)
{
    const char *s = *p;
    size_t digits = 0, fd = 0;

    *d = (struct decimal){0};
    for (; isdigit((unsigned char)*s); s++, digits++) {
        if (__builtin_mul_overflow(d->whole, 10, &d->whole) ||
            __builtin_add_overflow(d->whole, (uint64_t)(*s - '0'),
                                   &d->whole)) {
            return -EINVAL;
        }
    }
    if (*s == '.') {
        for (s++; isdigit((unsigned char)*s); s++, digits++) {
            if (fd < FRAC_DIGITS_MAX) {
                d->frac_nano = d->frac_nano * 10 + (uint64_t)(*s - '0');
                fd++;
            } else {
                d->extra++;
            }
        }
        for (; fd < FRAC_DIGITS_MAX; fd++) {
            d->frac_nano *= 10;
        }
    }
    if (digits == 0) {
        return -EINVAL;
    }
    *p = s;
    return 0;
}

/* d times unit, as a non-negative int64; the fraction is truncated. */
static int
scale(const struct decimal *d, uint64_t unit, int64_t *out)
{
    uint64_t whole, frac;
    unsigned __int128 f = (unsigned __int128)d->frac_nano * unit;

    frac = (uint64_t)(f / 1000000000u);
    if (__builtin_mul_overflow(d->whole, unit, &whole) ||
        __builtin_add_overflow(whole, frac, &whole) || whole > INT64_MAX) {
        return -EINVAL;
    }
    *out = (int64_t)whole;
    return 0;
}

static const struct {
    const char *name;
    uint64_t ns;
} duration_units[] = {
    /* Two-letter units first, so that "ms" is not read as "m" then "s". */
    {"ns", 1},
    {"us", 1000},
    {"ms", 1000000},
    {"s", 1000000000ull},
    {"m", 60ull * 1000000000ull},
    {"h", 3600ull * 1000000000ull},
    {"d", 86400ull * 1000000000ull},
};

/* The unit at *p, advancing past it; 0 when there is none. */
static uint64_t
duration_unit(const char **p)
{
    for (size_t i = 0; i < sizeof duration_units / sizeof *duration_units;
         i++) {
        size_t n = strlen(duration_units[i].name);

        if (strncmp(*p, duration_units[i].name, n) == 0) {
            *p += n;
            return duration_units[i].ns;
        }
    }
    return 0;
}

int
ctl_parse_duration(const char *s, int64_t *out)
{
    int64_t total = 0, part;
    struct decimal d;
    uint64_t unit;

    if (!s || !*s) {
        return -EINVAL;
    }
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    while (*s) {
        if (parse_decimal(&s, &d) != 0) {
            return -EINVAL;
        }
        unit = duration_unit(&s);
        if (unit == 0 || scale(&d, unit, &part) != 0 ||
            __builtin_add_overflow(total, part, &total)) {
            return -EINVAL;
        }
    }
    *out = total;
    return 0;
}

/* The multiplier of a size unit, or 0 for an unknown one. */
static uint64_t
size_unit(const char *u)
{
    static const char letters[] = "bkmgtp";
    const char *at;
    size_t index;

    if (!*u) {
        return 1;
    }
    at = strchr(letters, tolower((unsigned char)u[0]));
    if (!at) {
        return 0;
    }
    index = (size_t)(at - letters);
    if (u[1] == '\0' || (index > 0 && (strcasecmp(u + 1, "b") == 0 ||
                                        strcasecmp(u + 1, "ib") == 0))) {
        return 1ull << (10 * index);
    }
    return 0;
}

int
ctl_parse_size(const char *s, int64_t *out)
{
    struct decimal d;
    uint64_t mult;

    if (!s || parse_decimal(&s, &d) != 0) {
        return -EINVAL;
    }
    mult = size_unit(s);
    if (mult == 0) {
        return -EINVAL;
    }
    return scale(&d, mult, out);
}

int
ctl_parse_cpus(const char *s, int64_t *out)
{
    struct decimal d;

    if (!s || parse_decimal(&s, &d) != 0 || *s || d.extra > 0) {
        return -EINVAL;
    }
    return scale(&d, 1000000000u, out);
}

int
ctl_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s) {
        return -EINVAL;
    }
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) ||
            __builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v)) {
            return -EINVAL;
        }
    }
    *out = v;
    return 0;
}

int
ctl_parse_i64(const char *s, int64_t *out)
{
    bool neg = s && *s == '-';
    uint64_t v;

    if (!s || ctl_parse_u64(s + neg, &v) != 0) {
        return -EINVAL;
    }
    if (v > (uint64_t)INT64_MAX + neg) {
        return -EINVAL;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int
ctl_parse_kv(const char *s, bool value_required, size_t *key_len,
             const char **value)
{
    const char *eq;

    if (!s) {
        return -EINVAL;
    }
    eq = strchr(s, '=');
    if ((!eq && value_required) || eq == s || !*s) {
        return -EINVAL;
    }
    *key_len = eq ? (size_t)(eq - s) : strlen(s);
    *value = eq ? eq + 1 : "";
    return 0;
}

/* A port number 1..65535 in s[0, n). */
static int
parse_port(const char *s, size_t n, uint32_t *out)
{
    char buf[8];
    uint64_t v;

    if (n == 0 || n >= sizeof buf) {
        return -EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (ctl_parse_u64(buf, &v) != 0 || v < 1 || v > 65535) {
        return -EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

/* "tcp", "udp" or "sctp" in s[0, n). */
static int
parse_proto(const char *s, size_t n, uint32_t *out)
{
    static const char *const names[] = {
        [SHOAL_PROTO_TCP] = "tcp",
        [SHOAL_PROTO_UDP] = "udp",
        [SHOAL_PROTO_SCTP] = "sctp",
    };

    for (uint32_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strlen(names[i]) == n && strncasecmp(s, names[i], n) == 0) {
            *out = i;
            return 0;
        }
    }
    return -EINVAL;
}

int
ctl_parse_port_rm(const char *s, uint32_t *target, uint32_t *proto)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    uint32_t t, p = SHOAL_PROTO_TCP;

    if (!s) {
        return -EINVAL;
    }
    if (parse_port(s, slash ? (size_t)(slash - s) : strlen(s), &t) != 0) {
        return -EINVAL;
    }
    if (slash && parse_proto(slash + 1, strlen(slash + 1), &p) != 0) {
        return -EINVAL;
    }
    *target = t;
    *proto = p;
    return 0;
}

/* The ",mode=host|ingress" options after a port spec. */
static int
parse_publish_opts(const char *s, uint32_t *mode)
{
    while (*s == ',') {
        const char *next = strchr(s + 1, ',');
        size_t n = next ? (size_t)(next - s - 1) : strlen(s + 1);

        if (n == 9 && strncmp(s + 1, "mode=host", 9) == 0) {
            *mode = SHOAL_PUBLISH_HOST;
        } else if (n == 12 && strncmp(s + 1, "mode=ingress", 12) == 0) {
            *mode = SHOAL_PUBLISH_INGRESS;
        } else {
            return -EINVAL;
        }
        s += n + 1;
    }
    return *s ? -EINVAL : 0;
}

int
ctl_parse_publish(const char *s, struct shoal_port_config *p)
{
    uint32_t published = 0, target, proto = SHOAL_PROTO_TCP;
    uint32_t mode = SHOAL_PUBLISH_INGRESS;
    char spec[32], *colon, *slash, *tp = spec;
    const char *opts;
    size_t n;

    if (!s) {
        return -EINVAL;
    }
    opts = strchr(s, ',');
    n = opts ? (size_t)(opts - s) : strlen(s);
    if (n == 0 || n >= sizeof spec) {
        return -EINVAL;
    }
    memcpy(spec, s, n);
    spec[n] = '\0';
    slash = strchr(spec, '/');
    if (slash) {
        *slash = '\0';
        if (parse_proto(slash + 1, strlen(slash + 1), &proto) != 0) {
            return -EINVAL;
        }
    }
    colon = strchr(spec, ':');
    if (colon) {
        *colon = '\0';
        tp = colon + 1;
        if (parse_port(spec, strlen(spec), &published) != 0) {
            return -EINVAL;
        }
    }
    if (parse_port(tp, strlen(tp), &target) != 0 ||
        (opts && parse_publish_opts(opts, &mode) != 0)) {
        return -EINVAL;
    }
    p->published_port = published;
    p->target_port = target;
    p->protocol = proto;
    p->publish_mode = mode;
    return 0;
}

int
ctl_parse_ref(const char *s, size_t *name_len, const char **target)
{
    const char *colon = s ? strchr(s, ':') : NULL;

    if (!s || !*s || colon == s || (colon && !colon[1])) {
        return -EINVAL;
    }
    *name_len = colon ? (size_t)(colon - s) : strlen(s);
    *target = colon ? colon + 1 : NULL;
    return 0;
}
