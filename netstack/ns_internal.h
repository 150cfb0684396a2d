/* Internal state of the netstack, shared by its files (tests may include it). */
#ifndef TUNLESS_NS_INTERNAL_H
#define TUNLESS_NS_INTERNAL_H

#include "netstack.h"

#include "lwip/ip_addr.h"
#include "lwip/netif.h"

#define NS_MAX_EXTRA_ADDRS 4

struct ns_handler {
    struct ns_handler *next;
    int proto;     /* 6 TCP, 17 UDP */
    ns_addr local; /* family 0: any */
    uint16_t port; /* 0: any */
    void *fn;
    void *ctx;
};

struct ns_listener { /* an on-demand lwIP listen pcb for (addr, port) */
    struct ns_listener *next;
    ns_stack *ns;
    struct tcp_pcb *pcb;
    ns_endpoint local;
};

struct ns_stack {
    uv_loop_t *loop;
    uv_timer_t *timer; /* lwIP's timeouts, when this stack is the timer owner */
    struct ns_config cfg;
    ns_output_fn output;
    void *output_ctx;
    struct netif netif;
    struct netif extra[NS_MAX_EXTRA_ADDRS];
    ns_addr extra_addr[NS_MAX_EXTRA_ADDRS];
    int n_extra;
    struct ns_counters ctr;
    struct ns_handler *handlers;
    struct ns_listener *listeners;
    ns_conn *conns; /* doubly linked: every conn not yet released */
    ns_udp *udps;
    ns_ping *pings;
    uint16_t ping_id;
    ns_stack *next_stack; /* the process-wide list lwIP's hooks search */
    uint8_t *scratch;     /* one outgoing packet, flattened */
};

struct ns_conn {
    ns_conn *prev, *next;
    ns_stack *ns;
    struct tcp_pcb *pcb; /* NULL once lwIP freed it */
    struct ns_conn_cbs cbs;
    void *data;
    ns_endpoint local, remote;
    struct pbuf *held, *held_tail; /* received, not yet given to the user */
    int paused, connected, outbound, eof_seen, eof_pending;
    int want_writable;
    size_t snd_limit; /* ns_conn_set_send_limit, 0 = the stack's send buffer */
    int in_cb;        /* inside one of our lwIP callbacks: defer release */
    int released;     /* user released: free when the callback returns */
    int release_reset;
    int abort_reason; /* set before we abort: reported instead of a guess */
    int dead_err;     /* error reported; no more I/O */
};

struct ns_udp {
    ns_udp *prev, *next;
    ns_stack *ns;
    struct udp_pcb *pcb;
    struct ns_udp_cbs cbs;
    void *data;
    ns_endpoint local, remote;
    int in_cb, released;
};

struct ns_ping {
    ns_ping *prev, *next;
    ns_stack *ns;
    uv_timer_t *timer;
    ns_addr dst;
    uint16_t id, seq;
    uint64_t sent_ms;
    ns_ping_fn cb;
    void *data;
    int status; /* reported by the timer callback (timeout or deferred result) */
};

/* ns_stack.c */
void ns_enter(void);
void ns_leave(void);
void ns_leave_drain(void);
int ns_stack_owns(const ns_stack *ns, const ns_addr *a);
void ns_addr_from_lwip(ns_addr *out, const ip_addr_t *ip);
/* The netif holding a local address (an extra address has its own), NULL if none does. */
struct netif *ns_netif_of(const ns_addr *a);
/* Is idx the index of one of the stack's netifs (its own or an extra address's)? */
int ns_stack_has_netif_idx(const ns_stack *ns, u8_t idx);
void ns_addr_to_lwip(ip_addr_t *out, const ns_addr *a);
const ns_addr *ns_stack_addr_for(const ns_stack *ns, int family);
struct ns_handler *ns_handler_find(ns_stack *ns, int proto, const ns_addr *local, uint16_t port);
uint16_t ns_random_port(void);

/* ns_tcp.c */
int ns_tcp_prepare_syn(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote);
void ns_tcp_icmp_error(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote, int err);
void ns_tcp_free_all(ns_stack *ns);

/* ns_udp.c */
int ns_udp_prepare(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote);
void ns_udp_icmp_error(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote, int err);
void ns_udp_free_all(ns_stack *ns);

/* ns_icmp.c */
int ns_icmp_input(ns_stack *ns, const uint8_t *pkt, size_t len);
void ns_icmp_no_route(ns_stack *ns, const uint8_t *pkt, size_t len);
void ns_ping_free_all(ns_stack *ns);

#endif
