/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_checker.c: the history parser and the register and set checkers,
 * on hand-written histories (each anomaly the suite must catch, and
 * valid histories it must accept) and on histories generated from a
 * simulated atomic register, then broken by one mutation.
 *
 * Times in the hand-written histories are small integers; only their
 * order matters.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checker.h"
#include "history.h"

TestSuite(nemesis_history, .timeout = 10.0);
TestSuite(nemesis_register, .timeout = 10.0);
TestSuite(nemesis_set, .timeout = 10.0);
TestSuite(nemesis_random, .timeout = 60.0);
TestSuite(nemesis_check_tool, .timeout = 10.0);

/* Parse text; returns the parser's code, the message in err. */
static int
parse(const char *text, struct nem_hist *h, char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int rc;

    cr_assert_not_null(f);
    rc = nem_hist_read(f, h, err, errlen);
    fclose(f);
    return rc;
}

/* Parse and check text, which must be well-formed, into r. */
static void
check(const char *text, struct nem_report *r)
{
    struct nem_hist h = {0};
    char err[512];

    cr_assert_eq(parse(text, &h, err, sizeof err), 0, "parse: %s", err);
    cr_assert_eq(nem_check_history(&h, r, err, sizeof err), 0, "check: %s",
                 err);
    nem_hist_fini(&h);
}

/* The check's code for text, with the reason in err. */
static int
check_code(const char *text, char *err, size_t errlen)
{
    struct nem_hist h = {0};
    struct nem_report r = {0};
    int rc = parse(text, &h, err, errlen);

    if (rc == 0) {
        rc = nem_check_history(&h, &r, err, errlen);
    }
    nem_report_fini(&r);
    nem_hist_fini(&h);
    return rc;
}

static void
dump(const struct nem_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        cr_log_info("%s: %s", nem_anomaly_name(r->list[i].kind),
                    r->list[i].msg);
    }
}

/* Assert that r found exactly one anomaly, of kind k, whose message
 * holds needle. */
static void
expect_only(const struct nem_report *r, enum nem_anomaly_kind k,
            const char *needle)
{
    dump(r);
    cr_assert_eq(r->n_total, 1, "expected one %s, found %zu anomalies",
                 nem_anomaly_name(k), r->n_total);
    cr_assert_eq(r->list[0].kind, k, "expected %s, found %s",
                 nem_anomaly_name(k), nem_anomaly_name(r->list[0].kind));
    cr_assert_not_null(strstr(r->list[0].msg, needle), "'%s' not in: %s",
                       needle, r->list[0].msg);
}

static void
expect_valid(const char *text)
{
    struct nem_report r = {0};

    check(text, &r);
    dump(&r);
    cr_expect_eq(r.n_total, 0);
    nem_report_fini(&r);
}

static void
expect_anomaly(const char *text, enum nem_anomaly_kind k, const char *needle)
{
    struct nem_report r = {0};

    check(text, &r);
    expect_only(&r, k, needle);
    nem_report_fini(&r);
}

/* ---- The parser --------------------------------------------------------- */

/* Invokes pair with the next completion of the same client; an invoke
 * never completed becomes an unknown op. */
Test(nemesis_history, pairs_completions_with_invokes)
{
    struct nem_hist h = {0};
    char err[256];

    cr_assert_eq(parse("# a comment\n"
                       "invoke a cas k 0 x 1\n"
                       "invoke b read k 2\n"
                       "ok b read k 0 - 3\n"
                       "\n"
                       "ok a cas k 7 4\n"
                       "invoke b cas k 7 y 5\n",
                       &h, err, sizeof err),
                 0, "%s", err);

    cr_assert_eq(h.n, 3);
    cr_expect_str_eq(h.ops[0].client, "a");
    cr_expect_eq(h.ops[0].outcome, NEM_OK);
    cr_expect_eq(h.ops[0].inv, 1);
    cr_expect_eq(h.ops[0].ret, 4);
    cr_expect_eq(h.ops[0].n_out, 1);
    cr_expect_str_eq(h.ops[0].out_args[0], "7");
    cr_expect_eq(h.ops[1].ret, 3);
    cr_expect_eq(h.ops[2].outcome, NEM_INFO);
    cr_expect_eq(h.ops[2].ret, NEM_TIME_NEVER);
    nem_hist_fini(&h);
}

/* A completion with nothing in flight, a second invoke of a busy client,
 * a completion of another op, and a bad time are refused by line. */
Test(nemesis_history, rejects_broken_pairing_with_line)
{
    char err[256];

    cr_expect_eq(check_code("ok a read k 0 - 1\n", err, sizeof err), -EINVAL);
    cr_expect_not_null(strstr(err, "line 1"), "%s", err);
    cr_expect_eq(
        check_code("invoke a read k 1\ninvoke a read k 2\n", err, sizeof err),
        -EINVAL);
    cr_expect_not_null(strstr(err, "line 2"), "%s", err);
    cr_expect_eq(
        check_code("invoke a read k 1\nok a cas k 5 2\n", err, sizeof err),
        -EINVAL);
    cr_expect_eq(check_code("invoke a read k x\n", err, sizeof err), -EINVAL);
    cr_expect_eq(check_code("done a read k 1\n", err, sizeof err), -EINVAL);
    cr_expect_eq(
        check_code("invoke a read k 5\nok a read k 0 - 4\n", err, sizeof err),
        -EINVAL);
}

/* A value written twice, an unknown op and a key used two ways cannot
 * be checked, and say so. */
Test(nemesis_history, rejects_histories_the_checker_cannot_judge)
{
    char err[256];

    cr_expect_eq(check_code("invoke a cas k 0 x 1\nok a cas k 3 2\n"
                            "invoke a cas k 3 x 3\nok a cas k 4 4\n",
                            err, sizeof err),
                 -EINVAL);
    cr_expect_not_null(strstr(err, "written twice"), "%s", err);
    cr_expect_eq(
        check_code("invoke a frob k 1\nok a frob k 2\n", err, sizeof err),
        -EINVAL);
    cr_expect_not_null(strstr(err, "unknown op"), "%s", err);
    cr_expect_eq(check_code("invoke a read k 1\nok a read k 0 - 2\n"
                            "invoke a add k n 3\nok a add k 4\n",
                            err, sizeof err),
                 -EINVAL);
    cr_expect_not_null(strstr(err, "register and as a set"), "%s", err);
}

/* The recorder writes lines the parser reads back, with times that never
 * go back, and refuses tokens with spaces. */
Test(nemesis_history, recorder_round_trips)
{
    char path[] = "/tmp/nemesis-hist-XXXXXX";
    int fd = mkstemp(path);
    struct nem_rec rec;
    struct nem_hist h = {0};
    char err[256];

    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(nem_rec_open(&rec, path), 0);

    cr_expect_eq(nem_rec_event(&rec, NEM_INVOKE, "c1", "cas", "k", "0 v1"), 0);
    cr_expect_eq(nem_rec_event(&rec, NEM_OK, "c1", "cas", "k", "12"), 0);
    cr_expect_eq(nem_rec_event(&rec, NEM_INVOKE, "c1", "read", "k", NULL), 0);
    cr_expect_eq(nem_rec_event(&rec, NEM_INFO, "c1", "read", "k", ""), 0);
    cr_expect_eq(nem_rec_event(&rec, NEM_OK, "c 1", "read", "k", ""), -EINVAL);
    cr_assert_eq(nem_rec_close(&rec), 0);

    cr_assert_eq(nem_hist_load(path, &h, err, sizeof err), 0, "%s", err);
    cr_assert_eq(h.n, 2);
    cr_expect_str_eq(h.ops[0].in_args[1], "v1");
    cr_expect_leq(h.ops[0].inv, h.ops[0].ret);
    cr_expect_leq(h.ops[0].ret, h.ops[1].inv);
    cr_expect_eq(h.ops[1].outcome, NEM_INFO);
    nem_hist_fini(&h);
    unlink(path);
}

/* ---- Register: valid histories ----------------------------------------- */

/* Overlapping reads may see the old or the new version; an unknown write
 * that a read saw happened, one nobody saw may not have; a refused write
 * is absent. */
Test(nemesis_register, accepts_concurrent_and_unknown_ops)
{
    struct nem_report r = {0};

    check("invoke a cas k 0 x 10\n"
          "invoke b read k 11\n"
          "ok b read k 0 - 12\n"
          "ok a cas k 17 20\n"
          "invoke b cas k 17 y 21\n"
          "invoke a read k 22\n"
          "ok a read k 17 x 23\n"
          "info b cas k 30\n"
          "invoke c read k 40\n"
          "ok c read k 25 y 41\n"
          "invoke a cas k 17 z 50\n"
          "fail a cas k conflict 51\n"
          "invoke b cas k 25 w 60\n"
          "info b cas k 61\n"
          "invoke c read k 70\n"
          "ok c read k 25 y 71\n",
          &r);

    dump(&r);
    cr_expect_eq(r.n_total, 0);
    cr_expect_eq(r.reg_unknown_applied, 1);
    cr_expect_eq(r.reg_reads, 4);
    cr_expect_eq(r.reg_writes[0], 1);
    cr_expect_eq(r.reg_writes[1], 1);
    cr_expect_eq(r.reg_writes[2], 2);
    nem_report_fini(&r);
}

/* A read that overlaps a write may return it before the write's reply:
 * the write took effect somewhere inside its interval. */
Test(nemesis_register, accepts_read_of_write_still_in_flight)
{
    expect_valid("invoke a cas k 0 x 10\n"
                 "invoke b read k 11\n"
                 "ok b read k 3 x 12\n"
                 "invoke c read k 13\n"
                 "ok c read k 3 x 14\n"
                 "ok a cas k 3 20\n");
}

/* Equal stamps order nothing: a read invoked at the instant a write
 * completed may still miss it. */
Test(nemesis_register, accepts_equal_stamps_as_concurrent)
{
    expect_valid("invoke a cas k 0 x 10\n"
                 "ok a cas k 5 20\n"
                 "invoke b read k 20\n"
                 "ok b read k 0 - 21\n");
}

/* A base that several unknown writes could lead to takes one: the one
 * based on the version before it can have produced it directly. */
Test(nemesis_register, fills_gap_with_one_of_a_chain)
{
    struct nem_report r = {0};

    check("invoke a cas k 0 x 10\n"
          "info a cas k 11\n"
          "invoke b cas k 3 y 12\n"
          "info b cas k 13\n"
          "invoke c cas k 6 z 20\n"
          "ok c cas k 9 21\n",
          &r);

    dump(&r);
    cr_expect_eq(r.n_total, 0);
    cr_expect_eq(r.reg_unknown_applied, 1);
    nem_report_fini(&r);
}

/* Of several unknown writes that could fill a gap, the checker takes the
 * one invoked first: here only that one fits before a completed read. */
Test(nemesis_register, fills_gap_with_earliest_unknown_write)
{
    expect_valid("invoke a cas k 0 x 10\n"
                 "info a cas k 11\n"
                 "invoke c read k 15\n"
                 "ok c read k 9 z 30\n"
                 "invoke d cas k 0 w 40\n"
                 "info d cas k 41\n"
                 "invoke b cas k 4 z 12\n"
                 "ok b cas k 9 29\n");
}

/* An ok write based on a version that only an unknown write could have
 * produced is explained by that write. */
Test(nemesis_register, fills_gap_with_unknown_write)
{
    struct nem_report r = {0};

    check("invoke a cas k 0 x 10\n"
          "info a cas k 11\n"
          "invoke b cas k 4 y 20\n"
          "ok b cas k 9 21\n",
          &r);

    dump(&r);
    cr_expect_eq(r.n_total, 0);
    cr_expect_eq(r.reg_unknown_applied, 1);
    nem_report_fini(&r);
}

/* Keys are independent registers sharing one version space. */
Test(nemesis_register, accepts_independent_keys)
{
    expect_valid("invoke a cas k1 0 x 10\n"
                 "invoke b cas k2 0 y 11\n"
                 "ok a cas k1 5 12\n"
                 "ok b cas k2 6 13\n"
                 "invoke a read k2 14\n"
                 "ok a read k2 6 y 15\n"
                 "invoke b read k1 16\n"
                 "ok b read k1 5 x 17\n");
}

/* ---- Register: anomalies ------------------------------------------------ */

/* A read invoked after a write completed must not return the version the
 * write replaced. */
Test(nemesis_register, detects_stale_read_after_completed_write)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "ok a cas k 5 20\n"
                   "invoke b read k 30\n"
                   "ok b read k 0 - 40\n",
                   NEM_A_STALE_READ, "had already produced version 5");
}

/* Two CAS from the same version cannot both succeed. */
Test(nemesis_register, detects_two_cas_from_one_version)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "invoke b cas k 0 y 11\n"
                   "ok a cas k 5 20\n"
                   "ok b cas k 6 21\n",
                   NEM_A_DOUBLE_CAS, "both took effect from version 0");
}

/* A refused write did not happen: its value is never read. */
Test(nemesis_register, detects_read_of_failed_write)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "fail a cas k 20\n"
                   "invoke b read k 30\n"
                   "ok b read k 7 x 40\n",
                   NEM_A_FAILED_READ, "was refused");
}

/* A read invoked after another read completed may not return an older
 * version than that one. */
Test(nemesis_register, detects_read_going_back_in_version)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "ok a cas k 5 11\n"
                   "invoke a cas k 5 y 12\n"
                   "info a cas k 13\n"
                   "invoke b read k 20\n"
                   "ok b read k 9 y 21\n"
                   "invoke c read k 30\n"
                   "ok c read k 5 x 31\n",
                   NEM_A_READ_BACKWARDS, "the newer version 9");
}

/* A read cannot return a write that had not been invoked when the read
 * completed. */
Test(nemesis_register, detects_read_of_future_write)
{
    expect_anomaly("invoke b read k 10\n"
                   "ok b read k 5 x 11\n"
                   "invoke a cas k 0 x 20\n"
                   "ok a cas k 5 21\n",
                   NEM_A_FUTURE_READ, "returned version 5");
}

/* Within one key, a write ordered later by version that completed
 * before an earlier-versioned write was invoked is reported. */
Test(nemesis_register, detects_write_order_inversion)
{
    expect_anomaly("invoke b cas k 7 y 5\n"
                   "ok b cas k 9 6\n"
                   "invoke a cas k 0 x 10\n"
                   "info a cas k 11\n",
                   NEM_A_WRITE_ORDER, "produced version 9");
}

/* A read must return the version its value was written at. */
Test(nemesis_register, detects_value_at_wrong_version)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "ok a cas k 5 11\n"
                   "invoke b read k 12\n"
                   "ok b read k 6 x 13\n",
                   NEM_A_VERSION_MISMATCH, "wrote it at version 5");
}

/* A read of a value no client ever sent is reported. */
Test(nemesis_register, detects_unwritten_value)
{
    expect_anomaly("invoke b read k 12\n"
                   "ok b read k 6 q 13\n",
                   NEM_A_UNWRITTEN_READ, "a value no write sent");
}

/* An ok write based on a version that no write could have produced. */
Test(nemesis_register, detects_missing_base)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "fail a cas k 11\n"
                   "invoke b cas k 4 y 20\n"
                   "ok b cas k 9 21\n",
                   NEM_A_MISSING_WRITE, "which no write produced");
}

/* Two chains of versions that interleave cannot be one register. */
Test(nemesis_register, detects_forked_chain)
{
    expect_anomaly("invoke a cas k 0 x 10\n"
                   "ok a cas k 5 11\n"
                   "invoke a cas k 5 y 12\n"
                   "ok a cas k 9 13\n"
                   "invoke b read k 14\n"
                   "ok b read k 7 z 15\n"
                   "invoke c cas k 6 z 1\n"
                   "info c cas k 2\n",
                   NEM_A_FORK, "the versions fork");
}

/* The same version produced on two keys is two entries at one index. */
Test(nemesis_register, detects_version_shared_by_keys)
{
    expect_anomaly("invoke a cas k1 0 x 10\n"
                   "ok a cas k1 5 11\n"
                   "invoke b cas k2 0 y 12\n"
                   "ok b cas k2 5 13\n",
                   NEM_A_DOUBLE_VERSION, "on two keys");
}

/* ---- Set ---------------------------------------------------------------- */

/* Unknown adds may be present or not; an add still in flight when the
 * list was invoked may be missing. */
Test(nemesis_set, accepts_unknown_and_concurrent_adds)
{
    struct nem_report r = {0};

    check("invoke a add s n1 10\n"
          "ok a add s 11\n"
          "invoke b add s n2 12\n"
          "info b add s 13\n"
          "invoke a add s n3 14\n"
          "info a add s 15\n"
          "invoke b add s n4 16\n"
          "invoke c list s 17\n"
          "ok c list s n1 n3 18\n"
          "ok b add s 19\n"
          "invoke a add s n5 20\n"
          "fail a add s exists 21\n"
          "invoke c list s 30\n"
          "ok c list s n4 n3 n1 31\n",
          &r);

    dump(&r);
    cr_expect_eq(r.n_total, 0);
    cr_expect_eq(r.set_unknown_present, 1);
    cr_expect_eq(r.set_lists, 2);
    cr_expect_eq(r.set_adds[0], 2);
    cr_expect_eq(r.set_adds[1], 1);
    cr_expect_eq(r.set_adds[2], 2);
    nem_report_fini(&r);
}

/* An acknowledged create missing from a later list is lost. */
Test(nemesis_set, detects_lost_acknowledged_create)
{
    expect_anomaly("invoke a add s n1 10\n"
                   "ok a add s 11\n"
                   "invoke b add s n2 12\n"
                   "ok b add s 13\n"
                   "invoke c list s 20\n"
                   "ok c list s n2 21\n",
                   NEM_A_LOST, "lacks 'n1'");
}

/* A name listed twice is a duplicate. */
Test(nemesis_set, detects_duplicate)
{
    expect_anomaly("invoke a add s n1 10\n"
                   "ok a add s 11\n"
                   "invoke c list s 20\n"
                   "ok c list s n1 n1 21\n",
                   NEM_A_DUPLICATE, "'n1' more than once");
}

/* A name no add ever sent, or listed before its add was invoked, is a
 * phantom. */
Test(nemesis_set, detects_phantom)
{
    struct nem_report r = {0};

    check("invoke c list s 10\n"
          "ok c list s n7 n8 11\n"
          "invoke a add s n8 20\n"
          "ok a add s 21\n",
          &r);

    dump(&r);
    cr_expect_eq(r.n_total, 2);
    cr_expect_eq(r.counts[NEM_A_PHANTOM], 2);
    nem_report_fini(&r);
    expect_anomaly("invoke c list s 10\nok c list s n7 11\n", NEM_A_PHANTOM,
                   "which no add sent");
}

/* A definitely refused create must be absent. */
Test(nemesis_set, detects_refused_create_present)
{
    expect_anomaly("invoke a add s n1 10\n"
                   "fail a add s 11\n"
                   "invoke c list s 20\n"
                   "ok c list s n1 21\n",
                   NEM_A_REFUSED_PRESENT, "was refused");
}

/* The counts of the summary are distinct names, not reports per list. */
Test(nemesis_set, counts_each_lost_name_once)
{
    struct nem_report r = {0};

    check("invoke a add s n1 10\n"
          "ok a add s 11\n"
          "invoke c list s 20\n"
          "ok c list s 21\n"
          "invoke c list s 22\n"
          "ok c list s 23\n",
          &r);

    cr_expect_eq(r.counts[NEM_A_LOST], 1);
    cr_expect_eq(r.n_total, 1);
    nem_report_fini(&r);
}

/* ---- Randomized: a simulated atomic register ---------------------------- */

#define SIM_CLIENTS 5
#define SIM_KEYS 3
#define SIM_MAX_OPS 400

/* One operation of the simulation, with what really happened to it. */
struct sim_op {
    int client;
    int key;
    bool cas;
    uint64_t base;          /* cas */
    char value[16];         /* cas: sent; read: returned */
    uint64_t ver;           /* cas: produced; read: returned */
    bool applied;           /* took effect (cas) or was served (read) */
    bool refused;           /* cas against a stale base */
    enum nem_phase outcome; /* as recorded */
    int64_t inv;
    int64_t ret; /* 0 while in flight */
};

struct sim {
    uint64_t rng;
    struct sim_op ops[SIM_MAX_OPS];
    int n;
    uint64_t cur_ver[SIM_KEYS];
    char cur_val[SIM_KEYS][16];
    int chain[SIM_KEYS][SIM_MAX_OPS]; /* applied writes, in order */
    int chain_n[SIM_KEYS];
    uint64_t next_ver; /* the shared version space (a Raft index) */
    int64_t t;
    int orphans[SIM_MAX_OPS]; /* CAS whose client gave up, still afloat */
    int n_orphans;
};

static uint64_t
sim_rand(struct sim *s)
{
    /* splitmix64: a fixed seed gives the same history everywhere. */
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool
sim_chance(struct sim *s, int percent)
{
    return (int)(sim_rand(s) % 100) < percent;
}

/* Take the linearization point of op: apply it to the register now, or
 * (sometimes, for a cas) delay it past its client's patience. */
static void
sim_apply(struct sim *s, struct sim_op *op)
{
    int k = op->key;

    if (!op->cas) {
        op->ver = s->cur_ver[k];
        memcpy(op->value, s->cur_val[k], sizeof op->value);
        op->applied = true;
        return;
    }
    if (sim_chance(s, 10)) {
        /* Delayed on the way: the client gives up, and the write may
         * still take effect later, or never. */
        s->orphans[s->n_orphans++] = (int)(op - s->ops);
        return;
    }
    if (op->base != s->cur_ver[k]) {
        op->refused = true;
        return;
    }
    s->next_ver += 1 + sim_rand(s) % 3;
    op->ver = s->next_ver;
    op->applied = true;
    s->cur_ver[k] = op->ver;
    memcpy(s->cur_val[k], op->value, sizeof op->value);
    s->chain[k][s->chain_n[k]++] = (int)(op - s->ops);
}

/* Now and then, a delayed CAS reaches the register after its client
 * recorded it as unknown: it takes effect if its base is still current,
 * else it is refused, unseen. */
static void
sim_orphan_step(struct sim *s)
{
    int i, k;
    struct sim_op *op;

    if (s->n_orphans == 0 || !sim_chance(s, 5)) {
        return;
    }
    i = (int)(sim_rand(s) % (uint64_t)s->n_orphans);
    op = &s->ops[s->orphans[i]];
    s->orphans[i] = s->orphans[--s->n_orphans];
    k = op->key;
    if (op->base != s->cur_ver[k]) {
        return;
    }
    s->next_ver += 1 + sim_rand(s) % 3;
    op->ver = s->next_ver;
    op->applied = true;
    s->cur_ver[k] = op->ver;
    memcpy(s->cur_val[k], op->value, sizeof op->value);
    s->chain[k][s->chain_n[k]++] = (int)(op - s->ops);
}

static void
sim_complete(struct sim *s, struct sim_op *op)
{
    op->ret = ++s->t;
    if (op->cas && op->refused) {
        op->outcome = NEM_FAIL;
    } else if (op->cas && !op->applied) {
        op->outcome = NEM_INFO;
    } else if (sim_chance(s, op->cas ? 15 : 5)) {
        op->outcome = NEM_INFO; /* the reply was lost */
    } else {
        op->outcome = NEM_OK;
    }
}

static bool
busy(const int *cur)
{
    for (int c = 0; c < SIM_CLIENTS; c++) {
        if (cur[c] >= 0) {
            return true;
        }
    }
    return false;
}

/*
 * Run the clients against one atomic register per key. Each step picks
 * a client and moves it one state on: invoke, take effect, complete.
 * Clients base their CAS on the last version they saw, as the workload
 * will, so that many CAS are refused and many overlap.
 */
static void
sim_run(struct sim *s, uint64_t seed, int n_ops)
{
    int cur[SIM_CLIENTS];
    uint64_t seen[SIM_CLIENTS][SIM_KEYS];

    memset(s, 0, sizeof *s);
    memset(seen, 0, sizeof seen);
    s->rng = seed;
    for (int k = 0; k < SIM_KEYS; k++) {
        snprintf(s->cur_val[k], sizeof s->cur_val[k], "-");
    }
    for (int c = 0; c < SIM_CLIENTS; c++) {
        cur[c] = -1;
    }
    while (s->n < n_ops || busy(cur)) {
        int c = (int)(sim_rand(s) % SIM_CLIENTS);
        struct sim_op *op;

        sim_orphan_step(s);
        if (cur[c] < 0) {
            if (s->n == n_ops) {
                continue;
            }
            op = &s->ops[s->n];
            op->client = c;
            op->key = (int)(sim_rand(s) % SIM_KEYS);
            op->cas = sim_chance(s, 50);
            op->base = seen[c][op->key];
            snprintf(op->value, sizeof op->value, "v%d", s->n);
            op->inv = ++s->t;
            cur[c] = s->n++;
            continue;
        }
        op = &s->ops[cur[c]];
        if (!op->applied && !op->refused && sim_chance(s, 60)) {
            sim_apply(s, op);
            if (op->cas && !op->applied && !op->refused) {
                sim_complete(s, op); /* delayed: completes unknown */
                cur[c] = -1;
            }
            continue;
        }
        if (!op->applied && !op->refused) {
            continue; /* not taken effect yet: try again later */
        }
        sim_complete(s, op);
        if (op->outcome == NEM_OK) {
            seen[c][op->key] = op->ver;
        }
        cur[c] = -1;
    }
}

/* One line of the history: op i's invoke or its completion. */
struct sim_event {
    int64_t t;
    int op;
    bool ret;
};

static int
cmp_event(const void *a, const void *b)
{
    const struct sim_event *x = a, *y = b;

    return x->t < y->t ? -1 : x->t > y->t;
}

static void
sim_print(FILE *f, const struct sim_op *op, const struct sim_event *e)
{
    const char *name = op->cas ? "cas" : "read";

    if (!e->ret && op->cas) {
        fprintf(f, "invoke c%d cas k%d %" PRIu64 " %s %" PRId64 "\n",
                op->client, op->key, op->base, op->value, e->t);
    } else if (!e->ret) {
        fprintf(f, "invoke c%d read k%d %" PRId64 "\n", op->client, op->key,
                e->t);
    } else if (op->outcome != NEM_OK) {
        fprintf(f, "%s c%d %s k%d %" PRId64 "\n", nem_phase_name(op->outcome),
                op->client, name, op->key, e->t);
    } else if (op->cas) {
        fprintf(f, "ok c%d cas k%d %" PRIu64 " %" PRId64 "\n", op->client,
                op->key, op->ver, e->t);
    } else {
        fprintf(f, "ok c%d read k%d %" PRIu64 " %s %" PRId64 "\n", op->client,
                op->key, op->ver, op->value, e->t);
    }
}

/* Write the simulation as a history: events sorted by time. */
static char *
sim_history(const struct sim *s)
{
    static struct sim_event ev[2 * SIM_MAX_OPS];
    char *buf = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    for (int i = 0; i < s->n; i++) {
        ev[n++] = (struct sim_event){s->ops[i].inv, i, false};
        ev[n++] = (struct sim_event){s->ops[i].ret, i, true};
    }
    qsort(ev, n, sizeof ev[0], cmp_event);
    for (size_t i = 0; i < n; i++) {
        sim_print(f, &s->ops[ev[i].op], &ev[i]);
    }
    fclose(f);
    return buf;
}

enum mutation {
    MUT_STALE,     /* a read returns a version overwritten before it */
    MUT_DOUBLE,    /* a refused CAS from a superseded version says ok */
    MUT_FAILED,    /* the write a read saw says it was refused */
    MUT_UNWRITTEN, /* a read returns a value never sent */
    MUT_COUNT
};

/* Apply mutation m to one op of s, chosen from the seed. Returns false
 * when the history offers no place for it. */
static bool
sim_mutate(struct sim *s, enum mutation m)
{
    int start = (int)(sim_rand(s) % (uint64_t)s->n);

    for (int j = 0; j < s->n; j++) {
        struct sim_op *op = &s->ops[(start + j) % s->n];
        int k = op->key;

        if (m == MUT_STALE && !op->cas && op->outcome == NEM_OK) {
            /* An older chain entry whose successor was acknowledged
             * before this read began: returning it is stale. */
            for (int i = -1; i + 1 < s->chain_n[k]; i++) {
                struct sim_op *next = &s->ops[s->chain[k][i + 1]];

                if (next->outcome == NEM_OK && next->ret < op->inv &&
                    next->ver <= op->ver) {
                    op->ver = i < 0 ? 0 : s->ops[s->chain[k][i]].ver;
                    memcpy(op->value,
                           i < 0 ? "-" : s->ops[s->chain[k][i]].value,
                           i < 0 ? 2 : sizeof op->value);
                    return true;
                }
            }
        }
        if (m == MUT_DOUBLE && op->cas && op->outcome == NEM_FAIL) {
            for (int i = 0; i < s->chain_n[k]; i++) {
                struct sim_op *w = &s->ops[s->chain[k][i]];

                if (w->base == op->base && w->outcome == NEM_OK) {
                    op->outcome = NEM_OK;
                    op->ver = s->next_ver + 1000;
                    return true;
                }
            }
        }
        if (m == MUT_FAILED && !op->cas && op->outcome == NEM_OK &&
            op->ver != 0) {
            for (int i = 0; i < s->chain_n[k]; i++) {
                struct sim_op *w = &s->ops[s->chain[k][i]];

                if (w->ver == op->ver && w->outcome == NEM_OK) {
                    w->outcome = NEM_FAIL;
                    return true;
                }
            }
        }
        if (m == MUT_UNWRITTEN && !op->cas && op->outcome == NEM_OK) {
            snprintf(op->value, sizeof op->value, "never");
            if (op->ver == 0) {
                op->ver = 1;
            }
            return true;
        }
    }
    return false;
}

/* Histories of a simulated atomic register, with random overlaps,
 * refusals and unknown outcomes, are all accepted; fixed seeds. */
Test(nemesis_random, accepts_simulated_atomic_register)
{
    static struct sim s;
    size_t unknown_applied = 0, refused = 0;

    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct nem_report r = {0};
        char *text;

        sim_run(&s, seed, SIM_MAX_OPS);
        text = sim_history(&s);
        check(text, &r);
        if (r.n_total != 0) {
            dump(&r);
        }
        cr_assert_eq(r.n_total, 0, "seed %" PRIu64 " rejected", seed);
        unknown_applied += r.reg_unknown_applied;
        refused += r.reg_writes[1];
        nem_report_fini(&r);
        free(text);
    }
    /* The generator must exercise what the checker decides on. */
    cr_expect_gt(unknown_applied, 100);
    cr_expect_gt(refused, 1000);
}

/* The same histories with one result changed are all rejected. */
Test(nemesis_random, rejects_one_mutation)
{
    static struct sim s;
    int tried[MUT_COUNT] = {0};

    for (uint64_t seed = 1; seed <= 300; seed++) {
        enum mutation m = (enum mutation)(seed % MUT_COUNT);
        struct nem_report r = {0};
        char *text;

        sim_run(&s, seed, SIM_MAX_OPS);
        if (!sim_mutate(&s, m)) {
            continue;
        }
        tried[m]++;
        text = sim_history(&s);
        check(text, &r);
        cr_assert_gt(r.n_total, 0, "seed %" PRIu64 " mutation %d accepted",
                     seed, (int)m);
        nem_report_fini(&r);
        free(text);
    }
    for (int m = 0; m < MUT_COUNT; m++) {
        cr_expect_gt(tried[m], 20, "mutation %d tried %d times", m, tried[m]);
    }
}

/* ---- The nemesis-check program ------------------------------------------ */

/* Runs nemesis-check on text; returns its exit status, its stdout and
 * stderr in out. */
static int
run_tool(const char *text, char *out, size_t outlen)
{
    const char *tool = getenv("NEMESIS_CHECK");
    char path[] = "/tmp/nemesis-check-XXXXXX";
    int fd = mkstemp(path), pfd[2], status;
    size_t n = 0;
    ssize_t k;
    pid_t pid;

    cr_assert_not_null(tool, "NEMESIS_CHECK is not set");
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cr_assert_eq(pipe(pfd), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execl(tool, tool, path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    while (n + 1 < outlen && (k = read(pfd[0], out + n, outlen - n - 1)) > 0) {
        n += (size_t)k;
    }
    out[n] = '\0';
    close(pfd[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The program exits 0 and says valid on a good history, 1 with the
 * anomaly on a bad one, 2 on a malformed one. */
Test(nemesis_check_tool, exit_status_tells_verdict)
{
    char out[4096];

    cr_expect_eq(
        run_tool("invoke a cas k 0 x 1\nok a cas k 3 2\n", out, sizeof out), 0);
    cr_expect_not_null(strstr(out, "valid"), "%s", out);
    cr_expect_eq(run_tool("invoke a cas k 0 x 1\nok a cas k 3 2\n"
                          "invoke b read k 3\nok b read k 0 - 4\n",
                          out, sizeof out),
                 1);
    cr_expect_not_null(strstr(out, "anomaly stale-read"), "%s", out);
    cr_expect_not_null(strstr(out, "INVALID: 1 anomalies"), "%s", out);
    cr_expect_eq(run_tool("invoke a add s n1 1\nok a add s 2\n"
                          "invoke b list s 3\nok b list s 4\n",
                          out, sizeof out),
                 1);
    cr_expect_not_null(strstr(out, "lost 1, duplicated 0, phantom 0"), "%s",
                       out);
    cr_expect_eq(run_tool("garbage\n", out, sizeof out), 2);
    cr_expect_not_null(strstr(out, "line 1: expected"), "%s", out);
}
