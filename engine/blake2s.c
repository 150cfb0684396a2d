/* BLAKE2s (RFC 7693) and the HMAC/HKDF built on it, as the WireGuard KDF needs them. */
#include "blake2s.h"

#include <sodium.h>
#include <string.h>

static const uint32_t blake2s_iv[8] = {
    0x6A09E667UL, 0xBB67AE85UL, 0x3C6EF372UL, 0xA54FF53AUL,
    0x510E527FUL, 0x9B05688CUL, 0x1F83D9ABUL, 0x5BE0CD19UL,
};

static const uint8_t blake2s_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t rotr32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

#define G(a, b, c, d, x, y)    \
    do {                       \
        a = a + b + (x);       \
        d = rotr32(d ^ a, 16); \
        c = c + d;             \
        b = rotr32(b ^ c, 12); \
        a = a + b + (y);       \
        d = rotr32(d ^ a, 8);  \
        c = c + d;             \
        b = rotr32(b ^ c, 7);  \
    } while (0)

static void compress(struct wg_blake2s_state *s, const uint8_t block[WG_BLAKE2S_BLOCK_LEN])
{
    uint32_t m[16], v[16];

    for (int i = 0; i < 16; i++)
        m[i] = load32(block + 4 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = blake2s_iv[i];
    }
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    v[14] ^= s->f[0];
    v[15] ^= s->f[1];
    for (int r = 0; r < 10; r++) {
        const uint8_t *sg = blake2s_sigma[r];
        G(v[0], v[4], v[8], v[12], m[sg[0]], m[sg[1]]);
        G(v[1], v[5], v[9], v[13], m[sg[2]], m[sg[3]]);
        G(v[2], v[6], v[10], v[14], m[sg[4]], m[sg[5]]);
        G(v[3], v[7], v[11], v[15], m[sg[6]], m[sg[7]]);
        G(v[0], v[5], v[10], v[15], m[sg[8]], m[sg[9]]);
        G(v[1], v[6], v[11], v[12], m[sg[10]], m[sg[11]]);
        G(v[2], v[7], v[8], v[13], m[sg[12]], m[sg[13]]);
        G(v[3], v[4], v[9], v[14], m[sg[14]], m[sg[15]]);
    }
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
    sodium_memzero(m, sizeof(m));
    sodium_memzero(v, sizeof(v));
}

static void increment_counter(struct wg_blake2s_state *s, uint32_t inc)
{
    s->t[0] += inc;
    s->t[1] += (s->t[0] < inc);
}

void wg_blake2s_init(struct wg_blake2s_state *s, size_t outlen)
{
    wg_blake2s_init_key(s, outlen, NULL, 0);
}

void wg_blake2s_init_key(struct wg_blake2s_state *s, size_t outlen, const uint8_t *key,
                         size_t keylen)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->h, blake2s_iv, sizeof(s->h));
    /* Parameter block word 0: digest length, key length, fanout 1, depth 1. */
    s->h[0] ^= 0x01010000UL ^ ((uint32_t)keylen << 8) ^ (uint32_t)outlen;
    s->outlen = outlen;
    if (keylen > 0) {
        /* The key is the first block, zero-padded. */
        memcpy(s->buf, key, keylen);
        s->buflen = WG_BLAKE2S_BLOCK_LEN;
    }
}

void wg_blake2s_update(struct wg_blake2s_state *s, const uint8_t *in, size_t inlen)
{
    /* The last block must go through final() with the final flag, so a full buffer is only
     * compressed once more input arrives. */
    while (inlen > 0) {
        if (s->buflen == WG_BLAKE2S_BLOCK_LEN) {
            increment_counter(s, WG_BLAKE2S_BLOCK_LEN);
            compress(s, s->buf);
            s->buflen = 0;
        }
        size_t take = WG_BLAKE2S_BLOCK_LEN - s->buflen;
        if (take > inlen)
            take = inlen;
        memcpy(s->buf + s->buflen, in, take);
        s->buflen += take;
        in += take;
        inlen -= take;
    }
}

void wg_blake2s_final(struct wg_blake2s_state *s, uint8_t *out)
{
    uint8_t full[WG_BLAKE2S_OUT_LEN];

    increment_counter(s, (uint32_t)s->buflen);
    s->f[0] = 0xFFFFFFFFUL;
    memset(s->buf + s->buflen, 0, WG_BLAKE2S_BLOCK_LEN - s->buflen);
    compress(s, s->buf);
    for (int i = 0; i < 8; i++)
        store32(full + 4 * i, s->h[i]);
    memcpy(out, full, s->outlen);
    sodium_memzero(full, sizeof(full));
    sodium_memzero(s, sizeof(*s));
}

void wg_blake2s(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen, const uint8_t *key,
                size_t keylen)
{
    struct wg_blake2s_state s;

    wg_blake2s_init_key(&s, outlen, key, keylen);
    wg_blake2s_update(&s, in, inlen);
    wg_blake2s_final(&s, out);
}

void wg_hmac_blake2s(uint8_t out[WG_BLAKE2S_OUT_LEN], const uint8_t *key, size_t keylen,
                     const uint8_t *in, size_t inlen)
{
    struct wg_blake2s_state s;
    uint8_t pad[WG_BLAKE2S_BLOCK_LEN];
    uint8_t inner[WG_BLAKE2S_OUT_LEN];

    memset(pad, 0, sizeof(pad));
    if (keylen > WG_BLAKE2S_BLOCK_LEN)
        wg_blake2s(pad, WG_BLAKE2S_OUT_LEN, key, keylen, NULL, 0);
    else if (keylen > 0)
        memcpy(pad, key, keylen);

    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36;
    wg_blake2s_init(&s, WG_BLAKE2S_OUT_LEN);
    wg_blake2s_update(&s, pad, sizeof(pad));
    wg_blake2s_update(&s, in, inlen);
    wg_blake2s_final(&s, inner);

    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36 ^ 0x5c;
    wg_blake2s_init(&s, WG_BLAKE2S_OUT_LEN);
    wg_blake2s_update(&s, pad, sizeof(pad));
    wg_blake2s_update(&s, inner, sizeof(inner));
    wg_blake2s_final(&s, out);

    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

void wg_kdf(uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t key[WG_BLAKE2S_OUT_LEN],
            const uint8_t *input, size_t inlen)
{
    uint8_t prk[WG_BLAKE2S_OUT_LEN];
    uint8_t t[WG_BLAKE2S_OUT_LEN + 1];

    /* prk first: the outputs may alias key. */
    wg_hmac_blake2s(prk, key, WG_BLAKE2S_OUT_LEN, input, inlen);

    t[0] = 1;
    wg_hmac_blake2s(t, prk, sizeof(prk), t, 1);
    if (out1)
        memcpy(out1, t, WG_BLAKE2S_OUT_LEN);
    if (out2) {
        t[WG_BLAKE2S_OUT_LEN] = 2;
        wg_hmac_blake2s(t, prk, sizeof(prk), t, sizeof(t));
        memcpy(out2, t, WG_BLAKE2S_OUT_LEN);
        if (out3) {
            t[WG_BLAKE2S_OUT_LEN] = 3;
            wg_hmac_blake2s(t, prk, sizeof(prk), t, sizeof(t));
            memcpy(out3, t, WG_BLAKE2S_OUT_LEN);
        }
    }
    sodium_memzero(prk, sizeof(prk));
    sodium_memzero(t, sizeof(t));
}
