/*
 * The glue to the one lwIP instance a process has: its initialisation, its clock and the hooks
 * lwipopts.h names (route by source address, RFC 6528 ISNs, the checksum), serialized entry
 * into it (packets that arrive while lwIP is busy wait in a queue for the next loop turn), its
 * timers on the loop, and the way out (netif output -> the stack's output callback).
 *
 * lwIP is global, so this state is too: the list of live stacks (the first one owns the timer
 * that drives lwIP's timeouts), the stack whose packet lwIP is processing, the queue.
 */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"

/* Packets a stack hands to itself or to a back-to-back stack while lwIP is busy wait here. */
#define NS_QUEUE_MAX_BYTES (32u * 1024 * 1024)

struct ns_qpkt {
    struct base_list link;
    struct ns_stack *ns;
    size_t len;
    uint8_t data[];
};

struct ns_global {
    bool inited;
    int depth;
    struct base_list stacks;  /* struct ns_stack, by stack_link; the first owns the timer */
    struct ns_stack *current; /* the stack whose input lwIP is processing */
    struct base_list queue;   /* struct ns_qpkt */
    size_t qbytes;
    uint8_t isn_key[crypto_shorthash_KEYBYTES];
    uint16_t ports[64]; /* random draws for ns_random_port, used from the end */
    unsigned ports_left;
};
static struct ns_global g = {.stacks = {&g.stacks, &g.stacks}, .queue = {&g.queue, &g.queue}};

static struct ns_stack *timer_owner(void)
{
    struct base_list *first = base_list_first(&g.stacks);
    return first ? container_of(first, struct ns_stack, stack_link) : NULL;
}

/* lwIP's cyclic ND timer ages neighbour and destination caches that a tunnel never fills (ND
 * is dropped before lwIP, addresses are static and PREFERRED): without it an idle stack has no
 * timer at all. */
#if LWIP_VERSION_MAJOR != 2 || LWIP_VERSION_MINOR != 1
#error "stop_idle_timers relies on lwIP 2.1's cyclic timers: check nd6_tmr's duties again"
#endif
static void stop_idle_timers(void)
{
    for (int i = 0; i < lwip_num_cyclic_timers; i++)
        if (lwip_cyclic_timers[i].handler == nd6_tmr)
            sys_untimeout(lwip_cyclic_timer, LWIP_CONST_CAST(void *, &lwip_cyclic_timers[i]));
}

void ns_lwip_init(void)
{
    if (g.inited)
        return;
    lwip_init();
    stop_idle_timers();
    randombytes_buf(g.isn_key, sizeof(g.isn_key));
    g.inited = true;
}

void ns_stacks_add(struct ns_stack *ns)
{
    /* A stack that joins last does not own the timer unless it is alone. */
    base_list_push_back(&g.stacks, &ns->stack_link);
}

void ns_stacks_remove(struct ns_stack *ns)
{
    base_list_remove(&ns->stack_link);
    if (g.current == ns)
        g.current = NULL;
    if (base_list_empty(&g.stacks))
        ns_rxpool_trim();
}

struct ns_stack *ns_stack_current(void)
{
    return g.current;
}

void ns_stack_set_current(struct ns_stack *ns)
{
    g.current = ns;
}

/* ---- addresses between lwIP and base ---- */

void ns_addr_from_lwip(struct base_addr *out, const ip_addr_t *ip)
{
    uint8_t b[16];
    if (IP_IS_V6(ip)) {
        memcpy(b, ip_2_ip6(ip)->addr, 16);
        base_addr_v6(out, b);
    } else {
        memcpy(b, &ip_2_ip4(ip)->addr, 4);
        base_addr_v4(out, b);
    }
}

void ns_addr_to_lwip(ip_addr_t *out, const struct base_addr *a)
{
    memset(out, 0, sizeof(*out));
    if (a->family == AF_INET6) {
        IP_SET_TYPE(out, IPADDR_TYPE_V6);
        memcpy(ip_2_ip6(out)->addr, a->ip, 16);
    } else {
        IP_SET_TYPE(out, IPADDR_TYPE_V4);
        memcpy(&ip_2_ip4(out)->addr, a->ip, 4);
    }
}

/* RFC 6056 algorithm 1: uniformly random over the whole non-privileged range (draws past its
 * size are rejected). The draws come 64 at a time: a getrandom(2) of its own was one system
 * call in 33 of a short connection's, on the way from the CONNECT to the SYN. */
uint16_t ns_random_port(void)
{
    for (;;) {
        if (!g.ports_left) {
            randombytes_buf(g.ports, sizeof(g.ports));
            g.ports_left = sizeof(g.ports) / sizeof(g.ports[0]);
        }
        uint16_t r = g.ports[--g.ports_left];
        if (r < 65536 - 1024)
            return (uint16_t)(1024 + r);
    }
}

/* ---- lwIP's clock and hooks ---- */

u32_t sys_now(void)
{
    struct ns_stack *owner = timer_owner();
    if (owner)
        return (u32_t)uv_now(owner->loop);
    return (u32_t)(uv_hrtime() / 1000000);
}

static struct ns_stack *owner_of(const struct base_addr *a)
{
    if (g.current && ns_stack_owns(g.current, a))
        return g.current;
    struct base_list *pos;
    base_list_foreach (pos, &g.stacks) {
        struct ns_stack *ns = container_of(pos, struct ns_stack, stack_link);
        if (ns_stack_owns(ns, a))
            return ns;
    }
    return NULL;
}

/* The netif that holds a source address: an extra address (100.100.100.100) has its own, and
 * lwIP's udp_sendto_if refuses a pcb whose local address is not the chosen netif's. */
struct netif *ns_netif_of(const struct base_addr *a)
{
    struct ns_stack *ns = owner_of(a);
    if (!ns)
        return NULL;
    for (int i = 0; i < ns->n_extra; i++)
        if (base_addr_equal(a, &ns->extra_addr[i]))
            return &ns->extra[i];
    return &ns->netif;
}

struct netif *ns_hook_ip4_route_src(const ip4_addr_t *src, const ip4_addr_t *dest)
{
    (void)dest;
    if (!src || ip4_addr_isany(src))
        return NULL;
    struct base_addr a;
    base_addr_v4(&a, (const uint8_t *)&src->addr);
    return ns_netif_of(&a);
}

struct netif *ns_hook_ip6_route(const ip6_addr_t *src, const ip6_addr_t *dest)
{
    (void)dest;
    if (!src || ip6_addr_isany(src))
        return NULL;
    uint8_t b[16];
    memcpy(b, src->addr, 16);
    struct base_addr a;
    base_addr_v6(&a, b);
    return ns_netif_of(&a);
}

u32_t ns_hook_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                      u16_t remote_port)
{
    uint8_t in[36];
    struct base_addr l, r;
    ns_addr_from_lwip(&l, local_ip);
    ns_addr_from_lwip(&r, remote_ip);
    memcpy(in, l.ip, 16);
    memcpy(in + 16, r.ip, 16);
    in[32] = (uint8_t)(local_port >> 8);
    in[33] = (uint8_t)local_port;
    in[34] = (uint8_t)(remote_port >> 8);
    in[35] = (uint8_t)remote_port;
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, in, sizeof(in), g.isn_key);
    uint32_t f;
    memcpy(&f, h, 4);
    return f + (uint32_t)(uv_hrtime() / 4000); /* RFC 6528's 4 microsecond timer */
}

/* ---- the Internet checksum (lwipopts.h: LWIP_CHKSUM) ----
 *
 * lwIP computes it for every segment it sends, 16 bits at a time: on a fast tunnel that made
 * it the sender's largest cost after the crypto (perf, tunless to tunless: 6% of the
 * publishing node's CPU). This adds 64-bit words with an end-around carry: the same one's
 * complement sum (2^16 = 1 modulo 0xffff) with a quarter of the additions. The
 * contract is lwIP's: the non-inverted sum of the words as they lie in memory, read in the
 * host's byte order, for data at any address (an odd start is summed as if even, then the
 * result swapped). It lives in this file because only lwIP calls it, and lwIP is linked after
 * the netstack: a file of its own would not be taken from the library. */

/* The one's complement sum of 64-bit words (an end-around carry: 2^64 = 1 modulo 0xffff),
 * folded to 33 bits; consumes whole words from *len. */
static uint64_t add_words(const uint8_t *p, int *len)
{
    uint64_t sum = 0, w[4];
    for (; *len >= 32; *len -= 32, p += 32) {
        memcpy(w, p, 32);
        for (int i = 0; i < 4; i++) {
            sum += w[i];
            sum += sum < w[i];
        }
    }
    for (; *len >= 8; *len -= 8, p += 8) {
        memcpy(w, p, 8);
        sum += w[0];
        sum += sum < w[0];
    }
    return (sum & 0xffffffffu) + (sum >> 32);
}

u16_t ns_chksum(const void *data, int len)
{
    const uint8_t *p = data;
    uint64_t sum = 0;
    uint16_t edge = 0;
    int odd = (int)((uintptr_t)p & 1);
    if (odd && len > 0) {
        ((uint8_t *)&edge)[1] = *p++;
        len--;
    }
    int bulk = len;
    sum += add_words(p, &len);
    p += bulk - len;
    for (; len >= 2; len -= 2, p += 2) {
        uint16_t h;
        memcpy(&h, p, 2);
        sum += h;
    }
    if (len > 0)
        ((uint8_t *)&edge)[0] = *p;
    sum += edge;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    if (odd)
        sum = ((sum & 0xff) << 8) | (sum >> 8);
    return (u16_t)sum;
}

/* ---- serialized entry into lwIP ---- */

static void timer_cb(uv_timer_t *t)
{
    (void)t;
    ns_enter();
    sys_check_timeouts();
    ns_leave_drain();
}

static void reschedule(void)
{
    struct ns_stack *owner = timer_owner();
    if (!owner)
        return;
    u32_t sleep = base_list_empty(&g.queue) ? sys_timeouts_sleeptime() : 0;
    if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
        uv_timer_stop(&owner->timer);
    else
        uv_timer_start(&owner->timer, timer_cb, sleep, 0);
}

void ns_enter(void)
{
    g.depth++;
}

bool ns_lwip_busy(void)
{
    return g.depth > 0;
}

void ns_leave(void)
{
    /* A call the user made must not call back into the user: queued packets (a back-to-back
     * stack's, our own ICMP unreachable) wait for the timer to fire on the next loop turn. */
    g.depth--;
    if (g.depth == 0)
        reschedule();
}

void ns_leave_drain(void)
{
    if (g.depth > 1) {
        g.depth--;
        return;
    }
    struct base_list *first;
    while ((first = base_list_first(&g.queue))) {
        struct ns_qpkt *q = container_of(first, struct ns_qpkt, link);
        base_list_remove(&q->link);
        g.qbytes -= q->len;
        ns_process(q->ns, q->data, q->len);
        free(q);
    }
    g.depth = 0;
    reschedule();
}

void ns_queue_packet(struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    if (g.qbytes + len > NS_QUEUE_MAX_BYTES) {
        ns->ctr.drop_limit++;
        return;
    }
    struct ns_qpkt *q = malloc(sizeof(*q) + len);
    if (!q) {
        ns->ctr.drop_limit++;
        return;
    }
    q->ns = ns;
    q->len = len;
    memcpy(q->data, pkt, len);
    base_list_push_back(&g.queue, &q->link);
    g.qbytes += len;
}

void ns_queue_purge(struct ns_stack *ns)
{
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &g.queue) {
        struct ns_qpkt *q = container_of(pos, struct ns_qpkt, link);
        if (q->ns != ns)
            continue;
        base_list_remove(&q->link);
        g.qbytes -= q->len;
        free(q);
    }
}

/* ---- output ---- */

/* Is the packet addressed to this stack itself (a conn from the node to its own address)? */
static bool to_self(const struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    struct base_addr dst;
    if (len >= 20 && pkt[0] >> 4 == 4)
        base_addr_v4(&dst, pkt + 16);
    else if (len >= 40 && pkt[0] >> 4 == 6)
        base_addr_v6(&dst, pkt + 24);
    else
        return false;
    return ns_stack_owns(ns, &dst);
}

/* A packet to one of the stack's own addresses that the output has no route for (no peer
 * covers it) comes back in, queued while lwIP is busy, as a back-to-back stack's would: the
 * node reaches its own services. One a peer's route covers (100.100.100.100 routed to another
 * node's MagicDNS) goes there. */
void ns_emit(struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    int rc = ns->cfg.output(ns->cfg.output_ctx, pkt, len);
    if (rc == NS_OUTPUT_NO_ROUTE && to_self(ns, pkt, len)) {
        ns_stack_input(ns, pkt, len);
        return;
    }
    if (rc == NS_OUTPUT_NO_ROUTE) {
        ns->ctr.no_route++;
        ns_icmp_no_route(ns, pkt, len);
    } else if (rc == 0) {
        ns->ctr.pkts_out++;
        ns->ctr.bytes_out += len;
    }
}

static err_t netif_output(struct netif *netif, struct pbuf *p)
{
    struct ns_stack *ns = netif->state;
    size_t len = p->tot_len;
    if (len > NS_SCRATCH || ns->state > NS_STACK_CLOSING)
        return ERR_OK;
    pbuf_copy_partial(p, ns->scratch, (u16_t)len, 0);
    ns_emit(ns, ns->scratch, len);
    return ERR_OK;
}

static err_t output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *ip)
{
    (void)ip;
    return netif_output(netif, p);
}

static err_t output6(struct netif *netif, struct pbuf *p, const ip6_addr_t *ip)
{
    (void)ip;
    return netif_output(netif, p);
}

static err_t netif_init_cb(struct netif *netif)
{
    struct ns_stack *ns = netif->state;
    netif->name[0] = 't';
    netif->name[1] = 'l';
    netif->output = output4;
    netif->output_ip6 = output6;
    netif->mtu = (u16_t)ns->cfg.mtu;
#if LWIP_ND6_ALLOW_RA_UPDATES
    netif->mtu6 = (u16_t)ns->cfg.mtu;
#endif
    netif->flags = 0;
    return ERR_OK;
}

static int add_ip6(struct netif *n, const struct base_addr *a)
{
    ip6_addr_t ip;
    s8_t idx;
    memset(&ip, 0, sizeof(ip));
    memcpy(ip.addr, a->ip, 16);
    if (netif_add_ip6_address(n, &ip, &idx) != ERR_OK)
        return -ENOMEM;
    /* A tunnel address is ours by configuration: no duplicate address detection. */
    netif_ip6_addr_set_state(n, idx, IP6_ADDR_PREFERRED);
    return 0;
}

/* A netif of ns holding an IPv4 and/or an IPv6 address (v4, v6 NULL or family 0: none).
 * On failure nothing is left behind. */
static int netif_add_both(struct ns_stack *ns, struct netif *n, const struct base_addr *v4,
                          const struct base_addr *v6)
{
    ip4_addr_t a, mask, gw;
    ip4_addr_set_zero(&a);
    if (v4 && v4->family == AF_INET)
        memcpy(&a.addr, v4->ip, 4);
    IP4_ADDR(&mask, 255, 255, 255, 255);
    ip4_addr_set_zero(&gw);
    if (!netif_add(n, &a, &mask, &gw, ns, netif_init_cb, ip_input))
        return -ENOMEM;
    netif_set_up(n);
    netif_set_link_up(n);
    int rc = v6 && v6->family == AF_INET6 ? add_ip6(n, v6) : 0;
    if (rc != 0)
        netif_remove(n);
    return rc;
}

/* The stack's own netif (a NULL address: its configured ones) or an extra address's. */
int ns_netif_add(struct ns_stack *ns, struct netif *n, const struct base_addr *a)
{
    if (!a)
        return netif_add_both(ns, n, &ns->cfg.addr4, &ns->cfg.addr6);
    return netif_add_both(ns, n, a, a);
}
