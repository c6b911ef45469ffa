/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * raft_config.c: membership configurations and their byte form.
 *
 * A config entry carries the whole membership after the change (thesis
 * §4.1: one server added or removed per entry) plus the tombstones of
 * removed ids, so a log replayed from any point knows who may never
 * rejoin. Byte form, little-endian: u32 n_members, then per member u64 id
 * and u8 voter, then u32 n_removed and u64 ids. Decoding trusts nothing.
 */
#include "raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static uint32_t
get_u32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int k = 0; k < 4; k++) {
        v |= (uint32_t)p[k] << (8 * k);
    }
    return v;
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int k = 0; k < 8; k++) {
        v |= (uint64_t)p[k] << (8 * k);
    }
    return v;
}

uint8_t *
raft_config_encode(const struct raft_config *c, uint32_t *len)
{
    size_t n = 4 + 9 * (size_t)c->n_members + 4 + 8 * (size_t)c->n_removed;
    uint8_t *buf, *p;

    ASSERT(c->n_members <= RAFT_MAX_MEMBERS);
    ASSERT(c->n_removed <= RAFT_MAX_REMOVED);
    buf = malloc(n);
    if (buf == NULL) {
        return NULL;
    }
    p = buf;
    put_u32(p, c->n_members);
    p += 4;
    for (unsigned k = 0; k < c->n_members; k++) {
        put_u64(p, c->members[k].id);
        p[8] = c->members[k].voter ? 1 : 0;
        p += 9;
    }
    put_u32(p, c->n_removed);
    p += 4;
    for (unsigned k = 0; k < c->n_removed; k++) {
        put_u64(p, c->removed[k]);
        p += 8;
    }
    *len = (uint32_t)n;
    return buf;
}

int
raft_config_decode(const uint8_t *buf, uint32_t len, struct raft_config *c)
{
    const uint8_t *p = buf;
    uint32_t n;

    memset(c, 0, sizeof(*c));
    if (len < 8) {
        return ERR_PROTO;
    }
    n = get_u32(p);
    p += 4;
    if (n > RAFT_MAX_MEMBERS || len < 8 + 9 * (size_t)n) {
        return ERR_PROTO;
    }
    for (uint32_t k = 0; k < n; k++) {
        raft_id id = get_u64(p);

        if (id == 0 || p[8] > 1 || raft_config_find(c, id) != NULL) {
            return ERR_PROTO;
        }
        c->members[k].id = id;
        c->members[k].voter = p[8] == 1;
        c->n_members = k + 1;
        p += 9;
    }
    n = get_u32(p);
    p += 4;
    if (n > RAFT_MAX_REMOVED ||
        len != 8 + 9 * (size_t)c->n_members + 8 * (size_t)n) {
        return ERR_PROTO;
    }
    for (uint32_t k = 0; k < n; k++) {
        c->removed[k] = get_u64(p);
        p += 8;
    }
    c->n_removed = n;
    return 0;
}

const struct raft_member *
raft_config_find(const struct raft_config *c, raft_id id)
{
    for (unsigned k = 0; k < c->n_members; k++) {
        if (c->members[k].id == id) {
            return &c->members[k];
        }
    }
    return NULL;
}

unsigned
raft_config_voters(const struct raft_config *c)
{
    unsigned n = 0;

    for (unsigned k = 0; k < c->n_members; k++) {
        n += c->members[k].voter ? 1 : 0;
    }
    return n;
}

bool
raft_config_is_removed(const struct raft_config *c, raft_id id)
{
    for (unsigned k = 0; k < c->n_removed; k++) {
        if (c->removed[k] == id) {
            return true;
        }
    }
    return false;
}

/* A majority of the voters (paper §5.2). An empty voter set has no
 * quorum that can be reached. */
unsigned
raft__quorum(const struct raft_config *c)
{
    unsigned v = raft_config_voters(c);

    return v == 0 ? 1 + RAFT_MAX_MEMBERS : v / 2 + 1;
}

bool
raft__is_voter(const struct raft_config *c, raft_id id)
{
    const struct raft_member *m = raft_config_find(c, id);

    return m != NULL && m->voter;
}

const char *
raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    case RAFT_NONVOTER:
        return "non-voter";
    }
    return "?";
}

const char *
raft_msg_name(enum raft_msg_type type)
{
    static const char *const names[RAFT_MSG_N_TYPES] = {
        [RAFT_MSG_PREVOTE] = "prevote",
        [RAFT_MSG_PREVOTE_RESP] = "prevote-resp",
        [RAFT_MSG_VOTE] = "vote",
        [RAFT_MSG_VOTE_RESP] = "vote-resp",
        [RAFT_MSG_APPEND] = "append",
        [RAFT_MSG_APPEND_RESP] = "append-resp",
        [RAFT_MSG_HEARTBEAT] = "heartbeat",
        [RAFT_MSG_HEARTBEAT_RESP] = "heartbeat-resp",
        [RAFT_MSG_SNAPSHOT] = "snapshot",
        [RAFT_MSG_READ_INDEX] = "read-index",
        [RAFT_MSG_READ_INDEX_RESP] = "read-index-resp",
        [RAFT_MSG_TIMEOUT_NOW] = "timeout-now",
    };

    if ((unsigned)type >= RAFT_MSG_N_TYPES) {
        return "?";
    }
    return names[type];
}

const char *
raft_err_str(int rc)
{
    switch (rc) {
    case RAFT_ERR_NOT_LEADER:
        return "not the leader";
    case RAFT_ERR_TRANSFER:
        return "leadership transfer in progress";
    case RAFT_ERR_BUSY:
        return "too many uncommitted bytes";
    case RAFT_ERR_NOT_READY:
        return "leader has not committed in its term";
    case RAFT_ERR_CHANGE_PENDING:
        return "membership change pending";
    case RAFT_ERR_NO_QUORUM:
        return "change would lose the quorum";
    case RAFT_ERR_REMOVED:
        return "id removed for good";
    case RAFT_ERR_MEMBER:
        return "wrong membership for this change";
    case RAFT_ERR_STALE:
        return "stale completion";
    case RAFT_ERR_STATE:
        return "invalid in this state";
    default:
        return err_str(rc);
    }
}
