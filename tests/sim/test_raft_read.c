/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_raft_read.c: linearizable reads by read index (thesis §6.4).
 */
#include <criterion/criterion.h>

#include "fx_raft.h"
#include "base/base.h"
#include "raft/raft.h"

TestSuite(raft_read, .timeout = 10.0);

static struct fx_cluster fx;

/* A new leader refuses reads until its no-op commits: before that its
 * commit index may lag the cluster's (thesis §6.4, step 1). */
Test(raft_read, new_leader_refuses_read_before_noop_commits)
{
    fx_cluster_init(&fx, 3, NULL);
    fx_tick(&fx, 1, 20);                          /* pre-vote out */
    fx_stabilize(&fx, 6);                         /* ... votes in */
    while (raft_role(&fx.r[1]) != RAFT_LEADER && fx.n_q > 0) {
        fx_stabilize(&fx, 1);
    }
    cr_assert_eq(raft_role(&fx.r[1]), RAFT_LEADER);
    cr_assert_lt(raft_commit_index(&fx.r[1]), 2);

    cr_expect_eq(raft_read_index(&fx.r[1], 7), RAFT_ERR_NOT_READY);

    fx_stabilize(&fx, 100000);
    cr_expect_eq(raft_read_index(&fx.r[1], 7), 0);
    fx_cluster_fini(&fx);
}

/* Reads become ready after one heartbeat round answered by a quorum, all
 * reads waiting for that round together, with the commit index as it was
 * when they arrived. */
Test(raft_read, reads_batched_in_one_heartbeat_round)
{
    unsigned hb = 0;

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);

    raft_read_index(&fx.r[1], 1);
    raft_read_index(&fx.r[1], 2);
    raft_read_index(&fx.r[1], 3);
    fx_ready(&fx, 1);
    for (unsigned k = 0; k < fx.n_q; k++) {
        hb += fx.q[k].m.type == RAFT_MSG_HEARTBEAT;
    }
    cr_expect_eq(hb, 2);                          /* one per follower */
    cr_expect_eq(fx.n_reads[1], 0);
    fx_stabilize(&fx, 100000);

    cr_assert_eq(fx.n_reads[1], 3);
    for (unsigned k = 0; k < 3; k++) {
        cr_expect_not(fx.reads[1][k].failed);
        cr_expect_eq(fx.reads[1][k].index, 2);
    }
    fx_cluster_fini(&fx);
}

/* A follower's read is answered through the leader with its index. */
Test(raft_read, follower_read_goes_through_leader)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);

    cr_assert_eq(raft_read_index(&fx.r[2], 9), 0);
    fx_stabilize(&fx, 100000);

    cr_assert_eq(fx.n_reads[2], 1);
    cr_expect_eq(fx.reads[2][0].ctx, 9);
    cr_expect_eq(fx.reads[2][0].index, 2);
    cr_expect_not(fx.reads[2][0].failed);
    fx_cluster_fini(&fx);
}

/* A leader cut off from the others never serves a read: the heartbeat
 * round cannot reach a quorum, and stepping down fails the read. */
Test(raft_read, isolated_leader_serves_no_read)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    fx_isolate(&fx, 1, true);

    raft_read_index(&fx.r[1], 5);
    fx_tick(&fx, 1, 30);

    cr_assert_eq(fx.n_reads[1], 1);
    cr_expect(fx.reads[1][0].failed);
    cr_expect_neq(raft_role(&fx.r[1]), RAFT_LEADER);
    fx_cluster_fini(&fx);
}
