/*
 * Queries per second of local MagicDNS answers.
 *   bench_dns [seconds=3] [window=128] [port=15356]
 * 1. core: dns_resolver_handle() called in a loop (no sockets).
 * 2. listener: the resolver + local UDP listener on a loop thread; a load generator keeps
 *    `window` queries outstanding over one UDP socket on loopback and counts answers.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t make_query(uint8_t *q, uint16_t id, const char *name)
{
    size_t n = 12;
    memset(q, 0, 12);
    q[0] = (uint8_t)(id >> 8);
    q[1] = (uint8_t)id;
    q[2] = 1; /* RD */
    q[5] = 1;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        q[n++] = (uint8_t)l;
        memcpy(q + n, p, l);
        n += l;
        p += l + (dot ? 1 : 0);
    }
    q[n++] = 0;
    q[n++] = 0;
    q[n++] = 1;
    q[n++] = 0;
    q[n++] = 1;
    return n;
}

struct server {
    uv_loop_t loop;
    uv_async_t stop;
    struct dns_resolver *r;
    struct dns_listener *l;
};

static void on_stop(uv_async_t *a)
{
    struct server *s = a->data;
    dns_listener_close(s->l, NULL, NULL);
    dns_resolver_close(s->r, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void server_run(void *arg)
{
    struct server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

static void count_reply(void *ctx, const uint8_t *reply, size_t len)
{
    (void)reply;
    (void)len;
    (*(unsigned long *)ctx)++;
}

static struct dns_config config(struct dns_host *hosts, struct base_addr *addrs, char names[][16],
                                size_t n)
{
    struct dns_config c = {0};
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 16, "peer%zu", i);
        addrs[i].family = AF_INET;
        addrs[i].ip[0] = 100;
        addrs[i].ip[1] = 64;
        addrs[i].ip[2] = (uint8_t)(i >> 8);
        addrs[i].ip[3] = (uint8_t)i;
        hosts[i] = (struct dns_host){names[i], &addrs[i], 1};
    }
    c.hosts = hosts;
    c.n_hosts = n;
    return c;
}

/* 1. the core: queries straight into the resolver, no sockets. */
static int bench_core(struct dns_config *c, double secs)
{
    uint8_t q[512];
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dns_resolver *r;
    int rc = dns_resolver_new(&loop, c, &r);
    if (rc < 0) {
        fprintf(stderr, "bench_dns: %s\n", base_strerror(rc));
        return 1;
    }
    unsigned long answered = 0, iters = 0;
    double t0 = now_s(), t1;
    do {
        for (int i = 0; i < 1000; i++, iters++) {
            char name[40];
            snprintf(name, sizeof(name), "peer%lu.mesh.internal", iters % 256);
            size_t n = make_query(q, (uint16_t)iters, name);
            dns_resolver_handle(r, q, n, 65507, count_reply, &answered);
        }
        t1 = now_s();
    } while (t1 - t0 < secs);
    printf("core: %.0f queries/s (%lu answered)\n", (double)answered / (t1 - t0), answered);
    dns_resolver_close(r, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

/* Keeps `window` queries in flight on fd for secs; returns the answers counted. */
static unsigned long query_loop(int fd, int window, double secs, unsigned long *sent_out)
{
    uint8_t q[512], buf[2048];
    unsigned long sent = 0, got = 0;
    long outstanding = 0;
    double t0 = now_s();
    do {
        while (outstanding < window) {
            char name[40];
            snprintf(name, sizeof(name), "peer%lu.mesh.internal", sent % 256);
            size_t n = make_query(q, (uint16_t)sent, name);
            if (send(fd, q, n, 0) < 0)
                break;
            sent++;
            outstanding++;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) == 0) {
            outstanding = 0; /* lost on loopback (buffers full): refill the window */
            continue;
        }
        while (recv(fd, buf, sizeof(buf), 0) > 0) {
            got++;
            if (outstanding > 0)
                outstanding--;
        }
    } while (now_s() - t0 < secs);
    *sent_out = sent;
    return got;
}

/* 2. over the local listener, served by a loop on its own thread. */
static int bench_listener(struct dns_config *c, double secs, int window, int port)
{
    struct server s;
    uv_loop_init(&s.loop);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct dns_listener_config lc = {0};
    base_endpoint_from_sockaddr(&lc.addr, (struct sockaddr *)&sin);
    int rc = dns_resolver_new(&s.loop, c, &s.r);
    if (rc == 0) {
        lc.resolver = s.r;
        rc = dns_listener_new(&s.loop, &lc, &s.l);
    }
    if (rc < 0) {
        fprintf(stderr, "bench_dns: listen: %s\n", base_strerror(rc));
        return 1;
    }
    uv_async_init(&s.loop, &s.stop, on_stop);
    s.stop.data = &s;
    uv_thread_t th;
    uv_thread_create(&th, server_run, &s);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    unsigned long sent = 0;
    double t0 = now_s();
    unsigned long got = query_loop(fd, window, secs, &sent);
    double t1 = now_s();
    printf("listener: %.0f queries/s over UDP on loopback (window %d, %lu sent, %lu answered)\n",
           (double)got / (t1 - t0), window, sent, got);
    close(fd);
    uv_async_send(&s.stop);
    uv_thread_join(&th);
    uv_loop_close(&s.loop);
    return 0;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3;
    int window = argc > 2 ? atoi(argv[2]) : 128;
    int port = argc > 3 ? atoi(argv[3]) : 15356;
    static struct dns_host hosts[256];
    static struct base_addr addrs[256];
    static char names[256][16];
    struct dns_config c = config(hosts, addrs, names, 256);
    if (bench_core(&c, secs) != 0)
        return 1;
    return bench_listener(&c, secs, window, port);
}
