/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/main.c: shoal-bench's command line, the order of runs and
 * the reports (a table for people, JSON for the suite).
 *
 * One or two targets. With two, their runs alternate (A B A B ...) for
 * --rounds rounds at each client count, and the ratio of A's throughput
 * to B's is taken round by round; the median of those ratios is what is
 * reported, so that drift of a noisy machine cancels out.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "shoal/client.h"

#define MAX_TARGETS 2
#define MAX_CLIENT_COUNTS 16
#define MAX_ETCD 7

enum target_kind { T_SHOAL, T_ECHO, T_ETCD };

/* A target inside the --cluster managers: none, the leader, a follower. */
enum target_role { R_NONE, R_LEADER, R_FOLLOWER };

struct target {
    enum target_kind kind;
    char name[64];
    char socket[4096]; /* shoal, echo */
    bool spawn;        /* shoal: start a shoald */
    enum target_role role; /* shoal: a manager of --cluster */
    char endpoints[1024];
    unsigned etcd_n; /* start this many members; 0: use endpoints */
    char etcd_dir[2048]; /* where they were started */
    unsigned etcd_base;  /* their first client port */
    struct bench_proc procs[MAX_ETCD];
    char version[64];
};

struct opts {
    struct target t[MAX_TARGETS];
    unsigned n_t;
    struct bench_params p;
    unsigned clients[MAX_CLIENT_COUNTS];
    unsigned n_clients;
    unsigned rounds;
    unsigned cluster;
    struct bench_cluster *cl; /* started; NULL before */
    enum bench_workload forward_op;
    uint64_t rtt_ns; /* forward: loopback round trip */
    const char *shoald;
    const char *state_dir;
    const char *driver;
    const char *json;
    unsigned etcd_conns;
    unsigned etcd_port;
    unsigned etcd_heartbeat_ms;
    unsigned etcd_election_ms;
    double fsync_s;
    bool keep;
};

/* One measured run, as reported. */
struct run {
    unsigned target;
    unsigned clients;
    unsigned round;
    struct bench_result r;
    int rc;
};

static const char usage_text[] =
    "usage: shoal-bench TARGET [TARGET] [options]\n"
    "\n"
    "Load a target with a workload and report throughput and latency.\n"
    "With two targets, runs alternate A B A B for --rounds rounds and the\n"
    "median of the per-round throughput ratios A/B is reported.\n"
    "\n"
    "Targets:\n"
    "      --socket PATH        a running shoald's control socket\n"
    "      --spawn              start a shoald in a temporary directory\n"
    "                           and stop it after (see --shoald)\n"
    "      --echo               the built-in echo server: the machine's\n"
    "                           request/response limit on a Unix socket\n"
    "      --etcd ENDPOINTS     a running etcd (client URLs, comma-"
    "separated)\n"
    "      --etcd-cluster N     start N etcd members on 127.0.0.1 with\n"
    "                           etcd's defaults and stop them after\n"
    "      --cluster N          start N shoal managers (1..9) on 127.0.0.1\n"
    "                           in a temporary directory (each with its\n"
    "                           state and socket; peers on free ports), wait\n"
    "                           until all vote, load the leader's socket and\n"
    "                           stop them all after (also on Ctrl-C)\n"
    "\n"
    "Workload:\n"
    "  -w, --workload NAME      read (get one config by id), list (list\n"
    "                           configs with a label filter), write (update\n"
    "                           a config by version), mixed, watch (W\n"
    "                           watchers, publish-to-delivery latency),\n"
    "                           forward (with --cluster: --forward-op through\n"
    "                           a follower's socket and the leader's,\n"
    "                           interleaved; ratio follower/leader pair by\n"
    "                           pair, and the loopback round trip),\n"
    "                           failover (with --cluster 3 or more: C\n"
    "                           clients create configs through every\n"
    "                           manager round-robin, reconnecting; the\n"
    "                           leader is killed with SIGKILL after the\n"
    "                           warm-up; time from the kill to the first\n"
    "                           acknowledged write sent after it, failed\n"
    "                           writes by status, then every acknowledged\n"
    "                           write read back by id through the new\n"
    "                           leader; the killed manager is restarted\n"
    "                           between rounds; with --etcd-cluster 3 the\n"
    "                           same for etcd, interleaved: keys put through\n"
    "                           every member, read back through survivors)\n"
    "                           (default read)\n"
    "      --forward-op OP      forward: read, write, list or mixed (default\n"
    "                           read)\n"
    "  -c, --clients LIST       clients (connections), e.g. 16 or 1,16,64\n"
    "                           (default 16)\n"
    "  -d, --depth D            requests in flight per client (default 1;\n"
    "                           etcd: always 1, as etcd's benchmark tool)\n"
    "      --client-threads T   shoal and echo, depth 1, not list: the\n"
    "                           clients share T threads that wait on their\n"
    "                           connections with epoll (as the etcd driver's\n"
    "                           goroutines share Go's threads); default 0:\n"
    "                           one thread per client\n"
    "  -t, --duration SEC       measured seconds (default 5)\n"
    "  -n, --ops N              measure N operations instead of a duration\n"
    "      --warmup SEC         unmeasured seconds before (default 1)\n"
    "      --value-bytes N      bytes of each config or value (default 200)\n"
    "      --objects N          objects read and listed (default 100)\n"
    "      --read-ratio F       mixed: share of reads, 0..1 (default 0.9)\n"
    "      --watchers W         watch: watchers (default 1000)\n"
    "      --watch-conns K      watch: connections they share (default 50)\n"
    "      --rate R             watch: writes per second (default 1000)\n"
    "      --rounds R           rounds per client count (default 1, or 3\n"
    "                           with two targets and for failover)\n"
    "\n"
    "Processes and files:\n"
    "      --shoald PATH        shoald to --spawn or --cluster (default:\n"
    "                           beside shoal-bench)\n"
    "      --etcd-driver PATH   the Go driver (default: shoal-bench-etcd\n"
    "                           beside shoal-bench)\n"
    "      --etcd-conns K       gRPC connections the etcd clients share\n"
    "                           (default 100, at most the clients)\n"
    "      --etcd-port P        first client port of started members\n"
    "                           (default 23790; member i uses P + 10 i)\n"
    "      --etcd-heartbeat-ms MS, --etcd-election-ms MS\n"
    "                           timeouts of started members (default "
    "etcd's;\n"
    "                           shoal's own: 50 and 500, as etcd draws its\n"
    "                           timeout in [MS, 2 MS) and shoal in 0.5-1 s)\n"
    "      --state-dir DIR      where the run's temporary directory is made\n"
    "                           (default $TMPDIR, else /var/tmp); the\n"
    "                           fdatasync probe runs there\n"
    "      --fsync-probe SEC    measure fdatasync there first (default 2;\n"
    "                           0: skip)\n"
    "      --keep               keep the temporary directory\n"
    "\n"
    "Output:\n"
    "      --json FILE          every figure, the command line, the machine\n"
    "                           and the versions, as JSON\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 all runs done, 1 a run or a target failed (for\n"
    "failover: also a lost acknowledged write), 2 usage, 130 interrupted.\n";

static void
usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "shoal-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'shoal-bench --help'.\n");
    exit(BENCH_EXIT_USAGE);
}

static unsigned
parse_uint(const char *s, const char *what, unsigned min, unsigned max)
{
    unsigned long v;
    char *end;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max) {
        usage_error("bad value for %s", what);
    }
    return (unsigned)v;
}

static double
parse_double(const char *s, const char *what, double min, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        usage_error("bad value for %s", what);
    }
    return v;
}

static struct target *
add_target(struct opts *o, enum target_kind kind, const char *name)
{
    struct target *t;

    if (o->n_t == MAX_TARGETS) {
        usage_error("at most two targets%s", "");
    }
    t = &o->t[o->n_t++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    snprintf(t->name, sizeof t->name, "%s", name);
    for (unsigned i = 0; i < MAX_ETCD; i++) {
        t->procs[i].pid = -1;
    }
    return t;
}

static enum bench_workload
parse_workload(const char *s)
{
    static const char *const names[] = {"read",  "list",    "write",
                                        "mixed", "watch",   "forward",
                                        "failover"};

    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            return (enum bench_workload)i;
        }
    }
    usage_error("unknown workload '%s'", s);
    return BENCH_W_READ;
}

const char *
bench_workload_name(enum bench_workload w)
{
    static const char *const names[] = {"read",  "list",    "write",
                                        "mixed", "watch",   "forward",
                                        "failover"};

    return names[w];
}

static void
parse_clients(struct opts *o, const char *arg)
{
    /* A copy: strtok_r would cut argv, which the JSON report quotes. */
    static char buf[1024];
    char *save = NULL, *tok, *s = buf;

    snprintf(buf, sizeof buf, "%s", arg);
    o->n_clients = 0;
    for (tok = strtok_r(s, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->n_clients == MAX_CLIENT_COUNTS) {
            usage_error("too many client counts%s", "");
        }
        o->clients[o->n_clients++] = parse_uint(tok, "--clients", 1, 20000);
    }
    if (o->n_clients == 0) {
        usage_error("bad value for %s", "--clients");
    }
}

enum {
    O_SOCKET = 256, O_SPAWN, O_ECHO, O_ETCD, O_ETCD_CLUSTER, O_CLUSTER,
    O_WARMUP, O_VALUE, O_OBJECTS, O_RATIO, O_WATCHERS, O_WCONNS, O_RATE,
    O_ROUNDS, O_SHOALD, O_DRIVER, O_ECONNS, O_EPORT, O_EHB, O_EEL,
    O_STATE, O_FSYNC, O_KEEP, O_JSON, O_FWD_OP, O_THREADS,
};

static const struct option longs[] = {
    {"socket", required_argument, NULL, O_SOCKET},
    {"spawn", no_argument, NULL, O_SPAWN},
    {"echo", no_argument, NULL, O_ECHO},
    {"etcd", required_argument, NULL, O_ETCD},
    {"etcd-cluster", required_argument, NULL, O_ETCD_CLUSTER},
    {"cluster", required_argument, NULL, O_CLUSTER},
    {"workload", required_argument, NULL, 'w'},
    {"clients", required_argument, NULL, 'c'},
    {"depth", required_argument, NULL, 'd'},
    {"duration", required_argument, NULL, 't'},
    {"ops", required_argument, NULL, 'n'},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"value-bytes", required_argument, NULL, O_VALUE},
    {"objects", required_argument, NULL, O_OBJECTS},
    {"read-ratio", required_argument, NULL, O_RATIO},
    {"watchers", required_argument, NULL, O_WATCHERS},
    {"watch-conns", required_argument, NULL, O_WCONNS},
    {"rate", required_argument, NULL, O_RATE},
    {"rounds", required_argument, NULL, O_ROUNDS},
    {"shoald", required_argument, NULL, O_SHOALD},
    {"etcd-driver", required_argument, NULL, O_DRIVER},
    {"etcd-conns", required_argument, NULL, O_ECONNS},
    {"etcd-port", required_argument, NULL, O_EPORT},
    {"etcd-heartbeat-ms", required_argument, NULL, O_EHB},
    {"etcd-election-ms", required_argument, NULL, O_EEL},
    {"state-dir", required_argument, NULL, O_STATE},
    {"fsync-probe", required_argument, NULL, O_FSYNC},
    {"keep", no_argument, NULL, O_KEEP},
    {"json", required_argument, NULL, O_JSON},
    {"forward-op", required_argument, NULL, O_FWD_OP},
    {"client-threads", required_argument, NULL, O_THREADS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Options of the workload's shape; returns false for other options. */
static bool
parse_shape(struct opts *o, int ch, char *arg)
{
    struct bench_params *p = &o->p;

    switch (ch) {
    case 'w':
        p->workload = parse_workload(arg);
        return true;
    case 'c':
        parse_clients(o, arg);
        return true;
    case 'd':
        p->depth = parse_uint(arg, "--depth", 1, 4096);
        return true;
    case 't':
        p->duration_s = parse_double(arg, "--duration", 0.01, 86400);
        return true;
    case 'n':
        p->ops = parse_uint(arg, "--ops", 1, UINT_MAX);
        return true;
    case O_WARMUP:
        p->warmup_s = parse_double(arg, "--warmup", 0, 3600);
        return true;
    case O_VALUE:
        p->value_bytes = parse_uint(arg, "--value-bytes", 0, 1 << 20);
        return true;
    case O_OBJECTS:
        p->objects = parse_uint(arg, "--objects", 1, 1000000);
        return true;
    case O_RATIO:
        p->read_ratio = parse_double(arg, "--read-ratio", 0, 1);
        return true;
    case O_WATCHERS:
        p->watchers = parse_uint(arg, "--watchers", 1, 100000);
        return true;
    case O_WCONNS:
        p->watch_conns = parse_uint(arg, "--watch-conns", 1, 10000);
        return true;
    case O_RATE:
        p->rate = parse_uint(arg, "--rate", 1, 1000000);
        return true;
    case O_THREADS:
        p->threads = parse_uint(arg, "--client-threads", 0, 20000);
        return true;
    default:
        return false;
    }
}

/* Options of targets, processes and output. */
static void
parse_other(struct opts *o, int ch, char *arg)
{
    struct target *t;

    switch (ch) {
    case O_SOCKET:
        t = add_target(o, T_SHOAL, "shoal");
        snprintf(t->socket, sizeof t->socket, "%s", arg);
        break;
    case O_SPAWN:
        add_target(o, T_SHOAL, "shoal")->spawn = true;
        break;
    case O_ECHO:
        add_target(o, T_ECHO, "echo");
        break;
    case O_ETCD:
        t = add_target(o, T_ETCD, "etcd");
        snprintf(t->endpoints, sizeof t->endpoints, "%s", arg);
        break;
    case O_ETCD_CLUSTER:
        t = add_target(o, T_ETCD, "etcd");
        t->etcd_n = parse_uint(arg, "--etcd-cluster", 1, MAX_ETCD);
        snprintf(t->name, sizeof t->name, "etcd-%u", t->etcd_n);
        break;
    case O_CLUSTER:
        if (o->cluster) {
            usage_error("%s", "--cluster given twice");
        }
        o->cluster = parse_uint(arg, "--cluster", 1, BENCH_MAX_MANAGERS);
        snprintf(add_target(o, T_SHOAL, "")->name, sizeof o->t[0].name,
                 "shoal-%u", o->cluster);
        o->t[o->n_t - 1].role = R_LEADER;
        break;
    case O_FWD_OP:
        o->forward_op = parse_workload(arg);
        if (o->forward_op > BENCH_W_MIXED || o->forward_op == BENCH_W_WATCH) {
            usage_error("bad value for %s", "--forward-op");
        }
        break;
    case O_ROUNDS:
        o->rounds = parse_uint(arg, "--rounds", 1, 1000);
        break;
    case O_SHOALD:
        o->shoald = arg;
        break;
    case O_DRIVER:
        o->driver = arg;
        break;
    case O_ECONNS:
        o->etcd_conns = parse_uint(arg, "--etcd-conns", 1, 10000);
        break;
    case O_EPORT:
        o->etcd_port = parse_uint(arg, "--etcd-port", 1024, 65000);
        break;
    case O_EHB:
        o->etcd_heartbeat_ms = parse_uint(arg, "--etcd-heartbeat-ms", 1,
                                          60000);
        break;
    case O_EEL:
        o->etcd_election_ms = parse_uint(arg, "--etcd-election-ms", 1,
                                         600000);
        break;
    case O_STATE:
        o->state_dir = arg;
        break;
    case O_FSYNC:
        o->fsync_s = parse_double(arg, "--fsync-probe", 0, 600);
        break;
    case O_KEEP:
        o->keep = true;
        break;
    case O_JSON:
        o->json = arg;
        break;
    default:
        usage_error("%s", "unknown option");
    }
}

/*
 * forward and failover need --cluster and no other target. forward makes
 * the cluster's target two: a follower (A) and the leader (B), so that
 * the A/B ratio is the follower's share of the leader's figure.
 */
static void
check_cluster(struct opts *o)
{
    enum bench_workload w = o->p.workload;
    struct target *t;

    if (w != BENCH_W_FORWARD && w != BENCH_W_FAILOVER) {
        return;
    }
    if (w == BENCH_W_FAILOVER) {
        for (unsigned i = 0; i < o->n_t; i++) {
            unsigned n = o->t[i].role != R_NONE ? o->cluster
                                                : o->t[i].etcd_n;

            if (n < 3) {
                usage_error("%s", "failover needs --cluster 3 or more, "
                                  "or --etcd-cluster 3 or more (a "
                                  "majority must survive the kill)");
            }
        }
        return;
    }
    if (!o->cluster || o->n_t != 1) {
        usage_error("workload %s needs --cluster N and no other target",
                    bench_workload_name(w));
    }
    if (o->cluster < 2) {
        usage_error("%s", "forward needs --cluster 2 or more");
    }
    snprintf(o->t[0].name, sizeof o->t[0].name, "follower");
    o->t[0].role = R_FOLLOWER;
    t = add_target(o, T_SHOAL, "leader");
    t->role = R_LEADER;
}

static void
parse_args(struct opts *o, int argc, char **argv)
{
    int ch;

    opterr = 0;
    while ((ch = getopt_long(argc, argv, "w:c:d:t:n:h", longs, NULL)) !=
           -1) {
        if (ch == 'h') {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (ch == '?') {
            usage_error("bad option '%s'", argv[optind - 1]);
        }
        if (!parse_shape(o, ch, optarg)) {
            parse_other(o, ch, optarg);
        }
    }
    if (optind < argc) {
        usage_error("unexpected argument '%s'", argv[optind]);
    }
    if (o->n_t == 0) {
        usage_error("%s", "no target: give --socket, --spawn, --echo, "
                          "--etcd, --etcd-cluster or --cluster");
    }
    check_cluster(o);
    if (!o->rounds) {
        o->rounds = o->n_t == 2 || o->p.workload == BENCH_W_FAILOVER ? 3
                                                                     : 1;
    }
}

/* A program beside this one, when not named. */
static void
beside_self(char *out, size_t cap, const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash;

    self[n > 0 ? n : 0] = '\0';
    slash = strrchr(self, '/');
    if (slash) {
        slash[1] = '\0';
    }
    snprintf(out, cap, "%s%s", self, name);
}

/* The server version that a shoal target says in its hello. */
static void
shoal_version(struct target *t)
{
    struct shoal_client *c = NULL;

    snprintf(t->version, sizeof t->version, "unknown");
    if (shoal_connect(&c, t->socket, 5000, "shoal-bench", NULL) == 0) {
        snprintf(t->version, sizeof t->version, "%s",
                 shoal_server_hello(c)->server_version
                     ? shoal_server_hello(c)->server_version
                     : "unknown");
    }
    shoal_close(c);
}

/*
 * A target among the --cluster managers: the first such target starts
 * them all (in sub) and every one takes the socket of its role.
 */
static int
cluster_target_start(struct opts *o, struct target *t, const char *sub)
{
    char bin[PATH_MAX];
    int leader, rc;

    if (!o->cl) {
        if (o->shoald) {
            snprintf(bin, sizeof bin, "%s", o->shoald);
        } else {
            beside_self(bin, sizeof bin, "shoald");
        }
        o->cl = calloc(1, sizeof *o->cl);
        if (!o->cl) {
            return -ENOMEM;
        }
        rc = bench_cluster_start(o->cl, bin, sub, o->cluster);
        if (rc != 0) {
            free(o->cl);
            o->cl = NULL;
            return rc;
        }
    }
    leader = bench_cluster_leader(o->cl, -1, 30000);
    if (leader < 0) {
        return leader;
    }
    snprintf(t->socket, sizeof t->socket, "%s",
             o->cl->sock[t->role == R_LEADER
                             ? (unsigned)leader
                             : ((unsigned)leader + 1) % o->cl->n]);
    printf("%s: %u managers, leader m%d, %s uses %s\n", t->name,
           o->cl->n, leader + 1, t->name, t->socket);
    return 0;
}

static int
target_start(struct opts *o, struct target *t, const char *dir,
             unsigned idx)
{
    char bin[PATH_MAX], sub[2048];
    int rc = 0;

    snprintf(sub, sizeof sub, "%s/t%u", dir, idx);
    if (mkdir(sub, 0700) != 0) {
        return -errno;
    }
    if (t->role != R_NONE) {
        rc = cluster_target_start(o, t, sub);
    } else if (t->kind == T_SHOAL && t->spawn) {
        if (o->shoald) {
            snprintf(bin, sizeof bin, "%s", o->shoald);
        } else {
            beside_self(bin, sizeof bin, "shoald");
        }
        snprintf(t->socket, sizeof t->socket, "%s/control.sock", sub);
        rc = bench_spawn_shoald(&t->procs[0], bin, sub);
    } else if (t->kind == T_ECHO) {
        snprintf(t->socket, sizeof t->socket, "%s/echo.sock", sub);
        rc = bench_spawn_echo(&t->procs[0], t->socket);
        snprintf(t->version, sizeof t->version, "builtin");
    } else if (t->kind == T_ETCD && t->etcd_n) {
        snprintf(t->etcd_dir, sizeof t->etcd_dir, "%s", sub);
        t->etcd_base = o->etcd_port + 100 * idx;
        rc = bench_spawn_etcd(t->procs, t->etcd_n, sub,
                              o->etcd_port + 100 * idx, o->etcd_heartbeat_ms,
                              o->etcd_election_ms, t->endpoints,
                              sizeof t->endpoints);
    }
    if (rc == 0 && t->kind == T_SHOAL) {
        shoal_version(t);
    }
    return rc;
}

static void
target_stop(struct opts *o, struct target *t)
{
    if (t->role != R_NONE && o->cl) {
        bench_cluster_stop(o->cl);
        free(o->cl);
        o->cl = NULL;
    }
    for (unsigned i = 0; i < MAX_ETCD; i++) {
        bench_proc_stop(&t->procs[i]);
    }
}

/* One failover round of started etcd members; restarts the killed one. */
static int
etcd_failover(struct opts *o, struct target *t, const char *driver,
              const struct bench_params *p, struct run *ru, unsigned seq)
{
    char pids[256] = "", tag[64];
    size_t used = 0;
    unsigned k;
    int rc, rc2;

    for (unsigned i = 0; i < t->etcd_n; i++) {
        used += (size_t)snprintf(pids + used, sizeof pids - used, "%s%d",
                                 i ? "," : "", (int)t->procs[i].pid);
    }
    snprintf(tag, sizeof tag, "b%d-r%u", (int)getpid(), seq);
    rc = bench_etcd_failover(driver, t->endpoints, o->etcd_conns, p, pids,
                             tag, &ru->r, t->version, sizeof t->version);
    k = ru->r.killed;
    if (k < 1 || k > t->etcd_n) {
        return rc ? rc : -EIO;
    }
    /* The driver killed it: reap it, then start it again for the next
     * round, as the shoal rounds do. */
    bench_proc_kill(&t->procs[k - 1]);
    rc2 = bench_etcd_restart(t->procs, k - 1, t->etcd_n, t->etcd_dir,
                             t->etcd_base, o->etcd_heartbeat_ms,
                             o->etcd_election_ms);
    if (rc2 != 0 && !ru->r.note[0]) {
        snprintf(ru->r.note, sizeof ru->r.note, "etcd member %u did not "
                 "come back within 30 s", k - 1);
    }
    return rc ? rc : rc2;
}

static int
run_one(struct opts *o, struct target *t, struct run *ru, unsigned seq)
{
    struct bench_params p = o->p;
    char tag[64], driver[PATH_MAX];

    p.clients = ru->clients;
    if (bench_result_init(&ru->r) != 0) {
        return -ENOMEM;
    }
    if (t->kind == T_ETCD) {
        if (o->driver) {
            snprintf(driver, sizeof driver, "%s", o->driver);
        } else {
            beside_self(driver, sizeof driver, "shoal-bench-etcd");
        }
        p.depth = 1;
        if (p.workload == BENCH_W_FAILOVER) {
            return etcd_failover(o, t, driver, &p, ru, seq);
        }
        return bench_etcd_run(driver, t->endpoints, o->etcd_conns, &p,
                              &ru->r, t->version, sizeof t->version);
    }
    p.raw = t->kind == T_ECHO;
    snprintf(tag, sizeof tag, "b%d-r%u", (int)getpid(), seq);
    if (p.workload == BENCH_W_FAILOVER) {
        return bench_failover_run(o->cl, tag, &p, &ru->r);
    }
    if (p.workload == BENCH_W_FORWARD) {
        p.workload = o->forward_op;
    }
    return bench_load_run(t->socket, tag, &p, &ru->r);
}

static double
throughput(const struct run *ru)
{
    const struct bench_result *r = &ru->r;

    if (ru->rc != 0 || r->seconds <= 0) {
        return 0;
    }
    return (double)(r->ops - r->errors) / r->seconds;
}

static void
print_header(void)
{
    printf("%-10s %-7s %7s %5s %5s %11s %9s %9s %9s %9s %9s %7s\n",
           "target", "load", "clients", "depth", "round", "ops/s", "p50 us",
           "p90 us", "p99 us", "p99.9 us", "max us", "errors");
}

static void
print_run(const struct opts *o, const struct run *ru)
{
    const struct bench_result *r = &ru->r;
    const struct target *t = &o->t[ru->target];

    printf("%-10s %-7s %7u %5u %5u %11.0f %9.1f %9.1f %9.1f %9.1f %9.1f "
           "%7llu%s%s\n",
           t->name, bench_workload_name(o->p.workload),
           o->p.workload == BENCH_W_WATCH ? o->p.watchers : ru->clients,
           t->kind == T_ETCD ? 1 : o->p.depth, ru->round, throughput(ru),
           (double)bench_hist_quantile(r->lat, 0.5) / 1e3,
           (double)bench_hist_quantile(r->lat, 0.9) / 1e3,
           (double)bench_hist_quantile(r->lat, 0.99) / 1e3,
           (double)bench_hist_quantile(r->lat, 0.999) / 1e3,
           (double)r->lat->max_ns / 1e3, (unsigned long long)r->errors,
           r->note[0] ? "  " : "", r->note);
    if (o->p.workload == BENCH_W_WATCH) {
        printf("%-10s watch: %llu writes acked (p99 %.1f us), %llu of %llu "
               "events delivered\n",
               t->name, (unsigned long long)r->writes,
               (double)bench_hist_quantile(r->ack, 0.99) / 1e3,
               (unsigned long long)r->delivered,
               (unsigned long long)r->expected);
    }
    if (r->failover) {
        char el[64] = "";

        if (r->elected_s >= 0) {
            snprintf(el, sizeof el, " (a new leader named after %.1f ms)",
                     r->elected_s * 1e3);
        }
        printf("%-10s failover: killed m%u (the leader); unavailable %.1f "
               "ms%s; %llu writes acknowledged, %llu failed; lost "
               "acknowledged writes: %llu\n",
               t->name, r->killed, r->unavail_s * 1e3, el,
               (unsigned long long)r->acked, (unsigned long long)r->errors,
               (unsigned long long)r->lost);
    }
    if (r->have_stats && r->fsyncs) {
        printf("%-10s daemon: %llu proposals, %llu fdatasyncs, %.1f writes "
               "per fdatasync\n",
               t->name, (unsigned long long)r->proposals,
               (unsigned long long)r->fsyncs,
               (double)r->proposals / (double)r->fsyncs);
    }
    fflush(stdout);
}

static json_t *
json_hist(const struct bench_hist *h)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    static const char *const names[] = {"p50", "p90", "p99", "p99_9"};
    json_t *j = json_object(), *cdf = json_array();

    for (unsigned i = 0; i < 4; i++) {
        json_object_set_new(j, names[i],
                            json_real((double)bench_hist_quantile(h, qs[i]) /
                                      1e3));
    }
    json_object_set_new(j, "max", json_real((double)h->max_ns / 1e3));
    json_object_set_new(j, "mean", json_real(h->count ? h->sum_ns /
                                                           (double)h->count /
                                                           1e3
                                                      : 0));
    json_object_set_new(j, "count", json_integer((json_int_t)h->count));
    /* The CDF at 1% steps and in the tail, for the plots. */
    for (unsigned i = 1; h->count && i <= 104; i++) {
        double q = i <= 99 ? i / 100.0
                           : 1 - 1 / (100.0 * (double)(1u << (2 * (i - 99))));

        if (i == 104) {
            q = 1;
        }
        json_array_append_new(
            cdf, json_pack("[f,f]", (double)bench_hist_quantile(h, q) / 1e3,
                           q));
    }
    json_object_set_new(j, "cdf", cdf);
    return j;
}

static json_t *
json_run(const struct opts *o, const struct run *ru)
{
    const struct bench_result *r = &ru->r;
    const struct target *t = &o->t[ru->target];
    json_t *j, *codes = json_object();

    for (int k = 0; k < BENCH_N_CODES; k++) {
        if (r->codes[k]) {
            json_object_set_new(
                codes, k < BENCH_N_CODES - 1 ? shoal_status_name(k) : "other",
                json_integer((json_int_t)r->codes[k]));
        }
    }
    j = json_pack("{s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:f,s:f,s:o,s:o,s:b}",
                  "target", t->name, "workload",
                  bench_workload_name(o->p.workload), "clients",
                  (int)ru->clients, "depth",
                  t->kind == T_ETCD ? 1 : (int)o->p.depth, "round",
                  (int)ru->round, "ops", (json_int_t)r->ops, "errors",
                  (json_int_t)r->errors, "seconds", r->seconds,
                  "throughput", throughput(ru), "codes", codes, "latency_us",
                  json_hist(r->lat), "ok", ru->rc == 0);
    if (o->p.workload == BENCH_W_WATCH) {
        json_object_set_new(j, "watch",
                            json_pack("{s:i,s:i,s:I,s:I,s:I,s:o}", "watchers",
                                      (int)o->p.watchers, "rate",
                                      (int)o->p.rate, "writes",
                                      (json_int_t)r->writes, "delivered",
                                      (json_int_t)r->delivered, "expected",
                                      (json_int_t)r->expected, "ack_us",
                                      json_hist(r->ack)));
    }
    if (r->have_stats) {
        json_object_set_new(
            j, "daemon",
            json_pack("{s:I,s:I,s:I,s:f}", "proposals",
                      (json_int_t)r->proposals, "fsyncs",
                      (json_int_t)r->fsyncs, "entries",
                      (json_int_t)r->entries, "writes_per_fsync",
                      r->fsyncs ? (double)r->proposals / (double)r->fsyncs
                                : 0.0));
    }
    if (r->failover) {
        json_object_set_new(
            j, "failover",
            json_pack("{s:i,s:f,s:f,s:I,s:I,s:I}", "killed",
                      (int)r->killed, "unavailable_ms", r->unavail_s * 1e3,
                      "elected_ms", r->elected_s * 1e3, "acked",
                      (json_int_t)r->acked, "failed", (json_int_t)r->errors,
                      "lost", (json_int_t)r->lost));
    }
    if (r->note[0]) {
        json_object_set_new(j, "note", json_string(r->note));
    }
    return j;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Pairwise ratios A/B at each client count; printed and returned. */
static json_t *
ratios(const struct opts *o, const struct run *runs, unsigned n_runs,
       bool print)
{
    json_t *all = json_array();
    double *r = calloc(o->rounds, sizeof *r);
    double *d = calloc(o->rounds, sizeof *d);

    for (unsigned ci = 0; r && d && o->n_t == 2 && ci < o->n_clients;
         ci++) {
        json_t *pairs = json_array(), *diffs = json_array(), *one;
        double dmed;
        unsigned n = 0;

        for (unsigned i = 0; i + 1 < n_runs; i++) {
            if (runs[i].clients == o->clients[ci] && runs[i].target == 0 &&
                runs[i + 1].target == 1 && throughput(&runs[i + 1]) > 0) {
                r[n] = throughput(&runs[i]) / throughput(&runs[i + 1]);
                /* The latency A costs over B, in the same pair. */
                d[n] = ((double)bench_hist_quantile(runs[i].r.lat, 0.5) -
                        (double)bench_hist_quantile(runs[i + 1].r.lat,
                                                    0.5)) /
                       1e3;
                json_array_append_new(pairs, json_real(r[n]));
                json_array_append_new(diffs, json_real(d[n]));
                n++;
            }
        }
        qsort(r, n, sizeof *r, cmp_double);
        qsort(d, n, sizeof *d, cmp_double);
        dmed = n ? (n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2) : 0;
        if (n && print) {
            printf("ratio %s/%s, %u clients: median %.3f over %u pairs; "
                   "p50 latency %s minus %s: median %.1f us\n",
                   o->t[0].name, o->t[1].name, o->clients[ci],
                   n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2, n,
                   o->t[0].name, o->t[1].name, dmed);
        }
        one = json_pack("{s:s,s:s,s:i,s:o,s:f,s:o,s:f}", "a", o->t[0].name,
                        "b", o->t[1].name, "clients", (int)o->clients[ci],
                        "pairs", pairs, "median",
                        n ? (n % 2 ? r[n / 2]
                                   : (r[n / 2 - 1] + r[n / 2]) / 2)
                          : 0.0,
                        "p50_diff_us", diffs, "p50_diff_median_us", dmed);
        if (o->rtt_ns) {
            json_object_set_new(one, "loopback_rtt_us",
                                json_real((double)o->rtt_ns / 1e3));
        }
        json_array_append_new(all, one);
    }
    free(r);
    free(d);
    return all;
}

/* The first line of path that starts with key, after the colon. */
static void
file_field(const char *path, const char *key, char *out, size_t cap)
{
    char line[512], *v;
    FILE *f = fopen(path, "r");

    snprintf(out, cap, "unknown");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strchr(line, ':');
            v = v ? v + 1 : line + strlen(key);
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, cap, "%s", v);
            break;
        }
    }
    if (f) {
        fclose(f);
    }
}

static json_t *
json_machine(const char *dir, double fs_rate, const struct bench_hist *fs)
{
    char cpu[256], mem[64], dev[64] = "unknown", rot[16], path[512];
    struct utsname u;
    struct stat st;
    json_t *j;

    uname(&u);
    file_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    file_field("/proc/meminfo", "MemTotal", mem, sizeof mem);
    if (stat(dir, &st) == 0) {
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/uevent",
                 major(st.st_dev), minor(st.st_dev));
        file_field(path, "DEVNAME=", dev, sizeof dev);
        dev[strcspn(dev, "=")] = '\0';
    }
    snprintf(path, sizeof path, "/sys/class/block/%s/queue/rotational", dev);
    file_field(path, "", rot, sizeof rot);
    j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "cores",
                  (int)sysconf(_SC_NPROCESSORS_ONLN), "kernel", u.release,
                  "machine", u.machine, "cpu", cpu, "memory", mem, "disk",
                  "device", dev, "rotational", rot, "dir", dir);
    if (fs && fs->count) {
        json_object_set_new(
            j, "fdatasync",
            json_pack("{s:f,s:f,s:f,s:f}", "rate", fs_rate, "p50_us",
                      (double)bench_hist_quantile(fs, 0.5) / 1e3, "p99_us",
                      (double)bench_hist_quantile(fs, 0.99) / 1e3, "max_us",
                      (double)fs->max_ns / 1e3));
    }
    return j;
}

/* Failover over the rounds of target ti: median unavailability. */
static json_t *
failover_summary(const struct opts *o, unsigned ti, const struct run *runs,
                 unsigned n_runs, bool print)
{
    double *u = calloc(n_runs ? n_runs : 1, sizeof *u), med = -1;
    uint64_t lost = 0, failed = 0, acked = 0;
    unsigned n = 0, ok = 0, rounds = 0;

    for (unsigned i = 0; u && i < n_runs; i++) {
        const struct bench_result *r = &runs[i].r;

        if (runs[i].target != ti) {
            continue;
        }
        rounds++;
        ok += runs[i].rc == 0;
        lost += r->lost;
        failed += r->errors;
        acked += r->acked;
        if (runs[i].rc == 0) {
            /* No write acknowledged after the kill within the window:
             * the window itself is a lower bound of the outage. */
            u[n++] = (r->unavail_s >= 0 ? r->unavail_s : o->p.duration_s) *
                     1e3;
        }
    }
    if (n) {
        qsort(u, n, sizeof *u, cmp_double);
        med = n % 2 ? u[n / 2] : (u[n / 2 - 1] + u[n / 2]) / 2;
    }
    if (print) {
        printf("%s failover: %u of %u rounds done; unavailability median "
               "%.1f ms (min %.1f, max %.1f); %llu writes acknowledged, "
               "%llu failed; lost acknowledged writes: %llu\n",
               o->t[ti].name, ok, rounds, med, n ? u[0] : -1.0,
               n ? u[n - 1] : -1.0,
               (unsigned long long)acked, (unsigned long long)failed,
               (unsigned long long)lost);
    }
    free(u);
    return json_pack("{s:s,s:i,s:i,s:f,s:I,s:I,s:I}", "target",
                     o->t[ti].name, "rounds", (int)rounds, "rounds_ok",
                     (int)ok, "unavailable_ms_median", med,
                     "acked", (json_int_t)acked, "failed",
                     (json_int_t)failed, "lost", (json_int_t)lost);
}

static int
write_json(const struct opts *o, int argc, char **argv, json_t *machine,
           const struct run *runs, unsigned n_runs)
{
    json_t *j, *cmd = json_array(), *arr = json_array(), *vers;
    char date[64];
    time_t now = time(NULL);
    int rc;

    for (int i = 0; i < argc; i++) {
        json_array_append_new(cmd, json_string(argv[i]));
    }
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    vers = json_pack("{s:s}", "shoal_bench", SHOAL_VERSION "-" SHOAL_GITREV);
    for (unsigned i = 0; i < o->n_t; i++) {
        json_object_set_new(vers, o->t[i].name,
                            json_string(o->t[i].version));
    }
    for (unsigned i = 0; i < n_runs; i++) {
        json_array_append_new(arr, json_run(o, &runs[i]));
    }
    j = json_pack("{s:o,s:s,s:o,s:o,s:s,s:o,s:o}", "command", cmd, "date",
                  date, "machine", machine, "versions", vers, "workload",
                  bench_workload_name(o->p.workload), "runs", arr, "ratios",
                  ratios(o, runs, n_runs, false));
    if (o->p.workload == BENCH_W_FAILOVER) {
        json_t *fo = json_array();

        for (unsigned ti = 0; ti < o->n_t; ti++) {
            json_array_append_new(fo, failover_summary(o, ti, runs, n_runs,
                                                       false));
        }
        json_object_set_new(j, "failover", fo);
    }
    if (o->p.workload == BENCH_W_FORWARD) {
        json_object_set_new(j, "forward_op",
                            json_string(bench_workload_name(o->forward_op)));
        json_object_set_new(j, "loopback_rtt_us",
                            json_real((double)o->rtt_ns / 1e3));
    }
    if (o->cluster) {
        json_object_set_new(j, "managers", json_integer(o->cluster));
    }
    rc = json_dump_file(j, o->json, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(j);
    return rc;
}

/* Set by SIGINT or SIGTERM: no further run starts. */
static volatile sig_atomic_t interrupted;

/* Stop what the run started at once; main then cleans up and exits. */
static void
on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    bench_stop = 1;
    bench_kill_all(SIGTERM);
}

static void
signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A manager killed mid-write must not kill the harness. */
    signal(SIGPIPE, SIG_IGN);
}

static void
defaults(struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->p.workload = BENCH_W_READ;
    o->p.depth = 1;
    o->p.duration_s = 5;
    o->p.warmup_s = 1;
    o->p.value_bytes = 200;
    o->p.objects = 100;
    o->p.read_ratio = 0.9;
    o->p.watchers = 1000;
    o->p.watch_conns = 50;
    o->p.rate = 1000;
    o->clients[0] = 16;
    o->n_clients = 1;
    o->etcd_conns = 100;
    o->etcd_port = 23790;
    o->fsync_s = 2;
    o->forward_op = BENCH_W_READ;
}

/* Make the run's directory under --state-dir, $TMPDIR or /var/tmp. */
static int
make_dir(const struct opts *o, char *dir, size_t cap)
{
    const char *base = o->state_dir ? o->state_dir : getenv("TMPDIR");

    snprintf(dir, cap, "%s/shoal-bench.XXXXXX", base ? base : "/var/tmp");
    return mkdtemp(dir) ? 0 : -errno;
}

int
main(int argc, char **argv)
{
    struct bench_hist *fs = calloc(1, sizeof *fs);
    struct run *runs = NULL;
    unsigned n_runs = 0, started = 0;
    double fs_rate = 0;
    char dir[1024];
    struct opts o;
    int rc = 0;

    defaults(&o);
    parse_args(&o, argc, argv);
    signals();
    runs = calloc((size_t)o.n_clients * o.rounds * o.n_t, sizeof *runs);
    if (!fs || !runs || make_dir(&o, dir, sizeof dir) != 0) {
        fprintf(stderr, "shoal-bench: cannot make the run directory: %s\n",
                strerror(errno));
        return BENCH_EXIT_FAIL;
    }
    if (o.fsync_s > 0 && bench_fsync_probe(dir, o.fsync_s, &fs_rate, fs) ==
                             0) {
        printf("fdatasync on %s: %.0f/s, p50 %.1f us, p99 %.1f us\n", dir,
               fs_rate, (double)bench_hist_quantile(fs, 0.5) / 1e3,
               (double)bench_hist_quantile(fs, 0.99) / 1e3);
    }
    for (; started < o.n_t; started++) {
        rc = target_start(&o, &o.t[started], dir, started);
        if (rc != 0) {
            fprintf(stderr, "shoal-bench: cannot start target %s: %s "
                            "(logs in %s)\n",
                    o.t[started].name, strerror(-rc), dir);
            o.keep = true;
            goto out_stop;
        }
    }
    print_header();
    if (o.p.workload == BENCH_W_FORWARD) {
        o.rtt_ns = bench_loopback_rtt(2000);
        printf("loopback TCP round trip (200 bytes, median): %.1f us\n",
               (double)o.rtt_ns / 1e3);
    }
    for (unsigned ci = 0; ci < o.n_clients && !interrupted; ci++) {
        for (unsigned round = 1; round <= o.rounds && !interrupted;
             round++) {
            for (unsigned ti = 0; ti < o.n_t && !interrupted; ti++) {
                struct run *ru = &runs[n_runs++];

                ru->target = ti;
                ru->clients = o.clients[ci];
                ru->round = round;
                ru->rc = run_one(&o, &o.t[ti], ru, n_runs);
                rc = rc ? rc : ru->rc;
                if (interrupted && !ru->r.note[0]) {
                    snprintf(ru->r.note, sizeof ru->r.note, "interrupted");
                }
                if (ru->r.failover && ru->r.lost) {
                    rc = rc ? rc : -EIO;
                }
                print_run(&o, ru);
            }
        }
    }
    if (o.n_t == 2) {
        json_decref(ratios(&o, runs, n_runs, true));
    }
    for (unsigned ti = 0; o.p.workload == BENCH_W_FAILOVER && ti < o.n_t;
         ti++) {
        json_decref(failover_summary(&o, ti, runs, n_runs, true));
    }
    if (o.json && write_json(&o, argc, argv, json_machine(dir, fs_rate, fs),
                             runs, n_runs) != 0) {
        fprintf(stderr, "shoal-bench: cannot write %s\n", o.json);
        rc = -EIO;
    }
out_stop:
    for (unsigned i = 0; i < started; i++) {
        target_stop(&o, &o.t[i]);
    }
    if (!o.keep) {
        bench_rmtree(dir);
    } else {
        fprintf(stderr, "shoal-bench: kept %s\n", dir);
    }
    for (unsigned i = 0; i < n_runs; i++) {
        bench_result_fini(&runs[i].r);
    }
    free(runs);
    free(fs);
    if (interrupted) {
        fprintf(stderr, "shoal-bench: interrupted; every process it "
                        "started is stopped\n");
        return 130;
    }
    return rc == 0 ? 0 : BENCH_EXIT_FAIL;
}
