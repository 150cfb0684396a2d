/*
 * lwIP options for tunless. lwIP runs NO_SYS on the libuv loop; packets arrive already
 * authenticated by WireGuard, so the stack spends no time on checksums it cannot fail,
 * and windows are large enough for one connection to fill a fast tunnel.
 */
#ifndef TUNLESS_LWIPOPTS_H
#define TUNLESS_LWIPOPTS_H

/* The tunnel MTU the stack is tuned for; the netif carries the configured one at run time. */
#define TUNLESS_TUNNEL_MTU 1420

/* ---- system: one thread, the libuv loop ---- */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_TIMERS 1
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_ALTCP 0

/* ---- memory: the C heap, bounded by the netstack's own caps ---- */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8
#define MEM_SIZE (16 * 1024 * 1024)
/* Received packets go into recycled custom pbufs (ns_rxpool.c), not a malloc each. */
#define LWIP_SUPPORT_CUSTOM_PBUF 1

/* ---- protocols ---- */
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_TCP 1
#define LWIP_UDP 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_ND6_QUEUEING 0
#define LWIP_IPV6_FRAG 0
#define LWIP_IPV6_REASS 0
#define IP_FRAG 0
#define IP_REASSEMBLY 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_IP_ACCEPT_UDP_PORT(port) 0
/* Exposes lwip_cyclic_timer (and nothing else in 2.1.3) so the netstack can stop nd6_tmr: ND
 * never reaches lwIP (ns_icmp.c drops it), and an idle node must not wake every second. */
#define LWIP_TESTMODE 1
/* Forwarding off: the node terminates every flow itself. */
#define IP_FORWARD 0
#define LWIP_IPV6_FORWARD 0

/* ---- checksums: the tunnel authenticated every byte; still generate for peers' kernels ---- */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_GEN_ICMP6 1
#define CHECKSUM_CHECK_IP 0
#define CHECKSUM_CHECK_UDP 0
#define CHECKSUM_CHECK_TCP 0
#define CHECKSUM_CHECK_ICMP 0
#define CHECKSUM_CHECK_ICMP6 0
/* lwIP's checksum adds 16 bits at a time; ns_chksum.c's 64 (the same sum). */
#define LWIP_CHKSUM ns_chksum
unsigned short ns_chksum(const void *data, int len);

/* ---- TCP: large scaled windows, SACK, MSS from the tunnel MTU ---- */
#define TCP_MSS (TUNLESS_TUNNEL_MTU - 40)
#define TCP_CALCULATE_EFF_SEND_MSS 1
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 7
#define TCP_WND (4 * 1024 * 1024)
#define TCP_SND_BUF (4 * 1024 * 1024)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
/* lwIP keeps the low-water mark in 16 bits: the largest value its sanity check allows. */
#define TCP_SNDLOWAT (0xFFFF - 4 * TCP_MSS - 1)
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 4)
#define MEMP_NUM_TCP_SEG TCP_SND_QUEUELEN
#define TCP_OOSEQ 1
/* The out-of-order queue is bounded per conn in bytes and in segments (ns_mem.c), both
 * shrinking as the memory budget fills. */
#define TCP_OOSEQ_BYTES_LIMIT(pcb) ns_hook_ooseq_bytes(pcb)
#define TCP_OOSEQ_PBUFS_LIMIT(pcb) ns_hook_ooseq_pbufs(pcb)
#define LWIP_TCP_SACK_OUT 1
/* Our patch series (netstack/lwip-patches, docs/lwip-patches.md): the sender uses the SACK
 * blocks it receives: scoreboard, RFC 6675 recovery with RACK loss detection. */
#define LWIP_TCP_SACK_IN 1
#define LWIP_TCP_MAX_SACK_NUM 4
/* Loss takes cwnd no lower than twice the measured bandwidth-delay product (patch 0003):
 * random loss on Wi-Fi and mobile paths costs retransmissions, not throughput. */
#define LWIP_TCP_RATE_FLOOR 1
/* CUBIC (RFC 9438) instead of Reno for SACK connections (patch 0004). */
#define LWIP_TCP_CUBIC 1
#define TCP_QUEUE_OOSEQ 1
/* A segment landing after the last queued out-of-order one, and the queue's limits, cost
 * O(1) instead of a walk of the queue (patch 0005): a peer's segments behind a hole. */
#define LWIP_TCP_OOSEQ_TAIL 1
/* tcp_output() finds the end of the sent-but-unacked list without walking it (patch 0006). */
#define LWIP_TCP_UNACKED_TAIL 1
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 128
#define LWIP_TCP_KEEPALIVE 1
#define TCP_WND_UPDATE_THRESHOLD (TCP_WND / 8)
#define PBUF_POOL_BUFSIZE LWIP_MEM_ALIGN_SIZE(TUNLESS_TUNNEL_MTU + 40)

/* Inbound UDP flows from different peers share a local port: one connected pcb each. */
#define SO_REUSE 1

/* ---- hooks: route by source (several nodes' netifs in one process), RFC 6528 ISNs.
 * Inbound flows to any port are set up by ns_stack_input before lwIP sees the packet. ---- */
#define LWIP_HOOK_FILENAME "ns_hooks.h"
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest) ns_hook_ip4_route_src((src), (dest))
#define LWIP_HOOK_IP6_ROUTE(src, dest) ns_hook_ip6_route((src), (dest))
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
    ns_hook_tcp_isn((local_ip), (local_port), (remote_ip), (remote_port))
/* lwIP patches 0007, 0008: the handshake's last ACK waits for the first data, and the ACK of
 * a peer's FIN for our own FIN (ns_tcp.c). */
#define LWIP_HOOK_TCP_HOLD_HANDSHAKE_ACK(pcb) ns_hook_hold_ack(pcb)
#define LWIP_HOOK_TCP_HOLD_FIN_ACK(pcb) ns_hook_hold_ack(pcb)

/* ---- statistics: counters for status and metrics ---- */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define MEM_STATS 0
#define MEMP_STATS 0
#define SYS_STATS 0

#endif
