/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_wire_golden.c: the golden frames of wire/golden, byte for byte.
 *
 * Each golden frame is a C value built here and a committed .bin file
 * (with a .hex dump beside it). The tests encode the value and compare it
 * with the COMMITTED bytes, decode the bytes back to an equal value, and
 * cut every frame at every length. Nothing is regenerated during a normal
 * run. After a deliberate change of the wire format, rewrite the files with
 *
 *   SHOAL_GOLDEN_UPDATE=1 build/test/unit-tests --filter 'wire_golden/[a-z]*'
 *
 * from the top of the tree and review the diff of the .hex files. The
 * files are found in wire/golden below the current directory, or in
 * $SHOAL_GOLDEN_DIR.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/wire.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>

/* LeakSanitizer's report at exit alone does not fail a Criterion test. */
#define EXPECT_NO_LEAKS()                                                  \
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0,                    \
                 "LeakSanitizer found leaks (see above)")
#else
#define EXPECT_NO_LEAKS() ((void)0)
#endif

/* Static schema values: file-scope compound literals live for the whole
 * run, so the golden values need no building and no freeing. */
#define MAP(...)                                                           \
    {                                                                      \
        .v = (struct shoal_kv[]){__VA_ARGS__},                             \
        .n = sizeof((struct shoal_kv[]){__VA_ARGS__}) /                    \
             sizeof(struct shoal_kv)                                       \
    }
#define STRS(...)                                                          \
    {                                                                      \
        .v = (char *[]){__VA_ARGS__},                                      \
        .n = sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)              \
    }
#define U32S(...)                                                          \
    {                                                                      \
        .v = (uint32_t[]){__VA_ARGS__},                                    \
        .n = sizeof((uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t)          \
    }
#define BYTES(...)                                                         \
    {                                                                      \
        .data = (uint8_t[]){__VA_ARGS__},                                  \
        .len = sizeof((uint8_t[]){__VA_ARGS__})                            \
    }
#define LIST(f, ty, ...)                                                   \
    .f = (struct shoal_##ty[]){__VA_ARGS__},                               \
    .n_##f = sizeof((struct shoal_##ty[]){__VA_ARGS__}) /                  \
             sizeof(struct shoal_##ty)
#define OPT(ty, ...) (&(struct shoal_##ty){__VA_ARGS__})

#define SEC 1000000000LL
#define ID_NODE "3x0kq2v7m1n8b4c6z9l5j0h2g"
#define ID_NODE2 "7p1w9e3r5t2y8u4i6o0a1s3d5"
#define ID_SERVICE "k2j4h6g8f0d1s3a5q7w9e2r4t"
#define ID_TASK "t5y7u9i1o3p2a4s6d8f0g1h3j"
#define ID_NETWORK "n0b9v8c7x6z5l4k3j2h1g0f9d"
#define ID_CLUSTER "c1l2u3s4t5e6r7i8d9a0b1c2d"
#define ID_SECRET "s9e8c7r6e5t4i3d2a1b0c9d8e"
#define ID_CONFIG "f1g2h3i4j5k6l7m8n9o0p1q2r"

/* The meta of an object last changed by raft entry 42. */
#define META42                                                             \
    {                                                                      \
        .version = 42, .created_at = 1724248987412000000LL,                \
        .updated_at = 1724249001000000001LL                                \
    }

static struct shoal_container_spec golden_container = {
    .image = "nginx:1.25-alpine@sha256:"
             "0f6c3a2c6b7a1d7d4e9f1a8b3c5d7e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    .command = STRS("nginx"),
    .args = STRS("-g", "daemon off;"),
    .env = STRS("LANG=C.UTF-8", "GREETING=h\xc3\xa9llo w\xc3\xb6rld"),
    .hostname = "web",
    .dir = "/srv",
    .user = "nginx",
    .tty = true,
    LIST(mounts, mount,
         {.type = SHOAL_MOUNT_BIND,
          .source = "/etc/web",
          .target = "/etc/nginx",
          .readonly = true},
         {.type = SHOAL_MOUNT_TMPFS, .target = "/tmp"}),
    LIST(secrets, secret_ref,
         {.secret_id = ID_SECRET,
          .secret_name = "db-password",
          .file = {.name = "db-password",
                   .uid = "0",
                   .gid = "101",
                   .mode = 0440}}),
    LIST(configs, config_ref,
         {.config_id = ID_CONFIG,
          .config_name = "nginx-conf",
          .file = {.name = "/etc/nginx/nginx.conf", .mode = 0444}}),
    .stop_grace_period = 10 * SEC,
    .healthcheck = OPT(healthcheck,
                       .test = STRS("CMD", "curl", "-f", "http://localhost/"),
                       .interval = 30 * SEC, .timeout = 5 * SEC,
                       .retries = 3),
};

static struct shoal_service_spec golden_spec = {
    .annotations = {.name = "web",
                    .labels = MAP({"app", "web"}, {"tier", "front"})},
    .task =
        {
            .container = &golden_container,
            .resources = {.limits = {.nano_cpus = 500000000,
                                     .memory_bytes = 268435456},
                          .reservations = {.nano_cpus = 250000000,
                                           .memory_bytes = 67108864}},
            .restart = OPT(restart_policy,
                           .condition = SHOAL_RESTART_ON_FAILURE,
                           .delay = 5 * SEC, .max_attempts = 3,
                           .window = 60 * SEC),
            .placement = {.constraints = STRS("node.role==worker",
                                              "node.labels.zone!=c"),
                          .max_replicas = 2},
            LIST(networks, network_attachment,
                 {.target = ID_NETWORK, .aliases = STRS("web", "www")}),
            .log_driver = OPT(driver, .name = "json-file",
                              .options = MAP({"max-file", "3"},
                                             {"max-size", "10m"})),
            .force_update = 1,
        },
    .mode = {.kind = SHOAL_MODE_REPLICATED, .replicas = 3},
    .update = OPT(update_config, .parallelism = 2, .delay = 10 * SEC,
                  .failure_action = SHOAL_FAILURE_ROLLBACK,
                  .monitor = 5 * SEC, .max_failure_ratio = 0.25,
                  .order = SHOAL_ORDER_START_FIRST),
    .rollback = OPT(update_config, .parallelism = 1,
                    .failure_action = SHOAL_FAILURE_PAUSE),
    .endpoint = OPT(endpoint_spec, .mode = SHOAL_ENDPOINT_VIP,
                    LIST(ports, port_config,
                         {.name = "http",
                          .protocol = SHOAL_PROTO_TCP,
                          .target_port = 80,
                          .published_port = 8080},
                         {.name = "dns",
                          .protocol = SHOAL_PROTO_UDP,
                          .target_port = 53,
                          .published_port = 5353,
                          .publish_mode = SHOAL_PUBLISH_HOST})),
};

/* The same service scaled to 5 in global-job mode: a spec that differs. */
static struct shoal_service_spec golden_spec2 = {
    .annotations = {.name = "web",
                    .labels = MAP({"app", "web"}, {"tier", "edge"})},
    .task = {.container = OPT(container_spec, .image = "nginx:1.27")},
    .mode = {.kind = SHOAL_MODE_GLOBAL_JOB,
             .max_concurrent = 5,
             .total_completions = 10},
};

static struct shoal_service golden_service = {
    .id = ID_SERVICE,
    .meta = META42,
    .spec = {.annotations = {.name = "web",
                             .labels = MAP({"app", "web"},
                                           {"tier", "front"})},
             .task = {.container = OPT(container_spec,
                                       .image = "nginx:1.25-alpine")},
             .mode = {.kind = SHOAL_MODE_REPLICATED, .replicas = 3}},
    .spec_version = 42,
    .previous_spec = &golden_spec2,
    .previous_spec_version = 40,
    .endpoint = OPT(endpoint,
                    LIST(ports, port_config,
                         {.protocol = SHOAL_PROTO_TCP,
                          .target_port = 80,
                          .published_port = 30000})),
    .update_status = OPT(update_status,
                         .state = SHOAL_UPDATE_ROLLBACK_COMPLETED,
                         .started_at = 1724249000000000000LL,
                         .completed_at = 1724249001000000000LL,
                         .message = "rollback completed"),
    .job_status = OPT(job_status, .job_iteration = 7,
                      .last_execution = -1),
    .pending_delete = true,
};

static struct shoal_task golden_task = {
    .id = ID_TASK,
    .meta = {.version = 43, .created_at = 1724249002000000000LL},
    .service_id = ID_SERVICE,
    .slot = 2,
    .node_id = ID_NODE2,
    .spec = {.container = OPT(container_spec, .image = "nginx:1.25-alpine"),
             LIST(networks, network_attachment, {.target = ID_NETWORK})},
    .spec_version = 42,
    .service_annotations = {.name = "web", .labels = MAP({"app", "web"})},
    .status = {.timestamp = 1724249003000000000LL,
               .state = SHOAL_TASK_FAILED,
               .message = "started",
               .err = "task: non-zero exit (137)",
               .exit_code = -137},
    .desired_state = SHOAL_TASK_SHUTDOWN,
};

static struct shoal_node golden_node = {
    .id = ID_NODE,
    .meta = META42,
    .spec = {.annotations = {.name = "mgr-1",
                             .labels = MAP({"rack", "r12"},
                                           {"zone", "a"})},
             .desired_role = SHOAL_ROLE_MANAGER,
             .membership = SHOAL_MEMBERSHIP_ACCEPTED,
             .availability = SHOAL_AVAILABILITY_DRAIN},
    .description = {.hostname = "mgr-1.example.org",
                    .platform = {.architecture = "x86_64", .os = "linux"},
                    .resources = {.nano_cpus = 8000000000LL,
                                  .memory_bytes = 34359738368LL},
                    .engine_version = "shoal-0.1.0",
                    .engine_labels = MAP({"storage", "ssd"})},
    .status = {.state = SHOAL_NODE_READY, .addr = "192.0.2.10"},
    .manager_status = OPT(manager_status, .raft_id = 0xfedcba9876543210ULL,
                          .addr = "192.0.2.10:4242", .leader = true,
                          .reachability = SHOAL_REACHABILITY_REACHABLE),
    .role = SHOAL_ROLE_MANAGER,
};

static struct shoal_network_spec golden_network_spec = {
    .annotations = {.name = "backend",
                    .labels = MAP({"com.example.team", "payments"})},
    .driver_config = OPT(driver, .name = "overlay",
                         .options = MAP({"encrypted", ""})),
    .ipv6 = true,
    .internal = true,
    .attachable = true,
    .ipam = OPT(ipam_options, .driver = OPT(driver, .name = "default"),
                LIST(configs, ipam_config,
                     {.subnet = "10.1.0.0/24",
                      .range = "10.1.0.0/25",
                      .gateway = "10.1.0.1"},
                     {.subnet = "fd00:1::/64"})),
};

static struct shoal_network golden_network = {
    .id = ID_NETWORK,
    .meta = META42,
    .spec = {.annotations = {.name = "ingress",
                             .labels = MAP({"com.docker.swarm.predefined",
                                            "true"})},
             .driver_config = OPT(driver, .name = "overlay"),
             .ingress = true},
};

static struct shoal_cluster_spec golden_cluster_spec = {
    .annotations = {.name = "default"},
    .orchestration = {.task_history_retention_limit = 5},
    .raft = {.snapshot_interval = 10000,
             .log_entries_for_slow_followers = 500,
             .heartbeat_tick = 1,
             .election_tick = 10},
    .dispatcher = {.heartbeat_period = 5 * SEC},
    .ca_config = {.node_cert_expiry = 2160LL * 3600 * SEC},
    .task_defaults = {.log_driver = OPT(driver, .name = "local")},
    .encryption = {.auto_lock_managers = true},
};

static struct shoal_cluster golden_cluster = {
    .id = ID_CLUSTER,
    .meta = META42,
    .spec = {.annotations = {.name = "default"},
             .orchestration = {.task_history_retention_limit = 5},
             .dispatcher = {.heartbeat_period = 5 * SEC}},
    .root_ca = {.ca_cert = BYTES('-', '-', '-', '-', '-', 'B', 'E', 'G',
                                 'I', 'N', 0x0a, 0x00, 0xff, 0x80),
                .ca_cert_hash = "sha256:0a1b2c3d",
                .join_tokens = {.worker = "SWMTKN-1-abc-worker",
                                .manager = "SWMTKN-1-abc-manager"}},
    LIST(blacklisted_certificates, blacklisted_cert,
         {.node_id = ID_NODE2, .expiry = 1724249999000000000LL},
         {.node_id = "old-node"}),
    .default_address_pool = STRS("10.0.0.0/8", "fd00::/8"),
    .subnet_size = 24,
    .vxlan_udp_port = 4789,
};

static struct shoal_secret_spec golden_secret_spec = {
    .annotations = {.name = "db-password", .labels = MAP({"env", "prod"})},
    .data = BYTES('s', '3', 'c', 'r', 'e', 't', 0x00, 0xff, 0x0a),
};

static struct shoal_secret golden_secret = {
    .id = ID_SECRET,
    .meta = META42,
    .spec = {.annotations = {.name = "db-password",
                             .labels = MAP({"env", "prod"})}},
};

static struct shoal_config_spec golden_config_spec = {
    .annotations = {.name = "nginx-conf", .labels = MAP({"app", "web"})},
    .data = BYTES('s', 'e', 'r', 'v', 'e', 'r', ' ', '{', 0x0a, ' ', 'l',
                  'i', 's', 't', 'e', 'n', ' ', '8', '0', ';', 0x0a, '}',
                  0x0a),
};

static struct shoal_config golden_config = {
    .id = ID_CONFIG,
    .meta = META42,
    .spec = {.annotations = {.name = "nginx-conf"},
             .data = BYTES('e', 'm', 'p', 't', 'y', '?')},
};

/* Request bodies. */

static struct shoal_hello golden_hello = {
    .proto_min = 1, .proto_max = 3, .client_name = "shoalctl/0.1.0"};

static struct shoal_hello_reply golden_hello_reply = {
    .proto = 1,
    .node_id = ID_NODE,
    .cluster_id = ID_CLUSTER,
    .leader_id = ID_NODE,
    .server_version = "0.1.0 (1a2b3c4)",
    .max_frame_bytes = WIRE_MAX_FRAME,
};

static struct shoal_status_msg golden_status_behind = {
    .code = SHOAL_OUT_OF_RANGE,
    .message = "watcher fell behind; resume from 4242",
    .resume_from = 4242,
};

static struct shoal_status_msg golden_status_conflict = {
    .code = SHOAL_CONFLICT,
    .message = "update out of sequence: version 41 is not current (42)",
    .current_version = 42,
};

static struct shoal_status_msg golden_status_unavailable = {
    .code = SHOAL_UNAVAILABLE,
    .message = "no leader",
    .leader_addr = "192.0.2.11:4242",
};

static struct shoal_id_request golden_get = {.id = ID_SERVICE};
static struct shoal_id_request golden_get_defaults = {
    .id = ID_SERVICE, .insert_defaults = true};
static struct shoal_id_request golden_get_node = {.id = ID_NODE};
static struct shoal_id_request golden_remove_node = {.id = ID_NODE2,
                                                     .force = true};
static struct shoal_id_request golden_get_task = {.id = ID_TASK};
static struct shoal_id_request golden_get_network = {.id = ID_NETWORK};
static struct shoal_id_request golden_get_cluster = {.id = ID_CLUSTER};
static struct shoal_id_request golden_get_secret = {.id = ID_SECRET};
static struct shoal_id_request golden_get_config = {.id = ID_CONFIG};

static struct shoal_list_request golden_list_nodes = {
    .names = STRS("mgr-1.example.org", "worker-2"),
    .labels = MAP({"storage", "ssd"}),
    .node_labels = MAP({"rack", ""}, {"zone", "a"}),
    .roles = U32S(SHOAL_ROLE_MANAGER),
    .memberships = U32S(SHOAL_MEMBERSHIP_PENDING, SHOAL_MEMBERSHIP_ACCEPTED),
};

static struct shoal_list_request golden_list_tasks = {
    .name_prefixes = STRS("web."),
    .service_ids = STRS(ID_SERVICE),
    .node_ids = STRS(ID_NODE, ID_NODE2),
    .desired_states = U32S(SHOAL_TASK_RUNNING, SHOAL_TASK_SHUTDOWN),
    .runtimes = STRS("container"),
    .up_to_date = true,
};

static struct shoal_list_request golden_list_services = {
    .names = STRS("web", "api"),
    .name_prefixes = STRS("w"),
    .id_prefixes = STRS("k2j4", "zz"),
    .labels = MAP({"app", ""}, {"tier", "front"}),
    .runtimes = STRS("container"),
};

static struct shoal_list_request golden_list_names = {
    .id_prefixes = STRS("n0b9"),
    .labels = MAP({"com.example.team", "payments"}),
};

static struct shoal_list_request golden_list_clusters = {
    .names = STRS("default"),
};

static struct shoal_list_request golden_list_prefix = {
    .name_prefixes = STRS("db-", "nginx-"),
};

static struct shoal_update_node_request golden_update_node = {
    .id = ID_NODE2,
    .version = 41,
    .spec = OPT(node_spec,
                .annotations = {.name = "worker-2",
                                .labels = MAP({"zone", "b"})},
                .availability = SHOAL_AVAILABILITY_PAUSE),
};

static struct shoal_create_service_request golden_create_service = {
    .spec = &golden_spec,
};

static struct shoal_update_service_request golden_update_service = {
    .id = ID_SERVICE,
    .version = 42,
    .spec = &golden_spec2,
};

static struct shoal_update_service_request golden_rollback_service = {
    .id = ID_SERVICE,
    .version = 43,
    .rollback = true,
};

static struct shoal_service_statuses_request golden_statuses = {
    .service_ids = STRS(ID_SERVICE, "unknown-service"),
};

static struct shoal_create_network_request golden_create_network = {
    .spec = &golden_network_spec,
};

static struct shoal_update_cluster_request golden_update_cluster = {
    .id = ID_CLUSTER,
    .version = 42,
    .spec = &golden_cluster_spec,
    .rotate_worker_token = true,
};

static struct shoal_create_secret_request golden_create_secret = {
    .spec = &golden_secret_spec,
};

static struct shoal_update_secret_request golden_update_secret = {
    .id = ID_SECRET,
    .version = 42,
    .spec = OPT(secret_spec,
                .annotations = {.name = "db-password",
                                .labels = MAP({"env", "prod"},
                                              {"owner", "dba"})}),
};

static struct shoal_create_config_request golden_create_config = {
    .spec = &golden_config_spec,
};

static struct shoal_update_config_request golden_update_config = {
    .id = ID_CONFIG,
    .version = 42,
    .spec = OPT(config_spec, .annotations = {.name = "nginx-conf",
                                             .labels = MAP({"app", "web"},
                                                           {"v", "2"})},
                .data = BYTES('x')),
};

static struct shoal_watch_request golden_watch = {
    LIST(selectors, watch_selector,
         {.kind = SHOAL_KIND_SERVICE,
          .actions = SHOAL_ACTION_CREATE | SHOAL_ACTION_UPDATE,
          .name_prefix = "web"},
         {.kind = SHOAL_KIND_TASK,
          .service_id = ID_SERVICE,
          .node_id = ID_NODE2}),
    .resume_from = 4000,
    .include_old_object = true,
};

/* Reply bodies. */

static struct shoal_stats_reply golden_stats = {
    .applied_index = 0x0123456789abcdefULL,
    .log_first_index = 1,
    .log_last_index = 0x0123456789abcdf0ULL,
    .proposals = 1000,
    .entries_written = 999,
    .fsyncs = 100,
    .requests = 123456789012ULL,
    .connections = 3,
    .watchers = 1,
    .lmdb_flushes = 12,
    .objects = 4096,
};

static struct shoal_list_reply golden_list_services_reply = {
    LIST(services, service, {.id = ID_SERVICE,
                             .meta = META42,
                             .spec = {.annotations = {.name = "web"},
                                      .mode = {.kind = SHOAL_MODE_GLOBAL}}},
         {.id = "k9", .meta = {.version = 7}}),
};

static struct shoal_list_reply golden_list_tasks_reply = {
    LIST(tasks, task,
         {.id = ID_TASK,
          .service_id = ID_SERVICE,
          .status = {.state = SHOAL_TASK_RUNNING}}),
};

static struct shoal_service_statuses_reply golden_statuses_reply = {
    LIST(statuses, service_status,
         {.service_id = ID_SERVICE, .desired = 3, .running = 2},
         {.service_id = "unknown-service"}),
};

static struct shoal_watch_message golden_watch_subscribed = {0};

static struct shoal_watch_message golden_watch_event = {
    LIST(events, watch_event,
         {.action = SHOAL_ACTION_UPDATE,
          .object = {.service = &golden_service},
          .old_object = OPT(object,
                            .service = OPT(service, .id = ID_SERVICE,
                                           .meta = {.version = 40}))},
         {.action = SHOAL_ACTION_CREATE, .object = {.task = &golden_task}},
         {.action = SHOAL_ACTION_REMOVE,
          .object = {.secret = &golden_secret}}),
    .version = 4001,
};

/* One golden frame: the file name, the header, and the body's value. */
/* Manager to manager: an AppendEntries with a normal entry and a no-op,
 * a join request (its CSR cut short: the codec does not read it) and the
 * join reply. */
static struct shoal_raft_message golden_raft_append = {
    .type = 4, /* RAFT_MSG_APPEND */
    .from = 0x1122334455667788ULL,
    .to = 0x8877665544332211ULL,
    .term = 7,
    .index = 41,
    .log_term = 6,
    .commit = 40,
    LIST(entries, raft_entry,
         {.term = 7, .index = 42, .type = 0,
          .data = BYTES(0x0a, 0x03, 'a', 'b', 'c')},
         {.term = 7, .index = 43, .type = 1}),
};

static struct shoal_join_request golden_join = {
    .token = "SHOAL-1-0jq83gh746hmmp9qgts55sk3cmwggv4rhxg8hfbih7eg2sltsc-"
             "1j3w5vjap6tfh71fd80xrp9n7",
    .csr = BYTES(0x30, 0x81, 0xdd, 0x30, 0x81, 0x83),
    .node_id = ID_NODE2,
    .raft_id = 0x0123456789abcdefULL,
    .addr = "127.0.0.1:4242",
    .hostname = "manager-2",
};

static struct shoal_snap_chunk golden_snap_chunk = {
    .msg = {.type = 8, /* RAFT_MSG_SNAPSHOT */
            .from = 0x1122334455667788ULL,
            .to = 0x8877665544332211ULL,
            .term = 7,
            .snap_index = 5000,
            .snap_term = 6,
            .snap_config = BYTES(0x01, 0x02, 0x03)},
    .chunk = BYTES('S', 'N', 'A', 'P', 0x00, 0x01),
};

static struct shoal_snap_ack golden_snap_ack = {
    .from = 0x8877665544332211ULL,
    .index = 5000,
    .term = 6,
    .next_seq = 3,
};

static struct shoal_join_reply golden_join_reply = {
    .cert = BYTES(0x30, 0x82, 0x01, 0x0e, 0x30, 0x81, 0xb5),
    .cluster_id = ID_CLUSTER,
    .leader_raft_id = 0x1122334455667788ULL,
};

struct golden {
    const char *name;
    uint16_t type;
    uint8_t flags;
    uint64_t id;
    const struct wire_type *t; /* NULL: an empty body */
    const void *obj;
};

#define G(name, type, flags, id, ty, obj)                                  \
    {name, type, flags, id, &wire_type_##ty, obj}
#define RE(x) (WIRE_MSG_##x | WIRE_REPLY)

static const struct golden goldens[] = {
    G("hello", WIRE_MSG_HELLO, 0, 0, hello, &golden_hello),
    G("hello_reply", RE(HELLO), 0, 0, hello_reply, &golden_hello_reply),
    G("status", WIRE_MSG_STATUS, 0, 0x100000077ULL, status_msg,
      &golden_status_behind),
    G("status_conflict", WIRE_MSG_STATUS, 0, 9, status_msg,
      &golden_status_conflict),
    G("status_unavailable", WIRE_MSG_STATUS, 0, 10, status_msg,
      &golden_status_unavailable),
    {"cancel", WIRE_MSG_CANCEL, 0, 0x100000077ULL, NULL, NULL},
    {"stats", WIRE_MSG_STATS, WIRE_F_STALE, 2, NULL, NULL},
    G("stats_reply", RE(STATS), 0, 2, stats_reply, &golden_stats),

    G("get_node", WIRE_MSG_GET_NODE, 0, 11, id_request, &golden_get_node),
    G("list_nodes", WIRE_MSG_LIST_NODES, WIRE_F_STALE, 12, list_request,
      &golden_list_nodes),
    G("update_node", WIRE_MSG_UPDATE_NODE, 0, 13, update_node_request,
      &golden_update_node),
    G("update_node_reply", RE(UPDATE_NODE), 0, 13, node, &golden_node),
    G("remove_node", WIRE_MSG_REMOVE_NODE, 0, 14, id_request,
      &golden_remove_node),
    {"remove_node_reply", RE(REMOVE_NODE), 0, 14, NULL, NULL},

    G("get_task", WIRE_MSG_GET_TASK, 0, 20, id_request, &golden_get_task),
    G("list_tasks", WIRE_MSG_LIST_TASKS, 0, 21, list_request,
      &golden_list_tasks),
    G("list_tasks_reply", RE(LIST_TASKS), 0, 21, list_reply,
      &golden_list_tasks_reply),
    G("remove_task", WIRE_MSG_REMOVE_TASK, 0, 22, id_request,
      &golden_get_task),

    G("create_service", WIRE_MSG_CREATE_SERVICE, 0, 30,
      create_service_request, &golden_create_service),
    G("create_service_reply", RE(CREATE_SERVICE), 0, 30, service,
      &golden_service),
    G("get_service", WIRE_MSG_GET_SERVICE, 0, 31, id_request,
      &golden_get_defaults),
    G("update_service", WIRE_MSG_UPDATE_SERVICE, 0, 32,
      update_service_request, &golden_update_service),
    G("update_service_rollback", WIRE_MSG_UPDATE_SERVICE, 0,
      0x7fffffffffffffffULL, update_service_request,
      &golden_rollback_service),
    G("remove_service", WIRE_MSG_REMOVE_SERVICE, 0, 33, id_request,
      &golden_get),
    G("list_services", WIRE_MSG_LIST_SERVICES, 0, 34, list_request,
      &golden_list_services),
    G("list_services_reply", RE(LIST_SERVICES), WIRE_F_MORE, 34, list_reply,
      &golden_list_services_reply),
    G("list_service_statuses", WIRE_MSG_LIST_SERVICE_STATUSES, 0, 35,
      service_statuses_request, &golden_statuses),
    G("list_service_statuses_reply", RE(LIST_SERVICE_STATUSES), 0, 35,
      service_statuses_reply, &golden_statuses_reply),

    G("create_network", WIRE_MSG_CREATE_NETWORK, 0, 40,
      create_network_request, &golden_create_network),
    G("get_network", WIRE_MSG_GET_NETWORK, 0, 41, id_request,
      &golden_get_network),
    G("get_network_reply", RE(GET_NETWORK), 0, 41, network,
      &golden_network),
    G("remove_network", WIRE_MSG_REMOVE_NETWORK, 0, 42, id_request,
      &golden_get_network),
    G("list_networks", WIRE_MSG_LIST_NETWORKS, 0, 43, list_request,
      &golden_list_names),

    G("get_cluster", WIRE_MSG_GET_CLUSTER, 0, 50, id_request,
      &golden_get_cluster),
    G("get_cluster_reply", RE(GET_CLUSTER), 0, 50, cluster,
      &golden_cluster),
    G("list_clusters", WIRE_MSG_LIST_CLUSTERS, 0, 51, list_request,
      &golden_list_clusters),
    G("update_cluster", WIRE_MSG_UPDATE_CLUSTER, 0, 52,
      update_cluster_request, &golden_update_cluster),

    G("create_secret", WIRE_MSG_CREATE_SECRET, 0, 60, create_secret_request,
      &golden_create_secret),
    G("create_secret_reply", RE(CREATE_SECRET), 0, 60, secret,
      &golden_secret),
    G("get_secret", WIRE_MSG_GET_SECRET, 0, 61, id_request,
      &golden_get_secret),
    G("update_secret", WIRE_MSG_UPDATE_SECRET, 0, 62, update_secret_request,
      &golden_update_secret),
    G("remove_secret", WIRE_MSG_REMOVE_SECRET, 0, 63, id_request,
      &golden_get_secret),
    G("list_secrets", WIRE_MSG_LIST_SECRETS, 0, 64, list_request,
      &golden_list_prefix),

    G("create_config", WIRE_MSG_CREATE_CONFIG, 0, 70, create_config_request,
      &golden_create_config),
    G("get_config", WIRE_MSG_GET_CONFIG, 0, 71, id_request,
      &golden_get_config),
    G("get_config_reply", RE(GET_CONFIG), 0, 71, config, &golden_config),
    G("update_config", WIRE_MSG_UPDATE_CONFIG, 0, 72, update_config_request,
      &golden_update_config),
    G("remove_config", WIRE_MSG_REMOVE_CONFIG, 0, 73, id_request,
      &golden_get_config),
    G("list_configs", WIRE_MSG_LIST_CONFIGS, WIRE_F_STALE, 74, list_request,
      &golden_list_prefix),

    G("watch", WIRE_MSG_WATCH, 0, 0x100000077ULL, watch_request,
      &golden_watch),
    G("watch_subscribed", RE(WATCH), WIRE_F_MORE, 0x100000077ULL,
      watch_message, &golden_watch_subscribed),
    G("watch_event", RE(WATCH), WIRE_F_MORE, 0x100000077ULL, watch_message,
      &golden_watch_event),

    G("raft", WIRE_MSG_RAFT, 0, 0, raft_message, &golden_raft_append),
    G("join", WIRE_MSG_JOIN, 0, 1, join_request, &golden_join),
    G("join_reply", RE(JOIN), 0, 1, join_reply, &golden_join_reply),
    G("snap_chunk", WIRE_MSG_SNAP_CHUNK, 0, 0, snap_chunk,
      &golden_snap_chunk),
    G("snap_ack", WIRE_MSG_SNAP_ACK, 0, 0, snap_ack, &golden_snap_ack),
};

/* A whole file: its bytes, or NULL with a failed assertion. */
struct blob {
    uint8_t *data;
    size_t len;
};

static const char *
golden_dir(void)
{
    const char *d = getenv("SHOAL_GOLDEN_DIR");

    return d ? d : "wire/golden";
}

static bool
updating(void)
{
    const char *u = getenv("SHOAL_GOLDEN_UPDATE");

    return u && strcmp(u, "1") == 0;
}

static struct blob
read_file(const char *name, const char *ext)
{
    struct blob b = {0};
    char path[512];
    long n;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s.%s", golden_dir(), name, ext);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the top of the tree, "
                          "or set SHOAL_GOLDEN_DIR): %s",
                       path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    b.len = (size_t)n;
    b.data = malloc(b.len ? b.len : 1);
    cr_assert_not_null(b.data);
    cr_assert_eq(fread(b.data, 1, b.len, f), b.len, "short read of %s",
                 path);
    fclose(f);
    return b;
}

static void
write_file(const char *name, const char *ext, const void *p, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s.%s", golden_dir(), name, ext);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* The .hex form: offset, 16 bytes in hex, and the printable ones. */
static char *
hex_dump(const uint8_t *p, size_t n)
{
    size_t cap = (n / 16 + 1) * 80 + 1;
    char *s = malloc(cap);
    size_t at = 0;

    cr_assert_not_null(s);
    for (size_t row = 0; row < n; row += 16) {
        at += (size_t)snprintf(s + at, cap - at, "%08zx:", row);
        for (size_t i = row; i < row + 16; i++) {
            if (i < n) {
                at += (size_t)snprintf(s + at, cap - at, " %02x", p[i]);
            } else {
                at += (size_t)snprintf(s + at, cap - at, "   ");
            }
        }
        at += (size_t)snprintf(s + at, cap - at, "  ");
        for (size_t i = row; i < row + 16 && i < n; i++) {
            s[at++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
        }
        s[at++] = '\n';
    }
    s[at] = '\0';
    return s;
}

static void
encode_frame(const struct golden *g, struct wire_buf *out)
{
    int rc = wire_frame_append(out, g->type, g->flags, g->id, g->t, g->obj);

    cr_assert_eq(rc, 0, "%s: wire_frame_append: %s", g->name, err_str(rc));
}

TestSuite(wire_golden, .timeout = 60.0);

/* Every request type of the message table has a golden request frame,
 * and every golden frame's body type is the one the table names. */
Test(wire_golden, covers_every_message_type)
{
    for (uint32_t type = 0; type < WIRE_REPLY; type++) {
        const struct wire_msg_info *mi = wire_msg_info((uint16_t)type);
        bool found = false;

        if (!mi) {
            continue;
        }
        for (size_t i = 0; i < ARRAY_LEN(goldens); i++) {
            found = found || goldens[i].type == type;
        }
        cr_expect(found, "no golden request frame for %s", mi->name);
    }

    for (size_t i = 0; i < ARRAY_LEN(goldens); i++) {
        const struct golden *g = &goldens[i];
        const struct wire_msg_info *mi =
            wire_msg_info(g->type & (uint16_t)~WIRE_REPLY);

        cr_assert_not_null(mi, "%s: unknown type %u", g->name, g->type);
        cr_expect_eq(g->t, g->type & WIRE_REPLY ? mi->reply : mi->request,
                     "%s: body type differs from msgs.c", g->name);
    }
    EXPECT_NO_LEAKS();
}

/* Each golden value encodes to exactly the committed bytes of its .bin
 * file, and the committed .hex file is the dump of those bytes. */
Test(wire_golden, encodes_committed_bytes)
{
    for (size_t i = 0; i < ARRAY_LEN(goldens); i++) {
        const struct golden *g = &goldens[i];
        struct wire_buf out = {0};
        struct blob file;
        struct blob hex;
        char *dump;

        encode_frame(g, &out);
        dump = hex_dump(out.data, out.len);
        if (updating()) {
            write_file(g->name, "bin", out.data, out.len);
            write_file(g->name, "hex", dump, strlen(dump));
        }
        file = read_file(g->name, "bin");
        hex = read_file(g->name, "hex");

        cr_expect_eq(out.len, file.len, "%s: %zu bytes, file has %zu",
                     g->name, out.len, file.len);
        cr_expect(out.len == file.len &&
                      memcmp(out.data, file.data, out.len) == 0,
                  "%s: encoding differs from %s/%s.bin", g->name,
                  golden_dir(), g->name);
        cr_expect(hex.len == strlen(dump) &&
                      memcmp(hex.data, dump, hex.len) == 0,
                  "%s: %s.hex is not the dump of the encoding", g->name,
                  g->name);

        free(dump);
        free(hex.data);
        free(file.data);
        wire_buf_fini(&out);
    }
    EXPECT_NO_LEAKS();
}

/* Each committed frame has the header the table gives and a body that
 * decodes to a value equal to the C value and re-encodes to the same
 * bytes. */
Test(wire_golden, decodes_committed_bytes)
{
    for (size_t i = 0; i < ARRAY_LEN(goldens); i++) {
        const struct golden *g = &goldens[i];
        struct blob file = read_file(g->name, "bin");
        struct wire_buf again = {0};
        struct wire_hdr h;
        void *obj;
        int rc;

        cr_assert_eq(wire_hdr_decode(&h, file.data, file.len),
                     WIRE_HDR_BYTES, "%s: header", g->name);
        cr_expect_eq(h.len, file.len - 4, "%s: length", g->name);
        cr_expect_eq(h.version, WIRE_PROTO_VERSION);
        cr_expect_eq(h.flags, g->flags, "%s: flags", g->name);
        cr_expect_eq(h.type, g->type, "%s: type", g->name);
        cr_expect_eq(h.id, g->id, "%s: id", g->name);
        if (!g->t) {
            cr_expect_eq(file.len, WIRE_HDR_BYTES, "%s: body", g->name);
            free(file.data);
            continue;
        }

        obj = calloc(1, wire_type_size(g->t));
        cr_assert_not_null(obj);
        rc = wire_decode(g->t, obj, file.data + WIRE_HDR_BYTES,
                         file.len - WIRE_HDR_BYTES);
        cr_assert_eq(rc, 0, "%s: decode: %s", g->name, err_str(rc));
        cr_expect(wire_equal(g->t, obj, g->obj), "%s: decoded value differs",
                  g->name);
        cr_assert_eq(wire_encode(g->t, obj, &again), 0);
        cr_expect(again.len == file.len - WIRE_HDR_BYTES &&
                      (again.len == 0 ||
                       memcmp(again.data, file.data + WIRE_HDR_BYTES,
                              again.len) == 0),
                  "%s: re-encoding differs", g->name);

        wire_buf_fini(&again);
        wire_free(g->t, obj);
        free(obj);
        free(file.data);
    }
    EXPECT_NO_LEAKS();
}

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* The offsets at which a top-level field of body starts or it ends. */
static bool *
field_boundaries(const uint8_t *body, size_t len)
{
    bool *at = calloc(len + 1, sizeof *at);
    size_t p = 0;

    cr_assert_not_null(at);
    at[0] = true;
    while (p < len) {
        cr_assert_geq(len - p, WIRE_FIELD_HDR_BYTES);
        p += WIRE_FIELD_HDR_BYTES + be32(body + p + 2);
        cr_assert_leq(p, len);
        at[p] = true;
    }
    return at;
}

/* Whether obj is the zeroed, empty value of its type. */
static bool
is_zeroed(const void *obj, size_t size)
{
    const uint8_t *p = obj;

    for (size_t i = 0; i < size; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Every prefix of every golden frame is handled as a reader must see it:
 * fewer than WIRE_HDR_BYTES bytes are ERR_AGAIN; a longer prefix has a
 * valid header whose length says that more is to come. Every prefix of the
 * body, decoded alone from a buffer of exactly its size, decodes without
 * error exactly when it ends on a boundary of a top-level field, and then
 * to the value that re-encodes to that very prefix; any other prefix is
 * ERR_PROTO with the value left empty. The sanitizers watch for stray
 * reads and leaks on every path. */
Test(wire_golden, every_truncation_waits_or_fails_cleanly)
{
    for (size_t i = 0; i < ARRAY_LEN(goldens); i++) {
        const struct golden *g = &goldens[i];
        struct blob file = read_file(g->name, "bin");
        const uint8_t *body = file.data + WIRE_HDR_BYTES;
        size_t body_len = file.len - WIRE_HDR_BYTES;
        void *obj = NULL;
        bool *bound;

        for (size_t k = 0; k <= file.len; k++) {
            uint8_t *cut = malloc(k ? k : 1);
            struct wire_hdr h;
            ssize_t rc;

            cr_assert_not_null(cut);
            memcpy(cut, file.data, k);
            rc = wire_hdr_decode(&h, cut, k);
            if (k < WIRE_HDR_BYTES) {
                cr_expect_eq(rc, ERR_AGAIN, "%s: %zu header bytes", g->name,
                             k);
            } else {
                cr_expect_eq(rc, WIRE_HDR_BYTES, "%s: cut at %zu", g->name,
                             k);
                cr_expect_eq(k < 4 + (size_t)h.len, k < file.len,
                             "%s: cut at %zu: completeness", g->name, k);
            }
            free(cut);
        }
        if (!g->t) {
            free(file.data);
            continue;
        }

        bound = field_boundaries(body, body_len);
        obj = calloc(1, wire_type_size(g->t));
        cr_assert_not_null(obj);
        for (size_t j = 0; j <= body_len; j++) {
            uint8_t *cut = malloc(j ? j : 1);
            struct wire_buf again = {0};
            int rc;

            cr_assert_not_null(cut);
            memcpy(cut, body, j);
            rc = wire_decode(g->t, obj, cut, j);
            if (bound[j]) {
                cr_expect_eq(rc, 0, "%s: body cut at field end %zu: %s",
                             g->name, j, err_str(rc));
                cr_assert_eq(wire_encode(g->t, obj, &again), 0);
                cr_expect(again.len == j &&
                              (j == 0 || memcmp(again.data, body, j) == 0),
                          "%s: body cut at %zu re-encodes differently",
                          g->name, j);
            } else {
                cr_expect_eq(rc, ERR_PROTO, "%s: body cut at %zu: %s",
                             g->name, j, err_str(rc));
                cr_expect(is_zeroed(obj, wire_type_size(g->t)),
                          "%s: body cut at %zu left a value", g->name, j);
            }
            wire_buf_fini(&again);
            wire_free(g->t, obj);
            free(cut);
        }

        free(obj);
        free(bound);
        free(file.data);
    }
    EXPECT_NO_LEAKS();
}

/* wire_copy of every golden value is equal to it, owns its own memory
 * (freeing it leaves the original intact), and a changed copy is no
 * longer equal. */
Test(wire_golden, copies_are_equal_and_independent)
{
    for (size_t i = 0; i < ARRAY_LEN(goldens); i++) {
        const struct golden *g = &goldens[i];
        void *copy;

        if (!g->t) {
            continue;
        }
        copy = calloc(1, wire_type_size(g->t));
        cr_assert_not_null(copy);

        cr_assert_eq(wire_copy(g->t, copy, g->obj), 0, "%s", g->name);
        cr_expect(wire_equal(g->t, copy, g->obj), "%s: copy differs",
                  g->name);
        /* Copying again over a value frees the old one first. */
        cr_assert_eq(wire_copy(g->t, copy, g->obj), 0, "%s", g->name);
        cr_expect(wire_equal(g->t, copy, g->obj), "%s: copy differs",
                  g->name);

        wire_free(g->t, copy);
        cr_expect(is_zeroed(copy, wire_type_size(g->t)));
        cr_expect(wire_equal(g->t, copy, g->obj) ==
                      (wire_encoded_size(g->t, g->obj) == 0),
                  "%s: an empty value equals a non-empty one", g->name);
        free(copy);
    }
    EXPECT_NO_LEAKS();
}

/* A copy of the create_service request with one nested field changed is
 * unequal to the original, and the original is unchanged. */
Test(wire_golden, equal_sees_a_deep_change)
{
    struct shoal_create_service_request copy = {0};

    cr_assert_eq(wire_copy(&wire_type_create_service_request, &copy,
                           &golden_create_service),
                 0);
    cr_assert_eq(copy.spec->task.container->mounts[1].readonly, false);
    copy.spec->task.container->mounts[1].readonly = true;

    cr_expect_not(wire_equal(&wire_type_create_service_request, &copy,
                             &golden_create_service));
    cr_expect_eq(golden_container.mounts[1].readonly, false);

    copy.spec->task.container->mounts[1].readonly = false;
    cr_expect(wire_equal(&wire_type_create_service_request, &copy,
                         &golden_create_service));
    wire_free(&wire_type_create_service_request, &copy);
    EXPECT_NO_LEAKS();
}
