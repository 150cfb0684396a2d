/* One session's keys: their libcrypto contexts, sealing transport messages (counter, padding to
 * the MTU), opening them (replay window), and the age and message limits that expire a keypair.
 * The AEAD is OpenSSL's ChaCha20-Poly1305 (about twice libsodium's speed on AVX2/AVX-512): each
 * context is keyed once; per packet only the nonce is set, which also resets the Poly1305 state. */
#include "keypair.h"

#include <limits.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#define PADDED(len) (((len) + WG_MSG_PADDING_MULTIPLE - 1) & ~(size_t)(WG_MSG_PADDING_MULTIPLE - 1))

static void make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t counter)
{
    memset(nonce, 0, 4);
    wg_le64_write(nonce + 4, counter);
}

static EVP_CIPHER_CTX *new_ctx(const uint8_t key[WG_SYMMETRIC_KEY_LEN], int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    /* The 12-byte nonce is chacha20-poly1305's default IV length; no IVLEN control needed. */
    if (ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, enc) == 1)
        return ctx;
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

enum wg_keypair_result wg_keypair_init_aead(struct wg_keypair *kp)
{
    kp->send_ctx = new_ctx(kp->send_key, 1);
    kp->recv_ctx = new_ctx(kp->recv_key, 0);
    if (kp->send_ctx && kp->recv_ctx)
        return WG_KEYPAIR_OK;
    EVP_CIPHER_CTX_free(kp->send_ctx);
    EVP_CIPHER_CTX_free(kp->recv_ctx);
    kp->send_ctx = kp->recv_ctx = NULL;
    return WG_KEYPAIR_ERR_CRYPTO;
}

/* Encrypts body[0..len) in place and writes the tag to body + len. */
static bool aead_seal(EVP_CIPHER_CTX *ctx, uint64_t counter, uint8_t *body, size_t len)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    int n = 0, fin = 0;

    make_nonce(nonce, counter);
    if (!ctx || len > INT_MAX || EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
        EVP_EncryptUpdate(ctx, body, &n, body, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, body + n, &fin) != 1 || (size_t)n + (size_t)fin != len)
        return false;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WG_AEAD_TAG_LEN, body + len) == 1;
}

/* Decrypts body[0..len) in place if the tag at body + len verifies (libcrypto compares in
 * constant time). It decrypts first, so on any failure the output is wiped. */
static bool aead_open(EVP_CIPHER_CTX *ctx, uint64_t counter, uint8_t *body, size_t len)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    int n = 0, fin = 0;

    make_nonce(nonce, counter);
    if (!ctx || len > INT_MAX)
        return false;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 0) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, WG_AEAD_TAG_LEN, body + len) == 1 &&
        EVP_DecryptUpdate(ctx, body, &n, body, (int)len) == 1 &&
        EVP_DecryptFinal_ex(ctx, body + n, &fin) == 1 && (size_t)n + (size_t)fin == len)
        return true;
    sodium_memzero(body, len);
    return false;
}

static bool too_old(const struct wg_keypair *kp, uint64_t now_ns)
{
    return now_ns >= kp->created_ns && now_ns - kp->created_ns >= WG_REJECT_AFTER_TIME_NS;
}

/* Zero padding hides the exact length, but never past the MTU (then the datagram would no
 * longer fit the path the MTU was sized for). */
static size_t padded_len(size_t len, size_t mtu)
{
    size_t padded = PADDED(len);
    if (mtu && padded > mtu)
        padded = len > mtu ? len : mtu;
    return padded;
}

size_t wg_keypair_sealed_len_mtu(size_t plaintext_len, size_t mtu)
{
    return WG_MSG_TRANSPORT_HEADER_LEN + padded_len(plaintext_len, mtu) + WG_AEAD_TAG_LEN;
}

size_t wg_keypair_sealed_len(size_t plaintext_len)
{
    return wg_keypair_sealed_len_mtu(plaintext_len, 0);
}

enum wg_keypair_result wg_keypair_seal(struct wg_keypair *kp, const uint8_t *plaintext, size_t len,
                                       uint8_t *out, size_t out_cap, size_t *out_len,
                                       uint64_t now_ns)
{
    return wg_keypair_seal_mtu(kp, plaintext, len, 0, out, out_cap, out_len, now_ns);
}

enum wg_keypair_result wg_keypair_seal_mtu(struct wg_keypair *kp, const uint8_t *plaintext,
                                           size_t len, size_t mtu, uint8_t *out, size_t out_cap,
                                           size_t *out_len, uint64_t now_ns)
{
    if (too_old(kp, now_ns))
        return WG_KEYPAIR_ERR_EXPIRED;
    if (kp->send_counter >= WG_REJECT_AFTER_MESSAGES)
        return WG_KEYPAIR_ERR_EXHAUSTED;
    if (len > out_cap || len > SIZE_MAX / 2 || wg_keypair_sealed_len_mtu(len, mtu) > out_cap)
        return WG_KEYPAIR_ERR_SPACE;

    size_t padded = padded_len(len, mtu);
    uint8_t *body = out + WG_MSG_TRANSPORT_HEADER_LEN;
    if (plaintext != body && len > 0)
        memcpy(body, plaintext, len);
    memset(body + len, 0, padded - len);

    /* The counter is consumed only once the AEAD succeeded (a failed seal sends nothing). */
    uint64_t counter = kp->send_counter;
    if (!aead_seal(kp->send_ctx, counter, body, padded))
        return WG_KEYPAIR_ERR_CRYPTO;
    kp->send_counter++;
    struct wg_msg_transport *hdr = (struct wg_msg_transport *)out;
    hdr->header.type = WG_MSG_TRANSPORT;
    memset(hdr->header.reserved, 0, sizeof(hdr->header.reserved));
    wg_le32_write(hdr->receiver_index, kp->remote_index);
    wg_le64_write(hdr->counter, counter);

    *out_len = WG_MSG_TRANSPORT_HEADER_LEN + padded + WG_AEAD_TAG_LEN;
    return WG_KEYPAIR_OK;
}

enum wg_keypair_result wg_keypair_open(struct wg_keypair *kp, uint8_t *msg, size_t len,
                                       uint8_t **plaintext, size_t *plaintext_len,
                                       uint64_t *counter_out, uint64_t now_ns)
{
    if (wg_message_type(msg, len) != WG_MSG_TRANSPORT)
        return WG_KEYPAIR_ERR_MALFORMED;
    const struct wg_msg_transport *hdr = (const struct wg_msg_transport *)msg;
    if (wg_le32_read(hdr->receiver_index) != kp->local_index)
        return WG_KEYPAIR_ERR_MALFORMED;
    if (too_old(kp, now_ns))
        return WG_KEYPAIR_ERR_EXPIRED;
    uint64_t counter = wg_le64_read(hdr->counter);
    /* Cheap early drop; the window is only updated after authentication. */
    if (counter >= WG_REJECT_AFTER_MESSAGES)
        return WG_KEYPAIR_ERR_REPLAY;

    uint8_t *body = msg + WG_MSG_TRANSPORT_HEADER_LEN;
    size_t clen = len - WG_MSG_TRANSPORT_HEADER_LEN - WG_AEAD_TAG_LEN;
    if (!aead_open(kp->recv_ctx, counter, body, clen))
        return WG_KEYPAIR_ERR_AUTH;
    if (!wg_replay_update(&kp->replay, counter, WG_REJECT_AFTER_MESSAGES))
        return WG_KEYPAIR_ERR_REPLAY;

    *plaintext = body;
    *plaintext_len = clen;
    if (counter_out)
        *counter_out = counter;
    return WG_KEYPAIR_OK;
}

bool wg_keypair_should_rekey(const struct wg_keypair *kp, uint64_t now_ns)
{
    if (kp->send_counter >= kp->rekey_after_messages)
        return true;
    return kp->is_initiator && now_ns >= kp->created_ns &&
           now_ns - kp->created_ns >= WG_REKEY_AFTER_TIME_NS;
}

bool wg_keypair_expired(const struct wg_keypair *kp, uint64_t now_ns)
{
    return too_old(kp, now_ns) || kp->send_counter >= WG_REJECT_AFTER_MESSAGES;
}

void wg_keypair_clear(struct wg_keypair *kp)
{
    /* Freeing a context cleanses the key copy libcrypto holds inside it. */
    EVP_CIPHER_CTX_free(kp->send_ctx);
    EVP_CIPHER_CTX_free(kp->recv_ctx);
    sodium_memzero(kp, sizeof(*kp));
}
