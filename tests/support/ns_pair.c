/* The netstack test harness (ns_pair.h): two stacks back to back on one loop. */
#include "ns_pair.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

uv_loop_t tn_loop;
struct tn_side tn_a, tn_b;
int tn_deadline_hit;

static int addr_is(const uint8_t *ip, const struct base_addr *a, int fam)
{
    return a->family == fam && memcmp(ip, a->ip, fam == AF_INET ? 4 : 16) == 0;
}

static int out_fn(void *ctx, const uint8_t *pkt, size_t len)
{
    struct tn_side *s = ctx;
    struct tn_side *p = s->peer;
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

static void make_side(struct tn_side *s, struct tn_side *peer, int n, const struct ns_config *base)
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
    assert_int_equal(ns_stack_new(&tn_loop, &cfg, &s->ns), 0);
}

int tn_setup_cfg(const struct ns_config *cfg)
{
    make_side(&tn_a, &tn_b, 1, cfg);
    make_side(&tn_b, &tn_a, 2, cfg);
    return 0;
}

void tn_on_stack_closed(void *arg)
{
    (*(int *)arg)++;
}

/* Closes ns and runs the loop until it is freed: every test releases what it holds. */
void tn_close_stack(struct ns_stack *ns)
{
    int closed = 0;
    ns_stack_close(ns, tn_on_stack_closed, &closed);
    assert_int_equal(closed, 0); /* never from inside ns_stack_close */
    tn_run_until_n(&closed, 1);
}

void tn_free_sides(void)
{
    struct ns_stack *a = tn_a.ns, *b = tn_b.ns;
    tn_a.ns = tn_b.ns = NULL;
    if (a)
        tn_close_stack(a);
    if (b)
        tn_close_stack(b);
}

int tn_group_setup(void **state)
{
    (void)state;
    return uv_loop_init(&tn_loop);
}

int tn_group_teardown(void **state)
{
    (void)state;
    uv_run(&tn_loop, UV_RUN_NOWAIT);
    return uv_loop_close(&tn_loop);
}

int tn_setup(void **state)
{
    (void)state;
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "t=%llu ms\n", (unsigned long long)(uv_hrtime() / 1000000));
    return tn_setup_cfg(NULL);
}

int tn_teardown(void **state)
{
    (void)state;
    tn_free_sides();
    for (int i = 0; i < 4; i++)
        uv_run(&tn_loop, UV_RUN_NOWAIT);
    return 0;
}

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
    tn_deadline_hit = 1;
}

/* Run the loop until pred() holds; a generous deadline turns a hang into a failure. The
 * prepare handle stops the loop before it would block once the condition is met. */
static int (*cur_pred)(void);
static const int *watch_v;
static int watch_n;

static void stop_if_done(uv_prepare_t *h)
{
    if (cur_pred() || tn_deadline_hit)
        uv_stop(h->loop);
}

void tn_run_pred(int (*pred)(void))
{
    uv_timer_t t;
    uv_prepare_t prep;
    tn_deadline_hit = 0;
    cur_pred = pred;
    uv_timer_init(&tn_loop, &t);
    uv_timer_start(&t, deadline_cb, 300000, 0);
    uv_prepare_init(&tn_loop, &prep);
    uv_prepare_start(&prep, stop_if_done);
    while (!pred() && !tn_deadline_hit)
        uv_run(&tn_loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&tn_loop, UV_RUN_NOWAIT);
    assert_false(tn_deadline_hit);
}

static int at_least(void)
{
    return *watch_v >= watch_n;
}

static int nonzero(void)
{
    return *watch_v != 0;
}

void tn_run_until_n(const int *v, int n)
{
    watch_v = v;
    watch_n = n;
    tn_run_pred(at_least);
}

/* Until *flag is non-zero (errors are negative codes). */
void tn_run_until(int *flag)
{
    watch_v = flag;
    tn_run_pred(nonzero);
}

struct base_endpoint tn_ep(const struct base_addr *a, uint16_t port)
{
    struct base_endpoint e = {.addr = *a, .port = port};
    return e;
}

size_t tn_build_syn(uint8_t *p, const struct base_addr *src, const struct base_addr *dst,
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
