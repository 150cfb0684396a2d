/* A node's stack: its netif, packet input/output, lwIP's timers on the loop, the hooks. */
#include "ns_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip4_frag.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

#define NS_SCRATCH 65536
#define NS_MAX_PACKET 65000
/* Packets a stack hands to itself or to a back-to-back stack while lwIP is busy wait here. */
#define NS_QUEUE_MAX_BYTES (32u * 1024 * 1024)

/* lwIP is one global instance, so the glue that serializes entry into it is global too. */
struct ns_qpkt {
    struct ns_qpkt *next;
    ns_stack *ns;
    size_t len;
    uint8_t data[];
};
static struct {
    int inited;
    int depth;
    ns_stack *stacks;
    ns_stack *current; /* the stack whose input lwIP is processing */
    struct ns_qpkt *qhead, *qtail;
    size_t qbytes;
    uint8_t isn_key[crypto_shorthash_KEYBYTES];
} g;

static void ns_process(ns_stack *ns, const uint8_t *pkt, size_t len);

const char *ns_strerror(int err)
{
    switch (err) {
    case NS_OK:
        return "ok";
    case NS_EREFUSED:
        return "connection refused";
    case NS_EUNREACH:
        return "unreachable";
    case NS_ETIMEDOUT:
        return "timed out";
    case NS_ERESET:
        return "connection reset";
    case NS_ENOMEM:
        return "out of memory";
    case NS_EINVAL:
        return "invalid argument";
    case NS_ECLOSED:
        return "closed";
    case NS_ELIMIT:
        return "limit reached";
    case NS_EADDRINUSE:
        return "no free local port";
    default:
        return "unknown error";
    }
}

int ns_addr_parse(ns_addr *out, const char *text)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, out->ip) == 1) {
        out->family = AF_INET;
        return NS_OK;
    }
    if (inet_pton(AF_INET6, text, out->ip) == 1) {
        out->family = AF_INET6;
        return NS_OK;
    }
    return NS_EINVAL;
}

const char *ns_addr_format(const ns_addr *a, char *buf, size_t len)
{
    if (a->family != AF_INET && a->family != AF_INET6) {
        snprintf(buf, len, "-");
        return buf;
    }
    if (!inet_ntop(a->family, a->ip, buf, (socklen_t)len))
        snprintf(buf, len, "?");
    return buf;
}

void ns_addr_from_lwip(ns_addr *out, const ip_addr_t *ip)
{
    memset(out, 0, sizeof(*out));
    if (IP_IS_V6(ip)) {
        out->family = AF_INET6;
        memcpy(out->ip, ip_2_ip6(ip)->addr, 16);
    } else {
        out->family = AF_INET;
        memcpy(out->ip, &ip_2_ip4(ip)->addr, 4);
    }
}

void ns_addr_to_lwip(ip_addr_t *out, const ns_addr *a)
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

int ns_addr_equal(const ns_addr *a, const ns_addr *b)
{
    if (a->family != b->family)
        return 0;
    return memcmp(a->ip, b->ip, a->family == AF_INET ? 4 : 16) == 0;
}

int ns_endpoint_equal(const ns_endpoint *a, const ns_endpoint *b)
{
    return a->port == b->port && ns_addr_equal(&a->addr, &b->addr);
}

int ns_stack_owns(const ns_stack *ns, const ns_addr *a)
{
    if (ns_addr_equal(a, &ns->cfg.addr4) || ns_addr_equal(a, &ns->cfg.addr6))
        return 1;
    for (int i = 0; i < ns->n_extra; i++)
        if (ns_addr_equal(a, &ns->extra_addr[i]))
            return 1;
    return 0;
}

const ns_addr *ns_stack_addr_for(const ns_stack *ns, int family)
{
    if (family == AF_INET && ns->cfg.addr4.family == AF_INET)
        return &ns->cfg.addr4;
    if (family == AF_INET6 && ns->cfg.addr6.family == AF_INET6)
        return &ns->cfg.addr6;
    return NULL;
}

uint16_t ns_random_port(void)
{
    /* RFC 6056 algorithm 1: uniformly random over the whole non-privileged range. */
    return (uint16_t)(1024 + randombytes_uniform(65536 - 1024));
}

struct ns_handler *ns_handler_find(ns_stack *ns, int proto, const ns_addr *local, uint16_t port)
{
    struct ns_handler *best = NULL;
    int best_score = -1;
    for (struct ns_handler *h = ns->handlers; h; h = h->next) {
        if (h->proto != proto)
            continue;
        if (h->local.family && !ns_addr_equal(&h->local, local))
            continue;
        if (h->port && h->port != port)
            continue;
        int score = (h->port ? 2 : 0) + (h->local.family ? 1 : 0);
        if (score > best_score) {
            best = h;
            best_score = score;
        }
    }
    return best;
}

/* ---- lwIP's clock and hooks ---- */

u32_t sys_now(void)
{
    if (g.stacks)
        return (u32_t)uv_now(g.stacks->loop);
    return (u32_t)(uv_hrtime() / 1000000);
}

static ns_stack *owner_of(const ns_addr *a)
{
    if (g.current && ns_stack_owns(g.current, a))
        return g.current;
    for (ns_stack *ns = g.stacks; ns; ns = ns->next_stack)
        if (ns_stack_owns(ns, a))
            return ns;
    return NULL;
}

/* The netif that holds a source address: an extra address (100.100.100.100) has its own, and
 * lwIP's udp_sendto_if refuses a pcb whose local address is not the chosen netif's. */
int ns_stack_has_netif_idx(const ns_stack *ns, u8_t idx)
{
    if (netif_get_index(&ns->netif) == idx)
        return 1;
    for (int i = 0; i < ns->n_extra; i++)
        if (netif_get_index(&ns->extra[i]) == idx)
            return 1;
    return 0;
}

struct netif *ns_netif_of(const ns_addr *a)
{
    ns_stack *ns = owner_of(a);
    if (!ns)
        return NULL;
    for (int i = 0; i < ns->n_extra; i++)
        if (ns_addr_equal(a, &ns->extra_addr[i]))
            return &ns->extra[i];
    return &ns->netif;
}

struct netif *ns_hook_ip4_route_src(const ip4_addr_t *src, const ip4_addr_t *dest)
{
    (void)dest;
    if (!src || ip4_addr_isany(src))
        return NULL;
    ns_addr a = {.family = AF_INET};
    memcpy(a.ip, &src->addr, 4);
    return ns_netif_of(&a);
}

struct netif *ns_hook_ip6_route(const ip6_addr_t *src, const ip6_addr_t *dest)
{
    (void)dest;
    if (!src || ip6_addr_isany(src))
        return NULL;
    ns_addr a = {.family = AF_INET6};
    memcpy(a.ip, src->addr, 16);
    return ns_netif_of(&a);
}

u32_t ns_hook_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                      u16_t remote_port)
{
    uint8_t in[36];
    ns_addr l, r;
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
    ns_stack *owner = g.stacks;
    if (!owner)
        return;
    u32_t sleep = g.qhead ? 0 : sys_timeouts_sleeptime();
    if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
        uv_timer_stop(owner->timer);
    else
        uv_timer_start(owner->timer, timer_cb, sleep, 0);
}

void ns_enter(void)
{
    g.depth++;
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
    while (g.qhead) {
        struct ns_qpkt *q = g.qhead;
        g.qhead = q->next;
        if (!g.qhead)
            g.qtail = NULL;
        g.qbytes -= q->len;
        ns_process(q->ns, q->data, q->len);
        free(q);
    }
    g.depth = 0;
    reschedule();
}

static void enqueue(ns_stack *ns, const uint8_t *pkt, size_t len)
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
    q->next = NULL;
    q->ns = ns;
    q->len = len;
    memcpy(q->data, pkt, len);
    if (g.qtail)
        g.qtail->next = q;
    else
        g.qhead = q;
    g.qtail = q;
    g.qbytes += len;
}

static void purge_queue(ns_stack *ns)
{
    struct ns_qpkt **pp = &g.qhead;
    g.qtail = NULL;
    while (*pp) {
        struct ns_qpkt *q = *pp;
        if (q->ns == ns) {
            *pp = q->next;
            g.qbytes -= q->len;
            free(q);
            continue;
        }
        g.qtail = q;
        pp = &q->next;
    }
}

/* ---- output ---- */

static err_t emit(struct netif *netif, struct pbuf *p)
{
    ns_stack *ns = netif->state;
    size_t len = p->tot_len;
    if (len > NS_SCRATCH)
        return ERR_OK;
    pbuf_copy_partial(p, ns->scratch, (u16_t)len, 0);
    int rc = ns->output(ns->output_ctx, ns->scratch, len);
    if (rc == NS_OUTPUT_NO_ROUTE) {
        ns->ctr.no_route++;
        ns_icmp_no_route(ns, ns->scratch, len);
        return ERR_OK;
    }
    if (rc == 0) {
        ns->ctr.pkts_out++;
        ns->ctr.bytes_out += len;
    }
    return ERR_OK;
}

static err_t output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *ip)
{
    (void)ip;
    return emit(netif, p);
}

static err_t output6(struct netif *netif, struct pbuf *p, const ip6_addr_t *ip)
{
    (void)ip;
    return emit(netif, p);
}

static err_t netif_init_cb(struct netif *netif)
{
    ns_stack *ns = netif->state;
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

static int add_netif(ns_stack *ns, struct netif *n, const ns_addr *v4)
{
    ip4_addr_t a, mask, gw;
    ip4_addr_set_zero(&a);
    if (v4)
        memcpy(&a.addr, v4->ip, 4);
    IP4_ADDR(&mask, 255, 255, 255, 255);
    ip4_addr_set_zero(&gw);
    if (!netif_add(n, &a, &mask, &gw, ns, netif_init_cb, ip_input))
        return NS_ENOMEM;
    netif_set_up(n);
    netif_set_link_up(n);
    return NS_OK;
}

static int add_ip6(struct netif *n, const ns_addr *a)
{
    ip6_addr_t ip;
    s8_t idx;
    memset(&ip, 0, sizeof(ip));
    memcpy(ip.addr, a->ip, 16);
    if (netif_add_ip6_address(n, &ip, &idx) != ERR_OK)
        return NS_ENOMEM;
    /* A tunnel address is ours by configuration: no duplicate address detection. */
    netif_ip6_addr_set_state(n, idx, IP6_ADDR_PREFERRED);
    return NS_OK;
}

ns_stack *ns_stack_new(uv_loop_t *loop, const struct ns_config *cfg, ns_output_fn output,
                       void *output_ctx)
{
    if (!loop || !cfg || !output)
        return NULL;
    if (cfg->addr4.family != AF_INET && cfg->addr6.family != AF_INET6)
        return NULL;
    uint32_t mtu = cfg->mtu ? cfg->mtu : 1420;
    if (mtu > 65535 || mtu < (cfg->addr6.family == AF_INET6 ? 1280u : 576u))
        return NULL;
    if (sodium_init() < 0)
        return NULL;
    ns_stack *ns = calloc(1, sizeof(*ns));
    if (!ns)
        return NULL;
    ns->scratch = malloc(NS_SCRATCH);
    ns->timer = malloc(sizeof(*ns->timer));
    if (!ns->scratch || !ns->timer) {
        free(ns->scratch);
        free(ns->timer);
        free(ns);
        return NULL;
    }
    ns->loop = loop;
    ns->cfg = *cfg;
    ns->cfg.mtu = mtu;
    if (!ns->cfg.tcp_rcv_wnd || ns->cfg.tcp_rcv_wnd > NS_TCP_WND_MAX)
        ns->cfg.tcp_rcv_wnd = NS_TCP_WND_MAX;
    if (ns->cfg.tcp_rcv_wnd < 65535)
        ns->cfg.tcp_rcv_wnd = 65535;
    if (!ns->cfg.tcp_snd_buf || ns->cfg.tcp_snd_buf > NS_TCP_SND_BUF_MAX)
        ns->cfg.tcp_snd_buf = NS_TCP_SND_BUF_MAX;
    if (!ns->cfg.max_tcp)
        ns->cfg.max_tcp = 4096;
    if (!ns->cfg.max_udp)
        ns->cfg.max_udp = 4096;
    if (!ns->cfg.max_pending)
        ns->cfg.max_pending = 128;
    ns->output = output;
    ns->output_ctx = output_ctx;
    ns->ping_id = (uint16_t)randombytes_random();
    uv_timer_init(loop, ns->timer);
    ns->timer->data = ns;

    ns_enter();
    if (!g.inited) {
        lwip_init();
        stop_idle_timers();
        randombytes_buf(g.isn_key, sizeof(g.isn_key));
        g.inited = 1;
    }
    int rc = add_netif(ns, &ns->netif, ns->cfg.addr4.family == AF_INET ? &ns->cfg.addr4 : NULL);
    if (rc == NS_OK && ns->cfg.addr6.family == AF_INET6)
        rc = add_ip6(&ns->netif, &ns->cfg.addr6);
    if (rc != NS_OK) {
        if (ns->netif.state)
            netif_remove(&ns->netif);
        ns_leave();
        uv_close((uv_handle_t *)ns->timer, (uv_close_cb)free);
        free(ns->scratch);
        free(ns);
        return NULL;
    }
    /* A stack that joins last does not own the timer unless it is alone. */
    ns_stack **pp = &g.stacks;
    while (*pp)
        pp = &(*pp)->next_stack;
    *pp = ns;
    ns_leave();
    return ns;
}

int ns_stack_add_address(ns_stack *ns, const ns_addr *addr)
{
    if (!addr || (addr->family != AF_INET && addr->family != AF_INET6))
        return NS_EINVAL;
    if (ns_stack_owns(ns, addr))
        return NS_OK;
    if (ns->n_extra == NS_MAX_EXTRA_ADDRS)
        return NS_ELIMIT;
    struct netif *n = &ns->extra[ns->n_extra];
    ns_enter();
    int rc = add_netif(ns, n, addr->family == AF_INET ? addr : NULL);
    if (rc == NS_OK && addr->family == AF_INET6)
        rc = add_ip6(n, addr);
    if (rc == NS_OK)
        ns->extra_addr[ns->n_extra++] = *addr;
    else if (n->state)
        netif_remove(n);
    ns_leave();
    return rc;
}

const struct ns_counters *ns_stack_counters(const ns_stack *ns)
{
    return &ns->ctr;
}

int ns_stack_handle_tcp(ns_stack *ns, const ns_addr *local, uint16_t port, ns_tcp_accept_fn fn,
                        void *ctx);
int ns_stack_handle_udp(ns_stack *ns, const ns_addr *local, uint16_t port, ns_udp_accept_fn fn,
                        void *ctx);

static int handle(ns_stack *ns, int proto, const ns_addr *local, uint16_t port, void *fn, void *ctx)
{
    ns_addr any = {0};
    if (!local)
        local = &any;
    if (!fn || (local->family && !ns_stack_owns(ns, local)))
        return NS_EINVAL;
    for (struct ns_handler *h = ns->handlers; h; h = h->next) {
        if (h->proto == proto && h->port == port && (h->local.family == local->family) &&
            (!local->family || ns_addr_equal(&h->local, local))) {
            h->fn = fn;
            h->ctx = ctx;
            return NS_OK;
        }
    }
    struct ns_handler *h = calloc(1, sizeof(*h));
    if (!h)
        return NS_ENOMEM;
    h->proto = proto;
    h->local = *local;
    h->port = port;
    h->fn = fn;
    h->ctx = ctx;
    h->next = ns->handlers;
    ns->handlers = h;
    return NS_OK;
}

static void unhandle(ns_stack *ns, int proto, const ns_addr *local, uint16_t port)
{
    ns_addr any = {0};
    if (!local)
        local = &any;
    for (struct ns_handler **pp = &ns->handlers; *pp; pp = &(*pp)->next) {
        struct ns_handler *h = *pp;
        if (h->proto == proto && h->port == port && h->local.family == local->family &&
            (!local->family || ns_addr_equal(&h->local, local))) {
            *pp = h->next;
            free(h);
            return;
        }
    }
}

int ns_stack_handle_tcp(ns_stack *ns, const ns_addr *local, uint16_t port, ns_tcp_accept_fn fn,
                        void *ctx)
{
    return handle(ns, IP_PROTO_TCP, local, port, (void *)fn, ctx);
}

int ns_stack_handle_udp(ns_stack *ns, const ns_addr *local, uint16_t port, ns_udp_accept_fn fn,
                        void *ctx)
{
    return handle(ns, IP_PROTO_UDP, local, port, (void *)fn, ctx);
}

void ns_stack_unhandle_tcp(ns_stack *ns, const ns_addr *local, uint16_t port)
{
    unhandle(ns, IP_PROTO_TCP, local, port);
    /* Listeners the handler no longer covers must stop accepting. */
    ns_enter();
    struct ns_listener **pp = &ns->listeners;
    while (*pp) {
        struct ns_listener *l = *pp;
        if (!ns_handler_find(ns, IP_PROTO_TCP, &l->local.addr, l->local.port)) {
            *pp = l->next;
            tcp_arg(l->pcb, NULL);
            tcp_close(l->pcb);
            free(l);
            continue;
        }
        pp = &l->next;
    }
    ns_leave();
}

void ns_stack_unhandle_udp(ns_stack *ns, const ns_addr *local, uint16_t port)
{
    unhandle(ns, IP_PROTO_UDP, local, port);
}

void ns_stack_free(ns_stack *ns)
{
    if (!ns)
        return;
    ns_enter();
    ns_tcp_free_all(ns);
    ns_udp_free_all(ns);
    ns_ping_free_all(ns);
    while (ns->listeners) {
        struct ns_listener *l = ns->listeners;
        ns->listeners = l->next;
        tcp_arg(l->pcb, NULL);
        tcp_close(l->pcb);
        free(l);
    }
    while (ns->handlers) {
        struct ns_handler *h = ns->handlers;
        ns->handlers = h->next;
        free(h);
    }
    /* lwIP may still hold pcbs on our netif (lingering closes, TIME_WAIT): cut them loose. */
    for (int pass = 0; pass < 2; pass++) {
        struct tcp_pcb *list = pass ? tcp_tw_pcbs : tcp_active_pcbs;
        for (struct tcp_pcb *p = list, *next; p; p = next) {
            next = p->next;
            if (p->netif_idx == netif_get_index(&ns->netif)) {
                tcp_arg(p, NULL);
                tcp_abort(p);
            }
        }
    }
    purge_queue(ns);
    for (int i = 0; i < ns->n_extra; i++)
        netif_remove(&ns->extra[i]);
    netif_remove(&ns->netif);
    for (ns_stack **pp = &g.stacks; *pp; pp = &(*pp)->next_stack) {
        if (*pp == ns) {
            *pp = ns->next_stack;
            break;
        }
    }
    if (g.current == ns)
        g.current = NULL;
    uv_close((uv_handle_t *)ns->timer, (uv_close_cb)free);
    free(ns->scratch);
    free(ns);
    ns_leave();
}

/* ---- input ---- */

void ns_stack_input(ns_stack *ns, const uint8_t *pkt, size_t len)
{
    if (g.depth > 0) {
        enqueue(ns, pkt, len);
        return;
    }
    ns_enter();
    ns_process(ns, pkt, len);
    ns_leave_drain();
}

struct ns_pkt_info {
    ns_endpoint src, dst;
    int proto;
    const uint8_t *l4;
    size_t l4len;
    size_t iplen;
};

/* lwIP 2.1.3 reads an option's length byte even past the header's end. */
static int tcp_options_bad(const uint8_t *tcp, size_t hl)
{
    for (size_t i = 20; i < hl;) {
        if (tcp[i] == 0)
            return 0;
        if (tcp[i] == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hl || tcp[i + 1] < 2 || i + tcp[i + 1] > hl)
            return 1;
        i += tcp[i + 1];
    }
    return 0;
}

/* Checks the headers lwIP would check, so drops are counted; 0 when well formed. */
static int parse(const uint8_t *pkt, size_t len, struct ns_pkt_info *pi)
{
    memset(pi, 0, sizeof(*pi));
    if (len < 1)
        return -1;
    size_t hl;
    if ((pkt[0] >> 4) == 4) {
        if (len < 20)
            return -1;
        hl = (size_t)(pkt[0] & 0x0f) * 4;
        size_t tot = ((size_t)pkt[2] << 8) | pkt[3];
        if (hl < 20 || tot < hl || tot > len || tot > NS_MAX_PACKET)
            return -1;
        if (((pkt[6] << 8) | pkt[7]) & 0x3fff)
            return -1; /* fragments: the tunnel MTU makes them needless, lwIP is built without */
        pi->src.addr.family = pi->dst.addr.family = AF_INET;
        memcpy(pi->src.addr.ip, pkt + 12, 4);
        memcpy(pi->dst.addr.ip, pkt + 16, 4);
        pi->proto = pkt[9];
        pi->iplen = tot;
    } else if ((pkt[0] >> 4) == 6) {
        if (len < 40)
            return -1;
        hl = 40;
        size_t tot = 40 + (((size_t)pkt[4] << 8) | pkt[5]);
        if (tot > len || tot > NS_MAX_PACKET)
            return -1; /* lwIP's pbufs are 16-bit, with room for headers and slack */
        pi->src.addr.family = pi->dst.addr.family = AF_INET6;
        memcpy(pi->src.addr.ip, pkt + 8, 16);
        memcpy(pi->dst.addr.ip, pkt + 24, 16);
        pi->proto = pkt[6];
        pi->iplen = tot;
        /* Extension headers are never needed in a tunnel (no fragments, no options) and lwIP
     * 2.1.3's parser of them reads past short packets: only plain TCP, UDP, ICMPv6 pass. */
        if (pi->proto != IP_PROTO_TCP && pi->proto != IP_PROTO_UDP && pi->proto != IP6_NEXTH_ICMP6)
            return -1;
    } else {
        return -1;
    }
    pi->l4 = pkt + hl;
    pi->l4len = pi->iplen - hl;
    switch (pi->proto) {
    case IP_PROTO_TCP:
        if (pi->l4len < 20 || (size_t)(pi->l4[12] >> 4) * 4 < 20 ||
            (size_t)(pi->l4[12] >> 4) * 4 > pi->l4len)
            return -1;
        if (tcp_options_bad(pi->l4, (size_t)(pi->l4[12] >> 4) * 4))
            return -1;
        break;
    case IP_PROTO_UDP:
        if (pi->l4len < 8)
            return -1;
        size_t ul = ((size_t)pi->l4[4] << 8) | pi->l4[5];
        if (ul < 8 || ul > pi->l4len)
            return -1;
        break;
    case IP_PROTO_ICMP:
    case IP6_NEXTH_ICMP6:
        if (pi->l4len < 8)
            return -1;
        break;
    default:
        return 0;
    }
    pi->src.port = (uint16_t)((pi->l4[0] << 8) | pi->l4[1]);
    pi->dst.port = (uint16_t)((pi->l4[2] << 8) | pi->l4[3]);
    if (pi->proto == IP_PROTO_ICMP || pi->proto == IP6_NEXTH_ICMP6)
        pi->src.port = pi->dst.port = 0;
    return 0;
}

static void ns_process(ns_stack *ns, const uint8_t *pkt, size_t len)
{
    struct ns_pkt_info pi;
    if (parse(pkt, len, &pi) != 0) {
        ns->ctr.drop_malformed++;
        return;
    }
    if (!ns_stack_owns(ns, &pi.dst.addr)) {
        ns->ctr.drop_not_ours++;
        return;
    }
    len = pi.iplen;
    ns->ctr.pkts_in++;
    ns->ctr.bytes_in += len;
    ns_stack *saved = g.current;
    g.current = ns;
    int consumed = 0;
    if (pi.proto == IP_PROTO_TCP) {
        uint8_t flags = pi.l4[13];
        if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
            consumed = ns_tcp_prepare_syn(ns, &pi.dst, &pi.src) != 0;
    } else if (pi.proto == IP_PROTO_UDP) {
        consumed = ns_udp_prepare(ns, &pi.dst, &pi.src) != 0;
    } else if (pi.proto == IP_PROTO_ICMP || pi.proto == IP6_NEXTH_ICMP6) {
        consumed = ns_icmp_input(ns, pkt, len);
    }
    if (!consumed) {
        /* Slack after the packet: defense in depth against lwIP parsers reading a byte too far. */
        struct pbuf *p = pbuf_alloc(PBUF_LINK, (u16_t)(len + 64), PBUF_RAM);
        if (!p) {
            ns->ctr.drop_limit++;
        } else {
            memset(p->payload, 0, len + 64);
            pbuf_take(p, pkt, (u16_t)len);
            p->len = p->tot_len = (u16_t)len;
            /* In through the netif that holds the destination, where its pcbs are bound. */
            struct netif *in = ns_netif_of(&pi.dst.addr);
            if (!in)
                in = &ns->netif;
            if (in->input(p, in) != ERR_OK)
                pbuf_free(p);
        }
    }
    g.current = saved;
}
