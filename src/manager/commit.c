/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * commit.c: from a proposal to a durable, applied entry, on one manager.
 *
 * This is the single-member form of the Raft path: an entry is appended
 * to the log, the log is synced once for every entry of the loop turn
 * (group commit), and only then is each entry applied to the store and
 * its client answered; nothing is acknowledged before it is on disk. The
 * Raft core (a later issue) replaces the middle — who decides that an
 * entry is committed — and keeps both ends. The applied state reaches
 * LMDB in batches; the log below what LMDB holds is then removed.
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "base/base.h"

#define FLUSH_EVERY_ENTRIES 4096
#define FLUSH_PERIOD_MS 200 /* unless cfg.flush_ms says otherwise */
#define LMDB_MAP_BYTES (8ull << 30)
#define COMMIT_RETRY_MS 1000 /* unless m->retry_ms says otherwise */

/* One object changed since the last flush, keyed by kind and id. */
struct dirty_key {
    char key[1 + 64]; /* kind byte, then the id */
    enum shoal_kind kind;
    UT_hash_handle hh;
};

static void commit_sync_cb(struct loop *l, void *arg);
static void commit_flush_cb(struct loop *l, void *arg);

static uint32_t
commit_flush_ms(const struct manager *m)
{
    return m->cfg.flush_ms > 0 ? m->cfg.flush_ms : FLUSH_PERIOD_MS;
}

static void
dirty_mark(struct manager *m, enum shoal_kind kind, const char *id)
{
    struct dirty_key *d;
    char key[sizeof d->key] = {0};

    key[0] = (char)kind;
    snprintf(key + 1, sizeof key - 1, "%s", id);
    HASH_FIND_STR(m->dirty, key, d);
    if (d) {
        return;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        /* A lost mark would let the log be compacted past a change that
         * LMDB never got: stopping keeps the log whole for the restart. */
        log_crit("commit", "out of memory marking a changed object");
        abort();
    }
    memcpy(d->key, key, sizeof key);
    d->kind = kind;
    HASH_ADD_STR(m->dirty, key, d);
    m->n_dirty++;
}

static void
dirty_mark_entry(struct manager *m, uint64_t index)
{
    const struct store_hist_entry *e;
    uint64_t oldest;

    if (store_history_next(m->store, index - 1, &e, &oldest) != 0 ||
        e->version != index) {
        return; /* the entry changed nothing */
    }
    for (size_t i = 0; i < e->n_events; i++) {
        const struct store_event *ev = &e->events[i];

        dirty_mark(m, ev->kind, wire_object_id(ev->kind, ev->obj));
    }
}

/* Apply one committed entry; the verdict goes to its client, if any. */
static int
commit_apply(struct manager *m, uint64_t index,
             const struct shoal_proposal *p, struct store_verdict *v)
{
    int rc = store_apply(m->store, index, p, v);

    if (rc != 0) {
        /* Replicas must apply every entry alike: stopping is the only
         * safe answer to an entry we cannot apply. */
        log_crit("commit", "cannot apply entry: index=%" PRIu64 ": %s",
                 index, err_str(rc));
        abort();
    }
    dirty_mark_entry(m, index);
    return 0;
}

static void
pending_finish(struct manager *m, struct pending *pd,
               const struct store_verdict *v)
{
    struct conn *c = pd->conn;

    if (c && !c->dead) {
        if (control_reply_written(&m->control, v, &pd->out) != 0) {
            pd->out.code = SHOAL_RESOURCE_EXHAUSTED;
            snprintf(pd->out.message, sizeof pd->out.message,
                     "applied, but out of memory for the reply");
        }
        if (pd->out.code == SHOAL_OK) {
            conn_reply(c, pd->req_id, pd->type, pd->out.reply_type,
                       pd->out.reply);
        } else {
            conn_status(c, pd->req_id, &pd->out);
        }
#ifdef SHOAL_BUG_ACK_BEFORE_SYNC
        conn_flush(c); /* the answer leaves before the log is synced */
#endif
    } else if (v->code != SHOAL_OK && pd->internal) {
        log_warn("commit", "internal write refused: index=%" PRIu64
                 " code=%s message=\"%s\"", pd->index,
                 shoal_status_name(v->code), v->message);
    }
    wire_free(&wire_type_proposal, pd->proposal);
    free(pd->proposal);
    control_out_fini(&pd->out);
    free(pd);
}

/*
 * Writes whose sync failed keep waiting: the log keeps their records and
 * writes them again at the next sync, so telling their clients "failed"
 * could be a lie. Only when the manager stops with them still unsynced is
 * their outcome unknown, and the client is told exactly that.
 */
static void
commit_drop_unsynced(struct manager *m)
{
    struct pending *pd;

    while ((pd = TAILQ_FIRST(&m->unsynced))) {
        TAILQ_REMOVE(&m->unsynced, pd, link);
        pd->out.code = SHOAL_UNAVAILABLE;
        snprintf(pd->out.message, sizeof pd->out.message,
                 "the manager stopped while the disk refused this write; "
                 "its outcome is unknown: read before retrying");
        if (pd->conn && !pd->conn->dead) {
            conn_status(pd->conn, pd->req_id, &pd->out);
        }
        wire_free(&wire_type_proposal, pd->proposal);
        free(pd->proposal);
        control_out_fini(&pd->out);
        free(pd);
    }
}

static void
commit_retry_cb(struct loop *l, void *arg)
{
    (void)l;
    commit_sync(arg);
}

/* Apply each waiting entry and answer its client. */
static void
commit_answer(struct manager *m)
{
    struct pending *pd;

    while ((pd = TAILQ_FIRST(&m->unsynced))) {
        struct store_verdict v = {0};

        TAILQ_REMOVE(&m->unsynced, pd, link);
        commit_apply(m, pd->index, pd->proposal, &v);
        pending_finish(m, pd, &v);
    }
}

void
commit_sync(struct manager *m)
{
    int rc;

    if (TAILQ_EMPTY(&m->unsynced)) {
        return;
    }
    FAILPOINT(FAILPOINT_SYNC_START);
#ifdef SHOAL_BUG_ACK_BEFORE_SYNC
    /* Deliberately wrong, to show that the crash-point sweep catches it
     * (tests/e2e/suite.mk builds this variant): every write is applied
     * and acknowledged before its entry is written and synced. */
    commit_answer(m);
#endif
    rc = wal_sync(m->wal);
    if (rc != 0) {
        if (!m->log_failed) {
            log_err("commit", "log write failed; refusing new writes and "
                    "retrying: %s", err_str(rc));
        }
        m->log_failed = true;
        m->log_error = rc;
        loop_timer_start(&m->loop, &m->retry_timer,
                         m->retry_ms > 0 ? m->retry_ms : COMMIT_RETRY_MS);
        return;
    }
    FAILPOINT(FAILPOINT_SYNC_DONE);
    if (m->log_failed) {
        log_notice("commit", "log writes work again: pending=%" PRIu64,
                   m->last_index - store_applied(m->store));
        m->log_failed = false;
    }

    /* Durable: now each entry may take effect and be acknowledged. */
    commit_answer(m);
    watch_pump_all(m);
    if (m->last_index - m->flushed_index >= FLUSH_EVERY_ENTRIES) {
        commit_flush_cb(&m->loop, m);
    } else if (!m->flush_timer.active) {
        loop_timer_start(&m->loop, &m->flush_timer, commit_flush_ms(m));
    }
}

static void
commit_sync_cb(struct loop *l, void *arg)
{
    (void)l;
    commit_sync(arg);
}

int
commit_propose(struct manager *m, struct pending *pd)
{
    struct wire_buf b = {0};
    uint64_t index = m->last_index + 1;
    int rc;

    if (m->log_failed) {
        /* Refused until the log can be written again; the client is told
         * why, ENOSPC or EIO. */
        return m->log_error;
    }
    rc = wire_encode(&wire_type_proposal, pd->proposal, &b);
    if (rc == 0 && b.len > WIRE_MAX_BODY) {
        rc = ERR_TOOBIG;
    }
    if (rc == 0) {
        rc = wal_append_entry(m->wal, index, m->term, b.data, b.len);
    }
    wire_buf_fini(&b);
    if (rc != 0) {
        return rc;
    }
    m->last_index = index;
    m->stats.proposals++;
    m->stats.entries_written++;
    pd->index = index;
    TAILQ_INSERT_TAIL(&m->unsynced, pd, link);
    loop_defer(&m->loop, &m->sync_defer);
    return 0;
}

/* LMDB. */

static int
commit_flush_now(struct manager *m)
{
    struct statedb_meta meta = {
        .applied_index = store_applied(m->store),
        .applied_term = m->term,
    };
    struct statedb_write *ws;
    struct wire_buf *vals;
    struct dirty_key *d;
    struct dirty_key *tmp;
    size_t n = 0;
    int rc = 0;

    if (m->n_dirty == 0 && m->flushed_index == meta.applied_index) {
        goto compact; /* a compaction that failed is tried again */
    }
    vals = calloc(m->n_dirty + 1, sizeof *vals);
    ws = calloc(m->n_dirty + 1, sizeof *ws);
    if (!vals || !ws) {
        rc = ERR_NOMEM;
        goto out_free;
    }
    HASH_ITER(hh, m->dirty, d, tmp) {
        const void *obj = store_get(m->store, d->kind, d->key + 1);

        ws[n] = (struct statedb_write){
            .op = obj ? STATEDB_PUT : STATEDB_DEL,
            .kind = (uint8_t)d->kind,
            .id = d->key + 1,
        };
        if (obj) {
            rc = wire_encode(wire_kind_type(d->kind), obj, &vals[n]);
            if (rc != 0) {
                goto out_free;
            }
            ws[n].val = vals[n].data;
            ws[n].len = vals[n].len;
        }
        n++;
    }
    rc = statedb_flush(m->db, ws, n, &meta);

out_free:
    for (size_t i = 0; vals && i < n; i++) {
        wire_buf_fini(&vals[i]);
    }
    free(vals);
    free(ws);
    if (rc != 0) {
        return rc;
    }
    HASH_ITER(hh, m->dirty, d, tmp) {
        HASH_DEL(m->dirty, d);
        free(d);
    }
    m->n_dirty = 0;
    m->flushed_index = meta.applied_index;
    m->stats.lmdb_flushes++;
    FAILPOINT(FAILPOINT_FLUSH_DONE);

compact:
    /* What LMDB holds need not be replayed: drop those segments. */
    return wal_compact(m->wal, m->flushed_index);
}

static void
commit_flush_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;
    int rc;

    (void)l;
    loop_timer_stop(&m->loop, &m->flush_timer);
    rc = commit_flush_now(m);
    if (rc != 0) {
        /* The log still holds every entry: nothing is lost, the flush is
         * tried again later. One line for the whole outage, as the disk
         * may stay full for hours. */
        if (!m->flush_failed) {
            log_err("commit", "state flush or log compaction failed; the "
                    "log keeps every entry, retrying: %s", err_str(rc));
        }
        m->flush_failed = true;
        loop_timer_start(&m->loop, &m->flush_timer, 5 * commit_flush_ms(m));
        return;
    }
    if (m->flush_failed) {
        log_notice("commit", "state flushes work again: flushed=%" PRIu64,
                   m->flushed_index);
        m->flush_failed = false;
    }
}

/* Startup. */

static int
commit_load_cb(uint8_t kind, const char *id, const void *value, size_t len,
               void *arg)
{
    struct manager *m = arg;
    const struct wire_type *t = wire_kind_type((enum shoal_kind)kind);
    void *obj;
    int rc;

    if (!t) {
        log_err("commit", "unknown object kind in the state: kind=%u id=%s",
                kind, id);
        return ERR_CORRUPT;
    }
    obj = calloc(1, wire_type_size(t));
    if (!obj) {
        return ERR_NOMEM;
    }
    rc = wire_decode(t, obj, value, len);
    if (rc == 0) {
        rc = store_load(m->store, (enum shoal_kind)kind, obj);
    }
    if (rc != 0) {
        log_err("commit", "bad object in the state: kind=%s id=%s: %s",
                wire_kind_name((enum shoal_kind)kind), id, err_str(rc));
        wire_free(t, obj);
    }
    free(obj);
    return rc == ERR_PROTO ? ERR_CORRUPT : rc;
}

static int
commit_replay_cb(uint64_t index, uint64_t term, const void *data, size_t len,
                 void *arg)
{
    struct manager *m = arg;
    struct shoal_proposal p = {0};
    struct store_verdict v;
    int rc;

    rc = wire_decode(&wire_type_proposal, &p, data, len);
    if (rc != 0) {
        log_err("commit", "undecodable log entry: index=%" PRIu64, index);
        return ERR_CORRUPT;
    }
    commit_apply(m, index, &p, &v);
    wire_free(&wire_type_proposal, &p);
    m->last_index = index;
    m->term = term;
    return 0;
}

static int
commit_open_log(struct manager *m, uint64_t applied)
{
    struct wal_diag diag;
    struct wal_stats st;
    int rc;

    rc = wal_open(&m->wal, m->cfg.state_dir, &m->wal_opts, &diag);
    if (rc == 0 && diag.cut_bytes > 0) {
        log_warn("commit", "cut a torn record off the end of the log: "
                 "file=%s offset=%" PRIu64 " bytes=%" PRIu64 " reason=\"%s\"",
                 diag.file, diag.offset, diag.cut_bytes,
                 diag.reason ? diag.reason : "torn");
    }
    if (rc == 0) {
        rc = wal_replay(m->wal, applied, commit_replay_cb, m, &diag);
    }
    if (rc == ERR_CORRUPT) {
        log_crit("commit", "the log is damaged: file=%s offset=%" PRIu64
                 " reason=\"%s\"", diag.file, diag.offset,
                 diag.reason ? diag.reason : "unknown");
        return rc;
    }
    if (rc != 0) {
        log_err("commit", "cannot open or replay the log: dir=%s/wal: %s",
                m->cfg.state_dir, err_str(rc));
        return rc;
    }
    wal_get_stats(m->wal, &st);
    if (st.last_index < applied) {
        /* A log emptied below the state: appends go on after it. */
        log_err("commit", "the log ends before the state: log=%" PRIu64
                " state=%" PRIu64, st.last_index, applied);
        return ERR_CORRUPT;
    }
    return 0;
}

int
commit_open(struct manager *m)
{
    struct statedb_meta meta = {0};
    int rc;

    m->sync_defer = (struct loop_defer){.cb = commit_sync_cb, .arg = m};
    m->flush_timer = (struct loop_timer){.cb = commit_flush_cb, .arg = m};
    m->retry_timer = (struct loop_timer){.cb = commit_retry_cb, .arg = m};
    m->term = 1;

    rc = statedb_open(&m->db, m->cfg.state_dir, LMDB_MAP_BYTES);
    if (rc == 0) {
        rc = statedb_load(m->db, commit_load_cb, m, &meta);
    }
    if (rc != 0) {
        log_crit("commit", "cannot open the state database: dir=%s/db: %s",
                 m->cfg.state_dir, err_str(rc));
        return rc;
    }
    store_set_applied(m->store, meta.applied_index);
    m->flushed_index = meta.applied_index;
    m->last_index = meta.applied_index;
    if (meta.applied_term > 0) {
        m->term = meta.applied_term;
    }

    rc = commit_open_log(m, meta.applied_index);
    if (rc != 0) {
        return rc;
    }
    if (m->last_index > meta.applied_index) {
        log_notice("commit", "replayed the log: from=%" PRIu64 " to=%" PRIu64,
                   meta.applied_index + 1, m->last_index);
    }
    return 0;
}

void
commit_close(struct manager *m)
{
    struct dirty_key *d;
    struct dirty_key *tmp;

    if (m->wal) {
        commit_sync(m);
        loop_defer_cancel(&m->loop, &m->sync_defer);
        loop_timer_stop(&m->loop, &m->retry_timer);
        commit_drop_unsynced(m);
    }
    if (m->db && m->wal) {
        loop_timer_stop(&m->loop, &m->flush_timer);
        if (commit_flush_now(m) != 0) {
            log_err("commit", "final state flush failed; the log keeps "
                    "every entry and is replayed at the next start");
        }
    }
    HASH_ITER(hh, m->dirty, d, tmp) {
        HASH_DEL(m->dirty, d);
        free(d);
    }
    m->n_dirty = 0;
    wal_close(m->wal);
    m->wal = NULL;
    statedb_close(m->db);
    m->db = NULL;
}
