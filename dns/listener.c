/*
 * The local listener: DNS over UDP and TCP for host programs. TCP connections carry a
 * dns_stream session (stream.c: RFC 7766 framing, pipelining, idle timeout).
 */
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "dns_internal.h"

#define UDP_MAX_REPLY 65507
/* recvmmsg: libuv cuts the receive buffer into 64 KiB slots, one datagram each. Only the
 * first bytes of each slot are ever touched, so the untouched pages cost no memory. */
#define UDP_MMSG_SLOTS 16
#define UDP_SLOT 65536
/* libuv's queue of replies not yet in the kernel: beyond this the session waits. */
#define TCP_WRITE_QUEUE_MAX (64 * 1024)
#define TCP_READ_BUF 65536

struct dns_listener;
struct tcp_conn;

/* One query waiting for the resolver. */
struct pending {
    struct pending *prev, *next;
    struct dns_listener *l;
    struct dns_request *req;
    int sync;
    struct sockaddr_storage from;
};

/* One TCP connection: the socket; the DNS framing lives in its dns_stream session. Listed
 * until its handle is closed (a graceful close first drains libuv's write queue). */
struct tcp_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown;
    struct tcp_conn *prev, *next;
    struct dns_listener *l;
    struct dns_stream *s; /* NULL once closing */
    int want_writable;
};

struct dns_listener {
    uv_loop_t *loop;
    struct dns_resolver *r;
    struct dns_listener_options o;
    uv_udp_t udp;
    uv_tcp_t tcp;
    int handles;
    int closing;
    struct pending *udp_pending;
    unsigned udp_inflight;
    struct tcp_conn *conns;
    unsigned nconns;
    uint8_t *udp_buf;              /* UDP_MMSG_SLOTS * UDP_SLOT */
    uint8_t tcp_buf[TCP_READ_BUF]; /* one read at a time; the session copies it */
};

static void list_add(struct pending **head, struct pending *p)
{
    p->prev = NULL;
    p->next = *head;
    if (*head)
        (*head)->prev = p;
    *head = p;
}

static void list_del(struct pending **head, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void listener_handle_closed(uv_handle_t *h)
{
    struct dns_listener *l = h->data;
    if (--l->handles == 0) {
        free(l->udp_buf);
        free(l);
    }
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
    if (reply && len && !l->closing)
        udp_reply(l, (const struct sockaddr *)&p->from, reply, len);
    if (p->sync) {
        p->sync = 2; /* answered inside dns_resolver_handle */
        return;
    }
    list_del(&l->udp_pending, p);
    l->udp_inflight--;
    free(p);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    struct dns_listener *l = h->data;
    if (n <= 0 || !from || (flags & UV_UDP_PARTIAL) || l->closing)
        return;
    if (l->udp_inflight >= l->o.max_udp_inflight)
        return; /* overloaded: the client retries */
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->l = l;
    memcpy(&p->from, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    p->sync = 1;
    p->req = dns_resolver_handle(l->r, (const uint8_t *)buf->base, (size_t)n, UDP_MAX_REPLY,
                                 udp_answer, p);
    if (p->sync == 2) {
        free(p);
        return;
    }
    p->sync = 0;
    list_add(&l->udp_pending, p);
    l->udp_inflight++;
}

/* ---- TCP: a uv_tcp carrying a dns_stream session ---- */

static void conn_closed(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;
    struct dns_listener *l = c->l;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->nconns--;
    free(c);
    listener_handle_closed((uv_handle_t *)&l->tcp);
}

static void conn_shut(uv_shutdown_t *req, int status)
{
    struct tcp_conn *c = req->handle->data;
    (void)status;
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* Ends the session; graceful lets queued replies reach the client before the FIN. */
static void conn_close(struct tcp_conn *c, int graceful)
{
    if (!c->s)
        return;
    dns_stream_free(c->s);
    c->s = NULL;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* Graceful only when libuv holds no reply: one that is not reading would keep the
     * connection (and its slot) forever. */
    if (graceful && c->tcp.write_queue_size == 0 &&
        uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, conn_shut) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void tcp_written(uv_write_t *w, int status)
{
    struct tcp_conn *c = w->handle->data;
    free(w);
    if (status < 0 && !c->s) { /* broken while a graceful close waited for it */
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    if (status < 0 || !c->s) {
        if (c->s)
            conn_close(c, 0);
        return;
    }
    if (c->want_writable && c->tcp.write_queue_size < TCP_WRITE_QUEUE_MAX) {
        c->want_writable = 0;
        dns_stream_writable(c->s);
    }
}

static ssize_t op_write(void *ctx, const uint8_t *data, size_t len)
{
    struct tcp_conn *c = ctx;
    if (c->tcp.write_queue_size >= TCP_WRITE_QUEUE_MAX) {
        c->want_writable = 1; /* the client is not reading: wait for it */
        return 0;
    }
    uv_write_t *w = malloc(sizeof(*w) + len);
    if (!w)
        return -1;
    memcpy(w + 1, data, len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, tcp_written) < 0) {
        free(w);
        return -1;
    }
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
    if (!c->s)
        return;
    if (n == UV_EOF)
        dns_stream_eof(c->s);
    else if (n < 0)
        conn_close(c, 0);
    else if (n > 0)
        dns_stream_feed(c->s, (const uint8_t *)buf->base, (size_t)n);
}

static void op_pause(void *ctx, int paused)
{
    struct tcp_conn *c = ctx;
    if (paused)
        uv_read_stop((uv_stream_t *)&c->tcp);
    else
        uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_read);
}

static void op_close(void *ctx, int graceful)
{
    conn_close(ctx, graceful);
}

static const struct dns_stream_ops tcp_ops = {
    .write = op_write, .pause = op_pause, .consumed = NULL, .close = op_close};

static void tcp_accept(uv_stream_t *server, int status)
{
    struct dns_listener *l = server->data;
    if (status < 0 || l->closing)
        return;
    struct tcp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->l = l;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    l->handles++; /* a connection keeps the listener's memory alive */
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || l->nconns > l->o.max_tcp_conns ||
        !(c->s = dns_stream_new(l->r, l->o.tcp_idle_ms, &tcp_ops, c))) {
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_read);
}

/* ---- lifecycle ---- */

static int listener_try(uv_loop_t *loop, struct dns_resolver *r, const struct sockaddr *addr,
                        const struct dns_listener_options *opts, struct dns_listener **out)
{
    struct dns_listener *l = calloc(1, sizeof(*l));
    int rc;
    if (!l)
        return UV_ENOMEM;
    l->loop = loop;
    l->r = r;
    if (opts)
        l->o = *opts;
    if (!l->o.tcp_idle_ms)
        l->o.tcp_idle_ms = 10000;
    if (!l->o.max_tcp_conns)
        l->o.max_tcp_conns = 64;
    if (!l->o.max_udp_inflight)
        l->o.max_udp_inflight = 1024;
    l->udp_buf = malloc(UDP_MMSG_SLOTS * UDP_SLOT);
    if (!l->udp_buf) {
        free(l);
        return UV_ENOMEM;
    }
    uv_udp_init_ex(loop, &l->udp, addr->sa_family | UV_UDP_RECVMMSG);
    uv_tcp_init(loop, &l->tcp);
    l->udp.data = l->tcp.data = l;
    l->handles = 2;
    rc = uv_udp_bind(&l->udp, addr, 0);
    if (rc == 0) {
        struct sockaddr_storage ss = {0};
        int sl = sizeof(ss);
        /* Port 0: TCP takes the port UDP got, so both answer on one port. */
        memcpy(&ss, addr,
               addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in));
        if (uv_udp_getsockname(&l->udp, (struct sockaddr *)&ss, &sl) == 0)
            rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
        else
            rc = uv_tcp_bind(&l->tcp, addr, 0);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 128, tcp_accept);
    if (rc == 0)
        rc = uv_udp_recv_start(&l->udp, udp_alloc, udp_recv);
    if (rc < 0) {
        l->closing = 1;
        uv_close((uv_handle_t *)&l->udp, listener_handle_closed);
        uv_close((uv_handle_t *)&l->tcp, listener_handle_closed);
        return rc;
    }
    *out = l;
    return 0;
}

int dns_listener_start(uv_loop_t *loop, struct dns_resolver *r, const struct sockaddr *addr,
                       const struct dns_listener_options *opts, struct dns_listener **out)
{
    /* Port 0: the port UDP got may be taken for TCP (an outgoing connection's): take another. */
    struct base_endpoint ep;
    int tries = base_endpoint_from_sockaddr(&ep, addr) == 0 && ep.port == 0 ? 16 : 1, rc;
    do
        rc = listener_try(loop, r, addr, opts, out);
    while (rc == UV_EADDRINUSE && --tries > 0);
    return rc;
}

int dns_listener_port(const struct dns_listener *l)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_udp_getsockname(&l->udp, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void dns_listener_close(struct dns_listener *l)
{
    if (!l || l->closing)
        return;
    l->closing = 1;
    while (l->udp_pending) {
        struct pending *p = l->udp_pending;
        list_del(&l->udp_pending, p);
        dns_request_cancel(p->req);
        free(p);
    }
    for (struct tcp_conn *c = l->conns; c; c = c->next) {
        conn_close(c, 0);
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) /* a graceful close still draining */
            uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
    uv_close((uv_handle_t *)&l->udp, listener_handle_closed);
    uv_close((uv_handle_t *)&l->tcp, listener_handle_closed);
}
