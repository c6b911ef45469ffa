/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/cluster.c: N shoal managers on 127.0.0.1 for --cluster.
 *
 * The managers are started here, like the single --spawn one, rather
 * than through tools/cluster: the harness then holds every pid (to kill
 * the leader at a known instant, to stop them all on Ctrl-C) and needs
 * neither the script's path nor python for free ports. The steps are the
 * script's: the first manager makes the cluster, each other one joins
 * with the manager token and says READY=1 once it votes.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal/client.h"

/* A TCP port of 127.0.0.1 that is free now (the kernel picks it). */
static int
cluster_free_port(unsigned *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd, rc = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        rc = -errno;
    }
    *port = ntohs(sa.sin_port);
    close(fd);
    return rc;
}

/* The manager join token, asked of manager 0. */
static int
cluster_token(struct bench_cluster *c)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply reply = {0};
    struct shoal_client *cl = NULL;
    struct shoal_error err = {0};
    const char *tok;
    int rc;

    rc = shoal_connect(&cl, c->sock[0], 10000, "shoal-bench", &err);
    if (rc == 0) {
        rc = shoal_call(cl, WIRE_MSG_LIST_CLUSTERS, &req, &reply, &err);
    }
    if (rc == 0) {
        tok = reply.n_clusters ? reply.clusters[0].root_ca.join_tokens.manager
                               : NULL;
        rc = tok && tok[0] ? 0 : -ENOENT;
        snprintf(c->token, sizeof c->token, "%s", tok ? tok : "");
        wire_free(&wire_type_list_reply, &reply);
    }
    shoal_close(cl);
    return rc;
}

/* Start manager k; its directory exists. */
static int
cluster_launch(struct bench_cluster *c, unsigned k)
{
    char sub[1100], host[32], listen[64], join[64];
    const char *extra[12];
    unsigned n = 0;

    snprintf(sub, sizeof sub, "%s/m%u", c->dir, k + 1);
    snprintf(host, sizeof host, "m%u", k + 1);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", c->port[k]);
    snprintf(join, sizeof join, "127.0.0.1:%u", c->port[0]);
    snprintf(c->procs[k].name, sizeof c->procs[k].name, "m%u", k + 1);
    extra[n++] = "--hostname";
    extra[n++] = host;
    extra[n++] = "--listen-remote";
    extra[n++] = listen;
    if (k > 0) {
        /* Ignored by a restart: the state directory is not empty. */
        extra[n++] = "--join";
        extra[n++] = join;
        extra[n++] = "--join-token";
        extra[n++] = c->token;
    }
    extra[n] = NULL;
    return bench_spawn_shoald_args(&c->procs[k], c->bin, sub, extra, 30000);
}

int
bench_cluster_start(struct bench_cluster *c, const char *bin,
                    const char *dir, unsigned n)
{
    char sub[1100];
    int rc = 0;

    if (n == 0 || n > BENCH_MAX_MANAGERS) {
        return -EINVAL;
    }
    c->n = n;
    snprintf(c->bin, sizeof c->bin, "%s", bin);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    for (unsigned k = 0; k < n; k++) {
        c->procs[k].pid = -1;
        snprintf(c->sock[k], sizeof c->sock[k], "%s/m%u/control.sock", dir,
                 k + 1);
    }
    for (unsigned k = 0; rc == 0 && k < n; k++) {
        snprintf(sub, sizeof sub, "%s/m%u", dir, k + 1);
        rc = mkdir(sub, 0700) == 0 ? cluster_free_port(&c->port[k]) : -errno;
        if (rc == 0) {
            rc = cluster_launch(c, k);
        }
        if (rc == 0 && k == 0 && n > 1) {
            rc = cluster_token(c);
        }
    }
    if (rc != 0) {
        bench_cluster_stop(c);
    }
    return rc;
}

int
bench_cluster_hello(const struct bench_cluster *c, unsigned k, char *node,
              char *leader, size_t cap)
{
    const struct shoal_hello_reply *h;
    struct shoal_client *cl = NULL;
    int rc;

    rc = shoal_connect(&cl, c->sock[k], 2000, "shoal-bench", NULL);
    if (rc == 0) {
        h = shoal_server_hello(cl);
        snprintf(node, cap, "%s", h->node_id ? h->node_id : "");
        snprintf(leader, cap, "%s", h->leader_id ? h->leader_id : "");
    }
    shoal_close(cl);
    return rc;
}

/* Whether the leader at k sees every live manager of ids reachable. */
static bool
cluster_all_reachable(const struct bench_cluster *c, unsigned k,
                      char ids[][64], const bool *live)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply reply = {0};
    struct shoal_client *cl = NULL;
    unsigned seen = 0, want = 0;

    for (unsigned i = 0; i < c->n; i++) {
        want += live[i];
    }
    if (shoal_connect(&cl, c->sock[k], 2000, "shoal-bench", NULL) == 0 &&
        shoal_call(cl, WIRE_MSG_LIST_NODES, &req, &reply, NULL) == 0) {
        for (size_t j = 0; j < reply.n_nodes; j++) {
            const struct shoal_node *nd = &reply.nodes[j];
            const struct shoal_manager_status *ms = nd->manager_status;

            for (unsigned i = 0; ms && nd->id && i < c->n; i++) {
                if (live[i] && strcmp(ids[i], nd->id) == 0 &&
                    (ms->leader ||
                     ms->reachability == SHOAL_REACHABILITY_REACHABLE)) {
                    seen++;
                }
            }
        }
        wire_free(&wire_type_list_reply, &reply);
    }
    shoal_close(cl);
    return seen == want;
}

int
bench_cluster_leader(struct bench_cluster *c, int skip, int timeout_ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    char ids[BENCH_MAX_MANAGERS][64], leader[BENCH_MAX_MANAGERS][64];
    bool live[BENCH_MAX_MANAGERS];

    do {
        int found = -1;
        bool agree = true;

        for (unsigned k = 0; k < c->n; k++) {
            live[k] = (int)k != skip && c->procs[k].pid > 0;
            if (!live[k]) {
                continue;
            }
            if (bench_cluster_hello(c, k, ids[k], leader[k], 64) != 0 ||
                !leader[k][0]) {
                agree = false;
                break;
            }
            if (strcmp(ids[k], leader[k]) == 0) {
                found = (int)k;
            }
        }
        for (unsigned k = 0; agree && found >= 0 && k < c->n; k++) {
            agree = !live[k] || strcmp(leader[k], ids[found]) == 0;
        }
        if (agree && found >= 0 &&
            cluster_all_reachable(c, (unsigned)found, ids, live)) {
            return found;
        }
        usleep(20000);
    } while (bench_now_ns() < end && !bench_stop);
    return -ETIMEDOUT;
}

void
bench_cluster_kill(struct bench_cluster *c, unsigned k)
{
    bench_proc_kill(&c->procs[k]);
}

int
bench_cluster_restart(struct bench_cluster *c, unsigned k)
{
    return cluster_launch(c, k);
}

void
bench_cluster_stop(struct bench_cluster *c)
{
    /* TERM to all first, so that they stop together and no survivor
     * spends the others' stop in elections. */
    for (unsigned k = 0; k < c->n; k++) {
        if (c->procs[k].pid > 0) {
            kill(c->procs[k].pid, SIGTERM);
        }
    }
    for (unsigned k = 0; k < c->n; k++) {
        bench_proc_stop(&c->procs[k]);
    }
}

/* The echo side of bench_loopback_rtt. */
static void *
cluster_rtt_echo(void *arg)
{
    int fd = *(int *)arg;
    char buf[200];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (write(fd, buf, (size_t)n) != n) {
            break;
        }
    }
    return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

uint64_t
bench_loopback_rtt(unsigned n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int lfd, a = -1, b = -1, one = 1;
    uint64_t *t = calloc(n ? n : 1, sizeof *t), med = 0;
    char buf[200] = {0};
    pthread_t th;
    unsigned done = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!t || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) || listen(lfd, 1) ||
        (a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(a, (struct sockaddr *)&sa, sizeof sa) ||
        (b = accept(lfd, NULL, NULL)) < 0) {
        goto out;
    }
    /* As the peer links: small frames, no Nagle delay. */
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (pthread_create(&th, NULL, cluster_rtt_echo, &b) != 0) {
        goto out;
    }
    for (; done < n; done++) {
        uint64_t t0 = bench_now_ns();
        size_t got = 0;
        ssize_t r;

        if (write(a, buf, sizeof buf) != (ssize_t)sizeof buf) {
            break;
        }
        while (got < sizeof buf && (r = read(a, buf, sizeof buf - got)) > 0) {
            got += (size_t)r;
        }
        if (got < sizeof buf) {
            break;
        }
        t[done] = bench_now_ns() - t0;
    }
    shutdown(a, SHUT_RDWR);
    pthread_join(th, NULL);
    qsort(t, done, sizeof *t, cmp_u64);
    med = done ? t[done / 2] : 0;
out:
    if (a >= 0) {
        close(a);
    }
    if (b >= 0) {
        close(b);
    }
    if (lfd >= 0) {
        close(lfd);
    }
    free(t);
    return med;
}
