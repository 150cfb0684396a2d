/*
 * What `tunless up` would start, seen before it starts: node_plan_print lists the peers,
 * listeners, forwards and publishes (for --check), and node_plan_check finds what deserves a
 * warning in them: a listener bound beyond the loopback that anyone on the network can use
 * (no proxy credentials; forwards and MagicDNS have none at all), and a local port used twice.
 * Both --check and the daemon's start call node_plan_check, so they warn alike.
 */
#include "plan.h"

#include <sodium.h>
#include <stdio.h>
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
        if (strcmp(l[i].flag, "--forward") == 0 || strcmp(l[i].flag, "--dns-listen") == 0)
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
