/* The SOCKS5 state machine, fed whole and byte by byte, against RFC 1928/1929 bytes. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "socks5.h"

struct run {
    uint8_t out[1024]; /* every reply concatenated */
    size_t out_len;
    enum proxy_socks5_event last;
    struct proxy_socks5_result req;
    size_t used; /* input consumed up to and including the last event */
};

/* Feed input in pieces of `step` bytes until REQUEST or FAIL or the end. */
static void feed(struct proxy_socks5_parser *p, const uint8_t *in, size_t len, size_t step,
                 struct run *r)
{
    memset(r, 0, sizeof(*r));
    r->last = PROXY_SOCKS5_MORE;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t used;
        struct proxy_socks5_result res;
        enum proxy_socks5_event ev = proxy_socks5_input(p, in + off, n, &used, &res);
        assert_true(used <= n);
        memcpy(r->out + r->out_len, res.reply, res.reply_len);
        r->out_len += res.reply_len;
        off += used;
        r->last = ev;
        if (ev == PROXY_SOCKS5_REQUEST || ev == PROXY_SOCKS5_FAIL) {
            r->req = res;
            break;
        }
        if (ev == PROXY_SOCKS5_MORE)
            assert_int_equal(used, n);
    }
    r->used = off;
}

static const size_t steps[] = {1, 2, 3, 7, 1000};

static void test_connect_ipv4(void **state)
{
    (void)state;
    static const uint8_t in[] = {5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 7, 0x1f, 0x90, 'x', 'y'};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct proxy_socks5_parser p;
        struct run r;
        proxy_socks5_init(&p, NULL);
        feed(&p, in, sizeof(in), steps[i], &r);
        assert_int_equal(r.last, PROXY_SOCKS5_REQUEST);
        assert_int_equal(r.out_len, 2);
        assert_memory_equal(r.out, "\x05\x00", 2);
        assert_int_equal(r.req.cmd, PROXY_SOCKS5_CMD_CONNECT);
        assert_int_equal(r.req.target.proto, PROXY_TCP);
        assert_int_equal(r.req.target.ep.port, 8080);
        assert_int_equal(r.req.target.name[0], 0);
        assert_int_equal(r.req.target.ep.addr.family, AF_INET);
        assert_memory_equal(r.req.target.ep.addr.ip, "\xc0\x00\x02\x07", 4);
        /* The payload after the request is not consumed: it belongs to the tunnel. */
        assert_int_equal(r.used, sizeof(in) - 2);
    }
}

static void test_connect_ipv6_and_name(void **state)
{
    (void)state;
    uint8_t in6[] = {5, 1, 0, 5, 1, 0, 4, 0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0,
                     0, 0, 0, 0, 0, 0, 0, 0,    0,    1,    0,    80};
    struct proxy_socks5_parser p;
    struct run r;
    proxy_socks5_init(&p, NULL);
    feed(&p, in6, sizeof(in6), 1, &r);
    assert_int_equal(r.last, PROXY_SOCKS5_REQUEST);
    assert_int_equal(r.req.target.ep.addr.family, AF_INET6);
    assert_memory_equal(r.req.target.ep.addr.ip, in6 + 7, 16);
    assert_int_equal(r.req.target.ep.port, 80);

    static const uint8_t inn[] = {5,   2,   1,   0,   5,   1,   0,   3,   9,    'l',
                                  'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x01, 0xbb};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        proxy_socks5_init(&p, NULL);
        feed(&p, inn, sizeof(inn), steps[i], &r);
        assert_int_equal(r.last, PROXY_SOCKS5_REQUEST);
        assert_string_equal(r.req.target.name, "localhost");
        assert_int_equal(r.req.target.ep.port, 443);
        assert_int_equal(r.used, sizeof(inn));
    }
}

static void test_udp_associate(void **state)
{
    (void)state;
    static const uint8_t in[] = {5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
    struct proxy_socks5_parser p;
    struct run r;
    proxy_socks5_init(&p, NULL);
    feed(&p, in, sizeof(in), 1000, &r);
    assert_int_equal(r.last, PROXY_SOCKS5_REQUEST);
    assert_int_equal(r.req.cmd, PROXY_SOCKS5_CMD_UDP);
    assert_int_equal(r.req.target.proto, PROXY_UDP);
}

static void expect_fail(const uint8_t *in, size_t len, const struct proxy_auth *auth,
                        const uint8_t *want, size_t want_len)
{
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct proxy_socks5_parser p;
        struct run r;
        proxy_socks5_init(&p, auth);
        feed(&p, in, len, steps[i], &r);
        assert_int_equal(r.last, PROXY_SOCKS5_FAIL);
        assert_int_equal(r.out_len, want_len);
        if (want_len)
            assert_memory_equal(r.out, want, want_len);
        /* Nothing more comes out of a failed parser. */
        size_t used;
        struct proxy_socks5_result res;
        assert_int_equal(proxy_socks5_input(&p, in, len, &used, &res), PROXY_SOCKS5_MORE);
        assert_int_equal(res.reply_len, 0);
    }
}

static void test_bind_and_bad_requests(void **state)
{
    (void)state;
    static const uint8_t bind[] = {5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80};
    static const uint8_t rep07[] = {5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0};
    expect_fail(bind, sizeof(bind), NULL, rep07, sizeof(rep07));
    static const uint8_t cmd9[] = {5, 1, 0, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80};
    expect_fail(cmd9, sizeof(cmd9), NULL, rep07, sizeof(rep07));
    static const uint8_t atyp[] = {5, 1, 0, 5, 1, 0, 2, 1, 2, 3, 4, 5, 6, 7};
    static const uint8_t rep08[] = {5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0};
    expect_fail(atyp, sizeof(atyp), NULL, rep08, sizeof(rep08));
    static const uint8_t empty_name[] = {5, 1, 0, 5, 1, 0, 3, 0, 0, 80};
    static const uint8_t rep04[] = {5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0};
    expect_fail(empty_name, sizeof(empty_name), NULL, rep04, sizeof(rep04));
    static const uint8_t nul_name[] = {5, 1, 0, 5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80};
    expect_fail(nul_name, sizeof(nul_name), NULL, rep04, sizeof(rep04));
    static const uint8_t socks4[] = {4, 1, 0, 80, 127, 0, 0, 1, 0};
    expect_fail(socks4, sizeof(socks4), NULL, NULL, 0);
    static const uint8_t no_methods[] = {5, 0};
    expect_fail(no_methods, sizeof(no_methods), NULL, (const uint8_t *)"\x05\xff", 2);
    static const uint8_t gssapi_only[] = {5, 1, 1};
    expect_fail(gssapi_only, sizeof(gssapi_only), NULL, (const uint8_t *)"\x05\xff", 2);
    static const uint8_t bad_req_ver[] = {5, 1, 0, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80};
    static const uint8_t rep01[] = {5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0};
    expect_fail(bad_req_ver, sizeof(bad_req_ver), NULL, rep01, sizeof(rep01));
}

static void test_auth(void **state)
{
    (void)state;
    struct proxy_auth auth;
    proxy_auth_init(&auth, "alice", "s3cret");
    /* With credentials configured, no-auth is refused. */
    expect_fail((const uint8_t *)"\x05\x01\x00", 3, &auth, (const uint8_t *)"\x05\xff", 2);

    static const uint8_t ok[] = {5,   2,   0,   2,   1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', '3',
                                 'c', 'r', 'e', 't', 5, 1, 0,   1,   10,  0,   0,   1, 0,   22};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct proxy_socks5_parser p;
        struct run r;
        proxy_socks5_init(&p, &auth);
        feed(&p, ok, sizeof(ok), steps[i], &r);
        assert_int_equal(r.last, PROXY_SOCKS5_REQUEST);
        assert_int_equal(r.out_len, 4);
        assert_memory_equal(r.out, "\x05\x02\x01\x00", 4);
        assert_int_equal(r.req.target.ep.port, 22);
    }
    static const uint8_t bad_pass[] = {5,   1, 2,   1,   5,   'a', 'l', 'i', 'c',
                                       'e', 6, 's', '3', 'c', 'r', 'e', 'T'};
    expect_fail(bad_pass, sizeof(bad_pass), &auth, (const uint8_t *)"\x05\x02\x01\x01", 4);
    static const uint8_t prefix[] = {5,   1,   2, 1,   5,   'a', 'l', 'i',
                                     'c', 'e', 5, 's', '3', 'c', 'r', 'e'};
    expect_fail(prefix, sizeof(prefix), &auth, (const uint8_t *)"\x05\x02\x01\x01", 4);
    static const uint8_t bad_user[] = {5, 1,   2,   1,   3,   'b', 'o', 'b',
                                       6, 's', '3', 'c', 'r', 'e', 't'};
    expect_fail(bad_user, sizeof(bad_user), &auth, (const uint8_t *)"\x05\x02\x01\x01", 4);
    static const uint8_t bad_ver[] = {5,   1, 2,   2,   5,   'a', 'l', 'i', 'c',
                                      'e', 6, 's', '3', 'c', 'r', 'e', 't'};
    expect_fail(bad_ver, sizeof(bad_ver), &auth, (const uint8_t *)"\x05\x02\x01\x01", 4);
    /* Swapped user and password must not pass. */
    static const uint8_t swapped[] = {5,   1,   2, 1,   6,   's', '3', 'c', 'r',
                                      'e', 't', 5, 'a', 'l', 'i', 'c', 'e'};
    expect_fail(swapped, sizeof(swapped), &auth, (const uint8_t *)"\x05\x02\x01\x01", 4);
    proxy_auth_wipe(&auth);
}

static void test_reply_and_udp_header(void **state)
{
    (void)state;
    uint8_t out[PROXY_SOCKS5_REPLY_MAX];
    struct base_endpoint sin = {.addr = {.family = AF_INET, .ip = {127, 0, 0, 1}}, .port = 1080};
    assert_int_equal(proxy_socks5_reply(out, 0, &sin), 10);
    assert_memory_equal(out, "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38", 10);
    struct base_endpoint s6 = {.addr = {.family = AF_INET6, .ip = {[15] = 1}}, .port = 53};
    assert_int_equal(proxy_socks5_reply(out, 5, &s6), 22);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[3], 4);
    assert_int_equal(out[19], 1);
    assert_int_equal(out[21], 53);

    uint8_t hdr[PROXY_SOCKS5_UDP_HDR_MAX];
    assert_int_equal(proxy_socks5_udp_header(hdr, &sin), 10);
    assert_memory_equal(hdr, "\x00\x00\x00\x01\x7f\x00\x00\x01\x04\x38", 10);

    struct proxy_target t;
    size_t hl;
    static const uint8_t dg[] = {0, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 53, 'q'};
    assert_int_equal(proxy_socks5_udp_parse(dg, sizeof(dg), &t, &hl), 0);
    assert_int_equal(hl, sizeof(dg) - 1);
    assert_string_equal(t.name, "host");
    assert_int_equal(t.ep.port, 53);
    assert_int_equal(t.proto, PROXY_UDP);
    static const uint8_t frag[] = {0, 0, 1, 1, 127, 0, 0, 1, 0, 53, 'q'};
    assert_int_equal(proxy_socks5_udp_parse(frag, sizeof(frag), &t, &hl), -1);
    static const uint8_t short_dg[] = {0, 0, 0, 1, 127, 0};
    assert_int_equal(proxy_socks5_udp_parse(short_dg, sizeof(short_dg), &t, &hl), -1);
    static const uint8_t bad_atyp[] = {0, 0, 0, 9, 127, 0, 0, 1, 0, 53};
    assert_int_equal(proxy_socks5_udp_parse(bad_atyp, sizeof(bad_atyp), &t, &hl), -1);
}

static void test_error_mapping(void **state)
{
    (void)state;
    assert_int_equal(proxy_err_socks5(BASE_EPOLICY), 0x02);
    assert_int_equal(proxy_err_socks5(-ENETUNREACH), 0x03);
    assert_int_equal(proxy_err_socks5(-EHOSTUNREACH), 0x04);
    assert_int_equal(proxy_err_socks5(BASE_ENXDOMAIN), 0x04);
    assert_int_equal(proxy_err_socks5(-ECONNREFUSED), 0x05);
    assert_int_equal(proxy_err_socks5(-ETIMEDOUT), 0x06);
    assert_int_equal(proxy_err_socks5(-EIO), 0x01);
    assert_int_equal(proxy_err_http(BASE_EPOLICY), 403);
    assert_int_equal(proxy_err_http(-ETIMEDOUT), 504);
    assert_int_equal(proxy_err_http(-ECONNREFUSED), 502);
    assert_int_equal(proxy_err_http(BASE_ENXDOMAIN), 502);
    assert_int_equal(proxy_err_from_uv(UV_ECONNREFUSED), -ECONNREFUSED);
    assert_int_equal(proxy_err_from_uv(UV_ENETUNREACH), -ENETUNREACH);
    assert_int_equal(proxy_err_from_uv(UV_EHOSTUNREACH), -EHOSTUNREACH);
    assert_int_equal(proxy_err_from_uv(UV_EAI_NONAME), BASE_ENXDOMAIN);
    assert_int_equal(proxy_err_from_uv(UV_ETIMEDOUT), -ETIMEDOUT);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_ipv4),  cmocka_unit_test(test_connect_ipv6_and_name),
        cmocka_unit_test(test_udp_associate), cmocka_unit_test(test_bind_and_bad_requests),
        cmocka_unit_test(test_auth),          cmocka_unit_test(test_reply_and_udp_header),
        cmocka_unit_test(test_error_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
