/* The engine object: clock and log, the one timer that drives every peer's protocol timers,
 * the peer table, the knobs and counters, then the lifecycle (new, close, free in the close
 * callbacks). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"

/* ---- clock and log ---- */

static uint64_t default_mono_ns(void *arg)
{
    (void)arg;
    return uv_hrtime();
}

static uint64_t default_wall_ns(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * WG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t wg_engine_now(const struct wg_engine *e)
{
    return e->clock.mono_ns(e->clock.arg);
}

void wg_engine_logf(const struct wg_engine *e, enum base_log_level level, const struct wg_peer *p,
                    const char *event, const char *fields_fmt, ...)
{
    char fields[BASE_LOG_LINE_MAX] = "";
    if (fields_fmt) {
        va_list ap;
        va_start(ap, fields_fmt);
        vsnprintf(fields, sizeof(fields), fields_fmt, ap);
        va_end(ap);
    }
    char who[BASE_LOG_PEER_STRLEN] = "";
    if (p)
        base_log_peer(who, sizeof(who), p->name, p->key8);
    base_logf(&e->log, level, "event=%s%s%s%s%s", event, p ? " " : "", who, fields[0] ? " " : "",
              fields);
}

/* ---- timers: one uv_timer for all peers, armed for the earliest deadline ---- */

static void on_timer(uv_timer_t *t);

static void arm_timer(struct wg_engine *e, uint64_t deadline)
{
    if (e->state != WG_ENGINE_RUNNING)
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
            wg_log(e, BASE_LOG_INFO, p, "handshake_gave_up", "attempts=%d",
                   (int)WG_MAX_TIMER_HANDSHAKES + 1);
            wg_timers_handshake_gave_up(&p->timers, now);
            wg_peer_queue_purge(p);
        } else {
            p->timers.handshake_attempts++;
            wg_log(e, BASE_LOG_DEBUG, p, "handshake_retry", "attempt=%u after_s=%d",
                   (unsigned)p->timers.handshake_attempts + 1, WG_REKEY_TIMEOUT_SEC);
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
        wg_log(e, BASE_LOG_DEBUG, p, "handshake_no_reply", "after_s=%d",
               WG_KEEPALIVE_TIMEOUT_SEC + WG_REKEY_TIMEOUT_SEC);
        wg_send_initiation(p, false);
    }
    if (fired & (1u << WG_TIMER_ZERO_KEY_MATERIAL)) {
        wg_log(e, BASE_LOG_DEBUG, p, "keys_zeroed", "unused_s=%d", 3 * WG_REJECT_AFTER_TIME_SEC);
        wg_peer_clear_keys(p);
    }
    if (fired & (1u << WG_TIMER_PERSISTENT_KEEPALIVE))
        wg_send_keepalive(p);
}

static void run_timers(struct wg_engine *e)
{
    uint64_t now = wg_engine_now(e), next = 0;

    struct base_list *l;

    e->timer_deadline = 0;
    base_list_foreach (l, &e->peers)
        run_peer_timers(container_of(l, struct wg_peer, link), now);
    base_list_foreach (l, &e->peers) {
        uint64_t d = wg_timers_next(&container_of(l, struct wg_peer, link)->timers);
        if (d && (!next || d < next))
            next = d;
    }
    e->timer_deadline = 0; /* handlers may have armed it; next is the truth */
    if (next)
        arm_timer(e, next);
    else if (e->state == WG_ENGINE_RUNNING)
        uv_timer_stop(&e->timer);
    wg_udp_flush(&e->udp);
}

static void on_timer(uv_timer_t *t)
{
    run_timers(container_of(t, struct wg_engine, timer));
}

void wg_engine_clock_changed(struct wg_engine *e)
{
    if (e->state == WG_ENGINE_RUNNING)
        run_timers(e);
}

/* ---- the peer table: a list of all peers, and a hash of their keys ---- */

static size_t peer_bucket(const uint8_t key[WG_KEY_LEN])
{
    /* Configured public keys are uniformly random and not chosen by strangers. */
    return (size_t)(key[0] | key[1] << 8) % WG_PEER_BUCKETS;
}

struct wg_peer *wg_engine_find_peer(const struct wg_engine *e, const uint8_t key[WG_KEY_LEN])
{
    const struct base_list *head = &e->peer_buckets[peer_bucket(key)];
    struct base_list *l;
    base_list_foreach (l, head) {
        struct wg_peer *p = container_of(l, struct wg_peer, bucket_link);
        if (wg_key_equal(p->public_key, key))
            return p;
    }
    return NULL;
}

struct wg_peer *wg_engine_peer(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN])
{
    return wg_engine_find_peer(e, public_key);
}

void wg_engine_link_peer(struct wg_engine *e, struct wg_peer *p)
{
    base_list_push_front(&e->peer_buckets[peer_bucket(p->public_key)], &p->bucket_link);
    base_list_push_front(&e->peers, &p->link);
    e->peer_count++;
}

void wg_engine_unlink_peer(struct wg_engine *e, struct wg_peer *p)
{
    base_list_remove(&p->bucket_link);
    base_list_remove(&p->link);
    e->peer_count--;
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
    struct base_list *l;
    e->rekey_after_messages = n;
    base_list_foreach (l, &e->peers) {
        struct wg_peer *p = container_of(l, struct wg_peer, link);
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

/* ---- lifecycle: new, then close, which frees in the handles' close callbacks ---- */

static void on_datagram(void *arg, uint8_t *data, size_t len, const struct sockaddr *src)
{
    wg_engine_receive(arg, data, len, src);
}

static void free_engine(struct wg_engine *e)
{
    void (*cb)(void *) = e->on_closed;
    void *arg = e->on_closed_arg;
    struct base_list *l;

    while ((l = base_list_first(&e->peers)) != NULL) {
        struct wg_peer *p = container_of(l, struct wg_peer, link);
        wg_engine_unlink_peer(e, p);
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
        cb(arg);
}

static void handle_closed(struct wg_engine *e)
{
    if (--e->open_handles == 0)
        free_engine(e);
}

static void on_udp_closed(struct wg_udp *u)
{
    handle_closed(container_of(u, struct wg_engine, udp));
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(container_of((uv_timer_t *)h, struct wg_engine, timer));
}

static void close_handles(struct wg_engine *e)
{
    e->state = WG_ENGINE_CLOSING;
    e->open_handles = 2; /* this function's own reference, and the timer */
    wg_udp_flush(&e->udp);
    if (wg_udp_close(&e->udp, on_udp_closed))
        e->open_handles++;
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
    handle_closed(e);
}

void wg_engine_close(struct wg_engine *e, void (*on_closed)(void *arg), void *arg)
{
    if (!e || e->state != WG_ENGINE_RUNNING)
        return;
    e->on_closed = on_closed;
    e->on_closed_arg = arg;
    /* Keys go now, not when libuv gets round to the close callbacks. */
    struct base_list *l;
    base_list_foreach (l, &e->peers) {
        struct wg_peer *p = container_of(l, struct wg_peer, link);
        wg_peer_clear_keys(p);
        wg_peer_queue_purge(p);
    }
    close_handles(e);
}

/* Everything but the handles; on failure the caller frees e (nothing is on the loop yet). */
static int init_engine(struct wg_engine *e, uv_loop_t *loop, const struct wg_engine_options *opt)
{
    e->loop = loop;
    e->clock.mono_ns = default_mono_ns;
    e->clock.wall_ns = default_wall_ns;
    if (opt->clock)
        e->clock = *opt->clock;
    e->deliver = opt->deliver;
    e->deliver_arg = opt->deliver_arg;
    e->on_handshake = opt->on_handshake;
    e->on_handshake_arg = opt->on_handshake_arg;
    e->log = opt->log;
    e->mtu = opt->mtu ? opt->mtu : 1420;
    e->rekey_after_messages = WG_REKEY_AFTER_MESSAGES;
    base_list_init(&e->peers);
    for (size_t i = 0; i < WG_PEER_BUCKETS; i++)
        base_list_init(&e->peer_buckets[i]);
    wg_allowedips_init(&e->allowedips);
    wg_load_init(&e->load, WG_UNDER_LOAD_DEFAULT_THRESHOLD);
    if (wg_noise_identity_init(&e->id, opt->private_key) != 0)
        return -EINVAL;
    wg_cookie_checker_init(&e->cookie_checker, e->id.public_key);
    if (wg_index_init(&e->index) != 0 || wg_ratelimit_init(&e->ratelimit) != 0)
        return -ENOMEM;
    return 0;
}

int wg_engine_new(uv_loop_t *loop, const struct wg_engine_options *opt, struct wg_engine **out)
{
    *out = NULL;
    if (!loop || !opt || (opt->no_ipv4 && opt->no_ipv6))
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    struct wg_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    int err = init_engine(e, loop, opt);
    if (err) {
        free_engine(e);
        return err;
    }
    uv_timer_init(loop, &e->timer);
    uv_unref((uv_handle_t *)&e->timer); /* the sockets keep the loop alive, not the timer */
    struct wg_udp_config ucfg = {.port = opt->listen_port,
                                 .bind4 = opt->bind4,
                                 .bind6 = opt->bind6,
                                 .no_ipv4 = opt->no_ipv4,
                                 .no_ipv6 = opt->no_ipv6,
                                 .no_offload = opt->no_udp_offload};
    e->udp.on_datagram = on_datagram;
    e->udp.arg = e;
    if ((err = wg_udp_open(&e->udp, loop, &ucfg)) != 0) {
        wg_log(e, BASE_LOG_ERROR, NULL, "listen_failed", "port=%u err=%s", opt->listen_port,
               base_errname(err));
        close_handles(e); /* frees e once libuv closed what was opened */
        return err;
    }
    *out = e;
    return 0;
}
