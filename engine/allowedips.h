/*
 * Cryptokey routing: which peer owns an inner address, by longest-prefix match over the
 * allowed-IPs of all peers (one path-compressed binary trie per address family, as in the
 * Linux kernel's and wireguard-go's allowedips). Lookup costs O(address bits).
 *
 * Memory: the table is embedded in its owner's struct and owns every node it allocates.
 * Owners are opaque pointers (peers); the table never dereferences them. A per-owner list
 * of nodes makes remove_owner proportional to that owner's prefixes, not to the table.
 * Addresses are 4 (AF_INET) or 16 (AF_INET6) bytes in network order.
 */
#ifndef TUNLESS_WG_ALLOWEDIPS_H
#define TUNLESS_WG_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

struct wg_allowedips_node;
struct wg_allowedips_owner;

struct wg_allowedips {
    struct wg_allowedips_node *root4;
    struct wg_allowedips_node *root6;
    struct base_list *owners; /* hash buckets of wg_allowedips_owner: owner -> its nodes */
    size_t owner_buckets;     /* a power of two, or 0 before the first insert */
    size_t owner_count;
};

void wg_allowedips_init(struct wg_allowedips *t);
/* Frees every node; the table is empty (and reusable) afterwards. */
void wg_allowedips_free(struct wg_allowedips *t);

/* Adds p for owner (non-NULL). Host bits beyond the length are masked off. The same prefix
 * again gives it to the new owner. Returns 0, or -1 on a bad family, length, NULL owner or
 * allocation failure (the table is then unchanged). */
int wg_allowedips_insert(struct wg_allowedips *t, const struct base_prefix *p, void *owner);
/* Removes p if owner holds exactly that prefix. Returns 0 when removed, 1 when there was no
 * such prefix of that owner (nothing changed), -1 on a bad family or length. */
int wg_allowedips_remove(struct wg_allowedips *t, const struct base_prefix *p, void *owner);
void wg_allowedips_remove_owner(struct wg_allowedips *t, void *owner);

/* The owner of the longest prefix containing addr, or NULL. addr is raw bytes (4 or 16 by
 * family) because it is read straight out of a packet header. */
void *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const uint8_t *addr);

/* Calls fn for each prefix of owner in the order they were first inserted; owner NULL walks
 * every prefix of the table (IPv4 first, in trie order). p is masked and only valid during the
 * call. fn must not modify the table. */
void wg_allowedips_foreach(const struct wg_allowedips *t, void *owner,
                           void (*fn)(void *arg, const struct base_prefix *p), void *arg);

#endif
