/* The listener: configuration, accepting, and closing everything down. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

void proxy_log(struct proxy_server *srv, enum proxy_log_level level, const char *fmt, ...)
{
    if (!srv->cfg.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv->cfg.log(srv->cfg.log_arg, level, msg);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct proxy_server *srv = l->data;
    if (status < 0) {
        proxy_log(srv, PROXY_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    conn_accept(srv);
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static void free_server(struct proxy_server *srv)
{
    proxy_auth_wipe(&srv->auth);
    free(srv);
}

static void on_listener_closed_early(uv_handle_t *h)
{
    free_server(h->data);
}

struct proxy_server *proxy_server_new(uv_loop_t *loop, const struct proxy_config *cfg, int *err)
{
    *err = UV_EINVAL;
    if (!cfg->dialer.dial || (cfg->protocols & PROXY_BOTH) == 0 ||
        (!cfg->username != !cfg->password))
        return NULL;
    const char *bind = cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(bind, cfg->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(bind, cfg->port, (struct sockaddr_in6 *)&ss) != 0)
        return NULL;
    struct proxy_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        *err = UV_ENOMEM;
        return NULL;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->cfg.username = srv->cfg.password = NULL; /* only the hashes are kept */
    srv->cfg.bind_addr = NULL;
    if (!srv->cfg.head_timeout_ms)
        srv->cfg.head_timeout_ms = 30000;
    if (!srv->cfg.max_header_bytes)
        srv->cfg.max_header_bytes = 16384;
    if (!srv->cfg.max_connections)
        srv->cfg.max_connections = 1024;
    proxy_auth_init(&srv->auth, cfg->username, cfg->password);

    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    int rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 256, on_connection);
    if (rc != 0) {
        *err = rc;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed_early);
        return NULL;
    }
    srv->listener_open = 1;
    int len = sizeof(ss);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    if (!is_loopback((struct sockaddr *)&ss) && !srv->auth.enabled)
        proxy_log(srv, PROXY_LOG_WARN,
                  "proxy listens on %s:%d without credentials: anyone who can reach it can use it",
                  bind, srv->port);
    proxy_log(srv, PROXY_LOG_INFO, "proxy listening on %s:%d", bind, srv->port);
    *err = 0;
    return srv;
}

int proxy_server_port(const struct proxy_server *srv)
{
    return srv->port;
}

void proxy_server_check_done(struct proxy_server *srv)
{
    if (!srv->closing || srv->nconns > 0 || srv->listener_open)
        return;
    void (*cb)(void *) = srv->close_cb;
    void *arg = srv->close_arg;
    free_server(srv);
    if (cb)
        cb(arg);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct proxy_server *srv = h->data;
    srv->listener_open = 0;
    proxy_server_check_done(srv);
}

static void begin_close(struct proxy_server *srv, void (*cb)(void *arg), void *arg)
{
    srv->closing = 1;
    srv->close_cb = cb;
    srv->close_arg = arg;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}

void proxy_server_drain(struct proxy_server *srv, void (*cb)(void *arg), void *arg)
{
    if (srv->closing)
        return;
    begin_close(srv, cb, arg);
    /* The listener is closing; with no connection left that alone finishes the server. */
}

void proxy_server_close(struct proxy_server *srv, void (*cb)(void *arg), void *arg)
{
    if (srv->forced)
        return;
    if (!srv->closing)
        begin_close(srv, cb, arg);
    srv->forced = 1;
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}
