/*
 * TCP memory under the node's budget (ns_config.budget, base_budget in base.h).
 *
 * A conn is charged for what a peer can make it hold: its open receive window (bytes the peer
 * may still send, at the cost a full segment has), the received bytes it holds (at their real
 * allocation size), and its send queue. The receive window only reopens as the user consumes
 * bytes (ns_conn_consumed): under pressure ns_mem_repay gives back less than was consumed, so
 * the window shrinks and the peer slows down, down to a floor of four segments (counting the
 * bytes the conn holds unread, so a paused reader is not refilled over the budget); what was
 * held back is a debt that the repay timeout pays while there is room again. Small received
 * segments are copied into chunks so that a byte held costs about a byte. The out-of-order
 * queue is bounded per conn in segments and bytes (lwipopts.h's hooks below), both shrinking
 * with pressure.
 *
 * The flow through the file: costs, charges, coalescing of held bytes, window and send caps,
 * the repay of window debt, lwIP's out-of-order hooks.
 */
#include "ns_internal.h"

#include <malloc.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

/* A window in flight costs about this much more than its payload (full segments). */
#define WND_COST(n) ((size_t)(n) + (size_t)(n) / 8)
/* Segments worth copying into a chunk: those costing more than 5/4 of their payload. */
#define CHUNK_SIZE 8192
#define REPAY_MS 20

static void repay_timeout(void *arg);

size_t ns_mem_pbuf_cost(const struct pbuf *p)
{
    /* pbufs are malloc'd (MEM_LIBC_MALLOC): the allocation is the real cost. */
    return malloc_usable_size((void *)p) + sizeof(size_t);
}

static size_t floor_wnd(const struct ns_conn *c)
{
    return c->pcb ? 4u * tcp_mss(c->pcb) : 4u * TCP_MSS;
}

/* Brings c's charge in line with its pcb: window, send queue and held bytes. */
void ns_mem_sync(struct ns_conn *c)
{
    struct ns_stack *ns = c->ns;
    size_t want = c->held_cost;
    if (c->pcb) {
        want += WND_COST(c->pcb->rcv_wnd);
        want += WND_COST((u32_t)(c->pcb->snd_lbb - c->pcb->lastack));
    }
    if (want > c->charged) {
        base_budget_charge(ns->cfg.budget, want - c->charged);
        ns->ctr.mem_used += want - c->charged;
    } else {
        base_budget_release(ns->cfg.budget, c->charged - want);
        ns->ctr.mem_used -= c->charged - want;
    }
    c->charged = want;
}

/* ---- held bytes ---- */

void ns_mem_held_free(struct ns_conn *c, struct pbuf *p)
{
    size_t cost = ns_mem_pbuf_cost(p);
    c->held_cost -= cost < c->held_cost ? cost : c->held_cost;
    c->ns->ctr.mem_held -= cost < c->ns->ctr.mem_held ? cost : c->ns->ctr.mem_held;
    if (p == c->held_tail)
        c->chunk_room = 0;
    pbuf_free(p);
}

static void held_append(struct ns_conn *c, struct pbuf *q)
{
    size_t cost = ns_mem_pbuf_cost(q);
    c->held_cost += cost;
    c->ns->ctr.mem_held += cost;
    if (c->held)
        c->held_tail->next = q;
    else
        c->held = q;
    c->held_tail = q;
    c->chunk_room = 0;
}

/* Copies q's bytes into the chunk at the tail (new chunks as needed); q is freed. */
static void held_copy(struct ns_conn *c, struct pbuf *q)
{
    const uint8_t *src = q->payload;
    size_t left = q->len;
    while (left > 0) {
        if (!c->chunk_room) {
            struct pbuf *chunk = pbuf_alloc(PBUF_RAW, CHUNK_SIZE, PBUF_RAM);
            if (!chunk)
                break; /* keep q itself: correct, only dearer */
            chunk->len = chunk->tot_len = 0;
            held_append(c, chunk);
            c->chunk_room = CHUNK_SIZE;
        }
        struct pbuf *t = c->held_tail;
        size_t n = left < c->chunk_room ? left : c->chunk_room;
        memcpy((uint8_t *)t->payload + t->len, src, n);
        t->len = t->tot_len = (u16_t)(t->len + n);
        c->chunk_room -= n;
        src += n;
        left -= n;
    }
    if (left == 0) {
        pbuf_free(q);
        return;
    }
    pbuf_remove_header(q, (size_t)(q->len - left));
    held_append(c, q);
}

/* Takes the chain p lwIP handed over into c's held list, one pbuf at a time. Bytes that will
 * wait (the user paused, or older bytes wait) are copied into chunks when their own buffer
 * costs much more than they do. */
void ns_mem_hold(struct ns_conn *c, struct pbuf *p)
{
    while (p) {
        struct pbuf *q = p;
        p = p->next;
        q->next = NULL;
        q->tot_len = q->len;
        bool waits = c->paused || c->held;
        if (waits && q->len && ns_mem_pbuf_cost(q) > (size_t)q->len + q->len / 4)
            held_copy(c, q);
        else if (q->len)
            held_append(c, q);
        else
            pbuf_free(q);
    }
}

/* ---- caps ---- */

/* The free receive window c may have now: the configured one while the budget is at most half
 * used, then less, down to four segments; never more than the budget's room beyond that. A
 * new conn's first window may not use the last quarter of the budget: conns that never read
 * keep their first window for good, and the quarter left lets the ones that do read move. */
static size_t rcv_room_cap(const struct ns_conn *c, bool first)
{
    struct base_budget *b = c->ns->cfg.budget;
    size_t fl = floor_wnd(c);
    size_t cap = base_budget_scale(b, c->ns->cfg.tcp_rcv_wnd, fl);
    size_t room = base_budget_room(b);
    if (room != SIZE_MAX && first)
        room = room > b->limit / 4 ? room - b->limit / 4 : 0;
    if (room != SIZE_MAX) {
        room = room / 9 * 8 + c->pcb->rcv_wnd;
        cap = cap < room ? cap : room;
    }
    return cap;
}

/* The same, never below four segments counting what c holds unread: a conn under pressure still
 * moves, while one whose user stopped reading already has its floor. Reopening the floor beside
 * held bytes let the peer fill it again at every repay, over the budget, until every byte the
 * conn had consumed was held again (200 paused conns held 50 MB over 64 MiB). */
static size_t rcv_cap(const struct ns_conn *c, bool first)
{
    size_t cap = rcv_room_cap(c, first);
    size_t fl = floor_wnd(c);
    fl = fl > c->held_cost ? fl - c->held_cost : 0;
    return cap > fl ? cap : fl;
}

size_t ns_mem_snd_cap(const struct ns_conn *c)
{
    struct base_budget *b = c->ns->cfg.budget;
    size_t full = c->snd_limit ? c->snd_limit : c->ns->cfg.tcp_snd_buf;
    size_t want = ns_tune_snd_want(c); /* about twice what may be in flight */
    full = want < full ? want : full;
    size_t fl = floor_wnd(c);
    size_t cap = base_budget_scale(b, full, fl < full ? fl : full);
    size_t room = base_budget_room(b);
    if (room != SIZE_MAX) {
        room = room / 9 * 8 + (u32_t)(c->pcb->snd_lbb - c->pcb->lastack);
        cap = cap < room ? cap : room;
    }
    return cap > fl || fl > full ? cap : fl;
}

/* The window a conn starts with, once its handshake is done: lwIP sets its own window then
 * (the whole TCP_WND once the far end agrees to window scaling), which would let each conn
 * fill 4 MiB whatever the budget says. Before the window is announced beyond the SYN's 64 KiB.
 * It starts at NS_RCV_WND_INIT and grows with what the user consumes (ns_tune.c). */
void ns_mem_size_conn(struct ns_conn *c)
{
    struct tcp_pcb *pcb = c->pcb;
    pcb->rcv_wnd = 0; /* rcv_cap counts the room beyond this conn's own window */
    ns_mem_sync(c);
    size_t cap = rcv_cap(c, true);
    if (cap > c->ns->cfg.tcp_rcv_wnd)
        cap = c->ns->cfg.tcp_rcv_wnd;
    if (cap > NS_RCV_WND_INIT)
        cap = NS_RCV_WND_INIT;
    if (cap > TCP_WND_MAX(pcb)) /* the far end did not agree to scaling */
        cap = TCP_WND_MAX(pcb);
    pcb->rcv_wnd = (tcpwnd_size_t)cap;
    ns_tune_start(c, cap);
    if (pcb->rcv_ann_wnd > pcb->rcv_wnd)
        pcb->rcv_ann_wnd = pcb->rcv_wnd;
    /* An accepted conn's SYN-ACK left lwIP's idea of the announced edge a whole TCP_WND
     * ahead (the peer saw at most 64 KiB): lwIP never moves that edge back, so the next
     * tcp_recved would announce it, and the segments sent into it would be trimmed away. */
    pcb->rcv_ann_right_edge = pcb->rcv_nxt + pcb->rcv_ann_wnd;
    if (pcb->snd_buf > c->ns->cfg.tcp_snd_buf)
        pcb->snd_buf = (tcpwnd_size_t)c->ns->cfg.tcp_snd_buf;
    ns_mem_sync(c);
}

/* ---- the window's repay ---- */

/* Reopens c's window by what was consumed, as far as the caps allow; the rest stays a debt. */
void ns_mem_repay(struct ns_conn *c)
{
    struct tcp_pcb *pcb = c->pcb;
    if (!pcb || !c->debt)
        return;
    /* Consumed bytes reopen up to the floor (less what the conn holds: rcv_cap), so a reader
     * under pressure still moves; growth (part of the debt since ns_tune.c) only from the
     * budget's room, or every conn that grew and then stopped reading would refill its whole
     * grown window, four segments a repay, over budget. */
    size_t owed = c->debt - c->tune.grow;
    size_t room_cap = rcv_room_cap(c, false);
    size_t cap = rcv_cap(c, false);
    size_t k = 0;
    if (pcb->rcv_wnd < cap)
        k = cap - pcb->rcv_wnd < owed ? cap - pcb->rcv_wnd : owed;
    if (c->tune.grow && pcb->rcv_wnd + k < room_cap) {
        size_t g = room_cap - pcb->rcv_wnd - k;
        g = g < c->tune.grow ? g : c->tune.grow;
        c->tune.grow -= (uint32_t)g;
        k += g;
    }
    if (k) {
        tcpwnd_size_t old_ann = pcb->rcv_ann_wnd;
        u32_t old_edge = pcb->rcv_nxt + old_ann;
        c->debt -= k;
        while (k > 0) {
            u16_t n = (u16_t)(k > 0xffff ? 0xffff : k);
            tcp_recved(pcb, n);
            k -= n;
        }
        /* A window that was (nearly) shut: tell the peer now, not at its next probe. A
         * quarter of the conn's window: lwIP's own threshold is a fraction of the largest
         * window, which a small one would never reach between the peer's segments. */
        u32_t moved = pcb->rcv_nxt + pcb->rcv_ann_wnd - old_edge;
        bool shut = old_ann < 4u * tcp_mss(pcb) && pcb->rcv_ann_wnd > old_ann;
        if (shut || (moved >= c->tune.wnd / 4 && moved < TCP_WND_UPDATE_THRESHOLD)) {
            tcp_ack_now(pcb);
            tcp_output(pcb);
        }
        ns_mem_sync(c);
    }
    if (c->debt) {
        c->ns->ctr.wnd_held_back++;
        if (!c->ns->repay_armed) {
            c->ns->repay_armed = true;
            sys_timeout(REPAY_MS, repay_timeout, c->ns);
        }
    }
}

static void repay_timeout(void *arg)
{
    struct ns_stack *ns = arg;
    ns->repay_armed = false;
    struct base_list *pos;
    base_list_foreach (pos, &ns->conns) {
        struct ns_conn *c = container_of(pos, struct ns_conn, link);
        if (c->debt && c->state == NS_CONN_OPEN)
            ns_mem_repay(c);
    }
}

void ns_mem_stack_closing(struct ns_stack *ns)
{
    if (ns->repay_armed)
        sys_untimeout(repay_timeout, ns);
    ns->repay_armed = false;
}

/* ---- lwIP's out-of-order hooks (lwipopts.h) ---- */

static const struct ns_conn *conn_of(const struct tcp_pcb *pcb)
{
    /* Only conns' pcbs carry an arg when they hold data (listeners never queue data). */
    return pcb->state >= ESTABLISHED ? pcb->callback_arg : NULL;
}

u32_t ns_hook_ooseq_bytes(const struct tcp_pcb *pcb)
{
    const struct ns_conn *c = conn_of(pcb);
    if (!c)
        return TCP_WND_MAX(pcb);
    return (u32_t)base_budget_scale(c->ns->cfg.budget, c->ns->cfg.tcp_rcv_wnd, floor_wnd(c));
}

u16_t ns_hook_ooseq_pbufs(const struct tcp_pcb *pcb)
{
    const struct ns_conn *c = conn_of(pcb);
    if (!c)
        return NS_OOSEQ_PBUFS_MIN;
    return (u16_t)base_budget_scale(c->ns->cfg.budget, NS_OOSEQ_PBUFS_MAX, NS_OOSEQ_PBUFS_MIN);
}
