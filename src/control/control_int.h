/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_int.h: what the files of the control module share: the
 * stateless validators (names, image references, constraints, CIDRs),
 * the helpers that fill a struct control_out, and the per-kind handlers
 * that control.c dispatches to.
 *
 * Nothing here is for other modules; the unit tests include it to reach
 * the validators directly. Every handler returns 0 (verdict in out->code)
 * or ERR_NOMEM, like control_handle().
 */
#ifndef SHOAL_CONTROL_CONTROL_INT_H
#define SHOAL_CONTROL_CONTROL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/control.h"

/* Label that marks networks the manager made and users may not remove. */
#define CONTROL_PREDEFINED_LABEL "com.docker.swarm.predefined"

#define CONTROL_NS_PER_MS INT64_C(1000000)
#define CONTROL_NS_PER_S INT64_C(1000000000)
#define CONTROL_NS_PER_H (INT64_C(3600) * CONTROL_NS_PER_S)

/* Limits of SwarmKit (controlapi/secret.go, config.go). */
#define CONTROL_MAX_SECRET_BYTES 512000  /* exclusive */
#define CONTROL_MAX_CONFIG_BYTES 1024000 /* exclusive */

/* Rules and validators (control_rules.c). Each returns SHOAL_OK or
 * SHOAL_INVALID_ARGUMENT and, on failure, writes a sentence into msg
 * (msg_len bytes, NUL-terminated). Inputs are borrowed, may be NULL. */

/* Name rule A (services, networks): ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$,
 * at most 63 characters. */
int control_name_rule_a(const char *name, char *msg, size_t msg_len);

/* Name rule B (secrets, configs): ^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*
 * [a-zA-Z0-9])?$, at most 64 characters. */
int control_name_rule_b(const char *name, char *msg, size_t msg_len);

/* A docker image reference as reference.ParseNormalizedNamed accepts it:
 * [domain[:port]/]path[/path...][:tag][@algo:hex]. */
int control_image_ref(const char *ref, char *msg, size_t msg_len);

/* A placement constraint "key==value" or "key!=value" (SwarmKit's
 * constraint.Parse syntax). */
int control_constraint(const char *expr, char *msg, size_t msg_len);

/*
 * Parse an IPv4 or IPv6 CIDR "addr/len". Returns true and fills addr (16
 * bytes: IPv4 in the first 4), *family (4 or 6) and *bits; false when s is
 * not a CIDR. Never allocates.
 */
bool control_cidr_parse(const char *s, uint8_t addr[16], int *family,
                        int *bits);

/* Parse a plain IP address the same way (no prefix length). */
bool control_ip_parse(const char *s, uint8_t addr[16], int *family);

/* Whether addr of family lies in the network net/bits of the same
 * family. */
bool control_cidr_contains(const uint8_t net[16], int net_family, int bits,
                           const uint8_t addr[16], int family);

/*
 * Make a join token "SHOAL-1-<digest>-<secret>": digest = SHA-256 of the
 * CA certificate (or of the cluster id when there is none) in base 36 on
 * 50 digits, secret = 128 random bits in base 36 on 25 digits. out must
 * hold CONTROL_TOKEN_LEN + 1 bytes. Returns 0 or ERR_TLS.
 */
#define CONTROL_TOKEN_LEN (8 + 50 + 1 + 25) /* CA_TOKEN_LEN of ca.h */
int control_join_token(const struct shoal_cluster *cl, const char *cluster_id,
                       char *out);

/* Helpers of control.c. */

/*
 * Refuse the request: set out->code and a printf-style out->message.
 * Returns 0, so that handlers may "return control_fail(...)".
 */
int control_fail(struct control_out *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill a store verdict the same way; returns code. */
int control_verdict(struct store_verdict *v, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Append an action to out->proposal (made on first use). obj is a
 * malloc'd object of kind whose ownership passes to the proposal, also
 * on failure. Returns 0 or ERR_NOMEM.
 */
int control_propose(struct control_out *out, enum shoal_action action,
                    enum shoal_kind kind, void *obj);

/*
 * Set the object a write replies with once applied (kind NONE: an empty
 * reply).
 */
void control_reply_with(struct control_out *out, enum shoal_kind kind,
                        const char *id);

/*
 * Run control_check() over every action of out->proposal against the
 * store as it is now, so that a refusal comes back before the proposal
 * is committed. On a refusal the proposal is dropped and out->code set.
 * Returns 0.
 */
int control_precheck(struct control *c, struct control_out *out);

/*
 * Answer a read with a redacted copy of obj (kind's struct, borrowed).
 * Returns 0 or ERR_NOMEM.
 */
int control_reply_copy(struct control *c, struct control_out *out,
                       enum shoal_kind kind, const void *obj);

/*
 * Propose the removal of the object of kind named id, after refusing an
 * empty id or a missing object, and precheck it. The reply is empty.
 * Returns 0 or ERR_NOMEM.
 */
int control_remove_by_id(struct control *c, struct control_out *out,
                         enum shoal_kind kind, const char *id);

/* A malloc'd deep copy of obj of kind, or NULL when memory runs out. */
void *control_dup(enum shoal_kind kind, const void *obj);

/* Free an object made by control_dup(); NULL is a no-op. */
void control_obj_free(enum shoal_kind kind, void *obj);

/*
 * The stored object of kind named by a request's id: refuses an empty id
 * (SHOAL_INVALID_ARGUMENT) and a missing object (SHOAL_NOT_FOUND "<kind>
 * X not found") through out, returning NULL then.
 */
const void *control_lookup(struct control *c, struct control_out *out,
                           enum shoal_kind kind, const char *id);

/*
 * Check an update's version: 0 is refused (SHOAL_INVALID_ARGUMENT), one
 * that differs from current is a SHOAL_CONFLICT naming current. Returns
 * true when it may go on.
 */
bool control_version_ok(struct control_out *out, uint64_t version,
                        uint64_t current);

/* Whether a label filter (keys must exist; an empty value only asks for
 * the key) matches labels. */
bool control_labels_match(const struct shoal_map *filter,
                          const struct shoal_map *labels);

/* The runtime name of a task spec: "container", or "" when unset. */
const char *control_runtime(const struct shoal_task_spec *t);

/* Fill the manager status of a node copy through the environment. */
void control_fill_manager_status(struct control *c, struct shoal_node *n);

/*
 * Answer a List request of type (one of the WIRE_MSG_LIST_* types whose
 * body is a struct shoal_list_request) with a struct shoal_list_reply in
 * out, or refuse a filter that does not apply to the kind. Returns 0 or
 * ERR_NOMEM.
 */
int control_list(struct control *c, uint16_t type,
                 const struct shoal_list_request *r, struct control_out *out);

/*
 * The name a task is known by: its own name, else "<service name>.<slot,
 * or node id when slot is 0>.<task id>". Writes into buf (len bytes).
 */
const char *control_task_name(const struct shoal_task *t, char *buf,
                              size_t len);

/*
 * Per-kind handlers, as control_handle() for the types of their kind:
 * req is the request body of type's message, borrowed; *out is filled.
 * Each returns 0 (the verdict is in out->code) or ERR_NOMEM, and never
 * changes the store.
 */
int control_service_handle(struct control *c, uint16_t type, const void *req,
                           struct control_out *out);
int control_node_handle(struct control *c, uint16_t type, const void *req,
                        struct control_out *out);
int control_task_handle(struct control *c, uint16_t type, const void *req,
                        struct control_out *out);
int control_network_handle(struct control *c, uint16_t type, const void *req,
                           struct control_out *out);
int control_cluster_handle(struct control *c, uint16_t type, const void *req,
                           struct control_out *out);
int control_secret_handle(struct control *c, uint16_t type, const void *req,
                          struct control_out *out);
int control_config_handle(struct control *c, uint16_t type, const void *req,
                          struct control_out *out);

/*
 * The stateless validation of a service spec (SWARMKIT.md 1.3 steps 1-6).
 * Returns SHOAL_OK or a code, with a sentence in msg.
 */
int control_service_spec_valid(const struct shoal_service_spec *spec, char *msg,
                               size_t msg_len);

/* The stateless validation of a network spec (1.4). */
int control_network_spec_valid(const struct shoal_network_spec *spec, char *msg,
                               size_t msg_len);

/* Fill a service spec's defaults, as GetService insert_defaults shows
 * them. Returns 0 or ERR_NOMEM. */
int control_service_defaults(struct shoal_service_spec *spec);

/* Drop the certificate blacklist entries of cl that expired more than 7
 * days before now. */
void control_blacklist_prune(struct shoal_cluster *cl, int64_t now);

/* Fill the default spec of the cluster "default" into a zeroed spec.
 * Returns 0 or ERR_NOMEM. */
int control_cluster_default_spec(struct shoal_cluster_spec *spec);

#endif
