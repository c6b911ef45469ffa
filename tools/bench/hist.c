/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/hist.c: the log-linear latency histogram (error <= 0.4%).
 *
 * The HdrHistogram layout with 128 sub-buckets per power of two: a value
 * v >= 128 with its top bit at e falls in group e - 6, sub-bucket given
 * by its next 7 bits. Adding is a shift and an increment, so clients can
 * count every request without disturbing what they measure.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof *h);
}

uint32_t
bench_hist_index(uint64_t v_ns)
{
    uint64_t top = (1ull << BENCH_HIST_MAX_EXP) - 1;
    unsigned e;

    if (v_ns > top) {
        v_ns = top;
    }
    if (v_ns < BENCH_HIST_SUB) {
        return (uint32_t)v_ns;
    }
    e = 63u - (unsigned)__builtin_clzll(v_ns);
    return (e - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB +
           (uint32_t)((v_ns >> (e - BENCH_HIST_SUB_BITS)) - BENCH_HIST_SUB);
}

uint64_t
bench_hist_bucket_low(uint32_t idx)
{
    uint32_t g = idx / BENCH_HIST_SUB;
    uint32_t s = idx % BENCH_HIST_SUB;

    if (g == 0) {
        return s;
    }
    return (uint64_t)(BENCH_HIST_SUB + s) << (g - 1);
}

/* The width of bucket idx: 1 in the exact range, then doubling. */
static uint64_t
bucket_width(uint32_t idx)
{
    uint32_t g = idx / BENCH_HIST_SUB;

    return g == 0 ? 1 : 1ull << (g - 1);
}

void
bench_hist_add(struct bench_hist *h, uint64_t v_ns)
{
    h->b[bench_hist_index(v_ns)]++;
    h->count++;
    h->sum_ns += (double)v_ns;
    if (v_ns > h->max_ns) {
        h->max_ns = v_ns;
    }
}

int
bench_hist_add_bucket(struct bench_hist *h, uint32_t idx, uint64_t n)
{
    uint64_t mid;

    if (idx >= BENCH_HIST_BUCKETS) {
        return -1;
    }
    mid = bench_hist_bucket_low(idx) + bucket_width(idx) / 2;
    h->b[idx] += n;
    h->count += n;
    h->sum_ns += (double)mid * (double)n;
    if (n > 0 && mid > h->max_ns) {
        h->max_ns = mid;
    }
    return 0;
}

void
bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->max_ns > dst->max_ns) {
        dst->max_ns = src->max_ns;
    }
}

uint64_t
bench_hist_quantile(const struct bench_hist *h, double q)
{
    uint64_t rank, seen = 0, mid;

    if (h->count == 0) {
        return 0;
    }
    rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->count) {
        rank = h->count;
    }
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            mid = bench_hist_bucket_low(i) + bucket_width(i) / 2;
            return mid < h->max_ns ? mid : h->max_ns;
        }
    }
    return h->max_ns;
}

int
bench_result_init(struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    r->lat = calloc(1, sizeof *r->lat);
    r->ack = calloc(1, sizeof *r->ack);
    if (!r->lat || !r->ack) {
        bench_result_fini(r);
        return -ENOMEM;
    }
    return 0;
}

void
bench_result_fini(struct bench_result *r)
{
    free(r->lat);
    free(r->ack);
    r->lat = NULL;
    r->ack = NULL;
}
