/*
 * The listener: configuration, accepting sessions (each starts with the sniffer), and closing
 * everything down. Flow: proxy_server_new -> on_connection -> proxy_session_new / start;
 * close or drain -> the listener and the sessions close -> released -> check_done -> on_closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "auth.h"
#include "sessions.h"

enum server_state {
    SERVER_LISTENING,
    SERVER_DRAINING, /* listener closing; sessions finish by themselves */
    SERVER_CLOSING,  /* sessions are being cut */
};

struct proxy_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    struct proxy_config cfg;
    struct proxy_auth auth;
    struct proxy_session_env env;
    struct proxy_stats stats; /* open and the live bytes are added by proxy_server_stats */
    struct base_list sessions;
    unsigned nsessions;
    unsigned long next_id;
    int port;
    size_t mem; /* bytes the sessions' pumps have charged to the budget */
    enum server_state state;
    struct proxy_admit admit; /* the cap and the descriptor reserve */
    bool admit_open;
    void (*on_closed)(void *arg);
    void *arg;
};

static void free_server(struct proxy_server *srv)
{
    proxy_auth_wipe(&srv->auth);
    free(srv);
}

static void check_done(struct proxy_server *srv)
{
    if (srv->state == SERVER_LISTENING || srv->nsessions > 0 || srv->listener_open ||
        srv->admit_open)
        return;
    void (*cb)(void *) = srv->on_closed;
    void *arg = srv->arg;
    free_server(srv);
    if (cb)
        cb(arg);
}

static void on_released(void *arg)
{
    struct proxy_server *srv = arg;
    srv->nsessions--;
    check_done(srv);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct proxy_server *srv = l->data;
    if (status < 0) {
        proxy_admit_failed(&srv->admit, status);
        return;
    }
    struct proxy_session *s = proxy_session_new(&srv->env, l, ++srv->next_id, &proxy_sniff_ops);
    if (!s)
        return;
    srv->stats.accepted++;
    bool room = proxy_admit(&srv->admit, &srv->sessions, srv->nsessions);
    base_list_push_back(&srv->sessions, &s->link);
    srv->nsessions++;
    if (!room) {
        proxy_session_abort(s);
        return;
    }
    proxy_session_start(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct proxy_server *srv = h->data;
    srv->listener_open = false;
    check_done(srv);
}

static void on_listener_closed_early(uv_handle_t *h)
{
    free_server(h->data);
}

static int listen_on(struct proxy_server *srv, const struct base_endpoint *ep)
{
    struct sockaddr_storage ss;
    base_endpoint_to_sockaddr(ep, &ss);
    int rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 256, on_connection);
    int len = sizeof(ss);
    struct base_endpoint bound;
    if (rc == 0 && uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0 &&
        base_endpoint_from_sockaddr(&bound, (struct sockaddr *)&ss) == 0)
        srv->port = bound.port;
    return rc;
}

static struct proxy_server *server_alloc(uv_loop_t *loop, const struct proxy_config *cfg)
{
    struct proxy_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
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
    proxy_stats_init(&srv->stats);
    srv->env = (struct proxy_session_env){.loop = loop,
                                          .cfg = &srv->cfg,
                                          .auth = &srv->auth,
                                          .released = on_released,
                                          .arg = srv,
                                          .mem = &srv->mem,
                                          .stats = &srv->stats};
    base_list_init(&srv->sessions);
    return srv;
}

size_t proxy_server_memory(const struct proxy_server *srv)
{
    return srv->mem;
}

int proxy_server_new(uv_loop_t *loop, const struct proxy_config *cfg, struct proxy_server **out)
{
    *out = NULL;
    const char *bind = cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
    struct base_endpoint ep = {.port = cfg->port};
    if (!cfg->dialer.dial || (cfg->protocols & PROXY_BOTH) == 0 ||
        (!cfg->username != !cfg->password) || base_addr_parse(&ep.addr, bind, strlen(bind)) != 0)
        return -EINVAL;
    struct proxy_server *srv = server_alloc(loop, cfg);
    if (!srv)
        return -ENOMEM;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    int rc = listen_on(srv, &ep);
    if (rc != 0) {
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed_early);
        return rc;
    }
    srv->listener_open = true;
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)&srv->listener, &fd);
    proxy_admit_init(&srv->admit, loop, &srv->cfg.logger, srv->cfg.max_connections, fd);
    srv->admit_open = true;
    *out = srv;
    return 0;
}

int proxy_server_port(const struct proxy_server *srv)
{
    return srv->port;
}

static void on_admit_closed(void *arg)
{
    struct proxy_server *srv = arg;
    srv->admit_open = false;
    check_done(srv);
}

void proxy_server_stats(const struct proxy_server *srv, struct proxy_stats *out)
{
    *out = srv->stats;
    out->open = srv->nsessions;
    out->refused_limit = proxy_admit_count(&srv->admit, PROXY_REFUSED_FULL);
    out->refused_fds = proxy_admit_count(&srv->admit, PROXY_REFUSED_FDS) +
                       proxy_admit_count(&srv->admit, PROXY_ACCEPT_FAILED);
    out->evicted = proxy_admit_count(&srv->admit, PROXY_EVICTED_FULL) +
                   proxy_admit_count(&srv->admit, PROXY_EVICTED_FDS);
    const struct base_list *pos;
    base_list_foreach (pos, &srv->sessions) {
        proxy_session_up_bytes(container_of(pos, struct proxy_session, link), out);
    }
}

static void stop_listening(struct proxy_server *srv, void (*on_closed)(void *arg), void *arg)
{
    srv->state = SERVER_DRAINING;
    srv->on_closed = on_closed;
    srv->arg = arg;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    proxy_admit_close(&srv->admit, on_admit_closed, srv);
}

void proxy_server_drain(struct proxy_server *srv, void (*on_closed)(void *arg), void *arg)
{
    if (srv->state != SERVER_LISTENING)
        return;
    /* With no session left the listener's close alone finishes the server. */
    stop_listening(srv, on_closed, arg);
}

void proxy_server_close(struct proxy_server *srv, void (*on_closed)(void *arg), void *arg)
{
    if (srv->state == SERVER_CLOSING)
        return;
    if (srv->state == SERVER_LISTENING)
        stop_listening(srv, on_closed, arg);
    srv->state = SERVER_CLOSING;
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &srv->sessions) {
        proxy_session_abort(container_of(pos, struct proxy_session, link));
    }
}
