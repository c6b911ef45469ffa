#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/suite.sh: the standard benchmark suite, run by `make bench`.
#
# Every shoal-bench run below starts its targets itself (a shoald, the
# echo server, etcd members on 127.0.0.1) in a temporary directory and
# stops them after. Results go to bench/results/*.json; then
# bench/report.py writes the plots and bench/RESULTS.md.
#
# BENCH_PARTS=cluster runs only the runs of several managers (about 6
# minutes) and keeps the other results, so that report.py merges both;
# each table of RESULTS.md names the date of its run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-$PWD/build}
S="$BIN/shoal-bench"
R=bench/results
T=${BENCH_SECONDS:-5}
PARTS=${BENCH_PARTS:-all}
mkdir -p "$R"
LOG=$R/log.txt
if [ "$PARTS" = cluster ]; then
    LOG=$R/log-cluster.txt
    rm -f "$R"/cluster-*.json "$R"/*-cluster.txt
else
    rm -f "$R"/*.json "$R"/*.txt
fi

run() { # name, then shoal-bench arguments
    local name=$1; shift
    echo "== $name: shoal-bench $*" | tee -a "$LOG"
    "$S" "$@" --json "$R/$name.json" 2>&1 | tee -a "$LOG"
}

# Several managers (issue #4), each run starting its own on 127.0.0.1.
cluster_runs() {
    cut -d' ' -f1-3 /proc/loadavg > "$R/loadavg-start-cluster.txt"
    # Writes through the leader of 3 against etcd's 3 members: the same
    # 1,000 clients, interleaved; the leader's counters give the writes
    # per fdatasync. The clients share 2 threads, as the etcd driver's
    # goroutines share Go's 2 (one thread each costs the 2 cores more
    # than the manager does).
    run cluster-write3 --cluster 3 --etcd-cluster 3 -w write -c 1000 \
        --client-threads 2 -t "$T" --etcd-conns 100 --rounds 3
    # Through a follower against through the leader, interleaved: one
    # client for what a forwarded read costs, then writes.
    run cluster-forward-read  --cluster 3 -w forward --forward-op read \
        -c 1,16 -t "$T" --rounds 3
    run cluster-forward-write --cluster 3 -w forward --forward-op write \
        -c 64,1000 --client-threads 2 -t "$T" --rounds 3
    # Failover at the same election timeout: shoal ticks every 50 ms and
    # draws its timeout in 10-20 ticks; etcd draws in [500, 1000) ms.
    run cluster-failover --cluster 3 --etcd-cluster 3 -w failover -c 16 \
        --etcd-conns 16 --etcd-heartbeat-ms 50 --etcd-election-ms 500 \
        -t 3 --warmup 2 --rounds 9
    # etcd with its defaults, against the 1.0-2.3 s that issue #5 quotes.
    run cluster-failover-etcd-defaults --etcd-cluster 3 -w failover \
        -c 16 --etcd-conns 16 -t 4 --warmup 2 --rounds 3
    cut -d' ' -f1-3 /proc/loadavg > "$R/loadavg-end-cluster.txt"
}

: > "$LOG"
if [ "$PARTS" = cluster ]; then
    cluster_runs
    python3 bench/report.py
    exit 0
fi
# The machine is shared: the load before and after says how noisy it was.
cut -d' ' -f1-3 /proc/loadavg > "$R/loadavg-start.txt"
# Single manager against the machine's request/response limit.
run read-echo-d1   --spawn --echo -w read  -c 1,16,64 -d 1  -t "$T" --rounds 3
run read-echo-d16  --spawn --echo -w read  -c 16      -d 16 -t "$T" --rounds 3
run list-echo      --spawn --echo -w list  -c 16      -d 1  -t "$T" --rounds 3
# Writes on one manager: a client sweep, then pipelined.
run write-sweep    --spawn -w write -c 1,4,16,64,256 -d 1 -t "$T"
run write-d16      --spawn -w write -c 16 -d 16 -t "$T"
# shoal against etcd (one member), same clients, interleaved.
run read-etcd1     --spawn --etcd-cluster 1 -w read  -c 1000 -t "$T" \
    --etcd-conns 100 --rounds 3
run write-etcd1    --spawn --etcd-cluster 1 -w write -c 1000 -t "$T" \
    --etcd-conns 100 --rounds 3
# etcd with three members: the baseline of the 3-manager targets.
run etcd3-put      --etcd-cluster 3 -w write -c 1,1000 -t "$T" --etcd-conns 100
# Watch fan-out: 1,000 watchers, 1,000 writes/s.
run watch          --spawn --etcd-cluster 1 -w watch --watchers 1000 \
    --watch-conns 50 --rate 1000 -t "$T" --etcd-conns 100 --rounds 1
# The same fan-out with the state in memory: without the disk's fdatasync
# in each event's path, what is left is the manager's own delivery time.
# No fdatasync probe: the disk figures of the report are the real disk's.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    run watch-mem  --spawn --state-dir /dev/shm --fsync-probe 0 -w watch \
        --watchers 1000 --watch-conns 50 --rate 1000 -t "$T" --rounds 1
fi

cluster_runs

# An independent reading of etcd's capacity on this machine.
dir=$(mktemp -d /var/tmp/shoal-bench-perf.XXXXXX)
etcd --data-dir "$dir/data" --listen-client-urls http://127.0.0.1:24379 \
    --advertise-client-urls http://127.0.0.1:24379 \
    --listen-peer-urls http://127.0.0.1:24380 > "$dir/etcd.log" 2>&1 &
epid=$!
for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:24379 endpoint health \
        >/dev/null 2>&1 && break
    sleep 0.1
done
set +e
ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:24379 check perf \
    > "$R/etcd-check-perf.txt" 2>&1
set -e
kill "$epid"; wait "$epid" 2>/dev/null || true
rm -rf "$dir"

cut -d' ' -f1-3 /proc/loadavg > "$R/loadavg-end.txt"
python3 bench/report.py
