/* The insides of the node's DNS service, shared by magicdns.c (configuration, lifecycle),
 * magicdns_tunnel.c (100.100.100.100:53 in the netstack), magicdns_lookup.c (the proxies'
 * resolver) and dns_transport.c (the resolver's sockets inside the mesh). */
#ifndef TUNLESS_NODE_MAGICDNS_INTERNAL_H
#define TUNLESS_NODE_MAGICDNS_INTERNAL_H

#include "magicdns.h"

struct node_dns_mesh; /* the resolver's sockets inside the mesh */

/* RUNNING -> CLOSING (node_magicdns_close: resolver and listener closing) -> freed once both
 * reported closed. */
enum node_magicdns_state { NODE_MAGICDNS_RUNNING, NODE_MAGICDNS_CLOSING };
struct node_magicdns {
    uv_loop_t *loop;
    enum node_magicdns_state state;
    struct base_logger log;
    struct dns_resolver *resolver;
    struct dns_listener *listener;
    struct ns_stack *stack;   /* attached netstack, or NULL */
    struct base_list pending; /* node_magicdns_query: UDP queries, canceled on detach */
    struct base_list tcp;     /* node_magicdns_tcp: reset on detach */
    unsigned n_tcp;
    struct node_dns_mesh *mesh; /* the resolver's transport (stack NULL: refusing) */
    node_dns_covers_fn covers;
    void *covers_ctx;
    unsigned closing; /* resolver and listener not yet closed */
    void (*on_closed)(void *arg);
    void *closed_arg;
};

/* magicdns_tunnel.c */
int node_magicdns_serve(struct node_magicdns *m, struct ns_stack *stack);
/* Cancels the queries and resets the connections served on the stack. */
void node_magicdns_unserve(struct node_magicdns *m);

/* dns_transport.c: struct dns_transport over a netstack. The transport holds flows and
 * conns of stack until the resolver closes its sockets (dns_resolver_set_mesh_transport with
 * another transport or NULL); node_dns_mesh_free releases whatever is left.
 * stack NULL: a transport that covers the same servers and fails every open (-ENETUNREACH). */
struct node_dns_mesh *node_dns_mesh_new(struct ns_stack *stack, node_dns_covers_fn covers,
                                        void *covers_ctx);
struct dns_transport node_dns_mesh_transport(struct node_dns_mesh *t);
void node_dns_mesh_free(struct node_dns_mesh *t);

#endif
