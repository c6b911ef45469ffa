/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_control.c: a libFuzzer target for what a client's bytes do to a
 * manager: frames decoded, requests handled, writes applied.
 *
 * The input is the byte stream of one connection. It is cut into frames
 * as conn_handle_frames() in src/manager/server.c does (the same header
 * checks stop the stream), and each frame is dispatched as
 * server_dispatch() does, against a store bootstrapped like a fresh
 * cluster (the default cluster, this node, the ingress network), with
 * two differences. The first frame need not be a hello, so that a single
 * golden frame is a useful seed. And names stand for ids, as shoalctl
 * resolves them before it sends a request: an object id or a secret,
 * config or network reference that is the name of an existing object
 * becomes its id, since ids are random and the fuzzer could not guess
 * them. A write's proposal is applied at once,
 * as the single manager does after its log sync. A watch request is
 * matched against the history of what was applied. Then every kind is
 * listed and every object checked (fuzz_state.h).
 *
 * Properties: a refused body leaves nothing behind; a proposal survives
 * the log's encoding; apply never fails; replies never show secret data
 * or the CA key; every stored object round-trips through the codec.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fuzz.h"
#include "fuzz_state.h"
#include "shoal/wire.h"
#include "store/store.h"

#define MAX_FRAMES 64 /* per input, to keep each run short */

/* The bootstrap proposal, encoded once so that every run starts alike. */
static struct wire_buf boot;

static int
bootstrap(struct fuzz_state *st)
{
    struct shoal_proposal *p = NULL;
    struct shoal_proposal q = {0};
    struct store_verdict v;

    if (boot.len == 0) {
        if (control_bootstrap(&st->ctl, "fuzzhost", &p) != 0) {
            return -1;
        }
        if (wire_encode(&wire_type_proposal, p, &boot) != 0) {
            boot.len = 0;
        }
        wire_free(&wire_type_proposal, p);
        free(p);
    }
    if (boot.len == 0 ||
        wire_decode(&wire_type_proposal, &q, boot.data, boot.len) != 0) {
        return -1;
    }
    fuzz_state_apply(st, &q, &v);
    FUZZ_CHECK(v.code == SHOAL_OK);
    wire_free(&wire_type_proposal, &q);
    return 0;
}

/* A watch: match its selectors against every retained history entry. */
static void
watch(struct fuzz_state *st, const struct shoal_watch_request *w)
{
    const struct store_hist_entry *e;
    uint64_t after = w->resume_from > 0 ? w->resume_from - 1 : 0;
    uint64_t oldest;

    while (store_history_next(st->store, after, &e, &oldest) == 0) {
        FUZZ_CHECK(e->version > after);
        for (size_t i = 0; i < e->n_events; i++) {
            for (size_t s = 0; s < w->n_selectors; s++) {
                store_event_matches(&e->events[i], &w->selectors[s]);
            }
        }
        after = e->version;
    }
}

/* One frame, as server_dispatch() takes it after the hello. */
static void
dispatch(struct fuzz_state *st, const struct wire_hdr *h, const uint8_t *body,
         size_t len)
{
    const struct wire_msg_info *info;
    const struct wire_type *t;
    void *req;

    if (h->flags & (WIRE_F_MORE | WIRE_F_FORWARDED) ||
        h->type == WIRE_MSG_CANCEL || h->type == WIRE_MSG_STATS) {
        return;
    }
    info = wire_msg_info(h->type);
    if (!info || !info->request || h->type == WIRE_MSG_STATUS) {
        return;
    }
    t = info->request;
    req = calloc(1, wire_type_size(t));
    if (!req) {
        return;
    }
    if (wire_decode(t, req, body, len) != 0) {
        /* shoald frees a refused request without wire_free(). */
        FUZZ_CHECK(fuzz_all_zero(req, wire_type_size(t)));
        free(req);
        return;
    }
    if (h->type == WIRE_MSG_WATCH) {
        watch(st, req);
    } else if (h->type != WIRE_MSG_HELLO) {
        fuzz_state_resolve(st, info, req);
        fuzz_state_request(st, h->type, req);
    }
    wire_free(t, req);
    free(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_state st;
    size_t off = 0;

    log_set_level(LOG_CRIT);
    if (fuzz_state_open(&st) != 0) {
        return 0;
    }
    if (bootstrap(&st) != 0) {
        fuzz_state_close(&st);
        return 0;
    }
    for (int n = 0; n < MAX_FRAMES; n++) {
        struct wire_hdr h;
        size_t total;

        /* The checks of conn_handle_frames(); each ends the stream. */
        if (wire_hdr_decode(&h, data + off, size - off) != WIRE_HDR_BYTES ||
            h.version != WIRE_PROTO_VERSION || (h.flags & ~WIRE_F_KNOWN)) {
            break;
        }
        total = (size_t)h.len + 4;
        if (size - off < total) {
            break;
        }
        dispatch(&st, &h, data + off + WIRE_HDR_BYTES, total - WIRE_HDR_BYTES);
        off += total;
    }
    fuzz_state_read_all(&st);
    fuzz_state_close(&st);
    return 0;
}
