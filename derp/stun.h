/*
 * STUN (RFC 5389) for DERP clients learning their public address: the pure codec (a binding
 * request in, a binding success response with XOR-MAPPED-ADDRESS out) and a uv_udp server
 * that answers with it. Anything that is not a binding request is ignored and counted.
 */
#ifndef TUNLESS_DERP_STUN_H
#define TUNLESS_DERP_STUN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"

#define DERP_STUN_HEADER_LEN 20
#define DERP_STUN_TXID_LEN 12
#define DERP_STUN_RESPONSE_MAX (DERP_STUN_HEADER_LEN + 4 + 20)

/* A binding request: copies its transaction id. Returns 0 or BASE_EPARSE. */
int derp_stun_parse_request(const uint8_t *p, size_t len, uint8_t txid[DERP_STUN_TXID_LEN]);
/* The binding success response for from; returns its length (<= DERP_STUN_RESPONSE_MAX). */
size_t derp_stun_build_response(uint8_t *out, const uint8_t txid[DERP_STUN_TXID_LEN],
                                const struct base_endpoint *from);
/* Client side (tests, the future client): the XOR-MAPPED-ADDRESS of a response to txid.
 * Returns 0 or BASE_EPARSE. */
int derp_stun_parse_response(const uint8_t *p, size_t len, const uint8_t txid[DERP_STUN_TXID_LEN],
                             struct base_endpoint *out);

struct derp_stun_counters {
    uint64_t requests, ignored, send_errors;
};

struct derp_stun {
    uv_udp_t udp;
    struct derp_stun_counters *counters; /* owned by whoever made the server */
    const struct base_logger *log;
    void (*on_closed)(void *arg);
    void *arg;
    uint8_t rx[2048];
};

/* Binds addr and starts answering. Returns 0 or a negative error; either way the handle is
 * open and is closed with derp_stun_close. */
int derp_stun_start(struct derp_stun *s, uv_loop_t *loop, const struct base_endpoint *addr,
                    struct derp_stun_counters *counters, const struct base_logger *log);
void derp_stun_close(struct derp_stun *s, void (*on_closed)(void *arg), void *arg);

#endif
