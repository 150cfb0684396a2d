/*
 * The SOCKS5 UDP association against an injected dialer whose datagram socket echoes: a
 * datagram the client wraps in the SOCKS5 header reaches the dialer with its target, the echo
 * comes back wrapped with the target as its source, datagrams from another port than the one
 * the request named are dropped, and closing the TCP connection ends the association (the
 * socket is closed once). A listener without dgram_open answers 0x07.
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

struct echo_dgram {
    struct proxy_dgram base;
    struct proxy_dgram_cbs cbs;
    void *ud;
    uv_timer_t timer;
    struct base_endpoint from;
    uint8_t data[512];
    size_t len;
};

static struct {
    struct px_thread px;
    int opened, sent, closed;
} g;

static void echo_tick(uv_timer_t *t)
{
    struct echo_dgram *d = t->data;
    d->cbs.on_recv(d->ud, &d->from, d->data, d->len);
}

static int echo_send_to(struct proxy_dgram *pd, const struct proxy_target *dst, const uint8_t *data,
                        size_t len)
{
    struct echo_dgram *d = container_of(pd, struct echo_dgram, base);
    g.sent++;
    if (len > sizeof(d->data) || dst->name[0])
        return -EINVAL;
    d->from = dst->ep;
    memcpy(d->data, data, len);
    d->len = len;
    uv_timer_start(&d->timer, echo_tick, 0, 0);
    return 0;
}

static void echo_closed(uv_handle_t *h)
{
    struct echo_dgram *d = h->data;
    d->cbs.on_close(d->ud);
    free(d);
}

static void echo_close(struct proxy_dgram *pd)
{
    struct echo_dgram *d = container_of(pd, struct echo_dgram, base);
    g.closed++;
    uv_close((uv_handle_t *)&d->timer, echo_closed);
}

static const struct proxy_dgram_ops echo_ops = {.send_to = echo_send_to, .close = echo_close};

/* The proxy's lines, read once its thread is joined. */
static char logged[4096];
static void log_line(void *arg, enum base_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof(logged) - n, "%s\n", line);
}

static struct proxy_dgram *echo_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud)
{
    (void)ctx;
    struct echo_dgram *d = calloc(1, sizeof(*d));
    d->base.ops = &echo_ops;
    d->cbs = *cbs;
    d->ud = ud;
    uv_timer_init(&g.px.loop, &d->timer);
    d->timer.data = d;
    g.opened++;
    return &d->base;
}

static struct proxy_stream *no_dial(void *ctx, const struct proxy_target *t,
                                    const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    (void)t;
    (void)cbs;
    (void)ud;
    fail_msg("a UDP association dials nothing");
    return NULL;
}

static void start(bool with_dgram)
{
    memset(&g, 0, sizeof(g));
    struct proxy_config cfg = {
        .protocols = PROXY_SOCKS5,
        .dialer = {.dial = no_dial, .dgram_open = with_dgram ? echo_open : NULL},
        .head_timeout_ms = 5000,
        .logger = {.fn = log_line, .level = BASE_LOG_INFO}};
    logged[0] = 0;
    px_thread_start(&g.px, &cfg);
}

/* UDP ASSOCIATE naming the client's port; returns the TCP fd and fills the relay's address. */
static int associate(uint16_t client_port, uint8_t reply[10])
{
    int fd = px_thread_client(&g.px);
    uint8_t req[] = {
        5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, (uint8_t)(client_port >> 8), (uint8_t)client_port};
    assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    uint8_t m[2];
    px_read_full(fd, m, 2);
    px_read_full(fd, reply, 10);
    return fd;
}

static int udp_socket(uint16_t *port)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(u, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    getsockname(u, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return u;
}

static void send_wrapped(int u, const uint8_t relay[10], const char *payload)
{
    /* RSV RSV FRAG ATYP=1 10.1.2.3:53, then the payload */
    uint8_t dg[64] = {0, 0, 0, 1, 10, 1, 2, 3, 0, 53};
    size_t n = strlen(payload);
    memcpy(dg + 10, payload, n);
    struct sockaddr_in to = {.sin_family = AF_INET};
    memcpy(&to.sin_addr, relay + 4, 4);
    memcpy(&to.sin_port, relay + 8, 2);
    assert_int_equal(sendto(u, dg, 10 + n, 0, (struct sockaddr *)&to, sizeof(to)),
                     (ssize_t)(10 + n));
}

static void test_echo(void **state)
{
    (void)state;
    start(true);
    uint16_t port, other_port;
    int u = udp_socket(&port), stranger = udp_socket(&other_port);
    uint8_t rep[10];
    int fd = associate(port, rep);
    assert_int_equal(rep[1], 0);
    assert_memory_equal(rep + 4, "\x7f\x00\x00\x01", 4); /* where the client reached us */

    send_wrapped(stranger, rep, "not yours"); /* another port than the request named */
    send_wrapped(u, rep, "ping");
    uint8_t back[64];
    ssize_t n = recv(u, back, sizeof(back), 0);
    assert_int_equal(n, 14);
    assert_memory_equal(back, "\x00\x00\x00\x01\x0a\x01\x02\x03\x00\x35ping", 14);
    assert_int_equal(g.sent, 1);

    close(fd); /* the association ends with its TCP connection */
    close(u);
    close(stranger);
    px_thread_stop(&g.px);
    assert_int_equal(g.opened, 1);
    assert_int_equal(g.closed, 1);
    /* The association's two lines: its relay address, then the payload each way. */
    assert_non_null(strstr(logged, "event=proxy_open conn=1 client=127.0.0.1:"));
    assert_non_null(strstr(logged, "proto=socks5_udp relay=127.0.0.1:"));
    assert_non_null(strstr(logged, "event=proxy_close conn=1 client=127.0.0.1:"));
    assert_non_null(strstr(logged, "bytes_up=4 bytes_down=4 datagrams_up=1 datagrams_down=1"));
}

static void test_not_offered(void **state)
{
    (void)state;
    start(false);
    uint8_t rep[10];
    int fd = associate(0, rep);
    assert_int_equal(rep[1], 0x07);
    close(fd);
    px_thread_stop(&g.px);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_not_offered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
