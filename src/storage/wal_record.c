/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * wal_record.c: the byte layout of one log record, encode and parse.
 *
 * Pure functions over buffers: no I/O, no allocation, so that the parser
 * can be fuzzed on its own. Parsing treats every byte as untrusted and
 * checks each length against the buffer before it is used.
 *
 * Record layout, little-endian, WAL_HDR_BYTES (40) of header:
 *
 *   0  u32  magic "SHWL"
 *   4  u8   type (enum wal_rec_type)
 *   5  u8   format version, 1
 *   6  u16  reserved, 0
 *   8  u32  payload length (0 for BASE and HARDSTATE)
 *  12  u32  header check: XXH3-64 of bytes 0-11 and 16-31, low half
 *  16  u64  index (HARDSTATE: the vote)
 *  24  u64  term
 *  32  u64  checksum: XXH3-64 of the payload seeded with XXH3-64 of
 *           bytes 0-31, so it covers every header field and the payload
 *  40  payload
 *
 * The header check lets recovery trust a header whose payload is torn or
 * damaged, and so tell a torn tail (nothing valid after the claimed end)
 * from damage in the middle, without scanning inside the payload.
 */
#include "storage/storage.h"

#include <string.h>

#include <xxhash.h>

#include "base/base.h"
#include "storage/storage_int.h"

_Static_assert(WAL_HDR_BYTES == 40, "the header layout is 40 bytes");
_Static_assert(WAL_MAX_PAYLOAD < UINT32_MAX, "lengths are 32-bit");

static uint32_t
hdr_check(const uint8_t *p)
{
    return (uint32_t)XXH3_64bits_withSeed(p + 16, 16, XXH3_64bits(p, 12));
}

static uint64_t
rec_checksum(const uint8_t *p, const uint8_t *data, uint32_t len)
{
    return XXH3_64bits_withSeed(data, len, XXH3_64bits(p, 32));
}

size_t
wal__encode(uint8_t *out, enum wal_rec_type type, uint64_t index, uint64_t term,
            const void *data, uint32_t len)
{
    ASSERT(len <= WAL_MAX_PAYLOAD);
    ASSERT(type == WAL_REC_ENTRY || len == 0);
    ASSERT(data != NULL || len == 0);

    storage__put_le32(out, WAL_MAGIC);
    out[4] = (uint8_t)type;
    out[5] = WAL_VERSION;
    storage__put_le16(out + 6, 0);
    storage__put_le32(out + 8, len);
    storage__put_le64(out + 16, index);
    storage__put_le64(out + 24, term);
    storage__put_le32(out + 12, hdr_check(out));
    if (len > 0) {
        memcpy(out + WAL_HDR_BYTES, data, len);
    }
    storage__put_le64(out + 32, rec_checksum(out, out + WAL_HDR_BYTES, len));
    return WAL_HDR_BYTES + (size_t)len;
}

/* Check the header fields that need no payload. Sets bad->why. */
static int
parse_header(const uint8_t *p, struct wal_bad *bad)
{
    uint8_t type = p[4];
    uint32_t len = storage__get_le32(p + 8);

    if (storage__get_le32(p) != WAL_MAGIC) {
        bad->why = "bad magic";
    } else if (storage__get_le32(p + 12) != hdr_check(p)) {
        bad->why = "bad header checksum";
    } else if (p[5] != WAL_VERSION || storage__get_le16(p + 6) != 0) {
        bad->why = "unknown record version";
    } else if (type < WAL_REC_BASE || type > WAL_REC_HARDSTATE) {
        bad->why = "unknown record type";
    } else if (len > WAL_MAX_PAYLOAD || (type != WAL_REC_ENTRY && len != 0)) {
        bad->why = "record length over its limit";
    } else {
        return 0;
    }
    return ERR_CORRUPT;
}

ssize_t
wal__parse(const uint8_t *p, size_t avail, struct wal_rec *rec,
           struct wal_bad *bad)
{
    uint32_t len;

    bad->why = NULL;
    bad->extent = 0;
    if (avail < WAL_HDR_BYTES) {
        bad->why = "short record header";
        return ERR_AGAIN;
    }
    if (parse_header(p, bad) != 0) {
        return ERR_CORRUPT;
    }

    /* From here the header is sound, so its length can be trusted. */
    len = storage__get_le32(p + 8);
    bad->extent = WAL_HDR_BYTES + (size_t)len;
    if (avail < bad->extent) {
        bad->why = "short record payload";
        return ERR_AGAIN;
    }
    if (storage__get_le64(p + 32) != rec_checksum(p, p + WAL_HDR_BYTES, len)) {
        bad->why = "bad checksum";
        return ERR_CORRUPT;
    }

    rec->type = (enum wal_rec_type)p[4];
    rec->index = storage__get_le64(p + 16);
    rec->term = storage__get_le64(p + 24);
    rec->data = p + WAL_HDR_BYTES;
    rec->len = len;
    return (ssize_t)bad->extent;
}

ssize_t
wal_record_parse(const void *buf, size_t avail, struct wal_rec *rec)
{
    struct wal_bad bad;

    return wal__parse(buf, avail, rec, &bad);
}
