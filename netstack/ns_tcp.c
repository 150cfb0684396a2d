/* TCP: connections above raw lwIP pcbs, listeners created on demand for inbound SYNs. */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);

/* Tell a paused writer to go on once this much is free: enough to be worth a wake-up. */
#define NS_WRITABLE_MIN(ns) ((ns)->cfg.tcp_snd_buf / 16)
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
static void on_err(void *arg, err_t err);

static void unlink_conn(ns_conn *c)
{
    ns_stack *ns = c->ns;
    if (c->prev)
        c->prev->next = c->next;
    else
        ns->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ns->ctr.tcp_open--;
}

static void free_held(ns_conn *c)
{
    while (c->held) {
        struct pbuf *p = c->held;
        c->held = p->next;
        p->next = NULL;
        p->tot_len = p->len;
        pbuf_free(p);
    }
    c->held_tail = NULL;
}

static void detach(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
}

/* The user let go of c: close or reset its pcb and free it. ERR_ABRT when the pcb is gone. */
static err_t do_release(ns_conn *c)
{
    err_t rv = ERR_OK;
    struct tcp_pcb *pcb = c->pcb;
    if (pcb) {
        detach(pcb);
        if (c->release_reset || !c->connected) {
            tcp_abort(pcb);
            rv = ERR_ABRT;
        } else {
            /* lwIP answers a close with unread bytes by RST; the user has read all it wants. */
            while (pcb->rcv_wnd < TCP_WND_MAX(pcb)) {
                u32_t gap = TCP_WND_MAX(pcb) - pcb->rcv_wnd;
                tcp_recved(pcb, (u16_t)(gap > 0xffff ? 0xffff : gap));
            }
            if (tcp_close(pcb) != ERR_OK) {
                tcp_abort(pcb);
                rv = ERR_ABRT;
            }
        }
        c->pcb = NULL;
    }
    free_held(c);
    unlink_conn(c);
    free(c);
    return rv;
}

static ns_conn *conn_new(ns_stack *ns, struct tcp_pcb *pcb)
{
    ns_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ns = ns;
    c->pcb = pcb;
    c->next = ns->conns;
    if (ns->conns)
        ns->conns->prev = c;
    ns->conns = c;
    ns->ctr.tcp_open++;
    /* No Nagle: writers hand over whole reads already, and lwIP 2.1.3's tcp_output leaves a
   * pending ACK unsent when Nagle holds back a short segment, stalling both directions
   * until the delayed-ACK timer. */
    tcp_nagle_disable(pcb);
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    return c;
}

static void set_endpoints(ns_conn *c)
{
    ns_addr_from_lwip(&c->local.addr, &c->pcb->local_ip);
    c->local.port = c->pcb->local_port;
    ns_addr_from_lwip(&c->remote.addr, &c->pcb->remote_ip);
    c->remote.port = c->pcb->remote_port;
}

/* Shrink lwIP's compile-time window to the configured one without moving the right edge back. */
static void size_buffers(ns_stack *ns, struct tcp_pcb *pcb)
{
    if (pcb->rcv_wnd > ns->cfg.tcp_rcv_wnd)
        pcb->rcv_wnd = ns->cfg.tcp_rcv_wnd;
    if (pcb->snd_buf > ns->cfg.tcp_snd_buf)
        pcb->snd_buf = ns->cfg.tcp_snd_buf;
}

/* Hand held bytes to the user while it reads; then the FIN if one came. */
static void flush(ns_conn *c)
{
    while (c->held && !c->paused && !c->released) {
        struct pbuf *p = c->held;
        c->held = p->next;
        if (!c->held)
            c->held_tail = NULL;
        p->next = NULL;
        p->tot_len = p->len;
        if (p->len && c->cbs.on_read) {
            c->in_cb++;
            c->cbs.on_read(c, p->payload, p->len);
            c->in_cb--;
        }
        pbuf_free(p);
    }
    if (!c->held && c->eof_pending && !c->paused && !c->released) {
        c->eof_pending = 0;
        c->eof_seen = 1;
        if (c->cbs.on_read) {
            c->in_cb++;
            c->cbs.on_read(c, NULL, 0);
            c->in_cb--;
        }
    }
}

static err_t after_cb(ns_conn *c)
{
    if (c->released && !c->in_cb)
        return do_release(c);
    return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    ns_conn *c = arg;
    (void)err;
    if (!c) {
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) {
        c->eof_pending = 1;
    } else {
        /* Our own list (not pbuf_cat): held bytes may pass lwIP's 16-bit tot_len. */
        c->ns->ctr.tcp_bytes_rx += p->tot_len;
        struct pbuf *tail = p;
        while (tail->next)
            tail = tail->next;
        if (c->held)
            c->held_tail->next = p;
        else
            c->held = p;
        c->held_tail = tail;
    }
    if (!c->in_cb)
        flush(c);
    return after_cb(c);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    ns_conn *c = arg;
    (void)len;
    if (!c || !c->want_writable || c->released)
        return ERR_OK;
    size_t min = c->snd_limit ? c->snd_limit / 4 : NS_WRITABLE_MIN(c->ns);
    if (ns_conn_write_space(c) < min && pcb->unacked)
        return ERR_OK;
    c->want_writable = 0;
    if (c->cbs.on_writable) {
        c->in_cb++;
        c->cbs.on_writable(c);
        c->in_cb--;
    }
    return after_cb(c);
}

static int map_err(ns_conn *c, err_t err)
{
    if (c->abort_reason)
        return c->abort_reason;
    switch (err) {
    case ERR_RST:
        return (c->outbound && !c->connected) ? NS_EREFUSED : NS_ERESET;
    case ERR_ABRT:
        return NS_ETIMEDOUT; /* we never abort without a reason: retransmissions */
    case ERR_CLSD:
        return NS_ECLOSED;
    case ERR_MEM:
        return NS_ENOMEM;
    default:
        return NS_ERESET;
    }
}

static void on_err(void *arg, err_t err)
{
    ns_conn *c = arg;
    if (!c)
        return;
    c->pcb = NULL; /* lwIP freed it */
    c->dead_err = map_err(c, err);
    free_held(c);
    c->in_cb++;
    if (c->outbound && !c->connected) {
        if (c->cbs.on_connect)
            c->cbs.on_connect(c, c->dead_err);
    } else if (c->cbs.on_error) {
        c->cbs.on_error(c, c->dead_err);
    }
    c->in_cb--;
    after_cb(c);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    ns_conn *c = arg;
    (void)pcb;
    (void)err;
    if (!c)
        return ERR_OK;
    c->connected = 1;
    c->ns->ctr.tcp_connected++;
    if (c->cbs.on_connect) {
        c->in_cb++;
        c->cbs.on_connect(c, NS_OK);
        c->in_cb--;
    }
    return after_cb(c);
}

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err)
{
    struct ns_listener *l = arg;
    if (!l || err != ERR_OK || !newpcb)
        return ERR_VAL;
    ns_stack *ns = l->ns;
    struct ns_handler *h = ns_handler_find(ns, IP_PROTO_TCP, &l->local.addr, l->local.port);
    ns_conn *c = NULL;
    if (h && ns->ctr.tcp_open < ns->cfg.max_tcp)
        c = conn_new(ns, newpcb);
    if (!c) {
        ns->ctr.drop_limit += h != NULL;
        tcp_abort(newpcb);
        return ERR_ABRT;
    }
    size_buffers(ns, newpcb);
    set_endpoints(c);
    c->connected = 1;
    ns->ctr.tcp_accepted++;
    c->in_cb++;
    ((ns_tcp_accept_fn)h->fn)(h->ctx, c);
    c->in_cb--;
    return after_cb(c);
}

static struct ns_listener *listener_get(ns_stack *ns, const ns_endpoint *local)
{
    for (struct ns_listener *l = ns->listeners; l; l = l->next)
        if (l->local.port == local->port && l->local.addr.family == local->addr.family &&
            memcmp(l->local.addr.ip, local->addr.ip, 16) == 0)
            return l;
    struct ns_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    ip_addr_t ip;
    ns_addr_to_lwip(&ip, &local->addr);
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&ip));
    if (!pcb) {
        free(l);
        return NULL;
    }
    ip_set_option(pcb, SOF_REUSEADDR);
    /* On the netif that holds the address: an extra address (100.100.100.100) has its own. */
    struct netif *nif = ns_netif_of(&local->addr);
    tcp_bind_netif(pcb, nif ? nif : &ns->netif);
    if (tcp_bind(pcb, &ip, local->port) != ERR_OK) {
        tcp_abort(pcb);
        free(l);
        return NULL;
    }
    u8_t backlog = (u8_t)(ns->cfg.max_pending > 255 ? 255 : ns->cfg.max_pending);
    struct tcp_pcb *lpcb = tcp_listen_with_backlog(pcb, backlog);
    if (!lpcb) {
        tcp_abort(pcb);
        free(l);
        return NULL;
    }
    l->ns = ns;
    l->pcb = lpcb;
    l->local = *local;
    tcp_arg(lpcb, l);
    tcp_accept(lpcb, on_accept);
    l->next = ns->listeners;
    ns->listeners = l;
    return l;
}

/* Half-open inbound pcbs of this stack: count them and find the oldest (lwIP adds at the head). */
static unsigned half_open(ns_stack *ns, struct tcp_pcb **oldest)
{
    unsigned n = 0;
    *oldest = NULL;
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next) {
        if (p->state == SYN_RCVD && ns_stack_has_netif_idx(ns, p->netif_idx)) {
            n++;
            *oldest = p;
        }
    }
    return n;
}

static int conn_exists(const ns_endpoint *local, const ns_endpoint *remote)
{
    ip_addr_t l, r;
    ns_addr_to_lwip(&l, &local->addr);
    ns_addr_to_lwip(&r, &remote->addr);
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
        if (p->local_port == local->port && p->remote_port == remote->port &&
            ip_addr_cmp(&p->local_ip, &l) && ip_addr_cmp(&p->remote_ip, &r))
            return 1;
    return 0;
}

/* A SYN for (local): make sure a listener exists when a handler wants it. 1 = drop the SYN. */
int ns_tcp_prepare_syn(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote)
{
    if (!ns_handler_find(ns, IP_PROTO_TCP, &local->addr, local->port)) {
        ns->ctr.tcp_unhandled++;
        return 0; /* no listener: lwIP answers RST */
    }
    if (conn_exists(local, remote))
        return 0; /* a retransmitted SYN */
    struct tcp_pcb *oldest;
    unsigned pending = half_open(ns, &oldest);
    if (ns->ctr.tcp_open + pending >= ns->cfg.max_tcp) {
        ns->ctr.drop_limit++;
        return 1;
    }
    if (pending >= ns->cfg.max_pending && oldest) {
        ns->ctr.drop_pending++;
        tcp_abort(oldest);
    }
    listener_get(ns, local);
    return 0;
}

void ns_tcp_icmp_error(ns_stack *ns, const ns_endpoint *local, const ns_endpoint *remote, int err)
{
    for (ns_conn *c = ns->conns; c; c = c->next) {
        if (!c->pcb || c->connected || c->local.port != local->port ||
            c->remote.port != remote->port ||
            memcmp(&c->remote.addr, &remote->addr, sizeof(ns_addr)) != 0)
            continue;
        /* RFC 1122 4.2.3.9: only a connection being opened dies of an ICMP error. */
        c->abort_reason = err;
        tcp_abandon(c->pcb, 0); /* no RST into a network that just said it cannot deliver */
        return;
    }
}

void ns_tcp_free_all(ns_stack *ns)
{
    while (ns->conns) {
        ns_conn *c = ns->conns;
        if (c->pcb) {
            detach(c->pcb);
            tcp_abort(c->pcb);
            c->pcb = NULL;
        }
        free_held(c);
        unlink_conn(c);
        free(c);
    }
}

/* ---- the public API ---- */

ns_conn *ns_conn_connect(ns_stack *ns, const ns_endpoint *remote, const struct ns_conn_cbs *cbs,
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
    if (ns->ctr.tcp_open >= ns->cfg.max_tcp) {
        *err = NS_ELIMIT;
        return NULL;
    }
    ip_addr_t lip, rip;
    ns_addr_to_lwip(&lip, src);
    ns_addr_to_lwip(&rip, &remote->addr);
    ns_enter();
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&rip));
    if (!pcb) {
        ns_leave();
        *err = NS_ENOMEM;
        return NULL;
    }
    tcp_bind_netif(pcb, &ns->netif);
    err_t e = ERR_USE;
    for (int i = 0; i < 32 && e != ERR_OK; i++)
        e = tcp_bind(pcb, &lip, ns_random_port());
    ns_conn *c = e == ERR_OK ? conn_new(ns, pcb) : NULL;
    if (!c) {
        tcp_abort(pcb);
        ns_leave();
        *err = e == ERR_OK ? NS_ENOMEM : NS_EADDRINUSE;
        return NULL;
    }
    size_buffers(ns, pcb);
    pcb->rcv_ann_wnd = pcb->rcv_wnd;
    c->outbound = 1;
    c->cbs = *cbs;
    c->data = data;
    e = tcp_connect(pcb, &rip, remote->port, on_connected);
    if (e != ERR_OK) {
        c->release_reset = 1;
        do_release(c);
        ns_leave();
        *err = e == ERR_RTE ? NS_EUNREACH : NS_ENOMEM;
        return NULL;
    }
    set_endpoints(c);
    ns_leave();
    *err = NS_OK;
    return c;
}

void ns_conn_set_cbs(ns_conn *c, const struct ns_conn_cbs *cbs, void *data)
{
    c->cbs = *cbs;
    c->data = data;
}

void *ns_conn_data(const ns_conn *c)
{
    return c->data;
}

const ns_endpoint *ns_conn_local(const ns_conn *c)
{
    return &c->local;
}

const ns_endpoint *ns_conn_remote(const ns_conn *c)
{
    return &c->remote;
}

size_t ns_conn_write_space(const ns_conn *c)
{
    if (!c->pcb || c->released)
        return 0;
    if (tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN - 4)
        return 0;
    size_t space = tcp_sndbuf(c->pcb);
    if (!c->snd_limit)
        return space;
    size_t queued = (u32_t)(c->pcb->snd_lbb - c->pcb->lastack); /* written, not yet acked */
    if (queued >= c->snd_limit)
        return 0;
    return space < c->snd_limit - queued ? space : c->snd_limit - queued;
}

void ns_conn_set_send_limit(ns_conn *c, size_t bytes)
{
    c->snd_limit = bytes;
}

ssize_t ns_conn_write(ns_conn *c, const void *data, size_t len)
{
    if (c->released)
        return NS_ECLOSED;
    if (!c->pcb)
        return c->dead_err ? c->dead_err : NS_ECLOSED;
    if (c->pcb->state != ESTABLISHED && c->pcb->state != CLOSE_WAIT)
        return c->connected ? NS_ECLOSED : 0;
    ns_enter();
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        size_t space = ns_conn_write_space(c);
        size_t n = len - done;
        if (n > space)
            n = space;
        if (n > 0xffff)
            n = 0xffff;
        if (n == 0)
            break;
        u8_t flags = TCP_WRITE_FLAG_COPY | (done + n < len ? TCP_WRITE_FLAG_MORE : 0);
        if (tcp_write(c->pcb, p + done, (u16_t)n, flags) != ERR_OK)
            break;
        done += n;
    }
    if (done < len)
        c->want_writable = 1;
    c->ns->ctr.tcp_bytes_tx += done;
    tcp_output(c->pcb);
    ns_leave();
    return (ssize_t)done;
}

void ns_conn_consumed(ns_conn *c, size_t n)
{
    if (!c->pcb || c->released)
        return;
    ns_enter();
    while (n > 0) {
        size_t k = n > 0xffff ? 0xffff : n;
        tcp_recved(c->pcb, (u16_t)k);
        n -= k;
    }
    ns_leave();
}

void ns_conn_read_pause(ns_conn *c, int paused)
{
    c->paused = paused;
    if (paused || c->in_cb || c->released)
        return;
    ns_enter();
    flush(c);
    if (c->released && !c->in_cb)
        do_release(c);
    ns_leave();
}

int ns_conn_shutdown(ns_conn *c)
{
    if (!c->pcb || c->released)
        return c->dead_err ? c->dead_err : NS_ECLOSED;
    ns_enter();
    err_t e = tcp_shutdown(c->pcb, 0, 1);
    ns_leave();
    return e == ERR_OK ? NS_OK : NS_ECLOSED;
}

static void release(ns_conn *c, int reset)
{
    if (c->released)
        return;
    c->released = 1;
    c->release_reset = reset;
    if (c->in_cb)
        return; /* the callback wrapper finishes the job and tells lwIP */
    ns_enter();
    do_release(c);
    ns_leave();
}

void ns_conn_close(ns_conn *c)
{
    release(c, 0);
}

void ns_conn_reset(ns_conn *c)
{
    release(c, 1);
}

unsigned ns_stack_tcp_lingering(const ns_stack *ns)
{
    unsigned n = 0;
    u8_t idx = netif_get_index(&((ns_stack *)ns)->netif);
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next) {
        if (p->netif_idx != idx || p->callback_arg)
            continue;
        if (p->state == FIN_WAIT_1 || p->state == FIN_WAIT_2 || p->state == CLOSING ||
            p->state == LAST_ACK || p->state == ESTABLISHED || p->state == CLOSE_WAIT)
            n++;
    }
    return n;
}
