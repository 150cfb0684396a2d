/*
 * Receive buffers. A packet from the tunnel lives in the engine's datagram buffer only for the
 * call that delivers it, and lwIP may hold what it is given long after (a paused reader's
 * queue, the out-of-order queue), so ns_process copies each packet into a pbuf of its own.
 * Those pbufs are custom pbufs from a free list instead of a malloc and a free per packet:
 * lwIP's pbuf_free hands the last reference back to rx_free(), which keeps up to NS_RX_KEEP
 * buffers for the next packets and frees the rest. The steady path allocates nothing.
 *
 * Each buffer is still one malloc block that starts with its pbuf, so ns_mem_pbuf_cost()
 * charges a held packet its real size, as for lwIP's own pbufs, and the buffer is sized to
 * the tunnel MTU (plus slack) so that a full segment keeps costing about its payload. Larger
 * packets (a stack with a larger MTU) take ordinary pbufs.
 *
 * The list is global, as lwIP is: a buffer may come back after the stack that received it
 * closed. The last stack to close empties it (ns_rxpool_trim).
 *
 * Flow: taking a buffer (ns_rxpool_take), its return (rx_free), trimming, the counters.
 */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/pbuf.h"

/* Slack after the packet, zeroed: defense in depth against lwIP parsers reading too far. */
#define NS_RX_SLACK 64
#define NS_RX_DATA (TUNLESS_TUNNEL_MTU + NS_RX_SLACK)
/* Free buffers kept for reuse (about 380 KiB): a receive batch's worth and then some. */
#define NS_RX_KEEP 256

struct ns_rxbuf {
    struct pbuf_custom pc; /* first: lwIP frees through it, the budget measures the block */
    struct ns_rxbuf *next; /* on the free list */
    uint8_t data[NS_RX_DATA];
};

static struct {
    struct ns_rxbuf *free;
    size_t nfree;
    struct ns_rxpool_stats st;
} pool;

static void rx_free(struct pbuf *p)
{
    struct ns_rxbuf *b = (struct ns_rxbuf *)p;
    pool.st.outstanding--;
    if (pool.nfree >= NS_RX_KEEP) {
        free(b);
        return;
    }
    b->next = pool.free;
    pool.free = b;
    pool.nfree++;
}

static struct ns_rxbuf *rx_get(void)
{
    struct ns_rxbuf *b = pool.free;
    if (b) {
        pool.free = b->next;
        pool.nfree--;
        pool.st.reused++;
        return b;
    }
    b = malloc(sizeof(*b));
    if (b)
        pool.st.allocated++;
    return b;
}

struct pbuf *ns_rxpool_take(const uint8_t *pkt, size_t len)
{
    if (len > NS_RX_DATA - NS_RX_SLACK) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)(len + NS_RX_SLACK), PBUF_RAM);
        if (!p)
            return NULL;
        memcpy(p->payload, pkt, len);
        memset((uint8_t *)p->payload + len, 0, NS_RX_SLACK);
        p->len = p->tot_len = (u16_t)len;
        return p;
    }
    struct ns_rxbuf *b = rx_get();
    if (!b)
        return NULL;
    b->pc.custom_free_function = rx_free;
    memcpy(b->data, pkt, len);
    memset(b->data + len, 0, NS_RX_SLACK);
    pool.st.outstanding++;
    return pbuf_alloced_custom(PBUF_RAW, (u16_t)len, PBUF_REF, &b->pc, b->data, NS_RX_DATA);
}

void ns_rxpool_trim(void)
{
    while (pool.free) {
        struct ns_rxbuf *b = pool.free;
        pool.free = b->next;
        free(b);
    }
    pool.nfree = 0;
}

void ns_rxpool_stats(struct ns_rxpool_stats *out)
{
    *out = pool.st;
    out->cached = pool.nfree;
}
