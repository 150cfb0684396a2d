/*
 * The peer configuration calls: wg_engine_set_peer checks the whole configuration first, then
 * creates or updates the peer (allowed IPs, endpoint, keepalive) and starts the keepalive when
 * it became possible; wg_engine_remove_peer; then the read side (peer stats, engine stats).
 */
#include <stdio.h>
#include <string.h>

#include "device.h"

static bool valid_allowed_ip(const struct base_prefix *a)
{
    return (a->addr.family == AF_INET && a->bits <= 32) ||
           (a->addr.family == AF_INET6 && a->bits <= 128);
}

static int check_peer_config(const struct wg_engine *e, const struct wg_peer_config *cfg)
{
    if (!cfg || (cfg->allowed_ips_len && !cfg->allowed_ips) || wg_key_is_zero(cfg->public_key) ||
        wg_key_equal(cfg->public_key, e->id.public_key))
        return -EINVAL;
    if (cfg->endpoint && cfg->endpoint->addr.family != AF_INET &&
        cfg->endpoint->addr.family != AF_INET6)
        return -EINVAL;
    for (size_t i = 0; i < cfg->allowed_ips_len; i++)
        if (!valid_allowed_ip(&cfg->allowed_ips[i]))
            return -EINVAL;
    return 0;
}

/* Only allocation can fail (all were checked); the peer is then left without any allowed IP,
 * which fails closed. */
static int replace_allowed_ips(struct wg_engine *e, struct wg_peer *p,
                               const struct wg_peer_config *cfg)
{
    wg_allowedips_remove_owner(&e->allowedips, p);
    for (size_t i = 0; i < cfg->allowed_ips_len; i++) {
        if (wg_allowedips_insert(&e->allowedips, &cfg->allowed_ips[i], p) != 0) {
            wg_allowedips_remove_owner(&e->allowedips, p);
            return -ENOMEM;
        }
    }
    return 0;
}

/* The one place a configured endpoint becomes the sockaddr the sockets take. Returns whether
 * it differs from the one the peer had. */
static bool apply_endpoint(struct wg_peer *p, const struct base_endpoint *ep)
{
    struct sockaddr_storage ss;
    socklen_t len = base_endpoint_to_sockaddr(ep, &ss);
    if (p->endpoint.ss_family == ss.ss_family && memcmp(&p->endpoint, &ss, len) == 0)
        return false;
    p->endpoint = ss;
    return true;
}

/* Returns whether keepalive was off and is on now. */
static bool apply_keepalive(struct wg_peer *p, uint16_t seconds)
{
    bool turned_on = seconds && !p->persistent_keepalive;
    p->persistent_keepalive = seconds;
    p->timers.persistent_keepalive_ns = (uint64_t)seconds * WG_NSEC_PER_SEC;
    if (!seconds)
        p->timers.deadline[WG_TIMER_PERSISTENT_KEEPALIVE] = 0;
    return turned_on;
}

/*
 * As wg(8): turning persistent keepalive on sends one at once, opening the NAT mapping. So does
 * an endpoint arriving for a keepalive peer without a session (a host name the node resolved
 * after adding the peer): else a node behind NAT stays unreachable until it sends traffic.
 * Without a session the keepalive is a handshake initiation.
 */
static void start_keepalive(struct wg_peer *p, bool turned_on, bool endpoint_changed)
{
    if (!p->persistent_keepalive || !p->endpoint.ss_family)
        return;
    if (turned_on || (endpoint_changed && !wg_peer_sending_keypair(p, wg_engine_now(p->engine))))
        wg_send_keepalive(p);
}

static void log_peer_configured(struct wg_engine *e, struct wg_peer *p, bool created)
{
    char ep[BASE_ENDPOINT_STRLEN] = "none";
    struct base_endpoint be;
    if (base_log_enabled(&e->log, BASE_LOG_DEBUG) &&
        base_endpoint_from_sockaddr(&be, (const struct sockaddr *)&p->endpoint) == 0)
        base_endpoint_format(&be, ep, sizeof(ep));
    wg_log(e, BASE_LOG_DEBUG, p, "peer_configured", "new=%d endpoint=%s keepalive_s=%u", created,
           ep, (unsigned)p->persistent_keepalive);
}

int wg_engine_set_peer(struct wg_engine *e, const struct wg_peer_config *cfg)
{
    if (e->state != WG_ENGINE_RUNNING)
        return BASE_ECLOSING;
    int err = check_peer_config(e, cfg);
    if (err)
        return err;
    struct wg_peer *p = wg_engine_find_peer(e, cfg->public_key);
    bool created = !p;
    if (created) {
        p = wg_peer_new(e, cfg->public_key, cfg->preshared_key);
        if (!p)
            return -ENOMEM;
    } else {
        wg_noise_handshake_set_psk(&p->hs, cfg->preshared_key);
    }
    if ((err = replace_allowed_ips(e, p, cfg)) != 0) {
        if (created)
            wg_peer_free(p);
        return err;
    }
    snprintf(p->name, sizeof(p->name), "%s", cfg->name ? cfg->name : "");
    bool endpoint_changed = cfg->endpoint && apply_endpoint(p, cfg->endpoint);
    bool keepalive_turned_on = apply_keepalive(p, cfg->persistent_keepalive);
    if (created)
        wg_engine_link_peer(e, p);
    log_peer_configured(e, p, created);
    start_keepalive(p, keepalive_turned_on, endpoint_changed);
    return 0;
}

int wg_engine_remove_peer(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN])
{
    struct wg_peer *p = wg_engine_find_peer(e, public_key);
    if (!p)
        return -ENOENT;
    wg_log_event(e, BASE_LOG_DEBUG, p, "peer_deleted");
    wg_engine_unlink_peer(e, p);
    wg_allowedips_remove_owner(&e->allowedips, p);
    wg_peer_free(p);
    return 0;
}

/* An initiation sent after the newest session was derived, retried or older than
 * REKEY_TIMEOUT. */
static bool handshake_unanswered(const struct wg_peer *p, uint64_t now)
{
    uint64_t newest = 0;
    if (p->current)
        newest = p->current->kp.created_ns;
    if (p->next && p->next->kp.created_ns > newest)
        newest = p->next->kp.created_ns;
    if (!p->last_sent_handshake_ns || p->last_sent_handshake_ns <= newest)
        return false;
    return p->timers.handshake_attempts > 0 ||
           now - p->last_sent_handshake_ns >= WG_REKEY_TIMEOUT_NS;
}

static void fill_peer_stats(const struct wg_engine *e, const struct wg_peer *p,
                            struct wg_peer_stats *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->public_key, p->public_key, WG_KEY_LEN);
    out->rx_bytes = p->rx_bytes;
    out->tx_bytes = p->tx_bytes;
    out->last_handshake_wall_ns = p->last_handshake_wall_ns;
    (void)base_endpoint_from_sockaddr(&out->endpoint, (const struct sockaddr *)&p->endpoint);
    out->persistent_keepalive = p->persistent_keepalive;
    out->has_session = p->current && !wg_keypair_expired(&p->current->kp, wg_engine_now(e));
    out->tx_queue_dropped = p->tx_queue_dropped;
    out->handshake_unanswered = handshake_unanswered(p, wg_engine_now(e));
}

int wg_engine_peer_stats(const struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN],
                         struct wg_peer_stats *out)
{
    const struct wg_peer *p = wg_engine_find_peer(e, public_key);
    if (!p)
        return -ENOENT;
    fill_peer_stats(e, p, out);
    return 0;
}

void wg_engine_foreach_peer(const struct wg_engine *e,
                            void (*fn)(void *arg, const struct wg_peer_stats *st), void *arg)
{
    struct wg_peer_stats st;
    struct base_list *l;
    base_list_foreach (l, &e->peers) {
        fill_peer_stats(e, container_of(l, struct wg_peer, link), &st);
        fn(arg, &st);
    }
}

void wg_engine_stats(const struct wg_engine *e, struct wg_engine_stats *out)
{
    *out = e->stats;
    out->tx_udp_errors += e->udp.stats.tx_errors;
    out->rx_socket_drops = wg_udp_rx_drops(&e->udp);
}
