/* The UDP transport's sending side: datagrams are written straight into a per-socket arena
 * (wg_udp_reserve/commit), queued as sendmmsg messages, and handed to the kernel at a flush.
 * With GSO a message is a run of datagrams to one destination, all of the first one's size but
 * the last (which may be shorter), one iovec each: the kernel cuts the run at that size
 * (UDP_SEGMENT), so a run costs one pass through the stack instead of one per datagram. */
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>

#include "udp.h"

static struct wg_udp_sock *sock_for(struct wg_udp *u, const struct sockaddr *dst)
{
    struct wg_udp_sock *s = dst->sa_family == AF_INET    ? &u->s4
                            : dst->sa_family == AF_INET6 ? &u->s6
                                                         : NULL;
    return s && s->open ? s : NULL;
}

/* The kernel cannot segment here (no UDP_SEGMENT, checksums off, a device or route that
 * refuses): the socket sends plainly from now on. */
static bool gso_refused(int err)
{
    return err == EINVAL || err == ENOPROTOOPT || err == EIO || err == EOPNOTSUPP;
}

/* A run's segment size rides along as a control message; a lone datagram needs none. */
static void set_segment(struct wg_udp_tx *tx, unsigned i)
{
    struct msghdr *h = &tx->msgs[i].msg_hdr;
    if (h->msg_iovlen < 2) {
        h->msg_control = NULL;
        h->msg_controllen = 0;
        return;
    }
    h->msg_control = tx->ctrl[i].buf;
    h->msg_controllen = sizeof(tx->ctrl[i].buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)h->msg_iov[0].iov_len;
    memcpy(CMSG_DATA(c), &seg, sizeof(seg));
}

/* The datagrams of one message, each on its own. */
static void send_plain(struct wg_udp *u, int fd, const struct msghdr *h)
{
    for (size_t j = 0; j < h->msg_iovlen; j++) {
        struct msghdr m = {.msg_name = h->msg_name,
                           .msg_namelen = h->msg_namelen,
                           .msg_iov = &h->msg_iov[j],
                           .msg_iovlen = 1};
        ssize_t n;
        do
            n = sendmsg(fd, &m, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            u->stats.tx_errors++;
            continue;
        }
        u->stats.tx_msgs++;
        u->stats.tx_datagrams++;
    }
}

static void flush_sock(struct wg_udp *u, struct wg_udp_sock *s)
{
    struct wg_udp_tx *tx = &s->tx;
    unsigned done = 0;

    for (unsigned i = 0; i < tx->count; i++)
        set_segment(tx, i);
    while (done < tx->count) {
        int n = sendmmsg(s->fd, tx->msgs + done, tx->count - done, MSG_DONTWAIT);
        if (n > 0) {
            for (unsigned i = done; i < done + (unsigned)n; i++)
                u->stats.tx_datagrams += tx->msgs[i].msg_hdr.msg_iovlen;
            u->stats.tx_msgs += (unsigned)n;
            done += (unsigned)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        const struct msghdr *h = &tx->msgs[done].msg_hdr;
        if (n < 0 && h->msg_iovlen > 1 && gso_refused(errno)) {
            if (s->gso)
                u->stats.gso_fallbacks++;
            s->gso = false;
            send_plain(u, s->fd, h);
        } else {
            /* The kernel buffer is full or this destination errs: UDP may drop, so do we, but
             * the rest of the batch may go elsewhere; skip the one message and go on. */
            u->stats.tx_errors += h->msg_iovlen;
        }
        done++;
    }
    tx->count = 0;
    tx->nseg = 0;
    tx->used = 0;
}

void wg_udp_flush(struct wg_udp *u)
{
    if (u->s4.open && u->s4.tx.count)
        flush_sock(u, &u->s4);
    if (u->s6.open && u->s6.tx.count)
        flush_sock(u, &u->s6);
}

uint8_t *wg_udp_reserve(struct wg_udp *u, const struct sockaddr *dst, size_t len)
{
    struct wg_udp_sock *s = sock_for(u, dst);
    struct wg_udp_tx *tx = s ? &s->tx : NULL;
    if (!s || len > WG_UDP_TX_ARENA)
        return NULL;
    if (tx->count == WG_UDP_BATCH || tx->nseg == WG_UDP_TX_SLOTS ||
        tx->used + len > WG_UDP_TX_ARENA)
        flush_sock(u, s);
    return tx->arena + tx->used;
}

/* May a datagram of len bytes to dst extend the last message's run? */
static bool joins_run(const struct wg_udp_sock *s, const struct sockaddr *dst, socklen_t alen,
                      size_t len)
{
    const struct wg_udp_tx *tx = &s->tx;
    if (!s->gso || !tx->count)
        return false;
    const struct msghdr *h = &tx->msgs[tx->count - 1].msg_hdr;
    size_t seg = h->msg_iov[0].iov_len;
    return len > 0 && len <= seg && h->msg_iov[h->msg_iovlen - 1].iov_len == seg &&
           h->msg_iovlen < WG_UDP_GSO_SEGS && (h->msg_iovlen + 1) * seg <= WG_UDP_GSO_BYTES &&
           h->msg_namelen == alen && memcmp(h->msg_name, dst, alen) == 0;
}

void wg_udp_commit(struct wg_udp *u, const struct sockaddr *dst, size_t len)
{
    struct wg_udp_sock *s = sock_for(u, dst);
    struct wg_udp_tx *tx = &s->tx;
    socklen_t alen = wg_sockaddr_len(dst);
    struct iovec *iov = &tx->iov[tx->nseg++];

    *iov = (struct iovec){tx->arena + tx->used, len};
    /* Keep the next datagram 16-byte aligned: the AEAD is faster on aligned data. The gap
     * costs nothing with GSO: each datagram is its own iovec. */
    tx->used += (len + 15) & ~(size_t)15;
    if (joins_run(s, dst, alen, len)) {
        tx->msgs[tx->count - 1].msg_hdr.msg_iovlen++;
        return;
    }
    unsigned i = tx->count++;
    memcpy(&tx->addrs[i], dst, alen);
    tx->msgs[i].msg_hdr = (struct msghdr){
        .msg_name = &tx->addrs[i], .msg_namelen = alen, .msg_iov = iov, .msg_iovlen = 1};
}
