/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store.c: the store's tables, the apply of committed entries and reads.
 *
 * Apply takes each action of an entry in turn: generic checks, the
 * kind-specific check callback, then the change itself, which goes into
 * the tables at once so that later actions and checks see it. An undo log
 * records what each action did; a refused action rolls the earlier ones
 * back without allocating (an object that leaves a table keeps its index
 * entries until the entry commits), so all or nothing holds even when
 * memory runs out. Stored objects are shared by reference with the
 * history; nothing changes one after it is stored.
 */
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/wire.h"
#include "store/store_int.h"

/* What one action of the entry being applied did, for undo and events. */
struct store_undo {
    enum shoal_action action;
    enum shoal_kind kind;
    struct store_obj *old; /* left the table; holds the table's reference */
    struct store_obj *cur; /* entered the table */
};

/* The state of one store_apply(). */
struct apply_ctx {
    struct store *s;
    uint64_t index;
    struct store_verdict *v;
    struct store_undo *log; /* one slot per action */
    size_t n_log;
};

/* Objects. */

static const struct wire_type *
kind_type(enum shoal_kind kind)
{
    const struct wire_type *t = wire_kind_type(kind);

    ASSERT(t != NULL);
    return t;
}

static struct store_obj *
obj_alloc(enum shoal_kind kind)
{
    struct store_obj *o;

    o = calloc(1, sizeof(*o) + wire_type_size(kind_type(kind)));
    if (!o) {
        return NULL;
    }
    o->refs = 1;
    o->kind = kind;
    return o;
}

void
store__obj_unref(struct store_obj *o)
{
    ASSERT(o->refs > 0);
    if (--o->refs > 0) {
        return;
    }
    ASSERT(o->ents == NULL);
    wire_free(kind_type(o->kind), o->body);
    free(o);
}

size_t
store__obj_bytes(struct store_obj *o)
{
    if (o->bytes == 0) {
        o->bytes = wire_encoded_size(kind_type(o->kind), o->body);
    }
    return o->bytes;
}

/*
 * A new stored object holding a deep copy of src, through the encoding
 * (which also gives its size). Returns 0, ERR_NOMEM, or ERR_PROTO when
 * src does not fit the schema's limits.
 */
static int
obj_copy(enum shoal_kind kind, const void *src, struct store_obj **out)
{
    const struct wire_type *t = kind_type(kind);
    struct wire_buf b = {0};
    struct store_obj *o;
    int rc;

    o = obj_alloc(kind);
    if (!o) {
        return ERR_NOMEM;
    }
    rc = wire_encode(t, src, &b);
    if (rc != 0) {
        goto fail_free_obj;
    }
    rc = wire_decode(t, o->body, b.data, b.len);
    if (rc != 0) {
        goto fail_free_buf;
    }
    o->bytes = b.len;
    wire_buf_fini(&b);
    *out = o;
    return 0;

fail_free_buf:
    wire_buf_fini(&b);
fail_free_obj:
    store__obj_unref(o);
    ASSERT(rc != 0);
    return rc;
}

/* Lifecycle. */

int
store_new(struct store **out, const struct store_config *cfg)
{
    struct store *s = calloc(1, sizeof(*s));

    if (!s) {
        return ERR_NOMEM;
    }
    if (cfg) {
        s->cfg = *cfg;
    }
    for (int k = 0; k < SHOAL_KIND_COUNT; k++) {
        store__table_init(&s->tables[k]);
    }
    store__hist_init(&s->hist, &s->cfg);
    *out = s;
    return 0;
}

/* Take o out of its table and drop the table's reference. */
static void
table_drop(struct store_table *t, struct store_obj *o)
{
    store__index_detach(t, o);
    store__index_free_keys(o);
    ASSERT(t->n_objs > 0);
    t->n_objs--;
    store__obj_unref(o);
}

void
store_free(struct store *s)
{
    if (!s) {
        return;
    }
    for (int k = 0; k < SHOAL_KIND_COUNT; k++) {
        struct store_table *t = &s->tables[k];
        struct store_ient *e;

        while ((e = RB_ROOT(&t->trees[STORE_IDX_ID])) != NULL) {
            table_drop(t, e->o);
        }
        ASSERT(t->n_objs == 0);
    }
    store__hist_fini(&s->hist);
    free(s);
}

int
store_load(struct store *s, enum shoal_kind kind, void *obj)
{
    struct store_table *t;
    const char *id;
    size_t size;
    struct store_obj *o;
    int rc;

    ASSERT(kind > SHOAL_KIND_NONE && kind < SHOAL_KIND_COUNT);
    t = &s->tables[kind];
    id = wire_object_id(kind, obj);
    size = wire_type_size(kind_type(kind));
    if (!id || !*id) {
        return ERR_CORRUPT;
    }
    if (store__index_get(t, id)) {
        return ERR_EXISTS;
    }

    o = obj_alloc(kind);
    if (!o) {
        return ERR_NOMEM;
    }
    memcpy(o->body, obj, size);
    rc = store__index_keys(o);
    if (rc != 0) {
        /* The body is a shallow copy still owned by the caller. */
        free(o);
        return rc;
    }

    store__index_attach(t, o);
    t->n_objs++;
    memset(obj, 0, size);
    return 0;
}

void
store_set_applied(struct store *s, uint64_t index)
{
    s->applied = index;

    /* Changes up to index were loaded, not applied here: a watcher that
     * asks for them must be told they are not in the history. */
    store__hist_set_floor(&s->hist, index);
}

uint64_t
store_applied(const struct store *s)
{
    return s->applied;
}

/* Apply. */

static int
refuse(struct store_verdict *v, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill in a verdict that refuses the entry; returns 1 for the caller. */
static int
refuse(struct store_verdict *v, int code, const char *fmt, ...)
{
    va_list ap;

    v->code = code;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
    return 1;
}

/* The checks every kind gets (store.h). Returns 0 or 1 (refused). */
static int
generic_checks(struct apply_ctx *c, enum shoal_action action,
               enum shoal_kind kind, const void *obj,
               const struct store_obj *old)
{
    const char *kname = wire_kind_name(kind);
    const char *id = wire_object_id(kind, obj);
    uint64_t version = ((const struct shoal_meta *)wire_object_meta(
                            kind, (void *)obj))->version;
    struct store_obj *other;
    uint64_t cur;

    if (action == SHOAL_ACTION_CREATE && old) {
        return refuse(c->v, SHOAL_ALREADY_EXISTS,
                      "object already exists: %s %s", kname, id);
    }
    if (action != SHOAL_ACTION_CREATE && !old) {
        return refuse(c->v, SHOAL_NOT_FOUND, "object does not exist: %s %s",
                      kname, id);
    }

    cur = old ? wire_object_meta(kind, (void *)old->body)->version : 0;
    if ((action == SHOAL_ACTION_UPDATE ||
         (action == SHOAL_ACTION_REMOVE && version != 0)) &&
        version != cur) {
        c->v->current_version = cur;
        return refuse(c->v, SHOAL_CONFLICT,
                      "update out of sequence: %s %s is at version %llu, "
                      "not %llu", kname, id, (unsigned long long)cur,
                      (unsigned long long)version);
    }

    if (action == SHOAL_ACTION_REMOVE || !store__kind_unique_names(kind)) {
        return 0;
    }
    other = store__index_name_taken(&c->s->tables[kind],
                                    store__obj_name(kind, obj), id);
    if (other) {
        return refuse(c->v, SHOAL_ALREADY_EXISTS,
                      "name conflicts with an existing object: "
                      "%s %s already exists", kname,
                      store__obj_name(kind, obj));
    }
    return 0;
}

/* The kind-specific checks of the caller. Returns 0, 1 or ERR_NOMEM. */
static int
user_check(struct apply_ctx *c, enum shoal_action action,
           enum shoal_kind kind, const void *obj, const struct store_obj *old)
{
    const struct store_config *cfg = &c->s->cfg;
    int rc;

    if (!cfg->check) {
        return 0;
    }
    rc = cfg->check(cfg->check_arg, c->s, action, kind, obj,
                    old ? old->body : NULL, c->v);
    if (rc == SHOAL_OK) {
        c->v->message[0] = '\0';
        return 0;
    }
    if (rc == ERR_NOMEM) {
        c->v->message[0] = '\0';
        return ERR_NOMEM;
    }
    if (rc < 0) {
        /* A check is ours: any other failure is a bug it reports. */
        return refuse(c->v, SHOAL_INTERNAL, "check failed: %s %s: %s",
                      wire_kind_name(kind), wire_object_id(kind, obj),
                      err_str(rc));
    }
    c->v->code = rc;
    return 1;
}

/* Make the stored form of the action's object. Returns 0, 1 (the object
 * breaks the schema's limits) or ERR_NOMEM. */
static int
make_stored(struct apply_ctx *c, enum shoal_kind kind, const void *obj,
            const struct store_obj *old, struct store_obj **out)
{
    struct shoal_meta *meta;
    struct store_obj *o;
    int rc;

    rc = obj_copy(kind, obj, &o);
    if (rc == ERR_PROTO) {
        return refuse(c->v, SHOAL_INVALID_ARGUMENT,
                      "%s %s is over a size limit of the schema",
                      wire_kind_name(kind), wire_object_id(kind, obj));
    }
    if (rc != 0) {
        return rc;
    }

    meta = wire_object_meta(kind, o->body);
    meta->version = c->index;
    if (old) {
        meta->created_at = wire_object_meta(kind, (void *)old->body)
                               ->created_at;
    }

    rc = store__index_keys(o);
    if (rc != 0) {
        store__obj_unref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/*
 * Check and perform one action, recording it in the undo log. Returns 0,
 * 1 (refused: *c->v says why) or ERR_NOMEM; on anything but 0 this action
 * changed nothing.
 */
static int
apply_action(struct apply_ctx *c, size_t i, const struct shoal_store_action *a)
{
    enum shoal_action action = (enum shoal_action)a->action;
    struct store_obj *cur = NULL;
    struct store_table *t;
    struct store_obj *old;
    enum shoal_kind kind;
    const char *id;
    void *obj;
    int rc;

    ASSERT(c->n_log == i); /* every earlier action took effect */

    /* The entry came from the log: judge it, never assert on it. */
    kind = wire_object_kind(&a->object, &obj);
    if (kind == SHOAL_KIND_NONE) {
        return refuse(c->v, SHOAL_INVALID_ARGUMENT,
                      "action %zu must hold exactly one object", i);
    }
    if (action != SHOAL_ACTION_CREATE && action != SHOAL_ACTION_UPDATE &&
        action != SHOAL_ACTION_REMOVE) {
        return refuse(c->v, SHOAL_INVALID_ARGUMENT,
                      "action %zu: unknown action %u", i, a->action);
    }
    id = wire_object_id(kind, obj);
    if (!id || !*id) {
        return refuse(c->v, SHOAL_INVALID_ARGUMENT,
                      "action %zu: the %s has no id", i,
                      wire_kind_name(kind));
    }

    t = &c->s->tables[kind];
    old = store__index_get(t, id);
    rc = generic_checks(c, action, kind, obj, old);
    if (rc == 0) {
        rc = user_check(c, action, kind, obj, old);
    }
    if (rc == 0 && action != SHOAL_ACTION_REMOVE) {
        rc = make_stored(c, kind, obj, old, &cur);
    }
    if (rc != 0) {
        return rc;
    }

    /* From here on nothing can fail. */
    if (old) {
        store__index_detach(t, old);
        t->n_objs--;
    }
    if (cur) {
        store__index_attach(t, cur);
        t->n_objs++;
    }
    c->log[c->n_log++] = (struct store_undo){
        .action = action, .kind = kind, .old = old, .cur = cur,
    };
    return 0;
}

/* Roll the entry's applied actions back, newest first. */
static void
undo_all(struct apply_ctx *c)
{
    while (c->n_log > 0) {
        struct store_undo *u = &c->log[--c->n_log];
        struct store_table *t = &c->s->tables[u->kind];

        ASSERT(u->cur != NULL || u->old != NULL);
        if (u->cur) {
            table_drop(t, u->cur);
        }
        if (u->old) {
            store__index_attach(t, u->old);
            t->n_objs++;
        }
    }
}

/* Make the entry's changes final and hand its events to the history. */
static void
commit_all(struct apply_ctx *c, struct store_event *events)
{
    for (size_t i = 0; i < c->n_log; i++) {
        struct store_undo *u = &c->log[i];
        struct store_event *ev = &events[i];

        ASSERT((u->action == SHOAL_ACTION_CREATE) == (u->old == NULL));
        ASSERT((u->action == SHOAL_ACTION_REMOVE) == (u->cur == NULL));
        ev->action = u->action;
        ev->kind = u->kind;
        if (u->old) {
            /* The table's reference to the old object moves to the
             * event; its detached index entries are no longer needed. */
            store__index_free_keys(u->old);
        }
        if (u->cur) {
            u->cur->refs++;
            ev->obj = u->cur->body;
            ev->old = u->old ? u->old->body : NULL;
        } else {
            ev->obj = u->old->body;
            ev->old = NULL;
        }
    }
    store__hist_push(&c->s->hist, c->index, events, c->n_log);
}

int
store_apply(struct store *s, uint64_t index, const struct shoal_proposal *p,
            struct store_verdict *v)
{
    struct apply_ctx c = {.s = s, .index = index, .v = v};
    struct store_event *events = NULL;
    int rc = 0;

    ASSERT(index > s->applied);
    memset(v, 0, sizeof(*v));
    v->code = SHOAL_OK;
    if (p->n_actions == 0) {
        s->applied = index;
        return 0;
    }

    /* Everything the commit needs is taken up front, so that once the
     * actions pass, making them final cannot fail. */
    c.log = calloc(p->n_actions, sizeof(*c.log));
    events = calloc(p->n_actions, sizeof(*events));
    if (!c.log || !events) {
        rc = ERR_NOMEM;
        goto fail_free;
    }
    rc = store__hist_reserve(&s->hist);
    if (rc != 0) {
        goto fail_free;
    }

    for (size_t i = 0; rc == 0 && i < p->n_actions; i++) {
        rc = apply_action(&c, i, &p->actions[i]);
    }
    if (rc != 0) {
        undo_all(&c);
        goto fail_free;
    }

    commit_all(&c, events);
    free(c.log);
    s->applied = index;
    return 0;

fail_free:
    free(events);
    free(c.log);
    if (rc == ERR_NOMEM) {
        memset(v, 0, sizeof(*v));
        return ERR_NOMEM;
    }

    /* A refusal is a verdict: the entry is applied, it changed nothing. */
    ASSERT(rc == 1 && v->code != SHOAL_OK);
    s->applied = index;
    return 0;
}

/* Reads. */

const void *
store_get(const struct store *s, enum shoal_kind kind, const char *id)
{
    struct store_obj *o;

    if (kind <= SHOAL_KIND_NONE || kind >= SHOAL_KIND_COUNT || !id) {
        return NULL;
    }
    o = store__index_get(&s->tables[kind], id);
    return o ? o->body : NULL;
}

size_t
store_count(const struct store *s, enum shoal_kind kind)
{
    if (kind <= SHOAL_KIND_NONE || kind >= SHOAL_KIND_COUNT) {
        return 0;
    }
    return s->tables[kind].n_objs;
}

int
store_find(const struct store *s, enum shoal_kind kind,
           const struct store_query *q, store_visit_cb *cb, void *arg)
{
    ASSERT(q != NULL && cb != NULL);
    if (kind <= SHOAL_KIND_NONE || kind >= SHOAL_KIND_COUNT) {
        return ERR_PROTO;
    }
    return store__index_find(&s->tables[kind], kind, q, cb, arg);
}

const void *
store_get_by_name(const struct store *s, enum shoal_kind kind,
                  const char *name)
{
    struct store_obj *o;

    if (kind <= SHOAL_KIND_NONE || kind >= SHOAL_KIND_COUNT ||
        !store__kind_unique_names(kind)) {
        return NULL;
    }
    o = store__index_name_taken(&s->tables[kind], name, NULL);
    return o ? o->body : NULL;
}
