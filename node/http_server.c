/*
 * The HTTP server's body (http_server.h): configuration and routes, the listeners (unix and
 * TCP) and what they accept, and closing. Flow: node_http_server_new -> node_http_server_route
 * -> listen_unix / listen_tcp / serve_fd -> on_connection -> accept_waiting (again from
 * retry_timer when memory ran out) -> conn_begin (SO_PEERCRED) -> node_http_conn_start
 * (http_conn.c); node_http_server_find is the conns' route lookup;
 * node_http_server_close -> listeners and conns close -> release -> on_closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http_internal.h"

struct http_listener {
    struct base_list link;
    struct node_http_server *s;
    union node_http_stream_handle h;
    bool is_unix;
    bool waiting; /* a connection waits for memory to be accepted (libuv stopped watching) */
};

static void apply_defaults(struct node_http_config *cfg)
{
    if (!cfg->name)
        cfg->name = "http";
    if (!cfg->max_head)
        cfg->max_head = 8192;
    if (!cfg->max_body)
        cfg->max_body = 65536;
    if (!cfg->read_timeout_ms)
        cfg->read_timeout_ms = 10000;
    if (!cfg->max_conns)
        cfg->max_conns = 32;
    if (cfg->writer_conns >= cfg->max_conns)
        cfg->writer_conns = cfg->max_conns - 1;
    if (!cfg->stream_queue_bytes)
        cfg->stream_queue_bytes = 256 * 1024;
    if (!cfg->defer_timeout_ms)
        cfg->defer_timeout_ms = 60000;
    if (!cfg->stall_timeout_ms)
        cfg->stall_timeout_ms = 60000;
}

int node_http_server_new(uv_loop_t *loop, const struct node_http_config *cfg,
                         struct node_http_server **out)
{
    *out = NULL;
    struct node_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    apply_defaults(&s->cfg);
    snprintf(s->name, sizeof(s->name), "%s", s->cfg.name);
    s->cfg.name = s->name;
    s->euid = geteuid();
    base_list_init(&s->listeners);
    base_list_init(&s->conns);
    uv_timer_init(loop, &s->retry_timer);
    s->retry_timer.data = s;
    s->handles = 1;
    *out = s;
    return 0;
}

int node_http_server_route(struct node_http_server *s, const struct node_http_route *r)
{
    if (!r->method || !r->path || !r->fn || r->path[0] != '/')
        return -EINVAL;
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].method, r->method) == 0 && strcmp(s->routes[i].path, r->path) == 0)
            return -EEXIST;
    struct node_http_route_entry *t = realloc(s->routes, (s->n_routes + 1) * sizeof(*t));
    if (!t)
        return -ENOMEM;
    s->routes = t;
    struct node_http_route_entry *e = &t[s->n_routes];
    *e = (struct node_http_route_entry){.method = strdup(r->method),
                                        .path = strdup(r->path),
                                        .write = r->write,
                                        .fn = r->fn,
                                        .arg = r->arg};
    if (!e->method || !e->path) {
        free(e->method);
        free(e->path);
        return -ENOMEM;
    }
    s->n_routes++;
    return 0;
}

int node_http_server_find(const struct node_http_server *s, const char *method, const char *path,
                          const struct node_http_route_entry **out, char *allow, size_t cap)
{
    size_t used = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, path) != 0)
            continue;
        if (strcmp(s->routes[i].method, method) == 0) {
            *out = &s->routes[i];
            return 0;
        }
        int n = snprintf(allow + used, cap - used, "%s%s", used ? ", " : "", s->routes[i].method);
        if (n > 0 && (size_t)n < cap - used)
            used += (size_t)n;
    }
    return used ? 405 : 404;
}

static void on_retry(uv_timer_t *t);

static void on_conn_handle_closed(uv_handle_t *h)
{
    free(container_of(h, struct node_http_conn, h.handle));
}

/* SO_PEERCRED on unix sockets; nothing known on TCP. */
static void peer_of(uv_stream_t *st, bool is_unix, struct node_http_peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    uv_os_fd_t fd;
    if (!is_unix || uv_fileno((uv_handle_t *)st, &fd) != 0)
        return;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return;
    *peer =
        (struct node_http_peer){.known = true, .uid = cred.uid, .gid = cred.gid, .pid = cred.pid};
}

static struct node_http_conn *conn_alloc(struct node_http_server *s, bool is_unix)
{
    struct node_http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->s = s;
    if (is_unix)
        uv_pipe_init(s->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(s->loop, &c->h.tcp);
    c->h.handle.data = c;
    return c;
}

bool node_http_may_write(const struct node_http_server *s, const struct node_http_peer *peer)
{
    return peer->known && (peer->uid == 0 || peer->uid == s->euid);
}

/* Readers share max_conns less writer_conns, so that however many connections they hold (a
 * stream each), root and the node's user still get in; far beyond the cap (a flood of
 * readers), a connection is closed at once rather than answered 503. */
static void conn_begin(struct node_http_server *s, struct node_http_conn *c, bool is_unix)
{
    struct node_http_peer peer;
    peer_of(&c->h.stream, is_unix, &peer);
    bool writer = node_http_may_write(s, &peer);
    if (!writer && s->n_conns >= 2 * s->cfg.max_conns) {
        base_logf(&s->cfg.log, BASE_LOG_WARN, "event=http_conn_refused server=%s conns=%u", s->name,
                  s->n_conns);
        uv_close(&c->h.handle, on_conn_handle_closed);
        return;
    }
    c->admitted = s->n_admitted < s->cfg.max_conns - (writer ? 0 : s->cfg.writer_conns);
    s->n_admitted += c->admitted;
    s->n_conns++;
    s->handles++;
    base_list_push_back(&s->conns, &c->link);
    if (node_http_conn_start(s, c, &peer, !c->admitted) != 0)
        base_logf(&s->cfg.log, BASE_LOG_WARN, "event=http_conn_failed server=%s err=ENOMEM",
                  s->name);
}

/* Takes the connection libuv holds for hl. Without memory for it, libuv watches hl no more
 * until it is taken: retry_timer tries again. */
static void accept_waiting(struct http_listener *hl)
{
    struct node_http_server *s = hl->s;
    struct node_http_conn *c = conn_alloc(s, hl->is_unix);
    if (!c) {
        if (!hl->waiting)
            base_logf(&s->cfg.log, BASE_LOG_WARN, "event=http_accept_failed server=%s err=ENOMEM",
                      s->name);
        hl->waiting = true;
        uv_timer_start(&s->retry_timer, on_retry, 100, 0);
        return;
    }
    hl->waiting = false;
    if (uv_accept(&hl->h.stream, &c->h.stream) != 0)
        uv_close(&c->h.handle, on_conn_handle_closed);
    else
        conn_begin(s, c, hl->is_unix);
}

static void on_retry(uv_timer_t *t)
{
    struct node_http_server *s = t->data;
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &s->listeners) {
        struct http_listener *hl = container_of(pos, struct http_listener, link);
        if (hl->waiting)
            accept_waiting(hl);
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    struct http_listener *hl = l->data;
    if (status < 0) {
        base_logf(&hl->s->cfg.log, BASE_LOG_WARN, "event=http_accept_failed server=%s err=%s",
                  hl->s->name, base_errname(status));
        return;
    }
    accept_waiting(hl);
}

/* One of the server's handles (a listener, a connection, retry_timer) is gone; the last frees
 * it. */
static void release(struct node_http_server *s)
{
    if (--s->handles > 0)
        return;
    void (*cb)(void *) = s->on_closed;
    void *arg = s->closed_arg;
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].method);
        free(s->routes[i].path);
    }
    free(s->routes);
    free(s);
    if (cb)
        cb(arg);
}

void node_http_server_conn_freed(struct node_http_server *s, bool admitted)
{
    s->n_conns--;
    s->n_admitted -= admitted;
    release(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_listener *hl = h->data;
    struct node_http_server *s = hl->s;
    free(hl);
    release(s);
}

static struct http_listener *listener_alloc(struct node_http_server *s, bool is_unix)
{
    struct http_listener *hl = calloc(1, sizeof(*hl));
    if (!hl)
        return NULL;
    hl->s = s;
    hl->is_unix = is_unix;
    if (is_unix)
        uv_pipe_init(s->loop, &hl->h.pipe, 0);
    else
        uv_tcp_init(s->loop, &hl->h.tcp);
    hl->h.handle.data = hl;
    s->handles++;
    base_list_push_back(&s->listeners, &hl->link);
    return hl;
}

static int listener_fail(struct http_listener *hl, int rc)
{
    base_list_remove(&hl->link);
    uv_close(&hl->h.handle, on_listener_closed);
    return rc;
}

/* The socket is bound here, not by uv_pipe_bind: libuv would unlink the path when the listener
 * closes, whoever's socket is there by then. The path is the caller's to remove. */
static int bind_unix(const char *path, int *out)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, 64) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int node_http_server_listen_unix(struct node_http_server *s, const char *path)
{
    struct sockaddr_un sun;
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG; /* libuv would cut it silently */
    if (s->state != NODE_HTTP_SERVER_RUNNING)
        return BASE_ECLOSING;
    int fd = -1, rc = bind_unix(path, &fd);
    if (rc != 0)
        return rc;
    struct http_listener *hl = listener_alloc(s, true);
    if (!hl) {
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    rc = uv_pipe_open(&hl->h.pipe, fd);
    if (rc != 0)
        close(fd);
    if (rc == 0)
        rc = uv_listen(&hl->h.stream, 64, on_connection);
    if (rc != 0) {
        unlink(path);
        return listener_fail(hl, rc);
    }
    base_logf(&s->cfg.log, BASE_LOG_INFO, "event=http_listening server=%s path=%s", s->name, path);
    return 0;
}

int node_http_server_listen_tcp(struct node_http_server *s, const struct base_endpoint *ep,
                                struct base_endpoint *bound)
{
    if (s->state != NODE_HTTP_SERVER_RUNNING)
        return BASE_ECLOSING;
    struct http_listener *hl = listener_alloc(s, false);
    if (!hl)
        return -ENOMEM;
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(ep, &ss);
    int rc = uv_tcp_bind(&hl->h.tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen(&hl->h.stream, 64, on_connection);
    struct base_endpoint got = *ep;
    int len = sizeof(ss);
    if (rc == 0 && uv_tcp_getsockname(&hl->h.tcp, (struct sockaddr *)&ss, &len) == 0)
        base_endpoint_from_sockaddr(&got, (struct sockaddr *)&ss);
    if (rc != 0)
        return listener_fail(hl, rc);
    if (bound)
        *bound = got;
    char addr[BASE_ENDPOINT_STRLEN];
    base_logf(&s->cfg.log, BASE_LOG_INFO, "event=http_listening server=%s addr=%s", s->name,
              base_endpoint_format(&got, addr, sizeof(addr)));
    return 0;
}

int node_http_server_serve_fd(struct node_http_server *s, int fd)
{
    if (s->state != NODE_HTTP_SERVER_RUNNING) {
        close(fd);
        return BASE_ECLOSING;
    }
    struct node_http_conn *c = conn_alloc(s, true);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    int rc = uv_pipe_open(&c->h.pipe, fd);
    if (rc != 0) {
        close(fd);
        uv_close(&c->h.handle, on_conn_handle_closed);
        return rc;
    }
    conn_begin(s, c, true);
    return 0;
}

static void on_retry_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

void node_http_server_close(struct node_http_server *s, void (*on_closed)(void *arg), void *arg)
{
    if (s->state == NODE_HTTP_SERVER_CLOSING)
        return;
    s->state = NODE_HTTP_SERVER_CLOSING;
    s->on_closed = on_closed;
    s->closed_arg = arg;
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &s->listeners) {
        struct http_listener *hl = container_of(pos, struct http_listener, link);
        base_list_remove(&hl->link);
        uv_close(&hl->h.handle, on_listener_closed);
    }
    base_list_foreach_safe (pos, tmp, &s->conns) {
        node_http_conn_abort(container_of(pos, struct node_http_conn, link), BASE_ECLOSING);
    }
    uv_close((uv_handle_t *)&s->retry_timer, on_retry_timer_closed);
}

unsigned node_http_server_conns(const struct node_http_server *s)
{
    return s->n_conns;
}
