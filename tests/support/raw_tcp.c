/* The raw TCP peer (raw_tcp.h). Flow: tn_raw_init and tn_raw_stack_new; tn_raw_output parses what the stack sends
 * (parse_sack for its options); tn_raw_build / tn_raw_send make our segments; tn_raw_handshake
 * opens a connection with them; the stack-side callbacks come last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "raw_tcp.h"

enum { SYN = 0x02, ACK = 0x10 };

void tn_raw_init(struct tn_raw *r)
{
    memset(r, 0, sizeof(*r));
    base_addr_parse(&r->peer, "100.64.0.9", 10);
    base_addr_parse(&r->stack, "100.64.0.2", 10);
}

int tn_raw_stack_new(struct tn_raw *r, uv_loop_t *loop, struct base_budget *budget)
{
    tn_raw_init(r);
    struct ns_config cfg = {
        .addr4 = r->stack, .output = tn_raw_output, .output_ctx = r, .budget = budget};
    int rc = ns_stack_new(loop, &cfg, &r->ns);
    return rc ? rc : ns_stack_handle_tcp(r->ns, NULL, 80, tn_raw_on_accept, r);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

/* The SACK option's blocks among the TCP options t[20..hl). */
static void parse_sack(struct tn_raw_seen *s, const uint8_t *t, size_t hl)
{
    s->n_sack = 0;
    for (size_t i = 20; i < hl;) {
        if (t[i] == 0)
            break;
        if (t[i] == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hl || t[i + 1] < 2)
            break;
        if (t[i] == 5)
            for (size_t b = i + 2; b + 8 <= i + t[i + 1] && s->n_sack < 4; b += 8, s->n_sack++) {
                s->sack[s->n_sack][0] = get32(t + b);
                s->sack[s->n_sack][1] = get32(t + b + 4);
            }
        i += t[i + 1];
    }
}

int tn_raw_output(void *ctx, const uint8_t *pkt, size_t len)
{
    struct tn_raw *r = ctx;
    if (len < 40 || pkt[9] != 6)
        return 0;
    const uint8_t *t = pkt + (pkt[0] & 15) * 4;
    struct tn_raw_seen *s = &r->last;
    r->nseg++;
    s->seq = get32(t + 4);
    s->ack = get32(t + 8);
    s->flags = t[13];
    s->sport = (uint16_t)(t[0] << 8 | t[1]);
    s->win = (uint16_t)(t[14] << 8 | t[15]);
    parse_sack(s, t, (size_t)(t[12] >> 4) * 4);
    return 0;
}

size_t tn_raw_build(const struct tn_raw *r, const struct tn_raw_conn *c, uint32_t seq,
                    uint8_t flags, const uint8_t *data, size_t n, uint8_t *pkt)
{
    static const uint8_t opts[12] = {2, 4, 0x05, 0x64, 1, 3, 3, 7, 1, 1, 4, 2};
    size_t opt = flags & SYN ? (c->sack_ok ? 12 : 8) : 0, hl = 20 + opt, len = 20 + hl + n;
    assert_true(len <= TN_RAW_SEG_MAX);
    uint16_t dport = c->dport ? c->dport : 80;
    memset(pkt, 0, 20 + hl);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)(len >> 8);
    pkt[3] = (uint8_t)len;
    pkt[8] = 64;
    pkt[9] = 6;
    memcpy(pkt + 12, r->peer.ip, 4);
    memcpy(pkt + 16, r->stack.ip, 4);
    uint8_t *t = pkt + 20;
    t[0] = (uint8_t)(c->sport >> 8);
    t[1] = (uint8_t)c->sport;
    t[2] = (uint8_t)(dport >> 8);
    t[3] = (uint8_t)dport;
    uint32_t s = htonl(seq), a = htonl(c->rcv_nxt);
    memcpy(t + 4, &s, 4);
    memcpy(t + 8, &a, 4);
    t[12] = (uint8_t)((hl / 4) << 4);
    t[13] = flags;
    t[14] = t[15] = 0xff;
    memcpy(t + 20, opts, opt);
    if (n)
        memcpy(pkt + 20 + hl, data, n);
    return len;
}

void tn_raw_send(struct tn_raw *r, const struct tn_raw_conn *c, uint32_t seq, uint8_t flags,
                 const uint8_t *data, size_t n)
{
    uint8_t pkt[TN_RAW_SEG_MAX];
    size_t len = tn_raw_build(r, c, seq, flags, data, n, pkt);
    ns_stack_input(r->ns, pkt, len);
}

int tn_raw_handshake(struct tn_raw *r, struct tn_raw_conn *c)
{
    tn_raw_send(r, c, c->snd_nxt++, SYN, NULL, 0);
    if ((r->last.flags & (SYN | ACK)) != (SYN | ACK))
        return -1;
    c->rcv_nxt = r->last.seq + 1;
    tn_raw_send(r, c, c->snd_nxt, ACK, NULL, 0);
    return 0;
}

void tn_raw_on_read(struct ns_conn *nc, const uint8_t *d, size_t len)
{
    struct tn_raw_conn *c = ns_conn_data(nc);
    if (!d) {
        c->eof = 1;
        return;
    }
    assert_true(c->ngot + len <= c->cap);
    memcpy(c->got + c->ngot, d, len);
    c->ngot += len;
    ns_conn_consumed(nc, len);
}

const struct ns_conn_cbs tn_raw_cbs = {.on_read = tn_raw_on_read};

void tn_raw_on_accept(void *ctx, struct ns_conn *nc)
{
    struct tn_raw *r = ctx;
    assert_non_null(r->accepting);
    r->accepting->conn = nc;
    ns_conn_set_cbs(nc, &tn_raw_cbs, r->accepting);
    if (r->pause_on_accept)
        ns_conn_read_pause(nc, 1);
}
