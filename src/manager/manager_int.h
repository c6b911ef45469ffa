/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * manager_int.h: what the files of the manager module share.
 *
 * server.c owns the local socket and its connections, commit.c the path
 * from a proposal to a durable, applied entry, watch.c the streams, and
 * manager.c startup and shutdown. One struct manager ties them together.
 */
#ifndef SHOAL_MANAGER_MANAGER_INT_H
#define SHOAL_MANAGER_MANAGER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <bsd/sys/queue.h>

#include "base/base.h"
#include "control/control.h"
#include "loop/loop.h"
#include "manager/manager.h"
#include "shoal/wire.h"
#include "storage/storage.h"
#include "store/store.h"

/* A client that sends faster than it reads stops being read above this
 * much queued output, and is read again below half of it. */
#define CONN_OUT_HIGH (8u << 20)

/* List replies are cut into frames of about this many bytes. */
#define LIST_CHUNK_BYTES (1u << 20)

struct watch;
struct watch_cache;
struct pending;

TAILQ_HEAD(watch_list, watch);
TAILQ_HEAD(pending_list, pending);

struct conn {
    struct manager *m;
    struct loop_io io;
    uint64_t serial;        /* for log lines */
    struct wire_buf in;
    struct wire_buf out;
    size_t out_sent;        /* bytes at the start of out already sent */
    bool hello_done;
    bool stalled;           /* frames wait in `in` for output room */
    bool closing;           /* no more reads; close once out is flushed */
    bool dead;              /* closed; freed at the end of the turn */
    pid_t pid;              /* peer credentials from SO_PEERCRED */
    uid_t uid;
    struct watch_list watches;
    bool in_flushq;         /* waits in manager->flushq */
    TAILQ_ENTRY(conn) link;
    TAILQ_ENTRY(conn) flink;
};

TAILQ_HEAD(conn_list, conn);

/* A write waiting for its entry to be durable and applied. */
struct pending {
    struct conn *conn;      /* NULL once the client went away */
    bool internal;          /* proposed by the manager itself */
    uint64_t req_id;
    uint16_t type;
    uint64_t index;         /* the entry's raft index */
    struct shoal_proposal *proposal; /* owned until applied */
    struct control_out out;
    TAILQ_ENTRY(pending) link;
};

struct watch {
    struct conn *conn;
    uint64_t req_id;
    struct shoal_watch_request req;
    uint64_t cursor;        /* version of the last entry looked at */
    TAILQ_ENTRY(watch) link;  /* in conn->watches */
};

/* Objects changed since the last flush to LMDB. */
struct dirty_key;

struct manager {
    struct manager_config cfg;
    struct loop loop;
    struct store *store;
    struct control control;
    struct wal *wal;
    struct statedb *db;

    char node_id[ID_LEN + 1];
    char cluster_id[ID_LEN + 1];

    /* Local socket. */
    int listen_fd;
    struct loop_io listen_io;
    int reserve_fd;         /* spare fd, given up to shed a connection on
                             * EMFILE */
    struct conn_list conns;
    struct conn_list dead_conns;
    struct conn_list flushq;       /* replies to write at the end of turn */
    struct loop_defer flush_defer;
    uint64_t conn_serial;
    size_t n_conns;
    size_t max_conns;       /* below the descriptor limit; more refused */
    struct loop_defer reap;
    struct loop_defer resume;  /* handles frames of stalled conns */

    /* Signals. */
    int signal_fd;
    struct loop_io signal_io;

    /* The single-member log: index and term of the last entry. */
    uint64_t last_index;
    uint64_t term;
    struct pending_list unsynced;  /* appended, not yet durable */
    struct loop_defer sync_defer;
    bool log_failed;               /* the last sync failed: new writes
                                    * refused until a retry succeeds */
    int log_error;                 /* what that sync failed with */
    struct loop_timer retry_timer;
    uint32_t retry_ms;             /* wait before retrying; 0: default */
    struct wal_opts wal_opts;      /* zero: the log's defaults */

    /* LMDB flush. */
    struct dirty_key *dirty;       /* uthash set */
    size_t n_dirty;
    uint64_t flushed_index;
    struct loop_timer flush_timer;
    bool flush_failed;             /* logged once until a flush works */

    /* Encoded events shared by the watches (watch.c); NULL while no
     * watch exists. */
    struct watch_cache *watch_cache;

    /* Counters for the stats request. */
    struct shoal_stats_reply stats;
};

/* server.c */

/*
 * Bind the control socket at cfg.control_socket (a stale file is
 * replaced), set its mode and group, and start accepting. Returns 0 or a
 * negative code; logs the reason itself since startup ends on failure.
 */
int server_start(struct manager *m);

/* Close the listener and every connection. */
void server_stop(struct manager *m);

/*
 * Queue a frame on c: a reply of type|WIRE_REPLY with body obj of type t
 * (t NULL: empty body), or, when code is not SHOAL_OK, a status frame.
 * A list reply over LIST_CHUNK_BYTES is cut into frames flagged MORE.
 * A connection that cannot take it (out of memory) is closed.
 */
void conn_reply(struct conn *c, uint64_t id, uint16_t type,
                const struct wire_type *t, const void *obj);

/* Queue a status frame with a message; flags as on the wire. */
void conn_status(struct conn *c, uint64_t id, const struct control_out *o);

/*
 * Queue a frame of type with body obj encoded by t (t NULL: empty body).
 * Returns 0, ERR_CLOSED when c is closed, ERR_TOOBIG (nothing queued), or
 * ERR_NOMEM (c is closed once what is queued is flushed).
 */
int conn_frame(struct conn *c, uint16_t type, uint8_t flags, uint64_t id,
               const struct wire_type *t, const void *obj);

/*
 * Queue a frame of type whose body, len bytes at body (borrowed, copied),
 * is already encoded: watch frames built from shared encodings. Returns
 * as conn_frame.
 */
int conn_frame_raw(struct conn *c, uint16_t type, uint8_t flags,
                   uint64_t id, const void *body, size_t len);

/* Write whatever is queued now, as much as the socket takes. */
void conn_flush(struct conn *c);

/* Write what is queued at the end of this turn, once for all replies. */
void conn_flush_later(struct conn *c);

/* Bytes queued on c and not yet sent. */
size_t conn_out_queued(const struct conn *c);

/* Close c now; it is freed at the end of the turn. */
void conn_close(struct conn *c, const char *why);

/* commit.c */

/*
 * Open the log and the state database under the state directory, load
 * the store from LMDB and replay the log after its applied index.
 * Returns 0 or a negative code (logged here: startup ends).
 */
int commit_open(struct manager *m);

/*
 * Append proposal p (transferred to pd) as the next entry; pd (kept)
 * is answered once the entry is durable and applied, or failed.
 * Returns 0 or a negative code (pd untouched, the caller answers).
 */
int commit_propose(struct manager *m, struct pending *pd);

/*
 * Make every appended entry durable now, then apply each and answer its
 * client (or, when the sync fails, fail each write). Runs at the end of
 * every turn that appended; startup calls it directly.
 */
void commit_sync(struct manager *m);

/* Sync what is pending and flush the state to LMDB; close both. */
void commit_close(struct manager *m);

/* failpoint.c: test builds only */

#ifdef SHOAL_TEST_BUILD
/* Durable boundaries of the commit path that storage does not see. */
enum failpoint {
    FAILPOINT_SYNC_START, /* a sync begins; earlier replies were sent */
    FAILPOINT_SYNC_DONE,  /* the log is durable, nothing applied or
                           * answered yet */
    FAILPOINT_FLUSH_DONE, /* LMDB committed, the log not yet compacted */
};

/*
 * Arm the failpoints of SHOAL_FAILPOINT (storage's hook is installed) and
 * apply SHOAL_TEST_TUNING to m's tunables, as failpoint.c describes; an
 * unset variable does nothing. Call before commit_open(). Returns 0, or
 * -EINVAL for a malformed value (logged: startup ends).
 */
int failpoint_init(struct manager *m);

/* Count a hit of fp; a rule for it may end the process here. */
void failpoint_hit(enum failpoint fp);

#define FAILPOINT(fp) failpoint_hit(fp)
#else
#define FAILPOINT(fp) ((void)0)
#endif

/* watch.c */

/* Start a watch stream for request id on c. body is the decoded
 * request (transferred). */
void watch_start(struct conn *c, uint64_t id,
                 struct shoal_watch_request *req);

/* End the watch with id on c with a cancelled status, if it exists. */
void watch_cancel(struct conn *c, uint64_t id);

/* Send what each watch may see now, within each client's buffer. */
void watch_pump_all(struct manager *m);

/* Send what the watches of c may see now. */
void watch_pump_conn(struct conn *c);

/* End every watch of c with a final status of code and message. */
void watch_end_all(struct conn *c, int code, const char *message);

/* Drop every watch of c without sending (the client is gone). */
void watch_drop_conn(struct conn *c);

#endif
