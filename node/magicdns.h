/*
 * The node's DNS service: one dns_resolver fed from the node's configuration, answering
 *   - on --dns-listen (host programs), UDP and TCP;
 *   - at 100.100.100.100:53 inside the netstack (peers and the node's own flows), UDP and
 *     TCP (each TCP connection a dns_stream session);
 *   - name lookups for the proxies (MagicDNS first, then the configured resolvers).
 * and forwards to upstreams inside the mesh through the netstack (node_dns_mesh, a
 * struct dns_transport over struct ns_udp / struct ns_conn), others through host sockets.
 * Owned by the daemon; node_magicdns_detach must run before the netstack it serves is freed.
 */
#ifndef TUNLESS_NODE_MAGICDNS_H
#define TUNLESS_NODE_MAGICDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "dns.h"
#include "netstack.h"
#include "options.h"
#include "proxy.h"

#define NODE_MAGICDNS_ADDR "100.100.100.100"

#define NODE_MAGICDNS_MAX_TCP 64 /* TCP connections to 100.100.100.100:53; more are reset */

/* Does some peer's allowed IPs cover addr? (node_dialer's is_mesh) */
typedef bool (*node_dns_covers_fn)(void *ctx, const struct sockaddr *addr);

struct node_magicdns_query; /* a UDP query from the netstack waiting for its answer */
struct node_magicdns_tcp;   /* a TCP connection to 100.100.100.100:53 */
struct node_dns_mesh;       /* the resolver's sockets inside the mesh */

struct node_magicdns {
    uv_loop_t *loop;
    struct dns_resolver *resolver;
    struct dns_listener *listener;
    struct ns_stack *stack;              /* attached netstack, or NULL */
    struct node_magicdns_query *pending; /* canceled on detach */
    struct node_magicdns_tcp *tcp;       /* reset on detach */
    unsigned n_tcp;
    struct node_dns_mesh *mesh; /* the resolver's transport (stack NULL: refusing) */
    node_dns_covers_fn covers;
    void *covers_ctx;
};

/* Creates the resolver from cfg (NULL: no configuration yet) and starts --dns-listen. */
int node_magicdns_start(struct node_magicdns *m, uv_loop_t *loop, const struct node_options *o,
                        const struct cfg_config *cfg, char *err, size_t errlen);
int node_magicdns_apply(struct node_magicdns *m, const struct node_options *o,
                        const struct cfg_config *cfg, char *err, size_t errlen);
/* Serves 100.100.100.100:53 (UDP, TCP) on stack, and routes upstreams that covers() says are
 * inside the mesh through it. */
int node_magicdns_attach(struct node_magicdns *m, struct ns_stack *stack, node_dns_covers_fn covers,
                         void *covers_ctx);
/* Releases every flow and conn of the stack it holds (queries on them canceled, the
 * resolver's mesh sockets closed): the stack may be freed right after. */
void node_magicdns_detach(struct node_magicdns *m);
void node_magicdns_stop(struct node_magicdns *m);
/* The proxies' resolver hook. */
struct proxy_resolver node_magicdns_proxy_resolver(struct node_magicdns *m);

/* node/dns_transport.c: struct dns_transport over a netstack. The transport holds flows and
 * conns of stack until the resolver closes its sockets (dns_resolver_set_mesh_transport with
 * another transport or NULL); node_dns_mesh_free releases whatever is left. */
/* stack NULL: a transport that covers the same servers and fails every open (ENETUNREACH). */
struct node_dns_mesh *node_dns_mesh_new(struct ns_stack *stack, node_dns_covers_fn covers,
                                        void *covers_ctx);
struct dns_transport node_dns_mesh_transport(struct node_dns_mesh *t);
void node_dns_mesh_free(struct node_dns_mesh *t);

#endif
