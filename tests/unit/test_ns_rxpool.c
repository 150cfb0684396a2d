/* The netstack's receive buffers (netstack/ns_rxpool.c), driven by a raw TCP peer that builds
 * its segments by hand (tests/support/raw_tcp.h: 100.64.0.9 -> the stack's 100.64.0.2:80). Everything happens inside
 * ns_stack_input, so the checks are on counts and bytes, never on time.
 *
 * Flow: in-order full segments for a reader that consumes (after a warm-up, not one buffer is
 * malloc'd: each packet reuses one); segments held behind a hole and by a paused reader (many
 * buffers in flight at once, every byte intact once delivered, larger packets on ordinary
 * pbufs); the paths where lwIP drops a packet (every buffer comes back); a closed stack leaves
 * no buffer behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netstack.h"
#include "ns_internal.h"
#include "ns_pair.h"
#include "raw_tcp.h"

#define FULL 1380 /* payload of a full segment at the tunnel MTU */
#define BIG 1440  /* a payload too large for a pool buffer */

static struct ns_stack *ns;
static struct base_budget budget;
static struct tn_raw raw;

/* The byte at stream offset i. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131 + (i >> 8));
}

/* n bytes of the pattern from stream offset off (relative to the first data byte). */
static void send_data(struct tn_raw_conn *p, uint32_t base, size_t off, size_t n)
{
    uint8_t d[BIG];
    for (size_t i = 0; i < n; i++)
        d[i] = pattern(off + i);
    tn_raw_send(&raw, p, base + (uint32_t)off, 0x18, d, n);
}

static void handshake(struct tn_raw_conn *p, uint16_t port, size_t cap)
{
    *p = (struct tn_raw_conn){.sport = port, .snd_nxt = 1000, .got = malloc(cap), .cap = cap};
    assert_non_null(p->got);
    raw.accepting = p;
    assert_int_equal(tn_raw_handshake(&raw, p), 0);
    raw.accepting = NULL;
    assert_non_null(p->conn);
}

static void check_got(const struct tn_raw_conn *p, size_t n)
{
    assert_int_equal(p->ngot, n);
    for (size_t i = 0; i < n; i++)
        if (p->got[i] != pattern(i))
            fail_msg("byte %zu: got %u, sent %u", i, p->got[i], pattern(i));
}

static void finish(struct tn_raw_conn *p)
{
    ns_conn_reset(p->conn);
    free(p->got);
}

static struct ns_rxpool_stats stats(void)
{
    struct ns_rxpool_stats s;
    ns_rxpool_stats(&s);
    return s;
}

static int setup(void **state)
{
    (void)state;
    budget = (struct base_budget){.limit = 256u << 20};
    assert_int_equal(tn_raw_stack_new(&raw, &tn_loop, &budget), 0);
    ns = raw.ns;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tn_close_stack(ns);
    ns = NULL;
    /* The last stack is gone: no buffer held, none cached. */
    struct ns_rxpool_stats s = stats();
    assert_int_equal(s.outstanding, 0);
    assert_int_equal(s.cached, 0);
    assert_int_equal(budget.used, 0);
    return 0;
}

/* The steady path: after a warm-up, N full segments to a reader that consumes each cost no
 * malloc at all; every one reused a buffer. */
static void test_steady_no_malloc(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    enum { WARM = 64, N = 5000 };
    handshake(&p, 4000, (size_t)(WARM + N) * FULL);
    uint32_t base = p.snd_nxt;
    for (size_t i = 0; i < WARM; i++)
        send_data(&p, base, i * FULL, FULL);
    struct ns_rxpool_stats s0 = stats();
    for (size_t i = WARM; i < WARM + N; i++)
        send_data(&p, base, i * FULL, FULL);
    struct ns_rxpool_stats s1 = stats();
    print_message("%d packets: %llu buffers allocated, %llu reused\n", N,
                  (unsigned long long)(s1.allocated - s0.allocated),
                  (unsigned long long)(s1.reused - s0.reused));
    check_got(&p, (size_t)(WARM + N) * FULL);
    assert_int_equal(s1.allocated - s0.allocated, 0);
    assert_true(s1.reused - s0.reused >= N);
    assert_int_equal(s1.outstanding, 0);
    finish(&p);
}

/* Many buffers in flight: segments behind a hole sit in the out-of-order queue, each in its
 * own buffer, while the free list hands out others; once the hole is filled every byte arrives
 * intact and every buffer comes back. A packet larger than a pool buffer takes an ordinary
 * pbuf and arrives intact too. */
static void test_in_flight_integrity(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    enum { N = 48 };
    handshake(&p, 4001, (size_t)N * FULL + BIG);
    uint32_t base = p.snd_nxt;
    for (size_t i = N - 1; i >= 1; i--)
        send_data(&p, base, i * FULL, FULL);
    struct ns_rxpool_stats held = stats();
    assert_int_equal(p.ngot, 0);
    assert_true(held.outstanding >= NS_OOSEQ_PBUFS_MIN);
    send_data(&p, base, 0, FULL); /* the hole */
    size_t n = p.ngot;
    assert_true(n >= (size_t)(NS_OOSEQ_PBUFS_MIN + 1) * FULL);
    /* What the queue could not keep is sent again, in order, as a peer would. */
    for (size_t off = n; off < (size_t)N * FULL; off += FULL)
        send_data(&p, base, off, FULL);
    uint64_t allocated = stats().allocated;
    send_data(&p, base, (size_t)N * FULL, BIG);
    assert_int_equal(stats().allocated, allocated);
    check_got(&p, (size_t)N * FULL + BIG);
    assert_int_equal(stats().outstanding, 0);
    finish(&p);
}

/* Packets lwIP drops give their buffer back: a segment to a port nobody listens on (RST), a
 * duplicate, one for a conn that was reset, one outside the window. */
static void test_drop_paths(void **state)
{
    (void)state;
    static struct tn_raw_conn p, stranger;
    handshake(&p, 4002, 4 * FULL);
    uint32_t base = p.snd_nxt;
    send_data(&p, base, 0, FULL);
    send_data(&p, base, 0, FULL); /* again: a duplicate */
    check_got(&p, FULL);
    assert_int_equal(stats().outstanding, 0);
    send_data(&p, base, (size_t)64 << 20, FULL); /* far beyond the window */
    assert_int_equal(stats().outstanding, 0);
    memset(&stranger, 0, sizeof(stranger));
    stranger.sport = 4003;
    stranger.dport = 81;
    send_data(&stranger, 5000, 0, FULL);
    assert_int_equal(raw.last.flags & 0x04, 0x04);
    assert_int_equal(stats().outstanding, 0);
    ns_conn_reset(p.conn);
    send_data(&p, base, FULL, FULL);
    assert_int_equal(stats().outstanding, 0);
    free(p.got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_steady_no_malloc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_flight_integrity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, tn_group_setup, tn_group_teardown);
}
