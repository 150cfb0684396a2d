/*
 * Arbitrary datagrams into everything that parses WireGuard messages: the classifier, then by
 * type the responder (mac1 check + consume_initiation + response), the initiator
 * (consume_response), the cookie maker (consume_reply) and transport open. The fixed identities
 * are the known-answer ones (tests/support/wg_vectors.h), so the seed corpus - the KAT messages
 * written by tests/vectors/wg_handshake_vectors.py --corpus - reaches every success path.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "cookie.h"
#include "keypair.h"
#include "messages.h"
#include "noise.h"
#include "wg_vectors.h"

struct fixture {
    struct wg_static_identity ini_id, resp_id;
    struct wg_handshake ini_hs;  /* initiator, after sending kat_initiation */
    struct wg_handshake resp_hs; /* responder's view of the initiator, fresh */
    struct wg_cookie_checker resp_checker;
    struct wg_cookie_maker ini_maker; /* has signed kat_initiation */
    struct wg_keypair ini_kp, resp_kp;
};

static struct wg_handshake *lookup(void *ctx, const uint8_t key[32])
{
    struct wg_handshake *hs = ctx;
    return sodium_memcmp(hs->remote_static, key, 32) == 0 ? hs : NULL;
}

static int fixture_init(struct fixture *f)
{
    struct wg_msg_initiation init;
    struct wg_msg_response resp;
    struct wg_handshake ini, resp_hs, *found;

    if (sodium_init() < 0)
        return -1;
    memset(f, 0, sizeof(*f));
    if (wg_noise_identity_init(&f->ini_id, kat_initiator_static_private) != 0 ||
        wg_noise_identity_init(&f->resp_id, kat_responder_static_private) != 0)
        return -1;
    wg_noise_handshake_init(&f->ini_hs, &f->ini_id, f->resp_id.public_key, kat_psk);
    wg_noise_handshake_init(&f->resp_hs, &f->resp_id, f->ini_id.public_key, kat_psk);
    wg_cookie_checker_init(&f->resp_checker, f->resp_id.public_key);
    wg_cookie_maker_init(&f->ini_maker, f->resp_id.public_key);
    if (wg_noise_create_initiation(&f->ini_hs, &f->ini_id, KAT_INITIATOR_INDEX, kat_timestamp,
                                   kat_initiator_ephemeral_private, &init) != 0)
        return -1;
    wg_cookie_add_macs(&f->ini_maker, (uint8_t *)&init, sizeof(init), 0);

    /* Keypairs of the complete KAT handshake, for transport messages. */
    ini = f->ini_hs;
    resp_hs = f->resp_hs;
    if (wg_noise_consume_initiation(&f->resp_id, &init, lookup, &resp_hs, 0, &found, NULL) != 0 ||
        wg_noise_create_response(found, KAT_RESPONDER_INDEX, kat_responder_ephemeral_private,
                                 &resp) != 0 ||
        wg_noise_consume_response(&ini, &f->ini_id, &resp) != 0 ||
        wg_noise_derive_keypair(&ini, &f->ini_kp, 0) != 0 ||
        wg_noise_derive_keypair(found, &f->resp_kp, 0) != 0)
        return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fixture fixture;
    static int ready = -1;
    static uint8_t buf[65536];

    if (ready < 0)
        ready = fixture_init(&fixture) == 0 ? 1 : 0;
    if (!ready)
        __builtin_trap();
    if (size > sizeof(buf))
        return 0;
    /* Every input sees the same state: copies, never the fixture itself. */
    struct fixture f = fixture;
    memcpy(buf, data, size);

    enum wg_message_type type = wg_message_type(buf, size);
    (void)wg_message_receiver_index(buf, type);
    switch (type) {
    case WG_MSG_INITIATION: {
        struct wg_handshake *found = NULL, *peer = NULL;
        struct wg_msg_response resp;
        struct wg_keypair kp;
        const struct wg_msg_initiation *msg = (const struct wg_msg_initiation *)buf;
        (void)wg_cookie_check_mac1(&f.resp_checker, buf, size);
        (void)wg_cookie_check_mac2(&f.resp_checker, buf, size, data, size < 18 ? size : 18, 1);
        if (wg_noise_consume_initiation(&f.resp_id, msg, lookup, &f.resp_hs, 1, &found, &peer) ==
            0) {
            if (wg_noise_create_response(found, 9, NULL, &resp) == 0 &&
                wg_noise_derive_keypair(found, &kp, 1) == 0)
                wg_keypair_clear(&kp);
        }
        /* Replaying the same bytes must never succeed twice. */
        if (found && wg_noise_consume_initiation(&f.resp_id, msg, lookup, &f.resp_hs,
                                                 1 + WG_REKEY_TIMEOUT_NS, &found, &peer) == 0)
            __builtin_trap();
        break;
    }
    case WG_MSG_RESPONSE: {
        struct wg_keypair kp;
        (void)wg_cookie_check_mac1(&f.resp_checker, buf, size);
        if (wg_noise_consume_response(&f.ini_hs, &f.ini_id, (const struct wg_msg_response *)buf) ==
                0 &&
            wg_noise_derive_keypair(&f.ini_hs, &kp, 1) == 0)
            wg_keypair_clear(&kp);
        break;
    }
    case WG_MSG_COOKIE_REPLY:
        (void)wg_cookie_consume_reply(&f.ini_maker, (const struct wg_msg_cookie_reply *)buf, 1);
        break;
    case WG_MSG_TRANSPORT: {
        uint8_t *pt;
        size_t pt_len;
        struct wg_keypair *kp =
            wg_message_receiver_index(buf, type) == KAT_INITIATOR_INDEX ? &f.ini_kp : &f.resp_kp;
        if (wg_keypair_open(kp, buf, size, &pt, &pt_len, NULL, 1) == WG_KEYPAIR_OK) {
            if (pt_len + 32 != size)
                __builtin_trap();
            /* An authentic message opens once. */
            memcpy(buf, data, size);
            if (wg_keypair_open(kp, buf, size, &pt, &pt_len, NULL, 1) != WG_KEYPAIR_ERR_REPLAY)
                __builtin_trap();
        }
        break;
    }
    default:
        break;
    }
    return 0;
}
