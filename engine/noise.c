/* The Noise IK handshake (see noise.h): hashing and DH helpers, identity and handshake set-up,
 * then initiation (create, consume), response (create, consume), and the keypair derivation. */
#include "noise.h"

#include <sodium.h>
#include <string.h>

#include "blake2s.h"
#include "key.h"

/* All handshake AEADs use a zero nonce: each key encrypts exactly one message. */
static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

const char *wg_noise_result_name(int result)
{
    static const char *const names[] = {"ok",        "no_identity",  "bad_key", "state",
                                        "decrypt",   "unknown_peer", "replay",  "flood",
                                        "malformed", "nomem"};
    if (result > 0 || -result >= (int)(sizeof(names) / sizeof(names[0])))
        return "unknown";
    return names[-result];
}

static void initial_chaining_key(uint8_t ck[WG_HASH_LEN])
{
    wg_blake2s(ck, WG_HASH_LEN, (const uint8_t *)WG_NOISE_CONSTRUCTION,
               sizeof(WG_NOISE_CONSTRUCTION) - 1, NULL, 0);
}

static void mix_hash(uint8_t h[WG_HASH_LEN], const uint8_t *data, size_t len)
{
    struct wg_blake2s_state s;

    wg_blake2s_init(&s, WG_HASH_LEN);
    wg_blake2s_update(&s, h, WG_HASH_LEN);
    wg_blake2s_update(&s, data, len);
    wg_blake2s_final(&s, h);
}

/* HASH(HASH(HASH(CONSTRUCTION) || IDENTIFIER) || static_public) */
static void initial_hash(uint8_t h[WG_HASH_LEN], const uint8_t static_public[WG_PUBLIC_KEY_LEN])
{
    initial_chaining_key(h);
    mix_hash(h, (const uint8_t *)WG_NOISE_IDENTIFIER, sizeof(WG_NOISE_IDENTIFIER) - 1);
    mix_hash(h, static_public, WG_PUBLIC_KEY_LEN);
}

/* X25519; -1 for an all-zero result (low-order point), which WireGuard rejects. */
static int dh(uint8_t out[WG_PUBLIC_KEY_LEN], const uint8_t priv[WG_PRIVATE_KEY_LEN],
              const uint8_t pub[WG_PUBLIC_KEY_LEN])
{
    if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, WG_PUBLIC_KEY_LEN)) {
        sodium_memzero(out, WG_PUBLIC_KEY_LEN);
        return -1;
    }
    return 0;
}

/* ck = KDF1(ck, DH(priv, pub)) */
static int mix_dh(uint8_t ck[WG_HASH_LEN], const uint8_t *priv, const uint8_t *pub)
{
    uint8_t shared[WG_PUBLIC_KEY_LEN];

    if (dh(shared, priv, pub) != 0)
        return -1;
    wg_kdf(ck, NULL, NULL, ck, shared, sizeof(shared));
    sodium_memzero(shared, sizeof(shared));
    return 0;
}

static void aead_seal(uint8_t *out, const uint8_t *key, const uint8_t *pt, size_t len,
                      const uint8_t h[WG_HASH_LEN])
{
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, h, WG_HASH_LEN, NULL, zero_nonce,
                                              key);
}

static int aead_open(uint8_t *out, const uint8_t *key, const uint8_t *ct, size_t ct_len,
                     const uint8_t h[WG_HASH_LEN])
{
    return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, ct_len, h, WG_HASH_LEN,
                                                     zero_nonce, key);
}

static void make_ephemeral(uint8_t priv[WG_PRIVATE_KEY_LEN], uint8_t pub[WG_PUBLIC_KEY_LEN],
                           const uint8_t *fixed)
{
    if (fixed)
        memcpy(priv, fixed, WG_PRIVATE_KEY_LEN);
    else
        wg_key_generate(priv);
    crypto_scalarmult_base(pub, priv);
}

static bool header_is(const struct wg_msg_header *h, uint8_t type)
{
    return h->type == type && h->reserved[0] == 0 && h->reserved[1] == 0 && h->reserved[2] == 0;
}

int wg_noise_identity_init(struct wg_static_identity *id, const uint8_t private_key[32])
{
    memset(id, 0, sizeof(*id));
    memcpy(id->private_key, private_key, WG_PRIVATE_KEY_LEN);
    if (wg_key_public(id->public_key, id->private_key) != 0 ||
        sodium_is_zero(id->public_key, WG_PUBLIC_KEY_LEN)) {
        wg_noise_identity_clear(id);
        return -1;
    }
    initial_hash(id->responder_hash, id->public_key);
    id->has_private_key = true;
    return 0;
}

void wg_noise_identity_clear(struct wg_static_identity *id)
{
    sodium_memzero(id, sizeof(*id));
}

int wg_noise_handshake_init(struct wg_handshake *hs, const struct wg_static_identity *id,
                            const uint8_t remote_static[WG_PUBLIC_KEY_LEN],
                            const uint8_t *preshared_key)
{
    sodium_memzero(hs, sizeof(*hs));
    memcpy(hs->remote_static, remote_static, WG_PUBLIC_KEY_LEN);
    initial_hash(hs->initiator_hash, remote_static);
    wg_noise_handshake_set_psk(hs, preshared_key);
    if (!id->has_private_key)
        return WG_NOISE_ERR_NO_IDENTITY;
    if (dh(hs->precomputed_static_static, id->private_key, remote_static) != 0)
        return WG_NOISE_ERR_BAD_KEY;
    return WG_NOISE_OK;
}

void wg_noise_handshake_set_psk(struct wg_handshake *hs, const uint8_t *preshared_key)
{
    if (preshared_key)
        memcpy(hs->preshared_key, preshared_key, WG_SYMMETRIC_KEY_LEN);
    else
        sodium_memzero(hs->preshared_key, WG_SYMMETRIC_KEY_LEN);
}

void wg_noise_handshake_clear(struct wg_handshake *hs)
{
    sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
    sodium_memzero(hs->remote_ephemeral, sizeof(hs->remote_ephemeral));
    sodium_memzero(hs->hash, sizeof(hs->hash));
    sodium_memzero(hs->chaining_key, sizeof(hs->chaining_key));
    hs->local_index = 0;
    hs->remote_index = 0;
    hs->state = WG_HANDSHAKE_ZEROED;
}

void wg_noise_handshake_wipe(struct wg_handshake *hs)
{
    sodium_memzero(hs, sizeof(*hs));
}

static int usable(const struct wg_handshake *hs, const struct wg_static_identity *id)
{
    if (!id->has_private_key)
        return WG_NOISE_ERR_NO_IDENTITY;
    if (sodium_is_zero(hs->precomputed_static_static, WG_PUBLIC_KEY_LEN))
        return WG_NOISE_ERR_BAD_KEY;
    return WG_NOISE_OK;
}

int wg_noise_create_initiation(struct wg_handshake *hs, const struct wg_static_identity *id,
                               uint32_t local_index, const uint8_t timestamp[WG_TIMESTAMP_LEN],
                               const uint8_t *ephemeral_private, struct wg_msg_initiation *out)
{
    uint8_t ck[WG_HASH_LEN], h[WG_HASH_LEN], key[WG_SYMMETRIC_KEY_LEN];
    uint8_t e_priv[WG_PRIVATE_KEY_LEN];
    int ret = usable(hs, id);

    if (ret != WG_NOISE_OK)
        return ret;
    memset(out, 0, sizeof(*out));
    out->header.type = WG_MSG_INITIATION;
    wg_le32_write(out->sender_index, local_index);

    initial_chaining_key(ck);
    memcpy(h, hs->initiator_hash, WG_HASH_LEN);
    make_ephemeral(e_priv, out->unencrypted_ephemeral, ephemeral_private);
    wg_kdf(ck, NULL, NULL, ck, out->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);
    mix_hash(h, out->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);

    /* es */
    uint8_t shared[WG_PUBLIC_KEY_LEN];
    if (dh(shared, e_priv, hs->remote_static) != 0) {
        ret = WG_NOISE_ERR_BAD_KEY;
        goto out;
    }
    wg_kdf(ck, key, NULL, ck, shared, sizeof(shared));
    aead_seal(out->encrypted_static, key, id->public_key, WG_PUBLIC_KEY_LEN, h);
    mix_hash(h, out->encrypted_static, sizeof(out->encrypted_static));

    /* ss */
    wg_kdf(ck, key, NULL, ck, hs->precomputed_static_static, WG_PUBLIC_KEY_LEN);
    aead_seal(out->encrypted_timestamp, key, timestamp, WG_TIMESTAMP_LEN, h);
    mix_hash(h, out->encrypted_timestamp, sizeof(out->encrypted_timestamp));

    wg_noise_handshake_clear(hs);
    memcpy(hs->ephemeral_private, e_priv, sizeof(e_priv));
    memcpy(hs->chaining_key, ck, sizeof(ck));
    memcpy(hs->hash, h, sizeof(h));
    hs->local_index = local_index;
    hs->state = WG_HANDSHAKE_CREATED_INITIATION;
out:
    if (ret != WG_NOISE_OK)
        memset(out, 0, sizeof(*out));
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(h, sizeof(h));
    sodium_memzero(key, sizeof(key));
    sodium_memzero(e_priv, sizeof(e_priv));
    return ret;
}

static bool initiation_flooded(const struct wg_handshake *hs, uint64_t now_ns)
{
    if (!hs->has_consumed_initiation)
        return false;
    return now_ns < hs->last_initiation_consumption_ns ||
           now_ns - hs->last_initiation_consumption_ns <= WG_HANDSHAKE_INITIATION_RATE_NS;
}

/* A valid initiation replaces any handshake in progress with this peer. */
static void commit_initiation(struct wg_handshake *hs, const uint8_t ck[WG_HASH_LEN],
                              const uint8_t h[WG_HASH_LEN], const struct wg_msg_initiation *msg,
                              const uint8_t timestamp[WG_TIMESTAMP_LEN], uint64_t now_ns)
{
    wg_noise_handshake_clear(hs);
    memcpy(hs->chaining_key, ck, WG_HASH_LEN);
    memcpy(hs->hash, h, WG_HASH_LEN);
    memcpy(hs->remote_ephemeral, msg->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);
    hs->remote_index = wg_le32_read(msg->sender_index);
    memcpy(hs->latest_timestamp, timestamp, WG_TIMESTAMP_LEN);
    hs->has_consumed_initiation = true;
    hs->last_initiation_consumption_ns = now_ns;
    hs->state = WG_HANDSHAKE_CONSUMED_INITIATION;
}

int wg_noise_consume_initiation(const struct wg_static_identity *id,
                                const struct wg_msg_initiation *msg, wg_noise_lookup_fn lookup,
                                void *ctx, uint64_t now_ns, struct wg_handshake **out_hs,
                                struct wg_handshake **out_peer)
{
    uint8_t ck[WG_HASH_LEN], h[WG_HASH_LEN], key[WG_SYMMETRIC_KEY_LEN];
    uint8_t s_pub[WG_PUBLIC_KEY_LEN], timestamp[WG_TIMESTAMP_LEN];
    struct wg_handshake *hs = NULL;
    int ret;

    *out_hs = NULL;
    if (out_peer)
        *out_peer = NULL;
    if (!header_is(&msg->header, WG_MSG_INITIATION))
        return WG_NOISE_ERR_MALFORMED;
    if (!id->has_private_key)
        return WG_NOISE_ERR_NO_IDENTITY;

    initial_chaining_key(ck);
    memcpy(h, id->responder_hash, WG_HASH_LEN);
    wg_kdf(ck, NULL, NULL, ck, msg->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);
    mix_hash(h, msg->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);

    /* es */
    uint8_t shared[WG_PUBLIC_KEY_LEN];
    if (dh(shared, id->private_key, msg->unencrypted_ephemeral) != 0) {
        ret = WG_NOISE_ERR_BAD_KEY;
        goto out;
    }
    wg_kdf(ck, key, NULL, ck, shared, sizeof(shared));
    if (aead_open(s_pub, key, msg->encrypted_static, sizeof(msg->encrypted_static), h) != 0) {
        ret = WG_NOISE_ERR_DECRYPT;
        goto out;
    }
    mix_hash(h, msg->encrypted_static, sizeof(msg->encrypted_static));

    hs = lookup(ctx, s_pub);
    if (!hs) {
        ret = WG_NOISE_ERR_UNKNOWN_PEER;
        goto out;
    }
    if (out_peer)
        *out_peer = hs;
    if ((ret = usable(hs, id)) != WG_NOISE_OK)
        goto out;

    /* ss */
    wg_kdf(ck, key, NULL, ck, hs->precomputed_static_static, WG_PUBLIC_KEY_LEN);
    if (aead_open(timestamp, key, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp), h) !=
        0) {
        ret = WG_NOISE_ERR_DECRYPT;
        goto out;
    }
    mix_hash(h, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp));

    /* Timestamps are public big-endian counters: plain memcmp orders them. */
    if (memcmp(timestamp, hs->latest_timestamp, WG_TIMESTAMP_LEN) <= 0) {
        ret = WG_NOISE_ERR_REPLAY;
        goto out;
    }
    if (initiation_flooded(hs, now_ns)) {
        ret = WG_NOISE_ERR_FLOOD;
        goto out;
    }

    commit_initiation(hs, ck, h, msg, timestamp, now_ns);
    *out_hs = hs;
    ret = WG_NOISE_OK;
out:
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(h, sizeof(h));
    sodium_memzero(key, sizeof(key));
    return ret;
}

/* The response's tail, shared by both sides: ee, se, psk, then the empty AEAD's key. */
static int response_keys(uint8_t ck[WG_HASH_LEN], uint8_t h[WG_HASH_LEN],
                         uint8_t key[WG_SYMMETRIC_KEY_LEN], const uint8_t *ee_priv,
                         const uint8_t *ee_pub, const uint8_t *se_priv, const uint8_t *se_pub,
                         const uint8_t psk[WG_SYMMETRIC_KEY_LEN])
{
    uint8_t tau[WG_HASH_LEN];

    if (mix_dh(ck, ee_priv, ee_pub) != 0 || mix_dh(ck, se_priv, se_pub) != 0)
        return WG_NOISE_ERR_BAD_KEY;
    wg_kdf(ck, tau, key, ck, psk, WG_SYMMETRIC_KEY_LEN);
    mix_hash(h, tau, sizeof(tau));
    sodium_memzero(tau, sizeof(tau));
    return WG_NOISE_OK;
}

int wg_noise_create_response(struct wg_handshake *hs, uint32_t local_index,
                             const uint8_t *ephemeral_private, struct wg_msg_response *out)
{
    uint8_t ck[WG_HASH_LEN], h[WG_HASH_LEN], key[WG_SYMMETRIC_KEY_LEN];
    uint8_t e_priv[WG_PRIVATE_KEY_LEN];
    int ret;

    if (hs->state != WG_HANDSHAKE_CONSUMED_INITIATION)
        return WG_NOISE_ERR_STATE;
    memset(out, 0, sizeof(*out));
    out->header.type = WG_MSG_RESPONSE;
    wg_le32_write(out->sender_index, local_index);
    wg_le32_write(out->receiver_index, hs->remote_index);

    memcpy(ck, hs->chaining_key, sizeof(ck));
    memcpy(h, hs->hash, sizeof(h));
    make_ephemeral(e_priv, out->unencrypted_ephemeral, ephemeral_private);
    wg_kdf(ck, NULL, NULL, ck, out->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);
    mix_hash(h, out->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);

    ret = response_keys(ck, h, key, e_priv, hs->remote_ephemeral, e_priv, hs->remote_static,
                        hs->preshared_key);
    if (ret != WG_NOISE_OK) {
        memset(out, 0, sizeof(*out));
        goto out;
    }
    aead_seal(out->encrypted_nothing, key, NULL, 0, h);
    mix_hash(h, out->encrypted_nothing, sizeof(out->encrypted_nothing));

    memcpy(hs->chaining_key, ck, sizeof(ck));
    memcpy(hs->hash, h, sizeof(h));
    sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
    hs->local_index = local_index;
    hs->state = WG_HANDSHAKE_CREATED_RESPONSE;
out:
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(h, sizeof(h));
    sodium_memzero(key, sizeof(key));
    sodium_memzero(e_priv, sizeof(e_priv));
    return ret;
}

int wg_noise_consume_response(struct wg_handshake *hs, const struct wg_static_identity *id,
                              const struct wg_msg_response *msg)
{
    uint8_t ck[WG_HASH_LEN], h[WG_HASH_LEN], key[WG_SYMMETRIC_KEY_LEN];
    uint8_t nothing[1];
    int ret;

    if (!header_is(&msg->header, WG_MSG_RESPONSE))
        return WG_NOISE_ERR_MALFORMED;
    if (hs->state != WG_HANDSHAKE_CREATED_INITIATION ||
        wg_le32_read(msg->receiver_index) != hs->local_index)
        return WG_NOISE_ERR_STATE;
    if ((ret = usable(hs, id)) != WG_NOISE_OK)
        return ret;

    memcpy(ck, hs->chaining_key, sizeof(ck));
    memcpy(h, hs->hash, sizeof(h));
    wg_kdf(ck, NULL, NULL, ck, msg->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);
    mix_hash(h, msg->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);

    ret = response_keys(ck, h, key, hs->ephemeral_private, msg->unencrypted_ephemeral,
                        id->private_key, msg->unencrypted_ephemeral, hs->preshared_key);
    if (ret != WG_NOISE_OK)
        goto out;
    if (aead_open(nothing, key, msg->encrypted_nothing, sizeof(msg->encrypted_nothing), h) != 0) {
        ret = WG_NOISE_ERR_DECRYPT;
        goto out;
    }
    mix_hash(h, msg->encrypted_nothing, sizeof(msg->encrypted_nothing));

    memcpy(hs->chaining_key, ck, sizeof(ck));
    memcpy(hs->hash, h, sizeof(h));
    memcpy(hs->remote_ephemeral, msg->unencrypted_ephemeral, WG_PUBLIC_KEY_LEN);
    sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
    hs->remote_index = wg_le32_read(msg->sender_index);
    hs->state = WG_HANDSHAKE_CONSUMED_RESPONSE;
out:
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(h, sizeof(h));
    sodium_memzero(key, sizeof(key));
    return ret;
}

int wg_noise_derive_keypair(struct wg_handshake *hs, struct wg_keypair *kp, uint64_t now_ns)
{
    bool initiator;

    if (hs->state == WG_HANDSHAKE_CONSUMED_RESPONSE)
        initiator = true;
    else if (hs->state == WG_HANDSHAKE_CREATED_RESPONSE)
        initiator = false;
    else
        return WG_NOISE_ERR_STATE;

    memset(kp, 0, sizeof(*kp));
    /* (T_send_i, T_recv_i) = KDF2(C, empty); the responder's are the same two, swapped. */
    if (initiator)
        wg_kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, NULL, 0);
    else
        wg_kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, NULL, 0);
    wg_replay_init(&kp->replay);
    kp->local_index = hs->local_index;
    kp->remote_index = hs->remote_index;
    kp->created_ns = now_ns;
    kp->is_initiator = initiator;
    kp->rekey_after_messages = WG_REKEY_AFTER_MESSAGES;
    /* Either way the handshake is spent: its chaining key must not derive keys twice. */
    wg_noise_handshake_clear(hs);
    if (wg_keypair_init_aead(kp) != WG_KEYPAIR_OK) {
        wg_keypair_clear(kp);
        return WG_NOISE_ERR_NOMEM;
    }
    return WG_NOISE_OK;
}

void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], const struct timespec *wall)
{
    uint64_t secs = 0x400000000000000aULL + (uint64_t)wall->tv_sec;
    uint32_t nsec = (uint32_t)wall->tv_nsec & ~(uint32_t)0xffffff;

    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(secs >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(nsec >> (24 - 8 * i));
}
