#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "config_asserts.h"

void assert_prefix(const struct wg_allowed_ip *p, const char *addr, unsigned cidr)
{
    char buf[INET6_ADDRSTRLEN];
    assert_non_null(inet_ntop(p->family, p->addr, buf, sizeof(buf)));
    assert_string_equal(buf, addr);
    assert_int_equal(p->cidr, cidr);
}

void assert_ip(const struct node_ipport *p, const char *addr, unsigned port)
{
    char buf[INET6_ADDRSTRLEN];
    assert_non_null(inet_ntop(p->family, p->addr, buf, sizeof(buf)));
    assert_string_equal(buf, addr);
    assert_int_equal(p->port, port);
}

void assert_key(const uint8_t key[WG_KEY_LEN], const char *b64)
{
    char buf[WG_KEY_B64_LEN + 1];
    wg_key_to_base64(buf, key);
    assert_string_equal(buf, b64);
}

void assert_zeroed(const struct node_config *c)
{
    static const struct node_config zero;
    assert_memory_equal(c, &zero, sizeof(zero));
}
