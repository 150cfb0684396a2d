/*
 * The handshake: byte-for-byte against an independent Python implementation
 * (tests/vectors/wg_handshake_vectors.py, output pasted below), then round trips and every way
 * a handshake must fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cookie.h"
#include "key.h"
#include "keypair.h"
#include "messages.h"
#include "noise.h"

/* Known answers: tests/vectors/wg_handshake_vectors.py > tests/support/wg_vectors.h */
#include "wg_vectors.h"

/* ---- helpers ---- */

struct side {
    struct wg_static_identity id;
    struct wg_handshake hs; /* this side's view of the one peer */
    struct wg_cookie_checker checker;
    struct wg_cookie_maker maker;
};

/* Lookup callback: the single peer, if the static key matches. */
static struct wg_handshake *lookup_one(void *ctx, const uint8_t remote_static[32])
{
    struct side *s = ctx;
    return wg_key_equal(s->hs.remote_static, remote_static) ? &s->hs : NULL;
}

static void pair_up(struct side *a, struct side *b, const uint8_t *priv_a, const uint8_t *priv_b,
                    const uint8_t *psk_a, const uint8_t *psk_b)
{
    uint8_t ka[32], kb[32];
    if (!priv_a) {
        wg_key_generate(ka);
        priv_a = ka;
    }
    if (!priv_b) {
        wg_key_generate(kb);
        priv_b = kb;
    }
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    assert_int_equal(wg_noise_identity_init(&a->id, priv_a), 0);
    assert_int_equal(wg_noise_identity_init(&b->id, priv_b), 0);
    assert_int_equal(wg_noise_handshake_init(&a->hs, &a->id, b->id.public_key, psk_a), 0);
    assert_int_equal(wg_noise_handshake_init(&b->hs, &b->id, a->id.public_key, psk_b), 0);
    wg_cookie_checker_init(&a->checker, a->id.public_key);
    wg_cookie_checker_init(&b->checker, b->id.public_key);
    wg_cookie_maker_init(&a->maker, b->id.public_key);
    wg_cookie_maker_init(&b->maker, a->id.public_key);
}

static void timestamp_at(uint8_t ts[WG_TIMESTAMP_LEN], time_t sec)
{
    struct timespec t = {.tv_sec = sec, .tv_nsec = 0};
    wg_tai64n(ts, &t);
}

/* Full handshake initiator a -> responder b; returns both keypairs. */
static void handshake(struct side *a, struct side *b, struct wg_keypair *ka, struct wg_keypair *kb,
                      time_t wall, uint64_t now)
{
    struct wg_msg_initiation init;
    struct wg_msg_response resp;
    struct wg_handshake *found = NULL;
    uint8_t ts[WG_TIMESTAMP_LEN];

    timestamp_at(ts, wall);
    assert_int_equal(wg_noise_create_initiation(&a->hs, &a->id, 1001, ts, NULL, &init), 0);
    wg_cookie_add_macs(&a->maker, (uint8_t *)&init, sizeof(init), now);
    assert_true(wg_cookie_check_mac1(&b->checker, (uint8_t *)&init, sizeof(init)));
    assert_int_equal(wg_noise_consume_initiation(&b->id, &init, lookup_one, b, now, &found, NULL),
                     0);
    assert_ptr_equal(found, &b->hs);
    assert_int_equal(wg_noise_create_response(&b->hs, 2002, NULL, &resp), 0);
    wg_cookie_add_macs(&b->maker, (uint8_t *)&resp, sizeof(resp), now);
    assert_true(wg_cookie_check_mac1(&a->checker, (uint8_t *)&resp, sizeof(resp)));
    assert_int_equal(wg_message_receiver_index((uint8_t *)&resp, WG_MSG_RESPONSE), 1001);
    assert_int_equal(wg_noise_consume_response(&a->hs, &a->id, &resp), 0);
    assert_int_equal(wg_noise_derive_keypair(&a->hs, ka, now), 0);
    assert_int_equal(wg_noise_derive_keypair(&b->hs, kb, now), 0);
}

static void assert_transport_works(struct wg_keypair *from, struct wg_keypair *to, uint64_t now)
{
    uint8_t buf[256], *pt;
    size_t len, pt_len;
    const char *msg = "ping over the tunnel";

    assert_int_equal(
        wg_keypair_seal(from, (const uint8_t *)msg, strlen(msg), buf, sizeof(buf), &len, now),
        WG_KEYPAIR_OK);
    assert_int_equal(wg_keypair_open(to, buf, len, &pt, &pt_len, NULL, now), WG_KEYPAIR_OK);
    assert_int_equal(pt_len, 32);
    assert_memory_equal(pt, msg, strlen(msg));
}

/* ---- known answers ---- */

static void test_tai64n(void **state)
{
    (void)state;
    uint8_t ts[WG_TIMESTAMP_LEN];
    struct timespec t = {.tv_sec = KAT_TIMESTAMP_SEC, .tv_nsec = KAT_TIMESTAMP_NSEC};
    wg_tai64n(ts, &t);
    assert_memory_equal(ts, kat_timestamp, sizeof(ts));
}

/* The KAT session's data message each way: initiator -> responder, responder keepalive back. */
static void check_kat_transport(struct wg_keypair *ini_kp, struct wg_keypair *resp_kp)
{
    uint8_t buf[128], *pt;
    size_t len, pt_len;
    assert_int_equal(
        wg_keypair_seal(ini_kp, kat_payload, sizeof(kat_payload), buf, sizeof(buf), &len, 7),
        WG_KEYPAIR_OK);
    assert_int_equal(len, sizeof(kat_transport));
    assert_memory_equal(buf, kat_transport, len);
    assert_int_equal(wg_keypair_open(resp_kp, buf, len, &pt, &pt_len, NULL, 7), WG_KEYPAIR_OK);
    assert_int_equal(pt_len, 32);
    assert_memory_equal(pt, kat_payload, sizeof(kat_payload));

    assert_int_equal(wg_keypair_seal(resp_kp, NULL, 0, buf, sizeof(buf), &len, 7), WG_KEYPAIR_OK);
    assert_int_equal(len, sizeof(kat_keepalive));
    assert_memory_equal(buf, kat_keepalive, len);
    assert_int_equal(wg_keypair_open(ini_kp, buf, len, &pt, &pt_len, NULL, 7), WG_KEYPAIR_OK);
    assert_int_equal(pt_len, 0);
}

/* Cookie reply (made by Python with a fixed secret and nonce) for the KAT initiation init. */
static void check_kat_cookie(struct wg_cookie_maker *ini_maker,
                             struct wg_cookie_checker *resp_checker, struct wg_msg_initiation *init)
{
    struct wg_msg_cookie_reply reply;
    memcpy(&reply, kat_cookie_reply, sizeof(reply));
    assert_int_equal(wg_message_type((uint8_t *)&reply, sizeof(reply)), WG_MSG_COOKIE_REPLY);
    assert_int_equal(wg_message_receiver_index((uint8_t *)&reply, WG_MSG_COOKIE_REPLY),
                     KAT_INITIATOR_INDEX);
    /* The initiator's maker last signed the initiation: the reply is bound to its mac1. */
    assert_int_equal(wg_cookie_consume_reply(ini_maker, &reply, 100), 0);
    assert_memory_equal(ini_maker->cookie, kat_cookie, sizeof(kat_cookie));
    wg_cookie_add_macs(ini_maker, (uint8_t *)init, sizeof(*init), 200);
    assert_memory_equal(init->macs.mac2, kat_initiation_mac2, WG_MAC_LEN);

    /* The responder's checker, given Python's secret, accepts that mac2 from that source only. */
    memcpy(resp_checker->secret, kat_cookie_secret, sizeof(kat_cookie_secret));
    resp_checker->has_secret = true;
    resp_checker->secret_birth_ns = 150;
    assert_true(wg_cookie_check_mac2(resp_checker, (uint8_t *)init, sizeof(*init), kat_cookie_src,
                                     sizeof(kat_cookie_src), 200));
    uint8_t other_src[6];
    memcpy(other_src, kat_cookie_src, 6);
    other_src[5] ^= 1;
    assert_false(wg_cookie_check_mac2(resp_checker, (uint8_t *)init, sizeof(*init), other_src,
                                      sizeof(other_src), 200));
}

static void test_kat_handshake(void **state)
{
    (void)state;
    struct wg_static_identity ini_id, resp_id;
    struct wg_handshake ini_hs, resp_hs, *found = NULL;
    struct wg_cookie_maker ini_maker, resp_maker;
    struct wg_cookie_checker ini_checker, resp_checker;
    struct wg_msg_initiation init;
    struct wg_msg_response resp;
    struct wg_keypair ini_kp, resp_kp;
    struct side lookup_ctx;

    assert_int_equal(wg_noise_identity_init(&ini_id, kat_initiator_static_private), 0);
    assert_int_equal(wg_noise_identity_init(&resp_id, kat_responder_static_private), 0);
    assert_int_equal(wg_noise_handshake_init(&ini_hs, &ini_id, resp_id.public_key, kat_psk), 0);
    assert_int_equal(wg_noise_handshake_init(&resp_hs, &resp_id, ini_id.public_key, kat_psk), 0);
    wg_cookie_maker_init(&ini_maker, resp_id.public_key);
    wg_cookie_maker_init(&resp_maker, ini_id.public_key);
    wg_cookie_checker_init(&ini_checker, ini_id.public_key);
    wg_cookie_checker_init(&resp_checker, resp_id.public_key);

    /* Initiation, mac1 included, mac2 zero. */
    assert_int_equal(wg_noise_create_initiation(&ini_hs, &ini_id, KAT_INITIATOR_INDEX,
                                                kat_timestamp, kat_initiator_ephemeral_private,
                                                &init),
                     0);
    wg_cookie_add_macs(&ini_maker, (uint8_t *)&init, sizeof(init), 0);
    assert_memory_equal(&init, kat_initiation, sizeof(kat_initiation));

    /* The responder consumes the vector bytes, not our struct. */
    memcpy(&init, kat_initiation, sizeof(init));
    assert_int_equal(wg_message_type((uint8_t *)&init, sizeof(init)), WG_MSG_INITIATION);
    assert_true(wg_cookie_check_mac1(&resp_checker, (uint8_t *)&init, sizeof(init)));
    lookup_ctx.hs = resp_hs;
    assert_int_equal(
        wg_noise_consume_initiation(&resp_id, &init, lookup_one, &lookup_ctx, 0, &found, NULL), 0);
    assert_ptr_equal(found, &lookup_ctx.hs);
    assert_memory_equal(lookup_ctx.hs.latest_timestamp, kat_timestamp, WG_TIMESTAMP_LEN);
    assert_int_equal(lookup_ctx.hs.remote_index, KAT_INITIATOR_INDEX);

    assert_int_equal(wg_noise_create_response(&lookup_ctx.hs, KAT_RESPONDER_INDEX,
                                              kat_responder_ephemeral_private, &resp),
                     0);
    wg_cookie_add_macs(&resp_maker, (uint8_t *)&resp, sizeof(resp), 0);
    assert_memory_equal(&resp, kat_response, sizeof(kat_response));

    memcpy(&resp, kat_response, sizeof(resp));
    assert_true(wg_cookie_check_mac1(&ini_checker, (uint8_t *)&resp, sizeof(resp)));
    assert_int_equal(wg_noise_consume_response(&ini_hs, &ini_id, &resp), 0);

    assert_int_equal(wg_noise_derive_keypair(&ini_hs, &ini_kp, 7), 0);
    assert_int_equal(wg_noise_derive_keypair(&lookup_ctx.hs, &resp_kp, 7), 0);
    assert_memory_equal(ini_kp.send_key, kat_initiator_send_key, 32);
    assert_memory_equal(ini_kp.recv_key, kat_initiator_recv_key, 32);
    assert_memory_equal(resp_kp.recv_key, kat_initiator_send_key, 32);
    assert_memory_equal(resp_kp.send_key, kat_initiator_recv_key, 32);
    assert_true(ini_kp.is_initiator);
    assert_false(resp_kp.is_initiator);
    assert_int_equal(ini_kp.local_index, KAT_INITIATOR_INDEX);
    assert_int_equal(ini_kp.remote_index, KAT_RESPONDER_INDEX);
    assert_int_equal(resp_kp.local_index, KAT_RESPONDER_INDEX);
    assert_int_equal(resp_kp.remote_index, KAT_INITIATOR_INDEX);
    assert_int_equal(ini_kp.created_ns, 7);
    /* Secrets are gone from both handshakes. */
    assert_int_equal(ini_hs.state, WG_HANDSHAKE_ZEROED);
    assert_true(sodium_is_zero(ini_hs.chaining_key, 32));
    assert_true(sodium_is_zero(ini_hs.ephemeral_private, 32));
    assert_true(sodium_is_zero(lookup_ctx.hs.chaining_key, 32));

    check_kat_transport(&ini_kp, &resp_kp);
    wg_keypair_clear(&ini_kp);
    wg_keypair_clear(&resp_kp);
    memcpy(&init, kat_initiation, sizeof(init));
    check_kat_cookie(&ini_maker, &resp_checker, &init);
}

/* ---- round trips ---- */

static void test_round_trip_no_psk(void **state)
{
    (void)state;
    struct side a, b;
    struct wg_keypair ka, kb;

    pair_up(&a, &b, NULL, NULL, NULL, NULL);
    handshake(&a, &b, &ka, &kb, 1700000000, 1000);
    assert_transport_works(&ka, &kb, 1000);
    assert_transport_works(&kb, &ka, 1000);
    wg_keypair_clear(&ka);
    wg_keypair_clear(&kb);
}

static void test_round_trip_psk_and_rehandshake(void **state)
{
    (void)state;
    struct side a, b;
    struct wg_keypair ka, kb;
    uint8_t psk[32];

    randombytes_buf(psk, sizeof(psk));
    pair_up(&a, &b, NULL, NULL, psk, psk);
    handshake(&a, &b, &ka, &kb, 1700000000, 1000);
    assert_transport_works(&ka, &kb, 1000);
    wg_keypair_clear(&ka);
    wg_keypair_clear(&kb);
    /* The other direction, later (newer timestamp, past the flood interval). */
    handshake(&b, &a, &kb, &ka, 1700000001, 1000 + WG_REKEY_TIMEOUT_NS);
    assert_transport_works(&ka, &kb, 1000 + WG_REKEY_TIMEOUT_NS);
    assert_transport_works(&kb, &ka, 1000 + WG_REKEY_TIMEOUT_NS);
    wg_keypair_clear(&ka);
    wg_keypair_clear(&kb);
}

static void test_wrong_psk_fails_cleanly(void **state)
{
    (void)state;
    struct side a, b;
    struct wg_msg_initiation init;
    struct wg_msg_response resp;
    struct wg_handshake *found;
    uint8_t psk_a[32], psk_b[32], ts[12];

    randombytes_buf(psk_a, 32);
    randombytes_buf(psk_b, 32);
    pair_up(&a, &b, NULL, NULL, psk_a, psk_b);
    timestamp_at(ts, 1700000000);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 1, ts, NULL, &init), 0);
    /* The PSK only enters with the response: the initiation is still accepted... */
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init, lookup_one, &b, 0, &found, NULL), 0);
    assert_int_equal(wg_noise_create_response(&b.hs, 2, NULL, &resp), 0);
    /* ...but the initiator cannot open the response, and its state is untouched. */
    struct wg_handshake before = a.hs;
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &resp), WG_NOISE_ERR_DECRYPT);
    assert_memory_equal(&before, &a.hs, sizeof(before));
    struct wg_keypair kp;
    assert_int_equal(wg_noise_derive_keypair(&a.hs, &kp, 0), WG_NOISE_ERR_STATE);
    /* One side with a PSK and the other without fails the same way. */
    wg_noise_handshake_set_psk(&a.hs, NULL);
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &resp), WG_NOISE_ERR_DECRYPT);
    /* With the right PSK the very same response now works. */
    wg_noise_handshake_set_psk(&a.hs, psk_b);
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &resp), 0);
}

/* ---- initiation replay and flood ---- */

static void test_replayed_initiation_rejected(void **state)
{
    (void)state;
    struct side a, b;
    struct wg_msg_initiation init, init2;
    struct wg_handshake *found, *peer;
    uint8_t ts[12];
    uint64_t now = 5 * WG_NSEC_PER_SEC;

    pair_up(&a, &b, NULL, NULL, NULL, NULL);
    timestamp_at(ts, 1700000000);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 1, ts, NULL, &init), 0);
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init, lookup_one, &b, now, &found, NULL),
                     0);
    /* Same bytes again, much later: same timestamp -> replay. */
    now += WG_REKEY_TIMEOUT_NS;
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init, lookup_one, &b, now, &found, &peer),
                     WG_NOISE_ERR_REPLAY);
    assert_null(found);
    assert_ptr_equal(peer, &b.hs);

    /* An older timestamp is a replay too. */
    timestamp_at(ts, 1699999999);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 2, ts, NULL, &init2), 0);
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init2, lookup_one, &b, now, &found, NULL),
                     WG_NOISE_ERR_REPLAY);

    /* A newer one within the flood interval is refused, after it is accepted. */
    timestamp_at(ts, 1700000001);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 3, ts, NULL, &init2), 0);
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init2, lookup_one, &b, now, &found, NULL),
                     0);
    timestamp_at(ts, 1700000002);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 4, ts, NULL, &init2), 0);
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init2, lookup_one, &b,
                                                 now + WG_HANDSHAKE_INITIATION_RATE_NS, &found,
                                                 NULL),
                     WG_NOISE_ERR_FLOOD);
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init2, lookup_one, &b,
                                                 now + WG_HANDSHAKE_INITIATION_RATE_NS + 1, &found,
                                                 NULL),
                     0);
    assert_int_equal(b.hs.remote_index, 4);
}

/* ---- bad input ---- */

static void test_unknown_and_wrong_keys(void **state)
{
    (void)state;
    struct side a, b, c;
    struct wg_msg_initiation init;
    struct wg_handshake *found, *peer;
    uint8_t ts[12];

    pair_up(&a, &b, NULL, NULL, NULL, NULL);
    timestamp_at(ts, 1700000000);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 1, ts, NULL, &init), 0);

    /* Responder c does not know a. */
    struct side d;
    pair_up(&c, &d, NULL, NULL, NULL, NULL);
    /* c's identity is not the one the initiation was made for: the static key won't decrypt. */
    assert_int_equal(wg_noise_consume_initiation(&c.id, &init, lookup_one, &c, 0, &found, &peer),
                     WG_NOISE_ERR_DECRYPT);
    assert_null(found);
    assert_null(peer);
    /* b's identity, but a peer table without a. */
    struct side b2 = b;
    wg_noise_handshake_init(&b2.hs, &b2.id, c.id.public_key, NULL);
    assert_int_equal(wg_noise_consume_initiation(&b2.id, &init, lookup_one, &b2, 0, &found, &peer),
                     WG_NOISE_ERR_UNKNOWN_PEER);
    assert_null(found);
    assert_null(peer);

    /* No identity at all. */
    struct wg_static_identity none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(wg_noise_consume_initiation(&none, &init, lookup_one, &b, 0, &found, NULL),
                     WG_NOISE_ERR_NO_IDENTITY);
    struct wg_handshake hs_none;
    assert_int_equal(wg_noise_handshake_init(&hs_none, &none, b.id.public_key, NULL),
                     WG_NOISE_ERR_NO_IDENTITY);
    assert_int_equal(wg_noise_create_initiation(&hs_none, &none, 1, ts, NULL, &init),
                     WG_NOISE_ERR_NO_IDENTITY);

    /* A low-order public key makes every DH zero: refused up front and at use. */
    uint8_t zero_pub[32] = {0};
    struct wg_handshake hs_bad;
    assert_int_equal(wg_noise_handshake_init(&hs_bad, &a.id, zero_pub, NULL), WG_NOISE_ERR_BAD_KEY);
    assert_int_equal(wg_noise_create_initiation(&hs_bad, &a.id, 1, ts, NULL, &init),
                     WG_NOISE_ERR_BAD_KEY);
    /* An initiation whose ephemeral is a low-order point. */
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 1, ts, NULL, &init), 0);
    memset(init.unencrypted_ephemeral, 0, 32);
    assert_int_equal(wg_noise_consume_initiation(&b.id, &init, lookup_one, &b, 0, &found, NULL),
                     WG_NOISE_ERR_BAD_KEY);
}

static void test_tampered_messages(void **state)
{
    (void)state;
    struct side a, b;
    struct wg_msg_initiation init, bad;
    struct wg_msg_response resp, rbad;
    struct wg_handshake *found;
    uint8_t ts[12];

    pair_up(&a, &b, NULL, NULL, NULL, NULL);
    timestamp_at(ts, 1700000000);
    assert_int_equal(wg_noise_create_initiation(&a.hs, &a.id, 77, ts, NULL, &init), 0);

    /* Every single-bit flip in the authenticated part of the initiation is rejected. The MACs
     * and the sender index are not covered by the Noise AEADs (mac1 covers them). */
    struct wg_handshake before = b.hs;
    for (size_t i = offsetof(struct wg_msg_initiation, unencrypted_ephemeral);
         i < offsetof(struct wg_msg_initiation, macs); i++) {
        bad = init;
        ((uint8_t *)&bad)[i] ^= 0x01;
        int r = wg_noise_consume_initiation(&b.id, &bad, lookup_one, &b, 0, &found, NULL);
        assert_true(r == WG_NOISE_ERR_DECRYPT || r == WG_NOISE_ERR_BAD_KEY);
        assert_memory_equal(&before, &b.hs, sizeof(before));
    }
    bad = init;
    bad.header.type = WG_MSG_RESPONSE;
    assert_int_equal(wg_noise_consume_initiation(&b.id, &bad, lookup_one, &b, 0, &found, NULL),
                     WG_NOISE_ERR_MALFORMED);
    bad = init;
    bad.header.reserved[1] = 1;
    assert_int_equal(wg_noise_consume_initiation(&b.id, &bad, lookup_one, &b, 0, &found, NULL),
                     WG_NOISE_ERR_MALFORMED);

    assert_int_equal(wg_noise_consume_initiation(&b.id, &init, lookup_one, &b, 0, &found, NULL), 0);
    assert_int_equal(wg_noise_create_response(&b.hs, 88, NULL, &resp), 0);
    /* Response can't be created twice from one initiation. */
    struct wg_msg_response resp2;
    assert_int_equal(wg_noise_create_response(&b.hs, 88, NULL, &resp2), WG_NOISE_ERR_STATE);

    struct wg_handshake abefore = a.hs;
    for (size_t i = offsetof(struct wg_msg_response, unencrypted_ephemeral);
         i < offsetof(struct wg_msg_response, macs); i++) {
        rbad = resp;
        ((uint8_t *)&rbad)[i] ^= 0x80;
        int r = wg_noise_consume_response(&a.hs, &a.id, &rbad);
        assert_true(r == WG_NOISE_ERR_DECRYPT || r == WG_NOISE_ERR_BAD_KEY);
        assert_memory_equal(&abefore, &a.hs, sizeof(abefore));
    }
    /* Wrong receiver index: not our handshake. */
    rbad = resp;
    wg_le32_write(rbad.receiver_index, 78);
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &rbad), WG_NOISE_ERR_STATE);
    /* Correct one works once; a second time the state is wrong. */
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &resp), 0);
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &resp), WG_NOISE_ERR_STATE);
}

static void test_state_machine_guards(void **state)
{
    (void)state;
    struct side a, b;
    struct wg_msg_response resp;
    struct wg_keypair kp;

    pair_up(&a, &b, NULL, NULL, NULL, NULL);
    assert_int_equal(wg_noise_create_response(&a.hs, 1, NULL, &resp), WG_NOISE_ERR_STATE);
    assert_int_equal(wg_noise_derive_keypair(&a.hs, &kp, 0), WG_NOISE_ERR_STATE);
    memset(&resp, 0, sizeof(resp));
    resp.header.type = WG_MSG_RESPONSE;
    assert_int_equal(wg_noise_consume_response(&a.hs, &a.id, &resp), WG_NOISE_ERR_STATE);
}

/* ---- message classifier ---- */

static void test_message_type(void **state)
{
    (void)state;
    uint8_t buf[2048];

    memset(buf, 0, sizeof(buf));
    assert_int_equal(wg_message_type(NULL, 0), WG_MSG_INVALID);
    buf[0] = 1;
    assert_int_equal(wg_message_type(buf, 148), WG_MSG_INITIATION);
    assert_int_equal(wg_message_type(buf, 147), WG_MSG_INVALID);
    assert_int_equal(wg_message_type(buf, 149), WG_MSG_INVALID);
    buf[0] = 2;
    assert_int_equal(wg_message_type(buf, 92), WG_MSG_RESPONSE);
    assert_int_equal(wg_message_type(buf, 93), WG_MSG_INVALID);
    buf[0] = 3;
    assert_int_equal(wg_message_type(buf, 64), WG_MSG_COOKIE_REPLY);
    assert_int_equal(wg_message_type(buf, 63), WG_MSG_INVALID);
    buf[0] = 4;
    assert_int_equal(wg_message_type(buf, 31), WG_MSG_INVALID);
    assert_int_equal(wg_message_type(buf, 32), WG_MSG_TRANSPORT);
    assert_int_equal(wg_message_type(buf, 2048), WG_MSG_TRANSPORT);
    buf[3] = 1; /* reserved bytes must be zero */
    assert_int_equal(wg_message_type(buf, 32), WG_MSG_INVALID);
    buf[3] = 0;
    for (int t = 0; t < 256; t++) {
        if (t >= 1 && t <= 4)
            continue;
        buf[0] = (uint8_t)t;
        assert_int_equal(wg_message_type(buf, 148), WG_MSG_INVALID);
        assert_int_equal(wg_message_type(buf, 3), WG_MSG_INVALID);
    }
    buf[0] = 4;
    wg_le32_write(buf + 4, 0xdeadbeef);
    assert_int_equal(wg_message_receiver_index(buf, WG_MSG_TRANSPORT), 0xdeadbeef);
    assert_int_equal(wg_message_receiver_index(buf, WG_MSG_INITIATION), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tai64n),
        cmocka_unit_test(test_kat_handshake),
        cmocka_unit_test(test_round_trip_no_psk),
        cmocka_unit_test(test_round_trip_psk_and_rehandshake),
        cmocka_unit_test(test_wrong_psk_fails_cleanly),
        cmocka_unit_test(test_replayed_initiation_rejected),
        cmocka_unit_test(test_unknown_and_wrong_keys),
        cmocka_unit_test(test_tampered_messages),
        cmocka_unit_test(test_state_machine_guards),
        cmocka_unit_test(test_message_type),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
