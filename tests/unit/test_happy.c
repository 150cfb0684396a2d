/*
 * Happy Eyeballs (RFC 8305). The plan (proxy/happy.c) with a clock the test sets: IPv6 first
 * and the families interleaved, an attempt every 250 ms or at once after a failure, failure
 * when all failed, timeout at the deadline. Then the race (proxy/race.c) on a real loop with a
 * fake per-address dialer whose addresses hang, refuse or accept after a delay: the first
 * success wins, the others are closed, the user's on_close comes once after every attempt's
 * (ASan sees any leak), and closing mid-race reports nothing but on_close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy.h"

static struct base_addr addr(const char *s)
{
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, s, strlen(s)), 0);
    return a;
}

static void assert_ep(const struct base_endpoint *ep, const char *want, uint16_t port)
{
    struct base_addr w = addr(want);
    assert_true(base_addr_equal(&ep->addr, &w));
    assert_int_equal(ep->port, port);
}

/* ---- the plan ---- */

static void test_order_interleaves_v6_first(void **state)
{
    (void)state;
    struct base_addr in[] = {addr("192.0.2.1"), addr("192.0.2.2"), addr("2001:db8::1"),
                             addr("2001:db8::2"), addr("2001:db8::3")};
    struct proxy_he he;
    proxy_he_init(&he, in, 5, 80, 0, 250, 10000);
    assert_int_equal(he.n, 5);
    const char *want[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"};
    for (size_t i = 0; i < 5; i++)
        assert_ep(&he.order[i], want[i], 80);
}

static void test_order_one_family_and_cap(void **state)
{
    (void)state;
    struct base_addr in[PROXY_HE_MAX + 4];
    char text[32];
    for (size_t i = 0; i < PROXY_HE_MAX + 4; i++) {
        snprintf(text, sizeof(text), "10.0.0.%zu", i + 1);
        in[i] = addr(text);
    }
    struct proxy_he he;
    proxy_he_init(&he, in, PROXY_HE_MAX + 4, 443, 0, 250, 10000);
    assert_int_equal(he.n, PROXY_HE_MAX);
    assert_ep(&he.order[0], "10.0.0.1", 443);
    assert_ep(&he.order[PROXY_HE_MAX - 1], "10.0.0.16", 443);
}

static void test_timing(void **state)
{
    (void)state;
    struct base_addr in[] = {addr("192.0.2.1"), addr("2001:db8::1"), addr("192.0.2.2")};
    struct proxy_he he;
    struct base_endpoint ep;
    uint64_t wake = 0;
    proxy_he_init(&he, in, 3, 80, 1000, 250, 10000);
    assert_int_equal(proxy_he_next(&he, 1000, &ep, &wake), PROXY_HE_START);
    assert_ep(&ep, "2001:db8::1", 80);
    assert_int_equal(proxy_he_next(&he, 1000, &ep, &wake), PROXY_HE_WAIT);
    assert_int_equal(wake, 1250); /* the Connection Attempt Delay */
    assert_int_equal(proxy_he_next(&he, 1249, &ep, &wake), PROXY_HE_WAIT);
    assert_int_equal(proxy_he_next(&he, 1250, &ep, &wake), PROXY_HE_START);
    assert_ep(&ep, "192.0.2.1", 80);
    proxy_he_failed(&he, 1300); /* a failure starts the next one at once */
    assert_int_equal(proxy_he_next(&he, 1300, &ep, &wake), PROXY_HE_START);
    assert_ep(&ep, "192.0.2.2", 80);
    assert_int_equal(proxy_he_next(&he, 1300, &ep, &wake), PROXY_HE_WAIT);
    assert_int_equal(wake, 11000); /* all started: only the deadline is left */
    proxy_he_failed(&he, 1400);
    assert_int_equal(proxy_he_next(&he, 1400, &ep, &wake), PROXY_HE_WAIT);
    proxy_he_failed(&he, 1600);
    assert_int_equal(proxy_he_next(&he, 1600, &ep, &wake), PROXY_HE_FAILED);
    proxy_he_failed(&he, 1700); /* more failures than attempts change nothing */
    assert_int_equal(he.failed, 3);
}

static void test_deadline(void **state)
{
    (void)state;
    struct base_addr in[] = {addr("192.0.2.1"), addr("192.0.2.2")};
    struct proxy_he he;
    struct base_endpoint ep;
    uint64_t wake = 0;
    proxy_he_init(&he, in, 2, 80, 0, 250, 200); /* shorter than the delay */
    assert_int_equal(proxy_he_next(&he, 0, &ep, &wake), PROXY_HE_START);
    assert_int_equal(proxy_he_next(&he, 0, &ep, &wake), PROXY_HE_WAIT);
    assert_int_equal(wake, 200); /* the second attempt would start after the deadline */
    assert_int_equal(proxy_he_next(&he, 200, &ep, &wake), PROXY_HE_TIMEOUT);
    proxy_he_init(&he, in, 0, 80, 0, 250, 200);
    assert_int_equal(proxy_he_next(&he, 0, &ep, &wake), PROXY_HE_FAILED);
}

/* ---- the race on a loop, with a fake per-address dialer ---- */

enum fake_kind { HANG, REFUSE, ACCEPT };
struct rule {
    const char *addr;
    enum fake_kind kind;
    unsigned after_ms;
};

struct world;
struct fake {
    struct proxy_stream base;
    struct world *w;
    const struct proxy_stream_cbs *cbs;
    void *ud;
    uv_timer_t timer;
    struct rule rule;
    bool closed;
};

struct world {
    uv_loop_t loop;
    const struct rule *rules;
    size_t nrules;
    uv_timer_t resolve_timer;
    proxy_resolve_cb rcb;
    void *rarg;
    bool resolve_canceled;
    /* what happened */
    char dialed[8][64];
    uint64_t dialed_at[8];
    size_t ndialed;
    int fakes_alive, fakes_closed;
    int connects, connect_err, closes, reads;
    uint64_t connected_at, start;
    struct proxy_stream *s;
    bool close_on_connect;
};

static void fake_timer_closed(uv_handle_t *h)
{
    struct fake *f = h->data;
    f->w->fakes_alive--;
    f->cbs->on_close(f->ud);
    free(f);
}

static void fake_close(struct proxy_stream *ps)
{
    struct fake *f = container_of(ps, struct fake, base);
    assert_false(f->closed); /* closed exactly once */
    f->closed = true;
    f->w->fakes_closed++;
    uv_close((uv_handle_t *)&f->timer, fake_timer_closed);
}

static int fake_write(struct proxy_stream *ps, const uint8_t *d, size_t n, proxy_write_cb cb,
                      void *arg)
{
    (void)d, (void)n, (void)cb, (void)arg;
    struct fake *f = container_of(ps, struct fake, base);
    f->cbs->on_read(f->ud, (const uint8_t *)"pong", 4); /* answers at once: enough here */
    return -EIO;
}

static void fake_nop(struct proxy_stream *ps)
{
    (void)ps;
}

static const struct proxy_stream_ops fake_ops = {
    .write = fake_write,
    .shutdown = fake_nop,
    .read_start = fake_nop,
    .read_stop = fake_nop,
    .reset = fake_close,
    .close = fake_close,
};

static void fake_fire(uv_timer_t *t)
{
    struct fake *f = t->data;
    struct base_endpoint local = {0};
    if (f->rule.kind == REFUSE)
        f->cbs->on_connect(f->ud, -ECONNREFUSED, NULL);
    else
        f->cbs->on_connect(f->ud, 0, &local);
}

static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    struct world *w = ctx;
    assert_int_equal(t->name[0], 0); /* the race dials addresses */
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base.ops = &fake_ops;
    f->w = w;
    f->cbs = cbs;
    f->ud = ud;
    base_addr_format(&t->ep.addr, w->dialed[w->ndialed], sizeof(w->dialed[0]));
    w->dialed_at[w->ndialed++] = uv_now(&w->loop) - w->start;
    for (size_t i = 0; i < w->nrules; i++) {
        struct base_addr a = addr(w->rules[i].addr);
        if (base_addr_equal(&a, &t->ep.addr))
            f->rule = w->rules[i];
    }
    uv_timer_init(&w->loop, &f->timer);
    f->timer.data = f;
    if (f->rule.kind != HANG)
        uv_timer_start(&f->timer, fake_fire, f->rule.after_ms, 0);
    w->fakes_alive++;
    return &f->base;
}

static void resolve_fire(uv_timer_t *t)
{
    struct world *w = t->data;
    struct base_addr a[8];
    for (size_t i = 0; i < w->nrules; i++)
        a[i] = addr(w->rules[i].addr);
    w->rcb(w->rarg, 0, a, w->nrules);
}

static struct proxy_resolve_req *fake_resolve(void *ctx, const char *name, proxy_resolve_cb cb,
                                              void *arg)
{
    struct world *w = ctx;
    assert_string_equal(name, "host.test");
    w->rcb = cb;
    w->rarg = arg;
    uv_timer_start(&w->resolve_timer, resolve_fire, 0, 0);
    return (struct proxy_resolve_req *)w;
}

static void fake_cancel(void *ctx, struct proxy_resolve_req *r)
{
    (void)r;
    struct world *w = ctx;
    w->resolve_canceled = true;
    uv_timer_stop(&w->resolve_timer);
}

static void u_connect(void *ud, int err, const struct base_endpoint *local)
{
    (void)local;
    struct world *w = ud;
    w->connects++;
    w->connect_err = err;
    w->connected_at = uv_now(&w->loop) - w->start;
    if (err || w->close_on_connect) {
        w->s->ops->close(w->s);
        return;
    }
    assert_int_equal(w->s->ops->write(w->s, (const uint8_t *)"ping", 4, NULL, NULL), -EIO);
    w->s->ops->close(w->s);
}

static void u_read(void *ud, const uint8_t *data, size_t len)
{
    (void)data, (void)len;
    ((struct world *)ud)->reads++;
}

static void u_eof(void *ud)
{
    (void)ud;
}

static void u_error(void *ud, int err)
{
    (void)ud, (void)err;
}

static void u_close(void *ud)
{
    struct world *w = ud;
    assert_int_equal(w->fakes_alive, 0); /* after every attempt is gone */
    w->closes++;
}

static const struct proxy_stream_cbs user_cbs = {u_connect, u_read, u_eof, u_error, u_close};

static void race(struct world *w, const struct rule *rules, size_t n, unsigned timeout_ms)
{
    memset(w, 0, sizeof(*w));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_timer_init(&w->loop, &w->resolve_timer);
    w->resolve_timer.data = w;
    w->rules = rules;
    w->nrules = n;
    uv_update_time(&w->loop);
    w->start = uv_now(&w->loop);
    struct proxy_race_config cfg = {
        .resolver = {.ctx = w, .resolve = fake_resolve, .cancel = fake_cancel},
        .per_addr = {.ctx = w, .dial = fake_dial},
        .timeout_ms = timeout_ms,
    };
    struct proxy_target t = {.proto = PROXY_TCP, .ep.port = 80};
    strcpy(t.name, "host.test");
    w->s = proxy_race_dial(&w->loop, &cfg, &t, &user_cbs, w);
    assert_non_null(w->s);
    assert_int_equal(w->connects, 0); /* never from inside dial */
}

static void finish(struct world *w)
{
    uv_close((uv_handle_t *)&w->resolve_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(w->closes, 1);
    assert_int_equal(w->fakes_alive, 0);
    assert_int_equal(uv_loop_close(&w->loop), 0);
}

/* The AAAA address hangs, the A address accepts: A wins after the 250 ms head start. */
static void test_race_v6_dead(void **state)
{
    (void)state;
    static const struct rule rules[] = {{"192.0.2.1", ACCEPT, 5}, {"2001:db8::1", HANG, 0}};
    struct world w;
    race(&w, rules, 2, 5000);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(w.connects, 1);
    assert_int_equal(w.connect_err, 0);
    assert_int_equal(w.ndialed, 2);
    assert_string_equal(w.dialed[0], "2001:db8::1");
    assert_string_equal(w.dialed[1], "192.0.2.1");
    assert_in_range(w.dialed_at[1], 240, 1000);
    assert_int_equal(w.reads, 1); /* the winner's bytes reach the user */
    assert_int_equal(w.fakes_closed, 2);
    finish(&w);
}

/* The reverse: A refuses at once, AAAA accepts: the first try (AAAA) wins, A never starts. */
static void test_race_v4_dead(void **state)
{
    (void)state;
    static const struct rule rules[] = {{"192.0.2.1", REFUSE, 1}, {"2001:db8::1", ACCEPT, 5}};
    struct world w;
    race(&w, rules, 2, 5000);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(w.connects, 1);
    assert_int_equal(w.connect_err, 0);
    assert_int_equal(w.ndialed, 1);
    assert_string_equal(w.dialed[0], "2001:db8::1");
    finish(&w);
}

/* A refusal starts the next address at once, not after the delay. */
static void test_race_failure_moves_on(void **state)
{
    (void)state;
    static const struct rule rules[] = {{"2001:db8::1", REFUSE, 5}, {"192.0.2.1", ACCEPT, 5}};
    struct world w;
    race(&w, rules, 2, 5000);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(w.connect_err, 0);
    assert_int_equal(w.ndialed, 2);
    assert_in_range(w.dialed_at[1], 0, 200);
    finish(&w);
}

static void test_race_all_refuse(void **state)
{
    (void)state;
    static const struct rule rules[] = {
        {"2001:db8::1", REFUSE, 5}, {"192.0.2.1", REFUSE, 5}, {"192.0.2.2", REFUSE, 5}};
    struct world w;
    race(&w, rules, 3, 5000);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(w.connects, 1);
    assert_int_equal(w.connect_err, -ECONNREFUSED);
    assert_int_equal(w.ndialed, 3);
    finish(&w);
}

static void test_race_timeout(void **state)
{
    (void)state;
    static const struct rule rules[] = {{"2001:db8::1", HANG, 0}, {"192.0.2.1", HANG, 0}};
    struct world w;
    race(&w, rules, 2, 400);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(w.connects, 1);
    assert_int_equal(w.connect_err, -ETIMEDOUT);
    assert_in_range(w.connected_at, 390, 1500);
    assert_int_equal(w.fakes_closed, 2);
    finish(&w);
}

static void close_now(uv_timer_t *t)
{
    struct world *w = t->data;
    w->s->ops->close(w->s);
    uv_close((uv_handle_t *)t, NULL);
}

/* Closed mid-race: no on_connect, every attempt closed, then on_close once. */
static void test_race_closed_early(void **state)
{
    (void)state;
    static const struct rule rules[] = {{"2001:db8::1", HANG, 0}, {"192.0.2.1", HANG, 0}};
    struct world w;
    race(&w, rules, 2, 5000);
    uv_timer_t t;
    uv_timer_init(&w.loop, &t);
    t.data = &w;
    uv_timer_start(&t, close_now, 300, 0);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(w.connects, 0);
    assert_int_equal(w.ndialed, 2);
    assert_int_equal(w.fakes_closed, 2);
    finish(&w);
}

/* Closed while still resolving: the lookup is canceled. */
static void test_race_closed_resolving(void **state)
{
    (void)state;
    static const struct rule rules[] = {{"192.0.2.1", ACCEPT, 1}};
    struct world w;
    race(&w, rules, 1, 5000);
    w.s->ops->close(w.s);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_true(w.resolve_canceled);
    assert_int_equal(w.connects, 0);
    assert_int_equal(w.ndialed, 0);
    finish(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_interleaves_v6_first),
        cmocka_unit_test(test_order_one_family_and_cap),
        cmocka_unit_test(test_timing),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_race_v6_dead),
        cmocka_unit_test(test_race_v4_dead),
        cmocka_unit_test(test_race_failure_moves_on),
        cmocka_unit_test(test_race_all_refuse),
        cmocka_unit_test(test_race_timeout),
        cmocka_unit_test(test_race_closed_early),
        cmocka_unit_test(test_race_closed_resolving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
