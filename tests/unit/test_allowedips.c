/* Cryptokey routing table: longest-prefix match, replace, remove, foreach, and a randomized
 * comparison against a brute-force linear table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "allowedips.h"

/* Distinct owner pointers; the table never dereferences them. */
static char peers[64];
#define A (&peers[0])
#define B (&peers[1])
#define C (&peers[2])
#define D (&peers[3])

static uint8_t v4buf[4], v6buf[16];

static const uint8_t *ip4(const char *s)
{
    assert_int_equal(inet_pton(AF_INET, s, v4buf), 1);
    return v4buf;
}

static const uint8_t *ip6(const char *s)
{
    assert_int_equal(inet_pton(AF_INET6, s, v6buf), 1);
    return v6buf;
}

static struct base_prefix pfx(int family, const uint8_t *addr, uint8_t bits)
{
    struct base_prefix p = {.addr.family = family, .bits = bits};
    memcpy(p.addr.ip, addr, family == AF_INET ? 4 : 16);
    return p;
}

static int ins4(struct wg_allowedips *t, const char *s, uint8_t cidr, void *o)
{
    struct base_prefix p = pfx(AF_INET, ip4(s), cidr);
    return wg_allowedips_insert(t, &p, o);
}

static int ins6(struct wg_allowedips *t, const char *s, uint8_t cidr, void *o)
{
    struct base_prefix p = pfx(AF_INET6, ip6(s), cidr);
    return wg_allowedips_insert(t, &p, o);
}

static int rm4(struct wg_allowedips *t, const char *s, uint8_t cidr, void *o)
{
    struct base_prefix p = pfx(AF_INET, ip4(s), cidr);
    return wg_allowedips_remove(t, &p, o);
}

static int rm6(struct wg_allowedips *t, const char *s, uint8_t cidr, void *o)
{
    struct base_prefix p = pfx(AF_INET6, ip6(s), cidr);
    return wg_allowedips_remove(t, &p, o);
}

static void *look4(struct wg_allowedips *t, const char *s)
{
    return wg_allowedips_lookup(t, AF_INET, ip4(s));
}

static void *look6(struct wg_allowedips *t, const char *s)
{
    return wg_allowedips_lookup(t, AF_INET6, ip6(s));
}

static void test_v4_longest_prefix(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_null(look4(&t, "10.1.2.3"));
    assert_int_equal(ins4(&t, "10.1.2.3", 32, D), 0);
    assert_int_equal(ins4(&t, "0.0.0.0", 0, A), 0);
    assert_int_equal(ins4(&t, "10.1.2.0", 24, C), 0);
    assert_int_equal(ins4(&t, "10.0.0.0", 8, B), 0);

    assert_ptr_equal(look4(&t, "10.1.2.3"), D);
    assert_ptr_equal(look4(&t, "10.1.2.4"), C);
    assert_ptr_equal(look4(&t, "10.1.2.255"), C);
    assert_ptr_equal(look4(&t, "10.1.3.3"), B);
    assert_ptr_equal(look4(&t, "10.255.255.255"), B);
    assert_ptr_equal(look4(&t, "11.1.2.3"), A);
    assert_ptr_equal(look4(&t, "255.255.255.255"), A);
    assert_ptr_equal(look4(&t, "0.0.0.0"), A);
    /* the v6 trie is separate: a v4 default route does not match v6 */
    assert_null(look6(&t, "::"));
    wg_allowedips_free(&t);
}

static void test_v4_without_default(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_int_equal(ins4(&t, "192.168.4.0", 24, A), 0);
    assert_int_equal(ins4(&t, "192.168.5.0", 24, B), 0);
    assert_int_equal(ins4(&t, "192.168.0.0", 16, C), 0);
    assert_int_equal(ins4(&t, "100.64.0.1", 32, D), 0);
    assert_ptr_equal(look4(&t, "192.168.4.9"), A);
    assert_ptr_equal(look4(&t, "192.168.5.9"), B);
    assert_ptr_equal(look4(&t, "192.168.6.9"), C);
    assert_ptr_equal(look4(&t, "100.64.0.1"), D);
    assert_null(look4(&t, "100.64.0.2"));
    assert_null(look4(&t, "192.169.4.9"));
    wg_allowedips_free(&t);
}

static void test_v6_longest_prefix(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_int_equal(ins6(&t, "fd7a:115c:a1e0::", 48, B), 0);
    assert_int_equal(ins6(&t, "fd7a:115c:a1e0:ab12::", 64, C), 0);
    assert_int_equal(ins6(&t, "::", 0, A), 0);
    assert_int_equal(ins6(&t, "fd7a:115c:a1e0:ab12:4843:cd96:6258:b240", 128, D), 0);

    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:ab12:4843:cd96:6258:b240"), D);
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:ab12:4843:cd96:6258:b241"), C);
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:ab12::1"), C);
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:ab13::1"), B);
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:ffff:ffff:ffff:ffff:ffff"), B);
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e1::"), A);
    assert_ptr_equal(look6(&t, "2001:db8::1"), A);
    assert_null(look4(&t, "10.0.0.1"));
    wg_allowedips_free(&t);
}

static void test_replace(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_int_equal(ins4(&t, "10.0.0.0", 8, A), 0);
    assert_int_equal(ins4(&t, "10.0.0.0", 8, B), 0);
    assert_ptr_equal(look4(&t, "10.9.9.9"), B);
    /* A no longer owns it: removing as A does nothing, A's foreach is empty */
    assert_int_equal(rm4(&t, "10.0.0.0", 8, A), 1);
    assert_ptr_equal(look4(&t, "10.9.9.9"), B);
    wg_allowedips_remove_owner(&t, A);
    assert_ptr_equal(look4(&t, "10.9.9.9"), B);
    /* same owner again is a no-op */
    assert_int_equal(ins4(&t, "10.0.0.0", 8, B), 0);
    assert_int_equal(ins6(&t, "fd00::", 8, A), 0);
    assert_int_equal(ins6(&t, "fd00::", 8, C), 0);
    assert_ptr_equal(look6(&t, "fd00::1"), C);
    wg_allowedips_free(&t);
}

static void test_masks_host_bits(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_int_equal(ins4(&t, "10.1.2.3", 8, A), 0);
    assert_ptr_equal(look4(&t, "10.200.0.1"), A);
    /* 10.0.0.0/8 is the same prefix: it replaces */
    assert_int_equal(ins4(&t, "10.0.0.0", 8, B), 0);
    assert_ptr_equal(look4(&t, "10.1.2.3"), B);
    /* and it can be removed under any spelling of its host bits */
    assert_int_equal(rm4(&t, "10.99.99.99", 8, B), 0);
    assert_null(look4(&t, "10.1.2.3"));

    assert_int_equal(ins6(&t, "fd7a:115c:a1e0:ab12:ffff::1", 50, C), 0);
    /* 0xab12 = 0b10...: the /50 keeps the top two bits of the fourth group */
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:8000::"), C);
    assert_ptr_equal(look6(&t, "fd7a:115c:a1e0:bfff:ffff::"), C);
    assert_null(look6(&t, "fd7a:115c:a1e0:7fff:ffff::"));
    assert_null(look6(&t, "fd7a:115c:a1e0:c000::"));
    wg_allowedips_free(&t);
}

static void test_remove(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_int_equal(ins4(&t, "0.0.0.0", 0, A), 0);
    assert_int_equal(ins4(&t, "10.0.0.0", 8, B), 0);
    assert_int_equal(ins4(&t, "10.1.0.0", 16, C), 0);
    assert_int_equal(ins4(&t, "10.1.1.1", 32, D), 0);

    /* a prefix that is not there, or not at that length */
    assert_int_equal(rm4(&t, "10.2.0.0", 16, C), 1);
    assert_int_equal(rm4(&t, "10.1.0.0", 17, C), 1);
    /* an interior node with a child: the child keeps working */
    assert_int_equal(rm4(&t, "10.1.0.0", 16, C), 0);
    assert_ptr_equal(look4(&t, "10.1.1.1"), D);
    assert_ptr_equal(look4(&t, "10.1.1.2"), B);
    assert_int_equal(rm4(&t, "10.1.0.0", 16, C), 1);
    /* the root */
    assert_int_equal(rm4(&t, "0.0.0.0", 0, A), 0);
    assert_null(look4(&t, "11.0.0.1"));
    assert_ptr_equal(look4(&t, "10.1.1.1"), D);
    assert_int_equal(rm4(&t, "10.1.1.1", 32, D), 0);
    assert_ptr_equal(look4(&t, "10.1.1.1"), B);
    assert_int_equal(rm4(&t, "10.0.0.0", 8, B), 0);
    assert_null(look4(&t, "10.1.1.1"));
    assert_null(t.root4);
    assert_int_equal(t.owner_count, 0);

    /* siblings joined by a branch node: removing one leaves the other reachable */
    assert_int_equal(ins6(&t, "fd00:1::", 32, A), 0);
    assert_int_equal(ins6(&t, "fd00:2::", 32, B), 0);
    assert_int_equal(rm6(&t, "fd00:1::", 32, A), 0);
    assert_null(look6(&t, "fd00:1::5"));
    assert_ptr_equal(look6(&t, "fd00:2::5"), B);
    assert_int_equal(rm6(&t, "fd00:2::", 32, B), 0);
    assert_null(t.root6);
    wg_allowedips_free(&t);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct wg_allowedips t;
    uint8_t addr[16] = {0};
    wg_allowedips_init(&t);
    struct base_prefix p4_33 = pfx(AF_INET, addr, 33), p6_129 = pfx(AF_INET6, addr, 129);
    struct base_prefix unix8 = pfx(AF_UNIX, addr, 8), p4_8 = pfx(AF_INET, addr, 8);
    struct base_prefix odd8 = pfx(12345, addr, 8);
    assert_int_equal(wg_allowedips_insert(&t, &p4_33, A), -1);
    assert_int_equal(wg_allowedips_insert(&t, &p6_129, A), -1);
    assert_int_equal(wg_allowedips_insert(&t, &unix8, A), -1);
    assert_int_equal(wg_allowedips_insert(&t, &p4_8, NULL), -1);
    assert_int_equal(wg_allowedips_insert(&t, NULL, A), -1);
    assert_int_equal(wg_allowedips_remove(&t, &p4_33, A), -1);
    assert_int_equal(wg_allowedips_remove(&t, &odd8, A), -1);
    assert_null(wg_allowedips_lookup(&t, AF_UNIX, addr));
    assert_null(t.root4);
    assert_null(t.root6);
    wg_allowedips_free(&t);
}

struct collected {
    int n;
    char text[16][64];
};

static void collect(void *arg, const struct base_prefix *p)
{
    struct collected *c = arg;
    assert_true(c->n < 16);
    base_prefix_format(p, c->text[c->n++], sizeof(c->text[0]));
}

static void test_foreach_and_remove_owner(void **state)
{
    (void)state;
    struct wg_allowedips t;
    wg_allowedips_init(&t);
    assert_int_equal(ins4(&t, "100.64.0.2", 32, A), 0);
    assert_int_equal(ins6(&t, "fd7a:115c:a1e0::2", 128, A), 0);
    assert_int_equal(ins4(&t, "100.64.0.3", 32, B), 0);
    assert_int_equal(ins4(&t, "192.168.7.77", 24, A), 0);
    assert_int_equal(ins4(&t, "0.0.0.0", 0, B), 0);

    struct collected c = {0};
    wg_allowedips_foreach(&t, A, collect, &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.text[0], "100.64.0.2/32");
    assert_string_equal(c.text[1], "fd7a:115c:a1e0::2/128");
    assert_string_equal(c.text[2], "192.168.7.0/24");

    memset(&c, 0, sizeof(c));
    wg_allowedips_foreach(&t, NULL, collect, &c);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.text[0], "0.0.0.0/0");
    assert_string_equal(c.text[4], "fd7a:115c:a1e0::2/128");

    memset(&c, 0, sizeof(c));
    wg_allowedips_foreach(&t, C, collect, &c);
    assert_int_equal(c.n, 0);

    wg_allowedips_remove_owner(&t, A);
    assert_ptr_equal(look4(&t, "100.64.0.2"), B); /* falls back to B's default */
    assert_null(look6(&t, "fd7a:115c:a1e0::2"));
    assert_ptr_equal(look4(&t, "100.64.0.3"), B);
    memset(&c, 0, sizeof(c));
    wg_allowedips_foreach(&t, A, collect, &c);
    assert_int_equal(c.n, 0);
    wg_allowedips_remove_owner(&t, C); /* unknown owner: nothing happens */
    wg_allowedips_remove_owner(&t, B);
    assert_null(t.root4);
    assert_null(t.root6);
    assert_int_equal(t.owner_count, 0);
    /* the table is reusable after everything left */
    assert_int_equal(ins4(&t, "1.2.3.4", 32, C), 0);
    assert_ptr_equal(look4(&t, "1.2.3.4"), C);
    wg_allowedips_free(&t);
}

/* ---- randomized comparison with a linear reference ---- */

struct ref_entry {
    int family;
    uint8_t addr[16];
    uint8_t cidr;
    void *owner;
};

struct ref {
    struct ref_entry *e;
    size_t n, cap;
};

static uint64_t rng_state = 0x243F6A8885A308D3u;

static uint32_t rnd(void)
{
    /* xorshift64*: reproducible without global libc state */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * UINT64_C(2685821657736338717)) >> 32);
}

static void mask(uint8_t *addr, int len, unsigned cidr)
{
    for (int i = 0; i < len; i++) {
        int keep = (int)cidr - 8 * i;
        if (keep <= 0)
            addr[i] = 0;
        else if (keep < 8)
            addr[i] &= (uint8_t)(0xff << (8 - keep));
    }
}

static int prefix_contains(const struct ref_entry *r, const uint8_t *addr)
{
    int len = r->family == AF_INET ? 4 : 16;
    uint8_t a[16];
    memcpy(a, addr, (size_t)len);
    mask(a, len, r->cidr);
    return memcmp(a, r->addr, (size_t)len) == 0;
}

static void *ref_lookup(const struct ref *ref, int family, const uint8_t *addr)
{
    int best = -1;
    void *owner = NULL;
    for (size_t i = 0; i < ref->n; i++) {
        const struct ref_entry *r = &ref->e[i];
        if (r->family == family && r->cidr > best && prefix_contains(r, addr)) {
            best = r->cidr;
            owner = r->owner;
        }
    }
    return owner;
}

static struct ref_entry *ref_find(struct ref *ref, int family, const uint8_t *addr, uint8_t cidr)
{
    int len = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < ref->n; i++) {
        struct ref_entry *r = &ref->e[i];
        if (r->family == family && r->cidr == cidr && memcmp(r->addr, addr, (size_t)len) == 0)
            return r;
    }
    return NULL;
}

static void ref_insert(struct ref *ref, int family, const uint8_t *addr, uint8_t cidr, void *o)
{
    struct ref_entry *r = ref_find(ref, family, addr, cidr);
    if (r) {
        r->owner = o;
        return;
    }
    if (ref->n == ref->cap) {
        ref->cap = ref->cap ? ref->cap * 2 : 256;
        ref->e = realloc(ref->e, ref->cap * sizeof(*ref->e));
        assert_non_null(ref->e);
    }
    r = &ref->e[ref->n++];
    memset(r, 0, sizeof(*r));
    r->family = family;
    memcpy(r->addr, addr, family == AF_INET ? 4 : 16);
    r->cidr = cidr;
    r->owner = o;
}

static void ref_remove_at(struct ref *ref, size_t i)
{
    ref->e[i] = ref->e[--ref->n];
}

/* Addresses cluster under a few bases so prefixes overlap and nest at many depths. */
static void random_addr(int family, uint8_t *addr)
{
    static const uint8_t bases4[4][4] = {
        {10, 0, 0, 0}, {100, 64, 0, 0}, {192, 168, 0, 0}, {0, 0, 0, 0}};
    static const uint8_t bases6[3][16] = {
        {0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0},
        {0x20, 0x01, 0x0d, 0xb8},
        {0},
    };
    if (family == AF_INET) {
        memcpy(addr, bases4[rnd() % 4], 4);
        int fixed = (int)(rnd() % 4);
        for (int i = fixed; i < 4; i++)
            addr[i] = (uint8_t)(rnd() % 4 == 0 ? rnd() : rnd() % 4);
    } else {
        memcpy(addr, bases6[rnd() % 3], 16);
        int fixed = (int)(rnd() % 16);
        for (int i = fixed; i < 16; i++)
            addr[i] = (uint8_t)(rnd() % 4 == 0 ? rnd() : rnd() % 4);
    }
}

static uint8_t random_cidr(int family)
{
    int bits = family == AF_INET ? 32 : 128;
    switch (rnd() % 4) {
    case 0:
        return (uint8_t)bits;
    case 1:
        return (uint8_t)(rnd() % (unsigned)(bits + 1));
    default:
        return (uint8_t)(bits / 2 + rnd() % (unsigned)(bits / 2 + 1));
    }
}

static void check_against_ref(struct wg_allowedips *t, const struct ref *ref, int probes)
{
    for (int i = 0; i < probes; i++) {
        int family = rnd() % 2 ? AF_INET : AF_INET6;
        uint8_t addr[16];
        if (ref->n && rnd() % 2) {
            /* near a stored prefix: flip a bit at or after its end */
            const struct ref_entry *r = &ref->e[rnd() % ref->n];
            family = r->family;
            int len = family == AF_INET ? 4 : 16;
            memcpy(addr, r->addr, 16);
            for (int j = 0; j < len; j++)
                addr[j] |= (uint8_t)(rnd() % 8 == 0 ? rnd() : 0);
        } else {
            random_addr(family, addr);
        }
        void *want = ref_lookup(ref, family, addr);
        void *got = wg_allowedips_lookup(t, family, addr);
        if (want != got) {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(family, addr, buf, sizeof(buf));
            fail_msg("lookup %s: trie says owner %td, reference says %td", buf,
                     got ? (char *)got - peers : -1, want ? (char *)want - peers : -1);
        }
    }
}

struct count_ctx {
    const struct ref *ref;
    void *owner;
    size_t n;
};

static void count_and_verify(void *arg, const struct base_prefix *p)
{
    struct count_ctx *c = arg;
    struct ref_entry *r = ref_find((struct ref *)c->ref, p->addr.family, p->addr.ip, p->bits);
    assert_non_null(r);
    if (c->owner)
        assert_ptr_equal(r->owner, c->owner);
    c->n++;
}

static void check_foreach(struct wg_allowedips *t, const struct ref *ref)
{
    struct count_ctx all = {ref, NULL, 0};
    wg_allowedips_foreach(t, NULL, count_and_verify, &all);
    assert_int_equal(all.n, ref->n);
    size_t sum = 0;
    for (size_t o = 0; o < sizeof(peers); o++) {
        struct count_ctx one = {ref, &peers[o], 0};
        wg_allowedips_foreach(t, &peers[o], count_and_verify, &one);
        size_t want = 0;
        for (size_t i = 0; i < ref->n; i++)
            want += ref->e[i].owner == &peers[o];
        assert_int_equal(one.n, want);
        sum += one.n;
    }
    assert_int_equal(sum, ref->n);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    struct wg_allowedips t;
    struct ref ref = {0};
    wg_allowedips_init(&t);

    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 2500; i++) {
            int family = rnd() % 2 ? AF_INET : AF_INET6;
            uint8_t addr[16] = {0};
            random_addr(family, addr);
            uint8_t cidr = random_cidr(family);
            void *owner = &peers[rnd() % sizeof(peers)];
            struct base_prefix p = pfx(family, addr, cidr);
            assert_int_equal(wg_allowedips_insert(&t, &p, owner), 0);
            mask(addr, family == AF_INET ? 4 : 16, cidr);
            ref_insert(&ref, family, addr, cidr, owner);
        }
        check_against_ref(&t, &ref, 5000);
        check_foreach(&t, &ref);

        /* remove a third of the prefixes, some with the wrong owner (which must do nothing) */
        for (size_t n = ref.n / 3; n > 0 && ref.n; n--) {
            size_t i = rnd() % ref.n;
            struct ref_entry r = ref.e[i];
            void *wrong = &peers[(size_t)((char *)r.owner - peers + 1) % sizeof(peers)];
            struct base_prefix p = pfx(r.family, r.addr, r.cidr);
            assert_int_equal(wg_allowedips_remove(&t, &p, wrong), 1);
            assert_int_equal(wg_allowedips_remove(&t, &p, r.owner), 0);
            ref_remove_at(&ref, i);
        }
        check_against_ref(&t, &ref, 5000);

        /* and two owners entirely */
        for (int k = 0; k < 2; k++) {
            void *gone = &peers[rnd() % sizeof(peers)];
            wg_allowedips_remove_owner(&t, gone);
            for (size_t i = 0; i < ref.n;) {
                if (ref.e[i].owner == gone)
                    ref_remove_at(&ref, i);
                else
                    i++;
            }
        }
        check_against_ref(&t, &ref, 5000);
        check_foreach(&t, &ref);
    }

    /* removing everyone empties the table completely */
    for (size_t o = 0; o < sizeof(peers); o++)
        wg_allowedips_remove_owner(&t, &peers[o]);
    assert_null(t.root4);
    assert_null(t.root6);
    assert_int_equal(t.owner_count, 0);
    free(ref.e);
    wg_allowedips_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_longest_prefix),
        cmocka_unit_test(test_v4_without_default),
        cmocka_unit_test(test_v6_longest_prefix),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_masks_host_bits),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_foreach_and_remove_owner),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
