/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * checker.c: linearizability of version-stamped CAS registers, and the
 * lost / duplicated / phantom check of sets (checker.h).
 *
 * Why the register check needs no search
 * --------------------------------------
 * Checking linearizability of an arbitrary register history is
 * NP-complete (Gibbons and Korach), which is why Knossos and porcupine
 * search. shoal gives us more than values: every successful write
 * returns its version, the Raft log index of its entry, and every read
 * returns (version, value). Log indexes are unique and grow along the
 * log, and a CAS names the version it replaces. So, for each key:
 *
 *  1. Which writes happened is forced. An ok write happened, a failed
 *     one did not, and an unknown (info) one happened if its value was
 *     read (values are unique) or if one must have produced a version
 *     that an effective write was based on. An unknown write that nobody
 *     saw or built on may be taken as never applied: that choice
 *     constrains nothing else, so it is always as good as any other.
 *  2. The order of the writes is forced: the version order. Each write
 *     must replace the previous version of the chain, so the effective
 *     writes must form one chain 0 -> v1 -> v2 ... with unique bases
 *     (two ok CAS from one version: not linearizable) and unique versions.
 *  3. Each read's place is forced up to swaps with other reads of the
 *     same version: after the write of its version and before the next
 *     write. Reads do not change state, so their order among themselves
 *     is free and can follow real time.
 *
 * What is left is whether that order respects real time: no operation
 * placed later in the order may have completed before one placed earlier
 * was invoked. A sweep over the ops sorted by (version, write before
 * reads) keeps the latest invocation seen in earlier groups; an op that
 * completed before it is a violation, and the pair is a minimal
 * counterexample (two ops; the message names both lines). When there is
 * no violation, the order itself is a linearization: it respects real
 * time, every read returns the latest write before it, and every CAS
 * replaces the version it named. When there is one, no linearization
 * exists, because every step above was forced. Unknown ops count as
 * never completing, so they constrain only through their invocation. A
 * version that an ok write was based on but that no known write produced
 * is filled by the unknown write, based on the version before it, that
 * was invoked first: the least constraining choice (see reg_filler for
 * why one such write always suffices).
 *
 * What this relies on, and what it would miss otherwise. If versions
 * could repeat (a per-key counter restarting after a delete, or an index
 * reused after a log truncation that the server still acknowledged), a
 * read could not be tied to one write and step 2 would not be forced:
 * the check could then accept a history in which a reader saw an
 * overwritten value that happened to carry an equal version, and a full
 * search over values would be needed (test_oracle.c has one, for small
 * histories, and the two must agree). If values could repeat, a read
 * could be attributed to the wrong write; the check refuses such a
 * history. If versions were not monotone in the log (a server that
 * numbered entries out of order), the version order would not be the
 * order of effect, and the real-time sweep would blame the wrong pairs.
 * The check trusts the clock too: the stamps must come from one
 * monotonic clock, taken before the request and after the reply.
 */
#include "checker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A write of one register key, as the checker sees it. */
struct reg_write {
    const struct nem_op *op;
    const char *value;
    uint64_t base;
    uint64_t ver; /* valid when has_ver */
    bool has_ver;
    bool applied; /* took effect: ok, seen, or a gap filler */
};

/* An ok read of one register key. */
struct reg_read {
    const struct nem_op *op;
    const char *value;
    uint64_t ver;
    bool good; /* tied to a write; placed in the order */
};

/* An op placed in the forced order, for the real-time sweep. */
struct placed {
    const struct nem_op *op;
    uint64_t ver;
    int sub; /* 0: the write of ver, 1: a read of it */
};

/* A maximal run of effective writes linked base -> version. */
struct segment {
    uint64_t start; /* the base of its first write */
    uint64_t end;   /* the version of its last write */
    const struct reg_write *first;
};

/* A version and the key it was written to, for the cross-key check. */
struct key_ver {
    uint64_t ver;
    const struct nem_op *op;
};

struct ctx {
    const struct nem_hist *h;
    struct nem_report *r;
    char *err;
    size_t errlen;
    struct key_ver *kv; /* every effective write's version */
    size_t n_kv;
    size_t cap_kv;
};

static const char *const kind_names[NEM_A_COUNT] = {
    [NEM_A_UNWRITTEN_READ] = "unwritten-read",
    [NEM_A_FAILED_READ] = "failed-write-read",
    [NEM_A_VERSION_MISMATCH] = "version-mismatch",
    [NEM_A_DOUBLE_CAS] = "double-cas",
    [NEM_A_DOUBLE_VERSION] = "double-version",
    [NEM_A_VERSION_NOT_NEWER] = "version-not-newer",
    [NEM_A_MISSING_WRITE] = "missing-write",
    [NEM_A_FORK] = "fork",
    [NEM_A_STALE_READ] = "stale-read",
    [NEM_A_READ_BACKWARDS] = "read-backwards",
    [NEM_A_FUTURE_READ] = "future-read",
    [NEM_A_WRITE_ORDER] = "write-order",
    [NEM_A_LOST] = "lost",
    [NEM_A_DUPLICATE] = "duplicate",
    [NEM_A_PHANTOM] = "phantom",
    [NEM_A_REFUSED_PRESENT] = "refused-present",
};

const char *
nem_anomaly_name(enum nem_anomaly_kind k)
{
    return k < NEM_A_COUNT ? kind_names[k] : "?";
}

static int anomaly(struct ctx *c, enum nem_anomaly_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int history_error(struct ctx *c, const struct nem_op *op,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
anomaly(struct ctx *c, enum nem_anomaly_kind k, const char *fmt, ...)
{
    struct nem_report *r = c->r;
    va_list ap;

    r->n_total++;
    r->counts[k]++;
    if (r->n == NEM_REPORT_KEEP) {
        return 0;
    }
    if (r->list == NULL) {
        r->list = calloc(NEM_REPORT_KEEP, sizeof *r->list);
        if (r->list == NULL) {
            return -ENOMEM;
        }
    }
    r->list[r->n].kind = k;
    va_start(ap, fmt);
    vsnprintf(r->list[r->n].msg, sizeof r->list[r->n].msg, fmt, ap);
    va_end(ap);
    r->n++;
    return 0;
}

static int
history_error(struct ctx *c, const struct nem_op *op, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->errlen == 0) {
        return -EINVAL;
    }
    n = snprintf(c->err, c->errlen, "line %zu: ", op->line_inv);
    if (n < 0 || (size_t)n >= c->errlen) {
        n = 0;
    }
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "line 12 (c3 cas a 5->7 'x')": an op as messages name it. */
static const char *
op_str(const struct nem_op *op, char *buf, size_t len)
{
    int n = snprintf(buf, len, "line %zu (%s %s %s", op->line_inv, op->client,
                     op->op, op->key);

    for (size_t i = 0; i < op->n_in && n > 0 && (size_t)n < len; i++) {
        n += snprintf(buf + n, len - (size_t)n, " %s", op->in_args[i]);
    }
    if (n > 0 && (size_t)n < len) {
        if (op->outcome == NEM_INFO) {
            snprintf(buf + n, len - (size_t)n, ", unknown)");
        } else {
            snprintf(buf + n, len - (size_t)n, ", %s at line %zu)",
                     nem_phase_name(op->outcome), op->line_ret);
        }
    }
    return buf;
}

/* ---- Register ---------------------------------------------------------- */

static int
cmp_write_value(const void *a, const void *b)
{
    return strcmp(((const struct reg_write *)a)->value,
                  ((const struct reg_write *)b)->value);
}

static int
cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int
cmp_eff_ver(const void *a, const void *b)
{
    return cmp_u64((*(struct reg_write *const *)a)->ver,
                   (*(struct reg_write *const *)b)->ver);
}

static int
cmp_eff_base(const void *a, const void *b)
{
    return cmp_u64((*(struct reg_write *const *)a)->base,
                   (*(struct reg_write *const *)b)->base);
}

static int
cmp_segment(const void *a, const void *b)
{
    return cmp_u64(((const struct segment *)a)->start,
                   ((const struct segment *)b)->start);
}

static int
cmp_placed(const void *a, const void *b)
{
    const struct placed *x = a, *y = b;
    int c = cmp_u64(x->ver, y->ver);

    if (c != 0) {
        return c;
    }
    if (x->sub != y->sub) {
        return x->sub - y->sub;
    }
    return x->op->inv < y->op->inv ? -1 : x->op->inv > y->op->inv;
}

/* The per-key state of the register check; arrays are owned. */
struct reg_key {
    struct reg_write *w; /* sorted by value */
    size_t n_w;
    struct reg_read *rd;
    size_t n_rd;
    struct reg_write **eff; /* effective writes */
    size_t n_eff;
    bool broken; /* a structural anomaly: no order to sweep */
};

static void
reg_key_fini(struct reg_key *k)
{
    free(k->w);
    free(k->rd);
    free(k->eff);
}

/* Sort ops[0..n) of one key into writes and ok reads. */
static int
reg_collect(struct ctx *c, const struct nem_op *const *ops, size_t n,
            struct reg_key *k)
{
    k->w = calloc(n, sizeof *k->w);
    k->rd = calloc(n, sizeof *k->rd);
    k->eff = calloc(n, sizeof *k->eff);
    if (k->w == NULL || k->rd == NULL || k->eff == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct nem_op *op = ops[i];

        if (strcmp(op->op, "read") == 0) {
            struct reg_read *rd = &k->rd[k->n_rd];

            if (op->n_in != 0) {
                return history_error(c, op, "read takes no argument");
            }
            if (op->outcome != NEM_OK) {
                continue; /* a read that returned nothing tells nothing */
            }
            if (op->n_out != 2 || parse_u64(op->out_args[0], &rd->ver)) {
                return history_error(c, op,
                                     "an ok read returns "
                                     "<version> <value>");
            }
            rd->op = op;
            rd->value = op->out_args[1];
            k->n_rd++;
            continue;
        }
        struct reg_write *w = &k->w[k->n_w];

        if (op->n_in != 2 || parse_u64(op->in_args[0], &w->base) != 0 ||
            strcmp(op->in_args[1], "-") == 0) {
            return history_error(c, op,
                                 "cas takes <base> <value>, "
                                 "the value not \"-\"");
        }
        w->op = op;
        w->value = op->in_args[1];
        if (op->outcome == NEM_OK) {
            if (op->n_out != 1 || parse_u64(op->out_args[0], &w->ver)) {
                return history_error(c, op,
                                     "an ok cas returns "
                                     "<new version>");
            }
            w->has_ver = true;
            w->applied = true;
        }
        c->r->reg_writes[op->outcome - NEM_OK]++;
        k->n_w++;
    }
    c->r->reg_reads += k->n_rd;
    qsort(k->w, k->n_w, sizeof *k->w, cmp_write_value);
    for (size_t i = 1; i < k->n_w; i++) {
        if (strcmp(k->w[i - 1].value, k->w[i].value) == 0) {
            return history_error(c, k->w[i].op,
                                 "value '%s' written "
                                 "twice (also line %zu): values must be "
                                 "unique",
                                 k->w[i].value, k->w[i - 1].op->line_inv);
        }
    }
    return 0;
}

/* Tie one ok read to the write of its value (step 1 of the header). */
static int
reg_tie_read(struct ctx *c, struct reg_key *k, struct reg_read *rd)
{
    struct reg_write probe = {.value = rd->value};
    struct reg_write *w;
    char a[256], b[256];

    if (rd->ver == 0 && strcmp(rd->value, "-") == 0) {
        rd->good = true;
        return 0;
    }
    if (rd->ver == 0 || strcmp(rd->value, "-") == 0) {
        return anomaly(c, NEM_A_VERSION_MISMATCH,
                       "%s returned version "
                       "%" PRIu64 " with value '%s': version 0 is the "
                       "absent value \"-\" and only it",
                       op_str(rd->op, a, sizeof a), rd->ver, rd->value);
    }
    w = bsearch(&probe, k->w, k->n_w, sizeof *k->w, cmp_write_value);
    if (w == NULL) {
        return anomaly(c, NEM_A_UNWRITTEN_READ,
                       "%s returned '%s' at "
                       "version %" PRIu64 ", a value no write sent",
                       op_str(rd->op, a, sizeof a), rd->value, rd->ver);
    }
    if (w->op->outcome == NEM_FAIL) {
        return anomaly(c, NEM_A_FAILED_READ,
                       "%s returned '%s' at version "
                       "%" PRIu64 ", but its write %s was refused",
                       op_str(rd->op, a, sizeof a), rd->value, rd->ver,
                       op_str(w->op, b, sizeof b));
    }
    if (w->has_ver && w->ver != rd->ver) {
        return anomaly(c, NEM_A_VERSION_MISMATCH,
                       "%s returned '%s' at "
                       "version %" PRIu64 ", but %s wrote it at version "
                       "%" PRIu64,
                       op_str(rd->op, a, sizeof a), rd->value, rd->ver,
                       op_str(w->op, b, sizeof b), w->ver);
    }
    if (!w->has_ver) {
        /* An unknown write is known to have happened once it is seen. */
        w->ver = rd->ver;
        w->has_ver = true;
        w->applied = true;
        c->r->reg_unknown_applied++;
    }
    rd->good = true;
    return 0;
}

static int
reg_find_dups(struct ctx *c, struct reg_key *k)
{
    char a[256], b[256];
    int rc = 0;

    qsort(k->eff, k->n_eff, sizeof *k->eff, cmp_eff_ver);
    for (size_t i = 1; i < k->n_eff && rc == 0; i++) {
        if (k->eff[i - 1]->ver == k->eff[i]->ver) {
            k->broken = true;
            rc = anomaly(c, NEM_A_DOUBLE_VERSION,
                         "%s and %s both "
                         "produced version %" PRIu64,
                         op_str(k->eff[i - 1]->op, a, sizeof a),
                         op_str(k->eff[i]->op, b, sizeof b), k->eff[i]->ver);
        }
    }
    qsort(k->eff, k->n_eff, sizeof *k->eff, cmp_eff_base);
    for (size_t i = 1; i < k->n_eff && rc == 0; i++) {
        if (k->eff[i - 1]->base == k->eff[i]->base) {
            k->broken = true;
            rc = anomaly(c, NEM_A_DOUBLE_CAS,
                         "%s and %s both took "
                         "effect from version %" PRIu64 " (versions %" PRIu64
                         " and %" PRIu64 "): a CAS must replace "
                         "the current version",
                         op_str(k->eff[i - 1]->op, a, sizeof a),
                         op_str(k->eff[i]->op, b, sizeof b), k->eff[i]->base,
                         k->eff[i - 1]->ver, k->eff[i]->ver);
        }
    }
    return rc;
}

/* The effective write based on version v, with eff sorted by base. */
static struct reg_write *
reg_based_on(struct reg_key *k, uint64_t v)
{
    struct reg_write probe = {.base = v};
    struct reg_write *pp = &probe;
    struct reg_write **hit =
        bsearch(&pp, k->eff, k->n_eff, sizeof *k->eff, cmp_eff_base);

    return hit != NULL ? *hit : NULL;
}

/* Whether an effective write produced version v; by_ver is eff sorted
 * by version. */
static bool
reg_produced(struct reg_write *const *by_ver, size_t n, uint64_t v)
{
    struct reg_write probe = {.ver = v};
    struct reg_write *pp = &probe;

    return bsearch(&pp, by_ver, n, sizeof *by_ver, cmp_eff_ver) != NULL;
}

/*
 * The unknown, unseen write that can produce the version after e with
 * the earliest invocation, or NULL. One always suffices: a chain of
 * several unknown writes from e would start with one based on e, which
 * could as well have produced the target version itself, and the only
 * constraint a filler adds is its invocation (every op placed after it
 * must have completed after that), so the earliest is the best.
 */
static struct reg_write *
reg_filler(struct reg_key *k, uint64_t e)
{
    struct reg_write *best = NULL;

    for (size_t i = 0; i < k->n_w; i++) {
        struct reg_write *w = &k->w[i];

        if (w->op->outcome == NEM_INFO && !w->applied && w->base == e &&
            (best == NULL || w->op->inv < best->op->inv)) {
            best = w;
        }
    }
    return best;
}

/*
 * Cut the effective writes into chain segments and join them in version
 * order, filling each gap with unknown writes (step 2 of the header).
 * eff is sorted by base on entry; fillers are appended to it.
 */
static int
reg_link(struct ctx *c, struct reg_key *k)
{
    struct segment *seg = calloc(k->n_eff + 1, sizeof *seg);
    struct reg_write **by_ver = malloc((k->n_eff + 1) * sizeof *by_ver);
    size_t n_seg = 0, n_eff = k->n_eff;
    char a[256], b[256];
    int rc = 0;

    if (seg == NULL || by_ver == NULL) {
        free(seg);
        free(by_ver);
        return -ENOMEM;
    }
    memcpy(by_ver, k->eff, n_eff * sizeof *by_ver);
    qsort(by_ver, n_eff, sizeof *by_ver, cmp_eff_ver);
    for (size_t i = 0; i < n_eff; i++) {
        struct reg_write *w = k->eff[i];

        if (w->base != 0 && reg_produced(by_ver, n_eff, w->base)) {
            continue; /* inside a segment */
        }
        seg[n_seg].start = w->base;
        seg[n_seg].first = w;
        for (struct reg_write *x = w; x != NULL; x = reg_based_on(k, x->ver)) {
            seg[n_seg].end = x->ver;
        }
        n_seg++;
    }
    qsort(seg, n_seg, sizeof *seg, cmp_segment);

    uint64_t end = 0; /* the chain so far ends at the initial version */
    for (size_t i = 0; i < n_seg && rc == 0; i++) {
        struct reg_write *fill;

        if (seg[i].start == end) {
            end = seg[i].end; /* only the segment from 0 can do this */
            continue;
        }
        if (seg[i].start < end) {
            k->broken = true;
            rc = anomaly(c, NEM_A_FORK,
                         "%s is based on version %" PRIu64
                         ", inside the chain that reached version %" PRIu64
                         " by then: the versions fork",
                         op_str(seg[i].first->op, a, sizeof a), seg[i].start,
                         end);
            break;
        }
        fill = reg_filler(k, end);
        if (fill == NULL) {
            k->broken = true;
            rc = anomaly(c, NEM_A_MISSING_WRITE,
                         "%s is based on version %" PRIu64
                         ", which no write produced (no write of "
                         "unknown outcome is based on version %" PRIu64
                         ", the one before it)",
                         op_str(seg[i].first->op, b, sizeof b), seg[i].start,
                         end);
            break;
        }
        fill->ver = seg[i].start;
        fill->has_ver = true;
        fill->applied = true;
        k->eff[k->n_eff++] = fill;
        c->r->reg_unknown_applied++;
        end = seg[i].end;
    }
    free(by_ver);
    free(seg);
    return rc;
}

/* Name the kind of a real-time violation: later completed before
 * earlier was invoked, though the order puts earlier first. */
static int
reg_violation(struct ctx *c, const struct placed *earlier,
              const struct placed *later)
{
    char a[256], b[256];

    op_str(earlier->op, a, sizeof a);
    op_str(later->op, b, sizeof b);
    if (earlier->sub == 0 && later->sub == 0) {
        return anomaly(c, NEM_A_WRITE_ORDER,
                       "%s produced version %" PRIu64
                       " and completed before %s, which produced "
                       "the older version %" PRIu64 ", was invoked",
                       b, later->ver, a, earlier->ver);
    }
    if (earlier->sub == 0) {
        return anomaly(c, NEM_A_FUTURE_READ,
                       "%s returned version %" PRIu64
                       " and completed before %s, the write of "
                       "version %" PRIu64 ", was invoked",
                       b, later->ver, a, earlier->ver);
    }
    if (later->sub == 0) {
        return anomaly(c, NEM_A_STALE_READ,
                       "%s returned version %" PRIu64
                       ", but %s had already produced version %" PRIu64
                       " before the read was invoked",
                       a, earlier->ver, b, later->ver);
    }
    return anomaly(c, NEM_A_READ_BACKWARDS,
                   "%s returned version %" PRIu64
                   " after %s had returned the newer version %" PRIu64,
                   a, earlier->ver, b, later->ver);
}

/* The real-time sweep over the forced order (the header's last step). */
static int
reg_sweep(struct ctx *c, struct reg_key *k)
{
    struct placed *p = calloc(k->n_eff + k->n_rd, sizeof *p);
    const struct placed *latest = NULL; /* latest invoke of earlier groups */
    size_t n = 0, i = 0;
    int rc = 0;

    if (p == NULL) {
        return -ENOMEM;
    }
    for (size_t j = 0; j < k->n_eff; j++) {
        p[n++] = (struct placed){k->eff[j]->op, k->eff[j]->ver, 0};
    }
    for (size_t j = 0; j < k->n_rd; j++) {
        if (k->rd[j].good) {
            p[n++] = (struct placed){k->rd[j].op, k->rd[j].ver, 1};
        }
    }
    qsort(p, n, sizeof *p, cmp_placed);
    while (i < n && rc == 0) {
        size_t g = i;
        const struct placed *max = latest;

        /* One group: a write, or the reads of one version. */
        while (g < n && p[g].ver == p[i].ver && p[g].sub == p[i].sub) {
            if (latest != NULL && p[g].op->ret < latest->op->inv) {
                rc = reg_violation(c, latest, &p[g]);
            }
            if (max == NULL || p[g].op->inv > max->op->inv) {
                max = &p[g];
            }
            g++;
        }
        latest = max;
        i = g;
    }
    free(p);
    return rc;
}

static int
reg_keep_versions(struct ctx *c, const struct reg_key *k)
{
    if (c->n_kv + k->n_eff > c->cap_kv) {
        size_t cap = 2 * (c->n_kv + k->n_eff) + 64;
        struct key_ver *kv = realloc(c->kv, cap * sizeof *kv);

        if (kv == NULL) {
            return -ENOMEM;
        }
        c->kv = kv;
        c->cap_kv = cap;
    }
    for (size_t i = 0; i < k->n_eff; i++) {
        c->kv[c->n_kv++] = (struct key_ver){k->eff[i]->ver, k->eff[i]->op};
    }
    return 0;
}

static int
check_register(struct ctx *c, const struct nem_op *const *ops, size_t n)
{
    struct reg_key k = {0};
    char a[256];
    int rc;

    c->r->reg_keys++;
    rc = reg_collect(c, ops, n, &k);
    for (size_t i = 0; i < k.n_rd && rc == 0; i++) {
        rc = reg_tie_read(c, &k, &k.rd[i]);
    }
    for (size_t i = 0; i < k.n_w && rc == 0; i++) {
        struct reg_write *w = &k.w[i];

        if (!w->applied) {
            continue;
        }
        if (w->ver <= w->base) {
            k.broken = true;
            rc = anomaly(c, NEM_A_VERSION_NOT_NEWER,
                         "%s produced version "
                         "%" PRIu64 ", not above its base %" PRIu64,
                         op_str(w->op, a, sizeof a), w->ver, w->base);
        }
        k.eff[k.n_eff++] = w;
    }
    if (rc == 0 && !k.broken) {
        rc = reg_find_dups(c, &k);
    }
    if (rc == 0 && !k.broken) {
        rc = reg_link(c, &k);
    }
    if (rc == 0 && !k.broken) {
        rc = reg_sweep(c, &k);
    }
    if (rc == 0) {
        rc = reg_keep_versions(c, &k);
    }
    reg_key_fini(&k);
    return rc;
}

static int
cmp_key_ver(const void *a, const void *b)
{
    return cmp_u64(((const struct key_ver *)a)->ver,
                   ((const struct key_ver *)b)->ver);
}

/* One Raft entry changes one object: a version is one key's only. */
static int
check_versions_across_keys(struct ctx *c)
{
    char a[256], b[256];
    int rc = 0;

    if (c->n_kv == 0) {
        return 0; /* and c->kv may be NULL, which qsort must not get */
    }
    qsort(c->kv, c->n_kv, sizeof *c->kv, cmp_key_ver);
    for (size_t i = 1; i < c->n_kv && rc == 0; i++) {
        if (c->kv[i].ver == c->kv[i - 1].ver &&
            strcmp(c->kv[i].op->key, c->kv[i - 1].op->key) != 0) {
            rc = anomaly(c, NEM_A_DOUBLE_VERSION,
                         "%s and %s, on two "
                         "keys, both produced version %" PRIu64,
                         op_str(c->kv[i - 1].op, a, sizeof a),
                         op_str(c->kv[i].op, b, sizeof b), c->kv[i].ver);
        }
    }
    return rc;
}

/* ---- Set --------------------------------------------------------------- */

struct set_add {
    const struct nem_op *op;
    const char *name;
    bool reported; /* one anomaly per name is enough */
    bool seen;     /* in the list being checked */
    bool ever_seen;
};

static int
cmp_add_name(const void *a, const void *b)
{
    return strcmp(((const struct set_add *)a)->name,
                  ((const struct set_add *)b)->name);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A listed name with its add (or NULL): duplicates, phantoms, refused. */
static int
set_check_name(struct ctx *c, const struct nem_op *list, const char *name,
               struct set_add *add, bool twice)
{
    char a[256], b[256];

    op_str(list, a, sizeof a);
    if (twice) {
        return anomaly(c, NEM_A_DUPLICATE, "%s listed '%s' more than once", a,
                       name);
    }
    if (add == NULL || add->op->inv > list->ret) {
        return anomaly(c, NEM_A_PHANTOM, "%s listed '%s', %s", a, name,
                       add == NULL ? "which no add sent"
                                   : "before its add was invoked");
    }
    add->seen = true;
    if (add->op->outcome == NEM_FAIL && !add->reported) {
        add->reported = true;
        return anomaly(c, NEM_A_REFUSED_PRESENT,
                       "%s listed '%s', but %s "
                       "was refused",
                       a, name, op_str(add->op, b, sizeof b));
    }
    return 0;
}

static int
set_check_list(struct ctx *c, const struct nem_op *list, struct set_add *adds,
               size_t n_adds)
{
    char **names = malloc((list->n_out + 1) * sizeof *names);
    char a[256], b[256];
    int rc = 0;

    if (names == NULL) {
        return -ENOMEM;
    }
    memcpy(names, list->out_args, list->n_out * sizeof *names);
    qsort(names, list->n_out, sizeof *names, cmp_str);
    for (size_t i = 0; i < n_adds; i++) {
        adds[i].seen = false;
    }
    for (size_t i = 0; i < list->n_out && rc == 0; i++) {
        struct set_add probe = {.name = names[i]};
        struct set_add *add =
            bsearch(&probe, adds, n_adds, sizeof *adds, cmp_add_name);
        bool twice = i > 0 && strcmp(names[i - 1], names[i]) == 0;

        if (twice && i > 1 && strcmp(names[i - 2], names[i]) == 0) {
            continue; /* the third copy adds nothing */
        }
        rc = set_check_name(c, list, names[i], add, twice);
    }
    for (size_t i = 0; i < n_adds && rc == 0; i++) {
        struct set_add *add = &adds[i];

        if (add->seen && add->op->outcome == NEM_INFO && !add->ever_seen) {
            c->r->set_unknown_present++;
        }
        add->ever_seen |= add->seen;
        if (!add->seen && !add->reported && add->op->outcome == NEM_OK &&
            add->op->ret < list->inv) {
            add->reported = true;
            rc = anomaly(c, NEM_A_LOST,
                         "%s was acknowledged before %s "
                         "was invoked, but the list lacks '%s'",
                         op_str(add->op, a, sizeof a),
                         op_str(list, b, sizeof b), add->name);
        }
    }
    free(names);
    return rc;
}

static int
check_set(struct ctx *c, const struct nem_op *const *ops, size_t n)
{
    struct set_add *adds = calloc(n, sizeof *adds);
    size_t n_adds = 0;
    int rc = 0;

    if (adds == NULL) {
        return -ENOMEM;
    }
    c->r->set_keys++;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(ops[i]->op, "add") == 0) {
            if (ops[i]->n_in != 1) {
                rc = history_error(c, ops[i], "add takes one <name>");
                break;
            }
            adds[n_adds].op = ops[i];
            adds[n_adds].name = ops[i]->in_args[0];
            c->r->set_adds[ops[i]->outcome - NEM_OK]++;
            n_adds++;
        } else if (ops[i]->n_in != 0) {
            rc = history_error(c, ops[i], "list takes no argument");
        }
    }
    qsort(adds, n_adds, sizeof *adds, cmp_add_name);
    for (size_t i = 1; i < n_adds && rc == 0; i++) {
        if (strcmp(adds[i - 1].name, adds[i].name) == 0) {
            rc = history_error(c, adds[i].op,
                               "'%s' added twice (also "
                               "line %zu): names must be unique",
                               adds[i].name, adds[i - 1].op->line_inv);
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(ops[i]->op, "list") == 0 && ops[i]->outcome == NEM_OK) {
            c->r->set_lists++;
            rc = set_check_list(c, ops[i], adds, n_adds);
        }
    }
    free(adds);
    return rc;
}

/* ---- Driver ------------------------------------------------------------ */

static bool
is_register_op(const char *op)
{
    return strcmp(op, "read") == 0 || strcmp(op, "cas") == 0;
}

static int
cmp_op_key(const void *a, const void *b)
{
    const struct nem_op *x = *(const struct nem_op *const *)a;
    const struct nem_op *y = *(const struct nem_op *const *)b;
    int c = strcmp(x->key, y->key);

    if (c != 0) {
        return c;
    }
    /* Same key: keep the file's order (ops are stored by invoke). */
    return x < y ? -1 : x > y;
}

/* Check ops[0..n), all of one key. */
static int
check_key(struct ctx *c, const struct nem_op *const *ops, size_t n)
{
    bool reg = is_register_op(ops[0]->op);

    for (size_t i = 0; i < n; i++) {
        const char *op = ops[i]->op;

        if (!is_register_op(op) && strcmp(op, "add") != 0 &&
            strcmp(op, "list") != 0) {
            return history_error(c, ops[i], "unknown op '%s'", op);
        }
        if (is_register_op(op) != reg) {
            return history_error(c, ops[i],
                                 "key '%s' is used both as a "
                                 "register and as a set",
                                 ops[i]->key);
        }
    }
    return reg ? check_register(c, ops, n) : check_set(c, ops, n);
}

int
nem_check_history(const struct nem_hist *h, struct nem_report *r, char *err,
                  size_t errlen)
{
    struct ctx c = {.h = h, .r = r, .err = err, .errlen = errlen};
    const struct nem_op **ops = malloc((h->n + 1) * sizeof *ops);
    int rc = 0;

    if (ops == NULL) {
        return -ENOMEM;
    }
    if (errlen > 0) {
        err[0] = '\0';
    }
    for (size_t i = 0; i < h->n; i++) {
        ops[i] = &h->ops[i];
    }
    qsort(ops, h->n, sizeof *ops, cmp_op_key);
    for (size_t i = 0; i < h->n && rc == 0;) {
        size_t j = i + 1;

        while (j < h->n && strcmp(ops[j]->key, ops[i]->key) == 0) {
            j++;
        }
        rc = check_key(&c, ops + i, j - i);
        i = j;
    }
    if (rc == 0) {
        rc = check_versions_across_keys(&c);
    }
    free(c.kv);
    free(ops);
    return rc;
}

void
nem_report_print(const struct nem_report *r, FILE *out)
{
    for (size_t i = 0; i < r->n; i++) {
        fprintf(out, "anomaly %s: %s\n", nem_anomaly_name(r->list[i].kind),
                r->list[i].msg);
    }
    if (r->n < r->n_total) {
        fprintf(out, "... and %zu more anomalies\n", r->n_total - r->n);
    }
    if (r->reg_keys > 0) {
        fprintf(out,
                "register: %zu key(s), %zu ok read(s), cas %zu ok, "
                "%zu failed, %zu unknown (%zu of them applied)\n",
                r->reg_keys, r->reg_reads, r->reg_writes[0], r->reg_writes[1],
                r->reg_writes[2], r->reg_unknown_applied);
    }
    if (r->set_keys > 0) {
        fprintf(out,
                "set: %zu set(s), add %zu ok, %zu failed, %zu unknown "
                "(%zu of them present), %zu list(s); lost %zu, "
                "duplicated %zu, phantom %zu, refused but present %zu\n",
                r->set_keys, r->set_adds[0], r->set_adds[1], r->set_adds[2],
                r->set_unknown_present, r->set_lists, r->counts[NEM_A_LOST],
                r->counts[NEM_A_DUPLICATE], r->counts[NEM_A_PHANTOM],
                r->counts[NEM_A_REFUSED_PRESENT]);
    }
    if (r->n_total == 0) {
        fprintf(out, "valid\n");
    } else {
        fprintf(out, "INVALID: %zu anomalies\n", r->n_total);
    }
}

void
nem_report_fini(struct nem_report *r)
{
    free(r->list);
    memset(r, 0, sizeof *r);
}
