/* Incoming datagrams: every message type checked for length and authenticity, then acted on. */
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

/* The bytes a cookie binds to: source IP then port, as the reference implementations do. */
static size_t cookie_source(const struct sockaddr *src, uint8_t out[WG_COOKIE_SOURCE_MAX])
{
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        memcpy(out, &s->sin_addr, 4);
        memcpy(out + 4, &s->sin_port, 2);
        return 6;
    }
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src;
    memcpy(out, &s->sin6_addr, 16);
    memcpy(out + 16, &s->sin6_port, 2);
    return 18;
}

static void set_endpoint(struct wg_peer *p, const struct sockaddr *src)
{
    socklen_t len = wg_sockaddr_len(src);
    if (memcmp(&p->endpoint, src, len) == 0)
        return;
    memset(&p->endpoint, 0, sizeof(p->endpoint));
    memcpy(&p->endpoint, src, len);
    if (base_log_enabled(&p->engine->log, BASE_LOG_DEBUG)) {
        struct base_endpoint ep;
        char text[BASE_ENDPOINT_STRLEN] = "?";
        if (base_endpoint_from_sockaddr(&ep, src) == 0)
            base_endpoint_format(&ep, text, sizeof(text));
        wg_log(p->engine, BASE_LOG_DEBUG, p, "endpoint_changed", "endpoint=%s", text);
    }
}

/*
 * MAC1 always; under load also MAC2, answering a cookie instead when it is missing or stale,
 * and then the per-source token bucket. Returns true if the message may be processed.
 */
static bool handshake_admitted(struct wg_engine *e, uint8_t *msg, size_t len, uint32_t sender_index,
                               const struct sockaddr *src, uint64_t now)
{
    uint8_t srcbytes[WG_COOKIE_SOURCE_MAX];
    size_t srclen = cookie_source(src, srcbytes);

    if (!wg_cookie_check_mac1(&e->cookie_checker, msg, len)) {
        e->stats.rx_bad_mac++;
        return false;
    }
    if (!wg_load_note(&e->load, now))
        return true;
    if (!wg_cookie_check_mac2(&e->cookie_checker, msg, len, srcbytes, srclen, now)) {
        struct wg_msg_cookie_reply reply;
        if (wg_cookie_create_reply(&e->cookie_checker, msg, len, sender_index, srcbytes, srclen,
                                   now, &reply) == 0) {
            wg_send_to(e, src, (const uint8_t *)&reply, sizeof(reply));
            e->stats.cookie_replies_sent++;
        }
        return false;
    }
    if (!wg_ratelimit_allow(&e->ratelimit, src, now)) {
        e->stats.rx_handshake_rate_limited++;
        return false;
    }
    return true;
}

static struct wg_handshake *lookup_static(void *ctx, const uint8_t remote_static[32])
{
    struct wg_peer *p = wg_engine_find_peer(ctx, remote_static);
    return p ? &p->hs : NULL;
}

static struct wg_peer *peer_of_handshake(struct wg_handshake *hs)
{
    return container_of(hs, struct wg_peer, hs);
}

/* Derives the session keys; the keypair inherits the handshake's index (peers already use it). */
static struct wg_peer_keypair *derive(struct wg_peer *p, uint64_t now)
{
    struct wg_engine *e = p->engine;
    struct wg_peer_keypair *pk = calloc(1, sizeof(*pk));
    if (!pk)
        return NULL;
    if (wg_noise_derive_keypair(&p->hs, &pk->kp, now) != WG_NOISE_OK) {
        sodium_memzero(pk, sizeof(*pk));
        free(pk);
        return NULL;
    }
    pk->kp.rekey_after_messages = e->rekey_after_messages;
    pk->idx.kind = WG_INDEX_KEYPAIR;
    pk->idx.peer = p;
    pk->idx.keypair = pk;
    wg_index_remove(&e->index, &p->hs_idx);
    wg_index_add_with_index(&e->index, &pk->idx, pk->kp.local_index);
    return pk;
}

static void count_handshake_error(struct wg_engine *e, int err)
{
    switch (err) {
    case WG_NOISE_ERR_UNKNOWN_PEER:
        e->stats.rx_unknown_peer++;
        break;
    case WG_NOISE_ERR_REPLAY:
        e->stats.rx_replayed++;
        break;
    case WG_NOISE_ERR_FLOOD:
        e->stats.rx_handshake_rate_limited++;
        break;
    default:
        e->stats.rx_bad_mac++;
        break;
    }
}

static void receive_initiation(struct wg_engine *e, uint8_t *data, size_t len,
                               const struct sockaddr *src, uint64_t now)
{
    const struct wg_msg_initiation *msg = (const struct wg_msg_initiation *)data;
    struct wg_handshake *hs = NULL, *known = NULL;

    if (!handshake_admitted(e, data, len, wg_le32_read(msg->sender_index), src, now))
        return;
    int err = wg_noise_consume_initiation(&e->id, msg, lookup_static, e, now, &hs, &known);
    if (err != WG_NOISE_OK) {
        count_handshake_error(e, err);
        if (known)
            wg_log(e, BASE_LOG_DEBUG, peer_of_handshake(known), "handshake_initiation_invalid",
                   "err=%s", wg_noise_result_name(err));
        return;
    }
    struct wg_peer *p = peer_of_handshake(hs);
    wg_log_event(e, BASE_LOG_DEBUG, p, "handshake_initiation_received");
    set_endpoint(p, src);
    p->rx_bytes += len;
    wg_timers_any_authenticated_packet_received(&p->timers);
    wg_timers_any_authenticated_packet_traversal(&p->timers, now);

    struct wg_msg_response resp;
    wg_index_add(&e->index, &p->hs_idx);
    err = wg_noise_create_response(&p->hs, p->hs_idx.index, NULL, &resp);
    if (err != WG_NOISE_OK) {
        wg_index_remove(&e->index, &p->hs_idx);
        wg_log(e, BASE_LOG_WARN, p, "handshake_response_failed", "err=%s",
               wg_noise_result_name(err));
        return;
    }
    struct wg_peer_keypair *pk = derive(p, now);
    if (!pk)
        return;
    wg_send_handshake_message(p, (uint8_t *)&resp, sizeof(resp));
    wg_timers_any_authenticated_packet_sent(&p->timers);
    wg_timers_session_derived(&p->timers, now);
    wg_peer_add_keypair(p, pk);
    wg_engine_timers_changed(e, p);
}

static void receive_response(struct wg_engine *e, uint8_t *data, size_t len,
                             const struct sockaddr *src, uint64_t now)
{
    const struct wg_msg_response *msg = (const struct wg_msg_response *)data;

    if (!handshake_admitted(e, data, len, wg_le32_read(msg->sender_index), src, now))
        return;
    struct wg_index_entry *ie = wg_index_lookup(&e->index, wg_le32_read(msg->receiver_index));
    if (!ie || ie->kind != WG_INDEX_HANDSHAKE) {
        e->stats.rx_bad_index++;
        return;
    }
    struct wg_peer *p = ie->peer;
    int err = wg_noise_consume_response(&p->hs, &e->id, msg);
    if (err != WG_NOISE_OK) {
        count_handshake_error(e, err);
        wg_log(e, BASE_LOG_DEBUG, p, "handshake_response_invalid", "err=%s",
               wg_noise_result_name(err));
        return;
    }
    struct wg_peer_keypair *pk = derive(p, now);
    if (!pk)
        return;
    wg_log(e, BASE_LOG_INFO, p, "handshake_complete", "initiator=us");
    set_endpoint(p, src);
    p->rx_bytes += len;
    wg_peer_add_keypair(p, pk);
    p->sent_lastminute_handshake = false;
    p->last_handshake_wall_ns = e->clock.wall_ns(e->clock.arg);
    e->stats.handshakes_completed++;
    wg_timers_any_authenticated_packet_received(&p->timers);
    wg_timers_any_authenticated_packet_traversal(&p->timers, now);
    wg_timers_session_derived(&p->timers, now);
    wg_timers_handshake_complete(&p->timers);
    /* The responder may not send until it hears from us on the new keys: say something now. */
    wg_send_keepalive(p);
    wg_engine_timers_changed(e, p);
    /* Last: the callee may start another handshake (the response index is ours, so it answers
     * the latest initiation, sent at last_sent_handshake_ns). */
    if (e->on_handshake)
        e->on_handshake(e->on_handshake_arg, p->public_key, now - p->last_sent_handshake_ns);
}

static void receive_cookie_reply(struct wg_engine *e, uint8_t *data, const struct sockaddr *src,
                                 uint64_t now)
{
    const struct wg_msg_cookie_reply *msg = (const struct wg_msg_cookie_reply *)data;
    struct wg_index_entry *ie = wg_index_lookup(&e->index, wg_le32_read(msg->receiver_index));
    (void)src;
    if (!ie) {
        e->stats.rx_bad_index++;
        return;
    }
    struct wg_peer *p = ie->peer;
    if (wg_cookie_consume_reply(&p->cookie, msg, now) != 0) {
        e->stats.rx_bad_mac++;
        return;
    }
    /* The next retransmission carries MAC2; sending one now would double the peer's load. */
    wg_log_event(e, BASE_LOG_DEBUG, p, "cookie_reply_received");
}

/* Initiators renew before REJECT_AFTER_TIME stops the session, while data still flows. */
static void keep_key_fresh_received(struct wg_peer *p, uint64_t now)
{
    struct wg_keypair *kp = p->current ? &p->current->kp : NULL;
    if (!kp || !kp->is_initiator || p->sent_lastminute_handshake)
        return;
    if (now - kp->created_ns <
        WG_REJECT_AFTER_TIME_NS - WG_KEEPALIVE_TIMEOUT_NS - WG_REKEY_TIMEOUT_NS)
        return;
    p->sent_lastminute_handshake = true;
    wg_send_initiation(p, false);
}

/* Length of the IP packet inside a decrypted payload (padding removed), 0 if not IP. */
static size_t ip_length(const uint8_t *pt, size_t len, int *family, const uint8_t **src)
{
    if (len >= 20 && (pt[0] >> 4) == 4) {
        size_t total = (size_t)pt[2] << 8 | pt[3];
        if (total < 20 || total > len)
            return 0;
        *family = AF_INET;
        *src = pt + 12;
        return total;
    }
    if (len >= 40 && (pt[0] >> 4) == 6) {
        size_t total = 40 + ((size_t)pt[4] << 8 | pt[5]);
        if (total > len)
            return 0;
        *family = AF_INET6;
        *src = pt + 8;
        return total;
    }
    return 0;
}

static void receive_transport(struct wg_engine *e, uint8_t *data, size_t len,
                              const struct sockaddr *src, uint64_t now)
{
    struct wg_index_entry *ie =
        wg_index_lookup(&e->index, wg_message_receiver_index(data, WG_MSG_TRANSPORT));
    if (!ie || ie->kind != WG_INDEX_KEYPAIR) {
        e->stats.rx_bad_index++;
        return;
    }
    struct wg_peer *p = ie->peer;
    struct wg_peer_keypair *pk = ie->keypair;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    enum wg_keypair_result r = wg_keypair_open(&pk->kp, data, len, &pt, &ptlen, NULL, now);
    if (r != WG_KEYPAIR_OK) {
        if (r == WG_KEYPAIR_ERR_REPLAY)
            e->stats.rx_replayed++;
        else if (r == WG_KEYPAIR_ERR_MALFORMED)
            e->stats.rx_garbage++;
        else
            e->stats.rx_bad_packet++;
        return;
    }
    if (wg_peer_received_with_keypair(p, pk)) {
        wg_log(e, BASE_LOG_INFO, p, "handshake_complete", "initiator=peer");
        p->last_handshake_wall_ns = e->clock.wall_ns(e->clock.arg);
        e->stats.handshakes_completed++;
        wg_timers_handshake_complete(&p->timers);
        wg_send_staged(p);
    }
    set_endpoint(p, src);
    p->rx_bytes += len;
    keep_key_fresh_received(p, now);
    wg_timers_any_authenticated_packet_received(&p->timers);
    wg_timers_any_authenticated_packet_traversal(&p->timers, now);
    if (ptlen == 0) {
        wg_engine_timers_changed(e, p);
        return; /* keepalive */
    }
    wg_timers_data_received(&p->timers, now);
    wg_engine_timers_changed(e, p);

    int family = 0;
    const uint8_t *inner_src = NULL;
    size_t iplen = ip_length(pt, ptlen, &family, &inner_src);
    if (!iplen) {
        e->stats.rx_garbage++;
        return;
    }
    /* Cryptokey routing: a peer may only speak for the addresses it was given. */
    if (wg_allowedips_lookup(&e->allowedips, family, inner_src) != p) {
        e->stats.rx_bad_allowed_ip++;
        wg_log(e, BASE_LOG_DEBUG, p, "packet_dropped", "reason=source_not_allowed");
        return;
    }
    if (e->deliver)
        e->deliver(e->deliver_arg, pt, iplen);
}

void wg_engine_receive(struct wg_engine *e, uint8_t *data, size_t len, const struct sockaddr *src)
{
    if (e->state != WG_ENGINE_RUNNING || !src ||
        (src->sa_family != AF_INET && src->sa_family != AF_INET6))
        return;
    uint64_t now = wg_engine_now(e);
    switch (wg_message_type(data, len)) {
    case WG_MSG_INITIATION:
        receive_initiation(e, data, len, src, now);
        break;
    case WG_MSG_RESPONSE:
        receive_response(e, data, len, src, now);
        break;
    case WG_MSG_COOKIE_REPLY:
        receive_cookie_reply(e, data, src, now);
        break;
    case WG_MSG_TRANSPORT:
        receive_transport(e, data, len, src, now);
        break;
    default:
        e->stats.rx_garbage++;
        break;
    }
}
