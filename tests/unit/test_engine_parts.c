/* The engine's small parts on their own: local index table, per-source rate limit, load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sodium.h>

#include "index.h"
#include "ratelimit.h"

#define SEC 1000000000ULL

static void test_index_add_lookup_remove(void **state)
{
    (void)state;
    struct wg_index_table t;
    static struct wg_index_entry e[1000];
    assert_int_equal(wg_index_init(&t), 0);
    for (int i = 0; i < 1000; i++) {
        e[i].kind = WG_INDEX_KEYPAIR;
        wg_index_add(&t, &e[i]);
    }
    assert_int_equal(t.count, 1000);
    assert_true(t.nbuckets >= 512); /* grew */
    for (int i = 0; i < 1000; i++)
        assert_ptr_equal(wg_index_lookup(&t, e[i].index), &e[i]);
    /* Re-adding gives a new index and forgets the old one. */
    uint32_t old = e[5].index;
    wg_index_add(&t, &e[5]);
    assert_int_equal(t.count, 1000);
    assert_ptr_equal(wg_index_lookup(&t, e[5].index), &e[5]);
    if (old != e[5].index)
        assert_null(wg_index_lookup(&t, old));
    /* A keypair takes over its handshake's index. */
    struct wg_index_entry kp = {.kind = WG_INDEX_KEYPAIR};
    uint32_t hs_index = e[7].index;
    wg_index_remove(&t, &e[7]);
    wg_index_add_with_index(&t, &kp, hs_index);
    assert_ptr_equal(wg_index_lookup(&t, hs_index), &kp);
    wg_index_remove(&t, &kp);
    wg_index_remove(&t, &kp); /* twice is harmless */
    for (int i = 0; i < 1000; i++)
        wg_index_remove(&t, &e[i]);
    assert_int_equal(t.count, 0);
    wg_index_free(&t);
}

static void test_ratelimit_token_bucket(void **state)
{
    (void)state;
    struct wg_ratelimit rl;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000001)};
    struct sockaddr_in b = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000002)};
    uint64_t now = 1000 * SEC;
    assert_int_equal(wg_ratelimit_init(&rl), 0);
    /* A burst, then refusals... */
    for (int i = 0; i < WG_RATELIMIT_BURST; i++)
        assert_true(wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now));
    assert_false(wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now));
    /* ...that do not affect another source... */
    assert_true(wg_ratelimit_allow(&rl, (struct sockaddr *)&b, now));
    /* ...and one more token per 1/20 s. */
    assert_false(wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now + SEC / 40));
    assert_true(wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now + SEC / 20));
    assert_false(wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now + SEC / 20));
    /* Idle sources are forgotten. */
    assert_true(wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now + 10 * SEC));
    assert_int_equal(rl.count, 1);
    /* IPv6: the /64 is one source. */
    struct sockaddr_in6 c = {.sin6_family = AF_INET6}, d = {.sin6_family = AF_INET6};
    c.sin6_addr.s6_addr[0] = d.sin6_addr.s6_addr[0] = 0xfd;
    c.sin6_addr.s6_addr[15] = 1;
    d.sin6_addr.s6_addr[15] = 2;
    for (int i = 0; i < WG_RATELIMIT_BURST; i++)
        assert_true(wg_ratelimit_allow(&rl, (struct sockaddr *)(i % 2 ? &c : &d), now + 20 * SEC));
    assert_false(wg_ratelimit_allow(&rl, (struct sockaddr *)&c, now + 20 * SEC));
    struct sockaddr bad = {.sa_family = AF_UNIX};
    assert_false(wg_ratelimit_allow(&rl, &bad, now));
    wg_ratelimit_free(&rl);
}

static void test_ratelimit_table_bounded(void **state)
{
    (void)state;
    struct wg_ratelimit rl;
    uint64_t now = 1000 * SEC;
    assert_int_equal(wg_ratelimit_init(&rl), 0);
    for (uint32_t i = 0; i < WG_RATELIMIT_MAX_ENTRIES + 100; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i)};
        bool ok = wg_ratelimit_allow(&rl, (struct sockaddr *)&a, now);
        assert_true(ok == (i < WG_RATELIMIT_MAX_ENTRIES));
    }
    assert_int_equal(rl.count, WG_RATELIMIT_MAX_ENTRIES);
    wg_ratelimit_free(&rl);
}

static void test_load_detector(void **state)
{
    (void)state;
    struct wg_load l;
    uint64_t now = 1000 * SEC;
    wg_load_init(&l, 10);
    for (int i = 0; i < 10; i++)
        assert_false(wg_load_note(&l, now + (uint64_t)i));
    assert_true(wg_load_note(&l, now + 10)); /* the 11th in a second */
    /* It lasts a second after the last excess, then clears. */
    assert_true(wg_load_note(&l, now + SEC / 2));
    assert_false(wg_load_note(&l, now + 2 * SEC));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_add_lookup_remove),
        cmocka_unit_test(test_ratelimit_token_bucket),
        cmocka_unit_test(test_ratelimit_table_bounded),
        cmocka_unit_test(test_load_detector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
