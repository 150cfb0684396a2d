/*
 * The node dialer's datagram side, for SOCKS5 UDP ASSOCIATE and --forward udp:. A datagram to
 * a mesh address leaves through a netstack UDP flow to that destination (opened on first use,
 * so a destination always sees the same source port); any other address goes through the
 * direct dialer's host sockets (opened on first use), or is refused with --outbound
 * tunnel-only. Names resolve through the dialer's resolver first.
 * Flow: open -> send_to (-> name queue) -> send_addr -> a flow or the direct socket; replies
 * -> on_recv; close -> flows closed, the direct socket's on_close, the deferral -> on_close.
 */
#include <stdlib.h>
#include <string.h>

#include "dialer.h"

/* Distinct mesh destinations per association, and for all of them together (a quarter of
 * the netstack's default UDP flows, which MagicDNS and published ports need too); the
 * association's least recently used flow gives way. */
#define FLOWS_MAX 64
#define NODE_DIALER_FLOWS_MAX 1024

struct flow {
    struct base_list link; /* in g->flows, most recently used first */
    struct node_dgram *g;
    struct ns_udp *u;
};

struct node_dgram {
    struct proxy_dgram base;
    struct node_dialer *d;
    struct proxy_dgram_cbs cbs;
    void *ud;
    struct proxy_name_queue names;
    struct base_list flows;
    size_t nflows;
    struct proxy_dgram *direct; /* host sockets, until its on_close */
    uv_timer_t close_defer;     /* never started: closing it defers on_close out of close() */
    bool closing, close_deferred;
    struct base_list live; /* in d->dgrams */
};

static void maybe_end(struct node_dgram *g)
{
    if (!g->closing || !g->close_deferred || g->direct)
        return;
    base_list_remove(&g->live);
    g->cbs.on_close(g->ud);
    free(g);
}

/* ---- mesh flows ---- */

static void flow_unlink(struct node_dgram *g, struct flow *f)
{
    base_list_remove(&f->link);
    g->nflows--;
    g->d->dgram_flows--;
}

static void flow_push_front(struct node_dgram *g, struct flow *f)
{
    base_list_push_front(&g->flows, &f->link);
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
    f->g->cbs.on_recv(f->g->ud, ns_udp_remote(u), data, len);
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

static struct flow *flow_find(struct node_dgram *g, const struct base_endpoint *ep)
{
    struct base_list *pos;
    base_list_foreach (pos, &g->flows) {
        struct flow *f = container_of(pos, struct flow, link);
        if (base_endpoint_equal(ns_udp_remote(f->u), ep))
            return f;
    }
    return NULL;
}

static struct flow *flow_get(struct node_dgram *g, const struct base_endpoint *ep, int *err)
{
    struct flow *f = flow_find(g, ep);
    if (f) {
        flow_unlink(g, f);
        flow_push_front(g, f);
        return f;
    }
    bool full = g->nflows >= FLOWS_MAX || g->d->dgram_flows >= NODE_DIALER_FLOWS_MAX;
    if (full && !base_list_empty(&g->flows))
        flow_close(g, container_of(g->flows.prev, struct flow, link));
    if (g->d->dgram_flows >= NODE_DIALER_FLOWS_MAX) {
        *err = BASE_ELIMIT;
        return NULL;
    }
    f = calloc(1, sizeof(*f));
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

static int send_mesh(struct node_dgram *g, const struct base_endpoint *dst, const uint8_t *data,
                     size_t len)
{
    int err = 0;
    struct flow *f = flow_get(g, dst, &err);
    return f ? ns_udp_send(f->u, data, len) : err;
}

/* ---- host sockets ---- */

static void direct_on_recv(void *ud, const struct base_endpoint *from, const uint8_t *data,
                           size_t len)
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

static int send_direct(struct node_dgram *g, const struct base_endpoint *dst, const uint8_t *data,
                       size_t len)
{
    if (!g->direct) {
        struct proxy_dialer direct = proxy_direct_dialer(&g->d->direct);
        g->direct = direct.dgram_open(direct.ctx, &direct_cbs, g);
        if (!g->direct)
            return -ENOMEM;
    }
    struct proxy_target t = {.proto = PROXY_UDP, .ep = *dst};
    return g->direct->ops->send_to(g->direct, &t, data, len);
}

/* ---- proxy_dgram ---- */

static int send_addr(struct node_dgram *g, const struct base_endpoint *dst, const uint8_t *data,
                     size_t len)
{
    struct node_dialer *d = g->d;
    if (d->stopped)
        return BASE_ESTOPPED;
    if (node_dialer_is_mesh(d, dst) || node_dialer_is_own(d, &dst->addr))
        return d->stack ? send_mesh(g, dst, data, len) : -ENETUNREACH;
    if (d->tunnel_only)
        return BASE_EPOLICY;
    return send_direct(g, dst, data, len);
}

static void send_resolved(void *arg, const struct base_endpoint *dst, const uint8_t *data,
                          size_t len)
{
    send_addr(arg, dst, data, len);
}

static int dg_send_to(struct proxy_dgram *pg, const struct proxy_target *dst, const uint8_t *data,
                      size_t len)
{
    struct node_dgram *g = container_of(pg, struct node_dgram, base);
    if (g->closing)
        return BASE_ECLOSING;
    if (dst->name[0])
        return proxy_name_queue_send(&g->names, dst->name, dst->ep.port, data, len);
    return send_addr(g, &dst->ep, data, len);
}

static void close_flows(struct node_dgram *g)
{
    struct base_list *pos;
    while ((pos = base_list_first(&g->flows)))
        flow_close(g, container_of(pos, struct flow, link));
}

static void on_close_deferred(uv_handle_t *h)
{
    struct node_dgram *g = h->data;
    g->close_deferred = true;
    maybe_end(g);
}

static void dg_close(struct proxy_dgram *pg)
{
    struct node_dgram *g = container_of(pg, struct node_dgram, base);
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
    proxy_name_queue_init(&g->names, d->resolver, send_resolved, g);
    base_list_init(&g->flows);
    uv_timer_init(d->loop, &g->close_defer);
    g->close_defer.data = g;
    base_list_push_front(&d->dgrams, &g->live);
    return &g->base;
}

void node_dialer_dgrams_detach(struct node_dialer *d)
{
    struct base_list *pos;
    base_list_foreach (pos, &d->dgrams) {
        close_flows(container_of(pos, struct node_dgram, live));
    }
}
