/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * wal_scan.c: recovery of the log at open, and replay.
 *
 * Reads segment files through read-only mappings and treats every byte
 * as untrusted: damage becomes ERR_CORRUPT with the file and offset in a
 * wal_diag, never an assert. Recovery rebuilds the in-memory view of
 * wal.c (segments, terms, hard state) by applying each record's rules in
 * file order, so a reopened log looks exactly like the one that was
 * running.
 *
 * Torn tail versus damage: only the last segment can be torn (wal.c,
 * rule 2). A bad record there is a torn write when nothing valid follows
 * it: the scan for a valid record starts after the end its header claims
 * when that header is sound (so a payload that happens to hold record
 * bytes cannot fool it), else at the next byte.
 *
 * Before the segments are scanned, a reset left by a crash (a .rst file,
 * wal.c rule 6) is finished when complete and removed when torn.
 */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "storage/storage_int.h"

struct seg_file {
    uint64_t seq;
    uint64_t first;
    char name[WAL_NAME_BYTES];
};

struct file_list {
    struct seg_file *v;
    size_t n, cap;
};

/* A mapped segment and where a walk over it stopped. */
struct scan {
    uint8_t *map;
    size_t size;
    size_t off;
    const char *why; /* set when the walk stopped on bad bytes */
    bool torn;       /* ... and nothing valid follows them */
};

/* What wal_replay() hands out: entries in (from, hi]. */
struct replay {
    uint64_t from;
    uint64_t hi;
    wal_entry_cb *cb;
    void *arg;
};

/* ---- Files ------------------------------------------------------------ */

static bool
parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < 16; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9') {
            v = v << 4 | (uint64_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        } else {
            return false;
        }
    }
    *out = v;
    return true;
}

/* "wal-<16 hex seq>-<16 hex first>.log"; anything else is not ours. */
static bool
parse_name(const char *name, uint64_t *seq, uint64_t *first)
{
    if (strlen(name) != WAL_NAME_BYTES - 1 || memcmp(name, "wal-", 4) != 0 ||
        name[20] != '-' || strcmp(name + 37, ".log") != 0) {
        return false;
    }
    return parse_hex16(name + 4, seq) && parse_hex16(name + 21, first);
}

/* "wal-<16 hex seq>-<16 hex first>.rst": a reset segment (wal.c, rule 6). */
static bool
parse_reset_name(const char *name, uint64_t *seq, uint64_t *first)
{
    if (strlen(name) != WAL_NAME_BYTES - 1 || memcmp(name, "wal-", 4) != 0 ||
        name[20] != '-' || strcmp(name + 37, ".rst") != 0) {
        return false;
    }
    return parse_hex16(name + 4, seq) && parse_hex16(name + 21, first);
}

static int
files_push(struct file_list *fl, const char *name, uint64_t seq, uint64_t first)
{
    if (fl->n == fl->cap) {
        size_t cap = fl->cap > 0 ? 2 * fl->cap : 16;
        struct seg_file *v = realloc(fl->v, cap * sizeof(*v));

        if (v == NULL) {
            return ERR_NOMEM;
        }
        fl->v = v;
        fl->cap = cap;
    }
    fl->v[fl->n].seq = seq;
    fl->v[fl->n].first = first;
    memcpy(fl->v[fl->n].name, name, WAL_NAME_BYTES);
    fl->n++;
    return 0;
}

static int
cmp_seq(const void *a, const void *b)
{
    const struct seg_file *x = a, *y = b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
list_segments(struct wal *w, struct file_list *fl, struct wal_diag *diag)
{
    struct dirent *de;
    uint64_t seq, first;
    DIR *d;
    int rc = 0;

    d = opendir(w->dir);
    if (d == NULL) {
        return -errno;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (parse_name(de->d_name, &seq, &first)) {
            rc = files_push(fl, de->d_name, seq, first);
        }
    }
    closedir(d);
    if (rc != 0) {
        return rc;
    }

    if (fl->n > 1) {
        qsort(fl->v, fl->n, sizeof(*fl->v), cmp_seq);
    }
    /* Only the oldest segments are ever removed (wal.c, rule 4). */
    for (size_t i = 1; i < fl->n; i++) {
        if (fl->v[i].seq != fl->v[i - 1].seq + 1) {
            wal__diag_set(diag, w, fl->v[i].name, 0,
                          "segment missing before this one");
            return ERR_CORRUPT;
        }
    }
    return 0;
}

static int
map_file(int fd, struct scan *s)
{
    struct stat st;
    void *p;

    if (fstat(fd, &st) != 0) {
        return -errno;
    }
    if (st.st_size == 0) {
        return 0;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        return -errno;
    }
    s->map = p;
    s->size = (size_t)st.st_size;
    return 0;
}

static void
unmap_file(struct scan *s)
{
    if (s->map != NULL) {
        munmap(s->map, s->size);
        s->map = NULL;
    }
}

/* ---- The rules of each record ------------------------------------- */

static int
scan_base(struct wal *w, const struct seg_file *f, const struct wal_rec *r,
          const char **why)
{
    bool starts_log = w->n_segs == 0 || r->index + 1 < w->first_index;
    int rc;

    if (r->index == UINT64_MAX || r->index + 1 != f->first) {
        *why = "base record does not match the file name";
        return ERR_CORRUPT;
    }
    if (w->n_segs > 0 && r->index > w->last_index) {
        *why = "index gap between segments";
        return ERR_CORRUPT;
    }
    if (!starts_log && wal__term_at(w, r->index) != r->term) {
        *why = "base term differs from the log";
        return ERR_CORRUPT;
    }

    /* The oldest segment starts the log; a later base below the first
     * index is a truncation that went below what compaction kept. */
    if (starts_log) {
        w->first_index = r->index + 1;
        rc = wal__run_reset(w, r->index, r->term);
    } else {
        wal__run_trim(w, r->index);
        rc = 0;
    }
    if (rc == 0) {
        rc = wal__seg_push(w, f->seq, r->index);
    }
    w->last_index = r->index;
    w->last_term = r->term;
    return rc;
}

static int
scan_entry(struct wal *w, const struct wal_rec *r, const char **why)
{
    int rc;

    if (w->last_index == UINT64_MAX || r->index != w->last_index + 1) {
        *why = "index gap or step back";
        return ERR_CORRUPT;
    }
    if (r->term < w->last_term) {
        *why = "term goes back";
        return ERR_CORRUPT;
    }
    rc = wal__run_push(w, r->index, r->term);
    if (rc != 0) {
        return rc;
    }
    w->last_index = r->index;
    w->last_term = r->term;
    w->segs[w->n_segs - 1].max_index = r->index;
    return 0;
}

static int
scan_hardstate(struct wal *w, const struct wal_rec *r, const char **why)
{
    if (r->term < w->hs_term) {
        *why = "hard state term goes back";
        return ERR_CORRUPT;
    }
    w->hs_term = r->term;
    w->hs_vote = r->index;
    w->hs_seq = w->segs[w->n_segs - 1].seq;
    return 0;
}

static int
scan_apply(struct wal *w, const struct seg_file *f, const struct wal_rec *r,
           bool at_start, const char **why)
{
    if (at_start != (r->type == WAL_REC_BASE)) {
        *why = at_start ? "segment does not start with a base record"
                        : "base record inside a segment";
        return ERR_CORRUPT;
    }
    switch (r->type) {
    case WAL_REC_BASE:
        return scan_base(w, f, r, why);
    case WAL_REC_ENTRY:
        return scan_entry(w, r, why);
    case WAL_REC_HARDSTATE:
        return scan_hardstate(w, r, why);
    }
    *why = "unknown record type"; /* wal__parse lets none through */
    return ERR_CORRUPT;
}

/* ---- Recovery --------------------------------------------------------- */

static bool
valid_record_after(const struct scan *s, size_t from)
{
    struct wal_rec rec;
    struct wal_bad bad;

    for (size_t o = from; o + WAL_HDR_BYTES <= s->size; o++) {
        if (storage__get_le32(s->map + o) == WAL_MAGIC &&
            wal__parse(s->map + o, s->size - o, &rec, &bad) > 0) {
            return true;
        }
    }
    return false;
}

static int
scan_walk(struct wal *w, const struct seg_file *f, struct scan *s)
{
    struct wal_rec rec;
    struct wal_bad bad;
    ssize_t n;
    int rc;

    for (s->off = 0; s->off < s->size; s->off += (size_t)n) {
        n = wal__parse(s->map + s->off, s->size - s->off, &rec, &bad);
        if (n < 0) {
            size_t next = s->off + (bad.extent > 0 ? bad.extent : 1);

            s->why = bad.why;
            s->torn = n == ERR_AGAIN || !valid_record_after(s, next);
            return ERR_CORRUPT;
        }
        /* A sound record that breaks a rule is damage, even at the end. */
        rc = scan_apply(w, f, &rec, s->off == 0, &s->why);
        if (rc != 0) {
            return rc;
        }
    }
    if (s->size == 0) {
        s->why = "empty segment";
        s->torn = true;
        return ERR_CORRUPT;
    }
    return 0;
}

static int
cut_tail(struct wal *w, int fd, const struct seg_file *f, const struct scan *s,
         struct wal_diag *diag)
{
    int rc;

    wal__diag_set(diag, w, f->name, s->off, s->why);
    if (diag != NULL) {
        diag->cut_bytes = s->size - s->off;
    }
    if (s->off == 0) {
        /* Torn while being made: the segment never held a durable
         * record, and it was never added to the list. */
        rc = STORAGE_FP(STORAGE_FP_WAL_UNLINK);
        if (rc == 0 && unlinkat(w->dir_fd, f->name, 0) != 0) {
            rc = -errno;
        }
        return rc == 0 ? wal__dirsync(w) : rc;
    }
    rc = STORAGE_FP(STORAGE_FP_WAL_CUT);
    if (rc == 0 && ftruncate(fd, (off_t)s->off) != 0) {
        rc = -errno;
    }
    return rc == 0 ? wal__datasync(w, fd) : rc;
}

static int
scan_file(struct wal *w, const struct seg_file *f, bool last,
          struct wal_diag *diag)
{
    struct scan s = {0};
    int fd, rc;

    fd = openat(w->dir_fd, f->name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    rc = map_file(fd, &s);
    if (rc == 0) {
        rc = scan_walk(w, f, &s);
    }
    unmap_file(&s);

    if (rc == ERR_CORRUPT && s.why != NULL && last && s.torn) {
        rc = cut_tail(w, fd, f, &s, diag);
    } else if (rc == ERR_CORRUPT && s.why != NULL) {
        wal__diag_set(diag, w, f->name, s.off, s.why);
    }
    close(fd);
    return rc;
}

static int
open_active(struct wal *w)
{
    const struct wal_seg *s = &w->segs[w->n_segs - 1];
    char name[WAL_NAME_BYTES];
    struct stat st;

    wal__seg_name(name, s->seq, s->base + 1);
    w->fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
    if (w->fd < 0 || fstat(w->fd, &st) != 0) {
        return -errno;
    }
    w->size = (uint64_t)st.st_size;
    return 0;
}

/* ---- Reset segments ---------------------------------------------------- */

int
wal__reset_settle(struct wal *w)
{
    char name[WAL_NAME_BYTES];
    uint64_t seq, first;
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (w->reset[0] == '\0') {
        return 0;
    }
    d = opendir(w->dir);
    if (d == NULL) {
        return -errno;
    }
    /* Any order will do: until the rename below, a crash brings us back
     * here with the .rst file still in place. */
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!parse_name(de->d_name, &seq, &first)) {
            continue;
        }
        rc = STORAGE_FP(STORAGE_FP_WAL_UNLINK);
        if (rc == 0 && unlinkat(w->dir_fd, de->d_name, 0) != 0 &&
            errno != ENOENT) {
            rc = -errno;
        }
    }
    closedir(d);
    /* The removals are durable before the new segment takes a .log name,
     * or a crash could show it after old segments again. */
    if (rc == 0) {
        rc = wal__dirsync(w);
    }
    if (rc != 0) {
        return rc;
    }
    if (!parse_reset_name(w->reset, &seq, &first)) {
        ASSERT_UNREACHABLE(); /* wal__reset_name() made it */
    }
    wal__seg_name(name, seq, first);
    if (renameat(w->dir_fd, w->reset, w->dir_fd, name) != 0) {
        return -errno;
    }
    rc = wal__dirsync(w);
    if (rc == 0) {
        w->reset[0] = '\0';
        w->reset_warned = false;
    }
    return rc;
}

/* A .rst file is complete when it holds exactly BASE and at most one
 * HARDSTATE, all sound: only then may it have been committed. */
static bool
reset_complete(const struct scan *s, uint64_t first)
{
    struct wal_rec rec;
    struct wal_bad bad;
    size_t off = 0;
    ssize_t n;

    for (int i = 0; off < s->size; i++) {
        n = wal__parse(s->map + off, s->size - off, &rec, &bad);
        if (n < 0 || i > 1) {
            return false;
        }
        if (i == 0 && (rec.type != WAL_REC_BASE || rec.index == UINT64_MAX ||
                       rec.index + 1 != first)) {
            return false;
        }
        if (i == 1 && rec.type != WAL_REC_HARDSTATE) {
            return false;
        }
        off += (size_t)n;
    }
    return off > 0;
}

/* Finish a committed reset left by a crash, or remove a torn one. */
static int
recover_reset(struct wal *w, struct wal_diag *diag)
{
    char name[WAL_NAME_BYTES] = "";
    struct scan s = {0};
    uint64_t seq, first;
    struct dirent *de;
    bool complete;
    DIR *d;
    int fd, rc = 0;

    d = opendir(w->dir);
    if (d == NULL) {
        return -errno;
    }
    while ((de = readdir(d)) != NULL) {
        if (!parse_reset_name(de->d_name, &seq, &first)) {
            continue;
        }
        if (name[0] != '\0') {
            rc = ERR_CORRUPT; /* one reset at a time (rule 6) */
            wal__diag_set(diag, w, de->d_name, 0, "two reset segments");
            break;
        }
        memcpy(name, de->d_name, WAL_NAME_BYTES);
    }
    closedir(d);
    if (rc != 0 || name[0] == '\0') {
        return rc;
    }

    parse_reset_name(name, &seq, &first);
    fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    rc = map_file(fd, &s);
    close(fd);
    if (rc != 0) {
        return rc;
    }
    complete = reset_complete(&s, first);
    if (!complete) {
        wal__diag_set(diag, w, name, 0, "torn log reset");
        if (diag != NULL) {
            diag->cut_bytes = s.size;
        }
    }
    unmap_file(&s);
    if (complete) {
        memcpy(w->reset, name, WAL_NAME_BYTES);
        return wal__reset_settle(w);
    }
    rc = STORAGE_FP(STORAGE_FP_WAL_UNLINK);
    if (rc == 0 && unlinkat(w->dir_fd, name, 0) != 0) {
        rc = -errno;
    }
    return rc == 0 ? wal__dirsync(w) : rc;
}

/* ---- Recovery (continued) ---------------------------------------------- */

int
wal__recover(struct wal *w, struct wal_diag *diag)
{
    struct file_list fl = {0};
    int rc;

    rc = recover_reset(w, diag);
    if (rc == 0) {
        rc = list_segments(w, &fl, diag);
    }
    for (size_t i = 0; rc == 0 && i < fl.n; i++) {
        rc = scan_file(w, &fl.v[i], i + 1 == fl.n, diag);
    }
    free(fl.v);
    if (rc != 0) {
        return rc;
    }

    w->synced_index = w->last_index;
    if (w->n_segs > 0) {
        return open_active(w);
    }
    /* No segment: a new log, or its first segment was torn at birth. */
    w->first_index = 1;
    rc = wal__run_reset(w, 0, 0);
    return rc == 0 ? wal__seg_create(w, 0, 0) : rc;
}

/* ---- Replay ----------------------------------------------------------- */

static int
replay_walk(const struct wal_seg *s, const struct replay *rp, struct scan *sc)
{
    struct wal_rec rec;
    struct wal_bad bad;
    uint64_t next = s->base + 1;
    ssize_t n;
    int rc;

    for (sc->off = 0; sc->off < sc->size && next <= rp->hi;
         sc->off += (size_t)n) {
        n = wal__parse(sc->map + sc->off, sc->size - sc->off, &rec, &bad);
        if (n < 0) {
            sc->why = bad.why;
            return ERR_CORRUPT;
        }
        if (rec.type != WAL_REC_ENTRY) {
            continue;
        }
        if (rec.index != next++) {
            sc->why = "index gap or step back";
            return ERR_CORRUPT;
        }
        if (rec.index > rp->from) {
            rc = rp->cb(rec.index, rec.term, rec.data, rec.len, rp->arg);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (next <= rp->hi) {
        sc->why = "entries missing since open";
        return ERR_CORRUPT;
    }
    return 0;
}

static int
replay_seg(struct wal *w, size_t i, const struct replay *rp,
           struct wal_diag *diag)
{
    const struct wal_seg *s = &w->segs[i];
    char name[WAL_NAME_BYTES];
    struct scan sc = {0};
    size_t mapped;
    int fd, rc;

    wal__seg_name(name, s->seq, s->base + 1);
    fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    rc = map_file(fd, &sc);
    close(fd);
    if (rc != 0) {
        return rc;
    }

    /* Only the durable part of the active segment counts. */
    mapped = sc.size;
    if (i + 1 == w->n_segs && sc.size > w->size) {
        sc.size = (size_t)w->size;
    }
    rc = replay_walk(s, rp, &sc);
    if (rc == ERR_CORRUPT && sc.why != NULL) {
        wal__diag_set(diag, w, name, sc.off, sc.why);
    }
    sc.size = mapped;
    unmap_file(&sc);
    return rc;
}

int
wal_replay(struct wal *w, uint64_t from, wal_entry_cb *cb, void *arg,
           struct wal_diag *diag)
{
    struct replay rp = {.from = from, .cb = cb, .arg = arg};
    int rc = 0;

    if (diag != NULL) {
        memset(diag, 0, sizeof(*diag));
    }
    if (w->buf_len != 0) {
        return ERR_BADSTATE;
    }
    /* Segments are read by their .log names (wal.c, rule 6). */
    rc = wal__reset_settle(w);
    if (rc != 0) {
        return rc;
    }
    if (from + 1 < w->first_index) {
        return ERR_NOTFOUND;
    }
    for (size_t i = 0; rc == 0 && i < w->n_segs; i++) {
        const struct wal_seg *s = &w->segs[i];

        rp.hi = s->max_index < s->cap ? s->max_index : s->cap;
        if (rp.hi > from) {
            rc = replay_seg(w, i, &rp, diag);
        }
    }
    return rc;
}
