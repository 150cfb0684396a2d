/*
 * Mesh links: this server logs in to each --mesh-with server as a client holding the mesh key,
 * sends WatchConns, and learns from PeerPresent/PeerGone which keys live there; packets for
 * those keys leave as ForwardPacket on that link. The flow per peer: resolve -> connect ->
 * HTTP upgrade -> ServerKey -> ClientInfo(meshKey) -> ServerInfo -> WatchConns -> watching;
 * any failure closes the link, forgets what it reported (PeerGone to whoever sent to those
 * keys) and retries after a backoff, so the mesh outlives a peer's restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define MESH_QUEUE_CAP (4u << 20)
#define MESH_RETRY_MIN_MS 500
#define MESH_RETRY_MAX_MS 5000
#define MESH_HTTP_MAX 4096

enum mesh_state {
    MESH_IDLE,      /* waiting for the retry timer */
    MESH_RESOLVING, /* getaddrinfo in flight */
    MESH_HTTP,      /* link up (or connecting), waiting for 101 */
    MESH_LOGIN,     /* waiting for ServerKey, then ServerInfo */
    MESH_WATCHING,
    MESH_CLOSING, /* link closing */
    MESH_STOPPED, /* for good: the server is closing, or the URL is this server */
};

struct derp_mesh_peer {
    struct derp_server *srv;
    enum mesh_state state;
    char url[256];
    char host[BASE_HOST_MAX + 1];
    uint16_t port;
    bool tls;
    struct derp_link link;
    uv_timer_t retry;
    uv_getaddrinfo_t gai;
    struct derp_reader rd;
    char http[MESH_HTTP_MAX];
    size_t http_len;
    bool have_server_key;
    uint8_t server_key[DERP_KEY_LEN];
    uint32_t backoff_ms;
};

static const struct derp_link_ops mesh_ops;

static struct derp_mesh_peer *peer_of(struct derp_link *l)
{
    return container_of(l, struct derp_mesh_peer, link);
}

static int parse_url(struct derp_mesh_peer *p, const char *url, size_t len)
{
    const char *hp;
    if (len >= sizeof(p->url))
        return BASE_EPARSE;
    memcpy(p->url, url, len);
    p->url[len] = '\0';
    if (strncmp(p->url, "http://", 7) == 0) {
        hp = p->url + 7;
        p->port = 80;
    } else if (strncmp(p->url, "https://", 8) == 0) {
        hp = p->url + 8;
        p->port = 443;
        p->tls = true;
    } else {
        return BASE_EPARSE;
    }
    size_t hlen = strcspn(hp, "/");
    return base_hostport_parse(hp, hlen, p->host, sizeof(p->host), &p->port,
                               BASE_HOSTPORT_PORT_OPTIONAL, NULL);
}

static void mesh_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai);

static void mesh_connect(struct derp_mesh_peer *p)
{
    struct derp_server *s = p->srv;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    char port[8];
    snprintf(port, sizeof(port), "%u", p->port);
    p->state = MESH_RESOLVING;
    s->handles++;
    int rc = uv_getaddrinfo(s->loop, &p->gai, mesh_resolved, p->host, port, &hints);
    if (rc != 0)
        mesh_resolved(&p->gai, rc, NULL);
}

static void mesh_retry_cb(uv_timer_t *t)
{
    struct derp_mesh_peer *p = t->data;
    if (p->state == MESH_IDLE)
        mesh_connect(p);
}

static void mesh_schedule(struct derp_mesh_peer *p)
{
    p->state = MESH_IDLE;
    uv_timer_start(&p->retry, mesh_retry_cb, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > MESH_RETRY_MAX_MS ? MESH_RETRY_MAX_MS : p->backoff_ms * 2;
}

static void mesh_fail(struct derp_mesh_peer *p, const char *why)
{
    struct derp_server *s = p->srv;
    if (p->state == MESH_CLOSING || p->state == MESH_STOPPED || p->state == MESH_IDLE)
        return;
    s->ctr.mesh_failures++;
    base_logf(&s->log, BASE_LOG_WARN, "event=mesh_down mesh_peer=%s reason=%s", p->url, why);
    p->state = MESH_CLOSING;
    derp_link_close(&p->link);
}

static void mesh_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct derp_mesh_peer *p = container_of(req, struct derp_mesh_peer, gai);
    struct derp_server *s = p->srv;
    if (p->state != MESH_RESOLVING || status != 0) {
        if (ai)
            uv_freeaddrinfo(ai);
        if (p->state == MESH_RESOLVING) {
            s->ctr.mesh_failures++;
            base_logf(&s->log, BASE_LOG_WARN, "event=mesh_resolve_failed mesh_peer=%s err=%s",
                      p->url, base_errname(status));
            mesh_schedule(p);
        }
        derp_server_handle_closed(s); /* may free the server when it is closing */
        return;
    }
    p->state = MESH_HTTP;
    p->http_len = 0;
    p->have_server_key = false;
    derp_reader_init(&p->rd, DERP_MAX_FRAME);
    int rc = derp_link_connect(&p->link, s->loop, ai->ai_addr, p->tls ? s->mesh_tls : NULL, p->host,
                               &mesh_ops, &s->shared);
    uv_freeaddrinfo(ai);
    /* The getaddrinfo's count passes to the link, closed in every case through on_closed. */
    if (rc != 0)
        mesh_fail(p, base_errname(rc));
}

static void mesh_on_connect(struct derp_link *l)
{
    struct derp_mesh_peer *p = peer_of(l);
    char req[BASE_HOST_MAX + 160];
    int n = snprintf(req, sizeof(req),
                     "GET /derp HTTP/1.1\r\nHost: %s\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n"
                     "User-Agent: tunless-derp-mesh\r\n\r\n",
                     p->host);
    derp_link_append(l, req, (size_t)n);
}

static void mesh_forget(struct derp_mesh_peer *p)
{
    struct derp_server *s = p->srv;
    size_t n = 0, cap = s->remote.count;
    uint8_t(*keys)[DERP_KEY_LEN] = cap ? malloc(cap * DERP_KEY_LEN) : NULL;
    struct derp_keymap_slot *slot;
    for (size_t i = 0; keys && (slot = derp_keymap_next(&s->remote, &i));)
        if (slot->val.ptr == p)
            memcpy(keys[n++], slot->key, DERP_KEY_LEN);
    for (size_t i = 0; i < n; i++)
        derp_registry_remote_remove(s, keys[i], p);
    free(keys);
}

static void mesh_on_closed(struct derp_link *l)
{
    struct derp_mesh_peer *p = peer_of(l);
    struct derp_server *s = p->srv;
    derp_reader_free(&p->rd);
    mesh_forget(p);
    if (p->state != MESH_STOPPED)
        mesh_schedule(p);
    derp_server_handle_closed(s);
}

static void mesh_on_error(struct derp_link *l, int err)
{
    mesh_fail(peer_of(l), err == UV_EOF ? "eof" : base_errname(err));
}

static void mesh_on_drained(struct derp_link *l)
{
    (void)l;
}

static int mesh_login_frame(struct derp_mesh_peer *p, const struct derp_frame *f)
{
    struct derp_server *s = p->srv;
    const uint8_t *key;
    if (!p->have_server_key) {
        if (derp_parse_server_key(f, &key) != 0)
            return BASE_EPARSE;
        memcpy(p->server_key, key, DERP_KEY_LEN);
        p->have_server_key = true;
        if (memcmp(key, s->pub, DERP_KEY_LEN) == 0) {
            base_logf(&s->log, BASE_LOG_INFO, "event=mesh_self mesh_peer=%s", p->url);
            p->state = MESH_STOPPED;
            derp_link_close(&p->link);
            return 1;
        }
        struct derp_client_info ci = {.version = DERP_PROTOCOL_VERSION};
        snprintf(ci.mesh_key, sizeof(ci.mesh_key), "%s", s->mesh_key);
        uint8_t out[512 + DERP_MESH_KEY_MAX];
        int n = derp_client_info_seal(&ci, s->priv, p->server_key, out, sizeof(out));
        if (n < 0)
            return n;
        derp_link_append(&p->link, out, (size_t)n);
        return 0;
    }
    struct derp_server_info si;
    if (f->type != DERP_FRAME_SERVER_INFO ||
        derp_server_info_open(f->payload, f->len, s->priv, p->server_key, &si) != 0)
        return BASE_EAUTH;
    uint8_t w[DERP_HEADER_LEN];
    derp_link_append(&p->link, w, derp_build(w, DERP_FRAME_WATCH_CONNS, NULL, 0));
    p->state = MESH_WATCHING;
    p->backoff_ms = MESH_RETRY_MIN_MS;
    s->ctr.mesh_connects++;
    base_logf(&s->log, BASE_LOG_INFO, "event=mesh_up mesh_peer=%s", p->url);
    return 0;
}

static int mesh_frame(void *arg, const struct derp_frame *f)
{
    struct derp_mesh_peer *p = arg;
    const uint8_t *key;
    uint8_t reason, out[DERP_HEADER_LEN + 8];
    if (p->state == MESH_LOGIN)
        return mesh_login_frame(p, f);
    if (p->state != MESH_WATCHING)
        return 1;
    switch (f->type) {
    case DERP_FRAME_PEER_PRESENT:
        if (derp_parse_key(f, &key, false) == 0)
            derp_registry_remote_add(p->srv, key, p);
        break;
    case DERP_FRAME_PEER_GONE:
        if (derp_parse_peer_gone(f, &key, &reason) == 0)
            derp_registry_remote_remove(p->srv, key, p);
        break;
    case DERP_FRAME_PING:
        if (f->len == 8)
            derp_link_append(&p->link, out, derp_build(out, DERP_FRAME_PONG, f->payload, 8));
        break;
    default:
        break; /* KeepAlive, Health, Restarting: the link's failure tells us what matters */
    }
    return 0;
}

/* The 101 response: up to its blank line. Returns the bytes it took, or -1 when bad. */
static ssize_t mesh_http(struct derp_mesh_peer *p, const uint8_t *d, size_t n)
{
    size_t take = n < sizeof(p->http) - 1 - p->http_len ? n : sizeof(p->http) - 1 - p->http_len;
    memcpy(p->http + p->http_len, d, take);
    size_t before = p->http_len;
    p->http_len += take;
    p->http[p->http_len] = '\0';
    char *end = strstr(p->http, "\r\n\r\n");
    if (!end)
        return p->http_len == sizeof(p->http) - 1 ? -1 : (ssize_t)n;
    if (strncmp(p->http, "HTTP/1.1 101", 12) != 0)
        return -1;
    p->state = MESH_LOGIN;
    return (ssize_t)((size_t)(end + 4 - p->http) - before);
}

static int mesh_on_data(struct derp_link *l, const uint8_t *d, size_t n)
{
    struct derp_mesh_peer *p = peer_of(l);
    if (p->state == MESH_HTTP) {
        ssize_t used = mesh_http(p, d, n);
        if (used < 0) {
            mesh_fail(p, "bad_upgrade");
            return 1;
        }
        d += used;
        n -= (size_t)used;
    }
    if (n && (p->state == MESH_LOGIN || p->state == MESH_WATCHING)) {
        int rc = derp_reader_feed(&p->rd, d, n, NULL, mesh_frame, p);
        if (rc < 0)
            mesh_fail(p, base_errname(rc));
    }
    derp_link_flush(l);
    derp_server_flush(p->srv);
    return p->state == MESH_CLOSING || p->state == MESH_STOPPED;
}

static const struct derp_link_ops mesh_ops = {
    .on_data = mesh_on_data,
    .on_drained = mesh_on_drained,
    .on_error = mesh_on_error,
    .on_connect = mesh_on_connect,
    .on_closed = mesh_on_closed,
};

void derp_mesh_forward(struct derp_mesh_peer *p, const uint8_t *src, const uint8_t *dst,
                       const uint8_t *pkt, size_t len)
{
    struct derp_server *s = p->srv;
    size_t need = DERP_HEADER_LEN + 2 * DERP_KEY_LEN + len;
    uint8_t *out;
    if (p->state != MESH_WATCHING || derp_link_queued(&p->link) + need > MESH_QUEUE_CAP ||
        !(out = derp_link_reserve(&p->link, need))) {
        s->ctr.dropped_mesh_queue++;
        return;
    }
    size_t h = derp_build_forward_head(out, src, dst, len);
    memcpy(out + h, pkt, len);
    derp_link_commit(&p->link, need);
    derp_link_flush(&p->link);
}

static int mesh_count(const char *list)
{
    int n = 1;
    for (; *list; list++)
        n += *list == ',';
    return n;
}

int derp_mesh_start(struct derp_server *s, const char *mesh_with, bool insecure, char *err,
                    size_t errlen)
{
    s->mesh = calloc((size_t)mesh_count(mesh_with), sizeof(*s->mesh));
    s->mesh_tls = derp_tls_client_ctx(!insecure);
    if (!s->mesh || !s->mesh_tls)
        return -ENOMEM;
    for (const char *u = mesh_with; *u;) {
        size_t len = strcspn(u, ",");
        if (len) {
            struct derp_mesh_peer *p = &s->mesh[s->n_mesh];
            p->srv = s;
            if (parse_url(p, u, len) != 0) {
                snprintf(err, errlen, "--mesh-with: bad URL '%.*s'", (int)len, u);
                return BASE_ECONFIG;
            }
            uv_timer_init(s->loop, &p->retry);
            p->retry.data = p;
            s->handles++;
            s->n_mesh++;
            p->backoff_ms = MESH_RETRY_MIN_MS;
            mesh_connect(p);
        }
        u += len + (u[len] == ',');
    }
    return 0;
}

static void mesh_timer_closed(uv_handle_t *h)
{
    struct derp_mesh_peer *p = h->data;
    derp_server_handle_closed(p->srv);
}

void derp_mesh_close_all(struct derp_server *s)
{
    for (size_t i = 0; i < s->n_mesh; i++) {
        struct derp_mesh_peer *p = &s->mesh[i];
        enum mesh_state was = p->state;
        p->state = MESH_STOPPED;
        uv_close((uv_handle_t *)&p->retry, mesh_timer_closed);
        if (was == MESH_HTTP || was == MESH_LOGIN || was == MESH_WATCHING)
            derp_link_close(&p->link);
        /* RESOLVING: the getaddrinfo callback sees STOPPED and drops its count. */
    }
}
