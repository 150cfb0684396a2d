/*
 * The link: set-up (accept, connect, sink), the read path (socket -> TLS -> owner), the write
 * path (owner appends -> flush swaps pending into flight, through TLS when there is TLS ->
 * uv_write -> on_drained asks for more), and close.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "link.h"

/* A buffer that grew past this is given back once empty, so idle clients stay small. */
#define BUF_KEEP_CAP (64 * 1024)

static int buf_reserve(struct derp_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t ncap = b->cap ? b->cap : 512;
    while (ncap - b->len < n)
        ncap *= 2;
    uint8_t *p = realloc(b->p, ncap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = ncap;
    return 0;
}

static void buf_reset(struct derp_buf *b)
{
    b->len = 0;
    if (b->cap > BUF_KEEP_CAP) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

static void buf_free(struct derp_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void link_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct derp_link *l = container_of((uv_tcp_t *)h, struct derp_link, tcp);
    *buf = uv_buf_init((char *)l->shared->rx, sizeof(l->shared->rx));
}

static int link_plain(void *arg, const uint8_t *p, size_t n)
{
    struct derp_link *l = arg;
    if (l->state != DERP_LINK_OPEN)
        return 1;
    return l->ops->on_data(l, p, n);
}

static void link_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct derp_link *l = container_of((uv_tcp_t *)s, struct derp_link, tcp);
    if (n < 0) {
        if (l->state == DERP_LINK_OPEN)
            l->ops->on_error(l, (int)n);
        return;
    }
    if (n == 0 || l->state != DERP_LINK_OPEN)
        return;
    if (!l->tls.ssl) {
        l->ops->on_data(l, (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    int rc = derp_tls_input(&l->tls, (const uint8_t *)buf->base, (size_t)n, l->shared->plain,
                            sizeof(l->shared->plain), link_plain, l);
    if (rc < 0 && l->state == DERP_LINK_OPEN) {
        l->ops->on_error(l, rc);
        return;
    }
    derp_link_flush(l); /* handshake records, and anything the owner appended */
}

static int link_start(struct derp_link *l, SSL_CTX *ctx, bool server, const char *sni)
{
    if (ctx) {
        int rc = derp_tls_init(&l->tls, ctx, server, sni);
        if (rc != 0)
            return rc;
    }
    l->state = DERP_LINK_OPEN;
    uv_tcp_nodelay(&l->tcp, 1);
    return uv_read_start((uv_stream_t *)&l->tcp, link_alloc, link_read);
}

static void link_init(struct derp_link *l, const struct derp_link_ops *ops,
                      struct derp_link_shared *shared)
{
    memset(l, 0, sizeof(*l));
    l->ops = ops;
    l->shared = shared;
}

int derp_link_accept(struct derp_link *l, uv_stream_t *server, SSL_CTX *ctx,
                     const struct derp_link_ops *ops, struct derp_link_shared *shared)
{
    link_init(l, ops, shared);
    int rc = uv_tcp_init(server->loop, &l->tcp);
    if (rc != 0)
        return rc; /* nothing to close: report by on_closed never comes */
    l->state = DERP_LINK_NEW;
    rc = uv_accept(server, (uv_stream_t *)&l->tcp);
    return rc != 0 ? rc : link_start(l, ctx, true, NULL);
}

struct connect_ctx {
    SSL_CTX *ctx;
    char sni[BASE_HOST_MAX + 1];
};

static void link_connected(uv_connect_t *req, int status)
{
    struct derp_link *l = container_of(req, struct derp_link, connect_req);
    struct connect_ctx *cc = req->data;
    req->data = NULL;
    if (l->state != DERP_LINK_CONNECTING) {
        free(cc);
        return;
    }
    int rc = status != 0 ? status : link_start(l, cc->ctx, false, cc->sni[0] ? cc->sni : NULL);
    free(cc);
    if (rc != 0) {
        l->state = DERP_LINK_OPEN;
        l->ops->on_error(l, rc);
        return;
    }
    l->ops->on_connect(l);
    derp_link_flush(l);
}

int derp_link_connect(struct derp_link *l, uv_loop_t *loop, const struct sockaddr *sa, SSL_CTX *ctx,
                      const char *sni, const struct derp_link_ops *ops,
                      struct derp_link_shared *shared)
{
    link_init(l, ops, shared);
    int rc = uv_tcp_init(loop, &l->tcp);
    if (rc != 0)
        return rc;
    struct connect_ctx *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return -ENOMEM;
    cc->ctx = ctx;
    if (sni)
        snprintf(cc->sni, sizeof(cc->sni), "%s", sni);
    l->connect_req.data = cc;
    l->state = DERP_LINK_CONNECTING;
    rc = uv_tcp_connect(&l->connect_req, &l->tcp, sa, link_connected);
    if (rc != 0) {
        free(cc);
        l->connect_req.data = NULL;
    }
    return rc;
}

int derp_link_sink(struct derp_link *l, uv_loop_t *loop, const struct derp_link_ops *ops,
                   struct derp_link_shared *shared)
{
    link_init(l, ops, shared);
    l->kind = DERP_LINK_SINK;
    int rc = uv_tcp_init(loop, &l->tcp);
    if (rc == 0)
        l->state = DERP_LINK_OPEN;
    return rc;
}

uint8_t *derp_link_reserve(struct derp_link *l, size_t n)
{
    if (buf_reserve(&l->pend, n) != 0)
        return NULL;
    return l->pend.p + l->pend.len;
}

void derp_link_commit(struct derp_link *l, size_t n)
{
    l->pend.len += n;
}

int derp_link_append(struct derp_link *l, const void *p, size_t n)
{
    uint8_t *dst = derp_link_reserve(l, n);
    if (!dst)
        return -ENOMEM;
    memcpy(dst, p, n);
    derp_link_commit(l, n);
    return 0;
}

int derp_link_write_now(struct derp_link *l, const uv_buf_t *bufs, unsigned n)
{
    size_t done = 0;
    if (l->kind == DERP_LINK_TCP && !l->tls.ssl && l->state == DERP_LINK_OPEN &&
        !l->write_started && !l->pend.len) {
        int rc = uv_try_write((uv_stream_t *)&l->tcp, bufs, n);
        done = rc > 0 ? (size_t)rc : 0;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t skip = done < bufs[i].len ? done : bufs[i].len;
        done -= skip;
        if (skip < bufs[i].len && derp_link_append(l, bufs[i].base + skip, bufs[i].len - skip) != 0)
            return -ENOMEM;
    }
    derp_link_flush(l);
    return 0;
}

size_t derp_link_queued(const struct derp_link *l)
{
    return l->pend.len + l->fly.len;
}

uint64_t derp_link_write_age(const struct derp_link *l, uint64_t now)
{
    return l->write_started ? now - l->write_started + 1 : 0;
}

static void link_closed(uv_handle_t *h)
{
    struct derp_link *l = container_of((uv_tcp_t *)h, struct derp_link, tcp);
    l->state = DERP_LINK_CLOSED;
    buf_free(&l->pend);
    buf_free(&l->fly);
    if (l->tls.ssl)
        derp_tls_free(&l->tls);
    free(l->connect_req.data);
    l->connect_req.data = NULL;
    l->ops->on_closed(l);
}

void derp_link_close(struct derp_link *l)
{
    if (l->state == DERP_LINK_CLOSING || l->state == DERP_LINK_CLOSED)
        return;
    l->state = DERP_LINK_CLOSING;
    uv_close((uv_handle_t *)&l->tcp, link_closed);
}

void derp_link_close_after_flush(struct derp_link *l)
{
    if (l->state != DERP_LINK_OPEN)
        return;
    l->state = DERP_LINK_DRAINING;
    uv_read_stop((uv_stream_t *)&l->tcp);
    derp_link_flush(l);
}

static void link_written(uv_write_t *req, int status)
{
    struct derp_link *l = container_of(req, struct derp_link, wreq);
    l->write_started = 0;
    buf_reset(&l->fly);
    if (l->state == DERP_LINK_CLOSING || l->state == DERP_LINK_CLOSED)
        return;
    if (status < 0) {
        if (l->state == DERP_LINK_OPEN)
            l->ops->on_error(l, status);
        else
            derp_link_close(l);
        return;
    }
    if (l->state == DERP_LINK_OPEN)
        l->ops->on_drained(l);
    derp_link_flush(l);
}

/* Moves pending plaintext into the in-flight buffer (as ciphertext with TLS). */
static int link_fill_flight(struct derp_link *l)
{
    if (!l->tls.ssl) {
        struct derp_buf t = l->fly;
        l->fly = l->pend;
        l->pend = t;
        return 0;
    }
    if (l->pend.len) {
        int rc = derp_tls_write(&l->tls, l->pend.p, l->pend.len);
        if (rc < 0)
            return rc;
        if (rc == 1)
            buf_reset(&l->pend);
    }
    size_t n = derp_tls_out_pending(&l->tls);
    if (n && buf_reserve(&l->fly, n) != 0)
        return -ENOMEM;
    l->fly.len += derp_tls_out_read(&l->tls, l->fly.p + l->fly.len, n);
    return 0;
}

static void link_flush_sink(struct derp_link *l)
{
    for (int i = 0; i < 64 && l->pend.len && l->state == DERP_LINK_OPEN; i++) {
        buf_reset(&l->pend);
        l->ops->on_drained(l);
    }
    buf_reset(&l->pend);
    if (l->state == DERP_LINK_DRAINING)
        derp_link_close(l);
}

void derp_link_flush(struct derp_link *l)
{
    if ((l->state != DERP_LINK_OPEN && l->state != DERP_LINK_DRAINING) || l->write_started)
        return;
    if (l->kind == DERP_LINK_SINK) {
        link_flush_sink(l);
        return;
    }
    int rc = link_fill_flight(l);
    if (rc == 0 && l->fly.len) {
        uv_buf_t b = uv_buf_init((char *)l->fly.p, (unsigned)l->fly.len);
        rc = uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, link_written);
        if (rc == 0) {
            l->write_started = uv_now(l->tcp.loop);
            return;
        }
    }
    if (rc != 0 && l->state == DERP_LINK_OPEN)
        l->ops->on_error(l, rc);
    else if (rc != 0 || (l->state == DERP_LINK_DRAINING && !l->pend.len))
        derp_link_close(l);
}

void derp_link_pause(struct derp_link *l)
{
    if (!l->paused && l->kind == DERP_LINK_TCP && l->state == DERP_LINK_OPEN)
        uv_read_stop((uv_stream_t *)&l->tcp);
    l->paused = true;
}

void derp_link_resume(struct derp_link *l)
{
    if (l->paused && l->kind == DERP_LINK_TCP && l->state == DERP_LINK_OPEN)
        uv_read_start((uv_stream_t *)&l->tcp, link_alloc, link_read);
    l->paused = false;
}

const char *derp_link_peer(const struct derp_link *l, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct base_endpoint ep;
    if (l->kind != DERP_LINK_TCP ||
        uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        base_endpoint_from_sockaddr(&ep, (struct sockaddr *)&ss) != 0) {
        snprintf(buf, cap, "?");
        return buf;
    }
    return base_endpoint_format(&ep, buf, cap);
}
