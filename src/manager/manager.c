/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * manager.c: startup and shutdown of one manager, and its signals.
 *
 * Startup order matters: the store is loaded and the log replayed before
 * the socket accepts anyone, so that no client sees a state older than
 * one it was already told about. A new cluster is initialised through the
 * same path as any write: one proposal, logged, synced and applied.
 */
#include "manager/manager_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "base/base.h"

#define AWAIT_VOTER_MS 60000 /* a joined manager's wait to vote */

/* The node id survives restarts in a small file of the state directory. */
static int
manager_node_id(struct manager *m)
{
    char path[4096];
    char buf[ID_LEN + 2] = {0};
    ssize_t n;
    int fd;
    int rc;

    snprintf(path, sizeof path, "%s/node-id", m->cfg.state_dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < ID_LEN) {
            log_err("manager", "node id file is damaged: path=%s", path);
            return ERR_CORRUPT;
        }
        memcpy(m->node_id, buf, ID_LEN);
        m->node_id[ID_LEN] = '\0';
        return 0;
    }

    rc = id_new(m->node_id);
    if (rc != 0) {
        return rc;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    n = write(fd, m->node_id, ID_LEN);
    rc = n == ID_LEN && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    return rc;
}

static int
manager_find_cluster_cb(const void *obj, void *arg)
{
    const struct shoal_cluster *cl = obj;
    struct manager *m = arg;

    snprintf(m->cluster_id, sizeof m->cluster_id, "%s", cl->id);
    return 1;
}

/* Fill the manager status of a node at read time: the raft id and peer
 * address stored in its node object (ours: what we run with), and what
 * only this manager knows, the leader and whether it reaches it. */
static void
manager_status_cb(void *arg, const struct shoal_node *node,
                  struct shoal_manager_status **ms)
{
    struct manager *m = arg;
    struct shoal_manager_status *s;
    bool self = strcmp(node->id, m->node_id) == 0;
    uint64_t id;
    const char *addr;

    *ms = NULL;
    if (self) {
        id = m->raft_id;
        addr = m->advertise[0] ? m->advertise : m->cfg.control_socket;
    } else if (node->manager_status) {
        id = node->manager_status->raft_id;
        addr = node->manager_status->addr;
    } else {
        return;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        return;
    }
    s->raft_id = id;
    s->addr = str_dup(addr ? addr : "");
    s->leader = id != 0 && m->raft_live && raft_leader(&m->raft) == id;
    if (!raft_config_find(raft_config(&m->raft), id)) {
        s->reachability = SHOAL_REACHABILITY_UNKNOWN;
    } else {
        s->reachability = links_reachable(m, id)
                              ? SHOAL_REACHABILITY_REACHABLE
                              : SHOAL_REACHABILITY_UNREACHABLE;
    }
    *ms = s;
}

static int
manager_bootstrap(struct manager *m)
{
    struct pending *pd;
    int rc;

    rc = id_new(m->cluster_id);
    if (rc == 0) {
        rc = identity_create(m);
    }
    if (rc != 0) {
        return rc;
    }
    pd = calloc(1, sizeof *pd);
    if (!pd) {
        return ERR_NOMEM;
    }
    pd->internal = true;
    rc = control_bootstrap(&m->control, m->cfg.hostname, &pd->proposal);
    if (rc == 0) {
        rc = cluster_propose(m, pd);
    }
    if (rc != 0) {
        if (pd->proposal) {
            wire_free(&wire_type_proposal, pd->proposal);
            free(pd->proposal);
        }
        free(pd);
        return rc;
    }
    /* Applied before the socket opens: no client sees an empty cluster. */
    cluster_drive(m);
    if (store_count(m->store, SHOAL_KIND_CLUSTER) == 0) {
        return m->log_failed ? -EIO : ERR_BADSTATE;
    }
    log_notice("manager", "initialised a new cluster: cluster=%s node=%s",
               m->cluster_id, m->node_id);
    return 0;
}

/* Signals. */

static void
manager_reload(struct manager *m)
{
    char path[4096];
    char name[32] = {0};
    enum log_level level;
    FILE *f;

    if (m->cfg.log_file) {
        int rc = log_open_file(m->cfg.log_file);

        if (rc != 0) {
            log_err("manager", "reload: cannot reopen the log file: "
                    "path=%s: %s", m->cfg.log_file, err_str(rc));
        }
    }
    snprintf(path, sizeof path, "%s/log-level", m->cfg.state_dir);
    f = fopen(path, "re");
    if (!f) {
        log_notice("manager", "reload: no log level file: path=%s", path);
        return;
    }
    if (fscanf(f, "%31s", name) == 1 && log_level_parse(name, &level) == 0) {
        log_set_level(level);
        log_notice("manager", "reload: log level set: level=%s", name);
    } else {
        log_warn("manager", "reload: bad log level file: path=%s", path);
    }
    fclose(f);
}

static void
manager_signal_cb(struct loop *l, unsigned events, void *arg)
{
    struct manager *m = arg;
    struct signalfd_siginfo si;

    (void)events;
    while (read(m->signal_fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            manager_reload(m);
            continue;
        }
        log_notice("manager", "stopping: signal=%s",
                   si.ssi_signo == SIGTERM ? "TERM" : "INT");
        loop_stop(l);
    }
}

static int
manager_signals(struct manager *m)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -errno;
    }
    m->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m->signal_fd < 0) {
        return -errno;
    }
    m->signal_io = (struct loop_io){
        .fd = m->signal_fd, .events = LOOP_READ,
        .cb = manager_signal_cb, .arg = m,
    };
    return loop_io_start(&m->loop, &m->signal_io);
}

/*
 * Before the state is opened: a manager asked to join an empty state
 * directory joins now (join.c); one that joined before says so in its
 * `joined` marker and just starts.
 */
static int
manager_join(struct manager *m)
{
    const char *listen = m->cfg.listen_remote;
    char path[4096];
    int rc;

    rc = join_marker_read(m);
    if (rc != 0 || !m->cfg.join) {
        return rc;
    }
    if (m->joined) {
        log_info("manager", "this manager joined its cluster before; "
                 "--join is ignored: cluster=%s", m->cluster_id);
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s/ca.crt", m->cfg.state_dir,
             CA_DIR_NAME);
    if (access(path, F_OK) == 0) {
        log_err("manager", "--join needs an empty state directory; this "
                "one already belongs to a cluster: dir=%s",
                m->cfg.state_dir);
        return ERR_BADSTATE;
    }
    if (m->cfg.advertise_remote) {
        snprintf(m->advertise, sizeof m->advertise, "%s",
                 m->cfg.advertise_remote);
    } else if (strlen(listen) > 2 &&
               strcmp(listen + strlen(listen) - 2, ":0") != 0) {
        snprintf(m->advertise, sizeof m->advertise, "%s", listen);
    } else {
        log_err("manager", "--join needs a fixed --listen-remote port or "
                "an --advertise-remote address: the others must know it "
                "before this manager listens");
        return ERR_BADSTATE;
    }
    rc = cluster_raft_id(m);
    if (rc == 0) {
        rc = join_run(m);
    }
    m->await_voter = rc == 0;
    return rc;
}

static void
manager_await_cb(struct loop *l, void *arg)
{
    struct manager *m = arg;

    log_warn("manager", "not a voter yet after %d s; serving anyway, the "
             "leader goes on catching this manager up",
             AWAIT_VOTER_MS / 1000);
    m->await_voter = false;
    loop_stop(l);
}

/*
 * A manager that just joined is ready once it votes: the leader has
 * caught it up and promoted it (thesis §4.2.1), so a tool or test that
 * waits for readiness finds a cluster whose quorum counts it.
 */
static int
manager_await_voter(struct manager *m)
{
    struct loop_timer t = {.cb = manager_await_cb, .arg = m};
    int rc;

    if (!m->await_voter || cluster_is_voter(m)) {
        m->await_voter = false;
        return 0;
    }
    log_info("manager", "waiting to be caught up and made a voter");
    loop_timer_start(&m->loop, &t, AWAIT_VOTER_MS);
    rc = loop_run(&m->loop);
    loop_timer_stop(&m->loop, &t);
    m->await_voter = false;
    return rc;
}

static int
manager_start(struct manager *m)
{
    struct store_config scfg = {
        .check = control_check,
        .check_arg = &m->control,
    };
    struct control_env env = {
        .node_id = m->node_id,
        .cluster_id = m->cluster_id,
        .manager_status = manager_status_cb,
        .arg = m,
        .ca_cert = &m->ca_cert_der,
        .ca_key = &m->ca_key_der,
    };
    struct store_query all = {.by = STORE_BY_ALL};
    int rc;

    rc = manager_node_id(m);
    if (rc != 0) {
        log_err("manager", "cannot read or create the node id: %s",
                err_str(rc));
        return rc;
    }
    rc = store_new(&m->store, &scfg);
    if (rc != 0) {
        return rc;
    }
    control_init(&m->control, m->store, &env);
    rc = manager_join(m);
    if (rc != 0) {
        return rc;
    }
    rc = commit_open(m);
    if (rc != 0) {
        return rc;
    }
    store_find(m->store, SHOAL_KIND_CLUSTER, &all, manager_find_cluster_cb,
               m);
    if (m->cluster_id[0] == '\0' && m->joined) {
        /* Cannot happen: the marker carries the cluster id. */
        return ERR_CORRUPT;
    }
    if (m->cluster_id[0] == '\0') {
        rc = manager_bootstrap(m);
        if (rc != 0) {
            log_err("manager", "cannot initialise the cluster: %s",
                    err_str(rc));
            return rc;
        }
    } else {
        rc = identity_load(m);
        if (rc != 0) {
            return rc;
        }
    }
    if (m->cfg.listen_remote) {
        rc = links_listen(m);
        if (rc != 0) {
            return rc;
        }
        /* Dial the members, and record our own address if we lead. */
        m->links_dirty = true;
        cluster_drive(m);
        rc = manager_await_voter(m);
        if (rc != 0) {
            return rc;
        }
    }
    rc = manager_signals(m);
    if (rc != 0) {
        log_err("manager", "cannot set up signals: %s", err_str(rc));
        return rc;
    }
    return server_start(m);
}

int
manager_open(struct manager **out, const struct manager_config *cfg)
{
    struct manager *m = calloc(1, sizeof *m);
    int rc;

    if (!m) {
        return ERR_NOMEM;
    }
    m->cfg = *cfg;
    m->listen_fd = -1;
    m->reserve_fd = -1;
    m->signal_fd = -1;
    TAILQ_INIT(&m->conns);
    TAILQ_INIT(&m->dead_conns);
    TAILQ_INIT(&m->proposed);
    TAILQ_INIT(&m->links_in);
    TAILQ_INIT(&m->join_waits);
    TAILQ_INIT(&m->fwd_waiting);
    TAILQ_INIT(&m->fwd_sent);
    TAILQ_INIT(&m->reads);
    TAILQ_INIT(&m->snap_outs);
#ifdef SHOAL_TEST_BUILD
    /* Before the log is opened: its recovery has failpoints too. */
    rc = failpoint_init(m);
    if (rc != 0) {
        free(m);
        return rc;
    }
#endif
    rc = loop_init(&m->loop);
    if (rc != 0) {
        free(m);
        return rc;
    }
    rc = manager_start(m);
    if (rc != 0) {
        manager_close(m);
        return rc;
    }
    log_notice("manager", "serving: socket=%s state=%s node=%s cluster=%s "
               "applied=%" PRIu64, cfg->control_socket, cfg->state_dir,
               m->node_id, m->cluster_id, store_applied(m->store));
    /* Ready means the socket accepts and the state is loaded; a service
     * manager (or a test) waits for this instead of polling. */
    sd_notifyf(0, "READY=1\nSTATUS=serving %s, applied index %" PRIu64,
               cfg->control_socket, store_applied(m->store));
    *out = m;
    return 0;
}

int
manager_run(struct manager *m)
{
    int rc = loop_run(&m->loop);

    sd_notify(0, "STOPPING=1");
    /* Whatever was accepted is made durable and answered before exit. */
    forward_fini(m);
    reads_fini(m);
    snapshot_fini(m);
    commit_close(m);
    server_stop(m);
    log_notice("manager", "stopped: applied=%" PRIu64,
               store_applied(m->store));
    return rc;
}

void
manager_close(struct manager *m)
{
    if (!m) {
        return;
    }
    forward_fini(m);
    reads_fini(m);
    snapshot_fini(m);
    server_stop(m);
    commit_close(m);
    links_fini(m);
    join_fini(m);
    if (m->signal_fd >= 0) {
        loop_io_stop(&m->loop, &m->signal_io);
        close(m->signal_fd);
    }
    store_free(m->store);
    identity_fini(m);
    loop_fini(&m->loop);
    free(m);
}
