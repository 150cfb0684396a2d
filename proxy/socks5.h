/*
 * SOCKS5 wire format as a pure incremental state machine: bytes in, replies and requests out.
 * No sockets, no allocation, so the fuzzer and unit tests drive it directly. Internal to
 * proxy/ (tests include it).
 */
#ifndef TUNLESS_SOCKS5_H
#define TUNLESS_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "proxy.h"

#define PROXY_SOCKS5_CMD_CONNECT 0x01
#define PROXY_SOCKS5_CMD_BIND 0x02
#define PROXY_SOCKS5_CMD_UDP 0x03

#define PROXY_SOCKS5_REP_OK 0x00
#define PROXY_SOCKS5_REP_FAIL 0x01
#define PROXY_SOCKS5_REP_POLICY 0x02
#define PROXY_SOCKS5_REP_NET_UNREACH 0x03
#define PROXY_SOCKS5_REP_HOST_UNREACH 0x04
#define PROXY_SOCKS5_REP_REFUSED 0x05
#define PROXY_SOCKS5_REP_TTL 0x06
#define PROXY_SOCKS5_REP_CMD 0x07
#define PROXY_SOCKS5_REP_ATYP 0x08

/* Longest reply: VER REP RSV ATYP + 16-byte IPv6 + port. */
#define PROXY_SOCKS5_REPLY_MAX 22
/* Longest UDP header: RSV RSV FRAG ATYP LEN + 255-byte name + port. */
#define PROXY_SOCKS5_UDP_HDR_MAX 262

enum proxy_socks5_state {
    PROXY_SOCKS5_S_GREETING,
    PROXY_SOCKS5_S_AUTH,
    PROXY_SOCKS5_S_REQUEST,
    PROXY_SOCKS5_S_DONE,
    PROXY_SOCKS5_S_FAILED
};

struct proxy_socks5_parser {
    enum proxy_socks5_state state;
    const struct proxy_auth *auth; /* NULL or disabled: no-auth */
    size_t len;
    uint8_t buf[2 + 255 + 1 + 255]; /* the largest message: user/pass auth */
};

enum proxy_socks5_event {
    PROXY_SOCKS5_MORE,    /* all input used, nothing to do; feed more */
    PROXY_SOCKS5_SEND,    /* send reply, keep going */
    PROXY_SOCKS5_REQUEST, /* a CONNECT or UDP ASSOCIATE request: cmd and target are set; bytes
                     * after it are the client's payload */
    PROXY_SOCKS5_FAIL,    /* send reply (may be empty), then close */
};

struct proxy_socks5_result {
    uint8_t reply[PROXY_SOCKS5_REPLY_MAX];
    size_t reply_len;
    uint8_t cmd;
    struct proxy_target target;
};

void proxy_socks5_init(struct proxy_socks5_parser *p, const struct proxy_auth *auth);
/* Consumes input up to and including the next event; *used says how much. */
enum proxy_socks5_event proxy_socks5_input(struct proxy_socks5_parser *p, const uint8_t *data,
                                           size_t len, size_t *used, struct proxy_socks5_result *r);
/* VER REP RSV ATYP BND.ADDR BND.PORT; bnd NULL = 0.0.0.0:0. Returns its length. */
size_t proxy_socks5_reply(uint8_t out[PROXY_SOCKS5_REPLY_MAX], uint8_t rep,
                          const struct base_endpoint *bnd);
/* A UDP ASSOCIATE datagram: target and header length, or -1 (fragment, bad ATYP, short). */
int proxy_socks5_udp_parse(const uint8_t *data, size_t len, struct proxy_target *t,
                           size_t *hdr_len);
/* The header to put before a reply datagram from `from`. Returns its length. */
size_t proxy_socks5_udp_header(uint8_t out[PROXY_SOCKS5_UDP_HDR_MAX],
                               const struct base_endpoint *from);

#endif
