/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_wal.c: a libFuzzer target for the log record reader and the
 * recovery scan of whole segments (src/storage).
 *
 * The first byte picks a mode:
 *
 *   0  raw: wal_record_parse() over the bytes, record after record, and
 *      at every offset, as the tail scan of recovery does.
 *   1  sealed: the same bytes with each record's header check and
 *      checksum recomputed first, so that the fuzzer, which cannot invert
 *      XXH3, reaches the checks behind them (version, type, length); the
 *      payload of each entry is then decoded as a proposal and applied to
 *      a store, as replay does at startup.
 *   2  segments: up to four segment files (each a u16 length and bytes,
 *      sealed unless flag bit 0 of the second byte is set) written to a
 *      temporary state folder, then wal_open() (recovery, tail cut),
 *      wal_replay() into a store, one append and sync, a truncation, a
 *      compaction, and a reopen that must find the same log.
 *
 * Properties: a parsed record lies inside the buffer and has a known
 * type; replay hands out consecutive indexes whose terms wal_term()
 * agrees with; what was synced is there after a reopen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/base.h"
#include "fuzz.h"
#include "fuzz_state.h"
#include "shoal/wire.h"
#include "storage/storage.h"
#include "store/store.h"

#define MAX_SEGS 4

static char state_dir[64]; /* a folder of our own, made once */
static char wal_dir[80];

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/*
 * Recompute the header check and the checksum of each record in p, in
 * order, as wal_record.c lays them out: the check is XXH3 over bytes
 * 0-11 and 16-31, the checksum XXH3 of the payload seeded with XXH3 of
 * bytes 0-31. Stops at a length that runs past the end.
 */
static void
seal(uint8_t *p, size_t size)
{
    size_t off = 0;

    while (size - off >= WAL_HDR_BYTES) {
        uint8_t *h = p + off;
        uint32_t len = get_le32(h + 8);

        put_le32(h + 12, (uint32_t)XXH3_64bits_withSeed(h + 16, 16,
                                                        XXH3_64bits(h, 12)));
        if (len > size - off - WAL_HDR_BYTES) {
            break;
        }
        put_le64(h + 32, XXH3_64bits_withSeed(h + WAL_HDR_BYTES, len,
                                              XXH3_64bits(h, 32)));
        off += WAL_HDR_BYTES + (size_t)len;
    }
}

/* What replay feeds: a store with the manager's checks. */
struct sink {
    struct fuzz_state st;
    uint64_t next; /* the index replay must hand out next */
    const struct wal *w;
};

/* Decode an entry as a proposal and apply it, as commit_replay_cb does. */
static void
sink_apply(struct sink *k, uint64_t index, const void *data, size_t len)
{
    struct shoal_proposal p = {0};
    struct store_verdict v;

    if (wire_decode(&wire_type_proposal, &p, data, len) != 0) {
        FUZZ_CHECK(fuzz_all_zero(&p, sizeof p));
        return;
    }
    if (index > store_applied(k->st.store)) {
        FUZZ_CHECK(store_apply(k->st.store, index, &p, &v) == 0);
        FUZZ_CHECK(store_applied(k->st.store) == index);
    }
    wire_free(&wire_type_proposal, &p);
}

/* Walk the records of p; decode and apply entries when sink is given. */
static void
walk(const uint8_t *p, size_t size, struct sink *k)
{
    struct wal_rec rec;
    size_t off = 0;
    ssize_t n;

    while (off < size) {
        n = wal_record_parse(p + off, size - off, &rec);
        if (n < 0) {
            FUZZ_CHECK(n == ERR_AGAIN || n == ERR_CORRUPT);
            break;
        }
        FUZZ_CHECK((size_t)n >= WAL_HDR_BYTES && (size_t)n <= size - off);
        FUZZ_CHECK(rec.data == p + off + WAL_HDR_BYTES);
        FUZZ_CHECK((size_t)n == WAL_HDR_BYTES + (size_t)rec.len);
        FUZZ_CHECK(rec.type == WAL_REC_BASE || rec.type == WAL_REC_ENTRY ||
                   rec.type == WAL_REC_HARDSTATE);
        if (k && rec.type == WAL_REC_ENTRY) {
            sink_apply(k, rec.index, rec.data, rec.len);
        }
        off += (size_t)n;
    }
}

/* Mode 0: record by record, then a parse at every offset. */
static void
fuzz_raw(const uint8_t *p, size_t size)
{
    struct wal_rec rec;

    walk(p, size, NULL);
    for (size_t off = 1; off < size; off++) {
        ssize_t n = wal_record_parse(p + off, size - off, &rec);

        FUZZ_CHECK(n < 0 || (size_t)n <= size - off);
    }
}

/* Mode 1: sealed records, entries applied. */
static void
fuzz_sealed(const uint8_t *p, size_t size)
{
    uint8_t *copy = malloc(size + 1);
    struct sink k;

    if (!copy) {
        return;
    }
    memcpy(copy, p, size);
    seal(copy, size);
    memset(&k, 0, sizeof k);
    if (fuzz_state_open(&k.st) == 0) {
        walk(copy, size, &k);
        fuzz_state_close(&k.st);
    }
    free(copy);
}

/* ---- Mode 2: segment files ------------------------------------------ */

static void
dir_cleanup(void)
{
    DIR *d;
    struct dirent *de;

    if (wal_dir[0] == '\0') {
        return;
    }
    d = opendir(wal_dir);
    if (d) {
        while ((de = readdir(d))) {
            if (de->d_name[0] != '.') {
                unlinkat(dirfd(d), de->d_name, 0);
            }
        }
        closedir(d);
    }
}

static void
dir_remove(void)
{
    dir_cleanup();
    rmdir(wal_dir);
    rmdir(state_dir);
}

/* Make the state folder once, on tmpfs when there is one. */
static int
dir_make(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    if (state_dir[0] != '\0') {
        return 0;
    }
    snprintf(state_dir, sizeof state_dir, "%s/shoal-fuzz-wal-XXXXXX", base);
    if (!mkdtemp(state_dir)) {
        state_dir[0] = '\0';
        return -1;
    }
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", state_dir);
    if (mkdir(wal_dir, 0700) != 0) {
        return -1;
    }
    atexit(dir_remove);
    return 0;
}

static int
write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[160];
    int fd;
    ssize_t w = 0;

    snprintf(path, sizeof path, "%s/%s", wal_dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    if (n > 0) {
        w = write(fd, p, n);
    }
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}

static int
replay_cb(uint64_t index, uint64_t term, const void *data, size_t len,
          void *arg)
{
    struct sink *k = arg;
    uint64_t t;

    FUZZ_CHECK(index == k->next);
    FUZZ_CHECK(wal_term(k->w, index, &t) == 0 && t == term);
    k->next++;
    sink_apply(k, index, data, len);
    return 0;
}

/* Open what the files hold, replay it, change it, and reopen it. */
static void
fuzz_log(uint8_t tweak)
{
    struct wal_stats st, again;
    struct wal_diag diag;
    struct wal_opts opts = {.segment_bytes = 4096, .keep_entries = tweak & 3};
    struct wal *w;
    struct sink k;
    uint64_t hs_term, hs_vote, t2, v2;
    bool synced = true;

    if (wal_open(&w, state_dir, &opts, &diag) != 0) {
        return;
    }
    wal_get_stats(w, &st);
    FUZZ_CHECK(st.first_index >= 1 && st.first_index <= st.last_index + 1);
    memset(&k, 0, sizeof k);
    if (fuzz_state_open(&k.st) == 0) {
        k.next = st.first_index;
        k.w = w;
        FUZZ_CHECK(wal_replay(w, st.first_index - 1, replay_cb, &k, &diag) ==
                   0);
        FUZZ_CHECK(k.next == st.last_index + 1);
        fuzz_state_read_all(&k.st);
        fuzz_state_close(&k.st);
    }

    /* A running manager goes on from what it recovered. */
    if (st.last_index < UINT64_MAX - 1 &&
        wal_append_entry(w, st.last_index + 1, st.last_term, "e", 1) == 0) {
        wal_hardstate(w, &hs_term, &hs_vote);
        wal_append_hardstate(w, hs_term + (tweak & 4 ? 1 : 0), tweak);
        synced = wal_sync(w) == 0;
        if (synced && (tweak & 8)) {
            synced = wal_truncate_suffix(w, st.last_index) == 0;
        }
        if (synced && (tweak & 16)) {
            synced = wal_compact(w, st.last_index) == 0;
        }
    }
    wal_get_stats(w, &st);
    wal_hardstate(w, &hs_term, &hs_vote);
    wal_close(w);

    /* What was synced is what a restart finds. */
    FUZZ_CHECK(wal_open(&w, state_dir, &opts, &diag) == 0);
    FUZZ_CHECK(diag.reason == NULL);
    wal_get_stats(w, &again);
    wal_hardstate(w, &t2, &v2);
    if (synced) {
        FUZZ_CHECK(again.last_index == st.last_index);
        FUZZ_CHECK(again.last_term == st.last_term);
        FUZZ_CHECK(again.first_index == st.first_index);
        FUZZ_CHECK(t2 == hs_term && v2 == hs_vote);
    }
    wal_close(w);
}

static void
fuzz_segments(struct fuzz_in *in)
{
    uint8_t flags = fuzz_u8(in);
    uint8_t tweak = fuzz_u8(in);
    uint64_t seq = 1 + (flags >> 4);
    const uint8_t *seg;
    size_t len;

    if (dir_make() != 0) {
        return;
    }
    for (int i = 0; i < MAX_SEGS && fuzz_field(in, &seg, &len); i++) {
        uint8_t *copy = malloc(len + 1);
        uint64_t first = 1;
        char name[64];

        if (!copy) {
            break;
        }
        memcpy(copy, seg, len);
        if (!(flags & 1)) {
            seal(copy, len);
        }
        /* The name carries the base record's index + 1, as wal.c names
         * segments; flag bit 1 makes it lie, bit 2 skips a number. */
        if (len >= 24) {
            first = get_le64(copy + 16) + 1;
        }
        if (flags & 2) {
            first++;
        }
        if ((flags & 4) && i == 1) {
            seq++;
        }
        snprintf(name, sizeof name, "wal-%016" PRIx64 "-%016" PRIx64 ".log",
                 seq++, first);
        write_file(name, copy, len);
        free(copy);
    }
    fuzz_log(tweak);
    dir_cleanup();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);

    log_set_level(LOG_CRIT);
    switch (mode % 3) {
    case 0:
        fuzz_raw(in.p, in.n);
        break;
    case 1:
        fuzz_sealed(in.p, in.n);
        break;
    default:
        fuzz_segments(&in);
        break;
    }
    return 0;
}
