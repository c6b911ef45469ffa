/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * wire_int.h: the field tables that the files of wire/ share.
 *
 * A schema type is an array of fields in tag order; each field knows its
 * kind, where it lives in the C struct, its limits and, for embedded
 * messages, the type it holds.
 */
#ifndef SHOAL_WIRE_WIRE_INT_H
#define SHOAL_WIRE_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/wire.h"

/* Limits of maps, which the schema does not spell per field. */
#define WIRE_MAX_MAP_ENTRIES 256
#define WIRE_MAX_MAP_KEY 256
#define WIRE_MAX_MAP_VALUE 4096

enum wire_kind {
    WK_U64,
    WK_I64,
    WK_U32,
    WK_BOOL,
    WK_F64,
    WK_STR,
    WK_BYTES,
    WK_STRS,
    WK_U32S,
    WK_MAP,
    WK_MSG,
    WK_OPT,
    WK_LIST,
};

struct wire_field {
    uint16_t tag;
    uint8_t kind;               /* enum wire_kind */
    const char *name;           /* the C and JSON name */
    size_t off;                 /* offset of the value in its struct */
    size_t n_off;               /* WK_LIST: offset of the count */
    const struct wire_type *sub; /* WK_MSG, WK_OPT, WK_LIST */
    uint32_t max_n;             /* repeated kinds: most elements */
    uint32_t max_len;           /* str: length below it; bytes: at most */
};

struct wire_type {
    const char *name;
    size_t size;
    const struct wire_field *fields;
    size_t n_fields;
};

/* Read an n-byte big-endian unsigned number (n <= 8). */
uint64_t wire_get_be(const uint8_t *p, size_t n);

#endif
