/*
 * The node's dialer, through node a's proxy listener (real SOCKS5 and HTTP CONNECT bytes from
 * a client thread): a tunnel address or MagicDNS name goes through the mesh to b's published
 * echo service, a host address on 127.0.0.1 goes straight out, and with --outbound
 * tunnel-only the direct one is refused (SOCKS5 "not allowed by ruleset", HTTP 403) while the
 * mesh one still works. The same for datagrams through SOCKS5 UDP ASSOCIATE. A name whose
 * AAAA or A address is dead still connects (Happy Eyeballs), within --connect-timeout; the
 * node's own addresses and 100.100.100.100 are answered by the node itself.
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

struct bulk {
    uint16_t proxy_port;
    const char *host;
    bool ok;
};

static void client_bulk(void *arg)
{
    struct bulk *c = arg;
    static uint8_t out[2 << 20], in[(2 << 20) + 1];
    int reply = -1;
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 7 + i / 4096);
    int fd = np_socks5_connect(c->proxy_port, c->host, MESH_PORT, &reply);
    if (fd < 0)
        return;
    c->ok = reply == 0 && np_exchange(fd, out, sizeof(out), in, sizeof(in)) == sizeof(out) &&
            memcmp(in, out, sizeof(out)) == 0;
    close(fd);
}

/* A bulk echo through the mesh: what node a's netstack hands over one segment at a time
 * reaches the client in far fewer reads (one per stream per loop turn), bytes unchanged. */
static void test_mesh_reads_gathered(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct bulk c = {.proxy_port = np_proxy_port(&p->a), .host = p->b.addr4};
    assert_int_equal(np_call(p, client_bulk, &c, 20000), 0);
    assert_true(c.ok);
    const struct node_dialer *d = &p->a.d.dialer;
    assert_true(d->mesh_segments > 1000); /* 2 MiB in segments of at most an MSS */
    assert_true(d->mesh_reads * 4 < d->mesh_segments);
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

/* b keeps only its address `keep` (a reload), while a's MagicDNS still answers both of b's
 * addresses for "b": the other one is a black hole in b's netstack (dropped, no answer). */
static void keep_one_b_address(struct np_pair *p, const char *keep)
{
    char text[NP_CONF_MAX], from[128], to[64];
    assert_non_null(np_config_text(p, &p->b, NULL, text, sizeof(text)));
    snprintf(from, sizeof(from), "%s/32, %s/128", p->b.addr4, p->b.addr6);
    snprintf(to, sizeof(to), "%s/%d", keep, strchr(keep, ':') ? 128 : 32);
    assert_int_equal(np_text_replace(text, sizeof(text), from, to), 0);
    assert_int_equal(np_apply(&p->b, text), 0);
}

static struct client run_timed(struct np_pair *p, const char *host, bool http, uint64_t *ms)
{
    uint64_t t0 = uv_hrtime();
    struct client c = run_client(p, host, MESH_PORT, http);
    *ms = (uv_hrtime() - t0) / 1000000;
    return c;
}

/* The name connects and echoes, in min_ms to 2 s. */
static void expect_connects(struct np_pair *p, const char *host, bool http, uint64_t min_ms)
{
    uint64_t ms;
    struct client c = run_timed(p, host, http, &ms);
    assert_int_equal(c.reply, http ? 200 : 0);
    assert_true(c.echoed);
    assert_in_range(ms, min_ms, 2000);
}

/* Happy Eyeballs: b's AAAA address is dead and its A address works: the name connects after
 * the 250 ms head start of the first (IPv6) attempt, far inside the 10 s connect timeout. */
static void test_name_dead_aaaa(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    keep_one_b_address(p, p->b.addr4);
    expect_connects(p, "b", false, 240);
    expect_connects(p, "b.mesh.internal", true, 240);
}

/* The reverse: the A address is dead, the AAAA one works and is tried first. */
static void test_name_dead_a(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    keep_one_b_address(p, p->b.addr6);
    expect_connects(p, "b", false, 0);
}

/* Both dead: the name fails at --connect-timeout (500 ms here), SOCKS5 "TTL expired" (6). */
static void test_name_connect_timeout(void **state)
{
    struct np_pair *p = *state;
    const char *a_flags[] = {"--connect-timeout", "500ms", NULL};
    start(p, a_flags);
    char text[NP_CONF_MAX];
    assert_non_null(np_config_text(p, &p->b, NULL, text, sizeof(text)));
    assert_int_equal(np_text_replace(text, sizeof(text), "100.64.0.2/32", "100.64.0.9/32"), 0);
    assert_int_equal(np_text_replace(text, sizeof(text), ", fd7a:115c:a1e0::2/128", ""), 0);
    assert_int_equal(np_apply(&p->b, text), 0);
    uint64_t ms;
    struct client c = run_timed(p, "b", false, &ms);
    assert_int_equal(c.reply, 6);
    assert_in_range(ms, 450, 2000);
}

/* The node answers its own addresses: its tunnel addresses reach what it publishes there, an
 * unpublished port is refused (SOCKS5 5, HTTP 502), and nothing of it goes to b or the host. */
static void test_own_addresses(void **state)
{
    struct np_pair *p = *state;
    char publish[64];
    snprintf(publish, sizeof(publish), "%u=127.0.0.1:%u", MESH_PORT, p->tcp_echo_port);
    const char *a_flags[] = {"--publish", publish, NULL};
    start(p, a_flags);
    struct client c = run(p, p->a.addr4, MESH_PORT);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
    c = run_client(p, p->a.addr6, MESH_PORT, true);
    assert_int_equal(c.reply, 200);
    assert_true(c.echoed);
    c = run(p, "a", MESH_PORT); /* its own MagicDNS name */
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);
    c = run(p, p->a.addr4, MESH_PORT + 1);
    assert_int_equal(c.reply, 5);
    c = run_client(p, p->a.addr4, MESH_PORT + 1, true);
    assert_int_equal(c.reply, 502);
    assert_int_equal(p->tcp_echo_accepted, 3);
    assert_int_equal(tx_to_b(p), 0);
}

/* MagicDNS at 100.100.100.100:53 through the proxy, over TCP (CONNECT) and UDP (UDP
 * ASSOCIATE): answered by the node itself. */
struct dns_client {
    uint16_t proxy_port;
    int reply, rcode, reply_udp;
    bool has_b, has_b_udp;
};

static void dns_through_proxy(void *arg)
{
    struct dns_client *d = arg;
    uint8_t q[512], ans[512];
    const uint8_t b4[] = {100, 64, 0, 2};
    int fd = np_socks5_connect(d->proxy_port, "100.100.100.100", 53, &d->reply);
    long qlen = np_dns_build("b.mesh.internal", 1, q, sizeof(q));
    struct np_socks5_udp u;
    if (qlen > 0 && np_socks5_udp_open(&u, d->proxy_port, &d->reply_udp) == 0) {
        long n =
            np_socks5_udp_exchange(&u, "100.100.100.100", 53, q, (size_t)qlen, ans, sizeof(ans));
        d->has_b_udp = n > 0 && memmem(ans, (size_t)n, b4, sizeof(b4)) != NULL;
        np_socks5_udp_close(&u);
    }
    if (fd < 0 || qlen < 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    long n = np_dns_over_stream(fd, q, (size_t)qlen, ans, sizeof(ans));
    close(fd);
    if (n < 0)
        return;
    d->rcode = np_dns_rcode(ans, (size_t)n);
    d->has_b = memmem(ans, (size_t)n, b4, sizeof(b4)) != NULL;
}

static void test_magicdns_through_proxy(void **state)
{
    struct np_pair *p = *state;
    start(p, NULL);
    struct dns_client d = {.proxy_port = np_proxy_port(&p->a), .reply = -1, .rcode = -1};
    assert_int_equal(np_call(p, dns_through_proxy, &d, 4000), 0);
    assert_int_equal(d.reply, 0);
    assert_int_equal(d.rcode, 0);
    assert_true(d.has_b);
    assert_int_equal(d.reply_udp, 0);
    assert_true(d.has_b_udp);
    assert_int_equal(tx_to_b(p), 0);
    assert_int_equal(p->dns_queries, 0); /* answered from the zone, no upstream asked */
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
        cmocka_unit_test_setup_teardown(test_mesh_reads_gathered, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_mesh_refused, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_direct, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_http_connect, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_tunnel_only, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_name_dead_aaaa, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_name_dead_a, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_name_connect_timeout, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_own_addresses, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_magicdns_through_proxy, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_udp_associate, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_udp_tunnel_only, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
