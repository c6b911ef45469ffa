/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * cmd_service.c: `shoalctl service create|ls|inspect|update|rollback|
 * scale|rm`.
 *
 * create builds a service spec from flags; update reads the service,
 * applies the same kind of flags to a copy of its spec, and sends it with
 * the version it read, so that a concurrent change makes the daemon
 * answer with a conflict instead of being overwritten. Secrets, configs
 * and networks named on the command line are resolved to ids here.
 */
#include "ctl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Append a zeroed element to a list field; NULL on OOM. */
#define LIST_PUSH(arr, n)                                                  \
    list_push((void **)&(arr), &(n), sizeof *(arr))

static void *
list_push(void **arr, size_t *n, size_t size)
{
    uint8_t *p = realloc(*arr, (*n + 1) * size);

    if (!p) {
        return NULL;
    }
    *arr = p;
    memset(p + *n * size, 0, size);
    return p + (*n)++ * size;
}

/* Remove element i of a list of elements of type t, freeing it. */
static void
list_del(const struct wire_type *t, void *arr, size_t *n, size_t i)
{
    size_t size = wire_type_size(t);
    uint8_t *p = arr;

    wire_free(t, p + i * size);
    memmove(p + i * size, p + (i + 1) * size, (*n - i - 1) * size);
    (*n)--;
}

static void
strs_del(struct shoal_strs *s, size_t i)
{
    free(s->v[i]);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

static int
oom(void)
{
    return ctl_error(CTL_EXIT_ERROR, "out of memory");
}

static struct shoal_container_spec *
container(struct shoal_service_spec *s)
{
    if (!s->task.container) {
        s->task.container = calloc(1, sizeof *s->task.container);
    }
    return s->task.container;
}

/* Environment: KEY=VALUE strings; a new value of KEY replaces the old. */
static void
env_del(struct shoal_strs *env, const char *key, size_t klen)
{
    for (size_t i = env->n; i-- > 0;) {
        if (strncmp(env->v[i], key, klen) == 0 &&
            (env->v[i][klen] == '=' || env->v[i][klen] == '\0')) {
            strs_del(env, i);
        }
    }
}

static int
apply_env(const struct ctl_args *a, const char *add, const char *rm,
          struct shoal_service_spec *s)
{
    struct shoal_container_spec *c = container(s);
    const char *v, *value;
    size_t it = 0, klen;

    if (!c) {
        return oom();
    }
    while (rm && (v = ctl_arg_next(a, rm, &it))) {
        env_del(&c->env, v, strlen(v));
    }
    it = 0;
    while ((v = ctl_arg_next(a, add, &it))) {
        if (ctl_parse_kv(v, true, &klen, &value) != 0) {
            return ctl_usage(a->cmd, "invalid --%s \"%s\": expected "
                                     "KEY=VALUE", add, v);
        }
        env_del(&c->env, v, klen);
        if (wire_strs_push(&c->env, v) != 0) {
            return oom();
        }
    }
    return 0;
}

/* One of --limit-cpu, --reserve-memory, ... into *out. */
static int
resource_opt(const struct ctl_args *a, const char *name, bool cpu,
             int64_t *out)
{
    const char *v = ctl_arg(a, name);

    if (!v) {
        return 0;
    }
    if ((cpu ? ctl_parse_cpus(v, out) : ctl_parse_size(v, out)) != 0) {
        return ctl_usage(a->cmd, "invalid --%s \"%s\": expected %s", name,
                         v, cpu ? "a number of CPUs like 0.5"
                                : "a size like 64MiB");
    }
    return 0;
}

static int
apply_resources(const struct ctl_args *a, struct shoal_service_spec *s)
{
    struct shoal_resource_requirements *r = &s->task.resources;
    int rc;

    rc = resource_opt(a, "limit-cpu", true, &r->limits.nano_cpus);
    if (rc == 0) {
        rc = resource_opt(a, "limit-memory", false, &r->limits.memory_bytes);
    }
    if (rc == 0) {
        rc = resource_opt(a, "reserve-cpu", true, &r->reservations.nano_cpus);
    }
    if (rc == 0) {
        rc = resource_opt(a, "reserve-memory", false,
                          &r->reservations.memory_bytes);
    }
    return rc;
}

static void
port_del(struct shoal_endpoint_spec *e, uint32_t target, uint32_t proto)
{
    for (size_t i = e->n_ports; i-- > 0;) {
        if (e->ports[i].target_port == target &&
            e->ports[i].protocol == proto) {
            list_del(&wire_type_port_config, e->ports, &e->n_ports, i);
        }
    }
}

static int
apply_publish(const struct ctl_args *a, const char *add, const char *rm,
              struct shoal_service_spec *s)
{
    struct shoal_port_config p, *slot;
    uint32_t target, proto;
    const char *v;
    size_t it = 0;

    while (rm && (v = ctl_arg_next(a, rm, &it))) {
        if (ctl_parse_port_rm(v, &target, &proto) != 0) {
            return ctl_usage(a->cmd, "invalid --%s \"%s\": expected "
                                     "TARGET[/PROTO]", rm, v);
        }
        if (s->endpoint) {
            port_del(s->endpoint, target, proto);
        }
    }
    it = 0;
    while ((v = ctl_arg_next(a, add, &it))) {
        memset(&p, 0, sizeof p);
        if (ctl_parse_publish(v, &p) != 0) {
            return ctl_usage(a->cmd, "invalid --%s \"%s\": expected "
                             "[PUBLISHED:]TARGET[/PROTO][,mode=host|"
                             "ingress]", add, v);
        }
        /* The endpoint exists only when a port is published. */
        if (!s->endpoint &&
            !(s->endpoint = calloc(1, sizeof *s->endpoint))) {
            return oom();
        }
        port_del(s->endpoint, p.target_port, p.protocol);
        slot = LIST_PUSH(s->endpoint->ports, s->endpoint->n_ports);
        if (!slot) {
            return oom();
        }
        *slot = p;
    }
    return 0;
}

static int
apply_constraints(const struct ctl_args *a, const char *add, const char *rm,
                  struct shoal_service_spec *s)
{
    struct shoal_strs *c = &s->task.placement.constraints;
    const char *v;
    size_t it = 0;

    while (rm && (v = ctl_arg_next(a, rm, &it))) {
        for (size_t i = c->n; i-- > 0;) {
            if (strcmp(c->v[i], v) == 0) {
                strs_del(c, i);
            }
        }
    }
    it = 0;
    while ((v = ctl_arg_next(a, add, &it))) {
        if (wire_strs_push(c, v) != 0) {
            return oom();
        }
    }
    return 0;
}

static int
apply_networks(struct ctl *ctl, const struct ctl_args *a, const char *add,
               const char *rm, struct shoal_service_spec *s)
{
    struct shoal_task_spec *t = &s->task;
    const char *v;
    size_t it = 0;

    while (rm && (v = ctl_arg_next(a, rm, &it))) {
        struct ctl_ref ref;
        int rc = ctl_resolve(ctl, SHOAL_KIND_NETWORK, v, &ref);

        if (rc != 0) {
            return rc;
        }
        for (size_t i = t->n_networks; i-- > 0;) {
            if (strcmp(t->networks[i].target, ref.id) == 0) {
                list_del(&wire_type_network_attachment, t->networks,
                         &t->n_networks, i);
            }
        }
        ctl_ref_fini(&ref);
    }
    it = 0;
    while ((v = ctl_arg_next(a, add, &it))) {
        struct shoal_network_attachment *na;
        struct ctl_ref ref;
        int rc = ctl_resolve(ctl, SHOAL_KIND_NETWORK, v, &ref);

        if (rc != 0) {
            return rc;
        }
        na = LIST_PUSH(t->networks, t->n_networks);
        if (!na) {
            ctl_ref_fini(&ref);
            return oom();
        }
        na->target = ref.id; /* transferred */
        free(ref.name);
    }
    return 0;
}

/* Secret and config references: both have an id, a name and a file. */
struct ref_list {
    enum shoal_kind kind;
    void **arr;
    size_t *n;
    const struct wire_type *type;
};

/* The id, name and file of element i of a reference list. */
static void
ref_at(const struct ref_list *l, size_t i, char ***id, char ***name,
       struct shoal_file_target **file)
{
    if (l->kind == SHOAL_KIND_SECRET) {
        struct shoal_secret_ref *r = (struct shoal_secret_ref *)*l->arr + i;

        *id = &r->secret_id;
        *name = &r->secret_name;
        *file = &r->file;
    } else {
        struct shoal_config_ref *r = (struct shoal_config_ref *)*l->arr + i;

        *id = &r->config_id;
        *name = &r->config_name;
        *file = &r->file;
    }
}

static void
ref_del(const struct ref_list *l, const char *name)
{
    struct shoal_file_target *file;
    char **id, **nm;

    for (size_t i = *l->n; i-- > 0;) {
        ref_at(l, i, &id, &nm, &file);
        if ((*nm && strcmp(*nm, name) == 0) || (*id && strcmp(*id, name) ==
                                                           0)) {
            list_del(l->type, *l->arr, l->n, i);
        }
    }
}

/* Add "name[:target]": resolved, replacing a reference of that name. */
static int
ref_add(struct ctl *ctl, const struct ctl_args *a, const struct ref_list *l,
        const char *opt, const char *v)
{
    struct shoal_file_target *file;
    const char *target;
    struct ctl_ref ref;
    char **id, **name, *typed;
    size_t nlen;
    int rc;

    if (ctl_parse_ref(v, &nlen, &target) != 0) {
        return ctl_usage(a->cmd, "invalid --%s \"%s\": expected "
                                 "NAME[:TARGET]", opt, v);
    }
    typed = strndup(v, nlen);
    rc = typed ? ctl_resolve(ctl, l->kind, typed, &ref) : oom();
    free(typed);
    if (rc != 0) {
        return rc;
    }
    ref_del(l, ref.name);
    if (!list_push(l->arr, l->n, wire_type_size(l->type))) {
        ctl_ref_fini(&ref);
        return oom();
    }
    ref_at(l, *l->n - 1, &id, &name, &file);
    *id = ref.id;     /* transferred */
    *name = ref.name; /* transferred */
    /* Docker's defaults: secrets under /run/secrets/<name>, configs at
     * /<name>, readable by everyone in the container. */
    file->name = target ? str_dup(target)
                        : l->kind == SHOAL_KIND_SECRET ? str_dup(*name)
                                                       : str_printf("/%s",
                                                                    *name);
    file->uid = str_dup("0");
    file->gid = str_dup("0");
    file->mode = 0444;
    return file->name && file->uid && file->gid ? 0 : oom();
}

static int
apply_refs(struct ctl *ctl, const struct ctl_args *a, enum shoal_kind kind,
           const char *add, const char *rm, struct shoal_service_spec *s)
{
    struct shoal_container_spec *c = container(s);
    struct ref_list l = {.kind = kind};
    const char *v;
    size_t it = 0;
    int rc = 0;

    if (!c) {
        return oom();
    }
    if (kind == SHOAL_KIND_SECRET) {
        l = (struct ref_list){kind, (void **)&c->secrets, &c->n_secrets,
                              &wire_type_secret_ref};
    } else {
        l = (struct ref_list){kind, (void **)&c->configs, &c->n_configs,
                              &wire_type_config_ref};
    }
    while (rm && (v = ctl_arg_next(a, rm, &it))) {
        ref_del(&l, v);
    }
    it = 0;
    while (rc == 0 && (v = ctl_arg_next(a, add, &it))) {
        rc = ref_add(ctl, a, &l, add, v);
    }
    return rc;
}

static int
apply_replicas(const struct ctl_args *a, struct shoal_service_spec *s)
{
    const char *v = ctl_arg(a, "replicas");

    if (!v) {
        return 0;
    }
    if (s->mode.kind != SHOAL_MODE_REPLICATED) {
        return ctl_usage(a->cmd, "--replicas needs a replicated service");
    }
    /* The daemon judges the range (a negative count is its invalid
     * argument); here only the syntax. */
    if (ctl_parse_i64(v, &s->mode.replicas) != 0) {
        return ctl_usage(a->cmd, "invalid --replicas \"%s\": expected an "
                                 "integer", v);
    }
    return 0;
}

static int
apply_image(const struct ctl_args *a, struct shoal_service_spec *s)
{
    const char *v = ctl_arg(a, "image");
    struct shoal_container_spec *c = container(s);

    if (!c) {
        return oom();
    }
    if (v) {
        free(c->image);
        c->image = str_dup(v);
        if (!c->image) {
            return oom();
        }
    }
    return 0;
}

static int
parse_mode(const struct ctl_args *a, struct shoal_service_spec *s)
{
    const char *v = ctl_arg(a, "mode");

    if (!v || strcmp(v, "replicated") == 0) {
        s->mode.kind = SHOAL_MODE_REPLICATED;
        s->mode.replicas = 1;
    } else if (strcmp(v, "global") == 0) {
        s->mode.kind = SHOAL_MODE_GLOBAL;
    } else {
        return ctl_usage(a->cmd, "invalid --mode \"%s\": use replicated or "
                                 "global", v);
    }
    return 0;
}

/* The flags create and update share, under their names for each. */
struct svc_flags {
    const char *env, *env_rm, *label, *label_rm, *publish, *publish_rm;
    const char *secret, *secret_rm, *config, *config_rm;
    const char *network, *network_rm, *constraint, *constraint_rm;
};

static const struct svc_flags create_flags = {
    "env", NULL, "label", NULL, "publish", NULL, "secret", NULL,
    "config", NULL, "network", NULL, "constraint", NULL,
};

static const struct svc_flags update_flags = {
    "env-add", "env-rm", "label-add", "label-rm", "publish-add",
    "publish-rm", "secret-add", "secret-rm", "config-add", "config-rm",
    "network-add", "network-rm", "constraint-add", "constraint-rm",
};

static int
apply_flags(struct ctl *ctl, const struct ctl_args *a,
            const struct svc_flags *f, struct shoal_service_spec *s)
{
    int rc = apply_image(a, s);

    rc = rc ? rc : apply_replicas(a, s);
    rc = rc ? rc : apply_env(a, f->env, f->env_rm, s);
    rc = rc ? rc : ctl_apply_labels(a, f->label, f->label_rm,
                                    &s->annotations.labels);
    rc = rc ? rc : apply_publish(a, f->publish, f->publish_rm, s);
    rc = rc ? rc : apply_constraints(a, f->constraint, f->constraint_rm, s);
    rc = rc ? rc : apply_resources(a, s);
    rc = rc ? rc : apply_refs(ctl, a, SHOAL_KIND_SECRET, f->secret,
                              f->secret_rm, s);
    rc = rc ? rc : apply_refs(ctl, a, SHOAL_KIND_CONFIG, f->config,
                              f->config_rm, s);
    rc = rc ? rc : apply_networks(ctl, a, f->network, f->network_rm, s);
    return rc;
}

static int
svc_create(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_service_spec spec = {0};
    struct shoal_create_service_request req = {.spec = &spec};
    struct shoal_service svc = {0};
    const char *name = ctl_arg(a, "name");
    int rc;

    if (!name || !ctl_arg(a, "image")) {
        return ctl_usage(a->cmd, "--name and --image are required");
    }
    if (ctl_flag(a, "replicas") && ctl_arg(a, "mode") &&
        strcmp(ctl_arg(a, "mode"), "replicated") != 0) {
        return ctl_usage(a->cmd, "--replicas needs --mode replicated");
    }
    spec.annotations.name = str_dup(name);
    rc = spec.annotations.name ? parse_mode(a, &spec) : oom();
    rc = rc ? rc : apply_flags(ctl, a, &create_flags, &spec);
    if (rc == 0) {
        rc = ctl_call(ctl, WIRE_MSG_CREATE_SERVICE, &req, &svc);
        rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
    }
    if (rc == 0) {
        printf("%s\n", svc.id);
    }
    wire_free(&wire_type_service_spec, &spec);
    wire_free(&wire_type_service, &svc);
    return rc;
}

/* Send svc's (changed) spec as an update based on the version read. */
static int
svc_send_update(struct ctl *ctl, struct shoal_service *svc, bool rollback)
{
    struct shoal_update_service_request req = {
        .id = svc->id,
        .version = svc->meta.version,
        .spec = &svc->spec,
        .rollback = rollback,
    };
    struct shoal_service out = {0};
    int rc = ctl_call(ctl, WIRE_MSG_UPDATE_SERVICE, &req, &out);

    wire_free(&wire_type_service, &out);
    return rc == 0 ? 0 : ctl_fail(ctl, rc);
}

static int
svc_update(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_service svc = {0};
    struct shoal_service_spec before = {0};
    int rc = ctl_lookup(ctl, SHOAL_KIND_SERVICE, a->pos[0], &svc);

    if (rc != 0) {
        return rc;
    }
    if (wire_copy(&wire_type_service_spec, &before, &svc.spec) != 0) {
        rc = oom();
        goto done;
    }
    rc = apply_flags(ctl, a, &update_flags, &svc.spec);
    if (rc == 0 && ctl_flag(a, "force")) {
        svc.spec.task.force_update++;
    }
    /* Nothing to change is success without a write, so that scripts may
     * repeat an update. */
    if (rc == 0 && !wire_equal(&wire_type_service_spec, &before, &svc.spec)) {
        rc = svc_send_update(ctl, &svc, false);
    }
    if (rc == 0) {
        printf("%s\n", svc.id);
    }
done:
    wire_free(&wire_type_service_spec, &before);
    wire_free(&wire_type_service, &svc);
    return rc;
}

static int
svc_rollback(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_service svc = {0};
    int rc = ctl_lookup(ctl, SHOAL_KIND_SERVICE, a->pos[0], &svc);

    if (rc == 0) {
        rc = svc_send_update(ctl, &svc, true);
    }
    if (rc == 0) {
        printf("%s\n", svc.id);
    }
    wire_free(&wire_type_service, &svc);
    return rc;
}

/* One "SERVICE=N" of service scale. */
static int
svc_scale_one(struct ctl *ctl, const struct ctl_args *a, const char *arg)
{
    const char *eq = strrchr(arg, '=');
    struct shoal_service svc = {0};
    char *name;
    int64_t n;
    int rc;

    if (!eq || eq == arg || ctl_parse_i64(eq + 1, &n) != 0) {
        return ctl_usage(a->cmd, "invalid \"%s\": expected SERVICE=REPLICAS",
                         arg);
    }
    name = strndup(arg, (size_t)(eq - arg));
    rc = name ? ctl_lookup(ctl, SHOAL_KIND_SERVICE, name, &svc) : oom();
    if (rc == 0 && svc.spec.mode.kind != SHOAL_MODE_REPLICATED) {
        rc = ctl_error(CTL_EXIT_ERROR, "service %s is not replicated: only "
                                       "replicated services scale", name);
    }
    if (rc == 0) {
        svc.spec.mode.replicas = n;
        rc = svc_send_update(ctl, &svc, false);
    }
    if (rc == 0) {
        printf("%s scaled to %" PRId64 "\n", name, n);
    }
    free(name);
    wire_free(&wire_type_service, &svc);
    return rc;
}

static int
svc_scale(struct ctl *ctl, const struct ctl_args *a)
{
    int worst = 0;

    for (size_t i = 0; i < a->n_pos; i++) {
        int rc = svc_scale_one(ctl, a, a->pos[i]);

        worst = worst ? worst : rc;
    }
    return worst;
}

/* The replica counts of service ls. */
static const struct shoal_service_status *
find_status(const struct shoal_service_statuses_reply *st, const char *id)
{
    for (size_t i = 0; st && i < st->n_statuses; i++) {
        if (st->statuses[i].service_id &&
            strcmp(st->statuses[i].service_id, id) == 0) {
            return &st->statuses[i];
        }
    }
    return NULL;
}

static void
svc_row(const void *ctx, const void *obj, char **cells)
{
    const struct shoal_service *s = obj;
    const struct shoal_service_status *st = find_status(ctx, s->id);
    const struct shoal_container_spec *c = s->spec.task.container;

    cells[0] = str_dup(s->id);
    cells[1] = str_dup(s->spec.annotations.name);
    cells[2] = str_dup(s->spec.mode.kind == SHOAL_MODE_GLOBAL ? "global"
                                                              : "replicated");
    cells[3] = st ? str_printf("%" PRIu64 "/%" PRIu64, st->running,
                               st->desired)
                  : str_printf("?/%" PRId64, s->spec.mode.replicas);
    cells[4] = str_dup(c && c->image ? c->image : "");
}

static int
svc_ls(struct ctl *ctl, const struct ctl_args *a)
{
    static const char *const cols[] = {"ID", "NAME", "MODE", "REPLICAS",
                                       "IMAGE"};
    struct shoal_list_request req = {0};
    struct shoal_list_reply r = {0};
    struct shoal_service_statuses_request sreq = {0};
    struct shoal_service_statuses_reply st = {0};
    struct ctl_columns c = {cols, ARRAY_LEN(cols), svc_row, &st};
    int rc = ctl_call(ctl, WIRE_MSG_LIST_SERVICES, &req, &r);

    (void)a;
    if (rc != 0) {
        return ctl_fail(ctl, rc);
    }
    if (!ctl->quiet && ctl->output == CTL_OUT_TABLE && r.n_services > 0) {
        sreq.service_ids.v = calloc(r.n_services, sizeof(char *));
        for (size_t i = 0; sreq.service_ids.v && i < r.n_services; i++) {
            sreq.service_ids.v[sreq.service_ids.n++] = r.services[i].id;
        }
        /* Counts are a nicety: a failure leaves them as "?". */
        ctl_call(ctl, WIRE_MSG_LIST_SERVICE_STATUSES, &sreq, &st);
        free(sreq.service_ids.v);
    }
    rc = ctl_print_list(ctl, SHOAL_KIND_SERVICE, &r, &c);
    wire_free(&wire_type_service_statuses_reply, &st);
    wire_free(&wire_type_list_reply, &r);
    return rc;
}

static int
svc_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_SERVICE, a);
}

static int
svc_rm(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_remove(ctl, SHOAL_KIND_SERVICE, a, false);
}

#define RESOURCE_OPTS                                                      \
    {"limit-cpu", 0, "CPUS", "CPU limit, e.g. 0.5"},                       \
        {"limit-memory", 0, "SIZE", "memory limit, e.g. 64MiB"},           \
        {"reserve-cpu", 0, "CPUS", "CPUs reserved"},                       \
        {"reserve-memory", 0, "SIZE", "memory reserved"}

static const struct ctl_opt create_opts[] = {
    {"name", 0, "NAME", "service name (required)"},
    {"image", 0, "IMAGE", "container image (required)"},
    {"mode", 0, "MODE", "replicated (default) or global"},
    {"replicas", 0, "N", "number of tasks (replicated; default 1)"},
    {"label", 0, "KEY=VALUE", "service label (repeatable)"},
    {"env", 0, "KEY=VALUE", "environment variable (repeatable)"},
    {"publish", 0, "SPEC",
     "[PUBLISHED:]TARGET[/PROTO][,mode=host|ingress] (repeatable)"},
    {"secret", 0, "NAME[:TARGET]", "give the tasks a secret (repeatable)"},
    {"config", 0, "NAME[:TARGET]", "give the tasks a config (repeatable)"},
    {"network", 0, "NETWORK", "attach to a network (repeatable)"},
    {"constraint", 0, "EXPR", "placement constraint (repeatable)"},
    RESOURCE_OPTS,
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt update_opts[] = {
    {"image", 0, "IMAGE", "new container image"},
    {"replicas", 0, "N", "number of tasks (replicated services)"},
    {"env-add", 0, "KEY=VALUE", "add or replace a variable"},
    {"env-rm", 0, "KEY", "remove a variable"},
    {"label-add", 0, "KEY=VALUE", "add or replace a label"},
    {"label-rm", 0, "KEY", "remove a label"},
    {"publish-add", 0, "SPEC", "publish a port (as create --publish)"},
    {"publish-rm", 0, "TARGET[/PROTO]", "stop publishing a target port"},
    {"secret-add", 0, "NAME[:TARGET]", "add a secret"},
    {"secret-rm", 0, "NAME", "remove a secret"},
    {"config-add", 0, "NAME[:TARGET]", "add a config"},
    {"config-rm", 0, "NAME", "remove a config"},
    {"network-add", 0, "NETWORK", "attach to a network"},
    {"network-rm", 0, "NETWORK", "detach from a network"},
    {"constraint-add", 0, "EXPR", "add a placement constraint"},
    {"constraint-rm", 0, "EXPR", "remove a placement constraint"},
    RESOURCE_OPTS,
    {"force", 0, NULL, "redeploy the tasks even without a change"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt no_opts[] = {{NULL, 0, NULL, NULL}};

const struct ctl_cmd ctl_cmds_service[] = {
    {"service", "create", NULL, "", 0, 0, "create a service", create_opts,
     svc_create},
    {"service", "ls", "list", "", 0, 0, "list services", no_opts, svc_ls},
    {"service", "inspect", NULL, "SERVICE", 1, 1,
     "print a service as JSON", no_opts, svc_inspect},
    {"service", "update", NULL, "SERVICE", 1, 1, "change a service",
     update_opts, svc_update},
    {"service", "rollback", NULL, "SERVICE", 1, 1,
     "go back to the previous spec of a service", no_opts, svc_rollback},
    {"service", "scale", NULL, "SERVICE=REPLICAS [SERVICE=REPLICAS...]", 1,
     SIZE_MAX, "set the replica count of services", no_opts, svc_scale},
    {"service", "rm", "remove", "SERVICE [SERVICE...]", 1, SIZE_MAX,
     "remove services", no_opts, svc_rm},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
