/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_oracle.c: the register checker against an exhaustive search.
 *
 * The checker decides linearizability without search, by the argument at
 * the top of checker.c. This file checks the argument: for many small
 * random histories of one key, it compares the checker's verdict with a
 * brute-force search over every order of the operations (Wing and Gong's
 * method) on a model of shoal's versioned register. The model knows
 * nothing of chains or sweeps: it only runs operations one at a time.
 *
 * The model. State: version, value; initially (0, "-"). An ok read of
 * (v, x) needs state (v, x). An ok CAS (base b, value y, new version n)
 * needs version b and n > b, and leaves (n, y). A CAS of unknown outcome
 * may take effect at any point after its invocation, or never; taking
 * effect leaves (?, y) with "?" a version above b that nobody knows yet,
 * fixed by the first later op that names it. Failed CAS and reads
 * without a result never take effect. An op must be placed after every
 * op that completed before it was invoked.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "history.h"

TestSuite(nemesis_oracle, .timeout = 120.0);

#define OR_MAX_OPS 7

struct or_op {
    int client;
    bool cas;
    uint64_t base;
    char value[8]; /* cas: sent; read: returned */
    uint64_t ver;  /* cas: returned; read: returned */
    enum nem_phase outcome;
    int64_t inv;
    int64_t ret; /* NEM_TIME_NEVER for info */
    int64_t end; /* when the completion line is written */
};

struct or_hist {
    struct or_op ops[OR_MAX_OPS];
    int n;
};

/* The model's state; sym: the version is "?" above lo. */
struct or_state {
    bool sym;
    uint64_t ver;
    uint64_t lo;
    const char *val;
};

static bool
or_takes_part(const struct or_op *op)
{
    return op->outcome == NEM_OK || (op->cas && op->outcome == NEM_INFO);
}

/* Whether the current version can be v (fixing a "?" if need be). */
static bool
or_version_is(const struct or_state *s, uint64_t v)
{
    return s->sym ? v > s->lo : s->ver == v;
}

static bool
or_apply(const struct or_op *op, const struct or_state *s,
         struct or_state *next)
{
    if (!op->cas) {
        if (!or_version_is(s, op->ver) || strcmp(s->val, op->value) != 0) {
            return false;
        }
        *next = (struct or_state){false, op->ver, 0, s->val};
        return true;
    }
    if (!or_version_is(s, op->base)) {
        return false;
    }
    if (op->outcome == NEM_INFO) {
        *next = (struct or_state){true, 0, op->base, op->value};
        return true;
    }
    if (op->ver <= op->base) {
        return false;
    }
    *next = (struct or_state){false, op->ver, 0, op->value};
    return true;
}

static bool
or_search(const struct or_hist *h, unsigned done, const struct or_state *s)
{
    bool all = true;

    for (int i = 0; i < h->n; i++) {
        if (h->ops[i].outcome == NEM_OK && !(done & (1u << i))) {
            all = false;
        }
    }
    if (all) {
        return true;
    }
    for (int i = 0; i < h->n; i++) {
        const struct or_op *op = &h->ops[i];
        struct or_state next;
        bool minimal = true;

        if ((done & (1u << i)) || !or_takes_part(op)) {
            continue;
        }
        for (int j = 0; j < h->n && minimal; j++) {
            minimal = (done & (1u << j)) || h->ops[j].outcome != NEM_OK ||
                      h->ops[j].ret >= op->inv;
        }
        if (minimal && or_apply(op, s, &next) &&
            or_search(h, done | (1u << i), &next)) {
            return true;
        }
    }
    return false;
}

static bool
or_linearizable(const struct or_hist *h)
{
    struct or_state s = {false, 0, 0, "-"};

    return or_search(h, 0, &s);
}

/* ---- Random histories ---------------------------------------------------- */

static uint64_t
or_rand(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A version from a small pool, so that guesses often coincide. */
static uint64_t
or_pick_ver(uint64_t *st)
{
    return 2 * (or_rand(st) % 5);
}

/*
 * Random ops of up to three clients, interleaved at random, on a clock
 * that often does not tick between two events; the results
 * are drawn from small pools of versions and of the values written, so
 * that some histories are linearizable and many are not by a little.
 */
static void
or_generate(struct or_hist *h, uint64_t seed)
{
    uint64_t st = seed;
    int n_target = 2 + (int)(or_rand(&st) % (OR_MAX_OPS - 1));
    int cur[3] = {-1, -1, -1}, started = 0;
    int64_t t = 0;

    memset(h, 0, sizeof *h);
    while (started < n_target || cur[0] >= 0 || cur[1] >= 0 || cur[2] >= 0) {
        int c = (int)(or_rand(&st) % 3);
        struct or_op *op;

        if (cur[c] < 0) {
            if (started == n_target) {
                continue;
            }
            op = &h->ops[started];
            op->client = c;
            op->cas = or_rand(&st) % 2;
            op->base = or_pick_ver(&st);
            snprintf(op->value, sizeof op->value, "v%d", started);
            op->inv = t += (int64_t)(or_rand(&st) % 2);
            cur[c] = started++;
            h->n = started;
            continue;
        }
        op = &h->ops[cur[c]];
        /* Equal stamps happen on a real clock too: then concurrent. */
        op->ret = op->end = t += (int64_t)(or_rand(&st) % 2);
        op->outcome = (enum nem_phase)(NEM_OK + or_rand(&st) % 3);
        if (op->outcome == NEM_OK && op->cas) {
            op->ver = op->base + 1 + or_rand(&st) % 5;
        } else if (op->outcome == NEM_OK) {
            int w = (int)(or_rand(&st) % (uint64_t)(h->n + 1));

            op->ver = or_pick_ver(&st) + (or_rand(&st) % 2);
            if (w == h->n || !h->ops[w].cas) {
                op->ver = or_rand(&st) % 4 == 0 ? op->ver : 0;
                snprintf(op->value, sizeof op->value, "-");
            } else {
                snprintf(op->value, sizeof op->value, "v%d", w);
            }
        }
        if (op->outcome == NEM_INFO) {
            op->ret = NEM_TIME_NEVER;
        }
        cur[c] = -1;
    }
}

/* The history as the log format; times are the event counter. */
static char *
or_text(const struct or_hist *h)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int64_t t_max = 0;

    cr_assert_not_null(f);
    for (int i = 0; i < h->n; i++) {
        t_max = h->ops[i].end > t_max ? h->ops[i].end : t_max;
    }
    for (int64_t t = 0; t <= t_max; t++) {
        for (int i = 0; i < h->n; i++) {
            const struct or_op *op = &h->ops[i];
            const char *name = op->cas ? "cas" : "read";

            if (op->inv == t && op->cas) {
                fprintf(f, "invoke c%d cas k %" PRIu64 " %s %" PRId64 "\n",
                        op->client, op->base, op->value, t);
            } else if (op->inv == t) {
                fprintf(f, "invoke c%d read k %" PRId64 "\n", op->client, t);
            }
            if (op->end != t) {
                continue;
            }
            if (op->outcome != NEM_OK) {
                fprintf(f, "%s c%d %s k %" PRId64 "\n",
                        nem_phase_name(op->outcome), op->client, name, t);
            } else if (op->cas) {
                fprintf(f, "ok c%d cas k %" PRIu64 " %" PRId64 "\n", op->client,
                        op->ver, t);
            } else {
                fprintf(f, "ok c%d read k %" PRIu64 " %s %" PRId64 "\n",
                        op->client, op->ver, op->value, t);
            }
        }
    }
    fclose(f);
    return buf;
}

/* The checker's verdict on h: true when it found nothing. */
static bool
or_checker_accepts(const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    struct nem_hist nh = {0};
    struct nem_report r = {0};
    char err[512];
    bool ok;

    cr_assert_not_null(f);
    cr_assert_eq(nem_hist_read(f, &nh, err, sizeof err), 0, "%s\n%s", err,
                 text);
    fclose(f);
    cr_assert_eq(nem_check_history(&nh, &r, err, sizeof err), 0, "%s\n%s", err,
                 text);
    ok = r.n_total == 0;
    nem_report_fini(&r);
    nem_hist_fini(&nh);
    return ok;
}

/* On 40000 random histories of up to 7 ops, the checker and the
 * exhaustive search agree, and both verdicts occur often. */
Test(nemesis_oracle, checker_agrees_with_exhaustive_search)
{
    static struct or_hist h;
    int valid = 0, invalid = 0;

    for (uint64_t seed = 1; seed <= 40000; seed++) {
        char *text;
        bool want, got;

        or_generate(&h, seed);
        text = or_text(&h);
        want = or_linearizable(&h);
        got = or_checker_accepts(text);
        cr_assert_eq(got, want,
                     "seed %" PRIu64 ": search says %s, checker "
                     "says %s:\n%s",
                     seed, want ? "valid" : "invalid",
                     got ? "valid" : "invalid", text);
        *(want ? &valid : &invalid) += 1;
        free(text);
    }
    cr_log_info("oracle: %d linearizable, %d not", valid, invalid);
    cr_expect_gt(valid, 2000);
    cr_expect_gt(invalid, 2000);
}
