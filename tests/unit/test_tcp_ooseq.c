/* The patched lwIP's out-of-order queue (netstack/lwip-patches/0005-tcp-ooseq-tail.patch): a
 * raw peer (tests/support/raw_tcp.h, 100.64.0.9) sends segments behind a hole to the stack (100.64.0.2:80), which
 * queues them on pcb->ooseq. Costs are counted in segments visited on the queue
 * (tcp_ooseq_stat_steps), never in time.
 *
 * Flow: a handshake (with or without SACK-permitted), segments behind a hole, and after every
 * segment the pcb's tail, run and totals are checked against a walk of the queue and the
 * stack's SACK blocks against what it holds; then the hole is filled and every byte must come
 * out once, in order. Payload byte at offset i is pattern(i), so a misplaced byte shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "netstack.h"
#include "ns_internal.h"
#include "ns_pair.h"
#include "raw_tcp.h"

#define MAX_GOT 20000
#define ISN 1000 /* the raw peer's first seqno: offset 0 is the byte after it */

static struct ns_stack *ns;
static struct tn_raw raw;
static uint8_t got[MAX_GOT];          /* what the stack's user read */
static struct tn_raw_conn *open_peer; /* its conn is reset by teardown if a test stops early */

static uint8_t pattern(uint32_t off)
{
    return (uint8_t)(off * 7 + off / 251 + 3);
}

/* One segment of the peer at offset off carrying n pattern bytes. */
static void send_seg(struct tn_raw_conn *p, uint32_t off, uint8_t flags, size_t n)
{
    uint8_t d[1000];
    assert_true(n <= sizeof(d));
    for (size_t i = 0; i < n; i++)
        d[i] = pattern(off + (uint32_t)i);
    tn_raw_send(&raw, p, ISN + 1 + off, flags, d, n);
}

/* The SYN carries MSS 1380, window scale 7 and, with sack, SACK-permitted. */
static void handshake(struct tn_raw_conn *p, uint16_t port, int sack)
{
    *p = (struct tn_raw_conn){
        .sport = port, .sack_ok = sack, .snd_nxt = ISN, .got = got, .cap = sizeof(got)};
    raw.accepting = p;
    assert_int_equal(tn_raw_handshake(&raw, p), 0);
    raw.accepting = NULL;
    assert_non_null(p->conn);
    open_peer = p;
    assert_int_equal(!!(p->conn->pcb->flags & TF_SACK), sack);
}

static void reset_peer(struct tn_raw_conn *p)
{
    ns_conn_reset(p->conn);
    open_peer = NULL;
}

/* The pcb's tail, run and totals against a walk of ->ooseq; the stack's SACK blocks against
 * what the queue holds. Returns the number of segments queued. */
static unsigned check_queue(const struct tn_raw_conn *p)
{
    const struct tcp_pcb *pcb = p->conn->pcb;
    const struct tcp_seg *s, *last = NULL;
    uint32_t bytes = 0, pbufs = 0, run = 0;
    unsigned n = 0;
    for (s = pcb->ooseq; s; last = s, s = s->next, n++) {
        if (!last || last->tcphdr->seqno + last->len != s->tcphdr->seqno)
            run = s->tcphdr->seqno;
        if (last)
            assert_true(TCP_SEQ_LEQ(last->tcphdr->seqno + last->len, s->tcphdr->seqno));
        bytes += s->p->tot_len;
        pbufs += pbuf_clen(s->p);
    }
    assert_ptr_equal(pcb->ooseq_tail, last);
    if (!last)
        return 0;
    assert_int_equal(pcb->ooseq_run, run);
    assert_int_equal(pcb->ooseq_bytes, bytes);
    assert_int_equal(pcb->ooseq_pbufs, pbufs);
    for (uint32_t b = 0; p->sack_ok && b < raw.last.n_sack; b++) {
        /* every block lies in queued data, and no queued segment straddles its edges */
        uint32_t l = raw.last.sack[b][0], r = raw.last.sack[b][1], covered = 0;
        for (s = pcb->ooseq; s; s = s->next) {
            uint32_t sl = s->tcphdr->seqno, sr = sl + s->len;
            if (TCP_SEQ_LEQ(sr, l) || TCP_SEQ_GEQ(sl, r))
                continue;
            assert_true(TCP_SEQ_GEQ(sl, l) && TCP_SEQ_LEQ(sr, r));
            covered += s->len;
        }
        assert_int_equal(covered, r - l);
    }
    return n;
}

/* Sends the bytes from the stack's ACK on, as a retransmission would, until it holds total
 * bytes; then each must have come out once and in order. */
static void fill_and_check(struct tn_raw_conn *p, uint32_t total)
{
    for (int guard = 0; p->ngot < total && guard < 100000; guard++) {
        uint32_t off = raw.last.ack - (ISN + 1), n = total - off;
        send_seg(p, off, 0x18, n > 1000 ? 1000 : n);
    }
    assert_int_equal(p->ngot, total);
    for (uint32_t i = 0; i < total; i++)
        assert_int_equal(p->got[i], pattern(i));
    assert_null(p->conn->pcb->ooseq);
    assert_null(p->conn->pcb->ooseq_tail);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(tn_raw_stack_new(&raw, &tn_loop, NULL), 0);
    ns = raw.ns;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (open_peer)
        reset_peer(open_peer);
    tn_close_stack(ns);
    ns = NULL;
    return 0;
}

/* 1-byte segments behind a one-byte hole, past the queue's cap: each costs the same few steps
 * whether 10 or 3000 are queued (unpatched lwIP: one step per queued segment, twice), the
 * SACK block grows by each, the cap holds, and what was queued arrives in order. */
static void behind_hole(int sack)
{
    static struct tn_raw_conn p;
    handshake(&p, (uint16_t)(4000 + sack), sack);
    enum { N = NS_OOSEQ_PBUFS_MAX + 500 };
    uint32_t max_steps = 0, total_steps = tcp_ooseq_stat_steps;
    for (uint32_t i = 1; i <= N; i++) {
        uint32_t before = tcp_ooseq_stat_steps;
        send_seg(&p, i, 0x18, 1);
        uint32_t steps = tcp_ooseq_stat_steps - before;
        max_steps = steps > max_steps ? steps : max_steps;
        assert_int_equal(raw.last.ack, ISN + 1);
        if (sack) {
            uint32_t queued_end = ISN + 1 + (i < NS_OOSEQ_PBUFS_MAX ? i : NS_OOSEQ_PBUFS_MAX) + 1;
            assert_true(raw.last.n_sack >= 1);
            assert_int_equal(raw.last.sack[0][0], ISN + 2);
            assert_int_equal(raw.last.sack[0][1], queued_end);
        }
        if (i % 97 == 0 || i >= NS_OOSEQ_PBUFS_MAX - 2)
            assert_int_equal(check_queue(&p), i < NS_OOSEQ_PBUFS_MAX ? i : NS_OOSEQ_PBUFS_MAX);
    }
    total_steps = tcp_ooseq_stat_steps - total_steps;
    print_message("sack=%d: %d segments behind a hole, %u steps on the queue (at most %u for "
                  "one segment)\n",
                  sack, N, total_steps, max_steps);
    assert_true(max_steps <= 2);
    assert_true(total_steps <= 2u * N);
    fill_and_check(&p, 1 + NS_OOSEQ_PBUFS_MAX);
    reset_peer(&p);
}

static void test_behind_hole(void **state)
{
    (void)state;
    behind_hole(0);
}

static void test_behind_hole_sack(void **state)
{
    (void)state;
    behind_hole(1);
}

/* Runs of three 1-byte segments with one-byte gaps, each run's bytes sent in order: a segment
 * that starts a run is reported as a block of its own, the next ones extend it. */
static void test_runs_sack(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    handshake(&p, 4010, 1);
    for (uint32_t i = 0; i < 3000; i++) {
        uint32_t off = 2 + i / 3 * 4 + i % 3; /* runs at 2..4, 6..8, ... */
        uint32_t before = tcp_ooseq_stat_steps;
        send_seg(&p, off, 0x18, 1);
        assert_true(tcp_ooseq_stat_steps - before <= 2);
        assert_true(raw.last.n_sack >= 1);
        assert_int_equal(raw.last.sack[0][0], ISN + 1 + off - i % 3);
        assert_int_equal(raw.last.sack[0][1], ISN + 1 + off + 1);
        if (i % 101 == 0)
            check_queue(&p);
    }
    fill_and_check(&p, 2 + 1000 * 4);
    reset_peer(&p);
}

/* Seeded random segments (mostly 1 to 3 bytes, some up to 40, anywhere in 12000 bytes behind a
 * hole, repeats and overlaps included) reach every path: before the tail, at it, overlapping
 * it, the queue's cap cutting into it. The queue's fields stay true after each segment, and
 * the bytes arrive intact. */
static void random_segments(int sack)
{
    static struct tn_raw_conn p;
    handshake(&p, (uint16_t)(4020 + sack), sack);
    enum { SPAN = 12000, OPS = 9000 };
    uint32_t rnd = 12345u + (uint32_t)sack;
    unsigned most = 0;
    for (int k = 0; k < OPS; k++) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t off = 1 + (rnd >> 8) % (SPAN - 41);
        rnd = rnd * 1103515245u + 12345u;
        uint32_t r = rnd >> 8;
        send_seg(&p, off, 0x18, r % 8 ? 1 + r / 8 % 3 : 1 + r / 8 % 40);
        unsigned n = check_queue(&p);
        most = n > most ? n : most;
    }
    print_message("sack=%d: %d random segments, at most %u queued\n", sack, OPS, most);
    fill_and_check(&p, SPAN);
    reset_peer(&p);
}

static void test_random(void **state)
{
    (void)state;
    random_segments(0);
}

static void test_random_sack(void **state)
{
    (void)state;
    random_segments(1);
}

/* An in-order FIN bins the queue (whatever lies beyond it cannot be data): the queue's tail
 * and totals go with it. */
static void test_fin_bins_queue(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    handshake(&p, 4030, 1);
    for (uint32_t off = 2; off < 50; off += 2)
        send_seg(&p, off, 0x18, 1);
    assert_int_equal(check_queue(&p), 24);
    send_seg(&p, 0, 0x19, 1);
    assert_int_equal(p.ngot, 1);
    assert_null(p.conn->pcb->ooseq);
    assert_null(p.conn->pcb->ooseq_tail);
    assert_int_equal(p.conn->pcb->ooseq_bytes, 0);
    assert_int_equal(p.conn->pcb->ooseq_pbufs, 0);
    reset_peer(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_behind_hole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_behind_hole_sack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_sack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_sack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fin_bins_queue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, tn_group_setup, tn_group_teardown);
}
