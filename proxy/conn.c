#include <arpa/inet.h>
#include <stdlib.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"

struct client_write {
    uv_write_t w;
    struct conn *c;
    size_t len;
    uint8_t data[];
};

struct up_write {
    struct conn *c;
    struct proxy_stream *s;
    struct rbuf *rb;
    size_t len;
};

static struct rbuf *rbuf_new(size_t len)
{
    struct rbuf *rb = malloc(sizeof(*rb) + len);
    if (rb) {
        rb->refs = 1;
        rb->len = len;
    }
    return rb;
}

static void rbuf_unref(struct rbuf *rb)
{
    if (rb && --rb->refs == 0)
        free(rb);
}

void conn_unref(struct conn *c)
{
    if (--c->open > 0)
        return;
    struct proxy_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    rbuf_unref(c->hold);
    httpproxy_conn_free(c);
    sodium_memzero(&c->s5, sizeof(c->s5));
    free(c);
    proxy_server_check_done(srv);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->client, on_handle_closed);
    if (c->up)
        conn_up_close(c);
    if (c->dg) {
        c->dg->ops->close(c->dg);
        c->dg = NULL;
    }
    if (c->udp_open) {
        c->udp_open = 0;
        uv_close((uv_handle_t *)&c->udp, on_handle_closed);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->phase == PH_HEAD && c->kind == CONN_HTTP) {
        httpproxy_conn_timeout(c);
        return;
    }
    if (c->phase == PH_HEAD)
        conn_log(c, PROXY_LOG_INFO, "no request within the head timeout");
    conn_close(c);
}

void conn_head_timer(struct conn *c, unsigned ms)
{
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* ---- client side ---- */

static void client_read_start(struct conn *c);

void conn_sync_read(struct conn *c)
{
    int should = c->want_read && !c->bp_paused && !c->client_eof && !c->closing;
    if (should == c->reading)
        return;
    c->reading = should;
    if (should)
        client_read_start(c);
    else
        uv_read_stop((uv_stream_t *)&c->client);
}

static void on_client_written(uv_write_t *w, int status)
{
    struct client_write *cw = (struct client_write *)w;
    struct conn *c = cw->c;
    c->cl_pending -= cw->len;
    free(cw);
    if (c->closing)
        return;
    if (status) {
        conn_close(c);
        return;
    }
    if (c->phase == PH_FINISHING && c->cl_pending == 0) {
        conn_finish(c);
        return;
    }
    if (c->up_bp_paused && c->cl_pending <= CONN_LOW_WATER) {
        c->up_bp_paused = 0;
        conn_up_sync_read(c);
    }
    if (c->phase == PH_RELAY && c->client_eof && c->up_eof && !c->cl_pending && !c->up_pending)
        conn_close(c);
}

void conn_client_write(struct conn *c, const void *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = c->cl_pending ? 0 : uv_try_write((uv_stream_t *)&c->client, &b, 1);
    if (n == (int)len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    struct client_write *cw = malloc(sizeof(*cw) + len - done);
    if (!cw) {
        conn_close(c);
        return;
    }
    cw->c = c;
    cw->len = len - done;
    memcpy(cw->data, (const uint8_t *)data + done, cw->len);
    b = uv_buf_init((char *)cw->data, (unsigned)cw->len);
    if (uv_write(&cw->w, (uv_stream_t *)&c->client, &b, 1, on_client_written) != 0) {
        free(cw);
        conn_close(c);
        return;
    }
    c->cl_pending += cw->len;
    if (c->cl_pending > CONN_HIGH_WATER && !c->up_bp_paused) {
        c->up_bp_paused = 1;
        conn_up_sync_read(c);
    }
}

static void on_client_shut(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void client_shutdown(struct conn *c)
{
    if (c->client_shut_sent || c->closing)
        return;
    c->client_shut_sent = 1;
    if (uv_shutdown(&c->client_shut, (uv_stream_t *)&c->client, on_client_shut) != 0)
        conn_close(c);
}

void conn_finish(struct conn *c)
{
    if (c->closing)
        return;
    c->phase = PH_FINISHING;
    if (c->up)
        conn_up_close(c);
    if (c->cl_pending)
        return; /* on_client_written comes back here */
    /* Closing with unread input would reset the connection and could destroy the reply we
     * just sent, so send FIN and read (discarding) until the client goes or a short linger. */
    client_shutdown(c);
    c->want_read = 1;
    c->bp_paused = 0;
    conn_sync_read(c);
    uv_timer_start(&c->timer, on_timer, CONN_LINGER_MS, 0);
    if (c->client_eof)
        conn_close(c);
}

void conn_hold(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len)
{
    rbuf_unref(c->hold);
    c->hold = NULL;
    c->hold_len = 0;
    if (len == 0 || !rb)
        return;
    rb->refs++;
    c->hold = rb;
    c->hold_off = (size_t)(data - rb->data);
    c->hold_len = len;
}

static void sniff(struct conn *c, const uint8_t *data)
{
    enum proxy_protocols p = c->srv->cfg.protocols;
    /* SOCKS4 (0x04) goes to the SOCKS5 parser too, which closes it without an answer. */
    if ((p & PROXY_SOCKS5) && (data[0] == 0x05 || data[0] == 0x04 || !(p & PROXY_HTTP))) {
        c->kind = CONN_SOCKS5;
        socks5_init(&c->s5, &c->srv->auth);
    } else {
        c->kind = CONN_HTTP;
    }
}

static void dispatch(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len)
{
    if (c->kind == CONN_SNIFF)
        sniff(c, data);
    switch (c->phase) {
    case PH_HEAD:
    case PH_HTTP_BODY:
        if (c->kind == CONN_SOCKS5)
            socks5_conn_data(c, rb, data, len);
        else
            httpproxy_conn_data(c, rb, data, len);
        break;
    case PH_RELAY:
        conn_up_write_ref(c, rb, data, len);
        break;
    case PH_DIALING:
    case PH_HTTP_WAIT:
        conn_hold(c, rb, data, len);
        break; /* not reading; cannot happen */
    default:
        break; /* UDP control connection, finishing: input is ignored */
    }
}

static void on_client_eof(struct conn *c)
{
    c->client_eof = 1;
    conn_sync_read(c);
    switch (c->phase) {
    case PH_RELAY:
        if (c->up)
            c->up->ops->shutdown(c->up);
        if (c->up_eof && !c->cl_pending && !c->up_pending)
            conn_close(c);
        break;
    case PH_HTTP_WAIT:
        httpproxy_conn_client_eof(c);
        break;
    default:
        conn_close(c);
        break;
    }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    struct rbuf *rb = rbuf_new(CONN_READ_BUF);
    *buf = uv_buf_init(rb ? (char *)rb->data : NULL, rb ? CONN_READ_BUF : 0);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = h->data;
    struct rbuf *rb = buf->base ? (struct rbuf *)(buf->base - offsetof(struct rbuf, data)) : NULL;
    if (nread > 0 && !c->closing) {
        c->cur = rb;
        dispatch(c, rb, (const uint8_t *)buf->base, (size_t)nread);
        c->cur = NULL;
    } else if (nread == UV_EOF) {
        on_client_eof(c);
    } else if (nread < 0) {
        conn_close(c);
    }
    rbuf_unref(rb);
}

static void client_read_start(struct conn *c)
{
    uv_read_start((uv_stream_t *)&c->client, alloc_cb, read_cb);
}

/* ---- upstream side ---- */

void conn_up_sync_read(struct conn *c)
{
    if (!c->up || !c->up_connected || c->closing)
        return;
    if (c->up_want_read && !c->up_bp_paused && !c->up_eof)
        c->up->ops->read_start(c->up);
    else
        c->up->ops->read_stop(c->up);
}

static void on_up_written(void *arg, int err)
{
    struct up_write *uw = arg;
    struct conn *c = uw->c;
    c->up_pending -= uw->len;
    rbuf_unref(uw->rb);
    int stale = uw->s != c->up;
    free(uw);
    if (c->closing || stale)
        return;
    if (err) {
        conn_log(c, PROXY_LOG_DEBUG, "upstream write: %s", proxy_strerror(err));
        conn_close(c);
        return;
    }
    if (c->bp_paused && c->up_pending <= CONN_LOW_WATER) {
        c->bp_paused = 0;
        conn_sync_read(c);
    }
    if (c->phase == PH_RELAY && c->client_eof && c->up_eof && !c->cl_pending && !c->up_pending)
        conn_close(c);
}

void conn_up_write_ref(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len)
{
    if (c->closing || !c->up || len == 0)
        return;
    struct up_write *uw = malloc(sizeof(*uw));
    if (!uw) {
        conn_close(c);
        return;
    }
    uw->c = c;
    uw->s = c->up;
    uw->rb = rb;
    uw->len = len;
    rb->refs++;
    int err = c->up->ops->write(c->up, data, len, on_up_written, uw);
    if (err) {
        rbuf_unref(rb);
        free(uw);
        conn_close(c);
        return;
    }
    c->up_pending += len;
    if (c->up_pending > CONN_HIGH_WATER && !c->bp_paused) {
        c->bp_paused = 1;
        conn_sync_read(c);
    }
}

void conn_up_write_copy(struct conn *c, const void *data, size_t len)
{
    struct rbuf *rb = rbuf_new(len);
    if (!rb) {
        conn_close(c);
        return;
    }
    memcpy(rb->data, data, len);
    conn_up_write_ref(c, rb, rb->data, len);
    rbuf_unref(rb);
}

static void up_on_connect(void *ud, int err, const struct sockaddr *local)
{
    struct conn *c = ud;
    if (c->closing)
        return;
    if (err)
        conn_log(c, PROXY_LOG_INFO, "upstream: %s", proxy_strerror(err));
    else
        c->up_connected = 1;
    if (c->kind == CONN_SOCKS5)
        socks5_conn_connected(c, err, local);
    else
        httpproxy_conn_connected(c, err);
}

static void up_on_read(void *ud, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    if (c->closing)
        return;
    if (c->kind == CONN_HTTP && c->phase != PH_RELAY)
        httpproxy_conn_up_read(c, data, len);
    else
        conn_client_write(c, data, len);
}

static void up_on_eof(void *ud)
{
    struct conn *c = ud;
    if (c->closing)
        return;
    c->up_eof = 1;
    if (c->kind == CONN_HTTP && c->phase != PH_RELAY) {
        httpproxy_conn_up_eof(c);
        return;
    }
    client_shutdown(c); /* libuv sends the FIN after the queued writes */
    if (c->client_eof && !c->cl_pending && !c->up_pending)
        conn_close(c);
}

static void up_on_error(void *ud, int err)
{
    struct conn *c = ud;
    if (c->closing)
        return;
    conn_log(c, PROXY_LOG_DEBUG, "upstream: %s", proxy_strerror(err));
    if (c->kind == CONN_HTTP && c->phase != PH_RELAY && !c->resp_started) {
        httpproxy_conn_up_eof(c); /* answers 502 */
        return;
    }
    conn_close(c);
}

static void up_on_close(void *ud)
{
    conn_unref(ud);
}

static const struct proxy_stream_cbs up_cbs = {
    .on_connect = up_on_connect,
    .on_read = up_on_read,
    .on_eof = up_on_eof,
    .on_error = up_on_error,
    .on_close = up_on_close,
};

int conn_dial(struct conn *c, const struct proxy_target *t)
{
    const struct proxy_dialer *d = &c->srv->cfg.dialer;
    char buf[PROXY_NAME_MAX + 16];
    conn_log(c, PROXY_LOG_DEBUG, "dialing %s", proxy_target_str(t, buf, sizeof(buf)));
    c->up = d->dial(d->ctx, t, &up_cbs, c);
    if (!c->up)
        return PROXY_E_OTHER;
    c->open++;
    c->up_connected = c->up_eof = c->up_want_read = c->up_bp_paused = 0;
    c->phase = PH_DIALING;
    c->want_read = 0;
    conn_sync_read(c);
    return 0;
}

void conn_up_close(struct conn *c)
{
    struct proxy_stream *s = c->up;
    c->up = NULL;
    c->up_connected = 0;
    if (s)
        s->ops->close(s);
}

void conn_relay_start(struct conn *c)
{
    c->phase = PH_RELAY;
    if (c->hold) {
        struct rbuf *rb = c->hold;
        c->hold = NULL;
        conn_up_write_ref(c, rb, rb->data + c->hold_off, c->hold_len);
        rbuf_unref(rb);
        c->hold_len = 0;
    }
    if (c->closing)
        return;
    if (c->client_eof && c->up)
        c->up->ops->shutdown(c->up);
    c->up_want_read = 1;
    conn_up_sync_read(c);
    c->want_read = 1;
    conn_sync_read(c);
}

/* ---- accepting ---- */

void conn_accept(struct proxy_server *srv)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    c->id = ++srv->next_id;
    uv_tcp_init(srv->loop, &c->client);
    uv_timer_init(srv->loop, &c->timer);
    c->client.data = c;
    c->timer.data = c;
    c->open = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->client) != 0) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
                     ntohs(((struct sockaddr_in *)&ss)->sin_port));
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        }
    }
    if (srv->nconns > srv->cfg.max_connections) {
        conn_log(c, PROXY_LOG_WARN, "connection limit %u reached, refusing",
                 srv->cfg.max_connections);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    c->phase = PH_HEAD;
    c->want_read = 1;
    conn_head_timer(c, srv->cfg.head_timeout_ms);
    conn_sync_read(c);
}
