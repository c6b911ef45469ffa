/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store_index.c: the indexes of the store's tables.
 *
 * One mechanism serves every index: a red-black tree of entries ordered
 * by (key, object id), and per kind a list of key functions that give
 * each object zero or more keys in an index. Lookups by exact key and by
 * key prefix are a descent to the first candidate, then a walk in order,
 * so they cost O(log n + matches) and return a stable order.
 *
 * Key layout (bytes, compared with memcmp, shorter first on a tie):
 *   id, runtime, service, node, network, secret, config: the string as is
 *   name: the name lowercased in ASCII (locale-free, so every manager
 *         computes the same key)
 *   role, membership, desired, state: the number as 16 hex digits, so
 *         byte order is numeric order
 *   slot: service id, one NUL byte, the slot as 16 hex digits
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/wire.h"

#define NUM_KEY_LEN 16

/* ASCII only, never the locale's: every manager must build the same key. */
static char
ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
ient_cmp(const struct store_ient *a, const struct store_ient *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->key, b->key, n);

    if (c != 0) {
        return c;
    }
    if (a->len != b->len) {
        return a->len < b->len ? -1 : 1;
    }

    /* A probe has no owner and sorts before every entry of its key, so a
     * search for the smallest entry >= probe finds the first of them. */
    if (!a->o || !b->o) {
        return (a->o != NULL) - (b->o != NULL);
    }
    return strcmp(wire_object_id(a->o->kind, a->o->body),
                  wire_object_id(b->o->kind, b->o->body));
}

RB_GENERATE_INTERNAL(store_itree, store_ient, link, ient_cmp,
                     __attribute__((unused)) static)

/* Keys under construction for one object. */
struct keybuf {
    struct store_ient **v;
    size_t n;
    size_t cap;
};

/* Add the key a then b (b may be NULL), lowercased when lower is set. */
static int
kb_add(struct keybuf *kb, enum store_idx idx, const char *a, size_t alen,
       const char *b, size_t blen, bool lower)
{
    struct store_ient *e;
    char *key;

    ASSERT(idx < STORE_IDX_COUNT);
    if (kb->n == kb->cap) {
        size_t cap = kb->cap ? kb->cap * 2 : 16;
        struct store_ient **v = realloc(kb->v, cap * sizeof(*v));

        if (!v) {
            return ERR_NOMEM;
        }
        kb->v = v;
        kb->cap = cap;
    }

    e = calloc(1, sizeof(*e) + alen + blen + 1);
    if (!e) {
        return ERR_NOMEM;
    }
    key = (char *)(e + 1);
    memcpy(key, a, alen);
    if (blen > 0) {
        memcpy(key + alen, b, blen);
    }
    if (lower) {
        for (size_t i = 0; i < alen + blen; i++) {
            key[i] = ascii_lower(key[i]);
        }
    }
    e->key = key;
    e->len = alen + blen;
    e->idx = (uint8_t)idx;
    kb->v[kb->n++] = e;
    return 0;
}

static int
kb_add_str(struct keybuf *kb, enum store_idx idx, const char *s)
{
    s = s ? s : "";
    return kb_add(kb, idx, s, strlen(s), NULL, 0, false);
}

static void
num_key(char out[NUM_KEY_LEN + 1], uint64_t v)
{
    snprintf(out, NUM_KEY_LEN + 1, "%016llx", (unsigned long long)v);
}

static int
kb_add_num(struct keybuf *kb, enum store_idx idx, uint64_t v)
{
    char num[NUM_KEY_LEN + 1];

    num_key(num, v);
    return kb_add(kb, idx, num, NUM_KEY_LEN, NULL, 0, false);
}

/* A name key, only for a name that is set: "missing allowed". */
static int
kb_add_name(struct keybuf *kb, const char *name)
{
    if (!name || !*name) {
        return 0;
    }
    return kb_add(kb, STORE_IDX_NAME, name, strlen(name), NULL, 0, true);
}

/* Key functions: each adds the keys of one index for one object. */

typedef int keys_fn(struct keybuf *kb, enum store_idx idx,
                    enum shoal_kind kind, const void *obj);

static int
keys_id(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
        const void *obj)
{
    return kb_add_str(kb, idx, wire_object_id(kind, obj));
}

/* The task name of SwarmKit: the annotations name if set, else
 * "<service name>.<slot, or node id when slot is 0>.<task id>". */
static int
keys_task_name(struct keybuf *kb, const struct shoal_task *t)
{
    const char *svc = t->service_annotations.name;
    char *name;
    int rc;

    if (t->annotations.name && *t->annotations.name) {
        return kb_add_name(kb, t->annotations.name);
    }

    if (t->slot != 0) {
        name = str_printf("%s.%llu.%s", svc ? svc : "",
                          (unsigned long long)t->slot, t->id ? t->id : "");
    } else {
        name = str_printf("%s.%s.%s", svc ? svc : "",
                          t->node_id ? t->node_id : "", t->id ? t->id : "");
    }
    if (!name) {
        return ERR_NOMEM;
    }
    rc = kb_add_name(kb, name);
    free(name);
    return rc;
}

static int
keys_name(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
          const void *obj)
{
    (void)idx;
    if (kind == SHOAL_KIND_TASK) {
        return keys_task_name(kb, obj);
    }
    return kb_add_name(kb, store__obj_name(kind, obj));
}

static int
keys_role(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
          const void *obj)
{
    (void)kind;
    return kb_add_num(kb, idx, ((const struct shoal_node *)obj)->role);
}

static int
keys_membership(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
                const void *obj)
{
    const struct shoal_node *n = obj;

    (void)kind;
    return kb_add_num(kb, idx, n->spec.membership);
}

/* An unassigned task is indexed under the empty node id, so that the
 * tasks without a node can be found like any other group. */
static int
keys_task_service(struct keybuf *kb, enum store_idx idx,
                  enum shoal_kind kind, const void *obj)
{
    (void)kind;
    return kb_add_str(kb, idx, ((const struct shoal_task *)obj)->service_id);
}

static int
keys_task_node(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
               const void *obj)
{
    (void)kind;
    return kb_add_str(kb, idx, ((const struct shoal_task *)obj)->node_id);
}

static int
keys_task_slot(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
               const void *obj)
{
    const struct shoal_task *t = obj;
    const char *svc = t->service_id ? t->service_id : "";
    char tail[1 + NUM_KEY_LEN + 1];

    (void)kind;
    tail[0] = '\0';
    num_key(tail + 1, t->slot);
    return kb_add(kb, idx, svc, strlen(svc), tail, sizeof(tail) - 1, false);
}

static int
keys_task_desired(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
                  const void *obj)
{
    (void)kind;
    return kb_add_num(kb, idx,
                      ((const struct shoal_task *)obj)->desired_state);
}

static int
keys_task_state(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
                const void *obj)
{
    (void)kind;
    return kb_add_num(kb, idx, ((const struct shoal_task *)obj)->status.state);
}

/* The task spec of a service (its template) or of a task. */
static const struct shoal_task_spec *
task_spec_of(enum shoal_kind kind, const void *obj)
{
    if (kind == SHOAL_KIND_SERVICE) {
        return &((const struct shoal_service *)obj)->spec.task;
    }
    ASSERT(kind == SHOAL_KIND_TASK);
    return &((const struct shoal_task *)obj)->spec;
}

static int
keys_runtime(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
             const void *obj)
{
    if (!task_spec_of(kind, obj)->container) {
        return 0;
    }
    return kb_add_str(kb, idx, "container");
}

/* Empty references are skipped: they name nothing to look up. */
static int
kb_add_ref(struct keybuf *kb, enum store_idx idx, const char *id)
{
    if (!id || !*id) {
        return 0;
    }
    return kb_add_str(kb, idx, id);
}

static int
keys_networks(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
              const void *obj)
{
    const struct shoal_task_spec *ts = task_spec_of(kind, obj);
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < ts->n_networks; i++) {
        rc = kb_add_ref(kb, idx, ts->networks[i].target);
    }
    return rc;
}

static int
keys_secrets(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
             const void *obj)
{
    const struct shoal_container_spec *c = task_spec_of(kind, obj)->container;
    int rc = 0;

    for (size_t i = 0; c && rc == 0 && i < c->n_secrets; i++) {
        rc = kb_add_ref(kb, idx, c->secrets[i].secret_id);
    }
    return rc;
}

static int
keys_configs(struct keybuf *kb, enum store_idx idx, enum shoal_kind kind,
             const void *obj)
{
    const struct shoal_container_spec *c = task_spec_of(kind, obj)->container;
    int rc = 0;

    for (size_t i = 0; c && rc == 0 && i < c->n_configs; i++) {
        rc = kb_add_ref(kb, idx, c->configs[i].config_id);
    }
    return rc;
}

/* What each index of each kind is made of. NULL: the kind lacks it. */
static keys_fn *const kind_keys[SHOAL_KIND_COUNT][STORE_IDX_COUNT] = {
    [SHOAL_KIND_NODE] = {
        [STORE_IDX_ID] = keys_id,
        [STORE_IDX_NAME] = keys_name,
        [STORE_IDX_ROLE] = keys_role,
        [STORE_IDX_MEMBERSHIP] = keys_membership,
    },
    [SHOAL_KIND_SERVICE] = {
        [STORE_IDX_ID] = keys_id,
        [STORE_IDX_NAME] = keys_name,
        [STORE_IDX_RUNTIME] = keys_runtime,
        [STORE_IDX_NETWORK] = keys_networks,
        [STORE_IDX_SECRET] = keys_secrets,
        [STORE_IDX_CONFIG] = keys_configs,
    },
    [SHOAL_KIND_TASK] = {
        [STORE_IDX_ID] = keys_id,
        [STORE_IDX_NAME] = keys_name,
        [STORE_IDX_SERVICE] = keys_task_service,
        [STORE_IDX_NODE] = keys_task_node,
        [STORE_IDX_SLOT] = keys_task_slot,
        [STORE_IDX_DESIRED] = keys_task_desired,
        [STORE_IDX_STATE] = keys_task_state,
        [STORE_IDX_RUNTIME] = keys_runtime,
        [STORE_IDX_NETWORK] = keys_networks,
        [STORE_IDX_SECRET] = keys_secrets,
        [STORE_IDX_CONFIG] = keys_configs,
    },
    [SHOAL_KIND_NETWORK] = {
        [STORE_IDX_ID] = keys_id, [STORE_IDX_NAME] = keys_name,
    },
    [SHOAL_KIND_CLUSTER] = {
        [STORE_IDX_ID] = keys_id, [STORE_IDX_NAME] = keys_name,
    },
    [SHOAL_KIND_SECRET] = {
        [STORE_IDX_ID] = keys_id, [STORE_IDX_NAME] = keys_name,
    },
    [SHOAL_KIND_CONFIG] = {
        [STORE_IDX_ID] = keys_id, [STORE_IDX_NAME] = keys_name,
    },
};

bool
store__kind_unique_names(enum shoal_kind kind)
{
    return kind == SHOAL_KIND_SERVICE || kind == SHOAL_KIND_NETWORK ||
           kind == SHOAL_KIND_CLUSTER || kind == SHOAL_KIND_SECRET ||
           kind == SHOAL_KIND_CONFIG;
}

const char *
store__obj_name(enum shoal_kind kind, const void *obj)
{
    const char *name = NULL;

    switch (kind) {
    case SHOAL_KIND_NODE:
        name = ((const struct shoal_node *)obj)->description.hostname;
        break;
    case SHOAL_KIND_SERVICE:
        name = ((const struct shoal_service *)obj)->spec.annotations.name;
        break;
    case SHOAL_KIND_TASK:
        name = ((const struct shoal_task *)obj)->annotations.name;
        break;
    case SHOAL_KIND_NETWORK:
        name = ((const struct shoal_network *)obj)->spec.annotations.name;
        break;
    case SHOAL_KIND_CLUSTER:
        name = ((const struct shoal_cluster *)obj)->spec.annotations.name;
        break;
    case SHOAL_KIND_SECRET:
        name = ((const struct shoal_secret *)obj)->spec.annotations.name;
        break;
    case SHOAL_KIND_CONFIG:
        name = ((const struct shoal_config *)obj)->spec.annotations.name;
        break;
    default:
        ASSERT_UNREACHABLE();
    }
    return name ? name : "";
}

/* Order of an object's own entries: by index, then key. */
static int
ent_sort_cmp(const void *pa, const void *pb)
{
    const struct store_ient *a = *(const struct store_ient *const *)pa;
    const struct store_ient *b = *(const struct store_ient *const *)pb;

    if (a->idx != b->idx) {
        return a->idx < b->idx ? -1 : 1;
    }
    return ient_cmp(a, b);
}

/* Sort the entries and drop repeated keys (a service that names one
 * secret twice is in the secret index once). */
static void
kb_unique(struct keybuf *kb)
{
    size_t out = 0;

    qsort(kb->v, kb->n, sizeof(*kb->v), ent_sort_cmp);
    for (size_t i = 0; i < kb->n; i++) {
        if (out > 0 && ent_sort_cmp(&kb->v[out - 1], &kb->v[i]) == 0) {
            free(kb->v[i]);
            continue;
        }
        kb->v[out++] = kb->v[i];
    }
    kb->n = out;
}

int
store__index_keys(struct store_obj *o)
{
    keys_fn *const *fns = kind_keys[o->kind];
    struct keybuf kb = {0};
    int rc = 0;

    ASSERT(o->ents == NULL && o->n_ents == 0);
    ASSERT(o->kind > SHOAL_KIND_NONE && o->kind < SHOAL_KIND_COUNT);
    for (int idx = 0; rc == 0 && idx < STORE_IDX_COUNT; idx++) {
        if (fns[idx]) {
            rc = fns[idx](&kb, (enum store_idx)idx, o->kind, o->body);
        }
    }
    if (rc != 0) {
        goto fail_free_keys;
    }

    for (size_t i = 0; i < kb.n; i++) {
        kb.v[i]->o = o;
    }
    kb_unique(&kb);
    o->ents = kb.v;
    o->n_ents = kb.n;
    return 0;

fail_free_keys:
    for (size_t i = 0; i < kb.n; i++) {
        free(kb.v[i]);
    }
    free(kb.v);
    ASSERT(rc != 0);
    return rc;
}

void
store__index_free_keys(struct store_obj *o)
{
    for (size_t i = 0; i < o->n_ents; i++) {
        free(o->ents[i]);
    }
    free(o->ents);
    o->ents = NULL;
    o->n_ents = 0;
}

void
store__table_init(struct store_table *t)
{
    t->n_objs = 0;
    for (int i = 0; i < STORE_IDX_COUNT; i++) {
        RB_INIT(&t->trees[i]);
    }
}

void
store__index_attach(struct store_table *t, struct store_obj *o)
{
    for (size_t i = 0; i < o->n_ents; i++) {
        struct store_ient *e = o->ents[i];
        struct store_ient *dup = RB_INSERT(store_itree, &t->trees[e->idx], e);

        /* Keys are unique per object and ids per table, so (key, id)
         * cannot be taken: apply checked the id before getting here. */
        ASSERT(dup == NULL);
    }
}

void
store__index_detach(struct store_table *t, struct store_obj *o)
{
    for (size_t i = 0; i < o->n_ents; i++) {
        struct store_ient *e = o->ents[i];

        RB_REMOVE(store_itree, &t->trees[e->idx], e);
    }
}

/* The first entry of tree whose key is >= key (any id). */
static struct store_ient *
first_at(const struct store_itree *tree, const char *key, size_t len)
{
    struct store_ient probe = {.o = NULL, .key = key, .len = len};

    /* The generated functions take a non-const head but only read it. */
    return RB_NFIND(store_itree, (struct store_itree *)tree, &probe);
}

static bool
key_matches(const struct store_ient *e, const char *key, size_t len,
            bool prefix)
{
    if (prefix ? e->len < len : e->len != len) {
        return false;
    }
    return memcmp(e->key, key, len) == 0;
}

struct store_obj *
store__index_get(const struct store_table *t, const char *id)
{
    size_t len = strlen(id);
    struct store_ient *e = first_at(&t->trees[STORE_IDX_ID], id, len);

    return e && key_matches(e, id, len, false) ? e->o : NULL;
}

/*
 * A search key given in pieces (a name to lowercase, or service id, NUL
 * and slot), so that no search needs the heap however long its argument.
 */
struct qkey {
    const char *part[3];
    size_t len[3];
    size_t n_parts;
    bool lower;  /* lowercase the pieces, for names */
    bool prefix; /* match keys that start with the key */
};

static void
qkey_add(struct qkey *q, const char *p, size_t len)
{
    ASSERT(q->n_parts < ARRAY_LEN(q->part));
    q->part[q->n_parts] = p;
    q->len[q->n_parts] = len;
    q->n_parts++;
}

/* Whether e's key equals q (or starts with it, for a prefix). */
static bool
qkey_matches(const struct qkey *q, const struct store_ient *e)
{
    size_t at = 0;

    for (size_t p = 0; p < q->n_parts; p++) {
        for (size_t i = 0; i < q->len[p]; i++, at++) {
            char c = q->lower ? ascii_lower(q->part[p][i]) : q->part[p][i];

            if (at >= e->len || e->key[at] != c) {
                return false;
            }
        }
    }
    return q->prefix || at == e->len;
}

/* Write the first bytes of q, up to cap, to buf; returns how many, and
 * sets *whole when that is all of q. */
static size_t
qkey_head(const struct qkey *q, char *buf, size_t cap, bool *whole)
{
    size_t n = 0;

    *whole = true;
    for (size_t p = 0; p < q->n_parts; p++) {
        for (size_t i = 0; i < q->len[p]; i++) {
            if (n == cap) {
                *whole = false;
                return n;
            }
            buf[n++] = q->lower ? ascii_lower(q->part[p][i]) : q->part[p][i];
        }
    }
    return n;
}

/*
 * Visit the entries of tree that q selects, in order. The descent uses
 * the key's head (all of it unless the argument is longer than any the
 * schema allows); the entries that share the head are then compared in
 * full. Sets *out to the first object and stops when cb is NULL.
 */
static int
walk(const struct store_itree *tree, const struct qkey *q, const char *self,
     store_visit_cb *cb, void *arg, struct store_obj **out)
{
    char head[512];
    bool whole;
    size_t hlen = qkey_head(q, head, sizeof(head), &whole);
    struct store_ient *e = first_at(tree, head, hlen);

    ASSERT(cb != NULL || out != NULL);
    for (; e && key_matches(e, head, hlen, true);
         e = RB_NEXT(store_itree, tree, e)) {
        int rc;

        if (!qkey_matches(q, e)) {
            /* With the whole key, entries equal to it come first and
             * longer ones after: an exact search is over at the first
             * miss. A head alone may be followed by more matches. */
            if (whole) {
                break;
            }
            continue;
        }
        if (self && !strcmp(wire_object_id(e->o->kind, e->o->body), self)) {
            continue;
        }
        if (!cb) {
            *out = e->o;
            return 0;
        }
        rc = cb(e->o->body, arg);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

struct store_obj *
store__index_name_taken(const struct store_table *t, const char *name,
                        const char *self)
{
    struct qkey q = {.lower = true};
    struct store_obj *o = NULL;

    if (!name || !*name) {
        return NULL;
    }
    qkey_add(&q, name, strlen(name));
    walk(&t->trees[STORE_IDX_NAME], &q, self, NULL, NULL, &o);
    return o;
}

/* Where each selector looks. */
static const enum store_idx by_idx[] = {
    [STORE_BY_ALL] = STORE_IDX_ID,
    [STORE_BY_ID_PREFIX] = STORE_IDX_ID,
    [STORE_BY_NAME] = STORE_IDX_NAME,
    [STORE_BY_NAME_PREFIX] = STORE_IDX_NAME,
    [STORE_BY_ROLE] = STORE_IDX_ROLE,
    [STORE_BY_MEMBERSHIP] = STORE_IDX_MEMBERSHIP,
    [STORE_BY_SERVICE] = STORE_IDX_SERVICE,
    [STORE_BY_NODE] = STORE_IDX_NODE,
    [STORE_BY_SLOT] = STORE_IDX_SLOT,
    [STORE_BY_DESIRED_STATE] = STORE_IDX_DESIRED,
    [STORE_BY_TASK_STATE] = STORE_IDX_STATE,
    [STORE_BY_RUNTIME] = STORE_IDX_RUNTIME,
    [STORE_BY_NETWORK] = STORE_IDX_NETWORK,
    [STORE_BY_SECRET] = STORE_IDX_SECRET,
    [STORE_BY_CONFIG] = STORE_IDX_CONFIG,
};

int
store__index_find(const struct store_table *t, enum shoal_kind kind,
                  const struct store_query *q, store_visit_cb *cb, void *arg)
{
    const char *str = q->str ? q->str : "";
    char num[1 + NUM_KEY_LEN + 1];
    struct qkey k = {0};
    enum store_idx idx;

    if ((unsigned)q->by >= ARRAY_LEN(by_idx) || kind <= SHOAL_KIND_NONE ||
        kind >= SHOAL_KIND_COUNT) {
        return ERR_PROTO;
    }
    idx = by_idx[q->by];
    if (!kind_keys[kind][idx]) {
        return ERR_PROTO;
    }

    switch (q->by) {
    case STORE_BY_ALL:
        k.prefix = true;
        break;
    case STORE_BY_ID_PREFIX:
        k.prefix = true;
        qkey_add(&k, str, strlen(str));
        break;
    case STORE_BY_NAME:
    case STORE_BY_NAME_PREFIX:
        k.lower = true;
        k.prefix = q->by == STORE_BY_NAME_PREFIX;
        qkey_add(&k, str, strlen(str));
        break;
    case STORE_BY_ROLE:
    case STORE_BY_MEMBERSHIP:
    case STORE_BY_DESIRED_STATE:
    case STORE_BY_TASK_STATE:
        num_key(num, q->num);
        qkey_add(&k, num, NUM_KEY_LEN);
        break;
    case STORE_BY_SLOT:
        num[0] = '\0';
        num_key(num + 1, q->num);
        qkey_add(&k, str, strlen(str));
        qkey_add(&k, num, 1 + NUM_KEY_LEN);
        break;
    default:
        qkey_add(&k, str, strlen(str));
        break;
    }
    return walk(&t->trees[idx], &k, NULL, cb, arg, NULL);
}
