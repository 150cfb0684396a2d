/*
 * The health list. node_health_check is pure: facts in, items out, in a fixed order (no
 * configuration, listeners, peers, then counters). current() gathers the running node's facts
 * (gather_peers, and the counter windows of metrics.c) and checks them; node_health_json turns
 * the items into JSON, node_health_poll publishes those that appeared or cleared since its last
 * call to the lifecycle's subscribers. Readiness (?peers=all) reuses gather_peers.
 */
#include "metrics.h"
#include "metrics_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "lifecycle.h"

static struct node_health_item *add(struct node_health_item *out, size_t cap, size_t *n,
                                    const char *code)
{
    if (*n >= cap)
        return NULL;
    struct node_health_item *it = &out[(*n)++];
    it->code = code;
    it->message[0] = '\0';
    return it;
}

static bool fresh(const struct node_health_facts *f, uint64_t wall_ns)
{
    return wall_ns && f->now_wall_ns >= wall_ns &&
           f->now_wall_ns - wall_ns <= (uint64_t)NODE_HANDSHAKE_FRESH_S * 1000000000ull;
}

static void check_peers(const struct node_health_facts *f, struct node_health_item *out, size_t cap,
                        size_t *n)
{
    bool any_fresh = false;
    for (size_t i = 0; i < f->n_peers; i++)
        any_fresh = any_fresh || fresh(f, f->peers[i].last_handshake_wall_ns);
    struct node_health_item *it;
    if (f->n_peers > 0 && !any_fresh && (it = add(out, cap, n, "no_handshake")))
        snprintf(it->message, sizeof(it->message),
                 "no peer has completed a handshake in the last %d minutes",
                 NODE_HANDSHAKE_FRESH_S / 60);
    for (size_t i = 0; i < f->n_peers; i++) {
        const struct node_health_peer *p = &f->peers[i];
        if (!p->endpoint || p->endpoint_known || !(it = add(out, cap, n, "endpoint_unresolved")))
            continue;
        snprintf(it->message, sizeof(it->message), "peer %s (%.8s): endpoint %s does not resolve",
                 p->name ? p->name : "-", p->key ? p->key : "", p->endpoint);
    }
}

size_t node_health_check(const struct node_health_facts *f, struct node_health_item *out,
                         size_t cap)
{
    size_t n = 0;
    struct node_health_item *it;
    if (!f->have_config && (it = add(out, cap, &n, "no_config")))
        snprintf(it->message, sizeof(it->message),
                 "no configuration yet: the node has no peers and no tunnel address");
    if (f->listen_error && (it = add(out, cap, &n, "listener_failed")))
        snprintf(it->message, sizeof(it->message), "after a reload: %s", f->listen_error);
    check_peers(f, out, cap, &n);
    if (f->dns_upstream_failures && (it = add(out, cap, &n, "dns_upstream_timeouts")))
        snprintf(it->message, sizeof(it->message),
                 "%llu DNS queries to upstream resolvers timed out or failed recently",
                 (unsigned long long)f->dns_upstream_failures);
    if (f->udp_rx_drops && (it = add(out, cap, &n, "udp_receive_drops")))
        snprintf(it->message, sizeof(it->message),
                 "the kernel dropped %llu WireGuard datagrams recently: the UDP receive buffer "
                 "was full",
                 (unsigned long long)f->udp_rx_drops);
    return n;
}

/* ---- the running node's facts ---- */

struct peer_facts {
    struct node_health_peer *peers;
    char (*keys)[WG_KEY_B64_LEN + 1];
    char (*endpoints)[BASE_HOST_MAX + 8];
};

static int gather_peers(struct node_daemon *d, struct peer_facts *pf)
{
    size_t n = d->have_config ? d->cfg.n_peers : 0;
    pf->peers = calloc(n + 1, sizeof(*pf->peers));
    pf->keys = calloc(n + 1, sizeof(*pf->keys));
    pf->endpoints = calloc(n + 1, sizeof(*pf->endpoints));
    if (!pf->peers || !pf->keys || !pf->endpoints)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_peer *cp = &d->cfg.peers[i];
        struct node_health_peer *hp = &pf->peers[i];
        struct wg_peer_stats st;
        wg_key_to_base64(pf->keys[i], cp->public_key);
        hp->name = cp->name;
        hp->key = pf->keys[i];
        if (cp->n_endpoints > 0) {
            snprintf(pf->endpoints[i], sizeof(pf->endpoints[i]),
                     strchr(cp->endpoints[0].host, ':') ? "[%s]:%u" : "%s:%u",
                     cp->endpoints[0].host, cp->endpoints[0].port);
            hp->endpoint = pf->endpoints[i];
        }
        if (d->engine && wg_engine_peer_stats(d->engine, cp->public_key, &st) == 0) {
            hp->endpoint_known = st.endpoint.addr.family != 0;
            hp->last_handshake_wall_ns = st.last_handshake_wall_ns;
            hp->handshake_unanswered = st.handshake_unanswered;
        }
    }
    return 0;
}

static void free_peers(struct peer_facts *pf)
{
    free(pf->peers);
    free(pf->keys);
    free(pf->endpoints);
}

/* The running node's items now. Returns how many, or -ENOMEM. */
static int current(struct node_daemon *d, struct node_health_item *items, size_t cap)
{
    struct peer_facts pf;
    struct node_health_facts f = {.have_config = d->have_config,
                                  .now_wall_ns = node_metrics_wall_ns()};
    int rc = gather_peers(d, &pf);
    if (rc == 0) {
        f.peers = pf.peers;
        f.n_peers = d->have_config ? d->cfg.n_peers : 0;
        node_metrics_recent(d, &f);
        rc = (int)node_health_check(&f, items, cap);
    }
    free_peers(&pf);
    return rc;
}

int node_health_json(struct node_daemon *d, json_t *array)
{
    struct node_health_item items[NODE_HEALTH_MAX];
    int n = current(d, items, NODE_HEALTH_MAX);
    for (int i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:s}", "code", items[i].code, "message", items[i].message);
        if (!o || json_array_append_new(array, o) != 0)
            return -ENOMEM;
    }
    return n;
}

/* The same item: per-peer items by their message (it names the peer), the others by code (their
 * message carries counts that change). */
static bool same_item(const struct node_health_item *a, const struct node_health_item *b)
{
    if (strcmp(a->code, b->code) != 0)
        return false;
    return strcmp(a->code, "endpoint_unresolved") != 0 || strcmp(a->message, b->message) == 0;
}

static bool among(const struct node_health_item *it, const struct node_health_item *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (same_item(it, &list[i]))
            return true;
    return false;
}

static void publish(struct node_daemon *d, const struct node_health_item *it, bool cleared)
{
    node_lifecycle_publish(d, &(struct node_event){.kind = NODE_EVENT_HEALTH,
                                                   .code = it->code,
                                                   .detail = it->message,
                                                   .cleared = cleared});
}

void node_health_poll(struct node_daemon *d)
{
    struct node_metrics *m = d->metrics;
    struct node_health_item now[NODE_HEALTH_MAX];
    int n = m ? current(d, now, NODE_HEALTH_MAX) : -1;
    if (n < 0)
        return;
    for (size_t i = 0; i < m->n_health; i++)
        if (!among(&m->health[i], now, (size_t)n))
            publish(d, &m->health[i], true);
    for (int i = 0; i < n; i++)
        if (!among(&now[i], m->health, m->n_health))
            publish(d, &now[i], false);
    memcpy(m->health, now, (size_t)n * sizeof(now[0]));
    m->n_health = (size_t)n;
}

/* ---- readiness ---- */

static bool peers_fresh(struct node_daemon *d, char *why, size_t cap)
{
    struct peer_facts pf;
    if (gather_peers(d, &pf) != 0) {
        free_peers(&pf);
        snprintf(why, cap, "out of memory");
        return false;
    }
    struct node_health_facts f = {.now_wall_ns = node_metrics_wall_ns()};
    bool ok = true;
    for (size_t i = 0; ok && i < d->cfg.n_peers; i++) {
        const struct node_health_peer *p = &pf.peers[i];
        if (!p->endpoint || (fresh(&f, p->last_handshake_wall_ns) && !p->handshake_unanswered))
            continue;
        if (p->handshake_unanswered)
            snprintf(why, cap, "peer %s (%.8s): does not answer handshakes",
                     p->name ? p->name : "-", p->key);
        else
            snprintf(why, cap, "peer %s (%.8s): no handshake in the last %d minutes",
                     p->name ? p->name : "-", p->key, NODE_HANDSHAKE_FRESH_S / 60);
        ok = false;
    }
    free_peers(&pf);
    return ok;
}

bool node_metrics_ready(struct node_daemon *d, bool all_peers, char *why, size_t cap)
{
    const char *state = node_metrics_state(d);
    if (strcmp(state, "Running") != 0) {
        snprintf(why, cap, "state %s", state);
        return false;
    }
    if (all_peers && !peers_fresh(d, why, cap))
        return false;
    snprintf(why, cap, "ok");
    return true;
}
