/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * storage.h: the raft log on disk (WAL) and the applied state in LMDB.
 *
 * Both halves store opaque bytes: the WAL knows indexes, terms and the
 * hard state, the state database knows (kind, id) keys and one meta record;
 * neither knows the object schema. The caller (manager) keeps the order
 * that makes them safe together: an entry is acknowledged only after
 * wal_sync() returned 0, and the WAL is compacted only below an applied
 * index that statedb_flush() has made durable.
 *
 * Error codes: 0 or negative, -errno for system calls and enum err_code of
 * base.h for our own conditions. LMDB's codes never leave this module.
 * Unless a comment says otherwise, pointer parameters are borrowed.
 */
#ifndef SHOAL_STORAGE_STORAGE_H
#define SHOAL_STORAGE_STORAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- The raft log (WAL) --------------------------------------------- */

#define WAL_HDR_BYTES 40              /* fixed header of every record */
#define WAL_MAX_PAYLOAD (16u << 20)   /* largest entry payload */
#define WAL_SEGMENT_BYTES (64u << 20) /* default rotation size */

/* Record types as stored on disk: the values are part of the format. */
enum wal_rec_type {
    WAL_REC_BASE = 1,      /* first record of a segment: the log goes on
                              after (index, term) */
    WAL_REC_ENTRY = 2,     /* one raft entry: index, term, payload */
    WAL_REC_HARDSTATE = 3, /* term and vote, written together */
};

struct wal;

struct wal_opts {
    uint64_t segment_bytes; /* rotate past this size; 0: the default */
    uint64_t keep_entries;  /* entries wal_compact() keeps below its
                               index, for slow followers; 0: none */
};

/*
 * What open or replay found wrong, for the caller's single log line.
 * reason is a static string; it is NULL when there is nothing to report.
 * cut_bytes is non-zero only when a torn tail was cut off.
 */
struct wal_diag {
    char file[PATH_MAX]; /* path of the segment concerned */
    uint64_t offset;     /* byte offset of the bad or torn record */
    uint64_t cut_bytes;  /* bytes removed from the end of file */
    const char *reason;  /* "bad checksum", "index gap", ... */
};

struct wal_stats {
    uint64_t first_index;   /* oldest entry kept; last_index + 1 if none */
    uint64_t last_index;    /* newest entry appended, synced or not */
    uint64_t last_term;     /* term of last_index */
    uint64_t synced_index;  /* newest entry known durable */
    uint64_t n_segments;    /* segment files in use */
    uint64_t n_records;     /* records made durable since open */
    uint64_t n_bytes;       /* bytes made durable since open */
    uint64_t n_fdatasync;   /* fdatasync calls on segments */
    uint64_t n_dirsync;     /* fsync calls on the wal directory */
    uint64_t pending_bytes; /* appended, not yet written */
};

/* One record as decoded from disk. data points into the caller's buffer. */
struct wal_rec {
    enum wal_rec_type type;
    uint64_t index; /* ENTRY and BASE: log index; HARDSTATE: the vote */
    uint64_t term;
    const uint8_t *data;
    uint32_t len;
};

/*
 * Called by wal_replay() for each entry, in index order. data is borrowed
 * until the callback returns. Return 0 to go on; any other value stops the
 * replay and becomes its result (a positive value can mean "slice full").
 */
typedef int wal_entry_cb(uint64_t index, uint64_t term, const void *data,
                         size_t len, void *arg);

/*
 * Open the log in <state_dir>/wal, creating the folder (0700) and a first
 * segment when there is none; state_dir must exist. Recovery scans every
 * segment in order. A torn last record of the last segment (short header,
 * short payload, or a bad record with nothing valid after it) is cut off
 * and made durable; the call still returns 0 and fills diag with the file,
 * offset and cut_bytes so that the caller logs it. Any other damage fails.
 *
 * opts may be NULL (defaults). diag may be NULL; when given it is always
 * cleared first. On success *out is transferred: free it with wal_close().
 * Returns 0; ERR_CORRUPT with diag naming file, offset and reason (bad
 * checksum or magic before the tail, an index gap or step back, a missing
 * segment); ERR_NOMEM; -errno from the file system.
 */
int wal_open(struct wal **out, const char *state_dir,
             const struct wal_opts *opts, struct wal_diag *diag);

/*
 * Close the files and free w. Records appended since the last successful
 * wal_sync() are dropped: they were never durable. NULL is a no-op.
 */
void wal_close(struct wal *w);

/*
 * Buffer one entry; nothing reaches the disk until wal_sync(). data is
 * copied. index must be the last index + 1 and term at least the last
 * term. Returns 0, ERR_BADSTATE when index or term break that rule, ERR_TOOBIG
 * when len > WAL_MAX_PAYLOAD, ERR_NOMEM.
 */
int wal_append_entry(struct wal *w, uint64_t index, uint64_t term,
                     const void *data, size_t len);

/*
 * Buffer the hard state (current term and the vote in it, 0 for none) as
 * one record, so that both are durable together after wal_sync(). A vote
 * may be granted only once that sync returned 0 (Raft §5.2, Figure 2).
 * Returns 0, ERR_BADSTATE when term is below the last hard state's, ERR_NOMEM.
 */
int wal_append_hardstate(struct wal *w, uint64_t term, uint64_t vote);

/*
 * Group commit: write every buffered record at the end of the active
 * segment with one pwrite(2) (more only on short writes), then one
 * fdatasync(2). Returns 0 when all of them are durable, also when nothing
 * was buffered (then no system call is made). A segment past its size
 * limit is then rotated; a failed rotation is logged once and the current
 * segment grows on, so it never fails a sync whose data is durable.
 *
 * On failure (-ENOSPC, -EIO, ... from write or fdatasync, or from the
 * removal of a half-made segment), nothing buffered is reported durable:
 * - every record of an earlier successful sync stays durable;
 * - the buffered records are kept and the next wal_sync() writes all of
 *   them again at the durable end (partial bytes are cut first), so the
 *   caller retries by calling wal_sync() again, with or without new
 *   appends in between;
 * - until a retry returns 0 their fate is unknown: the caller must not
 *   acknowledge them, and after a crash some may or may not be replayed.
 */
int wal_sync(struct wal *w);

/*
 * Drop every entry after index (a Raft conflict, §5.3). Syncs what is
 * buffered first, then starts a new segment whose base is (index, term of
 * index): the cut takes effect when that segment is durable, atomically,
 * and no hard state record is lost. Returns 0 when durable (also when index
 * >= last index, a no-op); ERR_BADSTATE when index is below first index - 1
 * (compacted away); an error of wal_sync(); -errno. After a failure the
 * in-memory log is unchanged; after a crash the cut may or may not have
 * taken effect, which is safe as only uncommitted entries are cut.
 */
int wal_truncate_suffix(struct wal *w, uint64_t index);

/*
 * Remove whole segments, oldest first, whose every live entry is at most
 * upto - keep_entries; the active segment always stays. upto must not
 * exceed the applied index that statedb_flush() made durable. When the
 * newest hard state lives in a segment to remove, it is appended and
 * synced again first. Each removal is made durable before the next.
 * Returns 0, an error of wal_sync(), or -errno (segments already removed
 * stay removed; the rest stay).
 */
int wal_compact(struct wal *w, uint64_t upto);

/*
 * Make the log empty after (index, term), the last entry of a snapshot
 * that the caller has installed (snap_recv_finish(), then statedb_open()
 * shows applied_index == index): every segment and every buffered entry
 * is dropped, and afterwards first index == last index + 1 == index + 1,
 * wal_term(index) answers term (for Raft's log-matching check on the next
 * append, §5.3, §7) and the next append is index + 1. The hard state
 * (term, vote), buffered or durable, is kept and written with the reset.
 *
 * Crash-safe: the reset takes effect at one point, when a new segment
 * holding (index, term) and the hard state is durable under a temporary
 * name; a crash before it leaves the old log, a crash after it is finished
 * by wal_open() (old segments removed, the new one renamed). So the next
 * wal_open() sees either the old log or the empty one after index; as the
 * snapshot was installed first, LMDB is at index in both cases. A caller
 * that restarts with statedb's applied index not matching the log
 * (wal_term(applied_index) fails or differs from applied_term) calls
 * wal_reset(applied_index, applied_term) again before anything else.
 *
 * Returns 0 once the reset is durable. Removing the old segments may fail
 * after that point: it is logged, retried before the next write and by
 * the next wal_open(), and still 0 is returned. ERR_BADSTATE when index is
 * UINT64_MAX; -errno from the file system: the log in memory is then
 * unchanged (the caller may retry); after a crash the next wal_open() may
 * find the old log or, when the failure came after the new segment's
 * bytes were synced, the reset one, both of which are safe.
 */
int wal_reset(struct wal *w, uint64_t index, uint64_t term);

/*
 * Call cb for every durable entry with index > from, in order. Only valid
 * with nothing buffered. Bytes are re-read and their checksums checked
 * again. Returns 0 when all were delivered; cb's non-zero result;
 * ERR_BADSTATE when records are buffered; ERR_NOTFOUND when from < first
 * index - 1 (those entries were compacted away); ERR_CORRUPT with diag
 * (may be NULL) filled; -errno.
 */
int wal_replay(struct wal *w, uint64_t from, wal_entry_cb *cb, void *arg,
               struct wal_diag *diag);

/*
 * Set *term to the term of the entry at index (first index - 1 gives the
 * term the log starts after). Returns 0 or ERR_NOTFOUND.
 */
int wal_term(const struct wal *w, uint64_t index, uint64_t *term);

/*
 * Return the newest hard state appended (0, 0 when none was ever
 * written). Durable once the wal_sync() after its append returned 0.
 */
void wal_hardstate(const struct wal *w, uint64_t *term, uint64_t *vote);

/* Fill *out with the indexes and counters of w. Never fails. */
void wal_get_stats(const struct wal *w, struct wal_stats *out);

/*
 * Decode the record at the start of buf (untrusted bytes, e.g. for a fuzz
 * target). Returns the record's size, with *rec filled and rec->data
 * pointing into buf; ERR_AGAIN when buf ends inside the record; ERR_CORRUPT
 * when the magic, header checksum, type, length or checksum is wrong.
 * Never allocates.
 */
ssize_t wal_record_parse(const void *buf, size_t avail, struct wal_rec *rec);

/* ---- The applied state (LMDB) ---------------------------------------- */

#define STATEDB_MAX_ID 255 /* bytes of an object id */
#define STATEDB_MAX_MEMBERSHIP (1u << 20)
#define STATEDB_MAP_BYTES (1ull << 30) /* default map size */

struct statedb;
struct statedb_iter;

/* The record written with every flush. membership is opaque bytes. */
struct statedb_meta {
    uint64_t applied_index;
    uint64_t applied_term;
    const void *membership;
    size_t membership_len;
};

enum statedb_op {
    STATEDB_PUT = 1,
    STATEDB_DEL = 2,
};

/* One change of a batch. id is a NUL-terminated string of 1 to
 * STATEDB_MAX_ID bytes; val and len are used by PUT only. */
struct statedb_write {
    enum statedb_op op;
    uint8_t kind;
    const char *id;
    const void *val;
    size_t len;
};

/*
 * Called for each object in key order (kind, then id bytes). id and val
 * are borrowed until the callback returns; copy what must outlive it.
 * Return 0 to go on; a non-zero value stops the walk and is returned.
 */
typedef int statedb_load_cb(uint8_t kind, const char *id, const void *val,
                            size_t len, void *arg);

/*
 * Open the LMDB environment in <state_dir>/db (created 0700; files 0600)
 * with a map of map_bytes (0: STATEDB_MAP_BYTES). Commits sync fully: no
 * MDB_NOSYNC, see statedb_flush(). A snapshot swap that a crash cut short
 * is settled first (see snap_recv_finish()), so db is always one whole
 * state. On success *out is transferred: free it
 * with statedb_close(). Returns 0, ERR_CORRUPT (not an LMDB file or a
 * version mismatch), ERR_NOMEM, -errno.
 */
int statedb_open(struct statedb **out, const char *state_dir, size_t map_bytes);

/* Close the environment and free db. Iterators must be ended first. NULL
 * is a no-op. */
void statedb_close(struct statedb *db);

/*
 * Walk every object through cb, then fill *meta with the stored meta
 * record (zeros and no membership on a fresh database). meta->membership
 * is owned by db and stays valid until the next statedb_load() or
 * statedb_close(). Returns 0, cb's non-zero result, ERR_CORRUPT when a key
 * or the meta record is malformed, ERR_NOMEM, -errno.
 */
int statedb_load(struct statedb *db, statedb_load_cb *cb, void *arg,
                 struct statedb_meta *meta);

/*
 * Apply n puts and deletes and store *meta, all in one write transaction:
 * after a crash either all of it is there or none. Durable on return 0:
 * LMDB syncs data and meta pages at commit, which the caller relies on to
 * compact the WAL up to meta->applied_index; with MDB_NOSYNC a crash could
 * roll the state back below entries already deleted from the log.
 * Deleting a missing key is not an error, so batches may coalesce.
 * Returns 0; ERR_BADSTATE when meta->applied_index is below the stored one,
 * or when LMDB is unusable after an earlier I/O failure (close and reopen
 * it); ERR_TOOBIG for an id of a wrong length, membership over
 * STATEDB_MAX_MEMBERSHIP, or a full map; ERR_CORRUPT; ERR_NOMEM; -errno
 * (-ENOSPC, -EIO). On any failure nothing of the batch is stored.
 */
int statedb_flush(struct statedb *db, const struct statedb_write *ws, size_t n,
                  const struct statedb_meta *meta);

/*
 * Start a consistent read of the whole state (for a snapshot stream) that
 * writers do not block: a read transaction stays open until
 * statedb_iter_end(), so end it promptly. Fills *meta; meta->membership
 * is owned by the iterator and valid until statedb_iter_end(). *out is
 * transferred. Returns 0, ERR_CORRUPT, ERR_NOMEM, -errno.
 */
int statedb_iter_begin(struct statedb *db, struct statedb_iter **out,
                       struct statedb_meta *meta);

/*
 * Deliver up to max_items further objects through cb. Returns 0 when the
 * walk reached the end, ERR_AGAIN when max_items were delivered (call
 * again in a later loop turn), cb's non-zero result, ERR_CORRUPT, -errno.
 * After an error other than ERR_AGAIN only statedb_iter_end() is valid.
 */
int statedb_iter_next(struct statedb_iter *it, size_t max_items,
                      statedb_load_cb *cb, void *arg);

/* End the read transaction and free it. NULL is a no-op. */
void statedb_iter_end(struct statedb_iter *it);

/* ---- Snapshots: the state streamed in chunks -------------------------- */

/*
 * A follower behind the leader's compacted log gets the leader's LMDB
 * state as a stream of chunks (Raft §7). The sender reads one LMDB read
 * transaction across loop turns, so the leader keeps writing; the
 * receiver stages the chunks in <state_dir>/db.incoming, one durable
 * LMDB transaction per chunk, so a transfer resumes after a reconnect or
 * a crash; the last step swaps the staging for <state_dir>/db atomically.
 *
 * A chunk is self-describing bytes, all integers little-endian:
 *
 *   0  u32  magic "SHSN"
 *   4  u8   version, 1
 *   5  u8   flags: bit 0 SNAP_CHUNK_LAST; the others 0
 *   6  u16  reserved, 0
 *   8  u32  length of the whole chunk, checksum included
 *  12  u32  number of items
 *  16  u64  snapshot index (applied index of the state)
 *  24  u64  snapshot term (its term)
 *  32  u64  seq, 0 for the first chunk
 *  40  seq 0 only: u32 membership length, the membership bytes
 *      items: u8 kind, u8 id length (1 to 255), u32 value length,
 *             the id bytes (no NUL), the value bytes
 *  len-8    u64 XXH3-64 of every byte before it
 *
 * Items come in key order (kind, then id bytes), as statedb_load() gives
 * them; chunks are a pure function of the read transaction and
 * chunk_bytes, so a sender can rebuild chunk n to resume a transfer.
 */

#define SNAP_HDR_BYTES 40
#define SNAP_SUM_BYTES 8
#define SNAP_CHUNK_LAST 0x01
#define SNAP_CHUNK_BYTES (1u << 20)      /* default chunk size */
#define SNAP_MIN_CHUNK_BYTES (4u << 10)  /* smallest chunk_bytes */
#define SNAP_MAX_VALUE WAL_MAX_PAYLOAD   /* an object came in an entry */
#define SNAP_MAX_CHUNK_BYTES (32u << 20) /* no chunk is longer */

_Static_assert(SNAP_MAX_CHUNK_BYTES >=
                   SNAP_MAX_VALUE + STATEDB_MAX_MEMBERSHIP + (1u << 16),
               "chunk 0 with the membership and one largest item fits");

/* A snapshot is named by the last entry it holds. */
struct snap_id {
    uint64_t index;
    uint64_t term;
};

/* The header of a chunk, as snap_chunk_peek() reads it. */
struct snap_chunk_info {
    struct snap_id id;
    uint64_t seq;
    bool last;
    uint32_t n_items;
};

struct snap_send;
struct snap_recv;

/*
 * Check the length, checksum and header of the chunk in buf (untrusted
 * bytes) and fill *info, without looking at the items: for a follower to
 * learn which snapshot a chunk belongs to before snap_recv_open().
 * Returns 0; ERR_CORRUPT when len is short or differs from the length the
 * chunk claims (truncated), or the checksum fails (damaged); ERR_PROTO
 * when a sound chunk has a bad magic, version, flags or reserved field, or
 * len is over SNAP_MAX_CHUNK_BYTES. Never allocates.
 */
int snap_chunk_peek(const void *buf, size_t len, struct snap_chunk_info *info);

/*
 * Sender, on the leader. Start a snapshot of db: a read transaction over
 * the whole state and its meta, kept until snap_send_end(). The snapshot
 * id is the meta's (applied index, applied term); see snap_send_id().
 * chunk_bytes: the size a chunk keeps to, 0 for SNAP_CHUNK_BYTES, at
 * least SNAP_MIN_CHUNK_BYTES and at most SNAP_MAX_VALUE. A chunk goes over
 * it only to carry, alone, a membership (chunk 0, then without items) or
 * one item that is larger; so a chunk is at most SNAP_HDR_BYTES + 4 +
 * SNAP_SUM_BYTES + max(chunk_bytes, membership, 6 + id + largest value),
 * never over SNAP_MAX_CHUNK_BYTES. db is kept until snap_send_end()
 * and must not be closed before; writes to db go on meanwhile and are not
 * seen by the stream. *out is transferred. Returns 0; ERR_TOOBIG for a
 * chunk_bytes out of range; the errors of statedb_iter_begin().
 */
int snap_send_begin(struct snap_send **out, struct statedb *db,
                    size_t chunk_bytes);

/* The id of the snapshot that s streams. */
struct snap_id snap_send_id(const struct snap_send *s);

/*
 * Build the next chunk. Work per call is bounded: one chunk, or, while
 * skipping toward a snap_send_seek() target, at most 16 chunks' worth of
 * walking. On 1 or 0, *chunk and *len give the chunk, owned by s and
 * valid until the next call on s; its seq is snap_send_seq(s) - 1.
 * Returns 1 when more chunks follow, 0 when this one is the last;
 * ERR_AGAIN when it skipped toward the target and produced nothing (call
 * again in a later loop turn); ERR_BADSTATE after the last chunk was
 * given (seek to send again); ERR_PROTO when a seek target lies past the
 * last chunk; ERR_TOOBIG for a value over SNAP_MAX_VALUE; ERR_NOMEM;
 * ERR_CORRUPT or -errno from LMDB, after which only snap_send_end() is
 * valid.
 */
int snap_send_next(struct snap_send *s, const void **chunk, size_t *len);

/* The seq of the chunk the next snap_send_next() gives. */
uint64_t snap_send_seq(const struct snap_send *s);

/*
 * Make the next chunk given be seq (a receiver said it holds every chunk
 * below seq: snap_recv_open()'s *next_seq). Going back restarts the walk
 * in the same read transaction; going forward skips through later
 * snap_send_next() calls. Never fails; a seq past the last chunk is
 * reported by snap_send_next().
 */
void snap_send_seek(struct snap_send *s, uint64_t seq);

/* End the read transaction and free s. NULL is a no-op. Call it as soon
 * as the transfer ends: a read transaction pins LMDB pages. */
void snap_send_end(struct snap_send *s);

/*
 * Receiver, on the follower. Open the staging for snapshot id in
 * <state_dir>/db.incoming (state_dir must exist), map_bytes as for
 * statedb_open(). A staging of the same id, left by an earlier receiver
 * or a crash, is resumed: *next_seq is the first chunk it lacks, to be
 * asked of the leader; a staging of another id, or one that cannot be
 * read, is removed and a new one started (*next_seq 0). When the staging
 * already holds the last chunk, *next_seq is one past it and
 * snap_recv_complete() is true: call snap_recv_finish().
 * At most one receiver per state_dir at a time (LMDB must not open the
 * staging twice in one process); pass the map_bytes given to
 * statedb_open(), as the staging becomes that database. The manager's
 * own statedb may stay open until snap_recv_finish(). *out is transferred.
 * Returns 0, ERR_NOMEM, ERR_CORRUPT, -errno.
 */
int snap_recv_open(struct snap_recv **out, const char *state_dir,
                   const struct snap_id *id, size_t map_bytes,
                   uint64_t *next_seq);

/*
 * Validate a chunk received from the network (untrusted bytes, borrowed)
 * and stage it: its items, its membership (chunk 0) and the new progress
 * in one durable LMDB transaction, so a crash loses at most the chunk in
 * flight and nothing is ever half applied. Returns 0 when it is durable;
 * ERR_CORRUPT when the chunk is truncated or its checksum fails;
 * ERR_PROTO when a sound chunk breaks the format (header fields, item or
 * id lengths, an id with a NUL, membership over STATEDB_MAX_MEMBERSHIP,
 * bytes left over) or belongs to another snapshot id, or comes after the
 * last one; ERR_EXISTS when its seq is below snap_recv_next_seq() (held
 * already: drop it); ERR_AGAIN when its seq is above (chunks are missing:
 * ask the leader to resume at snap_recv_next_seq()); ERR_TOOBIG when the
 * staging map is full; ERR_NOMEM; -errno. On every error nothing of the
 * chunk is stored and r stays usable, except after -EIO and the like from
 * LMDB: then close r and open it again.
 */
int snap_recv_chunk(struct snap_recv *r, const void *buf, size_t len);

/* The seq of the chunk r needs next. */
uint64_t snap_recv_next_seq(const struct snap_recv *r);

/* True once the last chunk is staged. */
bool snap_recv_complete(const struct snap_recv *r);

/*
 * Make the staged state the manager's state, atomically, and free r
 * (transferred, whatever the result). The caller:
 *   before: has the whole snapshot (snap_recv_complete()), and has closed
 *           its own statedb with statedb_close() (ended its iterators
 *           and any snap_send first): LMDB must not have db open;
 *   after:  statedb_open() and statedb_load() (applied index and term are
 *           the snapshot id), rebuilds its indexes from it, then
 *           wal_reset(w, id.index, id.term). On an error the old state is
 *           in place: statedb_open() again (it settles what is left).
 * How: the staging's progress record is removed, then renameat2(2) with
 * RENAME_EXCHANGE swaps db and db.incoming in one step and the folder is
 * synced; the old state, now in db.incoming, is then removed. Where the
 * file system has no RENAME_EXCHANGE, db is renamed to db.old, then
 * db.incoming to db, each synced; a crash between the two leaves db.old
 * without db, which the next statedb_open() renames back (the old state,
 * the transfer is started again); db.old beside db is removed there.
 * Returns 0 when the new state is durable in db (a failure to remove the
 * old state is then only logged); ERR_BADSTATE when not complete;
 * ERR_CORRUPT; -errno.
 */
int snap_recv_finish(struct snap_recv *r);

/* Close r and free it, keeping the staging on disk for a later resume.
 * NULL is a no-op. */
void snap_recv_close(struct snap_recv *r);

/* Close r, free it and remove the staging (e.g. the leader moved to
 * another snapshot). Returns 0 or -errno (r is freed in any case). */
int snap_recv_abort(struct snap_recv *r);

/* ---- Failure injection (test builds only) --------------------------- */

#ifdef SHOAL_TEST_BUILD
/* The durable-write boundaries where a hook may fail or kill. */
enum storage_fp {
    STORAGE_FP_WAL_WRITE,   /* before a pwrite of records */
    STORAGE_FP_WAL_FSYNC,   /* written, before fdatasync of a segment */
    STORAGE_FP_WAL_CREATE,  /* before a new segment file is created */
    STORAGE_FP_WAL_DIRSYNC, /* before fsync of the wal directory */
    STORAGE_FP_WAL_UNLINK,  /* before a segment file is removed */
    STORAGE_FP_WAL_CUT,     /* before ftruncate of a segment */
    STORAGE_FP_DB_COMMIT,   /* batch staged, before mdb_txn_commit */
    STORAGE_FP_SNAP_COMMIT, /* snapshot chunk staged, before its commit */
    STORAGE_FP_SNAP_SWAP,   /* before renameat2(RENAME_EXCHANGE) of the
                               staging and db; an error such as -EINVAL
                               makes the rename fallback run */
    STORAGE_FP_SNAP_RENAME, /* fallback: before each of its two renames */
    STORAGE_FP_SNAP_REMOVE, /* swap durable, before the old state goes */
    STORAGE_FP_WAL_RESET,   /* reset segment durable, before the old
                               segments go; an error leaves them to the
                               next write or open */
};

/*
 * Return 0 to let the operation run, or a negative errno that the
 * operation then fails with as if the system call had. It may also
 * _exit() to stand for a crash at that point.
 */
typedef int storage_fp_hook(enum storage_fp fp, void *arg);

/* Install hook (NULL removes it); arg is kept until it is replaced. */
void storage_fp_set(storage_fp_hook *hook, void *arg);
#endif

#endif
