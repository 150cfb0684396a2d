/*
 * The key hash map: hash and probe, then get/put (growing by rehash), then delete with backward
 * shift so lookups never meet tombstones, then iteration.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "keymap.h"

void derp_keymap_init(struct derp_keymap *m)
{
    memset(m, 0, sizeof(*m));
    randombytes_buf(m->hash_key, sizeof(m->hash_key));
}

void derp_keymap_free(struct derp_keymap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static size_t home(const struct derp_keymap *m, const uint8_t *key)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, DERP_KEY_LEN, m->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return (size_t)v & (m->cap - 1);
}

/* The slot holding key, or the empty slot where it would go. */
static struct derp_keymap_slot *probe(const struct derp_keymap *m, const uint8_t *key)
{
    size_t i = home(m, key);
    while (m->slots[i].used && memcmp(m->slots[i].key, key, DERP_KEY_LEN) != 0)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

union derp_keymap_val *derp_keymap_get(const struct derp_keymap *m, const uint8_t *key)
{
    if (m->count == 0)
        return NULL;
    struct derp_keymap_slot *s = probe(m, key);
    return s->used ? &s->val : NULL;
}

static int grow(struct derp_keymap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct derp_keymap_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = calloc(ncap, sizeof(*m->slots));
    if (!m->slots) {
        m->slots = old;
        return -ENOMEM;
    }
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].used)
            *probe(m, old[i].key) = old[i];
    free(old);
    return 0;
}

int derp_keymap_put(struct derp_keymap *m, const uint8_t *key, union derp_keymap_val val)
{
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return -ENOMEM;
    struct derp_keymap_slot *s = probe(m, key);
    if (!s->used) {
        memcpy(s->key, key, DERP_KEY_LEN);
        s->used = 1;
        m->count++;
    }
    s->val = val;
    return 0;
}

int derp_keymap_del(struct derp_keymap *m, const uint8_t *key)
{
    if (m->count == 0)
        return 0;
    struct derp_keymap_slot *s = probe(m, key);
    if (!s->used)
        return 0;
    size_t mask = m->cap - 1, hole = (size_t)(s - m->slots);
    for (size_t j = (hole + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
        size_t h = home(m, m->slots[j].key);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        if (((j - h) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].used = 0;
    m->count--;
    return 1;
}

struct derp_keymap_slot *derp_keymap_next(const struct derp_keymap *m, size_t *i)
{
    for (; *i < m->cap; (*i)++)
        if (m->slots[*i].used)
            return &m->slots[(*i)++];
    return NULL;
}
