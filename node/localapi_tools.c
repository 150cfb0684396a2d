/*
 * The local API's tools: GET /v0/whois (which configured peer owns a tunnel address: the
 * longest allowed IP that contains it, or this node itself) and POST /v0/ping (ICMP echoes
 * through the netstack, one after another, answered once all are in). Flow: on_whois ->
 * find_owner -> owner_json; on_ping -> parse_ping -> resolve_target -> send_next -> on_echo ->
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

static void on_whois(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    struct node_daemon *d = arg;
    char text[128];
    struct base_addr addr;
    int port;
    int rc = node_http_query_get(req->query, "addr", text, sizeof(text));
    if (rc != 0 || parse_addr(text, &addr, &port) != 0) {
        node_http_reply_error(c, 400, "addr: want IP or IP:PORT (as ?addr=100.64.0.2)");
        return;
    }
    const struct cfg_config *cfg = d->have_config ? &d->cfg : NULL;
    char abuf[BASE_ADDR_STRLEN];
    base_addr_format(&addr, abuf, sizeof(abuf));
    json_t *o = json_pack("{s:s}", "addr", abuf);
    if (port >= 0)
        json_object_set_new(o, "port", json_integer(port));
    const struct cfg_peer *p = find_owner(cfg, &addr);
    if (is_self(cfg, &addr)) {
        json_object_set_new(o, "self", json_true());
    } else if (p) {
        json_object_set_new(o, "peer", peer_json(p));
    } else {
        json_decref(o);
        node_http_reply_error(c, 404, "no peer owns %s", abuf);
        return;
    }
    node_http_reply_json(c, 200, o);
}

struct ping_job {
    struct node_daemon *d;
    struct node_http_conn *c;
    struct ns_ping *ping;
    uv_timer_t timer;
    struct base_addr addr;
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

static void on_echo(void *data, int status, uint64_t rtt_ms)
{
    struct ping_job *j = data;
    j->ping = NULL;
    json_t *r = json_pack("{s:i}", "seq", j->seq);
    if (status == 0) {
        j->received++;
        json_object_set_new(r, "rtt_ms", json_integer((json_int_t)rtt_ms));
    } else {
        json_object_set_new(
            r, "error", json_string(status == -ETIMEDOUT ? "no answer" : base_strerror(status)));
    }
    json_array_append_new(j->replies, r);
    if (j->seq >= j->count || status == BASE_ECLOSING || j->failed)
        finish(j);
    else
        uv_timer_start(&j->timer, on_interval, PING_INTERVAL_MS, 0);
}

static void send_next(struct ping_job *j)
{
    j->seq++;
    int rc = j->d->stack ? ns_ping_send(j->d->stack, &j->addr, (uint16_t)j->seq, 56,
                                        PING_TIMEOUT_MS, on_echo, j, &j->ping)
                         : -ENETUNREACH;
    j->failed = rc != 0; /* nothing was sent (no netstack yet): trying again will not help */
    if (rc != 0)
        on_echo(j, rc, 0);
}

static void on_gone(void *arg, struct node_http_conn *c, int err)
{
    (void)c;
    (void)err;
    job_free(arg);
}

/* A peer's name (or name.suffix) to the address MagicDNS gives it: its first host route. */
static int resolve_target(const struct cfg_config *cfg, const char *target, struct base_addr *out)
{
    if (base_addr_parse(out, target, strlen(target)) == 0)
        return 0;
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
        return 0;
    }
    return -1;
}

static struct ping_job *parse_ping(struct node_daemon *d, struct node_http_conn *c,
                                   const struct node_http_request *req)
{
    json_t *body = node_http_body_json(c, req);
    if (!body)
        return NULL;
    const char *target = json_string_value(json_object_get(body, "target"));
    const char *type = json_string_value(json_object_get(body, "type"));
    json_t *count = json_object_get(body, "count");
    struct base_addr addr;
    const char *err = NULL;
    if (!target)
        err = "target: want a peer's name or a tunnel address";
    else if (type && strcmp(type, "icmp") != 0)
        err = "type: only \"icmp\" is supported";
    else if (count && (!json_is_integer(count) || json_integer_value(count) < 1 ||
                       json_integer_value(count) > PING_COUNT_MAX))
        err = "count: want an integer from 1 to 100";
    else if (resolve_target(d->have_config ? &d->cfg : NULL, target, &addr) != 0)
        err = "target: no peer has that name";
    struct ping_job *j = err ? NULL : calloc(1, sizeof(*j));
    if (j) {
        char abuf[BASE_ADDR_STRLEN];
        *j = (struct ping_job){.d = d,
                               .c = c,
                               .addr = addr,
                               .replies = json_array(),
                               .count = count ? (int)json_integer_value(count) : 1};
        j->answer = json_pack("{s:s, s:s, s:s, s:O}", "target", target, "addr",
                              base_addr_format(&addr, abuf, sizeof(abuf)), "type", "icmp",
                              "replies", j->replies);
        json_decref(j->replies); /* the answer holds it */
    }
    json_decref(body);
    if (err)
        node_http_reply_error(c, 400, "%s", err);
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
    node_http_defer(c, on_gone, j);
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
