/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * sim.h: the deterministic cluster simulator driving src/raft.
 *
 * One process, one seed: a simulated clock (microseconds), network and
 * disk drive up to SIM_MAX_NODES raft cores through their ready batches.
 * Every source of choice is the seeded PRNG of struct sim, and events are
 * ordered by (time, sequence), so a seed replays byte for byte. The
 * checker (sim_check.c) runs after every event; the client workload's
 * history is checked for linearizability (sim_lin.c) at the end.
 */
#ifndef SHOAL_TESTS_SIM_SIM_H
#define SHOAL_TESTS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "raft/raft.h"

#define SIM_MAX_NODES 12
#define SIM_KEYS 3
#define SIM_MAX_CLIENTS 4
#define SIM_TRACE_RING 64
#define SIM_NEVER UINT64_MAX

/* The fault mix of one seed (swarm testing: each seed draws its own). */
struct sim_mix {
    unsigned n_voters;       /* founding voters: 1, 3, 5 or 7 */
    unsigned n_clients;
    bool pre_vote;
    bool check_quorum;
    unsigned election_ticks; /* min election timeout */
    unsigned election_ticks_max; /* max; 0 means twice the min */
    unsigned heartbeat_ticks;
    uint64_t tick_us;
    unsigned skew_pct;       /* per-node clock rate spread, percent */
    uint64_t lat_min_us, lat_max_us;
    unsigned drop_pm;        /* per mille of messages lost */
    unsigned dup_pm;         /* per mille duplicated */
    unsigned replay_pm;      /* per mille replayed much later */
    unsigned max_msg_entries;
    unsigned buggify_pm;     /* per mille: faults aimed at risky moments */
    uint64_t disk_min_us, disk_max_us;
    unsigned fault_every_ms; /* mean gap between fault actions */
    unsigned partition_pct;  /* shares of the fault actions, percent */
    unsigned asym_pct;
    unsigned clog_pct;
    unsigned crash_pct;
    unsigned pause_pct;
    unsigned member_pct;
    unsigned transfer_pct;
    bool torn;               /* a crash may tear the write in progress */
    unsigned snap_every;     /* applied entries between snapshots; 0 off */
    unsigned snap_tail;
    uint64_t safety_ms;      /* length of the faulty phase */
    unsigned max_inflight;
    size_t max_uncommitted;
};

/* A message on the simulated wire: a deep copy of the core's message. */
struct sim_msg {
    struct raft_msg m;
    struct raft_entry *ents;      /* owned copies of m.entries */
    uint64_t snap_kv[SIM_KEYS];   /* SNAPSHOT: the state it carries */
};

/* One durable write in a node's disk queue. */
struct sim_write {
    uint64_t tag;
    bool has_hs;
    struct raft_hard_state hs;
    bool has_snap;
    struct raft_snapshot_meta snap;
    uint64_t snap_kv[SIM_KEYS];
    struct raft_entry *ents;      /* owned copies */
    unsigned n_ents;
    uint64_t start_us;            /* the sync it joined started then */
    uint64_t done_us;
};

struct sim_held {
    uint64_t tag;
    struct sim_msg *msg;
};

struct sim_node {
    raft_id id;
    bool exists;
    bool up;
    bool removed;                 /* tombstoned by the cluster */
    uint64_t paused_until;
    uint64_t incarnation;
    struct raft r;
    /* Durable state: survives crashes. */
    struct raft_hard_state d_hs;
    struct raft_snapshot_meta d_snap;
    uint64_t d_snap_kv[SIM_KEYS];
    struct raft_entry *d_log;     /* (d_base, d_base + d_n] */
    size_t d_n, d_cap;
    raft_index d_base;
    /* Volatile: lost on crash. */
    struct sim_write *writes;     /* FIFO */
    size_t n_writes, cap_writes;
    struct sim_held *held;
    size_t n_held, cap_held;
    uint64_t kv[SIM_KEYS];
    raft_index sm_applied;
    uint64_t recv_snap_kv[SIM_KEYS];
    raft_index recv_snap_index;
    uint64_t tick_us;             /* this node's tick period (skew) */
    /* Checker shadow of the log. */
    raft_term *sh_term;
    uint64_t *sh_hash;            /* entry hash: term, type, data */
    uint64_t *sh_chain;           /* hash of the whole prefix */
    size_t sh_n, sh_cap;
    raft_index sh_base;
    bool sh_base_known;
    uint64_t sh_base_chain;
    raft_term sh_leader_term;     /* term we last saw it lead, or 0 */
    unsigned sh_checks;
    bool dropping_entries_to[SIM_MAX_NODES + 1]; /* timing mode */
};

enum sim_op_type { SIM_OP_WRITE, SIM_OP_READ };

/* One client operation in the history. */
struct sim_op {
    enum sim_op_type type;
    unsigned key;
    uint64_t value;               /* written, or read */
    uint64_t invoke_us;
    uint64_t done_us;             /* SIM_NEVER: outcome unknown */
};

struct sim_client {
    unsigned id;
    bool busy;
    enum sim_op_type type;
    unsigned key;
    uint64_t value;
    uint64_t invoke_us;
    uint64_t deadline_us;
    unsigned node;                /* node index serving it */
    uint64_t incarnation;
    raft_index index;             /* write: proposed at; read: ready at */
    raft_term term;
    bool read_ready;
    uint64_t ctx;
    size_t op;                    /* slot in the history */
};

struct sim_event;

struct sim {
    uint64_t seed;
    uint64_t rng;
    uint64_t now;
    uint64_t seq;
    struct sim_mix mix;
    struct raft_options base_opt;
    struct sim_node nodes[SIM_MAX_NODES + 1]; /* index = raft id */
    unsigned n_nodes;             /* highest id in use */
    struct sim_event *heap;
    size_t n_heap, cap_heap;
    bool blocked[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
    uint64_t clog_until[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
    bool faults;                  /* random faults on (safety phase) */
    bool clients_on;
    bool lossy;                   /* drop and duplicate on */
    struct sim_client clients[SIM_MAX_CLIENTS];
    struct sim_op *ops;
    size_t n_ops, cap_ops;
    uint64_t next_value;
    uint64_t next_ctx;
    /* Checker state. */
    raft_id *leader_of_term;      /* indexed by term */
    size_t cap_terms;
    struct sim_vote *votes;
    size_t n_votes, cap_votes;
    struct sim_chain *chains;     /* (index, term) -> prefix hash */
    size_t n_chains, cap_chains;
    raft_term *ap_term;           /* applied entry per index */
    uint64_t *ap_hash;
    uint64_t *st_hash;            /* state hash after index */
    uint8_t *ap_set;
    raft_term *cm_term;           /* committed entry per index */
    raft_term *cm_seen;           /* lowest term it was seen committed */
    size_t cap_idx;
    raft_index g_commit;
    bool violated;
    char violation[512];
    /* Trace. */
    uint64_t trace_hash;
    uint64_t n_trace;
    char ring[SIM_TRACE_RING][160];
    FILE *trace_out;              /* full trace, or NULL */
    /* Liveness probe. */
    uint64_t marker_value;
    bool marker_applied;
    /* Timing mode hooks. */
    raft_term timing_after_term;
    unsigned timing_heard;
    unsigned timing_need; /* receivers that end a trial */
    bool timing_heard_by[SIM_MAX_NODES + 1];
    uint64_t timing_done_us;
    uint64_t stat_events;
};

/* Engine (sim.c). */
uint64_t sim_rand(struct sim *s);
uint64_t sim_rand_range(struct sim *s, uint64_t lo, uint64_t hi);
void sim_draw_mix(struct sim *s, struct sim_mix *mix);
int sim_init(struct sim *s, uint64_t seed, const struct sim_mix *mix);
void sim_fini(struct sim *s);
void sim_trace(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_run_until(struct sim *s, uint64_t t_us);
bool sim_run_until_cond(struct sim *s, uint64_t t_us,
                        bool (*cond)(struct sim *s, void *arg), void *arg);
unsigned sim_add_node(struct sim *s);
void sim_crash(struct sim *s, unsigned id);
void sim_restart(struct sim *s, unsigned id);
void sim_pause(struct sim *s, unsigned id, uint64_t until_us);
void sim_block(struct sim *s, unsigned from, unsigned to, bool blocked);
void sim_isolate(struct sim *s, unsigned id, bool isolated);
void sim_heal(struct sim *s);
unsigned sim_leader(struct sim *s);
void sim_drive(struct sim *s, unsigned id);
int sim_propose(struct sim *s, unsigned id, unsigned key, uint64_t value);
void sim_dump_ring(struct sim *s, FILE *f);
int sim_run_seed(uint64_t seed, bool verbose, FILE *trace, uint64_t *hash);
int sim_client_read(struct sim *s, unsigned client, unsigned node,
                    unsigned key);

/* Checks (sim_check.c). Each records the first violation in s. */
void sim_violation(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_check_node(struct sim *s, unsigned id);
void sim_check_vote(struct sim *s, const struct raft_msg *m);
void sim_check_apply(struct sim *s, unsigned id,
                     const struct raft_entry *e);
void sim_check_state(struct sim *s, unsigned id);
void sim_check_fini(struct sim *s);
uint64_t sim_hash(uint64_t h, const void *p, size_t n);
uint64_t sim_entry_hash(const struct raft_entry *e);

/* Linearizability (sim_lin.c): 0 when the history of every key is
 * linearizable, 1 when not, 2 when the search budget ran out. */
int sim_lin_check(const struct sim_op *ops, size_t n_ops, char *why,
                  size_t why_len);

/* Election timing (sim_timing.c). */
int sim_timing_main(unsigned trials, FILE *out);

#endif
