/*
 * proxy/direct_stream.c's accepted streams over real loopback sockets: a shutdown with nothing
 * queued sends the FIN from inside the call (the client sees the last bytes and the end
 * together, without another loop turn), a shutdown behind queued bytes sends it only after
 * all of them, and the accepted socket has the proxy's TCP keepalive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "direct.h"
#include "proxy.h"

static struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    struct proxy_stream *s;
    int client; /* the plain socket the test reads from */
    int closed, writes_done;
} g;

static void cb_read(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
}

static void cb_void(void *ud)
{
    (void)ud;
}

static void cb_error(void *ud, int err)
{
    (void)ud;
    fail_msg("stream error %d", err);
}

static void cb_close(void *ud)
{
    (void)ud;
    g.closed++;
}

static const struct proxy_stream_cbs cbs = {
    .on_read = cb_read, .on_eof = cb_void, .on_error = cb_error, .on_close = cb_close};

static void on_connection(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    g.s = proxy_stream_accept(server, &cbs, NULL, NULL, NULL);
    assert_non_null(g.s);
}

/* A listener on 127.0.0.1, a blocking client connected to it, the accepted stream in g.s. */
static void rig_open(void)
{
    memset(&g, 0, sizeof(g));
    assert_int_equal(uv_loop_init(&g.loop), 0);
    uv_tcp_init(&g.loop, &g.listener);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(uv_tcp_bind(&g.listener, (struct sockaddr *)&sin, 0), 0);
    int small = 4096; /* accepted sockets inherit it: a large write has to wait for the reader */
    assert_int_equal(uv_send_buffer_size((uv_handle_t *)&g.listener, &small), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&g.listener, 8, on_connection), 0);
    int len = sizeof(sin);
    uv_tcp_getsockname(&g.listener, (struct sockaddr *)&sin, &len);
    g.client = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(g.client >= 0);
    setsockopt(g.client, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(connect(g.client, (struct sockaddr *)&sin, sizeof(sin)), 0);
    while (!g.s)
        uv_run(&g.loop, UV_RUN_ONCE);
}

static void rig_close(void)
{
    g.s->ops->close(g.s);
    uv_close((uv_handle_t *)&g.listener, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.closed, 1);
    assert_int_equal(uv_loop_close(&g.loop), 0);
    close(g.client);
}

/* What the client can read without the loop running: bytes until EOF (returns the count), or
 * -1 if it has to wait. The wait is bounded so that a missing FIN fails instead of hanging;
 * loopback delivers within the sending call, or from ksoftirqd soon after. */
static ssize_t client_drain(size_t *got)
{
    char buf[4096];
    for (;;) {
        struct pollfd p = {.fd = g.client, .events = POLLIN};
        if (poll(&p, 1, 2000) != 1)
            return -1;
        ssize_t n = recv(g.client, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            return (ssize_t)*got;
        assert_true(n > 0);
        *got += (size_t)n;
    }
}

static void test_fin_leaves_within_the_call(void **state)
{
    (void)state;
    rig_open();
    assert_int_equal(g.s->ops->try_write(g.s, (const uint8_t *)"hello", 5), 5);
    g.s->ops->shutdown(g.s);
    /* No uv_run here: the FIN must already be on its way. */
    size_t got = 0;
    assert_int_equal(client_drain(&got), 5);
    rig_close();
}

static void on_written(void *arg, int err)
{
    (void)arg;
    assert_int_equal(err, 0);
    g.writes_done++;
}

static void test_fin_waits_for_queued_bytes(void **state)
{
    (void)state;
    rig_open();
    size_t big = 8u << 20; /* far more than the small socket buffers take at once */
    uint8_t *data = calloc(1, big);
    assert_non_null(data);
    assert_int_equal(g.s->ops->write(g.s, data, big, on_written, NULL), 0);
    g.s->ops->shutdown(g.s);
    size_t got = 0;
    char buf[65536];
    for (;;) { /* the loop writes what the client makes room for; the FIN comes last */
        uv_run(&g.loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = g.client, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        ssize_t n = recv(g.client, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            break;
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, big);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.writes_done, 1);
    free(data);
    rig_close();
}

/* The accepted socket: the descriptor whose far end is the test's client. */
static int accepted_fd(void)
{
    struct sockaddr_in me, far;
    socklen_t len = sizeof(me);
    getsockname(g.client, (struct sockaddr *)&me, &len);
    for (int fd = 3; fd < 1024; fd++) {
        len = sizeof(far);
        if (fd != g.client && getpeername(fd, (struct sockaddr *)&far, &len) == 0 &&
            far.sin_port == me.sin_port)
            return fd;
    }
    return -1;
}

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

/* The test's client is on loopback: no keepalive, so none of its four system calls. */
static void test_accepted_loopback_options(void **state)
{
    (void)state;
    rig_open();
    int fd = accepted_fd();
    assert_true(fd >= 0);
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    rig_close();
}

static void cb_connect(void *ud, int err, const struct base_endpoint *local)
{
    (void)local;
    assert_int_equal(err, 0);
    *(bool *)ud = true;
}

/* A connection the direct dialer makes (to the rig's listener): keepalive with our options. */
static void test_dialed_keepalive(void **state)
{
    (void)state;
    rig_open();
    struct proxy_stream *first = g.s;
    g.s = NULL;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(&g.listener, (struct sockaddr *)&ss, &len), 0);
    struct proxy_target t = {.proto = PROXY_TCP};
    base_endpoint_from_sockaddr(&t.ep, (struct sockaddr *)&ss);
    struct proxy_direct d;
    proxy_direct_init(&d, &g.loop);
    struct proxy_dialer dialer = proxy_direct_dialer(&d);
    const struct proxy_stream_cbs out_cbs = {.on_connect = cb_connect,
                                             .on_read = cb_read,
                                             .on_eof = cb_void,
                                             .on_error = cb_error,
                                             .on_close = cb_void};
    bool connected = false;
    struct proxy_stream *out = dialer.dial(dialer.ctx, &t, &out_cbs, &connected);
    assert_non_null(out);
    while (!connected || !g.s)
        uv_run(&g.loop, UV_RUN_ONCE);
    int fd = -1;
    for (int i = 3; i < 1024 && fd < 0; i++) {
        struct sockaddr_in far;
        socklen_t flen = sizeof(far);
        if (i != g.client && getpeername(i, (struct sockaddr *)&far, &flen) == 0 &&
            far.sin_port == ((struct sockaddr_in *)&ss)->sin_port)
            fd = i;
    }
    assert_true(fd >= 0);
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), PROXY_KEEPALIVE_IDLE_S);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL), PROXY_KEEPALIVE_INTVL_S);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT), PROXY_KEEPALIVE_CNT);
    out->ops->close(out);
    g.s->ops->close(g.s);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    g.s = first;
    g.closed = 0;
    rig_close();
}

/* A client from another host gets it (the options themselves: test_dialed_keepalive). */
static void test_accept_keepalive_choice(void **state)
{
    (void)state;
    static const char *const want[] = {"192.0.2.7:4000", "[2001:db8::7]:4000",
                                       "[::ffff:10.0.0.1]:1"};
    static const char *const skip[] = {"127.0.0.1:4000", "127.9.9.9:1", "[::1]:4000"};
    struct base_endpoint ep;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(base_endpoint_parse(&ep, want[i], strlen(want[i])), 0);
        assert_true(proxy_direct_accept_keepalive(&ep));
    }
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        assert_int_equal(base_endpoint_parse(&ep, skip[i], strlen(skip[i])), 0);
        assert_false(proxy_direct_accept_keepalive(&ep));
    }
    memset(&ep, 0, sizeof(ep)); /* getpeername failed: keepalive, the safe side */
    assert_true(proxy_direct_accept_keepalive(&ep));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in the daemon: a write after a FIN fails, it does not kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fin_leaves_within_the_call),
        cmocka_unit_test(test_fin_waits_for_queued_bytes),
        cmocka_unit_test(test_accepted_loopback_options),
        cmocka_unit_test(test_accept_keepalive_choice),
        cmocka_unit_test(test_dialed_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
