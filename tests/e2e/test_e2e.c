/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_e2e.c: one real manager, driven as a user would: through shoalctl
 * and libshoal, killed with SIGKILL, fed garbage.
 *
 * Each test starts its own shoald (sanitized build) in its own temporary
 * directory and stops it at the end. Outputs are checked for what a
 * person reads: exit codes, names, versions, the reason in a message.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/fx.h"
#include "shoal/client.h"
#include "shoal/wire.h"

static struct fx_daemon d;

static void
e2e_setup(void)
{
    fx_daemon_prepare(&d);
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "shoald did not start: %s",
                 d.log);
}

static void
e2e_teardown(void)
{
    /* A clean stop, and nothing the sanitizers or asserts reported. */
    int st = fx_daemon_stop(&d, SIGTERM);
    char *log = fx_read_file(d.log);

    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "shoald did not exit cleanly on SIGTERM: status %d", st);
    cr_expect(!log || (!strstr(log, "AddressSanitizer") &&
                       !strstr(log, "runtime error") &&
                       !strstr(log, "assertion failed")),
              "shoald reported a fault:\n%s", log ? log : "");
    free(log);
    fx_daemon_cleanup(&d);
}

TestSuite(e2e, .init = e2e_setup, .fini = e2e_teardown, .timeout = 120);

/* Run shoalctl, expect an exit status, and return the run for checks. */
#define CTL(r, in, want, ...)                                              \
    do {                                                                   \
        fx_ctl(&d, in, r, __VA_ARGS__, NULL);                              \
        cr_assert_eq((r)->status, want,                                    \
                     "shoalctl " #__VA_ARGS__ " exited %d, want %d\n"      \
                     "stdout: %s\nstderr: %s",                             \
                     (r)->status, want, (r)->out, (r)->err);               \
    } while (0)

/* Parse stdout of a `-o json` run. */
static json_t *
json_of(const struct fx_run *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);

    cr_assert(j, "not JSON (%s): %s", e.text, r->out);
    return j;
}

static json_int_t
replicas_of(const char *service)
{
    struct fx_run r;
    json_t *j;
    json_int_t n;

    CTL(&r, NULL, 0, "-o", "json", "service", "inspect", service);
    j = json_of(&r);
    n = json_integer_value(json_object_get(
        json_object_get(json_object_get(j, "spec"), "mode"), "replicas"));
    json_decref(j);
    fx_run_free(&r);
    return n;
}

/* A service goes through create, list, inspect, update, scale, rollback
 * and remove, each visible to the next command. */
Test(e2e, service_lifecycle)
{
    struct fx_run r;

    CTL(&r, NULL, 0, "service", "create", "--name", "web", "--image",
        "nginx:1.25", "--replicas", "2");
    cr_expect(strlen(r.out) >= 25, "create prints the id: %s", r.out);
    fx_run_free(&r);

    CTL(&r, NULL, 0, "service", "ls");
    cr_expect(strstr(r.out, "web") && strstr(r.out, "nginx:1.25"),
              "ls shows the service: %s", r.out);
    fx_run_free(&r);

    CTL(&r, NULL, 0, "service", "update", "web", "--image", "nginx:1.26");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "service", "scale", "web=5");
    fx_run_free(&r);
    cr_expect_eq(replicas_of("web"), 5);

    /* Rollback returns to the spec before the last update. */
    CTL(&r, NULL, 0, "service", "rollback", "web");
    fx_run_free(&r);
    cr_expect_eq(replicas_of("web"), 2);
    CTL(&r, NULL, 0, "-o", "json", "service", "inspect", "web");
    cr_expect(strstr(r.out, "nginx:1.26"), "rollback kept the image "
              "of the previous spec: %s", r.out);
    fx_run_free(&r);

    CTL(&r, NULL, 0, "service", "rm", "web");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "service", "ls", "-q");
    cr_expect_eq(strlen(r.out), 0, "removed service still listed: %s",
                 r.out);
    fx_run_free(&r);
    CTL(&r, NULL, 3, "service", "inspect", "web");
    fx_run_free(&r);
}

#define SECRET_TEXT "tiger-lily-4471-payload"

/* Objects in use cannot be removed; once free they can; the secret's
 * data shows up nowhere. */
Test(e2e, networks_secrets_configs)
{
    struct fx_run r;
    char path[300];
    FILE *f;

    CTL(&r, NULL, 0, "network", "create", "--name", "backend");
    fx_run_free(&r);
    CTL(&r, SECRET_TEXT, 0, "secret", "create", "db-pass");
    fx_run_free(&r);
    snprintf(path, sizeof path, "%s/conf.txt", d.dir);
    f = fopen(path, "w");
    cr_assert(f);
    fputs("listen 80;\n", f);
    fclose(f);
    CTL(&r, NULL, 0, "config", "create", "site", path);
    fx_run_free(&r);

    CTL(&r, NULL, 0, "service", "create", "--name", "api", "--image",
        "busybox", "--secret", "db-pass", "--config", "site", "--network",
        "backend");
    fx_run_free(&r);

    CTL(&r, NULL, 1, "network", "rm", "backend");
    cr_expect(strstr(r.err, "in use"), "says why: %s", r.err);
    fx_run_free(&r);
    CTL(&r, NULL, 1, "secret", "rm", "db-pass");
    cr_expect(strstr(r.err, "in use"), "says why: %s", r.err);
    fx_run_free(&r);
    CTL(&r, NULL, 1, "config", "rm", "site");
    fx_run_free(&r);

    const char *reads[][6] = {
        {"secret", "inspect", "db-pass", NULL},
        {"-o", "json", "secret", "inspect", "db-pass", NULL},
        {"-o", "json", "secret", "ls", NULL},
        {"secret", "ls", NULL},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        size_t n = 0;

        while (reads[i][n]) {
            n++;
        }
        fx_ctlv(&d, NULL, &r, reads[i], n);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect(!strstr(r.out, SECRET_TEXT) && !strstr(r.err, SECRET_TEXT),
                  "secret data leaked by read %zu", i);
        fx_run_free(&r);
    }

    CTL(&r, NULL, 0, "service", "rm", "api");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "secret", "rm", "db-pass");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "config", "rm", "site");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "network", "rm", "backend");
    fx_run_free(&r);
    cr_expect(!fx_file_contains(d.log, SECRET_TEXT), "secret in the log");
}

/* The reference's rejections, each with its exit code and its reason. */
Test(e2e, rejections_say_why)
{
    struct fx_run r;

    CTL(&r, NULL, 0, "service", "create", "--name", "web", "--image",
        "nginx", "--publish", "8080:80");
    fx_run_free(&r);

    CTL(&r, NULL, 7, "service", "create", "--name", "WEB", "--image",
        "nginx");
    cr_expect(strstr(r.err, "already exists"), "%s", r.err);
    fx_run_free(&r);

    CTL(&r, NULL, 1, "service", "create", "--name", "-web", "--image",
        "nginx");
    cr_expect(strstr(r.err, "name"), "%s", r.err);
    fx_run_free(&r);

    CTL(&r, NULL, 1, "service", "create", "--name", "other", "--image",
        "nginx", "--publish", "8080:81");
    cr_expect(strstr(r.err, "8080") && strstr(r.err, "in use"), "%s",
              r.err);
    fx_run_free(&r);

    CTL(&r, NULL, 1, "service", "create", "--name", "tiny", "--image",
        "nginx", "--limit-memory", "1MiB");
    cr_expect(strstr(r.err, "memory") || strstr(r.err, "Memory"), "%s",
              r.err);
    fx_run_free(&r);

    fx_ctl(&d, NULL, &r, "service", "create", "--name", "neg", "--image",
           "nginx", "--replicas", "-1", NULL);
    cr_expect(r.status == 1 || r.status == 2,
              "negative replicas refused, status %d", r.status);
    cr_expect(strstr(r.err, "replicas"), "%s", r.err);
    fx_run_free(&r);

    CTL(&r, NULL, 1, "service", "create", "--name", "bad", "--image",
        "busybox###");
    cr_expect(strstr(r.err, "image") || strstr(r.err, "reference"), "%s",
              r.err);
    fx_run_free(&r);

    CTL(&r, NULL, 3, "network", "rm", "no-such-network");
    fx_run_free(&r);
}

static struct shoal_client *
e2e_connect(void)
{
    struct shoal_client *c = NULL;
    struct shoal_error err = {0};
    int rc = shoal_connect(&c, d.sock, 10000, "e2e", &err);

    cr_assert_eq(rc, 0, "connect: %s", err.message);
    return c;
}

/* An update based on an older version is refused as a conflict that names
 * the current version, and changes nothing. */
Test(e2e, stale_version_is_a_conflict)
{
    struct shoal_client *c = e2e_connect();
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request cr = {.spec = &spec};
    struct shoal_config created = {0};
    struct shoal_config updated = {0};
    struct shoal_config again = {0};
    struct shoal_update_config_request ur = {0};
    struct shoal_error err = {0};
    int rc;

    spec.annotations.name = "app";
    spec.data = (struct shoal_bytes){(uint8_t *)"x=1", 3};
    cr_assert_eq(shoal_call(c, WIRE_MSG_CREATE_CONFIG, &cr, &created, &err),
                 0, "%s", err.message);

    ur.id = created.id;
    ur.version = created.meta.version;
    ur.spec = &created.spec;
    wire_map_set(&created.spec.annotations.labels, "tier", "one");
    cr_assert_eq(shoal_call(c, WIRE_MSG_UPDATE_CONFIG, &ur, &updated, &err),
                 0, "%s", err.message);
    cr_expect_gt(updated.meta.version, created.meta.version);

    rc = shoal_call(c, WIRE_MSG_UPDATE_CONFIG, &ur, &again, &err);
    cr_expect_eq(rc, -SHOAL_CONFLICT, "stale update: %d %s", rc,
                 err.message);
    cr_expect_eq(err.current_version, updated.meta.version);

    wire_free(&wire_type_config, &again);
    wire_free(&wire_type_config, &updated);
    wire_free(&wire_type_config, &created);
    shoal_close(c);
}

struct acked {
    char id[64];
    uint64_t version;
};

/* Send creates pipelined, and after `kill_after` acknowledgements kill
 * the daemon with SIGKILL while more are in flight. Returns the count of
 * acknowledged writes, stored in acks. */
static size_t
write_until_killed(struct acked *acks, size_t kill_after)
{
    struct shoal_client *c = e2e_connect();
    struct shoal_error err = {0};
    size_t sent = 0;
    size_t n = 0;
    bool killed = false;

    for (;;) {
        struct shoal_frame f = {0};
        struct shoal_config cfg = {0};

        while (!killed && sent - n < 32) {
            struct shoal_config_spec spec = {0};
            struct shoal_create_config_request req = {.spec = &spec};
            char name[32];

            snprintf(name, sizeof name, "cfg-%zu", sent++);
            spec.annotations.name = name;
            spec.data = (struct shoal_bytes){(uint8_t *)name, strlen(name)};
            cr_assert_eq(shoal_send(c, WIRE_MSG_CREATE_CONFIG, &req, NULL,
                                    &err), 0, "%s", err.message);
        }
        if (shoal_recv(c, &f, &err) != 0) {
            break; /* the daemon is gone */
        }
        if (shoal_frame_decode(&f, WIRE_MSG_CREATE_CONFIG, &cfg, &err) == 0) {
            snprintf(acks[n].id, sizeof acks[n].id, "%s", cfg.id);
            acks[n].version = cfg.meta.version;
            n++;
            wire_free(&wire_type_config, &cfg);
        }
        shoal_frame_fini(&f);
        if (!killed && n == kill_after) {
            kill(d.pid, SIGKILL);
            killed = true;
        }
    }
    shoal_close(c);
    return n;
}

/* Every write acknowledged before a kill -9 is there after the restart,
 * with the same version. */
Test(e2e, kill9_keeps_acknowledged_writes)
{
    static struct acked acks[4096];
    struct shoal_client *c;
    size_t n = write_until_killed(acks, 1500);

    fx_daemon_stop(&d, SIGKILL);
    cr_assert_geq(n, 1500);
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "restart failed: %s", d.log);

    c = e2e_connect();
    for (size_t i = 0; i < n; i++) {
        struct shoal_id_request req = {.id = acks[i].id};
        struct shoal_config got = {0};
        struct shoal_error err = {0};

        cr_assert_eq(shoal_call(c, WIRE_MSG_GET_CONFIG, &req, &got, &err), 0,
                     "acknowledged write %zu (%s) lost: %s", i, acks[i].id,
                     err.message);
        cr_expect_eq(got.meta.version, acks[i].version);
        wire_free(&wire_type_config, &got);
    }
    shoal_close(c);
}

static uint64_t
create_config(struct shoal_client *c, const char *name)
{
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request req = {.spec = &spec};
    struct shoal_config got = {0};
    struct shoal_error err = {0};
    uint64_t v;

    spec.annotations.name = (char *)name;
    spec.data = (struct shoal_bytes){(uint8_t *)"v", 1};
    cr_assert_eq(shoal_call(c, WIRE_MSG_CREATE_CONFIG, &req, &got, &err), 0,
                 "%s", err.message);
    v = got.meta.version;
    wire_free(&wire_type_config, &got);
    return v;
}

/* Read n config creations from a stream: each once, in write order. */
static void
expect_events(struct shoal_client *w, uint64_t stream,
              const uint64_t *versions, size_t from, size_t n)
{
    size_t seen = from;

    while (seen < n) {
        struct shoal_watch_message msg = {0};
        struct shoal_error err = {0};

        cr_assert_eq(shoal_watch_next(w, stream, &msg, &err), 0, "%s",
                     err.message);
        for (size_t i = 0; i < msg.n_events; i++) {
            const struct shoal_watch_event *e = &msg.events[i];

            cr_assert(e->object.config, "event of another kind");
            cr_assert_lt(seen, n, "more events than writes");
            cr_expect_eq(msg.version, versions[seen],
                         "event %zu out of order", seen);
            cr_expect_eq(e->action, SHOAL_ACTION_CREATE);
            seen++;
        }
        wire_free(&wire_type_watch_message, &msg);
    }
}

/* A watch started before a stream of writes sees each write once, in
 * order; a new watch resumes from a given version. */
Test(e2e, watch_sees_every_write_and_resumes)
{
    struct shoal_watch_selector sel = {
        .kind = SHOAL_KIND_CONFIG, .actions = SHOAL_ACTION_CREATE,
    };
    struct shoal_watch_request req = {.selectors = &sel, .n_selectors = 1};
    struct shoal_client *w = e2e_connect();
    struct shoal_client *c = e2e_connect();
    struct shoal_error err = {0};
    uint64_t versions[100];
    uint64_t stream;
    char name[32];

    cr_assert_eq(shoal_watch_start(w, &req, &stream, &err), 0, "%s",
                 err.message);
    for (size_t i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "w-%zu", i);
        versions[i] = create_config(c, name);
    }
    expect_events(w, stream, versions, 0, 100);
    shoal_close(w);

    req.resume_from = versions[59];
    w = e2e_connect();
    cr_assert_eq(shoal_watch_start(w, &req, &stream, &err), 0, "%s",
                 err.message);
    expect_events(w, stream, versions, 60, 100);
    shoal_close(w);
    shoal_close(c);
}

/* Get object id of a kind into *obj (zeroed) through get request type. */
static void
get_object(struct shoal_client *c, uint16_t type, const char *id, void *obj)
{
    struct shoal_id_request req = {.id = (char *)id};
    struct shoal_error err = {0};

    cr_assert_eq(shoal_call(c, type, &req, obj, &err), 0, "get %s: %s", id,
                 err.message);
}

/*
 * The next frame of a watch stream, decoded into *msg. Its body must be
 * the canonical encoding of what it decodes to: the manager builds watch
 * bodies from events encoded once for all watchers, and any byte that
 * differs from what the generic encoder makes of the same message fails.
 */
static void
next_watch_frame(struct shoal_client *w, uint64_t stream,
                 struct shoal_watch_message *msg)
{
    struct shoal_frame f = {0};
    struct shoal_error err = {0};
    struct wire_buf again = {0};

    cr_assert_eq(shoal_recv(w, &f, &err), 0, "%s", err.message);
    cr_assert_eq(f.id, stream);
    cr_assert_eq(f.type, WIRE_MSG_WATCH | WIRE_REPLY, "frame type %#x",
                 f.type);
    cr_expect(f.flags & WIRE_F_MORE);
    cr_assert_eq(wire_decode(&wire_type_watch_message, msg, f.body, f.len),
                 0);
    cr_assert_eq(wire_encode(&wire_type_watch_message, msg, &again), 0);
    cr_expect_eq(again.len, f.len, "body of %zu bytes, canonical %zu",
                 f.len, again.len);
    cr_expect(again.len == f.len && memcmp(again.data, f.body, f.len) == 0,
              "the watch body is not the generic encoding of its message");
    wire_buf_fini(&again);
    shoal_frame_fini(&f);
}

/* One expected event: action, the object's kind and value as `get`
 * returned it after the change, and the old value where one is due. */
struct want_event {
    enum shoal_action action;
    const struct shoal_config *config;
    const struct shoal_config *old;
    const struct shoal_secret *secret;
};

static void
expect_watch_event(const struct shoal_watch_message *msg,
                   const struct want_event *want)
{
    const struct shoal_watch_event *e;

    cr_assert_eq(msg->n_events, 1);
    e = &msg->events[0];
    cr_expect_eq(e->action, want->action);
    if (want->config) {
        cr_assert(e->object.config, "not a config event");
        cr_expect(wire_equal(&wire_type_config, e->object.config,
                             want->config),
                  "the event's config differs from what get returned");
        /* A removal is a later entry than the object's last change. */
        if (want->action == SHOAL_ACTION_REMOVE) {
            cr_expect_gt(msg->version, want->config->meta.version);
        } else {
            cr_expect_eq(msg->version, want->config->meta.version);
        }
    } else {
        cr_assert(e->object.secret, "not a secret event");
        cr_expect(wire_equal(&wire_type_secret, e->object.secret,
                             want->secret),
                  "the event's secret differs from what get returned");
        cr_expect_null(e->object.secret->spec.data.data,
                       "a watch event carries a secret's data");
        cr_expect_eq(msg->version, want->secret->meta.version);
    }
    if (want->old) {
        cr_assert(e->old_object && e->old_object->config,
                  "no old object where it was asked for");
        cr_expect(wire_equal(&wire_type_config, e->old_object->config,
                             want->old));
    } else {
        cr_expect_null(e->old_object);
    }
}

/* Watchers that ask for different things each get exactly what the
 * generic encoder would make for them, though the manager encodes each
 * event once for all: the objects as `get` shows them (a secret without
 * its data), the old object only for the watcher that asked for it, only
 * the kinds selected, and every body in canonical bytes. */
Test(e2e, watchers_share_encoded_events_and_see_their_own_message)
{
    struct shoal_watch_selector cfg_sel = {.kind = SHOAL_KIND_CONFIG};
    struct shoal_watch_request all = {.include_old_object = true};
    struct shoal_watch_request cfgs = {.selectors = &cfg_sel,
                                       .n_selectors = 1};
    struct shoal_client *w_all[3], *w_cfg[3];
    struct shoal_client *c = e2e_connect();
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request cr = {.spec = &spec};
    struct shoal_update_config_request ur = {.spec = &spec};
    struct shoal_secret_spec sspec = {0};
    struct shoal_create_secret_request sr = {.spec = &sspec};
    struct shoal_id_request rm = {0};
    struct shoal_config g1 = {0}, g2 = {0}, tmp = {0};
    struct shoal_secret s1 = {0}, stmp = {0};
    struct shoal_error err = {0};
    uint64_t id_all[3], id_cfg[3];
    char *cfg_id;

    /* Several watchers of each kind, so that the shared encodings are
     * used more than once. */
    for (int i = 0; i < 3; i++) {
        w_all[i] = e2e_connect();
        w_cfg[i] = e2e_connect();
        cr_assert_eq(shoal_watch_start(w_all[i], &all, &id_all[i], &err), 0,
                     "%s", err.message);
        cr_assert_eq(shoal_watch_start(w_cfg[i], &cfgs, &id_cfg[i], &err),
                     0, "%s", err.message);
    }

    spec.annotations.name = "shared-enc";
    spec.data = (struct shoal_bytes){(uint8_t *)"v1", 2};
    cr_assert_eq(shoal_call(c, WIRE_MSG_CREATE_CONFIG, &cr, &tmp, &err), 0,
                 "%s", err.message);
    cfg_id = strdup(tmp.id);
    cr_assert_not_null(cfg_id);
    get_object(c, WIRE_MSG_GET_CONFIG, cfg_id, &g1);

    cr_assert_eq(wire_map_set(&spec.annotations.labels, "tier", "gold"), 0);
    ur.id = cfg_id;
    ur.version = g1.meta.version;
    wire_free(&wire_type_config, &tmp);
    cr_assert_eq(shoal_call(c, WIRE_MSG_UPDATE_CONFIG, &ur, &tmp, &err), 0,
                 "%s", err.message);
    get_object(c, WIRE_MSG_GET_CONFIG, cfg_id, &g2);

    sspec.annotations.name = "shared-enc-secret";
    sspec.data = (struct shoal_bytes){(uint8_t *)"s3cr3t", 6};
    cr_assert_eq(shoal_call(c, WIRE_MSG_CREATE_SECRET, &sr, &stmp, &err), 0,
                 "%s", err.message);
    get_object(c, WIRE_MSG_GET_SECRET, stmp.id, &s1);

    rm.id = cfg_id;
    cr_assert_eq(shoal_call(c, WIRE_MSG_REMOVE_CONFIG, &rm, NULL, &err), 0,
                 "%s", err.message);

    for (int i = 0; i < 3; i++) {
        const struct want_event want_all[] = {
            {SHOAL_ACTION_CREATE, &g1, NULL, NULL},
            {SHOAL_ACTION_UPDATE, &g2, &g1, NULL},
            {SHOAL_ACTION_CREATE, NULL, NULL, &s1},
            {SHOAL_ACTION_REMOVE, &g2, NULL, NULL},
        };
        const struct want_event want_cfg[] = {
            {SHOAL_ACTION_CREATE, &g1, NULL, NULL},
            {SHOAL_ACTION_UPDATE, &g2, NULL, NULL},
            {SHOAL_ACTION_REMOVE, &g2, NULL, NULL},
        };

        for (size_t k = 0; k < sizeof want_all / sizeof want_all[0]; k++) {
            struct shoal_watch_message msg = {0};

            next_watch_frame(w_all[i], id_all[i], &msg);
            expect_watch_event(&msg, &want_all[k]);
            wire_free(&wire_type_watch_message, &msg);
        }
        for (size_t k = 0; k < sizeof want_cfg / sizeof want_cfg[0]; k++) {
            struct shoal_watch_message msg = {0};

            next_watch_frame(w_cfg[i], id_cfg[i], &msg);
            expect_watch_event(&msg, &want_cfg[k]);
            wire_free(&wire_type_watch_message, &msg);
        }
        shoal_close(w_all[i]);
        shoal_close(w_cfg[i]);
    }

    /* The name and data are literals: only the labels are the test's. */
    spec.annotations.name = NULL;
    spec.data = (struct shoal_bytes){0};
    wire_free(&wire_type_config_spec, &spec);
    wire_free(&wire_type_config, &tmp);
    wire_free(&wire_type_config, &g1);
    wire_free(&wire_type_config, &g2);
    wire_free(&wire_type_secret, &s1);
    wire_free(&wire_type_secret, &stmp);
    free(cfg_id);
    shoal_close(c);
}

static int
raw_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0 && strlen(d.sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect: %s", strerror(errno));
    return fd;
}

/* Random bytes, a frame announcing 4 GiB, a frame cut in the middle and
 * 1,000 idle connections leave the manager serving everyone else. */
Test(e2e, survives_garbage_and_idle_clients)
{
    static int idle[1000];
    uint8_t junk[4096];
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 1, 0, 0, 1};
    uint8_t cut[16 + 50] = {0, 0, 0, 100, 1, 0, 0, 1};
    struct fx_run r;
    int fd;

    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 7919 + 13);
    }
    fd = raw_connect();
    cr_expect_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);

    fd = raw_connect();
    cr_expect_eq(write(fd, huge, sizeof huge), (ssize_t)sizeof huge);
    close(fd);

    fd = raw_connect(); /* left open: a client that stopped mid-frame */
    cr_expect_eq(write(fd, cut, sizeof cut), (ssize_t)sizeof cut);

    for (size_t i = 0; i < 1000; i++) {
        idle[i] = raw_connect();
    }

    CTL(&r, NULL, 0, "service", "ls");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "cluster", "ls");
    cr_expect(strstr(r.out, "default"), "%s", r.out);
    fx_run_free(&r);

    for (size_t i = 0; i < 1000; i++) {
        close(idle[i]);
    }
    close(fd);
}

/* A second daemon on the same state directory exits at once, non-zero,
 * saying why; the first keeps serving. */
Test(e2e, second_daemon_is_refused)
{
    struct fx_daemon other = d;
    struct fx_run r;

    other.pid = -1;
    snprintf(other.log, sizeof other.log, "%s.second.log", d.dir);
    cr_expect_neq(fx_daemon_start(&other, NULL), 0);
    cr_expect(fx_file_contains(other.log, "in use"),
              "the refusal says why");
    unlink(other.log);

    CTL(&r, NULL, 0, "cluster", "ls");
    fx_run_free(&r);
}

/* After kill -9 the socket file is left behind; a restart replaces it
 * and the state is intact. */
Test(e2e, restart_after_kill_replaces_stale_socket)
{
    struct fx_run r;

    CTL(&r, NULL, 0, "network", "create", "--name", "keep-me");
    fx_run_free(&r);
    fx_daemon_stop(&d, SIGKILL);
    cr_assert(access(d.sock, F_OK) == 0, "socket file left behind");

    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "restart failed");
    CTL(&r, NULL, 0, "network", "ls");
    cr_expect(strstr(r.out, "keep-me"), "%s", r.out);
    cr_expect(strstr(r.out, "ingress"), "%s", r.out);
    fx_run_free(&r);
}

/* Read one frame's header and status code from a raw connection, or
 * return -1 when the server closed it without one. */
static int
raw_status_code(int fd)
{
    uint8_t buf[256];
    size_t have = 0;
    ssize_t n;

    while (have < sizeof buf && (n = read(fd, buf + have,
                                          sizeof buf - have)) > 0) {
        have += (size_t)n;
    }
    if (have < WIRE_HDR_BYTES + 10 || buf[7] != WIRE_MSG_STATUS) {
        return -1;
    }
    /* The body's first field is the code: tag 1, length 4, value. */
    return (int)((buf[22] << 24) | (buf[23] << 16) | (buf[24] << 8) |
                 buf[25]);
}

/* Clients beyond what the descriptor limit allows are refused with
 * RESOURCE_EXHAUSTED, and once they leave the manager writes as before. */
Test(e2e, connections_capped_below_the_fd_limit)
{
    static int fds[200];
    struct fx_run r;
    size_t refused = 0;

    fx_daemon_stop(&d, SIGTERM);
    d.nofile = 200; /* 136 clients at most: 64 are kept back */
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "restart failed");

    for (size_t i = 0; i < 200; i++) {
        fds[i] = raw_connect();
    }
    for (size_t i = 136; i < 200; i++) {
        int code = raw_status_code(fds[i]);

        refused += code == SHOAL_RESOURCE_EXHAUSTED;
    }
    cr_expect_eq(refused, 64, "refused %zu of the 64 over the cap",
                 refused);
    for (size_t i = 0; i < 200; i++) {
        close(fds[i]);
    }

    CTL(&r, NULL, 0, "network", "create", "--name", "after-the-rush");
    fx_run_free(&r);
    cr_expect(fx_file_contains(d.log, "too many connections"));
}

/* The ingress network can go when unused and be made again; without it,
 * publishing a port is refused with the reason. */
Test(e2e, ingress_network_can_be_recreated)
{
    struct fx_run r;

    CTL(&r, NULL, 0, "network", "rm", "ingress");
    fx_run_free(&r);
    CTL(&r, NULL, 1, "service", "create", "--name", "pub", "--image",
        "nginx", "--publish", "8081:80");
    cr_expect(strstr(r.err, "ingress"), "%s", r.err);
    fx_run_free(&r);

    CTL(&r, NULL, 0, "network", "create", "--name", "ingress", "--ingress");
    fx_run_free(&r);
    CTL(&r, NULL, 0, "service", "create", "--name", "pub", "--image",
        "nginx", "--publish", "8081:80");
    fx_run_free(&r);
    CTL(&r, NULL, 1, "network", "rm", "ingress");
    cr_expect(strstr(r.err, "'pub'"), "names the service: %s", r.err);
    fx_run_free(&r);
}
