/*
 * The link: set-up (accept, connect, sink), the read path (socket -> TLS -> owner), the write
 * path (owner appends -> flush hands the pending buffer, or TLS's ciphertext, to a uv_write that
 * owns it -> when libuv holds nothing more, on_drained asks for more), and close.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "link.h"

/* A buffer that grew past this is given back once written, so idle clients stay small. */
#define BUF_KEEP_CAP (16 * 1024)

static int buf_reserve(struct derp_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t ncap = b->cap ? b->cap : 4096;
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
    uv_tcp_init(server->loop, &l->tcp); /* cannot fail: no flags */
    l->state = DERP_LINK_NEW;
    int rc = uv_accept(server, (uv_stream_t *)&l->tcp);
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
    uv_tcp_init(loop, &l->tcp); /* cannot fail: no flags */
    struct connect_ctx *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return -ENOMEM;
    cc->ctx = ctx;
    if (sni)
        snprintf(cc->sni, sizeof(cc->sni), "%s", sni);
    l->connect_req.data = cc;
    l->state = DERP_LINK_CONNECTING;
    int rc = uv_tcp_connect(&l->connect_req, &l->tcp, sa, link_connected);
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
    uv_tcp_init(loop, &l->tcp); /* cannot fail: no flags */
    l->state = DERP_LINK_OPEN;
    return 0;
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

size_t derp_link_queued(const struct derp_link *l)
{
    size_t held =
        l->kind == DERP_LINK_TCP ? uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) : 0;
    return l->pend.len + held;
}

bool derp_link_busy(const struct derp_link *l)
{
    return l->busy_since != 0;
}

uint64_t derp_link_write_age(const struct derp_link *l, uint64_t now)
{
    return l->busy_since ? now - l->busy_since + 1 : 0;
}

static void link_closed(uv_handle_t *h)
{
    struct derp_link *l = container_of((uv_tcp_t *)h, struct derp_link, tcp);
    l->state = DERP_LINK_CLOSED;
    buf_free(&l->pend);
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

/* One uv_write and the buffer it owns. */
struct link_write {
    uv_write_t req;
    struct derp_link *link;
    uint8_t *buf;
};

static void link_written(uv_write_t *req, int status)
{
    struct link_write *w = container_of(req, struct link_write, req);
    struct derp_link *l = w->link;
    free(w->buf);
    free(w);
    l->writes--;
    if (l->state == DERP_LINK_CLOSING || l->state == DERP_LINK_CLOSED)
        return;
    if (status < 0) {
        if (l->state == DERP_LINK_OPEN)
            l->ops->on_error(l, status);
        else
            derp_link_close(l);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) != 0)
        return;
    l->busy_since = 0;
    if (l->state == DERP_LINK_OPEN)
        l->ops->on_drained(l);
    derp_link_flush(l);
}

/* The bytes to write now: the pending buffer itself (taken out of the link), or TLS's
 * ciphertext. out->len 0 means nothing to write. */
static int link_take_output(struct derp_link *l, struct derp_buf *out)
{
    memset(out, 0, sizeof(*out));
    if (!l->tls.ssl) {
        *out = l->pend;
        memset(&l->pend, 0, sizeof(l->pend));
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
    if (n && buf_reserve(out, n) != 0)
        return -ENOMEM;
    out->len = n ? derp_tls_out_read(&l->tls, out->p, n) : 0;
    return 0;
}

/* Hands b (from offset off) to a uv_write that owns it. */
static int link_write_rest(struct derp_link *l, struct derp_buf *b, size_t off)
{
    struct link_write *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->link = l;
    w->buf = b->p;
    uv_buf_t ub = uv_buf_init((char *)b->p + off, (unsigned)(b->len - off));
    int rc = uv_write(&w->req, (uv_stream_t *)&l->tcp, &ub, 1, link_written);
    if (rc != 0) {
        free(w);
        return rc;
    }
    memset(b, 0, sizeof(*b));
    l->writes++;
    if (!l->busy_since && uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) != 0)
        l->busy_since = uv_now(l->tcp.loop);
    return 0;
}

/* What the kernel takes at once costs no allocation: the buffer comes back for the next batch.
 * Only a remainder waits in a uv_write (so memory held is what the kernel refused). */
static int link_write(struct derp_link *l)
{
    struct derp_buf b;
    int rc = link_take_output(l, &b);
    size_t off = 0;
    if (rc == 0 && b.len && !l->writes) {
        uv_buf_t ub = uv_buf_init((char *)b.p, (unsigned)b.len);
        int n = uv_try_write((uv_stream_t *)&l->tcp, &ub, 1);
        off = n > 0 ? (size_t)n : 0;
    }
    if (rc == 0 && off < b.len)
        rc = link_write_rest(l, &b, off);
    if (b.p && !l->tls.ssl && !l->pend.p) {
        b.len = 0;
        l->pend = b; /* reuse it for the next batch */
        buf_reset(&l->pend);
    } else {
        free(b.p);
    }
    return rc;
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
    if (l->state != DERP_LINK_OPEN && l->state != DERP_LINK_DRAINING)
        return;
    if (l->kind == DERP_LINK_SINK) {
        link_flush_sink(l);
        return;
    }
    int rc = link_write(l);
    if (rc != 0 && l->state == DERP_LINK_OPEN)
        l->ops->on_error(l, rc);
    else if (rc != 0 || (l->state == DERP_LINK_DRAINING && !l->writes && !l->pend.len))
        derp_link_close(l);
}

void derp_link_trim(struct derp_link *l)
{
    if (!l->pend.len)
        buf_free(&l->pend);
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
