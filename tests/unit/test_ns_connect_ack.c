/* ACKs that wait for a segment to carry them (netstack/ns_tcp.c, lwIP patches 0007 and 0008),
 * driven by a raw TCP peer (tests/support/raw_tcp.h) that the stack dials or that connects to
 * it. The checks count the segments the stack sends and read their flags and numbers; time
 * only passes where the hold must end.
 *
 * Flow: the SYN-ACK gets no answer of its own at once; the first data segment carries the ACK
 * (one packet instead of two) and nothing follows it; with no data the ACK leaves alone once
 * the hold ends; a conn closed while holding sends its FIN with the ACK and nothing after.
 * Then the peer's FIN: the user's close carries its ACK, or it leaves alone after the hold
 * while the user keeps writing. The hold's timeout goes as soon as no ACK waits, so the loop
 * does not wake for nothing, and stays while one still does. Last, the source ports of the
 * stack's connects: random over 1024-65535, drawn in batches that never repeat a draw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "netstack.h"
#include "ns_internal.h"
#include "ns_pair.h"
#include "raw_tcp.h"

enum { FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10 };

static struct ns_stack *ns;
static struct tn_raw raw;
static struct ns_conn *open_conn; /* released by teardown when a check failed before the test did */

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
    if (open_conn)
        ns_conn_close(open_conn);
    open_conn = NULL;
    tn_close_stack(ns);
    ns = NULL;
    return 0;
}

static const struct ns_conn_cbs out_cbs = {.on_read = tn_raw_on_read};

/* The stack dials the raw peer, which answers SYN-ACK: the stack sends nothing back yet. */
static void dial(struct tn_raw_conn *p, uint16_t port)
{
    *p = (struct tn_raw_conn){.sport = port, .snd_nxt = 7000};
    struct base_endpoint to = {.addr = raw.peer, .port = port};
    assert_int_equal(ns_conn_connect(ns, &to, &out_cbs, p, &p->conn), 0);
    open_conn = p->conn;
    assert_int_equal(raw.last.flags & (SYN | ACK), SYN);
    p->dport = raw.last.sport;
    p->rcv_nxt = raw.last.seq + 1;
    unsigned before = raw.nseg;
    tn_raw_send(&raw, p, p->snd_nxt++, SYN | ACK, NULL, 0);
    assert_int_equal(raw.nseg, before);
}

/* Lets more than the hold pass, running the stack's timers. */
static void pass_hold(void)
{
    usleep((NS_ACK_HOLD_MS + 2) * 1000);
    uv_update_time(&tn_loop);
    uv_run(&tn_loop, UV_RUN_NOWAIT);
}

static void test_ack_rides_on_data(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    dial(&p, 5000);
    unsigned before = raw.nseg;
    assert_int_equal(ns_conn_write(p.conn, (const uint8_t *)"GET /", 5), 5);
    assert_int_equal(raw.nseg, before + 1);
    assert_int_equal(raw.last.flags & (SYN | ACK | FIN | RST), ACK);
    assert_int_equal(raw.last.ack, p.snd_nxt); /* past the peer's SYN */
    assert_false(ns->acks_armed);              /* nothing left to send: no wake-up 1 ms later */
    pass_hold();
    assert_int_equal(raw.nseg, before + 1); /* no lone ACK after it */
    ns_conn_close(p.conn);
    open_conn = NULL;
}

static void test_ack_alone_without_data(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    dial(&p, 5001);
    unsigned before = raw.nseg;
    while (raw.nseg == before) /* the hold ends: a server that speaks first waits no longer */
        uv_run(&tn_loop, UV_RUN_ONCE);
    assert_int_equal(raw.nseg, before + 1);
    assert_int_equal(raw.last.flags, ACK);
    assert_int_equal(raw.last.ack, p.snd_nxt); /* past the peer's SYN */
    pass_hold();
    assert_int_equal(raw.nseg, before + 1);
    ns_conn_close(p.conn);
    open_conn = NULL;
}

static void test_ack_on_fin(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    dial(&p, 5002);
    unsigned before = raw.nseg;
    ns_conn_close(p.conn);
    open_conn = NULL;
    assert_int_equal(raw.nseg, before + 1);
    assert_int_equal(raw.last.flags & (FIN | ACK | RST), FIN | ACK);
    assert_int_equal(raw.last.ack, p.snd_nxt); /* past the peer's SYN */
    assert_false(ns->acks_armed);
    pass_hold(); /* the released conn left the held list */
    assert_int_equal(raw.nseg, before + 1);
}

/* Two conns hold their ACKs: the first one's data carries its own, and the timeout stays for
 * the second, whose ACK leaves alone when the hold ends. */
static void test_timeout_stays_for_the_last(void **state)
{
    (void)state;
    static struct tn_raw_conn p1, p2;
    dial(&p1, 5003);
    struct ns_conn *c1 = p1.conn;
    dial(&p2, 5004);
    assert_true(ns->acks_armed);
    assert_int_equal(ns_conn_write(c1, (const uint8_t *)"GET /", 5), 5);
    assert_true(ns->acks_armed);
    unsigned before = raw.nseg;
    while (raw.nseg == before)
        uv_run(&tn_loop, UV_RUN_ONCE);
    assert_int_equal(raw.last.flags, ACK);
    assert_int_equal(raw.last.ack, p2.snd_nxt);
    assert_false(ns->acks_armed);
    ns_conn_close(c1);
    ns_conn_close(p2.conn);
    open_conn = NULL;
}

/* A conn the peer connected to (no handshake ACK of ours to hold). */
static void accept_from(struct tn_raw_conn *p, uint16_t port)
{
    *p = (struct tn_raw_conn){.sport = port, .snd_nxt = 9000};
    raw.accepting = p;
    assert_int_equal(tn_raw_handshake(&raw, p), 0);
    raw.accepting = NULL;
    assert_non_null(p->conn);
    open_conn = p->conn;
}

/* The peer's FIN: no ACK of its own; the user's FIN carries it, one segment, and the hold's
 * timeout goes with it. The user ends by closing, or by a shutdown (as the proxy passes its
 * client's FIN on) that keeps the conn open. */
static void fin_ack_rides(struct tn_raw_conn *p, uint16_t port, bool by_shutdown)
{
    accept_from(p, port);
    unsigned before = raw.nseg;
    tn_raw_send(&raw, p, p->snd_nxt++, FIN | ACK, NULL, 0);
    assert_int_equal(p->eof, 1);
    assert_int_equal(raw.nseg, before);
    assert_true(ns->acks_armed);
    if (by_shutdown) {
        assert_int_equal(ns_conn_shutdown(p->conn), 0);
    } else {
        ns_conn_close(p->conn);
        open_conn = NULL;
    }
    assert_int_equal(raw.nseg, before + 1);
    assert_int_equal(raw.last.flags & (FIN | ACK | RST), FIN | ACK);
    assert_int_equal(raw.last.ack, p->snd_nxt);
    assert_false(ns->acks_armed);
    pass_hold();
    assert_int_equal(raw.nseg, before + 1);
}

static void test_fin_ack_rides_on_fin(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    fin_ack_rides(&p, 4000, false);
}

static void test_fin_ack_rides_on_shutdown(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    fin_ack_rides(&p, 4002, true);
    ns_conn_close(p.conn);
    open_conn = NULL;
}

/* A user that keeps its half open: the FIN is acknowledged alone once the hold ends, and the
 * user can still send. */
static void test_fin_ack_alone_half_open(void **state)
{
    (void)state;
    static struct tn_raw_conn p;
    accept_from(&p, 4001);
    unsigned before = raw.nseg;
    tn_raw_send(&raw, &p, p.snd_nxt++, FIN | ACK, NULL, 0);
    assert_int_equal(raw.nseg, before);
    while (raw.nseg == before)
        uv_run(&tn_loop, UV_RUN_ONCE);
    assert_int_equal(raw.last.flags, ACK);
    assert_int_equal(raw.last.ack, p.snd_nxt);
    assert_int_equal(ns_conn_write(p.conn, (const uint8_t *)"late", 4), 4);
    assert_int_equal(raw.nseg, before + 2);
    assert_int_equal(raw.last.flags & (FIN | RST), 0);
    ns_conn_close(p.conn);
    open_conn = NULL;
}

static void test_source_ports_random(void **state)
{
    (void)state;
    enum { N = 200 }; /* three batches of draws and part of a fourth */
    static uint16_t seen[N];
    unsigned distinct = 0;
    for (int i = 0; i < N; i++) {
        struct ns_conn *c;
        struct base_endpoint to = {.addr = raw.peer, .port = 6000};
        assert_int_equal(ns_conn_connect(ns, &to, &out_cbs, NULL, &c), 0);
        assert_int_equal(raw.last.flags & (SYN | ACK), SYN);
        seen[i] = raw.last.sport;
        ns_conn_close(c);
        assert_true(seen[i] >= 1024);
        bool fresh = true;
        for (int j = 0; j < i; j++)
            fresh = fresh && seen[j] != seen[i];
        distinct += fresh;
    }
    assert_true(distinct >= N - 5); /* about 0.3 repeats are expected among 64512 ports */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_rides_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_alone_without_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_on_fin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_stays_for_the_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fin_ack_rides_on_fin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fin_ack_rides_on_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fin_ack_alone_half_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_ports_random, setup, teardown),
    };
    return cmocka_run_group_tests(tests, tn_group_setup, tn_group_teardown);
}
