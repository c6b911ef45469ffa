/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * forward.c: writes received by a follower go to the leader (DESIGN.md,
 * "Managers, certificates and forwarding").
 *
 * Kept in the manager module rather than a module of its own: both ends
 * live in the connection and pending machinery of server.c and commit.c.
 *
 * The follower sends the client's request frame, body unchanged, on its
 * link to the leader, flagged FORWARDED and under a request id of its
 * own; the leader handles it as if a local client had sent it and answers
 * on that link; the follower relays the answer to its client under the
 * client's request id. A forwarded request that reaches a manager that
 * does not lead is answered UNAVAILABLE "not leader" with the leader it
 * knows, never forwarded again; the follower relays that answer (the
 * client may retry). With no leader, or no link to it, the request waits
 * up to FORWARD_WAIT_MS for one, then fails UNAVAILABLE "no leader",
 * saying how many managers this one reaches. When the link to the leader
 * breaks with requests in flight their outcome is unknown, and the client
 * is told so.
 *
 * Reads go the same way and the leader answers them with a read index
 * (reads.c); watches and the stats request stay local.
 */
#include "manager/manager_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define FORWARD_WAIT_MS 5000 /* the wait for a leader, per request */

/* A request of a local client that the leader must handle. */
struct fwd {
    struct conn *conn;      /* NULL once the client went away */
    uint64_t client_id;     /* the client's request id */
    uint64_t id;            /* ours, on the link; 0 while waiting */
    uint16_t type;
    uint8_t *body;          /* owned copy of the request body */
    size_t len;
    uint64_t deadline_ms;   /* while waiting for a leader */
    struct peer_conn *link; /* the link it went out on */
    TAILQ_ENTRY(fwd) entry;
};

static void
fwd_free(struct fwd *f)
{
    free(f->body);
    free(f);
}

static void
fwd_answer(struct manager *m, struct fwd *f, int code, const char *message)
{
    struct control_out o = {.code = code};

    (void)m;
    snprintf(o.message, sizeof o.message, "%s", message);
    if (f->conn && !f->conn->dead) {
        conn_status(f->conn, f->client_id, &o);
    }
}

/* The link to the leader, when there is a leader and the link is up. */
static struct peer_conn *
fwd_leader_link(struct manager *m)
{
    uint64_t leader = m->raft_live ? raft_leader(&m->raft) : 0;

    if (leader == 0 || leader == m->raft_id) {
        return NULL;
    }
    return links_conn_to(m, leader);
}

/* Send f to the leader now; false when it must wait. */
static bool
fwd_send(struct manager *m, struct fwd *f)
{
    struct peer_conn *c = fwd_leader_link(m);
    int rc;

    if (!c) {
        return false;
    }
    f->id = ++m->fwd_serial;
    rc = peer_send_raw(c, f->type, WIRE_F_FORWARDED, f->id, f->body, f->len);
    if (rc != 0) {
        f->id = 0;
        return false; /* a full queue: like no link, wait */
    }
    f->link = c;
    return true;
}

void
forward_request(struct manager *m, struct conn *c, const struct wire_hdr *h,
                const uint8_t *body, size_t len)
{
    struct fwd *f = calloc(1, sizeof *f);

    if (!f || (len > 0 && !(f->body = malloc(len)))) {
        struct control_out o = {.code = SHOAL_RESOURCE_EXHAUSTED};

        snprintf(o.message, sizeof o.message, "out of memory");
        conn_status(c, h->id, &o);
        free(f);
        return;
    }
    if (len > 0) {
        memcpy(f->body, body, len);
    }
    f->len = len;
    f->conn = c;
    f->client_id = h->id;
    f->type = h->type;
    if (fwd_send(m, f)) {
        TAILQ_INSERT_TAIL(&m->fwd_sent, f, entry);
        return;
    }
    f->deadline_ms = time_mono_ms() + FORWARD_WAIT_MS;
    TAILQ_INSERT_TAIL(&m->fwd_waiting, f, entry);
}

void
forward_pump(struct manager *m)
{
    uint64_t now = time_mono_ms();
    struct fwd *f;
    struct fwd *next;

    for (f = TAILQ_FIRST(&m->fwd_waiting); f; f = next) {
        next = TAILQ_NEXT(f, entry);
        if (!f->conn || f->conn->dead) {
            TAILQ_REMOVE(&m->fwd_waiting, f, entry);
            fwd_free(f);
        } else if (cluster_is_leader(m)) {
            /* The election this write waited for made us the leader. */
            TAILQ_REMOVE(&m->fwd_waiting, f, entry);
            server_request(f->conn, f->type, f->client_id, f->body, f->len);
            fwd_free(f);
        } else if (fwd_send(m, f)) {
            TAILQ_REMOVE(&m->fwd_waiting, f, entry);
            TAILQ_INSERT_TAIL(&m->fwd_sent, f, entry);
        } else if (now >= f->deadline_ms) {
            char message[256];
            unsigned members = m->raft_live
                                   ? raft_config(&m->raft)->n_members
                                   : 1;

            snprintf(message, sizeof message,
                     "no leader: this manager reaches %u of the %u "
                     "managers", links_count_up(m) + 1,
                     members > 0 ? members : 1);
            TAILQ_REMOVE(&m->fwd_waiting, f, entry);
            fwd_answer(m, f, SHOAL_UNAVAILABLE, message);
            fwd_free(f);
        }
    }
}

/* The follower's end: an answer of the leader on link c. Returns true
 * when it was one. */
bool
forward_reply(struct manager *m, struct peer_conn *c, const struct wire_hdr *h,
              const uint8_t *body, size_t len)
{
    struct fwd *f;

    TAILQ_FOREACH(f, &m->fwd_sent, entry) {
        if (f->id == h->id && f->link == c) {
            break;
        }
    }
    if (!f) {
        return false;
    }
    if (f->conn && !f->conn->dead) {
        (void)conn_frame_raw(f->conn, h->type, h->flags & WIRE_F_MORE,
                             f->client_id, body, len);
        conn_flush_later(f->conn);
    }
    if (!(h->flags & WIRE_F_MORE)) {
        TAILQ_REMOVE(&m->fwd_sent, f, entry);
        fwd_free(f);
    }
    return true;
}

void
forward_link_down(struct manager *m, struct peer_conn *c)
{
    struct fwd *f;
    struct fwd *next;
    struct pending *pd;

    for (f = TAILQ_FIRST(&m->fwd_sent); f; f = next) {
        next = TAILQ_NEXT(f, entry);
        if (f->link != c) {
            continue;
        }
        TAILQ_REMOVE(&m->fwd_sent, f, entry);
        fwd_answer(m, f, SHOAL_UNAVAILABLE,
                   "the link to the leader broke; the write may or may not "
                   "have been applied: read before retrying");
        fwd_free(f);
    }
    /* Leader side: forwarded writes of c answer nobody now. */
    TAILQ_FOREACH(pd, &m->proposed, link) {
        if (pd->pconn == c) {
            pd->pconn = NULL;
        }
    }
}

void
forward_conn_gone(struct manager *m, struct conn *c)
{
    struct fwd *f;

    TAILQ_FOREACH(f, &m->fwd_waiting, entry) {
        if (f->conn == c) {
            f->conn = NULL;
        }
    }
    TAILQ_FOREACH(f, &m->fwd_sent, entry) {
        if (f->conn == c) {
            f->conn = NULL;
        }
    }
}

/* The leader's end. */

struct peer_list_ctx {
    struct peer_conn *c;
    uint64_t id;
    uint16_t type;
};

static int
peer_list_sink(void *arg, uint8_t flags, const struct shoal_list_reply *r)
{
    struct peer_list_ctx *x = arg;

    return peer_send(x->c, x->type | WIRE_REPLY, flags, x->id,
                     &wire_type_list_reply, r);
}

void
forward_reply_ok(struct peer_conn *c, uint16_t type, uint64_t id,
                 const struct control_out *o)
{
    struct peer_list_ctx x = {.c = c, .id = id, .type = type};
    int rc;

    if (o->reply_type == &wire_type_list_reply) {
        /* In frames flagged MORE, as on the local socket (section 7). */
        rc = server_list_slices((struct shoal_list_reply *)o->reply,
                                peer_list_sink, &x);
    } else {
        rc = peer_send(c, type | WIRE_REPLY, 0, id, o->reply_type,
                       o->reply);
    }
    if (rc == ERR_TOOBIG) {
        struct control_out st = {.code = SHOAL_RESOURCE_EXHAUSTED};

        snprintf(st.message, sizeof st.message,
                 "reply exceeds the frame size limit");
        forward_status(c, id, &st, NULL);
    } else if (rc != 0) {
        /* The link's queue cannot take the whole reply: a partial one
         * must not look whole, so the link goes (the follower tells its
         * client). */
        peer_conn_close(c, "reply larger than the link's queue");
    }
}

void
forward_status(struct peer_conn *c, uint64_t id, const struct control_out *o,
               const char *leader_addr)
{
    struct shoal_status_msg st = {
        .code = (uint32_t)o->code,
        .message = (char *)o->message,
        .current_version = o->current_version,
        .leader_addr = (char *)leader_addr,
    };

    (void)peer_send(c, WIRE_MSG_STATUS, 0, id, &wire_type_status_msg, &st);
}

void
forward_serve(struct manager *m, struct peer_conn *c, const struct wire_hdr *h,
              const uint8_t *body, size_t len)
{
    const struct wire_msg_info *info = wire_msg_info(h->type);
    struct pending *pd = NULL;
    struct control_out o = {0};
    void *req = NULL;
    int rc;

    if (!info || !info->request || info->peer ||
        h->type == WIRE_MSG_WATCH || h->type == WIRE_MSG_STATUS) {
        o.code = SHOAL_UNIMPLEMENTED;
        snprintf(o.message, sizeof o.message,
                 "only writes and reads are forwarded between managers");
        forward_status(c, h->id, &o, NULL);
        return;
    }
    if (!cluster_is_leader(m)) {
        const struct shoal_node *ln = links_node_of(m, raft_leader(&m->raft));

        o.code = SHOAL_UNAVAILABLE;
        snprintf(o.message, sizeof o.message,
                 "not leader: a forwarded request is not forwarded again");
        forward_status(c, h->id, &o,
                       ln && ln->manager_status ? ln->manager_status->addr
                                                : NULL);
        return;
    }
    if (!info->write) {
        reads_start(m, NULL, c, h->type, h->id, body, len);
        return;
    }
    req = calloc(1, wire_type_size(info->request));
    pd = calloc(1, sizeof *pd);
    if (!req || !pd) {
        o.code = SHOAL_RESOURCE_EXHAUSTED;
        snprintf(o.message, sizeof o.message, "out of memory");
        forward_status(c, h->id, &o, NULL);
        goto out;
    }
    if (wire_decode(info->request, req, body, len) != 0) {
        o.code = SHOAL_INVALID_ARGUMENT;
        snprintf(o.message, sizeof o.message, "malformed request body");
        forward_status(c, h->id, &o, NULL);
        goto out;
    }
    rc = control_handle(&m->control, h->type, req, &pd->out);
    if (rc != 0 || !pd->out.proposal) {
        if (rc != 0) {
            pd->out.code = SHOAL_RESOURCE_EXHAUSTED;
            snprintf(pd->out.message, sizeof pd->out.message,
                     "out of memory");
        }
        if (pd->out.code == SHOAL_OK) {
            forward_reply_ok(c, h->type, h->id, &pd->out);
        } else {
            forward_status(c, h->id, &pd->out, NULL);
        }
        control_out_fini(&pd->out);
        goto out;
    }
    pd->pconn = c;
    pd->req_id = h->id;
    pd->type = h->type;
    pd->proposal = pd->out.proposal;
    pd->out.proposal = NULL;
    rc = cluster_propose(m, pd);
    if (rc != 0) {
        cluster_refusal(m, rc, &pd->out);
        forward_status(c, h->id, &pd->out, NULL);
        wire_free(&wire_type_proposal, pd->proposal);
        free(pd->proposal);
        control_out_fini(&pd->out);
        goto out;
    }
    pd = NULL; /* answered when applied (commit.c) */

out:
    if (req) {
        wire_free(info->request, req);
    }
    free(req);
    free(pd);
}

void
forward_fini(struct manager *m)
{
    struct fwd *f;

    while ((f = TAILQ_FIRST(&m->fwd_waiting))) {
        TAILQ_REMOVE(&m->fwd_waiting, f, entry);
        fwd_answer(m, f, SHOAL_UNAVAILABLE, "the manager is stopping");
        fwd_free(f);
    }
    while ((f = TAILQ_FIRST(&m->fwd_sent))) {
        TAILQ_REMOVE(&m->fwd_sent, f, entry);
        fwd_answer(m, f, SHOAL_UNAVAILABLE,
                   "the manager stopped; the write may or may not have "
                   "been applied: read before retrying");
        fwd_free(f);
    }
}
