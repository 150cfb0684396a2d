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

static void test_accepted_keepalive(void **state)
{
    (void)state;
    rig_open();
    int fd = accepted_fd();
    assert_true(fd >= 0);
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), PROXY_KEEPALIVE_IDLE_S);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL), PROXY_KEEPALIVE_INTVL_S);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT), PROXY_KEEPALIVE_CNT);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    rig_close();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in the daemon: a write after a FIN fails, it does not kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fin_leaves_within_the_call),
        cmocka_unit_test(test_fin_waits_for_queued_bytes),
        cmocka_unit_test(test_accepted_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
