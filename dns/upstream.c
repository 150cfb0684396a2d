/*
 * Upstream resolvers through c-ares, driven by the loop: one channel per route (the default
 * upstreams, each split-DNS suffix). A query goes to the channel of the longest suffix its
 * name is under (dns_upstream_route, dns_upstream_send); a uv_timer per channel runs c-ares'
 * retransmission timeouts. A reload retires the old channels: they finish the queries they
 * hold and the reaper (a zero-delay timer) destroys them. The sockets c-ares opens are in
 * upstream_sock.c.
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

/* ---- sending and answers ---- */

struct dns_upstream *dns_upstream_route(struct dns_resolver *r, const uint8_t *name)
{
    struct dns_upstream *best = NULL;
    size_t best_len = 0;
    struct base_list *pos;
    base_list_foreach (pos, &r->routes) {
        struct dns_upstream *up = container_of(pos, struct dns_upstream, link);
        size_t l = dns_name_len(up->suffix);
        if ((!best || l > best_len) && dns_name_under(name, up->suffix)) {
            best = up;
            best_len = l;
        }
    }
    return best;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_forward *f = arg;
    struct dns_upstream *up = f->up;
    (void)timeouts;
    up->pending--;
    dns_forward_done(f, status, abuf, alen > 0 ? (size_t)alen : 0);
    if (up->state == DNS_UPSTREAM_RETIRED && !up->pending)
        dns_upstream_kick(up->r);
}

void dns_upstream_send(struct dns_upstream *up, const uint8_t *q, size_t len, struct dns_forward *f)
{
    f->up = up;
    up->pending++;
    ares_send(up->ch, q, (int)len, on_answer, f);
    dns_upstream_reschedule(up);
}

/* ---- c-ares' timeouts ---- */

static void on_ares_timer(uv_timer_t *t)
{
    struct dns_upstream *up = container_of(t, struct dns_upstream, timer);
    ares_process_fd(up->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_upstream_reschedule(up);
}

void dns_upstream_reschedule(struct dns_upstream *up)
{
    struct timeval tv, *t;
    if (dns_resolver_closing(up->r) && up->state == DNS_UPSTREAM_RETIRED)
        return;
    t = ares_timeout(up->ch, NULL, &tv);
    if (!t) {
        uv_timer_stop(&up->timer);
        return;
    }
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    uv_timer_start(&up->timer, on_ares_timer, ms, 0);
}

/* ---- channels ---- */

/* The timer is the channel's last handle: its memory goes with it. */
static void on_upstream_closed(uv_handle_t *h)
{
    struct dns_upstream *up = container_of((uv_timer_t *)h, struct dns_upstream, timer);
    struct dns_resolver *r = up->r;
    free(up);
    dns_resolver_handle_closed(r);
}

static void upstream_destroy(struct dns_upstream *up)
{
    base_list_remove(&up->link);
    ares_destroy(up->ch); /* every query it held is answered ARES_EDESTRUCTION */
    uv_timer_stop(&up->timer);
    uv_close((uv_handle_t *)&up->timer, on_upstream_closed);
}

static void destroy_all(struct base_list *list)
{
    struct base_list *pos;
    while ((pos = base_list_first(list)))
        upstream_destroy(container_of(pos, struct dns_upstream, link));
}

static int servers_to_ares(const struct base_endpoint *servers, size_t n,
                           struct ares_addr_port_node *nodes)
{
    for (size_t i = 0; i < n; i++) {
        const struct base_endpoint *e = &servers[i];
        if (e->addr.family != AF_INET && e->addr.family != AF_INET6)
            return -1;
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
        nodes[i].family = e->addr.family;
        memcpy(&nodes[i].addr, e->addr.ip, base_addr_len(&e->addr));
        nodes[i].udp_port = nodes[i].tcp_port = e->port ? e->port : DNS_DEFAULT_PORT;
    }
    return 0;
}

static int channel_init(struct dns_upstream *up, size_t n_servers, unsigned timeout_ms)
{
    struct ares_options o;
    char lookups[] = "b";
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_STAYOPEN;
    /* Two rounds over every server, the second with doubled timeouts, fit in timeout_ms;
     * the resolver's own deadline answers SERVFAIL at timeout_ms regardless. */
    unsigned per_try = timeout_ms / (3 * (unsigned)(n_servers ? n_servers : 1));
    o.timeout = (int)(per_try < 50 ? 50 : per_try);
    o.tries = 2;
    o.ndots = 1;
    o.sock_state_cb = dns_sock_state_cb;
    o.sock_state_cb_data = up;
    o.lookups = lookups;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS |
               ARES_OPT_SOCK_STATE_CB | ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS |
               ARES_OPT_SORTLIST;
    return ares_init_options(&up->ch, &o, mask);
}

static int ares_error(const struct base_logger *log, const char *what, int rc)
{
    if (rc == ARES_ENOMEM)
        return -ENOMEM;
    base_logf(log, BASE_LOG_ERROR, "event=dns_cares_failed op=%s err=%s", what, ares_strerror(rc));
    return -EIO;
}

static int upstream_new(struct dns_resolver *r, const char *suffix,
                        const struct base_endpoint *servers, size_t n, unsigned timeout_ms,
                        struct dns_upstream **out)
{
    struct ares_addr_port_node *nodes = calloc(n ? n : 1, sizeof(*nodes));
    struct dns_upstream *up = calloc(1, sizeof(*up));
    char q[BASE_HOST_MAX + 8];
    int rc = -ENOMEM;

    if (!nodes || !up)
        goto fail;
    up->r = r;
    base_list_init(&up->link);
    rc = BASE_ECONFIG;
    if (dns_name_from_text(suffix, up->suffix) < 0) {
        dns_config_invalid(&r->log, "reason=\"bad route suffix\" suffix=%s",
                           base_log_quote(q, sizeof(q), suffix));
        goto fail;
    }
    if (servers_to_ares(servers, n, nodes) < 0) {
        dns_config_invalid(&r->log, "reason=\"upstream without an address\" suffix=%s",
                           base_log_quote(q, sizeof(q), suffix));
        goto fail;
    }
    if ((rc = channel_init(up, n, timeout_ms)) != ARES_SUCCESS) {
        rc = ares_error(&r->log, "init", rc);
        goto fail;
    }
    ares_set_socket_functions(up->ch, &dns_sock_funcs, up);
    if ((rc = ares_set_servers_ports(up->ch, n ? nodes : NULL)) != ARES_SUCCESS) {
        rc = ares_error(&r->log, "servers", rc);
        ares_destroy(up->ch);
        goto fail;
    }
    uv_timer_init(r->loop, &up->timer);
    r->open_handles++;
    free(nodes);
    *out = up;
    return 0;
fail:
    free(nodes);
    free(up);
    return rc;
}

int dns_upstreams_build(struct dns_resolver *r, const struct dns_config *cfg, struct base_list *out)
{
    struct dns_upstream *up;
    int rc = 0;
    base_list_init(out);
    if (cfg->n_upstreams) {
        rc = upstream_new(r, ".", cfg->upstreams, cfg->n_upstreams, r->timeout_ms, &up);
        if (rc < 0)
            goto fail;
        base_list_push_back(out, &up->link);
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct dns_route *rt = &cfg->routes[i];
        if (!rt->suffix || !rt->n_servers) {
            dns_config_invalid(&r->log, "reason=\"route without suffix or servers\" route=%zu", i);
            rc = BASE_ECONFIG;
            goto fail;
        }
        rc = upstream_new(r, rt->suffix, rt->servers, rt->n_servers, r->timeout_ms, &up);
        if (rc < 0)
            goto fail;
        base_list_push_back(out, &up->link);
    }
    return 0;
fail:
    destroy_all(out);
    return rc;
}

void dns_upstreams_replace(struct dns_resolver *r, struct base_list *fresh)
{
    struct base_list *pos;
    bool idle = false;
    while ((pos = base_list_first(&r->routes))) {
        struct dns_upstream *up = container_of(pos, struct dns_upstream, link);
        base_list_remove(pos);
        up->state = DNS_UPSTREAM_RETIRED;
        base_list_push_back(&r->retired, pos);
        idle |= !up->pending;
    }
    while (fresh && (pos = base_list_first(fresh))) {
        base_list_remove(pos);
        base_list_push_back(&r->routes, pos);
    }
    if (idle)
        dns_upstream_kick(r);
}

void dns_upstreams_reap(struct dns_resolver *r, bool all)
{
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &r->retired) {
        struct dns_upstream *up = container_of(pos, struct dns_upstream, link);
        if (all || !up->pending)
            upstream_destroy(up);
    }
}

/* ---- the reaper: work that must not run inside a c-ares or transport callback ---- */

static void on_reaper(uv_timer_t *t)
{
    struct dns_resolver *r = container_of(t, struct dns_resolver, reaper);
    dns_upstreams_reap(r, false);
    dns_socks_retry(r);
}

void dns_upstream_kick(struct dns_resolver *r)
{
    if (!dns_resolver_closing(r))
        uv_timer_start(&r->reaper, on_reaper, 0, 0);
}

void dns_reaper_init(struct dns_resolver *r)
{
    uv_timer_init(r->loop, &r->reaper);
}
