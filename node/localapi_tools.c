/*
 * The local API's tools: GET /v0/whois (which configured peer owns a tunnel address: the
 * longest allowed IP that contains it, or this node itself; or, for the host end of a
 * connection --publish relayed to a service, the peer and tunnel address it came from) and
 * POST /v0/ping (ICMP echoes through the netstack, or WireGuard handshake round trips, one
 * after another, answered once all are in). Flow: on_whois -> whois_relayed | find_owner ->
 * peer_json; on_ping -> parse_ping -> resolve_target -> send_next -> (ICMP) on_echo |
 * (wireguard) wait in d->ping_waits -> node_localapi_on_handshake or on_timeout -> record ->
 * (interval timer) send_next ... -> finish (reply) -> job_free; on_gone cancels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon.h"
#include "localapi.h"

#define PING_COUNT_MAX 100
#define PING_TIMEOUT_MS 2000
#define PING_INTERVAL_MS 1000

/* The peer whose allowed IPs contain addr most specifically, or NULL. */
static const struct cfg_peer *find_owner(const struct cfg_config *c, const struct base_addr *addr)
{
    const struct cfg_peer *best = NULL;
    int best_bits = -1;
    for (size_t i = 0; c && i < c->n_peers; i++)
        for (size_t k = 0; k < c->peers[i].n_allowed_ips; k++) {
            const struct base_prefix *p = &c->peers[i].allowed_ips[k];
            if (p->bits > best_bits && base_prefix_contains(p, addr)) {
                best = &c->peers[i];
                best_bits = p->bits;
            }
        }
    return best;
}

static bool is_self(const struct cfg_config *c, const struct base_addr *addr)
{
    for (size_t i = 0; c && i < c->n_addresses; i++)
        if (base_addr_equal(&c->addresses[i].addr, addr))
            return true;
    return false;
}

static json_t *peer_json(const struct cfg_peer *p)
{
    char b64[WG_KEY_B64_LEN + 1], buf[BASE_PREFIX_STRLEN];
    wg_key_to_base64(b64, p->public_key);
    json_t *ips = json_array();
    for (size_t k = 0; k < p->n_allowed_ips; k++)
        json_array_append_new(
            ips, json_string(base_prefix_format(&p->allowed_ips[k], buf, sizeof(buf))));
    return json_pack("{s:s?, s:s, s:o}", "name", p->name, "public_key", b64, "allowed_ips", ips);
}

/* "IP", "IP:PORT" or "[IPv6]:PORT". */
static int parse_addr(const char *s, struct base_addr *addr, int *port)
{
    char host[BASE_ADDR_STRLEN + 2];
    uint16_t p = 0;
    *port = -1;
    if (base_addr_parse(addr, s, strlen(s)) == 0)
        return 0;
    if (base_hostport_parse(s, strlen(s), host, sizeof(host), &p, 0, NULL) != 0 ||
        base_addr_parse(addr, host, strlen(host)) != 0)
        return -1;
    *port = p;
    return 0;
}

/* The service may see an IPv4 caller as ::ffff:a.b.c.d (a dual-stack socket). */
static void unmap_v4(struct base_addr *a)
{
    static const uint8_t prefix[12] = {[10] = 0xff, [11] = 0xff};
    if (a->family == AF_INET6 && memcmp(a->ip, prefix, sizeof(prefix)) == 0)
        base_addr_v4(a, a->ip + 12);
}

/* Where a relayed connection came from: {"from": {"addr", "port"}, "publish": {"proto",
 * "port", "target"}, "peer" | "self"}. */
static void whois_relayed(const struct cfg_config *cfg, const struct node_publish_conn *r,
                          json_t *o)
{
    char abuf[BASE_ADDR_STRLEN], target[BASE_HOST_MAX + 8];
    snprintf(target, sizeof(target), "%s:%u", r->p->target.host, r->p->target.port);
    json_object_set_new(o, "from",
                        json_pack("{s:s, s:i}", "addr",
                                  base_addr_format(&r->from.addr, abuf, sizeof(abuf)), "port",
                                  r->from.port));
    json_object_set_new(
        o, "publish",
        json_pack("{s:s, s:i, s:s}", "proto", "tcp", "port", r->p->port, "target", target));
    const struct cfg_peer *p = find_owner(cfg, &r->from.addr);
    if (is_self(cfg, &r->from.addr))
        json_object_set_new(o, "self", json_true());
    else if (p)
        json_object_set_new(o, "peer", peer_json(p));
}

static void on_whois(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    struct node_daemon *d = arg;
    char text[128];
    struct base_endpoint ep;
    int port;
    int rc = node_http_query_get(req->query, "addr", text, sizeof(text));
    if (rc != 0 || parse_addr(text, &ep.addr, &port) != 0) {
        node_http_reply_error(c, 400, "addr: want IP or IP:PORT (as ?addr=100.64.0.2)");
        return;
    }
    unmap_v4(&ep.addr);
    ep.port = (uint16_t)(port < 0 ? 0 : port);
    const struct cfg_config *cfg = d->have_config ? &d->cfg : NULL;
    char abuf[BASE_ADDR_STRLEN];
    base_addr_format(&ep.addr, abuf, sizeof(abuf));
    json_t *o = json_pack("{s:s}", "addr", abuf);
    if (port >= 0)
        json_object_set_new(o, "port", json_integer(port));
    const struct node_publish_conn *relayed = port >= 0 ? node_publish_find(d, &ep) : NULL;
    const struct cfg_peer *p = find_owner(cfg, &ep.addr);
    if (relayed) {
        whois_relayed(cfg, relayed, o);
    } else if (is_self(cfg, &ep.addr)) {
        json_object_set_new(o, "self", json_true());
    } else if (p) {
        json_object_set_new(o, "peer", peer_json(p));
    } else {
        json_decref(o);
        if (port >= 0)
            node_http_reply_error(c, 404,
                                  "no peer owns %s, and no connection through --publish comes "
                                  "from %s port %d",
                                  abuf, abuf, port);
        else
            node_http_reply_error(c, 404, "no peer owns %s", abuf);
        return;
    }
    node_http_reply_json(c, 200, o);
}

struct ping_job {
    struct node_daemon *d;
    struct node_http_conn *c;
    struct ns_ping *ping;       /* icmp: the echo in flight */
    struct base_list wait_link; /* wireguard: in d->ping_waits while a handshake is out */
    uv_timer_t timer;           /* the interval; for wireguard also the timeout */
    struct base_addr addr;
    bool wireguard;
    uint8_t key[WG_KEY_LEN]; /* wireguard: the peer's */
    json_t *answer, *replies;
    int count, seq, received;
    bool failed;
};

static void on_timer_closed(uv_handle_t *h)
{
    struct ping_job *j = h->data;
    json_decref(j->answer);
    free(j);
}

static void job_free(struct ping_job *j)
{
    if (j->ping)
        ns_ping_cancel(j->ping);
    j->ping = NULL;
    base_list_remove(&j->wait_link);
    uv_close((uv_handle_t *)&j->timer, on_timer_closed);
}

static void finish(struct ping_job *j)
{
    json_object_set_new(j->answer, "sent", json_integer(j->seq));
    json_object_set_new(j->answer, "received", json_integer(j->received));
    node_http_reply_json(j->c, 200, json_incref(j->answer));
    job_free(j);
}

static void send_next(struct ping_job *j);

static void on_interval(uv_timer_t *t)
{
    send_next(t->data);
}

static const char *ping_error(const struct ping_job *j, int status)
{
    if (status == -ETIMEDOUT)
        return "no answer";
    if (j->wireguard && status == -EDESTADDRREQ)
        return "the peer has no endpoint yet";
    if (j->wireguard && status == -ENOENT)
        return "the peer is no longer configured";
    return base_strerror(status);
}

/* One reply (rtt taken) or its failure, then the next after the interval or the answer. */
static void record(struct ping_job *j, int status, json_t *rtt)
{
    json_t *r = json_pack("{s:i}", "seq", j->seq);
    if (status == 0) {
        j->received++;
        json_object_set_new(r, "rtt_ms", rtt);
    } else {
        json_decref(rtt);
        json_object_set_new(r, "error", json_string(ping_error(j, status)));
    }
    if (status == 0 && j->wireguard) { /* where the response came from */
        struct wg_peer_stats st;
        char ep[BASE_ENDPOINT_STRLEN];
        if (wg_engine_peer_stats(j->d->engine, j->key, &st) == 0 && st.endpoint.addr.family)
            json_object_set_new(r, "endpoint",
                                json_string(base_endpoint_format(&st.endpoint, ep, sizeof(ep))));
    }
    json_array_append_new(j->replies, r);
    if (j->seq >= j->count || status == BASE_ECLOSING || j->failed)
        finish(j);
    else
        uv_timer_start(&j->timer, on_interval, PING_INTERVAL_MS, 0);
}

static void on_echo(void *data, int status, uint64_t rtt_ms)
{
    struct ping_job *j = data;
    j->ping = NULL;
    record(j, status, json_integer((json_int_t)rtt_ms));
}

static void on_timeout(uv_timer_t *t)
{
    struct ping_job *j = t->data;
    base_list_remove(&j->wait_link);
    record(j, -ETIMEDOUT, NULL);
}

void node_localapi_on_handshake(void *arg, const uint8_t public_key[WG_KEY_LEN], uint64_t rtt_ns)
{
    struct node_daemon *d = arg;
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &d->ping_waits) {
        struct ping_job *j = container_of(pos, struct ping_job, wait_link);
        if (memcmp(j->key, public_key, WG_KEY_LEN) != 0)
            continue;
        base_list_remove(&j->wait_link);
        uv_timer_stop(&j->timer);
        record(j, 0, json_real((double)(rtt_ns / 1000) / 1000.0)); /* ms, to the microsecond */
    }
}

/* A handshake initiation, answered through node_localapi_on_handshake or timed out. */
static int send_handshake(struct ping_job *j)
{
    int rc = j->d->engine ? wg_engine_initiate_handshake(j->d->engine, j->key) : -ENETUNREACH;
    if (rc != 0)
        return rc;
    base_list_push_back(&j->d->ping_waits, &j->wait_link);
    uv_timer_start(&j->timer, on_timeout, PING_TIMEOUT_MS, 0);
    return 0;
}

static void send_next(struct ping_job *j)
{
    j->seq++;
    int rc;
    if (j->wireguard)
        rc = send_handshake(j);
    else
        rc = j->d->stack ? ns_ping_send(j->d->stack, &j->addr, (uint16_t)j->seq, 56,
                                        PING_TIMEOUT_MS, on_echo, j, &j->ping)
                         : -ENETUNREACH;
    j->failed = rc != 0; /* nothing was sent (no netstack yet): trying again will not help */
    if (rc != 0)
        record(j, rc, NULL);
}

static void on_gone(void *arg, struct node_http_conn *c, int err)
{
    (void)c;
    (void)err;
    job_free(arg);
}

/* A peer's name (or name.suffix) to the address MagicDNS gives it (its first host route) and
 * the peer; an address to itself and the peer that owns it (NULL: none). */
static int resolve_target(const struct cfg_config *cfg, const char *target, struct base_addr *out,
                          const struct cfg_peer **peer)
{
    if (base_addr_parse(out, target, strlen(target)) == 0) {
        *peer = find_owner(cfg, out);
        return 0;
    }
    size_t tl = strcspn(target, ".");
    for (size_t i = 0; cfg && i < cfg->n_peers; i++) {
        const struct cfg_peer *p = &cfg->peers[i];
        if (!p->name || strlen(p->name) != tl || strncasecmp(p->name, target, tl) != 0 ||
            p->n_allowed_ips == 0)
            continue;
        *out = p->allowed_ips[0].addr;
        for (size_t k = 0; k < p->n_allowed_ips; k++)
            if (p->allowed_ips[k].bits == (p->allowed_ips[k].addr.family == AF_INET ? 32 : 128)) {
                *out = p->allowed_ips[k].addr;
                break;
            }
        *peer = p;
        return 0;
    }
    return -1;
}

/* The request's fault, or NULL with *type, *count, *addr and *peer filled in. */
static const char *check_ping(struct node_daemon *d, json_t *body, const char **type, int *count,
                              struct base_addr *addr, const struct cfg_peer **peer)
{
    const char *target = json_string_value(json_object_get(body, "target"));
    json_t *n = json_object_get(body, "count");
    *type = json_string_value(json_object_get(body, "type"));
    if (!*type)
        *type = "icmp";
    if (!target)
        return "target: want a peer's name or a tunnel address";
    if (strcmp(*type, "icmp") != 0 && strcmp(*type, "wireguard") != 0)
        return "type: want \"icmp\" or \"wireguard\"";
    if (n && (!json_is_integer(n) || json_integer_value(n) < 1 ||
              json_integer_value(n) > PING_COUNT_MAX))
        return "count: want an integer from 1 to 100";
    *count = n ? (int)json_integer_value(n) : 1;
    if (resolve_target(d->have_config ? &d->cfg : NULL, target, addr, peer) != 0)
        return "target: no peer has that name";
    if (strcmp(*type, "wireguard") == 0 && !*peer)
        return "target: no peer owns that address (a WireGuard ping goes to a peer)";
    return NULL;
}

static struct ping_job *parse_ping(struct node_daemon *d, struct node_http_conn *c,
                                   const struct node_http_request *req)
{
    json_t *body = node_http_body_json(c, req);
    if (!body)
        return NULL;
    const char *type;
    int count;
    struct base_addr addr;
    const struct cfg_peer *peer = NULL;
    const char *err = check_ping(d, body, &type, &count, &addr, &peer);
    struct ping_job *j = err ? NULL : calloc(1, sizeof(*j));
    if (j) {
        char abuf[BASE_ADDR_STRLEN];
        *j = (struct ping_job){.d = d,
                               .c = c,
                               .addr = addr,
                               .wireguard = strcmp(type, "wireguard") == 0,
                               .replies = json_array(),
                               .count = count};
        base_list_init(&j->wait_link);
        j->answer = json_pack("{s:O, s:s, s:s, s:O}", "target", json_object_get(body, "target"),
                              "addr", base_addr_format(&addr, abuf, sizeof(abuf)), "type", type,
                              "replies", j->replies);
        json_decref(j->replies); /* the answer holds it */
        if (peer) {
            memcpy(j->key, peer->public_key, WG_KEY_LEN);
            json_object_set_new(j->answer, "peer", peer_json(peer));
        }
    }
    if (err)
        node_http_reply_error(c, 400, "%s", err);
    json_decref(body);
    return j;
}

static void on_ping(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    struct node_daemon *d = arg;
    struct ping_job *j = parse_ping(d, c, req);
    if (!j)
        return;
    uv_timer_init(d->loop, &j->timer);
    j->timer.data = j;
    /* Each probe is bounded (PING_TIMEOUT_MS, then the interval): the server's deadline only
     * catches a probe whose end never comes. */
    unsigned deadline = (unsigned)j->count * (PING_INTERVAL_MS + PING_TIMEOUT_MS) + 5000;
    node_http_defer(c, deadline, on_gone, j);
    send_next(j);
}

int node_localapi_tools_routes(struct node_http_server *http, struct node_daemon *d)
{
    const struct node_http_route routes[] = {
        {.method = "GET", .path = "/v0/whois", .fn = on_whois, .arg = d},
        {.method = "POST", .path = "/v0/ping", .fn = on_ping, .arg = d},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = node_http_server_route(http, &routes[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
