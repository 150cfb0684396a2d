/*
 * The node's DNS service (see magicdns.h): the node's configuration turned into a dns_config
 * (build: binary addresses and endpoints as they are, hosts from the node's and its peers'
 * addresses), then the lifecycle: new (resolver, --dns-listen), apply (reload), attach and
 * detach of a netstack (100.100.100.100:53 in magicdns_tunnel.c, the resolver's mesh sockets
 * in dns_transport.c), close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magicdns_internal.h"

/* ---- configuration -> dns_config ---- */

/* Everything dns_config points at, freed after the resolver copied it. */
struct dns_build {
    struct dns_config cfg;
    struct dns_host *hosts;
    struct base_addr *addrs;
    struct dns_record *records;
    struct base_endpoint *servers; /* the default upstreams, then each route's */
    struct dns_route *routes;
    char suffix[256];
};

static void addr_from(struct base_addr *out, int family, const uint8_t *ip)
{
    if (family == AF_INET)
        base_addr_v4(out, ip);
    else
        base_addr_v6(out, ip);
}

static void endpoint_from(struct base_endpoint *out, const struct node_ipport *ip)
{
    addr_from(&out->addr, ip->family, ip->addr);
    out->port = ip->port;
}

/* A peer's MagicDNS addresses: its host routes (/32, /128) among its allowed IPs. */
static size_t peer_addrs(const struct node_peer *p, struct base_addr *out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_allowed_ips; i++) {
        const struct wg_allowed_ip *a = &p->allowed_ips[i];
        if (a->cidr == (a->family == AF_INET ? 32 : 128))
            addr_from(&out[n++], a->family, a->addr);
    }
    return n;
}

static size_t count_addrs(const struct node_config *c)
{
    size_t n = c->n_addresses;
    for (size_t i = 0; i < c->n_peers; i++)
        n += c->peers[i].n_allowed_ips;
    return n;
}

static void build_hosts(struct dns_build *b, const struct node_config *c)
{
    struct base_addr *next = b->addrs;
    size_t nh = 0;
    if (c->name && c->n_addresses) {
        for (size_t i = 0; i < c->n_addresses; i++)
            addr_from(&next[i], c->addresses[i].family, c->addresses[i].addr);
        b->hosts[nh++] = (struct dns_host){c->name, next, c->n_addresses};
        next += c->n_addresses;
    }
    for (size_t i = 0; i < c->n_peers; i++) {
        size_t n = c->peers[i].name ? peer_addrs(&c->peers[i], next) : 0;
        if (n == 0)
            continue;
        b->hosts[nh++] = (struct dns_host){c->peers[i].name, next, n};
        next += n;
    }
    b->cfg.hosts = b->hosts;
    b->cfg.n_hosts = nh;
}

static void build_records_and_upstreams(struct dns_build *b, const struct node_config *c)
{
    for (size_t i = 0; i < c->n_records; i++) {
        const struct node_dns_record *r = &c->records[i];
        b->records[i] = (struct dns_record){
            .name = r->name, .type = r->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA};
        addr_from(&b->records[i].addr, r->family, r->addr);
    }
    b->cfg.records = b->records;
    b->cfg.n_records = c->n_records;

    size_t k = 0;
    for (size_t i = 0; i < c->n_resolvers; i++)
        endpoint_from(&b->servers[k++], &c->resolvers[i]);
    b->cfg.upstreams = b->servers;
    b->cfg.n_upstreams = c->n_resolvers;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct node_dns_route *r = &c->routes[i];
        b->routes[i] = (struct dns_route){r->suffix, b->servers + k, r->n_resolvers};
        for (size_t j = 0; j < r->n_resolvers; j++)
            endpoint_from(&b->servers[k++], &r->resolvers[j]);
    }
    b->cfg.routes = b->routes;
    b->cfg.n_routes = c->n_routes;
    b->cfg.search = (const char *const *)c->search;
    b->cfg.n_search = c->n_search;
}

static void build_free(struct dns_build *b)
{
    free(b->hosts);
    free(b->addrs);
    free(b->records);
    free(b->servers);
    free(b->routes);
}

/* The netmap's suffix wins; wg-quick mode takes --dns-suffix. No trailing dot here. */
static void build_suffix(struct dns_build *b, const struct node_options *o,
                         const struct node_config *c)
{
    const char *suffix = c && c->dns_suffix ? c->dns_suffix : o->dns_suffix;
    snprintf(b->suffix, sizeof(b->suffix), "%s", suffix ? suffix : DNS_DEFAULT_SUFFIX);
    size_t sl = strlen(b->suffix);
    if (sl > 1 && b->suffix[sl - 1] == '.')
        b->suffix[sl - 1] = '\0';
    b->cfg.suffix = b->suffix;
}

static int build(struct dns_build *b, const struct node_magicdns_config *mc)
{
    const struct node_config *c = mc->cfg;
    memset(b, 0, sizeof(*b));
    b->cfg.log = mc->log;
    build_suffix(b, mc->opts, c);
    if (!c)
        return 0;
    size_t n_up = c->n_resolvers;
    for (size_t i = 0; i < c->n_routes; i++)
        n_up += c->routes[i].n_resolvers;
    b->hosts = calloc(c->n_peers + 1, sizeof(*b->hosts));
    b->addrs = calloc(count_addrs(c) + 1, sizeof(*b->addrs));
    b->records = calloc(c->n_records + 1, sizeof(*b->records));
    b->servers = calloc(n_up + 1, sizeof(*b->servers));
    b->routes = calloc(c->n_routes + 1, sizeof(*b->routes));
    if (!b->hosts || !b->addrs || !b->records || !b->servers || !b->routes) {
        build_free(b);
        return -ENOMEM;
    }
    build_hosts(b, c);
    build_records_and_upstreams(b, c);
    return 0;
}

/* ---- lifecycle ---- */

int node_magicdns_apply(struct node_magicdns *m, const struct node_magicdns_config *c)
{
    struct dns_build b;
    int rc = build(&b, c);
    if (rc < 0)
        return rc;
    rc = dns_resolver_set_config(m->resolver, &b.cfg);
    /* The peers' allowed IPs may have moved a resolver into or out of the mesh. */
    dns_resolver_routes_changed(m->resolver);
    build_free(&b);
    return rc;
}

static int start_listener(struct node_magicdns *m, const struct node_options *o)
{
    struct dns_listener_config lc = {.resolver = m->resolver, .addr.port = o->dns_listen.port};
    const char *host = o->dns_listen.host;
    int rc = base_addr_parse(&lc.addr.addr, host, strlen(host));
    if (rc == 0)
        rc = dns_listener_new(m->loop, &lc, &m->listener);
    if (rc < 0) {
        char q[NODE_HOST_MAX + 8];
        base_logf(&m->log, BASE_LOG_ERROR, "event=dns_listen_failed addr=%s port=%u err=%s",
                  base_log_quote(q, sizeof(q), host), o->dns_listen.port, base_errname(rc));
        m->listener = NULL;
    }
    return rc;
}

int node_magicdns_new(uv_loop_t *loop, const struct node_magicdns_config *c,
                      struct node_magicdns **out)
{
    struct node_magicdns *m = calloc(1, sizeof(*m));
    struct dns_build b;
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->log = c->log;
    base_list_init(&m->pending);
    base_list_init(&m->tcp);
    int rc = build(&b, c);
    if (rc == 0) {
        rc = dns_resolver_new(loop, &b.cfg, &m->resolver);
        build_free(&b);
    }
    if (rc == 0 && c->opts->dns_listen_on)
        rc = start_listener(m, c->opts);
    if (rc < 0) {
        node_magicdns_close(m, NULL, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

int node_magicdns_attach(struct node_magicdns *m, ns_stack *stack, node_dns_covers_fn covers,
                         void *covers_ctx)
{
    int rc = node_magicdns_serve(m, stack);
    if (rc < 0)
        return rc;
    m->stack = stack;
    m->covers = covers;
    m->covers_ctx = covers_ctx;
    struct node_dns_mesh *old = m->mesh; /* the refusing one detach left, if any */
    m->mesh = node_dns_mesh_new(stack, covers, covers_ctx);
    if (!m->mesh) {
        m->mesh = old;
        return -ENOMEM;
    }
    struct dns_transport tr = node_dns_mesh_transport(m->mesh);
    dns_resolver_set_mesh_transport(m->resolver, &tr);
    node_dns_mesh_free(old);
    return 0;
}

void node_magicdns_detach(struct node_magicdns *m)
{
    node_magicdns_unserve(m);
    /* Until the next stack, mesh upstreams fail rather than leave through the host. */
    struct node_dns_mesh *none = m->mesh ? node_dns_mesh_new(NULL, m->covers, m->covers_ctx) : NULL;
    if (m->resolver && m->mesh) {
        struct dns_transport tr = node_dns_mesh_transport(none);
        dns_resolver_set_mesh_transport(m->resolver, none ? &tr : NULL); /* closes its sockets */
    }
    node_dns_mesh_free(m->mesh);
    m->mesh = none;
    m->stack = NULL;
}

static void on_part_closed(void *arg)
{
    struct node_magicdns *m = arg;
    if (--m->closing)
        return;
    void (*cb)(void *) = m->on_closed;
    void *cb_arg = m->closed_arg;
    node_dns_mesh_free(m->mesh); /* refusing: it never opened a socket */
    free(m);
    if (cb)
        cb(cb_arg);
}

void node_magicdns_close(struct node_magicdns *m, void (*on_closed)(void *arg), void *arg)
{
    if (!m || m->state == NODE_MAGICDNS_CLOSING)
        return;
    node_magicdns_detach(m);
    m->state = NODE_MAGICDNS_CLOSING;
    m->on_closed = on_closed;
    m->closed_arg = arg;
    m->closing = 1; /* held until both are asked, so neither frees m early */
    if (m->listener) {
        m->closing++;
        dns_listener_close(m->listener, on_part_closed, m);
    }
    if (m->resolver) {
        m->closing++;
        dns_resolver_close(m->resolver, on_part_closed, m);
    }
    on_part_closed(m);
}
