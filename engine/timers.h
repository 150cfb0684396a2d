/*
 * WireGuard's per-peer timers (whitepaper section 6) as plain state and pure functions: events
 * arm or disarm deadlines, wg_timers_next() says when to wake up, wg_timers_expire() says what
 * fired. Nothing here reads a clock, sleeps or sends; device.c drives it from one uv_timer.
 * Times are monotonic nanoseconds; a deadline of 0 means "not armed".
 */
#ifndef TUNLESS_WG_TIMERS_H
#define TUNLESS_WG_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "messages.h"

/* Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT. */
#define WG_MAX_TIMER_HANDSHAKES (WG_REKEY_ATTEMPT_TIME_SEC / WG_REKEY_TIMEOUT_SEC)

enum wg_timer {
    WG_TIMER_RETRANSMIT_HANDSHAKE, /* no response to our initiation */
    WG_TIMER_SEND_KEEPALIVE,       /* we received data and had nothing to send back */
    WG_TIMER_NEW_HANDSHAKE,        /* we sent data and heard nothing back */
    WG_TIMER_ZERO_KEY_MATERIAL,    /* session unused for 3 * REJECT_AFTER_TIME */
    WG_TIMER_PERSISTENT_KEEPALIVE,
    WG_TIMER_COUNT
};

struct wg_timers {
    uint64_t deadline[WG_TIMER_COUNT];
    uint32_t handshake_attempts;
    bool need_another_keepalive;
    uint64_t persistent_keepalive_ns; /* 0 = off */
};

void wg_timers_init(struct wg_timers *t, uint16_t persistent_keepalive_sec);

/* Events, named as in the Linux implementation. */
void wg_timers_data_sent(struct wg_timers *t, uint64_t now);
void wg_timers_data_received(struct wg_timers *t, uint64_t now);
void wg_timers_any_authenticated_packet_sent(struct wg_timers *t);
void wg_timers_any_authenticated_packet_received(struct wg_timers *t);
void wg_timers_any_authenticated_packet_traversal(struct wg_timers *t, uint64_t now);
void wg_timers_handshake_initiated(struct wg_timers *t, uint64_t now, uint64_t jitter_ns);
void wg_timers_handshake_complete(struct wg_timers *t);
void wg_timers_session_derived(struct wg_timers *t, uint64_t now);
/* Giving up on a handshake: nothing more to retransmit; keys go after 3 * REJECT_AFTER_TIME. */
void wg_timers_handshake_gave_up(struct wg_timers *t, uint64_t now);
void wg_timers_stop(struct wg_timers *t);

/* Earliest armed deadline, 0 if none. */
uint64_t wg_timers_next(const struct wg_timers *t);
/* Bit (1 << enum wg_timer) for each timer whose deadline is <= now; those are disarmed. */
unsigned wg_timers_expire(struct wg_timers *t, uint64_t now);

#endif
