/*
 * BLAKE2s (RFC 7693) and the constructions WireGuard builds on it: HMAC-BLAKE2s (RFC 2104 with
 * a 64-byte block) and the HKDF-style KDF of the whitepaper (section 5.4). Our own code: libsodium
 * only has BLAKE2b. Nothing allocates; states live wherever the caller puts them and final()
 * wipes them.
 */
#ifndef TUNLESS_WG_BLAKE2S_H
#define TUNLESS_WG_BLAKE2S_H

#include <stddef.h>
#include <stdint.h>

#define WG_BLAKE2S_BLOCK_LEN 64
#define WG_BLAKE2S_OUT_LEN 32 /* maximum and WireGuard's HASH length */
#define WG_BLAKE2S_KEY_LEN 32 /* maximum key length */

struct wg_blake2s_state {
    uint32_t h[8];
    uint32_t t[2];
    uint32_t f[2];
    uint8_t buf[WG_BLAKE2S_BLOCK_LEN];
    size_t buflen;
    size_t outlen;
};

/* outlen 1..32. */
void wg_blake2s_init(struct wg_blake2s_state *s, size_t outlen);
/* outlen 1..32, keylen 1..32 (keylen 0 behaves as wg_blake2s_init). */
void wg_blake2s_init_key(struct wg_blake2s_state *s, size_t outlen, const uint8_t *key,
                         size_t keylen);
void wg_blake2s_update(struct wg_blake2s_state *s, const uint8_t *in, size_t inlen);
/* Writes s->outlen bytes to out, then wipes the state. */
void wg_blake2s_final(struct wg_blake2s_state *s, uint8_t *out);

/* One shot; key may be NULL when keylen is 0. */
void wg_blake2s(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen, const uint8_t *key,
                size_t keylen);

/* HMAC(key, in) with BLAKE2s-256 as the hash; keys longer than 64 bytes are hashed first. */
void wg_hmac_blake2s(uint8_t out[WG_BLAKE2S_OUT_LEN], const uint8_t *key, size_t keylen,
                     const uint8_t *in, size_t inlen);

/*
 * The whitepaper's KDF_n(key, input): tau0 = HMAC(key, input), tau1 = HMAC(tau0, 0x01),
 * tau_i = HMAC(tau0, tau_{i-1} || i). Writes tau1..tau3 to out1..out3; pass NULL for outputs
 * not wanted (out2 NULL implies out3 unused). Outputs may alias key. Intermediates are wiped.
 */
void wg_kdf(uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t key[WG_BLAKE2S_OUT_LEN],
            const uint8_t *input, size_t inlen);

#endif
