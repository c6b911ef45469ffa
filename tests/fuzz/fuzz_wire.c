/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_wire.c: a libFuzzer target for the frame header and every decoder.
 *
 * The input is read as a frame: its header is decoded, and its body (the
 * bytes after the header, cut at the announced length) is decoded as the
 * type the message table names for the header's type, then as every
 * schema type. Whatever decodes must re-encode canonically: decoding the
 * re-encoding gives an equal value with the same bytes, and a copy is
 * equal. A body that does not decode must leave the object empty (all
 * zero bytes), as wire.h promises and as shoald relies on when it frees
 * a refused request without wire_free(). A broken property traps, so the
 * fuzzer keeps the input.
 *
 * Built and run by tests/fuzz/suite.mk: `make fuzz` (libFuzzer, clang),
 * `make check-fuzz` (replay). The golden frames of wire/golden seed the
 * corpus.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "shoal/json.h"
#include "shoal/wire.h"

static const struct wire_type *const fuzz_types[] = {
#define SCHEMA_TYPE(m) &wire_type_##m,
#include "shoal/schema_types.h"
};

/* Decode body as t and check the canonical round trip; trap if broken. */
static void
fuzz_one(const struct wire_type *t, const uint8_t *body, size_t len)
{
    struct wire_buf once = {0};
    struct wire_buf twice = {0};
    size_t size = wire_type_size(t);
    void *obj = calloc(1, size);
    void *back = calloc(1, size);
    json_t *j;

    if (!obj || !back) {
        goto out_free;
    }
    if (wire_decode(t, obj, body, len) != 0) {
        /* Nothing to free: a refused body leaves nothing behind. */
        FUZZ_CHECK(fuzz_all_zero(obj, size));
        goto out_free_outer;
    }
    if (wire_encode(t, obj, &once) != 0) {
        goto out_free;
    }
    FUZZ_CHECK(once.len == wire_encoded_size(t, obj));
    /* Canonical bytes decode to an equal value that encodes the same. */
    FUZZ_CHECK(wire_decode(t, back, once.data, once.len) == 0);
    FUZZ_CHECK(wire_equal(t, obj, back));
    FUZZ_CHECK(wire_encode(t, back, &twice) == 0);
    FUZZ_CHECK(twice.len == once.len);
    FUZZ_CHECK(once.len == 0 || memcmp(once.data, twice.data, once.len) == 0);
    /* A copy over a value (freed first) is equal too. */
    FUZZ_CHECK(wire_copy(t, back, obj) == 0 && wire_equal(t, obj, back));
    j = wire_to_json(t, obj);
    json_decref(j);

out_free:
    if (back) {
        wire_free(t, back);
    }
    if (obj) {
        wire_free(t, obj);
    }
out_free_outer:
    wire_buf_fini(&twice);
    wire_buf_fini(&once);
    free(back);
    free(obj);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct wire_msg_info *mi;
    const struct wire_type *t;
    struct wire_hdr h;
    size_t body_len;

    if (wire_hdr_decode(&h, data, size) != WIRE_HDR_BYTES) {
        return 0;
    }
    body_len = size - WIRE_HDR_BYTES;
    if (body_len > (size_t)h.len - (WIRE_HDR_BYTES - 4)) {
        body_len = (size_t)h.len - (WIRE_HDR_BYTES - 4);
    }
    data += WIRE_HDR_BYTES;

    mi = wire_msg_info(h.type & (uint16_t)~WIRE_REPLY);
    t = !mi ? NULL : h.type & WIRE_REPLY ? mi->reply : mi->request;
    if (t) {
        fuzz_one(t, data, body_len);
    }
    for (size_t i = 0; i < sizeof fuzz_types / sizeof fuzz_types[0]; i++) {
        fuzz_one(fuzz_types[i], data, body_len);
    }
    return 0;
}
