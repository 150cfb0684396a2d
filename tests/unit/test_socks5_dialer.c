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

#include "proxy_fakes.h"

static struct {
    struct px_thread px;
} g;

/* The upstream echoes what was written. */
static void echo(struct px_loop_stream *s)
{
    s->cbs.on_read(s->ud, s->last, s->last_len);
}

/* The target port picks the behaviour. */
static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    struct px_loop_stream *s = px_loop_stream_new(&g.px, cbs, ud);
    static const int errs[] = {
        0,          -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, BASE_ENXDOMAIN,
        -ETIMEDOUT, BASE_EPOLICY,  -EIO};
    if (t->ep.port < sizeof(errs) / sizeof(errs[0]))
        s->connect_err = errs[t->ep.port];
    s->never = t->ep.port == 99;
    /* 100.64.0.1:4242, as the netstack would say */
    s->local =
        (struct base_endpoint){.addr = {.family = AF_INET, .ip = {100, 64, 0, 1}}, .port = 4242};
    s->answer = echo;
    px_loop_stream_start(s);
    return &s->base;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    struct proxy_config cfg = {
        .protocols = PROXY_BOTH, .dialer = {.dial = fake_dial}, .head_timeout_ms = 5000};
    px_thread_start(&g.px, &cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    px_thread_stop(&g.px);
    return 0;
}

static int socks_connect(uint16_t port, uint8_t reply[10])
{
    int fd = px_thread_client(&g.px);
    uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, (uint8_t)(port >> 8), (uint8_t)port};
    assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    uint8_t m[2];
    px_read_full(fd, m, 2);
    assert_memory_equal(m, "\x05\x00", 2);
    px_read_full(fd, reply, 10);
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
        px_read_full(fd, (uint8_t *)back, (size_t)n);
        assert_memory_equal(back, msg, (size_t)n);
    }
    close(fd);
}

static void test_dial_cancelled(void **state)
{
    (void)state;
    /* The dial never completes; the client gives up. The stream must still be closed. */
    int fd = px_thread_client(&g.px);
    uint8_t req[] = {5, 1, 0, 5, 1, 0, 3, 4, 'm', 'e', 's', 'h', 0, 99};
    assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    uint8_t m[2];
    px_read_full(fd, m, 2);
    close(fd);
    /* HTTP CONNECT to the same never-completing target, given up the same way. */
    fd = px_thread_client(&g.px);
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
