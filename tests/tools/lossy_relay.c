/*
 * lossy_relay: a UDP relay between two loopback endpoints that delays every datagram by a
 * fixed time and drops a seeded random fraction, each way. It stands in for netem (which this
 * machine's kernel lacks) between two WireGuard endpoints: side A talks to --a-listen and the
 * relay forwards to --b-peer from --b-listen; side B's answers come back the other way.
 *
 *   lossy_relay --a-listen PORT --a-peer PORT --b-listen PORT --b-peer PORT
 *               [--delay-ms 25] [--loss 0.005] [--seed 1]
 *
 * Flow: main parses the options and binds both sockets, then loop() waits in ppoll until a
 * socket is readable or the oldest queued datagram is due; receive() queues what arrives (or
 * drops it by the seeded coin), flush() sends what is due. A constant delay keeps each
 * direction FIFO, so a ring per direction is the whole scheduler. SIGTERM/SIGINT print the
 * counters ("relay a2b_in=... a2b_dropped=..." a line each way) and exit 0; SIGUSR1 prints them
 * and goes on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_SLOTS 16384
#define MAX_DGRAM 2048

struct slot {
    uint64_t due_us;
    uint16_t len;
    uint8_t data[MAX_DGRAM];
};

struct direction {
    const char *name;
    int in_fd, out_fd;
    struct sockaddr_in to;
    struct slot *ring;
    size_t head, count;
    uint64_t in, in_bytes, dropped, overflow, out;
};

struct relay {
    struct direction dir[2];
    uint64_t delay_us;
    uint32_t loss_threshold; /* drop when the next random u32 is below this */
    uint64_t rng;
};

static volatile sig_atomic_t stop_requested, print_requested;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        print_requested = 1;
    else
        stop_requested = 1;
}

static void print_counters(const struct relay *r)
{
    for (int i = 0; i < 2; i++) {
        const struct direction *d = &r->dir[i];
        printf("relay %s_in=%llu %s_in_bytes=%llu %s_dropped=%llu %s_overflow=%llu %s_out=%llu\n",
               d->name, (unsigned long long)d->in, d->name, (unsigned long long)d->in_bytes,
               d->name, (unsigned long long)d->dropped, d->name, (unsigned long long)d->overflow,
               d->name, (unsigned long long)d->out);
    }
    fflush(stdout);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* xorshift64*: small, seedable, and the same sequence on every machine. */
static uint32_t next_random(struct relay *r)
{
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return (uint32_t)((r->rng * 2685821657736338717ull) >> 32);
}

static int bind_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int buf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void receive(struct relay *r, struct direction *d, uint64_t now)
{
    for (;;) {
        struct slot *s = &d->ring[(d->head + d->count) % RING_SLOTS];
        uint8_t spill[MAX_DGRAM];
        int full = d->count == RING_SLOTS;
        ssize_t n = recv(d->in_fd, full ? spill : s->data, MAX_DGRAM, 0);
        if (n < 0)
            return;
        d->in++;
        d->in_bytes += (uint64_t)n;
        if (full) {
            d->overflow++;
            continue;
        }
        if (next_random(r) < r->loss_threshold) {
            d->dropped++;
            continue;
        }
        s->len = (uint16_t)n;
        s->due_us = now + r->delay_us;
        d->count++;
    }
}

static void flush(struct direction *d, uint64_t now)
{
    while (d->count > 0 && d->ring[d->head].due_us <= now) {
        struct slot *s = &d->ring[d->head];
        if (sendto(d->out_fd, s->data, s->len, 0, (struct sockaddr *)&d->to, sizeof(d->to)) < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* socket buffer full: retry on the next turn */
        d->out++;
        d->head = (d->head + 1) % RING_SLOTS;
        d->count--;
    }
}

static void loop(struct relay *r)
{
    while (!stop_requested) {
        if (print_requested) {
            print_requested = 0;
            print_counters(r);
        }
        uint64_t now = now_us(), wait_us = 1000000;
        for (int i = 0; i < 2; i++) {
            struct direction *d = &r->dir[i];
            if (d->count > 0) {
                uint64_t due = d->ring[d->head].due_us;
                uint64_t w = due > now ? due - now : 0;
                if (w < wait_us)
                    wait_us = w;
            }
        }
        struct pollfd pfd[2] = {{.fd = r->dir[0].in_fd, .events = POLLIN},
                                {.fd = r->dir[1].in_fd, .events = POLLIN}};
        struct timespec ts = {.tv_sec = (time_t)(wait_us / 1000000),
                              .tv_nsec = (long)(wait_us % 1000000) * 1000};
        if (ppoll(pfd, 2, &ts, NULL) < 0 && errno != EINTR)
            return;
        now = now_us();
        for (int i = 0; i < 2; i++) {
            if (pfd[i].revents & POLLIN)
                receive(r, &r->dir[i], now);
            flush(&r->dir[i], now);
        }
    }
}

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v <= 0 || v > 65535) ? -1 : (int)v;
}

static int usage(void)
{
    fprintf(stderr, "usage: lossy_relay --a-listen PORT --a-peer PORT --b-listen PORT "
                    "--b-peer PORT [--delay-ms MS] [--loss FRACTION] [--seed N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int port[4] = {-1, -1, -1, -1}; /* a-listen, a-peer, b-listen, b-peer */
    static const char *names[4] = {"--a-listen", "--a-peer", "--b-listen", "--b-peer"};
    double delay_ms = 25, loss = 0.005;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        const char *opt = argv[i], *val = argv[i + 1];
        int known = 1;
        for (int k = 0; k < 4; k++)
            if (!strcmp(opt, names[k]))
                port[k] = parse_port(val);
        if (!strcmp(opt, "--delay-ms"))
            delay_ms = atof(val);
        else if (!strcmp(opt, "--loss"))
            loss = atof(val);
        else if (!strcmp(opt, "--seed"))
            seed = strtoull(val, NULL, 10);
        else if (strncmp(opt, "--a-", 4) && strncmp(opt, "--b-", 4))
            known = 0;
        if (!known)
            return usage();
    }
    for (int k = 0; k < 4; k++)
        if (port[k] < 0)
            return usage();
    if (delay_ms < 0 || loss < 0 || loss > 1)
        return usage();

    struct relay r = {.delay_us = (uint64_t)(delay_ms * 1000), .rng = seed ? seed : 1};
    r.loss_threshold = (uint32_t)(loss * 4294967295.0);
    int fd_a = bind_loopback(port[0]), fd_b = bind_loopback(port[2]);
    if (fd_a < 0 || fd_b < 0) {
        perror("lossy_relay: bind");
        return 1;
    }
    struct direction *ab = &r.dir[0], *ba = &r.dir[1];
    *ab = (struct direction){.name = "a2b", .in_fd = fd_a, .out_fd = fd_b};
    *ba = (struct direction){.name = "b2a", .in_fd = fd_b, .out_fd = fd_a};
    ab->to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port[3])};
    ba->to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port[1])};
    ab->to.sin_addr.s_addr = ba->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ab->ring = calloc(RING_SLOTS, sizeof(struct slot));
    ba->ring = calloc(RING_SLOTS, sizeof(struct slot));
    if (!ab->ring || !ba->ring)
        return 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("listening a=%d b=%d delay_ms=%g loss=%g seed=%llu\n", port[0], port[2], delay_ms, loss,
           seed);
    fflush(stdout);
    sigaction(SIGUSR1, &sa, NULL);
    loop(&r);
    print_counters(&r);
    free(ab->ring);
    free(ba->ring);
    close(fd_a);
    close(fd_b);
    return 0;
}
