/*
 * What a running node tells about itself besides its logs: Prometheus metrics (metrics.c), the
 * health list (health.c), readiness, the read-only --metrics-listen HTTP listener
 * (metrics_http.c) and the netmap pushed at run time (netmap_put.c). Internal to node/.
 *
 * The daemon owns one struct node_metrics (d->metrics): node_metrics_start after the
 * listeners, node_metrics_close when it stops. Everything else reads the daemon's facts when
 * asked and keeps only the windows that turn counters into "recently".
 */
#ifndef TUNLESS_NODE_METRICS_H
#define TUNLESS_NODE_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

struct node_daemon;

/* A handshake this recent counts as fresh (health, /readyz?peers=all). */
#define NODE_HANDSHAKE_FRESH_S 180
/* Counters that moved within this window (and the one before) are "recent" for health. */
#define NODE_HEALTH_WINDOW_S 60
/* The netmap a node without a configuration file keeps in its state directory. */
#define NODE_NETMAP_STATE_FILE "netmap.json"

/* ---- health (health.c): a pure check over facts the node gathers ---- */

struct node_health_peer {
    const char *name;                /* MagicDNS name or NULL */
    const char *key;                 /* base64 public key */
    const char *endpoint;            /* the configured endpoint "host:port", NULL when none */
    bool endpoint_known;             /* the engine has an address for it (resolved or literal) */
    uint64_t last_handshake_wall_ns; /* 0 = never */
    bool handshake_unanswered;       /* it stopped answering our handshakes */
};

struct node_health_facts {
    bool have_config;
    uint64_t now_wall_ns;
    const struct node_health_peer *peers;
    size_t n_peers;
    uint64_t dns_upstream_failures; /* within the last window or two */
    uint64_t udp_rx_drops;          /* the same */
    const char *listen_error;       /* a listener that failed after a reload, or NULL */
};

struct node_health_item {
    const char *code; /* static: no_config, no_handshake, endpoint_unresolved, ... */
    char message[256];
};

/* Fills out with what is wrong (at most cap items). Returns how many. */
size_t node_health_check(const struct node_health_facts *f, struct node_health_item *out,
                         size_t cap);
/* The running node's health list as JSON objects {"code", "message"} appended to array (for
 * GET /v0/status and the watch stream). Returns how many were appended, or -ENOMEM. */
int node_health_json(struct node_daemon *d, json_t *array);

/* Once a second (the lifecycle's poll): tells subscribers (the watch stream) of each item that
 * appeared or cleared since the last call (NODE_EVENT_HEALTH). */
void node_health_poll(struct node_daemon *d);

/* ---- the daemon's part ---- */

struct node_metrics;
/* --metrics-listen (if set). Returns 0 or -1 with err ("metrics listener ADDR: in use ..."). */
int node_metrics_start(struct node_daemon *d, char *err, size_t errlen);
void node_metrics_close(struct node_daemon *d);
/* A listener inside the node failed to come up after a reload (err), or NULL when a later
 * configuration brought everything up. */
void node_metrics_note_listen_error(struct node_daemon *d, const char *err);

/* ---- answers, for the TCP listener and the local API alike ---- */

/* Prometheus text (malloc'd, *len bytes). Returns 0 or -ENOMEM. */
int node_metrics_text(struct node_daemon *d, char **out, size_t *len);
/* The node is Running (all_peers: and every peer with an endpoint had a handshake within
 * NODE_HANDSHAKE_FRESH_S and answers our handshakes). When not, why names the first reason. */
bool node_metrics_ready(struct node_daemon *d, bool all_peers, char *why, size_t cap);

/* ---- HTTP (metrics_http.c) ---- */

struct node_http_server;
/* GET /metrics, /healthz, /readyz[?peers=all] on s; with local_api also PUT /v0/netmap (a
 * write). 0 or the server's error. */
int node_metrics_routes(struct node_http_server *s, struct node_daemon *d, bool local_api);

/* ---- PUT /v0/netmap (netmap_put.c) ---- */

/* Applies a JSON netmap as a reload applies a file. Returns the HTTP status (200, 400 bad
 * netmap with its JSON path, 409 the configuration comes from a file) with *answer the JSON
 * body (the change, or {"error": ...}). */
int node_netmap_put(struct node_daemon *d, const char *body, size_t len, json_t **answer);
/* At start, for a node without a configuration file: the last netmap PUT, if any. One that
 * no longer parses is the node's own state gone bad, not the user's input: it is logged (file
 * and JSON path), moved aside as netmap.json.corrupt-TIME (0600) and the node starts without
 * it (NeedsConfig, until the next PUT). Returns 0 (*found says whether one was loaded into
 * d->cfg), or -1 with err naming the file when it cannot be read or moved. */
int node_netmap_resume(struct node_daemon *d, bool *found, char *err, size_t errlen);

#endif
