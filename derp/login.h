/*
 * The DERP login: the ClientInfo and ServerInfo boxes (NaCl crypto_box: Curve25519,
 * XSalsa20-Poly1305, a random 24-byte nonce in front) around their JSON. Server and client
 * sides both live here so the client reuses them. Pure apart from the random nonce.
 */
#ifndef TUNLESS_DERP_LOGIN_H
#define TUNLESS_DERP_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define DERP_MESH_KEY_MAX 256

struct derp_client_info {
    int version;
    char mesh_key[DERP_MESH_KEY_MAX + 1]; /* "" when absent */
    bool can_ack_pings;
    bool is_prober;
};

struct derp_server_info {
    int version;
    uint32_t rate_bytes_per_sec; /* tokenBucketBytesPerSecond, 0 = no limit */
    uint32_t rate_burst;         /* tokenBucketBytesBurst */
};

/* Server: opens a ClientInfo payload (key, nonce, box) with the server's private key. Fills
 * client_key and info. Returns 0, BASE_EAUTH (the box does not open), BASE_EPARSE (shape or
 * JSON), -EPROTO (a version other than 2). */
int derp_client_info_open(const uint8_t *payload, size_t len,
                          const uint8_t server_priv[DERP_KEY_LEN], uint8_t client_key[DERP_KEY_LEN],
                          struct derp_client_info *info);
/* Client: writes a whole ClientInfo frame into out. Returns its length, or BASE_ELIMIT when it
 * does not fit cap. */
int derp_client_info_seal(const struct derp_client_info *info,
                          const uint8_t client_priv[DERP_KEY_LEN],
                          const uint8_t server_pub[DERP_KEY_LEN], uint8_t *out, size_t cap);
/* Server: writes a whole ServerInfo frame into out. Returns its length or BASE_ELIMIT. */
int derp_server_info_seal(const struct derp_server_info *info,
                          const uint8_t server_priv[DERP_KEY_LEN],
                          const uint8_t client_pub[DERP_KEY_LEN], uint8_t *out, size_t cap);
/* Client: opens a ServerInfo payload. Returns 0, BASE_EAUTH or BASE_EPARSE. */
int derp_server_info_open(const uint8_t *payload, size_t len,
                          const uint8_t client_priv[DERP_KEY_LEN],
                          const uint8_t server_pub[DERP_KEY_LEN], struct derp_server_info *info);

#endif
