/*
 * A link is one byte stream the DERP code speaks over: a TCP socket on the loop, optionally TLS
 * (memory BIOs), with batched writes: frames are appended to a pending buffer and written as
 * one uv_write when the owner flushes (after each read, so one write per destination per read).
 * Each write owns its buffer, so several may be in flight; the link is busy while libuv holds
 * bytes the kernel has not taken (a reader that is slow, or gone): the owner then queues (and
 * drops) instead of appending, and on_drained says when the kernel took everything again.
 * derp_link_write_age says how long it has been busy (the write timeout).
 *
 * A sink link has a handle but no socket: output is discarded (fuzzing the state machine).
 * Memory: the link owns its buffers and TLS state; the owner owns the struct and may free it
 * only in on_closed.
 */
#ifndef TUNLESS_DERP_LINK_H
#define TUNLESS_DERP_LINK_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tls.h"

#define DERP_LINK_RX_SIZE (64 * 1024)

/* Scratch shared by every link of one loop (reads are processed one at a time). */
struct derp_link_shared {
    uint8_t rx[DERP_LINK_RX_SIZE];
    uint8_t plain[DERP_LINK_RX_SIZE];
};

struct derp_link;
struct derp_link_ops {
    /* Plaintext arrived. Non-zero: stop delivering this chunk (the owner is closing). */
    int (*on_data)(struct derp_link *l, const uint8_t *p, size_t n);
    /* The kernel took everything written: append more now if there is more. */
    void (*on_drained)(struct derp_link *l);
    /* The link failed (EOF, reset, TLS error, refused connect): the owner decides to close. */
    void (*on_error)(struct derp_link *l, int err);
    /* Client links: the TCP connection is up. */
    void (*on_connect)(struct derp_link *l);
    /* The handle is gone; the owner may free the struct. */
    void (*on_closed)(struct derp_link *l);
};

enum derp_link_state {
    DERP_LINK_NEW,
    DERP_LINK_CONNECTING,
    DERP_LINK_OPEN,
    DERP_LINK_DRAINING, /* closes once everything pending is written */
    DERP_LINK_CLOSING,
    DERP_LINK_CLOSED,
};

enum derp_link_kind { DERP_LINK_TCP, DERP_LINK_SINK };

struct derp_buf {
    uint8_t *p;
    size_t len, cap;
};

struct derp_link {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    enum derp_link_state state;
    enum derp_link_kind kind;
    const struct derp_link_ops *ops;
    struct derp_link_shared *shared;
    struct derp_tls tls; /* tls.ssl NULL: plain */
    struct derp_buf pend;
    unsigned writes;     /* uv_writes in flight */
    uint64_t busy_since; /* uv_now when libuv started holding unsent bytes, 0 when not */
    bool paused;         /* reads stopped by the owner (rate limit) */
};

/* Accepts from server into l (TLS server when ctx). Returns 0 or a negative error; either way
 * the link's handle exists and is closed with derp_link_close (on_closed then runs). */
int derp_link_accept(struct derp_link *l, uv_stream_t *server, SSL_CTX *ctx,
                     const struct derp_link_ops *ops, struct derp_link_shared *shared);
/* Connects to sa (TLS client when ctx, sending sni). Same error contract. */
int derp_link_connect(struct derp_link *l, uv_loop_t *loop, const struct sockaddr *sa, SSL_CTX *ctx,
                      const char *sni, const struct derp_link_ops *ops,
                      struct derp_link_shared *shared);
int derp_link_sink(struct derp_link *l, uv_loop_t *loop, const struct derp_link_ops *ops,
                   struct derp_link_shared *shared);

/* n bytes of room at the end of the pending buffer (NULL when out of memory); then commit. */
uint8_t *derp_link_reserve(struct derp_link *l, size_t n);
void derp_link_commit(struct derp_link *l, size_t n);
int derp_link_append(struct derp_link *l, const void *p, size_t n);
/* Starts a write of what is pending when none is in flight. */
void derp_link_flush(struct derp_link *l);
/* Bytes appended and not yet taken by the kernel (pending + held by libuv). */
size_t derp_link_queued(const struct derp_link *l);
/* libuv holds bytes the kernel has not taken: append no more packets. */
bool derp_link_busy(const struct derp_link *l);
/* How long the link has been busy, 0 when it is not. */
uint64_t derp_link_write_age(const struct derp_link *l, uint64_t now);
/* Gives back an empty pending buffer (kept between batches while a link is busy with traffic),
 * so that idle links cost no buffer. */
void derp_link_trim(struct derp_link *l);
void derp_link_pause(struct derp_link *l);
void derp_link_resume(struct derp_link *l);
/* The peer's address as text ("?" when unknown). */
const char *derp_link_peer(const struct derp_link *l, char *buf, size_t cap);
void derp_link_close(struct derp_link *l);
/* Writes what is pending, then closes (derp_link_close still forces it). */
void derp_link_close_after_flush(struct derp_link *l);

#endif
