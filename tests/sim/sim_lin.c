/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * sim_lin.c: linearizability of the register workload's history.
 *
 * Wing & Gong's search with Lowe's memoisation (the algorithm behind
 * Knossos and porcupine): repeatedly pick an operation that may take
 * effect first (invoked before every pending operation's response), apply
 * it to the register model, and backtrack on a mismatch; the set of
 * linearized operations plus the register value is cached so that no
 * configuration is explored twice. Keys are independent registers, so
 * each key's sub-history is checked alone (linearizability is local).
 * Writes whose outcome is unknown (SIM_NEVER) may take effect at any
 * point after their invocation, or never.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define LIN_MAX_OPS 1024
#define LIN_WORDS (LIN_MAX_OPS / 64)
#define LIN_BUDGET 4000000

struct lin {
    const struct sim_op **ops;   /* sorted by invocation */
    size_t n;
    size_t words;
    uint64_t *cache;             /* open addressing: (bits, value) keys */
    size_t cache_cap, cache_n;
    uint64_t steps;
    size_t n_required;           /* ops with a known response */
    uint64_t bits[LIN_WORDS];
};

static uint64_t
key_hash(const uint64_t *bits, size_t words, uint64_t value)
{
    uint64_t h = value * 0x9e3779b97f4a7c15ULL;

    for (size_t k = 0; k < words; k++) {
        h = (h ^ bits[k]) * 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
    }
    return h;
}

static void cache_grow(struct lin *l);

/* Insert (bits, value); false when it was there already. */
static bool
cache_add(struct lin *l, uint64_t value)
{
    size_t stride = l->words + 2; /* used flag, value, bits */
    size_t j;

    if (2 * (l->cache_n + 1) > l->cache_cap) {
        cache_grow(l);
    }
    j = key_hash(l->bits, l->words, value) & (l->cache_cap - 1);
    for (;;) {
        uint64_t *slot = l->cache + j * stride;

        if (slot[0] == 0) {
            slot[0] = 1;
            slot[1] = value;
            memcpy(slot + 2, l->bits, l->words * sizeof(uint64_t));
            l->cache_n++;
            return true;
        }
        if (slot[1] == value &&
            memcmp(slot + 2, l->bits, l->words * sizeof(uint64_t)) == 0) {
            return false;
        }
        j = (j + 1) & (l->cache_cap - 1);
    }
}

static void
cache_grow(struct lin *l)
{
    size_t stride = l->words + 2, old_cap = l->cache_cap;
    uint64_t *old = l->cache;
    uint64_t saved[LIN_WORDS];

    l->cache_cap = old_cap != 0 ? 2 * old_cap : 1024;
    l->cache = calloc(l->cache_cap * stride, sizeof(uint64_t));
    ASSERT(l->cache != NULL);
    l->cache_n = 0;
    memcpy(saved, l->bits, sizeof(saved));
    for (size_t k = 0; k < old_cap; k++) {
        uint64_t *slot = old + k * stride;

        if (slot[0] != 0) {
            memcpy(l->bits, slot + 2, l->words * sizeof(uint64_t));
            (void)cache_add(l, slot[1]);
        }
    }
    memcpy(l->bits, saved, sizeof(saved));
    free(old);
}

static bool
is_set(const struct lin *l, size_t i)
{
    return (l->bits[i / 64] >> (i % 64)) & 1;
}

/* Depth-first search; returns 1 linearizable, 0 not, -1 budget. */
static int
search(struct lin *l, uint64_t value, size_t done)
{
    uint64_t min_resp = SIM_NEVER;

    if (done == l->n_required) {
        return 1;
    }
    if (++l->steps > LIN_BUDGET) {
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!is_set(l, i) && l->ops[i]->done_us < min_resp) {
            min_resp = l->ops[i]->done_us;
        }
    }
    for (size_t i = 0; i < l->n && l->ops[i]->invoke_us <= min_resp; i++) {
        const struct sim_op *op = l->ops[i];
        uint64_t next = value;
        int rc;

        if (is_set(l, i)) {
            continue;
        }
        if (op->type == SIM_OP_READ && op->value != value) {
            continue;
        }
        if (op->type == SIM_OP_WRITE) {
            next = op->value;
        }
        l->bits[i / 64] |= 1ULL << (i % 64);
        if (cache_add(l, next)) {
            rc = search(l, next,
                        done + (op->done_us != SIM_NEVER ? 1 : 0));
            if (rc != 0) {
                l->bits[i / 64] &= ~(1ULL << (i % 64));
                return rc;
            }
        }
        l->bits[i / 64] &= ~(1ULL << (i % 64));
    }
    return 0;
}

static int
cmp_invoke(const void *a, const void *b)
{
    const struct sim_op *x = *(const struct sim_op *const *)a;
    const struct sim_op *y = *(const struct sim_op *const *)b;

    if (x->invoke_us != y->invoke_us) {
        return x->invoke_us < y->invoke_us ? -1 : 1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int
check_key(const struct sim_op *ops, size_t n_ops, unsigned key, char *why,
          size_t why_len)
{
    struct lin l;
    int rc;

    memset(&l, 0, sizeof(l));
    l.ops = calloc(n_ops + 1, sizeof(*l.ops));
    ASSERT(l.ops != NULL);
    for (size_t k = 0; k < n_ops; k++) {
        if (ops[k].key == key && l.n < LIN_MAX_OPS) {
            l.ops[l.n++] = &ops[k];
            l.n_required += ops[k].done_us != SIM_NEVER ? 1 : 0;
        }
    }
    qsort(l.ops, l.n, sizeof(*l.ops), cmp_invoke);
    l.words = (l.n + 63) / 64;
    if (l.words == 0) {
        l.words = 1;
    }
    rc = search(&l, 0, 0);
    if (rc == 0) {
        snprintf(why, why_len, "key %u: %zu operations admit no order "
                 "(run with --seed and --trace for the history)", key, l.n);
    }
    free(l.cache);
    free(l.ops);
    return rc == 1 ? 0 : (rc == 0 ? 1 : 2);
}

int
sim_lin_check(const struct sim_op *ops, size_t n_ops, char *why,
              size_t why_len)
{
    int worst = 0;

    for (unsigned key = 0; key < SIM_KEYS; key++) {
        int rc = check_key(ops, n_ops, key, why, why_len);

        if (rc == 1) {
            return 1;
        }
        if (rc == 2) {
            worst = 2;
        }
    }
    return worst;
}
