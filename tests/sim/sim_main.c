/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * sim_main.c: the simulator's command line.
 *
 *   sim --seeds N [--start S]     run seeds S .. S+N-1 (S defaults to 1)
 *   sim --seed S [--trace]        replay one seed, optionally its trace
 *   sim --forever [--start S]     run seeds until stopped (sim-long)
 *   sim --replay-check S          run S twice, compare traces byte for
 *                                 byte
 *   sim --expect-violation ...    succeed only if some seed fails (the
 *                                 broken-variant self-test)
 *   sim --timing [--trials N]     the election-timing table
 *
 * Exit status: 0 when all seeds held (or, with --expect-violation, when
 * one failed), 1 otherwise.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int
replay_check(uint64_t seed)
{
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    FILE *fa = open_memstream(&a, &na);
    FILE *fb = open_memstream(&b, &nb);
    uint64_t ha = 0, hb = 0;
    int rc;

    if (fa == NULL || fb == NULL) {
        return 1;
    }
    (void)sim_run_seed(seed, false, fa, &ha);
    (void)sim_run_seed(seed, false, fb, &hb);
    fclose(fa);
    fclose(fb);
    rc = na == nb && memcmp(a, b, na) == 0 && ha == hb ? 0 : 1;
    printf("replay seed %" PRIu64 ": %zu trace bytes, %s\n", seed, na,
           rc == 0 ? "identical" : "DIFFERENT");
    free(a);
    free(b);
    return rc;
}

static int
usage(void)
{
    fprintf(stderr, "usage: sim --seeds N [--start S] | --seed S [--trace] "
            "| --forever | --replay-check S | --timing [--trials N] "
            "[--expect-violation]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    uint64_t start = 1, count = 0, trials = 1000;
    bool forever = false, trace = false, expect = false, timing = false;
    bool one = false;
    unsigned failures = 0;

    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;

        if (strcmp(a, "--seeds") == 0 && v != NULL) {
            count = strtoull(v, NULL, 0);
            k++;
        } else if ((strcmp(a, "--start") == 0 || strcmp(a, "--seed") == 0) &&
                   v != NULL) {
            start = strtoull(v, NULL, 0);
            one = strcmp(a, "--seed") == 0;
            k++;
        } else if (strcmp(a, "--replay-check") == 0 && v != NULL) {
            return replay_check(strtoull(v, NULL, 0));
        } else if (strcmp(a, "--trials") == 0 && v != NULL) {
            trials = strtoull(v, NULL, 0);
            k++;
        } else if (strcmp(a, "--forever") == 0) {
            forever = true;
        } else if (strcmp(a, "--trace") == 0) {
            trace = true;
        } else if (strcmp(a, "--expect-violation") == 0) {
            expect = true;
        } else if (strcmp(a, "--timing") == 0) {
            timing = true;
        } else {
            return usage();
        }
    }
    if (timing) {
        return sim_timing_main((unsigned)trials, stdout);
    }
    if (one) {
        return sim_run_seed(start, true, trace ? stdout : NULL, NULL);
    }
    if (count == 0 && !forever) {
        return usage();
    }
    for (uint64_t seed = start; forever || seed < start + count; seed++) {
        if (sim_run_seed(seed, false, NULL, NULL) != 0) {
            failures++;
            if (expect) {
                printf("broken variant caught at seed %" PRIu64
                       " (seed %" PRIu64 " of the run)\n",
                       seed, seed - start + 1);
                return 0;
            }
            fprintf(stderr, "replay: make sim SEED=%" PRIu64 "\n", seed);
            return 1;
        }
        if (forever && seed % 1000 == 0) {
            printf("%" PRIu64 " seeds ok\n", seed - start + 1);
            fflush(stdout);
        }
    }
    if (expect) {
        printf("broken variant NOT caught in %" PRIu64 " seeds\n", count);
        return 1;
    }
    printf("%" PRIu64 " seeds ok (%" PRIu64 "..%" PRIu64 ")\n", count, start,
           start + count - 1);
    return failures == 0 ? 0 : 1;
}
