/*
 * Crypto throughput: wg_keypair_seal_mtu + wg_keypair_open round trips on 1420-byte packets (in
 * place, MTU 1420; the transport AEAD is OpenSSL's libcrypto), next to libsodium's raw
 * ChaCha20-Poly1305 IETF encrypt + decrypt of the same size (what the data path used before:
 * libcrypto's AVX2/AVX-512 assembly is about twice as fast on such CPUs), and the handshake rate (initiation + response + both
 * keypairs derived, i.e. the full cost to both ends). Single thread.
 *   usage: bench_crypto [seconds per measurement, default 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "key.h"
#include "keypair.h"
#include "noise.h"

#define PACKET 1420

static double now_sec(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report(const char *what, unsigned long n, double secs, size_t bytes)
{
    double pps = (double)n / secs;
    if (bytes)
        printf("%-44s %10.0f pkt/s %9.1f Mbit/s\n", what, pps, pps * (double)bytes * 8 / 1e6);
    else
        printf("%-44s %10.0f /s\n", what, pps);
}

static void bench_keypair(double duration)
{
    struct wg_keypair a, b;
    static uint8_t buf[2048];
    uint8_t *pt;
    size_t len, pt_len;

    memset(&a, 0, sizeof(a));
    randombytes_buf(a.send_key, 32);
    randombytes_buf(a.recv_key, 32);
    b = a;
    memcpy(b.recv_key, a.send_key, 32);
    memcpy(b.send_key, a.recv_key, 32);
    wg_replay_init(&b.replay);
    a.remote_index = b.local_index = 7;
    a.rekey_after_messages = b.rekey_after_messages = WG_REKEY_AFTER_MESSAGES;
    if (wg_keypair_init_aead(&a) != WG_KEYPAIR_OK || wg_keypair_init_aead(&b) != WG_KEYPAIR_OK) {
        fprintf(stderr, "no cipher context\n");
        exit(1);
    }

    unsigned long n = 0;
    double start = now_sec(), end = start + duration;
    randombytes_buf(buf + WG_MSG_TRANSPORT_HEADER_LEN, PACKET);
    do {
        for (int i = 0; i < 256; i++, n++) {
            if (wg_keypair_seal_mtu(&a, buf + WG_MSG_TRANSPORT_HEADER_LEN, PACKET, PACKET, buf,
                                    sizeof(buf), &len, 0) != WG_KEYPAIR_OK ||
                wg_keypair_open(&b, buf, len, &pt, &pt_len, NULL, 0) != WG_KEYPAIR_OK) {
                fprintf(stderr, "round trip failed\n");
                exit(1);
            }
        }
    } while (now_sec() < end);
    report("wg_keypair_seal+open 1420 B (libcrypto)", n, now_sec() - start, PACKET);
    wg_keypair_clear(&a);
    wg_keypair_clear(&b);
}

static void bench_raw_sodium(double duration)
{
    uint8_t key[32], nonce[12] = {0};
    static uint8_t msg[PACKET], ct[PACKET + 16], out[PACKET];
    unsigned long long clen, mlen;

    randombytes_buf(key, sizeof(key));
    randombytes_buf(msg, sizeof(msg));
    unsigned long n = 0;
    double start = now_sec(), end = start + duration;
    do {
        for (int i = 0; i < 256; i++, n++) {
            memcpy(nonce + 4, &n, sizeof(n) < 8 ? sizeof(n) : 8);
            crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen, msg, PACKET, NULL, 0, NULL, nonce,
                                                      key);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, clen, NULL, 0,
                                                          nonce, key) != 0) {
                fprintf(stderr, "sodium round trip failed\n");
                exit(1);
            }
        }
    } while (now_sec() < end);
    report("libsodium chacha20poly1305_ietf enc+dec 1420 B", n, now_sec() - start, PACKET);
}

static struct wg_handshake *lookup(void *ctx, const uint8_t key[32])
{
    struct wg_handshake *hs = ctx;
    return wg_key_equal(hs->remote_static, key) ? hs : NULL;
}

static void bench_handshake(double duration)
{
    struct wg_static_identity ia, ib;
    struct wg_handshake ha, hb, *found;
    struct wg_msg_initiation init;
    struct wg_msg_response resp;
    struct wg_keypair ka, kb;
    uint8_t pa[32], pb[32], ts[12] = {0};

    wg_key_generate(pa);
    wg_key_generate(pb);
    wg_noise_identity_init(&ia, pa);
    wg_noise_identity_init(&ib, pb);
    wg_noise_handshake_init(&ha, &ia, ib.public_key, NULL);
    wg_noise_handshake_init(&hb, &ib, ia.public_key, NULL);

    unsigned long n = 0;
    uint64_t mono = 0;
    double start = now_sec(), end = start + duration;
    do {
        for (int i = 0; i < 16; i++, n++) {
            /* Strictly increasing timestamp and time, so replay/flood rules pass. */
            for (int k = 0; k < 8; k++)
                ts[11 - k] = (uint8_t)((n + 1) >> (8 * k));
            mono += WG_REKEY_TIMEOUT_NS;
            if (wg_noise_create_initiation(&ha, &ia, 1, ts, NULL, &init) != 0 ||
                wg_noise_consume_initiation(&ib, &init, lookup, &hb, mono, &found, NULL) != 0 ||
                wg_noise_create_response(found, 2, NULL, &resp) != 0 ||
                wg_noise_consume_response(&ha, &ia, &resp) != 0 ||
                wg_noise_derive_keypair(&ha, &ka, mono) != 0 ||
                wg_noise_derive_keypair(found, &kb, mono) != 0) {
                fprintf(stderr, "handshake failed\n");
                exit(1);
            }
            wg_keypair_clear(&ka);
            wg_keypair_clear(&kb);
        }
    } while (now_sec() < end);
    report("handshakes (both ends, incl. derive)", n, now_sec() - start, 0);
}

int main(int argc, char **argv)
{
    double duration = argc > 1 ? atof(argv[1]) : 2.0;
    if (sodium_init() < 0 || duration <= 0)
        return 1;
    bench_keypair(duration);
    bench_raw_sodium(duration);
    bench_handshake(duration);
    return 0;
}
