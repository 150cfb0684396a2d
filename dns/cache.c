/* The cache of forwarded answers: a hash table keyed by (name, type, class) with an LRU list
 * through it. put stores a reply for as long as its TTLs allow, evicting the least recently
 * used entry when full; get hands back a copy with the TTLs aged and the caller's ID. */
#include <stdlib.h>
#include <string.h>

#include "dns_cache.h"

struct dns_centry {
    struct dns_centry *hnext;
    struct base_list lru; /* in dns_cache.lru, most recently used first */
    uint32_t hash;
    uint16_t type, cls;
    uint8_t name[DNS_NAME_MAX]; /* lower case */
    uint64_t stored_ms, expires_ms;
    size_t len;
    uint8_t msg[];
};

int dns_cache_init(struct dns_cache *c, size_t max_entries)
{
    memset(c, 0, sizeof(*c));
    c->max = max_entries ? max_entries : 1;
    c->nbuckets = c->max + 1;
    base_list_init(&c->lru);
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    return c->buckets ? 0 : -1;
}

static void entry_remove(struct dns_cache *c, struct dns_centry *e)
{
    struct dns_centry **p = &c->buckets[e->hash % c->nbuckets];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    base_list_remove(&e->lru);
    c->count--;
    free(e);
}

void dns_cache_clear(struct dns_cache *c)
{
    struct base_list *pos;
    while ((pos = base_list_first(&c->lru)))
        entry_remove(c, container_of(pos, struct dns_centry, lru));
}

void dns_cache_free(struct dns_cache *c)
{
    if (!c->buckets)
        return;
    dns_cache_clear(c);
    free(c->buckets);
    c->buckets = NULL;
}

static struct dns_centry *find(struct dns_cache *c, const uint8_t *name, uint16_t type,
                               uint16_t cls, uint32_t hash)
{
    for (struct dns_centry *e = c->buckets[hash % c->nbuckets]; e; e = e->hnext)
        if (e->hash == hash && e->type == type && e->cls == cls && dns_name_equal(e->name, name))
            return e;
    return NULL;
}

void dns_cache_put(struct dns_cache *c, const uint8_t *msg, size_t len, uint64_t now_ms)
{
    struct dns_msg_info info;

    if (!c->buckets || dns_msg_parse(msg, len, &info) < 0 || info.hdr.qdcount != 1)
        return;
    long ttl = dns_msg_cache_ttl(msg, len, &info);
    if (ttl <= 0)
        return;
    if (ttl > DNS_CACHE_MAX_TTL)
        ttl = DNS_CACHE_MAX_TTL;
    uint32_t hash = dns_name_hash(info.q.name, info.q.type, info.q.cls);
    struct dns_centry *old = find(c, info.q.name, info.q.type, info.q.cls, hash);
    if (old)
        entry_remove(c, old);
    while (c->count >= c->max)
        entry_remove(c, container_of(c->lru.prev, struct dns_centry, lru));
    struct dns_centry *e = malloc(sizeof(*e) + len);
    if (!e)
        return;
    memset(e, 0, sizeof(*e));
    e->hash = hash;
    e->type = info.q.type;
    e->cls = info.q.cls;
    memcpy(e->name, info.q.name, dns_name_len(info.q.name));
    dns_name_lower(e->name);
    e->stored_ms = now_ms;
    e->expires_ms = now_ms + (uint64_t)ttl * 1000;
    e->len = len;
    memcpy(e->msg, msg, len);
    e->hnext = c->buckets[hash % c->nbuckets];
    c->buckets[hash % c->nbuckets] = e;
    base_list_push_front(&c->lru, &e->lru);
    c->count++;
}

size_t dns_cache_get(struct dns_cache *c, const struct dns_question *q, uint16_t id,
                     uint64_t now_ms, uint8_t *out, size_t cap)
{
    struct dns_msg_info info;

    if (!c->buckets)
        return 0;
    struct dns_centry *e =
        find(c, q->name, q->type, q->cls, dns_name_hash(q->name, q->type, q->cls));
    if (!e)
        return 0;
    if (now_ms >= e->expires_ms) {
        entry_remove(c, e);
        return 0;
    }
    if (e->len > cap)
        return 0;
    base_list_remove(&e->lru);
    base_list_push_front(&c->lru, &e->lru);
    memcpy(out, e->msg, e->len);
    dns_put16(out, id);
    if (dns_msg_parse(out, e->len, &info) == 0)
        dns_msg_age_ttls(out, e->len, &info, (uint32_t)((now_ms - e->stored_ms) / 1000));
    return e->len;
}
