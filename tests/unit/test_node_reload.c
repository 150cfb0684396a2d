/*
 * Reload diffs on node a: a new configuration that adds a peer (c), removes one (d) and
 * changes one's allowed IPs (e) leaves the unchanged peer b alone: its session (the same
 * handshake, no new one) and an open TCP connection through it survive, while d is gone from
 * the engine and the routes follow the new allowed IPs. New allowed IPs for b itself keep its
 * session too. A reload that changes the key is refused and changes nothing; one that changes
 * the tunnel address restarts the netstack (TCP connections end, UDP associations carry on).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node_pair.h"

#define MESH_PORT 8080

struct keys {
    char priv[WG_KEY_B64_LEN + 1], pub[WG_KEY_B64_LEN + 1];
    uint8_t key[WG_KEY_LEN];
};

struct fixture {
    struct np_pair *p;
    struct keys c, d, e; /* peers of a that no node runs: only the engine sees them */
    char peers[1024];
};

static void new_keys(struct keys *k)
{
    np_keypair(k->priv, k->pub);
    assert_int_equal(cfg_key_from_base64(k->key, k->pub, WG_KEY_B64_LEN), 0);
}

static void start(struct fixture *f, void **state)
{
    char publish[64], publish_udp[64];
    f->p = *state;
    new_keys(&f->c);
    new_keys(&f->d);
    new_keys(&f->e);
    snprintf(f->peers, sizeof(f->peers),
             "[Peer]\nPublicKey = %s\nAllowedIPs = 100.64.0.4/32\n\n"
             "[Peer]\nPublicKey = %s\nAllowedIPs = 100.64.0.5/32\n",
             f->d.pub, f->e.pub);
    snprintf(publish, sizeof(publish), "%u=127.0.0.1:%u", MESH_PORT, f->p->tcp_echo_port);
    snprintf(publish_udp, sizeof(publish_udp), "udp:%u=127.0.0.1:%u", MESH_PORT,
             f->p->udp_echo_port);
    const char *b_flags[] = {"--publish", publish, "--publish", publish_udp, NULL};
    assert_int_equal(np_start(f->p, &(struct np_setup){.b_flags = b_flags, .a_peers = f->peers}),
                     0);
}

/* One TCP connection from a's SOCKS5 to b's published echo, used in steps across a reload. */
struct conn {
    uint16_t proxy_port;
    int fd;
    int reply;
    bool echoed;
};

static void conn_open(void *arg)
{
    struct conn *c = arg;
    c->fd = np_socks5_connect(c->proxy_port, "100.64.0.2", MESH_PORT, &c->reply);
}

static void conn_echo(void *arg)
{
    struct conn *c = arg;
    char back[32];
    c->echoed = np_send_all(c->fd, "through the reload", 18) == 0 &&
                np_recv_all(c->fd, back, 18) == 0 && memcmp(back, "through the reload", 18) == 0;
}

static void conn_close(void *arg)
{
    struct conn *c = arg;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool route(struct np_node *n, const char *ip4)
{
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, ip4, strlen(ip4)), 0);
    return wg_engine_route(n->d.engine, &a);
}

static struct wg_peer_stats peer(struct np_node *n, const uint8_t key[WG_KEY_LEN])
{
    struct wg_peer_stats st;
    assert_int_equal(wg_engine_peer_stats(n->d.engine, key, &st), 0);
    return st;
}

static uint64_t handshakes(struct np_node *n)
{
    struct wg_engine_stats st;
    wg_engine_stats(n->d.engine, &st);
    return st.handshakes_completed;
}

/* The reload of the issue: c added, d removed, e's allowed IPs changed, b as it was. */
static void test_peer_diff(void **state)
{
    struct fixture f;
    char text[NP_CONF_MAX], peers[1024];
    start(&f, state);
    struct conn c = {.proxy_port = np_proxy_port(&f.p->a), .fd = -1};
    assert_int_equal(np_call(f.p, conn_open, &c, 4000), 0);
    assert_int_equal(c.reply, 0);
    assert_int_equal(np_call(f.p, conn_echo, &c, 4000), 0);
    assert_true(c.echoed);
    struct wg_peer_stats b_before = peer(&f.p->a, f.p->b.pub_key);
    uint64_t hs_a = handshakes(&f.p->a), hs_b = handshakes(&f.p->b);
    assert_true(b_before.has_session);
    assert_true(b_before.last_handshake_wall_ns > 0);
    assert_true(route(&f.p->a, "100.64.0.4") && route(&f.p->a, "100.64.0.5"));

    snprintf(peers, sizeof(peers),
             "[Peer]\nPublicKey = %s\nAllowedIPs = 100.64.0.3/32\n\n"
             "[Peer]\nPublicKey = %s\nAllowedIPs = 100.64.0.6/32\n",
             f.c.pub, f.e.pub);
    assert_non_null(np_config_text(f.p, &f.p->a, peers, text, sizeof(text)));
    assert_int_equal(np_apply(&f.p->a, text), 0);

    struct wg_peer_stats st;
    assert_int_equal(wg_engine_peer_stats(f.p->a.d.engine, f.d.key, &st), -ENOENT);
    peer(&f.p->a, f.c.key);
    peer(&f.p->a, f.e.key);
    assert_false(route(&f.p->a, "100.64.0.4")); /* d's */
    assert_false(route(&f.p->a, "100.64.0.5")); /* e's before */
    assert_true(route(&f.p->a, "100.64.0.6"));  /* e's now */
    assert_true(route(&f.p->a, "100.64.0.3"));  /* c's */
    assert_true(route(&f.p->a, "100.64.0.2"));  /* b's, untouched */

    /* b's session and the connection through it carry on: no handshake on either side. */
    assert_int_equal(np_call(f.p, conn_echo, &c, 4000), 0);
    assert_true(c.echoed);
    struct wg_peer_stats b_after = peer(&f.p->a, f.p->b.pub_key);
    assert_true(b_after.has_session);
    assert_true(b_after.last_handshake_wall_ns == b_before.last_handshake_wall_ns);
    assert_true(b_after.tx_bytes > b_before.tx_bytes);
    assert_int_equal(handshakes(&f.p->a), hs_a);
    assert_int_equal(handshakes(&f.p->b), hs_b);
    np_call(f.p, conn_close, &c, 1000);
}

/* b itself gets one more prefix: updated in place, its session and the connection through it
 * carry on, and the new prefix routes to b. */
static void test_changed_peer_keeps_session(void **state)
{
    struct fixture f;
    char text[NP_CONF_MAX];
    start(&f, state);
    struct conn c = {.proxy_port = np_proxy_port(&f.p->a), .fd = -1};
    assert_int_equal(np_call(f.p, conn_open, &c, 4000), 0);
    assert_int_equal(c.reply, 0);
    struct wg_peer_stats before = peer(&f.p->a, f.p->b.pub_key);
    uint64_t hs_a = handshakes(&f.p->a);
    assert_false(route(&f.p->a, "10.9.0.1"));
    assert_non_null(np_config_text(f.p, &f.p->a, f.peers, text, sizeof(text)));
    assert_int_equal(np_text_replace(text, sizeof(text), "AllowedIPs = 100.64.0.2/32",
                                     "AllowedIPs = 10.9.0.0/24, 100.64.0.2/32"),
                     0);
    assert_int_equal(np_apply(&f.p->a, text), 0);
    assert_true(route(&f.p->a, "10.9.0.1"));
    assert_int_equal(np_call(f.p, conn_echo, &c, 4000), 0);
    assert_true(c.echoed);
    struct wg_peer_stats after = peer(&f.p->a, f.p->b.pub_key);
    assert_true(after.has_session);
    assert_true(after.last_handshake_wall_ns == before.last_handshake_wall_ns);
    assert_int_equal(handshakes(&f.p->a), hs_a);
    np_call(f.p, conn_close, &c, 1000);
}

/* A new PrivateKey is a new node: refused, and the running configuration stays. */
static void test_key_change_refused(void **state)
{
    struct fixture f;
    char text[NP_CONF_MAX];
    start(&f, state);
    assert_non_null(np_config_text(f.p, &f.p->a, NULL, text, sizeof(text)));
    assert_int_equal(np_text_replace(text, sizeof(text), f.p->a.priv, f.c.priv), 0);
    assert_int_equal(np_apply(&f.p->a, text), -2);
    uint8_t pub[WG_KEY_LEN];
    wg_engine_public_key(f.p->a.d.engine, pub);
    assert_memory_equal(pub, f.p->a.pub_key, WG_KEY_LEN);
    peer(&f.p->a, f.d.key); /* the peers of the running configuration are all still there */
    assert_int_equal(f.p->a.d.cfg.n_peers, 3);
}

/* a moves to 100.64.0.7, and b routes the new address to a. */
static void move_a(struct fixture *f)
{
    char text[NP_CONF_MAX];
    assert_non_null(np_config_text(f->p, &f->p->a, f->peers, text, sizeof(text)));
    assert_int_equal(
        np_text_replace(text, sizeof(text), "Address = 100.64.0.1/32", "Address = 100.64.0.7/32"),
        0);
    assert_int_equal(np_apply(&f->p->a, text), 0);
    assert_non_null(np_config_text(f->p, &f->p->b, NULL, text, sizeof(text)));
    assert_int_equal(np_text_replace(text, sizeof(text), "AllowedIPs = 100.64.0.1/32",
                                     "AllowedIPs = 100.64.0.7/32"),
                     0);
    assert_int_equal(np_apply(&f->p->b, text), 0);
}

/* A new tunnel address restarts a's netstack: a connection open through the old one ends
 * (the SOCKS5 client sees it closed); a new connection leaves from the new address. */
static void test_address_change(void **state)
{
    struct fixture f;
    start(&f, state);
    struct conn c = {.proxy_port = np_proxy_port(&f.p->a), .fd = -1};
    assert_int_equal(np_call(f.p, conn_open, &c, 4000), 0);
    assert_int_equal(c.reply, 0);
    move_a(&f);
    assert_int_equal(np_call(f.p, conn_echo, &c, 4000), 0);
    assert_false(c.echoed);
    np_call(f.p, conn_close, &c, 1000);
    assert_int_equal(np_call(f.p, conn_open, &c, 4000), 0);
    assert_int_equal(c.reply, 0);
    assert_int_equal(np_call(f.p, conn_echo, &c, 4000), 0);
    assert_true(c.echoed);
    np_call(f.p, conn_close, &c, 1000);
}

/* A UDP association outlives the netstack: its flows close with the old stack, and the next
 * datagram opens a new flow from the new address. */
struct assoc {
    uint16_t proxy_port;
    struct np_socks5_udp u;
    int reply;
    bool echoed;
};

static void assoc_open(void *arg)
{
    struct assoc *a = arg;
    np_socks5_udp_open(&a->u, a->proxy_port, &a->reply);
}

static void assoc_echo(void *arg)
{
    struct assoc *a = arg;
    char back[16];
    long n =
        np_socks5_udp_exchange(&a->u, "100.64.0.2", MESH_PORT, "datagram", 8, back, sizeof(back));
    a->echoed = n == 8 && memcmp(back, "datagram", 8) == 0;
}

static void test_address_change_udp(void **state)
{
    struct fixture f;
    start(&f, state);
    struct assoc a = {.proxy_port = np_proxy_port(&f.p->a), .u = {.ctl = -1, .udp = -1}};
    assert_int_equal(np_call(f.p, assoc_open, &a, 4000), 0);
    assert_int_equal(a.reply, 0);
    assert_int_equal(np_call(f.p, assoc_echo, &a, 4000), 0);
    assert_true(a.echoed);
    move_a(&f);
    assert_int_equal(np_call(f.p, assoc_echo, &a, 4000), 0);
    assert_true(a.echoed);
    assert_int_equal(f.p->udp_echo_received, 2);
    np_socks5_udp_close(&a.u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peer_diff, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_changed_peer_keeps_session, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_key_change_refused, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_address_change, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_address_change_udp, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
