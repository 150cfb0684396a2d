/* The protocol's timer events arming and disarming deadlines, then next/expire for the driver. */
#include "timers.h"

#include <string.h>

void wg_timers_init(struct wg_timers *t, uint16_t persistent_keepalive_sec)
{
    memset(t, 0, sizeof(*t));
    t->persistent_keepalive_ns = (uint64_t)persistent_keepalive_sec * WG_NSEC_PER_SEC;
}

static void arm(struct wg_timers *t, enum wg_timer which, uint64_t at)
{
    t->deadline[which] = at ? at : 1; /* 0 means disarmed; at is never 0 in practice */
}

static bool armed(const struct wg_timers *t, enum wg_timer which)
{
    return t->deadline[which] != 0;
}

void wg_timers_data_sent(struct wg_timers *t, uint64_t now)
{
    if (!armed(t, WG_TIMER_NEW_HANDSHAKE))
        arm(t, WG_TIMER_NEW_HANDSHAKE, now + WG_KEEPALIVE_TIMEOUT_NS + WG_REKEY_TIMEOUT_NS);
}

void wg_timers_data_received(struct wg_timers *t, uint64_t now)
{
    if (!armed(t, WG_TIMER_SEND_KEEPALIVE))
        arm(t, WG_TIMER_SEND_KEEPALIVE, now + WG_KEEPALIVE_TIMEOUT_NS);
    else
        t->need_another_keepalive = true;
}

/* Anything we send carries the "I'm alive" a keepalive would. */
void wg_timers_any_authenticated_packet_sent(struct wg_timers *t)
{
    t->deadline[WG_TIMER_SEND_KEEPALIVE] = 0;
}

/* The peer answered, so there is no reason to suspect the session. */
void wg_timers_any_authenticated_packet_received(struct wg_timers *t)
{
    t->deadline[WG_TIMER_NEW_HANDSHAKE] = 0;
}

void wg_timers_any_authenticated_packet_traversal(struct wg_timers *t, uint64_t now)
{
    if (t->persistent_keepalive_ns)
        arm(t, WG_TIMER_PERSISTENT_KEEPALIVE, now + t->persistent_keepalive_ns);
}

void wg_timers_handshake_initiated(struct wg_timers *t, uint64_t now, uint64_t jitter_ns)
{
    arm(t, WG_TIMER_RETRANSMIT_HANDSHAKE, now + WG_REKEY_TIMEOUT_NS + jitter_ns);
}

void wg_timers_handshake_complete(struct wg_timers *t)
{
    t->deadline[WG_TIMER_RETRANSMIT_HANDSHAKE] = 0;
    t->handshake_attempts = 0;
}

void wg_timers_session_derived(struct wg_timers *t, uint64_t now)
{
    arm(t, WG_TIMER_ZERO_KEY_MATERIAL, now + 3 * WG_REJECT_AFTER_TIME_NS);
}

void wg_timers_handshake_gave_up(struct wg_timers *t, uint64_t now)
{
    t->deadline[WG_TIMER_RETRANSMIT_HANDSHAKE] = 0;
    t->deadline[WG_TIMER_SEND_KEEPALIVE] = 0;
    t->handshake_attempts = 0;
    if (!armed(t, WG_TIMER_ZERO_KEY_MATERIAL))
        arm(t, WG_TIMER_ZERO_KEY_MATERIAL, now + 3 * WG_REJECT_AFTER_TIME_NS);
}

void wg_timers_stop(struct wg_timers *t)
{
    memset(t->deadline, 0, sizeof(t->deadline));
    t->need_another_keepalive = false;
    t->handshake_attempts = 0;
}

uint64_t wg_timers_next(const struct wg_timers *t)
{
    uint64_t next = 0;
    for (int i = 0; i < WG_TIMER_COUNT; i++)
        if (t->deadline[i] && (!next || t->deadline[i] < next))
            next = t->deadline[i];
    return next;
}

unsigned wg_timers_expire(struct wg_timers *t, uint64_t now)
{
    unsigned fired = 0;
    for (int i = 0; i < WG_TIMER_COUNT; i++) {
        if (t->deadline[i] && t->deadline[i] <= now) {
            t->deadline[i] = 0;
            fired |= 1u << i;
        }
    }
    return fired;
}
