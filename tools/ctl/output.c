/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * output.c: how shoalctl prints: aligned tables through libsmartcols,
 * JSON through the schema's printer (wire_to_json), ids with -q; and the
 * list, inspect and remove commands every noun shares.
 *
 * Secret data is removed from every object before it is printed, even
 * though the daemon strips it already: a client bug or an older daemon
 * must not be able to put a secret on a terminal.
 */
#include "ctl.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "shoal/json.h"

struct libscols_table *
ctl_table_new(const char *const *cols, size_t n)
{
    struct libscols_table *t = scols_new_table();

    if (!t) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!scols_table_new_column(t, cols[i], 0, 0)) {
            scols_unref_table(t);
            return NULL;
        }
    }
    return t;
}

int
ctl_table_row(struct libscols_table *t, const char *const *cells, size_t n)
{
    struct libscols_line *ln = scols_table_new_line(t, NULL);

    if (!ln) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (scols_line_set_data(ln, i, cells[i] ? cells[i] : "") != 0) {
            return -1;
        }
    }
    return 0;
}

/* libsmartcols prints nothing for a table without rows, but a person
 * (and a script counting lines) expects the header alone. */
static int
ctl_table_print_header(struct libscols_table *t)
{
    size_t n = scols_table_get_ncols(t);

    for (size_t i = 0; i < n; i++) {
        struct libscols_column *c = scols_table_get_column(t, i);
        const char *name = scols_cell_get_data(scols_column_get_header(c));

        printf("%s%s", i ? " " : "", name ? name : "");
    }
    putchar('\n');
    return 0;
}

int
ctl_table_print(struct libscols_table *t)
{
    int rc = scols_table_get_nlines(t) == 0 ? ctl_table_print_header(t)
                                             : scols_print_table(t);

    scols_unref_table(t);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

int
ctl_json_print(json_t *j)
{
    int rc;

    if (!j) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    rc = json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(j);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

static void
wipe_bytes(struct shoal_bytes *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->len);
        free(b->data);
    }
    *b = (struct shoal_bytes){0};
}

void
ctl_redact(enum shoal_kind kind, void *obj)
{
    if (kind == SHOAL_KIND_SECRET) {
        wipe_bytes(&((struct shoal_secret *)obj)->spec.data);
    } else if (kind == SHOAL_KIND_CLUSTER) {
        wipe_bytes(&((struct shoal_cluster *)obj)->root_ca.ca_key);
    }
}

static int
print_ids(enum shoal_kind kind, const uint8_t *items, size_t n,
          size_t stride)
{
    for (size_t i = 0; i < n; i++) {
        const char *id = wire_object_id(kind, items + i * stride);

        printf("%s\n", id ? id : "");
    }
    return CTL_EXIT_OK;
}

static int
print_json_list(enum shoal_kind kind, uint8_t *items, size_t n,
                size_t stride)
{
    const struct wire_type *t = wire_kind_type(kind);
    json_t *a = json_array();

    for (size_t i = 0; a && i < n; i++) {
        json_t *o;

        ctl_redact(kind, items + i * stride);
        o = wire_to_json(t, items + i * stride);
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return ctl_json_print(a);
}

static int
print_table(const uint8_t *items, size_t count, size_t stride,
            const struct ctl_columns *cols)
{
    struct libscols_table *t = ctl_table_new(cols->names, cols->n);
    char **cells = calloc(cols->n, sizeof *cells);
    int rc = t && cells ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < count; i++) {
        cols->row(cols->ctx, items + i * stride, cells);
        rc = ctl_table_row(t, (const char *const *)cells, cols->n);
        for (size_t k = 0; k < cols->n; k++) {
            free(cells[k]);
            cells[k] = NULL;
        }
    }
    free(cells);
    if (rc != 0) {
        if (t) {
            scols_unref_table(t);
        }
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    return ctl_table_print(t);
}

int
ctl_print_list(struct ctl *ctl, enum shoal_kind kind,
               struct shoal_list_reply *r, const struct ctl_columns *cols)
{
    size_t count, stride = wire_type_size(wire_kind_type(kind));
    uint8_t *items = ctl_list_items(kind, r, &count);

    if (ctl->quiet) {
        return print_ids(kind, items, count, stride);
    }
    if (ctl->output == CTL_OUT_JSON) {
        return print_json_list(kind, items, count, stride);
    }
    return print_table(items, count, stride, cols);
}

int
ctl_print_object(struct ctl *ctl, enum shoal_kind kind, void *obj)
{
    if (ctl->quiet) {
        printf("%s\n", wire_object_id(kind, obj));
        return CTL_EXIT_OK;
    }
    ctl_redact(kind, obj);
    return ctl_json_print(wire_to_json(wire_kind_type(kind), obj));
}

void
ctl_format_time(int64_t ns, char *buf, size_t cap)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;

    if (ns <= 0 || !gmtime_r(&secs, &tm) ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, cap, "%s", ns <= 0 ? "" : "?");
    }
}

const char *
ctl_task_state_name(uint32_t s)
{
    static const struct {
        uint32_t v;
        const char *name;
    } names[] = {
        {SHOAL_TASK_NEW, "new"},
        {SHOAL_TASK_PENDING, "pending"},
        {SHOAL_TASK_ASSIGNED, "assigned"},
        {SHOAL_TASK_ACCEPTED, "accepted"},
        {SHOAL_TASK_PREPARING, "preparing"},
        {SHOAL_TASK_READY, "ready"},
        {SHOAL_TASK_STARTING, "starting"},
        {SHOAL_TASK_RUNNING, "running"},
        {SHOAL_TASK_COMPLETE, "complete"},
        {SHOAL_TASK_SHUTDOWN, "shutdown"},
        {SHOAL_TASK_FAILED, "failed"},
        {SHOAL_TASK_REJECTED, "rejected"},
        {SHOAL_TASK_REMOVE, "remove"},
        {SHOAL_TASK_ORPHANED, "orphaned"},
    };

    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        if (names[i].v == s) {
            return names[i].name;
        }
    }
    return "unknown";
}

static const char *
name_of(const char *const *names, size_t n, uint32_t v)
{
    return v < n && names[v] ? names[v] : "unknown";
}

const char *
ctl_node_state_name(uint32_t s)
{
    static const char *const names[] = {"unknown", "down", "ready",
                                        "disconnected"};

    return name_of(names, ARRAY_LEN(names), s);
}

const char *
ctl_availability_name(uint32_t a)
{
    static const char *const names[] = {"active", "pause", "drain"};

    return name_of(names, ARRAY_LEN(names), a);
}

const char *
ctl_role_name(uint32_t r)
{
    static const char *const names[] = {"worker", "manager"};

    return name_of(names, ARRAY_LEN(names), r);
}

const char *
ctl_action_name(uint32_t a)
{
    static const char *const names[] = {
        [SHOAL_ACTION_CREATE] = "create",
        [SHOAL_ACTION_UPDATE] = "update",
        [SHOAL_ACTION_REMOVE] = "remove",
    };

    return name_of(names, ARRAY_LEN(names), a);
}

/* Shared commands. */

int
ctl_cmd_list(struct ctl *ctl, enum shoal_kind kind,
             const struct shoal_list_request *req,
             const struct ctl_columns *cols)
{
    struct shoal_list_reply r = {0};
    struct shoal_list_request empty = {0};
    int rc = ctl_call(ctl, ctl_kind_list_type(kind), req ? req : &empty, &r);

    if (rc != 0) {
        return ctl_fail(ctl, rc);
    }
    rc = ctl_print_list(ctl, kind, &r, cols);
    wire_free(&wire_type_list_reply, &r);
    return rc;
}

int
ctl_cmd_inspect(struct ctl *ctl, enum shoal_kind kind,
                const struct ctl_args *a)
{
    const struct wire_type *t = wire_kind_type(kind);
    void *obj = calloc(1, wire_type_size(t));
    int rc;

    if (!obj) {
        return ctl_error(CTL_EXIT_ERROR, "out of memory");
    }
    rc = ctl_lookup(ctl, kind, a->pos[0], obj);
    if (rc == 0) {
        rc = ctl_print_object(ctl, kind, obj);
    }
    wire_free(t, obj);
    free(obj);
    return rc;
}

int
ctl_cmd_remove(struct ctl *ctl, enum shoal_kind kind,
               const struct ctl_args *a, bool force)
{
    int worst = CTL_EXIT_OK;

    for (size_t i = 0; i < a->n_pos; i++) {
        struct shoal_id_request req = {.force = force};
        struct ctl_ref ref;
        int rc = ctl_resolve(ctl, kind, a->pos[i], &ref);

        if (rc == 0) {
            req.id = ref.id;
            rc = ctl_call(ctl, ctl_kind_remove_type(kind), &req, NULL);
            rc = rc == 0 ? 0 : ctl_fail(ctl, rc);
            ctl_ref_fini(&ref);
        }
        if (rc == 0) {
            printf("%s\n", a->pos[i]);
        } else if (worst == CTL_EXIT_OK) {
            worst = rc;
        }
    }
    return worst;
}

void
ctl_map_del(struct shoal_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].key, key) != 0) {
            continue;
        }
        free(m->v[i].key);
        free(m->v[i].value);
        memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
        m->n--;
        return;
    }
}

int
ctl_apply_labels(const struct ctl_args *a, const char *add, const char *rm,
                 struct shoal_map *m)
{
    const char *v, *value;
    size_t it = 0, klen;

    while (rm && (v = ctl_arg_next(a, rm, &it))) {
        ctl_map_del(m, v);
    }
    it = 0;
    while (add && (v = ctl_arg_next(a, add, &it))) {
        char *key;
        int rc;

        if (ctl_parse_kv(v, false, &klen, &value) != 0) {
            return ctl_usage(a->cmd, "invalid --%s \"%s\": expected "
                                     "key=value", add, v);
        }
        key = strndup(v, klen);
        rc = key ? wire_map_set(m, key, value) : ERR_NOMEM;
        free(key);
        if (rc != 0) {
            return ctl_error(CTL_EXIT_ERROR, "out of memory");
        }
    }
    return 0;
}
