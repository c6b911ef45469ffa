/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_raft_repl.c: replication, the commit rule and flow control (paper
 * §5.3, §5.4.2, Figure 2 and Figure 8; thesis §10.2.1).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "fx_raft.h"
#include "base/base.h"
#include "raft/raft.h"

TestSuite(raft_repl, .timeout = 10.0);

static struct fx_cluster fx;

/* Figure 8 of the paper, scripted: an entry of an older term replicated
 * on a majority by a later leader is not committed by counting, so the
 * leader that then overwrites it does not undo a commit (§5.4.2). Pre-vote
 * and check-quorum are off, as in the paper. */
Test(raft_repl, figure8_old_term_not_committed_by_counting)
{
    struct raft_options o;

    fx_opts(&o, 1);
    o.pre_vote = false;
    o.check_quorum = false;
    fx_cluster_init(&fx, 5, &o);
    cr_assert(fx_elect(&fx, 1));                 /* (a) S1 leads term 2 */
    fx_isolate(&fx, 1, true);
    fx.cut[1][2] = fx.cut[2][1] = false;
    fx_propose(&fx, 1, "a");                     /* (3, t2) on S1, S2 */
    fx_stabilize(&fx, 1000);
    cr_assert_eq(raft_term_at(&fx.r[2], 3), 2);

    fx_isolate(&fx, 1, true);                    /* (b) S1 crashes */
    fx.trim_from = 5;                            /* S5's no-op stays home */
    fx.trim_index = 3;
    cr_assert(fx_elect(&fx, 5));                 /* S5 leads term 3 */
    cr_assert_eq(raft_term_at(&fx.r[5], 3), 3);
    cr_assert_eq(raft_last_index(&fx.r[3]), 2);

    fx_isolate(&fx, 5, true);                    /* (c) S5 crashes, */
    fx_restart(&fx, 1);                          /* S1 comes back */
    fx_isolate(&fx, 1, false);
    fx_isolate(&fx, 5, true);
    fx.trim_from = 1;                            /* its no-op stays home */
    fx.trim_index = 4;
    cr_assert(fx_elect(&fx, 1));                 /* S1 leads term 4 */
    fx_run(&fx, 3);
    cr_assert_eq(raft_term_current(&fx.r[1]), 4);
    cr_assert_eq(raft_term_at(&fx.r[3], 3), 2);  /* (3, t2) on S1-S3 */

    cr_expect_lt(raft_commit_index(&fx.r[1]), 3);

    fx_isolate(&fx, 1, true);                    /* (d) S1 crashes, */
    fx_restart(&fx, 5);                          /* S5 comes back */
    fx_isolate(&fx, 5, false);
    fx_isolate(&fx, 1, true);
    fx.trim_index = 0;
    cr_assert(fx_elect(&fx, 5));                 /* S5 leads term 5 */
    fx_run(&fx, 3);
    cr_expect_eq(raft_term_at(&fx.r[3], 3), 3);  /* overwritten: fine */
    fx_cluster_fini(&fx);
}

/* A follower drops a conflicting suffix and takes the leader's entries
 * (paper Figure 2, AppendEntries rule 3). */
Test(raft_repl, follower_truncates_conflicting_suffix)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_isolate(&fx, 1, true);
    fx_propose(&fx, 1, "lost");                  /* (3, t2) only on S1 */
    cr_assert(fx_elect(&fx, 2));
    fx_propose(&fx, 2, "kept");
    fx_stabilize(&fx, 1000);

    fx_isolate(&fx, 1, false);
    fx_run(&fx, 5);

    cr_expect_eq(raft_term_at(&fx.r[1], 3), raft_term_at(&fx.r[2], 3));
    cr_expect_eq(raft_last_index(&fx.r[1]), raft_last_index(&fx.r[2]));
    cr_expect_eq(raft_commit_index(&fx.r[1]), raft_commit_index(&fx.r[2]));
    fx_cluster_fini(&fx);
}

/* A follower's commit index never passes the last entry the append
 * carrying it matched (paper Figure 2, AppendEntries rule 5). */
Test(raft_repl, follower_commit_bounded_by_matched_entries)
{
    struct raft_msg m = {0};
    struct raft_entry e = {2, 2, RAFT_ENTRY_NORMAL, 0, NULL};

    fx_cluster_init(&fx, 3, NULL);
    m.type = RAFT_MSG_APPEND;
    m.from = 2;
    m.to = 1;
    m.term = 2;
    m.index = 1;
    m.log_term = 1;
    m.commit = 50;
    m.n_entries = 1;
    m.entries = &e;

    cr_assert_eq(raft_step(&fx.r[1], &m), 0);

    cr_expect_eq(raft_commit_index(&fx.r[1]), 2);
    fx_ready(&fx, 1);
    fx_cluster_fini(&fx);
}

/* A rejection carries a hint that lets the leader skip a whole term of
 * conflicting entries in one step (paper end of §5.3). */
Test(raft_repl, rejection_hint_skips_conflicting_term)
{
    struct raft_msg m = {0};

    fx_cluster_init(&fx, 3, NULL);
    m.type = RAFT_MSG_APPEND;
    m.from = 2;
    m.to = 1;
    m.term = 5;
    m.index = 40;
    m.log_term = 4;

    raft_step(&fx.r[1], &m);
    fx_ready(&fx, 1);

    cr_assert_eq(fx.q[fx.n_q - 1].m.type, RAFT_MSG_APPEND_RESP);
    cr_expect(fx.q[fx.n_q - 1].m.reject);
    cr_expect_eq(fx.q[fx.n_q - 1].m.hint_index, 1);
    fx_cluster_fini(&fx);
}

/* The leader counts itself only once its own write is durable, so an
 * entry acked by one follower of three is not committed before the
 * leader's write completes (thesis §10.2.1). */
Test(raft_repl, leader_counts_itself_only_when_durable)
{
    struct raft_ready rd;
    struct raft_msg ack = {0};

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    raft_propose(&fx.r[1], "x", 1, NULL, NULL);
    raft_ready(&fx.r[1], &rd);
    raft_ready_done(&fx.r[1]);                   /* write not done */
    ack.type = RAFT_MSG_APPEND_RESP;
    ack.from = 2;
    ack.to = 1;
    ack.term = 2;
    ack.index = 3;
    cr_assert_eq(raft_step(&fx.r[1], &ack), 0);
    ack.from = 3;
    raft_step(&fx.r[1], &ack);
    cr_expect_eq(raft_commit_index(&fx.r[1]), 3); /* two followers */

    cr_assert_eq(raft_persisted(&fx.r[1], rd.tag), 0);
    cr_expect_eq(raft_stable_index(&fx.r[1]), 3);
    fx_ready(&fx, 1);
    fx_cluster_fini(&fx);
}

/* Entries are counted by the leader only after its own durability: with
 * one follower ack and no local write, nothing commits. */
Test(raft_repl, one_ack_without_leader_write_does_not_commit)
{
    struct raft_ready rd;
    struct raft_msg ack = {0};

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    raft_propose(&fx.r[1], "x", 1, NULL, NULL);
    raft_ready(&fx.r[1], &rd);
    raft_ready_done(&fx.r[1]);
    ack.type = RAFT_MSG_APPEND_RESP;
    ack.from = 2;
    ack.to = 1;
    ack.term = 2;
    ack.index = 3;

    raft_step(&fx.r[1], &ack);

    cr_expect_eq(raft_commit_index(&fx.r[1]), 2);
    raft_persisted(&fx.r[1], rd.tag);
    cr_expect_eq(raft_commit_index(&fx.r[1]), 3);
    fx_ready(&fx, 1);
    fx_cluster_fini(&fx);
}

/* An APPEND acking an index the leader never had is a protocol error. */
Test(raft_repl, ack_beyond_log_is_refused)
{
    struct raft_msg ack = {0};

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    ack.type = RAFT_MSG_APPEND_RESP;
    ack.from = 2;
    ack.to = 1;
    ack.term = 2;
    ack.index = 99;

    cr_expect_eq(raft_step(&fx.r[1], &ack), ERR_PROTO);
    fx_ready(&fx, 1);
    fx_cluster_fini(&fx);
}

/* Proposals beyond the uncommitted-bytes cap are refused, retryably. */
Test(raft_repl, uncommitted_cap_refuses_proposals)
{
    struct raft_options o;
    int rc = 0;

    fx_opts(&o, 1);
    o.max_uncommitted_bytes = 10;
    fx_cluster_init(&fx, 3, &o);
    cr_assert(fx_elect(&fx, 1));
    fx_isolate(&fx, 1, true);

    for (int k = 0; k < 5 && rc == 0; k++) {
        rc = fx_propose(&fx, 1, "abcd");
    }

    cr_expect_eq(rc, RAFT_ERR_BUSY);
    fx_cluster_fini(&fx);
}

/* In pipeline state no more than max_inflight_msgs APPENDs are in flight
 * to one follower. */
Test(raft_repl, pipeline_bounded_by_inflight_window)
{
    unsigned to2 = 0;

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    fx_isolate(&fx, 1, true);
    for (int k = 0; k < 10; k++) {
        fx_propose(&fx, 1, "e");
    }

    for (unsigned k = 0; k < fx.n_q; k++) {
        to2 += fx.q[k].m.to == 2 && fx.q[k].m.type == RAFT_MSG_APPEND &&
               fx.q[k].m.n_entries > 0;
    }

    cr_expect_eq(to2, 4);
    fx_cluster_fini(&fx);
}

/* Proposals to a non-leader are refused. */
Test(raft_repl, follower_refuses_proposals)
{
    fx_cluster_init(&fx, 3, NULL);

    cr_expect_eq(fx_propose(&fx, 2, "x"), RAFT_ERR_NOT_LEADER);
    fx_cluster_fini(&fx);
}
