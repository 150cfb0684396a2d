/*
 * The native JSON netmap (--netmap FILE), richer than wg-quick: several endpoints per peer,
 * MagicDNS names, split DNS, extra records. examples/netmap.json shows every field.
 * Unknown fields are errors (a typo must not silently drop a setting), and every error names
 * its JSON path: `netmap.json: peers[1].allowed_ips[0]: '10.0.0.0/33': prefix length is not 0-32`.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sodium.h>

#define NETMAP_VERSION 1
#define NETMAP_MAX_FILE (64u << 20)

struct nm {
    struct cfg_config *c;
    const char *file;
    const char *base_dir; /* NULL: private_key_file refused */
    bool inline_key;
    char path[512];
    size_t plen;
    char *err;
    size_t errlen;
    int code; /* what the parser returns: BASE_ECONFIG, or -ENOMEM */
};

static int nm_fail(struct nm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int nm_fail(struct nm *m, const char *fmt, ...)
{
    char where[sizeof(m->path) + 2] = "";
    if (m->plen)
        snprintf(where, sizeof(where), ": %s", m->path);
    va_list ap;
    va_start(ap, fmt);
    m->code = cfg_vfail(m->err, m->errlen, m->file, where, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(struct nm *m)
{
    nm_fail(m, "out of memory");
    m->code = -ENOMEM;
    return -1;
}

/* ---- the JSON path of the value being read ---- */

static size_t push_key(struct nm *m, const char *key)
{
    char b[80];
    size_t old = m->plen;
    int n = snprintf(m->path + old, sizeof(m->path) - old, "%s%s", old ? "." : "",
                     cfg_shown(b, sizeof(b), key));
    m->plen = n < 0                                ? old
              : old + (size_t)n >= sizeof(m->path) ? sizeof(m->path) - 1
                                                   : old + (size_t)n;
    return old;
}

/* Map keys that are themselves names with dots: routes["corp.example."] */
static size_t push_name(struct nm *m, const char *key)
{
    char b[80];
    size_t old = m->plen;
    int n =
        snprintf(m->path + old, sizeof(m->path) - old, "[\"%s\"]", cfg_shown(b, sizeof(b), key));
    m->plen = n < 0                                ? old
              : old + (size_t)n >= sizeof(m->path) ? sizeof(m->path) - 1
                                                   : old + (size_t)n;
    return old;
}

static size_t push_index(struct nm *m, size_t i)
{
    size_t old = m->plen;
    int n = snprintf(m->path + old, sizeof(m->path) - old, "[%zu]", i);
    m->plen = n < 0                                ? old
              : old + (size_t)n >= sizeof(m->path) ? sizeof(m->path) - 1
                                                   : old + (size_t)n;
    return old;
}

static void pop(struct nm *m, size_t old)
{
    m->plen = old;
    m->path[old] = '\0';
}

/* ---- typed access ---- */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Fails on any field of obj not in allowed (NULL-terminated). */
static int only_fields(struct nm *m, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            push_key(m, key);
            return nm_fail(m, "unknown field");
        }
    }
    return 0;
}

static int want_type(struct nm *m, const json_t *v, json_type type, const char *what)
{
    if (json_typeof(v) != type)
        return nm_fail(m, "%s, not %s", what, type_name(v));
    return 0;
}

static int get_uint(struct nm *m, const json_t *v, long long min, long long max, uint16_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return nm_fail(m, "not an integer from %lld to %lld", min, max);
    *out = (uint16_t)json_integer_value(v);
    return 0;
}

static int get_key(struct nm *m, const json_t *v, uint8_t out[CFG_KEY_LEN])
{
    if (want_type(m, v, JSON_STRING, "a base64 key") < 0)
        return -1;
    if (cfg_key_from_base64(out, json_string_value(v), json_string_length(v)) < 0)
        return nm_fail(m, "not a base64 key (44 characters)");
    return 0;
}

/* A string that holds no NUL (jansson allows \u0000 only when asked to, but be sure). */
static const char *get_string(struct nm *m, const json_t *v, const char *what)
{
    if (want_type(m, v, JSON_STRING, what) < 0)
        return NULL;
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        nm_fail(m, "contains a NUL character");
        return NULL;
    }
    return json_string_value(v);
}

static int get_label(struct nm *m, const json_t *v, char **out)
{
    char b[80];
    const char *s = get_string(m, v, "a name");
    if (!s)
        return -1;
    const char *why = cfg_parse_label(s, out);
    return why ? nm_fail(m, "'%s': %s", cfg_shown(b, sizeof(b), s), why) : 0;
}

static int get_domain(struct nm *m, const json_t *v, bool dot, char **out)
{
    char b[80];
    const char *s = get_string(m, v, "a DNS name");
    if (!s)
        return -1;
    const char *why = cfg_parse_domain(s, dot, out);
    return why ? nm_fail(m, "'%s': %s", cfg_shown(b, sizeof(b), s), why) : 0;
}

/* Calls item(m, element, ctx) for each element of the array v, with the path extended. */
static int each(struct nm *m, const json_t *v, const char *what,
                int (*item)(struct nm *m, const json_t *e, void *ctx), void *ctx)
{
    if (want_type(m, v, JSON_ARRAY, what) < 0)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)v, i, e)
    {
        size_t old = push_index(m, i);
        if (item(m, e, ctx) < 0)
            return -1;
        pop(m, old);
    }
    return 0;
}

/* Calls field(m, key, value, ctx) for each field of the object obj, with the path extended. */
static int each_field(struct nm *m, const json_t *obj,
                      int (*field)(struct nm *m, const char *key, const json_t *v, void *ctx),
                      void *ctx)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t old = push_key(m, key);
        if (field(m, key, v, ctx) < 0)
            return -1;
        pop(m, old);
    }
    return 0;
}

/* ---- lists ---- */

struct prefix_list {
    struct base_prefix **arr;
    size_t *n;
    bool mask;
};

static int item_prefix(struct nm *m, const json_t *e, void *ctx)
{
    struct prefix_list *l = ctx;
    char b[80];
    const char *s = get_string(m, e, "an IP prefix");
    if (!s)
        return -1;
    struct base_prefix p;
    bool host_bits = false;
    const char *why = cfg_parse_prefix(s, l->mask, &p, &host_bits);
    if (why)
        return nm_fail(m, "'%s': %s", cfg_shown(b, sizeof(b), s), why);
    char text[BASE_PREFIX_STRLEN];
    if (host_bits &&
        cfg_warn(m->c, "%s: %s: '%s' has bits set beyond its prefix: read as %s", m->file, m->path,
                 cfg_shown(b, sizeof(b), s), base_prefix_format(&p, text, sizeof(text))) < 0)
        return oom(m);
    struct base_prefix *slot = cfg_push(l->arr, l->n, sizeof(*slot));
    if (!slot)
        return oom(m);
    *slot = p;
    return 0;
}

struct ipport_list {
    struct base_endpoint **arr;
    size_t *n;
};

static int item_resolver(struct nm *m, const json_t *e, void *ctx)
{
    struct ipport_list *l = ctx;
    char b[80];
    const char *s = get_string(m, e, "an IP address");
    if (!s)
        return -1;
    struct base_endpoint ip;
    const char *why = cfg_parse_resolver(s, true, &ip);
    if (why)
        return nm_fail(m, "'%s': %s", cfg_shown(b, sizeof(b), s), why);
    struct base_endpoint *slot = cfg_push(l->arr, l->n, sizeof(*slot));
    if (!slot)
        return oom(m);
    *slot = ip;
    return 0;
}

static int item_endpoint(struct nm *m, const json_t *e, void *ctx)
{
    struct cfg_peer *peer = ctx;
    char b[80];
    const char *s = get_string(m, e, "host:port");
    if (!s)
        return -1;
    struct cfg_hostport ep;
    const char *why = cfg_parse_endpoint(s, &ep);
    if (why)
        return nm_fail(m, "'%s': %s", cfg_shown(b, sizeof(b), s), why);
    struct cfg_hostport *slot = cfg_push(&peer->endpoints, &peer->n_endpoints, sizeof(*slot));
    if (!slot)
        return oom(m);
    *slot = ep;
    return 0;
}

static int item_search(struct nm *m, const json_t *e, void *ctx)
{
    (void)ctx;
    char *domain = NULL;
    if (get_domain(m, e, false, &domain) < 0)
        return -1;
    char **slot = cfg_push(&m->c->search, &m->c->n_search, sizeof(*slot));
    if (!slot) {
        free(domain);
        return oom(m);
    }
    *slot = domain;
    return 0;
}

/* ---- self ---- */

static int read_key_file(struct nm *m, const json_t *v)
{
    const char *name = get_string(m, v, "a file name");
    if (!name)
        return -1;
    if (!m->base_dir)
        return nm_fail(m, "not allowed here (the netmap was not read from a file)");
    char path[4096], why[512];
    mode_t mode = 0;
    if (cfg_read_key_file(m->base_dir, name, m->c->private_key, path, sizeof(path), &mode, why,
                          sizeof(why)) < 0)
        return nm_fail(m, "%s", why);
    if ((mode & 077) && cfg_warn(m->c, "%s: %s: %s is readable by other users (chmod 600 it)",
                                 m->file, m->path, path) < 0)
        return oom(m);
    return 0;
}

static int self_field(struct nm *m, const char *key, const json_t *v, void *ctx)
{
    struct cfg_config *c = ctx;
    int r = 0;
    if (strcmp(key, "name") == 0) {
        r = get_label(m, v, &c->name);
    } else if (strcmp(key, "addresses") == 0) {
        struct prefix_list l = {&c->addresses, &c->n_addresses, false};
        r = each(m, v, "an array of addresses", item_prefix, &l);
    } else if (strcmp(key, "private_key") == 0) {
        r = get_key(m, v, c->private_key);
        m->inline_key = true;
        c->has_private_key = r == 0;
    } else if (strcmp(key, "private_key_file") == 0) {
        r = read_key_file(m, v);
        c->has_private_key = r == 0;
    } else if (strcmp(key, "listen_port") == 0) {
        r = get_uint(m, v, 0, 65535, &c->listen_port);
    } else if (strcmp(key, "mtu") == 0) {
        r = get_uint(m, v, 576, 65535, &c->mtu);
    }
    return r;
}

static int parse_self(struct nm *m, const json_t *self)
{
    static const char *const fields[] = {
        "name", "addresses", "private_key", "private_key_file", "listen_port", "mtu", NULL};
    if (want_type(m, self, JSON_OBJECT, "an object") < 0 || only_fields(m, self, fields) < 0)
        return -1;
    if (json_object_get(self, "private_key") && json_object_get(self, "private_key_file"))
        return nm_fail(m, "private_key and private_key_file exclude each other");
    return each_field(m, self, self_field, m->c);
}

/* ---- peers ---- */

static int peer_field(struct nm *m, const char *key, const json_t *v, void *ctx)
{
    struct cfg_peer *p = ctx;
    int r = 0;
    if (strcmp(key, "name") == 0) {
        r = get_label(m, v, &p->name);
    } else if (strcmp(key, "public_key") == 0) {
        r = get_key(m, v, p->public_key);
    } else if (strcmp(key, "preshared_key") == 0) {
        r = get_key(m, v, p->preshared_key);
        p->has_preshared_key = r == 0;
    } else if (strcmp(key, "endpoints") == 0) {
        r = each(m, v, "an array of host:port", item_endpoint, p);
    } else if (strcmp(key, "allowed_ips") == 0) {
        struct prefix_list l = {&p->allowed_ips, &p->n_allowed_ips, true};
        r = each(m, v, "an array of IP prefixes", item_prefix, &l);
    } else if (strcmp(key, "keepalive") == 0) {
        r = get_uint(m, v, 0, 65535, &p->persistent_keepalive);
    }
    return r;
}

static int item_peer(struct nm *m, const json_t *e, void *ctx)
{
    (void)ctx;
    static const char *const fields[] = {
        "name", "public_key", "preshared_key", "endpoints", "allowed_ips", "keepalive", NULL};
    if (want_type(m, e, JSON_OBJECT, "an object") < 0 || only_fields(m, e, fields) < 0)
        return -1;
    if (!json_object_get(e, "public_key")) {
        size_t old = push_key(m, "public_key");
        nm_fail(m, "missing");
        pop(m, old);
        return -1;
    }
    struct cfg_peer *p = cfg_push(&m->c->peers, &m->c->n_peers, sizeof(*p));
    if (!p)
        return oom(m);
    return each_field(m, e, peer_field, p);
}

/* ---- dns ---- */

static int parse_routes(struct nm *m, const json_t *routes)
{
    if (want_type(m, routes, JSON_OBJECT, "an object of suffix: [resolvers]") < 0)
        return -1;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)routes, key, v)
    {
        size_t old = push_name(m, key);
        struct cfg_dns_route *rt = cfg_push(&m->c->routes, &m->c->n_routes, sizeof(*rt));
        if (!rt)
            return oom(m);
        char b[80];
        const char *why = cfg_parse_domain(key, true, &rt->suffix);
        if (why)
            return nm_fail(m, "'%s': %s", cfg_shown(b, sizeof(b), key), why);
        struct ipport_list l = {&rt->resolvers, &rt->n_resolvers};
        if (each(m, v, "an array of resolvers", item_resolver, &l) < 0)
            return -1;
        if (rt->n_resolvers == 0)
            return nm_fail(m, "no resolvers for this suffix");
        pop(m, old);
    }
    return 0;
}

static int item_record(struct nm *m, const json_t *e, void *ctx)
{
    (void)ctx;
    static const char *const fields[] = {"name", "type", "value", NULL};
    static const char *const required[] = {"name", "type", "value"};
    if (want_type(m, e, JSON_OBJECT, "an object") < 0 || only_fields(m, e, fields) < 0)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (!json_object_get(e, required[i])) {
            push_key(m, required[i]);
            return nm_fail(m, "missing");
        }
    }
    struct cfg_dns_record *rec = cfg_push(&m->c->records, &m->c->n_records, sizeof(*rec));
    if (!rec)
        return oom(m);
    size_t old = push_key(m, "name");
    if (get_domain(m, json_object_get(e, "name"), true, &rec->name) < 0)
        return -1;
    pop(m, old);

    push_key(m, "type");
    const char *type = get_string(m, json_object_get(e, "type"), "\"A\" or \"AAAA\"");
    if (!type)
        return -1;
    int family = strcmp(type, "A") == 0 ? AF_INET : strcmp(type, "AAAA") == 0 ? AF_INET6 : 0;
    if (!family)
        return nm_fail(m, "not \"A\" or \"AAAA\"");
    pop(m, old);

    push_key(m, "value");
    char b[80];
    const char *value = get_string(m, json_object_get(e, "value"), "an IP address");
    if (!value)
        return -1;
    if (base_addr_parse(&rec->addr, value, strlen(value)) != 0 || rec->addr.family != family)
        return nm_fail(m, "'%s': not an %s address (type %s)", cfg_shown(b, sizeof(b), value),
                       family == AF_INET ? "IPv4" : "IPv6", type);
    pop(m, old);
    return 0;
}

static int dns_field(struct nm *m, const char *key, const json_t *v, void *ctx)
{
    struct cfg_config *c = ctx;
    int r = 0;
    if (strcmp(key, "suffix") == 0) {
        r = get_domain(m, v, true, &c->dns_suffix);
    } else if (strcmp(key, "resolvers") == 0) {
        struct ipport_list l = {&c->resolvers, &c->n_resolvers};
        r = each(m, v, "an array of resolvers", item_resolver, &l);
    } else if (strcmp(key, "routes") == 0) {
        r = parse_routes(m, v);
    } else if (strcmp(key, "search") == 0) {
        r = each(m, v, "an array of domains", item_search, NULL);
    } else if (strcmp(key, "extra_records") == 0) {
        r = each(m, v, "an array of records", item_record, NULL);
    }
    return r;
}

static int parse_dns(struct nm *m, const json_t *dns)
{
    static const char *const fields[] = {"suffix", "resolvers",     "routes",
                                         "search", "extra_records", NULL};
    if (want_type(m, dns, JSON_OBJECT, "an object") < 0 || only_fields(m, dns, fields) < 0)
        return -1;
    return each_field(m, dns, dns_field, m->c);
}

/* ---- top ---- */

static int parse_top(struct nm *m, const json_t *root)
{
    static const char *const fields[] = {"version", "self", "peers", "dns", NULL};
    if (!json_is_object(root))
        return nm_fail(m, "the netmap is a JSON object, not %s", type_name(root));
    if (only_fields(m, root, fields) < 0)
        return -1;
    const json_t *version = json_object_get(root, "version");
    size_t old = push_key(m, "version");
    if (!version)
        return nm_fail(m, "missing");
    if (!json_is_integer(version) || json_integer_value(version) != NETMAP_VERSION) {
        if (json_is_integer(version))
            return nm_fail(m, "%lld is not supported (this tunless reads version %d)",
                           (long long)json_integer_value(version), NETMAP_VERSION);
        return nm_fail(m, "not an integer");
    }
    pop(m, old);

    const json_t *self = json_object_get(root, "self");
    old = push_key(m, "self");
    if (!self)
        return nm_fail(m, "missing");
    if (parse_self(m, self) < 0)
        return -1;
    pop(m, old);

    const json_t *peers = json_object_get(root, "peers");
    if (peers) {
        old = push_key(m, "peers");
        if (each(m, peers, "an array of peers", item_peer, NULL) < 0)
            return -1;
        pop(m, old);
    }
    const json_t *dns = json_object_get(root, "dns");
    if (dns) {
        old = push_key(m, "dns");
        if (parse_dns(m, dns) < 0)
            return -1;
        pop(m, old);
    }
    return 0;
}

/* jansson frees its strings without wiping them: wipe the secret ones first. */
static void wipe_string(json_t *v)
{
    if (json_is_string(v))
        sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

static void wipe_secrets(json_t *root)
{
    wipe_string(json_object_get(json_object_get(root, "self"), "private_key"));
    size_t i;
    json_t *peer;
    json_array_foreach(json_object_get(root, "peers"), i, peer)
        wipe_string(json_object_get(peer, "preshared_key"));
}

static int parse(struct nm *m, const char *buf, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (m->err && m->errlen)
            snprintf(m->err, m->errlen, "%s:%d:%d: not valid JSON: %s", m->file, jerr.line,
                     jerr.column, jerr.text);
        return -1;
    }
    int r = parse_top(m, root);
    wipe_secrets(root);
    json_decref(root);
    return r;
}

static int parse_netmap(const char *name, const char *buf, size_t len, const char *base_dir,
                        struct cfg_config *out, bool *inline_key, char *err, size_t errlen)
{
    struct nm m = {.c = out,
                   .file = name ? name : "netmap",
                   .base_dir = base_dir,
                   .err = err,
                   .errlen = errlen,
                   .code = BASE_ECONFIG};
    int r = cfg_begin(out, CFG_SOURCE_NETMAP, m.file);
    if (r < 0) {
        oom(&m);
    } else if (parse(&m, buf, len) < 0) {
        r = m.code;
    } else {
        r = cfg_validate(out, err, errlen);
    }
    if (r < 0)
        cfg_free(out);
    else
        *inline_key = m.inline_key;
    return r;
}

int cfg_parse_netmap_buffer(const char *name, const char *buf, size_t len, const char *base_dir,
                            struct cfg_config *out, char *err, size_t errlen)
{
    bool inline_key;
    return parse_netmap(name, buf, len, base_dir, out, &inline_key, err, errlen);
}

int cfg_parse_netmap(const char *path, struct cfg_config *out, char *err, size_t errlen)
{
    char *buf, dir[4096];
    size_t len = 0;
    mode_t mode = 0;
    bool inline_key = false;
    memset(out, 0, sizeof(*out));
    cfg_dir_of(path, dir, sizeof(dir));
    int r = cfg_read_file(path, NETMAP_MAX_FILE, &buf, &len, &mode, err, errlen);
    if (r < 0)
        return r;
    r = parse_netmap(path, buf, len, dir, out, &inline_key, err, errlen);
    sodium_memzero(buf, len);
    free(buf);
    return r == 0 && inline_key ? cfg_warn_mode(out, path, mode, err, errlen) : r;
}
