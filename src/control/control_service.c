/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_service.c: the service requests (SWARMKIT.md 1.3): the
 * stateless validation of a service spec, create, get (with defaults),
 * update and rollback, remove, and the service statuses.
 *
 * Rules that depend on other objects (port conflicts, the ingress
 * network, referenced secrets and configs) live in control_check.c and
 * run both before the commit and at apply.
 */
#include "control/control_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int spec_fail(char *msg, size_t msg_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
spec_fail(char *msg, size_t msg_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
    return SHOAL_INVALID_ARGUMENT;
}

static int
resources_valid(const struct shoal_resources *r, char *msg, size_t len)
{
    if (r->nano_cpus != 0 && r->nano_cpus < 1000000) {
        return spec_fail(msg, len, "invalid cpu value %g: Must be at least %g",
                         (double)r->nano_cpus / 1e9, 1e6 / 1e9);
    }
    if (r->memory_bytes != 0 && r->memory_bytes < 4 * 1024 * 1024) {
        return spec_fail(msg, len,
                         "invalid memory value %lld: Must be at least 4MiB",
                         (long long)r->memory_bytes);
    }
    return SHOAL_OK;
}

/* Secret and config references: id and name, a file name, and no two
 * references on one target file. */
static int
refs_valid(const struct shoal_container_spec *cs, char *msg, size_t len)
{
    for (size_t i = 0; i < cs->n_secrets; i++) {
        const struct shoal_secret_ref *ref = &cs->secrets[i];

        if (!ref->secret_id || !*ref->secret_id || !ref->secret_name ||
            !*ref->secret_name) {
            return spec_fail(msg, len, "malformed secret reference");
        }
        if (!ref->file.name || !*ref->file.name) {
            return spec_fail(msg, len,
                             "malformed file secret reference, invalid "
                             "target file name provided");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cs->secrets[j].file.name, ref->file.name) == 0) {
                return spec_fail(msg, len,
                                 "secret references '%s' and '%s' have a "
                                 "conflict on target '%s'",
                                 cs->secrets[j].secret_name, ref->secret_name,
                                 ref->file.name);
            }
        }
    }
    for (size_t i = 0; i < cs->n_configs; i++) {
        const struct shoal_config_ref *ref = &cs->configs[i];

        if (!ref->config_id || !*ref->config_id || !ref->config_name ||
            !*ref->config_name) {
            return spec_fail(msg, len, "malformed config reference");
        }
        if (!ref->file.name || !*ref->file.name) {
            return spec_fail(msg, len,
                             "malformed file config reference, invalid "
                             "target file name provided");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cs->configs[j].file.name, ref->file.name) == 0) {
                return spec_fail(msg, len,
                                 "config references '%s' and '%s' have a "
                                 "conflict on target '%s'",
                                 cs->configs[j].config_name, ref->config_name,
                                 ref->file.name);
            }
        }
    }
    return SHOAL_OK;
}

static int
healthcheck_valid(const struct shoal_healthcheck *hc, char *msg, size_t len)
{
    const struct {
        const char *name;
        int64_t v;
    } durs[] = {{"Interval", hc->interval},
                {"Timeout", hc->timeout},
                {"StartPeriod", hc->start_period}};

    for (size_t i = 0; i < ARRAY_LEN(durs); i++) {
        if (durs[i].v != 0 && durs[i].v < CONTROL_NS_PER_MS) {
            return spec_fail(msg, len,
                             "ContainerSpec: %s in HealthConfig cannot be "
                             "less than 1ms",
                             durs[i].name);
        }
    }
    if (hc->retries < 0) {
        return spec_fail(msg, len,
                         "ContainerSpec: Retries in HealthConfig cannot be "
                         "negative");
    }
    return SHOAL_OK;
}

/* TODO(#2): SwarmKit first expands the container spec's templates
 * ({{.Service.Name}}...) with dummy values and refuses a bad template;
 * shoal expands no templates yet, so a malformed one is accepted. Port
 * the expansion when tasks are built from templates. */
static int
container_valid(const struct shoal_container_spec *cs, char *msg, size_t len)
{
    int code = control_image_ref(cs->image, msg, len);

    if (code != SHOAL_OK) {
        return code;
    }
    for (size_t i = 0; i < cs->n_mounts; i++) {
        const char *target = cs->mounts[i].target ? cs->mounts[i].target : "";

        for (size_t j = 0; j < i; j++) {
            const char *other = cs->mounts[j].target;

            if (strcmp(other ? other : "", target) == 0) {
                return spec_fail(msg, len,
                                 "ContainerSpec: duplicate mount point: %s",
                                 target);
            }
        }
    }
    return cs->healthcheck ? healthcheck_valid(cs->healthcheck, msg, len)
                           : SHOAL_OK;
}

static int
task_spec_valid(const struct shoal_task_spec *t, char *msg, size_t len)
{
    int code;

    code = resources_valid(&t->resources.limits, msg, len);
    if (code == SHOAL_OK) {
        code = resources_valid(&t->resources.reservations, msg, len);
    }
    if (code != SHOAL_OK) {
        return code;
    }
    if (t->restart && t->restart->delay < 0) {
        return spec_fail(msg, len,
                         "TaskSpec: restart-delay cannot be "
                         "negative");
    }
    if (t->restart && t->restart->window < 0) {
        return spec_fail(msg, len,
                         "TaskSpec: restart-window cannot be "
                         "negative");
    }
    for (size_t i = 0; i < t->placement.constraints.n; i++) {
        code = control_constraint(t->placement.constraints.v[i], msg, len);
        if (code != SHOAL_OK) {
            return code;
        }
    }
    if (t->container) {
        code = refs_valid(t->container, msg, len);
        if (code != SHOAL_OK) {
            return code;
        }
    }
    if (!t->container) {
        return spec_fail(msg, len, "TaskSpec: missing runtime");
    }
    return container_valid(t->container, msg, len);
}

static int
mode_valid(const struct shoal_service_mode *m, char *msg, size_t len)
{
    switch (m->kind) {
    case SHOAL_MODE_REPLICATED:
        if (m->replicas < 0) {
            return spec_fail(msg, len,
                             "Number of replicas must be non-negative");
        }
        return SHOAL_OK;
    case SHOAL_MODE_REPLICATED_JOB:
        if (m->max_concurrent < 0) {
            return spec_fail(msg, len,
                             "Maximum concurrent jobs must not be negative");
        }
        if (m->total_completions < 0) {
            return spec_fail(msg, len,
                             "Total completed jobs must not be negative");
        }
        return SHOAL_OK;
    case SHOAL_MODE_GLOBAL:
    case SHOAL_MODE_GLOBAL_JOB:
        return SHOAL_OK;
    default:
        return spec_fail(msg, len, "Unrecognized service mode");
    }
}

static bool
mode_is_job(uint32_t kind)
{
    return kind == SHOAL_MODE_REPLICATED_JOB || kind == SHOAL_MODE_GLOBAL_JOB;
}

/* The ratio must lie in [0, 1]; unlike SwarmKit a NaN is refused too. */
static int
update_config_valid(const struct shoal_update_config *uc, const char *what,
                    char *msg, size_t len)
{
    if (!uc) {
        return SHOAL_OK;
    }
    if (uc->delay < 0) {
        return spec_fail(msg, len, "TaskSpec: %s-delay cannot be negative",
                         what);
    }
    if (uc->monitor < 0) {
        return spec_fail(msg, len, "TaskSpec: %s-monitor cannot be negative",
                         what);
    }
    if (!(uc->max_failure_ratio >= 0 && uc->max_failure_ratio <= 1)) {
        return spec_fail(msg, len,
                         "TaskSpec: %s-maxfailureratio cannot be less than 0 "
                         "or bigger than 1",
                         what);
    }
    return SHOAL_OK;
}

static int
endpoint_valid(const struct shoal_endpoint_spec *ep, char *msg, size_t len)
{
    if (!ep) {
        return SHOAL_OK;
    }
    for (size_t i = 0; i < ep->n_ports; i++) {
        const struct shoal_port_config *p = &ep->ports[i];

        if (ep->mode == SHOAL_ENDPOINT_DNSRR &&
            p->publish_mode == SHOAL_PUBLISH_INGRESS) {
            return spec_fail(msg, len,
                             "EndpointSpec: port published with ingress "
                             "mode can't be used with dnsrr mode");
        }
        if (p->published_port == 0) {
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (ep->ports[j].published_port == p->published_port &&
                ep->ports[j].protocol == p->protocol) {
                return spec_fail(msg, len,
                                 "EndpointSpec: duplicate published ports "
                                 "provided");
            }
        }
    }
    return SHOAL_OK;
}

int
control_service_spec_valid(const struct shoal_service_spec *spec, char *msg,
                           size_t msg_len)
{
    int code;

    if (!spec) {
        return spec_fail(msg, msg_len,
                         "invalid argument: spec must be "
                         "provided");
    }
    code = control_name_rule_a(spec->annotations.name, msg, msg_len);
    if (code == SHOAL_OK) {
        code = task_spec_valid(&spec->task, msg, msg_len);
    }
    if (code == SHOAL_OK) {
        code = mode_valid(&spec->mode, msg, msg_len);
    }
    if (code != SHOAL_OK) {
        return code;
    }
    if (mode_is_job(spec->mode.kind) && spec->update) {
        return spec_fail(msg, msg_len, "jobs may not have an update config");
    }
    code = update_config_valid(spec->update, "update", msg, msg_len);
    if (code == SHOAL_OK) {
        code = update_config_valid(spec->rollback, "rollback", msg, msg_len);
    }
    if (code == SHOAL_OK) {
        code = endpoint_valid(spec->endpoint, msg, msg_len);
    }
    return code;
}

/* Defaults (SwarmKit's api/defaults). */

static struct shoal_update_config *
default_update_config(void)
{
    struct shoal_update_config *uc = calloc(1, sizeof *uc);

    if (uc) {
        uc->parallelism = 1;
        uc->failure_action = SHOAL_FAILURE_PAUSE;
        uc->monitor = 5 * CONTROL_NS_PER_S;
        uc->order = SHOAL_ORDER_STOP_FIRST;
    }
    return uc;
}

/*
 * Absent parts get SwarmKit's defaults. In shoal a zero duration cannot
 * be told from an unset one, so a zero stop grace period shows as 10s.
 */
int
control_service_defaults(struct shoal_service_spec *spec)
{
    if (spec->task.container && spec->task.container->stop_grace_period == 0) {
        spec->task.container->stop_grace_period = 10 * CONTROL_NS_PER_S;
    }
    if (!spec->task.restart) {
        spec->task.restart = calloc(1, sizeof *spec->task.restart);
        if (!spec->task.restart) {
            return ERR_NOMEM;
        }
        spec->task.restart->condition = SHOAL_RESTART_ANY;
        spec->task.restart->delay = 5 * CONTROL_NS_PER_S;
    }
    if (!spec->update) {
        spec->update = default_update_config();
    }
    if (!spec->rollback) {
        spec->rollback = default_update_config();
    }
    return spec->update && spec->rollback ? 0 : ERR_NOMEM;
}

/* Requests. */

static int
spec_check(struct control_out *out, const struct shoal_service_spec *spec)
{
    char msg[sizeof out->message];
    int code = control_service_spec_valid(spec, msg, sizeof msg);

    if (code != SHOAL_OK) {
        control_fail(out, code, "%s", msg);
    }
    return code;
}

static int
service_create(struct control *c, const struct shoal_create_service_request *r,
               struct control_out *out)
{
    struct shoal_service *svc;
    char id[ID_LEN + 1];
    int64_t now = time_now_ns();
    int rc;

    if (spec_check(out, r->spec) != SHOAL_OK) {
        return 0;
    }
    if (store_get_by_name(c->store, SHOAL_KIND_SERVICE,
                          r->spec->annotations.name)) {
        return control_fail(out, SHOAL_ALREADY_EXISTS,
                            "name conflicts with an existing object: "
                            "service %s already exists",
                            r->spec->annotations.name);
    }
    if (id_new(id) != 0) {
        return control_fail(out, SHOAL_INTERNAL, "no random source for ids");
    }

    svc = calloc(1, sizeof *svc);
    if (!svc) {
        return ERR_NOMEM;
    }
    svc->id = str_dup(id);
    svc->meta.created_at = now;
    svc->meta.updated_at = now;
    if (!svc->id || wire_copy(&wire_type_service_spec, &svc->spec, r->spec)) {
        control_obj_free(SHOAL_KIND_SERVICE, svc);
        return ERR_NOMEM;
    }
    if (mode_is_job(svc->spec.mode.kind)) {
        svc->job_status = calloc(1, sizeof *svc->job_status);
        if (!svc->job_status) {
            control_obj_free(SHOAL_KIND_SERVICE, svc);
            return ERR_NOMEM;
        }
        svc->job_status->last_execution = now;
    }
    rc = control_propose(out, SHOAL_ACTION_CREATE, SHOAL_KIND_SERVICE, svc);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_SERVICE, id);
    return control_precheck(c, out);
}

/* Swap the current and previous specs, and their versions. */
static int
service_rollback(struct shoal_service *svc, int64_t now)
{
    struct shoal_service_spec cur = svc->spec;
    uint64_t cur_version = svc->spec_version;

    svc->spec = *svc->previous_spec;
    *svc->previous_spec = cur;
    svc->spec_version = svc->previous_spec_version;
    svc->previous_spec_version = cur_version;

    if (!svc->update_status) {
        svc->update_status = calloc(1, sizeof *svc->update_status);
        if (!svc->update_status) {
            return ERR_NOMEM;
        }
    }
    wire_free(&wire_type_update_status, svc->update_status);
    svc->update_status->state = SHOAL_UPDATE_ROLLBACK_STARTED;
    svc->update_status->started_at = now;
    svc->update_status->message = str_dup("manually requested rollback");
    return svc->update_status->message ? 0 : ERR_NOMEM;
}

/* The old spec becomes the previous one; the new spec is versioned by the
 * version the client based it on. */
static int
service_respec(struct shoal_service *svc,
               const struct shoal_update_service_request *r)
{
    if (!svc->previous_spec) {
        svc->previous_spec = calloc(1, sizeof *svc->previous_spec);
        if (!svc->previous_spec) {
            return ERR_NOMEM;
        }
    }
    wire_free(&wire_type_service_spec, svc->previous_spec);
    *svc->previous_spec = svc->spec;
    memset(&svc->spec, 0, sizeof svc->spec);
    svc->previous_spec_version = svc->spec_version;
    svc->spec_version = r->version;
    if (svc->update_status) {
        wire_free(&wire_type_update_status, svc->update_status);
        free(svc->update_status);
        svc->update_status = NULL;
    }
    return wire_copy(&wire_type_service_spec, &svc->spec, r->spec);
}

static int
service_update(struct control *c, const struct shoal_update_service_request *r,
               struct control_out *out)
{
    const struct shoal_service *cur;
    struct shoal_service *svc;
    int64_t now = time_now_ns();
    int rc;

    if (!r->id || !*r->id) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: service id must be provided");
    }
    if (r->version == 0) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: a version (1 or more) must be "
                            "provided");
    }
    if (spec_check(out, r->spec) != SHOAL_OK) {
        return 0;
    }
    cur = control_lookup(c, out, SHOAL_KIND_SERVICE, r->id);
    if (!cur || !control_version_ok(out, r->version, cur->meta.version)) {
        return 0;
    }
    if (cur->spec.mode.kind != r->spec->mode.kind) {
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "service mode change is not allowed");
    }
    if (strcmp(cur->spec.annotations.name, r->spec->annotations.name) != 0) {
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "renaming services is not supported");
    }
    if (r->rollback && !cur->previous_spec) {
        return control_fail(out, SHOAL_FAILED_PRECONDITION,
                            "service %s does not have a previous spec", r->id);
    }

    svc = control_dup(SHOAL_KIND_SERVICE, cur);
    if (!svc) {
        return ERR_NOMEM;
    }
    rc = r->rollback ? service_rollback(svc, now) : service_respec(svc, r);
    if (rc == 0 && svc->job_status) {
        svc->job_status->job_iteration++;
        svc->job_status->last_execution = now;
    }
    if (rc != 0) {
        control_obj_free(SHOAL_KIND_SERVICE, svc);
        return rc;
    }
    svc->meta.version = r->version;
    svc->meta.updated_at = now;
    rc = control_propose(out, SHOAL_ACTION_UPDATE, SHOAL_KIND_SERVICE, svc);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_SERVICE, r->id);
    return control_precheck(c, out);
}

static int
service_get(struct control *c, const struct shoal_id_request *r,
            struct control_out *out)
{
    const struct shoal_service *cur;
    int rc;

    cur = control_lookup(c, out, SHOAL_KIND_SERVICE, r->id);
    if (!cur) {
        return 0;
    }
    rc = control_reply_copy(c, out, SHOAL_KIND_SERVICE, cur);
    if (rc == 0 && r->insert_defaults) {
        rc = control_service_defaults(
            &((struct shoal_service *)out->reply)->spec);
    }
    return rc;
}

/* Service statuses (SWARMKIT.md 1.3, ListServiceStatuses). */

struct status_count {
    const struct shoal_service *svc;
    struct shoal_service_status *st;
};

static int
status_visit(const void *obj, void *arg)
{
    const struct shoal_task *t = obj;
    struct status_count *sc = arg;
    const struct shoal_service *s = sc->svc;
    bool global = s->spec.mode.kind == SHOAL_MODE_GLOBAL ||
                  s->spec.mode.kind == SHOAL_MODE_GLOBAL_JOB;

    if (!t->service_id || strcmp(t->service_id, s->id) != 0) {
        return 0;
    }
    if (s->job_status && t->job_iteration != s->job_status->job_iteration) {
        return 0;
    }
    if (t->status.state == SHOAL_TASK_RUNNING) {
        sc->st->running++;
    }
    if (mode_is_job(s->spec.mode.kind) &&
        t->status.state == SHOAL_TASK_COMPLETE) {
        sc->st->completed++;
    }
    if (global && (t->desired_state == SHOAL_TASK_RUNNING ||
                   (t->desired_state == SHOAL_TASK_COMPLETE &&
                    t->status.state != SHOAL_TASK_COMPLETE))) {
        sc->st->desired++;
    }
    return 0;
}

static int
status_fill(struct control *c, const char *id, struct shoal_service_status *st)
{
    struct store_query q = {.by = STORE_BY_SERVICE, .str = id};
    struct status_count sc;
    int rc;

    st->service_id = str_dup(id);
    if (!st->service_id) {
        return ERR_NOMEM;
    }
    sc.svc = store_get(c->store, SHOAL_KIND_SERVICE, id);
    sc.st = st;
    if (!sc.svc) {
        return 0;
    }
    if (sc.svc->spec.mode.kind == SHOAL_MODE_REPLICATED) {
        st->desired = (uint64_t)sc.svc->spec.mode.replicas;
    } else if (sc.svc->spec.mode.kind == SHOAL_MODE_REPLICATED_JOB) {
        st->desired = (uint64_t)sc.svc->spec.mode.max_concurrent;
    }
    rc = store_find(c->store, SHOAL_KIND_TASK, &q, status_visit, &sc);
    if (rc == ERR_PROTO) {
        q.by = STORE_BY_ALL;
        rc = store_find(c->store, SHOAL_KIND_TASK, &q, status_visit, &sc);
    }
    return rc;
}

static int
service_statuses(struct control *c,
                 const struct shoal_service_statuses_request *r,
                 struct control_out *out)
{
    struct shoal_service_statuses_reply *rep = calloc(1, sizeof *rep);
    int rc = 0;

    if (!rep) {
        return ERR_NOMEM;
    }
    if (r->service_ids.n > 0) {
        rep->statuses = calloc(r->service_ids.n, sizeof *rep->statuses);
        if (!rep->statuses) {
            free(rep);
            return ERR_NOMEM;
        }
        rep->n_statuses = r->service_ids.n;
    }
    for (size_t i = 0; rc == 0 && i < r->service_ids.n; i++) {
        rc = status_fill(c, r->service_ids.v[i], &rep->statuses[i]);
    }
    if (rc != 0) {
        wire_free(&wire_type_service_statuses_reply, rep);
        free(rep);
        return ERR_NOMEM;
    }
    out->code = SHOAL_OK;
    out->reply_type = &wire_type_service_statuses_reply;
    out->reply = rep;
    return 0;
}

int
control_service_handle(struct control *c, uint16_t type, const void *req,
                       struct control_out *out)
{
    switch (type) {
    case WIRE_MSG_CREATE_SERVICE:
        return service_create(c, req, out);
    case WIRE_MSG_GET_SERVICE:
        return service_get(c, req, out);
    case WIRE_MSG_UPDATE_SERVICE:
        return service_update(c, req, out);
    case WIRE_MSG_REMOVE_SERVICE:
        return control_remove_by_id(c, out, SHOAL_KIND_SERVICE,
                                    ((const struct shoal_id_request *)req)->id);
    case WIRE_MSG_LIST_SERVICE_STATUSES:
        return service_statuses(c, req, out);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "unknown service request %u", (unsigned)type);
    }
}
