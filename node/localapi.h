/*
 * The local API: HTTP/1.1 + JSON on a unix socket (http_server.h), for `tunless status`,
 * `reload` and other local tools. The caller is whoever the kernel says (SO_PEERCRED): root
 * and the node's own user may change things, anyone else who can connect only reads.
 * Flow: node_localapi_socket_path (the default, shared with the CLI) -> node_localapi_check
 * (before the node starts: a live node refuses, a stale socket goes) -> node_localapi_start
 * (after it started: listen, mode and group, routes) -> node_localapi_close (at stop).
 * Other parts of the node add /v0/ routes in localapi.c's add_routes(), or later on
 * node_localapi_server(d->api).
 */
#ifndef TUNLESS_NODE_LOCALAPI_H
#define TUNLESS_NODE_LOCALAPI_H

#include <jansson.h>
#include <stddef.h>

#include "http_server.h"

#define NODE_LOCALAPI_SOCKET "tunless.sock"

struct node_daemon;
struct node_localapi;

/* The socket a node listens on and a client tries: flag, else $TUNLESS_SOCKET, else
 * STATE_DIR/tunless.sock (state_dir_flag: --state-dir, else $TUNLESS_STATE_DIR, then the
 * usual default). Returns 0, or -1 when there is no state directory or the path is too long. */
int node_localapi_socket_path(const char *flag, const char *state_dir_flag, char *out, size_t cap);

/* Before anything listens: the path fits a unix socket, nothing else is there but a stale
 * socket (removed), and no node answers on it. Returns 0, NODE_LOCALAPI_LIVE when a node does
 * ("another node is running (PID 123) on PATH"), or -1; with the message in err. */
#define NODE_LOCALAPI_LIVE (-2)
int node_localapi_check(const char *path, char *err, size_t errlen);

/* Listens on path (0600, or 0660 for group; its directory created 0700, or made reachable for
 * group), and serves the /v0/ routes of d. Returns 0, NODE_LOCALAPI_LIVE when a node started
 * on path since the check (its PID in err), or -1 with the message in err. */
int node_localapi_start(struct node_daemon *d, const char *path, const char *group,
                        struct node_localapi **out, char *err, size_t errlen);
struct node_http_server *node_localapi_server(struct node_localapi *api);
/* Stops listening, removes the socket file (only if it is still the one it made), ends open
 * requests; on_closed (may be NULL) once
 * everything is freed. */
void node_localapi_close(struct node_localapi *api, void (*on_closed)(void *arg), void *arg);

/* What a configuration change does, as POST /v0/reload and PUT /v0/netmap answer it:
 * {"added": [{"name", "public_key"}...], "removed", "changed" (with "changed": ["endpoints",
 * ...]), "unchanged": N, "addresses_changed", "dns_changed"}. */
struct cfg_diff;
json_t *node_localapi_diff_json(const struct cfg_diff *diff);

/* localapi_tools.c: GET /v0/whois and POST /v0/ping. Returns 0 or a negative error. */
int node_localapi_tools_routes(struct node_http_server *http, struct node_daemon *d);

/* localapi_status.c: GET /v0/status's answer (never a private or preshared key). */
json_t *node_localapi_status(struct node_daemon *d, double uptime_s);

#endif
