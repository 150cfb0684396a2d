/*
 * The proxies' counters (proxy_server_stats) as Prometheus families, one sample per listener
 * labelled with its address (listener="127.0.0.1:1080"): gather() reads every listener once,
 * then each family walks them (Prometheus wants a family's samples together).
 */
#include "metrics_internal.h"

#include <stdio.h>
#include <string.h>

#include "daemon.h"

#define C BASE_PROM_COUNTER

struct listener {
    char name[BASE_ENDPOINT_STRLEN];
    struct proxy_stats st;
};

/* The daemon starts its proxies in this order (--proxy, --socks5, --http-proxy), skipping those
 * that are off: d->proxies[k] is the k-th one on. */
static size_t gather(struct node_daemon *d, struct listener *out)
{
    const struct node_options *o = &d->opts;
    const struct base_endpoint *eps[] = {o->proxy_on ? &o->proxy : NULL,
                                         o->socks5_on ? &o->socks5 : NULL,
                                         o->http_proxy_on ? &o->http_proxy : NULL};
    size_t k = 0;
    for (size_t i = 0; i < 3 && k < d->n_proxies; i++) {
        if (!eps[i] || !d->proxies[k])
            continue;
        struct base_endpoint ep = *eps[i];
        ep.port = (uint16_t)proxy_server_port(d->proxies[k]);
        base_endpoint_format(&ep, out[k].name, sizeof(out[k].name));
        proxy_server_stats(d->proxies[k], &out[k].st);
        k++;
    }
    return k;
}

/* One sample per listener of the field at offset off (a uint64_t in struct proxy_stats). */
static void per_listener(struct base_prom *p, const struct listener *l, size_t n, const char *name,
                         enum base_prom_type type, const char *help, size_t off)
{
    base_prom_family(p, name, type, help);
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&l[i].st + off, sizeof(v));
        struct base_prom_label lab = {"listener", l[i].name};
        base_prom_u64(p, &lab, 1, v);
    }
}

static void codes(struct base_prom *p, const struct listener *l, size_t n)
{
    char code[16];
    base_prom_family(p, "tunless_proxy_socks5_replies_total", C,
                     "SOCKS5 replies sent, by reply code (0 succeeded, 5 connection refused, ...)");
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < PROXY_STATS_SOCKS5_REPLIES; r++) {
            snprintf(code, sizeof(code), "%zu", r);
            struct base_prom_label lab[] = {{"listener", l[i].name}, {"code", code}};
            base_prom_u64(p, lab, 2, l[i].st.socks5_reply[r]);
        }
    base_prom_family(p, "tunless_proxy_http_responses_total", C,
                     "HTTP responses the proxy made itself (CONNECT's 200, errors), by status");
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < PROXY_STATS_HTTP_STATUSES; r++) {
            snprintf(code, sizeof(code), "%d", l[i].st.http_status[r].status);
            struct base_prom_label lab[] = {{"listener", l[i].name}, {"code", code}};
            base_prom_u64(p, lab, 2, l[i].st.http_status[r].count);
        }
}

#define F(field) offsetof(struct proxy_stats, field)
static const struct {
    const char *name;
    enum base_prom_type type;
    const char *help;
    size_t off;
} families[] = {
    {"tunless_proxy_connections_total", C, "client connections accepted", F(accepted)},
    {"tunless_proxy_connections", BASE_PROM_GAUGE, "client sessions open", F(open)},
    {"tunless_proxy_refused_limit_total", C,
     "connections closed at once because max_connections were open", F(refused_limit)},
    {"tunless_proxy_refused_auth_total", C, "clients refused for missing or wrong credentials",
     F(refused_auth)},
    {"tunless_proxy_dials_total", C, "upstream connections attempted", F(dials)},
    {"tunless_proxy_dial_errors_total", C, "upstream connections that failed", F(dial_errors)},
    {"tunless_proxy_http_forwarded_total", C, "upstream HTTP responses relayed to clients",
     F(http_forwarded)},
    {"tunless_proxy_upstream_sent_bytes_total", C, "bytes from clients to their destinations",
     F(bytes_up)},
    {"tunless_proxy_upstream_received_bytes_total", C, "bytes from destinations to their clients",
     F(bytes_down)},
};
#undef F

void node_metrics_collect_proxies(struct node_daemon *d, struct base_prom *p)
{
    struct listener l[NODE_MAX_LISTENERS];
    size_t n = gather(d, l);
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        per_listener(p, l, n, families[i].name, families[i].type, families[i].help,
                     families[i].off);
    codes(p, l, n);
}
