/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * check_main.c: nemesis-check FILE, the verdict on one history.
 *
 * Prints every anomaly with the lines of the operations involved, the
 * figures of each workload and a last line "valid" or "INVALID: ...".
 * Exit status: 0 valid, 1 anomalies found, 2 the history could not be
 * read or breaks the format (checker.h), so that a runner can tell a
 * bug in shoal from a bug in itself.
 */
#include <stdio.h>
#include <string.h>

#include "checker.h"
#include "history.h"

int
main(int argc, char **argv)
{
    struct nem_hist h = {0};
    struct nem_report r = {0};
    char err[512];
    int rc;

    if (argc != 2 || strcmp(argv[1], "-h") == 0) {
        fprintf(stderr, "usage: nemesis-check HISTORY\n");
        return 2;
    }
    rc = nem_hist_load(argv[1], &h, err, sizeof err);
    if (rc == 0) {
        rc = nem_check_history(&h, &r, err, sizeof err);
    }
    if (rc != 0) {
        fprintf(stderr, "nemesis-check: %s: %s\n", argv[1],
                err[0] != '\0' ? err : strerror(-rc));
        nem_report_fini(&r);
        nem_hist_fini(&h);
        return 2;
    }
    nem_report_print(&r, stdout);
    rc = r.n_total == 0 ? 0 : 1;
    nem_report_fini(&r);
    nem_hist_fini(&h);
    return rc;
}
