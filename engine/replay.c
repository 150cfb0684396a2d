/* The sliding replay window for transport counters (RFC 6479's bitmap). */
#include "replay.h"

#include <string.h>

void wg_replay_init(struct wg_replay *r)
{
    memset(r, 0, sizeof(*r));
}

bool wg_replay_update(struct wg_replay *r, uint64_t counter, uint64_t limit)
{
    if (counter >= limit)
        return false;
    uint64_t word = counter / WG_REPLAY_WORD_BITS;
    if (counter > r->greatest) {
        /* Slide forward: clear the words between the old head and the new one (at most the
         * whole ring) so stale bits from a previous lap do not look like replays. */
        uint64_t current = r->greatest / WG_REPLAY_WORD_BITS;
        uint64_t diff = word - current;
        if (diff > WG_REPLAY_RING_WORDS)
            diff = WG_REPLAY_RING_WORDS;
        for (uint64_t i = current + 1; i <= current + diff; i++)
            r->ring[i % WG_REPLAY_RING_WORDS] = 0;
        r->greatest = counter;
    } else if (r->greatest - counter > WG_REPLAY_WINDOW) {
        return false;
    }
    uint64_t bit = 1ULL << (counter % WG_REPLAY_WORD_BITS);
    uint64_t *w = &r->ring[word % WG_REPLAY_RING_WORDS];
    if (*w & bit)
        return false;
    *w |= bit;
    return true;
}
