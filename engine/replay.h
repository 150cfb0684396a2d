/*
 * Sliding-window replay filter for transport counters (RFC 6479 style, as the Linux kernel and
 * wireguard-go do it): a ring of 128 u64 words = 8192 bits, of which 8128 (8192 - 64) form the
 * usable window behind the greatest counter seen. Call wg_replay_update() only AFTER the packet
 * authenticated, otherwise forged counters could advance the window.
 */
#ifndef TUNLESS_WG_REPLAY_H
#define TUNLESS_WG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define WG_REPLAY_RING_WORDS 128
#define WG_REPLAY_WORD_BITS 64
#define WG_REPLAY_WINDOW ((WG_REPLAY_RING_WORDS - 1) * WG_REPLAY_WORD_BITS) /* 8128 */

struct wg_replay {
    uint64_t greatest; /* greatest counter accepted so far (0 before any) */
    uint64_t ring[WG_REPLAY_RING_WORDS];
};

/* Empty window: every counter from 0 up is acceptable once. */
void wg_replay_init(struct wg_replay *r);

/*
 * Accepts counter (returns true, remembering it) unless it was seen already, lies more than
 * WG_REPLAY_WINDOW behind the greatest counter seen, or is >= limit (pass
 * WG_REJECT_AFTER_MESSAGES from messages.h). A jump forward clears the words it passes.
 */
bool wg_replay_update(struct wg_replay *r, uint64_t counter, uint64_t limit);

#endif
