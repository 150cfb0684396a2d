/*
 * Inside the engine: struct wg_engine and what its files (device.c, config.c, peer.c,
 * receive.c, send.c) share. Tests and the fuzz target may include this header for the knobs at
 * the bottom.
 */
#ifndef TUNLESS_WG_DEVICE_H
#define TUNLESS_WG_DEVICE_H

#include <stdarg.h>

#include "allowedips.h"
#include "cookie.h"
#include "engine.h"
#include "index.h"
#include "noise.h"
#include "peer.h"
#include "ratelimit.h"
#include "udp.h"

#define WG_PEER_BUCKETS 256

/* RUNNING until wg_engine_close() (or a failed wg_engine_new); then CLOSING until freed. */
enum wg_engine_state { WG_ENGINE_RUNNING = 0, WG_ENGINE_CLOSING };

struct wg_engine {
    enum wg_engine_state state;
    uv_loop_t *loop;
    struct wg_static_identity id;
    struct wg_cookie_checker cookie_checker;
    struct wg_index_table index;
    struct wg_ratelimit ratelimit;
    struct wg_load load;
    struct wg_allowedips allowedips;
    struct base_list peers;                         /* wg_peer.link */
    struct base_list peer_buckets[WG_PEER_BUCKETS]; /* wg_peer.bucket_link, by public key */
    size_t peer_count;
    struct wg_udp udp;

    uv_timer_t timer;        /* initialised by wg_engine_new, closed by close_handles */
    uint64_t timer_deadline; /* mono ns the uv timer is armed for, 0 = idle */

    struct wg_clock clock;
    void (*deliver)(void *arg, uint8_t *pkt, size_t len);
    void *deliver_arg;
    void (*on_handshake)(void *arg, const uint8_t public_key[WG_KEY_LEN], uint64_t rtt_ns);
    void *on_handshake_arg;
    struct base_logger log;
    uint16_t mtu;

    struct wg_engine_stats stats;
    uint64_t rekey_after_messages; /* test knob, default WG_REKEY_AFTER_MESSAGES */
    unsigned open_handles;         /* while CLOSING: handles whose close callback is due */
    void (*on_closed)(void *arg);
    void *on_closed_arg;
};

uint64_t wg_engine_now(const struct wg_engine *e);
/* One `event=EVENT [peer=NAME peer_key=KEY8] fields` line; fields_fmt may be NULL for none. */
void wg_engine_logf(const struct wg_engine *e, enum base_log_level level, const struct wg_peer *p,
                    const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* wg_log(e, level, peer or NULL, "event_name", "key=%s ...", ...): nothing is formatted unless
 * the logger takes the level. wg_log_event: the same without fields. */
#define wg_log(e, level, p, event, ...)                              \
    do {                                                             \
        if (base_log_enabled(&(e)->log, (level)))                    \
            wg_engine_logf((e), (level), (p), (event), __VA_ARGS__); \
    } while (0)
#define wg_log_event(e, level, p, event)                      \
    do {                                                      \
        if (base_log_enabled(&(e)->log, (level)))             \
            wg_engine_logf((e), (level), (p), (event), NULL); \
    } while (0)

/* A peer's timers changed: make sure the engine's uv timer fires no later than they need. */
void wg_engine_timers_changed(struct wg_engine *e, struct wg_peer *p);
struct wg_peer *wg_engine_find_peer(const struct wg_engine *e, const uint8_t key[WG_KEY_LEN]);
/* Enters p into (or takes it out of) the peer list and the key hash. */
void wg_engine_link_peer(struct wg_engine *e, struct wg_peer *p);
void wg_engine_unlink_peer(struct wg_engine *e, struct wg_peer *p);

/* send.c */
/* Sends a handshake initiation unless one went out less than REKEY_TIMEOUT ago. */
void wg_send_initiation(struct wg_peer *p, bool is_retry);
/* Sends whatever is queued, or starts a handshake if there is no usable keypair. */
void wg_send_staged(struct wg_peer *p);
/* A keepalive (empty transport message), or a handshake if there is no session. */
void wg_send_keepalive(struct wg_peer *p);
/* Sends a handshake message (MACs added here) to the peer's endpoint. */
void wg_send_handshake_message(struct wg_peer *p, uint8_t *msg, size_t len);
/* A datagram to an arbitrary address (cookie replies go to the sender, not a peer). */
void wg_send_to(struct wg_engine *e, const struct sockaddr *dst, const uint8_t *msg, size_t len);

/* ---- entry points for tests and the fuzz target ---- */

/* The receive path without a socket: one datagram from src (sockaddr_in/in6). data is modified
 * (decrypted in place). */
void wg_engine_receive(struct wg_engine *e, uint8_t *data, size_t len, const struct sockaddr *src);
/* New keypairs rekey after this many sent messages (default WG_REKEY_AFTER_MESSAGES). */
void wg_engine_set_rekey_after_messages(struct wg_engine *e, uint64_t n);
/* Handshake messages per second beyond which the engine is under load (cookies, MAC2). */
void wg_engine_set_under_load_threshold(struct wg_engine *e, uint32_t per_second);
/* The peer's timers, keypair slots etc. for assertions. NULL if unknown. */
struct wg_peer *wg_engine_peer(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN]);

#endif
