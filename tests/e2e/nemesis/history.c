/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * history.c: writing and reading the operation log of history.h.
 *
 * Reading keeps every line's buffer and cuts it into tokens in place, so
 * an op's strings stay valid as long as the struct nem_hist. Pairing is
 * strict (one operation in flight per client, the completion names the
 * same op and key) because a history that breaks it was written by a
 * broken runner, and checking it would prove nothing.
 */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The open invoke of one client while the file is read. */
struct pending {
    const char *client;
    size_t op; /* index into h->ops */
};

struct reader {
    struct nem_hist *h;
    struct pending *pend;
    size_t n_pend;
    size_t cap_pend;
    char *err;
    size_t errlen;
    size_t line;
};

const char *
nem_phase_name(enum nem_phase ph)
{
    switch (ph) {
    case NEM_INVOKE:
        return "invoke";
    case NEM_OK:
        return "ok";
    case NEM_FAIL:
        return "fail";
    case NEM_INFO:
        return "info";
    }
    return "?";
}

static int
parse_phase(const char *s, enum nem_phase *out)
{
    static const enum nem_phase all[] = {NEM_INVOKE, NEM_OK, NEM_FAIL,
                                         NEM_INFO};

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, nem_phase_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -EINVAL;
}

static int fail_line(struct reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail_line(struct reader *rd, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (rd->errlen > 0) {
        n = snprintf(rd->err, rd->errlen, "line %zu: ", rd->line);
        if (n < 0 || (size_t)n >= rd->errlen) {
            n = 0;
        }
        va_start(ap, fmt);
        vsnprintf(rd->err + n, rd->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int
parse_time(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 ||
        v == NEM_TIME_NEVER) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Keep line and its token array in h, which frees them later. */
static int
keep_line(struct nem_hist *h, char *line, char **argv)
{
    if (h->n_lines == h->cap_lines) {
        size_t cap = h->cap_lines ? 2 * h->cap_lines : 64;
        char **l = realloc(h->lines, cap * sizeof *l);

        if (l == NULL) {
            return -ENOMEM;
        }
        h->lines = l;
        char ***a = realloc(h->argvs, cap * sizeof *a);
        if (a == NULL) {
            return -ENOMEM;
        }
        h->argvs = a;
        h->cap_lines = cap;
    }
    h->lines[h->n_lines] = line;
    h->argvs[h->n_lines] = argv;
    h->n_lines++;
    return 0;
}

static struct nem_op *
new_op(struct nem_hist *h)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        struct nem_op *ops = realloc(h->ops, cap * sizeof *ops);

        if (ops == NULL) {
            return NULL;
        }
        h->ops = ops;
        h->cap = cap;
    }
    memset(&h->ops[h->n], 0, sizeof h->ops[0]);
    return &h->ops[h->n++];
}

static struct pending *
find_pending(struct reader *rd, const char *client)
{
    for (size_t i = 0; i < rd->n_pend; i++) {
        if (strcmp(rd->pend[i].client, client) == 0) {
            return &rd->pend[i];
        }
    }
    return NULL;
}

static int
add_pending(struct reader *rd, const char *client, size_t op)
{
    if (rd->n_pend == rd->cap_pend) {
        size_t cap = rd->cap_pend ? 2 * rd->cap_pend : 16;
        struct pending *p = realloc(rd->pend, cap * sizeof *p);

        if (p == NULL) {
            return -ENOMEM;
        }
        rd->pend = p;
        rd->cap_pend = cap;
    }
    rd->pend[rd->n_pend].client = client;
    rd->pend[rd->n_pend].op = op;
    rd->n_pend++;
    return 0;
}

static int
on_invoke(struct reader *rd, char **tok, size_t n, int64_t t)
{
    struct nem_op *op;

    if (find_pending(rd, tok[1]) != NULL) {
        return fail_line(rd,
                         "client %s invokes while an operation of "
                         "its own is in flight",
                         tok[1]);
    }
    op = new_op(rd->h);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->client = tok[1];
    op->op = tok[2];
    op->key = tok[3];
    op->in_args = tok + 4;
    op->n_in = n - 5;
    op->outcome = NEM_INFO;
    op->inv = t;
    op->ret = NEM_TIME_NEVER;
    op->line_inv = rd->line;
    return add_pending(rd, tok[1], rd->h->n - 1);
}

static int
on_complete(struct reader *rd, enum nem_phase ph, char **tok, size_t n,
            int64_t t)
{
    struct pending *p = find_pending(rd, tok[1]);
    struct nem_op *op;

    if (p == NULL) {
        return fail_line(rd,
                         "%s of client %s, which has nothing in "
                         "flight",
                         nem_phase_name(ph), tok[1]);
    }
    op = &rd->h->ops[p->op];
    if (strcmp(op->op, tok[2]) != 0 || strcmp(op->key, tok[3]) != 0) {
        return fail_line(rd,
                         "%s %s %s does not match the invoke of "
                         "line %zu (%s %s)",
                         nem_phase_name(ph), tok[2], tok[3], op->line_inv,
                         op->op, op->key);
    }
    if (t < op->inv) {
        return fail_line(rd, "completes before its invoke of line %zu",
                         op->line_inv);
    }
    op->out_args = tok + 4;
    op->n_out = n - 5;
    op->outcome = ph;
    op->ret = ph == NEM_INFO ? NEM_TIME_NEVER : t;
    op->line_ret = rd->line;
    *p = rd->pend[--rd->n_pend];
    return 0;
}

/* Cut line into tokens; *argv is malloc'd and NULL-terminated. */
static int
split(char *line, char ***argv, size_t *n)
{
    size_t cap = 8, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *save = NULL;

    if (v == NULL) {
        return -ENOMEM;
    }
    for (char *t = strtok_r(line, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        if (k + 1 == cap) {
            char **w = realloc(v, 2 * cap * sizeof *v);

            if (w == NULL) {
                free(v);
                return -ENOMEM;
            }
            v = w;
            cap *= 2;
        }
        v[k++] = t;
    }
    v[k] = NULL;
    *argv = v;
    *n = k;
    return 0;
}

static int
read_line(struct reader *rd, char *line)
{
    enum nem_phase ph;
    char **tok;
    size_t n;
    int64_t t;
    int rc;

    line[strcspn(line, "\r\n")] = '\0';
    rc = split(line, &tok, &n);
    if (rc != 0) {
        free(line);
        return rc;
    }
    rc = keep_line(rd->h, line, tok);
    if (rc != 0) {
        free(tok);
        free(line);
        return rc;
    }
    if (n == 0 || tok[0][0] == '#') {
        return 0;
    }
    if (n < 5) {
        return fail_line(rd,
                         "expected <phase> <client> <op> <key> "
                         "[args] <time>, got %zu field(s)",
                         n);
    }
    if (parse_phase(tok[0], &ph) != 0) {
        return fail_line(rd, "unknown phase '%s'", tok[0]);
    }
    if (parse_time(tok[n - 1], &t) != 0) {
        return fail_line(rd, "bad time '%s'", tok[n - 1]);
    }
    if (ph == NEM_INVOKE) {
        return on_invoke(rd, tok, n, t);
    }
    return on_complete(rd, ph, tok, n, t);
}

int
nem_hist_read(FILE *f, struct nem_hist *h, char *err, size_t errlen)
{
    struct reader rd = {.h = h, .err = err, .errlen = errlen};
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;

    if (errlen > 0) {
        err[0] = '\0';
    }
    while (getline(&line, &cap, f) >= 0) {
        rd.line++;
        /* read_line takes the buffer; getline makes the next one. */
        rc = read_line(&rd, line);
        line = NULL;
        cap = 0;
        if (rc != 0) {
            break;
        }
    }
    free(line);
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
    }
    /* An invoke never completed stays an info op, as set by on_invoke. */
    free(rd.pend);
    return rc;
}

int
nem_hist_load(const char *path, struct nem_hist *h, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    int rc;

    if (f == NULL) {
        rc = -errno;
        if (errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        }
        return rc;
    }
    rc = nem_hist_read(f, h, err, errlen);
    fclose(f);
    return rc;
}

void
nem_hist_fini(struct nem_hist *h)
{
    for (size_t i = 0; i < h->n_lines; i++) {
        free(h->lines[i]);
        free(h->argvs[i]);
    }
    free(h->lines);
    free(h->argvs);
    free(h->ops);
    memset(h, 0, sizeof *h);
}

/* ---- Recording --------------------------------------------------------- */

int64_t
nem_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool
is_token(const char *s)
{
    return s != NULL && s[0] != '\0' && strpbrk(s, " \t\r\n") == NULL;
}

int
nem_rec_open(struct nem_rec *r, const char *path)
{
    r->f = fopen(path, "w");
    if (r->f == NULL) {
        return -errno;
    }
    pthread_mutex_init(&r->mu, NULL);
    return 0;
}

int
nem_rec_event(struct nem_rec *r, enum nem_phase ph, const char *client,
              const char *op, const char *key, const char *args)
{
    bool has_args = args != NULL && args[0] != '\0';
    int rc = 0;

    if (!is_token(client) || !is_token(op) || !is_token(key) ||
        (has_args && strpbrk(args, "\r\n") != NULL)) {
        return -EINVAL;
    }
    pthread_mutex_lock(&r->mu);
    /* Stamped under the lock, so that the file's times never go back. */
    if (fprintf(r->f, "%s %s %s %s%s%s %" PRId64 "\n", nem_phase_name(ph),
                client, op, key, has_args ? " " : "", has_args ? args : "",
                nem_now_ns()) < 0 ||
        fflush(r->f) != 0) {
        rc = -errno;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int
nem_rec_close(struct nem_rec *r)
{
    int rc = 0;

    if (r->f == NULL) {
        return 0;
    }
    if (fclose(r->f) != 0) {
        rc = -errno;
    }
    r->f = NULL;
    pthread_mutex_destroy(&r->mu);
    return rc;
}
