/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_storage.c: the raft log (WAL) and the LMDB state of src/storage.
 *
 * Each test works in its own folder under /tmp (mkdtemp), removed by the
 * suite's fini. Damage is made by editing segment files between a close
 * and an open, as a crash or a bad disk would leave them; I/O failures
 * come from the failure hook of test builds (storage_fp_set).
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
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "base/base.h"

#define PAYLOAD_MAX 512
#define MAX_SEGS 64
#define SEG_PATH 256 /* paths under our short mkdtemp folder */

static char tdir[64];

/* ---- Failure hook ----------------------------------------------------- */

#define N_FP 16 /* more than the points of enum storage_fp */

/* Per point: calls that pass first, then failures to inject. */
struct fp_plan {
    int skip[N_FP];
    int times[N_FP];
    int err[N_FP];
    int hits[N_FP];
    int calls[N_FP]; /* every pass through the point */
};

static struct fp_plan plan;

static int
fp_hook(enum storage_fp fp, void *arg)
{
    struct fp_plan *p = arg;

    p->calls[fp]++;
    if (p->times[fp] == 0) {
        return 0;
    }
    if (p->skip[fp] > 0) {
        p->skip[fp]--;
        return 0;
    }
    p->times[fp]--;
    p->hits[fp]++;
    return p->err[fp];
}

/* Count the passes through every point, failing none. */
static void
count_calls(void)
{
    storage_fp_set(fp_hook, &plan);
}

/* Add a failure to the plan; plans for several points combine. */
static void
fail_at(enum storage_fp fp, int skip, int times, int err)
{
    cr_assert_lt((int)fp, N_FP);
    plan.skip[fp] = skip;
    plan.times[fp] = times;
    plan.err[fp] = err;
    storage_fp_set(fp_hook, &plan);
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
    snprintf(tdir, sizeof(tdir), "/tmp/shoal-storage-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
}

static void
tmp_teardown(void)
{
    storage_fp_set(NULL, NULL);
    if (nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        cr_log_warn("cannot remove %s: %s", tdir, strerror(errno));
    }
}

TestSuite(storage_wal, .init = tmp_setup, .fini = tmp_teardown,
          .timeout = 60.0);
TestSuite(storage_state, .init = tmp_setup, .fini = tmp_teardown,
          .timeout = 60.0);

/* ---- Files ------------------------------------------------------------ */

static void
sub_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tdir, name);
    cr_assert_eq(mkdir(out, 0700), 0);
}

static int
seg_filter(const struct dirent *de)
{
    return strncmp(de->d_name, "wal-", 4) == 0;
}

/* Full paths of the segment files of state dir sd, oldest first. */
static int
seg_paths(const char *sd, char out[][SEG_PATH], int max)
{
    char dir[128];
    struct dirent **ents;
    int n;

    snprintf(dir, sizeof(dir), "%s/wal", sd);
    n = scandir(dir, &ents, seg_filter, alphasort);
    cr_assert_geq(n, 0);
    cr_assert_leq(n, max);
    for (int i = 0; i < n; i++) {
        snprintf(out[i], SEG_PATH, "%s/%.64s", dir, ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    return n;
}

static uint8_t *
file_read(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);

    cr_assert_geq(fd, 0);
    cr_assert_eq(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    buf = malloc(*len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
    close(fd);
    return buf;
}

static void
file_write(const char *path, const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static size_t
file_size(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static void
flip_byte(const char *path, size_t off)
{
    size_t len;
    uint8_t *buf = file_read(path, &len);

    cr_assert_lt(off, len);
    buf[off] ^= 0x5a;
    file_write(path, buf, len);
    free(buf);
}

/* Byte offsets of the records of a segment, through the public parser. */
static size_t
rec_offsets(const char *path, size_t *offs, size_t max)
{
    struct wal_rec rec;
    size_t len, off = 0, n = 0;
    uint8_t *buf = file_read(path, &len);

    while (off < len && n < max) {
        ssize_t got = wal_record_parse(buf + off, len - off, &rec);

        cr_assert_gt(got, 0, "record at %zu does not parse", off);
        offs[n++] = off;
        off += (size_t)got;
    }
    free(buf);
    return n;
}

/* ---- Log helpers ------------------------------------------------------ */

/* Lengths vary with the index so that records end at varied offsets. */
static size_t
payload(uint64_t index, uint64_t term, char *buf)
{
    int n = snprintf(buf, PAYLOAD_MAX, "entry %" PRIu64 " term %" PRIu64, index,
                     term);
    size_t len = (size_t)n + (size_t)(index * 37 % 200);

    memset(buf + n, 'a' + (int)(index % 26), len - (size_t)n);
    return len;
}

static struct wal *
wal_at(const char *sd, uint64_t segment_bytes, struct wal_diag *diag)
{
    struct wal_opts opts = {.segment_bytes = segment_bytes};
    struct wal *w;
    int rc = wal_open(&w, sd, &opts, diag);

    cr_assert_eq(rc, 0, "wal_open: %s", err_str(rc));
    return w;
}

static void
append_range(struct wal *w, uint64_t lo, uint64_t hi, uint64_t term)
{
    char buf[PAYLOAD_MAX];

    for (uint64_t i = lo; i <= hi; i++) {
        size_t len = payload(i, term, buf);

        cr_assert_eq(wal_append_entry(w, i, term, buf, len), 0);
    }
}

/* Append lo..hi, syncing every `every` entries. */
static void
append_synced(struct wal *w, uint64_t lo, uint64_t hi, uint64_t term,
              uint64_t every)
{
    for (uint64_t i = lo; i <= hi; i += every) {
        uint64_t end = i + every - 1 < hi ? i + every - 1 : hi;

        append_range(w, i, end, term);
        cr_assert_eq(wal_sync(w), 0);
    }
}

struct seen {
    uint64_t n, first, last, last_term;
    uint64_t stop_after;
    bool bad;
};

static int
collect_cb(uint64_t index, uint64_t term, const void *data, size_t len,
           void *arg)
{
    struct seen *s = arg;
    char buf[PAYLOAD_MAX];
    size_t want = payload(index, term, buf);

    if ((s->n > 0 && index != s->last + 1) || len != want ||
        memcmp(data, buf, len) != 0) {
        s->bad = true;
    }
    if (s->n++ == 0) {
        s->first = index;
    }
    s->last = index;
    s->last_term = term;
    return s->stop_after != 0 && s->n == s->stop_after ? 7 : 0;
}

static struct seen
replay_from(struct wal *w, uint64_t from)
{
    struct seen s = {0};
    struct wal_diag diag;
    int rc = wal_replay(w, from, collect_cb, &s, &diag);

    cr_assert_eq(rc, 0, "replay: %s", err_str(rc));
    cr_expect_not(s.bad, "replay delivered a wrong or misordered entry");
    return s;
}

static struct wal_stats
stats_of(const struct wal *w)
{
    struct wal_stats st;

    wal_get_stats(w, &st);
    return st;
}

/* Write entries 1..n in one segment of tdir and close; returns its path. */
static void
make_log(const char *sd, uint64_t n, char *seg)
{
    struct wal *w = wal_at(sd, 0, NULL);
    char paths[MAX_SEGS][SEG_PATH];

    append_range(w, 1, n, 1);
    cr_assert_eq(wal_sync(w), 0);
    wal_close(w);
    cr_assert_eq(seg_paths(sd, paths, MAX_SEGS), 1);
    snprintf(seg, PATH_MAX, "%s", paths[0]);
}

/* ---- WAL: basic round trips ------------------------------------------- */

/* A new log has no entries and one segment named for index 1. */
Test(storage_wal, fresh_log_starts_empty)
{
    char paths[MAX_SEGS][SEG_PATH];
    struct wal *w = wal_at(tdir, 0, NULL);
    struct wal_stats st = stats_of(w);

    cr_expect_eq(st.first_index, 1);
    cr_expect_eq(st.last_index, 0);
    cr_expect_eq(st.synced_index, 0);
    cr_assert_eq(seg_paths(tdir, paths, MAX_SEGS), 1);
    cr_expect(strstr(paths[0], "wal-0000000000000001-0000000000000001.log") !=
              NULL);
    cr_expect_eq(replay_from(w, 0).n, 0);
    wal_close(w);
}

/* Synced entries come back after a reopen, all of them, in order. */
Test(storage_wal, append_sync_reopen_replays_in_order)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    struct seen s;

    append_range(w, 1, 30, 1);
    append_range(w, 31, 50, 2);
    cr_assert_eq(wal_sync(w), 0);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    cr_expect_eq(stats_of(w).last_index, 50);
    cr_expect_eq(stats_of(w).last_term, 2);
    s = replay_from(w, 0);
    cr_expect_eq(s.n, 50);
    cr_expect_eq(s.first, 1);
    cr_expect_eq(s.last_term, 2);
    wal_close(w);
}

/* One sync writes a whole batch with one write and one fdatasync; an
 * empty sync makes no system call. */
Test(storage_wal, group_commit_one_fdatasync_per_sync)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    struct wal_stats before = stats_of(w), after;

    append_range(w, 1, 100, 1);
    cr_expect_gt(stats_of(w).pending_bytes, 0);
    cr_expect_eq(stats_of(w).synced_index, 0);
    count_calls();
    cr_assert_eq(wal_sync(w), 0);
    after = stats_of(w);
    cr_expect_eq(plan.calls[STORAGE_FP_WAL_WRITE], 1);
    cr_expect_eq(plan.calls[STORAGE_FP_WAL_FSYNC], 1);
    cr_expect_eq(after.n_fdatasync - before.n_fdatasync, 1);
    cr_expect_eq(after.n_records - before.n_records, 100);
    cr_expect_eq(after.synced_index, 100);
    cr_expect_eq(after.pending_bytes, 0);

    cr_assert_eq(wal_sync(w), 0);
    cr_expect_eq(stats_of(w).n_fdatasync, after.n_fdatasync);
    cr_expect_eq(plan.calls[STORAGE_FP_WAL_WRITE], 1);
    wal_close(w);
}

/* Appends that break index or term order, or are too big, are refused
 * and change nothing. */
Test(storage_wal, append_rejects_gap_step_back_and_oversize)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    char buf[8] = "x";

    append_range(w, 1, 3, 2);
    cr_expect_eq(wal_append_entry(w, 5, 2, buf, 1), ERR_BADSTATE);
    cr_expect_eq(wal_append_entry(w, 3, 2, buf, 1), ERR_BADSTATE);
    cr_expect_eq(wal_append_entry(w, 4, 1, buf, 1), ERR_BADSTATE);
    cr_expect_eq(wal_append_entry(w, 4, 2, buf, WAL_MAX_PAYLOAD + 1),
                 ERR_TOOBIG);
    cr_expect_eq(stats_of(w).last_index, 3);
    cr_assert_eq(wal_sync(w), 0);
    cr_expect_eq(replay_from(w, 0).n, 3);
    wal_close(w);
}

/* wal_term answers for every kept index and only for those. */
Test(storage_wal, term_lookup_follows_term_changes)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    uint64_t t = 0;

    append_range(w, 1, 2, 1);
    append_range(w, 3, 4, 3);
    append_range(w, 5, 5, 4);
    cr_expect_eq(wal_term(w, 0, &t), 0);
    cr_expect_eq(t, 0);
    cr_expect_eq(wal_term(w, 2, &t), 0);
    cr_expect_eq(t, 1);
    cr_expect_eq(wal_term(w, 3, &t), 0);
    cr_expect_eq(t, 3);
    cr_expect_eq(wal_term(w, 5, &t), 0);
    cr_expect_eq(t, 4);
    cr_expect_eq(wal_term(w, 6, &t), ERR_NOTFOUND);
    wal_close(w);
}

/* Term and vote survive a reopen together; a term going back is
 * refused. */
Test(storage_wal, hardstate_round_trip)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    uint64_t term, vote;

    wal_hardstate(w, &term, &vote);
    cr_expect_eq(term, 0);
    cr_assert_eq(wal_append_hardstate(w, 5, 2), 0);
    append_range(w, 1, 3, 5);
    cr_assert_eq(wal_append_hardstate(w, 6, 0), 0);
    cr_assert_eq(wal_append_hardstate(w, 6, 3), 0);
    cr_expect_eq(wal_append_hardstate(w, 4, 1), ERR_BADSTATE);
    cr_assert_eq(wal_sync(w), 0);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    wal_hardstate(w, &term, &vote);
    cr_expect_eq(term, 6);
    cr_expect_eq(vote, 3);
    cr_expect_eq(stats_of(w).last_index, 3);
    wal_close(w);
}

/* ---- WAL: replay --------------------------------------------------- */

/* Replay hands out exactly the entries after the given index. */
Test(storage_wal, replay_from_index_delivers_only_later)
{
    struct wal *w = wal_at(tdir, 2048, NULL);
    struct seen s;
    char buf[8] = "x";

    append_synced(w, 1, 30, 1, 4);
    s = replay_from(w, 17);
    cr_expect_eq(s.n, 13);
    cr_expect_eq(s.first, 18);
    cr_expect_eq(s.last, 30);
    cr_expect_eq(replay_from(w, 30).n, 0);
    cr_expect_eq(replay_from(w, 0).n, 30);

    cr_assert_eq(wal_append_entry(w, 31, 1, buf, 1), 0);
    cr_expect_eq(wal_replay(w, 0, collect_cb, &s, NULL), ERR_BADSTATE);
    wal_close(w);
}

/* A callback's non-zero result ends the replay and is returned. */
Test(storage_wal, replay_stops_on_callback_result)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    struct seen s = {.stop_after = 5};

    append_synced(w, 1, 20, 1, 20);
    cr_expect_eq(wal_replay(w, 10, collect_cb, &s, NULL), 7);
    cr_expect_eq(s.n, 5);
    cr_expect_eq(s.last, 15);
    wal_close(w);
}

/* ---- WAL: torn tails and damage ------------------------------------ */

/* Whatever length of the last record reached the disk, open cuts it
 * off, says where, and keeps every earlier record. */
Test(storage_wal, torn_tail_every_length_is_cut)
{
    char seg[PATH_MAX];
    size_t offs[16], len, n, last, rec_len;
    struct wal_diag diag;
    uint8_t *orig;

    make_log(tdir, 5, seg);
    n = rec_offsets(seg, offs, 16);
    cr_assert_eq(n, 6); /* BASE and five entries */
    orig = file_read(seg, &len);
    last = offs[5];
    rec_len = len - last;

    for (size_t keep = 1; keep < rec_len; keep++) {
        struct wal *w;

        file_write(seg, orig, last + keep);
        w = wal_at(tdir, 0, &diag);
        cr_assert_eq(diag.offset, last, "keep=%zu", keep);
        cr_assert_eq(diag.cut_bytes, keep);
        cr_assert_not_null(diag.reason);
        cr_assert(strcmp(diag.file, seg) == 0);
        cr_assert_eq(file_size(seg), last);
        cr_assert_eq(replay_from(w, 0).n, 4);
        wal_close(w);

        w = wal_at(tdir, 0, &diag); /* the cut was durable and final */
        cr_assert_null(diag.reason);
        cr_assert_eq(stats_of(w).last_index, 4);
        wal_close(w);
    }
    free(orig);
}

/* A batch torn anywhere keeps exactly the records wholly written
 * before the tear. */
Test(storage_wal, torn_batch_keeps_whole_records)
{
    char seg[PATH_MAX];
    size_t offs[16], end[16], len;
    struct wal_diag diag;
    struct wal *w = wal_at(tdir, 0, NULL);
    uint8_t *orig;

    append_synced(w, 1, 5, 1, 5);
    append_synced(w, 6, 9, 1, 4); /* the batch to tear */
    wal_close(w);
    snprintf(seg, sizeof(seg),
             "%s/wal/wal-0000000000000001-0000000000000001.log", tdir);
    cr_assert_eq(rec_offsets(seg, offs, 16), 10);
    orig = file_read(seg, &len);
    for (int k = 0; k < 10; k++) {
        end[k] = k < 9 ? offs[k + 1] : len; /* where entry k ends */
    }

    for (size_t cut = end[5] + 1; cut < len; cut++) {
        uint64_t whole = 5;

        while (whole < 9 && end[whole + 1] <= cut) {
            whole++;
        }
        file_write(seg, orig, cut);
        w = wal_at(tdir, 0, &diag);
        cr_assert_eq(stats_of(w).last_index, whole, "cut=%zu", cut);
        cr_assert_eq(diag.cut_bytes, cut - end[whole]);
        cr_assert_eq(replay_from(w, 0).n, whole);
        wal_close(w);
    }
    free(orig);
}

/* A bad checksum in the very last record is a torn write: cut. */
Test(storage_wal, bad_checksum_at_tail_is_cut)
{
    char seg[PATH_MAX];
    size_t offs[16];
    struct wal_diag diag;
    struct wal *w;

    make_log(tdir, 5, seg);
    rec_offsets(seg, offs, 16);
    flip_byte(seg, offs[5] + WAL_HDR_BYTES + 3);
    w = wal_at(tdir, 0, &diag);
    cr_expect_str_eq(diag.reason, "bad checksum");
    cr_expect_eq(diag.offset, offs[5]);
    cr_expect_eq(stats_of(w).last_index, 4);
    wal_close(w);
}

/* Zeros after the last record (size grew, data never written) are cut
 * and every record survives. */
Test(storage_wal, zero_filled_tail_is_cut)
{
    char seg[PATH_MAX];
    size_t len;
    struct wal_diag diag;
    struct wal *w;
    uint8_t *buf;

    make_log(tdir, 5, seg);
    buf = file_read(seg, &len);
    buf = realloc(buf, len + 4096);
    cr_assert_not_null(buf);
    memset(buf + len, 0, 4096);
    file_write(seg, buf, len + 4096);

    w = wal_at(tdir, 0, &diag);
    cr_expect_eq(diag.cut_bytes, 4096);
    cr_expect_eq(diag.offset, len);
    cr_expect_eq(replay_from(w, 0).n, 5);
    wal_close(w);
    free(buf);
}

/* A bad checksum with valid records after it is damage, not a torn
 * write: open fails and names the file and the record's offset. */
Test(storage_wal, bad_checksum_in_middle_is_corrupt)
{
    char seg[PATH_MAX];
    size_t offs[16], before;
    struct wal_diag diag;
    struct wal *w;

    make_log(tdir, 5, seg);
    rec_offsets(seg, offs, 16);
    before = file_size(seg);
    flip_byte(seg, offs[3] + WAL_HDR_BYTES + 1);

    cr_expect_eq(wal_open(&w, tdir, NULL, &diag), ERR_CORRUPT);
    cr_expect_null(w);
    cr_expect_str_eq(diag.file, seg);
    cr_expect_eq(diag.offset, offs[3]);
    cr_expect_str_eq(diag.reason, "bad checksum");
    cr_expect_eq(diag.cut_bytes, 0);
    cr_expect_eq(file_size(seg), before); /* nothing was cut */
}

/* A damaged header in the middle is damage too. */
Test(storage_wal, bad_magic_in_middle_is_corrupt)
{
    char seg[PATH_MAX];
    size_t offs[16];
    struct wal_diag diag;
    struct wal *w;

    make_log(tdir, 5, seg);
    rec_offsets(seg, offs, 16);
    flip_byte(seg, offs[2]);
    cr_expect_eq(wal_open(&w, tdir, NULL, &diag), ERR_CORRUPT);
    cr_expect_eq(diag.offset, offs[2]);
    cr_expect_str_eq(diag.reason, "bad magic");
}

/* A sound record whose index skips ahead is damage, even at the end. */
Test(storage_wal, index_gap_is_corrupt)
{
    char a[PATH_MAX], b[PATH_MAX], seg_a[PATH_MAX], seg_b[PATH_MAX];
    size_t offs[16], len_a, len_b;
    uint8_t *buf_a, *buf_b;
    struct wal_diag diag;
    struct wal *w;

    sub_dir(a, sizeof(a), "a");
    sub_dir(b, sizeof(b), "b");
    make_log(a, 3, seg_a);
    make_log(b, 5, seg_b);
    rec_offsets(seg_b, offs, 16);

    /* Log a (1..3) followed by entry 5 of log b. */
    buf_a = file_read(seg_a, &len_a);
    buf_b = file_read(seg_b, &len_b);
    buf_a = realloc(buf_a, len_a + (len_b - offs[5]));
    cr_assert_not_null(buf_a);
    memcpy(buf_a + len_a, buf_b + offs[5], len_b - offs[5]);
    file_write(seg_a, buf_a, len_a + (len_b - offs[5]));

    cr_expect_eq(wal_open(&w, a, NULL, &diag), ERR_CORRUPT);
    cr_expect_eq(diag.offset, len_a);
    cr_expect_str_eq(diag.reason, "index gap or step back");
    free(buf_a);
    free(buf_b);
}

/* Only the last segment may be torn: a short older segment is damage. */
Test(storage_wal, torn_older_segment_is_corrupt)
{
    char paths[MAX_SEGS][SEG_PATH];
    struct wal *w = wal_at(tdir, 1024, NULL);
    struct wal_diag diag;
    size_t len;
    uint8_t *buf;
    int n;

    append_synced(w, 1, 40, 1, 5);
    wal_close(w);
    n = seg_paths(tdir, paths, MAX_SEGS);
    cr_assert_geq(n, 3);

    buf = file_read(paths[0], &len);
    file_write(paths[0], buf, len - 10);
    cr_expect_eq(wal_open(&w, tdir, NULL, &diag), ERR_CORRUPT);
    cr_expect_str_eq(diag.file, paths[0]);
    free(buf);
}

/* A segment missing between two others is damage, named by the next. */
Test(storage_wal, missing_segment_is_corrupt)
{
    char paths[MAX_SEGS][SEG_PATH];
    struct wal *w = wal_at(tdir, 1024, NULL);
    struct wal_diag diag;
    int n;

    append_synced(w, 1, 40, 1, 5);
    wal_close(w);
    n = seg_paths(tdir, paths, MAX_SEGS);
    cr_assert_geq(n, 3);
    cr_assert_eq(unlink(paths[1]), 0);

    cr_expect_eq(wal_open(&w, tdir, NULL, &diag), ERR_CORRUPT);
    cr_expect_str_eq(diag.file, paths[2]);
}

/* A segment torn while being created (a crash during rotation) is
 * removed, and the log goes on from the previous one. */
Test(storage_wal, torn_new_segment_is_removed)
{
    char paths[MAX_SEGS][SEG_PATH], extra[PATH_MAX];
    struct wal *w = wal_at(tdir, 0, NULL);
    const uint8_t half[10] = {0x53, 0x48, 0x57, 0x4c, 1, 1};
    struct wal_diag diag;

    append_synced(w, 1, 8, 1, 8);
    wal_close(w);
    snprintf(extra, sizeof(extra),
             "%s/wal/wal-0000000000000002-0000000000000009.log", tdir);
    file_write(extra, half, sizeof(half));

    w = wal_at(tdir, 0, &diag);
    cr_expect_str_eq(diag.file, extra);
    cr_expect_eq(diag.offset, 0);
    cr_expect_eq(diag.cut_bytes, sizeof(half));
    cr_expect_eq(seg_paths(tdir, paths, MAX_SEGS), 1);
    append_synced(w, 9, 12, 1, 4);
    cr_expect_eq(replay_from(w, 0).n, 12);
    wal_close(w);
}

/* The public parser refuses short, damaged and oversized records. */
Test(storage_wal, record_parse_rejects_bad_input)
{
    char seg[PATH_MAX];
    size_t offs[16], len;
    struct wal_rec rec;
    uint8_t *buf;

    make_log(tdir, 2, seg);
    rec_offsets(seg, offs, 16);
    buf = file_read(seg, &len);

    cr_expect_eq(wal_record_parse(buf + offs[1], len - offs[1], &rec),
                 (ssize_t)(offs[2] - offs[1]));
    cr_expect_eq(rec.type, WAL_REC_ENTRY);
    cr_expect_eq(rec.index, 1);
    cr_expect_eq(wal_record_parse(buf, WAL_HDR_BYTES - 1, &rec), ERR_AGAIN);
    cr_expect_eq(wal_record_parse(buf + offs[1], WAL_HDR_BYTES + 1, &rec),
                 ERR_AGAIN);
    buf[offs[1] + 11] = 0xff; /* length far over the limit */
    cr_expect_eq(wal_record_parse(buf + offs[1], len - offs[1], &rec),
                 ERR_CORRUPT);
    memset(buf, 0xee, WAL_HDR_BYTES);
    cr_expect_eq(wal_record_parse(buf, len, &rec), ERR_CORRUPT);
    free(buf);
}

/* ---- WAL: segments ------------------------------------------------- */

/* Past the size limit the log moves to a new segment; all of it
 * replays after a reopen. */
Test(storage_wal, rotation_spreads_entries_over_segments)
{
    char paths[MAX_SEGS][SEG_PATH];
    struct wal *w = wal_at(tdir, 1024, NULL);
    struct wal_stats st;
    struct seen s;
    int n;

    append_synced(w, 1, 100, 1, 10);
    st = stats_of(w);
    cr_expect_gt(st.n_segments, 3);
    n = seg_paths(tdir, paths, MAX_SEGS);
    cr_expect_eq((uint64_t)n, st.n_segments);
    cr_expect_gt(st.n_dirsync, st.n_segments - 1);
    wal_close(w);

    w = wal_at(tdir, 1024, NULL);
    s = replay_from(w, 0);
    cr_expect_eq(s.n, 100);
    cr_expect_eq(s.last, 100);
    wal_close(w);
}

/* Last entry index of each segment file, parsed from disk. */
static uint64_t
seg_last_index(const char *path)
{
    struct wal_rec rec;
    size_t len, off = 0;
    uint64_t last = 0;
    uint8_t *buf = file_read(path, &len);

    while (off < len) {
        ssize_t got = wal_record_parse(buf + off, len - off, &rec);

        cr_assert_gt(got, 0);
        if (rec.type == WAL_REC_ENTRY || rec.type == WAL_REC_BASE) {
            last = rec.index;
        }
        off += (size_t)got;
    }
    free(buf);
    return last;
}

/* Compaction removes the segments whose entries are all at or below
 * the index, and nothing that holds a later entry. */
Test(storage_wal, compaction_removes_only_segments_wholly_below)
{
    char before[MAX_SEGS][SEG_PATH], after[MAX_SEGS][SEG_PATH];
    uint64_t last_of[MAX_SEGS];
    struct wal *w = wal_at(tdir, 1024, NULL);
    int n_before, n_after, removed;

    append_synced(w, 1, 100, 1, 5);
    n_before = seg_paths(tdir, before, MAX_SEGS);
    for (int i = 0; i < n_before; i++) {
        last_of[i] = seg_last_index(before[i]);
    }

    cr_assert_eq(wal_compact(w, 50), 0);
    n_after = seg_paths(tdir, after, MAX_SEGS);
    removed = n_before - n_after;
    cr_assert_gt(removed, 0);
    for (int i = 0; i < removed; i++) {
        cr_expect_leq(last_of[i], 50);
    }
    cr_expect_gt(last_of[removed], 50);
    cr_expect_str_eq(after[0], before[removed]);
    cr_expect_leq(stats_of(w).first_index, 51);
    cr_expect_eq(replay_from(w, 50).n, 50);
    cr_expect_eq(wal_replay(w, 0, collect_cb, &(struct seen){0}, NULL),
                 ERR_NOTFOUND);
    wal_close(w);

    w = wal_at(tdir, 1024, NULL);
    cr_expect_eq(replay_from(w, 50).last, 100);
    wal_close(w);
}

/* keep_entries holds back that many entries below the index. */
Test(storage_wal, compaction_keeps_tail)
{
    struct wal_opts opts = {.segment_bytes = 1024, .keep_entries = 20};
    struct wal *w;

    cr_assert_eq(wal_open(&w, tdir, &opts, NULL), 0);
    append_synced(w, 1, 100, 1, 5);
    cr_assert_eq(wal_compact(w, 50), 0);
    cr_expect_gt(stats_of(w).first_index, 1);
    cr_expect_leq(stats_of(w).first_index, 31);
    cr_expect_eq(replay_from(w, 30).n, 70);
    wal_close(w);
}

/* The active segment is never removed, whatever the index. */
Test(storage_wal, compaction_keeps_active_segment)
{
    struct wal *w = wal_at(tdir, 0, NULL);

    append_synced(w, 1, 10, 1, 10);
    cr_assert_eq(wal_compact(w, 1000), 0);
    cr_expect_eq(stats_of(w).n_segments, 1);
    cr_expect_eq(replay_from(w, 0).n, 10);
    wal_close(w);
}

/* The newest hard state outlives the removal of the segment holding it. */
Test(storage_wal, hardstate_survives_compaction)
{
    struct wal *w = wal_at(tdir, 1024, NULL);
    uint64_t term, vote;

    cr_assert_eq(wal_append_hardstate(w, 4, 9), 0);
    append_synced(w, 1, 100, 4, 5);
    cr_assert_eq(wal_compact(w, 90), 0);
    cr_expect_gt(stats_of(w).first_index, 50);
    wal_close(w);

    w = wal_at(tdir, 1024, NULL);
    wal_hardstate(w, &term, &vote);
    cr_expect_eq(term, 4);
    cr_expect_eq(vote, 9);
    wal_close(w);
}

/* ---- WAL: truncation ----------------------------------------------- */

/* Entries after the index go; new ones take their place and both
 * survive a reopen in the right terms. */
Test(storage_wal, truncate_suffix_replaces_later_entries)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    struct seen s;
    uint64_t t;

    append_synced(w, 1, 10, 1, 10);
    cr_assert_eq(wal_truncate_suffix(w, 6), 0);
    cr_expect_eq(stats_of(w).last_index, 6);
    cr_expect_eq(wal_term(w, 7, &t), ERR_NOTFOUND);
    append_synced(w, 7, 9, 2, 3);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    cr_expect_eq(stats_of(w).last_index, 9);
    cr_expect_eq(stats_of(w).last_term, 2);
    s = replay_from(w, 0); /* payloads check the term of each index */
    cr_expect_eq(s.n, 9);
    cr_expect_eq(s.last_term, 2);
    cr_expect_eq(wal_term(w, 6, &t), 0);
    cr_expect_eq(t, 1);
    wal_close(w);
}

/* Truncating entries that are still buffered writes them first, then
 * cuts them; the result is the same after a reopen. */
Test(storage_wal, truncate_with_pending_entries)
{
    struct wal *w = wal_at(tdir, 0, NULL);

    append_range(w, 1, 5, 1);
    cr_assert_eq(wal_truncate_suffix(w, 3), 0);
    cr_expect_eq(stats_of(w).synced_index, 3);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    cr_expect_eq(stats_of(w).last_index, 3);
    cr_expect_eq(replay_from(w, 0).n, 3);
    wal_close(w);
}

/* A hard state written after the cut point is not lost by the cut. */
Test(storage_wal, truncate_keeps_hardstate)
{
    struct wal *w = wal_at(tdir, 0, NULL);
    uint64_t term, vote;

    append_range(w, 1, 10, 1);
    cr_assert_eq(wal_append_hardstate(w, 3, 7), 0);
    cr_assert_eq(wal_sync(w), 0);
    cr_assert_eq(wal_truncate_suffix(w, 5), 0);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    wal_hardstate(w, &term, &vote);
    cr_expect_eq(term, 3);
    cr_expect_eq(vote, 7);
    cr_expect_eq(stats_of(w).last_index, 5);
    wal_close(w);
}

/* A cut across segments, then compaction, then reopen: the live entries
 * and only they come back. */
Test(storage_wal, truncate_across_segments_then_compact)
{
    struct wal *w = wal_at(tdir, 1024, NULL);
    struct seen s;

    append_synced(w, 1, 60, 1, 5);
    cr_assert_eq(wal_truncate_suffix(w, 20), 0);
    append_synced(w, 21, 70, 2, 5);
    cr_assert_eq(wal_compact(w, 40), 0);
    cr_expect_leq(stats_of(w).first_index, 41);
    wal_close(w);

    w = wal_at(tdir, 1024, NULL);
    cr_expect_leq(stats_of(w).first_index, 41);
    s = replay_from(w, 40);
    cr_expect_eq(s.first, 41);
    cr_expect_eq(s.n, 30);
    cr_expect_eq(s.last_term, 2);
    wal_close(w);
}

/* A cut below what compaction removed is refused. */
Test(storage_wal, truncate_below_first_index_is_refused)
{
    struct wal *w = wal_at(tdir, 1024, NULL);
    uint64_t first;

    append_synced(w, 1, 60, 1, 5);
    cr_assert_eq(wal_compact(w, 40), 0);
    first = stats_of(w).first_index;
    cr_assert_gt(first, 2);
    cr_expect_eq(wal_truncate_suffix(w, first - 2), ERR_BADSTATE);
    cr_expect_eq(wal_truncate_suffix(w, 100), 0); /* beyond the end */
    cr_expect_eq(stats_of(w).last_index, 60);
    wal_close(w);
}

/* ---- WAL: I/O failures --------------------------------------------- */

/* ENOSPC on write: nothing new is durable, the file is unchanged, and
 * a retry writes the whole batch exactly once. */
Test(storage_wal, write_enospc_then_retry)
{
    char seg[PATH_MAX];
    struct wal *w = wal_at(tdir, 0, NULL);
    size_t size;
    struct seen s;

    append_synced(w, 1, 5, 1, 5);
    snprintf(seg, sizeof(seg),
             "%s/wal/wal-0000000000000001-0000000000000001.log", tdir);
    size = file_size(seg);

    append_range(w, 6, 8, 1);
    fail_at(STORAGE_FP_WAL_WRITE, 0, 1, -ENOSPC);
    cr_expect_eq(wal_sync(w), -ENOSPC);
    cr_expect_eq(stats_of(w).synced_index, 5);
    cr_expect_eq(file_size(seg), size);

    append_range(w, 9, 9, 1); /* more may be buffered meanwhile */
    cr_assert_eq(wal_sync(w), 0);
    cr_expect_eq(stats_of(w).synced_index, 9);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    s = replay_from(w, 0);
    cr_expect_eq(s.n, 9);
    wal_close(w);
}

/* EIO from fdatasync: the written batch is cut back, so a restart
 * without a retry sees only what was durable. */
Test(storage_wal, fdatasync_eio_cuts_batch)
{
    char seg[PATH_MAX];
    struct wal *w = wal_at(tdir, 0, NULL);
    size_t size;

    append_synced(w, 1, 5, 1, 5);
    snprintf(seg, sizeof(seg),
             "%s/wal/wal-0000000000000001-0000000000000001.log", tdir);
    size = file_size(seg);

    append_range(w, 6, 8, 1);
    fail_at(STORAGE_FP_WAL_FSYNC, 0, 1, -EIO);
    cr_expect_eq(wal_sync(w), -EIO);
    cr_expect_eq(plan.hits[STORAGE_FP_WAL_FSYNC], 1);
    cr_expect_eq(file_size(seg), size);
    wal_close(w); /* gives up on the batch */

    w = wal_at(tdir, 0, NULL);
    cr_expect_eq(stats_of(w).last_index, 5);
    wal_close(w);
}

/* When the cut after a failed sync fails too, the next sync redoes it
 * first, and the retry leaves every record exactly once. */
Test(storage_wal, failed_cut_is_redone_before_retry)
{
    char seg[PATH_MAX];
    struct wal *w = wal_at(tdir, 0, NULL);
    size_t size;

    append_synced(w, 1, 5, 1, 5);
    snprintf(seg, sizeof(seg),
             "%s/wal/wal-0000000000000001-0000000000000001.log", tdir);
    size = file_size(seg);
    append_range(w, 6, 8, 1);
    fail_at(STORAGE_FP_WAL_FSYNC, 0, 1, -EIO);
    fail_at(STORAGE_FP_WAL_CUT, 0, 2, -EIO);
    cr_expect_eq(wal_sync(w), -EIO);
    cr_expect_gt(file_size(seg), size); /* the batch is still there */
    cr_expect_eq(wal_sync(w), -EIO);    /* the pending cut fails again */
    cr_assert_eq(wal_sync(w), 0);
    cr_expect_eq(plan.hits[STORAGE_FP_WAL_CUT], 2);
    wal_close(w);

    w = wal_at(tdir, 0, NULL);
    cr_expect_eq(replay_from(w, 0).n, 8);
    wal_close(w);
}

/* A rotation that cannot create its file fails no sync: the current
 * segment grows, and a later rotation works. */
Test(storage_wal, rotation_failure_keeps_current_segment)
{
    struct wal *w = wal_at(tdir, 1024, NULL);

    fail_at(STORAGE_FP_WAL_CREATE, 0, 3, -ENOSPC);
    append_synced(w, 1, 30, 1, 10);
    cr_expect_eq(stats_of(w).n_segments, 1);
    cr_expect_eq(stats_of(w).synced_index, 30);
    append_synced(w, 31, 40, 1, 10);
    cr_expect_eq(stats_of(w).n_segments, 2);
    wal_close(w);

    w = wal_at(tdir, 1024, NULL);
    cr_expect_eq(replay_from(w, 0).n, 40);
    wal_close(w);
}

/* A segment made but not durably named must go before anything else is
 * written (else its base could cut later entries after a crash): while
 * it cannot be removed, syncs fail. */
Test(storage_wal, half_made_segment_blocks_writes_until_removed)
{
    char paths[MAX_SEGS][SEG_PATH];
    struct wal *w = wal_at(tdir, 1024, NULL);

    append_synced(w, 1, 5, 1, 5);
    fail_at(STORAGE_FP_WAL_DIRSYNC, 0, 1, -EIO);
    fail_at(STORAGE_FP_WAL_UNLINK, 0, 2, -EIO);
    append_synced(w, 6, 15, 1, 10); /* rotation fails, so does cleanup */
    cr_expect_eq(stats_of(w).n_segments, 1);
    cr_expect_eq(seg_paths(tdir, paths, MAX_SEGS), 2);

    append_range(w, 16, 20, 1);
    cr_expect_eq(wal_sync(w), -EIO);
    cr_expect_eq(stats_of(w).synced_index, 15);
    cr_assert_eq(wal_sync(w), 0); /* removes it, writes, rotates */
    cr_expect_eq(stats_of(w).n_segments, 2);
    cr_expect_eq(seg_paths(tdir, paths, MAX_SEGS), 2);
    wal_close(w);

    w = wal_at(tdir, 1024, NULL);
    cr_expect_eq(replay_from(w, 0).n, 20);
    wal_close(w);
}

/* ---- Both halves together -------------------------------------- */

static int
count_cb(uint8_t kind, const char *id, const void *val, size_t len, void *arg)
{
    (void)kind;
    (void)id;
    (void)val;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

/* The restart path: state flushed at an applied index, log compacted
 * below it, then both reopened; replay after the stored index gives
 * every later entry and nothing twice. */
Test(storage_wal, restart_replays_after_flushed_index)
{
    struct wal *w = wal_at(tdir, 1024, NULL);
    struct statedb *db;
    struct statedb_meta m = {.applied_index = 60, .applied_term = 1};
    struct statedb_write put = {
        .op = STATEDB_PUT, .kind = 2, .id = "n1", .val = "node", .len = 4};
    struct seen s;
    int n_objs = 0;

    cr_assert_eq(statedb_open(&db, tdir, 0), 0);
    append_synced(w, 1, 80, 1, 5);
    cr_assert_eq(statedb_flush(db, &put, 1, &m), 0);
    cr_assert_eq(wal_compact(w, m.applied_index), 0);
    cr_expect_gt(stats_of(w).first_index, 1);
    wal_close(w);
    statedb_close(db);

    cr_assert_eq(statedb_open(&db, tdir, 0), 0);
    cr_assert_eq(statedb_load(db, count_cb, &n_objs, &m), 0);
    cr_expect_eq(n_objs, 1);
    w = wal_at(tdir, 1024, NULL);
    s = replay_from(w, m.applied_index);
    cr_expect_eq(s.first, 61);
    cr_expect_eq(s.n, 20);
    wal_close(w);
    statedb_close(db);
}

/* ---- State database ------------------------------------------------- */

struct objs {
    int n;
    uint8_t kinds[256];
    char ids[256][STATEDB_MAX_ID + 1];
    char vals[256][64];
    int stop_after;
};

static int
objs_cb(uint8_t kind, const char *id, const void *val, size_t len, void *arg)
{
    struct objs *o = arg;

    cr_assert_lt(o->n, 256);
    cr_assert_lt(len, 64);
    o->kinds[o->n] = kind;
    snprintf(o->ids[o->n], sizeof(o->ids[0]), "%s", id);
    memcpy(o->vals[o->n], val, len);
    o->vals[o->n][len] = '\0';
    o->n++;
    return o->stop_after != 0 && o->n == o->stop_after ? 9 : 0;
}

static struct statedb *
db_at(size_t map_bytes)
{
    struct statedb *db;
    int rc = statedb_open(&db, tdir, map_bytes);

    cr_assert_eq(rc, 0, "statedb_open: %s", err_str(rc));
    return db;
}

static void
put_n(struct statedb *db, int lo, int hi, uint64_t applied)
{
    struct statedb_write ws[256];
    char ids[256][16], vals[256][32];
    struct statedb_meta m = {.applied_index = applied,
                             .applied_term = 2,
                             .membership = "m1,m2",
                             .membership_len = 5};
    int n = 0;

    for (int i = lo; i <= hi; i++, n++) {
        snprintf(ids[n], sizeof(ids[n]), "obj-%03d", i);
        snprintf(vals[n], sizeof(vals[n]), "value of %d", i);
        ws[n] = (struct statedb_write){.op = STATEDB_PUT,
                                       .kind = (uint8_t)(i % 3),
                                       .id = ids[n],
                                       .val = vals[n],
                                       .len = strlen(vals[n])};
    }
    cr_assert_eq(statedb_flush(db, ws, (size_t)n, &m), 0);
}

static struct objs
load_all(struct statedb *db, struct statedb_meta *m)
{
    struct objs o = {0};
    int rc = statedb_load(db, objs_cb, &o, m);

    cr_assert_eq(rc, 0, "statedb_load: %s", err_str(rc));
    return o;
}

/* A new database holds no object and a zero meta record. */
Test(storage_state, fresh_db_is_empty)
{
    struct statedb *db = db_at(0);
    struct statedb_meta m;
    struct stat st;
    char path[PATH_MAX];

    cr_expect_eq(load_all(db, &m).n, 0);
    cr_expect_eq(m.applied_index, 0);
    cr_expect_eq(m.membership_len, 0);
    snprintf(path, sizeof(path), "%s/db", tdir);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
    statedb_close(db);
}

/* Every flushed object and the meta record load back after a reopen. */
Test(storage_state, flush_then_reopen_loads_all)
{
    struct statedb *db = db_at(0);
    struct statedb_meta m;
    struct objs o;

    put_n(db, 1, 100, 42);
    statedb_close(db);

    db = db_at(0);
    o = load_all(db, &m);
    cr_expect_eq(o.n, 100);
    cr_expect_eq(m.applied_index, 42);
    cr_expect_eq(m.applied_term, 2);
    cr_assert_eq(m.membership_len, 5);
    cr_expect(memcmp(m.membership, "m1,m2", 5) == 0);
    for (int i = 0; i < o.n; i++) {
        char want[32];
        int k;

        cr_assert_eq(sscanf(o.ids[i], "obj-%d", &k), 1);
        snprintf(want, sizeof(want), "value of %d", k);
        cr_expect_eq(o.kinds[i], k % 3);
        cr_expect_str_eq(o.vals[i], want);
    }
    cr_expect_eq(o.kinds[0], 0); /* key order: kind first */
    statedb_close(db);
}

/* Deletes remove objects; deleting a missing id is not an error. */
Test(storage_state, delete_removes_object)
{
    struct statedb *db = db_at(0);
    struct statedb_write ws[] = {
        {.op = STATEDB_DEL, .kind = 1, .id = "obj-001"},
        {.op = STATEDB_DEL, .kind = 1, .id = "never-was"},
    };
    struct statedb_meta m = {.applied_index = 11};

    put_n(db, 1, 10, 10);
    cr_assert_eq(statedb_flush(db, ws, ARRAY_LEN(ws), &m), 0);
    cr_expect_eq(load_all(db, &m).n, 9);
    cr_expect_eq(m.applied_index, 11);
    statedb_close(db);
}

/* A batch whose commit fails leaves objects and meta as they were. */
Test(storage_state, failed_commit_stores_nothing)
{
    struct statedb *db = db_at(0);
    struct statedb_write ws[] = {
        {.op = STATEDB_PUT, .kind = 1, .id = "late", .val = "v", .len = 1},
        {.op = STATEDB_DEL, .kind = 1, .id = "obj-001"},
    };
    struct statedb_meta m = {.applied_index = 20};

    put_n(db, 1, 10, 10);
    fail_at(STORAGE_FP_DB_COMMIT, 0, 1, -EIO);
    cr_expect_eq(statedb_flush(db, ws, 2, &m), -EIO);
    cr_expect_eq(load_all(db, &m).n, 10);
    cr_expect_eq(m.applied_index, 10);

    m = (struct statedb_meta){.applied_index = 20};
    cr_expect_eq(statedb_flush(db, ws, 2, &m), 0); /* the retry */
    statedb_close(db);

    db = db_at(0);
    cr_expect_eq(load_all(db, &m).n, 10);
    cr_expect_eq(m.applied_index, 20);
    statedb_close(db);
}

/* A bad id late in a batch cancels the whole batch. */
Test(storage_state, bad_id_cancels_batch)
{
    struct statedb *db = db_at(0);
    char long_id[STATEDB_MAX_ID + 2];
    struct statedb_meta m = {.applied_index = 5};
    struct statedb_write ws[] = {
        {.op = STATEDB_PUT, .kind = 1, .id = "ok", .val = "v", .len = 1},
        {.op = STATEDB_PUT, .kind = 1, .id = long_id, .val = "v", .len = 1},
    };

    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    cr_expect_eq(statedb_flush(db, ws, 2, &m), ERR_TOOBIG);
    ws[1].id = "";
    cr_expect_eq(statedb_flush(db, ws, 2, &m), ERR_TOOBIG);
    cr_expect_eq(load_all(db, &m).n, 0);
    cr_expect_eq(m.applied_index, 0);
    statedb_close(db);
}

/* The applied index never moves back: the WAL is compacted below it. */
Test(storage_state, applied_index_never_moves_back)
{
    struct statedb *db = db_at(0);
    struct statedb_meta m = {.applied_index = 9};

    put_n(db, 1, 2, 10);
    cr_expect_eq(statedb_flush(db, NULL, 0, &m), ERR_BADSTATE);
    m.applied_index = 10;
    cr_expect_eq(statedb_flush(db, NULL, 0, &m), 0);
    statedb_close(db);
}

/* An iterator reads in slices from one snapshot; a flush between slices
 * is not seen by it. */
Test(storage_state, iterator_reads_snapshot_in_slices)
{
    struct statedb *db = db_at(0);
    struct statedb_iter *it;
    struct statedb_meta m;
    struct objs o = {0};

    put_n(db, 1, 25, 25);
    cr_assert_eq(statedb_iter_begin(db, &it, &m), 0);
    cr_expect_eq(m.applied_index, 25);
    cr_expect_eq(statedb_iter_next(it, 10, objs_cb, &o), ERR_AGAIN);
    put_n(db, 26, 30, 30);
    cr_expect_eq(statedb_iter_next(it, 10, objs_cb, &o), ERR_AGAIN);
    cr_expect_eq(statedb_iter_next(it, 10, objs_cb, &o), 0);
    cr_expect_eq(o.n, 25);
    cr_expect_eq(m.applied_index, 25);
    cr_expect(memcmp(m.membership, "m1,m2", 5) == 0);
    statedb_iter_end(it);

    cr_expect_eq(load_all(db, &m).n, 30);
    statedb_close(db);
}

/* A load callback's non-zero result stops the walk and is returned. */
Test(storage_state, load_callback_result_stops_walk)
{
    struct statedb *db = db_at(0);
    struct statedb_meta m;
    struct objs o = {.stop_after = 3};

    put_n(db, 1, 10, 10);
    cr_expect_eq(statedb_load(db, objs_cb, &o, &m), 9);
    cr_expect_eq(o.n, 3);
    statedb_close(db);
}

/* A malformed meta record is reported as corruption, not trusted. */
Test(storage_state, corrupt_meta_is_reported)
{
    struct statedb *db = db_at(0);
    char path[PATH_MAX];
    struct statedb_meta m;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {.mv_size = 7, .mv_data = "applied"};
    MDB_val v = {.mv_size = 3, .mv_data = "bad"};

    put_n(db, 1, 2, 2);
    statedb_close(db);

    snprintf(path, sizeof(path), "%s/db", tdir);
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 2), 0);
    cr_assert_eq(mdb_env_open(env, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    db = db_at(0);
    cr_expect_eq(statedb_load(db, objs_cb, &(struct objs){0}, &m), ERR_CORRUPT);
    statedb_close(db);
}

/* A map too small for the batch gives ERR_TOOBIG and stores nothing. */
Test(storage_state, full_map_is_toobig)
{
    struct statedb *db = db_at(1u << 20);
    static char big[2u << 20];
    struct statedb_meta m = {.applied_index = 1};
    struct statedb_write ws[] = {
        {.op = STATEDB_PUT,
         .kind = 1,
         .id = "big",
         .val = big,
         .len = sizeof(big)},
    };

    cr_expect_eq(statedb_flush(db, ws, 1, &m), ERR_TOOBIG);
    cr_expect_eq(load_all(db, &m).n, 0);
    statedb_close(db);
}
