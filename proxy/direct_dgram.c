/*
 * The direct dialer's UDP side for SOCKS5 UDP ASSOCIATE: one unconnected socket per address
 * family. Datagrams to names wait for the resolver (proxy_name_queue); nothing else is queued.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define DGRAM_MAX 65536

struct direct_dgram {
    struct proxy_dgram base;
    struct proxy_direct *d;
    struct proxy_dgram_cbs cbs;
    void *ud;
    uv_udp_t udp[2]; /* [0] IPv4, [1] IPv6 */
    int open[2];     /* handle initialised and not yet closed */
    int usable[2];   /* bound and receiving */
    int tried[2];    /* one attempt per family: the second family opens on first use */
    int closing;
    struct proxy_name_queue names;
    uint8_t *rbuf; /* DGRAM_MAX, malloc'd: only the pages datagrams touch become resident */
};

static void maybe_free(struct direct_dgram *g)
{
    if (!g->closing || g->open[0] || g->open[1])
        return;
    if (g->cbs.on_close)
        g->cbs.on_close(g->ud);
    free(g->rbuf);
    free(g);
}

static void on_udp_closed(uv_handle_t *h)
{
    struct direct_dgram *g = h->data;
    g->open[(uv_udp_t *)h == &g->udp[1]] = 0;
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
    if (nread < 0 || !from || (flags & UV_UDP_PARTIAL) || g->closing)
        return;
    g->cbs.on_recv(g->ud, from, g->rbuf, (size_t)nread);
}

static int open_one(struct direct_dgram *g, int v6);

static int send_addr(struct direct_dgram *g, const struct sockaddr *sa, const uint8_t *data,
                     size_t len)
{
    int v6 = sa->sa_family == AF_INET6;
    if (!g->tried[v6])
        open_one(g, v6);
    if (g->d->allow) { /* also for a name's address, which the policy has not seen */
        struct proxy_target t = {.proto = PROXY_UDP};
        proxy_target_set_addr(&t, sa,
                              ntohs(v6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                       : ((const struct sockaddr_in *)sa)->sin_port));
        int deny = g->d->allow(g->d->allow_arg, &t);
        if (deny)
            return deny;
    }
    if (!g->usable[v6])
        return PROXY_E_NET_UNREACH;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&g->udp[v6], &b, 1, sa);
    return rc < 0 ? proxy_err_from_uv(rc) : 0;
}

static void send_resolved(void *arg, const struct sockaddr *sa, const uint8_t *data, size_t len)
{
    send_addr(arg, sa, data, len);
}

static int dg_send_to(struct proxy_dgram *pg, const struct proxy_target *dst, const uint8_t *data,
                      size_t len)
{
    struct direct_dgram *g = (struct direct_dgram *)pg;
    if (g->closing)
        return PROXY_E_OTHER;
    if (!dst->name[0])
        return send_addr(g, (const struct sockaddr *)&dst->addr, data, len);
    int deny = g->d->allow ? g->d->allow(g->d->allow_arg, dst) : 0;
    if (deny)
        return deny;
    return proxy_name_queue_send(&g->names, dst->name, dst->port, data, len);
}

static void dg_close(struct proxy_dgram *pg)
{
    struct direct_dgram *g = (struct direct_dgram *)pg;
    if (g->closing)
        return;
    g->closing = 1;
    proxy_name_queue_clear(&g->names);
    for (int i = 0; i < 2; i++) {
        if (g->open[i] && g->usable[i])
            uv_close((uv_handle_t *)&g->udp[i], on_udp_closed);
        g->usable[i] = 0;
    }
    maybe_free(g); /* both sockets already closed: nothing to wait for */
}

static const struct proxy_dgram_ops dgram_ops = {.send_to = dg_send_to, .close = dg_close};

static int open_one(struct direct_dgram *g, int v6)
{
    struct sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    if (v6) {
        ((struct sockaddr_in6 *)&any)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&any)->sin6_addr = in6addr_any;
    } else {
        ((struct sockaddr_in *)&any)->sin_family = AF_INET;
    }
    g->tried[v6] = 1;
    if (uv_udp_init(g->d->loop, &g->udp[v6]) != 0)
        return -1;
    g->udp[v6].data = g;
    g->open[v6] = 1;
    if (uv_udp_bind(&g->udp[v6], (struct sockaddr *)&any, v6 ? UV_UDP_IPV6ONLY : 0) != 0 ||
        uv_udp_recv_start(&g->udp[v6], alloc_cb, recv_cb) != 0) {
        uv_close((uv_handle_t *)&g->udp[v6], on_udp_closed);
        return -1;
    }
    g->usable[v6] = 1;
    return 0;
}

struct proxy_dgram *proxy_direct_dgram_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud);
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
    g->names = (struct proxy_name_queue){.resolver = d->resolver, .send = send_resolved, .arg = g};
    g->rbuf = malloc(DGRAM_MAX);
    /* IPv4 now (a handle to close keeps on_close out of close()); IPv6 when first needed,
     * or now on a host without IPv4. */
    int ok = g->rbuf && (open_one(g, 0) == 0 || open_one(g, 1) == 0);
    if (!ok) {
        /* Never handed out, so no on_close; freed once the failed handles are closed. */
        g->cbs.on_close = NULL;
        g->closing = 1;
        maybe_free(g);
        return NULL;
    }
    return &g->base;
}
