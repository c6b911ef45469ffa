# tests/bench/suite.mk: shoal-bench, its etcd driver, the benchmark suite
# and its smoke check. Included by the top-level Makefile.
#
#   make bench         the standard suite (bench/suite.sh): installs
#                      etcd-server, etcd-client, golang-go,
#                      golang-etcd-server-dev, gnuplot-nox, jq and python3
#                      when missing; writes bench/results/*.json, the
#                      plots and bench/RESULTS.md (about 20 minutes)
#   make bench-smoke   the harness runs against shoald, the echo server
#                      and 3 managers for a few seconds and writes
#                      well-formed JSON; no speed is asserted, no etcd
#                      or Go needed (part of make test)

BENCH_PKGS  = etcd-server etcd-client golang-go golang-etcd-server-dev \
              gnuplot-nox jq python3
SMOKE_PKGS  = jq
BENCH_ETCD  = $(BUILD)/shoal-bench-etcd
T_BENCH     = $(TBUILD)/shoal-bench
SMOKE_DIR   = $(TBUILD)/bench-smoke

.PHONY: bench bench-smoke bench-deps bench-smoke-deps

bench-deps: deps
	$(call install_missing,$(BENCH_PKGS))

bench-smoke-deps: deps
	$(call install_missing,$(SMOKE_PKGS))

# The Go driver, built offline against Debian's Go sources in GOPATH
# mode: /usr/share/gocode holds go.etcd.io/etcd and its dependencies.
$(BENCH_ETCD): $(wildcard tools/bench/etcd/*.go) | bench-deps
	@mkdir -p $(BUILD)/gocache
	$(if $(Q),@echo "  GO      $@")
	$(Q)GO111MODULE=off GOFLAGS= GOPATH=/usr/share/gocode \
	    GOCACHE=$(CURDIR)/$(BUILD)/gocache go build -o $@ ./tools/bench/etcd

bench: bench-deps $(SHOALBENCH) $(SHOALD) $(SHOALCTL) $(BENCH_ETCD)
	BENCH_BIN=$(CURDIR)/$(BUILD) bash bench/suite.sh

# A shoald and the echo server, read and write and watch, a second each;
# then the JSON is checked for its shape and for the runs having run.
SMOKE_ARGS = --spawn --shoald $(CURDIR)/$(T_SHOALD) --duration 0.5 \
             --warmup 0.2 --fsync-probe 0.2 --state-dir $(CURDIR)/$(SMOKE_DIR)
# Three managers (issue #4), writes through the leader for a second, the
# clients on 2 epoll threads: that the cluster starts, is loaded and is
# stopped, never how fast.
CLUSTER_ARGS = --cluster 3 --shoald $(CURDIR)/$(T_SHOALD) -w write -c 4 \
               --client-threads 2 --duration 1 --warmup 0.3 --fsync-probe 0 \
               --state-dir $(CURDIR)/$(SMOKE_DIR)
SMOKE_JQ   = (.runs | length) == $(1) and all(.runs[]; .ok and .ops > 0) \
             and (.machine.cores > 0) and (.command | length > 0) \
             and all(.runs[]; .latency_us.p99 >= .latency_us.p50)

bench-smoke: bench-smoke-deps $(T_BENCH) $(T_SHOALD)
	@rm -rf $(SMOKE_DIR) && mkdir -p $(SMOKE_DIR)
	$(T_BENCH) $(SMOKE_ARGS) --echo -w read -c 1,4 -d 4 --rounds 2 \
	    --json $(SMOKE_DIR)/read.json
	$(T_BENCH) $(SMOKE_ARGS) -w write -c 2 -d 2 \
	    --json $(SMOKE_DIR)/write.json
	$(T_BENCH) $(SMOKE_ARGS) -w watch --watchers 20 --watch-conns 4 \
	    --rate 200 --json $(SMOKE_DIR)/watch.json
	@jq -e '$(call SMOKE_JQ,8) and (.ratios | length) == 2' \
	    $(SMOKE_DIR)/read.json >/dev/null
	@jq -e '$(call SMOKE_JQ,1) and .runs[0].daemon.fsyncs > 0' \
	    $(SMOKE_DIR)/write.json >/dev/null
	@jq -e '$(call SMOKE_JQ,1) and .runs[0].watch.delivered > 0' \
	    $(SMOKE_DIR)/watch.json >/dev/null
	$(T_BENCH) $(CLUSTER_ARGS) --json $(SMOKE_DIR)/cluster.json
	@jq -e '$(call SMOKE_JQ,1) and .managers == 3' \
	    $(SMOKE_DIR)/cluster.json >/dev/null
	@$(T_BENCH) --spawn -w failover >/dev/null 2>&1; test $$? = 2
	@$(T_BENCH) --no-such-option >/dev/null 2>&1; test $$? = 2
	@$(T_BENCH) --help | grep -q -- --forward-op
	@echo "bench-smoke: ok (harness ran, JSON well-formed)"

EXTRA_CHECKS += bench-smoke
