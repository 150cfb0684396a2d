/* The engine object: creation, peers, counters, logging, and the one timer that drives every
 * peer's protocol timers. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"

/* ---- clock and log ---- */

static uint64_t default_mono_ns(void *ctx)
{
    (void)ctx;
    return uv_hrtime();
}

static uint64_t default_wall_ns(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * WG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t wg_engine_now(const struct wg_engine *e)
{
    return e->clock.mono_ns(e->clock.ctx);
}

static void default_log(void *ctx, enum wg_log_level level, const char *line)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)ctx;
    fprintf(stderr, "wg %s: %s\n", names[level], line);
}

void wg_engine_logf(const struct wg_engine *e, enum wg_log_level level, const struct wg_peer *p,
                    const char *fmt, ...)
{
    char line[256];
    int n = p ? snprintf(line, sizeof(line), "peer(%s): ", p->name) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    e->log(e->log_ctx, level, line);
}

/* ---- timers: one uv_timer for all peers, armed for the earliest deadline ---- */

static void on_timer(uv_timer_t *t);

static void arm_timer(struct wg_engine *e, uint64_t deadline)
{
    if (!e->timer_open || e->closing)
        return;
    uint64_t now = wg_engine_now(e);
    uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
    e->timer_deadline = deadline;
    uv_timer_start(&e->timer, on_timer, ms, 0);
}

void wg_engine_timers_changed(struct wg_engine *e, struct wg_peer *p)
{
    uint64_t d = wg_timers_next(&p->timers);
    if (d && (!e->timer_deadline || d < e->timer_deadline))
        arm_timer(e, d);
}

static void run_peer_timers(struct wg_peer *p, uint64_t now)
{
    struct wg_engine *e = p->engine;
    unsigned fired = wg_timers_expire(&p->timers, now);

    if (fired & (1u << WG_TIMER_RETRANSMIT_HANDSHAKE)) {
        if (p->timers.handshake_attempts >= WG_MAX_TIMER_HANDSHAKES) {
            wg_log(e, WG_LOG_INFO, p, "handshake did not complete after %d attempts, giving up",
                   (int)WG_MAX_TIMER_HANDSHAKES + 1);
            wg_timers_handshake_gave_up(&p->timers, now);
            wg_peer_queue_purge(p);
        } else {
            p->timers.handshake_attempts++;
            wg_log(e, WG_LOG_DEBUG, p, "handshake did not complete after %d seconds, retrying",
                   WG_REKEY_TIMEOUT_SEC);
            wg_send_initiation(p, true);
        }
    }
    if (fired & (1u << WG_TIMER_SEND_KEEPALIVE)) {
        wg_send_keepalive(p);
        if (p->timers.need_another_keepalive) {
            p->timers.need_another_keepalive = false;
            p->timers.deadline[WG_TIMER_SEND_KEEPALIVE] = now + WG_KEEPALIVE_TIMEOUT_NS;
        }
    }
    if (fired & (1u << WG_TIMER_NEW_HANDSHAKE)) {
        wg_log(e, WG_LOG_DEBUG, p, "no reply for %d seconds, new handshake",
               WG_KEEPALIVE_TIMEOUT_SEC + WG_REKEY_TIMEOUT_SEC);
        wg_send_initiation(p, false);
    }
    if (fired & (1u << WG_TIMER_ZERO_KEY_MATERIAL)) {
        wg_log(e, WG_LOG_DEBUG, p, "zeroing keys unused for %d seconds",
               3 * WG_REJECT_AFTER_TIME_SEC);
        wg_peer_clear_keys(p);
    }
    if (fired & (1u << WG_TIMER_PERSISTENT_KEEPALIVE))
        wg_send_keepalive(p);
}

static void run_timers(struct wg_engine *e)
{
    uint64_t now = wg_engine_now(e), next = 0;

    e->timer_deadline = 0;
    for (struct wg_peer *p = e->peers; p; p = p->next_in_list)
        run_peer_timers(p, now);
    for (struct wg_peer *p = e->peers; p; p = p->next_in_list) {
        uint64_t d = wg_timers_next(&p->timers);
        if (d && (!next || d < next))
            next = d;
    }
    e->timer_deadline = 0; /* handlers may have armed it; next is the truth */
    if (next)
        arm_timer(e, next);
    else if (e->timer_open)
        uv_timer_stop(&e->timer);
    wg_udp_flush(&e->udp);
}

static void on_timer(uv_timer_t *t)
{
    run_timers(t->data);
}

void wg_engine_clock_changed(struct wg_engine *e)
{
    if (!e->closing)
        run_timers(e);
}

/* ---- peers ---- */

static size_t peer_bucket(const uint8_t key[WG_KEY_LEN])
{
    /* Configured public keys are uniformly random and not chosen by strangers. */
    return (size_t)(key[0] | key[1] << 8) % WG_PEER_BUCKETS;
}

struct wg_peer *wg_engine_find_peer(const struct wg_engine *e, const uint8_t key[WG_KEY_LEN])
{
    for (struct wg_peer *p = e->peer_buckets[peer_bucket(key)]; p; p = p->next_in_bucket)
        if (wg_key_equal(p->public_key, key))
            return p;
    return NULL;
}

struct wg_peer *wg_engine_peer(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN])
{
    return wg_engine_find_peer(e, public_key);
}

static void link_peer(struct wg_engine *e, struct wg_peer *p)
{
    size_t b = peer_bucket(p->public_key);
    p->next_in_bucket = e->peer_buckets[b];
    e->peer_buckets[b] = p;
    p->next_in_list = e->peers;
    if (e->peers)
        e->peers->prev_in_list = p;
    e->peers = p;
    e->peer_count++;
}

static void unlink_peer(struct wg_engine *e, struct wg_peer *p)
{
    struct wg_peer **pp = &e->peer_buckets[peer_bucket(p->public_key)];
    for (; *pp; pp = &(*pp)->next_in_bucket) {
        if (*pp == p) {
            *pp = p->next_in_bucket;
            break;
        }
    }
    if (p->prev_in_list)
        p->prev_in_list->next_in_list = p->next_in_list;
    else
        e->peers = p->next_in_list;
    if (p->next_in_list)
        p->next_in_list->prev_in_list = p->prev_in_list;
    e->peer_count--;
}

static bool valid_allowed_ip(const struct wg_allowed_ip *a)
{
    return (a->family == AF_INET && a->cidr <= 32) || (a->family == AF_INET6 && a->cidr <= 128);
}

static bool valid_endpoint(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET || sa->sa_family == AF_INET6;
}

int wg_engine_set_peer(struct wg_engine *e, const struct wg_peer_config *cfg)
{
    if (e->closing)
        return WG_ERR_CLOSING;
    if (!cfg || (cfg->allowed_ips_len && !cfg->allowed_ips) ||
        (cfg->endpoint && !valid_endpoint(cfg->endpoint)) || wg_key_is_zero(cfg->public_key) ||
        wg_key_equal(cfg->public_key, e->id.public_key))
        return WG_ERR_INVALID;
    for (size_t i = 0; i < cfg->allowed_ips_len; i++)
        if (!valid_allowed_ip(&cfg->allowed_ips[i]))
            return WG_ERR_INVALID;

    struct wg_peer *p = wg_engine_find_peer(e, cfg->public_key);
    bool created = false;
    if (!p) {
        p = wg_peer_new(e, cfg->public_key, cfg->preshared_key);
        if (!p)
            return WG_ERR_NOMEM;
        created = true;
    } else {
        wg_noise_handshake_set_psk(&p->hs, cfg->preshared_key);
    }
    /* Replace the allowed IPs. Only allocation can fail here (all were validated); the peer is
     * then left without any, which fails closed. */
    wg_allowedips_remove_owner(&e->allowedips, p);
    for (size_t i = 0; i < cfg->allowed_ips_len; i++) {
        const struct wg_allowed_ip *a = &cfg->allowed_ips[i];
        if (wg_allowedips_insert(&e->allowedips, a->family, a->addr, a->cidr, p) != 0) {
            wg_allowedips_remove_owner(&e->allowedips, p);
            if (created)
                wg_peer_free(p);
            return WG_ERR_NOMEM;
        }
    }
    if (cfg->endpoint) {
        memset(&p->endpoint, 0, sizeof(p->endpoint));
        memcpy(&p->endpoint, cfg->endpoint, wg_sockaddr_len(cfg->endpoint));
    }
    bool keepalive_turned_on = cfg->persistent_keepalive && !p->persistent_keepalive;
    p->persistent_keepalive = cfg->persistent_keepalive;
    p->timers.persistent_keepalive_ns = (uint64_t)cfg->persistent_keepalive * WG_NSEC_PER_SEC;
    if (!cfg->persistent_keepalive)
        p->timers.deadline[WG_TIMER_PERSISTENT_KEEPALIVE] = 0;
    if (created) {
        link_peer(e, p);
        wg_log(e, WG_LOG_INFO, p, "added");
    }
    /* As wg(8): turning persistent keepalive on sends one at once (opening NAT mappings). */
    if (keepalive_turned_on && p->endpoint.ss_family)
        wg_send_keepalive(p);
    return WG_OK;
}

int wg_engine_remove_peer(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN])
{
    struct wg_peer *p = wg_engine_find_peer(e, public_key);
    if (!p)
        return WG_ERR_NOT_FOUND;
    wg_log(e, WG_LOG_INFO, p, "removed");
    unlink_peer(e, p);
    wg_allowedips_remove_owner(&e->allowedips, p);
    wg_peer_free(p);
    return WG_OK;
}

static void fill_peer_stats(const struct wg_engine *e, const struct wg_peer *p,
                            struct wg_peer_stats *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->public_key, p->public_key, WG_KEY_LEN);
    out->rx_bytes = p->rx_bytes;
    out->tx_bytes = p->tx_bytes;
    out->last_handshake_wall_ns = p->last_handshake_wall_ns;
    out->endpoint = p->endpoint;
    out->persistent_keepalive = p->persistent_keepalive;
    out->has_session = p->current && !wg_keypair_expired(&p->current->kp, wg_engine_now(e));
    out->tx_queue_dropped = p->tx_queue_dropped;
}

int wg_engine_peer_stats(const struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN],
                         struct wg_peer_stats *out)
{
    const struct wg_peer *p = wg_engine_find_peer(e, public_key);
    if (!p)
        return WG_ERR_NOT_FOUND;
    fill_peer_stats(e, p, out);
    return WG_OK;
}

void wg_engine_foreach_peer(const struct wg_engine *e,
                            void (*fn)(void *ctx, const struct wg_peer_stats *st), void *ctx)
{
    struct wg_peer_stats st;
    for (const struct wg_peer *p = e->peers; p; p = p->next_in_list) {
        fill_peer_stats(e, p, &st);
        fn(ctx, &st);
    }
}

void wg_engine_stats(const struct wg_engine *e, struct wg_engine_stats *out)
{
    *out = e->stats;
    out->tx_udp_errors += e->udp.tx_errors;
}

uint16_t wg_engine_port(const struct wg_engine *e)
{
    return e->udp.port;
}

void wg_engine_public_key(const struct wg_engine *e, uint8_t out[WG_KEY_LEN])
{
    memcpy(out, e->id.public_key, WG_KEY_LEN);
}

void wg_engine_set_rekey_after_messages(struct wg_engine *e, uint64_t n)
{
    e->rekey_after_messages = n;
    for (struct wg_peer *p = e->peers; p; p = p->next_in_list) {
        struct wg_peer_keypair *slots[3] = {p->previous, p->current, p->next};
        for (int i = 0; i < 3; i++)
            if (slots[i])
                slots[i]->kp.rekey_after_messages = n;
    }
}

void wg_engine_set_under_load_threshold(struct wg_engine *e, uint32_t per_second)
{
    e->load.threshold = per_second;
}

/* ---- lifecycle ---- */

static void on_datagram(void *ctx, uint8_t *data, size_t len, const struct sockaddr *src)
{
    wg_engine_receive(ctx, data, len, src);
}

static void free_engine(struct wg_engine *e)
{
    void (*cb)(void *) = e->on_closed;
    void *ctx = e->on_closed_ctx;

    while (e->peers) {
        struct wg_peer *p = e->peers;
        unlink_peer(e, p);
        wg_peer_free(p);
    }
    wg_allowedips_free(&e->allowedips);
    wg_index_free(&e->index);
    wg_ratelimit_free(&e->ratelimit);
    wg_noise_identity_clear(&e->id);
    wg_cookie_checker_wipe(&e->cookie_checker);
    sodium_memzero(e, sizeof(*e));
    free(e);
    if (cb)
        cb(ctx);
}

static void handle_closed(struct wg_engine *e)
{
    if (--e->open_handles == 0)
        free_engine(e);
}

static void on_udp_closed(struct wg_udp *u)
{
    handle_closed((struct wg_engine *)((char *)u - offsetof(struct wg_engine, udp)));
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void close_handles(struct wg_engine *e)
{
    e->closing = true;
    e->open_handles = 1; /* this function's own reference */
    if (e->udp_open) {
        e->udp_open = false;
        e->open_handles++;
        wg_udp_flush(&e->udp);
        wg_udp_close(&e->udp, on_udp_closed);
    } else if (e->udp.open_handles) {
        /* wg_udp_open failed half way and is already closing what it opened. */
        e->open_handles++;
        e->udp.on_closed = on_udp_closed;
    }
    if (e->timer_open) {
        e->timer_open = false;
        e->open_handles++;
        uv_close((uv_handle_t *)&e->timer, on_timer_closed);
    }
    handle_closed(e);
}

void wg_engine_close(struct wg_engine *e, void (*on_closed)(void *ctx), void *ctx)
{
    if (!e || e->closing)
        return;
    e->on_closed = on_closed;
    e->on_closed_ctx = ctx;
    /* Keys go now, not when libuv gets round to the close callbacks. */
    for (struct wg_peer *p = e->peers; p; p = p->next_in_list) {
        wg_peer_clear_keys(p);
        wg_peer_queue_purge(p);
    }
    close_handles(e);
}

int wg_engine_create(struct wg_engine **out, const struct wg_engine_options *opt)
{
    *out = NULL;
    if (!opt || !opt->loop || (opt->no_ipv4 && opt->no_ipv6))
        return WG_ERR_INVALID;
    if (sodium_init() < 0)
        return WG_ERR_NOMEM;
    struct wg_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return WG_ERR_NOMEM;
    e->loop = opt->loop;
    e->clock.mono_ns = default_mono_ns;
    e->clock.wall_ns = default_wall_ns;
    if (opt->clock)
        e->clock = *opt->clock;
    e->deliver = opt->deliver;
    e->deliver_ctx = opt->deliver_ctx;
    e->log = opt->log ? opt->log : default_log;
    e->log_ctx = opt->log_ctx;
    e->log_level = opt->log_level;
    e->mtu = opt->mtu ? opt->mtu : 1420;
    e->rekey_after_messages = WG_REKEY_AFTER_MESSAGES;
    wg_allowedips_init(&e->allowedips);
    wg_load_init(&e->load, WG_UNDER_LOAD_DEFAULT_THRESHOLD);
    if (wg_noise_identity_init(&e->id, opt->private_key) != 0) {
        free_engine(e);
        return WG_ERR_INVALID;
    }
    wg_cookie_checker_init(&e->cookie_checker, e->id.public_key);
    if (wg_index_init(&e->index) != 0 || wg_ratelimit_init(&e->ratelimit) != 0) {
        free_engine(e);
        return WG_ERR_NOMEM;
    }
    struct wg_udp_config ucfg = {.loop = opt->loop,
                                 .port = opt->listen_port,
                                 .bind4 = opt->bind4,
                                 .bind6 = opt->bind6,
                                 .no_ipv4 = opt->no_ipv4,
                                 .no_ipv6 = opt->no_ipv6};
    e->udp.on_datagram = on_datagram;
    e->udp.ctx = e;
    int err = wg_udp_open(&e->udp, &ucfg);
    if (err) {
        wg_log(e, WG_LOG_ERROR, NULL, "cannot bind UDP port %u: %s", opt->listen_port,
               uv_strerror(err));
        close_handles(e); /* frees e now or once libuv closed what was opened */
        return WG_ERR_SOCKET;
    }
    e->udp_open = true;
    uv_timer_init(opt->loop, &e->timer);
    e->timer.data = e;
    e->timer_open = true;
    uv_unref((uv_handle_t *)&e->timer); /* the sockets keep the loop alive, not the timer */
    *out = e;
    return WG_OK;
}
