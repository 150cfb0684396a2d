/* Outgoing: handshake initiations, transport data, keepalives, staged packets. */
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "device.h"

static bool has_endpoint(const struct wg_peer *p)
{
    return p->endpoint.ss_family == AF_INET || p->endpoint.ss_family == AF_INET6;
}

void wg_send_to(struct wg_engine *e, const struct sockaddr *dst, const uint8_t *msg, size_t len)
{
    uint8_t *out = wg_udp_reserve(&e->udp, dst, len);
    if (!out) {
        e->stats.tx_udp_errors++;
        return;
    }
    memcpy(out, msg, len);
    wg_udp_commit(&e->udp, dst, len);
}

void wg_send_handshake_message(struct wg_peer *p, uint8_t *msg, size_t len)
{
    struct wg_engine *e = p->engine;
    wg_cookie_add_macs(&p->cookie, msg, len, wg_engine_now(e));
    wg_send_to(e, (struct sockaddr *)&p->endpoint, msg, len);
    p->tx_bytes += len;
}

/* The initiation itself; false when none went out (no endpoint, closing, noise failed). */
static bool send_initiation(struct wg_peer *p, bool is_retry, uint64_t now)
{
    struct wg_engine *e = p->engine;
    struct wg_msg_initiation msg;
    uint8_t ts[WG_TIMESTAMP_LEN];

    if (!has_endpoint(p) || e->state != WG_ENGINE_RUNNING)
        return false;
    uint64_t wall = e->clock.wall_ns(e->clock.arg);
    struct timespec wts = {.tv_sec = (time_t)(wall / WG_NSEC_PER_SEC),
                           .tv_nsec = (long)(wall % WG_NSEC_PER_SEC)};
    wg_tai64n(ts, &wts);
    wg_index_add(&e->index, &p->hs_idx);
    int err = wg_noise_create_initiation(&p->hs, &e->id, p->hs_idx.index, ts, NULL, &msg);
    if (err != WG_NOISE_OK) {
        wg_index_remove(&e->index, &p->hs_idx);
        wg_log(e, BASE_LOG_WARN, p, "handshake_initiation_failed", "err=%s",
               wg_noise_result_name(err));
        return false;
    }
    wg_log(e, BASE_LOG_DEBUG, p, "handshake_initiation_sent", "retry=%d", is_retry);
    wg_send_handshake_message(p, (uint8_t *)&msg, sizeof(msg));
    sodium_memzero(&msg, sizeof(msg));
    p->last_sent_handshake_ns = now;
    wg_timers_any_authenticated_packet_traversal(&p->timers, now);
    wg_timers_any_authenticated_packet_sent(&p->timers);
    wg_timers_handshake_initiated(&p->timers, now,
                                  randombytes_uniform(WG_REKEY_TIMEOUT_JITTER_MAX_NS + 1));
    wg_engine_timers_changed(e, p);
    return true;
}

void wg_send_initiation(struct wg_peer *p, bool is_retry)
{
    uint64_t now = wg_engine_now(p->engine);
    if (!is_retry)
        p->timers.handshake_attempts = 0;
    /* One initiation per REKEY_TIMEOUT, however many packets ask for it. */
    if (p->last_sent_handshake_ns && now - p->last_sent_handshake_ns < WG_REKEY_TIMEOUT_NS)
        return;
    send_initiation(p, is_retry, now);
}

/* A probe is a user asking, once: it goes now, whatever went before, and a handshake that was
 * retrying starts its attempts over (the probe's unanswered initiation retries as any would). */
int wg_engine_initiate_handshake(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN])
{
    if (e->state != WG_ENGINE_RUNNING)
        return BASE_ECLOSING;
    struct wg_peer *p = wg_engine_find_peer(e, public_key);
    if (!p)
        return -ENOENT;
    if (!has_endpoint(p))
        return -EDESTADDRREQ;
    p->timers.handshake_attempts = 0;
    return send_initiation(p, false, wg_engine_now(e)) ? 0 : -EINVAL;
}

/* Seals one packet (len 0 = keepalive) straight into the UDP send batch. */
static bool send_sealed(struct wg_peer *p, struct wg_keypair *kp, const uint8_t *pkt, size_t len,
                        uint64_t now)
{
    struct wg_engine *e = p->engine;
    size_t cap = wg_keypair_sealed_len_mtu(len, e->mtu), out_len = 0;
    const struct sockaddr *dst = (const struct sockaddr *)&p->endpoint;
    uint8_t *out = wg_udp_reserve(&e->udp, dst, cap);

    if (!out) {
        e->stats.tx_udp_errors++;
        return false;
    }
    if (wg_keypair_seal_mtu(kp, pkt, len, e->mtu, out, cap, &out_len, now) != WG_KEYPAIR_OK)
        return false;
    wg_udp_commit(&e->udp, dst, out_len);
    p->tx_bytes += out_len;
    if (len)
        wg_timers_data_sent(&p->timers, now);
    wg_timers_any_authenticated_packet_sent(&p->timers);
    wg_timers_any_authenticated_packet_traversal(&p->timers, now);
    return true;
}

/* Whitepaper 6.2: the initiator of a session rekeys after REKEY_AFTER_TIME, anyone after
 * REKEY_AFTER_MESSAGES. */
static void keep_key_fresh(struct wg_peer *p, uint64_t now)
{
    struct wg_keypair *kp = p->current ? &p->current->kp : NULL;
    if (kp && wg_keypair_should_rekey(kp, now))
        wg_send_initiation(p, false);
}

void wg_send_staged(struct wg_peer *p)
{
    struct wg_engine *e = p->engine;
    uint64_t now = wg_engine_now(e);
    struct wg_keypair *kp = wg_peer_sending_keypair(p, now);

    if (!p->queue_len)
        return;
    if (!kp || !has_endpoint(p)) {
        wg_send_initiation(p, false);
        return;
    }
    struct wg_queued_packet *q;
    while ((q = wg_peer_queue_pop(p)) != NULL) {
        bool ok = send_sealed(p, kp, q->data, q->len, now);
        free(q);
        if (!ok)
            break;
    }
    wg_engine_timers_changed(e, p);
    keep_key_fresh(p, now);
}

void wg_send_keepalive(struct wg_peer *p)
{
    struct wg_engine *e = p->engine;
    uint64_t now = wg_engine_now(e);
    struct wg_keypair *kp = wg_peer_sending_keypair(p, now);

    if (p->queue_len) {
        wg_send_staged(p);
        return;
    }
    if (!has_endpoint(p))
        return;
    if (!kp) {
        wg_send_initiation(p, false);
        return;
    }
    wg_log_event(e, BASE_LOG_DEBUG, p, "keepalive_sent");
    send_sealed(p, kp, NULL, 0, now);
    wg_engine_timers_changed(e, p);
    keep_key_fresh(p, now);
}

/* The destination of an IPv4/IPv6 packet, after checking its header fits. */
static int packet_destination(const uint8_t *pkt, size_t len, int *family, const uint8_t **dst)
{
    if (len >= 20 && (pkt[0] >> 4) == 4) {
        *family = AF_INET;
        *dst = pkt + 16;
        return 0;
    }
    if (len >= 40 && (pkt[0] >> 4) == 6) {
        *family = AF_INET6;
        *dst = pkt + 24;
        return 0;
    }
    return -1;
}

int wg_engine_send(struct wg_engine *e, const uint8_t *ip_packet, size_t len)
{
    int family;
    const uint8_t *dst;

    if (e->state != WG_ENGINE_RUNNING)
        return BASE_ECLOSING;
    if (!ip_packet || len > WG_MAX_PACKET || packet_destination(ip_packet, len, &family, &dst))
        return -EINVAL;
    struct wg_peer *p = wg_allowedips_lookup(&e->allowedips, family, dst);
    if (!p) {
        e->stats.tx_no_route++;
        return -EHOSTUNREACH;
    }
    if (!has_endpoint(p))
        return -EDESTADDRREQ;
    uint64_t now = wg_engine_now(e);
    struct wg_keypair *kp = wg_peer_sending_keypair(p, now);
    if (kp && !p->queue_len) {
        /* The common case: no copy but the encryption's. */
        send_sealed(p, kp, ip_packet, len, now);
        wg_engine_timers_changed(e, p);
        keep_key_fresh(p, now);
        return 0;
    }
    if (!wg_peer_queue_push(p, ip_packet, len))
        return -ENOMEM;
    wg_send_staged(p);
    return 0;
}
