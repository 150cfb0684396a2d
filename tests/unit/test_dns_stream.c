/* The DNS stream session (RFC 7766 framing) without sockets: a fake transport records what the
 * session writes, pauses and consumes; forwarded queries go to a mesh transport that never
 * answers (no socket either), so they stay in flight until the deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"
#include "dns_wire.h"

/* ---- a mesh transport that swallows queries ---- */

static bool sink_covers(void *ctx, const struct base_addr *a)
{
    (void)ctx;
    (void)a;
    return true;
}

static int sink_open(void *ctx, int type, const struct base_endpoint *server,
                     struct dns_transport_conn *conn)
{
    int *n = ctx;
    (void)type, (void)server, (void)conn;
    return (*n)++;
}

static ssize_t sink_send(void *ctx, int h, const struct iovec *iov, int n)
{
    ssize_t len = 0;
    (void)ctx, (void)h;
    for (int i = 0; i < n; i++)
        len += (ssize_t)iov[i].iov_len;
    return len;
}

static ssize_t sink_recv(void *ctx, int h, void *buf, size_t len)
{
    (void)ctx, (void)h, (void)buf, (void)len;
    return -EAGAIN;
}

static void sink_close(void *ctx, int h)
{
    (void)ctx, (void)h;
}

/* ---- the fake stream transport ---- */

struct conn {
    struct dns_stream *s;
    uint8_t out[1 << 20];
    size_t out_len;
    size_t take; /* bytes write() accepts per call; 0 = unlimited */
    int full;    /* write() takes nothing */
    int paused, pauses, closed, graceful;
    size_t consumed;
};

static ssize_t c_write(void *ctx, const uint8_t *data, size_t len)
{
    struct conn *c = ctx;
    assert_false(c->closed);
    if (c->full)
        return 0;
    size_t n = c->take && c->take < len ? c->take : len;
    assert_true(c->out_len + n <= sizeof(c->out));
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return (ssize_t)n;
}

static void c_pause(void *ctx, bool paused)
{
    struct conn *c = ctx;
    assert_false(c->closed);
    assert_int_not_equal(c->paused, paused); /* only changes are reported */
    c->paused = paused;
    c->pauses++;
}

static void c_consumed(void *ctx, size_t n)
{
    struct conn *c = ctx;
    c->consumed += n;
}

static void c_close(void *ctx, bool graceful)
{
    struct conn *c = ctx;
    assert_false(c->closed);
    c->closed = 1;
    c->graceful = graceful;
    dns_stream_close(c->s, NULL, NULL); /* allowed from inside done */
}

static const struct dns_stream_ops ops = {c_write, c_pause, c_consumed, c_close};

/* ---- fixture ---- */

struct fixture {
    uv_loop_t loop;
    struct dns_resolver *r;
    int handles;
    struct conn *c;
};

static struct dns_stream *stream_new(struct fixture *f, unsigned idle_ms)
{
    struct dns_stream *s = NULL;
    struct dns_stream_config sc = {.ops = &ops, .ctx = f->c, .idle_ms = idle_ms};
    assert_int_equal(dns_stream_new(f->r, &sc, &s), 0);
    assert_non_null(s);
    return s;
}

static int setup_with(void **state, unsigned timeout_ms)
{
    static struct base_addr db = {AF_INET, {100, 64, 0, 2}};
    static struct dns_host host = {"db", &db, 1};
    static struct base_endpoint servers[] = {{{AF_INET, {100, 100, 9, 9}}, 53}};
    static struct dns_route route = {"slow.example", servers, 1};
    struct fixture *f = calloc(1, sizeof(*f));
    struct dns_config cfg = {
        .hosts = &host, .n_hosts = 1, .routes = &route, .n_routes = 1, .timeout_ms = timeout_ms};
    uv_loop_init(&f->loop);
    assert_int_equal(dns_resolver_new(&f->loop, &cfg, &f->r), 0);
    struct dns_transport t = {&f->handles, sink_covers, sink_open,
                              sink_send,   sink_recv,   sink_close};
    dns_resolver_set_mesh_transport(f->r, &t);
    f->c = calloc(1, sizeof(*f->c));
    f->c->s = stream_new(f, 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 60000);
}
static int setup_short(void **state)
{
    return setup_with(state, 200);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f->c->closed)
        dns_stream_close(f->c->s, NULL, NULL);
    dns_resolver_close(f->r, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f->c);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* A framed query (2-byte length, then the message) for name/A with id; returns its length. */
static size_t frame(uint8_t *buf, uint16_t id, const char *name)
{
    struct dns_builder b;
    struct dns_header h = {id, DNS_F_RD, 1, 0, 0, 0};
    uint8_t w[DNS_NAME_MAX];
    assert_true(dns_name_from_text(name, w) > 0);
    dns_b_init(&b, buf + 2, 512);
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    dns_b_question(&b, w, DNS_TYPE_A, DNS_CLASS_IN);
    dns_header_write(buf + 2, &h);
    dns_put16(buf, (uint16_t)b.len);
    return b.len + 2;
}

/* The replies in c->out, checked for framing: ids and rcodes in arrival order. */
static size_t replies(const struct conn *c, uint16_t *ids, unsigned *rcodes, size_t max)
{
    size_t off = 0, n = 0;
    while (off < c->out_len) {
        assert_true(c->out_len - off >= 2);
        size_t len = dns_get16(c->out + off);
        assert_true(c->out_len - off - 2 >= len);
        struct dns_msg_info info;
        assert_int_equal(dns_msg_parse(c->out + off + 2, len, &info), 0);
        assert_true(info.hdr.flags & DNS_F_QR);
        assert_true(n < max);
        ids[n] = info.hdr.id;
        rcodes[n] = info.hdr.flags & DNS_F_RCODE;
        n++;
        off += 2 + len;
    }
    return n;
}

static void run_until_closed(struct fixture *f)
{
    for (int i = 0; i < 500 && !f->c->closed; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->c->closed);
}

/* ---- tests ---- */

static void test_split_everywhere(void **state)
{
    struct fixture *f = *state;
    uint8_t q[600];
    size_t n = frame(q, 0x1234, "db.mesh.internal");
    /* one byte at a time: the length prefix itself arrives split */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f->c->out_len, 0);
        dns_stream_feed(f->c->s, q + i, 1);
    }
    uint16_t ids[4];
    unsigned rc[4];
    assert_int_equal(replies(f->c, ids, rc, 4), 1);
    assert_int_equal(ids[0], 0x1234);
    assert_int_equal(rc[0], DNS_RCODE_NOERROR);
    assert_int_equal(f->c->consumed, n);
    /* the answer is A 100.64.0.2, the last 4 bytes */
    const uint8_t want[4] = {100, 64, 0, 2};
    assert_memory_equal(f->c->out + f->c->out_len - 4, want, 4);
    assert_false(f->c->closed);
}

static void test_pipelined_out_of_order(void **state)
{
    struct fixture *f = *state;
    uint8_t q[2000];
    size_t n = frame(q, 1, "db.mesh.internal");
    n += frame(q + n, 2, "x.slow.example"); /* forwarded: waits */
    n += frame(q + n, 3, "nope.mesh.internal");
    n += frame(q + n, 4, "db");
    dns_stream_feed(f->c->s, q, n);
    uint16_t ids[8];
    unsigned rc[8];
    /* the local answers do not wait for the forwarded one */
    assert_int_equal(replies(f->c, ids, rc, 8), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(rc[1], DNS_RCODE_NXDOMAIN);
    assert_int_equal(ids[2], 4);
    assert_int_equal(f->c->consumed, n);
    assert_false(f->c->closed);
}

static void test_inflight_cap_pauses(void **state)
{
    struct fixture *f = *state;
    static uint8_t q[64 * 100];
    size_t n = 0, first32 = 0;
    for (int i = 0; i < DNS_STREAM_MAX_INFLIGHT + 8; i++) {
        char name[64];
        snprintf(name, sizeof(name), "q%d.slow.example", i);
        n += frame(q + n, (uint16_t)i, name);
        if (i == DNS_STREAM_MAX_INFLIGHT - 1)
            first32 = n;
    }
    dns_stream_feed(f->c->s, q, n);
    assert_int_equal(f->c->paused, 1);
    assert_int_equal(f->c->consumed, first32); /* the rest waits in the session */
    assert_int_equal(f->c->out_len, 0);
    struct dns_stats st;
    dns_resolver_stats(f->r, &st);
    assert_int_equal(st.forwarded, DNS_STREAM_MAX_INFLIGHT);
    /* closing with 32 queries in flight: canceled, no reply, nothing leaks (teardown) */
}

static void test_eof_waits_for_inflight(void **state)
{
    struct fixture *f = *state; /* upstream deadline 200 ms */
    uint8_t q[2000];
    size_t n = frame(q, 7, "a.slow.example");
    n += frame(q + n, 8, "db.mesh.internal");
    dns_stream_feed(f->c->s, q, n);
    dns_stream_eof(f->c->s);
    assert_false(f->c->closed);
    run_until_closed(f);
    assert_int_equal(f->c->graceful, 1);
    uint16_t ids[4];
    unsigned rc[4];
    assert_int_equal(replies(f->c, ids, rc, 4), 2);
    assert_int_equal(ids[0], 8);
    assert_int_equal(ids[1], 7);
    assert_int_equal(rc[1], DNS_RCODE_SERVFAIL);
}

static void test_inflight_cap_resumes(void **state)
{
    struct fixture *f = *state; /* upstream deadline 200 ms */
    static uint8_t q[64 * 100];
    size_t n = 0;
    int total = DNS_STREAM_MAX_INFLIGHT + 8;
    for (int i = 0; i < total; i++) {
        char name[64];
        snprintf(name, sizeof(name), "r%d.slow.example", i);
        n += frame(q + n, (uint16_t)i, name);
    }
    dns_stream_feed(f->c->s, q, n);
    assert_int_equal(f->c->paused, 1);
    dns_stream_eof(f->c->s);
    run_until_closed(f);
    uint16_t ids[64];
    unsigned rc[64];
    assert_int_equal(replies(f->c, ids, rc, 64), total); /* the waiting 8 were answered too */
    assert_int_equal(f->c->consumed, n);
}

static void test_oversize_and_garbage(void **state)
{
    struct fixture *f = *state;
    /* a frame announcing 65535 bytes of which few come, then EOF: no reply, a clean close */
    uint8_t part[10] = {0xff, 0xff, 1, 2, 3};
    dns_stream_feed(f->c->s, part, sizeof(part));
    assert_int_equal(f->c->out_len, 0);
    dns_stream_eof(f->c->s);
    assert_true(f->c->closed);
    assert_int_equal(f->c->out_len, 0);
}

static void test_max_frame_formerr(void **state)
{
    struct fixture *f = *state;
    /* the largest frame there is: a header with garbage after it is answered FORMERR */
    static uint8_t big[2 + 65535];
    memset(big, 0xee, sizeof(big));
    big[0] = big[1] = 0xff;
    struct dns_header h = {0x4242, DNS_F_RD, 1, 0, 0, 0};
    dns_header_write(big + 2, &h);
    dns_stream_feed(f->c->s, big, 1000);
    dns_stream_feed(f->c->s, big + 1000, sizeof(big) - 1000);
    uint16_t ids[2];
    unsigned rc[2];
    assert_int_equal(replies(f->c, ids, rc, 2), 1);
    assert_int_equal(ids[0], 0x4242);
    assert_int_equal(rc[0], DNS_RCODE_FORMERR);
    assert_false(f->c->closed);
    /* a zero-length frame cannot be answered: the connection is aborted */
    uint8_t zero[2] = {0, 0};
    dns_stream_feed(f->c->s, zero, 2);
    assert_true(f->c->closed);
    assert_int_equal(f->c->graceful, 0);
}

static void test_backpressure(void **state)
{
    struct fixture *f = *state;
    static uint8_t q[700 * 40];
    uint8_t one[600];
    size_t n1 = frame(one, 9, "db.mesh.internal");
    size_t n = 0;
    f->c->full = 1;
    /* replies pile up in the session past DNS_STREAM_OUT_MAX: it stops taking queries */
    int fed = 0;
    size_t total = 0;
    while (!f->c->paused) {
        n = 0;
        for (int i = 0; i < 40; i++)
            n += frame(q + n, (uint16_t)(fed + i), "db.mesh.internal");
        dns_stream_feed(f->c->s, q, n);
        fed += 40;
        total += n;
        assert_true(fed < 4000);
    }
    size_t consumed = f->c->consumed;
    assert_true(consumed < total);     /* the last frames wait in the session */
    dns_stream_feed(f->c->s, one, n1); /* held, not answered */
    assert_int_equal(f->c->consumed, consumed);
    total += n1;
    /* the transport takes 3 bytes per write from now on */
    f->c->full = 0;
    f->c->take = 3;
    dns_stream_writable(f->c->s);
    for (int i = 0; i < 100 && f->c->paused; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->c->paused, 0);
    static uint16_t ids[8192];
    static unsigned rc[8192];
    size_t got = replies(f->c, ids, rc, 8192);
    assert_int_equal(got, (size_t)fed + 1);
    assert_int_equal(f->c->consumed, total);
    for (size_t i = 0; i < got; i++)
        assert_int_equal(rc[i], DNS_RCODE_NOERROR);
    assert_int_equal(ids[got - 1], 9);
}

static void test_idle_close(void **state)
{
    struct fixture *f = *state;
    dns_stream_close(f->c->s, NULL, NULL);
    f->c->s = stream_new(f, 30);
    uint8_t q[600];
    size_t n = frame(q, 5, "db.mesh.internal");
    dns_stream_feed(f->c->s, q, n);
    run_until_closed(f);
    assert_int_equal(f->c->graceful, 1);
}

static void trickle_cb(uv_timer_t *t)
{
    struct fixture *f = t->data;
    static const uint8_t byte = 0xff;
    if (f->c->closed) {
        uv_timer_stop(t);
        return;
    }
    dns_stream_feed(f->c->s, &byte, 1); /* a length prefix that never completes */
}

/* A byte every 10 ms never makes a query: the 50 ms idle timeout still ends the session. */
static void test_trickle_is_idle(void **state)
{
    struct fixture *f = *state;
    dns_stream_close(f->c->s, NULL, NULL);
    f->c->s = stream_new(f, 50);
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = f;
    uv_timer_start(&t, trickle_cb, 10, 10);
    for (int i = 0; i < 300 && !f->c->closed; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL); /* before any assert: t lives on this stack */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(f->c->closed);
    assert_int_equal(f->c->graceful, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_cap_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_waits_for_inflight, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_cap_resumes, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_frame_formerr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickle_is_idle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
