/*
 * wg-quick(8) configuration files: [Interface] and [Peer] sections of `Key = Value` lines,
 * keys case-insensitive, '#' starts a comment, lists separated by commas. Read as wg-quick and
 * wg(8) read them, plus one extension that keeps the file valid for them: a `# Name = db`
 * comment line names the peer (or, in [Interface], this node) for MagicDNS.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <sodium.h>

#define INI_MAX_FILE (16u << 20)

enum section { SEC_NONE = 0, SEC_INTERFACE, SEC_PEER, SEC_SERVICE };

struct ini {
    struct cfg_config *c;
    const char *file;
    unsigned line;
    enum section section;
    unsigned interface_line; /* 0 = no [Interface] yet */
    unsigned seen[32];       /* line where each key of the current section was given */
    unsigned name_line;      /* line of the current section's `# Name =` */
    unsigned service_seen;   /* keys given in the current wireproxy section (wireproxy.c) */
    const char *base_dir;    /* resolves a relative PrivateKeyFile; NULL refuses it */
    bool expand_env;
    bool inline_secret; /* a key or password written in the file itself: it must be 0600 */
    char *err;
    size_t errlen;
    int code; /* what the parser returns: BASE_ECONFIG, or -ENOMEM */
};

static int ini_fail(struct ini *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int ini_fail(struct ini *p, const char *fmt, ...)
{
    char where[16] = "";
    if (p->line)
        snprintf(where, sizeof(where), ":%u", p->line);
    va_list ap;
    va_start(ap, fmt);
    p->code = cfg_vfail(p->err, p->errlen, p->file, where, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(struct ini *p)
{
    ini_fail(p, "out of memory");
    p->code = -ENOMEM;
    return -1;
}

static struct cfg_peer *cur_peer(struct ini *p)
{
    return &p->c->peers[p->c->n_peers - 1];
}

/* ---- values ---- */

static int parse_key(struct ini *p, const char *key, const char *v, uint8_t out[CFG_KEY_LEN])
{
    if (cfg_key_from_base64(out, v, strlen(v)) < 0)
        return ini_fail(p, "%s: not a base64 key (44 characters)", key);
    return 0;
}

static int parse_number(struct ini *p, const char *key, const char *v, unsigned long min,
                        unsigned long max, uint16_t *out)
{
    char b[80];
    unsigned long n = 0;
    size_t len = strlen(v);
    bool ok = len > 0 && len <= 5;
    for (size_t i = 0; ok && i < len; i++) {
        ok = isdigit((unsigned char)v[i]);
        n = n * 10 + (unsigned long)(v[i] - '0');
    }
    if (!ok || n < min || n > max)
        return ini_fail(p, "%s: '%s': not a number from %lu to %lu", key,
                        cfg_shown(b, sizeof(b), v), min, max);
    *out = (uint16_t)n;
    return 0;
}

/* Calls fn for each comma-separated item, trimmed. */
static int each_item(struct ini *p, const char *key, char *v,
                     int (*fn)(struct ini *, const char *, char *))
{
    if (*v == '\0')
        return 0;
    for (;;) {
        char *comma = strchr(v, ',');
        if (comma)
            *comma = '\0';
        char *end = v + strlen(v);
        while (isspace((unsigned char)*v))
            v++;
        while (end > v && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*v == '\0')
            return ini_fail(p, "%s: empty item in the list", key);
        if (fn(p, key, v) < 0)
            return -1;
        if (!comma)
            return 0;
        v = comma + 1;
    }
}

static int add_prefix(struct ini *p, const char *key, const char *v, bool mask,
                      struct base_prefix **arr, size_t *n)
{
    char b[80];
    struct base_prefix pfx;
    bool host_bits = false;
    const char *why = cfg_parse_prefix(v, mask, &pfx, &host_bits);
    if (why)
        return ini_fail(p, "%s: '%s': %s", key, cfg_shown(b, sizeof(b), v), why);
    char text[BASE_PREFIX_STRLEN];
    if (host_bits && cfg_warn(p->c, "%s:%u: %s: '%s' has bits set beyond its prefix: read as %s",
                              p->file, p->line, key, cfg_shown(b, sizeof(b), v),
                              base_prefix_format(&pfx, text, sizeof(text))) < 0)
        return oom(p);
    struct base_prefix *slot = cfg_push(arr, n, sizeof(*slot));
    if (!slot)
        return oom(p);
    *slot = pfx;
    return 0;
}

static int item_address(struct ini *p, const char *key, char *v)
{
    return add_prefix(p, key, v, false, &p->c->addresses, &p->c->n_addresses);
}

static int item_allowed_ip(struct ini *p, const char *key, char *v)
{
    struct cfg_peer *peer = cur_peer(p);
    return add_prefix(p, key, v, true, &peer->allowed_ips, &peer->n_allowed_ips);
}

static int item_allowed_ip_of(struct ini *p, size_t i, char *v)
{
    struct cfg_peer *peer = &p->c->peers[i];
    return add_prefix(p, "AllowedIPs", v, true, &peer->allowed_ips, &peer->n_allowed_ips);
}

/* wg-quick: IP entries of DNS= are resolvers, anything else a search domain. */
static int item_dns(struct ini *p, const char *key, char *v)
{
    char b[80];
    struct base_endpoint ip;
    if (!cfg_parse_resolver(v, false, &ip)) {
        struct base_endpoint *slot = cfg_push(&p->c->resolvers, &p->c->n_resolvers, sizeof(*slot));
        if (!slot)
            return oom(p);
        *slot = ip;
        return 0;
    }
    char *domain = NULL;
    const char *why = cfg_parse_domain(v, false, &domain);
    if (why)
        return ini_fail(p, "%s: '%s': not an IP address or search domain (%s)", key,
                        cfg_shown(b, sizeof(b), v), why);
    char **slot = cfg_push(&p->c->search, &p->c->n_search, sizeof(*slot));
    if (!slot) {
        free(domain);
        return oom(p);
    }
    *slot = domain;
    return 0;
}

/* ---- keys ---- */

static int on_private_key(struct ini *p, const char *key, char *v)
{
    if (p->c->has_private_key)
        return ini_fail(p, "%s: PrivateKeyFile is given too; keep one", key);
    if (parse_key(p, key, v, p->c->private_key) < 0)
        return -1;
    p->c->has_private_key = true;
    p->inline_secret = true;
    return 0;
}

/* Relative to the configuration's directory, as wireproxy reads it; 0600 like the file itself. */
static int on_private_key_file(struct ini *p, const char *key, char *v)
{
    if (!p->base_dir)
        return ini_fail(p, "%s: not allowed here (the configuration was not read from a file)",
                        key);
    if (p->c->has_private_key)
        return ini_fail(p, "%s: PrivateKey is given too; keep one", key);
    char path[4096], why[512];
    mode_t mode = 0;
    if (cfg_read_key_file(p->base_dir, v, p->c->private_key, path, sizeof(path), &mode, why,
                          sizeof(why)) < 0)
        return ini_fail(p, "%s: %s", key, why);
    if ((mode & 077) && cfg_warn(p->c, "%s:%u: %s: %s is readable by other users (chmod 600 it)",
                                 p->file, p->line, key, path) < 0)
        return oom(p);
    p->c->has_private_key = true;
    return 0;
}

static int on_address(struct ini *p, const char *key, char *v)
{
    return each_item(p, key, v, item_address);
}

static int on_listen_port(struct ini *p, const char *key, char *v)
{
    return parse_number(p, key, v, 0, 65535, &p->c->listen_port);
}

static int on_dns(struct ini *p, const char *key, char *v)
{
    return each_item(p, key, v, item_dns);
}

static int on_mtu(struct ini *p, const char *key, char *v)
{
    return parse_number(p, key, v, 576, 65535, &p->c->mtu);
}

static int on_ignored(struct ini *p, const char *key, char *v)
{
    (void)v;
    if (cfg_warn(p->c, "%s:%u: %s: ignored (tunless has no TUN device)", p->file, p->line, key) < 0)
        return oom(p);
    return 0;
}

static int on_public_key(struct ini *p, const char *key, char *v)
{
    return parse_key(p, key, v, cur_peer(p)->public_key);
}

static int on_preshared_key(struct ini *p, const char *key, char *v)
{
    if (parse_key(p, key, v, cur_peer(p)->preshared_key) < 0)
        return -1;
    p->inline_secret = true;
    cur_peer(p)->has_preshared_key = true;
    return 0;
}

static int on_endpoint(struct ini *p, const char *key, char *v)
{
    char b[80];
    struct cfg_hostport ep;
    const char *why = cfg_parse_endpoint(v, &ep);
    if (why)
        return ini_fail(p, "%s: '%s': %s", key, cfg_shown(b, sizeof(b), v), why);
    struct cfg_peer *peer = cur_peer(p);
    struct cfg_hostport *slot = cfg_push(&peer->endpoints, &peer->n_endpoints, sizeof(*slot));
    if (!slot)
        return oom(p);
    *slot = ep;
    return 0;
}

static int on_allowed_ips(struct ini *p, const char *key, char *v)
{
    return each_item(p, key, v, item_allowed_ip);
}

static int on_keepalive(struct ini *p, const char *key, char *v)
{
    char b[80];
    uint16_t n = 0;
    if (strcasecmp(v, "off") != 0 && parse_number(p, key, v, 0, 65535, &n) < 0)
        return ini_fail(p, "%s: '%s': not a number of seconds (0-65535) or off", key,
                        cfg_shown(b, sizeof(b), v));
    cur_peer(p)->persistent_keepalive = n;
    return 0;
}

struct key_def {
    const char *name;
    enum section section;
    bool repeatable; /* wg-quick appends repeated list keys; single values may appear once */
    int (*handle)(struct ini *p, const char *key, char *value);
};

static const struct key_def keys[] = {
    {"PrivateKey", SEC_INTERFACE, false, on_private_key},
    {"PrivateKeyFile", SEC_INTERFACE, false, on_private_key_file},
    {"Address", SEC_INTERFACE, true, on_address},
    {"ListenPort", SEC_INTERFACE, false, on_listen_port},
    {"DNS", SEC_INTERFACE, true, on_dns},
    {"MTU", SEC_INTERFACE, false, on_mtu},
    {"PreUp", SEC_INTERFACE, true, on_ignored},
    {"PostUp", SEC_INTERFACE, true, on_ignored},
    {"PreDown", SEC_INTERFACE, true, on_ignored},
    {"PostDown", SEC_INTERFACE, true, on_ignored},
    {"Table", SEC_INTERFACE, false, on_ignored},
    {"FwMark", SEC_INTERFACE, false, on_ignored},
    {"SaveConfig", SEC_INTERFACE, false, on_ignored},
    {"PublicKey", SEC_PEER, false, on_public_key},
    {"PresharedKey", SEC_PEER, false, on_preshared_key},
    {"Endpoint", SEC_PEER, false, on_endpoint},
    {"AllowedIPs", SEC_PEER, true, on_allowed_ips},
    {"PersistentKeepalive", SEC_PEER, false, on_keepalive},
};

_Static_assert(sizeof(keys) / sizeof(keys[0]) <= sizeof(((struct ini *)0)->seen) / sizeof(unsigned),
               "struct ini.seen must have room for every key");

static size_t key_index(const char *name)
{
    size_t k = 0;
    while (k < sizeof(keys) / sizeof(keys[0]) && strcasecmp(keys[k].name, name) != 0)
        k++;
    return k;
}

static const char *section_name(enum section s)
{
    return s == SEC_INTERFACE ? "[Interface]" : s == SEC_PEER ? "[Peer]" : "wireproxy section";
}

/* ---- lines ---- */

static char *trim(char *s)
{
    char *end = s + strlen(s);
    while (isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Checks the section being left is complete. */
static int end_section(struct ini *p)
{
    if (p->section == SEC_SERVICE) {
        char why[160];
        const struct cfg_service *svc = &p->c->services[p->c->n_services - 1];
        if (cfg_wp_end(svc, p->service_seen, why, sizeof(why))) {
            p->line = svc->line;
            return ini_fail(p, "%s", why);
        }
    }
    if (p->section == SEC_PEER && !p->seen[key_index("PublicKey")]) {
        unsigned at = cur_peer(p)->line;
        p->line = at;
        return ini_fail(p, "[Peer] has no PublicKey");
    }
    return 0;
}

static int begin_section(struct ini *p, const char *header)
{
    if (end_section(p) < 0)
        return -1;
    memset(p->seen, 0, sizeof(p->seen));
    p->name_line = 0;
    if (strcasecmp(header, "[Interface]") == 0) {
        if (p->interface_line)
            return ini_fail(p, "[Interface] given twice (first at line %u)", p->interface_line);
        p->interface_line = p->line;
        p->section = SEC_INTERFACE;
        return 0;
    }
    if (strcasecmp(header, "[Peer]") == 0) {
        struct cfg_peer *peer = cfg_push(&p->c->peers, &p->c->n_peers, sizeof(*peer));
        if (!peer)
            return oom(p);
        peer->line = p->line;
        p->section = SEC_PEER;
        return 0;
    }
    enum cfg_service_kind kind = cfg_wp_section(header);
    if (kind) {
        struct cfg_service *svc = cfg_push(&p->c->services, &p->c->n_services, sizeof(*svc));
        if (!svc)
            return oom(p);
        svc->kind = kind;
        svc->line = p->line;
        p->service_seen = 0;
        p->section = SEC_SERVICE;
        return 0;
    }
    char b[80];
    if (strcasecmp(header, "[STDIOTunnel]") == 0)
        return ini_fail(p, "[STDIOTunnel]: not supported; `tunless nc HOST PORT` does that job "
                           "next to a running node");
    return ini_fail(p,
                    "%s: unknown section (expected [Interface], [Peer], or wireproxy's [Socks5], "
                    "[http], [TCPClientTunnel], [TCPServerTunnel], [UDPProxyTunnel])",
                    cfg_shown(b, sizeof(b), header));
}

/* `# Name = db`: names the current peer, or this node in [Interface]. Names that are not DNS
 * labels are left alone with a warning: other tools write `# Name = Alice's phone` too. */
static int name_comment(struct ini *p, char *comment)
{
    char *s = trim(comment + 1);
    if (strncasecmp(s, "name", 4) != 0)
        return 0;
    s = trim(s + 4);
    if (*s != '=' || p->section == SEC_NONE || p->section == SEC_SERVICE)
        return 0;
    s = trim(s + 1);
    char **slot = p->section == SEC_PEER ? &cur_peer(p)->name : &p->c->name;
    if (p->name_line)
        return ini_fail(p, "# Name: given twice in this section (first at line %u)", p->name_line);
    char b[80];
    const char *why = cfg_parse_label(s, slot);
    if (why && strcmp(why, "out of memory") == 0)
        return oom(p);
    if (why) {
        if (cfg_warn(p->c, "%s:%u: # Name: '%s': %s; no MagicDNS name from it", p->file, p->line,
                     cfg_shown(b, sizeof(b), s), why) < 0)
            return oom(p);
        return 0;
    }
    p->name_line = p->line;
    return 0;
}

/* ---- $VAR expansion (--expand-env) ---- */

static bool name_char(char ch, bool first)
{
    return ch == '_' || isalpha((unsigned char)ch) || (!first && isdigit((unsigned char)ch));
}

/* Appends the value of the variable named at *s ($NAME or ${NAME}) to out; moves *s past it. */
static int expand_one(struct ini *p, const char *key, const char **s, char *out, size_t *n,
                      size_t cap)
{
    const char *v = *s + 1;
    bool braced = *v == '{';
    v += braced;
    size_t len = 0;
    while (name_char(v[len], len == 0))
        len++;
    if (len == 0 || len > 255 || (braced && v[len] != '}'))
        return ini_fail(p, "%s: '$' must start $NAME or ${NAME} (write $$ for a literal $)", key);
    char name[256];
    memcpy(name, v, len);
    name[len] = '\0';
    const char *val = getenv(name);
    if (!val)
        return ini_fail(p, "%s: $%s is not set (--expand-env)", key, name);
    size_t vl = strlen(val);
    if (*n + vl >= cap)
        return ini_fail(p, "%s: the value of $%s is too long", key, name);
    memcpy(out + *n, val, vl);
    *n += vl;
    *s = v + len + braced;
    return 0;
}

/* Expands v into out (cap bytes); "$$" is a literal "$". */
static int expand_env(struct ini *p, const char *key, const char *v, char *out, size_t cap)
{
    size_t n = 0;
    while (*v) {
        if (v[0] == '$' && v[1] == '$') {
            v += 2;
            if (n + 1 >= cap)
                return ini_fail(p, "%s: value too long", key);
            out[n++] = '$';
        } else if (*v == '$') {
            if (expand_one(p, key, &v, out, &n, cap) < 0)
                return -1;
        } else {
            if (n + 1 >= cap)
                return ini_fail(p, "%s: value too long", key);
            out[n++] = *v++;
        }
    }
    out[n] = '\0';
    return 0;
}

static int handle_value(struct ini *p, const struct key_def *def, char *value)
{
    if (!p->expand_env || !strchr(value, '$'))
        return def->handle(p, def->name, value);
    char buf[4096];
    int r = expand_env(p, def->name, value, buf, sizeof(buf));
    if (r == 0)
        r = def->handle(p, def->name, trim(buf));
    sodium_memzero(buf, sizeof(buf)); /* it may hold a key */
    return r;
}

static int service_key(struct ini *p, const char *key, char *value)
{
    char why[160], buf[4096];
    const char *v = value;
    if (p->expand_env && strchr(value, '$')) {
        if (expand_env(p, key, value, buf, sizeof(buf)) < 0)
            return -1;
        v = trim(buf);
    }
    struct cfg_service *svc = &p->c->services[p->c->n_services - 1];
    p->inline_secret |= strcasecmp(key, "Password") == 0;
    const char *err = cfg_wp_key(svc, &p->service_seen, key, v, why, sizeof(why));
    sodium_memzero(buf, sizeof(buf)); /* it may hold a password */
    if (err && strstr(err, "out of memory"))
        return oom(p);
    return err ? ini_fail(p, "%s", err) : 0;
}

static int key_line(struct ini *p, char *line)
{
    char b[80];
    char *eq = strchr(line, '=');
    if (!eq)
        return ini_fail(p, "'%s': expected Key = Value", cfg_shown(b, sizeof(b), line));
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    if (*key == '\0')
        return ini_fail(p, "no key before '='");
    if (p->section == SEC_SERVICE)
        return service_key(p, key, value);
    size_t k = key_index(key);
    if (p->section == SEC_NONE && strcasecmp(key, "WGConfig") == 0)
        return ini_fail(p, "WGConfig: not supported; put the [Interface] and [Peer] sections of "
                           "that file into this one");
    if (p->section == SEC_NONE) {
        return ini_fail(p, "%s: outside of any [Interface] or [Peer] section",
                        k < sizeof(keys) / sizeof(keys[0]) ? keys[k].name
                                                           : cfg_shown(b, sizeof(b), key));
    }
    if (k == sizeof(keys) / sizeof(keys[0]) && strcasecmp(key, "Name") == 0)
        return ini_fail(
            p,
            "Name: unknown key in %s (a name is given as a comment, `# Name = %s`, which "
            "wg-quick ignores)",
            section_name(p->section), cfg_shown(b, sizeof(b), value));
    if (k == sizeof(keys) / sizeof(keys[0]))
        return ini_fail(p, "%s: unknown key in %s", cfg_shown(b, sizeof(b), key),
                        section_name(p->section));
    const struct key_def *def = &keys[k];
    if (def->section != p->section)
        return ini_fail(p, "%s: belongs in %s, not in %s", def->name, section_name(def->section),
                        section_name(p->section));
    if (p->seen[k] && !def->repeatable)
        return ini_fail(p, "%s: given twice in this section (first at line %u)", def->name,
                        p->seen[k]);
    if (*value == '\0' && def->handle != on_allowed_ips && def->handle != on_ignored)
        return ini_fail(p, "%s: empty value", def->name);
    if (!p->seen[k])
        p->seen[k] = p->line;
    return handle_value(p, def, value);
}

static int parse_line(struct ini *p, char *line)
{
    char *s = trim(line);
    if (*s == '#')
        return name_comment(p, s);
    char *hash = strchr(s, '#'); /* as wg-quick: a '#' anywhere starts a comment */
    if (hash)
        *hash = '\0';
    s = trim(s);
    if (*s == '\0')
        return 0;
    if (*s == '[')
        return begin_section(p, s);
    return key_line(p, s);
}

/* wireproxy routes everything to a peer that names no AllowedIPs; wg-quick routes nothing. A
 * file with wireproxy sections is a wireproxy file: read it as wireproxy does, and say so. */
static int wireproxy_allowed_ips(struct ini *p)
{
    for (size_t i = 0; i < p->c->n_peers; i++) {
        if (p->c->peers[i].n_allowed_ips)
            continue;
        p->line = p->c->peers[i].line;
        char any4[] = "0.0.0.0/0", any6[] = "::/0";
        if (item_allowed_ip_of(p, i, any4) < 0 || item_allowed_ip_of(p, i, any6) < 0)
            return -1;
        if (cfg_warn(p->c,
                     "%s:%u: [Peer] has no AllowedIPs: 0.0.0.0/0 and ::/0, as wireproxy "
                     "reads it",
                     p->file, p->line) < 0)
            return oom(p);
    }
    p->line = 0;
    return 0;
}

static int parse_all(struct ini *p, const char *buf, size_t len)
{
    size_t pos = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 BOM some editors add */
        pos = 3;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        p->line++;
        if (memchr(buf + pos, '\0', n))
            return ini_fail(p, "contains a NUL byte");
        char *line = malloc(n + 1);
        if (!line)
            return oom(p);
        memcpy(line, buf + pos, n);
        line[n] = '\0';
        int r = parse_line(p, line);
        sodium_memzero(line, n); /* it may have held a key */
        free(line);
        if (r < 0)
            return -1;
        pos += n + 1;
    }
    if (end_section(p) < 0)
        return -1;
    p->line = 0;
    if (!p->interface_line)
        return ini_fail(p, "no [Interface] section");
    if (!p->c->has_private_key)
        return ini_fail(p, "[Interface] has no PrivateKey");
    return p->c->n_services ? wireproxy_allowed_ips(p) : 0;
}

int cfg_parse_ini_buffer(const char *name, const char *buf, size_t len, struct cfg_config *out,
                         char *err, size_t errlen)
{
    return cfg_parse_ini_buffer_with(name, buf, len, NULL, out, err, errlen);
}

static int parse_ini(const char *name, const char *buf, size_t len,
                     const struct cfg_ini_options *opt, struct cfg_config *out, bool *inline_secret,
                     char *err, size_t errlen)
{
    struct ini p = {.c = out,
                    .file = name ? name : "config",
                    .base_dir = opt ? opt->base_dir : NULL,
                    .expand_env = opt && opt->expand_env,
                    .err = err,
                    .errlen = errlen,
                    .code = BASE_ECONFIG};
    int r = cfg_begin(out, CFG_SOURCE_INI, p.file);
    if (r < 0) {
        oom(&p);
    } else if (parse_all(&p, buf, len) < 0) {
        r = p.code;
    } else {
        r = cfg_validate(out, err, errlen);
    }
    if (r < 0)
        cfg_free(out);
    *inline_secret = p.inline_secret;
    return r;
}

int cfg_parse_ini_buffer_with(const char *name, const char *buf, size_t len,
                              const struct cfg_ini_options *opt, struct cfg_config *out, char *err,
                              size_t errlen)
{
    bool inline_secret;
    return parse_ini(name, buf, len, opt, out, &inline_secret, err, errlen);
}

int cfg_parse_ini(const char *path, struct cfg_config *out, char *err, size_t errlen)
{
    return cfg_parse_ini_with(path, false, out, err, errlen);
}

int cfg_parse_ini_with(const char *path, bool expand_env, struct cfg_config *out, char *err,
                       size_t errlen)
{
    char *buf, dir[4096];
    size_t len = 0;
    mode_t mode = 0;
    memset(out, 0, sizeof(*out));
    int r = cfg_read_file(path, INI_MAX_FILE, &buf, &len, &mode, err, errlen);
    if (r < 0)
        return r;
    cfg_dir_of(path, dir, sizeof(dir));
    struct cfg_ini_options opt = {.base_dir = dir, .expand_env = expand_env};
    bool inline_secret = false;
    r = parse_ini(path, buf, len, &opt, out, &inline_secret, err, errlen);
    sodium_memzero(buf, len);
    free(buf);
    /* A file that only names its key file may be group-readable (a 0640 mount in a container). */
    return r == 0 && inline_secret ? cfg_warn_mode(out, path, mode, err, errlen) : r;
}
