/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * statedb.c: the applied state in LMDB, flushed in atomic batches.
 *
 * Owns the environment in <state_dir>/db. LMDB's return codes are mapped
 * to ours here and go no further. Everything read back is untrusted: a
 * malformed key or meta record is ERR_CORRUPT.
 *
 * Key layout, two named databases:
 *   "objects"  key:   kind (1 byte) then the id bytes (1 to 255, no NUL)
 *              value: the object's encoding, opaque here
 *   "meta"     key:   "applied"
 *              value: u32 version (1), u32 membership length,
 *                     u64 applied index, u64 applied term (all
 *                     little-endian), then the membership bytes
 * Objects and meta change only together, in one write transaction.
 * A snapshot staging (snap_recv.c) has the same layout plus an aux record
 * "snap.progress" in "meta", which statedb_load() never reads and which
 * is deleted before the staging becomes <state_dir>/db.
 */
#include "storage/storage.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "base/base.h"
#include "storage/storage_int.h"

#define META_KEY "applied"
#define META_VERSION 1
#define META_HDR_BYTES 24

struct statedb {
    MDB_env *env;
    MDB_dbi objs;
    MDB_dbi meta;
    uint8_t *membership; /* copy handed out by the last statedb_load() */
    MDB_txn *wtxn;       /* open write txn of statedb__txn_begin() */
};

struct statedb_iter {
    MDB_txn *txn; /* read-only; keeps the values it handed out valid */
    MDB_cursor *cur;
    bool started;
};

/* LMDB codes (positive errno or MDB_*) become ours at this boundary. */
static int
map_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return ERR_NOTFOUND;
    case MDB_KEYEXIST:
        return ERR_EXISTS;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_BAD_VALSIZE:
        return ERR_TOOBIG;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return ERR_CORRUPT;
    case ENOMEM:
        return ERR_NOMEM;
    default:
        break;
    }
    /* MDB_PANIC and the other MDB_* codes: the environment is unusable
     * or misused; the caller closes and reopens it. */
    return rc > 0 ? -rc : ERR_BADSTATE;
}

/* ---- Open and close --------------------------------------------------- */

static int
env_open(struct statedb *db, const char *path, size_t map_bytes)
{
    int rc = mdb_env_create(&db->env);

    if (rc != 0) {
        db->env = NULL;
        return map_err(rc);
    }
    rc = mdb_env_set_mapsize(db->env, map_bytes);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(db->env, 2);
    }
    /*
     * MDB_NOTLS: a snapshot's read transaction stays open across loop
     * turns while the same thread commits. No MDB_NOSYNC or
     * MDB_NOMETASYNC: see statedb_flush().
     */
    if (rc == 0) {
        rc = mdb_env_open(db->env, path, MDB_NOTLS, 0600);
    }
    return map_err(rc);
}

static int
dbis_open(struct statedb *db)
{
    MDB_txn *txn;
    int rc;

    rc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (rc != 0) {
        return map_err(rc);
    }
    rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &db->objs);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &db->meta);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return map_err(rc);
    }
    return map_err(mdb_txn_commit(txn)); /* frees txn in any case */
}

int
statedb__open_path(struct statedb **out, const char *path, size_t map_bytes)
{
    struct statedb *db;
    int rc;

    *out = NULL;
    db = calloc(1, sizeof(*db));
    rc = db != NULL ? storage__mkdir(path) : ERR_NOMEM;
    if (rc == 0) {
        rc = env_open(db, path, map_bytes > 0 ? map_bytes : STATEDB_MAP_BYTES);
    }
    if (rc == 0) {
        rc = dbis_open(db);
    }
    if (rc == 0) {
        rc = storage__fsync_path(path); /* the names of LMDB's files */
    }
    if (rc != 0) {
        statedb_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

int
statedb_open(struct statedb **out, const char *state_dir, size_t map_bytes)
{
    char *path;
    int rc;

    *out = NULL;
    /* A snapshot swap cut short by a crash is settled before the
     * state is read, so that db is always a whole state. */
    rc = storage__snap_repair(state_dir);
    if (rc != 0) {
        return rc;
    }
    path = str_printf("%s/db", state_dir);
    if (path == NULL) {
        return ERR_NOMEM;
    }
    rc = statedb__open_path(out, path, map_bytes);
    free(path);
    return rc;
}

void
statedb_close(struct statedb *db)
{
    if (db == NULL) {
        return;
    }
    if (db->wtxn != NULL) {
        mdb_txn_abort(db->wtxn);
    }
    if (db->env != NULL) {
        mdb_env_close(db->env);
    }
    free(db->membership);
    free(db);
}

/* ---- The meta record -------------------------------------------------- */

static MDB_val
meta_key(void)
{
    return (MDB_val){.mv_size = strlen(META_KEY), .mv_data = META_KEY};
}

static int
meta_decode(const MDB_val *v, struct statedb_meta *m)
{
    const uint8_t *p = v->mv_data;
    uint32_t len;

    if (v->mv_size < META_HDR_BYTES || storage__get_le32(p) != META_VERSION) {
        return ERR_CORRUPT;
    }
    len = storage__get_le32(p + 4);
    if (len > STATEDB_MAX_MEMBERSHIP ||
        v->mv_size != META_HDR_BYTES + (size_t)len) {
        return ERR_CORRUPT;
    }
    m->applied_index = storage__get_le64(p + 8);
    m->applied_term = storage__get_le64(p + 16);
    m->membership = len > 0 ? p + META_HDR_BYTES : NULL;
    m->membership_len = len;
    return 0;
}

/* Fill *m from txn; zeros when no flush ever happened. m->membership
 * points into the map and lives as long as txn. */
static int
meta_read(const struct statedb *db, MDB_txn *txn, struct statedb_meta *m)
{
    MDB_val k = meta_key(), v;
    int rc;

    *m = (struct statedb_meta){0};
    rc = mdb_get(txn, db->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    return rc == 0 ? meta_decode(&v, m) : map_err(rc);
}

static int
meta_write(const struct statedb *db, MDB_txn *txn, const struct statedb_meta *m)
{
    MDB_val k = meta_key();
    MDB_val v = {.mv_size = META_HDR_BYTES + m->membership_len};
    uint8_t *p;
    int rc;

    /* MDB_RESERVE hands us the value's place in the map to fill. */
    rc = mdb_put(txn, db->meta, &k, &v, MDB_RESERVE);
    if (rc != 0) {
        return map_err(rc);
    }
    p = v.mv_data;
    storage__put_le32(p, META_VERSION);
    storage__put_le32(p + 4, (uint32_t)m->membership_len);
    storage__put_le64(p + 8, m->applied_index);
    storage__put_le64(p + 16, m->applied_term);
    if (m->membership_len > 0) {
        memcpy(p + META_HDR_BYTES, m->membership, m->membership_len);
    }
    return 0;
}

/* ---- Reading ---------------------------------------------------------- */

static int
deliver(const MDB_val *k, const MDB_val *v, statedb_load_cb *cb, void *arg)
{
    const uint8_t *p = k->mv_data;
    char id[STATEDB_MAX_ID + 1];
    size_t id_len;

    if (k->mv_size < 2 || k->mv_size > 1 + STATEDB_MAX_ID) {
        return ERR_CORRUPT;
    }
    id_len = k->mv_size - 1;
    if (memchr(p + 1, '\0', id_len) != NULL) {
        return ERR_CORRUPT;
    }
    memcpy(id, p + 1, id_len);
    id[id_len] = '\0';
    return cb(p[0], id, v->mv_data, v->mv_size, arg);
}

int
statedb_iter_begin(struct statedb *db, struct statedb_iter **out,
                   struct statedb_meta *meta)
{
    struct statedb_iter *it;
    int rc;

    *out = NULL;
    *meta = (struct statedb_meta){0};
    it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return ERR_NOMEM;
    }
    rc = map_err(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &it->txn));
    if (rc == 0) {
        rc = map_err(mdb_cursor_open(it->txn, db->objs, &it->cur));
    }
    if (rc == 0) {
        rc = meta_read(db, it->txn, meta);
    }
    if (rc != 0) {
        statedb_iter_end(it);
        *meta = (struct statedb_meta){0};
        return rc;
    }
    *out = it;
    return 0;
}

int
statedb_iter_next(struct statedb_iter *it, size_t max_items,
                  statedb_load_cb *cb, void *arg)
{
    MDB_val k, v;
    int rc;

    for (size_t i = 0; i < max_items; i++) {
        rc =
            mdb_cursor_get(it->cur, &k, &v, it->started ? MDB_NEXT : MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            return map_err(rc);
        }
        it->started = true;
        rc = deliver(&k, &v, cb, arg);
        if (rc != 0) {
            return rc;
        }
    }
    return ERR_AGAIN;
}

void
statedb__iter_rewind(struct statedb_iter *it)
{
    it->started = false;
}

void
statedb_iter_end(struct statedb_iter *it)
{
    if (it == NULL) {
        return;
    }
    if (it->cur != NULL) {
        mdb_cursor_close(it->cur);
    }
    if (it->txn != NULL) {
        mdb_txn_abort(it->txn);
    }
    free(it);
}

/* Copy the membership out of the map before the read txn ends. */
static int
keep_membership(struct statedb *db, struct statedb_meta *meta)
{
    free(db->membership);
    db->membership = NULL;
    if (meta->membership_len == 0) {
        return 0;
    }
    db->membership = malloc(meta->membership_len);
    if (db->membership == NULL) {
        return ERR_NOMEM;
    }
    memcpy(db->membership, meta->membership, meta->membership_len);
    meta->membership = db->membership;
    return 0;
}

int
statedb_load(struct statedb *db, statedb_load_cb *cb, void *arg,
             struct statedb_meta *meta)
{
    struct statedb_iter *it;
    int rc;

    rc = statedb_iter_begin(db, &it, meta);
    if (rc != 0) {
        return rc;
    }
    rc = statedb_iter_next(it, SIZE_MAX, cb, arg);
    if (rc == 0) {
        rc = keep_membership(db, meta);
    }
    statedb_iter_end(it);
    if (rc != 0) {
        *meta = (struct statedb_meta){0};
    }
    return rc;
}

/* ---- Writing ---------------------------------------------------------- */

static int
apply_write(const struct statedb *db, MDB_txn *txn,
            const struct statedb_write *wr)
{
    uint8_t key[1 + STATEDB_MAX_ID];
    size_t id_len;
    MDB_val k, v;
    int rc;

    ASSERT(wr->id != NULL);
    ASSERT(wr->op == STATEDB_PUT || wr->op == STATEDB_DEL);
    id_len = strlen(wr->id);
    if (id_len == 0 || id_len > STATEDB_MAX_ID) {
        return ERR_TOOBIG;
    }
    key[0] = wr->kind;
    memcpy(key + 1, wr->id, id_len);
    k = (MDB_val){.mv_size = 1 + id_len, .mv_data = key};

    if (wr->op == STATEDB_DEL) {
        rc = mdb_del(txn, db->objs, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : map_err(rc);
    }
    v = (MDB_val){.mv_size = wr->len, .mv_data = (void *)wr->val};
    return map_err(mdb_put(txn, db->objs, &k, &v, 0));
}

/* The WAL is compacted below the stored applied index, so it must
 * never move back. */
static int
check_applied(const struct statedb *db, MDB_txn *txn,
              const struct statedb_meta *meta)
{
    struct statedb_meta cur;
    int rc = meta_read(db, txn, &cur);

    if (rc != 0) {
        return rc;
    }
    return meta->applied_index < cur.applied_index ? ERR_BADSTATE : 0;
}

int
statedb_flush(struct statedb *db, const struct statedb_write *ws, size_t n,
              const struct statedb_meta *meta)
{
    MDB_txn *txn;
    int rc;

    if (meta->membership_len > STATEDB_MAX_MEMBERSHIP) {
        return ERR_TOOBIG;
    }
    rc = map_err(mdb_txn_begin(db->env, NULL, 0, &txn));
    if (rc != 0) {
        return rc;
    }
    rc = check_applied(db, txn, meta);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = apply_write(db, txn, &ws[i]);
    }
    if (rc == 0) {
        rc = meta_write(db, txn, meta);
    }
    if (rc == 0) {
        rc = STORAGE_FP(STORAGE_FP_DB_COMMIT);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    /*
     * Without MDB_NOSYNC and MDB_NOMETASYNC, commit returns only after
     * the data pages and then the meta page are synced: once it returns
     * 0 the caller may delete log segments up to meta->applied_index.
     * It frees txn whatever the outcome.
     */
    return map_err(mdb_txn_commit(txn));
}

/* ---- Staging writes (snapshot receiver) ------------------------------- */

int
statedb__txn_begin(struct statedb *db)
{
    ASSERT(db->wtxn == NULL);
    return map_err(mdb_txn_begin(db->env, NULL, 0, &db->wtxn));
}

int
statedb__txn_put(struct statedb *db, uint8_t kind, const void *id,
                 size_t id_len, const void *val, size_t len)
{
    uint8_t key[1 + STATEDB_MAX_ID];
    MDB_val k, v;

    ASSERT(db->wtxn != NULL);
    /* The same rule as statedb_flush() and deliver(): 1 to 255 bytes,
     * no NUL, so that the id reads back as a C string. */
    if (id_len == 0 || id_len > STATEDB_MAX_ID ||
        memchr(id, '\0', id_len) != NULL) {
        return ERR_TOOBIG;
    }
    key[0] = kind;
    memcpy(key + 1, id, id_len);
    k = (MDB_val){.mv_size = 1 + id_len, .mv_data = key};
    v = (MDB_val){.mv_size = len, .mv_data = (void *)val};
    return map_err(mdb_put(db->wtxn, db->objs, &k, &v, 0));
}

int
statedb__txn_meta(struct statedb *db, const struct statedb_meta *meta)
{
    ASSERT(db->wtxn != NULL);
    if (meta->membership_len > STATEDB_MAX_MEMBERSHIP) {
        return ERR_TOOBIG;
    }
    return meta_write(db, db->wtxn, meta);
}

int
statedb__txn_aux(struct statedb *db, const char *key, const void *val,
                 size_t len)
{
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
    MDB_val v = {.mv_size = len, .mv_data = (void *)val};
    int rc;

    ASSERT(db->wtxn != NULL);
    ASSERT(strcmp(key, META_KEY) != 0);
    if (val == NULL) {
        rc = mdb_del(db->wtxn, db->meta, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : map_err(rc);
    }
    return map_err(mdb_put(db->wtxn, db->meta, &k, &v, 0));
}

int
statedb__txn_commit(struct statedb *db)
{
    MDB_txn *txn = db->wtxn;
    int rc;

    ASSERT(txn != NULL);
    db->wtxn = NULL;
    rc = STORAGE_FP(STORAGE_FP_SNAP_COMMIT);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    /* Synced like statedb_flush(): durable on 0; frees txn in any case. */
    return map_err(mdb_txn_commit(txn));
}

void
statedb__txn_abort(struct statedb *db)
{
    if (db->wtxn != NULL) {
        mdb_txn_abort(db->wtxn);
        db->wtxn = NULL;
    }
}

int
statedb__aux_get(struct statedb *db, const char *key, void *buf, size_t cap,
                 size_t *len)
{
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key}, v;
    MDB_txn *txn;
    int rc;

    rc = map_err(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));
    if (rc != 0) {
        return rc;
    }
    rc = map_err(mdb_get(txn, db->meta, &k, &v));
    if (rc == 0) {
        *len = v.mv_size;
        memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
    }
    mdb_txn_abort(txn);
    return rc;
}
