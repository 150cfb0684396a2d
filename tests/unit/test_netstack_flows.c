/* The netstack's UDP flows and ICMP echo on two stacks back to back (tests/support/ns_pair.h),
 * and what the tunnel may throw at a stack: malformed packets, a half-open SYN flood. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netstack.h"
#include "ns_pair.h"

/* ---- half-open flood: capped, oldest dropped ---- */

static int drop_all(void *ctx, const uint8_t *pkt, size_t len)
{
    (void)ctx;
    (void)pkt;
    (void)len;
    return 0;
}

static void never_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    ns_conn_reset(c);
}

static void test_half_open_flood(void **state)
{
    (void)state;
    struct ns_config cfg = {.max_pending = 64};
    base_addr_parse(&cfg.addr4, "100.64.0.50", strlen("100.64.0.50"));
    cfg.output = drop_all;
    struct ns_stack *ns;
    assert_int_equal(ns_stack_new(&tn_loop, &cfg, &ns), 0);
    ns_stack_handle_tcp(ns, NULL, 0, never_accept, NULL);
    struct base_addr peer;
    base_addr_parse(&peer, "100.64.0.77", strlen("100.64.0.77"));
    uint8_t pkt[64];
    for (int i = 0; i < 5000; i++) {
        size_t n =
            tn_build_syn(pkt, &peer, &cfg.addr4, (uint16_t)(1024 + i), (uint16_t)(80 + i % 7));
        ns_stack_input(ns, pkt, n);
    }
    const struct ns_counters *ctr = ns_stack_counters(ns);
    assert_int_equal(ctr->drop_pending, 5000 - 64);
    assert_int_equal(ctr->tcp_open, 0);
    /* A SYN to another node's address is not ours, whatever listens here. */
    size_t n = tn_build_syn(pkt, &peer, &tn_b.v4, 5555, 80);
    ns_stack_input(ns, pkt, n);
    assert_int_equal(ctr->drop_not_ours, 1);
    tn_close_stack(ns);
}

/* ---- UDP both ways ---- */

struct ud {
    int got;
    char buf[64];
    size_t len;
    int err;
};
static struct ud ud;

static void u_recv(struct ns_udp *u, const uint8_t *d, size_t len)
{
    (void)u;
    memcpy(ud.buf, d, len < sizeof(ud.buf) ? len : sizeof(ud.buf));
    ud.len = len;
    ud.got++;
}
static void u_error(struct ns_udp *u, int err)
{
    (void)u;
    ud.err = err;
}
static const struct ns_udp_cbs u_cbs = {u_recv, u_error};

static void uecho_recv(struct ns_udp *u, const uint8_t *d, size_t len)
{
    char r[64];
    for (size_t i = 0; i < len && i < sizeof(r); i++)
        r[i] = (char)d[len - 1 - i];
    assert_int_equal(ns_udp_send(u, r, len), 0);
    ns_udp_close(u);
}
static const struct ns_udp_cbs uecho_cbs = {uecho_recv, NULL};
static void uecho_accept(void *ctx, struct ns_udp *u)
{
    (void)ctx;
    ns_udp_set_cbs(u, &uecho_cbs, NULL);
}

static void udp_roundtrip(struct tn_side *from, struct tn_side *to, const struct base_addr *dst)
{
    ns_stack_handle_udp(to->ns, NULL, 53, uecho_accept, NULL);
    memset(&ud, 0, sizeof(ud));
    struct base_endpoint r = tn_ep(dst, 53);
    struct ns_udp *u;
    assert_int_equal(ns_udp_open(from->ns, &r, &u_cbs, NULL, &u), 0);
    assert_non_null(u);
    assert_int_equal(ns_udp_send(u, "abcdef", 6), 0);
    tn_run_until(&ud.got);
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "udp rt t=%llu ms\n", (unsigned long long)(uv_hrtime() / 1000000));
    assert_int_equal(ud.len, 6);
    assert_memory_equal(ud.buf, "fedcba", 6);
    ns_udp_close(u);
}

static void test_udp(void **state)
{
    (void)state;
    udp_roundtrip(&tn_a, &tn_b, &tn_b.v4);
    udp_roundtrip(&tn_b, &tn_a, &tn_a.v4);
    udp_roundtrip(&tn_a, &tn_b, &tn_b.v6);
    udp_roundtrip(&tn_b, &tn_a, &tn_a.v6);
    assert_int_equal(ns_stack_counters(tn_a.ns)->udp_open, 0);
    assert_int_equal(ns_stack_counters(tn_b.ns)->udp_open, 0);
    /* No handler: ICMP port unreachable comes back as refused. */
    memset(&ud, 0, sizeof(ud));
    struct base_endpoint r = tn_ep(&tn_b.v4, 54);
    struct ns_udp *u;
    assert_int_equal(ns_udp_open(tn_a.ns, &r, &u_cbs, NULL, &u), 0);
    assert_int_equal(ns_udp_send(u, "x", 1), 0);
    tn_run_until(&ud.err);
    assert_int_equal(ud.err, -ECONNREFUSED);
    /* No route: unreachable. */
    memset(&ud, 0, sizeof(ud));
    struct base_addr nowhere;
    base_addr_parse(&nowhere, "100.64.0.99", strlen("100.64.0.99"));
    struct base_endpoint r2 = tn_ep(&nowhere, 53);
    struct ns_udp *u2;
    assert_int_equal(ns_udp_open(tn_a.ns, &r2, &u_cbs, NULL, &u2), 0);
    assert_int_equal(ns_udp_send(u2, "x", 1), 0);
    tn_run_until(&ud.err);
    assert_int_equal(ud.err, -ENETUNREACH);
    ns_udp_close(u);
    ns_udp_close(u2);
}

/* ---- ICMP echo ---- */

struct pg {
    int done, status;
};

static void ping_cb(void *data, int status, uint64_t rtt)
{
    struct pg *p = data;
    (void)rtt;
    p->done = 1;
    p->status = status;
}

static int do_ping(struct tn_side *from, const char *dst, uint64_t timeout)
{
    struct pg p = {0};
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, dst, strlen(dst)), 0);
    struct ns_ping *pp;
    assert_int_equal(ns_ping_send(from->ns, &a, 1, 56, timeout, ping_cb, &p, &pp), 0);
    assert_non_null(pp);
    tn_run_until(&p.done);
    return p.status;
}

static void test_ping(void **state)
{
    (void)state;
    assert_int_equal(do_ping(&tn_a, "100.64.0.2", 10000), 0);
    assert_int_equal(do_ping(&tn_b, "fd7a:115c:a1e0::1", 10000), 0);
    assert_int_equal(do_ping(&tn_a, "100.64.0.99", 10000), -ENETUNREACH);
    assert_int_equal(do_ping(&tn_a, "fd7a:115c:a1e0::99", 10000), -ENETUNREACH);
    /* MagicDNS's address answers once the node adds it; before that B drops it as not ours. */
    base_addr_parse(&tn_b.extra, "100.100.100.100", strlen("100.100.100.100"));
    assert_int_equal(do_ping(&tn_a, "100.100.100.100", 300), -ETIMEDOUT);
    assert_int_equal(ns_stack_add_address(tn_b.ns, &tn_b.extra), 0);
    assert_int_equal(do_ping(&tn_a, "100.100.100.100", 10000), 0);
}

/* ---- malformed input is counted, never crashes ---- */

static void test_malformed(void **state)
{
    (void)state;
    const struct ns_counters *c = ns_stack_counters(tn_b.ns);
    uint64_t before = c->drop_malformed;
    uint8_t pkt[64];
    ns_stack_input(tn_b.ns, pkt, 0);
    memset(pkt, 0x45, sizeof(pkt));
    ns_stack_input(tn_b.ns, pkt, 10);
    size_t n = tn_build_syn(pkt, &tn_a.v4, &tn_b.v4, 1000, 80);
    pkt[32] = 0x10; /* data offset 1: shorter than a TCP header */
    ns_stack_input(tn_b.ns, pkt, n);
    n = tn_build_syn(pkt, &tn_a.v4, &tn_b.v4, 1000, 80);
    pkt[3] = 60; /* total length beyond the buffer */
    ns_stack_input(tn_b.ns, pkt, n);
    pkt[0] = 0x60;
    pkt[4] = 0xff; /* IPv6 payload length beyond the buffer */
    ns_stack_input(tn_b.ns, pkt, n);
    assert_int_equal(c->drop_malformed, before + 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_udp, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_ping, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_malformed, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_half_open_flood, tn_setup, tn_teardown),
    };
    return cmocka_run_group_tests(tests, tn_group_setup, tn_group_teardown);
}
