/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store.h: the in-memory store of cluster objects, its indexes, the
 * apply of committed entries, and the history that watches read.
 *
 * The tables change in one place only: store_apply(), called with each
 * committed raft entry in log order, on every manager alike. Apply is a
 * pure function of the store and the entry: ids, times and tokens were
 * decided by the proposer and travel inside the entry. Reads hand out
 * borrowed pointers into the tables; they stay valid until the next
 * store_apply() or store_load(), which in the single-threaded daemon
 * means "until the handler returns". Nothing here knows raft or sockets.
 */
#ifndef SHOAL_STORE_STORE_H
#define SHOAL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/types.h"

struct store;

/* The outcome of one entry's apply, as the leader tells its client. */
struct store_verdict {
    int code;                 /* enum shoal_status; SHOAL_OK when applied */
    char message[512];        /* for people; empty when code is SHOAL_OK */
    uint64_t current_version; /* on SHOAL_CONFLICT: the object's version */
};

/*
 * Kind-specific checks that depend on state (in-use, references, port
 * conflicts), run by store_apply() for each action after the generic
 * checks and before the action takes effect, so every manager reaches the
 * same verdict. obj is the action's object, old the stored one (NULL on
 * create). Both borrowed. Return SHOAL_OK, or a status code after filling
 * v->message. Must be deterministic: no clock, no randomness. A check may
 * also return ERR_NOMEM: store_apply() then undoes the entry and returns
 * ERR_NOMEM; any other negative value becomes a SHOAL_INTERNAL verdict.
 */
typedef int store_check_cb(void *arg, const struct store *s,
                           enum shoal_action action, enum shoal_kind kind,
                           const void *obj, const void *old,
                           struct store_verdict *v);

struct store_config {
    store_check_cb *check; /* may be NULL: generic checks only */
    void *check_arg;       /* kept, passed to check */
    size_t history_entries; /* entries kept for watch resume; 0: 4096 */
    size_t history_bytes;   /* and their encoded bytes at most; 0: 64 MiB */
};

/*
 * Create an empty store. cfg is copied. Returns 0 and sets *out, or
 * ERR_NOMEM. Free with store_free().
 */
int store_new(struct store **out, const struct store_config *cfg);

/* Free the store and every object it holds. NULL is a no-op. */
void store_free(struct store *s);

/*
 * Insert an object loaded from disk at startup: no checks, no events.
 * kind's struct at obj is transferred: the store takes its contents and
 * zeroes *obj (the caller frees only the outer allocation, if any).
 * Returns 0, ERR_EXISTS if the id is present, ERR_CORRUPT if the object
 * has no id, or ERR_NOMEM; on failure *obj is left as it was.
 */
int store_load(struct store *s, enum shoal_kind kind, void *obj);

/*
 * Set the index of the last entry applied (after loading from disk). The
 * history has nothing at or before index: store_history_next() with an
 * `after` below index returns ERR_NOTFOUND with *oldest = index.
 */
void store_set_applied(struct store *s, uint64_t index);

/* The index of the last entry applied. */
uint64_t store_applied(const struct store *s);

/*
 * Apply the committed entry at index (> store_applied()). p is borrowed.
 * All of its actions take effect or none: the first failing check stops
 * the apply, undoes the earlier actions of the entry and is returned in
 * *v. Generic checks: create of an existing id → SHOAL_ALREADY_EXISTS; a
 * name taken in any case (kinds with unique names) → SHOAL_ALREADY_EXISTS
 * "name conflicts with an existing object: <kind> <name> already exists";
 * update or remove of a missing id → SHOAL_NOT_FOUND; update whose
 * object's meta.version differs from the stored one → SHOAL_CONFLICT with
 * current_version set (a remove checks it only when non-zero); an action
 * without exactly one object, with an unknown action, without an id, or
 * whose object breaks the schema's limits → SHOAL_INVALID_ARGUMENT. On
 * success each changed object's meta.version becomes index, created_at
 * is kept from the stored object on update, and the entry's events are
 * added to the history. The applied index becomes index in every case.
 * Returns 0 (the verdict is in *v), or ERR_NOMEM (store unchanged,
 * applied index unchanged: the caller must stop, as the replicas would
 * otherwise diverge).
 */
int store_apply(struct store *s, uint64_t index,
                const struct shoal_proposal *p, struct store_verdict *v);

/* Reads. Returned pointers are borrowed: see the file comment. */

/* The object of kind with exactly this id, or NULL. */
const void *store_get(const struct store *s, enum shoal_kind kind,
                      const char *id);

/* The number of objects of kind. */
size_t store_count(const struct store *s, enum shoal_kind kind);

/* Index selectors of store_find(). */
enum store_by {
    STORE_BY_ALL,
    STORE_BY_ID_PREFIX,   /* str: case-sensitive prefix of the id */
    STORE_BY_NAME,        /* str: name in any case (node: hostname) */
    STORE_BY_NAME_PREFIX, /* str: prefix of the name in any case */
    STORE_BY_ROLE,        /* num: node observed role */
    STORE_BY_MEMBERSHIP,  /* num: node membership */
    STORE_BY_SERVICE,     /* str: task's service id */
    STORE_BY_NODE,        /* str: task's node id */
    STORE_BY_SLOT,        /* str: service id, num: slot (tasks) */
    STORE_BY_DESIRED_STATE, /* num: task desired state */
    STORE_BY_TASK_STATE,  /* num: task observed state */
    STORE_BY_RUNTIME,     /* str: "container" (services, tasks) */
    STORE_BY_NETWORK,     /* str: network id referenced (services, tasks) */
    STORE_BY_SECRET,      /* str: secret id referenced (services, tasks) */
    STORE_BY_CONFIG,      /* str: config id referenced (services, tasks) */
};

struct store_query {
    enum store_by by;
    const char *str;
    uint64_t num;
};

/* Called for each match; return non-zero to stop the walk early. */
typedef int store_visit_cb(const void *obj, void *arg);

/*
 * Visit every object of kind that q selects, through the index for q->by,
 * in a stable order (index key, then id). Returns 0 when the walk ended
 * (or the callback's non-zero value when it stopped it), or ERR_PROTO
 * when q->by does not apply to kind (e.g. STORE_BY_ROLE on services).
 * The callback must not change the store.
 */
int store_find(const struct store *s, enum shoal_kind kind,
               const struct store_query *q, store_visit_cb *cb, void *arg);

/*
 * The object of kind whose name equals name in any case, for the kinds
 * whose names are unique (service, network, cluster, secret, config);
 * NULL otherwise or when there is none.
 */
const void *store_get_by_name(const struct store *s, enum shoal_kind kind,
                              const char *name);

/* History, for watches. */

/* One change of an applied entry. Objects are owned by the history. */
struct store_event {
    enum shoal_action action;
    enum shoal_kind kind;
    const void *obj; /* the object after the change (before, on remove) */
    const void *old; /* on update: the object before; else NULL */
};

/* The changes of one applied entry; version is its raft index. */
struct store_hist_entry {
    uint64_t version;
    size_t n_events;
    const struct store_event *events;
};

/*
 * Find the first retained entry with version > after. Returns 0 and sets
 * *out (borrowed, valid until the next store_apply()); ERR_AGAIN when no
 * such entry was applied yet; or ERR_NOTFOUND when entries after `after`
 * were already dropped from the history (the watcher fell behind or asks
 * for a version older than is kept): *oldest is then set to the lowest
 * version a watcher may resume from. Entries that changed nothing (a
 * refused write) are not in the history; their versions are skipped.
 * The newest entry is always kept, even when it alone is over
 * history_bytes. oldest may be NULL.
 */
int store_history_next(const struct store *s, uint64_t after,
                       const struct store_hist_entry **out,
                       uint64_t *oldest);

/*
 * Whether an event matches one selector of a watch request (kind, action
 * mask, id, id prefix, name, name prefix, service id, node id; empty
 * fields match anything; an actions mask of 0 matches every action).
 * Name matching is exact and case-sensitive.
 */
bool store_event_matches(const struct store_event *ev,
                         const struct shoal_watch_selector *sel);

#endif
