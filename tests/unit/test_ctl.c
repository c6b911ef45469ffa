/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_ctl.c: shoalctl's parsers, resolution, exit codes and usage
 * errors, and libshoal against a fake server.
 *
 * The fake server is a thread on a Unix socket in a temporary folder: it
 * speaks the hello, then runs a scripted handler per test (replies, lists
 * in several frames, status errors, garbage, a 4 GiB length, a close in
 * the middle of a frame), so the client is tested without a daemon.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../tools/ctl/ctl.h"
#include "base/base.h"
#include "shoal/client.h"

/* Parsers. */

TestSuite(ctl_parse, .timeout = 5.0);

/* Durations add up their parts in nanoseconds, Go-style. */
Test(ctl_parse, duration_accepts_units_and_sums)
{
    int64_t v = -1;

    cr_expect_eq(ctl_parse_duration("10s", &v), 0);
    cr_expect_eq(v, 10000000000LL);
    cr_expect_eq(ctl_parse_duration("1h30m", &v), 0);
    cr_expect_eq(v, 5400LL * 1000000000LL);
    cr_expect_eq(ctl_parse_duration("1.5s", &v), 0);
    cr_expect_eq(v, 1500000000LL);
    cr_expect_eq(ctl_parse_duration("250ms", &v), 0);
    cr_expect_eq(v, 250000000LL);
    cr_expect_eq(ctl_parse_duration("3us", &v), 0);
    cr_expect_eq(v, 3000LL);
    cr_expect_eq(ctl_parse_duration("7ns", &v), 0);
    cr_expect_eq(v, 7LL);
    cr_expect_eq(ctl_parse_duration("90d", &v), 0);
    cr_expect_eq(v, 90LL * 86400LL * 1000000000LL);
    cr_expect_eq(ctl_parse_duration("0", &v), 0);
    cr_expect_eq(v, 0);
}

/* Missing units, unknown units, signs, junk and overflow are refused and
 * leave the output alone. */
Test(ctl_parse, duration_rejects_malformed)
{
    const char *bad[] = {"", "10", "10x", "-1s", "s", "1h30", "1.s5",
                         "99999999999999999999h", "1e3s", " 1s"};
    int64_t v = 42;

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        cr_expect_eq(ctl_parse_duration(bad[i], &v), -EINVAL, "%s", bad[i]);
    }
    cr_expect_eq(v, 42);
}

/* Sizes use binary units in any spelling, as docker does. */
Test(ctl_parse, size_accepts_binary_units)
{
    int64_t v = 0;

    cr_expect_eq(ctl_parse_size("64MiB", &v), 0);
    cr_expect_eq(v, 64LL << 20);
    cr_expect_eq(ctl_parse_size("1g", &v), 0);
    cr_expect_eq(v, 1LL << 30);
    cr_expect_eq(ctl_parse_size("512", &v), 0);
    cr_expect_eq(v, 512);
    cr_expect_eq(ctl_parse_size("4kb", &v), 0);
    cr_expect_eq(v, 4096);
    cr_expect_eq(ctl_parse_size("1.5K", &v), 0);
    cr_expect_eq(v, 1536);
    cr_expect_eq(ctl_parse_size("2T", &v), 0);
    cr_expect_eq(v, 2LL << 40);
}

/* Unknown units, signs and sizes beyond int64 are refused. */
Test(ctl_parse, size_rejects_malformed)
{
    const char *bad[] = {"", "MiB", "64MiBs", "-1m", "64 MiB", "1x",
                         "9999999p", "1bb"};
    int64_t v = 7;

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        cr_expect_eq(ctl_parse_size(bad[i], &v), -EINVAL, "%s", bad[i]);
    }
    cr_expect_eq(v, 7);
}

/* CPUs become nano-CPUs exactly, without floating-point rounding. */
Test(ctl_parse, cpus_are_exact_nanocpus)
{
    int64_t v = 0;

    cr_expect_eq(ctl_parse_cpus("0.5", &v), 0);
    cr_expect_eq(v, 500000000LL);
    cr_expect_eq(ctl_parse_cpus("2", &v), 0);
    cr_expect_eq(v, 2000000000LL);
    cr_expect_eq(ctl_parse_cpus("0.001", &v), 0);
    cr_expect_eq(v, 1000000LL);
    cr_expect_eq(ctl_parse_cpus(".25", &v), 0);
    cr_expect_eq(v, 250000000LL);
    cr_expect_eq(ctl_parse_cpus("0.1234567891", &v), -EINVAL);
    cr_expect_eq(ctl_parse_cpus("-1", &v), -EINVAL);
    cr_expect_eq(ctl_parse_cpus("1c", &v), -EINVAL);
    cr_expect_eq(ctl_parse_cpus("", &v), -EINVAL);
}

/* Integers take the whole string and refuse overflow. */
Test(ctl_parse, integers_are_whole_and_bounded)
{
    int64_t i = 0;
    uint64_t u = 0;

    cr_expect_eq(ctl_parse_i64("-3", &i), 0);
    cr_expect_eq(i, -3);
    cr_expect_eq(ctl_parse_i64("9223372036854775807", &i), 0);
    cr_expect_eq(i, INT64_MAX);
    cr_expect_eq(ctl_parse_i64("-9223372036854775808", &i), 0);
    cr_expect_eq(i, INT64_MIN);
    cr_expect_eq(ctl_parse_i64("9223372036854775808", &i), -EINVAL);
    cr_expect_eq(ctl_parse_i64("3x", &i), -EINVAL);
    cr_expect_eq(ctl_parse_u64("18446744073709551615", &u), 0);
    cr_expect_eq(u, UINT64_MAX);
    cr_expect_eq(ctl_parse_u64("18446744073709551616", &u), -EINVAL);
    cr_expect_eq(ctl_parse_u64("-1", &u), -EINVAL);
}

/* key=value splits at the first '='; a label may omit the value, an
 * environment variable may not; the key is never empty. */
Test(ctl_parse, kv_splits_at_first_equals)
{
    const char *value = NULL;
    size_t klen = 0;

    cr_expect_eq(ctl_parse_kv("a=b=c", true, &klen, &value), 0);
    cr_expect_eq(klen, 1);
    cr_expect_str_eq(value, "b=c");
    cr_expect_eq(ctl_parse_kv("tier", false, &klen, &value), 0);
    cr_expect_eq(klen, 4);
    cr_expect_str_eq(value, "");
    cr_expect_eq(ctl_parse_kv("K=", true, &klen, &value), 0);
    cr_expect_str_eq(value, "");
    cr_expect_eq(ctl_parse_kv("tier", true, &klen, &value), -EINVAL);
    cr_expect_eq(ctl_parse_kv("=v", false, &klen, &value), -EINVAL);
    cr_expect_eq(ctl_parse_kv("", false, &klen, &value), -EINVAL);
}

/* Published ports: published and protocol optional, mode option. */
Test(ctl_parse, publish_forms)
{
    struct shoal_port_config p = {0};

    cr_assert_eq(ctl_parse_publish("8080:80/udp,mode=host", &p), 0);
    cr_expect_eq(p.published_port, 8080);
    cr_expect_eq(p.target_port, 80);
    cr_expect_eq(p.protocol, SHOAL_PROTO_UDP);
    cr_expect_eq(p.publish_mode, SHOAL_PUBLISH_HOST);

    cr_assert_eq(ctl_parse_publish("80", &p), 0);
    cr_expect_eq(p.published_port, 0);
    cr_expect_eq(p.target_port, 80);
    cr_expect_eq(p.protocol, SHOAL_PROTO_TCP);
    cr_expect_eq(p.publish_mode, SHOAL_PUBLISH_INGRESS);

    cr_assert_eq(ctl_parse_publish("443:8443,mode=ingress", &p), 0);
    cr_expect_eq(p.published_port, 443);
    cr_expect_eq(p.target_port, 8443);
    cr_expect_eq(ctl_parse_publish("53/sctp", &p), 0);
    cr_expect_eq(p.protocol, SHOAL_PROTO_SCTP);
}

/* Port zero or above 65535, bad protocols and options are refused. */
Test(ctl_parse, publish_rejects_malformed)
{
    const char *bad[] = {"",          "0",        "65536",  "80/icmp",
                         "80:",       ":80",      "a:80",   "80,mode=x",
                         "80,",       "1:2:3",    "80/tcp:90", "80,foo"};
    struct shoal_port_config p = {0};

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        cr_expect_eq(ctl_parse_publish(bad[i], &p), -EINVAL, "%s", bad[i]);
    }
}

/* A port to remove is target[/proto], tcp by default. */
Test(ctl_parse, port_rm_defaults_to_tcp)
{
    uint32_t t = 0, proto = 9;

    cr_expect_eq(ctl_parse_port_rm("80", &t, &proto), 0);
    cr_expect_eq(t, 80);
    cr_expect_eq(proto, SHOAL_PROTO_TCP);
    cr_expect_eq(ctl_parse_port_rm("53/udp", &t, &proto), 0);
    cr_expect_eq(proto, SHOAL_PROTO_UDP);
    cr_expect_eq(ctl_parse_port_rm("53/x", &t, &proto), -EINVAL);
}

/* Secret references are name[:target]; both parts non-empty. */
Test(ctl_parse, ref_name_and_target)
{
    const char *target = "x";
    size_t n = 0;

    cr_expect_eq(ctl_parse_ref("db-pass:/run/pw", &n, &target), 0);
    cr_expect_eq(n, 7);
    cr_expect_str_eq(target, "/run/pw");
    cr_expect_eq(ctl_parse_ref("db-pass", &n, &target), 0);
    cr_expect_null(target);
    cr_expect_eq(ctl_parse_ref(":t", &n, &target), -EINVAL);
    cr_expect_eq(ctl_parse_ref("n:", &n, &target), -EINVAL);
    cr_expect_eq(ctl_parse_ref("", &n, &target), -EINVAL);
}

/* Resolution. */

TestSuite(ctl_resolve, .timeout = 5.0);

static const struct ctl_cand cands[] = {
    {"abc111", "web", NULL},
    {"abc222", "abc111x", NULL},
    {"def333", "abc", "host-abc"},
    {"xyz444", "def333", NULL},
};

/* An exact id wins over a name equal to it and over longer ids. */
Test(ctl_resolve, exact_id_first)
{
    size_t idx = 99;

    cr_expect_eq(ctl_resolve_pick(cands, 4, "def333", NULL, &idx), 1);
    cr_expect_eq(idx, 2);
}

/* An exact name wins over an id prefix it also is (nomad PR #23502). */
Test(ctl_resolve, exact_name_before_prefix)
{
    size_t idx = 99;

    cr_expect_eq(ctl_resolve_pick(cands, 4, "abc", NULL, &idx), 1);
    cr_expect_eq(idx, 2);
    cr_expect_eq(ctl_resolve_pick(cands, 4, "host-abc", NULL, &idx), 1);
    cr_expect_eq(idx, 2);
}

/* A unique id prefix resolves; a shared one is ambiguous, and exactly
 * the candidates sharing it are marked. */
Test(ctl_resolve, prefix_unique_or_ambiguous)
{
    bool matched[4];
    size_t idx = 99;

    cr_expect_eq(ctl_resolve_pick(cands, 4, "xy", NULL, &idx), 1);
    cr_expect_eq(idx, 3);
    cr_expect_eq(ctl_resolve_pick(cands, 4, "ab", matched, &idx), 2);
    cr_expect(matched[0] && matched[1] && !matched[2] && !matched[3]);
}

/* Nothing matching and the empty string both give no match. */
Test(ctl_resolve, no_match)
{
    size_t idx = 99;

    cr_expect_eq(ctl_resolve_pick(cands, 4, "zzz", NULL, &idx), 0);
    cr_expect_eq(ctl_resolve_pick(cands, 4, "", NULL, &idx), 0);
    cr_expect_eq(idx, 99);
}

/* Two objects with the same exact name (nodes) are ambiguous. */
Test(ctl_resolve, duplicate_names_are_ambiguous)
{
    const struct ctl_cand twins[] = {{"n1", "worker", NULL},
                                     {"n2", NULL, "worker"}};
    size_t idx;

    cr_expect_eq(ctl_resolve_pick(twins, 2, "worker", NULL, &idx), 2);
}

/* Exit codes and usage. */

TestSuite(ctl_cli, .timeout = 10.0);

/* Each status maps to its documented exit code. */
Test(ctl_cli, exit_codes_follow_status)
{
    cr_expect_eq(ctl_exit_for_status(SHOAL_OK), 0);
    cr_expect_eq(ctl_exit_for_status(SHOAL_NOT_FOUND), 3);
    cr_expect_eq(ctl_exit_for_status(SHOAL_ALREADY_EXISTS), 7);
    cr_expect_eq(ctl_exit_for_status(SHOAL_CONFLICT), 7);
    cr_expect_eq(ctl_exit_for_status(SHOAL_PERMISSION_DENIED), 6);
    cr_expect_eq(ctl_exit_for_status(SHOAL_UNAVAILABLE), 5);
    cr_expect_eq(ctl_exit_for_status(SHOAL_DEADLINE_EXCEEDED), 5);
    cr_expect_eq(ctl_exit_for_status(SHOAL_INVALID_ARGUMENT), 1);
    cr_expect_eq(ctl_exit_for_status(SHOAL_FAILED_PRECONDITION), 1);
    cr_expect_eq(ctl_exit_for_status(SHOAL_INTERNAL), 1);
    cr_expect_eq(ctl_exit_for_status(999), 1);
}

static const struct ctl_opt test_opts[] = {
    {"name", 0, "NAME", "a name"},
    {"env", 'e', "K=V", "repeatable"},
    {"force", 'f', NULL, "a flag"},
    {NULL, 0, NULL, NULL},
};

static int
never_run(struct ctl *ctl, const struct ctl_args *a)
{
    (void)ctl;
    (void)a;
    return 99;
}

static const struct ctl_cmd test_cmd = {
    "thing", "make", NULL, "A [B]", 1, 2, "test", test_opts, never_run,
};

static int
parse(struct ctl *ctl, struct ctl_args *a, int argc, const char **argv)
{
    return ctl_args_parse(ctl, &test_cmd, argc, (char **)argv, a);
}

/* Options mix with positionals in every spelling; repeats are kept in
 * order; globals are applied; "--" ends options. */
Test(ctl_cli, args_parse_all_forms)
{
    const char *argv[] = {"--name=a", "x", "-e", "K=1", "--env", "K=2",
                          "-qf",      "-ojson", "--", "-y"};
    struct ctl ctl = {0};
    struct ctl_args a;
    size_t it = 0;

    cr_assert_eq(parse(&ctl, &a, 10, argv), 0);

    cr_expect_str_eq(ctl_arg(&a, "name"), "a");
    cr_expect_str_eq(ctl_arg_next(&a, "env", &it), "K=1");
    cr_expect_str_eq(ctl_arg_next(&a, "env", &it), "K=2");
    cr_expect_null(ctl_arg_next(&a, "env", &it));
    cr_expect(ctl_flag(&a, "force"));
    cr_expect(ctl.quiet);
    cr_expect_eq(ctl.output, CTL_OUT_JSON);
    cr_expect_eq(a.n_pos, 2);
    cr_expect_str_eq(a.pos[0], "x");
    cr_expect_str_eq(a.pos[1], "-y");
    ctl_args_fini(&a);
}

/* Unknown options, missing values, values on flags, and wrong counts of
 * positionals are usage errors (exit 2). */
Test(ctl_cli, args_usage_errors_exit_2)
{
    const char *unknown[] = {"x", "--nope"};
    const char *missing[] = {"x", "--name"};
    const char *flagval[] = {"x", "--force=yes"};
    const char *many[] = {"x", "y", "z"};
    const char *badfmt[] = {"x", "-o", "yaml"};
    struct ctl_args a;

    cr_expect_eq(parse(NULL, &a, 2, unknown), CTL_EXIT_USAGE);
    cr_expect_eq(parse(NULL, &a, 2, missing), CTL_EXIT_USAGE);
    cr_expect_eq(parse(NULL, &a, 2, flagval), CTL_EXIT_USAGE);
    cr_expect_eq(parse(NULL, &a, 3, many), CTL_EXIT_USAGE);
    cr_expect_eq(parse(NULL, &a, 0, many), CTL_EXIT_USAGE);
    cr_expect_eq(parse(NULL, &a, 3, badfmt), CTL_EXIT_USAGE);
    cr_expect_null(a.v);
}

/* --help skips the positional count, so help always works. */
Test(ctl_cli, help_needs_no_positionals)
{
    const char *argv[] = {"--help"};
    struct ctl_args a;

    cr_assert_eq(parse(NULL, &a, 1, argv), 0);
    cr_expect(a.help);
    ctl_args_fini(&a);
}

static int
run_main(int argc, const char **argv)
{
    return ctl_main(argc, (char **)argv);
}

/* Whole command lines that are wrong exit 2 before any connection, and
 * help exits 0, for every noun. */
Test(ctl_cli, main_usage_and_help)
{
    const char *none[] = {"shoalctl"};
    const char *noun[] = {"shoalctl", "-s", "/nonexistent", "frob"};
    const char *verb[] = {"shoalctl", "service", "frob"};
    const char *req[] = {"shoalctl", "-s", "/nonexistent", "service",
                         "create", "--name", "x"};
    const char *scale[] = {"shoalctl", "-s", "/nonexistent", "service",
                           "scale", "web"};
    const char *help[] = {"shoalctl", "node", "update", "--help"};
    const char *helpn[] = {"shoalctl", "help", "secret"};

    cr_expect_eq(run_main(1, none), CTL_EXIT_USAGE);
    cr_expect_eq(run_main(4, noun), CTL_EXIT_USAGE);
    cr_expect_eq(run_main(3, verb), CTL_EXIT_USAGE);
    cr_expect_eq(run_main(7, req), CTL_EXIT_USAGE);
    cr_expect_eq(run_main(6, scale), CTL_EXIT_USAGE);
    cr_expect_eq(run_main(4, help), CTL_EXIT_OK);
    cr_expect_eq(run_main(3, helpn), CTL_EXIT_OK);
}

/* A socket that does not exist is "daemon unavailable", exit 5. */
Test(ctl_cli, missing_socket_exits_5)
{
    const char *argv[] = {"shoalctl", "-s", "/nonexistent/shoal.sock",
                          "service", "ls"};

    cr_expect_eq(run_main(5, argv), CTL_EXIT_UNAVAILABLE);
}

/* The fake server. */

struct fake {
    char dir[64];
    char path[96];
    int listen_fd;
    pthread_t thread;
    void (*serve)(int fd); /* the test's script after the hello */
    bool hello_refused;    /* answer the hello with a status */
};

static struct fake fk;

/* Read one whole frame; false at EOF or on error. */
static bool
srv_read(int fd, struct wire_hdr *h, struct wire_buf *body)
{
    uint8_t hdr[WIRE_HDR_BYTES];
    size_t got = 0;

    while (got < sizeof hdr) {
        ssize_t n = read(fd, hdr + got, sizeof hdr - got);

        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    if (wire_hdr_decode(h, hdr, sizeof hdr) < 0) {
        return false;
    }
    body->len = 0;
    wire_buf_reserve(body, h->len + 4 - WIRE_HDR_BYTES);
    while (body->len < h->len + 4 - WIRE_HDR_BYTES) {
        ssize_t n = read(fd, body->data + body->len,
                         h->len + 4 - WIRE_HDR_BYTES - body->len);

        if (n <= 0) {
            return false;
        }
        body->len += (size_t)n;
    }
    return true;
}

static void
srv_write(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);

        if (w <= 0) {
            return;
        }
        b += w;
        n -= (size_t)w;
    }
}

static void
srv_send(int fd, uint16_t type, uint8_t flags, uint64_t id,
         const struct wire_type *t, const void *obj)
{
    struct wire_buf out = {0};

    wire_frame_append(&out, type, flags, id, t, obj);
    srv_write(fd, out.data, out.len);
    wire_buf_fini(&out);
}

static void
srv_status(int fd, uint64_t id, int code, const char *msg)
{
    struct wire_buf out = {0};

    wire_status_append(&out, id, code, "%s", msg);
    srv_write(fd, out.data, out.len);
    wire_buf_fini(&out);
}

/* Read the next request; returns its id and type (0 type at EOF). */
static uint16_t
srv_next(int fd, uint64_t *id)
{
    struct wire_buf body = {0};
    struct wire_hdr h = {0};
    bool ok = srv_read(fd, &h, &body);

    wire_buf_fini(&body);
    *id = h.id;
    return ok ? h.type : 0;
}

static void *
srv_main(void *arg)
{
    struct shoal_hello_reply hr = {
        .proto = WIRE_PROTO_VERSION,
        .node_id = "node1",
        .server_version = "9.9.9",
    };
    uint64_t id;
    int fd = accept(fk.listen_fd, NULL, NULL);

    (void)arg;
    if (fd < 0) {
        return NULL;
    }
    if (srv_next(fd, &id) == WIRE_MSG_HELLO) {
        if (fk.hello_refused) {
            srv_status(fd, 0, SHOAL_UNAVAILABLE, "shutting down");
        } else {
            srv_send(fd, WIRE_MSG_HELLO | WIRE_REPLY, 0, 0,
                     &wire_type_hello_reply, &hr);
            fk.serve(fd);
        }
    }
    /* Drain until the client closes, so that its writes never fail. */
    while (srv_next(fd, &id) != 0) {
    }
    close(fd);
    return NULL;
}

static void
fake_start(void (*serve)(int fd))
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(fk.dir, sizeof fk.dir, "/tmp/shoal-ctl-XXXXXX");
    cr_assert_not_null(mkdtemp(fk.dir));
    snprintf(fk.path, sizeof fk.path, "%s/s.sock", fk.dir);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", fk.path);
    fk.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert(fk.listen_fd >= 0);
    cr_assert_eq(bind(fk.listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fk.listen_fd, 4), 0);
    fk.serve = serve;
    cr_assert_eq(pthread_create(&fk.thread, NULL, srv_main, NULL), 0);
}

static void
fake_stop(void)
{
    pthread_join(fk.thread, NULL);
    close(fk.listen_fd);
    unlink(fk.path);
    rmdir(fk.dir);
    memset(&fk, 0, sizeof fk);
}

static struct shoal_client *
fake_connect(void)
{
    struct shoal_client *c = NULL;
    struct shoal_error err;

    cr_assert_eq(shoal_connect(&c, fk.path, 5000, "test", &err), 0, "%s",
                 err.message);
    return c;
}

TestSuite(client, .timeout = 10.0);

static void
serve_get(int fd)
{
    struct shoal_service s = {.id = "svc1", .meta = {.version = 7}};
    uint64_t id;

    srv_next(fd, &id);
    srv_send(fd, WIRE_MSG_GET_SERVICE | WIRE_REPLY, 0, id,
             &wire_type_service, &s);
}

/* The hello reply is kept, and a call decodes its reply. */
Test(client, hello_then_call)
{
    struct shoal_id_request req = {.id = "svc1"};
    struct shoal_service s = {0};
    struct shoal_error err;
    struct shoal_client *c;

    fake_start(serve_get);
    c = fake_connect();

    cr_expect_str_eq(shoal_server_hello(c)->server_version, "9.9.9");
    cr_assert_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err), 0);
    cr_expect_str_eq(s.id, "svc1");
    cr_expect_eq(s.meta.version, 7);

    wire_free(&wire_type_service, &s);
    shoal_close(c);
    fake_stop();
}

static void
serve_list(int fd)
{
    struct shoal_service svcs[2] = {{.id = "a"}, {.id = "b"}};
    struct shoal_list_reply r = {.services = svcs, .n_services = 2};
    uint64_t id;

    srv_next(fd, &id);
    srv_send(fd, WIRE_MSG_LIST_SERVICES | WIRE_REPLY, WIRE_F_MORE, id,
             &wire_type_list_reply, &r);
    svcs[0].id = "c";
    svcs[1].id = "d";
    srv_send(fd, WIRE_MSG_LIST_SERVICES | WIRE_REPLY, WIRE_F_MORE, id,
             &wire_type_list_reply, &r);
    r.n_services = 1;
    svcs[0].id = "e";
    srv_send(fd, WIRE_MSG_LIST_SERVICES | WIRE_REPLY, 0, id,
             &wire_type_list_reply, &r);
}

/* A list in three frames comes back as one list, in order. */
Test(client, list_in_frames_is_merged)
{
    struct shoal_list_request req = {0};
    struct shoal_list_reply r = {0};
    struct shoal_error err;
    struct shoal_client *c;
    const char *want[] = {"a", "b", "c", "d", "e"};

    fake_start(serve_list);
    c = fake_connect();

    cr_assert_eq(shoal_call(c, WIRE_MSG_LIST_SERVICES, &req, &r, &err), 0);
    cr_assert_eq(r.n_services, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_expect_str_eq(r.services[i].id, want[i]);
    }

    wire_free(&wire_type_list_reply, &r);
    shoal_close(c);
    fake_stop();
}

static void
serve_conflict(int fd)
{
    struct wire_buf out = {0};
    struct shoal_status_msg st = {.code = SHOAL_CONFLICT,
                                  .message = "update out of sequence",
                                  .current_version = 42};
    uint64_t id;

    srv_next(fd, &id);
    wire_frame_append(&out, WIRE_MSG_STATUS, 0, id, &wire_type_status_msg,
                      &st);
    srv_write(fd, out.data, out.len);
    wire_buf_fini(&out);
    srv_next(fd, &id);
    srv_status(fd, id, SHOAL_NOT_FOUND, "service x not found");
}

/* A status frame becomes the call's error with all its details, and the
 * connection stays usable. */
Test(client, status_frame_is_error)
{
    struct shoal_id_request req = {.id = "x"};
    struct shoal_service s = {0};
    struct shoal_error err;
    struct shoal_client *c;

    fake_start(serve_conflict);
    c = fake_connect();

    cr_expect_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err),
                 -SHOAL_CONFLICT);
    cr_expect_str_eq(err.message, "update out of sequence");
    cr_expect_eq(err.current_version, 42);
    cr_expect(!err.local);
    cr_expect_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err),
                 -SHOAL_NOT_FOUND);
    cr_expect_str_eq(err.message, "service x not found");
    cr_expect_null(s.id);

    shoal_close(c);
    fake_stop();
}

static void
serve_garbage(int fd)
{
    uint8_t junk[32];
    uint64_t id;

    memset(junk, 0xff, sizeof junk);
    srv_next(fd, &id);
    srv_write(fd, junk, sizeof junk);
}

/* Garbage from the server (here a length of 4 GiB) is an error, breaks
 * the connection, and later calls fail as unavailable. */
Test(client, garbage_and_huge_length_fail_cleanly)
{
    struct shoal_id_request req = {.id = "x"};
    struct shoal_service s = {0};
    struct shoal_error err;
    struct shoal_client *c;

    fake_start(serve_garbage);
    c = fake_connect();

    cr_expect_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err),
                 -SHOAL_INTERNAL);
    cr_expect(err.local);
    cr_expect_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err),
                 -SHOAL_UNAVAILABLE);

    shoal_close(c);
    fake_stop();
}

static void
serve_bad_body(int fd)
{
    uint8_t frame[WIRE_HDR_BYTES + 3] = {0};
    uint64_t id;

    srv_next(fd, &id);
    /* A well-framed reply whose body is a truncated field header. */
    frame[3] = WIRE_HDR_BYTES - 4 + 3;
    frame[4] = WIRE_PROTO_VERSION;
    frame[6] = (WIRE_MSG_GET_SERVICE | WIRE_REPLY) >> 8;
    frame[7] = (WIRE_MSG_GET_SERVICE | WIRE_REPLY) & 0xff;
    frame[15] = (uint8_t)id;
    frame[16] = 0x00;
    frame[17] = 0x01;
    frame[18] = 0xff;
    srv_write(fd, frame, sizeof frame);
}

/* A reply whose body does not decode is an error, not a crash. */
Test(client, malformed_body_is_error)
{
    struct shoal_id_request req = {.id = "x"};
    struct shoal_service s = {0};
    struct shoal_error err;
    struct shoal_client *c;

    fake_start(serve_bad_body);
    c = fake_connect();

    cr_expect_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err),
                 -SHOAL_INTERNAL);
    cr_expect_null(s.id);

    shoal_close(c);
    fake_stop();
}

static void
serve_half(int fd)
{
    struct wire_buf out = {0};
    struct shoal_service s = {.id = "svc1"};
    uint64_t id;

    srv_next(fd, &id);
    wire_frame_append(&out, WIRE_MSG_GET_SERVICE | WIRE_REPLY, 0, id,
                      &wire_type_service, &s);
    srv_write(fd, out.data, out.len / 2);
    wire_buf_fini(&out);
    shutdown(fd, SHUT_WR);
}

/* The server closing in the middle of a reply is "unavailable". */
Test(client, eof_mid_reply_is_unavailable)
{
    struct shoal_id_request req = {.id = "x"};
    struct shoal_service s = {0};
    struct shoal_error err;
    struct shoal_client *c;

    fake_start(serve_half);
    c = fake_connect();

    cr_expect_eq(shoal_call(c, WIRE_MSG_GET_SERVICE, &req, &s, &err),
                 -SHOAL_UNAVAILABLE);
    cr_expect(strstr(err.message, "middle") != NULL, "%s", err.message);

    shoal_close(c);
    fake_stop();
}

static void
serve_none(int fd)
{
    (void)fd;
}

/* A hello answered with a status fails the connect with that status. */
Test(client, refused_hello_fails_connect)
{
    struct shoal_client *c = (void *)1;
    struct shoal_error err;

    fk.hello_refused = true;
    fake_start(serve_none);

    cr_expect_eq(shoal_connect(&c, fk.path, 5000, NULL, &err),
                 -SHOAL_UNAVAILABLE);
    cr_expect_null(c);
    cr_expect_str_eq(err.message, "shutting down");

    fake_stop();
}

/* No socket file: unavailable, with the path in the message. */
Test(client, missing_socket_is_unavailable)
{
    struct shoal_client *c = NULL;
    struct shoal_error err;

    cr_expect_eq(shoal_connect(&c, "/nonexistent/x.sock", 1000, NULL, &err),
                 -SHOAL_UNAVAILABLE);
    cr_expect(strstr(err.message, "/nonexistent/x.sock") != NULL);
}

static void
serve_reversed(int fd)
{
    struct shoal_stats_reply st = {0};
    uint64_t ids[3];

    for (int i = 0; i < 3; i++) {
        srv_next(fd, &ids[i]);
    }
    for (int i = 2; i >= 0; i--) {
        st.requests = ids[i];
        srv_send(fd, WIRE_MSG_STATS | WIRE_REPLY, 0, ids[i],
                 &wire_type_stats_reply, &st);
    }
}

/* Pipelined requests get replies in any order, matched by id; a blocking
 * call sets aside the frames of other requests for shoal_recv. */
Test(client, pipelined_replies_match_ids)
{
    struct shoal_stats_reply st = {0};
    struct shoal_frame f;
    struct shoal_error err;
    struct shoal_client *c;
    uint64_t a, b;

    fake_start(serve_reversed);
    c = fake_connect();

    cr_assert_eq(shoal_send(c, WIRE_MSG_STATS, NULL, &a, &err), 0);
    cr_assert_eq(shoal_send(c, WIRE_MSG_STATS, NULL, &b, &err), 0);
    cr_assert_eq(shoal_call(c, WIRE_MSG_STATS, NULL, &st, &err), 0);
    cr_expect_eq(st.requests, b + 1);
    cr_assert_eq(shoal_recv(c, &f, &err), 0);
    cr_expect_eq(f.id, b);
    shoal_frame_fini(&f);
    cr_assert_eq(shoal_recv(c, &f, &err), 0);
    cr_expect_eq(f.id, a);
    cr_expect_eq(shoal_frame_decode(&f, WIRE_MSG_STATS, &st, &err), 0);
    cr_expect_eq(st.requests, a);
    shoal_frame_fini(&f);

    shoal_close(c);
    fake_stop();
}

static void
serve_watch(int fd)
{
    struct shoal_watch_message empty = {0};
    struct shoal_service s = {.id = "w1"};
    struct shoal_watch_event ev = {.action = SHOAL_ACTION_CREATE,
                                   .object = {.service = &s}};
    struct shoal_watch_message m = {.events = &ev, .n_events = 1,
                                    .version = 12};
    uint64_t id, cancel;

    srv_next(fd, &id);
    srv_send(fd, WIRE_MSG_WATCH | WIRE_REPLY, 0, id,
             &wire_type_watch_message, &empty);
    srv_send(fd, WIRE_MSG_WATCH | WIRE_REPLY, WIRE_F_MORE, id,
             &wire_type_watch_message, &m);
    if (srv_next(fd, &cancel) == WIRE_MSG_CANCEL && cancel == id) {
        srv_status(fd, id, SHOAL_CANCELLED, "cancelled");
    }
}

/* A watch confirms, streams messages, and ends after a cancel. */
Test(client, watch_stream_and_cancel)
{
    struct shoal_watch_request req = {0};
    struct shoal_watch_message m = {0};
    struct shoal_error err;
    struct shoal_client *c;
    uint64_t stream;

    fake_start(serve_watch);
    c = fake_connect();

    cr_assert_eq(shoal_watch_start(c, &req, &stream, &err), 0);
    cr_assert_eq(shoal_watch_next(c, stream, &m, &err), 0);
    cr_expect_eq(m.version, 12);
    cr_assert_eq(m.n_events, 1);
    cr_expect_str_eq(m.events[0].object.service->id, "w1");
    wire_free(&wire_type_watch_message, &m);
    cr_assert_eq(shoal_watch_cancel(c, stream, &err), 0);
    cr_expect_eq(shoal_watch_next(c, stream, &m, &err), 1);

    shoal_close(c);
    fake_stop();
}

static void
serve_ambiguous(int fd)
{
    struct shoal_service svcs[2] = {
        {.id = "ab1", .spec.annotations.name = "one"},
        {.id = "ab2", .spec.annotations.name = "two"},
    };
    struct shoal_list_reply empty = {0};
    struct shoal_list_reply two = {.services = svcs, .n_services = 2};
    uint64_t id;

    srv_next(fd, &id); /* get by id */
    srv_status(fd, id, SHOAL_NOT_FOUND, "not found");
    srv_next(fd, &id); /* list by name */
    srv_send(fd, WIRE_MSG_LIST_SERVICES | WIRE_REPLY, 0, id,
             &wire_type_list_reply, &empty);
    srv_next(fd, &id); /* list by id prefix */
    srv_send(fd, WIRE_MSG_LIST_SERVICES | WIRE_REPLY, 0, id,
             &wire_type_list_reply, &two);
}

/* shoalctl exits 4 when a prefix matches two services. */
Test(client, ctl_ambiguous_prefix_exits_4)
{
    const char *argv[] = {"shoalctl", "-s", NULL, "service", "inspect",
                          "ab"};

    fake_start(serve_ambiguous);
    argv[2] = fk.path;

    cr_expect_eq(run_main(6, argv), CTL_EXIT_AMBIGUOUS);

    fake_stop();
}

static void
serve_exists(int fd)
{
    uint64_t id;

    srv_next(fd, &id);
    srv_status(fd, id, SHOAL_ALREADY_EXISTS,
               "name conflicts with an existing object");
}

/* A create the daemon refuses as existing exits 7. */
Test(client, ctl_already_exists_exits_7)
{
    const char *argv[] = {"shoalctl", "-s",      NULL,  "network",
                          "create",   "backend"};

    fake_start(serve_exists);
    argv[2] = fk.path;

    cr_expect_eq(run_main(6, argv), CTL_EXIT_CONFLICT);

    fake_stop();
}

/* What the fake server decoded from the last create_service request. */
static struct shoal_create_service_request captured;

/* Read the next request and decode its body as t into obj. */
static uint16_t
srv_next_body(int fd, uint64_t *id, const struct wire_type *t, void *obj)
{
    struct wire_buf body = {0};
    struct wire_hdr h = {0};
    bool ok = srv_read(fd, &h, &body);

    if (ok) {
        wire_decode(t, obj, body.data, body.len);
    }
    wire_buf_fini(&body);
    *id = h.id;
    return ok ? h.type : 0;
}

static void
serve_create(int fd)
{
    struct shoal_secret sec = {.id = "sec1",
                               .spec.annotations.name = "db"};
    struct shoal_service out = {.id = "svc9"};
    uint64_t id;

    srv_next(fd, &id); /* get_secret "db" */
    srv_send(fd, WIRE_MSG_GET_SECRET | WIRE_REPLY, 0, id, &wire_type_secret,
             &sec);
    srv_next_body(fd, &id, &wire_type_create_service_request, &captured);
    srv_send(fd, WIRE_MSG_CREATE_SERVICE | WIRE_REPLY, 0, id,
             &wire_type_service, &out);
}

/* service create turns its flags into the spec the daemon receives,
 * with the secret given by name sent by id. */
Test(client, ctl_service_create_builds_spec)
{
    const char *argv[] = {
        "shoalctl", "-s", NULL, "service", "create", "--name", "web",
        "--image", "nginx:1", "--replicas", "3", "--env", "A=1",
        "--label", "tier=front", "--publish", "8080:80",
        "--limit-memory", "64MiB", "--reserve-cpu", "0.5",
        "--secret", "db:pw", "--constraint", "node.role==manager",
    };
    struct shoal_service_spec *s;
    struct shoal_container_spec *c;

    fake_start(serve_create);
    argv[2] = fk.path;

    cr_assert_eq(run_main(ARRAY_LEN(argv), argv), CTL_EXIT_OK);
    fake_stop();
    s = captured.spec;
    cr_assert_not_null(s);
    c = s->task.container;
    cr_assert_not_null(c);
    cr_expect_str_eq(s->annotations.name, "web");
    cr_expect_str_eq(wire_map_get(&s->annotations.labels, "tier"), "front");
    cr_expect_eq(s->mode.kind, SHOAL_MODE_REPLICATED);
    cr_expect_eq(s->mode.replicas, 3);
    cr_expect_str_eq(c->image, "nginx:1");
    cr_assert_eq(c->env.n, 1);
    cr_expect_str_eq(c->env.v[0], "A=1");
    cr_assert_eq(c->n_secrets, 1);
    cr_expect_str_eq(c->secrets[0].secret_id, "sec1");
    cr_expect_str_eq(c->secrets[0].secret_name, "db");
    cr_expect_str_eq(c->secrets[0].file.name, "pw");
    cr_assert_not_null(s->endpoint);
    cr_assert_eq(s->endpoint->n_ports, 1);
    cr_expect_eq(s->endpoint->ports[0].published_port, 8080);
    cr_expect_eq(s->endpoint->ports[0].target_port, 80);
    cr_expect_eq(s->task.resources.limits.memory_bytes, 64LL << 20);
    cr_expect_eq(s->task.resources.reservations.nano_cpus, 500000000LL);
    cr_assert_eq(s->task.placement.constraints.n, 1);
    wire_free(&wire_type_create_service_request, &captured);
}

static void
serve_networks(int fd)
{
    struct shoal_network nets[2] = {
        {.id = "n1", .spec = {.annotations.name = "ingress", .ingress = 1}},
        {.id = "n22", .spec.annotations.name = "backend"},
    };
    struct shoal_list_reply r = {.networks = nets, .n_networks = 2};
    uint64_t id;

    srv_next(fd, &id);
    srv_send(fd, WIRE_MSG_LIST_NETWORKS | WIRE_REPLY, 0, id,
             &wire_type_list_reply, &r);
}

static void
redirect_stdout(void)
{
    cr_redirect_stdout();
}

/* network ls prints an aligned table with a header row. */
Test(client, ctl_ls_prints_aligned_table, .init = redirect_stdout)
{
    const char *argv[] = {"shoalctl", "-s", NULL, "network", "ls"};

    fake_start(serve_networks);
    argv[2] = fk.path;

    cr_assert_eq(run_main(5, argv), CTL_EXIT_OK);
    fake_stop();
    fflush(stdout);
    cr_assert_stdout_eq_str("ID  NAME    DRIVER INGRESS\n"
                            "n1  ingress        ingress\n"
                            "n22 backend        \n");
}
