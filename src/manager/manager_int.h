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
#include "ca/ca.h"
#include "control/control.h"
#include "loop/loop.h"
#include "manager/manager.h"
#include "peer/peer.h"
#include "raft/raft.h"
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
struct link;
struct link_in;
struct join_client;
struct join_wait;
struct fwd;
struct read_wait;
struct snap_out;
struct snap_in;

TAILQ_HEAD(watch_list, watch);
TAILQ_HEAD(pending_list, pending);
TAILQ_HEAD(link_in_list, link_in);
TAILQ_HEAD(join_wait_list, join_wait);
TAILQ_HEAD(fwd_list, fwd);
TAILQ_HEAD(read_list, read_wait);
TAILQ_HEAD(snap_out_list, snap_out);

/* The map size of the state database (and of a snapshot's staging). */
#define COMMIT_MAP_BYTES (8ull << 30)

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

/* A write waiting for its entry to be committed and applied. */
struct pending {
    struct conn *conn;      /* NULL once the client went away */
    bool internal;          /* proposed by the manager itself */
    uint64_t req_id;
    uint16_t type;
    uint64_t index;         /* the entry's raft index */
    uint64_t term;          /* and its term: both identify the entry */
    struct shoal_proposal *proposal; /* owned until applied */
    struct join_wait *join;  /* a join's node object: join.c answers */
    bool self_status;        /* our own manager status (cluster.c) */
    struct peer_conn *pconn; /* forwarded by that manager (forward.c),
                              * NULL for a local client or once gone */
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

    /* Peer links (links.c) and joins (join.c). */
    struct peer_net net;
    bool net_live;
    struct peer_listener *listener;
    char advertise[256];           /* our peer address; "" without one */
    struct link **links;           /* one per other member, dialed */
    size_t n_links;
    bool links_dirty;              /* members or addresses may differ */
    struct link_in_list links_in;  /* accepted connections */
    struct join_client *join;      /* while this manager joins */
    struct join_wait_list join_waits; /* joins waiting to be applied */
    bool joined;                   /* the `joined` marker exists */
    bool await_voter;              /* startup waits to become a voter */
    struct fwd_list fwd_waiting;   /* writes waiting for a leader */
    struct fwd_list fwd_sent;      /* writes sent to the leader */
    uint64_t fwd_serial;           /* request ids on the links */
    struct read_list reads;        /* reads waiting for a read index */
    struct snap_out_list snap_outs; /* snapshots streamed to members */
    struct snap_in *snap_in;       /* the snapshot being received */
    uint64_t read_serial;          /* their contexts */

    /* Certificates (identity.c). */
    struct ca_root ca_root;        /* with its key: any leader signs */
    struct ca_node ca_node;        /* this manager's key and certificate */
    struct shoal_bytes ca_cert_der; /* the root, as the cluster object */
    struct shoal_bytes ca_key_der;  /* carries it; secret */

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

    /* Raft (cluster.c): the core, and what it needs from the loop. */
    struct raft raft;
    bool raft_live;                /* raft_init() ran: raft_fini() due */
    uint64_t raft_id;              /* this manager's, never reused */
    struct raft_options raft_opts;
    uint32_t tick_ms;              /* period of raft_tick() */
    struct loop_timer tick_timer;
    uint64_t write_tag;            /* newest ready tag written to the log */
    uint64_t synced_tag;           /* newest tag reported persisted */
    struct wire_buf entry_buf;     /* an entry's log payload, reused */
    struct raft_config config;     /* membership as of the applied index */
    uint64_t applied_term;         /* term of the applied index */
    struct pending_list proposed;  /* proposed, by index: not yet applied */
    struct raft_msg *held;         /* messages waiting for a persist tag */
    size_t n_held, cap_held;
    uint64_t promote_id;           /* a member to add as voter again */
    struct loop_timer promote_timer;
    bool self_status_pending;      /* our node's manager status proposed */
    struct loop_defer sync_defer;  /* drives the core at the end of turn */
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

/*
 * Handle the control request of type (a known one) with id and encoded
 * body on c now: decode, then answer a read or propose a write. For
 * requests that waited (for a leader, or for a read index).
 */
void server_request(struct conn *c, uint16_t type, uint64_t id,
                    const uint8_t *body, size_t len);

/* Takes one slice of a list reply with its frame flags (WIRE_F_MORE on
 * all but the last). Returns 0 to go on, or a negative code to stop. */
typedef int server_list_sink(void *arg, uint8_t flags,
                             const struct shoal_list_reply *r);

/*
 * Cut list reply r into slices of about LIST_CHUNK_BYTES of its one
 * array and give each to sink (r is changed during the call and put back
 * after). Returns 0, or sink's code when it stopped.
 */
int server_list_slices(struct shoal_list_reply *r, server_list_sink *sink,
                       void *arg);

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
 * Open the state database under the state directory and load the store
 * from it, open the log, then start the Raft core on both
 * (cluster_start()). Returns 0 or a negative code (logged here: startup
 * ends).
 */
int commit_open(struct manager *m);

/*
 * Apply the committed entry e (borrowed) to the store, in log order. The
 * write waiting for exactly this index and term is answered with the
 * verdict; writes waiting for an index at or below it with another term
 * were replaced by a new leader's entries and are answered UNAVAILABLE.
 * No-op and config entries change no object but advance the applied
 * index; a config entry also becomes the membership stored in LMDB. An
 * entry that cannot be applied ends the process (replicas must agree).
 */
void commit_apply_entry(struct manager *m, const struct raft_entry *e);

/* After a batch of entries was applied: pump the watches and schedule
 * the LMDB flush. */
void commit_applied(struct manager *m);

/* Answer pd with a status of code and message, and free it. */
void commit_fail(struct manager *m, struct pending *pd, int code,
                 const char *message);

/* Sync and answer what is pending, flush the state to LMDB, stop the
 * core and close the log and the database. Safe to call twice. */
void commit_close(struct manager *m);

/*
 * Make the complete staged snapshot r (transferred) the state, for the
 * core's ready that installs meta: every watch ends (the history is
 * gone), waiting writes fail, LMDB is swapped (snap_recv_finish) and
 * reopened, and the store is rebuilt from it. A failure ends the process:
 * the core has dropped its log already, and the restart recovers from
 * the disk.
 */
void commit_install(struct manager *m, struct snap_recv *r,
                    const struct raft_snapshot_meta *meta);

/* cluster.c */

/*
 * Start the Raft core on the opened log and the loaded store: a new
 * state directory bootstraps a one-voter cluster (raft_bootstrap), an
 * existing one restores the core from the hard state, the log after the
 * applied index and LMDB's meta (raft_restore). A sole voter is elected
 * and brings its log up to date before this returns, so the caller sees
 * the whole committed state. Returns 0 or a negative code (logged).
 */
int cluster_start(struct manager *m);

/*
 * Propose pd's proposal (transferred to pd) through the core; pd (kept)
 * is answered once its entry is committed and applied, or failed.
 * Returns 0, or a negative code with pd untouched: the caller answers,
 * with cluster_refusal() for the code and message.
 */
int cluster_propose(struct manager *m, struct pending *pd);

/* Fill o's code and message for a refusal rc of cluster_propose(). */
void cluster_refusal(const struct manager *m, int rc, struct control_out *o);

/*
 * Run the core until it has nothing to hand out: write what it asks to
 * the log, sync once (group commit), report it persisted, apply what is
 * committed and answer the clients. Runs at the end of every turn that
 * gave the core work; startup calls it directly.
 */
void cluster_drive(struct manager *m);

/*
 * The state up to index is durable in LMDB: let the core compact its log
 * below it (keeping a tail for slow followers) and remove the log
 * segments below what the core keeps. Returns 0 or an error of
 * wal_compact().
 */
int cluster_compact(struct manager *m, uint64_t index);

/* Whether this manager leads. */
bool cluster_is_leader(const struct manager *m);

/* Whether this manager is a voter of the config in effect. */
bool cluster_is_voter(const struct manager *m);

/* Read this manager's raft id from the state directory, or draw and
 * store a new random one. Returns 0 or a negative code (logged). */
int cluster_raft_id(struct manager *m);

/* Before the final flush: sync what the core wrote, answer every write
 * still waiting with an unknown outcome, stop the timers. */
void cluster_quiesce(struct manager *m);

/* Release the core. Safe to call twice. */
void cluster_fini(struct manager *m);

/* identity.c */

/*
 * Create the root CA of the new cluster m->cluster_id and this manager's
 * certificate (node m->node_id, role manager) signed by it, store both
 * under <state>/certificates/ (keys 0600, folder 0700) and keep their DER
 * forms for the cluster object. Returns 0 or a negative code (logged).
 */
int identity_create(struct manager *m);

/*
 * Load the root CA and this manager's certificate from the state
 * directory and check that the certificate is the CA's and names this
 * node and cluster. A state without certificates (written before they
 * existed) gets new ones. Returns 0; -EPERM when a key, certificate or
 * their folder is open to others or owned by another user (logged: the
 * start is refused); another negative code (logged).
 */
int identity_load(struct manager *m);

/* Release the certificates and keys (wiping the key bytes). */
void identity_fini(struct manager *m);

/* links.c */

/* Make the TLS context of this manager's certificates (state directory
 * files). Returns 0 and *out (transferred), or a code (logged). */
int links_tls(struct manager *m, struct peer_tls_ctx **out);

/* Set up m->net with tls (transferred; NULL: none yet). Returns 0 or a
 * negative code. */
int links_init(struct manager *m, struct peer_tls_ctx *tls);

/*
 * Listen for managers on cfg.listen_remote (certificates required, and
 * anonymous clients for joins), with this manager's certificates; set
 * m->advertise. Returns 0 or a negative code (logged).
 */
int links_listen(struct manager *m);

/* Dial every other member of the Raft config at the address of its node
 * object, and stop dialing former members. */
void links_sync(struct manager *m);

/* Send msg (borrowed) to its member, when a link to it is up; else drop
 * it (Raft retries). */
void links_send(struct manager *m, const struct raft_msg *msg);

/* The node object whose manager status has raft id id, or NULL. */
const struct shoal_node *links_node_of(const struct manager *m,
                                       uint64_t id);

/* Whether a message on link c may say it comes from raft id from: the
 * certificate's node must hold that raft id in the store (or not be
 * known here yet). */
bool links_sender_ok(const struct manager *m, const struct peer_conn *c,
                     uint64_t from);

/* The up link to raft id id (dialed first, else accepted), or NULL. */
struct peer_conn *links_conn_to(const struct manager *m, uint64_t id);

/* Whether the link to raft id id is up (always true for this one). */
bool links_reachable(const struct manager *m, uint64_t id);

/* How many dialed links are up. */
unsigned links_count_up(const struct manager *m);

/* Close every link and free them. Safe to call twice. */
void links_fini(struct manager *m);

/* join.c */

/*
 * Join the cluster of cfg.join with cfg.join_token, running the loop
 * until it is done (see join.c). On success the certificates and the
 * `joined` marker are stored and m->cluster_id is set. Returns 0,
 * ERR_JOIN_REFUSED (wrong token or CA: logged), or another negative code.
 */
int join_run(struct manager *m);

/* Read the `joined` marker: sets m->joined (and m->cluster_id when still
 * empty). Returns 0 (also when absent) or a negative code. */
int join_marker_read(struct manager *m);

/* A frame on a link without certificate, or while joining. */
void join_frame(struct manager *m, struct peer_conn *c,
                const struct wire_hdr *h, const uint8_t *body, size_t len);

/* The joiner's link to the manager asked is up: send the request. */
void join_up(struct manager *m, struct peer_conn *c);

/* c went down: forget it in waiting joins; retry a join of ours. */
void join_down(struct manager *m, struct peer_conn *c);

/* The joiner's one-shot dial d failed: retry. */
void join_dial_fail(struct manager *m, struct peer_dialer *d, int rc,
                    const char *why);

/* The node object of a join was applied with verdict code (SHOAL_OK:
 * join_pump() adds the voter) or failed with message (the joiner is told
 * and jw freed). Safe inside a ready batch. */
void join_applied(struct manager *m, struct join_wait *jw, int code,
                  const char *message);

/* Outside a ready batch: add the voters of applied joins and answer
 * their joiners. */
void join_pump(struct manager *m);

/* Free joins still waiting (shutdown). */
void join_fini(struct manager *m);

/* forward.c */

/* A write from local client c on a follower: send it to the leader (or
 * wait up to 5 s for one); the answer is relayed to c. body is copied. */
void forward_request(struct manager *m, struct conn *c,
                     const struct wire_hdr *h, const uint8_t *body,
                     size_t len);

/* Send the writes waiting for a leader, or fail those past their wait.
 * Called every tick. */
void forward_pump(struct manager *m);

/* A reply or status frame on link c: relay it to the client whose
 * forwarded request it answers. Returns whether it was one. */
bool forward_reply(struct manager *m, struct peer_conn *c,
                   const struct wire_hdr *h, const uint8_t *body,
                   size_t len);

/* Link c is down: its forwarded writes have an unknown outcome, and the
 * leader's pending writes for it answer nobody. */
void forward_link_down(struct manager *m, struct peer_conn *c);

/* Local client c is gone: its forwarded writes answer nobody. */
void forward_conn_gone(struct manager *m, struct conn *c);

/* The leader's end: a FORWARDED request on link c, handled as a local
 * one and answered on c under the same id; a non-leader answers "not
 * leader" with the leader's address and never forwards it again. */
void forward_serve(struct manager *m, struct peer_conn *c,
                   const struct wire_hdr *h, const uint8_t *body,
                   size_t len);

/* The success reply of o (a control_out with code SHOAL_OK) to request
 * id of type, on link c: a list in frames flagged MORE. */
void forward_reply_ok(struct peer_conn *c, uint16_t type, uint64_t id,
                      const struct control_out *o);

/* A status frame of o on link c, with the leader's address if any. */
void forward_status(struct peer_conn *c, uint64_t id,
                    const struct control_out *o, const char *leader_addr);

/* Answer every forwarded write still waiting (shutdown). */
void forward_fini(struct manager *m);

/* reads.c */

/* Whether reads must wait for a read index: this manager leads and is
 * not the only voter. */
bool reads_needed(const struct manager *m);

/*
 * Serve the read request (type, id, body copied) of local client c or of
 * the follower on link pc once the core has confirmed leadership and the
 * applied state caught up with the read index (at once when not
 * reads_needed()).
 */
void reads_start(struct manager *m, struct conn *c, struct peer_conn *pc,
                 uint16_t type, uint64_t id, const uint8_t *body,
                 size_t len);

/* A read state out of a ready batch (borrowed). */
void reads_ready(struct manager *m, const struct raft_read_state *rs);

/* Serve the confirmed reads the applied state has reached; fail those
 * past their wait; ask again for those the core could not take yet. */
void reads_pump(struct manager *m);

/* Client c or link pc (either may be NULL) is gone. */
void reads_conn_gone(struct manager *m, struct conn *c,
                     struct peer_conn *pc);

/* Fail every waiting read (shutdown). */
void reads_fini(struct manager *m);

/* snapshot.c */

/* The core asks to send a snapshot to msg->to: stream the LMDB state to
 * it, unless a stream to it runs already. */
void snapshot_send(struct manager *m, const struct raft_msg *msg);

/* A snapshot chunk (member side) or its answer (leader side) on c. */
void snapshot_frame(struct manager *m, struct peer_conn *c,
                    const struct wire_hdr *h, const uint8_t *body,
                    size_t len);

/* The staging of the snapshot the core installs with meta, whole and
 * stepped, transferred to the caller; NULL when there is none. */
struct snap_recv *snapshot_take(struct manager *m,
                                const struct raft_snapshot_meta *meta);

/* After a drive: drop a staged snapshot that the core did not take. */
void snapshot_settle(struct manager *m);

/* Every tick: send the next chunks, end streams that went quiet. */
void snapshot_tick(struct manager *m);

/* End every stream and keep a partial staging for a resume. */
void snapshot_fini(struct manager *m);

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
