/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/failover.c: the failover workload (issue #5).
 *
 * C clients, one request at a time each, create configs of
 * --value-bytes through every manager in turn (client i starts at
 * manager i mod N; a broken connection moves it to the next live one).
 * After the warm-up the leader is killed with SIGKILL; the stream goes
 * on for the duration. Unavailability is the time from the kill to the
 * first acknowledged write that was sent after it: a write sent before
 * may still be answered by the dead leader's last bytes in flight, which
 * says nothing about the new one. Every write that failed is counted by
 * status. Then each acknowledged write is read back by id through the
 * new leader (a linearizable read): one missing is a lost acknowledged
 * write. Finally the killed manager is started again and the round ends
 * once every manager follows one leader again.
 *
 * Creates, not updates: each acknowledged write has its own id to look
 * for, and a write whose outcome is unknown (its connection broke) is
 * simply not counted as acknowledged, never retried under the same name.
 */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal/client.h"

#define FO_VERIFY_DEPTH 64 /* gets in flight while reading back */
#define FO_TIMEOUT_MS 10000 /* longer than a follower's 5 s leader wait */

struct fo_run {
    struct bench_cluster *c;
    const struct bench_params *p;
    const char *tag;
    uint8_t *value;
    pthread_barrier_t start;
    _Atomic uint64_t t_kill; /* 0 until the leader is killed */
    _Atomic int dead;        /* the killed manager, -1 before */
    _Atomic int stop;
};

struct fo_client {
    struct fo_run *run;
    unsigned n;
    unsigned at; /* the manager it writes to */
    pthread_t thread;
    struct shoal_client *c;
    char **ids; /* acknowledged writes */
    size_t n_ids, cap;
    uint64_t first_after; /* ack time of the first write sent after the
                           * kill; 0: none yet */
    uint64_t seq;
    struct bench_result res;
};

/* Connect to the next live manager from lc->at on; false if none. */
static bool
fo_connect(struct fo_client *lc)
{
    struct bench_cluster *c = lc->run->c;

    for (unsigned i = 0; i < c->n; i++) {
        unsigned k = (lc->at + i) % c->n;

        if ((int)k == atomic_load(&lc->run->dead)) {
            continue;
        }
        if (shoal_connect(&lc->c, c->sock[k], FO_TIMEOUT_MS, "shoal-bench",
                          NULL) == 0) {
            lc->at = k;
            return true;
        }
    }
    return false;
}

/* Keep id as acknowledged (transferred). */
static int
fo_keep(struct fo_client *lc, char *id)
{
    char **n;

    if (lc->n_ids == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 1024;
        n = realloc(lc->ids, lc->cap * sizeof *n);
        if (!n) {
            free(id);
            return -ENOMEM;
        }
        lc->ids = n;
    }
    lc->ids[lc->n_ids++] = id;
    return 0;
}

/* One create; counts its outcome. */
static void
fo_write(struct fo_client *lc)
{
    struct fo_run *run = lc->run;
    struct shoal_create_config_request req = {0};
    struct shoal_config_spec spec = {0};
    struct shoal_config reply = {0};
    struct shoal_error err = {0};
    struct bench_result *r = &lc->res;
    uint64_t t0, t1, tk;
    char name[128];
    int rc;

    snprintf(name, sizeof name, "%s-c%u-%" PRIu64, run->tag, lc->n,
             lc->seq++);
    spec.annotations.name = name;
    spec.data.data = run->value;
    spec.data.len = run->p->value_bytes;
    req.spec = &spec;
    t0 = bench_now_ns();
    rc = shoal_call(lc->c, WIRE_MSG_CREATE_CONFIG, &req, &reply, &err);
    t1 = bench_now_ns();
    r->ops++;
    if (rc == 0) {
        tk = atomic_load(&run->t_kill);
        bench_hist_add(r->lat, t1 - t0);
        if (tk && t0 >= tk && !lc->first_after) {
            lc->first_after = t1;
        }
        if (fo_keep(lc, reply.id) != 0) {
            atomic_store(&run->stop, 1);
        }
        reply.id = NULL;
        wire_free(&wire_type_config, &reply);
        return;
    }
    r->errors++;
    r->codes[-rc > 0 && -rc < BENCH_N_CODES - 1 ? -rc : BENCH_N_CODES - 1]++;
    if (err.local) {
        /* The connection broke (its manager died, or timed out): the
         * next live manager takes over, as a client library would. */
        shoal_close(lc->c);
        lc->c = NULL;
        lc->at = (lc->at + 1) % run->c->n;
    }
}

static void *
fo_client_main(void *arg)
{
    struct fo_client *lc = arg;
    struct fo_run *run = lc->run;

    pthread_barrier_wait(&run->start);
    while (!atomic_load(&run->stop) && !bench_stop) {
        if (!lc->c && !fo_connect(lc)) {
            usleep(10000);
            continue;
        }
        fo_write(lc);
    }
    return NULL;
}

/*
 * Read back every acknowledged id through the manager at sock. Counts
 * the ones not found in *lost. Returns 0 or a negative code (note).
 */
static int
fo_verify(const char *sock, struct fo_client *cl, unsigned n_cl,
          uint64_t *lost, char *note, size_t cap)
{
    struct shoal_client *c = NULL;
    struct shoal_error err = {0};
    struct shoal_frame f = {0};
    unsigned ci = 0, inflight = 0;
    size_t ii = 0;
    int rc;

    rc = shoal_connect(&c, sock, FO_TIMEOUT_MS, "shoal-bench", &err);
    while (rc == 0) {
        while (inflight < FO_VERIFY_DEPTH && ci < n_cl) {
            struct shoal_id_request req = {0};

            if (ii == cl[ci].n_ids) {
                ci++;
                ii = 0;
                continue;
            }
            req.id = cl[ci].ids[ii++];
            rc = shoal_send(c, WIRE_MSG_GET_CONFIG, &req, NULL, &err);
            if (rc != 0) {
                break;
            }
            inflight++;
        }
        if (rc != 0 || inflight == 0) {
            break;
        }
        rc = shoal_recv(c, &f, &err);
        if (rc != 0) {
            break;
        }
        if (!(f.flags & WIRE_F_MORE)) {
            inflight--;
            if (f.type != (WIRE_MSG_GET_CONFIG | WIRE_REPLY)) {
                rc = shoal_frame_decode(&f, WIRE_MSG_GET_CONFIG, NULL, &err);
            }
            if (rc == -SHOAL_NOT_FOUND) {
                (*lost)++;
                rc = 0;
            }
        }
        shoal_frame_fini(&f);
    }
    if (rc != 0) {
        snprintf(note, cap, "read-back through %s: %.200s", sock,
                 err.message);
    }
    shoal_close(c);
    return rc;
}

/* Sleep for seconds, or until interrupted. */
static void
fo_sleep(double seconds)
{
    uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9);

    while (!bench_stop && bench_now_ns() < end) {
        usleep(10000);
    }
}

/*
 * Poll the survivors' hellos every 5 ms until one names a leader other
 * than old_id: the election's share of the unavailability, the rest
 * being the new leader's first commit and the clients finding it.
 * Returns the seconds since now, or -1 when none within limit_s.
 */
static double
fo_watch_election(const struct bench_cluster *c, int dead,
                  const char *old_id, double limit_s)
{
    uint64_t t0 = bench_now_ns();
    uint64_t end = t0 + (uint64_t)(limit_s * 1e9);
    char node[64], leader[64];

    while (!bench_stop && bench_now_ns() < end) {
        for (unsigned k = 0; k < c->n; k++) {
            if ((int)k != dead &&
                bench_cluster_hello(c, k, node, leader, sizeof node) == 0 &&
                leader[0] && strcmp(leader, old_id) != 0) {
                return (double)(bench_now_ns() - t0) / 1e9;
            }
        }
        usleep(5000);
    }
    return -1;
}

/* Start the clients, kill the leader after the warm-up, stop them. */
static int
fo_stream(struct fo_run *run, struct fo_client *cl, int leader,
          struct bench_result *r)
{
    const struct bench_params *p = run->p;
    unsigned started = 0;
    uint64_t t_start, t_kill, first = 0;
    char old_id[64], other[64];

    for (unsigned i = 0; i < p->clients; i++) {
        cl[i].run = run;
        cl[i].n = i;
        cl[i].at = i % run->c->n;
        if (bench_result_init(&cl[i].res) != 0 ||
            pthread_create(&cl[i].thread, NULL, fo_client_main, &cl[i])) {
            fprintf(stderr, "shoal-bench: cannot start client %u\n", i);
            exit(BENCH_EXIT_FAIL);
        }
        started++;
    }
    pthread_barrier_wait(&run->start);
    t_start = bench_now_ns();
    if (bench_cluster_hello(run->c, (unsigned)leader, old_id, other,
                            sizeof old_id) != 0) {
        old_id[0] = '\0';
    }
    fo_sleep(p->warmup_s);
    /* dead first, so that no client reconnects to it meanwhile. */
    atomic_store(&run->dead, leader);
    t_kill = bench_now_ns();
    atomic_store(&run->t_kill, t_kill);
    bench_cluster_kill(run->c, (unsigned)leader);
    r->elected_s = fo_watch_election(run->c, leader, old_id, p->duration_s);
    fo_sleep(p->duration_s - (double)(bench_now_ns() - t_kill) / 1e9);
    atomic_store(&run->stop, 1);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(cl[i].thread, NULL);
        bench_hist_merge(r->lat, cl[i].res.lat);
        r->ops += cl[i].res.ops;
        r->errors += cl[i].res.errors;
        for (unsigned k = 0; k < BENCH_N_CODES; k++) {
            r->codes[k] += cl[i].res.codes[k];
        }
        r->acked += cl[i].n_ids;
        if (cl[i].first_after && (!first || cl[i].first_after < first)) {
            first = cl[i].first_after;
        }
    }
    r->seconds = (double)(bench_now_ns() - t_start) / 1e9;
    r->unavail_s = first ? (double)(first - t_kill) / 1e9 : -1;
    return 0;
}

int
bench_failover_run(struct bench_cluster *c, const char *tag,
                   const struct bench_params *p, struct bench_result *r)
{
    struct fo_run run = {.c = c, .p = p, .tag = tag};
    struct fo_client *cl = NULL;
    int leader, next, rc;

    r->failover = true;
    r->unavail_s = -1;
    r->elected_s = -1;
    if (c->n < 3) {
        snprintf(r->note, sizeof r->note, "failover needs 3 managers or "
                 "more: %u cannot elect after losing one", c->n);
        return -EINVAL;
    }
    leader = bench_cluster_leader(c, -1, 30000);
    if (leader < 0) {
        snprintf(r->note, sizeof r->note, "no leader that all managers "
                 "follow within 30 s");
        return leader;
    }
    r->killed = (unsigned)leader + 1;
    atomic_init(&run.t_kill, 0);
    atomic_init(&run.dead, -1);
    atomic_init(&run.stop, 0);
    run.value = malloc(p->value_bytes + 1);
    cl = calloc(p->clients, sizeof *cl);
    if (!run.value || !cl ||
        pthread_barrier_init(&run.start, NULL, p->clients + 1) != 0) {
        rc = -ENOMEM;
        goto out_free;
    }
    memset(run.value, 'f', p->value_bytes);
    rc = fo_stream(&run, cl, leader, r);
    pthread_barrier_destroy(&run.start);
    next = bench_cluster_leader(c, leader, 30000);
    if (next < 0) {
        snprintf(r->note, sizeof r->note, "no new leader within 30 s of "
                 "the kill");
        rc = next;
    } else {
        rc = fo_verify(c->sock[next], cl, p->clients, &r->lost, r->note,
                       sizeof r->note);
    }
    if (rc == 0 && (rc = bench_cluster_restart(c, (unsigned)leader)) != 0) {
        snprintf(r->note, sizeof r->note, "restart of m%d: %s", leader + 1,
                 strerror(-rc));
    }
    if (rc == 0 && bench_cluster_leader(c, -1, 30000) < 0) {
        snprintf(r->note, sizeof r->note, "m%d restarted but the managers "
                 "do not agree on a leader within 30 s", leader + 1);
        rc = -ETIMEDOUT;
    }
out_free:
    for (unsigned i = 0; cl && i < p->clients; i++) {
        for (size_t j = 0; j < cl[i].n_ids; j++) {
            free(cl[i].ids[j]);
        }
        free(cl[i].ids);
        shoal_close(cl[i].c);
        bench_result_fini(&cl[i].res);
    }
    free(cl);
    free(run.value);
    return rc;
}
