/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_repl.c: log replication, both sides, and the commit rule.
 *
 * Leader side: one progress record per member, in probe, pipeline or
 * snapshot state; APPENDs are batched by count and bytes and pipelined
 * within a window bounded by messages and by bytes in flight. Follower
 * side: the AppendEntries and InstallSnapshot receivers. Invariants: a
 * progress's match never exceeds our last index; the leader counts itself
 * only up to its stable (durable) index (thesis §10.2.1); commit advances
 * only by counting replicas of an entry of the current term (paper
 * §5.4.2).
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

struct raft_progress *
raft__pr(struct raft *r, raft_id id)
{
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        if (r->prs[k].id == id && id != 0) {
            return &r->prs[k];
        }
    }
    return NULL;
}

static void
pr_init(struct raft *r, struct raft_progress *pr, raft_id id, bool voter)
{
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->voter = voter;
    pr->state = RAFT_PR_PROBE;
    /* Paper Figure 2: nextIndex starts just after the leader's log. */
    pr->next = raft__log_last(&r->log) + 1;
    pr->heard_tick = r->ticks;
    pr->active = true;
}

void
raft__pr_reset_all(struct raft *r)
{
    memset(r->prs, 0, RAFT_MAX_MEMBERS * sizeof(*r->prs));
    for (unsigned k = 0; k < r->config.n_members; k++) {
        pr_init(r, &r->prs[k], r->config.members[k].id,
                r->config.members[k].voter);
    }
}

/* Bring the progress set in line with a new config: keep what we know of
 * members that stay, start new ones in probe, forget removed ones. */
void
raft__pr_sync(struct raft *r)
{
    struct raft_progress *old;

    old = malloc(RAFT_MAX_MEMBERS * sizeof(*old));
    if (old == NULL) {
        /* Losing what we knew only costs a probe round per follower. */
        raft__pr_reset_all(r);
        return;
    }
    memcpy(old, r->prs, RAFT_MAX_MEMBERS * sizeof(*old));
    memset(r->prs, 0, RAFT_MAX_MEMBERS * sizeof(*r->prs));
    for (unsigned k = 0; k < r->config.n_members; k++) {
        const struct raft_member *mb = &r->config.members[k];
        unsigned j;

        for (j = 0; j < RAFT_MAX_MEMBERS; j++) {
            if (old[j].id == mb->id) {
                break;
            }
        }
        if (j < RAFT_MAX_MEMBERS) {
            r->prs[k] = old[j];
            r->prs[k].voter = mb->voter;
        } else {
            pr_init(r, &r->prs[k], mb->id, mb->voter);
        }
    }
    free(old);
}

static void
inflight_add(struct raft_progress *pr, raft_index last, size_t bytes)
{
    unsigned slot = (pr->inflight_head + pr->n_inflight) % RAFT_MAX_INFLIGHT;

    ASSERT(pr->n_inflight < RAFT_MAX_INFLIGHT);
    pr->inflight_last[slot] = last;
    pr->inflight_size[slot] = bytes;
    pr->inflight_bytes += bytes;
    pr->n_inflight++;
}

static void
inflight_free_to(struct raft_progress *pr, raft_index upto)
{
    while (pr->n_inflight > 0 &&
           pr->inflight_last[pr->inflight_head] <= upto) {
        pr->inflight_bytes -= pr->inflight_size[pr->inflight_head];
        pr->inflight_head = (pr->inflight_head + 1) % RAFT_MAX_INFLIGHT;
        pr->n_inflight--;
    }
}

static void
inflight_reset(struct raft_progress *pr)
{
    pr->n_inflight = 0;
    pr->inflight_head = 0;
    pr->inflight_bytes = 0;
}

static void
become_probe(struct raft *r, struct raft_progress *pr)
{
    (void)r;
    pr->state = RAFT_PR_PROBE;
    pr->paused = false;
    pr->next = pr->match + 1;
    inflight_reset(pr);
}

static bool
window_full(const struct raft *r, const struct raft_progress *pr)
{
    return pr->n_inflight >= r->opt.max_inflight_msgs ||
           (r->opt.max_inflight_bytes > 0 &&
            pr->inflight_bytes >= r->opt.max_inflight_bytes);
}

/* The follower is behind our compacted log: the driver must send our
 * latest snapshot (paper §7). */
static bool
send_snapshot(struct raft *r, struct raft_progress *pr)
{
    struct raft_msg m = {0};

    if (r->snap.index == 0 || r->snap.index < r->log.base) {
        return false; /* nothing to send: cannot happen once compacted */
    }
    m.type = RAFT_MSG_SNAPSHOT;
    m.to = pr->id;
    m.snapshot = r->snap;
    if (raft__send(r, &m) != 0) {
        return false;
    }
    pr->state = RAFT_PR_SNAPSHOT;
    pr->pending_snap = r->snap.index;
    pr->snap_ticks = 0;
    inflight_reset(pr);
    return true;
}

/* Send pr the next APPEND, if its state and window allow. Entries are
 * resolved against the log when the ready is built. */
bool
raft__send_append(struct raft *r, struct raft_progress *pr,
                  bool allow_empty)
{
    struct raft_msg m = {0};
    raft_index last = raft__log_last(&r->log);
    raft_index prev, to;
    size_t bytes = 0;

    ASSERT(r->role == RAFT_LEADER);
    if (pr->id == r->id || pr->state == RAFT_PR_SNAPSHOT) {
        return false;
    }
    if ((pr->state == RAFT_PR_PROBE && pr->paused) ||
        (pr->state == RAFT_PR_PIPELINE && window_full(r, pr))) {
        return false;
    }
    ASSERT(pr->next >= 1 && pr->next <= last + 1);
    prev = pr->next - 1;
    if (prev < r->log.base) {
        return send_snapshot(r, pr);
    }
    /* Batch by count and by bytes; at least one entry when any. */
    to = prev;
    while (to < last && to - prev < r->opt.max_msg_entries) {
        size_t len = raft__log_get(&r->log, to + 1)->len;

        if (to > prev && bytes + len > r->opt.max_msg_bytes) {
            break;
        }
        bytes += len;
        to++;
    }
    /* An empty APPEND is still worth sending to a probed follower: its
     * answer tells us where our logs meet. */
    if (to == prev && !allow_empty && pr->state != RAFT_PR_PROBE) {
        return false;
    }
    m.type = RAFT_MSG_APPEND;
    m.to = pr->id;
    m.index = prev;
    m.log_term = raft__log_term(&r->log, prev);
    m.commit = r->commit;
    m.n_entries = (unsigned)(to - prev);
    if (raft__send(r, &m) != 0) {
        return false;
    }
    if (pr->state == RAFT_PR_PIPELINE && to > prev) {
        inflight_add(pr, to, bytes);
        pr->next = to + 1;
    } else if (pr->state == RAFT_PR_PROBE) {
        pr->paused = true;
    }
    return true;
}

void
raft__broadcast_append(struct raft *r)
{
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        struct raft_progress *pr = &r->prs[k];

        if (pr->id != 0 && pr->id != r->id) {
            while (raft__send_append(r, pr, false) &&
                   pr->state == RAFT_PR_PIPELINE) {
            }
        }
    }
}

/* Heartbeats carry commit only up to what each follower is known to hold,
 * so a follower never commits past its matched entries (paper Figure 2,
 * AppendEntries rule 5). round tags a read-index round (thesis §6.4). */
void
raft__broadcast_heartbeat(struct raft *r, uint64_t round)
{
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        struct raft_progress *pr = &r->prs[k];
        struct raft_msg m = {0};

        if (pr->id == 0 || pr->id == r->id) {
            continue;
        }
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = pr->id;
        m.commit = raft__index_min(pr->match, r->commit);
        m.ctx = round;
        (void)raft__send(r, &m);
    }
}

static int
cmp_desc(const void *a, const void *b)
{
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;

    return x < y ? 1 : (x > y ? -1 : 0);
}

/* Advance commit to the highest index a quorum of voters holds, counting
 * ourselves only up to our durable index, and only if that entry is of
 * our term (paper §5.4.2, Figure 8). Returns whether commit moved. */
bool
raft__maybe_commit(struct raft *r)
{
    raft_index match[RAFT_MAX_MEMBERS];
    unsigned n = 0, q = raft__quorum(&r->config);
    raft_index old = r->commit, n_idx;

    ASSERT(r->role == RAFT_LEADER);
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        const struct raft_progress *pr = &r->prs[k];

        if (pr->id == 0 || !pr->voter) {
            continue;
        }
        match[n++] = pr->id == r->id ? r->stable : pr->match;
    }
    if (n < q) {
        return false;
    }
    qsort(match, n, sizeof(match[0]), cmp_desc);
    n_idx = match[q - 1];
    if (n_idx <= r->commit) {
        return false;
    }
#ifndef RAFT_BROKEN_COMMIT
    if (raft__log_term(&r->log, n_idx) != r->term) {
        return false; /* §5.4.2: never count replicas of older terms */
    }
#endif
    ASSERT(n_idx <= raft__log_last(&r->log));
    r->commit = n_idx;
    {
        size_t done = raft__log_bytes(&r->log, old + 1, n_idx);

        r->uncommitted_bytes = done >= r->uncommitted_bytes
                                   ? 0
                                   : r->uncommitted_bytes - done;
    }
    raft__reads_advance(r);
    return true;
}

/* Tell followers in pipeline state of a new commit index at once, rather
 * than at the next heartbeat. */
static void
broadcast_commit(struct raft *r)
{
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        struct raft_progress *pr = &r->prs[k];

        if (pr->id != 0 && pr->id != r->id &&
            pr->state == RAFT_PR_PIPELINE) {
            (void)raft__send_append(r, pr, true);
        }
    }
}

int
raft__leader_append(struct raft *r, enum raft_entry_type type,
                    const void *data, uint32_t len)
{
    int rc;

    ASSERT(r->role == RAFT_LEADER);
    ASSERT(r->term >= raft__log_last_term(&r->log));
    rc = raft__log_append(&r->log, r->term, type, data, len);
    if (rc != 0) {
        return rc;
    }
    r->uncommitted_bytes += len;
    if (type == RAFT_ENTRY_CONFIG) {
        raft__reload_config(r); /* in effect on append, thesis §4.1 */
    }
    return 0;
}

int
raft_propose(struct raft *r, const void *data, size_t len,
             raft_index *index, raft_term *term)
{
    int rc;

    ASSERT(!r->in_ready);
    if (r->role != RAFT_LEADER) {
        return RAFT_ERR_NOT_LEADER;
    }
    if (r->transferee != 0) {
        return RAFT_ERR_TRANSFER; /* thesis §3.10: stop accepting */
    }
    if (len > UINT32_MAX) {
        return ERR_TOOBIG;
    }
    /* A cap on uncommitted bytes keeps a leader that cannot commit from
     * growing without bound; one entry always fits an empty budget. */
    if (r->opt.max_uncommitted_bytes > 0 && r->uncommitted_bytes > 0 &&
        r->uncommitted_bytes + len > r->opt.max_uncommitted_bytes) {
        return RAFT_ERR_BUSY;
    }
    rc = raft__leader_append(r, RAFT_ENTRY_NORMAL, data, (uint32_t)len);
    if (rc != 0) {
        return rc;
    }
    if (index != NULL) {
        *index = raft__log_last(&r->log);
    }
    if (term != NULL) {
        *term = r->term;
    }
    raft__broadcast_append(r);
    return 0;
}

/* The largest index at or below index whose term is at most term: where
 * two logs can possibly agree (etcd's findConflictByTerm, an optimisation
 * the paper sketches at the end of §5.3). */
static raft_index
find_conflict_by_term(const struct raft_log *l, raft_index index,
                      raft_term term)
{
    index = raft__index_min(index, raft__log_last(l));
    while (index > l->base && raft__log_term(l, index) > term) {
        index--;
    }
    return index;
}

static int
send_append_resp(struct raft *r, const struct raft_msg *m, bool reject,
                 raft_index index)
{
    struct raft_msg resp = {0};

    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = m->from;
    resp.index = index;
    resp.reject = reject;
    if (reject) {
        raft_index last = raft__log_last(&r->log);

        resp.hint_index = m->index > last ? last
                                          : find_conflict_by_term(
                                                &r->log, m->index,
                                                m->log_term);
        resp.hint_term = raft__log_term(&r->log, resp.hint_index);
    }
    return raft__send(r, &resp);
}

/* Entries must run contiguously after prev, with terms that never
 * decrease and never exceed the sender's term. */
static int
check_entries(const struct raft_msg *m)
{
    raft_term t = m->log_term;

    if (m->index > UINT64_MAX - m->n_entries) {
        return ERR_PROTO;
    }
    for (unsigned k = 0; k < m->n_entries; k++) {
        const struct raft_entry *e = &m->entries[k];

        if (e->index != m->index + 1 + k || e->term < t ||
            e->term > m->term || (e->len > 0 && e->data == NULL) ||
            (unsigned)e->type > RAFT_ENTRY_CONFIG) {
            return ERR_PROTO;
        }
        if (e->type == RAFT_ENTRY_CONFIG) {
            struct raft_config c;

            if (raft_config_decode(e->data, e->len, &c) != 0) {
                return ERR_PROTO;
            }
        }
        t = e->term;
    }
    return 0;
}

/* Append the entries of m after a matched prev: skip those we hold,
 * truncate at the first conflict, append the rest (paper Figure 2,
 * AppendEntries rules 3 and 4). */
static int
append_entries(struct raft *r, const struct raft_msg *m)
{
    bool config_changed = false;
    int rc = 0;

    for (unsigned k = 0; k < m->n_entries; k++) {
        const struct raft_entry *e = &m->entries[k];
        raft_index last = raft__log_last(&r->log);

        if (e->index <= last) {
            if (raft__log_term(&r->log, e->index) == e->term) {
                continue;
            }
            /* A committed entry never conflicts (Leader Completeness,
             * paper §5.4); a peer claiming otherwise is broken. */
            if (e->index <= r->commit) {
                return ERR_PROTO;
            }
            raft__log_truncate(&r->log, e->index);
            raft__writes_clamp(r, e->index - 1);
            r->unstable = raft__index_min(r->unstable, e->index);
            config_changed = true;
        }
        rc = raft__log_append(&r->log, e->term, e->type, e->data, e->len);
        if (rc != 0) {
            break;
        }
        config_changed |= e->type == RAFT_ENTRY_CONFIG;
    }
    if (config_changed) {
        raft__reload_config(r);
    }
    return rc;
}

int
raft__on_append(struct raft *r, const struct raft_msg *m)
{
    raft_index last_new;
    int rc;

    rc = check_entries(m);
    if (rc != 0) {
        return rc;
    }
    /* Everything up to our commit is known to match the leader. */
    if (m->index < r->commit) {
        return send_append_resp(r, m, false, r->commit);
    }
    /* Paper Figure 2, rule 2: the log must hold prev with its term. */
    if (raft__log_term(&r->log, m->index) != m->log_term ||
        m->index > raft__log_last(&r->log)) {
        return send_append_resp(r, m, true, m->index);
    }
    rc = append_entries(r, m);
    if (rc != 0) {
        return rc;
    }
    /* Rule 5: commit no further than the last entry this message
     * matched. */
    last_new = m->index + m->n_entries;
    ASSERT(last_new <= raft__log_last(&r->log));
    if (m->commit > r->commit) {
        r->commit = raft__index_max(r->commit,
                                    raft__index_min(m->commit, last_new));
    }
    ASSERT(r->commit <= raft__log_last(&r->log));
    return send_append_resp(r, m, false, last_new);
}

int
raft__on_heartbeat(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg resp = {0};

    /* The leader sent min(match, commit), which we hold (see
     * raft__broadcast_heartbeat); the clamp guards a broken peer. */
    if (m->commit > r->commit) {
        r->commit = raft__index_max(
            r->commit, raft__index_min(m->commit, raft__log_last(&r->log)));
    }
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.ctx = m->ctx;
    return raft__send(r, &resp);
}

/* InstallSnapshot receiver (paper Figure 13). The bytes are the
 * driver's: we only decide whether to install and reset the log. */
int
raft__on_snapshot(struct raft *r, const struct raft_msg *m)
{
    const struct raft_snapshot_meta *s = &m->snapshot;
    struct raft_msg resp = {0};

    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = m->from;
    if (s->index <= r->commit) {
        resp.index = r->commit; /* we are already past it */
        return raft__send(r, &resp);
    }
    if (raft__log_term(&r->log, s->index) == s->term &&
        s->index > r->log.base) {
        /* Step 6: we hold the last included entry; keep what follows
         * and simply commit up to it. */
        r->commit = s->index;
        resp.index = s->index;
        return raft__send(r, &resp);
    }
    /* Step 7: discard the entire log and take the snapshot's state. */
    raft__log_reset(&r->log, s->index, s->term, &s->config);
    raft__writes_clamp(r, 0);
    r->snap = *s;
    r->snap_dirty = true;
    r->commit = s->index;
    r->applied = s->index;
    r->apply_to = s->index;
    r->unstable = s->index + 1;
    raft__reload_config(r);
    resp.index = s->index;
    return raft__send(r, &resp);
}

static void
pr_matched(struct raft *r, struct raft_progress *pr)
{
    if (raft__maybe_commit(r)) {
        broadcast_commit(r);
    }
    raft__member_on_progress(r, pr);
}

int
raft__on_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft_progress *pr = raft__pr(r, m->from);

    if (pr == NULL) {
        return 0;
    }
    pr->active = true;
    pr->heard_tick = r->ticks;
    if (m->reject) {
        raft_index probe;

        /* Ignore rejections of messages we no longer wait for. */
        if (m->index <= pr->match ||
            (pr->state == RAFT_PR_PROBE && m->index + 1 != pr->next)) {
            return 0;
        }
        /* Fast back-off with the follower's hint (paper end of §5.3). */
        probe = raft__index_min(m->hint_index, m->index);
        if (m->hint_term > 0) {
            probe = find_conflict_by_term(&r->log, probe, m->hint_term);
        }
        become_probe(r, pr);
        pr->next = raft__index_max(raft__index_min(probe + 1, m->index),
                                   pr->match + 1);
        pr->next = raft__index_min(pr->next, raft__log_last(&r->log) + 1);
        ASSERT(pr->next > pr->match);
        (void)raft__send_append(r, pr, true);
        return 0;
    }
    if (m->index > raft__log_last(&r->log)) {
        return ERR_PROTO; /* acks an entry we never had */
    }
    pr->paused = false;
    if (m->index > pr->match) {
        ASSERT(m->index <= raft__log_last(&r->log)); /* checked above */
        pr->match = m->index;
        pr->next = raft__index_max(pr->next, m->index + 1);
        inflight_free_to(pr, m->index);
        if (pr->state == RAFT_PR_PROBE ||
            (pr->state == RAFT_PR_SNAPSHOT && pr->match >= pr->pending_snap)) {
            pr->state = RAFT_PR_PIPELINE;
            pr->next = pr->match + 1;
            inflight_reset(pr);
        }
        pr_matched(r, pr);
        if (r->role != RAFT_LEADER) {
            return 0;
        }
    } else if (pr->state == RAFT_PR_SNAPSHOT &&
               pr->match >= pr->pending_snap) {
        become_probe(r, pr);
    }
    while (raft__send_append(r, pr, false) &&
           pr->state == RAFT_PR_PIPELINE) {
    }
    return 0;
}

int
raft__on_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft_progress *pr = raft__pr(r, m->from);

    if (pr == NULL) {
        return 0;
    }
    pr->active = true;
    pr->heard_tick = r->ticks;
    if (m->ctx <= r->read_round_sent && m->ctx > pr->read_round &&
        pr->voter) {
        pr->read_round = m->ctx;
        raft__reads_advance(r);
    }
    if (pr->match < raft__log_last(&r->log)) {
        /* No progress since the last heartbeat: an APPEND was probably
         * lost, so fall back to probing from what we know. */
        if (pr->state == RAFT_PR_PIPELINE && pr->match == pr->hb_match) {
            become_probe(r, pr);
        }
        pr->paused = false;
        (void)raft__send_append(r, pr, false);
    }
    pr->hb_match = pr->match;
    return 0;
}

/* Snapshot sends that never got an answer are retried. */
void
raft__pr_tick(struct raft *r)
{
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        struct raft_progress *pr = &r->prs[k];

        if (pr->id == 0 || pr->state != RAFT_PR_SNAPSHOT) {
            continue;
        }
        if (++pr->snap_ticks >= 2 * r->opt.election_ticks) {
            become_probe(r, pr);
        }
    }
}
