/*
 * Whole-config checks the parsers cannot make line by line (cfg_validate): this node's
 * addresses, the peers' keys, their allowed IPs against each other and against our addresses,
 * names, and DNS routes. Messages name the place as the file's own format does: a wg-quick
 * line and key, or a netmap JSON path.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

struct where {
    char buf[320];
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return BASE_ECONFIG;
}

static bool ini(const struct cfg_config *c)
{
    return c->source == CFG_SOURCE_INI;
}

static const char *file_name(const struct cfg_config *c)
{
    return c->file ? c->file : "config";
}

static int oom(const struct cfg_config *c, char *err, size_t errlen)
{
    fail(err, errlen, "%s: out of memory", file_name(c));
    return -ENOMEM;
}

/* "wg0.conf:12: [Peer] PublicKey" or "netmap.json: peers[2].public_key" */
static const char *peer_field(struct where *w, const struct cfg_config *c, size_t i,
                              const char *ini_key, const char *json_key)
{
    if (ini(c))
        snprintf(w->buf, sizeof(w->buf), "%s:%u: [Peer] %s", file_name(c), c->peers[i].line,
                 ini_key);
    else
        snprintf(w->buf, sizeof(w->buf), "%s: peers[%zu].%s", file_name(c), i, json_key);
    return w->buf;
}

/* "the [Peer] at line 5" or "peers[0]" */
static const char *peer_ref(struct where *w, const struct cfg_config *c, size_t i)
{
    if (ini(c))
        snprintf(w->buf, sizeof(w->buf), "the [Peer] at line %u", c->peers[i].line);
    else
        snprintf(w->buf, sizeof(w->buf), "peers[%zu]", i);
    return w->buf;
}

static const char *self_field(struct where *w, const struct cfg_config *c, const char *ini_key,
                              const char *json_key)
{
    if (ini(c))
        snprintf(w->buf, sizeof(w->buf), "%s: [Interface] %s", file_name(c), ini_key);
    else
        snprintf(w->buf, sizeof(w->buf), "%s: self.%s", file_name(c), json_key);
    return w->buf;
}

static int check_addresses(const struct cfg_config *c, char *err, size_t errlen)
{
    struct where w;
    char text[BASE_PREFIX_STRLEN];
    if (c->n_addresses == 0)
        return fail(err, errlen, "%s: missing (the node needs its mesh address)",
                    self_field(&w, c, "Address", "addresses"));
    bool v6 = false;
    for (size_t i = 0; i < c->n_addresses; i++) {
        const struct base_prefix *a = &c->addresses[i];
        v6 |= a->addr.family == AF_INET6;
        for (size_t j = 0; j < i; j++) {
            const struct base_prefix *b = &c->addresses[j];
            if (base_addr_equal(&a->addr, &b->addr))
                return fail(err, errlen, "%s: %s given twice",
                            self_field(&w, c, "Address", "addresses"),
                            base_prefix_format(a, text, sizeof(text)));
        }
    }
    if (v6 && c->mtu < 1280)
        return fail(err, errlen, "%s: %u is below IPv6's minimum of 1280",
                    self_field(&w, c, "MTU", "mtu"), c->mtu);
    return 0;
}

/* Sorting (key, peer) and (prefix, peer) pairs finds duplicates in O(n log n). */
struct key_ref {
    const uint8_t *key;
    size_t peer;
};

struct prefix_ref {
    const struct base_prefix *p;
    size_t peer;
};

static int cmp_index(size_t a, size_t b)
{
    return (a > b) - (a < b);
}

static int cmp_key(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int r = memcmp(x->key, y->key, CFG_KEY_LEN); /* public keys: no secret to protect */
    return r ? r : cmp_index(x->peer, y->peer);
}

static int cmp_prefix(const void *a, const void *b)
{
    const struct prefix_ref *x = a, *y = b;
    if (x->p->addr.family != y->p->addr.family)
        return x->p->addr.family - y->p->addr.family;
    if (x->p->bits != y->p->bits)
        return x->p->bits - y->p->bits;
    int r = memcmp(x->p->addr.ip, y->p->addr.ip, sizeof(x->p->addr.ip));
    return r ? r : cmp_index(x->peer, y->peer);
}

static int check_peer_keys(const struct cfg_config *c, char *err, size_t errlen)
{
    struct where w1, w2;
    uint8_t self_pub[CFG_KEY_LEN];
    bool have_self = c->has_private_key && crypto_scalarmult_base(self_pub, c->private_key) == 0;
    for (size_t i = 0; have_self && i < c->n_peers; i++) {
        if (sodium_memcmp(c->peers[i].public_key, self_pub, CFG_KEY_LEN) == 0)
            return fail(err, errlen, "%s: this node's own public key (a node is not its own peer)",
                        peer_field(&w1, c, i, "PublicKey", "public_key"));
    }
    if (c->n_peers < 2)
        return 0;
    struct key_ref *refs = malloc(c->n_peers * sizeof(*refs));
    if (!refs)
        return oom(c, err, errlen);
    for (size_t i = 0; i < c->n_peers; i++)
        refs[i] = (struct key_ref){c->peers[i].public_key, i};
    qsort(refs, c->n_peers, sizeof(*refs), cmp_key);
    /* report the earliest peer that repeats a key, so the message does not depend on sorting */
    size_t later = SIZE_MAX, earlier = 0;
    for (size_t k = 1; k < c->n_peers; k++) {
        if (memcmp(refs[k].key, refs[k - 1].key, CFG_KEY_LEN) == 0 && refs[k].peer < later) {
            later = refs[k].peer;
            earlier = refs[k - 1].peer;
        }
    }
    free(refs);
    if (later != SIZE_MAX)
        return fail(err, errlen, "%s: same key as %s",
                    peer_field(&w1, c, later, "PublicKey", "public_key"),
                    peer_ref(&w2, c, earlier));
    return 0;
}

static int check_allowed_ips(const struct cfg_config *c, char *err, size_t errlen)
{
    struct where w1, w2;
    char text[BASE_PREFIX_STRLEN];
    size_t n = 0;
    for (size_t i = 0; i < c->n_peers; i++)
        n += c->peers[i].n_allowed_ips;
    if (n == 0)
        return 0;
    struct prefix_ref *refs = malloc(n * sizeof(*refs));
    if (!refs)
        return oom(c, err, errlen);
    n = 0;
    for (size_t i = 0; i < c->n_peers; i++) {
        for (size_t k = 0; k < c->peers[i].n_allowed_ips; k++)
            refs[n++] = (struct prefix_ref){&c->peers[i].allowed_ips[k], i};
    }
    qsort(refs, n, sizeof(*refs), cmp_prefix);
    size_t later = SIZE_MAX, earlier = 0;
    const struct base_prefix *dup = NULL;
    for (size_t k = 1; k < n; k++) {
        const struct prefix_ref *a = &refs[k - 1], *b = &refs[k];
        if (a->peer != b->peer && a->p->bits == b->p->bits &&
            base_addr_equal(&a->p->addr, &b->p->addr) && b->peer < later) {
            later = b->peer;
            earlier = a->peer;
            dup = b->p;
        }
    }
    free(refs);
    if (dup)
        return fail(err, errlen, "%s: %s is also given to %s",
                    peer_field(&w1, c, later, "AllowedIPs", "allowed_ips"),
                    base_prefix_format(dup, text, sizeof(text)), peer_ref(&w2, c, earlier));

    for (size_t i = 0; i < c->n_peers; i++) {
        for (size_t k = 0; k < c->peers[i].n_allowed_ips; k++) {
            const struct base_prefix *p = &c->peers[i].allowed_ips[k];
            if (p->bits != base_addr_len(&p->addr) * 8)
                continue;
            for (size_t a = 0; a < c->n_addresses; a++) {
                if (base_addr_equal(&c->addresses[a].addr, &p->addr))
                    return fail(err, errlen, "%s: %s is this node's own address",
                                peer_field(&w1, c, i, "AllowedIPs", "allowed_ips"),
                                base_prefix_format(p, text, sizeof(text)));
            }
        }
    }
    return 0;
}

static int check_names(const struct cfg_config *c, char *err, size_t errlen)
{
    struct where w1, w2;
    for (size_t i = 0; i < c->n_peers; i++) {
        const char *name = c->peers[i].name;
        if (!name)
            continue;
        if (c->name && strcmp(name, c->name) == 0)
            return fail(err, errlen, "%s: '%s' is this node's own name",
                        peer_field(&w1, c, i, "Name", "name"), name);
        /* names are few and short; quadratic is fine up to thousands of peers */
        for (size_t j = 0; j < i; j++) {
            if (c->peers[j].name && strcmp(name, c->peers[j].name) == 0)
                return fail(err, errlen, "%s: '%s' is also the name of %s",
                            peer_field(&w1, c, i, "Name", "name"), name, peer_ref(&w2, c, j));
        }
    }
    return 0;
}

static int check_routes(const struct cfg_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->routes[i].suffix, c->routes[j].suffix) == 0)
                return fail(err, errlen, "%s: dns.routes: '%s' given twice", file_name(c),
                            c->routes[i].suffix);
        }
    }
    return 0;
}

int cfg_validate(const struct cfg_config *c, char *err, size_t errlen)
{
    int r = check_addresses(c, err, errlen);
    if (r == 0)
        r = check_peer_keys(c, err, errlen);
    if (r == 0)
        r = check_allowed_ips(c, err, errlen);
    if (r == 0)
        r = check_names(c, err, errlen);
    if (r == 0)
        r = check_routes(c, err, errlen);
    return r;
}
