/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_store.c: the store's indexes, apply-time checks and history.
 *
 * Objects are built with small helpers and applied through real
 * proposals, the way committed entries reach the store.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/wire.h"
#include "store/store.h"

TestSuite(store_index, .timeout = 10);
TestSuite(store_apply, .timeout = 10);
TestSuite(store_history, .timeout = 10);
TestSuite(store_watch, .timeout = 10);

/* Helpers: objects. Every one is malloc'd and owned by the caller. */

static char *
dup_or_null(const char *s)
{
    char *d;

    if (!s) {
        return NULL;
    }
    d = str_dup(s);
    cr_assert_not_null(d);
    return d;
}

static void *
zalloc(size_t n)
{
    void *p = calloc(1, n);

    cr_assert_not_null(p);
    return p;
}

static struct shoal_service *
make_service(const char *id, const char *name)
{
    struct shoal_service *s = zalloc(sizeof(*s));

    s->id = dup_or_null(id);
    s->spec.annotations.name = dup_or_null(name);
    return s;
}

/* Give a task spec a container that references secrets and configs. */
static void
spec_add_refs(struct shoal_task_spec *ts, const char *net, const char *sec,
              const char *cfg)
{
    struct shoal_container_spec *c = ts->container;

    if (!c) {
        c = ts->container = zalloc(sizeof(*c));
        c->image = dup_or_null("nginx:latest");
    }
    if (net) {
        ts->networks = realloc(ts->networks,
                               (ts->n_networks + 1) * sizeof(*ts->networks));
        cr_assert_not_null(ts->networks);
        memset(&ts->networks[ts->n_networks], 0, sizeof(*ts->networks));
        ts->networks[ts->n_networks++].target = dup_or_null(net);
    }
    if (sec) {
        c->secrets = realloc(c->secrets, (c->n_secrets + 1) *
                                             sizeof(*c->secrets));
        cr_assert_not_null(c->secrets);
        memset(&c->secrets[c->n_secrets], 0, sizeof(*c->secrets));
        c->secrets[c->n_secrets++].secret_id = dup_or_null(sec);
    }
    if (cfg) {
        c->configs = realloc(c->configs, (c->n_configs + 1) *
                                             sizeof(*c->configs));
        cr_assert_not_null(c->configs);
        memset(&c->configs[c->n_configs], 0, sizeof(*c->configs));
        c->configs[c->n_configs++].config_id = dup_or_null(cfg);
    }
}

static struct shoal_task *
make_task(const char *id, const char *service_id, const char *service_name,
          uint64_t slot, const char *node_id)
{
    struct shoal_task *t = zalloc(sizeof(*t));

    t->id = dup_or_null(id);
    t->service_id = dup_or_null(service_id);
    t->service_annotations.name = dup_or_null(service_name);
    t->slot = slot;
    t->node_id = dup_or_null(node_id);
    t->desired_state = SHOAL_TASK_RUNNING;
    t->status.state = SHOAL_TASK_PENDING;
    return t;
}

static struct shoal_node *
make_node(const char *id, const char *hostname, uint32_t role,
          uint32_t membership)
{
    struct shoal_node *n = zalloc(sizeof(*n));

    n->id = dup_or_null(id);
    n->description.hostname = dup_or_null(hostname);
    n->role = role;
    n->spec.membership = membership;
    return n;
}

static struct shoal_network *
make_network(const char *id, const char *name)
{
    struct shoal_network *n = zalloc(sizeof(*n));

    n->id = dup_or_null(id);
    n->spec.annotations.name = dup_or_null(name);
    return n;
}

static struct shoal_secret *
make_secret(const char *id, const char *name)
{
    struct shoal_secret *s = zalloc(sizeof(*s));

    s->id = dup_or_null(id);
    s->spec.annotations.name = dup_or_null(name);
    return s;
}

static struct shoal_config *
make_config(const char *id, const char *name)
{
    struct shoal_config *c = zalloc(sizeof(*c));

    c->id = dup_or_null(id);
    c->spec.annotations.name = dup_or_null(name);
    return c;
}

static struct shoal_cluster *
make_cluster(const char *id, const char *name)
{
    struct shoal_cluster *c = zalloc(sizeof(*c));

    c->id = dup_or_null(id);
    c->spec.annotations.name = dup_or_null(name);
    return c;
}

/* Helpers: proposals and apply. */

/* Append an action holding obj (transferred) to p. */
static void
prop_add(struct shoal_proposal *p, enum shoal_action action,
         enum shoal_kind kind, void *obj)
{
    struct shoal_store_action *a;

    p->actions = realloc(p->actions, (p->n_actions + 1) * sizeof(*a));
    cr_assert_not_null(p->actions);
    a = &p->actions[p->n_actions++];
    memset(a, 0, sizeof(*a));
    a->action = action;
    switch (kind) {
    case SHOAL_KIND_NODE: a->object.node = obj; break;
    case SHOAL_KIND_SERVICE: a->object.service = obj; break;
    case SHOAL_KIND_TASK: a->object.task = obj; break;
    case SHOAL_KIND_NETWORK: a->object.network = obj; break;
    case SHOAL_KIND_CLUSTER: a->object.cluster = obj; break;
    case SHOAL_KIND_SECRET: a->object.secret = obj; break;
    case SHOAL_KIND_CONFIG: a->object.config = obj; break;
    default: cr_assert_fail("bad kind");
    }
}

/* Apply p (freed after) at index; the call itself must succeed. */
static struct store_verdict
apply_prop(struct store *s, uint64_t index, struct shoal_proposal *p)
{
    struct store_verdict v;

    cr_assert_eq(store_apply(s, index, p, &v), 0);
    cr_assert_eq(store_applied(s), index);
    wire_free(&wire_type_proposal, p);
    return v;
}

static struct store_verdict
apply1(struct store *s, uint64_t index, enum shoal_action action,
       enum shoal_kind kind, void *obj)
{
    struct shoal_proposal p = {0};

    prop_add(&p, action, kind, obj);
    return apply_prop(s, index, &p);
}

/* Apply one action that must be accepted. */
static void
apply_ok(struct store *s, uint64_t index, enum shoal_action action,
         enum shoal_kind kind, void *obj)
{
    struct store_verdict v = apply1(s, index, action, kind, obj);

    cr_assert_eq(v.code, SHOAL_OK, "refused: %d %s", v.code, v.message);
    cr_assert_str_empty(v.message);
}

static struct store *
new_store(size_t hist_entries, size_t hist_bytes)
{
    struct store_config cfg = {
        .history_entries = hist_entries,
        .history_bytes = hist_bytes,
    };
    struct store *s = NULL;

    cr_assert_eq(store_new(&s, &cfg), 0);
    return s;
}

/* A copy of the stored object with id, for an update based on it. */
static void *
stored_copy(struct store *s, enum shoal_kind kind, const char *id)
{
    const struct wire_type *t = wire_kind_type(kind);
    const void *cur = store_get(s, kind, id);
    void *obj = zalloc(wire_type_size(t));

    cr_assert_not_null(cur, "%s missing", id);
    cr_assert_eq(wire_copy(t, obj, cur), 0);
    return obj;
}

/* Helpers: finds, as a comma-separated list of ids in visit order. */

struct found {
    char ids[1024];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static int
collect_cb(const void *obj, void *arg)
{
    struct found *f = arg;
    /* Every kind's struct starts with its id. */
    const char *id = *(char *const *)obj;

    if (f->n > 0) {
        strcat(f->ids, ",");
    }
    strcat(f->ids, id);
    f->n++;
    return f->stop_after && f->n == f->stop_after ? 7 : 0;
}

static const char *
find_ids(struct store *s, enum shoal_kind kind, enum store_by by,
         const char *str, uint64_t num)
{
    static struct found f;
    struct store_query q = {.by = by, .str = str, .num = num};

    memset(&f, 0, sizeof(f));
    cr_assert_eq(store_find(s, kind, &q, collect_cb, &f), 0);
    return f.ids;
}

/* store_index */

/* Exact id finds one object; id prefixes are case-sensitive, in id order. */
Test(store_index, id_exact_and_prefix)
{
    struct store *s = new_store(0, 0);

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("ab1", "one"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("aa2", "two"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("aa1", "three"));

    cr_assert_not_null(store_get(s, SHOAL_KIND_SERVICE, "aa2"));
    cr_assert_null(store_get(s, SHOAL_KIND_SERVICE, "aa"));
    cr_assert_null(store_get(s, SHOAL_KIND_NETWORK, "aa2"));
    cr_assert_eq(store_count(s, SHOAL_KIND_SERVICE), 3);
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_ID_PREFIX,
                              "aa", 0), "aa1,aa2");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_ID_PREFIX,
                              "AA", 0), "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_ALL, NULL, 0),
                     "aa1,aa2,ab1");
    store_free(s);
}

/* Names match in any case, exactly or by prefix, ordered by name then id. */
Test(store_index, names_any_case_in_name_order)
{
    struct store *s = new_store(0, 0);
    const struct shoal_service *svc;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("z", "Web-B"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("y", "web-a"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("x", "db"));

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME,
                              "WEB-b", 0), "z");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME, "web",
                              0), "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME_PREFIX,
                              "WE", 0), "y,z");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME_PREFIX,
                              "", 0), "x,y,z");

    svc = store_get_by_name(s, SHOAL_KIND_SERVICE, "WEB-A");
    cr_assert_not_null(svc);
    cr_assert_str_eq(svc->id, "y");
    cr_assert_str_eq(svc->spec.annotations.name, "web-a");
    cr_assert_null(store_get_by_name(s, SHOAL_KIND_SERVICE, "web"));
    store_free(s);
}

/* Each kind with unique names is found by name; others return NULL. */
Test(store_index, get_by_name_per_kind)
{
    struct store *s = new_store(0, 0);

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK,
             make_network("n1", "Ingress"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("s1", "pw"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_CONFIG,
             make_config("c1", "conf"));
    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_CLUSTER,
             make_cluster("k1", "default"));
    apply_ok(s, 5, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE,
             make_node("m1", "host", 0, 0));

    cr_assert_not_null(store_get_by_name(s, SHOAL_KIND_NETWORK, "ingress"));
    cr_assert_not_null(store_get_by_name(s, SHOAL_KIND_SECRET, "PW"));
    cr_assert_not_null(store_get_by_name(s, SHOAL_KIND_CONFIG, "Conf"));
    cr_assert_not_null(store_get_by_name(s, SHOAL_KIND_CLUSTER, "DEFAULT"));
    cr_assert_null(store_get_by_name(s, SHOAL_KIND_NODE, "host"));
    cr_assert_null(store_get_by_name(s, SHOAL_KIND_SECRET, "conf"));
    store_free(s);
}

/* Node names are hostnames, not unique, and nodes index role and
 * membership. */
Test(store_index, nodes_by_hostname_role_membership)
{
    struct store *s = new_store(0, 0);

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE,
             make_node("n2", "Host1", SHOAL_ROLE_MANAGER,
                       SHOAL_MEMBERSHIP_ACCEPTED));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE,
             make_node("n1", "host1", SHOAL_ROLE_WORKER,
                       SHOAL_MEMBERSHIP_ACCEPTED));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE,
             make_node("n3", NULL, SHOAL_ROLE_WORKER,
                       SHOAL_MEMBERSHIP_PENDING));

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME, "HOST1", 0),
                     "n1,n2");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME_PREFIX, "h",
                              0), "n1,n2");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_ROLE, NULL,
                              SHOAL_ROLE_WORKER), "n1,n3");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_ROLE, NULL,
                              SHOAL_ROLE_MANAGER), "n2");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_MEMBERSHIP, NULL,
                              SHOAL_MEMBERSHIP_PENDING), "n3");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_MEMBERSHIP, NULL,
                              SHOAL_MEMBERSHIP_ACCEPTED), "n1,n2");
    store_free(s);
}

/* A task's name is its annotations name, else service.slot.id (node id
 * when the slot is 0); names are not unique and match in any case. */
Test(store_index, task_names)
{
    struct store *s = new_store(0, 0);
    struct shoal_task *named = make_task("t3", "s1", "web", 1, "n1");
    struct shoal_task *named2 = make_task("t4", "s1", "web", 2, "n1");

    named->annotations.name = dup_or_null("Same");
    named2->annotations.name = dup_or_null("same");
    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t1", "s1", "Web", 2, "n1"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t2", "s1", "web", 0, "node9"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK, named);
    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK, named2);

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NAME,
                              "WEB.2.T1", 0), "t1");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NAME,
                              "web.node9.t2", 0), "t2");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NAME, "SAME", 0),
                     "t3,t4");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NAME_PREFIX,
                              "web.", 0), "t1,t2");
    cr_assert_null(store_get_by_name(s, SHOAL_KIND_TASK, "same"));
    store_free(s);
}

/* Tasks are found by service, node (empty: unassigned), slot, desired
 * and observed state. */
Test(store_index, task_fields)
{
    struct store *s = new_store(0, 0);
    struct shoal_task *done = make_task("t4", "s2", "db", 1, "n2");

    done->desired_state = SHOAL_TASK_SHUTDOWN;
    done->status.state = SHOAL_TASK_COMPLETE;
    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t1", "s1", "web", 1, "n1"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t2", "s1", "web", 2, NULL));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t3", "s1", "web", 1, "n2"));
    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK, done);

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_SERVICE, "s1", 0),
                     "t1,t2,t3");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_SERVICE, "s", 0),
                     "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NODE, "n2", 0),
                     "t3,t4");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NODE, "", 0),
                     "t2");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_SLOT, "s1", 1),
                     "t1,t3");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_SLOT, "s2", 1),
                     "t4");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_SLOT, "s1", 3),
                     "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_DESIRED_STATE,
                              NULL, SHOAL_TASK_RUNNING), "t1,t2,t3");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_TASK_STATE, NULL,
                              SHOAL_TASK_COMPLETE), "t4");
    store_free(s);
}

/* Services and tasks are found by runtime and by the networks, secrets
 * and configs they reference; a repeated reference counts once. */
Test(store_index, references_and_runtime)
{
    struct store *s = new_store(0, 0);
    struct shoal_service *a = make_service("sa", "a");
    struct shoal_service *b = make_service("sb", "b");
    struct shoal_service *c = make_service("sc", "c");
    struct shoal_task *t = make_task("t1", "sa", "a", 1, "n1");

    spec_add_refs(&a->spec.task, "net1", "sec1", "cfg1");
    spec_add_refs(&a->spec.task, "net2", "sec1", NULL);
    spec_add_refs(&b->spec.task, "net1", NULL, "cfg2");
    spec_add_refs(&t->spec, "net1", "sec1", "cfg1");
    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE, a);
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE, b);
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE, c);
    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK, t);

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NETWORK,
                              "net1", 0), "sa,sb");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NETWORK,
                              "net2", 0), "sa");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_SECRET,
                              "sec1", 0), "sa");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_CONFIG,
                              "cfg2", 0), "sb");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_RUNTIME,
                              "container", 0), "sa,sb");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_NETWORK, "net1",
                              0), "t1");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_SECRET, "sec1",
                              0), "t1");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_CONFIG, "cfg1",
                              0), "t1");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_TASK, STORE_BY_RUNTIME,
                              "container", 0), "t1");
    store_free(s);
}

/* A selector that does not apply to the kind is refused with ERR_PROTO. */
Test(store_index, selector_not_for_kind)
{
    struct store *s = new_store(0, 0);
    struct found f = {0};
    struct store_query role = {.by = STORE_BY_ROLE};
    struct store_query svc = {.by = STORE_BY_SERVICE, .str = "x"};
    struct store_query slot = {.by = STORE_BY_SLOT, .str = "x"};
    struct store_query sec = {.by = STORE_BY_SECRET, .str = "x"};
    struct store_query bogus = {.by = (enum store_by)99};

    cr_assert_eq(store_find(s, SHOAL_KIND_SERVICE, &role, collect_cb, &f),
                 ERR_PROTO);
    cr_assert_eq(store_find(s, SHOAL_KIND_NODE, &svc, collect_cb, &f),
                 ERR_PROTO);
    cr_assert_eq(store_find(s, SHOAL_KIND_NETWORK, &slot, collect_cb, &f),
                 ERR_PROTO);
    cr_assert_eq(store_find(s, SHOAL_KIND_SECRET, &sec, collect_cb, &f),
                 ERR_PROTO);
    cr_assert_eq(store_find(s, SHOAL_KIND_TASK, &bogus, collect_cb, &f),
                 ERR_PROTO);
    cr_assert_eq(store_find(s, SHOAL_KIND_NONE, &sec, collect_cb, &f),
                 ERR_PROTO);
    cr_assert_eq(f.n, 0);
    store_free(s);
}

/* A callback's non-zero return stops the walk and is returned. */
Test(store_index, callback_stops_walk)
{
    struct store *s = new_store(0, 0);
    struct found f = {.stop_after = 2};
    struct store_query q = {.by = STORE_BY_ALL};

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("a", "a"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("b", "b"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("c", "c"));
    cr_assert_eq(store_find(s, SHOAL_KIND_SECRET, &q, collect_cb, &f), 7);
    cr_assert_str_eq(f.ids, "a,b");
    store_free(s);
}

/* An update moves the object between keys; a remove drops every key. */
Test(store_index, update_and_remove_reindex)
{
    struct store *s = new_store(0, 0);
    struct shoal_service *a = make_service("sa", "old");
    struct shoal_service *u;

    spec_add_refs(&a->spec.task, NULL, "sec1", NULL);
    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE, a);

    u = stored_copy(s, SHOAL_KIND_SERVICE, "sa");
    free(u->spec.annotations.name);
    u->spec.annotations.name = dup_or_null("New");
    free(u->spec.task.container->secrets[0].secret_id);
    u->spec.task.container->secrets[0].secret_id = dup_or_null("sec2");
    apply_ok(s, 2, SHOAL_ACTION_UPDATE, SHOAL_KIND_SERVICE, u);

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME, "old",
                              0), "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME, "new",
                              0), "sa");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_SECRET, "sec1",
                              0), "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_SECRET, "sec2",
                              0), "sa");

    apply_ok(s, 3, SHOAL_ACTION_REMOVE, SHOAL_KIND_SERVICE,
             make_service("sa", NULL));
    cr_assert_null(store_get(s, SHOAL_KIND_SERVICE, "sa"));
    cr_assert_eq(store_count(s, SHOAL_KIND_SERVICE), 0);
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_SECRET, "sec2",
                              0), "");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_ALL, NULL, 0),
                     "");
    store_free(s);
}

/* store_load takes the struct's contents, indexes it, and refuses an id
 * that is present. */
Test(store_index, load_transfers_and_indexes)
{
    struct store *s = new_store(0, 0);
    struct shoal_service *a = make_service("sa", "Web");
    struct shoal_service *dup = make_service("sa", "other");
    const struct shoal_service *got;

    a->meta.version = 42;
    cr_assert_eq(store_load(s, SHOAL_KIND_SERVICE, a), 0);
    cr_assert_null(a->id);
    cr_assert_null(a->spec.annotations.name);
    free(a);

    got = store_get(s, SHOAL_KIND_SERVICE, "sa");
    cr_assert_not_null(got);
    cr_assert_eq(got->meta.version, 42);
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME, "web",
                              0), "sa");

    cr_assert_eq(store_load(s, SHOAL_KIND_SERVICE, dup), ERR_EXISTS);
    cr_assert_str_eq(dup->spec.annotations.name, "other");
    wire_free(&wire_type_service, dup);
    free(dup);

    store_set_applied(s, 42);
    cr_assert_eq(store_applied(s), 42);
    store_free(s);
}

/* Many objects inserted out of order come back sorted by key, then id. */
Test(store_index, stable_order_many)
{
    struct store *s = new_store(0, 0);
    struct store_query q = {.by = STORE_BY_SERVICE, .str = "s1"};
    struct found f = {0};
    char id[16];
    char prev[16] = "";

    for (unsigned i = 0; i < 60; i++) {
        unsigned n = (i * 37) % 60; /* a permutation of 0..59 */

        snprintf(id, sizeof(id), "t%02u", n);
        apply_ok(s, 1 + i, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
                 make_task(id, n % 2 ? "s1" : "s2", "web", n, "n1"));
    }
    cr_assert_eq(store_find(s, SHOAL_KIND_TASK, &q, collect_cb, &f), 0);
    cr_assert_eq(f.n, 30);
    for (char *tok = strtok(f.ids, ","); tok; tok = strtok(NULL, ",")) {
        cr_assert_gt(strcmp(tok, prev), 0, "%s after %s", tok, prev);
        snprintf(prev, sizeof(prev), "%s", tok);
    }
    store_free(s);
}

/* Names longer than any search buffer are still found exactly: a loaded
 * object is not held to the schema's limits. */
Test(store_index, very_long_names)
{
    struct store *s = new_store(0, 0);
    char a[701];
    char b[701];
    struct shoal_node *na;
    struct shoal_node *nb;

    memset(a, 'h', 700);
    a[700] = '\0';
    memcpy(b, a, sizeof(a));
    b[650] = 'X';
    na = make_node("na", a, 0, 0);
    nb = make_node("nb", b, 0, 0);
    cr_assert_eq(store_load(s, SHOAL_KIND_NODE, na), 0);
    cr_assert_eq(store_load(s, SHOAL_KIND_NODE, nb), 0);
    free(na);
    free(nb);

    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME, a, 0),
                     "na");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME, b, 0),
                     "nb");
    b[650] = 'x';
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME, b, 0),
                     "nb");
    b[651] = '\0';
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME_PREFIX, b,
                              0), "nb");
    b[600] = '\0';
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME_PREFIX, b,
                              0), "na,nb");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_NODE, STORE_BY_NAME, b, 0), "");
    store_free(s);
}

/* store_apply */

/* The version becomes the entry's index; created_at survives updates
 * while the other fields are the proposal's. */
Test(store_apply, version_is_index_created_at_kept)
{
    struct store *s = new_store(0, 0);
    struct shoal_service *a = make_service("sa", "web");
    const struct shoal_service *got;
    struct shoal_service *u;

    a->meta.created_at = 100;
    a->meta.updated_at = 100;
    apply_ok(s, 5, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE, a);
    got = store_get(s, SHOAL_KIND_SERVICE, "sa");
    cr_assert_eq(got->meta.version, 5);
    cr_assert_eq(got->meta.created_at, 100);

    u = stored_copy(s, SHOAL_KIND_SERVICE, "sa");
    u->meta.created_at = 999;
    u->meta.updated_at = 200;
    u->spec_version = 5;
    apply_ok(s, 8, SHOAL_ACTION_UPDATE, SHOAL_KIND_SERVICE, u);
    got = store_get(s, SHOAL_KIND_SERVICE, "sa");
    cr_assert_eq(got->meta.version, 8);
    cr_assert_eq(got->meta.created_at, 100);
    cr_assert_eq(got->meta.updated_at, 200);
    cr_assert_eq(got->spec_version, 5);
    store_free(s);
}

/* A create of an id that exists is refused as already existing. */
Test(store_apply, create_existing_id)
{
    struct store *s = new_store(0, 0);
    struct store_verdict v;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK,
             make_network("n1", "a"));
    v = apply1(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK,
               make_network("n1", "b"));
    cr_assert_eq(v.code, SHOAL_ALREADY_EXISTS);
    cr_assert(strstr(v.message, "n1") != NULL, "%s", v.message);
    cr_assert_eq(store_applied(s), 2);
    cr_assert_null(store_get_by_name(s, SHOAL_KIND_NETWORK, "b"));
    store_free(s);
}

/* A name taken in another case is refused with the message clients
 * match on; kinds with non-unique names accept it. */
Test(store_apply, name_conflict_any_case)
{
    struct store *s = new_store(0, 0);
    struct store_verdict v;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("s1", "web"));
    v = apply1(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
               make_service("s2", "WEB"));
    cr_assert_eq(v.code, SHOAL_ALREADY_EXISTS);
    cr_assert_str_eq(v.message, "name conflicts with an existing object: "
                                "service WEB already exists");
    cr_assert_null(store_get(s, SHOAL_KIND_SERVICE, "s2"));

    /* Another kind may use the name; nodes may share one. */
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("x1", "web"));
    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE,
             make_node("m1", "h", 0, 0));
    apply_ok(s, 5, SHOAL_ACTION_CREATE, SHOAL_KIND_NODE,
             make_node("m2", "H", 0, 0));
    store_free(s);
}

/* An update to a name another object has is refused; renaming itself in
 * another case is fine. */
Test(store_apply, update_name_uniqueness_excludes_self)
{
    struct store *s = new_store(0, 0);
    struct shoal_config *u;
    struct store_verdict v;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_CONFIG,
             make_config("c1", "one"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_CONFIG,
             make_config("c2", "two"));

    u = stored_copy(s, SHOAL_KIND_CONFIG, "c2");
    free(u->spec.annotations.name);
    u->spec.annotations.name = dup_or_null("One");
    v = apply1(s, 3, SHOAL_ACTION_UPDATE, SHOAL_KIND_CONFIG, u);
    cr_assert_eq(v.code, SHOAL_ALREADY_EXISTS);
    cr_assert(strstr(v.message, "name conflicts with an existing object")
              == v.message, "%s", v.message);

    u = stored_copy(s, SHOAL_KIND_CONFIG, "c2");
    free(u->spec.annotations.name);
    u->spec.annotations.name = dup_or_null("TWO");
    apply_ok(s, 4, SHOAL_ACTION_UPDATE, SHOAL_KIND_CONFIG, u);
    cr_assert_not_null(store_get_by_name(s, SHOAL_KIND_CONFIG, "two"));
    store_free(s);
}

/* Update and remove of a missing id are refused as not found. */
Test(store_apply, missing_id)
{
    struct store *s = new_store(0, 0);
    struct store_verdict v;

    v = apply1(s, 1, SHOAL_ACTION_UPDATE, SHOAL_KIND_SERVICE,
               make_service("nope", "x"));
    cr_assert_eq(v.code, SHOAL_NOT_FOUND);
    v = apply1(s, 2, SHOAL_ACTION_REMOVE, SHOAL_KIND_TASK,
               make_task("nope", NULL, NULL, 0, NULL));
    cr_assert_eq(v.code, SHOAL_NOT_FOUND);
    cr_assert(strstr(v.message, "nope") != NULL);
    store_free(s);
}

/* A stale version is a conflict that names the current version; a remove
 * checks the version only when one is given. */
Test(store_apply, stale_version_conflict)
{
    struct store *s = new_store(0, 0);
    struct shoal_secret *u;
    struct shoal_secret *r;
    struct store_verdict v;

    apply_ok(s, 5, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("x", "pw"));
    u = stored_copy(s, SHOAL_KIND_SECRET, "x");
    u->meta.version = 4;
    v = apply1(s, 6, SHOAL_ACTION_UPDATE, SHOAL_KIND_SECRET, u);
    cr_assert_eq(v.code, SHOAL_CONFLICT);
    cr_assert_eq(v.current_version, 5);

    r = make_secret("x", NULL);
    r->meta.version = 3;
    v = apply1(s, 7, SHOAL_ACTION_REMOVE, SHOAL_KIND_SECRET, r);
    cr_assert_eq(v.code, SHOAL_CONFLICT);
    cr_assert_eq(v.current_version, 5);
    cr_assert_not_null(store_get(s, SHOAL_KIND_SECRET, "x"));

    apply_ok(s, 8, SHOAL_ACTION_REMOVE, SHOAL_KIND_SECRET,
             make_secret("x", NULL));
    cr_assert_null(store_get(s, SHOAL_KIND_SECRET, "x"));
    store_free(s);
}

/* When the last action fails, the earlier ones of the entry are undone:
 * creates, updates and removes alike, and no history is recorded. */
Test(store_apply, all_or_nothing)
{
    struct store *s = new_store(0, 0);
    struct shoal_proposal p = {0};
    const struct store_hist_entry *he;
    const struct shoal_service *b;
    struct shoal_service *u;
    struct store_verdict v;
    uint64_t oldest;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("sb", "bee"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("sc", "sea"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("sd", "dee"));

    u = stored_copy(s, SHOAL_KIND_SERVICE, "sb");
    free(u->spec.annotations.name);
    u->spec.annotations.name = dup_or_null("bee2");
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("sa", "ay"));
    prop_add(&p, SHOAL_ACTION_UPDATE, SHOAL_KIND_SERVICE, u);
    prop_add(&p, SHOAL_ACTION_REMOVE, SHOAL_KIND_SERVICE,
             make_service("sc", NULL));
    /* Takes the name the removal just freed: fine inside the entry. */
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("se", "SEA"));
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("sd", "dup-id"));
    v = apply_prop(s, 4, &p);

    cr_assert_eq(v.code, SHOAL_ALREADY_EXISTS);
    cr_assert_eq(store_count(s, SHOAL_KIND_SERVICE), 3);
    cr_assert_null(store_get(s, SHOAL_KIND_SERVICE, "sa"));
    cr_assert_null(store_get(s, SHOAL_KIND_SERVICE, "se"));
    cr_assert_not_null(store_get(s, SHOAL_KIND_SERVICE, "sc"));
    b = store_get(s, SHOAL_KIND_SERVICE, "sb");
    cr_assert_str_eq(b->spec.annotations.name, "bee");
    cr_assert_eq(b->meta.version, 1);
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME_PREFIX,
                              "", 0), "sb,sd,sc");
    cr_assert_str_eq(find_ids(s, SHOAL_KIND_SERVICE, STORE_BY_NAME, "sea",
                              0), "sc");

    cr_assert_eq(store_history_next(s, 3, &he, &oldest), ERR_AGAIN);
    cr_assert_eq(store_applied(s), 4);
    store_free(s);
}

/* Actions of one entry see the earlier ones: a create then an update of
 * the same object in one entry both take effect. */
Test(store_apply, later_actions_see_earlier)
{
    struct store *s = new_store(0, 0);
    struct shoal_proposal p = {0};
    struct shoal_network *u = make_network("n1", "renamed");
    struct store_verdict v;

    u->meta.version = 7; /* the version the create gives it */
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK,
             make_network("n1", "net"));
    prop_add(&p, SHOAL_ACTION_UPDATE, SHOAL_KIND_NETWORK, u);
    v = apply_prop(s, 7, &p);
    cr_assert_eq(v.code, SHOAL_OK, "%s", v.message);
    cr_assert_not_null(store_get_by_name(s, SHOAL_KIND_NETWORK, "renamed"));
    cr_assert_null(store_get_by_name(s, SHOAL_KIND_NETWORK, "net"));
    store_free(s);
}

/* An action without exactly one object, or with an unknown action or no
 * id, is refused as an invalid argument. */
Test(store_apply, malformed_actions)
{
    struct store *s = new_store(0, 0);
    struct shoal_proposal p = {0};
    struct store_verdict v;

    p.actions = zalloc(sizeof(*p.actions));
    p.n_actions = 1;
    p.actions[0].action = SHOAL_ACTION_CREATE;
    v = apply_prop(s, 1, &p);
    cr_assert_eq(v.code, SHOAL_INVALID_ARGUMENT);

    v = apply1(s, 2, (enum shoal_action)3, SHOAL_KIND_SECRET,
               make_secret("x", "y"));
    cr_assert_eq(v.code, SHOAL_INVALID_ARGUMENT);

    v = apply1(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
               make_secret(NULL, "y"));
    cr_assert_eq(v.code, SHOAL_INVALID_ARGUMENT);
    cr_assert_eq(store_count(s, SHOAL_KIND_SECRET), 0);

    memset(&p, 0, sizeof(p));
    v = apply_prop(s, 4, &p);
    cr_assert_eq(v.code, SHOAL_OK);
    store_free(s);
}

/* An object over the schema's limits is refused, not stored. */
Test(store_apply, over_schema_limit)
{
    struct store *s = new_store(0, 0);
    char name[300];
    struct store_verdict v;

    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    v = apply1(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
               make_service("s1", name));
    cr_assert_eq(v.code, SHOAL_INVALID_ARGUMENT);
    cr_assert_eq(store_count(s, SHOAL_KIND_SERVICE), 0);
    store_free(s);
}

/* The check callback: refuses a task whose service does not exist, and
 * sees a service created earlier in the same entry. */
static int
check_task_service(void *arg, const struct store *s, enum shoal_action action,
                   enum shoal_kind kind, const void *obj, const void *old,
                   struct store_verdict *v)
{
    const struct shoal_task *t = obj;
    int *calls = arg;

    (*calls)++;
    if (kind != SHOAL_KIND_TASK || action == SHOAL_ACTION_REMOVE) {
        return SHOAL_OK;
    }
    cr_assert(action == SHOAL_ACTION_CREATE ? old == NULL : old != NULL);
    if (!store_get(s, SHOAL_KIND_SERVICE, t->service_id)) {
        snprintf(v->message, sizeof(v->message), "service %s not found",
                 t->service_id);
        return SHOAL_FAILED_PRECONDITION;
    }
    return SHOAL_OK;
}

/* A refusing check stops the entry with its code and message, and undoes
 * the entry's earlier actions. */
Test(store_apply, check_callback_refuses)
{
    struct store_config cfg = {.check = check_task_service};
    struct shoal_proposal p = {0};
    struct store *s = NULL;
    struct store_verdict v;
    int calls = 0;

    cfg.check_arg = &calls;
    cr_assert_eq(store_new(&s, &cfg), 0);

    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("s1", "web"));
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t1", "s2", "web", 1, "n1"));
    v = apply_prop(s, 1, &p);
    cr_assert_eq(v.code, SHOAL_FAILED_PRECONDITION);
    cr_assert_str_eq(v.message, "service s2 not found");
    cr_assert_null(store_get(s, SHOAL_KIND_SERVICE, "s1"));
    cr_assert_eq(calls, 2);

    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("s1", "web"));
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
             make_task("t1", "s1", "web", 1, "n1"));
    v = apply_prop(s, 2, &p);
    cr_assert_eq(v.code, SHOAL_OK, "%s", v.message);
    cr_assert_not_null(store_get(s, SHOAL_KIND_TASK, "t1"));

    /* Generic checks come first: the callback never sees a duplicate. */
    calls = 0;
    v = apply1(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_TASK,
               make_task("t1", "s1", "web", 1, "n1"));
    cr_assert_eq(v.code, SHOAL_ALREADY_EXISTS);
    cr_assert_eq(calls, 0);
    store_free(s);
}

/* store_history */

static void
check_entry(struct store *s, uint64_t after, uint64_t version)
{
    const struct store_hist_entry *he = NULL;
    uint64_t oldest = 0;

    cr_assert_eq(store_history_next(s, after, &he, &oldest), 0,
                 "after %llu", (unsigned long long)after);
    cr_assert_eq(he->version, version, "after %llu: got %llu",
                 (unsigned long long)after, (unsigned long long)he->version);
}

static void
check_gone(struct store *s, uint64_t after, uint64_t oldest_want)
{
    const struct store_hist_entry *he = NULL;
    uint64_t oldest = 0;

    cr_assert_eq(store_history_next(s, after, &he, &oldest), ERR_NOTFOUND,
                 "after %llu", (unsigned long long)after);
    cr_assert_eq(oldest, oldest_want, "after %llu: oldest %llu",
                 (unsigned long long)after, (unsigned long long)oldest);
}

/* Entries come in order with their events: the new object, the old one on
 * update, the removed one on remove; the objects outlive the table's. */
Test(store_history, order_and_events)
{
    struct store *s = new_store(0, 0);
    const struct store_hist_entry *he;
    const struct shoal_service *obj;
    const struct shoal_service *old;
    struct shoal_service *u;
    uint64_t oldest;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE,
             make_service("s1", "web"));
    u = stored_copy(s, SHOAL_KIND_SERVICE, "s1");
    free(u->spec.annotations.name);
    u->spec.annotations.name = dup_or_null("web2");
    apply_ok(s, 2, SHOAL_ACTION_UPDATE, SHOAL_KIND_SERVICE, u);
    apply_ok(s, 3, SHOAL_ACTION_REMOVE, SHOAL_KIND_SERVICE,
             make_service("s1", NULL));

    cr_assert_eq(store_history_next(s, 0, &he, &oldest), 0);
    cr_assert_eq(he->version, 1);
    cr_assert_eq(he->n_events, 1);
    cr_assert_eq(he->events[0].action, SHOAL_ACTION_CREATE);
    cr_assert_eq(he->events[0].kind, SHOAL_KIND_SERVICE);
    cr_assert_null(he->events[0].old);

    cr_assert_eq(store_history_next(s, 1, &he, &oldest), 0);
    cr_assert_eq(he->version, 2);
    obj = he->events[0].obj;
    old = he->events[0].old;
    cr_assert_eq(he->events[0].action, SHOAL_ACTION_UPDATE);
    cr_assert_str_eq(obj->spec.annotations.name, "web2");
    cr_assert_eq(obj->meta.version, 2);
    cr_assert_str_eq(old->spec.annotations.name, "web");
    cr_assert_eq(old->meta.version, 1);

    cr_assert_eq(store_history_next(s, 2, &he, &oldest), 0);
    cr_assert_eq(he->version, 3);
    obj = he->events[0].obj;
    cr_assert_eq(he->events[0].action, SHOAL_ACTION_REMOVE);
    cr_assert_str_eq(obj->spec.annotations.name, "web2");
    cr_assert_null(he->events[0].old);

    cr_assert_eq(store_history_next(s, 3, &he, &oldest), ERR_AGAIN);
    cr_assert_eq(store_history_next(s, 99, &he, &oldest), ERR_AGAIN);
    store_free(s);
}

/* One entry with several actions is one history entry, in action order. */
Test(store_history, multi_action_entry)
{
    struct store *s = new_store(0, 0);
    struct shoal_proposal p = {0};
    const struct store_hist_entry *he;
    uint64_t oldest;

    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK,
             make_network("n1", "a"));
    prop_add(&p, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("x1", "b"));
    cr_assert_eq(apply_prop(s, 10, &p).code, SHOAL_OK);
    cr_assert_eq(store_history_next(s, 0, &he, &oldest), 0);
    cr_assert_eq(he->version, 10);
    cr_assert_eq(he->n_events, 2);
    cr_assert_eq(he->events[0].kind, SHOAL_KIND_NETWORK);
    cr_assert_eq(he->events[1].kind, SHOAL_KIND_SECRET);
    store_free(s);
}

/* Refused entries leave no history; resuming across them is fine. */
Test(store_history, refused_entries_skipped)
{
    struct store *s = new_store(0, 0);

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("a", "a"));
    cr_assert_eq(apply1(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
                        make_secret("a", "a")).code, SHOAL_ALREADY_EXISTS);
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("b", "b"));
    check_entry(s, 0, 1);
    check_entry(s, 1, 3);
    check_entry(s, 2, 3);
    store_free(s);
}

/* The history keeps at most history_entries entries; resuming after the
 * last dropped version is fine, before it is refused with that version. */
Test(store_history, bounded_by_entries)
{
    struct store *s = new_store(2, 0);
    char id[8];

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("a", "a"));
    check_entry(s, 0, 1); /* below the first entry, nothing dropped yet */
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("b", "b"));
    cr_assert_eq(apply1(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
                        make_secret("b", "b")).code, SHOAL_ALREADY_EXISTS);
    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("c", "c"));

    /* Kept: 2 and 4; dropped: 1. */
    check_gone(s, 0, 1);
    check_entry(s, 1, 2);
    check_entry(s, 2, 4);

    apply_ok(s, 5, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("d", "d"));
    /* Kept: 4 and 5; dropped up to 2; 3 changed nothing. */
    check_gone(s, 1, 2);
    check_entry(s, 2, 4);
    check_entry(s, 3, 4);
    check_entry(s, 4, 5);

    /* Many more: the ring wraps and still answers in order. */
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "z%02d", i);
        apply_ok(s, 6 + (uint64_t)i, SHOAL_ACTION_CREATE, SHOAL_KIND_CONFIG,
                 make_config(id, id));
    }
    check_gone(s, 5, 43);
    check_entry(s, 43, 44);
    check_entry(s, 44, 45);
    store_free(s);
}

/* A secret of n payload bytes, so its encoded size is known roughly. */
static struct shoal_secret *
make_big_secret(const char *id, size_t n)
{
    struct shoal_secret *x = make_secret(id, id);
    char *data = zalloc(n);

    memset(data, 'x', n);
    cr_assert_eq(wire_bytes_set(&x->spec.data, data, n), 0);
    free(data);
    return x;
}

/* The history keeps its encoded bytes under history_bytes, dropping the
 * oldest entries, and always keeps the newest one. */
Test(store_history, bounded_by_bytes)
{
    struct store *s = new_store(0, 4096);
    const struct store_hist_entry *he;
    uint64_t oldest;

    apply_ok(s, 1, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("a", "a"));
    apply_ok(s, 2, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("b", "b"));
    apply_ok(s, 3, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_big_secret("c", 3000));
    check_entry(s, 0, 1); /* all three fit */

    apply_ok(s, 4, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_big_secret("d", 3000));
    check_gone(s, 2, 3);
    check_entry(s, 3, 4);

    /* Alone over the bound, the newest entry is still kept. */
    apply_ok(s, 5, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_big_secret("e", 8000));
    check_gone(s, 3, 4);
    check_entry(s, 4, 5);
    cr_assert_eq(store_history_next(s, 5, &he, &oldest), ERR_AGAIN);

    /* The next entry, small as it is, pushes the big one out. */
    apply_ok(s, 6, SHOAL_ACTION_CREATE, SHOAL_KIND_SECRET,
             make_secret("f", "f"));
    check_gone(s, 4, 5);
    check_entry(s, 5, 6);
    store_free(s);
}

/* A store loaded at an index has no history before it: resuming below
 * it is refused with that index, at it waits for the next entry. */
Test(store_history, loaded_store_floor)
{
    struct store *s = new_store(0, 0);
    const struct store_hist_entry *he;
    uint64_t oldest = 0;

    cr_assert_eq(store_history_next(s, 0, &he, &oldest), ERR_AGAIN);
    store_set_applied(s, 100);
    check_gone(s, 50, 100);
    cr_assert_eq(store_history_next(s, 100, &he, &oldest), ERR_AGAIN);
    apply_ok(s, 101, SHOAL_ACTION_CREATE, SHOAL_KIND_CONFIG,
             make_config("c", "c"));
    check_entry(s, 100, 101);
    check_gone(s, 99, 100);
    store_free(s);
}

/* store_watch: event matching. */

static struct shoal_task *
watch_task(void)
{
    struct shoal_task *t = make_task("taskid1", "svc1", "web", 1, "node1");

    t->annotations.name = dup_or_null("Web.1");
    return t;
}

/* Kind and action mask select; a zero mask and empty fields match all. */
Test(store_watch, kind_and_actions)
{
    struct shoal_service *svc = make_service("abc", "web");
    struct store_event ev = {
        .action = SHOAL_ACTION_UPDATE, .kind = SHOAL_KIND_SERVICE,
        .obj = svc,
    };
    struct shoal_watch_selector sel = {0};

    cr_assert(store_event_matches(&ev, &sel));
    sel.kind = SHOAL_KIND_SERVICE;
    cr_assert(store_event_matches(&ev, &sel));
    sel.kind = SHOAL_KIND_TASK;
    cr_assert_not(store_event_matches(&ev, &sel));
    sel.kind = SHOAL_KIND_NONE;
    sel.actions = SHOAL_ACTION_CREATE | SHOAL_ACTION_REMOVE;
    cr_assert_not(store_event_matches(&ev, &sel));
    sel.actions |= SHOAL_ACTION_UPDATE;
    cr_assert(store_event_matches(&ev, &sel));
    wire_free(&wire_type_service, svc);
    free(svc);
}

/* Id, id prefix, name and name prefix compare exactly, case included. */
Test(store_watch, id_and_name)
{
    struct shoal_service *svc = make_service("abc", "Web");
    struct store_event ev = {
        .action = SHOAL_ACTION_CREATE, .kind = SHOAL_KIND_SERVICE,
        .obj = svc,
    };
    struct shoal_watch_selector sel = {0};

    sel.id = "abc";
    cr_assert(store_event_matches(&ev, &sel));
    sel.id = "ab";
    cr_assert_not(store_event_matches(&ev, &sel));
    sel.id = NULL;
    sel.id_prefix = "ab";
    cr_assert(store_event_matches(&ev, &sel));
    sel.id_prefix = "b";
    cr_assert_not(store_event_matches(&ev, &sel));
    sel.id_prefix = "";
    sel.name = "Web";
    cr_assert(store_event_matches(&ev, &sel));
    sel.name = "web";
    cr_assert_not(store_event_matches(&ev, &sel));
    sel.name = NULL;
    sel.name_prefix = "We";
    cr_assert(store_event_matches(&ev, &sel));
    sel.name_prefix = "we";
    cr_assert_not(store_event_matches(&ev, &sel));
    wire_free(&wire_type_service, svc);
    free(svc);
}

/* Service and node ids filter tasks and are ignored on other kinds; a
 * node's name is its hostname. */
Test(store_watch, task_filters_and_node_name)
{
    struct shoal_task *t = watch_task();
    struct shoal_node *n = make_node("node1", "Host-A", 0, 0);
    struct store_event tev = {
        .action = SHOAL_ACTION_CREATE, .kind = SHOAL_KIND_TASK, .obj = t,
    };
    struct store_event nev = {
        .action = SHOAL_ACTION_REMOVE, .kind = SHOAL_KIND_NODE, .obj = n,
    };
    struct shoal_watch_selector sel = {0};

    sel.service_id = "svc1";
    cr_assert(store_event_matches(&tev, &sel));
    cr_assert(store_event_matches(&nev, &sel));
    sel.service_id = "svc2";
    cr_assert_not(store_event_matches(&tev, &sel));
    cr_assert(store_event_matches(&nev, &sel));
    sel.service_id = NULL;
    sel.node_id = "node1";
    cr_assert(store_event_matches(&tev, &sel));
    sel.node_id = "node2";
    cr_assert_not(store_event_matches(&tev, &sel));
    sel.node_id = NULL;
    sel.name = "Web.1";
    cr_assert(store_event_matches(&tev, &sel));
    sel.name = "Host-A";
    cr_assert(store_event_matches(&nev, &sel));
    cr_assert_not(store_event_matches(&tev, &sel));

    wire_free(&wire_type_task, t);
    free(t);
    wire_free(&wire_type_node, n);
    free(n);
}
