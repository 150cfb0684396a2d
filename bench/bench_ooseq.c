/* Cost of lwIP's out-of-order queue under a hostile or lossy peer: a raw peer opens a
 * connection to the netstack, leaves a one-byte hole, and sends 1-byte segments behind it.
 * Prints the wall-clock cost per segment while the queue holds about 256, 1024 and 3072
 * segments (3072 is the cap, NS_OOSEQ_PBUFS_MAX: beyond it every segment is dropped after the
 * queue was checked), with and without SACK. Run by hand: build/bench/bench_ooseq [rounds].
 *
 * Flow: for each SACK setting, `rounds` connections; each one fills the queue to 3200
 * segments, timing a window of 64 segments as it passes each size, then fills the hole and
 * checks that the stack delivered the queued bytes in order. The best round is printed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <uv.h>

#include "netstack.h"

enum { WINDOW = 64, TOTAL = 3200, NSIZES = 3 };
static const int sizes[NSIZES] = {256, 1024, 3072};

static uv_loop_t loop;
static struct ns_stack *ns;
static struct base_addr peer_addr, our_addr;
static uint32_t last_seq;
static struct ns_conn *accepted;
static size_t got;
static uint8_t expect;
static int bad;

static int out_fn(void *ctx, const uint8_t *pkt, size_t len)
{
    (void)ctx;
    if (len >= 40 && pkt[9] == 6) {
        const uint8_t *t = pkt + (pkt[0] & 15) * 4;
        memcpy(&last_seq, t + 4, 4);
        last_seq = ntohl(last_seq);
    }
    return 0;
}

/* One segment from the raw peer; the SYN carries MSS 1380, window scale 7 and, if sack,
 * SACK-permitted. */
static void send_seg(uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags, int sack,
                     const uint8_t *data, size_t n)
{
    uint8_t pkt[128];
    size_t opt = flags & 0x02 ? (sack ? 12 : 8) : 0, hl = 20 + opt;
    memset(pkt, 0, 20 + hl);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)((20 + hl + n) >> 8);
    pkt[3] = (uint8_t)(20 + hl + n);
    pkt[8] = 64;
    pkt[9] = 6;
    memcpy(pkt + 12, peer_addr.ip, 4);
    memcpy(pkt + 16, our_addr.ip, 4);
    uint8_t *t = pkt + 20;
    t[0] = (uint8_t)(port >> 8);
    t[1] = (uint8_t)port;
    t[3] = 80;
    uint32_t s = htonl(seq), a = htonl(ack);
    memcpy(t + 4, &s, 4);
    memcpy(t + 8, &a, 4);
    t[12] = (uint8_t)((hl / 4) << 4);
    t[13] = flags;
    t[14] = t[15] = 0xff;
    const uint8_t o[12] = {2, 4, 0x05, 0x64, 1, 3, 3, 7, 1, 1, 4, 2};
    memcpy(t + 20, o, opt);
    memcpy(pkt + 20 + hl, data, n);
    ns_stack_input(ns, pkt, 20 + hl + n);
}

static void on_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d)
        return;
    for (size_t i = 0; i < len; i++)
        bad += d[i] != expect++;
    got += len;
    ns_conn_consumed(c, len);
}

static const struct ns_conn_cbs cbs = {.on_read = on_read};

static void on_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    accepted = c;
    ns_conn_set_cbs(c, &cbs, NULL);
}

/* One connection: µs per segment in each window, into us[]. */
static void one_round(uint16_t port, int sack, double *us)
{
    uint32_t isn = 1000;
    accepted = NULL;
    send_seg(port, isn, 0, 0x02, sack, NULL, 0);
    uint32_t ack = last_seq + 1;
    send_seg(port, isn + 1, ack, 0x10, sack, NULL, 0);
    if (!accepted) {
        fprintf(stderr, "handshake failed\n");
        exit(1);
    }
    uint32_t hole = isn + 1;
    uint64_t t0 = 0;
    for (int i = 1; i <= TOTAL; i++) {
        for (int k = 0; k < NSIZES; k++) {
            if (i == sizes[k] - WINDOW / 2 + 1)
                t0 = uv_hrtime();
        }
        uint8_t b = (uint8_t)i;
        send_seg(port, hole + (uint32_t)i, ack, 0x18, sack, &b, 1);
        for (int k = 0; k < NSIZES; k++) {
            if (i == sizes[k] + WINDOW / 2)
                us[k] = (double)(uv_hrtime() - t0) / WINDOW / 1000;
        }
    }
    got = 0;
    expect = 0;
    bad = 0;
    uint8_t b = 0;
    send_seg(port, hole, ack, 0x18, sack, &b, 1);
    if (got < 3072 || bad) {
        fprintf(stderr, "delivered %zu bytes, %d out of order\n", got, bad);
        exit(1);
    }
    ns_conn_reset(accepted);
}

static void on_closed(void *arg)
{
    *(int *)arg = 1;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    uv_loop_init(&loop);
    base_addr_parse(&peer_addr, "100.64.0.9", 10);
    base_addr_parse(&our_addr, "100.64.0.2", 10);
    struct ns_config cfg = {.addr4 = our_addr, .output = out_fn};
    if (ns_stack_new(&loop, &cfg, &ns) != 0 || ns_stack_handle_tcp(ns, NULL, 80, on_accept, NULL))
        return 1;
    printf("1-byte segments behind a hole, us per segment (best of %d)\n", rounds);
    printf("%-6s %10s %10s %10s\n", "sack", "256", "1024", "3072");
    uint16_t port = 4000;
    for (int sack = 0; sack <= 1; sack++) {
        double best[NSIZES] = {1e9, 1e9, 1e9};
        for (int r = 0; r < rounds; r++) {
            double us[NSIZES];
            one_round(port++, sack, us);
            for (int k = 0; k < NSIZES; k++)
                best[k] = us[k] < best[k] ? us[k] : best[k];
        }
        printf("%-6s %10.2f %10.2f %10.2f\n", sack ? "yes" : "no", best[0], best[1], best[2]);
    }
    int closed = 0;
    ns_stack_close(ns, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_loop_close(&loop);
    return 0;
}
