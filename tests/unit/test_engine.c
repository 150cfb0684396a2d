/*
 * The engine end to end in one process: engines on loopback UDP doing real handshakes and
 * transport, the protocol's timers driven by a clock the test moves forward.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "device.h"
#include "engine_pair.h"

#define SEC 1000000000ULL

static int setup3(void **state)
{
    static struct te_net net;
    te_net_init(&net, 3);
    assert_int_equal(te_peer(&net, 0, 1, 0), 0);
    assert_int_equal(te_peer(&net, 1, 0, 0), 0);
    assert_int_equal(te_peer(&net, 0, 2, 0), 0);
    assert_int_equal(te_peer(&net, 2, 0, 0), 0);
    *state = &net;
    return 0;
}

static int setup2_ipv6(void **state)
{
    static struct te_net net;
    te_net_init_family(&net, 2, AF_INET6);
    assert_int_equal(te_peer(&net, 0, 1, 0), 0);
    assert_int_equal(te_peer(&net, 1, 0, 0), 0);
    *state = &net;
    return 0;
}

static struct wg_peer *peer_of(struct te_net *n, unsigned a, unsigned b)
{
    return wg_engine_peer(n->nodes[a].engine, n->nodes[b].pub);
}

static struct wg_engine_stats stats_of(struct te_net *n, unsigned a)
{
    struct wg_engine_stats st;
    wg_engine_stats(n->nodes[a].engine, &st);
    return st;
}

/* Ping a -> b and back, returning once both arrived. */
static void ping_both_ways(struct te_net *n, unsigned a, unsigned b, uint16_t seq)
{
    unsigned want_b = n->nodes[b].delivered + 1, want_a = n->nodes[a].delivered + 1;
    assert_int_equal(te_send_ping(n, a, b, seq), 0);
    assert_true(te_run_until(n, &n->nodes[b].delivered, want_b));
    assert_int_equal(te_send_ping(n, b, a, seq), 0);
    assert_true(te_run_until(n, &n->nodes[a].delivered, want_a));
}

static void test_handshake_and_data_both_ways(void **state)
{
    struct te_net *n = *state;
    uint8_t expect[256];
    size_t len = te_ping(expect, n->nodes[0].addr, n->nodes[1].addr, 1, 56);

    assert_int_equal(te_send_ping(n, 0, 1, 1), 0); /* queued until the handshake is done */
    assert_true(te_run_until(n, &n->nodes[1].delivered, 1));
    assert_int_equal(n->nodes[1].last_len, len);
    assert_memory_equal(n->nodes[1].last, expect, len);

    len = te_ping(expect, n->nodes[1].addr, n->nodes[0].addr, 2, 56);
    assert_int_equal(te_send_ping(n, 1, 0, 2), 0);
    assert_true(te_run_until(n, &n->nodes[0].delivered, 1));
    assert_memory_equal(n->nodes[0].last, expect, len);

    struct wg_peer_stats ps;
    assert_int_equal(wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps), 0);
    assert_true(ps.has_session);
    assert_true(ps.rx_bytes > 0 && ps.tx_bytes > 0);
    assert_int_equal(ps.last_handshake_wall_ns, n->clock.wall_ns);
    assert_int_equal(ps.endpoint.addr.family, AF_INET);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 1);
    assert_int_equal(stats_of(n, 1).handshakes_completed, 1);
    /* The responder's keypair was confirmed by data and moved from next to current. */
    assert_non_null(peer_of(n, 1, 0)->current);
    assert_null(peer_of(n, 1, 0)->next);

    /* Many packets, larger ones too. */
    for (uint16_t i = 0; i < 50; i++) {
        uint8_t big[1500];
        size_t blen = te_ping(big, n->nodes[0].addr, n->nodes[1].addr, i, 1400);
        assert_int_equal(wg_engine_send(n->nodes[0].engine, big, blen), 0);
    }
    assert_true(te_run_until(n, &n->nodes[1].delivered, 51));
    assert_int_equal(n->nodes[1].last_len, 1428);
}

static void test_no_route_and_invalid(void **state)
{
    struct te_net *n = *state;
    uint8_t pkt[128];
    const uint8_t nowhere[4] = {100, 99, 0, 1};
    size_t len = te_ping(pkt, n->nodes[0].addr, nowhere, 1, 8);

    assert_int_equal(wg_engine_send(n->nodes[0].engine, pkt, len), -EHOSTUNREACH);
    assert_int_equal(wg_engine_send(n->nodes[0].engine, pkt, len), -EHOSTUNREACH);
    assert_int_equal(stats_of(n, 0).tx_no_route, 2);
    assert_int_equal(wg_engine_send(n->nodes[0].engine, pkt, 10), -EINVAL);
    pkt[0] = 0x75;
    assert_int_equal(wg_engine_send(n->nodes[0].engine, pkt, len), -EINVAL);
}

static void test_queue_is_bounded(void **state)
{
    struct te_net *n = *state;
    /* Node 1 does not know node 0 yet: the handshake cannot complete, packets queue. */
    assert_int_equal(wg_engine_remove_peer(n->nodes[1].engine, n->nodes[0].pub), 0);
    for (uint16_t i = 0; i < WG_PEER_QUEUE_MAX + 10; i++)
        assert_int_equal(te_send_ping(n, 0, 1, i), 0);
    struct wg_peer_stats ps;
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_int_equal(ps.tx_queue_dropped, 10);
    assert_int_equal(peer_of(n, 0, 1)->queue_len, WG_PEER_QUEUE_MAX);
    te_settle(n);
    assert_int_equal(stats_of(n, 1).rx_unknown_peer, 1);
    /* Node 1 learns the peer; the retransmitted initiation gets through and the queue drains
     * oldest-dropped: the first delivered packet is number 10. */
    assert_int_equal(te_peer(n, 1, 0, 0), 0);
    te_advance(n, WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
    assert_true(te_run_until(n, &n->nodes[1].delivered, WG_PEER_QUEUE_MAX));
    te_settle(n);
    assert_int_equal(n->nodes[1].delivered, WG_PEER_QUEUE_MAX);
    assert_int_equal(n->nodes[1].last[20 + 7], (uint8_t)(WG_PEER_QUEUE_MAX + 9));
}

static void test_keepalive_after_keepalive_timeout(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    /* Node 1 got data last... both did; node 0 sends one more, node 1 has nothing to say. */
    assert_int_equal(te_send_ping(n, 0, 1, 2), 0);
    assert_true(te_run_until(n, &n->nodes[1].delivered, 2));
    struct wg_peer_stats before, after;
    wg_engine_peer_stats(n->nodes[1].engine, n->nodes[0].pub, &before);
    te_advance(n, WG_KEEPALIVE_TIMEOUT_NS - SEC);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[1].engine, n->nodes[0].pub, &after);
    assert_int_equal(after.tx_bytes, before.tx_bytes); /* not yet */
    te_advance(n, SEC);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[1].engine, n->nodes[0].pub, &after);
    assert_int_equal(after.tx_bytes, before.tx_bytes + WG_MSG_TRANSPORT_MIN_LEN);
    /* Node 0 received it: its "no reply" timer is disarmed, no handshake follows. */
    assert_int_equal(peer_of(n, 0, 1)->timers.deadline[WG_TIMER_NEW_HANDSHAKE], 0);
    te_advance(n, 20 * SEC);
    te_settle(n);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 1);
}

static void test_new_handshake_when_peer_silent(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    /* Node 1 vanishes; node 0 sends and hears nothing for KEEPALIVE + REKEY_TIMEOUT. */
    assert_int_equal(wg_engine_remove_peer(n->nodes[1].engine, n->nodes[0].pub), 0);
    struct wg_peer_stats before, after;
    assert_int_equal(te_send_ping(n, 0, 1, 2), 0);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &before);
    te_advance(n, WG_KEEPALIVE_TIMEOUT_NS + WG_REKEY_TIMEOUT_NS);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &after);
    assert_int_equal(after.tx_bytes, before.tx_bytes + WG_MSG_INITIATION_LEN);
    /* A fresh initiation is not yet "unanswered"; one that needed a retry is. */
    assert_false(before.handshake_unanswered);
    assert_false(after.handshake_unanswered);
    te_advance(n, WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &after);
    assert_true(after.handshake_unanswered);
}

static void test_retransmit_then_give_up(void **state)
{
    struct te_net *n = *state;
    /* Nobody answers at node 1's port for node 0 (node 1 forgot it). */
    assert_int_equal(wg_engine_remove_peer(n->nodes[1].engine, n->nodes[0].pub), 0);
    assert_int_equal(te_send_ping(n, 0, 1, 1), 0);
    te_settle(n);
    struct wg_peer_stats ps;
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_int_equal(ps.tx_bytes, WG_MSG_INITIATION_LEN);
    unsigned sent = 1;
    /* Each REKEY_TIMEOUT (+ jitter) another try, for REKEY_ATTEMPT_TIME. */
    for (int i = 0; i < 30; i++) {
        te_advance(n, WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
        wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
        sent = (unsigned)(ps.tx_bytes / WG_MSG_INITIATION_LEN);
    }
    te_settle(n);
    assert_int_equal(sent, 1 + WG_MAX_TIMER_HANDSHAKES);
    assert_int_equal(ps.tx_queue_dropped, 1); /* the ping that waited was dropped on giving up */
    assert_int_equal(stats_of(n, 1).rx_unknown_peer, sent);
    /* Giving up armed the key wipe; the handshake state goes with it. */
    assert_int_not_equal(peer_of(n, 0, 1)->timers.deadline[WG_TIMER_ZERO_KEY_MATERIAL], 0);
    te_advance(n, 3 * WG_REJECT_AFTER_TIME_NS);
    assert_int_equal(peer_of(n, 0, 1)->hs.state, WG_HANDSHAKE_ZEROED);
}

static bool all_zero(const void *p, size_t len)
{
    return sodium_is_zero(p, len);
}

static void test_rekey_after_time(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    struct wg_peer_keypair *first = peer_of(n, 0, 1)->current;
    uint32_t first_index = first->kp.local_index;
    assert_true(first->kp.is_initiator);
    /* Before REKEY_AFTER_TIME data does not rekey; after it, the initiator's next send does. */
    te_advance(n, WG_REKEY_AFTER_TIME_NS - SEC);
    ping_both_ways(n, 0, 1, 2);
    te_settle(n);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 1);
    te_advance(n, 2 * SEC);
    assert_int_equal(te_send_ping(n, 0, 1, 3), 0);
    te_settle(n);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 2);
    assert_int_not_equal(peer_of(n, 0, 1)->current->kp.local_index, first_index);
    /* The old keypair is kept as previous for packets in flight. */
    assert_int_equal(peer_of(n, 0, 1)->previous->kp.local_index, first_index);
    ping_both_ways(n, 0, 1, 4);
}

static void test_responder_does_not_rekey_on_time(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    te_advance(n, WG_REKEY_AFTER_TIME_NS + SEC);
    /* Node 1 (responder) sends: it must not start a handshake for age alone. */
    assert_int_equal(te_send_ping(n, 1, 0, 2), 0);
    te_settle(n);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 1);
    assert_int_equal(stats_of(n, 1).handshakes_completed, 1);
}

static void test_reject_after_time(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    struct wg_peer_keypair *kp1 = peer_of(n, 1, 0)->current;
    assert_non_null(kp1);
    te_advance(n, WG_REJECT_AFTER_TIME_NS + SEC);
    te_settle(n);
    /* Past REJECT_AFTER_TIME the responder's session is unusable: a send starts a handshake
     * and the data goes out on the new session. */
    struct wg_peer_stats ps;
    wg_engine_peer_stats(n->nodes[1].engine, n->nodes[0].pub, &ps);
    assert_false(ps.has_session);
    assert_int_equal(te_send_ping(n, 1, 0, 2), 0);
    assert_true(te_run_until(n, &n->nodes[0].delivered, 2));
    assert_true(stats_of(n, 1).handshakes_completed >= 2);
}

static void test_keys_zeroed_after_three_reject_after_time(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    te_advance(n, WG_KEEPALIVE_TIMEOUT_NS); /* keepalives settle the data timers */
    te_settle(n);
    assert_non_null(peer_of(n, 0, 1)->current);
    te_advance(n, 3 * WG_REJECT_AFTER_TIME_NS - WG_KEEPALIVE_TIMEOUT_NS - SEC);
    te_settle(n);
    assert_non_null(peer_of(n, 0, 1)->current);
    te_advance(n, 2 * SEC);
    for (unsigned a = 0; a < 2; a++) {
        struct wg_peer *p = peer_of(n, a, 1 - a);
        assert_null(p->current);
        assert_null(p->previous);
        assert_null(p->next);
        assert_int_equal(p->hs.state, WG_HANDSHAKE_ZEROED);
        assert_true(all_zero(p->hs.chaining_key, sizeof(p->hs.chaining_key)));
        assert_true(all_zero(p->hs.ephemeral_private, sizeof(p->hs.ephemeral_private)));
    }
    /* And a new session comes up on demand. */
    ping_both_ways(n, 0, 1, 2);
}

static void test_rekey_after_messages_knob(void **state)
{
    struct te_net *n = *state;
    wg_engine_set_rekey_after_messages(n->nodes[0].engine, 5);
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    te_advance(n, WG_REKEY_TIMEOUT_NS); /* initiations are at most one per REKEY_TIMEOUT */
    unsigned before = stats_of(n, 0).handshakes_completed;
    for (uint16_t i = 0; i < 10; i++) {
        assert_int_equal(te_send_ping(n, 0, 1, (uint16_t)(i + 10)), 0);
        te_settle(n);
    }
    assert_int_equal(n->nodes[1].delivered, 11); /* nothing lost across the rekeys */
    assert_true(stats_of(n, 0).handshakes_completed > before);
}

static void test_persistent_keepalive(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    assert_int_equal(te_peer(n, 0, 1, 25), 0); /* turning it on sends one at once */
    te_settle(n);
    struct wg_peer_stats a, b;
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &a);
    te_advance(n, 25 * SEC);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &b);
    assert_true(b.tx_bytes >= a.tx_bytes + WG_MSG_TRANSPORT_MIN_LEN);
    assert_int_equal(b.persistent_keepalive, 25);
}

/* Node 0 has node 1 with persistent keepalive but no endpoint yet (a host name still being
 * resolved); node 1 knows node 0. */
static int setup2_keepalive_no_endpoint(void **state)
{
    static struct te_net net;
    te_net_init(&net, 2);
    assert_int_equal(te_peer(&net, 1, 0, 0), 0);
    struct base_prefix aip = {.addr = {.family = AF_INET, .ip = {100, 64, 0, 2}}, .bits = 32};
    struct wg_peer_config cfg = {
        .allowed_ips = &aip, .allowed_ips_len = 1, .persistent_keepalive = 25};
    memcpy(cfg.public_key, net.nodes[1].pub, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(net.nodes[0].engine, &cfg), 0);
    *state = &net;
    return 0;
}

static void test_keepalive_starts_when_endpoint_arrives(void **state)
{
    struct te_net *n = *state;
    struct wg_peer_stats ps;
    te_settle(n);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_int_equal(ps.tx_bytes, 0); /* nowhere to send to */

    /* The name resolved: the node sets the endpoint, keepalive unchanged. The handshake starts
     * at once, without waiting for traffic, so node 1 can reach node 0 behind its NAT. */
    struct base_endpoint ep = {.port = wg_engine_port(n->nodes[1].engine)};
    te_loopback(&ep.addr, AF_INET);
    struct base_prefix aip = {.addr = {.family = AF_INET, .ip = {100, 64, 0, 2}}, .bits = 32};
    struct wg_peer_config cfg = {
        .endpoint = &ep, .allowed_ips = &aip, .allowed_ips_len = 1, .persistent_keepalive = 25};
    memcpy(cfg.public_key, n->nodes[1].pub, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), 0);
    te_settle(n);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 1);
    wg_engine_peer_stats(n->nodes[1].engine, n->nodes[0].pub, &ps);
    assert_int_equal(ps.endpoint.port, wg_engine_port(n->nodes[0].engine));
    assert_int_equal(te_send_ping(n, 1, 0, 1), 0); /* node 1 reaches node 0 now */
    assert_true(te_run_until(n, &n->nodes[0].delivered, 1));

    /* The same endpoint again (a re-resolve) with a session up sends nothing extra... */
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    uint64_t tx = ps.tx_bytes;
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), 0);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_int_equal(ps.tx_bytes, tx);
    /* ...and the persistent keepalive goes on by itself. */
    te_advance(n, 25 * SEC);
    te_settle(n);
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_true(ps.tx_bytes >= tx + WG_MSG_TRANSPORT_MIN_LEN);
}

static void test_runtime_peer_changes_keep_other_sessions(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    ping_both_ways(n, 0, 2, 1);
    te_settle(n);
    struct wg_peer_keypair *kp01 = peer_of(n, 0, 1)->current;
    uint32_t idx01 = kp01->kp.local_index;
    unsigned hs0 = stats_of(n, 0).handshakes_completed;

    /* Remove node 2 from node 0: traffic to node 1 goes on in the same session. */
    assert_int_equal(wg_engine_remove_peer(n->nodes[0].engine, n->nodes[2].pub), 0);
    assert_int_equal(wg_engine_remove_peer(n->nodes[0].engine, n->nodes[2].pub), -ENOENT);
    assert_int_equal(te_send_ping(n, 0, 2, 2), -EHOSTUNREACH);
    ping_both_ways(n, 0, 1, 2);
    assert_int_equal(peer_of(n, 0, 1)->current->kp.local_index, idx01);

    /* Change node 1's config (another allowed IP, keepalive): its session stays. */
    struct base_prefix aips[2] = {
        {.addr = {.family = AF_INET, .ip = {100, 64, 0, 2}}, .bits = 32},
        {.addr = {.family = AF_INET6, .ip = {0xfd, 0x7a, 0x11, 0x5c}}, .bits = 64}};
    struct wg_peer_config cfg = {.allowed_ips = aips, .allowed_ips_len = 2};
    memcpy(cfg.public_key, n->nodes[1].pub, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), 0);
    ping_both_ways(n, 0, 1, 3);
    assert_int_equal(peer_of(n, 0, 1)->current->kp.local_index, idx01);
    assert_int_equal(stats_of(n, 0).handshakes_completed, hs0);

    /* Node 2 comes back: a fresh handshake, node 1's session still untouched. (A second
     * passes first: node 2 refuses initiations whose timestamp is not newer than the last.) */
    te_advance(n, SEC);
    assert_int_equal(te_peer(n, 0, 2, 0), 0);
    ping_both_ways(n, 0, 2, 4);
    assert_int_equal(stats_of(n, 0).handshakes_completed, hs0 + 1);
    assert_int_equal(peer_of(n, 0, 1)->current->kp.local_index, idx01);
}

static void test_source_outside_allowed_ips_dropped(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    uint8_t pkt[128];
    const uint8_t spoofed[4] = {100, 64, 0, 99};
    size_t len = te_ping(pkt, spoofed, n->nodes[0].addr, 2, 8);
    assert_int_equal(wg_engine_send(n->nodes[1].engine, pkt, len), 0);
    te_settle(n);
    assert_int_equal(n->nodes[0].delivered, 1);
    assert_int_equal(stats_of(n, 0).rx_bad_allowed_ip, 1);
}

static void test_endpoint_roaming(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    /* Node 0 believes node 1 is elsewhere; node 1's next authenticated packet corrects it. */
    struct base_endpoint wrong = {.port = 9};
    te_loopback(&wrong.addr, AF_INET);
    struct base_prefix aip = {.addr = {.family = AF_INET, .ip = {100, 64, 0, 2}}, .bits = 32};
    struct wg_peer_config cfg = {.endpoint = &wrong, .allowed_ips = &aip, .allowed_ips_len = 1};
    memcpy(cfg.public_key, n->nodes[1].pub, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), 0);
    assert_int_equal(te_send_ping(n, 1, 0, 2), 0);
    assert_true(te_run_until(n, &n->nodes[0].delivered, 2));
    struct wg_peer_stats ps;
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_int_equal(ps.endpoint.port, wg_engine_port(n->nodes[1].engine));
    ping_both_ways(n, 0, 1, 3);
}

/* The engine's lines name a peer as every module does: the name its owner gave, its short key. */
static void test_peer_named_in_logs(void **state)
{
    struct te_net *n = *state;
    char key8[WG_KEY_SHORT_LEN + 1], want[64];
    wg_key_short(key8, n->nodes[1].pub);
    struct base_prefix aip = {.addr = {.family = AF_INET, .ip = {100, 64, 0, 2}}, .bits = 32};
    struct wg_peer_config cfg = {.allowed_ips = &aip, .allowed_ips_len = 1, .name = "db"};
    memcpy(cfg.public_key, n->nodes[1].pub, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), 0);
    snprintf(want, sizeof(want), "event=peer_configured peer=db peer_key=%s ", key8);
    assert_non_null(strstr(n->nodes[0].last_log, want));
    ping_both_ways(n, 0, 1, 1); /* the handshake's lines too */
    snprintf(want, sizeof(want), "peer=db peer_key=%s", key8);
    assert_non_null(strstr(n->nodes[0].last_log, want));
    cfg.name = NULL; /* renamed to nothing: the short key stands for it */
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), 0);
    snprintf(want, sizeof(want), "peer=%s peer_key=%s ", key8, key8);
    assert_non_null(strstr(n->nodes[0].last_log, want));
}

static void send_raw(struct te_net *n, unsigned to, const void *data, size_t len)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons(wg_engine_port(n->nodes[to].engine))};
    assert_true(fd >= 0);
    assert_int_equal(sendto(fd, data, len, 0, (struct sockaddr *)&dst, sizeof(dst)), (ssize_t)len);
    close(fd);
}

static void test_garbage_counted(void **state)
{
    struct te_net *n = *state;
    uint8_t buf[200];

    ping_both_ways(n, 0, 1, 1);
    struct wg_engine_stats before = stats_of(n, 1);
    randombytes_buf(buf, sizeof(buf));
    buf[0] = 9;
    send_raw(n, 1, buf, sizeof(buf));   /* unknown type */
    send_raw(n, 1, "\x01\0\0\0abc", 7); /* truncated initiation */
    send_raw(n, 1, buf, 0);             /* empty */
    memset(buf, 0, sizeof(buf));
    buf[0] = 1;
    send_raw(n, 1, buf, WG_MSG_INITIATION_LEN); /* initiation with a wrong mac1 */
    buf[0] = 4;
    buf[4] = 0xde;
    send_raw(n, 1, buf, 64); /* transport to an index nobody has */
    te_settle(n);
    struct wg_engine_stats after = stats_of(n, 1);
    assert_int_equal(after.rx_garbage, before.rx_garbage + 3);
    assert_int_equal(after.rx_bad_mac, before.rx_bad_mac + 1);
    assert_int_equal(after.rx_bad_index, before.rx_bad_index + 1);
    /* The session is unharmed. */
    ping_both_ways(n, 0, 1, 2);
}

static void test_replay_and_forgery_counted(void **state)
{
    struct te_net *n = *state;
    ping_both_ways(n, 0, 1, 1);
    te_settle(n);
    /* A transport message sealed with node 0's keys, received twice by node 1. */
    struct wg_keypair *kp = &peer_of(n, 0, 1)->current->kp;
    uint8_t pkt[256], msg[512], copy[512];
    size_t len = te_ping(pkt, n->nodes[0].addr, n->nodes[1].addr, 7, 16), mlen = 0;
    assert_int_equal(wg_keypair_seal(kp, pkt, len, msg, sizeof(msg), &mlen, n->clock.mono_ns),
                     WG_KEYPAIR_OK);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons(wg_engine_port(n->nodes[0].engine))};
    memcpy(copy, msg, mlen);
    wg_engine_receive(n->nodes[1].engine, copy, mlen, (struct sockaddr *)&src);
    assert_int_equal(n->nodes[1].delivered, 2);
    memcpy(copy, msg, mlen);
    wg_engine_receive(n->nodes[1].engine, copy, mlen, (struct sockaddr *)&src);
    assert_int_equal(n->nodes[1].delivered, 2);
    assert_int_equal(stats_of(n, 1).rx_replayed, 1);
    /* A flipped bit fails authentication. */
    memcpy(copy, msg, mlen);
    copy[mlen - 1] ^= 1;
    copy[8] ^= 0x40; /* new counter so it is not a replay */
    wg_engine_receive(n->nodes[1].engine, copy, mlen, (struct sockaddr *)&src);
    assert_int_equal(stats_of(n, 1).rx_bad_packet, 1);
    assert_int_equal(n->nodes[1].delivered, 2);
}

static void test_under_load_cookie(void **state)
{
    struct te_net *n = *state;
    /* Node 1 is "under load" from the first handshake message: it answers with a cookie, and
     * node 0's retransmission, carrying MAC2, is accepted. */
    wg_engine_set_under_load_threshold(n->nodes[1].engine, 0);
    assert_int_equal(te_send_ping(n, 0, 1, 1), 0);
    te_settle(n);
    assert_int_equal(stats_of(n, 1).cookie_replies_sent, 1);
    assert_int_equal(n->nodes[1].delivered, 0);
    te_advance(n, WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
    assert_true(te_run_until(n, &n->nodes[1].delivered, 1));
    assert_int_equal(stats_of(n, 1).cookie_replies_sent, 1);
    assert_int_equal(stats_of(n, 0).handshakes_completed, 1);
}

static void test_simultaneous_initiation(void **state)
{
    struct te_net *n = *state;
    /* Both sides start a handshake at once: each answers the other's initiation, which
     * supersedes its own; the retransmission sorts it out (as in the reference
     * implementations) and the queued packets arrive. */
    assert_int_equal(te_send_ping(n, 0, 1, 1), 0);
    assert_int_equal(te_send_ping(n, 1, 0, 1), 0);
    te_settle(n);
    te_advance(n, WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
    assert_true(te_run_until(n, &n->nodes[1].delivered, 1));
    assert_true(te_run_until(n, &n->nodes[0].delivered, 1));
    ping_both_ways(n, 0, 1, 2);
    ping_both_ways(n, 1, 0, 3);
}

static void test_ipv6_transport_and_ipv6_inside(void **state)
{
    struct te_net *n = *state;
    uint8_t pkt[1500];
    /* IPv4 inside IPv6 UDP, then IPv6 inside, both ways. */
    ping_both_ways(n, 0, 1, 1);
    size_t len = te_ipv6(pkt, n->nodes[0].addr6, n->nodes[1].addr6, 1000);
    assert_int_equal(wg_engine_send(n->nodes[0].engine, pkt, len), 0);
    assert_true(te_run_until(n, &n->nodes[1].delivered, 2));
    assert_int_equal(n->nodes[1].last_len, len);
    assert_memory_equal(n->nodes[1].last, pkt, len);
    len = te_ipv6(pkt, n->nodes[1].addr6, n->nodes[0].addr6, 3);
    assert_int_equal(wg_engine_send(n->nodes[1].engine, pkt, len), 0);
    assert_true(te_run_until(n, &n->nodes[0].delivered, 2));
    assert_int_equal(n->nodes[0].last_len, len); /* padding removed by the IPv6 length */
    struct wg_peer_stats ps;
    wg_engine_peer_stats(n->nodes[0].engine, n->nodes[1].pub, &ps);
    assert_int_equal(ps.endpoint.addr.family, AF_INET6);
    /* An IPv6 source outside the allowed IPs is dropped. */
    uint8_t other[16];
    memcpy(other, n->nodes[1].addr6, 16);
    other[14] = 9;
    len = te_ipv6(pkt, other, n->nodes[0].addr6, 3);
    assert_int_equal(wg_engine_send(n->nodes[1].engine, pkt, len), 0);
    te_settle(n);
    assert_int_equal(n->nodes[0].delivered, 2);
    assert_int_equal(stats_of(n, 0).rx_bad_allowed_ip, 1);
}

static void test_bad_config_refused(void **state)
{
    struct te_net *n = *state;
    struct base_prefix bad = {.addr.family = AF_INET, .bits = 33};
    struct wg_peer_config cfg = {.allowed_ips = &bad, .allowed_ips_len = 1};
    memcpy(cfg.public_key, n->nodes[1].pub, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), -EINVAL);
    cfg.allowed_ips_len = 0;
    memset(cfg.public_key, 0, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), -EINVAL);
    memcpy(cfg.public_key, n->nodes[0].pub, WG_KEY_LEN); /* ourselves */
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), -EINVAL);
    struct base_endpoint bogus = {.addr.family = AF_UNIX, .port = 1};
    memcpy(cfg.public_key, n->nodes[1].pub, WG_KEY_LEN);
    cfg.endpoint = &bogus;
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &cfg), -EINVAL);
    /* The existing peer is untouched by the refused updates. */
    ping_both_ways(n, 0, 1, 1);
}

static void count_closed(void *arg)
{
    (*(int *)arg)++;
}

static void test_create_errors_and_dual_stack(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct wg_engine *e = (struct wg_engine *)1;
    struct wg_engine_options opt = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    wg_key_generate(opt.private_key);

    assert_int_equal(wg_engine_new(NULL, &opt, &e), -EINVAL); /* no loop */
    assert_null(e);
    opt.no_ipv4 = opt.no_ipv6 = true;
    assert_int_equal(wg_engine_new(&loop, &opt, &e), -EINVAL);
    opt.no_ipv4 = opt.no_ipv6 = false;

    /* Both families on one ephemeral port. */
    te_loopback(&opt.bind4, AF_INET);
    te_loopback(&opt.bind6, AF_INET6);
    assert_int_equal(wg_engine_new(&loop, &opt, &e), 0);
    uint16_t port = wg_engine_port(e);
    assert_int_not_equal(port, 0);
    uint8_t pub[WG_KEY_LEN], expect[WG_KEY_LEN];
    wg_engine_public_key(e, pub);
    wg_key_public(expect, opt.private_key);
    assert_memory_equal(pub, expect, WG_KEY_LEN);

    /* Both sockets polled, big kernel buffers (the FORCE variant works as root only). */
    assert_true(uv_is_active((uv_handle_t *)&e->udp.s4.poll));
    assert_true(uv_is_active((uv_handle_t *)&e->udp.s6.poll));
    int rcvbuf = 0;
    socklen_t optlen = sizeof(rcvbuf);
    assert_int_equal(getsockopt(e->udp.s6.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen), 0);
    if (geteuid() == 0)
        assert_true(rcvbuf >= WG_UDP_SOCKBUF);

    /* That port is taken now: a second engine on it fails cleanly, with the bind's errno. */
    struct wg_engine *e2 = NULL;
    opt.listen_port = port;
    assert_int_equal(wg_engine_new(&loop, &opt, &e2), -EADDRINUSE);
    assert_null(e2);
    opt.no_ipv4 = true; /* only the IPv6 half collides */
    assert_int_equal(wg_engine_new(&loop, &opt, &e2), -EADDRINUSE);

    int closed = 0;
    wg_engine_close(e, count_closed, &closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* In a process that may not bind low ports: the engine reports the bind's own errno. */
static int bind_low_port(void)
{
    uv_loop_t loop;
    struct wg_engine *e = NULL;
    struct wg_engine_options opt = {.listen_port = 80, .no_ipv6 = true};
    wg_key_generate(opt.private_key);
    te_loopback(&opt.bind4, AF_INET);
    if (uv_loop_init(&loop) != 0)
        return -1;
    int err = wg_engine_new(&loop, &opt, &e);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return err;
}

static void test_bind_error_is_the_errno(void **state)
{
    (void)state;
    /* Issue 12: "ListenPort = 80 as an unprivileged user" must read "permission denied". */
    FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
    int start = 1024;
    if (f) {
        if (fscanf(f, "%d", &start) != 1)
            start = 1024;
        fclose(f);
    }
    if (start <= 80)
        skip();
    if (geteuid() != 0) {
        assert_int_equal(bind_low_port(), -EACCES);
        return;
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(setgid(65534) == 0 && setuid(65534) == 0 && bind_low_port() == -EACCES ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_and_data_both_ways, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_no_route_and_invalid, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_queue_is_bounded, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_after_keepalive_timeout, te_setup2,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_new_handshake_when_peer_silent, te_setup2,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_retransmit_then_give_up, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_rekey_after_time, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_responder_does_not_rekey_on_time, te_setup2,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_reject_after_time, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_keys_zeroed_after_three_reject_after_time, te_setup2,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_rekey_after_messages_knob, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_persistent_keepalive, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_starts_when_endpoint_arrives,
                                        setup2_keepalive_no_endpoint, te_teardown),
        cmocka_unit_test_setup_teardown(test_runtime_peer_changes_keep_other_sessions, setup3,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_source_outside_allowed_ips_dropped, te_setup2,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_endpoint_roaming, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_counted, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_forgery_counted, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_under_load_cookie, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_simultaneous_initiation, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_transport_and_ipv6_inside, setup2_ipv6,
                                        te_teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_refused, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_peer_named_in_logs, te_setup2, te_teardown),
        cmocka_unit_test(test_create_errors_and_dual_stack),
        cmocka_unit_test(test_bind_error_is_the_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
