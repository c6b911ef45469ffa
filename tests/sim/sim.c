/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * sim.c: the simulator's engine: clock, network, disk, nodes, clients,
 * faults, and the two phases of a seeded run.
 *
 * Events sit in a binary heap ordered by (time, sequence); handlers draw
 * every choice from the seeded PRNG and walk nodes in id order, so a run
 * is a pure function of its seed. A node's ready batch is carried out as
 * the core's contract says: writes go to a FIFO disk with latency, held
 * messages leave when their write is durable, a crash drops whatever was
 * not synced (and may tear the write in progress).
 */
#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

enum sim_ev {
    EV_TICK,
    EV_DELIVER,
    EV_DISK,
    EV_CLIENT,
    EV_CLIENT_DEADLINE,
    EV_FAULT,
    EV_RESTART,
    EV_HEAL,
    EV_MARKER,
    EV_CRASH,
    EV_UNISOLATE,
};

struct sim_event {
    uint64_t t;
    uint64_t seq;
    enum sim_ev type;
    unsigned node;
    uint64_t inc;     /* incarnation (node) or op slot (client) */
    struct sim_msg *msg;
};

#define MARKER_KEY 0xffu

/* ---- randomness ------------------------------------------------------ */

uint64_t
sim_rand(struct sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
uint64_t
sim_rand_range(struct sim *s, uint64_t lo, uint64_t hi)
{
    ASSERT(hi >= lo);
    return lo + sim_rand(s) % (hi - lo + 1);
}

static bool
chance_pm(struct sim *s, unsigned per_mille)
{
    return sim_rand(s) % 1000 < per_mille;
}

/* ---- trace ----------------------------------------------------------- */

void
sim_trace(struct sim *s, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    int n;

    n = snprintf(line, sizeof(line), "%" PRIu64 ".%03" PRIu64 " ",
                 s->now / 1000, s->now % 1000);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    s->trace_hash = sim_hash(s->trace_hash, line, strlen(line));
    memcpy(s->ring[s->n_trace % SIM_TRACE_RING], line, sizeof(line));
    s->n_trace++;
    if (s->trace_out != NULL) {
        fprintf(s->trace_out, "%s\n", line);
    }
}

void
sim_dump_ring(struct sim *s, FILE *f)
{
    uint64_t from = s->n_trace > SIM_TRACE_RING ? s->n_trace - SIM_TRACE_RING
                                                : 0;

    fprintf(f, "last %" PRIu64 " trace lines:\n", s->n_trace - from);
    for (uint64_t k = from; k < s->n_trace; k++) {
        fprintf(f, "  %s\n", s->ring[k % SIM_TRACE_RING]);
    }
}

/* ---- event heap ------------------------------------------------------ */

static bool
ev_before(const struct sim_event *a, const struct sim_event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
ev_push(struct sim *s, uint64_t t, enum sim_ev type, unsigned node,
        uint64_t inc, struct sim_msg *msg)
{
    struct sim_event ev = {t, s->seq++, type, node, inc, msg};
    size_t k;

    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap != 0 ? 2 * s->cap_heap : 1024;
        s->heap = realloc(s->heap, s->cap_heap * sizeof(*s->heap));
        ASSERT(s->heap != NULL);
    }
    k = s->n_heap++;
    while (k > 0 && ev_before(&ev, &s->heap[(k - 1) / 2])) {
        s->heap[k] = s->heap[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    s->heap[k] = ev;
}

static struct sim_event
ev_pop(struct sim *s)
{
    struct sim_event top = s->heap[0], last = s->heap[--s->n_heap];
    size_t k = 0;

    for (;;) {
        size_t c = 2 * k + 1;

        if (c >= s->n_heap) {
            break;
        }
        if (c + 1 < s->n_heap && ev_before(&s->heap[c + 1], &s->heap[c])) {
            c++;
        }
        if (!ev_before(&s->heap[c], &last)) {
            break;
        }
        s->heap[k] = s->heap[c];
        k = c;
    }
    if (s->n_heap > 0) {
        s->heap[k] = last;
    }
    return top;
}

/* ---- messages -------------------------------------------------------- */

static struct raft_entry *
entries_copy(const struct raft_entry *src, unsigned n)
{
    struct raft_entry *dst;

    if (n == 0) {
        return NULL;
    }
    dst = calloc(n, sizeof(*dst));
    ASSERT(dst != NULL);
    for (unsigned k = 0; k < n; k++) {
        dst[k] = src[k];
        if (src[k].len > 0) {
            dst[k].data = malloc(src[k].len);
            ASSERT(dst[k].data != NULL);
            memcpy(dst[k].data, src[k].data, src[k].len);
        }
    }
    return dst;
}

static void
entries_free(struct raft_entry *e, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        free(e[k].data);
    }
    free(e);
}

static struct sim_msg *
msg_copy(const struct raft_msg *m, const uint64_t *snap_kv)
{
    struct sim_msg *sm = calloc(1, sizeof(*sm));

    ASSERT(sm != NULL);
    sm->m = *m;
    sm->ents = entries_copy(m->entries, m->n_entries);
    sm->m.entries = sm->ents;
    if (snap_kv != NULL) {
        memcpy(sm->snap_kv, snap_kv, sizeof(sm->snap_kv));
    }
    return sm;
}

static void
msg_free(struct sim_msg *sm)
{
    if (sm != NULL) {
        entries_free(sm->ents, sm->m.n_entries);
        free(sm);
    }
}

static void
trace_msg(struct sim *s, const char *what, const struct raft_msg *m)
{
    sim_trace(s, "n%" PRIu64 "->n%" PRIu64 " %s %s t=%" PRIu64
              " i=%" PRIu64 "/%" PRIu64 " n=%u c=%" PRIu64 "%s",
              m->from, m->to, what, raft_msg_name(m->type), m->term,
              m->index, m->log_term, m->n_entries, m->commit,
              m->reject ? " rej" : "");
}

/* Put m on the wire from its sender: partitions, clogs, loss, dup. */
static void
net_send(struct sim *s, const struct raft_msg *m)
{
    struct sim_node *from = &s->nodes[m->from];
    const uint64_t *kv = NULL;
    unsigned copies = 1;

    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
        sim_check_vote(s, m);
        /* BUGGIFY (FoundationDB): crash a voter right after it voted,
         * and bring it back at once, while the election still runs. */
        if (s->faults && chance_pm(s, s->mix.buggify_pm)) {
            ev_push(s, s->now + sim_rand_range(s, 0, 2000), EV_CRASH,
                    (unsigned)m->from, 0, NULL);
        }
    }
    if (m->to > s->n_nodes || !s->nodes[m->to].exists ||
        s->blocked[m->from][m->to]) {
        return;
    }
    if (m->type == RAFT_MSG_APPEND && m->n_entries > 0 &&
        from->dropping_entries_to[m->to]) {
        return; /* timing mode: keep some logs behind */
    }
    if (s->lossy && chance_pm(s, s->mix.drop_pm)) {
        trace_msg(s, "drop", m);
        return;
    }
    if (s->lossy && chance_pm(s, s->mix.dup_pm)) {
        copies = 2;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        /* The driver attaches its snapshot bytes; ours has that index. */
        ASSERT(from->d_snap.index == m->snapshot.index);
        kv = from->d_snap_kv;
    }
    if (s->lossy && chance_pm(s, s->mix.replay_pm)) {
        /* An old copy shows up much later (RAFT.md §2.6, replay). */
        ev_push(s, s->now + sim_rand_range(s, 10000, 400000), EV_DELIVER,
                (unsigned)m->to, 0, msg_copy(m, kv));
    }
    for (unsigned k = 0; k < copies; k++) {
        uint64_t t = s->now + sim_rand_range(s, s->mix.lat_min_us,
                                             s->mix.lat_max_us);

        if (s->clog_until[m->from][m->to] > s->now) {
            t += s->clog_until[m->from][m->to] - s->now;
        }
        ev_push(s, t, EV_DELIVER, (unsigned)m->to, 0, msg_copy(m, kv));
    }
}

/* ---- durable state --------------------------------------------------- */

static void
dlog_truncate(struct sim_node *n, raft_index from)
{
    while (n->d_n > 0 && n->d_base + n->d_n >= from) {
        free(n->d_log[n->d_n - 1].data);
        n->d_n--;
    }
}

static void
dlog_append(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
    if (e->index != n->d_base + n->d_n + 1) {
        sim_violation(s, "n%" PRIu64 " write of index %" PRIu64
                      " leaves a gap after %" PRIu64, n->id, e->index,
                      n->d_base + n->d_n);
        return;
    }
    if (n->d_n == n->d_cap) {
        n->d_cap = n->d_cap != 0 ? 2 * n->d_cap : 64;
        n->d_log = realloc(n->d_log, n->d_cap * sizeof(*n->d_log));
        ASSERT(n->d_log != NULL);
    }
    n->d_log[n->d_n] = *e;
    if (e->len > 0) {
        n->d_log[n->d_n].data = malloc(e->len);
        ASSERT(n->d_log[n->d_n].data != NULL);
        memcpy(n->d_log[n->d_n].data, e->data, e->len);
    }
    n->d_n++;
}

/* Drop durable entries up to index, which a snapshot now covers. */
static void
dlog_compact(struct sim_node *n, raft_index index)
{
    size_t drop;

    if (index <= n->d_base) {
        return;
    }
    drop = index - n->d_base;
    if (drop >= n->d_n) {
        dlog_truncate(n, 0);
        n->d_base = index;
        return;
    }
    for (size_t k = 0; k < drop; k++) {
        free(n->d_log[k].data);
    }
    memmove(n->d_log, n->d_log + drop, (n->d_n - drop) * sizeof(*n->d_log));
    n->d_n -= drop;
    n->d_base = index;
}

/* Make write w durable; torn keeps only its first n_keep records. */
static void
write_apply(struct sim *s, struct sim_node *n, const struct sim_write *w,
            unsigned n_keep)
{
    unsigned rec = 0;

    if (w->has_hs && rec++ < n_keep) {
        n->d_hs = w->hs;
    }
    if (w->has_snap && rec++ < n_keep) {
        /* Installing drops the whole durable log (paper §7, step 7). */
        dlog_truncate(n, 0);
        n->d_base = w->snap.index;
        n->d_snap = w->snap;
        memcpy(n->d_snap_kv, w->snap_kv, sizeof(n->d_snap_kv));
    }
    for (unsigned k = 0; k < w->n_ents && rec++ < n_keep; k++) {
        const struct raft_entry *e = &w->ents[k];

        if (e->index <= n->d_base) {
            continue;
        }
        dlog_truncate(n, e->index);
        dlog_append(s, n, e);
    }
}

static unsigned
write_records(const struct sim_write *w)
{
    return (w->has_hs ? 1 : 0) + (w->has_snap ? 1 : 0) + w->n_ents;
}

static void
write_free(struct sim_write *w)
{
    entries_free(w->ents, w->n_ents);
    w->ents = NULL;
}

/* ---- clients --------------------------------------------------------- */

static size_t
op_add(struct sim *s, enum sim_op_type type, unsigned key, uint64_t value)
{
    struct sim_op *op;

    if (s->n_ops == s->cap_ops) {
        s->cap_ops = s->cap_ops != 0 ? 2 * s->cap_ops : 256;
        s->ops = realloc(s->ops, s->cap_ops * sizeof(*s->ops));
        ASSERT(s->ops != NULL);
    }
    op = &s->ops[s->n_ops];
    op->type = type;
    op->key = key;
    op->value = value;
    op->invoke_us = s->now;
    op->done_us = SIM_NEVER;
    return s->n_ops++;
}

/* An operation that certainly had no effect leaves the history. */
static void
op_drop(struct sim *s, size_t slot)
{
    s->ops[slot].key = SIM_KEYS; /* the checker skips it */
}

static void
client_idle(struct sim *s, struct sim_client *c, const char *outcome)
{
    sim_trace(s, "c%u %s", c->id, outcome);
    c->busy = false;
    if (s->clients_on) {
        ev_push(s, s->now + sim_rand_range(s, 100, 3000), EV_CLIENT, c->id,
                0, NULL);
    }
}

static void
encode_op(uint8_t *buf, unsigned key, uint64_t value)
{
    buf[0] = (uint8_t)key;
    for (int k = 0; k < 8; k++) {
        buf[1 + k] = (uint8_t)(value >> (8 * k));
    }
}

static bool
decode_op(const struct raft_entry *e, unsigned *key, uint64_t *value)
{
    if (e->type != RAFT_ENTRY_NORMAL || e->len != 9) {
        return false;
    }
    *key = e->data[0];
    *value = 0;
    for (int k = 0; k < 8; k++) {
        *value |= (uint64_t)e->data[1 + k] << (8 * k);
    }
    return true;
}

int
sim_propose(struct sim *s, unsigned id, unsigned key, uint64_t value)
{
    uint8_t buf[9];
    int rc;

    encode_op(buf, key, value);
    rc = raft_propose(&s->nodes[id].r, buf, sizeof(buf), NULL, NULL);
    sim_drive(s, id);
    return rc;
}

static unsigned
pick_node(struct sim *s, bool leader)
{
    unsigned l = sim_leader(s);
    unsigned id;

    if (leader && l != 0) {
        return l;
    }
    id = (unsigned)sim_rand_range(s, 1, s->n_nodes);
    return s->nodes[id].up ? id : 0;
}

static void
client_start(struct sim *s, struct sim_client *c)
{
    bool write = sim_rand(s) % 100 < 60;
    unsigned key = (unsigned)(sim_rand(s) % SIM_KEYS);
    unsigned id = pick_node(s, write || sim_rand(s) % 3 != 0);
    struct sim_node *n = &s->nodes[id];
    int rc;

    if (id == 0 || n->paused_until > s->now || s->n_ops > 900) {
        ev_push(s, s->now + sim_rand_range(s, 500, 5000), EV_CLIENT, c->id,
                0, NULL);
        return;
    }
    c->node = id;
    c->incarnation = n->incarnation;
    c->key = key;
    c->invoke_us = s->now;
    c->read_ready = false;
    if (write) {
        uint8_t buf[9];

        c->value = ++s->next_value;
        encode_op(buf, key, c->value);
        rc = raft_propose(&n->r, buf, sizeof(buf), &c->index, &c->term);
    } else {
        c->ctx = ++s->next_ctx;
        rc = raft_read_index(&n->r, c->ctx);
    }
    if (rc != 0) {
        ev_push(s, s->now + sim_rand_range(s, 500, 5000), EV_CLIENT, c->id,
                0, NULL);
        return;
    }
    c->busy = true;
    c->type = write ? SIM_OP_WRITE : SIM_OP_READ;
    c->op = op_add(s, c->type, key, write ? c->value : 0);
    c->deadline_us = s->now + (write ? 1000000 : 300000);
    sim_trace(s, "c%u %s k=%u v=%" PRIu64 " at n%u i=%" PRIu64, c->id,
              write ? "write" : "read", key, write ? c->value : 0, id,
              write ? c->index : 0);
    ev_push(s, c->deadline_us, EV_CLIENT_DEADLINE, c->id, c->op, NULL);
    sim_drive(s, id);
}

static void
client_read_done(struct sim *s, struct sim_client *c)
{
    struct sim_node *n = &s->nodes[c->node];

    s->ops[c->op].value = n->kv[c->key];
    s->ops[c->op].done_us = s->now;
    client_idle(s, c, "read ok");
}

/* Node id applied entry e: complete the writes and reads it settles. */
static void
clients_on_apply(struct sim *s, unsigned id, const struct raft_entry *e)
{
    for (unsigned k = 0; k < s->mix.n_clients; k++) {
        struct sim_client *c = &s->clients[k];
        unsigned key;
        uint64_t value;

        if (!c->busy || c->node != id ||
            c->incarnation != s->nodes[id].incarnation) {
            continue;
        }
        if (c->type == SIM_OP_READ) {
            if (c->read_ready && s->nodes[id].sm_applied >= c->index) {
                client_read_done(s, c);
            }
            continue;
        }
        if (e->index != c->index) {
            continue;
        }
        if (e->term == c->term && decode_op(e, &key, &value) &&
            value == c->value) {
            s->ops[c->op].done_us = s->now;
            client_idle(s, c, "write ok");
        } else {
            /* Another entry holds the index for good: ours is gone. */
            op_drop(s, c->op);
            client_idle(s, c, "write lost");
        }
    }
}

static void
clients_on_read(struct sim *s, unsigned id, const struct raft_read_state *rs)
{
    for (unsigned k = 0; k < s->mix.n_clients; k++) {
        struct sim_client *c = &s->clients[k];

        if (!c->busy || c->type != SIM_OP_READ || c->ctx != rs->ctx ||
            c->node != id) {
            continue;
        }
        if (rs->failed) {
            op_drop(s, c->op);
            client_idle(s, c, "read refused");
            continue;
        }
        c->read_ready = true;
        c->index = rs->index;
        if (s->nodes[id].sm_applied >= c->index) {
            client_read_done(s, c);
        }
    }
}

/* A crash or a deadline: writes become unknown, reads vanish. */
static void
client_abandon(struct sim *s, struct sim_client *c, const char *why)
{
    if (c->type == SIM_OP_READ) {
        op_drop(s, c->op);
    }
    client_idle(s, c, why);
}

/* ---- nodes ----------------------------------------------------------- */

static void
apply_entry(struct sim *s, unsigned id, const struct raft_entry *e)
{
    struct sim_node *n = &s->nodes[id];
    unsigned key;
    uint64_t value;

    sim_check_apply(s, id, e);
    if (decode_op(e, &key, &value)) {
        if (key < SIM_KEYS) {
            n->kv[key] = value;
        } else if (key == MARKER_KEY && value == s->marker_value) {
            s->marker_applied = true;
        }
    }
    n->sm_applied = e->index;
    sim_check_state(s, id);
    clients_on_apply(s, id, e);
}

static void
hold_msg(struct sim_node *n, const struct raft_msg *m)
{
    if (n->n_held == n->cap_held) {
        n->cap_held = n->cap_held != 0 ? 2 * n->cap_held : 16;
        n->held = realloc(n->held, n->cap_held * sizeof(*n->held));
        ASSERT(n->held != NULL);
    }
    n->held[n->n_held].tag = m->persist_tag;
    n->held[n->n_held].msg = msg_copy(m, NULL);
    n->n_held++;
}

static void
queue_write(struct sim *s, struct sim_node *n, const struct raft_ready *rd)
{
    struct sim_write *w;
    uint64_t start = s->now;

    if (n->n_writes == n->cap_writes) {
        n->cap_writes = n->cap_writes != 0 ? 2 * n->cap_writes : 8;
        n->writes = realloc(n->writes, n->cap_writes * sizeof(*n->writes));
        ASSERT(n->writes != NULL);
    }
    /* Group commit (DESIGN.md, Persistence): a write issued while a sync
     * runs joins the next sync, with every other write issued before that
     * sync starts. */
    if (n->n_writes > 0) {
        const struct sim_write *prev = &n->writes[n->n_writes - 1];

        start = prev->start_us > s->now ? prev->start_us : prev->done_us;
        if (start < s->now) {
            start = s->now;
        }
    }
    w = &n->writes[n->n_writes++];
    memset(w, 0, sizeof(*w));
    w->tag = rd->tag;
    w->has_hs = rd->has_hard_state;
    w->hs = rd->hs;
    w->has_snap = rd->has_snapshot;
    w->snap = rd->snapshot;
    memcpy(w->snap_kv, n->kv, sizeof(w->snap_kv));
    w->ents = entries_copy(rd->entries, rd->n_entries);
    w->n_ents = rd->n_entries;
    w->start_us = start;
    if (n->n_writes > 1 && n->writes[n->n_writes - 2].start_us == start) {
        w->done_us = n->writes[n->n_writes - 2].done_us;
    } else {
        w->done_us = start + sim_rand_range(s, s->mix.disk_min_us,
                                            s->mix.disk_max_us);
    }
    ev_push(s, w->done_us, EV_DISK, (unsigned)n->id, n->incarnation, NULL);
}

static void
take_snapshot(struct sim *s, struct sim_node *n)
{
    struct raft_snapshot_meta meta;

    if (s->mix.snap_every == 0 ||
        n->sm_applied < n->d_snap.index + s->mix.snap_every) {
        return;
    }
    if (raft_snapshot_taken(&n->r, n->sm_applied, &meta) != 0) {
        return;
    }
    n->d_snap = meta;
    memcpy(n->d_snap_kv, n->kv, sizeof(n->d_snap_kv));
    dlog_compact(n, meta.index);
    sim_trace(s, "n%" PRIu64 " snapshot i=%" PRIu64 " t=%" PRIu64, n->id,
              meta.index, meta.term);
}

static void
trace_events(struct sim *s, struct sim_node *n, const struct raft_ready *rd)
{
    for (unsigned k = 0; k < rd->n_events; k++) {
        const struct raft_event *ev = &rd->events[k];

        sim_trace(s, "n%" PRIu64 " ev=%d role=%s term=%" PRIu64
                  " id=%" PRIu64 " idx=%" PRIu64, n->id, (int)ev->type,
                  raft_role_name(ev->role), ev->term, ev->id, ev->index);
    }
}

/* Carry out every ready batch the node has. */
/* BUGGIFY: cut a leader off just after its commit index moved, the
 * moment Figure 8 of the paper is about. */
static void
buggify_leader(struct sim *s, unsigned id, raft_index before, bool led)
{
    struct sim_node *n = &s->nodes[id];

    if (!s->faults || !n->up || raft_role(&n->r) != RAFT_LEADER) {
        return;
    }
    /* A new leader is cut off before its no-op spreads, or a leader just
     * after its commit index moved. */
    if ((led || raft_commit_index(&n->r) == before ||
         !chance_pm(s, s->mix.buggify_pm / 2)) &&
        (!led || !chance_pm(s, s->mix.buggify_pm / 2))) {
        return;
    }
    sim_isolate(s, id, true);
    sim_trace(s, "buggify isolate leader n%u", id);
    ev_push(s, s->now + sim_rand_range(s, 20000, 200000), EV_UNISOLATE, id,
            0, NULL);
}

void
sim_drive(struct sim *s, unsigned id)
{
    struct sim_node *n = &s->nodes[id];
    raft_index commit_before;
    struct raft_ready rd;
    bool led;

    if (!n->up) {
        return;
    }
    commit_before = raft_commit_index(&n->r);
    led = raft_role(&n->r) == RAFT_LEADER;
    while (raft_has_ready(&n->r) && !s->violated) {
        raft_ready(&n->r, &rd);
        trace_events(s, n, &rd);
        if (rd.has_snapshot) {
            ASSERT(n->recv_snap_index == rd.snapshot.index);
            memcpy(n->kv, n->recv_snap_kv, sizeof(n->kv));
            n->sm_applied = rd.snapshot.index;
            sim_check_state(s, id);
        }
        if (rd.tag != 0) {
            queue_write(s, n, &rd);
        }
        for (unsigned k = 0; k < rd.n_msgs; k++) {
            if (rd.msgs[k].persist_tag == 0) {
                net_send(s, &rd.msgs[k]);
            } else {
                hold_msg(n, &rd.msgs[k]);
            }
        }
        for (unsigned k = 0; k < rd.n_committed; k++) {
            apply_entry(s, id, &rd.committed[k]);
        }
        for (unsigned k = 0; k < rd.n_reads; k++) {
            clients_on_read(s, id, &rd.reads[k]);
        }
        raft_ready_done(&n->r);
        take_snapshot(s, n);
    }
    sim_check_node(s, id);
    buggify_leader(s, id, commit_before, led);
}

static struct raft_options
node_opts(struct sim *s, unsigned id)
{
    struct raft_options o = s->base_opt;

    o.id = id;
    o.seed = s->seed * 1000003ULL + id * 7919ULL +
             s->nodes[id].incarnation * 104729ULL;
    return o;
}

static void
node_start(struct sim *s, unsigned id)
{
    struct sim_node *n = &s->nodes[id];
    struct raft_options o = node_opts(s, id);
    int rc;

    rc = raft_init(&n->r, &o);
    ASSERT(rc == 0);
    rc = raft_restore(&n->r, &n->d_hs, &n->d_snap, n->d_log, n->d_n);
    if (rc != 0) {
        sim_violation(s, "n%u cannot restore its durable state: %s", id,
                      raft_err_str(rc));
        return;
    }
    n->up = true;
    memcpy(n->kv, n->d_snap_kv, sizeof(n->kv));
    n->sm_applied = n->d_snap.index;
    n->sh_leader_term = 0;
    ev_push(s, s->now + sim_rand_range(s, 1, n->tick_us), EV_TICK, id,
            n->incarnation, NULL);
    sim_check_node(s, id);
}

static void
node_new(struct sim *s, unsigned id)
{
    struct sim_node *n = &s->nodes[id];
    unsigned skew = s->mix.skew_pct;

    memset(n, 0, sizeof(*n));
    n->id = id;
    n->exists = true;
    n->sh_base_known = true;
    n->tick_us = s->mix.tick_us * (100 - skew +
                                   (unsigned)sim_rand_range(s, 0, 2 * skew)) /
                 100;
    if (s->n_nodes < id) {
        s->n_nodes = id;
    }
}

unsigned
sim_add_node(struct sim *s)
{
    unsigned id = s->n_nodes + 1;

    if (id > SIM_MAX_NODES) {
        return 0;
    }
    node_new(s, id);
    node_start(s, id);
    sim_trace(s, "n%u created", id);
    return id;
}

void
sim_crash(struct sim *s, unsigned id)
{
    struct sim_node *n = &s->nodes[id];

    if (!n->up) {
        return;
    }
    /* Whatever was not synced is lost; the write in progress may be
     * torn, keeping a prefix of its records. */
    if (n->n_writes > 0 && s->mix.torn && sim_rand(s) % 2 == 0) {
        unsigned recs = write_records(&n->writes[0]);
        unsigned keep = (unsigned)sim_rand_range(s, 0, recs);

        write_apply(s, n, &n->writes[0], keep);
        sim_trace(s, "n%u torn write keeps %u/%u", id, keep, recs);
    }
    for (size_t k = 0; k < n->n_writes; k++) {
        write_free(&n->writes[k]);
    }
    n->n_writes = 0;
    for (size_t k = 0; k < n->n_held; k++) {
        msg_free(n->held[k].msg);
    }
    n->n_held = 0;
    raft_fini(&n->r);
    n->up = false;
    n->incarnation++;
    n->paused_until = 0;
    n->sh_leader_term = 0;
    for (unsigned k = 0; k < s->mix.n_clients; k++) {
        struct sim_client *c = &s->clients[k];

        if (c->busy && c->node == id) {
            client_abandon(s, c, "node crashed");
        }
    }
    sim_trace(s, "n%u crash", id);
}

void
sim_restart(struct sim *s, unsigned id)
{
    if (s->nodes[id].exists && !s->nodes[id].up) {
        sim_trace(s, "n%u restart", id);
        node_start(s, id);
    }
}

void
sim_pause(struct sim *s, unsigned id, uint64_t until_us)
{
    s->nodes[id].paused_until = until_us;
    sim_trace(s, "n%u pause until %" PRIu64, id, until_us);
}

void
sim_block(struct sim *s, unsigned from, unsigned to, bool blocked)
{
    s->blocked[from][to] = blocked;
}

void
sim_isolate(struct sim *s, unsigned id, bool isolated)
{
    for (unsigned k = 1; k <= SIM_MAX_NODES; k++) {
        if (k != id) {
            s->blocked[id][k] = isolated;
            s->blocked[k][id] = isolated;
        }
    }
}

void
sim_heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
    memset(s->clog_until, 0, sizeof(s->clog_until));
}

/* The up leader of the highest term, or 0. */
unsigned
sim_leader(struct sim *s)
{
    unsigned best = 0;

    for (unsigned id = 1; id <= s->n_nodes; id++) {
        struct sim_node *n = &s->nodes[id];

        if (n->up && raft_role(&n->r) == RAFT_LEADER &&
            (best == 0 || raft_term_current(&n->r) >
                              raft_term_current(&s->nodes[best].r))) {
            best = id;
        }
    }
    return best;
}

/* ---- event handlers -------------------------------------------------- */

static void
on_tick(struct sim *s, const struct sim_event *ev)
{
    struct sim_node *n = &s->nodes[ev->node];

    if (!n->up || ev->inc != n->incarnation) {
        return;
    }
    if (n->paused_until <= s->now) {
        raft_tick(&n->r);
        sim_drive(s, ev->node);
    }
    ev_push(s, s->now + n->tick_us, EV_TICK, ev->node, n->incarnation, NULL);
}

static void
timing_hook(struct sim *s, const struct raft_msg *m)
{
    if (s->timing_after_term == 0 || m->term <= s->timing_after_term ||
        (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_HEARTBEAT) ||
        s->timing_heard_by[m->to]) {
        return;
    }
    s->timing_heard_by[m->to] = true;
    s->timing_heard++;
    if (s->timing_heard == s->timing_need && s->timing_done_us == 0) {
        s->timing_done_us = s->now;
    }
}

static void
on_deliver(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = &s->nodes[ev->node];
    struct sim_msg *sm = ev->msg;
    int rc;

    if (!n->up) {
        msg_free(sm);
        return;
    }
    if (n->paused_until > s->now) {
        ev_push(s, n->paused_until + 1, EV_DELIVER, ev->node, 0, sm);
        return;
    }
    trace_msg(s, "recv", &sm->m);
    timing_hook(s, &sm->m);
    if (sm->m.type == RAFT_MSG_SNAPSHOT) {
        memcpy(n->recv_snap_kv, sm->snap_kv, sizeof(n->recv_snap_kv));
        n->recv_snap_index = sm->m.snapshot.index;
    }
    rc = raft_step(&n->r, &sm->m);
    if (rc != 0 && rc != ERR_PROTO) {
        sim_violation(s, "n%u step failed: %s", ev->node, raft_err_str(rc));
    }
    msg_free(sm);
    sim_drive(s, ev->node);
}

static void
on_disk(struct sim *s, const struct sim_event *ev)
{
    struct sim_node *n = &s->nodes[ev->node];
    struct sim_write w;
    size_t kept = 0;
    int rc;

    if (!n->up || ev->inc != n->incarnation || n->n_writes == 0) {
        return;
    }
    w = n->writes[0];
    memmove(n->writes, n->writes + 1, (n->n_writes - 1) * sizeof(w));
    n->n_writes--;
    write_apply(s, n, &w, UINT32_MAX);
    rc = raft_persisted(&n->r, w.tag);
    if (rc != 0) {
        sim_violation(s, "n%u persisted tag %" PRIu64 " refused: %s",
                      ev->node, w.tag, raft_err_str(rc));
    }
    write_free(&w);
    /* Messages waiting for this write (or an earlier one) may go. */
    for (size_t k = 0; k < n->n_held; k++) {
        if (n->held[k].tag <= w.tag) {
            net_send(s, &n->held[k].msg->m);
            msg_free(n->held[k].msg);
        } else {
            n->held[kept++] = n->held[k];
        }
    }
    n->n_held = kept;
    sim_drive(s, ev->node);
}

static void
on_client_deadline(struct sim *s, const struct sim_event *ev)
{
    struct sim_client *c = &s->clients[ev->node];

    if (c->busy && c->op == ev->inc) {
        client_abandon(s, c, "timeout");
    }
}

static unsigned
random_member(struct sim *s, unsigned leader, bool voters_only)
{
    const struct raft_config *cfg = raft_config(&s->nodes[leader].r);
    unsigned picks[RAFT_MAX_MEMBERS], n = 0;

    for (unsigned k = 0; k < cfg->n_members; k++) {
        if (cfg->members[k].id != leader &&
            (!voters_only || cfg->members[k].voter)) {
            picks[n++] = (unsigned)cfg->members[k].id;
        }
    }
    return n == 0 ? 0 : picks[sim_rand(s) % n];
}

static void
fault_member(struct sim *s)
{
    unsigned l = sim_leader(s), id = 0;
    const char *what;
    int rc;

    if (l == 0) {
        return;
    }
    switch (sim_rand(s) % 4) {
    case 0:
        id = sim_add_node(s);
        if (id == 0) {
            return;
        }
        what = "add";
        rc = raft_add_voter(&s->nodes[l].r, id);
        break;
    case 1:
        id = random_member(s, l, false);
        what = "remove";
        rc = raft_remove(&s->nodes[l].r, id);
        break;
    case 2:
        id = random_member(s, l, true);
        what = "demote";
        rc = raft_demote(&s->nodes[l].r, id);
        break;
    default:
        id = random_member(s, l, false);
        what = "promote";
        rc = raft_add_voter(&s->nodes[l].r, id);
        break;
    }
    sim_trace(s, "fault member %s n%u via n%u: %s", what, id, l,
              raft_err_str(rc));
    sim_drive(s, l);
}

static void
fault_partition(struct sim *s)
{
    unsigned side[SIM_MAX_NODES + 1];

    sim_heal(s);
    if (sim_rand(s) % 4 == 0) {
        sim_trace(s, "fault heal");
        return;
    }
    for (unsigned id = 1; id <= s->n_nodes; id++) {
        side[id] = (unsigned)(sim_rand(s) % 2);
    }
    for (unsigned a = 1; a <= s->n_nodes; a++) {
        for (unsigned b = 1; b <= s->n_nodes; b++) {
            s->blocked[a][b] = side[a] != side[b];
        }
    }
    sim_trace(s, "fault partition");
}

static void
on_fault(struct sim *s)
{
    unsigned roll = (unsigned)(sim_rand(s) % 100);
    const struct sim_mix *x = &s->mix;
    unsigned id = (unsigned)sim_rand_range(s, 1, s->n_nodes);

    if (!s->faults) {
        return;
    }
    ev_push(s, s->now + sim_rand_range(s, 1, 2 * x->fault_every_ms) * 1000,
            EV_FAULT, 0, 0, NULL);
    if (roll < x->partition_pct) {
        fault_partition(s);
    } else if ((roll -= x->partition_pct) < x->asym_pct) {
        /* One node can send but not receive (the TigerBeetle livelock). */
        for (unsigned k = 1; k <= SIM_MAX_NODES; k++) {
            s->blocked[k][id] = k != id;
        }
        sim_trace(s, "fault deaf n%u", id);
    } else if ((roll -= x->asym_pct) < x->clog_pct) {
        unsigned to = (unsigned)sim_rand_range(s, 1, s->n_nodes);

        s->clog_until[id][to] = s->now + sim_rand_range(s, 10, 300) * 1000;
        sim_trace(s, "fault clog n%u->n%u", id, to);
    } else if ((roll -= x->clog_pct) < x->crash_pct) {
        if (s->nodes[id].up) {
            /* Half the restarts are immediate, as under a supervisor. */
            uint64_t ms = sim_rand(s) % 2 == 0 ? sim_rand_range(s, 1, 10)
                                               : sim_rand_range(s, 10, 500);

            sim_crash(s, id);
            ev_push(s, s->now + ms * 1000, EV_RESTART, id, 0, NULL);
        }
    } else if ((roll -= x->crash_pct) < x->pause_pct) {
        sim_pause(s, id, s->now + sim_rand_range(s, 10, 300) * 1000);
    } else if ((roll -= x->pause_pct) < x->member_pct) {
        fault_member(s);
    } else if ((roll -= x->member_pct) < x->transfer_pct) {
        unsigned l = sim_leader(s);

        if (l != 0) {
            int rc = raft_transfer(&s->nodes[l].r, sim_rand(s) % 2 == 0
                                                        ? 0
                                                        : id);

            sim_trace(s, "fault transfer from n%u: %s", l, raft_err_str(rc));
            sim_drive(s, l);
        }
    }
}

static void
on_marker(struct sim *s)
{
    unsigned l;

    if (s->marker_applied) {
        return;
    }
    l = sim_leader(s);
    if (l != 0 && s->nodes[l].paused_until <= s->now) {
        (void)sim_propose(s, l, MARKER_KEY, s->marker_value);
    }
    ev_push(s, s->now + 20000, EV_MARKER, 0, 0, NULL);
}

static void
dispatch(struct sim *s, struct sim_event *ev)
{
    s->stat_events++;
    switch (ev->type) {
    case EV_TICK:
        on_tick(s, ev);
        break;
    case EV_DELIVER:
        on_deliver(s, ev);
        break;
    case EV_DISK:
        on_disk(s, ev);
        break;
    case EV_CLIENT:
        if (s->clients_on && !s->clients[ev->node].busy) {
            client_start(s, &s->clients[ev->node]);
        }
        break;
    case EV_CLIENT_DEADLINE:
        on_client_deadline(s, ev);
        break;
    case EV_FAULT:
        on_fault(s);
        break;
    case EV_RESTART:
        if (s->faults) {
            sim_restart(s, ev->node);
        }
        break;
    case EV_HEAL:
        sim_heal(s);
        break;
    case EV_MARKER:
        on_marker(s);
        break;
    case EV_CRASH:
        if (s->faults && s->nodes[ev->node].up) {
            sim_crash(s, ev->node);
            ev_push(s, s->now + sim_rand_range(s, 100, 10000), EV_RESTART,
                    ev->node, 0, NULL);
        }
        break;
    case EV_UNISOLATE:
        if (s->faults) {
            sim_isolate(s, ev->node, false);
        }
        break;
    }
}

void
sim_run_until(struct sim *s, uint64_t t_us)
{
    (void)sim_run_until_cond(s, t_us, NULL, NULL);
}

bool
sim_run_until_cond(struct sim *s, uint64_t t_us,
                   bool (*cond)(struct sim *s, void *arg), void *arg)
{
    while (s->n_heap > 0 && s->heap[0].t <= t_us && !s->violated) {
        struct sim_event ev = ev_pop(s);

        s->now = ev.t;
        dispatch(s, &ev);
        if (cond != NULL && cond(s, arg)) {
            return true;
        }
    }
    if (!s->violated && s->now < t_us) {
        s->now = t_us;
    }
    return false;
}

/* ---- set-up ---------------------------------------------------------- */

/* Draw the fault mix of a seed (swarm testing, after TigerBeetle's VOPR:
 * each seed exercises a different corner). */
void
sim_draw_mix(struct sim *s, struct sim_mix *x)
{
    static const unsigned voters[] = {1, 3, 3, 3, 5, 5, 5, 7};

    memset(x, 0, sizeof(*x));
    x->n_voters = voters[sim_rand(s) % ARRAY_LEN(voters)];
    x->n_clients = (unsigned)sim_rand_range(s, 1, SIM_MAX_CLIENTS);
    x->pre_vote = sim_rand(s) % 4 != 0;
    x->check_quorum = sim_rand(s) % 4 != 0;
    x->tick_us = 1000;
    x->election_ticks = (unsigned)sim_rand_range(s, 10, 30);
    x->heartbeat_ticks = (unsigned)sim_rand_range(s, 1, 3);
    x->skew_pct = (unsigned)sim_rand_range(s, 0, 10);
    x->lat_min_us = sim_rand_range(s, 100, 1000);
    x->lat_max_us = x->lat_min_us + sim_rand_range(s, 0, 4000);
    x->drop_pm = (unsigned)sim_rand_range(s, 0, 100);
    x->dup_pm = (unsigned)sim_rand_range(s, 0, 50);
    x->replay_pm = (unsigned)sim_rand_range(s, 0, 100);
    x->max_msg_entries = 1u << (sim_rand(s) % 5);
    x->buggify_pm = sim_rand(s) % 3 == 0 ? 0
                                         : (unsigned)sim_rand_range(s, 1, 300);
    x->disk_min_us = sim_rand_range(s, 50, 1000);
    x->disk_max_us = x->disk_min_us + sim_rand_range(s, 0, 3000);
    x->fault_every_ms = (unsigned)sim_rand_range(s, 20, 200);
    x->partition_pct = (unsigned)sim_rand_range(s, 0, 25);
    x->asym_pct = (unsigned)sim_rand_range(s, 0, 10);
    x->clog_pct = (unsigned)sim_rand_range(s, 0, 15);
    x->crash_pct = (unsigned)sim_rand_range(s, 0, 25);
    x->pause_pct = (unsigned)sim_rand_range(s, 0, 10);
    x->member_pct = (unsigned)sim_rand_range(s, 0, 10);
    x->transfer_pct = (unsigned)sim_rand_range(s, 0, 5);
    x->torn = sim_rand(s) % 2 == 0;
    x->snap_every = sim_rand(s) % 3 == 0 ? 0
                                         : (unsigned)sim_rand_range(s, 5, 60);
    x->snap_tail = (unsigned)sim_rand_range(s, 0, 10);
    x->safety_ms = sim_rand_range(s, 1000, 2500);
    x->max_inflight = (unsigned)sim_rand_range(s, 1, 8);
    x->max_uncommitted = sim_rand(s) % 2 == 0 ? 0 : 256;
}

static void
bootstrap_node(struct sim *s, unsigned id, const uint8_t *cfg, uint32_t len)
{
    struct sim_node *n = &s->nodes[id];
    struct raft_entry e = {1, 1, RAFT_ENTRY_CONFIG, len, (uint8_t *)cfg};

    node_new(s, id);
    n->d_hs.term = 1;
    dlog_append(s, n, &e);
    node_start(s, id);
}

int
sim_init(struct sim *s, uint64_t seed, const struct sim_mix *mix)
{
    struct raft_config cfg = {0};
    uint8_t *buf;
    uint32_t len;

    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->rng = seed;
    if (mix != NULL) {
        s->mix = *mix;
    } else {
        sim_draw_mix(s, &s->mix);
    }
    s->base_opt.election_ticks = s->mix.election_ticks;
    s->base_opt.election_ticks_max = s->mix.election_ticks_max != 0
                                         ? s->mix.election_ticks_max
                                         : 2 * s->mix.election_ticks;
    s->base_opt.heartbeat_ticks = s->mix.heartbeat_ticks;
    s->base_opt.pre_vote = s->mix.pre_vote;
    s->base_opt.check_quorum = s->mix.check_quorum;
    s->base_opt.max_msg_entries = s->mix.max_msg_entries != 0
                                      ? s->mix.max_msg_entries
                                      : 16;
    s->base_opt.max_msg_bytes = 256;
    s->base_opt.max_inflight_msgs = s->mix.max_inflight != 0
                                        ? s->mix.max_inflight
                                        : 4;
    s->base_opt.max_inflight_bytes = 1024;
    s->base_opt.max_uncommitted_bytes = s->mix.max_uncommitted;
    s->base_opt.snapshot_tail = s->mix.snap_tail;
    s->base_opt.max_catchup_rounds = 10;
    s->trace_hash = 14695981039346656037ULL;
    s->marker_value = 0xfeed;
    for (unsigned k = 0; k < SIM_MAX_CLIENTS; k++) {
        s->clients[k].id = k;
    }
    cfg.n_members = s->mix.n_voters;
    for (unsigned k = 0; k < s->mix.n_voters; k++) {
        cfg.members[k].id = k + 1;
        cfg.members[k].voter = true;
    }
    buf = raft_config_encode(&cfg, &len);
    ASSERT(buf != NULL);
    for (unsigned id = 1; id <= s->mix.n_voters; id++) {
        bootstrap_node(s, id, buf, len);
    }
    free(buf);
    return 0;
}

static void
node_free(struct sim_node *n)
{
    for (size_t k = 0; k < n->n_writes; k++) {
        write_free(&n->writes[k]);
    }
    for (size_t k = 0; k < n->n_held; k++) {
        msg_free(n->held[k].msg);
    }
    free(n->writes);
    free(n->held);
    dlog_truncate(n, 0);
    free(n->d_log);
    free(n->sh_term);
    free(n->sh_hash);
    free(n->sh_chain);
    if (n->up) {
        raft_fini(&n->r);
    }
}

void
sim_fini(struct sim *s)
{
    for (unsigned id = 1; id <= s->n_nodes; id++) {
        node_free(&s->nodes[id]);
    }
    for (size_t k = 0; k < s->n_heap; k++) {
        msg_free(s->heap[k].msg);
    }
    free(s->heap);
    free(s->ops);
    sim_check_fini(s);
}

static void
print_mix(const struct sim_mix *x, FILE *f)
{
    fprintf(f, "mix: voters=%u clients=%u prevote=%d checkquorum=%d "
            "election=%u-%u heartbeat=%u skew=%u%%\n", x->n_voters,
            x->n_clients, x->pre_vote, x->check_quorum, x->election_ticks,
            2 * x->election_ticks, x->heartbeat_ticks, x->skew_pct);
    fprintf(f, "     lat=%" PRIu64 "-%" PRIu64 "us drop=%u%% dup=%u%% "
            "replay=%u%% batch=%u disk=%" PRIu64 "-%" PRIu64 "us "
            "buggify=%u%%\n", x->lat_min_us, x->lat_max_us,
            x->drop_pm / 10, x->dup_pm / 10, x->replay_pm / 10,
            x->max_msg_entries, x->disk_min_us, x->disk_max_us,
            x->buggify_pm / 10);
    fprintf(f, "     faults every %ums: partition=%u deaf=%u clog=%u "
            "crash=%u pause=%u member=%u transfer=%u (percent)\n",
            x->fault_every_ms, x->partition_pct, x->asym_pct, x->clog_pct,
            x->crash_pct, x->pause_pct, x->member_pct, x->transfer_pct);
    fprintf(f, "     torn=%d snap_every=%u tail=%u safety=%" PRIu64 "ms "
            "inflight=%u uncommitted_cap=%zu\n", x->torn, x->snap_every,
            x->snap_tail, x->safety_ms, x->max_inflight,
            x->max_uncommitted);
}

static void
dump_nodes(struct sim *s, FILE *f)
{
    for (unsigned id = 1; id <= s->n_nodes; id++) {
        struct sim_node *n = &s->nodes[id];

        if (!n->up) {
            fprintf(f, "  n%u down\n", id);
            continue;
        }
        fprintf(f, "  n%u %s term=%" PRIu64 " vote=%" PRIu64 " leader=%"
                PRIu64 " commit=%" PRIu64 " last=%" PRIu64 " stable=%"
                PRIu64 " elapsed=%u voters=%u\n", id,
                raft_role_name(raft_role(&n->r)), n->r.term, n->r.vote,
                n->r.leader, n->r.commit, raft_last_index(&n->r),
                n->r.stable, n->r.election_elapsed,
                raft_config_voters(&n->r.config));
    }
}

static bool
marker_cond(struct sim *s, void *arg)
{
    (void)arg;
    return s->marker_applied;
}

/* Liveness phase: heal everything, bring every node back, and require a
 * leader that commits a fresh entry within a bound of election timeouts
 * (TigerBeetle's two-phase VOPR; RAFT.md §2.6). */
static void
liveness_phase(struct sim *s)
{
    uint64_t bound = 60ULL * 2 * s->mix.election_ticks * s->mix.tick_us;
    uint64_t start = s->now;

    s->faults = false;
    s->lossy = false;
    sim_heal(s);
    for (unsigned id = 1; id <= s->n_nodes; id++) {
        s->nodes[id].paused_until = 0;
        sim_restart(s, id);
    }
    sim_trace(s, "liveness phase");
    ev_push(s, s->now, EV_MARKER, 0, 0, NULL);
    if (!sim_run_until_cond(s, start + bound, marker_cond, NULL) &&
        !s->violated) {
        sim_violation(s, "liveness: no commit within %" PRIu64
                      " ms of healing", bound / 1000);
        return;
    }
    /* Let in-flight client operations finish, then stop them. */
    sim_run_until(s, s->now + 200000);
    s->clients_on = false;
}

/* Run one seed: returns 0 when every check held, 1 on a violation. */
int
sim_run_seed(uint64_t seed, bool verbose, FILE *trace, uint64_t *hash)
{
    struct sim *s = calloc(1, sizeof(*s));
    char why[256];
    int rc = 0, lin;

    ASSERT(s != NULL);
    sim_init(s, seed, NULL);
    s->trace_out = trace;
    s->faults = true;
    s->lossy = true;
    s->clients_on = true;
    for (unsigned k = 0; k < s->mix.n_clients; k++) {
        ev_push(s, sim_rand_range(s, 0, 10000), EV_CLIENT, k, 0, NULL);
    }
    ev_push(s, 100000, EV_FAULT, 0, 0, NULL);
    sim_run_until(s, s->mix.safety_ms * 1000);
    if (!s->violated) {
        liveness_phase(s);
    }
    if (!s->violated) {
        lin = sim_lin_check(s->ops, s->n_ops, why, sizeof(why));
        if (lin == 1) {
            sim_violation(s, "linearizability: %s", why);
        } else if (lin == 2 && verbose) {
            fprintf(stderr, "seed %" PRIu64 ": lin search budget hit\n",
                    seed);
        }
    }
    if (s->violated) {
        fprintf(stderr, "VIOLATION seed=%" PRIu64 ": %s\n", seed,
                s->violation);
        print_mix(&s->mix, stderr);
        sim_dump_ring(s, stderr);
        dump_nodes(s, stderr);
        rc = 1;
    } else if (verbose) {
        fprintf(stderr, "seed %" PRIu64 " ok: %" PRIu64 " events, %zu ops, "
                "trace %016" PRIx64 "\n", seed, s->stat_events, s->n_ops,
                s->trace_hash);
        print_mix(&s->mix, stderr);
    }
    if (hash != NULL) {
        *hash = s->trace_hash;
    }
    sim_fini(s);
    free(s);
    return rc;
}

int
sim_client_read(struct sim *s, unsigned client, unsigned node, unsigned key)
{
    struct sim_client *c = &s->clients[client];
    int rc;

    c->node = node;
    c->incarnation = s->nodes[node].incarnation;
    c->key = key;
    c->ctx = ++s->next_ctx;
    c->read_ready = false;
    c->type = SIM_OP_READ;
    rc = raft_read_index(&s->nodes[node].r, c->ctx);
    if (rc == 0) {
        c->busy = true;
        c->op = op_add(s, SIM_OP_READ, key, 0);
    }
    sim_drive(s, node);
    return rc;
}
