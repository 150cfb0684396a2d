/*
 * What `tunless up` would start, seen before it starts: node_plan_print lists the peers,
 * listeners, forwards and publishes (for --check), and node_plan_check finds what deserves a
 * warning in them: a listener bound beyond the loopback that anyone on the network can use
 * (no proxy credentials; forwards and MagicDNS have none at all), and a local port used twice.
 * Both --check and the daemon's start call node_plan_check, so they warn alike.
 */
#include "plan.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_loopback(const struct base_addr *a)
{
    char text[BASE_ADDR_STRLEN];
    base_addr_format(a, text, sizeof(text));
    return strncmp(text, "127.", 4) == 0 || strcmp(text, "::1") == 0;
}

/* Every local socket the options ask for, with the flag that changes it. */
struct local {
    const char *flag;
    bool udp;
    bool has_auth; /* a proxy with --proxy-user */
    bool tcp_too;  /* --dns-listen binds UDP and TCP */
    const struct base_endpoint *ep;
};

static size_t collect(const struct node_options *o, struct local *out, size_t cap)
{
    size_t n = 0;
    bool auth = o->proxy_user != NULL;
    if (o->proxy_on && n < cap)
        out[n++] = (struct local){"--proxy", false, auth, false, &o->proxy};
    if (o->socks5_on && n < cap)
        out[n++] = (struct local){"--socks5", false, auth, false, &o->socks5};
    if (o->http_proxy_on && n < cap)
        out[n++] = (struct local){"--http-proxy", false, auth, false, &o->http_proxy};
    if (o->dns_listen_on && n < cap)
        out[n++] = (struct local){"--dns-listen", true, false, true, &o->dns_listen};
    if (o->metrics_listen_on && n < cap)
        out[n++] = (struct local){"--metrics-listen", false, false, false, &o->metrics_listen};
    for (size_t i = 0; i < o->n_forwards && n < cap; i++)
        out[n++] = (struct local){"--forward", o->forwards[i].proto == NODE_PROTO_UDP, false, false,
                                  &o->forwards[i].listen};
    return n;
}

static bool same_socket(const struct local *a, const struct local *b)
{
    bool proto = a->udp == b->udp || a->tcp_too || b->tcp_too;
    if (!proto || a->ep->port != b->ep->port)
        return false;
    char x[BASE_ADDR_STRLEN], y[BASE_ADDR_STRLEN];
    base_addr_format(&a->ep->addr, x, sizeof(x));
    base_addr_format(&b->ep->addr, y, sizeof(y));
    /* the wildcard overlaps every address of its family */
    return strcmp(x, y) == 0 || strcmp(x, "0.0.0.0") == 0 || strcmp(y, "0.0.0.0") == 0 ||
           strcmp(x, "::") == 0 || strcmp(y, "::") == 0;
}

void node_plan_check(const struct node_options *o, node_plan_warn_fn warn, void *arg)
{
    struct local l[64];
    size_t n = collect(o, l, sizeof(l) / sizeof(l[0]));
    char line[256], ep[BASE_ENDPOINT_STRLEN], ep2[BASE_ENDPOINT_STRLEN];
    for (size_t i = 0; i < n; i++) {
        if (is_loopback(&l[i].ep->addr) || l[i].has_auth)
            continue;
        base_endpoint_format(l[i].ep, ep, sizeof(ep));
        if (strcmp(l[i].flag, "--metrics-listen") == 0)
            snprintf(line, sizeof(line),
                     "%s %s: bound beyond the loopback; anyone who reaches this host reads the "
                     "node's peers, public keys and counters",
                     l[i].flag, ep);
        else if (strcmp(l[i].flag, "--forward") == 0 || strcmp(l[i].flag, "--dns-listen") == 0)
            snprintf(line, sizeof(line),
                     "%s %s: bound beyond the loopback; anyone who reaches this host reaches "
                     "the mesh through it",
                     l[i].flag, ep);
        else
            snprintf(line, sizeof(line),
                     "%s %s: bound beyond the loopback without credentials; anyone who reaches "
                     "this host can use it (give --proxy-user and --proxy-pass-file)",
                     l[i].flag, ep);
        warn(arg, line);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (!same_socket(&l[i], &l[j]))
                continue;
            snprintf(line, sizeof(line),
                     "%s %s and %s %s: the same local port; the second "
                     "will fail to bind",
                     l[i].flag, base_endpoint_format(l[i].ep, ep, sizeof(ep)), l[j].flag,
                     base_endpoint_format(l[j].ep, ep2, sizeof(ep2)));
            warn(arg, line);
        }
}

static void print_peers(FILE *out, const struct cfg_config *c)
{
    char b[BASE_PREFIX_STRLEN];
    for (size_t i = 0; i < c->n_peers; i++) {
        const struct cfg_peer *p = &c->peers[i];
        char key[CFG_KEY_B64_LEN + 1];
        sodium_bin2base64(key, sizeof(key), p->public_key, CFG_KEY_LEN,
                          sodium_base64_VARIANT_ORIGINAL);
        fprintf(out, "peer %s%s%.8s endpoint=", p->name ? p->name : "",
                p->name ? " key=" : "key=", key);
        if (p->n_endpoints)
            fprintf(out, "%s:%u", p->endpoints[0].host, p->endpoints[0].port);
        else
            fprintf(out, "none");
        fprintf(out, " allowed_ips=");
        for (size_t j = 0; j < p->n_allowed_ips; j++)
            fprintf(out, "%s%s", j ? "," : "",
                    base_prefix_format(&p->allowed_ips[j], b, sizeof(b)));
        fprintf(out, "\n");
    }
}

void node_plan_print(FILE *out, const struct node_options *o, const struct cfg_config *c)
{
    char ep[BASE_ENDPOINT_STRLEN];
    if (c)
        print_peers(out, c);
    struct local l[64];
    size_t n = collect(o, l, sizeof(l) / sizeof(l[0]));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].flag, "--forward") == 0)
            continue;
        fprintf(out, "listener %s %s%s\n", l[i].flag + 2,
                base_endpoint_format(l[i].ep, ep, sizeof(ep)),
                l[i].has_auth ? " (credentials required)" : "");
    }
    for (size_t i = 0; i < o->n_forwards; i++) {
        const struct node_forward *f = &o->forwards[i];
        fprintf(out, "forward %s %s -> %s:%u\n", f->proto == NODE_PROTO_UDP ? "udp" : "tcp",
                base_endpoint_format(&f->listen, ep, sizeof(ep)), f->target.host, f->target.port);
    }
    for (size_t i = 0; i < o->n_publishes; i++) {
        const struct node_publish *p = &o->publishes[i];
        fprintf(out, "publish %s %u -> %s:%u\n", p->proto == NODE_PROTO_UDP ? "udp" : "tcp",
                p->port, p->target.host, p->target.port);
    }
}

/* ---- wireproxy sections ---- */

struct merge {
    struct node_options *o;
    const struct cfg_config *c;
    const struct cfg_service *s;
    node_plan_warn_fn notice;
    void *arg;
    bool creds_from_file;
    bool socks5_from_file, http_from_file;
};

static void say(struct merge *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct merge *m, const char *fmt, ...)
{
    char line[384], what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s:%u: %s %s", m->c->file, m->s->line,
             cfg_service_section(m->s->kind), what);
    m->notice(m->arg, line);
}

static int merge_creds(struct merge *m, char *err, size_t errlen)
{
    const struct cfg_service *s = m->s;
    if (!s->username)
        return 0;
    if (m->o->proxy_user && !m->creds_from_file) {
        say(m, "Username/Password: --proxy-user given, which wins");
        return 0;
    }
    if (m->creds_from_file && (strcmp(m->o->proxy_user, s->username) != 0 ||
                               strcmp(m->o->proxy_pass, s->password) != 0)) {
        snprintf(err, errlen,
                 "%s:%u: %s: other credentials than an earlier section's; tunless "
                 "asks one Username/Password on all its proxies",
                 m->c->file, s->line, cfg_service_section(s->kind));
        return -1;
    }
    free(m->o->proxy_user);
    free(m->o->proxy_pass);
    m->o->proxy_user = strdup(s->username);
    m->o->proxy_pass = strdup(s->password);
    m->creds_from_file = true;
    return m->o->proxy_user && m->o->proxy_pass ? 0 : -1;
}

static int merge_proxy(struct merge *m, const char *flag, bool given, bool *from_file, bool *on,
                       struct base_endpoint *ep, char *err, size_t errlen)
{
    char b[BASE_ENDPOINT_STRLEN];
    base_endpoint_format(&m->s->bind, b, sizeof(b));
    if (given) {
        say(m, "BindAddress %s: %s given, which wins", b, flag);
    } else if (*from_file) {
        snprintf(err, errlen,
                 "%s:%u: %s: a second one; tunless serves one (use %s or --proxy "
                 "for more)",
                 m->c->file, m->s->line, cfg_service_section(m->s->kind), flag);
        return -1;
    } else {
        *on = *from_file = true;
        *ep = m->s->bind;
        say(m, "-> %s %s%s", flag, b, m->s->username ? " with credentials" : "");
    }
    return merge_creds(m, err, errlen);
}

static int merge_forward(struct merge *m)
{
    struct node_options *o = m->o;
    struct node_forward f = {.proto = m->s->kind == CFG_SERVICE_UDP_CLIENT ? NODE_PROTO_UDP
                                                                           : NODE_PROTO_TCP,
                             .listen = m->s->bind,
                             .target = m->s->target};
    const char *proto = f.proto == NODE_PROTO_UDP ? "udp:" : "";
    char b[BASE_ENDPOINT_STRLEN];
    base_endpoint_format(&f.listen, b, sizeof(b));
    for (size_t i = 0; i < o->n_forwards; i++)
        if (o->forwards[i].proto == f.proto && o->forwards[i].listen.port == f.listen.port) {
            say(m, "%s: --forward given for port %u, which wins", b, f.listen.port);
            return 0;
        }
    void *arr = realloc(o->forwards, (o->n_forwards + 1) * sizeof(f));
    if (!arr)
        return -1;
    o->forwards = arr;
    o->forwards[o->n_forwards++] = f;
    say(m, "-> --forward %s%s=%s:%u", proto, b, f.target.host, f.target.port);
    return 0;
}

static int merge_publish(struct merge *m)
{
    struct node_options *o = m->o;
    struct node_publish p = {
        .proto = NODE_PROTO_TCP, .port = m->s->listen_port, .target = m->s->target};
    for (size_t i = 0; i < o->n_publishes; i++)
        if (o->publishes[i].proto == p.proto && o->publishes[i].port == p.port) {
            say(m, "ListenPort %u: --publish given for it, which wins", p.port);
            return 0;
        }
    void *arr = realloc(o->publishes, (o->n_publishes + 1) * sizeof(p));
    if (!arr)
        return -1;
    o->publishes = arr;
    o->publishes[o->n_publishes++] = p;
    say(m, "-> --publish %u=%s:%u", p.port, p.target.host, p.target.port);
    return 0;
}

static int merge_one(struct merge *m, char *err, size_t errlen)
{
    struct node_options *o = m->o;
    switch (m->s->kind) {
    case CFG_SERVICE_SOCKS5:
        return merge_proxy(m, "--socks5", o->given.socks5, &m->socks5_from_file, &o->socks5_on,
                           &o->socks5, err, errlen);
    case CFG_SERVICE_HTTP:
        return merge_proxy(m, "--http-proxy", o->given.http_proxy, &m->http_from_file,
                           &o->http_proxy_on, &o->http_proxy, err, errlen);
    case CFG_SERVICE_TCP_CLIENT:
    case CFG_SERVICE_UDP_CLIENT:
        return merge_forward(m);
    case CFG_SERVICE_TCP_SERVER:
        return merge_publish(m);
    }
    return 0;
}

int node_plan_merge(struct node_options *o, const struct cfg_config *c, node_plan_warn_fn notice,
                    void *arg, char *err, size_t errlen)
{
    struct merge m = {.o = o, .c = c, .notice = notice, .arg = arg};
    err[0] = '\0';
    if (!c || c->n_services == 0)
        return 0;
    /* The file says what listens, as it did for wireproxy: no default proxy besides. */
    if (!o->given.proxy && o->proxy_on)
        o->proxy_on = false;
    for (size_t i = 0; i < c->n_services; i++) {
        m.s = &c->services[i];
        if (merge_one(&m, err, errlen) != 0) {
            if (!*err)
                snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static bool same_service(const struct cfg_service *a, const struct cfg_service *b)
{
    return a->kind == b->kind && base_endpoint_equal(&a->bind, &b->bind) &&
           a->listen_port == b->listen_port && a->target.port == b->target.port &&
           strcmp(a->target.host, b->target.host) == 0 && !a->username == !b->username &&
           (!a->username || strcmp(a->username, b->username) == 0) &&
           !a->password == !b->password && (!a->password || strcmp(a->password, b->password) == 0);
}

bool node_plan_services_equal(const struct cfg_config *a, const struct cfg_config *b)
{
    if (a->n_services != b->n_services)
        return false;
    for (size_t i = 0; i < a->n_services; i++)
        if (!same_service(&a->services[i], &b->services[i]))
            return false;
    return true;
}
