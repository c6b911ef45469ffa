/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * codec.c: the binary codec of every schema type, driven by field tables
 * made from shoal/schema.def.
 *
 * A body is a sequence of fields, each "tag (u16 BE), length (u32 BE),
 * bytes"; PROTOCOL.md has the layout of each field kind. Encoding is
 * canonical (fields in tag order, zero scalars and absent values left
 * out, maps sorted), so equal values have equal bytes. Decoding trusts
 * nothing: every length is checked against the bytes left and the
 * schema's limit before anything is allocated.
 */
#include "shoal/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "wire_int.h"

/* The field tables: one array of struct wire_field per schema type. */
#define S_BEGIN(m) static const struct wire_field wire_fields_##m[] = {
#define S_END(m)                                                           \
    }                                                                      \
    ;                                                                      \
    const struct wire_type wire_type_##m = {                               \
        #m, sizeof(struct shoal_##m), wire_fields_##m,                     \
        ARRAY_LEN(wire_fields_##m)};
#define FLD(m, t, f, k, sub, n, max)                                       \
    {t, k, #f, offsetof(struct shoal_##m, f), 0, sub, n, max},
#define F_U64(m, t, f) FLD(m, t, f, WK_U64, NULL, 0, 0)
#define F_I64(m, t, f) FLD(m, t, f, WK_I64, NULL, 0, 0)
#define F_U32(m, t, f) FLD(m, t, f, WK_U32, NULL, 0, 0)
#define F_BOOL(m, t, f) FLD(m, t, f, WK_BOOL, NULL, 0, 0)
#define F_F64(m, t, f) FLD(m, t, f, WK_F64, NULL, 0, 0)
#define F_STR(m, t, f, max) FLD(m, t, f, WK_STR, NULL, 0, max)
#define F_BYTES(m, t, f, max) FLD(m, t, f, WK_BYTES, NULL, 0, max)
#define F_STRS(m, t, f, n, max) FLD(m, t, f, WK_STRS, NULL, n, max)
#define F_U32S(m, t, f, n) FLD(m, t, f, WK_U32S, NULL, n, 0)
#define F_MAP(m, t, f) FLD(m, t, f, WK_MAP, NULL, WIRE_MAX_MAP_ENTRIES, 0)
#define F_MSG(m, t, f, ty) FLD(m, t, f, WK_MSG, &wire_type_##ty, 0, 0)
#define F_OPT(m, t, f, ty) FLD(m, t, f, WK_OPT, &wire_type_##ty, 0, 0)
#define F_LIST(m, t, f, ty, n)                                             \
    {t,                                                                    \
     WK_LIST,                                                              \
     #f,                                                                   \
     offsetof(struct shoal_##m, f),                                        \
     offsetof(struct shoal_##m, n_##f),                                    \
     &wire_type_##ty,                                                      \
     n,                                                                    \
     0},
#include "shoal/schema.def"
#include "shoal/schema_undef.h"
#undef FLD

static void
put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

uint64_t
wire_get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Buffers. */

int
wire_buf_reserve(struct wire_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;
    uint8_t *p;

    if (b->len + n <= b->cap) {
        return 0;
    }
    while (cap < b->len + n) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        return ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int
wire_buf_append(struct wire_buf *b, const void *p, size_t n)
{
    int rc = wire_buf_reserve(b, n);

    if (rc != 0) {
        return rc;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return 0;
}

void
wire_buf_consume(struct wire_buf *b, size_t n)
{
    ASSERT(n <= b->len);
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void
wire_buf_fini(struct wire_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Encoding. */

#define AT(obj, off) ((uint8_t *)(obj) + (off))
#define CAT(obj, off) ((const uint8_t *)(obj) + (off))

static int encode_fields(const struct wire_type *t, const void *obj,
                         struct wire_buf *out);

/* Reserve a field header; its length is patched when the payload is in. */
static int
field_open(struct wire_buf *out, uint16_t tag, size_t *at)
{
    int rc = wire_buf_reserve(out, WIRE_FIELD_HDR_BYTES);

    if (rc != 0) {
        return rc;
    }
    *at = out->len;
    put_be16(out->data + out->len, tag);
    out->len += WIRE_FIELD_HDR_BYTES;
    return 0;
}

static void
field_close(struct wire_buf *out, size_t at)
{
    size_t n = out->len - at - WIRE_FIELD_HDR_BYTES;

    put_be32(out->data + at + 2, (uint32_t)n);
}

static int
put_field(struct wire_buf *out, uint16_t tag, const void *p, size_t n)
{
    size_t at;
    int rc;

    rc = field_open(out, tag, &at);
    if (rc == 0) {
        rc = wire_buf_append(out, p, n);
    }
    if (rc == 0) {
        field_close(out, at);
    }
    return rc;
}

static int
put_uint(struct wire_buf *out, uint16_t tag, uint64_t v, size_t width)
{
    uint8_t raw[8];

    put_be64(raw, v);
    return put_field(out, tag, raw + 8 - width, width);
}

static int
put_nested(struct wire_buf *out, uint16_t tag, const struct wire_type *t,
           const void *obj, bool keep_empty)
{
    size_t at;
    int rc;

    rc = field_open(out, tag, &at);
    if (rc == 0) {
        rc = encode_fields(t, obj, out);
    }
    if (rc != 0) {
        return rc;
    }
    if (!keep_empty && out->len == at + WIRE_FIELD_HDR_BYTES) {
        out->len = at; /* An empty embedded message is left out. */
        return 0;
    }
    field_close(out, at);
    return 0;
}

static int
put_map(struct wire_buf *out, uint16_t tag, const struct shoal_map *m)
{
    int rc = 0;

    for (size_t i = 0; i < m->n && rc == 0; i++) {
        const struct shoal_kv *kv = &m->v[i];
        size_t at;

        rc = field_open(out, tag, &at);
        if (rc == 0) {
            rc = put_field(out, 1, kv->key, strlen(kv->key));
        }
        if (rc == 0) {
            rc = put_field(out, 2, kv->value, strlen(kv->value));
        }
        if (rc == 0) {
            field_close(out, at);
        }
    }
    return rc;
}

static int
encode_repeated(const struct wire_field *f, const void *obj,
                struct wire_buf *out)
{
    int rc = 0;

    if (f->kind == WK_STRS) {
        const struct shoal_strs *s = (const void *)CAT(obj, f->off);

        for (size_t i = 0; i < s->n && rc == 0; i++) {
            rc = put_field(out, f->tag, s->v[i], strlen(s->v[i]));
        }
    } else if (f->kind == WK_U32S) {
        const struct shoal_u32s *s = (const void *)CAT(obj, f->off);

        for (size_t i = 0; i < s->n && rc == 0; i++) {
            rc = put_uint(out, f->tag, s->v[i], 4);
        }
    } else {
        const uint8_t *v = *(uint8_t *const *)CAT(obj, f->off);
        size_t n = *(const size_t *)CAT(obj, f->n_off);
        size_t size = f->sub->size;

        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = put_nested(out, f->tag, f->sub, v + i * size, true);
        }
    }
    return rc;
}

static int
encode_field(const struct wire_field *f, const void *obj,
             struct wire_buf *out)
{
    const void *p = CAT(obj, f->off);
    uint64_t u;

    switch (f->kind) {
    case WK_U64:
    case WK_I64:
    case WK_F64:
        memcpy(&u, p, 8);
        return u == 0 ? 0 : put_uint(out, f->tag, u, 8);
    case WK_U32:
        u = *(const uint32_t *)p;
        return u == 0 ? 0 : put_uint(out, f->tag, u, 4);
    case WK_BOOL:
        return *(const bool *)p ? put_uint(out, f->tag, 1, 1) : 0;
    case WK_STR: {
        const char *s = *(char *const *)p;

        return s ? put_field(out, f->tag, s, strlen(s)) : 0;
    }
    case WK_BYTES: {
        const struct shoal_bytes *b = p;

        return b->data ? put_field(out, f->tag, b->data, b->len) : 0;
    }
    case WK_MAP:
        return put_map(out, f->tag, p);
    case WK_MSG:
        return put_nested(out, f->tag, f->sub, p, false);
    case WK_OPT: {
        const void *sub = *(void *const *)p;

        return sub ? put_nested(out, f->tag, f->sub, sub, true) : 0;
    }
    case WK_STRS:
    case WK_U32S:
    case WK_LIST:
        return encode_repeated(f, obj, out);
    default:
        ASSERT_UNREACHABLE();
    }
}

static int
encode_fields(const struct wire_type *t, const void *obj,
              struct wire_buf *out)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        int rc = encode_field(&t->fields[i], obj, out);

        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int
wire_encode(const struct wire_type *t, const void *obj, struct wire_buf *out)
{
    size_t start = out->len;
    int rc = encode_fields(t, obj, out);

    if (rc != 0) {
        out->len = start;
    }
    return rc;
}

size_t
wire_encoded_size(const struct wire_type *t, const void *obj)
{
    struct wire_buf b = {0};
    size_t n = 0;

    if (wire_encode(t, obj, &b) == 0) {
        n = b.len;
    }
    wire_buf_fini(&b);
    return n;
}

/* Frames. */

ssize_t
wire_hdr_decode(struct wire_hdr *h, const uint8_t *buf, size_t avail)
{
    if (avail < WIRE_HDR_BYTES) {
        return ERR_AGAIN;
    }
    h->len = (uint32_t)wire_get_be(buf, 4);
    h->version = buf[4];
    h->flags = buf[5];
    h->type = (uint16_t)wire_get_be(buf + 6, 2);
    h->id = wire_get_be(buf + 8, 8);

    /* Judge the length before the caller waits for or allocates it. */
    if (h->len < WIRE_HDR_BYTES - 4 || h->len > WIRE_MAX_FRAME - 4) {
        return ERR_PROTO;
    }
    return WIRE_HDR_BYTES;
}

int
wire_frame_append(struct wire_buf *out, uint16_t type, uint8_t flags,
                  uint64_t id, const struct wire_type *t, const void *obj)
{
    size_t start = out->len;
    size_t body;
    uint8_t *h;
    int rc;

    rc = wire_buf_reserve(out, WIRE_HDR_BYTES);
    if (rc != 0) {
        return rc;
    }
    out->len += WIRE_HDR_BYTES;
    if (t) {
        rc = wire_encode(t, obj, out);
        if (rc != 0) {
            out->len = start;
            return rc;
        }
    }

    body = out->len - start - WIRE_HDR_BYTES;
    if (body > WIRE_MAX_BODY) {
        out->len = start;
        return ERR_TOOBIG;
    }
    h = out->data + start;
    put_be32(h, (uint32_t)(body + WIRE_HDR_BYTES - 4));
    h[4] = WIRE_PROTO_VERSION;
    h[5] = flags;
    put_be16(h + 6, type);
    put_be64(h + 8, id);
    return 0;
}

int
wire_frame_append_raw(struct wire_buf *out, uint16_t type, uint8_t flags,
                      uint64_t id, const void *body, size_t len)
{
    uint8_t *h;
    int rc;

    if (len > WIRE_MAX_BODY) {
        return ERR_TOOBIG;
    }
    rc = wire_buf_reserve(out, WIRE_HDR_BYTES + len);
    if (rc != 0) {
        return rc;
    }
    h = out->data + out->len;
    put_be32(h, (uint32_t)(len + WIRE_HDR_BYTES - 4));
    h[4] = WIRE_PROTO_VERSION;
    h[5] = flags;
    put_be16(h + 6, type);
    put_be64(h + 8, id);
    if (len > 0) {
        memcpy(h + WIRE_HDR_BYTES, body, len);
    }
    out->len += WIRE_HDR_BYTES + len;
    return 0;
}

int
wire_status_append(struct wire_buf *out, uint64_t id, int code,
                   const char *fmt, ...)
{
    struct shoal_status_msg st = {.code = (uint32_t)code};
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st.message = msg;
    return wire_frame_append(out, WIRE_MSG_STATUS, 0, id, &wire_type_status_msg,
                             &st);
}

const char *
wire_type_name(const struct wire_type *t)
{
    return t->name;
}

size_t
wire_type_size(const struct wire_type *t)
{
    return t->size;
}
