# tests/e2e/nemesis/nemesis.mk: the building blocks of the nemesis suite
# (issue 6). Included by tests/e2e/suite.mk.
#
#   make check-nemesis-unit   the checkers on hand-written and generated
#                             histories, and the fault proxy between plain
#                             TCP echo endpoints (part of make test)
#
# Programs, built with the sanitizers like every test program:
#   $(TBUILD)/nemesis-proxy   the fault-injecting TCP proxy (proxy.c)
#   $(TBUILD)/nemesis-check   nemesis-check HISTORY: the verdict on a run

NEM_DIR       = tests/e2e/nemesis
NEM_PROXY     = $(TBUILD)/nemesis-proxy
NEM_CHECK     = $(TBUILD)/nemesis-check
NEM_TESTS     = $(TBUILD)/nemesis-tests
NEM_LIB_SRC   = $(NEM_DIR)/history.c $(NEM_DIR)/checker.c
NEM_TEST_SRC  = $(wildcard $(NEM_DIR)/test_*.c)
NEM_LOG       = $(TBUILD)/nemesis-unit.log

$(NEM_PROXY): $(call obj,$(TBUILD),$(NEM_DIR)/proxy.c)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^

$(NEM_CHECK): $(call obj,$(TBUILD),$(NEM_LIB_SRC) $(NEM_DIR)/check_main.c)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ -pthread

$(NEM_TESTS): $(call obj,$(TBUILD),$(NEM_LIB_SRC) $(NEM_TEST_SRC))
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ -pthread -lcriterion

.PHONY: check-nemesis-unit

# As check-unit: Criterion counts a leaking test as passed, so the
# sanitizer's report (of the runner or of a proxy it started, whose
# stderr is the runner's) is what fails the run.
check-nemesis-unit: $(NEM_PROXY) $(NEM_CHECK) $(NEM_TESTS)
	@set -o pipefail; NEMESIS_PROXY=$(CURDIR)/$(NEM_PROXY) \
	    NEMESIS_CHECK=$(CURDIR)/$(NEM_CHECK) CRITERION_NO_EARLY_EXIT=1 \
	    $(NEM_TESTS) --jobs 1 --timeout 120 $(NEM_ARGS) 2>&1 | \
	    tee $(NEM_LOG)
	@! grep -q "ERROR: LeakSanitizer" $(NEM_LOG) || \
	    { echo "nemesis unit tests leaked memory: see above"; exit 1; }

EXTRA_CHECKS += check-nemesis-unit
