/*
 * The node's DNS service: one dns_resolver fed from the node's configuration, answering
 *   - on --dns-listen (host programs), UDP and TCP;
 *   - at 100.100.100.100:53 inside the netstack (peers and the node's own flows), UDP;
 *   - name lookups for the proxies (MagicDNS first, then the configured resolvers).
 * Owned by the daemon; node_magicdns_detach must run before the netstack it serves is freed.
 */
#ifndef TUNLESS_NODE_MAGICDNS_H
#define TUNLESS_NODE_MAGICDNS_H

#include <stddef.h>

#include "config.h"
#include "dns.h"
#include "netstack.h"
#include "options.h"
#include "proxy.h"

#define NODE_MAGICDNS_ADDR "100.100.100.100"

struct node_magicdns_query; /* a query from the netstack waiting for its answer */

struct node_magicdns {
    uv_loop_t *loop;
    struct dns_resolver *resolver;
    struct dns_listener *listener;
    ns_stack *stack;                     /* attached netstack, or NULL */
    struct node_magicdns_query *pending; /* canceled on detach */
};

/* Creates the resolver from cfg (NULL: no configuration yet) and starts --dns-listen. */
int node_magicdns_start(struct node_magicdns *m, uv_loop_t *loop, const struct node_options *o,
                        const struct node_config *cfg, char *err, size_t errlen);
int node_magicdns_apply(struct node_magicdns *m, const struct node_options *o,
                        const struct node_config *cfg, char *err, size_t errlen);
/* Serves 100.100.100.100:53 on stack. */
int node_magicdns_attach(struct node_magicdns *m, ns_stack *stack);
void node_magicdns_detach(struct node_magicdns *m);
void node_magicdns_stop(struct node_magicdns *m);
/* The proxies' resolver hook. */
struct proxy_resolver node_magicdns_proxy_resolver(struct node_magicdns *m);

#endif
