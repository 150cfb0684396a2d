/* The DERP frame codec, login boxes and STUN codec from arbitrary bytes. First byte: bits 0-4
 * pick the chunk size the reader is fed in, bit 5 strict mode (every type handed out), bit 6 a
 * small frame cap (skips and refusals), bit 7 feeds the whole input to the STUN and login
 * parsers as well. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "login.h"
#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_frame(void *arg, const struct derp_frame *f)
{
    const uint8_t *a, *b, *p;
    size_t n;
    uint8_t reason;
    uint32_t x, y;
    const struct derp_reader *r = arg;
    if (!derp_frame_type_known(f->type) && !r->strict)
        abort();
    if (derp_parse_packet(f, &a, &p, &n) == 0 && n + DERP_KEY_LEN != f->len)
        abort();
    if (derp_parse_forward(f, &a, &b, &p, &n) == 0 && n + 2 * DERP_KEY_LEN != f->len)
        abort();
    derp_parse_peer_gone(f, &a, &reason);
    derp_parse_key(f, &a, f->type & 1);
    derp_parse_server_key(f, &a);
    derp_parse_restarting(f, &x, &y);
    return 0;
}

static void other_parsers(const uint8_t *data, size_t size)
{
    static const uint8_t priv[32] = {1, 2, 3};
    uint8_t txid[DERP_STUN_TXID_LEN] = {0}, key[32];
    struct base_endpoint ep;
    struct derp_client_info ci;
    struct derp_server_info si;
    derp_stun_parse_request(data, size, txid);
    if (size >= 20)
        memcpy(txid, data + 8, sizeof(txid));
    derp_stun_parse_response(data, size, txid, &ep);
    derp_client_info_open(data, size, priv, key, &ci);
    derp_server_info_open(data, size, priv, priv, &si);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (sodium_init() < 0)
            abort();
        init = 1;
    }
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] & 0x1f) + 1;
    uint32_t cap = (data[0] & 0x40) ? 64 : DERP_MAX_FRAME;
    if (data[0] & 0x80)
        other_parsers(data + 1, size - 1);
    struct derp_reader r;
    derp_reader_init(&r, cap);
    r.strict = (data[0] & 0x20) != 0;
    for (size_t off = 1; off < size; off += step) {
        size_t n = size - off < step ? size - off : step, used;
        if (derp_reader_feed(&r, data + off, n, &used, check_frame, &r) != 0)
            break;
        if (used != n)
            abort();
    }
    derp_reader_free(&r);
    return 0;
}
