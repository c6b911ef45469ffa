/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * snap_recv.c: the follower's side of a snapshot transfer: staging,
 * resume and the atomic swap into <state_dir>/db.
 *
 * Owns <state_dir>/db.incoming, an LMDB environment with the layout of
 * statedb.c plus one aux record in its "meta" database:
 *   "snap.progress"  u32 version (1), u32 flags (bit 0: last chunk
 *                    staged), u64 snapshot index, u64 snapshot term,
 *                    u64 next seq (all little-endian)
 * Every chunk's items and the new progress commit together, so the
 * record always tells exactly which chunks are durable. Invariant: a
 * folder db.incoming without a valid progress record is never made the
 * state; it is removed by the next snap_recv_open().
 *
 * Chunks come from the network: each length and id is checked before it
 * is used and a bad chunk is an error code, never an assert.
 */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "storage/storage_int.h"

#define STAGE_NAME "db.incoming"
#define LIVE_NAME "db"
#define OLD_NAME "db.old" /* the old state during the rename fallback */
#define PROGRESS_KEY "snap.progress"
#define PROGRESS_VERSION 1
#define PROGRESS_BYTES 32
#define PROGRESS_COMPLETE 0x01

struct snap_recv {
    int dir_fd;         /* state_dir */
    char *state_dir;    /* owned, for log lines */
    char *stage;        /* <state_dir>/db.incoming, owned */
    struct statedb *db; /* the staging; NULL once closed */
    struct snap_id id;
    uint64_t next_seq; /* first chunk not yet durable */
    bool complete;     /* the chunk with the last flag is durable */
};

/* One item of a chunk, pointing into the chunk. */
struct item {
    uint8_t kind;
    const uint8_t *id;
    size_t id_len;
    const uint8_t *val;
    size_t len;
};

/* ---- Folders ---------------------------------------------------------- */

static int
dir_sync(int dir_fd)
{
    return fsync(dir_fd) == 0 ? 0 : -errno;
}

/* Remove the LMDB folder name under dir_fd (its files, then itself) and
 * sync dir_fd. A missing folder is not an error. */
static int
rm_env_dir(int dir_fd, const char *name)
{
    struct dirent *de;
    DIR *d;
    int fd, rc = 0;

    fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    d = fdopendir(fd);
    if (d == NULL) {
        rc = -errno;
        close(fd);
        return rc;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT) {
            rc = -errno;
        }
    }
    closedir(d);
    if (rc == 0 && unlinkat(dir_fd, name, AT_REMOVEDIR) != 0 &&
        errno != ENOENT) {
        rc = -errno;
    }
    return rc == 0 ? dir_sync(dir_fd) : rc;
}

static bool
name_exists(int dir_fd, const char *name)
{
    struct stat st;

    return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int
storage__snap_repair(const char *state_dir)
{
    int dir_fd, rc = 0;

    dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        return -errno;
    }
    if (!name_exists(dir_fd, OLD_NAME)) {
        close(dir_fd);
        return 0;
    }
    if (name_exists(dir_fd, LIVE_NAME)) {
        /* The fallback swap got to its end: db.old is the old state. */
        rc = rm_env_dir(dir_fd, OLD_NAME);
    } else {
        /* It stopped between its two renames: put the old state back.
         * The staging is still whole, without its progress record. */
        log_notice("storage",
                   "snapshot swap cut short, old state restored: dir=%s",
                   state_dir);
        rc = renameat(dir_fd, OLD_NAME, dir_fd, LIVE_NAME) == 0 ? 0 : -errno;
        if (rc == 0) {
            rc = dir_sync(dir_fd);
        }
    }
    close(dir_fd);
    return rc;
}

/* ---- Progress record -------------------------------------------------- */

static void
progress_encode(uint8_t out[PROGRESS_BYTES], const struct snap_recv *r,
                uint64_t next_seq, bool complete)
{
    storage__put_le32(out, PROGRESS_VERSION);
    storage__put_le32(out + 4, complete ? PROGRESS_COMPLETE : 0);
    storage__put_le64(out + 8, r->id.index);
    storage__put_le64(out + 16, r->id.term);
    storage__put_le64(out + 24, next_seq);
}

/* Resume from the staging's progress when it is for r->id. Returns 0
 * when it is, ERR_NOTFOUND when the staging is of no use. */
static int
progress_load(struct snap_recv *r)
{
    uint8_t p[PROGRESS_BYTES];
    size_t n = 0;
    int rc;

    rc = statedb__aux_get(r->db, PROGRESS_KEY, p, sizeof(p), &n);
    if (rc != 0) {
        return rc;
    }
    if (n != PROGRESS_BYTES || storage__get_le32(p) != PROGRESS_VERSION ||
        (storage__get_le32(p + 4) & ~PROGRESS_COMPLETE) != 0) {
        return ERR_CORRUPT;
    }
    if (storage__get_le64(p + 8) != r->id.index ||
        storage__get_le64(p + 16) != r->id.term) {
        return ERR_NOTFOUND;
    }
    r->next_seq = storage__get_le64(p + 24);
    r->complete = (storage__get_le32(p + 4) & PROGRESS_COMPLETE) != 0;
    return 0;
}

/* ---- Open and close --------------------------------------------------- */

/* Open the staging and decide: resume it, or remove it and start anew. */
static int
stage_open(struct snap_recv *r, size_t map_bytes)
{
    int rc = ERR_NOTFOUND;

    if (name_exists(r->dir_fd, STAGE_NAME)) {
        rc = statedb__open_path(&r->db, r->stage, map_bytes);
        if (rc == 0) {
            rc = progress_load(r);
        }
        if (rc == 0) {
            if (r->next_seq > 0) {
                log_notice("storage",
                           "snapshot transfer resumed: index=%" PRIu64
                           " term=%" PRIu64 " next_seq=%" PRIu64,
                           r->id.index, r->id.term, r->next_seq);
            }
            return 0;
        }
        if (rc == ERR_NOMEM) {
            return rc;
        }
        /* Another snapshot, an old state left by a swap, or bytes we
         * cannot read: none of it can become this snapshot. */
        log_info("storage", "snapshot staging discarded: dir=%s: %s", r->stage,
                 err_str(rc));
        statedb_close(r->db);
        r->db = NULL;
        rc = rm_env_dir(r->dir_fd, STAGE_NAME);
        if (rc != 0) {
            return rc;
        }
    }
    r->next_seq = 0;
    r->complete = false;
    return statedb__open_path(&r->db, r->stage, map_bytes);
}

static void
recv_free(struct snap_recv *r)
{
    statedb_close(r->db);
    if (r->dir_fd >= 0) {
        close(r->dir_fd);
    }
    free(r->stage);
    free(r->state_dir);
    free(r);
}

int
snap_recv_open(struct snap_recv **out, const char *state_dir,
               const struct snap_id *id, size_t map_bytes, uint64_t *next_seq)
{
    struct snap_recv *r;
    int rc;

    *out = NULL;
    *next_seq = 0;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return ERR_NOMEM;
    }
    r->id = *id;
    r->dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dir_fd < 0) {
        rc = -errno;
        goto fail_free;
    }
    r->state_dir = str_dup(state_dir);
    r->stage = str_printf("%s/%s", state_dir, STAGE_NAME);
    if (r->state_dir == NULL || r->stage == NULL) {
        rc = ERR_NOMEM;
        goto fail_free;
    }
    rc = stage_open(r, map_bytes);
    if (rc != 0) {
        goto fail_free;
    }
    *next_seq = r->next_seq;
    *out = r;
    return 0;

fail_free:
    recv_free(r);
    return rc;
}

uint64_t
snap_recv_next_seq(const struct snap_recv *r)
{
    return r->next_seq;
}

bool
snap_recv_complete(const struct snap_recv *r)
{
    return r->complete;
}

void
snap_recv_close(struct snap_recv *r)
{
    if (r != NULL) {
        recv_free(r);
    }
}

int
snap_recv_abort(struct snap_recv *r)
{
    int rc;

    if (r == NULL) {
        return 0;
    }
    statedb_close(r->db);
    r->db = NULL;
    rc = rm_env_dir(r->dir_fd, STAGE_NAME);
    recv_free(r);
    return rc;
}

/* ---- Chunks ----------------------------------------------------------- */

/* Read the item at *off of a body ending at end. Returns 0, or ERR_PROTO
 * when its lengths run past the end or its id breaks statedb's rule. */
static int
item_read(const uint8_t *p, size_t end, size_t *off, struct item *it)
{
    size_t o = *off;

    if (end - o < SNAP_ITEM_HDR_BYTES) {
        return ERR_PROTO;
    }
    it->kind = p[o];
    it->id_len = p[o + 1];
    it->len = storage__get_le32(p + o + 2);
    o += SNAP_ITEM_HDR_BYTES;
    /* Each length against what is left, so no sum can overflow. */
    if (it->id_len == 0 || it->id_len > end - o || it->len > SNAP_MAX_VALUE ||
        it->len > end - o - it->id_len) {
        return ERR_PROTO;
    }
    it->id = p + o;
    it->val = p + o + it->id_len;
    if (memchr(it->id, '\0', it->id_len) != NULL) {
        return ERR_PROTO;
    }
    *off = o + it->id_len + it->len;
    return 0;
}

/* Check the whole body before anything is written: membership, each
 * item, the count, and that no byte is left over. */
static int
body_check(const uint8_t *p, size_t len, const struct snap_chunk_info *info,
           struct statedb_meta *meta, size_t *items_off)
{
    size_t end = len - SNAP_SUM_BYTES, off = SNAP_HDR_BYTES;
    struct item it;
    int rc;

    if (info->seq == 0) {
        if (end - off < 4) {
            return ERR_PROTO;
        }
        meta->membership_len = storage__get_le32(p + off);
        off += 4;
        if (meta->membership_len > STATEDB_MAX_MEMBERSHIP ||
            meta->membership_len > end - off) {
            return ERR_PROTO;
        }
        meta->membership = meta->membership_len > 0 ? p + off : NULL;
        off += meta->membership_len;
    }
    *items_off = off;
    for (uint32_t i = 0; i < info->n_items; i++) {
        rc = item_read(p, end, &off, &it);
        if (rc != 0) {
            return rc;
        }
    }
    return off == end ? 0 : ERR_PROTO;
}

/* Items, meta (chunk 0) and progress in one transaction. */
static int
stage_write(struct snap_recv *r, const uint8_t *p, size_t len,
            const struct snap_chunk_info *info, const struct statedb_meta *meta,
            size_t off)
{
    uint8_t prog[PROGRESS_BYTES];
    size_t end = len - SNAP_SUM_BYTES;
    struct item it;
    int rc;

    rc = statedb__txn_begin(r->db);
    if (rc != 0) {
        return rc;
    }
    if (info->seq == 0) {
        rc = statedb__txn_meta(r->db, meta);
    }
    for (uint32_t i = 0; rc == 0 && i < info->n_items; i++) {
        rc = item_read(p, end, &off, &it);
        ASSERT(rc == 0); /* body_check() read the same bytes */
        rc = statedb__txn_put(r->db, it.kind, it.id, it.id_len, it.val, it.len);
    }
    if (rc == 0) {
        progress_encode(prog, r, info->seq + 1, info->last);
        rc = statedb__txn_aux(r->db, PROGRESS_KEY, prog, sizeof(prog));
    }
    if (rc != 0) {
        statedb__txn_abort(r->db);
        return rc;
    }
    return statedb__txn_commit(r->db);
}

int
snap_recv_chunk(struct snap_recv *r, const void *buf, size_t len)
{
    struct statedb_meta meta = {
        .applied_index = r->id.index,
        .applied_term = r->id.term,
    };
    struct snap_chunk_info info;
    size_t items_off;
    int rc;

    if (r->db == NULL) {
        return ERR_BADSTATE;
    }
    rc = snap_chunk_peek(buf, len, &info);
    if (rc != 0) {
        return rc;
    }
    if (info.id.index != r->id.index || info.id.term != r->id.term) {
        return ERR_PROTO;
    }
    if (info.seq < r->next_seq) {
        return ERR_EXISTS;
    }
    if (r->complete) {
        return ERR_PROTO; /* nothing comes after the last chunk */
    }
    if (info.seq > r->next_seq) {
        return ERR_AGAIN;
    }
    rc = body_check(buf, len, &info, &meta, &items_off);
    if (rc == 0) {
        rc = stage_write(r, buf, len, &info, &meta, items_off);
    }
    if (rc != 0) {
        return rc;
    }
    r->next_seq++;
    r->complete = info.last;
    return 0;
}

/* ---- The swap --------------------------------------------------------- */

/* The old state is out of the way: remove it. Failing here costs only
 * space, as the new state is already durable in db. */
static void
remove_old(struct snap_recv *r, const char *name)
{
    int rc = STORAGE_FP(STORAGE_FP_SNAP_REMOVE);

    if (rc == 0) {
        rc = rm_env_dir(r->dir_fd, name);
    }
    if (rc != 0) {
        log_warn("storage",
                 "old state not removed after snapshot swap: dir=%s/%s: %s",
                 r->state_dir, name, err_str(rc));
    }
}

static int
rename_synced(int dir_fd, const char *from, const char *to)
{
    int rc = STORAGE_FP(STORAGE_FP_SNAP_RENAME);

    if (rc == 0 && renameat(dir_fd, from, dir_fd, to) != 0) {
        rc = -errno;
    }
    return rc == 0 ? dir_sync(dir_fd) : rc;
}

/*
 * Without RENAME_EXCHANGE: db -> db.old, then db.incoming -> db. Between
 * the two there is no db; storage__snap_repair() renames db.old back.
 */
static int
swap_by_renames(struct snap_recv *r)
{
    int rc = rm_env_dir(r->dir_fd, OLD_NAME); /* left by an old failure */

    if (rc == 0) {
        rc = rename_synced(r->dir_fd, LIVE_NAME, OLD_NAME);
    }
    if (rc != 0) {
        return rc;
    }
    rc = rename_synced(r->dir_fd, STAGE_NAME, LIVE_NAME);
    if (rc != 0) {
        /* Put the old state back now; if that fails too, the next
         * statedb_open() does it. */
        if (!name_exists(r->dir_fd, LIVE_NAME) &&
            renameat(r->dir_fd, OLD_NAME, r->dir_fd, LIVE_NAME) == 0) {
            (void)dir_sync(r->dir_fd);
        }
        return rc;
    }
    remove_old(r, OLD_NAME);
    return 0;
}

static int
swap_in(struct snap_recv *r)
{
    int rc = STORAGE_FP(STORAGE_FP_SNAP_SWAP);

    if (rc == 0 && renameat2(r->dir_fd, STAGE_NAME, r->dir_fd, LIVE_NAME,
                             RENAME_EXCHANGE) != 0) {
        rc = -errno;
    }
    if (rc == -ENOENT && !name_exists(r->dir_fd, LIVE_NAME)) {
        /* No state yet: a plain rename is just as atomic. */
        rc = renameat(r->dir_fd, STAGE_NAME, r->dir_fd, LIVE_NAME) == 0
                 ? 0
                 : -errno;
        return rc == 0 ? dir_sync(r->dir_fd) : rc;
    }
    if (rc == -EINVAL || rc == -ENOSYS || rc == -EOPNOTSUPP) {
        return swap_by_renames(r); /* the file system cannot exchange */
    }
    if (rc == 0) {
        rc = dir_sync(r->dir_fd);
    }
    if (rc == 0) {
        remove_old(r, STAGE_NAME); /* it holds the old state now */
    }
    return rc;
}

int
snap_recv_finish(struct snap_recv *r)
{
    int rc = ERR_BADSTATE;

    if (r->db == NULL || !r->complete) {
        goto out_free;
    }
    /* From here the staging is no longer resumable: a crash before the
     * swap leaves a folder that the next snap_recv_open() removes. So
     * neither the old state in db.incoming after an exchange nor this
     * staging can ever be taken for a transfer to resume. */
    rc = statedb__txn_begin(r->db);
    if (rc == 0) {
        rc = statedb__txn_aux(r->db, PROGRESS_KEY, NULL, 0);
        if (rc != 0) {
            statedb__txn_abort(r->db);
        } else {
            rc = statedb__txn_commit(r->db);
        }
    }
    statedb_close(r->db);
    r->db = NULL;
    if (rc == 0) {
        rc = swap_in(r);
    }
    if (rc == 0) {
        log_notice("storage",
                   "snapshot installed: dir=%s index=%" PRIu64 " term=%" PRIu64,
                   r->state_dir, r->id.index, r->id.term);
    }

out_free:
    recv_free(r);
    return rc;
}
