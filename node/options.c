#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PROXY "127.0.0.1:1080"
#define LOOPBACK "127.0.0.1"
#define PASS_MAX 1024
#define MEMORY_MIN (4u << 20)

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_port(const char *s, uint16_t *out)
{
    return base_port_parse(s, strlen(s), out, 0) == 0 ? 0 : -1;
}

int node_parse_hostport(const char *spec, const char *default_host, struct cfg_hostport *out)
{
    memset(out, 0, sizeof(*out));
    const char *port = spec[0] == ':' ? spec + 1 : spec;
    if (default_host && parse_port(port, &out->port) == 0) {
        snprintf(out->host, sizeof(out->host), "%s", default_host);
        return 0;
    }
    return base_hostport_parse(spec, strlen(spec), out->host, sizeof(out->host), &out->port, 0,
                               NULL) == 0
               ? 0
               : -1;
}

/* Listeners bind addresses, not names: an IP literal, or "localhost" for the loopback. */
int node_parse_listen(const char *spec, struct base_endpoint *out)
{
    struct cfg_hostport hp;
    memset(out, 0, sizeof(*out));
    if (node_parse_hostport(spec, LOOPBACK, &hp) != 0)
        return -1;
    const char *host = strcmp(hp.host, "localhost") == 0 ? LOOPBACK : hp.host;
    out->port = hp.port;
    return base_addr_parse(&out->addr, host, strlen(host)) == 0 ? 0 : -1;
}

/* "tcp:" or "udp:" prefix, TCP when absent. Returns the rest of the spec. */
static const char *parse_proto(const char *spec, enum node_proto *proto)
{
    *proto = NODE_PROTO_TCP;
    if (strncmp(spec, "tcp:", 4) == 0)
        return spec + 4;
    if (strncmp(spec, "udp:", 4) == 0) {
        *proto = NODE_PROTO_UDP;
        return spec + 4;
    }
    return spec;
}

/* Splits "left=right" into a bounded copy of left and a pointer to right. */
static int split_eq(const char *spec, char *left, size_t cap, const char **right)
{
    const char *eq = strchr(spec, '=');
    if (!eq || (size_t)(eq - spec) >= cap)
        return -1;
    memcpy(left, spec, (size_t)(eq - spec));
    left[eq - spec] = '\0';
    *right = eq + 1;
    return 0;
}

int node_parse_forward(const char *spec, struct node_forward *out)
{
    char left[BASE_HOST_MAX + 8];
    const char *right;

    memset(out, 0, sizeof(*out));
    spec = parse_proto(spec, &out->proto);
    if (split_eq(spec, left, sizeof(left), &right) != 0)
        return -1;
    if (node_parse_listen(left, &out->listen) != 0)
        return -1;
    return node_parse_hostport(right, NULL, &out->target);
}

int node_parse_publish(const char *spec, struct node_publish *out)
{
    char left[16];
    const char *right;

    memset(out, 0, sizeof(*out));
    spec = parse_proto(spec, &out->proto);
    if (!strchr(spec, '=')) { /* "22": the same port on the host's loopback */
        if (parse_port(spec, &out->port) != 0)
            return -1;
        snprintf(out->target.host, sizeof(out->target.host), "%s", LOOPBACK);
        out->target.port = out->port;
        return 0;
    }
    if (split_eq(spec, left, sizeof(left), &right) != 0 || parse_port(left, &out->port) != 0)
        return -1;
    return node_parse_hostport(right, LOOPBACK, &out->target);
}

int node_parse_size(const char *spec, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(spec, &end, 10);
    if (end == spec || errno || spec[0] == '-')
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (*end || v > (SIZE_MAX >> shift))
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

static int dup_string(char **dst, const char *src)
{
    free(*dst);
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

static int read_secret_file(const char *who, const char *path, char **out, char *err, size_t errlen)
{
    char buf[PASS_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "%s: %s", who, strerror(errno));
    ssize_t n = read(fd, buf, PASS_MAX);
    close(fd);
    if (n < 0)
        return fail(err, errlen, "%s: %s", who, strerror(errno));
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    int ret = n == 0 ? fail(err, errlen, "%s: empty", who) : dup_string(out, buf);
    sodium_memzero(buf, sizeof(buf));
    return ret;
}

enum {
    OPT_CONFIG = 1000,
    OPT_NETMAP,
    OPT_PROXY,
    OPT_SOCKS5,
    OPT_HTTP_PROXY,
    OPT_PROXY_USER,
    OPT_PROXY_PASS_FILE,
    OPT_PROXY_PASS,
    OPT_DNS_LISTEN,
    OPT_DNS_SUFFIX,
    OPT_METRICS_LISTEN,
    OPT_FORWARD,
    OPT_PUBLISH,
    OPT_OUTBOUND,
    OPT_MAX_MEMORY,
    OPT_MAX_CONNECTIONS,
    OPT_UDP_OFFLOAD,
    OPT_STATE_DIR,
    OPT_SOCKET,
    OPT_SOCKET_GROUP,
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_EXPAND_ENV,
    OPT_CONNECT_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_TCP_KEEPALIVE,
    OPT_HELP,
    OPT_CHECK,
};

/* Each option's flag, environment variable and meaning: one table for parsing and for --help. */
struct option_doc {
    int id;
    const char *flag;
    const char *env;
    const char *arg;
    const char *help;
};

static const struct option_doc docs[] = {
    {OPT_CONFIG, "config", "TUNLESS_CONFIG", "FILE", "wg-quick configuration file"},
    {OPT_NETMAP, "netmap", "TUNLESS_NETMAP", "FILE", "JSON netmap (see examples/netmap.json)"},
    {OPT_PROXY, "proxy", "TUNLESS_PROXY", "ADDR",
     "SOCKS5 + HTTP proxy on one port (default " DEFAULT_PROXY "; 'off' disables)"},
    {OPT_SOCKS5, "socks5", "TUNLESS_SOCKS5", "ADDR", "a SOCKS5-only listener"},
    {OPT_HTTP_PROXY, "http-proxy", "TUNLESS_HTTP_PROXY", "ADDR", "an HTTP-proxy-only listener"},
    {OPT_PROXY_USER, "proxy-user", "TUNLESS_PROXY_USER", "USER",
     "require this user on the proxies"},
    {OPT_PROXY_PASS_FILE, "proxy-pass-file", "TUNLESS_PROXY_PASS_FILE", "FILE",
     "the proxy password (or env TUNLESS_PROXY_PASS)"},
    {OPT_DNS_LISTEN, "dns-listen", "TUNLESS_DNS_LISTEN", "ADDR",
     "serve MagicDNS on a local address, e.g. 127.0.0.1:5300"},
    {OPT_METRICS_LISTEN, "metrics-listen", "TUNLESS_METRICS_LISTEN", "ADDR",
     "read-only HTTP: /metrics (Prometheus), /healthz, /readyz (off by default)"},
    {OPT_DNS_SUFFIX, "dns-suffix", "TUNLESS_DNS_SUFFIX", "NAME",
     "MagicDNS suffix in wg-quick mode (default mesh.internal)"},
    {OPT_FORWARD, "forward", "TUNLESS_FORWARD", "SPEC",
     "[tcp:|udp:][LADDR:]LPORT=HOST:PORT local->mesh (repeatable; env: space-separated)"},
    {OPT_PUBLISH, "publish", "TUNLESS_PUBLISH", "SPEC",
     "[tcp:|udp:]PORT[=HOST:PORT] mesh->local (repeatable; env: space-separated)"},
    {OPT_OUTBOUND, "outbound", "TUNLESS_OUTBOUND", "MODE",
     "direct (default) or tunnel-only: where non-mesh destinations go"},
    {OPT_CONNECT_TIMEOUT, "connect-timeout", "TUNLESS_CONNECT_TIMEOUT", "TIME",
     "how long a destination has to accept, all its addresses together (default 10s; 500ms, 30s)"},
    {OPT_MAX_MEMORY, "max-memory", "TUNLESS_MAX_MEMORY", "SIZE",
     "memory peers and clients may make the node hold (windows, buffers); default 256M"},
    {OPT_MAX_CONNECTIONS, "max-connections", "TUNLESS_MAX_CONNECTIONS", "N",
     "clients each proxy listener holds at once (default 1024; up to 1000000)"},
    {OPT_UDP_OFFLOAD, "udp-offload", "TUNLESS_UDP_OFFLOAD", "on|off",
     "UDP segmentation offloads (GSO, GRO) on the WireGuard socket where the kernel has them "
     "(default on)"},
    {OPT_STATE_DIR, "state-dir", "TUNLESS_STATE_DIR", "DIR",
     "where the node keeps its key (default $XDG_STATE_HOME/tunless)"},
    {OPT_SOCKET, "socket", "TUNLESS_SOCKET", "PATH",
     "the local API's unix socket (default STATE_DIR/tunless.sock, mode 0600; 'off': none)"},
    {OPT_SOCKET_GROUP, "socket-group", "TUNLESS_SOCKET_GROUP", "GROUP",
     "members of GROUP may use the local API too, read-only (socket mode 0660)"},
    {OPT_LOG_LEVEL, "log-level", "TUNLESS_LOG_LEVEL", "LEVEL",
     "error, warn, info (default) or debug"},
    {OPT_LOG_FORMAT, "log-format", "TUNLESS_LOG_FORMAT", "FORMAT",
     "text (key=value, default) or json (one object a line)"},
    {OPT_EXPAND_ENV, "expand-env", "TUNLESS_EXPAND_ENV", NULL,
     "expand $VAR and ${VAR} in the wg-quick file's values (env: 1 or 0)"},
    {OPT_IDLE_TIMEOUT, "idle-timeout", "TUNLESS_IDLE_TIMEOUT", "DURATION",
     "reset --forward and --publish TCP connections idle this long (default 4h; 0 = never; "
     "e.g. 90s, 30m, 2h)"},
    {OPT_TCP_KEEPALIVE, "tcp-keepalive", "TUNLESS_TCP_KEEPALIVE", "IDLE,INTERVAL,COUNT",
     "keepalive on tunnel TCP connections: probes after IDLE, every INTERVAL, COUNT unanswered "
     "end it (default 60s,15s,4)"},
};
#define N_DOCS (sizeof(docs) / sizeof(docs[0]))

void node_options_usage(FILE *out)
{
    fprintf(out,
            "usage: tunless up [options]\n\n"
            "  --check\n      validate the configuration, print a summary and exit (0 or 2)\n");
    for (size_t i = 0; i < N_DOCS; i++)
        fprintf(out, "  --%s%s%s\n      %s  [env %s]\n", docs[i].flag, docs[i].arg ? " " : "",
                docs[i].arg ? docs[i].arg : "", docs[i].help, docs[i].env);
}

static const char *flag_name(int id)
{
    for (size_t i = 0; i < N_DOCS; i++)
        if (docs[i].id == id)
            return docs[i].flag;
    return "?";
}

/* Edit distance between two short words (at most 63 characters), for "did you mean". */
size_t node_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t replace = diag + (a[i - 1] != b[j - 1]);
            size_t insert = row[j - 1] + 1, remove = up + 1;
            size_t best = insert < remove ? insert : remove;
            row[j] = replace < best ? replace : best;
            diag = up;
        }
    }
    return row[lb];
}

static int grow_append(void **arr, size_t *n, size_t size, const void *item)
{
    void *p = realloc(*arr, (*n + 1) * size);
    if (!p)
        return -1;
    memcpy((char *)p + *n * size, item, size);
    *arr = p;
    (*n)++;
    return 0;
}

/* "off" is a choice, not an absence: *given records it so that the default does not return. */
static int apply_listen(const char *who, const char *v, bool *on, bool *given,
                        struct base_endpoint *ep, char *err, size_t errlen)
{
    *given = true;
    if (strcmp(v, "off") == 0) {
        *on = false;
        return 0;
    }
    if (node_parse_listen(v, ep) != 0)
        return fail(err, errlen, "%s: want IP:PORT, [IPv6]:PORT, PORT or off", who);
    *on = true;
    return 0;
}

/* "1500ms", "90s", "30m", "2h", or plain seconds; each option checks its own range. */
int node_parse_duration_ms(const char *v, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || v[0] == '-' || v[0] == '+')
        return -1;
    unsigned long long unit = strcmp(end, "ms") == 0           ? 1
                              : strcmp(end, "s") == 0 || !*end ? 1000
                              : strcmp(end, "m") == 0          ? 60000
                              : strcmp(end, "h") == 0          ? 3600000
                                                               : 0;
    if (!unit || n > UINT32_MAX / unit)
        return -1;
    *out = (unsigned)(n * unit);
    return 0;
}

int node_parse_keepalive(const char *v, struct node_keepalive *k)
{
    char idle[32], intvl[32];
    unsigned cnt;
    char extra;
    if (sscanf(v, "%31[^,],%31[^,],%u%c", idle, intvl, &cnt, &extra) != 3 || cnt == 0 ||
        node_parse_duration_ms(idle, &k->idle_ms) != 0 ||
        node_parse_duration_ms(intvl, &k->intvl_ms) != 0 || k->idle_ms < 1000 || k->intvl_ms < 1000)
        return -1;
    k->cnt = cnt;
    return 0;
}

/* The options that tune how the node behaves rather than what it opens. */
static int apply_tuning(struct node_options *o, int id, const char *v, const char *who, char *err,
                        size_t errlen)
{
    switch (id) {
    case OPT_OUTBOUND:
        o->given.outbound = true;
        if (strcmp(v, "direct") == 0)
            o->outbound = NODE_OUTBOUND_DIRECT;
        else if (strcmp(v, "tunnel-only") == 0)
            o->outbound = NODE_OUTBOUND_TUNNEL_ONLY;
        else
            return fail(err, errlen, "%s: want direct or tunnel-only", who);
        return 0;
    case OPT_MAX_MEMORY:
        if (node_parse_size(v, &o->max_memory) != 0 || o->max_memory < MEMORY_MIN)
            return fail(err, errlen, "%s: want a size of at least 4M (e.g. 256M, 1G)", who);
        return 0;
    case OPT_MAX_CONNECTIONS: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || end == v || *end || n < 1 || n > 1000000 || v[0] == '-')
            return fail(err, errlen, "%s: want a count from 1 to 1000000", who);
        o->max_connections = (unsigned)n;
        return 0;
    }
    case OPT_UDP_OFFLOAD:
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
            return fail(err, errlen, "%s: want on or off", who);
        o->no_udp_offload = strcmp(v, "off") == 0;
        return 0;
    case OPT_CONNECT_TIMEOUT:
        if (node_parse_duration_ms(v, &o->connect_timeout_ms) != 0 || o->connect_timeout_ms == 0 ||
            o->connect_timeout_ms > 3600000)
            return fail(err, errlen, "%s: want a time from 1ms to 1h, e.g. 10s or 500ms", who);
        return 0;
    case OPT_EXPAND_ENV: /* the flag has no value; the variable says 1 or 0 */
        if (!v || strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
            o->expand_env = true;
        else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
            o->expand_env = false;
        else
            return fail(err, errlen, "%s: want 1 or 0", who);
        return 0;
    case OPT_IDLE_TIMEOUT:
        if (node_parse_duration_ms(v, &o->idle_timeout_ms) != 0)
            return fail(err, errlen, "%s: want a duration (90s, 30m, 2h) or 0", who);
        return 0;
    case OPT_TCP_KEEPALIVE:
        if (node_parse_keepalive(v, &o->keepalive) != 0)
            return fail(err, errlen, "%s: want IDLE,INTERVAL,COUNT (e.g. 60s,15s,4; at least 1s)",
                        who);
        return 0;
    case OPT_LOG_LEVEL:
        o->given.log_level = true;
        if (base_log_level_parse(v, &o->log_level) != 0)
            return fail(err, errlen, "%s: want error, warn, info or debug", who);
        return 0;
    case OPT_LOG_FORMAT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return fail(err, errlen, "%s: want text or json", who);
        o->log_json = strcmp(v, "json") == 0;
        return 0;
    }
    return fail(err, errlen, "internal: unknown option %d", id);
}

/* who names where v came from in messages: "--proxy X" for a flag, "TUNLESS_PROXY=X" for the
 * environment. */
static int apply(struct node_options *o, int id, const char *v, const char *who, char *err,
                 size_t errlen)
{
    struct node_forward fw;
    struct node_publish pub;

    switch (id) {
    case OPT_CONFIG:
        return dup_string(&o->config_path, v);
    case OPT_NETMAP:
        return dup_string(&o->netmap_path, v);
    case OPT_PROXY:
        return apply_listen(who, v, &o->proxy_on, &o->given.proxy, &o->proxy, err, errlen);
    case OPT_SOCKS5:
        return apply_listen(who, v, &o->socks5_on, &o->given.socks5, &o->socks5, err, errlen);
    case OPT_HTTP_PROXY:
        return apply_listen(who, v, &o->http_proxy_on, &o->given.http_proxy, &o->http_proxy, err,
                            errlen);
    case OPT_DNS_LISTEN:
        return apply_listen(who, v, &o->dns_listen_on, &o->given.dns_listen, &o->dns_listen, err,
                            errlen);
    case OPT_METRICS_LISTEN:
        return apply_listen(who, v, &o->metrics_listen_on, &o->given.metrics_listen,
                            &o->metrics_listen, err, errlen);
    case OPT_PROXY_USER:
        return dup_string(&o->proxy_user, v);
    case OPT_PROXY_PASS_FILE:
        return read_secret_file(who, v, &o->proxy_pass, err, errlen);
    case OPT_PROXY_PASS:
        return fail(err, errlen,
                    "--proxy-pass: a password on the command line is visible to "
                    "every user; use --proxy-pass-file or TUNLESS_PROXY_PASS");
    case OPT_DNS_SUFFIX:
        return dup_string(&o->dns_suffix, v);
    case OPT_FORWARD:
        if (node_parse_forward(v, &fw) != 0)
            return fail(err, errlen, "%s: want [tcp:|udp:][LADDR:]LPORT=HOST:PORT", who);
        return grow_append((void **)&o->forwards, &o->n_forwards, sizeof(fw), &fw);
    case OPT_PUBLISH:
        if (node_parse_publish(v, &pub) != 0)
            return fail(err, errlen, "%s: want [tcp:|udp:]PORT[=HOST:PORT]", who);
        return grow_append((void **)&o->publishes, &o->n_publishes, sizeof(pub), &pub);
    case OPT_STATE_DIR:
        return dup_string(&o->state_dir, v);
    case OPT_SOCKET:
        return dup_string(&o->socket_path, v);
    case OPT_SOCKET_GROUP:
        return dup_string(&o->socket_group, v);
    }
    return apply_tuning(o, id, v, who, err, errlen);
}

/* Environment first, so that flags given afterwards override it. List-valued variables
 * (TUNLESS_FORWARD, TUNLESS_PUBLISH) hold space-separated specs. */
static int apply_env(struct node_options *o, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_DOCS; i++) {
        const char *v = getenv(docs[i].env);
        if (!v || !*v)
            continue;
        char who[160];
        snprintf(who, sizeof(who), "%s=%.120s", docs[i].env, v);
        if (docs[i].id != OPT_FORWARD && docs[i].id != OPT_PUBLISH) {
            if (apply(o, docs[i].id, v, who, err, errlen) != 0)
                return -1;
            continue;
        }
        char *copy = strdup(v), *save = NULL;
        if (!copy)
            return fail(err, errlen, "out of memory");
        int ret = 0;
        for (char *tok = strtok_r(copy, " \t\n", &save); tok && ret == 0;
             tok = strtok_r(NULL, " \t\n", &save)) {
            snprintf(who, sizeof(who), "%s=...%.120s...", docs[i].env, tok);
            ret = apply(o, docs[i].id, tok, who, err, errlen);
        }
        free(copy);
        if (ret != 0)
            return -1;
    }
    const char *pass = getenv("TUNLESS_PROXY_PASS");
    if (pass && *pass && !o->proxy_pass && dup_string(&o->proxy_pass, pass) != 0)
        return fail(err, errlen, "out of memory");
    return 0;
}

static int add_warning(struct node_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_warning(struct node_options *o, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char *copy = strdup(line);
    if (!copy || grow_append((void **)&o->warnings, &o->n_warnings, sizeof(copy), &copy) != 0) {
        free(copy);
        return -1;
    }
    return 0;
}

/* A TUNLESS_ variable no option reads is most likely a typo that silently changes nothing. */
static int warn_unknown_env(struct node_options *o, char *err, size_t errlen)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        char name[64];
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (strncmp(*e, "TUNLESS_", 8) != 0 || len >= sizeof(name))
            continue;
        memcpy(name, *e, len);
        name[len] = '\0';
        const char *best = strcmp(name, "TUNLESS_PROXY_PASS") == 0 ? name : NULL;
        size_t best_d = best ? 0 : 4; /* suggest what is at most three edits away */
        for (size_t i = 0; i < N_DOCS && best_d > 0; i++) {
            size_t d = node_edit_distance(name, docs[i].env);
            if (d < best_d) {
                best_d = d;
                best = docs[i].env;
            }
        }
        if (best_d == 0)
            continue;
        int ret =
            best ? add_warning(o, "%s: no option reads this variable; did you mean %s?", name, best)
                 : add_warning(o, "%s: no option reads this variable", name);
        if (ret != 0)
            return fail(err, errlen, "out of memory");
    }
    return 0;
}

static int finish(struct node_options *o, char *err, size_t errlen)
{
    /* The combined listener is the default only when no dedicated one was asked for. */
    if (!o->given.proxy && !o->socks5_on && !o->http_proxy_on) {
        node_parse_listen(DEFAULT_PROXY, &o->proxy);
        o->proxy_on = true;
    }
    if (!o->dns_suffix && dup_string(&o->dns_suffix, "mesh.internal") != 0)
        return fail(err, errlen, "out of memory");
    if (!!o->proxy_user != !!o->proxy_pass)
        return fail(err, errlen,
                    "--proxy-user and a password (--proxy-pass-file or "
                    "TUNLESS_PROXY_PASS) go together");
    if (o->config_path && o->netmap_path)
        return fail(err, errlen, "--config and --netmap exclude each other");
    return 0;
}

int node_options_parse(int argc, char **argv, struct node_options *out, char *err, size_t errlen)
{
    struct option longopts[N_DOCS + 4];
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    out->log_level = BASE_LOG_INFO;
    out->idle_timeout_ms = NODE_IDLE_TIMEOUT_MS;
    out->max_memory = NODE_MAX_MEMORY_DEFAULT;
    for (size_t i = 0; i < N_DOCS; i++)
        longopts[n++] = (struct option){docs[i].flag, docs[i].arg ? required_argument : no_argument,
                                        NULL, docs[i].id};
    longopts[n++] = (struct option){"proxy-pass", required_argument, NULL, OPT_PROXY_PASS};
    longopts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[n++] = (struct option){"check", no_argument, NULL, OPT_CHECK};
    longopts[n] = (struct option){0};

    if (apply_env(out, err, errlen) != 0 || warn_unknown_env(out, err, errlen) != 0)
        goto bad;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            out->help = true;
            return 0;
        }
        if (c == OPT_CHECK) {
            out->check = true;
            continue;
        }
        if (c == '?' || c == ':') {
            fail(err, errlen, "unknown or incomplete option '%s'", argv[optind - 1]);
            goto bad;
        }
        char who[160];
        snprintf(who, sizeof(who), "--%s %.120s", flag_name(c), optarg);
        if (apply(out, c, optarg, who, err, errlen) != 0)
            goto bad;
    }
    if (optind < argc) {
        fail(err, errlen, "unexpected argument '%s'", argv[optind]);
        goto bad;
    }
    if (finish(out, err, errlen) == 0)
        return 0;
bad:
    node_options_free(out);
    return -1;
}

void node_options_free(struct node_options *o)
{
    if (o->proxy_pass) {
        sodium_memzero(o->proxy_pass, strlen(o->proxy_pass));
        free(o->proxy_pass);
    }
    free(o->config_path);
    free(o->netmap_path);
    free(o->proxy_user);
    free(o->dns_suffix);
    free(o->forwards);
    free(o->publishes);
    free(o->state_dir);
    free(o->socket_path);
    free(o->socket_group);
    for (size_t i = 0; i < o->n_warnings; i++)
        free(o->warnings[i]);
    free(o->warnings);
    memset(o, 0, sizeof(*o));
}
