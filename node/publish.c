/*
 * --publish: peers reach a service on this host through the node's tunnel address. The
 * netstack hands over each connection or flow; proxy/'s relays carry it to the service
 * through host sockets. Flow: node_publish_start -> the netstack's accept -> tcp_accept /
 * udp_accept -> the relay (TCP: its dial -> dial_recorded -> rec_connect records the host end
 * for whois ... rec_close forgets it); node_publish_stop -> the relays close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static void log_accept(struct node_publish_ctx *pc, const char *proto,
                       const struct base_endpoint *from)
{
    char addr[BASE_ADDR_STRLEN];
    base_addr_format(&from->addr, addr, sizeof(addr));
    node_log(&pc->d->log, BASE_LOG_INFO, "publish_accept",
             "proto=%s from=%s:%u port=%u target=%s:%u", proto, addr, from->port, pc->p->port,
             pc->p->target.host, pc->p->target.port);
}

/* ---- TCP: a relay connection per peer connection ---- */

struct adopt {
    struct node_dialer *dialer;
    struct ns_conn *conn;
    bool taken;
};

static struct proxy_stream *adopt_inbound(void *arg, const struct proxy_stream_cbs *cbs, void *ud)
{
    struct adopt *a = arg;
    a->taken = true;
    return node_dialer_adopt(a->dialer, a->conn, cbs, ud);
}

static void tcp_accept(void *ctx, struct ns_conn *c)
{
    struct node_publish_ctx *pc = ctx;
    log_accept(pc, "tcp", ns_conn_remote(c));
    struct adopt a = {.dialer = &pc->d->dialer, .conn = c};
    if (!pc->tcp) { /* stopping: the relay is draining */
        ns_conn_reset(c);
        return;
    }
    pc->accepting = ns_conn_remote(c); /* the relay dials from inside add: dial_recorded */
    int rc = proxy_relay_add(pc->tcp, adopt_inbound, &a);
    pc->accepting = NULL;
    if (rc != 0 && !a.taken)
        ns_conn_reset(c);
}

/* ---- the relay's side to the service, recorded for whois ----
 * The relay's dial goes through here: the record stands between the direct dialer's stream
 * and the relay, learns the host end on connect (the direct dialer's getsockname) and leaves
 * d->publish_conns when the stream closes. */

static void rec_connect(void *ud, int err, const struct base_endpoint *local)
{
    struct node_publish_conn *r = ud;
    if (err == 0 && local) {
        r->local = *local;
        base_list_push_back(&r->d->publish_conns, &r->link);
    }
    r->cbs.on_connect(r->ud, err, local);
}

static void rec_read(void *ud, const uint8_t *data, size_t len)
{
    struct node_publish_conn *r = ud;
    r->cbs.on_read(r->ud, data, len);
}

static void rec_eof(void *ud)
{
    struct node_publish_conn *r = ud;
    r->cbs.on_eof(r->ud);
}

static void rec_error(void *ud, int err)
{
    struct node_publish_conn *r = ud;
    r->cbs.on_error(r->ud, err);
}

static void rec_close(void *ud)
{
    struct node_publish_conn *r = ud;
    struct proxy_stream_cbs cbs = r->cbs;
    void *relay_ud = r->ud;
    base_list_remove(&r->link);
    free(r);
    if (cbs.on_close)
        cbs.on_close(relay_ud);
}

static const struct proxy_stream_cbs rec_cbs = {.on_connect = rec_connect,
                                                .on_read = rec_read,
                                                .on_eof = rec_eof,
                                                .on_error = rec_error,
                                                .on_close = rec_close};

static struct proxy_stream *dial_recorded(void *ctx, const struct proxy_target *t,
                                          const struct proxy_stream_cbs *cbs, void *ud)
{
    struct node_publish_ctx *pc = ctx;
    struct proxy_dialer direct = proxy_direct_dialer(&pc->d->dialer.direct);
    struct node_publish_conn *r = pc->accepting ? calloc(1, sizeof(*r)) : NULL;
    if (!r) /* out of memory: relayed all the same, only whois will not know it */
        return direct.dial(direct.ctx, t, cbs, ud);
    *r = (struct node_publish_conn){
        .p = pc->p, .from = *pc->accepting, .cbs = *cbs, .ud = ud, .d = pc->d};
    base_list_init(&r->link);
    struct proxy_stream *s = direct.dial(direct.ctx, t, &rec_cbs, r);
    if (!s)
        free(r);
    return s;
}

const struct node_publish_conn *node_publish_find(struct node_daemon *d,
                                                  const struct base_endpoint *local)
{
    struct base_list *pos;
    base_list_foreach (pos, &d->publish_conns) {
        const struct node_publish_conn *r = container_of(pos, struct node_publish_conn, link);
        if (base_endpoint_equal(&r->local, local))
            return r;
    }
    return NULL;
}

/* ---- UDP: a session per peer flow ---- */

static void udp_flow_recv(struct ns_udp *u, const uint8_t *data, size_t len)
{
    proxy_udp_session_send(ns_udp_data(u), data, len);
}

static void udp_flow_error(struct ns_udp *u, int err)
{
    if (err == BASE_ECLOSING) /* the netstack is closing: the session ends with its flow */
        proxy_udp_session_end(ns_udp_data(u));
}

static const struct ns_udp_cbs udp_flow_cbs = {.on_recv = udp_flow_recv,
                                               .on_error = udp_flow_error};

static void udp_reply(void *ctx, struct proxy_udp_session *s, const uint8_t *data, size_t len)
{
    (void)ctx;
    ns_udp_send(proxy_udp_session_data(s), data, len);
}

static void udp_release(void *ctx, struct proxy_udp_session *s)
{
    (void)ctx;
    ns_udp_close(proxy_udp_session_data(s));
}

static void udp_accept(void *ctx, struct ns_udp *u)
{
    struct node_publish_ctx *pc = ctx;
    log_accept(pc, "udp", ns_udp_remote(u));
    struct proxy_udp_session *s;
    if (proxy_udp_session_new(pc->udp, ns_udp_remote(u), u, &s) != 0) {
        ns_udp_close(u);
        return;
    }
    ns_udp_set_cbs(u, &udp_flow_cbs, s);
}

/* The relay for pc's protocol, to the service through host sockets. */
static int relay_new(struct node_publish_ctx *pc)
{
    struct node_daemon *d = pc->d;
    struct proxy_target target;
    node_target_from_hostport(&pc->p->target, &target);
    if (pc->p->proto != NODE_PROTO_UDP) {
        struct proxy_relay_config rc = {.dialer = {.ctx = pc, .dial = dial_recorded},
                                        .target = target,
                                        .idle_timeout_ms = d->opts.idle_timeout_ms,
                                        .logger = node_log_logger(&d->log),
                                        .budget = &d->budget};
        return proxy_relay_new(d->loop, &rc, &pc->tcp);
    }
    target.proto = PROXY_UDP;
    struct proxy_udp_relay_config uc = {.dialer = proxy_direct_dialer(&d->dialer.direct),
                                        .resolver = d->dialer.direct.resolver,
                                        .target = target,
                                        .reply = udp_reply,
                                        .release = udp_release,
                                        .ctx = pc};
    return proxy_udp_relay_new(d->loop, &uc, &pc->udp);
}

static int handle(struct node_publish_ctx *pc, const struct base_addr *own)
{
    struct ns_stack *stack = pc->d->stack;
    if (pc->p->proto == NODE_PROTO_UDP)
        return ns_stack_handle_udp(stack, own, pc->p->port, udp_accept, pc);
    return ns_stack_handle_tcp(stack, own, pc->p->port, tcp_accept, pc);
}

/* The stack is closing: the relays let go of what they hold (its conns end with it). */
static void on_stack_closing(struct ns_stack_watch *w, struct ns_stack *ns)
{
    (void)ns;
    node_publish_stop(container_of(w, struct node_daemon, publish_watch));
}

int node_publish_start(struct node_daemon *d, const struct ns_config *nc, char *err, size_t errlen)
{
    const struct base_addr *own[] = {&nc->addr4, &nc->addr6};
    d->publish_watch.on_closing = on_stack_closing;
    if (ns_stack_watch(d->stack, &d->publish_watch) != 0) {
        snprintf(err, errlen, "--publish: the netstack is closing");
        return -1;
    }
    for (size_t i = 0; i < d->opts.n_publishes; i++) {
        const struct node_publish *p = &d->opts.publishes[i];
        struct node_publish_ctx *pc = &d->publish_ctx[i];
        *pc = (struct node_publish_ctx){.d = d, .p = p};
        const char *proto = p->proto == NODE_PROTO_UDP ? "udp" : "tcp";
        if (relay_new(pc) != 0) {
            snprintf(err, errlen, "--publish %s:%u: out of memory", proto, p->port);
            return -1;
        }
        for (size_t k = 0; k < 2; k++) {
            if (own[k]->family && handle(pc, own[k]) != 0) {
                snprintf(err, errlen, "--publish %s:%u: the netstack refused the port", proto,
                         p->port);
                return -1;
            }
        }
    }
    return 0;
}

/* Peers' connections are reset with the stack right after this; UDP sessions end here. */
void node_publish_stop(struct node_daemon *d)
{
    ns_stack_unwatch(&d->publish_watch);
    for (size_t i = 0; d->publish_ctx && i < d->opts.n_publishes; i++) {
        struct node_publish_ctx *pc = &d->publish_ctx[i];
        if (pc->tcp)
            proxy_relay_drain(pc->tcp, NULL, NULL);
        if (pc->udp)
            proxy_udp_relay_close(pc->udp, NULL, NULL);
        pc->tcp = NULL;
        pc->udp = NULL;
    }
}
