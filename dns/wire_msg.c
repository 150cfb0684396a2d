/* Whole DNS messages: parsing and checking, building with compression, truncation, TTLs. */
#include <string.h>

#include "dns_wire.h"

void dns_header_read(const uint8_t *msg, struct dns_header *h)
{
    h->id = dns_get16(msg);
    h->flags = dns_get16(msg + 2);
    h->qdcount = dns_get16(msg + 4);
    h->ancount = dns_get16(msg + 6);
    h->nscount = dns_get16(msg + 8);
    h->arcount = dns_get16(msg + 10);
}

void dns_header_write(uint8_t *msg, const struct dns_header *h)
{
    dns_put16(msg, h->id);
    dns_put16(msg + 2, h->flags);
    dns_put16(msg + 4, h->qdcount);
    dns_put16(msg + 6, h->ancount);
    dns_put16(msg + 8, h->nscount);
    dns_put16(msg + 10, h->arcount);
}

int dns_question_read(const uint8_t *msg, size_t len, size_t *off, struct dns_question *q)
{
    if (dns_name_read(msg, len, off, q->name) < 0 || *off + 4 > len)
        return -1;
    q->type = dns_get16(msg + *off);
    q->cls = dns_get16(msg + *off + 2);
    *off += 4;
    return 0;
}

int dns_rr_read(const uint8_t *msg, size_t len, size_t *off, struct dns_rr *rr)
{
    rr->start = *off;
    if (dns_name_read(msg, len, off, rr->name) < 0 || *off + 10 > len)
        return -1;
    const uint8_t *p = msg + *off;
    rr->type = dns_get16(p);
    rr->cls = dns_get16(p + 2);
    rr->ttl_off = *off + 4;
    rr->ttl = dns_get32(p + 4);
    rr->rdlen = dns_get16(p + 8);
    rr->rdata_off = *off + 10;
    if (rr->rdata_off + rr->rdlen > len)
        return -1;
    *off = rr->end = rr->rdata_off + rr->rdlen;
    return 0;
}

/* Names inside rdata must be readable too: a bad one would poison the cache and clients. */
static int rdata_check(const uint8_t *msg, size_t len, const struct dns_rr *rr)
{
    uint8_t name[DNS_NAME_MAX];
    size_t off = rr->rdata_off;

    switch (rr->type) {
    case DNS_TYPE_CNAME:
    case DNS_TYPE_PTR:
    case DNS_TYPE_NS:
        if (dns_name_read(msg, len, &off, name) < 0)
            return -1;
        return off == rr->end ? 0 : -1;
    case DNS_TYPE_SOA:
        if (dns_name_read(msg, len, &off, name) < 0 || dns_name_read(msg, len, &off, name) < 0)
            return -1;
        return off + 20 == rr->end ? 0 : -1;
    case DNS_TYPE_A:
        return rr->rdlen == 4 ? 0 : -1;
    case DNS_TYPE_AAAA:
        return rr->rdlen == 16 ? 0 : -1;
    default:
        return 0;
    }
}

int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_msg_info *info)
{
    size_t off = DNS_HDR_LEN;
    struct dns_rr rr;

    memset(info, 0, sizeof(*info));
    if (len < DNS_HDR_LEN)
        return -1;
    dns_header_read(msg, &info->hdr);
    for (unsigned i = 0; i < info->hdr.qdcount; i++) {
        struct dns_question q;
        if (dns_question_read(msg, len, &off, &q) < 0)
            return -1;
        if (i == 0)
            info->q = q;
    }
    info->q_end = off;
    unsigned counts[3] = {info->hdr.ancount, info->hdr.nscount, info->hdr.arcount};
    for (int s = 0; s < 3; s++) {
        for (unsigned i = 0; i < counts[s]; i++) {
            if (dns_rr_read(msg, len, &off, &rr) < 0 || rdata_check(msg, len, &rr) < 0)
                return -1;
            if (rr.type != DNS_TYPE_OPT)
                continue;
            /* One OPT, in the additional section, owned by the root. */
            if (s != 2 || info->has_edns || rr.name[0] != 0)
                return -1;
            info->has_edns = 1;
            info->edns_udp = rr.cls < DNS_UDP_DEFAULT ? DNS_UDP_DEFAULT : rr.cls;
            info->edns_ttl = rr.ttl;
            info->edns_version = (uint8_t)(rr.ttl >> 16);
            info->opt_start = rr.start;
            info->opt_end = rr.end;
        }
        info->sec_end[s] = off;
    }
    /* Trailing bytes are tolerated (some stacks pad); they are never copied. */
    return 0;
}

void dns_b_init(struct dns_builder *b, uint8_t *buf, size_t cap)
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->ncomp = 0;
}

int dns_b_bytes(struct dns_builder *b, const void *p, size_t n)
{
    if (n > b->cap - b->len)
        return -1;
    if (n)
        memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

int dns_b_u16(struct dns_builder *b, uint16_t v)
{
    uint8_t x[2];
    dns_put16(x, v);
    return dns_b_bytes(b, x, 2);
}

/* The offset of an earlier name equal to name, or -1. */
static int comp_find(const struct dns_builder *b, const uint8_t *name)
{
    uint8_t prev[DNS_NAME_MAX];
    for (int i = 0; i < b->ncomp; i++) {
        size_t off = b->comp[i];
        if (dns_name_read(b->buf, b->len, &off, prev) > 0 && dns_name_equal(prev, name))
            return b->comp[i];
    }
    return -1;
}

int dns_b_name(struct dns_builder *b, const uint8_t *name)
{
    struct dns_b_mark m = dns_b_save(b);
    size_t p = 0;

    while (name[p]) {
        int ptr = comp_find(b, name + p);
        if (ptr >= 0) {
            if (dns_b_u16(b, (uint16_t)(0xc000 | ptr)) < 0)
                goto fail;
            return 0;
        }
        if (b->len < 0x3fff && b->ncomp < DNS_COMP_MAX)
            b->comp[b->ncomp++] = (uint16_t)b->len;
        if (dns_b_bytes(b, name + p, (size_t)name[p] + 1) < 0)
            goto fail;
        p += (size_t)name[p] + 1;
    }
    if (dns_b_bytes(b, "", 1) < 0)
        goto fail;
    return 0;
fail:
    dns_b_restore(b, m);
    return -1;
}

int dns_b_question(struct dns_builder *b, const uint8_t *name, uint16_t type, uint16_t cls)
{
    struct dns_b_mark m = dns_b_save(b);
    if (dns_b_name(b, name) < 0 || dns_b_u16(b, type) < 0 || dns_b_u16(b, cls) < 0) {
        dns_b_restore(b, m);
        return -1;
    }
    return 0;
}

int dns_b_rr(struct dns_builder *b, const uint8_t *name, uint16_t type, uint16_t cls, uint32_t ttl,
             const uint8_t *rdata, uint16_t rdlen, const uint8_t *rdata_name)
{
    struct dns_b_mark m = dns_b_save(b);
    uint8_t fixed[8];

    dns_put16(fixed, type);
    dns_put16(fixed + 2, cls);
    dns_put32(fixed + 4, ttl);
    if (dns_b_name(b, name) < 0 || dns_b_bytes(b, fixed, 8) < 0)
        goto fail;
    size_t rdlen_off = b->len;
    if (dns_b_u16(b, 0) < 0)
        goto fail;
    if (rdata_name ? dns_b_name(b, rdata_name) : dns_b_bytes(b, rdata, rdlen))
        goto fail;
    dns_put16(b->buf + rdlen_off, (uint16_t)(b->len - rdlen_off - 2));
    return 0;
fail:
    dns_b_restore(b, m);
    return -1;
}

int dns_b_opt(struct dns_builder *b, uint16_t udp_size, uint32_t ext)
{
    return dns_b_rr(b, (const uint8_t *)"", DNS_TYPE_OPT, udp_size, ext, NULL, 0, NULL);
}

size_t dns_msg_truncate(uint8_t *msg, size_t len, const struct dns_msg_info *info, size_t max)
{
    size_t opt_len = info->has_edns ? DNS_OPT_LEN : 0;
    struct dns_header h = info->hdr;
    size_t off = info->q_end, keep = info->q_end;
    unsigned kept[3] = {0, 0, 0};
    unsigned counts[3] = {h.ancount, h.nscount, h.arcount};
    int cut = 0, lost_needed = 0;
    struct dns_rr rr;

    if (len <= max)
        return len;
    if (info->q_end + opt_len > max)
        return 0;
    /* RRs are contiguous and compression points backwards only, so any prefix of the
     * message is self-contained: keep the longest one that fits. */
    for (int s = 0; s < 3; s++) {
        for (unsigned i = 0; i < counts[s]; i++) {
            if (dns_rr_read(msg, len, &off, &rr) < 0)
                return 0;
            if (!cut && rr.type != DNS_TYPE_OPT && rr.end + opt_len <= max) {
                keep = rr.end;
                kept[s]++;
                continue;
            }
            cut = 1;
            if (s < 2)
                lost_needed = 1;
        }
    }
    if (opt_len) {
        /* Our own OPT (no options), keeping the extended rcode, version and DO bit. */
        uint8_t *p = msg + keep;
        p[0] = 0;
        dns_put16(p + 1, DNS_TYPE_OPT);
        dns_put16(p + 3, DNS_EDNS_OURS);
        dns_put32(p + 5, info->edns_ttl);
        dns_put16(p + 9, 0);
        keep += DNS_OPT_LEN;
        kept[2]++;
    }
    h.ancount = (uint16_t)kept[0];
    h.nscount = (uint16_t)kept[1];
    h.arcount = (uint16_t)kept[2];
    if (lost_needed)
        h.flags |= DNS_F_TC;
    dns_header_write(msg, &h);
    return keep;
}

long dns_msg_cache_ttl(const uint8_t *msg, size_t len, const struct dns_msg_info *info)
{
    unsigned rcode = info->hdr.flags & DNS_F_RCODE;
    size_t off = info->q_end;
    struct dns_rr rr;
    long ttl = -1;

    if (info->hdr.flags & DNS_F_TC || info->hdr.qdcount != 1)
        return -1;
    if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN)
        return -1;
    for (unsigned i = 0; i < info->hdr.ancount; i++) {
        if (dns_rr_read(msg, len, &off, &rr) < 0)
            return -1;
        if (ttl < 0 || rr.ttl < (unsigned long)ttl)
            ttl = rr.ttl;
    }
    if (info->hdr.ancount && rcode == DNS_RCODE_NOERROR)
        return ttl;
    /* Negative answer (RFC 2308): min(SOA TTL, SOA MINIMUM); no SOA, no caching. */
    for (unsigned i = 0; i < info->hdr.nscount; i++) {
        if (dns_rr_read(msg, len, &off, &rr) < 0)
            return -1;
        if (rr.type == DNS_TYPE_SOA && rr.rdlen >= 20) {
            uint32_t minimum = dns_get32(msg + rr.end - 4);
            return minimum < rr.ttl ? minimum : rr.ttl;
        }
    }
    return -1;
}

void dns_msg_age_ttls(uint8_t *msg, size_t len, const struct dns_msg_info *info, uint32_t age)
{
    size_t off = info->q_end;
    unsigned n = (unsigned)info->hdr.ancount + info->hdr.nscount + info->hdr.arcount;
    struct dns_rr rr;

    for (unsigned i = 0; i < n; i++) {
        if (dns_rr_read(msg, len, &off, &rr) < 0)
            return;
        if (rr.type != DNS_TYPE_OPT)
            dns_put32(msg + rr.ttl_off, rr.ttl > age ? rr.ttl - age : 0);
    }
}
