/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * cmd_node.c: `shoalctl node ...` and `shoalctl cluster ...`.
 *
 * Every change reads the object, edits a copy of its spec and sends it
 * with the version read (optimistic concurrency: a concurrent writer makes
 * the daemon answer with a conflict, exit 7). Node state changes that
 * would do nothing are refused with a message, as swarmctl does.
 */
#include "ctl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static const struct ctl_opt no_opts[] = {{NULL, 0, NULL, NULL}};

/* Nodes. */

static const char *
manager_status(const struct shoal_node *n)
{
    static const char *const reach[] = {"unknown", "unreachable",
                                        "reachable"};

    if (!n->manager_status) {
        return "";
    }
    if (n->manager_status->leader) {
        return "leader";
    }
    return n->manager_status->reachability < ARRAY_LEN(reach)
               ? reach[n->manager_status->reachability]
               : "unknown";
}

static void
node_row(const void *ctx, const void *obj, char **cells)
{
    const struct shoal_node *n = obj;

    (void)ctx;
    cells[0] = str_dup(n->id);
    cells[1] = str_dup(ctl_object_name(SHOAL_KIND_NODE, n));
    cells[2] = str_dup(n->spec.membership == SHOAL_MEMBERSHIP_ACCEPTED
                           ? "accepted"
                           : "pending");
    cells[3] = str_dup(ctl_node_state_name(n->status.state));
    cells[4] = str_dup(ctl_availability_name(n->spec.availability));
    cells[5] = str_dup(ctl_role_name(n->role));
    cells[6] = str_dup(manager_status(n));
}

static int
node_ls(struct ctl *ctl, const struct ctl_args *a)
{
    static const char *const cols[] = {"ID", "NAME", "MEMBERSHIP", "STATUS",
                                       "AVAILABILITY", "ROLE",
                                       "MANAGER STATUS"};
    struct ctl_columns c = {cols, ARRAY_LEN(cols), node_row, NULL};

    (void)a;
    return ctl_cmd_list(ctl, SHOAL_KIND_NODE, NULL, &c);
}

static int
node_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_NODE, a);
}

static int
node_rm(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_remove(ctl, SHOAL_KIND_NODE, a, ctl_flag(a, "force"));
}

static int
node_send(struct ctl *ctl, struct shoal_node *n)
{
    struct shoal_update_node_request req = {
        .id = n->id,
        .version = n->meta.version,
        .spec = &n->spec,
    };
    struct shoal_node out = {0};
    int rc = ctl_call(ctl, WIRE_MSG_UPDATE_NODE, &req, &out);

    wire_free(&wire_type_node, &out);
    return rc == 0 ? 0 : ctl_fail(ctl, rc);
}

/* Set a spec field (availability or desired role) of node arg to v;
 * what names the value for the "already" message. */
static int
node_set(struct ctl *ctl, const char *arg, bool role, uint32_t v,
         const char *what)
{
    struct shoal_node n = {0};
    uint32_t *field;
    int rc = ctl_lookup(ctl, SHOAL_KIND_NODE, arg, &n);

    if (rc != 0) {
        return rc;
    }
    field = role ? &n.spec.desired_role : &n.spec.availability;
    if (*field == v) {
        rc = ctl_error(CTL_EXIT_ERROR, "node %s is already %s", arg, what);
    } else {
        *field = v;
        rc = node_send(ctl, &n);
    }
    if (rc == 0) {
        printf("%s\n", n.id);
    }
    wire_free(&wire_type_node, &n);
    return rc;
}

static int
node_activate(struct ctl *ctl, const struct ctl_args *a)
{
    return node_set(ctl, a->pos[0], false, SHOAL_AVAILABILITY_ACTIVE,
                    "active");
}

static int
node_pause(struct ctl *ctl, const struct ctl_args *a)
{
    return node_set(ctl, a->pos[0], false, SHOAL_AVAILABILITY_PAUSE,
                    "paused");
}

static int
node_drain(struct ctl *ctl, const struct ctl_args *a)
{
    return node_set(ctl, a->pos[0], false, SHOAL_AVAILABILITY_DRAIN,
                    "drained");
}

static int
node_promote(struct ctl *ctl, const struct ctl_args *a)
{
    return node_set(ctl, a->pos[0], true, SHOAL_ROLE_MANAGER, "a manager");
}

static int
node_demote(struct ctl *ctl, const struct ctl_args *a)
{
    return node_set(ctl, a->pos[0], true, SHOAL_ROLE_WORKER, "a worker");
}

/* Parse value among names (index = enum value). */
static int
parse_enum(const char *v, const char *const *names, size_t n, uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (uint32_t)i;
            return 0;
        }
    }
    return -1;
}

static int
node_update_flags(const struct ctl_args *a, struct shoal_node_spec *s)
{
    static const char *const avail[] = {"active", "pause", "drain"};
    static const char *const roles[] = {"worker", "manager"};
    const char *v = ctl_arg(a, "availability");

    if (v && parse_enum(v, avail, 3, &s->availability) != 0) {
        return ctl_usage(a->cmd, "invalid --availability \"%s\": use "
                                 "active, pause or drain", v);
    }
    v = ctl_arg(a, "role");
    if (v && parse_enum(v, roles, 2, &s->desired_role) != 0) {
        return ctl_usage(a->cmd, "invalid --role \"%s\": use worker or "
                                 "manager", v);
    }
    return ctl_apply_labels(a, "label-add", "label-rm",
                            &s->annotations.labels);
}

static int
node_update(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_node n = {0};
    struct shoal_node_spec before = {0};
    int rc = ctl_lookup(ctl, SHOAL_KIND_NODE, a->pos[0], &n);

    if (rc != 0) {
        return rc;
    }
    rc = wire_copy(&wire_type_node_spec, &before, &n.spec) == 0
             ? node_update_flags(a, &n.spec)
             : ctl_error(CTL_EXIT_ERROR, "out of memory");
    if (rc == 0 && !wire_equal(&wire_type_node_spec, &before, &n.spec)) {
        rc = node_send(ctl, &n);
    }
    if (rc == 0) {
        printf("%s\n", n.id);
    }
    wire_free(&wire_type_node_spec, &before);
    wire_free(&wire_type_node, &n);
    return rc;
}

static const struct ctl_opt node_update_opts[] = {
    {"label-add", 0, "KEY=VALUE", "add or replace a node label"},
    {"label-rm", 0, "KEY", "remove a node label"},
    {"availability", 0, "AVAIL", "active, pause or drain"},
    {"role", 0, "ROLE", "worker or manager"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt node_rm_opts[] = {
    {"force", 'f', NULL, "remove a node that is not down"},
    {NULL, 0, NULL, NULL},
};

#define NODE_ONE(verb, fn, text)                                           \
    {"node", verb, NULL, "NODE", 1, 1, text, no_opts, fn}

const struct ctl_cmd ctl_cmds_node[] = {
    {"node", "ls", "list", "", 0, 0, "list nodes", no_opts, node_ls},
    NODE_ONE("inspect", node_inspect, "print a node as JSON"),
    NODE_ONE("activate", node_activate, "let a node take tasks"),
    NODE_ONE("pause", node_pause, "stop giving a node new tasks"),
    NODE_ONE("drain", node_drain, "move the tasks off a node"),
    NODE_ONE("promote", node_promote, "make a node a manager"),
    NODE_ONE("demote", node_demote, "make a manager a worker"),
    {"node", "update", NULL, "NODE", 1, 1, "change a node's spec",
     node_update_opts, node_update},
    {"node", "rm", "remove", "NODE [NODE...]", 1, SIZE_MAX, "remove nodes",
     node_rm_opts, node_rm},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};

/* The cluster. */

static void
cluster_row(const void *ctx, const void *obj, char **cells)
{
    const struct shoal_cluster *c = obj;
    char created[32];

    (void)ctx;
    ctl_format_time(c->meta.created_at, created, sizeof created);
    cells[0] = str_dup(c->id);
    cells[1] = str_dup(ctl_object_name(SHOAL_KIND_CLUSTER, c));
    cells[2] = str_dup(created);
}

static int
cluster_ls(struct ctl *ctl, const struct ctl_args *a)
{
    static const char *const cols[] = {"ID", "NAME", "CREATED"};
    struct ctl_columns c = {cols, ARRAY_LEN(cols), cluster_row, NULL};

    (void)a;
    return ctl_cmd_list(ctl, SHOAL_KIND_CLUSTER, NULL, &c);
}

static int
cluster_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_CLUSTER, a);
}

/* Apply the cluster update flags to the request. */
static int
cluster_flags(const struct ctl_args *a, struct shoal_update_cluster_request *r)
{
    struct shoal_cluster_spec *s = r->spec;
    const char *v;
    size_t it = 0;

    while ((v = ctl_arg_next(a, "rotate-join-token", &it))) {
        if (strcmp(v, "worker") == 0) {
            r->rotate_worker_token = true;
        } else if (strcmp(v, "manager") == 0) {
            r->rotate_manager_token = true;
        } else {
            return ctl_usage(a->cmd, "invalid --rotate-join-token \"%s\": "
                                     "use worker or manager", v);
        }
    }
    v = ctl_arg(a, "taskhistory");
    if (v && ctl_parse_i64(v, &s->orchestration.task_history_retention_limit)
                 != 0) {
        return ctl_usage(a->cmd, "invalid --taskhistory \"%s\"", v);
    }
    v = ctl_arg(a, "certexpiry");
    if (v && ctl_parse_duration(v, &s->ca_config.node_cert_expiry) != 0) {
        return ctl_usage(a->cmd, "invalid --certexpiry \"%s\": expected a "
                                 "duration like 2160h", v);
    }
    v = ctl_arg(a, "heartbeatperiod");
    if (v && ctl_parse_duration(v, &s->dispatcher.heartbeat_period) != 0) {
        return ctl_usage(a->cmd, "invalid --heartbeatperiod \"%s\": "
                                 "expected a duration like 5s", v);
    }
    return 0;
}

static int
cluster_send(struct ctl *ctl, struct shoal_cluster *c,
             struct shoal_update_cluster_request *req,
             struct shoal_cluster *out)
{
    int rc;

    req->id = c->id;
    req->version = c->meta.version;
    req->spec = &c->spec;
    rc = ctl_call(ctl, WIRE_MSG_UPDATE_CLUSTER, req, out);
    return rc == 0 ? 0 : ctl_fail(ctl, rc);
}

static int
cluster_update(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_update_cluster_request req = {0};
    struct shoal_cluster c = {0}, out = {0};
    int rc = ctl_lookup(ctl, SHOAL_KIND_CLUSTER, a->pos[0], &c);

    if (rc != 0) {
        return rc;
    }
    req.spec = &c.spec;
    rc = cluster_flags(a, &req);
    if (rc == 0) {
        rc = cluster_send(ctl, &c, &req, &out);
    }
    if (rc == 0) {
        printf("%s\n", c.id);
    }
    wire_free(&wire_type_cluster, &out);
    wire_free(&wire_type_cluster, &c);
    return rc;
}

/* The one cluster: "default". */
static int
the_cluster(struct ctl *ctl, struct shoal_cluster *c)
{
    return ctl_lookup(ctl, SHOAL_KIND_CLUSTER, "default", c);
}

static int
cluster_join_token(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_update_cluster_request req = {0};
    struct shoal_cluster c = {0}, out = {0};
    bool manager = strcmp(a->pos[0], "manager") == 0;
    const char *token;
    int rc;

    if (!manager && strcmp(a->pos[0], "worker") != 0) {
        return ctl_usage(a->cmd, "invalid role \"%s\": use worker or "
                                 "manager", a->pos[0]);
    }
    rc = the_cluster(ctl, &c);
    if (rc == 0 && ctl_flag(a, "rotate")) {
        req.rotate_manager_token = manager;
        req.rotate_worker_token = !manager;
        rc = cluster_send(ctl, &c, &req, &out);
        if (rc == 0) {
            wire_copy(&wire_type_cluster, &c, &out);
        }
    }
    if (rc == 0) {
        token = manager ? c.root_ca.join_tokens.manager
                        : c.root_ca.join_tokens.worker;
        if (ctl->quiet) {
            printf("%s\n", token ? token : "");
        } else {
            printf("To add a %s to this cluster, use the join token:\n\n"
                   "    %s\n", a->pos[0], token ? token : "(none)");
        }
    }
    wire_free(&wire_type_cluster, &out);
    wire_free(&wire_type_cluster, &c);
    return rc;
}

static const struct ctl_opt cluster_update_opts[] = {
    {"rotate-join-token", 0, "ROLE", "new join token for worker or manager"},
    {"taskhistory", 0, "N", "tasks kept per slot"},
    {"certexpiry", 0, "DURATION", "node certificate validity, e.g. 2160h"},
    {"heartbeatperiod", 0, "DURATION", "node heartbeat period, e.g. 5s"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt join_token_opts[] = {
    {"rotate", 0, NULL, "replace the token first"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_cluster[] = {
    {"cluster", "ls", "list", "", 0, 0, "list clusters", no_opts,
     cluster_ls},
    {"cluster", "inspect", NULL, "CLUSTER", 1, 1,
     "print the cluster as JSON", no_opts, cluster_inspect},
    {"cluster", "update", NULL, "CLUSTER", 1, 1,
     "change the cluster's settings", cluster_update_opts, cluster_update},
    {"cluster", "join-token", NULL, "worker|manager", 1, 1,
     "print (or rotate) a join token", join_token_opts, cluster_join_token},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
