/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * commit.c: the two ends of the write path, around the Raft core.
 *
 * cluster.c drives the core: a proposal becomes a log entry, the log is
 * synced once per loop turn (group commit), and the core decides when an
 * entry is committed. This file holds what happens before and after: the
 * state database is opened and loaded at startup, each committed entry
 * is applied to the store in log order and its waiting client answered,
 * and the applied state reaches LMDB in batches, after which the core is
 * told that it may compact the log below it.
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

/* One object changed since the last flush, keyed by kind and id. */
struct dirty_key {
    char key[1 + 64]; /* kind byte, then the id */
    enum shoal_kind kind;
    UT_hash_handle hh;
};

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
        /* A member's address may have changed: links.c looks again. */
        m->links_dirty |= ev->kind == SHOAL_KIND_NODE;
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

    if (pd->self_status) {
        m->self_status_pending = false;
    }
    if (pd->join) {
        join_applied(m, pd->join, v->code, v->message);
    } else if (pd->pconn) {
        /* Forwarded by a follower: the answer goes back on its link. */
        if (control_reply_written(&m->control, v, &pd->out) != 0) {
            pd->out.code = SHOAL_RESOURCE_EXHAUSTED;
            snprintf(pd->out.message, sizeof pd->out.message,
                     "applied, but out of memory for the reply");
        }
        if (pd->out.code == SHOAL_OK) {
            forward_reply_ok(pd->pconn, pd->type, pd->req_id, &pd->out);
        } else {
            forward_status(pd->pconn, pd->req_id, &pd->out, NULL);
        }
    } else if (c && !c->dead) {
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

void
commit_fail(struct manager *m, struct pending *pd, int code,
            const char *message)
{
    if (pd->self_status) {
        m->self_status_pending = false;
    }
    if (pd->join) {
        join_applied(m, pd->join, code, message);
        pd->join = NULL;
    }
    pd->out.code = code;
    snprintf(pd->out.message, sizeof pd->out.message, "%s", message);
    if (pd->pconn) {
        forward_status(pd->pconn, pd->req_id, &pd->out, NULL);
    } else if (pd->conn && !pd->conn->dead) {
        conn_status(pd->conn, pd->req_id, &pd->out);
    }
    wire_free(&wire_type_proposal, pd->proposal);
    free(pd->proposal);
    control_out_fini(&pd->out);
    free(pd);
}

/* An entry that reaches the store with nobody waiting for it: decoded
 * from its bytes. Every replica decodes the same bytes, so one that
 * cannot must stop rather than skip it and diverge. */
static void
commit_apply_bytes(struct manager *m, const struct raft_entry *e)
{
    struct shoal_proposal p = {0};
    struct store_verdict v;
    int rc = 0;

    switch (e->type) {
    case RAFT_ENTRY_NORMAL:
        rc = wire_decode(&wire_type_proposal, &p, e->data, e->len);
        break;
    case RAFT_ENTRY_CONFIG:
        rc = raft_config_decode(e->data, e->len, &m->config);
        m->links_dirty = true;
        break;
    case RAFT_ENTRY_NOOP:
        break;
    }
    if (rc != 0) {
        log_crit("commit", "undecodable committed entry: index=%" PRIu64
                 " term=%" PRIu64 " type=%d: %s", e->index, e->term,
                 (int)e->type, err_str(rc));
        abort();
    }
    /* No-op and config entries change no object, but an empty proposal
     * still moves the applied index, which versions and LMDB follow. */
    commit_apply(m, e->index, &p, &v);
    wire_free(&wire_type_proposal, &p);
}

void
commit_apply_entry(struct manager *m, const struct raft_entry *e)
{
    struct pending *pd;

    if (e->index <= store_applied(m->store)) {
        /* Restored into the core from the log's tail (cluster.c) but
         * already in the state loaded from LMDB. */
        return;
    }

    /* A write waits for the entry with its own index and term. Another
     * entry at (or past) that index means a new leader replaced it, so it
     * will never be applied and its client can be told so now. */
    while ((pd = TAILQ_FIRST(&m->proposed)) && pd->index <= e->index &&
           !(pd->index == e->index && pd->term == e->term)) {
        TAILQ_REMOVE(&m->proposed, pd, link);
        commit_fail(m, pd, SHOAL_UNAVAILABLE,
                    "leadership changed; the write was not applied");
    }
    if (pd && pd->index == e->index) {
        struct store_verdict v = {0};

        TAILQ_REMOVE(&m->proposed, pd, link);
        commit_apply(m, e->index, pd->proposal, &v);
        pending_finish(m, pd, &v);
    } else {
        commit_apply_bytes(m, e);
    }
    m->applied_term = e->term;
}

void
commit_applied(struct manager *m)
{
    watch_pump_all(m);
    if (store_applied(m->store) - m->flushed_index >= FLUSH_EVERY_ENTRIES) {
        commit_flush_cb(&m->loop, m);
    } else if (!m->flush_timer.active &&
               store_applied(m->store) > m->flushed_index) {
        loop_timer_start(&m->loop, &m->flush_timer, commit_flush_ms(m));
    }
}

/* LMDB. */

static int
commit_flush_now(struct manager *m)
{
    struct statedb_meta meta = {
        .applied_index = store_applied(m->store),
        .applied_term = m->applied_term,
    };
    struct statedb_write *ws = NULL;
    struct wire_buf *vals = NULL;
    uint8_t *membership = NULL;
    uint32_t membership_len = 0;
    struct dirty_key *d;
    struct dirty_key *tmp;
    size_t n = 0;
    int rc = 0;

    if (m->n_dirty == 0 && m->flushed_index == meta.applied_index) {
        goto compact; /* a compaction that failed is tried again */
    }
    /* The membership as of the applied index goes with it: a restart
     * gives it to the core as the config of its snapshot (paper §7). */
    if (m->config.n_members > 0) {
        membership = raft_config_encode(&m->config, &membership_len);
        if (!membership) {
            return ERR_NOMEM;
        }
        meta.membership = membership;
        meta.membership_len = membership_len;
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
    free(membership);
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
    /* What LMDB holds need not be replayed: the core may compact it. */
    return cluster_compact(m, m->flushed_index);
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
commit_open_log(struct manager *m)
{
    struct wal_diag diag;
    int rc;

    rc = wal_open(&m->wal, m->cfg.state_dir, &m->wal_opts, &diag);
    if (rc == 0 && diag.cut_bytes > 0) {
        log_warn("commit", "cut a torn record off the end of the log: "
                 "file=%s offset=%" PRIu64 " bytes=%" PRIu64 " reason=\"%s\"",
                 diag.file, diag.offset, diag.cut_bytes,
                 diag.reason ? diag.reason : "torn");
    }
    if (rc == ERR_CORRUPT) {
        log_crit("commit", "the log is damaged: file=%s offset=%" PRIu64
                 " reason=\"%s\"", diag.file, diag.offset,
                 diag.reason ? diag.reason : "unknown");
        return rc;
    }
    if (rc != 0) {
        log_err("commit", "cannot open the log: dir=%s/wal: %s",
                m->cfg.state_dir, err_str(rc));
    }
    return rc;
}

int
commit_open(struct manager *m)
{
    struct statedb_meta meta = {0};
    int rc;

    m->flush_timer = (struct loop_timer){.cb = commit_flush_cb, .arg = m};

    rc = statedb_open(&m->db, m->cfg.state_dir, COMMIT_MAP_BYTES);
    if (rc == 0) {
        rc = statedb_load(m->db, commit_load_cb, m, &meta);
    }
    if (rc == 0 && meta.membership_len > 0) {
        rc = raft_config_decode(meta.membership,
                                (uint32_t)meta.membership_len, &m->config);
        rc = rc == ERR_PROTO ? ERR_CORRUPT : rc;
    }
    if (rc != 0) {
        log_crit("commit", "cannot open the state database: dir=%s/db: %s",
                 m->cfg.state_dir, err_str(rc));
        return rc;
    }
    store_set_applied(m->store, meta.applied_index);
    m->flushed_index = meta.applied_index;
    m->applied_term = meta.applied_term;

    rc = commit_open_log(m);
    if (rc != 0) {
        return rc;
    }
    /* The core takes it from here: the log after what LMDB holds is
     * replayed through it, as committed entries. */
    return cluster_start(m);
}

void
commit_install(struct manager *m, struct snap_recv *r,
               const struct raft_snapshot_meta *meta)
{
    struct store_config scfg = {
        .check = control_check,
        .check_arg = &m->control,
    };
    struct control_env env = m->control.env;
    struct statedb_meta dm = {0};
    struct store *old = m->store;
    struct dirty_key *d;
    struct dirty_key *tmp;
    struct pending *pd;
    struct conn *c;
    int rc;

    TAILQ_FOREACH(c, &m->conns, link) {
        watch_end_all(c, SHOAL_UNAVAILABLE, "the state was replaced by a "
                      "snapshot of the leader; watch again");
    }
    while ((pd = TAILQ_FIRST(&m->proposed))) {
        TAILQ_REMOVE(&m->proposed, pd, link);
        commit_fail(m, pd, SHOAL_UNAVAILABLE,
                    "leadership changed; the write was not applied");
    }
    loop_timer_stop(&m->loop, &m->flush_timer);
    HASH_ITER(hh, m->dirty, d, tmp) {
        HASH_DEL(m->dirty, d);
        free(d);
    }
    m->n_dirty = 0;

    statedb_close(m->db);
    m->db = NULL;
    rc = snap_recv_finish(r);
    if (rc == 0) {
        rc = statedb_open(&m->db, m->cfg.state_dir, COMMIT_MAP_BYTES);
    }
    if (rc == 0) {
        rc = store_new(&m->store, &scfg);
    }
    if (rc == 0) {
        control_init(&m->control, m->store, &env);
        rc = statedb_load(m->db, commit_load_cb, m, &dm);
    }
    if (rc == 0 && dm.membership_len > 0) {
        rc = raft_config_decode(dm.membership, (uint32_t)dm.membership_len,
                                &m->config);
    } else if (rc == 0) {
        m->config = meta->config;
    }
    if (rc != 0 || dm.applied_index != meta->index) {
        log_crit("commit", "cannot install the leader's snapshot: index=%"
                 PRIu64 " state=%" PRIu64 ": %s", meta->index,
                 dm.applied_index, err_str(rc));
        abort();
    }
    store_free(old);
    store_set_applied(m->store, dm.applied_index);
    m->flushed_index = dm.applied_index;
    m->applied_term = dm.applied_term;
    m->links_dirty = true;
    log_notice("commit", "installed the leader's snapshot: index=%" PRIu64
               " term=%" PRIu64 " objects loaded from it", meta->index,
               meta->term);
}

void
commit_close(struct manager *m)
{
    struct dirty_key *d;
    struct dirty_key *tmp;

    /* Whatever was accepted is made durable and answered first. */
    cluster_quiesce(m);
    if (m->db && m->wal) {
        loop_timer_stop(&m->loop, &m->flush_timer);
        if (commit_flush_now(m) != 0) {
            log_err("commit", "final state flush failed; the log keeps "
                    "every entry and is replayed at the next start");
        }
    }
    cluster_fini(m);
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
