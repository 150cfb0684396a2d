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

#include "proxy_fakes.h"

/* The target port picks what the fake upstream does. */
enum { PORT_OK = 80, PORT_REFUSED = 81, PORT_POLICY = 82, PORT_TIMEOUT = 83, PORT_SILENT = 84 };

static struct {
    struct px_thread px;
    char last_head[1024];
} g;

/* The upstream answers a request head, or closes without a word on PORT_SILENT. */
static void answer(struct px_loop_stream *s)
{
    if (!memmem(s->last, s->last_len, "\r\n\r\n", 4))
        return;
    snprintf(g.last_head, sizeof(g.last_head), "%.*s", (int)s->last_len, (const char *)s->last);
    if (s->local.port == PORT_SILENT) {
        s->cbs.on_eof(s->ud);
        return;
    }
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    s->cbs.on_read(s->ud, (const uint8_t *)resp, sizeof(resp) - 1);
}

static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    struct px_loop_stream *s = px_loop_stream_new(&g.px, cbs, ud);
    static const int errs[] = {[PORT_REFUSED - PORT_OK] = -ECONNREFUSED,
                               [PORT_POLICY - PORT_OK] = BASE_EPOLICY,
                               [PORT_TIMEOUT - PORT_OK] = -ETIMEDOUT};
    if (t->ep.port >= PORT_OK && t->ep.port < PORT_SILENT)
        s->connect_err = errs[t->ep.port - PORT_OK];
    s->local.port = t->ep.port; /* answer() tells the upstreams apart by it */
    s->answer = answer;
    px_loop_stream_start(s);
    return &s->base;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    struct proxy_config cfg = {
        .protocols = PROXY_HTTP, .dialer = {.dial = fake_dial}, .head_timeout_ms = 5000};
    px_thread_start(&g.px, &cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    px_thread_stop(&g.px);
    return 0;
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
    int fd = px_thread_client(&g.px);
    char buf[1024];
    for (int i = 0; i < 3; i++) {
        request(fd, PORT_OK, "/x");
        read_until(fd, buf, sizeof(buf), "\r\n\r\nok");
        assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
        assert_non_null(strstr(g.last_head, "GET /x HTTP/1.1\r\nHost: up.example:80\r\nX-A: 1"));
    }
    assert_int_equal(g.px.dials, 3); /* one upstream per request, one client connection */
    close(fd);
}

static void expect_status(uint16_t port, const char *status)
{
    int fd = px_thread_client(&g.px);
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
