/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * cli.c: shoalctl's entry, command dispatch, argument parser, generated
 * help, error reporting and the exit-code map.
 *
 * Commands are rows of the ctl_cmds_* tables (one per noun, defined in
 * the cmd_*.c files); this file finds the row, parses the words after
 * the verb against the row's options, and runs it. Help text is made from
 * the same rows, so a new option is documented where it is declared.
 */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define HELP_COL 30 /* where option help text starts */

static const struct ctl_opt global_opts[] = {
    {"socket", 's', "PATH",
     "manager socket (default: $SHOAL_SOCKET, else " CTL_DEFAULT_SOCKET ")"},
    {"output", 'o', "FORMAT", "output format: table or json"},
    {"quiet", 'q', NULL, "print full ids only"},
    {"help", 'h', NULL, "show this help"},
    {NULL, 0, NULL, NULL},
};

static const struct {
    const char *noun;
    const char *summary;
    const struct ctl_cmd *cmds;
} groups[] = {
    {"cluster", "inspect and update the cluster", ctl_cmds_cluster},
    {"node", "manage nodes", ctl_cmds_node},
    {"service", "manage services", ctl_cmds_service},
    {"task", "list, inspect and remove tasks", ctl_cmds_task},
    {"network", "manage networks", ctl_cmds_network},
    {"secret", "manage secrets", ctl_cmds_secret},
    {"config", "manage configs", ctl_cmds_config},
};

int
ctl_exit_for_status(int code)
{
    switch (code) {
    case SHOAL_OK:
        return CTL_EXIT_OK;
    case SHOAL_NOT_FOUND:
        return CTL_EXIT_NOT_FOUND;
    case SHOAL_ALREADY_EXISTS:
    case SHOAL_CONFLICT:
        return CTL_EXIT_CONFLICT;
    case SHOAL_PERMISSION_DENIED:
        return CTL_EXIT_PERMISSION;
    case SHOAL_UNAVAILABLE:
    case SHOAL_DEADLINE_EXCEEDED:
        return CTL_EXIT_UNAVAILABLE;
    default:
        return CTL_EXIT_ERROR;
    }
}

static void
vreport(const char *fmt, va_list ap)
{
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int
ctl_error(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return code;
}

int
ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    if (cmd && cmd->verb[0]) {
        fprintf(stderr, "See 'shoalctl %s%s%s --help'.\n",
                cmd->noun ? cmd->noun : "", cmd->noun ? " " : "", cmd->verb);
    } else {
        fputs("See 'shoalctl --help'.\n", stderr);
    }
    return CTL_EXIT_USAGE;
}

int
ctl_fail(struct ctl *ctl, int rc)
{
    const struct shoal_error *e = &ctl->err;
    int code = rc < 0 ? -rc : SHOAL_INTERNAL;

    if (e->code == SHOAL_CONFLICT && e->current_version) {
        return ctl_error(ctl_exit_for_status(code),
                         "%s (current version %" PRIu64 ")", e->message,
                         e->current_version);
    }
    if (e->leader_addr[0]) {
        return ctl_error(ctl_exit_for_status(code), "%s (leader at %s)",
                         e->message, e->leader_addr);
    }
    return ctl_error(ctl_exit_for_status(code), "%s",
                     e->message[0] ? e->message : shoal_status_name(code));
}

int
ctl_connect(struct ctl *ctl)
{
    if (ctl->client) {
        return 0;
    }
    return shoal_connect(&ctl->client, ctl->socket, CTL_CONNECT_TIMEOUT_MS,
                         "shoalctl/" SHOAL_VERSION, &ctl->err);
}

int
ctl_call(struct ctl *ctl, uint16_t type, const void *req, void *reply)
{
    int rc = ctl_connect(ctl);

    if (rc != 0) {
        return rc;
    }
    shoal_set_timeout(ctl->client, SHOAL_CLIENT_TIMEOUT_MS);
    return shoal_call(ctl->client, type, req, reply, &ctl->err);
}

/* Arguments. */

static const struct ctl_opt *
find_long(const struct ctl_opt *opts, const char *name, size_t n)
{
    for (; opts && opts->name; opts++) {
        if (strlen(opts->name) == n && strncmp(opts->name, name, n) == 0) {
            return opts;
        }
    }
    return NULL;
}

static const struct ctl_opt *
find_short(const struct ctl_opt *opts, char c)
{
    for (; opts && opts->name; opts++) {
        if (opts->short_name == c) {
            return opts;
        }
    }
    return NULL;
}

/* Check a global option and apply it to ctl (when not NULL). */
static int
apply_global(struct ctl *ctl, const struct ctl_cmd *cmd,
             const struct ctl_opt *o, const char *value, bool *help)
{
    if (strcmp(o->name, "output") == 0) {
        if (strcmp(value, "table") != 0 && strcmp(value, "json") != 0) {
            return ctl_usage(cmd, "invalid output format \"%s\": use "
                                  "table or json", value);
        }
        if (ctl) {
            ctl->output = value[0] == 'j' ? CTL_OUT_JSON : CTL_OUT_TABLE;
        }
    } else if (strcmp(o->name, "socket") == 0 && ctl) {
        ctl->socket = value;
    } else if (strcmp(o->name, "quiet") == 0 && ctl) {
        ctl->quiet = true;
    } else if (strcmp(o->name, "help") == 0) {
        *help = true;
    }
    return 0;
}

/* Record one option occurrence. */
static int
add_opt(struct ctl *ctl, struct ctl_args *a, const struct ctl_opt *o,
        const char *value)
{
    struct ctl_arg *v;

    if (o >= global_opts && o < global_opts + ARRAY_LEN(global_opts)) {
        return apply_global(ctl, a->cmd, o, value, &a->help);
    }
    v = realloc(a->v, (a->n + 1) * sizeof *v);
    if (!v) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    a->v = v;
    a->v[a->n++] = (struct ctl_arg){.opt = o, .value = value};
    return 0;
}

static const struct ctl_opt *
lookup_long(const struct ctl_cmd *cmd, const char *name, size_t n)
{
    const struct ctl_opt *o = find_long(cmd->opts, name, n);

    return o ? o : find_long(global_opts, name, n);
}

static const struct ctl_opt *
lookup_short(const struct ctl_cmd *cmd, char c)
{
    const struct ctl_opt *o = find_short(cmd->opts, c);

    return o ? o : find_short(global_opts, c);
}

/* "--name", "--name=value" or "--name value"; *i may advance. */
static int
parse_long(struct ctl *ctl, struct ctl_args *a, int argc, char **argv,
           int *i)
{
    const char *word = argv[*i] + 2, *eq = strchr(word, '=');
    size_t n = eq ? (size_t)(eq - word) : strlen(word);
    const struct ctl_opt *o = lookup_long(a->cmd, word, n);

    if (!o) {
        return ctl_usage(a->cmd, "unknown option --%.*s", (int)n, word);
    }
    if (!o->arg) {
        return eq ? ctl_usage(a->cmd, "option --%s takes no value",
                              o->name)
                  : add_opt(ctl, a, o, "");
    }
    if (eq) {
        return add_opt(ctl, a, o, eq + 1);
    }
    if (*i + 1 >= argc) {
        return ctl_usage(a->cmd, "option --%s needs a value", o->name);
    }
    return add_opt(ctl, a, o, argv[++*i]);
}

/* "-q", "-qf", "-o json", "-ojson"; *i may advance. */
static int
parse_short(struct ctl *ctl, struct ctl_args *a, int argc, char **argv,
            int *i)
{
    const char *word = argv[*i];

    for (size_t k = 1; word[k]; k++) {
        const struct ctl_opt *o = lookup_short(a->cmd, word[k]);
        int rc;

        if (!o) {
            return ctl_usage(a->cmd, "unknown option -%c", word[k]);
        }
        if (!o->arg) {
            rc = add_opt(ctl, a, o, "");
        } else if (word[k + 1]) {
            return add_opt(ctl, a, o, word + k + 1);
        } else if (*i + 1 >= argc) {
            return ctl_usage(a->cmd, "option -%c needs a value", word[k]);
        } else {
            return add_opt(ctl, a, o, argv[++*i]);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int
check_positionals(const struct ctl_args *a)
{
    const struct ctl_cmd *cmd = a->cmd;

    if (a->help) {
        return 0;
    }
    if (a->n_pos < cmd->min_args) {
        return ctl_usage(cmd, "\"shoalctl %s %s\" needs %s", cmd->noun
                         ? cmd->noun : "", cmd->verb, cmd->usage);
    }
    if (a->n_pos > cmd->max_args) {
        return ctl_usage(cmd, "too many arguments: \"%s\"",
                         a->pos[cmd->max_args]);
    }
    return 0;
}

/* Classify and take one word at argv[*i]. */
static int
parse_word(struct ctl *ctl, struct ctl_args *a, int argc, char **argv,
           int *i, bool *only_pos)
{
    const char *w = argv[*i];

    if (!*only_pos && strcmp(w, "--") == 0) {
        *only_pos = true;
        return 0;
    }
    if (!*only_pos && w[0] == '-' && w[1] == '-') {
        return parse_long(ctl, a, argc, argv, i);
    }
    if (!*only_pos && w[0] == '-' && w[1]) {
        return parse_short(ctl, a, argc, argv, i);
    }
    a->pos[a->n_pos++] = w;
    return 0;
}

int
ctl_args_parse(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
               char **argv, struct ctl_args *a)
{
    bool only_pos = false;
    int rc = 0;

    *a = (struct ctl_args){.cmd = cmd};
    a->pos = calloc((size_t)argc + 1, sizeof *a->pos);
    if (!a->pos) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    for (int i = 0; i < argc && rc == 0; i++) {
        rc = parse_word(ctl, a, argc, argv, &i, &only_pos);
    }
    if (rc == 0) {
        rc = check_positionals(a);
    }
    if (rc != 0) {
        ctl_args_fini(a);
    }
    return rc;
}

void
ctl_args_fini(struct ctl_args *a)
{
    free(a->v);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

const char *
ctl_arg_next(const struct ctl_args *a, const char *name, size_t *it)
{
    for (; *it < a->n; (*it)++) {
        if (strcmp(a->v[*it].opt->name, name) == 0) {
            return a->v[(*it)++].value;
        }
    }
    return NULL;
}

const char *
ctl_arg(const struct ctl_args *a, const char *name)
{
    const char *last = NULL, *v;
    size_t it = 0;

    while ((v = ctl_arg_next(a, name, &it))) {
        last = v;
    }
    return last;
}

bool
ctl_flag(const struct ctl_args *a, const char *name)
{
    return ctl_arg(a, name) != NULL;
}

/* Help. */

static void
help_opts(FILE *f, const struct ctl_opt *o)
{
    for (; o && o->name; o++) {
        char label[64];
        int n;

        n = snprintf(label, sizeof label, "  %c%c%s--%s%s%s",
                     o->short_name ? '-' : ' ',
                     o->short_name ? o->short_name : ' ',
                     o->short_name ? ", " : "  ", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(f, "%s%*s%s\n", label, n < HELP_COL ? HELP_COL - n : 1, "",
                o->help);
    }
}

void
ctl_help_cmd(FILE *f, const struct ctl_cmd *cmd)
{
    fprintf(f, "Usage: shoalctl %s%s%s [OPTIONS]%s%s\n\n%s\n",
            cmd->noun ? cmd->noun : "", cmd->noun ? " " : "", cmd->verb,
            cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
    if (cmd->alias) {
        fprintf(f, "\nAlias: %s\n", cmd->alias);
    }
    if (cmd->opts && cmd->opts->name) {
        fputs("\nOptions:\n", f);
        help_opts(f, cmd->opts);
    }
    fputs("\nGlobal options:\n", f);
    help_opts(f, global_opts);
}

static void
help_cmd_list(FILE *f, const struct ctl_cmd *cmds)
{
    for (; cmds->verb; cmds++) {
        fprintf(f, "  %-14s%s\n", cmds->verb, cmds->summary);
    }
}

static void
help_noun(FILE *f, const char *noun, const struct ctl_cmd *cmds)
{
    fprintf(f, "Usage: shoalctl %s COMMAND [OPTIONS]\n\nCommands:\n", noun);
    help_cmd_list(f, cmds);
    fprintf(f, "\nRun 'shoalctl %s COMMAND --help' for a command's "
               "options.\n", noun);
}

static void
help_top(FILE *f)
{
    fputs("Usage: shoalctl [OPTIONS] NOUN COMMAND [ARGS...]\n"
          "       shoalctl [OPTIONS] COMMAND [ARGS...]\n\n"
          "The client of a shoal manager (shoald).\n\nNouns:\n", f);
    for (size_t i = 0; i < ARRAY_LEN(groups); i++) {
        fprintf(f, "  %-14s%s\n", groups[i].noun, groups[i].summary);
    }
    fputs("\nCommands:\n", f);
    help_cmd_list(f, ctl_cmds_top);
    fputs("  help          show help of a noun or command\n"
          "\nOptions:\n", f);
    help_opts(f, global_opts);
    fputs("\nExit status: 0 ok, 1 error, 2 usage, 3 not found, 4 ambiguous,"
          "\n5 daemon unavailable, 6 permission denied, 7 conflict.\n", f);
}

/* Dispatch. */

static const struct ctl_cmd *
find_cmd(const struct ctl_cmd *cmds, const char *verb)
{
    for (; cmds->verb; cmds++) {
        if (strcmp(cmds->verb, verb) == 0 ||
            (cmds->alias && strcmp(cmds->alias, verb) == 0)) {
            return cmds;
        }
    }
    return NULL;
}

static const struct ctl_cmd *
find_group(const char *noun)
{
    for (size_t i = 0; i < ARRAY_LEN(groups); i++) {
        if (strcmp(groups[i].noun, noun) == 0) {
            return groups[i].cmds;
        }
    }
    return NULL;
}

static int
run_cmd(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
    struct ctl_args a;
    int rc = ctl_args_parse(ctl, cmd, argc, argv, &a);

    if (rc != 0) {
        return rc;
    }
    if (a.help) {
        ctl_help_cmd(stdout, cmd);
    } else {
        rc = cmd->run(ctl, &a);
    }
    ctl_args_fini(&a);
    return rc;
}

static bool
is_help(const char *w)
{
    return strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0 ||
           strcmp(w, "help") == 0;
}

/* An unknown verb of a known noun: point at the noun's help. */
static int
usage_noun(const char *noun, const char *verb)
{
    ctl_error(CTL_EXIT_USAGE, "unknown command \"%s %s\"", noun, verb);
    fprintf(stderr, "See 'shoalctl %s --help'.\n", noun);
    return CTL_EXIT_USAGE;
}

/* "help", "help NOUN", "help NOUN VERB", "help VERB". */
static int
run_help(int argc, char **argv)
{
    const struct ctl_cmd *cmds, *cmd;

    if (argc == 0) {
        help_top(stdout);
        return CTL_EXIT_OK;
    }
    cmds = find_group(argv[0]);
    cmd = cmds ? NULL : find_cmd(ctl_cmds_top, argv[0]);
    if (!cmds && !cmd) {
        return ctl_usage(NULL, "unknown command \"%s\"", argv[0]);
    }
    if (cmds && argc > 1) {
        cmd = find_cmd(cmds, argv[1]);
        if (!cmd) {
            return usage_noun(argv[0], argv[1]);
        }
    }
    if (cmd) {
        ctl_help_cmd(stdout, cmd);
    } else {
        help_noun(stdout, argv[0], cmds);
    }
    return CTL_EXIT_OK;
}

static int
run_noun(struct ctl *ctl, const char *noun, const struct ctl_cmd *cmds,
         int argc, char **argv)
{
    const struct ctl_cmd *cmd;

    if (argc == 0) {
        help_noun(stderr, noun, cmds);
        return CTL_EXIT_USAGE;
    }
    if (is_help(argv[0])) {
        help_noun(stdout, noun, cmds);
        return CTL_EXIT_OK;
    }
    cmd = find_cmd(cmds, argv[0]);
    if (!cmd) {
        return usage_noun(noun, argv[0]);
    }
    return run_cmd(ctl, cmd, argc - 1, argv + 1);
}

/* The global options before the noun; returns how many words they took
 * or a negated exit code. */
static int
leading_globals(struct ctl *ctl, int argc, char **argv, bool *help)
{
    static const struct ctl_cmd none = {.verb = "", .usage = "",
                                        .summary = ""};
    struct ctl_args a = {.cmd = &none};
    int i = 0, rc = 0;

    while (i < argc && argv[i][0] == '-' && argv[i][1] && rc == 0) {
        if (strcmp(argv[i], "--version") == 0) {
            break;
        }
        rc = argv[i][1] == '-' ? parse_long(ctl, &a, argc, argv, &i)
                               : parse_short(ctl, &a, argc, argv, &i);
        i++;
    }
    *help = a.help;
    free(a.v);
    return rc != 0 ? -rc : i;
}

static int
dispatch(struct ctl *ctl, int argc, char **argv)
{
    const struct ctl_cmd *cmds, *cmd;
    bool help = false;
    int used = leading_globals(ctl, argc, argv, &help);

    if (used < 0) {
        return -used;
    }
    argc -= used;
    argv += used;
    if (argc == 0) {
        help_top(help ? stdout : stderr);
        return help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    }
    if (strcmp(argv[0], "help") == 0) {
        return run_help(argc - 1, argv + 1);
    }
    if (strcmp(argv[0], "--version") == 0) {
        argv[0] = "version";
    }
    cmds = find_group(argv[0]);
    if (cmds) {
        return run_noun(ctl, argv[0], cmds, argc - 1, argv + 1);
    }
    cmd = find_cmd(ctl_cmds_top, argv[0]);
    if (!cmd) {
        return ctl_usage(NULL, "unknown command \"%s\"", argv[0]);
    }
    return run_cmd(ctl, cmd, argc - 1, argv + 1);
}

int
ctl_main(int argc, char **argv)
{
    struct ctl ctl = {.output = CTL_OUT_TABLE};
    const char *env = getenv("SHOAL_SOCKET");
    int rc;

    ctl.socket = env && *env ? env : CTL_DEFAULT_SOCKET;
    rc = dispatch(&ctl, argc - 1, argv + 1);
    shoal_close(ctl.client);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
        rc = ctl_error(CTL_EXIT_ERROR, "writing output: %s",
                       strerror(errno));
    }
    return rc;
}
