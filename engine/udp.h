/*
 * The engine's UDP transport on libuv: one IPv4 and/or one IPv6 socket on the same port, each
 * watched by a uv_poll handle and read with recvmmsg; sends queue into per-socket sendmmsg
 * batches flushed when a receive batch ends, before the loop blocks, or when full.
 * Where the kernel has them (Linux >= 5.0) the sockets offload segmentation: consecutive
 * datagrams to one destination of one size (the last may be shorter) go out as one message
 * with UDP_SEGMENT (GSO), and the kernel hands a run of datagrams of one flow up as one
 * super-datagram with its segment size (UDP_GRO), which is split here. A socket whose kernel
 * refuses a GSO send (EINVAL, ENOPROTOOPT, EIO, EOPNOTSUPP) resends it plainly and sends
 * plainly from then on. Big kernel buffers (7 MiB; the FORCE variants when permitted).
 * Nonblocking throughout.
 *
 * Memory: struct wg_udp is embedded in its owner; it owns one receive buffer (shared by both
 * sockets: callbacks never overlap) and one send arena per socket, allocated at open; nothing
 * is allocated per datagram.
 */
#ifndef TUNLESS_WG_UDP_H
#define TUNLESS_WG_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base.h"

#define WG_UDP_BATCH 64     /* messages (datagrams, or GSO runs of them) per sendmmsg */
#define WG_UDP_TX_SLOTS 256 /* datagrams per flush */
#define WG_UDP_TX_ARENA (256 * 1024)
#define WG_UDP_SOCKBUF (7 * 1024 * 1024)
/* One GSO message: at most UDP_MAX_SEGMENTS of older kernels, within one IP packet. */
#define WG_UDP_GSO_SEGS 64
#define WG_UDP_GSO_BYTES 65000
/* Receive slots of 64 KiB: a datagram, or a GRO super-datagram, each. */
#define WG_UDP_RX_MSGS 8
#define WG_UDP_RX_SLOT (64 * 1024)

struct wg_udp_tx {
    unsigned count; /* messages */
    unsigned nseg;  /* datagrams (iov entries) */
    size_t used;
    uint8_t *arena;
    struct mmsghdr msgs[WG_UDP_BATCH];
    struct iovec iov[WG_UDP_TX_SLOTS];
    struct sockaddr_storage addrs[WG_UDP_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctrl[WG_UDP_BATCH];
};

struct wg_udp;
struct wg_udp_sock {
    uv_poll_t poll; /* data: this struct */
    struct wg_udp *owner;
    int fd;
    bool open; /* this family has a socket (handle initialised, not closing) */
    bool gso;  /* sends may carry UDP_SEGMENT (off after the kernel refused one) */
    bool gro;  /* the kernel may hand up super-datagrams */
    struct wg_udp_tx tx;
};

struct wg_udp_rx {
    struct mmsghdr msgs[WG_UDP_RX_MSGS];
    struct iovec iov[WG_UDP_RX_MSGS];
    struct sockaddr_storage addrs[WG_UDP_RX_MSGS];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctrl[WG_UDP_RX_MSGS];
};

/* IDLE: nothing on the loop. OPEN: receiving. CLOSING: handles are closing; on_closed (if set)
 * runs after the last one. */
enum wg_udp_state { WG_UDP_IDLE = 0, WG_UDP_OPEN, WG_UDP_CLOSING };

struct wg_udp_stats {
    uint64_t tx_errors;     /* datagrams the kernel refused (buffer full, unreachable...) */
    uint64_t tx_msgs;       /* messages the kernel took (a GSO run counts once) */
    uint64_t tx_datagrams;  /* datagrams in them */
    uint64_t gso_fallbacks; /* sockets that turned GSO off after a refusal */
    uint64_t rx_msgs;       /* messages received (a GRO super-datagram counts once) */
    uint64_t rx_datagrams;  /* datagrams in them */
};

struct wg_udp {
    enum wg_udp_state state;
    struct wg_udp_sock s4, s6;
    uv_prepare_t prepare;
    uint16_t port;
    uint8_t *rxbuf; /* WG_UDP_RX_MSGS slots of WG_UDP_RX_SLOT */
    struct wg_udp_rx rx;
    /* One datagram: data is the engine's receive buffer, writable, valid during the call. */
    void (*on_datagram)(void *arg, uint8_t *data, size_t len, const struct sockaddr *src);
    void *arg;
    struct wg_udp_stats stats;
    unsigned open_handles;
    void (*on_closed)(struct wg_udp *u);
};

struct wg_udp_config {
    uint16_t port;          /* 0 = ephemeral, the same one for both families */
    struct base_addr bind4; /* family 0 = 0.0.0.0 */
    struct base_addr bind6; /* family 0 = :: */
    bool no_ipv4, no_ipv6;
    bool no_offload; /* neither GSO nor GRO, whatever the kernel has */
};

/* Binds and starts receiving. Returns 0 or a negative errno (the one of the call that failed).
 * On failure handles already opened are closing (state CLOSING): wg_udp_close still applies. */
int wg_udp_open(struct wg_udp *u, uv_loop_t *loop, const struct wg_udp_config *cfg);
/* Closes every handle. Returns true when on_closed(u) will run after the last close callback,
 * false when nothing was on the loop (on_closed is not called). */
bool wg_udp_close(struct wg_udp *u, void (*on_closed)(struct wg_udp *u));

/* Room for one datagram of up to len bytes towards dst's family, or NULL (no socket of that
 * family, len too big). The caller writes it and calls wg_udp_commit() or nothing. */
uint8_t *wg_udp_reserve(struct wg_udp *u, const struct sockaddr *dst, size_t len);
void wg_udp_commit(struct wg_udp *u, const struct sockaddr *dst, size_t len);
/* Datagrams the kernel dropped on the sockets' receive side (full buffer); 0 when unknown. */
uint64_t wg_udp_rx_drops(const struct wg_udp *u);
/* Hands every queued datagram to the kernel. */
void wg_udp_flush(struct wg_udp *u);

socklen_t wg_sockaddr_len(const struct sockaddr *sa);

#endif
