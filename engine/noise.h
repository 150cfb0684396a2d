/*
 * The WireGuard handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (whitepaper section 5.4),
 * prologue "WireGuard v1 zx2c4 Jason@zx2c4.com". Pure functions: no I/O, no clocks, no
 * allocation. The device owns the structs, the index table, the peer table and the clocks;
 * it passes time in (monotonic ns, and TAI64N bytes made with wg_tai64n()).
 *
 * MACs are not touched here: after creating a message the caller adds mac1/mac2 with
 * wg_cookie_add_macs() (cookie.h), and before consuming one it checks them with the cookie
 * checker. Failed consume calls leave the handshake exactly as it was.
 *
 * Typical flow:
 *   initiator: wg_noise_create_initiation -> (add macs, send) ... receive response, look up
 *              handshake by receiver index -> wg_noise_consume_response -> wg_noise_derive_keypair
 *   responder: wg_noise_consume_initiation (lookup callback finds the peer by static key)
 *              -> wg_noise_create_response -> (add macs, send) -> wg_noise_derive_keypair
 */
#ifndef TUNLESS_WG_NOISE_H
#define TUNLESS_WG_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "keypair.h"
#include "messages.h"

#define WG_NOISE_CONSTRUCTION "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
#define WG_NOISE_IDENTIFIER "WireGuard v1 zx2c4 Jason@zx2c4.com"

enum wg_noise_result {
    WG_NOISE_OK = 0,
    WG_NOISE_ERR_NO_IDENTITY = -1,  /* our private key is unset */
    WG_NOISE_ERR_BAD_KEY = -2,      /* a DH produced all zeros (low-order / invalid public key) */
    WG_NOISE_ERR_STATE = -3,        /* message does not fit the handshake's state or index */
    WG_NOISE_ERR_DECRYPT = -4,      /* AEAD failed: wrong keys, wrong PSK, forged or corrupt */
    WG_NOISE_ERR_UNKNOWN_PEER = -5, /* initiation from a static key the lookup does not know */
    WG_NOISE_ERR_REPLAY = -6,       /* initiation timestamp not newer than the latest seen */
    WG_NOISE_ERR_FLOOD = -7,        /* initiation within WG_HANDSHAKE_INITIATION_RATE_NS */
    WG_NOISE_ERR_MALFORMED = -8,    /* wrong message type or reserved bytes */
    WG_NOISE_ERR_NOMEM = -9,        /* derive: no memory for the transport cipher contexts */
};

/* A short name for logs: "decrypt", "replay", ...; "unknown" for anything else. */
const char *wg_noise_result_name(int result);

/* Our own static key, with what depends only on it precomputed. */
struct wg_static_identity {
    bool has_private_key;
    uint8_t private_key[WG_PRIVATE_KEY_LEN];
    uint8_t public_key[WG_PUBLIC_KEY_LEN];
    /* Responder's initial hash: HASH(HASH(HASH(CONSTRUCTION) || IDENTIFIER) || our public) */
    uint8_t responder_hash[WG_HASH_LEN];
};

enum wg_handshake_state {
    WG_HANDSHAKE_ZEROED = 0,
    WG_HANDSHAKE_CREATED_INITIATION,
    WG_HANDSHAKE_CONSUMED_INITIATION,
    WG_HANDSHAKE_CREATED_RESPONSE,
    WG_HANDSHAKE_CONSUMED_RESPONSE,
};

/* One per peer. Fields are read-only for callers except where noted. */
struct wg_handshake {
    enum wg_handshake_state state;
    uint8_t remote_static[WG_PUBLIC_KEY_LEN];
    /* DH(our private, remote static); all zeros if invalid (handshakes then fail BAD_KEY) */
    uint8_t precomputed_static_static[WG_PUBLIC_KEY_LEN];
    /* Initiator's initial hash: HASH(HASH(HASH(CONSTRUCTION) || IDENTIFIER) || remote static) */
    uint8_t initiator_hash[WG_HASH_LEN];
    uint8_t preshared_key[WG_SYMMETRIC_KEY_LEN]; /* all zeros = no PSK, as in WireGuard */

    uint8_t ephemeral_private[WG_PRIVATE_KEY_LEN];
    uint8_t remote_ephemeral[WG_PUBLIC_KEY_LEN];
    uint8_t hash[WG_HASH_LEN];
    uint8_t chaining_key[WG_HASH_LEN];
    uint32_t local_index;  /* ours, allocated by the device */
    uint32_t remote_index; /* the peer's sender index */

    /* Replay/flood protection for initiations; kept across handshakes. */
    uint8_t latest_timestamp[WG_TIMESTAMP_LEN];
    bool has_consumed_initiation;
    uint64_t last_initiation_consumption_ns;
};

/* Sets our key and precomputes; returns 0, or -1 (identity cleared) if the key is unusable.
 * Every wg_handshake must be re-initialised (wg_noise_handshake_init) after a key change. */
int wg_noise_identity_init(struct wg_static_identity *id, const uint8_t private_key[32]);
void wg_noise_identity_clear(struct wg_static_identity *id);

/*
 * Prepares a peer's handshake: remote static key, precomputed DH, PSK (NULL = none).
 * Keeps nothing else (starts ZEROED, no timestamp seen). Returns 0, or WG_NOISE_ERR_BAD_KEY /
 * WG_NOISE_ERR_NO_IDENTITY if the static-static DH is unusable (the struct is still set up, every
 * handshake with it will fail cleanly).
 */
int wg_noise_handshake_init(struct wg_handshake *hs, const struct wg_static_identity *id,
                            const uint8_t remote_static[WG_PUBLIC_KEY_LEN],
                            const uint8_t *preshared_key);
/* Changes the PSK (NULL = none) without touching anything else. */
void wg_noise_handshake_set_psk(struct wg_handshake *hs, const uint8_t *preshared_key);
/* Forgets a handshake in progress (ephemeral, hash, chaining key, indices) and returns to
 * ZEROED; keeps remote static, precomputation, PSK and the replay/flood state. */
void wg_noise_handshake_clear(struct wg_handshake *hs);
/* Wipes everything, including keys (for peer removal). */
void wg_noise_handshake_wipe(struct wg_handshake *hs);

/*
 * Initiator, step 1. Fills out (MACs left zero) and moves hs to CREATED_INITIATION,
 * replacing any handshake in progress. local_index is allocated by the caller.
 * timestamp: TAI64N now (wg_tai64n()). ephemeral_private: NULL for a fresh random key; tests
 * inject a fixed key for known-answer vectors.
 */
int wg_noise_create_initiation(struct wg_handshake *hs, const struct wg_static_identity *id,
                               uint32_t local_index, const uint8_t timestamp[WG_TIMESTAMP_LEN],
                               const uint8_t *ephemeral_private, struct wg_msg_initiation *out);

/* Finds the peer whose static public key is remote_static, or NULL if unknown. */
typedef struct wg_handshake *(*wg_noise_lookup_fn)(void *ctx,
                                                   const uint8_t remote_static[WG_PUBLIC_KEY_LEN]);

/*
 * Responder, step 1. Decrypts the initiator's static key, asks lookup(ctx, key) for that peer's
 * handshake, decrypts the timestamp and applies the replay rule (timestamp must be greater than
 * the latest seen from this peer) and the flood rule (at most one initiation per
 * WG_HANDSHAKE_INITIATION_RATE_NS). On success the peer's handshake is CONSUMED_INITIATION,
 * *out_hs points at it and remote_index holds the initiator's sender index. mac1 must have been
 * verified by the caller. On any error *out_hs is NULL (for UNKNOWN_PEER too); for REPLAY, FLOOD
 * and DECRYPT-after-lookup the caller may still want to know the peer: pass out_peer (may be
 * NULL) to receive it; it is set as soon as the lookup found the peer.
 * Success replaces a handshake we had in progress with that peer (both sides initiated at
 * once, as the reference implementations do): hs->local_index becomes 0, so a caller that
 * registered the old local_index in its index table must release it.
 */
int wg_noise_consume_initiation(const struct wg_static_identity *id,
                                const struct wg_msg_initiation *msg, wg_noise_lookup_fn lookup,
                                void *ctx, uint64_t now_ns, struct wg_handshake **out_hs,
                                struct wg_handshake **out_peer);

/*
 * Responder, step 2: hs must be CONSUMED_INITIATION. Fills out (MACs zero), moves hs to
 * CREATED_RESPONSE. local_index allocated by the caller; ephemeral_private as above.
 */
int wg_noise_create_response(struct wg_handshake *hs, uint32_t local_index,
                             const uint8_t *ephemeral_private, struct wg_msg_response *out);

/*
 * Initiator, step 2. The caller found hs through msg's receiver index in its index table; hs
 * must be CREATED_INITIATION with local_index equal to that receiver index. On success hs is
 * CONSUMED_RESPONSE and remote_index holds the responder's sender index.
 */
int wg_noise_consume_response(struct wg_handshake *hs, const struct wg_static_identity *id,
                              const struct wg_msg_response *msg);

/*
 * Both sides, last step: hs CONSUMED_RESPONSE (we initiated) or CREATED_RESPONSE (we
 * responded). Fills kp (keys, indices, counters zero, empty replay window,
 * created_ns = now_ns, is_initiator from the state, rekey_after_messages =
 * WG_REKEY_AFTER_MESSAGES, its cipher contexts: wg_keypair_init_aead()), then clears the
 * handshake's secrets (wg_noise_handshake_clear). The caller owns kp and frees it with
 * wg_keypair_clear(); on WG_NOISE_ERR_NOMEM kp is already cleared (the handshake is spent).
 * The responder must not send data on its keypair before it received the first transport
 * message from the initiator (whitepaper 5.4.7); that bookkeeping is the device's.
 */
int wg_noise_derive_keypair(struct wg_handshake *hs, struct wg_keypair *kp, uint64_t now_ns);

/*
 * TAI64N of a wall-clock time (e.g. from clock_gettime(CLOCK_REALTIME)): 8-byte big-endian
 * 2^62 + 10 + seconds, 4-byte big-endian nanoseconds. Like wireguard-go, nanoseconds are
 * rounded down to a multiple of 2^24 so the timestamp does not leak fine timing.
 */
void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], const struct timespec *wall);

#endif
