/*
 * The stream pump: two proxy_streams (side A, usually the client or the inbound connection,
 * and side B, the upstream), each written with copies and read under one backpressure rule:
 * once what waits to be written to a side costs more than PROXY_PUMP_HIGH_WATER (its bytes plus
 * PROXY_PUMP_WRITE_OVERHEAD per queued write), the other side stops reading until the cost drops
 * to PROXY_PUMP_LOW_WATER. Outside a relay the owner hears every read and decides what to
 * write; proxy_pump_relay joins the two sides: bytes cross, a FIN crosses once the bytes before
 * it are out, and done() reports both directions finished.
 * Internal to proxy/: the sessions and the relay embed one.
 *
 * Memory: the owner embeds the pump and keeps it until closed() came for every stream it
 * attached. Streams are made by their dialer with proxy_pump_cbs and proxy_pump_ud(p, side).
 */
#ifndef TUNLESS_PROXY_PUMP_H
#define TUNLESS_PROXY_PUMP_H

#include <stdbool.h>

#include "proxy.h"

#define PROXY_PUMP_HIGH_WATER (256 * 1024)
#define PROXY_PUMP_LOW_WATER (64 * 1024)
/* Above half the memory budget the high-water mark falls towards this (the low-water mark is a
 * quarter of it), and what is queued is charged to the budget at its cost. */
#define PROXY_PUMP_HIGH_WATER_MIN (16 * 1024)

struct proxy_pump_side;
/* One queued write: the copy of its bytes, until the stream's completion. */
struct proxy_pump_queued_write {
    struct proxy_pump_side *to;
    unsigned gen;
    size_t len;
    uint8_t data[];
};
/* What a queued write holds besides its bytes: its header and the stream's request, each with
 * malloc's slack (264 bytes on x86-64). A peer's 1-byte segments towards a client that does not
 * read would hold that many times what a count of bytes sees, so the water marks and the
 * budget count it. */
#define PROXY_PUMP_WRITE_OVERHEAD \
    (sizeof(struct proxy_pump_queued_write) + BASE_MALLOC_SLACK + PROXY_STREAM_WRITE_OVERHEAD)

enum { PROXY_PUMP_A = 0, PROXY_PUMP_B = 1 };

struct proxy_pump;
/* What the owner hears; any may be NULL. */
struct proxy_pump_ops {
    void (*connected)(void *owner, int err, const struct base_endpoint *local); /* side B */
    void (*read)(void *owner, int side, const uint8_t *data, size_t len);       /* not relaying */
    void (*eof)(void *owner, int side);                                         /* not relaying */
    void (*error)(void *owner, int side, int err); /* a read or write failed; close it */
    void (*drained)(void *owner, int side);        /* every write to side is acknowledged */
    void (*done)(void *owner);                     /* relaying: both directions finished */
    void (*closed)(void *owner, int side);         /* an attached stream is gone */
};

enum proxy_pump_stream_state {
    PROXY_PUMP_NONE,      /* no stream (never attached, or closed) */
    PROXY_PUMP_DIALING,   /* on_connect still to come */
    PROXY_PUMP_FAILED,    /* the dial failed; the stream waits for proxy_pump_close */
    PROXY_PUMP_CONNECTED, /* open: reads and writes flow */
};

struct proxy_pump_side {
    struct proxy_pump *p;
    struct proxy_stream *s;
    enum proxy_pump_stream_state state;
    unsigned gen;    /* changes when the stream goes: its late write completions are ignored */
    size_t pending;  /* bytes written to this side, not yet acknowledged */
    size_t queued;   /* what those writes hold: pending + PROXY_PUMP_WRITE_OVERHEAD each */
    uint64_t rx, tx; /* bytes read from, and accepted for writing to, the current stream */
    bool want_read, paused, reading, eof, shut;
};

struct proxy_pump {
    struct proxy_pump_side side[2];
    const struct proxy_pump_ops *ops;
    void *owner;
    bool relaying;
    struct base_budget *budget; /* NULL: none */
    size_t *tally;              /* the owner's count of bytes charged (NULL: none) */
};

extern const struct proxy_stream_cbs proxy_pump_cbs;

void proxy_pump_init(struct proxy_pump *p, const struct proxy_pump_ops *ops, void *owner);
void *proxy_pump_ud(struct proxy_pump *p, int side);
/* Charges what queued writes cost to budget (and tally); either may be NULL. */
void proxy_pump_set_budget(struct proxy_pump *p, struct base_budget *budget, size_t *tally);
/* s (made with proxy_pump_cbs and proxy_pump_ud(p, side)) becomes the side's stream; connected
 * says whether it is open already or reports on_connect. Reading stays off until wanted. */
void proxy_pump_attach(struct proxy_pump *p, int side, struct proxy_stream *s, bool connected);
/* Copies len bytes towards side. 0, or an error (the side is not open, no memory). */
int proxy_pump_write(struct proxy_pump *p, int side, const void *data, size_t len);
/* Whether the owner wants side read (backpressure may still hold it). */
void proxy_pump_read(struct proxy_pump *p, int side, bool want);
/* FIN towards side once its queued bytes are out. */
void proxy_pump_shutdown(struct proxy_pump *p, int side);
/* Joins the sides (both must be open): reads cross, EOF crosses, done() at the end. */
void proxy_pump_relay(struct proxy_pump *p);
/* Closes (or resets) the side's stream; its on_close arrives as closed(). */
void proxy_pump_close(struct proxy_pump *p, int side, bool reset);
size_t proxy_pump_pending(const struct proxy_pump *p, int side);
/* What the writes waiting for side cost (bytes and overhead): the water marks' measure. */
size_t proxy_pump_queued(const struct proxy_pump *p, int side);
bool proxy_pump_eof(const struct proxy_pump *p, int side);
bool proxy_pump_open(const struct proxy_pump *p, int side);

#endif
