/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/bench.h: shoal-bench's modules and what they share.
 *
 * shoal-bench drives load against a target (a shoald, the built-in echo
 * server, or etcd through a Go driver), measures throughput and latency
 * with a log-linear histogram, and writes a table and a JSON report.
 * Every module here is private to the program; the prefix is bench_.
 */
#ifndef SHOAL_TOOLS_BENCH_BENCH_H
#define SHOAL_TOOLS_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

/* Exit codes: a usage error, and a run that cannot be made yet. */
#define BENCH_EXIT_FAIL 1
#define BENCH_EXIT_USAGE 2
#define BENCH_EXIT_NOT_YET 3

/*
 * The histogram: values (nanoseconds) below 2^SUB_BITS are exact; above,
 * each power of two is cut in 2^SUB_BITS equal buckets, so a bucket is at
 * most 1/128 of its values wide and its midpoint is within 0.4% of any of
 * them. The Go driver (tools/bench/etcd) computes the same bucket index.
 */
#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_MAX_EXP 40 /* values up to 2^40 ns, about 18 minutes */
#define BENCH_HIST_BUCKETS                                                 \
    ((BENCH_HIST_MAX_EXP - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t count;
    uint64_t max_ns;
    double sum_ns;
    uint64_t b[BENCH_HIST_BUCKETS];
};

/* Status codes are counted in this many slots; the last is "other". */
#define BENCH_N_CODES 17

/* Zero h. */
void bench_hist_init(struct bench_hist *h);

/* Count one value of v nanoseconds (clamped to the histogram's range). */
void bench_hist_add(struct bench_hist *h, uint64_t v_ns);

/* Add n values to the bucket numbered idx; -1 for an index out of range. */
int bench_hist_add_bucket(struct bench_hist *h, uint32_t idx, uint64_t n);

/* Add every count of src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/*
 * The value at quantile q (0 < q <= 1) in nanoseconds: the midpoint of
 * the bucket holding the ceil(q * count)-th value, never above max_ns.
 * 0 for an empty histogram.
 */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* The bucket index of v, as bench_hist_add uses it. */
uint32_t bench_hist_index(uint64_t v_ns);

/* The smallest value of bucket idx. */
uint64_t bench_hist_bucket_low(uint32_t idx);

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t bench_now_ns(void);

/* What a run asks of a target. */
enum bench_workload {
    BENCH_W_READ,
    BENCH_W_LIST,
    BENCH_W_WRITE,
    BENCH_W_MIXED,
    BENCH_W_WATCH,
    BENCH_W_FORWARD,
    BENCH_W_FAILOVER,
};

/* The shape of one measured run, shared by every kind of target. */
struct bench_params {
    enum bench_workload workload;
    unsigned clients;
    unsigned depth;
    double duration_s; /* measured window when ops is 0 */
    uint64_t ops;      /* measured operations; 0: use duration_s */
    double warmup_s;
    unsigned value_bytes;
    unsigned objects;  /* objects preloaded for reads and lists */
    double read_ratio; /* mixed */
    unsigned watchers;
    unsigned watch_conns;
    unsigned rate; /* watch: writes per second */
    bool raw;      /* echo: any reply frame counts, nothing is decoded */
    unsigned threads; /* > 0: clients share this many threads (epoll),
                       * depth 1 and not list only; 0: one each */
};

/* What a run measured. */
struct bench_result {
    uint64_t ops;    /* completed in the window, errors included */
    uint64_t errors; /* of those, not SHOAL_OK */
    uint64_t codes[BENCH_N_CODES];
    double seconds;
    struct bench_hist *lat; /* request latency; malloc'd */
    /* watch only */
    struct bench_hist *ack; /* write acknowledgement latency */
    uint64_t writes;        /* acknowledged writes in the window */
    uint64_t delivered;     /* events received by all watchers */
    uint64_t expected;      /* writes times watchers */
    /* shoal only: deltas of the daemon's counters over the window */
    bool have_stats;
    uint64_t proposals;
    uint64_t fsyncs;
    uint64_t entries;
    /* failover only */
    bool failover;
    double unavail_s;  /* from the kill to the first acknowledged write
                        * sent after it; < 0: none came */
    double elected_s;  /* from the kill to a survivor naming a new
                        * leader in its hello; < 0: not seen */
    uint64_t acked;    /* acknowledged writes, all checked afterwards */
    uint64_t lost;     /* of those, not found through a survivor */
    unsigned killed;   /* the manager killed (1..N) */
    char note[256]; /* why a run failed, for the report */
};

/* Allocate r's histograms and zero the rest. Returns 0 or -ENOMEM. */
int bench_result_init(struct bench_result *r);

/* Free r's histograms. A zeroed r is a no-op. */
void bench_result_fini(struct bench_result *r);

/*
 * Run workload p against the manager serving the Unix socket at path.
 * Objects are made first (named with tag, so runs do not collide).
 * Returns 0 with r filled, or a negative code with r->note saying why.
 */
int bench_load_run(const char *path, const char *tag,
                   const struct bench_params *p, struct bench_result *r);

/*
 * Serve the echo protocol on the listening Unix socket lfd until SIGTERM:
 * the hello is answered with a hello reply, every other frame with the
 * same bytes, its type marked as a reply. Single-threaded, epoll. Never
 * returns; exits 0 on SIGTERM, 1 on a failure.
 */
void bench_echo_serve(int lfd) __attribute__((noreturn));

/* A process the harness started. */
struct bench_proc {
    pid_t pid; /* -1 when none */
    char name[32];
};

/*
 * Start shoald (binary bin) with its state in dir/state and its socket at
 * dir/control.sock, logging to dir/shoald.log, and wait until it says it
 * is ready (NOTIFY_SOCKET), at most 20 s. Returns 0 or a negative code.
 */
int bench_spawn_shoald(struct bench_proc *p, const char *bin,
                       const char *dir);

/*
 * bench_spawn_shoald with these extra arguments (NULL-terminated; the
 * hostname among them), waiting timeout_ms for READY=1.
 */
int bench_spawn_shoald_args(struct bench_proc *p, const char *bin,
                            const char *dir, const char *const *extra,
                            int timeout_ms);

/*
 * Bind a listening Unix socket at path and fork the echo server on it.
 * Returns 0 or a negative code.
 */
int bench_spawn_echo(struct bench_proc *p, const char *path);

/*
 * Start n etcd members on 127.0.0.1 (client ports base_port + 10 * i,
 * peer ports + 1), data in dir/etcd-N, logs in dir/etcd-N.log, with the
 * given heartbeat and election timeouts (0: etcd's defaults). Writes the
 * client URLs, comma-separated, to endpoints. Waits until each answers
 * /health, at most 30 s. Returns 0 or a negative code; on failure the
 * members already started are stopped.
 */
int bench_spawn_etcd(struct bench_proc *procs, unsigned n, const char *dir,
                     unsigned base_port, unsigned heartbeat_ms,
                     unsigned election_ms, char *endpoints, size_t cap);

/*
 * Stop p with SIGTERM, then SIGKILL after 10 s; reap it. Returns its
 * wait status, or -1 when there was none.
 */
int bench_proc_stop(struct bench_proc *p);

/* Kill p with SIGKILL at once and reap it. Returns its wait status. */
int bench_proc_kill(struct bench_proc *p);

/*
 * Send sig to every process started here and not yet stopped. Async-
 * signal-safe: the Ctrl-C handler calls it so that the run ends at once.
 */
void bench_kill_all(int sig);

/* Set on SIGINT or SIGTERM: every wait and load loop ends early. */
extern volatile sig_atomic_t bench_stop;

/* Remove a directory tree. Returns 0 or -errno. */
int bench_rmtree(const char *dir);

/*
 * Measure fdatasync on a file in dir for seconds: 4 KiB appends, each
 * followed by fdatasync. Fills the rate (per second) and the latency
 * histogram (h may be NULL). Returns 0 or -errno.
 */
int bench_fsync_probe(const char *dir, double seconds, double *rate,
                      struct bench_hist *h);

/*
 * Run the Go driver bin against etcd at endpoints with workload p,
 * conns connections, and fill r from its JSON. version receives the
 * client library's version. Returns 0 or a negative code (r->note).
 */
int bench_etcd_run(const char *bin, const char *endpoints, unsigned conns,
                   const struct bench_params *p, struct bench_result *r,
                   char *version, size_t cap);

/* N shoal managers on 127.0.0.1, started by shoal-bench itself. */
#define BENCH_MAX_MANAGERS 9

struct bench_cluster {
    unsigned n;
    char bin[4096];     /* shoald */
    char dir[1024];     /* holds m1/ .. mN/ */
    char token[256];    /* the manager join token */
    unsigned port[BENCH_MAX_MANAGERS]; /* peer ports */
    struct bench_proc procs[BENCH_MAX_MANAGERS];
    char sock[BENCH_MAX_MANAGERS][1100]; /* control sockets */
};

/*
 * Start n managers of binary bin under dir (mK/state, mK/control.sock,
 * mK/shoald.log): the first makes the cluster, the others join it with
 * its manager token, one after the other, each ready once it votes.
 * Returns 0 or a negative code; on failure the started ones are stopped.
 */
int bench_cluster_start(struct bench_cluster *c, const char *bin,
                        const char *dir, unsigned n);

/*
 * The index (0..n-1) of the leader that every live manager names, waiting
 * up to timeout_ms for them to agree and for each live manager to be
 * reachable from it; skip (or -1) is a manager known dead. Returns the
 * index or -ETIMEDOUT.
 */
int bench_cluster_leader(struct bench_cluster *c, int skip, int timeout_ms);

/*
 * The hello of manager k: its node id and the leader it names ("" during
 * an election), each in cap bytes. Returns 0 or a negative code.
 */
int bench_cluster_hello(const struct bench_cluster *c, unsigned k,
                        char *node, char *leader, size_t cap);

/* Kill manager k (0..n-1) with SIGKILL. */
void bench_cluster_kill(struct bench_cluster *c, unsigned k);

/* Start manager k again with its state. Returns 0 or a negative code. */
int bench_cluster_restart(struct bench_cluster *c, unsigned k);

/* Stop every manager (TERM). */
void bench_cluster_stop(struct bench_cluster *c);

/*
 * The failover workload (issue #5): p->clients clients write to every
 * live manager of c round-robin, reconnecting on failure; after
 * p->warmup_s the leader is killed with SIGKILL, the stream goes on for
 * p->duration_s, and every acknowledged write is then read back by id
 * through the new leader. tag names the objects. Returns 0 with r filled
 * (r->failover and its fields) or a negative code (r->note).
 */
int bench_failover_run(struct bench_cluster *c, const char *tag,
                       const struct bench_params *p, struct bench_result *r);

/*
 * The median round trip of a 200-byte message over TCP on 127.0.0.1 in
 * nanoseconds (ping-pong between two threads, n times). 0 on failure.
 */
uint64_t bench_loopback_rtt(unsigned n);

/*
 * The failover workload against etcd members whose pids are pids
 * (comma-separated, in the order of endpoints): the driver kills the
 * leader itself after the warm-up (see tools/bench/etcd/main.go) and
 * reports r->killed (1..N); the caller reaps and restarts that member.
 */
int bench_etcd_failover(const char *bin, const char *endpoints,
                        unsigned conns, const struct bench_params *p,
                        const char *pids, const char *tag,
                        struct bench_result *r, char *version, size_t cap);

/*
 * Start etcd member i of n again (as bench_spawn_etcd made it, with its
 * data) and wait until every live member of procs answers /health, at
 * most 30 s. Returns 0 or a negative code.
 */
int bench_etcd_restart(struct bench_proc *procs, unsigned i, unsigned n,
                       const char *dir, unsigned base_port,
                       unsigned heartbeat_ms, unsigned election_ms);

/* The workload's name ("read"). */
const char *bench_workload_name(enum bench_workload w);

#endif
