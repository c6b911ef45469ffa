/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * sim_timing.c: election timing against the thesis (§9.4, Figure 16).
 *
 * Five servers, one-way latency uniform in [0.5, 1] ms (a LAN) and a
 * 14 ms disk sync, so a broadcast (round trip plus write) takes about
 * 15 ms as in LogCabin's runs (gigabit Ethernet, one SSD each).
 * Heartbeat = half the minimum timeout; ticks are 250 us with a random
 * phase per server. Each trial elects a leader, makes
 * two followers' logs lag (so two of the four survivors cannot win),
 * crashes the leader at a uniform point of its heartbeat interval (every
 * heartbeat is a broadcast to all followers) and measures until the new
 * leader's first APPEND or heartbeat has reached the three other
 * survivors, as the thesis measures.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define TIMING_TICKS_PER_MS 4 /* 250 us ticks: timers close to continuous */

struct timing_range {
    unsigned lo_ms, hi_ms;
};

static const struct timing_range ranges[] = {
    {150, 150}, {150, 155}, {150, 200}, {150, 300}, {12, 24},
};

static bool
has_leader(struct sim *s, void *arg)
{
    unsigned l = sim_leader(s);

    (void)arg;
    return l != 0 && raft_commit_index(&s->nodes[l].r) >=
                         raft_last_index(&s->nodes[l].r);
}

static bool
timing_done(struct sim *s, void *arg)
{
    (void)arg;
    return s->timing_done_us != 0;
}

/* One trial: returns the downtime in us, or SIM_NEVER. */
static uint64_t
trial(uint64_t seed, const struct timing_range *rg, bool pre_vote,
      unsigned *terms)
{
    struct sim *s = calloc(1, sizeof(*s));
    struct sim_mix x = {0};
    uint64_t out = SIM_NEVER, hb_us, crash_at;
    unsigned l, lag = 0;
    raft_term t0;

    ASSERT(s != NULL);
    x.n_voters = 5;
    x.pre_vote = pre_vote;
    x.check_quorum = pre_vote;
    x.election_ticks = rg->lo_ms * TIMING_TICKS_PER_MS;
    x.heartbeat_ticks = x.election_ticks / 2;
    x.tick_us = 1000 / TIMING_TICKS_PER_MS;
    x.lat_min_us = 500;
    x.lat_max_us = 1000;
    x.disk_min_us = 14000;
    x.disk_max_us = 14000;
    x.max_inflight = 4;
    x.snap_tail = 10;
    x.election_ticks_max = rg->hi_ms * TIMING_TICKS_PER_MS;
    sim_init(s, seed, &x);
    s->trace_out = getenv("SIM_TIMING_TRACE") != NULL ? stderr : NULL;
    if (!sim_run_until_cond(s, 12000000, has_leader, NULL)) {
        goto out;
    }
    l = sim_leader(s);
    /* Two followers stop receiving entries, so their logs lag. */
    for (unsigned id = 1; id <= 5 && lag < 2; id++) {
        if (id != l) {
            s->nodes[l].dropping_entries_to[id] = true;
            lag++;
        }
    }
    (void)sim_propose(s, l, 0, 1);
    sim_run_until(s, s->now + 100000);
    if (sim_leader(s) != l) {
        goto out;
    }
    /* Crash at a uniform point of the heartbeat interval: the leader
     * only sends its periodic broadcasts here, and a uniform draw over
     * one whole period makes the time since the last one uniform. */
    hb_us = (uint64_t)x.heartbeat_ticks * x.tick_us;
    crash_at = s->now + sim_rand_range(s, 0, hb_us);
    sim_run_until(s, crash_at);
    t0 = raft_term_current(&s->nodes[l].r);
    sim_crash(s, l);
    s->timing_after_term = t0;
    /* The thesis times "until the other servers received the new
     * leader's first heartbeat" (§9.4): all three survivors besides the
     * new leader, not just a majority. */
    s->timing_need = 3;
    if (sim_run_until_cond(s, s->now + 60000000, timing_done, NULL)) {
        out = s->timing_done_us - crash_at;
        *terms = 0;
        for (unsigned id = 1; id <= 5; id++) {
            if (s->nodes[id].up) {
                raft_term t = raft_term_current(&s->nodes[id].r);

                if (t - t0 > *terms) {
                    *terms = (unsigned)(t - t0);
                }
            }
        }
    }
    if (s->violated) {
        fprintf(stderr, "timing seed %" PRIu64 ": %s\n", seed, s->violation);
        out = SIM_NEVER;
    }
out:
    sim_fini(s);
    free(s);
    return out;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

int
sim_timing_main(unsigned trials, FILE *f)
{
    /* SIM_TIMING_TRACE=k traces one trial of range k to stderr; with
     * SIM_TIMING_SEED=n the n-th trial, with SIM_TIMING_OFF set with
     * pre-vote and check-quorum off. */
    if (getenv("SIM_TIMING_TRACE") != NULL) {
        const char *seed = getenv("SIM_TIMING_SEED");
        unsigned terms = 0, k = (unsigned)atoi(getenv("SIM_TIMING_TRACE"));
        uint64_t us;

        if (k >= ARRAY_LEN(ranges)) {
            return 2;
        }
        us = trial(1000003ULL * (k + 1) + (seed ? strtoull(seed, NULL, 0)
                                                 : 0),
                   &ranges[k], getenv("SIM_TIMING_OFF") == NULL, &terms);
        fprintf(f, "trial: %" PRIu64 " us, %u terms\n", us, terms);
        return 0;
    }
    uint64_t *d = calloc(trials, sizeof(*d));

    ASSERT(d != NULL);
    fprintf(f, "| timeout (ms) | pre-vote + check-quorum | median | mean | "
            "p99 | max | trials needing >1 term | no leader |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < ARRAY_LEN(ranges); k++) {
        for (int pv = 0; pv < 2; pv++) {
            unsigned n = 0, failed = 0, splits = 0;
            unsigned todo = trials;
            uint64_t sum = 0;

            /* Like the thesis, 100 trials for the range without
             * randomness: each failing one costs 12 simulated s. */
            if (ranges[k].lo_ms == ranges[k].hi_ms && todo > 100) {
                todo = 100;
            }
            for (unsigned t = 0; t < todo; t++) {
                unsigned terms = 0;
                uint64_t us = trial(1000003ULL * (k + 1) + t, &ranges[k],
                                    pv != 0, &terms);

                if (us == SIM_NEVER) { /* no leader within 12 s */
                    failed++;
                    continue;
                }
                d[n++] = us;
                sum += us;
                splits += terms > 1 ? 1 : 0;
            }
            qsort(d, n, sizeof(*d), cmp_u64);
            if (n == 0) {
                fprintf(f, "| %u-%u | %s | - | - | - | - | - | %u |\n",
                        ranges[k].lo_ms, ranges[k].hi_ms, pv ? "on" : "off",
                        failed);
                continue;
            }
            fprintf(f, "| %u-%u | %s | %.1f | %.1f | %.1f | %.1f | %u | %u "
                    "|\n", ranges[k].lo_ms, ranges[k].hi_ms,
                    pv ? "on" : "off", d[n / 2] / 1000.0,
                    (double)sum / n / 1000.0,
                    d[(size_t)(n * 99 / 100) < n ? n * 99 / 100 : n - 1] /
                        1000.0,
                    d[n - 1] / 1000.0, splits, failed);
            fflush(f);
        }
    }
    free(d);
    return 0;
}
