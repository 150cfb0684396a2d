/*
 * The node's dialer (see dialer.h): a proxy_stream over one netstack TCP connection, or, for a
 * destination outside the mesh, a thin holder of the direct dialer's stream (inner). A name is
 * raced over its addresses (proxy_race_dial, Happy Eyeballs), each address dialled here.
 * Flow: dial -> (race) -> connect_addr -> the netstack's callbacks -> the proxy's cbs; writes
 * queue until lwIP takes them; completions, late errors and on_close go through the idle handle
 * (never from inside a call); close -> finish -> on_close -> the timer's close frees.
 * Reads: lwIP hands over one segment at a time; a stream gathers what one loop turn brings into
 * one buffer and hands it on before the loop waits again (the prepare handle), so the client
 * gets one write per turn instead of one per segment. Gathered bytes are charged to the budget
 * and wait while the user stopped reading.
 */
#include "dialer.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One turn's reads per stream, at most; less under memory pressure. */
#define GATHER_MAX (64 * 1024)
#define GATHER_MIN (16 * 1024)

struct write_req {
    struct base_list link; /* in queue (not yet taken by lwIP) or done (callback due) */
    const uint8_t *data;
    size_t len, off;
    proxy_write_cb cb;
    void *arg;
    int err;
};

enum mesh_state {
    MESH_DIALING,    /* a failure waits in connect_err */
    MESH_CONNECTING, /* the netstack connects; the timer runs */
    MESH_CONNECTED,
    MESH_LOST,   /* the connection failed or went with the stack; close() is next */
    MESH_CLOSED, /* close() called; on_close follows from the idle handle */
};

struct mesh_stream {
    struct proxy_stream base;
    struct node_dialer *d;
    const struct proxy_stream_cbs *cbs;
    void *ud;
    enum mesh_state state;
    struct proxy_target target;
    struct base_endpoint dest; /* the mesh address dialled (addr.family 0: none yet) */
    struct proxy_stream *inner;
    struct ns_conn *conn;
    uv_timer_t timer;       /* connect timeout; its close callback frees the stream */
    struct base_list queue; /* write_req not yet fully taken by lwIP */
    struct base_list done;  /* write_req finished, callback not yet called */
    int connect_err;        /* an early failure to report from the idle handle */
    int late_err;           /* the netstack went away under an open stream */
    bool shutdown_pending, on_close_due;
    bool read_stopped; /* by the user: gathered bytes wait for read_start */
    uint8_t *gather;   /* bytes read from the netstack, not yet handed to the user */
    size_t gather_len, gather_cap, gather_cost;
    struct base_list gather_link; /* in d->gathering while bytes wait for the turn's end */
    struct base_list defer_link;  /* in d->deferred while linked */
    struct base_list live;        /* in d->streams until freed */
};

static const struct proxy_stream_ops mesh_ops;
static void on_idle(uv_idle_t *h);

static struct mesh_stream *from_base(struct proxy_stream *ps)
{
    return container_of(ps, struct mesh_stream, base);
}

static void defer(struct mesh_stream *s)
{
    if (base_list_linked(&s->defer_link))
        return;
    base_list_push_back(&s->d->deferred, &s->defer_link);
    uv_idle_start(&s->d->idle, on_idle); /* no-op while already active */
}

static void finish_write(struct mesh_stream *s, struct write_req *w, int err)
{
    w->err = err;
    base_list_remove(&w->link);
    base_list_push_back(&s->done, &w->link);
    defer(s);
}

/* Moves queued bytes into lwIP's send buffer; finished requests go to the done list. */
static void drain(struct mesh_stream *s)
{
    struct base_list *pos;
    while (s->state == MESH_CONNECTED && (pos = base_list_first(&s->queue))) {
        struct write_req *w = container_of(pos, struct write_req, link);
        ssize_t n = ns_conn_write(s->conn, w->data + w->off, w->len - w->off);
        if (n < 0) {
            finish_write(s, w, (int)n);
            continue;
        }
        w->off += (size_t)n;
        if (w->off < w->len)
            return; /* lwIP is full: on_writable resumes */
        finish_write(s, w, 0);
    }
    if (s->state == MESH_CONNECTED && base_list_empty(&s->queue) && s->shutdown_pending) {
        s->shutdown_pending = false;
        ns_conn_shutdown(s->conn);
    }
}

static void fail_queue(struct mesh_stream *s, int err)
{
    struct base_list *pos;
    while ((pos = base_list_first(&s->queue)))
        finish_write(s, container_of(pos, struct write_req, link), err);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mesh_stream *s = h->data;
    base_list_remove(&s->live);
    free(s);
}

static void run_deferred(struct mesh_stream *s)
{
    struct base_list *pos;
    while ((pos = base_list_first(&s->done))) { /* in the order the writes were made */
        struct write_req *w = container_of(pos, struct write_req, link);
        base_list_remove(&w->link);
        w->cb(w->arg, w->err);
        free(w);
    }
    if (s->connect_err && s->state != MESH_CLOSED) {
        int err = s->connect_err;
        s->connect_err = 0;
        s->cbs->on_connect(s->ud, err, NULL);
    }
    if (s->late_err && s->state != MESH_CLOSED) {
        int err = s->late_err;
        s->late_err = 0;
        s->cbs->on_error(s->ud, err);
    }
    /* A callback above may have closed the stream and queued it again: the queued run ends
     * it, so freeing it here would leave it in the queue. */
    if (s->on_close_due && base_list_empty(&s->done) && !base_list_linked(&s->defer_link)) {
        s->on_close_due = false;
        s->cbs->on_close(s->ud);
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    }
}

static void on_idle(uv_idle_t *h)
{
    struct node_dialer *d = h->data;
    struct base_list batch, *pos;
    base_list_init(&batch);
    while ((pos = base_list_first(&d->deferred))) {
        base_list_remove(pos);
        base_list_push_back(&batch, pos);
    }
    while ((pos = base_list_first(&batch))) {
        base_list_remove(pos);
        run_deferred(container_of(pos, struct mesh_stream, defer_link));
    }
    if (base_list_empty(&d->deferred))
        uv_idle_stop(h);
}

/* ---- gathering reads ---- */

/* A buffer of cap bytes: a kept one when cap is the full size (a malloc and free of 64 KiB per
 * turn would move the heap's top, and its pages, back and forth). */
static uint8_t *gather_alloc(struct node_dialer *d, size_t cap)
{
    if (cap == GATHER_MAX && d->n_gather_spare)
        return d->gather_spare[--d->n_gather_spare];
    return malloc(cap);
}

static void gather_release(struct node_dialer *d, uint8_t *buf, size_t cap, size_t cost)
{
    base_budget_release(d->budget, cost);
    bool keep = cap == GATHER_MAX && !uv_is_closing((uv_handle_t *)&d->gather_prep);
    if (keep && d->n_gather_spare < sizeof(d->gather_spare) / sizeof(buf))
        d->gather_spare[d->n_gather_spare++] = buf;
    else
        free(buf);
}

static void gather_free(struct mesh_stream *s)
{
    if (base_list_linked(&s->gather_link))
        base_list_remove(&s->gather_link);
    if (!s->gather)
        return;
    gather_release(s->d, s->gather, s->gather_cap, s->gather_cost);
    s->gather = NULL;
    s->gather_len = 0;
}

/* Hands the gathered bytes to the user in one read, unless it stopped reading (force: even
 * then, before newer bytes that cannot wait). The user copies what it is handed, so the buffer
 * goes at once (an idle stream holds none). */
static void gather_flush(struct mesh_stream *s, bool force)
{
    if (base_list_linked(&s->gather_link))
        base_list_remove(&s->gather_link);
    if (!s->gather_len || (s->read_stopped && !force) || s->state != MESH_CONNECTED)
        return;
    struct node_dialer *d = s->d;
    uint8_t *buf = s->gather;
    size_t len = s->gather_len, cap = s->gather_cap, cost = s->gather_cost;
    s->gather = NULL;
    s->gather_len = 0;
    d->mesh_reads++;
    s->cbs->on_read(s->ud, buf, len);
    gather_release(d, buf, cap, cost);
}

static void on_gather_prepare(uv_prepare_t *h)
{
    struct node_dialer *d = h->data;
    struct base_list *pos;
    while ((pos = base_list_first(&d->gathering)))
        gather_flush(container_of(pos, struct mesh_stream, gather_link), false);
    uv_prepare_stop(h);
}

/* Copies len bytes into the stream's buffer; false when there is no buffer to be had. */
static bool gather_add(struct mesh_stream *s, const uint8_t *data, size_t len)
{
    struct node_dialer *d = s->d;
    if (s->gather && s->gather_len + len > s->gather_cap)
        gather_flush(s, true); /* a full buffer goes now, as one write */
    if (!s->gather) {
        size_t cap = base_budget_scale(d->budget, GATHER_MAX, GATHER_MIN);
        if (len > cap || !(s->gather = gather_alloc(d, cap)))
            return false;
        s->gather_cap = cap;
        s->gather_cost = malloc_usable_size(s->gather) + sizeof(size_t);
        base_budget_charge(d->budget, s->gather_cost);
    }
    memcpy(s->gather + s->gather_len, data, len);
    s->gather_len += len;
    if (!s->read_stopped && !base_list_linked(&s->gather_link)) {
        base_list_push_back(&d->gathering, &s->gather_link);
        uv_prepare_start(&d->gather_prep, on_gather_prepare); /* no-op while active */
    }
    return true;
}

/* ---- netstack callbacks ---- */

static void ns_on_connect(struct ns_conn *c, int status)
{
    struct mesh_stream *s = ns_conn_data(c);
    uv_timer_stop(&s->timer);
    if (status != 0) {
        s->state = MESH_LOST;
        s->cbs->on_connect(s->ud, status, NULL);
        return;
    }
    s->state = MESH_CONNECTED;
    ns_conn_read_pause(c, 1); /* reading is off until read_start */
    s->cbs->on_connect(s->ud, 0, ns_conn_local(c));
    drain(s);
}

static void ns_on_read(struct ns_conn *c, const uint8_t *data, size_t len)
{
    struct mesh_stream *s = ns_conn_data(c);
    if (!data) {
        gather_flush(s, true); /* the bytes before the FIN first */
        if (s->state == MESH_CONNECTED)
            s->cbs->on_eof(s->ud);
        return;
    }
    /* The gathered copy (or the proxy's) is charged to the budget, so the window can reopen at
     * once; read_stop is how the proxy pushes back. */
    s->d->mesh_segments++;
    if (!gather_add(s, data, len)) {
        gather_flush(s, true);
        if (s->state != MESH_CONNECTED)
            return;
        s->d->mesh_reads++;
        s->cbs->on_read(s->ud, data, len);
    }
    if (s->conn)
        ns_conn_consumed(c, len);
}

static void ns_on_writable(struct ns_conn *c)
{
    drain(ns_conn_data(c));
}

static void ns_on_error(struct ns_conn *c, int err)
{
    struct mesh_stream *s = ns_conn_data(c);
    if (s->state == MESH_CONNECTING) {
        ns_on_connect(c, err);
        return;
    }
    gather_flush(s, false); /* what came before a reset is the user's */
    gather_free(s);
    if (s->state != MESH_CONNECTED)
        return; /* the user closed it on those bytes */
    s->state = MESH_LOST;
    fail_queue(s, err);
    s->cbs->on_error(s->ud, err); /* BASE_ECLOSING too: the stack went away under the stream */
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
    struct mesh_stream *s = t->data;
    if (s->state != MESH_CONNECTING)
        return;
    s->state = MESH_LOST;
    ns_conn_reset(s->conn);
    s->conn = NULL;
    s->cbs->on_connect(s->ud, -ETIMEDOUT, NULL);
}

static void fail_later(struct mesh_stream *s, int err)
{
    s->connect_err = err;
    defer(s);
}

static void connect_addr(struct mesh_stream *s, const struct base_endpoint *ep)
{
    struct node_dialer *d = s->d;
    bool mesh = node_dialer_is_mesh(d, ep) || node_dialer_is_own(d, &ep->addr);
    if (mesh && !d->stack) { /* between netstacks: never out through the host instead */
        fail_later(s, -ENETUNREACH);
        return;
    }
    if (!mesh) {
        if (d->tunnel_only) {
            fail_later(s, BASE_EPOLICY);
            return;
        }
        struct proxy_target t = s->target;
        proxy_target_set_endpoint(&t, ep);
        struct proxy_dialer direct = proxy_direct_dialer(&d->direct);
        s->inner = direct.dial(direct.ctx, &t, s->cbs, s->ud);
        if (!s->inner)
            fail_later(s, -ENOMEM);
        return;
    }
    s->dest = *ep;
    int err = ns_conn_connect(d->stack, ep, &conn_cbs, s, &s->conn);
    if (err != 0) {
        s->conn = NULL;
        fail_later(s, err);
        return;
    }
    s->state = MESH_CONNECTING;
    uv_timer_start(&s->timer, on_connect_timeout, node_dialer_timeout_ms(d), 0);
}

static struct mesh_stream *stream_new(struct node_dialer *d, const struct proxy_stream_cbs *cbs,
                                      void *ud)
{
    struct mesh_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base.ops = &mesh_ops;
    s->d = d;
    s->cbs = cbs;
    s->ud = ud;
    base_list_init(&s->queue);
    base_list_init(&s->done);
    base_list_init(&s->gather_link);
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    base_list_push_front(&d->streams, &s->live);
    return s;
}

/* One address: the netstack, the direct dialer, or refused. */
static struct proxy_stream *dial_addr(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    struct node_dialer *d = ctx;
    /* A race's next attempt may come after node_dialer_close: the deferred reports are over. */
    if (uv_is_closing((uv_handle_t *)&d->idle))
        return NULL;
    struct mesh_stream *s = stream_new(d, cbs, ud);
    if (!s)
        return NULL;
    s->state = MESH_DIALING;
    s->target = *t;
    if (d->stopped)
        fail_later(s, BASE_ESTOPPED);
    else
        connect_addr(s, &t->ep);
    return &s->base;
}

static struct proxy_stream *dial(void *ctx, const struct proxy_target *t,
                                 const struct proxy_stream_cbs *cbs, void *ud)
{
    struct node_dialer *d = ctx;
    if (!t->name[0] || d->stopped) /* a Stopped node refuses before resolving */
        return dial_addr(d, t, cbs, ud);
    struct proxy_race_config rc = {
        .resolver = d->resolver,
        .per_addr = {.ctx = d, .dial = dial_addr},
        .timeout_ms = node_dialer_timeout_ms(d),
    };
    return proxy_race_dial(d->loop, &rc, t, cbs, ud);
}

struct proxy_stream *node_dialer_adopt(struct node_dialer *d, struct ns_conn *c,
                                       const struct proxy_stream_cbs *cbs, void *ud)
{
    struct mesh_stream *s = stream_new(d, cbs, ud);
    if (!s) {
        ns_conn_reset(c);
        return NULL;
    }
    s->state = MESH_CONNECTED;
    s->conn = c;
    ns_conn_set_cbs(c, &conn_cbs, s);
    ns_conn_read_pause(c, 1);
    return &s->base;
}

/* ---- proxy_stream ops ---- */

static int mesh_write(struct proxy_stream *base, const uint8_t *data, size_t len, proxy_write_cb cb,
                      void *arg)
{
    struct mesh_stream *s = from_base(base);
    if (s->inner)
        return s->inner->ops->write(s->inner, data, len, cb, arg);
    if (s->state != MESH_CONNECTING && s->state != MESH_CONNECTED)
        return -ECANCELED;
    struct write_req *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (struct write_req){.data = data, .len = len, .cb = cb, .arg = arg};
    base_list_push_back(&s->queue, &w->link);
    drain(s);
    return 0;
}

static ssize_t mesh_try_write(struct proxy_stream *base, const uint8_t *data, size_t len)
{
    struct mesh_stream *s = from_base(base);
    if (s->inner)
        return s->inner->ops->try_write ? s->inner->ops->try_write(s->inner, data, len) : 0;
    if (s->state != MESH_CONNECTED || !base_list_empty(&s->queue))
        return 0;
    return ns_conn_write(s->conn, data, len);
}

static void mesh_shutdown(struct proxy_stream *base)
{
    struct mesh_stream *s = from_base(base);
    if (s->inner) {
        s->inner->ops->shutdown(s->inner);
        return;
    }
    s->shutdown_pending = true;
    drain(s);
}

static void mesh_read_start(struct proxy_stream *base)
{
    struct mesh_stream *s = from_base(base);
    if (s->inner) {
        s->inner->ops->read_start(s->inner);
        return;
    }
    s->read_stopped = false;
    gather_flush(s, false); /* what waited goes first */
    if (s->state == MESH_CONNECTED && !s->read_stopped)
        ns_conn_read_pause(s->conn, 0);
}

static void mesh_read_stop(struct proxy_stream *base)
{
    struct mesh_stream *s = from_base(base);
    if (s->inner) {
        s->inner->ops->read_stop(s->inner);
        return;
    }
    s->read_stopped = true;
    if (base_list_linked(&s->gather_link))
        base_list_remove(&s->gather_link); /* the bytes wait for read_start */
    if (s->state == MESH_CONNECTED)
        ns_conn_read_pause(s->conn, 1);
}

/* Ends the stream: the conn is released by release(conn) (an inner stream by reset or close),
 * pending writes are canceled, and on_close follows them from the idle handle. */
static void finish(struct mesh_stream *s, void (*release)(struct ns_conn *), bool reset)
{
    s->state = MESH_CLOSED;
    s->connect_err = 0;
    gather_free(s);
    if (s->inner) {
        /* The direct stream reports to the proxy itself; this holder only goes away. */
        if (reset)
            s->inner->ops->reset(s->inner);
        else
            s->inner->ops->close(s->inner);
        s->inner = NULL;
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        return;
    }
    uv_timer_stop(&s->timer);
    if (s->conn) {
        release(s->conn);
        s->conn = NULL;
    }
    fail_queue(s, -ECANCELED);
    s->on_close_due = true;
    defer(s);
}

static void mesh_close(struct proxy_stream *base)
{
    finish(from_base(base), ns_conn_close, false);
}

static void mesh_reset(struct proxy_stream *base)
{
    finish(from_base(base), ns_conn_reset, true);
}

/* Through the tunnel to the peer whose allowed IPs hold dest, or the direct stream's way. */
static void mesh_route(struct proxy_stream *base, struct proxy_route *out)
{
    struct mesh_stream *s = from_base(base);
    if (s->inner) {
        if (s->inner->ops->route)
            s->inner->ops->route(s->inner, out);
        return;
    }
    if (s->dest.addr.family == 0)
        return;
    out->via = PROXY_VIA_TUNNEL;
    out->dest = s->dest;
    if (s->d->peer_of)
        s->d->peer_of(s->d->is_mesh_ctx, &s->dest.addr, out);
}

static const struct proxy_stream_ops mesh_ops = {
    .route = mesh_route,
    .write = mesh_write,
    .try_write = mesh_try_write,
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
    base_list_init(&d->deferred);
    base_list_init(&d->streams);
    base_list_init(&d->dgrams);
    uv_idle_init(loop, &d->idle);
    d->idle.data = d;
    base_list_init(&d->gathering);
    uv_prepare_init(loop, &d->gather_prep);
    d->gather_prep.data = d;
    uv_unref((uv_handle_t *)&d->gather_prep); /* the streams' own handles keep the loop */
}

unsigned node_dialer_timeout_ms(const struct node_dialer *d)
{
    return d->connect_timeout_ms ? d->connect_timeout_ms : PROXY_CONNECT_TIMEOUT_MS;
}

void node_dialer_set_own(struct node_dialer *d, const struct base_prefix *own, size_t n)
{
    d->n_own = n < NODE_DIALER_OWN_MAX ? n : NODE_DIALER_OWN_MAX;
    memcpy(d->own, own, d->n_own * sizeof(*own));
}

bool node_dialer_is_own(const struct node_dialer *d, const struct base_addr *addr)
{
    static const struct base_prefix magicdns = {.addr = {AF_INET, {100, 100, 100, 100}},
                                                .bits = 32};
    if (base_prefix_contains(&magicdns, addr))
        return true;
    for (size_t i = 0; i < d->n_own; i++)
        if (base_prefix_contains(&d->own[i], addr))
            return true;
    return false;
}

struct proxy_dialer node_dialer_proxy(struct node_dialer *d)
{
    return (struct proxy_dialer){.ctx = d, .dial = dial, .dgram_open = node_dialer_dgram_open};
}

bool node_dialer_is_mesh(const struct node_dialer *d, const struct base_endpoint *ep)
{
    struct sockaddr_storage ss;
    return d->is_mesh && base_endpoint_to_sockaddr(ep, &ss) &&
           d->is_mesh(d->is_mesh_ctx, (struct sockaddr *)&ss);
}

/* A stream whose conn dies with the stack: reset it while the stack still exists, and tell
 * the user from the idle handle. */
static void stream_lose_stack(struct mesh_stream *s)
{
    if (!s->conn)
        return;
    ns_conn_reset(s->conn);
    s->conn = NULL;
    uv_timer_stop(&s->timer);
    if (s->state == MESH_CONNECTING) {
        s->state = MESH_DIALING;
        fail_later(s, -ENETUNREACH);
        return;
    }
    if (s->state == MESH_CLOSED)
        return;
    gather_free(s); /* a reset: what was not handed on is lost with the rest */
    s->state = MESH_LOST;
    fail_queue(s, -ECONNRESET);
    s->late_err = -ECONNRESET;
    defer(s);
}

size_t node_dialer_reset_where(struct node_dialer *d,
                               bool (*match)(void *arg, const struct base_addr *far), void *arg)
{
    size_t n = 0;
    struct base_list *pos;
    base_list_foreach (pos, &d->streams) {
        struct mesh_stream *s = container_of(pos, struct mesh_stream, live);
        if (s->conn && s->state != MESH_CLOSED && match(arg, &ns_conn_remote(s->conn)->addr)) {
            stream_lose_stack(s); /* the same as losing the stack: reset, and tell the user */
            n++;
        }
    }
    return n;
}

void node_dialer_detach_stack(struct node_dialer *d)
{
    ns_stack_unwatch(&d->stack_watch);
    struct base_list *pos;
    base_list_foreach (pos, &d->streams) {
        stream_lose_stack(container_of(pos, struct mesh_stream, live));
    }
    node_dialer_dgrams_detach(d);
    d->stack = NULL;
}

static void on_stack_closing(struct ns_stack_watch *w, struct ns_stack *ns)
{
    (void)ns;
    node_dialer_detach_stack(container_of(w, struct node_dialer, stack_watch));
}

void node_dialer_set_stack(struct node_dialer *d, struct ns_stack *stack)
{
    d->stack = stack;
    d->stack_watch.on_closing = on_stack_closing;
    ns_stack_watch(stack, &d->stack_watch);
}

void node_dialer_close(struct node_dialer *d)
{
    /* Reports still queued (streams that lost the stack on shutdown) go out first: their users
     * close what they hold (a relay's other side), which queues the streams' on_close. */
    while (!base_list_empty(&d->deferred))
        on_idle(&d->idle);
    uv_close((uv_handle_t *)&d->idle, NULL);
    uv_close((uv_handle_t *)&d->gather_prep, NULL);
    while (d->n_gather_spare)
        free(d->gather_spare[--d->n_gather_spare]);
}

/* ---- conversions ---- */

int node_sockaddr_to_endpoint(const struct sockaddr *sa, uint16_t port, struct base_endpoint *ep)
{
    if (base_endpoint_from_sockaddr(ep, sa) != 0)
        return -1;
    ep->port = port;
    return 0;
}

uint16_t node_sockaddr_port(const struct sockaddr *sa)
{
    struct base_endpoint b;
    return base_endpoint_from_sockaddr(&b, sa) == 0 ? b.port : 0;
}

void node_target_from_hostport(const struct cfg_hostport *hp, struct proxy_target *t)
{
    memset(t, 0, sizeof(*t));
    t->proto = PROXY_TCP;
    t->ep.port = hp->port;
    if (base_addr_parse(&t->ep.addr, hp->host, strlen(hp->host)) != 0) {
        memset(&t->ep.addr, 0, sizeof(t->ep.addr));
        snprintf(t->name, sizeof(t->name), "%s", hp->host);
    }
}
