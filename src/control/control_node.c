/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_node.c: the node and task requests (SWARMKIT.md 1.1 and 1.2):
 * get, update (the spec replaced whole) and remove of nodes; get and
 * remove of tasks.
 *
 * Removing a node is one proposal: the node's unfinished tasks become
 * ORPHANED, its id joins the cluster's certificate blacklist, and the
 * node goes. Every object in it carries the version the handler saw, so
 * the verdicts made here on their state (a ready node needs force) still
 * hold when the entry applies, or the entry fails with a conflict.
 */
#include "control/control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int
node_update(struct control *c, const struct shoal_update_node_request *r,
            struct control_out *out)
{
    const struct shoal_node *cur;
    struct shoal_node *n;
    int rc;

    if (!r->id || !*r->id || r->version == 0 || !r->spec) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: node id, version (1 or more) "
                            "and spec must be provided");
    }
    if (r->spec->desired_role > SHOAL_ROLE_MANAGER ||
        r->spec->membership > SHOAL_MEMBERSHIP_ACCEPTED ||
        r->spec->availability > SHOAL_AVAILABILITY_DRAIN) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: unknown role, membership or "
                            "availability");
    }
    cur = control_lookup(c, out, SHOAL_KIND_NODE, r->id);
    if (!cur || !control_version_ok(out, r->version, cur->meta.version)) {
        return 0;
    }

    n = control_dup(SHOAL_KIND_NODE, cur);
    if (!n) {
        return ERR_NOMEM;
    }
    wire_free(&wire_type_node_spec, &n->spec);
    if (wire_copy(&wire_type_node_spec, &n->spec, r->spec) != 0) {
        control_obj_free(SHOAL_KIND_NODE, n);
        return ERR_NOMEM;
    }
    n->meta.version = r->version;
    n->meta.updated_at = time_now_ns();
    rc = control_propose(out, SHOAL_ACTION_UPDATE, SHOAL_KIND_NODE, n);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_NODE, r->id);
    return control_precheck(c, out);
}

struct orphan_walk {
    struct control_out *out;
    const char *node_id;
    int64_t now;
    int rc;
};

static int
orphan_visit(const void *obj, void *arg)
{
    const struct shoal_task *t = obj;
    struct orphan_walk *ow = arg;
    struct shoal_task *copy;

    if (!t->node_id || strcmp(t->node_id, ow->node_id) != 0 ||
        t->status.state >= SHOAL_TASK_COMPLETE) {
        return 0;
    }
    copy = control_dup(SHOAL_KIND_TASK, t);
    if (!copy) {
        ow->rc = ERR_NOMEM;
        return 1;
    }
    free(copy->status.message);
    copy->status.message = str_dup("Task belonged to a node that has been "
                                   "deleted");
    copy->status.state = SHOAL_TASK_ORPHANED;
    copy->status.timestamp = ow->now;
    copy->meta.updated_at = ow->now;
    ow->rc = copy->status.message ? 0 : ERR_NOMEM;
    if (ow->rc != 0) {
        control_obj_free(SHOAL_KIND_TASK, copy);
        return 1;
    }
    ow->rc =
        control_propose(ow->out, SHOAL_ACTION_UPDATE, SHOAL_KIND_TASK, copy);
    return ow->rc != 0;
}

/* The node's id goes on the blacklist until its certificate expires; the
 * node object does not hold the certificate, so its expiry is taken as a
 * full certificate lifetime from now. */
static int
blacklist_node(struct control *c, const char *node_id, int64_t now,
               struct control_out *out)
{
    const struct shoal_cluster *cur;
    struct shoal_blacklisted_cert *grown;
    struct shoal_cluster *cl;
    int64_t life;

    cur = store_get_by_name(c->store, SHOAL_KIND_CLUSTER, "default");
    if (!cur) {
        control_fail(out, SHOAL_INTERNAL, "cluster default not found");
        return SHOAL_INTERNAL;
    }
    cl = control_dup(SHOAL_KIND_CLUSTER, cur);
    if (!cl) {
        return ERR_NOMEM;
    }
    control_blacklist_prune(cl, now);
    grown = realloc(cl->blacklisted_certificates,
                    (cl->n_blacklisted_certificates + 1) * sizeof *grown);
    if (!grown) {
        control_obj_free(SHOAL_KIND_CLUSTER, cl);
        return ERR_NOMEM;
    }
    cl->blacklisted_certificates = grown;
    life = cl->spec.ca_config.node_cert_expiry;
    life = life > 0 ? life : 90 * 24 * CONTROL_NS_PER_H;
    grown[cl->n_blacklisted_certificates].node_id = str_dup(node_id);
    grown[cl->n_blacklisted_certificates].expiry = now + life;
    cl->n_blacklisted_certificates++;
    if (!grown[cl->n_blacklisted_certificates - 1].node_id) {
        control_obj_free(SHOAL_KIND_CLUSTER, cl);
        return ERR_NOMEM;
    }
    cl->meta.updated_at = now;
    return control_propose(out, SHOAL_ACTION_UPDATE, SHOAL_KIND_CLUSTER, cl);
}

static int
node_remove(struct control *c, const struct shoal_id_request *r,
            struct control_out *out)
{
    struct store_query q = {.by = STORE_BY_NODE, .str = r->id};
    struct orphan_walk ow = {out, r->id, time_now_ns(), 0};
    const struct shoal_node *cur;
    struct shoal_node *gone;
    int rc;

    cur = control_lookup(c, out, SHOAL_KIND_NODE, r->id);
    if (!cur) {
        return 0;
    }
    if (cur->spec.desired_role == SHOAL_ROLE_MANAGER) {
        return control_fail(out, SHOAL_FAILED_PRECONDITION,
                            "node %s is a cluster manager and is a member of "
                            "the raft cluster. It must be demoted to worker "
                            "before removal",
                            r->id);
    }
    if (cur->status.state == SHOAL_NODE_READY && !r->force) {
        return control_fail(out, SHOAL_FAILED_PRECONDITION,
                            "node %s is not down and can't be removed", r->id);
    }

    rc = store_find(c->store, SHOAL_KIND_TASK, &q, orphan_visit, &ow);
    if (rc == ERR_PROTO) {
        q.by = STORE_BY_ALL;
        rc = store_find(c->store, SHOAL_KIND_TASK, &q, orphan_visit, &ow);
    }
    if (ow.rc != 0) {
        return ow.rc;
    }
    rc = blacklist_node(c, r->id, ow.now, out);
    if (rc != 0) {
        return rc == SHOAL_INTERNAL ? 0 : rc;
    }
    gone = calloc(1, sizeof *gone);
    if (!gone) {
        return ERR_NOMEM;
    }
    gone->id = str_dup(r->id);
    gone->meta.version = cur->meta.version;
    if (!gone->id) {
        free(gone);
        return ERR_NOMEM;
    }
    rc = control_propose(out, SHOAL_ACTION_REMOVE, SHOAL_KIND_NODE, gone);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_NONE, NULL);
    return control_precheck(c, out);
}

int
control_node_handle(struct control *c, uint16_t type, const void *req,
                    struct control_out *out)
{
    const struct shoal_id_request *ir = req;
    const void *obj;

    switch (type) {
    case WIRE_MSG_GET_NODE:
        obj = control_lookup(c, out, SHOAL_KIND_NODE, ir->id);
        return obj ? control_reply_copy(c, out, SHOAL_KIND_NODE, obj) : 0;
    case WIRE_MSG_UPDATE_NODE:
        return node_update(c, req, out);
    case WIRE_MSG_REMOVE_NODE:
        return node_remove(c, req, out);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED, "unknown node request %u",
                            (unsigned)type);
    }
}

int
control_task_handle(struct control *c, uint16_t type, const void *req,
                    struct control_out *out)
{
    const struct shoal_id_request *ir = req;
    const void *obj;

    switch (type) {
    case WIRE_MSG_GET_TASK:
        obj = control_lookup(c, out, SHOAL_KIND_TASK, ir->id);
        return obj ? control_reply_copy(c, out, SHOAL_KIND_TASK, obj) : 0;
    case WIRE_MSG_REMOVE_TASK:
        return control_remove_by_id(c, out, SHOAL_KIND_TASK, ir->id);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED, "unknown task request %u",
                            (unsigned)type);
    }
}
