/*
 * proxy/'s relays with fake streams and datagram sockets the test drives by hand, on a real
 * loop for the close callbacks. TCP: the dial waits for its target, a refused dial resets the
 * inbound side, bytes cross, an error resets both, drain waits for open connections and close
 * cuts them. UDP: a session per client, replies only from the target, the least recently
 * active session gives way at the cap, close ends every session and releases its client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy_fakes.h"

static struct {
    uv_loop_t loop;
    struct px_fake_stream streams[8];
    int nstreams;
    int closed_cbs;
} g;

static struct proxy_stream *fake_new(const struct proxy_stream_cbs *cbs, void *ud)
{
    assert_true(g.nstreams < 8);
    struct px_fake_stream *f = &g.streams[g.nstreams++];
    px_fake_stream_init(f, cbs, ud);
    return &f->base;
}

static struct proxy_stream *open_inbound(void *arg, const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)arg;
    return fake_new(cbs, ud);
}

static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    assert_int_equal(t->ep.port, 5432);
    return fake_new(cbs, ud);
}

static void on_closed(void *arg)
{
    (void)arg;
    g.closed_cbs++;
}

static struct proxy_relay *relay_new(void)
{
    memset(&g, 0, sizeof(g));
    uv_loop_init(&g.loop);
    struct proxy_relay_config cfg = {.dialer = {.dial = fake_dial},
                                     .target = {.proto = PROXY_TCP, .ep.port = 5432}};
    struct proxy_relay *r;
    assert_int_equal(proxy_relay_new(&g.loop, &cfg, &r), 0);
    return r;
}

static void loop_end(void)
{
    uv_run(&g.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&g.loop), 0);
}

static void test_tcp_relay(void **state)
{
    (void)state;
    struct proxy_relay *r = relay_new();
    assert_int_equal(proxy_relay_add(r, open_inbound, NULL), 0);
    struct px_fake_stream *in = &g.streams[0], *out = &g.streams[1];
    assert_false(in->reading); /* nothing is read before the target answers */
    out->cbs->on_connect(out->ud, 0, NULL);
    assert_true(in->reading && out->reading);
    static const uint8_t hello[5] = "hello";
    in->cbs->on_read(in->ud, hello, sizeof(hello));
    assert_int_equal(out->bytes, 5);
    out->cbs->on_error(out->ud, -ECONNRESET);
    assert_int_equal(in->resets, 1);
    assert_int_equal(out->resets, 1);

    /* A refused dial: the inbound side sees a reset. */
    assert_int_equal(proxy_relay_add(r, open_inbound, NULL), 0);
    struct px_fake_stream *in2 = &g.streams[2], *out2 = &g.streams[3];
    out2->cbs->on_connect(out2->ud, -ECONNREFUSED, NULL);
    assert_int_equal(in2->resets, 1);

    /* Drain waits for the connections still open. */
    proxy_relay_drain(r, on_closed, NULL);
    assert_int_not_equal(proxy_relay_add(r, open_inbound, NULL), 0);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.closed_cbs, 0);
    px_fake_gone(in);
    px_fake_gone(out);
    px_fake_gone(in2);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.closed_cbs, 0);
    px_fake_gone(out2);
    assert_int_equal(g.closed_cbs, 1);
    loop_end();
}

static void test_tcp_relay_close_cuts(void **state)
{
    (void)state;
    struct proxy_relay *r = relay_new();
    assert_int_equal(proxy_relay_add(r, open_inbound, NULL), 0);
    struct px_fake_stream *in = &g.streams[0], *out = &g.streams[1];
    out->cbs->on_connect(out->ud, 0, NULL);
    proxy_relay_close(r, on_closed, NULL);
    assert_int_equal(in->resets, 1);
    assert_int_equal(out->resets, 1);
    px_fake_gone(in);
    px_fake_gone(out);
    assert_int_equal(g.closed_cbs, 0); /* never from inside close: after the loop's turn */
    loop_end();
    assert_int_equal(g.closed_cbs, 1);
}

/* ---- UDP ---- */

struct fake_dgram {
    struct proxy_dgram base;
    const struct proxy_dgram_cbs *cbs;
    struct proxy_dgram_cbs cbs_copy;
    void *ud;
    int sent, closed;
    struct base_endpoint last_dst;
};

static struct {
    struct fake_dgram d[PROXY_UDP_SESSIONS_MAX + 2];
    int n;
    int replies, releases;
} u;

static int fd_send_to(struct proxy_dgram *pd, const struct proxy_target *dst, const uint8_t *data,
                      size_t len)
{
    (void)data;
    (void)len;
    struct fake_dgram *d = container_of(pd, struct fake_dgram, base);
    d->sent++;
    d->last_dst = dst->ep;
    return 0;
}

static void fd_close(struct proxy_dgram *pd)
{
    container_of(pd, struct fake_dgram, base)->closed++; /* on_close comes later */
}

/* Every closed socket's on_close, as its dialer would deliver it after close(). */
static void dgrams_gone(void)
{
    for (int i = 0; i < u.n; i++) {
        if (u.d[i].closed == 1) {
            u.d[i].closed++;
            u.d[i].cbs_copy.on_close(u.d[i].ud);
        }
    }
}

static const struct proxy_dgram_ops fd_ops = {.send_to = fd_send_to, .close = fd_close};

static struct proxy_dgram *fd_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud)
{
    (void)ctx;
    struct fake_dgram *d = &u.d[u.n++];
    d->base.ops = &fd_ops;
    d->cbs_copy = *cbs;
    d->ud = ud;
    return &d->base;
}

static void reply(void *ctx, struct proxy_udp_session *s, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)s;
    (void)data;
    (void)len;
    u.replies++;
}

static void release(void *ctx, struct proxy_udp_session *s)
{
    (void)ctx;
    assert_non_null(proxy_udp_session_data(s));
    u.releases++;
}

static struct base_endpoint ep4(uint8_t last, uint16_t port)
{
    return (struct base_endpoint){.addr = {.family = AF_INET, .ip = {10, 0, 0, last}},
                                  .port = port};
}

static void test_udp_relay(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    memset(&u, 0, sizeof(u));
    uv_loop_init(&g.loop);
    struct proxy_udp_relay_config cfg = {.dialer = {.dgram_open = fd_open},
                                         .target = {.proto = PROXY_UDP, .ep = ep4(9, 53)},
                                         .reply = reply,
                                         .release = release};
    struct proxy_udp_relay *r;
    assert_int_equal(proxy_udp_relay_new(&g.loop, &cfg, &r), 0);
    struct base_endpoint c1 = ep4(1, 1000);
    struct proxy_udp_session *s1;
    assert_int_equal(proxy_udp_session_new(r, &c1, &u, &s1), 0);
    assert_ptr_equal(proxy_udp_session_find(r, &c1), s1);
    struct base_endpoint other = ep4(1, 1001);
    assert_null(proxy_udp_session_find(r, &other));
    proxy_udp_session_send(s1, (const uint8_t *)"q", 1);
    assert_int_equal(u.d[0].sent, 1);
    assert_true(base_endpoint_equal(&u.d[0].last_dst, &cfg.target.ep));
    /* Replies only from the target. */
    struct base_endpoint target = ep4(9, 53), stranger = ep4(8, 53);
    u.d[0].cbs_copy.on_recv(u.d[0].ud, &stranger, (const uint8_t *)"x", 1);
    assert_int_equal(u.replies, 0);
    u.d[0].cbs_copy.on_recv(u.d[0].ud, &target, (const uint8_t *)"a", 1);
    assert_int_equal(u.replies, 1);

    /* At the cap the least recently active session (s1, before it sends again) gives way. */
    struct proxy_udp_session *s;
    for (int i = 1; i < PROXY_UDP_SESSIONS_MAX; i++) {
        struct base_endpoint c = ep4(2, (uint16_t)(2000 + i));
        assert_int_equal(proxy_udp_session_new(r, &c, &u, &s), 0);
    }
    struct base_endpoint c2 = ep4(1, 1002);
    assert_int_equal(proxy_udp_session_new(r, &c2, &u, &s), 0);
    assert_null(proxy_udp_session_find(r, &c1));
    assert_int_equal(u.d[0].closed, 1);
    assert_int_equal(u.releases, 1);

    proxy_udp_relay_close(r, on_closed, NULL);
    assert_int_equal(u.releases, PROXY_UDP_SESSIONS_MAX + 1);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.closed_cbs, 0); /* the sockets are still closing */
    dgrams_gone();
    loop_end();
    assert_int_equal(g.closed_cbs, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_relay),
        cmocka_unit_test(test_tcp_relay_close_cuts),
        cmocka_unit_test(test_udp_relay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
