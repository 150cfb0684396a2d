#include "engine_pair.h"

#include "device.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t te_mono(void *ctx)
{
    return ((struct te_clock *)ctx)->mono_ns;
}

static uint64_t te_wall(void *ctx)
{
    return ((struct te_clock *)ctx)->wall_ns;
}

static void te_deliver(void *arg, uint8_t *pkt, size_t len)
{
    struct te_node *node = arg;
    node->delivered++;
    node->last_len = len;
    memcpy(node->last, pkt, len < sizeof(node->last) ? len : sizeof(node->last));
}

static void te_handshake(void *arg, const uint8_t public_key[WG_KEY_LEN], uint64_t rtt_ns)
{
    struct te_node *node = arg;
    node->handshakes++;
    node->last_rtt_ns = rtt_ns;
    memcpy(node->last_hs_peer, public_key, WG_KEY_LEN);
}

static void te_log(void *arg, enum base_log_level level, const char *line)
{
    struct te_node *node = arg;
    (void)level;
    snprintf(node->last_log, sizeof(node->last_log), "%s", line);
    if (getenv("TE_VERBOSE"))
        fprintf(stderr, "[node %u] %s\n", (unsigned)node->addr[3], line);
}

void te_loopback(struct base_addr *a, int family)
{
    static const uint8_t lo4[4] = {127, 0, 0, 1};
    static const uint8_t lo6[16] = {[15] = 1};
    if (family == AF_INET)
        base_addr_v4(a, lo4);
    else
        base_addr_v6(a, lo6);
}

void te_net_init(struct te_net *n, unsigned count)
{
    te_net_init_family(n, count, AF_INET);
}

void te_net_init_family(struct te_net *n, unsigned count, int family)
{
    memset(n, 0, sizeof(*n));
    n->transport_family = family;
    if (uv_loop_init(&n->loop) != 0)
        abort();
    n->clock.mono_ns = 1000 * 1000000000ULL;
    n->clock.wall_ns = (uint64_t)time(NULL) * 1000000000ULL;
    n->wg_clock.mono_ns = te_mono;
    n->wg_clock.wall_ns = te_wall;
    n->wg_clock.arg = &n->clock;
    n->count = count;
    for (unsigned i = 0; i < count; i++) {
        struct te_node *node = &n->nodes[i];
        wg_key_generate(node->priv);
        wg_key_public(node->pub, node->priv);
        node->addr[0] = 100, node->addr[1] = 64, node->addr[2] = 0,
        node->addr[3] = (uint8_t)(i + 1);
        static const uint8_t prefix6[6] = {0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0};
        memcpy(node->addr6, prefix6, sizeof(prefix6));
        node->addr6[15] = (uint8_t)(i + 1);
        struct wg_engine_options opt = {
            .no_ipv4 = family == AF_INET6,
            .no_ipv6 = family == AF_INET,
            .deliver = te_deliver,
            .deliver_arg = node,
            .on_handshake = te_handshake,
            .on_handshake_arg = node,
            .clock = &n->wg_clock,
            .log = {.fn = te_log, .arg = node, .level = BASE_LOG_DEBUG},
        };
        te_loopback(&opt.bind4, AF_INET);
        te_loopback(&opt.bind6, AF_INET6);
        memcpy(opt.private_key, node->priv, WG_KEY_LEN);
        if (wg_engine_new(&n->loop, &opt, &node->engine) != 0)
            abort();
    }
}

static void te_closed(void *arg)
{
    (*(unsigned *)arg)++;
}

void te_net_free(struct te_net *n)
{
    unsigned closed = 0;
    for (unsigned i = 0; i < n->count; i++)
        wg_engine_close(n->nodes[i].engine, te_closed, &closed);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    if (closed != n->count || uv_loop_close(&n->loop) != 0)
        abort();
}

int te_setup2(void **state)
{
    static struct te_net net;
    te_net_init(&net, 2);
    *state = &net;
    return te_peer(&net, 0, 1, 0) == 0 && te_peer(&net, 1, 0, 0) == 0 ? 0 : -1;
}

int te_teardown(void **state)
{
    te_net_free(*state);
    return 0;
}

int te_peer(struct te_net *n, unsigned a, unsigned b, uint16_t persistent_keepalive)
{
    struct base_endpoint ep = {.port = wg_engine_port(n->nodes[b].engine)};
    te_loopback(&ep.addr, n->transport_family);
    struct base_prefix aips[2] = {{.bits = 32}, {.bits = 128}};
    base_addr_v4(&aips[0].addr, n->nodes[b].addr);
    base_addr_v6(&aips[1].addr, n->nodes[b].addr6);
    struct wg_peer_config cfg = {.endpoint = &ep,
                                 .allowed_ips = aips,
                                 .allowed_ips_len = 2,
                                 .persistent_keepalive = persistent_keepalive};
    memcpy(cfg.public_key, n->nodes[b].pub, WG_KEY_LEN);
    return wg_engine_set_peer(n->nodes[a].engine, &cfg);
}

bool te_run_until(struct te_net *n, const unsigned *counter, unsigned want)
{
    for (int i = 0; i < 2000; i++) {
        if (*counter >= want)
            return true;
        uv_run(&n->loop, UV_RUN_NOWAIT);
        if (*counter >= want)
            return true;
        usleep(1000);
    }
    return *counter >= want;
}

void te_settle(struct te_net *n)
{
    for (int i = 0; i < 50; i++) {
        uv_run(&n->loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

/* Deadline to deadline (at most a second at a time), letting loopback traffic flow in between,
 * so timers interleave with the packets they cause as they would in real time. */
void te_advance(struct te_net *n, uint64_t ns)
{
    while (ns) {
        uint64_t step = ns < 1000000000ULL ? ns : 1000000000ULL;
        for (unsigned i = 0; i < n->count; i++) {
            uint64_t d = n->nodes[i].engine->timer_deadline;
            if (d > n->clock.mono_ns && d - n->clock.mono_ns < step)
                step = d - n->clock.mono_ns;
        }
        ns -= step;
        n->clock.mono_ns += step;
        n->clock.wall_ns += step;
        for (unsigned i = 0; i < n->count; i++)
            wg_engine_clock_changed(n->nodes[i].engine);
        for (int r = 0; r < 4; r++)
            uv_run(&n->loop, UV_RUN_NOWAIT);
    }
}

static uint16_t csum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

size_t te_ping(uint8_t *buf, const uint8_t src[4], const uint8_t dst[4], uint16_t seq,
               size_t payload_len)
{
    size_t total = 20 + 8 + payload_len;
    memset(buf, 0, total);
    buf[0] = 0x45;
    buf[2] = (uint8_t)(total >> 8);
    buf[3] = (uint8_t)total;
    buf[8] = 64;
    buf[9] = 1; /* ICMP */
    memcpy(buf + 12, src, 4);
    memcpy(buf + 16, dst, 4);
    uint16_t c = csum(buf, 20);
    buf[10] = (uint8_t)(c >> 8);
    buf[11] = (uint8_t)c;
    uint8_t *icmp = buf + 20;
    icmp[0] = 8;
    icmp[4] = 0x12, icmp[5] = 0x34;
    icmp[6] = (uint8_t)(seq >> 8), icmp[7] = (uint8_t)seq;
    for (size_t i = 0; i < payload_len; i++)
        icmp[8 + i] = (uint8_t)(i * 7 + seq);
    c = csum(icmp, 8 + payload_len);
    icmp[2] = (uint8_t)(c >> 8);
    icmp[3] = (uint8_t)c;
    return total;
}

size_t te_ipv6(uint8_t *buf, const uint8_t src[16], const uint8_t dst[16], size_t payload_len)
{
    memset(buf, 0, 40 + payload_len);
    buf[0] = 0x60;
    buf[4] = (uint8_t)(payload_len >> 8);
    buf[5] = (uint8_t)payload_len;
    buf[6] = 59;
    buf[7] = 64;
    memcpy(buf + 8, src, 16);
    memcpy(buf + 24, dst, 16);
    for (size_t i = 0; i < payload_len; i++)
        buf[40 + i] = (uint8_t)(i * 13);
    return 40 + payload_len;
}

int te_send_ping(struct te_net *n, unsigned a, unsigned b, uint16_t seq)
{
    uint8_t buf[256];
    size_t len = te_ping(buf, n->nodes[a].addr, n->nodes[b].addr, seq, 56);
    return wg_engine_send(n->nodes[a].engine, buf, len);
}
