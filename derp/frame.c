/*
 * The DERP frame codec. Reading: derp_reader_feed walks a chunk, handing whole frames out in
 * place, reassembling split ones, streaming past unknown types. Then the payload parsers, one
 * per frame shape. Then the builders.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "frame.h"

/* A reassembly buffer above this size is given back after use, so idle clients stay small. */
#define READER_KEEP_CAP 4096

bool derp_frame_type_known(uint8_t type)
{
    return (type >= DERP_FRAME_SERVER_KEY && type <= DERP_FRAME_FORWARD_PACKET) ||
           (type >= DERP_FRAME_WATCH_CONNS && type <= DERP_FRAME_RESTARTING);
}

const char *derp_frame_type_name(uint8_t type)
{
    static const char *const low[] = {
        "?",           "server_key",   "client_info",   "server_info",
        "send_packet", "recv_packet",  "keep_alive",    "note_preferred",
        "peer_gone",   "peer_present", "forward_packet"};
    static const char *const high[] = {"watch_conns", "close_peer", "ping",
                                       "pong",        "health",     "restarting"};
    if (type >= DERP_FRAME_SERVER_KEY && type <= DERP_FRAME_FORWARD_PACKET)
        return low[type];
    if (type >= DERP_FRAME_WATCH_CONNS && type <= DERP_FRAME_RESTARTING)
        return high[type - DERP_FRAME_WATCH_CONNS];
    return "unknown";
}

uint32_t derp_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void derp_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void derp_reader_init(struct derp_reader *r, uint32_t max_len)
{
    memset(r, 0, sizeof(*r));
    r->max_len = max_len;
}

void derp_reader_free(struct derp_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->buf_len = r->buf_cap = 0;
}

/* The header is complete: decide between skipping, refusing and gathering. */
static int reader_header_done(struct derp_reader *r)
{
    uint8_t type = r->hdr[0];
    uint32_t len = derp_get_be32(r->hdr + 1);
    if (!derp_frame_type_known(type) && !r->strict) {
        r->skip = len;
        r->skipped++;
        r->hdr_len = 0;
        return 0;
    }
    if (len > r->max_len)
        return BASE_EPARSE;
    if (len > r->buf_cap) {
        uint8_t *nb = realloc(r->buf, len);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->buf_cap = len;
    }
    r->buf_len = 0;
    return 0;
}

static int reader_deliver(struct derp_reader *r, derp_frame_fn fn, void *arg)
{
    struct derp_frame f = {r->hdr[0], derp_get_be32(r->hdr + 1), r->buf};
    r->hdr_len = 0;
    r->buf_len = 0;
    int rc = fn(arg, &f);
    if (r->buf_cap > READER_KEEP_CAP)
        derp_reader_free(r);
    return rc;
}

/* Whole frames straight from the chunk, while they are whole. Returns bytes consumed. */
static size_t reader_fast(struct derp_reader *r, const uint8_t *p, size_t n, derp_frame_fn fn,
                          void *arg, int *rc)
{
    size_t off = 0;
    while (n - off >= DERP_HEADER_LEN) {
        uint32_t len = derp_get_be32(p + off + 1);
        if ((!r->strict && !derp_frame_type_known(p[off])) || len > r->max_len ||
            n - off - DERP_HEADER_LEN < len)
            break;
        struct derp_frame f = {p[off], len, p + off + DERP_HEADER_LEN};
        off += DERP_HEADER_LEN + len;
        if ((*rc = fn(arg, &f)) != 0)
            break;
    }
    return off;
}

int derp_reader_feed(struct derp_reader *r, const uint8_t *data, size_t len, size_t *used,
                     derp_frame_fn fn, void *arg)
{
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        if (r->skip) {
            size_t n = len - off < r->skip ? len - off : (size_t)r->skip;
            r->skip -= n;
            off += n;
        } else if (r->hdr_len == 0) {
            off += reader_fast(r, data + off, len - off, fn, arg, &rc);
            if (rc != 0 || off == len)
                break;
            size_t n = len - off < DERP_HEADER_LEN ? len - off : DERP_HEADER_LEN;
            memcpy(r->hdr, data + off, n);
            r->hdr_len = n;
            off += n;
            if (n == DERP_HEADER_LEN)
                rc = reader_header_done(r);
        } else if (r->hdr_len < DERP_HEADER_LEN) {
            size_t n = DERP_HEADER_LEN - r->hdr_len;
            n = len - off < n ? len - off : n;
            memcpy(r->hdr + r->hdr_len, data + off, n);
            r->hdr_len += n;
            off += n;
            if (r->hdr_len == DERP_HEADER_LEN)
                rc = reader_header_done(r);
        } else {
            size_t want = derp_get_be32(r->hdr + 1) - r->buf_len;
            size_t n = len - off < want ? len - off : want;
            memcpy(r->buf + r->buf_len, data + off, n);
            r->buf_len += n;
            off += n;
        }
        /* A known frame whose header is in and whose payload is complete (maybe empty). */
        if (rc == 0 && r->hdr_len == DERP_HEADER_LEN && !r->skip &&
            r->buf_len == derp_get_be32(r->hdr + 1))
            rc = reader_deliver(r, fn, arg);
    }
    if (used)
        *used = off;
    return rc;
}

int derp_parse_packet(const struct derp_frame *f, const uint8_t **key, const uint8_t **pkt,
                      size_t *pkt_len)
{
    if (f->len < DERP_KEY_LEN || f->len - DERP_KEY_LEN > DERP_MAX_PACKET)
        return BASE_EPARSE;
    *key = f->payload;
    *pkt = f->payload + DERP_KEY_LEN;
    *pkt_len = f->len - DERP_KEY_LEN;
    return 0;
}

int derp_parse_forward(const struct derp_frame *f, const uint8_t **src, const uint8_t **dst,
                       const uint8_t **pkt, size_t *pkt_len)
{
    if (f->len < 2 * DERP_KEY_LEN || f->len - 2 * DERP_KEY_LEN > DERP_MAX_PACKET)
        return BASE_EPARSE;
    *src = f->payload;
    *dst = f->payload + DERP_KEY_LEN;
    *pkt = f->payload + 2 * DERP_KEY_LEN;
    *pkt_len = f->len - 2 * DERP_KEY_LEN;
    return 0;
}

int derp_parse_peer_gone(const struct derp_frame *f, const uint8_t **key, uint8_t *reason)
{
    if (f->len != DERP_KEY_LEN && f->len != DERP_KEY_LEN + 1)
        return BASE_EPARSE;
    *key = f->payload;
    *reason = f->len > DERP_KEY_LEN ? f->payload[DERP_KEY_LEN] : DERP_PEER_GONE_DISCONNECTED;
    return 0;
}

int derp_parse_key(const struct derp_frame *f, const uint8_t **key, bool exact)
{
    if (f->len < DERP_KEY_LEN || (exact && f->len != DERP_KEY_LEN))
        return BASE_EPARSE;
    *key = f->payload;
    return 0;
}

int derp_parse_server_key(const struct derp_frame *f, const uint8_t **key)
{
    if (f->type != DERP_FRAME_SERVER_KEY || f->len < DERP_MAGIC_LEN + DERP_KEY_LEN ||
        memcmp(f->payload, DERP_MAGIC, DERP_MAGIC_LEN) != 0)
        return BASE_EPARSE;
    *key = f->payload + DERP_MAGIC_LEN;
    return 0;
}

int derp_parse_restarting(const struct derp_frame *f, uint32_t *reconnect_ms, uint32_t *try_for_ms)
{
    if (f->len < 8)
        return BASE_EPARSE;
    *reconnect_ms = derp_get_be32(f->payload);
    *try_for_ms = derp_get_be32(f->payload + 4);
    return 0;
}

void derp_put_header(uint8_t *out, uint8_t type, uint32_t len)
{
    out[0] = type;
    derp_put_be32(out + 1, len);
}

size_t derp_build(uint8_t *out, uint8_t type, const void *p, size_t len)
{
    derp_put_header(out, type, (uint32_t)len);
    if (len)
        memcpy(out + DERP_HEADER_LEN, p, len);
    return DERP_HEADER_LEN + len;
}

size_t derp_build_packet_head(uint8_t *out, uint8_t type, const uint8_t key[DERP_KEY_LEN],
                              size_t pkt_len)
{
    derp_put_header(out, type, (uint32_t)(DERP_KEY_LEN + pkt_len));
    memcpy(out + DERP_HEADER_LEN, key, DERP_KEY_LEN);
    return DERP_HEADER_LEN + DERP_KEY_LEN;
}

size_t derp_build_forward_head(uint8_t *out, const uint8_t src[DERP_KEY_LEN],
                               const uint8_t dst[DERP_KEY_LEN], size_t pkt_len)
{
    derp_put_header(out, DERP_FRAME_FORWARD_PACKET, (uint32_t)(2 * DERP_KEY_LEN + pkt_len));
    memcpy(out + DERP_HEADER_LEN, src, DERP_KEY_LEN);
    memcpy(out + DERP_HEADER_LEN + DERP_KEY_LEN, dst, DERP_KEY_LEN);
    return DERP_HEADER_LEN + 2 * DERP_KEY_LEN;
}

size_t derp_build_server_key(uint8_t *out, const uint8_t key[DERP_KEY_LEN])
{
    derp_put_header(out, DERP_FRAME_SERVER_KEY, DERP_MAGIC_LEN + DERP_KEY_LEN);
    memcpy(out + DERP_HEADER_LEN, DERP_MAGIC, DERP_MAGIC_LEN);
    memcpy(out + DERP_HEADER_LEN + DERP_MAGIC_LEN, key, DERP_KEY_LEN);
    return DERP_HEADER_LEN + DERP_MAGIC_LEN + DERP_KEY_LEN;
}

size_t derp_build_peer_gone(uint8_t *out, const uint8_t key[DERP_KEY_LEN], uint8_t reason)
{
    derp_put_header(out, DERP_FRAME_PEER_GONE, DERP_KEY_LEN + 1);
    memcpy(out + DERP_HEADER_LEN, key, DERP_KEY_LEN);
    out[DERP_HEADER_LEN + DERP_KEY_LEN] = reason;
    return DERP_HEADER_LEN + DERP_KEY_LEN + 1;
}

size_t derp_build_restarting(uint8_t *out, uint32_t reconnect_ms, uint32_t try_for_ms)
{
    derp_put_header(out, DERP_FRAME_RESTARTING, 8);
    derp_put_be32(out + DERP_HEADER_LEN, reconnect_ms);
    derp_put_be32(out + DERP_HEADER_LEN + 4, try_for_ms);
    return DERP_HEADER_LEN + 8;
}
