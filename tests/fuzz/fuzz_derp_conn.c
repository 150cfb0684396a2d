/* The DERP server's per-connection state machine fed arbitrary bytes, with a second client
 * logged in beside it (so packets have somewhere to go). First byte: bit 0 logs the fuzzed
 * connection in first (fast start and a real ClientInfo), bit 1 with the mesh key, bits 2-7
 * the chunk size. Without bit 0 the bytes start at the HTTP request. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct derp_server *srv;
static uint8_t client_priv[2][32];

static void fuzz_init(void)
{
    if (sodium_init() < 0 || uv_loop_init(&loop) != 0)
        abort();
    struct derp_server_config cfg = {.mesh_key = "fuzz-mesh"};
    derp_limits_default(&cfg.limits);
    cfg.limits.queue_depth = 4;
    randombytes_buf(cfg.private_key, 32);
    randombytes_buf(client_priv[0], 32);
    randombytes_buf(client_priv[1], 32);
    char err[256];
    if (derp_server_new(&loop, &cfg, &srv, err, sizeof(err)) != 0)
        abort();
}

static void login(struct derp_conn *c, const uint8_t *priv, bool mesh)
{
    static const char req[] = "GET /derp HTTP/1.1\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n"
                              "Derp-Fast-Start: 1\r\n\r\n";
    uint8_t frame[1024];
    struct derp_client_info ci = {.version = DERP_PROTOCOL_VERSION};
    if (mesh)
        strcpy(ci.mesh_key, "fuzz-mesh");
    int n = derp_client_info_seal(&ci, priv, srv->pub, frame, sizeof(frame));
    derp_conn_feed(c, (const uint8_t *)req, sizeof(req) - 1);
    derp_conn_feed(c, frame, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        fuzz_init();
    if (size < 1)
        return 0;
    struct derp_conn *peer = derp_conn_new_sink(srv);
    struct derp_conn *c = derp_conn_new_sink(srv);
    if (!peer || !c)
        abort();
    login(peer, client_priv[1], false);
    if (data[0] & 1)
        login(c, client_priv[0], data[0] & 2);
    size_t step = (size_t)(data[0] >> 2) + 1;
    for (size_t off = 1; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (derp_conn_feed(c, data + off, n) != 0)
            break;
    }
    struct base_list *it, *tmp;
    base_list_foreach_safe (it, tmp, &srv->conns) {
        derp_conn_close(container_of(it, struct derp_conn, node), "fuzz_done");
    }
    for (int i = 0; i < 16 && !base_list_empty(&srv->conns); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (!base_list_empty(&srv->conns) || srv->n_clients != 0 || srv->clients.count != 0)
        abort();
    return 0;
}
