/* Configured peers -> the engine, with endpoint names resolved asynchronously and again when a
 * peer goes silent (as wireguard-tools' reresolve-dns does). */
#include <arpa/inet.h>
#include <errno.h>
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

const char *node_log_peer(char out[BASE_LOG_PEER_STRLEN], const struct cfg_peer *p)
{
    char key8[WG_KEY_SHORT_LEN + 1];
    wg_key_short(key8, p->public_key);
    return base_log_peer(out, BASE_LOG_PEER_STRLEN, p->name, key8);
}

static const struct cfg_peer *find_peer(const struct cfg_config *c, const uint8_t key[WG_KEY_LEN])
{
    for (size_t i = 0; c && i < c->n_peers; i++)
        if (wg_key_equal(c->peers[i].public_key, key))
            return &c->peers[i];
    return NULL;
}

/* An IP-literal endpoint as a sockaddr; 0 if it is one, -1 for a name. */
static int literal_endpoint(const struct cfg_hostport *ep, struct sockaddr_storage *ss)
{
    struct base_endpoint e = {.port = ep->port};
    if (base_addr_parse(&e.addr, ep->host, strlen(ep->host)) != 0)
        return -1;
    base_endpoint_to_sockaddr(&e, ss);
    return 0;
}

static int set_peer(struct node_daemon *d, const struct cfg_peer *p, const struct sockaddr *ep)
{
    struct base_endpoint be;
    if (ep && base_endpoint_from_sockaddr(&be, ep) != 0)
        return -EAFNOSUPPORT;
    struct wg_peer_config pc = {
        .preshared_key = p->has_preshared_key ? p->preshared_key : NULL,
        .endpoint = ep ? &be : NULL,
        .allowed_ips = p->allowed_ips,
        .allowed_ips_len = p->n_allowed_ips,
        .persistent_keepalive = p->persistent_keepalive,
        .name = p->name,
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

/* At info only when the peer's endpoint changes: an idle peer's name is resolved again every
 * RERESOLVE_INTERVAL_MS, and the same answer each time is not news. */
static void log_resolved(struct node_daemon *d, const char *who, const char *host,
                         const struct addrinfo *res, bool changed)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = res->ai_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, a, ip, sizeof(ip));
    node_log(&d->log, changed ? BASE_LOG_INFO : BASE_LOG_DEBUG, "endpoint_resolved",
             "%s host=%s addr=%s changed=%d", who, host, ip, changed);
}

/* Would ep change the peer's endpoint in the engine? */
static bool endpoint_changes(struct node_daemon *d, const struct cfg_peer *p,
                             const struct sockaddr *ep)
{
    struct wg_peer_stats st;
    struct base_endpoint be;
    if (wg_engine_peer_stats(d->engine, p->public_key, &st) != 0 ||
        base_endpoint_from_sockaddr(&be, ep) != 0)
        return true;
    return st.endpoint.addr.family == 0 || !base_endpoint_equal(&st.endpoint, &be);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct node_resolve *r = (struct node_resolve *)req;
    struct node_daemon *d = r->d;
    const struct cfg_peer *p = find_peer(&d->cfg, r->public_key);
    char who[BASE_LOG_PEER_STRLEN];

    unlink_resolve(r);
    if (status == UV_ECANCELED || d->stopping || !p || node_lifecycle_state(d) == NODE_LC_STOPPED) {
        /* nothing to do: stopping, Stopped, or the peer left the configuration meanwhile */
    } else if (status != 0 || !res) {
        node_log(&d->log, BASE_LOG_WARN, "endpoint_resolve_failed", "%s host=%s err=%s",
                 node_log_peer(who, p), p->endpoints[0].host, uv_strerror(status));
    } else {
        bool changed = endpoint_changes(d, p, res->ai_addr);
        if (set_peer(d, p, res->ai_addr) == 0)
            log_resolved(d, node_log_peer(who, p), p->endpoints[0].host, res, changed);
    }
    uv_freeaddrinfo(res);
    free(r);
}

static void resolve_endpoint(struct node_daemon *d, const struct cfg_peer *p)
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
    char port[6];
    snprintf(port, sizeof(port), "%u", p->endpoints[0].port);
    if (uv_getaddrinfo(d->loop, &r->req, on_resolved, p->endpoints[0].host, port, &hints) != 0) {
        free(r);
        return;
    }
    r->next = d->resolving;
    d->resolving = r;
}

/* Adds or updates one peer; its endpoint is set now if literal, or once resolved. */
static int push_peer(struct node_daemon *d, const struct cfg_peer *p)
{
    struct sockaddr_storage ss;
    bool literal = p->n_endpoints > 0 && literal_endpoint(&p->endpoints[0], &ss) == 0;
    int ret = set_peer(d, p, literal ? (struct sockaddr *)&ss : NULL);
    if (ret != 0)
        return ret;
    if (p->n_endpoints > 0 && !literal)
        resolve_endpoint(d, p);
    return 0;
}

static void on_reresolve(uv_timer_t *t);

static bool in_peer(void *arg, const struct base_addr *a)
{
    const struct cfg_peer *p = arg;
    for (size_t i = 0; i < p->n_allowed_ips; i++)
        if (base_prefix_contains(&p->allowed_ips[i], a))
            return true;
    return false;
}

static void log_peer(struct node_daemon *d, const char *event, const struct cfg_peer *p)
{
    char who[BASE_LOG_PEER_STRLEN];
    node_log_peer(who, p);
    bool removed = strcmp(event, "peer_removed") == 0;
    if (removed) /* its connections go with it */
        node_log(&d->log, BASE_LOG_INFO, event, "%s conns_reset=%zu", who,
                 node_dialer_reset_where(&d->dialer, in_peer, (void *)p));
    else
        node_log(&d->log, BASE_LOG_INFO, event, "%s allowed_ips=%zu", who, p->n_allowed_ips);
    struct node_event ev = {.kind = removed                            ? NODE_EVENT_PEER_REMOVED
                                    : strcmp(event, "peer_added") == 0 ? NODE_EVENT_PEER_ADDED
                                                                       : NODE_EVENT_PEER_CHANGED,
                            .peer = p->public_key,
                            .peer_name = p->name};
    node_lifecycle_publish(d, &ev);
}

int node_peers_apply(struct node_daemon *d, const struct cfg_config *old)
{
    struct cfg_diff diff;
    if (cfg_diff(old, &d->cfg, &diff) != 0)
        return -ENOMEM;
    /* Peers gone from the configuration leave the engine first. */
    for (size_t i = 0; i < diff.n_removed; i++) {
        wg_engine_remove_peer(d->engine, diff.removed[i].old->public_key);
        log_peer(d, "peer_removed", diff.removed[i].old);
    }
    /* Untouched peers (and those whose change the engine does not see, a name) keep their
     * session and endpoint as they are. */
    int ret = 0;
    for (size_t i = 0; i < diff.n_added && ret == 0; i++) {
        ret = push_peer(d, diff.added[i].new);
        log_peer(d, "peer_added", diff.added[i].new);
    }
    for (size_t i = 0; i < diff.n_changed && ret == 0; i++) {
        if (!(diff.changed[i].what & CFG_PEER_ENGINE))
            continue;
        ret = push_peer(d, diff.changed[i].new);
        log_peer(d, "peer_updated", diff.changed[i].new);
    }
    cfg_diff_free(&diff);
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
        const struct cfg_peer *p = &d->cfg.peers[i];
        struct sockaddr_storage ss;
        struct wg_peer_stats st;
        if (p->n_endpoints == 0 || literal_endpoint(&p->endpoints[0], &ss) == 0)
            continue;
        if (wg_engine_peer_stats(d->engine, p->public_key, &st) != 0)
            continue;
        if (st.last_handshake_wall_ns && wall - st.last_handshake_wall_ns < RERESOLVE_SILENCE_NS)
            continue;
        resolve_endpoint(d, p);
    }
}

void node_peers_remove_all(struct node_daemon *d)
{
    node_peers_stop(d);
    for (size_t i = 0; d->engine && d->have_config && i < d->cfg.n_peers; i++) {
        wg_engine_remove_peer(d->engine, d->cfg.peers[i].public_key);
        log_peer(d, "peer_removed", &d->cfg.peers[i]);
    }
}

void node_peers_stop(struct node_daemon *d)
{
    uv_timer_stop(&d->reresolve_timer);
    for (struct node_resolve *r = d->resolving; r; r = r->next)
        uv_cancel((uv_req_t *)&r->req);
}
