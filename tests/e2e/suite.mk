# tests/e2e/suite.mk: the crash-point sweep of one manager (issue 6) and
# the test of that test. Included by the top-level Makefile.
#
#   make check-crash   the sweep (tests/e2e/test_crash.c) against the test
#                      build of shoald; then a shoald built with
#                      SHOAL_BUG_ACK_BEFORE_SYNC (answers before the log
#                      sync) must fail it with a lost acknowledged write;
#                      then the release objects must hold no failpoint
#                      (part of make test)
#
# test_crash.c has a runner of its own: the sweep takes minutes, and a
# skipped Criterion test leaks its runner's bookkeeping, which the leak
# gate of check-e2e would count.

CRASH_BROKEN     = $(TBUILD)/crash-broken
CRASH_BROKEN_D   = $(CRASH_BROKEN)/shoald
CRASH_LOG        = $(TBUILD)/crash.log
T_CRASH          = $(TBUILD)/crash-tests
CRASH_ENV        = SHOALD=$(CURDIR)/$(T_SHOALD) \
                   SHOALCTL=$(CURDIR)/$(T_SHOALCTL) CRITERION_NO_EARLY_EXIT=1
# The sweep's cases that die before the log write of a batch: they see the
# broken variant's acknowledged writes vanish.
CRASH_BROKEN_POINTS = wal_write
# Release objects in which no failpoint symbol may appear.
CRASH_REL_OBJS   = $(call obj,$(BUILD),src/manager/failpoint.c \
                     src/manager/commit.c src/manager/cluster.c \
                     src/manager/manager.c \
                     src/storage/storage_util.c src/storage/wal.c \
                     src/storage/statedb.c)

# Only commit.c and cluster.c differ: the rest is the test build's
# objects, so the variant costs two compiles and one link.
CRASH_BUG_SRC    = src/manager/commit.c src/manager/cluster.c

$(CRASH_BROKEN)/%.o: src/manager/%.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC-BRK  $<")
	$(Q)$(CC) $(CPPFLAGS) -DSHOAL_TEST_BUILD -DSHOAL_BUG_ACK_BEFORE_SYNC \
	    $(CFLAGS) $(SAN) -c -o $@ $<

$(CRASH_BROKEN_D): $(patsubst src/manager/%.c,$(CRASH_BROKEN)/%.o,\
                     $(CRASH_BUG_SRC)) \
        $(call obj,$(TBUILD),src/manager/main.c \
            $(filter-out $(CRASH_BUG_SRC),$(CORE_SRC) $(MGR_SRC))) \
        $(T_LIBSHOAL)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

.PHONY: check-crash

$(T_CRASH): $(call obj,$(TBUILD),tests/e2e/test_crash.c \
                $(wildcard tests/lib/*.c)) $(T_LIBSHOAL)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcriterion

check-crash: deps $(T_SHOALD) $(T_SHOALCTL) $(T_CRASH) $(CRASH_BROKEN_D) \
             $(CRASH_REL_OBJS)
	@set -o pipefail; $(CRASH_ENV) $(T_CRASH) --jobs 2 $(CRASH_ARGS) 2>&1 | tee $(CRASH_LOG)
	@! grep -q "ERROR: LeakSanitizer" $(CRASH_LOG) || \
	    { echo "crash sweep leaked memory: see above"; exit 1; }
	@if $(CRASH_ENV) SHOALD=$(CURDIR)/$(CRASH_BROKEN_D) \
	    SHOAL_CRASH_POINTS=$(CRASH_BROKEN_POINTS) $(T_CRASH) --jobs 2 \
	    --filter 'e2e_crash/crash_point' >$(CRASH_LOG).broken 2>&1; then \
	    echo "check-crash: the ack-before-sync variant passed the sweep"; \
	    exit 1; \
	fi; \
	n=$$(grep -c "acknowledged write lost" $(CRASH_LOG).broken); \
	if [ "$$n" = 0 ]; then \
	    echo "check-crash: the ack-before-sync variant failed, but not" \
	         "by losing a write: see $(CRASH_LOG).broken"; exit 1; \
	fi; \
	echo "check-crash: the ack-before-sync variant is caught:" \
	     "$$n case(s) lost acknowledged writes"
	@if nm $(CRASH_REL_OBJS) | awk 'NF >= 2 {print $$NF}' | \
	    grep -Ei 'failpoint|storage_fp|storage__fp'; then \
	    echo "check-crash: failpoints in a release object"; exit 1; fi; \
	echo "check-crash: no failpoint in the release objects"

EXTRA_CHECKS += check-crash

# The nemesis suite's building blocks: proxy, checkers and their tests.
include tests/e2e/nemesis/nemesis.mk
