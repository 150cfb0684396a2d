/* The UDP transport: bind both families on one port, receive in batches (libuv recvmmsg), queue
 * sends into per-socket sendmmsg batches flushed at batch ends and before the loop blocks;
 * close frees the buffers with the last handle. */
#include "udp.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libuv's recvmmsg path splits the buffer into 64 KiB chunks, one per datagram. */
#define RX_CHUNK (64 * 1024)
#define RX_CHUNKS 8

socklen_t wg_sockaddr_len(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return sizeof(struct sockaddr_in);
    if (sa->sa_family == AF_INET6)
        return sizeof(struct sockaddr_in6);
    return 0;
}

/* Try the FORCE variant first (root/CAP_NET_ADMIN ignores rmem_max), then the capped one. */
static void set_bufsize(int fd)
{
    int size = WG_UDP_SOCKBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int bind_fd(int family, const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        goto fail;
    if (bind(fd, addr, len) != 0)
        goto fail;
    set_bufsize(fd);
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

static uint16_t fd_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* The socket address for one family: the configured address (or the wildcard) and port. */
static socklen_t bind_addr(const struct base_addr *a, int family, uint16_t port,
                           struct sockaddr_storage *ss)
{
    struct base_endpoint ep = {.addr.family = family, .port = port};
    if (a->family == family)
        ep.addr = *a;
    return base_endpoint_to_sockaddr(&ep, ss);
}

static int bind_pair(const struct wg_udp_config *cfg, uint16_t port, int *fd4, int *fd6)
{
    struct sockaddr_storage ss;
    socklen_t len;

    *fd4 = *fd6 = -1;
    if (!cfg->no_ipv4) {
        len = bind_addr(&cfg->bind4, AF_INET, port, &ss);
        *fd4 = bind_fd(AF_INET, (struct sockaddr *)&ss, len);
        if (*fd4 < 0)
            return *fd4;
        port = fd_port(*fd4);
    }
    if (!cfg->no_ipv6) {
        len = bind_addr(&cfg->bind6, AF_INET6, port, &ss);
        *fd6 = bind_fd(AF_INET6, (struct sockaddr *)&ss, len);
        if (*fd6 < 0) {
            int err = *fd6;
            if (*fd4 >= 0)
                close(*fd4);
            *fd4 = *fd6 = -1;
            return err;
        }
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct wg_udp *u = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)u->rxbuf, (unsigned)u->rxbuf_len);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    struct wg_udp *u = h->data;

    if (nread >= 0 && addr) { /* an empty datagram too: it is garbage to count */
        u->on_datagram(u->arg, (uint8_t *)buf->base, (size_t)nread, addr);
        /* Without recvmmsg every datagram is its own batch. */
        if (!(flags & UV_UDP_MMSG_CHUNK))
            wg_udp_flush(u);
        return;
    }
    /* End of a batch (or nothing to read): answer everything it produced in one go. */
    wg_udp_flush(u);
}

static void on_prepare(uv_prepare_t *p)
{
    wg_udp_flush(p->data);
}

/* Takes ownership of fd whatever happens. */
static int start_sock(struct wg_udp *u, uv_loop_t *loop, struct wg_udp_sock *s, int fd)
{
    int err = uv_udp_init_ex(loop, &s->handle, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (err) {
        close(fd);
        return err;
    }
    s->open = true;
    u->open_handles++;
    s->handle.data = u;
    if ((err = uv_udp_open(&s->handle, fd)) != 0) {
        close(fd);
        return err;
    }
    return uv_udp_recv_start(&s->handle, on_alloc, on_recv);
}

static void free_buffers(struct wg_udp *u)
{
    free(u->rxbuf);
    free(u->s4.tx.arena);
    free(u->s6.tx.arena);
    u->rxbuf = u->s4.tx.arena = u->s6.tx.arena = NULL;
}

int wg_udp_open(struct wg_udp *u, uv_loop_t *loop, const struct wg_udp_config *cfg)
{
    int fd4 = -1, fd6 = -1, err = 0;

    if (cfg->no_ipv4 && cfg->no_ipv6)
        return -EINVAL;
    u->rxbuf_len = RX_CHUNK * RX_CHUNKS;
    u->rxbuf = malloc(u->rxbuf_len);
    u->s4.tx.arena = cfg->no_ipv4 ? NULL : malloc(WG_UDP_TX_ARENA);
    u->s6.tx.arena = cfg->no_ipv6 ? NULL : malloc(WG_UDP_TX_ARENA);
    if (!u->rxbuf || (!cfg->no_ipv4 && !u->s4.tx.arena) || (!cfg->no_ipv6 && !u->s6.tx.arena)) {
        free_buffers(u);
        return -ENOMEM;
    }
    /* An ephemeral IPv4 port may be taken for IPv6: try a few. */
    for (int attempt = 0; attempt < 16; attempt++) {
        err = bind_pair(cfg, cfg->port, &fd4, &fd6);
        if (err != -EADDRINUSE || cfg->port != 0)
            break;
    }
    if (err) {
        free_buffers(u);
        return err;
    }
    u->port = fd_port(fd4 >= 0 ? fd4 : fd6);
    u->state = WG_UDP_OPEN;
    uv_prepare_init(loop, &u->prepare);
    u->prepare.data = u;
    u->open_handles++;
    uv_prepare_start(&u->prepare, on_prepare);
    uv_unref((uv_handle_t *)&u->prepare);
    if (fd4 >= 0 && (err = start_sock(u, loop, &u->s4, fd4)) != 0) {
        if (fd6 >= 0)
            close(fd6);
    } else if (fd6 >= 0) {
        err = start_sock(u, loop, &u->s6, fd6);
    }
    if (err)
        wg_udp_close(u, NULL); /* the buffers go with the last handle */
    return err;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct wg_udp *u = h->data;
    if (--u->open_handles > 0)
        return;
    free_buffers(u);
    u->state = WG_UDP_IDLE;
    if (u->on_closed)
        u->on_closed(u);
}

bool wg_udp_close(struct wg_udp *u, void (*on_closed)(struct wg_udp *u))
{
    if (u->state == WG_UDP_IDLE)
        return false;
    u->on_closed = on_closed;
    if (u->state == WG_UDP_CLOSING)
        return true; /* a failed open is closing already */
    u->state = WG_UDP_CLOSING;
    if (u->s4.open) {
        u->s4.open = false;
        uv_close((uv_handle_t *)&u->s4.handle, on_handle_closed);
    }
    if (u->s6.open) {
        u->s6.open = false;
        uv_close((uv_handle_t *)&u->s6.handle, on_handle_closed);
    }
    uv_close((uv_handle_t *)&u->prepare, on_handle_closed);
    return true;
}

static struct wg_udp_sock *sock_for(struct wg_udp *u, const struct sockaddr *dst)
{
    struct wg_udp_sock *s = dst->sa_family == AF_INET    ? &u->s4
                            : dst->sa_family == AF_INET6 ? &u->s6
                                                         : NULL;
    return s && s->open ? s : NULL;
}

static void flush_sock(struct wg_udp *u, struct wg_udp_sock *s)
{
    struct wg_udp_tx *tx = &s->tx;
    unsigned done = 0;
    uv_os_fd_t fd;

    if (!tx->count)
        return;
    if (uv_fileno((uv_handle_t *)&s->handle, &fd) != 0) {
        u->tx_errors += tx->count;
        goto out;
    }
    while (done < tx->count) {
        int n = sendmmsg(fd, tx->msgs + done, tx->count - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (unsigned)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* The kernel buffer is full or this destination errs: UDP may drop, so do we, but the
         * rest of the batch may go elsewhere; skip the one datagram and go on. */
        u->tx_errors++;
        done++;
    }
out:
    tx->count = 0;
    tx->used = 0;
}

void wg_udp_flush(struct wg_udp *u)
{
    if (u->s4.open)
        flush_sock(u, &u->s4);
    if (u->s6.open)
        flush_sock(u, &u->s6);
}

uint8_t *wg_udp_reserve(struct wg_udp *u, const struct sockaddr *dst, size_t len)
{
    struct wg_udp_sock *s = sock_for(u, dst);
    if (!s || len > WG_UDP_TX_ARENA)
        return NULL;
    if (s->tx.count == WG_UDP_BATCH || s->tx.used + len > WG_UDP_TX_ARENA)
        flush_sock(u, s);
    return s->tx.arena + s->tx.used;
}

void wg_udp_commit(struct wg_udp *u, const struct sockaddr *dst, size_t len)
{
    struct wg_udp_sock *s = sock_for(u, dst);
    struct wg_udp_tx *tx = &s->tx;
    unsigned i = tx->count++;

    tx->iov[i].iov_base = tx->arena + tx->used;
    tx->iov[i].iov_len = len;
    socklen_t alen = wg_sockaddr_len(dst);
    memcpy(&tx->addrs[i], dst, alen);
    memset(&tx->msgs[i], 0, sizeof(tx->msgs[i]));
    tx->msgs[i].msg_hdr.msg_name = &tx->addrs[i];
    tx->msgs[i].msg_hdr.msg_namelen = alen;
    tx->msgs[i].msg_hdr.msg_iov = &tx->iov[i];
    tx->msgs[i].msg_hdr.msg_iovlen = 1;
    /* Keep the next datagram 16-byte aligned: the AEAD is faster on aligned data. */
    tx->used += (len + 15) & ~(size_t)15;
}

static uint64_t sock_drops(const struct wg_udp_sock *s)
{
    uv_os_fd_t fd;
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);
    if (!s->open || uv_fileno((const uv_handle_t *)&s->handle, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len <= SK_MEMINFO_DROPS * 4)
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

uint64_t wg_udp_rx_drops(const struct wg_udp *u)
{
    return sock_drops(&u->s4) + sock_drops(&u->s6);
}
