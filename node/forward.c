#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

struct node_forward_listener {
    uv_tcp_t tcp;
    struct node_dialer *dialer;
    struct node_forward spec;
};

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

struct node_forward_listener *node_forward_start(uv_loop_t *loop, struct node_dialer *dialer,
                                                 const struct node_forward *spec, char *err,
                                                 size_t errlen)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(spec->listen.host, spec->listen.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(spec->listen.host, spec->listen.port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "--forward: %s is not an IP address", spec->listen.host);
        return NULL;
    }
    struct node_forward_listener *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->dialer = dialer;
    f->spec = *spec;
    uv_tcp_init(loop, &f->tcp);
    f->tcp.data = f;
    int ret = uv_tcp_bind(&f->tcp, (struct sockaddr *)&ss, 0);
    if (ret == 0)
        ret = uv_listen((uv_stream_t *)&f->tcp, 128, on_connection);
    if (ret != 0) {
        snprintf(err, errlen, "--forward listener %s:%u: %s", spec->listen.host,
                 spec->listen.port, uv_strerror(ret));
        node_forward_close(f);
        return NULL;
    }
    return f;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void node_forward_close(struct node_forward_listener *f)
{
    uv_close((uv_handle_t *)&f->tcp, on_closed);
}
