/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * sim_check.c: the safety properties, checked after every event.
 *
 * Election Safety, Leader Append-Only, Log Matching, Leader Completeness
 * and State Machine Safety (paper Figure 3), plus: nothing is applied
 * unless a quorum holds it durably; a vote is granted at most once per
 * term, across restarts too (votes are recorded globally as they leave);
 * replicas have equal state hashes at equal applied indexes. Log Matching
 * is checked through prefix hashes: each (index, term) seen anywhere maps
 * to one hash of the whole log up to it.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

struct sim_vote {
    raft_id voter;
    raft_term term;
    raft_id candidate;
};

struct sim_chain {
    raft_index index;   /* 0: empty slot */
    raft_term term;
    uint64_t chain;
};

uint64_t
sim_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t k = 0; k < n; k++) {
        h ^= b[k];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t
sim_entry_hash(const struct raft_entry *e)
{
    uint64_t h = 14695981039346656037ULL;
    uint32_t type = (uint32_t)e->type;

    h = sim_hash(h, &e->term, sizeof(e->term));
    h = sim_hash(h, &type, sizeof(type));
    h = sim_hash(h, &e->len, sizeof(e->len));
    if (e->len > 0) {
        h = sim_hash(h, e->data, e->len);
    }
    return h;
}

void
sim_violation(struct sim *s, const char *fmt, ...)
{
    va_list ap;

    if (s->violated) {
        return;
    }
    s->violated = true;
    va_start(ap, fmt);
    vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
    va_end(ap);
    sim_trace(s, "VIOLATION %s", s->violation);
}

/* ---- index-keyed arrays ---------------------------------------------- */

static void
grow_idx(struct sim *s, raft_index i)
{
    size_t cap = s->cap_idx != 0 ? s->cap_idx : 1024;

    if (i < s->cap_idx) {
        return;
    }
    while (cap <= i) {
        cap *= 2;
    }
#define GROW(p)                                                         \
    do {                                                                \
        (p) = realloc((p), cap * sizeof(*(p)));                         \
        ASSERT((p) != NULL);                                            \
        memset((p) + s->cap_idx, 0, (cap - s->cap_idx) * sizeof(*(p))); \
    } while (0)
    GROW(s->ap_term);
    GROW(s->ap_hash);
    GROW(s->st_hash);
    GROW(s->ap_set);
    GROW(s->cm_term);
    GROW(s->cm_seen);
#undef GROW
    s->cap_idx = cap;
}

/* ---- prefix hashes: (index, term) -> chain --------------------------- */

static size_t
chain_slot(const struct sim *s, raft_index i, raft_term t)
{
    uint64_t h = (i * 0x9e3779b97f4a7c15ULL) ^ (t * 0xc2b2ae3d27d4eb4fULL);

    return (size_t)(h & (s->cap_chains - 1));
}

static void
chain_grow(struct sim *s)
{
    struct sim_chain *old = s->chains;
    size_t old_cap = s->cap_chains;

    s->cap_chains = old_cap != 0 ? 2 * old_cap : 4096;
    s->chains = calloc(s->cap_chains, sizeof(*s->chains));
    ASSERT(s->chains != NULL);
    for (size_t k = 0; k < old_cap; k++) {
        if (old[k].index != 0) {
            size_t j = chain_slot(s, old[k].index, old[k].term);

            while (s->chains[j].index != 0) {
                j = (j + 1) & (s->cap_chains - 1);
            }
            s->chains[j] = old[k];
        }
    }
    free(old);
}

static struct sim_chain *
chain_find(struct sim *s, raft_index i, raft_term t, bool add)
{
    size_t j;

    if (s->cap_chains == 0 || (add && 2 * (s->n_chains + 1) > s->cap_chains)) {
        chain_grow(s);
    }
    j = chain_slot(s, i, t);
    while (s->chains[j].index != 0) {
        if (s->chains[j].index == i && s->chains[j].term == t) {
            return &s->chains[j];
        }
        j = (j + 1) & (s->cap_chains - 1);
    }
    if (!add) {
        return NULL;
    }
    s->chains[j].index = i;
    s->chains[j].term = t;
    s->n_chains++;
    return &s->chains[j];
}

/* ---- the node's shadow log ------------------------------------------- */

static void
sh_reserve(struct sim_node *n, size_t want)
{
    if (want <= n->sh_cap) {
        return;
    }
    n->sh_cap = want < 2 * n->sh_cap ? 2 * n->sh_cap : want + 64;
    n->sh_term = realloc(n->sh_term, n->sh_cap * sizeof(*n->sh_term));
    n->sh_hash = realloc(n->sh_hash, n->sh_cap * sizeof(*n->sh_hash));
    n->sh_chain = realloc(n->sh_chain, n->sh_cap * sizeof(*n->sh_chain));
    ASSERT(n->sh_term != NULL && n->sh_hash != NULL && n->sh_chain != NULL);
}

static bool
sh_same(const struct sim_node *n, raft_index i)
{
    const struct raft_entry *e = raft_entry_at(&n->r, i);
    size_t k = i - n->sh_base - 1;

    return e != NULL && e->term == n->sh_term[k] &&
           sim_entry_hash(e) == n->sh_hash[k];
}

/* Move the shadow's base up to the core's base (compaction or a
 * snapshot), keeping the prefix hash at the new base when known. */
static void
sh_rebase(struct sim *s, struct sim_node *n, raft_index base)
{
    raft_index sh_last = n->sh_base + n->sh_n;
    raft_term base_term = raft_term_at(&n->r, base);
    struct sim_chain *c;

    if (base <= n->sh_base) {
        return;
    }
    if (base <= sh_last && n->sh_term[base - n->sh_base - 1] == base_term) {
        size_t drop = base - n->sh_base;

        n->sh_base_chain = n->sh_chain[drop - 1];
        memmove(n->sh_term, n->sh_term + drop,
                (n->sh_n - drop) * sizeof(*n->sh_term));
        memmove(n->sh_hash, n->sh_hash + drop,
                (n->sh_n - drop) * sizeof(*n->sh_hash));
        memmove(n->sh_chain, n->sh_chain + drop,
                (n->sh_n - drop) * sizeof(*n->sh_chain));
        n->sh_n -= drop;
    } else {
        c = chain_find(s, base, base_term, false);
        n->sh_base_known = c != NULL;
        n->sh_base_chain = c != NULL ? c->chain : 0;
        n->sh_n = 0;
    }
    n->sh_base = base;
}

/* Leader Append-Only and Log Matching (paper Figure 3) for node id. */
static void
check_log(struct sim *s, struct sim_node *n, bool leading)
{
    raft_index base = raft_first_index(&n->r) - 1;
    raft_index last = raft_last_index(&n->r);
    raft_index sh_last, d, lo;
    bool full = (++n->sh_checks % 16) == 0;

    if (base < n->sh_base) {
        /* A restart from an older snapshot: start the shadow again. */
        n->sh_base = 0;
        n->sh_n = 0;
        n->sh_base_known = true;
        n->sh_base_chain = 0;
    }
    sh_rebase(s, n, base);
    sh_last = n->sh_base + n->sh_n;
    lo = n->sh_base + 1;
    /* The first index where the log and the shadow differ. Logs change
     * only at their end, so a backward scan finds it; every 16th check
     * scans everything in case they do not. */
    d = (last < sh_last ? last : sh_last) + 1;
    if (full) {
        for (raft_index i = lo; i < d; i++) {
            if (!sh_same(n, i)) {
                d = i;
                break;
            }
        }
    } else {
        while (d > lo && !sh_same(n, d - 1)) {
            d--;
        }
    }
    if (leading && (d <= sh_last)) {
        sim_violation(s, "leader append-only: n%" PRIu64 " term %" PRIu64
                      " changed its log at index %" PRIu64, n->id,
                      raft_term_current(&n->r), d);
        return;
    }
    sh_reserve(n, (size_t)(last - n->sh_base));
    for (raft_index i = d; i <= last; i++) {
        const struct raft_entry *e = raft_entry_at(&n->r, i);
        size_t k = i - n->sh_base - 1;
        uint64_t prev = k == 0 ? n->sh_base_chain : n->sh_chain[k - 1];
        struct sim_chain *c;

        n->sh_term[k] = e->term;
        n->sh_hash[k] = sim_entry_hash(e);
        n->sh_chain[k] = sim_hash(prev, &n->sh_hash[k], sizeof(uint64_t));
        if (!n->sh_base_known) {
            continue;
        }
        c = chain_find(s, i, e->term, true);
        if (c->chain == 0) {
            c->chain = n->sh_chain[k];
        } else if (c->chain != n->sh_chain[k]) {
            sim_violation(s, "log matching: n%" PRIu64 " index %" PRIu64
                          " term %" PRIu64 " has a different prefix",
                          n->id, i, e->term);
            return;
        }
    }
    n->sh_n = (size_t)(last - n->sh_base);
}

/* Leader Completeness: a leader of a term above the one in which an entry
 * was seen committed holds that entry (paper §5.4, Figure 3). */
static void
check_complete(struct sim *s, struct sim_node *n, raft_index from)
{
    raft_term term = raft_term_current(&n->r);
    raft_index base = raft_first_index(&n->r) - 1;

    for (raft_index i = from; i <= s->g_commit; i++) {
        if (s->cm_term[i] == 0 || s->cm_seen[i] >= term || i <= base) {
            continue;
        }
        if (raft_term_at(&n->r, i) != s->cm_term[i]) {
            sim_violation(s, "leader completeness: n%" PRIu64 " leads term "
                          "%" PRIu64 " without committed entry %" PRIu64
                          " (term %" PRIu64 ")", n->id, term, i,
                          s->cm_term[i]);
            return;
        }
    }
}

static void
check_commit(struct sim *s, struct sim_node *n)
{
    raft_index c = raft_commit_index(&n->r), from = s->g_commit + 1;

    if (c <= s->g_commit) {
        return;
    }
    grow_idx(s, c);
    for (raft_index i = from; i <= c; i++) {
        s->cm_term[i] = raft_term_at(&n->r, i);
        s->cm_seen[i] = raft_term_current(&n->r);
    }
    s->g_commit = c;
    for (unsigned id = 1; id <= s->n_nodes && !s->violated; id++) {
        struct sim_node *l = &s->nodes[id];

        if (l->up && raft_role(&l->r) == RAFT_LEADER) {
            check_complete(s, l, from);
        }
    }
}

void
sim_check_node(struct sim *s, unsigned id)
{
    struct sim_node *n = &s->nodes[id];
    raft_term term;
    bool leading;

    if (!n->up || s->violated) {
        return;
    }
    term = raft_term_current(&n->r);
    leading = raft_role(&n->r) == RAFT_LEADER;
    if (leading) {
        /* Election Safety: at most one leader per term (paper §5.2). */
        if (term >= s->cap_terms) {
            size_t cap = s->cap_terms != 0 ? s->cap_terms : 256;

            while (cap <= term) {
                cap *= 2;
            }
            s->leader_of_term = realloc(s->leader_of_term,
                                        cap * sizeof(raft_id));
            ASSERT(s->leader_of_term != NULL);
            memset(s->leader_of_term + s->cap_terms, 0,
                   (cap - s->cap_terms) * sizeof(raft_id));
            s->cap_terms = cap;
        }
        if (s->leader_of_term[term] != 0 &&
            s->leader_of_term[term] != n->id) {
            sim_violation(s, "election safety: n%" PRIu64 " and n%" PRIu64
                          " both lead term %" PRIu64,
                          s->leader_of_term[term], n->id, term);
            return;
        }
        s->leader_of_term[term] = n->id;
    }
    check_log(s, n, leading && n->sh_leader_term == term);
    if (s->violated) {
        return;
    }
    if (leading && n->sh_leader_term != term) {
        check_complete(s, n, 1);
    }
    n->sh_leader_term = leading ? term : 0;
    check_commit(s, n);
}

void
sim_check_vote(struct sim *s, const struct raft_msg *m)
{
    struct sim_vote *v;

    for (size_t k = 0; k < s->n_votes; k++) {
        v = &s->votes[k];
        if (v->voter == m->from && v->term == m->term) {
            if (v->candidate != m->to) {
                sim_violation(s, "vote twice: n%" PRIu64 " voted for n%"
                              PRIu64 " and n%" PRIu64 " in term %" PRIu64,
                              m->from, v->candidate, m->to, m->term);
            }
            return;
        }
    }
    if (s->n_votes == s->cap_votes) {
        s->cap_votes = s->cap_votes != 0 ? 2 * s->cap_votes : 64;
        s->votes = realloc(s->votes, s->cap_votes * sizeof(*s->votes));
        ASSERT(s->votes != NULL);
    }
    v = &s->votes[s->n_votes++];
    v->voter = m->from;
    v->term = m->term;
    v->candidate = m->to;
}

/* How many servers hold entry e durably (in their log or under their
 * snapshot). */
static unsigned
durable_copies(struct sim *s, const struct raft_entry *e)
{
    unsigned n = 0;

    for (unsigned id = 1; id <= s->n_nodes; id++) {
        const struct sim_node *x = &s->nodes[id];

        if (x->d_snap.index >= e->index) {
            n++;
        } else if (e->index > x->d_base && e->index <= x->d_base + x->d_n &&
                   x->d_log[e->index - x->d_base - 1].term == e->term) {
            n++;
        }
    }
    return n;
}

void
sim_check_apply(struct sim *s, unsigned id, const struct raft_entry *e)
{
    struct sim_node *n = &s->nodes[id];
    uint64_t h = sim_entry_hash(e);
    struct raft_config cfg;
    unsigned voters, need;

    if (s->violated) {
        return;
    }
    if (e->index != n->sm_applied + 1) {
        sim_violation(s, "n%u applies %" PRIu64 " after %" PRIu64, id,
                      e->index, n->sm_applied);
        return;
    }
    grow_idx(s, e->index);
    /* State Machine Safety (paper Figure 3). */
    if (s->ap_set[e->index] &&
        (s->ap_term[e->index] != e->term || s->ap_hash[e->index] != h)) {
        sim_violation(s, "state machine safety: n%u applies term %" PRIu64
                      " at %" PRIu64 ", another node applied term %" PRIu64,
                      id, e->term, e->index, s->ap_term[e->index]);
        return;
    }
    s->ap_set[e->index] = 1;
    s->ap_term[e->index] = e->term;
    s->ap_hash[e->index] = h;
    /* Committed means durable on a quorum (paper §5.3). Under single
     * server changes the commit quorum is a majority of this config or
     * of one that differs by one server, so an even config needs half. */
    if (raft_config_at(&n->r, e->index, &cfg) != 0) {
        return;
    }
    voters = raft_config_voters(&cfg);
    need = voters % 2 == 1 ? voters / 2 + 1 : voters / 2;
    if (durable_copies(s, e) < need) {
        sim_violation(s, "n%u applies %" PRIu64 " (term %" PRIu64 ") held "
                      "durably by %u servers, below %u", id, e->index,
                      e->term, durable_copies(s, e), need);
    }
}

void
sim_check_state(struct sim *s, unsigned id)
{
    struct sim_node *n = &s->nodes[id];
    uint64_t h = sim_hash(14695981039346656037ULL, n->kv, sizeof(n->kv));
    raft_index i = n->sm_applied;

    if (s->violated || i == 0) {
        return;
    }
    grow_idx(s, i);
    if (s->st_hash[i] != 0 && s->st_hash[i] != h) {
        sim_violation(s, "state hash: n%u differs at applied index %" PRIu64,
                      id, i);
        return;
    }
    s->st_hash[i] = h;
}

void
sim_check_fini(struct sim *s)
{
    free(s->leader_of_term);
    free(s->votes);
    free(s->chains);
    free(s->ap_term);
    free(s->ap_hash);
    free(s->st_hash);
    free(s->ap_set);
    free(s->cm_term);
    free(s->cm_seen);
}
