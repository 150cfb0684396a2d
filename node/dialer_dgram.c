/*
 * The node dialer's datagram side, for SOCKS5 UDP ASSOCIATE and --forward udp:. A datagram to
 * a mesh address leaves through a netstack UDP flow to that destination (opened on first use,
 * so a destination always sees the same source port); any other address goes through the
 * direct dialer's host sockets (opened on first use), or is refused with --outbound
 * tunnel-only. Names resolve through the dialer's resolver first.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dialer.h"

/* Distinct mesh destinations per association, and for all of them together (a quarter of
 * the netstack's default UDP flows, which MagicDNS and published ports need too); the
 * association's least recently used flow gives way. */
#define FLOWS_MAX 64
#define NODE_DIALER_FLOWS_MAX 1024

struct flow {
    struct flow *prev, *next; /* most recently used first */
    struct node_dgram *g;
    struct ns_udp *u;
};

struct node_dgram {
    struct proxy_dgram base;
    struct node_dialer *d;
    struct proxy_dgram_cbs cbs;
    void *ud;
    struct proxy_name_queue names;
    struct flow *flows;
    size_t nflows;
    struct proxy_dgram *direct; /* host sockets, until its on_close */
    uv_timer_t close_defer;     /* never started: closing it defers on_close out of close() */
    bool closing, close_deferred;
    struct node_dgram *live_prev, *live_next; /* in d->dgrams */
};

static void maybe_end(struct node_dgram *g)
{
    if (!g->closing || !g->close_deferred || g->direct)
        return;
    if (g->live_prev)
        g->live_prev->live_next = g->live_next;
    else
        g->d->dgrams = g->live_next;
    if (g->live_next)
        g->live_next->live_prev = g->live_prev;
    g->cbs.on_close(g->ud);
    free(g);
}

/* ---- mesh flows ---- */

static void flow_unlink(struct node_dgram *g, struct flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        g->flows = f->next;
    if (f->next)
        f->next->prev = f->prev;
    g->nflows--;
    g->d->dgram_flows--;
}

static void flow_push_front(struct node_dgram *g, struct flow *f)
{
    f->prev = NULL;
    f->next = g->flows;
    if (f->next)
        f->next->prev = f;
    g->flows = f;
    g->nflows++;
    g->d->dgram_flows++;
}

static void flow_close(struct node_dgram *g, struct flow *f)
{
    flow_unlink(g, f);
    ns_udp_close(f->u);
    free(f);
}

static void flow_on_recv(struct ns_udp *u, const uint8_t *data, size_t len)
{
    struct flow *f = ns_udp_data(u);
    struct sockaddr_storage from;
    node_endpoint_to_sockaddr(ns_udp_remote(u), &from);
    f->g->cbs.on_recv(f->g->ud, (struct sockaddr *)&from, data, len);
}

static void flow_on_error(struct ns_udp *u, int err)
{
    /* ICMP errors have no SOCKS5 reply to travel in: the client sees silence, as it would.
     * A closing netstack ends the flow; a later datagram opens one on the next stack. */
    if (err == BASE_ECLOSING) {
        struct flow *f = ns_udp_data(u);
        flow_close(f->g, f);
    }
}

static const struct ns_udp_cbs flow_cbs = {.on_recv = flow_on_recv, .on_error = flow_on_error};

static struct flow *flow_get(struct node_dgram *g, const struct base_endpoint *ep, int *err)
{
    for (struct flow *f = g->flows; f; f = f->next) {
        if (base_endpoint_equal(ns_udp_remote(f->u), ep)) {
            flow_unlink(g, f);
            flow_push_front(g, f);
            return f;
        }
    }
    if (g->nflows >= FLOWS_MAX || (g->d->dgram_flows >= NODE_DIALER_FLOWS_MAX && g->flows)) {
        struct flow *last = g->flows;
        while (last->next)
            last = last->next;
        flow_close(g, last);
    }
    if (g->d->dgram_flows >= NODE_DIALER_FLOWS_MAX) {
        *err = BASE_ELIMIT;
        return NULL;
    }
    struct flow *f = calloc(1, sizeof(*f));
    if (!f) {
        *err = -ENOMEM;
        return NULL;
    }
    f->g = g;
    *err = ns_udp_open(g->d->stack, ep, &flow_cbs, f, &f->u);
    if (*err != 0) {
        free(f);
        return NULL;
    }
    flow_push_front(g, f);
    return f;
}

static int send_mesh(struct node_dgram *g, const struct sockaddr *sa, const uint8_t *data,
                     size_t len)
{
    struct base_endpoint ep;
    if (node_sockaddr_to_endpoint(sa, node_sockaddr_port(sa), &ep) != 0)
        return PROXY_E_OTHER;
    int err = 0;
    struct flow *f = flow_get(g, &ep, &err);
    if (f)
        err = ns_udp_send(f->u, data, len);
    return err == 0 ? PROXY_OK : node_proxy_err(err);
}

/* ---- host sockets ---- */

static void direct_on_recv(void *ud, const struct sockaddr *from, const uint8_t *data, size_t len)
{
    struct node_dgram *g = ud;
    if (!g->closing)
        g->cbs.on_recv(g->ud, from, data, len);
}

static void direct_on_close(void *ud)
{
    struct node_dgram *g = ud;
    g->direct = NULL;
    maybe_end(g);
}

static const struct proxy_dgram_cbs direct_cbs = {.on_recv = direct_on_recv,
                                                  .on_close = direct_on_close};

static int send_direct(struct node_dgram *g, const struct sockaddr *sa, const uint8_t *data,
                       size_t len)
{
    if (!g->direct) {
        struct proxy_dialer direct = proxy_direct_dialer(&g->d->direct);
        g->direct = direct.dgram_open(direct.ctx, &direct_cbs, g);
        if (!g->direct)
            return PROXY_E_OTHER;
    }
    struct proxy_target t = {.proto = PROXY_UDP};
    proxy_target_set_addr(&t, sa, node_sockaddr_port(sa));
    return g->direct->ops->send_to(g->direct, &t, data, len);
}

/* ---- proxy_dgram ---- */

static int send_addr(struct node_dgram *g, const struct sockaddr *sa, const uint8_t *data,
                     size_t len)
{
    struct node_dialer *d = g->d;
    if (d->is_mesh && d->is_mesh(d->is_mesh_ctx, sa))
        return d->stack ? send_mesh(g, sa, data, len) : PROXY_E_NET_UNREACH;
    if (d->tunnel_only)
        return PROXY_E_POLICY;
    return send_direct(g, sa, data, len);
}

static void send_resolved(void *arg, const struct sockaddr *sa, const uint8_t *data, size_t len)
{
    send_addr(arg, sa, data, len);
}

static int dg_send_to(struct proxy_dgram *pg, const struct proxy_target *dst, const uint8_t *data,
                      size_t len)
{
    struct node_dgram *g = (struct node_dgram *)pg;
    if (g->closing)
        return PROXY_E_OTHER;
    if (dst->name[0])
        return proxy_name_queue_send(&g->names, dst->name, dst->port, data, len);
    return send_addr(g, (const struct sockaddr *)&dst->addr, data, len);
}

static void close_flows(struct node_dgram *g)
{
    while (g->flows)
        flow_close(g, g->flows);
}

static void on_close_deferred(uv_handle_t *h)
{
    struct node_dgram *g = h->data;
    g->close_deferred = true;
    maybe_end(g);
}

static void dg_close(struct proxy_dgram *pg)
{
    struct node_dgram *g = (struct node_dgram *)pg;
    if (g->closing)
        return;
    g->closing = true;
    proxy_name_queue_clear(&g->names);
    close_flows(g);
    if (g->direct)
        g->direct->ops->close(g->direct);
    /* on_close must not run inside close(): the timer's close callback brings it. */
    uv_close((uv_handle_t *)&g->close_defer, on_close_deferred);
}

static const struct proxy_dgram_ops dgram_ops = {.send_to = dg_send_to, .close = dg_close};

struct proxy_dgram *node_dialer_dgram_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud)
{
    struct node_dialer *d = ctx;
    struct node_dgram *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->base.ops = &dgram_ops;
    g->d = d;
    g->cbs = *cbs;
    g->ud = ud;
    g->names = (struct proxy_name_queue){.resolver = d->resolver, .send = send_resolved, .arg = g};
    uv_timer_init(d->loop, &g->close_defer);
    g->close_defer.data = g;
    g->live_next = d->dgrams;
    if (g->live_next)
        g->live_next->live_prev = g;
    d->dgrams = g;
    return &g->base;
}

void node_dialer_dgrams_detach(struct node_dialer *d)
{
    for (struct node_dgram *g = d->dgrams; g; g = g->live_next)
        close_flows(g);
}
