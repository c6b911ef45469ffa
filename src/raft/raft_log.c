/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_log.c: the in-memory log of one node.
 *
 * Holds entries (base, base + n] with their payloads, plus what is known
 * of the compacted prefix: the base index, its term and the membership as
 * of base. Knows nothing of roles or messages. Invariant: entries[k] has
 * index base + k + 1, and terms never decrease along the log (paper §5.3,
 * Log Matching relies on it).
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void
entry_free(struct raft_entry *e)
{
    free(e->data);
    e->data = NULL;
}

raft_index
raft__log_last(const struct raft_log *l)
{
    return l->base + l->n;
}

raft_term
raft__log_last_term(const struct raft_log *l)
{
    return l->n > 0 ? l->entries[l->n - 1].term : l->base_term;
}

const struct raft_entry *
raft__log_get(const struct raft_log *l, raft_index i)
{
    if (i <= l->base || i > l->base + l->n) {
        return NULL;
    }
    return &l->entries[i - l->base - 1];
}

raft_term
raft__log_term(const struct raft_log *l, raft_index i)
{
    const struct raft_entry *e;

    if (i == l->base) {
        return l->base_term;
    }
    e = raft__log_get(l, i);
    return e != NULL ? e->term : 0;
}

int
raft__log_append(struct raft_log *l, raft_term term,
                 enum raft_entry_type type, const void *data, uint32_t len)
{
    struct raft_entry *e;
    uint8_t *copy = NULL;

    ASSERT(term >= raft__log_last_term(l));
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? 2 * l->cap : 64;
        struct raft_entry *grown;

        grown = realloc(l->entries, cap * sizeof(*grown));
        if (grown == NULL) {
            return ERR_NOMEM;
        }
        l->entries = grown;
        l->cap = cap;
    }
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL) {
            return ERR_NOMEM;
        }
        memcpy(copy, data, len);
    }
    e = &l->entries[l->n];
    e->term = term;
    e->index = raft__log_last(l) + 1;
    e->type = type;
    e->len = len;
    e->data = copy;
    l->n++;
    return 0;
}

/* Drop entries at index from and after. */
void
raft__log_truncate(struct raft_log *l, raft_index from)
{
    ASSERT(from > l->base);
    ASSERT(l->n <= l->cap);
    while (raft__log_last(l) >= from) {
        entry_free(&l->entries[l->n - 1]);
        l->n--;
    }
}

/* Drop entries up to and including upto, remembering upto's term and the
 * membership as of upto in the base (paper §7: the snapshot keeps the
 * last included index, term and configuration). */
void
raft__log_compact(struct raft_log *l, raft_index upto)
{
    struct raft_config cfg;
    raft_index at;
    size_t drop;
    int rc;

    if (upto <= l->base) {
        return;
    }
    ASSERT(upto <= raft__log_last(l));
    rc = raft__log_config_at(l, upto, &cfg, &at);
    ASSERT(rc == 0);
    drop = upto - l->base;
    l->base_term = raft__log_term(l, upto);
    for (size_t k = 0; k < drop; k++) {
        entry_free(&l->entries[k]);
    }
    memmove(l->entries, l->entries + drop,
            (l->n - drop) * sizeof(*l->entries));
    l->n -= drop;
    l->base = upto;
    l->base_config = cfg;
    ASSERT(l->n == 0 || l->entries[0].index == upto + 1);
}

/* Forget every entry and start over after a snapshot (paper §7, Figure 13
 * step 7: discard the entire log). */
void
raft__log_reset(struct raft_log *l, raft_index base, raft_term term,
                const struct raft_config *cfg)
{
    for (size_t k = 0; k < l->n; k++) {
        entry_free(&l->entries[k]);
    }
    l->n = 0;
    l->base = base;
    l->base_term = term;
    l->base_config = *cfg;
}

void
raft__log_fini(struct raft_log *l)
{
    for (size_t k = 0; k < l->n; k++) {
        entry_free(&l->entries[k]);
    }
    free(l->entries);
    memset(l, 0, sizeof(*l));
}

/* The membership in effect at index i: the latest config entry at or
 * before i, else the base config (thesis §4.1: a server uses the latest
 * configuration in its log, committed or not). */
int
raft__log_config_at(const struct raft_log *l, raft_index i,
                    struct raft_config *out, raft_index *at)
{
    if (i < l->base || i > raft__log_last(l)) {
        return RAFT_ERR_STATE;
    }
    for (raft_index k = i; k > l->base; k--) {
        const struct raft_entry *e = raft__log_get(l, k);

        if (e->type != RAFT_ENTRY_CONFIG) {
            continue;
        }
        /* Our own log holds only configs we decoded when they arrived. */
        if (raft_config_decode(e->data, e->len, out) == 0) {
            *at = k;
            return 0;
        }
    }
    *out = l->base_config;
    *at = 0;
    return 0;
}

/* Payload bytes of entries [from, to]. */
size_t
raft__log_bytes(const struct raft_log *l, raft_index from, raft_index to)
{
    size_t bytes = 0;

    for (raft_index i = from; i <= to; i++) {
        const struct raft_entry *e = raft__log_get(l, i);

        if (e != NULL) {
            bytes += e->len;
        }
    }
    return bytes;
}
