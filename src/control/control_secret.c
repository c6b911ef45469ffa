/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_secret.c: the secret and config requests (SWARMKIT.md 1.6 and
 * 1.7): create with the name rule B and the size limits, get, update of
 * labels only, remove.
 *
 * Secrets and configs differ in their size limit, in the driver a secret
 * may name, and in that a secret's data never leaves the manager (every
 * reply goes through control_redact()); the code is shared, with the kind
 * choosing. Whether one is in use is checked in control_check.c.
 */
#include "control/control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/base.h"

/* The parts secrets and configs share, reached by kind. */
struct blob_view {
    const char *id;
    uint64_t version;
    struct shoal_annotations *annotations;
    struct shoal_bytes *data;
};

static struct blob_view
blob_view(enum shoal_kind kind, const void *obj)
{
    struct blob_view bv;

    if (kind == SHOAL_KIND_SECRET) {
        struct shoal_secret *s = (struct shoal_secret *)obj;

        bv = (struct blob_view){s->id, s->meta.version, &s->spec.annotations,
                                &s->spec.data};
    } else {
        struct shoal_config *cf = (struct shoal_config *)obj;

        bv = (struct blob_view){cf->id, cf->meta.version, &cf->spec.annotations,
                                &cf->spec.data};
    }
    return bv;
}

static size_t
blob_max(enum shoal_kind kind)
{
    return kind == SHOAL_KIND_SECRET ? CONTROL_MAX_SECRET_BYTES
                                     : CONTROL_MAX_CONFIG_BYTES;
}

/*
 * The spec rules: name rule B, then a secret driver (shoal has no secret
 * driver plugins, so a named driver is refused) or a size limit.
 */
static int
blob_spec_valid(enum shoal_kind kind, const struct shoal_annotations *ann,
                const struct shoal_bytes *data,
                const struct shoal_driver *driver, struct control_out *out)
{
    const char *what = wire_kind_name(kind);
    int code;

    code = control_name_rule_b(ann->name, out->message, sizeof out->message);
    if (code != SHOAL_OK) {
        out->code = code;
        return code;
    }
    if (driver) {
        if (!driver->name || !*driver->name) {
            control_fail(out, SHOAL_INVALID_ARGUMENT,
                         "secret driver must have a name");
        } else {
            control_fail(out, SHOAL_INVALID_ARGUMENT,
                         "secret driver %s is not supported by shoal",
                         driver->name);
        }
        return out->code;
    }
    if (data->len < 1 || data->len >= blob_max(kind)) {
        control_fail(out, SHOAL_INVALID_ARGUMENT,
                     "%s data must be larger than 0 and less than %zu bytes",
                     what, blob_max(kind));
        return out->code;
    }
    return SHOAL_OK;
}

static void *
blob_new(enum shoal_kind kind, const void *spec)
{
    const struct wire_type *st = kind == SHOAL_KIND_SECRET
                                     ? &wire_type_secret_spec
                                     : &wire_type_config_spec;
    char id[ID_LEN + 1];
    int64_t now = time_now_ns();
    void *obj;

    if (id_new(id) != 0) {
        return NULL;
    }
    if (kind == SHOAL_KIND_SECRET) {
        struct shoal_secret *s = calloc(1, sizeof *s);

        obj = s;
        if (s) {
            s->id = str_dup(id);
            s->meta.created_at = s->meta.updated_at = now;
            if (!s->id || wire_copy(st, &s->spec, spec) != 0) {
                goto fail;
            }
        }
    } else {
        struct shoal_config *cf = calloc(1, sizeof *cf);

        obj = cf;
        if (cf) {
            cf->id = str_dup(id);
            cf->meta.created_at = cf->meta.updated_at = now;
            if (!cf->id || wire_copy(st, &cf->spec, spec) != 0) {
                goto fail;
            }
        }
    }
    return obj;

fail:
    control_obj_free(kind, obj);
    return NULL;
}

static int
blob_create(struct control *c, enum shoal_kind kind, const void *spec,
            struct control_out *out)
{
    const struct shoal_annotations *ann;
    const struct shoal_bytes *data;
    const struct shoal_driver *driver = NULL;
    void *obj;
    int rc;

    if (!spec) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: spec must be provided");
    }
    if (kind == SHOAL_KIND_SECRET) {
        const struct shoal_secret_spec *ss = spec;

        ann = &ss->annotations;
        data = &ss->data;
        driver = ss->driver;
    } else {
        const struct shoal_config_spec *cs = spec;

        ann = &cs->annotations;
        data = &cs->data;
    }
    if (blob_spec_valid(kind, ann, data, driver, out) != SHOAL_OK) {
        return 0;
    }
    if (store_get_by_name(c->store, kind, ann->name)) {
        return control_fail(out, SHOAL_ALREADY_EXISTS, "%s %s already exists",
                            wire_kind_name(kind), ann->name);
    }
    obj = blob_new(kind, spec);
    if (!obj) {
        return ERR_NOMEM;
    }
    control_reply_with(out, kind, wire_object_id(kind, obj));
    rc = control_propose(out, SHOAL_ACTION_CREATE, kind, obj);
    if (rc != 0) {
        return rc;
    }
    return control_precheck(c, out);
}

/* Only labels may change: the name must stay, and data, when given, must
 * be the stored data (compared in constant time, as SwarmKit does). */
static int
blob_update(struct control *c, enum shoal_kind kind, const char *id,
            uint64_t version, const struct shoal_annotations *ann,
            const struct shoal_bytes *data, struct control_out *out)
{
    struct blob_view cur, next;
    const void *stored;
    void *obj;
    bool same_data;
    int rc;

    if (!id || !*id) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: %s id must be provided",
                            wire_kind_name(kind));
    }
    if (version == 0 || !ann) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "invalid argument: a version (1 or more) and a "
                            "spec must be provided");
    }
    stored = control_lookup(c, out, kind, id);
    if (!stored) {
        return 0;
    }
    cur = blob_view(kind, stored);
    if (!control_version_ok(out, version, cur.version)) {
        return 0;
    }
    same_data = data->len == 0 ||
                (data->len == cur.data->len &&
                 CRYPTO_memcmp(data->data, cur.data->data, data->len) == 0);
    if (!ann->name || strcmp(ann->name, cur.annotations->name) != 0 ||
        !same_data) {
        return control_fail(out, SHOAL_INVALID_ARGUMENT,
                            "only updates to Labels are allowed");
    }

    obj = control_dup(kind, stored);
    if (!obj) {
        return ERR_NOMEM;
    }
    next = blob_view(kind, obj);
    wire_free(&wire_type_annotations, next.annotations);
    if (wire_copy(&wire_type_annotations, next.annotations, ann) != 0) {
        control_obj_free(kind, obj);
        return ERR_NOMEM;
    }
    wire_object_meta(kind, obj)->version = version;
    wire_object_meta(kind, obj)->updated_at = time_now_ns();
    rc = control_propose(out, SHOAL_ACTION_UPDATE, kind, obj);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, kind, id);
    return control_precheck(c, out);
}

int
control_secret_handle(struct control *c, uint16_t type, const void *req,
                      struct control_out *out)
{
    const struct shoal_update_secret_request *ur = req;
    const struct shoal_id_request *ir = req;
    const void *obj;

    switch (type) {
    case WIRE_MSG_CREATE_SECRET:
        return blob_create(
            c, SHOAL_KIND_SECRET,
            ((const struct shoal_create_secret_request *)req)->spec, out);
    case WIRE_MSG_GET_SECRET:
        obj = control_lookup(c, out, SHOAL_KIND_SECRET, ir->id);
        return obj ? control_reply_copy(c, out, SHOAL_KIND_SECRET, obj) : 0;
    case WIRE_MSG_UPDATE_SECRET:
        return blob_update(c, SHOAL_KIND_SECRET, ur->id, ur->version,
                           ur->spec ? &ur->spec->annotations : NULL,
                           ur->spec ? &ur->spec->data : NULL, out);
    case WIRE_MSG_REMOVE_SECRET:
        return control_remove_by_id(c, out, SHOAL_KIND_SECRET, ir->id);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "unknown secret request %u", (unsigned)type);
    }
}

int
control_config_handle(struct control *c, uint16_t type, const void *req,
                      struct control_out *out)
{
    const struct shoal_update_config_request *ur = req;
    const struct shoal_id_request *ir = req;
    const void *obj;

    switch (type) {
    case WIRE_MSG_CREATE_CONFIG:
        return blob_create(
            c, SHOAL_KIND_CONFIG,
            ((const struct shoal_create_config_request *)req)->spec, out);
    case WIRE_MSG_GET_CONFIG:
        obj = control_lookup(c, out, SHOAL_KIND_CONFIG, ir->id);
        return obj ? control_reply_copy(c, out, SHOAL_KIND_CONFIG, obj) : 0;
    case WIRE_MSG_UPDATE_CONFIG:
        return blob_update(c, SHOAL_KIND_CONFIG, ur->id, ur->version,
                           ur->spec ? &ur->spec->annotations : NULL,
                           ur->spec ? &ur->spec->data : NULL, out);
    case WIRE_MSG_REMOVE_CONFIG:
        return control_remove_by_id(c, out, SHOAL_KIND_CONFIG, ir->id);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "unknown config request %u", (unsigned)type);
    }
}
