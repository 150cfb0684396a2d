/* One session's keys: sealing transport messages (counter, padding to the MTU), opening them
 * (replay window), and the age and message limits that expire a keypair. */
#include "keypair.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#define PADDED(len) (((len) + WG_MSG_PADDING_MULTIPLE - 1) & ~(size_t)(WG_MSG_PADDING_MULTIPLE - 1))

static void make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t counter)
{
    memset(nonce, 0, 4);
    wg_le64_write(nonce + 4, counter);
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
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

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

    uint64_t counter = kp->send_counter++;
    struct wg_msg_transport *hdr = (struct wg_msg_transport *)out;
    hdr->header.type = WG_MSG_TRANSPORT;
    memset(hdr->header.reserved, 0, sizeof(hdr->header.reserved));
    wg_le32_write(hdr->receiver_index, kp->remote_index);
    wg_le64_write(hdr->counter, counter);

    make_nonce(nonce, counter);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(body, body + padded, NULL, body, padded,
                                                       NULL, 0, NULL, nonce, kp->send_key);
    *out_len = WG_MSG_TRANSPORT_HEADER_LEN + padded + WG_AEAD_TAG_LEN;
    return WG_KEYPAIR_OK;
}

enum wg_keypair_result wg_keypair_open(struct wg_keypair *kp, uint8_t *msg, size_t len,
                                       uint8_t **plaintext, size_t *plaintext_len,
                                       uint64_t *counter_out, uint64_t now_ns)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

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
    make_nonce(nonce, counter);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(body, NULL, body, clen, body + clen,
                                                           NULL, 0, nonce, kp->recv_key) != 0)
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
    sodium_memzero(kp, sizeof(*kp));
}
