/* Handshake flood defences: the per-source token buckets (hashed, garbage-collected once a
 * second), then the under-load detector. */
#include "ratelimit.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_SEC 1000000000ULL
#define TOKEN_COST (NS_PER_SEC / WG_RATELIMIT_PER_SECOND)
#define TOKEN_MAX (TOKEN_COST * WG_RATELIMIT_BURST)
#define RL_BUCKETS 1024

struct wg_ratelimit_entry {
    struct base_list link; /* in its hash bucket */
    uint8_t key[17];       /* family byte + address (IPv6: the /64 only) */
    uint64_t last_ns;
    uint64_t tokens;
};

int wg_ratelimit_init(struct wg_ratelimit *rl)
{
    memset(rl, 0, sizeof(*rl));
    rl->buckets = malloc(RL_BUCKETS * sizeof(*rl->buckets));
    if (!rl->buckets)
        return -ENOMEM;
    rl->nbuckets = RL_BUCKETS;
    for (size_t i = 0; i < rl->nbuckets; i++)
        base_list_init(&rl->buckets[i]);
    randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
    return 0;
}

void wg_ratelimit_free(struct wg_ratelimit *rl)
{
    struct base_list *l, *tmp;
    for (size_t i = 0; i < rl->nbuckets; i++)
        base_list_foreach_safe (l, tmp, &rl->buckets[i])
            free(container_of(l, struct wg_ratelimit_entry, link));
    free(rl->buckets);
    memset(rl, 0, sizeof(*rl));
}

static bool source_key(uint8_t key[17], const struct sockaddr *src)
{
    memset(key, 0, 17);
    if (src->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)src)->sin_addr, 4);
        return true;
    }
    if (src->sa_family == AF_INET6) {
        key[0] = 6;
        /* One host usually owns a whole /64. */
        memcpy(key + 1, &((const struct sockaddr_in6 *)src)->sin6_addr, 8);
        return true;
    }
    return false;
}

/* Entries idle for a second have a full bucket again: forgetting them changes nothing. */
static void gc(struct wg_ratelimit *rl, uint64_t now)
{
    if (now - rl->last_gc_ns < NS_PER_SEC)
        return;
    rl->last_gc_ns = now;
    struct base_list *l, *tmp;
    for (size_t i = 0; i < rl->nbuckets; i++) {
        base_list_foreach_safe (l, tmp, &rl->buckets[i]) {
            struct wg_ratelimit_entry *e = container_of(l, struct wg_ratelimit_entry, link);
            if (now - e->last_ns >= NS_PER_SEC) {
                base_list_remove(l);
                free(e);
                rl->count--;
            }
        }
    }
}

bool wg_ratelimit_allow(struct wg_ratelimit *rl, const struct sockaddr *src, uint64_t now)
{
    uint8_t key[17];
    uint8_t h[crypto_shorthash_BYTES];

    if (!source_key(key, src))
        return false;
    gc(rl, now);
    crypto_shorthash(h, key, sizeof(key), rl->hash_key);
    struct base_list *bucket = &rl->buckets[(h[0] | h[1] << 8 | h[2] << 16) & (rl->nbuckets - 1)];
    struct base_list *l;
    base_list_foreach (l, bucket) {
        struct wg_ratelimit_entry *e = container_of(l, struct wg_ratelimit_entry, link);
        if (memcmp(e->key, key, sizeof(key)) != 0)
            continue;
        uint64_t tokens = e->tokens + (now - e->last_ns);
        e->last_ns = now;
        if (tokens > TOKEN_MAX)
            tokens = TOKEN_MAX;
        if (tokens < TOKEN_COST) {
            e->tokens = tokens;
            return false;
        }
        e->tokens = tokens - TOKEN_COST;
        return true;
    }
    if (rl->count >= WG_RATELIMIT_MAX_ENTRIES)
        return false;
    struct wg_ratelimit_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return false;
    memcpy(e->key, key, sizeof(key));
    e->last_ns = now;
    e->tokens = TOKEN_MAX - TOKEN_COST;
    base_list_push_front(bucket, &e->link);
    rl->count++;
    return true;
}

void wg_load_init(struct wg_load *l, uint32_t threshold)
{
    memset(l, 0, sizeof(*l));
    l->threshold = threshold;
}

bool wg_load_note(struct wg_load *l, uint64_t now)
{
    if (now - l->window_start_ns >= NS_PER_SEC) {
        l->window_start_ns = now;
        l->count = 0;
    }
    if (++l->count > l->threshold)
        l->under_load_until_ns = now + NS_PER_SEC;
    return now < l->under_load_until_ns;
}
