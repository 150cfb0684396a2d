/*
 * The WireGuard engine: IP packets in, WireGuard over UDP out, and back, with no TUN.
 *
 * One `struct wg_engine` per libuv loop, created and closed on that loop's thread; nothing here is
 * thread-safe and nothing is global. The engine owns its UDP sockets, its timer, its peers, their
 * keys and every buffer it hands out. Callers own every buffer they pass in; the engine copies
 * what it keeps (keys, allowed IPs, packets queued while a handshake is in progress).
 *
 * The layer above connects with two calls:
 *   deliver callback  (engine -> netstack): a decrypted, authenticated IP packet whose source
 *                     address is in the sending peer's allowed IPs. The buffer is the engine's,
 *                     valid only during the call, and may be modified by the callee.
 *   wg_engine_send()  (netstack -> engine): encrypt one IP packet for the peer whose allowed IPs
 *                     cover its destination. The engine does not keep the pointer.
 */
#ifndef TUNLESS_ENGINE_H
#define TUNLESS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base.h"
#include "key.h"

/* Errors are in base's one space (base/base.h): 0, a negative errno, or a BASE_E* code.
 *   -EHOSTUNREACH  no peer's allowed IPs cover the destination: answer ICMP unreachable
 *   -EDESTADDRREQ  the peer has no endpoint yet: nothing can be sent to it
 *   -EINVAL        not an IPv4/IPv6 packet, bad length, bad argument
 *   -ENOENT        no such peer
 *   -ENOMEM
 *   BASE_ECLOSING  wg_engine_close() was called
 * Binding the sockets fails with the errno of the failed call (-EADDRINUSE, -EACCES, ...). */

/* The largest IP packet wg_engine_send() accepts. */
#define WG_MAX_PACKET 65535

/* Time as the engine sees it. Tests inject a clock they can move forward; then they call
 * wg_engine_clock_changed() so the engine re-reads it and runs whatever became due. */
struct wg_clock {
    uint64_t (*mono_ns)(void *arg); /* monotonic nanoseconds, never goes back */
    uint64_t (*wall_ns)(void *arg); /* nanoseconds since the Unix epoch (handshake timestamps) */
    void *arg;
};

struct wg_engine_options {
    uint8_t private_key[WG_KEY_LEN]; /* copied; the caller should wipe its own copy */
    uint16_t listen_port;            /* 0 = ephemeral (same port for IPv4 and IPv6) */
    /* Addresses to bind (port taken from listen_port). Family 0 = the wildcard of that
     * family. no_ipv4 / no_ipv6 leave a family out (at least one must remain). */
    struct base_addr bind4, bind6;
    bool no_ipv4, no_ipv6;
    /* No UDP segmentation offloads (GSO, GRO) even where the kernel has them: for comparisons,
     * and for a path whose middle mishandles them. */
    bool no_udp_offload;
    /* Decrypted packet for the layer above; see the top of this file. */
    void (*deliver)(void *arg, uint8_t *pkt, size_t len);
    void *deliver_arg;
    const struct wg_clock *clock; /* NULL = uv_hrtime + clock_gettime(CLOCK_REALTIME); copied */
    /* `event=NAME peer=NAME peer_key=KEY8 key=value ...` lines (base_log_peer: the peer's name
     * from wg_peer_config, or KEY8 again). Lines above log.level are not formatted at all.
     * fn NULL = silent. */
    struct base_logger log;
    /* A handshake we initiated completed: the peer's response was consumed, rtt_ns after our
     * latest initiation to it went out (wg_engine_initiate_handshake's probes, and every
     * other). Called on the loop, after the session is in place; fn may start another
     * handshake but must not add or remove peers. NULL = nobody asks. */
    void (*on_handshake)(void *arg, const uint8_t public_key[WG_KEY_LEN], uint64_t rtt_ns);
    void *on_handshake_arg;
    /* Tunnel MTU: padding never grows a packet beyond it, so datagrams fit the path the MTU
     * was chosen for (as the kernel and wireguard-go pad). 0 = 1420. */
    uint16_t mtu;
};

struct wg_engine;

/* Binds the sockets and starts receiving. Returns 0 with *out the engine, or an error with *out
 * NULL (what was opened is closed on the loop, without a callback). */
int wg_engine_new(uv_loop_t *loop, const struct wg_engine_options *opt, struct wg_engine **out);
/* Stops everything, wipes every key, closes the handles; the engine is freed once the last handle
 * is closed, then on_closed(arg) runs (may be NULL). The pointer must not be used after this call. */
void wg_engine_close(struct wg_engine *e, void (*on_closed)(void *arg), void *arg);

/* The UDP port actually bound (useful with listen_port 0). */
uint16_t wg_engine_port(const struct wg_engine *e);
void wg_engine_public_key(const struct wg_engine *e, uint8_t out[WG_KEY_LEN]);

/* Encrypts and sends (or queues while a handshake is in progress: up to 128 packets per peer,
 * oldest dropped). Returns 0, -EHOSTUNREACH (counted in tx_no_route), -EDESTADDRREQ, -EINVAL,
 * -ENOMEM or BASE_ECLOSING. ip_packet is not kept. */
int wg_engine_send(struct wg_engine *e, const uint8_t *ip_packet, size_t len);
/* Would a packet to addr leave through some peer? */
bool wg_engine_route(const struct wg_engine *e, const struct base_addr *addr);

/* A handshake round trip (`tunless ping --wireguard`): sends an initiation to the peer now,
 * even with a live session or one sent less than REKEY_TIMEOUT ago; the answer completes a
 * handshake as a rekey does and reaches options.on_handshake. An initiation that goes
 * unanswered is retried as any other (every REKEY_TIMEOUT, up to the protocol's limit). The
 * peer ignores an initiation no newer than the last it took (timestamps step by 16 ms).
 * Returns 0, -ENOENT, -EDESTADDRREQ (no endpoint), BASE_ECLOSING, or -EINVAL (the handshake
 * could not be built: our key and the peer's make no shared secret). */
int wg_engine_initiate_handshake(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN]);

/* ---- peers (may change at any time; other peers' sessions are not touched) ---- */

struct wg_peer_config {
    uint8_t public_key[WG_KEY_LEN];
    const uint8_t *preshared_key; /* WG_KEY_LEN bytes, or NULL for none */
    /* NULL = keep the current one (none for a new peer). Setting one on a peer with persistent
     * keepalive and no session starts the handshake at once (as turning keepalive on does). */
    const struct base_endpoint *endpoint;
    /* Replaces the peer's list; copied. Host bits past the length are ignored. */
    const struct base_prefix *allowed_ips;
    size_t allowed_ips_len;
    uint16_t persistent_keepalive; /* seconds, 0 = off */
    /* What the owner calls the peer, only for the engine's log lines (peer=NAME); NULL or "" =
     * none (the key's start); replaced on every call, cut at BASE_LOG_PEER_NAME_MAX - 1. */
    const char *name;
};

/* Adds the peer, or updates it in place keeping its sessions (a changed preshared key applies
 * from the next handshake). An allowed IP already owned by another peer moves to this one. */
int wg_engine_set_peer(struct wg_engine *e, const struct wg_peer_config *cfg);
/* Removes the peer, wiping its keys and dropping its queue. -ENOENT if unknown. */
int wg_engine_remove_peer(struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN]);

struct wg_peer_stats {
    uint8_t public_key[WG_KEY_LEN];
    uint64_t rx_bytes, tx_bytes;     /* UDP payload bytes of authenticated/sent messages */
    uint64_t last_handshake_wall_ns; /* 0 = never */
    struct base_endpoint endpoint;   /* addr.family 0 = none */
    uint16_t persistent_keepalive;
    bool has_session;          /* a usable current keypair exists */
    uint64_t tx_queue_dropped; /* queued packets dropped (overflow, handshake gave up) */
    /* Our latest initiation has gone unanswered for REKEY_TIMEOUT (retrying, or given up):
     * the peer stopped answering, whatever its last handshake says. */
    bool handshake_unanswered;
};

int wg_engine_peer_stats(const struct wg_engine *e, const uint8_t public_key[WG_KEY_LEN],
                         struct wg_peer_stats *out);
/* Calls fn once per peer, in no particular order. fn must not add or remove peers. */
void wg_engine_foreach_peer(const struct wg_engine *e,
                            void (*fn)(void *arg, const struct wg_peer_stats *st), void *arg);

struct wg_engine_stats {
    uint64_t rx_garbage;    /* too short/long, unknown type, malformed */
    uint64_t rx_bad_mac;    /* MAC1/MAC2 wrong, or a handshake that did not decrypt */
    uint64_t rx_bad_index;  /* receiver index not ours */
    uint64_t rx_bad_packet; /* transport data that failed to authenticate, or stale key */
    uint64_t rx_replayed;
    uint64_t rx_bad_allowed_ip; /* inner source address not in the sender's allowed IPs */
    uint64_t rx_unknown_peer;   /* handshake from a key we do not have */
    uint64_t rx_handshake_rate_limited;
    uint64_t cookie_replies_sent;
    uint64_t tx_no_route;
    uint64_t tx_queue_dropped;
    uint64_t tx_udp_errors;
    uint64_t handshakes_completed;
    /* Datagrams the kernel dropped because the UDP receive buffer was full (SO_MEMINFO, both
     * sockets): the node reads faster or needs a bigger buffer. */
    uint64_t rx_socket_drops;
};

void wg_engine_stats(const struct wg_engine *e, struct wg_engine_stats *out);

/* After an injected clock jumped: re-read it, run every timer that became due, re-arm. */
void wg_engine_clock_changed(struct wg_engine *e);

#endif
