/* Internal state of the netstack, shared by its files (tests may include it). */
#ifndef TUNLESS_NS_INTERNAL_H
#define TUNLESS_NS_INTERNAL_H

#include <stdbool.h>

#include "netstack.h"

#include "lwip/ip_addr.h"
#include "lwip/netif.h"

#define NS_MAX_EXTRA_ADDRS 4
#define NS_SCRATCH 65536 /* one outgoing packet, flattened */
/* Out-of-order segments a conn may queue: lwIP walks the queue for every segment it inserts,
 * so the bound keeps that walk bounded; it falls to the minimum as the budget fills. 3072 full
 * segments hold the default 4 MiB window: with fewer, a loss on a fast long path (1.9 MB in
 * flight in unit.tcp_sack's rate-floor case) drops the segments behind the hole and costs
 * hundreds of second retransmissions. */
#define NS_OOSEQ_PBUFS_MAX 3072
#define NS_OOSEQ_PBUFS_MIN 32
/* Window autotuning (ns_tune.c): the receive window a conn starts with, the shortest interval
 * it measures consumption over (sys_now counts ms; a loaded loop stretches short round trips),
 * and the least a conn's user may queue for sending. */
#define NS_RCV_WND_INIT (128u * 1024)
#define NS_RTT_FLOOR_MS 4u
#define NS_SND_CAP_MIN (64u * 1024)
/* How long an ACK waits for a segment to carry it (ns_tcp.c, lwIP patches 0007 and 0008), at
 * most: the handshake's last ACK for the first data (a server that speaks first waits this
 * long), the ACK of a peer's FIN for our own FIN. */
#define NS_ACK_HOLD_MS 1

struct ns_handler {
    struct base_list link;  /* in ns->handlers */
    int proto;              /* 6 TCP, 17 UDP */
    struct base_addr local; /* family 0: any */
    uint16_t port;          /* 0: any */
    void *fn;
    void *ctx;
};

struct ns_listener {       /* an on-demand lwIP listen pcb for (addr, port) */
    struct base_list link; /* in ns->listeners */
    struct ns_stack *ns;
    struct tcp_pcb *pcb;
    struct base_endpoint local;
};

enum ns_stack_state {
    NS_STACK_OPEN,
    NS_STACK_CLOSING,  /* inside ns_stack_close: telling holders, tearing down */
    NS_STACK_DRAINING, /* torn down; waiting for holders to release what they hold */
    NS_STACK_CLOSED,   /* the timer is closing; its close callback frees the stack */
};

struct ns_stack {
    uv_loop_t *loop;
    enum ns_stack_state state;
    uv_timer_t timer; /* lwIP's timeouts, when this stack is the timer owner */
    struct ns_config cfg;
    struct netif netif;
    struct netif extra[NS_MAX_EXTRA_ADDRS];
    struct base_addr extra_addr[NS_MAX_EXTRA_ADDRS];
    int n_extra;
    struct ns_counters ctr;
    struct base_list handlers;  /* struct ns_handler */
    struct base_list listeners; /* struct ns_listener */
    struct base_list conns;     /* every conn not yet released */
    struct base_list udps;      /* every flow not yet released */
    struct base_list pings;     /* pings waiting for an answer */
    struct base_list watches;   /* struct ns_stack_watch */
    unsigned ping_timers;       /* ping timers not yet closed (pending or done) */
    uint16_t ping_id;
    bool repay_armed;            /* ns_mem.c's repay timeout is pending */
    struct base_list acks_held;  /* conns whose ACK waits for a segment to carry it */
    bool acks_armed;             /* the timeout that sends them alone is pending */
    struct base_list stack_link; /* in the process-wide list lwIP's hooks search */
    uint8_t *scratch;            /* one outgoing packet, flattened */
    void (*on_closed)(void *arg);
    void *on_closed_arg;
};

enum ns_conn_state {
    NS_CONN_CONNECTING, /* outbound, handshake under way */
    NS_CONN_OPEN,       /* connected (inbound conns start here) */
    NS_CONN_DEAD,       /* its error was reported, its pcb is gone; waits for the release */
    NS_CONN_RELEASED,   /* the user released it inside a callback: freed when that returns */
};

enum ns_conn_release { NS_RELEASE_CLOSE, NS_RELEASE_RESET };

/* A conn's receive autotuning (ns_tune.c); times are sys_now() ms. */
struct ns_tune {
    uint32_t wnd;             /* the window now: free + received, not consumed + debt */
    uint32_t rtt_ms;          /* the smallest round-trip sample, 0: none yet */
    uint32_t rtt_seq, rtt_t0; /* the sample under way: the announced edge, when noted */
    bool rtt_on;              /* a sample is under way */
    uint32_t space_t0;        /* when the current interval began */
    uint32_t copied;          /* bytes consumed in it so far */
    uint32_t space;           /* the most bytes consumed in one interval */
    uint32_t grow;            /* the part of c->debt that is growth, not consumed bytes */
};

struct ns_conn {
    struct base_list link;     /* in ns->conns */
    struct base_list ack_link; /* in ns->acks_held while an ACK of its waits */
    struct ns_stack *ns;
    enum ns_conn_state state;
    enum ns_conn_release release; /* how to let go of the pcb, once RELEASED */
    struct tcp_pcb *pcb;          /* NULL once lwIP freed it */
    struct ns_conn_cbs cbs;
    void *data;
    struct base_endpoint local, remote;
    struct pbuf *held, *held_tail; /* received, not yet given to the user */
    size_t chunk_room;             /* free bytes in held_tail when it is a chunk of ours */
    size_t held_cost;              /* the real size of what held holds */
    size_t charged;                /* charged to the budget now (ns_mem.c) */
    size_t debt;                   /* consumed bytes not yet given back to the window */
    struct ns_tune tune;           /* the receive window's growth (ns_tune.c) */
    bool outbound, paused, eof_pending, want_writable;
    size_t snd_limit; /* ns_conn_set_send_limit, 0 = the stack's send buffer */
    int in_cb;        /* depth inside our callbacks to the user: defer release */
    int abort_reason; /* set before we abort: reported instead of a guess */
    int dead_err;     /* the error reported (state DEAD) */
};

enum ns_udp_state {
    NS_UDP_OPEN,
    NS_UDP_DEAD,     /* the stack is closing: pcb gone, waits for the release */
    NS_UDP_RELEASED, /* released inside a callback: freed when that returns */
};

struct ns_udp {
    struct base_list link; /* in ns->udps */
    struct ns_stack *ns;
    enum ns_udp_state state;
    struct udp_pcb *pcb;
    struct ns_udp_cbs cbs;
    void *data;
    struct base_endpoint local, remote;
    int in_cb;
};

struct ns_ping {
    struct base_list link; /* in ns->pings until its answer, timeout or cancel */
    struct ns_stack *ns;
    uv_timer_t timer; /* the timeout; its close callback frees the ping */
    struct base_addr dst;
    uint16_t id, seq;
    uint64_t sent_ms;
    ns_ping_fn cb;
    void *data;
};

/* Moves every element of from into the empty list to (to need not be initialised): a walk
 * that calls the user, who may release any element, takes them from there one at a time. */
static inline void ns_list_take_all(struct base_list *to, struct base_list *from)
{
    base_list_init(to);
    if (base_list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    base_list_init(from);
}

/* ns_lwip.c: the one lwIP instance, its clock and hooks, serialized entry, output */
void ns_lwip_init(void);
void ns_enter(void);
void ns_leave(void);
void ns_leave_drain(void);
bool ns_lwip_busy(void);
void ns_stacks_add(struct ns_stack *ns);
void ns_stacks_remove(struct ns_stack *ns);
struct ns_stack *ns_stack_current(void);
void ns_stack_set_current(struct ns_stack *ns);
void ns_queue_packet(struct ns_stack *ns, const uint8_t *pkt, size_t len);
void ns_queue_purge(struct ns_stack *ns);

/* ns_rxpool.c: recycled receive buffers (no malloc per packet on the steady path) */
struct ns_rxpool_stats {
    uint64_t allocated;   /* buffers malloc'd: the first ones, and when the free list ran dry */
    uint64_t reused;      /* packets that took a buffer from the free list */
    uint64_t outstanding; /* buffers lwIP holds now */
    uint64_t cached;      /* buffers on the free list */
};
/* A pbuf holding a copy of pkt (len bytes, followed by zeroed slack), NULL when out of memory;
 * lwIP's pbuf_free gives it back. */
struct pbuf *ns_rxpool_take(const uint8_t *pkt, size_t len);
/* Frees the free list (the last stack closed). */
void ns_rxpool_trim(void);
void ns_rxpool_stats(struct ns_rxpool_stats *out);

/* Hands a whole packet to the stack's output, counting it; a no-route answer comes back as ICMP
 * unreachable on the next loop turn. */
void ns_emit(struct ns_stack *ns, const uint8_t *pkt, size_t len);
int ns_netif_add(struct ns_stack *ns, struct netif *n, const struct base_addr *a);
void ns_addr_from_lwip(struct base_addr *out, const ip_addr_t *ip);
void ns_addr_to_lwip(ip_addr_t *out, const struct base_addr *a);
/* The netif holding a local address (an extra address has its own), NULL if none does. */
struct netif *ns_netif_of(const struct base_addr *a);
uint16_t ns_random_port(void);

/* ns_stack.c */
bool ns_stack_owns(const struct ns_stack *ns, const struct base_addr *a);
/* Is idx the index of one of the stack's netifs (its own or an extra address's)? */
bool ns_stack_has_netif_idx(const struct ns_stack *ns, u8_t idx);
const struct base_addr *ns_stack_addr_for(const struct ns_stack *ns, int family);
struct ns_handler *ns_handler_find(struct ns_stack *ns, int proto, const struct base_addr *local,
                                   uint16_t port);
/* A conn, flow or ping was freed: a draining stack may be done. */
void ns_stack_maybe_done(struct ns_stack *ns);

/* ns_input.c */
void ns_process(struct ns_stack *ns, const uint8_t *pkt, size_t len);

/* ns_tcp.c */
int ns_tcp_prepare_syn(struct ns_stack *ns, const struct base_endpoint *local,
                       const struct base_endpoint *remote);
void ns_tcp_icmp_error(struct ns_stack *ns, const struct base_endpoint *local,
                       const struct base_endpoint *remote, int err);
void ns_tcp_close_listeners(struct ns_stack *ns, bool all);
/* Stack closing: every conn still held hears BASE_ECLOSING; lingering pcbs are reset. */
void ns_tcp_stack_closing(struct ns_stack *ns);

/* ns_mem.c: TCP memory under the budget */
size_t ns_mem_pbuf_cost(const struct pbuf *p);
void ns_mem_sync(struct ns_conn *c);
void ns_mem_hold(struct ns_conn *c, struct pbuf *p);
void ns_mem_held_free(struct ns_conn *c, struct pbuf *p);
void ns_mem_size_conn(struct ns_conn *c);
size_t ns_mem_snd_cap(const struct ns_conn *c);
void ns_mem_repay(struct ns_conn *c);
void ns_mem_stack_closing(struct ns_stack *ns);

/* ns_tune.c: windows that grow with what the connection moves */
void ns_tune_start(struct ns_conn *c, size_t wnd);
void ns_tune_rcv_measure(struct ns_conn *c);
void ns_tune_consumed(struct ns_conn *c, size_t n);
size_t ns_tune_snd_want(const struct ns_conn *c);

/* ns_udp.c */
int ns_udp_prepare(struct ns_stack *ns, const struct base_endpoint *local,
                   const struct base_endpoint *remote);
void ns_udp_icmp_error(struct ns_stack *ns, const struct base_endpoint *local,
                       const struct base_endpoint *remote, int err);
void ns_udp_stack_closing(struct ns_stack *ns);

/* ns_icmp.c */
int ns_icmp_input(struct ns_stack *ns, const uint8_t *pkt, size_t len);
void ns_icmp_no_route(struct ns_stack *ns, const uint8_t *pkt, size_t len);
void ns_ping_stack_closing(struct ns_stack *ns);

#endif
