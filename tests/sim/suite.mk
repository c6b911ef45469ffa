# tests/sim/suite.mk: the raft core's unit tests and the deterministic
# cluster simulator. Included by the top-level Makefile.
#
#   make check-sim            core unit tests, scripted scenarios, replay
#                             determinism, SIM_SEEDS seeds, purity check,
#                             broken variants caught (part of make test)
#   make sim SEEDS=N [SEED=S] run N seeds from S, or replay seed S alone
#                             (add TRACE=1 for the full trace)
#   make sim-long [SEED=S]    run seeds until stopped
#   make sim-timing [TRIALS=N] the election-timing table (release build)
#
# src/raft is not in the daemon's library yet: it is built here.

SIM_RAFT_SRC  = $(wildcard src/raft/*.c)
SIM_BASE_SRC  = src/base/base.c src/base/log.c
SIM_LIB_SRC   = tests/sim/sim.c tests/sim/sim_check.c tests/sim/sim_lin.c \
                tests/sim/sim_timing.c
SIM_TEST_SRC  = $(wildcard tests/sim/test_*.c) $(wildcard tests/sim/fx_*.c)
SIM_LDLIBS    = -lcrypto -lm

SIM_BIN       = $(TBUILD)/sim
SIM_TESTS_BIN = $(TBUILD)/sim-tests
SIM_REL_BIN   = $(BUILD)/sim
SIM_SEEDS    ?= 600
SIM_BROKEN    = commit vote
SIM_BROKEN_BINS = $(foreach v,$(SIM_BROKEN),$(BUILD)/sim-broken-$(v) \
                                             $(BUILD)/sim-tests-broken-$(v))
# The scripted test that each broken variant must fail.
SIM_BROKEN_TEST_commit = raft_repl/figure8_old_term_not_committed_by_counting
SIM_BROKEN_TEST_vote   = raft_election/vote_survives_restart

SIM_OBJS      = $(call obj,$(TBUILD),$(SIM_RAFT_SRC) $(SIM_BASE_SRC) \
                                     $(SIM_LIB_SRC))

$(SIM_BIN): $(SIM_OBJS) $(call obj,$(TBUILD),tests/sim/sim_main.c)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIM_LDLIBS)

$(SIM_TESTS_BIN): $(SIM_OBJS) $(call obj,$(TBUILD),$(SIM_TEST_SRC))
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIM_LDLIBS) -lcriterion

$(SIM_REL_BIN): $(call obj,$(BUILD),$(SIM_RAFT_SRC) $(SIM_BASE_SRC) \
                                    $(SIM_LIB_SRC) tests/sim/sim_main.c)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(SIM_LDLIBS)

# Deliberately broken cores, one object folder per variant: RAFT_BROKEN_
# COMMIT counts replicas of older terms (paper §5.4.2), RAFT_BROKEN_VOTE
# forgets the vote on restart (paper Figure 2). They are built without
# the sanitizers: they exist to be caught by the checker, quickly.
define sim_broken
$(BUILD)/broken-$(1)/obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(if $$(Q),@echo "  CC-BRK  $$<")
	$$(Q)$$(CC) $$(CPPFLAGS) \
	    -DRAFT_BROKEN_$(shell echo $(1) | tr a-z A-Z) $$(CFLAGS) \
	    -c -o $$@ $$<

$(BUILD)/sim-broken-$(1): $(call obj,$(BUILD)/broken-$(1),$(SIM_RAFT_SRC)) \
        $(call obj,$(BUILD),$(SIM_BASE_SRC) $(SIM_LIB_SRC) \
                            tests/sim/sim_main.c)
	$$(if $$(Q),@echo "  LD      $$@")
	$$(Q)$$(CC) $$(CFLAGS) -o $$@ $$^ $(SIM_LDLIBS)

$(BUILD)/sim-tests-broken-$(1): \
        $(call obj,$(BUILD)/broken-$(1),$(SIM_RAFT_SRC)) \
        $(call obj,$(BUILD),$(SIM_BASE_SRC) $(SIM_LIB_SRC) $(SIM_TEST_SRC))
	$$(if $$(Q),@echo "  LD      $$@")
	$$(Q)$$(CC) $$(CFLAGS) -o $$@ $$^ $(SIM_LDLIBS) -lcriterion
endef
$(foreach v,$(SIM_BROKEN),$(eval $(call sim_broken,$(v))))

# Acceptance item 5: the core calls nothing but memory and string helpers
# and the assertion hook. Any socket, file, clock, random or logging
# symbol in its objects fails the build.
SIM_PURE_SYMS = malloc calloc realloc free memcpy memmove memset memcmp \
                qsort base_assert_fail err_str
SIM_RAFT_RELOBJS = $(call obj,$(BUILD),$(SIM_RAFT_SRC))

.PHONY: check-sim check-sim-pure sim sim-long sim-timing

check-sim-pure: $(SIM_RAFT_RELOBJS)
	@nm --defined-only $(SIM_RAFT_RELOBJS) | awk 'NF == 3 {print $$3}' | \
	    sort -u > $(BUILD)/raft-defined.txt; \
	bad=$$(nm -u $(SIM_RAFT_RELOBJS) | awk 'NF == 2 {print $$2}' | \
	    sort -u | grep -vxF -f $(BUILD)/raft-defined.txt | \
	    grep -vxF $(foreach s,$(SIM_PURE_SYMS),-e $(s))); \
	if [ -n "$$bad" ]; then \
	    echo "src/raft calls outside its contract:" $$bad; exit 1; \
	fi; echo "src/raft purity: ok, external calls only to:" \
	    $$(nm -u $(SIM_RAFT_RELOBJS) | awk 'NF == 2 {print $$2}' | \
	       sort -u | grep -vxF -f $(BUILD)/raft-defined.txt)

check-sim: check-sim-pure $(SIM_BIN) $(SIM_TESTS_BIN) $(SIM_BROKEN_BINS)
	LSAN_OPTIONS=suppressions=tests/sim/lsan.supp \
	    $(SIM_TESTS_BIN) --jobs 2 $(SIM_TEST_ARGS)
	$(SIM_BIN) --replay-check 11
	$(SIM_BIN) --seeds $(SIM_SEEDS) --start 1
	@for v in $(SIM_BROKEN); do \
	    echo "broken variant $$v:"; \
	    $(BUILD)/sim-broken-$$v --seeds 5000 --start 1 \
	        --expect-violation 2>/dev/null || exit 1; \
	done
	@$(foreach v,$(SIM_BROKEN),\
	    if $(BUILD)/sim-tests-broken-$(v) \
	        --filter '$(SIM_BROKEN_TEST_$(v))' >/dev/null 2>&1; then \
	        echo "broken variant $(v) passes $(SIM_BROKEN_TEST_$(v))"; \
	        exit 1; \
	    fi; \
	    echo "broken variant $(v): $(SIM_BROKEN_TEST_$(v)) fails, as it" \
	         "must";)

EXTRA_CHECKS += check-sim

SEEDS ?= 100
SEED  ?= 1
sim: $(SIM_BIN)
	$(if $(filter command line,$(origin SEED)),\
	    $(if $(filter command line,$(origin SEEDS)),\
	        $(SIM_BIN) --seeds $(SEEDS) --start $(SEED),\
	        $(SIM_BIN) --seed $(SEED) $(if $(TRACE),--trace)),\
	    $(SIM_BIN) --seeds $(SEEDS) --start 1)

sim-long: $(SIM_BIN)
	$(SIM_BIN) --forever --start $(SEED)

TRIALS ?= 1000
sim-timing: $(SIM_REL_BIN)
	$(SIM_REL_BIN) --timing --trials $(TRIALS)
