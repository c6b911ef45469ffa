/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control.h: the control API handlers: validation, reads, and the
 * proposals that writes become.
 *
 * A request is handled in two steps. control_handle() validates it and
 * reads the store: a read is answered at once; a write becomes a
 * proposal (ids, times and tokens decided here, so that applying is a
 * pure function of the log) that the manager commits. When the entry is
 * applied, the store has run the state-dependent checks through
 * control_check(), and control_reply_written() builds the reply from the
 * verdict. The handlers know nothing of sockets or raft.
 */
#ifndef SHOAL_CONTROL_CONTROL_H
#define SHOAL_CONTROL_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "shoal/types.h"
#include "shoal/wire.h"
#include "store/store.h"

/* What the handlers need from the manager that runs them. */
struct control_env {
    const char *node_id;    /* this manager's node id; kept */
    const char *cluster_id; /* kept */
    /*
     * Fill the manager status of a node at read time (raft id, address,
     * leader, reachability), or leave *ms NULL for a node that is not a
     * manager member. May be NULL.
     */
    void (*manager_status)(void *arg, const struct shoal_node *node,
                           struct shoal_manager_status **ms);
    void *arg;
    /* The root CA's DER certificate and key, for the cluster object that
     * control_bootstrap() builds (its join tokens pin the certificate);
     * kept, filled by the time of the call. NULL or empty: none. */
    const struct shoal_bytes *ca_cert;
    const struct shoal_bytes *ca_key;
};

struct control {
    struct store *store;    /* kept */
    struct control_env env; /* copied */
};

/* What control_handle() decided. Zeroed by the caller before the call. */
struct control_out {
    int code;           /* enum shoal_status: SHOAL_OK or the refusal */
    char message[512];  /* why, for people, when code is not SHOAL_OK */
    uint64_t current_version; /* on SHOAL_CONFLICT */

    /* A read answered at once: reply (owned; free with wire_free() and
     * free()) of type reply_type, or NULL reply for an empty body. */
    const struct wire_type *reply_type;
    void *reply;

    /* A write: the proposal to commit (owned: wire_free() and free()),
     * and which object to send back once it is applied (kind NONE: an
     * empty reply). */
    struct shoal_proposal *proposal;
    enum shoal_kind reply_kind;
    char reply_id[64];
};

/*
 * Set up c over store s (kept; must outlive c). env is copied; its
 * strings are kept. Returns 0.
 */
int control_init(struct control *c, struct store *s,
                 const struct control_env *env);

/*
 * Handle a decoded request of the given message type. req is the body of
 * the type's wire_msg_info()->request, borrowed. Fills *out (see struct
 * control_out). Returns 0 (the verdict is in out->code), or ERR_NOMEM.
 * Never changes the store.
 */
int control_handle(struct control *c, uint16_t type, const void *req,
                   struct control_out *out);

/*
 * Build the reply of a write whose entry was applied with verdict v:
 * on success, a copy of the object named by out->reply_kind/reply_id,
 * redacted; else the verdict's code and message. Fills out->reply,
 * reply_type, code, message, current_version. Returns 0 or ERR_NOMEM.
 */
int control_reply_written(struct control *c, const struct store_verdict *v,
                          struct control_out *out);

/* Release what out owns and zero it. */
void control_out_fini(struct control_out *out);

/*
 * The store_check_cb of the control API: the state-dependent rules of
 * SWARMKIT.md (secrets, configs and networks in use; references that must
 * exist; port conflicts; ingress present; the last manager not demoted).
 * arg is the struct control.
 */
int control_check(void *arg, const struct store *s, enum shoal_action action,
                  enum shoal_kind kind, const void *obj, const void *old,
                  struct store_verdict *v);

/*
 * Remove what no client may see from an object of kind, in place: secret
 * data, the cluster's CA key. Applied to every object that leaves the
 * manager (replies, lists, watch events). obj's removed fields are freed.
 */
void control_redact(enum shoal_kind kind, void *obj);

/*
 * Build the objects a fresh cluster starts with (the cluster "default"
 * with env's root CA and join tokens that pin it, this manager's node,
 * the "ingress" network) as
 * one proposal. hostname is borrowed. Returns 0 and sets *out (owned), or
 * ERR_NOMEM.
 */
int control_bootstrap(struct control *c, const char *hostname,
                      struct shoal_proposal **out);

/*
 * Build a proposal that records a manager member in its node object: the
 * node node_id is created (a joining manager: hostname, role manager,
 * accepted, ready) or, when it exists, updated at its current version;
 * either way its stored manager status becomes raft id raft_id at peer
 * address addr (borrowed; NULL: empty). Returns 0 and sets *out (owned),
 * or ERR_NOMEM.
 */
int control_manager_node(struct control *c, const char *node_id,
                         const char *hostname, uint64_t raft_id,
                         const char *addr, struct shoal_proposal **out);

#endif
