/*
 * UDP: one connected lwIP pcb per flow (local endpoint, remote endpoint). A flow is OPEN until
 * the user releases it; when the stack closes, a flow still held turns DEAD (its pcb removed,
 * BASE_ECLOSING through on_error) and waits for its release. A release from inside one of our
 * callbacks marks it RELEASED and the flow is freed when the callback returns.
 * The flow through the file: a flow's memory, lwIP's receive callback, inbound flows (prepare),
 * ICMP errors and the stack's closing, the API.
 */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/udp.h"

static void flow_free(struct ns_udp *u)
{
    struct ns_stack *ns = u->ns;
    if (u->pcb)
        udp_remove(u->pcb);
    base_list_remove(&u->link);
    ns->ctr.udp_open--;
    free(u);
    ns_stack_maybe_done(ns);
}

/* Runs after a callback to the user: a release made inside it takes effect now. 1 = freed. */
static int after_cb(struct ns_udp *u)
{
    if (u->state != NS_UDP_RELEASED || u->in_cb)
        return 0;
    flow_free(u);
    return 1;
}

static void on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                    u16_t port)
{
    struct ns_udp *u = arg;
    (void)pcb;
    (void)addr;
    (void)port;
    if (!u || u->state != NS_UDP_OPEN || !u->cbs.on_recv) {
        pbuf_free(p);
        return;
    }
    u->ns->ctr.udp_bytes_rx += p->tot_len;
    uint8_t *copy = NULL;
    const uint8_t *data = p->payload;
    if (p->next) {
        copy = malloc(p->tot_len ? p->tot_len : 1);
        if (!copy) {
            pbuf_free(p);
            return;
        }
        pbuf_copy_partial(p, copy, p->tot_len, 0);
        data = copy;
    }
    u->in_cb++;
    u->cbs.on_recv(u, data, p->tot_len);
    u->in_cb--;
    free(copy);
    pbuf_free(p);
    after_cb(u);
}

/* A connected pcb from (lip, lport) to (rip, rport) on the netif of its local address; lport 0:
 * a port nobody else on this address uses yet. */
static int flow_pcb(struct ns_stack *ns, const ip_addr_t *lip, uint16_t *lport,
                    const ip_addr_t *rip, uint16_t rport, struct udp_pcb **out)
{
    struct udp_pcb *pcb = udp_new_ip_type(IP_GET_TYPE(rip));
    if (!pcb)
        return -ENOMEM;
    /* Flows from different peers share a local port, each its own connected pcb. */
    ip_set_option(pcb, SOF_REUSEADDR);
    /* Bound to the netif of its local address: lwIP sends a reply only from a netif that holds
     * the pcb's address, and 100.100.100.100 lives on an extra netif. */
    struct base_addr local;
    ns_addr_from_lwip(&local, lip);
    struct netif *nif = ns_netif_of(&local);
    udp_bind_netif(pcb, nif ? nif : &ns->netif);
    err_t e = ERR_USE;
    if (*lport) {
        e = udp_bind(pcb, lip, *lport);
    } else {
        for (int i = 0; i < 32 && e != ERR_OK; i++) {
            uint16_t port = ns_random_port();
            bool used = false;
            for (struct udp_pcb *q = udp_pcbs; q && !used; q = q->next)
                used = q->local_port == port && ip_addr_cmp(&q->local_ip, lip);
            if (!used && (e = udp_bind(pcb, lip, port)) == ERR_OK)
                *lport = port;
        }
    }
    if (e != ERR_OK || udp_connect(pcb, rip, rport) != ERR_OK) {
        udp_remove(pcb);
        return -EADDRINUSE;
    }
    *out = pcb;
    return 0;
}

static int flow_new(struct ns_stack *ns, const ip_addr_t *lip, uint16_t lport, const ip_addr_t *rip,
                    uint16_t rport, struct ns_udp **out)
{
    *out = NULL;
    if (ns->ctr.udp_open >= ns->cfg.max_udp)
        return BASE_ELIMIT;
    struct ns_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    int rc = flow_pcb(ns, lip, &lport, rip, rport, &u->pcb);
    if (rc != 0) {
        free(u);
        return rc;
    }
    u->ns = ns;
    u->state = NS_UDP_OPEN;
    ns_addr_from_lwip(&u->local.addr, lip);
    u->local.port = lport;
    ns_addr_from_lwip(&u->remote.addr, rip);
    u->remote.port = rport;
    udp_recv(u->pcb, on_recv, u);
    base_list_push_front(&ns->udps, &u->link);
    ns->ctr.udp_open++;
    *out = u;
    return 0;
}

static struct ns_udp *flow_find(struct ns_stack *ns, const struct base_endpoint *local,
                                const struct base_endpoint *remote)
{
    struct base_list *pos;
    base_list_foreach (pos, &ns->udps) {
        struct ns_udp *u = container_of(pos, struct ns_udp, link);
        if (u->state == NS_UDP_OPEN && base_endpoint_equal(&u->local, local) &&
            base_endpoint_equal(&u->remote, remote))
            return u;
    }
    return NULL;
}

/* A datagram for (local) from (remote): open a flow for it when a handler wants it.
 * 1 = the datagram is dropped. */
int ns_udp_prepare(struct ns_stack *ns, const struct base_endpoint *local,
                   const struct base_endpoint *remote)
{
    if (flow_find(ns, local, remote))
        return 0;
    struct ns_handler *h = ns_handler_find(ns, IP_PROTO_UDP, &local->addr, local->port);
    if (!h) {
        ns->ctr.udp_unhandled++;
        return 0; /* no pcb: lwIP answers ICMP port unreachable */
    }
    ip_addr_t lip, rip;
    ns_addr_to_lwip(&lip, &local->addr);
    ns_addr_to_lwip(&rip, &remote->addr);
    struct ns_udp *u;
    if (flow_new(ns, &lip, local->port, &rip, remote->port, &u) != 0) {
        ns->ctr.drop_limit++;
        return 1;
    }
    ns->ctr.udp_accepted++;
    u->in_cb++;
    ((ns_udp_accept_fn)h->fn)(h->ctx, u);
    u->in_cb--;
    return after_cb(u);
}

/* ---- ICMP errors, the stack's closing ---- */

static void tell_error(struct ns_udp *u, int err)
{
    if (u->cbs.on_error) {
        u->in_cb++;
        u->cbs.on_error(u, err);
        u->in_cb--;
    }
    after_cb(u);
}

void ns_udp_icmp_error(struct ns_stack *ns, const struct base_endpoint *local,
                       const struct base_endpoint *remote, int err)
{
    struct ns_udp *u = flow_find(ns, local, remote);
    if (u)
        tell_error(u, err);
}

/* Every flow still held turns DEAD and hears BASE_ECLOSING; a callback may release any flow,
 * so the list is taken apart one flow at a time. */
void ns_udp_stack_closing(struct ns_stack *ns)
{
    struct base_list todo, *first;
    ns_list_take_all(&todo, &ns->udps);
    while ((first = base_list_first(&todo))) {
        struct ns_udp *u = container_of(first, struct ns_udp, link);
        base_list_remove(&u->link);
        base_list_push_back(&ns->udps, &u->link);
        if (u->state != NS_UDP_OPEN)
            continue;
        udp_remove(u->pcb);
        u->pcb = NULL;
        u->state = NS_UDP_DEAD;
        tell_error(u, BASE_ECLOSING);
    }
}

/* ---- the API ---- */

int ns_udp_open(struct ns_stack *ns, const struct base_endpoint *remote,
                const struct ns_udp_cbs *cbs, void *data, struct ns_udp **out)
{
    *out = NULL;
    if (ns->state != NS_STACK_OPEN)
        return BASE_ECLOSING;
    const struct base_addr *src = remote ? ns_stack_addr_for(ns, remote->addr.family) : NULL;
    if (!src || !cbs || !remote->port)
        return -EINVAL;
    ip_addr_t lip, rip;
    ns_addr_to_lwip(&lip, src);
    ns_addr_to_lwip(&rip, &remote->addr);
    ns_enter();
    int rc = flow_new(ns, &lip, 0, &rip, remote->port, out);
    ns_leave();
    if (rc == 0) {
        (*out)->cbs = *cbs;
        (*out)->data = data;
    }
    return rc;
}

void ns_udp_set_cbs(struct ns_udp *u, const struct ns_udp_cbs *cbs, void *data)
{
    u->cbs = *cbs;
    u->data = data;
}

void *ns_udp_data(const struct ns_udp *u)
{
    return u->data;
}

const struct base_endpoint *ns_udp_local(const struct ns_udp *u)
{
    return &u->local;
}

const struct base_endpoint *ns_udp_remote(const struct ns_udp *u)
{
    return &u->remote;
}

int ns_udp_send(struct ns_udp *u, const void *data, size_t len)
{
    if (u->state == NS_UDP_DEAD)
        return BASE_ECLOSING;
    if (u->state == NS_UDP_RELEASED)
        return -EPIPE;
    if (len > 65535 - 8 - 40)
        return -EINVAL;
    ns_enter();
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (!p) {
        ns_leave();
        return -ENOMEM;
    }
    pbuf_take(p, data, (u16_t)len);
    err_t e = udp_send(u->pcb, p);
    pbuf_free(p);
    if (e == ERR_OK)
        u->ns->ctr.udp_bytes_tx += len;
    ns_leave();
    if (e == ERR_RTE)
        return -ENETUNREACH;
    return e == ERR_OK ? 0 : -ENOMEM;
}

void ns_udp_close(struct ns_udp *u)
{
    if (u->state == NS_UDP_RELEASED)
        return;
    u->state = NS_UDP_RELEASED;
    if (u->in_cb)
        return;
    ns_enter();
    flow_free(u);
    ns_leave();
}
