/*
 * A SOCKS5 UDP association: a UDP socket where the client reached us, relaying through a
 * proxy_dgram from the dialer; it lives as long as the client's TCP connection. Datagrams are
 * taken only from the client's address (and the port its request named, if any), so nobody
 * else on the host's network can use the association.
 * Flow: begin (bind, open, answer) -> udp_recv -> send_to / dg_on_recv -> the client; close ->
 * the socket and the dgram close -> released.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sessions.h"
#include "socks5.h"

#define UDP_DGRAM_MAX 65536

struct assoc {
    struct proxy_session *s;
    uv_udp_t udp;
    bool udp_open;
    struct proxy_dgram *dg;
    struct base_endpoint client; /* where the client's datagrams come from */
    bool client_known;
    uint16_t expect_port; /* 0: any */
    bool opened;          /* answered: proxy_close is logged when it ends */
    uint64_t start;       /* uv_now when it opened */
    uint64_t up_bytes, down_bytes, up_dgrams, down_dgrams; /* payload, both ways */
};

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(UDP_DGRAM_MAX);
    buf->len = buf->base ? UDP_DGRAM_MAX : 0;
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    struct assoc *a = h->data;
    struct base_endpoint ep;
    struct proxy_target t;
    size_t hdr;
    if (nread <= 0 || !from || (flags & UV_UDP_PARTIAL) || !a->dg ||
        a->s->state != PROXY_SESSION_OPEN || base_endpoint_from_sockaddr(&ep, from) != 0)
        goto out;
    if (!base_addr_equal(&ep.addr, &a->client.addr))
        goto out;
    if (a->expect_port && ep.port != a->expect_port)
        goto out;
    if (proxy_socks5_udp_parse((const uint8_t *)buf->base, (size_t)nread, &t, &hdr) != 0)
        goto out; /* fragments and malformed headers are dropped */
    a->client = ep;
    a->client_known = true;
    a->up_bytes += (size_t)nread - hdr;
    a->up_dgrams++;
    a->dg->ops->send_to(a->dg, &t, (const uint8_t *)buf->base + hdr, (size_t)nread - hdr);
out:
    free(buf->base);
}

static void dg_on_recv(void *ud, const struct base_endpoint *from, const uint8_t *data, size_t len)
{
    struct assoc *a = ud;
    if (a->s->state != PROXY_SESSION_OPEN || !a->client_known)
        return;
    uint8_t hdr[PROXY_SOCKS5_UDP_HDR_MAX];
    uv_buf_t b[2] = {uv_buf_init((char *)hdr, (unsigned)proxy_socks5_udp_header(hdr, from)),
                     uv_buf_init((char *)data, (unsigned)len)};
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(&a->client, &ss);
    a->down_bytes += len;
    a->down_dgrams++;
    /* UDP: a full socket buffer drops the datagram, as the network would. */
    uv_udp_try_send(&a->udp, b, 2, (struct sockaddr *)&ss);
}

static void dg_on_close(void *ud)
{
    struct assoc *a = ud;
    proxy_session_release(a->s);
}

static const struct proxy_dgram_cbs dg_cbs = {.on_recv = dg_on_recv, .on_close = dg_on_close};

static void on_udp_closed(uv_handle_t *h)
{
    struct assoc *a = h->data;
    proxy_session_release(a->s);
}

/* The association's proxy_close line: UDP has no destination of its own, so payload counts. */
static void log_close(struct proxy_session *s, struct assoc *a)
{
    if (!a->opened)
        return;
    a->opened = false;
    s->env->stats->bytes_up += a->up_bytes;
    s->env->stats->bytes_down += a->down_bytes;
    proxy_session_log(s, BASE_LOG_INFO, "proxy_close",
                      "proto=%s bytes_up=%" PRIu64 " bytes_down=%" PRIu64 " datagrams_up=%" PRIu64
                      " datagrams_down=%" PRIu64 " duration_ms=%" PRIu64 " reply=0",
                      s->ops->name, a->up_bytes, a->down_bytes, a->up_dgrams, a->down_dgrams,
                      uv_now(s->env->loop) - a->start);
}

static void assoc_close(struct proxy_session *s)
{
    struct assoc *a = s->proto;
    log_close(s, a);
    if (a->dg) {
        a->dg->ops->close(a->dg);
        a->dg = NULL;
    }
    if (a->udp_open) {
        a->udp_open = false;
        uv_close((uv_handle_t *)&a->udp, on_udp_closed);
    }
}

static void assoc_free(struct proxy_session *s)
{
    free(s->proto);
}

static const struct proxy_session_ops udp_ops = {
    .name = "socks5_udp",
    .close = assoc_close,
    .free = assoc_free,
};

/* The relay listens where the client reached us (loopback stays loopback); bnd gets its end. */
static int bind_like_client(struct assoc *a, struct base_endpoint *bnd)
{
    static_assert(UDP_DGRAM_MAX >= 65535, "a datagram fits a read buffer");
    *bnd = a->s->local;
    bnd->port = 0;
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(bnd, &ss);
    if (uv_udp_init(a->s->env->loop, &a->udp) != 0)
        return -1;
    a->udp.data = a;
    a->udp_open = true;
    proxy_session_hold(a->s);
    int len = sizeof(ss);
    if (uv_udp_bind(&a->udp, (struct sockaddr *)&ss, 0) != 0 ||
        uv_udp_getsockname(&a->udp, (struct sockaddr *)&ss, &len) != 0 ||
        base_endpoint_from_sockaddr(bnd, (struct sockaddr *)&ss) != 0)
        return -1;
    return uv_udp_recv_start(&a->udp, udp_alloc, udp_recv);
}

void proxy_socks5_udp_begin(struct proxy_session *s, const struct proxy_target *t)
{
    const struct proxy_dialer *d = &s->env->cfg->dialer;
    if (!d->dgram_open) {
        proxy_socks5_fail(s, PROXY_SOCKS5_REP_CMD);
        return;
    }
    struct assoc *a = calloc(1, sizeof(*a));
    if (!a) {
        proxy_session_close(s);
        return;
    }
    a->s = s;
    proxy_session_switch(s, &udp_ops, a);
    /* DST.ADDR/DST.PORT say where the client will send from; zeros mean "not known yet". */
    a->client = s->peer;
    a->expect_port = t->ep.port;
    if (!t->name[0] && t->ep.addr.family == s->peer.addr.family &&
        !base_addr_is_unspecified(&t->ep.addr))
        a->client = t->ep;
    struct base_endpoint bnd;
    if (bind_like_client(a, &bnd) != 0) {
        proxy_socks5_fail(s, PROXY_SOCKS5_REP_FAIL);
        return;
    }
    a->dg = d->dgram_open(d->ctx, &dg_cbs, a);
    if (!a->dg) {
        proxy_socks5_fail(s, PROXY_SOCKS5_REP_FAIL);
        return;
    }
    proxy_session_hold(s);
    char buf[BASE_ENDPOINT_STRLEN];
    proxy_session_log(s, BASE_LOG_INFO, "proxy_open", "proto=%s relay=%s", s->ops->name,
                      base_endpoint_format(&bnd, buf, sizeof(buf)));
    a->opened = true;
    a->start = uv_now(s->env->loop);
    uint8_t out[PROXY_SOCKS5_REPLY_MAX];
    proxy_session_sent_socks5(s, PROXY_SOCKS5_REP_OK);
    proxy_session_reply(s, out, proxy_socks5_reply(out, PROXY_SOCKS5_REP_OK, &bnd));
    /* The association lives as long as this connection: keep reading to see it end. */
    proxy_session_read_client(s, true);
}
