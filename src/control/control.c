/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control.c: the dispatch of control requests, the helpers every handler
 * shares (refusals, proposals, replies), redaction and the bootstrap.
 *
 * A handler only reads the store; what it decides to write travels in
 * out->proposal, with ids and times already fixed. control_precheck()
 * runs the apply-time rules once before the commit so that most refusals
 * cost no log entry; the store runs them again at apply, where they are
 * authoritative.
 */
#include "control/control.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "control/control_int.h"

int
control_init(struct control *c, struct store *s, const struct control_env *env)
{
    memset(c, 0, sizeof *c);
    c->store = s;
    if (env) {
        c->env = *env;
    }
    return 0;
}

int
control_fail(struct control_out *out, int code, const char *fmt, ...)
{
    va_list ap;

    out->code = code;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    return 0;
}

int
control_verdict(struct store_verdict *v, int code, const char *fmt, ...)
{
    va_list ap;

    v->code = code;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    return code;
}

void *
control_dup(enum shoal_kind kind, const void *obj)
{
    const struct wire_type *t = wire_kind_type(kind);
    void *copy;

    ASSERT(t != NULL);
    copy = calloc(1, wire_type_size(t));
    if (!copy) {
        return NULL;
    }
    if (wire_copy(t, copy, obj) != 0) {
        free(copy);
        return NULL;
    }
    return copy;
}

void
control_obj_free(enum shoal_kind kind, void *obj)
{
    if (obj) {
        wire_free(wire_kind_type(kind), obj);
        free(obj);
    }
}

/* Put obj into the kind's slot of an object union. */
static void
object_set(struct shoal_object *o, enum shoal_kind kind, void *obj)
{
    switch (kind) {
    case SHOAL_KIND_NODE:
        o->node = obj;
        break;
    case SHOAL_KIND_SERVICE:
        o->service = obj;
        break;
    case SHOAL_KIND_TASK:
        o->task = obj;
        break;
    case SHOAL_KIND_NETWORK:
        o->network = obj;
        break;
    case SHOAL_KIND_CLUSTER:
        o->cluster = obj;
        break;
    case SHOAL_KIND_SECRET:
        o->secret = obj;
        break;
    case SHOAL_KIND_CONFIG:
        o->config = obj;
        break;
    default:
        ASSERT_UNREACHABLE();
    }
}

static int
proposal_append(struct shoal_proposal **pp, enum shoal_action action,
                enum shoal_kind kind, void *obj)
{
    struct shoal_proposal *p = *pp;
    struct shoal_store_action *grown;

    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p) {
            control_obj_free(kind, obj);
            return ERR_NOMEM;
        }
        *pp = p;
    }
    grown = realloc(p->actions, (p->n_actions + 1) * sizeof *grown);
    if (!grown) {
        control_obj_free(kind, obj);
        return ERR_NOMEM;
    }
    p->actions = grown;
    memset(&grown[p->n_actions], 0, sizeof *grown);
    grown[p->n_actions].action = action;
    object_set(&grown[p->n_actions].object, kind, obj);
    p->n_actions++;
    return 0;
}

int
control_propose(struct control_out *out, enum shoal_action action,
                enum shoal_kind kind, void *obj)
{
    return proposal_append(&out->proposal, action, kind, obj);
}

void
control_reply_with(struct control_out *out, enum shoal_kind kind,
                   const char *id)
{
    out->reply_kind = kind;
    snprintf(out->reply_id, sizeof out->reply_id, "%s", id ? id : "");
}

static void
proposal_drop(struct control_out *out)
{
    if (out->proposal) {
        wire_free(&wire_type_proposal, out->proposal);
        free(out->proposal);
        out->proposal = NULL;
    }
}

int
control_precheck(struct control *c, struct control_out *out)
{
    const struct shoal_proposal *p = out->proposal;

    for (size_t i = 0; p && i < p->n_actions; i++) {
        const struct shoal_store_action *a = &p->actions[i];
        struct store_verdict v = {0};
        enum shoal_kind kind;
        const void *old = NULL;
        void *obj;
        int code;

        kind = wire_object_kind(&a->object, &obj);
        ASSERT(kind != SHOAL_KIND_NONE);
        if (a->action != SHOAL_ACTION_CREATE) {
            old = store_get(c->store, kind, wire_object_id(kind, obj));
        }
        code = control_check(c, c->store, (enum shoal_action)a->action, kind,
                             obj, old, &v);
        if (code != SHOAL_OK) {
            proposal_drop(out);
            out->reply_kind = SHOAL_KIND_NONE;
            out->current_version = v.current_version;
            return control_fail(out, code, "%s", v.message);
        }
    }
    return 0;
}

void
control_fill_manager_status(struct control *c, struct shoal_node *n)
{
    struct shoal_manager_status *ms = NULL;

    /* The callback sees the stored status (raft id and address) and
     * adds what only the running manager knows. */
    if (c->env.manager_status) {
        c->env.manager_status(c->env.arg, n, &ms);
    }
    if (n->manager_status) {
        wire_free(&wire_type_manager_status, n->manager_status);
        free(n->manager_status);
    }
    n->manager_status = ms;
}

int
control_reply_copy(struct control *c, struct control_out *out,
                   enum shoal_kind kind, const void *obj)
{
    void *copy = control_dup(kind, obj);

    if (!copy) {
        return ERR_NOMEM;
    }
    control_redact(kind, copy);
    if (kind == SHOAL_KIND_NODE) {
        control_fill_manager_status(c, copy);
    }
    out->reply_type = wire_kind_type(kind);
    out->reply = copy;
    out->code = SHOAL_OK;
    return 0;
}

const void *
control_lookup(struct control *c, struct control_out *out, enum shoal_kind kind,
               const char *id)
{
    const void *obj;

    if (!id || !*id) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "invalid argument: %s id must be provided",
                     wire_kind_name(kind));
        return NULL;
    }
    obj = store_get(c->store, kind, id);
    if (!obj) {
        control_fail(out, SHOAL_NOT_FOUND, "%s %s not found",
                     wire_kind_name(kind), id);
    }
    return obj;
}

bool
control_version_ok(struct control_out *out, uint64_t version, uint64_t current)
{
    if (version == 0) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "invalid argument: a version (1 or more) must be "
                     "provided");
        return false;
    }
    if (version != current) {
        out->current_version = current;
        control_fail(out, SHOAL_CONFLICT,
                     "update out of sequence: version %llu is not the "
                     "current version %llu",
                     (unsigned long long)version, (unsigned long long)current);
        return false;
    }
    return true;
}

bool
control_labels_match(const struct shoal_map *filter,
                     const struct shoal_map *labels)
{
    for (size_t i = 0; i < filter->n; i++) {
        const char *want = filter->v[i].value;
        const char *have = wire_map_get(labels, filter->v[i].key);

        if (!have) {
            return false;
        }
        if (want && *want && strcmp(want, have) != 0) {
            return false;
        }
    }
    return true;
}

const char *
control_runtime(const struct shoal_task_spec *t)
{
    return t->container ? "container" : "";
}

/* A remove carries only the id: nothing else of the object is needed to
 * apply it, and version 0 leaves the version unchecked. */
int
control_remove_by_id(struct control *c, struct control_out *out,
                     enum shoal_kind kind, const char *id)
{
    size_t size = wire_type_size(wire_kind_type(kind));
    char **head; /* every kind's struct starts with its id (msgs.c) */
    int rc;

    if (!control_lookup(c, out, kind, id)) {
        return 0;
    }
    head = calloc(1, size);
    if (!head) {
        return ERR_NOMEM;
    }
    *head = str_dup(id);
    if (!*head) {
        free(head);
        return ERR_NOMEM;
    }
    rc = control_propose(out, SHOAL_ACTION_REMOVE, kind, head);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_NONE, NULL);
    return control_precheck(c, out);
}

/* Get and remove of kinds whose handlers need nothing special share the
 * request type struct shoal_id_request. */
int
control_handle(struct control *c, uint16_t type, const void *req,
               struct control_out *out)
{
    const struct wire_msg_info *info = wire_msg_info(type);

    if (!info || !req) {
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "message type %u is not a control request",
                            (unsigned)type);
    }
    if (info->request == &wire_type_list_request) {
        return control_list(c, type, req, out);
    }
    switch (info->kind) {
    case SHOAL_KIND_NODE:
        return control_node_handle(c, type, req, out);
    case SHOAL_KIND_TASK:
        return control_task_handle(c, type, req, out);
    case SHOAL_KIND_SERVICE:
        return control_service_handle(c, type, req, out);
    case SHOAL_KIND_NETWORK:
        return control_network_handle(c, type, req, out);
    case SHOAL_KIND_CLUSTER:
        return control_cluster_handle(c, type, req, out);
    case SHOAL_KIND_SECRET:
        return control_secret_handle(c, type, req, out);
    case SHOAL_KIND_CONFIG:
        return control_config_handle(c, type, req, out);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "%s is not served by the control API", info->name);
    }
}

int
control_reply_written(struct control *c, const struct store_verdict *v,
                      struct control_out *out)
{
    const void *obj;

    out->code = v->code;
    out->current_version = v->current_version;
    if (v->code != SHOAL_OK) {
        snprintf(out->message, sizeof out->message, "%s", v->message);
        return 0;
    }
    out->message[0] = '\0';
    if (out->reply_kind == SHOAL_KIND_NONE) {
        out->reply_type = NULL;
        out->reply = NULL;
        return 0;
    }
    obj = store_get(c->store, out->reply_kind, out->reply_id);
    if (!obj) {
        /* A later entry may have removed it before this reply was
         * built; the write itself succeeded. */
        return control_fail(out, SHOAL_NOT_FOUND, "%s %s not found",
                            wire_kind_name(out->reply_kind), out->reply_id);
    }
    return control_reply_copy(c, out, out->reply_kind, obj);
}

void
control_out_fini(struct control_out *out)
{
    if (out->reply) {
        if (out->reply_type) {
            wire_free(out->reply_type, out->reply);
        }
        free(out->reply);
    }
    proposal_drop(out);
    memset(out, 0, sizeof *out);
}

/*
 * Secret data and the CA key never leave the manager. The cluster also
 * shows SwarmKit's display defaults (address pool 10.0.0.0/8 with /24
 * subnets, VXLAN port 4789) when unset, as its redactClusters does; if
 * memory runs out the pool is left empty rather than fail the caller.
 */
void
control_redact(enum shoal_kind kind, void *obj)
{
    if (kind == SHOAL_KIND_SECRET) {
        struct shoal_secret *s = obj;

        free(s->spec.data.data);
        s->spec.data.data = NULL;
        s->spec.data.len = 0;
    } else if (kind == SHOAL_KIND_CLUSTER) {
        struct shoal_cluster *cl = obj;

        free(cl->root_ca.ca_key.data);
        cl->root_ca.ca_key.data = NULL;
        cl->root_ca.ca_key.len = 0;
        if (cl->default_address_pool.n == 0 &&
            wire_strs_push(&cl->default_address_pool, "10.0.0.0/8") == 0) {
            cl->subnet_size = 24;
        }
        if (cl->vxlan_udp_port == 0) {
            cl->vxlan_udp_port = 4789;
        }
    }
}

/* Bootstrap. */

/* Copy src (may be NULL or empty) into the empty dst. Returns 0 or
 * ERR_NOMEM. */
static int
bytes_copy(struct shoal_bytes *dst, const struct shoal_bytes *src)
{
    if (!src || src->len == 0) {
        return 0;
    }
    dst->data = malloc(src->len);
    if (!dst->data) {
        return ERR_NOMEM;
    }
    memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    return 0;
}

static int
bootstrap_cluster(struct control *c, int64_t now, struct shoal_cluster **out)
{
    struct shoal_cluster *cl = calloc(1, sizeof *cl);
    char token[CONTROL_TOKEN_LEN + 1];
    int rc = ERR_NOMEM;

    if (!cl) {
        return ERR_NOMEM;
    }
    cl->id = str_dup(c->env.cluster_id);
    cl->meta.created_at = now;
    cl->meta.updated_at = now;
    if (!cl->id || control_cluster_default_spec(&cl->spec) != 0 ||
        bytes_copy(&cl->root_ca.ca_cert, c->env.ca_cert) != 0 ||
        bytes_copy(&cl->root_ca.ca_key, c->env.ca_key) != 0) {
        goto fail;
    }
    rc = control_join_token(cl, cl->id, token);
    if (rc != 0) {
        goto fail;
    }
    cl->root_ca.join_tokens.worker = str_dup(token);
    rc = control_join_token(cl, cl->id, token);
    if (rc != 0) {
        goto fail;
    }
    cl->root_ca.join_tokens.manager = str_dup(token);
    rc = ERR_NOMEM;
    if (!cl->root_ca.join_tokens.worker || !cl->root_ca.join_tokens.manager) {
        goto fail;
    }
    *out = cl;
    return 0;

fail:
    control_obj_free(SHOAL_KIND_CLUSTER, cl);
    return rc;
}

static struct shoal_node *
manager_node(const char *node_id, const char *hostname, int64_t now)
{
    struct shoal_node *n = calloc(1, sizeof *n);

    if (!n) {
        return NULL;
    }
    n->id = str_dup(node_id);
    n->meta.created_at = now;
    n->meta.updated_at = now;
    n->spec.desired_role = SHOAL_ROLE_MANAGER;
    n->spec.membership = SHOAL_MEMBERSHIP_ACCEPTED;
    n->spec.availability = SHOAL_AVAILABILITY_ACTIVE;
    n->description.hostname = str_dup(hostname ? hostname : "");
    n->status.state = SHOAL_NODE_READY;
    n->role = SHOAL_ROLE_MANAGER;
    if (!n->id || !n->description.hostname) {
        control_obj_free(SHOAL_KIND_NODE, n);
        return NULL;
    }
    return n;
}

/*
 * The ingress network as SwarmKit's allocator makes it: spec.ingress,
 * the overlay driver and the subnet 10.255.0.0/16. It carries no
 * predefined label (SWARMKIT.md 1.4): it may be removed while no service
 * publishes an ingress port, and re-created by a user.
 */
static struct shoal_network *
bootstrap_ingress(int64_t now)
{
    struct shoal_network *n = calloc(1, sizeof *n);
    char id[ID_LEN + 1];

    if (!n || id_new(id) != 0) {
        free(n);
        return NULL;
    }
    n->id = str_dup(id);
    n->meta.created_at = now;
    n->meta.updated_at = now;
    n->spec.annotations.name = str_dup("ingress");
    n->spec.ingress = true;
    n->spec.driver_config = calloc(1, sizeof *n->spec.driver_config);
    n->spec.ipam = calloc(1, sizeof *n->spec.ipam);
    if (!n->id || !n->spec.annotations.name || !n->spec.driver_config ||
        !n->spec.ipam) {
        goto fail;
    }
    n->spec.driver_config->name = str_dup("overlay");
    n->spec.ipam->configs = calloc(1, sizeof *n->spec.ipam->configs);
    if (!n->spec.driver_config->name || !n->spec.ipam->configs) {
        goto fail;
    }
    n->spec.ipam->n_configs = 1;
    n->spec.ipam->configs[0].subnet = str_dup("10.255.0.0/16");
    if (!n->spec.ipam->configs[0].subnet) {
        goto fail;
    }
    return n;

fail:
    control_obj_free(SHOAL_KIND_NETWORK, n);
    return NULL;
}

int
control_bootstrap(struct control *c, const char *hostname,
                  struct shoal_proposal **out)
{
    struct shoal_proposal *p = NULL;
    struct shoal_cluster *cl = NULL;
    struct shoal_node *node;
    struct shoal_network *net;
    int64_t now = time_now_ns();
    int rc;

    rc = bootstrap_cluster(c, now, &cl);
    if (rc != 0) {
        return rc;
    }
    rc = proposal_append(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_CLUSTER, cl);
    if (rc != 0) {
        goto fail;
    }
    rc = ERR_NOMEM;
    node = manager_node(c->env.node_id, hostname, now);
    if (!node) {
        goto fail;
    }
    rc = proposal_append(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE, node);
    if (rc != 0) {
        goto fail;
    }
    rc = ERR_NOMEM;
    net = bootstrap_ingress(now);
    if (!net) {
        goto fail;
    }
    rc = proposal_append(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK, net);
    if (rc != 0) {
        goto fail;
    }
    *out = p;
    return 0;

fail:
    if (p) {
        wire_free(&wire_type_proposal, p);
        free(p);
    }
    return rc;
}

int
control_manager_node(struct control *c, const char *node_id,
                     const char *hostname, uint64_t raft_id,
                     const char *addr, struct shoal_proposal **out)
{
    const struct shoal_node *old = store_get(c->store, SHOAL_KIND_NODE,
                                             node_id);
    struct shoal_proposal *p = NULL;
    enum shoal_action action = SHOAL_ACTION_UPDATE;
    struct shoal_node *n;
    int64_t now = time_now_ns();
    int rc;

    if (old) {
        n = control_dup(SHOAL_KIND_NODE, old);
    } else {
        n = manager_node(node_id, hostname, now);
        action = SHOAL_ACTION_CREATE;
    }
    if (!n) {
        return ERR_NOMEM;
    }
    if (n->manager_status) {
        wire_free(&wire_type_manager_status, n->manager_status);
        free(n->manager_status);
    }
    n->manager_status = calloc(1, sizeof *n->manager_status);
    if (!n->manager_status ||
        !(n->manager_status->addr = str_dup(addr ? addr : ""))) {
        control_obj_free(SHOAL_KIND_NODE, n);
        return ERR_NOMEM;
    }
    n->manager_status->raft_id = raft_id;
    n->meta.updated_at = now;
    rc = proposal_append(&p, action, SHOAL_KIND_NODE, n);
    if (rc != 0) {
        return rc;
    }
    *out = p;
    return 0;
}
