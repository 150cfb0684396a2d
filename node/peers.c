/* Configured peers -> the engine, with endpoint names resolved asynchronously and again when a
 * peer goes silent (as wireguard-tools' reresolve-dns does). */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* A peer silent this long gets its endpoint name resolved again. */
#define RERESOLVE_SILENCE_NS (135ull * 1000000000ull)
#define RERESOLVE_INTERVAL_MS 30000

struct node_resolve {
    uv_getaddrinfo_t req;
    struct node_daemon *d;
    uint8_t public_key[WG_KEY_LEN];
    struct node_resolve *next;
};

static void short_key(char out[9], const uint8_t key[WG_KEY_LEN])
{
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_to_base64(b64, key);
    memcpy(out, b64, 8);
    out[8] = '\0';
}

static const struct node_peer *find_peer(const struct node_config *c, const uint8_t key[WG_KEY_LEN])
{
    for (size_t i = 0; c && i < c->n_peers; i++)
        if (wg_key_equal(c->peers[i].public_key, key))
            return &c->peers[i];
    return NULL;
}

/* An IP-literal endpoint as a sockaddr; 0 if it is one, -1 for a name. */
static int literal_endpoint(const struct node_endpoint *ep, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    uint16_t port = (uint16_t)atoi(ep->port);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ep->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, ep->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        return 0;
    }
    return -1;
}

static int set_peer(struct node_daemon *d, const struct node_peer *p, const struct sockaddr *ep)
{
    struct wg_peer_config pc = {
        .preshared_key = p->has_preshared_key ? p->preshared_key : NULL,
        .endpoint = ep,
        .allowed_ips = p->allowed_ips,
        .allowed_ips_len = p->n_allowed_ips,
        .persistent_keepalive = p->persistent_keepalive,
    };
    memcpy(pc.public_key, p->public_key, WG_KEY_LEN);
    return wg_engine_set_peer(d->engine, &pc);
}

static void unlink_resolve(struct node_resolve *r)
{
    struct node_resolve **pp = &r->d->resolving;
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
}

static void log_resolved(struct node_daemon *d, const char *who, const char *host,
                         const struct addrinfo *res)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = res->ai_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, a, ip, sizeof(ip));
    node_log(&d->log, BASE_LOG_INFO, "endpoint_resolved", "peer=%s host=%s addr=%s", who, host, ip);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct node_resolve *r = (struct node_resolve *)req;
    struct node_daemon *d = r->d;
    const struct node_peer *p = find_peer(&d->cfg, r->public_key);
    char who[9];

    short_key(who, r->public_key);
    unlink_resolve(r);
    if (status == UV_ECANCELED || d->stopping || !p) {
        /* nothing to do: stopping, or the peer left the configuration meanwhile */
    } else if (status != 0 || !res) {
        node_log(&d->log, BASE_LOG_WARN, "endpoint_resolve_failed", "peer=%s host=%s err=%s", who,
                 p->endpoints[0].host, uv_strerror(status));
    } else if (set_peer(d, p, res->ai_addr) == WG_OK) {
        log_resolved(d, who, p->endpoints[0].host, res);
    }
    uv_freeaddrinfo(res);
    free(r);
}

static void resolve_endpoint(struct node_daemon *d, const struct node_peer *p)
{
    if (p->n_endpoints == 0)
        return;
    for (struct node_resolve *r = d->resolving; r; r = r->next)
        if (wg_key_equal(r->public_key, p->public_key))
            return; /* already on its way */
    struct node_resolve *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->d = d;
    memcpy(r->public_key, p->public_key, WG_KEY_LEN);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_ADDRCONFIG};
    if (uv_getaddrinfo(d->loop, &r->req, on_resolved, p->endpoints[0].host, p->endpoints[0].port,
                       &hints) != 0) {
        free(r);
        return;
    }
    r->next = d->resolving;
    d->resolving = r;
}

/* Adds or updates one peer; its endpoint is set now if literal, or once resolved. */
static int push_peer(struct node_daemon *d, const struct node_peer *p)
{
    struct sockaddr_storage ss;
    bool literal = p->n_endpoints > 0 && literal_endpoint(&p->endpoints[0], &ss) == 0;
    int ret = set_peer(d, p, literal ? (struct sockaddr *)&ss : NULL);
    if (ret != WG_OK)
        return ret;
    if (p->n_endpoints > 0 && !literal)
        resolve_endpoint(d, p);
    return WG_OK;
}

static bool same_allowed(const struct node_peer *a, const struct node_peer *b)
{
    return a->n_allowed_ips == b->n_allowed_ips &&
           memcmp(a->allowed_ips, b->allowed_ips, a->n_allowed_ips * sizeof(*a->allowed_ips)) == 0;
}

static bool same_endpoint(const struct node_peer *a, const struct node_peer *b)
{
    if (a->n_endpoints != b->n_endpoints)
        return false;
    return a->n_endpoints == 0 || (strcmp(a->endpoints[0].host, b->endpoints[0].host) == 0 &&
                                   strcmp(a->endpoints[0].port, b->endpoints[0].port) == 0);
}

static bool peer_unchanged(const struct node_peer *a, const struct node_peer *b)
{
    return a->has_preshared_key == b->has_preshared_key &&
           (!a->has_preshared_key || wg_key_equal(a->preshared_key, b->preshared_key)) &&
           a->persistent_keepalive == b->persistent_keepalive && same_allowed(a, b) &&
           same_endpoint(a, b);
}

static void on_reresolve(uv_timer_t *t);

int node_peers_apply(struct node_daemon *d, const struct node_config *old)
{
    const struct node_config *c = &d->cfg;

    /* Peers gone from the configuration leave the engine first. */
    for (size_t i = 0; old && i < old->n_peers; i++) {
        if (!find_peer(c, old->peers[i].public_key)) {
            wg_engine_remove_peer(d->engine, old->peers[i].public_key);
            char who[9];
            short_key(who, old->peers[i].public_key);
            node_log(&d->log, BASE_LOG_INFO, "peer_removed", "peer=%s", who);
        }
    }
    int ret = WG_OK;
    for (size_t i = 0; i < c->n_peers && ret == WG_OK; i++) {
        const struct node_peer *p = &c->peers[i];
        const struct node_peer *before = find_peer(old, p->public_key);
        if (before && peer_unchanged(before, p))
            continue; /* untouched: its session and endpoint stay as they are */
        ret = push_peer(d, p);
        char who[9];
        short_key(who, p->public_key);
        node_log(&d->log, BASE_LOG_INFO, before ? "peer_updated" : "peer_added",
                 "peer=%s name=%s allowed_ips=%zu", who, p->name ? p->name : "-", p->n_allowed_ips);
    }
    if (!uv_is_active((uv_handle_t *)&d->reresolve_timer))
        uv_timer_start(&d->reresolve_timer, on_reresolve, RERESOLVE_INTERVAL_MS,
                       RERESOLVE_INTERVAL_MS);
    return ret;
}

static void on_reresolve(uv_timer_t *t)
{
    struct node_daemon *d = t->data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

    for (size_t i = 0; i < d->cfg.n_peers; i++) {
        const struct node_peer *p = &d->cfg.peers[i];
        struct sockaddr_storage ss;
        struct wg_peer_stats st;
        if (p->n_endpoints == 0 || literal_endpoint(&p->endpoints[0], &ss) == 0)
            continue;
        if (wg_engine_peer_stats(d->engine, p->public_key, &st) != WG_OK)
            continue;
        if (st.last_handshake_wall_ns && wall - st.last_handshake_wall_ns < RERESOLVE_SILENCE_NS)
            continue;
        resolve_endpoint(d, p);
    }
}

void node_peers_stop(struct node_daemon *d)
{
    uv_timer_stop(&d->reresolve_timer);
    for (struct node_resolve *r = d->resolving; r; r = r->next)
        uv_cancel((uv_req_t *)&r->req);
}
