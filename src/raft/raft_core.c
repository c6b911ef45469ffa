/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_core.c: roles, elections, time and message dispatch.
 *
 * Owns the node's role, term and vote, the election timer, pre-vote and
 * check-quorum. Replication lives in raft_repl.c, reads in raft_read.c,
 * membership and transfer in raft_member.c.
 *
 *                 timeout                 pre-vote quorum
 *   FOLLOWER ---------------> PRE_CANDIDATE ---------------> CANDIDATE
 *      ^  ^  (pre_vote off: straight to CANDIDATE; TIMEOUT_NOW too) |
 *      |  |                                                         |
 *      |  +------ higher term, or a leader of our term -------------+
 *      |                                                 vote quorum|
 *      +---- higher term, or check-quorum fails ------ LEADER <-----+
 *
 * Safety rules kept here, with their source:
 *  - one vote per term, persisted before it is announced (paper §5.2,
 *    Figure 2; the persist_tag of the reply enforces the order);
 *  - a vote only for a log at least as up-to-date (paper §5.4.1);
 *  - pre-vote changes no state (thesis §9.6);
 *  - votes are ignored while a leader is heard from within the minimum
 *    election timeout, unless the candidate runs a transfer (thesis §4.2.3
 *    and §3.10);
 *  - a leader that hears from no quorum for an election timeout steps
 *    down (thesis §6.2).
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

raft_index
raft__index_max(raft_index a, raft_index b)
{
    return a > b ? a : b;
}

raft_index
raft__index_min(raft_index a, raft_index b)
{
    return a < b ? a : b;
}

/* splitmix64: the seed comes from the driver, nothing else is random. */
static uint64_t
rng_next(struct raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Randomized election timeout in [min, max] (paper §5.2). */
static void
reset_timeout(struct raft *r)
{
    unsigned span = r->opt.election_ticks_max - r->opt.election_ticks + 1;

    r->election_elapsed = 0;
    r->timeout = r->opt.election_ticks + (unsigned)(rng_next(r) % span);
}

int
raft_init(struct raft *r, const struct raft_options *o)
{
    memset(r, 0, sizeof(*r));
    if (o->id == 0 || o->election_ticks == 0 || o->heartbeat_ticks == 0 ||
        o->heartbeat_ticks >= o->election_ticks ||
        o->election_ticks_max < o->election_ticks ||
        o->max_inflight_msgs == 0 ||
        o->max_inflight_msgs > RAFT_MAX_INFLIGHT ||
        o->max_msg_entries == 0) {
        return RAFT_ERR_STATE;
    }
    r->prs = calloc(RAFT_MAX_MEMBERS, sizeof(*r->prs));
    if (r->prs == NULL) {
        return ERR_NOMEM;
    }
    r->opt = *o;
    r->id = o->id;
    r->rng = o->seed ^ (o->id * 0x2545f4914f6cdd1dULL);
    r->role = RAFT_FOLLOWER;
    r->unstable = 1;
    r->next_tag = 1;
    reset_timeout(r);
    return 0;
}

void
raft_fini(struct raft *r)
{
    raft__log_fini(&r->log);
    free(r->prs);
    free(r->reads);
    free(r->msgs);
    free(r->ready_reads);
    free(r->events);
    free(r->writes);
    memset(r, 0, sizeof(*r));
}

static bool
is_fresh(const struct raft *r)
{
    return r->term == 0 && r->log.n == 0 && r->log.base == 0 &&
           r->n_msgs == 0;
}

int
raft_restore(struct raft *r, const struct raft_hard_state *hs,
             const struct raft_snapshot_meta *snap,
             const struct raft_entry *entries, size_t n_entries)
{
    raft_index base = snap != NULL ? snap->index : 0;
    int rc;

    if (!is_fresh(r)) {
        return RAFT_ERR_STATE;
    }
    if (snap != NULL && snap->index > 0) {
        raft__log_reset(&r->log, snap->index, snap->term, &snap->config);
        r->snap = *snap;
    }
    for (size_t k = 0; k < n_entries; k++) {
        const struct raft_entry *e = &entries[k];

        if (e->index <= base) {
            continue;
        }
        if (e->index != raft__log_last(&r->log) + 1 ||
            e->term < raft__log_last_term(&r->log)) {
            rc = ERR_PROTO;
            goto fail;
        }
        rc = raft__log_append(&r->log, e->term, e->type, e->data, e->len);
        if (rc != 0) {
            goto fail;
        }
    }
    r->term = hs->term;
    r->vote = hs->vote;
#ifdef RAFT_BROKEN_VOTE
    r->vote = 0; /* the broken variant: a restart forgets its vote */
#endif
    /* What was handed to us is durable by definition; the snapshot is
     * applied by the driver, so applying resumes after it (paper §7). */
    r->commit = base;
    r->applied = base;
    r->apply_to = base;
    r->stable = raft__log_last(&r->log);
    r->unstable = r->stable + 1;
    raft__reload_config(r);
    reset_timeout(r);
    return 0;

fail:
    ASSERT(rc != 0);
    raft__log_reset(&r->log, 0, 0, &r->log.base_config);
    memset(&r->snap, 0, sizeof(r->snap));
    return rc;
}

int
raft_bootstrap(struct raft *r, const struct raft_config *cfg)
{
    uint8_t *buf;
    uint32_t len;
    int rc;

    if (!is_fresh(r) || !raft__is_voter(cfg, r->id)) {
        return RAFT_ERR_STATE;
    }
    buf = raft_config_encode(cfg, &len);
    if (buf == NULL) {
        return ERR_NOMEM;
    }
    rc = raft__log_append(&r->log, 1, RAFT_ENTRY_CONFIG, buf, len);
    free(buf);
    if (rc != 0) {
        return rc;
    }
    r->term = 1;
    r->hs_dirty = true;
    raft__reload_config(r);
    return 0;
}

/* Re-read the membership from the log: the latest config entry is in
 * effect as soon as it is appended (thesis §4.1), and a truncation that
 * removes it brings back the one before. */
void
raft__reload_config(struct raft *r)
{
    int rc;

    rc = raft__log_config_at(&r->log, raft__log_last(&r->log), &r->config,
                             &r->config_index);
    ASSERT(rc == 0);
    if (r->role == RAFT_LEADER) {
        raft__pr_sync(r);
    }
}

void
raft__event(struct raft *r, enum raft_event_type type, raft_id id,
            raft_index index)
{
    struct raft_event *ev;

    if (r->n_events == r->cap_events) {
        size_t cap = r->cap_events != 0 ? 2 * r->cap_events : 8;
        struct raft_event *grown = realloc(r->events, cap * sizeof(*grown));

        if (grown == NULL) {
            return; /* events are advisory: losing one is harmless */
        }
        r->events = grown;
        r->cap_events = cap;
    }
    ev = &r->events[r->n_events++];
    ev->type = type;
    ev->role = raft_role(r);
    ev->term = r->term;
    ev->id = id;
    ev->index = index;
}

/* Queue m for the next ready. persist_tag is settled in raft_ready(). */
int
raft__send(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg *out;

    ASSERT(m->to != 0 && m->to != r->id);
    if (r->n_msgs == r->cap_msgs) {
        size_t cap = r->cap_msgs != 0 ? 2 * r->cap_msgs : 16;
        struct raft_msg *grown = realloc(r->msgs, cap * sizeof(*grown));

        if (grown == NULL) {
            return ERR_NOMEM;
        }
        r->msgs = grown;
        r->cap_msgs = cap;
    }
    out = &r->msgs[r->n_msgs++];
    *out = *m;
    out->from = r->id;
    if (out->term == 0) {
        out->term = r->term;
    }
    return 0;
}

static void
set_term(struct raft *r, raft_term term)
{
    if (term != r->term) {
        ASSERT(term > r->term);
        r->term = term;
        r->vote = 0;
        r->hs_dirty = true;
    }
}

static void
leave_leader(struct raft *r)
{
    if (r->role == RAFT_LEADER) {
        raft__reads_fail_all(r);
        r->transferee = 0;
        r->catchup_id = 0;
        r->uncommitted_bytes = 0;
    }
}

void
raft__become_follower(struct raft *r, raft_term term, raft_id leader)
{
    enum raft_role before = raft_role(r);
    raft_id leader_before = r->leader;

    /* The election timer restarts on hearing a leader, or when a leader
     * steps down; merely learning a higher term from a candidate keeps
     * it running, as LogCabin does, so that a candidate that cannot win
     * does not push back everyone's next election (paper §5.2: only a
     * leader's RPC or a granted vote resets the timer). */
    if (leader != 0 || r->role == RAFT_LEADER) {
        reset_timeout(r);
    }
    leave_leader(r);
    set_term(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    ASSERT(r->n_reads == 0);
    if (raft_role(r) != before || leader != leader_before) {
        raft__event(r, RAFT_EV_ROLE, leader, 0);
    }
}

static void
become_leader(struct raft *r)
{
    int rc;

    ASSERT(r->role == RAFT_CANDIDATE);
    ASSERT(r->vote == r->id && raft__is_voter(&r->config, r->id));
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->heartbeat_elapsed = 0;
    r->election_elapsed = 0;
    r->read_round_sent = 0;
    r->read_broadcast = false;
    r->transferee = 0;
    r->catchup_id = 0;
    r->uncommitted_bytes = 0;
    raft__pr_reset_all(r);
    raft__event(r, RAFT_EV_ROLE, r->id, 0);
    /* A no-op at the start of the term lets the leader commit, and so
     * learn the commit index, without a client write (paper §8, thesis
     * §6.4). */
    rc = raft__leader_append(r, RAFT_ENTRY_NOOP, NULL, 0);
    if (rc != 0) {
        raft__become_follower(r, r->term, 0);
        return;
    }
    raft__broadcast_append(r);
}

static bool
in_list(const raft_id *ids, unsigned n, raft_id id)
{
    for (unsigned k = 0; k < n; k++) {
        if (ids[k] == id) {
            return true;
        }
    }
    return false;
}

/* Count a (pre-)vote reply; returns +1 won, -1 lost, 0 undecided. */
static int
tally(struct raft *r, raft_id from, bool granted)
{
    unsigned q = raft__quorum(&r->config);

    if (from != r->id && !raft__is_voter(&r->config, from)) {
        return 0;
    }
    if (granted && !in_list(r->granted, r->n_granted, from) &&
        r->n_granted < RAFT_MAX_MEMBERS) {
        r->granted[r->n_granted++] = from;
    } else if (!granted && !in_list(r->refused, r->n_refused, from) &&
               r->n_refused < RAFT_MAX_MEMBERS) {
        r->refused[r->n_refused++] = from;
    }
    if (r->n_granted >= q) {
        return 1;
    }
    if (r->n_refused >= q) {
        return -1;
    }
    return 0;
}

/* Ask every voter that has not answered for its (pre-)vote. Requests
 * are repeated each heartbeat period while the election lasts: servers
 * retry RPCs that get no response (paper §5.1). */
static void
send_vote_requests(struct raft *r)
{
    struct raft_msg m = {0};
    bool pre = r->role == RAFT_PRE_CANDIDATE;

    m.type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
    m.term = pre ? r->term + 1 : r->term;
    m.last_index = raft__log_last(&r->log);
    m.log_term = raft__log_last_term(&r->log);
    m.transfer = r->campaign_transfer;
    for (unsigned k = 0; k < r->config.n_members; k++) {
        const struct raft_member *mb = &r->config.members[k];

        if (!mb->voter || mb->id == r->id ||
            in_list(r->granted, r->n_granted, mb->id) ||
            in_list(r->refused, r->n_refused, mb->id)) {
            continue;
        }
        m.to = mb->id;
        (void)raft__send(r, &m); /* a lost request is a lost message */
    }
}

/* Start a pre-vote round (pre true) or a real election. A pre-vote asks
 * whether we could win term + 1 without touching our term (thesis §9.6);
 * an election bumps the term and votes for ourselves (paper §5.2). */
void
raft__campaign(struct raft *r, bool pre, bool transfer)
{
    ASSERT(r->role != RAFT_LEADER);
    if (!raft__is_voter(&r->config, r->id)) {
        return; /* non-voters and removed servers never campaign */
    }
    leave_leader(r);
    r->leader = 0;
    r->n_granted = 0;
    r->n_refused = 0;
    reset_timeout(r);
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
    } else {
        r->role = RAFT_CANDIDATE;
        set_term(r, r->term + 1);
        r->vote = r->id;
        r->hs_dirty = true;
    }
    raft__event(r, RAFT_EV_ROLE, 0, 0);
    if (tally(r, r->id, true) > 0) {
        /* A single voter wins at once, but leads only once its term and
         * vote are durable (raft__hs_durable): a restart must not find
         * it leading the same term again with another log. */
        if (pre) {
            raft__campaign(r, false, transfer);
        }
        return;
    }
    r->campaign_transfer = transfer;
    send_vote_requests(r);
}

/* A candidate counts its own vote from the start but leads only once its
 * term and vote are durable: its requests left without waiting for that
 * write (like the leader's parallel write, thesis §10.2.1), and a crash
 * before the write must not leave a leader that can vote again in its
 * own term. Called when the votes are in and when a write completes. */
void
raft__hs_durable(struct raft *r)
{
    if (r->role == RAFT_CANDIDATE && !r->hs_dirty && r->hs_tag == 0 &&
        r->n_granted >= raft__quorum(&r->config)) {
        become_leader(r);
    }
}

/* A candidate's election timer starts once its own term and vote are
 * durable, not when its requests leave. Figure 2 restarts the timer at
 * the start of an election; we send the requests while the vote is
 * still being written (thesis §9.3 allows the overlap, but the candidate
 * may not count its own vote before the write ends), so the election
 * can only be won from the end of that write. The timeout is there to
 * end split votes (paper §5.2) and must outlast a vote round (paper
 * §5.6); counted from before the write, a short timeout abandons an
 * election that is being won, whose grants are still on the voters'
 * disks (with a 14 ms sync and 12-24 ms timeouts, a third of elections
 * did). The cost: after a real split vote the next try comes one write
 * later. No vote, term or log is touched, so safety is unchanged.
 * Called when the write of the hard state ends. */
void
raft__hs_written(struct raft *r)
{
    if (r->role == RAFT_CANDIDATE) {
        r->election_elapsed = 0;
    }
}

/* Whether a candidate still waits for its own term and vote to be
 * durable; its election timer does not run meanwhile (above). */
static bool
vote_in_flight(const struct raft *r)
{
    return r->role == RAFT_CANDIDATE && (r->hs_dirty || r->hs_tag != 0);
}

/* Whether a leader was heard from within the minimum election timeout:
 * if so, votes are not granted (thesis §4.2.3, leader stickiness). */
static bool
in_lease(const struct raft *r)
{
    return r->leader != 0 && r->election_elapsed < r->opt.election_ticks;
}

/* RequestVote and PreVote receiver (paper Figure 2, §5.4.1; thesis
 * §9.6). */
static int
on_vote(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    struct raft_msg resp = {0};
    raft_term last_term = raft__log_last_term(&r->log);
    bool up_to_date, can_vote;

    resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    resp.to = m->from;
    /* §5.4.1: the candidate's log must be at least as up-to-date. */
    up_to_date = m->log_term > last_term ||
                 (m->log_term == last_term &&
                  m->last_index >= raft__log_last(&r->log));
    /* One vote per term (§5.2); a pre-vote for a later term promises
     * nothing (thesis §9.6). */
    can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
               (pre && m->term > r->term);
    if (up_to_date && can_vote && m->term >= r->term) {
        resp.term = m->term;
        if (!pre && r->vote != m->from) {
            r->vote = m->from;
            r->hs_dirty = true;
        }
        if (!pre) {
            r->election_elapsed = 0;
        }
    } else {
        resp.term = r->term;
        resp.reject = true;
    }
    return raft__send(r, &resp);
}

static int
on_vote_resp(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    int outcome;

    if ((pre && r->role != RAFT_PRE_CANDIDATE) ||
        (!pre && r->role != RAFT_CANDIDATE)) {
        return 0;
    }
    /* A pre-vote grant carries term + 1, anything else our term. */
    if (m->term != r->term + (pre ? 1 : 0)) {
        return 0;
    }
    outcome = tally(r, m->from, !m->reject);
    if (outcome > 0) {
        if (pre) {
            raft__campaign(r, false, false);
        } else {
            raft__hs_durable(r); /* leads once its own vote is durable */
        }
    } else if (outcome < 0) {
        raft__become_follower(r, r->term, 0);
    }
    return 0;
}

static int
on_timeout_now(struct raft *r, const struct raft_msg *m)
{
    (void)m;
    if (r->role == RAFT_LEADER) {
        return 0;
    }
    /* The transfer target starts an election at once, skipping pre-vote
     * and the stickiness of others (thesis §3.10). */
    raft__campaign(r, false, true);
    return 0;
}

/* Checks that need no state: ids, types and entry layout of m. */
static int
validate(const struct raft *r, const struct raft_msg *m)
{
    if ((unsigned)m->type >= RAFT_MSG_N_TYPES || m->to != r->id ||
        m->from == 0 || m->from == r->id) {
        return ERR_PROTO;
    }
    if (m->n_entries > 0 && m->entries == NULL) {
        return ERR_PROTO;
    }
    if (m->n_entries > 0 && m->type != RAFT_MSG_APPEND) {
        return ERR_PROTO;
    }
    if (m->type == RAFT_MSG_SNAPSHOT &&
        (m->snapshot.index == 0 || m->snapshot.term == 0 ||
         m->snapshot.term > m->term ||
         m->snapshot.config.n_members > RAFT_MAX_MEMBERS ||
         m->snapshot.config.n_removed > RAFT_MAX_REMOVED)) {
        return ERR_PROTO;
    }
    return 0;
}

/* Messages of a higher term (paper Figure 2, "Rules for Servers": convert
 * to follower), with the exceptions of thesis §9.6 and §4.2.3. Returns
 * true when m must be dropped. */
static bool
on_higher_term(struct raft *r, const struct raft_msg *m)
{
    bool vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;

    if (vote && !m->transfer && r->opt.check_quorum && in_lease(r)) {
        return true; /* stickiness: a live leader is known */
    }
    if (m->type == RAFT_MSG_PREVOTE ||
        (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
        return false; /* pre-vote never changes terms */
    }
    if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
        m->type == RAFT_MSG_SNAPSHOT) {
        raft__become_follower(r, m->term, m->from);
    } else {
        raft__become_follower(r, m->term, 0);
    }
    return false;
}

/* Messages of a lower term are stale (paper Figure 2: reply false if
 * term < currentTerm). An old leader is told our term so that it steps
 * down; with pre-vote or check-quorum it might otherwise never hear it. */
static int
on_lower_term(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg resp = {0};

    if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
        m->type == RAFT_MSG_SNAPSHOT) {
        resp.type = RAFT_MSG_APPEND_RESP;
    } else if (m->type == RAFT_MSG_PREVOTE) {
        resp.type = RAFT_MSG_PREVOTE_RESP;
    } else if (m->type == RAFT_MSG_READ_INDEX) {
        return raft__on_read_index(r, m); /* answered with a refusal */
    } else {
        return 0;
    }
    resp.to = m->from;
    resp.reject = true;
    resp.index = m->index;
    return raft__send(r, &resp);
}

static int
step_leader(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        return raft__on_append_resp(r, m);
    case RAFT_MSG_HEARTBEAT_RESP:
        return raft__on_heartbeat_resp(r, m);
    case RAFT_MSG_READ_INDEX:
        return raft__on_read_index(r, m);
    default:
        return 0;
    }
}

static int
step_other(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        /* A leader of our term exists: candidates yield (paper §5.2). */
        if (r->role != RAFT_FOLLOWER) {
            raft__become_follower(r, r->term, m->from);
        }
        r->leader = m->from;
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND) {
            return raft__on_append(r, m);
        }
        if (m->type == RAFT_MSG_HEARTBEAT) {
            return raft__on_heartbeat(r, m);
        }
        return raft__on_snapshot(r, m);
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return on_vote_resp(r, m);
    case RAFT_MSG_TIMEOUT_NOW:
        return on_timeout_now(r, m);
    case RAFT_MSG_READ_INDEX:
        return raft__on_read_index(r, m);
    case RAFT_MSG_READ_INDEX_RESP:
        return raft__on_read_index_resp(r, m);
    default:
        return 0;
    }
}

int
raft_step(struct raft *r, const struct raft_msg *m)
{
    int rc;

    ASSERT(!r->in_ready);
    rc = validate(r, m);
    if (rc != 0) {
        raft__event(r, RAFT_EV_BAD_MSG, m->from, (raft_index)-rc);
        return rc;
    }
    /* Removed servers never rejoin (thesis §4.2.3 disruption; our ids are
     * tombstoned instead of reused). */
    if (raft_config_is_removed(&r->config, m->from)) {
        return 0;
    }
    if (m->term > r->term) {
        if (on_higher_term(r, m)) {
            return 0;
        }
    } else if (m->term < r->term) {
        return on_lower_term(r, m);
    }
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
        if (!m->transfer && r->opt.check_quorum && in_lease(r) &&
            r->vote != m->from) {
            return 0; /* stickiness within our own term too */
        }
        return on_vote(r, m);
    }
    if (r->role == RAFT_LEADER) {
        rc = step_leader(r, m);
    } else {
        rc = step_other(r, m);
    }
    if (rc != 0 && rc != ERR_NOMEM) {
        raft__event(r, RAFT_EV_BAD_MSG, m->from, (raft_index)-rc);
    }
    return rc;
}

/* Leader side of the clock: heartbeats (paper §5.2) and check-quorum
 * (thesis §6.2). */
static void
tick_leader(struct raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->opt.election_ticks) {
        r->election_elapsed = 0;
        if (r->opt.check_quorum) {
            unsigned active = 0;

            for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
                struct raft_progress *pr = &r->prs[k];

                if (pr->id != 0 && pr->voter &&
                    (pr->active || pr->id == r->id)) {
                    active++;
                }
                pr->active = false;
            }
            if (active < raft__quorum(&r->config)) {
                raft__event(r, RAFT_EV_STEP_DOWN, 0, active);
                raft__become_follower(r, r->term, 0);
                return;
            }
        }
    }
    raft__member_tick(r);
    if (r->role != RAFT_LEADER) {
        return;
    }
    raft__pr_tick(r);
    if (r->heartbeat_elapsed >= r->opt.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        raft__broadcast_heartbeat(r, r->read_round_sent);
    }
}

/* Vote requests are retried a few times per election: often enough to
 * beat message loss, rarely enough not to flood slow disks. */
static unsigned
retry_ticks(const struct raft *r)
{
    unsigned t = r->opt.election_ticks / 4;

    return t > r->opt.heartbeat_ticks ? t : r->opt.heartbeat_ticks;
}

void
raft_tick(struct raft *r)
{
    ASSERT(!r->in_ready);
    r->ticks++;
    if (r->role == RAFT_LEADER) {
        tick_leader(r);
        raft__reads_flush(r);
        return;
    }
    r->election_elapsed++;
    if ((r->role == RAFT_CANDIDATE || r->role == RAFT_PRE_CANDIDATE) &&
        r->election_elapsed % retry_ticks(r) == 0 &&
        r->election_elapsed < r->timeout) {
        send_vote_requests(r);
    }
    if (r->election_elapsed >= r->timeout && !vote_in_flight(r)) {
        /* Election timeout (paper §5.2); a candidate's counts from its
         * durable vote (raft__hs_written). */
        if (raft__is_voter(&r->config, r->id)) {
            raft__campaign(r, r->opt.pre_vote, false);
        } else {
            reset_timeout(r);
            r->leader = 0;
        }
    }
}

enum raft_role
raft_role(const struct raft *r)
{
    if (r->role == RAFT_FOLLOWER && !raft__is_voter(&r->config, r->id)) {
        return RAFT_NONVOTER;
    }
    return r->role;
}

raft_term
raft_term_current(const struct raft *r)
{
    return r->term;
}

raft_id
raft_leader(const struct raft *r)
{
    return r->leader;
}

raft_id
raft_voted_for(const struct raft *r)
{
    return r->vote;
}

raft_index
raft_commit_index(const struct raft *r)
{
    return r->commit;
}

raft_index
raft_applied_index(const struct raft *r)
{
    return r->applied;
}

raft_index
raft_last_index(const struct raft *r)
{
    return raft__log_last(&r->log);
}

raft_index
raft_first_index(const struct raft *r)
{
    return r->log.base + 1;
}

raft_index
raft_stable_index(const struct raft *r)
{
    return r->stable;
}

const struct raft_config *
raft_config(const struct raft *r)
{
    return &r->config;
}

bool
raft_is_transferring(const struct raft *r)
{
    return r->role == RAFT_LEADER && r->transferee != 0;
}

raft_term
raft_term_at(const struct raft *r, raft_index index)
{
    return raft__log_term(&r->log, index);
}

const struct raft_entry *
raft_entry_at(const struct raft *r, raft_index index)
{
    return raft__log_get(&r->log, index);
}

int
raft_config_at(const struct raft *r, raft_index index,
               struct raft_config *out)
{
    raft_index at;

    return raft__log_config_at(&r->log, index, out, &at);
}
