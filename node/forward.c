/* --forward: a host listener in front of proxy/'s relays (see forward.h). */
#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define UDP_DGRAM_MAX 65536

struct node_forward_listener {
    uv_tcp_t tcp;
    uv_udp_t udp;
    uv_handle_t *handle; /* whichever of the two spec.proto uses */
    struct node_forward spec;
    struct proxy_relay *tcp_relay;     /* TCP: one connection per accepted one */
    struct proxy_udp_relay *udp_relay; /* UDP: one session per client address */
    uint8_t *rbuf;
    unsigned open; /* the handle and the relay, until their close callbacks */
    void (*on_closed)(void *arg);
    void *arg;
};

/* ---- TCP ---- */

static struct proxy_stream *accept_inbound(void *arg, const struct proxy_stream_cbs *cbs, void *ud)
{
    return proxy_stream_accept(arg, cbs, ud, NULL, NULL);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct node_forward_listener *f = server->data;
    if (status < 0) /* the client is not served: the log says so */
        proxy_relay_accept_failed(f->tcp_relay, status);
    else
        proxy_relay_add(f->tcp_relay, accept_inbound, server);
}

static int start_tcp(struct node_forward_listener *f, uv_loop_t *loop, struct node_dialer *dialer,
                     const struct sockaddr *sa, const struct node_forward_env *env)
{
    uv_tcp_init(loop, &f->tcp);
    f->handle = (uv_handle_t *)&f->tcp;
    struct proxy_relay_config rc = {.dialer = node_dialer_proxy(dialer),
                                    .idle_timeout_ms = env ? env->idle_timeout_ms : 0,
                                    .logger = env ? env->logger : (struct base_logger){0},
                                    .budget = dialer->budget};
    node_target_from_hostport(&f->spec.target, &rc.target);
    int ret = proxy_relay_new(loop, &rc, &f->tcp_relay);
    if (ret == 0)
        ret = uv_tcp_bind(&f->tcp, sa, 0);
    uv_os_fd_t fd = -1;
    if (ret == 0 && uv_fileno((uv_handle_t *)&f->tcp, &fd) == 0)
        proxy_relay_watch_fds(f->tcp_relay, fd);
    return ret ? ret : uv_listen((uv_stream_t *)&f->tcp, 128, on_connection);
}

/* ---- UDP ---- */

static void udp_reply(void *ctx, struct proxy_udp_session *s, const uint8_t *data, size_t len)
{
    struct node_forward_listener *f = ctx;
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(proxy_udp_session_client(s), &ss);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    /* A full socket buffer drops the datagram, as the network would. */
    uv_udp_try_send(&f->udp, &b, 1, (struct sockaddr *)&ss);
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
    struct base_endpoint client;
    if (n < 0 || !from || (flags & UV_UDP_PARTIAL) ||
        base_endpoint_from_sockaddr(&client, from) != 0)
        return;
    struct proxy_udp_session *s = proxy_udp_session_find(f->udp_relay, &client);
    if (s || proxy_udp_session_new(f->udp_relay, &client, NULL, &s) == 0)
        proxy_udp_session_send(s, f->rbuf, (size_t)n);
}

static int start_udp(struct node_forward_listener *f, uv_loop_t *loop, struct node_dialer *dialer,
                     const struct sockaddr *sa)
{
    uv_udp_init(loop, &f->udp);
    f->handle = (uv_handle_t *)&f->udp;
    f->rbuf = malloc(UDP_DGRAM_MAX);
    if (!f->rbuf)
        return UV_ENOMEM;
    struct proxy_udp_relay_config rc = {.dialer = node_dialer_proxy(dialer),
                                        .resolver = dialer->resolver,
                                        .reply = udp_reply,
                                        .ctx = f};
    node_target_from_hostport(&f->spec.target, &rc.target);
    rc.target.proto = PROXY_UDP;
    int ret = proxy_udp_relay_new(loop, &rc, &f->udp_relay);
    if (ret == 0)
        ret = uv_udp_bind(&f->udp, sa, 0);
    return ret ? ret : uv_udp_recv_start(&f->udp, udp_alloc, udp_recv);
}

struct node_forward_listener *node_forward_start(uv_loop_t *loop, struct node_dialer *dialer,
                                                 const struct node_forward *spec,
                                                 const struct node_forward_env *env, char *err,
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
    f->spec = *spec;
    int ret = spec->proto == NODE_PROTO_UDP
                  ? start_udp(f, loop, dialer, (struct sockaddr *)&ss)
                  : start_tcp(f, loop, dialer, (struct sockaddr *)&ss, env);
    f->handle->data = f;
    if (ret != 0) {
        snprintf(err, errlen, "--forward listener %s:%s:%u: %s",
                 spec->proto == NODE_PROTO_UDP ? "udp" : "tcp", host, spec->listen.port,
                 base_strerror(ret));
        node_forward_close(f);
        return NULL;
    }
    return f;
}

static void release(struct node_forward_listener *f)
{
    if (--f->open > 0)
        return;
    void (*cb)(void *) = f->on_closed;
    void *arg = f->arg;
    free(f->rbuf);
    free(f);
    if (cb)
        cb(arg);
}

static void on_relay_closed(void *arg)
{
    release(arg);
}

static void on_tcp_relay_closed(void *arg)
{
    struct node_forward_listener *f = arg;
    f->tcp_relay = NULL; /* freed: nothing left for node_forward_cut */
    release(f);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

void node_forward_close(struct node_forward_listener *f)
{
    node_forward_drain(f, NULL, NULL);
}

void node_forward_drain(struct node_forward_listener *f, void (*on_closed)(void *arg), void *arg)
{
    f->on_closed = on_closed;
    f->arg = arg;
    f->open = 1;
    if (f->tcp_relay) {
        f->open++;
        proxy_relay_drain(f->tcp_relay, on_tcp_relay_closed, f);
    }
    if (f->udp_relay) {
        f->open++;
        proxy_udp_relay_close(f->udp_relay, on_relay_closed, f);
    }
    uv_close(f->handle, on_handle_closed);
}

void node_forward_cut(struct node_forward_listener *f)
{
    if (f->tcp_relay)
        proxy_relay_close(f->tcp_relay, NULL, NULL);
}

int node_forward_port(const struct node_forward_listener *f)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int ret = f->spec.proto == NODE_PROTO_UDP
                  ? uv_udp_getsockname(&f->udp, (struct sockaddr *)&ss, &len)
                  : uv_tcp_getsockname(&f->tcp, (struct sockaddr *)&ss, &len);
    struct base_endpoint ep;
    if (ret == 0)
        ret = base_endpoint_from_sockaddr(&ep, (struct sockaddr *)&ss);
    return ret ? ret : ep.port;
}
