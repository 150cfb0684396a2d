/*
 * mac1/mac2 and cookie replies: WireGuard's DoS mitigation (whitepaper section 5.4.4, 5.4.7).
 * Works on any handshake message (initiation or response): mac1 covers every byte before it,
 * mac2 every byte before it (mac1 included); both are the message's last 32 bytes.
 *
 *   checker (responder side, one per device, keyed by OUR public key):
 *     every received handshake message: wg_cookie_check_mac1() must pass, else drop;
 *     under load: wg_cookie_check_mac2() must pass, else answer wg_cookie_create_reply().
 *   maker (initiator side, one per peer, keyed by the PEER's public key):
 *     every sent handshake message: wg_cookie_add_macs() last;
 *     a cookie reply for it: wg_cookie_consume_reply().
 * Time is monotonic ns passed in by the caller.
 */
#ifndef TUNLESS_WG_COOKIE_H
#define TUNLESS_WG_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages.h"

#define WG_LABEL_MAC1 "mac1----"
#define WG_LABEL_COOKIE "cookie--"

struct wg_cookie_checker {
    uint8_t mac1_key[WG_SYMMETRIC_KEY_LEN];   /* HASH("mac1----" || our public) */
    uint8_t cookie_key[WG_SYMMETRIC_KEY_LEN]; /* HASH("cookie--" || our public) */
    uint8_t secret[WG_HASH_LEN];              /* random, rotated every 2 minutes */
    bool has_secret;
    uint64_t secret_birth_ns;
};

struct wg_cookie_maker {
    uint8_t mac1_key[WG_SYMMETRIC_KEY_LEN];   /* HASH("mac1----" || peer public) */
    uint8_t cookie_key[WG_SYMMETRIC_KEY_LEN]; /* HASH("cookie--" || peer public) */
    uint8_t cookie[WG_COOKIE_LEN];
    bool has_cookie;
    uint64_t cookie_birth_ns;
    bool has_last_mac1; /* a cookie reply is only accepted for the last mac1 we sent */
    uint8_t last_mac1[WG_MAC_LEN];
};

/* Source address bytes the cookie binds to: up to 16 address bytes + 2 port bytes. */
#define WG_COOKIE_SOURCE_MAX 18

/* (Re)keys the checker from our public key; keeps no secret (the first reply makes one). */
void wg_cookie_checker_init(struct wg_cookie_checker *c,
                            const uint8_t our_public[WG_PUBLIC_KEY_LEN]);
void wg_cookie_checker_wipe(struct wg_cookie_checker *c);

/* msg/len: a whole received initiation or response (len >= 32). Constant-time compare. */
bool wg_cookie_check_mac1(const struct wg_cookie_checker *c, const uint8_t *msg, size_t len);

/*
 * True if msg's mac2 equals MAC(MAC(secret, src), msg up to mac2) with the current secret.
 * src/src_len: the datagram's source address as the device encodes it (e.g. IP bytes then
 * port), at most WG_COOKIE_SOURCE_MAX bytes; it only has to be the same encoding the device
 * passes to wg_cookie_create_reply(). False if the secret is older than 2 minutes.
 */
bool wg_cookie_check_mac2(const struct wg_cookie_checker *c, const uint8_t *msg, size_t len,
                          const uint8_t *src, size_t src_len, uint64_t now_ns);

/*
 * Builds the cookie reply to handshake message msg (whose mac1 the caller verified) from src:
 * receiver index = the message's sender index (the caller passes it), random 24-byte nonce,
 * cookie = MAC(secret, src) encrypted with XChaCha20-Poly1305 under cookie_key with msg's mac1
 * as associated data. Rotates the secret first if it is missing or 2 minutes old.
 * Returns 0, or -1 for bad lengths.
 */
int wg_cookie_create_reply(struct wg_cookie_checker *c, const uint8_t *msg, size_t len,
                           uint32_t receiver_index, const uint8_t *src, size_t src_len,
                           uint64_t now_ns, struct wg_msg_cookie_reply *out);

/* (Re)keys the maker from the peer's public key and forgets any cookie. */
void wg_cookie_maker_init(struct wg_cookie_maker *m, const uint8_t peer_public[WG_PUBLIC_KEY_LEN]);
void wg_cookie_maker_wipe(struct wg_cookie_maker *m);

/* Writes mac1 and mac2 (zeros unless a cookie younger than 2 minutes is held) into the last 32
 * bytes of msg (len >= 32) and remembers mac1 for wg_cookie_consume_reply(). Call after
 * the message is otherwise complete. */
void wg_cookie_add_macs(struct wg_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now_ns);

/* Decrypts a cookie reply addressed to the handshake message we sent last and stores its cookie
 * (birth = now_ns). The caller found m through the reply's receiver index. Returns 0, or -1 if
 * we sent no message or authentication failed (m unchanged). */
int wg_cookie_consume_reply(struct wg_cookie_maker *m, const struct wg_msg_cookie_reply *msg,
                            uint64_t now_ns);

#endif
