/*
 * The HTTP face of metrics.h: node_metrics_routes puts GET /metrics, /healthz and /readyz (and,
 * on the local API, PUT /v0/netmap) on a node_http_server; the handlers only call metrics.c,
 * health.c and netmap_put.c. --metrics-listen is one more node_http_server with the read-only
 * routes on TCP (node_metrics_http_start / _close), so one HTTP server serves both.
 */
#include "metrics.h"
#include "metrics_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "http_server.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

static void reply_text(struct node_http_conn *c, int status, const char *text)
{
    char line[320];
    int n = snprintf(line, sizeof(line), "%s\n", text);
    node_http_reply(c, status, TEXT_TYPE, line, (size_t)n < sizeof(line) ? (size_t)n : 0);
}

static void on_metrics(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)req;
    char *text;
    size_t len;
    if (node_metrics_text(arg, &text, &len) != 0) {
        node_http_reply_error(c, 500, "out of memory");
        return;
    }
    node_http_reply(c, 200, PROM_TYPE, text, len);
    free(text);
}

/* That the loop answers at all is the news. */
static void on_healthz(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)arg;
    (void)req;
    reply_text(c, 200, "ok");
}

static void on_readyz(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    char peers[16], why[256];
    bool all = node_http_query_get(req->query, "peers", peers, sizeof(peers)) == 0 &&
               strcmp(peers, "all") == 0;
    bool ready = node_metrics_ready(arg, all, why, sizeof(why));
    reply_text(c, ready ? 200 : 503, why);
}

static void on_netmap_put(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    json_t *answer = NULL;
    int status = node_netmap_put(arg, req->body, req->body_len, &answer);
    if (!answer) {
        node_http_reply_error(c, 500, "out of memory");
        return;
    }
    node_http_reply_json(c, status, answer);
}

int node_metrics_routes(struct node_http_server *s, struct node_daemon *d, bool local_api)
{
    const struct node_http_route routes[] = {
        {.method = "GET", .path = "/metrics", .fn = on_metrics, .arg = d},
        {.method = "GET", .path = "/healthz", .fn = on_healthz, .arg = d},
        {.method = "GET", .path = "/readyz", .fn = on_readyz, .arg = d},
        {.method = "PUT", .path = "/v0/netmap", .write = true, .fn = on_netmap_put, .arg = d},
    };
    size_t n = sizeof(routes) / sizeof(routes[0]) - (local_api ? 0 : 1);
    for (size_t i = 0; i < n; i++) {
        int rc = node_http_server_route(s, &routes[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- --metrics-listen ---- */

int node_metrics_http_start(struct node_daemon *d, char *err, size_t errlen)
{
    if (!d->opts.metrics_listen_on)
        return 0;
    const struct node_http_config hc = {.name = "metrics", .log = node_log_logger(&d->log)};
    char ep[BASE_ENDPOINT_STRLEN];
    struct base_endpoint bound;
    base_endpoint_format(&d->opts.metrics_listen, ep, sizeof(ep));
    int rc = node_http_server_new(d->loop, &hc, &d->metrics->http);
    if (rc == 0)
        rc = node_metrics_routes(d->metrics->http, d, false);
    if (rc == 0)
        rc = node_http_server_listen_tcp(d->metrics->http, &d->opts.metrics_listen, &bound);
    if (rc != 0) {
        snprintf(err, errlen,
                 "metrics listener %s: %s (choose another address with "
                 "--metrics-listen)",
                 ep, base_strerror(rc));
        return -1;
    }
    node_log(&d->log, BASE_LOG_INFO, "listening", "service=metrics addr=%s",
             base_endpoint_format(&bound, ep, sizeof(ep)));
    return 0;
}

static void on_http_closed(void *arg)
{
    free(arg);
}

void node_metrics_http_close(struct node_daemon *d)
{
    struct node_metrics *m = d->metrics;
    d->metrics = NULL;
    if (m->http)
        node_http_server_close(m->http, on_http_closed, m);
    else
        free(m);
}
