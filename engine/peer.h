/*
 * One configured peer: its handshake, its keypairs (previous / current / next, whitepaper
 * section 5.4.7 and the Linux implementation's rotation rules), its endpoint, timers, queue of
 * packets waiting for a handshake, and counters. Peers belong to their engine, which frees
 * them; keys are wiped when a keypair or peer goes.
 */
#ifndef TUNLESS_WG_PEER_H
#define TUNLESS_WG_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base.h"
#include "cookie.h"
#include "index.h"
#include "key.h"
#include "keypair.h"
#include "noise.h"
#include "timers.h"

#define WG_PEER_QUEUE_MAX 128

struct wg_engine;

struct wg_peer_keypair {
    struct wg_keypair kp;
    struct wg_index_entry idx;
};

struct wg_queued_packet {
    size_t len;
    uint8_t data[];
};

struct wg_peer {
    struct wg_engine *engine;
    struct base_list link;        /* in the engine's list of peers */
    struct base_list bucket_link; /* in the engine's hash of public keys */
    uint8_t public_key[WG_PUBLIC_KEY_LEN];
    char key8[WG_KEY_SHORT_LEN + 1];   /* for logs (base_log_peer) */
    char name[BASE_LOG_PEER_NAME_MAX]; /* the owner's name for it, for logs; "" = none */

    struct wg_handshake hs;
    struct wg_index_entry hs_idx;
    struct wg_cookie_maker cookie;
    struct wg_peer_keypair *previous, *current, *next;

    struct sockaddr_storage endpoint; /* ss_family 0 = unknown */
    uint16_t persistent_keepalive;
    struct wg_timers timers;
    uint64_t last_sent_handshake_ns; /* 0 = never */
    bool sent_lastminute_handshake;
    uint64_t last_handshake_wall_ns;

    struct wg_queued_packet *queue[WG_PEER_QUEUE_MAX]; /* ring */
    unsigned queue_head, queue_len;

    uint64_t rx_bytes, tx_bytes, tx_queue_dropped;
};

/* Allocates a peer for engine e (not yet in any table). NULL on allocation failure. */
struct wg_peer *wg_peer_new(struct wg_engine *e, const uint8_t public_key[WG_PUBLIC_KEY_LEN],
                            const uint8_t *preshared_key);
/* Wipes keys, drops the queue, leaves the index table, frees. */
void wg_peer_free(struct wg_peer *p);

/* A new keypair from a completed handshake takes its slot (initiator: current; responder:
 * next until the initiator's first data confirms it). Takes ownership of pk. */
void wg_peer_add_keypair(struct wg_peer *p, struct wg_peer_keypair *pk);
/* Data arrived on pk: if it was "next", it becomes current. Returns true on that rotation. */
bool wg_peer_received_with_keypair(struct wg_peer *p, struct wg_peer_keypair *pk);
/* Wipes all keypairs and the handshake in progress (zero_key_material). */
void wg_peer_clear_keys(struct wg_peer *p);
/* The current keypair if it may still send at now, else NULL. */
struct wg_keypair *wg_peer_sending_keypair(struct wg_peer *p, uint64_t now);

/* Copies pkt to the queue, dropping the oldest when full. Returns false when out of memory. */
bool wg_peer_queue_push(struct wg_peer *p, const uint8_t *pkt, size_t len);
/* The oldest queued packet (caller frees), or NULL. */
struct wg_queued_packet *wg_peer_queue_pop(struct wg_peer *p);
void wg_peer_queue_purge(struct wg_peer *p);

#endif
