/*
 * The node's DNS service: one dns_resolver fed from the node's configuration, answering
 *   - on --dns-listen (host programs), UDP and TCP;
 *   - at 100.100.100.100:53 inside the netstack (peers and the node's own flows), UDP and
 *     TCP (each TCP connection a dns_stream session);
 *   - name lookups for the proxies (MagicDNS first, then the configured resolvers).
 * and forwards to upstreams inside the mesh through the netstack (node_dns_mesh, a
 * struct dns_transport over ns_udp / ns_conn), others through host sockets.
 * Owned by the daemon; node_magicdns_detach must run before the netstack it serves is freed.
 */
#ifndef TUNLESS_NODE_MAGICDNS_H
#define TUNLESS_NODE_MAGICDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "base.h"
#include "config.h"
#include "dns.h"
#include "netstack.h"
#include "options.h"
#include "proxy.h"

#define NODE_MAGICDNS_ADDR "100.100.100.100"

#define NODE_MAGICDNS_MAX_TCP 64 /* TCP connections to 100.100.100.100:53; more are reset */

/* Does some peer's allowed IPs cover addr? (node_dialer's is_mesh) */
typedef bool (*node_dns_covers_fn)(void *ctx, const struct sockaddr *addr);

struct node_magicdns;

struct node_magicdns_config {
    const struct node_options *opts; /* --dns-suffix; --dns-listen (read by new only) */
    const struct cfg_config *cfg;    /* NULL: no configuration yet */
    struct base_logger log;          /* event=dns_config_invalid, event=dns_listen_failed */
};

/* Creates the resolver from the configuration and starts --dns-listen. Returns 0, -ENOMEM,
 * BASE_ECONFIG, or the listener's bind error (-EADDRINUSE, ...), the reason logged; on error
 * what it made is closing (run the loop). */
int node_magicdns_new(uv_loop_t *loop, const struct node_magicdns_config *c,
                      struct node_magicdns **out);
/* Reload: the resolver takes c->cfg (errors as new; the old configuration then stays). */
int node_magicdns_apply(struct node_magicdns *m, const struct node_magicdns_config *c);
/* Serves 100.100.100.100:53 (UDP, TCP) on stack, and routes upstreams that covers() says are
 * inside the mesh through it. Returns 0 or a negative error. */
int node_magicdns_attach(struct node_magicdns *m, struct ns_stack *stack, node_dns_covers_fn covers,
                         void *covers_ctx);
/* Releases every flow and conn of the stack it holds (queries on them canceled, the
 * resolver's mesh sockets closed): the stack may be freed right after. */
void node_magicdns_detach(struct node_magicdns *m);
/* Detaches, closes the listener and the resolver; on_closed (may be NULL) once all is freed. */
void node_magicdns_close(struct node_magicdns *m, void (*on_closed)(void *arg), void *arg);
/* The port --dns-listen is bound to (the one taken for port 0); 0 without a listener. */
uint16_t node_magicdns_listen_port(const struct node_magicdns *m);
/* The resolver's counters (zeros without one), for status. */
void node_magicdns_stats(const struct node_magicdns *m, struct dns_stats *out);
/* The proxies' resolver hook. */
struct proxy_resolver node_magicdns_proxy_resolver(struct node_magicdns *m);

#endif
