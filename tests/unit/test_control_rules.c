/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_control_rules.c: the stateless rules of the control API: name
 * rules A and B, image references, placement constraints, CIDRs, join
 * tokens, and the service and network spec validators.
 *
 * These need no store: each rule is called directly through
 * control/control_int.h, with one accepted and one refused input at
 * least.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "control/control_int.h"
#include "shoal/status.h"
#include "shoal/wire.h"

static char msg[512];

TestSuite(control_rules, .timeout = 5.0);

/* Rule A accepts letters and digits with - and _ between them. */
Test(control_rules, name_a_accepts_dns_components)
{
    cr_expect_eq(control_name_rule_a("web", msg, sizeof msg), SHOAL_OK);
    cr_expect_eq(control_name_rule_a("a-b_c9", msg, sizeof msg), SHOAL_OK);
    cr_expect_eq(control_name_rule_a("A--9", msg, sizeof msg), SHOAL_OK);
    cr_expect_eq(control_name_rule_a("x", msg, sizeof msg), SHOAL_OK);
}

/* Rule A refuses empty names, dots, edge separators and 64 characters. */
Test(control_rules, name_a_refuses_bad_names)
{
    char long_name[65];

    memset(long_name, 'a', 64);
    long_name[64] = '\0';

    cr_expect_eq(control_name_rule_a("", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "meta: name must be provided");
    cr_expect_eq(control_name_rule_a(NULL, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_a("-web", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_a("web_", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_a("a.b", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_a(long_name, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    long_name[63] = '\0';
    cr_expect_eq(control_name_rule_a(long_name, msg, sizeof msg), SHOAL_OK);
}

/* Rule B allows dots inside and 64 characters. */
Test(control_rules, name_b_accepts_dots_inside)
{
    char name[65];

    memset(name, 'b', 64);
    name[64] = '\0';

    cr_expect_eq(control_name_rule_b("my.secret-1_x", msg, sizeof msg),
                 SHOAL_OK);
    cr_expect_eq(control_name_rule_b(name, msg, sizeof msg), SHOAL_OK);
}

/* Rule B refuses edge dots, spaces, and 65 characters. */
Test(control_rules, name_b_refuses_bad_names)
{
    char name[66];

    memset(name, 'b', 65);
    name[65] = '\0';

    cr_expect_eq(control_name_rule_b(".x", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_b("x.", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_b("a b", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_b("", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_name_rule_b(name, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
}

/* Normalised docker references of every shape are accepted. */
Test(control_rules, image_accepts_valid_references)
{
    static const char *const ok[] = {
        "nginx",
        "nginx:1.25",
        "library/nginx:latest",
        "registry.example.com:5000/team/app@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "localhost/foo",
        "a__b/c-d--e.f",
        "docker.io/library/busybox:1.36.1-musl",
        "Registry.Example.com/app",
    };

    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        cr_expect_eq(control_image_ref(ok[i], msg, sizeof msg), SHOAL_OK,
                     "%s: %s", ok[i], msg);
    }
}

/* Bad characters, upper case, empty parts and bad digests are refused. */
Test(control_rules, image_refuses_invalid_references)
{
    static const char *const bad[] = {
        "busybox###",
        "Busybox",
        "nginx:",
        ":tag",
        "foo//bar",
        "nginx:-bad",
        "nginx@sha256:abc",
        "nginx@md5:0123456789abcdef0123456789abcdef",
        "a_.b",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "host:port/app",
        "",
    };

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        cr_expect_eq(control_image_ref(bad[i], msg, sizeof msg),
                     SHOAL_INVALID_ARGUMENT, "%s accepted", bad[i]);
    }
}

/* key==value and key!=value with SwarmKit's key and value syntax pass. */
Test(control_rules, constraint_accepts_both_operators)
{
    cr_expect_eq(control_constraint("node.role==manager", msg, sizeof msg),
                 SHOAL_OK);
    cr_expect_eq(
        control_constraint(" node.labels.zone != eu-west/1 ", msg, sizeof msg),
        SHOAL_OK);
    cr_expect_eq(
        control_constraint("engine.labels.os==linux*", msg, sizeof msg),
        SHOAL_OK);
}

/* No operator, a one-letter key, or a value with '!' or '=' fails. */
Test(control_rules, constraint_refuses_bad_syntax)
{
    cr_expect_eq(control_constraint("node.role=manager", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "constraint expected one operator from ==, !=");
    cr_expect_eq(control_constraint("x==y", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_constraint("node.role==a!=b", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_constraint("node.role==", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_eq(control_constraint("9node==x", msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
}

/* IPv4 and IPv6 CIDRs parse, and containment follows the prefix. */
Test(control_rules, cidr_parses_and_contains)
{
    uint8_t net[16], ip[16];
    int fam, ip_fam, bits;

    cr_assert(control_cidr_parse("10.1.0.0/16", net, &fam, &bits));
    cr_expect_eq(fam, 4);
    cr_expect_eq(bits, 16);
    cr_assert(control_ip_parse("10.1.200.3", ip, &ip_fam));
    cr_expect(control_cidr_contains(net, fam, bits, ip, ip_fam));
    cr_assert(control_ip_parse("10.2.0.1", ip, &ip_fam));
    cr_expect_not(control_cidr_contains(net, fam, bits, ip, ip_fam));

    cr_assert(control_cidr_parse("fd00::/60", net, &fam, &bits));
    cr_expect_eq(fam, 6);
    cr_assert(control_ip_parse("fd00::0f:1", ip, &ip_fam));
    cr_expect(control_cidr_contains(net, fam, bits, ip, ip_fam));
}

/* Missing prefixes, long prefixes and garbage are not CIDRs. */
Test(control_rules, cidr_refuses_malformed)
{
    uint8_t net[16];
    int fam, bits;

    cr_expect_not(control_cidr_parse("10.0.0.0", net, &fam, &bits));
    cr_expect_not(control_cidr_parse("10.0.0.0/33", net, &fam, &bits));
    cr_expect_not(control_cidr_parse("10.0.0.0/", net, &fam, &bits));
    cr_expect_not(control_cidr_parse("x/8", net, &fam, &bits));
    cr_expect_not(control_cidr_parse("fd00::/129", net, &fam, &bits));
    cr_expect_not(control_cidr_parse("10.0.0.0/-1", net, &fam, &bits));
}

/* A token has the fixed shape; the digest part depends on the CA only
 * and the secret part differs every time. */
Test(control_rules, join_token_shape_and_digest)
{
    char a[CONTROL_TOKEN_LEN + 1], b[CONTROL_TOKEN_LEN + 1];
    struct shoal_cluster cl = {0};

    cr_assert_eq(control_join_token(&cl, "clusterid", a), 0);
    cr_assert_eq(control_join_token(&cl, "clusterid", b), 0);

    cr_expect_eq(strlen(a), CONTROL_TOKEN_LEN);
    cr_expect_eq(strncmp(a, "SHOAL-1-", 8), 0);
    cr_expect_eq(a[58], '-');
    cr_expect_eq(strspn(a + 8, "0123456789abcdefghijklmnopqrstuvwxyz"), 50);
    cr_expect_eq(strncmp(a, b, 58), 0);
    cr_expect_neq(strcmp(a + 59, b + 59), 0);
    cl.root_ca.ca_cert.data = (uint8_t *)"cert";
    cl.root_ca.ca_cert.len = 4;
    cr_assert_eq(control_join_token(&cl, "clusterid", b), 0);
    cr_expect_neq(strncmp(a, b, 58), 0);
}

static struct shoal_service_spec *
spec_new(void)
{
    struct shoal_service_spec *s = calloc(1, sizeof *s);

    s->annotations.name = strdup("web");
    s->task.container = calloc(1, sizeof *s->task.container);
    s->task.container->image = strdup("nginx:1.25");
    s->mode.kind = SHOAL_MODE_REPLICATED;
    s->mode.replicas = 2;
    return s;
}

static void
spec_free(struct shoal_service_spec *s)
{
    wire_free(&wire_type_service_spec, s);
    free(s);
}

static int
spec_check(struct shoal_service_spec *s)
{
    return control_service_spec_valid(s, msg, sizeof msg);
}

/* A minimal replicated service is valid; no spec is refused. */
Test(control_rules, service_minimal_spec_is_valid)
{
    struct shoal_service_spec *s = spec_new();

    cr_expect_eq(spec_check(s), SHOAL_OK, "%s", msg);
    cr_expect_eq(spec_check(NULL), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

/* CPU below 0.001 and memory below 4 MiB are refused, at the limit
 * accepted, for limits and reservations. */
Test(control_rules, service_resource_minimums)
{
    struct shoal_service_spec *s = spec_new();

    s->task.resources.limits.nano_cpus = 1000000;
    s->task.resources.reservations.memory_bytes = 4 * 1024 * 1024;
    cr_expect_eq(spec_check(s), SHOAL_OK);
    s->task.resources.limits.nano_cpus = 999999;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->task.resources.limits.nano_cpus = 0;
    s->task.resources.reservations.memory_bytes = 4 * 1024 * 1024 - 1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "Must be at least 4MiB") != NULL);
    spec_free(s);
}

/* Negative restart delay or window is refused; zero is fine. */
Test(control_rules, service_restart_durations)
{
    struct shoal_service_spec *s = spec_new();

    s->task.restart = calloc(1, sizeof *s->task.restart);
    cr_expect_eq(spec_check(s), SHOAL_OK);
    s->task.restart->window = -1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->task.restart->window = 0;
    s->task.restart->delay = -1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

/* A bad placement constraint is an invalid argument. */
Test(control_rules, service_constraints)
{
    struct shoal_service_spec *s = spec_new();

    wire_strs_push(&s->task.placement.constraints, "node.role==worker");
    cr_expect_eq(spec_check(s), SHOAL_OK);
    wire_strs_push(&s->task.placement.constraints, "node.role>worker");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

static void
add_secret_ref(struct shoal_service_spec *s, const char *id, const char *name,
               const char *target)
{
    struct shoal_container_spec *cs = s->task.container;

    cs->secrets =
        realloc(cs->secrets, (cs->n_secrets + 1) * sizeof *cs->secrets);
    memset(&cs->secrets[cs->n_secrets], 0, sizeof *cs->secrets);
    cs->secrets[cs->n_secrets].secret_id = id ? strdup(id) : NULL;
    cs->secrets[cs->n_secrets].secret_name = name ? strdup(name) : NULL;
    cs->secrets[cs->n_secrets].file.name = target ? strdup(target) : NULL;
    cs->n_secrets++;
}

/* Secret references need id, name and a file name, on distinct files. */
Test(control_rules, service_secret_refs)
{
    struct shoal_service_spec *s = spec_new();

    add_secret_ref(s, "id1", "one", "one");
    add_secret_ref(s, "id2", "two", "two");
    cr_expect_eq(spec_check(s), SHOAL_OK);
    add_secret_ref(s, "id3", "three", "one");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "conflict on target 'one'") != NULL);
    spec_free(s);

    s = spec_new();
    add_secret_ref(s, "id1", NULL, "x");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "malformed secret reference");
    spec_free(s);

    s = spec_new();
    add_secret_ref(s, "id1", "one", "");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

/* Config references follow the same rules. */
Test(control_rules, service_config_refs)
{
    struct shoal_service_spec *s = spec_new();
    struct shoal_container_spec *cs = s->task.container;

    cs->configs = calloc(2, sizeof *cs->configs);
    cs->n_configs = 2;
    cs->configs[0].config_id = strdup("c1");
    cs->configs[0].config_name = strdup("one");
    cs->configs[0].file.name = strdup("/etc/a");
    cs->configs[1].config_id = strdup("c2");
    cs->configs[1].config_name = strdup("two");
    cs->configs[1].file.name = strdup("/etc/b");
    cr_expect_eq(spec_check(s), SHOAL_OK);
    free(cs->configs[1].file.name);
    cs->configs[1].file.name = strdup("/etc/a");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

/* No container runtime, or a bad image, is refused. */
Test(control_rules, service_runtime_and_image)
{
    struct shoal_service_spec *s = spec_new();

    free(s->task.container->image);
    s->task.container->image = strdup("busybox###");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    free(s->task.container->image);
    s->task.container->image = NULL;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    wire_free(&wire_type_container_spec, s->task.container);
    free(s->task.container);
    s->task.container = NULL;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "TaskSpec: missing runtime");
    spec_free(s);
}

/* Two mounts on one target are refused. */
Test(control_rules, service_duplicate_mounts)
{
    struct shoal_service_spec *s = spec_new();
    struct shoal_container_spec *cs = s->task.container;

    cs->mounts = calloc(2, sizeof *cs->mounts);
    cs->n_mounts = 2;
    cs->mounts[0].target = strdup("/data");
    cs->mounts[1].target = strdup("/logs");
    cr_expect_eq(spec_check(s), SHOAL_OK);
    free(cs->mounts[1].target);
    cs->mounts[1].target = strdup("/data");
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "ContainerSpec: duplicate mount point: /data");
    spec_free(s);
}

/* Health check durations are 0 or at least 1 ms; retries not negative. */
Test(control_rules, service_healthcheck)
{
    struct shoal_service_spec *s = spec_new();
    struct shoal_healthcheck *hc = calloc(1, sizeof *hc);

    s->task.container->healthcheck = hc;
    hc->interval = CONTROL_NS_PER_MS;
    cr_expect_eq(spec_check(s), SHOAL_OK);
    hc->timeout = CONTROL_NS_PER_MS - 1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    hc->timeout = 0;
    hc->retries = -1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

/* No mode, or negative replicas or job counts, are refused. */
Test(control_rules, service_modes)
{
    struct shoal_service_spec *s = spec_new();

    s->mode.replicas = 0;
    cr_expect_eq(spec_check(s), SHOAL_OK);
    s->mode.replicas = -1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->mode.kind = SHOAL_MODE_NONE;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "Unrecognized service mode");
    s->mode.kind = SHOAL_MODE_REPLICATED_JOB;
    s->mode.replicas = 0;
    s->mode.total_completions = -2;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->mode.total_completions = 3;
    cr_expect_eq(spec_check(s), SHOAL_OK);
    spec_free(s);
}

/* Jobs may not carry an update config; others get its ranges checked. */
Test(control_rules, service_update_config)
{
    struct shoal_service_spec *s = spec_new();

    s->update = calloc(1, sizeof *s->update);
    s->update->max_failure_ratio = 1.0;
    cr_expect_eq(spec_check(s), SHOAL_OK);
    s->update->max_failure_ratio = 1.5;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->update->max_failure_ratio = 0;
    s->update->monitor = -1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->update->monitor = 0;
    s->update->delay = -1;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    s->update->delay = 0;
    s->mode.kind = SHOAL_MODE_GLOBAL_JOB;
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

static void
add_port(struct shoal_service_spec *s, uint32_t published, uint32_t proto,
         uint32_t mode)
{
    struct shoal_endpoint_spec *ep;

    if (!s->endpoint) {
        s->endpoint = calloc(1, sizeof *s->endpoint);
    }
    ep = s->endpoint;
    ep->ports = realloc(ep->ports, (ep->n_ports + 1) * sizeof *ep->ports);
    memset(&ep->ports[ep->n_ports], 0, sizeof *ep->ports);
    ep->ports[ep->n_ports].published_port = published;
    ep->ports[ep->n_ports].target_port = 80;
    ep->ports[ep->n_ports].protocol = proto;
    ep->ports[ep->n_ports].publish_mode = mode;
    ep->n_ports++;
}

/* DNSRR refuses ingress ports but takes host ports. */
Test(control_rules, service_dnsrr_with_ingress)
{
    struct shoal_service_spec *s = spec_new();

    add_port(s, 8080, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);
    s->endpoint->mode = SHOAL_ENDPOINT_DNSRR;
    cr_expect_eq(spec_check(s), SHOAL_OK);
    add_port(s, 8081, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

/* A (published port, protocol) pair may appear once in a spec. */
Test(control_rules, service_duplicate_published_ports)
{
    struct shoal_service_spec *s = spec_new();

    add_port(s, 8080, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    add_port(s, 8080, SHOAL_PROTO_UDP, SHOAL_PUBLISH_INGRESS);
    add_port(s, 0, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    add_port(s, 0, SHOAL_PROTO_TCP, SHOAL_PUBLISH_INGRESS);
    cr_expect_eq(spec_check(s), SHOAL_OK);
    add_port(s, 8080, SHOAL_PROTO_TCP, SHOAL_PUBLISH_HOST);
    cr_expect_eq(spec_check(s), SHOAL_INVALID_ARGUMENT);
    spec_free(s);
}

static struct shoal_network_spec *
net_spec_new(const char *name)
{
    struct shoal_network_spec *n = calloc(1, sizeof *n);

    n->annotations.name = strdup(name);
    return n;
}

static void
net_spec_free(struct shoal_network_spec *n)
{
    wire_free(&wire_type_network_spec, n);
    free(n);
}

static void
ipam_add(struct shoal_network_spec *n, const char *subnet, const char *range,
         const char *gw)
{
    struct shoal_ipam_options *ip;

    if (!n->ipam) {
        n->ipam = calloc(1, sizeof *n->ipam);
    }
    ip = n->ipam;
    ip->configs =
        realloc(ip->configs, (ip->n_configs + 1) * sizeof *ip->configs);
    memset(&ip->configs[ip->n_configs], 0, sizeof *ip->configs);
    ip->configs[ip->n_configs].subnet = subnet ? strdup(subnet) : NULL;
    ip->configs[ip->n_configs].range = range ? strdup(range) : NULL;
    ip->configs[ip->n_configs].gateway = gw ? strdup(gw) : NULL;
    ip->n_configs++;
}

/* IPAM: a subnet with a range and gateway inside it is valid; outside
 * or malformed ones are refused. */
Test(control_rules, network_ipam)
{
    struct shoal_network_spec *n = net_spec_new("backend");

    ipam_add(n, "10.20.0.0/16", "10.20.1.0/24", "10.20.0.1");
    ipam_add(n, "fd00:1::/64", NULL, "fd00:1::1");
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg), SHOAL_OK, "%s",
                 msg);
    ipam_add(n, "10.30.0.0/16", NULL, "10.31.0.1");
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "does not contain gateway") != NULL);
    net_spec_free(n);

    n = net_spec_new("backend");
    ipam_add(n, "10.20.0.0/16", "10.21.0.0/24", NULL);
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    net_spec_free(n);

    n = net_spec_new("backend");
    ipam_add(n, "10.20.0.0", NULL, NULL);
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    cr_expect_str_eq(msg, "ipam configuration: invalid subnet 10.20.0.0");
    net_spec_free(n);
}

/* Only no driver or overlay is accepted; attachable ingress is refused;
 * the predefined label is for the manager only. */
Test(control_rules, network_driver_and_flags)
{
    struct shoal_network_spec *n = net_spec_new("backend");

    n->driver_config = calloc(1, sizeof *n->driver_config);
    n->driver_config->name = strdup("overlay");
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg), SHOAL_OK);
    free(n->driver_config->name);
    n->driver_config->name = strdup("bridge");
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    net_spec_free(n);

    n = net_spec_new("ing");
    n->ingress = true;
    n->attachable = true;
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg),
                 SHOAL_INVALID_ARGUMENT);
    n->attachable = false;
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg), SHOAL_OK);
    wire_map_set(&n->annotations.labels, CONTROL_PREDEFINED_LABEL, "true");
    cr_expect_eq(control_network_spec_valid(n, msg, sizeof msg),
                 SHOAL_PERMISSION_DENIED);
    net_spec_free(n);
}
