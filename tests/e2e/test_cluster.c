/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_cluster.c: three real shoald managers on 127.0.0.1 forming one
 * Raft cluster by joining (issue #4): writes through a follower are seen
 * on every manager; the leader killed with SIGKILL, a new one is elected
 * and writes through a survivor go on, nothing acknowledged is lost, and
 * the killed manager catches up after its restart; a wrong join token is
 * refused with a message that says so.
 *
 * Peer ports come from the kernel (bound to port 0 and released just
 * before use). Nothing sleeps for a fixed time: every wait polls what a
 * user would look at (shoalctl's output) until a deadline. The Raft
 * timing is shortened through SHOAL_TEST_TUNING.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fx.h"
#include "shoal/client.h"
#include "shoal/wire.h"

#define N_MANAGERS 3
#define WAIT_MS 20000 /* the longest any step may take */
#define POLL_MS 25
#define TUNING "SHOAL_TEST_TUNING=tick_ms=20,election_ticks=10"
/* A log that keeps 20 entries behind each LMDB flush, flushed every
 * 20 ms: a member 100 writes behind needs the leader's snapshot. */
#define TUNING_SHORT_LOG                                                  \
    "SHOAL_TEST_TUNING=tick_ms=20,election_ticks=10,log_tail=20,flush_ms=20"
#define EXIT_JOIN_REFUSED 78

static struct fx_daemon mgr[N_MANAGERS + 1];
static char peer_addr[N_MANAGERS + 1][64];
static const char *const tuned_env[] = {TUNING, NULL};
static const char *const short_log_env[] = {TUNING_SHORT_LOG, NULL};
static const char *const *test_env = tuned_env;

/* A port the kernel has just handed out, free again for a manager. */
static unsigned
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port;

    cr_assert_geq(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
pause_poll(void)
{
    struct timespec ts = {0, POLL_MS * 1000000L};

    nanosleep(&ts, NULL);
}

/* Start manager k, joining manager `via` with token (NULL: the first). */
static int
start_manager(int k, int via, const char *token)
{
    const char *args[9] = {"--listen-remote", peer_addr[k], "--hostname",
                           NULL, NULL};
    char host[16];

    snprintf(host, sizeof host, "m%d", k);
    args[3] = host;
    if (token) {
        args[4] = "--join";
        args[5] = peer_addr[via];
        args[6] = "--join-token";
        args[7] = token;
    }
    mgr[k].env = test_env;
    return fx_daemon_start(&mgr[k], args);
}

/* The manager join token, as `cluster join-token manager -q` prints it. */
static char *
join_token(struct fx_daemon *d)
{
    struct fx_run r;
    char *tok;

    fx_ctl(d, NULL, &r, "cluster", "join-token", "manager", "-q", NULL);
    cr_assert_eq(r.status, 0, "join-token failed: %s", r.err);
    tok = strdup(r.out);
    cr_assert_not_null(tok);
    tok[strcspn(tok, "\n")] = '\0';
    fx_run_free(&r);
    return tok;
}

/* Whether `node ls` on d shows n managers, all reachable or leader. */
static bool
all_reachable(struct fx_daemon *d, int n)
{
    struct fx_run r;
    int seen = 0;
    bool ok;

    fx_ctl(d, NULL, &r, "node", "ls", NULL);
    for (const char *p = r.out; r.status == 0 && p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];

        snprintf(line, sizeof line, "%.*s", (int)len, p);
        if (strstr(line, " leader") || strstr(line, " reachable")) {
            seen += strstr(line, "unreachable") == NULL;
        }
        p = eol ? eol + 1 : NULL;
    }
    ok = r.status == 0 && seen == n;
    fx_run_free(&r);
    return ok;
}

static void
wait_reachable(struct fx_daemon *d, int n)
{
    long deadline = now_ms() + WAIT_MS;

    while (!all_reachable(d, n)) {
        cr_assert_lt(now_ms(), deadline, "%s: not all %d managers became "
                     "reachable: see %s", d->dir, n, d->log);
        pause_poll();
    }
}

static void
form_cluster(void)
{
    char *tok;

    for (int k = 0; k <= N_MANAGERS; k++) {
        fx_daemon_prepare(&mgr[k]);
        snprintf(peer_addr[k], sizeof peer_addr[k], "127.0.0.1:%u",
                 free_port());
    }
    cr_assert_eq(start_manager(0, 0, NULL), 0, "first manager: see %s",
                 mgr[0].log);
    tok = join_token(&mgr[0]);
    /* The third joins through the second, a follower: it is sent to the
     * leader. */
    cr_assert_eq(start_manager(1, 0, tok), 0, "join: see %s", mgr[1].log);
    cr_assert_eq(start_manager(2, 1, tok), 0, "join: see %s", mgr[2].log);
    free(tok);
    for (int k = 0; k < N_MANAGERS; k++) {
        wait_reachable(&mgr[k], N_MANAGERS);
    }
}

static void
teardown(void)
{
    for (int k = 0; k <= N_MANAGERS; k++) {
        fx_daemon_cleanup(&mgr[k]);
    }
}

TestSuite(e2e_cluster, .fini = teardown, .timeout = 180);

/* Create config name through d, retrying while the cluster has no leader
 * (UNAVAILABLE, exit 8 or 1) until the deadline. Returns whether it was
 * acknowledged. */
static bool
write_config(struct fx_daemon *d, const char *name)
{
    long deadline = now_ms() + WAIT_MS;

    for (;;) {
        struct fx_run r;
        bool ok;

        fx_ctl(d, name, &r, "config", "create", name, "-", NULL);
        ok = r.status == 0;
        if (!ok && strstr(r.err, "already exists")) {
            ok = true; /* an earlier try was applied after all */
        }
        fx_run_free(&r);
        if (ok) {
            return true;
        }
        if (now_ms() >= deadline) {
            return false;
        }
        pause_poll();
    }
}

/* Whether d lists every config of names[0..n). */
static bool
has_configs(struct fx_daemon *d, char names[][32], int n)
{
    struct fx_run r;
    bool ok;

    fx_ctl(d, NULL, &r, "config", "ls", NULL);
    ok = r.status == 0;
    for (int i = 0; ok && i < n; i++) {
        char word[40];

        /* Columns: ID NAME CREATED UPDATED. */
        snprintf(word, sizeof word, " %s ", names[i]);
        ok = strstr(r.out, word) != NULL;
    }
    fx_run_free(&r);
    return ok;
}

static void
wait_configs(struct fx_daemon *d, char names[][32], int n)
{
    long deadline = now_ms() + WAIT_MS;

    while (!has_configs(d, names, n)) {
        cr_assert_lt(now_ms(), deadline, "%s does not show all %d "
                     "acknowledged configs: see %s", d->dir, n, d->log);
        pause_poll();
    }
}

/* The applied index of d's own state, from `shoalctl stats` (served by
 * the manager asked, never forwarded). */
static unsigned long
applied_index(struct fx_daemon *d)
{
    struct fx_run r;
    unsigned long v = 0;
    const char *p;

    fx_ctl(d, NULL, &r, "stats", NULL);
    p = r.status == 0 ? strstr(r.out, "applied_index") : NULL;
    if (p) {
        v = strtoul(p + strlen("applied_index"), NULL, 10);
    }
    fx_run_free(&r);
    return v;
}

Test(e2e_cluster, follower_writes_leader_kill_and_catch_up)
{
    char names[40][32];
    int n = 0;

    form_cluster();

    /* Writes through each follower are seen on every manager. */
    for (int i = 0; i < 10; i++) {
        snprintf(names[n], sizeof names[n], "before-%d", i);
        cr_assert(write_config(&mgr[1 + i % 2], names[n]),
                  "a write through a follower failed: see %s", mgr[1].log);
        n++;
    }
    for (int k = 0; k < N_MANAGERS; k++) {
        wait_configs(&mgr[k], names, n);
    }

    /* The leader (the first manager) dies; the survivors elect another
     * and writes through them go on. */
    fx_daemon_stop(&mgr[0], SIGKILL);
    for (int i = 0; i < 10; i++) {
        snprintf(names[n], sizeof names[n], "after-%d", i);
        cr_assert(write_config(&mgr[1 + i % 2], names[n]),
                  "no write was acknowledged after the leader died: see "
                  "%s and %s", mgr[1].log, mgr[2].log);
        n++;
    }
    wait_configs(&mgr[1], names, n);
    wait_configs(&mgr[2], names, n);

    /* The old leader comes back and catches up with everything
     * acknowledged: its own applied state reaches the survivors'. Reads
     * through it are linearizable (served by the leader) and see all. */
    {
        unsigned long target = applied_index(&mgr[1]);
        long deadline;

        if (applied_index(&mgr[2]) > target) {
            target = applied_index(&mgr[2]);
        }
        cr_assert_eq(start_manager(0, 1, NULL), 0, "restart: see %s",
                     mgr[0].log);
        deadline = now_ms() + WAIT_MS;
        while (applied_index(&mgr[0]) < target) {
            cr_assert_lt(now_ms(), deadline, "the restarted manager did not "
                         "catch up to index %lu: see %s", target,
                         mgr[0].log);
            pause_poll();
        }
    }
    wait_configs(&mgr[0], names, n);
    wait_reachable(&mgr[0], N_MANAGERS);
}

/* Without a quorum there is no leader: a write waits for one, then fails
 * with a status that says so and how many managers this one reaches. */
Test(e2e_cluster, no_leader_unavailable)
{
    struct fx_run r;
    long start;

    form_cluster();
    fx_daemon_stop(&mgr[0], SIGKILL);
    fx_daemon_stop(&mgr[1], SIGKILL);
    start = now_ms();
    fx_ctl(&mgr[2], "x", &r, "config", "create", "lonely", "-", NULL);
    cr_assert_neq(r.status, 0, "a write succeeded without a quorum");
    cr_assert(strstr(r.err, "no leader: this manager reaches 1 of the 3 "
                            "managers"),
              "unclear refusal: %s", r.err);
    cr_assert_geq(now_ms() - start, 4000, "it did not wait for a leader");
    fx_run_free(&r);
}

Test(e2e_cluster, wrong_token_refused)
{
    struct fx_run r;
    char *tok;
    int st;

    form_cluster();
    tok = join_token(&mgr[0]);
    fx_ctl(&mgr[0], NULL, &r, "cluster", "join-token", "manager", "--rotate",
           "-q", NULL);
    cr_assert_eq(r.status, 0, "rotate: %s", r.err);
    fx_run_free(&r);

    /* The old token, after the rotation. */
    cr_assert_eq(start_manager(N_MANAGERS, 1, tok), -1,
                 "a manager joined with a rotated token");
    st = mgr[N_MANAGERS].end_status;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_JOIN_REFUSED,
              "want exit %d, got status %d", EXIT_JOIN_REFUSED, st);
    cr_assert(fx_file_contains(mgr[N_MANAGERS].log,
                               "the join token is wrong or was rotated"),
              "no clear refusal in %s", mgr[N_MANAGERS].log);
    free(tok);

    /* The cluster is unharmed. */
    {
        char names[1][32] = {"still-works"};

        cr_assert(write_config(&mgr[2], names[0]));
        wait_configs(&mgr[0], names, 1);
    }
}

/* A member that missed more than the leader keeps of its log, and a
 * manager that joins after the log was compacted, both get the leader's
 * state as a snapshot and then follow the log. */
Test(e2e_cluster, snapshot_to_members_behind_the_log)
{
    char names[100][32];
    unsigned long target;
    char *tok;
    long deadline;

    test_env = short_log_env;
    form_cluster();
    fx_daemon_stop(&mgr[2], SIGKILL);
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "bulk-%d", i);
        cr_assert(write_config(&mgr[1], names[i]), "write %d failed", i);
    }
    target = applied_index(&mgr[0]);

    tok = join_token(&mgr[0]);
    cr_assert_eq(start_manager(2, 0, NULL), 0, "restart: see %s",
                 mgr[2].log);
    cr_assert_eq(start_manager(3, 1, tok), 0, "join: see %s", mgr[3].log);
    free(tok);
    deadline = now_ms() + WAIT_MS;
    while (applied_index(&mgr[2]) < target ||
           applied_index(&mgr[3]) < target) {
        cr_assert_lt(now_ms(), deadline, "members behind the log did not "
                     "catch up to %lu: see %s and %s", target, mgr[2].log,
                     mgr[3].log);
        pause_poll();
    }
    cr_assert(fx_file_contains(mgr[2].log, "installed the leader's "
                                           "snapshot"),
              "the restarted member did not get a snapshot: see %s",
              mgr[2].log);
    cr_assert(fx_file_contains(mgr[3].log, "installed the leader's "
                                           "snapshot"),
              "the joiner did not get a snapshot: see %s", mgr[3].log);
    /* And they go on with the log: a write now reaches them too. */
    {
        char more[1][32] = {"after-snapshot"};
        unsigned long now_target;

        cr_assert(write_config(&mgr[3], more[0]));
        now_target = applied_index(&mgr[0]);
        deadline = now_ms() + WAIT_MS;
        while (applied_index(&mgr[2]) < now_target) {
            cr_assert_lt(now_ms(), deadline, "no entries after the "
                         "snapshot: see %s", mgr[2].log);
            pause_poll();
        }
    }
}

/* The links between managers are no business of a local client: a Raft
 * message on the control socket is refused and changes nothing; plain
 * TCP garbage on the peer port is refused by TLS; the cluster goes on. */
Test(e2e_cluster, peer_messages_only_between_managers)
{
    struct shoal_raft_message rm = {.type = 0, .from = 1, .to = 2,
                                    .term = 99};
    struct shoal_error err = {0};
    struct shoal_client *c = NULL;
    struct sockaddr_in a = {.sin_family = AF_INET};
    char names[1][32] = {"still-fine"};
    unsigned port;
    int fd;
    int rc;

    form_cluster();
    cr_assert_eq(shoal_connect(&c, mgr[0].sock, 5000, "test", &err), 0);
    rc = shoal_call(c, WIRE_MSG_RAFT, &rm, NULL, &err);
    cr_assert_eq(rc, -SHOAL_PERMISSION_DENIED, "got %d: %s", rc,
                 err.message);
    shoal_close(c);

    cr_assert_eq(sscanf(peer_addr[0], "127.0.0.1:%u", &port), 1);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_gt(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    {
        char buf[256];

        /* The manager answers with a TLS alert or just closes. */
        while (read(fd, buf, sizeof buf) > 0) {
        }
    }
    close(fd);

    cr_assert(write_config(&mgr[1], names[0]));
    wait_configs(&mgr[2], names, 1);
    wait_reachable(&mgr[0], N_MANAGERS);
}

/* The first manager's keys are private (0600 in a 0700 folder), and a
 * key that others may read stops the next start with status 77. */
Test(e2e_cluster, loose_key_refused)
{
    char path[400];
    struct stat st;
    int status;

    fx_daemon_prepare(&mgr[0]);
    snprintf(peer_addr[0], sizeof peer_addr[0], "127.0.0.1:%u",
             free_port());
    cr_assert_eq(start_manager(0, 0, NULL), 0, "see %s", mgr[0].log);
    snprintf(path, sizeof path, "%s/certificates", mgr[0].dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "folder mode %o",
                 st.st_mode & 0777);
    snprintf(path, sizeof path, "%s/certificates/ca.key", mgr[0].dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "ca.key mode %o",
                 st.st_mode & 0777);
    fx_daemon_stop(&mgr[0], SIGTERM);

    snprintf(path, sizeof path, "%s/certificates/node.key", mgr[0].dir);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(start_manager(0, 0, NULL), -1, "started with a loose key");
    status = mgr[0].end_status;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 77,
              "want exit 77, got status %d", status);
    cr_assert(fx_file_contains(mgr[0].log, "node.key has mode 0644"),
              "no reason in %s", mgr[0].log);
}
