/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * decode.c: bytes to schema structs, and free, copy and compare.
 *
 * The input is untrusted. Each field header is checked against the bytes
 * left, each length against the schema's limit, each count against its
 * maximum, all before the allocation they would cause. On any failure the
 * partly decoded value is freed, so the caller never sees half an object.
 */
#include "shoal/wire.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "wire_int.h"

#define AT(obj, off) ((uint8_t *)(obj) + (off))

static int decode_fields(const struct wire_type *t, void *obj,
                         const uint8_t *buf, size_t len);
static void free_fields(const struct wire_type *t, void *obj);

static const struct wire_field *
field_find(const struct wire_type *t, uint16_t tag)
{
    /* Tags are dense from 1 in the schema, so this is one lookup. */
    if (tag >= 1 && tag <= t->n_fields && t->fields[tag - 1].tag == tag) {
        return &t->fields[tag - 1];
    }
    for (size_t i = 0; i < t->n_fields; i++) {
        if (t->fields[i].tag == tag) {
            return &t->fields[i];
        }
    }
    return NULL;
}

/* Whether p holds well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF): JSON printers drop any other string. */
static bool
utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t more;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= more) {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
            return false;
        }
        i += more + 1;
    }
    return true;
}

/* A string holds no NUL, so that C code cannot see a shorter one, and is
 * UTF-8, as PROTOCOL.md says. */
static int
dup_text(char **out, const uint8_t *p, size_t n, size_t below)
{
    char *s;

    if (n >= below || memchr(p, 0, n) || !utf8_valid(p, n)) {
        return ERR_PROTO;
    }
    s = malloc(n + 1);
    if (!s) {
        return ERR_NOMEM;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* Grow an array of elem bytes by one slot, within max elements. */
static int
grow(void **v, size_t n, size_t elem, size_t max)
{
    void *p;

    if (n >= max) {
        return ERR_PROTO;
    }
    if ((n & (n - 1)) == 0) { /* n is 0 or a power of two: double */
        p = realloc(*v, (n ? 2 * n : 1) * elem);
        if (!p) {
            return ERR_NOMEM;
        }
        *v = p;
    }
    return 0;
}

static int
decode_scalar(const struct wire_field *f, void *p, const uint8_t *b,
              size_t n)
{
    static const size_t width[] = {
        [WK_U64] = 8, [WK_I64] = 8, [WK_U32] = 4, [WK_BOOL] = 1, [WK_F64] = 8,
    };
    uint64_t v;

    if (n != width[f->kind]) {
        return ERR_PROTO;
    }
    v = wire_get_be(b, n);
    switch (f->kind) {
    case WK_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    case WK_BOOL:
        if (v > 1) {
            return ERR_PROTO;
        }
        *(bool *)p = v != 0;
        break;
    default:
        memcpy(p, &v, 8);
        break;
    }
    return 0;
}

static int
decode_map_entry(struct shoal_map *m, const uint8_t *b, size_t n)
{
    struct shoal_kv kv = {0};
    size_t at = 0;
    int rc = 0;

    while (at < n && rc == 0) {
        uint16_t tag;
        uint32_t len;
        char **dst;

        if (n - at < WIRE_FIELD_HDR_BYTES) {
            rc = ERR_PROTO;
            break;
        }
        tag = (uint16_t)wire_get_be(b + at, 2);
        len = (uint32_t)wire_get_be(b + at + 2, 4);
        at += WIRE_FIELD_HDR_BYTES;
        if (len > n - at || (tag != 1 && tag != 2)) {
            rc = ERR_PROTO;
            break;
        }
        dst = tag == 1 ? &kv.key : &kv.value;
        free(*dst);
        *dst = NULL;
        rc = dup_text(dst, b + at, len,
                      tag == 1 ? WIRE_MAX_MAP_KEY : WIRE_MAX_MAP_VALUE);
        at += len;
    }
    if (rc == 0 && !kv.key) {
        rc = ERR_PROTO;
    }
    if (rc == 0 && m->n >= WIRE_MAX_MAP_ENTRIES &&
        !wire_map_get(m, kv.key)) {
        rc = ERR_PROTO;
    }
    if (rc == 0) {
        rc = wire_map_set(m, kv.key, kv.value ? kv.value : "");
    }
    free(kv.key);
    free(kv.value);
    return rc;
}

static int
decode_repeated(const struct wire_field *f, void *obj, const uint8_t *b,
                size_t n)
{
    void *p = AT(obj, f->off);
    int rc;

    if (f->kind == WK_STRS) {
        struct shoal_strs *s = p;

        rc = grow((void **)&s->v, s->n, sizeof(char *), f->max_n);
        if (rc == 0) {
            rc = dup_text(&s->v[s->n], b, n, f->max_len);
        }
        s->n += rc == 0;
        return rc;
    }
    if (f->kind == WK_U32S) {
        struct shoal_u32s *s = p;

        if (n != 4) {
            return ERR_PROTO;
        }
        rc = grow((void **)&s->v, s->n, sizeof(uint32_t), f->max_n);
        if (rc == 0) {
            s->v[s->n++] = (uint32_t)wire_get_be(b, 4);
        }
        return rc;
    }

    void **v = p;
    size_t *count = (size_t *)AT(obj, f->n_off);
    uint8_t *elem;

    rc = grow(v, *count, f->sub->size, f->max_n);
    if (rc != 0) {
        return rc;
    }
    elem = (uint8_t *)*v + *count * f->sub->size;
    memset(elem, 0, f->sub->size);
    rc = decode_fields(f->sub, elem, b, n);
    if (rc != 0) {
        free_fields(f->sub, elem); /* not counted, so not freed later */
        return rc;
    }
    (*count)++;
    return 0;
}

static int
decode_nested(const struct wire_field *f, void *p, const uint8_t *b,
              size_t n)
{
    void *sub;
    int rc;

    if (f->kind == WK_MSG) {
        free_fields(f->sub, p); /* a repeated field: the last one wins */
        memset(p, 0, f->sub->size);
        return decode_fields(f->sub, p, b, n);
    }
    sub = calloc(1, f->sub->size);
    if (!sub) {
        return ERR_NOMEM;
    }
    rc = decode_fields(f->sub, sub, b, n);
    if (rc != 0) {
        free_fields(f->sub, sub);
        free(sub);
        return rc;
    }
    if (*(void **)p) {
        free_fields(f->sub, *(void **)p);
        free(*(void **)p);
    }
    *(void **)p = sub;
    return 0;
}

static int
decode_field(const struct wire_field *f, void *obj, const uint8_t *b,
             size_t n)
{
    void *p = AT(obj, f->off);

    switch (f->kind) {
    case WK_U64:
    case WK_I64:
    case WK_U32:
    case WK_BOOL:
    case WK_F64:
        return decode_scalar(f, p, b, n);
    case WK_STR:
        free(*(char **)p);
        *(char **)p = NULL;
        return dup_text(p, b, n, f->max_len);
    case WK_BYTES:
        if (n > f->max_len) {
            return ERR_PROTO;
        }
        return wire_bytes_set(p, b, n);
    case WK_MAP:
        return decode_map_entry(p, b, n);
    case WK_MSG:
    case WK_OPT:
        return decode_nested(f, p, b, n);
    case WK_STRS:
    case WK_U32S:
    case WK_LIST:
        return decode_repeated(f, obj, b, n);
    default:
        ASSERT_UNREACHABLE();
    }
}

static int
decode_fields(const struct wire_type *t, void *obj, const uint8_t *buf,
              size_t len)
{
    size_t at = 0;

    while (at < len) {
        const struct wire_field *f;
        uint16_t tag;
        uint32_t n;
        int rc;

        if (len - at < WIRE_FIELD_HDR_BYTES) {
            return ERR_PROTO;
        }
        tag = (uint16_t)wire_get_be(buf + at, 2);
        n = (uint32_t)wire_get_be(buf + at + 2, 4);
        at += WIRE_FIELD_HDR_BYTES;
        if (n > len - at) {
            return ERR_PROTO;
        }

        /* Unknown tags are skipped, so that the schema can grow. */
        f = field_find(t, tag);
        if (f) {
            rc = decode_field(f, obj, buf + at, n);
            if (rc != 0) {
                return rc;
            }
        }
        at += n;
    }
    return 0;
}

int
wire_decode(const struct wire_type *t, void *obj, const uint8_t *buf,
            size_t len)
{
    int rc;

    free_fields(t, obj);
    memset(obj, 0, t->size);
    rc = decode_fields(t, obj, buf, len);
    if (rc != 0) {
        free_fields(t, obj);
        memset(obj, 0, t->size);
    }
    return rc;
}

/* Free. */

static void
free_field(const struct wire_field *f, void *obj)
{
    void *p = AT(obj, f->off);

    switch (f->kind) {
    case WK_STR:
        free(*(char **)p);
        break;
    case WK_BYTES:
        free(((struct shoal_bytes *)p)->data);
        break;
    case WK_STRS: {
        struct shoal_strs *s = p;

        for (size_t i = 0; i < s->n; i++) {
            free(s->v[i]);
        }
        free(s->v);
        break;
    }
    case WK_U32S:
        free(((struct shoal_u32s *)p)->v);
        break;
    case WK_MAP: {
        struct shoal_map *m = p;

        for (size_t i = 0; i < m->n; i++) {
            free(m->v[i].key);
            free(m->v[i].value);
        }
        free(m->v);
        break;
    }
    case WK_MSG:
        free_fields(f->sub, p);
        break;
    case WK_OPT:
        if (*(void **)p) {
            free_fields(f->sub, *(void **)p);
            free(*(void **)p);
        }
        break;
    case WK_LIST: {
        uint8_t *v = *(uint8_t **)p;
        size_t n = *(size_t *)AT(obj, f->n_off);

        for (size_t i = 0; i < n; i++) {
            free_fields(f->sub, v + i * f->sub->size);
        }
        free(v);
        break;
    }
    default:
        break;
    }
}

static void
free_fields(const struct wire_type *t, void *obj)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        free_field(&t->fields[i], obj);
    }
}

void
wire_free(const struct wire_type *t, void *obj)
{
    if (obj) {
        free_fields(t, obj);
        memset(obj, 0, t->size);
    }
}

/* Copy and compare go through the canonical encoding: one code path to
 * trust, and equal values have equal bytes by construction. */
int
wire_copy(const struct wire_type *t, void *dst, const void *src)
{
    struct wire_buf b = {0};
    int rc;

    rc = wire_encode(t, src, &b);
    if (rc == 0) {
        rc = wire_decode(t, dst, b.data, b.len);
    } else {
        wire_free(t, dst);
    }
    wire_buf_fini(&b);
    return rc;
}

bool
wire_equal(const struct wire_type *t, const void *a, const void *b)
{
    struct wire_buf ea = {0};
    struct wire_buf eb = {0};
    bool same;

    same = wire_encode(t, a, &ea) == 0 && wire_encode(t, b, &eb) == 0 &&
           ea.len == eb.len && (ea.len == 0 ||
                                memcmp(ea.data, eb.data, ea.len) == 0);
    wire_buf_fini(&ea);
    wire_buf_fini(&eb);
    return same;
}

/* Containers. */

int
wire_map_set(struct shoal_map *m, const char *key, const char *value)
{
    size_t lo = 0;
    size_t hi = m->n;
    char *k;
    char *v;
    void *p;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->v[mid].key, key);

        if (c == 0) {
            v = strdup(value);
            if (!v) {
                return ERR_NOMEM;
            }
            free(m->v[mid].value);
            m->v[mid].value = v;
            return 0;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    k = strdup(key);
    v = strdup(value);
    p = realloc(m->v, (m->n + 1) * sizeof *m->v);
    if (!k || !v || !p) {
        free(k);
        free(v);
        if (p) {
            m->v = p;
        }
        return ERR_NOMEM;
    }
    m->v = p;
    memmove(&m->v[lo + 1], &m->v[lo], (m->n - lo) * sizeof *m->v);
    m->v[lo].key = k;
    m->v[lo].value = v;
    m->n++;
    return 0;
}

const char *
wire_map_get(const struct shoal_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].key, key) == 0) {
            return m->v[i].value;
        }
    }
    return NULL;
}

int
wire_strs_push(struct shoal_strs *s, const char *str)
{
    char *d = strdup(str);
    char **v;

    if (!d) {
        return ERR_NOMEM;
    }
    v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v) {
        free(d);
        return ERR_NOMEM;
    }
    s->v = v;
    s->v[s->n++] = d;
    return 0;
}

int
wire_bytes_set(struct shoal_bytes *b, const void *data, size_t n)
{
    /* Never NULL, even for no bytes: present and empty differ. */
    uint8_t *p = malloc(n ? n : 1);

    if (!p) {
        return ERR_NOMEM;
    }
    if (n > 0) {
        memcpy(p, data, n);
    }
    free(b->data);
    b->data = p;
    b->len = n;
    return 0;
}
