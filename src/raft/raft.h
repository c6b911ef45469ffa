/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft.h: the consensus core's whole face, a pure state machine.
 *
 * The core does no I/O. The driver (shoald, or the simulator in tests/sim)
 * feeds it messages, ticks and proposals, then pulls a "ready" batch that
 * says what to persist, what to send, what to apply and which reads are
 * ready, performs that I/O, and reports completions back. Time arrives as
 * ticks, randomness as a seed in the options; nothing else is consulted.
 * References are to the Raft paper (Ongaro & Ousterhout, USENIX ATC 2014,
 * extended version: "paper §5.4") and the thesis (Ongaro 2014: "thesis
 * §9.6").
 *
 * Driving loop, in one thread:
 *
 *     raft_step() / raft_tick() / raft_propose() / raft_read_index() ...
 *     if (raft_has_ready(r)) {
 *         raft_ready(r, &rd);
 *         install rd.snapshot into the state machine if rd.has_snapshot;
 *         start the durable write of {rd.hs, rd.snapshot, rd.entries},
 *             in that order, after every earlier write (group them);
 *         send every rd.msgs[i] whose persist_tag is 0 now, hold the
 *             others until raft_persisted() reached their persist_tag
 *             (a crash drops them);
 *         apply rd.committed, serve rd.reads, log rd.events;
 *         raft_ready_done(r);
 *     }
 *     ... later, when the write with tag rd.tag is durable:
 *     raft_persisted(r, rd.tag);
 *
 * Error codes: 0 is success; negative values are either enum err_code of
 * src/base/base.h (ERR_NOMEM, ERR_PROTO, ERR_TOOBIG) or enum raft_err below.
 * No function of this header runs a callback: everything the core has to
 * say leaves through the ready batch.
 */
#ifndef SHOAL_RAFT_RAFT_H
#define SHOAL_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_term;
typedef uint64_t raft_index;
typedef uint64_t raft_id; /* server ids are never reused; 0 means none */

#define RAFT_MAX_MEMBERS 16   /* voters plus non-voters in one config */
#define RAFT_MAX_REMOVED 64   /* tombstoned ids kept in a config */
#define RAFT_MAX_INFLIGHT 64  /* upper bound of max_inflight_msgs */

/* Refusals of the core, below enum err_code's range. */
enum raft_err {
    RAFT_ERR_NOT_LEADER = -10100, /* only the leader may do this */
    RAFT_ERR_TRANSFER,            /* a leadership transfer is running */
    RAFT_ERR_BUSY,       /* uncommitted-bytes cap reached: retry later */
    RAFT_ERR_NOT_READY,  /* leader has not committed in its term yet */
    RAFT_ERR_CHANGE_PENDING, /* a membership change is not committed */
    RAFT_ERR_NO_QUORUM,  /* the change would leave no reachable quorum */
    RAFT_ERR_REMOVED,    /* the id is tombstoned and cannot rejoin */
    RAFT_ERR_MEMBER,     /* the id is (or is not) a member as required */
    RAFT_ERR_STALE,      /* a completion for a write we do not wait for */
    RAFT_ERR_STATE,      /* the call is invalid in this state / options */
};

enum raft_role {
    RAFT_FOLLOWER,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER,
    RAFT_NONVOTER, /* a follower that is not a voter of its config */
};

enum raft_entry_type {
    RAFT_ENTRY_NORMAL, /* a client proposal, opaque to the core */
    RAFT_ENTRY_NOOP,   /* appended by each new leader (paper §8) */
    RAFT_ENTRY_CONFIG, /* an encoded struct raft_config */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    enum raft_entry_type type;
    uint32_t len;  /* bytes of data */
    uint8_t *data; /* owned by whoever owns the entry; NULL when len 0 */
};

struct raft_member {
    raft_id id;
    bool voter;
};

/* A membership: fixed size, copied by value, never allocated. */
struct raft_config {
    unsigned n_members;
    struct raft_member members[RAFT_MAX_MEMBERS];
    unsigned n_removed; /* tombstones: ids that may never rejoin */
    raft_id removed[RAFT_MAX_REMOVED];
};

/* Term and vote: one record, durable before any message that depends on
 * it leaves (paper Figure 2, "Persistent state on all servers"). */
struct raft_hard_state {
    raft_term term;
    raft_id vote;
};

/* What a snapshot covers: the state up to index, whose entry had term,
 * with membership config as of that index (paper §7, Figure 13). */
struct raft_snapshot_meta {
    raft_index index;
    raft_term term;
    struct raft_config config;
};

enum raft_msg_type {
    RAFT_MSG_PREVOTE,      /* thesis §9.6 */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,         /* RequestVote, paper Figure 2 */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND,       /* AppendEntries, paper Figure 2 */
    RAFT_MSG_APPEND_RESP,  /* also acknowledges a snapshot */
    RAFT_MSG_HEARTBEAT,    /* empty AppendEntries, carries read rounds */
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT,     /* InstallSnapshot: meta here, bytes by driver */
    RAFT_MSG_READ_INDEX,   /* follower asks the leader (thesis §6.4) */
    RAFT_MSG_READ_INDEX_RESP,
    RAFT_MSG_TIMEOUT_NOW,  /* leadership transfer (thesis §3.10) */
    RAFT_MSG_N_TYPES,
};

/*
 * A message, as plain data. The driver encodes it for the wire; the core
 * never sees bytes. Fields not used by a type are zero.
 *
 * For RAFT_MSG_APPEND in a ready batch, entries point into the core's log
 * and stay valid until raft_ready_done(). For raft_step() every pointer is
 * borrowed. A RAFT_MSG_SNAPSHOT carries only meta: the driver attaches the
 * bytes of its snapshot with that index when sending, and keeps the bytes
 * it received to install when the receiver's ready says so.
 */
struct raft_msg {
    enum raft_msg_type type;
    raft_id from;
    raft_id to;
    raft_term term;
    raft_index index;       /* APPEND: prev index; *_RESP: matched or
                               rejected index; READ_INDEX_RESP: read idx */
    raft_term log_term;     /* APPEND: prev term; VOTE: last log term */
    raft_index last_index;  /* VOTE/PREVOTE: candidate's last index */
    raft_index commit;      /* APPEND/HEARTBEAT: leader's commit */
    bool reject;            /* *_RESP: refused */
    bool transfer;          /* VOTE: sent by a transfer target (§3.10) */
    raft_index hint_index;  /* APPEND_RESP reject: follower's hint */
    raft_term hint_term;
    uint64_t ctx;           /* HEARTBEAT*: read round; READ_INDEX*: ctx */
    unsigned n_entries;
    const struct raft_entry *entries;
    struct raft_snapshot_meta snapshot; /* SNAPSHOT */
    uint64_t persist_tag;   /* ready only: 0 = send now; else hold until
                               raft_persisted(tag) for this tag or later */
};

/* A read that became ready (thesis §6.4): serve it once the local applied
 * index reaches index. failed means the read cannot be served by this
 * leader (it stepped down or was refused): retry elsewhere. */
struct raft_read_state {
    uint64_t ctx;
    raft_index index;
    bool failed;
};

enum raft_event_type {
    RAFT_EV_ROLE,          /* role changed: role, term, leader */
    RAFT_EV_STEP_DOWN,     /* check-quorum: no quorum heard (§6.2) */
    RAFT_EV_TRANSFER_DONE, /* TIMEOUT_NOW sent to id */
    RAFT_EV_TRANSFER_ABORT,/* transfer to id gave up after a timeout */
    RAFT_EV_PROMOTING,     /* id caught up; voter config proposed */
    RAFT_EV_CHANGE_FAILED, /* id did not catch up within the rounds */
    RAFT_EV_BAD_MSG,       /* a message was dropped: from, code in index */
};

/* Something worth a log line, for the driver to write. */
struct raft_event {
    enum raft_event_type type;
    enum raft_role role;
    raft_term term;
    raft_id id;
    raft_index index;
};

/* One batch of work for the driver; see the loop at the top of the file.
 * All pointers are owned by the core and valid until raft_ready_done(). */
struct raft_ready {
    uint64_t tag;               /* persist tag, 0 when nothing to write */
    bool has_hard_state;
    struct raft_hard_state hs;
    bool has_snapshot;          /* install this snapshot (the bytes came
                                   with the SNAPSHOT message), then
                                   persist it, dropping the whole durable
                                   log; entries below follow it */
    struct raft_snapshot_meta snapshot;
    const struct raft_entry *entries; /* write; durable entries at or after
                                         entries[0].index are replaced */
    unsigned n_entries;
    struct raft_msg *msgs;
    unsigned n_msgs;
    const struct raft_entry *committed; /* apply, in order */
    unsigned n_committed;
    struct raft_read_state *reads;
    unsigned n_reads;
    struct raft_event *events;
    unsigned n_events;
};

/* Tunables. Ticks are whatever period the driver calls raft_tick() at. */
struct raft_options {
    raft_id id;                  /* this server; never 0 */
    unsigned election_ticks;     /* minimum election timeout */
    unsigned election_ticks_max; /* timeouts are drawn in [min, max] */
    unsigned heartbeat_ticks;    /* leader heartbeat period */
    bool pre_vote;               /* thesis §9.6 */
    bool check_quorum;           /* thesis §6.2: leader steps down */
    unsigned max_msg_entries;    /* entries per APPEND */
    size_t max_msg_bytes;        /* payload bytes per APPEND (soft) */
    unsigned max_inflight_msgs;  /* pipelined APPENDs per follower */
    size_t max_inflight_bytes;   /* payload bytes in flight per follower */
    size_t max_uncommitted_bytes;/* leader: 0 = no cap */
    unsigned snapshot_tail;      /* entries kept behind a snapshot */
    unsigned max_catchup_rounds; /* thesis §4.2.1 */
    uint64_t seed;               /* for the randomized election timeout */
};

struct raft_progress; /* leader's view of one follower (raft_int.h) */

/* The in-memory log: entries (base, base + n]. */
struct raft_log {
    struct raft_entry *entries; /* owned; entries[k].index == base + k + 1 */
    size_t n;
    size_t cap;
    raft_index base;            /* last index compacted or snapshotted */
    raft_term base_term;
    struct raft_config base_config; /* membership as of base */
};

/* Pending durable writes, oldest first (see raft_persisted()). */
struct raft_pending_write {
    uint64_t tag;
    raft_index last; /* log index the write leaves durable, clamped down
                        when the in-memory log is truncated below it */
};

/* A read waiting for its heartbeat round (thesis §6.4). */
struct raft_read_req {
    uint64_t ctx;
    raft_index index;
    uint64_t round;
    raft_id from; /* 0: local; else the follower that asked */
};

/* The node. Treat every field as private: use the functions below. */
struct raft {
    struct raft_options opt;
    raft_id id;
    enum raft_role role;     /* never RAFT_NONVOTER; see raft_role() */
    raft_term term;
    raft_id vote;
    raft_id leader;
    struct raft_log log;
    raft_index commit;
    raft_index applied;      /* handed to the driver for applying */
    raft_index stable;       /* log agrees with the disk up to here */
    raft_index unstable;     /* first index not yet handed for writing */
    bool hs_dirty;
    uint64_t hs_tag;         /* write carrying the last hard state */
    bool snap_dirty;         /* a received snapshot awaits the ready */
    struct raft_snapshot_meta snap;      /* latest snapshot known */
    struct raft_config config;           /* latest in the log */
    raft_index config_index;             /* its entry, 0 = from base */
    unsigned election_elapsed;
    unsigned heartbeat_elapsed;
    unsigned timeout;        /* randomized election timeout, ticks */
    uint64_t ticks;          /* ticks since init */
    uint64_t rng;
    /* Candidate. */
    raft_id granted[RAFT_MAX_MEMBERS];
    unsigned n_granted;
    raft_id refused[RAFT_MAX_MEMBERS];
    unsigned n_refused;
    bool campaign_transfer;  /* this election runs a transfer */
    /* Leader. */
    struct raft_progress *prs; /* RAFT_MAX_MEMBERS records */
    size_t uncommitted_bytes;
    raft_id transferee;
    uint64_t transfer_deadline;
    raft_id catchup_id;      /* non-voter being caught up, 0 = none */
    unsigned catchup_round;
    raft_index catchup_target;
    uint64_t catchup_start;
    bool catchup_ready;      /* caught up; promote when allowed */
    uint64_t read_round_sent;
    bool read_broadcast;     /* a new round must be broadcast */
    struct raft_read_req *reads;
    size_t n_reads, cap_reads;
    /* Ready output. */
    struct raft_msg *msgs;
    size_t n_msgs, cap_msgs;
    struct raft_read_state *ready_reads;
    size_t n_ready_reads, cap_ready_reads;
    struct raft_event *events;
    size_t n_events, cap_events;
    bool in_ready;           /* between raft_ready() and _done() */
    uint64_t next_tag;
    struct raft_pending_write *writes;
    size_t n_writes, cap_writes;
    raft_index apply_to;     /* end of the committed range handed out */
};

/*
 * Initialise r in caller-provided storage with options o (copied). The
 * node starts as a follower with an empty log and an empty config; follow
 * with raft_restore() or raft_bootstrap(). Returns 0, RAFT_ERR_STATE for
 * invalid options (id 0, election_ticks 0 or below heartbeat_ticks,
 * max_inflight_msgs above RAFT_MAX_INFLIGHT) or ERR_NOMEM.
 */
int raft_init(struct raft *r, const struct raft_options *o);

/*
 * Release everything r owns. r may be re-initialised afterwards.
 * raft_fini() on a zeroed struct is a no-op.
 */
void raft_fini(struct raft *r);

/*
 * Load durable state after raft_init(): hard state hs, the latest snapshot
 * snap (NULL, or index 0, for none) and the durable entries, which must
 * be contiguous; entries at or below snap->index are skipped. All pointers
 * are borrowed; entry data is copied. Nothing is handed back for
 * persistence. Returns 0, RAFT_ERR_STATE when called on a used node, ERR_PROTO
 * when the entries are not contiguous or start after snap->index + 1, or
 * ERR_NOMEM.
 */
int raft_restore(struct raft *r, const struct raft_hard_state *hs,
                 const struct raft_snapshot_meta *snap,
                 const struct raft_entry *entries, size_t n_entries);

/*
 * Start a new cluster with membership cfg (borrowed): the same call on
 * every founding member writes term 1 and one config entry at index 1,
 * term 1, handed out by the next ready for persistence. Returns 0,
 * RAFT_ERR_STATE when the node has any state or self is not a voter of cfg, or
 * ERR_NOMEM.
 */
int raft_bootstrap(struct raft *r, const struct raft_config *cfg);

/*
 * Advance time by one tick: election timeout (paper §5.2), heartbeats,
 * check-quorum (thesis §6.2), transfer and catch-up deadlines. Never
 * fails.
 */
void raft_tick(struct raft *r);

/*
 * Process one received message m (borrowed: entries are copied). A
 * message from a peer is untrusted: malformed ones return ERR_PROTO and
 * leave the state unchanged; stale ones are ignored and return 0. Returns
 * ERR_NOMEM when the log cannot grow.
 */
int raft_step(struct raft *r, const struct raft_msg *m);

/*
 * Propose a normal entry with a copy of data[0..len). On success stores
 * the entry's index and term in *index and *term (either may be NULL) and
 * returns 0; the entry is committed when it comes back in a ready's
 * committed list with that index and term. Refusals: RAFT_ERR_NOT_LEADER,
 * RAFT_ERR_TRANSFER, RAFT_ERR_BUSY (uncommitted-bytes cap; retryable),
 * ERR_TOOBIG (len over UINT32_MAX), ERR_NOMEM.
 */
int raft_propose(struct raft *r, const void *data, size_t len,
                 raft_index *index, raft_term *term);

/*
 * Ask for a linearizable read (thesis §6.4) identified by ctx. On the
 * leader the read waits for one heartbeat round; on a follower it is sent
 * to the leader. Either way a struct raft_read_state with this ctx comes
 * out of a later ready (failed if the leader steps down or refuses), or
 * never, if a message is lost: the driver keeps its own deadline.
 * Returns 0, RAFT_ERR_NOT_LEADER when no leader is known, RAFT_ERR_NOT_
 * READY on a leader that has not yet committed an entry of its term, or
 * ERR_NOMEM.
 */
int raft_read_index(struct raft *r, uint64_t ctx);

/*
 * Membership changes, one server at a time (thesis §4.1), leader only,
 * each refused with RAFT_ERR_CHANGE_PENDING while a config entry is not
 * committed or the leader has not yet committed an entry of its term
 * (thesis §4.1, the bug fix of the thesis erratum), RAFT_ERR_NOT_LEADER
 * on a non-leader and RAFT_ERR_TRANSFER during a transfer.
 *
 * raft_add_nonvoter() adds id as a non-voter. raft_add_voter() does too
 * (or takes an existing non-voter) and then catches it up in rounds
 * (thesis §4.2.1): once a round completes within an election timeout the
 * leader proposes it as a voter (RAFT_EV_PROMOTING); after
 * max_catchup_rounds rounds it gives up (RAFT_EV_CHANGE_FAILED) and id
 * stays a non-voter. RAFT_ERR_REMOVED: id is tombstoned. RAFT_ERR_MEMBER:
 * id is already a voter (add) or not a member (remove, demote), or is
 * this leader (remove, demote: transfer leadership first).
 * raft_remove() tombstones id for good; raft_demote() makes a voter a
 * non-voter. Both return RAFT_ERR_NO_QUORUM when raft_can_remove() says
 * no. Returns 0 when the config entry was appended, or ERR_NOMEM.
 */
int raft_add_nonvoter(struct raft *r, raft_id id);
int raft_add_voter(struct raft *r, raft_id id);
int raft_remove(struct raft *r, raft_id id);
int raft_demote(struct raft *r, raft_id id);

/*
 * On the leader: whether taking id out of the voters would still leave a
 * quorum of the new voter set among the voters heard from within the
 * current check-quorum period (the leader counts itself). False on a
 * non-leader.
 */
bool raft_can_remove(const struct raft *r, raft_id id);

/*
 * Transfer leadership (thesis §3.10) to voter id, or to the most
 * up-to-date voter when id is 0. Proposals are refused until the transfer
 * ends: the target is brought up to date and sent TIMEOUT_NOW, or after an
 * election timeout the leader gives up (RAFT_EV_TRANSFER_ABORT). Returns
 * 0, RAFT_ERR_NOT_LEADER, RAFT_ERR_TRANSFER (one is running),
 * RAFT_ERR_MEMBER (id is not another voter, or no voter to pick).
 */
int raft_transfer(struct raft *r, raft_id id);

/*
 * The driver's state machine now holds the state up to index (applied,
 * so index <= the last committed index handed out), durably, outside the
 * log (paper §7). The core keeps snapshot_tail entries behind it and
 * compacts the rest; *meta (may be NULL) receives the term and membership
 * as of index, to be stored with the snapshot bytes. Returns 0, or
 * RAFT_ERR_STATE when index is above what was applied or below the current
 * snapshot.
 */
int raft_snapshot_taken(struct raft *r, raft_index index,
                        struct raft_snapshot_meta *meta);

/*
 * Whether raft_ready() has anything to hand out.
 */
bool raft_has_ready(const struct raft *r);

/*
 * Fill *rd with the next batch (see struct raft_ready); a new persist tag
 * is issued when there is something to write. Must be followed by
 * raft_ready_done() before any other call that changes r. Never fails.
 */
void raft_ready(struct raft *r, struct raft_ready *rd);

/*
 * The driver has sent, held or dropped every message, applied every
 * committed entry and copied whatever it needs of the last batch.
 */
void raft_ready_done(struct raft *r);

/*
 * The durable write of the ready with this tag (and, since writes are
 * done in order, all earlier ones) completed. A tag this node does not
 * wait for (a duplicate, or one from before a restart) returns
 * RAFT_ERR_STALE and changes nothing; entries truncated since the write
 * was issued never count as durable. Returns 0 otherwise.
 */
int raft_persisted(struct raft *r, uint64_t tag);

/* Queries. None changes state or runs anything; pointers returned are
 * owned by r and valid until the next call that changes r. */

/* The role; a follower outside its config's voters is RAFT_NONVOTER. */
enum raft_role raft_role(const struct raft *r);

/* The current term. */
raft_term raft_term_current(const struct raft *r);

/* The leader this node follows or is, 0 when none is known. */
raft_id raft_leader(const struct raft *r);

/* The vote of the current term, 0 for none. */
raft_id raft_voted_for(const struct raft *r);

/* Highest index known committed. */
raft_index raft_commit_index(const struct raft *r);

/* Highest index handed to the driver to apply (or installed). */
raft_index raft_applied_index(const struct raft *r);

/* Index of the last entry (the base's when the log is empty). */
raft_index raft_last_index(const struct raft *r);

/* First index held in memory: the base plus one. */
raft_index raft_first_index(const struct raft *r);

/* Highest index known to agree with the durable log. */
raft_index raft_stable_index(const struct raft *r);

/* The config in effect: the latest in the log (thesis §4.1). */
const struct raft_config *raft_config(const struct raft *r);

/* Whether this leader is running a leadership transfer. */
bool raft_is_transferring(const struct raft *r);

/*
 * The term of the entry at index, or 0 when index is outside
 * [base, last] (base's term is known from the snapshot or compaction).
 */
raft_term raft_term_at(const struct raft *r, raft_index index);

/*
 * The entry at index in (base, last], or NULL.
 */
const struct raft_entry *raft_entry_at(const struct raft *r,
                                       raft_index index);

/*
 * Membership as of index (the latest config entry at or before it, or the
 * base config). Returns 0, or RAFT_ERR_STATE when index is below the log base
 * or beyond the last index.
 */
int raft_config_at(const struct raft *r, raft_index index,
                   struct raft_config *out);

/* Config helpers (pure). */

/* Encode c into a malloc'd buffer (transferred) of *len bytes; NULL on
 * ERR_NOMEM. */
uint8_t *raft_config_encode(const struct raft_config *c, uint32_t *len);

/* Decode a config entry's bytes (borrowed). Returns 0 or ERR_PROTO. */
int raft_config_decode(const uint8_t *buf, uint32_t len,
                       struct raft_config *c);

/* The member record of id in c, or NULL. */
const struct raft_member *raft_config_find(const struct raft_config *c,
                                           raft_id id);

/* Number of voters in c. */
unsigned raft_config_voters(const struct raft_config *c);

/* Whether id is tombstoned in c. */
bool raft_config_is_removed(const struct raft_config *c, raft_id id);

/* A static name for a role, never NULL ("?" for an unknown value). */
const char *raft_role_name(enum raft_role role);

/* A static name for a message type, never NULL. */
const char *raft_msg_name(enum raft_msg_type type);

/* A static description of a code of this header or of err_str(). */
const char *raft_err_str(int rc);

#endif
