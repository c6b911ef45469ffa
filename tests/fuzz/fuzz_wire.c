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
 * equal. A broken property traps, so the fuzzer keeps the input. Build and
 * run from the top of the tree (clang with libFuzzer, libclang-rt-14-dev
 * on Debian 12):
 *
 *   clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -Iwire -g -O1 \
 *       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       src/base/base.c src/base/log.c wire/codec.c wire/decode.c \
 *       wire/json.c wire/msgs.c tests/fuzz/fuzz_wire.c \
 *       -o build/fuzz_wire -ljansson -lcrypto -lm
 *   mkdir -p build/fuzz-corpus && cp wire/golden/[a-z]*.bin build/fuzz-corpus/
 *   build/fuzz_wire -max_total_time=60 -max_len=65536 build/fuzz-corpus
 *
 * The golden frames seed the corpus; the fuzzer adds its finds to the
 * first folder named, so it is a copy and not wire/golden itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/json.h"
#include "shoal/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    void *obj = calloc(1, wire_type_size(t));
    void *back = calloc(1, wire_type_size(t));
    json_t *j;

    if (!obj || !back) {
        goto out_free;
    }
    if (wire_decode(t, obj, body, len) != 0) {
        goto out_free;
    }
    if (wire_encode(t, obj, &once) != 0) {
        goto out_free;
    }
    /* Canonical bytes decode to an equal value that encodes the same. */
    if (wire_decode(t, back, once.data, once.len) != 0 ||
        !wire_equal(t, obj, back) || wire_encode(t, back, &twice) != 0 ||
        twice.len != once.len ||
        (once.len > 0 && memcmp(once.data, twice.data, once.len) != 0)) {
        __builtin_trap();
    }
    if (wire_copy(t, back, obj) != 0 || !wire_equal(t, obj, back)) {
        __builtin_trap();
    }
    j = wire_to_json(t, obj);
    json_decref(j);

out_free:
    wire_buf_fini(&twice);
    wire_buf_fini(&once);
    if (back) {
        wire_free(t, back);
        free(back);
    }
    if (obj) {
        wire_free(t, obj);
        free(obj);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct wire_msg_info *mi;
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
    if (mi && (h.type & WIRE_REPLY ? mi->reply : mi->request)) {
        fuzz_one(h.type & WIRE_REPLY ? mi->reply : mi->request, data,
                 body_len);
    }
    for (size_t i = 0; i < sizeof fuzz_types / sizeof fuzz_types[0]; i++) {
        fuzz_one(fuzz_types[i], data, body_len);
    }
    return 0;
}
