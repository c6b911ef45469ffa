/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * wal.c: the running raft log: append, group commit, rotation,
 * truncation and compaction.
 *
 * Owns the segment files of <state_dir>/wal once wal_scan.c has recovered
 * them. Records are buffered by the appends and written by wal_sync() in
 * one pwrite and one fdatasync. Invariant: w->size bytes of the active
 * segment are durable, and every record before them, in every segment,
 * is durable too.
 *
 * Design notes.
 *
 * Segments are named wal-<seq>-<first>.log, both 16 lowercase hex digits:
 * seq orders them and has no holes (only the oldest are ever removed);
 * first is the index after the segment's BASE record, for people reading
 * the folder. Every segment starts with BASE(index, term): "the log goes
 * on after this entry". Entries in a segment are contiguous from base + 1.
 *
 * The rules that make a crash harmless:
 * 1. A record counts as durable only after fdatasync of its segment
 *    returned 0; a new segment only after fdatasync of the file and fsync
 *    of the folder.
 * 2. A segment is rotated only right after a successful sync, so every
 *    segment but the last is complete and only the last can be torn.
 * 3. A truncation rewrites no byte. It starts a new segment whose base is
 *    below the last index; entries above that base in older segments are
 *    dead (a segment's cap is the lowest base after it). So the cut is
 *    atomic, and hard state records in older segments are never lost.
 * 4. Compaction removes the oldest segments one at a time, each removal
 *    durable before the next: a crash leaves a contiguous run of seq.
 * 5. A segment that failed half-way through its creation is removed (and
 *    the folder synced) before any further record is written: if it
 *    survived a crash, its base would cut off what was written after it.
 * 6. A reset (after a snapshot) writes BASE(index, term) and the hard
 *    state into wal-<seq>-<first>.rst, a name recovery does not take for
 *    a segment, and makes it durable: that is the commit point. Then every
 *    .log file goes, the folder is synced, and the .rst file is renamed
 *    to its .log name. Recovery finishes a complete .rst file the same
 *    way and removes a torn one (the reset never took effect, and no old
 *    segment was removed yet). Until the rename, nothing else is written,
 *    so a .rst file never holds more than those two records.
 */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "storage/storage_int.h"

#define BUF_MIN_BYTES (64u << 10)
#define BUF_KEEP_BYTES (4u << 20) /* larger batch buffers are freed */

void
wal__seg_name(char out[WAL_NAME_BYTES], uint64_t seq, uint64_t first)
{
    int n = snprintf(out, WAL_NAME_BYTES,
                     "wal-%016" PRIx64 "-%016" PRIx64 ".log", seq, first);

    ASSERT(n == WAL_NAME_BYTES - 1);
}

void
wal__reset_name(char out[WAL_NAME_BYTES], uint64_t seq, uint64_t first)
{
    int n = snprintf(out, WAL_NAME_BYTES,
                     "wal-%016" PRIx64 "-%016" PRIx64 ".rst", seq, first);

    ASSERT(n == WAL_NAME_BYTES - 1);
}

void
wal__diag_set(struct wal_diag *diag, const struct wal *w, const char *name,
              uint64_t offset, const char *why)
{
    if (diag == NULL) {
        return;
    }
    snprintf(diag->file, sizeof(diag->file), "%s/%s", w->dir, name);
    diag->offset = offset;
    diag->cut_bytes = 0;
    diag->reason = why;
}

static void
diag_clear(struct wal_diag *diag)
{
    if (diag != NULL) {
        memset(diag, 0, sizeof(*diag));
    }
}

/* ---- Segments and system calls -------------------------------------- */

static int
seg_reserve(struct wal *w)
{
    struct wal_seg *v;
    size_t cap;

    if (w->n_segs < w->cap_segs) {
        return 0;
    }
    cap = w->cap_segs > 0 ? 2 * w->cap_segs : 8;
    v = realloc(w->segs, cap * sizeof(*v));
    if (v == NULL) {
        return ERR_NOMEM;
    }
    w->segs = v;
    w->cap_segs = cap;
    return 0;
}

int
wal__seg_push(struct wal *w, uint64_t seq, uint64_t base)
{
    int rc = seg_reserve(w);

    if (rc != 0) {
        return rc;
    }
    /* Entries above the new base in older segments are cut (rule 3). */
    for (size_t i = 0; i < w->n_segs; i++) {
        if (w->segs[i].cap > base) {
            w->segs[i].cap = base;
        }
    }
    w->segs[w->n_segs++] = (struct wal_seg){
        .seq = seq,
        .base = base,
        .max_index = base,
        .cap = UINT64_MAX,
    };
    return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    int rc = STORAGE_FP(STORAGE_FP_WAL_WRITE);

    if (rc != 0) {
        return rc;
    }
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int
wal__datasync(struct wal *w, int fd)
{
    int rc = STORAGE_FP(STORAGE_FP_WAL_FSYNC);

    if (rc != 0) {
        return rc;
    }
    w->n_fdatasync++;
    return fdatasync(fd) == 0 ? 0 : -errno;
}

int
wal__dirsync(struct wal *w)
{
    int rc = STORAGE_FP(STORAGE_FP_WAL_DIRSYNC);

    if (rc != 0) {
        return rc;
    }
    w->n_dirsync++;
    return fsync(w->dir_fd) == 0 ? 0 : -errno;
}

/* Rule 5: a half-made segment goes, durably, before anything is written. */
static int
remove_stray(struct wal *w)
{
    int rc;

    if (w->stray[0] == '\0') {
        return 0;
    }
    rc = STORAGE_FP(STORAGE_FP_WAL_UNLINK);
    if (rc == 0 && unlinkat(w->dir_fd, w->stray, 0) != 0 && errno != ENOENT) {
        rc = -errno;
    }
    if (rc == 0) {
        rc = wal__dirsync(w);
    }
    if (rc == 0) {
        w->stray[0] = '\0';
    }
    return rc;
}

/* Write BASE into a fresh file and make file and name durable. */
static int
seg_fill(struct wal *w, int fd, uint64_t base, uint64_t term)
{
    uint8_t rec[WAL_HDR_BYTES];
    int rc;

    wal__encode(rec, WAL_REC_BASE, base, term, NULL, 0);
    rc = write_all(fd, rec, sizeof(rec), 0);
    if (rc == 0) {
        rc = wal__datasync(w, fd);
    }
    if (rc == 0) {
        rc = wal__dirsync(w);
    }
    return rc;
}

int
wal__seg_create(struct wal *w, uint64_t base, uint64_t term)
{
    uint64_t seq = w->n_segs > 0 ? w->segs[w->n_segs - 1].seq + 1 : 1;
    char name[WAL_NAME_BYTES];
    int fd, rc;

    rc = remove_stray(w);
    if (rc == 0) {
        rc = wal__reset_settle(w); /* rule 6: nothing after a .rst */
    }
    if (rc == 0) {
        rc = seg_reserve(w); /* so that the push below cannot fail */
    }
    if (rc == 0) {
        rc = STORAGE_FP(STORAGE_FP_WAL_CREATE);
    }
    if (rc != 0) {
        return rc;
    }

    wal__seg_name(name, seq, base + 1);
    fd = openat(w->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    memcpy(w->stray, name, sizeof(name));
    rc = seg_fill(w, fd, base, term);
    if (rc != 0) {
        close(fd);
        (void)remove_stray(w); /* else the next write retries it */
        return rc;
    }

    w->stray[0] = '\0';
    if (w->fd >= 0) {
        close(w->fd);
    }
    w->fd = fd;
    w->size = WAL_HDR_BYTES;
    rc = wal__seg_push(w, seq, base);
    ASSERT(rc == 0);
    return 0;
}

/* ---- Terms by index ------------------------------------------------- */

static int
runs_reserve(struct wal *w)
{
    struct wal_run *v;
    size_t cap;

    if (w->n_runs < w->cap_runs) {
        return 0;
    }
    cap = w->cap_runs > 0 ? 2 * w->cap_runs : 8;
    v = realloc(w->runs, cap * sizeof(*v));
    if (v == NULL) {
        return ERR_NOMEM;
    }
    w->runs = v;
    w->cap_runs = cap;
    return 0;
}

int
wal__run_push(struct wal *w, uint64_t index, uint64_t term)
{
    int rc;

    if (w->n_runs > 0 && w->runs[w->n_runs - 1].term == term) {
        return 0;
    }
    rc = runs_reserve(w);
    if (rc != 0) {
        return rc;
    }
    w->runs[w->n_runs++] = (struct wal_run){.start = index, .term = term};
    return 0;
}

void
wal__run_trim(struct wal *w, uint64_t index)
{
    ASSERT(w->n_runs > 0 && w->runs[0].start <= index);
    while (w->runs[w->n_runs - 1].start > index) {
        w->n_runs--;
    }
}

int
wal__run_reset(struct wal *w, uint64_t index, uint64_t term)
{
    w->n_runs = 0;
    return wal__run_push(w, index, term);
}

uint64_t
wal__term_at(const struct wal *w, uint64_t index)
{
    size_t lo = 0, hi = w->n_runs;

    ASSERT(w->n_runs > 0 && w->runs[0].start <= index);
    /* The last run that starts at or before index. */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (w->runs[mid].start <= index) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return w->runs[lo].term;
}

/* ---- Open and close --------------------------------------------------- */

int
wal_open(struct wal **out, const char *state_dir, const struct wal_opts *opts,
         struct wal_diag *diag)
{
    struct wal *w;
    int rc;

    *out = NULL;
    diag_clear(diag);
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return ERR_NOMEM;
    }
    w->fd = -1;
    w->dir_fd = -1;
    if (opts != NULL) {
        w->opts = *opts;
    }
    if (w->opts.segment_bytes == 0) {
        w->opts.segment_bytes = WAL_SEGMENT_BYTES;
    }

    w->dir = str_printf("%s/wal", state_dir);
    rc = w->dir != NULL ? storage__mkdir(w->dir) : ERR_NOMEM;
    if (rc == 0) {
        w->dir_fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = w->dir_fd >= 0 ? 0 : -errno;
    }
    if (rc == 0) {
        rc = wal__recover(w, diag);
    }
    if (rc != 0) {
        wal_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void
wal_close(struct wal *w)
{
    if (w == NULL) {
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (w->dir_fd >= 0) {
        close(w->dir_fd);
    }
    free(w->dir);
    free(w->segs);
    free(w->runs);
    free(w->buf);
    free(w);
}

/* ---- Append and group commit ---------------------------------------- */

static int
buf_reserve(struct wal *w, size_t more)
{
    size_t need = w->buf_len + more;
    size_t cap = w->buf_cap > 0 ? w->buf_cap : BUF_MIN_BYTES;
    uint8_t *p;

    if (need <= w->buf_cap) {
        return 0;
    }
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            return ERR_NOMEM;
        }
        cap *= 2;
    }
    p = realloc(w->buf, cap);
    if (p == NULL) {
        return ERR_NOMEM;
    }
    w->buf = p;
    w->buf_cap = cap;
    return 0;
}

static int
buf_add(struct wal *w, enum wal_rec_type type, uint64_t index, uint64_t term,
        const void *data, uint32_t len)
{
    int rc = buf_reserve(w, WAL_HDR_BYTES + (size_t)len);

    if (rc != 0) {
        return rc;
    }
    w->buf_len +=
        wal__encode(w->buf + w->buf_len, type, index, term, data, len);
    w->n_pending++;
    return 0;
}

int
wal_append_entry(struct wal *w, uint64_t index, uint64_t term, const void *data,
                 size_t len)
{
    int rc;

    if (len > WAL_MAX_PAYLOAD) {
        return ERR_TOOBIG;
    }
    if (index != w->last_index + 1 || term < w->last_term) {
        return ERR_BADSTATE;
    }
    rc = runs_reserve(w); /* so that the push below cannot fail */
    if (rc == 0) {
        rc = buf_add(w, WAL_REC_ENTRY, index, term, data, (uint32_t)len);
    }
    if (rc != 0) {
        return rc;
    }
    rc = wal__run_push(w, index, term);
    ASSERT(rc == 0);
    w->last_index = index;
    w->last_term = term;
    w->segs[w->n_segs - 1].max_index = index;
    return 0;
}

int
wal_append_hardstate(struct wal *w, uint64_t term, uint64_t vote)
{
    int rc;

    if (term < w->hs_term) {
        return ERR_BADSTATE;
    }
    rc = buf_add(w, WAL_REC_HARDSTATE, vote, term, NULL, 0);
    if (rc != 0) {
        return rc;
    }
    w->hs_term = term;
    w->hs_vote = vote;
    w->hs_pending = true;
    return 0;
}

/* Cut what a failed write may have left past the durable end. */
static int
cut_dirty_tail(struct wal *w)
{
    int rc;

    if (!w->tail_dirty) {
        return 0;
    }
    rc = STORAGE_FP(STORAGE_FP_WAL_CUT);
    if (rc == 0 && ftruncate(w->fd, (off_t)w->size) != 0) {
        rc = -errno;
    }
    if (rc == 0) {
        w->tail_dirty = false;
    }
    return rc;
}

static int
write_batch(struct wal *w)
{
    int rc;

    rc = remove_stray(w);
    if (rc == 0) {
        rc = wal__reset_settle(w);
    }
    if (rc == 0) {
        rc = cut_dirty_tail(w);
    }
    if (rc != 0) {
        return rc;
    }
    rc = write_all(w->fd, w->buf, w->buf_len, w->size);
    if (rc == 0) {
        rc = wal__datasync(w, w->fd);
    }
    if (rc != 0) {
        /*
         * Part of the batch may be in the file, even on disk. Cut it now
         * so that a clean restart does not find half a batch; the retry
         * writes the whole buffer again from the durable end. After a
         * failed fdatasync the kernel may have dropped the dirty pages,
         * so only a fresh write followed by a successful fdatasync makes
         * these bytes durable (rewriting is what makes a retry honest).
         */
        w->tail_dirty = true;
        (void)cut_dirty_tail(w);
    }
    return rc;
}

static void
maybe_rotate(struct wal *w)
{
    int rc;

    if (w->size < w->opts.segment_bytes) {
        return;
    }
    rc = wal__seg_create(w, w->last_index, w->last_term);
    if (rc == 0) {
        w->rotate_failed = false;
        return;
    }
    /* The data is durable: grow the current segment rather than fail. */
    if (!w->rotate_failed) {
        log_warn("storage",
                 "wal rotation failed, current segment grows: "
                 "dir=%s bytes=%" PRIu64 ": %s",
                 w->dir, w->size, err_str(rc));
    }
    w->rotate_failed = true;
}

int
wal_sync(struct wal *w)
{
    int rc;

    if (w->buf_len == 0) {
        return 0;
    }
    rc = write_batch(w);
    if (rc != 0) {
        return rc;
    }

    w->size += w->buf_len;
    w->n_bytes += w->buf_len;
    w->n_records += w->n_pending;
    w->buf_len = 0;
    w->n_pending = 0;
    w->synced_index = w->last_index;
    if (w->hs_pending) {
        w->hs_seq = w->segs[w->n_segs - 1].seq;
        w->hs_pending = false;
    }
    if (w->buf_cap > BUF_KEEP_BYTES) {
        free(w->buf);
        w->buf = NULL;
        w->buf_cap = 0;
    }
    maybe_rotate(w);
    return 0;
}

/* ---- Truncation and compaction -------------------------------------- */

int
wal_truncate_suffix(struct wal *w, uint64_t index)
{
    uint64_t term;
    int rc;

    if (index >= w->last_index) {
        return 0;
    }
    if (index + 1 < w->first_index) {
        return ERR_BADSTATE;
    }
    /* The new base must come after every record appended so far. */
    rc = wal_sync(w);
    if (rc != 0) {
        return rc;
    }
    term = wal__term_at(w, index);
    rc = wal__seg_create(w, index, term);
    if (rc != 0) {
        return rc;
    }
    wal__run_trim(w, index);
    w->last_index = index;
    w->last_term = term;
    w->synced_index = index;
    return 0;
}

/* The oldest segments, never the active one, whose live entries are all
 * at most limit. */
static size_t
removable_prefix(const struct wal *w, uint64_t limit)
{
    size_t n = 0;

    while (n + 1 < w->n_segs) {
        const struct wal_seg *s = &w->segs[n];
        uint64_t live_max = s->max_index < s->cap ? s->max_index : s->cap;

        if (live_max > limit) {
            break;
        }
        n++;
    }
    return n;
}

/* The newest hard state must be durable outside the first n segments. */
static int
keep_hardstate(struct wal *w, size_t n)
{
    int rc;

    if (w->hs_seq == 0 || w->hs_seq > w->segs[n - 1].seq) {
        return 0;
    }
    if (!w->hs_pending) {
        rc = wal_append_hardstate(w, w->hs_term, w->hs_vote);
        if (rc != 0) {
            return rc;
        }
    }
    return wal_sync(w);
}

static int
unlink_oldest(struct wal *w)
{
    char name[WAL_NAME_BYTES];
    int rc;

    wal__seg_name(name, w->segs[0].seq, w->segs[0].base + 1);
    rc = STORAGE_FP(STORAGE_FP_WAL_UNLINK);
    if (rc == 0 && unlinkat(w->dir_fd, name, 0) != 0 && errno != ENOENT) {
        rc = -errno;
    }
    if (rc == 0) {
        rc = wal__dirsync(w); /* rule 4 */
    }
    if (rc != 0) {
        return rc;
    }
    w->n_segs--;
    memmove(w->segs, w->segs + 1, w->n_segs * sizeof(*w->segs));
    return 0;
}

/* The log now starts after the lowest base left (a truncation may have
 * gone below the oldest segment's base); drop terms no longer needed. */
static void
refresh_first(struct wal *w)
{
    uint64_t base = UINT64_MAX;
    size_t drop = 0;

    for (size_t i = 0; i < w->n_segs; i++) {
        if (w->segs[i].base < base) {
            base = w->segs[i].base;
        }
    }
    w->first_index = base + 1;
    while (drop + 1 < w->n_runs && w->runs[drop + 1].start <= base) {
        drop++;
    }
    w->n_runs -= drop;
    memmove(w->runs, w->runs + drop, w->n_runs * sizeof(*w->runs));
}

int
wal_compact(struct wal *w, uint64_t upto)
{
    uint64_t keep = w->opts.keep_entries;
    uint64_t limit = upto > keep ? upto - keep : 0;
    size_t n = removable_prefix(w, limit);
    int rc;

    if (n == 0) {
        return 0;
    }
    rc = keep_hardstate(w, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = unlink_oldest(w);
    }
    refresh_first(w);
    return rc;
}

/* ---- Reset after a snapshot ------------------------------------------- */

/* Write the records of a reset segment into fd and make them durable:
 * the commit point of rule 6 once the folder is synced too. */
static int
reset_fill(struct wal *w, int fd, uint64_t index, uint64_t term, size_t *size)
{
    uint8_t rec[2 * WAL_HDR_BYTES];
    size_t n;
    int rc;

    n = wal__encode(rec, WAL_REC_BASE, index, term, NULL, 0);
    if (w->hs_term != 0 || w->hs_vote != 0) {
        n += wal__encode(rec + n, WAL_REC_HARDSTATE, w->hs_vote, w->hs_term,
                         NULL, 0);
    }
    rc = write_all(fd, rec, n, 0);
    if (rc == 0) {
        rc = wal__datasync(w, fd);
    }
    if (rc == 0) {
        rc = wal__dirsync(w);
    }
    *size = n;
    return rc;
}

/* The reset is durable: make the in-memory log the empty one after
 * (index, term), written to fd. Nothing here can fail. */
static void
reset_adopt(struct wal *w, int fd, uint64_t seq, uint64_t index, uint64_t term,
            size_t size)
{
    int rc;

    if (w->fd >= 0) {
        close(w->fd);
    }
    w->fd = fd;
    w->size = size;
    w->tail_dirty = false;
    /* Both arrays hold at least one element, so neither push allocates. */
    w->n_segs = 0;
    rc = wal__seg_push(w, seq, index);
    ASSERT(rc == 0);
    rc = wal__run_reset(w, index, term);
    ASSERT(rc == 0);
    w->first_index = index + 1;
    w->last_index = index;
    w->last_term = term;
    w->synced_index = index;
    /* Buffered entries are dropped; a buffered hard state went into the
     * reset segment with the durable one. */
    w->buf_len = 0;
    w->n_pending = 0;
    if (w->hs_term != 0 || w->hs_vote != 0) {
        w->hs_seq = seq;
    }
    w->hs_pending = false;
    w->n_records += size / WAL_HDR_BYTES;
    w->n_bytes += size;
}

int
wal_reset(struct wal *w, uint64_t index, uint64_t term)
{
    uint64_t seq = w->segs[w->n_segs - 1].seq + 1;
    char name[WAL_NAME_BYTES];
    size_t size = 0;
    int fd, rc;

    if (index == UINT64_MAX) {
        return ERR_BADSTATE;
    }
    rc = remove_stray(w);
    if (rc == 0) {
        rc = wal__reset_settle(w); /* an earlier reset goes first */
    }
    if (rc == 0) {
        rc = STORAGE_FP(STORAGE_FP_WAL_CREATE);
    }
    if (rc != 0) {
        return rc;
    }

    wal__reset_name(name, seq, index + 1);
    fd = openat(w->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    memcpy(w->stray, name, sizeof(name));
    rc = reset_fill(w, fd, index, term, &size);
    if (rc != 0) {
        close(fd);
        (void)remove_stray(w); /* else the next write retries it */
        return rc;
    }
    w->stray[0] = '\0';
    reset_adopt(w, fd, seq, index, term, size);
    memcpy(w->reset, name, sizeof(name));

    rc = STORAGE_FP(STORAGE_FP_WAL_RESET);
    if (rc == 0) {
        rc = wal__reset_settle(w);
    }
    if (rc != 0 && !w->reset_warned) {
        /* Durable already; the next write or open finishes it. */
        log_warn("storage",
                 "wal reset done, old segments not yet removed: "
                 "dir=%s index=%" PRIu64 ": %s",
                 w->dir, index, err_str(rc));
        w->reset_warned = true;
    }
    return 0;
}

/* ---- Queries ---------------------------------------------------------- */

int
wal_term(const struct wal *w, uint64_t index, uint64_t *term)
{
    if (index + 1 < w->first_index || index > w->last_index) {
        return ERR_NOTFOUND;
    }
    *term = wal__term_at(w, index);
    return 0;
}

void
wal_hardstate(const struct wal *w, uint64_t *term, uint64_t *vote)
{
    *term = w->hs_term;
    *vote = w->hs_vote;
}

void
wal_get_stats(const struct wal *w, struct wal_stats *out)
{
    *out = (struct wal_stats){
        .first_index = w->first_index,
        .last_index = w->last_index,
        .last_term = w->last_term,
        .synced_index = w->synced_index,
        .n_segments = w->n_segs,
        .n_records = w->n_records,
        .n_bytes = w->n_bytes,
        .n_fdatasync = w->n_fdatasync,
        .n_dirsync = w->n_dirsync,
        .pending_bytes = w->buf_len,
    };
}
