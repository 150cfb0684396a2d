/* SOCKS5 negotiation and UDP headers from arbitrary bytes. First input byte: bit 0 turns
 * credentials on, the rest picks the piece size the parser is fed in. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
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
    struct proxy_socks5_parser p;
    proxy_socks5_init(&p, (data[0] & 1) ? &auth : NULL);
    size_t step = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t used;
        struct proxy_socks5_result r;
        enum proxy_socks5_event ev = proxy_socks5_input(&p, data + off, n, &used, &r);
        if (used > n || r.reply_len > sizeof(r.reply))
            abort();
        off += used;
        if (ev == PROXY_SOCKS5_REQUEST) {
            if (r.cmd != PROXY_SOCKS5_CMD_CONNECT && r.cmd != PROXY_SOCKS5_CMD_UDP)
                abort();
            if (r.target.name[0] && strlen(r.target.name) > PROXY_NAME_MAX)
                abort();
            break;
        }
        if (ev == PROXY_SOCKS5_FAIL)
            break;
        if (ev == PROXY_SOCKS5_MORE && used != n)
            abort();
    }
    struct proxy_target t;
    size_t hl;
    if (proxy_socks5_udp_parse(data, size, &t, &hl) == 0 && hl > size)
        abort();
    return 0;
}
