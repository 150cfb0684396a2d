/*
 * Handshake round trips (wg_engine_initiate_handshake and options.on_handshake), the engine
 * half of `tunless ping --wireguard`: engines on loopback UDP, a clock the test moves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "device.h"
#include "engine_pair.h"

#define MS 1000000ULL

static uint64_t completed(struct te_net *n, unsigned a)
{
    struct wg_engine_stats st;
    wg_engine_stats(n->nodes[a].engine, &st);
    return st.handshakes_completed;
}

/* a's probe to b is answered: one more on_handshake for b's key with the round trip the clock
 * moved by while the messages were in flight. */
static void probe_answered(struct te_net *n, unsigned a, unsigned b, uint64_t rtt_ns)
{
    unsigned want = n->nodes[a].handshakes + 1;
    /* The responder takes only initiations newer than the last (in TAI64N's 16 ms steps) and
     * at most one per 20 ms (flood). */
    n->clock.wall_ns += 20 * MS;
    n->clock.mono_ns += 20 * MS;
    assert_int_equal(wg_engine_initiate_handshake(n->nodes[a].engine, n->nodes[b].pub), 0);
    n->clock.mono_ns += rtt_ns; /* read by the engine when the response arrives */
    assert_true(te_run_until(n, &n->nodes[a].handshakes, want));
    assert_int_equal(n->nodes[a].last_rtt_ns, rtt_ns);
    assert_memory_equal(n->nodes[a].last_hs_peer, n->nodes[b].pub, WG_KEY_LEN);
}

static void test_probe_round_trip(void **state)
{
    struct te_net *n = *state;
    /* Data starts the first handshake: node 0 initiated it, so node 0 hears of it. */
    assert_int_equal(te_send_ping(n, 0, 1, 1), 0);
    assert_true(te_run_until(n, &n->nodes[1].delivered, 1));
    assert_int_equal(n->nodes[0].handshakes, 1);
    assert_int_equal(n->nodes[1].handshakes, 0); /* the responder initiated nothing */

    /* A probe right after it goes out anyway (a rekey would wait REKEY_TIMEOUT). */
    probe_answered(n, 0, 1, 7 * MS);
    assert_int_equal(completed(n, 0), 2);
    /* And the responder may probe too; then data still flows both ways on the new keys. */
    probe_answered(n, 1, 0, 3 * MS);
    assert_int_equal(te_send_ping(n, 0, 1, 2), 0);
    assert_true(te_run_until(n, &n->nodes[1].delivered, 2));
    assert_int_equal(te_send_ping(n, 1, 0, 3), 0);
    assert_true(te_run_until(n, &n->nodes[0].delivered, 1));
    assert_int_equal(n->nodes[0].handshakes, 2);
}

static void test_probe_unanswered_then_retried(void **state)
{
    struct te_net *n = *state;
    assert_int_equal(wg_engine_remove_peer(n->nodes[1].engine, n->nodes[0].pub), 0);
    assert_int_equal(wg_engine_initiate_handshake(n->nodes[0].engine, n->nodes[1].pub), 0);
    te_settle(n);
    assert_int_equal(n->nodes[0].handshakes, 0); /* node 1 no longer knows node 0 */
    struct wg_engine_stats st;
    wg_engine_stats(n->nodes[1].engine, &st);
    assert_int_equal(st.rx_unknown_peer, 1);

    /* The probe's initiation is retried as any would be: once node 1 knows node 0 again, a
     * retry completes the handshake and node 0 hears of it. */
    assert_int_equal(te_peer(n, 1, 0, 0), 0);
    te_advance(n, WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS + 1000 * MS);
    assert_int_equal(n->nodes[0].handshakes, 1);
}

static void test_probe_errors(void **state)
{
    struct te_net *n = *state;
    uint8_t stranger[WG_KEY_LEN], priv[WG_KEY_LEN];
    wg_key_generate(priv);
    wg_key_public(stranger, priv);
    assert_int_equal(wg_engine_initiate_handshake(n->nodes[0].engine, stranger), -ENOENT);

    /* A peer with no endpoint cannot be probed. */
    struct wg_peer_config pc = {.persistent_keepalive = 0};
    memcpy(pc.public_key, stranger, WG_KEY_LEN);
    assert_int_equal(wg_engine_set_peer(n->nodes[0].engine, &pc), 0);
    assert_int_equal(wg_engine_initiate_handshake(n->nodes[0].engine, stranger), -EDESTADDRREQ);
    te_settle(n);
    assert_int_equal(n->nodes[0].handshakes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_round_trip, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_probe_unanswered_then_retried, te_setup2, te_teardown),
        cmocka_unit_test_setup_teardown(test_probe_errors, te_setup2, te_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
