/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * loop.h: the one epoll loop of a daemon: file descriptors, timers, and
 * work deferred to the end of a turn.
 *
 * Single-threaded. Every handle (struct loop_io, loop_timer, loop_defer)
 * lives in storage its owner provides (the libuv model) and stays kept
 * by the loop from _start to _stop. Callbacks run to completion; they
 * may start and stop any handle, including their own.
 */
#ifndef SHOAL_LOOP_LOOP_H
#define SHOAL_LOOP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <bsd/sys/queue.h>

struct loop;

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u

typedef void loop_io_cb(struct loop *l, unsigned events, void *arg);
typedef void loop_cb(struct loop *l, void *arg);

struct loop_io {
    int fd;
    unsigned events; /* LOOP_READ | LOOP_WRITE wanted now */
    loop_io_cb *cb;
    void *arg;
    bool active;
};

struct loop_timer {
    uint64_t due_ms; /* CLOCK_MONOTONIC ms */
    loop_cb *cb;
    void *arg;
    bool active;
    TAILQ_ENTRY(loop_timer) link;
};

TAILQ_HEAD(loop_timer_list, loop_timer);
TAILQ_HEAD(loop_defer_list, loop_defer);

struct loop_defer {
    loop_cb *cb;
    void *arg;
    bool active;
    struct loop_defer_list *on; /* the list it waits in, while active */
    TAILQ_ENTRY(loop_defer) link;
};

struct loop {
    int epfd;
    int timerfd;
    bool stopping;
    uint64_t now_ms;                /* time at the start of this turn */
    uint64_t turns;                 /* epoll_wait calls so far */
    struct loop_timer_list timers;  /* sorted by due_ms */
    struct loop_defer_list defers;  /* run once, at the end of the turn */
};

/*
 * Set up l (caller's storage). Returns 0 or -errno from epoll_create1 or
 * timerfd_create (nothing left open).
 */
int loop_init(struct loop *l);

/* Close what loop_init opened. Handles must have been stopped. */
void loop_fini(struct loop *l);

/*
 * Run turns until loop_stop(). Each turn waits for events or the next
 * timer, runs the callbacks of ready fds, then due timers, then deferred
 * work. Returns 0, or -errno when epoll_wait fails for a reason other
 * than EINTR.
 */
int loop_run(struct loop *l);

/* Make loop_run() return after the current turn. */
void loop_stop(struct loop *l);

/*
 * Watch io->fd for io->events (kept until loop_io_stop). Returns 0 or
 * -errno from epoll_ctl.
 */
int loop_io_start(struct loop *l, struct loop_io *io);

/* Change the events watched. Returns 0 or -errno. */
int loop_io_set(struct loop *l, struct loop_io *io, unsigned events);

/* Stop watching; the fd stays open (the owner closes it). */
void loop_io_stop(struct loop *l, struct loop_io *io);

/*
 * Run t->cb once, after_ms from the start of this turn. Restarting an
 * active timer moves it. Never fails.
 */
void loop_timer_start(struct loop *l, struct loop_timer *t,
                      uint64_t after_ms);

/* Cancel t if active. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);

/*
 * Run d->cb once at the end of this turn (or of the next one, when
 * called from deferred work). Deferring an active d does nothing.
 */
void loop_defer(struct loop *l, struct loop_defer *d);

/* Cancel deferred work not yet run. */
void loop_defer_cancel(struct loop *l, struct loop_defer *d);

#endif
