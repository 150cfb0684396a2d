#include "magicdns.h"

#include "base.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration -> dns_config ---- */

/* Everything dns_config points at, freed after the resolver copied it. */
struct dns_build {
    struct dns_config cfg;
    struct dns_host *hosts;
    struct dns_addr *addrs;
    struct dns_record *records;
    char (*record_values)[INET6_ADDRSTRLEN];
    char (*upstreams)[INET6_ADDRSTRLEN + 8];
    const char **upstream_ptrs;
    struct dns_route *routes;
    char suffix[256];
};

/* A peer's MagicDNS addresses: its host routes (/32, /128) among its allowed IPs. */
static size_t peer_addrs(const struct cfg_peer *p, struct dns_addr *out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_allowed_ips; i++) {
        const struct base_prefix *a = &p->allowed_ips[i];
        if (a->bits != base_addr_len(&a->addr) * 8)
            continue;
        out[n].family = a->addr.family;
        memcpy(out[n].ip, a->addr.ip, 16);
        n++;
    }
    return n;
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
    struct dns_addr *next = b->addrs;
    size_t nh = 0;
    if (c->name && c->n_addresses) {
        for (size_t i = 0; i < c->n_addresses; i++) {
            next[i].family = c->addresses[i].addr.family;
            memcpy(next[i].ip, c->addresses[i].addr.ip, 16);
        }
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

static void build_records_and_upstreams(struct dns_build *b, const struct cfg_config *c)
{
    for (size_t i = 0; i < c->n_records; i++) {
        const struct cfg_dns_record *r = &c->records[i];
        base_addr_format(&r->addr, b->record_values[i], INET6_ADDRSTRLEN);
        b->records[i] =
            (struct dns_record){.name = r->name,
                                .type = r->addr.family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA,
                                .value = b->record_values[i]};
    }
    b->cfg.records = b->records;
    b->cfg.n_records = c->n_records;

    size_t k = 0;
    for (size_t i = 0; i < c->n_resolvers; i++, k++) {
        base_endpoint_format(&c->resolvers[i], b->upstreams[k], sizeof(b->upstreams[k]));
        b->upstream_ptrs[k] = b->upstreams[k];
    }
    b->cfg.upstreams = b->upstream_ptrs;
    b->cfg.n_upstreams = c->n_resolvers;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct cfg_dns_route *r = &c->routes[i];
        const char **servers = b->upstream_ptrs + k;
        for (size_t j = 0; j < r->n_resolvers; j++, k++) {
            base_endpoint_format(&r->resolvers[j], b->upstreams[k], sizeof(b->upstreams[k]));
            b->upstream_ptrs[k] = b->upstreams[k];
        }
        b->routes[i] = (struct dns_route){r->suffix, servers, r->n_resolvers};
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
    free(b->record_values);
    free(b->upstreams);
    free(b->upstream_ptrs);
    free(b->routes);
}

static int build(struct dns_build *b, const struct node_options *o, const struct cfg_config *c)
{
    memset(b, 0, sizeof(*b));
    /* The netmap's suffix wins; wg-quick mode takes --dns-suffix. No trailing dot here. */
    const char *suffix = c && c->dns_suffix ? c->dns_suffix : o->dns_suffix;
    snprintf(b->suffix, sizeof(b->suffix), "%s", suffix ? suffix : DNS_DEFAULT_SUFFIX);
    size_t sl = strlen(b->suffix);
    if (sl > 1 && b->suffix[sl - 1] == '.')
        b->suffix[sl - 1] = '\0';
    b->cfg.suffix = b->suffix;
    if (!c)
        return 0;
    size_t n_up = c->n_resolvers;
    for (size_t i = 0; i < c->n_routes; i++)
        n_up += c->routes[i].n_resolvers;
    b->hosts = calloc(c->n_peers + 1, sizeof(*b->hosts));
    b->addrs = calloc(count_addrs(c) + 1, sizeof(*b->addrs));
    b->records = calloc(c->n_records + 1, sizeof(*b->records));
    b->record_values = calloc(c->n_records + 1, sizeof(*b->record_values));
    b->upstreams = calloc(n_up + 1, sizeof(*b->upstreams));
    b->upstream_ptrs = calloc(n_up + 1, sizeof(*b->upstream_ptrs));
    b->routes = calloc(c->n_routes + 1, sizeof(*b->routes));
    if (!b->hosts || !b->addrs || !b->records || !b->record_values || !b->upstreams ||
        !b->upstream_ptrs || !b->routes) {
        build_free(b);
        return -1;
    }
    build_hosts(b, c);
    build_records_and_upstreams(b, c);
    return 0;
}

int node_magicdns_apply(struct node_magicdns *m, const struct node_options *o,
                        const struct cfg_config *cfg, char *err, size_t errlen)
{
    struct dns_build b;
    if (build(&b, o, cfg) != 0) {
        snprintf(err, errlen, "DNS configuration: out of memory");
        return -1;
    }
    int ret = 0;
    if (!m->resolver) {
        m->resolver = dns_resolver_new(m->loop, &b.cfg, err, errlen);
        ret = m->resolver ? 0 : -1;
        if (m->resolver && m->mesh) {
            struct dns_transport tr = node_dns_mesh_transport(m->mesh);
            dns_resolver_set_mesh_transport(m->resolver, &tr);
        }
    } else {
        ret = dns_resolver_set_config(m->resolver, &b.cfg, err, errlen);
        /* The peers' allowed IPs may have moved a resolver into or out of the mesh. */
        dns_resolver_routes_changed(m->resolver);
    }
    build_free(&b);
    return ret;
}

int node_magicdns_start(struct node_magicdns *m, uv_loop_t *loop, const struct node_options *o,
                        const struct cfg_config *cfg, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->loop = loop;
    if (node_magicdns_apply(m, o, cfg, err, errlen) != 0)
        return -1;
    if (!o->dns_listen_on)
        return 0;
    struct sockaddr_storage ss;
    char spec[BASE_ENDPOINT_STRLEN];
    base_endpoint_format(&o->dns_listen, spec, sizeof(spec));
    int ret = -1;
    /* Port 0 takes any (dns_listener_port tells which). */
    if (base_endpoint_to_sockaddr(&o->dns_listen, &ss) > 0)
        ret = dns_listener_start(loop, m->resolver, (struct sockaddr *)&ss, NULL, &m->listener);
    if (ret != 0) {
        snprintf(err, errlen, "DNS listener %s: %s", spec,
                 ret == -1 ? "bad address" : uv_strerror(ret));
        return -1;
    }
    return 0;
}

/* ---- 100.100.100.100:53 inside the netstack ---- */

struct node_magicdns_query {
    struct node_magicdns *m;
    struct ns_udp *flow;
    struct dns_request *req;
    struct node_magicdns_query *prev, *next;
};

static void query_unlink(struct node_magicdns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        q->m->pending = q->next;
    if (q->next)
        q->next->prev = q->prev;
}

/* One flow per query: its answer goes back and the flow is done. */
static void on_answer(void *ctx, const uint8_t *reply, size_t len)
{
    struct node_magicdns_query *q = ctx;
    if (reply && len)
        ns_udp_send(q->flow, reply, len);
    ns_udp_close(q->flow);
    query_unlink(q);
    free(q);
}

/* The netstack is closing: the query goes with its flow. */
static void on_udp_busy_error(struct ns_udp *u, int err)
{
    struct node_magicdns_query *q = ns_udp_data(u);
    if (err != BASE_ECLOSING)
        return;
    if (q->req)
        dns_request_cancel(q->req);
    ns_udp_close(q->flow);
    query_unlink(q);
    free(q);
}

/* A flow whose query is being answered: more datagrams on it are dropped (clients retry on
 * a new source port, which is a new flow). */
static void on_udp_recv_busy(struct ns_udp *u, const uint8_t *data, size_t len)
{
    (void)u;
    (void)data;
    (void)len;
}

static const struct ns_udp_cbs udp_busy_cbs = {.on_recv = on_udp_recv_busy,
                                               .on_error = on_udp_busy_error};

static void on_udp_recv(struct ns_udp *u, const uint8_t *data, size_t len)
{
    struct node_magicdns *m = ns_udp_data(u);
    struct node_magicdns_query *q = calloc(1, sizeof(*q));
    if (!q) {
        ns_udp_close(u);
        return;
    }
    *q = (struct node_magicdns_query){.m = m, .flow = u, .next = m->pending};
    if (m->pending)
        m->pending->prev = q;
    m->pending = q;
    ns_udp_set_cbs(u, &udp_busy_cbs, q);
    /* No IP fragmentation on the tunnel: a reply must fit one packet of the tunnel MTU.
     * A local answer arrives inside this call and frees q, so q is touched only when the
     * request is still pending. */
    struct dns_request *req = dns_resolver_handle(m->resolver, data, len, 1232, on_answer, q);
    if (req)
        q->req = req;
}

static void on_udp_error(struct ns_udp *u, int err)
{
    if (err == BASE_ECLOSING)
        ns_udp_close(u);
}

static const struct ns_udp_cbs udp_cbs = {.on_recv = on_udp_recv, .on_error = on_udp_error};

static void on_udp_accept(void *ctx, struct ns_udp *u)
{
    ns_udp_set_cbs(u, &udp_cbs, ctx);
}

/* TCP: the conn carries a dns_stream session; this is only the glue between the two. */
/* What one connection may hold of a peer's bytes the session has not answered yet: two
 * maximum-size queries. The netstack's window (MiBs) would let a peer that never reads park
 * far more, so reading is never paused here; a peer that overruns this is reset. */
#define TCP_HELD_MAX (2 * (2 + 65535))
#define TCP_PER_PEER_MAX 8 /* connections from one address, so one peer cannot take them all */

struct node_magicdns_tcp {
    struct node_magicdns *m;
    struct ns_conn *c;
    struct dns_stream *s;
    size_t held; /* fed to the session, not yet consumed */
    struct node_magicdns_tcp *prev, *next;
};

static void tcp_release(struct node_magicdns_tcp *t, int graceful)
{
    struct node_magicdns *m = t->m;
    dns_stream_free(t->s);
    if (graceful)
        ns_conn_close(t->c);
    else
        ns_conn_reset(t->c);
    if (t->prev)
        t->prev->next = t->next;
    else
        m->tcp = t->next;
    if (t->next)
        t->next->prev = t->prev;
    m->n_tcp--;
    free(t);
}

static ssize_t op_write(void *ctx, const uint8_t *data, size_t len)
{
    struct node_magicdns_tcp *t = ctx;
    ssize_t n = ns_conn_write(t->c, data, len);
    return n < 0 ? -1 : n; /* 0: full, on_writable follows */
}

static void op_pause(void *ctx, int paused)
{
    /* See TCP_HELD_MAX: the session's input is bounded in on_tcp_read instead. */
    (void)ctx;
    (void)paused;
}

static void op_consumed(void *ctx, size_t n)
{
    struct node_magicdns_tcp *t = ctx;
    t->held -= n;
    ns_conn_consumed(t->c, n);
}

static void op_close(void *ctx, int graceful)
{
    tcp_release(ctx, graceful);
}

static const struct dns_stream_ops stream_ops = {
    .write = op_write, .pause = op_pause, .consumed = op_consumed, .close = op_close};

static void on_tcp_read(struct ns_conn *c, const uint8_t *data, size_t len)
{
    struct node_magicdns_tcp *t = ns_conn_data(c);
    if (!len) {
        dns_stream_eof(t->s);
        return;
    }
    if (t->held + len > TCP_HELD_MAX) {
        tcp_release(t, 0);
        return;
    }
    t->held += len;
    dns_stream_feed(t->s, data, len);
}

static void on_tcp_writable(struct ns_conn *c)
{
    struct node_magicdns_tcp *t = ns_conn_data(c);
    dns_stream_writable(t->s);
}

static void on_tcp_error(struct ns_conn *c, int err)
{
    (void)err;
    tcp_release(ns_conn_data(c), 1); /* dead already: close only releases it */
}

static const struct ns_conn_cbs tcp_cbs = {
    .on_read = on_tcp_read, .on_writable = on_tcp_writable, .on_error = on_tcp_error};

static unsigned tcp_count_from(const struct node_magicdns *m, const struct base_addr *a)
{
    unsigned n = 0;
    for (const struct node_magicdns_tcp *t = m->tcp; t; t = t->next) {
        n += base_addr_equal(&ns_conn_remote(t->c)->addr, a);
    }
    return n;
}

static void on_tcp_accept(void *ctx, struct ns_conn *c)
{
    struct node_magicdns *m = ctx;
    struct node_magicdns_tcp *t = NULL;
    if (m->n_tcp < NODE_MAGICDNS_MAX_TCP && m->resolver &&
        tcp_count_from(m, &ns_conn_remote(c)->addr) < TCP_PER_PEER_MAX)
        t = calloc(1, sizeof(*t));
    if (t)
        t->s = dns_stream_new(m->resolver, 0, &stream_ops, t);
    if (!t || !t->s) {
        free(t);
        ns_conn_reset(c);
        return;
    }
    t->m = m;
    t->c = c;
    t->next = m->tcp;
    if (m->tcp)
        m->tcp->prev = t;
    m->tcp = t;
    m->n_tcp++;
    ns_conn_set_send_limit(c, DNS_STREAM_OUT_MAX);
    ns_conn_set_cbs(c, &tcp_cbs, t);
}

int node_magicdns_attach(struct node_magicdns *m, struct ns_stack *stack, node_dns_covers_fn covers,
                         void *covers_ctx)
{
    struct base_addr magic;
    base_addr_parse(&magic, NODE_MAGICDNS_ADDR, strlen(NODE_MAGICDNS_ADDR));
    if (ns_stack_add_address(stack, &magic) != 0)
        return -1;
    if (ns_stack_handle_udp(stack, &magic, 53, on_udp_accept, m) != 0 ||
        ns_stack_handle_tcp(stack, &magic, 53, on_tcp_accept, m) != 0)
        return -1;
    m->stack = stack;
    m->covers = covers;
    m->covers_ctx = covers_ctx;
    struct node_dns_mesh *old = m->mesh; /* the refusing one detach left, if any */
    m->mesh = node_dns_mesh_new(stack, covers, covers_ctx);
    if (!m->mesh) {
        m->mesh = old;
        return -1;
    }
    if (m->resolver) {
        struct dns_transport tr = node_dns_mesh_transport(m->mesh);
        dns_resolver_set_mesh_transport(m->resolver, &tr);
    }
    node_dns_mesh_free(old);
    return 0;
}

void node_magicdns_detach(struct node_magicdns *m)
{
    while (m->pending) {
        struct node_magicdns_query *q = m->pending;
        m->pending = q->next;
        if (q->req)
            dns_request_cancel(q->req);
        ns_udp_close(q->flow);
        free(q);
    }
    while (m->tcp)
        tcp_release(m->tcp, 0);
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

void node_magicdns_stop(struct node_magicdns *m)
{
    node_magicdns_detach(m);
    if (m->listener)
        dns_listener_close(m->listener);
    m->listener = NULL;
    if (m->resolver)
        dns_resolver_free(m->resolver);
    m->resolver = NULL;
    node_dns_mesh_free(m->mesh); /* refusing: it never opened a socket */
    m->mesh = NULL;
}

/* ---- the proxies' resolver ---- */

/* One proxy lookup. The proxy wants its callback never from inside resolve(), but MagicDNS
 * answers local names at once: such an answer is kept and delivered on a zero timer. The
 * timer's close callback frees the lookup, whichever way it ended. */
struct lookup {
    uv_timer_t timer;
    proxy_resolve_cb cb;
    void *arg;
    struct dns_request *req; /* in flight, or NULL */
    bool in_resolve, canceled;
    enum dns_lookup_status status;
    struct dns_addr addrs[DNS_LOOKUP_MAX_ADDRS];
    size_t n;
};

static void lookup_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deliver(struct lookup *l)
{
    struct sockaddr_storage ss[DNS_LOOKUP_MAX_ADDRS];
    for (size_t i = 0; i < l->n; i++) {
        memset(&ss[i], 0, sizeof(ss[i]));
        if (l->addrs[i].family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss[i];
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, l->addrs[i].ip, 4);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss[i];
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, l->addrs[i].ip, 16);
        }
    }
    int err = l->status == DNS_LOOKUP_OK     ? 0
              : l->status == DNS_LOOKUP_FAIL ? PROXY_E_HOST_UNREACH
                                             : PROXY_E_NAME;
    l->cb(l->arg, err, ss, l->n);
    uv_close((uv_handle_t *)&l->timer, lookup_closed);
}

static void on_timer(uv_timer_t *t)
{
    struct lookup *l = t->data;
    if (l->canceled)
        uv_close((uv_handle_t *)t, lookup_closed);
    else
        deliver(l);
}

static void on_lookup(void *ctx, enum dns_lookup_status status, const struct dns_addr *addrs,
                      size_t n)
{
    struct lookup *l = ctx;
    l->req = NULL;
    l->status = status;
    l->n = status == DNS_LOOKUP_OK ? (n < DNS_LOOKUP_MAX_ADDRS ? n : DNS_LOOKUP_MAX_ADDRS) : 0;
    memcpy(l->addrs, addrs, l->n * sizeof(*addrs));
    if (l->in_resolve)
        uv_timer_start(&l->timer, on_timer, 0, 0);
    else
        deliver(l);
}

static struct proxy_resolve_req *resolve(void *ctx, const char *name, proxy_resolve_cb cb,
                                         void *arg)
{
    struct node_magicdns *m = ctx;
    struct lookup *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->cb = cb;
    l->arg = arg;
    uv_timer_init(m->loop, &l->timer);
    l->timer.data = l;
    l->in_resolve = true;
    l->req = dns_resolver_lookup(m->resolver, name, DNS_FAMILY_ANY, on_lookup, l);
    l->in_resolve = false;
    return (struct proxy_resolve_req *)l;
}

static void cancel(void *ctx, struct proxy_resolve_req *r)
{
    (void)ctx;
    struct lookup *l = (struct lookup *)r;
    if (l->req) {
        dns_request_cancel(l->req);
        l->req = NULL;
        uv_close((uv_handle_t *)&l->timer, lookup_closed);
        return;
    }
    l->canceled = true; /* the zero timer is pending: it frees the lookup */
}

struct proxy_resolver node_magicdns_proxy_resolver(struct node_magicdns *m)
{
    return (struct proxy_resolver){.ctx = m, .resolve = resolve, .cancel = cancel};
}
