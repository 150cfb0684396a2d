/* The protocol timers as pure functions: which events arm and disarm what, and when. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "timers.h"

#define SEC WG_NSEC_PER_SEC
#define T0 (1000 * SEC)
#define BIT(t) (1u << (t))

static void test_idle_has_no_deadline(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    assert_int_equal(wg_timers_next(&t), 0);
    assert_int_equal(wg_timers_expire(&t, UINT64_MAX), 0);
}

static void test_keepalive_after_data_received(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_data_received(&t, T0);
    assert_int_equal(wg_timers_next(&t), T0 + WG_KEEPALIVE_TIMEOUT_NS);
    /* More data does not push it back, it asks for another keepalive after this one. */
    wg_timers_data_received(&t, T0 + 3 * SEC);
    assert_int_equal(wg_timers_next(&t), T0 + WG_KEEPALIVE_TIMEOUT_NS);
    assert_true(t.need_another_keepalive);
    assert_int_equal(wg_timers_expire(&t, T0 + WG_KEEPALIVE_TIMEOUT_NS - 1), 0);
    assert_int_equal(wg_timers_expire(&t, T0 + WG_KEEPALIVE_TIMEOUT_NS),
                     BIT(WG_TIMER_SEND_KEEPALIVE));
    assert_int_equal(wg_timers_next(&t), 0); /* fired timers are disarmed */
}

static void test_sending_cancels_keepalive(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_data_received(&t, T0);
    wg_timers_any_authenticated_packet_sent(&t);
    assert_int_equal(t.deadline[WG_TIMER_SEND_KEEPALIVE], 0);
}

static void test_new_handshake_when_no_reply(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_data_sent(&t, T0);
    wg_timers_data_sent(&t, T0 + SEC); /* first send sets the deadline */
    uint64_t due = T0 + WG_KEEPALIVE_TIMEOUT_NS + WG_REKEY_TIMEOUT_NS;
    assert_int_equal(wg_timers_next(&t), due);
    assert_int_equal(wg_timers_expire(&t, due), BIT(WG_TIMER_NEW_HANDSHAKE));
    /* Any authenticated packet from the peer cancels it. */
    wg_timers_data_sent(&t, T0);
    wg_timers_any_authenticated_packet_received(&t);
    assert_int_equal(wg_timers_next(&t), 0);
}

static void test_retransmit_with_jitter_then_complete(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_handshake_initiated(&t, T0, 123);
    assert_int_equal(wg_timers_next(&t), T0 + WG_REKEY_TIMEOUT_NS + 123);
    t.handshake_attempts = 4;
    wg_timers_handshake_complete(&t);
    assert_int_equal(wg_timers_next(&t), 0);
    assert_int_equal(t.handshake_attempts, 0);
}

static void test_session_zeroes_after_three_reject(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_session_derived(&t, T0);
    assert_int_equal(wg_timers_next(&t), T0 + 3 * WG_REJECT_AFTER_TIME_NS);
    /* A new session moves it. */
    wg_timers_session_derived(&t, T0 + 100 * SEC);
    assert_int_equal(wg_timers_expire(&t, T0 + 3 * WG_REJECT_AFTER_TIME_NS), 0);
    assert_int_equal(wg_timers_expire(&t, T0 + 100 * SEC + 3 * WG_REJECT_AFTER_TIME_NS),
                     BIT(WG_TIMER_ZERO_KEY_MATERIAL));
}

static void test_give_up_keeps_existing_zero_deadline(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_session_derived(&t, T0);
    wg_timers_handshake_initiated(&t, T0 + SEC, 0);
    wg_timers_data_received(&t, T0 + SEC);
    wg_timers_handshake_gave_up(&t, T0 + 90 * SEC);
    assert_int_equal(t.deadline[WG_TIMER_RETRANSMIT_HANDSHAKE], 0);
    assert_int_equal(t.deadline[WG_TIMER_SEND_KEEPALIVE], 0);
    assert_int_equal(wg_timers_next(&t), T0 + 3 * WG_REJECT_AFTER_TIME_NS);
    /* Without a session, giving up schedules the wipe from now. */
    wg_timers_init(&t, 0);
    wg_timers_handshake_gave_up(&t, T0);
    assert_int_equal(wg_timers_next(&t), T0 + 3 * WG_REJECT_AFTER_TIME_NS);
}

static void test_persistent_keepalive_follows_traffic(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 25);
    wg_timers_any_authenticated_packet_traversal(&t, T0);
    assert_int_equal(wg_timers_next(&t), T0 + 25 * SEC);
    wg_timers_any_authenticated_packet_traversal(&t, T0 + 10 * SEC);
    assert_int_equal(wg_timers_next(&t), T0 + 35 * SEC);
    assert_int_equal(wg_timers_expire(&t, T0 + 35 * SEC), BIT(WG_TIMER_PERSISTENT_KEEPALIVE));
    /* Off: traffic arms nothing. */
    wg_timers_init(&t, 0);
    wg_timers_any_authenticated_packet_traversal(&t, T0);
    assert_int_equal(wg_timers_next(&t), 0);
}

static void test_several_fire_together_and_next_is_earliest(void **state)
{
    (void)state;
    struct wg_timers t;
    wg_timers_init(&t, 0);
    wg_timers_data_received(&t, T0);          /* T0 + 10 */
    wg_timers_data_sent(&t, T0 + 2 * SEC);    /* T0 + 17 */
    wg_timers_handshake_initiated(&t, T0, 0); /* T0 + 5 */
    assert_int_equal(wg_timers_next(&t), T0 + 5 * SEC);
    assert_int_equal(wg_timers_expire(&t, T0 + 20 * SEC), BIT(WG_TIMER_SEND_KEEPALIVE) |
                                                              BIT(WG_TIMER_NEW_HANDSHAKE) |
                                                              BIT(WG_TIMER_RETRANSMIT_HANDSHAKE));
    wg_timers_session_derived(&t, T0);
    wg_timers_stop(&t);
    assert_int_equal(wg_timers_next(&t), 0);
}

static void test_constants_match_whitepaper(void **state)
{
    (void)state;
    assert_int_equal(WG_MAX_TIMER_HANDSHAKES, 18);
    assert_true(WG_REKEY_AFTER_TIME_NS == 120 * SEC);
    assert_true(WG_REJECT_AFTER_TIME_NS == 180 * SEC);
    assert_true(WG_KEEPALIVE_TIMEOUT_NS == 10 * SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_has_no_deadline),
        cmocka_unit_test(test_keepalive_after_data_received),
        cmocka_unit_test(test_sending_cancels_keepalive),
        cmocka_unit_test(test_new_handshake_when_no_reply),
        cmocka_unit_test(test_retransmit_with_jitter_then_complete),
        cmocka_unit_test(test_session_zeroes_after_three_reject),
        cmocka_unit_test(test_give_up_keeps_existing_zero_deadline),
        cmocka_unit_test(test_persistent_keepalive_follows_traffic),
        cmocka_unit_test(test_several_fire_together_and_next_is_earliest),
        cmocka_unit_test(test_constants_match_whitepaper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
