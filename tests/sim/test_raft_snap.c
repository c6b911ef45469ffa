/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_raft_snap.c: compaction and snapshots (paper §7, Figure 13).
 */
#include <criterion/criterion.h>

#include "fx_raft.h"
#include "base/base.h"
#include "raft/raft.h"

TestSuite(raft_snap, .timeout = 10.0);

static struct fx_cluster fx;

/* Taking a snapshot compacts the log but keeps the configured tail. */
Test(raft_snap, snapshot_compacts_behind_tail)
{
    struct raft_snapshot_meta meta;

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    for (int k = 0; k < 8; k++) {
        fx_propose(&fx, 1, "v");
        fx_stabilize(&fx, 100000);
    }
    cr_assert_eq(raft_applied_index(&fx.r[1]), 10);

    cr_assert_eq(raft_snapshot_taken(&fx.r[1], 10, &meta), 0);

    cr_expect_eq(meta.index, 10);
    cr_expect_eq(meta.term, 2);
    cr_expect_eq(raft_config_voters(&meta.config), 3);
    cr_expect_eq(raft_first_index(&fx.r[1]), 9); /* tail of 2 */
    cr_expect_eq(raft_snapshot_taken(&fx.r[1], 11, NULL), RAFT_ERR_STATE);
    fx_cluster_fini(&fx);
}

static bool
is_snapshot(const struct raft_msg *m, void *arg)
{
    unsigned *seen = arg;

    *seen += m->type == RAFT_MSG_SNAPSHOT;
    return true;
}

/* A follower behind the compacted log is sent a snapshot, installs it,
 * and then follows by entries again. */
Test(raft_snap, lagging_follower_gets_snapshot)
{
    unsigned seen = 0;

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_isolate(&fx, 3, true);
    for (int k = 0; k < 8; k++) {
        fx_propose(&fx, 1, "v");
        fx_stabilize(&fx, 100000);
    }
    cr_assert_eq(raft_snapshot_taken(&fx.r[1], 10, NULL), 0);
    fx.filter = is_snapshot;
    fx.filter_arg = &seen;

    fx_isolate(&fx, 3, false);
    fx_run(&fx, 6);

    cr_expect_geq(seen, 1);
    cr_expect_eq(raft_commit_index(&fx.r[3]), 10);
    cr_expect_eq(raft_first_index(&fx.r[3]), 11);
    fx_propose(&fx, 1, "after");
    fx_run(&fx, 3);
    cr_expect_eq(raft_last_index(&fx.r[3]), 11);
    fx_cluster_fini(&fx);
}

/* Installing a snapshot whose last entry we do not hold drops the whole
 * log, conflicting entries included (Figure 13, step 7). */
Test(raft_snap, install_drops_conflicting_log)
{
    struct raft_msg m = {0};
    struct raft_ready rd;

    fx_cluster_init(&fx, 3, NULL);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 2;
    m.to = 1;
    m.term = 3;
    m.snapshot.index = 20;
    m.snapshot.term = 3;
    m.snapshot.config = *raft_config(&fx.r[1]);

    cr_assert_eq(raft_step(&fx.r[1], &m), 0);

    raft_ready(&fx.r[1], &rd);
    cr_expect(rd.has_snapshot);
    cr_expect_eq(rd.snapshot.index, 20);
    cr_expect_eq(rd.n_entries, 0);
    cr_expect_eq(rd.n_msgs, 1);
    cr_expect_eq(rd.msgs[0].index, 20);
    cr_expect_eq(rd.msgs[0].persist_tag, rd.tag);
    raft_ready_done(&fx.r[1]);
    cr_expect_eq(raft_last_index(&fx.r[1]), 20);
    cr_expect_eq(raft_first_index(&fx.r[1]), 21);
    cr_expect_eq(raft_applied_index(&fx.r[1]), 20);
    fx_cluster_fini(&fx);
}

/* A snapshot message with nonsense metadata is refused, not asserted. */
Test(raft_snap, malformed_snapshot_is_refused)
{
    struct raft_msg m = {0};

    fx_cluster_init(&fx, 3, NULL);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 2;
    m.to = 1;
    m.term = 3;
    m.snapshot.index = 20;
    m.snapshot.term = 9; /* above the sender's term */

    cr_expect_eq(raft_step(&fx.r[1], &m), ERR_PROTO);
    cr_expect_eq(raft_last_index(&fx.r[1]), 1);
    fx_cluster_fini(&fx);
}
