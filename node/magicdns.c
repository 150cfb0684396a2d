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

/* Everything dns_config points at, freed after the resolver copied it; the configuration's
 * resolvers (base_endpoints already) are pointed at as they are. */
struct dns_build {
    struct dns_config cfg;
    struct dns_host *hosts;
    struct base_addr *addrs;
    struct dns_record *records;
    struct dns_route *routes;
    char suffix[256];
};

/* Host prefixes (/32, /128) among prefixes: a host's MagicDNS addresses. all: every
 * prefix's address (the node's own, which keep their subnet's length). */
static size_t host_addrs(const struct base_prefix *p, size_t n, bool all, struct base_addr *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all || p[i].bits == base_addr_len(&p[i].addr) * 8)
            out[k++] = p[i].addr;
    return k;
}

static size_t count_addrs(const struct cfg_config *c)
{
    size_t n = c->n_addresses;
    for (size_t i = 0; i < c->n_peers; i++)
        n += c->peers[i].n_allowed_ips;
    return n;
}

static void build_hosts(struct dns_build *b, const struct cfg_config *c)
{
    struct base_addr *next = b->addrs;
    size_t nh = 0;
    if (c->name && c->n_addresses) {
        size_t n = host_addrs(c->addresses, c->n_addresses, true, next);
        b->hosts[nh++] = (struct dns_host){c->name, next, n};
        next += n;
    }
    for (size_t i = 0; i < c->n_peers; i++) {
        const struct cfg_peer *p = &c->peers[i];
        size_t n = p->name ? host_addrs(p->allowed_ips, p->n_allowed_ips, false, next) : 0;
        if (n == 0)
            continue;
        b->hosts[nh++] = (struct dns_host){p->name, next, n};
        next += n;
    }
    b->cfg.hosts = b->hosts;
    b->cfg.n_hosts = nh;
}

static void build_records_and_upstreams(struct dns_build *b, const struct cfg_config *c)
{
    for (size_t i = 0; i < c->n_records; i++) {
        const struct cfg_dns_record *r = &c->records[i];
        b->records[i] =
            (struct dns_record){.name = r->name,
                                .type = r->addr.family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA,
                                .addr = r->addr};
    }
    b->cfg.records = b->records;
    b->cfg.n_records = c->n_records;
    b->cfg.upstreams = c->resolvers;
    b->cfg.n_upstreams = c->n_resolvers;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct cfg_dns_route *r = &c->routes[i];
        b->routes[i] = (struct dns_route){r->suffix, r->resolvers, r->n_resolvers};
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
    free(b->routes);
}

/* The netmap's suffix wins; wg-quick mode takes --dns-suffix. No trailing dot here. */
static void build_suffix(struct dns_build *b, const struct node_options *o,
                         const struct cfg_config *c)
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
    const struct cfg_config *c = mc->cfg;
    memset(b, 0, sizeof(*b));
    b->cfg.log = mc->log;
    build_suffix(b, mc->opts, c);
    if (!c)
        return 0;
    b->hosts = calloc(c->n_peers + 1, sizeof(*b->hosts));
    b->addrs = calloc(count_addrs(c) + 1, sizeof(*b->addrs));
    b->records = calloc(c->n_records + 1, sizeof(*b->records));
    b->routes = calloc(c->n_routes + 1, sizeof(*b->routes));
    if (!b->hosts || !b->addrs || !b->records || !b->routes) {
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
    struct dns_listener_config lc = {.resolver = m->resolver, .addr = o->dns_listen};
    int rc = dns_listener_new(m->loop, &lc, &m->listener);
    if (rc < 0) {
        char e[BASE_ENDPOINT_STRLEN];
        base_logf(&m->log, BASE_LOG_ERROR, "event=dns_listen_failed addr=%s err=%s",
                  base_endpoint_format(&o->dns_listen, e, sizeof(e)), base_errname(rc));
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

static void on_stack_closing(struct ns_stack_watch *w, struct ns_stack *ns)
{
    (void)ns;
    node_magicdns_detach(container_of(w, struct node_magicdns, stack_watch));
}

int node_magicdns_attach(struct node_magicdns *m, struct ns_stack *stack, node_dns_covers_fn covers,
                         void *covers_ctx)
{
    int rc = node_magicdns_serve(m, stack);
    if (rc < 0)
        return rc;
    m->stack = stack;
    m->stack_watch.on_closing = on_stack_closing;
    ns_stack_watch(stack, &m->stack_watch);
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
    ns_stack_unwatch(&m->stack_watch);
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

uint16_t node_magicdns_listen_port(const struct node_magicdns *m)
{
    return m && m->listener ? dns_listener_port(m->listener) : 0;
}

void node_magicdns_stats(const struct node_magicdns *m, struct dns_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (m && m->resolver)
        dns_resolver_stats(m->resolver, out);
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
