/*
 * The direct dialer's UDP side: one unconnected socket per address family, the IPv6 one opened
 * on first use. Datagrams to names wait for the resolver (proxy_name_queue); nothing else is
 * queued. Flow: open -> send_to (-> name queue -> send_addr) / recv_cb -> on_recv; close ->
 * sockets closed -> maybe_free -> on_close.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "direct.h"

#define DGRAM_MAX 65536

/* One socket's life: never tried, bound and receiving, failed, or closing. */
enum sock_state { SOCK_UNTRIED, SOCK_USABLE, SOCK_FAILED, SOCK_CLOSING, SOCK_CLOSED };

struct direct_dgram {
    struct proxy_dgram base;
    struct proxy_direct *d;
    struct proxy_dgram_cbs cbs;
    void *ud;
    uv_udp_t udp[2]; /* [0] IPv4, [1] IPv6 */
    enum sock_state sock[2];
    bool closing;
    struct proxy_name_queue names;
    uint8_t *rbuf; /* DGRAM_MAX, malloc'd: only the pages datagrams touch become resident */
};

static bool handle_open(const struct direct_dgram *g, int i)
{
    return g->sock[i] == SOCK_USABLE || g->sock[i] == SOCK_CLOSING;
}

static void maybe_free(struct direct_dgram *g)
{
    if (!g->closing || handle_open(g, 0) || handle_open(g, 1))
        return;
    if (g->cbs.on_close)
        g->cbs.on_close(g->ud);
    free(g->rbuf);
    free(g);
}

static void on_udp_closed(uv_handle_t *h)
{
    struct direct_dgram *g = h->data;
    int i = (uv_udp_t *)h == &g->udp[1];
    g->sock[i] = g->sock[i] == SOCK_CLOSING && !g->closing ? SOCK_FAILED : SOCK_CLOSED;
    maybe_free(g);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct direct_dgram *g = h->data;
    *buf = uv_buf_init((char *)g->rbuf, DGRAM_MAX);
}

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags)
{
    (void)buf;
    struct direct_dgram *g = h->data;
    struct base_endpoint ep;
    if (nread < 0 || !from || (flags & UV_UDP_PARTIAL) || g->closing ||
        base_endpoint_from_sockaddr(&ep, from) != 0)
        return;
    g->cbs.on_recv(g->ud, &ep, g->rbuf, (size_t)nread);
}

static int open_one(struct direct_dgram *g, int v6)
{
    struct base_endpoint any = {.addr.family = v6 ? AF_INET6 : AF_INET};
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(&any, &ss);
    if (uv_udp_init(g->d->loop, &g->udp[v6]) != 0) {
        g->sock[v6] = SOCK_FAILED;
        return -1;
    }
    g->udp[v6].data = g;
    g->sock[v6] = SOCK_USABLE;
    if (uv_udp_bind(&g->udp[v6], (struct sockaddr *)&ss, v6 ? UV_UDP_IPV6ONLY : 0) != 0 ||
        uv_udp_recv_start(&g->udp[v6], alloc_cb, recv_cb) != 0) {
        g->sock[v6] = SOCK_CLOSING;
        uv_close((uv_handle_t *)&g->udp[v6], on_udp_closed);
        return -1;
    }
    return 0;
}

static int send_addr(struct direct_dgram *g, const struct base_endpoint *dst, const uint8_t *data,
                     size_t len)
{
    int v6 = dst->addr.family == AF_INET6;
    if (g->sock[v6] == SOCK_UNTRIED)
        open_one(g, v6);
    if (g->d->allow) { /* also for a name's address, which the policy has not seen */
        struct proxy_target t = {.proto = PROXY_UDP, .ep = *dst};
        int deny = g->d->allow(g->d->allow_arg, &t);
        if (deny)
            return deny;
    }
    if (g->sock[v6] != SOCK_USABLE)
        return -ENETUNREACH;
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(dst, &ss);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&g->udp[v6], &b, 1, (struct sockaddr *)&ss);
    return rc < 0 ? proxy_err_from_uv(rc) : 0;
}

static void send_resolved(void *arg, const struct base_endpoint *dst, const uint8_t *data,
                          size_t len)
{
    send_addr(arg, dst, data, len);
}

static int dg_send_to(struct proxy_dgram *pg, const struct proxy_target *dst, const uint8_t *data,
                      size_t len)
{
    struct direct_dgram *g = container_of(pg, struct direct_dgram, base);
    if (g->closing)
        return BASE_ECLOSING;
    if (!dst->name[0])
        return send_addr(g, &dst->ep, data, len);
    int deny = g->d->allow ? g->d->allow(g->d->allow_arg, dst) : 0;
    if (deny)
        return deny;
    return proxy_name_queue_send(&g->names, dst->name, dst->ep.port, data, len);
}

static void dg_close(struct proxy_dgram *pg)
{
    struct direct_dgram *g = container_of(pg, struct direct_dgram, base);
    if (g->closing)
        return;
    g->closing = true;
    proxy_name_queue_clear(&g->names);
    for (int i = 0; i < 2; i++) {
        if (g->sock[i] == SOCK_USABLE) {
            g->sock[i] = SOCK_CLOSING;
            uv_close((uv_handle_t *)&g->udp[i], on_udp_closed);
        }
    }
    maybe_free(g); /* both sockets already closed: nothing to wait for */
}

static const struct proxy_dgram_ops dgram_ops = {.send_to = dg_send_to, .close = dg_close};

struct proxy_dgram *proxy_direct_dgram_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud)
{
    struct proxy_direct *d = ctx;
    struct direct_dgram *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->base.ops = &dgram_ops;
    g->d = d;
    g->cbs = *cbs;
    g->ud = ud;
    proxy_name_queue_init(&g->names, d->resolver, send_resolved, g);
    g->rbuf = malloc(DGRAM_MAX);
    /* IPv4 now (a handle to close keeps on_close out of close()); IPv6 when first needed,
     * or now on a host without IPv4. */
    bool ok = g->rbuf && (open_one(g, 0) == 0 || open_one(g, 1) == 0);
    if (!ok) {
        /* Never handed out, so no on_close; freed once the failed handles are closed. */
        g->cbs.on_close = NULL;
        g->closing = true;
        maybe_free(g);
        return NULL;
    }
    return &g->base;
}
