#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "udp_relay.h"

#define UDP_DGRAM_MAX 65536

struct node_forward_listener {
    uv_tcp_t tcp;
    uv_udp_t udp;
    uv_handle_t *handle; /* whichever of the two spec.proto uses */
    struct node_dialer *dialer;
    struct node_forward spec;
    struct node_udp_relay relay; /* UDP: one session per client address */
    uint8_t *rbuf;
};

/* ---- TCP: a relay per connection ---- */

static void on_connection(uv_stream_t *server, int status)
{
    struct node_forward_listener *f = server->data;
    if (status != 0)
        return;
    struct node_relay *r = node_relay_new();
    struct proxy_stream *client =
        r ? proxy_direct_accept(&f->dialer->direct, server, &node_relay_cbs, node_relay_side(r, 0))
          : NULL;
    struct proxy_target t;
    node_target_from_hostport(&f->spec.target, &t);
    struct proxy_dialer dialer = node_dialer_proxy(f->dialer);
    struct proxy_stream *target =
        client ? dialer.dial(dialer.ctx, &t, &node_relay_cbs, node_relay_side(r, 1)) : NULL;
    if (r)
        node_relay_start(r, client, target);
}

static int start_tcp(struct node_forward_listener *f, uv_loop_t *loop, const struct sockaddr *sa)
{
    uv_tcp_init(loop, &f->tcp);
    f->handle = (uv_handle_t *)&f->tcp;
    int ret = uv_tcp_bind(&f->tcp, sa, 0);
    return ret ? ret : uv_listen((uv_stream_t *)&f->tcp, 128, on_connection);
}

/* ---- UDP: a session per client address ---- */

static void udp_reply(struct node_udp_relay *r, struct node_udp_session *s, const uint8_t *data,
                      size_t len)
{
    struct node_forward_listener *f = r->ctx;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    /* A full socket buffer drops the datagram, as the network would. */
    uv_udp_try_send(&f->udp, &b, 1, (struct sockaddr *)&s->client);
}

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct node_forward_listener *f = h->data;
    *buf = uv_buf_init((char *)f->rbuf, UDP_DGRAM_MAX);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    (void)buf;
    struct node_forward_listener *f = h->data;
    if (n < 0 || !from || (flags & UV_UDP_PARTIAL))
        return;
    struct node_udp_session *s = node_udp_session_find(&f->relay, from);
    if (!s)
        s = node_udp_session_new(&f->relay, from, NULL);
    if (s)
        node_udp_session_send(s, f->rbuf, (size_t)n);
}

static int start_udp(struct node_forward_listener *f, uv_loop_t *loop, const struct sockaddr *sa)
{
    uv_udp_init(loop, &f->udp);
    f->handle = (uv_handle_t *)&f->udp;
    f->rbuf = malloc(UDP_DGRAM_MAX);
    if (!f->rbuf)
        return UV_ENOMEM;
    f->relay = (struct node_udp_relay){.loop = loop,
                                       .dialer = node_dialer_proxy(f->dialer),
                                       .resolver = f->dialer->resolver,
                                       .reply = udp_reply,
                                       .ctx = f};
    node_target_from_hostport(&f->spec.target, &f->relay.target);
    f->relay.target.proto = PROXY_UDP;
    int ret = uv_udp_bind(&f->udp, sa, 0);
    return ret ? ret : uv_udp_recv_start(&f->udp, udp_alloc, udp_recv);
}

struct node_forward_listener *node_forward_start(uv_loop_t *loop, struct node_dialer *dialer,
                                                 const struct node_forward *spec, char *err,
                                                 size_t errlen)
{
    struct sockaddr_storage ss;
    char host[BASE_ADDR_STRLEN];
    base_endpoint_to_sockaddr(&spec->listen, &ss);
    base_addr_format(&spec->listen.addr, host, sizeof(host));
    struct node_forward_listener *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->dialer = dialer;
    f->spec = *spec;
    int ret = spec->proto == NODE_PROTO_UDP ? start_udp(f, loop, (struct sockaddr *)&ss)
                                            : start_tcp(f, loop, (struct sockaddr *)&ss);
    f->handle->data = f;
    if (ret != 0) {
        snprintf(err, errlen, "--forward listener %s:%s:%u: %s",
                 spec->proto == NODE_PROTO_UDP ? "udp" : "tcp", host, spec->listen.port,
                 uv_strerror(ret));
        node_forward_close(f);
        return NULL;
    }
    return f;
}

static void on_closed(uv_handle_t *h)
{
    struct node_forward_listener *f = h->data;
    free(f->rbuf);
    free(f);
}

void node_forward_close(struct node_forward_listener *f)
{
    node_udp_relay_end_all(&f->relay);
    uv_close(f->handle, on_closed);
}
