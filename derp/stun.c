/*
 * STUN: parse a binding request, build the response; then the UDP socket that receives a
 * datagram, answers it from a stack buffer (uv_udp_try_send: a STUN answer that does not go out
 * at once is dropped, as a lost datagram would be), and counts what it ignored.
 */
#include <string.h>

#include "stun.h"

#define STUN_MAGIC 0x2112A442u
#define STUN_BINDING_REQ 0x0001
#define STUN_BINDING_OK 0x0101
#define STUN_XOR_MAPPED 0x0020

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int header_ok(const uint8_t *p, size_t len, uint16_t type)
{
    return len >= DERP_STUN_HEADER_LEN && get16(p) == type && get32(p + 4) == STUN_MAGIC &&
           get16(p + 2) == len - DERP_STUN_HEADER_LEN && (get16(p + 2) & 3) == 0;
}

int derp_stun_parse_request(const uint8_t *p, size_t len, uint8_t txid[DERP_STUN_TXID_LEN])
{
    if (!header_ok(p, len, STUN_BINDING_REQ))
        return BASE_EPARSE;
    /* Attributes must be well-formed TLVs, padded to 4. */
    for (size_t off = DERP_STUN_HEADER_LEN; off < len;) {
        if (len - off < 4)
            return BASE_EPARSE;
        size_t alen = ((size_t)get16(p + off + 2) + 3u) & ~3u;
        if (len - off - 4 < alen)
            return BASE_EPARSE;
        off += 4 + alen;
    }
    memcpy(txid, p + 8, DERP_STUN_TXID_LEN);
    return 0;
}

/* The XOR pad: the cookie, then (for IPv6) the transaction id. */
static void xor_pad(uint8_t pad[16], const uint8_t txid[DERP_STUN_TXID_LEN])
{
    pad[0] = 0x21, pad[1] = 0x12, pad[2] = 0xA4, pad[3] = 0x42;
    memcpy(pad + 4, txid, DERP_STUN_TXID_LEN);
}

size_t derp_stun_build_response(uint8_t *out, const uint8_t txid[DERP_STUN_TXID_LEN],
                                const struct base_endpoint *from)
{
    size_t alen = from->addr.family == AF_INET6 ? 20 : 8;
    uint8_t pad[16];
    xor_pad(pad, txid);
    put16(out, STUN_BINDING_OK);
    put16(out + 2, (uint16_t)(4 + alen));
    memcpy(out + 4, pad, 4);
    memcpy(out + 8, txid, DERP_STUN_TXID_LEN);
    uint8_t *a = out + DERP_STUN_HEADER_LEN;
    put16(a, STUN_XOR_MAPPED);
    put16(a + 2, (uint16_t)alen);
    a[4] = 0;
    a[5] = from->addr.family == AF_INET6 ? 2 : 1;
    put16(a + 6, from->port ^ 0x2112);
    for (size_t i = 0; i < alen - 4; i++)
        a[8 + i] = from->addr.ip[i] ^ pad[i];
    return DERP_STUN_HEADER_LEN + 4 + alen;
}

int derp_stun_parse_response(const uint8_t *p, size_t len, const uint8_t txid[DERP_STUN_TXID_LEN],
                             struct base_endpoint *out)
{
    if (!header_ok(p, len, STUN_BINDING_OK) || memcmp(p + 8, txid, DERP_STUN_TXID_LEN) != 0)
        return BASE_EPARSE;
    uint8_t pad[16];
    xor_pad(pad, txid);
    for (size_t off = DERP_STUN_HEADER_LEN; len - off >= 4;) {
        uint16_t type = get16(p + off), alen = get16(p + off + 2);
        if (len - off - 4 < alen)
            return BASE_EPARSE;
        const uint8_t *a = p + off + 4;
        if (type == STUN_XOR_MAPPED && alen >= 8) {
            size_t iplen = a[1] == 2 ? 16 : 4;
            if (alen < 4 + iplen)
                return BASE_EPARSE;
            uint8_t ip[16];
            for (size_t i = 0; i < iplen; i++)
                ip[i] = a[4 + i] ^ pad[i];
            memset(out, 0, sizeof(*out));
            if (iplen == 16)
                base_addr_v6(&out->addr, ip);
            else
                base_addr_v4(&out->addr, ip);
            out->port = get16(a + 2) ^ 0x2112;
            return 0;
        }
        off += 4 + (((size_t)alen + 3u) & ~3u);
    }
    return BASE_EPARSE;
}

static void stun_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct derp_stun *s = container_of((uv_udp_t *)h, struct derp_stun, udp);
    *buf = uv_buf_init((char *)s->rx, sizeof(s->rx));
}

static void stun_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *sa,
                      unsigned flags)
{
    struct derp_stun *s = container_of(u, struct derp_stun, udp);
    uint8_t txid[DERP_STUN_TXID_LEN];
    struct base_endpoint from;
    if (n <= 0 || !sa)
        return;
    if ((flags & UV_UDP_PARTIAL) ||
        derp_stun_parse_request((uint8_t *)buf->base, (size_t)n, txid) ||
        base_endpoint_from_sockaddr(&from, sa) != 0) {
        s->counters->ignored++;
        return;
    }
    s->counters->requests++;
    uint8_t out[DERP_STUN_RESPONSE_MAX];
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)derp_stun_build_response(out, txid, &from));
    if (uv_udp_try_send(u, &b, 1, sa) < 0)
        s->counters->send_errors++;
}

int derp_stun_start(struct derp_stun *s, uv_loop_t *loop, const struct base_endpoint *addr,
                    struct derp_stun_counters *counters, const struct base_logger *log)
{
    struct sockaddr_storage ss;
    s->counters = counters;
    s->log = log;
    base_endpoint_to_sockaddr(addr, &ss);
    uv_udp_init(loop, &s->udp);
    int rc = uv_udp_bind(&s->udp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&s->udp, stun_alloc, stun_recv);
    if (rc != 0)
        return rc; /* the handle is open either way: derp_stun_close it */
    char eb[BASE_ENDPOINT_STRLEN];
    base_logf(log, BASE_LOG_INFO, "event=stun_listen addr=%s",
              base_endpoint_format(addr, eb, sizeof(eb)));
    return 0;
}

static void stun_closed(uv_handle_t *h)
{
    struct derp_stun *s = container_of((uv_udp_t *)h, struct derp_stun, udp);
    if (s->on_closed)
        s->on_closed(s->arg);
}

void derp_stun_close(struct derp_stun *s, void (*on_closed)(void *arg), void *arg)
{
    s->on_closed = on_closed;
    s->arg = arg;
    uv_close((uv_handle_t *)&s->udp, stun_closed);
}
