/*
 * MagicDNS at 100.100.100.100:53 inside the netstack. A UDP flow carries one query: its
 * answer goes back and the flow is closed (on_udp_recv, on_answer). A TCP connection carries
 * a dns_stream session; this is only the glue between the ns_conn and the session. Detach
 * (node_magicdns_unserve) cancels the queries and resets the connections.
 */
#include <stdlib.h>
#include <string.h>

#include "magicdns_internal.h"

/* What one connection may hold of a peer's bytes the session has not answered yet: two
 * maximum-size queries. The netstack's window (MiBs) would let a peer that never reads park
 * far more, so reading is never paused here; a peer that overruns this is reset. */
#define TCP_HELD_MAX (2 * (2 + 65535))
#define TCP_PER_PEER_MAX 8 /* connections from one address, so one peer cannot take them all */
/* No IP fragmentation on the tunnel: a reply must fit one packet of the tunnel MTU. */
#define UDP_MAX_REPLY 1232

/* ---- UDP ---- */

/* A query from a flow: ASKING inside dns_resolver_handle (an answer there frees it at once),
 * then WAITING in m->pending until its answer or a detach. */
enum query_state { QUERY_ASKING, QUERY_WAITING };
struct node_magicdns_query {
    struct base_list link; /* m->pending while WAITING */
    struct node_magicdns *m;
    struct ns_udp *flow;
    struct dns_request *req;
    enum query_state state;
};

/* One flow per query: its answer goes back and the flow is done. */
static void on_answer(void *ctx, const uint8_t *reply, size_t len)
{
    struct node_magicdns_query *q = ctx;
    if (reply && len)
        ns_udp_send(q->flow, reply, len);
    ns_udp_close(q->flow);
    base_list_remove(&q->link);
    free(q);
}

/* The netstack is closing: the query goes with its flow. */
static void on_udp_busy_error(struct ns_udp *u, int err)
{
    struct node_magicdns_query *q = ns_udp_data(u);
    if (err != BASE_ECLOSING || q->state != QUERY_WAITING)
        return;
    dns_request_cancel(q->req);
    ns_udp_close(q->flow);
    base_list_remove(&q->link);
    free(q);
}

/* A flow whose query is being answered: more datagrams on it are dropped (clients retry on
 * a new source port, which is a new flow). */
static void on_udp_recv_busy(struct ns_udp *u, const uint8_t *data, size_t len)
{
    (void)u;
    (void)data;
    (void)len;
}

static const struct ns_udp_cbs udp_busy_cbs = {.on_recv = on_udp_recv_busy,
                                               .on_error = on_udp_busy_error};

static void on_udp_recv(struct ns_udp *u, const uint8_t *data, size_t len)
{
    struct node_magicdns *m = ns_udp_data(u);
    struct node_magicdns_query *q = calloc(1, sizeof(*q));
    if (!q) {
        ns_udp_close(u);
        return;
    }
    *q = (struct node_magicdns_query){.m = m, .flow = u, .state = QUERY_ASKING};
    base_list_init(&q->link);
    ns_udp_set_cbs(u, &udp_busy_cbs, q);
    struct dns_request *req =
        dns_resolver_handle(m->resolver, data, len, UDP_MAX_REPLY, on_answer, q);
    if (!req)
        return; /* answered: q is gone */
    q->req = req;
    q->state = QUERY_WAITING;
    base_list_push_back(&m->pending, &q->link);
}

static void on_udp_error(struct ns_udp *u, int err)
{
    if (err == BASE_ECLOSING)
        ns_udp_close(u);
}

static const struct ns_udp_cbs udp_cbs = {.on_recv = on_udp_recv, .on_error = on_udp_error};

static void on_udp_accept(void *ctx, struct ns_udp *u)
{
    ns_udp_set_cbs(u, &udp_cbs, ctx);
}

/* ---- TCP: the conn carries a dns_stream session ---- */

struct node_magicdns_tcp {
    struct base_list link; /* m->tcp */
    struct node_magicdns *m;
    struct ns_conn *c;
    struct dns_stream *s;
    size_t held; /* fed to the session, not yet consumed */
};

static void tcp_release(struct node_magicdns_tcp *t, bool graceful)
{
    dns_stream_close(t->s, NULL, NULL);
    if (graceful)
        ns_conn_close(t->c);
    else
        ns_conn_reset(t->c);
    base_list_remove(&t->link);
    t->m->n_tcp--;
    free(t);
}

static ssize_t op_write(void *ctx, const uint8_t *data, size_t len)
{
    struct node_magicdns_tcp *t = ctx;
    ssize_t n = ns_conn_write(t->c, data, len);
    return n < 0 ? -EPIPE : n; /* 0: full, on_writable follows */
}

static void op_pause(void *ctx, bool paused)
{
    /* See TCP_HELD_MAX: the session's input is bounded in on_tcp_read instead. */
    (void)ctx;
    (void)paused;
}

static void op_consumed(void *ctx, size_t n)
{
    struct node_magicdns_tcp *t = ctx;
    t->held -= n;
    ns_conn_consumed(t->c, n);
}

static void op_done(void *ctx, bool graceful)
{
    tcp_release(ctx, graceful);
}

static const struct dns_stream_ops stream_ops = {
    .write = op_write, .pause = op_pause, .consumed = op_consumed, .done = op_done};

static void on_tcp_read(struct ns_conn *c, const uint8_t *data, size_t len)
{
    struct node_magicdns_tcp *t = ns_conn_data(c);
    if (!len) {
        dns_stream_eof(t->s);
        return;
    }
    if (t->held + len > TCP_HELD_MAX) {
        tcp_release(t, false);
        return;
    }
    t->held += len;
    dns_stream_feed(t->s, data, len);
}

static void on_tcp_writable(struct ns_conn *c)
{
    struct node_magicdns_tcp *t = ns_conn_data(c);
    dns_stream_writable(t->s);
}

static void on_tcp_error(struct ns_conn *c, int err)
{
    (void)err;
    tcp_release(ns_conn_data(c), true); /* dead already: close only releases it */
}

static const struct ns_conn_cbs tcp_cbs = {
    .on_read = on_tcp_read, .on_writable = on_tcp_writable, .on_error = on_tcp_error};

static unsigned tcp_count_from(const struct node_magicdns *m, const struct base_addr *a)
{
    unsigned n = 0;
    struct base_list *pos;
    base_list_foreach (pos, &m->tcp) {
        const struct node_magicdns_tcp *t = container_of(pos, struct node_magicdns_tcp, link);
        n += base_addr_equal(&ns_conn_remote(t->c)->addr, a);
    }
    return n;
}

static void on_tcp_accept(void *ctx, struct ns_conn *c)
{
    struct node_magicdns *m = ctx;
    struct node_magicdns_tcp *t = NULL;
    if (m->n_tcp < NODE_MAGICDNS_MAX_TCP &&
        tcp_count_from(m, &ns_conn_remote(c)->addr) < TCP_PER_PEER_MAX)
        t = calloc(1, sizeof(*t));
    struct dns_stream_config sc = {.ops = &stream_ops, .ctx = t};
    if (!t || dns_stream_new(m->resolver, &sc, &t->s) < 0) {
        free(t);
        ns_conn_reset(c);
        return;
    }
    t->m = m;
    t->c = c;
    base_list_push_back(&m->tcp, &t->link);
    m->n_tcp++;
    ns_conn_set_send_limit(c, DNS_STREAM_OUT_MAX);
    ns_conn_set_cbs(c, &tcp_cbs, t);
}

/* ---- attach, detach ---- */

int node_magicdns_serve(struct node_magicdns *m, struct ns_stack *stack)
{
    struct base_addr magic;
    base_addr_parse(&magic, NODE_MAGICDNS_ADDR, strlen(NODE_MAGICDNS_ADDR));
    int rc = ns_stack_add_address(stack, &magic);
    if (rc == 0)
        rc = ns_stack_handle_udp(stack, &magic, 53, on_udp_accept, m);
    if (rc == 0)
        rc = ns_stack_handle_tcp(stack, &magic, 53, on_tcp_accept, m);
    return rc;
}

void node_magicdns_unserve(struct node_magicdns *m)
{
    struct base_list *pos;
    while ((pos = base_list_first(&m->pending))) {
        struct node_magicdns_query *q = container_of(pos, struct node_magicdns_query, link);
        base_list_remove(pos);
        dns_request_cancel(q->req);
        ns_udp_close(q->flow);
        free(q);
    }
    while ((pos = base_list_first(&m->tcp)))
        tcp_release(container_of(pos, struct node_magicdns_tcp, link), false);
}
