/*
 * The CLI's client of the local API (localapi.h): one request, its status and JSON body.
 */
#ifndef TUNLESS_NODE_LOCALAPI_CLIENT_H
#define TUNLESS_NODE_LOCALAPI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "localapi.h"

struct node_localapi_reply {
    int status;
    char *body; /* as received, NUL-terminated */
    size_t body_len;
    json_t *json; /* the body parsed, or NULL */
};

/* method target ("GET", "/v0/status") with an optional JSON body. Returns 0 with out filled
 * (any status), or -1 with one line in err: no node running (naming path and `tunless up`),
 * permission denied (naming path), or an unreadable answer. */
int node_localapi_call(const char *path, const char *method, const char *target,
                       const char *json_body, struct node_localapi_reply *out, char *err,
                       size_t errlen);
/* GET target for a stream of lines (/v0/watch): connects and sends the request; the caller
 * reads the answer from the returned socket (blocking) and closes it. -1 with one line in err,
 * as node_localapi_call. */
int node_localapi_open_stream(const char *path, const char *target, char *err, size_t errlen);
void node_localapi_reply_free(struct node_localapi_reply *r);
/* The answer's "error" text, or "(no message)". */
const char *node_localapi_reply_error(const struct node_localapi_reply *r);
/* The socket a client command uses (flag, else as `tunless up` chooses); -1 with a message on
 * stderr naming cmd. */
int node_localapi_client_socket(const char *flag, char *out, size_t cap, const char *cmd);

/* A CLI command's request: prints a failure (one line naming cmd) and returns 1, or returns 0
 * with r holding a 2xx JSON answer (free it with node_localapi_reply_free). socket: --socket or
 * NULL. */
int node_localapi_cli_call(const char *cmd, const char *socket, const char *method,
                           const char *target, const char *body, struct node_localapi_reply *r);

#endif
