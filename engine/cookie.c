/* MAC1/MAC2 and cookies (whitepaper 5.4.4, 5.4.7): first the checker side (verifies MACs,
 * rotates its secret, answers with cookie replies), then the maker side (adds MACs to what we
 * send, consumes cookie replies). */
#include "cookie.h"

#include <sodium.h>
#include <string.h>

#include "blake2s.h"

/* HASH(label || public key) */
static void derive_key(uint8_t out[WG_SYMMETRIC_KEY_LEN], const char label[8],
                       const uint8_t pub[WG_PUBLIC_KEY_LEN])
{
    struct wg_blake2s_state s;

    wg_blake2s_init(&s, WG_SYMMETRIC_KEY_LEN);
    wg_blake2s_update(&s, (const uint8_t *)label, 8);
    wg_blake2s_update(&s, pub, WG_PUBLIC_KEY_LEN);
    wg_blake2s_final(&s, out);
}

/* mac1 covers everything before it; mac2 everything before it. */
static void compute_mac(uint8_t out[WG_MAC_LEN], const uint8_t *key, size_t keylen,
                        const uint8_t *msg, size_t covered)
{
    wg_blake2s(out, WG_MAC_LEN, msg, covered, key, keylen);
}

static bool older_than(uint64_t now_ns, uint64_t birth_ns, uint64_t max_ns)
{
    /* A clock that went backwards counts as stale: refreshing is always safe. */
    return now_ns < birth_ns || now_ns - birth_ns >= max_ns;
}

void wg_cookie_checker_init(struct wg_cookie_checker *c,
                            const uint8_t our_public[WG_PUBLIC_KEY_LEN])
{
    sodium_memzero(c, sizeof(*c));
    derive_key(c->mac1_key, WG_LABEL_MAC1, our_public);
    derive_key(c->cookie_key, WG_LABEL_COOKIE, our_public);
}

void wg_cookie_checker_wipe(struct wg_cookie_checker *c)
{
    sodium_memzero(c, sizeof(*c));
}

bool wg_cookie_check_mac1(const struct wg_cookie_checker *c, const uint8_t *msg, size_t len)
{
    uint8_t mac[WG_MAC_LEN];

    if (len < sizeof(struct wg_msg_macs))
        return false;
    size_t covered = len - sizeof(struct wg_msg_macs);
    compute_mac(mac, c->mac1_key, sizeof(c->mac1_key), msg, covered);
    return crypto_verify_16(mac, msg + covered) == 0;
}

static void make_cookie(uint8_t cookie[WG_COOKIE_LEN], const struct wg_cookie_checker *c,
                        const uint8_t *src, size_t src_len)
{
    wg_blake2s(cookie, WG_COOKIE_LEN, src, src_len, c->secret, sizeof(c->secret));
}

bool wg_cookie_check_mac2(const struct wg_cookie_checker *c, const uint8_t *msg, size_t len,
                          const uint8_t *src, size_t src_len, uint64_t now_ns)
{
    uint8_t cookie[WG_COOKIE_LEN], mac[WG_MAC_LEN];

    if (len < sizeof(struct wg_msg_macs) || src_len > WG_COOKIE_SOURCE_MAX)
        return false;
    if (!c->has_secret || older_than(now_ns, c->secret_birth_ns, WG_COOKIE_REFRESH_TIME_NS))
        return false;
    size_t covered = len - WG_MAC_LEN;
    make_cookie(cookie, c, src, src_len);
    compute_mac(mac, cookie, sizeof(cookie), msg, covered);
    bool ok = crypto_verify_16(mac, msg + covered) == 0;
    sodium_memzero(cookie, sizeof(cookie));
    return ok;
}

int wg_cookie_create_reply(struct wg_cookie_checker *c, const uint8_t *msg, size_t len,
                           uint32_t receiver_index, const uint8_t *src, size_t src_len,
                           uint64_t now_ns, struct wg_msg_cookie_reply *out)
{
    uint8_t cookie[WG_COOKIE_LEN];

    if (len < sizeof(struct wg_msg_macs) || src_len > WG_COOKIE_SOURCE_MAX)
        return -1;
    if (!c->has_secret || older_than(now_ns, c->secret_birth_ns, WG_COOKIE_REFRESH_TIME_NS)) {
        randombytes_buf(c->secret, sizeof(c->secret));
        c->secret_birth_ns = now_ns;
        c->has_secret = true;
    }
    const uint8_t *mac1 = msg + len - sizeof(struct wg_msg_macs);

    memset(out, 0, sizeof(*out));
    out->header.type = WG_MSG_COOKIE_REPLY;
    wg_le32_write(out->receiver_index, receiver_index);
    randombytes_buf(out->nonce, sizeof(out->nonce));
    make_cookie(cookie, c, src, src_len);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out->encrypted_cookie, NULL, cookie, sizeof(cookie),
                                               mac1, WG_MAC_LEN, NULL, out->nonce, c->cookie_key);
    sodium_memzero(cookie, sizeof(cookie));
    return 0;
}

void wg_cookie_maker_init(struct wg_cookie_maker *m, const uint8_t peer_public[WG_PUBLIC_KEY_LEN])
{
    sodium_memzero(m, sizeof(*m));
    derive_key(m->mac1_key, WG_LABEL_MAC1, peer_public);
    derive_key(m->cookie_key, WG_LABEL_COOKIE, peer_public);
}

void wg_cookie_maker_wipe(struct wg_cookie_maker *m)
{
    sodium_memzero(m, sizeof(*m));
}

void wg_cookie_add_macs(struct wg_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now_ns)
{
    if (len < sizeof(struct wg_msg_macs))
        return;
    size_t mac1_at = len - sizeof(struct wg_msg_macs);
    size_t mac2_at = len - WG_MAC_LEN;

    compute_mac(msg + mac1_at, m->mac1_key, sizeof(m->mac1_key), msg, mac1_at);
    memcpy(m->last_mac1, msg + mac1_at, WG_MAC_LEN);
    m->has_last_mac1 = true;

    if (m->has_cookie && !older_than(now_ns, m->cookie_birth_ns, WG_COOKIE_REFRESH_TIME_NS))
        compute_mac(msg + mac2_at, m->cookie, sizeof(m->cookie), msg, mac2_at);
    else
        memset(msg + mac2_at, 0, WG_MAC_LEN);
}

int wg_cookie_consume_reply(struct wg_cookie_maker *m, const struct wg_msg_cookie_reply *msg,
                            uint64_t now_ns)
{
    uint8_t cookie[WG_COOKIE_LEN];

    if (msg->header.type != WG_MSG_COOKIE_REPLY || msg->header.reserved[0] ||
        msg->header.reserved[1] || msg->header.reserved[2])
        return -1;
    if (!m->has_last_mac1)
        return -1;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, msg->encrypted_cookie,
                                                   sizeof(msg->encrypted_cookie), m->last_mac1,
                                                   WG_MAC_LEN, msg->nonce, m->cookie_key) != 0)
        return -1;
    memcpy(m->cookie, cookie, sizeof(cookie));
    m->cookie_birth_ns = now_ns;
    m->has_cookie = true;
    /* One reply per message sent, as the kernel does: a replayed reply cannot refresh it. */
    m->has_last_mac1 = false;
    sodium_memzero(cookie, sizeof(cookie));
    return 0;
}
