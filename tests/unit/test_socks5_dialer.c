/*
 * The proxy with an injected dialer, as the node will plug in the netstack: every dial error
 * becomes the right SOCKS5 reply, a dial that never completes is cancelled when the client
 * goes, an in-memory stream relays both ways, and every stream is closed exactly once.
 * The proxy's loop runs in a thread; the test is a plain blocking client.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "proxy.h"

struct fake_stream {
    struct proxy_stream base;
    struct proxy_stream_cbs cbs;
    void *ud;
    uv_timer_t timer;
    int err;   /* what on_connect reports */
    int never; /* on_connect never comes */
    int connected;
    int closed;
    uint8_t echo[65536];
    size_t echo_len;
    proxy_write_cb wcb;
    void *warg;
};

static struct {
    uv_loop_t loop;
    uv_async_t stop;
    struct proxy_server *srv;
    int port;
    int dials, closes, on_closes;
    pthread_t thread;
    pthread_mutex_t lock;
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
        /* 100.64.0.1:4242, as the netstack would say */
        struct base_endpoint local = {.addr = {.family = AF_INET, .ip = {100, 64, 0, 1}},
                                      .port = 4242};
        s->cbs.on_connect(s->ud, s->err, s->err ? NULL : &local);
        return;
    }
    /* Echo what was written, then complete the write. */
    if (s->wcb) {
        proxy_write_cb cb = s->wcb;
        s->wcb = NULL;
        s->cbs.on_read(s->ud, s->echo, s->echo_len);
        cb(s->warg, 0);
    }
}

static int fs_write(struct proxy_stream *ps, const uint8_t *data, size_t len, proxy_write_cb cb,
                    void *arg)
{
    struct fake_stream *s = (struct fake_stream *)ps;
    if (s->wcb || len > sizeof(s->echo))
        return -EIO; /* the proxy never has two writes of one read in flight here */
    memcpy(s->echo, data, len);
    s->echo_len = len;
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
    struct fake_stream *s = (struct fake_stream *)ps;
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

/* The target port picks the behaviour. */
static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    struct fake_stream *s = calloc(1, sizeof(*s));
    s->base.ops = &fs_ops;
    s->cbs = *cbs;
    s->ud = ud;
    g.dials++;
    static const int errs[] = {
        0,          -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, BASE_ENXDOMAIN,
        -ETIMEDOUT, BASE_EPOLICY,  -EIO};
    if (t->ep.port < sizeof(errs) / sizeof(errs[0]))
        s->err = errs[t->ep.port];
    s->never = t->ep.port == 99;
    uv_timer_init(&g.loop, &s->timer);
    s->timer.data = s;
    if (!s->never)
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
        .protocols = PROXY_BOTH, .dialer = {.dial = fake_dial}, .head_timeout_ms = 5000};
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
    /* Every stream the proxy got was closed once and reported its close. */
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

static void read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
}

static int socks_connect(uint16_t port, uint8_t reply[10])
{
    int fd = client();
    uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, (uint8_t)(port >> 8), (uint8_t)port};
    assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    uint8_t m[2];
    read_full(fd, m, 2);
    assert_memory_equal(m, "\x05\x00", 2);
    read_full(fd, reply, 10);
    return fd;
}

static void test_error_replies(void **state)
{
    (void)state;
    static const uint8_t want[] = {0, 0x05, 0x03, 0x04, 0x04, 0x06, 0x02, 0x01};
    for (uint16_t port = 1; port < sizeof(want); port++) {
        uint8_t rep[10];
        int fd = socks_connect(port, rep);
        assert_int_equal(rep[1], want[port]);
        uint8_t b;
        assert_int_equal(read(fd, &b, 1), 0); /* and the connection ends */
        close(fd);
    }
}

static void test_relay_and_bound_address(void **state)
{
    (void)state;
    uint8_t rep[10];
    int fd = socks_connect(0, rep);
    static const uint8_t want[] = {5, 0, 0, 1, 100, 64, 0, 1, 0x10, 0x92};
    assert_memory_equal(rep, want, sizeof(want));
    for (int i = 0; i < 50; i++) {
        char msg[64], back[64];
        int n = snprintf(msg, sizeof(msg), "message %d through the fake stream", i);
        assert_int_equal(write(fd, msg, (size_t)n), n);
        read_full(fd, (uint8_t *)back, (size_t)n);
        assert_memory_equal(back, msg, (size_t)n);
    }
    close(fd);
}

static void test_dial_cancelled(void **state)
{
    (void)state;
    /* The dial never completes; the client gives up. The stream must still be closed. */
    int fd = client();
    uint8_t req[] = {5, 1, 0, 5, 1, 0, 3, 4, 'm', 'e', 's', 'h', 0, 99};
    assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    uint8_t m[2];
    read_full(fd, m, 2);
    close(fd);
    /* HTTP CONNECT to the same never-completing target, given up the same way. */
    fd = client();
    const char *c = "CONNECT mesh:99 HTTP/1.1\r\n\r\n";
    assert_int_equal(write(fd, c, strlen(c)), (ssize_t)strlen(c));
    close(fd);
    /* teardown checks dials == closes == on_closes once the loop has drained */
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_and_bound_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dial_cancelled, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
