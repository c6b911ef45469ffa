/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_member.c: membership changes and leadership transfer.
 *
 * Changes are single-server (thesis §4.1): each config entry differs from
 * the previous one by one member, takes effect when appended, and the next
 * may only be proposed once it is committed and the leader has committed
 * an entry of its own term (the fix to the single-server algorithm in
 * Ongaro's raft-dev post of 2015, thesis erratum). New servers join as
 * non-voters and are promoted after catching up (thesis §4.2.1). Removed
 * ids are tombstoned in the config so they can never come back.
 * Leadership transfer follows thesis §3.10.
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int
change_allowed(const struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        return RAFT_ERR_NOT_LEADER;
    }
    if (r->transferee != 0) {
        return RAFT_ERR_TRANSFER;
    }
    if (r->config_index > r->commit || !raft__committed_in_term(r)) {
        return RAFT_ERR_CHANGE_PENDING;
    }
    return 0;
}

static int
propose_config(struct raft *r, const struct raft_config *cfg)
{
    uint8_t *buf;
    uint32_t len;
    int rc;

    ASSERT(r->role == RAFT_LEADER);
    ASSERT(raft__is_voter(cfg, r->id)); /* never demotes or drops us */
    buf = raft_config_encode(cfg, &len);
    if (buf == NULL) {
        return ERR_NOMEM;
    }
    rc = raft__leader_append(r, RAFT_ENTRY_CONFIG, buf, len);
    free(buf);
    if (rc != 0) {
        return rc;
    }
    raft__broadcast_append(r);
    return 0;
}

static int
member_index(const struct raft_config *c, raft_id id)
{
    for (unsigned k = 0; k < c->n_members; k++) {
        if (c->members[k].id == id) {
            return (int)k;
        }
    }
    return -1;
}

int
raft_add_nonvoter(struct raft *r, raft_id id)
{
    struct raft_config cfg = r->config;
    int rc = change_allowed(r);

    if (rc != 0) {
        return rc;
    }
    if (id == 0 || raft_config_is_removed(&cfg, id)) {
        return RAFT_ERR_REMOVED;
    }
    if (member_index(&cfg, id) >= 0 || cfg.n_members == RAFT_MAX_MEMBERS) {
        return RAFT_ERR_MEMBER;
    }
    cfg.members[cfg.n_members].id = id;
    cfg.members[cfg.n_members].voter = false;
    cfg.n_members++;
    return propose_config(r, &cfg);
}

static void
catchup_start(struct raft *r, raft_id id)
{
    r->catchup_id = id;
    r->catchup_round = 1;
    r->catchup_target = raft__log_last(&r->log);
    r->catchup_start = r->ticks;
    r->catchup_ready = false;
}

int
raft_add_voter(struct raft *r, raft_id id)
{
    int k = member_index(&r->config, id);
    int rc;

    if (k >= 0 && r->config.members[k].voter) {
        return RAFT_ERR_MEMBER;
    }
    if (r->role == RAFT_LEADER && r->catchup_id != 0) {
        return RAFT_ERR_CHANGE_PENDING; /* one catch-up at a time */
    }
    if (k < 0) {
        rc = raft_add_nonvoter(r, id);
    } else {
        rc = change_allowed(r);
    }
    if (rc == 0) {
        catchup_start(r, id);
    }
    return rc;
}

bool
raft_can_remove(const struct raft *r, raft_id id)
{
    struct raft_config cfg = r->config;
    unsigned reachable = 0;
    int k = member_index(&cfg, id);

    if (r->role != RAFT_LEADER) {
        return false;
    }
    if (k >= 0) {
        cfg.members[k].voter = false;
    }
    for (unsigned j = 0; j < RAFT_MAX_MEMBERS; j++) {
        const struct raft_progress *pr = &r->prs[j];

        if (pr->id == 0 || !raft__is_voter(&cfg, pr->id)) {
            continue;
        }
        if (pr->id == r->id ||
            r->ticks - pr->heard_tick <= r->opt.election_ticks) {
            reachable++;
        }
    }
    return reachable >= raft__quorum(&cfg);
}

static int
check_removal(const struct raft *r, raft_id id, int *k)
{
    int rc = change_allowed(r);

    if (rc != 0) {
        return rc;
    }
    *k = member_index(&r->config, id);
    if (*k < 0 || id == r->id) {
        return RAFT_ERR_MEMBER;
    }
    if (r->config.members[*k].voter && !raft_can_remove(r, id)) {
        return RAFT_ERR_NO_QUORUM;
    }
    return 0;
}

int
raft_remove(struct raft *r, raft_id id)
{
    struct raft_config cfg = r->config;
    int k, rc;

    rc = check_removal(r, id, &k);
    if (rc != 0) {
        return rc;
    }
    cfg.members[k] = cfg.members[cfg.n_members - 1];
    cfg.n_members--;
    if (cfg.n_removed == RAFT_MAX_REMOVED) {
        /* The oldest tombstone goes; ids are never reused anyway. */
        memmove(cfg.removed, cfg.removed + 1,
                (RAFT_MAX_REMOVED - 1) * sizeof(cfg.removed[0]));
        cfg.n_removed--;
    }
    cfg.removed[cfg.n_removed++] = id;
    if (r->catchup_id == id) {
        r->catchup_id = 0;
    }
    return propose_config(r, &cfg);
}

int
raft_demote(struct raft *r, raft_id id)
{
    struct raft_config cfg = r->config;
    int k, rc;

    rc = check_removal(r, id, &k);
    if (rc != 0) {
        return rc;
    }
    if (!cfg.members[k].voter) {
        return RAFT_ERR_MEMBER;
    }
    cfg.members[k].voter = false;
    return propose_config(r, &cfg);
}

static void
send_timeout_now(struct raft *r, raft_id id)
{
    struct raft_msg m = {0};

    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = id;
    if (raft__send(r, &m) == 0) {
        raft__event(r, RAFT_EV_TRANSFER_DONE, id, 0);
    }
}

int
raft_transfer(struct raft *r, raft_id id)
{
    struct raft_progress *pr;

    ASSERT(!r->in_ready);
    if (r->role != RAFT_LEADER) {
        return RAFT_ERR_NOT_LEADER;
    }
    if (r->transferee != 0) {
        return RAFT_ERR_TRANSFER;
    }
    if (id == 0) {
        raft_index best = 0;

        /* Pick the most up-to-date voter: the shortest catch-up. */
        for (unsigned k = 0; k < RAFT_MAX_MEMBERS; k++) {
            pr = &r->prs[k];
            if (pr->id != 0 && pr->id != r->id && pr->voter &&
                (id == 0 || pr->match > best)) {
                id = pr->id;
                best = pr->match;
            }
        }
    }
    pr = raft__pr(r, id);
    if (id == r->id || pr == NULL || !pr->voter) {
        return RAFT_ERR_MEMBER;
    }
    r->transferee = id;
    r->transfer_deadline = r->ticks + r->opt.election_ticks;
    /* Thesis §3.10 step 2: bring the target up to date, then step 3:
     * tell it to time out now. */
    if (pr->match == raft__log_last(&r->log)) {
        send_timeout_now(r, id);
    } else {
        (void)raft__send_append(r, pr, false);
    }
    return 0;
}

void
raft__transfer_abort(struct raft *r)
{
    raft__event(r, RAFT_EV_TRANSFER_ABORT, r->transferee, 0);
    r->transferee = 0;
}

/* Called when pr's match advanced on the leader. */
void
raft__member_on_progress(struct raft *r, struct raft_progress *pr)
{
    raft_index last = raft__log_last(&r->log);

    ASSERT(r->role == RAFT_LEADER);
    if (r->transferee == pr->id && pr->match == last) {
        send_timeout_now(r, pr->id);
    }
    if (r->catchup_id != pr->id || r->catchup_ready ||
        pr->match < r->catchup_target) {
        return;
    }
    /* A round ended: fast enough means within an election timeout
     * (thesis §4.2.1); else start another round towards our new end. */
    if (r->ticks - r->catchup_start <= r->opt.election_ticks) {
        r->catchup_ready = true;
        return;
    }
    r->catchup_round++;
    r->catchup_target = last;
    r->catchup_start = r->ticks;
}

static void
catchup_tick(struct raft *r)
{
    struct raft_config cfg = r->config;
    int k = member_index(&cfg, r->catchup_id);

    if (k < 0) {
        r->catchup_id = 0; /* removed meanwhile */
        return;
    }
    if (!r->catchup_ready &&
        r->ticks - r->catchup_start > r->opt.election_ticks) {
        /* A round that outlives an election timeout counts as slow. */
        r->catchup_round++;
        r->catchup_target = raft__log_last(&r->log);
        r->catchup_start = r->ticks;
    }
    if (r->catchup_round > r->opt.max_catchup_rounds) {
        raft__event(r, RAFT_EV_CHANGE_FAILED, r->catchup_id,
                    r->catchup_round - 1);
        r->catchup_id = 0;
        return;
    }
    if (r->catchup_ready && change_allowed(r) == 0) {
        raft_id id = r->catchup_id;

        cfg.members[k].voter = true;
        r->catchup_id = 0;
        if (propose_config(r, &cfg) == 0) {
            raft__event(r, RAFT_EV_PROMOTING, id, 0);
        }
    }
}

void
raft__member_tick(struct raft *r)
{
    ASSERT(r->role == RAFT_LEADER);
    if (r->transferee != 0 && r->ticks >= r->transfer_deadline) {
        raft__transfer_abort(r);
    }
    if (r->catchup_id != 0) {
        catchup_tick(r);
    }
}
