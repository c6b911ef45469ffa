/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_raft_election.c: elections, votes, pre-vote, check-quorum and
 * stickiness of the core (paper §5.2, §5.4.1; thesis §3.10, §6.2, §9.6).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "fx_raft.h"
#include "base/base.h"
#include "raft/raft.h"

TestSuite(raft_election, .timeout = 10.0);

static struct fx_cluster fx;

static unsigned
count_msgs(unsigned from, enum raft_msg_type type)
{
    unsigned n = 0;

    for (unsigned k = 0; k < fx.n_q; k++) {
        n += fx.q[k].m.from == from && fx.q[k].m.type == type ? 1 : 0;
    }
    return n;
}

static struct raft_msg
vote_req(raft_id from, raft_id to, raft_term term, raft_index last,
         raft_term last_term)
{
    struct raft_msg m = {0};

    m.type = RAFT_MSG_VOTE;
    m.from = from;
    m.to = to;
    m.term = term;
    m.last_index = last;
    m.log_term = last_term;
    return m;
}

/* The last message r produced, after running its ready. */
static const struct raft_msg *
last_msg(void)
{
    return fx.n_q > 0 ? &fx.q[fx.n_q - 1].m : NULL;
}

/* A follower that hears nothing for its election timeout starts a
 * pre-vote round and leaves its term alone (thesis §9.6). */
Test(raft_election, timeout_starts_prevote_without_term_change)
{
    fx_cluster_init(&fx, 3, NULL);

    fx_tick(&fx, 1, 20);

    cr_assert_eq(raft_role(&fx.r[1]), RAFT_PRE_CANDIDATE);
    cr_expect_eq(raft_term_current(&fx.r[1]), 1);
    cr_expect_geq(count_msgs(1, RAFT_MSG_PREVOTE), 2);
    fx_cluster_fini(&fx);
}

/* With every node reachable one campaign elects exactly one leader, one
 * term up, and its no-op commits everywhere (paper §5.2, §8). */
Test(raft_election, single_leader_after_campaign)
{
    fx_cluster_init(&fx, 3, NULL);

    cr_assert(fx_elect(&fx, 1));
    fx_run(&fx, 4);

    cr_expect_eq(raft_term_current(&fx.r[1]), 2);
    for (unsigned id = 1; id <= 3; id++) {
        cr_expect_eq(raft_leader(&fx.r[id]), 1);
        cr_expect_eq(raft_commit_index(&fx.r[id]), 2);
    }
    cr_expect_eq(raft_role(&fx.r[2]), RAFT_FOLLOWER);
    fx_cluster_fini(&fx);
}

/* A vote is granted once per term: a second candidate of the same term
 * is refused (paper Figure 2, RequestVote rule 2). */
Test(raft_election, vote_granted_once_per_term)
{
    struct raft_msg a = vote_req(2, 1, 2, 1, 1), b = vote_req(3, 1, 2, 1, 1);

    fx_cluster_init(&fx, 3, NULL);

    raft_step(&fx.r[1], &a);
    fx_ready(&fx, 1);
    cr_assert_not(last_msg()->reject);
    raft_step(&fx.r[1], &b);
    fx_ready(&fx, 1);

    cr_expect(last_msg()->reject);
    cr_expect_eq(raft_voted_for(&fx.r[1]), 2);
    fx_cluster_fini(&fx);
}

/* The vote survives a restart: after a crash, the same term's second
 * candidate is still refused (paper Figure 2, persistent state). */
Test(raft_election, vote_survives_restart)
{
    struct raft_msg a = vote_req(2, 1, 2, 1, 1), b = vote_req(3, 1, 2, 1, 1);

    fx_cluster_init(&fx, 3, NULL);
    raft_step(&fx.r[1], &a);
    fx_ready(&fx, 1);

    fx_restart(&fx, 1);
    raft_step(&fx.r[1], &b);
    fx_ready(&fx, 1);

    cr_expect(last_msg()->reject);
    cr_expect_eq(raft_voted_for(&fx.r[1]), 2);
    fx_cluster_fini(&fx);
}

/* The reply granting a vote waits for the write of that vote: it is
 * tagged with the persist tag of the ready carrying the hard state. */
Test(raft_election, vote_reply_waits_for_persist)
{
    struct raft_msg a = vote_req(2, 1, 2, 1, 1);
    struct raft_ready rd;

    fx_cluster_init(&fx, 3, NULL);
    raft_step(&fx.r[1], &a);

    raft_ready(&fx.r[1], &rd);

    cr_assert_eq(rd.n_msgs, 1);
    cr_expect(rd.has_hard_state);
    cr_expect_eq(rd.hs.vote, 2);
    cr_expect_neq(rd.tag, 0);
    cr_expect_eq(rd.msgs[0].persist_tag, rd.tag);
    raft_ready_done(&fx.r[1]);
    fx_cluster_fini(&fx);
}

/* A candidate with a less up-to-date log is refused (paper §5.4.1). */
Test(raft_election, vote_refused_for_stale_log)
{
    struct raft_msg a = vote_req(2, 1, 3, 1, 1);

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));
    fx_isolate(&fx, 1, true);
    fx_propose(&fx, 1, "x");
    fx_restart(&fx, 1); /* forgets the leader, keeps its longer log */

    raft_step(&fx.r[1], &a);
    fx_ready(&fx, 1);

    cr_expect(last_msg()->reject);
    fx_cluster_fini(&fx);
}

/* A follower that heard from its leader within the minimum timeout
 * ignores a higher-term vote request and keeps its term (thesis §4.2.3
 * stickiness), but a transfer's request goes through (thesis §3.10). */
Test(raft_election, sticky_follower_ignores_votes_but_not_transfer)
{
    struct raft_msg a = vote_req(3, 2, 5, 9, 9);

    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));

    raft_step(&fx.r[2], &a);
    cr_expect_eq(raft_term_current(&fx.r[2]), 2);
    a.transfer = true;
    raft_step(&fx.r[2], &a);

    cr_expect_eq(raft_term_current(&fx.r[2]), 5);
    cr_expect_eq(raft_voted_for(&fx.r[2]), 3);
    fx_ready(&fx, 2);
    fx_cluster_fini(&fx);
}

/* A leader that hears from no quorum for an election timeout steps down
 * (thesis §6.2, check-quorum). */
Test(raft_election, leader_steps_down_without_quorum)
{
    fx_cluster_init(&fx, 3, NULL);
    cr_assert(fx_elect(&fx, 1));

    fx_isolate(&fx, 1, true);
    fx_tick(&fx, 1, 25);

    cr_expect_neq(raft_role(&fx.r[1]), RAFT_LEADER);
    cr_expect_eq(raft_term_current(&fx.r[1]), 2);
    fx_cluster_fini(&fx);
}

/* A single voter leads only once its term and vote are durable. */
Test(raft_election, single_voter_leads_after_persist)
{
    struct raft_options o;
    struct raft r;
    struct raft_ready rd;

    fx_opts(&o, 1);
    fx_boot(&r, &o, 1);
    for (unsigned k = 0; k < 20 && raft_role(&r) == RAFT_FOLLOWER; k++) {
        raft_tick(&r);
    }
    cr_assert_eq(raft_role(&r), RAFT_CANDIDATE);

    raft_ready(&r, &rd);
    raft_ready_done(&r);
    cr_expect_eq(raft_role(&r), RAFT_CANDIDATE);
    cr_assert_eq(raft_persisted(&r, rd.tag), 0);

    cr_expect_eq(raft_role(&r), RAFT_LEADER);
    raft_fini(&r);
}

/* A message from a peer that breaks the protocol is refused with
 * ERR_PROTO and changes nothing: never an assertion. */
Test(raft_election, malformed_messages_are_refused)
{
    struct raft_msg m = vote_req(1, 1, 9, 0, 0); /* from ourselves */
    struct raft_entry e = {2, 7, RAFT_ENTRY_NORMAL, 0, NULL};

    fx_cluster_init(&fx, 3, NULL);

    cr_expect_lt(raft_step(&fx.r[1], &m), 0);
    m.from = 2;
    m.type = (enum raft_msg_type)99;
    cr_expect_lt(raft_step(&fx.r[1], &m), 0);
    m.type = RAFT_MSG_APPEND;
    m.term = 2;
    m.index = 1;
    m.log_term = 1;
    m.n_entries = 1;
    m.entries = &e; /* index 7 does not follow prev 1 */
    cr_expect_lt(raft_step(&fx.r[1], &m), 0);

    cr_expect_eq(raft_last_index(&fx.r[1]), 1);
    fx_ready(&fx, 1);
    fx_cluster_fini(&fx);
}

/* A stale or unknown persist tag is recognised and changes nothing. */
Test(raft_election, stale_persist_tag_is_refused)
{
    fx_cluster_init(&fx, 3, NULL);

    cr_expect_eq(raft_persisted(&fx.r[1], 12345), RAFT_ERR_STALE);
    fx_cluster_fini(&fx);
}

/* Tick r k times, taking each ready without ever completing its write;
 * returns the tag of the last write handed out (0 if none). */
static uint64_t
tick_no_sync(struct raft *r, unsigned k, uint64_t tag)
{
    struct raft_ready rd;

    for (unsigned i = 0; i < k; i++) {
        raft_tick(r);
        if (raft_has_ready(r)) {
            raft_ready(r, &rd);
            tag = rd.tag != 0 ? rd.tag : tag;
            raft_ready_done(r);
        }
    }
    return tag;
}

/* A candidate does not give up its term while its own term and vote are
 * still being written; its election timer starts when that write ends
 * (paper §5.2 and §5.6, thesis §9.3). */
Test(raft_election, candidate_timer_starts_at_durable_vote)
{
    struct raft_options o;
    struct raft r;
    uint64_t tag;

    fx_opts(&o, 1);
    o.pre_vote = false;
    fx_boot(&r, &o, 3);

    tag = tick_no_sync(&r, 20, 0); /* timeouts are 10..20 ticks */
    cr_assert_eq(raft_role(&r), RAFT_CANDIDATE);
    cr_assert_eq(raft_term_current(&r), 2);
    cr_assert_neq(tag, 0);
    /* Five maximum timeouts with the vote still on its way to disk. */
    (void)tick_no_sync(&r, 100, tag);
    cr_expect_eq(raft_role(&r), RAFT_CANDIDATE);
    cr_expect_eq(raft_term_current(&r), 2);

    cr_assert_eq(raft_persisted(&r, tag), 0);
    (void)tick_no_sync(&r, 9, tag);
    cr_expect_eq(raft_term_current(&r), 2, "timer ran before the write");
    (void)tick_no_sync(&r, 11, tag);
    cr_expect_eq(raft_term_current(&r), 3, "no new election after it");
    raft_fini(&r);
}
