#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <cmocka.h>

#include "config_asserts.h"

void assert_prefix(const struct base_prefix *p, const char *addr, unsigned bits)
{
    char buf[BASE_ADDR_STRLEN];
    assert_string_equal(base_addr_format(&p->addr, buf, sizeof(buf)), addr);
    assert_int_equal(p->bits, bits);
}

void assert_ip(const struct base_endpoint *p, const char *addr, unsigned port)
{
    char buf[BASE_ADDR_STRLEN];
    assert_string_equal(base_addr_format(&p->addr, buf, sizeof(buf)), addr);
    assert_int_equal(p->port, port);
}

void assert_key(const uint8_t key[CFG_KEY_LEN], const char *b64)
{
    char buf[CFG_KEY_B64_LEN + 1]; /* encoded by libsodium: independent of the parser tested */
    sodium_bin2base64(buf, sizeof(buf), key, CFG_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
    assert_string_equal(buf, b64);
}

void assert_zeroed(const struct cfg_config *c)
{
    static const struct cfg_config zero;
    assert_memory_equal(c, &zero, sizeof(zero));
}

void check_self_diff(const struct cfg_config *c)
{
    struct cfg_diff d;
    if (cfg_diff(c, c, &d) == 0) {
        if (d.n_unchanged != c->n_peers || d.n_added + d.n_removed + d.n_changed ||
            d.addresses_changed || d.dns_changed)
            __builtin_trap();
        cfg_diff_free(&d);
    }
    if (cfg_diff(NULL, c, &d) == 0) {
        if (d.n_added != c->n_peers || d.n_unchanged + d.n_removed + d.n_changed)
            __builtin_trap();
        cfg_diff_free(&d);
    }
}
