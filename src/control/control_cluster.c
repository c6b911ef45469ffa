/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_cluster.c: the cluster requests (SWARMKIT.md 1.5): get, and
 * update with its spec rules and join-token rotation; the default spec
 * of a new cluster; the pruning of expired certificate blacklist entries.
 *
 * The cluster's CA key is never sent: replies pass through
 * control_redact(). New tokens are made here, before the proposal, so
 * every manager applies the same ones.
 */
#include "control/control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Blacklist entries stay 7 days past their certificate's expiry. */
#define CONTROL_BLACKLIST_GRACE_NS (INT64_C(7) * 24 * CONTROL_NS_PER_H)

int
control_cluster_default_spec(struct shoal_cluster_spec *spec)
{
    spec->annotations.name = str_dup("default");
    spec->orchestration.task_history_retention_limit = 5;
    spec->raft.snapshot_interval = 10000;
    spec->raft.log_entries_for_slow_followers = 500;
    spec->raft.heartbeat_tick = 1;
    spec->raft.election_tick = 10;
    spec->dispatcher.heartbeat_period = 5 * CONTROL_NS_PER_S;
    spec->ca_config.node_cert_expiry = 90 * 24 * CONTROL_NS_PER_H;
    return spec->annotations.name ? 0 : ERR_NOMEM;
}

void
control_blacklist_prune(struct shoal_cluster *cl, int64_t now)
{
    size_t kept = 0;

    for (size_t i = 0; i < cl->n_blacklisted_certificates; i++) {
        struct shoal_blacklisted_cert *b = &cl->blacklisted_certificates[i];

        if (b->expiry != 0 && b->expiry < now - CONTROL_BLACKLIST_GRACE_NS) {
            wire_free(&wire_type_blacklisted_cert, b);
            continue;
        }
        cl->blacklisted_certificates[kept++] = *b;
    }
    cl->n_blacklisted_certificates = kept;
}

static int
cluster_spec_valid(const struct shoal_cluster_spec *spec,
                   struct control_out *out)
{
    if (!spec) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "invalid argument: spec must be provided");
        return SHOAL_INVALID_ARGUMENT;
    }
    /* A zero expiry is "unset" in shoal's encoding and keeps the CA's
     * default; any other value must reach SwarmKit's minimum of 1h. */
    if (spec->ca_config.node_cert_expiry != 0 &&
        spec->ca_config.node_cert_expiry < CONTROL_NS_PER_H) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "minimum certificate expiry time is: 1h0m0s");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (spec->dispatcher.heartbeat_period < 0) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "heartbeat time period cannot be a negative duration");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!spec->annotations.name ||
        strcmp(spec->annotations.name, "default") != 0) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "modification of cluster name is not allowed");
        return SHOAL_INVALID_ARGUMENT;
    }
    return SHOAL_OK;
}

/* Replace *tok with a fresh token. Returns 0, ERR_NOMEM or ERR_TLS. */
static int
rotate_token(struct shoal_cluster *cl, char **tok)
{
    char token[CONTROL_TOKEN_LEN + 1];
    char *copy;
    int rc = control_join_token(cl, cl->id, token);

    if (rc != 0) {
        return rc;
    }
    copy = str_dup(token);
    if (!copy) {
        return ERR_NOMEM;
    }
    free(*tok);
    *tok = copy;
    return 0;
}

static int
cluster_update(struct control *c, const struct shoal_update_cluster_request *r,
               struct control_out *out)
{
    const struct shoal_cluster *cur;
    struct shoal_cluster *cl;
    int64_t now = time_now_ns();
    int rc = 0;

    if (!r->id || !*r->id) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: cluster id must be provided");
    }
    if (r->version == 0) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: a version (1 or more) must be "
                            "provided");
    }
    if (cluster_spec_valid(r->spec, out) != SHOAL_OK) {
        return 0;
    }
    cur = control_lookup(c, out, SHOAL_KIND_CLUSTER, r->id);
    if (!cur || !control_version_ok(out, r->version, cur->meta.version)) {
        return 0;
    }

    cl = control_dup(SHOAL_KIND_CLUSTER, cur);
    if (!cl) {
        return ERR_NOMEM;
    }
    wire_free(&wire_type_cluster_spec, &cl->spec);
    if (wire_copy(&wire_type_cluster_spec, &cl->spec, r->spec) != 0) {
        control_obj_free(SHOAL_KIND_CLUSTER, cl);
        return ERR_NOMEM;
    }
    cl->meta.version = r->version;
    cl->meta.updated_at = now;
    control_blacklist_prune(cl, now);
    if (r->rotate_worker_token) {
        rc = rotate_token(cl, &cl->root_ca.join_tokens.worker);
    }
    if (rc == 0 && r->rotate_manager_token) {
        rc = rotate_token(cl, &cl->root_ca.join_tokens.manager);
    }
    if (rc != 0) {
        control_obj_free(SHOAL_KIND_CLUSTER, cl);
        if (rc == ERR_NOMEM) {
            return rc;
        }
        return control_fail(out, SHOAL_INTERNAL, "cannot make a join token: %s",
                            err_str(rc));
    }
    rc = control_propose(out, SHOAL_ACTION_UPDATE, SHOAL_KIND_CLUSTER, cl);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_CLUSTER, r->id);
    return control_precheck(c, out);
}

int
control_cluster_handle(struct control *c, uint16_t type, const void *req,
                       struct control_out *out)
{
    const struct shoal_id_request *ir = req;
    const void *obj;

    switch (type) {
    case WIRE_MSG_GET_CLUSTER:
        obj = control_lookup(c, out, SHOAL_KIND_CLUSTER, ir->id);
        return obj ? control_reply_copy(c, out, SHOAL_KIND_CLUSTER, obj) : 0;
    case WIRE_MSG_UPDATE_CLUSTER:
        return cluster_update(c, req, out);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "unknown cluster request %u", (unsigned)type);
    }
}
