/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_raft_member.c: membership changes and leadership transfer (thesis
 * §3.10, §4.1, §4.2).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "fx_raft.h"
#include "base/base.h"
#include "raft/raft.h"

TestSuite(raft_member, .timeout = 10.0);

static struct fx_cluster fx;

/* Boot node id as a fresh server that knows no config: it joins. */
static void
boot_joiner(unsigned id)
{
    struct raft_options o;
    struct raft_hard_state hs = {0, 0};

    fx_opts(&o, id);
    cr_assert_eq(raft_init(&fx.r[id], &o), 0);
    cr_assert_eq(raft_restore(&fx.r[id], &hs, NULL, NULL, 0), 0);
    fx.n = id;
}

/* A new server joins as a non-voter, catches up, and is promoted to
 * voter automatically (thesis §4.2.1). */
Test(raft_member, new_server_promoted_after_catch_up)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    boot_joiner(4);

    cr_assert_eq(raft_add_voter(&fx.r[1], 4), 0);
    cr_expect_eq(raft_add_voter(&fx.r[1], 4), RAFT_ERR_CHANGE_PENDING);
    fx_run(&fx, 10);

    cr_expect(raft_config_find(raft_config(&fx.r[1]), 4)->voter);
    cr_expect_eq(raft_config_voters(raft_config(&fx.r[4])), 4);
    cr_expect_eq(raft_role(&fx.r[4]), RAFT_FOLLOWER);
    fx_cluster_fini(&fx);
}

/* A server that never answers is not promoted: after the catch-up rounds
 * the change fails and it stays a non-voter. */
Test(raft_member, unreachable_server_not_promoted)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);

    cr_assert_eq(raft_add_voter(&fx.r[1], 6), 0);
    fx_run(&fx, 80);

    cr_expect_not(raft_config_find(raft_config(&fx.r[1]), 6)->voter);
    cr_expect_eq(fx.r[1].catchup_id, 0);
    fx_cluster_fini(&fx);
}

/* A removed id is tombstoned: it can never be added again. */
Test(raft_member, removed_id_cannot_rejoin)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);

    cr_assert_eq(raft_remove(&fx.r[1], 3), 0);
    fx_run(&fx, 2);

    cr_expect_null(raft_config_find(raft_config(&fx.r[1]), 3));
    cr_expect(raft_config_is_removed(raft_config(&fx.r[2]), 3));
    cr_expect_eq(raft_add_voter(&fx.r[1], 3), RAFT_ERR_REMOVED);
    fx_cluster_fini(&fx);
}

/* Removing a voter when the rest cannot form a quorum is refused, and
 * the helper says so beforehand. */
Test(raft_member, removal_refused_without_reachable_quorum)
{
    fx_cluster_init(&fx, 5, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    fx_isolate(&fx, 4, true);
    fx_isolate(&fx, 5, true);
    fx_run(&fx, 15);

    cr_expect_not(raft_can_remove(&fx.r[1], 2));
    cr_expect_eq(raft_remove(&fx.r[1], 2), RAFT_ERR_NO_QUORUM);
    cr_expect(raft_can_remove(&fx.r[1], 4));
    fx_cluster_fini(&fx);
}

/* Changes are refused before the leader has committed in its term, and
 * while an earlier change is uncommitted (thesis §4.1). */
Test(raft_member, change_refused_while_one_pending)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    fx_isolate(&fx, 1, true);

    cr_assert_eq(raft_add_nonvoter(&fx.r[1], 7), 0);

    cr_expect_eq(raft_add_nonvoter(&fx.r[1], 8), RAFT_ERR_CHANGE_PENDING);
    fx_cluster_fini(&fx);
}

/* A transfer brings the target up to date, has it campaign at once, and
 * refuses proposals meanwhile (thesis §3.10). */
Test(raft_member, transfer_hands_over_leadership)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);

    cr_assert_eq(raft_transfer(&fx.r[1], 3), 0);
    cr_expect_eq(fx_propose(&fx, 1, "x"), RAFT_ERR_TRANSFER);
    fx_stabilize(&fx, 100000);

    cr_expect_eq(raft_role(&fx.r[3]), RAFT_LEADER);
    cr_expect_eq(raft_term_current(&fx.r[3]), 3);
    cr_expect_eq(raft_leader(&fx.r[1]), 3);
    fx_cluster_fini(&fx);
}

/* A transfer to an unreachable target gives up after an election
 * timeout, and proposals are accepted again. */
Test(raft_member, transfer_gives_up_after_timeout)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 2);
    fx_isolate(&fx, 3, true);
    fx_propose(&fx, 1, "behind");
    fx_stabilize(&fx, 100000);

    cr_assert_eq(raft_transfer(&fx.r[1], 3), 0);
    fx_tick(&fx, 1, 12);

    cr_expect_not(raft_is_transferring(&fx.r[1]));
    cr_expect_eq(fx_propose(&fx, 1, "y"), 0);
    fx_cluster_fini(&fx);
}

/* The config codec round-trips and refuses truncated input. */
Test(raft_member, config_codec_round_trip)
{
    struct raft_config c = {0}, d;
    uint32_t len;
    uint8_t *buf;

    c.n_members = 2;
    c.members[0].id = 5;
    c.members[0].voter = true;
    c.members[1].id = 9;
    c.n_removed = 1;
    c.removed[0] = 3;
    buf = raft_config_encode(&c, &len);

    cr_assert_eq(raft_config_decode(buf, len, &d), 0);
    cr_expect_eq(d.n_members, 2);
    cr_expect(d.members[0].voter);
    cr_expect_not(d.members[1].voter);
    cr_expect(raft_config_is_removed(&d, 3));
    cr_expect_eq(raft_config_decode(buf, len - 1, &d), ERR_PROTO);
    free(buf);
}
