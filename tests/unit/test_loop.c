/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_loop.c: the epoll loop's timers and end-of-turn work.
 *
 * Each test runs a real loop until a callback stops it; a timer is the
 * deadline, so a broken loop fails the test instead of hanging it.
 */
#include <criterion/criterion.h>
#include <unistd.h>

#include "loop/loop.h"

TestSuite(loop_defer, .timeout = 10);
TestSuite(loop_timer, .timeout = 10);

struct trace {
    struct loop *l;
    char order[16];
    size_t n;
    struct loop_defer *victim; /* cancelled by the first callback */
    struct loop_defer *next;   /* deferred by it after the cancel */
};

static void
mark_cb(struct loop *l, void *arg)
{
    struct trace *t = arg;

    (void)l;
    t->order[t->n++] = 'x';
}

static void
cancel_cb(struct loop *l, void *arg)
{
    struct trace *t = arg;

    t->order[t->n++] = 'c';
    loop_defer_cancel(l, t->victim);
    loop_defer(l, t->next);
}

static void
stop_cb(struct loop *l, void *arg)
{
    struct trace *t = arg;

    t->order[t->n++] = 's';
    loop_stop(l);
}

/* Work cancelled by the work before it in the same turn does not run,
 * and work deferred afterwards still runs in the next turn: the cancel
 * takes the item out of the batch being run, not out of the loop's
 * queue (which it would corrupt when the item is last of its batch). */
Test(loop_defer, cancel_from_a_running_batch)
{
    struct loop l;
    struct trace t = {.l = &l};
    struct loop_defer first = {.cb = cancel_cb, .arg = &t};
    struct loop_defer victim = {.cb = mark_cb, .arg = &t};
    struct loop_defer last = {.cb = stop_cb, .arg = &t};

    struct loop_defer after = {.cb = mark_cb, .arg = &t};
    uint64_t turns;

    cr_assert_eq(loop_init(&l), 0);
    t.victim = &victim;
    t.next = &last;
    loop_defer(&l, &first);
    loop_defer(&l, &victim);
    turns = l.turns;

    cr_assert_eq(loop_run(&l), 0);

    cr_expect_str_eq(t.order, "cs");
    cr_expect(!victim.active);
    cr_expect_eq(l.turns - turns, 2, "deferred work ran in its own turn");
    loop_defer(&l, &after);
    cr_expect_eq(TAILQ_FIRST(&l.defers), &after, "the queue is intact");
    loop_defer_cancel(&l, &after);
    loop_fini(&l);
}

static void
again_cb(struct loop *l, void *arg)
{
    struct trace *t = arg;

    t->order[t->n++] = 'a';
    if (t->n < 3) {
        loop_defer(l, t->victim); /* itself: runs in the next turn */
    } else {
        loop_stop(l);
    }
}

/* Work that defers itself runs once per turn, not in a busy loop. */
Test(loop_defer, self_defer_waits_for_the_next_turn)
{
    struct loop l;
    struct trace t = {.l = &l};
    struct loop_defer d = {.cb = again_cb, .arg = &t};
    uint64_t turns;

    cr_assert_eq(loop_init(&l), 0);
    t.victim = &d;
    loop_defer(&l, &d);
    turns = l.turns;

    cr_assert_eq(loop_run(&l), 0);

    cr_expect_str_eq(t.order, "aaa");
    cr_expect_eq(l.turns - turns, 3);
    loop_fini(&l);
}

/* Timers fire in the order of their due times, whatever the order in
 * which they were started. */
Test(loop_timer, fire_in_due_order)
{
    struct loop l;
    struct trace t = {.l = &l};
    struct loop_timer late = {.cb = stop_cb, .arg = &t};
    struct loop_timer early = {.cb = mark_cb, .arg = &t};

    cr_assert_eq(loop_init(&l), 0);
    loop_timer_start(&l, &late, 30);
    loop_timer_start(&l, &early, 5);

    cr_assert_eq(loop_run(&l), 0);

    cr_expect_str_eq(t.order, "xs");
    loop_fini(&l);
}

/* A stopped timer never fires. */
Test(loop_timer, stopped_timer_stays_silent)
{
    struct loop l;
    struct trace t = {.l = &l};
    struct loop_timer never = {.cb = mark_cb, .arg = &t};
    struct loop_timer end = {.cb = stop_cb, .arg = &t};

    cr_assert_eq(loop_init(&l), 0);
    loop_timer_start(&l, &never, 1);
    loop_timer_start(&l, &end, 20);
    loop_timer_stop(&l, &never);

    cr_assert_eq(loop_run(&l), 0);

    cr_expect_str_eq(t.order, "s");
    loop_fini(&l);
}
