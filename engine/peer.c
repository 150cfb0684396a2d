/* A peer's lifetime (new, free), its keypair slots (add, confirm on first data, clear) and its
 * queue of packets waiting for a handshake. */
#include "peer.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "key.h"

struct wg_peer *wg_peer_new(struct wg_engine *e, const uint8_t public_key[WG_PUBLIC_KEY_LEN],
                            const uint8_t *preshared_key)
{
    struct wg_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->engine = e;
    base_list_init(&p->link);
    base_list_init(&p->bucket_link);
    memcpy(p->public_key, public_key, WG_PUBLIC_KEY_LEN);
    wg_key_short(p->key8, p->public_key);
    /* A bad static-static DH leaves a handshake that fails cleanly; the peer still exists. */
    (void)wg_noise_handshake_init(&p->hs, &e->id, public_key, preshared_key);
    wg_cookie_maker_init(&p->cookie, public_key);
    p->hs_idx.kind = WG_INDEX_HANDSHAKE;
    p->hs_idx.peer = p;
    wg_timers_init(&p->timers, 0);
    return p;
}

static void drop_keypair(struct wg_peer *p, struct wg_peer_keypair **slot)
{
    struct wg_peer_keypair *pk = *slot;
    if (!pk)
        return;
    wg_index_remove(&p->engine->index, &pk->idx);
    wg_keypair_clear(&pk->kp);
    sodium_memzero(pk, sizeof(*pk));
    free(pk);
    *slot = NULL;
}

void wg_peer_clear_keys(struct wg_peer *p)
{
    drop_keypair(p, &p->previous);
    drop_keypair(p, &p->current);
    drop_keypair(p, &p->next);
    wg_index_remove(&p->engine->index, &p->hs_idx);
    wg_noise_handshake_clear(&p->hs);
}

void wg_peer_free(struct wg_peer *p)
{
    if (!p)
        return;
    wg_peer_clear_keys(p);
    wg_peer_queue_purge(p);
    wg_noise_handshake_wipe(&p->hs);
    wg_cookie_maker_wipe(&p->cookie);
    sodium_memzero(p, sizeof(*p));
    free(p);
}

void wg_peer_add_keypair(struct wg_peer *p, struct wg_peer_keypair *pk)
{
    if (pk->kp.is_initiator) {
        /* Our initiation was answered: the new keypair is usable at once. A pending "next"
         * (we answered the peer's initiation meanwhile) becomes previous so data the peer
         * already sends on it still decrypts. */
        if (p->next) {
            drop_keypair(p, &p->previous);
            p->previous = p->next;
            p->next = NULL;
            drop_keypair(p, &p->current);
        } else {
            drop_keypair(p, &p->previous);
            p->previous = p->current;
        }
        p->current = pk;
    } else {
        /* We answered: we may not send on it until the initiator's first data confirms it. */
        drop_keypair(p, &p->next);
        p->next = pk;
        drop_keypair(p, &p->previous);
    }
}

bool wg_peer_received_with_keypair(struct wg_peer *p, struct wg_peer_keypair *pk)
{
    if (pk != p->next)
        return false;
    drop_keypair(p, &p->previous);
    p->previous = p->current;
    p->current = p->next;
    p->next = NULL;
    return true;
}

struct wg_keypair *wg_peer_sending_keypair(struct wg_peer *p, uint64_t now)
{
    if (!p->current || wg_keypair_expired(&p->current->kp, now))
        return NULL;
    return &p->current->kp;
}

bool wg_peer_queue_push(struct wg_peer *p, const uint8_t *pkt, size_t len)
{
    struct wg_queued_packet *q = malloc(sizeof(*q) + len);
    if (!q)
        return false;
    q->len = len;
    memcpy(q->data, pkt, len);
    if (p->queue_len == WG_PEER_QUEUE_MAX) {
        /* Oldest first out: newer packets are likelier to still matter (e.g. TCP retransmits). */
        free(wg_peer_queue_pop(p));
        p->tx_queue_dropped++;
        p->engine->stats.tx_queue_dropped++;
    }
    p->queue[(p->queue_head + p->queue_len) % WG_PEER_QUEUE_MAX] = q;
    p->queue_len++;
    return true;
}

struct wg_queued_packet *wg_peer_queue_pop(struct wg_peer *p)
{
    if (!p->queue_len)
        return NULL;
    struct wg_queued_packet *q = p->queue[p->queue_head];
    p->queue[p->queue_head] = NULL;
    p->queue_head = (p->queue_head + 1) % WG_PEER_QUEUE_MAX;
    p->queue_len--;
    return q;
}

void wg_peer_queue_purge(struct wg_peer *p)
{
    struct wg_queued_packet *q;
    while ((q = wg_peer_queue_pop(p)) != NULL) {
        p->tx_queue_dropped++;
        p->engine->stats.tx_queue_dropped++;
        free(q);
    }
}
