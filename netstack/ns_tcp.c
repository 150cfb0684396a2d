/*
 * TCP: connections above raw lwIP pcbs, listeners created on demand for inbound SYNs.
 * A conn's life: CONNECTING (outbound) or OPEN (accepted) -> DEAD once its error is reported
 * (by lwIP, or BASE_ECLOSING when the stack closes) -> freed when the user releases it. A
 * release from inside one of our callbacks marks it RELEASED, and the wrapper around the
 * callback (after_cb) finishes the job when the callback returns.
 * The flow through the file: the conn's memory, lwIP's callbacks (recv, sent, err, connected,
 * accept), listeners and the preparation of a SYN, ICMP errors and the stack's closing, the API.
 */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
static void on_err(void *arg, err_t err);

/* Tell a paused writer to go on once this much is free: enough to be worth a wake-up. */
#define NS_WRITABLE_MIN(ns) ((ns)->cfg.tcp_snd_buf / 16)

static bool released(const struct ns_conn *c)
{
    return c->state == NS_CONN_RELEASED;
}

static void free_held(struct ns_conn *c)
{
    while (c->held) {
        struct pbuf *p = c->held;
        c->held = p->next;
        p->next = NULL;
        ns_mem_held_free(c, p);
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

static void unhold_ack(struct ns_conn *c);

static void conn_free(struct ns_conn *c)
{
    struct ns_stack *ns = c->ns;
    free_held(c);
    unhold_ack(c);
    c->pcb = NULL;
    ns_mem_sync(c);
    base_list_remove(&c->link);
    ns->ctr.tcp_open--;
    free(c);
    ns_stack_maybe_done(ns);
}

/* Lets go of a graceful pcb: lwIP takes a window short of its whole as a sign of unread bytes
 * and answers the close by RST, while ours is short by design (the budget) and the user has
 * read all it wants. So the window is made whole here, and announced once, by the FIN:
 * tcp_recved takes at most 64 KiB a call and announces every eighth of TCP_WND, which cost
 * seven window updates through the peer per closed conn, queued before the next conn's SYN.
 * ERR_ABRT when the pcb had to be aborted. */
static err_t close_pcb(struct tcp_pcb *pcb)
{
    pcb->rcv_wnd = TCP_WND_MAX(pcb);
    pcb->rcv_ann_wnd = pcb->rcv_wnd;
    if (tcp_close(pcb) == ERR_OK)
        return ERR_OK;
    tcp_abort(pcb);
    return ERR_ABRT;
}

/* The user let go of c: close or reset its pcb and free it. ERR_ABRT when the pcb is gone. */
static err_t do_release(struct ns_conn *c)
{
    err_t rv = ERR_OK;
    struct tcp_pcb *pcb = c->pcb;
    if (pcb) {
        detach(pcb);
        c->pcb = NULL;
        if (c->release == NS_RELEASE_RESET) {
            tcp_abort(pcb);
            rv = ERR_ABRT;
        } else {
            rv = close_pcb(pcb);
        }
    }
    conn_free(c);
    return rv;
}

static struct ns_conn *conn_new(struct ns_stack *ns, struct tcp_pcb *pcb, enum ns_conn_state st)
{
    struct ns_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ns = ns;
    c->pcb = pcb;
    c->state = st;
    base_list_push_front(&ns->conns, &c->link);
    ns->ctr.tcp_open++;
    /* No Nagle: writers hand over whole reads already, and lwIP 2.1.3's tcp_output leaves a
     * pending ACK unsent when Nagle holds back a short segment, stalling both directions
     * until the delayed-ACK timer. */
    tcp_nagle_disable(pcb);
    if (ns->cfg.keepalive_idle_ms != UINT32_MAX) {
        ip_set_option(pcb, SOF_KEEPALIVE);
        pcb->keep_idle = ns->cfg.keepalive_idle_ms;
        pcb->keep_intvl = ns->cfg.keepalive_intvl_ms;
        pcb->keep_cnt = ns->cfg.keepalive_cnt;
    }
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    return c;
}

static void set_endpoints(struct ns_conn *c)
{
    ns_addr_from_lwip(&c->local.addr, &c->pcb->local_ip);
    c->local.port = c->pcb->local_port;
    ns_addr_from_lwip(&c->remote.addr, &c->pcb->remote_ip);
    c->remote.port = c->pcb->remote_port;
}

/* ---- lwIP's callbacks ---- */

/* Hand held bytes to the user while it reads; then the FIN if one came. */
static void flush(struct ns_conn *c)
{
    while (c->held && !c->paused && !released(c)) {
        struct pbuf *p = c->held;
        if (p == c->held_tail)
            c->chunk_room = 0; /* the user's read must not see bytes appended meanwhile */
        c->held = p->next;
        if (!c->held)
            c->held_tail = NULL;
        p->next = NULL;
        if (p->len && c->cbs.on_read) {
            c->in_cb++;
            c->cbs.on_read(c, p->payload, p->len);
            c->in_cb--;
        }
        ns_mem_held_free(c, p);
    }
    if (!c->held && c->eof_pending && !c->paused && !released(c)) {
        c->eof_pending = false;
        if (c->cbs.on_read) {
            c->in_cb++;
            c->cbs.on_read(c, NULL, 0);
            c->in_cb--;
        }
    }
}

static err_t after_cb(struct ns_conn *c)
{
    if (released(c) && !c->in_cb)
        return do_release(c);
    return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct ns_conn *c = arg;
    (void)err;
    if (!c) {
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) {
        c->eof_pending = true;
    } else {
        /* Our own list (not pbuf_cat): held bytes may pass lwIP's 16-bit tot_len. */
        c->ns->ctr.tcp_bytes_rx += p->tot_len;
        ns_tune_rcv_measure(c);
        ns_mem_hold(c, p);
    }
    if (!c->in_cb)
        flush(c);
    if (!released(c))
        ns_mem_sync(c);
    return after_cb(c);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    struct ns_conn *c = arg;
    (void)len;
    if (!c || released(c))
        return ERR_OK;
    ns_mem_sync(c); /* the acknowledged bytes left the send queue */
    if (!c->want_writable)
        return ERR_OK;
    /* A quarter of what may be queued, which grows with the connection (ns_tune.c). */
    size_t min = ns_mem_snd_cap(c) / 4;
    min = min < NS_WRITABLE_MIN(c->ns) ? min : NS_WRITABLE_MIN(c->ns);
    if (ns_conn_write_space(c) < min && pcb->unacked)
        return ERR_OK;
    c->want_writable = false;
    if (c->cbs.on_writable) {
        c->in_cb++;
        c->cbs.on_writable(c);
        c->in_cb--;
    }
    return after_cb(c);
}

static int map_err(struct ns_conn *c, err_t err)
{
    if (c->abort_reason)
        return c->abort_reason;
    switch (err) {
    case ERR_RST:
        return c->state == NS_CONN_CONNECTING ? -ECONNREFUSED : -ECONNRESET;
    case ERR_ABRT:
        return -ETIMEDOUT; /* we never abort without a reason: retransmissions */
    case ERR_CLSD:
        return -EPIPE;
    case ERR_MEM:
        return -ENOMEM;
    default:
        return -ECONNRESET;
    }
}

/* c's pcb is gone (freed by lwIP, or aborted by us with abort_reason set): report err once,
 * through on_connect while connecting, else on_error. The conn waits for its release. */
static void report_death(struct ns_conn *c, int err)
{
    c->pcb = NULL;
    c->dead_err = err;
    free_held(c);
    ns_mem_sync(c);
    if (released(c)) { /* released inside a callback of ours: nobody to tell */
        after_cb(c);
        return;
    }
    bool connecting = c->state == NS_CONN_CONNECTING;
    c->state = NS_CONN_DEAD;
    c->in_cb++;
    if (connecting && c->cbs.on_connect)
        c->cbs.on_connect(c, err);
    else if (!connecting && c->cbs.on_error)
        c->cbs.on_error(c, err);
    c->in_cb--;
    after_cb(c);
}

static void on_err(void *arg, err_t err)
{
    struct ns_conn *c = arg;
    if (c)
        report_death(c, map_err(c, err));
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct ns_conn *c = arg;
    (void)pcb;
    (void)err;
    if (!c)
        return ERR_OK;
    c->state = NS_CONN_OPEN;
    c->ns->ctr.tcp_connected++;
    ns_mem_size_conn(c); /* lwIP just set the window; the ACK that announces it is still to go */
    if (c->cbs.on_connect) {
        c->in_cb++;
        c->cbs.on_connect(c, 0);
        c->in_cb--;
    }
    return after_cb(c);
}

/* ---- ACKs that wait for a segment to carry them ----
 * Two ACKs lwIP would send alone wait instead (lwIP patches 0007 and 0008), as Linux's do:
 * the handshake's last ACK of a conn we dialled, for its first data segment (the proxy's
 * client sends its request within a fraction of a millisecond of the success reply), and the
 * ACK of a peer's FIN, for our own FIN (the user closes once it has seen the end). Each lone
 * ACK was one packet in ten of a short connection through the peer. One that nothing carried
 * leaves alone after NS_ACK_HOLD_MS (a server that speaks first waits that long for the
 * handshake): one timeout for all the conns held, so one held just before it fires waits
 * less. */

static void send_held_acks(void *arg)
{
    struct ns_stack *ns = arg;
    ns->acks_armed = false;
    struct base_list *pos;
    while ((pos = base_list_first(&ns->acks_held))) {
        struct ns_conn *c = container_of(pos, struct ns_conn, ack_link);
        base_list_remove(pos);
        if (c->pcb && (c->pcb->flags & TF_ACK_DELAY)) { /* no segment carried it yet */
            tcp_ack_now(c->pcb);
            tcp_output(c->pcb);
        }
    }
}

int ns_hook_hold_ack(struct tcp_pcb *pcb)
{
    struct ns_conn *c = pcb->callback_arg; /* NULL once the user let go */
    if (!c || c->state != NS_CONN_OPEN)
        return 0;
    struct ns_stack *ns = c->ns;
    if (!base_list_linked(&c->ack_link))
        base_list_push_back(&ns->acks_held, &c->ack_link);
    if (!ns->acks_armed) {
        ns->acks_armed = true;
        sys_timeout(NS_ACK_HOLD_MS, send_held_acks, ns);
    }
    return 1;
}

/* The conn's held ACK no longer waits: a segment carried it, or the conn is going. The
 * timeout goes with the last one, so that a node that goes idle once its ACKs have all left
 * with data does not wake 1 ms later for nothing. */
static void unhold_ack(struct ns_conn *c)
{
    if (!base_list_linked(&c->ack_link))
        return;
    base_list_remove(&c->ack_link);
    struct ns_stack *ns = c->ns;
    if (ns->acks_armed && base_list_empty(&ns->acks_held)) {
        sys_untimeout(send_held_acks, ns);
        ns->acks_armed = false;
    }
}

/* After our own output: whether it carried the conn's held ACK. */
static void ack_maybe_sent(struct ns_conn *c)
{
    if (!c->pcb || !(c->pcb->flags & TF_ACK_DELAY))
        unhold_ack(c);
}

/* The stack is going: held ACKs no longer matter. */
static void forget_held_acks(struct ns_stack *ns)
{
    struct base_list *pos;
    while ((pos = base_list_first(&ns->acks_held)))
        unhold_ack(container_of(pos, struct ns_conn, ack_link));
}

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err)
{
    struct ns_listener *l = arg;
    if (!l || err != ERR_OK || !newpcb)
        return ERR_VAL;
    struct ns_stack *ns = l->ns;
    struct ns_handler *h = ns_handler_find(ns, IP_PROTO_TCP, &l->local.addr, l->local.port);
    struct ns_conn *c = NULL;
    if (h && ns->ctr.tcp_open < ns->cfg.max_tcp)
        c = conn_new(ns, newpcb, NS_CONN_OPEN);
    if (!c) {
        ns->ctr.drop_limit += h != NULL;
        tcp_abort(newpcb);
        return ERR_ABRT;
    }
    ns_mem_size_conn(c);
    set_endpoints(c);
    ns->ctr.tcp_accepted++;
    c->in_cb++;
    ((ns_tcp_accept_fn)h->fn)(h->ctx, c);
    c->in_cb--;
    return after_cb(c);
}

/* ---- listeners and SYNs ---- */

static struct tcp_pcb *listen_pcb(struct ns_stack *ns, const struct base_endpoint *local)
{
    ip_addr_t ip;
    ns_addr_to_lwip(&ip, &local->addr);
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&ip));
    if (!pcb)
        return NULL;
    ip_set_option(pcb, SOF_REUSEADDR);
    /* On the netif that holds the address: an extra address (100.100.100.100) has its own. */
    struct netif *nif = ns_netif_of(&local->addr);
    tcp_bind_netif(pcb, nif ? nif : &ns->netif);
    if (tcp_bind(pcb, &ip, local->port) != ERR_OK) {
        tcp_abort(pcb);
        return NULL;
    }
    u8_t backlog = (u8_t)(ns->cfg.max_pending > 255 ? 255 : ns->cfg.max_pending);
    struct tcp_pcb *lpcb = tcp_listen_with_backlog(pcb, backlog);
    if (!lpcb)
        tcp_abort(pcb);
    return lpcb;
}

static struct ns_listener *listener_get(struct ns_stack *ns, const struct base_endpoint *local)
{
    struct base_list *pos;
    base_list_foreach (pos, &ns->listeners) {
        struct ns_listener *l = container_of(pos, struct ns_listener, link);
        if (base_endpoint_equal(&l->local, local))
            return l;
    }
    struct ns_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->pcb = listen_pcb(ns, local);
    if (!l->pcb) {
        free(l);
        return NULL;
    }
    l->ns = ns;
    l->local = *local;
    tcp_arg(l->pcb, l);
    tcp_accept(l->pcb, on_accept);
    base_list_push_front(&ns->listeners, &l->link);
    return l;
}

void ns_tcp_close_listeners(struct ns_stack *ns, bool all)
{
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &ns->listeners) {
        struct ns_listener *l = container_of(pos, struct ns_listener, link);
        if (!all && ns_handler_find(ns, IP_PROTO_TCP, &l->local.addr, l->local.port))
            continue;
        base_list_remove(&l->link);
        tcp_arg(l->pcb, NULL);
        tcp_close(l->pcb);
        free(l);
    }
}

/* Half-open inbound pcbs of this stack: count them and find the oldest (lwIP adds at the head). */
static unsigned half_open(struct ns_stack *ns, struct tcp_pcb **oldest)
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

static bool conn_exists(const struct base_endpoint *local, const struct base_endpoint *remote)
{
    ip_addr_t l, r;
    ns_addr_to_lwip(&l, &local->addr);
    ns_addr_to_lwip(&r, &remote->addr);
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
        if (p->local_port == local->port && p->remote_port == remote->port &&
            ip_addr_cmp(&p->local_ip, &l) && ip_addr_cmp(&p->remote_ip, &r))
            return true;
    return false;
}

/* A SYN for (local): make sure a listener exists when a handler wants it. 1 = drop the SYN. */
int ns_tcp_prepare_syn(struct ns_stack *ns, const struct base_endpoint *local,
                       const struct base_endpoint *remote)
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

/* ---- ICMP errors, the stack's closing ---- */

void ns_tcp_icmp_error(struct ns_stack *ns, const struct base_endpoint *local,
                       const struct base_endpoint *remote, int err)
{
    struct base_list *pos;
    base_list_foreach (pos, &ns->conns) {
        struct ns_conn *c = container_of(pos, struct ns_conn, link);
        if (!c->pcb || c->state != NS_CONN_CONNECTING || c->local.port != local->port ||
            !base_endpoint_equal(&c->remote, remote))
            continue;
        /* RFC 1122 4.2.3.9: only a connection being opened dies of an ICMP error. */
        c->abort_reason = err;
        tcp_abandon(c->pcb, 0); /* no RST into a network that just said it cannot deliver */
        return;
    }
}

/* Every conn still held hears BASE_ECLOSING; the ones that are dead already heard their error.
 * A callback may release any conn, so the list is taken apart one conn at a time. */
void ns_tcp_stack_closing(struct ns_stack *ns)
{
    forget_held_acks(ns);
    struct base_list todo, *first;
    ns_list_take_all(&todo, &ns->conns);
    while ((first = base_list_first(&todo))) {
        struct ns_conn *c = container_of(first, struct ns_conn, link);
        base_list_remove(&c->link);
        base_list_push_back(&ns->conns, &c->link);
        if (!c->pcb)
            continue;
        struct tcp_pcb *pcb = c->pcb;
        detach(pcb);
        tcp_abort(pcb); /* the peer gets a RST while the netif is still there */
        report_death(c, BASE_ECLOSING);
    }
    /* Conns the user closed that lwIP still delivers, and TIME_WAIT: cut them loose. */
    for (int pass = 0; pass < 2; pass++) {
        struct tcp_pcb *list = pass ? tcp_tw_pcbs : tcp_active_pcbs;
        for (struct tcp_pcb *p = list, *next; p; p = next) {
            next = p->next;
            if (ns_stack_has_netif_idx(ns, p->netif_idx)) {
                tcp_arg(p, NULL);
                tcp_abort(p);
            }
        }
    }
}

/* ---- the API ---- */

static int connect_check(struct ns_stack *ns, const struct base_endpoint *remote,
                         const struct ns_conn_cbs *cbs, const struct base_addr **src)
{
    if (ns->state != NS_STACK_OPEN)
        return BASE_ECLOSING;
    *src = remote ? ns_stack_addr_for(ns, remote->addr.family) : NULL;
    if (!*src || !cbs || !remote->port)
        return -EINVAL;
    if (ns->ctr.tcp_open >= ns->cfg.max_tcp)
        return BASE_ELIMIT;
    return 0;
}

/* A pcb bound to src and a free random port, wrapped in a new conn. */
static int connect_bind(struct ns_stack *ns, const struct base_addr *src, const ip_addr_t *rip,
                        struct ns_conn **out)
{
    ip_addr_t lip;
    ns_addr_to_lwip(&lip, src);
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(rip));
    if (!pcb)
        return -ENOMEM;
    tcp_bind_netif(pcb, &ns->netif);
    err_t e = ERR_USE;
    for (int i = 0; i < 32 && e != ERR_OK; i++)
        e = tcp_bind(pcb, &lip, ns_random_port());
    *out = e == ERR_OK ? conn_new(ns, pcb, NS_CONN_CONNECTING) : NULL;
    if (!*out) {
        tcp_abort(pcb);
        return e == ERR_OK ? -ENOMEM : -EADDRINUSE;
    }
    ns_mem_sync(*out); /* the SYN's window (64 KiB); sized once connected */
    return 0;
}

int ns_conn_connect(struct ns_stack *ns, const struct base_endpoint *remote,
                    const struct ns_conn_cbs *cbs, void *data, struct ns_conn **out)
{
    const struct base_addr *src;
    *out = NULL;
    int rc = connect_check(ns, remote, cbs, &src);
    if (rc != 0)
        return rc;
    ip_addr_t rip;
    ns_addr_to_lwip(&rip, &remote->addr);
    struct ns_conn *c;
    ns_enter();
    rc = connect_bind(ns, src, &rip, &c);
    if (rc != 0) {
        ns_leave();
        return rc;
    }
    c->outbound = true;
    c->cbs = *cbs;
    c->data = data;
    err_t e = tcp_connect(c->pcb, &rip, remote->port, on_connected);
    if (e != ERR_OK) {
        c->release = NS_RELEASE_RESET;
        do_release(c);
        ns_leave();
        return e == ERR_RTE ? -ENETUNREACH : -ENOMEM;
    }
    set_endpoints(c);
    ns_leave();
    *out = c;
    return 0;
}

void ns_conn_set_cbs(struct ns_conn *c, const struct ns_conn_cbs *cbs, void *data)
{
    c->cbs = *cbs;
    c->data = data;
}

void *ns_conn_data(const struct ns_conn *c)
{
    return c->data;
}

const struct base_endpoint *ns_conn_local(const struct ns_conn *c)
{
    return &c->local;
}

const struct base_endpoint *ns_conn_remote(const struct ns_conn *c)
{
    return &c->remote;
}

size_t ns_conn_write_space(const struct ns_conn *c)
{
    if (!c->pcb || released(c))
        return 0;
    if (tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN - 4)
        return 0;
    size_t space = tcp_sndbuf(c->pcb);
    size_t cap = ns_mem_snd_cap(c);
    size_t queued = (u32_t)(c->pcb->snd_lbb - c->pcb->lastack); /* written, not yet acked */
    if (queued >= cap)
        return 0;
    return space < cap - queued ? space : cap - queued;
}

void ns_conn_set_send_limit(struct ns_conn *c, size_t bytes)
{
    c->snd_limit = bytes;
}

ssize_t ns_conn_write(struct ns_conn *c, const void *data, size_t len)
{
    if (released(c))
        return -EPIPE;
    if (!c->pcb)
        return c->dead_err ? c->dead_err : -EPIPE;
    if (c->pcb->state != ESTABLISHED && c->pcb->state != CLOSE_WAIT)
        return c->state == NS_CONN_CONNECTING ? 0 : -EPIPE;
    ns_enter();
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done, space = ns_conn_write_space(c);
        n = n < space ? n : space;
        n = n < 0xffff ? n : 0xffff;
        if (n == 0)
            break;
        u8_t flags = TCP_WRITE_FLAG_COPY | (done + n < len ? TCP_WRITE_FLAG_MORE : 0);
        if (tcp_write(c->pcb, p + done, (u16_t)n, flags) != ERR_OK)
            break;
        done += n;
    }
    if (done < len)
        c->want_writable = true;
    c->ns->ctr.tcp_bytes_tx += done;
    tcp_output(c->pcb);
    ack_maybe_sent(c);
    ns_mem_sync(c);
    ns_leave();
    return (ssize_t)done;
}

void ns_conn_consumed(struct ns_conn *c, size_t n)
{
    if (!c->pcb || released(c))
        return;
    ns_enter();
    c->debt += n;
    ns_tune_consumed(c, n);
    ns_mem_repay(c);
    ns_leave();
}

void ns_conn_read_pause(struct ns_conn *c, int paused)
{
    c->paused = paused != 0;
    if (paused || c->in_cb || released(c))
        return;
    ns_enter();
    flush(c);
    after_cb(c);
    ns_leave();
}

int ns_conn_shutdown(struct ns_conn *c)
{
    if (!c->pcb || released(c))
        return c->dead_err ? c->dead_err : -EPIPE;
    ns_enter();
    err_t e = tcp_shutdown(c->pcb, 0, 1);
    ack_maybe_sent(c);
    ns_leave();
    return e == ERR_OK ? 0 : -EPIPE;
}

static void release(struct ns_conn *c, enum ns_conn_release how)
{
    if (released(c))
        return;
    /* A handshake under way has nothing to close gracefully. */
    c->release = c->state == NS_CONN_CONNECTING ? NS_RELEASE_RESET : how;
    c->state = NS_CONN_RELEASED;
    if (c->in_cb)
        return; /* the callback wrapper finishes the job and tells lwIP */
    ns_enter();
    do_release(c);
    ns_leave();
}

void ns_conn_close(struct ns_conn *c)
{
    release(c, NS_RELEASE_CLOSE);
}

void ns_conn_reset(struct ns_conn *c)
{
    release(c, NS_RELEASE_RESET);
}

unsigned ns_stack_tcp_lingering(const struct ns_stack *ns)
{
    if (ns->state != NS_STACK_OPEN)
        return 0;
    unsigned n = 0;
    u8_t idx = netif_get_index(&ns->netif);
    for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next) {
        if (p->netif_idx != idx || p->callback_arg)
            continue;
        if (p->state == FIN_WAIT_1 || p->state == FIN_WAIT_2 || p->state == CLOSING ||
            p->state == LAST_ACK || p->state == ESTABLISHED || p->state == CLOSE_WAIT)
            n++;
    }
    return n;
}
