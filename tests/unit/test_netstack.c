/* The netstack's TCP on two stacks back to back (tests/support/ns_pair.h): byte-exact transfers,
 * flow control, half-close, reset, refused, unreachable, send limits, 1000 connections, node
 * isolation, SYN options. */
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

/* ---- byte-exact transfers both ways ---- */

struct xfer {
    struct ns_conn *c;
    uint64_t to_send, sent, recvd, expect;
    uint32_t tx, rx; /* xorshift states: the stream each direction carries */
    uint8_t buf[65536];
    size_t off, len;
    int shut, eof, done, err, bad;
    int *finished;
};

static uint8_t next_byte(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return (uint8_t)x;
}

static void xfer_maybe_done(struct xfer *x)
{
    if (x->done || !x->eof || !x->shut)
        return;
    x->done = 1;
    ns_conn_close(x->c);
    (*x->finished)++;
}

static void pump(struct xfer *x)
{
    while (x->sent < x->to_send) {
        if (x->off == x->len) {
            uint64_t left = x->to_send - x->sent;
            x->len = left < sizeof(x->buf) ? (size_t)left : sizeof(x->buf);
            for (size_t i = 0; i < x->len; i++)
                x->buf[i] = next_byte(&x->tx);
            x->off = 0;
        }
        ssize_t n = ns_conn_write(x->c, x->buf + x->off, x->len - x->off);
        if (n <= 0)
            return;
        x->off += (size_t)n;
        x->sent += (uint64_t)n;
    }
    if (!x->shut) {
        x->shut = 1;
        assert_int_equal(ns_conn_shutdown(x->c), 0);
        xfer_maybe_done(x);
    }
}

static void x_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    struct xfer *x = ns_conn_data(c);
    if (!d) {
        x->eof = 1;
        assert_int_equal(x->recvd, x->expect);
        xfer_maybe_done(x);
        return;
    }
    for (size_t i = 0; i < len; i++)
        if (d[i] != next_byte(&x->rx))
            x->bad++;
    x->recvd += len;
    ns_conn_consumed(c, len);
}

static void x_writable(struct ns_conn *c)
{
    pump(ns_conn_data(c));
}

static void x_error(struct ns_conn *c, int err)
{
    struct xfer *x = ns_conn_data(c);
    x->err = err;
    fail_msg("transfer error %s", base_strerror(err));
}

static void x_connect(struct ns_conn *c, int status)
{
    assert_int_equal(status, 0);
    pump(ns_conn_data(c));
}

static const struct ns_conn_cbs xfer_cbs = {x_connect, x_read, x_writable, x_error};

static struct xfer *server_x;
static uint64_t server_send;

static void x_accept(void *ctx, struct ns_conn *c)
{
    int *finished = ctx;
    struct xfer *x = calloc(1, sizeof(*x));
    x->c = c;
    x->to_send = server_send;
    x->expect = server_send;
    x->tx = 0xB0B0B0B0;
    x->rx = 0xA0A0A0A0;
    x->finished = finished;
    server_x = x;
    ns_conn_set_cbs(c, &xfer_cbs, x);
    pump(x);
}

static void transfer(const struct base_addr *dst, uint64_t bytes)
{
    int finished = 0;
    server_send = bytes;
    assert_int_equal(ns_stack_handle_tcp(tn_b.ns, NULL, 5001, x_accept, &finished), 0);
    struct xfer *x = calloc(1, sizeof(*x));
    x->to_send = x->expect = bytes;
    x->tx = 0xA0A0A0A0;
    x->rx = 0xB0B0B0B0;
    x->finished = &finished;
    struct base_endpoint r = tn_ep(dst, 5001);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &xfer_cbs, x, &x->c), 0);
    assert_non_null(x->c);
    tn_run_until_n(&finished, 2);
    assert_int_equal(x->bad, 0);
    assert_int_equal(server_x->bad, 0);
    assert_int_equal(x->recvd, bytes);
    assert_int_equal(server_x->recvd, bytes);
    free(x);
    free(server_x);
    server_x = NULL;
    assert_int_equal(ns_stack_counters(tn_a.ns)->tcp_open, 0);
    assert_int_equal(ns_stack_counters(tn_b.ns)->tcp_open, 0);
}

static void idle_guard_cb(uv_timer_t *t)
{
    tn_deadline_hit = 1;
    uv_stop(t->loop);
}

/* Two idle stacks with IPv4 and IPv6 addresses hold no active timer: the loop has nothing to
 * wait for and returns at once (an unref'd guard ends it otherwise). */
static void test_idle_no_wakeups(void **state)
{
    (void)state;
    uv_timer_t guard;
    uv_timer_init(&tn_loop, &guard);
    uv_timer_start(&guard, idle_guard_cb, 2500, 0);
    uv_unref((uv_handle_t *)&guard);
    tn_deadline_hit = 0;
    uv_run(&tn_loop, UV_RUN_DEFAULT);
    int woke = tn_deadline_hit;
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&tn_loop, UV_RUN_NOWAIT);
    tn_deadline_hit = 0;
    assert_false(woke);
}

static void test_transfer_v4_100mb(void **state)
{
    (void)state;
    transfer(&tn_b.v4, 100u * 1024 * 1024);
}

static void test_transfer_v6_10mb(void **state)
{
    (void)state;
    transfer(&tn_b.v6, 10u * 1024 * 1024);
}

/* ---- flow control: a paused reader stops the writer ---- */

struct fc {
    struct ns_conn *c, *s;
    uint64_t sent, got;
    int connected, blocked, eof;
};
static struct fc fc;

static void fc_connect(struct ns_conn *c, int status)
{
    (void)c;
    assert_int_equal(status, 0);
    fc.connected = 1;
}
static void fc_writable(struct ns_conn *c)
{
    (void)c;
    fc.blocked = 0;
}
static void fc_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        fc.eof = 1;
        return;
    }
    fc.got += len;
    ns_conn_consumed(c, len);
}
static const struct ns_conn_cbs fc_cbs = {fc_connect, fc_read, fc_writable, NULL};
static void fc_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    fc.s = c;
    ns_conn_set_cbs(c, &fc_cbs, NULL);
    ns_conn_read_pause(c, 1);
}

static uint64_t fc_target;
static int fc_done(void)
{
    return fc.got >= fc_target;
}

static void test_flow_control(void **state)
{
    (void)state;
    tn_free_sides();
    struct ns_config cfg = {.tcp_rcv_wnd = 256 * 1024, .tcp_snd_buf = 128 * 1024};
    tn_setup_cfg(&cfg);
    memset(&fc, 0, sizeof(fc));
    assert_int_equal(ns_stack_handle_tcp(tn_b.ns, NULL, 5002, fc_accept, NULL), 0);
    struct base_endpoint r = tn_ep(&tn_b.v4, 5002);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &fc_cbs, NULL, &fc.c), 0);
    assert_non_null(fc.c);
    tn_run_until(&fc.connected);
    static uint8_t chunk[65536];
    /* Write until the sender is told to wait, many times over: the total must stay bounded by
   * the receiver's window plus the sender's buffer. */
    for (int round = 0; round < 50; round++) {
        ssize_t n;
        while ((n = ns_conn_write(fc.c, chunk, sizeof(chunk))) > 0)
            fc.sent += (uint64_t)n;
        fc.blocked = 1;
        for (int i = 0; i < 5; i++)
            uv_run(&tn_loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(fc.got, 0);
    assert_true(fc.sent <= 256 * 1024 + 128 * 1024 + 65536);
    assert_true(fc.sent >= 128 * 1024);
    uint64_t stalled = fc.sent;
    ns_conn_read_pause(fc.s, 0);
    /* Resumed: everything written arrives and the writer is told to go on. */
    fc_target = stalled;
    tn_run_pred(fc_done);
    assert_int_equal(fc.got, stalled);
    assert_int_equal(fc.blocked, 0);
    ns_conn_close(fc.c);
    ns_conn_close(fc.s);
}

/* ---- half-close ordering, reset, refused, unreachable ---- */

struct hc {
    struct ns_conn *c, *s;
    char a_got[64], b_got[64];
    size_t a_len, b_len;
    int a_eof, b_eof, connected, a_err, a_status;
    int order_ok;
};
static struct hc hc;

static void hc_a_connect(struct ns_conn *c, int status)
{
    hc.a_status = status;
    hc.connected = 1;
    if (status != 0)
        return;
    assert_int_equal(ns_conn_write(c, "hello", 5), 5);
    assert_int_equal(ns_conn_shutdown(c), 0);
}
static void hc_a_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        hc.a_eof = 1;
        return;
    }
    memcpy(hc.a_got + hc.a_len, d, len);
    hc.a_len += len;
    ns_conn_consumed(c, len);
}
static void hc_a_error(struct ns_conn *c, int err)
{
    (void)c;
    hc.a_err = err;
}
static void hc_b_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        /* FIN after the data, and our direction is still open. */
        hc.b_eof = 1;
        hc.order_ok = hc.b_len == 5;
        assert_int_equal(ns_conn_write(c, "world", 5), 5);
        ns_conn_close(c);
        hc.s = NULL;
        return;
    }
    memcpy(hc.b_got + hc.b_len, d, len);
    hc.b_len += len;
    ns_conn_consumed(c, len);
}
static const struct ns_conn_cbs hc_a_cbs = {hc_a_connect, hc_a_read, NULL, hc_a_error};
static const struct ns_conn_cbs hc_b_cbs = {NULL, hc_b_read, NULL, NULL};
static void hc_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    hc.s = c;
    ns_conn_set_cbs(c, &hc_b_cbs, NULL);
}

static void test_half_close(void **state)
{
    (void)state;
    memset(&hc, 0, sizeof(hc));
    ns_stack_handle_tcp(tn_b.ns, &tn_b.v6, 7, hc_accept, NULL);
    struct base_endpoint r = tn_ep(&tn_b.v6, 7);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    tn_run_until(&hc.a_eof);
    assert_true(hc.order_ok);
    assert_memory_equal(hc.b_got, "hello", 5);
    assert_int_equal(hc.a_len, 5);
    assert_memory_equal(hc.a_got, "world", 5);
    assert_int_equal(hc.a_err, 0);
    ns_conn_close(hc.c);
}

static void rst_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    ns_conn_reset(c);
}

static void test_reset(void **state)
{
    (void)state;
    memset(&hc, 0, sizeof(hc));
    ns_stack_handle_tcp(tn_b.ns, NULL, 0, rst_accept, NULL); /* any port: reset at once */
    struct base_endpoint r = tn_ep(&tn_b.v4, 4242);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    tn_run_until(&hc.a_err);
    assert_int_equal(hc.a_err, -ECONNRESET);
    ns_conn_close(hc.c);
}

/* ---- a per-connection send limit ---- */

static struct {
    struct ns_conn *a;
    size_t b_len;
    int connected, writable;
} sl;

static void sl_connect(struct ns_conn *c, int status)
{
    (void)c;
    sl.connected = status == 0 ? 1 : -1;
}
static void sl_writable(struct ns_conn *c)
{
    (void)c;
    sl.writable = 1;
}
static void sl_b_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    (void)d;
    sl.b_len += len;
    ns_conn_consumed(c, len);
}
static const struct ns_conn_cbs sl_a_cbs = {sl_connect, NULL, sl_writable, NULL};
static void sl_b_error(struct ns_conn *c, int err)
{
    assert_int_equal(err, BASE_ECLOSING); /* the receiver lives until the stack closes */
    ns_conn_close(c);
}
static const struct ns_conn_cbs sl_b_cbs = {NULL, sl_b_read, NULL, sl_b_error};
static void sl_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    ns_conn_set_cbs(c, &sl_b_cbs, NULL);
}

/* A 64 KiB limit: one write takes exactly 64 KiB of 1 MiB, nothing more fits until the peer
 * acknowledges, then on_writable says there is room again. */
static void test_send_limit(void **state)
{
    (void)state;
    memset(&sl, 0, sizeof(sl));
    ns_stack_handle_tcp(tn_b.ns, &tn_b.v4, 9, sl_accept, NULL);
    struct base_endpoint r = tn_ep(&tn_b.v4, 9);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &sl_a_cbs, NULL, &sl.a), 0);
    tn_run_until(&sl.connected);
    assert_int_equal(sl.connected, 1);
    ns_conn_set_send_limit(sl.a, 65536);
    static uint8_t big[1 << 20];
    assert_int_equal(ns_conn_write(sl.a, big, sizeof(big)), 65536);
    assert_int_equal(ns_conn_write_space(sl.a), 0);
    tn_run_until(&sl.writable);
    assert_true(sl.b_len > 0);
    assert_true(ns_conn_write_space(sl.a) >= 65536 / 4);
    assert_true(ns_conn_write_space(sl.a) <= 65536);
    ns_conn_close(sl.a);
}

static void test_refused(void **state)
{
    (void)state;
    memset(&hc, 0, sizeof(hc));
    struct base_endpoint r = tn_ep(&tn_b.v4, 4243); /* no handler */
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    assert_non_null(hc.c);
    tn_run_until(&hc.connected);
    assert_int_equal(hc.a_status, -ECONNREFUSED);
    ns_conn_close(hc.c);
    assert_true(ns_stack_counters(tn_b.ns)->tcp_unhandled >= 1);
}

static void test_unreachable(void **state)
{
    (void)state;
    memset(&hc, 0, sizeof(hc));
    struct base_addr nowhere;
    base_addr_parse(&nowhere, "100.64.0.99", strlen("100.64.0.99"));
    struct base_endpoint r = tn_ep(&nowhere, 80);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    assert_non_null(hc.c);
    tn_run_until(&hc.connected);
    assert_int_equal(hc.a_status, -ENETUNREACH);
    ns_conn_close(hc.c);
    memset(&hc, 0, sizeof(hc));
    base_addr_parse(&nowhere, "fd7a:115c:a1e0::99", strlen("fd7a:115c:a1e0::99"));
    r = tn_ep(&nowhere, 80);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    tn_run_until(&hc.connected);
    assert_int_equal(hc.a_status, -ENETUNREACH);
    ns_conn_close(hc.c);
    assert_int_equal(ns_stack_counters(tn_a.ns)->no_route, 2);
}

/* ---- 1000 concurrent connections ---- */

#define MANY 1000
struct many {
    struct ns_conn *c;
    int connected, echoed, eof;
    size_t got;
};
static struct many many[MANY];
static int many_connected, many_echoed, many_server_open;

static void m_connect(struct ns_conn *c, int status)
{
    struct many *m = ns_conn_data(c);
    assert_int_equal(status, 0);
    m->connected = 1;
    many_connected++;
}
static void m_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    struct many *m = ns_conn_data(c);
    if (!d) {
        m->eof = 1;
        return;
    }
    m->got += len;
    ns_conn_consumed(c, len);
    if (m->got == 100)
        many_echoed++;
}
static const struct ns_conn_cbs m_cbs = {m_connect, m_read, NULL, NULL};

static void echo_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        ns_conn_close(c);
        many_server_open--;
        return;
    }
    assert_int_equal(ns_conn_write(c, d, len), (ssize_t)len);
    ns_conn_consumed(c, len);
}
static const struct ns_conn_cbs echo_cbs = {NULL, echo_read, NULL, NULL};
static void echo_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    many_server_open++;
    ns_conn_set_cbs(c, &echo_cbs, NULL);
}

static int many_all_closed(void)
{
    if (many_server_open > 0)
        return 0;
    for (int i = 0; i < MANY; i++)
        if (!many[i].eof)
            return 0;
    return 1;
}

static void test_many_connections(void **state)
{
    (void)state;
    memset(many, 0, sizeof(many));
    many_connected = many_echoed = many_server_open = 0;
    ns_stack_handle_tcp(tn_b.ns, &tn_b.v4, 9000, echo_accept, NULL);
    /* Open in waves (a burst of 1000 SYNs is the half-open test's job), all held open. */
    for (int w = 0; w < MANY; w += 100) {
        for (int i = w; i < w + 100; i++) {
            struct base_endpoint r = tn_ep(&tn_b.v4, 9000);
            assert_int_equal(ns_conn_connect(tn_a.ns, &r, &m_cbs, &many[i], &many[i].c), 0);
            assert_non_null(many[i].c);
        }
        tn_run_until_n(&many_connected, w + 100);
        /* B accepts each once A's handshake ACK arrives: held for data, it leaves alone
         * within NS_ACK_HOLD_MS. Until then each is half-open on B. */
        tn_run_until_n(&many_server_open, w + 100);
    }
    assert_int_equal(ns_stack_counters(tn_a.ns)->tcp_open, MANY);
    assert_int_equal(many_server_open, MANY);
    uint8_t msg[100];
    memset(msg, 'x', sizeof(msg));
    for (int i = 0; i < MANY; i++)
        assert_int_equal(ns_conn_write(many[i].c, msg, sizeof(msg)), 100);
    tn_run_until_n(&many_echoed, MANY);
    /* Source ports are random (RFC 6056), not a sequence. */
    int seq = 0;
    for (int i = 1; i < MANY; i++)
        seq += ns_conn_local(many[i].c)->port == ns_conn_local(many[i - 1].c)->port + 1;
    assert_true(seq < 10);
    for (int i = 0; i < MANY; i++)
        ns_conn_shutdown(many[i].c);
    tn_run_pred(many_all_closed);
    for (int i = 0; i < MANY; i++)
        ns_conn_close(many[i].c);
    assert_int_equal(ns_stack_counters(tn_a.ns)->tcp_open, 0);
    assert_int_equal(ns_stack_counters(tn_b.ns)->tcp_open, 0);
}

/* TCP to an extra address (100.100.100.100, where MagicDNS listens): the listener and its
 * replies must live on that address's own netif, or lwIP refuses to answer from it. */
static void test_extra_address_tcp(void **state)
{
    (void)state;
    memset(many, 0, sizeof(many));
    many_connected = many_echoed = many_server_open = 0;
    base_addr_parse(&tn_b.extra, "100.100.100.100",
                    strlen("100.100.100.100")); /* the wiring routes it to B */
    assert_int_equal(ns_stack_add_address(tn_b.ns, &tn_b.extra), 0);
    assert_int_equal(ns_stack_handle_tcp(tn_b.ns, &tn_b.extra, 53, echo_accept, NULL), 0);
    struct base_endpoint r = tn_ep(&tn_b.extra, 53);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &m_cbs, &many[0], &many[0].c), 0);
    assert_non_null(many[0].c);
    tn_run_until_n(&many_connected, 1);
    uint8_t msg[100];
    memset(msg, 'm', sizeof(msg));
    assert_int_equal(ns_conn_write(many[0].c, msg, sizeof(msg)), 100);
    tn_run_until_n(&many_echoed, 1);
    ns_conn_shutdown(many[0].c);
    tn_run_until(&many[0].eof);
    ns_conn_close(many[0].c);
}

/* ---- node isolation: the same port on both nodes goes to the right one ---- */

static int iso_a, iso_b;
static void iso_accept(void *ctx, struct ns_conn *c)
{
    (*(int *)ctx)++;
    ns_conn_reset(c);
}

static void test_isolation(void **state)
{
    (void)state;
    iso_a = iso_b = 0;
    ns_stack_handle_tcp(tn_a.ns, NULL, 7000, iso_accept, &iso_a);
    ns_stack_handle_tcp(tn_b.ns, NULL, 7000, iso_accept, &iso_b);
    memset(&hc, 0, sizeof(hc));
    struct base_endpoint r = tn_ep(&tn_b.v4, 7000);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    tn_run_until(&hc.a_err);
    ns_conn_close(hc.c);
    assert_int_equal(iso_b, 1);
    assert_int_equal(iso_a, 0);
    memset(&hc, 0, sizeof(hc));
    r = tn_ep(&tn_a.v6, 7000);
    assert_int_equal(ns_conn_connect(tn_b.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    tn_run_until(&hc.a_err);
    ns_conn_close(hc.c);
    assert_int_equal(iso_a, 1);
    assert_int_equal(iso_b, 1);
}

/* ---- the SYN carries window scaling and an MSS from the MTU ---- */

static int tcp_option(const uint8_t *tcp, size_t hl, uint8_t kind, uint8_t *val, size_t vlen)
{
    for (size_t i = 20; i < hl;) {
        if (tcp[i] == 0)
            break;
        if (tcp[i] == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hl || tcp[i + 1] < 2)
            break;
        if (tcp[i] == kind && tcp[i + 1] == vlen + 2) {
            memcpy(val, tcp + i + 2, vlen);
            return 1;
        }
        i += tcp[i + 1];
    }
    return 0;
}

static void test_syn_options(void **state)
{
    (void)state;
    for (int v6 = 0; v6 < 2; v6++) {
        memset(&hc, 0, sizeof(hc));
        tn_a.capture_syn = 1;
        tn_a.syn_len = 0;
        struct base_endpoint r = tn_ep(v6 ? &tn_b.v6 : &tn_b.v4, 1);
        assert_int_equal(ns_conn_connect(tn_a.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
        tn_run_until(&hc.connected);
        ns_conn_close(hc.c);
        tn_a.capture_syn = 0;
        assert_true(tn_a.syn_len > 0);
        size_t ihl = v6 ? 40 : 20;
        const uint8_t *tcp = tn_a.syn + ihl;
        size_t hl = (size_t)(tcp[12] >> 4) * 4;
        uint8_t ws, mss[2];
        assert_true(tcp_option(tcp, hl, 3, &ws, 1));
        assert_int_equal(ws, 7);
        assert_true(tcp_option(tcp, hl, 2, mss, 2));
        assert_int_equal(mss[0] << 8 | mss[1], v6 ? 1420 - 60 : 1420 - 40);
        uint16_t sport = (uint16_t)(tcp[0] << 8 | tcp[1]);
        assert_true(sport >= 1024);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_no_wakeups, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_syn_options, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_half_close, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_reset, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_refused, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_send_limit, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_isolation, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_extra_address_tcp, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_flow_control, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_many_connections, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_transfer_v6_10mb, tn_setup, tn_teardown),
        cmocka_unit_test_setup_teardown(test_transfer_v4_100mb, tn_setup, tn_teardown),
    };
    return cmocka_run_group_tests(tests, tn_group_setup, tn_group_teardown);
}
