/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_snapshot.c: snapshot transfer (snap_send, snap_recv) and wal_reset
 * of src/storage.
 *
 * Each test works in its own folder under /tmp: a source state dir "a"
 * (the leader) and a target "b" (the follower). A crash is a forked child
 * that _exit()s from the failure hook at a durable boundary, so that no
 * close or cleanup runs, as after a power cut short of the page cache.
 */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "base/base.h"

#define N_FP 16 /* more than the points of enum storage_fp */
#define N_OBJS 3000
#define MEMB_BYTES 5000
#define CHUNK 8192
#define CRASH_STATUS 77

static char tdir[64];
static char dir_a[96], dir_b[96];

/* ---- Failure hook ----------------------------------------------------- */

/* Per point: calls that pass first, then the action: an error, or a crash
 * (_exit) when crash is set. */
struct fp_plan {
    int skip[N_FP];
    int times[N_FP];
    int err[N_FP];
    bool crash[N_FP];
    int calls[N_FP];
};

static struct fp_plan plan;

static int
fp_hook(enum storage_fp fp, void *arg)
{
    struct fp_plan *p = arg;

    cr_assert_lt((int)fp, N_FP);
    p->calls[fp]++;
    if (p->times[fp] == 0) {
        return 0;
    }
    if (p->skip[fp] > 0) {
        p->skip[fp]--;
        return 0;
    }
    p->times[fp]--;
    if (p->crash[fp]) {
        _exit(CRASH_STATUS);
    }
    return p->err[fp];
}

static void
fail_at(enum storage_fp fp, int skip, int times, int err)
{
    plan.skip[fp] = skip;
    plan.times[fp] = times;
    plan.err[fp] = err;
    storage_fp_set(fp_hook, &plan);
}

static void
crash_at(enum storage_fp fp, int skip)
{
    fail_at(fp, skip, 1, 0);
    plan.crash[fp] = true;
}

/* Run fn in a child; return true when it crashed through the hook. */
static bool
run_child(void (*fn)(void *), void *arg)
{
    int status;
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == CRASH_STATUS);
    return WEXITSTATUS(status) == CRASH_STATUS;
}

/* ---- Fixture ---------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
tmp_setup(void)
{
    memset(&plan, 0, sizeof(plan));
    snprintf(tdir, sizeof(tdir), "/tmp/shoal-snap-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
    snprintf(dir_a, sizeof(dir_a), "%s/a", tdir);
    snprintf(dir_b, sizeof(dir_b), "%s/b", tdir);
    cr_assert_eq(mkdir(dir_a, 0700), 0);
    cr_assert_eq(mkdir(dir_b, 0700), 0);
}

static void
tmp_teardown(void)
{
    storage_fp_set(NULL, NULL);
    if (nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        cr_log_warn("cannot remove %s: %s", tdir, strerror(errno));
    }
}

TestSuite(storage_snapshot, .init = tmp_setup, .fini = tmp_teardown,
          .timeout = 60.0);

static bool
exists(const char *dir, const char *name)
{
    char path[160];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* ---- States ----------------------------------------------------------- */

static void
fill_bytes(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
}

/*
 * Flush n objects of four kinds, values of 0 to ~2 KiB, and a membership
 * blob into db at applied (index, term). salt varies the values,
 * salt % 10 the ids.
 */
static void
flush_state(struct statedb *db, int n, uint64_t index, uint64_t term, int salt)
{
    struct statedb_write *ws = calloc((size_t)n, sizeof(*ws));
    char(*ids)[32] = calloc((size_t)n, 32);
    uint8_t *vals = malloc((size_t)n * 2100);
    uint8_t memb[MEMB_BYTES];

    cr_assert(ws != NULL && ids != NULL && vals != NULL);
    fill_bytes(memb, sizeof(memb), (uint64_t)salt + 99);
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)((i * 37 + salt) % 2100);

        snprintf(ids[i], 32, "obj-%05d-%d", i, salt % 10);
        fill_bytes(vals + (size_t)i * 2100, len, (uint64_t)(i + salt));
        ws[i] = (struct statedb_write){
            .op = STATEDB_PUT,
            .kind = (uint8_t)(1 + i % 4),
            .id = ids[i],
            .val = vals + (size_t)i * 2100,
            .len = len,
        };
    }
    cr_assert_eq(statedb_flush(db, ws, (size_t)n,
                               &(struct statedb_meta){
                                   .applied_index = index,
                                   .applied_term = term,
                                   .membership = memb,
                                   .membership_len = sizeof(memb),
                               }),
                 0);
    free(ws);
    free(ids);
    free(vals);
}

/* The same into the state of dir, opened and closed around it. */
static void
make_state(const char *dir, int n, uint64_t index, uint64_t term, int salt)
{
    struct statedb *db;

    cr_assert_eq(statedb_open(&db, dir, 0), 0);
    flush_state(db, n, index, term, salt);
    statedb_close(db);
}

/* What a state holds, as a digest that any difference changes. */
struct digest {
    uint64_t n;
    uint64_t hash;
    uint64_t index, term;
    uint64_t memb_hash;
    size_t memb_len;
};

static int
digest_cb(uint8_t kind, const char *id, const void *val, size_t len, void *arg)
{
    struct digest *d = arg;
    uint64_t h = XXH3_64bits_withSeed(id, strlen(id), kind);

    d->hash = XXH3_64bits_withSeed(val, len, d->hash ^ h);
    d->n++;
    return 0;
}

static struct digest
digest_of(const char *dir)
{
    struct digest d = {0};
    struct statedb_meta m;
    struct statedb *db;

    cr_assert_eq(statedb_open(&db, dir, 0), 0);
    cr_assert_eq(statedb_load(db, digest_cb, &d, &m), 0);
    d.index = m.applied_index;
    d.term = m.applied_term;
    d.memb_len = m.membership_len;
    d.memb_hash = XXH3_64bits(m.membership, m.membership_len);
    statedb_close(db);
    return d;
}

static void
expect_same(struct digest x, struct digest y)
{
    cr_expect_eq(x.n, y.n);
    cr_expect_eq(x.hash, y.hash);
    cr_expect_eq(x.index, y.index);
    cr_expect_eq(x.term, y.term);
    cr_expect_eq(x.memb_len, y.memb_len);
    cr_expect_eq(x.memb_hash, y.memb_hash);
}

/* ---- Transfers -------------------------------------------------------- */

/* One chunk copied out of a sender, to be delivered later or damaged. */
struct chunk {
    uint8_t *p;
    size_t len;
    int more;
};

static struct chunk
next_chunk(struct snap_send *s)
{
    const void *p;
    struct chunk c = {0};
    int rc;

    do {
        rc = snap_send_next(s, &p, &c.len);
    } while (rc == ERR_AGAIN);
    cr_assert(rc == 0 || rc == 1, "snap_send_next: %s", err_str(rc));
    c.more = rc;
    c.p = malloc(c.len);
    cr_assert_not_null(c.p);
    memcpy(c.p, p, c.len);
    return c;
}

/* Deliver chunks from s to r until the last or until max were sent. */
static int
pump(struct snap_send *s, struct snap_recv *r, int max)
{
    int sent = 0;

    while (sent < max && !snap_recv_complete(r)) {
        struct chunk c = next_chunk(s);

        cr_assert_eq(snap_recv_chunk(r, c.p, c.len), 0);
        free(c.p);
        sent++;
    }
    return sent;
}

/* Open a sender on dir_a, the receiver on dir_b, both at the same seq. */
static void
open_pair(struct statedb **src, struct snap_send **s, struct snap_recv **r,
          uint64_t *next)
{
    struct snap_id id;

    cr_assert_eq(statedb_open(src, dir_a, 0), 0);
    cr_assert_eq(snap_send_begin(s, *src, CHUNK), 0);
    id = snap_send_id(*s);
    cr_assert_eq(snap_recv_open(r, dir_b, &id, 0, next), 0);
    snap_send_seek(*s, *next);
}

static void
close_pair(struct statedb *src, struct snap_send *s)
{
    snap_send_end(s);
    statedb_close(src);
}

/* The whole transfer from dir_a into dir_b, swapped in. */
static void
transfer_all(void)
{
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    open_pair(&src, &s, &r, &next);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);
}

/* ---- Round trip ------------------------------------------------------- */

/* A state of thousands of objects of four kinds and a membership blob
 * arrives whole in an empty state dir and reads back equal. */
Test(storage_snapshot, round_trip_into_empty_dir)
{
    make_state(dir_a, N_OBJS, 500, 7, 1);

    transfer_all();

    expect_same(digest_of(dir_b), digest_of(dir_a));
    cr_expect_eq(digest_of(dir_b).n, N_OBJS);
    cr_expect_not(exists(dir_b, "db.incoming"));
}

/* The swap replaces an existing state wholly: no object of the old one
 * survives, and the old folder is gone. */
Test(storage_snapshot, swap_replaces_existing_state)
{
    make_state(dir_a, N_OBJS, 500, 7, 1);
    make_state(dir_b, 100, 40, 2, 2);

    transfer_all();

    expect_same(digest_of(dir_b), digest_of(dir_a));
    cr_expect_not(exists(dir_b, "db.incoming"));
    cr_expect_not(exists(dir_b, "db.old"));
}

/* An empty state (no object, no membership) travels as one last chunk. */
Test(storage_snapshot, empty_state_is_one_chunk)
{
    struct statedb *src;
    struct snap_send *s;
    struct chunk c;

    cr_assert_eq(statedb_open(&src, dir_a, 0), 0);
    cr_assert_eq(snap_send_begin(&s, src, CHUNK), 0);

    c = next_chunk(s);

    cr_expect_eq(c.more, 0);
    cr_expect_eq(c.len, SNAP_HDR_BYTES + 4 + SNAP_SUM_BYTES);
    free(c.p);
    close_pair(src, s);
}

/* Every chunk keeps to chunk_bytes, except chunk 0 whose membership is
 * larger (it then holds no item) and the one that carries an object
 * larger than that, which holds it alone. */
Test(storage_snapshot, chunk_is_bounded)
{
    static uint8_t big[3 * SNAP_MIN_CHUNK_BYTES];
    struct statedb *src;
    struct snap_send *s;
    struct snap_chunk_info info;
    int n = 0, big_chunks = 0;
    struct chunk c;

    make_state(dir_a, 500, 10, 1, 3);
    cr_assert_eq(statedb_open(&src, dir_a, 0), 0);
    cr_assert_eq(statedb_flush(src,
                               &(struct statedb_write){
                                   .op = STATEDB_PUT,
                                   .kind = 2,
                                   .id = "big",
                                   .val = big,
                                   .len = sizeof(big),
                               },
                               1,
                               &(struct statedb_meta){
                                   .applied_index = 11,
                                   .applied_term = 1,
                               }),
                 0);
    cr_assert_eq(snap_send_begin(&s, src, SNAP_MIN_CHUNK_BYTES), 0);

    do {
        c = next_chunk(s);
        cr_assert_eq(snap_chunk_peek(c.p, c.len, &info), 0);
        cr_expect_eq(info.seq, (uint64_t)n);
        if (c.len > SNAP_MIN_CHUNK_BYTES && info.seq == 0) {
            cr_expect_eq(info.n_items, 0);
            cr_expect_eq(c.len,
                         SNAP_HDR_BYTES + 4 + MEMB_BYTES + SNAP_SUM_BYTES);
        } else if (c.len > SNAP_MIN_CHUNK_BYTES) {
            big_chunks++;
            cr_expect_eq(info.n_items, 1);
            cr_expect_leq(c.len, SNAP_HDR_BYTES + SNAP_SUM_BYTES + 6 + 3 +
                                     sizeof(big));
        }
        free(c.p);
        n++;
    } while (c.more);

    cr_expect_eq(big_chunks, 1);
    cr_expect_gt(n, 100);
    close_pair(src, s);
}

/* Commits to the source between chunks are not seen by the stream: it
 * carries the state of the moment snap_send_begin() was called. */
Test(storage_snapshot, writes_between_chunks_are_not_streamed)
{
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    struct digest before;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    before = digest_of(dir_a);
    open_pair(&src, &s, &r, &next);

    pump(s, r, 3);
    flush_state(src, N_OBJS, 600, 8, 11); /* same ids, new values */
    flush_state(src, 200, 600, 8, 5);     /* new ids */
    cr_assert_eq(statedb_flush(src,
                               &(struct statedb_write){
                                   .op = STATEDB_DEL,
                                   .kind = 2,
                                   .id = "obj-02001-1",
                               },
                               1,
                               &(struct statedb_meta){
                                   .applied_index = 601,
                                   .applied_term = 8,
                               }),
                 0);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);

    expect_same(digest_of(dir_b), before);
}

/* ---- Resume ----------------------------------------------------------- */

/* A receiver closed mid-way reopens at the next seq, and a new sender
 * seeking there completes the same state. */
Test(storage_snapshot, resume_after_close_continues_at_next_seq)
{
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    open_pair(&src, &s, &r, &next);
    cr_assert_eq(next, 0);
    pump(s, r, 10);
    snap_recv_close(r);
    close_pair(src, s);

    open_pair(&src, &s, &r, &next);

    cr_expect_eq(next, 10);
    cr_expect_eq(snap_send_seq(s), 0); /* the seek skips lazily */
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);
    expect_same(digest_of(dir_b), digest_of(dir_a));
}

/* Going back with a seek replays the very same bytes from the same read
 * transaction. */
Test(storage_snapshot, seek_back_rebuilds_identical_chunks)
{
    struct statedb *src;
    struct snap_send *s;
    struct chunk first[5], again;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    cr_assert_eq(statedb_open(&src, dir_a, 0), 0);
    cr_assert_eq(snap_send_begin(&s, src, CHUNK), 0);
    for (int i = 0; i < 5; i++) {
        first[i] = next_chunk(s);
    }

    snap_send_seek(s, 2);

    for (int i = 2; i < 5; i++) {
        again = next_chunk(s);
        cr_expect_eq(again.len, first[i].len);
        cr_expect_eq(memcmp(again.p, first[i].p, again.len), 0);
        free(again.p);
    }
    for (int i = 0; i < 5; i++) {
        free(first[i].p);
    }
    close_pair(src, s);
}

/* A seek far ahead is walked a bounded number of chunks per call
 * (ERR_AGAIN in between), then gives exactly the chunk asked for; a seek
 * past the last chunk is reported. */
Test(storage_snapshot, seek_forward_is_bounded_per_call)
{
    struct snap_chunk_info info;
    struct statedb *src;
    struct snap_send *s;
    const void *p;
    size_t len;
    int again = 0, rc;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    cr_assert_eq(statedb_open(&src, dir_a, 0), 0);
    cr_assert_eq(snap_send_begin(&s, src, CHUNK), 0);

    snap_send_seek(s, 100);
    while ((rc = snap_send_next(s, &p, &len)) == ERR_AGAIN) {
        again++;
    }

    cr_assert_eq(rc, 1);
    cr_expect_geq(again, 100 / 16);
    cr_assert_eq(snap_chunk_peek(p, len, &info), 0);
    cr_expect_eq(info.seq, 100);
    snap_send_seek(s, 100000);
    while ((rc = snap_send_next(s, &p, &len)) == ERR_AGAIN) {
    }
    cr_expect_eq(rc, ERR_PROTO);
    close_pair(src, s);
}

struct crash_recv {
    int commits; /* chunk commits that succeed before the crash */
};

static void
child_recv(void *arg)
{
    struct crash_recv *cr = arg;
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    open_pair(&src, &s, &r, &next);
    crash_at(STORAGE_FP_SNAP_COMMIT, cr->commits);
    pump(s, r, INT32_MAX);
}

/* A crash in the middle of a chunk's commit loses only that chunk: the
 * receiver reopens at it, and the transfer ends with the same state. */
Test(storage_snapshot, resume_after_crash_continues_at_next_seq)
{
    struct crash_recv cr = {.commits = 7};
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    cr_assert(run_child(child_recv, &cr));

    open_pair(&src, &s, &r, &next);

    cr_expect_eq(next, 7);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);
    expect_same(digest_of(dir_b), digest_of(dir_a));
}

/* A staging of another snapshot id is discarded: the transfer starts at
 * seq 0 and nothing of the other snapshot remains. */
Test(storage_snapshot, staging_of_other_id_is_discarded)
{
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    open_pair(&src, &s, &r, &next);
    pump(s, r, 10);
    snap_recv_close(r);
    close_pair(src, s);
    make_state(dir_a, 50, 900, 9, 4); /* the leader moved on */

    open_pair(&src, &s, &r, &next);

    cr_expect_eq(next, 0);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);
    expect_same(digest_of(dir_b), digest_of(dir_a));
}

/* snap_recv_abort() removes the staging. */
Test(storage_snapshot, abort_removes_staging)
{
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    make_state(dir_a, 200, 500, 7, 1);
    open_pair(&src, &s, &r, &next);
    pump(s, r, 2);
    close_pair(src, s);

    cr_assert_eq(snap_recv_abort(r), 0);

    cr_expect_not(exists(dir_b, "db.incoming"));
}

/* ---- Bad chunks ------------------------------------------------------- */

/* Recompute the checksum of a chunk edited on purpose, so that only the
 * edit is wrong. */
static void
reseal(struct chunk *c)
{
    uint64_t sum = XXH3_64bits(c->p, c->len - SNAP_SUM_BYTES);

    for (int i = 0; i < 8; i++) {
        c->p[c->len - SNAP_SUM_BYTES + (size_t)i] = (uint8_t)(sum >> (8 * i));
    }
}

/* A flipped byte, a truncated chunk, another snapshot's chunk, a repeated
 * or a skipped seq, and bad item fields are each refused with their code;
 * the staging takes the right chunk afterwards and ends up whole. */
Test(storage_snapshot, bad_chunks_are_refused_and_staging_stays_usable)
{
    struct statedb *src, *other;
    struct snap_send *s, *so;
    struct snap_recv *r;
    struct chunk c0, c1, c2, x;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    open_pair(&src, &s, &r, &next);
    c0 = next_chunk(s);
    c1 = next_chunk(s);
    c2 = next_chunk(s);
    cr_assert_eq(snap_recv_chunk(r, c0.p, c0.len), 0);

    /* Damaged in transit: every single flipped byte is caught. */
    for (size_t i = 0; i < c1.len; i += 97) {
        c1.p[i] ^= 0x10;
        cr_expect_eq(snap_recv_chunk(r, c1.p, c1.len), ERR_CORRUPT);
        c1.p[i] ^= 0x10;
    }
    cr_expect_eq(snap_recv_chunk(r, c1.p, c1.len - 1), ERR_CORRUPT);
    cr_expect_eq(snap_recv_chunk(r, c1.p, 20), ERR_CORRUPT);
    /* Out of order. */
    cr_expect_eq(snap_recv_chunk(r, c0.p, c0.len), ERR_EXISTS);
    cr_expect_eq(snap_recv_chunk(r, c2.p, c2.len), ERR_AGAIN);
    /* Sound bytes that break the format. */
    x = (struct chunk){.p = malloc(c1.len), .len = c1.len};
    memcpy(x.p, c1.p, c1.len);
    x.p[SNAP_HDR_BYTES + 1] = 0; /* first item: id length 0 */
    reseal(&x);
    cr_expect_eq(snap_recv_chunk(r, x.p, x.len), ERR_PROTO);
    memcpy(x.p, c1.p, c1.len);
    x.p[SNAP_HDR_BYTES + 6] = '\0'; /* first item: NUL in the id */
    reseal(&x);
    cr_expect_eq(snap_recv_chunk(r, x.p, x.len), ERR_PROTO);
    memcpy(x.p, c1.p, c1.len);
    x.p[SNAP_HDR_BYTES + 5] = 0x7f; /* first item: value runs past end */
    reseal(&x);
    cr_expect_eq(snap_recv_chunk(r, x.p, x.len), ERR_PROTO);
    memcpy(x.p, c1.p, c1.len);
    x.p[12]++; /* one item more than the body holds */
    reseal(&x);
    cr_expect_eq(snap_recv_chunk(r, x.p, x.len), ERR_PROTO);
    memcpy(x.p, c1.p, c1.len);
    x.p[5] = 0x80; /* unknown flag */
    reseal(&x);
    cr_expect_eq(snap_recv_chunk(r, x.p, x.len), ERR_PROTO);
    free(x.p);
    /* Another snapshot's chunk 1. */
    make_state(dir_b, 300, 800, 8, 6);
    cr_assert_eq(statedb_open(&other, dir_b, 0), 0);
    cr_assert_eq(snap_send_begin(&so, other, CHUNK), 0);
    x = next_chunk(so);
    free(x.p);
    x = next_chunk(so);
    cr_expect_eq(snap_recv_chunk(r, x.p, x.len), ERR_PROTO);
    free(x.p);
    snap_send_end(so);
    statedb_close(other);

    cr_expect_eq(snap_recv_next_seq(r), 1);
    cr_assert_eq(snap_recv_chunk(r, c1.p, c1.len), 0);
    cr_assert_eq(snap_recv_chunk(r, c2.p, c2.len), 0);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);
    expect_same(digest_of(dir_b), digest_of(dir_a));
    free(c0.p);
    free(c1.p);
    free(c2.p);
}

/* A chunk after the last one, and finishing too early, are refused. */
Test(storage_snapshot, finish_before_last_chunk_is_refused)
{
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;
    const void *p;
    size_t len;

    make_state(dir_a, 300, 500, 7, 1);
    open_pair(&src, &s, &r, &next);
    pump(s, r, 1);

    cr_expect_eq(snap_recv_finish(r), ERR_BADSTATE);

    cr_assert_eq(snap_recv_open(&r, dir_b, &(struct snap_id){500, 7}, 0, &next),
                 0);
    cr_expect_eq(next, 1);
    pump(s, r, INT32_MAX);
    cr_expect_eq(snap_send_next(s, &p, &len), ERR_BADSTATE);
    snap_send_seek(s, 0);
    struct chunk c0 = next_chunk(s);
    cr_expect_eq(snap_recv_chunk(r, c0.p, c0.len), ERR_EXISTS);
    free(c0.p);
    close_pair(src, s);
    cr_assert_eq(snap_recv_finish(r), 0);
}

/* ---- The swap --------------------------------------------------------- */

struct crash_finish {
    enum storage_fp fp;
    int skip;
    bool fallback; /* no RENAME_EXCHANGE */
};

static void
child_finish(void *arg)
{
    struct crash_finish *cf = arg;
    struct snap_recv *r;
    uint64_t next;

    cr_assert_eq(snap_recv_open(&r, dir_b, &(struct snap_id){500, 7}, 0, &next),
                 0);
    cr_assert(snap_recv_complete(r));
    if (cf->fallback) {
        fail_at(STORAGE_FP_SNAP_SWAP, 0, 1, -EINVAL);
    }
    crash_at(cf->fp, cf->skip);
    (void)snap_recv_finish(r);
}

/* Stage the whole of dir_a in dir_b (whose state is the old one), then
 * crash in finish at cf; return whether dir_b then holds the new state.
 * It holds exactly the old or exactly the new one. */
static bool
crash_in_finish(struct crash_finish cf)
{
    struct digest old_d, new_d, got;
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    make_state(dir_b, 100, 40, 2, 2);
    old_d = digest_of(dir_b);
    new_d = digest_of(dir_a);
    open_pair(&src, &s, &r, &next);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    snap_recv_close(r);

    cr_assert(run_child(child_finish, &cf));
    got = digest_of(dir_b);

    cr_assert(got.hash == old_d.hash || got.hash == new_d.hash);
    expect_same(got, got.hash == new_d.hash ? new_d : old_d);
    cr_expect_not(exists(dir_b, "db.old"));
    return got.hash == new_d.hash;
}

/* A crash before the exchange leaves the old state. */
Test(storage_snapshot, crash_before_exchange_keeps_old_state)
{
    cr_expect_not(crash_in_finish((struct crash_finish){
        .fp = STORAGE_FP_SNAP_SWAP,
    }));
}

/* A crash after the exchange, before the old state is removed, gives
 * the new state; the old one left in db.incoming is never resumed. */
Test(storage_snapshot, crash_after_exchange_gives_new_state)
{
    struct snap_recv *r;
    uint64_t next;

    cr_expect(crash_in_finish((struct crash_finish){
        .fp = STORAGE_FP_SNAP_REMOVE,
    }));

    cr_expect(exists(dir_b, "db.incoming"));
    cr_assert_eq(snap_recv_open(&r, dir_b, &(struct snap_id){40, 2}, 0, &next),
                 0);
    cr_expect_eq(next, 0);
    cr_expect_not(snap_recv_complete(r));
    cr_expect_eq(snap_recv_abort(r), 0);
}

/* Rename fallback: a crash before its first rename keeps the old state. */
Test(storage_snapshot, fallback_crash_before_first_rename_keeps_old)
{
    cr_expect_not(crash_in_finish((struct crash_finish){
        .fp = STORAGE_FP_SNAP_RENAME,
        .fallback = true,
    }));
}

/* Rename fallback: a crash between its renames (no db, only db.old) is
 * repaired by statedb_open() to the old state. */
Test(storage_snapshot, fallback_crash_between_renames_restores_old)
{
    cr_expect_not(crash_in_finish((struct crash_finish){
        .fp = STORAGE_FP_SNAP_RENAME,
        .skip = 1,
        .fallback = true,
    }));
}

/* Rename fallback: a crash before db.old is removed gives the new state,
 * and statedb_open() removes db.old. */
Test(storage_snapshot, fallback_crash_before_removal_gives_new)
{
    cr_expect(crash_in_finish((struct crash_finish){
        .fp = STORAGE_FP_SNAP_REMOVE,
        .fallback = true,
    }));
}

/* Rename fallback without a crash installs the new state cleanly. */
Test(storage_snapshot, fallback_swap_installs_new_state)
{
    make_state(dir_a, N_OBJS, 500, 7, 1);
    make_state(dir_b, 100, 40, 2, 2);
    fail_at(STORAGE_FP_SNAP_SWAP, 0, 1, -EINVAL);

    transfer_all();

    cr_expect_eq(plan.calls[STORAGE_FP_SNAP_RENAME], 2);
    expect_same(digest_of(dir_b), digest_of(dir_a));
    cr_expect_not(exists(dir_b, "db.old"));
    cr_expect_not(exists(dir_b, "db.incoming"));
}

/* A failed exchange reports the error and leaves the old state. */
Test(storage_snapshot, failed_exchange_keeps_old_state)
{
    struct digest old_d;
    struct statedb *src;
    struct snap_send *s;
    struct snap_recv *r;
    uint64_t next;

    make_state(dir_a, N_OBJS, 500, 7, 1);
    make_state(dir_b, 100, 40, 2, 2);
    old_d = digest_of(dir_b);
    open_pair(&src, &s, &r, &next);
    pump(s, r, INT32_MAX);
    close_pair(src, s);
    fail_at(STORAGE_FP_SNAP_SWAP, 0, 1, -EIO);

    cr_expect_eq(snap_recv_finish(r), -EIO);

    expect_same(digest_of(dir_b), old_d);
}

/* ---- wal_reset -------------------------------------------------------- */

static struct wal *
wal_at(const char *dir)
{
    struct wal *w;
    struct wal_opts o = {.segment_bytes = 4096};

    cr_assert_eq(wal_open(&w, dir, &o, NULL), 0);
    return w;
}

/* Entries 1..n, term 1 then 2, in several segments; hard state (3, 7). */
static struct wal *
wal_filled(const char *dir, uint64_t n)
{
    struct wal *w = wal_at(dir);
    uint8_t data[300] = {0};

    for (uint64_t i = 1; i <= n; i++) {
        cr_assert_eq(
            wal_append_entry(w, i, i <= n / 2 ? 1 : 2, data, sizeof(data)), 0);
        if (i % 10 == 0) {
            cr_assert_eq(wal_sync(w), 0);
        }
    }
    cr_assert_eq(wal_append_hardstate(w, 3, 7), 0);
    cr_assert_eq(wal_sync(w), 0);
    return w;
}

static int
count_files(const char *dir, const char *suffix)
{
    char path[160];
    struct dirent *de;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/wal", dir);
    d = opendir(path);
    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);

        if (l > 4 && strcmp(de->d_name + l - 4, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int
count_cb(uint64_t index, uint64_t term, const void *data, size_t len, void *arg)
{
    uint64_t *last = arg;

    (void)term;
    (void)data;
    (void)len;
    *last = index;
    return 0;
}

/* The log after a reset at (index, term), as wal_open() rebuilds it. */
static void
expect_reset_log(struct wal *w, uint64_t index, uint64_t term)
{
    struct wal_stats st;
    uint64_t t = 0, hs_term, hs_vote;

    wal_get_stats(w, &st);
    cr_expect_eq(st.first_index, index + 1);
    cr_expect_eq(st.last_index, index);
    cr_expect_eq(wal_term(w, index, &t), 0);
    cr_expect_eq(t, term);
    cr_expect_eq(wal_term(w, index - 1, &t), ERR_NOTFOUND);
    wal_hardstate(w, &hs_term, &hs_vote);
    cr_expect_eq(hs_term, 3);
    cr_expect_eq(hs_vote, 7);
}

/* After wal_reset(100, 5) the log is empty after 100 with term(100) = 5,
 * takes 101 next, keeps the hard state, and all of it survives reopen
 * with only the new segment on disk. */
Test(storage_snapshot, wal_reset_then_append_survives_reopen)
{
    struct wal *w = wal_filled(dir_a, 60);
    uint64_t t = 0, last = 0;
    struct wal_stats st;

    wal_get_stats(w, &st);
    cr_assert_gt(st.n_segments, 2);

    cr_assert_eq(wal_reset(w, 100, 5), 0);

    expect_reset_log(w, 100, 5);
    cr_expect_eq(wal_append_entry(w, 100, 5, "x", 1), ERR_BADSTATE);
    cr_assert_eq(wal_append_entry(w, 101, 5, "x", 1), 0);
    cr_assert_eq(wal_sync(w), 0);
    wal_close(w);
    cr_expect_eq(count_files(dir_a, ".log"), 1);
    cr_expect_eq(count_files(dir_a, ".rst"), 0);

    w = wal_at(dir_a);
    wal_get_stats(w, &st);
    cr_expect_eq(st.first_index, 101);
    cr_expect_eq(st.last_index, 101);
    cr_expect_eq(wal_term(w, 100, &t), 0);
    cr_expect_eq(t, 5);
    cr_expect_eq(wal_replay(w, 100, count_cb, &last, NULL), 0);
    cr_expect_eq(last, 101);
    wal_hardstate(w, &t, &last);
    cr_expect_eq(t, 3);
    cr_expect_eq(last, 7);
    wal_close(w);
}

/* A hard state still buffered at the reset is made durable by it, and
 * buffered entries are dropped. */
Test(storage_snapshot, wal_reset_keeps_buffered_hardstate)
{
    struct wal *w = wal_at(dir_a);

    cr_assert_eq(wal_append_entry(w, 1, 1, "a", 1), 0);
    cr_assert_eq(wal_append_hardstate(w, 3, 7), 0);

    cr_assert_eq(wal_reset(w, 100, 2), 0);
    wal_close(w);

    w = wal_at(dir_a);
    expect_reset_log(w, 100, 2);
    wal_close(w);
}

/* The reset can go below the current log too (a follower whose log ran
 * ahead with entries of a dead term): the log is then empty after it. */
Test(storage_snapshot, wal_reset_below_last_index)
{
    struct wal *w = wal_filled(dir_a, 60);

    cr_assert_eq(wal_reset(w, 20, 1), 0);
    wal_close(w);

    w = wal_at(dir_a);
    expect_reset_log(w, 20, 1);
    wal_close(w);
}

/* A failure before the reset is durable leaves the old log, in memory and
 * on disk, and no reset file. */
Test(storage_snapshot, wal_reset_failure_keeps_old_log)
{
    struct wal *w = wal_filled(dir_a, 60);
    struct wal_stats st;

    fail_at(STORAGE_FP_WAL_FSYNC, 0, 1, -EIO);

    cr_expect_eq(wal_reset(w, 100, 5), -EIO);

    wal_get_stats(w, &st);
    cr_expect_eq(st.last_index, 60);
    wal_close(w);
    cr_expect_eq(count_files(dir_a, ".rst"), 0);
    w = wal_at(dir_a);
    wal_get_stats(w, &st);
    cr_expect_eq(st.first_index, 1);
    cr_expect_eq(st.last_index, 60);
    wal_close(w);
}

/* When the old segments cannot be removed, the reset still holds; the
 * next sync finishes the removal before it writes. */
Test(storage_snapshot, wal_reset_unlink_failure_is_finished_later)
{
    struct wal *w = wal_filled(dir_a, 60);

    fail_at(STORAGE_FP_WAL_UNLINK, 0, 1, -EIO);

    cr_assert_eq(wal_reset(w, 100, 5), 0);

    expect_reset_log(w, 100, 5);
    cr_expect_eq(count_files(dir_a, ".rst"), 1);
    cr_assert_eq(wal_append_entry(w, 101, 5, "x", 1), 0);
    cr_assert_eq(wal_sync(w), 0);
    cr_expect_eq(count_files(dir_a, ".rst"), 0);
    cr_expect_eq(count_files(dir_a, ".log"), 1);
    wal_close(w);
}

struct crash_reset {
    enum storage_fp fp;
    int skip;
};

static void
child_reset(void *arg)
{
    struct crash_reset *c = arg;
    struct wal *w = wal_filled(dir_a, 60);

    crash_at(c->fp, c->skip);
    (void)wal_reset(w, 100, 5);
}

/* Crash at point fp of a reset; return whether the reopened log is the
 * new one. It is either the whole old log or the new one. */
static bool
crash_in_reset(struct crash_reset c)
{
    struct wal_diag diag;
    struct wal_stats st;
    struct wal *w;
    bool is_new;

    cr_assert(run_child(child_reset, &c));
    cr_assert_eq(wal_open(&w, dir_a, NULL, &diag), 0);
    wal_get_stats(w, &st);
    is_new = st.last_index == 100;
    if (is_new) {
        expect_reset_log(w, 100, 5);
        cr_expect_eq(st.n_segments, 1);
    } else {
        cr_expect_eq(st.first_index, 1);
        cr_expect_eq(st.last_index, 60);
    }
    cr_expect_eq(count_files(dir_a, ".rst"), 0);
    wal_close(w);
    return is_new;
}

/* A crash before the reset file is written leaves the old log. */
Test(storage_snapshot, wal_crash_before_reset_write_keeps_old_log)
{
    cr_expect_not(crash_in_reset((struct crash_reset){
        .fp = STORAGE_FP_WAL_WRITE,
    }));
}

/* A crash once the reset is durable, before the old segments go, is
 * finished by the next open. */
Test(storage_snapshot, wal_crash_after_reset_commit_gives_new_log)
{
    cr_expect(crash_in_reset((struct crash_reset){
        .fp = STORAGE_FP_WAL_RESET,
    }));
}

/* A crash half-way through removing the old segments is finished too. */
Test(storage_snapshot, wal_crash_during_old_segment_removal_gives_new_log)
{
    cr_expect(crash_in_reset((struct crash_reset){
        .fp = STORAGE_FP_WAL_UNLINK,
        .skip = 1,
    }));
}

/* A torn reset file (the crash came before it was durable) is removed,
 * reported in the diag, and the old log is whole. */
Test(storage_snapshot, wal_torn_reset_file_is_removed)
{
    struct wal *w = wal_filled(dir_a, 60);
    struct wal_diag diag;
    struct wal_stats st;
    char path[200];
    int fd;

    wal_get_stats(w, &st);
    wal_close(w);
    snprintf(path, sizeof(path), "%s/wal/wal-%016" PRIx64 "-%016x.rst", dir_a,
             st.n_segments + 1, 101);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "SHWL\x01\x01", 6), 6);
    close(fd);

    cr_assert_eq(wal_open(&w, dir_a, NULL, &diag), 0);

    cr_expect_str_eq(diag.reason, "torn log reset");
    wal_get_stats(w, &st);
    cr_expect_eq(st.last_index, 60);
    cr_expect_eq(count_files(dir_a, ".rst"), 0);
    wal_close(w);
}
