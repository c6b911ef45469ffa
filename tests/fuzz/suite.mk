# tests/fuzz/suite.mk: libFuzzer targets for every decoder of untrusted
# bytes (issue #6), and their replay. Included by the top-level Makefile.
#
#   make fuzz [FUZZ_SECONDS=30] [FUZZ_TARGETS="wal ctl"] [FUZZ_JOBS=N]
#       build each target with clang, libFuzzer, ASan and UBSan into
#       $(BUILD)/fuzz/ and fuzz it for FUZZ_SECONDS on its corpus, N
#       targets at a time (default: one per CPU)
#   make check-fuzz [FUZZ_CHECK_SECONDS=30]
#       replay every corpus and regression input through the targets
#       built with the test flags (the Makefile's CC, ASan, UBSan, no
#       libFuzzer), then fuzz each target for FUZZ_CHECK_SECONDS (0: the
#       replay alone, which needs no clang). Part of make test.
#   make fuzz-coverage
#       line coverage of each corpus, per file of the code it targets
#   make fuzz-seeds
#       write the generated seeds of tests/fuzz/corpus/ again (mkseeds.c)
#
# Seeds: tests/fuzz/corpus/<target>/, and wire/golden/*.bin for wire and
# control. What a run finds goes to $(BUILD)/fuzz/corpus/<target>/, never
# into the tree. A crash is saved in $(BUILD)/fuzz/crash/<target>/; once
# the bug is fixed, the file goes to tests/fuzz/regress/<target>/, which
# check-fuzz replays from then on.

FUZZ_TARGETS       ?= wire wal statedb token ctl control
FUZZ_SECONDS       ?= 30
FUZZ_CHECK_SECONDS ?= 30
FUZZ_JOBS          ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_CC            ?= clang-14
FUZZ_PKGS           = clang-14 libclang-rt-14-dev
FUZZ_DIR            = $(BUILD)/fuzz
FUZZ_RDIR           = $(TBUILD)/fuzz-replay

# The targets' sources beside their own file, and the project's code:
# one archive, from which each target's link takes what it calls.
FUZZ_SRC     = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIB_SRC = $(BASE_SRC) $(CLIENT_SRC) $(CORE_SRC) $(MGR_SRC) $(CTL_SRC)
FUZZ_LIB     = $(FUZZ_DIR)/libshoal-fuzz.a
FUZZ_BINS    = $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_RBINS   = $(patsubst %,$(FUZZ_RDIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
# Warnings are shown but not fatal here: clang may warn about code that
# the gcc build, which is -Werror, accepts.
FUZZ_CFLAGS  = -std=c11 -g -O1 $(WARN) -Wno-error -MMD -MP \
               -DSHOAL_TEST_BUILD $(FUZZ_SAN)

# Per target: the longest input, extra libFuzzer options, replay options,
# and whether the golden frames seed it.
FUZZ_MAXLEN_wire    = 65536
FUZZ_MAXLEN_control = 16384
FUZZ_MAXLEN_wal     = 16384
FUZZ_MAXLEN_statedb = 16384
FUZZ_MAXLEN_token   = 4096
FUZZ_MAXLEN_ctl     = 1024
FUZZ_OPTS_ctl       = -close_fd_mask=3
FUZZ_QUIET_ctl      = -q
FUZZ_GOLDEN_wire    = 1
FUZZ_GOLDEN_control = 1

# The inputs check-fuzz replays for target $(1).
fuzz_inputs = $(wildcard tests/fuzz/corpus/$(1) tests/fuzz/regress/$(1)) \
              $(if $(FUZZ_GOLDEN_$(1)),$(wildcard wire/golden/*.bin))

# The shell command that fuzzes target $(1) for $(2) seconds: libFuzzer's
# output goes to a log, of which a failure shows the end and a success
# the final counts.
fuzz_cmd = mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/crash/$(1) \
               $(FUZZ_DIR)/log && \
    $(if $(FUZZ_GOLDEN_$(1)),cp -n wire/golden/*.bin \
        $(FUZZ_DIR)/corpus/$(1)/ &&) \
    echo "  FUZZ    $(1) for $(2) s (log: $(FUZZ_DIR)/log/$(1).log)" && \
    { $(FUZZ_DIR)/fuzz_$(1) -max_total_time=$(2) -timeout=10 \
        -max_len=$(FUZZ_MAXLEN_$(1)) -print_final_stats=1 \
        -artifact_prefix=$(FUZZ_DIR)/crash/$(1)/ $(FUZZ_OPTS_$(1)) \
        $(FUZZ_DIR)/corpus/$(1) \
        $(wildcard tests/fuzz/corpus/$(1) tests/fuzz/regress/$(1)) \
        >$(FUZZ_DIR)/log/$(1).log 2>&1 || \
      { tail -n 60 $(FUZZ_DIR)/log/$(1).log; \
        echo "fuzz_$(1) failed: input saved in $(FUZZ_DIR)/crash/$(1)/"; \
        false; }; } && \
    grep -E '^\#[0-9]+[[:space:]]+DONE|^Done|number_of_executed_units|peak_rss' \
        $(FUZZ_DIR)/log/$(1).log | sed 's/^/          /'

.PHONY: fuzz fuzz-build fuzz-deps check-fuzz check-fuzz-replay fuzz-seeds \
        fuzz-coverage

fuzz-deps:
	$(call install_missing,$(FUZZ_PKGS))

# libFuzzer objects: every source with coverage instrumentation.
$(FUZZ_DIR)/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC-FUZZ $<")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
	    -c -o $@ $<

$(FUZZ_LIB): $(call obj,$(FUZZ_DIR),$(FUZZ_LIB_SRC))
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(FUZZ_BINS): $(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o \
                                  $(FUZZ_LIB)
	$(if $(Q),@echo "  LD-FUZZ $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Replay programs: the test build's objects and replay.c's main().
$(FUZZ_RDIR)/libctl.a: $(call obj,$(TBUILD),$(CTL_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(FUZZ_RBINS): $(FUZZ_RDIR)/fuzz_%: $(TBUILD)/obj/tests/fuzz/fuzz_%.o \
        $(TBUILD)/obj/tests/fuzz/replay.o $(FUZZ_RDIR)/libctl.a \
        $(T_LIBCORE) $(T_LIBSHOAL)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# One target's run; fuzz and check-fuzz run them FUZZ_JOBS at a time
# through a sub-make, each target's lines kept together (-O).
fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	@$(call fuzz_cmd,$*,$(FUZZ_RUN_SECONDS))

fuzz_runs = $(MAKE) --no-print-directory -O -j$(FUZZ_JOBS) \
    $(addprefix fuzz-run-,$(FUZZ_TARGETS)) FUZZ_RUN_SECONDS=$(1)

fuzz: $(FUZZ_BINS)
	@$(call fuzz_runs,$(FUZZ_SECONDS))

check-fuzz-replay: deps $(FUZZ_RBINS)
	@$(foreach t,$(FUZZ_TARGETS),\
	    $(FUZZ_RDIR)/fuzz_$(t) $(FUZZ_QUIET_$(t)) $(call fuzz_inputs,$(t)) &&) \
	    true

# The replay first: it is quick and names a broken regression input.
check-fuzz: check-fuzz-replay \
            $(if $(filter-out 0,$(FUZZ_CHECK_SECONDS)),$(FUZZ_BINS))
ifneq ($(FUZZ_CHECK_SECONDS),0)
	@$(call fuzz_runs,$(FUZZ_CHECK_SECONDS))
endif

EXTRA_CHECKS += check-fuzz

# Seeds that need the codec or the CA to be made.
FUZZ_SEEDS_BIN = $(FUZZ_RDIR)/mkseeds
$(FUZZ_SEEDS_BIN): $(TBUILD)/obj/tests/fuzz/mkseeds.o $(T_LIBCORE) \
                   $(T_LIBSHOAL)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

fuzz-seeds: $(FUZZ_SEEDS_BIN)
	$(FUZZ_SEEDS_BIN) tests/fuzz/corpus

# Line coverage of each target's corpus (make fuzz first, for a corpus
# worth measuring): the targets built with clang's source coverage and
# replay.c, each corpus replayed, then llvm-cov's table for the files the
# target is about.
FUZZ_COV_DIR   = $(BUILD)/fuzz-cov
FUZZ_COV_FLAGS = -fprofile-instr-generate -fcoverage-mapping
FUZZ_COV_BINS  = $(patsubst %,$(FUZZ_COV_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_COV_FILES_wire    = wire/decode.c wire/codec.c wire/msgs.c
FUZZ_COV_FILES_wal     = $(wildcard src/storage/wal*.c)
FUZZ_COV_FILES_statedb = src/storage/statedb.c src/store/store.c \
                         src/store/store_index.c
FUZZ_COV_FILES_token   = src/ca/ca_token.c src/ca/ca_cert.c \
                         src/ca/ca_root.c
FUZZ_COV_FILES_ctl     = $(wildcard tools/ctl/*.c)
FUZZ_COV_FILES_control = $(wildcard src/control/*.c src/store/*.c)

$(FUZZ_COV_DIR)/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC-COV  $<")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) -std=c11 -g -O0 -DSHOAL_TEST_BUILD \
	    $(FUZZ_COV_FLAGS) -c -o $@ $<

$(FUZZ_COV_DIR)/libshoal-cov.a: $(call obj,$(FUZZ_COV_DIR),$(FUZZ_LIB_SRC))
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(FUZZ_COV_BINS): $(FUZZ_COV_DIR)/fuzz_%: \
        $(FUZZ_COV_DIR)/obj/tests/fuzz/fuzz_%.o \
        $(FUZZ_COV_DIR)/obj/tests/fuzz/replay.o $(FUZZ_COV_DIR)/libshoal-cov.a
	$(if $(Q),@echo "  LD-COV  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_COV_FLAGS) -o $@ $^ $(LDLIBS)

fuzz-coverage: $(FUZZ_COV_BINS)
	@$(foreach t,$(FUZZ_TARGETS),\
	    rm -f $(FUZZ_COV_DIR)/$(t).profraw && \
	    LLVM_PROFILE_FILE=$(FUZZ_COV_DIR)/$(t).profraw \
	    $(FUZZ_COV_DIR)/fuzz_$(t) -q $(call fuzz_inputs,$(t)) \
	        $(wildcard $(FUZZ_DIR)/corpus/$(t)) && \
	    llvm-profdata-14 merge -o $(FUZZ_COV_DIR)/$(t).profdata \
	        $(FUZZ_COV_DIR)/$(t).profraw && \
	    echo "fuzz_$(t):" && \
	    llvm-cov-14 report $(FUZZ_COV_DIR)/fuzz_$(t) \
	        -instr-profile=$(FUZZ_COV_DIR)/$(t).profdata \
	        $(FUZZ_COV_FILES_$(t)) &&) true
