/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * join.c: a new manager joins a cluster (SWARMKIT.md 6, DESIGN.md
 * "Managers, certificates and forwarding"). Both sides are here.
 *
 * The joiner (`shoald --join HOST:PORT --join-token TOKEN` on an empty
 * state directory) runs its loop for the join alone, before it opens its
 * state: it fetches the CA certificate that the manager at HOST:PORT
 * presents, trusting nothing, and checks it against the digest in the
 * token (ca_token_pin); then, on a TLS link that verifies that manager
 * against the pinned CA and presents no client certificate, it sends a
 * join request with the token, a CSR, its node id, Raft id and peer
 * address. A manager that is not the leader answers UNAVAILABLE with the
 * leader's address and the joiner tries there (redirect, not forwarding:
 * the token then travels only to the manager that checks it). A wrong or
 * rotated token, or a CA that is not the token's, ends the start with
 * ERR_JOIN_REFUSED.
 *
 * The leader checks the token (constant time, ca_token_check), signs the
 * certificate with the cluster's CA from the cluster object, records the
 * new manager's node object (raft id and address) through the log, and
 * once that is applied adds the raft id with raft_add_voter: a non-voter
 * caught up in rounds, then promoted (thesis §4.2.1). The answer carries
 * the certificate; the joiner stores it with the CA certificate, writes
 * the `joined` marker, and starts as a member with an empty log that the
 * leader fills.
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

#define JOIN_MARKER "joined"
#define JOIN_RETRY_MS 300   /* wait before trying again */
#define JOIN_DEADLINE_MS 60000 /* give up on an unreachable cluster */

/* The joiner's side. */
struct join_client {
    char target[256];      /* the manager asked now */
    struct ca_token token;
    uint8_t *ca_der;       /* pinned CA certificate */
    size_t ca_len;
    struct ca_buf csr;
    struct peer_dialer *dialer;
    struct loop_timer retry;
    struct loop_timer deadline;
    int result;            /* ERR_AGAIN while running */
};

/* The leader's side: a join waiting for its node object to apply. */
struct join_wait {
    struct peer_conn *conn; /* NULL once it went away */
    uint64_t req_id;
    uint64_t raft_id;
    bool applied;           /* node object in: add the voter (join_pump) */
    struct shoal_bytes cert;
    TAILQ_ENTRY(join_wait) entry;
};

/* Marker. */

int
join_marker_read(struct manager *m)
{
    char path[4096];
    char buf[ID_LEN + 2] = {0};
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, JOIN_MARKER);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < ID_LEN) {
        log_err("join", "join marker is damaged: path=%s", path);
        return ERR_CORRUPT;
    }
    m->joined = true;
    if (m->cluster_id[0] == '\0') {
        memcpy(m->cluster_id, buf, ID_LEN);
        m->cluster_id[ID_LEN] = '\0';
    }
    return 0;
}

static int
join_marker_write(struct manager *m)
{
    char path[4096];
    ssize_t n;
    int fd;
    int rc;

    snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, JOIN_MARKER);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    n = write(fd, m->cluster_id, ID_LEN);
    rc = n == ID_LEN && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    if (rc == 0) {
        m->joined = true;
    }
    return rc;
}

/* Leader side. */

static void
join_status(struct peer_conn *c, uint64_t id, int code, const char *message,
            const char *leader_addr)
{
    struct shoal_status_msg st = {
        .code = (uint32_t)code,
        .message = (char *)message,
        .leader_addr = (char *)leader_addr,
    };

    (void)peer_send(c, WIRE_MSG_STATUS, 0, id, &wire_type_status_msg, &st);
}

static int
join_find_cluster_cb(const void *obj, void *arg)
{
    *(const struct shoal_cluster **)arg = obj;
    return 1;
}

static const struct shoal_cluster *
join_cluster(const struct manager *m)
{
    struct store_query all = {.by = STORE_BY_ALL};
    const struct shoal_cluster *cl = NULL;

    store_find(m->store, SHOAL_KIND_CLUSTER, &all, join_find_cluster_cb,
               &cl);
    return cl;
}

static void
join_wait_free(struct join_wait *jw)
{
    free(jw->cert.data);
    free(jw);
}

/* Sign the CSR with the cluster's CA (from the cluster object, so that
 * any manager that leads can). Returns 0 with *cert, or a code with
 * message filled. */
static int
join_sign(struct manager *m, const struct shoal_cluster *cl,
          const struct shoal_join_request *req, struct shoal_bytes *cert,
          char *message, size_t size)
{
    struct ca_issue iss = {.node_id = req->node_id, .role = CA_ROLE_MANAGER};
    struct ca_root root;
    struct ca_buf der = {0};
    struct ca_msg msg = {{0}};
    int rc;

    (void)m;
    ca_root_init(&root);
    rc = ca_root_from_der(&root, cl->root_ca.ca_cert.data,
                          cl->root_ca.ca_cert.len, cl->root_ca.ca_key.data,
                          cl->root_ca.ca_key.len, &msg);
    if (rc == 0) {
        rc = ca_root_sign(&root, req->csr.data, req->csr.len, &iss, &der,
                          &msg);
    }
    if (rc == 0) {
        cert->data = malloc(der.len);
        rc = cert->data ? 0 : ERR_NOMEM;
    }
    if (rc == 0) {
        memcpy(cert->data, der.data, der.len);
        cert->len = der.len;
    } else {
        snprintf(message, size, "cannot sign the certificate: %s%s%s",
                 ca_err_str(rc), msg.text[0] ? ": " : "", msg.text);
    }
    ca_buf_fini(&der);
    ca_root_fini(&root);
    return rc;
}

static void
join_serve(struct manager *m, struct peer_conn *c, const struct wire_hdr *h,
           const uint8_t *body, size_t len)
{
    struct shoal_join_request req = {0};
    const struct shoal_cluster *cl;
    const struct shoal_node *old;
    struct join_wait *jw = NULL;
    struct pending *pd = NULL;
    struct ca_msg msg = {{0}};
    enum ca_role role;
    char message[512];
    int rc;

    if (wire_decode(&wire_type_join_request, &req, body, len) != 0 ||
        !req.token || !req.node_id || !req.addr || req.raft_id == 0 ||
        req.csr.len == 0) {
        wire_free(&wire_type_join_request, &req);
        peer_conn_close(c, "malformed join request");
        return;
    }
    if (!cluster_is_leader(m)) {
        const struct shoal_node *ln = links_node_of(m, raft_leader(&m->raft));
        const char *addr = ln && ln->manager_status ? ln->manager_status->addr
                                                    : NULL;

        join_status(c, h->id, SHOAL_UNAVAILABLE,
                    addr ? "not the leader: ask the leader"
                         : "no leader now: try again",
                    addr);
        goto out;
    }
    cl = join_cluster(m);
    if (!cl || cl->root_ca.ca_key.len == 0 ||
        !cl->root_ca.join_tokens.manager) {
        join_status(c, h->id, SHOAL_FAILED_PRECONDITION,
                    "this cluster has no CA key to sign with", NULL);
        goto out;
    }
    rc = ca_token_check(req.token, cl->root_ca.join_tokens.manager, NULL,
                        &role, &msg);
    if (rc != 0) {
        snprintf(message, sizeof message, "join refused: %s",
                 rc == CA_ERR_TOKEN_SECRET
                     ? "the join token is wrong or was rotated"
                 : rc == CA_ERR_TOKEN_WRONG_CA
                     ? "the join token is for another cluster's CA"
                     : "the join token is malformed");
        log_warn("join", "refused a join: addr=%s node=%s: %s",
                 peer_conn_addr(c), req.node_id, message);
        join_status(c, h->id, SHOAL_PERMISSION_DENIED, message, NULL);
        goto out;
    }
    old = store_get(m->store, SHOAL_KIND_NODE, req.node_id);
    if (old && (!old->manager_status ||
                old->manager_status->raft_id != req.raft_id)) {
        join_status(c, h->id, SHOAL_ALREADY_EXISTS,
                    "join refused: a node with this id exists", NULL);
        goto out;
    }
    if (raft_config_is_removed(raft_config(&m->raft), req.raft_id)) {
        join_status(c, h->id, SHOAL_PERMISSION_DENIED,
                    "join refused: this raft id was removed", NULL);
        goto out;
    }

    jw = calloc(1, sizeof *jw);
    pd = calloc(1, sizeof *pd);
    if (!jw || !pd) {
        join_status(c, h->id, SHOAL_RESOURCE_EXHAUSTED, "out of memory",
                    NULL);
        goto out;
    }
    if (join_sign(m, cl, &req, &jw->cert, message, sizeof message) != 0) {
        join_status(c, h->id, SHOAL_INVALID_ARGUMENT, message, NULL);
        goto out;
    }
    rc = control_manager_node(&m->control, req.node_id,
                              req.hostname ? req.hostname : "", req.raft_id,
                              req.addr, &pd->proposal);
    if (rc == 0) {
        pd->internal = true;
        pd->join = jw;
        rc = cluster_propose(m, pd);
    }
    if (rc != 0) {
        struct control_out o = {0};

        cluster_refusal(m, rc, &o);
        join_status(c, h->id, o.code, o.message, NULL);
        if (pd->proposal) {
            wire_free(&wire_type_proposal, pd->proposal);
            free(pd->proposal);
        }
        goto out;
    }
    jw->conn = c;
    jw->req_id = h->id;
    jw->raft_id = req.raft_id;
    TAILQ_INSERT_TAIL(&m->join_waits, jw, entry);
    log_notice("join", "a manager asks to join: addr=%s node=%s "
               "raft_id=%016" PRIx64 " peer_addr=%s", peer_conn_addr(c),
               req.node_id, req.raft_id, req.addr);
    jw = NULL;
    pd = NULL;

out:
    if (jw) {
        join_wait_free(jw);
    }
    free(pd);
    wire_free(&wire_type_join_request, &req);
}

void
join_applied(struct manager *m, struct join_wait *jw, int code,
             const char *message)
{
    if (code == SHOAL_OK) {
        /* Called while the core hands out a ready batch, which a change
         * of membership must not interleave with: join_pump() adds the
         * voter right after. */
        jw->applied = true;
        loop_defer(&m->loop, &m->sync_defer);
        return;
    }
    TAILQ_REMOVE(&m->join_waits, jw, entry);
    if (jw->conn) {
        join_status(jw->conn, jw->req_id, code, message, NULL);
    }
    join_wait_free(jw);
}

void
join_pump(struct manager *m)
{
    struct shoal_join_reply reply = {0};
    struct join_wait *jw;
    struct join_wait *next;
    const char *message = NULL;
    int rc;

    for (jw = TAILQ_FIRST(&m->join_waits); jw; jw = next) {
        next = TAILQ_NEXT(jw, entry);
        if (!jw->applied) {
            continue;
        }
        TAILQ_REMOVE(&m->join_waits, jw, entry);
        /* The node object is in: now the membership, one server at a
         * time (thesis §4.1). */
        rc = raft_add_voter(&m->raft, jw->raft_id);
        if (rc == RAFT_ERR_MEMBER) {
            rc = 0; /* a retried join of a voter */
        }
        if (rc == 0) {
            loop_defer(&m->loop, &m->sync_defer);
            log_notice("join", "adding a manager: raft_id=%016" PRIx64,
                       jw->raft_id);
        } else {
            message = rc == RAFT_ERR_CHANGE_PENDING
                          ? "another membership change is running: retry"
                          : raft_err_str(rc);
        }
        if (jw->conn && rc == 0) {
            reply.cert = jw->cert;
            reply.cluster_id = m->cluster_id;
            reply.leader_raft_id = m->raft_id;
            (void)peer_send(jw->conn, WIRE_MSG_JOIN | WIRE_REPLY, 0,
                            jw->req_id, &wire_type_join_reply, &reply);
        } else if (jw->conn) {
            join_status(jw->conn, jw->req_id, SHOAL_UNAVAILABLE, message,
                        NULL);
        }
        join_wait_free(jw);
    }
}

/* Joiner side. */

static void join_try(struct manager *m);

static void
join_end(struct manager *m, int result)
{
    struct join_client *jc = m->join;

    jc->result = result;
    loop_stop(&m->loop);
}

static void
join_retry_later(struct manager *m)
{
    struct join_client *jc = m->join;

    jc->dialer = NULL;
    loop_timer_start(&m->loop, &jc->retry, JOIN_RETRY_MS);
}

static void
join_retry_cb(struct loop *l, void *arg)
{
    (void)l;
    join_try(arg);
}

static void
join_deadline_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;

    (void)l;
    log_err("join", "could not join within %d s: target=%s",
            JOIN_DEADLINE_MS / 1000, m->join->target);
    if (m->join->dialer) {
        peer_dialer_stop(m->join->dialer);
        m->join->dialer = NULL;
    }
    join_end(m, -ETIMEDOUT);
}

static void
join_ca_cb(int rc, const uint8_t *ca_der, size_t len, const char *why,
           void *arg)
{
    struct manager *m = arg;
    struct join_client *jc = m->join;
    struct ca_msg msg = {{0}};

    jc->dialer = NULL;
    if (rc != 0) {
        log_info("join", "cannot fetch the CA yet: target=%s: %s",
                 jc->target, why);
        join_retry_later(m);
        return;
    }
    rc = ca_token_pin(&jc->token, ca_der, len, &msg);
    if (rc != 0) {
        log_err("join", "join refused: the CA of the manager at %s is not "
                "the one the join token names (wrong token or another "
                "cluster)", jc->target);
        join_end(m, ERR_JOIN_REFUSED);
        return;
    }
    jc->ca_der = malloc(len);
    if (!jc->ca_der) {
        join_end(m, ERR_NOMEM);
        return;
    }
    memcpy(jc->ca_der, ca_der, len);
    jc->ca_len = len;
    join_try(m);
}

static void
join_try(struct manager *m)
{
    struct join_client *jc = m->join;
    int rc;

    if (!jc->ca_der) {
        rc = peer_fetch_ca_unverified(&m->net, jc->target, join_ca_cb, m,
                                      &jc->dialer);
    } else {
        rc = peer_dial_anon(&m->net, jc->target, jc->ca_der, jc->ca_len,
                            NULL, &jc->dialer);
    }
    if (rc != 0) {
        log_err("join", "cannot connect to join: target=%s: %s", jc->target,
                err_str(rc));
        join_end(m, rc);
    }
}

void
join_up(struct manager *m, struct peer_conn *c)
{
    struct join_client *jc = m->join;
    char token[CA_TOKEN_LEN + 1];
    struct shoal_join_request req = {
        .token = token,
        .csr = {.data = jc->csr.data, .len = jc->csr.len},
        .node_id = m->node_id,
        .raft_id = m->raft_id,
        .addr = m->advertise,
        .hostname = (char *)m->cfg.hostname,
    };

    ca_token_format(&jc->token, token);
    if (peer_send(c, WIRE_MSG_JOIN, 0, 1, &wire_type_join_request, &req) !=
        0) {
        peer_conn_close(c, "cannot send the join request");
    }
    memset(token, 0, sizeof token);
}

static void
join_reply(struct manager *m, struct peer_conn *c, const uint8_t *body,
           size_t len)
{
    struct join_client *jc = m->join;
    struct shoal_join_reply reply = {0};
    struct ca_msg msg = {{0}};
    struct ca_cert_info info;
    int rc;

    rc = wire_decode(&wire_type_join_reply, &reply, body, len);
    if (rc != 0 || !reply.cluster_id || strlen(reply.cluster_id) != ID_LEN) {
        wire_free(&wire_type_join_reply, &reply);
        log_err("join", "malformed join reply: target=%s", jc->target);
        join_end(m, ERR_PROTO);
        return;
    }
    snprintf(m->cluster_id, sizeof m->cluster_id, "%s", reply.cluster_id);
    rc = ca_node_cert_set(&m->ca_node, reply.cert.data, reply.cert.len,
                          &msg);
    if (rc == 0) {
        rc = ca_root_from_der(&m->ca_root, jc->ca_der, jc->ca_len, NULL, 0,
                              &msg);
    }
    if (rc == 0) {
        rc = ca_cert_verify(&m->ca_root, m->ca_node.cert, 0, &info, &msg);
    }
    if (rc == 0) {
        rc = ca_root_save(&m->ca_root, m->cfg.state_dir, &msg);
    }
    if (rc == 0) {
        rc = ca_node_save(&m->ca_node, m->cfg.state_dir, &msg);
    }
    wire_free(&wire_type_join_reply, &reply);
    if (rc != 0) {
        log_err("join", "cannot take the certificate of the join: %s%s%s",
                ca_err_str(rc), msg.text[0] ? ": " : "", msg.text);
        join_end(m, rc);
        return;
    }
    rc = join_marker_write(m);
    if (rc != 0) {
        log_err("join", "cannot write the join marker: %s", err_str(rc));
        join_end(m, rc);
        return;
    }
    log_notice("join", "joined: cluster=%s node=%s via=%s", m->cluster_id,
               m->node_id, jc->target);
    peer_conn_close(c, "joined");
    join_end(m, 0);
}

static void
join_answer(struct manager *m, struct peer_conn *c, const struct wire_hdr *h,
            const uint8_t *body, size_t len)
{
    struct join_client *jc = m->join;
    struct shoal_status_msg st = {0};

    if (h->type == (WIRE_MSG_JOIN | WIRE_REPLY)) {
        join_reply(m, c, body, len);
        return;
    }
    if (h->type != WIRE_MSG_STATUS ||
        wire_decode(&wire_type_status_msg, &st, body, len) != 0) {
        peer_conn_close(c, "unexpected frame during the join");
        return;
    }
    if (st.code == SHOAL_UNAVAILABLE && st.leader_addr && st.leader_addr[0]) {
        log_info("join", "not the leader, asking the leader: target=%s "
                 "leader=%s", jc->target, st.leader_addr);
        snprintf(jc->target, sizeof jc->target, "%s", st.leader_addr);
        peer_conn_close(c, "redirected to the leader");
    } else if (st.code == SHOAL_UNAVAILABLE) {
        log_info("join", "the cluster cannot add a manager now, retrying: "
                 "target=%s: %s", jc->target, st.message ? st.message : "");
        peer_conn_close(c, "retry");
    } else {
        log_err("join", "%s (refused by %s)", st.message ? st.message : "",
                jc->target);
        fprintf(stderr, "shoald: %s\n", st.message ? st.message : "");
        peer_conn_close(c, "join refused");
        join_end(m, st.code == SHOAL_PERMISSION_DENIED ? ERR_JOIN_REFUSED
                                                       : ERR_BADSTATE);
    }
    wire_free(&wire_type_status_msg, &st);
}

void
join_frame(struct manager *m, struct peer_conn *c, const struct wire_hdr *h,
           const uint8_t *body, size_t len)
{
    if (m->join) {
        join_answer(m, c, h, body, len);
        return;
    }
    if (h->type != WIRE_MSG_JOIN) {
        join_status(c, h->id, SHOAL_PERMISSION_DENIED,
                    "without a certificate only a join may be asked", NULL);
        peer_conn_close(c, "not a join, without a certificate");
        return;
    }
    join_serve(m, c, h, body, len);
}

void
join_down(struct manager *m, struct peer_conn *c)
{
    struct join_wait *jw;

    TAILQ_FOREACH(jw, &m->join_waits, entry) {
        if (jw->conn == c) {
            jw->conn = NULL;
        }
    }
    /* A one-shot dialer retires with its connection. */
    if (m->join && m->join->dialer &&
        peer_conn_dialer(c) == m->join->dialer) {
        m->join->dialer = NULL;
        if (m->join->result == ERR_AGAIN) {
            join_retry_later(m); /* redirected, or the link broke */
        }
    }
}

void
join_dial_fail(struct manager *m, struct peer_dialer *d, int rc,
               const char *why)
{
    if (!m->join || d != m->join->dialer || m->join->result != ERR_AGAIN) {
        return;
    }
    log_info("join", "cannot reach the manager yet: target=%s: %s (%s)",
             m->join->target, why, err_str(rc));
    join_retry_later(m);
}

int
join_run(struct manager *m)
{
    struct join_client jc = {.result = ERR_AGAIN};
    struct ca_msg msg = {{0}};
    int rc;

    snprintf(jc.target, sizeof jc.target, "%s", m->cfg.join);
    rc = ca_token_parse(m->cfg.join_token, &jc.token, &msg);
    if (rc != 0) {
        log_err("join", "join refused: the join token is malformed: %s",
                msg.text);
        fprintf(stderr, "shoald: the join token is malformed: %s\n",
                msg.text);
        return ERR_JOIN_REFUSED;
    }
    rc = ca_node_csr_new(&m->ca_node, &jc.csr, &msg);
    if (rc != 0) {
        log_err("join", "cannot make a key and CSR: %s", msg.text);
        ca_token_clear(&jc.token);
        return rc;
    }
    rc = links_init(m, NULL);
    if (rc != 0) {
        ca_buf_fini(&jc.csr);
        ca_token_clear(&jc.token);
        return rc;
    }
    jc.retry = (struct loop_timer){.cb = join_retry_cb, .arg = m};
    jc.deadline = (struct loop_timer){.cb = join_deadline_cb, .arg = m};
    m->join = &jc;
    loop_timer_start(&m->loop, &jc.deadline, JOIN_DEADLINE_MS);
    log_notice("join", "joining: target=%s node=%s raft_id=%016" PRIx64
               " advertise=%s", jc.target, m->node_id, m->raft_id,
               m->advertise);
    join_try(m);
    rc = loop_run(&m->loop);
    if (rc == 0) {
        rc = jc.result == ERR_AGAIN ? ERR_BADSTATE : jc.result;
    }
    loop_timer_stop(&m->loop, &jc.retry);
    loop_timer_stop(&m->loop, &jc.deadline);
    if (jc.dialer) {
        peer_dialer_stop(jc.dialer);
    }
    m->join = NULL;
    free(jc.ca_der);
    ca_buf_fini(&jc.csr);
    ca_token_clear(&jc.token);
    return rc;
}

void
join_fini(struct manager *m)
{
    struct join_wait *jw;

    while ((jw = TAILQ_FIRST(&m->join_waits))) {
        TAILQ_REMOVE(&m->join_waits, jw, entry);
        join_wait_free(jw);
    }
}
