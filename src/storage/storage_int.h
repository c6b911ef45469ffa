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
