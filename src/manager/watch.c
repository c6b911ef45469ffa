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
 * make the manager grow memory or block the loop. The bytes of an entry's
 * events are encoded once and shared by every watch (struct watch_cache).
 */
#include "manager/manager_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void watch_cache_release(struct manager *m);

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
    watch_cache_release(c->m);
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

/*
 * The encoded events of the history entries being pumped, shared by every
 * watch: each event is copied, redacted and encoded once per entry, not
 * once per watcher, so that fanning an entry out to a thousand watchers
 * costs a thousand memcpys of its bytes rather than a thousand encodings.
 *
 * A watch message body is "tag 1 event" fields in order, then the "tag 2
 * version" field (wire/golden/watch_event.bin). Each variant of an entry
 * holds exactly those bytes for all of its events, with the end of each
 * event's field kept, so a watcher that matches every event sends the
 * variant as it is, and one that matches some sends the slices it
 * matches followed by the version field: the bytes the generic encoder
 * makes of the same message.
 *
 * Slots are direct-mapped by version. Watches are pumped connection after
 * connection, each over the entries since its cursor, in rounds of at
 * most WATCH_ROUND_ENTRIES entries (watch_pump_all), so the entries a
 * round walks stay cached until every watch has used them. The history
 * entries are immutable once applied and a version never names another
 * entry, so a slot never goes stale; it is only replaced. The cache
 * lives while any watch does.
 */
#define WATCH_CACHE_SLOTS 512
#define WATCH_CACHE_BYTES (32u << 20) /* beyond this, slots are dropped */
#define WATCH_ROUND_ENTRIES (WATCH_CACHE_SLOTS / 2) /* see watch_pump_all */

/* Variants of an entry's encoding. */
enum { WATCH_PLAIN, WATCH_WITH_OLD, WATCH_VARIANTS };

struct watch_body {
    struct wire_buf buf; /* every event's field, then the version field */
    size_t *ends;        /* ends[i]: offset just past event i's field */
    bool built;
};

struct watch_enc {
    uint64_t version;    /* the entry's; 0: the slot is empty */
    struct watch_body v[WATCH_VARIANTS];
};

/* A remembered answer of store_history_next(): the entry after version
 * `after`, valid while the applied index is still `applied` (the history
 * changes only in store_apply()). */
struct watch_next {
    uint64_t after;
    uint64_t applied;
    const struct store_hist_entry *entry; /* NULL: nothing remembered */
};

struct watch_cache {
    struct watch_enc slots[WATCH_CACHE_SLOTS];
    struct watch_next next[WATCH_CACHE_SLOTS]; /* by after */
    size_t bytes;        /* encoded bytes held by the slots */
    struct wire_buf part; /* the body of a watcher that matched a part */
    bool *match;         /* which events the current watcher matched */
    size_t match_cap;
};

static void
watch_body_fini(struct watch_body *b)
{
    wire_buf_fini(&b->buf);
    free(b->ends);
    memset(b, 0, sizeof *b);
}

static void
watch_enc_clear(struct watch_cache *wc, struct watch_enc *enc)
{
    for (int i = 0; i < WATCH_VARIANTS; i++) {
        wc->bytes -= enc->v[i].buf.len;
        watch_body_fini(&enc->v[i]);
    }
    enc->version = 0;
}

/* Free the cache once the last watch is gone. */
static void
watch_cache_release(struct manager *m)
{
    struct watch_cache *wc = m->watch_cache;

    if (!wc || m->stats.watchers > 0) {
        return;
    }
    for (size_t i = 0; i < WATCH_CACHE_SLOTS; i++) {
        watch_enc_clear(wc, &wc->slots[i]);
    }
    wire_buf_fini(&wc->part);
    free(wc->match);
    free(wc);
    m->watch_cache = NULL;
}

/* Append to out the tag 1 field of one event, as the generic encoder
 * writes it inside a watch message. Returns 0 or ERR_NOMEM. */
static int
watch_encode_event(struct wire_buf *out, const struct store_event *ev,
                   bool with_old)
{
    struct shoal_watch_event e = {.action = ev->action};
    struct shoal_watch_message one = {.events = &e, .n_events = 1};
    int rc;

    /* A message of this one event and version 0 encodes as the event's
     * field alone: a zero scalar is left out. */
    rc = watch_object(&e.object, ev->kind, ev->obj);
    if (rc == 0 && ev->old && with_old) {
        e.old_object = calloc(1, sizeof *e.old_object);
        rc = e.old_object ? watch_object(e.old_object, ev->kind, ev->old)
                          : ERR_NOMEM;
    }
    if (rc == 0) {
        rc = wire_encode(&wire_type_watch_message, &one, out);
    }
    wire_free(&wire_type_watch_event, &e);
    return rc;
}

/* Encode variant `which` of entry e into body. Returns 0 or ERR_NOMEM
 * (body left empty). */
static int
watch_body_build(struct watch_body *b, const struct store_hist_entry *e,
                 int which)
{
    struct shoal_watch_message tail = {.version = e->version};
    int rc = 0;

    b->ends = calloc(e->n_events ? e->n_events : 1, sizeof *b->ends);
    if (!b->ends) {
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < e->n_events && rc == 0; i++) {
        rc = watch_encode_event(&b->buf, &e->events[i],
                                which == WATCH_WITH_OLD);
        b->ends[i] = b->buf.len;
    }
    if (rc == 0) {
        /* No events and this version: the version field alone. */
        rc = wire_encode(&wire_type_watch_message, &tail, &b->buf);
    }
    if (rc != 0) {
        watch_body_fini(b);
        return rc;
    }
    b->built = true;
    return 0;
}

/*
 * The encoding of variant `which` of entry e, built on first use. Returns
 * 0 and sets *out (valid until the next call), or ERR_NOMEM.
 */
static int
watch_cache_get(struct manager *m, const struct store_hist_entry *e,
                int which, const struct watch_body **out)
{
    struct watch_cache *wc = m->watch_cache;
    struct watch_enc *enc;
    int rc;

    if (!wc) {
        wc = calloc(1, sizeof *wc);
        if (!wc) {
            return ERR_NOMEM;
        }
        m->watch_cache = wc;
    }
    enc = &wc->slots[e->version % WATCH_CACHE_SLOTS];
    if (enc->version != e->version) {
        watch_enc_clear(wc, enc);
        if (wc->bytes > WATCH_CACHE_BYTES) {
            /* Huge entries: keep the memory bounded and re-encode the
             * ones still needed. */
            for (size_t i = 0; i < WATCH_CACHE_SLOTS; i++) {
                watch_enc_clear(wc, &wc->slots[i]);
            }
        }
        enc->version = e->version;
    }
    if (!enc->v[which].built) {
        rc = watch_body_build(&enc->v[which], e, which);
        if (rc != 0) {
            return rc;
        }
        wc->bytes += enc->v[which].buf.len;
    }
    *out = &enc->v[which];
    return 0;
}

/* Build in wc->part the body of the events marked in wc->match. */
static int
watch_body_part(struct watch_cache *wc, const struct watch_body *b,
                size_t n_events)
{
    size_t start = 0;
    int rc = 0;

    wc->part.len = 0;
    for (size_t i = 0; i < n_events && rc == 0; i++) {
        if (wc->match[i]) {
            rc = wire_buf_append(&wc->part, b->buf.data + start,
                                 b->ends[i] - start);
        }
        start = b->ends[i];
    }
    if (rc == 0) {
        rc = wire_buf_append(&wc->part, b->buf.data + start,
                             b->buf.len - start);
    }
    return rc;
}

/* Send the events of one entry that match, as one frame. */
static int
watch_send_entry(struct watch *w, const struct store_hist_entry *e)
{
    struct manager *m = w->conn->m;
    const struct watch_body *b;
    struct watch_cache *wc;
    size_t matched = 0;
    int rc;

    rc = watch_cache_get(m, e, w->req.include_old_object ? WATCH_WITH_OLD
                                                         : WATCH_PLAIN, &b);
    if (rc != 0) {
        return rc;
    }
    wc = m->watch_cache;
    if (wc->match_cap < e->n_events) {
        bool *grown = realloc(wc->match, e->n_events * sizeof *grown);

        if (!grown) {
            return ERR_NOMEM;
        }
        wc->match = grown;
        wc->match_cap = e->n_events;
    }
    for (size_t i = 0; i < e->n_events; i++) {
        wc->match[i] = watch_matches(w, &e->events[i]);
        matched += wc->match[i];
    }
    if (matched == 0) {
        return 0;
    }
    if (matched < e->n_events) {
        rc = watch_body_part(wc, b, e->n_events);
        if (rc != 0) {
            return rc;
        }
        return conn_frame_raw(w->conn, WIRE_MSG_WATCH | WIRE_REPLY,
                              WIRE_F_MORE, w->req_id, wc->part.data,
                              wc->part.len);
    }
    return conn_frame_raw(w->conn, WIRE_MSG_WATCH | WIRE_REPLY, WIRE_F_MORE,
                          w->req_id, b->buf.data, b->buf.len);
}

/*
 * store_history_next() for the watches: a thousand watches pumped one
 * after the other ask for the entry after the same versions, so the
 * answers are remembered instead of bisecting the history each time, and
 * a watch that has seen everything applied does not search at all.
 */
static int
watch_history_next(struct manager *m, uint64_t after,
                   const struct store_hist_entry **e, uint64_t *oldest)
{
    struct watch_cache *wc = m->watch_cache;
    uint64_t applied = store_applied(m->store);
    struct watch_next *memo;
    int rc;

    /* Nothing after the applied index, and the history's floor is never
     * above it: store_history_next() would say ERR_AGAIN. */
    if (after >= applied) {
        *e = NULL;
        return ERR_AGAIN;
    }
    memo = wc ? &wc->next[after % WATCH_CACHE_SLOTS] : NULL;
    if (memo && memo->entry && memo->after == after &&
        memo->applied == applied) {
        *e = memo->entry;
        return 0;
    }
    rc = store_history_next(m->store, after, e, oldest);
    if (rc == 0 && memo) {
        *memo = (struct watch_next){after, applied, *e};
    }
    return rc;
}

/*
 * Send w the entries after its cursor, at most max of them, while its
 * client's output has room. Returns how many entries it went past, or -1
 * when the watch was ended (and freed).
 */
static ssize_t
watch_pump(struct watch *w, size_t max)
{
    struct conn *c = w->conn;
    size_t n = 0;
    char why[128];

    while (n < max && !c->dead && conn_out_queued(c) < CONN_OUT_HIGH / 2) {
        const struct store_hist_entry *e;
        uint64_t oldest = 0;
        int rc = watch_history_next(c->m, w->cursor, &e, &oldest);

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
            return -1;
        }
        if (watch_send_entry(w, e) != 0) {
            watch_end(w, SHOAL_RESOURCE_EXHAUSTED, w->cursor,
                      "out of memory while sending events");
            return -1;
        }
        w->cursor = e->version;
        n++;
    }
    conn_flush_later(c);
    return (ssize_t)n;
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
    watch_pump(w, SIZE_MAX);
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

/* Pump each watch of c by at most max entries. Returns whether one of
 * them went past max entries, so may have more to send. */
static bool
watch_pump_conn_upto(struct conn *c, size_t max)
{
    struct watch *w;
    struct watch *next;
    bool more = false;

    /* A pump may end its own watch, or close c and free them all: the
     * next one is taken first and used only while c lives. */
    for (w = TAILQ_FIRST(&c->watches); w && !c->dead; w = next) {
        next = TAILQ_NEXT(w, link);
        more |= watch_pump(w, max) == (ssize_t)max;
    }
    return more;
}

void
watch_pump_conn(struct conn *c)
{
    watch_pump_conn_upto(c, SIZE_MAX);
}

/*
 * Every watch goes forward in rounds of at most WATCH_ROUND_ENTRIES
 * entries, so that the watches of a big commit batch walk its entries
 * together and find them in the cache: one watch pumped over thousands
 * of entries before the next would evict each encoding before the next
 * watch used it. Pumping may close the connection pumped (a failed
 * write), which moves it to the dead list and frees its watches; the
 * next connection is taken before, and stays valid.
 */
void
watch_pump_all(struct manager *m)
{
    struct conn *c;
    struct conn *next;
    bool more = true;

    while (more) {
        more = false;
        for (c = TAILQ_FIRST(&m->conns); c; c = next) {
            next = TAILQ_NEXT(c, link);
            more |= watch_pump_conn_upto(c, WATCH_ROUND_ENTRIES);
        }
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
    watch_cache_release(c->m);
}
