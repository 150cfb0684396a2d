/*
 * A node's stack: its life (new, the registrations of handlers, extra addresses, close) and the
 * questions the other files ask of it (which addresses it owns, which handler takes a flow).
 *
 * Closing runs in three steps (netstack.h tells the contract): ns_stack_close tells the
 * watches, then every holder (conns, then flows, then pings), and tears the stack out of lwIP
 * (listeners, lingering pcbs, queued packets, netifs, the list of stacks); the stack then
 * drains, waiting for holders to release what they hold; when nothing is left, its timer is
 * closed and the timer's close callback frees the stack and calls on_closed.
 */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lwip/ip.h"
#include "lwip/netif.h"

static void apply_defaults(struct ns_config *c)
{
    c->mtu = c->mtu ? c->mtu : 1420;
    if (!c->tcp_rcv_wnd || c->tcp_rcv_wnd > NS_TCP_WND_MAX)
        c->tcp_rcv_wnd = NS_TCP_WND_MAX;
    if (c->tcp_rcv_wnd < 65535)
        c->tcp_rcv_wnd = 65535;
    if (!c->tcp_snd_buf || c->tcp_snd_buf > NS_TCP_SND_BUF_MAX)
        c->tcp_snd_buf = NS_TCP_SND_BUF_MAX;
    if (!c->max_tcp)
        c->max_tcp = 4096;
    if (!c->max_udp)
        c->max_udp = 4096;
    if (!c->max_pending)
        c->max_pending = 128;
    c->keepalive_idle_ms = c->keepalive_idle_ms ? c->keepalive_idle_ms : NS_KEEPALIVE_IDLE_MS;
    c->keepalive_intvl_ms = c->keepalive_intvl_ms ? c->keepalive_intvl_ms : NS_KEEPALIVE_INTVL_MS;
    c->keepalive_cnt = c->keepalive_cnt ? c->keepalive_cnt : NS_KEEPALIVE_CNT;
}

static int check_config(const struct ns_config *c)
{
    if (!c->output || (c->addr4.family != AF_INET && c->addr6.family != AF_INET6))
        return -EINVAL;
    uint32_t mtu = c->mtu ? c->mtu : 1420;
    if (mtu > 65535 || mtu < (c->addr6.family == AF_INET6 ? 1280u : 576u))
        return -EINVAL;
    return 0;
}

int ns_stack_new(uv_loop_t *loop, const struct ns_config *cfg, struct ns_stack **out)
{
    *out = NULL;
    if (!loop || !cfg || check_config(cfg) != 0)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOMEM;
    struct ns_stack *ns = calloc(1, sizeof(*ns));
    if (!ns || !(ns->scratch = malloc(NS_SCRATCH))) {
        free(ns);
        return -ENOMEM;
    }
    ns->loop = loop;
    ns->state = NS_STACK_OPEN;
    ns->cfg = *cfg;
    apply_defaults(&ns->cfg);
    ns->ping_id = (uint16_t)randombytes_random();
    base_list_init(&ns->handlers);
    base_list_init(&ns->listeners);
    base_list_init(&ns->conns);
    base_list_init(&ns->acks_held);
    base_list_init(&ns->udps);
    base_list_init(&ns->pings);
    base_list_init(&ns->watches);
    base_list_init(&ns->stack_link);
    ns_enter();
    ns_lwip_init();
    int rc = ns_netif_add(ns, &ns->netif, NULL);
    if (rc != 0) {
        ns_leave();
        free(ns->scratch);
        free(ns);
        return rc;
    }
    uv_timer_init(loop, &ns->timer);
    ns_stacks_add(ns);
    ns_leave();
    *out = ns;
    return 0;
}

int ns_stack_add_address(struct ns_stack *ns, const struct base_addr *addr)
{
    if (ns->state != NS_STACK_OPEN)
        return BASE_ECLOSING;
    if (!addr || (addr->family != AF_INET && addr->family != AF_INET6))
        return -EINVAL;
    if (ns_stack_owns(ns, addr))
        return 0;
    if (ns->n_extra == NS_MAX_EXTRA_ADDRS)
        return BASE_ELIMIT;
    ns_enter();
    int rc = ns_netif_add(ns, &ns->extra[ns->n_extra], addr);
    if (rc == 0)
        ns->extra_addr[ns->n_extra++] = *addr;
    ns_leave();
    return rc;
}

const struct ns_counters *ns_stack_counters(const struct ns_stack *ns)
{
    return &ns->ctr;
}

size_t ns_stack_memory(const struct ns_stack *ns)
{
    return (size_t)ns->ctr.mem_used;
}

/* ---- what the other files ask ---- */

bool ns_stack_owns(const struct ns_stack *ns, const struct base_addr *a)
{
    if (base_addr_equal(a, &ns->cfg.addr4) || base_addr_equal(a, &ns->cfg.addr6))
        return a->family != 0;
    for (int i = 0; i < ns->n_extra; i++)
        if (base_addr_equal(a, &ns->extra_addr[i]))
            return true;
    return false;
}

bool ns_stack_has_netif_idx(const struct ns_stack *ns, u8_t idx)
{
    if (netif_get_index(&ns->netif) == idx)
        return true;
    for (int i = 0; i < ns->n_extra; i++)
        if (netif_get_index(&ns->extra[i]) == idx)
            return true;
    return false;
}

const struct base_addr *ns_stack_addr_for(const struct ns_stack *ns, int family)
{
    if (family == AF_INET && ns->cfg.addr4.family == AF_INET)
        return &ns->cfg.addr4;
    if (family == AF_INET6 && ns->cfg.addr6.family == AF_INET6)
        return &ns->cfg.addr6;
    return NULL;
}

struct ns_handler *ns_handler_find(struct ns_stack *ns, int proto, const struct base_addr *local,
                                   uint16_t port)
{
    struct ns_handler *best = NULL;
    int best_score = -1;
    struct base_list *pos;
    base_list_foreach (pos, &ns->handlers) {
        struct ns_handler *h = container_of(pos, struct ns_handler, link);
        if (h->proto != proto)
            continue;
        if (h->local.family && !base_addr_equal(&h->local, local))
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

/* ---- handlers ---- */

/* The registration for exactly (proto, local, port), or NULL. */
static struct ns_handler *handler_get(struct ns_stack *ns, int proto, const struct base_addr *local,
                                      uint16_t port)
{
    struct base_list *pos;
    base_list_foreach (pos, &ns->handlers) {
        struct ns_handler *h = container_of(pos, struct ns_handler, link);
        if (h->proto == proto && h->port == port && h->local.family == local->family &&
            (!local->family || base_addr_equal(&h->local, local)))
            return h;
    }
    return NULL;
}

static int handle(struct ns_stack *ns, int proto, const struct base_addr *local, uint16_t port,
                  void *fn, void *ctx)
{
    static const struct base_addr any;
    if (ns->state != NS_STACK_OPEN)
        return BASE_ECLOSING;
    if (!local)
        local = &any;
    if (!fn || (local->family && !ns_stack_owns(ns, local)))
        return -EINVAL;
    struct ns_handler *h = handler_get(ns, proto, local, port);
    if (!h) {
        if (!(h = calloc(1, sizeof(*h))))
            return -ENOMEM;
        h->proto = proto;
        h->local = *local;
        h->port = port;
        base_list_push_front(&ns->handlers, &h->link);
    }
    h->fn = fn;
    h->ctx = ctx;
    return 0;
}

static void unhandle(struct ns_stack *ns, int proto, const struct base_addr *local, uint16_t port)
{
    static const struct base_addr any;
    struct ns_handler *h = handler_get(ns, proto, local ? local : &any, port);
    if (h) {
        base_list_remove(&h->link);
        free(h);
    }
}

int ns_stack_handle_tcp(struct ns_stack *ns, const struct base_addr *local, uint16_t port,
                        ns_tcp_accept_fn fn, void *ctx)
{
    return handle(ns, IP_PROTO_TCP, local, port, (void *)fn, ctx);
}

int ns_stack_handle_udp(struct ns_stack *ns, const struct base_addr *local, uint16_t port,
                        ns_udp_accept_fn fn, void *ctx)
{
    return handle(ns, IP_PROTO_UDP, local, port, (void *)fn, ctx);
}

void ns_stack_unhandle_tcp(struct ns_stack *ns, const struct base_addr *local, uint16_t port)
{
    unhandle(ns, IP_PROTO_TCP, local, port);
    /* Listeners the handler no longer covers must stop accepting. */
    ns_enter();
    ns_tcp_close_listeners(ns, false);
    ns_leave();
}

void ns_stack_unhandle_udp(struct ns_stack *ns, const struct base_addr *local, uint16_t port)
{
    unhandle(ns, IP_PROTO_UDP, local, port);
}

/* ---- closing ---- */

int ns_stack_watch(struct ns_stack *ns, struct ns_stack_watch *w)
{
    if (ns->state != NS_STACK_OPEN)
        return BASE_ECLOSING;
    base_list_push_back(&ns->watches, &w->link);
    return 0;
}

void ns_stack_unwatch(struct ns_stack_watch *w)
{
    base_list_remove(&w->link);
}

/* Each watch leaves the list before it runs: it may unwatch others, or free itself. */
static void run_watches(struct ns_stack *ns)
{
    struct base_list todo, *first;
    ns_list_take_all(&todo, &ns->watches);
    while ((first = base_list_first(&todo))) {
        struct ns_stack_watch *w = container_of(first, struct ns_stack_watch, link);
        base_list_remove(&w->link);
        w->on_closing(w, ns);
    }
}

static void remove_handlers(struct ns_stack *ns)
{
    struct base_list *first;
    while ((first = base_list_first(&ns->handlers))) {
        base_list_remove(first);
        free(container_of(first, struct ns_handler, link));
    }
}

void ns_stack_close(struct ns_stack *ns, void (*on_closed)(void *arg), void *arg)
{
    if (!ns || ns->state != NS_STACK_OPEN)
        return;
    ns->state = NS_STACK_CLOSING;
    ns->on_closed = on_closed;
    ns->on_closed_arg = arg;
    ns_enter();
    run_watches(ns);
    remove_handlers(ns);
    ns_tcp_close_listeners(ns, true);
    /* Holders hear of it while the netifs still carry the RSTs of their conns out. */
    ns_tcp_stack_closing(ns);
    ns_mem_stack_closing(ns);
    ns_udp_stack_closing(ns);
    ns_ping_stack_closing(ns);
    ns_queue_purge(ns);
    for (int i = 0; i < ns->n_extra; i++)
        netif_remove(&ns->extra[i]);
    netif_remove(&ns->netif);
    ns_stacks_remove(ns);
    uv_timer_stop(&ns->timer); /* the next stack, if any, drives lwIP's timeouts now */
    ns->state = NS_STACK_DRAINING;
    ns_leave();
    ns_stack_maybe_done(ns);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ns_stack *ns = container_of((uv_timer_t *)h, struct ns_stack, timer);
    void (*on_closed)(void *arg) = ns->on_closed;
    void *arg = ns->on_closed_arg;
    free(ns->scratch);
    free(ns);
    if (on_closed)
        on_closed(arg);
}

void ns_stack_maybe_done(struct ns_stack *ns)
{
    if (ns->state != NS_STACK_DRAINING || !base_list_empty(&ns->conns) ||
        !base_list_empty(&ns->udps) || ns->ping_timers)
        return;
    ns->state = NS_STACK_CLOSED;
    uv_close((uv_handle_t *)&ns->timer, on_timer_closed);
}
