/* The configuration model: freeing, whole-config validation, and the value parsers both
 * configuration formats share. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <sodium.h>

/* ---- memory ---- */

void *node_config_push(void *arr_ptr, size_t *n, size_t size)
{
    void **arr = arr_ptr;
    size_t count = *n;
    /* capacity is 4, then the next power of two: grow when count reaches it */
    if (count == 0 || (count >= 4 && (count & (count - 1)) == 0)) {
        size_t cap = count ? count * 2 : 4;
        if (cap > SIZE_MAX / size)
            return NULL;
        void *grown = realloc(*arr, cap * size);
        if (!grown)
            return NULL;
        *arr = grown;
    }
    void *slot = (char *)*arr + count * size;
    memset(slot, 0, size);
    *n = count + 1;
    return slot;
}

int node_config_vfail(char *err, size_t errlen, const char *file, const char *where,
                      const char *fmt, va_list ap)
{
    char msg[384];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (err && errlen)
        snprintf(err, errlen, "%s%s: %s", file, where, msg);
    return -1;
}

int node_config_warn(struct node_config *c, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    char **slot = node_config_push(&c->warnings, &c->n_warnings, sizeof(*slot));
    if (!slot) {
        free(line);
        return -1;
    }
    *slot = line;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void node_config_free(struct node_config *c)
{
    if (!c)
        return;
    sodium_memzero(c->private_key, sizeof(c->private_key));
    for (size_t i = 0; i < c->n_peers; i++) {
        struct node_peer *p = &c->peers[i];
        sodium_memzero(p->preshared_key, sizeof(p->preshared_key));
        free(p->name);
        free(p->endpoints);
        free(p->allowed_ips);
    }
    free(c->peers);
    for (size_t i = 0; i < c->n_routes; i++) {
        free(c->routes[i].suffix);
        free(c->routes[i].resolvers);
    }
    free(c->routes);
    for (size_t i = 0; i < c->n_records; i++)
        free(c->records[i].name);
    free(c->records);
    free_strings(c->search, c->n_search);
    free_strings(c->warnings, c->n_warnings);
    free(c->resolvers);
    free(c->addresses);
    free(c->dns_suffix);
    free(c->name);
    free(c->file);
    memset(c, 0, sizeof(*c));
}

int node_config_read_file(const char *path, size_t max, char **buf, size_t *len, mode_t *mode,
                          char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    *buf = NULL;
    if (!f || fstat(fileno(f), &st) < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    *mode = st.st_mode;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 S_ISREG(st.st_mode) ? "file too large" : "not a regular file");
        fclose(f);
        return -1;
    }
    *buf = malloc((size_t)st.st_size + 1);
    *len = *buf ? fread(*buf, 1, (size_t)st.st_size, f) : 0;
    int bad = !*buf || ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: cannot read: %s", path, *buf ? "read error" : "out of memory");
        free(*buf);
        *buf = NULL;
        return -1;
    }
    (*buf)[*len] = '\0';
    return 0;
}

const char *node_config_shown(char *buf, size_t cap, const char *v)
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

/* ---- value parsers ---- */

static int family_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

static int family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* Decimal digits only (no sign, no spaces), at most max. */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_ip(const char *s, size_t len, int *family, uint8_t addr[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

static void mask_addr(uint8_t *addr, int family, unsigned cidr)
{
    for (int i = 0; i < family_len(family); i++) {
        int keep = (int)cidr - 8 * i;
        if (keep <= 0)
            addr[i] = 0;
        else if (keep < 8)
            addr[i] &= (uint8_t)(0xff << (8 - keep));
    }
}

const char *node_config_parse_prefix(const char *s, bool mask, struct wg_allowed_ip *out)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    memset(out, 0, sizeof(*out));
    if (parse_ip(s, alen, &out->family, out->addr) < 0)
        return "not an IP address";
    unsigned long cidr = (unsigned long)family_bits(out->family);
    if (slash && parse_uint(slash + 1, strlen(slash + 1), cidr, &cidr) < 0)
        return out->family == AF_INET ? "prefix length is not 0-32" : "prefix length is not 0-128";
    out->cidr = (uint8_t)cidr;
    if (mask)
        mask_addr(out->addr, out->family, out->cidr);
    return NULL;
}

bool node_config_host_bits(const char *s, char *masked, size_t cap)
{
    struct wg_allowed_ip raw, clean;
    if (node_config_parse_prefix(s, false, &raw) || node_config_parse_prefix(s, true, &clean) ||
        memcmp(raw.addr, clean.addr, sizeof(raw.addr)) == 0)
        return false;
    char a[INET6_ADDRSTRLEN];
    inet_ntop(clean.family, clean.addr, a, sizeof(a));
    snprintf(masked, cap, "%s/%u", a, clean.cidr);
    return true;
}

static const char *parse_port(const char *s, size_t len, uint16_t *out)
{
    unsigned long v;
    if (parse_uint(s, len, 65535, &v) < 0 || v == 0)
        return "port is not 1-65535";
    *out = (uint16_t)v;
    return NULL;
}

const char *node_config_parse_ipport(const char *s, bool allow_port, struct node_ipport *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 53;
    size_t len = strlen(s);
    if (parse_ip(s, len, &out->family, out->addr) == 0)
        return NULL;
    if (!allow_port)
        return "not an IP address";
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || parse_ip(s + 1, (size_t)(close - s - 1), &out->family, out->addr) < 0 ||
            out->family != AF_INET6)
            return "not an IP address or [IPv6]:port";
        if (close[1] == '\0')
            return NULL;
        if (close[1] != ':')
            return "not an IP address or [IPv6]:port";
        colon = close + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':') ||
            parse_ip(s, (size_t)(colon - s), &out->family, out->addr) < 0)
            return "not an IP address, IPv4:port or [IPv6]:port";
    }
    return parse_port(colon + 1, strlen(colon + 1), &out->port);
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
    if (len > 253)
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

const char *node_config_parse_domain(const char *s, bool trailing_dot, char **out)
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

const char *node_config_parse_label(const char *s, char **out)
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

const char *node_config_parse_endpoint(const char *s, struct node_endpoint *out)
{
    const char *host = s, *colon;
    size_t hlen;
    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        int family;
        uint8_t addr[16];
        host = s + 1;
        hlen = close ? (size_t)(close - host) : 0;
        if (!close || parse_ip(host, hlen, &family, addr) < 0 || family != AF_INET6)
            return "not [IPv6]:port";
        if (close[1] != ':')
            return "no :port after [IPv6]";
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return "no :port";
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return "IPv6 endpoints are written [address]:port";
        if (check_domain(s, hlen)) /* IPv4 literals pass this check too */
            return "host is not an IP address or DNS name";
    }
    if (hlen >= sizeof(out->host))
        return "host name too long";
    uint16_t port;
    const char *why = parse_port(colon + 1, strlen(colon + 1), &port);
    if (why)
        return why;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    snprintf(out->port, sizeof(out->port), "%u", port);
    return NULL;
}

/* ---- validation ---- */

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
    return -1;
}

static bool ini(const struct node_config *c)
{
    return c->source == NODE_CONFIG_INI;
}

static const char *file_name(const struct node_config *c)
{
    return c->file ? c->file : "config";
}

/* "wg0.conf:12: [Peer] PublicKey" or "netmap.json: peers[2].public_key" */
static const char *peer_field(struct where *w, const struct node_config *c, size_t i,
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
static const char *peer_ref(struct where *w, const struct node_config *c, size_t i)
{
    if (ini(c))
        snprintf(w->buf, sizeof(w->buf), "the [Peer] at line %u", c->peers[i].line);
    else
        snprintf(w->buf, sizeof(w->buf), "peers[%zu]", i);
    return w->buf;
}

static const char *self_field(struct where *w, const struct node_config *c, const char *ini_key,
                              const char *json_key)
{
    if (ini(c))
        snprintf(w->buf, sizeof(w->buf), "%s: [Interface] %s", file_name(c), ini_key);
    else
        snprintf(w->buf, sizeof(w->buf), "%s: self.%s", file_name(c), json_key);
    return w->buf;
}

static const char *prefix_text(char *buf, size_t cap, const struct wg_allowed_ip *p)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(p->family, p->addr, a, sizeof(a));
    snprintf(buf, cap, "%s/%u", a, p->cidr);
    return buf;
}

static int check_addresses(const struct node_config *c, char *err, size_t errlen)
{
    struct where w;
    char text[64];
    if (c->n_addresses == 0)
        return fail(err, errlen, "%s: missing (the node needs its mesh address)",
                    self_field(&w, c, "Address", "addresses"));
    bool v6 = false;
    for (size_t i = 0; i < c->n_addresses; i++) {
        const struct wg_allowed_ip *a = &c->addresses[i];
        v6 |= a->family == AF_INET6;
        for (size_t j = 0; j < i; j++) {
            const struct wg_allowed_ip *b = &c->addresses[j];
            if (a->family == b->family && memcmp(a->addr, b->addr, 16) == 0)
                return fail(err, errlen, "%s: %s given twice",
                            self_field(&w, c, "Address", "addresses"),
                            prefix_text(text, sizeof(text), a));
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
    const struct wg_allowed_ip *p;
    size_t peer;
};

static int cmp_index(size_t a, size_t b)
{
    return (a > b) - (a < b);
}

static int cmp_key(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int r = memcmp(x->key, y->key, WG_KEY_LEN); /* public keys: no secret to protect */
    return r ? r : cmp_index(x->peer, y->peer);
}

static int cmp_prefix(const void *a, const void *b)
{
    const struct prefix_ref *x = a, *y = b;
    if (x->p->family != y->p->family)
        return x->p->family - y->p->family;
    if (x->p->cidr != y->p->cidr)
        return x->p->cidr - y->p->cidr;
    int r = memcmp(x->p->addr, y->p->addr, 16);
    return r ? r : cmp_index(x->peer, y->peer);
}

static int check_peer_keys(const struct node_config *c, char *err, size_t errlen)
{
    struct where w1, w2;
    uint8_t self_pub[WG_KEY_LEN];
    bool have_self = c->has_private_key && wg_key_public(self_pub, c->private_key) == 0;
    for (size_t i = 0; have_self && i < c->n_peers; i++) {
        if (wg_key_equal(c->peers[i].public_key, self_pub))
            return fail(err, errlen, "%s: this node's own public key (a node is not its own peer)",
                        peer_field(&w1, c, i, "PublicKey", "public_key"));
    }
    if (c->n_peers < 2)
        return 0;
    struct key_ref *refs = malloc(c->n_peers * sizeof(*refs));
    if (!refs)
        return fail(err, errlen, "%s: out of memory", file_name(c));
    for (size_t i = 0; i < c->n_peers; i++)
        refs[i] = (struct key_ref){c->peers[i].public_key, i};
    qsort(refs, c->n_peers, sizeof(*refs), cmp_key);
    /* report the earliest peer that repeats a key, so the message does not depend on sorting */
    size_t later = SIZE_MAX, earlier = 0;
    for (size_t k = 1; k < c->n_peers; k++) {
        if (memcmp(refs[k].key, refs[k - 1].key, WG_KEY_LEN) == 0 && refs[k].peer < later) {
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

static int check_allowed_ips(const struct node_config *c, char *err, size_t errlen)
{
    struct where w1, w2;
    char text[64];
    size_t n = 0;
    for (size_t i = 0; i < c->n_peers; i++)
        n += c->peers[i].n_allowed_ips;
    if (n == 0)
        return 0;
    struct prefix_ref *refs = malloc(n * sizeof(*refs));
    if (!refs)
        return fail(err, errlen, "%s: out of memory", file_name(c));
    n = 0;
    for (size_t i = 0; i < c->n_peers; i++) {
        for (size_t k = 0; k < c->peers[i].n_allowed_ips; k++)
            refs[n++] = (struct prefix_ref){&c->peers[i].allowed_ips[k], i};
    }
    qsort(refs, n, sizeof(*refs), cmp_prefix);
    size_t later = SIZE_MAX, earlier = 0;
    const struct wg_allowed_ip *dup = NULL;
    for (size_t k = 1; k < n; k++) {
        const struct prefix_ref *a = &refs[k - 1], *b = &refs[k];
        if (a->peer != b->peer && a->p->family == b->p->family && a->p->cidr == b->p->cidr &&
            memcmp(a->p->addr, b->p->addr, 16) == 0 && b->peer < later) {
            later = b->peer;
            earlier = a->peer;
            dup = b->p;
        }
    }
    free(refs);
    if (dup)
        return fail(err, errlen, "%s: %s is also given to %s",
                    peer_field(&w1, c, later, "AllowedIPs", "allowed_ips"),
                    prefix_text(text, sizeof(text), dup), peer_ref(&w2, c, earlier));

    for (size_t i = 0; i < c->n_peers; i++) {
        for (size_t k = 0; k < c->peers[i].n_allowed_ips; k++) {
            const struct wg_allowed_ip *p = &c->peers[i].allowed_ips[k];
            if (p->cidr != family_bits(p->family))
                continue;
            for (size_t a = 0; a < c->n_addresses; a++) {
                if (c->addresses[a].family == p->family &&
                    memcmp(c->addresses[a].addr, p->addr, 16) == 0)
                    return fail(err, errlen, "%s: %s is this node's own address",
                                peer_field(&w1, c, i, "AllowedIPs", "allowed_ips"),
                                prefix_text(text, sizeof(text), p));
            }
        }
    }
    return 0;
}

static int check_names(const struct node_config *c, char *err, size_t errlen)
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

static int check_routes(const struct node_config *c, char *err, size_t errlen)
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

int node_config_validate(const struct node_config *c, char *err, size_t errlen)
{
    if (check_addresses(c, err, errlen) < 0 || check_peer_keys(c, err, errlen) < 0 ||
        check_allowed_ips(c, err, errlen) < 0 || check_names(c, err, errlen) < 0 ||
        check_routes(c, err, errlen) < 0)
        return -1;
    return 0;
}
