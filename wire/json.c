/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * json.c: the JSON form of every schema type, for `shoalctl -o json`.
 *
 * Field names are the schema's, so they are stable and documented in one
 * place. 64-bit integers stay exact (jansson's integers are 64-bit);
 * bytes are base64. Zero and absent values are left out, as on the wire,
 * except ids, names and versions, which a script always wants to find.
 */
#include "shoal/json.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "wire_int.h"

#define CAT(obj, off) ((const uint8_t *)(obj) + (off))

static json_t *fields_to_json(const struct wire_type *t, const void *obj);

static json_t *
bytes_to_json(const struct shoal_bytes *b)
{
    size_t n = 4 * ((b->len + 2) / 3) + 1;
    char *text = malloc(n);
    json_t *j;

    if (!text) {
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)text, b->data, (int)b->len);
    j = json_string(text);
    free(text);
    return j;
}

static json_t *
map_to_json(const struct shoal_map *m)
{
    json_t *j = json_object();

    for (size_t i = 0; j && i < m->n; i++) {
        json_object_set_new(j, m->v[i].key, json_string(m->v[i].value));
    }
    return j;
}

static json_t *
repeated_to_json(const struct wire_field *f, const void *obj)
{
    json_t *a = json_array();

    if (f->kind == WK_STRS) {
        const struct shoal_strs *s = (const void *)CAT(obj, f->off);

        for (size_t i = 0; a && i < s->n; i++) {
            json_array_append_new(a, json_string(s->v[i]));
        }
    } else if (f->kind == WK_U32S) {
        const struct shoal_u32s *s = (const void *)CAT(obj, f->off);

        for (size_t i = 0; a && i < s->n; i++) {
            json_array_append_new(a, json_integer(s->v[i]));
        }
    } else {
        const uint8_t *v = *(uint8_t *const *)CAT(obj, f->off);
        size_t n = *(const size_t *)CAT(obj, f->n_off);

        for (size_t i = 0; a && i < n; i++) {
            json_array_append_new(
                a, fields_to_json(f->sub, v + i * f->sub->size));
        }
    }
    return a;
}

/* Whether a field is worth printing: set, or one that is always shown. */
static bool
field_present(const struct wire_field *f, const void *obj)
{
    const void *p = CAT(obj, f->off);
    uint64_t u;

    switch (f->kind) {
    case WK_U64:
    case WK_I64:
    case WK_F64:
        memcpy(&u, p, 8);
        return u != 0 || strcmp(f->name, "version") == 0;
    case WK_U32:
        return *(const uint32_t *)p != 0;
    case WK_BOOL:
        return *(const bool *)p;
    case WK_STR:
        return *(char *const *)p != NULL;
    case WK_BYTES:
        return ((const struct shoal_bytes *)p)->data != NULL;
    case WK_STRS:
        return ((const struct shoal_strs *)p)->n > 0;
    case WK_U32S:
        return ((const struct shoal_u32s *)p)->n > 0;
    case WK_MAP:
        return ((const struct shoal_map *)p)->n > 0;
    case WK_OPT:
        return *(void *const *)p != NULL;
    case WK_LIST:
        return *(const size_t *)CAT(obj, f->n_off) > 0;
    default:
        return true;
    }
}

static json_t *
field_to_json(const struct wire_field *f, const void *obj)
{
    const void *p = CAT(obj, f->off);

    switch (f->kind) {
    case WK_U64:
        /* jansson is signed; indexes and counters stay below 2^63. */
        return json_integer((json_int_t) * (const uint64_t *)p);
    case WK_I64:
        return json_integer(*(const int64_t *)p);
    case WK_U32:
        return json_integer(*(const uint32_t *)p);
    case WK_BOOL:
        return json_boolean(*(const bool *)p);
    case WK_F64:
        return json_real(*(const double *)p);
    case WK_STR:
        return json_string(*(char *const *)p);
    case WK_BYTES:
        return bytes_to_json(p);
    case WK_MAP:
        return map_to_json(p);
    case WK_MSG:
        return fields_to_json(f->sub, p);
    case WK_OPT:
        return fields_to_json(f->sub, *(void *const *)p);
    default:
        return repeated_to_json(f, obj);
    }
}

static json_t *
fields_to_json(const struct wire_type *t, const void *obj)
{
    json_t *j = json_object();

    for (size_t i = 0; j && i < t->n_fields; i++) {
        const struct wire_field *f = &t->fields[i];
        json_t *v;

        if (!field_present(f, obj)) {
            continue;
        }
        v = field_to_json(f, obj);
        if (f->kind == WK_MSG && v && json_object_size(v) == 0) {
            json_decref(v);
            continue;
        }
        json_object_set_new(j, f->name, v);
    }
    return j;
}

json_t *
wire_to_json(const struct wire_type *t, const void *obj)
{
    return fields_to_json(t, obj);
}
