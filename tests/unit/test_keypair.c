/* Transport messages: seal/open, padding, in-place operation, tampering, replay, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "keypair.h"
#include "messages.h"

#define NOW 1000000ULL

/* Two matching keypairs, a (local index 10) <-> b (local index 20), as a handshake makes them. */
static void make_pair(struct wg_keypair *a, struct wg_keypair *b)
{
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    randombytes_buf(a->send_key, 32);
    randombytes_buf(a->recv_key, 32);
    memcpy(b->recv_key, a->send_key, 32);
    memcpy(b->send_key, a->recv_key, 32);
    wg_replay_init(&a->replay);
    wg_replay_init(&b->replay);
    a->local_index = 10;
    a->remote_index = 20;
    b->local_index = 20;
    b->remote_index = 10;
    a->created_ns = b->created_ns = NOW;
    a->is_initiator = true;
    a->rekey_after_messages = b->rekey_after_messages = WG_REKEY_AFTER_MESSAGES;
    assert_int_equal(wg_keypair_init_aead(a), WG_KEYPAIR_OK);
    assert_int_equal(wg_keypair_init_aead(b), WG_KEYPAIR_OK);
}

/* Frees both pairs' cipher contexts (the sanitizer build checks none leak). */
static void unpair(struct wg_keypair *a, struct wg_keypair *b)
{
    wg_keypair_clear(a);
    wg_keypair_clear(b);
}

static void test_round_trip_and_padding(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    uint8_t pt[100], buf[256], *out;
    size_t len, out_len;
    uint64_t counter;

    make_pair(&a, &b);
    randombytes_buf(pt, sizeof(pt));
    for (size_t n = 0; n <= sizeof(pt); n++) {
        size_t padded = (n + 15) / 16 * 16;
        memset(buf, 0xee, sizeof(buf));
        assert_int_equal(wg_keypair_seal(&a, pt, n, buf, sizeof(buf), &len, NOW), WG_KEYPAIR_OK);
        assert_int_equal(len, 16 + padded + 16);
        assert_int_equal(wg_keypair_sealed_len(n), len);
        assert_int_equal(wg_message_type(buf, len), WG_MSG_TRANSPORT);
        assert_int_equal(wg_message_receiver_index(buf, WG_MSG_TRANSPORT), 20);
        assert_int_equal(wg_le64_read(buf + 8), n);
        assert_int_equal(wg_keypair_open(&b, buf, len, &out, &out_len, &counter, NOW),
                         WG_KEYPAIR_OK);
        assert_int_equal(counter, n);
        assert_ptr_equal(out, buf + 16);
        assert_int_equal(out_len, padded);
        if (n)
            assert_memory_equal(out, pt, n);
        for (size_t i = n; i < padded; i++)
            assert_int_equal(out[i], 0);
    }
    assert_int_equal(a.send_counter, sizeof(pt) + 1);
    unpair(&a, &b);
}

static void test_in_place_seal(void **state)
{
    (void)state;
    struct wg_keypair a, b, a2;
    uint8_t buf[1500], ref[1500], msg[1420], *out;
    size_t len, ref_len, out_len;

    make_pair(&a, &b);
    a2 = a;
    assert_int_equal(wg_keypair_init_aead(&a2), WG_KEYPAIR_OK); /* its own contexts */
    randombytes_buf(msg, sizeof(msg));
    /* Caller writes the payload at buf + 16 and seals in place... */
    memcpy(buf + WG_MSG_TRANSPORT_HEADER_LEN, msg, 1419);
    assert_int_equal(wg_keypair_seal(&a, buf + 16, 1419, buf, sizeof(buf), &len, NOW),
                     WG_KEYPAIR_OK);
    /* ...which gives exactly what the copying path gives. */
    assert_int_equal(wg_keypair_seal(&a2, msg, 1419, ref, sizeof(ref), &ref_len, NOW),
                     WG_KEYPAIR_OK);
    assert_int_equal(len, ref_len);
    assert_memory_equal(buf, ref, len);
    assert_int_equal(wg_keypair_open(&b, buf, len, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
    assert_memory_equal(out, msg, 1419);
    unpair(&a, &b);
    wg_keypair_clear(&a2);
}

/* Padding stops at the MTU, as the kernel and wireguard-go pad. */
static void test_padding_capped_by_mtu(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    static uint8_t pt[1500], buf[1600];
    uint8_t *out;
    size_t len, out_len;
    static const struct {
        size_t len, mtu, padded;
    } cases[] = {
        {1420, 1420, 1420}, {1419, 1420, 1420}, {1409, 1420, 1420}, {1408, 1420, 1408},
        {1405, 1420, 1408}, {100, 1420, 112},   {0, 1420, 0},       {1420, 0, 1424},
        {1500, 1420, 1500}, {1, 1, 1},
    };

    make_pair(&a, &b);
    randombytes_buf(pt, sizeof(pt));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t want = 16 + cases[i].padded + 16;
        assert_int_equal(wg_keypair_sealed_len_mtu(cases[i].len, cases[i].mtu), want);
        assert_int_equal(
            wg_keypair_seal_mtu(&a, pt, cases[i].len, cases[i].mtu, buf, want, &len, NOW),
            WG_KEYPAIR_OK);
        assert_int_equal(len, want);
        assert_int_equal(wg_keypair_open(&b, buf, len, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
        assert_int_equal(out_len, cases[i].padded);
        if (cases[i].len)
            assert_memory_equal(out, pt, cases[i].len);
        assert_int_equal(
            wg_keypair_seal_mtu(&a, pt, cases[i].len, cases[i].mtu, buf, want - 1, &len, NOW),
            WG_KEYPAIR_ERR_SPACE);
    }
    unpair(&a, &b);
}

static void test_tamper_detection(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    uint8_t pt[40], msg[128], bad[128], *out;
    size_t len, out_len;

    make_pair(&a, &b);
    randombytes_buf(pt, sizeof(pt));
    assert_int_equal(wg_keypair_seal(&a, pt, sizeof(pt), msg, sizeof(msg), &len, NOW),
                     WG_KEYPAIR_OK);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, msg, len);
            bad[i] ^= (uint8_t)(1 << bit);
            enum wg_keypair_result r = wg_keypair_open(&b, bad, len, &out, &out_len, NULL, NOW);
            if (i < 8)
                assert_int_equal(r, WG_KEYPAIR_ERR_MALFORMED); /* type/reserved/receiver */
            else
                assert_int_equal(r, WG_KEYPAIR_ERR_AUTH); /* counter (nonce), data, tag */
            if (i >= 8) /* decrypted in place before the tag failed: no plaintext left */
                assert_true(sodium_is_zero(bad + 16, len - 32));
        }
    }
    /* Truncated by one byte (still a valid transport length): authentication fails. */
    memcpy(bad, msg, len);
    assert_int_equal(wg_keypair_open(&b, bad, len - 1, &out, &out_len, NULL, NOW),
                     WG_KEYPAIR_ERR_AUTH);
    assert_int_equal(wg_keypair_open(&b, bad, 31, &out, &out_len, NULL, NOW),
                     WG_KEYPAIR_ERR_MALFORMED);
    /* Wrong key: a's own receive key. */
    memcpy(bad, msg, len);
    struct wg_keypair wrong = b;
    randombytes_buf(wrong.recv_key, 32);
    assert_int_equal(wg_keypair_init_aead(&wrong), WG_KEYPAIR_OK);
    assert_int_equal(wg_keypair_open(&wrong, bad, len, &out, &out_len, NULL, NOW),
                     WG_KEYPAIR_ERR_AUTH);
    wg_keypair_clear(&wrong);
    /* After all that, the genuine message still opens: failures did not touch the window. */
    assert_int_equal(wg_keypair_open(&b, msg, len, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
    assert_memory_equal(out, pt, sizeof(pt));
    unpair(&a, &b);
}

static void test_counter_reuse_and_forged_counter(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    uint8_t msg[64], copy[64], forged[64], *out;
    size_t len, out_len;

    make_pair(&a, &b);
    assert_int_equal(wg_keypair_seal(&a, NULL, 0, msg, sizeof(msg), &len, NOW), WG_KEYPAIR_OK);
    memcpy(copy, msg, len);
    /* A forged message with a huge counter fails authentication and must NOT move the window
     * (otherwise the genuine counter 0 would become "too old"). */
    memcpy(forged, msg, len);
    wg_le64_write(forged + 8, 1000000);
    assert_int_equal(wg_keypair_open(&b, forged, len, &out, &out_len, NULL, NOW),
                     WG_KEYPAIR_ERR_AUTH);
    assert_int_equal(wg_keypair_open(&b, msg, len, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
    assert_int_equal(out_len, 0);
    /* The same authentic message again is a replay. */
    assert_int_equal(wg_keypair_open(&b, copy, len, &out, &out_len, NULL, NOW),
                     WG_KEYPAIR_ERR_REPLAY);
    unpair(&a, &b);
}

static void test_limits(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    uint8_t msg[64], pt[16] = {1}, *out;
    size_t len, out_len;

    make_pair(&a, &b);
    /* Too small an output buffer: nothing consumed. */
    assert_int_equal(wg_keypair_seal(&a, pt, 16, msg, 47, &len, NOW), WG_KEYPAIR_ERR_SPACE);
    assert_int_equal(wg_keypair_seal(&a, pt, SIZE_MAX, msg, SIZE_MAX, &len, NOW),
                     WG_KEYPAIR_ERR_SPACE);
    assert_int_equal(a.send_counter, 0);
    assert_int_equal(wg_keypair_seal(&a, pt, 16, msg, 48, &len, NOW), WG_KEYPAIR_OK);

    /* REJECT_AFTER_MESSAGES: the last usable counter is 2^64 - 2^13 - 2. */
    a.send_counter = WG_REJECT_AFTER_MESSAGES - 1;
    assert_int_equal(wg_keypair_seal(&a, pt, 16, msg, sizeof(msg), &len, NOW), WG_KEYPAIR_OK);
    assert_int_equal(wg_keypair_open(&b, msg, len, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
    assert_int_equal(wg_keypair_seal(&a, pt, 16, msg, sizeof(msg), &len, NOW),
                     WG_KEYPAIR_ERR_EXHAUSTED);
    assert_true(wg_keypair_expired(&a, NOW));
    /* A receiver refuses such a counter even when correctly encrypted. */
    struct wg_keypair a2 = a;
    a2.send_counter = WG_REJECT_AFTER_MESSAGES - 1;
    assert_int_equal(wg_keypair_seal(&a2, pt, 16, msg, sizeof(msg), &len, NOW), WG_KEYPAIR_OK);
    wg_le64_write(msg + 8, WG_REJECT_AFTER_MESSAGES);
    assert_int_equal(wg_keypair_open(&b, msg, len, &out, &out_len, NULL, NOW),
                     WG_KEYPAIR_ERR_REPLAY);

    /* REJECT_AFTER_TIME, with injected time. a2 shares a's contexts: only a is cleared. */
    unpair(&a, &b);
    make_pair(&a, &b);
    uint64_t late = NOW + WG_REJECT_AFTER_TIME_NS;
    assert_int_equal(wg_keypair_seal(&a, pt, 16, msg, sizeof(msg), &len, late - 1), WG_KEYPAIR_OK);
    assert_int_equal(wg_keypair_open(&b, msg, len, &out, &out_len, NULL, late),
                     WG_KEYPAIR_ERR_EXPIRED);
    assert_int_equal(wg_keypair_seal(&a, pt, 16, msg, sizeof(msg), &len, late),
                     WG_KEYPAIR_ERR_EXPIRED);
    assert_false(wg_keypair_expired(&a, late - 1));
    assert_true(wg_keypair_expired(&a, late));
    unpair(&a, &b);
}

static void test_rekey_triggers(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    uint8_t msg[64];
    size_t len;

    make_pair(&a, &b);
    assert_false(wg_keypair_should_rekey(&a, NOW));
    /* Time: only the initiator rekeys after REKEY_AFTER_TIME. */
    assert_false(wg_keypair_should_rekey(&a, NOW + WG_REKEY_AFTER_TIME_NS - 1));
    assert_true(wg_keypair_should_rekey(&a, NOW + WG_REKEY_AFTER_TIME_NS));
    assert_false(wg_keypair_should_rekey(&b, NOW + WG_REKEY_AFTER_TIME_NS));
    /* Messages: the test knob lowers the threshold, for both sides. */
    b.rekey_after_messages = 3;
    for (int i = 0; i < 3; i++) {
        assert_false(wg_keypair_should_rekey(&b, NOW));
        assert_int_equal(wg_keypair_seal(&b, NULL, 0, msg, sizeof(msg), &len, NOW), WG_KEYPAIR_OK);
    }
    assert_true(wg_keypair_should_rekey(&b, NOW));
    wg_keypair_clear(&b);
    assert_true(sodium_is_zero((uint8_t *)&b, sizeof(b)));
    wg_keypair_clear(&a);
}

/* The AEAD itself against an independent implementation (libsodium's IETF ChaCha20-Poly1305,
 * no AAD, nonce = 4 zero bytes || LE64 counter, as WireGuard uses it): our seal opens there,
 * and its seal opens here, for every length class and counters past 2^32. */
static const uint64_t kat_counters[] = {
    0, 1, 0xffffffffULL, 0x100000000ULL, 0x123456789abcdefULL, WG_REJECT_AFTER_MESSAGES - 1};

static void sodium_nonce(uint8_t nonce[12], uint64_t counter)
{
    memset(nonce, 0, 4);
    wg_le64_write(nonce + 4, counter);
}

static void check_seal_opens_in_sodium(struct wg_keypair *a, const uint8_t *pt, size_t n,
                                       uint64_t counter)
{
    static uint8_t buf[1600], dec[1600];
    uint8_t nonce[12];
    size_t len;

    a->send_counter = counter;
    assert_int_equal(wg_keypair_seal(a, pt, n, buf, sizeof(buf), &len, NOW), WG_KEYPAIR_OK);
    size_t clen = len - 32;
    sodium_nonce(nonce, counter);
    assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                         dec, NULL, buf + 16, clen, buf + 16 + clen, NULL, 0, nonce, a->send_key),
                     0);
    assert_memory_equal(dec, pt, n);
}

static void check_sodium_opens_here(struct wg_keypair *a, struct wg_keypair *b, const uint8_t *pt,
                                    size_t n, uint64_t counter)
{
    static uint8_t buf[1600];
    uint8_t nonce[12], *out;
    size_t out_len;

    memset(buf, 0, 16);
    buf[0] = WG_MSG_TRANSPORT;
    wg_le32_write(buf + 4, b->local_index);
    wg_le64_write(buf + 8, counter);
    sodium_nonce(nonce, counter);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf + 16, buf + 16 + n, NULL, pt, n, NULL, 0,
                                                       NULL, nonce, a->send_key);
    wg_replay_init(&b->replay);
    assert_int_equal(wg_keypair_open(b, buf, 32 + n, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
    assert_int_equal(out_len, n);
    assert_memory_equal(out, pt, n);
}

static void test_aead_matches_libsodium(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    static uint8_t pt[1500];

    make_pair(&a, &b);
    randombytes_buf(pt, sizeof(pt));
    for (size_t n = 0; n <= sizeof(pt); n += (n < 80 ? 1 : 37)) {
        uint64_t counter = kat_counters[n % (sizeof(kat_counters) / sizeof(kat_counters[0]))];
        check_seal_opens_in_sodium(&a, pt, n, counter);
        /* Openers see only padded lengths from peers, but any length must work. */
        check_sodium_opens_here(&a, &b, pt, n, counter);
    }
    for (size_t i = 0; i < sizeof(kat_counters) / sizeof(kat_counters[0]); i++) {
        check_seal_opens_in_sodium(&a, pt, 1420, kat_counters[i]);
        check_sodium_opens_here(&a, &b, pt, 1420, kat_counters[i]);
        check_sodium_opens_here(&a, &b, pt, 1500, kat_counters[i]);
    }
    unpair(&a, &b);
}

/* A flipped ciphertext or tag bit fails with AUTH and leaves zeros, not plaintext. */
static void test_failed_open_wipes(void **state)
{
    (void)state;
    struct wg_keypair a, b;
    static uint8_t pt[1420], msg[1500], bad[1500];
    uint8_t *out;
    size_t len, out_len;

    make_pair(&a, &b);
    memset(pt, 'A', sizeof(pt));
    assert_int_equal(wg_keypair_seal(&a, pt, sizeof(pt), msg, sizeof(msg), &len, NOW),
                     WG_KEYPAIR_OK);
    const size_t flips[] = {16, 700, len - 17, len - 16, len - 1};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        memcpy(bad, msg, len);
        bad[flips[i]] ^= 0x80;
        assert_int_equal(wg_keypair_open(&b, bad, len, &out, &out_len, NULL, NOW),
                         WG_KEYPAIR_ERR_AUTH);
        assert_true(sodium_is_zero(bad + 16, len - 32));
    }
    assert_int_equal(wg_keypair_open(&b, msg, len, &out, &out_len, NULL, NOW), WG_KEYPAIR_OK);
    assert_memory_equal(out, pt, sizeof(pt));
    unpair(&a, &b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_padding),
        cmocka_unit_test(test_in_place_seal),
        cmocka_unit_test(test_padding_capped_by_mtu),
        cmocka_unit_test(test_tamper_detection),
        cmocka_unit_test(test_counter_reuse_and_forged_counter),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_rekey_triggers),
        cmocka_unit_test(test_aead_matches_libsodium),
        cmocka_unit_test(test_failed_open_wipes),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
