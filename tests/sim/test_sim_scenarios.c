/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_sim_scenarios.c: scripted scenarios with fixed schedules, and the
 * simulator's own determinism.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fx_raft.h"
#include "raft/raft.h"
#include "sim.h"

TestSuite(raft_scenario, .timeout = 60.0);

static struct fx_cluster fx;

/* A leader partitioned away keeps its term but commits nothing, while
 * the majority elects a new leader that commits; on healing the old
 * leader steps down and its uncommitted entry is replaced. */
Test(raft_scenario, partitioned_leader_while_new_one_commits)
{
    raft_index committed;

    fx_cluster_init(&fx, 5, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    fx_isolate(&fx, 1, true);
    fx_propose(&fx, 1, "stale");
    committed = raft_commit_index(&fx.r[1]);

    cr_assert(fx_elect(&fx, 2) || fx_elect(&fx, 2));
    fx_propose(&fx, 2, "fresh");
    fx_run(&fx, 4);
    cr_expect_eq(raft_commit_index(&fx.r[1]), committed);
    cr_expect_gt(raft_commit_index(&fx.r[2]), committed);

    fx_isolate(&fx, 1, false);
    fx_run(&fx, 8);

    cr_expect_eq(raft_role(&fx.r[1]), RAFT_FOLLOWER);
    cr_expect_eq(raft_leader(&fx.r[1]), 2);
    cr_expect_eq(raft_term_at(&fx.r[1], committed + 1),
                 raft_term_at(&fx.r[2], committed + 1));
    cr_expect_eq(raft_commit_index(&fx.r[1]), raft_commit_index(&fx.r[2]));
    fx_cluster_fini(&fx);
}

/* In a five-node cluster, a follower that can reach only one other node
 * never raises its term or anyone else's: pre-vote is refused by a node
 * that hears the leader, and the leader keeps its quorum (Howard and
 * Abraham's partial-connectivity case; RAFT.md §4, Cloudflare 2020). */
Test(raft_scenario, partial_connectivity_causes_no_term_churn)
{
    raft_term before;

    fx_cluster_init(&fx, 5, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    before = raft_term_current(&fx.r[1]);
    for (unsigned k = 1; k <= 3; k++) {
        fx.cut[5][k] = fx.cut[k][5] = true;
    }

    fx_run(&fx, 500);

    for (unsigned id = 1; id <= 5; id++) {
        cr_expect_eq(raft_term_current(&fx.r[id]), before, "n%u", id);
    }
    cr_expect_eq(raft_role(&fx.r[1]), RAFT_LEADER);
    cr_expect_eq(fx_propose(&fx, 1, "still serving"), 0);
    fx_cluster_fini(&fx);
}

/* The same partial connectivity in the simulator, with random timers and
 * latency: no term moves for two simulated seconds. */
Test(raft_scenario, partial_connectivity_in_simulator)
{
    struct sim *s = calloc(1, sizeof(*s));
    struct sim_mix x = {0};
    unsigned l;
    raft_term before;

    x.n_voters = 5;
    x.pre_vote = true;
    x.check_quorum = true;
    x.election_ticks = 10;
    x.heartbeat_ticks = 2;
    x.tick_us = 1000;
    x.lat_min_us = 500;
    x.lat_max_us = 1500;
    x.disk_min_us = 200;
    x.disk_max_us = 800;
    x.max_inflight = 4;
    sim_init(s, 77, &x);
    sim_run_until(s, 500000);
    l = sim_leader(s);
    cr_assert_neq(l, 0);
    before = raft_term_current(&s->nodes[l].r);
    for (unsigned id = 1; id <= 5; id++) {
        unsigned lonely = l == 5 ? 4 : 5, buddy = lonely == 5 ? 4 : 3;

        if (id != lonely && id != buddy) {
            sim_block(s, lonely, id, true);
            sim_block(s, id, lonely, true);
        }
    }

    sim_run_until(s, 2500000);

    cr_expect_not(s->violated, "%s", s->violation);
    for (unsigned id = 1; id <= 5; id++) {
        cr_expect_eq(raft_term_current(&s->nodes[id].r), before, "n%u", id);
    }
    sim_fini(s);
    free(s);
}

static char *
run_to_memory(uint64_t seed, size_t *len, uint64_t *hash)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);

    cr_assert_not_null(f);
    cr_assert_eq(sim_run_seed(seed, false, f, hash), 0);
    fclose(f);
    return buf;
}

/* The same seed replays the same trace, byte for byte (acceptance 3). */
Test(raft_scenario, same_seed_same_trace)
{
    size_t la, lb;
    uint64_t ha, hb;
    char *a = run_to_memory(5, &la, &ha);
    char *b = run_to_memory(5, &lb, &hb);

    cr_expect_gt(la, 1000);
    cr_expect_eq(la, lb);
    cr_expect_eq(memcmp(a, b, la < lb ? la : lb), 0);
    cr_expect_eq(ha, hb);
    free(a);
    free(b);
}

/* Different seeds draw different runs. */
Test(raft_scenario, different_seeds_differ)
{
    uint64_t ha, hb;

    cr_assert_eq(sim_run_seed(5, false, NULL, &ha), 0);
    cr_assert_eq(sim_run_seed(6, false, NULL, &hb), 0);

    cr_expect_neq(ha, hb);
}

/* The linearizability checker refuses a stale read: a read that returns
 * the old value after a write completed before it began. */
Test(raft_scenario, lin_checker_rejects_stale_read)
{
    struct sim_op ops[] = {
        {SIM_OP_WRITE, 0, 1, 0, 10},
        {SIM_OP_WRITE, 0, 2, 20, 30},
        {SIM_OP_READ, 0, 1, 40, 50},
    };
    char why[128];

    cr_expect_eq(sim_lin_check(ops, 3, why, sizeof(why)), 1);
    ops[2].value = 2;
    cr_expect_eq(sim_lin_check(ops, 3, why, sizeof(why)), 0);
}

/* Concurrent operations may take effect in either order, and a write of
 * unknown outcome may or may not have happened. */
Test(raft_scenario, lin_checker_accepts_concurrency_and_unknowns)
{
    struct sim_op ops[] = {
        {SIM_OP_WRITE, 1, 1, 0, 100},
        {SIM_OP_READ, 1, 1, 10, 20},
        {SIM_OP_READ, 1, 0, 30, 40},
        {SIM_OP_WRITE, 1, 7, 50, SIM_NEVER},
        {SIM_OP_READ, 1, 1, 150, 160},
    };
    char why[128];

    /* Read 1 then 0 inside the write is not linearizable... */
    cr_expect_eq(sim_lin_check(ops, 5, why, sizeof(why)), 1);
    /* ... but 0 then 1 is. */
    ops[1].value = 0;
    ops[2].value = 1;
    cr_expect_eq(sim_lin_check(ops, 5, why, sizeof(why)), 0);
    /* The unknown write may be seen later, or never. */
    ops[4].value = 7;
    cr_expect_eq(sim_lin_check(ops, 5, why, sizeof(why)), 0);
}
