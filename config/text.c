/*
 * The values both configuration formats hold, from text: keys, prefixes, resolvers, endpoints,
 * DNS names and labels. Addresses, ports and host:port go through base/'s one parser; what is
 * left here is what only a configuration means (a key's base64 form, a resolver's default port,
 * a name an endpoint may carry). Each returns NULL or a short reason for the message.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

int cfg_key_from_base64(uint8_t key[CFG_KEY_LEN], const char *b64, size_t len)
{
    size_t out_len = 0;
    const char *end = NULL;

    if (len != CFG_KEY_B64_LEN || b64[CFG_KEY_B64_LEN - 1] != '=')
        goto bad;
    if (sodium_base642bin(key, CFG_KEY_LEN, b64, len, NULL, &out_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        goto bad;
    if (out_len != CFG_KEY_LEN || end != b64 + len)
        goto bad;
    return 0;
bad:
    sodium_memzero(key, CFG_KEY_LEN);
    return BASE_EPARSE;
}

const char *cfg_shown(char *buf, size_t cap, const char *v)
{
    size_t i = 0;
    for (; v[i] && i + 4 < cap && i < 64; i++)
        buf[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
    if (v[i] && i + 4 < cap) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

const char *cfg_parse_prefix(const char *s, bool mask, struct base_prefix *out, bool *host_bits)
{
    size_t len = strlen(s);
    memset(out, 0, sizeof(*out));
    if (base_prefix_parse(out, s, len) != 0) {
        const char *slash = strchr(s, '/');
        struct base_addr a;
        if (base_addr_parse(&a, s, slash ? (size_t)(slash - s) : len) != 0)
            return "not an IP address";
        return a.family == AF_INET ? "prefix length is not 0-32" : "prefix length is not 0-128";
    }
    if (mask) {
        struct base_prefix raw = *out;
        base_prefix_masked(out);
        if (host_bits)
            *host_bits = !base_addr_equal(&raw.addr, &out->addr);
    }
    return NULL;
}

const char *cfg_parse_resolver(const char *s, bool allow_port, struct base_endpoint *out)
{
    size_t len = strlen(s);
    memset(out, 0, sizeof(*out));
    out->port = 53;
    if (base_addr_parse(&out->addr, s, len) == 0)
        return NULL;
    if (!allow_port)
        return "not an IP address";
    char host[BASE_HOST_MAX + 1];
    const char *why = NULL;
    if (base_hostport_parse(s, len, host, sizeof(host), &out->port, BASE_HOSTPORT_PORT_OPTIONAL,
                            &why) != 0)
        return why;
    if (base_addr_parse(&out->addr, host, strlen(host)) != 0)
        return "not an IP address, IPv4:port or [IPv6]:port";
    return NULL;
}

static int domain_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '_';
}

/* Checks a dotted name of len characters (no trailing dot). */
static const char *check_domain(const char *s, size_t len)
{
    if (len == 0)
        return "empty name";
    if (len > BASE_HOST_MAX)
        return "name longer than 253 characters";
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return "empty label in name";
            label = 0;
            continue;
        }
        if (!domain_char(s[i]))
            return "not a DNS name (letters, digits, '-', '_' and dots)";
        if (++label > 63)
            return "label longer than 63 characters";
    }
    return label ? NULL : "empty label in name";
}

const char *cfg_parse_endpoint(const char *s, struct cfg_hostport *out)
{
    size_t len = strlen(s);
    const char *first = memchr(s, ':', len);
    memset(out, 0, sizeof(*out));
    if (s[0] != '[' && first && memchr(first + 1, ':', len - (size_t)(first - s) - 1))
        return "IPv6 endpoints are written [address]:port";
    const char *why = NULL;
    if (base_hostport_parse(s, len, out->host, sizeof(out->host), &out->port, 0, &why) != 0)
        return why;
    struct base_addr a;
    if (base_addr_parse(&a, out->host, strlen(out->host)) != 0 &&
        check_domain(out->host, strlen(out->host)))
        return "host is not an IP address or DNS name";
    return NULL;
}

static char *lower_copy(const char *s, size_t len, bool dot)
{
    char *out = malloc(len + 2);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    if (dot)
        out[len++] = '.';
    out[len] = '\0';
    return out;
}

const char *cfg_parse_domain(const char *s, bool trailing_dot, char **out)
{
    size_t len = strlen(s);
    if (len && s[len - 1] == '.')
        len--;
    const char *why = check_domain(s, len);
    if (why)
        return why;
    if (out && !(*out = lower_copy(s, len, trailing_dot)))
        return "out of memory";
    return NULL;
}

const char *cfg_parse_label(const char *s, char **out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 63)
        return "not a name of 1-63 characters";
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return "not a name (letters, digits and '-')";
    }
    if (s[0] == '-' || s[len - 1] == '-')
        return "name starts or ends with '-'";
    if (out && !(*out = lower_copy(s, len, false)))
        return "out of memory";
    return NULL;
}
