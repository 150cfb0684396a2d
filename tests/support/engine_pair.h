/*
 * Test harness for the WireGuard engine: several engines in one process on loopback UDP (real
 * sockets, one uv loop), a clock the test moves forward, and delivered packets recorded.
 */
#ifndef TUNLESS_TEST_ENGINE_PAIR_H
#define TUNLESS_TEST_ENGINE_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "engine.h"

#define TE_MAX_DELIVERED 64

struct te_clock {
    uint64_t mono_ns;
    uint64_t wall_ns;
};

struct te_node {
    struct wg_engine *engine;
    uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
    uint8_t addr[4];   /* tunnel address 100.64.0.N */
    uint8_t addr6[16]; /* and fd7a:115c:a1e0::N */
    unsigned delivered;
    unsigned handshakes;  /* on_handshake calls: handshakes this node initiated completed */
    uint64_t last_rtt_ns; /* and the latest one's round trip */
    uint8_t last_hs_peer[WG_KEY_LEN];
    size_t last_len;
    uint8_t last[2048];
    char last_log[BASE_LOG_LINE_MAX]; /* the engine's latest log line (level debug) */
};

struct te_net {
    uv_loop_t loop;
    struct te_clock clock;
    struct wg_clock wg_clock;
    struct te_node nodes[4];
    unsigned count;
    int transport_family; /* AF_INET: engines on 127.0.0.1; AF_INET6: on ::1 */
};

/* 127.0.0.1 or ::1. */
void te_loopback(struct base_addr *a, int family);
/* count engines on 127.0.0.1 ephemeral ports, tunnel addresses 100.64.0.1..count. */
void te_net_init(struct te_net *n, unsigned count);
/* The same with the engines' UDP on family (AF_INET or AF_INET6, i.e. ::1). */
void te_net_init_family(struct te_net *n, unsigned count, int family);
/* Closes every engine, runs the loop until all is freed, closes the loop. */
void te_net_free(struct te_net *n);
/* cmocka fixtures: *state a static net of two engines, each the other's peer (no keepalive);
 * te_teardown frees it. Return 0, or -1 when the peers could not be set. */
int te_setup2(void **state);
int te_teardown(void **state);
/* Node a gets node b as a peer: b's key, b's port on loopback, b's addresses /32 and /128. */
int te_peer(struct te_net *n, unsigned a, unsigned b, uint16_t persistent_keepalive);
/* Runs the loop (non-blocking rounds) until *flag reaches want or ~2 s of rounds pass. */
bool te_run_until(struct te_net *n, const unsigned *counter, unsigned want);
/* A few loop rounds so queued datagrams are sent and received. */
void te_settle(struct te_net *n);
/* Moves the clock forward a second at a time; every engine runs what became due and the
 * datagrams that causes are exchanged before the next second. */
void te_advance(struct te_net *n, uint64_t ns);
/* An IPv4 ICMP echo request from src to dst with payload_len payload bytes (seq in the id). */
size_t te_ping(uint8_t *buf, const uint8_t src[4], const uint8_t dst[4], uint16_t seq,
               size_t payload_len);
/* An IPv6 packet (next header 59, "no next header") of payload_len bytes from src to dst. */
size_t te_ipv6(uint8_t *buf, const uint8_t src[16], const uint8_t dst[16], size_t payload_len);
/* Sends a ping from node a to node b's address through a's engine. */
int te_send_ping(struct te_net *n, unsigned a, unsigned b, uint16_t seq);

#endif
