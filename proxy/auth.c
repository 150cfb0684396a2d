/* Proxy credentials as domain-separated hashes, compared in constant time (see auth.h). */
#include <sodium.h>
#include <string.h>

#include "auth.h"

static void hash(uint8_t out[PROXY_AUTH_HASH_LEN], const uint8_t *in, size_t len)
{
    /* Domain-separated so the user and password hashes never coincide by construction. */
    crypto_generichash(out, PROXY_AUTH_HASH_LEN, in, len, (const uint8_t *)"tunless-proxy-auth",
                       18);
}

void proxy_auth_init(struct proxy_auth *a, const char *user, const char *pass)
{
    memset(a, 0, sizeof(*a));
    if (!user || !pass)
        return;
    a->enabled = true;
    hash(a->user, (const uint8_t *)user, strlen(user));
    hash(a->pass, (const uint8_t *)pass, strlen(pass));
}

int proxy_auth_check(const struct proxy_auth *a, const uint8_t *user, size_t ulen,
                     const uint8_t *pass, size_t plen)
{
    if (!a->enabled)
        return 1;
    uint8_t hu[PROXY_AUTH_HASH_LEN], hp[PROXY_AUTH_HASH_LEN];
    hash(hu, user, ulen);
    hash(hp, pass, plen);
    int bad = sodium_memcmp(hu, a->user, sizeof(hu)) | sodium_memcmp(hp, a->pass, sizeof(hp));
    sodium_memzero(hp, sizeof(hp));
    return bad == 0;
}

void proxy_auth_wipe(struct proxy_auth *a)
{
    sodium_memzero(a, sizeof(*a));
}
