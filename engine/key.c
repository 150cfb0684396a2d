/* Curve25519 keys: generation, the public half, and wg(8)'s base64 form. */
#include "key.h"

#include <sodium.h>
#include <string.h>

void wg_key_generate(uint8_t priv[WG_KEY_LEN])
{
    randombytes_buf(priv, WG_KEY_LEN);
    priv[0] &= 248;
    priv[31] = (priv[31] & 127) | 64;
}

int wg_key_public(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN])
{
    return crypto_scalarmult_base(pub, priv) == 0 ? 0 : -1;
}

void wg_key_to_base64(char out[WG_KEY_B64_LEN + 1], const uint8_t key[WG_KEY_LEN])
{
    sodium_bin2base64(out, WG_KEY_B64_LEN + 1, key, WG_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

void wg_key_short(char out[WG_KEY_SHORT_LEN + 1], const uint8_t key[WG_KEY_LEN])
{
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_to_base64(b64, key);
    memcpy(out, b64, WG_KEY_SHORT_LEN);
    out[WG_KEY_SHORT_LEN] = '\0';
}

int wg_key_equal(const uint8_t a[WG_KEY_LEN], const uint8_t b[WG_KEY_LEN])
{
    return sodium_memcmp(a, b, WG_KEY_LEN) == 0;
}

int wg_key_is_zero(const uint8_t key[WG_KEY_LEN])
{
    return sodium_is_zero(key, WG_KEY_LEN);
}
