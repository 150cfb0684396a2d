/* --publish: peers reach a service on this host through the node's tunnel address. */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "relay.h"

static void log_accept(struct node_publish_ctx *pc, const char *proto,
                       const struct base_endpoint *from)
{
    char addr[BASE_ADDR_STRLEN];
    base_addr_format(&from->addr, addr, sizeof(addr));
    node_log(&pc->d->log, BASE_LOG_INFO, "publish_accept",
             "proto=%s from=%s:%u port=%u target=%s:%u", proto, addr, from->port, pc->p->port,
             pc->p->target.host, pc->p->target.port);
}

/* ---- TCP: a relay per connection ---- */

static void tcp_accept(void *ctx, struct ns_conn *c)
{
    struct node_publish_ctx *pc = ctx;
    struct node_daemon *d = pc->d;
    log_accept(pc, "tcp", ns_conn_remote(c));
    struct node_relay *r = node_relay_new();
    if (!r) {
        ns_conn_reset(c);
        return;
    }
    struct proxy_stream *inbound =
        node_dialer_adopt(&d->dialer, c, &node_relay_cbs, node_relay_side(r, 0));
    struct proxy_target t;
    node_target_from_hostport(&pc->p->target, &t);
    struct proxy_dialer direct = proxy_direct_dialer(&d->dialer.direct);
    struct proxy_stream *service =
        inbound ? direct.dial(direct.ctx, &t, &node_relay_cbs, node_relay_side(r, 1)) : NULL;
    node_relay_start(r, inbound, service);
}

/* ---- UDP: a session per peer flow, to the service through host sockets ---- */

static void udp_flow_recv(struct ns_udp *u, const uint8_t *data, size_t len)
{
    node_udp_session_send(ns_udp_data(u), data, len);
}

static void udp_flow_error(struct ns_udp *u, int err)
{
    if (err == BASE_ECLOSING) /* the netstack is closing: the session ends with its flow */
        node_udp_session_end(ns_udp_data(u));
}

static const struct ns_udp_cbs udp_flow_cbs = {.on_recv = udp_flow_recv,
                                               .on_error = udp_flow_error};

static void udp_reply(struct node_udp_relay *r, struct node_udp_session *s, const uint8_t *data,
                      size_t len)
{
    (void)r;
    ns_udp_send(s->client_data, data, len);
}

static void udp_release(struct node_udp_relay *r, struct node_udp_session *s)
{
    (void)r;
    ns_udp_close(s->client_data);
}

static void udp_accept(void *ctx, struct ns_udp *u)
{
    struct node_publish_ctx *pc = ctx;
    log_accept(pc, "udp", ns_udp_remote(u));
    struct sockaddr_storage from;
    node_endpoint_to_sockaddr(ns_udp_remote(u), &from);
    struct node_udp_session *s = node_udp_session_new(&pc->udp, (struct sockaddr *)&from, u);
    if (!s) {
        ns_udp_close(u);
        return;
    }
    ns_udp_set_cbs(u, &udp_flow_cbs, s);
}

static int handle(struct node_publish_ctx *pc, const struct base_addr *own)
{
    struct ns_stack *stack = pc->d->stack;
    if (pc->p->proto == NODE_PROTO_UDP)
        return ns_stack_handle_udp(stack, own, pc->p->port, udp_accept, pc);
    return ns_stack_handle_tcp(stack, own, pc->p->port, tcp_accept, pc);
}

int node_publish_start(struct node_daemon *d, const struct ns_config *nc, char *err, size_t errlen)
{
    const struct base_addr *own[] = {&nc->addr4, &nc->addr6};
    for (size_t i = 0; i < d->opts.n_publishes; i++) {
        const struct node_publish *p = &d->opts.publishes[i];
        struct node_publish_ctx *pc = &d->publish_ctx[i];
        *pc = (struct node_publish_ctx){.d = d, .p = p};
        pc->udp = (struct node_udp_relay){.loop = d->loop,
                                          .dialer = proxy_direct_dialer(&d->dialer.direct),
                                          .resolver = d->dialer.direct.resolver,
                                          .reply = udp_reply,
                                          .release = udp_release,
                                          .ctx = pc};
        node_target_from_hostport(&p->target, &pc->udp.target);
        pc->udp.target.proto = PROXY_UDP;
        for (size_t k = 0; k < 2; k++) {
            if (own[k]->family && handle(pc, own[k]) != 0) {
                snprintf(err, errlen, "--publish %s:%u: the netstack refused the port",
                         p->proto == NODE_PROTO_UDP ? "udp" : "tcp", p->port);
                return -1;
            }
        }
    }
    return 0;
}

void node_publish_stop(struct node_daemon *d)
{
    for (size_t i = 0; d->publish_ctx && i < d->opts.n_publishes; i++)
        node_udp_relay_end_all(&d->publish_ctx[i].udp);
}
