/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fx_raft.c: the hand-driven cluster of fx_raft.h.
 *
 * Durability is immediate: every ready's write is reported persisted
 * before the next call, so held messages are queued at once. fx_restart
 * rebuilds a node from what it had persisted.
 */
#include "fx_raft.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

void
fx_opts(struct raft_options *o, raft_id id)
{
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->election_ticks = 10;
    o->election_ticks_max = 20;
    o->heartbeat_ticks = 2;
    o->pre_vote = true;
    o->check_quorum = true;
    o->max_msg_entries = 1;
    o->max_msg_bytes = 1024;
    o->max_inflight_msgs = 4;
    o->max_inflight_bytes = 1 << 20;
    o->snapshot_tail = 2;
    o->max_catchup_rounds = 3;
    o->seed = 42;
}

void
fx_boot(struct raft *r, const struct raft_options *o, unsigned n_voters)
{
    struct raft_config cfg = {0};
    struct raft_hard_state hs = {1, 0};
    struct raft_entry e = {1, 1, RAFT_ENTRY_CONFIG, 0, NULL};
    int rc;

    cfg.n_members = n_voters;
    for (unsigned k = 0; k < n_voters; k++) {
        cfg.members[k].id = k + 1;
        cfg.members[k].voter = true;
    }
    e.data = raft_config_encode(&cfg, &e.len);
    ASSERT(e.data != NULL);
    rc = raft_init(r, o);
    ASSERT(rc == 0);
    rc = raft_restore(r, &hs, NULL, &e, 1);
    ASSERT(rc == 0);
    free(e.data);
}

static void
queue_msg(struct fx_cluster *c, const struct raft_msg *m)
{
    struct fx_msg *q;

    ASSERT(c->n_q < FX_QUEUE);
    q = &c->q[c->n_q++];
    q->m = *m;
    q->ents = NULL;
    if (m->n_entries > 0) {
        q->ents = calloc(m->n_entries, sizeof(*q->ents));
        ASSERT(q->ents != NULL);
        for (unsigned k = 0; k < m->n_entries; k++) {
            q->ents[k] = m->entries[k];
            if (m->entries[k].len > 0) {
                q->ents[k].data = malloc(m->entries[k].len);
                ASSERT(q->ents[k].data != NULL);
                memcpy(q->ents[k].data, m->entries[k].data,
                       m->entries[k].len);
            }
        }
    }
    q->m.entries = q->ents;
}

static void
msg_free(struct fx_msg *q)
{
    for (unsigned k = 0; k < q->m.n_entries && q->ents != NULL; k++) {
        free(q->ents[k].data);
    }
    free(q->ents);
    q->ents = NULL;
}

unsigned
fx_ready(struct fx_cluster *c, unsigned id)
{
    struct raft *r = &c->r[id];
    unsigned n = 0;

    while (raft_has_ready(r)) {
        struct raft_ready rd;

        raft_ready(r, &rd);
        if (rd.has_hard_state) {
            c->hs[id] = rd.hs;
        }
        for (unsigned k = 0; k < rd.n_msgs; k++) {
            queue_msg(c, &rd.msgs[k]);
            n++;
        }
        c->n_applied[id] += rd.n_committed;
        for (unsigned k = 0; k < rd.n_reads && c->n_reads[id] < 16; k++) {
            c->reads[id][c->n_reads[id]++] = rd.reads[k];
        }
        raft_ready_done(r);
        if (rd.tag != 0) {
            (void)raft_persisted(r, rd.tag);
        }
    }
    return n;
}

void
fx_cluster_init(struct fx_cluster *c, unsigned n,
                const struct raft_options *base)
{
    memset(c, 0, sizeof(*c));
    ASSERT(n <= FX_MAX);
    c->n = n;
    for (unsigned id = 1; id <= n; id++) {
        struct raft_options o;

        if (base != NULL) {
            o = *base;
        } else {
            fx_opts(&o, id);
        }
        o.id = id;
        o.seed = 1000 + id;
        fx_boot(&c->r[id], &o, n);
        c->hs[id].term = 1;
    }
}

void
fx_cluster_fini(struct fx_cluster *c)
{
    for (unsigned k = 0; k < c->n_q; k++) {
        msg_free(&c->q[k]);
    }
    c->n_q = 0;
    for (unsigned id = 1; id <= c->n; id++) {
        raft_fini(&c->r[id]);
    }
}

void
fx_stabilize(struct fx_cluster *c, unsigned max)
{
    unsigned done = 0;

    for (unsigned id = 1; id <= c->n; id++) {
        if (!c->down[id]) {
            fx_ready(c, id);
        }
    }
    while (c->n_q > 0 && done < max) {
        struct fx_msg q = c->q[0];
        unsigned to = (unsigned)q.m.to;

        memmove(c->q, c->q + 1, (c->n_q - 1) * sizeof(c->q[0]));
        c->n_q--;
        done++;
        if (c->trim_index != 0 && q.m.from == c->trim_from &&
            q.m.type == RAFT_MSG_APPEND) {
            unsigned keep = 0;

            while (keep < q.m.n_entries &&
                   q.m.entries[keep].index < c->trim_index) {
                keep++;
            }
            for (unsigned k = keep; k < q.m.n_entries; k++) {
                free(q.ents[k].data);
                q.ents[k].data = NULL;
            }
            q.m.n_entries = keep;
        }
        if (to >= 1 && to <= c->n && !c->down[to] &&
            !c->cut[q.m.from][to] &&
            (c->filter == NULL || c->filter(&q.m, c->filter_arg))) {
            (void)raft_step(&c->r[to], &q.m);
            fx_ready(c, to);
        }
        msg_free(&q);
    }
}

void
fx_tick(struct fx_cluster *c, unsigned id, unsigned k)
{
    for (unsigned j = 0; j < k; j++) {
        raft_tick(&c->r[id]);
        fx_ready(c, id);
    }
}

void
fx_run(struct fx_cluster *c, unsigned rounds)
{
    for (unsigned j = 0; j < rounds; j++) {
        for (unsigned id = 1; id <= c->n; id++) {
            if (!c->down[id]) {
                fx_tick(c, id, 1);
            }
        }
        fx_stabilize(c, 100000);
    }
}

bool
fx_elect(struct fx_cluster *c, unsigned id)
{
    /* Let everyone else's lease on the old leader run out, as it would
     * by the time id times out, without making them campaign. */
    for (unsigned k = 1; k <= c->n; k++) {
        struct raft *r = &c->r[k];

        if (k != id && r->role != RAFT_LEADER &&
            r->election_elapsed < r->opt.election_ticks) {
            r->election_elapsed = r->opt.election_ticks;
        }
    }
    for (unsigned k = 0; k < 64 && raft_role(&c->r[id]) != RAFT_LEADER;
         k++) {
        fx_tick(c, id, 1);
        fx_stabilize(c, 100000);
    }
    return raft_role(&c->r[id]) == RAFT_LEADER;
}

void
fx_isolate(struct fx_cluster *c, unsigned id, bool cut)
{
    for (unsigned k = 1; k <= FX_MAX; k++) {
        if (k != id) {
            c->cut[id][k] = cut;
            c->cut[k][id] = cut;
        }
    }
}

void
fx_restart(struct fx_cluster *c, unsigned id)
{
    struct raft *r = &c->r[id];
    struct raft_options o = r->opt;
    raft_index first = raft_first_index(r), last = raft_stable_index(r);
    struct raft_snapshot_meta snap = r->snap;
    struct raft_entry *ents = NULL;
    size_t n = 0;
    int rc;

    if (last >= first) {
        n = last - first + 1;
        ents = calloc(n, sizeof(*ents));
        ASSERT(ents != NULL);
        for (size_t k = 0; k < n; k++) {
            const struct raft_entry *e = raft_entry_at(r, first + k);

            ents[k] = *e;
            ents[k].data = NULL;
            if (e->len > 0) {
                ents[k].data = malloc(e->len);
                ASSERT(ents[k].data != NULL);
                memcpy(ents[k].data, e->data, e->len);
            }
        }
    }
    raft_fini(r);
    rc = raft_init(r, &o);
    ASSERT(rc == 0);
    rc = raft_restore(r, &c->hs[id], snap.index > 0 ? &snap : NULL, ents, n);
    ASSERT(rc == 0);
    for (size_t k = 0; k < n; k++) {
        free(ents[k].data);
    }
    free(ents);
    c->n_applied[id] = 0;
}

int
fx_propose(struct fx_cluster *c, unsigned id, const char *s)
{
    int rc = raft_propose(&c->r[id], s, strlen(s), NULL, NULL);

    fx_ready(c, id);
    return rc;
}
