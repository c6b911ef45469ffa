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

/* Fill the manager status of our own node: one manager, the leader. */
static void
manager_status_cb(void *arg, const struct shoal_node *node,
                  struct shoal_manager_status **ms)
{
    struct manager *m = arg;
    struct shoal_manager_status *s;

    *ms = NULL;
    if (strcmp(node->id, m->node_id) != 0) {
        return;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        return;
    }
    s->raft_id = 1;
    s->addr = str_dup(m->cfg.control_socket);
    s->leader = true;
    s->reachability = SHOAL_REACHABILITY_REACHABLE;
    *ms = s;
}

static int
manager_bootstrap(struct manager *m)
{
    struct pending *pd;
    int rc;

    rc = id_new(m->cluster_id);
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
        rc = commit_propose(m, pd);
    }
    if (rc != 0) {
        free(pd);
        return rc;
    }
    /* Applied before the socket opens: no client sees an empty cluster. */
    commit_sync(m);
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
    rc = commit_open(m);
    if (rc != 0) {
        return rc;
    }
    store_find(m->store, SHOAL_KIND_CLUSTER, &all, manager_find_cluster_cb,
               m);
    if (m->cluster_id[0] == '\0') {
        rc = manager_bootstrap(m);
        if (rc != 0) {
            log_err("manager", "cannot initialise the cluster: %s",
                    err_str(rc));
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
    TAILQ_INIT(&m->unsynced);
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
    server_stop(m);
    commit_close(m);
    if (m->signal_fd >= 0) {
        loop_io_stop(&m->loop, &m->signal_io);
        close(m->signal_fd);
    }
    store_free(m->store);
    loop_fini(&m->loop);
    free(m);
}
