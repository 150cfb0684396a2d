/*
 * Inside the HTTP server (http_server.h): the request parser (http_parse.c, no I/O, so the
 * fuzz target can drive it alone) and what the server and its connections share
 * (http_server.c, http_conn.c). Internal to node/.
 */
#ifndef TUNLESS_NODE_HTTP_INTERNAL_H
#define TUNLESS_NODE_HTTP_INTERNAL_H

#include <llhttp.h>

#include "http_server.h"

/* ---- http_parse.c: one request, bounded ---- */
enum node_http_parse_state {
    NODE_HTTP_PARSE_HEAD,
    NODE_HTTP_PARSE_BODY,
    NODE_HTTP_PARSE_DONE,  /* a whole request; later bytes are ignored */
    NODE_HTTP_PARSE_ERROR, /* status and error say what to answer */
};

enum { NODE_HTTP_HEADER_FIELD_MAX = 64, NODE_HTTP_HEADER_VALUE_MAX = 256 };

struct node_http_parser {
    llhttp_t llhttp;
    enum node_http_parse_state state;
    size_t max_head, max_body;
    size_t head_bytes;
    char *target; /* request target, then split into path and query */
    size_t target_len;
    char *body;
    size_t body_len, body_cap;
    char method[16];
    char field[NODE_HTTP_HEADER_FIELD_MAX];
    size_t field_len;
    char value[NODE_HTTP_HEADER_VALUE_MAX];
    size_t value_len;
    bool field_long, value_long;
    char content_type[NODE_HTTP_HEADER_VALUE_MAX];
    bool expect_continue; /* the client waits for "100 Continue" before its body */
    int status;           /* on error: 400, 413, 414, 431, 501 */
    char error[160];      /* on error: what was wrong, for the JSON answer */
    const char *query;    /* into target, once the head is complete */
};

/* 0, or -ENOMEM. */
int node_http_parser_init(struct node_http_parser *p, size_t max_head, size_t max_body);
void node_http_parser_free(struct node_http_parser *p);
/* Feeds bytes; returns the state reached. */
enum node_http_parse_state node_http_parser_feed(struct node_http_parser *p, const char *data,
                                                 size_t len);
/* The end of the input: a request cut short becomes an error. */
enum node_http_parse_state node_http_parser_finish(struct node_http_parser *p);
/* Fills the request's method, path, query, content type and body (so far) from a parser past
 * its head (BODY or DONE). */
void node_http_parser_request(const struct node_http_parser *p, struct node_http_request *req);

/* A status's reason phrase ("Not Found"). */
const char *node_http_reason(int status);

/* ---- http_server.c and http_conn.c ---- */
struct node_http_route_entry {
    char *method, *path;
    bool write;
    node_http_handler_fn fn;
    void *arg;
};

enum node_http_server_state { NODE_HTTP_SERVER_RUNNING, NODE_HTTP_SERVER_CLOSING };

struct node_http_server {
    uv_loop_t *loop;
    struct node_http_config cfg;
    char name[32];
    uid_t euid;
    struct node_http_route_entry *routes;
    size_t n_routes;
    struct base_list listeners, conns;
    unsigned n_conns;       /* every connection, those answered 503 included */
    unsigned n_admitted;    /* those not refused (their requests are served) */
    unsigned handles;       /* open: listeners, connections, retry_timer */
    uv_timer_t retry_timer; /* accepts again after no memory; its close ends asynchronously */
    enum node_http_server_state state;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

enum node_http_conn_state {
    NODE_HTTP_CONN_READING,   /* the request is arriving (read timeout) */
    NODE_HTTP_CONN_HANDLING,  /* inside the route's handler */
    NODE_HTTP_CONN_DEFERRED,  /* the owner answers later */
    NODE_HTTP_CONN_STREAMING, /* the owner writes chunks */
    NODE_HTTP_CONN_ENDING,    /* the last bytes are queued; shutdown, then close */
    NODE_HTTP_CONN_CLOSING,   /* handles closing; freed when both are closed */
};

union node_http_stream_handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
};

/* One write of a connection: the request, the head and body copied after it, one allocation. A
 * stream counts those libuv could not hand to the kernel at once at their cost: their bytes
 * plus NODE_HTTP_WRITE_OVERHEAD each. */
struct node_http_write {
    uv_write_t req;
    struct node_http_conn *c;
    size_t len;
    bool unsent; /* counted in c->unsent */
    char data[];
};
#define NODE_HTTP_WRITE_OVERHEAD (sizeof(struct node_http_write) + BASE_MALLOC_SLACK)

struct node_http_conn {
    struct base_list link;
    struct node_http_server *s;
    union node_http_stream_handle h;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    unsigned open_handles;
    enum node_http_conn_state state;
    bool parser_ready;
    struct node_http_parser parser;
    struct node_http_request req;
    const struct node_http_route_entry *route; /* once the head passed its checks */
    int status;                                /* the answer's, for the log line */
    node_http_gone_fn on_gone;
    void *gone_arg;
    size_t queued;        /* bytes handed to uv_write and not yet written */
    unsigned unsent;      /* writes (partly) in libuv's queue: node_http_write.unsent */
    unsigned deadline_ms; /* a deferred answer's (node_http_defer) */
    bool admitted;        /* counted in n_admitted (not answered 503) */
    char rbuf[4096];
};

/* http_conn.c: a connection on an accepted (or adopted) stream h, already initialised on the
 * server's loop; takes h (closing it on failure). peer from SO_PEERCRED. Returns 0 or
 * -ENOMEM. refuse: answer 503 at once (over the connection cap). */
int node_http_conn_start(struct node_http_server *s, struct node_http_conn *c,
                         const struct node_http_peer *peer, bool refuse);
/* Ends the connection now (server closing): the owner hears on_gone(err). */
void node_http_conn_abort(struct node_http_conn *c, int err);
/* http_server.c: a connection's handles are all closed; it is freed (admitted: its flag). */
void node_http_server_conn_freed(struct node_http_server *s, bool admitted);
/* The caller is root or the node's own user (never on TCP): it may call routes marked .write,
 * and it may use the connections kept for writers (writer_conns). */
bool node_http_may_write(const struct node_http_server *s, const struct node_http_peer *peer);
/* The route for method and path: 0 (*out set), 404 (no such path) or 405 (*allow names the
 * path's methods, comma-separated). */
int node_http_server_find(const struct node_http_server *s, const char *method, const char *path,
                          const struct node_http_route_entry **out, char *allow, size_t cap);

#endif
