/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_int.h: internals shared by the raft_*.c files, never by others.
 *
 * raft_log.c owns the in-memory log, raft_config.c the membership codec,
 * raft_core.c roles, elections and message dispatch, raft_repl.c the
 * leader's replication and the follower's append handling, raft_read.c
 * read index, raft_member.c membership and transfer, raft_ready.c the
 * ready batch and durable-write completions.
 */
#ifndef SHOAL_RAFT_RAFT_INT_H
#define SHOAL_RAFT_RAFT_INT_H

#include "raft/raft.h"

enum raft_pr_state {
    RAFT_PR_PROBE,     /* one APPEND at a time until a match is known */
    RAFT_PR_PIPELINE,  /* optimistic next, bounded by the inflight window */
    RAFT_PR_SNAPSHOT,  /* waiting for the driver's snapshot to land */
};

/* The leader's view of one member (paper Figure 2, nextIndex and
 * matchIndex, with the flow-control state of etcd's progress). */
struct raft_progress {
    raft_id id;               /* 0: unused slot */
    bool voter;
    enum raft_pr_state state;
    raft_index match;         /* highest index known replicated */
    raft_index next;          /* next index to send */
    bool active;              /* heard from in this check-quorum period */
    uint64_t heard_tick;      /* leader's tick when last heard from */
    raft_index hb_match;      /* match at the previous heartbeat reply */
    bool paused;              /* probe: an APPEND is unanswered */
    raft_index pending_snap;  /* snapshot index being sent */
    unsigned snap_ticks;      /* ticks spent in RAFT_PR_SNAPSHOT */
    uint64_t read_round;      /* highest read round echoed, this term */
    unsigned n_inflight;      /* ring of APPENDs in flight */
    unsigned inflight_head;
    raft_index inflight_last[RAFT_MAX_INFLIGHT];
    size_t inflight_size[RAFT_MAX_INFLIGHT];
    size_t inflight_bytes;
};

/*
 * raft_log.c. The log owns its entries and their payloads; pointers it
 * returns stay valid until the next call that changes the log.
 */

/* Append one entry (payload copied) after the last. term must not be
 * below the last term. Returns 0 or ERR_NOMEM (log unchanged). */
int raft__log_append(struct raft_log *l, raft_term term,
                     enum raft_entry_type type, const void *data,
                     uint32_t len);

/* Index and term of the last entry (the base's when empty). */
raft_index raft__log_last(const struct raft_log *l);
raft_term raft__log_last_term(const struct raft_log *l);

/* Term at i: the base's term at the base, 0 outside [base, last]. */
raft_term raft__log_term(const struct raft_log *l, raft_index i);

/* The entry at i in (base, last], or NULL. */
const struct raft_entry *raft__log_get(const struct raft_log *l,
                                       raft_index i);

/* Drop entries from index from (> base) on. */
void raft__log_truncate(struct raft_log *l, raft_index from);

/* Drop entries up to upto (<= last), keeping its term and config in the
 * base. No-op when upto <= base. */
void raft__log_compact(struct raft_log *l, raft_index upto);

/* Drop every entry; the base becomes (base, term, *cfg). cfg borrowed. */
void raft__log_reset(struct raft_log *l, raft_index base, raft_term term,
                     const struct raft_config *cfg);

/* Free everything; the log is zeroed. */
void raft__log_fini(struct raft_log *l);

/* Config in effect at i into *out, and the index of its entry into *at
 * (0: the base's). Returns 0 or RAFT_ERR_STATE outside [base, last]. */
int raft__log_config_at(const struct raft_log *l, raft_index i,
                        struct raft_config *out, raft_index *at);

/* Payload bytes of the entries held in [from, to]. */
size_t raft__log_bytes(const struct raft_log *l, raft_index from,
                       raft_index to);

/* raft_config.c */

/* Votes needed among the voters of c; unreachable when c has none. */
unsigned raft__quorum(const struct raft_config *c);

/* Whether id is a voter of c. */
bool raft__is_voter(const struct raft_config *c, raft_id id);

/*
 * raft_core.c. Functions that send only queue messages in r; nothing
 * leaves before raft_ready().
 */

/* Become a follower of term (>= ours) knowing leader (0: none). Restarts
 * the election timer only when a leader is known or we led. */
void raft__become_follower(struct raft *r, raft_term term, raft_id leader);

/* Start a pre-vote round (pre) or an election; transfer marks requests
 * sent for a leadership transfer. Precondition: not leader. A non-voter
 * does nothing. */
void raft__campaign(struct raft *r, bool pre, bool transfer);

/* Re-read the latest config from the log, and resync the leader's
 * progress set with it. */
void raft__reload_config(struct raft *r);

/* The last hard-state write completed: a candidate holding a quorum of
 * votes becomes leader. */
void raft__hs_durable(struct raft *r);

/* The last hard-state write completed: a candidate's election timer
 * starts now (paper §5.2 and §5.6, thesis §9.3; see raft_core.c). */
void raft__hs_written(struct raft *r);

/* Queue m (copied; from and a zero term are filled in) for the next
 * ready. Returns 0 or ERR_NOMEM (message lost, like a dropped packet). */
int raft__send(struct raft *r, const struct raft_msg *m);

/* Record an event for the next ready; dropped silently without memory. */
void raft__event(struct raft *r, enum raft_event_type type, raft_id id,
                 raft_index index);

raft_index raft__index_max(raft_index a, raft_index b);
raft_index raft__index_min(raft_index a, raft_index b);

/*
 * raft_repl.c. Leader-side functions require r->role == RAFT_LEADER;
 * receivers validate the message and return ERR_PROTO for nonsense.
 */

/* The progress record of member id, or NULL. */
struct raft_progress *raft__pr(struct raft *r, raft_id id);

/* Fresh progress for every member (on election). */
void raft__pr_reset_all(struct raft *r);

/* Keep the progress of members that stay, add new ones, drop others. */
void raft__pr_sync(struct raft *r);

/* Send pr the next APPEND (or a snapshot) if its state and window allow;
 * allow_empty sends one without entries. Returns whether one was sent. */
bool raft__send_append(struct raft *r, struct raft_progress *pr,
                       bool allow_empty);

/* Send what each follower's window allows. */
void raft__broadcast_append(struct raft *r);

/* Heartbeat every member, tagged with read round round. */
void raft__broadcast_heartbeat(struct raft *r, uint64_t round);

/* Advance commit by the current-term quorum rule; true if it moved. */
bool raft__maybe_commit(struct raft *r);

/* Append an entry of our term (config entries take effect at once).
 * Returns 0 or ERR_NOMEM. */
int raft__leader_append(struct raft *r, enum raft_entry_type type,
                        const void *data, uint32_t len);

/* Receivers, by message type. Return 0, ERR_PROTO or ERR_NOMEM. */
int raft__on_append(struct raft *r, const struct raft_msg *m);
int raft__on_append_resp(struct raft *r, const struct raft_msg *m);
int raft__on_heartbeat(struct raft *r, const struct raft_msg *m);
int raft__on_heartbeat_resp(struct raft *r, const struct raft_msg *m);
int raft__on_snapshot(struct raft *r, const struct raft_msg *m);

/* Leader tick of the progress records: snapshot sends that time out go
 * back to probing. */
void raft__pr_tick(struct raft *r);

/* raft_read.c */

/* READ_INDEX from a follower: queue it (leader) or refuse it. */
int raft__on_read_index(struct raft *r, const struct raft_msg *m);

/* READ_INDEX_RESP: hand the read state to the driver. */
int raft__on_read_index_resp(struct raft *r, const struct raft_msg *m);

/* Release the reads whose round a quorum has echoed (leader). */
void raft__reads_advance(struct raft *r);

/* Fail every pending read (a leader stepping down). */
void raft__reads_fail_all(struct raft *r);

/* Broadcast the heartbeat round pending reads wait for, if any. */
void raft__reads_flush(struct raft *r);

/* Queue a read state for the next ready. Returns 0 or ERR_NOMEM. */
int raft__read_state_push(struct raft *r, uint64_t ctx, raft_index index,
                          bool failed);

/* Whether the entry at our commit index is of our term. */
bool raft__committed_in_term(const struct raft *r);

/* raft_member.c (leader only) */

/* pr's match advanced: transfer and catch-up bookkeeping. */
void raft__member_on_progress(struct raft *r, struct raft_progress *pr);

/* Transfer deadline and catch-up rounds, once per tick. */
void raft__member_tick(struct raft *r);

/* Give up the running transfer, with an event. */
void raft__transfer_abort(struct raft *r);

/* raft_ready.c */

/* The log was cut back to last: no pending write may make more durable,
 * and the stable index drops to at most last. */
void raft__writes_clamp(struct raft *r, raft_index last);

/* Deliberately broken variants, for the simulator's self-test only. The
 * build flag RAFT_BROKEN_COMMIT counts replicas of entries of earlier
 * terms (paper §5.4.2 forbids it); RAFT_BROKEN_VOTE forgets the vote
 * across restarts (paper Figure 2, persistent state). */
#if defined(RAFT_BROKEN_COMMIT) || defined(RAFT_BROKEN_VOTE)
#define RAFT__BROKEN 1
#endif

#endif
