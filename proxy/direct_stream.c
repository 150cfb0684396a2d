/*
 * The direct dialer's TCP side: a proxy_stream over a host socket. Names go through the
 * resolver hook; the addresses it returns are tried in order within one connect timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define DIRECT_MAX_ADDRS 8
#define DIRECT_READ_BUF 65536

enum tcp_state { DS_NONE, DS_OPEN, DS_CLOSING };

struct direct_stream {
    struct proxy_stream base;
    struct proxy_direct *d;
    struct proxy_stream_cbs cbs;
    void *ud;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_shutdown_t shut;
    struct proxy_resolve_req *rr;
    struct sockaddr_storage addrs[DIRECT_MAX_ADDRS];
    size_t naddr, next;
    uint16_t port; /* host order, for resolved addresses */
    enum tcp_state tcp_state;
    int timer_open;
    int reported; /* on_connect delivered (or no longer wanted) */
    int connected;
    int closing;
    int shut_sent;
    int pending_err; /* delivered from the timer so that dial() never calls back itself */
    int last_err;
    uint8_t *rbuf;
};

struct direct_write {
    uv_write_t w;
    proxy_write_cb cb;
    void *arg;
};

static void try_next(struct direct_stream *s);
static void on_timer(uv_timer_t *t);

static void maybe_free(struct direct_stream *s)
{
    if (!s->closing || s->timer_open || s->tcp_state != DS_NONE)
        return;
    s->cbs.on_close(s->ud);
    free(s->rbuf);
    free(s);
}

static void report(struct direct_stream *s, int err, const struct sockaddr *local)
{
    if (s->reported || s->closing)
        return;
    s->reported = 1;
    uv_timer_stop(&s->timer);
    s->cbs.on_connect(s->ud, err, local);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct direct_stream *s = h->data;
    s->timer_open = 0;
    maybe_free(s);
}

static void on_attempt_closed(uv_handle_t *h)
{
    struct direct_stream *s = h->data;
    s->tcp_state = DS_NONE;
    if (s->closing) {
        maybe_free(s);
        return;
    }
    try_next(s);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct direct_stream *s = req->data;
    if (status == UV_ECANCELED || s->closing || s->reported)
        return;
    if (status == 0) {
        s->connected = 1;
        struct sockaddr_storage local;
        int len = sizeof(local);
        int ok = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&local, &len) == 0;
        uv_tcp_nodelay(&s->tcp, 1);
        report(s, 0, ok ? (struct sockaddr *)&local : NULL);
        return;
    }
    s->last_err = proxy_err_from_uv(status);
    s->tcp_state = DS_CLOSING;
    uv_close((uv_handle_t *)&s->tcp, on_attempt_closed);
}

static void try_next(struct direct_stream *s)
{
    while (s->next < s->naddr) {
        struct sockaddr *sa = (struct sockaddr *)&s->addrs[s->next++];
        if (uv_tcp_init(s->d->loop, &s->tcp) != 0) {
            s->pending_err = PROXY_E_OTHER; /* reported from the timer, never from dial() */
            uv_timer_start(&s->timer, on_timer, 0, 0);
            return;
        }
        s->tcp.data = s;
        s->tcp_state = DS_OPEN;
        s->connect.data = s;
        int rc = uv_tcp_connect(&s->connect, &s->tcp, sa, on_connect);
        if (rc == 0)
            return;
        s->last_err = proxy_err_from_uv(rc);
        s->tcp_state = DS_CLOSING;
        uv_close((uv_handle_t *)&s->tcp, on_attempt_closed);
        return;
    }
    report(s, s->last_err ? s->last_err : PROXY_E_OTHER, NULL);
}

static void on_timer(uv_timer_t *t)
{
    struct direct_stream *s = t->data;
    if (s->pending_err) {
        report(s, s->pending_err, NULL);
        return;
    }
    /* The attempt in flight is abandoned; close() will close its handle. */
    report(s, PROXY_E_TIMEOUT, NULL);
}

static void on_resolved(void *arg, int err, const struct sockaddr_storage *addrs, size_t n)
{
    struct direct_stream *s = arg;
    s->rr = NULL;
    if (err) {
        report(s, err, NULL);
        return;
    }
    uint16_t port = htons(s->port);
    s->naddr = 0;
    for (size_t i = 0; i < n && s->naddr < DIRECT_MAX_ADDRS; i++) {
        s->addrs[s->naddr] = addrs[i];
        if (addrs[i].ss_family == AF_INET)
            ((struct sockaddr_in *)&s->addrs[s->naddr])->sin_port = port;
        else
            ((struct sockaddr_in6 *)&s->addrs[s->naddr])->sin6_port = port;
        s->naddr++;
    }
    try_next(s);
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
        s->cbs.on_error(s->ud, nread == UV_ENOBUFS ? PROXY_E_OTHER : proxy_err_from_uv((int)nread));
    }
}

static void write_cb(uv_write_t *w, int status)
{
    struct direct_write *dw = (struct direct_write *)w;
    dw->cb(dw->arg, status ? proxy_err_from_uv(status) : 0);
    free(dw);
}

static int ds_write(struct proxy_stream *ps, const uint8_t *data, size_t len, proxy_write_cb cb,
                    void *arg)
{
    struct direct_stream *s = (struct direct_stream *)ps;
    if (!s->connected || s->closing)
        return PROXY_E_OTHER;
    struct direct_write *dw = malloc(sizeof(*dw));
    if (!dw)
        return PROXY_E_OTHER;
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

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* a failed FIN shows up as a read or write error */
}

static void ds_shutdown(struct proxy_stream *ps)
{
    struct direct_stream *s = (struct direct_stream *)ps;
    if (!s->connected || s->closing || s->shut_sent)
        return;
    s->shut_sent = 1;
    uv_shutdown(&s->shut, (uv_stream_t *)&s->tcp, shutdown_cb);
}

static void ds_read_start(struct proxy_stream *ps)
{
    struct direct_stream *s = (struct direct_stream *)ps;
    if (s->connected && !s->closing)
        uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
}

static void ds_read_stop(struct proxy_stream *ps)
{
    struct direct_stream *s = (struct direct_stream *)ps;
    if (s->connected && !s->closing)
        uv_read_stop((uv_stream_t *)&s->tcp);
}

static void close_common(struct direct_stream *s, int rst)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (s->rr) {
        s->d->resolver.cancel(s->d->resolver.ctx, s->rr);
        s->rr = NULL;
    }
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    if (s->tcp_state == DS_OPEN) {
        s->tcp_state = DS_CLOSING;
        if (!rst || !s->connected || uv_tcp_close_reset(&s->tcp, on_attempt_closed) != 0)
            uv_close((uv_handle_t *)&s->tcp, on_attempt_closed);
    }
}

static void ds_reset(struct proxy_stream *ps)
{
    close_common((struct direct_stream *)ps, 1);
}

static void ds_close(struct proxy_stream *ps)
{
    close_common((struct direct_stream *)ps, 0);
}

static const struct proxy_stream_ops direct_ops = {
    .write = ds_write,
    .shutdown = ds_shutdown,
    .read_start = ds_read_start,
    .read_stop = ds_read_stop,
    .reset = ds_reset,
    .close = ds_close,
};

/* A stream with its timer running (dial timeout, deferred reports); no socket yet. */
static struct direct_stream *stream_new(struct proxy_direct *d, const struct proxy_stream_cbs *cbs,
                                        void *ud)
{
    struct direct_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base.ops = &direct_ops;
    s->d = d;
    s->cbs = *cbs;
    s->ud = ud;
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    s->timer_open = 1;
    return s;
}

static struct proxy_stream *direct_dial(void *ctx, const struct proxy_target *t,
                                        const struct proxy_stream_cbs *cbs, void *ud)
{
    struct proxy_direct *d = ctx;
    struct direct_stream *s = stream_new(d, cbs, ud);
    if (!s)
        return NULL;
    int deny = d->allow ? d->allow(d->allow_arg, t) : 0;
    if (deny || t->proto != PROXY_TCP) {
        s->pending_err = deny ? deny : PROXY_E_OTHER;
        uv_timer_start(&s->timer, on_timer, 0, 0);
        return &s->base;
    }
    uv_timer_start(&s->timer, on_timer, d->connect_timeout_ms ? d->connect_timeout_ms : 10000, 0);
    if (t->name[0]) {
        s->port = t->port;
        s->rr = d->resolver.resolve(d->resolver.ctx, t->name, on_resolved, s);
        if (!s->rr) {
            s->pending_err = PROXY_E_OTHER;
            uv_timer_start(&s->timer, on_timer, 0, 0);
        }
        return &s->base;
    }
    s->addrs[0] = t->addr;
    s->naddr = 1;
    /* With one address try_next reports failures from callbacks only. */
    try_next(s);
    return &s->base;
}

static void on_close_nobody(void *ud)
{
    (void)ud;
}

struct proxy_stream *proxy_direct_accept(struct proxy_direct *d, uv_stream_t *server,
                                         const struct proxy_stream_cbs *cbs, void *ud)
{
    struct direct_stream *s = stream_new(d, cbs, ud);
    if (!s)
        return NULL;
    uv_tcp_init(d->loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_state = DS_OPEN;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
        /* The caller gets NULL and hears nothing more of this stream. */
        s->cbs.on_close = on_close_nobody;
        close_common(s, 0);
        return NULL;
    }
    s->connected = 1;
    s->reported = 1; /* connected already: no on_connect */
    return &s->base;
}

void proxy_direct_init(struct proxy_direct *d, uv_loop_t *loop)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    d->connect_timeout_ms = 10000;
    d->resolver = proxy_resolver_getaddrinfo(loop);
}

struct proxy_dgram *proxy_direct_dgram_open(void *ctx, const struct proxy_dgram_cbs *cbs,
                                            void *ud); /* direct_dgram.c */

struct proxy_dialer proxy_direct_dialer(struct proxy_direct *d)
{
    struct proxy_dialer dl = {.ctx = d, .dial = direct_dial, .dgram_open = proxy_direct_dgram_open};
    return dl;
}
