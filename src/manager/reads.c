/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * reads.c: linearizable reads on a leader with other voters (thesis
 * §6.4, read index).
 *
 * A leader that is not the only voter cannot know, by itself, that no
 * newer leader exists: before it answers a read, the core confirms its
 * leadership with a heartbeat round to a quorum (raft_read_index), and
 * the read is served once the applied state reaches the commit index of
 * that moment. A sole voter serves at once: no other leader can exist.
 * Followers send their reads to the leader (forward.c); watches and the
 * stats request stay local. A read that the core fails (the leader
 * stepped down), or that waits longer than READ_WAIT_MS (its round was
 * lost), is answered UNAVAILABLE, which a client may retry.
 */
#include "manager/manager_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define READ_WAIT_MS 5000

struct read_wait {
    struct conn *conn;       /* a local client, or */
    struct peer_conn *pconn; /* the follower that forwarded it */
    uint64_t req_id;
    uint16_t type;
    uint8_t *body;           /* owned copy of the request body */
    size_t len;
    uint64_t ctx;            /* 0: not yet asked (leader not ready) */
    uint64_t index;          /* serve once applied reaches it */
    bool confirmed;
    uint64_t deadline_ms;
    TAILQ_ENTRY(read_wait) entry;
};

static void
read_free(struct read_wait *r)
{
    free(r->body);
    free(r);
}

static void
read_fail(struct read_wait *r, int code, const char *message)
{
    struct control_out o = {.code = code};

    snprintf(o.message, sizeof o.message, "%s", message);
    if (r->pconn) {
        forward_status(r->pconn, r->req_id, &o, NULL);
    } else if (r->conn && !r->conn->dead) {
        conn_status(r->conn, r->req_id, &o);
    }
}

/* Answer a confirmed read from the applied state. */
static void
read_serve(struct manager *m, struct read_wait *r)
{
    const struct wire_msg_info *info = wire_msg_info(r->type);
    struct control_out o = {0};
    void *req;
    int rc;

    if (r->conn && !r->pconn) {
        if (!r->conn->dead) {
            server_request(r->conn, r->type, r->req_id, r->body, r->len);
        }
        return;
    }
    if (!r->pconn) {
        return;
    }
    req = calloc(1, wire_type_size(info->request));
    if (!req) {
        read_fail(r, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (wire_decode(info->request, req, r->body, r->len) != 0) {
        read_fail(r, SHOAL_INVALID_ARGUMENT, "malformed request body");
        free(req);
        return;
    }
    rc = control_handle(&m->control, r->type, req, &o);
    if (rc != 0) {
        read_fail(r, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
    } else if (o.code != SHOAL_OK) {
        forward_status(r->pconn, r->req_id, &o, NULL);
    } else {
        forward_reply_ok(r->pconn, r->type, r->req_id, &o);
    }
    control_out_fini(&o);
    wire_free(info->request, req);
    free(req);
}

/* Ask the core for the read index of r, when it can answer. */
static void
read_ask(struct manager *m, struct read_wait *r)
{
    uint64_t ctx = ++m->read_serial;

    if (raft_read_index(&m->raft, ctx) == 0) {
        r->ctx = ctx;
        loop_defer(&m->loop, &m->sync_defer);
    }
    /* RAFT_ERR_NOT_READY: a new leader has not committed in its term;
     * reads_pump asks again next tick. */
}

bool
reads_needed(const struct manager *m)
{
    return cluster_is_leader(m) &&
           raft_config_voters(raft_config(&m->raft)) > 1;
}

void
reads_start(struct manager *m, struct conn *c, struct peer_conn *pc,
            uint16_t type, uint64_t id, const uint8_t *body, size_t len)
{
    struct read_wait *r = calloc(1, sizeof *r);

    if (!r || (len > 0 && !(r->body = malloc(len)))) {
        struct control_out o = {.code = SHOAL_RESOURCE_EXHAUSTED};

        snprintf(o.message, sizeof o.message, "out of memory");
        if (pc) {
            forward_status(pc, id, &o, NULL);
        } else {
            conn_status(c, id, &o);
        }
        free(r);
        return;
    }
    if (len > 0) {
        memcpy(r->body, body, len);
    }
    r->len = len;
    r->conn = c;
    r->pconn = pc;
    r->req_id = id;
    r->type = type;
    r->deadline_ms = time_mono_ms() + READ_WAIT_MS;
    if (!reads_needed(m)) {
        /* A sole voter: no round to wait for. */
        read_serve(m, r);
        read_free(r);
        return;
    }
    TAILQ_INSERT_TAIL(&m->reads, r, entry);
    read_ask(m, r);
}

void
reads_ready(struct manager *m, const struct raft_read_state *rs)
{
    struct read_wait *r;

    TAILQ_FOREACH(r, &m->reads, entry) {
        if (r->ctx == rs->ctx && !r->confirmed) {
            break;
        }
    }
    if (!r) {
        return;
    }
    if (rs->failed) {
        TAILQ_REMOVE(&m->reads, r, entry);
        read_fail(r, SHOAL_UNAVAILABLE,
                  "leadership changed during the read; retry");
        read_free(r);
        return;
    }
    r->confirmed = true;
    r->index = rs->index;
}

void
reads_pump(struct manager *m)
{
    uint64_t now = time_mono_ms();
    uint64_t applied = store_applied(m->store);
    struct read_wait *r;
    struct read_wait *next;

    for (r = TAILQ_FIRST(&m->reads); r; r = next) {
        next = TAILQ_NEXT(r, entry);
        if (r->confirmed && r->index <= applied) {
            TAILQ_REMOVE(&m->reads, r, entry);
            read_serve(m, r);
            read_free(r);
        } else if ((!r->pconn && (!r->conn || r->conn->dead))) {
            TAILQ_REMOVE(&m->reads, r, entry);
            read_free(r);
        } else if (now >= r->deadline_ms || !cluster_is_leader(m)) {
            TAILQ_REMOVE(&m->reads, r, entry);
            read_fail(r, SHOAL_UNAVAILABLE,
                      "the leader could not confirm its leadership for "
                      "this read; retry");
            read_free(r);
        } else if (r->ctx == 0) {
            read_ask(m, r);
        }
    }
}

void
reads_conn_gone(struct manager *m, struct conn *c, struct peer_conn *pc)
{
    struct read_wait *r;

    TAILQ_FOREACH(r, &m->reads, entry) {
        if (c && r->conn == c) {
            r->conn = NULL;
        }
        if (pc && r->pconn == pc) {
            r->pconn = NULL;
        }
    }
}

void
reads_fini(struct manager *m)
{
    struct read_wait *r;

    while ((r = TAILQ_FIRST(&m->reads))) {
        TAILQ_REMOVE(&m->reads, r, entry);
        read_fail(r, SHOAL_UNAVAILABLE, "the manager is stopping");
        read_free(r);
    }
}
