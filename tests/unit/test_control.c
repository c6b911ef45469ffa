/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_control.c: the control handlers end to end, in process: a store
 * with control_check() as its check, bootstrapped; each request handled,
 * its proposal applied at the next index, and the reply built from the
 * verdict, as the manager does.
 *
 * Apply-time rules are reached by handling two writes before applying
 * either, so the second passes its precheck and is refused at apply.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "control/control.h"
#include "control/control_int.h"
#include "shoal/status.h"
#include "shoal/wire.h"
#include "store/store.h"

#define FX_NODE "node0000000000000000000001"
#define FX_CLUSTER "clus0000000000000000000001"

static struct store *fx_store;
static struct control fx_ctl;
static uint64_t fx_index;
static int fx_ms_calls;

static void
fx_manager_status(void *arg, const struct shoal_node *node,
                  struct shoal_manager_status **ms)
{
    (void)arg;
    fx_ms_calls++;
    if (strcmp(node->id, FX_NODE) == 0) {
        *ms = calloc(1, sizeof **ms);
        (*ms)->leader = true;
        (*ms)->raft_id = 7;
    }
}

/* Apply a proposal at the next index; returns the verdict's code. */
static int
fx_apply(const struct shoal_proposal *p, struct store_verdict *v)
{
    memset(v, 0, sizeof *v);
    cr_assert_eq(store_apply(fx_store, ++fx_index, p, v), 0);
    return v->code;
}

static void
fx_setup(void)
{
    struct store_config cfg = {.check = control_check, .check_arg = &fx_ctl};
    struct control_env env = {.node_id = FX_NODE,
                              .cluster_id = FX_CLUSTER,
                              .manager_status = fx_manager_status};
    struct shoal_proposal *p = NULL;
    struct store_verdict v;

    fx_index = 0;
    fx_ms_calls = 0;
    cr_assert_eq(store_new(&fx_store, &cfg), 0);
    control_init(&fx_ctl, fx_store, &env);
    cr_assert_eq(control_bootstrap(&fx_ctl, "host-a", &p), 0);
    cr_assert_eq(fx_apply(p, &v), SHOAL_OK, "%s", v.message);
    wire_free(&wire_type_proposal, p);
    free(p);
}

static void
fx_teardown(void)
{
    store_free(fx_store);
    fx_store = NULL;
}

/* Handle a request without committing it. */
static void
fx_handle(uint16_t type, const void *req, struct control_out *out)
{
    memset(out, 0, sizeof *out);
    cr_assert_eq(control_handle(&fx_ctl, type, req, out), 0);
}

/* Commit what a handled write proposed and build its reply. */
static void
fx_commit(struct control_out *out)
{
    struct store_verdict v;

    if (out->code != SHOAL_OK || !out->proposal) {
        return;
    }
    fx_apply(out->proposal, &v);
    cr_assert_eq(control_reply_written(&fx_ctl, &v, out), 0);
}

/* The whole loop: handle, commit, reply. */
static int
fx_call(uint16_t type, const void *req, struct control_out *out)
{
    fx_handle(type, req, out);
    fx_commit(out);
    return out->code;
}

/* Insert an object directly, as an orchestrator would. obj (malloc'd) is
 * transferred. */
static void
fx_insert(enum shoal_kind kind, void *obj)
{
    struct control_out out = {0};
    struct store_verdict v;

    cr_assert_eq(control_propose(&out, SHOAL_ACTION_CREATE, kind, obj), 0);
    cr_assert_eq(fx_apply(out.proposal, &v), SHOAL_OK, "%s", v.message);
    control_out_fini(&out);
}

static bool
has(const char *msg, const char *part)
{
    return strstr(msg, part) != NULL;
}

/* Builders. */

static struct shoal_service_spec *
svc_spec(const char *name)
{
    struct shoal_service_spec *s = calloc(1, sizeof *s);

    s->annotations.name = strdup(name);
    s->task.container = calloc(1, sizeof *s->task.container);
    s->task.container->image = strdup("nginx:1.25");
    s->mode.kind = SHOAL_MODE_REPLICATED;
    s->mode.replicas = 1;
    return s;
}

static void
svc_port(struct shoal_service_spec *s, uint32_t published, uint32_t proto,
         uint32_t mode)
{
    struct shoal_endpoint_spec *ep;

    if (!s->endpoint) {
        s->endpoint = calloc(1, sizeof *s->endpoint);
    }
    ep = s->endpoint;
    ep->ports = realloc(ep->ports, (ep->n_ports + 1) * sizeof *ep->ports);
    memset(&ep->ports[ep->n_ports], 0, sizeof *ep->ports);
    ep->ports[ep->n_ports].published_port = published;
    ep->ports[ep->n_ports].target_port = 80;
    ep->ports[ep->n_ports].protocol = proto;
    ep->ports[ep->n_ports].publish_mode = mode;
    ep->n_ports++;
}

static void
svc_secret(struct shoal_service_spec *s, const char *id, const char *name)
{
    struct shoal_container_spec *cs = s->task.container;

    cs->secrets =
        realloc(cs->secrets, (cs->n_secrets + 1) * sizeof *cs->secrets);
    memset(&cs->secrets[cs->n_secrets], 0, sizeof *cs->secrets);
    cs->secrets[cs->n_secrets].secret_id = strdup(id);
    cs->secrets[cs->n_secrets].secret_name = strdup(name);
    cs->secrets[cs->n_secrets].file.name = strdup(name);
    cs->n_secrets++;
}

static void
svc_network(struct shoal_service_spec *s, const char *target)
{
    struct shoal_task_spec *t = &s->task;

    t->networks =
        realloc(t->networks, (t->n_networks + 1) * sizeof *t->networks);
    memset(&t->networks[t->n_networks], 0, sizeof *t->networks);
    t->networks[t->n_networks].target = strdup(target);
    t->n_networks++;
}

/* Create a service from spec (consumed); the id goes to id_out. */
static int
svc_create(struct shoal_service_spec *spec, struct control_out *out,
           char *id_out)
{
    struct shoal_create_service_request req = {.spec = spec};

    fx_call(WIRE_MSG_CREATE_SERVICE, &req, out);
    wire_free(&wire_type_create_service_request, &req);
    if (out->code == SHOAL_OK && id_out) {
        strcpy(id_out, ((struct shoal_service *)out->reply)->id);
    }
    return out->code;
}

/* Create a service and forget the reply. */
static int
svc_add(struct shoal_service_spec *spec, char *id_out)
{
    struct control_out out;
    int code = svc_create(spec, &out, id_out);

    control_out_fini(&out);
    return code;
}

static const struct shoal_service *
svc_get(const char *id)
{
    return store_get(fx_store, SHOAL_KIND_SERVICE, id);
}

static int
svc_update(const char *id, uint64_t version, struct shoal_service_spec *spec,
           bool rollback, struct control_out *out)
{
    struct shoal_update_service_request req = {.id = (char *)id,
                                               .version = version,
                                               .spec = spec,
                                               .rollback = rollback};

    fx_call(WIRE_MSG_UPDATE_SERVICE, &req, out);
    if (spec) {
        wire_free(&wire_type_service_spec, spec);
        free(spec);
    }
    return out->code;
}

static int
id_call(uint16_t type, const char *id, bool force, struct control_out *out)
{
    struct shoal_id_request req = {.id = (char *)id, .force = force};

    return fx_call(type, &req, out);
}

static int
secret_add(const char *name, const char *data, char *id_out)
{
    struct shoal_secret_spec *spec = calloc(1, sizeof *spec);
    struct shoal_create_secret_request req = {.spec = spec};
    struct control_out out;
    int code;

    spec->annotations.name = strdup(name);
    wire_bytes_set(&spec->data, data, strlen(data));
    code = fx_call(WIRE_MSG_CREATE_SECRET, &req, &out);
    if (code == SHOAL_OK && id_out) {
        strcpy(id_out, ((struct shoal_secret *)out.reply)->id);
    }
    wire_free(&wire_type_create_secret_request, &req);
    control_out_fini(&out);
    return code;
}

static const struct shoal_network *
ingress(void)
{
    return store_get_by_name(fx_store, SHOAL_KIND_NETWORK, "ingress");
}

static struct shoal_task *
task_new(const char *id, const char *service_id, const char *node_id,
         uint64_t slot, uint32_t state)
{
    struct shoal_task *t = calloc(1, sizeof *t);

    t->id = strdup(id);
    t->service_id = strdup(service_id);
    t->node_id = strdup(node_id);
    t->slot = slot;
    t->status.state = state;
    t->desired_state = SHOAL_TASK_RUNNING;
    t->service_annotations.name = strdup("web");
    return t;
}

static struct shoal_node *
node_new(const char *id, const char *hostname, uint32_t role, uint32_t state)
{
    struct shoal_node *n = calloc(1, sizeof *n);

    n->id = strdup(id);
    n->description.hostname = strdup(hostname);
    n->role = role;
    n->spec.desired_role = role;
    n->spec.membership = SHOAL_MEMBERSHIP_ACCEPTED;
    n->status.state = state;
    return n;
}

/* Bootstrap. */

TestSuite(control_bootstrap, .init = fx_setup, .fini = fx_teardown,
          .timeout = 10.0);

/* A fresh cluster holds the cluster "default" with its defaults and
 * tokens, this manager's node and the ingress network. */
Test(control_bootstrap, creates_cluster_node_and_ingress)
{
    const struct shoal_cluster *cl;
    const struct shoal_node *n;
    const struct shoal_network *net = ingress();

    cl = store_get(fx_store, SHOAL_KIND_CLUSTER, FX_CLUSTER);
    n = store_get(fx_store, SHOAL_KIND_NODE, FX_NODE);

    cr_assert_not_null(cl);
    cr_expect_str_eq(cl->spec.annotations.name, "default");
    cr_expect_eq(cl->spec.orchestration.task_history_retention_limit, 5);
    cr_expect_eq(cl->spec.raft.snapshot_interval, 10000);
    cr_expect_eq(cl->spec.raft.log_entries_for_slow_followers, 500);
    cr_expect_eq(cl->spec.raft.election_tick, 10);
    cr_expect_eq(cl->spec.dispatcher.heartbeat_period, 5 * CONTROL_NS_PER_S);
    cr_expect_eq(strlen(cl->root_ca.join_tokens.worker), CONTROL_TOKEN_LEN);
    cr_expect_str_neq(cl->root_ca.join_tokens.worker,
                      cl->root_ca.join_tokens.manager);
    cr_assert_not_null(n);
    cr_expect_eq(n->role, SHOAL_ROLE_MANAGER);
    cr_expect_eq(n->status.state, SHOAL_NODE_READY);
    cr_expect_str_eq(n->description.hostname, "host-a");
    cr_assert_not_null(net);
    cr_expect(net->spec.ingress);
}

/* Services: create. */

TestSuite(control_service, .init = fx_setup, .fini = fx_teardown,
          .timeout = 10.0);

/* A valid create replies with the stored service: id, version, times. */
Test(control_service, create_replies_with_service)
{
    struct control_out out;
    struct shoal_service *s;

    cr_assert_eq(svc_create(svc_spec("web"), &out, NULL), SHOAL_OK, "%s",
                 out.message);

    s = out.reply;
    cr_expect_eq(out.reply_type, &wire_type_service);
    cr_expect_eq(strlen(s->id), ID_LEN);
    cr_expect_eq(s->meta.version, fx_index);
    cr_expect_neq(s->meta.created_at, 0);
    cr_expect_eq(s->spec_version, 0);
    cr_expect_str_eq(s->spec.annotations.name, "web");
    control_out_fini(&out);
}

/* The spec validation reaches the client with its code and message. */
Test(control_service, create_refuses_invalid_spec)
{
    struct shoal_service_spec *spec = svc_spec("web");
    struct control_out out;

    spec->task.resources.limits.memory_bytes = 1024 * 1024;

    cr_expect_eq(svc_create(spec, &out, NULL), SHOAL_INVALID_ARGUMENT);
    cr_expect(has(out.message, "4MiB"));
    cr_expect_null(out.proposal);
    control_out_fini(&out);
    cr_expect_eq(svc_add(svc_spec("bad.name"), NULL), SHOAL_INVALID_ARGUMENT);
}

/* Names are unique in any case, before the commit and at apply. */
Test(control_service, create_refuses_duplicate_name_any_case)
{
    struct shoal_create_service_request r1 = {.spec = svc_spec("dup")};
    struct shoal_create_service_request r2 = {.spec = svc_spec("DUP")};
    struct control_out o1, o2;

    fx_handle(WIRE_MSG_CREATE_SERVICE, &r1, &o1);
    fx_handle(WIRE_MSG_CREATE_SERVICE, &r2, &o2);
    fx_commit(&o1);
    fx_commit(&o2);

    cr_expect_eq(o1.code, SHOAL_OK);
    cr_expect_eq(o2.code, SHOAL_ALREADY_EXISTS);
    cr_expect(has(o2.message, "name conflicts with an existing object"));
    control_out_fini(&o1);
    control_out_fini(&o2);
    cr_expect_eq(svc_add(svc_spec("Dup"), NULL), SHOAL_ALREADY_EXISTS);
    wire_free(&wire_type_create_service_request, &r1);
    wire_free(&wire_type_create_service_request, &r2);
}

/* Attaching the ingress network by id is refused; another network is
 * fine. */
Test(control_service, create_refuses_ingress_attachment)
{
    struct shoal_service_spec *spec = svc_spec("web");
    struct control_out out;

    svc_network(spec, ingress()->id);
    cr_expect_eq(svc_create(spec, &out, NULL), SHOAL_INVALID_ARGUMENT);
    cr_expect(has(out.message, "explicitly attached to the ingress"));
    control_out_fini(&out);

    spec = svc_spec("web");
    svc_network(spec, "some-other-network");
    cr_expect_eq(svc_add(spec, NULL), SHOAL_OK);
}

/* Two ingress ports on one number conflict, across services. */
Test(control_service, port_conflict_ingress_vs_ingress)
{
    struct shoal_service_spec *a = svc_spec("a"), *b = svc_spec("b");
    struct control_out out;

    svc_port(a, 8080, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    svc_port(b, 8080, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    cr_assert_eq(svc_add(a, NULL), SHOAL_OK);

    cr_expect_eq(svc_create(b, &out, NULL), SHOAL_INVALID_ARGUMENT);
    cr_expect(has(out.message, "port '8080' is already in use by service "
                               "'a'"));
    control_out_fini(&out);
}

/* Host ports may share a number, and other protocols never conflict. */
Test(control_service, port_host_vs_host_and_other_protocol_allowed)
{
    struct shoal_service_spec *a = svc_spec("a"), *b = svc_spec("b");
    struct shoal_service_spec *c = svc_spec("c");

    svc_port(a, 9000, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);
    svc_port(b, 9000, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);
    svc_port(c, 9000, SHOAL_PROTO_UDP, SHOAL_PUBLISH_INGRESS);

    cr_expect_eq(svc_add(a, NULL), SHOAL_OK);
    cr_expect_eq(svc_add(b, NULL), SHOAL_OK);
    cr_expect_eq(svc_add(c, NULL), SHOAL_OK);
}

/* Host against an existing ingress port, and ingress against an existing
 * host port, both conflict. */
Test(control_service, port_conflict_host_and_ingress_mixed)
{
    struct shoal_service_spec *a = svc_spec("a"), *b = svc_spec("b");
    struct shoal_service_spec *c = svc_spec("c"), *d = svc_spec("d");

    svc_port(a, 7000, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    svc_port(b, 7000, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);
    svc_port(c, 7001, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);
    svc_port(d, 7001, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);

    cr_expect_eq(svc_add(a, NULL), SHOAL_OK);
    cr_expect_eq(svc_add(b, NULL), SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(svc_add(c, NULL), SHOAL_OK);
    cr_expect_eq(svc_add(d, NULL), SHOAL_INVALID_ARGUMENT);
}

/* Two creates racing for one port: the second is refused at apply, with
 * the store left without it. */
Test(control_service, port_conflict_found_at_apply)
{
    struct shoal_create_service_request r1 = {.spec = svc_spec("a")};
    struct shoal_create_service_request r2 = {.spec = svc_spec("b")};
    struct control_out o1, o2;

    svc_port(r1.spec, 80, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    svc_port(r2.spec, 80, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    fx_handle(WIRE_MSG_CREATE_SERVICE, &r1, &o1);
    fx_handle(WIRE_MSG_CREATE_SERVICE, &r2, &o2);
    cr_assert_eq(o2.code, SHOAL_OK);

    fx_commit(&o1);
    fx_commit(&o2);

    cr_expect_eq(o1.code, SHOAL_OK);
    cr_expect_eq(o2.code, SHOAL_INVALID_ARGUMENT);
    cr_expect(has(o2.message, "port '80' is already in use"));
    cr_expect_null(store_get_by_name(fx_store, SHOAL_KIND_SERVICE, "b"));
    control_out_fini(&o1);
    control_out_fini(&o2);
    wire_free(&wire_type_create_service_request, &r1);
    wire_free(&wire_type_create_service_request, &r2);
}

/* With the ingress network gone, an ingress port cannot be published;
 * host ports still can. */
Test(control_service, create_needs_ingress_network)
{
    struct shoal_service_spec *a = svc_spec("a"), *b = svc_spec("b");
    struct control_out out;

    cr_assert_eq(id_call(WIRE_MSG_REMOVE_NETWORK, ingress()->id, false, &out),
                 SHOAL_OK, "%s", out.message);
    control_out_fini(&out);
    svc_port(a, 80, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    svc_port(b, 80, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);

    cr_expect_eq(svc_add(a, NULL), SHOAL_FAILED_PRECONDITION);
    cr_expect_eq(svc_add(b, NULL), SHOAL_OK);
}

/* Referenced secrets must exist under the same name. */
Test(control_service, create_checks_secret_references)
{
    struct shoal_service_spec *a = svc_spec("a"), *b = svc_spec("b");
    struct control_out out;
    char sid[64];

    cr_assert_eq(secret_add("db-pass", "hunter2", sid), SHOAL_OK);
    svc_secret(a, sid, "db-pass");
    svc_secret(b, sid, "wrong-name");
    svc_secret(b, "nosuchid", "ghost");

    cr_expect_eq(svc_add(a, NULL), SHOAL_OK);
    cr_expect_eq(svc_create(b, &out, NULL), SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(out.message, "secrets not found: wrong-name, ghost");
    control_out_fini(&out);
}

/* Services: get, update, rollback, remove. */

/* Get refuses an empty id and names a missing service. */
Test(control_service, get_refuses_empty_and_missing)
{
    struct control_out out;

    cr_expect_eq(id_call(WIRE_MSG_GET_SERVICE, "", false, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
    cr_expect_eq(id_call(WIRE_MSG_GET_SERVICE, "nope", false, &out),
                 SHOAL_NOT_FOUND);
    cr_expect_str_eq(out.message, "service nope not found");
    control_out_fini(&out);
}

/* insert_defaults fills the reply only; the stored spec stays bare. */
Test(control_service, get_inserts_defaults_in_reply_only)
{
    struct shoal_id_request req = {.insert_defaults = true};
    struct shoal_service *s;
    struct control_out out;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    req.id = id;

    cr_assert_eq(fx_call(WIRE_MSG_GET_SERVICE, &req, &out), SHOAL_OK);

    s = out.reply;
    cr_assert_not_null(s->spec.update);
    cr_expect_eq(s->spec.update->parallelism, 1);
    cr_expect_eq(s->spec.update->monitor, 5 * CONTROL_NS_PER_S);
    cr_assert_not_null(s->spec.task.restart);
    cr_expect_eq(s->spec.task.restart->condition, SHOAL_RESTART_ANY);
    cr_expect_eq(s->spec.task.container->stop_grace_period,
                 10 * CONTROL_NS_PER_S);
    cr_expect_null(svc_get(id)->spec.update);
    control_out_fini(&out);
}

/* An update keeps the old spec as previous, versions the new spec by the
 * request's version, and clears the update status. */
Test(control_service, update_moves_spec_to_previous)
{
    struct shoal_service_spec *spec = svc_spec("web");
    const struct shoal_service *s;
    struct control_out out;
    uint64_t v1;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    v1 = svc_get(id)->meta.version;
    spec->mode.replicas = 5;

    cr_assert_eq(svc_update(id, v1, spec, false, &out), SHOAL_OK, "%s",
                 out.message);

    s = svc_get(id);
    cr_expect_eq(s->spec.mode.replicas, 5);
    cr_assert_not_null(s->previous_spec);
    cr_expect_eq(s->previous_spec->mode.replicas, 1);
    cr_expect_eq(s->spec_version, v1);
    cr_expect_eq(s->previous_spec_version, 0);
    cr_expect_null(s->update_status);
    cr_expect_eq(s->meta.version, fx_index);
    cr_expect_eq(((struct shoal_service *)out.reply)->spec.mode.replicas, 5);
    control_out_fini(&out);
}

/* A stale version is a conflict naming the current version; 0 is not a
 * version at all. */
Test(control_service, update_refuses_stale_and_zero_version)
{
    struct control_out out;
    uint64_t v1;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    v1 = svc_get(id)->meta.version;

    cr_expect_eq(svc_update(id, v1 + 100, svc_spec("web"), false, &out),
                 SHOAL_CONFLICT);
    cr_expect_eq(out.current_version, v1);
    control_out_fini(&out);
    cr_expect_eq(svc_update(id, 0, svc_spec("web"), false, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
}

/* Two updates based on one version: the second fails at apply with a
 * conflict. */
Test(control_service, update_conflict_found_at_apply)
{
    struct shoal_update_service_request r = {0};
    struct control_out o1, o2;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    r.id = id;
    r.version = svc_get(id)->meta.version;
    r.spec = svc_spec("web");

    fx_handle(WIRE_MSG_UPDATE_SERVICE, &r, &o1);
    fx_handle(WIRE_MSG_UPDATE_SERVICE, &r, &o2);
    fx_commit(&o1);
    fx_commit(&o2);

    cr_expect_eq(o1.code, SHOAL_OK);
    cr_expect_eq(o2.code, SHOAL_CONFLICT);
    cr_expect_eq(o2.current_version, fx_index - 1);
    control_out_fini(&o1);
    control_out_fini(&o2);
    r.id = NULL;
    wire_free(&wire_type_update_service_request, &r);
}

/* Renaming and changing the mode kind are not supported; a missing
 * service is not found. */
Test(control_service, update_refuses_rename_and_mode_change)
{
    struct shoal_service_spec *spec = svc_spec("web");
    struct control_out out;
    uint64_t v;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    v = svc_get(id)->meta.version;

    cr_expect_eq(svc_update(id, v, svc_spec("web2"), false, &out),
                 SHOAL_UNIMPLEMENTED);
    cr_expect_str_eq(out.message, "renaming services is not supported");
    control_out_fini(&out);
    spec->mode.kind = SHOAL_MODE_GLOBAL;
    cr_expect_eq(svc_update(id, v, spec, false, &out), SHOAL_UNIMPLEMENTED);
    cr_expect_str_eq(out.message, "service mode change is not allowed");
    control_out_fini(&out);
    cr_expect_eq(svc_update("missing", v, svc_spec("web"), false, &out),
                 SHOAL_NOT_FOUND);
    control_out_fini(&out);
}

/* Rollback without a previous spec fails; with one it swaps specs and
 * versions and marks the rollback as started. */
Test(control_service, rollback_swaps_specs)
{
    struct shoal_service_spec *spec = svc_spec("web");
    const struct shoal_service *s;
    struct control_out out;
    uint64_t v1, v2;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    v1 = svc_get(id)->meta.version;
    cr_expect_eq(svc_update(id, v1, svc_spec("web"), true, &out),
                 SHOAL_FAILED_PRECONDITION);
    control_out_fini(&out);
    spec->mode.replicas = 3;
    cr_assert_eq(svc_update(id, v1, spec, false, &out), SHOAL_OK);
    control_out_fini(&out);
    v2 = svc_get(id)->meta.version;

    cr_assert_eq(svc_update(id, v2, svc_spec("web"), true, &out), SHOAL_OK,
                 "%s", out.message);

    s = svc_get(id);
    cr_expect_eq(s->spec.mode.replicas, 1);
    cr_expect_eq(s->previous_spec->mode.replicas, 3);
    cr_expect_eq(s->spec_version, 0);
    cr_expect_eq(s->previous_spec_version, v1);
    cr_assert_not_null(s->update_status);
    cr_expect_eq(s->update_status->state, SHOAL_UPDATE_ROLLBACK_STARTED);
    cr_expect_str_eq(s->update_status->message, "manually requested rollback");
    control_out_fini(&out);
}

/* Remove deletes the service and replies empty. */
Test(control_service, remove_deletes)
{
    struct control_out out;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_SERVICE, id, false, &out), SHOAL_OK);
    cr_expect_null(out.reply);
    control_out_fini(&out);
    cr_expect_null(svc_get(id));
    cr_expect_eq(id_call(WIRE_MSG_REMOVE_SERVICE, id, false, &out),
                 SHOAL_NOT_FOUND);
    control_out_fini(&out);
}

/* Statuses: one entry per id asked, zeros for unknown ones; replicated
 * desired is the replica count and running counts RUNNING tasks. */
Test(control_service, statuses_count_tasks)
{
    struct shoal_service_statuses_request req = {0};
    struct shoal_service_spec *spec = svc_spec("web");
    struct shoal_service_statuses_reply *rep;
    struct control_out out;
    char id[64];

    spec->mode.replicas = 3;
    cr_assert_eq(svc_add(spec, id), SHOAL_OK);
    fx_insert(SHOAL_KIND_TASK,
              task_new("t1", id, FX_NODE, 1, SHOAL_TASK_RUNNING));
    fx_insert(SHOAL_KIND_TASK,
              task_new("t2", id, FX_NODE, 2, SHOAL_TASK_PENDING));
    wire_strs_push(&req.service_ids, id);
    wire_strs_push(&req.service_ids, "unknown");

    cr_assert_eq(fx_call(WIRE_MSG_LIST_SERVICE_STATUSES, &req, &out), SHOAL_OK);

    rep = out.reply;
    cr_assert_eq(rep->n_statuses, 2);
    cr_expect_str_eq(rep->statuses[0].service_id, id);
    cr_expect_eq(rep->statuses[0].desired, 3);
    cr_expect_eq(rep->statuses[0].running, 1);
    cr_expect_str_eq(rep->statuses[1].service_id, "unknown");
    cr_expect_eq(rep->statuses[1].desired, 0);
    control_out_fini(&out);
    wire_free(&wire_type_service_statuses_request, &req);
}

/* Lists. */

TestSuite(control_list, .init = fx_setup, .fini = fx_teardown, .timeout = 10.0);

static struct shoal_list_reply *
list(uint16_t type, struct shoal_list_request *req, struct control_out *out)
{
    cr_assert_eq(fx_call(type, req, out), SHOAL_OK, "%s", out->message);
    return out->reply;
}

/* Names match exactly and case-sensitively; prefixes and labels narrow;
 * the reply is sorted by id. */
Test(control_list, services_by_name_prefix_and_label)
{
    struct shoal_list_request req = {0};
    struct shoal_service_spec *spec = svc_spec("web-b");
    struct shoal_list_reply *rep;
    struct control_out out;

    wire_map_set(&spec->annotations.labels, "tier", "front");
    cr_assert_eq(svc_add(svc_spec("web-a"), NULL), SHOAL_OK);
    cr_assert_eq(svc_add(spec, NULL), SHOAL_OK);
    cr_assert_eq(svc_add(svc_spec("db"), NULL), SHOAL_OK);

    wire_strs_push(&req.names, "WEB-A");
    rep = list(WIRE_MSG_LIST_SERVICES, &req, &out);
    cr_expect_eq(rep->n_services, 0);
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);

    wire_strs_push(&req.name_prefixes, "web");
    rep = list(WIRE_MSG_LIST_SERVICES, &req, &out);
    cr_assert_eq(rep->n_services, 2);
    cr_expect_lt(strcmp(rep->services[0].id, rep->services[1].id), 0);
    control_out_fini(&out);

    wire_map_set(&req.labels, "tier", "");
    rep = list(WIRE_MSG_LIST_SERVICES, &req, &out);
    cr_assert_eq(rep->n_services, 1);
    cr_expect_str_eq(rep->services[0].spec.annotations.name, "web-b");
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);
}

/* A filter that does not apply to the kind is an invalid argument naming
 * it. */
Test(control_list, refuses_filter_of_other_kind)
{
    struct shoal_list_request req = {0};
    struct control_out out;
    uint32_t role = SHOAL_ROLE_MANAGER;

    req.roles.v = &role;
    req.roles.n = 1;

    cr_expect_eq(fx_call(WIRE_MSG_LIST_SERVICES, &req, &out),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect(has(out.message, "'roles'"));
    control_out_fini(&out);
    cr_expect_eq(fx_call(WIRE_MSG_LIST_NODES, &req, &out), SHOAL_OK);
    cr_expect_eq(((struct shoal_list_reply *)out.reply)->n_nodes, 1);
    control_out_fini(&out);
}

/* Nodes match names against the hostname and get their manager status
 * filled at read time. */
Test(control_list, nodes_by_hostname_with_manager_status)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply *rep;
    struct control_out out;

    fx_insert(SHOAL_KIND_NODE,
              node_new("w1", "host-b", SHOAL_ROLE_WORKER, SHOAL_NODE_READY));
    wire_strs_push(&req.names, "host-a");

    rep = list(WIRE_MSG_LIST_NODES, &req, &out);

    cr_assert_eq(rep->n_nodes, 1);
    cr_expect_str_eq(rep->nodes[0].id, FX_NODE);
    cr_assert_not_null(rep->nodes[0].manager_status);
    cr_expect(rep->nodes[0].manager_status->leader);
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);
}

/* Tasks filter by service, desired state, and the computed task name. */
Test(control_list, tasks_by_service_state_and_name)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply *rep;
    struct control_out out;
    struct shoal_task *t3 = task_new("t3", "s2", "n1", 0, SHOAL_TASK_RUNNING);
    uint32_t shutdown = SHOAL_TASK_SHUTDOWN;

    t3->desired_state = SHOAL_TASK_SHUTDOWN;
    fx_insert(SHOAL_KIND_TASK,
              task_new("t1", "s1", "n1", 1, SHOAL_TASK_RUNNING));
    fx_insert(SHOAL_KIND_TASK,
              task_new("t2", "s1", "n1", 2, SHOAL_TASK_RUNNING));
    fx_insert(SHOAL_KIND_TASK, t3);

    wire_strs_push(&req.service_ids, "s1");
    rep = list(WIRE_MSG_LIST_TASKS, &req, &out);
    cr_expect_eq(rep->n_tasks, 2);
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);

    req.desired_states.v = &shutdown;
    req.desired_states.n = 1;
    rep = list(WIRE_MSG_LIST_TASKS, &req, &out);
    cr_assert_eq(rep->n_tasks, 1);
    cr_expect_str_eq(rep->tasks[0].id, "t3");
    control_out_fini(&out);
    req.desired_states.n = 0;
    req.desired_states.v = NULL;

    wire_strs_push(&req.names, "web.2.t2");
    wire_strs_push(&req.names, "web.n1.t3");
    rep = list(WIRE_MSG_LIST_TASKS, &req, &out);
    cr_expect_eq(rep->n_tasks, 2);
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);
}

/* Secrets never show data in a list, and their names match in any case;
 * internal secrets are hidden. */
Test(control_list, secrets_redacted_any_case)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply *rep;
    struct control_out out;

    cr_assert_eq(secret_add("Api-Key", "s3cr3t", NULL), SHOAL_OK);
    wire_strs_push(&req.names, "api-key");

    rep = list(WIRE_MSG_LIST_SECRETS, &req, &out);

    cr_assert_eq(rep->n_secrets, 1);
    cr_expect_eq(rep->secrets[0].spec.data.len, 0);
    cr_expect_null(rep->secrets[0].spec.data.data);
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);
}

/* Networks. */

TestSuite(control_network, .init = fx_setup, .fini = fx_teardown,
          .timeout = 10.0);

static int
net_create(const char *name, bool ingress_flag, char *id_out)
{
    struct shoal_network_spec *spec = calloc(1, sizeof *spec);
    struct shoal_create_network_request req = {.spec = spec};
    struct control_out out;
    int code;

    spec->annotations.name = strdup(name);
    spec->ingress = ingress_flag;
    code = fx_call(WIRE_MSG_CREATE_NETWORK, &req, &out);
    if (code == SHOAL_OK && id_out) {
        strcpy(id_out, ((struct shoal_network *)out.reply)->id);
    }
    control_out_fini(&out);
    wire_free(&wire_type_create_network_request, &req);
    return code;
}

/* A network is created once per name in any case. */
Test(control_network, create_and_refuse_duplicate)
{
    char id[64];

    cr_expect_eq(net_create("backend", false, id), SHOAL_OK);
    cr_expect_not_null(store_get(fx_store, SHOAL_KIND_NETWORK, id));
    cr_expect_eq(net_create("BACKEND", false, NULL), SHOAL_ALREADY_EXISTS);
}

/* A second ingress network is refused while the first exists. */
Test(control_network, second_ingress_refused)
{
    struct control_out out;
    char id[64];

    cr_expect_eq(net_create("ingress2", true, NULL), SHOAL_ALREADY_EXISTS);
    strcpy(id, ingress()->id);
    cr_assert_eq(id_call(WIRE_MSG_REMOVE_NETWORK, id, false, &out), SHOAL_OK);
    control_out_fini(&out);
    cr_expect_eq(net_create("ingress2", true, NULL), SHOAL_OK);
}

/* A network used by a service, or by a live task, cannot be removed;
 * once unused it can. */
Test(control_network, remove_refused_while_in_use)
{
    struct shoal_service_spec *spec = svc_spec("web");
    struct control_out out;
    char nid[64], sid[64];

    cr_assert_eq(net_create("backend", false, nid), SHOAL_OK);
    svc_network(spec, nid);
    cr_assert_eq(svc_add(spec, sid), SHOAL_OK);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NETWORK, nid, false, &out),
                 SHOAL_FAILED_PRECONDITION);
    cr_expect(has(out.message, "is in use by service"));
    control_out_fini(&out);
    cr_assert_eq(id_call(WIRE_MSG_REMOVE_SERVICE, sid, false, &out), SHOAL_OK);
    control_out_fini(&out);
    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NETWORK, nid, false, &out), SHOAL_OK);
    control_out_fini(&out);
}

/* A running task attached to the network holds it. */
Test(control_network, remove_refused_while_task_attached)
{
    struct shoal_task *t = task_new("t1", "s1", "n1", 1, SHOAL_TASK_RUNNING);
    struct control_out out;
    char nid[64];

    cr_assert_eq(net_create("backend", false, nid), SHOAL_OK);
    t->spec.networks = calloc(1, sizeof *t->spec.networks);
    t->spec.n_networks = 1;
    t->spec.networks[0].target = strdup(nid);
    fx_insert(SHOAL_KIND_TASK, t);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NETWORK, nid, false, &out),
                 SHOAL_FAILED_PRECONDITION);
    cr_expect(has(out.message, "in use by task t1"));
    control_out_fini(&out);
}

/* The ingress network stays while a service publishes an ingress port. */
Test(control_network, ingress_remove_refused_while_needed)
{
    struct shoal_service_spec *spec = svc_spec("web");
    struct control_out out;

    svc_port(spec, 80, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    cr_assert_eq(svc_add(spec, NULL), SHOAL_OK);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NETWORK, ingress()->id, false, &out),
                 SHOAL_FAILED_PRECONDITION);
    control_out_fini(&out);
}

/* A predefined network cannot be removed. */
Test(control_network, predefined_remove_refused)
{
    struct shoal_network *n = calloc(1, sizeof *n);
    struct control_out out;

    n->id = strdup("predef1");
    n->spec.annotations.name = strdup("host");
    wire_map_set(&n->spec.annotations.labels, CONTROL_PREDEFINED_LABEL, "true");
    fx_insert(SHOAL_KIND_NETWORK, n);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NETWORK, "predef1", false, &out),
                 SHOAL_FAILED_PRECONDITION);
    control_out_fini(&out);
}

/* Clusters. */

TestSuite(control_cluster, .init = fx_setup, .fini = fx_teardown,
          .timeout = 10.0);

static struct shoal_update_cluster_request
cluster_req(void)
{
    const struct shoal_cluster *cl;
    struct shoal_update_cluster_request r = {0};

    cl = store_get(fx_store, SHOAL_KIND_CLUSTER, FX_CLUSTER);
    r.id = strdup(FX_CLUSTER);
    r.version = cl->meta.version;
    r.spec = calloc(1, sizeof *r.spec);
    wire_copy(&wire_type_cluster_spec, r.spec, &cl->spec);
    return r;
}

/* Replies never carry the CA key and show the display defaults. */
Test(control_cluster, get_is_redacted)
{
    struct shoal_cluster *cl;
    struct control_out out;
    struct shoal_cluster *stored;

    stored = (struct shoal_cluster *)store_get(fx_store, SHOAL_KIND_CLUSTER,
                                               FX_CLUSTER);
    cr_assert_not_null(stored);

    cr_assert_eq(id_call(WIRE_MSG_GET_CLUSTER, FX_CLUSTER, false, &out),
                 SHOAL_OK);

    cl = out.reply;
    cr_expect_eq(cl->root_ca.ca_key.len, 0);
    cr_assert_eq(cl->default_address_pool.n, 1);
    cr_expect_str_eq(cl->default_address_pool.v[0], "10.0.0.0/8");
    cr_expect_eq(cl->subnet_size, 24);
    cr_expect_eq(cl->vxlan_udp_port, 4789);
    cr_expect_not_null(cl->root_ca.join_tokens.worker);
    control_out_fini(&out);
}

/* control_redact drops the CA key of a cluster and a secret's data. */
Test(control_cluster, redact_removes_key_and_data)
{
    struct shoal_cluster cl = {0};
    struct shoal_secret s = {0};

    wire_bytes_set(&cl.root_ca.ca_key, "KEY", 3);
    wire_bytes_set(&s.spec.data, "DATA", 4);

    control_redact(SHOAL_KIND_CLUSTER, &cl);
    control_redact(SHOAL_KIND_SECRET, &s);

    cr_expect_null(cl.root_ca.ca_key.data);
    cr_expect_null(s.spec.data.data);
    wire_free(&wire_type_cluster, &cl);
    wire_free(&wire_type_secret, &s);
}

/* Rotating the worker token changes it alone, with the same digest. */
Test(control_cluster, rotate_worker_token)
{
    struct shoal_update_cluster_request r = cluster_req();
    const struct shoal_cluster *cl;
    struct control_out out;
    char worker[128], manager[128];

    cl = store_get(fx_store, SHOAL_KIND_CLUSTER, FX_CLUSTER);
    strcpy(worker, cl->root_ca.join_tokens.worker);
    strcpy(manager, cl->root_ca.join_tokens.manager);
    r.rotate_worker_token = true;

    cr_assert_eq(fx_call(WIRE_MSG_UPDATE_CLUSTER, &r, &out), SHOAL_OK, "%s",
                 out.message);

    cl = store_get(fx_store, SHOAL_KIND_CLUSTER, FX_CLUSTER);
    cr_expect_str_neq(cl->root_ca.join_tokens.worker, worker);
    cr_expect_eq(strncmp(cl->root_ca.join_tokens.worker, worker, 58), 0);
    cr_expect_str_eq(cl->root_ca.join_tokens.manager, manager);
    control_out_fini(&out);
    wire_free(&wire_type_update_cluster_request, &r);
}

/* Renaming, a short certificate expiry and a negative heartbeat are
 * refused; a stale version conflicts. */
Test(control_cluster, update_refusals)
{
    struct shoal_update_cluster_request r = cluster_req();
    struct control_out out;

    free(r.spec->annotations.name);
    r.spec->annotations.name = strdup("other");
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_CLUSTER, &r, &out),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(out.message,
                     "modification of cluster name is not allowed");
    control_out_fini(&out);
    free(r.spec->annotations.name);
    r.spec->annotations.name = strdup("default");

    r.spec->ca_config.node_cert_expiry = 30 * 60 * CONTROL_NS_PER_S;
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_CLUSTER, &r, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
    r.spec->ca_config.node_cert_expiry = CONTROL_NS_PER_H;

    r.spec->dispatcher.heartbeat_period = -1;
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_CLUSTER, &r, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
    r.spec->dispatcher.heartbeat_period = 0;

    r.version += 5;
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_CLUSTER, &r, &out), SHOAL_CONFLICT);
    control_out_fini(&out);
    r.version -= 5;
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_CLUSTER, &r, &out), SHOAL_OK);
    control_out_fini(&out);
    wire_free(&wire_type_update_cluster_request, &r);
}

/* Secrets and configs. */

TestSuite(control_secret, .init = fx_setup, .fini = fx_teardown,
          .timeout = 10.0);

/* Create replies without the data; get never shows it either. */
Test(control_secret, data_never_returned)
{
    struct control_out out;
    char id[64];

    cr_assert_eq(secret_add("pw", "hunter2", id), SHOAL_OK);

    cr_assert_eq(id_call(WIRE_MSG_GET_SECRET, id, false, &out), SHOAL_OK);
    cr_expect_eq(((struct shoal_secret *)out.reply)->spec.data.len, 0);
    control_out_fini(&out);
    cr_expect_eq(((const struct shoal_secret *)store_get(fx_store,
                                                         SHOAL_KIND_SECRET, id))
                     ->spec.data.len,
                 7);
}

/* Data must be 1 byte to under 500 KiB; names are unique in any case. */
Test(control_secret, size_limits_and_names)
{
    char *big = malloc(CONTROL_MAX_SECRET_BYTES + 1);
    struct control_out out;

    cr_expect_eq(secret_add("empty", "", NULL), SHOAL_INVALID_ARGUMENT);
    memset(big, 'x', CONTROL_MAX_SECRET_BYTES);
    big[CONTROL_MAX_SECRET_BYTES] = '\0';
    cr_expect_eq(secret_add("big", big, NULL), SHOAL_INVALID_ARGUMENT);
    big[CONTROL_MAX_SECRET_BYTES - 1] = '\0';
    cr_expect_eq(secret_add("big", big, NULL), SHOAL_OK);
    free(big);
    cr_expect_eq(secret_add(".bad", "x", NULL), SHOAL_INVALID_ARGUMENT);

    cr_expect_eq(secret_add("BIG", "x", NULL), SHOAL_ALREADY_EXISTS);
    (void)out;
}

static int
secret_update(const char *id, uint64_t version, const char *name,
              const char *data, const char *label, struct control_out *out)
{
    struct shoal_update_secret_request r = {.version = version};
    int code;

    r.id = strdup(id);
    r.spec = calloc(1, sizeof *r.spec);
    r.spec->annotations.name = strdup(name);
    if (data) {
        wire_bytes_set(&r.spec->data, data, strlen(data));
    }
    if (label) {
        wire_map_set(&r.spec->annotations.labels, label, "yes");
    }
    code = fx_call(WIRE_MSG_UPDATE_SECRET, &r, out);
    wire_free(&wire_type_update_secret_request, &r);
    return code;
}

/* Labels may change (with the same or no data); name or data may not. */
Test(control_secret, update_only_labels)
{
    const struct shoal_secret *s;
    struct control_out out;
    uint64_t v;
    char id[64];

    cr_assert_eq(secret_add("pw", "hunter2", id), SHOAL_OK);
    v = ((const struct shoal_secret *)store_get(fx_store, SHOAL_KIND_SECRET,
                                                id))
            ->meta.version;

    cr_expect_eq(secret_update(id, v, "pw2", NULL, NULL, &out),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(out.message, "only updates to Labels are allowed");
    control_out_fini(&out);
    cr_expect_eq(secret_update(id, v, "pw", "other", NULL, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
    cr_expect_eq(secret_update(id, v, "pw", "hunter2", "env", &out), SHOAL_OK);
    cr_expect_eq(((struct shoal_secret *)out.reply)->spec.data.len, 0);
    control_out_fini(&out);

    s = store_get(fx_store, SHOAL_KIND_SECRET, id);
    cr_expect_str_eq(wire_map_get(&s->spec.annotations.labels, "env"), "yes");
    cr_expect_eq(s->spec.data.len, 7);
}

/* A secret referenced by services cannot be removed; the message names
 * them. Unused, it can. */
Test(control_secret, remove_refused_while_in_use)
{
    struct shoal_service_spec *a = svc_spec("a"), *b = svc_spec("b");
    struct control_out out;
    char id[64], sa[64];

    cr_assert_eq(secret_add("pw", "hunter2", id), SHOAL_OK);
    svc_secret(a, id, "pw");
    svc_secret(b, id, "pw");
    cr_assert_eq(svc_add(a, sa), SHOAL_OK);
    cr_assert_eq(svc_add(b, NULL), SHOAL_OK);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_SECRET, id, false, &out),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect(has(out.message, "secret 'pw' is in use by the following "
                               "services: "));
    control_out_fini(&out);
    cr_expect_not_null(store_get(fx_store, SHOAL_KIND_SECRET, id));
}

/* Configs keep their data in replies, and allow up to under 1000 KiB. */
Test(control_secret, config_data_returned)
{
    struct shoal_config_spec *spec = calloc(1, sizeof *spec);
    struct shoal_create_config_request req = {.spec = spec};
    struct control_out out;

    spec->annotations.name = strdup("nginx.conf");
    wire_bytes_set(&spec->data, "server {}", 9);

    cr_assert_eq(fx_call(WIRE_MSG_CREATE_CONFIG, &req, &out), SHOAL_OK);
    cr_expect_eq(((struct shoal_config *)out.reply)->spec.data.len, 9);
    control_out_fini(&out);

    free(spec->data.data);
    spec->data.data = calloc(1, CONTROL_MAX_CONFIG_BYTES);
    spec->data.len = CONTROL_MAX_CONFIG_BYTES;
    free(spec->annotations.name);
    spec->annotations.name = strdup("huge");
    cr_expect_eq(fx_call(WIRE_MSG_CREATE_CONFIG, &req, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
    wire_free(&wire_type_create_config_request, &req);
}

/* Nodes and tasks. */

TestSuite(control_node, .init = fx_setup, .fini = fx_teardown, .timeout = 10.0);

static int
node_set_role(const char *id, uint32_t role, struct control_out *out)
{
    const struct shoal_node *n = store_get(fx_store, SHOAL_KIND_NODE, id);
    struct shoal_update_node_request r = {0};
    int code;

    r.id = strdup(id);
    r.version = n->meta.version;
    r.spec = calloc(1, sizeof *r.spec);
    wire_copy(&wire_type_node_spec, r.spec, &n->spec);
    r.spec->desired_role = role;
    code = fx_call(WIRE_MSG_UPDATE_NODE, &r, out);
    wire_free(&wire_type_update_node_request, &r);
    return code;
}

/* Get fills the manager status through the environment. */
Test(control_node, get_fills_manager_status)
{
    struct control_out out;

    cr_assert_eq(id_call(WIRE_MSG_GET_NODE, FX_NODE, false, &out), SHOAL_OK);

    cr_assert_not_null(((struct shoal_node *)out.reply)->manager_status);
    cr_expect_eq(((struct shoal_node *)out.reply)->manager_status->raft_id, 7);
    cr_expect_gt(fx_ms_calls, 0);
    control_out_fini(&out);
}

/* The last manager cannot be demoted; with a second one it can. */
Test(control_node, demote_last_manager_refused)
{
    struct control_out out;

    cr_expect_eq(node_set_role(FX_NODE, SHOAL_ROLE_WORKER, &out),
                 SHOAL_FAILED_PRECONDITION);
    cr_expect_str_eq(out.message,
                     "attempting to demote the last manager of the swarm");
    control_out_fini(&out);
    fx_insert(SHOAL_KIND_NODE,
              node_new("m2", "host-m2", SHOAL_ROLE_MANAGER, SHOAL_NODE_READY));

    cr_expect_eq(node_set_role(FX_NODE, SHOAL_ROLE_WORKER, &out), SHOAL_OK,
                 "%s", out.message);
    control_out_fini(&out);
}

/* Two demotions handled together: the second fails at apply. */
Test(control_node, demote_race_caught_at_apply)
{
    const struct shoal_node *a, *b;
    struct shoal_update_node_request ra = {0}, rb = {0};
    struct control_out oa, ob;

    fx_insert(SHOAL_KIND_NODE,
              node_new("m2", "host-m2", SHOAL_ROLE_MANAGER, SHOAL_NODE_READY));
    a = store_get(fx_store, SHOAL_KIND_NODE, FX_NODE);
    b = store_get(fx_store, SHOAL_KIND_NODE, "m2");
    ra.id = strdup(FX_NODE);
    ra.version = a->meta.version;
    ra.spec = calloc(1, sizeof *ra.spec);
    rb.id = strdup("m2");
    rb.version = b->meta.version;
    rb.spec = calloc(1, sizeof *rb.spec);

    fx_handle(WIRE_MSG_UPDATE_NODE, &ra, &oa);
    fx_handle(WIRE_MSG_UPDATE_NODE, &rb, &ob);
    fx_commit(&oa);
    fx_commit(&ob);

    cr_expect_eq(oa.code, SHOAL_OK);
    cr_expect_eq(ob.code, SHOAL_FAILED_PRECONDITION);
    control_out_fini(&oa);
    control_out_fini(&ob);
    wire_free(&wire_type_update_node_request, &ra);
    wire_free(&wire_type_update_node_request, &rb);
}

/* A manager must be demoted before removal, and a ready node needs
 * force; with force its unfinished tasks become orphaned and its id is
 * blacklisted. */
Test(control_node, remove_guards_and_orphans)
{
    const struct shoal_cluster *cl;
    const struct shoal_task *t;
    struct control_out out;

    fx_insert(SHOAL_KIND_NODE,
              node_new("w1", "host-w", SHOAL_ROLE_WORKER, SHOAL_NODE_READY));
    fx_insert(SHOAL_KIND_TASK,
              task_new("t1", "s1", "w1", 1, SHOAL_TASK_RUNNING));
    fx_insert(SHOAL_KIND_TASK,
              task_new("t2", "s1", "w1", 2, SHOAL_TASK_FAILED));

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NODE, FX_NODE, true, &out),
                 SHOAL_FAILED_PRECONDITION);
    control_out_fini(&out);
    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NODE, "w1", false, &out),
                 SHOAL_FAILED_PRECONDITION);
    cr_expect_str_eq(out.message, "node w1 is not down and can't be removed");
    control_out_fini(&out);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NODE, "w1", true, &out), SHOAL_OK,
                 "%s", out.message);
    control_out_fini(&out);

    cr_expect_null(store_get(fx_store, SHOAL_KIND_NODE, "w1"));
    t = store_get(fx_store, SHOAL_KIND_TASK, "t1");
    cr_expect_eq(t->status.state, SHOAL_TASK_ORPHANED);
    t = store_get(fx_store, SHOAL_KIND_TASK, "t2");
    cr_expect_eq(t->status.state, SHOAL_TASK_FAILED);
    cl = store_get(fx_store, SHOAL_KIND_CLUSTER, FX_CLUSTER);
    cr_assert_eq(cl->n_blacklisted_certificates, 1);
    cr_expect_str_eq(cl->blacklisted_certificates[0].node_id, "w1");
}

/* Update refuses missing id, version or spec, and unknown nodes. */
Test(control_node, update_refuses_bad_requests)
{
    struct shoal_update_node_request r = {0};
    struct control_out out;

    r.id = strdup(FX_NODE);
    r.version = 1;
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_NODE, &r, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
    r.spec = calloc(1, sizeof *r.spec);
    free(r.id);
    r.id = strdup("ghost");
    cr_expect_eq(fx_call(WIRE_MSG_UPDATE_NODE, &r, &out), SHOAL_NOT_FOUND);
    cr_expect_str_eq(out.message, "node ghost not found");
    control_out_fini(&out);
    wire_free(&wire_type_update_node_request, &r);
}

/* Tasks: get and remove by id. */
Test(control_node, task_get_and_remove)
{
    struct control_out out;

    fx_insert(SHOAL_KIND_TASK,
              task_new("t1", "s1", "n1", 1, SHOAL_TASK_RUNNING));

    cr_expect_eq(id_call(WIRE_MSG_GET_TASK, "t1", false, &out), SHOAL_OK);
    control_out_fini(&out);
    cr_expect_eq(id_call(WIRE_MSG_REMOVE_TASK, "t1", false, &out), SHOAL_OK);
    control_out_fini(&out);
    cr_expect_eq(id_call(WIRE_MSG_GET_TASK, "t1", false, &out),
                 SHOAL_NOT_FOUND);
    control_out_fini(&out);
    cr_expect_eq(id_call(WIRE_MSG_REMOVE_TASK, "", false, &out),
                 SHOAL_INVALID_ARGUMENT);
    control_out_fini(&out);
}

/* up_to_date keeps tasks built from their service's current spec;
 * runtimes match the container runtime. */
Test(control_list, tasks_up_to_date_and_runtime)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply *rep;
    struct shoal_task *fresh, *stale;
    struct control_out out;
    char id[64];

    cr_assert_eq(svc_add(svc_spec("web"), id), SHOAL_OK);
    fresh = task_new("t1", id, "n1", 1, SHOAL_TASK_RUNNING);
    stale = task_new("t2", id, "n1", 2, SHOAL_TASK_RUNNING);
    stale->spec_version = 99;
    fresh->spec.container = calloc(1, sizeof *fresh->spec.container);
    fx_insert(SHOAL_KIND_TASK, fresh);
    fx_insert(SHOAL_KIND_TASK, stale);
    req.up_to_date = true;

    rep = list(WIRE_MSG_LIST_TASKS, &req, &out);
    cr_assert_eq(rep->n_tasks, 1);
    cr_expect_str_eq(rep->tasks[0].id, "t1");
    control_out_fini(&out);
    req.up_to_date = false;

    wire_strs_push(&req.runtimes, "container");
    rep = list(WIRE_MSG_LIST_TASKS, &req, &out);
    cr_assert_eq(rep->n_tasks, 1);
    cr_expect_str_eq(rep->tasks[0].id, "t1");
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);
}

/* A secret removal handled before a service that uses it was committed
 * is refused when it applies after that service. */
Test(control_secret, in_use_found_at_apply)
{
    struct shoal_id_request rm = {0};
    struct shoal_create_service_request cs = {.spec = svc_spec("a")};
    struct control_out o_rm, o_cs;
    char id[64];

    cr_assert_eq(secret_add("pw", "hunter2", id), SHOAL_OK);
    svc_secret(cs.spec, id, "pw");
    rm.id = id;

    fx_handle(WIRE_MSG_REMOVE_SECRET, &rm, &o_rm);
    fx_handle(WIRE_MSG_CREATE_SERVICE, &cs, &o_cs);
    cr_assert_eq(o_rm.code, SHOAL_OK);
    fx_commit(&o_cs);
    fx_commit(&o_rm);

    cr_expect_eq(o_cs.code, SHOAL_OK);
    cr_expect_eq(o_rm.code, SHOAL_INVALID_ARGUMENT);
    cr_expect(has(o_rm.message, "is in use by the following service: a"));
    control_out_fini(&o_rm);
    control_out_fini(&o_cs);
    wire_free(&wire_type_create_service_request, &cs);
}

/* A config referenced by a service cannot be removed. */
Test(control_secret, config_remove_refused_while_in_use)
{
    struct shoal_config_spec *spec = calloc(1, sizeof *spec);
    struct shoal_create_config_request req = {.spec = spec};
    struct shoal_service_spec *s = svc_spec("a");
    struct control_out out;
    char id[64];

    spec->annotations.name = strdup("conf");
    wire_bytes_set(&spec->data, "x", 1);
    cr_assert_eq(fx_call(WIRE_MSG_CREATE_CONFIG, &req, &out), SHOAL_OK);
    strcpy(id, ((struct shoal_config *)out.reply)->id);
    control_out_fini(&out);
    wire_free(&wire_type_create_config_request, &req);
    s->task.container->configs = calloc(1, sizeof *s->task.container->configs);
    s->task.container->n_configs = 1;
    s->task.container->configs[0].config_id = strdup(id);
    s->task.container->configs[0].config_name = strdup("conf");
    s->task.container->configs[0].file.name = strdup("/conf");
    cr_assert_eq(svc_add(s, NULL), SHOAL_OK);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_CONFIG, id, false, &out),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect(has(out.message, "config 'conf' is in use"));
    control_out_fini(&out);
}

/* Clusters list by name; a missing network is not found. */
Test(control_list, clusters_by_name_and_missing_network)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply *rep;
    struct control_out out;

    wire_strs_push(&req.names, "default");
    rep = list(WIRE_MSG_LIST_CLUSTERS, &req, &out);
    cr_assert_eq(rep->n_clusters, 1);
    cr_expect_eq(rep->clusters[0].root_ca.ca_key.len, 0);
    control_out_fini(&out);
    wire_free(&wire_type_list_request, &req);

    cr_expect_eq(id_call(WIRE_MSG_REMOVE_NETWORK, "ghost", false, &out),
                 SHOAL_NOT_FOUND);
    cr_expect_str_eq(out.message, "network ghost not found");
    control_out_fini(&out);
}
