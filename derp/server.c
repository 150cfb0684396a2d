/*
 * The server's lifecycle: new (copy the config, load TLS and the allowed keys, listen on TCP,
 * start STUN, the tick and the mesh), the tick (every connection's timers), reload (SIGHUP),
 * close (Restarting to everyone when asked, then every handle and connection closes, and the
 * last one frees the server).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define TICK_MS 250

void derp_limits_default(struct derp_limits *l)
{
    *l = (struct derp_limits){
        .login_timeout_ms = 10000,
        .max_frame = DERP_MAX_FRAME,
        .max_client_info = 256 * 1024,
        .queue_depth = 32,
        .write_timeout_ms = 2000,
        .rate_bytes_per_sec = 0,
        .rate_burst = 0,
        .max_clients = 10000,
        .keepalive_ms = 60000,
        .restart_reconnect_ms = 2000,
        .restart_try_for_ms = 60000,
    };
}

void derp_key_hex(const uint8_t key[DERP_KEY_LEN], char out[2 * DERP_KEY_LEN + 1])
{
    sodium_bin2hex(out, 2 * DERP_KEY_LEN + 1, key, DERP_KEY_LEN);
}

void derp_server_public_key(const struct derp_server *s, uint8_t out[DERP_KEY_LEN])
{
    memcpy(out, s->pub, DERP_KEY_LEN);
}

static void server_free(struct derp_server *s)
{
    void (*cb)(void *) = s->on_closed;
    void *arg = s->on_closed_arg;
    derp_registry_free(s);
    if (s->tls)
        SSL_CTX_free(s->tls);
    if (s->mesh_tls)
        SSL_CTX_free(s->mesh_tls);
    free(s->cert_file);
    free(s->key_file);
    free(s->mesh_key);
    free(s->verify_file);
    free(s->mesh);
    sodium_memzero(s->priv, sizeof(s->priv));
    free(s);
    if (cb)
        cb(arg);
}

static void server_handle_closed_cb(uv_handle_t *h);

/* Closing: the tick closes once no connection is left, the server frees once nothing is. */
static void server_maybe_finish(struct derp_server *s)
{
    if (base_list_empty(&s->conns) && !uv_is_closing((uv_handle_t *)&s->tick)) {
        uv_close((uv_handle_t *)&s->tick, server_handle_closed_cb);
        return;
    }
    if (s->handles == 0)
        server_free(s);
}

void derp_server_handle_closed(struct derp_server *s)
{
    s->handles--;
    if (s->state == DERP_SERVER_CLOSING)
        server_maybe_finish(s);
}

static void server_handle_closed_cb(uv_handle_t *h)
{
    derp_server_handle_closed(h->data);
}

static void server_stun_closed(void *arg)
{
    derp_server_handle_closed(arg);
}

void derp_server_flush(struct derp_server *s)
{
    struct base_list *it;
    while ((it = base_list_first(&s->to_flush))) {
        base_list_remove(it);
        derp_link_flush(&container_of(it, struct derp_conn, flush_node)->link);
    }
}

static void server_tick(uv_timer_t *t)
{
    struct derp_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct base_list *it, *tmp;
    base_list_foreach_safe (it, tmp, &s->conns) {
        derp_conn_tick(container_of(it, struct derp_conn, node), now, TICK_MS / 1000.0);
    }
}

static void server_accept(uv_stream_t *l, int status)
{
    struct derp_server *s = l->data;
    if (status < 0) {
        base_logf(&s->log, BASE_LOG_WARN, "event=accept_failed err=%s", base_errname(status));
        return;
    }
    derp_conn_accept(s);
}

static char *dup_opt(const char *v)
{
    return v && *v ? strdup(v) : NULL;
}

static int server_load_files(struct derp_server *s, char *err, size_t errlen)
{
    if (s->cert_file && s->key_file) {
        s->tls = derp_tls_server_ctx(s->cert_file, s->key_file, err, errlen);
        if (!s->tls)
            return BASE_ECONFIG;
    }
    if (s->verify_file)
        return derp_registry_load_allowed(s->verify_file, &s->allowed, err, errlen);
    return 0;
}

static int server_listen(struct derp_server *s, const struct derp_server_config *cfg, char *err,
                         size_t errlen)
{
    struct sockaddr_storage ss;
    char eb[BASE_ENDPOINT_STRLEN];
    int rc = 0;
    if (cfg->listen.addr.family) {
        uv_tcp_init(s->loop, &s->listener);
        s->listener.data = s;
        s->has_listener = true;
        s->handles++;
        base_endpoint_to_sockaddr(&cfg->listen, &ss);
        rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&s->listener, 511, server_accept);
        if (rc != 0) {
            snprintf(err, errlen, "listen %s: %s",
                     base_endpoint_format(&cfg->listen, eb, sizeof(eb)), base_strerror(rc));
            return rc;
        }
        base_logf(&s->log, BASE_LOG_INFO, "event=listen addr=%s tls=%d key=%s",
                  base_endpoint_format(&cfg->listen, eb, sizeof(eb)), s->tls != NULL, s->pub_hex);
    }
    if (cfg->stun.addr.family) {
        s->has_stun = true;
        s->handles++;
        rc = derp_stun_start(&s->stun, s->loop, &cfg->stun, &s->ctr.stun, &s->log);
        if (rc != 0)
            snprintf(err, errlen, "stun %s: %s", base_endpoint_format(&cfg->stun, eb, sizeof(eb)),
                     base_strerror(rc));
    }
    return rc;
}

int derp_server_new(uv_loop_t *loop, const struct derp_server_config *cfg, struct derp_server **out,
                    char *err, size_t errlen)
{
    struct derp_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->limits = cfg->limits;
    if (s->limits.rate_bytes_per_sec && !s->limits.rate_burst)
        s->limits.rate_burst = s->limits.rate_bytes_per_sec;
    if (s->limits.queue_depth == 0)
        s->limits.queue_depth = 1;
    s->log = cfg->log;
    memcpy(s->priv, cfg->private_key, DERP_KEY_LEN);
    crypto_scalarmult_base(s->pub, s->priv);
    derp_key_hex(s->pub, s->pub_hex);
    s->cert_file = dup_opt(cfg->cert_file);
    s->key_file = dup_opt(cfg->key_file);
    s->mesh_key = dup_opt(cfg->mesh_key);
    s->verify_file = dup_opt(cfg->verify_clients);
    base_list_init(&s->conns);
    base_list_init(&s->watchers);
    base_list_init(&s->to_flush);
    derp_keymap_init(&s->clients);
    derp_keymap_init(&s->remote);
    derp_keymap_init(&s->sent_to);
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    s->handles = 1;
    uv_timer_start(&s->tick, server_tick, TICK_MS, TICK_MS);
    int rc = server_load_files(s, err, errlen);
    if (rc == 0)
        rc = server_listen(s, cfg, err, errlen);
    if (rc == 0 && s->mesh_key && cfg->mesh_with && *cfg->mesh_with)
        rc = derp_mesh_start(s, cfg->mesh_with, cfg->mesh_insecure, err, errlen);
    if (rc != 0) {
        derp_server_close(s, false, NULL, NULL);
        return rc;
    }
    *out = s;
    return 0;
}

int derp_server_reload(struct derp_server *s, char *err, size_t errlen)
{
    SSL_CTX *tls = NULL;
    struct derp_keymap *allowed = NULL;
    if (s->cert_file && s->key_file) {
        tls = derp_tls_server_ctx(s->cert_file, s->key_file, err, errlen);
        if (!tls)
            return BASE_ECONFIG;
    }
    if (s->verify_file) {
        int rc = derp_registry_load_allowed(s->verify_file, &allowed, err, errlen);
        if (rc != 0) {
            if (tls)
                SSL_CTX_free(tls);
            return rc;
        }
    }
    /* Connected TLS clients keep the context they started with (each SSL holds a reference). */
    if (tls) {
        SSL_CTX_free(s->tls);
        s->tls = tls;
    }
    if (allowed) {
        if (s->allowed) {
            derp_keymap_free(s->allowed);
            free(s->allowed);
        }
        s->allowed = allowed;
    }
    base_logf(&s->log, BASE_LOG_INFO, "event=reload tls=%d allowed=%zu", tls != NULL,
              allowed ? allowed->count : 0);
    return 0;
}

void derp_server_close(struct derp_server *s, bool restarting, void (*on_closed)(void *arg),
                       void *arg)
{
    if (s->state == DERP_SERVER_CLOSING)
        return;
    s->state = DERP_SERVER_CLOSING;
    s->on_closed = on_closed;
    s->on_closed_arg = arg;
    base_logf(&s->log, BASE_LOG_INFO, "event=server_closing restarting=%d clients=%u", restarting,
              s->n_clients);
    if (s->has_listener)
        uv_close((uv_handle_t *)&s->listener, server_handle_closed_cb);
    if (s->has_stun)
        derp_stun_close(&s->stun, server_stun_closed, s);
    derp_mesh_close_all(s);
    struct base_list *it, *tmp;
    base_list_foreach_safe (it, tmp, &s->conns) {
        struct derp_conn *c = container_of(it, struct derp_conn, node);
        if (restarting)
            derp_conn_restarting(c);
        else
            derp_conn_close(c, "server_closing");
    }
    /* The tick goes last: it still enforces write timeouts on the connections draining. */
    server_maybe_finish(s);
}
