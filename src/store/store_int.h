/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store_int.h: what the files of the store module share: the stored
 * object, the tables and their indexes, and the history ring.
 *
 * store.c applies entries and serves reads, store_index.c keeps the
 * indexes, store_history.c the history that watches read. Invariant: an
 * object in a table is reachable from every index of its kind through
 * exactly the keys its index entries (o->ents) hold, and from nowhere else.
 */
#ifndef SHOAL_STORE_STORE_INT_H
#define SHOAL_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bsd/sys/tree.h>

#include "store/store.h"

/* The indexes a table may have; each kind uses a subset (store_index.c). */
enum store_idx {
    STORE_IDX_ID,         /* the primary index, unique: the id */
    STORE_IDX_NAME,       /* the lowercased name */
    STORE_IDX_ROLE,       /* node observed role */
    STORE_IDX_MEMBERSHIP, /* node membership */
    STORE_IDX_SERVICE,    /* task service id */
    STORE_IDX_NODE,       /* task node id */
    STORE_IDX_SLOT,       /* task service id, NUL, slot */
    STORE_IDX_DESIRED,    /* task desired state */
    STORE_IDX_STATE,      /* task observed state */
    STORE_IDX_RUNTIME,    /* "container" */
    STORE_IDX_NETWORK,    /* referenced network ids */
    STORE_IDX_SECRET,     /* referenced secret ids */
    STORE_IDX_CONFIG,     /* referenced config ids */
    STORE_IDX_COUNT,
};

struct store_obj;

/*
 * One key of one object in one index. The key lives in the same
 * allocation, right after the struct; it is compared as bytes (it may
 * hold a NUL, as the slot key does). Entries sort by key, then id.
 */
struct store_ient {
    RB_ENTRY(store_ient) link;
    struct store_obj *o; /* the owner; NULL in a search probe */
    const char *key;     /* len bytes, NUL-terminated for convenience */
    size_t len;
    uint8_t idx; /* enum store_idx */
};

RB_HEAD(store_itree, store_ient);

/*
 * A stored object: immutable once stored, shared by reference between the
 * table and the history. body holds the kind's struct shoal_<kind>.
 */
struct store_obj {
    size_t refs;              /* the table's and each history event's */
    size_t bytes;             /* encoded size; 0: not computed yet */
    struct store_ient **ents; /* its index entries, sorted, unique */
    size_t n_ents;
    enum shoal_kind kind;
    _Alignas(max_align_t) unsigned char body[];
};

/* The stored object that holds the struct at p (a body pointer). */
#define STORE_OBJ_OF(p)                                                    \
    ((struct store_obj *)((unsigned char *)(p) -                           \
                          offsetof(struct store_obj, body)))

struct store_table {
    size_t n_objs;
    struct store_itree trees[STORE_IDX_COUNT];
};

/* One retained entry of the history. */
struct store_hrec {
    struct store_hist_entry pub; /* pub.events owns its array */
    size_t bytes;                /* estimate, counted in hist.bytes */
};

/* The retained history: a ring of records in increasing version order. */
struct store_hist {
    struct store_hrec *ring;
    size_t cap;   /* slots; grows by doubling up to max_entries */
    size_t head;  /* slot of the oldest record */
    size_t n;     /* records held */
    size_t bytes; /* sum of the records' bytes */
    size_t max_entries;
    size_t max_bytes;
    uint64_t floor; /* resuming after a version below this misses changes */
};

struct store {
    struct store_config cfg;
    uint64_t applied;
    struct store_table tables[SHOAL_KIND_COUNT];
    struct store_hist hist;
};

/* Objects (store.c). */

/*
 * Drop one reference to o; the last one frees it. o's index entries must
 * have been freed already.
 */
void store__obj_unref(struct store_obj *o);

/*
 * The encoded size of o, computed on first use. Never fails: 0 when the
 * encoder runs out of memory, which only makes the estimate low.
 */
size_t store__obj_bytes(struct store_obj *o);

/* Indexes (store_index.c). */

/* Set up the empty trees of t. */
void store__table_init(struct store_table *t);

/*
 * Build o's index entries (o->ents, not yet in any tree) from its body.
 * Returns 0 or ERR_NOMEM (o->ents left empty).
 */
int store__index_keys(struct store_obj *o);

/* Free o's index entries, which must not be in any tree. */
void store__index_free_keys(struct store_obj *o);

/* Insert o's entries into t's trees. Allocates nothing. */
void store__index_attach(struct store_table *t, struct store_obj *o);

/* Remove o's entries from t's trees; they stay in o->ents. */
void store__index_detach(struct store_table *t, struct store_obj *o);

/* The object with exactly this id in t, or NULL. id borrowed. */
struct store_obj *store__index_get(const struct store_table *t,
                                   const char *id);

/*
 * An object of t, other than the one with id self (NULL: none excluded),
 * whose name equals name in any case; NULL when there is none or name is
 * NULL or empty. Borrowed. Allocates nothing.
 */
struct store_obj *store__index_name_taken(const struct store_table *t,
                                          const char *name,
                                          const char *self);

/*
 * Visit the objects of t selected by q for kind, per store_find().
 * Returns as store_find(). Allocates nothing.
 */
int store__index_find(const struct store_table *t, enum shoal_kind kind,
                      const struct store_query *q, store_visit_cb *cb,
                      void *arg);

/* Whether names of kind are unique in any case. */
bool store__kind_unique_names(enum shoal_kind kind);

/*
 * The name of the object of kind at obj as watches see it: a node's
 * hostname, a task's annotations name, else the spec's annotations
 * name. Borrowed; "" when absent.
 */
const char *store__obj_name(enum shoal_kind kind, const void *obj);

/* History (store_history.c). */

/* Set up an empty history bounded as cfg says (0: the defaults). */
void store__hist_init(struct store_hist *h, const struct store_config *cfg);

/* Free every retained record. */
void store__hist_fini(struct store_hist *h);

/*
 * Make sure store__hist_push() will not need memory. Returns 0 or
 * ERR_NOMEM (history unchanged).
 */
int store__hist_reserve(struct store_hist *h);

/*
 * Append the record of an applied entry: events (n > 0) is transferred,
 * with one reference to each object it points to. Older records are
 * dropped to keep the bounds; the newest one is always kept. Call
 * store__hist_reserve() first.
 */
void store__hist_push(struct store_hist *h, uint64_t version,
                      struct store_event *events, size_t n);

/* Changes at or before version are not in the history (a load). */
void store__hist_set_floor(struct store_hist *h, uint64_t version);

#endif
