/*
 * The direct dialer's TCP side: a proxy_stream over a host socket to one address. A name is
 * raced over its addresses (proxy_race_dial, Happy Eyeballs) with this dialer for each address.
 * Accepted connections (proxy_stream_accept) are the same stream, connected from the start.
 * Flow: dial -> connect_one -> on_connect -> report; then the ops; close -> handles closed ->
 * maybe_free -> on_close.
 */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "direct.h"

#define DIRECT_READ_BUF 65536

enum stream_state {
    DS_DIALING,   /* connecting; on_connect still to come */
    DS_FAILED,    /* on_connect reported an error; waiting for close() */
    DS_CONNECTED, /* the ops work */
    DS_CLOSING,   /* close() called; handles are closing */
};
enum handle_state { H_NONE, H_OPEN, H_CLOSING };

struct direct_stream {
    struct proxy_stream base;
    uv_loop_t *loop;
    struct proxy_direct *d; /* NULL for an accepted stream */
    struct proxy_stream_cbs cbs;
    void *ud;
    enum stream_state state;
    enum handle_state tcp_state, timer_state;
    bool shut_sent;
    uv_tcp_t tcp;
    uv_timer_t timer; /* dial timeout, and reports that must not come from inside dial() */
    uv_connect_t connect;
    uv_shutdown_t shut;
    int pending_err;           /* reported from the timer */
    struct base_endpoint dest; /* the address dialled (addr.family 0: none) */
    uint8_t *rbuf;
};

struct direct_write {
    uv_write_t w;
    proxy_write_cb cb;
    void *arg;
};
static_assert(sizeof(struct direct_write) + BASE_MALLOC_SLACK <= PROXY_STREAM_WRITE_OVERHEAD,
              "the pump counts a queued write's request at PROXY_STREAM_WRITE_OVERHEAD");

/* Keepalive on every host connection: a far end that vanished without a FIN or RST (a host
 * that went down) does not hold the relay, and its other side, forever. Set here, not with
 * uv_tcp_keepalive, which sets an interval and count of its own first: two system calls more
 * on every accepted client. */
static void keepalive(uv_tcp_t *tcp)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)tcp, &fd) != 0)
        return;
    int on = 1, idle = PROXY_KEEPALIVE_IDLE_S, intvl = PROXY_KEEPALIVE_INTVL_S,
        cnt = PROXY_KEEPALIVE_CNT;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}
static void on_timer(uv_timer_t *t);

static void maybe_free(struct direct_stream *s)
{
    if (s->state != DS_CLOSING || s->timer_state != H_NONE || s->tcp_state != H_NONE)
        return;
    if (s->cbs.on_close)
        s->cbs.on_close(s->ud);
    free(s->rbuf);
    free(s);
}

static void report(struct direct_stream *s, int err, const struct base_endpoint *local)
{
    if (s->state != DS_DIALING)
        return;
    s->state = err ? DS_FAILED : DS_CONNECTED;
    uv_timer_stop(&s->timer);
    s->cbs.on_connect(s->ud, err, local);
}

static void report_later(struct direct_stream *s, int err)
{
    s->pending_err = err;
    uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct direct_stream *s = h->data;
    s->timer_state = H_NONE;
    maybe_free(s);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct direct_stream *s = h->data;
    s->tcp_state = H_NONE;
    maybe_free(s);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct direct_stream *s = req->data;
    if (status == UV_ECANCELED || s->state != DS_DIALING)
        return;
    if (status == 0) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        struct base_endpoint local;
        bool ok = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) == 0 &&
                  base_endpoint_from_sockaddr(&local, (struct sockaddr *)&ss) == 0;
        uv_tcp_nodelay(&s->tcp, 1);
        keepalive(&s->tcp);
        report(s, 0, ok ? &local : NULL);
        return;
    }
    report(s, proxy_err_from_uv(status), NULL); /* close() closes the socket */
}

/* Failures are reported from the timer, never from dial(). */
static void connect_one(struct direct_stream *s, const struct base_endpoint *ep)
{
    struct sockaddr_storage ss;
    if (!base_endpoint_to_sockaddr(ep, &ss)) {
        report_later(s, -EAFNOSUPPORT);
        return;
    }
    if (uv_tcp_init(s->loop, &s->tcp) != 0) {
        report_later(s, -ENOMEM);
        return;
    }
    s->tcp.data = s;
    s->tcp_state = H_OPEN;
    s->connect.data = s;
    int rc = uv_tcp_connect(&s->connect, &s->tcp, (struct sockaddr *)&ss, on_connect);
    if (rc != 0)
        report_later(s, proxy_err_from_uv(rc));
}

static void on_timer(uv_timer_t *t)
{
    struct direct_stream *s = t->data;
    /* Without a deferred error this is the timeout: the attempt in flight is abandoned and
     * close() closes its handle. */
    report(s, s->pending_err ? s->pending_err : -ETIMEDOUT, NULL);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct direct_stream *s = h->data;
    if (!s->rbuf)
        s->rbuf = malloc(DIRECT_READ_BUF);
    *buf = uv_buf_init((char *)s->rbuf, s->rbuf ? DIRECT_READ_BUF : 0);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct direct_stream *s = h->data;
    if (nread > 0) {
        s->cbs.on_read(s->ud, s->rbuf, (size_t)nread);
    } else if (nread == UV_EOF) {
        uv_read_stop(h);
        s->cbs.on_eof(s->ud);
    } else if (nread < 0) {
        uv_read_stop(h);
        s->cbs.on_error(s->ud, nread == UV_ENOBUFS ? -ENOMEM : proxy_err_from_uv((int)nread));
    }
}

static void write_cb(uv_write_t *w, int status)
{
    struct direct_write *dw = container_of(w, struct direct_write, w);
    dw->cb(dw->arg, status ? proxy_err_from_uv(status) : 0);
    free(dw);
}

static struct direct_stream *from_base(struct proxy_stream *ps)
{
    return container_of(ps, struct direct_stream, base);
}

static int ds_write(struct proxy_stream *ps, const uint8_t *data, size_t len, proxy_write_cb cb,
                    void *arg)
{
    struct direct_stream *s = from_base(ps);
    if (s->state != DS_CONNECTED)
        return -ENOTCONN;
    struct direct_write *dw = malloc(sizeof(*dw));
    if (!dw)
        return -ENOMEM;
    dw->cb = cb;
    dw->arg = arg;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_write(&dw->w, (uv_stream_t *)&s->tcp, &b, 1, write_cb);
    if (rc) {
        free(dw);
        return proxy_err_from_uv(rc);
    }
    return 0;
}

static ssize_t ds_try_write(struct proxy_stream *ps, const uint8_t *data, size_t len)
{
    struct direct_stream *s = from_base(ps);
    if (s->state != DS_CONNECTED)
        return -ENOTCONN;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    return n == UV_EAGAIN ? 0 : n < 0 ? proxy_err_from_uv(n) : n;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* a failed FIN shows up as a read or write error */
}

/* The FIN leaves at once when libuv holds no unwritten bytes: uv_shutdown would wait for the
 * next loop turn, and a client that just read the last bytes would go to sleep before it sees
 * the end (one more wake-up per request-response exchange). Behind queued bytes, libuv sends
 * it once they are written. */
static void ds_shutdown(struct proxy_stream *ps)
{
    struct direct_stream *s = from_base(ps);
    if (s->state != DS_CONNECTED || s->shut_sent)
        return;
    s->shut_sent = true;
    uv_os_fd_t fd;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0 &&
        uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
        shutdown(fd, SHUT_WR); /* a failed FIN shows up as a read or write error */
        return;
    }
    uv_shutdown(&s->shut, (uv_stream_t *)&s->tcp, shutdown_cb);
}

static void ds_read_start(struct proxy_stream *ps)
{
    struct direct_stream *s = from_base(ps);
    if (s->state == DS_CONNECTED)
        uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
}

static void ds_read_stop(struct proxy_stream *ps)
{
    struct direct_stream *s = from_base(ps);
    if (s->state == DS_CONNECTED)
        uv_read_stop((uv_stream_t *)&s->tcp);
}

static void close_common(struct direct_stream *s, bool rst)
{
    if (s->state == DS_CLOSING)
        return;
    bool connected = s->state == DS_CONNECTED;
    s->state = DS_CLOSING;
    s->timer_state = H_CLOSING;
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    if (s->tcp_state == H_OPEN) {
        s->tcp_state = H_CLOSING;
        if (!rst || !connected || uv_tcp_close_reset(&s->tcp, on_tcp_closed) != 0)
            uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
    }
}

static void ds_reset(struct proxy_stream *ps)
{
    close_common(from_base(ps), true);
}

static void ds_close(struct proxy_stream *ps)
{
    close_common(from_base(ps), false);
}

/* The address dialled, out through the host. */
static void ds_route(struct proxy_stream *ps, struct proxy_route *out)
{
    struct direct_stream *s = from_base(ps);
    out->via = PROXY_VIA_DIRECT;
    out->dest = s->dest;
}

static const struct proxy_stream_ops direct_ops = {
    .write = ds_write,
    .try_write = ds_try_write,
    .shutdown = ds_shutdown,
    .read_start = ds_read_start,
    .read_stop = ds_read_stop,
    .reset = ds_reset,
    .close = ds_close,
    .route = ds_route,
};

/* A stream with its timer running (dial timeout, deferred reports); no socket yet. */
static struct direct_stream *stream_new(uv_loop_t *loop, const struct proxy_stream_cbs *cbs,
                                        void *ud)
{
    struct direct_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base.ops = &direct_ops;
    s->loop = loop;
    s->cbs = *cbs;
    s->ud = ud;
    s->state = DS_DIALING;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->timer_state = H_OPEN;
    return s;
}

static unsigned timeout_ms(const struct proxy_direct *d)
{
    return d->connect_timeout_ms ? d->connect_timeout_ms : PROXY_CONNECT_TIMEOUT_MS;
}

static struct proxy_stream *direct_dial(void *ctx, const struct proxy_target *t,
                                        const struct proxy_stream_cbs *cbs, void *ud);

/* A name passes the policy first (it may refuse names), then races over its addresses. */
static struct proxy_stream *race(struct proxy_direct *d, const struct proxy_target *t,
                                 const struct proxy_stream_cbs *cbs, void *ud)
{
    struct proxy_race_config rc = {
        .resolver = d->resolver,
        .per_addr = {.ctx = d, .dial = direct_dial},
        .timeout_ms = timeout_ms(d),
    };
    return proxy_race_dial(d->loop, &rc, t, cbs, ud);
}

static struct proxy_stream *direct_dial(void *ctx, const struct proxy_target *t,
                                        const struct proxy_stream_cbs *cbs, void *ud)
{
    struct proxy_direct *d = ctx;
    int deny = d->allow ? d->allow(d->allow_arg, t) : 0;
    if (!deny && t->proto == PROXY_TCP && t->name[0])
        return race(d, t, cbs, ud);
    struct direct_stream *s = stream_new(d->loop, cbs, ud);
    if (!s)
        return NULL;
    s->d = d;
    if (deny || t->proto != PROXY_TCP) {
        report_later(s, deny ? deny : -EPROTONOSUPPORT);
        return &s->base;
    }
    uv_timer_start(&s->timer, on_timer, timeout_ms(d), 0);
    s->dest = t->ep;
    connect_one(s, &t->ep);
    return &s->base;
}

static void peer_ends(uv_tcp_t *tcp, struct base_endpoint *peer, struct base_endpoint *local)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (peer) {
        memset(peer, 0, sizeof(*peer));
        if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0)
            base_endpoint_from_sockaddr(peer, (struct sockaddr *)&ss);
    }
    len = sizeof(ss);
    if (local) {
        memset(local, 0, sizeof(*local));
        if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) == 0)
            base_endpoint_from_sockaddr(local, (struct sockaddr *)&ss);
    }
}

bool proxy_direct_accept_keepalive(const struct base_endpoint *client)
{
    return !base_addr_is_loopback(&client->addr);
}

struct proxy_stream *proxy_stream_accept(uv_stream_t *server, const struct proxy_stream_cbs *cbs,
                                         void *ud, struct base_endpoint *peer,
                                         struct base_endpoint *local)
{
    struct direct_stream *s = stream_new(server->loop, cbs, ud);
    if (!s)
        return NULL;
    uv_tcp_init(server->loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_state = H_OPEN;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
        /* The caller gets NULL and hears nothing more of this stream. */
        s->cbs.on_close = NULL;
        close_common(s, false);
        return NULL;
    }
    s->state = DS_CONNECTED; /* no on_connect */
    uv_tcp_nodelay(&s->tcp, 1);
    struct base_endpoint from;
    peer_ends(&s->tcp, &from, local);
    if (proxy_direct_accept_keepalive(&from))
        keepalive(&s->tcp);
    if (peer)
        *peer = from;
    return &s->base;
}

void proxy_direct_init(struct proxy_direct *d, uv_loop_t *loop)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    d->connect_timeout_ms = PROXY_CONNECT_TIMEOUT_MS;
    d->resolver = proxy_resolver_getaddrinfo(loop);
}

struct proxy_dialer proxy_direct_dialer(struct proxy_direct *d)
{
    return (struct proxy_dialer){
        .ctx = d, .dial = direct_dial, .dgram_open = proxy_direct_dgram_open};
}
