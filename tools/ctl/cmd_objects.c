/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * cmd_objects.c: `shoalctl task|network|secret|config ...`.
 *
 * Secret and config payloads come from a file or stdin, never from the
 * command line, where they would be visible to every user through
 * /proc/PID/cmdline and kept in shell history. A secret's bytes are wiped
 * from memory once sent.
 */
#include "ctl.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define DATA_MAX (1u << 20) /* the schema's limit of secret/config data */

static const struct ctl_opt no_opts[] = {{NULL, 0, NULL, NULL}};

/* Tasks. */

static void
task_row(const void *ctx, const void *obj, char **cells)
{
    const struct shoal_task *t = obj;
    const char *svc = t->service_annotations.name;

    (void)ctx;
    cells[0] = str_dup(t->id);
    if (t->annotations.name) {
        cells[1] = str_dup(t->annotations.name);
    } else if (t->slot) {
        cells[1] = str_printf("%s.%llu", svc ? svc : "",
                              (unsigned long long)t->slot);
    } else {
        cells[1] = str_printf("%s.%s", svc ? svc : "",
                              t->node_id ? t->node_id : "");
    }
    cells[2] = str_dup(t->node_id ? t->node_id : "");
    cells[3] = str_dup(ctl_task_state_name(t->desired_state));
    cells[4] = str_dup(ctl_task_state_name(t->status.state));
}

/* Drop tasks that should not run any more unless --all: swarmctl's
 * default view. */
static void
task_filter(struct shoal_list_reply *r)
{
    size_t keep = 0;

    for (size_t i = 0; i < r->n_tasks; i++) {
        if (r->tasks[i].desired_state <= SHOAL_TASK_RUNNING) {
            r->tasks[keep++] = r->tasks[i];
        } else {
            wire_free(&wire_type_task, &r->tasks[i]);
        }
    }
    r->n_tasks = keep;
}

/* Resolve --service or --node into the filter list. */
static int
task_filter_arg(struct ctl *ctl, const struct ctl_args *a, const char *opt,
                enum shoal_kind kind, struct shoal_strs *out)
{
    const char *v = ctl_arg(a, opt);
    struct ctl_ref ref;
    int rc;

    if (!v) {
        return 0;
    }
    rc = ctl_resolve(ctl, kind, v, &ref);
    if (rc == 0 && wire_strs_push(out, ref.id) != 0) {
        rc = ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    ctl_ref_fini(&ref);
    return rc;
}

static int
task_ls(struct ctl *ctl, const struct ctl_args *a)
{
    static const char *const cols[] = {"ID", "NAME", "NODE", "DESIRED STATE",
                                       "CURRENT STATE"};
    struct ctl_columns c = {cols, ARRAY_LEN(cols), task_row, NULL};
    struct shoal_list_request req = {0};
    struct shoal_list_reply r = {0};
    int rc;

    rc = task_filter_arg(ctl, a, "service", SHOAL_KIND_SERVICE,
                         &req.service_ids);
    if (rc == 0) {
        rc = task_filter_arg(ctl, a, "node", SHOAL_KIND_NODE, &req.node_ids);
    }
    if (rc == 0) {
        rc = ctl_call(ctl, WIRE_MSG_LIST_TASKS, &req, &r);
        rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
    }
    if (rc == 0) {
        if (!ctl_flag(a, "all")) {
            task_filter(&r);
        }
        rc = ctl_print_list(ctl, SHOAL_KIND_TASK, &r, &c);
    }
    wire_free(&wire_type_list_request, &req);
    wire_free(&wire_type_list_reply, &r);
    return rc;
}

static int
task_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_TASK, a);
}

static int
task_rm(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_remove(ctl, SHOAL_KIND_TASK, a, false);
}

static const struct ctl_opt task_ls_opts[] = {
    {"service", 0, "SERVICE", "only the tasks of this service"},
    {"node", 0, "NODE", "only the tasks on this node"},
    {"all", 'a', NULL, "also tasks that are shut down or finished"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_task[] = {
    {"task", "ls", "list", "", 0, 0, "list tasks", task_ls_opts, task_ls},
    {"task", "inspect", NULL, "TASK", 1, 1, "print a task as JSON", no_opts,
     task_inspect},
    {"task", "rm", "remove", "TASK [TASK...]", 1, SIZE_MAX, "remove tasks",
     no_opts, task_rm},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};

/* Networks. */

static void
network_row(const void *ctx, const void *obj, char **cells)
{
    const struct shoal_network *n = obj;
    const struct shoal_driver *d = n->spec.driver_config;

    (void)ctx;
    cells[0] = str_dup(n->id);
    cells[1] = str_dup(ctl_object_name(SHOAL_KIND_NETWORK, n));
    cells[2] = str_dup(d && d->name ? d->name : "");
    cells[3] = str_dup(n->spec.ingress ? "ingress" : "");
}

static int
network_ls(struct ctl *ctl, const struct ctl_args *a)
{
    static const char *const cols[] = {"ID", "NAME", "DRIVER", "INGRESS"};
    struct ctl_columns c = {cols, ARRAY_LEN(cols), network_row, NULL};

    (void)a;
    return ctl_cmd_list(ctl, SHOAL_KIND_NETWORK, NULL, &c);
}

/* --subnet, --gateway and --ip-range make one IPAM config. */
static int
network_ipam(const struct ctl_args *a, struct shoal_network_spec *s)
{
    const char *subnet = ctl_arg(a, "subnet");
    struct shoal_ipam_config *c;

    if (!subnet) {
        return ctl_arg(a, "gateway") || ctl_arg(a, "ip-range")
                   ? ctl_usage(a->cmd, "--gateway and --ip-range need "
                                       "--subnet")
                   : 0;
    }
    s->ipam = calloc(1, sizeof *s->ipam);
    c = s->ipam ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    s->ipam->configs = c;
    s->ipam->n_configs = 1;
    c->subnet = str_dup(subnet);
    c->gateway = str_dup(ctl_arg(a, "gateway"));
    c->range = str_dup(ctl_arg(a, "ip-range"));
    return 0;
}

static int
network_driver(const struct ctl_args *a, struct shoal_network_spec *s)
{
    const char *d = ctl_arg(a, "driver");

    if (!d && !ctl_flag(a, "opt")) {
        return 0;
    }
    s->driver_config = calloc(1, sizeof *s->driver_config);
    if (!s->driver_config) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    s->driver_config->name = str_dup(d);
    return ctl_apply_labels(a, "opt", NULL, &s->driver_config->options);
}

static int
network_create(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_network_spec spec = {0};
    struct shoal_create_network_request req = {.spec = &spec};
    struct shoal_network out = {0};
    const char *name = a->n_pos ? a->pos[0] : ctl_arg(a, "name");
    int rc;

    if (!name) {
        return ctl_usage(a->cmd, "a network name is required");
    }
    spec.annotations.name = str_dup(name);
    spec.attachable = ctl_flag(a, "attachable");
    spec.internal = ctl_flag(a, "internal");
    spec.ipv6 = ctl_flag(a, "ipv6");
    spec.ingress = ctl_flag(a, "ingress");
    rc = ctl_apply_labels(a, "label", NULL, &spec.annotations.labels);
    rc = rc ? rc : network_ipam(a, &spec);
    rc = rc ? rc : network_driver(a, &spec);
    if (rc == 0) {
        rc = ctl_call(ctl, WIRE_MSG_CREATE_NETWORK, &req, &out);
        rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
    }
    if (rc == 0) {
        printf("%s\n", out.id);
    }
    wire_free(&wire_type_network_spec, &spec);
    wire_free(&wire_type_network, &out);
    return rc;
}

static int
network_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_NETWORK, a);
}

static int
network_rm(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_remove(ctl, SHOAL_KIND_NETWORK, a, false);
}

static const struct ctl_opt network_create_opts[] = {
    {"name", 0, "NAME", "network name (or give it as the argument)"},
    {"driver", 0, "DRIVER", "network driver"},
    {"opt", 0, "KEY=VALUE", "driver option (repeatable)"},
    {"label", 0, "KEY=VALUE", "network label (repeatable)"},
    {"subnet", 0, "CIDR", "subnet, e.g. 10.1.0.0/24"},
    {"gateway", 0, "IP", "gateway inside the subnet"},
    {"ip-range", 0, "CIDR", "range to allocate from, inside the subnet"},
    {"attachable", 0, NULL, "let standalone containers attach"},
    {"internal", 0, NULL, "no external connectivity"},
    {"ipv6", 0, NULL, "enable IPv6"},
    {"ingress", 0, NULL, "make it the routing-mesh network (one at most)"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_network[] = {
    {"network", "create", NULL, "[NAME]", 0, 1, "create a network",
     network_create_opts, network_create},
    {"network", "ls", "list", "", 0, 0, "list networks", no_opts,
     network_ls},
    {"network", "inspect", NULL, "NETWORK", 1, 1, "print a network as JSON",
     no_opts, network_inspect},
    {"network", "rm", "remove", "NETWORK [NETWORK...]", 1, SIZE_MAX,
     "remove networks", no_opts, network_rm},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};

/* Secrets and configs. */

/* Read all of f, at most DATA_MAX bytes, into out. */
static int
read_stream(FILE *f, const char *what, struct shoal_bytes *out)
{
    uint8_t *buf = malloc(DATA_MAX + 1);
    size_t n;

    if (!buf) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    n = fread(buf, 1, DATA_MAX + 1, f);
    if (ferror(f) || n > DATA_MAX) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return ctl_error(CTL_EXIT_ERROR, n > DATA_MAX
                         ? "%s: data is larger than %u bytes"
                         : "%s: read error", what, DATA_MAX);
    }
    out->data = buf;
    out->len = n;
    return 0;
}

/* The data of a create: FILE, or stdin when it is "-" or absent. */
static int
read_data(const struct ctl_args *a, struct shoal_bytes *out)
{
    const char *path = a->n_pos > 1 ? a->pos[1] : "-";
    FILE *f;
    int rc;

    if (strcmp(path, "-") == 0) {
        return read_stream(stdin, "stdin", out);
    }
    f = fopen(path, "rb");
    if (!f) {
        return ctl_error(errno == EACCES ? CTL_EXIT_PERMISSION
                                         : CTL_EXIT_ERROR,
                         "%s: %s", path, strerror(errno));
    }
    rc = read_stream(f, path, out);
    fclose(f);
    return rc;
}

static void
wipe(struct shoal_bytes *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->len);
    }
}

static int
secret_create(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_secret_spec spec = {0};
    struct shoal_create_secret_request req = {.spec = &spec};
    struct shoal_secret out = {0};
    int rc;

    spec.annotations.name = str_dup(a->pos[0]);
    rc = ctl_apply_labels(a, "label", NULL, &spec.annotations.labels);
    rc = rc ? rc : read_data(a, &spec.data);
    if (rc == 0) {
        rc = ctl_call(ctl, WIRE_MSG_CREATE_SECRET, &req, &out);
        rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
    }
    if (rc == 0) {
        printf("%s\n", out.id);
    }
    wipe(&spec.data);
    ctl_redact(SHOAL_KIND_SECRET, &out);
    wire_free(&wire_type_secret_spec, &spec);
    wire_free(&wire_type_secret, &out);
    return rc;
}

static int
config_create(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request req = {.spec = &spec};
    struct shoal_config out = {0};
    int rc;

    spec.annotations.name = str_dup(a->pos[0]);
    rc = ctl_apply_labels(a, "label", NULL, &spec.annotations.labels);
    rc = rc ? rc : read_data(a, &spec.data);
    if (rc == 0) {
        rc = ctl_call(ctl, WIRE_MSG_CREATE_CONFIG, &req, &out);
        rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
    }
    if (rc == 0) {
        printf("%s\n", out.id);
    }
    wire_free(&wire_type_config_spec, &spec);
    wire_free(&wire_type_config, &out);
    return rc;
}

/* Rows of secret ls and config ls: both start with id, meta, spec name. */
static void
dated_row(enum shoal_kind kind, const void *obj, char **cells)
{
    const struct shoal_meta *m = wire_object_meta(kind, (void *)obj);
    char created[32], updated[32];

    ctl_format_time(m->created_at, created, sizeof created);
    ctl_format_time(m->updated_at, updated, sizeof updated);
    cells[0] = str_dup(wire_object_id(kind, obj));
    cells[1] = str_dup(ctl_object_name(kind, obj));
    cells[2] = str_dup(created);
    cells[3] = str_dup(updated);
}

static void
secret_row(const void *ctx, const void *obj, char **cells)
{
    (void)ctx;
    dated_row(SHOAL_KIND_SECRET, obj, cells);
}

static void
config_row(const void *ctx, const void *obj, char **cells)
{
    (void)ctx;
    dated_row(SHOAL_KIND_CONFIG, obj, cells);
}

static const char *const dated_cols[] = {"ID", "NAME", "CREATED", "UPDATED"};

static int
secret_ls(struct ctl *ctl, const struct ctl_args *a)
{
    struct ctl_columns c = {dated_cols, ARRAY_LEN(dated_cols), secret_row,
                            NULL};

    (void)a;
    return ctl_cmd_list(ctl, SHOAL_KIND_SECRET, NULL, &c);
}

static int
config_ls(struct ctl *ctl, const struct ctl_args *a)
{
    struct ctl_columns c = {dated_cols, ARRAY_LEN(dated_cols), config_row,
                            NULL};

    (void)a;
    return ctl_cmd_list(ctl, SHOAL_KIND_CONFIG, NULL, &c);
}

static int
secret_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_SECRET, a);
}

static int
config_inspect(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_inspect(ctl, SHOAL_KIND_CONFIG, a);
}

static int
secret_rm(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_remove(ctl, SHOAL_KIND_SECRET, a, false);
}

static int
config_rm(struct ctl *ctl, const struct ctl_args *a)
{
    return ctl_cmd_remove(ctl, SHOAL_KIND_CONFIG, a, false);
}

/* Only labels of a secret may change; the data is sent absent. */
static int
secret_update(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_secret s = {0}, out = {0};
    struct shoal_update_secret_request req = {0};
    int rc = ctl_lookup(ctl, SHOAL_KIND_SECRET, a->pos[0], &s);

    if (rc != 0) {
        return rc;
    }
    ctl_redact(SHOAL_KIND_SECRET, &s);
    rc = ctl_apply_labels(a, "label-add", "label-rm",
                          &s.spec.annotations.labels);
    if (rc == 0) {
        req = (struct shoal_update_secret_request){s.id, s.meta.version,
                                                   &s.spec};
        rc = ctl_call(ctl, WIRE_MSG_UPDATE_SECRET, &req, &out);
        rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
    }
    if (rc == 0) {
        printf("%s\n", s.id);
    }
    ctl_redact(SHOAL_KIND_SECRET, &out);
    wire_free(&wire_type_secret, &out);
    wire_free(&wire_type_secret, &s);
    return rc;
}

static const struct ctl_opt create_data_opts[] = {
    {"label", 0, "KEY=VALUE", "label (repeatable)"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt secret_update_opts[] = {
    {"label-add", 0, "KEY=VALUE", "add or replace a label"},
    {"label-rm", 0, "KEY", "remove a label"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_secret[] = {
    {"secret", "create", NULL, "NAME [FILE|-]", 1, 2,
     "create a secret from FILE or stdin", create_data_opts, secret_create},
    {"secret", "ls", "list", "", 0, 0, "list secrets", no_opts, secret_ls},
    {"secret", "inspect", NULL, "SECRET", 1, 1,
     "print a secret (without its data) as JSON", no_opts, secret_inspect},
    {"secret", "update", NULL, "SECRET", 1, 1, "change a secret's labels",
     secret_update_opts, secret_update},
    {"secret", "rm", "remove", "SECRET [SECRET...]", 1, SIZE_MAX,
     "remove secrets", no_opts, secret_rm},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_config[] = {
    {"config", "create", NULL, "NAME [FILE|-]", 1, 2,
     "create a config from FILE or stdin", create_data_opts, config_create},
    {"config", "ls", "list", "", 0, 0, "list configs", no_opts, config_ls},
    {"config", "inspect", NULL, "CONFIG", 1, 1, "print a config as JSON",
     no_opts, config_inspect},
    {"config", "rm", "remove", "CONFIG [CONFIG...]", 1, SIZE_MAX,
     "remove configs", no_opts, config_rm},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
