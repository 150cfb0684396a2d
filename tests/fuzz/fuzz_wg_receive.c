/*
 * Arbitrary datagrams into the engine's receive path (wg_engine_receive, no socket needed).
 * Two engines with an established session are set up once, so the first input byte can choose:
 *   0: the rest is a raw datagram from the peer's address;
 *   1: the rest is a plaintext the peer seals with its real session key (reaches IP parsing,
 *      cryptokey routing and delivery);
 *   2: the rest is a raw datagram whose receiver index is patched to a live one (reaches the
 *      AEAD, cookie and handshake-state checks with a valid index);
 *   3: a genuine initiation from the peer (clock moved on a second so its timestamp is new), the
 *      rest XORed into it at offset data[1] before the MACs are computed, so it passes MAC1 and
 *      reaches the Noise responder (an empty rest = a valid handshake, answered).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "engine_pair.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct te_net net;
static bool ready;
static uint8_t buf[70000];

static void setup(void)
{
    te_net_init(&net, 2);
    if (te_peer(&net, 0, 1, 0) || te_peer(&net, 1, 0, 0) || te_send_ping(&net, 0, 1, 1))
        abort();
    if (!te_run_until(&net, &net.nodes[1].delivered, 1))
        abort();
    ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1 || size - 1 > sizeof(buf) - 64)
        return 0;
    struct wg_engine *target = net.nodes[1].engine;
    struct wg_peer *sender = wg_engine_peer(net.nodes[0].engine, net.nodes[1].pub);
    struct wg_peer *receiver = wg_engine_peer(target, net.nodes[0].pub);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons(wg_engine_port(net.nodes[0].engine))};
    size_t len = size - 1;

    switch (data[0] % 4) {
    case 3: {
        struct wg_msg_initiation msg;
        uint8_t ts[WG_TIMESTAMP_LEN];
        net.clock.mono_ns += 1000000000ULL;
        net.clock.wall_ns += 1000000000ULL;
        struct timespec wall = {.tv_sec = (time_t)(net.clock.wall_ns / 1000000000ULL)};
        wg_tai64n(ts, &wall);
        if (wg_noise_create_initiation(&sender->hs, &net.nodes[0].engine->id, 0x5eed, ts, NULL,
                                       &msg) != WG_NOISE_OK)
            return 0;
        uint8_t *m = (uint8_t *)&msg;
        size_t body = offsetof(struct wg_msg_initiation, macs);
        size_t off = len ? data[1] % body : 0;
        for (size_t i = 1; i < len && off < body; i++, off++)
            m[off] ^= data[1 + i];
        wg_cookie_add_macs(&sender->cookie, m, sizeof(msg), net.clock.mono_ns);
        memcpy(buf, &msg, sizeof(msg));
        len = sizeof(msg);
        break;
    }
    case 1: {
        size_t out_len = 0;
        if (!sender->current ||
            wg_keypair_seal(&sender->current->kp, data + 1, len, buf, sizeof(buf), &out_len,
                            net.clock.mono_ns) != WG_KEYPAIR_OK)
            return 0;
        len = out_len;
        break;
    }
    case 0:
        memcpy(buf, data + 1, len);
        break;
    default:
        memcpy(buf, data + 1, len);
        if (len >= 8 && receiver->current)
            wg_le32_write(buf + (buf[0] == WG_MSG_RESPONSE ? 8 : 4),
                          receiver->current->kp.local_index);
        break;
    }
    wg_engine_receive(target, buf, len, (struct sockaddr *)&src);
    uv_run(&net.loop, UV_RUN_NOWAIT);
    return 0;
}
