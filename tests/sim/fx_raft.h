/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fx_raft.h: a hand-driven cluster of raft cores for the unit tests.
 *
 * Unlike the simulator, nothing here is random or timed: messages wait in
 * one FIFO queue until the test delivers them, writes are durable as soon
 * as the test says, and links can be cut or filtered per message. Tests
 * script the paper's situations step by step with it.
 */
#ifndef SHOAL_TESTS_SIM_FX_RAFT_H
#define SHOAL_TESTS_SIM_FX_RAFT_H

#include <stdbool.h>

#include "raft/raft.h"

#define FX_MAX 7
#define FX_QUEUE 4096

struct fx_msg {
    struct raft_msg m;
    struct raft_entry *ents; /* owned copies */
};

typedef bool fx_filter_fn(const struct raft_msg *m, void *arg);

struct fx_cluster {
    unsigned n;
    struct raft r[FX_MAX + 1];        /* index = id */
    bool down[FX_MAX + 1];
    bool cut[FX_MAX + 1][FX_MAX + 1]; /* from, to */
    struct fx_msg q[FX_QUEUE];
    unsigned n_q;
    fx_filter_fn *filter;             /* false: drop the message */
    void *filter_arg;
    unsigned trim_from;               /* APPENDs of this node lose ... */
    raft_index trim_index;            /* ... entries at or after this */
    /* Durable state per node, as the driver would keep it. */
    struct raft_hard_state hs[FX_MAX + 1];
    unsigned n_applied[FX_MAX + 1];   /* committed entries handed out */
    unsigned n_reads[FX_MAX + 1];
    struct raft_read_state reads[FX_MAX + 1][16];
};

/* Default options for id: election 10..20 ticks, heartbeat 2, pre-vote
 * and check-quorum on, one entry per message. */
void fx_opts(struct raft_options *o, raft_id id);

/* Boot node id of a fresh cluster whose voters are 1..n_voters, as
 * restored from disk after bootstrap: term 1, one config entry. */
void fx_boot(struct raft *r, const struct raft_options *o,
             unsigned n_voters);

/* Run every ready of r: queue its messages in c (when c is not NULL),
 * count applied entries and reads, and report the write durable at once.
 * Returns the number of messages produced. */
unsigned fx_ready(struct fx_cluster *c, unsigned id);

void fx_cluster_init(struct fx_cluster *c, unsigned n,
                     const struct raft_options *base);
void fx_cluster_fini(struct fx_cluster *c);

/* Deliver queued messages (and what they cause) until the queue is empty
 * or max deliveries happened. Cut links and the filter drop messages. */
void fx_stabilize(struct fx_cluster *c, unsigned max);

/* Tick node id k times, running its readies. */
void fx_tick(struct fx_cluster *c, unsigned id, unsigned k);

/* Tick every up node once per round and stabilize, for rounds. */
void fx_run(struct fx_cluster *c, unsigned rounds);

/* Make id campaign by ticking it alone past its timeout, then stabilize.
 * Returns true when it leads afterwards. */
bool fx_elect(struct fx_cluster *c, unsigned id);

void fx_isolate(struct fx_cluster *c, unsigned id, bool cut);

/* Crash id (queued messages to and from it vanish) and restart it from
 * its durable hard state and its log up to the stable index. */
void fx_restart(struct fx_cluster *c, unsigned id);

int fx_propose(struct fx_cluster *c, unsigned id, const char *s);

#endif
