/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * shoal/types.h: the C form of every object and message, made from
 * shoal/schema.def, and the enums their fields hold.
 *
 * Ownership: every pointer inside these structs is owned by the struct
 * that holds it (malloc'd); wire_free() releases all of it, wire_copy()
 * duplicates all of it. A zeroed struct is a valid empty value.
 */
#ifndef SHOAL_TYPES_H
#define SHOAL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes that need not be text (secret and config payloads). */
struct shoal_bytes {
    uint8_t *data;
    size_t len;
};

/* A list of NUL-terminated strings. */
struct shoal_strs {
    char **v;
    size_t n;
};

struct shoal_u32s {
    uint32_t *v;
    size_t n;
};

/* A map of strings, kept sorted by key with keys unique (labels). */
struct shoal_kv {
    char *key;
    char *value;
};

struct shoal_map {
    struct shoal_kv *v;
    size_t n;
};

/* Object kinds, as the watch API and raft entries name them. */
enum shoal_kind {
    SHOAL_KIND_NONE = 0,
    SHOAL_KIND_NODE = 1,
    SHOAL_KIND_SERVICE = 2,
    SHOAL_KIND_TASK = 3,
    SHOAL_KIND_NETWORK = 4,
    SHOAL_KIND_CLUSTER = 5,
    SHOAL_KIND_SECRET = 6,
    SHOAL_KIND_CONFIG = 7,
    SHOAL_KIND_COUNT = 8,
};

/* What a change did; also a mask in watch selectors. */
enum shoal_action {
    SHOAL_ACTION_CREATE = 1,
    SHOAL_ACTION_UPDATE = 2,
    SHOAL_ACTION_REMOVE = 4,
};

enum shoal_node_role {
    SHOAL_ROLE_WORKER = 0,
    SHOAL_ROLE_MANAGER = 1,
};

enum shoal_node_membership {
    SHOAL_MEMBERSHIP_PENDING = 0,
    SHOAL_MEMBERSHIP_ACCEPTED = 1,
};

enum shoal_node_availability {
    SHOAL_AVAILABILITY_ACTIVE = 0,
    SHOAL_AVAILABILITY_PAUSE = 1,
    SHOAL_AVAILABILITY_DRAIN = 2,
};

enum shoal_node_state {
    SHOAL_NODE_UNKNOWN = 0,
    SHOAL_NODE_DOWN = 1,
    SHOAL_NODE_READY = 2,
    SHOAL_NODE_DISCONNECTED = 3,
};

enum shoal_reachability {
    SHOAL_REACHABILITY_UNKNOWN = 0,
    SHOAL_REACHABILITY_UNREACHABLE = 1,
    SHOAL_REACHABILITY_REACHABLE = 2,
};

/* Task states are ordered: a task only moves up. Values as SwarmKit's. */
enum shoal_task_state {
    SHOAL_TASK_NEW = 0,
    SHOAL_TASK_PENDING = 64,
    SHOAL_TASK_ASSIGNED = 192,
    SHOAL_TASK_ACCEPTED = 256,
    SHOAL_TASK_PREPARING = 320,
    SHOAL_TASK_READY = 384,
    SHOAL_TASK_STARTING = 448,
    SHOAL_TASK_RUNNING = 512,
    SHOAL_TASK_COMPLETE = 576,
    SHOAL_TASK_SHUTDOWN = 640,
    SHOAL_TASK_FAILED = 704,
    SHOAL_TASK_REJECTED = 768,
    SHOAL_TASK_REMOVE = 800,
    SHOAL_TASK_ORPHANED = 832,
};

enum shoal_mount_type {
    SHOAL_MOUNT_BIND = 0,
    SHOAL_MOUNT_VOLUME = 1,
    SHOAL_MOUNT_TMPFS = 2,
    SHOAL_MOUNT_NPIPE = 3,
};

enum shoal_restart_condition {
    SHOAL_RESTART_NONE = 0,
    SHOAL_RESTART_ON_FAILURE = 1,
    SHOAL_RESTART_ANY = 2,
};

/* 0 means "no mode given", which a create refuses. */
enum shoal_service_mode_kind {
    SHOAL_MODE_NONE = 0,
    SHOAL_MODE_REPLICATED = 1,
    SHOAL_MODE_GLOBAL = 2,
    SHOAL_MODE_REPLICATED_JOB = 3,
    SHOAL_MODE_GLOBAL_JOB = 4,
};

enum shoal_failure_action {
    SHOAL_FAILURE_PAUSE = 0,
    SHOAL_FAILURE_CONTINUE = 1,
    SHOAL_FAILURE_ROLLBACK = 2,
};

enum shoal_update_order {
    SHOAL_ORDER_STOP_FIRST = 0,
    SHOAL_ORDER_START_FIRST = 1,
};

enum shoal_port_protocol {
    SHOAL_PROTO_TCP = 0,
    SHOAL_PROTO_UDP = 1,
    SHOAL_PROTO_SCTP = 2,
};

enum shoal_publish_mode {
    SHOAL_PUBLISH_INGRESS = 0,
    SHOAL_PUBLISH_HOST = 1,
};

enum shoal_endpoint_mode {
    SHOAL_ENDPOINT_VIP = 0,
    SHOAL_ENDPOINT_DNSRR = 1,
};

enum shoal_update_state {
    SHOAL_UPDATE_UNKNOWN = 0,
    SHOAL_UPDATE_UPDATING = 1,
    SHOAL_UPDATE_PAUSED = 2,
    SHOAL_UPDATE_COMPLETED = 3,
    SHOAL_UPDATE_ROLLBACK_STARTED = 4,
    SHOAL_UPDATE_ROLLBACK_PAUSED = 5,
    SHOAL_UPDATE_ROLLBACK_COMPLETED = 6,
};

/* Declarations first, so that F_OPT and F_LIST may point at any type. */
#define SCHEMA_TYPE(m) struct shoal_##m;
#include "shoal/schema_types.h"

#define S_BEGIN(m) struct shoal_##m {
#define S_END(m) };
#define F_U64(m, t, f) uint64_t f;
#define F_I64(m, t, f) int64_t f;
#define F_U32(m, t, f) uint32_t f;
#define F_BOOL(m, t, f) bool f;
#define F_F64(m, t, f) double f;
#define F_STR(m, t, f, max) char *f;
#define F_BYTES(m, t, f, max) struct shoal_bytes f;
#define F_STRS(m, t, f, n, max) struct shoal_strs f;
#define F_U32S(m, t, f, n) struct shoal_u32s f;
#define F_MAP(m, t, f) struct shoal_map f;
#define F_MSG(m, t, f, ty) struct shoal_##ty f;
#define F_OPT(m, t, f, ty) struct shoal_##ty *f;
#define F_LIST(m, t, f, ty, n)                                             \
    struct shoal_##ty *f;                                                  \
    size_t n_##f;
#include "shoal/schema.def"
#include "shoal/schema_undef.h"

#endif
