/*
 * TLS on memory BIOs: contexts (server from PEM files, client for mesh links), then one
 * connection's input (ciphertext in, handshake, plaintext out), output (plaintext in, ciphertext
 * drained by the link).
 */
#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>

#include "base.h"
#include "tls.h"

static void tls_error_text(char *err, size_t errlen, const char *what, const char *file)
{
    char e[256];
    ERR_error_string_n(ERR_get_error(), e, sizeof(e));
    snprintf(err, errlen, "%s %s: %s", what, file, e);
    ERR_clear_error();
}

SSL_CTX *derp_tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_error_text(err, errlen, "cannot load certificate", cert_file);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error_text(err, errlen, "cannot load key", key_file);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error_text(err, errlen, "key does not match certificate", key_file);
    } else {
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *derp_tls_client_ctx(bool verify)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (verify) {
        SSL_CTX_set_default_verify_paths(ctx);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

int derp_tls_init(struct derp_tls *t, SSL_CTX *ctx, bool server, const char *sni)
{
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->ssl = NULL;
        return -ENOMEM;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (sni)
            SSL_set_tlsext_host_name(t->ssl, sni);
        SSL_do_handshake(t->ssl); /* queues the ClientHello */
    }
    return 0;
}

void derp_tls_free(struct derp_tls *t)
{
    SSL_free(t->ssl);
    t->ssl = NULL;
}

bool derp_tls_ready(const struct derp_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

int derp_tls_input(struct derp_tls *t, const uint8_t *in, size_t len, uint8_t *scratch, size_t cap,
                   int (*fn)(void *arg, const uint8_t *p, size_t n), void *arg)
{
    if (len && BIO_write(t->rbio, in, (int)len) != (int)len)
        return -ENOMEM;
    if (!SSL_is_init_finished(t->ssl)) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            ERR_clear_error();
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : BASE_EAUTH;
        }
    }
    for (;;) {
        int n = SSL_read(t->ssl, scratch, (int)cap);
        if (n <= 0) {
            int e = SSL_get_error(t->ssl, n);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return e == SSL_ERROR_ZERO_RETURN ? -ECONNRESET : BASE_EAUTH;
        }
        int rc = fn(arg, scratch, (size_t)n);
        if (rc != 0)
            return rc;
    }
}

int derp_tls_write(struct derp_tls *t, const uint8_t *p, size_t len)
{
    if (!SSL_is_init_finished(t->ssl))
        return 0;
    size_t done = 0;
    while (done < len) {
        int n = SSL_write(t->ssl, p + done, (int)(len - done));
        if (n <= 0) {
            ERR_clear_error();
            return BASE_EAUTH;
        }
        done += (size_t)n;
    }
    return 1;
}

size_t derp_tls_out_pending(const struct derp_tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t derp_tls_out_read(struct derp_tls *t, uint8_t *out, size_t cap)
{
    int n = BIO_read(t->wbio, out, (int)cap);
    return n > 0 ? (size_t)n : 0;
}
