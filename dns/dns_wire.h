/*
 * RFC 1035 wire format. Names inside tunless's DNS code are kept uncompressed in wire form
 * (length-prefixed labels ending in the root label), at most DNS_NAME_MAX bytes. Nothing
 * here allocates; callers own every buffer.
 */
#ifndef TUNLESS_DNS_WIRE_H
#define TUNLESS_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "dns.h" /* the RR types the config uses */

#define DNS_HDR_LEN 12
#define DNS_NAME_MAX 255
#define DNS_LABEL_MAX 63
#define DNS_UDP_DEFAULT 512
#define DNS_EDNS_OURS 1232 /* the UDP size we advertise (DNS flag day 2020) */
#define DNS_OPT_LEN 11     /* an OPT RR without options */
#define DNS_MSG_MAX 65535

enum {
    DNS_TYPE_NS = 2,
    DNS_TYPE_SOA = 6,
    DNS_TYPE_OPT = 41,
    DNS_TYPE_ANY = 255,
};
#define DNS_CLASS_IN 1
#define DNS_CLASS_ANY 255

enum {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
};

#define DNS_F_QR 0x8000
#define DNS_F_OPCODE 0x7800
#define DNS_F_AA 0x0400
#define DNS_F_TC 0x0200
#define DNS_F_RD 0x0100
#define DNS_F_RA 0x0080
#define DNS_F_CD 0x0010
#define DNS_F_RCODE 0x000f

static inline uint16_t dns_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t dns_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void dns_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void dns_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

struct dns_header {
    uint16_t id, flags, qdcount, ancount, nscount, arcount;
};
void dns_header_read(const uint8_t *msg, struct dns_header *h);
void dns_header_write(uint8_t *msg, const struct dns_header *h);

/* Reads the name at *off (following compression pointers, which must point strictly
 * backwards, each before the previous one) into out; *off moves past the name as stored.
 * Returns the wire length of the name, or -1. */
int dns_name_read(const uint8_t *msg, size_t len, size_t *off, uint8_t out[DNS_NAME_MAX]);
/* "a.b.c" or "a.b.c." (no escapes; "." is the root) to wire form. Returns length or -1. */
int dns_name_from_text(const char *text, uint8_t out[DNS_NAME_MAX]);
/* Wire form to "a.b.c." text; non-printable bytes as \DDD. Returns 0 or -1 (too small). */
int dns_name_to_text(const uint8_t *name, char *out, size_t cap);
size_t dns_name_len(const uint8_t *name);
int dns_name_labels(const uint8_t *name);
int dns_name_equal(const uint8_t *a, const uint8_t *b); /* ASCII case-insensitive */
/* 1 if name equals suffix or is below it (label-aligned). */
int dns_name_under(const uint8_t *name, const uint8_t *suffix);
void dns_name_lower(uint8_t *name);
/* FNV-1a over the name, case-folded, then type and class (0, 0 for the name alone). */
uint32_t dns_name_hash(const uint8_t *name, uint16_t type, uint16_t cls);
/* Appends suffix to a name (dropping name's root label). Returns length or -1 (too long). */
int dns_name_concat(const uint8_t *name, const uint8_t *suffix, uint8_t out[DNS_NAME_MAX]);

struct dns_question {
    uint8_t name[DNS_NAME_MAX];
    uint16_t type, cls;
};
int dns_question_read(const uint8_t *msg, size_t len, size_t *off, struct dns_question *q);

struct dns_rr {
    uint8_t name[DNS_NAME_MAX];
    uint16_t type, cls;
    uint32_t ttl;
    uint16_t rdlen;
    size_t start;   /* offset of the owner name */
    size_t ttl_off; /* offset of the TTL field */
    size_t rdata_off;
    size_t end; /* offset after rdata */
};
int dns_rr_read(const uint8_t *msg, size_t len, size_t *off, struct dns_rr *rr);

/* A whole message checked: every count honoured, every name and rdata in bounds. */
struct dns_msg_info {
    struct dns_header hdr;
    struct dns_question q; /* valid when hdr.qdcount == 1 */
    size_t q_end;          /* offset after the question section */
    int has_edns;
    uint16_t edns_udp; /* max(512, requestor's size) when has_edns */
    uint8_t edns_version;
    uint32_t edns_ttl;         /* extended rcode, version, DO */
    size_t opt_start, opt_end; /* the OPT RR's bytes */
    size_t sec_end[3];         /* offsets after answer, authority, additional */
};
/* Returns 0, or -1 when the message is malformed. Needs at least a header (len >= 12). */
int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_msg_info *info);

/* Builder with name compression. All writes fail (return -1) once cap would be exceeded
 * and leave len where it was. */
#define DNS_COMP_MAX 64
struct dns_builder {
    uint8_t *buf;
    size_t cap, len;
    uint16_t comp[DNS_COMP_MAX]; /* offsets of names written uncompressed */
    int ncomp;
};
void dns_b_init(struct dns_builder *b, uint8_t *buf, size_t cap);
int dns_b_bytes(struct dns_builder *b, const void *p, size_t n);
int dns_b_u16(struct dns_builder *b, uint16_t v);
int dns_b_name(struct dns_builder *b, const uint8_t *name);
int dns_b_question(struct dns_builder *b, const uint8_t *name, uint16_t type, uint16_t cls);
/* rdata is raw; for CNAME/PTR/NS pass the target in rdata_name instead (compressed). */
int dns_b_rr(struct dns_builder *b, const uint8_t *name, uint16_t type, uint16_t cls, uint32_t ttl,
             const uint8_t *rdata, uint16_t rdlen, const uint8_t *rdata_name);
int dns_b_opt(struct dns_builder *b, uint16_t udp_size, uint32_t ext);
struct dns_b_mark {
    size_t len;
    int ncomp;
};
static inline struct dns_b_mark dns_b_save(const struct dns_builder *b)
{
    struct dns_b_mark m = {b->len, b->ncomp};
    return m;
}
static inline void dns_b_restore(struct dns_builder *b, struct dns_b_mark m)
{
    b->len = m.len;
    b->ncomp = m.ncomp;
}

/* Cuts a well-formed message (as parsed into info) to at most max bytes at an RR boundary,
 * keeping the OPT RR when it fits; sets TC when answer or authority records were dropped.
 * Returns the new length (<= max), or 0 when not even header + question + OPT fit. */
size_t dns_msg_truncate(uint8_t *msg, size_t len, const struct dns_msg_info *info, size_t max);

/* Min TTL over answer RRs (positive), or the SOA minimum (negative); -1 = do not cache. */
long dns_msg_cache_ttl(const uint8_t *msg, size_t len, const struct dns_msg_info *info);
/* Subtracts age seconds from every TTL but OPT's (floored at 0). */
void dns_msg_age_ttls(uint8_t *msg, size_t len, const struct dns_msg_info *info, uint32_t age);

#endif
