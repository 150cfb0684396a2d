/*
 * A small HTTP/1.1 server for the node's own endpoints (the local API on a unix socket, metrics
 * on TCP): one request per connection (every response says `Connection: close`), routed by
 * exact (method, path) to a handler. Flow: node_http_server_new -> routes -> listeners;
 * each connection reads one request (bounded head and body, a read timeout), the server answers
 * 400/404/405/403/413/431 itself, else calls the route's handler, which either answers at once
 * (node_http_reply*) or defers (node_http_defer) and answers later, or turns the connection
 * into a stream of lines (node_http_stream_*: chunked, a bounded queue, a reader that falls
 * behind is dropped with a final line). node_http_server_close ends everything.
 *
 * Ownership: the server owns its listeners and connections and frees them in close callbacks.
 * A handler's owner holds a struct node_http_conn only between node_http_defer (or
 * node_http_stream_start) and the moment it learns the connection is over: its on_gone
 * callback, or an error returned by node_http_stream_write, or its own reply/stream_end call.
 * The request a handler is given lives until the connection ends.
 */
#ifndef TUNLESS_NODE_HTTP_SERVER_H
#define TUNLESS_NODE_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "base.h"

struct node_http_server;
struct node_http_conn;

/* The kernel's word on who connected (SO_PEERCRED; unix sockets only). */
struct node_http_peer {
    bool known; /* false on TCP */
    uid_t uid;
    gid_t gid;
    pid_t pid;
};

struct node_http_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* as sent, without the query: "/v0/status" */
    const char *query;        /* after '?', as sent; "" when none */
    const char *content_type; /* "" when none */
    const char *body;         /* NUL-terminated; "" when none */
    size_t body_len;
    struct node_http_peer peer;
    /* The caller's uid is root or the node's own (never true on TCP). Routes marked .write
     * are refused with 403 when this is false, before their handler runs. */
    bool may_write;
};

typedef void (*node_http_handler_fn)(void *arg, struct node_http_conn *c,
                                     const struct node_http_request *req);

struct node_http_route {
    const char *method; /* "GET", "POST", ...; copied */
    const char *path;   /* exact; copied */
    bool write;         /* changes something: only callers with may_write */
    node_http_handler_fn fn;
    void *arg;
};

struct node_http_config {
    const char *name;          /* in log lines: server=NAME ("localapi", "metrics") */
    size_t max_head;           /* request line + headers; default 8 KiB, else 431 */
    size_t max_body;           /* default 64 KiB, else 413 */
    unsigned read_timeout_ms;  /* the whole request, then the whole reply; default 10 s */
    unsigned max_conns;        /* open connections, streams included; default 32 */
    unsigned writer_conns;     /* of max_conns, kept for callers with may_write; default 0 */
    size_t stream_queue_bytes; /* what a stream's unsent writes may cost (bytes plus
                                  NODE_HTTP_WRITE_OVERHEAD each) before its reader is dropped;
                                  256 KiB */
    unsigned defer_timeout_ms; /* a deferred answer's deadline, unless the handler gives one
                                * (node_http_defer); default 60 s, then 504 */
    unsigned stall_timeout_ms; /* a stream whose reader takes nothing while bytes wait, this
                                * long, is dropped; default 60 s */
    struct base_logger log;    /* each request at debug: method, path, status, uid, pid */
};

int node_http_server_new(uv_loop_t *loop, const struct node_http_config *cfg,
                         struct node_http_server **out);
/* Adds a route (before or after listening). 0, -EEXIST for the same method and path, -ENOMEM. */
int node_http_server_route(struct node_http_server *s, const struct node_http_route *r);
/* Listens on a unix socket at path, which must not exist (the caller removes a stale one and
 * sets its mode afterwards). The file is the caller's: closing never unlinks it (libuv's
 * would, whoever's socket is there by then). Returns 0 or a negative error (-EADDRINUSE when
 * path exists, -ENAMETOOLONG for a path longer than a unix socket allows). */
int node_http_server_listen_unix(struct node_http_server *s, const char *path);
/* Listens on TCP; *bound (may be NULL) receives the address with the port the kernel chose. */
int node_http_server_listen_tcp(struct node_http_server *s, const struct base_endpoint *ep,
                                struct base_endpoint *bound);
/* Serves one already connected unix stream socket (tests, socket activation); takes fd. */
int node_http_server_serve_fd(struct node_http_server *s, int fd);
/* Stops listening and ends every connection (a deferred or streaming owner hears on_gone with
 * BASE_ECLOSING); on_closed (may be NULL) runs once everything is freed, never from here. */
void node_http_server_close(struct node_http_server *s, void (*on_closed)(void *arg), void *arg);
/* Open connections, for tests and metrics. */
unsigned node_http_server_conns(const struct node_http_server *s);

/* ---- Answering (each ends the request; after it the handler's owner forgets c) ---- */
void node_http_reply(struct node_http_conn *c, int status, const char *content_type,
                     const char *body, size_t len);
/* The JSON (indented, newline-terminated) as application/json; takes the reference. */
void node_http_reply_json(struct node_http_conn *c, int status, json_t *body);
/* {"error": "<message>"} with status. */
void node_http_reply_error(struct node_http_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Answering later ----
 * Called from the handler: the answer comes later (a reply or a stream), within timeout_ms
 * (0: the server's defer_timeout_ms); a handler whose event never comes does not hold the
 * connection longer: the owner hears on_gone(-ETIMEDOUT) and the client gets 504. on_gone
 * runs at most once, if the connection ends before the owner ended it (the client left, the
 * server closes, the deadline): err is BASE_ECLOSING, -ECONNRESET, -ETIMEDOUT, ...; c is gone
 * after it. */
typedef void (*node_http_gone_fn)(void *arg, struct node_http_conn *c, int err);
void node_http_defer(struct node_http_conn *c, unsigned timeout_ms, node_http_gone_fn on_gone,
                     void *arg);

/* ---- Streams of lines (newline-delimited JSON for watchers) ----
 * Sends a 200 head with chunked transfer and keeps the connection open, as long as the owner
 * wants, while the reader keeps up: one that takes nothing for stall_timeout_ms while bytes
 * wait, or falls stream_queue_bytes behind (the writes the kernel has not taken, each at its
 * cost), is dropped with a final error line (on_gone hears -ETIMEDOUT for the first).
 * Call from the handler or after node_http_defer; on_gone as for node_http_defer. Returns 0,
 * or a negative error when the connection is already over (the owner then forgets c; on_gone
 * does not run). content_type NULL: application/x-ndjson. */
int node_http_stream_start(struct node_http_conn *c, const char *content_type,
                           node_http_gone_fn on_gone, void *arg);
/* Queues one chunk (a line should end in '\n'). 0, or BASE_ELIMIT when the reader fell more
 * than stream_queue_bytes behind: the stream then ends with a final error line; or another
 * negative error when the connection failed. On any error the owner forgets c (on_gone does
 * not run for it). Never blocks. */
int node_http_stream_write(struct node_http_conn *c, const char *data, size_t len);
/* The same with the compact JSON of value and '\n'; does not take the reference. */
int node_http_stream_write_json(struct node_http_conn *c, const json_t *value);
/* Ends the stream cleanly (the last chunk, then close); the owner forgets c. */
void node_http_stream_end(struct node_http_conn *c);

/* ---- Helpers for handlers ----
 * The value of key in a query string ("addr=100.64.0.2&x=1"), percent-decoded ('+' is a
 * space). Returns 0, -ENOENT when absent, BASE_EPARSE for a bad escape or a NUL,
 * -ENOSPC when it does not fit cap. */
int node_http_query_get(const char *query, const char *key, char *out, size_t cap);
/* s as a JSON string, for any text (a path quoted as sent, a message cut in the middle of a
 * character): when s is not UTF-8, its bytes above ASCII become '?'. NULL only without memory. */
json_t *node_http_json_text(const char *s);
/* The body as a JSON object; on error answers 400 naming the fault ("body: line 1 column 5:
 * ...", "body: want a JSON object") and returns NULL. An empty body is an empty object. */
json_t *node_http_body_json(struct node_http_conn *c, const struct node_http_request *req);

#endif
