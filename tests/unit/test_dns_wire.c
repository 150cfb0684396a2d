/* DNS codec: names, compression (and its abuse), EDNS0, truncation, TTLs, the cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns_cache.h"
#include "dns_wire.h"

static int wire(const char *text, uint8_t out[DNS_NAME_MAX])
{
    int n = dns_name_from_text(text, out);
    assert_true(n > 0);
    return n;
}

static void test_name_text(void **state)
{
    uint8_t w[DNS_NAME_MAX];
    char t[1100];
    (void)state;
    assert_int_equal(dns_name_from_text("db.mesh.internal", w), 18);
    assert_int_equal(dns_name_from_text("db.mesh.internal.", w), 18);
    assert_int_equal(dns_name_to_text(w, t, sizeof(t)), 0);
    assert_string_equal(t, "db.mesh.internal.");
    assert_int_equal(dns_name_from_text(".", w), 1);
    assert_int_equal(dns_name_from_text("", w), -1);
    assert_int_equal(dns_name_from_text("a..b", w), -1);

    char label[70];
    memset(label, 'x', 63);
    label[63] = 0;
    assert_true(dns_name_from_text(label, w) > 0);
    memset(label, 'x', 64);
    label[64] = 0;
    assert_int_equal(dns_name_from_text(label, w), -1);
    /* 4 labels of 63 = 4*64+1 = 257 bytes > 255 */
    char longname[300];
    size_t o = 0;
    for (int i = 0; i < 4; i++) {
        memset(longname + o, 'y', 63);
        o += 63;
        longname[o++] = '.';
    }
    longname[o] = 0;
    assert_int_equal(dns_name_from_text(longname, w), -1);
    longname[3 * 64 + 61] = 0; /* 3 * 64 + (1 + 61) + 1 = 255 */
    assert_int_equal(dns_name_from_text(longname, w), 255);
}

static void test_name_compare(void **state)
{
    uint8_t a[DNS_NAME_MAX], b[DNS_NAME_MAX], s[DNS_NAME_MAX], o[DNS_NAME_MAX];
    (void)state;
    wire("DB.Mesh.Internal", a);
    wire("db.mesh.internal", b);
    wire("mesh.internal", s);
    assert_true(dns_name_equal(a, b));
    assert_true(dns_name_under(a, s));
    assert_true(dns_name_under(s, s));
    wire("xmesh.internal", b);
    assert_false(dns_name_under(b, s));
    wire(".", b);
    assert_true(dns_name_under(a, b));
    wire("db", b);
    assert_int_equal(dns_name_concat(b, s, o), 18);
    assert_true(dns_name_equal(o, a));
}

/* A message: header, question db.mesh.internal A, answers with owner compressed. */
static size_t build_reply(uint8_t *buf, size_t cap, int nanswers, int edns)
{
    struct dns_builder b;
    struct dns_header h = {0x1234, DNS_F_QR | DNS_F_RD, 1, 0, 0, 0};
    uint8_t name[DNS_NAME_MAX], ip[4] = {100, 64, 0, 2};
    wire("db.mesh.internal", name);
    dns_b_init(&b, buf, cap);
    assert_int_equal(dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12), 0);
    assert_int_equal(dns_b_question(&b, name, DNS_TYPE_A, DNS_CLASS_IN), 0);
    for (int i = 0; i < nanswers; i++) {
        ip[3] = (uint8_t)i;
        assert_int_equal(
            dns_b_rr(&b, name, DNS_TYPE_A, DNS_CLASS_IN, 300 - (uint32_t)i, ip, 4, NULL), 0);
        h.ancount++;
    }
    if (edns) {
        assert_int_equal(dns_b_opt(&b, 4096, 0), 0);
        h.arcount = 1;
    }
    dns_header_write(buf, &h);
    return b.len;
}

static void test_build_parse_roundtrip(void **state)
{
    uint8_t buf[2048];
    struct dns_msg_info info;
    struct dns_rr rr;
    (void)state;
    size_t len = build_reply(buf, sizeof(buf), 3, 1);
    /* 12 + 22 question + 3 * (2 ptr + 10 + 4) + 11 OPT */
    assert_int_equal(len, 12 + 22 + 3 * 16 + 11);
    assert_int_equal(buf[34], 0xc0); /* owner compressed to the question name */
    assert_int_equal(buf[35], 12);
    assert_int_equal(dns_msg_parse(buf, len, &info), 0);
    assert_int_equal(info.hdr.id, 0x1234);
    assert_int_equal(info.hdr.ancount, 3);
    assert_true(info.has_edns);
    assert_int_equal(info.edns_udp, 4096);
    size_t off = info.q_end;
    assert_int_equal(dns_rr_read(buf, len, &off, &rr), 0);
    uint8_t name[DNS_NAME_MAX];
    wire("db.mesh.internal", name);
    assert_true(dns_name_equal(rr.name, name));
    assert_int_equal(rr.ttl, 300);
    assert_int_equal(buf[rr.rdata_off], 100);
    /* Every shorter prefix is malformed. */
    for (size_t l = 12; l < len; l++)
        assert_int_equal(dns_msg_parse(buf, l, &info), -1);
}

static void test_compression_attacks(void **state)
{
    uint8_t out[DNS_NAME_MAX];
    size_t off;
    (void)state;
    uint8_t self[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 12};
    off = 12;
    assert_int_equal(dns_name_read(self, sizeof(self), &off, out), -1);
    /* label then a pointer back to that label: a loop */
    uint8_t loop[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 12};
    off = 14;
    assert_int_equal(dns_name_read(loop, sizeof(loop), &off, out), -1);
    off = 12;
    assert_int_equal(dns_name_read(loop, sizeof(loop), &off, out), -1);
    /* forward pointer */
    uint8_t fwd[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 14, 1, 'a', 0};
    off = 12;
    assert_int_equal(dns_name_read(fwd, sizeof(fwd), &off, out), -1);
    /* out of range */
    uint8_t oor[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    off = 12;
    assert_int_equal(dns_name_read(oor, sizeof(oor), &off, out), -1);
    /* truncated pointer and label */
    off = 12;
    assert_int_equal(dns_name_read(oor, 13, &off, out), -1);
    uint8_t trunc[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a', 'b'};
    off = 12;
    assert_int_equal(dns_name_read(trunc, sizeof(trunc), &off, out), -1);
    /* a valid backward chain: "b.a." at 12, "c" + ptr(12) at 17 */
    uint8_t chain[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'b', 1, 'a', 0, 1, 'c', 0xc0, 12};
    off = 17;
    assert_int_equal(dns_name_read(chain, sizeof(chain), &off, out), 7);
    assert_int_equal(off, sizeof(chain));
    uint8_t want[DNS_NAME_MAX];
    wire("c.b.a", want);
    assert_true(dns_name_equal(out, want));
    /* a pointer back to a label that runs on past the pointer itself: what it reads
     * would change when the message is cut after this name (found by fuzz.dns_codec) */
    uint8_t over[31] = {[13] = 2, [14] = 'a', [15] = 0xc0, [16] = 13};
    off = 15; /* ptr(13) -> "a" + 0xc0, then a 13-byte label read from the pointer on */
    assert_int_equal(dns_name_read(over, sizeof(over), &off, out), -1);
    /* a name longer than 255 through pointers: 63-byte labels chained backwards */
    uint8_t big[12 + 65 + 4 * 66];
    memset(big, 0, sizeof(big));
    size_t p = 12, prev = 0;
    for (int i = 0; i < 5; i++) {
        big[p] = 63;
        memset(big + p + 1, 'z', 63);
        if (i == 0) {
            big[p + 64] = 0;
        } else {
            big[p + 64] = 0xc0;
            big[p + 65] = (uint8_t)prev;
        }
        prev = p;
        p += i == 0 ? 65 : 66;
    }
    off = 12 + 65;
    assert_int_equal(dns_name_read(big, p, &off, out), 64 * 2 + 1); /* two labels: fine */
    off = prev;
    assert_int_equal(dns_name_read(big, p, &off, out), -1); /* five: 321 bytes */
}

static void test_edns_parse(void **state)
{
    uint8_t buf[512];
    struct dns_msg_info info;
    (void)state;
    size_t len = build_reply(buf, sizeof(buf), 0, 1);
    dns_put16(buf + len - 8, 100); /* OPT class = UDP size 100 */
    assert_int_equal(dns_msg_parse(buf, len, &info), 0);
    assert_int_equal(info.edns_udp, 512);
    len = build_reply(buf, sizeof(buf), 0, 0);
    assert_int_equal(dns_msg_parse(buf, len, &info), 0);
    assert_false(info.has_edns);
    /* Two OPT records: malformed. */
    len = build_reply(buf, sizeof(buf), 0, 1);
    memcpy(buf + len, buf + len - 11, 11);
    len += 11;
    dns_put16(buf + 10, 2);
    assert_int_equal(dns_msg_parse(buf, len, &info), -1);
}

static void test_truncate(void **state)
{
    uint8_t buf[4096];
    struct dns_msg_info info;
    (void)state;
    size_t len = build_reply(buf, sizeof(buf), 100, 1);
    assert_int_equal(dns_msg_parse(buf, len, &info), 0);
    assert_int_equal(dns_msg_truncate(buf, len, &info, len), len);
    size_t n = dns_msg_truncate(buf, len, &info, 512);
    assert_true(n <= 512 && n > 400);
    assert_int_equal(dns_msg_parse(buf, n, &info), 0);
    assert_true(info.hdr.flags & DNS_F_TC);
    assert_true(info.has_edns);
    assert_int_equal(info.hdr.ancount, (512 - 34 - 11) / 16);
    /* not even the question fits */
    len = build_reply(buf, sizeof(buf), 100, 0);
    assert_int_equal(dns_msg_parse(buf, len, &info), 0);
    assert_int_equal(dns_msg_truncate(buf, len, &info, 20), 0);
}

static size_t build_negative(uint8_t *buf, uint32_t soa_ttl, uint32_t minimum)
{
    struct dns_builder b;
    struct dns_header h = {7, DNS_F_QR | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0};
    uint8_t name[DNS_NAME_MAX], zone[DNS_NAME_MAX], rdata[DNS_NAME_MAX * 2 + 20];
    wire("gone.example", name);
    int zl = wire("example", zone);
    memcpy(rdata, zone, (size_t)zl);      /* mname */
    memcpy(rdata + zl, zone, (size_t)zl); /* rname */
    memset(rdata + 2 * zl, 0, 16);
    dns_put32(rdata + 2 * zl + 16, minimum);
    dns_b_init(&b, buf, 512);
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    dns_b_question(&b, name, DNS_TYPE_A, DNS_CLASS_IN);
    assert_int_equal(dns_b_rr(&b, zone, DNS_TYPE_SOA, DNS_CLASS_IN, soa_ttl, rdata,
                              (uint16_t)(2 * zl + 20), NULL),
                     0);
    dns_header_write(buf, &h);
    return b.len;
}

static void test_cache_ttls(void **state)
{
    uint8_t buf[4096], out[4096];
    struct dns_msg_info info;
    struct dns_cache c;
    (void)state;
    size_t len = build_reply(buf, sizeof(buf), 3, 0);
    assert_int_equal(dns_msg_parse(buf, len, &info), 0);
    assert_int_equal(dns_msg_cache_ttl(buf, len, &info), 298);
    size_t nlen = build_negative(buf + 2048, 3600, 60);
    assert_int_equal(dns_msg_parse(buf + 2048, nlen, &info), 0);
    assert_int_equal(dns_msg_cache_ttl(buf + 2048, nlen, &info), 60);

    assert_int_equal(dns_cache_init(&c, 2), 0);
    dns_cache_put(&c, buf, len, 1000);
    dns_cache_put(&c, buf + 2048, nlen, 1000);
    struct dns_question q;
    wire("DB.mesh.internal", q.name);
    q.type = DNS_TYPE_A;
    q.cls = DNS_CLASS_IN;
    size_t n = dns_cache_get(&c, &q, 0xbeef, 11000, out, sizeof(out));
    assert_int_equal(n, len);
    assert_int_equal(dns_get16(out), 0xbeef);
    assert_int_equal(dns_msg_parse(out, n, &info), 0);
    size_t off = info.q_end;
    struct dns_rr rr;
    dns_rr_read(out, n, &off, &rr);
    assert_int_equal(rr.ttl, 290); /* aged by 10 s */
    assert_int_equal(dns_cache_get(&c, &q, 1, 1000 + 298 * 1000, out, sizeof(out)), 0);
    /* negative entry expires after the SOA minimum */
    wire("gone.example", q.name);
    assert_int_not_equal(dns_cache_get(&c, &q, 1, 60999, out, sizeof(out)), 0);
    assert_int_equal(dns_cache_get(&c, &q, 1, 61000, out, sizeof(out)), 0);
    /* bounded: a third entry evicts the least recently used */
    dns_cache_put(&c, buf, len, 2000);
    dns_cache_put(&c, buf + 2048, nlen, 2000);
    uint8_t other[4096];
    size_t olen = build_reply(other, sizeof(other), 1, 0);
    other[13] = 'x'; /* xb.mesh.internal */
    dns_cache_put(&c, other, olen, 2000);
    assert_int_equal(c.count, 2);
    wire("db.mesh.internal", q.name);
    assert_int_equal(dns_cache_get(&c, &q, 1, 2000, out, sizeof(out)), 0);
    dns_cache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_text),
        cmocka_unit_test(test_name_compare),
        cmocka_unit_test(test_build_parse_roundtrip),
        cmocka_unit_test(test_compression_attacks),
        cmocka_unit_test(test_edns_parse),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_cache_ttls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
