/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * watch.c: watch streams, served from this manager's applied state.
 *
 * A watch is a cursor into the store's history, not a queue of its own:
 * it costs no memory per event, and a slow client simply reads the
 * history later. It is pumped while its client's output buffer has room;
 * when the history it still needs has been dropped, the stream ends with
 * SHOAL_OUT_OF_RANGE and the version to resume from. So no client can
 * make the manager grow memory or block the loop.
 */
#include "manager/manager_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void
watch_free(struct watch *w)
{
    wire_free(&wire_type_watch_request, &w->req);
    free(w);
}

static void
watch_end(struct watch *w, int code, uint64_t resume_from, const char *msg)
{
    struct conn *c = w->conn;
    struct shoal_status_msg st = {
        .code = (uint32_t)code,
        .message = (char *)msg,
        .resume_from = resume_from,
    };

    TAILQ_REMOVE(&c->watches, w, link);
    c->m->stats.watchers--;
    conn_frame(c, WIRE_MSG_STATUS, 0, w->req_id, &wire_type_status_msg, &st);
    conn_flush_later(c);
    watch_free(w);
}

static bool
watch_matches(const struct watch *w, const struct store_event *ev)
{
    if (w->req.n_selectors == 0) {
        return true;
    }
    for (size_t i = 0; i < w->req.n_selectors; i++) {
        if (store_event_matches(ev, &w->req.selectors[i])) {
            return true;
        }
    }
    return false;
}

/* Wrap a redacted copy of obj of kind in *o. Returns 0 or ERR_NOMEM. */
static int
watch_object(struct shoal_object *o, enum shoal_kind kind, const void *obj)
{
    const struct wire_type *t = wire_kind_type(kind);
    void *copy = calloc(1, wire_type_size(t));
    void **slots[SHOAL_KIND_COUNT] = {
        [SHOAL_KIND_NODE] = (void **)&o->node,
        [SHOAL_KIND_SERVICE] = (void **)&o->service,
        [SHOAL_KIND_TASK] = (void **)&o->task,
        [SHOAL_KIND_NETWORK] = (void **)&o->network,
        [SHOAL_KIND_CLUSTER] = (void **)&o->cluster,
        [SHOAL_KIND_SECRET] = (void **)&o->secret,
        [SHOAL_KIND_CONFIG] = (void **)&o->config,
    };

    if (!copy || wire_copy(t, copy, obj) != 0) {
        free(copy);
        return ERR_NOMEM;
    }
    control_redact(kind, copy);
    *slots[kind] = copy;
    return 0;
}

static int
watch_add_event(const struct watch *w, struct shoal_watch_message *msg,
                const struct store_event *ev)
{
    struct shoal_watch_event *e = &msg->events[msg->n_events];
    int rc;

    memset(e, 0, sizeof *e);
    e->action = ev->action;
    rc = watch_object(&e->object, ev->kind, ev->obj);
    if (rc == 0 && ev->old && w->req.include_old_object) {
        e->old_object = calloc(1, sizeof *e->old_object);
        rc = e->old_object ? watch_object(e->old_object, ev->kind, ev->old)
                           : ERR_NOMEM;
    }
    msg->n_events++; /* counted even half built, so that it is freed */
    return rc;
}

/* Send the events of one entry that match, as one frame. */
static int
watch_send_entry(struct watch *w, const struct store_hist_entry *e)
{
    struct shoal_watch_message msg = {.version = e->version};
    int rc = 0;

    msg.events = calloc(e->n_events ? e->n_events : 1, sizeof *msg.events);
    if (!msg.events) {
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < e->n_events && rc == 0; i++) {
        if (watch_matches(w, &e->events[i])) {
            rc = watch_add_event(w, &msg, &e->events[i]);
        }
    }
    if (rc == 0 && msg.n_events > 0) {
        rc = conn_frame(w->conn, WIRE_MSG_WATCH | WIRE_REPLY, WIRE_F_MORE,
                        w->req_id, &wire_type_watch_message, &msg);
    }
    wire_free(&wire_type_watch_message, &msg);
    return rc;
}

/* Returns false when the watch was ended (and freed). */
static bool
watch_pump(struct watch *w)
{
    struct conn *c = w->conn;
    char why[128];

    while (!c->dead && conn_out_queued(c) < CONN_OUT_HIGH / 2) {
        const struct store_hist_entry *e;
        uint64_t oldest = 0;
        int rc = store_history_next(c->m->store, w->cursor, &e, &oldest);

        if (rc == ERR_AGAIN) {
            break;
        }
        if (rc == ERR_NOTFOUND) {
            snprintf(why, sizeof why,
                     "watch fell behind the retained history; resume from "
                     "version %" PRIu64 " or later after a fresh list",
                     w->cursor);
            log_info("watch", "watch ended: conn=%" PRIu64 " version=%"
                     PRIu64 " oldest=%" PRIu64, c->serial, w->cursor,
                     oldest);
            watch_end(w, SHOAL_OUT_OF_RANGE, w->cursor, why);
            return false;
        }
        if (watch_send_entry(w, e) != 0) {
            watch_end(w, SHOAL_RESOURCE_EXHAUSTED, w->cursor,
                      "out of memory while sending events");
            return false;
        }
        w->cursor = e->version;
    }
    conn_flush_later(c);
    return true;
}

static int
watch_check(const struct shoal_watch_request *req, char *why, size_t n)
{
    for (size_t i = 0; i < req->n_selectors; i++) {
        const struct shoal_watch_selector *s = &req->selectors[i];

        if (!wire_kind_type((enum shoal_kind)s->kind)) {
            snprintf(why, n, "watch selector %zu: unknown kind %u", i,
                     s->kind);
            return SHOAL_INVALID_ARGUMENT;
        }
        if (s->actions & ~7u) {
            snprintf(why, n, "watch selector %zu: unknown action mask %u",
                     i, s->actions);
            return SHOAL_INVALID_ARGUMENT;
        }
    }
    return SHOAL_OK;
}

/* Whether changes after version are no longer all in the history. */
static bool
watch_history_lost(struct manager *m, uint64_t version)
{
    const struct store_hist_entry *e;
    uint64_t oldest = 0;

    return store_history_next(m->store, version, &e, &oldest) ==
           ERR_NOTFOUND;
}

void
watch_start(struct conn *c, uint64_t id, struct shoal_watch_request *req)
{
    struct manager *m = c->m;
    struct control_out o = {0};
    struct shoal_watch_message hello = {0};
    struct watch *w;

    o.code = watch_check(req, o.message, sizeof o.message);
    if (o.code == SHOAL_OK && req->resume_from > store_applied(m->store)) {
        o.code = SHOAL_OUT_OF_RANGE;
        snprintf(o.message, sizeof o.message,
                 "resume version %" PRIu64 " is ahead of this manager's %"
                 PRIu64, req->resume_from, store_applied(m->store));
    }
    if (o.code == SHOAL_OK && req->resume_from > 0 &&
        watch_history_lost(m, req->resume_from)) {
        o.code = SHOAL_OUT_OF_RANGE;
        snprintf(o.message, sizeof o.message,
                 "version %" PRIu64 " is older than the history kept; "
                 "list afresh and watch from now", req->resume_from);
    }
    w = o.code == SHOAL_OK ? calloc(1, sizeof *w) : NULL;
    if (o.code == SHOAL_OK && !w) {
        o.code = SHOAL_RESOURCE_EXHAUSTED;
        snprintf(o.message, sizeof o.message, "out of memory");
    }
    if (o.code != SHOAL_OK) {
        conn_status(c, id, &o);
        wire_free(&wire_type_watch_request, req);
        free(req);
        return;
    }

    w->conn = c;
    w->req_id = id;
    w->req = *req; /* the request's contents move into the watch */
    free(req);
    w->cursor = w->req.resume_from ? w->req.resume_from
                                   : store_applied(m->store);
    TAILQ_INSERT_TAIL(&c->watches, w, link);
    m->stats.watchers++;

    /* An empty message first: the subscription is in place. */
    conn_frame(c, WIRE_MSG_WATCH | WIRE_REPLY, WIRE_F_MORE, id,
               &wire_type_watch_message, &hello);
    watch_pump(w);
}

void
watch_cancel(struct conn *c, uint64_t id)
{
    struct watch *w;

    TAILQ_FOREACH(w, &c->watches, link) {
        if (w->req_id == id) {
            watch_end(w, SHOAL_CANCELLED, w->cursor, "watch cancelled");
            return;
        }
    }
}

void
watch_pump_conn(struct conn *c)
{
    struct watch *w;
    struct watch *next;

    /* A pump may end its own watch, or close c and free them all: the
     * next one is taken first and used only while c lives. */
    for (w = TAILQ_FIRST(&c->watches); w && !c->dead; w = next) {
        next = TAILQ_NEXT(w, link);
        watch_pump(w);
    }
}

/* Pumping may close the connection pumped (a failed write), which moves
 * it to the dead list and frees its watches; the next connection is
 * taken before, and stays valid. */
void
watch_pump_all(struct manager *m)
{
    struct conn *c;
    struct conn *next;

    for (c = TAILQ_FIRST(&m->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        watch_pump_conn(c);
    }
}

void
watch_end_all(struct conn *c, int code, const char *message)
{
    struct watch *w;

    while ((w = TAILQ_FIRST(&c->watches))) {
        watch_end(w, code, w->cursor, message);
    }
}

void
watch_drop_conn(struct conn *c)
{
    struct watch *w;

    while ((w = TAILQ_FIRST(&c->watches))) {
        TAILQ_REMOVE(&c->watches, w, link);
        c->m->stats.watchers--;
        watch_free(w);
    }
}
