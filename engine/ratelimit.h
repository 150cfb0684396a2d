/*
 * Handshake flood defences (whitepaper section 5.3): a detector that says when the engine is
 * "under load" (handshake messages per second above a threshold; then cookies and MAC2 are
 * required), and a per-source token bucket (IPv4 address, IPv6 /64) for initiations that do
 * carry a valid MAC2. Time is passed in; nothing reads a clock.
 */
#ifndef TUNLESS_WG_RATELIMIT_H
#define TUNLESS_WG_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base.h"

/* As the Linux implementation: 20 initiations per second per source, bursts of 5. */
#define WG_RATELIMIT_PER_SECOND 20
#define WG_RATELIMIT_BURST 5
/* Beyond this many tracked sources new ones are refused until old ones age out. */
#define WG_RATELIMIT_MAX_ENTRIES 8192
/* Handshake messages per second beyond which the engine counts as under load. */
#define WG_UNDER_LOAD_DEFAULT_THRESHOLD 1000

struct wg_ratelimit_entry;

struct wg_ratelimit {
    struct base_list *buckets; /* of wg_ratelimit_entry */
    size_t nbuckets;
    size_t count;
    uint8_t hash_key[16]; /* sources are attacker-chosen: keyed hash against chain flooding */
    uint64_t last_gc_ns;
};

/* Returns 0 or -ENOMEM. */
int wg_ratelimit_init(struct wg_ratelimit *rl);
void wg_ratelimit_free(struct wg_ratelimit *rl);
/* True if one more initiation from src (sockaddr_in/in6) fits its bucket at now_ns. */
bool wg_ratelimit_allow(struct wg_ratelimit *rl, const struct sockaddr *src, uint64_t now_ns);

struct wg_load {
    uint32_t threshold; /* handshake messages per second */
    uint32_t count;     /* in the current one-second window */
    uint64_t window_start_ns;
    uint64_t under_load_until_ns;
};

void wg_load_init(struct wg_load *l, uint32_t threshold);
/* Counts one handshake message at now_ns; returns whether the engine is under load. Once the
 * threshold is crossed the state lasts one second, so a flood cannot flip it every packet. */
bool wg_load_note(struct wg_load *l, uint64_t now_ns);

#endif
