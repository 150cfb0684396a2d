/* A hash table with a doubly linked LRU list through it. */
#include <stdlib.h>
#include <string.h>

#include "dns_cache.h"

struct dns_centry {
    struct dns_centry *hnext, *prev, *next;
    uint32_t hash;
    uint16_t type, cls;
    uint8_t name[DNS_NAME_MAX]; /* lower case */
    uint64_t stored_ms, expires_ms;
    size_t len;
    uint8_t msg[];
};

static uint32_t key_hash(const uint8_t *name, uint16_t type, uint16_t cls)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0, n = dns_name_len(name); i < n; i++) {
        uint8_t c = name[i];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        h = (h ^ c) * 16777619u;
    }
    h = (h ^ type) * 16777619u;
    return (h ^ cls) * 16777619u;
}

int dns_cache_init(struct dns_cache *c, size_t max_entries)
{
    memset(c, 0, sizeof(*c));
    c->max = max_entries ? max_entries : 1;
    c->nbuckets = c->max + 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    return c->buckets ? 0 : -1;
}

static void lru_unlink(struct dns_cache *c, struct dns_centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct dns_cache *c, struct dns_centry *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head)
        c->lru_head->prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void entry_remove(struct dns_cache *c, struct dns_centry *e)
{
    struct dns_centry **p = &c->buckets[e->hash % c->nbuckets];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(c, e);
    c->count--;
    free(e);
}

void dns_cache_clear(struct dns_cache *c)
{
    while (c->lru_head)
        entry_remove(c, c->lru_head);
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
    uint32_t hash = key_hash(info.q.name, info.q.type, info.q.cls);
    struct dns_centry *old = find(c, info.q.name, info.q.type, info.q.cls, hash);
    if (old)
        entry_remove(c, old);
    while (c->count >= c->max)
        entry_remove(c, c->lru_tail);
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
    lru_push(c, e);
    c->count++;
}

size_t dns_cache_get(struct dns_cache *c, const struct dns_question *q, uint16_t id,
                     uint64_t now_ms, uint8_t *out, size_t cap)
{
    struct dns_msg_info info;

    if (!c->buckets)
        return 0;
    struct dns_centry *e = find(c, q->name, q->type, q->cls, key_hash(q->name, q->type, q->cls));
    if (!e)
        return 0;
    if (now_ms >= e->expires_ms) {
        entry_remove(c, e);
        return 0;
    }
    if (e->len > cap)
        return 0;
    lru_unlink(c, e);
    lru_push(c, e);
    memcpy(out, e->msg, e->len);
    dns_put16(out, id);
    if (dns_msg_parse(out, e->len, &info) == 0)
        dns_msg_age_ttls(out, e->len, &info, (uint32_t)((now_ms - e->stored_ms) / 1000));
    return e->len;
}
