/* mac1/mac2 and cookie replies, with injected time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cookie.h"
#include "key.h"
#include "messages.h"

#define SEC WG_NSEC_PER_SEC

struct fixture {
    uint8_t responder_pub[32], other_pub[32];
    struct wg_cookie_checker checker; /* at the responder */
    struct wg_cookie_maker maker;     /* at the initiator, for the responder */
    uint8_t msg[WG_MSG_INITIATION_LEN];
};

static const uint8_t src_a[6] = {192, 0, 2, 1, 0x12, 0x34};
static const uint8_t src_b[6] = {192, 0, 2, 2, 0x12, 0x34};

static void setup_fixture(struct fixture *f)
{
    uint8_t priv[32];
    wg_key_generate(priv);
    assert_int_equal(wg_key_public(f->responder_pub, priv), 0);
    wg_key_generate(priv);
    assert_int_equal(wg_key_public(f->other_pub, priv), 0);
    wg_cookie_checker_init(&f->checker, f->responder_pub);
    wg_cookie_maker_init(&f->maker, f->responder_pub);
    randombytes_buf(f->msg, sizeof(f->msg));
    f->msg[0] = WG_MSG_INITIATION;
    f->msg[1] = f->msg[2] = f->msg[3] = 0;
}

/* The responder under load answers with a cookie; the initiator takes it. */
static void get_cookie(struct fixture *f, const uint8_t *src, uint64_t now)
{
    struct wg_msg_cookie_reply reply;
    wg_cookie_add_macs(&f->maker, f->msg, sizeof(f->msg), now);
    assert_true(wg_cookie_check_mac1(&f->checker, f->msg, sizeof(f->msg)));
    assert_int_equal(
        wg_cookie_create_reply(&f->checker, f->msg, sizeof(f->msg), 42, src, 6, now, &reply), 0);
    assert_int_equal(wg_message_type((uint8_t *)&reply, sizeof(reply)), WG_MSG_COOKIE_REPLY);
    assert_int_equal(wg_message_receiver_index((uint8_t *)&reply, WG_MSG_COOKIE_REPLY), 42);
    assert_int_equal(wg_cookie_consume_reply(&f->maker, &reply, now), 0);
}

static void test_mac1(void **state)
{
    (void)state;
    struct fixture f;
    setup_fixture(&f);

    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), 0);
    assert_true(wg_cookie_check_mac1(&f.checker, f.msg, sizeof(f.msg)));
    /* No cookie yet: mac2 is zero. */
    assert_true(sodium_is_zero(f.msg + sizeof(f.msg) - 16, 16));
    /* mac1 covers every byte before it, not mac2. */
    for (size_t i = 0; i < sizeof(f.msg) - 16; i++) {
        f.msg[i] ^= 0x10;
        assert_false(wg_cookie_check_mac1(&f.checker, f.msg, sizeof(f.msg)));
        f.msg[i] ^= 0x10;
    }
    f.msg[sizeof(f.msg) - 1] ^= 1;
    assert_true(wg_cookie_check_mac1(&f.checker, f.msg, sizeof(f.msg)));
    /* A maker for another key makes a mac1 this checker refuses. */
    struct wg_cookie_maker wrong;
    wg_cookie_maker_init(&wrong, f.other_pub);
    wg_cookie_add_macs(&wrong, f.msg, sizeof(f.msg), 0);
    assert_false(wg_cookie_check_mac1(&f.checker, f.msg, sizeof(f.msg)));
    /* Too short to hold MACs. */
    assert_false(wg_cookie_check_mac1(&f.checker, f.msg, 31));
}

static void test_cookie_round_trip_and_mac2(void **state)
{
    (void)state;
    struct fixture f;
    setup_fixture(&f);
    uint64_t t0 = 1000 * SEC;

    /* Before any cookie: mac2 does not verify (and no secret exists yet). */
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t0);
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6, t0));

    get_cookie(&f, src_a, t0);
    /* The next message carries mac2, valid from src_a only. */
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t0 + SEC);
    assert_true(wg_cookie_check_mac1(&f.checker, f.msg, sizeof(f.msg)));
    assert_true(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6, t0 + SEC));
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_b, 6, t0 + SEC));
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 5, t0 + SEC));
    /* mac2 covers mac1. */
    f.msg[sizeof(f.msg) - 20] ^= 1;
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6, t0 + SEC));
    f.msg[sizeof(f.msg) - 20] ^= 1;
    /* Source too long for an address. */
    uint8_t big[WG_COOKIE_SOURCE_MAX + 1] = {0};
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), big, sizeof(big), t0));
}

static void test_cookie_reply_binding(void **state)
{
    (void)state;
    struct fixture f;
    struct wg_msg_cookie_reply reply, bad;
    setup_fixture(&f);

    /* No message sent yet: any reply is refused. */
    assert_int_equal(
        wg_cookie_create_reply(&f.checker, f.msg, sizeof(f.msg), 1, src_a, 6, 0, &reply), 0);
    assert_int_equal(wg_cookie_consume_reply(&f.maker, &reply, 0), -1);

    /* A reply to a different message (its mac1 is the AAD) is refused. */
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), 0);
    uint8_t other[WG_MSG_RESPONSE_LEN];
    randombytes_buf(other, sizeof(other));
    assert_int_equal(
        wg_cookie_create_reply(&f.checker, other, sizeof(other), 1, src_a, 6, 0, &reply), 0);
    assert_int_equal(wg_cookie_consume_reply(&f.maker, &reply, 0), -1);
    assert_false(f.maker.has_cookie);

    /* Tampered replies are refused; the right one is accepted exactly once. */
    assert_int_equal(
        wg_cookie_create_reply(&f.checker, f.msg, sizeof(f.msg), 1, src_a, 6, 0, &reply), 0);
    for (size_t i = 8; i < sizeof(reply); i++) {
        bad = reply;
        ((uint8_t *)&bad)[i] ^= 4;
        assert_int_equal(wg_cookie_consume_reply(&f.maker, &bad, 0), -1);
    }
    bad = reply;
    bad.header.reserved[0] = 1;
    assert_int_equal(wg_cookie_consume_reply(&f.maker, &bad, 0), -1);
    assert_int_equal(wg_cookie_consume_reply(&f.maker, &reply, 0), 0);
    assert_int_equal(wg_cookie_consume_reply(&f.maker, &reply, 0), -1);

    /* A maker keyed for another responder cannot decrypt it. */
    struct wg_cookie_maker wrong;
    wg_cookie_maker_init(&wrong, f.other_pub);
    wg_cookie_add_macs(&wrong, f.msg, sizeof(f.msg), 0);
    assert_int_equal(
        wg_cookie_create_reply(&f.checker, f.msg, sizeof(f.msg), 1, src_a, 6, 0, &reply), 0);
    assert_int_equal(wg_cookie_consume_reply(&wrong, &reply, 0), -1);

    /* Bad lengths. */
    assert_int_equal(wg_cookie_create_reply(&f.checker, f.msg, 31, 1, src_a, 6, 0, &reply), -1);
    uint8_t big[WG_COOKIE_SOURCE_MAX + 1] = {0};
    assert_int_equal(
        wg_cookie_create_reply(&f.checker, f.msg, sizeof(f.msg), 1, big, sizeof(big), 0, &reply),
        -1);
}

static void test_cookie_expiry(void **state)
{
    (void)state;
    struct fixture f;
    setup_fixture(&f);
    uint64_t t0 = 50 * SEC;

    get_cookie(&f, src_a, t0);
    /* Just under 2 minutes: still used. */
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t0 + WG_COOKIE_REFRESH_TIME_NS - 1);
    assert_false(sodium_is_zero(f.msg + sizeof(f.msg) - 16, 16));
    assert_true(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6,
                                     t0 + WG_COOKIE_REFRESH_TIME_NS - 1));
    /* At 2 minutes the initiator stops sending it... */
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t0 + WG_COOKIE_REFRESH_TIME_NS);
    assert_true(sodium_is_zero(f.msg + sizeof(f.msg) - 16, 16));
    /* ...and the responder's secret is too old to accept one anyway. */
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t0 + 1);
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6,
                                      t0 + WG_COOKIE_REFRESH_TIME_NS));
}

static void test_secret_rotation(void **state)
{
    (void)state;
    struct fixture f;
    setup_fixture(&f);
    uint64_t t0 = 10 * SEC;

    get_cookie(&f, src_a, t0);
    uint8_t first_secret[32];
    memcpy(first_secret, f.checker.secret, 32);
    /* Within 2 minutes another reply reuses the secret: same cookie for the same source. */
    uint8_t first_cookie[16];
    memcpy(first_cookie, f.maker.cookie, 16);
    get_cookie(&f, src_a, t0 + 60 * SEC);
    assert_memory_equal(first_secret, f.checker.secret, 32);
    assert_memory_equal(first_cookie, f.maker.cookie, 16);
    /* After 2 minutes the next reply rotates the secret: old cookies stop working. */
    get_cookie(&f, src_a, t0 + WG_COOKIE_REFRESH_TIME_NS);
    assert_memory_not_equal(first_secret, f.checker.secret, 32);
    assert_memory_not_equal(first_cookie, f.maker.cookie, 16);
    uint64_t t1 = t0 + WG_COOKIE_REFRESH_TIME_NS + SEC;
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t1);
    assert_true(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6, t1));
    /* A message still carrying the old cookie's mac2 is refused. */
    memcpy(f.maker.cookie, first_cookie, 16);
    wg_cookie_add_macs(&f.maker, f.msg, sizeof(f.msg), t1);
    assert_false(wg_cookie_check_mac2(&f.checker, f.msg, sizeof(f.msg), src_a, 6, t1));
    wg_cookie_checker_wipe(&f.checker);
    wg_cookie_maker_wipe(&f.maker);
    assert_true(sodium_is_zero((uint8_t *)&f.checker, sizeof(f.checker)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac1),
        cmocka_unit_test(test_cookie_round_trip_and_mac2),
        cmocka_unit_test(test_cookie_reply_binding),
        cmocka_unit_test(test_cookie_expiry),
        cmocka_unit_test(test_secret_rotation),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
