/*
 * GET /v0/status: the node (key, addresses, port, listeners, uptime, version), each configured
 * peer with the engine's view of it, and the counters of the engine, netstack and DNS. Only
 * public keys leave: the configuration's private and preshared keys are never read here.
 * Flow: node_localapi_status -> node_info (listeners) -> peers (peer_info) -> counters.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "localapi.h"
#include "metrics.h"

#ifndef TUNLESS_VERSION
#define TUNLESS_VERSION "dev"
#endif

static json_t *endpoint_json(const struct base_endpoint *ep)
{
    char buf[BASE_ENDPOINT_STRLEN];
    return ep->addr.family ? json_string(base_endpoint_format(ep, buf, sizeof(buf))) : json_null();
}

static json_t *prefixes_json(const struct base_prefix *p, size_t n)
{
    json_t *arr = json_array();
    char buf[BASE_PREFIX_STRLEN];
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(base_prefix_format(&p[i], buf, sizeof(buf))));
    return arr;
}

static void add_listener(json_t *arr, const char *service, const struct base_endpoint *ep,
                         const char *target)
{
    json_t *o = json_pack("{s:s, s:o}", "service", service, "addr", endpoint_json(ep));
    if (target)
        json_object_set_new(o, "target", json_string(target));
    json_array_append_new(arr, o);
}

#define U(x) (json_int_t)(x)

/* A proxy listener's counters; reply codes and statuses only where they were sent. */
static json_t *proxy_counters(const struct proxy_server *srv)
{
    struct proxy_stats st;
    proxy_server_stats(srv, &st);
    json_t *socks = json_object(), *http = json_object();
    char key[16];
    for (int i = 0; i < PROXY_STATS_SOCKS5_REPLIES; i++) {
        snprintf(key, sizeof(key), "%d", i);
        if (st.socks5_reply[i])
            json_object_set_new(socks, key, json_integer(U(st.socks5_reply[i])));
    }
    for (int i = 0; i < PROXY_STATS_HTTP_STATUSES; i++) {
        snprintf(key, sizeof(key), "%d", st.http_status[i].status);
        if (st.http_status[i].count)
            json_object_set_new(http, key, json_integer(U(st.http_status[i].count)));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I}", "accepted",
                     U(st.accepted), "open", U(st.open), "refused_limit", U(st.refused_limit),
                     "refused_auth", U(st.refused_auth), "dials", U(st.dials), "dial_errors",
                     U(st.dial_errors), "socks5_replies", socks, "http_statuses", http,
                     "http_forwarded", U(st.http_forwarded), "bytes_up", U(st.bytes_up),
                     "bytes_down", U(st.bytes_down));
}

/* In the daemon's order: proxy, socks5, http-proxy (start_proxies), then DNS and forwards. */
static json_t *listeners_json(struct node_daemon *d)
{
    const struct node_options *o = &d->opts;
    json_t *arr = json_array();
    const struct {
        bool on;
        const struct base_endpoint *ep;
        const char *service;
    } proxies[] = {{o->proxy_on, &o->proxy, "socks5+http"},
                   {o->socks5_on, &o->socks5, "socks5"},
                   {o->http_proxy_on, &o->http_proxy, "http"}};
    size_t k = 0;
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        if (!proxies[i].on)
            continue;
        struct base_endpoint ep = *proxies[i].ep;
        const struct proxy_server *srv = k < d->n_proxies ? d->proxies[k] : NULL;
        k++;
        if (srv)
            ep.port = (uint16_t)proxy_server_port(srv);
        add_listener(arr, proxies[i].service, &ep, NULL);
        if (srv)
            json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "counters",
                                proxy_counters(srv));
    }
    if (o->dns_listen_on) {
        struct base_endpoint ep = o->dns_listen;
        ep.port = node_magicdns_listen_port(d->dns);
        add_listener(arr, "dns", &ep, NULL);
    }
    char target[BASE_HOST_MAX + 16];
    for (size_t i = 0; i < o->n_forwards; i++) {
        const struct node_forward *f = &o->forwards[i];
        snprintf(target, sizeof(target), "%s:%u", f->target.host, f->target.port);
        add_listener(arr, f->proto == NODE_PROTO_UDP ? "forward-udp" : "forward", &f->listen,
                     target);
    }
    for (size_t i = 0; i < o->n_publishes; i++) {
        const struct node_publish *p = &o->publishes[i];
        snprintf(target, sizeof(target), "%s:%u", p->target.host, p->target.port);
        json_array_append_new(arr, json_pack("{s:s, s:i, s:s}", "service",
                                             p->proto == NODE_PROTO_UDP ? "publish-udp" : "publish",
                                             "port", p->port, "target", target));
    }
    return arr;
}

static json_t *node_info(struct node_daemon *d, double uptime_s)
{
    char b64[WG_KEY_B64_LEN + 1] = "";
    uint8_t pub[WG_KEY_LEN];
    if (d->engine) {
        wg_engine_public_key(d->engine, pub);
        wg_key_to_base64(b64, pub);
    }
    const struct cfg_config *c = d->have_config ? &d->cfg : NULL;
    return json_pack("{s:s, s:s?, s:s?, s:o, s:i, s:o, s:I, s:I, s:I, s:s?}", "state",
                     node_lc_state_name(node_lifecycle_state(d)), "name", c ? c->name : NULL,
                     "public_key", b64[0] ? b64 : NULL, "addresses",
                     c ? prefixes_json(c->addresses, c->n_addresses) : json_array(), "listen_port",
                     d->engine ? wg_engine_port(d->engine) : 0, "listeners", listeners_json(d),
                     "pid", (json_int_t)getpid(), "uptime_seconds", (json_int_t)uptime_s, "peers",
                     (json_int_t)(c ? c->n_peers : 0), "config", c ? c->file : NULL);
}

static void rfc3339(uint64_t wall_ns, char *buf, size_t cap)
{
    time_t t = (time_t)(wall_ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *peer_info(struct node_daemon *d, const struct cfg_peer *p, uint64_t now_ns)
{
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_to_base64(b64, p->public_key);
    struct wg_peer_stats st;
    bool known = d->engine && wg_engine_peer_stats(d->engine, p->public_key, &st) == 0;
    if (!known)
        memset(&st, 0, sizeof(st));
    json_t *configured = json_array();
    char ep[BASE_HOST_MAX + 16];
    for (size_t i = 0; i < p->n_endpoints; i++) {
        snprintf(ep, sizeof(ep), "%s:%u", p->endpoints[i].host, p->endpoints[i].port);
        json_array_append_new(configured, json_string(ep));
    }
    json_t *o =
        json_pack("{s:s?, s:s, s:o, s:o, s:o, s:I, s:I, s:i, s:b, s:I}", "name", p->name,
                  "public_key", b64, "allowed_ips", prefixes_json(p->allowed_ips, p->n_allowed_ips),
                  "endpoint", endpoint_json(&st.endpoint), "configured_endpoints", configured,
                  "rx_bytes", (json_int_t)st.rx_bytes, "tx_bytes", (json_int_t)st.tx_bytes,
                  "persistent_keepalive", p->persistent_keepalive, "session", st.has_session,
                  "tx_queue_dropped", (json_int_t)st.tx_queue_dropped);
    if (st.last_handshake_wall_ns) {
        char when[32];
        rfc3339(st.last_handshake_wall_ns, when, sizeof(when));
        uint64_t ago = now_ns > st.last_handshake_wall_ns ? now_ns - st.last_handshake_wall_ns : 0;
        json_object_set_new(o, "last_handshake", json_string(when));
        json_object_set_new(o, "last_handshake_seconds_ago",
                            json_integer((json_int_t)(ago / 1000000000ull)));
    } else {
        json_object_set_new(o, "last_handshake", json_null());
        json_object_set_new(o, "last_handshake_seconds_ago", json_null());
    }
    return o;
}

static json_t *peers_json(struct node_daemon *d)
{
    json_t *arr = json_array();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    for (size_t i = 0; d->have_config && i < d->cfg.n_peers; i++)
        json_array_append_new(arr, peer_info(d, &d->cfg.peers[i], now_ns));
    return arr;
}

static json_t *engine_json(struct node_daemon *d)
{
    if (!d->engine)
        return json_null();
    struct wg_engine_stats s;
    wg_engine_stats(d->engine, &s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "rx_garbage", U(s.rx_garbage), "rx_bad_mac", U(s.rx_bad_mac), "rx_bad_index",
                     U(s.rx_bad_index), "rx_bad_packet", U(s.rx_bad_packet), "rx_replayed",
                     U(s.rx_replayed), "rx_bad_allowed_ip", U(s.rx_bad_allowed_ip),
                     "rx_unknown_peer", U(s.rx_unknown_peer), "rx_handshake_rate_limited",
                     U(s.rx_handshake_rate_limited), "cookie_replies_sent",
                     U(s.cookie_replies_sent), "tx_no_route", U(s.tx_no_route), "tx_queue_dropped",
                     U(s.tx_queue_dropped), "tx_udp_errors", U(s.tx_udp_errors),
                     "handshakes_completed", U(s.handshakes_completed));
}

static json_t *netstack_json(struct node_daemon *d)
{
    if (!d->stack)
        return json_null();
    const struct ns_counters *n = ns_stack_counters(d->stack);
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "pkts_in",
                          U(n->pkts_in), "bytes_in", U(n->bytes_in), "pkts_out", U(n->pkts_out),
                          "bytes_out", U(n->bytes_out), "drop_malformed", U(n->drop_malformed),
                          "drop_not_ours", U(n->drop_not_ours), "drop_limit", U(n->drop_limit),
                          "drop_pending", U(n->drop_pending), "no_route", U(n->no_route),
                          "tcp_open", U(n->tcp_open), "udp_open", U(n->udp_open));
    json_t *more = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tcp_accepted",
        U(n->tcp_accepted), "tcp_connected", U(n->tcp_connected), "tcp_unhandled",
        U(n->tcp_unhandled), "udp_accepted", U(n->udp_accepted), "udp_unhandled",
        U(n->udp_unhandled), "tcp_bytes_rx", U(n->tcp_bytes_rx), "tcp_bytes_tx", U(n->tcp_bytes_tx),
        "udp_bytes_rx", U(n->udp_bytes_rx), "udp_bytes_tx", U(n->udp_bytes_tx), "tcp_wnd_grown",
        U(n->tcp_wnd_grown), "tcp_wnd_largest", U(n->tcp_wnd_largest));
    json_object_update(o, more);
    json_decref(more);
    return o;
}

/* The --max-memory budget: what the netstack and the proxies hold now, of the limit. */
static json_t *memory_json(struct node_daemon *d)
{
    size_t proxies = 0;
    for (size_t i = 0; i < d->n_proxies; i++)
        proxies += proxy_server_memory(d->proxies[i]);
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "limit", U(d->budget.limit), "used",
                     U(d->budget.used), "peak", U(d->budget.peak), "netstack",
                     U(d->stack ? ns_stack_memory(d->stack) : 0), "proxies", U(proxies));
}

static json_t *dns_json(struct node_daemon *d)
{
    if (!d->dns)
        return json_null();
    struct dns_stats s;
    node_magicdns_stats(d->dns, &s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "queries", U(s.queries),
                     "local_answers", U(s.local_answers), "forwarded", U(s.forwarded), "cache_hits",
                     U(s.cache_hits), "upstream_failures", U(s.upstream_failures), "no_route",
                     U(s.no_route), "formerr", U(s.formerr), "dropped", U(s.dropped), "truncated",
                     U(s.truncated));
}

/* health.c's list: what is wrong, [] when nothing is */
static json_t *health_json(struct node_daemon *d)
{
    json_t *a = json_array();
    if (a && node_health_json(d, a) < 0)
        json_array_clear(a);
    return a;
}

json_t *node_localapi_status(struct node_daemon *d, double uptime_s)
{
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "version", TUNLESS_VERSION, "node",
                     node_info(d, uptime_s), "peers", peers_json(d), "engine", engine_json(d),
                     "netstack", netstack_json(d), "dns", dns_json(d), "memory", memory_json(d),
                     "health", health_json(d));
}
