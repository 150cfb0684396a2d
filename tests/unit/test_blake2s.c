/* BLAKE2s against published vectors; HMAC-BLAKE2s and the WireGuard KDF against Python. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "blake2s.h"

static void hex2bin(uint8_t *out, size_t len, const char *hex)
{
    assert_int_equal(strlen(hex), 2 * len);
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void assert_hex(const uint8_t *got, size_t len, const char *hex)
{
    uint8_t want[64];
    hex2bin(want, len, hex);
    assert_memory_equal(got, want, len);
}

/* RFC 7693 Appendix B: BLAKE2s-256("abc"). */
static void test_rfc7693_abc(void **state)
{
    (void)state;
    uint8_t out[32];
    wg_blake2s(out, 32, (const uint8_t *)"abc", 3, NULL, 0);
    assert_hex(out, 32, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

/* RFC 7693 Appendix E: deterministic input generator and the "grand hash" over digest lengths
 * 16/20/28/32, input lengths 0/3/64/65/255/1024, unkeyed and keyed. */
static void selftest_seq(uint8_t *out, size_t len, uint32_t seed)
{
    uint32_t a = 0xDEAD4BAD * seed, b = 1;
    for (size_t i = 0; i < len; i++) {
        uint32_t t = a + b;
        a = b;
        b = t;
        out[i] = (uint8_t)(t >> 24);
    }
}

static void test_rfc7693_selftest(void **state)
{
    (void)state;
    static const size_t md_len[4] = {16, 20, 28, 32};
    static const size_t in_len[6] = {0, 3, 64, 65, 255, 1024};
    uint8_t in[1024], md[32], key[32];
    struct wg_blake2s_state ctx;

    wg_blake2s_init(&ctx, 32);
    for (size_t i = 0; i < 4; i++) {
        size_t outlen = md_len[i];
        for (size_t j = 0; j < 6; j++) {
            size_t inlen = in_len[j];
            selftest_seq(in, inlen, (uint32_t)inlen);
            wg_blake2s(md, outlen, in, inlen, NULL, 0);
            wg_blake2s_update(&ctx, md, outlen);
            selftest_seq(key, outlen, (uint32_t)outlen);
            wg_blake2s(md, outlen, in, inlen, key, outlen);
            wg_blake2s_update(&ctx, md, outlen);
        }
    }
    wg_blake2s_final(&ctx, md);
    assert_hex(md, 32, "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
}

/* Reference blake2s-kat.txt keyed entries: key = 00..1f, input = 00..(n-1). Lengths 63 and 65
 * (block boundary) were computed with Python's hashlib.blake2s(key=...) when writing this. */
static void test_keyed_kat(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        const char *hex;
    } kat[] = {
        {0, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49"},
        {1, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1"},
        {2, "6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803"},
        {3, "1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b"},
        {4, "f6c3fbadb4cc687a0064a5be6e791bec63b868ad62fba61b3757ef9ca52e05b2"},
        {5, "49c1f21188dfd769aea0e911dd6b41f14dab109d2b85977aa3088b5c707e8598"},
        {6, "fdd8993dcd43f696d44f3cea0ff35345234ec8ee083eb3cada017c7f78c17143"},
        {7, "e6c8125637438d0905b749f46560ac89fd471cf8692e28fab982f73f019b83a9"},
        {63, "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd"},
        {64, "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4"},
        {65, "21fe0ceb0052be7fb0f004187cacd7de67fa6eb0938d927677f2398c132317a8"},
        {128, "0c311f38c35a4fb90d651c289d486856cd1413df9b0677f53ece2cd9e477c60a"},
        {192, "5950d39a23e1545f301270aa1a12f2e6c453776e4d6355de425cc153f9818867"},
        {255, "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd"},
    };
    uint8_t key[32], in[256], out[32];

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        wg_blake2s(out, 32, in, kat[i].len, key, 32);
        assert_hex(out, 32, kat[i].hex);

        /* Same digest however the input is split (exercises the deferred last block). */
        for (size_t cut = 0; cut <= kat[i].len; cut += 13) {
            struct wg_blake2s_state s;
            wg_blake2s_init_key(&s, 32, key, 32);
            wg_blake2s_update(&s, in, cut);
            wg_blake2s_update(&s, in + cut, kat[i].len - cut);
            wg_blake2s_final(&s, out);
            assert_hex(out, 32, kat[i].hex);
        }
    }
}

/* Expected values: Python 3, hmac.new(key, msg, hashlib.blake2s).digest(), and the KDF as
 * written in the whitepaper on top of it (tests/vectors/wg_handshake_vectors.py's KDF()). */
static const char *fox = "The quick brown fox jumps over the lazy dog";

static void test_hmac(void **state)
{
    (void)state;
    uint8_t key[65], out[32];

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    wg_hmac_blake2s(out, key, 32, (const uint8_t *)fox, strlen(fox));
    assert_hex(out, 32, "f4660dee21c6a48e2a3d695ceedc26693e37b64b5ac5227476578517ee87fe6d");
    /* A key longer than the block is hashed first. */
    wg_hmac_blake2s(out, key, 65, (const uint8_t *)"abc", 3);
    assert_hex(out, 32, "44d87b3939dec16bc76cbd83e3982ac0a4eafab8a5b87c8c2adbd0da7d5c9695");
    wg_hmac_blake2s(out, NULL, 0, NULL, 0);
    assert_hex(out, 32, "eaf4bb25938f4d20e72656bbbc7a9bf63c0c18537333c35bdb67db1402661acd");
}

static void test_kdf(void **state)
{
    (void)state;
    uint8_t key[32], a[32], b[32], c[32];

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    wg_kdf(a, b, c, key, (const uint8_t *)fox, strlen(fox));
    assert_hex(a, 32, "c471865b3d2b771612913b81650c7c69ca16c5ac72ae83aaf2e47dc5337e67fc");
    assert_hex(b, 32, "2411eee3c28d42aa1059e1d4a1d9622de9d3af8ecc67a0a2f7775a4af463a1df");
    assert_hex(c, 32, "c909be26cedc47c1b8e0dad92bfb74fde4fc061980c7d398142c5e0a3c48f4e1");

    /* Fewer outputs give the same prefix. */
    memset(a, 0, 32);
    wg_kdf(a, NULL, NULL, key, (const uint8_t *)fox, strlen(fox));
    assert_hex(a, 32, "c471865b3d2b771612913b81650c7c69ca16c5ac72ae83aaf2e47dc5337e67fc");

    /* Empty input, as for transport keys; output aliasing the key, as the chaining key does. */
    wg_kdf(key, b, NULL, key, NULL, 0);
    assert_hex(key, 32, "7a38c34bf2b8738d7374ca77c44ecb309a11d2b2528304fa86052c365e722624");
    assert_hex(b, 32, "1a17621f346abdc520746a9fb64d8eb03231d674fc15687537b0780fd9c060fd");
}

/* Shorter digests are not truncations: the length is in the parameter block. */
static void test_outlen_in_parameter_block(void **state)
{
    (void)state;
    uint8_t full[32], short16[16];
    wg_blake2s(full, 32, (const uint8_t *)"abc", 3, NULL, 0);
    wg_blake2s(short16, 16, (const uint8_t *)"abc", 3, NULL, 0);
    assert_hex(short16, 16, "aa4938119b1dc7b87cbad0ffd200d0ae");
    assert_memory_not_equal(full, short16, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7693_abc), cmocka_unit_test(test_rfc7693_selftest),
        cmocka_unit_test(test_keyed_kat),   cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_kdf),         cmocka_unit_test(test_outlen_in_parameter_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
