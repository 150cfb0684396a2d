/* Cache of forwarded answers, keyed by (name, type, class), bounded, least recently used out.
 * Time is passed in (milliseconds) so tests control it. */
#ifndef TUNLESS_DNS_CACHE_H
#define TUNLESS_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "dns_wire.h"

#define DNS_CACHE_MAX_TTL 86400

struct dns_centry;
struct dns_cache {
    struct dns_centry **buckets;
    size_t nbuckets, count, max;
    struct base_list lru; /* dns_centry, most recently used first */
};

int dns_cache_init(struct dns_cache *c, size_t max_entries);
void dns_cache_free(struct dns_cache *c);
void dns_cache_clear(struct dns_cache *c);
/* Stores a reply when its TTL allows (see dns_msg_cache_ttl). */
void dns_cache_put(struct dns_cache *c, const uint8_t *msg, size_t len, uint64_t now_ms);
/* Copies a fresh reply for q into out with TTLs aged and the given ID; returns its length or 0. */
size_t dns_cache_get(struct dns_cache *c, const struct dns_question *q, uint16_t id,
                     uint64_t now_ms, uint8_t *out, size_t cap);

#endif
