/*
 * WireGuard wire formats and protocol constants (whitepaper sections 5.4 and 6).
 *
 * Every message struct is made of byte arrays only, so it has alignment 1, no padding and the
 * exact wire size: a received datagram may be cast to the struct once wg_message_type() has
 * accepted its length. Multi-byte integers on the wire are little-endian; read and write them
 * with wg_le32_read()/wg_le32_write() and friends, never through a cast.
 */
#ifndef TUNLESS_WG_MESSAGES_H
#define TUNLESS_WG_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

/* ---- Protocol constants (whitepaper section 6.1), one place for the whole engine ---- */

#define WG_NSEC_PER_SEC 1000000000ULL

#define WG_REKEY_AFTER_MESSAGES (1ULL << 60)
/* 2^64 - 2^13 - 1: the last counter value a keypair may ever use or accept. */
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))
#define WG_REKEY_AFTER_TIME_SEC 120
#define WG_REJECT_AFTER_TIME_SEC 180
#define WG_REKEY_ATTEMPT_TIME_SEC 90
#define WG_REKEY_TIMEOUT_SEC 5
#define WG_KEEPALIVE_TIMEOUT_SEC 10
#define WG_REKEY_AFTER_TIME_NS (WG_REKEY_AFTER_TIME_SEC * WG_NSEC_PER_SEC)
#define WG_REJECT_AFTER_TIME_NS (WG_REJECT_AFTER_TIME_SEC * WG_NSEC_PER_SEC)
#define WG_REKEY_ATTEMPT_TIME_NS (WG_REKEY_ATTEMPT_TIME_SEC * WG_NSEC_PER_SEC)
#define WG_REKEY_TIMEOUT_NS (WG_REKEY_TIMEOUT_SEC * WG_NSEC_PER_SEC)
#define WG_KEEPALIVE_TIMEOUT_NS (WG_KEEPALIVE_TIMEOUT_SEC * WG_NSEC_PER_SEC)
/* Jitter added to each handshake retry (wireguard-go and the kernel use up to 333 ms). */
#define WG_REKEY_TIMEOUT_JITTER_MAX_NS (333ULL * 1000000ULL)
/* A responder processes at most one initiation per peer in this interval (both reference
 * implementations: 1 s / 50). Together with the strictly increasing TAI64N timestamp this is
 * the replay/flood protection for initiations. */
#define WG_HANDSHAKE_INITIATION_RATE_NS (WG_NSEC_PER_SEC / 50)
/* The cookie secret rotates, and a received cookie expires, after this long. */
#define WG_COOKIE_REFRESH_TIME_NS (120ULL * WG_NSEC_PER_SEC)

/* ---- Sizes ---- */

#define WG_PUBLIC_KEY_LEN 32
#define WG_PRIVATE_KEY_LEN 32
#define WG_SYMMETRIC_KEY_LEN 32
#define WG_HASH_LEN 32
#define WG_AEAD_TAG_LEN 16
#define WG_TIMESTAMP_LEN 12 /* TAI64N */
#define WG_MAC_LEN 16
#define WG_COOKIE_LEN 16
#define WG_COOKIE_NONCE_LEN 24

#define WG_MSG_INITIATION_LEN 148
#define WG_MSG_RESPONSE_LEN 92
#define WG_MSG_COOKIE_REPLY_LEN 64
#define WG_MSG_TRANSPORT_HEADER_LEN 16
/* Header plus the tag of an empty (keepalive) payload. */
#define WG_MSG_TRANSPORT_MIN_LEN (WG_MSG_TRANSPORT_HEADER_LEN + WG_AEAD_TAG_LEN)
/* Transport plaintext is zero-padded to a multiple of this. */
#define WG_MSG_PADDING_MULTIPLE 16

/* ---- Message types: the first 4 bytes, little-endian u32 (type byte + 3 zero bytes) ---- */

enum wg_message_type {
    WG_MSG_INVALID = 0,
    WG_MSG_INITIATION = 1,
    WG_MSG_RESPONSE = 2,
    WG_MSG_COOKIE_REPLY = 3,
    WG_MSG_TRANSPORT = 4,
};

struct wg_msg_header {
    uint8_t type;
    uint8_t reserved[3]; /* zero on the wire; wg_message_type() rejects anything else */
};

struct wg_msg_macs {
    uint8_t mac1[WG_MAC_LEN];
    uint8_t mac2[WG_MAC_LEN];
};

struct wg_msg_initiation {
    struct wg_msg_header header;
    uint8_t sender_index[4];
    uint8_t unencrypted_ephemeral[WG_PUBLIC_KEY_LEN];
    uint8_t encrypted_static[WG_PUBLIC_KEY_LEN + WG_AEAD_TAG_LEN];
    uint8_t encrypted_timestamp[WG_TIMESTAMP_LEN + WG_AEAD_TAG_LEN];
    struct wg_msg_macs macs;
};

struct wg_msg_response {
    struct wg_msg_header header;
    uint8_t sender_index[4];
    uint8_t receiver_index[4];
    uint8_t unencrypted_ephemeral[WG_PUBLIC_KEY_LEN];
    uint8_t encrypted_nothing[WG_AEAD_TAG_LEN];
    struct wg_msg_macs macs;
};

struct wg_msg_cookie_reply {
    struct wg_msg_header header;
    uint8_t receiver_index[4];
    uint8_t nonce[WG_COOKIE_NONCE_LEN];
    uint8_t encrypted_cookie[WG_COOKIE_LEN + WG_AEAD_TAG_LEN];
};

/* Followed by the encrypted, padded payload and its 16-byte tag. */
struct wg_msg_transport {
    struct wg_msg_header header;
    uint8_t receiver_index[4];
    uint8_t counter[8];
};

_Static_assert(sizeof(struct wg_msg_initiation) == WG_MSG_INITIATION_LEN, "initiation size");
_Static_assert(sizeof(struct wg_msg_response) == WG_MSG_RESPONSE_LEN, "response size");
_Static_assert(sizeof(struct wg_msg_cookie_reply) == WG_MSG_COOKIE_REPLY_LEN, "cookie reply size");
_Static_assert(sizeof(struct wg_msg_transport) == WG_MSG_TRANSPORT_HEADER_LEN, "transport size");

/* ---- Little-endian helpers (the wire is little-endian whatever the host is) ---- */

static inline uint32_t wg_le32_read(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void wg_le32_write(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint64_t wg_le64_read(const uint8_t *p)
{
    return (uint64_t)wg_le32_read(p) | (uint64_t)wg_le32_read(p + 4) << 32;
}

static inline void wg_le64_write(uint8_t *p, uint64_t v)
{
    wg_le32_write(p, (uint32_t)v);
    wg_le32_write(p + 4, (uint32_t)(v >> 32));
}

/*
 * The type of a received datagram, or WG_MSG_INVALID (0) for anything that is not exactly one
 * of the four messages: initiation, response and cookie reply must have their exact size;
 * transport needs at least WG_MSG_TRANSPORT_MIN_LEN bytes. The three reserved bytes must be
 * zero. Nothing is authenticated here. pkt may be NULL when len is 0.
 */
enum wg_message_type wg_message_type(const uint8_t *pkt, size_t len);

/*
 * The receiver index of a response, cookie reply or transport message the caller has already
 * classified as `type` (0 for the initiation, which has none). This is the key the device
 * looks up in its index table.
 */
uint32_t wg_message_receiver_index(const uint8_t *pkt, enum wg_message_type type);

#endif
