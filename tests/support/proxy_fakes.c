/* Test doubles for proxy/ (see proxy_fakes.h). */
#include "proxy_fakes.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

struct px_fake_stream *px_fake_of(struct proxy_stream *s)
{
    return container_of(s, struct px_fake_stream, base);
}

static int f_write(struct proxy_stream *s, const uint8_t *data, size_t len, proxy_write_cb cb,
                   void *arg)
{
    (void)data;
    struct px_fake_stream *f = px_fake_of(s);
    assert_true(f->nw < PX_FAKE_WRITES);
    f->wcb[f->nw] = cb;
    f->warg[f->nw] = arg;
    f->nw++;
    f->bytes += len;
    return 0;
}

static ssize_t f_try_write(struct proxy_stream *s, const uint8_t *data, size_t len)
{
    (void)data;
    struct px_fake_stream *f = px_fake_of(s);
    assert_int_equal(f->done, f->nw); /* never with a write outstanding */
    size_t n = len < f->take ? len : f->take;
    f->taken += n;
    return (ssize_t)n;
}

static void f_shutdown(struct proxy_stream *s)
{
    px_fake_of(s)->shutdowns++;
}

static void f_read_start(struct proxy_stream *s)
{
    px_fake_of(s)->reading = true;
    px_fake_of(s)->read_starts++;
}

static void f_read_stop(struct proxy_stream *s)
{
    px_fake_of(s)->reading = false;
    px_fake_of(s)->read_stops++;
}

static void f_reset(struct proxy_stream *s)
{
    px_fake_of(s)->resets++;
}

static void f_close(struct proxy_stream *s)
{
    px_fake_of(s)->closes++;
}

static const struct proxy_stream_ops fake_ops = {
    .write = f_write,
    .try_write = f_try_write,
    .shutdown = f_shutdown,
    .read_start = f_read_start,
    .read_stop = f_read_stop,
    .reset = f_reset,
    .close = f_close,
};

void px_fake_stream_init(struct px_fake_stream *f, const struct proxy_stream_cbs *cbs, void *ud)
{
    memset(f, 0, sizeof(*f));
    f->base.ops = &fake_ops;
    f->cbs = cbs;
    f->ud = ud;
}

void px_fake_complete(struct px_fake_stream *f, int err)
{
    assert_true(f->done < f->nw);
    f->done++;
    f->wcb[f->done - 1](f->warg[f->done - 1], err);
}

void px_fake_gone(struct px_fake_stream *f)
{
    while (f->done < f->nw)
        px_fake_complete(f, -ECANCELED);
    f->cbs->on_close(f->ud);
}

/* ---- a stream on a loop ---- */

static void ls_closed(uv_handle_t *h)
{
    struct px_loop_stream *s = h->data;
    s->cbs.on_close(s->ud);
    s->t->on_closes++;
    free(s);
}

static void ls_tick(uv_timer_t *t)
{
    struct px_loop_stream *s = t->data;
    if (s->closed)
        return;
    if (!s->connected) {
        s->connected = true;
        s->cbs.on_connect(s->ud, s->connect_err, s->connect_err ? NULL : &s->local);
        return;
    }
    if (s->wcb) {
        proxy_write_cb cb = s->wcb;
        s->wcb = NULL;
        cb(s->warg, 0);
        if (!s->closed && s->answer)
            s->answer(s);
    }
}

static int ls_write(struct proxy_stream *ps, const uint8_t *data, size_t len, proxy_write_cb cb,
                    void *arg)
{
    struct px_loop_stream *s = container_of(ps, struct px_loop_stream, base);
    if (s->wcb || len > sizeof(s->last))
        return -EIO; /* the proxies never have two writes in flight to these */
    memcpy(s->last, data, len);
    s->last_len = len;
    s->wcb = cb;
    s->warg = arg;
    uv_timer_start(&s->timer, ls_tick, 0, 0);
    return 0;
}

static void ls_noop(struct proxy_stream *ps)
{
    (void)ps;
}

static void ls_close(struct proxy_stream *ps)
{
    struct px_loop_stream *s = container_of(ps, struct px_loop_stream, base);
    assert_false(s->closed);
    s->closed = true;
    s->t->closes++;
    if (s->wcb)
        s->wcb(s->warg, -ECANCELED);
    uv_close((uv_handle_t *)&s->timer, ls_closed);
}

static void ls_route(struct proxy_stream *ps, struct proxy_route *out)
{
    *out = container_of(ps, struct px_loop_stream, base)->route;
}

static const struct proxy_stream_ops loop_ops = {
    .route = ls_route,
    .write = ls_write,
    .shutdown = ls_noop,
    .read_start = ls_noop,
    .read_stop = ls_noop,
    .reset = ls_close,
    .close = ls_close,
};

struct px_loop_stream *px_loop_stream_new(struct px_thread *t, const struct proxy_stream_cbs *cbs,
                                          void *ud)
{
    struct px_loop_stream *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->base.ops = &loop_ops;
    s->cbs = *cbs;
    s->ud = ud;
    s->t = t;
    t->dials++;
    uv_timer_init(&t->loop, &s->timer);
    s->timer.data = s;
    return s;
}

void px_loop_stream_start(struct px_loop_stream *s)
{
    if (!s->never)
        uv_timer_start(&s->timer, ls_tick, 0, 0);
}

/* ---- a server on its own thread ---- */

static void on_server_closed(void *arg)
{
    struct px_thread *t = arg;
    uv_close((uv_handle_t *)&t->stop, NULL);
    uv_close((uv_handle_t *)&t->call, NULL);
}

static void on_call(uv_async_t *a)
{
    struct px_thread *t = container_of(a, struct px_thread, call);
    pthread_mutex_lock(&t->mu);
    if (t->fn) {
        t->fn(t, t->fn_arg);
        t->fn = NULL;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

void px_thread_call(struct px_thread *t, void (*fn)(struct px_thread *t, void *arg), void *arg)
{
    pthread_mutex_lock(&t->mu);
    t->fn = fn;
    t->fn_arg = arg;
    uv_async_send(&t->call);
    while (t->fn)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

static void get_stats(struct px_thread *t, void *arg)
{
    proxy_server_stats(t->srv, arg);
}

void px_thread_stats(struct px_thread *t, struct proxy_stats *out)
{
    px_thread_call(t, get_stats, out);
}

static void on_stop(uv_async_t *a)
{
    struct px_thread *t = container_of(a, struct px_thread, stop);
    proxy_server_close(t->srv, on_server_closed, t);
}

static void *loop_thread(void *arg)
{
    struct px_thread *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

void px_thread_start(struct px_thread *t, const struct proxy_config *cfg)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(proxy_server_new(&t->loop, cfg, &t->srv), 0);
    t->port = proxy_server_port(t->srv);
    uv_async_init(&t->loop, &t->stop, on_stop);
    uv_async_init(&t->loop, &t->call, on_call);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    assert_int_equal(pthread_create(&t->thread, NULL, loop_thread, t), 0);
}

void px_thread_stop(struct px_thread *t)
{
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    assert_int_equal(t->dials, t->closes);
    assert_int_equal(t->dials, t->on_closes);
}

int px_thread_client(const struct px_thread *t)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

void px_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
}
