/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * storage_int.h: what the files of the storage module share.
 *
 * The struct wal that wal.c (running log) and wal_scan.c (recovery and
 * replay) both work on, the record codec of wal_record.c, little-endian
 * helpers and the failure-injection switch. Nothing outside src/storage
 * includes this file.
 */
#ifndef SHOAL_STORAGE_STORAGE_INT_H
#define SHOAL_STORAGE_STORAGE_INT_H

#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_MAGIC 0x4c574853u /* "SHWL" as little-endian bytes */
#define WAL_VERSION 1
#define WAL_NAME_BYTES 42 /* "wal-<16 hex>-<16 hex>.log" and NUL */

/* One segment file, in the order of its sequence number. */
struct wal_seg {
    uint64_t seq;       /* from the file name; orders the segments */
    uint64_t base;      /* its BASE record: entries follow this index */
    uint64_t max_index; /* newest entry written to it; base when none */
    uint64_t cap;       /* lowest base of any later segment: its entries
                           above cap were cut by a truncation */
};

/* A term that starts at index start and holds until the next run. */
struct wal_run {
    uint64_t start;
    uint64_t term;
};

struct wal {
    char *dir; /* <state_dir>/wal, owned */
    int dir_fd;
    int fd;        /* the active (last) segment */
    uint64_t size; /* durable bytes of the active segment */
    struct wal_opts opts;

    struct wal_seg *segs;
    size_t n_segs, cap_segs;
    struct wal_run *runs; /* terms of first_index - 1 .. last_index */
    size_t n_runs, cap_runs;

    uint64_t first_index, last_index, last_term, synced_index;
    uint64_t hs_term, hs_vote;
    uint64_t hs_seq; /* segment of the newest durable hard state */
    bool hs_pending; /* the newest hard state is still buffered */

    uint8_t *buf; /* records appended since the last sync */
    size_t buf_len, buf_cap;
    uint64_t n_pending;
    bool tail_dirty; /* a failed write may have left bytes past size */
    char stray[WAL_NAME_BYTES]; /* half-made segment still to remove */
    char reset[WAL_NAME_BYTES]; /* committed reset segment still to be
                                   renamed, old segments to remove */
    bool reset_warned;          /* its failed settling was logged */
    bool rotate_failed;         /* logged once until a rotation succeeds */

    uint64_t n_records, n_bytes, n_fdatasync, n_dirsync;
};

/* Why a record failed to parse, for the diagnostics and the tail scan. */
struct wal_bad {
    const char *why;
    size_t extent; /* size the record claims when its header is sound */
};

/* wal_record.c */
size_t wal__encode(uint8_t *out, enum wal_rec_type type, uint64_t index,
                   uint64_t term, const void *data, uint32_t len);
ssize_t wal__parse(const uint8_t *p, size_t avail, struct wal_rec *rec,
                   struct wal_bad *bad);

/* wal.c */
void wal__seg_name(char out[WAL_NAME_BYTES], uint64_t seq, uint64_t first);
int wal__seg_push(struct wal *w, uint64_t seq, uint64_t base);
int wal__seg_create(struct wal *w, uint64_t base, uint64_t term);
int wal__datasync(struct wal *w, int fd);
int wal__dirsync(struct wal *w);
int wal__run_push(struct wal *w, uint64_t index, uint64_t term);
void wal__run_trim(struct wal *w, uint64_t index);
int wal__run_reset(struct wal *w, uint64_t index, uint64_t term);
uint64_t wal__term_at(const struct wal *w, uint64_t index);
void wal__diag_set(struct wal_diag *diag, const struct wal *w, const char *name,
                   uint64_t offset, const char *why);

/* wal_scan.c */
int wal__recover(struct wal *w, struct wal_diag *diag);
/*
 * Finish a committed reset (wal.c, rule 6): remove every wal-*.log file,
 * sync the folder, rename w->reset to its .log name, sync the folder.
 * A no-op when none is pending. Returns 0 or -errno; on failure it may be
 * called again, and the next wal_open() would finish it too.
 */
int wal__reset_settle(struct wal *w);
void wal__reset_name(char out[WAL_NAME_BYTES], uint64_t seq, uint64_t first);

/* statedb.c: what the snapshot receiver needs beyond the public API. */

/* Open (creating it 0700) the LMDB environment in the folder path, with
 * the layout of statedb_open(). Same returns as statedb_open(). */
int statedb__open_path(struct statedb **out, const char *path,
                       size_t map_bytes);
/* Restart the walk of it at the first object, in the same read
 * transaction, so that the same objects come again in the same order. */
void statedb__iter_rewind(struct statedb_iter *it);
/*
 * One write transaction at a time, held in db: begin, any number of
 * puts, meta and aux records, then commit (durable on 0, test failpoint
 * STORAGE_FP_SNAP_COMMIT) or abort. After any error of a put the caller
 * aborts. Returns 0, ERR_TOOBIG (id of a wrong length or with a NUL,
 * membership too long, map full), ERR_CORRUPT, ERR_NOMEM, -errno.
 */
int statedb__txn_begin(struct statedb *db);
int statedb__txn_put(struct statedb *db, uint8_t kind, const void *id,
                     size_t id_len, const void *val, size_t len);
int statedb__txn_meta(struct statedb *db, const struct statedb_meta *meta);
/* Store val under key in the meta database (never "applied"); val NULL
 * deletes it. statedb_load() does not read these records. */
int statedb__txn_aux(struct statedb *db, const char *key, const void *val,
                     size_t len);
int statedb__txn_commit(struct statedb *db);
void statedb__txn_abort(struct statedb *db);
/* Copy at most cap bytes of the aux record key into buf; *len is its
 * full size. Returns 0, ERR_NOTFOUND, ERR_CORRUPT, -errno. */
int statedb__aux_get(struct statedb *db, const char *key, void *buf, size_t cap,
                     size_t *len);

/* snap_send.c: the chunk codec shared with snap_recv.c. */
#define SNAP_MAGIC 0x4e534853u /* "SHSN" as little-endian bytes */
#define SNAP_VERSION 1
#define SNAP_ITEM_HDR_BYTES 6 /* u8 kind, u8 id length, u32 value length */

/* snap_recv.c */
/* Settle a swap that a crash cut short (see snap_recv_finish()). Called
 * by statedb_open() before it opens <state_dir>/db. Returns 0 or -errno. */
int storage__snap_repair(const char *state_dir);

/* storage_util.c */
int storage__mkdir(const char *path);
int storage__fsync_path(const char *path);

#ifdef SHOAL_TEST_BUILD
int storage__fp(enum storage_fp fp);
#define STORAGE_FP(fp) storage__fp(fp)
#else
#define STORAGE_FP(fp) 0
#endif

static inline void
storage__put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void
storage__put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void
storage__put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint16_t
storage__get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
storage__get_le32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t
storage__get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

#endif
