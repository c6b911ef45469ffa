/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * links.c: this manager's links to the other managers (src/peer), and the
 * Raft messages that travel on them.
 *
 * Each manager dials every other member of its Raft config, at the peer
 * address stored in that member's node object (manager_status.addr), and
 * sends its messages for that member on the connection it dialed. What
 * arrives on an accepted connection is received only, except toward a
 * member that this manager cannot dial yet (a manager that joined and has
 * not yet replicated the node objects): it answers on the connection the
 * member's messages came in on. A lost message is no harm: Raft retries
 * (paper §5.3).
 *
 * Peers authenticate with certificates of the cluster CA (TLS 1.3, both
 * ways); a certificate of another cluster, of a worker, or of a node no
 * longer in the store is refused. The listener also takes clients
 * without a certificate, for the two steps of a join only (join.c).
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/base.h"

/* One other member: the dialer that keeps a connection to it. */
struct link {
    uint64_t raft_id;
    char addr[256];
    struct peer_dialer *dialer;
    struct peer_conn *conn; /* up, or NULL */
    bool seen;              /* still a member (links_sync) */
};

/* An accepted connection. */
struct link_in {
    struct peer_conn *conn;
    uint64_t raft_id; /* from its first Raft message; 0 before */
    TAILQ_ENTRY(link_in) entry;
};

/* Read a PEM file of the certificates folder into a NUL-terminated
 * string (transferred). Returns 0 or -errno / ERR_TOOBIG / ERR_NOMEM. */
static int
links_read_pem(const char *state_dir, const char *name, char **out)
{
    char path[4096];
    char *buf;
    ssize_t n;
    size_t len = 0;
    int fd;
    int rc = 0;

    snprintf(path, sizeof path, "%s/%s/%s", state_dir, CA_DIR_NAME, name);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return -errno;
    }
    buf = malloc(CA_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return ERR_NOMEM;
    }
    while ((n = read(fd, buf + len, CA_FILE_MAX - len)) > 0) {
        len += (size_t)n;
    }
    if (n < 0) {
        rc = -errno;
    } else if (len == CA_FILE_MAX) {
        rc = ERR_TOOBIG;
    }
    close(fd);
    if (rc != 0) {
        OPENSSL_cleanse(buf, CA_FILE_MAX);
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

int
links_tls(struct manager *m, struct peer_tls_ctx **out)
{
    char *ca = NULL;
    char *cert = NULL;
    char *key = NULL;
    int rc;

    rc = links_read_pem(m->cfg.state_dir, "ca.crt", &ca);
    if (rc == 0) {
        rc = links_read_pem(m->cfg.state_dir, "node.crt", &cert);
    }
    if (rc == 0) {
        rc = links_read_pem(m->cfg.state_dir, "node.key", &key);
    }
    if (rc == 0) {
        rc = peer_tls_ctx_new(ca, cert, key, out);
    }
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
    }
    free(ca);
    free(cert);
    free(key);
    if (rc != 0) {
        log_err("links", "cannot make the TLS context of the peer links: "
                "%s", err_str(rc));
    }
    return rc;
}

/* Members and addresses. */

struct links_find {
    uint64_t raft_id;
    const struct shoal_node *node;
};

static int
links_find_cb(const void *obj, void *arg)
{
    const struct shoal_node *n = obj;
    struct links_find *f = arg;

    if (n->manager_status && n->manager_status->raft_id == f->raft_id) {
        f->node = n;
        return 1;
    }
    return 0;
}

const struct shoal_node *
links_node_of(const struct manager *m, uint64_t id)
{
    struct store_query all = {.by = STORE_BY_ALL};
    struct links_find f = {.raft_id = id};

    store_find(m->store, SHOAL_KIND_NODE, &all, links_find_cb, &f);
    return f.node;
}

static struct link *
links_get(const struct manager *m, uint64_t id)
{
    for (size_t k = 0; k < m->n_links; k++) {
        if (m->links[k]->raft_id == id) {
            return m->links[k];
        }
    }
    return NULL;
}

static void
links_drop(struct manager *m, size_t k)
{
    struct link *l = m->links[k];

    if (l->dialer) {
        peer_dialer_stop(l->dialer);
    }
    free(l);
    m->links[k] = m->links[--m->n_links];
}

void
links_sync(struct manager *m)
{
    const struct raft_config *cfg;
    struct link **grown;

    m->links_dirty = false;
    if (!m->net_live) {
        return;
    }
    cfg = raft_config(&m->raft);
    for (size_t k = 0; k < m->n_links; k++) {
        m->links[k]->seen = false;
    }
    for (unsigned i = 0; i < cfg->n_members; i++) {
        uint64_t id = cfg->members[i].id;
        const struct shoal_node *n;
        struct link *l;

        if (id == m->raft_id) {
            continue;
        }
        n = links_node_of(m, id);
        if (!n || !n->manager_status->addr || !n->manager_status->addr[0]) {
            continue; /* its node object is not applied here yet */
        }
        l = links_get(m, id);
        if (l && strcmp(l->addr, n->manager_status->addr) == 0) {
            l->seen = true;
            continue;
        }
        if (l) {
            /* It moved: dial the new address. */
            peer_dialer_stop(l->dialer);
            l->dialer = NULL;
            l->conn = NULL;
        } else {
            grown = realloc(m->links, (m->n_links + 1) * sizeof *grown);
            l = calloc(1, sizeof *l);
            if (!grown || !l) {
                free(l);
                if (grown) {
                    m->links = grown;
                }
                log_warn("links", "out of memory for a peer link: "
                         "raft_id=%016" PRIx64, id);
                m->links_dirty = true; /* tried again later */
                continue;
            }
            m->links = grown;
            m->links[m->n_links++] = l;
            l->raft_id = id;
        }
        snprintf(l->addr, sizeof l->addr, "%s", n->manager_status->addr);
        l->seen = true;
        if (peer_dial(&m->net, l->addr, l, &l->dialer) != 0) {
            log_warn("links", "cannot dial a member: raft_id=%016" PRIx64
                     " addr=%s", id, l->addr);
            l->dialer = NULL;
            m->links_dirty = true;
        } else {
            log_info("links", "dialing a member: raft_id=%016" PRIx64
                     " addr=%s", id, l->addr);
        }
    }
    for (size_t k = m->n_links; k-- > 0;) {
        if (!m->links[k]->seen) {
            log_info("links", "no longer a member, not dialed: raft_id=%016"
                     PRIx64, m->links[k]->raft_id);
            links_drop(m, k);
        }
    }
}

/* Sending. */

struct peer_conn *
links_conn_to(const struct manager *m, uint64_t id)
{
    struct link *l = links_get(m, id);
    struct link_in *in;

    if (l && l->conn) {
        return l->conn;
    }
    TAILQ_FOREACH(in, &m->links_in, entry) {
        if (in->raft_id == id) {
            return in->conn;
        }
    }
    return NULL;
}

void
links_send(struct manager *m, const struct raft_msg *msg)
{
    struct shoal_raft_entry *ents = NULL;
    struct shoal_raft_message w = {
        .type = (uint32_t)msg->type,
        .from = msg->from,
        .to = msg->to,
        .term = msg->term,
        .index = msg->index,
        .log_term = msg->log_term,
        .last_index = msg->last_index,
        .commit = msg->commit,
        .reject = msg->reject,
        .transfer = msg->transfer,
        .hint_index = msg->hint_index,
        .hint_term = msg->hint_term,
        .ctx = msg->ctx,
    };
    struct peer_conn *c = m->net_live ? links_conn_to(m, msg->to) : NULL;
    int rc;

    if (!c) {
        return; /* not connected: Raft sends again (paper §5.3) */
    }
    if (msg->type == RAFT_MSG_SNAPSHOT) {
        snapshot_send(m, msg); /* streamed across turns: snapshot.c */
        return;
    }
    if (msg->n_entries > 0) {
        ents = calloc(msg->n_entries, sizeof *ents);
        if (!ents) {
            return;
        }
        for (unsigned k = 0; k < msg->n_entries; k++) {
            const struct raft_entry *e = &msg->entries[k];

            /* Borrowed: the encoder only reads them. */
            ents[k] = (struct shoal_raft_entry){
                .term = e->term,
                .index = e->index,
                .type = (uint32_t)e->type,
                .data = {.data = e->data, .len = e->len},
            };
        }
        w.entries = ents;
        w.n_entries = msg->n_entries;
    }
    rc = peer_send(c, WIRE_MSG_RAFT, 0, 0, &wire_type_raft_message, &w);
    free(ents);
    if (rc != 0 && rc != ERR_AGAIN) {
        log_debug("links", "raft message not sent: to=%016" PRIx64 ": %s",
                  msg->to, err_str(rc));
    }
}

/* Receiving. */

bool
links_sender_ok(const struct manager *m, const struct peer_conn *c,
                uint64_t from)
{
    const struct peer_ident *who = peer_conn_ident(c);
    const struct shoal_node *n;

    if (peer_conn_anonymous(c) || !who->node_id[0]) {
        return false;
    }
    /* The raft id the certificate's node holds in the store; a node not
     * applied here yet (this manager is catching up, or it joins) is
     * taken at its word. */
    n = store_get(m->store, SHOAL_KIND_NODE, who->node_id);
    return !n || !n->manager_status || n->manager_status->raft_id == 0 ||
           n->manager_status->raft_id == from;
}

/* A Raft message from a peer: untrusted bytes, checked before the core
 * sees them; anything malformed closes that link only. */
static void
links_raft(struct manager *m, struct peer_conn *c, const uint8_t *body,
           size_t len)
{
    struct shoal_raft_message w = {0};
    struct raft_entry *ents = NULL;
    struct raft_msg msg;
    struct link_in *in = NULL;
    int rc;

    if (!peer_conn_dialer(c)) {
        in = peer_conn_udata(c);
    }
    rc = wire_decode(&wire_type_raft_message, &w, body, len);
    if (rc != 0 || w.type >= RAFT_MSG_N_TYPES || w.from == 0 ||
        w.from == m->raft_id || w.to != m->raft_id ||
        !links_sender_ok(m, c, w.from)) {
        wire_free(&wire_type_raft_message, &w);
        peer_conn_close(c, rc != 0 ? "malformed raft message"
                                   : "raft message with wrong ids");
        return;
    }
    if (w.type == RAFT_MSG_SNAPSHOT) {
        /* Snapshots come with their chunks (snapshot.c), never alone. */
        wire_free(&wire_type_raft_message, &w);
        return;
    }
    if (w.n_entries > 0) {
        ents = calloc(w.n_entries, sizeof *ents);
        if (!ents) {
            wire_free(&wire_type_raft_message, &w);
            return;
        }
    }
    for (size_t k = 0; k < w.n_entries; k++) {
        const struct shoal_raft_entry *e = &w.entries[k];

        if (e->type > RAFT_ENTRY_CONFIG || e->data.len > UINT32_MAX) {
            free(ents);
            wire_free(&wire_type_raft_message, &w);
            peer_conn_close(c, "raft entry of an unknown type");
            return;
        }
        ents[k] = (struct raft_entry){
            .term = e->term,
            .index = e->index,
            .type = (enum raft_entry_type)e->type,
            .len = (uint32_t)e->data.len,
            .data = e->data.data,
        };
    }
    msg = (struct raft_msg){
        .type = (enum raft_msg_type)w.type,
        .from = w.from,
        .to = w.to,
        .term = w.term,
        .index = w.index,
        .log_term = w.log_term,
        .last_index = w.last_index,
        .commit = w.commit,
        .reject = w.reject,
        .transfer = w.transfer,
        .hint_index = w.hint_index,
        .hint_term = w.hint_term,
        .ctx = w.ctx,
        .n_entries = (unsigned)w.n_entries,
        .entries = ents,
    };
    rc = raft_step(&m->raft, &msg);
    free(ents);
    wire_free(&wire_type_raft_message, &w);
    if (rc == ERR_PROTO) {
        peer_conn_close(c, "raft message refused by the core");
        return;
    }
    if (in && in->raft_id == 0) {
        in->raft_id = msg.from;
    }
    loop_defer(&m->loop, &m->sync_defer);
}

static void
links_frame_cb(struct peer_conn *c, const struct wire_hdr *h,
               const uint8_t *body, size_t len, void *arg)
{
    struct manager *m = arg;

    if (peer_conn_anonymous(c) || m->join) {
        /* A node without a certificate may only join; and a manager that
         * is joining talks to nothing else. */
        join_frame(m, c, h, body, len);
        return;
    }
    if (h->flags & WIRE_F_FORWARDED) {
        forward_serve(m, c, h, body, len);
        return;
    }
    switch (h->type) {
    case WIRE_MSG_RAFT:
        links_raft(m, c, body, len);
        break;
    case WIRE_MSG_JOIN:
        join_frame(m, c, h, body, len);
        break;
    case WIRE_MSG_SNAP_CHUNK:
    case WIRE_MSG_SNAP_ACK:
        snapshot_frame(m, c, h, body, len);
        break;
    default:
        /* The leader's answer to a forwarded request, or nothing we
         * asked for: an answer that came too late is dropped. */
        if (!(h->type & WIRE_REPLY) && h->type != WIRE_MSG_STATUS) {
            peer_conn_close(c, "message type not served between managers");
            return;
        }
        (void)forward_reply(m, c, h, body, len);
        break;
    }
}

/* Whether a node is a member this manager knows, or this manager knows
 * no node yet (it joined and is being caught up by the leader). */
static bool
links_known(const struct manager *m, const char *node_id)
{
    return store_get(m->store, SHOAL_KIND_NODE, node_id) ||
           !store_get(m->store, SHOAL_KIND_NODE, m->node_id);
}

static int
links_authorize_cb(struct peer_conn *c, const char *node_id, const char *role,
                   const char *cluster_id, const char **why, void *arg)
{
    struct manager *m = arg;

    if (peer_conn_anonymous(c)) {
        return 0; /* served the join requests only: links_frame_cb */
    }
    if (strcmp(role, ca_role_name(CA_ROLE_MANAGER)) != 0) {
        *why = "not a manager";
        return -EPERM;
    }
    if (m->join) {
        return 0; /* the CA is the one our token pinned */
    }
    if (strcmp(cluster_id, m->cluster_id) != 0) {
        *why = "another cluster";
        return -EPERM;
    }
    if (!links_known(m, node_id)) {
        *why = "node removed or unknown";
        return -EPERM;
    }
    return 0;
}

static void
links_up_cb(struct peer_conn *c, void *arg)
{
    struct manager *m = arg;
    struct peer_dialer *d = peer_conn_dialer(c);
    struct link_in *in;

    if (m->join) {
        join_up(m, c);
        return;
    }
    if (d) {
        struct link *l = peer_conn_udata(c);

        l->conn = c;
        log_info("links", "link up: raft_id=%016" PRIx64 " addr=%s",
                 l->raft_id, l->addr);
        return;
    }
    in = calloc(1, sizeof *in);
    if (!in) {
        peer_conn_close(c, "out of memory");
        return;
    }
    in->conn = c;
    peer_conn_set_udata(c, in);
    TAILQ_INSERT_TAIL(&m->links_in, in, entry);
}

static void
links_down_cb(struct peer_conn *c, int rc, const char *why, void *arg)
{
    struct manager *m = arg;

    join_down(m, c);
    forward_link_down(m, c);
    reads_conn_gone(m, NULL, c);
    if (m->join) {
        return;
    }
    if (peer_conn_dialer(c)) {
        struct link *l = peer_conn_udata(c);

        /* The link may have been dropped already (links_sync). */
        for (size_t k = 0; k < m->n_links; k++) {
            if (m->links[k] == l && l->conn == c) {
                l->conn = NULL;
                log_info("links", "link down: raft_id=%016" PRIx64
                         " addr=%s: %s (%s)", l->raft_id, l->addr, why,
                         err_str(rc));
            }
        }
        return;
    }
    if (peer_conn_udata(c)) {
        struct link_in *in = peer_conn_udata(c);

        TAILQ_REMOVE(&m->links_in, in, entry);
        free(in);
    }
}

static void
links_dial_fail_cb(struct peer_dialer *d, int rc, const char *why, void *arg)
{
    join_dial_fail(arg, d, rc, why);
}

int
links_init(struct manager *m, struct peer_tls_ctx *tls)
{
    static const struct peer_ops ops = {
        .authorize = links_authorize_cb,
        .on_frame = links_frame_cb,
        .on_up = links_up_cb,
        .on_down = links_down_cb,
        .on_dial_fail = links_dial_fail_cb,
    };
    int rc;

    TAILQ_INIT(&m->links_in);
    rc = peer_net_init(&m->net, &m->loop, tls, NULL, &ops, m);
    if (rc != 0) {
        peer_tls_ctx_free(tls);
        return rc;
    }
    m->net_live = true;
    return 0;
}

int
links_listen(struct manager *m)
{
    const char *addr = m->cfg.listen_remote;
    struct peer_tls_ctx *tls = NULL;
    int rc;

    rc = links_tls(m, &tls);
    if (rc != 0) {
        return rc;
    }
    if (m->net_live) {
        peer_net_set_tls(&m->net, tls);
    } else {
        rc = links_init(m, tls);
        if (rc != 0) {
            return rc;
        }
    }
    rc = peer_listen_flags(&m->net, addr, PEER_LISTEN_ANON, &m->listener);
    if (rc != 0) {
        log_err("links", "cannot listen for managers: addr=%s: %s", addr,
                err_str(rc));
        return rc;
    }
    if (m->cfg.advertise_remote) {
        snprintf(m->advertise, sizeof m->advertise, "%s",
                 m->cfg.advertise_remote);
    } else {
        /* The listen address, with the port the kernel picked. */
        const char *colon = strrchr(addr, ':');
        int host_len = colon ? (int)(colon - addr) : (int)strlen(addr);

        snprintf(m->advertise, sizeof m->advertise, "%.*s:%u", host_len,
                 addr, peer_listener_port(m->listener));
    }
    log_notice("links", "listening for managers: addr=%s advertise=%s",
               addr, m->advertise);
    return 0;
}

bool
links_reachable(const struct manager *m, uint64_t id)
{
    const struct link *l = links_get(m, id);

    return id == m->raft_id || (l && l->conn);
}

unsigned
links_count_up(const struct manager *m)
{
    unsigned n = 0;

    for (size_t k = 0; k < m->n_links; k++) {
        n += m->links[k]->conn != NULL;
    }
    return n;
}

void
links_fini(struct manager *m)
{
    struct link_in *in;

    if (m->net_live) {
        peer_net_fini(&m->net);
        m->net_live = false;
    }
    while ((in = TAILQ_FIRST(&m->links_in))) {
        TAILQ_REMOVE(&m->links_in, in, entry);
        free(in);
    }
    for (size_t k = 0; k < m->n_links; k++) {
        free(m->links[k]);
    }
    free(m->links);
    m->links = NULL;
    m->n_links = 0;
}
