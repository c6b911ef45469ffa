/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * store_history.c: the retained history of applied entries, which
 * watches read to resume, and the matching of events to selectors.
 *
 * A ring of records in increasing version order, bounded by a count and
 * by an estimate of the encoded bytes of the objects it holds; the
 * oldest records go first. Invariant: every change applied after the
 * floor version is in the ring, so a watcher that resumes after a version
 * at or above the floor misses nothing.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/wire.h"

#define HIST_DEFAULT_ENTRIES 4096
#define HIST_DEFAULT_BYTES ((size_t)64 << 20)

void
store__hist_init(struct store_hist *h, const struct store_config *cfg)
{
    memset(h, 0, sizeof(*h));
    h->max_entries = cfg->history_entries ? cfg->history_entries
                                          : HIST_DEFAULT_ENTRIES;
    h->max_bytes = cfg->history_bytes ? cfg->history_bytes
                                      : HIST_DEFAULT_BYTES;
}

static struct store_hrec *
hist_at(const struct store_hist *h, size_t i)
{
    ASSERT(i < h->n);
    return &h->ring[(h->head + i) % h->cap];
}

static void
hrec_fini(struct store_hrec *r)
{
    struct store_event *evs = (struct store_event *)r->pub.events;

    for (size_t i = 0; i < r->pub.n_events; i++) {
        store__obj_unref(STORE_OBJ_OF(evs[i].obj));
        if (evs[i].old) {
            store__obj_unref(STORE_OBJ_OF(evs[i].old));
        }
    }
    free(evs);
    memset(r, 0, sizeof(*r));
}

/* Drop the oldest record; what came before it is now out of reach. */
static void
hist_drop_oldest(struct store_hist *h)
{
    struct store_hrec *r;

    ASSERT(h->n > 0);
    r = hist_at(h, 0);
    if (r->pub.version > h->floor) {
        h->floor = r->pub.version;
    }
    ASSERT(h->bytes >= r->bytes);
    h->bytes -= r->bytes;
    hrec_fini(r);
    h->head = (h->head + 1) % h->cap;
    h->n--;
}

void
store__hist_fini(struct store_hist *h)
{
    while (h->n > 0) {
        hist_drop_oldest(h);
    }
    free(h->ring);
    h->ring = NULL;
    h->cap = 0;
}

int
store__hist_reserve(struct store_hist *h)
{
    struct store_hrec *ring;
    size_t cap;

    /* A full ring at its bound makes room by dropping, not growing. */
    if (h->n < h->cap || h->cap >= h->max_entries) {
        return 0;
    }

    cap = h->cap ? h->cap * 2 : 16;
    if (cap > h->max_entries) {
        cap = h->max_entries;
    }
    ring = calloc(cap, sizeof(*ring));
    if (!ring) {
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < h->n; i++) {
        ring[i] = *hist_at(h, i);
    }
    free(h->ring);
    h->ring = ring;
    h->cap = cap;
    h->head = 0;
    ASSERT(h->n < h->cap);
    return 0;
}

void
store__hist_push(struct store_hist *h, uint64_t version,
                 struct store_event *events, size_t n)
{
    struct store_hrec *r;
    size_t bytes = 0;

    ASSERT(n > 0);
    ASSERT(h->n == 0 || hist_at(h, h->n - 1)->pub.version < version);
    if (h->n == h->cap) {
        ASSERT(h->cap > 0); /* store__hist_reserve() was called */
        hist_drop_oldest(h);
    }

    for (size_t i = 0; i < n; i++) {
        bytes += sizeof(events[i]) +
                 store__obj_bytes(STORE_OBJ_OF(events[i].obj));
        if (events[i].old) {
            bytes += store__obj_bytes(STORE_OBJ_OF(events[i].old));
        }
    }

    r = &h->ring[(h->head + h->n) % h->cap];
    r->pub.version = version;
    r->pub.n_events = n;
    r->pub.events = events;
    r->bytes = bytes;
    h->n++;
    h->bytes += bytes;

    /* The newest record stays even when it alone is over the byte bound:
     * the live watchers have yet to read it. */
    while (h->n > 1 && (h->n > h->max_entries || h->bytes > h->max_bytes)) {
        hist_drop_oldest(h);
    }
}

void
store__hist_set_floor(struct store_hist *h, uint64_t version)
{
    if (version > h->floor) {
        h->floor = version;
    }
}

int
store_history_next(const struct store *s, uint64_t after,
                   const struct store_hist_entry **out, uint64_t *oldest)
{
    const struct store_hist *h = &s->hist;
    size_t lo = 0;
    size_t hi = h->n;

    *out = NULL;
    if (after < h->floor) {
        if (oldest) {
            *oldest = h->floor;
        }
        return ERR_NOTFOUND;
    }

    /* The first record with version > after, by bisection. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (hist_at(h, mid)->pub.version <= after) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == h->n) {
        return ERR_AGAIN;
    }
    *out = &hist_at(h, lo)->pub;
    return 0;
}

/* Watches. */

static bool
str_is_set(const char *s)
{
    return s && *s;
}

static bool
str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
task_matches(const struct shoal_task *t,
             const struct shoal_watch_selector *sel)
{
    const char *svc = t->service_id ? t->service_id : "";
    const char *node = t->node_id ? t->node_id : "";

    if (str_is_set(sel->service_id) && strcmp(svc, sel->service_id) != 0) {
        return false;
    }
    return !str_is_set(sel->node_id) || strcmp(node, sel->node_id) == 0;
}

bool
store_event_matches(const struct store_event *ev,
                    const struct shoal_watch_selector *sel)
{
    const char *id;
    const char *name;

    if (sel->kind != SHOAL_KIND_NONE && sel->kind != (uint32_t)ev->kind) {
        return false;
    }
    if (sel->actions != 0 && (sel->actions & (uint32_t)ev->action) == 0) {
        return false;
    }

    id = wire_object_id(ev->kind, ev->obj);
    id = id ? id : "";
    if (str_is_set(sel->id) && strcmp(id, sel->id) != 0) {
        return false;
    }
    if (str_is_set(sel->id_prefix) && !str_has_prefix(id, sel->id_prefix)) {
        return false;
    }

    /* Exact and case-sensitive, unlike store lookups (SWARMKIT.md §3). */
    name = store__obj_name(ev->kind, ev->obj);
    if (str_is_set(sel->name) && strcmp(name, sel->name) != 0) {
        return false;
    }
    if (str_is_set(sel->name_prefix) &&
        !str_has_prefix(name, sel->name_prefix)) {
        return false;
    }

    /* Task filters on other kinds are ignored, as the reference does. */
    return ev->kind != SHOAL_KIND_TASK || task_matches(ev->obj, sel);
}
