/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * tools/bench/etcd.c: the etcd target, through the Go driver.
 *
 * etcd is measured with its own gRPC client (tools/bench/etcd/main.go,
 * built from Debian's packages), run as a child whose standard output
 * is one JSON object: counts, errors by gRPC code (the numbers of shoal's
 * status codes) and the latency histogram as [bucket, count] pairs in
 * this program's bucket layout.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The driver's name of a workload. */
static const char *
etcd_workload(enum bench_workload w)
{
    switch (w) {
    case BENCH_W_READ:
        return "range";
    case BENCH_W_LIST:
        return "list";
    case BENCH_W_WRITE:
        return "put";
    case BENCH_W_MIXED:
        return "mixed";
    case BENCH_W_WATCH:
        return "watch";
    case BENCH_W_FAILOVER:
        return "failover";
    default:
        return NULL;
    }
}

/* Read the driver's whole standard output. */
static char *
etcd_slurp(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap), *nb;
    ssize_t n;

    while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 4096) {
            nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) {
        buf[len] = '\0';
    }
    return buf;
}

static void
etcd_hist(json_t *arr, struct bench_hist *h)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) {
        json_int_t bucket = json_integer_value(json_array_get(v, 0));
        json_int_t count = json_integer_value(json_array_get(v, 1));

        bench_hist_add_bucket(h, (uint32_t)bucket, (uint64_t)count);
    }
}

/* Fill r from the driver's JSON. */
static int
etcd_parse(const char *out, struct bench_result *r, char *version,
           size_t cap)
{
    json_error_t jerr;
    json_t *j, *codes, *v;
    const char *k;
    long code;

    j = json_loads(out, 0, &jerr);
    if (!j) {
        snprintf(r->note, sizeof r->note, "driver output: %s", jerr.text);
        return -EPROTO;
    }
    r->ops = (uint64_t)json_integer_value(json_object_get(j, "ops"));
    r->seconds = json_number_value(json_object_get(j, "seconds"));
    r->writes = (uint64_t)json_integer_value(json_object_get(j, "writes"));
    r->delivered =
        (uint64_t)json_integer_value(json_object_get(j, "delivered"));
    r->expected = (uint64_t)json_integer_value(json_object_get(j, "expected"));
    codes = json_object_get(j, "errors");
    json_object_foreach(codes, k, v) {
        code = strtol(k, NULL, 10);
        r->codes[code >= 0 && code < BENCH_N_CODES - 1 ? code
                                                       : BENCH_N_CODES - 1] +=
            (uint64_t)json_integer_value(v);
        r->errors += (uint64_t)json_integer_value(v);
    }
    r->codes[0] = r->ops > r->errors ? r->ops - r->errors : 0;
    if (json_string_value(json_object_get(j, "workload")) &&
        strcmp(json_string_value(json_object_get(j, "workload")),
               "failover") == 0) {
        double ms = json_number_value(json_object_get(j, "unavailable_ms"));

        r->failover = true;
        r->killed = (unsigned)json_integer_value(json_object_get(j,
                                                                 "killed")) +
                    1;
        r->unavail_s = ms < 0 ? -1 : ms / 1e3;
        r->elected_s = -1; /* the driver does not watch the election */
        r->acked = (uint64_t)json_integer_value(json_object_get(j, "acked"));
        r->lost = (uint64_t)json_integer_value(json_object_get(j, "lost"));
    }
    etcd_hist(json_object_get(j, "hist"), r->lat);
    etcd_hist(json_object_get(j, "ack_hist"), r->ack);
    snprintf(version, cap, "%s",
             json_string_value(json_object_get(j, "version"))
                 ? json_string_value(json_object_get(j, "version"))
                 : "unknown");
    if (json_string_value(json_object_get(j, "note"))) {
        snprintf(r->note, sizeof r->note, "%s",
                 json_string_value(json_object_get(j, "note")));
    }
    json_decref(j);
    return r->note[0] ? -EIO : 0;
}

/* Run the driver; pids and tag are for failover only (else NULL). */
static int
etcd_drive(const char *bin, const char *endpoints, unsigned conns,
           const struct bench_params *p, const char *pids, const char *tag,
           struct bench_result *r, char *version, size_t cap)
{
    char a[12][32];
    const char *wl = etcd_workload(p->workload);
    int pipefd[2], status, rc;
    char *out;
    pid_t pid;

    if (!wl) {
        snprintf(r->note, sizeof r->note, "no etcd form of this workload");
        return -EINVAL;
    }
    snprintf(a[0], sizeof a[0], "%u", conns);
    snprintf(a[1], sizeof a[1], "%u", p->clients);
    snprintf(a[2], sizeof a[2], "%g", p->duration_s);
    snprintf(a[3], sizeof a[3], "%llu", (unsigned long long)p->ops);
    snprintf(a[4], sizeof a[4], "%g", p->warmup_s);
    snprintf(a[5], sizeof a[5], "%u", p->value_bytes);
    snprintf(a[6], sizeof a[6], "%u", p->objects ? p->objects : 1);
    snprintf(a[7], sizeof a[7], "%g", p->read_ratio);
    snprintf(a[8], sizeof a[8], "%u", p->watchers);
    snprintf(a[9], sizeof a[9], "%u", p->rate);
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        return -errno;
    }
    pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        execl(bin, bin, "-endpoints", endpoints, "-conns", a[0], "-clients",
              a[1], "-duration", a[2], "-ops", a[3], "-warmup", a[4],
              "-value-bytes", a[5], "-keys", a[6], "-read-ratio", a[7],
              "-watchers", a[8], "-rate", a[9], "-workload", wl, "-pids",
              pids ? pids : "", "-tag", tag ? tag : "r", (char *)NULL);
        fprintf(stderr, "shoal-bench: cannot run %s: %s\n", bin,
                strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    out = etcd_slurp(pipefd[0]);
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    if (!out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(r->note, sizeof r->note, "etcd driver %s failed (status %d)",
                 bin, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        free(out);
        return -EIO;
    }
    rc = etcd_parse(out, r, version, cap);
    free(out);
    return rc;
}

int
bench_etcd_run(const char *bin, const char *endpoints, unsigned conns,
               const struct bench_params *p, struct bench_result *r,
               char *version, size_t cap)
{
    if (p->workload == BENCH_W_FAILOVER) {
        snprintf(r->note, sizeof r->note, "failover needs the members' "
                 "pids: bench_etcd_failover");
        return -EINVAL;
    }
    return etcd_drive(bin, endpoints, conns, p, NULL, NULL, r, version, cap);
}

int
bench_etcd_failover(const char *bin, const char *endpoints, unsigned conns,
                    const struct bench_params *p, const char *pids,
                    const char *tag, struct bench_result *r, char *version,
                    size_t cap)
{
    int rc = etcd_drive(bin, endpoints, conns, p, pids, tag, r, version,
                        cap);

    r->failover = true;
    return rc;
}
