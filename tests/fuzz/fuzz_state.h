/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_state.h: a manager's state without its sockets, for the fuzz
 * targets that feed it (fuzz_wal, fuzz_statedb, fuzz_control).
 *
 * A store with the control API's checks, as shoald builds it
 * (manager_start), and the steps of shoald's paths that touch it: a
 * request handled and, for a write, its proposal applied at the next
 * index and its reply built (server_control, commit_apply,
 * pending_finish); every object read back. The properties checked on the
 * way are the manager's promises to its clients and to its own restart:
 * no reply carries a secret's data or the CA key; every stored object
 * encodes and decodes to an equal one (what LMDB gets at a flush is what
 * the next start can load); apply never fails on a well-formed entry.
 */
#ifndef SHOAL_TESTS_FUZZ_STATE_H
#define SHOAL_TESTS_FUZZ_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "fuzz.h"
#include "shoal/json.h"
#include "base/base.h"
#include "shoal/wire.h"
#include "store/store.h"

struct fuzz_state {
    struct store *store;
    struct control ctl;
};

/* An empty store with the manager's checks. Returns 0 or -1. */
static inline int
fuzz_state_open(struct fuzz_state *st)
{
    struct store_config cfg = {.check = control_check, .check_arg = &st->ctl};
    struct control_env env = {.node_id = "fuzznode0000000000000000a",
                              .cluster_id = "fuzzcluster00000000000000a"};

    memset(st, 0, sizeof *st);
    if (store_new(&st->store, &cfg) != 0) {
        return -1;
    }
    control_init(&st->ctl, st->store, &env);
    return 0;
}

static inline void
fuzz_state_close(struct fuzz_state *st)
{
    store_free(st->store);
    st->store = NULL;
}

/* A reply that leaves the manager holds no secret data and no CA key. */
static inline void
fuzz_check_object_redacted(enum shoal_kind kind, const void *obj)
{
    if (kind == SHOAL_KIND_SECRET) {
        const struct shoal_secret *s = obj;

        FUZZ_CHECK(s->spec.data.len == 0 && s->spec.data.data == NULL);
    } else if (kind == SHOAL_KIND_CLUSTER) {
        const struct shoal_cluster *c = obj;

        FUZZ_CHECK(c->root_ca.ca_key.len == 0);
    }
}

static inline void
fuzz_check_reply(const struct wire_type *t, const void *reply)
{
    const struct shoal_list_reply *l = reply;

    if (!reply) {
        return;
    }
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        if (t == wire_kind_type((enum shoal_kind)k)) {
            fuzz_check_object_redacted((enum shoal_kind)k, reply);
        }
    }
    if (t == &wire_type_list_reply) {
        for (size_t i = 0; i < l->n_secrets; i++) {
            fuzz_check_object_redacted(SHOAL_KIND_SECRET, &l->secrets[i]);
        }
        for (size_t i = 0; i < l->n_clusters; i++) {
            fuzz_check_object_redacted(SHOAL_KIND_CLUSTER, &l->clusters[i]);
        }
    }
}

/* Check and encode what control_handle() answered, as conn_reply does. */
static inline void
fuzz_state_answer(uint16_t type, const struct control_out *out)
{
    struct wire_buf b = {0};

    if (out->code != SHOAL_OK || !out->reply_type) {
        return;
    }
    fuzz_check_reply(out->reply_type, out->reply);
    if (out->reply) {
        wire_frame_append(&b, (uint16_t)(type | WIRE_REPLY), 0, 1,
                          out->reply_type, out->reply);
    }
    wire_buf_fini(&b);
}

/* Apply p at the next index; apply fails only when out of memory. */
static inline void
fuzz_state_apply(struct fuzz_state *st, const struct shoal_proposal *p,
                 struct store_verdict *v)
{
    uint64_t index = store_applied(st->store) + 1;

    FUZZ_CHECK(store_apply(st->store, index, p, v) == 0);
    FUZZ_CHECK(store_applied(st->store) == index);
    FUZZ_CHECK(v->code != SHOAL_OK || v->message[0] == '\0');
}

/*
 * Handle a decoded request as shoald does: a read is answered; a write's
 * proposal goes through the log's encoding (the bytes a replay decodes),
 * is applied, and its reply built from the verdict.
 */
static inline void
fuzz_state_request(struct fuzz_state *st, uint16_t type, const void *req)
{
    struct control_out out = {0};
    struct shoal_proposal back = {0};
    struct store_verdict v;
    struct wire_buf log = {0};

    if (control_handle(&st->ctl, type, req, &out) != 0) {
        goto out_fini;
    }
    if (!out.proposal) {
        fuzz_state_answer(type, &out);
        goto out_fini;
    }
    FUZZ_CHECK(out.code == SHOAL_OK);
    /* The entry in the log must decode at replay into the same writes. */
    if (wire_encode(&wire_type_proposal, out.proposal, &log) == 0) {
        FUZZ_CHECK(wire_decode(&wire_type_proposal, &back, log.data, log.len) ==
                   0);
        FUZZ_CHECK(wire_equal(&wire_type_proposal, &back, out.proposal));
        wire_free(&wire_type_proposal, &back);
    }
    fuzz_state_apply(st, out.proposal, &v);
    if (control_reply_written(&st->ctl, &v, &out) == 0) {
        fuzz_state_answer(type, &out);
    }

out_fini:
    wire_buf_fini(&log);
    control_out_fini(&out);
}

/*
 * When *field is not an id of kind but name is the name of an object of
 * kind (name may be *field itself), make *field that object's id.
 */
static inline void
fuzz_resolve(struct fuzz_state *st, enum shoal_kind kind, const char *name,
             char **field)
{
    const void *obj;
    char *id;

    if ((*field && store_get(st->store, kind, *field)) || !name ||
        !(obj = store_get_by_name(st->store, kind, name)) ||
        !(id = str_dup(wire_object_id(kind, obj)))) {
        return;
    }
    free(*field);
    *field = id;
}

/* The references of a service spec, by name to by id. */
static inline void
fuzz_resolve_spec(struct fuzz_state *st, struct shoal_service_spec *spec)
{
    struct shoal_container_spec *c = spec ? spec->task.container : NULL;
    struct shoal_network_attachment *n;

    for (size_t i = 0; c && i < c->n_secrets; i++) {
        fuzz_resolve(st, SHOAL_KIND_SECRET, c->secrets[i].secret_name,
                     &c->secrets[i].secret_id);
    }
    for (size_t i = 0; c && i < c->n_configs; i++) {
        fuzz_resolve(st, SHOAL_KIND_CONFIG, c->configs[i].config_name,
                     &c->configs[i].config_id);
    }
    for (size_t i = 0; spec && i < spec->task.n_networks; i++) {
        n = &spec->task.networks[i];
        fuzz_resolve(st, SHOAL_KIND_NETWORK, n->target, &n->target);
    }
}

/*
 * Names to ids in a decoded request, as shoalctl resolves them
 * (ctl_resolve) before it sends one: the target's object id, and the
 * secret, config and network references of a service spec. Ids are
 * random, so a fuzzer could not otherwise name an existing object.
 */
static inline void
fuzz_state_resolve(struct fuzz_state *st, const struct wire_msg_info *info,
                   void *req)
{
    const struct wire_type *t = info->request;

    if (t == &wire_type_id_request) {
        struct shoal_id_request *r = req;

        fuzz_resolve(st, info->kind, r->id, &r->id);
    } else if (t == &wire_type_update_service_request) {
        struct shoal_update_service_request *u = req;

        fuzz_resolve(st, SHOAL_KIND_SERVICE, u->id, &u->id);
        fuzz_resolve_spec(st, u->spec);
    } else if (t == &wire_type_create_service_request) {
        fuzz_resolve_spec(st,
                          ((struct shoal_create_service_request *)req)->spec);
    } else if (t == &wire_type_update_cluster_request) {
        struct shoal_update_cluster_request *u = req;

        fuzz_resolve(st, SHOAL_KIND_CLUSTER, u->id, &u->id);
    } else if (t == &wire_type_update_secret_request) {
        struct shoal_update_secret_request *u = req;

        fuzz_resolve(st, SHOAL_KIND_SECRET, u->id, &u->id);
    } else if (t == &wire_type_update_config_request) {
        struct shoal_update_config_request *u = req;

        fuzz_resolve(st, SHOAL_KIND_CONFIG, u->id, &u->id);
    }
}

/* What fuzz_state_visit() is handed. */
struct fuzz_visit {
    const struct store *store;
    enum shoal_kind kind;
};

/* Every object is found by its id, encodes, decodes back equal, and
 * shows as JSON. */
static inline int
fuzz_state_visit(const void *obj, void *arg)
{
    const struct fuzz_visit *fv = arg;
    const struct wire_type *t = wire_kind_type(fv->kind);
    struct wire_buf b = {0};
    void *back = calloc(1, wire_type_size(t));
    json_t *j;

    if (!back) {
        return 0;
    }
    FUZZ_CHECK(store_get(fv->store, fv->kind, wire_object_id(fv->kind, obj)) ==
               obj);
    if (wire_encode(t, obj, &b) == 0) {
        FUZZ_CHECK(wire_decode(t, back, b.data, b.len) == 0);
        FUZZ_CHECK(wire_equal(t, back, obj));
        wire_free(t, back);
    }
    free(back);
    wire_buf_fini(&b);
    j = wire_to_json(t, obj);
    json_decref(j);
    return 0;
}

/* List every kind through the control API, and check every object. */
static inline void
fuzz_state_read_all(struct fuzz_state *st)
{
    static const uint16_t lists[] = {
        WIRE_MSG_LIST_NODES,    WIRE_MSG_LIST_TASKS,    WIRE_MSG_LIST_SERVICES,
        WIRE_MSG_LIST_NETWORKS, WIRE_MSG_LIST_CLUSTERS, WIRE_MSG_LIST_SECRETS,
        WIRE_MSG_LIST_CONFIGS,
    };
    struct shoal_list_request lr = {0};
    struct shoal_service_statuses_request sr = {0};
    struct store_query all = {.by = STORE_BY_ALL};

    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        fuzz_state_request(st, lists[i], &lr);
    }
    fuzz_state_request(st, WIRE_MSG_LIST_SERVICE_STATUSES, &sr);
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        struct fuzz_visit fv = {st->store, (enum shoal_kind)k};

        FUZZ_CHECK(
            store_find(st->store, fv.kind, &all, fuzz_state_visit, &fv) == 0);
    }
}

#endif
