/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * main.c: shoald's command line, state directory and lock.
 *
 * Exit codes follow sysexits, so that a service manager can tell a
 * mistake from a transient failure: 64 usage, 75 another daemon holds
 * the state directory, 77 permissions, 70 any other failure to start.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "manager/manager.h"

#define EX_OK_ 0
#define EX_USAGE_ 64
#define EX_SOFTWARE_ 70
#define EX_TEMPFAIL_ 75
#define EX_NOPERM_ 77
#define EX_CONFIG_ 78

static const char usage_text[] =
    "Usage: shoald [options]\n"
    "\n"
    "Run one shoal manager: the replicated store of cluster objects and\n"
    "its control API on a local Unix socket.\n"
    "\n"
    "  -d, --state-dir DIR           state directory (default "
    "/var/lib/shoald);\n"
    "                                created 0700 if missing\n"
    "      --control-socket PATH     control socket (default "
    "DIR/control.sock)\n"
    "      --control-socket-group G  make the socket 0660 with group G\n"
    "                                (default: 0600, owner only)\n"
    "      --hostname NAME           this node's hostname (default: the "
    "host's)\n"
    "  -l, --log-level LEVEL         crit, err, warn, notice, info or "
    "debug\n"
    "                                (default info)\n"
    "      --log-file PATH           log to PATH instead of stderr\n"
    "      --listen-remote HOST:PORT accept other managers here (TLS 1.3,\n"
    "                                numeric host; port 0: any free port)\n"
    "      --advertise-remote HOST:PORT  the address other managers dial\n"
    "                                (default: the listen address)\n"
    "      --join HOST:PORT          join the cluster of the manager there\n"
    "                                (an empty state directory only)\n"
    "      --join-token TOKEN        the cluster's manager join token\n"
    "  -v, --version                 print the version and exit\n"
    "  -h, --help                    print this help and exit\n"
    "\n"
    "Signals: TERM and INT stop cleanly; HUP reopens the log file and\n"
    "re-reads the log level from DIR/log-level (one level name).\n"
    "\n"
    "Exit status: 0 after a clean stop, 64 usage, 70 failure to start,\n"
    "75 state directory in use, 77 state directory or keys not private,\n"
    "78 join refused (wrong or rotated token, or another cluster's CA).\n";

struct options {
    const char *state_dir;
    char *control_socket;
    const char *socket_group;
    const char *hostname;
    const char *log_file;
    const char *listen_remote;
    const char *advertise_remote;
    const char *join;
    const char *join_token;
};

static int
parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"control-socket", required_argument, NULL, 's'},
        {"control-socket-group", required_argument, NULL, 'g'},
        {"hostname", required_argument, NULL, 'n'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-file", required_argument, NULL, 'f'},
        {"listen-remote", required_argument, NULL, 'R'},
        {"advertise-remote", required_argument, NULL, 'A'},
        {"join", required_argument, NULL, 'J'},
        {"join-token", required_argument, NULL, 'T'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum log_level level;
    int c;

    while ((c = getopt_long(argc, argv, "d:l:vh", longs, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->state_dir = optarg;
            break;
        case 's':
            o->control_socket = optarg;
            break;
        case 'g':
            o->socket_group = optarg;
            break;
        case 'n':
            o->hostname = optarg;
            break;
        case 'f':
            o->log_file = optarg;
            break;
        case 'R':
            o->listen_remote = optarg;
            break;
        case 'A':
            o->advertise_remote = optarg;
            break;
        case 'J':
            o->join = optarg;
            break;
        case 'T':
            o->join_token = optarg;
            break;
        case 'l':
            if (log_level_parse(optarg, &level) != 0) {
                fprintf(stderr, "shoald: unknown log level '%s'\n", optarg);
                return EX_USAGE_;
            }
            log_set_level(level);
            break;
        case 'v':
            printf("shoald %s (%s), protocol 1\n", SHOAL_VERSION,
                   SHOAL_GITREV);
            exit(EX_OK_);
        case 'h':
            fputs(usage_text, stdout);
            exit(EX_OK_);
        default:
            /* getopt has said what was wrong. */
            fputs("Try 'shoald --help'.\n", stderr);
            return EX_USAGE_;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shoald: unexpected argument '%s'\n", argv[optind]);
        return EX_USAGE_;
    }
    if (!o->join != !o->join_token) {
        fprintf(stderr, "shoald: --join and --join-token go together\n");
        return EX_USAGE_;
    }
    if ((o->join || o->advertise_remote) && !o->listen_remote) {
        fprintf(stderr, "shoald: --join and --advertise-remote need "
                "--listen-remote\n");
        return EX_USAGE_;
    }
    return 0;
}

/* The directory holds keys and the log: nobody else may read it. */
static int
prepare_state_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "shoald: cannot create state directory %s: %s\n",
                dir, strerror(errno));
        return errno == EACCES ? EX_NOPERM_ : EX_SOFTWARE_;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "shoald: %s is not a directory\n", dir);
        return EX_SOFTWARE_;
    }
    if (st.st_mode & 077) {
        fprintf(stderr,
                "shoald: state directory %s is accessible to others "
                "(mode %03o); run: chmod 700 %s\n",
                dir, (unsigned)(st.st_mode & 0777), dir);
        return EX_NOPERM_;
    }
    return 0;
}

/* Held for the life of the process: the kernel drops it at exit, even
 * on kill -9, so a stale lock never blocks a restart. */
static int
lock_state_dir(const char *dir)
{
    char path[4096];
    char pid[32] = {0};
    int fd;

    snprintf(path, sizeof path, "%s/lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "shoald: cannot open %s: %s\n", path,
                strerror(errno));
        return EX_SOFTWARE_;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (read(fd, pid, sizeof pid - 1) < 0) {
            pid[0] = '\0';
        }
        pid[strcspn(pid, "\n")] = '\0';
        fprintf(stderr,
                "shoald: state directory %s is in use by another shoald "
                "(pid %s); stop it first\n",
                dir, pid[0] ? pid : "unknown");
        close(fd);
        return EX_TEMPFAIL_;
    }
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, strlen(pid)) < 0) {
        fprintf(stderr, "shoald: cannot write %s\n", path);
    }
    return 0; /* fd stays open on purpose */
}

/* Many idle clients are normal: take every descriptor we may have. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
main(int argc, char **argv)
{
    struct options o = {.state_dir = "/var/lib/shoald"};
    struct manager_config cfg = {0};
    struct manager *m = NULL;
    char hostname[256] = "localhost";
    char *default_socket = NULL;
    int rc;

    log_set_level(LOG_INFO);
    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        return rc;
    }
    rc = prepare_state_dir(o.state_dir);
    if (rc == 0) {
        rc = lock_state_dir(o.state_dir);
    }
    if (rc != 0) {
        return rc;
    }
    if (!o.control_socket) {
        default_socket = str_printf("%s/control.sock", o.state_dir);
        if (!default_socket) {
            return EX_SOFTWARE_;
        }
        o.control_socket = default_socket;
    }
    if (!o.hostname) {
        gethostname(hostname, sizeof hostname - 1);
        o.hostname = hostname;
    }
    raise_fd_limit();
    if (o.log_file && log_open_file(o.log_file) != 0) {
        fprintf(stderr, "shoald: cannot open log file %s: %s\n", o.log_file,
                strerror(errno));
        return EX_SOFTWARE_;
    }

    cfg.state_dir = o.state_dir;
    cfg.control_socket = o.control_socket;
    cfg.socket_group = o.socket_group;
    cfg.hostname = o.hostname;
    cfg.log_file = o.log_file;
    cfg.listen_remote = o.listen_remote;
    cfg.advertise_remote = o.advertise_remote;
    cfg.join = o.join;
    cfg.join_token = o.join_token;
    rc = manager_open(&m, &cfg);
    if (rc != 0) {
        fprintf(stderr, "shoald: cannot start: %s\n", err_str(rc));
        free(default_socket);
        /* Keys others may read: the state is not private. */
        if (rc == -EPERM) {
            return EX_NOPERM_;
        }
        return rc == ERR_JOIN_REFUSED ? EX_CONFIG_ : EX_SOFTWARE_;
    }
    rc = manager_run(m);
    manager_close(m);
    free(default_socket);
    return rc == 0 ? EX_OK_ : EX_SOFTWARE_;
}
