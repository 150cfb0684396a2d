/*
 * A netmap pushed at run time (PUT /v0/netmap) and resumed at start. node_netmap_put refuses a
 * node whose configuration comes from a file (409 naming it), parses the body (400 with the
 * parser's JSON path), describes the change (diff_json), applies it with node_daemon_apply (the
 * reload's path: unchanged peers keep their sessions), then keeps the body in the state
 * directory (0600) for node_netmap_resume at the next start, which reads it back (read_state)
 * and moves a file that no longer parses aside (set_aside) rather than refusing to start.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* The whole file, NUL-terminated; NULL with err on a read error. A file larger than any PUT
 * the node accepts (1 MiB) is read up to one byte more, so that it fails to parse. */
static char *read_state(const char *path, size_t *len, char *err, size_t errlen)
{
    enum { CAP = (1 << 20) + 1 };
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char *buf = fd >= 0 ? malloc(CAP + 1) : NULL;
    ssize_t n = 0, got = 0;
    while (buf && (size_t)got < CAP && (n = read(fd, buf + got, CAP - (size_t)got)) > 0)
        got += n;
    int saved = fd < 0 ? errno : n < 0 ? errno : buf ? 0 : ENOMEM;
    if (fd >= 0)
        close(fd);
    if (saved != 0) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        return NULL;
    }
    buf[got] = '\0';
    *len = (size_t)got;
    return buf;
}

/* path -> path.corrupt-20261203T054500Z, 0600 (it may hold a private key). */
static int set_aside(const char *path, char *aside, size_t cap)
{
    char stamp[20];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(aside, cap, "%s.corrupt-%s", path, stamp);
    if (rename(path, aside) != 0)
        return -1;
    chmod(aside, 0600);
    return 0;
}

int node_netmap_resume(struct node_daemon *d, bool *found, char *err, size_t errlen)
{
    char path[sizeof(d->state_dir) + 32], aside[sizeof(path) + 32], why[1024], q[1200], qa[600];
    *found = false;
    snprintf(path, sizeof(path), "%s/%s", d->state_dir, NODE_NETMAP_STATE_FILE);
    if (access(path, F_OK) != 0)
        return 0;
    size_t len = 0;
    char *body = read_state(path, &len, err, errlen);
    if (!body)
        return -1;
    int rc = cfg_parse_netmap_buffer(path, body, len, d->state_dir, &d->cfg, why, sizeof(why));
    free(body);
    if (rc == 0) {
        node_log(&d->log, BASE_LOG_INFO, "netmap_resumed", "file=%s peers=%zu", path,
                 d->cfg.n_peers);
        *found = true;
        return 0;
    }
    if (set_aside(path, aside, sizeof(aside)) != 0) {
        snprintf(err, errlen, "%s (and it cannot be moved aside: %s)", why, strerror(errno));
        return -1;
    }
    node_log(&d->log, BASE_LOG_ERROR, "netmap_state_corrupt", "file=%s moved_to=%s err=%s", path,
             base_log_quote(qa, sizeof(qa), aside), base_log_quote(q, sizeof(q), why));
    return 0;
}
