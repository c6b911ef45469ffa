/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_wire.c: the codec against hostile and edge-case input.
 *
 * Frames and bodies are built here byte by byte, so that each test shows
 * the exact input it feeds: oversized lengths, values at and over their
 * schema limits, wrong widths, unknown tags. The golden frames are in
 * test_wire_golden.c. Leaks fail a test here (ASan builds), because
 * LeakSanitizer's report at exit alone does not fail a Criterion test.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "shoal/json.h"
#include "shoal/wire.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>

/* The bytes the ASan allocator has mapped; it only grows. */
size_t __sanitizer_get_heap_size(void);

#define EXPECT_NO_LEAKS()                                                  \
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0,                    \
                 "LeakSanitizer found leaks (see above)")
#define HEAP_BYTES() __sanitizer_get_heap_size()
#else
#define EXPECT_NO_LEAKS() ((void)0)
#define HEAP_BYTES() ((size_t)0)
#endif

/* Builders of raw bodies: one TLV field at a time. */

static void
put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0; v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static void
raw_hdr(struct wire_buf *b, uint16_t tag, uint32_t len)
{
    uint8_t h[WIRE_FIELD_HDR_BYTES];

    put_be(h, tag, 2);
    put_be(h + 2, len, 4);
    cr_assert_eq(wire_buf_append(b, h, sizeof h), 0);
}

static void
raw_field(struct wire_buf *b, uint16_t tag, const void *p, size_t n)
{
    raw_hdr(b, tag, (uint32_t)n);
    cr_assert_eq(wire_buf_append(b, p, n), 0);
}

static void
raw_str(struct wire_buf *b, uint16_t tag, const char *s)
{
    raw_field(b, tag, s, strlen(s));
}

static void
raw_uint(struct wire_buf *b, uint16_t tag, uint64_t v, size_t width)
{
    uint8_t raw[8];

    put_be(raw, v, width);
    raw_field(b, tag, raw, width);
}

/* A field holding the bytes of another buffer (an embedded message). */
static void
raw_nested(struct wire_buf *b, uint16_t tag, const struct wire_buf *in)
{
    raw_field(b, tag, in->data, in->len);
}

/* A string of n bytes of c, malloc'd and NUL-terminated. */
static char *
filled(size_t n, char c)
{
    char *s = malloc(n + 1);

    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Decode a raw body as t into a fresh value, free it, return the code. */
static int
decode_rc(const struct wire_type *t, const struct wire_buf *b)
{
    void *obj = calloc(1, wire_type_size(t));
    int rc;

    cr_assert_not_null(obj);
    rc = wire_decode(t, obj, b->data, b->len);
    wire_free(t, obj);
    free(obj);
    return rc;
}

/* Every schema type, for tests that hold for all of them. */
static const struct wire_type *const all_types[] = {
#define SCHEMA_TYPE(m) &wire_type_##m,
#include "shoal/schema_types.h"
};

TestSuite(wire_frame, .timeout = 30.0);

/* Fewer than WIRE_HDR_BYTES bytes are never a header: the reader waits. */
Test(wire_frame, short_header_is_again)
{
    uint8_t raw[WIRE_HDR_BYTES] = {0, 0, 0, 12, 1};
    struct wire_hdr h;

    for (size_t n = 0; n < WIRE_HDR_BYTES; n++) {
        cr_expect_eq(wire_hdr_decode(&h, raw, n), ERR_AGAIN, "%zu bytes", n);
    }
    cr_expect_eq(wire_hdr_decode(&h, raw, sizeof raw), WIRE_HDR_BYTES);
}

/* Every header field is read big-endian from its offset; version and
 * flags are returned as sent, for the caller to judge. */
Test(wire_frame, header_fields_are_big_endian_at_their_offsets)
{
    const uint8_t raw[WIRE_HDR_BYTES] = {
        0x00, 0x00, 0x01, 0x02,                        /* len 258 */
        0x07,                                          /* version */
        0xf8,                                          /* flags */
        0x80, 0x20,                                    /* type */
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef /* id */
    };
    struct wire_hdr h;

    cr_assert_eq(wire_hdr_decode(&h, raw, sizeof raw), WIRE_HDR_BYTES);

    cr_expect_eq(h.len, 258);
    cr_expect_eq(h.version, 7);
    cr_expect_eq(h.flags, 0xf8);
    cr_expect_eq(h.type, 0x8020);
    cr_expect_eq(h.id, 0x0123456789abcdefULL);
}

/* Lengths are judged before anything waits or allocates: 4 GiB, one byte
 * over WIRE_MAX_FRAME and less than the header are refused; exactly
 * WIRE_MAX_FRAME and exactly the header (an empty body) are accepted. */
Test(wire_frame, length_limits)
{
    static const struct {
        uint32_t len;
        ssize_t rc;
    } cases[] = {
        {0xffffffffu, ERR_PROTO},
        {WIRE_MAX_FRAME + 1 - 4, ERR_PROTO},
        {WIRE_MAX_FRAME, ERR_PROTO},
        {WIRE_MAX_FRAME - 4, WIRE_HDR_BYTES},
        {WIRE_HDR_BYTES - 4, WIRE_HDR_BYTES},
        {WIRE_HDR_BYTES - 5, ERR_PROTO},
        {0, ERR_PROTO},
    };
    uint8_t raw[WIRE_HDR_BYTES] = {0};
    struct wire_hdr h;

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        put_be(raw, cases[i].len, 4);
        raw[4] = WIRE_PROTO_VERSION;
        cr_expect_eq(wire_hdr_decode(&h, raw, sizeof raw), cases[i].rc,
                     "len %u", cases[i].len);
    }
}

/* A body of exactly WIRE_MAX_BODY bytes makes a frame of WIRE_MAX_FRAME
 * that the reader accepts; one byte more is ERR_TOOBIG and leaves the
 * buffer as it was. */
Test(wire_frame, append_refuses_frames_over_the_limit)
{
    struct shoal_secret_spec spec = {0};
    struct wire_buf out = {0};
    struct wire_hdr h;
    size_t n = WIRE_MAX_BODY - WIRE_FIELD_HDR_BYTES;

    spec.data.data = calloc(1, n + 1);
    cr_assert_not_null(spec.data.data);
    spec.data.len = n;
    cr_assert_eq(wire_buf_append(&out, "xyz", 3), 0);

    cr_assert_eq(wire_frame_append(&out, WIRE_MSG_CREATE_SECRET, 0, 5,
                                   &wire_type_secret_spec, &spec),
                 0);
    cr_expect_eq(out.len, 3 + WIRE_MAX_FRAME);
    cr_expect_eq(wire_hdr_decode(&h, out.data + 3, out.len - 3),
                 WIRE_HDR_BYTES);
    cr_expect_eq(h.len, WIRE_MAX_FRAME - 4);

    out.len = 3;
    spec.data.len = n + 1;
    cr_expect_eq(wire_frame_append(&out, WIRE_MSG_CREATE_SECRET, 0, 5,
                                   &wire_type_secret_spec, &spec),
                 ERR_TOOBIG);
    cr_expect_eq(out.len, 3);
    cr_expect_eq(memcmp(out.data, "xyz", 3), 0);

    free(spec.data.data);
    wire_buf_fini(&out);
    EXPECT_NO_LEAKS();
}

/* A status frame carries its code and message; a message longer than
 * wire_status_append keeps is cut, never an oversized string. */
Test(wire_frame, status_frame_round_trips)
{
    struct shoal_status_msg st = {0};
    struct wire_buf out = {0};
    struct wire_hdr h;
    char *big = filled(5000, 'm');

    cr_assert_eq(wire_status_append(&out, 77, SHOAL_NOT_FOUND,
                                     "service %s not found", "web"),
                 0);
    cr_assert_eq(wire_hdr_decode(&h, out.data, out.len), WIRE_HDR_BYTES);
    cr_expect_eq(h.type, WIRE_MSG_STATUS);
    cr_expect_eq(h.id, 77);
    cr_expect_eq(h.flags, 0);
    cr_assert_eq(wire_decode(&wire_type_status_msg, &st,
                             out.data + WIRE_HDR_BYTES,
                             out.len - WIRE_HDR_BYTES),
                 0);
    cr_expect_eq(st.code, SHOAL_NOT_FOUND);
    cr_expect_str_eq(st.message, "service web not found");

    out.len = 0;
    cr_assert_eq(wire_status_append(&out, 78, SHOAL_INTERNAL, "%s", big), 0);
    cr_assert_eq(wire_decode(&wire_type_status_msg, &st,
                             out.data + WIRE_HDR_BYTES,
                             out.len - WIRE_HDR_BYTES),
                 0);
    cr_expect_lt(strlen(st.message), 4096);
    cr_expect_eq(strncmp(st.message, big, strlen(st.message)), 0);

    wire_free(&wire_type_status_msg, &st);
    wire_buf_fini(&out);
    free(big);
    EXPECT_NO_LEAKS();
}

/* Pipelined frames in one buffer are found one after another by their
 * lengths, and consuming one keeps the rest. */
Test(wire_frame, pipelined_frames_split_by_length)
{
    struct shoal_id_request get = {.id = "abc"};
    struct wire_buf in = {0};
    struct wire_hdr h;

    cr_assert_eq(wire_frame_append(&in, WIRE_MSG_GET_SERVICE, 0, 1,
                                   &wire_type_id_request, &get),
                 0);
    cr_assert_eq(wire_frame_append(&in, WIRE_MSG_STATS, WIRE_F_STALE, 2,
                                   NULL, NULL),
                 0);
    cr_assert_eq(wire_frame_append(&in, WIRE_MSG_CANCEL, 0, 1, NULL, NULL),
                 0);

    for (uint64_t want = 1; want <= 3; want++) {
        cr_assert_eq(wire_hdr_decode(&h, in.data, in.len), WIRE_HDR_BYTES);
        cr_assert_leq(4 + (size_t)h.len, in.len);
        cr_expect_eq(h.id, want == 3 ? 1 : want);
        wire_buf_consume(&in, 4 + h.len);
    }
    cr_expect_eq(h.type, WIRE_MSG_CANCEL);
    cr_expect_eq(in.len, 0);
    cr_expect_eq(wire_hdr_decode(&h, in.data, in.len), ERR_AGAIN);

    wire_buf_fini(&in);
    EXPECT_NO_LEAKS();
}

/* A committed golden frame of wire/golden (or $SHOAL_GOLDEN_DIR), whole;
 * *len is set. Owned by the caller. */
static uint8_t *
golden_read(const char *name, size_t *len)
{
    const char *dir = getenv("SHOAL_GOLDEN_DIR");
    char path[512];
    uint8_t *data;
    long n;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s.bin", dir ? dir : "wire/golden",
             name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the top of the tree)",
                       path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    data = malloc((size_t)n);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

/* Encode as the manager's watch fan-out does: the events picked by mask
 * one message each (version 0, so the event's field alone), then an empty
 * message of the version (the version field alone), concatenated. */
static void
watch_body_by_parts(struct wire_buf *body,
                    const struct shoal_watch_message *m, unsigned mask)
{
    struct shoal_watch_message tail = {.version = m->version};

    for (size_t i = 0; i < m->n_events; i++) {
        struct shoal_watch_message one = {.events = &m->events[i],
                                          .n_events = 1};

        if (mask & (1u << i)) {
            cr_assert_eq(wire_encode(&wire_type_watch_message, &one, body),
                         0);
        }
    }
    cr_assert_eq(wire_encode(&wire_type_watch_message, &tail, body), 0);
}

/* A frame appended raw from a body made of separately encoded parts (the
 * watch fan-out) is byte for byte the golden frame of the whole message,
 * and a body of some of the events decodes to exactly those events. */
Test(wire_frame, raw_frame_of_encoded_parts_is_the_generic_frame)
{
    struct shoal_watch_message m = {0};
    struct shoal_watch_message got = {0};
    struct shoal_watch_message want = {0};
    struct wire_buf body = {0};
    struct wire_buf out = {0};
    struct wire_buf generic = {0};
    struct wire_hdr h;
    size_t len;
    uint8_t *golden = golden_read("watch_event", &len);

    cr_assert_eq(wire_hdr_decode(&h, golden, len), WIRE_HDR_BYTES);
    cr_assert_eq(wire_decode(&wire_type_watch_message, &m,
                             golden + WIRE_HDR_BYTES, len - WIRE_HDR_BYTES),
                 0);
    cr_assert_eq(m.n_events, 3);

    watch_body_by_parts(&body, &m, 7);
    cr_assert_eq(wire_buf_append(&out, "xyz", 3), 0);
    cr_assert_eq(wire_frame_append_raw(&out, h.type, h.flags, h.id,
                                       body.data, body.len),
                 0);
    cr_assert_eq(out.len, 3 + len);
    cr_expect_eq(memcmp(out.data, "xyz", 3), 0);
    cr_expect_eq(memcmp(out.data + 3, golden, len), 0,
                 "the raw frame differs from wire/golden/watch_event.bin");

    /* Events 0 and 2 only: what a watcher of services and secrets gets. */
    body.len = 0;
    watch_body_by_parts(&body, &m, 5);
    cr_assert_eq(wire_decode(&wire_type_watch_message, &got, body.data,
                             body.len),
                 0);
    cr_assert_eq(got.n_events, 2);
    cr_expect_eq(got.version, 4001);
    cr_expect(got.events[0].object.service && got.events[0].old_object);
    cr_expect(got.events[1].object.secret);
    want.version = m.version;
    want.events = (struct shoal_watch_event[]){m.events[0], m.events[2]};
    want.n_events = 2;
    cr_assert_eq(wire_encode(&wire_type_watch_message, &want, &generic), 0);
    cr_expect_eq(generic.len, body.len);
    cr_expect_eq(memcmp(generic.data, body.data, body.len), 0,
                 "a part of the events is not the generic encoding");

    wire_free(&wire_type_watch_message, &got);
    wire_free(&wire_type_watch_message, &m);
    wire_buf_fini(&generic);
    wire_buf_fini(&body);
    wire_buf_fini(&out);
    free(golden);
    EXPECT_NO_LEAKS();
}

/* A raw body of exactly WIRE_MAX_BODY bytes makes a frame the reader
 * accepts; one byte more is ERR_TOOBIG with nothing appended; an empty
 * body needs no pointer. */
Test(wire_frame, raw_append_limits)
{
    uint8_t *big = calloc(1, WIRE_MAX_BODY + 1);
    struct wire_buf out = {0};
    struct wire_hdr h;

    cr_assert_not_null(big);
    cr_assert_eq(wire_buf_append(&out, "xyz", 3), 0);
    cr_expect_eq(wire_frame_append_raw(&out, WIRE_MSG_WATCH | WIRE_REPLY,
                                       WIRE_F_MORE, 9, big,
                                       WIRE_MAX_BODY + 1),
                 ERR_TOOBIG);
    cr_expect_eq(out.len, 3);
    cr_expect_eq(memcmp(out.data, "xyz", 3), 0);

    cr_assert_eq(wire_frame_append_raw(&out, WIRE_MSG_WATCH | WIRE_REPLY,
                                       WIRE_F_MORE, 9, big, WIRE_MAX_BODY),
                 0);
    cr_expect_eq(out.len, 3 + WIRE_MAX_FRAME);
    cr_assert_eq(wire_hdr_decode(&h, out.data + 3, out.len - 3),
                 WIRE_HDR_BYTES);
    cr_expect_eq(h.len, WIRE_MAX_FRAME - 4);
    cr_expect_eq(h.version, WIRE_PROTO_VERSION);
    cr_expect_eq(h.flags, WIRE_F_MORE);
    cr_expect_eq(h.type, WIRE_MSG_WATCH | WIRE_REPLY);
    cr_expect_eq(h.id, 9);

    out.len = 0;
    cr_assert_eq(wire_frame_append_raw(&out, WIRE_MSG_STATS, 0, 1, NULL, 0),
                 0);
    cr_assert_eq(wire_hdr_decode(&h, out.data, out.len), WIRE_HDR_BYTES);
    cr_expect_eq(out.len, WIRE_HDR_BYTES);
    cr_expect_eq(h.len, WIRE_HDR_BYTES - 4);

    wire_buf_fini(&out);
    free(big);
    EXPECT_NO_LEAKS();
}

TestSuite(wire_decode, .timeout = 30.0);

/* A field announcing more bytes than the body holds, at the top or
 * nested, is ERR_PROTO; even 4 GiB is refused without the heap growing. */
Test(wire_decode, rejects_field_longer_than_rest)
{
    static const uint32_t lens[] = {6, 7, 1000, 0x7fffffffu, 0xffffffffu};
    size_t before = HEAP_BYTES();

    for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
        struct wire_buf b = {0};
        struct wire_buf inner = {0};
        struct wire_buf outer = {0};

        raw_hdr(&b, 3, lens[i]);
        cr_assert_eq(wire_buf_append(&b, "short", 5), 0);
        cr_expect_eq(decode_rc(&wire_type_hello, &b), ERR_PROTO, "len %u",
                     lens[i]);

        /* The same inside service -> spec -> annotations. */
        raw_str(&inner, 1, "web");
        raw_hdr(&inner, 2, lens[i]);
        raw_nested(&outer, 1, &inner);
        inner.len = 0;
        raw_nested(&inner, 3, &outer);
        cr_expect_eq(decode_rc(&wire_type_service, &inner), ERR_PROTO);

        wire_buf_fini(&b);
        wire_buf_fini(&inner);
        wire_buf_fini(&outer);
    }
    cr_expect_lt(HEAP_BYTES() - before, 64u << 20,
                 "the heap grew by %zu bytes", HEAP_BYTES() - before);
    EXPECT_NO_LEAKS();
}

/* A body that ends inside a field header is ERR_PROTO. */
Test(wire_decode, rejects_cut_field_header)
{
    const uint8_t raw[WIRE_FIELD_HDR_BYTES] = {0, 3, 0, 0, 0, 0};
    struct shoal_hello hello = {0};

    for (size_t n = 1; n < WIRE_FIELD_HDR_BYTES; n++) {
        cr_expect_eq(wire_decode(&wire_type_hello, &hello, raw, n),
                     ERR_PROTO, "%zu bytes", n);
    }
    cr_expect_eq(wire_decode(&wire_type_hello, &hello, raw, sizeof raw), 0);
    cr_expect_str_eq(hello.client_name, "");
    wire_free(&wire_type_hello, &hello);
    EXPECT_NO_LEAKS();
}

/* A string must be shorter than its schema limit (client_name < 256,
 * status message < 4096, a list_request name < 256). */
Test(wire_decode, string_at_and_over_its_limit)
{
    static const struct {
        const struct wire_type *t;
        uint16_t tag;
        size_t max;
    } cases[] = {
        {&wire_type_hello, 3, 256},
        {&wire_type_status_msg, 2, 4096},
        {&wire_type_list_request, 1, 256},
        {&wire_type_container_spec, 4, 32768},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *s = filled(cases[i].max, 'a');
        struct wire_buf b = {0};

        raw_field(&b, cases[i].tag, s, cases[i].max - 1);
        cr_expect_eq(decode_rc(cases[i].t, &b), 0, "%s: %zu bytes",
                     wire_type_name(cases[i].t), cases[i].max - 1);
        b.len = 0;
        raw_field(&b, cases[i].tag, s, cases[i].max);
        cr_expect_eq(decode_rc(cases[i].t, &b), ERR_PROTO, "%s: %zu bytes",
                     wire_type_name(cases[i].t), cases[i].max);

        wire_buf_fini(&b);
        free(s);
    }
    EXPECT_NO_LEAKS();
}

/* Bytes may be as long as their limit and no longer (ca_cert 65536). */
Test(wire_decode, bytes_at_and_over_their_limit)
{
    struct shoal_root_ca ca = {0};
    char *s = filled(65537, 0);
    struct wire_buf b = {0};

    raw_field(&b, 1, s, 65536);
    cr_assert_eq(wire_decode(&wire_type_root_ca, &ca, b.data, b.len), 0);
    cr_expect_eq(ca.ca_cert.len, 65536);
    b.len = 0;
    raw_field(&b, 1, s, 65537);
    cr_expect_eq(wire_decode(&wire_type_root_ca, &ca, b.data, b.len),
                 ERR_PROTO);
    cr_expect_null(ca.ca_cert.data);

    wire_buf_fini(&b);
    free(s);
    EXPECT_NO_LEAKS();
}

/* A repeated field may hold its maximum count and no more: 64 watch
 * selectors, 16 roles, 1024 names. */
Test(wire_decode, list_at_and_over_its_max_count)
{
    static const struct {
        const struct wire_type *t;
        uint16_t tag;
        size_t max;
        size_t width; /* 0: an embedded message, else an unsigned width */
    } cases[] = {
        {&wire_type_watch_request, 1, 64, 0},
        {&wire_type_list_request, 6, 16, 4},
        {&wire_type_list_request, 1, 1024, 1},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct wire_buf b = {0};
        struct wire_buf sel = {0};

        raw_str(&sel, 5, "web");
        for (size_t n = 0; n < cases[i].max; n++) {
            if (cases[i].width == 0) {
                raw_nested(&b, cases[i].tag, &sel);
            } else {
                raw_uint(&b, cases[i].tag, 'a', cases[i].width);
            }
        }
        cr_expect_eq(decode_rc(cases[i].t, &b), 0, "%s: %zu",
                     wire_type_name(cases[i].t), cases[i].max);
        if (cases[i].width == 0) {
            raw_nested(&b, cases[i].tag, &sel);
        } else {
            raw_uint(&b, cases[i].tag, 'a', cases[i].width);
        }
        cr_expect_eq(decode_rc(cases[i].t, &b), ERR_PROTO, "%s: %zu + 1",
                     wire_type_name(cases[i].t), cases[i].max);

        wire_buf_fini(&sel);
        wire_buf_fini(&b);
    }
    EXPECT_NO_LEAKS();
}

/* Append one map entry {1: key, 2: value} under tag. */
static void
raw_entry(struct wire_buf *b, uint16_t tag, const char *key,
          const char *value)
{
    struct wire_buf e = {0};

    if (key) {
        raw_str(&e, 1, key);
    }
    if (value) {
        raw_str(&e, 2, value);
    }
    raw_nested(b, tag, &e);
    wire_buf_fini(&e);
}

/* A map holds at most 256 distinct keys (a repeated key replaces its
 * value and does not count), keys below 256 bytes and values below 4096;
 * an entry without a key or with another tag is refused. */
Test(wire_decode, map_limits)
{
    struct shoal_annotations a = {0};
    struct wire_buf b = {0};
    char *k255 = filled(255, 'k');
    char *k256 = filled(256, 'k');
    char *v4095 = filled(4095, 'v');
    char *v4096 = filled(4096, 'v');
    char key[16];

    for (int i = 0; i < 256; i++) {
        snprintf(key, sizeof key, "key-%03d", 255 - i);
        raw_entry(&b, 2, key, "x");
    }
    raw_entry(&b, 2, "key-007", "replaced");
    cr_assert_eq(wire_decode(&wire_type_annotations, &a, b.data, b.len), 0);
    cr_expect_eq(a.labels.n, 256);
    cr_expect_str_eq(a.labels.v[0].key, "key-000");
    cr_expect_str_eq(wire_map_get(&a.labels, "key-007"), "replaced");
    raw_entry(&b, 2, "key-256", "x");
    cr_expect_eq(wire_decode(&wire_type_annotations, &a, b.data, b.len),
                 ERR_PROTO);
    cr_expect_eq(a.labels.n, 0);

    b.len = 0;
    raw_entry(&b, 2, k255, v4095);
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), 0);
    b.len = 0;
    raw_entry(&b, 2, k256, "v");
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), ERR_PROTO);
    b.len = 0;
    raw_entry(&b, 2, "k", v4096);
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), ERR_PROTO);
    b.len = 0;
    raw_entry(&b, 2, NULL, "v");
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), ERR_PROTO);

    /* An entry of an unknown tag is refused: a map entry is closed. */
    struct wire_buf e = {0};
    raw_str(&e, 1, "k");
    raw_str(&e, 3, "?");
    b.len = 0;
    raw_nested(&b, 2, &e);
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), ERR_PROTO);

    /* A missing value is the empty string. */
    b.len = 0;
    raw_entry(&b, 2, "present", NULL);
    cr_assert_eq(wire_decode(&wire_type_annotations, &a, b.data, b.len), 0);
    cr_expect_str_eq(wire_map_get(&a.labels, "present"), "");

    wire_free(&wire_type_annotations, &a);
    wire_buf_fini(&e);
    wire_buf_fini(&b);
    free(k255);
    free(k256);
    free(v4095);
    free(v4096);
    EXPECT_NO_LEAKS();
}

/* A bool is one byte, 0 or 1; 2 or another width is refused. */
Test(wire_decode, bool_is_one_byte_zero_or_one)
{
    struct shoal_id_request r = {0};
    struct wire_buf b = {0};

    raw_uint(&b, 3, 1, 1);
    cr_assert_eq(wire_decode(&wire_type_id_request, &r, b.data, b.len), 0);
    cr_expect(r.force);
    b.len = 0;
    raw_uint(&b, 3, 0, 1);
    cr_assert_eq(wire_decode(&wire_type_id_request, &r, b.data, b.len), 0);
    cr_expect_not(r.force);

    b.len = 0;
    raw_uint(&b, 3, 2, 1);
    cr_expect_eq(decode_rc(&wire_type_id_request, &b), ERR_PROTO);
    b.len = 0;
    raw_uint(&b, 3, 0xff, 1);
    cr_expect_eq(decode_rc(&wire_type_id_request, &b), ERR_PROTO);
    b.len = 0;
    raw_uint(&b, 3, 1, 2);
    cr_expect_eq(decode_rc(&wire_type_id_request, &b), ERR_PROTO);
    b.len = 0;
    raw_field(&b, 3, "", 0);
    cr_expect_eq(decode_rc(&wire_type_id_request, &b), ERR_PROTO);

    wire_free(&wire_type_id_request, &r);
    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

/* Integers have fixed widths: u64, i64 and f64 8 bytes, u32 4 bytes
 * (also inside a u32 list); any other width is refused. */
Test(wire_decode, integer_of_the_wrong_width)
{
    static const struct {
        const struct wire_type *t;
        uint16_t tag;
        size_t good;
    } cases[] = {
        {&wire_type_hello_reply, 7, 8},   /* u64 */
        {&wire_type_hello_reply, 1, 4},   /* u32 */
        {&wire_type_meta, 2, 8},          /* i64 */
        {&wire_type_update_config, 5, 8}, /* f64 */
        {&wire_type_list_request, 6, 4},  /* u32 list */
    };
    static const size_t widths[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16};

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        for (size_t w = 0; w < ARRAY_LEN(widths); w++) {
            uint8_t raw[16] = {0x40};
            struct wire_buf b = {0};

            raw_field(&b, cases[i].tag, raw, widths[w]);
            cr_expect_eq(decode_rc(cases[i].t, &b),
                         widths[w] == cases[i].good ? 0 : ERR_PROTO,
                         "%s tag %u width %zu", wire_type_name(cases[i].t),
                         cases[i].tag, widths[w]);
            wire_buf_fini(&b);
        }
    }
    EXPECT_NO_LEAKS();
}

/* Integers are big-endian and keep every bit: u64 max, i64 min, -1, and
 * a double. */
Test(wire_decode, integers_keep_every_bit)
{
    struct shoal_meta m = {.version = UINT64_MAX,
                           .created_at = INT64_MIN,
                           .updated_at = -1};
    struct shoal_meta back = {0};
    struct wire_buf b = {0};
    static const uint8_t want[] = {
        0, 1, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0, 2, 0, 0, 0, 8, 0x80, 0,    0,    0,    0,    0,    0,    0,
        0, 3, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    struct shoal_update_config u = {.max_failure_ratio = -0.5};
    struct shoal_update_config uback = {0};

    cr_assert_eq(wire_encode(&wire_type_meta, &m, &b), 0);
    cr_assert_eq(b.len, sizeof want);
    cr_expect_eq(memcmp(b.data, want, sizeof want), 0);
    cr_assert_eq(wire_decode(&wire_type_meta, &back, b.data, b.len), 0);
    cr_expect_eq(back.version, UINT64_MAX);
    cr_expect_eq(back.created_at, INT64_MIN);
    cr_expect_eq(back.updated_at, -1);

    b.len = 0;
    cr_assert_eq(wire_encode(&wire_type_update_config, &u, &b), 0);
    cr_assert_eq(b.len, 14);
    cr_expect_eq(b.data[6], 0xbf); /* IEEE 754 -0.5 is bf e0 00 ... */
    cr_expect_eq(b.data[7], 0xe0);
    cr_assert_eq(wire_decode(&wire_type_update_config, &uback, b.data,
                             b.len),
                 0);
    cr_expect_eq(uback.max_failure_ratio, -0.5);

    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

/* A NUL inside a string, a list string, a map key or a map value is
 * refused, so that C code never sees a shorter string than was sent. */
Test(wire_decode, string_with_nul_inside)
{
    struct wire_buf b = {0};

    raw_field(&b, 3, "abc\0def", 7);
    cr_expect_eq(decode_rc(&wire_type_hello, &b), ERR_PROTO);
    b.len = 0;
    raw_field(&b, 1, "abc\0", 4);
    cr_expect_eq(decode_rc(&wire_type_list_request, &b), ERR_PROTO);

    struct wire_buf e = {0};
    raw_field(&e, 1, "k\0", 2);
    b.len = 0;
    raw_nested(&b, 2, &e);
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), ERR_PROTO);
    e.len = 0;
    raw_str(&e, 1, "k");
    raw_field(&e, 2, "\0v", 2);
    b.len = 0;
    raw_nested(&b, 2, &e);
    cr_expect_eq(decode_rc(&wire_type_annotations, &b), ERR_PROTO);

    /* Bytes may hold NULs. */
    b.len = 0;
    raw_field(&b, 1, "\0\0", 2);
    cr_expect_eq(decode_rc(&wire_type_root_ca, &b), 0);

    wire_buf_fini(&e);
    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

/* Strings are well-formed UTF-8: overlong forms, surrogates, code points
 * above U+10FFFF, stray continuation bytes and cut sequences are refused;
 * two-, three- and four-byte characters pass. */
Test(wire_decode, string_must_be_utf8)
{
    static const char *const bad[] = {
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\x80",     "a\xbf",        "\xe2\x82",     "\xf5\x80\x80\x80",
        "\xff",     "\xc3",
    };
    static const char *const good[] = {
        "h\xc3\xa9llo", "\xe2\x82\xac", "\xf0\x9f\x90\x9f", "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
    };

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct wire_buf b = {0};

        raw_str(&b, 3, bad[i]);
        cr_expect_eq(decode_rc(&wire_type_hello, &b), ERR_PROTO, "bad %zu",
                     i);
        wire_buf_fini(&b);
    }
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        struct wire_buf b = {0};

        raw_str(&b, 3, good[i]);
        cr_expect_eq(decode_rc(&wire_type_hello, &b), 0, "good %zu", i);
        wire_buf_fini(&b);
    }
    EXPECT_NO_LEAKS();
}

/* Unknown tags (0, 99, 65535), at the top and nested, before, between and
 * after known fields, are skipped; the value is as without them. */
Test(wire_decode, unknown_tags_are_skipped)
{
    struct shoal_update_node_request want = {0};
    struct shoal_update_node_request got = {0};
    struct wire_buf b = {0};
    struct wire_buf spec = {0};
    struct wire_buf ann = {0};
    struct wire_buf plain = {0};

    raw_uint(&b, 0, 1, 8);
    raw_str(&b, 1, "node-1");
    raw_field(&b, 99, "\xff\x00\x01", 3);
    raw_uint(&b, 2, 41, 8);
    raw_str(&ann, 1, "mgr");
    raw_field(&ann, 65535, "", 0);
    raw_entry(&ann, 2, "zone", "a");
    raw_nested(&spec, 1, &ann);
    raw_uint(&spec, 77, 2, 4);
    raw_uint(&spec, 4, SHOAL_AVAILABILITY_DRAIN, 4);
    raw_nested(&b, 3, &spec);
    raw_nested(&b, 4000, &spec);

    cr_assert_eq(wire_decode(&wire_type_update_node_request, &got, b.data,
                             b.len),
                 0);
    want.id = "node-1";
    want.version = 41;
    want.spec = &(struct shoal_node_spec){0};
    want.spec->annotations.name = "mgr";
    want.spec->annotations.labels.v = &(struct shoal_kv){"zone", "a"};
    want.spec->annotations.labels.n = 1;
    want.spec->availability = SHOAL_AVAILABILITY_DRAIN;
    cr_expect(wire_equal(&wire_type_update_node_request, &got, &want));

    /* The length of an unknown field is still checked. */
    raw_hdr(&plain, 99, 100);
    cr_expect_eq(decode_rc(&wire_type_update_node_request, &plain),
                 ERR_PROTO);

    wire_free(&wire_type_update_node_request, &got);
    wire_buf_fini(&plain);
    wire_buf_fini(&ann);
    wire_buf_fini(&spec);
    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

/* A malformed field deep inside an optional message or a list element,
 * after strings and lists were decoded there, is ERR_PROTO and frees all
 * that was decoded. */
Test(wire_decode, malformed_nested_field_frees_the_partial_value)
{
    struct wire_buf container = {0};
    struct wire_buf task = {0};
    struct wire_buf spec = {0};
    struct wire_buf body = {0};
    struct wire_buf sel = {0};

    raw_str(&container, 1, "nginx");
    raw_str(&container, 2, "run");
    raw_uint(&container, 8, 2, 1); /* tty = 2 */
    raw_nested(&task, 1, &container);
    raw_nested(&spec, 2, &task);
    raw_nested(&body, 1, &spec);
    cr_expect_eq(decode_rc(&wire_type_create_service_request, &body),
                 ERR_PROTO);

    raw_str(&sel, 3, "an-id");
    raw_str(&sel, 5, "a-name");
    raw_uint(&sel, 1, SHOAL_KIND_TASK, 8); /* kind is a u32 */
    body.len = 0;
    raw_nested(&body, 1, &sel);
    cr_expect_eq(decode_rc(&wire_type_watch_request, &body), ERR_PROTO);

    wire_buf_fini(&sel);
    wire_buf_fini(&body);
    wire_buf_fini(&spec);
    wire_buf_fini(&task);
    wire_buf_fini(&container);
    EXPECT_NO_LEAKS();
}

/* A repeated singular field is not an error: the last occurrence wins,
 * for a scalar, a string, an embedded and an optional message. */
Test(wire_decode, repeated_singular_field_last_wins)
{
    struct shoal_node n = {0};
    struct wire_buf b = {0};
    struct wire_buf ms = {0};
    struct wire_buf st = {0};

    raw_str(&b, 1, "first");
    raw_str(&b, 1, "second");
    raw_str(&st, 2, "one");
    raw_nested(&b, 5, &st);
    st.len = 0;
    raw_uint(&st, 1, SHOAL_NODE_READY, 4);
    raw_nested(&b, 5, &st);
    raw_str(&ms, 2, "a:1");
    raw_nested(&b, 6, &ms);
    ms.len = 0;
    raw_uint(&ms, 1, 9, 8);
    raw_nested(&b, 6, &ms);
    raw_uint(&b, 7, 0, 4);
    raw_uint(&b, 7, 1, 4);

    cr_assert_eq(wire_decode(&wire_type_node, &n, b.data, b.len), 0);
    cr_expect_str_eq(n.id, "second");
    cr_expect_null(n.status.message);
    cr_expect_eq(n.status.state, SHOAL_NODE_READY);
    cr_assert_not_null(n.manager_status);
    cr_expect_null(n.manager_status->addr);
    cr_expect_eq(n.manager_status->raft_id, 9);
    cr_expect_eq(n.role, 1);

    wire_free(&wire_type_node, &n);
    wire_buf_fini(&ms);
    wire_buf_fini(&st);
    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

/* For every schema type, the zeroed value encodes to no bytes, and the
 * empty body decodes to the zeroed value, also over an old value. */
Test(wire_decode, empty_body_is_the_empty_value_of_every_type)
{
    for (size_t i = 0; i < ARRAY_LEN(all_types); i++) {
        const struct wire_type *t = all_types[i];
        void *zero = calloc(1, wire_type_size(t));
        void *obj = calloc(1, wire_type_size(t));

        cr_assert(zero && obj);
        cr_expect_eq(wire_encoded_size(t, zero), 0, "%s",
                     wire_type_name(t));
        cr_expect_eq(wire_decode(t, obj, (const uint8_t *)"", 0), 0);
        cr_expect_eq(memcmp(obj, zero, wire_type_size(t)), 0, "%s",
                     wire_type_name(t));
        free(obj);
        free(zero);
    }

    struct shoal_hello h = {0};
    struct wire_buf b = {0};
    raw_str(&b, 3, "old");
    cr_assert_eq(wire_decode(&wire_type_hello, &h, b.data, b.len), 0);
    cr_assert_eq(wire_decode(&wire_type_hello, &h, b.data, 0), 0);
    cr_expect_null(h.client_name);
    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

/* Absent and present-but-empty differ and survive a round trip: a NULL
 * string and "", bytes never set and set to none, an optional message
 * absent and empty. An always-present embedded message that is empty
 * is left out. */
Test(wire_decode, absent_and_empty_differ)
{
    struct shoal_update_node_request r = {.id = ""};
    struct shoal_update_node_request back = {0};
    struct shoal_secret_spec s = {0};
    struct shoal_secret_spec sback = {0};
    struct shoal_node_spec empty = {0};
    struct wire_buf b = {0};
    static const uint8_t want[] = {0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0};

    r.spec = &empty;
    cr_assert_eq(wire_encode(&wire_type_update_node_request, &r, &b), 0);
    cr_assert_eq(b.len, sizeof want);
    cr_expect_eq(memcmp(b.data, want, sizeof want), 0);
    cr_assert_eq(wire_decode(&wire_type_update_node_request, &back, b.data,
                             b.len),
                 0);
    cr_expect_str_eq(back.id, "");
    cr_expect_not_null(back.spec);

    b.len = 0;
    cr_assert_eq(wire_bytes_set(&s.data, NULL, 0), 0);
    cr_assert_eq(wire_encode(&wire_type_secret_spec, &s, &b), 0);
    cr_expect_eq(b.len, WIRE_FIELD_HDR_BYTES);
    cr_assert_eq(wire_decode(&wire_type_secret_spec, &sback, b.data, b.len),
                 0);
    cr_expect_not_null(sback.data.data);
    cr_expect_eq(sback.data.len, 0);
    wire_free(&wire_type_secret_spec, &s);
    cr_expect_not(wire_equal(&wire_type_secret_spec, &s, &sback));

    wire_free(&wire_type_secret_spec, &sback);
    wire_free(&wire_type_update_node_request, &back);
    wire_buf_fini(&b);
    EXPECT_NO_LEAKS();
}

TestSuite(wire_containers, .timeout = 10.0);

/* wire_map_set keeps keys sorted and unique whatever the insertion
 * order, replaces the value of a key that is there, and the encoding
 * follows the sorted order. */
Test(wire_containers, map_set_sorts_and_replaces)
{
    static const char *const keys[] = {"m", "b", "z", "a", "mm", "A", ""};
    struct shoal_map m = {0};
    struct shoal_annotations a = {0};
    struct shoal_annotations b = {0};

    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        cr_assert_eq(wire_map_set(&m, keys[i], keys[i]), 0);
    }
    cr_assert_eq(wire_map_set(&m, "b", "new"), 0);

    cr_assert_eq(m.n, ARRAY_LEN(keys));
    for (size_t i = 1; i < m.n; i++) {
        cr_expect_lt(strcmp(m.v[i - 1].key, m.v[i].key), 0, "order at %zu",
                     i);
    }
    cr_expect_str_eq(m.v[0].key, "");
    cr_expect_str_eq(m.v[1].key, "A");
    cr_expect_str_eq(wire_map_get(&m, "b"), "new");
    cr_expect_str_eq(wire_map_get(&m, "mm"), "mm");
    cr_expect_null(wire_map_get(&m, "q"));

    /* Built in another order, the same map is equal. */
    a.labels = m;
    for (size_t i = ARRAY_LEN(keys); i-- > 0;) {
        cr_assert_eq(wire_map_set(&b.labels, keys[i],
                                  strcmp(keys[i], "b") ? keys[i] : "new"),
                     0);
    }
    cr_expect(wire_equal(&wire_type_annotations, &a, &b));

    wire_free(&wire_type_annotations, &a);
    wire_free(&wire_type_annotations, &b);
    EXPECT_NO_LEAKS();
}

/* wire_strs_push and wire_bytes_set copy their input. */
Test(wire_containers, push_and_set_copy)
{
    struct shoal_strs s = {0};
    struct shoal_bytes by = {0};
    char word[] = "abc";
    uint8_t raw[] = {1, 0, 2};

    cr_assert_eq(wire_strs_push(&s, word), 0);
    cr_assert_eq(wire_strs_push(&s, "def"), 0);
    word[0] = 'x';
    cr_assert_eq(wire_bytes_set(&by, raw, sizeof raw), 0);
    raw[0] = 9;
    cr_assert_eq(wire_bytes_set(&by, raw, 2), 0);
    raw[1] = 9;

    cr_expect_eq(s.n, 2);
    cr_expect_str_eq(s.v[0], "abc");
    cr_expect_str_eq(s.v[1], "def");
    cr_expect_eq(by.len, 2);
    cr_expect_eq(by.data[0], 9);
    cr_expect_eq(by.data[1], 0);

    for (size_t i = 0; i < s.n; i++) {
        free(s.v[i]);
    }
    free(s.v);
    free(by.data);
    EXPECT_NO_LEAKS();
}

/* Message types and kinds: unknown numbers and reply types have no info;
 * kind names parse back to their kind; an object with exactly one kind
 * set names it. */
Test(wire_containers, msg_info_and_kinds)
{
    struct shoal_service svc = {.id = "s1"};
    struct shoal_task task = {.id = "t1"};
    struct shoal_object o = {0};
    void *which;

    cr_expect_null(wire_msg_info(0));
    cr_expect_null(wire_msg_info(5));
    cr_expect_null(wire_msg_info(WIRE_MSG_WATCH + 1));
    cr_expect_null(wire_msg_info(WIRE_MSG_GET_SERVICE | WIRE_REPLY));
    cr_assert_not_null(wire_msg_info(WIRE_MSG_CREATE_SERVICE));
    cr_expect_str_eq(wire_msg_info(WIRE_MSG_CREATE_SERVICE)->name,
                     "create_service");
    cr_expect(wire_msg_info(WIRE_MSG_CREATE_SERVICE)->write);

    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        cr_expect_eq(wire_kind_parse(wire_kind_name((enum shoal_kind)k)), k);
        cr_expect_not_null(wire_kind_type((enum shoal_kind)k));
    }
    cr_expect_eq(wire_kind_parse("services"), SHOAL_KIND_NONE);
    cr_expect_null(wire_kind_type(SHOAL_KIND_NONE));
    cr_expect_str_eq(wire_kind_name(SHOAL_KIND_COUNT), "unknown");

    cr_expect_eq(wire_object_kind(&o, &which), SHOAL_KIND_NONE);
    o.service = &svc;
    cr_expect_eq(wire_object_kind(&o, &which), SHOAL_KIND_SERVICE);
    cr_expect_eq(which, &svc);
    cr_expect_str_eq(wire_object_id(SHOAL_KIND_SERVICE, which), "s1");
    o.task = &task;
    cr_expect_eq(wire_object_kind(&o, &which), SHOAL_KIND_NONE);
    cr_expect_null(which);
}

TestSuite(wire_json, .timeout = 10.0);

/* The JSON of a service has the schema's field names, exact 64-bit
 * integers (2^53 + 1 and INT64_MIN, which a double would change), maps
 * as objects, bytes as base64, and leaves out zero and absent fields
 * except a version. */
Test(wire_json, service_fields_and_exact_integers)
{
    struct shoal_kv labels[] = {{"app", "web"}, {"tier", "front"}};
    struct shoal_service svc = {
        .id = "k2j4h6g8f0d1s3a5q7w9e2r4t",
        .meta = {.version = 9007199254740993ULL, .created_at = INT64_MIN},
        .spec = {.annotations = {.name = "web",
                                 .labels = {.v = labels, .n = 2}},
                 .mode = {.kind = SHOAL_MODE_REPLICATED, .replicas = 3}},
        .pending_delete = true,
    };
    json_t *j = wire_to_json(&wire_type_service, &svc);
    char *text;

    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(j, "id")), svc.id);
    json_t *meta = json_object_get(j, "meta");
    cr_expect_eq(json_integer_value(json_object_get(meta, "version")),
                 9007199254740993LL);
    cr_expect_eq(json_integer_value(json_object_get(meta, "created_at")),
                 INT64_MIN);
    cr_expect_null(json_object_get(meta, "updated_at"));
    json_t *spec = json_object_get(j, "spec");
    json_t *ann = json_object_get(spec, "annotations");
    cr_expect_str_eq(json_string_value(json_object_get(ann, "name")), "web");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(ann, "labels"), "tier")),
                     "front");
    json_t *mode = json_object_get(spec, "mode");
    cr_expect_eq(json_integer_value(json_object_get(mode, "kind")), 1);
    cr_expect_eq(json_integer_value(json_object_get(mode, "replicas")), 3);
    cr_expect(json_is_true(json_object_get(j, "pending_delete")));
    cr_expect_null(json_object_get(spec, "task"));
    cr_expect_null(json_object_get(j, "previous_spec"));
    cr_expect_null(json_object_get(j, "spec_version"));

    text = json_dumps(j, JSON_COMPACT);
    cr_assert_not_null(text);
    cr_expect_not_null(strstr(text, "\"version\":9007199254740993"), "%s",
                       text);
    cr_expect_not_null(strstr(text, "\"created_at\":-9223372036854775808"),
                       "%s", text);

    free(text);
    json_decref(j);
    EXPECT_NO_LEAKS();
}

/* A version of 0 is still shown; bytes are base64, NULs included. */
Test(wire_json, version_zero_and_bytes)
{
    uint8_t data[] = {'h', 'i', 0, 0xff};
    struct shoal_config cfg = {
        .id = "c1",
        .spec = {.annotations = {.name = "x"},
                 .data = {.data = data, .len = sizeof data}},
    };
    json_t *j = wire_to_json(&wire_type_config, &cfg);

    cr_assert_not_null(j);
    json_t *v = json_object_get(json_object_get(j, "meta"), "version");
    cr_expect(json_is_integer(v));
    cr_expect_eq(json_integer_value(v), 0);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(j, "spec"), "data")),
                     "aGkA/w==");

    json_decref(j);
    EXPECT_NO_LEAKS();
}

/* Lists and u32 lists become arrays in order. */
Test(wire_json, lists_are_arrays)
{
    char *names[] = {"a", "b"};
    uint32_t roles[] = {1, 0};
    struct shoal_list_request r = {.names = {.v = names, .n = 2},
                                   .roles = {.v = roles, .n = 2}};
    json_t *j = wire_to_json(&wire_type_list_request, &r);

    cr_assert_not_null(j);
    json_t *a = json_object_get(j, "names");
    cr_assert(json_is_array(a));
    cr_expect_eq(json_array_size(a), 2);
    cr_expect_str_eq(json_string_value(json_array_get(a, 1)), "b");
    a = json_object_get(j, "roles");
    cr_expect_eq(json_integer_value(json_array_get(a, 0)), 1);
    cr_expect_eq(json_integer_value(json_array_get(a, 1)), 0);

    json_decref(j);
    EXPECT_NO_LEAKS();
}
