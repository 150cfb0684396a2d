/*
 * wireproxy's own sections in a wg-quick file, read as wireproxy reads them (section and key
 * names case-insensitive) so that its configuration runs unchanged: [Socks5] and [http]
 * (BindAddress, Username, Password), [TCPClientTunnel] and [UDPProxyTunnel] (BindAddress,
 * Target), [TCPServerTunnel] (ListenPort, Target). ini.c finds the header with cfg_wp_section,
 * hands each key to cfg_wp_key and checks the section with cfg_wp_end; the result is a
 * struct cfg_service for the node to map. A key wireproxy knows that we do not support is an
 * error, never silently dropped.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { K_BIND = 1 << 0, K_USER = 1 << 1, K_PASS = 1 << 2, K_TARGET = 1 << 3, K_PORT = 1 << 4 };

static const struct {
    const char *name;
    enum cfg_service_kind kind;
    unsigned keys;
} sections[] = {
    {"Socks5", CFG_SERVICE_SOCKS5, K_BIND | K_USER | K_PASS},
    {"http", CFG_SERVICE_HTTP, K_BIND | K_USER | K_PASS},
    {"TCPClientTunnel", CFG_SERVICE_TCP_CLIENT, K_BIND | K_TARGET},
    {"UDPProxyTunnel", CFG_SERVICE_UDP_CLIENT, K_BIND | K_TARGET},
    {"TCPServerTunnel", CFG_SERVICE_TCP_SERVER, K_PORT | K_TARGET},
};
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static const struct {
    const char *name;
    unsigned bit;
} keys[] = {{"BindAddress", K_BIND},
            {"Username", K_USER},
            {"Password", K_PASS},
            {"Target", K_TARGET},
            {"ListenPort", K_PORT}};

enum cfg_service_kind cfg_wp_section(const char *header)
{
    size_t len = strlen(header);
    if (len < 3 || header[0] != '[' || header[len - 1] != ']')
        return 0;
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (strlen(sections[i].name) == len - 2 &&
            strncasecmp(header + 1, sections[i].name, len - 2) == 0)
            return sections[i].kind;
    return 0;
}

const char *cfg_service_section(enum cfg_service_kind kind)
{
    static const char *const names[] = {
        "", "[Socks5]", "[http]", "[TCPClientTunnel]", "[UDPProxyTunnel]", "[TCPServerTunnel]"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

static unsigned allowed(enum cfg_service_kind kind)
{
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (sections[i].kind == kind)
            return sections[i].keys;
    return 0;
}

/* Go's net.Listen form: "IP:PORT", "[v6]:PORT", "localhost:PORT", or ":PORT" for every
 * interface. */
static const char *parse_bind(const char *v, struct base_endpoint *out)
{
    char host[BASE_HOST_MAX + 1];
    uint16_t port;
    if (v[0] == ':') {
        snprintf(host, sizeof(host), "0.0.0.0");
        if (base_port_parse(v + 1, strlen(v + 1), &port, 0) != 0)
            return "want IP:PORT, [IPv6]:PORT or :PORT";
    } else if (base_hostport_parse(v, strlen(v), host, sizeof(host), &port, 0, NULL) != 0) {
        return "want IP:PORT, [IPv6]:PORT or :PORT";
    }
    const char *ip = strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (base_addr_parse(&out->addr, ip, strlen(ip)) != 0)
        return "a listener binds an IP address (or localhost), not a name";
    out->port = port;
    return NULL;
}

static const char *set_string(char **dst, const char *v)
{
    *dst = strdup(v);
    return *dst ? NULL : "out of memory";
}

static const char *value(struct cfg_service *s, unsigned bit, const char *v)
{
    uint16_t port;
    switch (bit) {
    case K_BIND:
        return parse_bind(v, &s->bind);
    case K_USER:
        return set_string(&s->username, v);
    case K_PASS:
        return set_string(&s->password, v);
    case K_TARGET:
        return cfg_parse_endpoint(v, &s->target);
    case K_PORT:
        if (base_port_parse(v, strlen(v), &port, 0) != 0)
            return "not a port from 1 to 65535";
        s->listen_port = port;
        return NULL;
    }
    return "internal";
}

const char *cfg_wp_key(struct cfg_service *s, unsigned *seen, const char *key, const char *v,
                       char *why, size_t cap)
{
    const char *sec = cfg_service_section(s->kind);
    size_t k = 0;
    while (k < sizeof(keys) / sizeof(keys[0]) && strcasecmp(keys[k].name, key) != 0)
        k++;
    char b[80];
    if (k == sizeof(keys) / sizeof(keys[0]) || !(allowed(s->kind) & keys[k].bit)) {
        snprintf(why, cap, "%s: not supported in %s", cfg_shown(b, sizeof(b), key), sec);
        return why;
    }
    if (*seen & keys[k].bit) {
        snprintf(why, cap, "%s: given twice in this section", keys[k].name);
        return why;
    }
    *seen |= keys[k].bit;
    const char *err = value(s, keys[k].bit, v);
    if (!err)
        return NULL;
    snprintf(why, cap, "%s: '%s': %s", keys[k].name, cfg_shown(b, sizeof(b), v), err);
    return why;
}

const char *cfg_wp_end(const struct cfg_service *s, unsigned seen, char *why, size_t cap)
{
    const char *sec = cfg_service_section(s->kind);
    unsigned need = allowed(s->kind) & ~(unsigned)(K_USER | K_PASS);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if ((need & keys[k].bit) && !(seen & keys[k].bit)) {
            snprintf(why, cap, "%s has no %s", sec, keys[k].name);
            return why;
        }
    if (!!(seen & K_USER) != !!(seen & K_PASS)) {
        snprintf(why, cap, "%s: Username and Password go together", sec);
        return why;
    }
    return NULL;
}
