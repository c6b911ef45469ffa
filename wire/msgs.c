/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * msgs.c: the table of message types, and the object kinds.
 *
 * Every request type names the schema type of its body and of its success
 * reply; PROTOCOL.md lists the same table for people.
 */
#include "shoal/wire.h"

#include <string.h>

#include "base/base.h"

#define T(x) (&wire_type_##x)
#define R(type, name, req, rep, kind, write)                               \
    {WIRE_MSG_##type, name, req, rep, SHOAL_KIND_##kind, write, false}
#define P(type, name, req, rep)                                            \
    {WIRE_MSG_##type, name, req, rep, SHOAL_KIND_NONE, false, true}

static const struct wire_msg_info wire_msgs[] = {
    R(HELLO, "hello", T(hello), T(hello_reply), NONE, false),
    R(STATUS, "status", T(status_msg), NULL, NONE, false),
    R(CANCEL, "cancel", NULL, NULL, NONE, false),
    R(STATS, "stats", NULL, T(stats_reply), NONE, false),

    R(GET_NODE, "get_node", T(id_request), T(node), NODE, false),
    R(LIST_NODES, "list_nodes", T(list_request), T(list_reply), NODE, false),
    R(UPDATE_NODE, "update_node", T(update_node_request), T(node), NODE,
      true),
    R(REMOVE_NODE, "remove_node", T(id_request), NULL, NODE, true),

    R(GET_TASK, "get_task", T(id_request), T(task), TASK, false),
    R(LIST_TASKS, "list_tasks", T(list_request), T(list_reply), TASK, false),
    R(REMOVE_TASK, "remove_task", T(id_request), NULL, TASK, true),

    R(CREATE_SERVICE, "create_service", T(create_service_request),
      T(service), SERVICE, true),
    R(GET_SERVICE, "get_service", T(id_request), T(service), SERVICE, false),
    R(UPDATE_SERVICE, "update_service", T(update_service_request),
      T(service), SERVICE, true),
    R(REMOVE_SERVICE, "remove_service", T(id_request), NULL, SERVICE, true),
    R(LIST_SERVICES, "list_services", T(list_request), T(list_reply),
      SERVICE, false),
    R(LIST_SERVICE_STATUSES, "list_service_statuses",
      T(service_statuses_request), T(service_statuses_reply), SERVICE,
      false),

    R(CREATE_NETWORK, "create_network", T(create_network_request),
      T(network), NETWORK, true),
    R(GET_NETWORK, "get_network", T(id_request), T(network), NETWORK, false),
    R(REMOVE_NETWORK, "remove_network", T(id_request), NULL, NETWORK, true),
    R(LIST_NETWORKS, "list_networks", T(list_request), T(list_reply),
      NETWORK, false),

    R(GET_CLUSTER, "get_cluster", T(id_request), T(cluster), CLUSTER, false),
    R(LIST_CLUSTERS, "list_clusters", T(list_request), T(list_reply),
      CLUSTER, false),
    R(UPDATE_CLUSTER, "update_cluster", T(update_cluster_request),
      T(cluster), CLUSTER, true),

    R(CREATE_SECRET, "create_secret", T(create_secret_request), T(secret),
      SECRET, true),
    R(GET_SECRET, "get_secret", T(id_request), T(secret), SECRET, false),
    R(UPDATE_SECRET, "update_secret", T(update_secret_request), T(secret),
      SECRET, true),
    R(REMOVE_SECRET, "remove_secret", T(id_request), NULL, SECRET, true),
    R(LIST_SECRETS, "list_secrets", T(list_request), T(list_reply), SECRET,
      false),

    R(CREATE_CONFIG, "create_config", T(create_config_request), T(config),
      CONFIG, true),
    R(GET_CONFIG, "get_config", T(id_request), T(config), CONFIG, false),
    R(UPDATE_CONFIG, "update_config", T(update_config_request), T(config),
      CONFIG, true),
    R(REMOVE_CONFIG, "remove_config", T(id_request), NULL, CONFIG, true),
    R(LIST_CONFIGS, "list_configs", T(list_request), T(list_reply), CONFIG,
      false),

    R(WATCH, "watch", T(watch_request), T(watch_message), NONE, false),

    P(RAFT, "raft", T(raft_message), NULL),
    P(JOIN, "join", T(join_request), T(join_reply)),
    P(SNAP_CHUNK, "snap_chunk", T(snap_chunk), NULL),
    P(SNAP_ACK, "snap_ack", T(snap_ack), NULL),
};

const struct wire_msg_info *
wire_msg_info(uint16_t type)
{
    for (size_t i = 0; i < ARRAY_LEN(wire_msgs); i++) {
        if (wire_msgs[i].type == type) {
            return &wire_msgs[i];
        }
    }
    return NULL;
}

static const struct {
    const char *name;
    const struct wire_type *type;
} wire_kinds[SHOAL_KIND_COUNT] = {
    [SHOAL_KIND_NODE] = {"node", T(node)},
    [SHOAL_KIND_SERVICE] = {"service", T(service)},
    [SHOAL_KIND_TASK] = {"task", T(task)},
    [SHOAL_KIND_NETWORK] = {"network", T(network)},
    [SHOAL_KIND_CLUSTER] = {"cluster", T(cluster)},
    [SHOAL_KIND_SECRET] = {"secret", T(secret)},
    [SHOAL_KIND_CONFIG] = {"config", T(config)},
};

const struct wire_type *
wire_kind_type(enum shoal_kind kind)
{
    if (kind <= SHOAL_KIND_NONE || kind >= SHOAL_KIND_COUNT) {
        return NULL;
    }
    return wire_kinds[kind].type;
}

const char *
wire_kind_name(enum shoal_kind kind)
{
    if (kind <= SHOAL_KIND_NONE || kind >= SHOAL_KIND_COUNT) {
        return "unknown";
    }
    return wire_kinds[kind].name;
}

enum shoal_kind
wire_kind_parse(const char *name)
{
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        if (strcmp(name, wire_kinds[k].name) == 0) {
            return (enum shoal_kind)k;
        }
    }
    return SHOAL_KIND_NONE;
}

enum shoal_kind
wire_object_kind(const struct shoal_object *o, void **which)
{
    void *const slots[SHOAL_KIND_COUNT] = {
        [SHOAL_KIND_NODE] = o->node,       [SHOAL_KIND_SERVICE] = o->service,
        [SHOAL_KIND_TASK] = o->task,       [SHOAL_KIND_NETWORK] = o->network,
        [SHOAL_KIND_CLUSTER] = o->cluster, [SHOAL_KIND_SECRET] = o->secret,
        [SHOAL_KIND_CONFIG] = o->config,
    };
    enum shoal_kind found = SHOAL_KIND_NONE;

    *which = NULL;
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        if (!slots[k]) {
            continue;
        }
        if (found != SHOAL_KIND_NONE) {
            *which = NULL;
            return SHOAL_KIND_NONE;
        }
        found = (enum shoal_kind)k;
        *which = slots[k];
    }
    return found;
}

/* Every object struct begins with "char *id; struct shoal_meta meta;",
 * which these checks pin, so one cast serves every kind. */
struct wire_object_head {
    char *id;
    struct shoal_meta meta;
};

#define HEAD_CHECK(k)                                                      \
    _Static_assert(offsetof(struct shoal_##k, meta) ==                     \
                       offsetof(struct wire_object_head, meta),            \
                   "object " #k " must start with id and meta")
HEAD_CHECK(node);
HEAD_CHECK(service);
HEAD_CHECK(task);
HEAD_CHECK(network);
HEAD_CHECK(cluster);
HEAD_CHECK(secret);
HEAD_CHECK(config);

const char *
wire_object_id(enum shoal_kind kind, const void *obj)
{
    (void)kind;
    return ((const struct wire_object_head *)obj)->id;
}

struct shoal_meta *
wire_object_meta(enum shoal_kind kind, void *obj)
{
    (void)kind;
    return &((struct wire_object_head *)obj)->meta;
}
