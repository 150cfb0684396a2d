/* Proxy credentials, kept only as hashes so comparing them against input is constant time
 * whatever the lengths. Internal to proxy/. */
#ifndef TUNLESS_PROXY_AUTH_H
#define TUNLESS_PROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_AUTH_HASH_LEN 32

struct proxy_auth {
    bool enabled;
    uint8_t user[PROXY_AUTH_HASH_LEN];
    uint8_t pass[PROXY_AUTH_HASH_LEN];
};

/* Disabled unless both user and pass are non-NULL. */
void proxy_auth_init(struct proxy_auth *a, const char *user, const char *pass);
/* 1 when both match (always 1 when auth is disabled). */
int proxy_auth_check(const struct proxy_auth *a, const uint8_t *user, size_t ulen,
                     const uint8_t *pass, size_t plen);
void proxy_auth_wipe(struct proxy_auth *a);

#endif
