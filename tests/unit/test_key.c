/* Keys as wg(8) has them: clamping, public derivation, base64 output (config/ reads it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "key.h"

/* RFC 7748 section 6.1: Alice's private and public keys. */
static const char *alice_priv_b64 = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
static const char *alice_pub_b64 = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

static void test_rfc7748_public(void **state)
{
    (void)state;
    uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
    char b64[WG_KEY_B64_LEN + 1];

    size_t len = 0;
    assert_int_equal(sodium_base642bin(priv, sizeof(priv), alice_priv_b64, strlen(alice_priv_b64),
                                       NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(len, WG_KEY_LEN);
    assert_int_equal(wg_key_public(pub, priv), 0);
    wg_key_to_base64(b64, pub);
    assert_string_equal(b64, alice_pub_b64);
}

static void test_generate_is_clamped_and_fresh(void **state)
{
    (void)state;
    uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN];

    wg_key_generate(a);
    wg_key_generate(b);
    assert_int_equal(a[0] & 7, 0);
    assert_int_equal(a[31] & 128, 0);
    assert_int_equal(a[31] & 64, 64);
    assert_false(wg_key_equal(a, b));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7748_public),
        cmocka_unit_test(test_generate_is_clamped_and_fresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
