/*
 * The node's dialer, through node a's proxy listener (real SOCKS5 and HTTP CONNECT bytes from
 * a client thread): a tunnel address or MagicDNS name goes through the mesh to b's published
 * echo service, a host address on 127.0.0.1 goes straight out, and with --outbound
 * tunnel-only the direct one is refused (SOCKS5 "not allowed by ruleset", HTTP 403) while the
 * mesh one still works. The same for datagrams through SOCKS5 UDP ASSOCIATE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node_pair.h"

#define MESH_PORT 8080

/* What one proxy client did, for the test to assert on the main thread. */
struct client {
    uint16_t proxy_port;
    const char *host;
    uint16_t port;
    bool http;   /* HTTP CONNECT instead of SOCKS5 */
    int reply;   /* SOCKS5 REP or HTTP status, or -1 */
    bool echoed; /* the bytes came back unchanged */
    char msg[128];
};

static void client_echo(void *arg)
{
    struct client *c = arg;
    char back[sizeof(c->msg)], authority[300];
    size_t len = strlen(c->msg);
    snprintf(authority, sizeof(authority), strchr(c->host, ':') ? "[%s]:%u" : "%s:%u", c->host,
             c->port);
    int fd = c->http ? np_http_connect(c->proxy_port, authority, &c->reply)
                     : np_socks5_connect(c->proxy_port, c->host, c->port, &c->reply);
    if (fd < 0)
        return;
    c->echoed = c->reply == (c->http ? 200 : 0) && np_send_all(fd, c->msg, len) == 0 &&
                np_recv_all(fd, back, len) == 0 && memcmp(back, c->msg, len) == 0;
    close(fd);
}

static void start(struct np_pair *p, const char *const *a_flags)
{
    char publish[64], publish_udp[64];
    snprintf(publish, sizeof(publish), "%u=127.0.0.1:%u", MESH_PORT, p->tcp_echo_port);
    snprintf(publish_udp, sizeof(publish_udp), "udp:%u=127.0.0.1:%u", MESH_PORT, p->udp_echo_port);
    const char *b_flags[] = {"--publish", publish, "--publish", publish_udp, NULL};
    assert_int_equal(np_start(p, &(struct np_setup){.a_flags = a_flags, .b_flags = b_flags}), 0);
}

static struct client run_client(struct np_pair *p, const char *host, uint16_t port, bool http)
{
    struct client c = {
        .proxy_port = np_proxy_port(&p->a), .host = host, .port = port, .http = http};
    snprintf(c.msg, sizeof(c.msg), "to %s:%u through node a", host, port);
    assert_int_equal(np_call(p, client_echo, &c, 4000), 0);
    return c;
}

static struct client run(struct np_pair *p, const char *host, uint16_t port)
{
    return run_client(p, host, port, false);
}

static uint64_t tx_to_b(struct np_pair *p)
{
    struct wg_peer_stats st;
    assert_int_equal(wg_engine_peer_stats(p->a.d.engine, p->b.pub_key, &st), 0);
    return st.tx_bytes;
}

/* A tunnel address and b's MagicDNS name reach b's published service through WireGuard. */
static void test_mesh(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct client c = run(p, p->b.addr4, MESH_PORT);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
    assert_true(tx_to_b(p) > 0);
    c = run(p, "b.mesh.internal", MESH_PORT);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
    c = run(p, p->b.addr6, MESH_PORT);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
    assert_int_equal(p->tcp_echo_accepted, 3); /* each came out of b's publish */
}

/* A port nobody serves on b's tunnel address: b's netstack resets, SOCKS5 says refused. */
static void test_mesh_refused(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct client c = run(p, p->b.addr4, MESH_PORT + 1);
    assert_int_equal(c.reply, 5);
    assert_false(c.echoed);
}

/* A host address goes straight to the host's socket: nothing goes through the tunnel. */
static void test_direct(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct client c = run(p, "127.0.0.1", p->tcp_echo_port);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
    assert_int_equal(tx_to_b(p), 0);
    assert_int_equal(p->tcp_echo_accepted, 1);
}

/* The HTTP proxy on the same port: CONNECT to b by name and by address through the mesh,
 * and to the host directly. */
static void test_http_connect(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct client c = run_client(p, "b.mesh.internal", MESH_PORT, true);
    assert_int_equal(c.reply, 200);
    assert_true(c.echoed);
    c = run_client(p, p->b.addr6, MESH_PORT, true);
    assert_int_equal(c.reply, 200);
    assert_true(c.echoed);
    assert_int_equal(p->tcp_echo_accepted, 2);
    c = run_client(p, "127.0.0.1", p->tcp_echo_port, true);
    assert_int_equal(c.reply, 200);
    assert_true(c.echoed);
    assert_int_equal(p->tcp_echo_accepted, 3);
}

/* --outbound tunnel-only: the host address is refused (REP 2) before any connection is made;
 * the mesh still works. */
static void test_tunnel_only(void **state)
{
    struct np_pair *p = *state;
    const char *a_flags[] = {"--outbound", "tunnel-only", NULL};
    start(p, a_flags);
    struct client c = run(p, "127.0.0.1", p->tcp_echo_port);
    assert_int_equal(c.reply, 2);
    assert_false(c.echoed);
    c = run_client(p, "127.0.0.1", p->tcp_echo_port, true);
    assert_int_equal(c.reply, 403);
    assert_false(c.echoed);
    assert_int_equal(p->tcp_echo_accepted, 0);
    c = run(p, p->b.addr4, MESH_PORT);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
}

/* Datagrams through a's SOCKS5 UDP ASSOCIATE, each to its destination and back; with
 * tunnel_only the one to the host address is only sent (it must not arrive). */
struct datagrams {
    uint16_t proxy_port, direct_port;
    bool tunnel_only;
    int reply;
    int echoed; /* answers that came back unchanged */
};

static void udp_echoes(void *arg)
{
    struct datagrams *d = arg;
    struct np_socks5_udp u;
    const char *hosts[] = {"127.0.0.1", "100.64.0.2", "b.mesh.internal", "fd7a:115c:a1e0::2"};
    if (np_socks5_udp_open(&u, d->proxy_port, &d->reply) != 0)
        return;
    for (size_t i = 0; i < 4; i++) {
        char msg[64], back[64];
        uint16_t port = i == 0 ? d->direct_port : MESH_PORT;
        int len = snprintf(msg, sizeof(msg), "datagram %zu to %s", i, hosts[i]);
        bool wait = i > 0 || !d->tunnel_only;
        long n = np_socks5_udp_exchange(&u, hosts[i], port, msg, (size_t)len, wait ? back : NULL,
                                        sizeof(back));
        d->echoed += wait && n == len && memcmp(back, msg, (size_t)len) == 0;
    }
    np_socks5_udp_close(&u);
}

/* UDP: a host address goes direct, tunnel addresses and b's name through the mesh to b's
 * published UDP echo. */
static void test_udp_associate(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct datagrams d = {.proxy_port = np_proxy_port(&p->a), .direct_port = p->udp_echo_port};
    assert_int_equal(np_call(p, udp_echoes, &d, 8000), 0);
    assert_int_equal(d.reply, 0);
    assert_int_equal(d.echoed, 4);
    assert_int_equal(p->udp_echo_received, 4);
}

/* tunnel-only: the datagram to the host address never reaches it (sent first, it would have
 * arrived before the mesh ones came back); the mesh ones do. */
static void test_udp_tunnel_only(void **state)
{
    struct np_pair *p = *state;
    const char *a_flags[] = {"--outbound", "tunnel-only", NULL};
    start(p, a_flags);
    struct datagrams d = {
        .proxy_port = np_proxy_port(&p->a), .direct_port = p->udp_echo_port, .tunnel_only = true};
    assert_int_equal(np_call(p, udp_echoes, &d, 8000), 0);
    assert_int_equal(d.reply, 0);
    assert_int_equal(d.echoed, 3);
    assert_int_equal(p->udp_echo_received, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mesh, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_mesh_refused, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_direct, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_http_connect, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_tunnel_only, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_udp_associate, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_udp_tunnel_only, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
