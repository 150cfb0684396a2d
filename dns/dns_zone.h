/* The local zone: MagicDNS hosts, their PTRs and extra records, compiled from a dns_config. */
#ifndef TUNLESS_DNS_ZONE_H
#define TUNLESS_DNS_ZONE_H

#include "dns.h"
#include "dns_wire.h"

struct dns_zrec {
    struct dns_zrec *next;
    uint16_t type;
    uint32_t ttl;
    uint16_t rdlen;
    int rdata_is_name; /* CNAME/PTR targets: written compressed */
    uint8_t rdata[];
};

struct dns_zname {
    struct dns_zname *next;
    uint8_t name[DNS_NAME_MAX]; /* lower case */
    struct dns_zrec *recs;
};

struct dns_zone {
    struct dns_zname **buckets;
    size_t nbuckets;
    uint8_t suffix[DNS_NAME_MAX];
    uint32_t ttl;
};

/* 0, -ENOMEM, or BASE_ECONFIG with the reason on log. */
int dns_zone_build(struct dns_zone *z, const struct dns_config *cfg, const struct base_logger *log);
void dns_zone_free(struct dns_zone *z);
const struct dns_zname *dns_zone_find(const struct dns_zone *z, const uint8_t *name);
/* Names we are authoritative for: the suffix and the mesh ranges' reverse zones. */
int dns_zone_is_local(const struct dns_zone *z, const uint8_t *name);
/* The reverse (PTR) name of an address. */
void dns_reverse_name(const struct base_addr *a, uint8_t out[DNS_NAME_MAX]);

#endif
