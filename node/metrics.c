/*
 * The node's metrics as Prometheus text: node_metrics_text runs the collectors (node, engine,
 * peers, netstack, DNS; the proxies' are in metrics_proxy.c) into a base_prom buffer, doubling
 * it until the text fits. Names follow Prometheus' conventions: tunless_ prefix, units in the
 * name, _total on counters. Peers are labelled with their name and public key (never a private key). Then the
 * daemon's part: start, close, the listen error, and the counter windows health reads.
 */
#include "metrics.h"
#include "metrics_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define C BASE_PROM_COUNTER
#define G BASE_PROM_GAUGE

uint64_t node_metrics_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *node_metrics_state(struct node_daemon *d)
{
    return node_lc_state_name(node_lifecycle_state(d));
}

static void collect_node(struct node_daemon *d, struct base_prom *p)
{
    static const char *const states[] = {"NeedsConfig", "Starting", "Running", "Stopped"};
    const char *now = node_metrics_state(d);
    base_prom_family(p, "tunless_state", G, "1 for the state the node is in, 0 for the others");
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        struct base_prom_label l = {"state", states[i]};
        base_prom_u64(p, &l, 1, strcmp(states[i], now) == 0);
    }
    base_prom_family(p, "tunless_start_time_seconds", G, "when the node started, Unix time");
    base_prom_double(p, NULL, 0, d->metrics ? (double)d->metrics->start_wall_ns / 1e9 : 0);
    base_prom_one(p, "tunless_peers", G, "peers in the configuration",
                  d->have_config ? d->cfg.n_peers : 0);
}

static void labelled(struct base_prom *p, const char *name, const char *help, const char *label,
                     const char *const *values, const uint64_t *counts, size_t n)
{
    base_prom_family(p, name, C, help);
    for (size_t i = 0; i < n; i++) {
        struct base_prom_label l = {label, values[i]};
        base_prom_u64(p, &l, 1, counts[i]);
    }
}

static void collect_engine(struct node_daemon *d, struct base_prom *p)
{
    struct wg_engine_stats s;
    if (!d->engine)
        return;
    wg_engine_stats(d->engine, &s);
    static const char *const rx[] = {"garbage",  "bad_mac",        "bad_index",    "bad_packet",
                                     "replayed", "bad_allowed_ip", "unknown_peer", "rate_limited"};
    const uint64_t rxn[] = {
        s.rx_garbage,  s.rx_bad_mac,        s.rx_bad_index,    s.rx_bad_packet,
        s.rx_replayed, s.rx_bad_allowed_ip, s.rx_unknown_peer, s.rx_handshake_rate_limited};
    labelled(p, "tunless_wireguard_receive_dropped_packets_total",
             "WireGuard messages received and dropped, by reason", "reason", rx, rxn, 8);
    static const char *const tx[] = {"no_route", "queue_full", "udp_error"};
    const uint64_t txn[] = {s.tx_no_route, s.tx_queue_dropped, s.tx_udp_errors};
    labelled(p, "tunless_wireguard_transmit_dropped_packets_total",
             "packets that could not be sent through the tunnel, by reason", "reason", tx, txn, 3);
    base_prom_one(p, "tunless_wireguard_handshakes_completed_total", C,
                  "WireGuard handshakes completed", s.handshakes_completed);
    base_prom_one(p, "tunless_wireguard_cookie_replies_sent_total", C,
                  "cookie replies sent to handshakes under load", s.cookie_replies_sent);
    base_prom_one(p, "tunless_wireguard_udp_receive_buffer_dropped_packets_total", C,
                  "datagrams the kernel dropped because the UDP receive buffer was full",
                  s.rx_socket_drops);
    base_prom_one(p, "tunless_wireguard_listen_port", G, "the WireGuard UDP port",
                  wg_engine_port(d->engine));
}

/* One sample per configured peer the engine knows. */
struct peer_row {
    const char *name;
    char key[WG_KEY_B64_LEN + 1];
    struct wg_peer_stats st;
};

static void peer_family(struct base_prom *p, const struct peer_row *rows, size_t n,
                        const char *name, enum base_prom_type type, const char *help,
                        double (*value)(const struct wg_peer_stats *st, uint64_t now), uint64_t now)
{
    base_prom_family(p, name, type, help);
    for (size_t i = 0; i < n; i++) {
        double v = value(&rows[i].st, now);
        if (v < 0)
            continue; /* no value (a handshake that never happened) */
        struct base_prom_label l[] = {{"peer", rows[i].name}, {"public_key", rows[i].key}};
        if (type == C)
            base_prom_u64(p, l, 2, (uint64_t)v);
        else
            base_prom_double(p, l, 2, v);
    }
}

static double v_rx(const struct wg_peer_stats *s, uint64_t now)
{
    (void)now;
    return (double)s->rx_bytes;
}
static double v_tx(const struct wg_peer_stats *s, uint64_t now)
{
    (void)now;
    return (double)s->tx_bytes;
}
static double v_hs(const struct wg_peer_stats *s, uint64_t now)
{
    (void)now;
    return (double)s->last_handshake_wall_ns / 1e9;
}
static double v_age(const struct wg_peer_stats *s, uint64_t now)
{
    if (!s->last_handshake_wall_ns)
        return -1;
    return now > s->last_handshake_wall_ns ? (double)(now - s->last_handshake_wall_ns) / 1e9 : 0;
}
static double v_session(const struct wg_peer_stats *s, uint64_t now)
{
    (void)now;
    return s->has_session;
}
static double v_unanswered(const struct wg_peer_stats *s, uint64_t now)
{
    (void)now;
    return s->handshake_unanswered;
}
static double v_qdrop(const struct wg_peer_stats *s, uint64_t now)
{
    (void)now;
    return (double)s->tx_queue_dropped;
}

static void collect_peers(struct node_daemon *d, struct base_prom *p)
{
    size_t n = 0, cap = d->have_config && d->engine ? d->cfg.n_peers : 0;
    struct peer_row *rows = calloc(cap + 1, sizeof(*rows));
    if (!rows)
        return;
    for (size_t i = 0; i < cap; i++) {
        const struct cfg_peer *cp = &d->cfg.peers[i];
        if (wg_engine_peer_stats(d->engine, cp->public_key, &rows[n].st) != 0)
            continue;
        rows[n].name = cp->name ? cp->name : "";
        wg_key_to_base64(rows[n].key, cp->public_key);
        n++;
    }
    static const struct {
        const char *name;
        enum base_prom_type type;
        const char *help;
        double (*value)(const struct wg_peer_stats *st, uint64_t now);
    } families[] = {
        {"tunless_peer_receive_bytes_total", C, "WireGuard bytes received from the peer", v_rx},
        {"tunless_peer_transmit_bytes_total", C, "WireGuard bytes sent to the peer", v_tx},
        {"tunless_peer_last_handshake_timestamp_seconds", G,
         "the peer's last completed handshake, Unix time (0 = never)", v_hs},
        {"tunless_peer_handshake_age_seconds", G,
         "seconds since the peer's last completed handshake (absent: never)", v_age},
        {"tunless_peer_session_up", G, "1 when a usable session with the peer exists", v_session},
        {"tunless_peer_handshake_unanswered", G,
         "1 while our handshake initiation to the peer goes unanswered", v_unanswered},
        {"tunless_peer_queue_dropped_packets_total", C,
         "packets dropped while waiting for a handshake with the peer", v_qdrop},
    };
    uint64_t now = node_metrics_wall_ns();
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        peer_family(p, rows, n, families[i].name, families[i].type, families[i].help,
                    families[i].value, now);
    free(rows);
}

static void collect_netstack(struct node_daemon *d, struct base_prom *p)
{
    if (!d->stack)
        return;
    const struct ns_counters *c = ns_stack_counters(d->stack);
    base_prom_one(p, "tunless_netstack_receive_packets_total", C,
                  "IP packets accepted from the tunnel", c->pkts_in);
    base_prom_one(p, "tunless_netstack_receive_bytes_total", C, "IP bytes accepted from the tunnel",
                  c->bytes_in);
    base_prom_one(p, "tunless_netstack_transmit_packets_total", C,
                  "IP packets handed to the tunnel", c->pkts_out);
    base_prom_one(p, "tunless_netstack_transmit_bytes_total", C, "IP bytes handed to the tunnel",
                  c->bytes_out);
    static const char *const why[] = {"malformed", "not_ours", "limit", "pending", "no_route"};
    const uint64_t whyn[] = {c->drop_malformed, c->drop_not_ours, c->drop_limit, c->drop_pending,
                             c->no_route};
    labelled(p, "tunless_netstack_dropped_packets_total", "packets the netstack dropped, by reason",
             "reason", why, whyn, 5);
    base_prom_one(p, "tunless_netstack_tcp_connections", G, "TCP connections open", c->tcp_open);
    base_prom_one(p, "tunless_netstack_udp_flows", G, "UDP flows open", c->udp_open);
    static const char *const tcp[] = {"inbound", "outbound", "refused"};
    const uint64_t tcpn[] = {c->tcp_accepted, c->tcp_connected, c->tcp_unhandled};
    labelled(p, "tunless_netstack_tcp_connections_total",
             "TCP connections accepted (inbound), made (outbound) or refused (no handler)",
             "result", tcp, tcpn, 3);
    static const char *const udp[] = {"inbound", "refused"};
    const uint64_t udpn[] = {c->udp_accepted, c->udp_unhandled};
    labelled(p, "tunless_netstack_udp_flows_total", "inbound UDP flows accepted or refused",
             "result", udp, udpn, 2);
    static const char *const dir[] = {"tcp", "udp"};
    const uint64_t rxn[] = {c->tcp_bytes_rx, c->udp_bytes_rx},
                   txn[] = {c->tcp_bytes_tx, c->udp_bytes_tx};
    labelled(p, "tunless_netstack_payload_receive_bytes_total",
             "payload bytes received on netstack connections and flows", "protocol", dir, rxn, 2);
    labelled(p, "tunless_netstack_payload_transmit_bytes_total",
             "payload bytes sent on netstack connections and flows", "protocol", dir, txn, 2);
}

static void collect_dns(struct node_daemon *d, struct base_prom *p)
{
    struct dns_stats s;
    node_magicdns_stats(d->dns, &s);
    base_prom_one(p, "tunless_dns_queries_total", C, "DNS queries received", s.queries);
    static const char *const how[] = {"local", "cache", "forwarded"};
    const uint64_t hown[] = {s.local_answers, s.cache_hits, s.forwarded};
    labelled(p, "tunless_dns_answers_total",
             "queries answered by MagicDNS (local), from the cache, or sent upstream", "source",
             how, hown, 3);
    static const char *const err[] = {"upstream_failure", "no_route", "formerr", "dropped",
                                      "truncated"};
    const uint64_t errn[] = {s.upstream_failures, s.no_route, s.formerr, s.dropped, s.truncated};
    labelled(p, "tunless_dns_errors_total",
             "queries answered SERVFAIL (upstream_failure, no_route), FORMERR, dropped, or "
             "answered truncated",
             "kind", err, errn, 5);
}

int node_metrics_text(struct node_daemon *d, char **out, size_t *len)
{
    size_t cap = 16384 + (d->have_config ? d->cfg.n_peers * 2048 : 0);
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return -ENOMEM;
        struct base_prom p;
        base_prom_init(&p, buf, cap);
        collect_node(d, &p);
        collect_engine(d, &p);
        collect_peers(d, &p);
        collect_netstack(d, &p);
        collect_dns(d, &p);
        node_metrics_collect_proxies(d, &p);
        if (!p.truncated) {
            *out = buf;
            *len = p.len;
            return 0;
        }
        free(buf);
        cap *= 2;
    }
}

/* ---- the daemon's part ---- */

int node_metrics_start(struct node_daemon *d, char *err, size_t errlen)
{
    d->metrics = calloc(1, sizeof(*d->metrics));
    if (!d->metrics) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->metrics->start_wall_ns = node_metrics_wall_ns();
    d->metrics->dns_failures.base_ms = d->metrics->udp_drops.base_ms = uv_now(d->loop);
    return node_metrics_http_start(d, err, errlen);
}

void node_metrics_close(struct node_daemon *d)
{
    if (!d->metrics)
        return;
    node_metrics_http_close(d); /* frees d->metrics once its handles are closed */
}

void node_metrics_note_listen_error(struct node_daemon *d, const char *err)
{
    if (d->metrics)
        snprintf(d->metrics->listen_error, sizeof(d->metrics->listen_error), "%s", err ? err : "");
}

static uint64_t recent(struct node_window *w, uint64_t value, uint64_t now_ms)
{
    if (now_ms - w->base_ms >= NODE_HEALTH_WINDOW_S * 1000ull) {
        w->previous = value - w->base;
        w->base = value;
        w->base_ms = now_ms;
    }
    return value - w->base + w->previous;
}

void node_metrics_recent(struct node_daemon *d, struct node_health_facts *f)
{
    if (!d->metrics)
        return;
    struct dns_stats ds;
    node_magicdns_stats(d->dns, &ds);
    struct wg_engine_stats es = {0};
    if (d->engine)
        wg_engine_stats(d->engine, &es);
    uint64_t now = uv_now(d->loop);
    f->dns_upstream_failures = recent(&d->metrics->dns_failures, ds.upstream_failures, now);
    f->udp_rx_drops = recent(&d->metrics->udp_drops, es.rx_socket_drops, now);
    f->listen_error = d->metrics->listen_error[0] ? d->metrics->listen_error : NULL;
}
