/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_read.c: linearizable reads by read index (thesis §6.4).
 *
 * A read is given the leader's commit index when it arrives and becomes
 * ready once a quorum of voters has answered a heartbeat round started
 * after it; all reads waiting for the same round share it. Reads are
 * refused until the leader has committed an entry of its own term (its
 * no-op), since before that its commit index may be behind (thesis
 * §6.4 step 1). A follower forwards the request to the leader and gets
 * the index back.
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

bool
raft__committed_in_term(const struct raft *r)
{
    return raft__log_term(&r->log, r->commit) == r->term;
}

int
raft__read_state_push(struct raft *r, uint64_t ctx, raft_index index,
                      bool failed)
{
    struct raft_read_state *rs;

    if (r->n_ready_reads == r->cap_ready_reads) {
        size_t cap = r->cap_ready_reads != 0 ? 2 * r->cap_ready_reads : 8;
        struct raft_read_state *grown;

        grown = realloc(r->ready_reads, cap * sizeof(*grown));
        if (grown == NULL) {
            return ERR_NOMEM;
        }
        r->ready_reads = grown;
        r->cap_ready_reads = cap;
    }
    rs = &r->ready_reads[r->n_ready_reads++];
    rs->ctx = ctx;
    rs->index = index;
    rs->failed = failed;
    return 0;
}

static int
reply(struct raft *r, raft_id to, uint64_t ctx, raft_index index,
      bool reject)
{
    struct raft_msg m = {0};

    m.type = RAFT_MSG_READ_INDEX_RESP;
    m.to = to;
    m.ctx = ctx;
    m.index = index;
    m.reject = reject;
    return raft__send(r, &m);
}

static int
push_req(struct raft *r, uint64_t ctx, raft_id from)
{
    struct raft_read_req *q;

    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads != 0 ? 2 * r->cap_reads : 8;
        struct raft_read_req *grown = realloc(r->reads, cap * sizeof(*grown));

        if (grown == NULL) {
            return ERR_NOMEM;
        }
        r->reads = grown;
        r->cap_reads = cap;
    }
    ASSERT(r->role == RAFT_LEADER);
    q = &r->reads[r->n_reads++];
    q->ctx = ctx;
    q->index = r->commit;
    q->round = r->read_round_sent + 1;
    q->from = from;
    r->read_broadcast = true;
    return 0;
}

int
raft_read_index(struct raft *r, uint64_t ctx)
{
    struct raft_msg m = {0};

    ASSERT(!r->in_ready);
    if (r->role == RAFT_LEADER) {
        if (!raft__committed_in_term(r)) {
            return RAFT_ERR_NOT_READY;
        }
        return push_req(r, ctx, 0);
    }
    if (r->role != RAFT_FOLLOWER || r->leader == 0) {
        return RAFT_ERR_NOT_LEADER;
    }
    m.type = RAFT_MSG_READ_INDEX;
    m.to = r->leader;
    m.ctx = ctx;
    return raft__send(r, &m);
}

int
raft__on_read_index(struct raft *r, const struct raft_msg *m)
{
    if (r->role != RAFT_LEADER || m->term != r->term ||
        !raft__committed_in_term(r)) {
        return reply(r, m->from, m->ctx, 0, true);
    }
    return push_req(r, m->ctx, m->from);
}

int
raft__on_read_index_resp(struct raft *r, const struct raft_msg *m)
{
    return raft__read_state_push(r, m->ctx, m->index, m->reject);
}

/* Start the heartbeat round that pending reads wait for. */
void
raft__reads_flush(struct raft *r)
{
    if (r->role != RAFT_LEADER || !r->read_broadcast) {
        return;
    }
    r->read_broadcast = false;
    r->read_round_sent++;
    r->heartbeat_elapsed = 0;
    raft__broadcast_heartbeat(r, r->read_round_sent);
    raft__reads_advance(r);
}

static int
cmp_round_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? 1 : (x > y ? -1 : 0);
}

/* Release the reads whose round a quorum of voters has echoed; the
 * leader echoes every round it sends. */
void
raft__reads_advance(struct raft *r)
{
    uint64_t rounds[RAFT_MAX_MEMBERS];
    unsigned n = 0, q = raft__quorum(&r->config), done = 0;
    uint64_t acked;

    if (r->role != RAFT_LEADER || r->n_reads == 0) {
        return;
    }
    for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
        const struct raft_progress *pr = &r->prs[k];

        if (pr->id != 0 && pr->voter) {
            rounds[n++] = pr->id == r->id ? r->read_round_sent
                                          : pr->read_round;
        }
    }
    if (n < q) {
        return;
    }
    qsort(rounds, n, sizeof(rounds[0]), cmp_round_desc);
    acked = rounds[q - 1];
    ASSERT(acked <= r->read_round_sent);
    while (done < r->n_reads && r->reads[done].round <= acked) {
        const struct raft_read_req *rq = &r->reads[done];

        if (rq->from == 0) {
            (void)raft__read_state_push(r, rq->ctx, rq->index, false);
        } else {
            (void)reply(r, rq->from, rq->ctx, rq->index, false);
        }
        done++;
    }
    memmove(r->reads, r->reads + done,
            (r->n_reads - done) * sizeof(*r->reads));
    r->n_reads -= done;
}

/* A leader stepping down cannot vouch for pending reads any more. */
void
raft__reads_fail_all(struct raft *r)
{
    for (size_t k = 0; k < r->n_reads; k++) {
        const struct raft_read_req *rq = &r->reads[k];

        if (rq->from == 0) {
            (void)raft__read_state_push(r, rq->ctx, 0, true);
        } else {
            (void)reply(r, rq->from, rq->ctx, 0, true);
        }
    }
    r->n_reads = 0;
    r->read_broadcast = false;
}
