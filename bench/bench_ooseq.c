/* Cost of lwIP's out-of-order queue under a hostile or lossy peer: a raw peer
 * (tests/support/raw_tcp.h) opens a connection to the netstack, leaves a one-byte hole, and sends 1-byte segments behind it.
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

#include <uv.h>

#include "netstack.h"
#include "raw_tcp.h"

enum { WINDOW = 64, TOTAL = 3200, NSIZES = 3 };
static const int sizes[NSIZES] = {256, 1024, 3072};

static uv_loop_t loop;
static struct tn_raw raw;
static size_t got;
static uint8_t expect;
static int bad;

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

/* One connection: µs per segment in each window, into us[]. */
static void one_round(uint16_t port, int sack, double *us)
{
    struct tn_raw_conn c = {.sport = port, .sack_ok = sack, .snd_nxt = 1000};
    uint32_t isn = c.snd_nxt;
    raw.accepting = &c;
    if (tn_raw_handshake(&raw, &c) != 0 || !c.conn) {
        fprintf(stderr, "handshake failed\n");
        exit(1);
    }
    ns_conn_set_cbs(c.conn, &cbs, NULL); /* our reader checks the bytes as they come */
    uint32_t hole = isn + 1;
    uint64_t t0 = 0;
    for (int i = 1; i <= TOTAL; i++) {
        for (int k = 0; k < NSIZES; k++) {
            if (i == sizes[k] - WINDOW / 2 + 1)
                t0 = uv_hrtime();
        }
        uint8_t b = (uint8_t)i;
        tn_raw_send(&raw, &c, hole + (uint32_t)i, 0x18, &b, 1);
        for (int k = 0; k < NSIZES; k++) {
            if (i == sizes[k] + WINDOW / 2)
                us[k] = (double)(uv_hrtime() - t0) / WINDOW / 1000;
        }
    }
    got = 0;
    expect = 0;
    bad = 0;
    uint8_t b = 0;
    tn_raw_send(&raw, &c, hole, 0x18, &b, 1);
    if (got < 3072 || bad) {
        fprintf(stderr, "delivered %zu bytes, %d out of order\n", got, bad);
        exit(1);
    }
    ns_conn_reset(c.conn);
}

static void on_closed(void *arg)
{
    *(int *)arg = 1;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    uv_loop_init(&loop);
    if (tn_raw_stack_new(&raw, &loop, NULL) != 0)
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
    ns_stack_close(raw.ns, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_loop_close(&loop);
    return 0;
}
