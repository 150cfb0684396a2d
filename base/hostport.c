/*
 * host:port in its three shapes ("name:80", "1.2.3.4:80", "[fd00::1]:80"), with or without the
 * port. Every module that reads a host and port from a user, a config file or a request uses
 * this one parser, so brackets, ports and errors mean the same thing everywhere.
 */
#include <string.h>

#include "base.h"

int base_port_parse(const char *s, size_t len, uint16_t *out, unsigned flags)
{
    if (len == 0 || len > 5)
        return BASE_EPARSE;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return BASE_EPARSE;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535 || (v == 0 && !(flags & BASE_HOSTPORT_PORT_ZERO)))
        return BASE_EPARSE;
    *out = (uint16_t)v;
    return 0;
}

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return BASE_EPARSE;
}

/* Splits s into the host part and the port part (port_len 0 when there is none). */
static int split(const char *s, size_t len, const char **host, size_t *host_len, const char **port,
                 size_t *port_len, const char **why)
{
    *port = NULL;
    *port_len = 0;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return fail(why, "missing ']'");
        *host = s + 1;
        *host_len = (size_t)(close - s) - 1;
        size_t rest = len - (size_t)(close - s) - 1;
        if (rest == 0)
            return 0;
        if (close[1] != ':')
            return fail(why, "expected ':' after ']'");
        *port = close + 2;
        *port_len = rest - 1;
        return *port_len ? 0 : fail(why, "missing port");
    }
    const char *colon = memchr(s, ':', len);
    *host = s;
    *host_len = len;
    if (!colon)
        return 0;
    /* More than one colon and no brackets: an IPv6 address without a port. */
    if (memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        return 0;
    *host_len = (size_t)(colon - s);
    *port = colon + 1;
    *port_len = len - *host_len - 1;
    return *port_len ? 0 : fail(why, "missing port");
}

int base_hostport_parse(const char *s, size_t len, char *host, size_t host_cap, uint16_t *port,
                        unsigned flags, const char **why)
{
    const char *h, *p;
    size_t hlen, plen;
    if (memchr(s, '\0', len))
        return fail(why, "NUL byte");
    int err = split(s, len, &h, &hlen, &p, &plen, why);
    if (err)
        return err;
    if (hlen == 0)
        return fail(why, "empty host");
    if (hlen > BASE_HOST_MAX || hlen >= host_cap)
        return fail(why, "host too long");
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == '[' || h[i] == ']' || h[i] == '/' ||
            (unsigned char)h[i] >= 0x7f)
            return fail(why, "bad character in host");
    if (!p && !(flags & BASE_HOSTPORT_PORT_OPTIONAL))
        return fail(why, "missing port");
    uint16_t v = 0;
    if (p && base_port_parse(p, plen, &v, flags) != 0)
        return fail(why, "bad port (1-65535)");
    /* A bracketed host, or one with colons, must be an IPv6 literal. */
    struct base_addr a;
    bool v6_form = s[0] == '[' || memchr(h, ':', hlen) != NULL;
    if (v6_form && (base_addr_parse(&a, h, hlen) != 0 || a.family != AF_INET6))
        return fail(why, "not an IPv6 address (inside brackets or with colons)");
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (p)
        *port = v;
    return 0;
}
