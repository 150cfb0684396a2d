/*
 * TLS over OpenSSL memory BIOs, so the socket stays libuv's: ciphertext read from the socket is
 * fed in, plaintext comes out through a callback; plaintext to send goes in, ciphertext to write
 * is drained out. Nothing here blocks or touches a socket.
 */
#ifndef TUNLESS_DERP_TLS_H
#define TUNLESS_DERP_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A server context from PEM files. Returns NULL with a message in err. The caller owns one
 * reference (SSL_CTX_free); each derp_tls made from it holds its own. */
SSL_CTX *derp_tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* A client context for mesh links; verify=false skips certificate checks (self-signed test
 * meshes). */
SSL_CTX *derp_tls_client_ctx(bool verify);

struct derp_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
};

/* sni: the host name a client sends (NULL for servers). Returns 0 or -ENOMEM. */
int derp_tls_init(struct derp_tls *t, SSL_CTX *ctx, bool server, const char *sni);
void derp_tls_free(struct derp_tls *t);
/* Feeds ciphertext, runs the handshake, hands out plaintext in chunks of up to cap bytes of
 * scratch. fn returning non-zero stops. Returns 0, fn's value, or BASE_EAUTH on a TLS error. */
int derp_tls_input(struct derp_tls *t, const uint8_t *in, size_t len, uint8_t *scratch, size_t cap,
                   int (*fn)(void *arg, const uint8_t *p, size_t n), void *arg);
/* Encrypts plaintext (only once the handshake is done; before it, returns 0 and takes nothing).
 * Returns 1 when taken, BASE_EAUTH on error. */
int derp_tls_write(struct derp_tls *t, const uint8_t *p, size_t len);
bool derp_tls_ready(const struct derp_tls *t);
/* Ciphertext waiting to go out. */
size_t derp_tls_out_pending(const struct derp_tls *t);
size_t derp_tls_out_read(struct derp_tls *t, uint8_t *out, size_t cap);

#endif
