/* The patched lwIP's SACK loss recovery (netstack/lwip-patches): two stacks back to back on
 * one loop, A = 100.64.0.1 sends a stream to B = 100.64.0.2, and A's output drops chosen data
 * segments on their way to B. B's lwIP answers with SACK blocks; the test counts what A
 * retransmits and reads A's scoreboard counters, never the clock.
 *
 * Flow: setup makes the stacks; run_case() connects, A writes the stream, B checks it byte by
 * byte; when B holds all of it, A's counters are copied before the connection closes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "netstack.h"
#include "ns_internal.h"

#define MAX_DROPS 8

struct side {
    struct ns_stack *ns;
    struct side *peer;
    struct base_addr v4;
};

/* What A's output does to data segments bound for B: index = order of first transmission. */
struct path {
    int drop_first[MAX_DROPS]; /* first transmissions to drop (-1 ends) */
    int drop_rexmit_of;        /* drop the first retransmission of this index too (-1: none) */
    uint32_t drop_rexmit_seq;
    int rexmit_dropped;
    int first_sent, rexmits;
    uint32_t high_end;  /* highest sequence end sent so far */
    uint32_t first_seq; /* the first data byte's */
    int started;
};

struct counters {
    uint32_t blocks, rexmit, recoveries, rto;
    int rto_ticks; /* the pcb's current retransmission timeout */
    uint32_t cwnd, rate_floor, ssthresh, cubic_w_max;
};

/* Packets A sends wait here for delay_ms when a case asks for a delay (FIFO). */
struct delayed {
    struct delayed *next;
    uint64_t due;
    size_t len;
    uint8_t pkt[];
};

static uv_loop_t loop;
static struct side A, B;
static struct path path;
static struct counters seen;
static struct ns_conn *a_conn;
static uint64_t total, received, bad;
static int done, deadline_hit;
static uint64_t delay_ms;
static int drop_every; /* drop every Nth first transmission (0: none) */
/* drop_every spares the transfer's last spare_tail bytes. A lost tail has nothing after it to
 * SACK and waits for the retransmission timeout (no tail loss probe yet, docs/lwip-patches.md),
 * and where the Nth segment falls depends on how writes were cut into segments: without it a
 * case that counts timeouts could count one or none from run to run. */
static uint64_t spare_tail;
static struct delayed *dq_head, **dq_tail = &dq_head;
static uv_timer_t dq_timer;

static int path_drops(struct path *p, const uint8_t *pkt, size_t len)
{
    size_t ihl = (size_t)(pkt[0] & 15) * 4;
    if ((pkt[0] >> 4) != 4 || pkt[9] != 6 || len < ihl + 20)
        return 0;
    const uint8_t *th = pkt + ihl;
    size_t doff = (size_t)(th[12] >> 4) * 4;
    size_t payload = ((size_t)pkt[2] << 8 | pkt[3]) - ihl - doff;
    if (payload == 0)
        return 0;
    uint32_t seq;
    memcpy(&seq, th + 4, 4);
    seq = ntohl(seq);
    uint32_t end = seq + (uint32_t)payload;
    if (p->started && (int32_t)(end - p->high_end) <= 0) {
        p->rexmits++;
        if (getenv("NS_TEST_VERBOSE"))
            fprintf(stderr, "rexmit seq=%u len=%zu flags=%02x high=%u\n", seq, payload, th[13],
                    p->high_end);
        if (p->drop_rexmit_of >= 0 && seq == p->drop_rexmit_seq && !p->rexmit_dropped) {
            p->rexmit_dropped = 1;
            return 1;
        }
        return 0;
    }
    if (!p->started)
        p->first_seq = seq;
    p->started = 1;
    p->high_end = end;
    int idx = p->first_sent++;
    if (drop_every && idx % drop_every == drop_every / 2 &&
        (uint64_t)(end - p->first_seq) + spare_tail <= total)
        return 1;
    for (int i = 0; i < MAX_DROPS && p->drop_first[i] >= 0; i++) {
        if (p->drop_first[i] == idx) {
            if (idx == p->drop_rexmit_of)
                p->drop_rexmit_seq = seq;
            return 1;
        }
    }
    return 0;
}

static void dq_flush(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(&loop);
    while (dq_head && dq_head->due <= now) {
        struct delayed *d = dq_head;
        dq_head = d->next;
        if (!dq_head)
            dq_tail = &dq_head;
        if (B.ns)
            ns_stack_input(B.ns, d->pkt, d->len);
        free(d);
    }
    if (dq_head)
        uv_timer_start(&dq_timer, dq_flush, dq_head->due - now, 0);
}

static long tail_checks;

/* Patch 0006: whenever A sends, the tail tcp_output() recorded is the last segment of
 * ->unacked (retransmissions, recovery and timeouts included). */
static void check_unacked_tail(void)
{
    if (!a_conn || !a_conn->pcb || !a_conn->pcb->unacked)
        return;
    const struct tcp_seg *seg = a_conn->pcb->unacked;
    while (seg->next)
        seg = seg->next;
    assert_ptr_equal(a_conn->pcb->unacked_tail, seg);
    tail_checks++;
}

static int out_fn(void *ctx, const uint8_t *pkt, size_t len)
{
    struct side *s = ctx;
    if (s == &A)
        check_unacked_tail();
    if (!s->peer->ns)
        return 0;
    if (s == &A && path_drops(&path, pkt, len))
        return 0;
    if (s == &A && delay_ms) {
        struct delayed *d = malloc(sizeof(*d) + len);
        assert_non_null(d);
        *d = (struct delayed){.due = uv_now(&loop) + delay_ms, .len = len};
        memcpy(d->pkt, pkt, len);
        int idle = dq_head == NULL;
        *dq_tail = d;
        dq_tail = &d->next;
        if (idle)
            uv_timer_start(&dq_timer, dq_flush, delay_ms, 0);
        return 0;
    }
    ns_stack_input(s->peer->ns, pkt, len);
    return 0;
}

static void make_side(struct side *s, struct side *peer, const char *addr)
{
    memset(s, 0, sizeof(*s));
    s->peer = peer;
    assert_int_equal(base_addr_parse(&s->v4, addr, strlen(addr)), 0);
    struct ns_config cfg = {.addr4 = s->v4, .output = out_fn, .output_ctx = s};
    assert_int_equal(ns_stack_new(&loop, &cfg, &s->ns), 0);
}

static int setup(void **state)
{
    (void)state;
    make_side(&A, &B, "100.64.0.1");
    make_side(&B, &A, "100.64.0.2");
    memset(&path, 0, sizeof(path));
    memset(&seen, 0, sizeof(seen));
    path.drop_rexmit_of = -1;
    for (int i = 0; i < MAX_DROPS; i++)
        path.drop_first[i] = -1;
    received = bad = 0;
    done = 0;
    spare_tail = 0;
    delay_ms = 0;
    drop_every = 0;
    uv_timer_init(&loop, &dq_timer);
    a_conn = NULL;
    return 0;
}

static void on_stack_closed(void *arg)
{
    (*(int *)arg)++;
}

static int teardown(void **state)
{
    (void)state;
    struct ns_stack *a = A.ns, *b = B.ns;
    A.ns = B.ns = NULL;
    int closed = 0;
    ns_stack_close(a, on_stack_closed, &closed);
    ns_stack_close(b, on_stack_closed, &closed);
    uv_timer_stop(&dq_timer);
    while (closed < 2)
        uv_run(&loop, UV_RUN_ONCE);
    while (dq_head) {
        struct delayed *d = dq_head;
        dq_head = d->next;
        free(d);
    }
    dq_tail = &dq_head;
    uv_close((uv_handle_t *)&dq_timer, NULL);
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}

/* ---- A writes `total` bytes of a pattern and closes; B checks them ---- */

static uint64_t a_sent;

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i % 251);
}

static void a_pump(struct ns_conn *c)
{
    uint8_t buf[16384];
    while (a_sent < total) {
        size_t n = total - a_sent < sizeof(buf) ? (size_t)(total - a_sent) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(a_sent + i);
        ssize_t w = ns_conn_write(c, buf, n);
        if (w <= 0)
            return;
        a_sent += (uint64_t)w;
    }
    ns_conn_shutdown(c);
}

static void a_connect(struct ns_conn *c, int status)
{
    assert_int_equal(status, 0);
    a_pump(c);
}

static void a_writable(struct ns_conn *c)
{
    a_pump(c);
}

static void a_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        a_conn = NULL;
        ns_conn_close(c);
    } else
        ns_conn_consumed(c, len);
}

/* BASE_ECLOSING is teardown closing the stacks before A heard B's FIN: release the conn. */
static void a_error(struct ns_conn *c, int err)
{
    a_conn = NULL;
    ns_conn_close(c);
    if (err != BASE_ECLOSING)
        fail_msg("sender error %s", base_strerror(err));
}

static const struct ns_conn_cbs a_cbs = {a_connect, a_read, a_writable, a_error};

static void b_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        ns_conn_close(c);
        done = 1;
        return;
    }
    for (size_t i = 0; i < len; i++)
        if (d[i] != pattern(received + i))
            bad++;
    received += len;
    ns_conn_consumed(c, len);
    if (received == total && a_conn && a_conn->pcb) {
        const struct tcp_pcb *pcb = a_conn->pcb;
        seen = (struct counters){pcb->sack_stat_blocks,
                                 pcb->sack_stat_rexmit,
                                 pcb->sack_stat_recoveries,
                                 pcb->sack_stat_rto,
                                 pcb->rto,
                                 pcb->cwnd,
                                 pcb->rate_floor,
                                 pcb->ssthresh,
                                 pcb->cubic_w_max};
    }
}

static const struct ns_conn_cbs b_cbs = {NULL, b_read, NULL, NULL};

static void b_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    ns_conn_set_cbs(c, &b_cbs, NULL);
}

static void deadline_cb(uv_timer_t *t)
{
    deadline_hit = 1;
    uv_stop(t->loop);
}

static void stop_if_done(uv_prepare_t *h)
{
    if (done || deadline_hit)
        uv_stop(h->loop);
}

static void run_case(uint64_t bytes)
{
    total = bytes;
    a_sent = 0;
    tail_checks = 0;
    assert_int_equal(ns_stack_handle_tcp(B.ns, NULL, 5001, b_accept, NULL), 0);
    struct base_endpoint r = {.addr = B.v4, .port = 5001};
    assert_int_equal(ns_conn_connect(A.ns, &r, &a_cbs, NULL, &a_conn), 0);
    assert_non_null(a_conn);
    uv_timer_t t;
    uv_prepare_t prep;
    deadline_hit = 0;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, deadline_cb, 120000, 0);
    uv_prepare_init(&loop, &prep);
    uv_prepare_start(&prep, stop_if_done);
    while (!done && !deadline_hit)
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(deadline_hit);
    assert_true(tail_checks > 0);
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr,
                "first=%d rexmits=%d blocks=%u rexmit=%u recoveries=%u rto=%u cwnd=%u floor=%u\n",
                path.first_sent, path.rexmits, seen.blocks, seen.rexmit, seen.recoveries, seen.rto,
                seen.cwnd, seen.rate_floor);
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "B's window: grown %llu times, largest %llu\n",
                (unsigned long long)ns_stack_counters(B.ns)->tcp_wnd_grown,
                (unsigned long long)ns_stack_counters(B.ns)->tcp_wnd_largest);
    assert_int_equal(received, total);
    assert_int_equal(bad, 0);
}

/* Four segments lost from one window: each is resent exactly once, in one recovery, with no
 * timeout and nothing the receiver already holds sent again (lwIP's NewReno repairs one hole
 * per round trip and its timeout resends the whole window). */
static void test_holes_in_one_window(void **state)
{
    (void)state;
    int drops[] = {200, 203, 207, 215};
    memcpy(path.drop_first, drops, sizeof(drops));
    run_case(4u << 20);
    assert_true(seen.blocks > 0);
    assert_int_equal(path.rexmits, 4);
    assert_int_equal(seen.rexmit, 4);
    assert_int_equal(seen.recoveries, 1);
    assert_int_equal(seen.rto, 0);
}

/* A retransmission lost as well is found by time (RACK) once later data is SACKed: resent a
 * second time, still without a timeout. That needs new data sent after the retransmission, so
 * the loss comes once B's receive window has grown past its first 128 KiB (ns_tune.c): while
 * the window holds the hole and little more, only the timeout finds it (at segment 300 as
 * before; the timing of the in-process path decides, main also times out at 3000 of 8 MiB). */
static void test_lost_retransmission(void **state)
{
    (void)state;
    path.drop_first[0] = 600;
    path.drop_rexmit_of = 600;
    run_case(4u << 20);
    assert_int_equal(path.rexmit_dropped, 1);
    assert_int_equal(path.rexmits, 2);
    assert_int_equal(seen.rto, 0);
}

/* Losses spread over the transfer: each is repaired once; no spurious retransmissions. */
static void test_spread_losses(void **state)
{
    (void)state;
    int drops[] = {50, 400, 401, 900, 1500, 2200, 2201, 2202};
    memcpy(path.drop_first, drops, sizeof(drops));
    run_case(6u << 20);
    assert_int_equal(path.rexmits, 8);
    assert_int_equal(seen.rto, 0);
}

/* Random-looking loss on a path with a 20 ms one-way delay: every 40th segment is lost, far
 * more than congestion control should answer by halving each time. The sender measures the
 * delivered rate and keeps cwnd at or above twice the measured bandwidth-delay product. */
static void test_rate_floor(void **state)
{
    (void)state;
    delay_ms = 20;
    drop_every = 40;
    spare_tail = 64u * 1024;
    run_case(8u << 20);
    assert_true(seen.recoveries >= 3);
    assert_int_equal(seen.rto, 0);
    assert_true(seen.rate_floor > 8 * 1380);
    assert_true(seen.cwnd >= seen.rate_floor);
}

/* One segment in four lost is congestion, not random loss: the floor stands aside and cwnd
 * falls as CUBIC has it, far below the floor the early round trips measured. */
static void test_high_loss(void **state)
{
    (void)state;
    delay_ms = 20;
    drop_every = 4;
    run_case(1u << 20);
    assert_true(seen.rate_floor > 0);
    assert_true(seen.cwnd < seen.rate_floor);
}

/* One loss on a 10 ms path: CUBIC records the window it happened at and reduces ssthresh to
 * 0.7 of it (or to the rate floor, when higher); the window then grows from there. */
static void test_cubic(void **state)
{
    (void)state;
    delay_ms = 10;
    path.drop_first[0] = 400;
    run_case(16u << 20);
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "w_max=%u ssthresh=%u cwnd=%u floor=%u\n", seen.cubic_w_max, seen.ssthresh,
                seen.cwnd, seen.rate_floor);
    assert_int_equal(seen.recoveries, 1);
    assert_true(seen.cubic_w_max > 0);
    assert_true(seen.ssthresh >= seen.cubic_w_max / 10 * 7 || seen.ssthresh >= seen.rate_floor);
    assert_true(seen.cwnd >= seen.ssthresh);
}

int main(void)
{
    uv_loop_init(&loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_holes_in_one_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_retransmission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spread_losses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cubic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_loss, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return rc;
}
