/*
 * The local listener: DNS over UDP and TCP for host programs. A datagram goes to
 * dns_resolver_handle and its reply back to the sender (udp_recv, udp_answer); a TCP
 * connection carries a dns_stream session (stream.c: RFC 7766 framing, pipelining, idle
 * timeout) and is only the glue between the session and the uv_tcp. Then the lifecycle.
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

#define UDP_MAX_REPLY 65507
/* recvmmsg: libuv cuts the receive buffer into 64 KiB slots, one datagram each. Only the
 * first bytes of each slot are ever touched, so the untouched pages cost no memory. */
#define UDP_MMSG_SLOTS 16
#define UDP_SLOT 65536
#define TCP_READ_BUF 65536

/* One UDP query given to the resolver: ASKING inside dns_resolver_handle (an answer there frees
 * it at once), then WAITING in the listener's list until its answer or the listener's close. */
enum pending_state { PENDING_ASKING, PENDING_WAITING };
struct pending {
    struct base_list link; /* dns_listener.udp_pending while WAITING */
    struct dns_listener *l;
    struct dns_request *req;
    enum pending_state state;
    struct sockaddr_storage from;
};

/* One TCP connection: the socket; the DNS framing lives in its dns_stream session. Listed
 * until its handle is closed (a graceful close first drains libuv's write queue).
 * OPEN (reading, writing) -> SHUTTING (the session is closed; libuv sends the queued replies,
 * then the FIN) -> CLOSING (uv_close; the close callback frees it). */
enum conn_state { CONN_OPEN, CONN_SHUTTING, CONN_CLOSING };
struct tcp_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown;
    struct base_list link; /* dns_listener.conns */
    struct dns_listener *l;
    struct dns_stream *s; /* while OPEN */
    enum conn_state state;
    bool want_writable; /* the session waits for libuv's write queue to shrink */
    unsigned queued;    /* replies (partly) in libuv's queue: dns_listener_write.queued */
};

/* LISTENING -> CLOSING (dns_listener_close, or a failed start) -> freed when its last handle
 * (its two sockets and every connection's) is closed. */
enum listener_state { LISTENER_LISTENING, LISTENER_CLOSING };
struct dns_listener {
    uv_loop_t *loop;
    struct dns_resolver *r;
    struct dns_listener_config cfg;
    enum listener_state state;
    uv_udp_t udp;
    uv_tcp_t tcp;
    unsigned handles;
    struct base_list udp_pending; /* struct pending */
    unsigned udp_inflight;
    struct base_list conns; /* struct tcp_conn */
    unsigned nconns;
    dns_closed_cb on_closed;
    void *closed_arg;
    uint8_t *udp_buf;              /* UDP_MMSG_SLOTS * UDP_SLOT */
    uint8_t tcp_buf[TCP_READ_BUF]; /* one read at a time; the session copies it */
};

static void listener_handle_closed(uv_handle_t *h)
{
    struct dns_listener *l = h->data;
    if (--l->handles)
        return;
    dns_closed_cb cb = l->on_closed;
    void *arg = l->closed_arg;
    free(l->udp_buf);
    free(l);
    if (cb)
        cb(arg);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct dns_listener *l = h->data;
    (void)hint;
    *buf = uv_buf_init((char *)l->udp_buf, UDP_MMSG_SLOTS * UDP_SLOT);
}

struct udp_send {
    uv_udp_send_t req;
    uint8_t data[];
};

static void udp_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req);
}

static void udp_reply(struct dns_listener *l, const struct sockaddr *to, const uint8_t *msg,
                      size_t len)
{
    /* Queued, not uv_udp_try_send: replies given while libuv is delivering a batch of
     * datagrams go out together in one sendmmsg. */
    uv_buf_t b;
    struct udp_send *s = malloc(sizeof(*s) + len);
    if (!s)
        return;
    memcpy(s->data, msg, len);
    b = uv_buf_init((char *)s->data, (unsigned)len);
    if (uv_udp_send(&s->req, &l->udp, &b, 1, to, udp_sent) < 0)
        free(s);
}

static void udp_answer(void *ctx, const uint8_t *reply, size_t len)
{
    struct pending *p = ctx;
    struct dns_listener *l = p->l;
    if (reply && len && l->state == LISTENER_LISTENING)
        udp_reply(l, (const struct sockaddr *)&p->from, reply, len);
    if (p->state == PENDING_WAITING) {
        base_list_remove(&p->link);
        l->udp_inflight--;
    }
    free(p);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    struct dns_listener *l = h->data;
    if (n <= 0 || !from || (flags & UV_UDP_PARTIAL) || l->state != LISTENER_LISTENING)
        return;
    if (l->udp_inflight >= l->cfg.max_udp_inflight)
        return; /* overloaded: the client retries */
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->l = l;
    memcpy(&p->from, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    p->state = PENDING_ASKING;
    struct dns_request *req = dns_resolver_handle(l->r, (const uint8_t *)buf->base, (size_t)n,
                                                  UDP_MAX_REPLY, udp_answer, p);
    if (!req)
        return; /* answered: p is gone */
    p->req = req;
    p->state = PENDING_WAITING;
    base_list_push_back(&l->udp_pending, &p->link);
    l->udp_inflight++;
}

/* ---- TCP: a uv_tcp carrying a dns_stream session ---- */

static void conn_closed(uv_handle_t *h)
{
    struct tcp_conn *c = container_of((uv_tcp_t *)h, struct tcp_conn, tcp);
    struct dns_listener *l = c->l;
    base_list_remove(&c->link);
    l->nconns--;
    free(c);
    listener_handle_closed((uv_handle_t *)&l->tcp);
}

static void conn_handle_close(struct tcp_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_shut(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_handle_close(container_of(req, struct tcp_conn, shutdown));
}

/* Ends the session; graceful lets queued replies reach the client before the FIN. */
static void conn_close(struct tcp_conn *c, bool graceful)
{
    if (c->state != CONN_OPEN)
        return;
    dns_stream_close(c->s, NULL, NULL);
    c->s = NULL;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* Graceful only when libuv holds no reply: one that is not reading would keep the
     * connection (and its slot) forever. */
    if (graceful && c->tcp.write_queue_size == 0 &&
        uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, conn_shut) == 0) {
        c->state = CONN_SHUTTING;
        return;
    }
    conn_handle_close(c);
}

/* What the replies libuv holds for the kernel cost: their bytes and, for each, its request and
 * malloc's slack. Counting bytes alone, a client that pipelines tiny queries and never reads
 * would make it hold 268 bytes of heap for each 52-byte reply counted (unit.dns_lifecycle). */
static size_t queue_cost(const struct tcp_conn *c)
{
    return c->tcp.write_queue_size + c->queued * DNS_LISTENER_WRITE_OVERHEAD;
}

static void tcp_written(uv_write_t *req, int status)
{
    struct tcp_conn *c = req->handle->data;
    struct dns_listener_write *w = container_of(req, struct dns_listener_write, req);
    c->queued -= w->queued;
    free(w);
    if (status < 0 && c->state == CONN_SHUTTING) /* broken while the FIN waited */
        conn_handle_close(c);
    if (status < 0 || c->state != CONN_OPEN) {
        conn_close(c, false);
        return;
    }
    if (c->want_writable && queue_cost(c) < DNS_LISTENER_QUEUE_MAX) {
        c->want_writable = false;
        dns_stream_writable(c->s);
    }
}

static ssize_t op_write(void *ctx, const uint8_t *data, size_t len)
{
    struct tcp_conn *c = ctx;
    if (queue_cost(c) >= DNS_LISTENER_QUEUE_MAX) {
        c->want_writable = true; /* the client is not reading: wait for it */
        return 0;
    }
    struct dns_listener_write *w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    size_t before = c->tcp.write_queue_size;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tcp_written);
    if (rc < 0) {
        free(w);
        return rc;
    }
    /* The kernel took it at once, or (part of) it waits in libuv's queue, which then grew. */
    w->queued = c->tcp.write_queue_size > before;
    c->queued += w->queued;
    return (ssize_t)len;
}

static void tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct tcp_conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init((char *)c->l->tcp_buf, sizeof(c->l->tcp_buf));
}

static void tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct tcp_conn *c = st->data;
    if (c->state != CONN_OPEN)
        return;
    if (n == UV_EOF)
        dns_stream_eof(c->s);
    else if (n < 0)
        conn_close(c, false);
    else if (n > 0)
        dns_stream_feed(c->s, (const uint8_t *)buf->base, (size_t)n);
}

static void op_pause(void *ctx, bool paused)
{
    struct tcp_conn *c = ctx;
    if (paused)
        uv_read_stop((uv_stream_t *)&c->tcp);
    else
        uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_read);
}

static void op_done(void *ctx, bool graceful)
{
    conn_close(ctx, graceful);
}

static const struct dns_stream_ops tcp_ops = {
    .write = op_write, .pause = op_pause, .consumed = NULL, .done = op_done};

static void tcp_accept(uv_stream_t *server, int status)
{
    struct dns_listener *l = server->data;
    if (status < 0 || l->state != LISTENER_LISTENING)
        return;
    struct tcp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->l = l;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    l->handles++; /* a connection keeps the listener's memory alive */
    base_list_push_back(&l->conns, &c->link);
    l->nconns++;
    struct dns_stream_config sc = {.ops = &tcp_ops, .ctx = c, .idle_ms = l->cfg.tcp_idle_ms};
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || l->nconns > l->cfg.max_tcp_conns ||
        dns_stream_new(l->r, &sc, &c->s) < 0) {
        conn_handle_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_read);
}

/* ---- lifecycle ---- */

/* UDP, then TCP on the port UDP got (port 0: both answer on one port). */
static int bind_both(struct dns_listener *l)
{
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(&l->cfg.addr, &ss);
    int rc = uv_udp_bind(&l->udp, (struct sockaddr *)&ss, 0);
    if (rc < 0)
        return rc;
    int sl = sizeof(ss);
    if ((rc = uv_udp_getsockname(&l->udp, (struct sockaddr *)&ss, &sl)) < 0)
        return rc;
    if ((rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) < 0)
        return rc;
    if ((rc = uv_listen((uv_stream_t *)&l->tcp, 128, tcp_accept)) < 0)
        return rc;
    return uv_udp_recv_start(&l->udp, udp_alloc, udp_recv);
}

static void apply_defaults(struct dns_listener_config *c)
{
    if (!c->tcp_idle_ms)
        c->tcp_idle_ms = 10000;
    if (!c->max_tcp_conns)
        c->max_tcp_conns = 64;
    if (!c->max_udp_inflight)
        c->max_udp_inflight = 1024;
}

static int listener_try(uv_loop_t *loop, const struct dns_listener_config *cfg,
                        struct dns_listener **out)
{
    struct dns_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    l->r = cfg->resolver;
    l->cfg = *cfg;
    apply_defaults(&l->cfg);
    base_list_init(&l->udp_pending);
    base_list_init(&l->conns);
    l->udp_buf = malloc(UDP_MMSG_SLOTS * UDP_SLOT);
    if (!l->udp_buf) {
        free(l);
        return -ENOMEM;
    }
    uv_udp_init_ex(loop, &l->udp, (unsigned)cfg->addr.addr.family | UV_UDP_RECVMMSG);
    uv_tcp_init(loop, &l->tcp);
    l->udp.data = l->tcp.data = l;
    l->handles = 2;
    int rc = bind_both(l);
    if (rc < 0) {
        dns_listener_close(l, NULL, NULL);
        return rc;
    }
    *out = l;
    return 0;
}

int dns_listener_new(uv_loop_t *loop, const struct dns_listener_config *cfg,
                     struct dns_listener **out)
{
    /* Port 0: the port UDP got may be taken for TCP (by an outgoing connection): take another. */
    int tries = cfg->addr.port == 0 ? 16 : 1, rc;
    do
        rc = listener_try(loop, cfg, out);
    while (rc == -EADDRINUSE && --tries > 0);
    return rc;
}

uint16_t dns_listener_port(const struct dns_listener *l)
{
    struct sockaddr_storage ss;
    struct base_endpoint e;
    int sl = sizeof(ss);
    if (uv_udp_getsockname(&l->udp, (struct sockaddr *)&ss, &sl) < 0 ||
        base_endpoint_from_sockaddr(&e, (struct sockaddr *)&ss) < 0)
        return 0;
    return e.port;
}

void dns_listener_close(struct dns_listener *l, dns_closed_cb on_closed, void *arg)
{
    if (!l || l->state == LISTENER_CLOSING)
        return;
    l->state = LISTENER_CLOSING;
    l->on_closed = on_closed;
    l->closed_arg = arg;
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &l->udp_pending) {
        struct pending *p = container_of(pos, struct pending, link);
        base_list_remove(pos);
        dns_request_cancel(p->req);
        free(p);
    }
    base_list_foreach (pos, &l->conns) {
        struct tcp_conn *c = container_of(pos, struct tcp_conn, link);
        conn_close(c, false);
        conn_handle_close(c); /* a graceful close still draining */
    }
    uv_close((uv_handle_t *)&l->udp, listener_handle_closed);
    uv_close((uv_handle_t *)&l->tcp, listener_handle_closed);
}
