/* SOCKS5 on a client connection: negotiation through the parser, CONNECT, UDP ASSOCIATE. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

static void reply(struct conn *c, uint8_t rep, const struct sockaddr *bnd)
{
    uint8_t out[SOCKS5_REPLY_MAX];
    conn_client_write(c, out, socks5_reply(out, rep, bnd));
}

static void fail(struct conn *c, uint8_t rep)
{
    reply(c, rep, NULL);
    conn_finish(c);
}

/* ---- UDP ASSOCIATE ---- */

static int same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static uint16_t port_of(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
                                          : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static_assert(CONN_READ_BUF >= 65536, "a datagram fits a read buffer");
    buf->base = malloc(CONN_READ_BUF);
    buf->len = buf->base ? CONN_READ_BUF : 0;
}

/* A datagram from the client: only from the TCP client's address (and DST.PORT if it named
 * one), so the association cannot be used by anyone else on the host's network. */
static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    struct conn *c = h->data;
    struct proxy_target t;
    size_t hdr;
    if (nread <= 0 || !from || (flags & UV_UDP_PARTIAL) || c->closing || !c->dg)
        goto out;
    if (!same_ip(from, (struct sockaddr *)&c->udp_peer))
        goto out;
    if (c->udp_expect_port && port_of(from) != c->udp_expect_port)
        goto out;
    if (socks5_udp_parse((const uint8_t *)buf->base, (size_t)nread, &t, &hdr) != 0)
        goto out; /* fragments and malformed headers are dropped */
    memcpy(&c->udp_peer, from,
           from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    c->udp_peer_known = 1;
    c->dg->ops->send_to(c->dg, &t, (const uint8_t *)buf->base + hdr, (size_t)nread - hdr);
out:
    free(buf->base);
}

static void dg_on_recv(void *ud, const struct sockaddr *from, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    if (c->closing || !c->udp_peer_known)
        return;
    uint8_t hdr[SOCKS5_UDP_HDR_MAX];
    uv_buf_t b[2] = {uv_buf_init((char *)hdr, (unsigned)socks5_udp_header(hdr, from)),
                     uv_buf_init((char *)data, (unsigned)len)};
    /* UDP: a full socket buffer drops the datagram, as the network would. */
    uv_udp_try_send(&c->udp, b, 2, (struct sockaddr *)&c->udp_peer);
}

static void dg_on_close(void *ud)
{
    conn_unref(ud);
}

static const struct proxy_dgram_cbs dg_cbs = {.on_recv = dg_on_recv, .on_close = dg_on_close};

static int udp_bind_like(struct conn *c, struct sockaddr_storage *bnd)
{
    /* The UDP relay listens where the client reached us: loopback stays loopback. */
    int len = sizeof(*bnd);
    if (uv_tcp_getsockname(&c->client, (struct sockaddr *)bnd, &len) != 0)
        return -1;
    if (bnd->ss_family == AF_INET)
        ((struct sockaddr_in *)bnd)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)bnd)->sin6_port = 0;
    if (uv_udp_init(c->srv->loop, &c->udp) != 0)
        return -1;
    c->udp.data = c;
    c->udp_open = 1;
    c->open++;
    if (uv_udp_bind(&c->udp, (struct sockaddr *)bnd, 0) != 0)
        return -1;
    len = sizeof(*bnd);
    if (uv_udp_getsockname(&c->udp, (struct sockaddr *)bnd, &len) != 0)
        return -1;
    return uv_udp_recv_start(&c->udp, udp_alloc, udp_recv);
}

static void udp_associate(struct conn *c, const struct proxy_target *t)
{
    const struct proxy_dialer *d = &c->srv->cfg.dialer;
    if (!d->dgram_open) {
        fail(c, SOCKS5_REP_CMD);
        return;
    }
    int len = sizeof(c->udp_peer);
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&c->udp_peer, &len) != 0) {
        fail(c, SOCKS5_REP_FAIL);
        return;
    }
    /* DST.ADDR/DST.PORT say where the client will send from; zeros mean "not known yet". */
    c->udp_expect_port = t->port;
    if (!t->name[0] && t->addr.ss_family == c->udp_peer.ss_family) {
        static const uint8_t zero[16];
        const void *ip = t->addr.ss_family == AF_INET
                             ? (const void *)&((const struct sockaddr_in *)&t->addr)->sin_addr
                             : (const void *)&((const struct sockaddr_in6 *)&t->addr)->sin6_addr;
        if (memcmp(ip, zero, t->addr.ss_family == AF_INET ? 4 : 16) != 0)
            memcpy(&c->udp_peer, &t->addr, sizeof(t->addr));
    }
    struct sockaddr_storage bnd;
    if (udp_bind_like(c, &bnd) != 0) {
        fail(c, SOCKS5_REP_FAIL);
        return;
    }
    c->dg = d->dgram_open(d->ctx, &dg_cbs, c);
    if (!c->dg) {
        fail(c, SOCKS5_REP_FAIL);
        return;
    }
    c->open++;
    c->phase = PH_UDP;
    conn_head_timer(c, 0);
    conn_log(c, PROXY_LOG_DEBUG, "udp associate on port %u", port_of((struct sockaddr *)&bnd));
    reply(c, SOCKS5_REP_OK, (struct sockaddr *)&bnd);
    /* The association lives as long as this connection: keep reading to see it end. */
    c->want_read = 1;
    conn_sync_read(c);
}

/* ---- CONNECT ---- */

void socks5_conn_connected(struct conn *c, int err, const struct sockaddr *local)
{
    if (err) {
        fail(c, proxy_err_socks5(err));
        return;
    }
    reply(c, SOCKS5_REP_OK, local);
    conn_relay_start(c);
}

void socks5_conn_data(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len)
{
    while (len > 0 && !c->closing && c->phase == PH_HEAD) {
        struct socks5_result r;
        size_t used;
        enum socks5_event ev = socks5_input(&c->s5, data, len, &used, &r);
        data += used;
        len -= used;
        switch (ev) {
        case SOCKS5_MORE:
            break;
        case SOCKS5_SEND:
            conn_client_write(c, r.reply, r.reply_len);
            break;
        case SOCKS5_FAIL:
            conn_log(c, PROXY_LOG_INFO, "socks5: bad request, reply %u",
                     r.reply_len > 1 ? r.reply[1] : 0);
            conn_client_write(c, r.reply, r.reply_len);
            conn_finish(c);
            return;
        case SOCKS5_REQUEST:
            conn_head_timer(c, 0);
            if (r.cmd == SOCKS5_CMD_UDP) {
                udp_associate(c, &r.target);
                return; /* anything after the request on the control connection is ignored */
            }
            /* Bytes the client sent after its request go upstream once connected. */
            conn_hold(c, rb, data, len);
            if (conn_dial(c, &r.target) != 0)
                fail(c, SOCKS5_REP_FAIL);
            return;
        }
    }
}
