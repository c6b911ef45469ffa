/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * failpoint.c: crashes and disk errors on demand, for the crash-point
 * sweep of tests/e2e/test_crash.c. Test builds only: in a release build
 * this file compiles to nothing.
 *
 * SHOAL_FAILPOINT holds up to FP_MAX_RULES rules separated by commas,
 * each `point:first[-last]:action`. The hits of each point are counted
 * from the start of the process; hits first to last (just first when no
 * last is given) take the action: `crash` ends the process with
 * _exit(137), the status of a SIGKILL, so that no cleanup, flush or
 * sanitizer report runs, as in a real crash; `eio` and `enospc` make the
 * storage call fail with that error as if the system call had. Points are
 * those of enum storage_fp (wal_write, wal_fsync, wal_create, wal_dirsync,
 * wal_unlink, wal_cut, db_commit) and the manager's own (sync_start,
 * sync_done, flush_done), which can only crash. Each firing writes one
 * log line, "failpoint fired: point=P hit=N action=A", which the tests
 * look for to know that the point was reached.
 *
 * SHOAL_TEST_TUNING shrinks what would take too long to reach in a test:
 * `wal_segment_bytes=N,flush_ms=N,retry_ms=N,tick_ms=N,election_ticks=N,
 * log_tail=N`, any subset (the last three: the Raft tick period, the
 * minimum election timeout in ticks, and the entries kept behind an LMDB
 * flush, for tests of several managers and snapshot transfers).
 */
#include "manager/manager_int.h"

#ifdef SHOAL_TEST_BUILD

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

#define FP_MAX_RULES 4
#define FP_CRASH_STATUS 137

enum fp_action {
    FP_CRASH,
    FP_EIO,
    FP_ENOSPC,
};

struct fp_point {
    const char *name;
    bool storage; /* id is an enum storage_fp, else an enum failpoint */
    int id;
};

struct fp_rule {
    size_t point; /* index into fp_points */
    uint64_t first;
    uint64_t last;
    enum fp_action action;
};

static const struct fp_point fp_points[] = {
    {"wal_write", true, STORAGE_FP_WAL_WRITE},
    {"wal_fsync", true, STORAGE_FP_WAL_FSYNC},
    {"wal_create", true, STORAGE_FP_WAL_CREATE},
    {"wal_dirsync", true, STORAGE_FP_WAL_DIRSYNC},
    {"wal_unlink", true, STORAGE_FP_WAL_UNLINK},
    {"wal_cut", true, STORAGE_FP_WAL_CUT},
    {"db_commit", true, STORAGE_FP_DB_COMMIT},
    {"sync_start", false, FAILPOINT_SYNC_START},
    {"sync_done", false, FAILPOINT_SYNC_DONE},
    {"flush_done", false, FAILPOINT_FLUSH_DONE},
};

static const char *const fp_action_names[] = {
    [FP_CRASH] = "crash",
    [FP_EIO] = "eio",
    [FP_ENOSPC] = "enospc",
};

/* One manager per process: the hook of storage has no manager to carry. */
static struct fp_rule fp_rules[FP_MAX_RULES];
static size_t fp_n_rules;
static uint64_t fp_hits[ARRAY_LEN(fp_points)];

static int
fp_fire(size_t point)
{
    uint64_t hit = ++fp_hits[point];

    for (size_t i = 0; i < fp_n_rules; i++) {
        const struct fp_rule *r = &fp_rules[i];

        if (r->point != point || hit < r->first || hit > r->last) {
            continue;
        }
        log_warn("failpoint", "failpoint fired: point=%s hit=%" PRIu64
                 " action=%s", fp_points[point].name, hit,
                 fp_action_names[r->action]);
        switch (r->action) {
        case FP_CRASH:
            _exit(FP_CRASH_STATUS);
        case FP_EIO:
            return -EIO;
        case FP_ENOSPC:
            return -ENOSPC;
        }
    }
    return 0;
}

static int
fp_storage_hook(enum storage_fp fp, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < ARRAY_LEN(fp_points); i++) {
        if (fp_points[i].storage && fp_points[i].id == (int)fp) {
            return fp_fire(i);
        }
    }
    return 0;
}

void
failpoint_hit(enum failpoint fp)
{
    for (size_t i = 0; i < ARRAY_LEN(fp_points); i++) {
        if (!fp_points[i].storage && fp_points[i].id == (int)fp) {
            (void)fp_fire(i); /* manager points only crash */
            return;
        }
    }
}

/* A decimal number of at least 1 that ends at one of the stop bytes; the
 * end of the string counts as a comma. */
static bool
fp_parse_u64(const char *s, const char **end, const char *stops,
             uint64_t *out)
{
    char *e;

    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    *out = strtoull(s, &e, 10);
    *end = e;
    return errno == 0 && *out > 0 &&
           strchr(stops, *e != '\0' ? *e : ',') != NULL;
}

static bool
fp_parse_rule(const char *s, size_t len, struct fp_rule *r)
{
    const char *colon = memchr(s, ':', len);
    const char *p;
    size_t n;

    if (!colon) {
        return false;
    }
    n = (size_t)(colon - s);
    r->point = ARRAY_LEN(fp_points);
    for (size_t i = 0; i < ARRAY_LEN(fp_points); i++) {
        if (strlen(fp_points[i].name) == n &&
            memcmp(fp_points[i].name, s, n) == 0) {
            r->point = i;
        }
    }
    if (r->point == ARRAY_LEN(fp_points) ||
        !fp_parse_u64(colon + 1, &p, "-:", &r->first)) {
        return false;
    }
    r->last = r->first;
    if (*p == '-' && (!fp_parse_u64(p + 1, &p, ":", &r->last) ||
                      r->last < r->first)) {
        return false;
    }
    p++;
    n = len - (size_t)(p - s);
    for (size_t a = 0; a < ARRAY_LEN(fp_action_names); a++) {
        if (strlen(fp_action_names[a]) == n &&
            memcmp(fp_action_names[a], p, n) == 0) {
            r->action = (enum fp_action)a;
            /* A manager point has no call to fail, only a place to die. */
            return a == FP_CRASH || fp_points[r->point].storage;
        }
    }
    return false;
}

static int
fp_parse_rules(const char *spec)
{
    const char *s = spec;

    fp_n_rules = 0;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");

        if (fp_n_rules == FP_MAX_RULES ||
            !fp_parse_rule(s, len, &fp_rules[fp_n_rules])) {
            return -EINVAL;
        }
        fp_n_rules++;
        s += len;
        s += *s == ',';
    }
    return fp_n_rules > 0 ? 0 : -EINVAL;
}

/* name=value pairs; each value a decimal number of at least 1. */
static int
fp_parse_tuning(struct manager *m, const char *spec)
{
    const char *s = spec;

    while (*s != '\0') {
        const char *eq = strchr(s, '=');
        const char *end;
        uint64_t v;

        if (!eq || !fp_parse_u64(eq + 1, &end, ",", &v) || v > UINT32_MAX) {
            return -EINVAL;
        }
        if (strncmp(s, "wal_segment_bytes=", 18) == 0) {
            m->wal_opts.segment_bytes = v;
        } else if (strncmp(s, "flush_ms=", 9) == 0) {
            m->cfg.flush_ms = (uint32_t)v;
        } else if (strncmp(s, "retry_ms=", 9) == 0) {
            m->retry_ms = (uint32_t)v;
        } else if (strncmp(s, "tick_ms=", 8) == 0) {
            m->tick_ms = (uint32_t)v;
        } else if (strncmp(s, "election_ticks=", 15) == 0) {
            m->raft_opts.election_ticks = (unsigned)v;
        } else if (strncmp(s, "log_tail=", 9) == 0) {
            m->raft_opts.snapshot_tail = (unsigned)v;
        } else {
            return -EINVAL;
        }
        s = end + (*end == ',');
    }
    return 0;
}

int
failpoint_init(struct manager *m)
{
    const char *tuning = getenv("SHOAL_TEST_TUNING");
    const char *spec = getenv("SHOAL_FAILPOINT");

    if (tuning && fp_parse_tuning(m, tuning) != 0) {
        log_err("failpoint", "bad SHOAL_TEST_TUNING: value=\"%s\"", tuning);
        return -EINVAL;
    }
    if (!spec || *spec == '\0') {
        return 0;
    }
    if (fp_parse_rules(spec) != 0) {
        log_err("failpoint", "bad SHOAL_FAILPOINT, want "
                "point:first[-last]:crash|eio|enospc[,...]: value=\"%s\"",
                spec);
        return -EINVAL;
    }
    storage_fp_set(fp_storage_hook, NULL);
    log_notice("failpoint", "failpoints armed: rules=\"%s\"", spec);
    return 0;
}

#endif
