/*
 * The HTTP proxy session against an injected dialer whose streams answer by themselves: a
 * request reaches the upstream rewritten and its response comes back, the client connection
 * is kept across requests (one upstream per request), and every dial error becomes its status
 * (502, 403, 504), as does an upstream that closes without answering. Every stream is closed
 * once. The proxy's loop runs in a thread; the test is a plain blocking client.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "proxy.h"

/* The target port picks what the fake upstream does. */
enum { PORT_OK = 80, PORT_REFUSED = 81, PORT_POLICY = 82, PORT_TIMEOUT = 83, PORT_SILENT = 84 };

struct fake_stream {
    struct proxy_stream base;
    struct proxy_stream_cbs cbs;
    void *ud;
    uv_timer_t timer;
    uint16_t port;
    int connected, closed, answered;
    char req[1024];
    size_t req_len;
    proxy_write_cb wcb;
    void *warg;
};

static struct {
    uv_loop_t loop;
    uv_async_t stop;
    struct proxy_server *srv;
    int port;
    int dials, closes, on_closes;
    char last_head[1024];
    pthread_t thread;
} g;

static void fs_closed(uv_handle_t *h)
{
    struct fake_stream *s = h->data;
    s->cbs.on_close(s->ud);
    g.on_closes++;
    free(s);
}

static void fs_tick(uv_timer_t *t)
{
    struct fake_stream *s = t->data;
    if (s->closed)
        return;
    if (!s->connected) {
        s->connected = 1;
        static const int errs[] = {[PORT_REFUSED - PORT_OK] = -ECONNREFUSED,
                                   [PORT_POLICY - PORT_OK] = BASE_EPOLICY,
                                   [PORT_TIMEOUT - PORT_OK] = -ETIMEDOUT};
        int err = s->port < PORT_SILENT ? errs[s->port - PORT_OK] : 0;
        s->cbs.on_connect(s->ud, err, NULL);
        return;
    }
    if (s->wcb) {
        proxy_write_cb cb = s->wcb;
        s->wcb = NULL;
        cb(s->warg, 0);
    }
    if (!s->answered && memmem(s->req, s->req_len, "\r\n\r\n", 4)) {
        s->answered = 1;
        snprintf(g.last_head, sizeof(g.last_head), "%.*s", (int)s->req_len, s->req);
        if (s->port == PORT_SILENT) {
            s->cbs.on_eof(s->ud);
            return;
        }
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        s->cbs.on_read(s->ud, (const uint8_t *)resp, sizeof(resp) - 1);
    }
}

static int fs_write(struct proxy_stream *ps, const uint8_t *data, size_t len, proxy_write_cb cb,
                    void *arg)
{
    struct fake_stream *s = container_of(ps, struct fake_stream, base);
    if (s->wcb || s->req_len + len > sizeof(s->req))
        return -EIO;
    memcpy(s->req + s->req_len, data, len);
    s->req_len += len;
    s->wcb = cb;
    s->warg = arg;
    uv_timer_start(&s->timer, fs_tick, 0, 0);
    return 0;
}

static void fs_noop(struct proxy_stream *ps)
{
    (void)ps;
}

static void fs_close(struct proxy_stream *ps)
{
    struct fake_stream *s = container_of(ps, struct fake_stream, base);
    assert_false(s->closed);
    s->closed = 1;
    g.closes++;
    if (s->wcb)
        s->wcb(s->warg, -ECANCELED);
    uv_close((uv_handle_t *)&s->timer, fs_closed);
}

static const struct proxy_stream_ops fs_ops = {
    .write = fs_write,
    .shutdown = fs_noop,
    .read_start = fs_noop,
    .read_stop = fs_noop,
    .reset = fs_close,
    .close = fs_close,
};

static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    struct fake_stream *s = calloc(1, sizeof(*s));
    s->base.ops = &fs_ops;
    s->cbs = *cbs;
    s->ud = ud;
    s->port = t->ep.port;
    g.dials++;
    uv_timer_init(&g.loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, fs_tick, 0, 0);
    return &s->base;
}

static void on_server_closed(void *arg)
{
    (void)arg;
    uv_close((uv_handle_t *)&g.stop, NULL);
}

static void on_stop(uv_async_t *a)
{
    (void)a;
    proxy_server_close(g.srv, on_server_closed, NULL);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&g.loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    uv_loop_init(&g.loop);
    uv_async_init(&g.loop, &g.stop, on_stop);
    struct proxy_config cfg = {
        .protocols = PROXY_HTTP, .dialer = {.dial = fake_dial}, .head_timeout_ms = 5000};
    assert_int_equal(proxy_server_new(&g.loop, &cfg, &g.srv), 0);
    g.port = proxy_server_port(g.srv);
    pthread_create(&g.thread, NULL, loop_thread, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&g.stop);
    pthread_join(g.thread, NULL);
    assert_int_equal(uv_loop_close(&g.loop), 0);
    assert_int_equal(g.dials, g.closes);
    assert_int_equal(g.dials, g.on_closes);
    return 0;
}

static int client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until want has arrived (or the connection ends); returns what came. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want)
{
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, want))
            break;
    }
    buf[got] = 0;
    return got;
}

static void request(int fd, uint16_t port, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET http://up.example:%u%s HTTP/1.1\r\nX-A: 1\r\n\r\n",
                     port, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
}

static void test_keep_alive(void **state)
{
    (void)state;
    int fd = client();
    char buf[1024];
    for (int i = 0; i < 3; i++) {
        request(fd, PORT_OK, "/x");
        read_until(fd, buf, sizeof(buf), "\r\n\r\nok");
        assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
        assert_non_null(strstr(g.last_head, "GET /x HTTP/1.1\r\nHost: up.example:80\r\nX-A: 1"));
    }
    assert_int_equal(g.dials, 3); /* one upstream per request, one client connection */
    close(fd);
}

static void expect_status(uint16_t port, const char *status)
{
    int fd = client();
    char buf[1024];
    request(fd, port, "/");
    read_until(fd, buf, sizeof(buf), "no such text: until the connection ends");
    assert_true(strncmp(buf, status, strlen(status)) == 0);
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    close(fd);
}

static void test_errors(void **state)
{
    (void)state;
    expect_status(PORT_REFUSED, "HTTP/1.1 502 ");
    expect_status(PORT_POLICY, "HTTP/1.1 403 ");
    expect_status(PORT_TIMEOUT, "HTTP/1.1 504 ");
    expect_status(PORT_SILENT, "HTTP/1.1 502 ");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
