/* netstack/ns_chksum.c against RFC 1071's definition computed byte by byte: every start
 * alignment, every length up to 300 and a few packet sizes, random data and the all-ones data
 * whose sum wraps most. Flow: the reference, the comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "lwip/inet_chksum.h" /* and, through lwipopts.h, ns_chksum */

/* The one's complement sum of big-endian 16-bit words, a last odd byte padded with zero. */
static uint16_t reference(const uint8_t *p, int len)
{
    uint32_t sum = 0;
    for (int i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void check_all(const uint8_t *buf, int max_len)
{
    for (int off = 0; off < 8; off++)
        for (int len = 0; len <= max_len; len++) {
            /* lwIP's contract: the sum as it lies in memory, i.e. in network order. */
            uint16_t want = htons(reference(buf + off, len));
            uint16_t got = ns_chksum(buf + off, len);
            if (got != want)
                fail_msg("offset %d length %d: 0x%04x, want 0x%04x", off, len, got, want);
        }
}

static void test_random(void **state)
{
    (void)state;
    static uint8_t buf[1500 + 8];
    for (int round = 0; round < 20; round++) {
        randombytes_buf(buf, sizeof(buf));
        check_all(buf, 300);
        for (int off = 0; off < 8; off++)
            for (int len = 1400; len <= 1500; len++)
                assert_int_equal(ns_chksum(buf + off, len), htons(reference(buf + off, len)));
    }
}

static void test_wraps(void **state)
{
    (void)state;
    static uint8_t buf[65535 + 8];
    memset(buf, 0xff, sizeof(buf));
    check_all(buf, 100);
    assert_int_equal(ns_chksum(buf + 1, 65535), htons(reference(buf + 1, 65535)));
    memset(buf, 0, sizeof(buf));
    check_all(buf, 100);
}

/* lwIP's own users of it: inet_chksum() of a header that carries its checksum is 0. */
static void test_through_lwip(void **state)
{
    (void)state;
    uint8_t ip[20] = {0x45, 0, 0,   40, 0x12, 0x34, 0x40, 0,  64, 6,
                      0,    0, 100, 64, 0,    1,    100,  64, 0,  2};
    uint16_t c = inet_chksum(ip, sizeof(ip));
    memcpy(ip + 10, &c, 2);
    assert_int_equal(inet_chksum(ip, sizeof(ip)), 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_wraps),
        cmocka_unit_test(test_through_lwip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
