/* HTTP proxy requests from arbitrary bytes, pipelined, fed in pieces. First input byte: bit 0
 * turns credentials on, the rest picks the piece size. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpproxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_body(void *arg, const uint8_t *d, size_t len, int ref)
{
    (void)ref;
    size_t *total = arg;
    /* Touch every byte so the sanitizer sees out-of-range pieces. */
    for (size_t i = 0; i < len; i++)
        *total += d[i] != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    static struct proxy_auth auth;
    if (!init) {
        if (sodium_init() < 0)
            abort();
        proxy_auth_init(&auth, "user", "pass");
        init = 1;
    }
    if (size < 1)
        return 0;
    struct proxy_http_req r;
    if (proxy_http_init(&r, (data[0] & 1) ? &auth : NULL, 2048) != 0)
        return 0;
    size_t total = 0;
    r.on_body = on_body;
    r.arg = &total;
    size_t step = (size_t)(data[0] >> 1) * 4 + 1;
    data++;
    size--;
    size_t off = 0;
    int rounds = 0;
    while (off <= size && rounds++ < 10000) {
        size_t n = size - off < step ? size - off : step;
        size_t used;
        enum proxy_http_event ev = proxy_http_input(&r, data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (ev == PROXY_HTTP_ERROR)
            break;
        if (ev == PROXY_HTTP_HEAD) {
            if (r.status == 0 && !r.connect && r.out_len > r.out_cap)
                abort();
            if (r.status || r.connect)
                break; /* the proxy answers, or tunnels the rest */
            continue;
        }
        if (ev == PROXY_HTTP_DONE) {
            proxy_http_next(&r);
            continue;
        }
        if (off >= size)
            break;
    }
    struct proxy_target t;
    const char *path;
    size_t plen;
    if (proxy_http_parse_absolute((const char *)data, size, &t, &path, &plen) == 0 &&
        plen > size + 1)
        abort();
    proxy_http_parse_authority((const char *)data, size, 80, &t);
    proxy_http_check_basic(&auth, (const char *)data, size);
    proxy_http_free(&r);
    return 0;
}
