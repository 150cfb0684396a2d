/*
 * Transport data keys of one completed handshake (whitepaper section 5.4.6): sealing and opening
 * type-4 messages. Pure functions over caller-owned memory; time is passed in (monotonic ns).
 *
 * Zero-copy sending: the caller reserves WG_MSG_TRANSPORT_HEADER_LEN bytes of headroom, writes
 * the plaintext at out + WG_MSG_TRANSPORT_HEADER_LEN and passes that same pointer as plaintext;
 * wg_keypair_seal() then pads and encrypts in place. Any other plaintext pointer is copied once.
 * Receiving decrypts in place inside the datagram buffer.
 *
 * The AEAD runs on OpenSSL's libcrypto (its ChaCha20-Poly1305 assembly is about twice as fast as
 * libsodium's on AVX2/AVX-512 CPUs); everything else in the engine stays on libsodium. Each
 * keypair owns one cipher context per direction, keyed once by wg_keypair_init_aead(); per
 * packet only the nonce changes.
 */
#ifndef TUNLESS_WG_KEYPAIR_H
#define TUNLESS_WG_KEYPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages.h"
#include "replay.h"

struct evp_cipher_ctx_st; /* OpenSSL's EVP_CIPHER_CTX, kept out of this header */

struct wg_keypair {
    uint8_t send_key[WG_SYMMETRIC_KEY_LEN];
    uint8_t recv_key[WG_SYMMETRIC_KEY_LEN];
    uint64_t send_counter; /* next nonce to use */
    struct wg_replay replay;
    uint32_t local_index;  /* receiver index peers put in messages to us */
    uint32_t remote_index; /* receiver index we put in messages to the peer */
    uint64_t created_ns;   /* monotonic time of derivation */
    bool is_initiator;
    /* WG_REKEY_AFTER_MESSAGES unless a test lowers it to force a rekey by message count;
     * only wg_keypair_should_rekey() reads it. */
    uint64_t rekey_after_messages;
    /* Contexts keyed with send_key / recv_key; owned by this struct (wg_keypair_init_aead()
     * creates them, wg_keypair_clear() frees them). A plain struct copy shares them: only one
     * copy may be cleared, or the copy must call wg_keypair_init_aead() to own its own. */
    struct evp_cipher_ctx_st *send_ctx, *recv_ctx;
};

enum wg_keypair_result {
    WG_KEYPAIR_OK = 0,
    WG_KEYPAIR_ERR_SPACE = -1,     /* seal: out_cap too small */
    WG_KEYPAIR_ERR_EXHAUSTED = -2, /* seal: counter reached REJECT_AFTER_MESSAGES */
    WG_KEYPAIR_ERR_EXPIRED = -3,   /* older than REJECT_AFTER_TIME */
    WG_KEYPAIR_ERR_MALFORMED = -4, /* open: not a transport message / wrong receiver index */
    WG_KEYPAIR_ERR_AUTH = -5,      /* open: tag did not verify (wrong key, forged, corrupt) */
    WG_KEYPAIR_ERR_REPLAY = -6,    /* open: authentic, but counter seen already / too old /
                                      beyond REJECT_AFTER_MESSAGES */
    WG_KEYPAIR_ERR_CRYPTO = -7,    /* init_aead: no memory for a context; seal: libcrypto
                                      failed (nothing is sent) */
};

/* Creates kp's two cipher contexts from send_key and recv_key (set them first; any existing
 * context pointers are overwritten, not freed). Returns WG_KEYPAIR_OK, or WG_KEYPAIR_ERR_CRYPTO
 * with both contexts NULL. wg_noise_derive_keypair() calls it; tests that set keys by hand do. */
enum wg_keypair_result wg_keypair_init_aead(struct wg_keypair *kp);

/* Bytes a transport message for a plaintext of len bytes occupies: header + padded + tag. */
size_t wg_keypair_sealed_len(size_t plaintext_len);
/* The same when padding may not grow the plaintext beyond mtu (0 = no cap), as the kernel and
 * wireguard-go pad: a full 1420-byte packet stays 1420, so the datagram keeps fitting the path
 * MTU the tunnel MTU was chosen for. */
size_t wg_keypair_sealed_len_mtu(size_t plaintext_len, size_t mtu);

/*
 * Builds a complete transport message into out (out_cap bytes): header (type 4, the peer's
 * receiver index, our next counter), plaintext zero-padded to a multiple of 16, encrypted with
 * ChaCha20-Poly1305 (IETF, nonce = 4 zero bytes || counter LE64). len 0 makes a keepalive.
 * plaintext may equal out + WG_MSG_TRANSPORT_HEADER_LEN (in place, no copy) but must not
 * otherwise overlap out. Consumes one counter value on success only. *out_len gets the
 * message length (= wg_keypair_sealed_len(len)).
 * Refuses keypairs older than REJECT_AFTER_TIME at now_ns, and counters >= REJECT_AFTER_MESSAGES.
 */
enum wg_keypair_result wg_keypair_seal(struct wg_keypair *kp, const uint8_t *plaintext, size_t len,
                                       uint8_t *out, size_t out_cap, size_t *out_len,
                                       uint64_t now_ns);
/* wg_keypair_seal() with the padding capped at mtu (see wg_keypair_sealed_len_mtu()); the
 * device should use this with its tunnel MTU. mtu 0 = wg_keypair_seal(). */
enum wg_keypair_result wg_keypair_seal_mtu(struct wg_keypair *kp, const uint8_t *plaintext,
                                           size_t len, size_t mtu, uint8_t *out, size_t out_cap,
                                           size_t *out_len, uint64_t now_ns);

/*
 * Opens a received transport message in place: checks the receiver index equals
 * kp->local_index, authenticates and decrypts, and only THEN checks and updates the replay
 * window. On success *plaintext points into msg (at msg + 16) and *plaintext_len is the padded
 * plaintext length (0 = keepalive; the IP layer removes the padding using the IP header's
 * length). *counter_out (may be NULL) receives the message counter. On failure the caller must
 * drop msg: its payload bytes may have been overwritten (after a failed tag they are zeroed, as
 * libcrypto decrypts before it verifies: unauthenticated plaintext is never left behind).
 * Refuses keypairs older than REJECT_AFTER_TIME at now_ns.
 */
enum wg_keypair_result wg_keypair_open(struct wg_keypair *kp, uint8_t *msg, size_t len,
                                       uint8_t **plaintext, size_t *plaintext_len,
                                       uint64_t *counter_out, uint64_t now_ns);

/* The whitepaper's sender-side rekey trigger: sent counter >= kp->rekey_after_messages, or
 * (initiator only) the keypair is at least REKEY_AFTER_TIME old. */
bool wg_keypair_should_rekey(const struct wg_keypair *kp, uint64_t now_ns);

/* True once the keypair must not be used any more (REJECT_AFTER_TIME or counter exhausted). */
bool wg_keypair_expired(const struct wg_keypair *kp, uint64_t now_ns);

/* Frees the cipher contexts (libcrypto wipes the keys inside them) and wipes keys and state
 * (sodium_memzero); the struct is unusable until re-derived. Safe on a zeroed struct. */
void wg_keypair_clear(struct wg_keypair *kp);

#endif
