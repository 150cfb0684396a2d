/* Declarations of the hooks lwipopts.h names; lwIP includes this inside its own sources. */
#ifndef TUNLESS_NS_HOOKS_H
#define TUNLESS_NS_HOOKS_H

#include "lwip/arch.h"
#include "lwip/ip_addr.h"

struct netif;
struct tcp_pcb;

/* The netif of the stack that owns src, so each node's packets leave through its own output. */
struct netif *ns_hook_ip4_route_src(const ip4_addr_t *src, const ip4_addr_t *dest);
struct netif *ns_hook_ip6_route(const ip6_addr_t *src, const ip6_addr_t *dest);
/* RFC 6528: keyed hash of the 4-tuple plus a 4 microsecond clock. */
u32_t ns_hook_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                      u16_t remote_port);
/* The out-of-order queue's bounds per pcb (ns_mem.c): payload bytes and segments. */
u32_t ns_hook_ooseq_bytes(const struct tcp_pcb *pcb);
u16_t ns_hook_ooseq_pbufs(const struct tcp_pcb *pcb);
/* Whether an ACK lwIP would send alone waits for a segment that carries it (ns_tcp.c). */
int ns_hook_hold_ack(struct tcp_pcb *pcb);

#endif
