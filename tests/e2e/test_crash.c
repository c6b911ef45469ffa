/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_crash.c: the crash-point sweep of one manager (issue 6): shoald
 * dies, or its disk fails, at each durable-write boundary while a client
 * streams writes, and nothing it acknowledged is lost.
 *
 * The failpoints are those of src/manager/failpoint.c, armed through
 * SHOAL_FAILPOINT in a test build; SHOAL_TEST_TUNING shrinks the log
 * segments and the flush period so that rotation, compaction and the
 * LMDB flush happen within a second of writes. A crash is _exit(137)
 * at that point: the process dies, the page cache survives. A bug that
 * only power loss shows (data written but not synced) is out of reach.
 *
 * The client pipelines creates, updates (by version) and removes of
 * configs and keeps a model: what was acknowledged, at which version,
 * and which single request per object is still in flight (its outcome
 * unknown). After the restart, every acknowledged write must be there
 * with its version, an object with a write in flight must show either
 * outcome, no config may exist that was never sent, a refused create
 * must not exist and a removed object must stay removed. The unknowns
 * are then resolved from what was found, and the check is repeated after
 * more writes and a clean restart.
 *
 * The sweep has its own runner, run by make check-crash (part of make
 * test); SHOAL_CRASH_POINTS=p1,p2 keeps only the cases whose first
 * failpoint is one of those points (the broken-variant check runs the
 * wal_write ones).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/fx.h"
#include "shoal/client.h"
#include "shoal/wire.h"

#define MAX_OBJS 16384
#define WINDOW 32          /* requests in flight on the connection */
#define PRELOAD_OPS 300    /* written before the failpoint run */
#define CRASH_MAX_OPS 8000 /* a crash stage gives up after this many */
#define AFTER_OPS 300      /* written after the restart */
#define CRASH_STATUS 137   /* failpoint.c's _exit status */
#define WAIT_MS 20000

#define TUNING "SHOAL_TEST_TUNING=wal_segment_bytes=16384,flush_ms=5," \
               "retry_ms=20"

enum op {
    OP_NONE,
    OP_CREATE,
    OP_UPDATE,
    OP_REMOVE,
};

/* One config, named k-<index>. */
struct obj {
    char id[64];      /* known once created */
    uint64_t version; /* last version known for sure */
    unsigned gen;     /* its label "gen" at that version */
    bool created;     /* known to exist (acknowledged, or found) */
    bool removed;     /* known to be removed */
    bool never;       /* the create is known not to have happened */
    enum op inflight; /* a write sent whose outcome is not known */
};

struct flight {
    uint64_t req_id;
    uint16_t type;
    size_t obj;
    enum op op;
};

/* What the writer of a disk-error run saw. */
struct fault_obs {
    size_t n_refused;
    char refusal[1024];   /* the first refusal's message */
    bool failing;         /* refused, and no write acknowledged since */
    size_t acks_after;    /* writes acknowledged after a refusal */
};

struct model {
    struct obj objs[MAX_OBJS];
    size_t n_objs; /* creates sent */
    struct flight fly[WINDOW];
    size_t n_fly;
    uint64_t rng;
    size_t n_acked;
    struct fault_obs *obs; /* NULL: refusals fail the test */
};

static struct fx_daemon d;
static struct model md;

/* SHOAL_CRASH_KEEP=1 keeps each state directory and log for a look. */
static void
crash_fini(void)
{
    if (!d.dir[0]) {
        return; /* SHOAL_CRASH_POINTS skipped the test */
    }
    if (getenv("SHOAL_CRASH_KEEP")) {
        fx_daemon_stop(&d, SIGKILL);
        cr_log_info("kept %s and %s", d.dir, d.log);
        return;
    }
    fx_daemon_cleanup(&d);
}

TestSuite(e2e_crash, .fini = crash_fini, .timeout = 90);

/* ---- The gate --------------------------------------------------------- */

static void
sweep_gate(const char *spec)
{
    const char *only = getenv("SHOAL_CRASH_POINTS");
    size_t n = strcspn(spec, ":");

    while (only && *only) {
        size_t len = strcspn(only, ",");

        if (len == n && strncmp(only, spec, n) == 0) {
            return;
        }
        only += len + (only[len] == ',');
    }
    if (only) {
        cr_skip_test("not in SHOAL_CRASH_POINTS");
    }
}

/* ---- The workload ----------------------------------------------------- */

static uint64_t
rng_next(void)
{
    md.rng ^= md.rng << 13;
    md.rng ^= md.rng >> 7;
    md.rng ^= md.rng << 17;
    return md.rng;
}

/* Queue one request; false when the connection is broken. */
static bool
fly_send(struct shoal_client *c, uint16_t type, const void *body,
         size_t obj, enum op op)
{
    struct flight *f = &md.fly[md.n_fly];

    if (shoal_send(c, type, body, &f->req_id, NULL) != 0) {
        return false;
    }
    f->type = type;
    f->obj = obj;
    f->op = op;
    md.n_fly++;
    md.objs[obj].inflight = op;
    return true;
}

static bool
send_create(struct shoal_client *c)
{
    struct shoal_config_spec spec = {0};
    struct shoal_create_config_request req = {.spec = &spec};
    size_t i = md.n_objs;
    char name[32];
    char data[96];

    cr_assert_lt(i, MAX_OBJS, "the model is full: a failpoint that never "
                 "fires?");
    md.n_objs++;
    snprintf(name, sizeof name, "k-%zu", i);
    snprintf(data, sizeof data, "payload of config %zu, long enough to "
             "fill segments", i);
    spec.annotations.name = name;
    spec.data = (struct shoal_bytes){(uint8_t *)data, strlen(data)};
    return fly_send(c, WIRE_MSG_CREATE_CONFIG, &req, i, OP_CREATE);
}

static bool
send_update(struct shoal_client *c, size_t i)
{
    struct obj *o = &md.objs[i];
    char name[32];
    char gen[16];
    struct shoal_kv kv = {.key = "gen", .value = gen};
    struct shoal_config_spec spec = {0};
    struct shoal_update_config_request req = {
        .id = o->id, .version = o->version, .spec = &spec,
    };

    snprintf(name, sizeof name, "k-%zu", i);
    snprintf(gen, sizeof gen, "%u", o->gen + 1);
    spec.annotations.name = name;
    spec.annotations.labels = (struct shoal_map){.v = &kv, .n = 1};
    return fly_send(c, WIRE_MSG_UPDATE_CONFIG, &req, i, OP_UPDATE);
}

static bool
send_remove(struct shoal_client *c, size_t i)
{
    struct shoal_id_request req = {.id = md.objs[i].id};

    return fly_send(c, WIRE_MSG_REMOVE_CONFIG, &req, i, OP_REMOVE);
}

/* Six creates in ten; the rest update or remove an idle object. */
static bool
send_some_write(struct shoal_client *c)
{
    uint64_t r = rng_next() % 10;

    for (int tries = 0; r >= 6 && md.n_objs > 0 && tries < 4; tries++) {
        size_t i = (size_t)(rng_next() % md.n_objs);
        struct obj *o = &md.objs[i];

        if (o->created && !o->removed && o->inflight == OP_NONE) {
            return r < 9 ? send_update(c, i) : send_remove(c, i);
        }
    }
    return send_create(c);
}

static unsigned
label_gen(const struct shoal_config *cfg)
{
    const char *g = wire_map_get(&cfg->spec.annotations.labels, "gen");

    return g ? (unsigned)strtoul(g, NULL, 10) : 0;
}

static void
on_refusal(const struct flight *f, const struct shoal_error *err)
{
    struct fault_obs *obs = md.obs;

    /* Writes go only to objects whose last write was acknowledged: not
     * finding one, or at another version, means that write was lost. */
    cr_assert(f->op == OP_CREATE || (err->code != SHOAL_NOT_FOUND &&
                                     err->code != SHOAL_CONFLICT),
              "acknowledged write lost: k-%zu (id %s, version %" PRIu64
              "): %s", f->obj, md.objs[f->obj].id, md.objs[f->obj].version,
              err->message);
    /* The documented refusal while the disk fails: never applied. */
    cr_assert(obs && err->code == SHOAL_UNAVAILABLE &&
              strstr(err->message, "could not be logged"),
              "write to k-%zu failed: code %d: %s", f->obj, err->code,
              err->message);
    if (obs->n_refused++ == 0) {
        snprintf(obs->refusal, sizeof obs->refusal, "%s", err->message);
    }
    obs->failing = true;
    if (f->op == OP_CREATE) {
        md.objs[f->obj].never = true;
    }
}

static void
on_ack(const struct flight *f, const struct shoal_config *cfg)
{
    struct obj *o = &md.objs[f->obj];

    switch (f->op) {
    case OP_CREATE:
        snprintf(o->id, sizeof o->id, "%s", cfg->id);
        o->version = cfg->meta.version;
        o->gen = 0;
        o->created = true;
        break;
    case OP_UPDATE:
        cr_assert_gt(cfg->meta.version, o->version);
        cr_assert_eq(label_gen(cfg), o->gen + 1);
        o->version = cfg->meta.version;
        o->gen++;
        break;
    case OP_REMOVE:
        o->removed = true;
        break;
    default:
        break;
    }
    md.n_acked++;
    if (md.obs && md.obs->n_refused > 0) {
        md.obs->failing = false; /* a sync worked: the failure is over */
        md.obs->acks_after++;
    }
}

static void
on_frame(const struct shoal_frame *fr)
{
    struct shoal_config cfg = {0};
    struct shoal_error err = {0};
    struct flight f;
    size_t k = 0;
    int rc;

    while (k < md.n_fly && md.fly[k].req_id != fr->id) {
        k++;
    }
    cr_assert_lt(k, md.n_fly, "a reply to no request: id %" PRIu64, fr->id);
    f = md.fly[k];
    md.fly[k] = md.fly[--md.n_fly];

    md.objs[f.obj].inflight = OP_NONE;
    rc = shoal_frame_decode(fr, f.type, f.op == OP_REMOVE ? NULL : &cfg,
                            &err);
    if (rc == 0) {
        on_ack(&f, &cfg);
    } else {
        on_refusal(&f, &err);
    }
    wire_free(&wire_type_config, &cfg);
}

/*
 * Send max_ops writes, WINDOW at a time, and take every reply. After a
 * refusal no more writes are sent until the waiting ones are answered
 * (the disk failure is then over), rather than thousands of refusals.
 * Returns false when the daemon went away (or could not be reached),
 * true when every request was answered.
 */
static bool
stream(size_t max_ops)
{
    struct shoal_client *c = NULL;
    size_t sent = 0;
    bool alive = true;

    if (shoal_connect(&c, d.sock, WAIT_MS, "crash-sweep", NULL) != 0) {
        return false;
    }
    md.n_fly = 0;
    for (;;) {
        struct shoal_frame fr = {0};
        bool hold = md.obs && md.obs->failing;

        if (hold && md.n_fly == 0) {
            hold = md.obs->failing = false; /* nothing waits any more */
        }
        while (alive && !hold && sent < max_ops && md.n_fly < WINDOW) {
            alive = send_some_write(c);
            sent++;
        }
        if (md.n_fly == 0 || !alive) {
            break;
        }
        if (shoal_recv(c, &fr, NULL) != 0) {
            alive = false;
            break;
        }
        on_frame(&fr);
        shoal_frame_fini(&fr);
    }
    shoal_close(c);
    return alive;
}

/* ---- Checks after a restart ------------------------------------------- */

static bool
name_index(const char *name, size_t *k)
{
    char *end;

    if (!name || strncmp(name, "k-", 2) != 0) {
        return false;
    }
    *k = strtoul(name + 2, &end, 10);
    return *end == '\0';
}

static void
check_found(size_t k, const struct shoal_config *cfg)
{
    struct obj *o = &md.objs[k];
    unsigned gen = label_gen(cfg);

    cr_assert(!o->never, "k-%zu exists, but its create was refused or "
              "found missing before", k);
    cr_assert(!o->removed, "k-%zu is back after an acknowledged remove", k);
    if (o->created) {
        cr_assert_str_eq(cfg->id, o->id, "k-%zu changed its id", k);
        if (o->inflight != OP_UPDATE || cfg->meta.version == o->version) {
            cr_assert(cfg->meta.version == o->version && gen == o->gen,
                      "acknowledged write lost: k-%zu is at version %"
                      PRIu64 " gen %u, acknowledged at version %" PRIu64
                      " gen %u", k, cfg->meta.version, gen, o->version,
                      o->gen);
        } else {
            cr_assert(cfg->meta.version > o->version && gen == o->gen + 1,
                      "k-%zu at version %" PRIu64 " gen %u: neither the "
                      "acknowledged version %" PRIu64 " nor the update in "
                      "flight", k, cfg->meta.version, gen, o->version);
        }
    } else {
        cr_assert_eq(o->inflight, OP_CREATE, "k-%zu exists, never created",
                     k);
    }
    /* Whatever was in flight is now known. */
    snprintf(o->id, sizeof o->id, "%s", cfg->id);
    o->version = cfg->meta.version;
    o->gen = gen;
    o->created = true;
    o->inflight = OP_NONE;
}

static void
check_missing(size_t k)
{
    struct obj *o = &md.objs[k];

    if (o->created && !o->removed) {
        cr_assert_eq(o->inflight, OP_REMOVE, "acknowledged write lost: "
                     "k-%zu (id %s, version %" PRIu64 ") is gone", k, o->id,
                     o->version);
        o->removed = true;
    } else if (!o->created) {
        o->never = true; /* a create that did not happen, and never will */
    }
    o->inflight = OP_NONE;
}

/* Compare the daemon's configs with the model, then resolve unknowns. */
static void
check_model(void)
{
    static bool seen[MAX_OBJS];
    struct shoal_list_request lr = {0};
    struct shoal_list_reply rep = {0};
    struct shoal_client *c = NULL;
    struct shoal_error err = {0};
    size_t k;

    cr_assert_eq(shoal_connect(&c, d.sock, WAIT_MS, "crash-check", &err), 0,
                 "connect: %s", err.message);
    cr_assert_eq(shoal_call(c, WIRE_MSG_LIST_CONFIGS, &lr, &rep, &err), 0,
                 "list: %s", err.message);
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < rep.n_configs; i++) {
        const struct shoal_config *cfg = &rep.configs[i];

        cr_assert(name_index(cfg->spec.annotations.name, &k) &&
                  k < md.n_objs, "config %s exists but was never sent",
                  cfg->spec.annotations.name);
        cr_assert(!seen[k], "k-%zu listed twice", k);
        seen[k] = true;
        check_found(k, cfg);
    }
    for (k = 0; k < md.n_objs; k++) {
        if (!seen[k]) {
            check_missing(k);
        }
    }
    md.n_fly = 0;
    wire_free(&wire_type_list_reply, &rep);
    shoal_close(c);
}

static size_t
log_count(const char *needle)
{
    char *log = fx_read_file(d.log);
    size_t n = 0;

    for (const char *p = log; p && (p = strstr(p, needle)); p++) {
        n++;
    }
    free(log);
    return n;
}

/* What only a damaged state or a bug of ours writes to the log. */
static void
check_log_clean(void)
{
    static const char *const bad[] = {
        "the log is damaged", "undecodable log entry", "bad object in the",
        "unknown object kind", "cannot open the state database",
        "cannot open or replay the log", "the log ends before the state",
        "cannot apply entry", "AddressSanitizer", "LeakSanitizer",
        "runtime error", "assertion failed",
    };
    char *log = fx_read_file(d.log);

    for (size_t i = 0; log && i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect(!strstr(log, bad[i]), "the log says \"%s\":\n%s", bad[i],
                  log);
    }
    free(log);
}

/* The marker line of rule r (point:first[-last]:action) at its first
 * or its last hit. */
static void
rule_marker(const char *r, bool last, char *line, size_t n)
{
    char point[32];
    char action[16];
    unsigned long first;
    unsigned long end;
    int got = sscanf(r, "%31[a-z_]:%lu-%lu:%15s", point, &first, &end,
                     action);

    if (got != 4) {
        cr_assert_eq(sscanf(r, "%31[a-z_]:%lu:%15s", point, &first,
                            action), 3, "bad rule %s", r);
        end = first;
    }
    snprintf(line, n, "failpoint fired: point=%s hit=%lu action=%s", point,
             last ? end : first, action);
}

/* Whether each rule of spec fired at its first (or last) hit. */
static bool
rules_fired(const char *spec, bool last)
{
    char buf[256];
    char *save = NULL;
    char line[128];

    snprintf(buf, sizeof buf, "%s", spec);
    for (char *r = strtok_r(buf, ",", &save); r;
         r = strtok_r(NULL, ",", &save)) {
        rule_marker(r, last, line, sizeof line);
        if (log_count(line) != 1) {
            return false;
        }
    }
    return true;
}

static void
check_fired(const char *spec)
{
    cr_assert(rules_fired(spec, false), "failpoint %s was not reached: "
              "see %s", spec, d.log);
}

/* ---- Daemon runs ------------------------------------------------------ */

static const char *const env_tuned[] = {TUNING, NULL};

/* Without a failpoint; tuned unless told, so that the writes after the
 * restart rotate, flush and compact too. */
static void
start_clean(bool tuned)
{
    d.env = tuned ? env_tuned : NULL;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "shoald did not start: "
                 "see %s", d.log);
}

static void
stop_clean(void)
{
    int st = fx_daemon_stop(&d, SIGTERM);

    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "shoald did not stop cleanly: status %d", st);
}

/*
 * A daemon with acknowledged writes behind it, killed with SIGKILL. Not
 * tuned: one segment over the tuned size and nothing flushed, so that the
 * tuned run after it rotates at its first sync and compacts at its first
 * flush, and the order of the hits of each point is always the same.
 */
static void
preload(void)
{
    start_clean(false);
    cr_assert(stream(PRELOAD_OPS), "shoald died during the preload");
    fx_daemon_stop(&d, SIGKILL);
}

/* Start with spec armed and write until it fires; expect a crash. */
static void
crash_stage(const char *spec)
{
    char fp[256];
    const char *env[] = {fp, TUNING, NULL};
    int st;

    snprintf(fp, sizeof fp, "SHOAL_FAILPOINT=%s", spec);
    d.env = env;
    if (fx_daemon_start(&d, NULL) == 0) {
        /* Ready: the point is on the write path. */
        bool alive = stream(CRASH_MAX_OPS);

        st = fx_daemon_wait(&d, alive ? 0 : WAIT_MS);
        cr_assert_neq(st, -1, "%s never fired in %d writes", spec,
                      CRASH_MAX_OPS);
    } else {
        st = d.end_status; /* it died on the way up: a recovery point */
    }
    d.env = NULL;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == CRASH_STATUS,
              "%s: want a crash (exit %d), got status %d: see %s", spec,
              CRASH_STATUS, st, d.log);
    check_fired(spec);
}

/* The checks after the last failpoint run, then more writes, a clean
 * stop and the same checks again. */
static void
restart_and_check(void)
{
    start_clean(true);
    check_model();
    cr_assert(stream(AFTER_OPS), "shoald died after the restart");
    stop_clean();
    start_clean(true);
    check_model();
    stop_clean();
    check_log_clean();
}

/* Bytes of a record cut short by a crash, after the last durable one. */
static void
tear_tail(bool empty_segment)
{
    char wal[300];
    char last[256] = "";
    char path[600];
    struct dirent *e;
    DIR *dir;
    int fd;

    snprintf(wal, sizeof wal, "%s/wal", d.dir);
    dir = opendir(wal);
    cr_assert(dir, "no wal folder in %s", d.dir);
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "wal-", 4) == 0 &&
            strcmp(e->d_name, last) > 0) {
            snprintf(last, sizeof last, "%s", e->d_name);
        }
    }
    closedir(dir);
    cr_assert(last[0], "no segment in %s", wal);
    if (empty_segment) {
        /* A segment created by a rotation that crashed before its first
         * record: the next sequence number, no bytes. */
        unsigned long long seq, first;

        cr_assert_eq(sscanf(last, "wal-%16llx-%16llx.log", &seq, &first),
                     2);
        snprintf(path, sizeof path, "%s/wal-%016llx-%016llx.log", wal,
                 seq + 1, first);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    } else {
        snprintf(path, sizeof path, "%s/%s", wal, last);
        fd = open(path, O_WRONLY | O_APPEND);
        cr_assert(fd >= 0 && write(fd, "\x5a\xa5torn-record", 13) == 13,
                  "tear %s: %s", path, strerror(errno));
    }
    close(fd);
}

/* ---- Crash points ----------------------------------------------------- */

enum setup {
    SETUP_PRELOAD, /* a state with acknowledged writes */
    SETUP_FRESH,   /* an empty state directory: the first start */
    SETUP_TORN,    /* preloaded, then a torn record at the log's end */
    SETUP_EMPTY,   /* preloaded, then an empty newest segment */
};

/* Criterion copies parameters into each worker, where pointers into
 * the parent's memory are not valid: strings are held by value. */
struct crash_case {
    enum setup setup;
    char stages[3][48]; /* failpoint runs, each must crash */
};

ParameterizedTestParameters(e2e_crash, crash_point)
{
    static struct crash_case cases[] = {
        /*
         * After the preload the active segment is over the tuned size,
         * so the first sync rotates: hit 1 of wal_write and wal_fsync is
         * a batch (the restart's election: its term and vote), hit 2 the
         * new segment's first record, hit 3 the new leader's no-op,
         * hits 4 and 5 batches of the stream (two batches of at most 32
         * entries cannot fill a segment); later hits are either.
         */
        /* Group commit: before the write, before fdatasync. */
        {SETUP_PRELOAD, {"wal_write:1:crash"}},
        {SETUP_PRELOAD, {"wal_write:16:crash"}},
        {SETUP_PRELOAD, {"wal_write:90:crash"}},
        {SETUP_PRELOAD, {"wal_fsync:1:crash"}},
        {SETUP_PRELOAD, {"wal_fsync:16:crash"}},
        {SETUP_PRELOAD, {"wal_fsync:90:crash"}},
        /* Rotation: a new segment's creation, first record (the crash
         * leaves it empty), its sync, the folder's sync. */
        {SETUP_PRELOAD, {"wal_create:1:crash"}},
        {SETUP_PRELOAD, {"wal_create:4:crash"}},
        {SETUP_PRELOAD, {"wal_write:2:crash"}},
        {SETUP_PRELOAD, {"wal_fsync:2:crash"}},
        {SETUP_PRELOAD, {"wal_dirsync:1:crash"}},
        {SETUP_PRELOAD, {"wal_dirsync:2:crash"}},
        {SETUP_PRELOAD, {"wal_dirsync:7:crash"}},
        /* Compaction after a flush: each removal and its folder sync. */
        {SETUP_PRELOAD, {"wal_unlink:1:crash"}},
        {SETUP_PRELOAD, {"wal_unlink:3:crash"}},
        /* The LMDB flush: before its commit, and between it and the
         * compaction of the log. */
        {SETUP_PRELOAD, {"db_commit:1:crash"}},
        {SETUP_PRELOAD, {"db_commit:5:crash"}},
        {SETUP_PRELOAD, {"flush_done:1:crash"}},
        {SETUP_PRELOAD, {"flush_done:4:crash"}},
        /* The commit path: replies sent, durable but unanswered. */
        {SETUP_PRELOAD, {"sync_start:1:crash"}},
        {SETUP_PRELOAD, {"sync_start:50:crash"}},
        {SETUP_PRELOAD, {"sync_done:1:crash"}},
        {SETUP_PRELOAD, {"sync_done:50:crash"}},
        /* After a failed write or sync, before its tail is cut. */
        {SETUP_PRELOAD, {"wal_fsync:3:eio,wal_cut:1:crash"}},
        {SETUP_PRELOAD, {"wal_write:4:enospc,wal_cut:1:crash"}},
        /* A rotation whose folder sync failed: removing its segment. */
        {SETUP_PRELOAD, {"wal_dirsync:1:eio,wal_unlink:1:crash"}},
        /* The first start: the first segment, the bootstrap entry. */
        {SETUP_FRESH, {"wal_write:1:crash", "wal_unlink:1:crash",
                       "wal_dirsync:1:crash"}},
        {SETUP_FRESH, {"wal_dirsync:1:crash"}},
        {SETUP_FRESH, {"wal_write:2:crash"}},
        {SETUP_FRESH, {"wal_fsync:2:crash"}},
        {SETUP_FRESH, {"sync_done:1:crash"}},
        /* Recovery: cutting a torn tail, and syncing the cut. */
        {SETUP_TORN, {"wal_cut:1:crash"}},
        {SETUP_TORN, {"wal_cut:1:crash", "wal_fsync:1:crash"}},
        /* Recovery: removing a segment torn at birth. */
        {SETUP_EMPTY, {"wal_unlink:1:crash", "wal_dirsync:1:crash"}},
    };

    return cr_make_param_array(struct crash_case, cases,
                               sizeof cases / sizeof cases[0]);
}

/* Killed at the point, restarted: every acknowledged write is there with
 * its version, nothing unsent or removed is, and the log shows no
 * damage. */
ParameterizedTest(struct crash_case *cc, e2e_crash, crash_point)
{
    sweep_gate(cc->stages[0]);
    md.rng = 0x9e3779b97f4a7c15ull;
    for (const char *p = cc->stages[0]; *p; p++) {
        md.rng = (md.rng ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    fx_daemon_prepare(&d);
    if (cc->setup != SETUP_FRESH) {
        preload();
    }
    if (cc->setup == SETUP_TORN || cc->setup == SETUP_EMPTY) {
        tear_tail(cc->setup == SETUP_EMPTY);
    }
    for (size_t i = 0; i < 3 && cc->stages[i][0]; i++) {
        crash_stage(cc->stages[i]);
    }
    restart_and_check();
    if (cc->setup == SETUP_TORN && !cc->stages[1][0]) {
        /* Left torn by the crash before the cut: the restart cuts it. */
        cr_expect_eq(log_count("cut a torn record"), 1,
                     "the torn tail was not reported once");
    }
}

/* ---- Disk errors ------------------------------------------------------ */

/*
 * The writer's whole window can sit in the batch whose sync fails, and
 * then it has nothing in flight for the failure to refuse. So a second
 * client, in a thread, waits for the daemon's "log write failed" line
 * (inotify on the log, no polling), then sends a create, a read and a
 * create on its own connection, in that order: both creates must be
 * refused with a status that names the error, so the read answered
 * between them was served during the failure. The thread only records;
 * the test's thread asserts.
 */
struct probe {
    pthread_t thread;
    int stop_fd;       /* eventfd: the writer is done */
    bool seen;         /* the failure line appeared */
    int codes[3];      /* create, read, create: 0 or the status */
    char message[1024]; /* of the first create */
};

static void
probe_send(struct probe *p)
{
    struct shoal_config_spec spec[2];
    struct shoal_create_config_request cr[2] = {{.spec = &spec[0]},
                                                {.spec = &spec[1]}};
    struct shoal_list_request lr = {0};
    struct shoal_client *c = NULL;
    uint16_t types[3] = {WIRE_MSG_CREATE_CONFIG, WIRE_MSG_LIST_CLUSTERS,
                         WIRE_MSG_CREATE_CONFIG};
    const void *bodies[3] = {&cr[0], &lr, &cr[1]};
    uint64_t ids[3] = {0};

    memset(spec, 0, sizeof spec);
    spec[0].annotations.name = "probe-0";
    spec[1].annotations.name = "probe-1";
    spec[0].data = spec[1].data = (struct shoal_bytes){(uint8_t *)"p", 1};
    for (int i = 0; i < 3; i++) {
        p->codes[i] = -1;
    }
    if (shoal_connect(&c, d.sock, WAIT_MS, "crash-probe", NULL) != 0) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (shoal_send(c, types[i], bodies[i], &ids[i], NULL) != 0) {
            goto out_close;
        }
    }
    for (int n = 0; n < 3; n++) {
        struct shoal_frame fr = {0};
        struct shoal_config cfg = {0};
        struct shoal_list_reply list = {0};
        struct shoal_error err = {0};
        int i = 0;
        int rc;

        if (shoal_recv(c, &fr, NULL) != 0) {
            goto out_close;
        }
        while (i < 2 && ids[i] != fr.id) {
            i++;
        }
        rc = shoal_frame_decode(&fr, types[i], i == 1 ? (void *)&list
                                                      : (void *)&cfg, &err);
        p->codes[i] = rc == 0 ? 0 : err.code;
        if (i == 0) {
            snprintf(p->message, sizeof p->message, "%s", err.message);
        }
        wire_free(&wire_type_config, &cfg);
        wire_free(&wire_type_list_reply, &list);
        shoal_frame_fini(&fr);
    }
out_close:
    shoal_close(c);
}

static void *
probe_main(void *arg)
{
    struct probe *p = arg;
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    struct pollfd pf[2] = {{.fd = ifd, .events = POLLIN},
                           {.fd = p->stop_fd, .events = POLLIN}};
    char buf[4096];

    if (ifd < 0 || inotify_add_watch(ifd, d.log, IN_MODIFY) < 0) {
        return NULL; /* p->seen stays false: the test says so */
    }
    /* Looked at after the watch exists, so no line can slip by. */
    while (!(p->seen = log_count("log write failed") > 0)) {
        if (poll(pf, 2, -1) < 0 && errno != EINTR) {
            break;
        }
        if (pf[1].revents) {
            break;
        }
        while (read(ifd, buf, sizeof buf) > 0) {
        }
    }
    close(ifd);
    if (p->seen) {
        probe_send(p);
    }
    return NULL;
}

static void
probe_start(struct probe *p)
{
    memset(p, 0, sizeof *p);
    p->stop_fd = eventfd(0, EFD_CLOEXEC);
    cr_assert(p->stop_fd >= 0, "eventfd: %s", strerror(errno));
    cr_assert_eq(pthread_create(&p->thread, NULL, probe_main, p), 0);
}

static void
probe_stop(struct probe *p)
{
    uint64_t one = 1;

    cr_assert_eq(write(p->stop_fd, &one, sizeof one), (ssize_t)sizeof one);
    pthread_join(p->thread, NULL);
    close(p->stop_fd);
}

struct fault_case {
    char spec[48];
    bool refusal;      /* writes are refused while it lasts */
    char errtext[32];  /* in the refusal's message */
    char failed[48];   /* the one line that reports the failure */
    char again[32];    /* the one line that reports the recovery, if any */
};

ParameterizedTestParameters(e2e_crash, disk_error)
{
    static struct fault_case cases[] = {
        /*
         * Hit 4 is the first batch of the stream (hits 1 to 3 are the
         * restart's election, rotation and no-op: see crash_point); each
         * retry, every retry_ms (20), is a hit: 50 hits keep the disk
         * failing for a second, time enough for the probe on a loaded
         * machine.
         */
        {"wal_write:4-53:enospc", true, "No space left on device",
         "log write failed", "log writes work again"},
        {"wal_fsync:4-53:eio", true, "Input/output error",
         "log write failed", "log writes work again"},
        {"wal_write:4-41:eio,wal_cut:1-12:eio", true, "Input/output error",
         "log write failed", "log writes work again"},
        /* The folder sync of the first rotation during the stream (the
         * first of all is the restart's), then the removal of its
         * half-made segment, which the next sync must finish first. */
        {"wal_dirsync:2-53:enospc", true, "No space left on device",
         "log write failed", "log writes work again"},
        {"wal_create:1-3:enospc", false, "", "wal rotation failed", ""},
        {"db_commit:1-4:enospc", false, "",
         "state flush or log compaction failed", "state flushes work again"},
        {"wal_unlink:1-2:eio", false, "",
         "state flush or log compaction failed", "state flushes work again"},
    };

    return cr_make_param_array(struct fault_case, cases,
                               sizeof cases / sizeof cases[0]);
}

/* While the disk fails, writes are refused with a status that names the
 * error and reads are served; one line says so, one line says it is
 * over, writes are acknowledged again, and a restart loses nothing. */
ParameterizedTest(struct fault_case *fc, e2e_crash, disk_error)
{
    static struct fault_obs obs;
    struct probe probe;
    char fp[256];
    const char *env[] = {fp, TUNING, NULL};
    int rounds = 0;

    sweep_gate(fc->spec);
    md.rng = 0x2545f4914f6cdd1dull;
    fx_daemon_prepare(&d);
    preload();

    snprintf(fp, sizeof fp, "SHOAL_FAILPOINT=%s", fc->spec);
    d.env = env;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "shoald did not start: "
                 "see %s", d.log);
    probe_start(&probe);
    md.obs = &obs;
    /* Write until every failing hit has happened and the recovery is
     * logged; then more, which must all be acknowledged. */
    do {
        cr_assert(stream(500), "shoald died under %s: see %s", fc->spec,
                  d.log);
    } while (!(rules_fired(fc->spec, true) &&
               (!fc->again[0] || log_count(fc->again) > 0)) &&
             ++rounds < 20);
    md.obs = NULL;
    cr_assert(stream(200), "shoald died after %s", fc->spec);
    probe_stop(&probe);
    check_fired(fc->spec);
    cr_assert(rules_fired(fc->spec, true), "%s: not every hit fired",
              fc->spec);

    if (fc->refusal) {
        cr_expect(probe.seen, "%s: no failure line for the probe", fc->spec);
        cr_expect(probe.codes[0] == SHOAL_UNAVAILABLE &&
                  probe.codes[2] == SHOAL_UNAVAILABLE,
                  "%s: the probe's writes were not refused: %d %d",
                  fc->spec, probe.codes[0], probe.codes[2]);
        cr_expect(strstr(probe.message, fc->errtext), "%s: the refusal "
                  "does not name the error (%s): %s", fc->spec, fc->errtext,
                  probe.message);
        cr_expect_eq(probe.codes[1], 0, "%s: the read between them "
                     "failed: %d", fc->spec, probe.codes[1]);
    } else {
        cr_expect_eq(obs.n_refused, 0, "%s: writes were refused: %s",
                     fc->spec, obs.refusal);
        cr_expect_eq(log_count("log write failed"), 0,
                     "%s: the log was refused", fc->spec);
    }
    if (obs.n_refused > 0) {
        cr_expect(strstr(obs.refusal, fc->errtext), "%s: a refusal does "
                  "not name the error (%s): %s", fc->spec, fc->errtext,
                  obs.refusal);
        cr_expect_gt(obs.acks_after, 0, "%s: no write acknowledged after "
                     "the failure", fc->spec);
    }
    cr_expect_eq(log_count(fc->failed), 1, "%s: want one \"%s\" line",
                 fc->spec, fc->failed);
    if (fc->again[0]) {
        cr_expect_eq(log_count(fc->again), 1, "%s: want one \"%s\" line",
                     fc->spec, fc->again);
    }

    /* Then a crash at any moment loses nothing acknowledged. */
    fx_daemon_stop(&d, SIGKILL);
    d.env = NULL;
    restart_and_check();
}
