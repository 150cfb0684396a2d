/* UDP: one connected lwIP pcb per flow (local endpoint, remote endpoint). */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/udp.h"

static void flow_free(ns_udp *u)
{
    ns_stack *ns = u->ns;
    if (u->pcb)
        udp_remove(u->pcb);
    if (u->prev)
        u->prev->next = u->next;
    else
        ns->udps = u->next;
    if (u->next)
        u->next->prev = u->prev;
    ns->ctr.udp_open--;
    free(u);
}

static void on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                    u16_t port)
{
    ns_udp *u = arg;
    (void)pcb;
    (void)addr;
    (void)port;
    if (!u || u->released || !u->cbs.on_recv) {
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
    if (u->released && !u->in_cb)
        flow_free(u);
}

static ns_udp *flow_new(ns_stack *ns, const ip_addr_t *lip, uint16_t lport, const ip_addr_t *rip,
                        uint16_t rport, int *err)
{
    if (ns->ctr.udp_open >= ns->cfg.max_udp) {
        *err = NS_ELIMIT;
        return NULL;
    }
    ns_udp *u = calloc(1, sizeof(*u));
    struct udp_pcb *pcb = u ? udp_new_ip_type(IP_GET_TYPE(rip)) : NULL;
    if (!pcb) {
        free(u);
        *err = NS_ENOMEM;
        return NULL;
    }
    /* Flows from different peers share a local port, each its own connected pcb. */
    ip_set_option(pcb, SOF_REUSEADDR);
    /* Bound to the netif of its local address: lwIP sends a reply only from a netif that holds
   * the pcb's address, and 100.100.100.100 lives on an extra netif. */
    ns_addr local;
    ns_addr_from_lwip(&local, lip);
    struct netif *nif = local.family ? ns_netif_of(&local) : NULL;
    udp_bind_netif(pcb, nif ? nif : &ns->netif);
    err_t e = ERR_USE;
    if (lport) {
        e = udp_bind(pcb, lip, lport);
    } else {
        for (int i = 0; i < 32 && e != ERR_OK; i++) {
            /* Outbound flows get a port nobody else on this address uses yet. */
            lport = ns_random_port();
            int used = 0;
            for (struct udp_pcb *q = udp_pcbs; q && !used; q = q->next)
                used = q->local_port == lport && ip_addr_cmp(&q->local_ip, lip);
            if (!used)
                e = udp_bind(pcb, lip, lport);
        }
    }
    if (e != ERR_OK || udp_connect(pcb, rip, rport) != ERR_OK) {
        udp_remove(pcb);
        free(u);
        *err = NS_EADDRINUSE;
        return NULL;
    }
    u->ns = ns;
    u->pcb = pcb;
    ns_addr_from_lwip(&u->local.addr, lip);
    u->local.port = lport;
    ns_addr_from_lwip(&u->remote.addr, rip);
    u->remote.port = rport;
    udp_recv(pcb, on_recv, u);
    u->next = ns->udps;
    if (ns->udps)
        ns->udps->prev = u;
    ns->udps = u;
    ns->ctr.udp_open++;
    *err = NS_OK;
    return u;
}

/* A datagram for (local) from (remote): open a flow for it when a handler wants it.
 * 1 = the datagram is dropped. */
int ns_udp_prepare(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote)
{
    for (ns_udp *u = ns->udps; u; u = u->next)
        if (!u->released && ns_endpoint_equal(&u->local, local) &&
            ns_endpoint_equal(&u->remote, remote))
            return 0;
    struct ns_handler *h = ns_handler_find(ns, IP_PROTO_UDP, &local->addr, local->port);
    if (!h) {
        ns->ctr.udp_unhandled++;
        return 0; /* no pcb: lwIP answers ICMP port unreachable */
    }
    ip_addr_t lip, rip;
    ns_addr_to_lwip(&lip, &local->addr);
    ns_addr_to_lwip(&rip, &remote->addr);
    int err;
    ns_udp *u = flow_new(ns, &lip, local->port, &rip, remote->port, &err);
    if (!u) {
        ns->ctr.drop_limit++;
        return 1;
    }
    ns->ctr.udp_accepted++;
    u->in_cb++;
    ((ns_udp_accept_fn)h->fn)(h->ctx, u);
    u->in_cb--;
    if (u->released) {
        flow_free(u);
        return 1;
    }
    return 0;
}

void ns_udp_icmp_error(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote, int err)
{
    for (ns_udp *u = ns->udps; u; u = u->next) {
        if (u->released || !ns_endpoint_equal(&u->local, local) ||
            !ns_endpoint_equal(&u->remote, remote))
            continue;
        if (u->cbs.on_error) {
            u->in_cb++;
            u->cbs.on_error(u, err);
            u->in_cb--;
        }
        if (u->released && !u->in_cb)
            flow_free(u);
        return;
    }
}

void ns_udp_free_all(ns_stack *ns)
{
    while (ns->udps)
        flow_free(ns->udps);
}

ns_udp *ns_udp_open(ns_stack *ns, const ns_endpoint *remote, const struct ns_udp_cbs *cbs,
                    void *data, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    const ns_addr *src = remote ? ns_stack_addr_for(ns, remote->addr.family) : NULL;
    if (!src || !cbs || !remote->port) {
        *err = NS_EINVAL;
        return NULL;
    }
    ip_addr_t lip, rip;
    ns_addr_to_lwip(&lip, src);
    ns_addr_to_lwip(&rip, &remote->addr);
    ns_enter();
    ns_udp *u = flow_new(ns, &lip, 0, &rip, remote->port, err);
    ns_leave();
    if (u) {
        u->cbs = *cbs;
        u->data = data;
    }
    return u;
}

void ns_udp_set_cbs(ns_udp *u, const struct ns_udp_cbs *cbs, void *data)
{
    u->cbs = *cbs;
    u->data = data;
}

void *ns_udp_data(const ns_udp *u)
{
    return u->data;
}

const ns_endpoint *ns_udp_local(const ns_udp *u)
{
    return &u->local;
}

const ns_endpoint *ns_udp_remote(const ns_udp *u)
{
    return &u->remote;
}

int ns_udp_send(ns_udp *u, const void *data, size_t len)
{
    if (u->released || !u->pcb)
        return NS_ECLOSED;
    if (len > 65535 - 8 - 40)
        return NS_EINVAL;
    ns_enter();
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (!p) {
        ns_leave();
        return NS_ENOMEM;
    }
    pbuf_take(p, data, (u16_t)len);
    err_t e = udp_send(u->pcb, p);
    pbuf_free(p);
    if (e == ERR_OK)
        u->ns->ctr.udp_bytes_tx += len;
    ns_leave();
    if (e == ERR_RTE)
        return NS_EUNREACH;
    return e == ERR_OK ? NS_OK : NS_ENOMEM;
}

void ns_udp_close(ns_udp *u)
{
    if (u->released)
        return;
    u->released = 1;
    if (u->in_cb)
        return;
    ns_enter();
    flow_free(u);
    ns_leave();
}
