/*
 * SOCKS5 on the wire (see socks5.h): proxy_socks5_input gathers one message at a time (greeting,
 * credentials, request) and answers it; the UDP ASSOCIATE datagram header both ways.
 */
#include <sodium.h>
#include <string.h>

#include "socks5.h"

#define ATYP_V4 0x01
#define ATYP_NAME 0x03
#define ATYP_V6 0x04

enum { ADDR_OK = 1, ADDR_MORE = 0, ADDR_BAD_ATYP = -1, ADDR_BAD = -2 };

void proxy_socks5_init(struct proxy_socks5_parser *p, const struct proxy_auth *auth)
{
    memset(p, 0, sizeof(*p));
    p->auth = auth;
}

/* ATYP ADDR PORT at a: how long it is (ADDR_MORE until all of it is there) and what it says. */
static int parse_addr(const uint8_t *a, size_t len, struct proxy_target *t, size_t *alen)
{
    if (len < 1)
        return ADDR_MORE;
    size_t need;
    switch (a[0]) {
    case ATYP_V4:
        need = 1 + 4 + 2;
        break;
    case ATYP_V6:
        need = 1 + 16 + 2;
        break;
    case ATYP_NAME:
        if (len < 2)
            return ADDR_MORE;
        need = 2 + a[1] + 2;
        break;
    default:
        return ADDR_BAD_ATYP;
    }
    if (len < need)
        return ADDR_MORE;
    *alen = need;
    memset(t, 0, sizeof(*t));
    t->ep.port = (uint16_t)(a[need - 2] << 8 | a[need - 1]);
    if (a[0] == ATYP_V4) {
        base_addr_v4(&t->ep.addr, a + 1);
    } else if (a[0] == ATYP_V6) {
        base_addr_v6(&t->ep.addr, a + 1);
    } else {
        /* A name with an embedded NUL could be read as a different, shorter name later. */
        if (a[1] == 0 || memchr(a + 2, 0, a[1]))
            return ADDR_BAD;
        memcpy(t->name, a + 2, a[1]);
        t->name[a[1]] = 0;
    }
    return ADDR_OK;
}

/* How many bytes the current message needs given what is buffered (0 = unknown yet, take 1). */
static size_t message_len(const struct proxy_socks5_parser *p)
{
    const uint8_t *b = p->buf;
    switch (p->state) {
    case PROXY_SOCKS5_S_GREETING:
        return p->len < 2 ? 2 : 2 + (size_t)b[1];
    case PROXY_SOCKS5_S_AUTH:
        if (p->len < 2)
            return 2;
        if (p->len < 3 + (size_t)b[1])
            return 3 + (size_t)b[1];
        return 3 + (size_t)b[1] + b[2 + b[1]];
    case PROXY_SOCKS5_S_REQUEST:
        if (p->len < 5)
            return 5;
        switch (b[3]) {
        case ATYP_V4:
            return 4 + 4 + 2;
        case ATYP_V6:
            return 4 + 16 + 2;
        case ATYP_NAME:
            return 4 + 1 + (size_t)b[4] + 2;
        default:
            return p->len; /* let the parser reject it now */
        }
    default:
        return 0;
    }
}

static enum proxy_socks5_event fail(struct proxy_socks5_parser *p, struct proxy_socks5_result *r,
                                    const uint8_t *rep, size_t n)
{
    p->state = PROXY_SOCKS5_S_FAILED;
    if (n)
        memcpy(r->reply, rep, n);
    r->reply_len = n;
    return PROXY_SOCKS5_FAIL;
}

static enum proxy_socks5_event fail_reply(struct proxy_socks5_parser *p,
                                          struct proxy_socks5_result *r, uint8_t rep)
{
    p->state = PROXY_SOCKS5_S_FAILED;
    r->reply_len = proxy_socks5_reply(r->reply, rep, NULL);
    return PROXY_SOCKS5_FAIL;
}

static int auth_required(const struct proxy_socks5_parser *p)
{
    return p->auth && p->auth->enabled;
}

static enum proxy_socks5_event on_greeting(struct proxy_socks5_parser *p,
                                           struct proxy_socks5_result *r)
{
    if (p->buf[0] != 5)
        return fail(p, r, NULL, 0); /* not SOCKS5: nothing sensible to answer */
    uint8_t want = auth_required(p) ? 0x02 : 0x00;
    for (size_t i = 0; i < p->buf[1]; i++) {
        if (p->buf[2 + i] == want) {
            p->state = want == 0x02 ? PROXY_SOCKS5_S_AUTH : PROXY_SOCKS5_S_REQUEST;
            r->reply[0] = 5;
            r->reply[1] = want;
            r->reply_len = 2;
            return PROXY_SOCKS5_SEND;
        }
    }
    static const uint8_t none[2] = {5, 0xff};
    return fail(p, r, none, 2);
}

static enum proxy_socks5_event on_auth(struct proxy_socks5_parser *p, struct proxy_socks5_result *r)
{
    static const uint8_t bad[2] = {1, 1};
    const uint8_t *b = p->buf;
    if (b[0] != 1)
        return fail(p, r, bad, 2);
    size_t ulen = b[1], plen = b[2 + ulen];
    if (!proxy_auth_check(p->auth, b + 2, ulen, b + 3 + ulen, plen))
        return fail(p, r, bad, 2);
    p->state = PROXY_SOCKS5_S_REQUEST;
    r->reply[0] = 1;
    r->reply[1] = 0;
    r->reply_len = 2;
    return PROXY_SOCKS5_SEND;
}

static enum proxy_socks5_event on_request(struct proxy_socks5_parser *p,
                                          struct proxy_socks5_result *r)
{
    const uint8_t *b = p->buf;
    if (b[0] != 5)
        return fail_reply(p, r, PROXY_SOCKS5_REP_FAIL);
    size_t alen;
    int rc = parse_addr(b + 3, p->len - 3, &r->target, &alen);
    if (rc == ADDR_BAD_ATYP)
        return fail_reply(p, r, PROXY_SOCKS5_REP_ATYP);
    if (rc != ADDR_OK)
        return fail_reply(p, r, PROXY_SOCKS5_REP_HOST_UNREACH);
    r->cmd = b[1];
    if (r->cmd != PROXY_SOCKS5_CMD_CONNECT && r->cmd != PROXY_SOCKS5_CMD_UDP)
        return fail_reply(p, r, PROXY_SOCKS5_REP_CMD); /* BIND and unknown commands */
    r->target.proto = r->cmd == PROXY_SOCKS5_CMD_UDP ? PROXY_UDP : PROXY_TCP;
    r->reply_len = 0;
    p->state = PROXY_SOCKS5_S_DONE;
    return PROXY_SOCKS5_REQUEST;
}

enum proxy_socks5_event proxy_socks5_input(struct proxy_socks5_parser *p, const uint8_t *data,
                                           size_t len, size_t *used, struct proxy_socks5_result *r)
{
    *used = 0;
    r->reply_len = 0;
    if (p->state == PROXY_SOCKS5_S_DONE || p->state == PROXY_SOCKS5_S_FAILED)
        return PROXY_SOCKS5_MORE;
    while (*used < len) {
        size_t need = message_len(p);
        if (need > sizeof(p->buf))
            return fail(p, r, NULL, 0); /* cannot happen with the formats above */
        if (p->len < need) {
            size_t n = need - p->len;
            if (n > len - *used)
                n = len - *used;
            memcpy(p->buf + p->len, data + *used, n);
            p->len += n;
            *used += n;
        }
        if (p->len < message_len(p))
            continue;
        enum proxy_socks5_event ev;
        switch (p->state) {
        case PROXY_SOCKS5_S_GREETING:
            ev = on_greeting(p, r);
            break;
        case PROXY_SOCKS5_S_AUTH:
            ev = on_auth(p, r);
            break;
        default:
            ev = on_request(p, r);
            break;
        }
        /* The auth message held the password. */
        sodium_memzero(p->buf, p->len);
        p->len = 0;
        return ev;
    }
    return PROXY_SOCKS5_MORE;
}

size_t proxy_socks5_reply(uint8_t out[PROXY_SOCKS5_REPLY_MAX], uint8_t rep,
                          const struct base_endpoint *bnd)
{
    out[0] = 5;
    out[1] = rep;
    out[2] = 0;
    if (bnd && bnd->addr.family == AF_INET6) {
        out[3] = ATYP_V6;
        memcpy(out + 4, bnd->addr.ip, 16);
        out[20] = (uint8_t)(bnd->port >> 8);
        out[21] = (uint8_t)bnd->port;
        return 22;
    }
    out[3] = ATYP_V4;
    memset(out + 4, 0, 6);
    if (bnd && bnd->addr.family == AF_INET) {
        memcpy(out + 4, bnd->addr.ip, 4);
        out[8] = (uint8_t)(bnd->port >> 8);
        out[9] = (uint8_t)bnd->port;
    }
    return 10;
}

int proxy_socks5_udp_parse(const uint8_t *data, size_t len, struct proxy_target *t, size_t *hdr_len)
{
    /* RSV RSV FRAG; reassembly is optional in RFC 1928 and we do not do it. */
    if (len < 4 || data[2] != 0)
        return -1;
    size_t alen;
    if (parse_addr(data + 3, len - 3, t, &alen) != ADDR_OK)
        return -1;
    t->proto = PROXY_UDP;
    *hdr_len = 3 + alen;
    return 0;
}

size_t proxy_socks5_udp_header(uint8_t out[PROXY_SOCKS5_UDP_HDR_MAX],
                               const struct base_endpoint *from)
{
    uint8_t rep[PROXY_SOCKS5_REPLY_MAX];
    size_t n = proxy_socks5_reply(rep, 0, from);
    out[0] = 0;
    out[1] = 0;
    out[2] = 0;
    memcpy(out + 3, rep + 3, n - 3);
    return n;
}
