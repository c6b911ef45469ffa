/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * cluster.c: shoald's driver of the Raft core (src/raft).
 *
 * The core is pure; this file does its I/O, as the loop at the top of
 * raft.h describes. A timer ticks it; a write proposes through it; at the
 * end of every turn that gave it work, each ready batch is carried out:
 * the hard state and the entries are appended to the log, the log is
 * synced once for all of them (group commit), the core is told, and only
 * then does it hand out committed entries, which commit.c applies and
 * answers. Nothing is acknowledged before it is on disk.
 *
 * The log (src/storage's WAL) stores an entry's payload as one byte of
 * enum raft_entry_type followed by the entry's data, so that no-op and
 * config entries come back as what they were.
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

/* Real-time defaults (README, "shoald"): a tick of 50 ms, a heartbeat
 * every tick, an election timeout drawn from 10 to 20 ticks (0.5-1 s).
 * SHOAL_TEST_TUNING may change them in test builds. */
#define TICK_MS 50
#define HEARTBEAT_TICKS 1
#define ELECTION_TICKS 10
#define ELECTION_TICKS_MAX 20

/* Replication flow control and the log kept behind an LMDB flush for
 * followers that are behind (thesis §10.2). */
#define MAX_MSG_ENTRIES 256
#define MAX_MSG_BYTES (1u << 20)
#define MAX_INFLIGHT_MSGS 16
#define MAX_INFLIGHT_BYTES (8u << 20)
#define MAX_UNCOMMITTED_BYTES (64u << 20)
#define LOG_TAIL_ENTRIES 65536
#define MAX_CATCHUP_ROUNDS 10

#define PROMOTE_RETRY_MS 1000 /* after a catch-up that took too long */
#define RETRY_MS 1000 /* a failed log sync is retried after this, unless
                       * m->retry_ms says otherwise */

/* The raft id survives restarts in a small file of the state directory,
 * beside the node id. */
#define RAFT_ID_FILE "raft-id"

static void cluster_drive_cb(struct loop *l, void *arg);
static void cluster_self_status(struct manager *m);

/* Something the core did, once per event, for the operator. */
static void
cluster_events(struct manager *m, const struct raft_ready *rd)
{
    for (unsigned k = 0; k < rd->n_events; k++) {
        const struct raft_event *ev = &rd->events[k];

        switch (ev->type) {
        case RAFT_EV_ROLE:
            /* The steps of an election are details; where it ends is
             * what the operator wants to see. */
            if (ev->role == RAFT_PRE_CANDIDATE ||
                ev->role == RAFT_CANDIDATE) {
                log_info("raft", "campaigning: role=%s term=%" PRIu64,
                         raft_role_name(ev->role), ev->term);
                break;
            }
            log_notice("raft", "role changed: role=%s term=%" PRIu64
                       " leader=%016" PRIx64, raft_role_name(ev->role),
                       ev->term, raft_leader(&m->raft));
            break;
        case RAFT_EV_STEP_DOWN:
            log_warn("raft", "stepped down: no quorum heard from within an "
                     "election timeout: term=%" PRIu64, ev->term);
            break;
        case RAFT_EV_TRANSFER_DONE:
            log_notice("raft", "leadership handed over: to=%016" PRIx64,
                       ev->id);
            break;
        case RAFT_EV_TRANSFER_ABORT:
            log_warn("raft", "leadership transfer gave up: to=%016" PRIx64,
                     ev->id);
            break;
        case RAFT_EV_PROMOTING:
            log_notice("raft", "member caught up, proposing it as a voter: "
                       "id=%016" PRIx64, ev->id);
            break;
        case RAFT_EV_CHANGE_FAILED:
            /* A joiner that started slowly: try again, it is a member
             * (a non-voter) and the leader keeps replicating to it. */
            log_warn("raft", "member did not catch up in time; retrying "
                     "its promotion: id=%016" PRIx64, ev->id);
            m->promote_id = ev->id;
            loop_timer_start(&m->loop, &m->promote_timer, PROMOTE_RETRY_MS);
            break;
        case RAFT_EV_BAD_MSG:
            log_warn("raft", "dropped a malformed message: from=%016" PRIx64
                     ": %s", ev->id, raft_err_str(-(int)ev->index));
            break;
        }
    }
}

/* A failure to write the log in memory leaves the core ahead of the
 * disk, which no retry can repair: the restart recovers from the disk. */
static void
cluster_log_fatal(const char *what, int rc)
{
    log_crit("raft", "cannot %s; stopping so that a restart recovers from "
             "the disk: %s", what, err_str(rc));
    abort();
}

/* Append one ready's hard state and entries to the log, unsynced. */
static void
cluster_write(struct manager *m, const struct raft_ready *rd)
{
    int rc;

    if (rd->has_hard_state) {
        rc = wal_append_hardstate(m->wal, rd->hs.term, rd->hs.vote);
        if (rc != 0) {
            cluster_log_fatal("append the hard state to the log", rc);
        }
    }
    if (rd->has_snapshot) {
        /* The state first, then the log made empty after it (paper §7,
         * Figure 13 step 7): a crash between the two finds the new state
         * and an older log, which wal_reset() settles at the restart
         * (cluster_start). The hard state buffered above goes with it. */
        struct snap_recv *r = snapshot_take(m, &rd->snapshot);

        if (!r) {
            cluster_log_fatal("install a snapshot that is not staged",
                              ERR_BADSTATE);
        }
        commit_install(m, r, &rd->snapshot);
        rc = wal_reset(m->wal, rd->snapshot.index, rd->snapshot.term);
        if (rc != 0) {
            cluster_log_fatal("reset the log after a snapshot", rc);
        }
    }
    if (rd->n_entries > 0) {
        struct wal_stats st;

        /* Entries from a new leader replace ours from their first index
         * on (paper §5.3): the cut is durable before they are written. */
        wal_get_stats(m->wal, &st);
        if (rd->entries[0].index <= st.last_index) {
            rc = wal_truncate_suffix(m->wal, rd->entries[0].index - 1);
            if (rc != 0) {
                cluster_log_fatal("cut the log back", rc);
            }
        }
    }
    for (unsigned k = 0; k < rd->n_entries; k++) {
        const struct raft_entry *e = &rd->entries[k];
        uint8_t type = (uint8_t)e->type;

        m->entry_buf.len = 0;
        rc = wire_buf_append(&m->entry_buf, &type, 1);
        if (rc == 0 && e->len > 0) {
            rc = wire_buf_append(&m->entry_buf, e->data, e->len);
        }
        if (rc == 0) {
            rc = wal_append_entry(m->wal, e->index, e->term,
                                  m->entry_buf.data, m->entry_buf.len);
        }
        if (rc != 0) {
            cluster_log_fatal("append an entry to the log", rc);
        }
    }
    m->stats.entries_written += rd->n_entries;
    m->write_tag = rd->tag;
}

/*
 * Messages for other managers (links.c). One that answers for durable
 * state (a vote, an append) waits for the write of its persist tag, as
 * raft.h says; those carry no entries, so a copy of the struct is the
 * whole message. A crash drops the held ones, which Raft tolerates.
 */
static void
cluster_msgs(struct manager *m, const struct raft_ready *rd)
{
    for (unsigned k = 0; k < rd->n_msgs; k++) {
        const struct raft_msg *msg = &rd->msgs[k];

        if (msg->persist_tag == 0 || msg->persist_tag <= m->synced_tag) {
            links_send(m, msg);
            continue;
        }
        if (m->n_held == m->cap_held) {
            size_t cap = m->cap_held ? 2 * m->cap_held : 16;
            struct raft_msg *grown = realloc(m->held, cap * sizeof *grown);

            if (!grown) {
                continue; /* lost, as on a crash: Raft retries */
            }
            m->held = grown;
            m->cap_held = cap;
        }
        m->held[m->n_held] = *msg;
        m->held[m->n_held].entries = NULL;
        m->held[m->n_held].n_entries = 0;
        m->n_held++;
    }
}

/* Send the held messages whose write is now durable. */
static void
cluster_release(struct manager *m)
{
    size_t kept = 0;

    for (size_t k = 0; k < m->n_held; k++) {
        if (m->held[k].persist_tag <= m->synced_tag) {
            links_send(m, &m->held[k]);
        } else {
            m->held[kept++] = m->held[k];
        }
    }
    m->n_held = kept;
}

/* Carry out every ready batch the core has, without syncing. Returns
 * whether entries were applied. */
static bool
cluster_ready_all(struct manager *m)
{
    struct raft_ready rd;
    bool applied = false;

    while (raft_has_ready(&m->raft)) {
        raft_ready(&m->raft, &rd);
        cluster_events(m, &rd);
        if (rd.tag != 0) {
            cluster_write(m, &rd);
        }
        cluster_msgs(m, &rd);
        for (unsigned k = 0; k < rd.n_committed; k++) {
            commit_apply_entry(m, &rd.committed[k]);
            applied = true;
        }
        for (unsigned k = 0; k < rd.n_reads; k++) {
            reads_ready(m, &rd.reads[k]);
        }
        raft_ready_done(&m->raft);
    }
    return applied;
}

static void
cluster_persisted(struct manager *m, uint64_t tag)
{
    int rc = raft_persisted(&m->raft, tag);

    /* The core waits for every tag handed out, in order; a refusal here
     * would be a bug of this driver, not of the disk. */
    ASSERT(rc == 0);
    m->synced_tag = tag;
    cluster_release(m);
}

/* Make the log durable up to the newest ready written. Returns 0 or the
 * sync's error (the retry timer is then armed). */
static int
cluster_sync(struct manager *m)
{
    uint64_t tag = m->write_tag;
    int rc;

    FAILPOINT(FAILPOINT_SYNC_START);
#ifdef SHOAL_BUG_ACK_BEFORE_SYNC
    /* Deliberately wrong, to show that the crash-point sweep catches it
     * (tests/e2e/suite.mk builds this variant): the core is told the
     * write is durable before it is written, so every write is applied
     * and acknowledged before its entry reaches the disk. */
    cluster_persisted(m, tag);
    if (cluster_ready_all(m)) {
        commit_applied(m);
    }
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
                         m->retry_ms > 0 ? m->retry_ms : RETRY_MS);
        return rc;
    }
    FAILPOINT(FAILPOINT_SYNC_DONE);
    if (m->log_failed) {
        log_notice("commit", "log writes work again: pending=%" PRIu64,
                   raft_last_index(&m->raft) - store_applied(m->store));
        m->log_failed = false;
    }
    if (m->synced_tag != tag) {
        cluster_persisted(m, tag);
    }
    return 0;
}

static void
cluster_drive_sync(struct manager *m, bool retry)
{
    bool applied = false;

    for (;;) {
        applied |= cluster_ready_all(m);
        if (m->write_tag == m->synced_tag) {
            break;
        }
        /* While the disk refuses writes only the retry timer syncs: one
         * attempt per period, not one per turn. */
        if ((m->log_failed && !retry) || cluster_sync(m) != 0) {
            break;
        }
    }
    if (applied) {
        commit_applied(m);
    }
    if (m->links_dirty) {
        links_sync(m);
    }
    if (!TAILQ_EMPTY(&m->reads)) {
        reads_pump(m);
    }
    snapshot_settle(m);
    join_pump(m);
    cluster_self_status(m);
    if (m->await_voter && cluster_is_voter(m)) {
        /* A joined manager's startup ends here (manager.c). */
        m->await_voter = false;
        loop_stop(&m->loop);
    }
}

void
cluster_drive(struct manager *m)
{
    cluster_drive_sync(m, false);
}

static void
cluster_drive_cb(struct loop *l, void *arg)
{
    (void)l;
    cluster_drive(arg);
}

static void
cluster_retry_cb(struct loop *l, void *arg)
{
    (void)l;
    cluster_drive_sync(arg, true);
}

static void
cluster_promote_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;
    int rc;

    (void)l;
    if (m->promote_id == 0 || !cluster_is_leader(m)) {
        return;
    }
    rc = raft_add_voter(&m->raft, m->promote_id);
    if (rc == RAFT_ERR_CHANGE_PENDING) {
        loop_timer_start(&m->loop, &m->promote_timer, PROMOTE_RETRY_MS);
        return;
    }
    if (rc != 0 && rc != RAFT_ERR_MEMBER) {
        log_warn("raft", "cannot promote a member: id=%016" PRIx64 ": %s",
                 m->promote_id, raft_err_str(rc));
    }
    m->promote_id = 0;
    loop_defer(&m->loop, &m->sync_defer);
}

/*
 * The leader keeps its own node object's manager status (raft id, peer
 * address) in the store, for the other managers to dial it; a follower's
 * was written when it joined. Proposed again when it differs, one at a
 * time.
 */
static void
cluster_self_status(struct manager *m)
{
    const struct shoal_node *n;
    struct pending *pd;

    if (!cluster_is_leader(m) || m->self_status_pending ||
        m->advertise[0] == '\0' ||
        !(n = store_get(m->store, SHOAL_KIND_NODE, m->node_id))) {
        return;
    }
    if (n->manager_status && n->manager_status->raft_id == m->raft_id &&
        n->manager_status->addr &&
        strcmp(n->manager_status->addr, m->advertise) == 0) {
        return;
    }
    pd = calloc(1, sizeof *pd);
    if (!pd) {
        return;
    }
    pd->internal = true;
    if (control_manager_node(&m->control, m->node_id, m->cfg.hostname,
                             m->raft_id, m->advertise, &pd->proposal) != 0 ||
        cluster_propose(m, pd) != 0) {
        if (pd->proposal) {
            wire_free(&wire_type_proposal, pd->proposal);
            free(pd->proposal);
        }
        free(pd);
        return;
    }
    pd->self_status = true;
    m->self_status_pending = true;
}

static void
cluster_tick_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;

    raft_tick(&m->raft);
    forward_pump(m);
    reads_pump(m);
    snapshot_tick(m);
    loop_defer(l, &m->sync_defer);
    loop_timer_start(l, &m->tick_timer, m->tick_ms);
}

/* Proposals. */

int
cluster_propose(struct manager *m, struct pending *pd)
{
    struct wire_buf b = {0};
    struct pending *old;
    raft_index index;
    raft_term term;
    int rc;

    if (m->log_failed) {
        /* Refused until the log can be written again; the client is told
         * why, ENOSPC or EIO. */
        return m->log_error;
    }
    rc = wire_encode(&wire_type_proposal, pd->proposal, &b);
    if (rc == 0 && (b.len > WIRE_MAX_BODY || b.len + 1 > WAL_MAX_PAYLOAD)) {
        rc = ERR_TOOBIG;
    }
    if (rc == 0) {
        rc = raft_propose(&m->raft, b.data, b.len, &index, &term);
    }
    wire_buf_fini(&b);
    if (rc != 0) {
        return rc;
    }
    /* A leader appends after its own log's end: writes still waiting at
     * this index or above had entries that a later leader cut off (paper
     * §5.3), and will never be applied. Failing them here keeps the list
     * in index order. */
    while ((old = TAILQ_LAST(&m->proposed, pending_list)) &&
           old->index >= index) {
        TAILQ_REMOVE(&m->proposed, old, link);
        commit_fail(m, old, SHOAL_UNAVAILABLE,
                    "leadership changed; the write was not applied");
    }
    m->stats.proposals++;
    pd->index = index;
    pd->term = term;
    TAILQ_INSERT_TAIL(&m->proposed, pd, link);
    loop_defer(&m->loop, &m->sync_defer);
    return 0;
}

void
cluster_refusal(const struct manager *m, int rc, struct control_out *o)
{
    o->code = SHOAL_UNAVAILABLE;
    switch (rc) {
    case RAFT_ERR_NOT_LEADER:
        snprintf(o->message, sizeof o->message,
                 "this manager is not the leader; retry later");
        break;
    case RAFT_ERR_TRANSFER:
        snprintf(o->message, sizeof o->message,
                 "leadership is being transferred; retry shortly");
        break;
    case RAFT_ERR_BUSY:
        snprintf(o->message, sizeof o->message,
                 "too many writes waiting to commit; retry shortly");
        break;
    case ERR_TOOBIG:
        o->code = SHOAL_INVALID_ARGUMENT;
        snprintf(o->message, sizeof o->message,
                 "the write is too large to be logged");
        break;
    default:
        o->code = m->log_failed ? SHOAL_UNAVAILABLE : SHOAL_INTERNAL;
        snprintf(o->message, sizeof o->message,
                 "the write could not be logged: %s", raft_err_str(rc));
        break;
    }
}

bool
cluster_is_leader(const struct manager *m)
{
    return m->raft_live && raft_role(&m->raft) == RAFT_LEADER;
}

bool
cluster_is_voter(const struct manager *m)
{
    const struct raft_member *me;

    if (!m->raft_live) {
        return false;
    }
    me = raft_config_find(raft_config(&m->raft), m->raft_id);
    return me && me->voter;
}

/* Compaction. */

int
cluster_compact(struct manager *m, uint64_t index)
{
    raft_index upto = index;
    int rc;

    if (!m->raft_live) {
        return wal_compact(m->wal, index);
    }
    /* The core keeps LOG_TAIL_ENTRIES behind index in memory for
     * followers that are behind (paper §7); RAFT_ERR_STATE only says that
     * nothing new is flushed. */
    rc = raft_snapshot_taken(&m->raft, index, NULL);
    if (rc != 0 && rc != RAFT_ERR_STATE) {
        return rc;
    }
    /* A sole member has no follower to keep a tail for; with others, the
     * disk keeps what the core keeps. */
    if (raft_config(&m->raft)->n_members > 1) {
        upto = raft_first_index(&m->raft) - 1;
    }
    return wal_compact(m->wal, upto);
}

/* Startup. */

/* Read this manager's raft id, or draw and store a new one: random and
 * 64 bits wide, so that an id is never reused, even by a manager that
 * starts again from an empty directory. */
int
cluster_raft_id(struct manager *m)
{
    char path[4096];
    char buf[32] = {0};
    uint64_t id = 0;
    ssize_t n;
    int fd;
    int rc;

    snprintf(path, sizeof path, "%s/%s", m->cfg.state_dir, RAFT_ID_FILE);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 16 || sscanf(buf, "%16" SCNx64, &id) != 1 || id == 0) {
            log_err("raft", "raft id file is damaged: path=%s", path);
            return ERR_CORRUPT;
        }
        m->raft_id = id;
        return 0;
    }
    if (errno != ENOENT) {
        rc = -errno;
        log_err("raft", "cannot read the raft id: path=%s: %s", path,
                err_str(rc));
        return rc;
    }
    while (id == 0) {
        rc = rand_bytes(&id, sizeof id);
        if (rc != 0) {
            return rc;
        }
    }
    snprintf(buf, sizeof buf, "%016" PRIx64 "\n", id);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        log_err("raft", "cannot store the raft id: path=%s: %s", path,
                err_str(rc));
        return rc;
    }
    n = write(fd, buf, 17);
    rc = n == 17 && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    if (rc == 0) {
        m->raft_id = id;
    }
    return rc;
}

/* The entries of the log after what LMDB holds, for raft_restore(). */
struct cluster_loaded {
    struct raft_entry *ents;
    size_t n;
    size_t cap;
};

static int
cluster_load_cb(uint64_t index, uint64_t term, const void *data, size_t len,
                void *arg)
{
    struct cluster_loaded *ld = arg;
    const uint8_t *p = data;
    struct raft_entry *e;

    if (len < 1 || p[0] > RAFT_ENTRY_CONFIG) {
        log_err("raft", "log entry of an unknown type: index=%" PRIu64,
                index);
        return ERR_CORRUPT;
    }
    if (ld->n == ld->cap) {
        size_t cap = ld->cap ? 2 * ld->cap : 64;
        struct raft_entry *grown = realloc(ld->ents, cap * sizeof *grown);

        if (!grown) {
            return ERR_NOMEM;
        }
        ld->ents = grown;
        ld->cap = cap;
    }
    e = &ld->ents[ld->n];
    *e = (struct raft_entry){
        .term = term,
        .index = index,
        .type = (enum raft_entry_type)p[0],
        .len = (uint32_t)(len - 1),
    };
    if (e->len > 0) {
        e->data = malloc(e->len);
        if (!e->data) {
            return ERR_NOMEM;
        }
        memcpy(e->data, p + 1, e->len);
    }
    ld->n++;
    return 0;
}

static void
cluster_loaded_free(struct cluster_loaded *ld)
{
    for (size_t k = 0; k < ld->n; k++) {
        free(ld->ents[k].data);
    }
    free(ld->ents);
}

static void
cluster_options(struct manager *m)
{
    struct raft_options *o = &m->raft_opts;

    /* Zero fields take the defaults; test tuning set the others. */
    if (m->tick_ms == 0) {
        m->tick_ms = TICK_MS;
    }
    if (o->election_ticks == 0) {
        o->election_ticks = ELECTION_TICKS;
    }
    if (o->election_ticks_max < o->election_ticks) {
        o->election_ticks_max = 2 * o->election_ticks;
    }
    o->id = m->raft_id;
    o->heartbeat_ticks = HEARTBEAT_TICKS;
    o->pre_vote = true;
    o->check_quorum = true;
    o->max_msg_entries = MAX_MSG_ENTRIES;
    o->max_msg_bytes = MAX_MSG_BYTES;
    o->max_inflight_msgs = MAX_INFLIGHT_MSGS;
    o->max_inflight_bytes = MAX_INFLIGHT_BYTES;
    o->max_uncommitted_bytes = MAX_UNCOMMITTED_BYTES;
    if (o->snapshot_tail == 0) {
        o->snapshot_tail = LOG_TAIL_ENTRIES;
    }
    o->max_catchup_rounds = MAX_CATCHUP_ROUNDS;
    if (rand_bytes(&o->seed, sizeof o->seed) != 0) {
        o->seed = time_mono_ms() ^ (uint64_t)getpid();
    }
}

/* Give the core what the disk holds, or bootstrap a one-voter cluster on
 * a new state directory. */
static int
cluster_restore(struct manager *m)
{
    struct cluster_loaded ld = {0};
    struct raft_hard_state hs = {0};
    struct raft_snapshot_meta snap = {0};
    uint64_t applied = store_applied(m->store);
    uint64_t from = applied;
    uint64_t from_term = m->applied_term;
    struct wal_diag diag;
    struct wal_stats st;
    int rc;

    /* With other members, the tail the log keeps below the applied index
     * goes back into the core as well, so that a follower behind this
     * manager's state can still be caught up from the log after a
     * restart (there is no snapshot transfer yet). The store skips the
     * entries it holds when the core hands them out again (commit.c). */
    /* A snapshot installed just before a crash: the state is ahead of
     * the log, whose reset had not happened yet (storage.h, wal_reset). */
    if (applied > 0 && (wal_term(m->wal, applied, &from_term) != 0 ||
                        from_term != m->applied_term)) {
        log_notice("commit", "the state is a snapshot the log does not "
                   "reach: resetting the log after it: index=%" PRIu64
                   " term=%" PRIu64, applied, m->applied_term);
        rc = wal_reset(m->wal, applied, m->applied_term);
        if (rc != 0) {
            log_err("commit", "cannot reset the log: %s", err_str(rc));
            return rc;
        }
    }
    from_term = m->applied_term;
    wal_get_stats(m->wal, &st);
    if (m->config.n_members > 1 && st.first_index > 0 &&
        st.first_index - 1 < applied &&
        (st.first_index == 1 ||
         wal_term(m->wal, st.first_index - 1, &from_term) == 0)) {
        from = st.first_index - 1;
        if (from == 0) {
            from_term = 0;
        }
    }
    wal_hardstate(m->wal, &hs.term, &hs.vote);
    rc = wal_replay(m->wal, from, cluster_load_cb, &ld, &diag);
    if (rc == ERR_CORRUPT) {
        log_crit("commit", "the log is damaged: file=%s offset=%" PRIu64
                 " reason=\"%s\"", diag.file, diag.offset,
                 diag.reason ? diag.reason : "unknown");
        goto out;
    }
    if (rc != 0) {
        log_err("commit", "cannot replay the log: dir=%s/wal: %s",
                m->cfg.state_dir, err_str(rc));
        goto out;
    }

    /* Only the first manager of a cluster bootstraps; one that joined
     * starts empty and the leader fills its log. */
    if (applied == 0 && ld.n == 0 && hs.term == 0 && !m->joined) {
        struct raft_config cfg = {
            .n_members = 1,
            .members = {{.id = m->raft_id, .voter = true}},
        };

        rc = raft_bootstrap(&m->raft, &cfg);
        if (rc != 0) {
            log_err("raft", "cannot bootstrap: %s", raft_err_str(rc));
        }
        goto out;
    }

    if (from > 0) {
        snap.index = from;
        snap.term = from_term;
        snap.config = m->config;
        if (snap.config.n_members == 0) {
            /* A state written by a manager without Raft: it was the sole
             * member of its cluster, which is what it stays. */
            snap.config.n_members = 1;
            snap.config.members[0].id = m->raft_id;
            snap.config.members[0].voter = true;
            m->config = snap.config;
            log_notice("raft", "state has no membership; starting as the "
                       "only member: id=%016" PRIx64, m->raft_id);
        }
    }
    /* Such a state has entries but no hard state: no vote was ever cast
     * in their terms, and a term may always grow. */
    if (ld.n > 0 && hs.term < ld.ents[ld.n - 1].term) {
        hs.term = ld.ents[ld.n - 1].term;
    }
    if (snap.index > 0 && hs.term < snap.term) {
        hs.term = snap.term;
    }
    rc = raft_restore(&m->raft, &hs, snap.index > 0 ? &snap : NULL, ld.ents,
                      ld.n);
    if (rc == 0 && ld.n > 0) {
        log_notice("commit", "replaying the log through the core: from=%"
                   PRIu64 " to=%" PRIu64, ld.ents[0].index,
                   ld.ents[ld.n - 1].index);
    }
    if (rc != 0) {
        log_crit("raft", "cannot restore the raft state from the disk: "
                 "applied=%" PRIu64 " entries=%zu: %s", applied, ld.n,
                 raft_err_str(rc));
        rc = rc == ERR_PROTO ? ERR_CORRUPT : rc;
    }

out:
    cluster_loaded_free(&ld);
    return rc;
}

/* Whether this manager is the only voter of its config. */
static bool
cluster_sole_voter(const struct manager *m)
{
    const struct raft_config *c = raft_config(&m->raft);
    const struct raft_member *me = raft_config_find(c, m->raft_id);

    return raft_config_voters(c) == 1 && me && me->voter;
}

int
cluster_start(struct manager *m)
{
    unsigned limit;
    int rc;

    m->sync_defer = (struct loop_defer){.cb = cluster_drive_cb, .arg = m};
    m->retry_timer = (struct loop_timer){.cb = cluster_retry_cb, .arg = m};
    m->tick_timer = (struct loop_timer){.cb = cluster_tick_cb, .arg = m};

    m->promote_timer = (struct loop_timer){.cb = cluster_promote_cb,
                                           .arg = m};
    if (m->raft_id == 0) {
        rc = cluster_raft_id(m);
        if (rc != 0) {
            return rc;
        }
    }
    cluster_options(m);
    rc = raft_init(&m->raft, &m->raft_opts);
    if (rc != 0) {
        log_err("raft", "cannot start the raft core: %s", raft_err_str(rc));
        return rc;
    }
    m->raft_live = true;
    rc = cluster_restore(m);
    if (rc != 0) {
        return rc;
    }

    /*
     * A sole voter need not wait out a real election timeout: no other
     * server can win its term, so time is advanced until it leads (paper
     * §5.2), and its no-op entry (paper §8) commits everything its log
     * holds before the socket opens. Each tick's writes are synced as
     * usual, so the vote is durable before it leads.
     */
    limit = 4 * m->raft_opts.election_ticks_max;
    cluster_drive(m);
    while (cluster_sole_voter(m) && !cluster_is_leader(m) && limit-- > 0 &&
           !m->log_failed) {
        raft_tick(&m->raft);
        cluster_drive(m);
    }
    if (cluster_sole_voter(m) &&
        (!cluster_is_leader(m) ||
         store_applied(m->store) < raft_last_index(&m->raft))) {
        log_err("raft", "could not commit the log as its only member: "
                "applied=%" PRIu64 " last=%" PRIu64 "%s",
                store_applied(m->store), raft_last_index(&m->raft),
                m->log_failed ? ": the log cannot be written" : "");
        return m->log_failed ? m->log_error : ERR_BADSTATE;
    }
    log_notice("raft", "started: id=%016" PRIx64 " term=%" PRIu64
               " members=%u leader=%016" PRIx64, m->raft_id,
               raft_term_current(&m->raft),
               raft_config(&m->raft)->n_members, raft_leader(&m->raft));
    loop_timer_start(&m->loop, &m->tick_timer, m->tick_ms);
    return 0;
}

/* Shutdown. */

void
cluster_quiesce(struct manager *m)
{
    struct pending *pd;

    if (!m->raft_live || !m->wal) {
        return;
    }
    loop_timer_stop(&m->loop, &m->tick_timer);
    loop_timer_stop(&m->loop, &m->promote_timer);
    cluster_drive_sync(m, true);
    loop_defer_cancel(&m->loop, &m->sync_defer);
    loop_timer_stop(&m->loop, &m->retry_timer);
    /* What is left was not committed (or its log write kept failing):
     * it may still be applied after the restart, so its outcome is
     * unknown, and the client is told exactly that. */
    while ((pd = TAILQ_FIRST(&m->proposed))) {
        TAILQ_REMOVE(&m->proposed, pd, link);
        commit_fail(m, pd, SHOAL_UNAVAILABLE,
                    m->log_failed
                        ? "the manager stopped while the disk refused this "
                          "write; its outcome is unknown: read before "
                          "retrying"
                        : "the manager stopped before this write was "
                          "committed; its outcome is unknown: read before "
                          "retrying");
    }
}

void
cluster_fini(struct manager *m)
{
    if (m->raft_live) {
        loop_timer_stop(&m->loop, &m->tick_timer);
        loop_timer_stop(&m->loop, &m->retry_timer);
        loop_defer_cancel(&m->loop, &m->sync_defer);
        loop_timer_stop(&m->loop, &m->promote_timer);
        raft_fini(&m->raft);
        m->raft_live = false;
    }
    free(m->held);
    m->held = NULL;
    m->n_held = m->cap_held = 0;
    wire_buf_fini(&m->entry_buf);
}
