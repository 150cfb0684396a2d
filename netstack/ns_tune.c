/*
 * Window autotuning: a conn's receive window and send cap grow with what the connection
 * moves, as Linux's receive-buffer autotuning (tcp_rcv_space_adjust) and send-buffer growth
 * (tcp_sndbuf_expand) do, instead of every conn getting the configured maximum (4 MiB) from its
 * first byte: a conn whose user never reads, or that moves little, holds little.
 *
 * Receive. A conn starts with NS_RCV_WND_INIT (ns_mem_size_conn). Once per window the receiver
 * measures a round trip (ns_tune_rcv_measure, from on_recv): the time from noting the right
 * edge we last announced until rcv_nxt passes it. A sender limited by the window has a window
 * in flight, which takes one round trip to arrive; a slower sender takes longer. So the smallest
 * sample is kept, and none is taken while the announced window is less than half open (bytes
 * already in flight to a nearly shut edge arrive in less than a round trip). sys_now() counts
 * milliseconds and a loaded loop stretches short round trips, so the interval is never below
 * NS_RTT_FLOOR_MS. Every interval, ns_tune_consumed compares the bytes the user consumed in it
 * with the most consumed in one interval before; when they exceed it, the window becomes
 * twice that plus a few segments, and more when they grew fast (a sender in slow start), which
 * keeps it ahead of a sender that is speeding up. The
 * window only grows, never past cfg.tcp_rcv_wnd nor, above half of the budget, past what
 * base_budget_scale leaves. The growth is added to the conn's debt, so ns_mem_repay opens it
 * only as the budget's room allows; shrinking under pressure stays ns_mem.c's job.
 *
 * Send. ns_mem_snd_cap lets the user queue about twice what the connection can have in flight
 * (the smaller of cwnd and the peer's largest window), at least NS_SND_CAP_MIN, plus what the
 * peer SACKed: enough that lwIP always has the next window's bytes at hand, also in a loss
 * recovery, and no more for a peer that stopped reading.
 *
 * The flow through the file: the receiver's round trip, the consumed bytes and the growth,
 * the send side.
 */
#include "ns_internal.h"

#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"

/* Window slack beyond twice the bytes of one interval, as Linux's 16 * advmss. */
#define RCV_SLACK(pcb) (16u * tcp_mss(pcb))

/* ---- the receiver's round trip ---- */

static uint32_t rtt_interval(const struct ns_tune *t)
{
    return t->rtt_ms > NS_RTT_FLOOR_MS ? t->rtt_ms : NS_RTT_FLOOR_MS;
}

void ns_tune_start(struct ns_conn *c, size_t wnd)
{
    struct ns_tune *t = &c->tune;
    t->wnd = (uint32_t)wnd;
    t->space_t0 = sys_now();
    if (t->wnd > c->ns->ctr.tcp_wnd_largest)
        c->ns->ctr.tcp_wnd_largest = t->wnd;
}

void ns_tune_rcv_measure(struct ns_conn *c)
{
    struct ns_tune *t = &c->tune;
    const struct tcp_pcb *pcb = c->pcb;
    uint32_t now = sys_now();
    if (t->rtt_on) {
        if (TCP_SEQ_LT(pcb->rcv_nxt, t->rtt_seq))
            return;
        uint32_t sample = now - t->rtt_t0;
        if (!t->rtt_ms || sample < t->rtt_ms)
            t->rtt_ms = sample ? sample : 1;
        t->rtt_on = false;
    }
    uint32_t open = pcb->rcv_ann_right_edge - pcb->rcv_nxt;
    if (TCP_SEQ_GT(pcb->rcv_ann_right_edge, pcb->rcv_nxt) && open >= t->wnd / 2) {
        t->rtt_seq = pcb->rcv_ann_right_edge;
        t->rtt_t0 = now;
        t->rtt_on = true;
    }
}

/* ---- consumed bytes and the growth ---- */

static void rcv_grow(struct ns_conn *c, size_t want)
{
    struct ns_stack *ns = c->ns;
    struct ns_tune *t = &c->tune;
    size_t max = base_budget_scale(ns->cfg.budget, ns->cfg.tcp_rcv_wnd, t->wnd);
    if (max > TCP_WND_MAX(c->pcb))
        max = TCP_WND_MAX(c->pcb);
    if (want > max)
        want = max;
    if (want <= t->wnd)
        return;
    /* Opened by ns_mem_repay only from the budget's room: unlike consumed bytes, growth frees
     * nothing, so it may not use the floor a conn under pressure reopens to. */
    c->debt += want - t->wnd;
    t->grow += (uint32_t)(want - t->wnd);
    t->wnd = (uint32_t)want;
    ns->ctr.tcp_wnd_grown++;
    if (t->wnd > ns->ctr.tcp_wnd_largest)
        ns->ctr.tcp_wnd_largest = t->wnd;
}

void ns_tune_consumed(struct ns_conn *c, size_t n)
{
    struct ns_tune *t = &c->tune;
    t->copied += n;
    uint32_t now = sys_now();
    if (now - t->space_t0 < rtt_interval(t))
        return;
    if (t->copied > t->space) {
        /* A sender in slow start doubles every round trip: as Linux does, the window gets
         * twice more for each time the interval's bytes grew by the last interval's. */
        uint64_t want = 2 * (uint64_t)t->copied + RCV_SLACK(c->pcb);
        if (t->space)
            want += 2 * want * (t->copied - t->space) / t->space;
        t->space = t->copied;
        rcv_grow(c, want > SIZE_MAX ? SIZE_MAX : (size_t)want);
    }
    t->copied = 0;
    t->space_t0 = now;
}

/* ---- the send side ---- */

size_t ns_tune_snd_want(const struct ns_conn *c)
{
    const struct tcp_pcb *pcb = c->pcb;
    size_t flight = pcb->cwnd < pcb->snd_wnd_max ? pcb->cwnd : pcb->snd_wnd_max;
    size_t want = 2 * flight > NS_SND_CAP_MIN ? 2 * flight : NS_SND_CAP_MIN;
    /* Bytes the peer SACKed wait in the queue only for a hole below them: new data must
     * still go out behind a retransmission, or a lost one is found only by the timeout. */
    return want + pcb->sacked_bytes;
}
