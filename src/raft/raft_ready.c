/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_ready.c: the ready batch and the completions that come back.
 *
 * Owns the persistence contract. A batch hands out, under one tag, the
 * hard state, a snapshot to install and the entries not yet handed out;
 * messages that promise something about our durable state (granted
 * votes, acks) are tagged to wait for that write, while the leader's
 * APPENDs and a candidate's requests go at once (thesis §10.2.1; the
 * candidate leads only once its own vote is durable). The driver writes in tag
 * order, so a completion covers every earlier tag. Invariant: stable
 * never exceeds the last index, and entries truncated after a write was
 * issued never count as durable.
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define RAFT_APPLY_BATCH 256 /* committed entries per ready, at most */

/* The log was cut back to last: no write may make more than that
 * durable. */
void
raft__writes_clamp(struct raft *r, raft_index last)
{
    for (size_t k = 0; k < r->n_writes; k++) {
        r->writes[k].last = raft__index_min(r->writes[k].last, last);
    }
    r->stable = raft__index_min(r->stable, last);
}

static raft_index
apply_limit(const struct raft *r)
{
    return raft__index_min(r->commit, r->stable);
}

bool
raft_has_ready(const struct raft *r)
{
    return r->hs_dirty || r->snap_dirty ||
           r->unstable <= raft__log_last(&r->log) || r->n_msgs > 0 ||
           r->applied < apply_limit(r) || r->n_ready_reads > 0 ||
           r->n_events > 0 || (r->role == RAFT_LEADER && r->read_broadcast);
}

static bool
needs_persist(enum raft_msg_type type)
{
    switch (type) {
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
        return true;
    default:
        return false;
    }
}

static bool
leader_only(enum raft_msg_type type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW;
}

/* Resolve an APPEND's entries against the log; false when they are gone
 * (compacted) and the message must be dropped. */
static bool
resolve_entries(const struct raft *r, struct raft_msg *m)
{
    if (raft__log_term(&r->log, m->index) != m->log_term ||
        (m->index < r->log.base)) {
        return false;
    }
    if (m->n_entries == 0) {
        m->entries = NULL;
        return true;
    }
    m->entries = raft__log_get(&r->log, m->index + 1);
    return m->entries != NULL &&
           raft__log_get(&r->log, m->index + m->n_entries) != NULL;
}

static int
push_write(struct raft *r, uint64_t tag)
{
    if (r->n_writes == r->cap_writes) {
        size_t cap = r->cap_writes != 0 ? 2 * r->cap_writes : 8;
        struct raft_pending_write *grown;

        grown = realloc(r->writes, cap * sizeof(*grown));
        if (grown == NULL) {
            return ERR_NOMEM;
        }
        r->writes = grown;
        r->cap_writes = cap;
    }
    r->writes[r->n_writes].tag = tag;
    r->writes[r->n_writes].last = raft__log_last(&r->log);
    r->n_writes++;
    return 0;
}

static void
ready_persist(struct raft *r, struct raft_ready *rd)
{
    raft_index last = raft__log_last(&r->log);

    if (!r->hs_dirty && !r->snap_dirty && r->unstable > last) {
        return;
    }
    /* Without room to track the write we cannot hand it out; it stays
     * dirty and goes with a later batch. */
    if (push_write(r, r->next_tag) != 0) {
        return;
    }
    rd->tag = r->next_tag++;
    rd->has_hard_state = r->hs_dirty;
    if (r->hs_dirty) {
        r->hs_tag = rd->tag;
    }
    rd->hs.term = r->term;
    rd->hs.vote = r->vote;
    rd->has_snapshot = r->snap_dirty;
    rd->snapshot = r->snap;
    if (r->unstable <= last) {
        ASSERT(r->unstable > r->log.base);
        rd->entries = raft__log_get(&r->log, r->unstable);
        rd->n_entries = (unsigned)(last - r->unstable + 1);
    }
    r->hs_dirty = false;
    r->snap_dirty = false;
    r->unstable = last + 1;
}

static void
ready_msgs(struct raft *r, struct raft_ready *rd)
{
    uint64_t wait = r->n_writes > 0 ? r->writes[r->n_writes - 1].tag : 0;
    size_t out = 0;

    for (size_t k = 0; k < r->n_msgs; k++) {
        struct raft_msg *m = &r->msgs[k];

        /* A leader message from a term or role we left is dropped: what
         * it describes may not be true any more. */
        if (leader_only(m->type) &&
            (r->role != RAFT_LEADER || m->term != r->term)) {
            continue;
        }
        if (m->type == RAFT_MSG_APPEND && !resolve_entries(r, m)) {
            continue;
        }
        m->persist_tag = needs_persist(m->type) ? wait : 0;
        r->msgs[out++] = *m;
    }
    r->n_msgs = out;
    rd->msgs = r->msgs;
    rd->n_msgs = (unsigned)out;
}

void
raft_ready(struct raft *r, struct raft_ready *rd)
{
    raft_index limit;

    ASSERT(!r->in_ready);
    raft__reads_flush(r);
    memset(rd, 0, sizeof(*rd));
    r->in_ready = true;
    ready_persist(r, rd);
    ready_msgs(r, rd);
    limit = apply_limit(r);
    if (r->applied < limit) {
        raft_index n = limit - r->applied;

        if (n > RAFT_APPLY_BATCH) {
            n = RAFT_APPLY_BATCH;
        }
        rd->committed = raft__log_get(&r->log, r->applied + 1);
        ASSERT(rd->committed != NULL);
        rd->n_committed = (unsigned)n;
        r->apply_to = r->applied + n;
    }
    rd->reads = r->ready_reads;
    rd->n_reads = (unsigned)r->n_ready_reads;
    rd->events = r->events;
    rd->n_events = (unsigned)r->n_events;
}

void
raft_ready_done(struct raft *r)
{
    ASSERT(r->in_ready);
    r->in_ready = false;
    r->n_msgs = 0;
    r->n_ready_reads = 0;
    r->n_events = 0;
    r->applied = raft__index_max(r->applied, r->apply_to);
    ASSERT(r->applied <= r->commit);
}

int
raft_persisted(struct raft *r, uint64_t tag)
{
    size_t k;

    ASSERT(!r->in_ready);
    for (k = 0; k < r->n_writes; k++) {
        if (r->writes[k].tag == tag) {
            break;
        }
    }
    if (k == r->n_writes) {
        return RAFT_ERR_STALE;
    }
    /* Writes complete in order: this one leaves the disk agreeing with
     * the log up to its (clamped) last index. */
    r->stable = r->writes[k].last;
    ASSERT(r->stable <= raft__log_last(&r->log));
    memmove(r->writes, r->writes + k + 1,
            (r->n_writes - k - 1) * sizeof(*r->writes));
    r->n_writes -= k + 1;
    if (r->hs_tag != 0 && tag >= r->hs_tag) {
        r->hs_tag = 0;
        raft__hs_written(r);
        raft__hs_durable(r);
    }
    if (r->role == RAFT_LEADER) {
        struct raft_progress *self = raft__pr(r, r->id);

        if (raft__maybe_commit(r)) {
            raft__broadcast_heartbeat(r, r->read_round_sent);
        }
        if (self != NULL) {
            self->match = r->stable;
        }
    }
    return 0;
}

int
raft_snapshot_taken(struct raft *r, raft_index index,
                    struct raft_snapshot_meta *meta)
{
    struct raft_snapshot_meta s;
    raft_index at;
    int rc;

    ASSERT(!r->in_ready);
    if (index > r->applied || index < r->snap.index ||
        index < r->log.base) {
        return RAFT_ERR_STATE;
    }
    s.index = index;
    s.term = raft__log_term(&r->log, index);
    rc = raft__log_config_at(&r->log, index, &s.config, &at);
    ASSERT(rc == 0);
    r->snap = s;
    if (meta != NULL) {
        *meta = s;
    }
    /* Keep a tail so slow followers can still be sent entries rather than
     * the whole state (paper §7 leaves the policy open). */
    if (index > r->opt.snapshot_tail) {
        raft__log_compact(&r->log, index - r->opt.snapshot_tail);
    }
    return 0;
}
