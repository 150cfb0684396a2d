/*
 * The proxies' dialer: where a client's destination goes.
 *   - a name is resolved first (MagicDNS, then the node's DNS configuration) and every address
 *     is tried, IPv6 first, families interleaved, a new attempt every 250 ms (Happy Eyeballs,
 *     proxy_race_dial); the first to connect wins, all within the connect timeout;
 *   - the node's own addresses (its Address= prefixes and 100.100.100.100) go through the
 *     netstack too, which answers its own addresses itself (MagicDNS, what --publish opens,
 *     else a refusal): nothing addressed to them ever leaves through the host;
 *   - an address some peer's allowed IPs cover goes through the netstack;
 *   - any other address goes straight out through host sockets, or is refused
 *     (BASE_EPOLICY) with --outbound tunnel-only.
 * The node_dialer is owned by the daemon and must outlive every stream it made; its idle
 * handle is closed by node_dialer_close.
 */
#ifndef TUNLESS_NODE_DIALER_H
#define TUNLESS_NODE_DIALER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

#include "netstack.h"
#include "options.h"
#include "proxy.h"

#define NODE_DIALER_OWN_MAX 16

struct node_dialer {
    uv_loop_t *loop;
    struct ns_stack *stack; /* NULL until a configuration brings tunnel addresses */
    bool tunnel_only;
    bool stopped; /* the node is Stopped: every dial and datagram fails with BASE_ESTOPPED */
    unsigned connect_timeout_ms; /* 0 = PROXY_CONNECT_TIMEOUT_MS */
    /* The node's own prefixes (Address=), kept across netstacks so that they never go out. */
    struct base_prefix own[NODE_DIALER_OWN_MAX];
    size_t n_own;
    /* Does some peer's allowed IPs cover addr? */
    bool (*is_mesh)(void *ctx, const struct sockaddr *addr);
    void *is_mesh_ctx;
    /* Optional, same ctx: names the peer that addr goes to in out (peer, peer_key), for logs. */
    void (*peer_of)(void *ctx, const struct base_addr *addr, struct proxy_route *out);
    struct proxy_resolver resolver; /* names -> addresses */
    struct proxy_direct direct;     /* host sockets for non-mesh destinations */
    struct base_budget *budget;     /* the node's, for relays over this dialer (NULL: none) */
    /* Write completions and closes are reported from here, never from inside a call. */
    uv_idle_t idle;
    struct base_list deferred; /* mesh streams with something to report */
    /* Reads gathered this loop turn are handed on from here, before the loop waits. */
    uv_prepare_t gather_prep;
    struct base_list gathering;         /* mesh streams with gathered bytes, reading */
    uint64_t mesh_segments, mesh_reads; /* netstack reads in, reads handed to users out */
    uint8_t *gather_spare[4];           /* full-size gather buffers kept for the next turn */
    unsigned n_gather_spare;
    struct ns_stack_watch stack_watch; /* detaches when the stack closes */
    /* Everything alive that may hold netstack conns and flows (node_dialer_detach_stack). */
    struct base_list streams;
    struct base_list dgrams;
    unsigned dgram_flows; /* netstack UDP flows all associations hold (NODE_DIALER_FLOWS_MAX) */
};

void node_dialer_init(struct node_dialer *d, uv_loop_t *loop);
/* The connect timeout in ms (the default when 0 was set). */
unsigned node_dialer_timeout_ms(const struct node_dialer *d);
/* The node's own prefixes (the first NODE_DIALER_OWN_MAX are kept). */
void node_dialer_set_own(struct node_dialer *d, const struct base_prefix *own, size_t n);
/* Is addr the node's own: inside its prefixes, or MagicDNS's 100.100.100.100? */
bool node_dialer_is_own(const struct node_dialer *d, const struct base_addr *addr);
struct proxy_dialer node_dialer_proxy(struct node_dialer *d);
/* An inbound netstack connection as a proxy stream (already connected; reading is off until
 * read_start). The stream owns c from here on. NULL when out of memory (c is then reset). */
struct proxy_stream *node_dialer_adopt(struct node_dialer *d, struct ns_conn *c,
                                       const struct proxy_stream_cbs *cbs, void *ud);
void node_dialer_close(struct node_dialer *d);
/* Mesh destinations go through stack from now on; when it closes, the dialer detaches itself. */
void node_dialer_set_stack(struct node_dialer *d, struct ns_stack *stack);
/* The stack is about to be freed (new tunnel addresses, shutdown): open mesh streams are reset
 * and report -ECONNRESET (or a failed connect), datagram flows are closed (later datagrams
 * open new ones on the next stack). Call before ns_stack_close. */
void node_dialer_detach_stack(struct node_dialer *d);
/* Resets every open netstack stream whose far end matches (a removed peer's addresses): the
 * peer gets a RST, the stream's user an error (a relay then resets its other side). Returns
 * how many. */
size_t node_dialer_reset_where(struct node_dialer *d,
                               bool (*match)(void *arg, const struct base_addr *far), void *arg);

/* dialer_dgram.c: the proxy_dialer's dgram_open. Datagrams to mesh addresses travel in netstack
 * UDP flows, one per destination; others through the direct dialer's sockets, or are refused
 * (BASE_EPOLICY) with tunnel_only. */
struct proxy_dgram *node_dialer_dgram_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud);
void node_dialer_dgrams_detach(struct node_dialer *d);
/* Is ep a mesh destination (some peer's allowed IPs cover it)? */
bool node_dialer_is_mesh(const struct node_dialer *d, const struct base_endpoint *ep);

/* A socket address as an endpoint with port (host order); -1 for another family. */
int node_sockaddr_to_endpoint(const struct sockaddr *sa, uint16_t port, struct base_endpoint *ep);
uint16_t node_sockaddr_port(const struct sockaddr *sa);
/* A TCP target from a --forward/--publish host:port: an address if the host is an IP literal,
 * else a name for the dialer to resolve. */
void node_target_from_hostport(const struct cfg_hostport *hp, struct proxy_target *t);

#endif
