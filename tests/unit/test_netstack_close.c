/* Closing a netstack (tests/support/ns_pair.h): every holder hears BASE_ECLOSING, watches run
 * first, nothing new is accepted, and the stack is freed only once everything is released. */
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
    struct base_endpoint r = tn_ep(&tn_b.v4, 7100), nowhere;
    base_addr_parse(&nowhere.addr, "100.64.0.99", strlen("100.64.0.99"));
    nowhere.port = 80;
    assert_int_equal(ns_stack_handle_tcp(tn_b.ns, NULL, 7100, cl_accept, NULL), 0);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &cl_open_cbs, NULL, &cl.open), 0);
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &cl_open_cbs, NULL, &cl.open2), 0);
    assert_int_equal(ns_conn_connect(tn_a.ns, &nowhere, &cl_dead_cbs, NULL, &cl.dead), 0);
    tn_run_until(&cl.dead_err);
    assert_int_equal(cl.dead_err, -ENETUNREACH);
    tn_run_until_n(&cl.n_accepted, 2);
    r.port = 7101; /* its SYN waits in the queue: still connecting when the stack closes */
    assert_int_equal(ns_conn_connect(tn_a.ns, &r, &cl_connecting_cbs, NULL, &cl.connecting), 0);
    r.port = 53;
    assert_int_equal(ns_udp_open(tn_a.ns, &r, &cl_flow_cbs, NULL, &cl.flow), 0);
    assert_int_equal(ns_ping_send(tn_a.ns, &tn_b.v4, 1, 8, 10000, cl_ping, NULL, NULL), 0);

    cl.w1.on_closing = cl_watch_release;
    cl.w2.on_closing = cl_watch_count;
    cl.w3.on_closing = cl_watch_count;
    assert_int_equal(ns_stack_watch(tn_a.ns, &cl.w1), 0);
    assert_int_equal(ns_stack_watch(tn_a.ns, &cl.w3), 0);
    assert_int_equal(ns_stack_watch(tn_a.ns, &cl.w2), 0);
    ns_stack_unwatch(&cl.w3);
    int closed = 0;
    struct ns_stack *a = tn_a.ns;
    tn_a.ns = NULL; /* B's packets to A are lost from here */
    ns_stack_close(a, tn_on_stack_closed, &closed);
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
    assert_int_equal(ns_ping_send(a, &tn_b.v4, 2, 8, 100, cl_ping, NULL, NULL), BASE_ECLOSING);
    assert_int_equal(ns_stack_handle_tcp(a, NULL, 1, cl_accept, NULL), BASE_ECLOSING);
    assert_int_equal(ns_udp_send(cl.flow, "x", 1), BASE_ECLOSING);
    assert_int_equal(ns_conn_write(cl.connecting, "x", 1), BASE_ECLOSING);
    /* The stack waits for the three still held. */
    for (int i = 0; i < 5; i++)
        uv_run(&tn_loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 0);
    ns_conn_close(cl.connecting);
    ns_udp_close(cl.flow);
    for (int i = 0; i < 5; i++)
        uv_run(&tn_loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 0);
    ns_conn_close(cl.dead);
    tn_run_until_n(&closed, 1);
    /* The accepted sides got the RSTs of A's resets (open2's, and open's lingering pcb). */
    tn_run_until_n(&cl.n_accepted_err, 2);
    assert_int_equal(cl.accepted_err, -ECONNRESET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_close_tells_holders, tn_setup, tn_teardown),
    };
    return cmocka_run_group_tests(tests, tn_group_setup, tn_group_teardown);
}
