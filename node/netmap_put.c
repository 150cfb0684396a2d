/*
 * A netmap pushed at run time (PUT /v0/netmap) and resumed at start. node_netmap_put refuses a
 * node whose configuration comes from a file (409 naming it), parses the body (400 with the
 * parser's JSON path), describes the change (diff_json), applies it with node_daemon_apply (the
 * reload's path: unchanged peers keep their sessions), then keeps the body in the state
 * directory (0600) for node_netmap_resume at the next start.
 */
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "localapi.h"
#include "state.h"

#define NETMAP_NAME "netmap"

/* The parser's message is "netmap: PATH: what", PATH the JSON path of the value
 * ("peers[1].endpoints[0]"); a message without one (bad JSON syntax) has no path. */
static json_t *error_answer(const char *msg)
{
    json_t *o = json_pack("{s:o}", "error", node_http_json_text(msg));
    size_t skip = strlen(NETMAP_NAME ": ");
    if (!o || strncmp(msg, NETMAP_NAME ": ", skip) != 0)
        return o;
    const char *path = msg + skip, *end = strstr(path, ": ");
    if (end && end > path && memchr(path, ' ', (size_t)(end - path)) == NULL)
        json_object_set_new(o, "path", json_stringn(path, (size_t)(end - path)));
    return o;
}

/* What applying next changes, as the answer says it (the same shape as POST /v0/reload's). */
static json_t *diff_json(struct node_daemon *d, const struct cfg_config *next)
{
    struct cfg_diff diff;
    if (cfg_diff(d->have_config ? &d->cfg : NULL, next, &diff) != 0)
        return NULL;
    json_t *o = node_localapi_diff_json(&diff);
    cfg_diff_free(&diff);
    return o;
}

/* A node whose configuration is a file takes its changes from that file. */
static bool from_file(struct node_daemon *d)
{
    return d->opts.config_path || d->opts.netmap_path ||
           (d->config_path[0] && access(d->config_path, F_OK) == 0);
}

static void keep(struct node_daemon *d, const char *body, size_t len, json_t *answer)
{
    char err[512], q[600];
    if (node_state_write_file(d->state_dir, NODE_NETMAP_STATE_FILE, body, len, err, sizeof(err)) ==
        0)
        return;
    node_log(&d->log, BASE_LOG_WARN, "state_write_failed", "err=%s",
             base_log_quote(q, sizeof(q), err));
    json_object_set_new(answer, "warning", node_http_json_text(err));
}

int node_netmap_put(struct node_daemon *d, const char *body, size_t len, json_t **answer)
{
    char err[sizeof(d->config_path) + 512], q[600];
    struct cfg_config next;
    if (from_file(d)) {
        snprintf(err, sizeof(err),
                 "the configuration comes from %s: edit that file (or POST /v0/reload)",
                 d->config_path);
        *answer = json_pack("{s:o, s:o}", "error", node_http_json_text(err), "file",
                            node_http_json_text(d->config_path));
        return 409;
    }
    if (d->stopping || !d->engine) {
        *answer = json_pack("{s:s}", "error", "the node is not running (stopping, or not started)");
        return 503;
    }
    if (cfg_parse_netmap_buffer(NETMAP_NAME, body, len, d->state_dir, &next, err, sizeof(err)) !=
        0) {
        node_log(&d->log, BASE_LOG_ERROR, "netmap_rejected", "err=%s",
                 base_log_quote(q, sizeof(q), err));
        *answer = error_answer(err);
        return 400;
    }
    json_t *change = diff_json(d, &next);
    if (node_daemon_apply(d, &next) != 0) { /* takes next; logged */
        json_decref(change);
        *answer = error_answer("the private key or listen port differ from the running node's: "
                               "restart the node to change them");
        return 400;
    }
    node_log(&d->log, BASE_LOG_INFO, "netmap_applied", "peers=%zu", d->cfg.n_peers);
    keep(d, body, len, change);
    *answer = change ? change : json_object();
    return 200;
}

int node_netmap_resume(struct node_daemon *d, bool *found, char *err, size_t errlen)
{
    char path[sizeof(d->state_dir) + 32];
    *found = false;
    snprintf(path, sizeof(path), "%s/%s", d->state_dir, NODE_NETMAP_STATE_FILE);
    if (access(path, F_OK) != 0)
        return 0;
    if (cfg_parse_netmap(path, &d->cfg, err, errlen) != 0)
        return -1;
    node_log(&d->log, BASE_LOG_INFO, "netmap_resumed", "file=%s peers=%zu", path, d->cfg.n_peers);
    *found = true;
    return 0;
}
