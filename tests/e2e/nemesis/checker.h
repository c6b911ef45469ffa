/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * checker.h: the verdicts on a nemesis history (history.h): linearizable
 * compare-and-set registers, and sets of uniquely named creates.
 *
 * The operations, by name (any other op is a history error):
 *
 *   register (a config updated by version; version 0 = absent, value "-")
 *     invoke C read K T              ok C read K <version> <value> T
 *     invoke C cas K <base> <value> T
 *                                    ok C cas K <new version> T
 *                                    fail/info C cas K [reason...] T
 *   set (creates of uniquely named objects, and listings)
 *     invoke C add S <name> T        ok/fail/info C add S [...] T
 *     invoke C list S T              ok C list S <name>... T
 *
 * A key is either a register or a set. Written values are unique per key
 * and never "-"; names added are unique per set. Versions are decimal and
 * unique across every key (shoal's are Raft log indexes).
 */
#ifndef SHOAL_TESTS_NEMESIS_CHECKER_H
#define SHOAL_TESTS_NEMESIS_CHECKER_H

#include <stddef.h>
#include <stdio.h>

#include "history.h"

enum nem_anomaly_kind {
    /* register */
    NEM_A_UNWRITTEN_READ,    /* a read saw a value no write produced */
    NEM_A_FAILED_READ,       /* a read saw the value of a refused write */
    NEM_A_VERSION_MISMATCH,  /* a value seen at another version than the
                                one its write produced */
    NEM_A_DOUBLE_CAS,        /* two writes took effect from one version */
    NEM_A_DOUBLE_VERSION,    /* two writes produced one version */
    NEM_A_VERSION_NOT_NEWER, /* a write's version is not above its base */
    NEM_A_MISSING_WRITE,     /* a write's base version has no producer */
    NEM_A_FORK,              /* two version chains interleave */
    NEM_A_STALE_READ,        /* a read missed a write completed before it */
    NEM_A_READ_BACKWARDS,    /* a read older than one completed before it */
    NEM_A_FUTURE_READ,       /* a read saw a write not yet invoked */
    NEM_A_WRITE_ORDER,       /* versions against the real-time order */
    /* set */
    NEM_A_LOST,            /* an acknowledged add missing from a list */
    NEM_A_DUPLICATE,       /* a name twice in one list */
    NEM_A_PHANTOM,         /* a name listed but never (yet) added */
    NEM_A_REFUSED_PRESENT, /* a name whose add was refused, listed */
    NEM_A_COUNT
};

/* One anomaly: its kind and a message naming the operations involved by
 * line, enough to read the counterexample in the history file. */
struct nem_anomaly {
    enum nem_anomaly_kind kind;
    char msg[768];
};

/* What a check found. Zero it before the first check. */
struct nem_report {
    struct nem_anomaly *list; /* the first NEM_REPORT_KEEP anomalies */
    size_t n;
    size_t n_total;             /* all anomalies, kept or not */
    size_t counts[NEM_A_COUNT]; /* per kind; for sets, distinct names */
    /* Figures of the register workload. */
    size_t reg_keys;
    size_t reg_reads;           /* ok reads */
    size_t reg_writes[3];       /* cas ok, failed, unknown */
    size_t reg_unknown_applied; /* unknown writes shown to have happened */
    /* Figures of the set workload. */
    size_t set_keys;
    size_t set_adds[3];         /* add ok, failed, unknown */
    size_t set_lists;           /* ok lists checked */
    size_t set_unknown_present; /* unknown adds seen in some list */
};

#define NEM_REPORT_KEEP 1000

/*
 * Check every register and set of h, adding what it finds to r. h is
 * borrowed. Returns 0 when the history could be checked (it is valid iff
 * r->n_total is 0); -EINVAL when it breaks the rules above (unknown op,
 * wrong argument count, a value written twice, a key used as register
 * and set), with the reason in err (errlen bytes); -ENOMEM.
 */
int nem_check_history(const struct nem_hist *h, struct nem_report *r, char *err,
                      size_t errlen);

/* The short name of a kind ("stale-read", "lost", ...). */
const char *nem_anomaly_name(enum nem_anomaly_kind k);

/* Print the anomalies, the figures and the verdict line ("valid" or
 * "INVALID: N anomalies") to out. */
void nem_report_print(const struct nem_report *r, FILE *out);

/* Free what r holds and zero it. */
void nem_report_fini(struct nem_report *r);

#endif
