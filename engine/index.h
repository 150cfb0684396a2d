/*
 * The local index table (whitepaper section 5.4): the 32-bit receiver indices we hand out in
 * initiations and responses, mapped back to the handshake or keypair they name. Indices are
 * random so they say nothing about how many sessions exist; entries are embedded in their
 * owners (intrusive), so the table allocates only its bucket array.
 */
#ifndef TUNLESS_WG_INDEX_H
#define TUNLESS_WG_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

enum wg_index_kind { WG_INDEX_HANDSHAKE = 1, WG_INDEX_KEYPAIR = 2 };

struct wg_index_entry {
    struct base_list link; /* in a bucket while in the table; zeroed or removed otherwise */
    uint32_t index;
    enum wg_index_kind kind;
    void *peer;    /* struct wg_peer * */
    void *keypair; /* struct wg_peer_keypair * for WG_INDEX_KEYPAIR */
};

struct wg_index_table {
    struct base_list *buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

/* Returns 0 or -ENOMEM. */
int wg_index_init(struct wg_index_table *t);
/* Entries still in the table are only unlinked; their owners free them. */
void wg_index_free(struct wg_index_table *t);
/* Gives e a fresh random index no other entry has, and inserts it (removing it first if it was
 * in already). kind, peer and keypair are the caller's to set. */
void wg_index_add(struct wg_index_table *t, struct wg_index_entry *e);
/* Inserts e under a given index that no entry holds (a keypair taking over the index its
 * handshake was known by). */
void wg_index_add_with_index(struct wg_index_table *t, struct wg_index_entry *e, uint32_t index);
void wg_index_remove(struct wg_index_table *t, struct wg_index_entry *e);
struct wg_index_entry *wg_index_lookup(const struct wg_index_table *t, uint32_t index);

#endif
