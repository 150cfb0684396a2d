/*
 * derp: Tailscale's DERP relay protocol, version 2. The server (HTTP/TLS listener, frames,
 * login, forwarding, mesh, STUN, limits, metrics) runs on one libuv loop.
 *
 * Memory: derp_server_new copies everything in the config (strings too); the caller may free
 * its config at once. The server owns every connection, buffer and handle it makes and frees
 * them before on_closed runs; the caller frees nothing of it. The private key is copied and
 * wiped when the server is gone.
 *
 * The frame codec (frame.h) and the login boxes (login.h) are shared with the DERP client.
 */
#ifndef TUNLESS_DERP_H
#define TUNLESS_DERP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"
#include "frame.h"

struct derp_limits {
    uint32_t login_timeout_ms;     /* HTTP request + ClientInfo must arrive within (10000) */
    uint32_t max_frame;            /* largest frame after login (DERP_MAX_FRAME) */
    uint32_t max_client_info;      /* largest ClientInfo frame (256 KiB, as derper) */
    uint32_t queue_depth;          /* packets queued per client; full drops the oldest (32) */
    uint32_t write_timeout_ms;     /* a write pending longer drops the client (2000) */
    uint32_t rate_bytes_per_sec;   /* per-client token bucket on received bytes (0 = none) */
    uint32_t rate_burst;           /* bucket size (0 = one second of rate) */
    uint32_t max_clients;          /* logged-in clients at once (10000) */
    uint32_t keepalive_ms;         /* KeepAlive period, plus up to 5 s jitter (60000) */
    uint32_t restart_reconnect_ms; /* Restarting: reconnect after (2000) */
    uint32_t restart_try_for_ms;   /* Restarting: keep trying for (60000) */
};

/* The defaults listed above. */
void derp_limits_default(struct derp_limits *l);

struct derp_server_config {
    uint8_t private_key[DERP_KEY_LEN];
    struct base_endpoint listen; /* family 0: no listener (fuzzing) */
    struct base_endpoint stun;   /* family 0: no STUN */
    const char *cert_file;       /* with key_file: TLS; NULL: plain HTTP */
    const char *key_file;
    const char *mesh_key;       /* NULL or "": no mesh */
    const char *mesh_with;      /* "http://host:port,https://..." other servers to watch */
    bool mesh_insecure;         /* https mesh links skip certificate checks */
    const char *verify_clients; /* file of allowed client keys (hex or base64, one a line) */
    struct derp_limits limits;
    struct base_logger log;
};

struct derp_server;

/* Starts listening (TCP, STUN) and meshing. Returns 0, or a negative error with a sentence in
 * err: the half-made server is then closing and frees itself as the loop runs on. */
int derp_server_new(uv_loop_t *loop, const struct derp_server_config *cfg, struct derp_server **out,
                    char *err, size_t errlen);
/* SIGHUP: reloads the certificate and the verify-clients file. Connected clients stay; a bad
 * file keeps the old one. Returns 0 or a negative error with a sentence in err. */
int derp_server_reload(struct derp_server *s, char *err, size_t errlen);
void derp_server_public_key(const struct derp_server *s, uint8_t out[DERP_KEY_LEN]);
/* Prometheus text of the counters into out (cut at cap). Returns the length. */
size_t derp_server_metrics(const struct derp_server *s, char *out, size_t cap);
/* Stops: with restarting, every client first gets Restarting (the limits' hints). on_closed
 * runs once every handle is gone and the server is freed. */
void derp_server_close(struct derp_server *s, bool restarting, void (*on_closed)(void *arg),
                       void *arg);

#endif
