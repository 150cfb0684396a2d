/*
 * The stream pump with two fake streams the test drives by hand: backpressure stops and
 * resumes the other side's reading at the water marks, a FIN crosses only after the bytes
 * before it, done() comes once both directions are finished, a failed write reaches the owner,
 * the completions of a closed stream change nothing, and what a stream takes at once is not
 * queued. Then a real client socket that stops reading: 1-byte writes are counted, and charged,
 * at what they cost the heap, not at their bytes.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy_fakes.h"
#include "pump.h"

struct owner {
    int reads, eofs, errors, drained[2], done, closed[2], connected;
    int last_err;
    size_t read_bytes;
};

static void o_connected(void *owner, int err, const struct base_endpoint *local)
{
    (void)local;
    struct owner *o = owner;
    o->connected++;
    o->last_err = err;
}

static void o_read(void *owner, int side, const uint8_t *data, size_t len)
{
    (void)side;
    (void)data;
    struct owner *o = owner;
    o->reads++;
    o->read_bytes += len;
}

static void o_eof(void *owner, int side)
{
    (void)side;
    ((struct owner *)owner)->eofs++;
}

static void o_error(void *owner, int side, int err)
{
    (void)side;
    struct owner *o = owner;
    o->errors++;
    o->last_err = err;
}

static void o_drained(void *owner, int side)
{
    ((struct owner *)owner)->drained[side]++;
}

static void o_done(void *owner)
{
    ((struct owner *)owner)->done++;
}

static void o_closed(void *owner, int side)
{
    ((struct owner *)owner)->closed[side]++;
}

static const struct proxy_pump_ops owner_ops = {
    .connected = o_connected,
    .read = o_read,
    .eof = o_eof,
    .error = o_error,
    .drained = o_drained,
    .done = o_done,
    .closed = o_closed,
};

struct rig {
    struct proxy_pump p;
    struct px_fake_stream a, b;
    struct owner o;
};

/* A connected, B dialing, as a session has them after dial(). */
static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    px_fake_stream_init(&r->a, NULL, NULL);
    px_fake_stream_init(&r->b, NULL, NULL);
    proxy_pump_init(&r->p, &owner_ops, &r->o);
    proxy_pump_attach(&r->p, PROXY_PUMP_A, &r->a.base, true);
    proxy_pump_attach(&r->p, PROXY_PUMP_B, &r->b.base, false);
}

/* Closes both sides; the writes still out end as a closed stream's do. */
static void rig_end(struct rig *r)
{
    proxy_pump_close(&r->p, PROXY_PUMP_A, false);
    proxy_pump_close(&r->p, PROXY_PUMP_B, false);
    while (r->a.done < r->a.nw)
        px_fake_complete(&r->a, -ECANCELED);
    while (r->b.done < r->b.nw)
        px_fake_complete(&r->b, -ECANCELED);
}

static void deliver(struct rig *r, int side, size_t len)
{
    static uint8_t buf[128 * 1024];
    assert_true(len <= sizeof(buf));
    proxy_pump_cbs.on_read(proxy_pump_ud(&r->p, side), buf, len);
}

static void test_owner_reads_until_relay(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    proxy_pump_read(&r.p, PROXY_PUMP_A, true);
    assert_true(r.a.reading);
    proxy_pump_read(&r.p, PROXY_PUMP_B, true);
    assert_false(r.b.reading); /* still dialing */
    deliver(&r, PROXY_PUMP_A, 10);
    assert_int_equal(r.o.reads, 1);
    assert_int_equal(r.o.read_bytes, 10);
    assert_int_equal(r.b.nw, 0);

    proxy_pump_cbs.on_connect(proxy_pump_ud(&r.p, PROXY_PUMP_B), 0, NULL);
    assert_int_equal(r.o.connected, 1);
    assert_true(r.b.reading);
    proxy_pump_relay(&r.p);
    deliver(&r, PROXY_PUMP_A, 100);
    assert_int_equal(r.o.reads, 1); /* relaying: the bytes crossed instead */
    assert_int_equal(r.b.bytes, 100);
    px_fake_complete(&r.b, 0);
    assert_int_equal(r.o.drained[PROXY_PUMP_B], 1);
    rig_end(&r);
}

static void test_backpressure(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    proxy_pump_cbs.on_connect(proxy_pump_ud(&r.p, PROXY_PUMP_B), 0, NULL);
    proxy_pump_relay(&r.p);
    assert_true(r.a.reading && r.b.reading);
    /* B sends faster than A takes: after the high mark B stops being read. */
    size_t chunk = 64 * 1024, sent = 0;
    while (r.b.reading) {
        deliver(&r, PROXY_PUMP_B, chunk);
        sent += chunk;
        assert_true(sent <= PROXY_PUMP_HIGH_WATER + chunk);
    }
    assert_true(proxy_pump_queued(&r.p, PROXY_PUMP_A) > PROXY_PUMP_HIGH_WATER);
    assert_int_equal(r.b.read_stops, 1);
    assert_true(r.a.reading); /* the other direction is not held */
    /* Completions bring it back only at the low mark. */
    while (proxy_pump_queued(&r.p, PROXY_PUMP_A) > PROXY_PUMP_LOW_WATER) {
        assert_false(r.b.reading);
        px_fake_complete(&r.a, 0);
    }
    assert_true(r.b.reading);
    assert_int_equal(r.b.read_starts, 2);
    rig_end(&r);
}

/* Under a full memory budget a side that stops reading holds far less: the high mark falls
 * towards PROXY_PUMP_HIGH_WATER_MIN; what is queued is charged, and given back when written. */
static void test_budget(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    struct base_budget b = {.limit = 64u << 20};
    size_t tally = 0;
    proxy_pump_set_budget(&r.p, &b, &tally);
    proxy_pump_cbs.on_connect(proxy_pump_ud(&r.p, PROXY_PUMP_B), 0, NULL);
    proxy_pump_relay(&r.p);
    base_budget_charge(&b, 64u << 20); /* someone else filled it */
    size_t chunk = 4096, sent = 0;
    while (r.b.reading) {
        deliver(&r, PROXY_PUMP_B, chunk);
        sent += chunk;
    }
    assert_true(sent <= PROXY_PUMP_HIGH_WATER_MIN + chunk);
    assert_true(tally >= sent);
    assert_int_equal(b.used, (64u << 20) + tally);
    while (proxy_pump_pending(&r.p, PROXY_PUMP_A) > 0)
        px_fake_complete(&r.a, 0);
    assert_int_equal(tally, 0);
    assert_int_equal(b.used, 64u << 20);
    rig_end(&r);
}

static void test_eof_crosses_after_bytes(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    proxy_pump_cbs.on_connect(proxy_pump_ud(&r.p, PROXY_PUMP_B), 0, NULL);
    proxy_pump_relay(&r.p);
    deliver(&r, PROXY_PUMP_A, 1000);
    proxy_pump_cbs.on_eof(proxy_pump_ud(&r.p, PROXY_PUMP_A));
    assert_int_equal(r.b.shutdowns, 0); /* 1000 bytes still on their way to B */
    px_fake_complete(&r.b, 0);
    assert_int_equal(r.b.shutdowns, 1);
    assert_int_equal(r.o.done, 0);
    deliver(&r, PROXY_PUMP_B, 5);
    proxy_pump_cbs.on_eof(proxy_pump_ud(&r.p, PROXY_PUMP_B));
    assert_int_equal(r.a.shutdowns, 0);
    px_fake_complete(&r.a, 0);
    assert_int_equal(r.a.shutdowns, 1);
    assert_int_equal(r.o.done, 1);
    assert_int_equal(r.o.eofs, 0); /* relaying: the owner hears done(), not each EOF */
    rig_end(&r);
}

static void test_errors_and_stale_completions(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    proxy_pump_cbs.on_connect(proxy_pump_ud(&r.p, PROXY_PUMP_B), 0, NULL);
    assert_int_equal(proxy_pump_write(&r.p, PROXY_PUMP_B, "x", 1), 0);
    px_fake_complete(&r.b, -ECONNRESET);
    assert_int_equal(r.o.errors, 1);
    assert_int_equal(r.o.last_err, -ECONNRESET);

    /* Writes to a stream that is then closed: their completions are ignored. */
    proxy_pump_relay(&r.p);
    for (int i = 0; i < 5; i++)
        deliver(&r, PROXY_PUMP_A, 100 * 1024);
    assert_false(r.a.reading); /* held back by what waits for B */
    proxy_pump_close(&r.p, PROXY_PUMP_B, true);
    assert_int_equal(r.b.resets, 1);
    assert_true(r.a.reading); /* nothing waits for B any more */
    assert_int_equal(proxy_pump_pending(&r.p, PROXY_PUMP_B), 0);
    while (r.b.done < r.b.nw)
        px_fake_complete(&r.b, -ECANCELED);
    assert_int_equal(r.o.errors, 1);
    assert_int_equal(proxy_pump_write(&r.p, PROXY_PUMP_B, "x", 1), -ENOTCONN);
    proxy_pump_cbs.on_close(proxy_pump_ud(&r.p, PROXY_PUMP_B));
    assert_int_equal(r.o.closed[PROXY_PUMP_B], 1);

    /* A failed dial is the owner's to hear. */
    struct rig q;
    rig_init(&q);
    proxy_pump_cbs.on_connect(proxy_pump_ud(&q.p, PROXY_PUMP_B), -ECONNREFUSED, NULL);
    assert_int_equal(q.o.last_err, -ECONNREFUSED);
    assert_false(proxy_pump_open(&q.p, PROXY_PUMP_B));
    rig_end(&r);
    rig_end(&q);
}

static void test_try_write_first(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    r.a.take = 1000;
    assert_int_equal(proxy_pump_write(&r.p, PROXY_PUMP_A, "x", 1), 0);
    assert_int_equal(r.a.taken, 1); /* all at once: nothing queued, nothing pending */
    assert_int_equal(r.a.nw, 0);
    static const uint8_t big[5000];
    assert_int_equal(proxy_pump_write(&r.p, PROXY_PUMP_A, big, sizeof(big)), 0);
    assert_int_equal(r.a.taken, 1001);
    assert_int_equal(r.a.bytes, 4000); /* only the rest is queued */
    assert_int_equal(proxy_pump_pending(&r.p, PROXY_PUMP_A), 4000);
    assert_int_equal(proxy_pump_write(&r.p, PROXY_PUMP_A, big, 10), 0);
    assert_int_equal(r.a.taken, 1001); /* behind a queued write: in order, queued too */
    px_fake_complete(&r.a, 0);
    px_fake_complete(&r.a, 0);
    assert_int_equal(r.o.drained[PROXY_PUMP_A], 1);
    rig_end(&r);
}

/* ---- a real client that stops reading ---- */

/* glibc's heap statistics see the allocations, except under AddressSanitizer's allocator. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_MEASURED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_MEASURED 0
#endif
#endif
#ifndef HEAP_MEASURED
#define HEAP_MEASURED 1
#endif

struct sock_rig {
    uv_loop_t loop;
    uv_tcp_t server;
    struct proxy_pump p;
    struct px_fake_stream b; /* the peer: the test hands its reads in */
    struct owner o;
    struct base_budget budget;
    size_t tally;
    int fd; /* the client: a blocking socket the test reads when it chooses */
    bool accepted;
    uint8_t *got;       /* what the client read */
    size_t ngot, nsent; /* bytes read by the client, bytes the peer handed in */
};

#define SOCK_BUF 4096       /* small socket buffers: the kernel takes little */
#define SOCK_EXTRA 1000     /* 1-byte writes after the resumption */
#define SOCK_CAP (1u << 20) /* far more than the bytes the test sends */

/* Not periodic at 256, so a reordering of queued writes shows. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

static void sock_on_connection(uv_stream_t *server, int status)
{
    struct sock_rig *r = server->data;
    assert_int_equal(status, 0);
    struct proxy_stream *a = proxy_stream_accept(server, &proxy_pump_cbs,
                                                 proxy_pump_ud(&r->p, PROXY_PUMP_A), NULL, NULL);
    assert_non_null(a);
    proxy_pump_attach(&r->p, PROXY_PUMP_A, a, true);
    r->accepted = true;
}

/* The pump between an accepted connection (A, its client r->fd) and a fake peer (B), relaying.
 * Accepted sockets inherit the listener's small send buffer. */
static void sock_rig_init(struct sock_rig *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    proxy_pump_init(&r->p, &owner_ops, &r->o);
    proxy_pump_set_budget(&r->p, &r->budget, &r->tally);
    r->got = malloc(SOCK_CAP);
    assert_non_null(r->got);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uv_tcp_init(&r->loop, &r->server);
    r->server.data = r;
    assert_int_equal(uv_tcp_bind(&r->server, (struct sockaddr *)&sin, 0), 0);
    uv_os_fd_t lfd;
    assert_int_equal(uv_fileno((uv_handle_t *)&r->server, &lfd), 0);
    int small = SOCK_BUF;
    assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->server, 1, sock_on_connection), 0);
    int len = sizeof(sin);
    assert_int_equal(uv_tcp_getsockname(&r->server, (struct sockaddr *)&sin, &len), 0);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    assert_int_equal(setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    while (!r->accepted)
        uv_run(&r->loop, UV_RUN_ONCE);
    px_fake_stream_init(&r->b, NULL, NULL);
    proxy_pump_attach(&r->p, PROXY_PUMP_B, &r->b.base, true);
    proxy_pump_relay(&r->p);
}

/* The peer sends one byte: a segment as small as they come. */
static void sock_send_byte(struct sock_rig *r)
{
    uint8_t c = pattern(r->nsent++);
    proxy_pump_cbs.on_read(proxy_pump_ud(&r->p, PROXY_PUMP_B), &c, 1);
}

/* The client reads what has come; the loop writes what the kernel takes. */
static void sock_read_some(struct sock_rig *r)
{
    uv_run(&r->loop, UV_RUN_NOWAIT);
    ssize_t n = recv(r->fd, r->got + r->ngot, SOCK_CAP - r->ngot, MSG_DONTWAIT);
    if (n > 0) {
        r->ngot += (size_t)n;
        return;
    }
    struct pollfd pf = {.fd = r->fd, .events = POLLIN};
    poll(&pf, 1, 10);
}

static void sock_rig_end(struct sock_rig *r)
{
    close(r->fd);
    proxy_pump_close(&r->p, PROXY_PUMP_A, false);
    proxy_pump_close(&r->p, PROXY_PUMP_B, false);
    uv_close((uv_handle_t *)&r->server, NULL);
    while (!r->o.closed[PROXY_PUMP_A])
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    free(r->got);
}

/* A peer's 1-byte segments towards a client that does not read: each queued write holds a copy
 * and a uv_write_t, about 270 bytes for its 1. The peer is paused once that cost, not the
 * bytes, passes the high-water mark; the budget is charged the cost, which is what the heap
 * grew by. When the client reads again the peer resumes and every byte arrives, in order. */
static void test_real_cost_on_a_socket(void **state)
{
    (void)state;
    struct sock_rig r;
    sock_rig_init(&r);
    struct mallinfo2 before = mallinfo2();
    /* Bounded so that a payload count (a quarter of a million writes) fails instead of
     * filling the heap: the cost count pauses after about a thousand. */
    size_t bound = 4 * PROXY_PUMP_HIGH_WATER / PROXY_PUMP_WRITE_OVERHEAD + 4096;
    while (r.b.reading && r.nsent < bound)
        sock_send_byte(&r);
    struct mallinfo2 after = mallinfo2();
    assert_false(r.b.reading);
    assert_int_equal(r.b.read_stops, 1);
    size_t queued = proxy_pump_pending(&r.p, PROXY_PUMP_A); /* 1-byte writes, one byte each */
    size_t cost = 1 + PROXY_PUMP_WRITE_OVERHEAD;
    assert_true(queued > 0 && queued < r.nsent); /* the kernel took the first few at once */
    assert_true(queued * cost > PROXY_PUMP_HIGH_WATER);
    assert_true((queued - 1) * cost <= PROXY_PUMP_HIGH_WATER); /* the write that crossed it */
    assert_int_equal(proxy_pump_queued(&r.p, PROXY_PUMP_A), queued * cost);
    assert_int_equal(r.tally, queued * cost);
    assert_int_equal(r.budget.used, queued * cost);
    size_t heap = after.uordblks - before.uordblks;
    print_message("%zu 1-byte writes queued: %zu bytes charged, heap grew %zu\n", queued, r.tally,
                  heap);
    if (HEAP_MEASURED)
        assert_true(heap >= r.tally * 9 / 10 && heap <= r.tally * 11 / 10);

    /* The client reads: the peer resumes at the low-water mark, then sends some more. */
    while (!r.b.reading)
        sock_read_some(&r);
    assert_int_equal(r.b.read_starts, 2);
    assert_true(proxy_pump_queued(&r.p, PROXY_PUMP_A) <= PROXY_PUMP_LOW_WATER);
    for (int i = 0; i < SOCK_EXTRA; i++)
        sock_send_byte(&r);
    while (r.ngot < r.nsent || proxy_pump_pending(&r.p, PROXY_PUMP_A) > 0)
        sock_read_some(&r);
    assert_int_equal(r.ngot, r.nsent);
    for (size_t i = 0; i < r.ngot; i++)
        if (r.got[i] != pattern(i))
            fail_msg("byte %zu of %zu out of order", i, r.ngot);
    assert_int_equal(r.tally, 0);
    assert_int_equal(r.budget.used, 0);
    assert_int_equal(proxy_pump_queued(&r.p, PROXY_PUMP_A), 0);
    sock_rig_end(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_owner_reads_until_relay),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_eof_crosses_after_bytes),
        cmocka_unit_test(test_errors_and_stale_completions),
        cmocka_unit_test(test_try_write_first),
        cmocka_unit_test(test_real_cost_on_a_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
