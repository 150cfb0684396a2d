/*
 * The lifecycle on the local API: GET /v0/prefs, PATCH /v0/prefs, GET /v0/watch.
 *
 * A watcher: handler -> stream_start -> the snapshot line (state, prefs, peers) -> subscribe ->
 * one line per lifecycle event (and with ?stats=SECONDS a counters line at that interval) ->
 * it ends when the client leaves (on_gone), when it falls behind (the server drops it with a
 * final line once its bounded queue is full, so a slow reader never slows the node), or at
 * shutdown (a last "shutdown" line). Each end goes through watcher_end, which unsubscribes and
 * frees the watcher in its timer's close callback.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "http_server.h"
#include "metrics.h"

#define STATS_MAX_S 3600

struct watcher {
    struct node_daemon *d;
    struct node_http_conn *c; /* NULL once the stream is over */
    struct node_subscriber sub;
    uv_timer_t stats;
};

/* ---- JSON pieces ---- */

static json_t *key_json(const uint8_t key[WG_KEY_LEN])
{
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_to_base64(b64, key);
    return json_string(b64);
}

static json_t *time_json(uint64_t wall_ns)
{
    if (!wall_ns)
        return json_null();
    time_t s = (time_t)(wall_ns / 1000000000ull);
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *now_json(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return time_json((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

static json_t *prefs_json(const struct node_prefs *p)
{
    char *text = node_prefs_to_json(p);
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return v ? v : json_object();
}

static const char *peer_name_of(const struct node_daemon *d, const uint8_t *key)
{
    for (size_t i = 0; d->have_config && i < d->cfg.n_peers; i++)
        if (wg_key_equal(d->cfg.peers[i].public_key, key))
            return d->cfg.peers[i].name;
    return NULL;
}

struct peers_ctx {
    const struct node_daemon *d;
    json_t *list;
    bool counters_only;
};

static void add_peer(void *arg, const struct wg_peer_stats *st)
{
    struct peers_ctx *pc = arg;
    const char *name = peer_name_of(pc->d, st->public_key);
    json_t *p = json_pack("{s:o, s:I, s:I}", "public_key", key_json(st->public_key), "rx_bytes",
                          (json_int_t)st->rx_bytes, "tx_bytes", (json_int_t)st->tx_bytes);
    if (!p)
        return;
    if (!pc->counters_only) {
        char ep[BASE_ENDPOINT_STRLEN];
        json_object_set_new(p, "name", name ? json_string(name) : json_null());
        json_object_set_new(p, "endpoint",
                            st->endpoint.addr.family
                                ? json_string(base_endpoint_format(&st->endpoint, ep, sizeof(ep)))
                                : json_null());
        json_object_set_new(p, "last_handshake", time_json(st->last_handshake_wall_ns));
        json_object_set_new(p, "has_session", json_boolean(st->has_session));
    }
    json_array_append_new(pc->list, p);
}

static json_t *peers_json(const struct node_daemon *d, bool counters_only)
{
    struct peers_ctx pc = {.d = d, .list = json_array(), .counters_only = counters_only};
    if (d->engine)
        wg_engine_foreach_peer(d->engine, add_peer, &pc);
    return pc.list;
}

static json_t *snapshot_json(struct node_daemon *d)
{
    json_t *health = json_array();
    if (health && node_health_json(d, health) < 0)
        json_array_clear(health);
    return json_pack("{s:s, s:o, s:s, s:o, s:o, s:o}", "type", "snapshot", "time", now_json(),
                     "state", node_lc_state_name(node_lifecycle_state(d)), "prefs",
                     prefs_json(&d->life.prefs), "peers", peers_json(d, false), "health", health);
}

static json_t *event_json(const struct node_daemon *d, const struct node_event *ev)
{
    json_t *o = json_pack("{s:s, s:o}", "type", node_event_name(ev->kind), "time", now_json());
    if (!o)
        return NULL;
    if (ev->kind == NODE_EVENT_STATE) {
        json_object_set_new(o, "from", json_string(node_lc_state_name(ev->from)));
        json_object_set_new(o, "to", json_string(node_lc_state_name(ev->to)));
    }
    if (ev->peer) {
        json_object_set_new(o, "peer", key_json(ev->peer));
        json_object_set_new(o, "name", ev->peer_name ? json_string(ev->peer_name) : json_null());
    }
    if (ev->kind == NODE_EVENT_CONFIG_REJECTED && ev->detail)
        json_object_set_new(o, "error", node_http_json_text(ev->detail));
    else if (ev->detail)
        json_object_set_new(o, "detail", node_http_json_text(ev->detail));
    if (ev->kind == NODE_EVENT_HEALTH) {
        json_object_set_new(o, "code", json_string(ev->code ? ev->code : ""));
        json_object_set_new(o, "cleared", json_boolean(ev->cleared));
    }
    if (ev->kind == NODE_EVENT_PREFS)
        json_object_set_new(o, "prefs", prefs_json(&d->life.prefs));
    return o;
}

static json_t *stats_json(const struct node_daemon *d)
{
    struct wg_engine_stats es = {0};
    if (d->engine)
        wg_engine_stats(d->engine, &es);
    return json_pack("{s:s, s:o, s:s, s:{s:I, s:I, s:I}, s:o}", "type", "stats", "time", now_json(),
                     "state", node_lc_state_name(node_lifecycle_state(d)), "engine",
                     "handshakes_completed", (json_int_t)es.handshakes_completed, "tx_no_route",
                     (json_int_t)es.tx_no_route, "rx_bad_packet", (json_int_t)es.rx_bad_packet,
                     "peers", peers_json(d, true));
}

/* ---- prefs ---- */

static void get_prefs(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)req;
    struct node_daemon *d = arg;
    json_t *o = prefs_json(&d->life.prefs);
    json_object_set_new(o, "state", json_string(node_lc_state_name(node_lifecycle_state(d))));
    node_http_reply_json(c, 200, o);
}

static void patch_prefs(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    struct node_daemon *d = arg;
    struct node_prefs next = d->life.prefs;
    unsigned mask = 0;
    char err[512];
    const char *body = req->body_len ? req->body : "{}";
    size_t len = req->body_len ? req->body_len : 2;
    if (node_prefs_apply_json(&next, body, len, &mask, err, sizeof(err)) != 0) {
        node_http_reply_error(c, 400, "body: %s", err);
        return;
    }
    if (mask && node_lifecycle_set_prefs(d, &next, mask, err, sizeof(err)) != 0) {
        node_http_reply_error(c, 500, "prefs not changed: %s", err);
        return;
    }
    get_prefs(d, c, req);
}

/* ---- watch ---- */

static void on_watcher_closed(uv_handle_t *h)
{
    free(h->data);
}

/* The stream is over, whoever ended it: forget c, stop hearing events, free. */
static void watcher_end(struct watcher *w)
{
    w->c = NULL;
    node_lifecycle_unsubscribe(&w->sub);
    uv_close((uv_handle_t *)&w->stats, on_watcher_closed);
}

static void watcher_gone(void *arg, struct node_http_conn *c, int err)
{
    (void)c;
    (void)err;
    watcher_end(arg);
}

/* One line to the watcher; a full queue means the server dropped it (with its final line). */
static void watcher_send(struct watcher *w, json_t *line)
{
    if (!line)
        return;
    int rc = node_http_stream_write_json(w->c, line);
    json_decref(line);
    if (rc != 0)
        watcher_end(w);
}

static void watcher_event(struct node_subscriber *s, const struct node_event *ev)
{
    struct watcher *w = container_of(s, struct watcher, sub);
    watcher_send(w, event_json(w->d, ev));
    if (w->c && ev->kind == NODE_EVENT_SHUTDOWN) {
        node_http_stream_end(w->c);
        watcher_end(w);
    }
}

static void watcher_stats(uv_timer_t *t)
{
    struct watcher *w = t->data;
    if (w->c)
        watcher_send(w, stats_json(w->d));
}

static int parse_stats(const char *query, unsigned *seconds)
{
    char v[16], *end;
    *seconds = 0;
    int rc = node_http_query_get(query, "stats", v, sizeof(v));
    if (rc == -ENOENT)
        return 0;
    long n = rc == 0 ? strtol(v, &end, 10) : 0;
    if (rc != 0 || !*v || *end || n < 1 || n > STATS_MAX_S)
        return -1;
    *seconds = (unsigned)n;
    return 0;
}

static void get_watch(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    struct node_daemon *d = arg;
    unsigned every;
    if (parse_stats(req->query, &every) != 0) {
        node_http_reply_error(c, 400, "stats: want whole seconds from 1 to %d", STATS_MAX_S);
        return;
    }
    struct watcher *w = calloc(1, sizeof(*w));
    if (!w) {
        node_http_reply_error(c, 500, "out of memory");
        return;
    }
    w->d = d;
    w->c = c;
    w->sub.on_event = watcher_event;
    base_list_init(&w->sub.link);
    uv_timer_init(d->loop, &w->stats);
    w->stats.data = w;
    node_http_stream_start(c, "application/x-ndjson", watcher_gone, w);
    watcher_send(w, snapshot_json(d));
    if (!w->c)
        return;
    node_lifecycle_subscribe(d, &w->sub);
    if (every)
        uv_timer_start(&w->stats, watcher_stats, every * 1000ull, every * 1000ull);
}

int node_lifecycle_api_routes(struct node_daemon *d, struct node_http_server *s)
{
    const struct node_http_route routes[] = {
        {.method = "GET", .path = "/v0/prefs", .fn = get_prefs, .arg = d},
        {.method = "PATCH", .path = "/v0/prefs", .write = true, .fn = patch_prefs, .arg = d},
        {.method = "GET", .path = "/v0/watch", .fn = get_watch, .arg = d},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = node_http_server_route(s, &routes[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
