/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_list.c: the List requests of every kind, with SwarmKit's filter
 * semantics (SWARMKIT.md 1, "List filters").
 *
 * One store index fetches the candidates, picked by the first filter set
 * in the request's priority order, its values OR'ed; then every filter is
 * applied again in memory (AND across filters, OR within one), so the
 * index is only a shortcut and an index the store does not serve falls
 * back to a full walk with the same result. Names match exactly and
 * case-sensitively, except for secrets and configs, whose names, name
 * prefixes and id prefixes form one union and whose names match in any
 * case. Replies are sorted by id, a stable order that does not depend on
 * the index used.
 */
#include "control/control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"

enum list_filter {
    LF_NAMES = 1u << 0,
    LF_NAME_PREFIXES = 1u << 1,
    LF_ID_PREFIXES = 1u << 2,
    LF_LABELS = 1u << 3,
    LF_NODE_LABELS = 1u << 4,
    LF_ROLES = 1u << 5,
    LF_MEMBERSHIPS = 1u << 6,
    LF_SERVICE_IDS = 1u << 7,
    LF_NODE_IDS = 1u << 8,
    LF_DESIRED_STATES = 1u << 9,
    LF_RUNTIMES = 1u << 10,
    LF_UP_TO_DATE = 1u << 11,
};

static const char *const filter_names[] = {
    "names",       "name_prefixes",  "id_prefixes", "labels",
    "node_labels", "roles",          "memberships", "service_ids",
    "node_ids",    "desired_states", "runtimes",    "up_to_date",
};

#define LF_COMMON (LF_NAMES | LF_NAME_PREFIXES | LF_ID_PREFIXES | LF_LABELS)

typedef bool list_match_fn(struct control *c,
                           const struct shoal_list_request *r, const void *obj);

struct list_kind {
    uint16_t type;
    enum shoal_kind kind;
    unsigned allowed;
    unsigned order[6]; /* filters with an index, by priority; 0 ends */
    list_match_fn *match;
};

/* Matching. */

static bool
strs_has(const struct shoal_strs *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++) {
        if (v && strcmp(s->v[i], v) == 0) {
            return true;
        }
    }
    return false;
}

static bool
strs_prefix(const struct shoal_strs *s, const char *v, bool any_case)
{
    for (size_t i = 0; i < s->n; i++) {
        size_t n = strlen(s->v[i]);

        if (v && (any_case ? strncasecmp(v, s->v[i], n)
                           : strncmp(v, s->v[i], n)) == 0) {
            return true;
        }
    }
    return false;
}

static bool
u32s_has(const struct shoal_u32s *s, uint32_t v)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] == v) {
            return true;
        }
    }
    return false;
}

/* names, name_prefixes, id_prefixes and labels, each only when set. */
static bool
common_match(const struct shoal_list_request *r, const char *id,
             const char *name, const struct shoal_map *labels)
{
    if (r->names.n > 0 && !strs_has(&r->names, name)) {
        return false;
    }
    if (r->name_prefixes.n > 0 &&
        !strs_prefix(&r->name_prefixes, name, false)) {
        return false;
    }
    if (r->id_prefixes.n > 0 && !strs_prefix(&r->id_prefixes, id, false)) {
        return false;
    }
    return control_labels_match(&r->labels, labels);
}

static bool
node_match(struct control *c, const struct shoal_list_request *r,
           const void *obj)
{
    const struct shoal_node *n = obj;

    (void)c;
    if (!common_match(r, n->id, n->description.hostname,
                      &n->description.engine_labels)) {
        return false;
    }
    if (!control_labels_match(&r->node_labels, &n->spec.annotations.labels)) {
        return false;
    }
    if (r->roles.n > 0 && !u32s_has(&r->roles, n->role)) {
        return false;
    }
    return r->memberships.n == 0 ||
           u32s_has(&r->memberships, n->spec.membership);
}

const char *
control_task_name(const struct shoal_task *t, char *buf, size_t len)
{
    char slot[24];

    if (t->annotations.name && *t->annotations.name) {
        return t->annotations.name;
    }
    snprintf(slot, sizeof slot, "%llu", (unsigned long long)t->slot);
    snprintf(buf, len, "%s.%s.%s",
             t->service_annotations.name ? t->service_annotations.name : "",
             t->slot != 0 ? slot : (t->node_id ? t->node_id : ""),
             t->id ? t->id : "");
    return buf;
}

/* SwarmKit's up_to_date keeps the tasks the orchestrator would not call
 * dirty: built from the service's current spec version, or with a task
 * spec equal to the service's. */
static bool
task_up_to_date(struct control *c, const struct shoal_task *t)
{
    const struct shoal_service *s;

    s = store_get(c->store, SHOAL_KIND_SERVICE, t->service_id);
    if (!s) {
        return false;
    }
    return t->spec_version == s->spec_version ||
           wire_equal(&wire_type_task_spec, &t->spec, &s->spec.task);
}

static bool
task_match(struct control *c, const struct shoal_list_request *r,
           const void *obj)
{
    const struct shoal_task *t = obj;
    char buf[512];

    if (!common_match(r, t->id, control_task_name(t, buf, sizeof buf),
                      &t->service_annotations.labels)) {
        return false;
    }
    if (r->service_ids.n > 0 && !strs_has(&r->service_ids, t->service_id)) {
        return false;
    }
    if (r->node_ids.n > 0 && !strs_has(&r->node_ids, t->node_id)) {
        return false;
    }
    if (r->desired_states.n > 0 &&
        !u32s_has(&r->desired_states, t->desired_state)) {
        return false;
    }
    if (r->runtimes.n > 0 &&
        !strs_has(&r->runtimes, control_runtime(&t->spec))) {
        return false;
    }
    return !r->up_to_date || task_up_to_date(c, t);
}

static bool
service_match(struct control *c, const struct shoal_list_request *r,
              const void *obj)
{
    const struct shoal_service *s = obj;

    (void)c;
    if (!common_match(r, s->id, s->spec.annotations.name,
                      &s->spec.annotations.labels)) {
        return false;
    }
    return r->runtimes.n == 0 ||
           strs_has(&r->runtimes, control_runtime(&s->spec.task));
}

static bool
network_match(struct control *c, const struct shoal_list_request *r,
              const void *obj)
{
    const struct shoal_network *n = obj;

    (void)c;
    return common_match(r, n->id, n->spec.annotations.name,
                        &n->spec.annotations.labels);
}

static bool
cluster_match(struct control *c, const struct shoal_list_request *r,
              const void *obj)
{
    const struct shoal_cluster *cl = obj;

    (void)c;
    return common_match(r, cl->id, cl->spec.annotations.name,
                        &cl->spec.annotations.labels);
}

/* Secrets and configs: names (any case), name prefixes (any case) and id
 * prefixes are one union; labels narrow it. */
static bool
union_match(const struct shoal_list_request *r, const char *id,
            const char *name, const struct shoal_map *labels)
{
    bool any = r->names.n || r->name_prefixes.n || r->id_prefixes.n;
    bool hit = !any;

    for (size_t i = 0; !hit && i < r->names.n; i++) {
        hit = name && str_casecmp(name, r->names.v[i]) == 0;
    }
    hit = hit || strs_prefix(&r->name_prefixes, name, true);
    hit = hit || strs_prefix(&r->id_prefixes, id, false);
    return hit && control_labels_match(&r->labels, labels);
}

static bool
secret_match(struct control *c, const struct shoal_list_request *r,
             const void *obj)
{
    const struct shoal_secret *s = obj;

    (void)c;
    return !s->internal && union_match(r, s->id, s->spec.annotations.name,
                                       &s->spec.annotations.labels);
}

static bool
config_match(struct control *c, const struct shoal_list_request *r,
             const void *obj)
{
    const struct shoal_config *cf = obj;

    (void)c;
    return union_match(r, cf->id, cf->spec.annotations.name,
                       &cf->spec.annotations.labels);
}

static const struct list_kind list_kinds[] = {
    {WIRE_MSG_LIST_NODES,
     SHOAL_KIND_NODE,
     LF_COMMON | LF_NODE_LABELS | LF_ROLES | LF_MEMBERSHIPS,
     {LF_NAMES, LF_NAME_PREFIXES, LF_ID_PREFIXES, LF_ROLES, LF_MEMBERSHIPS},
     node_match},
    /* Task names are computed (control_task_name), so a name filter walks
     * every task rather than trust the store's idea of a task's name. */
    {WIRE_MSG_LIST_TASKS,
     SHOAL_KIND_TASK,
     LF_COMMON | LF_SERVICE_IDS | LF_NODE_IDS | LF_DESIRED_STATES |
         LF_RUNTIMES | LF_UP_TO_DATE,
     {LF_NAMES, LF_NAME_PREFIXES, LF_ID_PREFIXES, LF_SERVICE_IDS, LF_RUNTIMES,
      LF_NODE_IDS},
     task_match},
    {WIRE_MSG_LIST_SERVICES,
     SHOAL_KIND_SERVICE,
     LF_COMMON | LF_RUNTIMES,
     {LF_NAMES, LF_NAME_PREFIXES, LF_ID_PREFIXES, LF_RUNTIMES},
     service_match},
    {WIRE_MSG_LIST_NETWORKS,
     SHOAL_KIND_NETWORK,
     LF_COMMON,
     {LF_NAMES, LF_NAME_PREFIXES, LF_ID_PREFIXES},
     network_match},
    {WIRE_MSG_LIST_CLUSTERS,
     SHOAL_KIND_CLUSTER,
     LF_COMMON,
     {LF_NAMES, LF_NAME_PREFIXES, LF_ID_PREFIXES},
     cluster_match},
    {WIRE_MSG_LIST_SECRETS, SHOAL_KIND_SECRET, LF_COMMON, {0}, secret_match},
    {WIRE_MSG_LIST_CONFIGS, SHOAL_KIND_CONFIG, LF_COMMON, {0}, config_match},
};

/* Fetching. */

struct collect {
    const void **v;
    size_t n, cap;
};

static int
collect_visit(const void *obj, void *arg)
{
    struct collect *col = arg;

    if (col->n == col->cap) {
        size_t cap = col->cap ? col->cap * 2 : 64;
        const void **grown = realloc(col->v, cap * sizeof *grown);

        if (!grown) {
            return ERR_NOMEM;
        }
        col->v = grown;
        col->cap = cap;
    }
    col->v[col->n++] = obj;
    return 0;
}

static unsigned
filters_present(const struct shoal_list_request *r)
{
    unsigned set = 0;

    set |= r->names.n ? LF_NAMES : 0;
    set |= r->name_prefixes.n ? LF_NAME_PREFIXES : 0;
    set |= r->id_prefixes.n ? LF_ID_PREFIXES : 0;
    set |= r->labels.n ? LF_LABELS : 0;
    set |= r->node_labels.n ? LF_NODE_LABELS : 0;
    set |= r->roles.n ? LF_ROLES : 0;
    set |= r->memberships.n ? LF_MEMBERSHIPS : 0;
    set |= r->service_ids.n ? LF_SERVICE_IDS : 0;
    set |= r->node_ids.n ? LF_NODE_IDS : 0;
    set |= r->desired_states.n ? LF_DESIRED_STATES : 0;
    set |= r->runtimes.n ? LF_RUNTIMES : 0;
    set |= r->up_to_date ? LF_UP_TO_DATE : 0;
    return set;
}

/* Run one query per value of filter f; returns 0, ERR_NOMEM, or ERR_PROTO
 * when the store has no such index for the kind. */
static int
fetch_filter(struct control *c, enum shoal_kind kind,
             const struct shoal_list_request *r, unsigned f,
             struct collect *col)
{
    const struct shoal_strs *strs = NULL;
    const struct shoal_u32s *nums = NULL;
    struct store_query q = {0};
    size_t n;
    int rc;

    switch (f) {
    case LF_NAMES:
        q.by = STORE_BY_NAME;
        strs = &r->names;
        break;
    case LF_NAME_PREFIXES:
        q.by = STORE_BY_NAME_PREFIX;
        strs = &r->name_prefixes;
        break;
    case LF_ID_PREFIXES:
        q.by = STORE_BY_ID_PREFIX;
        strs = &r->id_prefixes;
        break;
    case LF_SERVICE_IDS:
        q.by = STORE_BY_SERVICE;
        strs = &r->service_ids;
        break;
    case LF_NODE_IDS:
        q.by = STORE_BY_NODE;
        strs = &r->node_ids;
        break;
    case LF_RUNTIMES:
        q.by = STORE_BY_RUNTIME;
        strs = &r->runtimes;
        break;
    case LF_ROLES:
        q.by = STORE_BY_ROLE;
        nums = &r->roles;
        break;
    case LF_MEMBERSHIPS:
        q.by = STORE_BY_MEMBERSHIP;
        nums = &r->memberships;
        break;
    default:
        ASSERT_UNREACHABLE();
    }
    if (kind == SHOAL_KIND_TASK && (f == LF_NAMES || f == LF_NAME_PREFIXES)) {
        q.by = STORE_BY_ALL;
        return store_find(c->store, kind, &q, collect_visit, col);
    }
    n = strs ? strs->n : nums->n;
    for (size_t i = 0; i < n; i++) {
        if (strs) {
            q.str = strs->v[i];
        } else {
            q.num = nums->v[i];
        }
        rc = store_find(c->store, kind, &q, collect_visit, col);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int
fetch(struct control *c, const struct list_kind *lk,
      const struct shoal_list_request *r, struct collect *col)
{
    unsigned set = filters_present(r);
    struct store_query all = {.by = STORE_BY_ALL};

    for (size_t i = 0; i < ARRAY_LEN(lk->order) && lk->order[i]; i++) {
        int rc;

        if (!(set & lk->order[i])) {
            continue;
        }
        rc = fetch_filter(c, lk->kind, r, lk->order[i], col);
        if (rc != ERR_PROTO) {
            return rc;
        }
        /* No such index in this store: walk everything instead. */
        col->n = 0;
        break;
    }
    return store_find(c->store, lk->kind, &all, collect_visit, col);
}

static int
cmp_by_id(const void *a, const void *b)
{
    const char *ia = wire_object_id(SHOAL_KIND_NONE, *(const void *const *)a);
    const char *ib = wire_object_id(SHOAL_KIND_NONE, *(const void *const *)b);

    return strcmp(ia ? ia : "", ib ? ib : "");
}

/* Put the array of n objects into the reply's field for kind. */
static void
reply_set(struct shoal_list_reply *rep, enum shoal_kind kind, void *arr,
          size_t n)
{
    switch (kind) {
    case SHOAL_KIND_NODE:
        rep->nodes = arr;
        rep->n_nodes = n;
        break;
    case SHOAL_KIND_TASK:
        rep->tasks = arr;
        rep->n_tasks = n;
        break;
    case SHOAL_KIND_SERVICE:
        rep->services = arr;
        rep->n_services = n;
        break;
    case SHOAL_KIND_NETWORK:
        rep->networks = arr;
        rep->n_networks = n;
        break;
    case SHOAL_KIND_CLUSTER:
        rep->clusters = arr;
        rep->n_clusters = n;
        break;
    case SHOAL_KIND_SECRET:
        rep->secrets = arr;
        rep->n_secrets = n;
        break;
    case SHOAL_KIND_CONFIG:
        rep->configs = arr;
        rep->n_configs = n;
        break;
    default:
        ASSERT_UNREACHABLE();
    }
}

/* Copy the matching objects, sorted and without duplicates, into a new
 * reply. Returns 0 or ERR_NOMEM. */
static int
build_reply(struct control *c, const struct list_kind *lk,
            const struct shoal_list_request *r, struct collect *col,
            struct shoal_list_reply **out)
{
    const struct wire_type *t = wire_kind_type(lk->kind);
    size_t size = wire_type_size(t), n = 0;
    struct shoal_list_reply *rep;
    char *arr = NULL;

    if (col->n > 1) {
        qsort(col->v, col->n, sizeof *col->v, cmp_by_id);
    }
    rep = calloc(1, sizeof *rep);
    if (!rep) {
        return ERR_NOMEM;
    }
    if (col->n > 0) {
        arr = calloc(col->n, size);
        if (!arr) {
            free(rep);
            return ERR_NOMEM;
        }
    }
    reply_set(rep, lk->kind, arr, 0);
    for (size_t i = 0; i < col->n; i++) {
        void *dst = arr + n * size;

        if (i > 0 && cmp_by_id(&col->v[i - 1], &col->v[i]) == 0) {
            continue;
        }
        if (!lk->match(c, r, col->v[i])) {
            continue;
        }
        if (wire_copy(t, dst, col->v[i]) != 0) {
            wire_free(&wire_type_list_reply, rep);
            free(rep);
            return ERR_NOMEM;
        }
        control_redact(lk->kind, dst);
        if (lk->kind == SHOAL_KIND_NODE) {
            control_fill_manager_status(c, dst);
        }
        n++;
        reply_set(rep, lk->kind, arr, n);
    }
    if (n == 0) {
        free(arr);
        reply_set(rep, lk->kind, NULL, 0);
    }
    *out = rep;
    return 0;
}

int
control_list(struct control *c, uint16_t type,
             const struct shoal_list_request *r, struct control_out *out)
{
    const struct list_kind *lk = NULL;
    struct shoal_list_reply *rep = NULL;
    struct collect col = {0};
    unsigned extra;
    int rc;

    for (size_t i = 0; i < ARRAY_LEN(list_kinds); i++) {
        if (list_kinds[i].type == type) {
            lk = &list_kinds[i];
        }
    }
    ASSERT(lk != NULL);

    extra = filters_present(r) & ~lk->allowed;
    if (extra) {
        for (size_t i = 0; i < ARRAY_LEN(filter_names); i++) {
            if (extra & (1u << i)) {
                return control_fail(out, SHOAL_INVALID_ARGUMENT,
                                    "filter '%s' does not apply to %s",
                                    filter_names[i], wire_msg_info(type)->name);
            }
        }
    }

    rc = fetch(c, lk, r, &col);
    if (rc == 0) {
        rc = build_reply(c, lk, r, &col, &rep);
    }
    free(col.v);
    if (rc == ERR_NOMEM) {
        return ERR_NOMEM;
    }
    if (rc != 0) {
        return control_fail(out, SHOAL_INTERNAL, "store walk failed: %s",
                            err_str(rc));
    }
    out->code = SHOAL_OK;
    out->reply_type = &wire_type_list_reply;
    out->reply = rep;
    return 0;
}
