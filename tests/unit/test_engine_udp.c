/* The engine's UDP transport on real loopback sockets: GSO runs leave as one message and
 * arrive as their datagrams, runs break where they must, a kernel that refuses GSO (forced
 * with SO_NO_CHECK, which the kernel will not segment without) gets the run resent plainly
 * and the socket stops trying; GRO super-datagrams are split back into their datagrams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udp.h"

#define MAX_SEEN 256

struct fixture {
    uv_loop_t loop;
    struct wg_udp u;
    size_t seen_len[MAX_SEEN];
    uint8_t seen_first[MAX_SEEN];
    unsigned seen;
};

static void on_datagram(void *arg, uint8_t *data, size_t len, const struct sockaddr *src)
{
    struct fixture *f = arg;
    (void)src;
    if (f->seen < MAX_SEEN) {
        f->seen_len[f->seen] = len;
        f->seen_first[f->seen] = len ? data[0] : 0;
        /* Every byte of a datagram carries its index: a split in the wrong place shows. */
        for (size_t i = 0; i < len; i++)
            assert_int_equal(data[i], data[0]);
    }
    f->seen++;
}

static void open_fixture(struct fixture *f, bool no_offload)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct wg_udp_config cfg = {.no_ipv6 = true, .no_offload = no_offload};
    cfg.bind4.family = AF_INET;
    cfg.bind4.ip[0] = 127;
    cfg.bind4.ip[3] = 1;
    f->u.on_datagram = on_datagram;
    f->u.arg = f;
    assert_int_equal(wg_udp_open(&f->u, &f->loop, &cfg), 0);
}

static void close_fixture(struct fixture *f)
{
    assert_true(wg_udp_close(&f->u, NULL));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* A plain receiver on loopback: its fd, and its address in sa. */
static int plain_socket(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
    socklen_t len = sizeof(*sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

/* Queues one datagram of len bytes, every byte = tag. */
static void queue(struct fixture *f, const struct sockaddr_in *dst, size_t len, uint8_t tag)
{
    uint8_t *out = wg_udp_reserve(&f->u, (const struct sockaddr *)dst, len);
    assert_non_null(out);
    memset(out, tag, len);
    wg_udp_commit(&f->u, (const struct sockaddr *)dst, len);
}

/* The next datagrams on fd are exactly these (length, tag), in order. */
static void expect(int fd, const size_t *lens, unsigned n, uint8_t first_tag)
{
    static uint8_t buf[65536];
    for (unsigned i = 0; i < n; i++) {
        ssize_t got = recv(fd, buf, sizeof(buf), 0);
        assert_int_equal(got, (ssize_t)lens[i]);
        for (ssize_t j = 0; j < got; j++)
            assert_int_equal(buf[j], (uint8_t)(first_tag + i));
    }
}

static void test_gso_run_arrives_as_datagrams(void **state)
{
    (void)state;
    struct fixture f;
    struct sockaddr_in dst;
    open_fixture(&f, false);
    if (!f.u.s4.gso) {
        close_fixture(&f);
        skip(); /* a kernel without UDP_SEGMENT */
    }
    int fd = plain_socket(&dst);
    size_t lens[21];
    for (unsigned i = 0; i < 20; i++)
        lens[i] = 1452;
    lens[20] = 333; /* a shorter last one ends the run */
    for (unsigned i = 0; i < 21; i++)
        queue(&f, &dst, lens[i], (uint8_t)(10 + i));
    assert_int_equal(f.u.s4.tx.count, 1); /* one run */
    wg_udp_flush(&f.u);
    assert_int_equal(f.u.stats.tx_msgs, 1);
    assert_int_equal(f.u.stats.tx_datagrams, 21);
    assert_int_equal(f.u.stats.tx_errors, 0);
    expect(fd, lens, 21, 10);
    close(fd);
    close_fixture(&f);
}

static void test_runs_break_where_they_must(void **state)
{
    (void)state;
    struct fixture f;
    struct sockaddr_in a, b;
    open_fixture(&f, false);
    if (!f.u.s4.gso) {
        close_fixture(&f);
        skip();
    }
    int fa = plain_socket(&a), fb = plain_socket(&b);
    size_t la[8], lb[3 + WG_UDP_GSO_SEGS + 2];
    unsigned na = 0, nb = 0;
#define QA(len) (la[na] = (len), queue(&f, &a, (len), (uint8_t)(1 + na++)))
#define QB(len) (lb[nb] = (len), queue(&f, &b, (len), (uint8_t)(1 + nb++)))
    /* [a a] [b] [a a]: another destination, then a bigger size, start a new run. */
    QA(1000);
    QA(1000);
    QB(1000);
    QA(1200);
    QA(1200);
    assert_int_equal(f.u.s4.tx.count, 3);
    /* [b b 100]: a shorter one joins and ends the run; [100 x WG_UDP_GSO_SEGS] is full;
     * [100]. */
    QB(900);
    QB(900);
    for (unsigned i = 0; i < WG_UDP_GSO_SEGS + 2; i++)
        QB(100);
    assert_int_equal(f.u.s4.tx.count, 6);
    wg_udp_flush(&f.u);
    assert_int_equal(f.u.stats.tx_msgs, 6);
    assert_int_equal(f.u.stats.tx_datagrams, na + nb);
    expect(fa, la, na, 1);
    expect(fb, lb, nb, 1);
#undef QA
#undef QB
    close(fa);
    close(fb);
    close_fixture(&f);
}

static void test_gso_refused_falls_back(void **state)
{
    (void)state;
    struct fixture f;
    struct sockaddr_in dst;
    open_fixture(&f, false);
    if (!f.u.s4.gso) {
        close_fixture(&f);
        skip();
    }
    int fd = plain_socket(&dst);
    /* Without checksums the kernel refuses to segment (EINVAL), as a device or route that
     * cannot would. */
    int one = 1;
    assert_int_equal(setsockopt(f.u.s4.fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
    size_t lens[8] = {1300, 1300, 1300, 1300, 1300, 1300, 1300, 700};
    for (unsigned i = 0; i < 8; i++)
        queue(&f, &dst, lens[i], (uint8_t)(40 + i));
    wg_udp_flush(&f.u);
    assert_false(f.u.s4.gso);
    assert_int_equal(f.u.stats.gso_fallbacks, 1);
    assert_int_equal(f.u.stats.tx_errors, 0);
    assert_int_equal(f.u.stats.tx_datagrams, 8);
    expect(fd, lens, 8, 40);
    /* From now on the socket sends plainly: no run forms. */
    for (unsigned i = 0; i < 8; i++)
        queue(&f, &dst, lens[i], (uint8_t)(60 + i));
    assert_int_equal(f.u.s4.tx.count, 8);
    wg_udp_flush(&f.u);
    assert_int_equal(f.u.stats.gso_fallbacks, 1);
    assert_int_equal(f.u.stats.tx_errors, 0);
    expect(fd, lens, 8, 60);
    close(fd);
    close_fixture(&f);
}

static void run_until(struct fixture *f, unsigned n)
{
    for (int i = 0; i < 500 && f->seen < n; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (f->seen < n)
            usleep(2000);
    }
}

static void test_gro_super_datagram_is_split(void **state)
{
    (void)state;
    struct fixture f;
    open_fixture(&f, false);
    if (!f.u.s4.gro) {
        close_fixture(&f);
        skip(); /* a kernel without UDP_GRO */
    }
    struct sockaddr_in me, to = {.sin_family = AF_INET,
                                 .sin_port = htons(f.u.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = plain_socket(&me);
    /* One GSO send of 12 x 1000 + 1 x 250 bytes: with GRO on the receiving socket the kernel
     * keeps it whole on loopback. */
    static uint8_t buf[12 * 1000 + 250];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(100 + i / 1000);
    int seg = 1000;
    assert_int_equal(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)), 0);
    assert_int_equal(sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)),
                     (ssize_t)sizeof(buf));
    run_until(&f, 13);
    assert_int_equal(f.seen, 13);
    assert_int_equal(f.u.stats.rx_datagrams, 13);
    assert_true(f.u.stats.rx_msgs < 13); /* it came up coalesced */
    for (unsigned i = 0; i < 13; i++) {
        assert_int_equal(f.seen_len[i], i < 12 ? 1000 : 250);
        assert_int_equal(f.seen_first[i], 100 + i);
    }
    close(fd);
    close_fixture(&f);
}

static void test_no_offload_is_plain(void **state)
{
    (void)state;
    struct fixture f;
    struct sockaddr_in dst;
    open_fixture(&f, true);
    assert_false(f.u.s4.gso);
    assert_false(f.u.s4.gro);
    int fd = plain_socket(&dst);
    size_t lens[3] = {500, 500, 500};
    for (unsigned i = 0; i < 3; i++)
        queue(&f, &dst, lens[i], (uint8_t)(1 + i));
    assert_int_equal(f.u.s4.tx.count, 3);
    wg_udp_flush(&f.u);
    expect(fd, lens, 3, 1);
    /* And datagrams still come in one by one. */
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(f.u.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint8_t d[64];
    memset(d, 7, sizeof(d));
    assert_int_equal(sendto(fd, d, sizeof(d), 0, (struct sockaddr *)&to, sizeof(to)), 64);
    assert_int_equal(sendto(fd, d, 0, 0, (struct sockaddr *)&to, sizeof(to)), 0);
    run_until(&f, 2);
    assert_int_equal(f.seen, 2);
    assert_int_equal(f.seen_len[0], 64);
    assert_int_equal(f.seen_len[1], 0); /* an empty datagram is delivered too */
    close(fd);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gso_run_arrives_as_datagrams),
        cmocka_unit_test(test_runs_break_where_they_must),
        cmocka_unit_test(test_gso_refused_falls_back),
        cmocka_unit_test(test_gro_super_datagram_is_split),
        cmocka_unit_test(test_no_offload_is_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
