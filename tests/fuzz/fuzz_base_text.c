/*
 * base's text parsers (host:port, endpoints, prefixes, addresses): whatever they accept must
 * format back to text that parses to the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static void check_endpoint(const char *s, size_t len)
{
    struct base_endpoint e, again;
    if (base_endpoint_parse(&e, s, len) != 0)
        return;
    char buf[BASE_ENDPOINT_STRLEN];
    base_endpoint_format(&e, buf, sizeof(buf));
    if (base_endpoint_parse(&again, buf, strlen(buf)) != 0 || !base_endpoint_equal(&e, &again))
        abort();
}

static void check_prefix(const char *s, size_t len)
{
    struct base_prefix p, again;
    if (base_prefix_parse(&p, s, len) != 0)
        return;
    char buf[BASE_PREFIX_STRLEN];
    base_prefix_format(&p, buf, sizeof(buf));
    if (base_prefix_parse(&again, buf, strlen(buf)) != 0 || again.bits != p.bits ||
        !base_addr_equal(&again.addr, &p.addr))
        abort();
    base_prefix_masked(&p);
    if (!base_prefix_contains(&p, &again.addr))
        abort();
}

static void check_hostport(const char *s, size_t len)
{
    char host[BASE_HOST_MAX + 1];
    uint16_t port = 0;
    const char *why = NULL;
    unsigned flags = len ? ((unsigned char)s[0] & 3) : 0;
    if (base_hostport_parse(s, len, host, sizeof(host), &port, flags, &why) != 0) {
        if (!why)
            abort();
        return;
    }
    if (strlen(host) == 0 || strlen(host) > BASE_HOST_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_endpoint(s, size);
    check_prefix(s, size);
    check_hostport(s, size);
    char quoted[64];
    char *z = malloc(size + 1);
    if (!z)
        return 0;
    memcpy(z, data, size);
    z[size] = '\0';
    base_log_quote(quoted, sizeof(quoted), z);
    if (strlen(quoted) >= sizeof(quoted))
        abort();
    free(z);
    return 0;
}
