/* Declarations of the hooks lwipopts.h names; lwIP includes this inside its own sources. */
#ifndef TUNLESS_NS_HOOKS_H
#define TUNLESS_NS_HOOKS_H

#include "lwip/arch.h"
#include "lwip/ip_addr.h"

struct pbuf;
struct netif;

/* Return 1 when the hook consumed (and freed) the packet, 0 to let lwIP go on. */
int ns_hook_ip4_input(struct pbuf *p, struct netif *inp);
int ns_hook_ip6_input(struct pbuf *p, struct netif *inp);
u32_t ns_hook_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                      const ip_addr_t *remote_ip, u16_t remote_port);

#endif
