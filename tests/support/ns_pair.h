/*
 * Test harness for the netstack: two stacks back to back on one loop, A = 100.64.0.1 /
 * fd7a:115c:a1e0::1 and B = .2 / ::2. A's output is B's input and the other way round (through
 * the queue: never inside the call that sent); any other destination has no route. Tests run
 * the loop until a condition holds, with a generous deadline that turns a hang into a failure.
 * Teardown closes both stacks and waits for on_closed: a test releases everything it holds.
 */
#ifndef TUNLESS_TEST_NS_PAIR_H
#define TUNLESS_TEST_NS_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "netstack.h"

struct tn_side {
    struct ns_stack *ns; /* NULL: gone, packets to it are lost */
    struct tn_side *peer;
    struct base_addr v4, v6, extra; /* extra: one more address the wiring routes here */
    int capture_syn;                /* copy the next SYN we send into syn[] */
    uint8_t syn[128];
    size_t syn_len;
};

extern uv_loop_t tn_loop;
extern struct tn_side tn_a, tn_b;
extern int tn_deadline_hit;

/* cmocka group setup/teardown: the loop. */
int tn_group_setup(void **state);
int tn_group_teardown(void **state);
/* cmocka setup/teardown: both sides with the default configuration / closed and freed. */
int tn_setup(void **state);
int tn_teardown(void **state);
/* Both sides again with cfg (addresses and output are the harness's). */
int tn_setup_cfg(const struct ns_config *cfg);
void tn_free_sides(void);
/* Closes ns and runs the loop until on_closed (never called inside ns_stack_close). */
void tn_close_stack(struct ns_stack *ns);
void tn_on_stack_closed(void *arg); /* (*(int *)arg)++ */

void tn_run_pred(int (*pred)(void));
void tn_run_until_n(const int *v, int n); /* until *v >= n */
void tn_run_until(int *flag);             /* until *flag != 0 (errors are negative) */

struct base_endpoint tn_ep(const struct base_addr *a, uint16_t port);
/* A bare IPv4 SYN from src:sport to dst:dport into p (40 bytes); returns its length. */
size_t tn_build_syn(uint8_t *p, const struct base_addr *src, const struct base_addr *dst,
                    uint16_t sport, uint16_t dport);

#endif
