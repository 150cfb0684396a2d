#include "dialer.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000

/* A proxy stream over one netstack TCP connection, or, for a name that resolved outside the
 * mesh, a thin holder of the direct dialer's stream (inner). */
struct write_req {
    const uint8_t *data;
    size_t len, off;
    proxy_write_cb cb;
    void *arg;
    int err; /* set when the request is finished and waits in the done list */
    struct write_req *next;
};

struct node_mesh_stream {
    struct proxy_stream base;
    struct node_dialer *d;
    const struct proxy_stream_cbs *cbs;
    void *ud;
    struct proxy_target target;
    struct proxy_resolve_req *resolving;
    struct proxy_stream *inner;
    struct ns_conn *conn;
    uv_timer_t timer;                     /* connect timeout; its close callback frees the stream */
    struct write_req *queue, *queue_tail; /* not yet fully taken by lwIP */
    struct write_req *done;               /* finished, callback not yet called */
    int connect_err;                      /* an early failure to report from the idle handle */
    int late_err;                         /* the netstack went away under an open stream */
    bool connecting, connected, shutdown_pending, closed, on_close_due, deferred;
    struct node_mesh_stream *next_deferred;
    struct node_mesh_stream *live_prev, *live_next; /* in d->streams until freed */
};

static const struct proxy_stream_ops mesh_ops;
static void on_idle(uv_idle_t *h);

int node_proxy_err(int err)
{
    switch (err) {
    case -ECONNREFUSED:
        return PROXY_E_REFUSED;
    case -ENETUNREACH:
    case -EHOSTUNREACH:
        return PROXY_E_NET_UNREACH;
    case -ETIMEDOUT:
        return PROXY_E_TIMEOUT;
    case -ECONNRESET:
    case BASE_ECLOSING: /* the netstack went away under the stream */
        return PROXY_E_RESET;
    case -EPIPE:
        return PROXY_E_CANCELED;
    default:
        return PROXY_E_OTHER;
    }
}

static void defer(struct node_mesh_stream *s)
{
    if (s->deferred)
        return;
    s->deferred = true;
    s->next_deferred = s->d->deferred;
    s->d->deferred = s;
    uv_idle_start(&s->d->idle, on_idle); /* no-op while already active */
}

static void finish_write(struct node_mesh_stream *s, struct write_req *w, int err)
{
    w->err = err;
    w->next = s->done;
    s->done = w;
    defer(s);
}

/* Moves queued bytes into lwIP's send buffer; finished requests go to the done list. */
static void drain(struct node_mesh_stream *s)
{
    while (s->queue && s->conn && s->connected) {
        struct write_req *w = s->queue;
        ssize_t n = ns_conn_write(s->conn, w->data + w->off, w->len - w->off);
        if (n < 0) {
            s->queue = w->next;
            finish_write(s, w, node_proxy_err((int)n));
            continue;
        }
        w->off += (size_t)n;
        if (w->off < w->len)
            return; /* lwIP is full: on_writable resumes */
        s->queue = w->next;
        finish_write(s, w, PROXY_OK);
    }
    if (!s->queue) {
        s->queue_tail = NULL;
        if (s->shutdown_pending && s->conn && s->connected) {
            s->shutdown_pending = false;
            ns_conn_shutdown(s->conn);
        }
    }
}

static void fail_queue(struct node_mesh_stream *s, int err)
{
    while (s->queue) {
        struct write_req *w = s->queue;
        s->queue = w->next;
        finish_write(s, w, err);
    }
    s->queue_tail = NULL;
}

static void live_add(struct node_mesh_stream *s)
{
    s->live_next = s->d->streams;
    if (s->live_next)
        s->live_next->live_prev = s;
    s->d->streams = s;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct node_mesh_stream *s = h->data;
    if (s->live_prev)
        s->live_prev->live_next = s->live_next;
    else
        s->d->streams = s->live_next;
    if (s->live_next)
        s->live_next->live_prev = s->live_prev;
    free(s);
}

static void run_deferred(struct node_mesh_stream *s)
{
    /* Completions in the order the writes were made: the done list is newest first. */
    struct write_req *rev = NULL;
    while (s->done) {
        struct write_req *w = s->done;
        s->done = w->next;
        w->next = rev;
        rev = w;
    }
    while (rev) {
        struct write_req *w = rev;
        rev = w->next;
        w->cb(w->arg, w->err);
        free(w);
    }
    if (s->connect_err && !s->closed) {
        int err = s->connect_err;
        s->connect_err = 0;
        s->cbs->on_connect(s->ud, err, NULL);
    }
    if (s->late_err && !s->closed) {
        int err = s->late_err;
        s->late_err = 0;
        s->cbs->on_error(s->ud, err);
    }
    /* A callback above may have closed the stream and queued it again: the queued run ends
     * it, so freeing it here would leave it in the queue. */
    if (s->on_close_due && !s->done && !s->deferred) {
        s->on_close_due = false;
        s->cbs->on_close(s->ud);
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    }
}

static void on_idle(uv_idle_t *h)
{
    struct node_dialer *d = h->data;
    struct node_mesh_stream *list = d->deferred;
    d->deferred = NULL;
    while (list) {
        struct node_mesh_stream *s = list;
        list = s->next_deferred;
        s->deferred = false;
        run_deferred(s);
    }
    if (!d->deferred)
        uv_idle_stop(h);
}

/* ---- netstack callbacks ---- */

static void ns_on_connect(struct ns_conn *c, int status)
{
    struct node_mesh_stream *s = ns_conn_data(c);
    s->connecting = false;
    uv_timer_stop(&s->timer);
    if (status != 0) {
        s->cbs->on_connect(s->ud, node_proxy_err(status), NULL);
        return;
    }
    s->connected = true;
    ns_conn_read_pause(c, 1); /* reading is off until read_start */

    struct sockaddr_storage ss;
    node_endpoint_to_sockaddr(ns_conn_local(c), &ss);
    s->cbs->on_connect(s->ud, PROXY_OK, (struct sockaddr *)&ss);
    drain(s);
}

static void ns_on_read(struct ns_conn *c, const uint8_t *data, size_t len)
{
    struct node_mesh_stream *s = ns_conn_data(c);
    if (!data) {
        s->cbs->on_eof(s->ud);
        return;
    }
    /* The proxy copies what it is handed, so the window can reopen at once; read_stop is
     * how it pushes back. */
    s->cbs->on_read(s->ud, data, len);
    if (s->conn)
        ns_conn_consumed(c, len);
}

static void ns_on_writable(struct ns_conn *c)
{
    drain(ns_conn_data(c));
}

static void ns_on_error(struct ns_conn *c, int err)
{
    struct node_mesh_stream *s = ns_conn_data(c);
    if (s->connecting) {
        ns_on_connect(c, err);
        return;
    }
    fail_queue(s, node_proxy_err(err));
    s->cbs->on_error(s->ud, node_proxy_err(err));
}

static const struct ns_conn_cbs conn_cbs = {
    .on_connect = ns_on_connect,
    .on_read = ns_on_read,
    .on_writable = ns_on_writable,
    .on_error = ns_on_error,
};

/* ---- connecting ---- */

static void on_connect_timeout(uv_timer_t *t)
{
    struct node_mesh_stream *s = t->data;
    if (!s->connecting)
        return;
    s->connecting = false;
    ns_conn_reset(s->conn);
    s->conn = NULL;
    s->cbs->on_connect(s->ud, PROXY_E_TIMEOUT, NULL);
}

static void fail_later(struct node_mesh_stream *s, int err)
{
    s->connect_err = err;
    defer(s);
}

static void connect_addr(struct node_mesh_stream *s, const struct sockaddr *sa)
{
    struct node_dialer *d = s->d;
    bool mesh = d->is_mesh && d->is_mesh(d->is_mesh_ctx, sa);
    if (mesh && !d->stack) { /* between netstacks: never out through the host instead */
        fail_later(s, PROXY_E_NET_UNREACH);
        return;
    }
    if (!mesh) {
        if (d->tunnel_only) {
            fail_later(s, PROXY_E_POLICY);
            return;
        }
        struct proxy_target t = s->target;
        proxy_target_set_addr(&t, sa, t.port);
        struct proxy_dialer direct = proxy_direct_dialer(&d->direct);
        s->inner = direct.dial(direct.ctx, &t, s->cbs, s->ud);
        if (!s->inner)
            fail_later(s, PROXY_E_OTHER);
        return;
    }
    struct base_endpoint ep;
    int err = -EINVAL;
    if (node_sockaddr_to_endpoint(sa, s->target.port, &ep) == 0)
        err = ns_conn_connect(d->stack, &ep, &conn_cbs, s, &s->conn);
    if (err != 0) {
        fail_later(s, node_proxy_err(err));
        return;
    }
    s->connecting = true;
    unsigned ms = d->connect_timeout_ms ? d->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    uv_timer_start(&s->timer, on_connect_timeout, ms, 0);
}

static void on_resolved(void *arg, int err, const struct sockaddr_storage *addrs, size_t n)
{
    struct node_mesh_stream *s = arg;
    s->resolving = NULL;
    if (err || n == 0) {
        s->cbs->on_connect(s->ud, err ? err : PROXY_E_NAME, NULL);
        return;
    }
    connect_addr(s, (const struct sockaddr *)&addrs[0]);
}

static struct proxy_stream *dial(void *ctx, const struct proxy_target *t,
                                 const struct proxy_stream_cbs *cbs, void *ud)
{
    struct node_dialer *d = ctx;
    struct node_mesh_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base.ops = &mesh_ops;
    s->d = d;
    s->cbs = cbs;
    s->ud = ud;
    s->target = *t;
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    live_add(s);
    if (t->name[0]) {
        s->resolving = d->resolver.resolve(d->resolver.ctx, t->name, on_resolved, s);
        if (!s->resolving)
            fail_later(s, PROXY_E_OTHER);
    } else {
        connect_addr(s, (const struct sockaddr *)&t->addr);
    }
    return &s->base;
}

struct proxy_stream *node_dialer_adopt(struct node_dialer *d, struct ns_conn *c,
                                       const struct proxy_stream_cbs *cbs, void *ud)
{
    struct node_mesh_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        ns_conn_reset(c);
        return NULL;
    }
    s->base.ops = &mesh_ops;
    s->d = d;
    s->cbs = cbs;
    s->ud = ud;
    s->conn = c;
    s->connected = true;
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    live_add(s);
    ns_conn_set_cbs(c, &conn_cbs, s);
    ns_conn_read_pause(c, 1);
    return &s->base;
}

/* ---- proxy_stream ops ---- */

static int mesh_write(struct proxy_stream *base, const uint8_t *data, size_t len, proxy_write_cb cb,
                      void *arg)
{
    struct node_mesh_stream *s = (struct node_mesh_stream *)base;
    if (s->inner)
        return s->inner->ops->write(s->inner, data, len, cb, arg);
    if (s->closed || (!s->conn && !s->connecting))
        return PROXY_E_CANCELED;
    struct write_req *w = calloc(1, sizeof(*w));
    if (!w)
        return PROXY_E_OTHER;
    *w = (struct write_req){.data = data, .len = len, .cb = cb, .arg = arg};
    if (s->queue_tail)
        s->queue_tail->next = w;
    else
        s->queue = w;
    s->queue_tail = w;
    drain(s);
    return PROXY_OK;
}

static void mesh_shutdown(struct proxy_stream *base)
{
    struct node_mesh_stream *s = (struct node_mesh_stream *)base;
    if (s->inner) {
        s->inner->ops->shutdown(s->inner);
        return;
    }
    s->shutdown_pending = true;
    drain(s);
}

static void mesh_read_start(struct proxy_stream *base)
{
    struct node_mesh_stream *s = (struct node_mesh_stream *)base;
    if (s->inner)
        s->inner->ops->read_start(s->inner);
    else if (s->conn && s->connected)
        ns_conn_read_pause(s->conn, 0);
}

static void mesh_read_stop(struct proxy_stream *base)
{
    struct node_mesh_stream *s = (struct node_mesh_stream *)base;
    if (s->inner)
        s->inner->ops->read_stop(s->inner);
    else if (s->conn && s->connected)
        ns_conn_read_pause(s->conn, 1);
}

/* Ends the stream: the conn is released by release(conn), pending writes are canceled, and
 * on_close follows them from the idle handle. */
static void finish(struct node_mesh_stream *s, void (*release)(struct ns_conn *))
{
    if (s->inner) {
        /* The direct stream reports to the proxy itself; this holder only goes away. */
        s->inner->ops->close(s->inner);
        s->inner = NULL;
        s->closed = true;
        s->connect_err = 0;
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        return;
    }
    s->closed = true;
    s->connect_err = 0;
    uv_timer_stop(&s->timer);
    if (s->resolving) {
        s->d->resolver.cancel(s->d->resolver.ctx, s->resolving);
        s->resolving = NULL;
    }
    if (s->conn) {
        release(s->conn);
        s->conn = NULL;
    }
    fail_queue(s, PROXY_E_CANCELED);
    s->on_close_due = true;
    defer(s);
}

static void mesh_close(struct proxy_stream *base)
{
    finish((struct node_mesh_stream *)base, ns_conn_close);
}

static void mesh_reset(struct proxy_stream *base)
{
    struct node_mesh_stream *s = (struct node_mesh_stream *)base;
    if (s->inner) {
        s->inner->ops->reset(s->inner);
        s->inner = NULL; /* reset behaves as close on the inner stream */
        s->closed = true;
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        return;
    }
    finish(s, ns_conn_reset);
}

static const struct proxy_stream_ops mesh_ops = {
    .write = mesh_write,
    .shutdown = mesh_shutdown,
    .read_start = mesh_read_start,
    .read_stop = mesh_read_stop,
    .reset = mesh_reset,
    .close = mesh_close,
};

/* ---- the dialer ---- */

void node_dialer_init(struct node_dialer *d, uv_loop_t *loop)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    proxy_direct_init(&d->direct, loop);
    d->resolver = d->direct.resolver;
    uv_idle_init(loop, &d->idle);
    d->idle.data = d;
}

struct proxy_dialer node_dialer_proxy(struct node_dialer *d)
{
    return (struct proxy_dialer){.ctx = d, .dial = dial, .dgram_open = node_dialer_dgram_open};
}

/* A stream whose conn dies with the stack: reset it while the stack still exists, and tell
 * the user from the idle handle. */
static void stream_lose_stack(struct node_mesh_stream *s)
{
    if (!s->conn)
        return;
    ns_conn_reset(s->conn);
    s->conn = NULL;
    uv_timer_stop(&s->timer);
    if (s->connecting) {
        s->connecting = false;
        fail_later(s, PROXY_E_NET_UNREACH);
        return;
    }
    fail_queue(s, PROXY_E_RESET);
    s->late_err = PROXY_E_RESET;
    defer(s);
}

void node_dialer_detach_stack(struct node_dialer *d)
{
    for (struct node_mesh_stream *s = d->streams; s; s = s->live_next)
        stream_lose_stack(s);
    node_dialer_dgrams_detach(d);
    d->stack = NULL;
}

int node_sockaddr_to_endpoint(const struct sockaddr *sa, uint16_t port, struct base_endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->port = port;
    if (sa->sa_family == AF_INET) {
        ep->addr.family = AF_INET;
        memcpy(ep->addr.ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        ep->addr.family = AF_INET6;
        memcpy(ep->addr.ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

uint16_t node_sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

void node_endpoint_to_sockaddr(const struct base_endpoint *ep, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (ep->addr.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(ep->port);
        memcpy(&sin->sin_addr, ep->addr.ip, 4);
        return;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(ep->port);
    memcpy(&sin6->sin6_addr, ep->addr.ip, 16);
}

void node_dialer_close(struct node_dialer *d)
{
    uv_close((uv_handle_t *)&d->idle, NULL);
}

void node_target_from_hostport(const struct cfg_hostport *hp, struct proxy_target *t)
{
    memset(t, 0, sizeof(*t));
    t->proto = PROXY_TCP;
    t->port = hp->port;
    struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;
    if (inet_pton(AF_INET, hp->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(hp->port);
    } else if (inet_pton(AF_INET6, hp->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(hp->port);
    } else {
        snprintf(t->name, sizeof(t->name), "%s", hp->host);
    }
}
