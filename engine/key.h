/*
 * Curve25519 keys as WireGuard and wg(8) write them: 32 bytes, base64 with padding (44 chars).
 * Callers own every buffer; nothing here allocates.
 */
#ifndef TUNLESS_WG_KEY_H
#define TUNLESS_WG_KEY_H

#include <stddef.h>
#include <stdint.h>

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* without the terminating NUL */

/* A fresh private key, clamped as X25519 wants it. */
void wg_key_generate(uint8_t priv[WG_KEY_LEN]);
/* The public key of priv. Returns -1 for a key whose public half is all zeros (unusable). */
int wg_key_public(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]);
/* The text form is the configuration's: cfg_key_from_base64 (config/) reads it. */
void wg_key_to_base64(char out[WG_KEY_B64_LEN + 1], const uint8_t key[WG_KEY_LEN]);
/* Its first 8 base64 characters: enough to tell peers apart in logs (base_log_peer's KEY8). */
#define WG_KEY_SHORT_LEN 8
void wg_key_short(char out[WG_KEY_SHORT_LEN + 1], const uint8_t key[WG_KEY_LEN]);
/* Constant time: keys are secrets or are compared against attacker input. */
int wg_key_equal(const uint8_t a[WG_KEY_LEN], const uint8_t b[WG_KEY_LEN]);
int wg_key_is_zero(const uint8_t key[WG_KEY_LEN]);

#endif
