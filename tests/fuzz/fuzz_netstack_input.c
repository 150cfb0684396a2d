/* Arbitrary packets from the tunnel into a stack with TCP and UDP handlers on every port.
 * The first byte picks what else happens: packets queued for the loop, timers run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "netstack.h"

static uv_loop_t loop;
static struct ns_stack *ns;

static int out_drop(void *ctx, const uint8_t *pkt, size_t len)
{
    (void)ctx;
    /* Anything outside the mesh has no route: exercises the ICMP unreachable path. */
    if (len >= 20 && (pkt[0] >> 4) == 4 && pkt[16] != 100)
        return NS_OUTPUT_NO_ROUTE;
    return 0;
}

static void tcp_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        ns_conn_close(c);
        return;
    }
    ns_conn_write(c, d, len);
    ns_conn_consumed(c, len);
}

static void tcp_error(struct ns_conn *c, int err)
{
    (void)err;
    ns_conn_close(c);
}

static const struct ns_conn_cbs tcp_cbs = {NULL, tcp_read, NULL, tcp_error};

static void tcp_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    if (ns_conn_local(c)->port & 1)
        ns_conn_reset(c);
    else
        ns_conn_set_cbs(c, &tcp_cbs, NULL);
}

static void udp_recv(struct ns_udp *u, const uint8_t *d, size_t len)
{
    ns_udp_send(u, d, len);
    ns_udp_close(u);
}

static const struct ns_udp_cbs udp_cbs = {udp_recv, NULL};

static void udp_accept(void *ctx, struct ns_udp *u)
{
    (void)ctx;
    ns_udp_set_cbs(u, &udp_cbs, NULL);
}

static void init(void)
{
    struct ns_config cfg = {.output = out_drop, .max_tcp = 64, .max_udp = 64, .max_pending = 16};
    uv_loop_init(&loop);
    base_addr_parse(&cfg.addr4, "100.64.0.1", strlen("100.64.0.1"));
    base_addr_parse(&cfg.addr6, "fd7a:115c:a1e0::1", strlen("fd7a:115c:a1e0::1"));
    if (ns_stack_new(&loop, &cfg, &ns) != 0)
        abort();
    struct base_addr extra;
    base_addr_parse(&extra, "100.100.100.100", strlen("100.100.100.100"));
    ns_stack_add_address(ns, &extra);
    ns_stack_handle_tcp(ns, NULL, 0, tcp_accept, NULL);
    ns_stack_handle_udp(ns, NULL, 0, udp_accept, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ns)
        init();
    if (size < 1)
        return 0;
    ns_stack_input(ns, data + 1, size - 1);
    if (data[0] & 1)
        uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
