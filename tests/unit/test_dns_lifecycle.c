/* What the dns library promises about its lifecycles and its errors: each close callback
 * runs once, after every handle is gone, with queries in flight, host sockets open, a listener
 * and a stream session; a rejected config says why on the logger and keeps the old one; a
 * lookup tells a missing name from a name without addresses of the family asked for; a TCP
 * client of the listener that never reads holds no more than the listener's queue bound, its
 * replies counted at their cost. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"
#include "dns_internal.h"
#include "dns_wire.h"

#define PORT_SILENT 15357

static char logged[BASE_LOG_LINE_MAX];
static void log_line(void *arg, enum base_log_level level, const char *line)
{
    (void)arg;
    assert_int_equal(level, BASE_LOG_ERROR);
    snprintf(logged, sizeof(logged), "%s", line);
}

static struct base_addr addr(const char *s)
{
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, s, strlen(s)), 0);
    return a;
}

static void count(void *arg)
{
    (*(int *)arg)++;
}

/* A resolver on a fresh loop from c with one host, name at ip. */
static struct dns_resolver *start(uv_loop_t *loop, struct dns_config *c, struct dns_host *host,
                                  struct base_addr *a, const char *name, const char *ip)
{
    struct dns_resolver *r;
    uv_loop_init(loop);
    *a = addr(ip);
    *host = (struct dns_host){name, a, 1};
    c->hosts = host;
    c->n_hosts = 1;
    assert_int_equal(dns_resolver_new(loop, c, &r), 0);
    return r;
}

/* Closes r and runs the loop dry: nothing may be left on it. */
static void finish(uv_loop_t *loop, struct dns_resolver *r)
{
    dns_resolver_close(r, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* An A query for name with id. */
static size_t make_query(uint8_t q[512], uint16_t id, const char *name)
{
    struct dns_builder b;
    uint8_t wire[DNS_NAME_MAX];
    struct dns_header h = {id, DNS_F_RD, 1, 0, 0, 0};
    assert_true(dns_name_from_text(name, wire) > 0);
    dns_b_init(&b, q, 512);
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", DNS_HDR_LEN);
    dns_b_question(&b, wire, DNS_TYPE_A, DNS_CLASS_IN);
    dns_header_write(q, &h);
    return b.len;
}

static void ignore_reply(void *ctx, const uint8_t *reply, size_t len)
{
    (void)ctx, (void)reply, (void)len;
    fail_msg("a canceled query was answered");
}

/* A silent upstream (a bound UDP socket that never answers): a forward stays in flight on a
 * host socket (a uv_poll) and the channel's timer runs. Close with all that: on_closed once,
 * after the loop has closed every handle. */
static void test_resolver_close_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(PORT_SILENT)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    struct base_endpoint up = {.addr = addr("127.0.0.1"), .port = PORT_SILENT};
    struct dns_config c = {.upstreams = &up, .n_upstreams = 1};
    struct dns_resolver *r;
    assert_int_equal(dns_resolver_new(&loop, &c, &r), 0);

    uint8_t q[512];
    size_t n = make_query(q, 0x1234, "example.org");
    assert_non_null(dns_resolver_handle(r, q, n, 512, ignore_reply, NULL));
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* the query leaves on a host socket */

    int closed = 0;
    dns_resolver_close(r, count, &closed);
    assert_int_equal(closed, 0); /* not before the loop closed the handles */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

struct lk {
    int called, err;
    size_t n;
};

static void on_lookup(void *ctx, int err, const struct base_addr *addrs, size_t n)
{
    struct lk *l = ctx;
    assert_non_null(addrs);
    l->called++;
    l->err = err;
    l->n = n;
}

/* A bad config: BASE_ECONFIG, the reason on the logger, the old config still answering. */
static void test_config_rejected(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct base_addr a;
    struct dns_host host;
    struct dns_config c = {.log = {.fn = log_line, .level = BASE_LOG_DEBUG}};
    struct dns_resolver *r = start(&loop, &c, &host, &a, "db", "100.64.0.2"), *none = NULL;

    struct dns_record aaaa_with_v4 = {.name = "x.mesh.internal", .type = DNS_TYPE_AAAA, .addr = a};
    struct dns_config bad = c;
    bad.records = &aaaa_with_v4;
    bad.n_records = 1;
    assert_int_equal(dns_resolver_set_config(r, &bad), BASE_ECONFIG);
    assert_non_null(strstr(logged, "event=dns_config_invalid"));
    assert_non_null(strstr(logged, "name=x.mesh.internal"));
    assert_non_null(strstr(logged, "value=100.64.0.2"));

    struct base_endpoint no_family = {0};
    bad = c;
    bad.upstreams = &no_family;
    bad.n_upstreams = 1;
    logged[0] = 0;
    assert_int_equal(dns_resolver_new(&loop, &bad, &none), BASE_ECONFIG);
    assert_null(none);
    assert_non_null(strstr(logged, "upstream without an address"));

    struct lk l = {0};
    assert_null(dns_resolver_lookup(r, "db", DNS_FAMILY_V4, on_lookup, &l));
    assert_int_equal(l.err, 0); /* the old config answers */
    finish(&loop, r);
}

/* NXDOMAIN and "exists, but not with that family" are two errors; so is a literal of the
 * other family. */
static void test_lookup_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct base_addr a;
    struct dns_host host;
    struct dns_config c = {0};
    struct dns_resolver *r = start(&loop, &c, &host, &a, "v6box", "fd7a:115c:a1e0::2");
    struct lk l = {0};
    assert_null(dns_resolver_lookup(r, "v6box", DNS_FAMILY_V4, on_lookup, &l));
    assert_int_equal(l.called, 1);
    assert_int_equal(l.err, BASE_ENOANSWER);
    assert_int_equal(l.n, 0);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(r, "v6box", DNS_FAMILY_ANY, on_lookup, &l);
    assert_int_equal(l.err, 0);
    assert_int_equal(l.n, 1);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(r, "nobox", DNS_FAMILY_ANY, on_lookup, &l);
    assert_int_equal(l.err, BASE_ENXDOMAIN);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(r, "fd00::1", DNS_FAMILY_V4, on_lookup, &l);
    assert_int_equal(l.err, BASE_ENOANSWER);
    finish(&loop, r);
}

static ssize_t s_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx, (void)data;
    return (ssize_t)len;
}
static void s_pause(void *ctx, bool paused)
{
    (void)ctx, (void)paused;
}
static void s_done(void *ctx, bool graceful)
{
    (void)ctx, (void)graceful;
}
static const struct dns_stream_ops s_ops = {s_write, s_pause, NULL, s_done};

/* A MagicDNS query over UDP to the listener on port: the local answer comes back. */
static void udp_roundtrip(uv_loop_t *loop, uint16_t port)
{
    uint8_t q[512], rep[512];
    size_t len = make_query(q, 0x4242, "db.mesh.internal");
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(sendto(fd, q, len, 0, (struct sockaddr *)&sin, sizeof(sin)), (ssize_t)len);
    ssize_t n = -1;
    for (int i = 0; i < 200 && n < 0; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        n = recv(fd, rep, sizeof(rep), 0);
        if (n < 0)
            usleep(5000);
    }
    close(fd);
    struct dns_msg_info info;
    assert_true(n > 0);
    assert_int_equal(dns_msg_parse(rep, (size_t)n, &info), 0);
    assert_int_equal(info.hdr.id, 0x4242);
    assert_int_equal(info.hdr.ancount, 1);
}

/* A resolver on a fresh loop (db at 100.64.0.2) and its listener on an ephemeral port of
 * 127.0.0.1 (lc keeps its config, for another try). */
static struct dns_listener *listen_db(uv_loop_t *loop, struct dns_resolver **r,
                                      struct dns_listener_config *lc)
{
    static struct base_addr a;
    static struct dns_host host;
    struct dns_config c = {0};
    *r = start(loop, &c, &host, &a, "db", "100.64.0.2");
    *lc = (struct dns_listener_config){.resolver = *r, .addr.addr = addr("127.0.0.1")};
    struct dns_listener *l;
    assert_int_equal(dns_listener_new(loop, lc, &l), 0);
    return l;
}

/* A listener on an ephemeral port with its TCP twin (answering a datagram), and a stream
 * session: each close callback once, after its handles. */
static void test_listener_and_stream_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct dns_resolver *r;
    struct dns_listener_config lc;
    struct dns_listener *l = listen_db(&loop, &r, &lc);
    assert_int_not_equal(dns_listener_port(l), 0);
    udp_roundtrip(&loop, dns_listener_port(l));
    struct dns_stream_config sc = {.ops = &s_ops};
    struct dns_stream *s;
    assert_int_equal(dns_stream_new(r, &sc, &s), 0);

    /* The same port again: the bind error comes back, nothing leaks. */
    struct dns_listener *dup = NULL;
    lc.addr.port = dns_listener_port(l);
    assert_int_equal(dns_listener_new(&loop, &lc, &dup), -EADDRINUSE);
    assert_null(dup);

    int closed[3] = {0};
    dns_stream_close(s, count, &closed[0]);
    dns_listener_close(l, count, &closed[1]);
    dns_resolver_close(r, count, &closed[2]);
    assert_int_equal(closed[0] + closed[1] + closed[2], 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed[0], 1);
    assert_int_equal(closed[1], 1);
    assert_int_equal(closed[2], 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The listener's accepted connection: the TCP handle with a peer. */
static void find_accepted(uv_handle_t *h, void *arg)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (h->type == UV_TCP && uv_tcp_getpeername((uv_tcp_t *)h, (struct sockaddr *)&ss, &len) == 0)
        *(uv_stream_t **)arg = (uv_stream_t *)h;
}

/* A client of the listener: N pipelined queries, sent as its socket takes them. */
enum { N_QUERIES = 20000 };
struct client {
    int fd;
    uint8_t qs[N_QUERIES * 40];
    size_t len, off;
};

static void client_connect(struct client *k, uint16_t port)
{
    k->len = k->off = 0;
    for (int i = 0; i < N_QUERIES; i++) {
        size_t n = make_query(k->qs + k->len + 2, (uint16_t)i, "db.mesh.internal");
        k->qs[k->len] = (uint8_t)(n >> 8);
        k->qs[k->len + 1] = (uint8_t)n;
        k->len += 2 + n;
    }
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096; /* a small window: the listener's replies soon wait */
    assert_int_equal(setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(k->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    fcntl(k->fd, F_SETFL, O_NONBLOCK);
}

/* Sends what the socket takes; returns whether it took anything. */
static bool send_some(struct client *k)
{
    ssize_t n = k->off < k->len ? send(k->fd, k->qs + k->off, k->len - k->off, 0) : -1;
    if (n <= 0)
        return false;
    k->off += (size_t)n;
    return true;
}

/* Waits a little for the kernel (loopback's work may be deferred to softirq threads). */
static void nap(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    poll(&p, 1, 2);
}

/* Counts the length-prefixed replies in what fd has (buf keeps a partial one). */
static size_t read_replies(int fd, uint8_t *buf, size_t *have, size_t cap)
{
    ssize_t n = recv(fd, buf + *have, cap - *have, 0);
    if (n > 0)
        *have += (size_t)n;
    size_t count = 0, at = 0;
    while (*have - at >= 2 && *have - at >= 2u + (size_t)(buf[at] << 8 | buf[at + 1])) {
        at += 2u + (size_t)(buf[at] << 8 | buf[at + 1]);
        count++;
    }
    memmove(buf, buf + at, *have - at);
    *have -= at;
    return count;
}

/* The client sends until the listener waits for it (neither moved for 100 naps); returns the
 * bytes in libuv's queue. */
static size_t fill(uv_loop_t *loop, struct client *k, uv_stream_t *conn)
{
    size_t bytes = 0;
    for (int idle = 0; idle < 100;) {
        bool sent = send_some(k);
        uv_run(loop, UV_RUN_NOWAIT);
        bool moved = sent || uv_stream_get_write_queue_size(conn) != bytes;
        bytes = uv_stream_get_write_queue_size(conn);
        idle = moved ? 0 : idle + 1;
        if (!moved)
            nap(k->fd, POLLOUT);
    }
    return bytes;
}

/* The client reads (and sends the rest) until every query is answered, or 30 s pass. */
static void drain(uv_loop_t *loop, struct client *k)
{
    static uint8_t buf[1 << 16];
    size_t have = 0, replies = 0;
    uint64_t end = uv_hrtime() + 30 * (uint64_t)1000000000;
    while (replies < N_QUERIES && uv_hrtime() < end) {
        bool sent = send_some(k);
        uv_run(loop, UV_RUN_NOWAIT);
        size_t got = read_replies(k->fd, buf, &have, sizeof(buf));
        replies += got;
        if (!sent && !got)
            nap(k->fd, POLLIN);
    }
    assert_int_equal(k->off, k->len);
    assert_int_equal(replies, N_QUERIES);
}

/* A TCP client pipelines tiny MagicDNS queries and does not read: the replies libuv holds for
 * it, counted at their cost (each reply's bytes, request and malloc's slack), stay within
 * DNS_LISTENER_QUEUE_MAX (about 245 replies of 52 bytes, each 268 bytes of heap); counted as
 * bytes, 1,200 replies held six times the bound. Then the client reads: every query is
 * answered. */
static void test_tcp_queue_at_cost(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct dns_resolver *r;
    struct dns_listener_config lc;
    struct dns_listener *l = listen_db(&loop, &r, &lc);
    static struct client k;
    client_connect(&k, dns_listener_port(l));
    uv_stream_t *conn = NULL;
    for (int i = 0; i < 1000 && !conn; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_walk(&loop, find_accepted, &conn);
    }
    assert_non_null(conn);
    int sndbuf = 4096; /* a small kernel buffer: the replies soon wait in libuv's queue */
    assert_int_equal(uv_send_buffer_size((uv_handle_t *)conn, &sndbuf), 0);

    size_t bytes = fill(&loop, &k, conn);
    size_t writes = loop.active_reqs.count; /* the replies' requests, nothing else is pending */
    size_t cost = bytes + writes * DNS_LISTENER_WRITE_OVERHEAD;
    print_message("%zu replies queued (%zu bytes): cost %zu, bound %d\n", writes, bytes, cost,
                  DNS_LISTENER_QUEUE_MAX);
    assert_true(writes > 0 && bytes > 0);
    /* Each write is let in while the cost is under the bound, and one may carry all the
     * session holds (a flush once the client took some). */
    assert_true(writes <= DNS_LISTENER_QUEUE_MAX / DNS_LISTENER_WRITE_OVERHEAD + 1);
    assert_true(cost <
                DNS_LISTENER_QUEUE_MAX + DNS_STREAM_OUT_MAX + 2 * DNS_LISTENER_WRITE_OVERHEAD);
    drain(&loop, &k);
    close(k.fd);
    int closed = 0;
    dns_listener_close(l, count, &closed);
    finish(&loop, r);
    assert_int_equal(closed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolver_close_in_flight),
        cmocka_unit_test(test_config_rejected),
        cmocka_unit_test(test_lookup_errors),
        cmocka_unit_test(test_listener_and_stream_close),
        cmocka_unit_test(test_tcp_queue_at_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
