/*
 * MagicDNS as a host program sees it: real DNS queries (built and read with c-ares) to node a's
 * --dns-listen, over UDP and TCP. a answers for its peer b and for itself (A, AAAA, PTR),
 * NXDOMAIN for names under the suffix that no node has, follows a reload that renames b, and
 * forwards other names to an upstream inside the mesh. A peer reaches the same answers at
 * 100.100.100.100:53 through the tunnel, over UDP and TCP.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node_pair.h"

#define QTYPE_A 1
#define QTYPE_PTR 12
#define QTYPE_AAAA 28

struct query {
    uint16_t port;
    const char *name;
    int qtype;
    bool tcp;
    long len;
    uint8_t answer[1500];
};

static void ask(void *arg)
{
    struct query *q = arg;
    q->len = np_dns_query(q->port, q->tcp, q->name, q->qtype, q->answer, sizeof(q->answer));
}

static struct query run_over(struct np_pair *p, const char *name, int qtype, bool tcp)
{
    struct query q = {.port = np_dns_port(&p->a), .name = name, .qtype = qtype, .tcp = tcp};
    assert_int_equal(np_call(p, ask, &q, 4000), 0);
    assert_true(q.len > 12);
    return q;
}

static struct query run(struct np_pair *p, const char *name, int qtype)
{
    return run_over(p, name, qtype, false);
}

/* The one address of the kind asked for, as text ("" when the answer has none). */
static void answer_addr(const struct query *q, char *out, size_t cap)
{
    struct ares_addrttl a4[4];
    struct ares_addr6ttl a6[4];
    int n = 4;
    out[0] = '\0';
    if (q->qtype == QTYPE_A &&
        ares_parse_a_reply(q->answer, (int)q->len, NULL, a4, &n) == ARES_SUCCESS && n == 1)
        inet_ntop(AF_INET, &a4[0].ipaddr, out, (socklen_t)cap);
    if (q->qtype == QTYPE_AAAA &&
        ares_parse_aaaa_reply(q->answer, (int)q->len, NULL, a6, &n) == ARES_SUCCESS && n == 1)
        inet_ntop(AF_INET6, &a6[0].ip6addr, out, (socklen_t)cap);
}

static void assert_addr(struct np_pair *p, const char *name, int qtype, const char *want)
{
    char got[INET6_ADDRSTRLEN];
    struct query q = run(p, name, qtype);
    assert_int_equal(np_dns_rcode(q.answer, (size_t)q.len), 0);
    answer_addr(&q, got, sizeof(got));
    assert_string_equal(got, want);
}

static void assert_ptr(struct np_pair *p, const char *name, const char *want)
{
    struct query q = run(p, name, QTYPE_PTR);
    struct hostent *h = NULL;
    assert_int_equal(np_dns_rcode(q.answer, (size_t)q.len), 0);
    assert_int_equal(ares_parse_ptr_reply(q.answer, (int)q.len, NULL, 0, AF_INET, &h),
                     ARES_SUCCESS);
    assert_string_equal(h->h_name, want);
    ares_free_hostent(h);
}

static void assert_nxdomain(struct np_pair *p, const char *name, int qtype)
{
    struct query q = run(p, name, qtype);
    assert_int_equal(np_dns_rcode(q.answer, (size_t)q.len), 3);
}

static void start(struct np_pair *p)
{
    assert_int_equal(np_start(p, &(struct np_setup){0}), 0);
}

/* b by its name under the suffix and as a single label; a itself. */
static void test_names(void **state)
{
    struct np_pair *p = *state;
    start(p);
    assert_addr(p, "b.mesh.internal", QTYPE_A, "100.64.0.2");
    assert_addr(p, "b.mesh.internal", QTYPE_AAAA, "fd7a:115c:a1e0::2");
    assert_addr(p, "B.Mesh.Internal", QTYPE_A, "100.64.0.2");
    assert_addr(p, "b", QTYPE_A, "100.64.0.2");
    assert_addr(p, "a.mesh.internal", QTYPE_A, "100.64.0.1");
    assert_addr(p, "a.mesh.internal", QTYPE_AAAA, "fd7a:115c:a1e0::1");
}

/* The listener answers over TCP on the same port, the same answers. */
static void test_tcp(void **state)
{
    struct np_pair *p = *state;
    char got[INET6_ADDRSTRLEN];
    start(p);
    struct query q = run_over(p, "b.mesh.internal", QTYPE_AAAA, true);
    assert_int_equal(np_dns_rcode(q.answer, (size_t)q.len), 0);
    answer_addr(&q, got, sizeof(got));
    assert_string_equal(got, "fd7a:115c:a1e0::2");
    q = run_over(p, "c.mesh.internal", QTYPE_A, true);
    assert_int_equal(np_dns_rcode(q.answer, (size_t)q.len), 3);
}

/* Reverse lookups of the tunnel addresses, IPv4 and IPv6. */
static void test_ptr(void **state)
{
    struct np_pair *p = *state;
    start(p);
    assert_ptr(p, "2.0.64.100.in-addr.arpa", "b.mesh.internal");
    assert_ptr(p, "1.0.64.100.in-addr.arpa", "a.mesh.internal");
    assert_ptr(p, "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
               "b.mesh.internal");
}

/* Under the suffix, a name no node has does not exist; so does an unknown tunnel address. */
static void test_nxdomain(void **state)
{
    struct np_pair *p = *state;
    start(p);
    assert_nxdomain(p, "c.mesh.internal", QTYPE_A);
    assert_nxdomain(p, "x.b.mesh.internal", QTYPE_A);
    assert_nxdomain(p, "9.0.64.100.in-addr.arpa", QTYPE_PTR);
}

/* A reload that renames b: the new name answers, the old one is gone. */
static void test_reload_renames(void **state)
{
    struct np_pair *p = *state;
    char text[NP_CONF_MAX];
    start(p);
    assert_addr(p, "b.mesh.internal", QTYPE_A, "100.64.0.2");
    assert_non_null(np_config_text(p, &p->a, NULL, text, sizeof(text)));
    assert_int_equal(np_text_replace(text, sizeof(text), "# Name = b\n", "# Name = c\n"), 0);
    assert_int_equal(np_apply(&p->a, text), 0);
    assert_addr(p, "c.mesh.internal", QTYPE_A, "100.64.0.2");
    assert_nxdomain(p, "b.mesh.internal", QTYPE_A);
}

/* Names outside the mesh go to the configured resolver; one that is a tunnel address (b's,
 * where b publishes UDP 53 to the pair's DNS server) is reached through WireGuard
 * (node/dns_transport.c), and its answer is cached. */
static void test_upstream_in_mesh(void **state)
{
    struct np_pair *p = *state;
    char publish[64];
    snprintf(publish, sizeof(publish), "udp:53=127.0.0.1:%u", p->dns_server_port);
    const char *b_flags[] = {"--publish", publish, NULL};
    struct np_setup s = {.b_flags = b_flags, .a_interface = "DNS = 100.64.0.2\n"};
    assert_int_equal(np_start(p, &s), 0);
    assert_addr(p, "www.example.com", QTYPE_A, NP_DNS_ANSWER_TEXT);
    assert_int_equal(p->dns_queries, 1);
    struct wg_peer_stats st;
    assert_int_equal(wg_engine_peer_stats(p->a.d.engine, p->b.pub_key, &st), 0);
    assert_true(st.tx_bytes > 0);
    assert_addr(p, "www.example.com", QTYPE_A, NP_DNS_ANSWER_TEXT);
    assert_int_equal(p->dns_queries, 1); /* from the cache */
    assert_addr(p, "b.mesh.internal", QTYPE_A, "100.64.0.2");
    assert_int_equal(p->dns_queries, 1); /* MagicDNS never asks upstream */
}

/* b asks a's MagicDNS at 100.100.100.100:53 through the tunnel (b routes that address to a),
 * from b's SOCKS5: over UDP (UDP ASSOCIATE) and over TCP (CONNECT). Only a knows c. */
struct tunnel_query {
    uint16_t proxy_port;
    int reply_udp, reply_tcp;
    long len_udp, len_tcp;
    uint8_t udp[512], tcp[512];
};

static void ask_through_tunnel(void *arg)
{
    struct tunnel_query *t = arg;
    uint8_t q[512];
    struct np_socks5_udp u;
    long qlen = np_dns_build("c.mesh.internal", QTYPE_A, q, sizeof(q));
    t->len_udp = t->len_tcp = -1;
    if (qlen < 0)
        return;
    if (np_socks5_udp_open(&u, t->proxy_port, &t->reply_udp) == 0) {
        t->len_udp = np_socks5_udp_exchange(&u, NODE_MAGICDNS_ADDR, 53, q, (size_t)qlen, t->udp,
                                            sizeof(t->udp));
        np_socks5_udp_close(&u);
    }
    int fd = np_socks5_connect(t->proxy_port, NODE_MAGICDNS_ADDR, 53, &t->reply_tcp);
    if (fd >= 0) {
        t->len_tcp = np_dns_over_stream(fd, q, (size_t)qlen, t->tcp, sizeof(t->tcp));
        close(fd);
    }
}

static void test_in_tunnel(void **state)
{
    struct np_pair *p = *state;
    char text[NP_CONF_MAX], c_priv[WG_KEY_B64_LEN + 1], c_pub[WG_KEY_B64_LEN + 1], c_peer[200];
    char got[INET6_ADDRSTRLEN];
    np_keypair(c_priv, c_pub);
    snprintf(c_peer, sizeof(c_peer),
             "[Peer]\n# Name = c\nPublicKey = %s\nAllowedIPs = 100.64.0.3/32\n", c_pub);
    assert_int_equal(np_start(p, &(struct np_setup){.a_peers = c_peer}), 0);
    assert_non_null(np_config_text(p, &p->b, NULL, text, sizeof(text)));
    assert_int_equal(np_text_replace(text, sizeof(text), "AllowedIPs = 100.64.0.1/32",
                                     "AllowedIPs = 100.100.100.100/32, 100.64.0.1/32"),
                     0);
    assert_int_equal(np_apply(&p->b, text), 0);
    struct tunnel_query t = {.proxy_port = np_proxy_port(&p->b)};
    assert_int_equal(np_call(p, ask_through_tunnel, &t, 6000), 0);
    assert_int_equal(t.reply_udp, 0);
    assert_int_equal(t.reply_tcp, 0);
    struct query q = {.qtype = QTYPE_A, .len = t.len_udp};
    memcpy(q.answer, t.udp, sizeof(t.udp));
    answer_addr(&q, got, sizeof(got));
    assert_string_equal(got, "100.64.0.3");
    q.len = t.len_tcp;
    memcpy(q.answer, t.tcp, sizeof(t.tcp));
    answer_addr(&q, got, sizeof(got));
    assert_string_equal(got, "100.64.0.3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_tcp, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_ptr, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_nxdomain, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_reload_renames, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_upstream_in_mesh, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_in_tunnel, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
