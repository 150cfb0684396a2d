/*
 * A hash map from 32-byte public keys to a pointer or a number: open addressing with linear
 * probing and backward-shift deletion, hashed with SipHash under a per-map random key so that
 * chosen keys cannot pile into one chain. Grows at 3/4 load; never shrinks below 16 slots.
 */
#ifndef TUNLESS_DERP_KEYMAP_H
#define TUNLESS_DERP_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

union derp_keymap_val {
    void *ptr;
    uint64_t num;
};

struct derp_keymap_slot {
    uint8_t key[DERP_KEY_LEN];
    union derp_keymap_val val;
    uint8_t used;
};

struct derp_keymap {
    struct derp_keymap_slot *slots;
    size_t cap, count; /* cap: 0 or a power of two */
    uint8_t hash_key[16];
};

void derp_keymap_init(struct derp_keymap *m);
void derp_keymap_free(struct derp_keymap *m);
/* The value's slot, or NULL. The pointer is valid until the next put or del. */
union derp_keymap_val *derp_keymap_get(const struct derp_keymap *m, const uint8_t *key);
/* Inserts or replaces. Returns 0 or -ENOMEM. */
int derp_keymap_put(struct derp_keymap *m, const uint8_t *key, union derp_keymap_val val);
/* Returns 1 if it was there, 0 if not. */
int derp_keymap_del(struct derp_keymap *m, const uint8_t *key);
/* Iteration: i from 0 while derp_keymap_next returns a slot; safe only without put/del. */
struct derp_keymap_slot *derp_keymap_next(const struct derp_keymap *m, size_t *i);

#endif
