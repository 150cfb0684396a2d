/*
 * The stream pump with two fake streams the test drives by hand: backpressure stops and
 * resumes the other side's reading at the water marks, a FIN crosses only after the bytes
 * before it, done() comes once both directions are finished, a failed write reaches the owner,
 * the completions of a closed stream change nothing, and what a stream takes at once is not
 * queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
    assert_true(proxy_pump_pending(&r.p, PROXY_PUMP_A) > PROXY_PUMP_HIGH_WATER);
    assert_int_equal(r.b.read_stops, 1);
    assert_true(r.a.reading); /* the other direction is not held */
    /* Completions bring it back only at the low mark. */
    while (proxy_pump_pending(&r.p, PROXY_PUMP_A) > PROXY_PUMP_LOW_WATER) {
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_owner_reads_until_relay),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_eof_crosses_after_bytes),
        cmocka_unit_test(test_errors_and_stale_completions),
        cmocka_unit_test(test_try_write_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
