/*
 * What a reload changes (cfg_diff): peers are matched by public key (both configs' peers sorted
 * by key, then merged), each matched pair is compared field by field, and the results are sorted
 * into the four lists in the order of the configs. Then this node's addresses and the DNS
 * settings are compared. No I/O: the node applies the diff to the engine and reports it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"

/* A peer and its place in its config. */
struct ref {
    const struct cfg_peer *p;
    size_t i;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int r = memcmp(x->p->public_key, y->p->public_key, CFG_KEY_LEN); /* public: no secret */
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

static struct ref *sorted_refs(const struct cfg_config *c)
{
    size_t n = c ? c->n_peers : 0;
    struct ref *refs = malloc((n ? n : 1) * sizeof(*refs));
    if (!refs)
        return NULL;
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct ref){&c->peers[i], i};
    qsort(refs, n, sizeof(*refs), cmp_ref);
    return refs;
}

static bool same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_prefixes(const struct base_prefix *a, size_t na, const struct base_prefix *b,
                          size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].bits != b[i].bits || !base_addr_equal(&a[i].addr, &b[i].addr))
            return false;
    return true;
}

static bool same_endpoints(const struct cfg_peer *a, const struct cfg_peer *b)
{
    if (a->n_endpoints != b->n_endpoints)
        return false;
    for (size_t i = 0; i < a->n_endpoints; i++)
        if (a->endpoints[i].port != b->endpoints[i].port ||
            strcmp(a->endpoints[i].host, b->endpoints[i].host) != 0)
            return false;
    return true;
}

static unsigned peer_changes(const struct cfg_peer *a, const struct cfg_peer *b)
{
    unsigned what = 0;
    if (a->has_preshared_key != b->has_preshared_key ||
        (a->has_preshared_key &&
         sodium_memcmp(a->preshared_key, b->preshared_key, CFG_KEY_LEN) != 0))
        what |= CFG_PEER_PRESHARED_KEY;
    if (!same_endpoints(a, b))
        what |= CFG_PEER_ENDPOINTS;
    if (!same_prefixes(a->allowed_ips, a->n_allowed_ips, b->allowed_ips, b->n_allowed_ips))
        what |= CFG_PEER_ALLOWED_IPS;
    if (a->persistent_keepalive != b->persistent_keepalive)
        what |= CFG_PEER_KEEPALIVE;
    if (!same_string(a->name, b->name))
        what |= CFG_PEER_NAME;
    return what;
}

/* match[i]: the old peer with new peer i's key, or NULL; old_seen[j]: old peer j has one. */
static void match_peers(const struct ref *o, size_t no, const struct ref *n, size_t nn,
                        const struct cfg_peer **match, bool *old_seen)
{
    size_t i = 0, j = 0;
    while (i < no && j < nn) {
        int r = memcmp(o[i].p->public_key, n[j].p->public_key, CFG_KEY_LEN);
        if (r == 0) {
            match[n[j].i] = o[i].p;
            old_seen[o[i].i] = true;
        }
        i += r <= 0;
        j += r >= 0;
    }
}

static void append(struct cfg_peer_change *list, size_t *n, const struct cfg_peer *old,
                   const struct cfg_peer *new, unsigned what)
{
    list[(*n)++] = (struct cfg_peer_change){old, new, what};
}

/* Sorts the matched peers into the four lists (each allocated for the worst case). */
static int fill_lists(const struct cfg_config *old, const struct cfg_config *new,
                      const struct cfg_peer **match, const bool *old_seen, struct cfg_diff *d)
{
    size_t nn = new->n_peers, no = old ? old->n_peers : 0;
    d->added = calloc(nn + 1, sizeof(*d->added));
    d->changed = calloc(nn + 1, sizeof(*d->changed));
    d->unchanged = calloc(nn + 1, sizeof(*d->unchanged));
    d->removed = calloc(no + 1, sizeof(*d->removed));
    if (!d->added || !d->changed || !d->unchanged || !d->removed)
        return -ENOMEM;
    for (size_t i = 0; i < nn; i++) {
        const struct cfg_peer *p = &new->peers[i], *before = match[i];
        unsigned what = before ? peer_changes(before, p) : 0;
        if (!before)
            append(d->added, &d->n_added, NULL, p, 0);
        else if (what)
            append(d->changed, &d->n_changed, before, p, what);
        else
            append(d->unchanged, &d->n_unchanged, before, p, 0);
    }
    for (size_t j = 0; j < no; j++)
        if (!old_seen[j])
            append(d->removed, &d->n_removed, &old->peers[j], NULL, 0);
    return 0;
}

static bool same_strings(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static bool same_resolvers(const struct base_endpoint *a, size_t na, const struct base_endpoint *b,
                           size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!base_endpoint_equal(&a[i], &b[i]))
            return false;
    return true;
}

static bool same_dns(const struct cfg_config *a, const struct cfg_config *b)
{
    if (!same_string(a->name, b->name) || !same_string(a->dns_suffix, b->dns_suffix) ||
        !same_resolvers(a->resolvers, a->n_resolvers, b->resolvers, b->n_resolvers) ||
        !same_strings(a->search, a->n_search, b->search, b->n_search) ||
        a->n_routes != b->n_routes || a->n_records != b->n_records)
        return false;
    for (size_t i = 0; i < a->n_routes; i++) {
        const struct cfg_dns_route *x = &a->routes[i], *y = &b->routes[i];
        if (strcmp(x->suffix, y->suffix) != 0 ||
            !same_resolvers(x->resolvers, x->n_resolvers, y->resolvers, y->n_resolvers))
            return false;
    }
    for (size_t i = 0; i < a->n_records; i++) {
        const struct cfg_dns_record *x = &a->records[i], *y = &b->records[i];
        if (strcmp(x->name, y->name) != 0 || !base_addr_equal(&x->addr, &y->addr))
            return false;
    }
    return true;
}

int cfg_diff(const struct cfg_config *old, const struct cfg_config *new, struct cfg_diff *out)
{
    memset(out, 0, sizeof(*out));
    size_t no = old ? old->n_peers : 0, nn = new->n_peers;
    struct ref *o = sorted_refs(old), *n = sorted_refs(new);
    const struct cfg_peer **match = calloc(nn + 1, sizeof(*match));
    bool *old_seen = calloc(no + 1, sizeof(*old_seen));
    int r = -ENOMEM;
    if (o && n && match && old_seen) {
        match_peers(o, no, n, nn, match, old_seen);
        r = fill_lists(old, new, match, old_seen, out);
    }
    free(o);
    free(n);
    free(match);
    free(old_seen);
    if (r < 0) {
        cfg_diff_free(out);
        return r;
    }
    out->addresses_changed =
        !old || old->mtu != new->mtu ||
        !same_prefixes(old->addresses, old->n_addresses, new->addresses, new->n_addresses);
    out->dns_changed = !old || !same_dns(old, new);
    return 0;
}

const char *cfg_peer_changes_format(unsigned what, char *buf, size_t cap)
{
    static const char *const names[] = {"preshared_key", "endpoints", "allowed_ips", "keepalive",
                                        "name"};
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(what & (1u << i)) || len >= cap)
            continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", names[i]);
        len = n < 0 ? len : len + (size_t)n;
    }
    return buf;
}

void cfg_diff_free(struct cfg_diff *d)
{
    free(d->added);
    free(d->removed);
    free(d->changed);
    free(d->unchanged);
    memset(d, 0, sizeof(*d));
}
