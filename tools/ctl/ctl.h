/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * ctl.h: the inside of shoalctl: command table, argument parser, value
 * parsers, name resolution and output helpers.
 *
 * main.c holds only main(); everything else lives in the other files of
 * tools/ctl so that the unit-test runner links and tests it. Functions
 * that print write to stdout (results) and stderr (errors) only.
 * tools/ctl/shoalctl.md is the user's documentation of the same.
 */
#ifndef SHOAL_TOOLS_CTL_H
#define SHOAL_TOOLS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <libsmartcols.h>

#include "shoal/client.h"
#include "shoal/types.h"
#include "shoal/wire.h"

/* Exit statuses, documented in shoalctl.md. */
enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1,       /* anything not listed below */
    CTL_EXIT_USAGE = 2,       /* bad command line */
    CTL_EXIT_NOT_FOUND = 3,   /* no object matches an argument */
    CTL_EXIT_AMBIGUOUS = 4,   /* a prefix or name matches several */
    CTL_EXIT_UNAVAILABLE = 5, /* shoald cannot be reached or answer */
    CTL_EXIT_PERMISSION = 6,  /* the socket or the daemon refused us */
    CTL_EXIT_CONFLICT = 7,    /* already exists, or a stale version */
};

/* Where shoalctl looks for the socket without -s and $SHOAL_SOCKET: the
 * socket of `make run`, relative to the repository's top folder. */
#define CTL_DEFAULT_SOCKET "./run/control.sock"
#define CTL_CONNECT_TIMEOUT_MS 5000

/* The Makefile defines these; a hand-made build still compiles. */
#ifndef SHOAL_VERSION
#define SHOAL_VERSION "unknown"
#endif
#ifndef SHOAL_GITREV
#define SHOAL_GITREV "unknown"
#endif

enum ctl_output {
    CTL_OUT_TABLE = 0,
    CTL_OUT_JSON = 1,
};

/* The state of one run of shoalctl. */
struct ctl {
    const char *socket;          /* -s, $SHOAL_SOCKET or the default */
    enum ctl_output output;      /* -o */
    bool quiet;                  /* -q: full ids only */
    struct shoal_client *client; /* connected on first use; owned */
    struct shoal_error err;      /* the last failure of a call */
};

/* One option of a command. The table of options makes both the parser
 * and the --help text. */
struct ctl_opt {
    const char *name; /* long name, without the dashes */
    char short_name;  /* 0 when there is none */
    const char *arg;  /* the value's placeholder; NULL for a flag */
    const char *help; /* one line */
};

struct ctl_args;

/* One command: a noun and a verb ("service create"), or a verb alone. */
struct ctl_cmd {
    const char *noun;    /* NULL for top-level commands (watch) */
    const char *verb;    /* "create" */
    const char *alias;   /* "list" for ls, "remove" for rm, or NULL */
    const char *usage;   /* the positional part: "SERVICE [SERVICE...]" */
    size_t min_args;     /* positional arguments it needs */
    size_t max_args;     /* SIZE_MAX: any number */
    const char *summary; /* one line for the command lists */
    const struct ctl_opt *opts; /* ends with an entry whose name is NULL */
    int (*run)(struct ctl *ctl, const struct ctl_args *a); /* exit code */
};

/* The tables of every noun; each ends with an entry whose verb is NULL. */
extern const struct ctl_cmd ctl_cmds_cluster[];
extern const struct ctl_cmd ctl_cmds_node[];
extern const struct ctl_cmd ctl_cmds_service[];
extern const struct ctl_cmd ctl_cmds_task[];
extern const struct ctl_cmd ctl_cmds_network[];
extern const struct ctl_cmd ctl_cmds_secret[];
extern const struct ctl_cmd ctl_cmds_config[];
extern const struct ctl_cmd ctl_cmds_top[];

/* A parsed command line: options in the order given, and positionals. */
struct ctl_arg {
    const struct ctl_opt *opt;
    const char *value; /* borrowed from argv; "" for a flag */
};

struct ctl_args {
    const struct ctl_cmd *cmd;
    struct ctl_arg *v; /* malloc'd */
    size_t n;
    const char **pos; /* malloc'd array of borrowed strings */
    size_t n_pos;
    bool help; /* -h or --help was given */
};

/*
 * Run shoalctl with argv (argv[0] the program name). Returns the exit
 * status; prints results on stdout, errors on stderr. Reads $SHOAL_SOCKET.
 */
int ctl_main(int argc, char **argv);

/*
 * Parse argv (the words after the verb) for cmd. Options may come before,
 * between or after positionals; "--" ends options; "-" is a positional.
 * The global options -s, -o, -q and -h are accepted too and applied to
 * ctl (may be NULL in tests: then they are only checked). On success
 * fills *a (free it with ctl_args_fini) and returns 0. On a usage error
 * prints "Error: ..." and a hint on stderr and returns CTL_EXIT_USAGE,
 * with *a empty. The positional count is checked unless help was asked.
 */
int ctl_args_parse(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
                   char **argv, struct ctl_args *a);

/* Free what a holds and zero it. */
void ctl_args_fini(struct ctl_args *a);

/* The last value of option name, or NULL when it was not given. */
const char *ctl_arg(const struct ctl_args *a, const char *name);

/* Whether flag or option name was given at least once. */
bool ctl_flag(const struct ctl_args *a, const char *name);

/*
 * Iterate over every value of a repeatable option: start with *it = 0;
 * returns the next value, or NULL when there are no more.
 */
const char *ctl_arg_next(const struct ctl_args *a, const char *name,
                         size_t *it);

/* Print the generated help of cmd to f. */
void ctl_help_cmd(FILE *f, const struct ctl_cmd *cmd);

/*
 * Print "Error: <formatted>" and "See 'shoalctl NOUN VERB --help'." on
 * stderr and return CTL_EXIT_USAGE. cmd may be NULL.
 */
int ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "Error: <formatted>" on stderr and return code. */
int ctl_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Report ctl->err, the failure of a call that returned rc (a negated
 * status), on stderr and return the exit code it maps to.
 */
int ctl_fail(struct ctl *ctl, int rc);

/*
 * Map a status code (enum shoal_status) to an exit status: NOT_FOUND 3,
 * ALREADY_EXISTS and CONFLICT 7, PERMISSION_DENIED 6, UNAVAILABLE and
 * DEADLINE_EXCEEDED 5, OK 0, everything else 1.
 */
int ctl_exit_for_status(int code);

/*
 * Connect if not yet connected, then call (shoal_call). Returns 0 or the
 * negated status, with ctl->err filled. req and reply as shoal_call.
 */
int ctl_call(struct ctl *ctl, uint16_t type, const void *req, void *reply);

/* Connect to ctl->socket unless connected. Returns 0 or a negated
 * status with ctl->err filled. */
int ctl_connect(struct ctl *ctl);

/* Value parsers: each returns 0, or -EINVAL with *out unchanged. */

/*
 * A duration: one or more <number><unit> with unit ns, us, ms, s, m, h
 * or d, the number possibly with a fraction ("1h30m", "1.5s"); or "0".
 * Stores nanoseconds. Negative values and overflow are refused.
 */
int ctl_parse_duration(const char *s, int64_t *out);

/*
 * A size in bytes: a number with an optional fraction and an optional
 * binary unit b, k, m, g, t, p (each also as kb/kib, mb/mib, ...; any
 * case; all powers of 1024, as docker does): "64MiB", "1g", "512".
 */
int ctl_parse_size(const char *s, int64_t *out);

/* CPUs as a decimal with at most 9 fraction digits ("0.5"); stores
 * nano-CPUs (0.5 -> 500000000). */
int ctl_parse_cpus(const char *s, int64_t *out);

/* A signed decimal 64-bit integer, the whole string. */
int ctl_parse_i64(const char *s, int64_t *out);

/* An unsigned decimal 64-bit integer, the whole string (no sign). */
int ctl_parse_u64(const char *s, uint64_t *out);

/*
 * "key=value", or "key" alone when value_required is false (value "").
 * The key is s[0, *key_len) and must be non-empty; *value points into s.
 */
int ctl_parse_kv(const char *s, bool value_required, size_t *key_len,
                 const char **value);

/*
 * A published port: "[published:]target[/tcp|udp|sctp][,mode=host|
 * ingress]". Ports are 1..65535 (published may be absent: 0). Fills the
 * numeric fields of *p (name untouched); the mode defaults to ingress.
 */
int ctl_parse_publish(const char *s, struct shoal_port_config *p);

/*
 * A port to remove: "target[/proto]". Stores target and protocol (tcp
 * when absent).
 */
int ctl_parse_port_rm(const char *s, uint32_t *target, uint32_t *proto);

/*
 * A secret or config reference "name[:target]": the name is
 * s[0, *name_len) (non-empty); *target points at the target or is NULL.
 */
int ctl_parse_ref(const char *s, size_t *name_len, const char **target);

/* Name resolution. */

/* A candidate object for resolution; strings borrowed. */
struct ctl_cand {
    const char *id;
    const char *name; /* may be NULL */
    const char *alt;  /* another name that counts as exact (hostname) */
};

/*
 * Pick what arg names among n candidates: an exact id first, else an
 * exact name (name or alt), else an id prefix. Returns the number of
 * matches of the first of those stages that matched anything (0: not
 * found; 1: *idx is the one; more: ambiguous). When matched is not NULL,
 * matched[i] is set for each match of that stage and cleared otherwise.
 */
size_t ctl_resolve_pick(const struct ctl_cand *c, size_t n, const char *arg,
                        bool *matched, size_t *idx);

/* What ctl_resolve found: both strings malloc'd (ctl_ref_fini). */
struct ctl_ref {
    char *id;
    char *name;
};

/*
 * Resolve arg to one object of kind through the daemon (get by id, then
 * list by name and by id prefix, then ctl_resolve_pick). Returns 0 with
 * *ref filled, or an exit code after printing the error: 3 not found, 4
 * ambiguous (the message lists the candidates' full ids), or the mapped
 * status of a failed call.
 */
int ctl_resolve(struct ctl *ctl, enum shoal_kind kind, const char *arg,
                struct ctl_ref *ref);

/* Free the strings of ref and zero it. */
void ctl_ref_fini(struct ctl_ref *ref);

/*
 * Fetch the object of kind whose id is id into obj (a zeroed struct of
 * wire_kind_type(kind)). Returns 0, or an exit code after printing.
 */
int ctl_get(struct ctl *ctl, enum shoal_kind kind, const char *id,
            void *obj);

/*
 * Resolve arg and fetch the object into obj, as the two calls above.
 * Returns 0 or an exit code after printing.
 */
int ctl_lookup(struct ctl *ctl, enum shoal_kind kind, const char *arg,
               void *obj);

/* Request types of a kind: get, list and remove (0 when it has none). */
uint16_t ctl_kind_get_type(enum shoal_kind kind);
uint16_t ctl_kind_list_type(enum shoal_kind kind);
uint16_t ctl_kind_remove_type(enum shoal_kind kind);

/*
 * The objects of kind inside a list reply: returns a borrowed pointer to
 * the first and stores their count in *n (the stride is the size of
 * wire_kind_type(kind)).
 */
void *ctl_list_items(enum shoal_kind kind, struct shoal_list_reply *r,
                     size_t *n);

/* The name users know an object by (borrowed; "" when none). */
const char *ctl_object_name(enum shoal_kind kind, const void *obj);

/* Output. */

/* A new table with the given column headers (n of them). NULL on OOM. */
struct libscols_table *ctl_table_new(const char *const *cols, size_t n);

/* Append a row of n cells (NULL cells print empty). Returns 0 or -1. */
int ctl_table_row(struct libscols_table *t, const char *const *cells,
                  size_t n);

/* Print t on stdout and free it. Returns CTL_EXIT_OK or CTL_EXIT_ERROR. */
int ctl_table_print(struct libscols_table *t);

/*
 * Print j (transferred, may be NULL on OOM) on stdout, indented, with a
 * newline. Returns CTL_EXIT_OK or CTL_EXIT_ERROR.
 */
int ctl_json_print(json_t *j);

/*
 * Remove what must never be printed from an object of kind: a secret's
 * data and the cluster's CA key (wiped, then freed). obj is the object.
 */
void ctl_redact(enum shoal_kind kind, void *obj);

/*
 * Turns one object into n table cells, each malloc'd or NULL (freed by
 * the caller); ctx is what the command passed along.
 */
typedef void ctl_row_fn(const void *ctx, const void *obj, char **cells);

/* A table's columns and the function that fills a row of them. */
struct ctl_columns {
    const char *const *names;
    size_t n;
    ctl_row_fn *row;
    const void *ctx; /* borrowed; handed to row */
};

/*
 * Print the objects of a list reply: ids with -q, a JSON array with -o
 * json, or a table of cols otherwise. Returns an exit code.
 */
int ctl_print_list(struct ctl *ctl, enum shoal_kind kind,
                   struct shoal_list_reply *r,
                   const struct ctl_columns *cols);

/* Print one object as JSON (inspect), or its id with -q. Exit code. */
int ctl_print_object(struct ctl *ctl, enum shoal_kind kind, void *obj);

/* Format ns since the epoch as UTC "2006-01-02T15:04:05Z" into buf. */
void ctl_format_time(int64_t ns, char *buf, size_t cap);

/* Names of enum values, lowercase; "unknown" for others. */
const char *ctl_task_state_name(uint32_t s);
const char *ctl_node_state_name(uint32_t s);
const char *ctl_availability_name(uint32_t a);
const char *ctl_role_name(uint32_t r);
const char *ctl_action_name(uint32_t a);

/* Commands shared between nouns. */

/*
 * `<noun> ls` for kinds without filters of their own: list, then
 * ctl_print_list. Exit code.
 */
int ctl_cmd_list(struct ctl *ctl, enum shoal_kind kind,
                 const struct shoal_list_request *req,
                 const struct ctl_columns *cols);

/* `<noun> inspect ARG...` for any kind. Exit code. */
int ctl_cmd_inspect(struct ctl *ctl, enum shoal_kind kind,
                    const struct ctl_args *a);

/* `<noun> rm ARG...` for any kind: resolve and remove each, printing
 * the argument; force sets id_request.force. Exit code of the worst. */
int ctl_cmd_remove(struct ctl *ctl, enum shoal_kind kind,
                   const struct ctl_args *a, bool force);

/*
 * Apply --label-add k=v and --label-rm k (option names add and rm) to m.
 * Returns 0, or an exit code after printing (usage or memory).
 */
int ctl_apply_labels(const struct ctl_args *a, const char *add,
                     const char *rm, struct shoal_map *m);

/* Remove key from a sorted map; absent keys are ignored. */
void ctl_map_del(struct shoal_map *m, const char *key);

#endif
