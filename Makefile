# shoal: one non-recursive Makefile (see ../shared/reference/STYLE.md 3.11).
#
#   make            release build of shoald, shoalctl, shoal-bench
#   make run        install missing Debian packages, build, start a manager
#   make test       every suite, built with ASan and UBSan
#   make deps       install the Debian packages the build needs
#
# BUILD names the output folder, so that two builds can run side by side.

SHELL     := /bin/bash
BUILD     ?= build
TBUILD    ?= $(BUILD)/test
CC        ?= cc
V         ?= 0
Q          = $(if $(filter 1,$(V)),,@)

PKGS      = liblmdb-dev libssl-dev libcriterion-dev libjansson-dev \
            libxxhash-dev uthash-dev libbsd-dev libsmartcols-dev \
            libsystemd-dev pkg-config
PC_LIBS   = jansson smartcols libxxhash lmdb openssl libsystemd

WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wmissing-declarations -Wpointer-arith \
            -Wsign-compare -Wformat=2 -Wno-format-nonliteral
CPPFLAGS  = -D_GNU_SOURCE -Iinclude -Isrc -Iwire \
            $(shell pkg-config --cflags $(PC_LIBS) 2>/dev/null)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) -MMD -MP
SAN       = -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
LDLIBS    = $(shell pkg-config --libs $(PC_LIBS) 2>/dev/null) -lm

VERSION  := 0.1.0
GITREV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CPPFLAGS += -DSHOAL_VERSION='"$(VERSION)"' -DSHOAL_GITREV='"$(GITREV)"'

# Sources by artefact. Each module is a folder; its files are found by
# wildcard so that a new file needs no Makefile change.
BASE_SRC   = $(wildcard src/base/*.c) $(wildcard wire/*.c)
CLIENT_SRC = $(wildcard src/client/*.c)
# raft is the pure core that src/manager/cluster.c drives; tests/sim/suite.mk
# also builds it on its own for the simulator and its purity check.
CORE_DIRS  = loop store storage control ca peer raft
CORE_SRC   = $(foreach d,$(CORE_DIRS),$(wildcard src/$(d)/*.c))
MGR_SRC    = $(filter-out src/manager/main.c,$(wildcard src/manager/*.c))
CTL_SRC    = $(filter-out tools/ctl/main.c,$(wildcard tools/ctl/*.c))
BENCH_SRC  = $(wildcard tools/bench/*.c)
UNIT_SRC   = $(wildcard tests/unit/*.c)
# The crash sweep has its own runner (tests/e2e/suite.mk).
E2E_SRC    = $(filter-out tests/e2e/test_crash.c,$(wildcard tests/e2e/*.c)) \
             $(wildcard tests/lib/*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))

# Release objects and programs.
LIBSHOAL   = $(BUILD)/libshoal.a
LIBCORE    = $(BUILD)/libshoalcore.a
SHOALD     = $(BUILD)/shoald
SHOALCTL   = $(BUILD)/shoalctl
SHOALBENCH = $(BUILD)/shoal-bench

# Test objects and programs: the same sources with the sanitizers.
T_LIBSHOAL = $(TBUILD)/libshoal.a
T_LIBCORE  = $(TBUILD)/libshoalcore.a
T_SHOALD   = $(TBUILD)/shoald
T_SHOALCTL = $(TBUILD)/shoalctl
T_UNIT     = $(TBUILD)/unit-tests
T_E2E      = $(TBUILD)/e2e-tests

.PHONY: all run test check-unit check-e2e deps clean format format-check \
        test-build

all: $(SHOALD) $(SHOALCTL) $(if $(BENCH_SRC),$(SHOALBENCH))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(TBUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC-SAN  $<")
	$(Q)$(CC) $(CPPFLAGS) -DSHOAL_TEST_BUILD $(CFLAGS) $(SAN) -c -o $@ $<

# A rule set per build flavour: $(1) is the build folder, $(2) extra
# link flags.
define programs
$(1)/libshoal.a: $(call obj,$(1),$(BASE_SRC) $(CLIENT_SRC))
	@mkdir -p $$(dir $$@)
	$(Q)$(AR) rcs $$@ $$^

$(1)/libshoalcore.a: $(call obj,$(1),$(CORE_SRC) $(MGR_SRC))
	@mkdir -p $$(dir $$@)
	$(Q)$(AR) rcs $$@ $$^

$(1)/shoald: $(call obj,$(1),src/manager/main.c) $(1)/libshoalcore.a \
             $(1)/libshoal.a
	$(if $(Q),@echo "  LD      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -o $$@ $$^ $(LDLIBS)

$(1)/shoalctl: $(call obj,$(1),tools/ctl/main.c $(CTL_SRC)) \
               $(1)/libshoal.a
	$(if $(Q),@echo "  LD      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -o $$@ $$^ $(LDLIBS)

$(1)/shoal-bench: $(call obj,$(1),$(BENCH_SRC)) $(1)/libshoal.a
	$(if $(Q),@echo "  LD      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -o $$@ $$^ $(LDLIBS)
endef

$(eval $(call programs,$(BUILD),))
$(eval $(call programs,$(TBUILD),$(SAN)))

# The unit runner links the daemon's modules and the ctl's parsers, so
# each can be tested without a process.
$(T_UNIT): $(call obj,$(TBUILD),$(UNIT_SRC) $(CTL_SRC)) $(T_LIBCORE) \
           $(T_LIBSHOAL)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcriterion

# The end-to-end runner starts the real, sanitized binaries.
$(T_E2E): $(call obj,$(TBUILD),$(E2E_SRC)) $(T_LIBSHOAL)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcriterion

# Further suites add their own rules here.
-include $(wildcard tests/*/suite.mk)

test-build: $(T_SHOALD) $(T_SHOALCTL) $(T_UNIT) $(T_E2E)

# Criterion counts a test that leaks as passed, so the leak reports of
# the sanitizer are what fails the run. One job at a time: with several,
# Criterion's own runner leaks a few bytes of its bookkeeping.
check-unit: deps $(T_UNIT)
	@set -o pipefail; CRITERION_NO_EARLY_EXIT=1 $(T_UNIT) --jobs 1 \
	    --timeout 60 $(UNIT_ARGS) 2>&1 | tee $(TBUILD)/unit.log
	@! grep -q "ERROR: LeakSanitizer" $(TBUILD)/unit.log || \
	    { echo "unit tests leaked memory: see above"; exit 1; }

check-e2e: deps $(T_SHOALD) $(T_SHOALCTL) $(T_E2E)
	@set -o pipefail; SHOALD=$(CURDIR)/$(T_SHOALD) \
	    SHOALCTL=$(CURDIR)/$(T_SHOALCTL) CRITERION_NO_EARLY_EXIT=1 \
	    $(T_E2E) --jobs 2 $(E2E_ARGS) 2>&1 | tee $(TBUILD)/e2e.log
	@! grep -q "ERROR: LeakSanitizer" $(TBUILD)/e2e.log || \
	    { echo "end-to-end tests leaked memory: see above"; exit 1; }

test: check-unit check-e2e $(EXTRA_CHECKS)

RUN_DIR ?= $(CURDIR)/run
run: deps all
	@echo "shoald: state in $(RUN_DIR), socket $(RUN_DIR)/control.sock"
	@echo "try:    export SHOAL_SOCKET=$(RUN_DIR)/control.sock;" \
	      "$(SHOALCTL) cluster ls"
	$(SHOALD) --state-dir $(RUN_DIR) --hostname $$(hostname)

# Installs the Debian packages of $(1) that are missing, and nothing when
# all are there; with sudo when not root.
define install_missing
	@missing=""; for p in $(1); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	        $$missing; \
	fi
endef

deps:
	$(call install_missing,$(PKGS))

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
