/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * cmd_top.c: the commands without a noun: `shoalctl watch`, `stats` and
 * `version`.
 *
 * watch prints one line per event as it arrives (flushed at once, so a
 * pipe sees it) and runs until the daemon ends the stream or the user
 * interrupts it. Lines carry the version, so that a restarted watch can
 * resume with --since.
 */
#include "ctl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/json.h"

/* --action values, comma-separated or repeated, into a mask. */
static int
watch_actions(const struct ctl_args *a, uint32_t *mask)
{
    static const char *const names[] = {"create", "update", "remove"};
    const char *v;
    size_t it = 0;

    *mask = 0;
    while ((v = ctl_arg_next(a, "action", &it))) {
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            uint32_t bit = 0;

            for (size_t i = 0; i < ARRAY_LEN(names); i++) {
                if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0) {
                    bit = 1u << i;
                }
            }
            if (!bit) {
                return ctl_usage(a->cmd, "invalid --action \"%s\": use "
                                         "create, update or remove", v);
            }
            *mask |= bit;
            p += n + (p[n] == ',');
        }
    }
    return 0;
}

static int
add_selector(struct shoal_watch_request *req, enum shoal_kind kind,
             uint32_t actions)
{
    struct shoal_watch_selector *s;

    s = realloc(req->selectors, (req->n_selectors + 1) * sizeof *s);
    if (!s) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    req->selectors = s;
    s[req->n_selectors++] = (struct shoal_watch_selector){
        .kind = kind,
        .actions = actions,
    };
    return 0;
}

/* One selector per --kind, or per kind when none is given. */
static int
watch_request(const struct ctl_args *a, struct shoal_watch_request *req)
{
    uint32_t actions;
    const char *v, *since = ctl_arg(a, "since");
    size_t it = 0;
    int rc = watch_actions(a, &actions);

    if (rc == 0 && since && ctl_parse_u64(since, &req->resume_from) != 0) {
        rc = ctl_usage(a->cmd, "invalid --since \"%s\": expected a "
                               "version", since);
    }
    while (rc == 0 && (v = ctl_arg_next(a, "kind", &it))) {
        enum shoal_kind k = wire_kind_parse(v);

        rc = k == SHOAL_KIND_NONE
                 ? ctl_usage(a->cmd, "unknown --kind \"%s\"", v)
                 : add_selector(req, k, actions);
    }
    for (int k = SHOAL_KIND_NODE; rc == 0 && !ctl_flag(a, "kind") &&
                                  k < SHOAL_KIND_COUNT;
         k++) {
        rc = add_selector(req, (enum shoal_kind)k, actions);
    }
    return rc;
}

static void
print_event_json(const struct shoal_watch_event *e, enum shoal_kind kind,
                 void *obj, uint64_t version)
{
    json_t *j = json_object();

    if (!j) {
        return;
    }
    json_object_set_new(j, "version", json_integer((json_int_t)version));
    json_object_set_new(j, "action", json_string(ctl_action_name(e->action)));
    json_object_set_new(j, "kind", json_string(wire_kind_name(kind)));
    json_object_set_new(j, "id", json_string(wire_object_id(kind, obj)));
    json_object_set_new(j, "name", json_string(ctl_object_name(kind, obj)));
    json_object_set_new(j, "object", wire_to_json(wire_kind_type(kind), obj));
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
}

static void
print_message(struct ctl *ctl, struct shoal_watch_message *m)
{
    for (size_t i = 0; i < m->n_events; i++) {
        struct shoal_watch_event *e = &m->events[i];
        void *obj;
        enum shoal_kind kind = wire_object_kind(&e->object, &obj);

        if (kind == SHOAL_KIND_NONE) {
            continue; /* an event this client cannot show */
        }
        ctl_redact(kind, obj);
        if (e->old_object) {
            wire_free(&wire_type_object, e->old_object);
        }
        if (ctl->quiet) {
            printf("%s\n", wire_object_id(kind, obj));
        } else if (ctl->output == CTL_OUT_JSON) {
            print_event_json(e, kind, obj, m->version);
        } else {
            printf("%" PRIu64 " %s %s %s %s\n", m->version,
                   ctl_action_name(e->action), wire_kind_name(kind),
                   wire_object_id(kind, obj), ctl_object_name(kind, obj));
        }
    }
    fflush(stdout);
}

static int
watch_loop(struct ctl *ctl, uint64_t stream)
{
    for (;;) {
        struct shoal_watch_message m = {0};
        int rc = shoal_watch_next(ctl->client, stream, &m, &ctl->err);

        if (rc == 1) {
            return CTL_EXIT_OK;
        }
        if (rc != 0) {
            if (ctl->err.resume_from) {
                fprintf(stderr, "resume with: shoalctl watch --since %" PRIu64
                                "\n", ctl->err.resume_from);
            }
            return ctl_fail(ctl, rc);
        }
        print_message(ctl, &m);
        wire_free(&wire_type_watch_message, &m);
    }
}

static int
cmd_watch(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_watch_request req = {0};
    uint64_t stream;
    int rc = watch_request(a, &req);

    if (rc == 0) {
        rc = ctl_connect(ctl);
        rc = rc == 0 ? shoal_watch_start(ctl->client, &req, &stream,
                                         &ctl->err)
                     : rc;
        rc = rc == 0 ? watch_loop(ctl, stream) : ctl_fail(ctl, rc);
    }
    wire_free(&wire_type_watch_request, &req);
    return rc;
}

/* Stats: every counter, zeros included (the JSON printer leaves zeros
 * out, which would make a counter look missing). */
#define STAT(f) {#f, offsetof(struct shoal_stats_reply, f)}

static const struct {
    const char *name;
    size_t off;
} stat_fields[] = {
    STAT(applied_index), STAT(log_first_index), STAT(log_last_index),
    STAT(proposals),     STAT(entries_written), STAT(fsyncs),
    STAT(requests),      STAT(connections),     STAT(watchers),
    STAT(lmdb_flushes),  STAT(objects),
};

static uint64_t
stat_value(const struct shoal_stats_reply *s, size_t i)
{
    uint64_t v;

    memcpy(&v, (const uint8_t *)s + stat_fields[i].off, sizeof v);
    return v;
}

static int
print_stats(struct ctl *ctl, const struct shoal_stats_reply *s)
{
    json_t *j;

    if (ctl->output == CTL_OUT_TABLE) {
        for (size_t i = 0; i < ARRAY_LEN(stat_fields); i++) {
            printf("%-16s %" PRIu64 "\n", stat_fields[i].name,
                   stat_value(s, i));
        }
        return CTL_EXIT_OK;
    }
    j = json_object();
    for (size_t i = 0; j && i < ARRAY_LEN(stat_fields); i++) {
        json_object_set_new(j, stat_fields[i].name,
                            json_integer((json_int_t)stat_value(s, i)));
    }
    return ctl_json_print(j);
}

static int
cmd_stats(struct ctl *ctl, const struct ctl_args *a)
{
    struct shoal_stats_reply s = {0};
    int rc = ctl_call(ctl, WIRE_MSG_STATS, NULL, &s);

    (void)a;
    if (rc != 0) {
        return ctl_fail(ctl, rc);
    }
    rc = print_stats(ctl, &s);
    wire_free(&wire_type_stats_reply, &s);
    return rc;
}

static const char *
or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static int
version_json(const struct shoal_hello_reply *h)
{
    json_t *j = json_pack("{s:{s:s,s:s,s:i}}", "client", "version",
                          SHOAL_VERSION, "git_revision", SHOAL_GITREV,
                          "protocol", WIRE_PROTO_VERSION);

    if (j && h) {
        json_object_set_new(j, "server", wire_to_json(&wire_type_hello_reply,
                                                      h));
    }
    return ctl_json_print(j);
}

static void
version_text(const struct shoal_hello_reply *h)
{
    printf("Client:\n version:      %s\n git revision: %s\n protocol:     "
           "%d\n", SHOAL_VERSION, SHOAL_GITREV, WIRE_PROTO_VERSION);
    if (h) {
        printf("Server:\n version:      %s\n protocol:     %u\n node:        "
               " %s\n cluster:      %s\n leader:       %s\n",
               or_dash(h->server_version), h->proto, or_dash(h->node_id),
               or_dash(h->cluster_id), or_dash(h->leader_id));
    }
}

/* The client's version always; the server's when it answers (else the
 * exit status says it did not). */
static int
cmd_version(struct ctl *ctl, const struct ctl_args *a)
{
    int rc = ctl_connect(ctl);
    const struct shoal_hello_reply *h =
        rc == 0 ? shoal_server_hello(ctl->client) : NULL;
    int out;

    (void)a;
    if (ctl->output == CTL_OUT_JSON) {
        out = version_json(h);
    } else {
        version_text(h);
        out = CTL_EXIT_OK;
    }
    return rc != 0 ? ctl_fail(ctl, rc) : out;
}

static const struct ctl_opt watch_opts[] = {
    {"kind", 0, "KIND",
     "node, service, task, network, cluster, secret or config (repeatable)"},
    {"action", 0, "ACTIONS", "create, update, remove (comma-separated)"},
    {"since", 0, "VERSION", "first replay the changes after VERSION"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt no_opts[] = {{NULL, 0, NULL, NULL}};

const struct ctl_cmd ctl_cmds_top[] = {
    {NULL, "watch", NULL, "", 0, 0, "print changes as they are committed",
     watch_opts, cmd_watch},
    {NULL, "stats", NULL, "", 0, 0, "print the manager's counters", no_opts,
     cmd_stats},
    {NULL, "version", NULL, "", 0, 0, "print client and server versions",
     no_opts, cmd_version},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL},
};
