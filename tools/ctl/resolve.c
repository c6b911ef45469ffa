/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * resolve.c: from what a user typed to one object, the same for every
 * noun: an exact id, else an exact name, else a unique id prefix.
 *
 * The choice itself (ctl_resolve_pick) is a pure function over candidate
 * (id, name) pairs so that it is tested without a daemon; ctl_resolve
 * gathers the candidates with a get and two list requests. Never picks
 * one of several matches silently: that is the ambiguous exit (4).
 */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static const struct {
    uint16_t get, list, remove;
} kind_types[SHOAL_KIND_COUNT] = {
    [SHOAL_KIND_NODE] = {WIRE_MSG_GET_NODE, WIRE_MSG_LIST_NODES,
                         WIRE_MSG_REMOVE_NODE},
    [SHOAL_KIND_SERVICE] = {WIRE_MSG_GET_SERVICE, WIRE_MSG_LIST_SERVICES,
                            WIRE_MSG_REMOVE_SERVICE},
    [SHOAL_KIND_TASK] = {WIRE_MSG_GET_TASK, WIRE_MSG_LIST_TASKS,
                         WIRE_MSG_REMOVE_TASK},
    [SHOAL_KIND_NETWORK] = {WIRE_MSG_GET_NETWORK, WIRE_MSG_LIST_NETWORKS,
                            WIRE_MSG_REMOVE_NETWORK},
    [SHOAL_KIND_CLUSTER] = {WIRE_MSG_GET_CLUSTER, WIRE_MSG_LIST_CLUSTERS, 0},
    [SHOAL_KIND_SECRET] = {WIRE_MSG_GET_SECRET, WIRE_MSG_LIST_SECRETS,
                           WIRE_MSG_REMOVE_SECRET},
    [SHOAL_KIND_CONFIG] = {WIRE_MSG_GET_CONFIG, WIRE_MSG_LIST_CONFIGS,
                           WIRE_MSG_REMOVE_CONFIG},
};

uint16_t
ctl_kind_get_type(enum shoal_kind kind)
{
    ASSERT(kind > SHOAL_KIND_NONE && kind < SHOAL_KIND_COUNT);
    return kind_types[kind].get;
}

uint16_t
ctl_kind_list_type(enum shoal_kind kind)
{
    ASSERT(kind > SHOAL_KIND_NONE && kind < SHOAL_KIND_COUNT);
    return kind_types[kind].list;
}

uint16_t
ctl_kind_remove_type(enum shoal_kind kind)
{
    ASSERT(kind > SHOAL_KIND_NONE && kind < SHOAL_KIND_COUNT);
    return kind_types[kind].remove;
}

void *
ctl_list_items(enum shoal_kind kind, struct shoal_list_reply *r, size_t *n)
{
    switch (kind) {
    case SHOAL_KIND_NODE:
        *n = r->n_nodes;
        return r->nodes;
    case SHOAL_KIND_SERVICE:
        *n = r->n_services;
        return r->services;
    case SHOAL_KIND_TASK:
        *n = r->n_tasks;
        return r->tasks;
    case SHOAL_KIND_NETWORK:
        *n = r->n_networks;
        return r->networks;
    case SHOAL_KIND_CLUSTER:
        *n = r->n_clusters;
        return r->clusters;
    case SHOAL_KIND_SECRET:
        *n = r->n_secrets;
        return r->secrets;
    case SHOAL_KIND_CONFIG:
        *n = r->n_configs;
        return r->configs;
    default:
        ASSERT_UNREACHABLE();
    }
}

static const char *
or_empty(const char *s)
{
    return s ? s : "";
}

const char *
ctl_object_name(enum shoal_kind kind, const void *obj)
{
    switch (kind) {
    case SHOAL_KIND_NODE: {
        const struct shoal_node *n = obj;

        return n->spec.annotations.name ? n->spec.annotations.name
                                        : or_empty(n->description.hostname);
    }
    case SHOAL_KIND_SERVICE:
        return or_empty(((const struct shoal_service *)obj)
                            ->spec.annotations.name);
    case SHOAL_KIND_TASK:
        return or_empty(((const struct shoal_task *)obj)->annotations.name);
    case SHOAL_KIND_NETWORK:
        return or_empty(((const struct shoal_network *)obj)
                            ->spec.annotations.name);
    case SHOAL_KIND_CLUSTER:
        return or_empty(((const struct shoal_cluster *)obj)
                            ->spec.annotations.name);
    case SHOAL_KIND_SECRET:
        return or_empty(((const struct shoal_secret *)obj)
                            ->spec.annotations.name);
    case SHOAL_KIND_CONFIG:
        return or_empty(((const struct shoal_config *)obj)
                            ->spec.annotations.name);
    default:
        ASSERT_UNREACHABLE();
    }
}

static bool
same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool
is_prefix(const char *prefix, const char *s)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Mark the candidates that match arg at stage 0 (id), 1 (name) or 2
 * (id prefix); returns how many did. */
static size_t
pick_stage(const struct ctl_cand *c, size_t n, const char *arg, int stage,
           bool *matched, size_t *idx)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        bool m = stage == 0   ? same(c[i].id, arg)
                 : stage == 1 ? same(c[i].name, arg) || same(c[i].alt, arg)
                              : is_prefix(arg, c[i].id);

        if (matched) {
            matched[i] = m;
        }
        if (m) {
            *idx = i;
            count++;
        }
    }
    return count;
}

size_t
ctl_resolve_pick(const struct ctl_cand *c, size_t n, const char *arg,
                 bool *matched, size_t *idx)
{
    size_t count = 0;

    if (!arg || !*arg) {
        return 0; /* an empty prefix would match everything */
    }
    for (int stage = 0; stage < 3 && count == 0; stage++) {
        count = pick_stage(c, n, arg, stage, matched, idx);
    }
    return count;
}

void
ctl_ref_fini(struct ctl_ref *ref)
{
    free(ref->id);
    free(ref->name);
    memset(ref, 0, sizeof *ref);
}

static int
ref_set(struct ctl_ref *ref, const char *id, const char *name)
{
    ref->id = str_dup(id);
    ref->name = str_dup(name);
    if (!ref->id || !ref->name) {
        ctl_ref_fini(ref);
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    return 0;
}

/* Candidates gathered from list replies; strings borrow from them. */
struct gather {
    struct shoal_list_reply replies[2];
    struct ctl_cand *c;
    const void **objs; /* the object behind each candidate */
    size_t n;
};

static void
gather_fini(struct gather *g)
{
    wire_free(&wire_type_list_reply, &g->replies[0]);
    wire_free(&wire_type_list_reply, &g->replies[1]);
    free(g->c);
    free(g->objs);
}

/* Add the objects of reply r, skipping ids already present. */
static int
gather_add(struct gather *g, enum shoal_kind kind, struct shoal_list_reply *r)
{
    size_t n, stride = wire_type_size(wire_kind_type(kind));
    const uint8_t *items = ctl_list_items(kind, r, &n);

    struct ctl_cand *c = realloc(g->c, (g->n + n + 1) * sizeof *c);
    const void **objs;

    if (c) {
        g->c = c;
    }
    objs = c ? realloc(g->objs, (g->n + n + 1) * sizeof *objs) : NULL;
    if (!objs) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    g->objs = objs;
    for (size_t i = 0; i < n; i++) {
        const void *o = items + i * stride;
        const char *id = wire_object_id(kind, o);
        bool dup = false;

        for (size_t k = 0; k < g->n && !dup; k++) {
            dup = same(g->c[k].id, id);
        }
        if (dup || !id) {
            continue;
        }
        g->objs[g->n] = o;
        g->c[g->n++] = (struct ctl_cand){
            .id = id,
            .name = ctl_object_name(kind, o),
            .alt = kind == SHOAL_KIND_NODE
                       ? ((const struct shoal_node *)o)->description.hostname
                       : NULL,
        };
    }
    return 0;
}

/* List objects of kind whose name is arg, then those whose id starts
 * with arg. A refused filter counts as no match. */
static int
gather(struct ctl *ctl, enum shoal_kind kind, const char *arg,
       struct gather *g)
{
    char *v[1] = {(char *)arg};
    struct shoal_list_request by_name = {.names = {v, 1}};
    struct shoal_list_request by_prefix = {.id_prefixes = {v, 1}};
    const struct shoal_list_request *reqs[2] = {&by_name, &by_prefix};
    int rc;

    for (int i = 0; i < 2; i++) {
        rc = ctl_call(ctl, ctl_kind_list_type(kind), reqs[i],
                      &g->replies[i]);
        if (rc == -SHOAL_INVALID_ARGUMENT) {
            continue;
        }
        if (rc != 0) {
            return ctl_fail(ctl, rc);
        }
        rc = gather_add(g, kind, &g->replies[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int
ambiguous(enum shoal_kind kind, const char *arg, const struct gather *g,
          const bool *matched, size_t count)
{
    ctl_error(CTL_EXIT_AMBIGUOUS, "%s \"%s\" is ambiguous (%zu matches):",
              wire_kind_name(kind), arg, count);
    for (size_t i = 0; i < g->n; i++) {
        if (matched[i]) {
            fprintf(stderr, "  %s  %s\n", g->c[i].id, or_empty(g->c[i].name));
        }
    }
    return CTL_EXIT_AMBIGUOUS;
}

/* Resolve arg through lists; on success also copy the object into obj
 * when obj is not NULL. */
static int
resolve_listed(struct ctl *ctl, enum shoal_kind kind, const char *arg,
               struct ctl_ref *ref, void *obj)
{
    struct gather g = {0};
    bool *matched = NULL;
    size_t idx = 0, count;
    int rc = gather(ctl, kind, arg, &g);

    if (rc == 0) {
        matched = calloc(g.n + 1, sizeof *matched);
        rc = matched ? 0 : ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    if (rc != 0) {
        goto done;
    }
    count = ctl_resolve_pick(g.c, g.n, arg, matched, &idx);
    if (count == 0) {
        rc = ctl_error(CTL_EXIT_NOT_FOUND, "%s \"%s\" not found",
                       wire_kind_name(kind), arg);
    } else if (count > 1) {
        rc = ambiguous(kind, arg, &g, matched, count);
    } else {
        rc = ref_set(ref, g.c[idx].id, g.c[idx].name);
        if (rc == 0 && obj &&
            wire_copy(wire_kind_type(kind), obj, g.objs[idx]) != 0) {
            ctl_ref_fini(ref);
            rc = ctl_error(CTL_EXIT_ERROR, "out of memory");
        }
    }
done:
    free(matched);
    gather_fini(&g);
    return rc;
}

/* Resolve arg into ref and, when obj is not NULL, fetch it there. */
static int
resolve(struct ctl *ctl, enum shoal_kind kind, const char *arg,
        struct ctl_ref *ref, void *obj)
{
    const struct wire_type *t = wire_kind_type(kind);
    struct shoal_id_request req = {.id = (char *)arg};
    void *tmp;
    int rc;

    memset(ref, 0, sizeof *ref);
    if (!arg || !*arg) {
        return ctl_usage(NULL, "an empty %s name or id",
                         wire_kind_name(kind));
    }
    tmp = obj ? obj : calloc(1, wire_type_size(t));
    if (!tmp) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    rc = ctl_call(ctl, ctl_kind_get_type(kind), &req, tmp);
    if (rc == 0) {
        rc = ref_set(ref, wire_object_id(kind, tmp),
                     ctl_object_name(kind, tmp));
    } else if (rc == -SHOAL_NOT_FOUND || rc == -SHOAL_INVALID_ARGUMENT) {
        rc = resolve_listed(ctl, kind, arg, ref, obj);
    } else {
        rc = ctl_fail(ctl, rc);
    }
    if (!obj) {
        wire_free(t, tmp);
        free(tmp);
    } else if (rc != 0) {
        wire_free(t, obj);
    }
    return rc;
}

int
ctl_resolve(struct ctl *ctl, enum shoal_kind kind, const char *arg,
            struct ctl_ref *ref)
{
    return resolve(ctl, kind, arg, ref, NULL);
}

int
ctl_lookup(struct ctl *ctl, enum shoal_kind kind, const char *arg,
           void *obj)
{
    struct ctl_ref ref;
    int rc = resolve(ctl, kind, arg, &ref, obj);

    ctl_ref_fini(&ref);
    return rc;
}

int
ctl_get(struct ctl *ctl, enum shoal_kind kind, const char *id, void *obj)
{
    struct shoal_id_request req = {.id = (char *)id};
    int rc = ctl_call(ctl, ctl_kind_get_type(kind), &req, obj);

    return rc == 0 ? 0 : ctl_fail(ctl, rc);
}
