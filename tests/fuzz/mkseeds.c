/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * mkseeds.c: write the seed corpora of the fuzz targets that need the
 * codec, the log or the CA to be made (make fuzz-seeds).
 *
 *   mkseeds FOLDER     (run from the top of the tree: reads wire/golden)
 *
 * Writes FOLDER/<target>/<name> for control, statedb, wal, token and ctl.
 * The seeds are small, valid inputs in each target's format (see each
 * fuzz_<target>.c), so that the fuzzer starts past the shallow checks: a
 * state built by the real handlers from the golden requests, log
 * segments written by the real WAL, tokens, a CA certificate and a CSR
 * made by the CA module, and everyday shoalctl command lines. Ids, keys
 * and times are new on each run, so the files differ from run to run but
 * not in shape.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "ca/ca.h"
#include "control/control.h"
#include "fuzz_state.h"
#include "shoal/wire.h"
#include "storage/storage.h"
#include "store/store.h"

#define GOLDEN "wire/golden"
#define MAX_PROPOSALS 32

static const char *root;

/* Encoded proposals of the state below, for the log seeds. */
static struct wire_buf proposals[MAX_PROPOSALS];
static size_t n_proposals;

static void
die(const char *what)
{
    fprintf(stderr, "mkseeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void
seed(const char *target, const char *name, const void *p, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        die(path);
    }
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    f = fopen(path, "wb");
    if (!f || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        die(path);
    }
}

static void
buf_add(struct wire_buf *b, const void *p, size_t n)
{
    if (wire_buf_append(b, p, n) != 0) {
        die("out of memory");
    }
}

static void
buf_u8(struct wire_buf *b, uint8_t v)
{
    buf_add(b, &v, 1);
}

/* A u16-length field of the fuzz formats (fuzz.h, fuzz_field). */
static void
buf_field(struct wire_buf *b, const void *p, size_t n)
{
    uint8_t len[2] = {(uint8_t)n, (uint8_t)(n >> 8)};

    if (n > 0xffff) {
        errno = EOVERFLOW;
        die("field over 64 KiB");
    }
    buf_add(b, len, 2);
    buf_add(b, p, n);
}

static void
read_file(const char *path, struct wire_buf *b)
{
    uint8_t chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");

    if (!f) {
        die(path);
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_add(b, chunk, n);
    }
    fclose(f);
}

/* ---- control and statedb: a state made by the handlers ---------------- */

static void
keep_proposal(const struct shoal_proposal *p)
{
    if (n_proposals < MAX_PROPOSALS &&
        wire_encode(&wire_type_proposal, p, &proposals[n_proposals]) == 0) {
        n_proposals++;
    }
}

static void
apply(struct fuzz_state *st, const struct shoal_proposal *p)
{
    struct store_verdict v;

    keep_proposal(p);
    fuzz_state_apply(st, p, &v);
    if (v.code != SHOAL_OK) {
        fprintf(stderr, "mkseeds: a golden write is refused: %s\n", v.message);
    }
}

/* Handle one golden request frame; a write is applied. References by
 * name are resolved as fuzz_control does. */
static void
handle_golden(struct fuzz_state *st, const char *name, struct wire_buf *stream)
{
    const struct wire_msg_info *info;
    struct control_out out = {0};
    struct wire_buf b = {0};
    struct wire_hdr h;
    char path[256];
    void *req;

    snprintf(path, sizeof path, GOLDEN "/%s", name);
    read_file(path, &b);
    buf_add(stream, b.data, b.len);
    if (wire_hdr_decode(&h, b.data, b.len) != WIRE_HDR_BYTES ||
        !(info = wire_msg_info(h.type)) || !info->request ||
        h.type == WIRE_MSG_HELLO || h.type == WIRE_MSG_WATCH) {
        wire_buf_fini(&b);
        return;
    }
    req = calloc(1, wire_type_size(info->request));
    if (!req || wire_decode(info->request, req, b.data + WIRE_HDR_BYTES,
                            b.len - WIRE_HDR_BYTES) != 0) {
        die(path);
    }
    fuzz_state_resolve(st, info, req);
    if (control_handle(&st->ctl, h.type, req, &out) == 0 && out.proposal) {
        apply(st, out.proposal);
    }
    control_out_fini(&out);
    wire_free(info->request, req);
    free(req);
    wire_buf_fini(&b);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The golden request frames, in name order, hello first. */
static size_t
golden_requests(char ***out)
{
    char **v = NULL;
    size_t n = 0;
    struct dirent *de;
    DIR *d = opendir(GOLDEN);

    if (!d) {
        die(GOLDEN);
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);

        if (len < 5 || strcmp(de->d_name + len - 4, ".bin") != 0 ||
            strstr(de->d_name, "_reply") || !strcmp(de->d_name, "hello.bin")) {
            continue;
        }
        v = realloc(v, (n + 1) * sizeof *v);
        if (!v || !(v[n] = str_dup(de->d_name))) {
            die("out of memory");
        }
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

struct dump {
    enum shoal_kind kind;
    struct wire_buf *all;  /* fuzz_statedb's direct format */
    struct wire_buf *lmdb; /* its LMDB format: key and value fields */
};

/* One stored object as a statedb record: kind, u16 length, value. */
static int
dump_cb(const void *obj, void *arg)
{
    struct dump *d = arg;
    struct wire_buf v = {0};
    struct wire_buf one = {0};
    char name[64];

    if (wire_encode(wire_kind_type(d->kind), obj, &v) != 0) {
        die("wire_encode");
    }
    buf_u8(d->all, (uint8_t)d->kind);
    buf_field(d->all, v.data, v.len);
    one.len = 0;
    buf_u8(&one, (uint8_t)d->kind);
    buf_add(&one, wire_object_id(d->kind, obj),
            strlen(wire_object_id(d->kind, obj)));
    buf_field(d->lmdb, one.data, one.len);
    buf_field(d->lmdb, v.data, v.len);
    one.len = 0;
    buf_u8(&one, (uint8_t)d->kind);
    buf_field(&one, v.data, v.len);
    snprintf(name, sizeof name, "one-%s", wire_kind_name(d->kind));
    seed("statedb", name, one.data, one.len);
    wire_buf_fini(&one);
    wire_buf_fini(&v);
    return 0;
}

static void
seeds_state(void)
{
    struct fuzz_state st;
    struct store_query all = {.by = STORE_BY_ALL};
    struct shoal_proposal *boot = NULL;
    struct wire_buf stream = {0}, hello = {0}, state = {0}, lmdb = {0};
    uint8_t meta[24] = {1}; /* statedb.c: version 1, no membership */
    char **names;
    size_t n;

    if (fuzz_state_open(&st) != 0 ||
        control_bootstrap(&st.ctl, "seedhost", &boot) != 0) {
        die("the store");
    }
    apply(&st, boot);
    wire_free(&wire_type_proposal, boot);
    free(boot);

    read_file(GOLDEN "/hello.bin", &hello);
    buf_add(&stream, hello.data, hello.len);
    n = golden_requests(&names);
    for (size_t i = 0; i < n; i++) {
        handle_golden(&st, names[i], &stream);
        free(names[i]);
    }
    free(names);
    seed("control", "all-golden-requests", stream.data, stream.len);

    /* The LMDB form: 0xfe, the meta record (index and term), objects. */
    buf_u8(&lmdb, 0xfe);
    meta[8] = (uint8_t)store_applied(st.store);
    meta[16] = 1;
    buf_field(&lmdb, meta, sizeof meta);
    for (int k = SHOAL_KIND_NODE; k < SHOAL_KIND_COUNT; k++) {
        struct dump d = {(enum shoal_kind)k, &state, &lmdb};

        store_find(st.store, d.kind, &all, dump_cb, &d);
    }
    seed("statedb", "state", state.data, state.len);
    seed("statedb", "lmdb-state", lmdb.data, lmdb.len);
    wire_buf_fini(&lmdb);
    /* The same state with the log's entries replayed on top of it. */
    for (size_t i = 1; i < n_proposals; i++) {
        buf_u8(&state, 0x80);
        buf_field(&state, proposals[i].data, proposals[i].len);
    }
    seed("statedb", "state-and-log", state.data, state.len);

    wire_buf_fini(&state);
    wire_buf_fini(&hello);
    wire_buf_fini(&stream);
    fuzz_state_close(&st);
}

/* ---- wal: segments written by the WAL itself ------------------------- */

static void
seeds_wal(void)
{
    char dir[] = "/tmp/shoal-mkseeds-XXXXXX";
    char wdir[64], path[128];
    struct wal_opts opts = {.segment_bytes = 2048};
    struct wire_buf segs = {0};
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    struct wal *w;
    DIR *d;

    if (!mkdtemp(dir) || wal_open(&w, dir, &opts, NULL) != 0) {
        die("wal_open");
    }
    wal_append_hardstate(w, 1, 7);
    for (size_t i = 0; i < n_proposals; i++) {
        if (wal_append_entry(w, i + 1, 1 + i / 4, proposals[i].data,
                             proposals[i].len) != 0 ||
            wal_sync(w) != 0) {
            die("wal_append_entry");
        }
    }
    if (n_proposals > 3 && wal_truncate_suffix(w, n_proposals - 2) != 0) {
        die("wal_truncate_suffix");
    }
    wal_append_hardstate(w, 3, 9);
    wal_sync(w);
    wal_close(w);

    snprintf(wdir, sizeof wdir, "%s/wal", dir);
    if (!(d = opendir(wdir))) {
        die(wdir);
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        names = realloc(names, (n + 1) * sizeof *names);
        if (!names || !(names[n] = str_dup(de->d_name))) {
            die("out of memory");
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);

    buf_u8(&segs, 2);
    buf_u8(&segs, 0);    /* flags: sealed, names right, no gap */
    buf_u8(&segs, 0x1f); /* tweak: every step after the recovery */
    for (size_t i = 0; i < n; i++) {
        struct wire_buf one = {0}, file = {0};
        char name[64];

        snprintf(path, sizeof path, "%s/%s", wdir, names[i]);
        read_file(path, &file);
        for (uint8_t mode = 0; mode < 2; mode++) {
            one.len = 0;
            buf_u8(&one, mode);
            buf_add(&one, file.data, file.len);
            snprintf(name, sizeof name, "%s-segment-%zu",
                     mode ? "sealed" : "raw", i + 1);
            seed("wal", name, one.data, one.len);
        }
        if (i < 4) {
            buf_field(&segs, file.data, file.len);
        }
        unlink(path);
        free(names[i]);
        wire_buf_fini(&one);
        wire_buf_fini(&file);
    }
    free(names);
    seed("wal", "segments", segs.data, segs.len);
    wire_buf_fini(&segs);
    rmdir(wdir);
    rmdir(dir);
}

/* ---- token ------------------------------------------------------------ */

static void
seeds_token(void)
{
    struct ca_root r;
    struct ca_node node;
    struct ca_buf der = {0}, csr = {0}, cert = {0};
    struct ca_issue iss = {.node_id = "seednode1", .role = CA_ROLE_MANAGER};
    char tok[CA_TOKEN_LEN + 1], tok2[CA_TOKEN_LEN + 1];
    struct wire_buf b = {0};

    ca_root_init(&r);
    ca_node_init(&node);
    if (ca_root_create(&r, "seedcluster", NULL) != 0 ||
        ca_cert_to_der(r.cert, &der) != 0 ||
        ca_token_new(der.data, der.len, tok, NULL) != 0 ||
        ca_token_new(der.data, der.len, tok2, NULL) != 0 ||
        ca_node_csr_new(&node, &csr, NULL) != 0 ||
        ca_root_sign(&r, csr.data, csr.len, &iss, &cert, NULL) != 0) {
        die("the CA");
    }

    buf_u8(&b, 0);
    buf_add(&b, tok, strlen(tok));
    seed("token", "text", b.data, b.len);
    b.len = 0;
    buf_u8(&b, 0);
    buf_add(&b,
            "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-"
            "1awxwuwd3z9j1z3puu7rcgdbx",
            84);
    seed("token", "text-docker", b.data, b.len);

    b.len = 0;
    buf_u8(&b, 1);
    buf_field(&b, tok2, strlen(tok2));
    buf_field(&b, tok, strlen(tok));
    buf_field(&b, tok2, strlen(tok2));
    seed("token", "check-worker", b.data, b.len);

    b.len = 0;
    buf_u8(&b, 2);
    buf_field(&b, tok, strlen(tok));
    buf_add(&b, der.data, der.len);
    seed("token", "pin-root-ca", b.data, b.len);
    b.len = 0;
    buf_u8(&b, 2);
    buf_field(&b, tok, strlen(tok));
    buf_add(&b, cert.data, cert.len);
    seed("token", "pin-node-cert", b.data, b.len);

    b.len = 0;
    buf_u8(&b, 3);
    buf_add(&b, csr.data, csr.len);
    seed("token", "csr", b.data, b.len);

    wire_buf_fini(&b);
    ca_buf_fini(&cert);
    ca_buf_fini(&csr);
    ca_buf_fini(&der);
    ca_node_fini(&node);
    ca_root_fini(&r);
}

/* ---- ctl -------------------------------------------------------------- */

/* One command line: a mode byte below 0x80, then words ended by NULs. */
static void
ctl_line(const char *name, ...)
{
    struct wire_buf b = {0};
    const char *w;
    va_list ap;

    buf_u8(&b, 0);
    va_start(ap, name);
    while ((w = va_arg(ap, const char *))) {
        buf_add(&b, w, strlen(w) + 1);
    }
    va_end(ap);
    seed("ctl", name, b.data, b.len - 1); /* no NUL after the last */
    wire_buf_fini(&b);
}

/* One value for parser number which (fuzz_ctl.c). */
static void
ctl_value(unsigned which, const char *name, const char *value)
{
    struct wire_buf b = {0};

    buf_u8(&b, (uint8_t)(0x80 | which));
    buf_add(&b, value, strlen(value));
    seed("ctl", name, b.data, b.len);
    wire_buf_fini(&b);
}

static void
seeds_ctl(void)
{
    ctl_line("service-create", "service", "create", "--name", "web", "--image",
             "nginx:1.25", "--replicas", "3", "--publish",
             "8080:80/tcp,mode=ingress", "--env", "A=1", "--label", "k=v",
             "--secret", "db:pw", "--config", "cfg", "--network", "net1",
             "--constraint", "node.role==manager", "--limit-cpu", "0.5",
             "--limit-memory", "64MiB", "--reserve-cpu", "0.25",
             "--reserve-memory", "1g", "--mode", "replicated", NULL);
    ctl_line("service-update", "-o", "json", "service", "update",
             "--image=nginx:1.26", "--env-add", "B=2", "--env-rm", "A",
             "--publish-add", "9090:90/udp", "--publish-rm", "80/tcp",
             "--secret-add", "s2", "--secret-rm", "db", "--force", "web", NULL);
    ctl_line("service-scale", "service", "scale", "web=5", "api=0", NULL);
    ctl_line("service-ls", "-q", "service", "ls", NULL);
    ctl_line("node-update", "node", "update", "--availability", "drain",
             "--role", "manager", "--label-add", "zone=a", "node1", NULL);
    ctl_line("network-create", "network", "create", "--driver", "overlay",
             "--subnet", "10.1.0.0/24", "--gateway", "10.1.0.1", "--attachable",
             "--opt", "k=v", "net1", NULL);
    ctl_line("secret-create", "secret", "create", "db-password", "-", NULL);
    ctl_line("cluster-update", "cluster", "update", "--certexpiry", "2160h",
             "--heartbeatperiod", "5s", "--taskhistory", "5",
             "--rotate-join-token", "worker", "default", NULL);
    ctl_line("watch", "watch", "--kind", "service", "--action", "create,update",
             "--since", "12", NULL);
    ctl_line("help", "help", "service", "create", NULL);
    ctl_line("globals", "-s", "x.sock", "-qo", "table", "--", "task", "ls",
             NULL);
    ctl_line("version", "--version", NULL);

    ctl_value(0, "value-duration", "1h30m0.5s");
    ctl_value(1, "value-size", "64MiB");
    ctl_value(2, "value-cpus", "0.000000001");
    ctl_value(3, "value-i64", "-9223372036854775808");
    ctl_value(4, "value-u64", "18446744073709551615");
    ctl_value(5, "value-kv", "key=value");
    ctl_value(6, "value-key", "key");
    ctl_value(7, "value-publish", "8080:80/sctp,mode=host");
    ctl_value(8, "value-port-rm-and-ref", "80/udp");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkseeds FOLDER\n");
        return 2;
    }
    root = argv[1];
    log_set_level(LOG_CRIT);
    seeds_state();
    seeds_wal();
    seeds_token();
    seeds_ctl();
    for (size_t i = 0; i < n_proposals; i++) {
        wire_buf_fini(&proposals[i]);
    }
    return 0;
}
