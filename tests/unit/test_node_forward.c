/*
 * --forward on node a to ports node b --publishes, with the pair's echo servers as b's host
 * services: TCP bytes go both ways intact (more than a window's worth, then a half-close that
 * travels to the service and back as EOF), UDP datagrams come back, a published port whose
 * service is down closes the forwarded connection, a forward to a name resolves it
 * through MagicDNS, and both nodes stop cleanly with a connection open through them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node_pair.h"

#define TCP_PORT 8080
#define UDP_PORT 7000
#define DOWN_PORT 8081
#define BULK (1024 * 1024)

/* a: --forward tcp to b's 8080 (by address and by name), 8081, udp to b's 7000;
 * b: --publish 8080 and udp 7000 to the echo servers, 8081 to a port nobody listens on. */
static void start(struct np_pair *p)
{
    char pub_tcp[64], pub_udp[64], pub_down[64];
    snprintf(pub_tcp, sizeof(pub_tcp), "%u=127.0.0.1:%u", TCP_PORT, p->tcp_echo_port);
    snprintf(pub_udp, sizeof(pub_udp), "udp:%u=127.0.0.1:%u", UDP_PORT, p->udp_echo_port);
    /* The WireGuard port of b is UDP: nothing listens on it over TCP. */
    snprintf(pub_down, sizeof(pub_down), "%u=127.0.0.1:%u", DOWN_PORT, p->udp_echo_port);
    const char *b_flags[] = {"--publish", pub_tcp,  "--publish", pub_udp,
                             "--publish", pub_down, NULL};
    const char *a_flags[] = {"--forward", "tcp:127.0.0.1:1=100.64.0.2:8080",
                             "--forward", "tcp:127.0.0.1:1=b:8080",
                             "--forward", "tcp:127.0.0.1:1=100.64.0.2:8081",
                             "--forward", "udp:127.0.0.1:1=100.64.0.2:7000",
                             NULL};
    assert_int_equal(np_start(p, &(struct np_setup){.a_flags = a_flags, .b_flags = b_flags}), 0);
    for (size_t i = 0; i < 4; i++)
        assert_true(np_forward_port(&p->a, i) > 0);
}

struct bulk {
    uint16_t port;
    uint8_t *out, *in;
    long got; /* bytes read before EOF, or -1 */
};

static void bulk_echo(void *arg)
{
    struct bulk *b = arg;
    int fd = np_tcp_connect(b->port);
    b->got = fd < 0 ? -1 : np_exchange(fd, b->out, BULK, b->in, BULK + 1);
    if (fd >= 0)
        close(fd);
}

static void assert_bulk(struct np_pair *p, uint16_t port)
{
    struct bulk b = {.port = port, .out = malloc(BULK), .in = malloc(BULK + 1)};
    assert_non_null(b.out);
    assert_non_null(b.in);
    for (size_t i = 0; i < BULK; i++)
        b.out[i] = (uint8_t)(i * 7 + i / 251);
    assert_int_equal(np_call(p, bulk_echo, &b, 8000), 0);
    assert_int_equal(b.got, BULK);
    assert_memory_equal(b.in, b.out, BULK);
    free(b.out);
    free(b.in);
}

/* TCP both ways through a's forward and b's publish, by address and by MagicDNS name. */
static void test_tcp(void **state)
{
    struct np_pair *p = *state;
    start(p);
    assert_bulk(p, np_forward_port(&p->a, 0));
    assert_bulk(p, np_forward_port(&p->a, 1));
    assert_int_equal(p->tcp_echo_accepted, 2);
}

struct down {
    uint16_t port;
    long got;
};

static void connect_down(void *arg)
{
    struct down *d = arg;
    char buf[64];
    int fd = np_tcp_connect(d->port);
    d->got = -2;
    if (fd < 0)
        return;
    /* The forward accepted; the far side fails: the connection ends without a byte. */
    d->got = np_send_all(fd, "x", 1) == 0 ? np_recv_to_eof(fd, buf, sizeof(buf)) : -1;
    close(fd);
}

/* b's service is down: a's forwarded connection is closed (EOF or reset), not left hanging. */
static void test_tcp_service_down(void **state)
{
    struct np_pair *p = *state;
    start(p);
    struct down d = {.port = np_forward_port(&p->a, 2)};
    assert_int_equal(np_call(p, connect_down, &d, 4000), 0);
    assert_true(d.got == 0 || d.got == -1);
}

struct datagrams {
    uint16_t port;
    int echoed; /* how many came back unchanged */
};

static void udp_echo(void *arg)
{
    struct datagrams *d = arg;
    for (int i = 0; i < 5; i++) {
        char msg[1200], back[1500];
        size_t len = 100 + (size_t)i * 250;
        memset(msg, 'a' + i, len);
        long n = np_udp_exchange(d->port, msg, len, back, sizeof(back));
        if (n == (long)len && memcmp(back, msg, len) == 0)
            d->echoed++;
    }
}

/* UDP: a's forward, b's udp publish, the echo server, and back. */
static void test_udp(void **state)
{
    struct np_pair *p = *state;
    start(p);
    struct datagrams d = {.port = np_forward_port(&p->a, 3)};
    assert_int_equal(np_call(p, udp_echo, &d, 8000), 0);
    assert_int_equal(d.echoed, 5);
}

struct open_conn {
    uint16_t port;
    int fd;
    bool echoed;
};

static void open_and_echo(void *arg)
{
    struct open_conn *c = arg;
    char back[5];
    c->fd = np_tcp_connect(c->port);
    c->echoed = c->fd >= 0 && np_send_all(c->fd, "hello", 5) == 0 &&
                np_recv_all(c->fd, back, 5) == 0 && memcmp(back, "hello", 5) == 0;
}

/* Both nodes stop while a forwarded connection is open through them: the relays on a (forward)
 * and b (publish) end with the netstack, and no handle or memory is left behind. */
static void test_stop_with_open_connection(void **state)
{
    struct np_pair *p = *state;
    start(p);
    struct open_conn c = {.port = np_forward_port(&p->a, 0), .fd = -1};
    assert_int_equal(np_call(p, open_and_echo, &c, 4000), 0);
    assert_true(c.echoed);
    int stopped = np_stop(p);
    close(c.fd);
    assert_int_equal(stopped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tcp, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_tcp_service_down, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_udp, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_open_connection, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
