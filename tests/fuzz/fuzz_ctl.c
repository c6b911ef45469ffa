/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_ctl.c: a libFuzzer target for shoalctl's command line: the value
 * parsers of tools/ctl/parse.c and the whole of ctl_main().
 *
 * The first byte picks a mode. From 0x80 up, the rest (up to a NUL) is
 * one value for the parser numbered by the byte's low bits: duration,
 * size, CPUs, i64, u64, key=value (with and without a required value),
 * published port, port to remove, secret reference. Below 0x80, the rest
 * is a command line: the words between NULs become argv[1..] of
 * ctl_main(), the same entry as the shoalctl binary's main().
 *
 * ctl_main() needs no daemon to be fuzzed: every command parses its
 * arguments before it connects, and the connection fails at once, since
 * $SHOAL_SOCKET names a socket that does not exist. To keep the fuzzer
 * from reaching anything else on this machine, ctl_main() runs with an
 * empty temporary folder as its working folder and stdin from
 * /dev/null, and a command line with an absolute path or a ".." is
 * skipped: so no word can name a socket (-s), a device or a file (secret
 * create NAME FILE) outside that folder. shoalctl prints on stdout and
 * stderr: libFuzzer runs this target with -close_fd_mask=3 and the
 * replay with -q.
 *
 * Properties: each parser returns 0 or -EINVAL and leaves its outputs
 * unchanged on -EINVAL (ctl.h); accepted values are in range (durations,
 * sizes and CPUs not negative, ports 1-65535, integers as strtoll and
 * strtoull read them); ctl_main() returns one of the documented exit
 * statuses (0-7) and leaks nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "../../tools/ctl/ctl.h"

#define MAX_WORDS 64
#define SENTINEL 0x5a5a5a5a5a5a5a5aLL

static int sandbox_fd = -1; /* the empty folder ctl_main() runs in */
static char sandbox[64];

static void
sandbox_remove(void)
{
    rmdir(sandbox);
}

/* Make the folder, point $SHOAL_SOCKET into it, and empty stdin. */
static int
sandbox_make(void)
{
    if (sandbox_fd >= 0) {
        return 0;
    }
    snprintf(sandbox, sizeof sandbox, "/tmp/shoal-fuzz-ctl-XXXXXX");
    if (!mkdtemp(sandbox)) {
        return -1;
    }
    atexit(sandbox_remove);
    sandbox_fd = open(sandbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sandbox_fd < 0 || setenv("SHOAL_SOCKET", "none.sock", 1) != 0 ||
        !freopen("/dev/null", "r", stdin)) {
        return -1;
    }
    return 0;
}

static void
fuzz_i64_parser(int (*parse)(const char *, int64_t *), const char *s)
{
    int64_t v = SENTINEL;
    int rc = parse(s, &v);

    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    FUZZ_CHECK(rc == 0 ? v >= 0 : v == SENTINEL);
}

static void
fuzz_value(unsigned which, const char *s)
{
    struct shoal_port_config p, q;
    uint32_t target = 7, proto = 7;
    const char *value = NULL;
    size_t n = 99;
    int64_t i = SENTINEL;
    uint64_t u = (uint64_t)SENTINEL;
    char *end;
    int rc;

    switch (which % 9) {
    case 0:
        fuzz_i64_parser(ctl_parse_duration, s);
        break;
    case 1:
        fuzz_i64_parser(ctl_parse_size, s);
        break;
    case 2:
        fuzz_i64_parser(ctl_parse_cpus, s);
        break;
    case 3:
        rc = ctl_parse_i64(s, &i);
        if (rc == 0) {
            errno = 0;
            FUZZ_CHECK(strtoll(s, &end, 10) == i && errno == 0);
        } else {
            FUZZ_CHECK(rc == -EINVAL && i == SENTINEL);
        }
        break;
    case 4:
        rc = ctl_parse_u64(s, &u);
        if (rc == 0) {
            errno = 0;
            FUZZ_CHECK(s[0] >= '0' && s[0] <= '9');
            FUZZ_CHECK(strtoull(s, &end, 10) == u && errno == 0);
        } else {
            FUZZ_CHECK(rc == -EINVAL && u == (uint64_t)SENTINEL);
        }
        break;
    case 5:
    case 6:
        rc = ctl_parse_kv(s, which % 9 == 5, &n, &value);
        if (rc == 0) {
            /* "key" alone gives a static "" rather than a pointer
             * into s: ctl.h's "points into s" is true only with '='. */
            FUZZ_CHECK(n > 0 && n <= strlen(s));
            FUZZ_CHECK(s[n] == '=' ? value == s + n + 1
                                   : s[n] == '\0' && *value == '\0');
        } else {
            FUZZ_CHECK(rc == -EINVAL && n == 99 && value == NULL);
        }
        break;
    case 7:
        memset(&p, 0x5a, sizeof p);
        q = p;
        rc = ctl_parse_publish(s, &p);
        if (rc == 0) {
            FUZZ_CHECK(p.target_port >= 1 && p.target_port <= 65535);
            FUZZ_CHECK(p.published_port <= 65535);
            FUZZ_CHECK(p.protocol <= SHOAL_PROTO_SCTP);
            FUZZ_CHECK(p.publish_mode <= SHOAL_PUBLISH_HOST);
            FUZZ_CHECK(p.name == q.name);
        } else {
            FUZZ_CHECK(rc == -EINVAL && memcmp(&p, &q, sizeof p) == 0);
        }
        break;
    default:
        rc = ctl_parse_port_rm(s, &target, &proto);
        if (rc == 0) {
            FUZZ_CHECK(target >= 1 && target <= 65535);
            FUZZ_CHECK(proto <= SHOAL_PROTO_SCTP);
        } else {
            FUZZ_CHECK(rc == -EINVAL && target == 7 && proto == 7);
        }
        n = 99;
        value = NULL;
        rc = ctl_parse_ref(s, &n, &value);
        if (rc == 0) {
            FUZZ_CHECK(n > 0 && n <= strlen(s));
            FUZZ_CHECK(!value || (value > s && value <= s + strlen(s)));
        } else {
            FUZZ_CHECK(rc == -EINVAL && n == 99 && value == NULL);
        }
        break;
    }
}

/* A word that could name something outside the sandbox. */
static bool
escapes(const char *w)
{
    return w[0] == '/' || strstr(w, "..") != NULL;
}

/* Split p on NULs into argv[1..] and run shoalctl. */
static void
fuzz_cmdline(const uint8_t *p, size_t n)
{
    char *argv[MAX_WORDS + 2];
    char *copy = malloc(n + 1);
    int argc = 1, cwd = -1, rc;

    if (!copy || sandbox_make() != 0) {
        free(copy);
        return;
    }
    memcpy(copy, p, n);
    copy[n] = '\0';
    argv[0] = "shoalctl";
    for (size_t off = 0; off < n && argc <= MAX_WORDS;) {
        argv[argc] = copy + off;
        if (escapes(argv[argc])) {
            goto out_free;
        }
        off += strlen(copy + off) + 1;
        argc++;
    }
    argv[argc] = NULL;

    cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || fchdir(sandbox_fd) != 0) {
        goto out_free;
    }
    rc = ctl_main(argc, argv);
    FUZZ_CHECK(rc >= CTL_EXIT_OK && rc <= CTL_EXIT_CONFLICT);
    FUZZ_CHECK(fchdir(cwd) == 0);

out_free:
    if (cwd >= 0) {
        close(cwd);
    }
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    char *s;

    if (mode < 0x80) {
        fuzz_cmdline(in.p, in.n);
        return 0;
    }
    s = fuzz_str(in.p, in.n);
    if (s) {
        fuzz_value(mode & 0x7f, s);
        free(s);
    }
    return 0;
}
