/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_statedb.c: a libFuzzer target for the LMDB value decoder: what
 * shoald does with each (kind, value) that statedb_load() hands it at
 * startup, then with the log entries replayed on top, then with reads.
 *
 * The input is a list of records, each a tag byte and a u16-length
 * field. A tag below 0x80 is a stored object: its low four bits are the
 * kind (1-7 are real kinds; others must be refused), the field is the
 * value, loaded as commit_load_cb() in src/manager/commit.c does (that
 * function is static; its steps are repeated here, and must stay the
 * same): wire_decode() of the kind's type, then store_load(). As in
 * statedb_load(), the first refused value ends the load. A tag of 0x80
 * or more is a log entry: decoded as a proposal and applied at the next
 * index, as replay does. Then every kind is listed through the control
 * API and every object checked (fuzz_state.h).
 *
 * An input that starts with the byte 0xfe goes through LMDB instead: a
 * field for the meta record's value (absent when the field is empty),
 * then pairs of fields, an "objects" key and its value, are written raw
 * with liblmdb into a temporary state folder; statedb_open() and
 * statedb_load() then read them back with the same callback. What loaded
 * is flushed with statedb_flush() into a second, empty folder and loaded
 * from there again.
 *
 * Properties: a refused value leaves nothing behind (no leak, an empty
 * object); each kind counts the objects loaded; every stored object
 * round-trips through the codec (a flush writes what a load reads); no
 * reply shows a secret's data or the CA key. Through LMDB: a load that
 * succeeds saw only well-formed keys and meta record and reports the
 * stored applied index and term; what a flush wrote, a load reads back
 * whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "base/base.h"
#include "fuzz.h"
#include "fuzz_state.h"
#include "shoal/wire.h"
#include "storage/storage.h"
#include "store/store.h"

/* commit_load_cb() without the log lines. Returns 0 or the error. */
static int
load_value(struct store *s, uint8_t kind, const uint8_t *value, size_t len)
{
    const struct wire_type *t = wire_kind_type((enum shoal_kind)kind);
    void *obj;
    int rc;

    if (!t) {
        return ERR_CORRUPT;
    }
    obj = calloc(1, wire_type_size(t));
    if (!obj) {
        return ERR_NOMEM;
    }
    rc = wire_decode(t, obj, value, len);
    if (rc != 0) {
        FUZZ_CHECK(fuzz_all_zero(obj, wire_type_size(t)));
    }
    if (rc == 0) {
        rc = store_load(s, (enum shoal_kind)kind, obj);
        /* On success the store took the contents and zeroed *obj. */
        FUZZ_CHECK(rc != 0 || fuzz_all_zero(obj, wire_type_size(t)));
    }
    if (rc != 0) {
        wire_free(t, obj);
    }
    free(obj);
    return rc;
}

/* A log entry replayed on the loaded state, as commit_replay_cb does. */
static void
replay_entry(struct fuzz_state *st, const uint8_t *data, size_t len)
{
    struct shoal_proposal p = {0};
    struct store_verdict v;

    if (wire_decode(&wire_type_proposal, &p, data, len) != 0) {
        FUZZ_CHECK(fuzz_all_zero(&p, sizeof p));
        return;
    }
    fuzz_state_apply(st, &p, &v);
    wire_free(&wire_type_proposal, &p);
}

/* ---- Through LMDB ----------------------------------------------------- */

#define MAP_BYTES (64u << 20)
#define META_HDR 24 /* statedb.c: version, length, index, term */

static char dirs[2][64]; /* state folders, made once, emptied per run */

static void
dir_empty(const char *state_dir)
{
    char path[128];

    snprintf(path, sizeof path, "%s/db/data.mdb", state_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/db/lock.mdb", state_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/db", state_dir);
    rmdir(path);
}

static void
dirs_remove(void)
{
    for (int i = 0; i < 2; i++) {
        dir_empty(dirs[i]);
        rmdir(dirs[i]);
    }
}

static int
dirs_make(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    if (dirs[1][0] != '\0') {
        return 0;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/shoal-fuzz-db-XXXXXX", base);
        if (!mkdtemp(dirs[i])) {
            return -1;
        }
    }
    atexit(dirs_remove);
    return 0;
}

/* What one raw write left: whether statedb may accept it all. */
struct raw {
    bool keys_ok;   /* every key 2-256 bytes, no NUL in the id */
    bool meta_ok;   /* no meta record, or a well-formed one */
    uint64_t index; /* the meta record's applied index */
    uint64_t term;  /* and term */
};

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Write the input's meta and objects raw, as another writer could. */
static int
raw_write(const char *state_dir, struct fuzz_in *in, struct raw *r)
{
    char path[128];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi objs, meta;
    const uint8_t *f, *v;
    size_t n = 0, vn = 0;
    int rc;

    *r = (struct raw){.keys_ok = true, .meta_ok = true};
    snprintf(path, sizeof path, "%s/db", state_dir);
    if (mkdir(path, 0700) != 0 || mdb_env_create(&env) != 0) {
        return -1;
    }
    rc = mdb_env_set_mapsize(env, MAP_BYTES);
    rc = rc ? rc : mdb_env_set_maxdbs(env, 2);
    rc = rc ? rc : mdb_env_open(env, path, MDB_NOSYNC, 0600);
    rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
    if (rc != 0) {
        mdb_env_close(env);
        return -1;
    }
    rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &objs);
    rc = rc ? rc : mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
    if (rc == 0 && fuzz_field(in, &f, &n) && n > 0) {
        MDB_val k = {.mv_size = 7, .mv_data = "applied"};
        MDB_val val = {.mv_size = n, .mv_data = (void *)f};

        rc = mdb_put(txn, meta, &k, &val, 0);
        r->meta_ok = n >= META_HDR && le32(f) == 1 &&
                     le32(f + 4) <= STATEDB_MAX_MEMBERSHIP &&
                     n == META_HDR + (size_t)le32(f + 4);
        if (r->meta_ok) {
            r->index = le32(f + 8) | (uint64_t)le32(f + 12) << 32;
            r->term = le32(f + 16) | (uint64_t)le32(f + 20) << 32;
        }
    }
    while (rc == 0 && fuzz_field(in, &f, &n)) {
        MDB_val k = {.mv_size = n, .mv_data = (void *)f};
        MDB_val val;

        if (!fuzz_field(in, &v, &vn)) {
            v = (const uint8_t *)"";
            vn = 0;
        }
        val = (MDB_val){.mv_size = vn, .mv_data = (void *)v};
        /* LMDB refuses empty and over-long keys itself: skip those. */
        if (n == 0 || n > (size_t)mdb_env_get_maxkeysize(env)) {
            continue;
        }
        rc = mdb_put(txn, objs, &k, &val, 0);
        if (n < 2 || n > 1 + STATEDB_MAX_ID || memchr(f + 1, 0, n - 1)) {
            r->keys_ok = false;
        }
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn); /* frees txn in any case */
    } else {
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return rc == 0 ? 0 : -1;
}

/* statedb_load_cb over a store: load_value() with its key's kind. */
static int
load_cb(uint8_t kind, const char *id, const void *value, size_t len, void *arg)
{
    (void)id;
    return load_value(arg, kind, value, len);
}

/* What visit_flush() collects: one write per stored object. */
struct batch {
    struct statedb_write w[64];
    struct wire_buf vals[64];
    size_t n;
    bool full;
    enum shoal_kind kind;
};

static int
visit_flush(const void *obj, void *arg)
{
    struct batch *b = arg;
    const struct wire_type *t = wire_kind_type(b->kind);

    if (b->n == 64) {
        b->full = true;
        return 1;
    }
    if (wire_encode(t, obj, &b->vals[b->n]) != 0) {
        b->full = true;
        return 1;
    }
    b->w[b->n] = (struct statedb_write){
        .op = STATEDB_PUT,
        .kind = (uint8_t)b->kind,
        .id = wire_object_id(b->kind, obj),
        .val = b->vals[b->n].data,
        .len = b->vals[b->n].len,
    };
    b->n++;
    return 0;
}

/* Flush every object of st into the empty dirs[1], and load it back. */
static void
flush_and_reload(struct fuzz_state *st, const struct statedb_meta *meta)
{
    struct store_query all = {.by = STORE_BY_ALL};
    struct statedb_meta back;
    struct fuzz_state again;
    struct statedb *db;
    struct batch *b = calloc(1, sizeof *b);
    size_t total = 0;

    if (!b || statedb_open(&db, dirs[1], MAP_BYTES) != 0) {
        free(b);
        return;
    }
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT && !b->full; k++) {
        b->kind = (enum shoal_kind)k;
        store_find(st->store, b->kind, &all, visit_flush, b);
    }
    if (!b->full) {
        FUZZ_CHECK(statedb_flush(db, b->w, b->n, meta) == 0);
        statedb_close(db);
        FUZZ_CHECK(statedb_open(&db, dirs[1], MAP_BYTES) == 0);
        if (fuzz_state_open(&again) == 0) {
            FUZZ_CHECK(statedb_load(db, load_cb, again.store, &back) == 0);
            FUZZ_CHECK(back.applied_index == meta->applied_index &&
                       back.applied_term == meta->applied_term &&
                       back.membership_len == meta->membership_len);
            for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
                total += store_count(again.store, (enum shoal_kind)k);
                FUZZ_CHECK(store_count(again.store, (enum shoal_kind)k) ==
                           store_count(st->store, (enum shoal_kind)k));
            }
            FUZZ_CHECK(total == b->n);
            fuzz_state_close(&again);
        }
    }
    statedb_close(db);
    for (size_t i = 0; i < 64; i++) {
        wire_buf_fini(&b->vals[i]);
    }
    free(b);
}

static void
fuzz_lmdb(struct fuzz_in *in)
{
    struct statedb_meta meta;
    struct fuzz_state st;
    struct statedb *db;
    struct raw r;
    int rc;

    if (dirs_make() != 0) {
        return;
    }
    if (raw_write(dirs[0], in, &r) == 0 && fuzz_state_open(&st) == 0) {
        if (statedb_open(&db, dirs[0], MAP_BYTES) == 0) {
            rc = statedb_load(db, load_cb, st.store, &meta);
            if (rc == 0) {
                FUZZ_CHECK(r.keys_ok && r.meta_ok);
                FUZZ_CHECK(meta.applied_index == r.index &&
                           meta.applied_term == r.term);
                flush_and_reload(&st, &meta);
            }
            statedb_close(db);
        }
        fuzz_state_close(&st);
    }
    dir_empty(dirs[0]);
    dir_empty(dirs[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t loaded[16] = {0};
    struct fuzz_state st;
    bool loading = true;
    const uint8_t *field;
    size_t len;

    log_set_level(LOG_CRIT);
    if (size > 0 && data[0] == 0xfe) {
        in.p++;
        in.n--;
        fuzz_lmdb(&in);
        return 0;
    }
    if (fuzz_state_open(&st) != 0) {
        return 0;
    }
    while (in.n > 0) {
        uint8_t tag = fuzz_u8(&in);

        if (!fuzz_field(&in, &field, &len)) {
            break;
        }
        if (tag < 0x80 && loading) {
            if (load_value(st.store, tag & 0x0f, field, len) == 0) {
                loaded[tag & 0x0f]++;
            } else {
                loading = false;
            }
        } else if (tag >= 0x80) {
            loading = false;
            replay_entry(&st, field, len);
        }
        if (!loading && tag < 0x80) {
            continue;
        }
        /* Until the first entry the counts are the loaded objects. */
        if (store_applied(st.store) == 0 && tag < 0x80) {
            for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
                FUZZ_CHECK(store_count(st.store, (enum shoal_kind)k) ==
                           loaded[k]);
            }
        }
    }
    fuzz_state_read_all(&st);
    fuzz_state_close(&st);
    return 0;
}
