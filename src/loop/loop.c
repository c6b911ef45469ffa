/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * loop.c: epoll, one timerfd for every timer, and end-of-turn work.
 *
 * Timers are few (raft ticks, request deadlines, flushes), so a sorted
 * list is enough; the timerfd is armed for the first one. Deferred work
 * runs after every ready fd of a turn was served: that is where the
 * daemon writes and syncs the log once for all requests of the turn.
 */
#include "loop/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/base.h"

#define LOOP_MAX_EVENTS 256

/* The timerfd is served by the loop itself: its epoll data is NULL. */

int
loop_init(struct loop *l)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int rc;

    memset(l, 0, sizeof *l);
    TAILQ_INIT(&l->timers);
    TAILQ_INIT(&l->defers);
    l->now_ms = time_mono_ms();

    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        return -errno;
    }
    l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (l->timerfd < 0) {
        rc = -errno;
        goto fail_close_ep;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev) != 0) {
        rc = -errno;
        goto fail_close_timer;
    }
    return 0;

fail_close_timer:
    close(l->timerfd);
fail_close_ep:
    close(l->epfd);
    ASSERT(rc != 0);
    return rc;
}

void
loop_fini(struct loop *l)
{
    close(l->timerfd);
    close(l->epfd);
}

void
loop_stop(struct loop *l)
{
    l->stopping = true;
}

static uint32_t
loop_epoll_events(unsigned events)
{
    uint32_t e = 0;

    if (events & LOOP_READ) {
        e |= EPOLLIN;
    }
    if (events & LOOP_WRITE) {
        e |= EPOLLOUT;
    }
    return e;
}

int
loop_io_start(struct loop *l, struct loop_io *io)
{
    struct epoll_event ev = {
        .events = loop_epoll_events(io->events),
        .data.ptr = io,
    };

    ASSERT(!io->active);
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) != 0) {
        return -errno;
    }
    io->active = true;
    return 0;
}

int
loop_io_set(struct loop *l, struct loop_io *io, unsigned events)
{
    struct epoll_event ev = {
        .events = loop_epoll_events(events),
        .data.ptr = io,
    };

    ASSERT(io->active);
    if (events == io->events) {
        return 0;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) {
        return -errno;
    }
    io->events = events;
    return 0;
}

void
loop_io_stop(struct loop *l, struct loop_io *io)
{
    if (!io->active) {
        return;
    }
    /* The fd is still open here, so DEL cannot fail but for a bug. */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->active = false;
}

static void
loop_timer_arm(struct loop *l)
{
    struct itimerspec its = {0};
    struct loop_timer *first = TAILQ_FIRST(&l->timers);

    if (first) {
        uint64_t now = time_mono_ms();
        uint64_t wait = first->due_ms > now ? first->due_ms - now : 0;

        /* A zero it_value disarms, so a due timer fires in 1 ns. */
        its.it_value.tv_sec = (time_t)(wait / 1000);
        its.it_value.tv_nsec = (long)(wait % 1000) * 1000000 + 1;
    }
    timerfd_settime(l->timerfd, 0, &its, NULL);
}

void
loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t after_ms)
{
    struct loop_timer *it;

    loop_timer_stop(l, t);
    t->due_ms = l->now_ms + after_ms;
    TAILQ_FOREACH(it, &l->timers, link) {
        if (it->due_ms > t->due_ms) {
            break;
        }
    }
    if (it) {
        TAILQ_INSERT_BEFORE(it, t, link);
    } else {
        TAILQ_INSERT_TAIL(&l->timers, t, link);
    }
    t->active = true;
    if (TAILQ_FIRST(&l->timers) == t) {
        loop_timer_arm(l);
    }
}

void
loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    if (t->active) {
        TAILQ_REMOVE(&l->timers, t, link);
        t->active = false;
    }
}

void
loop_defer(struct loop *l, struct loop_defer *d)
{
    if (!d->active) {
        TAILQ_INSERT_TAIL(&l->defers, d, link);
        d->on = &l->defers;
        d->active = true;
    }
}

/* d may wait in the loop's list or in the batch being run this turn:
 * it is removed from whichever holds it. */
void
loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
    (void)l;
    if (d->active) {
        TAILQ_REMOVE(d->on, d, link);
        d->on = NULL;
        d->active = false;
    }
}

static void
loop_run_timers(struct loop *l)
{
    uint64_t expirations;
    struct loop_timer *t;

    /* Drain the timerfd; how often it fired does not matter. */
    if (read(l->timerfd, &expirations, sizeof expirations) < 0) {
        expirations = 0;
    }
    while ((t = TAILQ_FIRST(&l->timers)) && t->due_ms <= l->now_ms) {
        TAILQ_REMOVE(&l->timers, t, link);
        t->active = false;
        t->cb(l, t->arg);
    }
    loop_timer_arm(l);
}

/* Work deferred while this runs waits for the next turn, so that a
 * callback that defers itself cannot starve the loop. */
static void
loop_run_defers(struct loop *l)
{
    struct loop_defer_list now;
    struct loop_defer *d;

    TAILQ_INIT(&now);
    TAILQ_CONCAT(&now, &l->defers, link);
    TAILQ_FOREACH(d, &now, link) {
        d->on = &now;
    }
    while ((d = TAILQ_FIRST(&now))) {
        TAILQ_REMOVE(&now, d, link);
        d->on = NULL;
        d->active = false;
        d->cb(l, d->arg);
    }
}

static void
loop_dispatch(struct loop *l, struct epoll_event *ev)
{
    struct loop_io *io = ev->data.ptr;
    unsigned events = 0;

    /* Stopped by an earlier callback of this turn: owners free handles
     * only in deferred work, so io is still valid memory here. */
    if (!io->active) {
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        events |= LOOP_READ;
    }
    if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        events |= LOOP_WRITE;
    }
    io->cb(l, events, io->arg);
}

int
loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];

    l->stopping = false;
    while (!l->stopping) {
        int timeout = TAILQ_EMPTY(&l->defers) ? -1 : 0;
        int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
        bool timers_due = false;

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        l->turns++;
        l->now_ms = time_mono_ms();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                timers_due = true;
                continue;
            }
            loop_dispatch(l, &evs[i]);
        }
        if (timers_due) {
            loop_run_timers(l);
        }
        loop_run_defers(l);
    }
    return 0;
}
