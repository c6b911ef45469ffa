/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * snap_send.c: the leader's side of a snapshot transfer, and the chunk
 * header check that both sides use.
 *
 * A sender holds one statedb read transaction and turns it into chunks
 * (layout in storage.h), one per call, so that the loop serves other
 * work between chunks while LMDB keeps committing. Invariant: chunk n is
 * a pure function of the read transaction and chunk_bytes, so a resume
 * at n rebuilds exactly the bytes a receiver would have got.
 */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/base.h"
#include "storage/storage_int.h"

#define SKIP_CHUNKS 16 /* chunks walked, not given, per call while seeking */

struct snap_send {
    struct statedb_iter *it;  /* the read transaction, until end */
    struct statedb_meta meta; /* membership owned by it */
    size_t chunk_bytes;
    uint64_t seq;    /* seq of the chunk the next build makes */
    uint64_t target; /* first seq to give; below it chunks are skipped */
    bool done;       /* the chunk with the last flag was built */
    bool walk_end;   /* the iterator has no object left */
    bool failed;     /* an error other than ERR_AGAIN: only end is valid */

    uint8_t *buf; /* the chunk being built, then given */
    size_t len, cap;
    uint32_t n_items;

    uint8_t *pend; /* an encoded item that did not fit in the last chunk */
    size_t pend_len, pend_cap;
    bool has_pend;
};

/* ---- The chunk header ------------------------------------------------- */

static uint64_t
chunk_sum(const uint8_t *p, size_t n)
{
    return XXH3_64bits(p, n);
}

int
snap_chunk_peek(const void *buf, size_t len, struct snap_chunk_info *info)
{
    const uint8_t *p = buf;
    uint8_t flags;

    if (len > SNAP_MAX_CHUNK_BYTES) {
        return ERR_PROTO;
    }
    /* Length and checksum first: anything else read from a damaged chunk
     * would be noise. */
    if (len < SNAP_HDR_BYTES + SNAP_SUM_BYTES ||
        storage__get_le32(p + 8) != len) {
        return ERR_CORRUPT;
    }
    if (storage__get_le64(p + len - SNAP_SUM_BYTES) !=
        chunk_sum(p, len - SNAP_SUM_BYTES)) {
        return ERR_CORRUPT;
    }
    flags = p[5];
    if (storage__get_le32(p) != SNAP_MAGIC || p[4] != SNAP_VERSION ||
        (flags & ~SNAP_CHUNK_LAST) != 0 || storage__get_le16(p + 6) != 0) {
        return ERR_PROTO;
    }
    info->n_items = storage__get_le32(p + 12);
    info->id.index = storage__get_le64(p + 16);
    info->id.term = storage__get_le64(p + 24);
    info->seq = storage__get_le64(p + 32);
    info->last = (flags & SNAP_CHUNK_LAST) != 0;
    return 0;
}

/* ---- Building chunks -------------------------------------------------- */

static int
grow(uint8_t **p, size_t *cap, size_t need)
{
    size_t n = *cap > 0 ? *cap : 4096;
    uint8_t *v;

    if (need <= *cap) {
        return 0;
    }
    while (n < need) {
        n *= 2;
    }
    v = realloc(*p, n);
    if (v == NULL) {
        return ERR_NOMEM;
    }
    *p = v;
    *cap = n;
    return 0;
}

static void
item_encode(uint8_t *out, uint8_t kind, const char *id, size_t id_len,
            const void *val, size_t len)
{
    out[0] = kind;
    out[1] = (uint8_t)id_len;
    storage__put_le32(out + 2, (uint32_t)len);
    memcpy(out + SNAP_ITEM_HDR_BYTES, id, id_len);
    if (len > 0) {
        memcpy(out + SNAP_ITEM_HDR_BYTES + id_len, val, len);
    }
}

/*
 * statedb_iter_next() hands over one object per call. It joins the chunk
 * when it fits in chunk_bytes, or when the chunk is still empty, so that
 * an item larger than chunk_bytes travels alone; otherwise it waits in
 * pend as the first item of the next chunk. The membership counts as
 * content: a large one and a large item never share chunk 0, which keeps
 * every chunk within one transport frame when objects and membership are.
 */
static int
on_item(uint8_t kind, const char *id, const void *val, size_t len, void *arg)
{
    struct snap_send *s = arg;
    size_t id_len = strlen(id);
    size_t n = SNAP_ITEM_HDR_BYTES + id_len + len;
    bool empty;
    int rc;

    ASSERT(id_len > 0 && id_len <= STATEDB_MAX_ID); /* statedb checked */
    if (len > SNAP_MAX_VALUE) {
        return ERR_TOOBIG;
    }
    empty = s->len == SNAP_HDR_BYTES + (s->seq == 0 ? 4 : 0);
    if (!empty && s->len + n + SNAP_SUM_BYTES > s->chunk_bytes) {
        rc = grow(&s->pend, &s->pend_cap, n);
        if (rc == 0) {
            item_encode(s->pend, kind, id, id_len, val, len);
            s->pend_len = n;
            s->has_pend = true;
        }
        return rc;
    }
    rc = grow(&s->buf, &s->cap, s->len + n + SNAP_SUM_BYTES);
    if (rc != 0) {
        return rc;
    }
    item_encode(s->buf + s->len, kind, id, id_len, val, len);
    s->len += n;
    s->n_items++;
    return 0;
}

/* Start chunk s->seq: header room, the membership in chunk 0, and the
 * item left over from the chunk before. */
static int
chunk_open(struct snap_send *s)
{
    size_t m = s->meta.membership_len;
    int rc;

    s->len = SNAP_HDR_BYTES;
    s->n_items = 0;
    rc = grow(&s->buf, &s->cap, SNAP_HDR_BYTES + 4 + m + SNAP_SUM_BYTES);
    if (rc != 0) {
        return rc;
    }
    if (s->seq == 0) {
        storage__put_le32(s->buf + s->len, (uint32_t)m);
        if (m > 0) {
            memcpy(s->buf + s->len + 4, s->meta.membership, m);
        }
        s->len += 4 + m;
    }
    if (s->has_pend) {
        rc = grow(&s->buf, &s->cap, s->len + s->pend_len + SNAP_SUM_BYTES);
        if (rc != 0) {
            return rc;
        }
        memcpy(s->buf + s->len, s->pend, s->pend_len);
        s->len += s->pend_len;
        s->n_items = 1;
        s->has_pend = false;
    }
    return 0;
}

static void
chunk_seal(struct snap_send *s, bool last)
{
    uint8_t *p = s->buf;

    s->len += SNAP_SUM_BYTES;
    ASSERT(s->len <= SNAP_MAX_CHUNK_BYTES);
    storage__put_le32(p, SNAP_MAGIC);
    p[4] = SNAP_VERSION;
    p[5] = last ? SNAP_CHUNK_LAST : 0;
    storage__put_le16(p + 6, 0);
    storage__put_le32(p + 8, (uint32_t)s->len);
    storage__put_le32(p + 12, s->n_items);
    storage__put_le64(p + 16, s->meta.applied_index);
    storage__put_le64(p + 24, s->meta.applied_term);
    storage__put_le64(p + 32, s->seq);
    storage__put_le64(p + s->len - SNAP_SUM_BYTES,
                      chunk_sum(p, s->len - SNAP_SUM_BYTES));
}

/* Build chunk s->seq into s->buf; *last tells whether the walk ended. */
static int
chunk_build(struct snap_send *s, bool *last)
{
    int rc = chunk_open(s);

    while (rc == 0 && !s->has_pend && !s->walk_end) {
        rc = statedb_iter_next(s->it, 1, on_item, s);
        if (rc == 0) {
            s->walk_end = true;
        } else if (rc == ERR_AGAIN) {
            rc = 0;
        }
    }
    if (rc != 0) {
        return rc;
    }
    *last = s->walk_end && !s->has_pend;
    chunk_seal(s, *last);
    return 0;
}

/* ---- The sender ------------------------------------------------------- */

int
snap_send_begin(struct snap_send **out, struct statedb *db, size_t chunk_bytes)
{
    struct snap_send *s;
    int rc;

    *out = NULL;
    if (chunk_bytes == 0) {
        chunk_bytes = SNAP_CHUNK_BYTES;
    }
    if (chunk_bytes < SNAP_MIN_CHUNK_BYTES || chunk_bytes > SNAP_MAX_VALUE) {
        return ERR_TOOBIG;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ERR_NOMEM;
    }
    s->chunk_bytes = chunk_bytes;
    rc = statedb_iter_begin(db, &s->it, &s->meta);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

struct snap_id
snap_send_id(const struct snap_send *s)
{
    return (struct snap_id){
        .index = s->meta.applied_index,
        .term = s->meta.applied_term,
    };
}

uint64_t
snap_send_seq(const struct snap_send *s)
{
    return s->seq;
}

void
snap_send_seek(struct snap_send *s, uint64_t seq)
{
    if (seq < s->seq) {
        /* Same read transaction, so the same chunks come again. */
        statedb__iter_rewind(s->it);
        s->seq = 0;
        s->done = false;
        s->walk_end = false;
        s->has_pend = false;
    }
    s->target = seq;
}

int
snap_send_next(struct snap_send *s, const void **chunk, size_t *len)
{
    bool last = false;
    int rc;

    if (s->failed || s->done) {
        return ERR_BADSTATE;
    }
    for (int budget = SKIP_CHUNKS; budget > 0; budget--) {
        rc = chunk_build(s, &last);
        if (rc != 0) {
            s->failed = true;
            return rc;
        }
        s->done = last;
        if (s->seq++ >= s->target) {
            *chunk = s->buf;
            *len = s->len;
            return last ? 0 : 1;
        }
        if (last) {
            /* The target is past the end: the receiver is confused
             * about which snapshot it holds. Seek back to go on. */
            return ERR_PROTO;
        }
    }
    return ERR_AGAIN;
}

void
snap_send_end(struct snap_send *s)
{
    if (s == NULL) {
        return;
    }
    statedb_iter_end(s->it);
    free(s->buf);
    free(s->pend);
    free(s);
}
