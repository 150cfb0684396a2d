/*
 * The resolver's sockets for upstreams inside the mesh, over the node's netstack: SOCK_DGRAM
 * on an ns_udp flow (datagrams queued until c-ares reads them), SOCK_STREAM on an ns_conn
 * (a byte buffer; the receive window reopens as c-ares reads). "Inside the mesh" is whatever
 * some peer's allowed IPs cover, as the daemon's router says.
 * First the netstack's callbacks (the only place readiness is reported from, through
 * dns_transport_ready), then the struct dns_transport calls, then the lifecycle.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "magicdns_internal.h"

#define DGRAM_QUEUE_MAX 32

struct dgram {
    struct base_list link; /* mesh_sock.dgrams */
    size_t len;
    uint8_t data[];
};

struct mesh_sock {
    struct node_dns_mesh *t;
    struct dns_transport_conn *conn;
    int type;
    struct ns_udp *u;
    struct ns_conn *c;
    int err;                 /* negative errno to report on the next recv/send, 0 = none */
    bool connected;          /* SOCK_STREAM: handshake done */
    bool eof;                /* SOCK_STREAM: the server's FIN */
    struct base_list dgrams; /* SOCK_DGRAM: received, not read yet */
    size_t nq;
    uint8_t *buf; /* SOCK_STREAM bytes not read yet */
    size_t len, cap;
};

struct node_dns_mesh {
    struct ns_stack *stack;
    node_dns_covers_fn covers;
    void *covers_ctx;
    struct mesh_sock **socks; /* index = handle */
    size_t nsocks;
};

/* A netstack error as a socket would report it to c-ares: an errno value. */
static int sock_err(int err)
{
    switch (err) {
    case -ENETUNREACH:
        return -EHOSTUNREACH;
    case -EINVAL:
        return -EAFNOSUPPORT;
    case BASE_ELIMIT:
        return -ENOBUFS;
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ETIMEDOUT:
    case -ENOMEM:
    case -EADDRINUSE:
        return err;
    default: /* reset, the stack closing (BASE_ECLOSING), ... */
        return -ECONNRESET;
    }
}

static struct mesh_sock *sock_get(struct node_dns_mesh *t, int h)
{
    if (h < 0 || (size_t)h >= t->nsocks)
        return NULL;
    return t->socks[h];
}

/* ---- netstack callbacks: the only place readiness is reported from ---- */

static void udp_recv(struct ns_udp *u, const uint8_t *data, size_t len)
{
    struct mesh_sock *s = ns_udp_data(u);
    if (s->nq >= DGRAM_QUEUE_MAX)
        return; /* c-ares is not reading: like a full socket buffer */
    struct dgram *d = malloc(sizeof(*d) + len);
    if (!d)
        return;
    d->len = len;
    memcpy(d->data, data, len);
    base_list_push_back(&s->dgrams, &d->link);
    s->nq++;
    dns_transport_ready(s->conn, true, false); /* may close s */
}

static void udp_error(struct ns_udp *u, int err)
{
    struct mesh_sock *s = ns_udp_data(u);
    s->err = sock_err(err); /* ICMP unreachable: c-ares moves on to the next server */
    dns_transport_ready(s->conn, true, false);
}

static const struct ns_udp_cbs udp_cbs = {.on_recv = udp_recv, .on_error = udp_error};

static void tcp_connect(struct ns_conn *c, int status)
{
    struct mesh_sock *s = ns_conn_data(c);
    if (status != 0) {
        s->err = sock_err(status);
        dns_transport_ready(s->conn, true, false);
        return;
    }
    s->connected = true;
    dns_transport_ready(s->conn, false, true);
}

static void tcp_read(struct ns_conn *c, const uint8_t *data, size_t len)
{
    struct mesh_sock *s = ns_conn_data(c);
    if (!len) {
        s->eof = true;
    } else if (s->len + len > s->cap) {
        size_t n = s->cap ? s->cap : 4096;
        while (n < s->len + len)
            n *= 2;
        uint8_t *b = realloc(s->buf, n);
        if (!b) {
            s->err = -ENOMEM;
        } else {
            s->buf = b;
            s->cap = n;
        }
    }
    if (len && !s->err) {
        memcpy(s->buf + s->len, data, len);
        s->len += len;
    }
    dns_transport_ready(s->conn, true, false);
}

static void tcp_writable(struct ns_conn *c)
{
    struct mesh_sock *s = ns_conn_data(c);
    dns_transport_ready(s->conn, false, true);
}

static void tcp_error(struct ns_conn *c, int err)
{
    struct mesh_sock *s = ns_conn_data(c);
    s->err = sock_err(err);
    dns_transport_ready(s->conn, true, true);
}

static const struct ns_conn_cbs tcp_cbs = {.on_connect = tcp_connect,
                                           .on_read = tcp_read,
                                           .on_writable = tcp_writable,
                                           .on_error = tcp_error};

/* ---- struct dns_transport ---- */

static bool t_covers(void *ctx, const struct base_addr *server)
{
    struct node_dns_mesh *t = ctx;
    struct base_endpoint e = {.addr = *server};
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(&e, &ss);
    return t->covers && t->covers(t->covers_ctx, (struct sockaddr *)&ss);
}

static int slot_new(struct node_dns_mesh *t)
{
    size_t i;
    for (i = 0; i < t->nsocks && t->socks[i]; i++)
        ;
    if (i < t->nsocks)
        return (int)i;
    size_t n = t->nsocks ? t->nsocks * 2 : 8;
    struct mesh_sock **s = realloc(t->socks, n * sizeof(*s));
    if (!s)
        return -1;
    memset(s + t->nsocks, 0, (n - t->nsocks) * sizeof(*s));
    t->socks = s;
    t->nsocks = n;
    return (int)i;
}

static int t_open(void *ctx, int type, const struct base_endpoint *server,
                  struct dns_transport_conn *conn)
{
    struct node_dns_mesh *t = ctx;
    if (!t->stack) /* between netstacks: a mesh resolver must not be asked in the clear */
        return -ENETUNREACH;
    if (type != SOCK_DGRAM && type != SOCK_STREAM)
        return -EPROTONOSUPPORT;
    int h = slot_new(t);
    struct mesh_sock *s = h < 0 ? NULL : calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    *s = (struct mesh_sock){.t = t, .conn = conn, .type = type};
    base_list_init(&s->dgrams);
    int err;
    if (type == SOCK_DGRAM)
        err = ns_udp_open(t->stack, server, &udp_cbs, s, &s->u);
    else
        err = ns_conn_connect(t->stack, server, &tcp_cbs, s, &s->c);
    if (err != 0) {
        free(s);
        return sock_err(err);
    }
    t->socks[h] = s;
    return h;
}

static ssize_t udp_send(struct mesh_sock *s, const void *msg, size_t len)
{
    int rc = ns_udp_send(s->u, msg, len);
    return rc != 0 ? sock_err(rc) : (ssize_t)len;
}

/* One datagram from the pieces c-ares hands over (usually one). */
static ssize_t dgram_send(struct mesh_sock *s, const struct iovec *iov, int iovcnt)
{
    if (iovcnt == 1)
        return udp_send(s, iov[0].iov_base, iov[0].iov_len);
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    uint8_t *msg = malloc(len ? len : 1);
    if (!msg)
        return -ENOMEM;
    for (size_t i = 0, off = 0; i < (size_t)iovcnt; off += iov[i].iov_len, i++)
        memcpy(msg + off, iov[i].iov_base, iov[i].iov_len);
    ssize_t n = udp_send(s, msg, len);
    free(msg);
    return n;
}

static ssize_t t_send(void *ctx, int h, const struct iovec *iov, int iovcnt)
{
    struct mesh_sock *s = sock_get(ctx, h);
    if (!s || s->err)
        return s ? s->err : -EBADF;
    if (s->type == SOCK_DGRAM)
        return dgram_send(s, iov, iovcnt);
    size_t total = 0;
    for (int i = 0; s->connected && i < iovcnt; i++) {
        ssize_t n = ns_conn_write(s->c, iov[i].iov_base, iov[i].iov_len);
        if (n < 0)
            return sock_err((int)n);
        total += (size_t)n;
        if ((size_t)n < iov[i].iov_len)
            break; /* full: on_writable follows */
    }
    return total ? (ssize_t)total : -EAGAIN;
}

static ssize_t dgram_recv(struct mesh_sock *s, void *buf, size_t len)
{
    struct dgram *d = container_of(base_list_first(&s->dgrams), struct dgram, link);
    size_t n = d->len < len ? d->len : len;
    memcpy(buf, d->data, n);
    base_list_remove(&d->link);
    s->nq--;
    free(d);
    return (ssize_t)n;
}

static ssize_t stream_recv(struct mesh_sock *s, void *buf, size_t len)
{
    size_t n = s->len < len ? s->len : len;
    memcpy(buf, s->buf, n);
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
    ns_conn_consumed(s->c, n);
    return (ssize_t)n;
}

static ssize_t t_recv(void *ctx, int h, void *buf, size_t len)
{
    struct mesh_sock *s = sock_get(ctx, h);
    if (!s)
        return -EBADF;
    if (s->type == SOCK_DGRAM && !base_list_empty(&s->dgrams))
        return dgram_recv(s, buf, len);
    if (s->type == SOCK_STREAM && s->len)
        return stream_recv(s, buf, len);
    if (s->type == SOCK_STREAM && s->eof)
        return 0;
    if (s->err) {
        int err = s->err;
        if (s->type == SOCK_DGRAM)
            s->err = 0; /* an ICMP error is reported once; the flow stays usable */
        return err;
    }
    return -EAGAIN;
}

static void sock_release(struct mesh_sock *s)
{
    if (s->u)
        ns_udp_close(s->u);
    if (s->c)
        ns_conn_close(s->c);
    struct base_list *pos;
    while ((pos = base_list_first(&s->dgrams))) {
        base_list_remove(pos);
        free(container_of(pos, struct dgram, link));
    }
    free(s->buf);
    free(s);
}

static void t_close(void *ctx, int h)
{
    struct node_dns_mesh *t = ctx;
    struct mesh_sock *s = sock_get(t, h);
    if (!s)
        return;
    t->socks[h] = NULL;
    sock_release(s);
}

/* ---- lifecycle ---- */

struct node_dns_mesh *node_dns_mesh_new(struct ns_stack *stack, node_dns_covers_fn covers,
                                        void *covers_ctx)
{
    struct node_dns_mesh *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->stack = stack;
    t->covers = covers;
    t->covers_ctx = covers_ctx;
    return t;
}

struct dns_transport node_dns_mesh_transport(struct node_dns_mesh *t)
{
    return (struct dns_transport){.ctx = t,
                                  .covers = t_covers,
                                  .open = t_open,
                                  .send = t_send,
                                  .recv = t_recv,
                                  .close = t_close};
}

void node_dns_mesh_free(struct node_dns_mesh *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nsocks; i++)
        if (t->socks[i])
            sock_release(t->socks[i]);
    free(t->socks);
    free(t);
}
