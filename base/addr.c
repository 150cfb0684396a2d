/* IP addresses, endpoints and prefixes: their text forms and sockaddr conversions. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

void base_addr_v4(struct base_addr *a, const uint8_t ip[4])
{
    memset(a, 0, sizeof(*a));
    a->family = AF_INET;
    memcpy(a->ip, ip, 4);
}

void base_addr_v6(struct base_addr *a, const uint8_t ip[16])
{
    memset(a, 0, sizeof(*a));
    a->family = AF_INET6;
    memcpy(a->ip, ip, 16);
}

size_t base_addr_len(const struct base_addr *a)
{
    if (a->family == AF_INET)
        return 4;
    return a->family == AF_INET6 ? 16 : 0;
}

bool base_addr_equal(const struct base_addr *a, const struct base_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, base_addr_len(a)) == 0;
}

bool base_addr_is_unspecified(const struct base_addr *a)
{
    static const uint8_t zero[16];
    size_t len = base_addr_len(a);
    return len == 0 || memcmp(a->ip, zero, len) == 0;
}

bool base_addr_is_loopback(const struct base_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if (a->family == AF_INET)
        return a->ip[0] == 127;
    return a->family == AF_INET6 && memcmp(a->ip, v6_loopback, 16) == 0;
}

int base_addr_parse(struct base_addr *out, const char *s, size_t len)
{
    char tmp[BASE_ADDR_STRLEN];
    if (len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len))
        return BASE_EPARSE;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    struct base_addr a = {0};
    if (inet_pton(AF_INET, tmp, a.ip) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, tmp, a.ip) == 1)
        a.family = AF_INET6;
    else
        return BASE_EPARSE;
    *out = a;
    return 0;
}

const char *base_addr_format(const struct base_addr *a, char *buf, size_t cap)
{
    char tmp[BASE_ADDR_STRLEN];
    if (base_addr_len(a) == 0 || !inet_ntop(a->family, a->ip, tmp, sizeof(tmp)))
        snprintf(tmp, sizeof(tmp), "none");
    snprintf(buf, cap, "%s", tmp);
    return buf;
}

bool base_endpoint_equal(const struct base_endpoint *a, const struct base_endpoint *b)
{
    return a->port == b->port && base_addr_equal(&a->addr, &b->addr);
}

int base_endpoint_parse(struct base_endpoint *out, const char *s, size_t len)
{
    char host[BASE_ADDR_STRLEN];
    struct base_endpoint e = {0};
    int err =
        base_hostport_parse(s, len, host, sizeof(host), &e.port, BASE_HOSTPORT_PORT_ZERO, NULL);
    if (err)
        return err;
    if (base_addr_parse(&e.addr, host, strlen(host)) != 0)
        return BASE_EPARSE;
    /* An IPv6 address must have come in brackets: "::1:80" is no endpoint. */
    if (e.addr.family == AF_INET6 && s[0] != '[')
        return BASE_EPARSE;
    *out = e;
    return 0;
}

const char *base_endpoint_format(const struct base_endpoint *e, char *buf, size_t cap)
{
    char a[BASE_ADDR_STRLEN];
    base_addr_format(&e->addr, a, sizeof(a));
    if (e->addr.family == AF_INET6)
        snprintf(buf, cap, "[%s]:%u", a, e->port);
    else
        snprintf(buf, cap, "%s:%u", a, e->port);
    return buf;
}

int base_endpoint_from_sockaddr(struct base_endpoint *out, const struct sockaddr *sa)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        base_addr_v4(&out->addr, (const uint8_t *)&in->sin_addr);
        out->port = ntohs(in->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        base_addr_v6(&out->addr, in6->sin6_addr.s6_addr);
        out->port = ntohs(in6->sin6_port);
        return 0;
    }
    return -EAFNOSUPPORT;
}

socklen_t base_endpoint_to_sockaddr(const struct base_endpoint *e, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (e->addr.family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(e->port);
        memcpy(&in->sin_addr, e->addr.ip, 4);
        return sizeof(*in);
    }
    if (e->addr.family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(e->port);
        memcpy(&in6->sin6_addr, e->addr.ip, 16);
        return sizeof(*in6);
    }
    return 0;
}

/* A prefix length: decimal, no leading zero, at most max. */
static int parse_bits(const char *s, size_t len, unsigned max, uint8_t *out)
{
    uint16_t v;
    if (len > 3 || (len > 1 && s[0] == '0') ||
        base_port_parse(s, len, &v, BASE_HOSTPORT_PORT_ZERO) != 0 || v > max)
        return BASE_EPARSE;
    *out = (uint8_t)v;
    return 0;
}

int base_prefix_parse(struct base_prefix *out, const char *s, size_t len)
{
    struct base_prefix p = {0};
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (base_addr_parse(&p.addr, s, alen) != 0)
        return BASE_EPARSE;
    unsigned max = p.addr.family == AF_INET ? 32 : 128;
    p.bits = (uint8_t)max;
    if (slash && parse_bits(slash + 1, len - alen - 1, max, &p.bits) != 0)
        return BASE_EPARSE;
    *out = p;
    return 0;
}

const char *base_prefix_format(const struct base_prefix *p, char *buf, size_t cap)
{
    char a[BASE_ADDR_STRLEN];
    snprintf(buf, cap, "%s/%u", base_addr_format(&p->addr, a, sizeof(a)), p->bits);
    return buf;
}

void base_prefix_masked(struct base_prefix *p)
{
    size_t len = base_addr_len(&p->addr);
    for (size_t i = 0; i < len; i++) {
        unsigned keep = p->bits > i * 8 ? p->bits - i * 8 : 0;
        if (keep < 8)
            p->addr.ip[i] &= (uint8_t)(0xff00u >> keep);
    }
}

bool base_prefix_contains(const struct base_prefix *p, const struct base_addr *a)
{
    if (p->addr.family != a->family || base_addr_len(a) == 0)
        return false;
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(p->addr.ip, a->ip, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (p->addr.ip[full] & mask) == (a->ip[full] & mask);
}
