/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_check.c: the rules of the control API that depend on other
 * objects, run by the store for each action of an entry at apply time
 * (and once before the commit by control_precheck()).
 *
 * Every manager applies the same entries to the same state, so these
 * functions must reach the same verdict everywhere: they read only the
 * store and the action, never a clock or the random source, and walk the
 * store in its stable order so that messages naming "the first" object
 * agree too.
 */
#include "control/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "control/control_int.h"

/* Walk every object of kind, in the store's stable order. */
static int
walk_all(const struct store *s, enum shoal_kind kind, store_visit_cb *cb,
         void *arg)
{
    struct store_query q = {.by = STORE_BY_ALL};

    return store_find(s, kind, &q, cb, arg);
}

static int
find_ingress_visit(const void *obj, void *arg)
{
    const struct shoal_network *n = obj;

    if (n->spec.ingress) {
        *(const struct shoal_network **)arg = n;
        return 1;
    }
    return 0;
}

static const struct shoal_network *
find_ingress(const struct store *s)
{
    const struct shoal_network *found = NULL;

    walk_all(s, SHOAL_KIND_NETWORK, find_ingress_visit, &found);
    return found;
}

static bool
needs_ingress(const struct shoal_service_spec *spec)
{
    for (size_t i = 0; spec->endpoint && i < spec->endpoint->n_ports; i++) {
        if (spec->endpoint->ports[i].publish_mode == SHOAL_PUBLISH_INGRESS) {
            return true;
        }
    }
    return false;
}

/* Port conflicts (SWARMKIT.md 1.3 step 8). */

struct port_scan {
    const struct shoal_service *svc; /* the service being written */
    struct store_verdict *v;
};

/* Whether the new spec publishes (protocol, port) in publish mode. */
static bool
spec_publishes(const struct shoal_service *svc, uint32_t protocol,
               uint32_t port, uint32_t mode)
{
    const struct shoal_endpoint_spec *ep = svc->spec.endpoint;

    for (size_t i = 0; ep && i < ep->n_ports; i++) {
        if (ep->ports[i].published_port == port &&
            ep->ports[i].protocol == protocol &&
            ep->ports[i].publish_mode == mode) {
            return true;
        }
    }
    return false;
}

/* An existing port conflicts when the new spec publishes the same
 * (protocol, port) through ingress, or when the existing one is ingress
 * and the new one is published in host mode; two host-mode ports may
 * share a number (the scheduler keeps them on different nodes). */
static int
port_in_use(const struct port_scan *ps, const struct shoal_port_config *pc,
            const struct shoal_service *other)
{
    uint32_t proto = pc->protocol, port = pc->published_port;

    if (port == 0) {
        return SHOAL_OK;
    }
    if (pc->publish_mode == SHOAL_PUBLISH_HOST) {
        if (spec_publishes(ps->svc, proto, port, SHOAL_PUBLISH_INGRESS)) {
            return control_verdict(ps->v, SHOAL_INVALID_ARGUMENT,
                                   "port '%u' is already in use by service "
                                   "'%s' (%s) as a host-published port",
                                   port, other->spec.annotations.name,
                                   other->id);
        }
        return SHOAL_OK;
    }
    if (spec_publishes(ps->svc, proto, port, SHOAL_PUBLISH_INGRESS) ||
        spec_publishes(ps->svc, proto, port, SHOAL_PUBLISH_HOST)) {
        return control_verdict(ps->v, SHOAL_INVALID_ARGUMENT,
                               "port '%u' is already in use by service '%s' "
                               "(%s) as an ingress port",
                               port, other->spec.annotations.name, other->id);
    }
    return SHOAL_OK;
}

static int
port_visit(const void *obj, void *arg)
{
    const struct shoal_service *other = obj;
    const struct port_scan *ps = arg;
    const struct shoal_endpoint_spec *ep = other->spec.endpoint;

    if (strcmp(other->id, ps->svc->id) == 0) {
        return 0;
    }
    for (size_t i = 0; ep && i < ep->n_ports; i++) {
        if (port_in_use(ps, &ep->ports[i], other) != SHOAL_OK) {
            return 1;
        }
    }
    for (size_t i = 0; other->endpoint && i < other->endpoint->n_ports; i++) {
        if (port_in_use(ps, &other->endpoint->ports[i], other) != SHOAL_OK) {
            return 1;
        }
    }
    return 0;
}

static bool
endpoint_changed(const struct shoal_service *svc,
                 const struct shoal_service *old)
{
    const struct shoal_endpoint_spec *a = svc->spec.endpoint;
    const struct shoal_endpoint_spec *b = old->spec.endpoint;

    if (!a || !b) {
        return a != b;
    }
    return !wire_equal(&wire_type_endpoint_spec, a, b);
}

/* Secrets and configs a spec references must exist with the same name. */

/*
 * Whether two names are set and equal. An entry from the log or an object
 * loaded from disk may lack a name (the store allows it), and strcmp() of
 * NULL is undefined: found by tests/fuzz/fuzz_wal (regress/wal/).
 */
static bool
same_name(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int
refs_exist(const struct store *s, const struct shoal_container_spec *cs,
           struct store_verdict *v)
{
    char list[sizeof v->message];
    size_t used = 0, missing = 0;

    list[0] = '\0';
    for (size_t i = 0; i < cs->n_secrets; i++) {
        const struct shoal_secret_ref *ref = &cs->secrets[i];
        const struct shoal_secret *sec;

        sec = store_get(s, SHOAL_KIND_SECRET, ref->secret_id);
        if (sec && same_name(sec->spec.annotations.name, ref->secret_name)) {
            continue;
        }
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                 missing ? ", " : "",
                                 ref->secret_name ? ref->secret_name : "");
        used = used < sizeof list ? used : sizeof list - 1;
        missing++;
    }
    if (missing) {
        return control_verdict(v, SHOAL_INVALID_ARGUMENT, "%s not found: %s",
                               missing == 1 ? "secret" : "secrets", list);
    }
    for (size_t i = 0; i < cs->n_configs; i++) {
        const struct shoal_config_ref *ref = &cs->configs[i];
        const struct shoal_config *cf;

        cf = store_get(s, SHOAL_KIND_CONFIG, ref->config_id);
        if (cf && same_name(cf->spec.annotations.name, ref->config_name)) {
            continue;
        }
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                 missing ? ", " : "",
                                 ref->config_name ? ref->config_name : "");
        used = used < sizeof list ? used : sizeof list - 1;
        missing++;
    }
    if (missing) {
        return control_verdict(v, SHOAL_INVALID_ARGUMENT, "%s not found: %s",
                               missing == 1 ? "config" : "configs", list);
    }
    return SHOAL_OK;
}

/* The network a task attachment names: its target is an id, or failing
 * that a name (clients that did not resolve it). */
static const struct shoal_network *
attachment_network(const struct store *s, const char *target)
{
    const struct shoal_network *n;

    if (!target || !*target) {
        return NULL;
    }
    n = store_get(s, SHOAL_KIND_NETWORK, target);
    return n ? n : store_get_by_name(s, SHOAL_KIND_NETWORK, target);
}

static int
service_check(const struct store *s, const struct shoal_service *svc,
              const struct shoal_service *old, struct store_verdict *v)
{
    const struct shoal_task_spec *task = &svc->spec.task;
    struct port_scan ps = {svc, v};

    for (size_t i = 0; i < task->n_networks; i++) {
        const struct shoal_network *n;

        n = attachment_network(s, task->networks[i].target);
        if (n && n->spec.ingress) {
            return control_verdict(v, SHOAL_INVALID_ARGUMENT,
                                   "Service cannot be explicitly attached to "
                                   "the ingress network \"%s\"",
                                   n->spec.annotations.name);
        }
    }
    if ((!old || endpoint_changed(svc, old)) &&
        walk_all(s, SHOAL_KIND_SERVICE, port_visit, &ps) != 0) {
        return v->code;
    }
    if (needs_ingress(&svc->spec) && !find_ingress(s)) {
        return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                               "service needs ingress network, but no "
                               "ingress network is present");
    }
    return task->container ? refs_exist(s, task->container, v) : SHOAL_OK;
}

/* Networks in use. */

struct net_use {
    const struct shoal_network *net;
    const char *user; /* name of the first service, or id of the task */
};

static bool
attaches(const struct shoal_task_spec *t, const struct shoal_network *n)
{
    for (size_t i = 0; i < t->n_networks; i++) {
        const char *target = t->networks[i].target;

        if (target && (strcmp(target, n->id) == 0 ||
                       (n->spec.annotations.name &&
                        strcmp(target, n->spec.annotations.name) == 0))) {
            return true;
        }
    }
    return false;
}

static int
net_service_visit(const void *obj, void *arg)
{
    const struct shoal_service *svc = obj;
    struct net_use *nu = arg;

    if (attaches(&svc->spec.task, nu->net)) {
        /* Named as people named it; ids are for scripts. */
        nu->user = svc->spec.annotations.name ? svc->spec.annotations.name
                                              : svc->id;
        return 1;
    }
    return 0;
}

/* A task holds the network while it is meant to run and has not ended. */
static int
net_task_visit(const void *obj, void *arg)
{
    const struct shoal_task *t = obj;
    struct net_use *nu = arg;

    if (t->desired_state <= SHOAL_TASK_RUNNING &&
        t->status.state <= SHOAL_TASK_RUNNING && attaches(&t->spec, nu->net)) {
        nu->user = t->id;
        return 1;
    }
    return 0;
}

static int
ingress_user_visit(const void *obj, void *arg)
{
    const struct shoal_service *svc = obj;

    if (needs_ingress(&svc->spec)) {
        *(const char **)arg = svc->spec.annotations.name
                                  ? svc->spec.annotations.name
                                  : svc->id;
        return 1;
    }
    return 0;
}

static int
network_remove_check(const struct store *s, const struct shoal_network *n,
                     struct store_verdict *v)
{
    const char *predef =
        wire_map_get(&n->spec.annotations.labels, CONTROL_PREDEFINED_LABEL);
    struct net_use nu = {n, NULL};

    if (predef && strcmp(predef, "true") == 0) {
        return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                               "network %s (%s) is a swarm predefined "
                               "network and cannot be removed",
                               n->id, n->spec.annotations.name);
    }
    if (n->spec.ingress) {
        const char *user = NULL;

        walk_all(s, SHOAL_KIND_SERVICE, ingress_user_visit, &user);
        if (user) {
            return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                                   "ingress network cannot be removed "
                                   "because service '%s' depends on it",
                                   user);
        }
        return SHOAL_OK;
    }
    walk_all(s, SHOAL_KIND_SERVICE, net_service_visit, &nu);
    if (nu.user) {
        return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                               "network '%s' is in use by service '%s'",
                               n->spec.annotations.name, nu.user);
    }
    walk_all(s, SHOAL_KIND_TASK, net_task_visit, &nu);
    if (nu.user) {
        return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                               "network '%s' is in use by task %s",
                               n->spec.annotations.name, nu.user);
    }
    return SHOAL_OK;
}

static int
network_create_check(const struct store *s, const struct shoal_network *n,
                     struct store_verdict *v)
{
    const struct shoal_network *ingress;

    if (n->spec.ingress && (ingress = find_ingress(s)) != NULL) {
        return control_verdict(v, SHOAL_ALREADY_EXISTS,
                               "ingress network (%s) is already present",
                               ingress->id);
    }
    return SHOAL_OK;
}

/* Secrets and configs in use by services. */

struct ref_use {
    enum shoal_kind kind;
    const char *id;
    char names[400];
    size_t used, count;
};

static int
ref_use_visit(const void *obj, void *arg)
{
    const struct shoal_service *svc = obj;
    const struct shoal_container_spec *cs = svc->spec.task.container;
    struct ref_use *ru = arg;
    bool hit = false;

    for (size_t i = 0; cs && ru->kind == SHOAL_KIND_SECRET && i < cs->n_secrets;
         i++) {
        hit = hit || strcmp(cs->secrets[i].secret_id, ru->id) == 0;
    }
    for (size_t i = 0; cs && ru->kind == SHOAL_KIND_CONFIG && i < cs->n_configs;
         i++) {
        hit = hit || strcmp(cs->configs[i].config_id, ru->id) == 0;
    }
    if (hit) {
        ru->used += (size_t)snprintf(
            ru->names + ru->used, sizeof ru->names - ru->used, "%s%s",
            ru->count ? ", " : "", svc->spec.annotations.name);
        if (ru->used >= sizeof ru->names) {
            ru->used = sizeof ru->names - 1;
        }
        ru->count++;
    }
    return 0;
}

static int
ref_remove_check(const struct store *s, enum shoal_kind kind, const char *id,
                 const char *name, struct store_verdict *v)
{
    struct ref_use ru = {.kind = kind, .id = id};

    walk_all(s, SHOAL_KIND_SERVICE, ref_use_visit, &ru);
    if (ru.count == 0) {
        return SHOAL_OK;
    }
    return control_verdict(v, SHOAL_INVALID_ARGUMENT,
                           "%s '%s' is in use by the following %s: %s",
                           wire_kind_name(kind), name,
                           ru.count == 1 ? "service" : "services", ru.names);
}

/* Nodes. */

struct manager_count {
    const char *except;
    size_t n;
};

static int
manager_visit(const void *obj, void *arg)
{
    const struct shoal_node *n = obj;
    struct manager_count *mc = arg;

    if (n->role == SHOAL_ROLE_MANAGER &&
        n->spec.desired_role == SHOAL_ROLE_MANAGER &&
        strcmp(n->id, mc->except) != 0) {
        mc->n++;
    }
    return 0;
}

/*
 * A demotion must leave a manager that stays one: a node whose observed
 * role and desired role are both manager. This is SwarmKit's "last
 * manager" rule made safe against two demotions in a row before the role
 * manager acts (SwarmKit relies on raft's quorum check for that).
 */
static int
node_update_check(const struct store *s, const struct shoal_node *n,
                  const struct shoal_node *old, struct store_verdict *v)
{
    struct manager_count mc = {n->id, 0};

    if (!old || old->spec.desired_role != SHOAL_ROLE_MANAGER ||
        n->spec.desired_role != SHOAL_ROLE_WORKER) {
        return SHOAL_OK;
    }
    walk_all(s, SHOAL_KIND_NODE, manager_visit, &mc);
    if (mc.n == 0) {
        return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                               "attempting to demote the last manager of "
                               "the swarm");
    }
    return SHOAL_OK;
}

static int
node_remove_check(const struct shoal_node *n, struct store_verdict *v)
{
    if (n->spec.desired_role == SHOAL_ROLE_MANAGER) {
        return control_verdict(v, SHOAL_FAILED_PRECONDITION,
                               "node %s is a cluster manager and is a member "
                               "of the raft cluster. It must be demoted to "
                               "worker before removal",
                               n->id);
    }
    return SHOAL_OK;
}

int
control_check(void *arg, const struct store *s, enum shoal_action action,
              enum shoal_kind kind, const void *obj, const void *old,
              struct store_verdict *v)
{
    /* On remove, judge the stored object: the action carries an id. */
    const void *cur = old ? old : obj;

    (void)arg;
    switch (kind) {
    case SHOAL_KIND_SERVICE:
        if (action == SHOAL_ACTION_REMOVE) {
            return SHOAL_OK;
        }
        return service_check(s, obj, action == SHOAL_ACTION_UPDATE ? old : NULL,
                             v);
    case SHOAL_KIND_NETWORK:
        if (action == SHOAL_ACTION_CREATE) {
            return network_create_check(s, obj, v);
        }
        return action == SHOAL_ACTION_REMOVE ? network_remove_check(s, cur, v)
                                             : SHOAL_OK;
    case SHOAL_KIND_SECRET:
        if (action == SHOAL_ACTION_REMOVE) {
            const struct shoal_secret *sec = cur;

            return ref_remove_check(s, kind, sec->id,
                                    sec->spec.annotations.name, v);
        }
        return SHOAL_OK;
    case SHOAL_KIND_CONFIG:
        if (action == SHOAL_ACTION_REMOVE) {
            const struct shoal_config *cf = cur;

            return ref_remove_check(s, kind, cf->id, cf->spec.annotations.name,
                                    v);
        }
        return SHOAL_OK;
    case SHOAL_KIND_NODE:
        if (action == SHOAL_ACTION_UPDATE) {
            return node_update_check(s, obj, old, v);
        }
        return action == SHOAL_ACTION_REMOVE ? node_remove_check(cur, v)
                                             : SHOAL_OK;
    default:
        return SHOAL_OK;
    }
}
