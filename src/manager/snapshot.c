/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * snapshot.c: a member behind the leader's compacted log gets the
 * leader's LMDB state (paper §7, InstallSnapshot; DESIGN.md "Raft").
 *
 * When the core asks to send a snapshot to a member, the leader streams
 * the state from an LMDB read transaction (src/storage snap_send_*: the
 * leader keeps writing meanwhile), one checksummed chunk per frame, each
 * with the InstallSnapshot message it belongs to; the member stages every
 * chunk durably (snap_recv_*) and answers with the next chunk it needs,
 * so an interrupted transfer resumes where it stopped, even across a
 * restart of either side. The snapshot is named by the (index, term) of
 * the state LMDB holds when the stream starts, which is at or after the
 * core's own snapshot; the message carries that index and the membership
 * as of it, so the member's core, its log and its state agree. Once the
 * last chunk is staged, the member steps the message into its core; if
 * the core installs it (the ready's has_snapshot), commit.c swaps the
 * staged state in atomically and the log is reset after it
 * (cluster.c). One chunk is in flight per member: the leader sends the
 * next when the member has acknowledged the last.
 */
#include "manager/manager_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define SNAP_ACK_WAIT_MS 10000 /* a stream whose member went quiet ends;
                                * the core asks again (raft__pr_tick) */

/* The leader's stream to one member. */
struct snap_out {
    uint64_t raft_id;
    struct snap_send *s;
    struct snap_id id;
    uint8_t *config;      /* encoded membership as of id.index */
    uint32_t config_len;
    bool waiting;         /* a chunk is out, its answer not in */
    bool resend;          /* the last chunk was not queued: again */
    uint64_t since_ms;    /* when the wait began */
    TAILQ_ENTRY(snap_out) entry;
};

/* The member's transfer in progress. */
struct snap_in {
    struct snap_recv *r;
    struct snap_id id;
    struct raft_msg msg;  /* the InstallSnapshot it completes */
    bool stepped;         /* handed to the core */
};

/* Leader side. */

static struct snap_out *
snap_out_find(struct manager *m, uint64_t id)
{
    struct snap_out *so;

    TAILQ_FOREACH(so, &m->snap_outs, entry) {
        if (so->raft_id == id) {
            return so;
        }
    }
    return NULL;
}

static void
snap_out_end(struct manager *m, struct snap_out *so)
{
    TAILQ_REMOVE(&m->snap_outs, so, entry);
    snap_send_end(so->s);
    free(so->config);
    free(so);
}

/* Send the next chunk to so's member when none is in flight. */
static void
snap_out_pump(struct manager *m, struct snap_out *so)
{
    struct peer_conn *c = links_conn_to(m, so->raft_id);
    struct shoal_snap_chunk body = {0};
    const void *chunk;
    size_t len;
    int more;
    int rc;

    if (!c) {
        snap_out_end(m, so); /* the core asks again once it can */
        return;
    }
    if (so->waiting) {
        return;
    }
    if (so->resend) {
        snap_send_seek(so->s, snap_send_seq(so->s) - 1);
        so->resend = false;
    }
    more = snap_send_next(so->s, &chunk, &len);
    if (more == ERR_AGAIN) {
        return; /* skipping toward a resume point: next tick */
    }
    if (more < 0) {
        log_warn("snapshot", "cannot build a snapshot chunk: to=%016" PRIx64
                 ": %s", so->raft_id, err_str(more));
        snap_out_end(m, so);
        return;
    }
    body.msg = (struct shoal_raft_message){
        .type = RAFT_MSG_SNAPSHOT,
        .from = m->raft_id,
        .to = so->raft_id,
        .term = raft_term_current(&m->raft),
        .snap_index = so->id.index,
        .snap_term = so->id.term,
        .snap_config = {.data = so->config, .len = so->config_len},
    };
    body.chunk = (struct shoal_bytes){.data = (uint8_t *)chunk, .len = len};
    rc = peer_send(c, WIRE_MSG_SNAP_CHUNK, 0, 0, &wire_type_snap_chunk,
                   &body);
    if (rc == ERR_AGAIN) {
        so->resend = true; /* the queue is full: this chunk again later */
        return;
    }
    if (rc != 0) {
        log_warn("snapshot", "cannot send a snapshot chunk: to=%016" PRIx64
                 ": %s", so->raft_id, err_str(rc));
        snap_out_end(m, so);
        return;
    }
    so->waiting = true;
    so->since_ms = time_mono_ms();
}

void
snapshot_send(struct manager *m, const struct raft_msg *msg)
{
    struct raft_config cfg;
    struct snap_out *so;
    int rc;

    if (snap_out_find(m, msg->to) || !m->db) {
        return; /* already streaming: the core's retry joins it */
    }
    so = calloc(1, sizeof *so);
    if (!so) {
        return;
    }
    rc = snap_send_begin(&so->s, m->db, 0);
    if (rc == 0) {
        so->id = snap_send_id(so->s);
        rc = raft_config_at(&m->raft, so->id.index, &cfg);
    }
    if (rc == 0) {
        so->config = raft_config_encode(&cfg, &so->config_len);
        rc = so->config ? 0 : ERR_NOMEM;
    }
    if (rc != 0) {
        log_warn("snapshot", "cannot start a snapshot for a member: "
                 "to=%016" PRIx64 ": %s", msg->to, raft_err_str(rc));
        snap_send_end(so->s);
        free(so);
        return;
    }
    so->raft_id = msg->to;
    TAILQ_INSERT_TAIL(&m->snap_outs, so, entry);
    log_notice("snapshot", "sending the state to a member behind the log: "
               "to=%016" PRIx64 " index=%" PRIu64 " term=%" PRIu64,
               so->raft_id, so->id.index, so->id.term);
    snap_out_pump(m, so);
}

/* The member's answer: the next chunk it needs, or that it has them all. */
static void
snapshot_ack(struct manager *m, struct peer_conn *c, const uint8_t *body,
             size_t len)
{
    struct shoal_snap_ack ack = {0};
    struct snap_out *so;

    if (wire_decode(&wire_type_snap_ack, &ack, body, len) != 0 ||
        !links_sender_ok(m, c, ack.from)) {
        peer_conn_close(c, "malformed snapshot answer");
        return;
    }
    so = snap_out_find(m, ack.from);
    if (!so || so->id.index != ack.index || so->id.term != ack.term) {
        return; /* a stream that ended meanwhile */
    }
    if (ack.done) {
        log_notice("snapshot", "a member has the whole state: to=%016"
                   PRIx64 " index=%" PRIu64, so->raft_id, so->id.index);
        snap_out_end(m, so);
        return;
    }
    so->waiting = false;
    so->resend = false;
    if (ack.next_seq != snap_send_seq(so->s)) {
        snap_send_seek(so->s, ack.next_seq); /* resume where it stands */
    }
    snap_out_pump(m, so);
}

/* Member side. */

static void
snap_in_drop(struct manager *m, bool keep)
{
    struct snap_in *si = m->snap_in;

    if (!si) {
        return;
    }
    if (keep) {
        snap_recv_close(si->r); /* resumable later */
    } else {
        (void)snap_recv_abort(si->r);
    }
    free(si);
    m->snap_in = NULL;
}

static void
snapshot_answer(struct peer_conn *c, uint64_t from, const struct snap_id *id,
                uint64_t next_seq, bool done)
{
    struct shoal_snap_ack ack = {
        .from = from,
        .index = id->index,
        .term = id->term,
        .next_seq = next_seq,
        .done = done,
    };

    (void)peer_send(c, WIRE_MSG_SNAP_ACK, 0, 0, &wire_type_snap_ack, &ack);
}

static void
snapshot_chunk(struct manager *m, struct peer_conn *c, const uint8_t *body,
               size_t len)
{
    struct shoal_snap_chunk w = {0};
    struct raft_config cfg;
    struct snap_id id;
    uint64_t next;
    int rc;

    if (wire_decode(&wire_type_snap_chunk, &w, body, len) != 0 ||
        w.msg.type != RAFT_MSG_SNAPSHOT || w.msg.to != m->raft_id ||
        w.msg.from == 0 || w.msg.from == m->raft_id ||
        !links_sender_ok(m, c, w.msg.from) ||
        w.msg.snap_index == 0 || w.msg.snap_config.len > UINT32_MAX ||
        raft_config_decode(w.msg.snap_config.data,
                           (uint32_t)w.msg.snap_config.len, &cfg) != 0) {
        wire_free(&wire_type_snap_chunk, &w);
        peer_conn_close(c, "malformed snapshot chunk");
        return;
    }
    id = (struct snap_id){.index = w.msg.snap_index, .term = w.msg.snap_term};
    if (cluster_is_leader(m) || id.index <= store_applied(m->store)) {
        /* Not for us now; a stale leader's stream is told it is done. */
        snapshot_answer(c, m->raft_id, &id, 0, true);
        wire_free(&wire_type_snap_chunk, &w);
        return;
    }
    if (m->snap_in && (m->snap_in->id.index != id.index ||
                       m->snap_in->id.term != id.term)) {
        snap_in_drop(m, false); /* the leader moved to another one */
    }
    if (!m->snap_in) {
        struct snap_in *si = calloc(1, sizeof *si);

        rc = si ? snap_recv_open(&si->r, m->cfg.state_dir, &id,
                                 COMMIT_MAP_BYTES, &next)
                : ERR_NOMEM;
        if (rc != 0) {
            log_err("snapshot", "cannot stage a snapshot: index=%" PRIu64
                    ": %s", id.index, err_str(rc));
            free(si);
            wire_free(&wire_type_snap_chunk, &w);
            return;
        }
        si->id = id;
        m->snap_in = si;
        log_notice("snapshot", "receiving the leader's state: index=%" PRIu64
                   " term=%" PRIu64 " from_chunk=%" PRIu64, id.index,
                   id.term, next);
    }
    rc = snap_recv_chunk(m->snap_in->r, w.chunk.data, w.chunk.len);
    if (rc == ERR_CORRUPT || rc == ERR_PROTO) {
        wire_free(&wire_type_snap_chunk, &w);
        peer_conn_close(c, "bad snapshot chunk");
        return;
    }
    if (rc != 0 && rc != ERR_EXISTS && rc != ERR_AGAIN) {
        log_err("snapshot", "cannot store a snapshot chunk: %s",
                err_str(rc));
        snap_in_drop(m, false);
        wire_free(&wire_type_snap_chunk, &w);
        return;
    }
    if (!snap_recv_complete(m->snap_in->r)) {
        snapshot_answer(c, m->raft_id, &id,
                        snap_recv_next_seq(m->snap_in->r), false);
        wire_free(&wire_type_snap_chunk, &w);
        return;
    }
    /* All of it is staged: now the core decides (paper §7, Figure 13). */
    m->snap_in->msg = (struct raft_msg){
        .type = RAFT_MSG_SNAPSHOT,
        .from = w.msg.from,
        .to = w.msg.to,
        .term = w.msg.term,
        .snapshot = {.index = id.index, .term = id.term, .config = cfg},
    };
    m->snap_in->stepped = true;
    wire_free(&wire_type_snap_chunk, &w);
    rc = raft_step(&m->raft, &m->snap_in->msg);
    if (rc != 0) {
        log_warn("snapshot", "the core refused the snapshot: %s",
                 raft_err_str(rc));
    }
    snapshot_answer(c, m->raft_id, &id, 0, true);
    loop_defer(&m->loop, &m->sync_defer);
}

void
snapshot_frame(struct manager *m, struct peer_conn *c,
               const struct wire_hdr *h, const uint8_t *body, size_t len)
{
    if (h->type == WIRE_MSG_SNAP_CHUNK) {
        snapshot_chunk(m, c, body, len);
    } else {
        snapshot_ack(m, c, body, len);
    }
}

struct snap_recv *
snapshot_take(struct manager *m, const struct raft_snapshot_meta *meta)
{
    struct snap_in *si = m->snap_in;
    struct snap_recv *r;

    if (!si || !si->stepped || si->id.index != meta->index ||
        si->id.term != meta->term || !snap_recv_complete(si->r)) {
        return NULL;
    }
    r = si->r;
    free(si);
    m->snap_in = NULL;
    return r;
}

void
snapshot_settle(struct manager *m)
{
    /* Stepped, but the core did not install it (it held the entries
     * already, paper Figure 13 step 6): the staging is not needed. */
    if (m->snap_in && m->snap_in->stepped) {
        snap_in_drop(m, false);
    }
}

void
snapshot_tick(struct manager *m)
{
    uint64_t now = time_mono_ms();
    struct snap_out *so;
    struct snap_out *next;

    for (so = TAILQ_FIRST(&m->snap_outs); so; so = next) {
        next = TAILQ_NEXT(so, entry);
        if (!cluster_is_leader(m) ||
            (so->waiting && now - so->since_ms > SNAP_ACK_WAIT_MS)) {
            snap_out_end(m, so);
        } else if (!so->waiting) {
            snap_out_pump(m, so);
        }
    }
}

void
snapshot_fini(struct manager *m)
{
    struct snap_out *so;

    while ((so = TAILQ_FIRST(&m->snap_outs))) {
        snap_out_end(m, so);
    }
    snap_in_drop(m, true);
}
