/* The UDP transport: bind both families on one port, turn on the kernel's offloads where it
 * has them, receive in batches (recvmmsg on a uv_poll handle; GRO super-datagrams split by
 * their segment size); close frees the buffers with the last handle. Sending: udp_send.c. */
#include "udp.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* recvmmsg calls per readable event: other handles get their turn after this many batches. */
#define RX_ROUNDS 8

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

/* GSO where the kernel knows UDP_SEGMENT (a send may still refuse it: udp_send.c falls back),
 * GRO where it takes UDP_GRO; both off when the configuration says so. */
static void set_offloads(struct wg_udp_sock *s, bool off)
{
    int one = 1, v = 0;
    socklen_t len = sizeof(v);
    s->gso = !off && getsockopt(s->fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
    s->gro = !off && setsockopt(s->fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
}

/* Each datagram of one received message: one, or a GRO super-datagram's segments of seg bytes
 * (the last may be shorter). */
static void deliver_msg(struct wg_udp *u, unsigned i, size_t len)
{
    struct msghdr *h = &u->rx.msgs[i].msg_hdr;
    uint8_t *data = u->rx.iov[i].iov_base;
    size_t seg = len;
    if (h->msg_flags & MSG_TRUNC)
        return; /* bigger than a slot: no WireGuard message is */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        int v;
        if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO)
            continue;
        memcpy(&v, CMSG_DATA(c), sizeof(v));
        if (v > 0)
            seg = (size_t)v;
    }
    u->stats.rx_msgs++;
    const struct sockaddr *src = (const struct sockaddr *)&u->rx.addrs[i];
    do { /* an empty datagram too: it is garbage to count */
        size_t n = len < seg ? len : seg;
        u->stats.rx_datagrams++;
        u->on_datagram(u->arg, data, n, src);
        data += n;
        len -= n;
    } while (len > 0);
}

/* One recvmmsg into the slots: the count, or -1 when there is nothing (more) to read. */
static int recv_batch(struct wg_udp *u, int fd)
{
    struct wg_udp_rx *rx = &u->rx;
    for (unsigned i = 0; i < WG_UDP_RX_MSGS; i++) {
        rx->iov[i] = (struct iovec){u->rxbuf + (size_t)i * WG_UDP_RX_SLOT, WG_UDP_RX_SLOT};
        rx->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &rx->addrs[i],
            .msg_namelen = sizeof(rx->addrs[i]),
            .msg_iov = &rx->iov[i],
            .msg_iovlen = 1,
            .msg_control = rx->ctrl[i].buf,
            .msg_controllen = sizeof(rx->ctrl[i].buf),
        };
    }
    int n;
    do
        n = recvmmsg(fd, rx->msgs, WG_UDP_RX_MSGS, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Reads batches until the socket is empty (or RX_ROUNDS of them), answering each batch's
 * output in one flush. */
static void on_readable(uv_poll_t *h, int status, int events)
{
    struct wg_udp_sock *s = h->data;
    struct wg_udp *u = s->owner;
    (void)events;
    if (status < 0)
        return; /* a socket error: the next read reports nothing new, UDP just goes on */
    for (int round = 0; round < RX_ROUNDS && s->open; round++) {
        int n = recv_batch(u, s->fd);
        for (int i = 0; i < n && s->open; i++)
            deliver_msg(u, (unsigned)i, u->rx.msgs[i].msg_len);
        wg_udp_flush(u);
        if (n < WG_UDP_RX_MSGS)
            break;
    }
}

static void on_prepare(uv_prepare_t *p)
{
    wg_udp_flush(p->data);
}

/* Takes ownership of fd whatever happens. */
static int start_sock(struct wg_udp *u, uv_loop_t *loop, struct wg_udp_sock *s, int fd, bool off)
{
    int err = uv_poll_init(loop, &s->poll, fd);
    if (err) {
        close(fd);
        return err;
    }
    s->fd = fd;
    s->owner = u;
    s->open = true;
    u->open_handles++;
    s->poll.data = s;
    set_offloads(s, off);
    return uv_poll_start(&s->poll, UV_READABLE, on_readable);
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
    u->s4.fd = u->s6.fd = -1;
    u->rxbuf = malloc((size_t)WG_UDP_RX_MSGS * WG_UDP_RX_SLOT);
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
    if (fd4 >= 0 && (err = start_sock(u, loop, &u->s4, fd4, cfg->no_offload)) != 0) {
        if (fd6 >= 0)
            close(fd6);
    } else if (fd6 >= 0) {
        err = start_sock(u, loop, &u->s6, fd6, cfg->no_offload);
    }
    if (err)
        wg_udp_close(u, NULL); /* the buffers go with the last handle */
    return err;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct wg_udp *u = h->data;
    if (h->type == UV_POLL) {
        struct wg_udp_sock *s = h->data;
        u = s->owner;
        close(s->fd); /* the poll handle does not own it */
        s->fd = -1;
    }
    if (--u->open_handles > 0)
        return;
    free_buffers(u);
    u->state = WG_UDP_IDLE;
    if (u->on_closed)
        u->on_closed(u);
}

static void close_sock(struct wg_udp_sock *s)
{
    if (!s->open)
        return;
    s->open = false;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

bool wg_udp_close(struct wg_udp *u, void (*on_closed)(struct wg_udp *u))
{
    if (u->state == WG_UDP_IDLE)
        return false;
    u->on_closed = on_closed;
    if (u->state == WG_UDP_CLOSING)
        return true; /* a failed open is closing already */
    u->state = WG_UDP_CLOSING;
    close_sock(&u->s4);
    close_sock(&u->s6);
    uv_close((uv_handle_t *)&u->prepare, on_handle_closed);
    return true;
}

static uint64_t sock_drops(const struct wg_udp_sock *s)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);
    if (!s->open || getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
        len <= SK_MEMINFO_DROPS * 4)
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

uint64_t wg_udp_rx_drops(const struct wg_udp *u)
{
    return sock_drops(&u->s4) + sock_drops(&u->s6);
}
