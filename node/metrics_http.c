/*
 * /metrics, /healthz and /readyz, answered the same way on --metrics-listen (read-only TCP)
 * and on the local API: node_metrics_answer picks the path's answer. The listener itself is
 * started and closed here (node_metrics_http_start / _close).
 */
#include "metrics.h"
#include "metrics_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

struct node_metrics_answer {
    int status;
    const char *content_type;
    char *body; /* malloc'd */
    size_t len;
};

static int text_answer(struct node_metrics_answer *a, int status, const char *text)
{
    a->status = status;
    a->content_type = TEXT_TYPE;
    a->len = strlen(text) + 1;
    a->body = malloc(a->len + 1);
    if (!a->body)
        return -ENOMEM;
    snprintf(a->body, a->len + 1, "%s\n", text);
    return 0;
}

/* ?peers=all anywhere in the query */
static bool wants_all_peers(const char *query)
{
    for (const char *q = query; q && *q;) {
        size_t n = strcspn(q, "&");
        if (n == 9 && strncmp(q, "peers=all", 9) == 0)
            return true;
        q += n + (q[n] == '&');
    }
    return false;
}

int node_metrics_answer(struct node_daemon *d, const char *path, const char *query,
                        struct node_metrics_answer *a);
int node_metrics_answer(struct node_daemon *d, const char *path, const char *query,
                        struct node_metrics_answer *a)
{
    memset(a, 0, sizeof(*a));
    if (strcmp(path, "/metrics") == 0) {
        int rc = node_metrics_text(d, &a->body, &a->len);
        a->status = 200;
        a->content_type = PROM_TYPE;
        return rc;
    }
    if (strcmp(path, "/healthz") == 0)
        return text_answer(a, 200, "ok"); /* that we answer at all is the news */
    if (strcmp(path, "/readyz") == 0) {
        char why[256];
        bool ready = node_metrics_ready(d, wants_all_peers(query), why, sizeof(why));
        return text_answer(a, ready ? 200 : 503, why);
    }
    return text_answer(a, 404, "not found: try /metrics, /healthz or /readyz");
}

int node_metrics_http_start(struct node_daemon *d, char *err, size_t errlen)
{
    if (!d->opts.metrics_listen_on)
        return 0;
    snprintf(err, errlen, "--metrics-listen: not yet served");
    return -1;
}

void node_metrics_http_close(struct node_daemon *d)
{
    free(d->metrics);
    d->metrics = NULL;
}
