/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * control_network.c: the network requests (SWARMKIT.md 1.4): the spec's
 * validation with its IPAM checks, create, get and remove.
 *
 * Drivers: SwarmKit's inert provider refuses every driver; shoal, which
 * allocates nothing yet, accepts no driver or "overlay" (the driver every
 * swarm network uses) and for IPAM no driver or "default", and refuses
 * the rest as invalid arguments. Whether a network is in use, and the
 * single ingress network, are checked in control_check.c.
 */
#include "control/control_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int net_fail(char *msg, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
net_fail(char *msg, size_t len, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return code;
}

static bool
driver_is(const struct shoal_driver *d, const char *name)
{
    return !d || !d->name || !*d->name || strcmp(d->name, name) == 0;
}

static int
ipam_config_valid(const struct shoal_ipam_config *ic, char *msg, size_t len)
{
    uint8_t net[16], ip[16];
    int fam, ip_fam, bits, range_bits;

    if (!control_cidr_parse(ic->subnet, net, &fam, &bits)) {
        return net_fail(msg, len, SHOAL_INVALID_ARGUMENT,
                        "ipam configuration: invalid subnet %s",
                        ic->subnet ? ic->subnet : "");
    }
    if (ic->range && *ic->range) {
        if (!control_cidr_parse(ic->range, ip, &ip_fam, &range_bits)) {
            return net_fail(msg, len, SHOAL_INVALID_ARGUMENT,
                            "ipam configuration: invalid range %s", ic->range);
        }
        if (range_bits < bits ||
            !control_cidr_contains(net, fam, bits, ip, ip_fam)) {
            return net_fail(msg, len, SHOAL_INVALID_ARGUMENT,
                            "ipam configuration: subnet %s does not contain "
                            "range %s",
                            ic->subnet, ic->range);
        }
    }
    if (ic->gateway && *ic->gateway) {
        if (!control_ip_parse(ic->gateway, ip, &ip_fam)) {
            return net_fail(msg, len, SHOAL_INVALID_ARGUMENT,
                            "ipam configuration: invalid gateway %s",
                            ic->gateway);
        }
        if (!control_cidr_contains(net, fam, bits, ip, ip_fam)) {
            return net_fail(msg, len, SHOAL_INVALID_ARGUMENT,
                            "ipam configuration: subnet %s does not contain "
                            "gateway %s",
                            ic->subnet, ic->gateway);
        }
    }
    return SHOAL_OK;
}

int
control_network_spec_valid(const struct shoal_network_spec *spec, char *msg,
                           size_t msg_len)
{
    int code;

    if (!spec) {
        return net_fail(msg, msg_len, SHOAL_INVALID_ARGUMENT,
                        "invalid argument: spec must be provided");
    }
    if (spec->ingress && !driver_is(spec->driver_config, "overlay")) {
        return net_fail(msg, msg_len, SHOAL_UNIMPLEMENTED,
                        "only overlay driver is currently supported for "
                        "ingress network");
    }
    if (spec->attachable && spec->ingress) {
        return net_fail(msg, msg_len, SHOAL_INVALID_ARGUMENT,
                        "ingress network cannot be attachable");
    }
    code = control_name_rule_a(spec->annotations.name, msg, msg_len);
    if (code != SHOAL_OK) {
        return code;
    }
    if (wire_map_get(&spec->annotations.labels, CONTROL_PREDEFINED_LABEL)) {
        return net_fail(msg, msg_len, SHOAL_PERMISSION_DENIED,
                        "label %s is for internally created predefined "
                        "networks and cannot be applied by users",
                        CONTROL_PREDEFINED_LABEL);
    }
    if (!driver_is(spec->driver_config, "overlay")) {
        return net_fail(msg, msg_len, SHOAL_INVALID_ARGUMENT,
                        "network driver '%s' is not supported: only overlay",
                        spec->driver_config->name);
    }
    if (!spec->ipam) {
        return SHOAL_OK;
    }
    if (!driver_is(spec->ipam->driver, "default")) {
        return net_fail(msg, msg_len, SHOAL_INVALID_ARGUMENT,
                        "ipam driver '%s' is not supported: only default",
                        spec->ipam->driver->name);
    }
    for (size_t i = 0; i < spec->ipam->n_configs; i++) {
        code = ipam_config_valid(&spec->ipam->configs[i], msg, msg_len);
        if (code != SHOAL_OK) {
            return code;
        }
    }
    return SHOAL_OK;
}

static int
network_create(struct control *c, const struct shoal_create_network_request *r,
               struct control_out *out)
{
    char msg[sizeof out->message];
    struct shoal_network *n;
    char id[ID_LEN + 1];
    int64_t now = time_now_ns();
    int code, rc;

    code = control_network_spec_valid(r->spec, msg, sizeof msg);
    if (code != SHOAL_OK) {
        return control_fail(out, code, "%s", msg);
    }
    if (store_get_by_name(c->store, SHOAL_KIND_NETWORK,
                          r->spec->annotations.name)) {
        return control_fail(out, SHOAL_ALREADY_EXISTS,
                            "name conflicts with an existing object: "
                            "network %s already exists",
                            r->spec->annotations.name);
    }
    if (id_new(id) != 0) {
        return control_fail(out, SHOAL_INTERNAL, "no random source for ids");
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        return ERR_NOMEM;
    }
    n->id = str_dup(id);
    n->meta.created_at = now;
    n->meta.updated_at = now;
    if (!n->id || wire_copy(&wire_type_network_spec, &n->spec, r->spec)) {
        control_obj_free(SHOAL_KIND_NETWORK, n);
        return ERR_NOMEM;
    }
    rc = control_propose(out, SHOAL_ACTION_CREATE, SHOAL_KIND_NETWORK, n);
    if (rc != 0) {
        return rc;
    }
    control_reply_with(out, SHOAL_KIND_NETWORK, id);
    return control_precheck(c, out);
}

int
control_network_handle(struct control *c, uint16_t type, const void *req,
                       struct control_out *out)
{
    const struct shoal_id_request *ir = req;
    const void *obj;

    switch (type) {
    case WIRE_MSG_CREATE_NETWORK:
        return network_create(c, req, out);
    case WIRE_MSG_GET_NETWORK:
        obj = control_lookup(c, out, SHOAL_KIND_NETWORK, ir->id);
        return obj ? control_reply_copy(c, out, SHOAL_KIND_NETWORK, obj) : 0;
    case WIRE_MSG_REMOVE_NETWORK:
        return control_remove_by_id(c, out, SHOAL_KIND_NETWORK, ir->id);
    default:
        return control_fail(out, SHOAL_UNIMPLEMENTED,
                            "unknown network request %u", (unsigned)type);
    }
}
