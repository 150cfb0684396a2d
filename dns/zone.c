/*
 * The local zone: dns_zone_build() compiles a dns_config's hosts (A/AAAA and their PTRs) and
 * extra records into a hash table of names that dns_zone_find() looks up; dns_zone_is_local
 * says which names the zone is authoritative for. A rejected config's reason goes to the
 * resolver's logger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

const struct dns_zname *dns_zone_find(const struct dns_zone *z, const uint8_t *name)
{
    if (!z->nbuckets)
        return NULL;
    for (struct dns_zname *n = z->buckets[dns_name_hash(name, 0, 0) % z->nbuckets]; n; n = n->next)
        if (dns_name_equal(n->name, name))
            return n;
    return NULL;
}

static struct dns_zname *zone_get(struct dns_zone *z, const uint8_t *name)
{
    struct dns_zname *n = (struct dns_zname *)dns_zone_find(z, name);
    if (n)
        return n;
    n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    memcpy(n->name, name, dns_name_len(name));
    dns_name_lower(n->name);
    struct dns_zname **b = &z->buckets[dns_name_hash(name, 0, 0) % z->nbuckets];
    n->next = *b;
    *b = n;
    return n;
}

static int zone_add(struct dns_zone *z, const uint8_t *name, uint16_t type, uint32_t ttl,
                    const void *rdata, size_t rdlen, int is_name)
{
    struct dns_zname *n = zone_get(z, name);
    struct dns_zrec *r = n ? malloc(sizeof(*r) + rdlen) : NULL;
    if (!r)
        return -1;
    r->type = type;
    r->ttl = ttl;
    r->rdlen = (uint16_t)rdlen;
    r->rdata_is_name = is_name;
    memcpy(r->rdata, rdata, rdlen);
    /* Append: answers come out in configuration order. */
    struct dns_zrec **p = &n->recs;
    while (*p)
        p = &(*p)->next;
    r->next = NULL;
    *p = r;
    return 0;
}

void dns_reverse_name(const struct base_addr *a, uint8_t out[DNS_NAME_MAX])
{
    char text[80];
    size_t o = 0;
    if (a->family == AF_INET) {
        o += (size_t)snprintf(text, sizeof(text), "%u.%u.%u.%u.in-addr.arpa", a->ip[3], a->ip[2],
                              a->ip[1], a->ip[0]);
    } else {
        static const char hex[] = "0123456789abcdef";
        for (int i = 15; i >= 0; i--) {
            text[o++] = hex[a->ip[i] & 15];
            text[o++] = '.';
            text[o++] = hex[a->ip[i] >> 4];
            text[o++] = '.';
        }
        memcpy(text + o, "ip6.arpa", 9);
    }
    dns_name_from_text(text, out);
}

static const char mesh6_rev[] = "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa";

int dns_zone_is_local(const struct dns_zone *z, const uint8_t *name)
{
    uint8_t zone[DNS_NAME_MAX];

    if (dns_name_under(name, z->suffix))
        return 1;
    dns_name_from_text(mesh6_rev, zone);
    if (dns_name_under(name, zone))
        return 1;
    /* 100.64.0.0/10: <b>.100.in-addr.arpa with b in 64..127 */
    dns_name_from_text("100.in-addr.arpa", zone);
    if (!dns_name_under(name, zone))
        return 0;
    int labels = dns_name_labels(name);
    if (labels < 4)
        return 0;
    size_t p = 0;
    for (int i = 0; i < labels - 4; i++)
        p += (size_t)name[p] + 1;
    unsigned len = name[p], v = 0;
    if (len == 0 || len > 3 || (len > 1 && name[p + 1] == '0'))
        return 0;
    for (unsigned k = 1; k <= len; k++) {
        if (name[p + k] < '0' || name[p + k] > '9')
            return 0;
        v = v * 10 + (unsigned)(name[p + k] - '0');
    }
    return v >= 64 && v <= 127;
}

static int host_fqdn(const struct dns_zone *z, const char *text, uint8_t out[DNS_NAME_MAX])
{
    uint8_t name[DNS_NAME_MAX];
    if (dns_name_from_text(text, name) < 0 || name[0] == 0)
        return -1;
    if (dns_name_under(name, z->suffix)) {
        memcpy(out, name, dns_name_len(name));
        return 0;
    }
    return dns_name_concat(name, z->suffix, out) < 0 ? -1 : 0;
}

static int add_host(struct dns_zone *z, const struct dns_host *h, const struct base_logger *log)
{
    uint8_t fqdn[DNS_NAME_MAX], rev[DNS_NAME_MAX];
    char q[BASE_HOST_MAX + 8];

    if (!h->name || host_fqdn(z, h->name, fqdn) < 0) {
        dns_config_invalid(log, "reason=\"bad host name\" name=%s",
                           base_log_quote(q, sizeof(q), h->name ? h->name : ""));
        return BASE_ECONFIG;
    }
    for (size_t i = 0; i < h->n_addrs; i++) {
        const struct base_addr *a = &h->addrs[i];
        if (a->family != AF_INET && a->family != AF_INET6) {
            dns_config_invalid(log, "reason=\"host address without a family\" name=%s",
                               base_log_quote(q, sizeof(q), h->name));
            return BASE_ECONFIG;
        }
        bool v4 = a->family == AF_INET;
        dns_reverse_name(a, rev);
        if (zone_add(z, fqdn, v4 ? DNS_TYPE_A : DNS_TYPE_AAAA, z->ttl, a->ip, v4 ? 4 : 16, 0) < 0 ||
            zone_add(z, rev, DNS_TYPE_PTR, z->ttl, fqdn, dns_name_len(fqdn), 1) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* A record's rdata from its addr (A, AAAA) or value (the others); -1 when they do not fit
 * its type. */
static int record_rdata(const struct dns_record *rec, uint8_t rdata[257], size_t *rdlen,
                        bool *is_name)
{
    const char *v = rec->value ? rec->value : "";
    *is_name = false;
    switch (rec->type) {
    case DNS_TYPE_A:
    case DNS_TYPE_AAAA:
        if (rec->addr.family != (rec->type == DNS_TYPE_A ? AF_INET : AF_INET6))
            return -1;
        *rdlen = base_addr_len(&rec->addr);
        memcpy(rdata, rec->addr.ip, *rdlen);
        return 0;
    case DNS_TYPE_CNAME:
    case DNS_TYPE_PTR: {
        int n = dns_name_from_text(v, rdata);
        *rdlen = n < 0 ? 0 : (size_t)n;
        *is_name = true;
        return n < 0 ? -1 : 0;
    }
    case DNS_TYPE_TXT:
        *rdlen = strlen(v);
        if (*rdlen > 255)
            return -1;
        rdata[0] = (uint8_t)*rdlen;
        memcpy(rdata + 1, v, *rdlen);
        (*rdlen)++;
        return 0;
    default:
        return -1;
    }
}

static int add_record(struct dns_zone *z, const struct dns_record *rec,
                      const struct base_logger *log)
{
    uint8_t name[DNS_NAME_MAX], rdata[256 + 1];
    size_t rdlen = 0;
    bool is_name;
    char q[BASE_HOST_MAX + 8], qv[300];

    if (!rec->name || dns_name_from_text(rec->name, name) < 0) {
        dns_config_invalid(log, "reason=\"bad record name\" name=%s",
                           base_log_quote(q, sizeof(q), rec->name ? rec->name : ""));
        return BASE_ECONFIG;
    }
    if (record_rdata(rec, rdata, &rdlen, &is_name) < 0) {
        char a[BASE_ADDR_STRLEN];
        const char *v = rec->type == DNS_TYPE_A || rec->type == DNS_TYPE_AAAA
                            ? base_addr_format(&rec->addr, a, sizeof(a))
                        : rec->value ? rec->value
                                     : "";
        dns_config_invalid(log, "reason=\"bad record value\" name=%s type=%u value=%s",
                           base_log_quote(q, sizeof(q), rec->name), rec->type,
                           base_log_quote(qv, sizeof(qv), v));
        return BASE_ECONFIG;
    }
    if (zone_add(z, name, rec->type, rec->ttl ? rec->ttl : z->ttl, rdata, rdlen, is_name) < 0)
        return -ENOMEM;
    return 0;
}

int dns_zone_build(struct dns_zone *z, const struct dns_config *cfg, const struct base_logger *log)
{
    char q[BASE_HOST_MAX + 8];
    int rc = 0;
    memset(z, 0, sizeof(*z));
    const char *suffix = cfg->suffix ? cfg->suffix : DNS_DEFAULT_SUFFIX;
    if (dns_name_from_text(suffix, z->suffix) < 0 || z->suffix[0] == 0) {
        dns_config_invalid(log, "reason=\"bad MagicDNS suffix\" suffix=%s",
                           base_log_quote(q, sizeof(q), suffix));
        return BASE_ECONFIG;
    }
    z->ttl = cfg->ttl ? cfg->ttl : DNS_DEFAULT_TTL;
    z->nbuckets = 2 * (cfg->n_hosts * 2 + cfg->n_records) + 16;
    z->buckets = calloc(z->nbuckets, sizeof(*z->buckets));
    if (!z->buckets)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_hosts && rc == 0; i++)
        rc = add_host(z, &cfg->hosts[i], log);
    for (size_t i = 0; i < cfg->n_records && rc == 0; i++)
        rc = add_record(z, &cfg->records[i], log);
    if (rc < 0)
        dns_zone_free(z);
    return rc;
}

void dns_zone_free(struct dns_zone *z)
{
    for (size_t i = 0; i < z->nbuckets; i++) {
        struct dns_zname *n = z->buckets[i];
        while (n) {
            struct dns_zname *nn = n->next;
            struct dns_zrec *r = n->recs;
            while (r) {
                struct dns_zrec *rn = r->next;
                free(r);
                r = rn;
            }
            free(n);
            n = nn;
        }
    }
    free(z->buckets);
    z->buckets = NULL;
    z->nbuckets = 0;
}
