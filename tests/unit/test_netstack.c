/* Two stacks back to back on one loop: A = 100.64.0.1 / fd7a:115c:a1e0::1, B = .2 / ::2.
 * A's output is B's input and the other way round; any other destination has no route. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "netstack.h"
#include "ns_internal.h"
#include "base.h"

struct side {
    struct ns_stack *ns;
    struct side *peer;
    struct base_addr v4, v6, extra;
    int capture_syn; /* copy the next SYN we send into syn[] */
    uint8_t syn[128];
    size_t syn_len;
};

static uv_loop_t loop;
static struct side A, B;
static int deadline_hit;

static int addr_is(const uint8_t *ip, const struct base_addr *a, int fam)
{
    return a->family == fam && memcmp(ip, a->ip, fam == AF_INET ? 4 : 16) == 0;
}

static int out_fn(void *ctx, const uint8_t *pkt, size_t len)
{
    struct side *s = ctx;
    struct side *p = s->peer;
    int v4 = (pkt[0] >> 4) == 4;
    const uint8_t *dst = v4 ? pkt + 16 : pkt + 24;
    int fam = v4 ? AF_INET : AF_INET6;
    if (s->capture_syn && !s->syn_len) {
        size_t hl = v4 ? (size_t)(pkt[0] & 15) * 4 : 40;
        int proto = v4 ? pkt[9] : pkt[6];
        if (proto == 6 && (pkt[hl + 13] & 0x12) == 0x02 && len <= sizeof(s->syn)) {
            memcpy(s->syn, pkt, len);
            s->syn_len = len;
        }
    }
    if (!p->ns)
        return 0; /* the peer is gone (teardown): the packet is lost */
    if (addr_is(dst, &p->v4, fam) || addr_is(dst, &p->v6, fam) || addr_is(dst, &p->extra, fam)) {
        ns_stack_input(p->ns, pkt, len);
        return 0;
    }
    return NS_OUTPUT_NO_ROUTE;
}

static void make_side(struct side *s, struct side *peer, int n, const struct ns_config *base)
{
    char buf[64];
    memset(s, 0, sizeof(*s));
    s->peer = peer;
    snprintf(buf, sizeof(buf), "100.64.0.%d", n);
    base_addr_parse(&s->v4, buf, strlen(buf));
    snprintf(buf, sizeof(buf), "fd7a:115c:a1e0::%d", n);
    base_addr_parse(&s->v6, buf, strlen(buf));
    struct ns_config cfg = {0};
    if (base)
        cfg = *base;
    cfg.addr4 = s->v4;
    cfg.addr6 = s->v6;
    cfg.output = out_fn;
    cfg.output_ctx = s;
    assert_int_equal(ns_stack_new(&loop, &cfg, &s->ns), 0);
}

static int setup_cfg(const struct ns_config *cfg)
{
    make_side(&A, &B, 1, cfg);
    make_side(&B, &A, 2, cfg);
    return 0;
}

static void on_stack_closed(void *arg)
{
    (*(int *)arg)++;
}

static void run_until_n(const int *v, int n);

/* Closes ns and runs the loop until it is freed: every test releases what it holds. */
static void close_stack(struct ns_stack *ns)
{
    int closed = 0;
    ns_stack_close(ns, on_stack_closed, &closed);
    assert_int_equal(closed, 0); /* never from inside ns_stack_close */
    run_until_n(&closed, 1);
}

static void free_sides(void)
{
    struct ns_stack *a = A.ns, *b = B.ns;
    A.ns = B.ns = NULL;
    if (a)
        close_stack(a);
    if (b)
        close_stack(b);
}

static int setup(void **state)
{
    (void)state;
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "t=%llu ms\n", (unsigned long long)(uv_hrtime() / 1000000));
    return setup_cfg(NULL);
}

static int teardown(void **state)
{
    (void)state;
    free_sides();
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
    deadline_hit = 1;
}

/* Run the loop until pred() holds; a generous deadline turns a hang into a failure. The
 * prepare handle stops the loop before it would block once the condition is met. */
static int (*cur_pred)(void);
static const int *watch_v;
static int watch_n;

static void stop_if_done(uv_prepare_t *h)
{
    if (cur_pred() || deadline_hit)
        uv_stop(h->loop);
}

static void run_pred(int (*pred)(void))
{
    uv_timer_t t;
    uv_prepare_t prep;
    deadline_hit = 0;
    cur_pred = pred;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, deadline_cb, 300000, 0);
    uv_prepare_init(&loop, &prep);
    uv_prepare_start(&prep, stop_if_done);
    while (!pred() && !deadline_hit)
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(deadline_hit);
}

static int at_least(void)
{
    return *watch_v >= watch_n;
}

static int nonzero(void)
{
    return *watch_v != 0;
}

static void run_until_n(const int *v, int n)
{
    watch_v = v;
    watch_n = n;
    run_pred(at_least);
}

/* Until *flag is non-zero (errors are negative codes). */
static void run_until(int *flag)
{
    watch_v = flag;
    run_pred(nonzero);
}

static struct base_endpoint ep(const struct base_addr *a, uint16_t port)
{
    struct base_endpoint e = {.addr = *a, .port = port};
    return e;
}

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
    assert_int_equal(ns_stack_handle_tcp(B.ns, NULL, 5001, x_accept, &finished), 0);
    struct xfer *x = calloc(1, sizeof(*x));
    x->to_send = x->expect = bytes;
    x->tx = 0xA0A0A0A0;
    x->rx = 0xB0B0B0B0;
    x->finished = &finished;
    struct base_endpoint r = ep(dst, 5001);
    assert_int_equal(ns_conn_connect(A.ns, &r, &xfer_cbs, x, &x->c), 0);
    assert_non_null(x->c);
    run_until_n(&finished, 2);
    assert_int_equal(x->bad, 0);
    assert_int_equal(server_x->bad, 0);
    assert_int_equal(x->recvd, bytes);
    assert_int_equal(server_x->recvd, bytes);
    free(x);
    free(server_x);
    server_x = NULL;
    assert_int_equal(ns_stack_counters(A.ns)->tcp_open, 0);
    assert_int_equal(ns_stack_counters(B.ns)->tcp_open, 0);
}

static void idle_guard_cb(uv_timer_t *t)
{
    deadline_hit = 1;
    uv_stop(t->loop);
}

/* Two idle stacks with IPv4 and IPv6 addresses hold no active timer: the loop has nothing to
 * wait for and returns at once (an unref'd guard ends it otherwise). */
static void test_idle_no_wakeups(void **state)
{
    (void)state;
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, idle_guard_cb, 2500, 0);
    uv_unref((uv_handle_t *)&guard);
    deadline_hit = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    int woke = deadline_hit;
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    deadline_hit = 0;
    assert_false(woke);
}

static void test_transfer_v4_100mb(void **state)
{
    (void)state;
    transfer(&B.v4, 100u * 1024 * 1024);
}

static void test_transfer_v6_10mb(void **state)
{
    (void)state;
    transfer(&B.v6, 10u * 1024 * 1024);
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
    free_sides();
    struct ns_config cfg = {.tcp_rcv_wnd = 256 * 1024, .tcp_snd_buf = 128 * 1024};
    setup_cfg(&cfg);
    memset(&fc, 0, sizeof(fc));
    assert_int_equal(ns_stack_handle_tcp(B.ns, NULL, 5002, fc_accept, NULL), 0);
    struct base_endpoint r = ep(&B.v4, 5002);
    assert_int_equal(ns_conn_connect(A.ns, &r, &fc_cbs, NULL, &fc.c), 0);
    assert_non_null(fc.c);
    run_until(&fc.connected);
    static uint8_t chunk[65536];
    /* Write until the sender is told to wait, many times over: the total must stay bounded by
   * the receiver's window plus the sender's buffer. */
    for (int round = 0; round < 50; round++) {
        ssize_t n;
        while ((n = ns_conn_write(fc.c, chunk, sizeof(chunk))) > 0)
            fc.sent += (uint64_t)n;
        fc.blocked = 1;
        for (int i = 0; i < 5; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(fc.got, 0);
    assert_true(fc.sent <= 256 * 1024 + 128 * 1024 + 65536);
    assert_true(fc.sent >= 128 * 1024);
    uint64_t stalled = fc.sent;
    ns_conn_read_pause(fc.s, 0);
    /* Resumed: everything written arrives and the writer is told to go on. */
    fc_target = stalled;
    run_pred(fc_done);
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
    ns_stack_handle_tcp(B.ns, &B.v6, 7, hc_accept, NULL);
    struct base_endpoint r = ep(&B.v6, 7);
    assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    run_until(&hc.a_eof);
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
    ns_stack_handle_tcp(B.ns, NULL, 0, rst_accept, NULL); /* any port: reset at once */
    struct base_endpoint r = ep(&B.v4, 4242);
    assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    run_until(&hc.a_err);
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
    ns_stack_handle_tcp(B.ns, &B.v4, 9, sl_accept, NULL);
    struct base_endpoint r = ep(&B.v4, 9);
    assert_int_equal(ns_conn_connect(A.ns, &r, &sl_a_cbs, NULL, &sl.a), 0);
    run_until(&sl.connected);
    assert_int_equal(sl.connected, 1);
    ns_conn_set_send_limit(sl.a, 65536);
    static uint8_t big[1 << 20];
    assert_int_equal(ns_conn_write(sl.a, big, sizeof(big)), 65536);
    assert_int_equal(ns_conn_write_space(sl.a), 0);
    run_until(&sl.writable);
    assert_true(sl.b_len > 0);
    assert_true(ns_conn_write_space(sl.a) >= 65536 / 4);
    assert_true(ns_conn_write_space(sl.a) <= 65536);
    ns_conn_close(sl.a);
}

static void test_refused(void **state)
{
    (void)state;
    memset(&hc, 0, sizeof(hc));
    struct base_endpoint r = ep(&B.v4, 4243); /* no handler */
    assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    assert_non_null(hc.c);
    run_until(&hc.connected);
    assert_int_equal(hc.a_status, -ECONNREFUSED);
    ns_conn_close(hc.c);
    assert_true(ns_stack_counters(B.ns)->tcp_unhandled >= 1);
}

static void test_unreachable(void **state)
{
    (void)state;
    memset(&hc, 0, sizeof(hc));
    struct base_addr nowhere;
    base_addr_parse(&nowhere, "100.64.0.99", strlen("100.64.0.99"));
    struct base_endpoint r = ep(&nowhere, 80);
    assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    assert_non_null(hc.c);
    run_until(&hc.connected);
    assert_int_equal(hc.a_status, -ENETUNREACH);
    ns_conn_close(hc.c);
    memset(&hc, 0, sizeof(hc));
    base_addr_parse(&nowhere, "fd7a:115c:a1e0::99", strlen("fd7a:115c:a1e0::99"));
    r = ep(&nowhere, 80);
    assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    run_until(&hc.connected);
    assert_int_equal(hc.a_status, -ENETUNREACH);
    ns_conn_close(hc.c);
    assert_int_equal(ns_stack_counters(A.ns)->no_route, 2);
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
    ns_stack_handle_tcp(B.ns, &B.v4, 9000, echo_accept, NULL);
    /* Open in waves (a burst of 1000 SYNs is the half-open test's job), all held open. */
    for (int w = 0; w < MANY; w += 100) {
        for (int i = w; i < w + 100; i++) {
            struct base_endpoint r = ep(&B.v4, 9000);
            assert_int_equal(ns_conn_connect(A.ns, &r, &m_cbs, &many[i], &many[i].c), 0);
            assert_non_null(many[i].c);
        }
        run_until_n(&many_connected, w + 100);
    }
    assert_int_equal(ns_stack_counters(A.ns)->tcp_open, MANY);
    assert_int_equal(many_server_open, MANY);
    uint8_t msg[100];
    memset(msg, 'x', sizeof(msg));
    for (int i = 0; i < MANY; i++)
        assert_int_equal(ns_conn_write(many[i].c, msg, sizeof(msg)), 100);
    run_until_n(&many_echoed, MANY);
    /* Source ports are random (RFC 6056), not a sequence. */
    int seq = 0;
    for (int i = 1; i < MANY; i++)
        seq += ns_conn_local(many[i].c)->port == ns_conn_local(many[i - 1].c)->port + 1;
    assert_true(seq < 10);
    for (int i = 0; i < MANY; i++)
        ns_conn_shutdown(many[i].c);
    run_pred(many_all_closed);
    for (int i = 0; i < MANY; i++)
        ns_conn_close(many[i].c);
    assert_int_equal(ns_stack_counters(A.ns)->tcp_open, 0);
    assert_int_equal(ns_stack_counters(B.ns)->tcp_open, 0);
}

/* TCP to an extra address (100.100.100.100, where MagicDNS listens): the listener and its
 * replies must live on that address's own netif, or lwIP refuses to answer from it. */
static void test_extra_address_tcp(void **state)
{
    (void)state;
    memset(many, 0, sizeof(many));
    many_connected = many_echoed = many_server_open = 0;
    base_addr_parse(&B.extra, "100.100.100.100",
                    strlen("100.100.100.100")); /* the wiring routes it to B */
    assert_int_equal(ns_stack_add_address(B.ns, &B.extra), 0);
    assert_int_equal(ns_stack_handle_tcp(B.ns, &B.extra, 53, echo_accept, NULL), 0);
    struct base_endpoint r = ep(&B.extra, 53);
    assert_int_equal(ns_conn_connect(A.ns, &r, &m_cbs, &many[0], &many[0].c), 0);
    assert_non_null(many[0].c);
    run_until_n(&many_connected, 1);
    uint8_t msg[100];
    memset(msg, 'm', sizeof(msg));
    assert_int_equal(ns_conn_write(many[0].c, msg, sizeof(msg)), 100);
    run_until_n(&many_echoed, 1);
    ns_conn_shutdown(many[0].c);
    run_until(&many[0].eof);
    ns_conn_close(many[0].c);
}

/* ---- half-open flood: capped, oldest dropped ---- */

static size_t build_syn(uint8_t *p, const struct base_addr *src, const struct base_addr *dst,
                        uint16_t sport, uint16_t dport)
{
    memset(p, 0, 40);
    p[0] = 0x45;
    p[3] = 40;
    p[8] = 64;
    p[9] = 6;
    memcpy(p + 12, src->ip, 4);
    memcpy(p + 16, dst->ip, 4);
    uint8_t *t = p + 20;
    t[0] = (uint8_t)(sport >> 8);
    t[1] = (uint8_t)sport;
    t[2] = (uint8_t)(dport >> 8);
    t[3] = (uint8_t)dport;
    t[4] = 1;
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14] = 0xff;
    t[15] = 0xff;
    return 40;
}

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
    assert_int_equal(ns_stack_new(&loop, &cfg, &ns), 0);
    ns_stack_handle_tcp(ns, NULL, 0, never_accept, NULL);
    struct base_addr peer;
    base_addr_parse(&peer, "100.64.0.77", strlen("100.64.0.77"));
    uint8_t pkt[64];
    for (int i = 0; i < 5000; i++) {
        size_t n = build_syn(pkt, &peer, &cfg.addr4, (uint16_t)(1024 + i), (uint16_t)(80 + i % 7));
        ns_stack_input(ns, pkt, n);
    }
    const struct ns_counters *ctr = ns_stack_counters(ns);
    assert_int_equal(ctr->drop_pending, 5000 - 64);
    assert_int_equal(ctr->tcp_open, 0);
    /* A SYN to another node's address is not ours, whatever listens here. */
    size_t n = build_syn(pkt, &peer, &B.v4, 5555, 80);
    ns_stack_input(ns, pkt, n);
    assert_int_equal(ctr->drop_not_ours, 1);
    close_stack(ns);
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
    ns_stack_handle_tcp(A.ns, NULL, 7000, iso_accept, &iso_a);
    ns_stack_handle_tcp(B.ns, NULL, 7000, iso_accept, &iso_b);
    memset(&hc, 0, sizeof(hc));
    struct base_endpoint r = ep(&B.v4, 7000);
    assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    run_until(&hc.a_err);
    ns_conn_close(hc.c);
    assert_int_equal(iso_b, 1);
    assert_int_equal(iso_a, 0);
    memset(&hc, 0, sizeof(hc));
    r = ep(&A.v6, 7000);
    assert_int_equal(ns_conn_connect(B.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
    run_until(&hc.a_err);
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
        A.capture_syn = 1;
        A.syn_len = 0;
        struct base_endpoint r = ep(v6 ? &B.v6 : &B.v4, 1);
        assert_int_equal(ns_conn_connect(A.ns, &r, &hc_a_cbs, NULL, &hc.c), 0);
        run_until(&hc.connected);
        ns_conn_close(hc.c);
        A.capture_syn = 0;
        assert_true(A.syn_len > 0);
        size_t ihl = v6 ? 40 : 20;
        const uint8_t *tcp = A.syn + ihl;
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

static void udp_roundtrip(struct side *from, struct side *to, const struct base_addr *dst)
{
    ns_stack_handle_udp(to->ns, NULL, 53, uecho_accept, NULL);
    memset(&ud, 0, sizeof(ud));
    struct base_endpoint r = ep(dst, 53);
    struct ns_udp *u;
    assert_int_equal(ns_udp_open(from->ns, &r, &u_cbs, NULL, &u), 0);
    assert_non_null(u);
    assert_int_equal(ns_udp_send(u, "abcdef", 6), 0);
    run_until(&ud.got);
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "udp rt t=%llu ms\n", (unsigned long long)(uv_hrtime() / 1000000));
    assert_int_equal(ud.len, 6);
    assert_memory_equal(ud.buf, "fedcba", 6);
    ns_udp_close(u);
}

static void test_udp(void **state)
{
    (void)state;
    udp_roundtrip(&A, &B, &B.v4);
    udp_roundtrip(&B, &A, &A.v4);
    udp_roundtrip(&A, &B, &B.v6);
    udp_roundtrip(&B, &A, &A.v6);
    assert_int_equal(ns_stack_counters(A.ns)->udp_open, 0);
    assert_int_equal(ns_stack_counters(B.ns)->udp_open, 0);
    /* No handler: ICMP port unreachable comes back as refused. */
    memset(&ud, 0, sizeof(ud));
    struct base_endpoint r = ep(&B.v4, 54);
    struct ns_udp *u;
    assert_int_equal(ns_udp_open(A.ns, &r, &u_cbs, NULL, &u), 0);
    assert_int_equal(ns_udp_send(u, "x", 1), 0);
    run_until(&ud.err);
    assert_int_equal(ud.err, -ECONNREFUSED);
    /* No route: unreachable. */
    memset(&ud, 0, sizeof(ud));
    struct base_addr nowhere;
    base_addr_parse(&nowhere, "100.64.0.99", strlen("100.64.0.99"));
    struct base_endpoint r2 = ep(&nowhere, 53);
    struct ns_udp *u2;
    assert_int_equal(ns_udp_open(A.ns, &r2, &u_cbs, NULL, &u2), 0);
    assert_int_equal(ns_udp_send(u2, "x", 1), 0);
    run_until(&ud.err);
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

static int do_ping(struct side *from, const char *dst, uint64_t timeout)
{
    struct pg p = {0};
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, dst, strlen(dst)), 0);
    struct ns_ping *pp;
    assert_int_equal(ns_ping_send(from->ns, &a, 1, 56, timeout, ping_cb, &p, &pp), 0);
    assert_non_null(pp);
    run_until(&p.done);
    return p.status;
}

static void test_ping(void **state)
{
    (void)state;
    assert_int_equal(do_ping(&A, "100.64.0.2", 10000), 0);
    assert_int_equal(do_ping(&B, "fd7a:115c:a1e0::1", 10000), 0);
    assert_int_equal(do_ping(&A, "100.64.0.99", 10000), -ENETUNREACH);
    assert_int_equal(do_ping(&A, "fd7a:115c:a1e0::99", 10000), -ENETUNREACH);
    /* MagicDNS's address answers once the node adds it; before that B drops it as not ours. */
    base_addr_parse(&B.extra, "100.100.100.100", strlen("100.100.100.100"));
    assert_int_equal(do_ping(&A, "100.100.100.100", 300), -ETIMEDOUT);
    assert_int_equal(ns_stack_add_address(B.ns, &B.extra), 0);
    assert_int_equal(do_ping(&A, "100.100.100.100", 10000), 0);
}

/* ---- malformed input is counted, never crashes ---- */

static void test_malformed(void **state)
{
    (void)state;
    const struct ns_counters *c = ns_stack_counters(B.ns);
    uint64_t before = c->drop_malformed;
    uint8_t pkt[64];
    ns_stack_input(B.ns, pkt, 0);
    memset(pkt, 0x45, sizeof(pkt));
    ns_stack_input(B.ns, pkt, 10);
    size_t n = build_syn(pkt, &A.v4, &B.v4, 1000, 80);
    pkt[32] = 0x10; /* data offset 1: shorter than a TCP header */
    ns_stack_input(B.ns, pkt, n);
    n = build_syn(pkt, &A.v4, &B.v4, 1000, 80);
    pkt[3] = 60; /* total length beyond the buffer */
    ns_stack_input(B.ns, pkt, n);
    pkt[0] = 0x60;
    pkt[4] = 0xff; /* IPv6 payload length beyond the buffer */
    ns_stack_input(B.ns, pkt, n);
    assert_int_equal(c->drop_malformed, before + 5);
}

/* ---- closing: every holder hears BASE_ECLOSING, the stack waits for every release ---- */

static struct {
    struct ns_conn *open, *open2, *connecting, *dead;
    int n_accepted, n_accepted_err;
    struct ns_udp *flow;
    int open_err, connecting_status, dead_err, dead_calls, accepted_err, flow_err, ping_status;
    int ping_done, watch_calls, watch_saw_ping;
    struct ns_stack_watch w1, w2, w3;
} cl;

/* A watcher that holds the open conn: it releases it itself, before any object hears. */
static void cl_watch_release(struct ns_stack_watch *w, struct ns_stack *ns)
{
    (void)ns;
    assert_ptr_equal(w, &cl.w1);
    cl.watch_calls++;
    ns_conn_close(cl.open);
    cl.open = NULL;
}
static void cl_watch_count(struct ns_stack_watch *w, struct ns_stack *ns)
{
    (void)ns;
    assert_ptr_equal(w, &cl.w2);
    cl.watch_calls++;
    cl.watch_saw_ping = cl.ping_done;
}

static void cl_open_connect(struct ns_conn *c, int status)
{
    (void)c;
    assert_int_equal(status, 0);
}
static void cl_open_error(struct ns_conn *c, int err)
{
    cl.open_err = err;
    ns_conn_close(c); /* released inside the callback */
}
static const struct ns_conn_cbs cl_open_cbs = {cl_open_connect, NULL, NULL, cl_open_error};

static void cl_connecting(struct ns_conn *c, int status)
{
    (void)c;
    cl.connecting_status = status; /* released later */
}
static const struct ns_conn_cbs cl_connecting_cbs = {cl_connecting, NULL, NULL, NULL};

static void cl_dead(struct ns_conn *c, int status)
{
    (void)c;
    cl.dead_err = status;
    cl.dead_calls++;
}
static const struct ns_conn_cbs cl_dead_cbs = {cl_dead, NULL, NULL, NULL};

static void cl_accepted_error(struct ns_conn *c, int err)
{
    cl.accepted_err = err;
    cl.n_accepted_err++;
    ns_conn_close(c);
}
static const struct ns_conn_cbs cl_accepted_cbs = {NULL, NULL, NULL, cl_accepted_error};
static void cl_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    cl.n_accepted++;
    ns_conn_set_cbs(c, &cl_accepted_cbs, NULL);
}

static void cl_flow_error(struct ns_udp *u, int err)
{
    (void)u;
    cl.flow_err = err; /* released later */
}
static const struct ns_udp_cbs cl_flow_cbs = {NULL, cl_flow_error};

static void cl_ping(void *data, int status, uint64_t rtt)
{
    (void)data;
    (void)rtt;
    cl.ping_status = status;
    cl.ping_done = 1;
}

static void test_close_tells_holders(void **state)
{
    (void)state;
    memset(&cl, 0, sizeof(cl));
    struct base_endpoint r = ep(&B.v4, 7100), nowhere;
    base_addr_parse(&nowhere.addr, "100.64.0.99", strlen("100.64.0.99"));
    nowhere.port = 80;
    assert_int_equal(ns_stack_handle_tcp(B.ns, NULL, 7100, cl_accept, NULL), 0);
    assert_int_equal(ns_conn_connect(A.ns, &r, &cl_open_cbs, NULL, &cl.open), 0);
    assert_int_equal(ns_conn_connect(A.ns, &r, &cl_open_cbs, NULL, &cl.open2), 0);
    assert_int_equal(ns_conn_connect(A.ns, &nowhere, &cl_dead_cbs, NULL, &cl.dead), 0);
    run_until(&cl.dead_err);
    assert_int_equal(cl.dead_err, -ENETUNREACH);
    run_until_n(&cl.n_accepted, 2);
    r.port = 7101; /* its SYN waits in the queue: still connecting when the stack closes */
    assert_int_equal(ns_conn_connect(A.ns, &r, &cl_connecting_cbs, NULL, &cl.connecting), 0);
    r.port = 53;
    assert_int_equal(ns_udp_open(A.ns, &r, &cl_flow_cbs, NULL, &cl.flow), 0);
    assert_int_equal(ns_ping_send(A.ns, &B.v4, 1, 8, 10000, cl_ping, NULL, NULL), 0);

    cl.w1.on_closing = cl_watch_release;
    cl.w2.on_closing = cl_watch_count;
    cl.w3.on_closing = cl_watch_count;
    assert_int_equal(ns_stack_watch(A.ns, &cl.w1), 0);
    assert_int_equal(ns_stack_watch(A.ns, &cl.w3), 0);
    assert_int_equal(ns_stack_watch(A.ns, &cl.w2), 0);
    ns_stack_unwatch(&cl.w3);
    int closed = 0;
    struct ns_stack *a = A.ns;
    A.ns = NULL; /* B's packets to A are lost from here */
    ns_stack_close(a, on_stack_closed, &closed);
    assert_int_equal(closed, 0);
    assert_int_equal(cl.watch_calls, 2);          /* w1 and w2, not the unwatched w3 */
    assert_int_equal(cl.watch_saw_ping, 0);       /* watches run before any object hears */
    assert_int_equal(cl.open_err, BASE_ECLOSING); /* open2; open was released by its watcher */
    assert_int_equal(ns_stack_watch(a, &cl.w3), BASE_ECLOSING);
    assert_int_equal(cl.connecting_status, BASE_ECLOSING);
    assert_int_equal(cl.flow_err, BASE_ECLOSING);
    assert_int_equal(cl.ping_status, BASE_ECLOSING);
    assert_int_equal(cl.dead_calls, 1); /* a dead conn is not told twice */
    /* Nothing new on a closing stack; the dead objects say why. */
    struct ns_conn *c;
    struct ns_udp *u;
    assert_int_equal(ns_conn_connect(a, &r, &cl_open_cbs, NULL, &c), BASE_ECLOSING);
    assert_int_equal(ns_udp_open(a, &r, &cl_flow_cbs, NULL, &u), BASE_ECLOSING);
    assert_int_equal(ns_ping_send(a, &B.v4, 2, 8, 100, cl_ping, NULL, NULL), BASE_ECLOSING);
    assert_int_equal(ns_stack_handle_tcp(a, NULL, 1, cl_accept, NULL), BASE_ECLOSING);
    assert_int_equal(ns_udp_send(cl.flow, "x", 1), BASE_ECLOSING);
    assert_int_equal(ns_conn_write(cl.connecting, "x", 1), BASE_ECLOSING);
    /* The stack waits for the three still held. */
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 0);
    ns_conn_close(cl.connecting);
    ns_udp_close(cl.flow);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 0);
    ns_conn_close(cl.dead);
    run_until_n(&closed, 1);
    /* The accepted sides got the RSTs of A's resets (open2's, and open's lingering pcb). */
    run_until_n(&cl.n_accepted_err, 2);
    assert_int_equal(cl.accepted_err, -ECONNRESET);
}

int main(void)
{
    uv_loop_init(&loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_no_wakeups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syn_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_address_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_tells_holders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_open_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flow_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_v6_10mb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_v4_100mb, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return rc;
}
