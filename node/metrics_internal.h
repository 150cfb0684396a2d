/* Shared by metrics.c, health.c, metrics_http.c and netmap_put.c; internal to them. */
#ifndef TUNLESS_NODE_METRICS_INTERNAL_H
#define TUNLESS_NODE_METRICS_INTERNAL_H

#include "metrics.h"

/* A counter seen through windows of NODE_HEALTH_WINDOW_S: what it gained in the current window
 * and the one before. */
struct node_window {
    uint64_t base;     /* the value when the current window began */
    uint64_t base_ms;  /* uv_now then */
    uint64_t previous; /* what the previous window gained */
};

struct node_http_server; /* http_server.h: --metrics-listen's */

#define NODE_HEALTH_MAX 32

struct node_metrics {
    struct node_window dns_failures, udp_drops;
    struct node_health_item health[NODE_HEALTH_MAX]; /* what the last node_health_poll saw */
    size_t n_health;
    char listen_error[512]; /* "" = none */
    uint64_t start_wall_ns;
    struct node_http_server *http;
};

uint64_t node_metrics_wall_ns(void);
/* The node's state as the lifecycle names it: NeedsConfig, Starting, Running, Stopped. */
const char *node_metrics_state(struct node_daemon *d);
/* The windowed counters and the listen error into f. */
void node_metrics_recent(struct node_daemon *d, struct node_health_facts *f);

/* metrics_proxy.c: every proxy listener's counters */
void node_metrics_collect_proxies(struct node_daemon *d, struct base_prom *p);

/* metrics_http.c */
int node_metrics_http_start(struct node_daemon *d, char *err, size_t errlen);
void node_metrics_http_close(struct node_daemon *d);

#endif
