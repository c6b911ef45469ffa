/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/load.c: the load of the shoal and echo targets.
 *
 * One thread per client, each with its own connection keeping depth
 * requests in flight (libshoal pipelining: shoal_send, then shoal_recv
 * matched by request id). Threads start together at a barrier; latency
 * is counted for requests sent after the warm-up and answered before the
 * end of the window, in per-thread histograms merged at the end, so the
 * clients share nothing while they run but two counters.
 *
 * Read replies are recognised by their frame type and not decoded: the
 * server's work is what is measured, and the echo target is read the
 * same way. Write replies are decoded for the object's new version.
 */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shoal/client.h"

#define LOAD_GROUPS 10   /* list: objects are spread over this many labels */
#define LOAD_WATCH_OBJS 16 /* watch: objects the writer updates in turn */
#define LOAD_WATCH_READ (256u << 10) /* watch: bytes asked of one recv */

/* What all clients of a run share. */
struct load_run {
    const struct bench_params *p;
    const char *path;
    const char *tag;
    char **ids; /* preloaded objects for reads and lists */
    unsigned n_ids;
    uint8_t *value;
    pthread_barrier_t start;
    uint64_t t_warm; /* window start */
    _Atomic uint64_t t_end; /* window end; UINT64_MAX until known */
    _Atomic uint64_t done;  /* measured completions (ops mode) */
    _Atomic int failed;
};

/* One object a client updates by version. */
struct load_obj {
    char *id;
    uint64_t version;
};

/* One request in flight. */
struct load_slot {
    uint64_t id;
    uint64_t t0;
    uint16_t type;
    bool busy;
};

struct load_client {
    struct load_run *run;
    unsigned n;
    pthread_t thread;
    struct shoal_client *c;
    struct load_slot *slots;
    struct load_obj *objs; /* one per slot, for writes */
    uint64_t rnd;
    uint64_t seq;
    struct bench_result res; /* lat histogram only, merged later */
    unsigned inflight;
    char note[256];
};

/* --client-threads: a thread serving many clients' connections. */
struct load_group {
    struct load_run *run;
    struct load_client *cl;
    unsigned n;
    pthread_t thread;
};

static uint64_t
load_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Fill a config spec named name with data run->value and label k=v. */
static int
load_spec(struct shoal_config_spec *s, const char *name,
          const struct load_run *run, const char *k, const char *v)
{
    memset(s, 0, sizeof *s);
    s->annotations.name = (char *)name;
    s->data.data = run->value;
    s->data.len = run->p->value_bytes;
    return k ? wire_map_set(&s->annotations.labels, k, v) : 0;
}

/* Free what load_spec allocated (the labels only). */
static void
load_spec_fini(struct shoal_config_spec *s)
{
    struct shoal_map *m = &s->annotations.labels;

    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].value);
    }
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

/* Create a config named name; store its id and version. */
static int
load_create(struct shoal_client *c, const struct load_run *run,
            const char *name, const char *group, struct load_obj *o,
            struct shoal_error *err)
{
    struct shoal_create_config_request req = {0};
    struct shoal_config_spec spec;
    struct shoal_config reply = {0};
    int rc;

    rc = load_spec(&spec, name, run, group ? "group" : NULL, group);
    if (rc != 0) {
        return -SHOAL_RESOURCE_EXHAUSTED;
    }
    req.spec = &spec;
    rc = shoal_call(c, WIRE_MSG_CREATE_CONFIG, &req, &reply, err);
    load_spec_fini(&spec);
    if (rc != 0) {
        return rc;
    }
    o->id = reply.id;
    o->version = reply.meta.version;
    reply.id = NULL;
    wire_free(&wire_type_config, &reply);
    return 0;
}

/* Queue the next request of slot s. */
static int
load_send(struct load_client *lc, unsigned s, struct shoal_error *err)
{
    const struct bench_params *p = lc->run->p;
    struct shoal_update_config_request ur = {0};
    struct shoal_list_request lr = {0};
    struct shoal_id_request ir = {0};
    struct shoal_config_spec spec;
    char name[128], v[32];
    const void *body;
    uint16_t type;
    bool write;
    int rc;

    write = p->workload == BENCH_W_WRITE ||
            (p->workload == BENCH_W_MIXED &&
             (double)(load_rand(&lc->rnd) % 10000) >= p->read_ratio * 10000);
    if (write) {
        snprintf(name, sizeof name, "%s-c%u-s%u", lc->run->tag, lc->n, s);
        snprintf(v, sizeof v, "%" PRIu64, ++lc->seq);
        if (load_spec(&spec, name, lc->run, "seq", v) != 0) {
            return -SHOAL_RESOURCE_EXHAUSTED;
        }
        ur.id = lc->objs[s].id;
        ur.version = lc->objs[s].version;
        ur.spec = &spec;
        type = WIRE_MSG_UPDATE_CONFIG;
        body = &ur;
    } else if (p->workload == BENCH_W_LIST) {
        snprintf(v, sizeof v, "g%u",
                 (unsigned)(load_rand(&lc->rnd) % LOAD_GROUPS));
        if (wire_map_set(&lr.labels, "group", v) != 0) {
            return -SHOAL_RESOURCE_EXHAUSTED;
        }
        type = WIRE_MSG_LIST_CONFIGS;
        body = &lr;
    } else {
        ir.id = lc->run->ids[load_rand(&lc->rnd) % lc->run->n_ids];
        type = WIRE_MSG_GET_CONFIG;
        body = &ir;
    }
    lc->slots[s].type = type;
    lc->slots[s].t0 = bench_now_ns();
    lc->slots[s].busy = true;
    rc = shoal_send(lc->c, type, body, &lc->slots[s].id, err);
    if (write) {
        load_spec_fini(&spec);
    }
    wire_free(&wire_type_list_request, &lr);
    return rc;
}

/* The status code of a final frame for slot sl; keeps the version. */
static int
load_code(struct load_client *lc, unsigned s, const struct shoal_frame *f)
{
    struct shoal_config cfg = {0};
    struct shoal_error err;
    uint16_t type = lc->slots[s].type;
    int rc;

    if (lc->run->p->raw) {
        return (f->type & WIRE_REPLY) ? SHOAL_OK : SHOAL_INTERNAL;
    }
    if (f->type == (type | WIRE_REPLY) && type != WIRE_MSG_UPDATE_CONFIG) {
        return SHOAL_OK;
    }
    rc = shoal_frame_decode(f, type, type == WIRE_MSG_UPDATE_CONFIG ? &cfg
                                                                     : NULL,
                            &err);
    if (rc == 0 && type == WIRE_MSG_UPDATE_CONFIG) {
        lc->objs[s].version = cfg.meta.version;
        wire_free(&wire_type_config, &cfg);
    } else if (rc == -SHOAL_CONFLICT && err.current_version) {
        lc->objs[s].version = err.current_version;
    }
    return -rc;
}

/* Whether the client should send more. */
static bool
load_running(struct load_client *lc, uint64_t now)
{
    const struct load_run *run = lc->run;

    if (atomic_load(&run->failed) || bench_stop) {
        return false;
    }
    if (run->p->ops) {
        return atomic_load(&run->done) < run->p->ops;
    }
    return now < atomic_load(&run->t_end);
}

/* Count a completion of slot s answered at now with code. */
static void
load_count(struct load_client *lc, unsigned s, uint64_t now, int code)
{
    struct load_run *run = lc->run;
    struct bench_result *r = &lc->res;
    uint64_t n;

    if (lc->slots[s].t0 < run->t_warm || now > atomic_load(&run->t_end)) {
        return;
    }
    if (run->p->ops) {
        n = atomic_fetch_add(&run->done, 1) + 1;
        if (n > run->p->ops) {
            return;
        }
        if (n == run->p->ops) {
            atomic_store(&run->t_end, now);
        }
    }
    bench_hist_add(r->lat, now - lc->slots[s].t0);
    r->ops++;
    r->codes[code >= 0 && code < BENCH_N_CODES - 1 ? code
                                                    : BENCH_N_CODES - 1]++;
    r->errors += code != SHOAL_OK;
}

/* Prepare lc: connect, and for writes make one object per slot. */
static int
load_client_setup(struct load_client *lc, struct shoal_error *err)
{
    const struct bench_params *p = lc->run->p;
    char name[128];
    int rc;

    rc = shoal_connect(&lc->c, lc->run->path, 10000, "shoal-bench", err);
    if (rc != 0) {
        return rc;
    }
    if (p->workload != BENCH_W_WRITE && p->workload != BENCH_W_MIXED) {
        return 0;
    }
    for (unsigned s = 0; s < p->depth && !p->raw; s++) {
        snprintf(name, sizeof name, "%s-c%u-s%u", lc->run->tag, lc->n, s);
        rc = load_create(lc->c, lc->run, name, NULL, &lc->objs[s], err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/*
 * Take frame f for lc: count the request it ends and send the next one.
 * Returns 0 or a negative code (err set).
 */
static int
load_client_frame(struct load_client *lc, struct shoal_frame *f,
                  struct shoal_error *err)
{
    uint64_t now = bench_now_ns();
    unsigned s;

    for (s = 0; s < lc->run->p->depth; s++) {
        if (lc->slots[s].busy && lc->slots[s].id == f->id) {
            break;
        }
    }
    if (s == lc->run->p->depth || (f->flags & WIRE_F_MORE)) {
        return 0;
    }
    load_count(lc, s, now, load_code(lc, s, f));
    lc->slots[s].busy = false;
    lc->inflight--;
    if (load_running(lc, now)) {
        int rc = load_send(lc, s, err);

        lc->inflight += rc == 0;
        return rc;
    }
    return 0;
}

/* Record why lc stopped, once, and stop the run. */
static void
load_client_fail(struct load_client *lc, const struct shoal_error *err)
{
    if (!lc->note[0]) {
        snprintf(lc->note, sizeof lc->note, "client %u: %.200s", lc->n,
                 err->message);
    }
    atomic_store(&lc->run->failed, 1);
}

static void *
load_client_main(void *arg)
{
    struct load_client *lc = arg;
    struct shoal_frame f = {0};
    struct shoal_error err = {0};
    int rc;

    rc = load_client_setup(lc, &err);
    if (rc != 0) {
        load_client_fail(lc, &err);
    }
    pthread_barrier_wait(&lc->run->start);
    for (unsigned s = 0; rc == 0 && s < lc->run->p->depth; s++) {
        rc = load_send(lc, s, &err);
        lc->inflight += rc == 0;
    }
    while (rc == 0 && lc->inflight > 0) {
        rc = shoal_recv(lc->c, &f, &err);
        if (rc == 0) {
            rc = load_client_frame(lc, &f, &err);
            shoal_frame_fini(&f);
        }
    }
    if (rc != 0) {
        load_client_fail(lc, &err);
    }
    return NULL;
}

/*
 * A thread serving g->n clients (depth 1, one reply per request): the
 * same requests on the same connections as load_client_main, but the
 * thread waits on all of them with epoll, as etcd's Go driver waits on
 * its goroutines' connections. With 1,000 clients this spares the
 * machine 1,000 threads each woken for every reply.
 */
static void *
load_group_main(void *arg)
{
    struct load_group *g = arg;
    struct epoll_event ev[64];
    struct shoal_error err = {0};
    struct shoal_frame f = {0};
    unsigned active = 0, idle = 0;
    int ep, rc;

    ep = epoll_create1(EPOLL_CLOEXEC);
    for (unsigned i = 0; i < g->n; i++) {
        if (ep < 0 || load_client_setup(&g->cl[i], &err) != 0) {
            load_client_fail(&g->cl[i], &err);
            break;
        }
    }
    pthread_barrier_wait(&g->run->start);
    for (unsigned i = 0; ep >= 0 && i < g->n; i++) {
        struct load_client *lc = &g->cl[i];
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = lc};

        if (!lc->c || atomic_load(&g->run->failed)) {
            continue;
        }
        rc = load_send(lc, 0, &err);
        rc = rc ? rc : shoal_flush(lc->c, &err);
        if (rc == 0 && epoll_ctl(ep, EPOLL_CTL_ADD, shoal_fd(lc->c), &e)) {
            rc = -SHOAL_INTERNAL;
        }
        if (rc != 0) {
            load_client_fail(lc, &err);
            continue;
        }
        lc->inflight = 1;
        active++;
    }
    while (active > 0 && idle < 10) {
        int n = epoll_wait(ep, ev, 64, 1000);

        idle = n == 0 ? idle + 1 : 0;
        for (int i = 0; i < n; i++) {
            struct load_client *lc = ev[i].data.ptr;

            /* The one reply in flight is whole on the socket soon after
             * its first byte: shoal_recv waits for the rest. */
            rc = shoal_recv(lc->c, &f, &err);
            if (rc == 0) {
                rc = load_client_frame(lc, &f, &err);
                shoal_frame_fini(&f);
            }
            rc = rc ? rc : shoal_flush(lc->c, &err);
            if (rc != 0) {
                load_client_fail(lc, &err);
            }
            if (rc != 0 || lc->inflight == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, shoal_fd(lc->c), NULL);
                active--;
            }
        }
    }
    if (active > 0) {
        snprintf(err.message, sizeof err.message, "no reply for 10 s");
        load_client_fail(&g->cl[0], &err);
    }
    if (ep >= 0) {
        close(ep);
    }
    return NULL;
}

/* Create the shared objects of reads and lists. */
static int
load_preload(struct shoal_client *c, struct load_run *run,
             struct bench_result *r)
{
    struct shoal_error err = {0};
    struct load_obj o;
    char name[128], group[16];
    int rc;

    run->n_ids = run->p->objects ? run->p->objects : 1;
    run->ids = calloc(run->n_ids, sizeof *run->ids);
    if (!run->ids) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < run->n_ids; i++) {
        if (run->p->raw) {
            run->ids[i] = strdup("echo-object-id-0123456789abc");
            continue;
        }
        snprintf(name, sizeof name, "%s-o%u", run->tag, i);
        snprintf(group, sizeof group, "g%u", i % LOAD_GROUPS);
        rc = load_create(c, run, name, group, &o, &err);
        if (rc != 0) {
            snprintf(r->note, sizeof r->note, "preload: %.200s", err.message);
            return rc;
        }
        run->ids[i] = o.id;
    }
    return 0;
}

/* The daemon's counters now; *have false when the target has none. */
static void
load_stats(struct shoal_client *c, struct shoal_stats_reply *st, bool *have)
{
    struct shoal_error err;

    memset(st, 0, sizeof *st);
    *have = *have && shoal_call(c, WIRE_MSG_STATS, NULL, st, &err) == 0;
}

/* Sleep until the monotonic time t. */
static void
load_sleep_until(uint64_t t)
{
    uint64_t now = bench_now_ns();

    if (t > now) {
        usleep((useconds_t)((t - now) / 1000));
    }
}

static void
load_clients_free(struct load_client *cl, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned s = 0; cl[i].objs && s < cl[i].run->p->depth; s++) {
            free(cl[i].objs[s].id);
        }
        free(cl[i].objs);
        free(cl[i].slots);
        shoal_close(cl[i].c);
        bench_result_fini(&cl[i].res);
    }
    free(cl);
}

/* Run the clients of a read/list/write/mixed run and merge their counts. */
static int
load_clients(struct load_run *run, struct shoal_client *ctl,
             struct bench_result *r)
{
    const struct bench_params *p = run->p;
    struct shoal_stats_reply s0, s1;
    struct load_client *cl;
    bool have = !p->raw;
    struct load_group *groups;
    pthread_attr_t attr;
    unsigned started = 0, n_groups;
    int rc = 0;

    /* Grouped only where one reply answers each request (see
     * load_group_main). */
    n_groups = p->threads && p->depth == 1 && p->workload != BENCH_W_LIST
                   ? (p->threads < p->clients ? p->threads : p->clients)
                   : 0;
    cl = calloc(p->clients, sizeof *cl);
    groups = calloc(n_groups ? n_groups : 1, sizeof *groups);
    if (!cl || !groups ||
        pthread_barrier_init(&run->start, NULL,
                             (n_groups ? n_groups : p->clients) + 1)) {
        free(cl);
        free(groups);
        return -ENOMEM;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (unsigned i = 0; i < p->clients; i++) {
        cl[i].run = run;
        cl[i].n = i;
        cl[i].rnd = 0x9e3779b97f4a7c15ull * (i + 1);
        cl[i].slots = calloc(p->depth, sizeof *cl[i].slots);
        cl[i].objs = calloc(p->depth, sizeof *cl[i].objs);
        if (!cl[i].slots || !cl[i].objs || bench_result_init(&cl[i].res) ||
            (!n_groups && pthread_create(&cl[i].thread, &attr,
                                         load_client_main, &cl[i]))) {
            fprintf(stderr, "shoal-bench: cannot start client %u\n", i);
            exit(BENCH_EXIT_FAIL);
        }
        started += !n_groups;
    }
    for (unsigned gi = 0, at = 0; gi < n_groups; gi++) {
        unsigned k = p->clients / n_groups + (gi < p->clients % n_groups);

        groups[gi] = (struct load_group){.run = run, .cl = cl + at, .n = k};
        at += k;
        if (pthread_create(&groups[gi].thread, &attr, load_group_main,
                           &groups[gi])) {
            fprintf(stderr, "shoal-bench: cannot start client thread\n");
            exit(BENCH_EXIT_FAIL);
        }
    }
    pthread_attr_destroy(&attr);
    pthread_barrier_wait(&run->start);
    run->t_warm = bench_now_ns() + (uint64_t)(p->warmup_s * 1e9);
    if (!p->ops) {
        atomic_store(&run->t_end,
                     run->t_warm + (uint64_t)(p->duration_s * 1e9));
    }
    load_sleep_until(run->t_warm);
    load_stats(ctl, &s0, &have);
    if (!p->ops) {
        load_sleep_until(atomic_load(&run->t_end));
        load_stats(ctl, &s1, &have);
    }
    for (unsigned gi = 0; gi < n_groups; gi++) {
        pthread_join(groups[gi].thread, NULL);
    }
    free(groups);
    for (unsigned i = 0; i < p->clients; i++) {
        if (i < started) {
            pthread_join(cl[i].thread, NULL);
        }
        bench_hist_merge(r->lat, cl[i].res.lat);
        r->ops += cl[i].res.ops;
        r->errors += cl[i].res.errors;
        for (unsigned k = 0; k < BENCH_N_CODES; k++) {
            r->codes[k] += cl[i].res.codes[k];
        }
        if (cl[i].note[0] && !r->note[0]) {
            snprintf(r->note, sizeof r->note, "%s", cl[i].note);
            rc = -SHOAL_UNAVAILABLE;
        }
    }
    if (p->ops) {
        load_stats(ctl, &s1, &have);
    }
    r->seconds = (double)(atomic_load(&run->t_end) - run->t_warm) / 1e9;
    r->have_stats = have;
    r->proposals = s1.proposals - s0.proposals;
    r->fsyncs = s1.fsyncs - s0.fsyncs;
    r->entries = s1.entries_written - s0.entries_written;
    pthread_barrier_destroy(&run->start);
    load_clients_free(cl, p->clients);
    return rc;
}

/* The watch workload's watchers: one thread per connection. */
struct watch_conn {
    struct load_run *run;
    pthread_t thread;
    struct shoal_client *c;
    unsigned streams;
    struct bench_hist *lat;
    uint64_t delivered;
    unsigned subscribed;   /* streams the server confirmed */
    struct wire_buf in;    /* bytes read, not yet a whole frame */
    int rc;
    char note[256];
};

/*
 * Find the first field with tag in the body of len bytes at p; set *v and
 * *n to its payload. Returns false when there is none or the body is cut.
 * A watch frame is scanned, not decoded: at 1,000 watchers × 1,000
 * events/s, decoding each event into structs (allocations, a copy of the
 * 200-byte value) costs the watcher threads more CPU than the manager
 * spends sending, and on 2 cores the harness would measure itself. The
 * e2e tests check that the frames decode.
 */
static bool
tlv_find(const uint8_t *p, size_t len, uint16_t tag, const uint8_t **v,
         size_t *n)
{
    size_t at = 0;

    while (len - at >= WIRE_FIELD_HDR_BYTES) {
        uint16_t t = (uint16_t)(p[at] << 8 | p[at + 1]);
        uint32_t fl = (uint32_t)p[at + 2] << 24 | (uint32_t)p[at + 3] << 16 |
                      (uint32_t)p[at + 4] << 8 | p[at + 5];

        at += WIRE_FIELD_HDR_BYTES;
        if (fl > len - at) {
            return false;
        }
        if (t == tag) {
            *v = p + at;
            *n = fl;
            return true;
        }
        at += fl;
    }
    return false;
}

/* The send time stamped in label "t" of the config of one event (the
 * body of a watch_event), or 0. */
static uint64_t
watch_event_stamp(const uint8_t *p, size_t len)
{
    static const uint16_t path[] = {2, 7, 3, 1}; /* object, config, spec,
                                                  * annotations */
    const uint8_t *kv;
    size_t n, kn;
    char num[24];

    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        if (!tlv_find(p, len, path[i], &p, &len)) {
            return 0;
        }
    }
    /* The labels: repeated tag 2 entries of key (1) and value (2). */
    while (tlv_find(p, len, 2, &kv, &n)) {
        const uint8_t *k, *val;

        if (tlv_find(kv, n, 1, &k, &kn) && kn == 1 && k[0] == 't' &&
            tlv_find(kv, n, 2, &val, &kn) && kn < sizeof num) {
            memcpy(num, val, kn);
            num[kn] = '\0';
            return strtoull(num, NULL, 10);
        }
        len -= (size_t)(kv + n - p);
        p = kv + n;
    }
    return 0;
}

/* Count the stamped events of one watch message body. */
static void
watch_frame(struct watch_conn *w, const uint8_t *p, size_t len)
{
    const uint8_t *ev;
    uint64_t now = bench_now_ns(), t0;
    size_t n;

    while (tlv_find(p, len, 1, &ev, &n)) {
        /* Events without a stamp (the creations before the run) are
         * not counted, nor those seen before the writer set t_warm. */
        t0 = watch_event_stamp(ev, n);
        if (t0 != 0 && t0 >= w->run->t_warm &&
            t0 <= atomic_load(&w->run->t_end)) {
            bench_hist_add(w->lat, now > t0 ? now - t0 : 0);
            w->delivered++;
        }
        len -= (size_t)(ev + n - p);
        p = ev + n;
    }
}

/*
 * Handle the whole frames at the start of w->in and keep the rest.
 * Returns 0, or -1 on a status frame (a stream refused or ended) or a
 * broken frame, with w->note set.
 */
static int
watch_frames(struct watch_conn *w)
{
    size_t at = 0;
    int rc = 0;

    while (rc == 0 && w->in.len - at >= WIRE_HDR_BYTES) {
        struct wire_hdr h;
        size_t total;

        if (wire_hdr_decode(&h, w->in.data + at, w->in.len - at) < 0) {
            snprintf(w->note, sizeof w->note, "watch: a broken frame");
            rc = -1;
            break;
        }
        total = (size_t)h.len + 4;
        if (w->in.len - at < total) {
            break;
        }
        if (h.type == (WIRE_MSG_WATCH | WIRE_REPLY) &&
            total == WIRE_HDR_BYTES) {
            w->subscribed++; /* the empty message that confirms a stream */
        } else if (h.type == (WIRE_MSG_WATCH | WIRE_REPLY)) {
            watch_frame(w, w->in.data + at + WIRE_HDR_BYTES,
                        total - WIRE_HDR_BYTES);
        } else if (h.type == WIRE_MSG_STATUS) {
            snprintf(w->note, sizeof w->note, "watch: stream %" PRIu64
                     " ended with a status frame", h.id);
            rc = -1;
        }
        at += total;
    }
    /* One move per read, not one per frame. */
    wire_buf_consume(&w->in, at);
    return rc;
}

/* Read what the socket has into w->in, waiting up to timeout_ms (-1: no
 * limit). Returns 0, or -1 when the connection ended or the wait timed
 * out. */
static int
watch_read(struct watch_conn *w, int fd, int timeout_ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    ssize_t n;

    if (wire_buf_reserve(&w->in, LOAD_WATCH_READ) != 0) {
        return -1;
    }
    for (;;) {
        n = recv(fd, w->in.data + w->in.len, w->in.cap - w->in.len, 0);
        if (n > 0) {
            w->in.len += (size_t)n;
            return 0;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            return -1;
        }
        if (errno == EAGAIN && poll(&pf, 1, timeout_ms) == 0) {
            return -1;
        }
    }
}

/*
 * One watcher connection: streams watches of the objects the writer
 * updates. libshoal makes the connection; the watch requests are then
 * sent and their frames read directly on its socket (the server sends
 * nothing unasked after the hello), because libshoal's receive path
 * moves the rest of its input buffer down after every frame it takes:
 * at a thousand frames per read that move, not the manager, was what the
 * run measured (callgrind: 96% of the harness's instructions).
 */
static void *
watch_conn_main(void *arg)
{
    struct watch_conn *w = arg;
    struct shoal_watch_selector sel = {0};
    struct shoal_watch_request req = {0};
    struct shoal_error err = {0};
    struct wire_buf out = {0};
    char prefix[128];
    size_t sent = 0;
    int fd = -1;

    snprintf(prefix, sizeof prefix, "%s-w", w->run->tag);
    sel.kind = SHOAL_KIND_CONFIG;
    sel.name_prefix = prefix;
    req.selectors = &sel;
    req.n_selectors = 1;
    w->rc = shoal_connect(&w->c, w->run->path, 10000, "shoal-bench", &err);
    if (w->rc != 0) {
        snprintf(w->note, sizeof w->note, "watch: %.200s", err.message);
    } else {
        fd = shoal_fd(w->c);
    }
    for (unsigned i = 0; w->rc == 0 && i < w->streams; i++) {
        w->rc = wire_frame_append(&out, WIRE_MSG_WATCH, 0, i + 1,
                                  &wire_type_watch_request, &req);
    }
    while (w->rc == 0 && sent < out.len) {
        ssize_t n = send(fd, out.data + sent, out.len - sent, MSG_NOSIGNAL);
        struct pollfd pf = {.fd = fd, .events = POLLOUT};

        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            poll(&pf, 1, 1000);
        } else if (!(n < 0 && errno == EINTR)) {
            snprintf(w->note, sizeof w->note, "watch: send failed");
            w->rc = -1;
        }
    }
    wire_buf_fini(&out);
    while (w->rc == 0 && w->subscribed < w->streams) {
        w->rc = watch_read(w, fd, 10000);
        if (w->rc != 0) {
            snprintf(w->note, sizeof w->note, "watch: no confirmation of "
                     "%u streams within 10 s", w->streams - w->subscribed);
        } else {
            w->rc = watch_frames(w);
        }
    }
    if (w->rc != 0) {
        atomic_store(&w->run->failed, 1);
    }
    pthread_barrier_wait(&w->run->start);
    /* Until the main thread shuts the socket down after the run. */
    while (w->rc == 0 && watch_read(w, fd, -1) == 0) {
        if (watch_frames(w) != 0) {
            atomic_store(&w->run->failed, 1);
            break;
        }
    }
    wire_buf_fini(&w->in);
    return NULL;
}

/* Send one paced update of object k, stamped with its send time. */
static int
watch_send(struct shoal_client *c, struct load_run *run,
           struct load_obj *o, unsigned k, struct load_slot *sl)
{
    struct shoal_update_config_request ur = {0};
    struct shoal_config_spec spec;
    struct shoal_error err;
    char name[128], t[32];
    int rc;

    snprintf(name, sizeof name, "%s-w%u", run->tag, k);
    sl->t0 = bench_now_ns();
    snprintf(t, sizeof t, "%" PRIu64, sl->t0);
    if (load_spec(&spec, name, run, "t", t) != 0) {
        return -SHOAL_RESOURCE_EXHAUSTED;
    }
    ur.id = o->id;
    ur.version = o->version;
    ur.spec = &spec;
    rc = shoal_send(c, WIRE_MSG_UPDATE_CONFIG, &ur, &sl->id, &err);
    rc = rc ? rc : shoal_flush(c, &err);
    load_spec_fini(&spec);
    sl->busy = rc == 0;
    return rc;
}

/* Receive one write acknowledgement and count it. */
static int
watch_ack(struct shoal_client *c, struct load_run *run, struct load_obj *o,
          struct load_slot *sl, struct bench_result *r)
{
    struct shoal_config cfg = {0};
    struct shoal_frame f = {0};
    struct shoal_error err;
    uint64_t now;
    unsigned k;
    int rc;

    rc = shoal_recv(c, &f, &err);
    if (rc != 0) {
        return rc;
    }
    now = bench_now_ns();
    for (k = 0; k < LOAD_WATCH_OBJS; k++) {
        if (sl[k].busy && sl[k].id == f.id) {
            break;
        }
    }
    if (k < LOAD_WATCH_OBJS) {
        rc = shoal_frame_decode(&f, WIRE_MSG_UPDATE_CONFIG, &cfg, &err);
        sl[k].busy = false;
        if (rc == 0) {
            o[k].version = cfg.meta.version;
            if (sl[k].t0 >= run->t_warm) {
                bench_hist_add(r->ack, now - sl[k].t0);
                r->writes++;
            }
        } else {
            r->errors++;
            r->codes[-rc < BENCH_N_CODES ? -rc : BENCH_N_CODES - 1]++;
        }
        wire_free(&wire_type_config, &cfg);
    }
    shoal_frame_fini(&f);
    return 0;
}

/* The writer of the watch workload: rate updates per second, paced. */
static int
watch_writer(struct shoal_client *c, struct load_run *run,
             struct bench_result *r)
{
    struct load_obj o[LOAD_WATCH_OBJS] = {{0}};
    struct load_slot sl[LOAD_WATCH_OBJS] = {{0}};
    struct shoal_error err;
    uint64_t step = 1000000000u / (run->p->rate ? run->p->rate : 1);
    uint64_t due, now, end;
    unsigned k, busy;
    struct pollfd pf = {.fd = shoal_fd(c), .events = POLLIN};
    char name[128];
    int rc = 0;

    for (k = 0; k < LOAD_WATCH_OBJS && rc == 0; k++) {
        snprintf(name, sizeof name, "%s-w%u", run->tag, k);
        rc = load_create(c, run, name, NULL, &o[k], &err);
    }
    pthread_barrier_wait(&run->start);
    due = bench_now_ns();
    run->t_warm = due + (uint64_t)(run->p->warmup_s * 1e9);
    end = run->t_warm + (uint64_t)(run->p->duration_s * 1e9);
    atomic_store(&run->t_end, end);
    while (rc == 0 && (now = bench_now_ns()) < end) {
        for (k = 0, busy = 0; k < LOAD_WATCH_OBJS; k++) {
            busy += sl[k].busy;
        }
        k = (unsigned)((due / step) % LOAD_WATCH_OBJS);
        if (now >= due && !sl[k].busy) {
            rc = watch_send(c, run, &o[k], k, &sl[k]);
            due += step;
        } else if (poll(&pf, 1, now >= due ? 1 : (int)((due - now) / 1000000))
                   > 0 || busy == LOAD_WATCH_OBJS) {
            rc = watch_ack(c, run, o, sl, r);
        }
    }
    for (k = 0; k < LOAD_WATCH_OBJS; k++) {
        while (rc == 0 && sl[k].busy) {
            rc = watch_ack(c, run, o, sl, r);
        }
        free(o[k].id);
    }
    return rc;
}

/* Run the watch workload: watchers over watch_conns connections. */
static int
load_watch(struct load_run *run, struct shoal_client *ctl,
           struct bench_result *r)
{
    const struct bench_params *p = run->p;
    unsigned nc = p->watch_conns ? p->watch_conns : 1;
    struct watch_conn *w;
    uint64_t deadline;
    int rc;

    nc = nc > p->watchers ? p->watchers : nc;
    w = calloc(nc, sizeof *w);
    if (!w || pthread_barrier_init(&run->start, NULL, nc + 1)) {
        free(w);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < nc; i++) {
        w[i].run = run;
        w[i].streams = p->watchers / nc + (i < p->watchers % nc);
        w[i].lat = calloc(1, sizeof *w[i].lat);
        if (!w[i].lat ||
            pthread_create(&w[i].thread, NULL, watch_conn_main, &w[i])) {
            fprintf(stderr, "shoal-bench: cannot start a watcher\n");
            exit(BENCH_EXIT_FAIL);
        }
    }
    rc = watch_writer(ctl, run, r);
    r->expected = r->writes * p->watchers;
    deadline = bench_now_ns() + 3000000000u;
    while (bench_now_ns() < deadline) {
        uint64_t got = 0;

        for (unsigned i = 0; i < nc; i++) {
            got += __atomic_load_n(&w[i].delivered, __ATOMIC_RELAXED);
        }
        if (got >= r->expected) {
            break;
        }
        usleep(10000);
    }
    for (unsigned i = 0; i < nc; i++) {
        if (w[i].c) {
            shutdown(shoal_fd(w[i].c), SHUT_RDWR);
        }
        pthread_join(w[i].thread, NULL);
        bench_hist_merge(r->lat, w[i].lat);
        r->delivered += w[i].delivered;
        if (w[i].note[0] && !r->note[0]) {
            snprintf(r->note, sizeof r->note, "%s", w[i].note);
            rc = -SHOAL_UNAVAILABLE;
        }
        shoal_close(w[i].c);
        free(w[i].lat);
    }
    r->ops = r->delivered;
    r->seconds = p->duration_s;
    pthread_barrier_destroy(&run->start);
    free(w);
    return rc;
}

int
bench_load_run(const char *path, const char *tag,
               const struct bench_params *p, struct bench_result *r)
{
    struct load_run run = {.p = p, .path = path, .tag = tag};
    struct shoal_client *ctl = NULL;
    struct shoal_error err = {0};
    int rc;

    atomic_init(&run.t_end, UINT64_MAX);
    atomic_init(&run.done, 0);
    atomic_init(&run.failed, 0);
    run.value = malloc(p->value_bytes + 1);
    if (!run.value) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < p->value_bytes; i++) {
        run.value[i] = (uint8_t)('a' + i % 26);
    }
    rc = shoal_connect(&ctl, path, 10000, "shoal-bench", &err);
    if (rc != 0) {
        snprintf(r->note, sizeof r->note, "connect %.100s: %.140s", path,
                 err.message);
        goto out_value;
    }
    if (p->workload == BENCH_W_WATCH) {
        rc = p->raw ? -SHOAL_UNIMPLEMENTED : load_watch(&run, ctl, r);
        goto out_close;
    }
    rc = load_preload(ctl, &run, r);
    if (rc == 0) {
        rc = load_clients(&run, ctl, r);
    }
    for (unsigned i = 0; run.ids && i < run.n_ids; i++) {
        free(run.ids[i]);
    }
    free(run.ids);
out_close:
    shoal_close(ctl);
out_value:
    free(run.value);
    return rc;
}
