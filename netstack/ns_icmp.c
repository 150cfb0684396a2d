/* ICMP: echo (ping) with replies matched by id/seq, unreachable answers for no-route, and the
 * ICMP errors that make a connect or a flow fail (lwIP ignores them for TCP). */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define ICMP4_ECHO_REPLY 0
#define ICMP4_UNREACH 3
#define ICMP4_ECHO 8
#define ICMP6_UNREACH 1
#define ICMP6_ECHO 128
#define ICMP6_ECHO_REPLY 129

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t acc)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        acc += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        acc += (uint32_t)(p[len - 1] << 8);
    return acc;
}

static uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* An ICMP/ICMPv6 packet from src to dst around the body (type, code, ... already in body[0..]).
 * Returns its length; out has room for 48 + body_len. */
static size_t build_icmp(uint8_t *out, const struct base_addr *src, const struct base_addr *dst,
                         uint8_t *body, size_t body_len)
{
    if (src->family == AF_INET) {
        memset(out, 0, 20);
        out[0] = 0x45;
        put16(out + 2, (uint16_t)(20 + body_len));
        put16(out + 4, (uint16_t)randombytes_random());
        out[8] = 64;
        out[9] = 1;
        memcpy(out + 12, src->ip, 4);
        memcpy(out + 16, dst->ip, 4);
        put16(out + 10, fold(sum16(out, 20, 0)));
        body[2] = body[3] = 0;
        put16(body + 2, fold(sum16(body, body_len, 0)));
        memcpy(out + 20, body, body_len);
        return 20 + body_len;
    }
    memset(out, 0, 40);
    out[0] = 0x60;
    put16(out + 4, (uint16_t)body_len);
    out[6] = 58;
    out[7] = 64;
    memcpy(out + 8, src->ip, 16);
    memcpy(out + 24, dst->ip, 16);
    uint8_t pseudo[8] = {0};
    pseudo[2] = (uint8_t)(body_len >> 8);
    pseudo[3] = (uint8_t)body_len;
    pseudo[7] = 58;
    body[2] = body[3] = 0;
    uint32_t acc = sum16(out + 8, 32, 0);
    acc = sum16(pseudo, 8, acc);
    put16(body + 2, fold(sum16(body, body_len, acc)));
    memcpy(out + 40, body, body_len);
    return 40 + body_len;
}

static int is_icmp_error(const uint8_t *pkt, size_t len)
{
    if ((pkt[0] >> 4) == 4) {
        size_t hl = (size_t)(pkt[0] & 0x0f) * 4;
        if (pkt[9] != 1 || len < hl + 1)
            return 0;
        uint8_t t = pkt[hl];
        return t != ICMP4_ECHO && t != ICMP4_ECHO_REPLY;
    }
    return pkt[6] == 58 && len > 40 && pkt[40] < 128;
}

/* Our own packet found no peer: answer it to ourselves as the network would (RFC 1812). */
void ns_icmp_no_route(struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    uint8_t body[1280], out[1280 + 48];
    struct base_addr src = {0}, dst = {0};
    if (len < 20 || is_icmp_error(pkt, len))
        return;
    size_t quote;
    if ((pkt[0] >> 4) == 4) {
        src.family = dst.family = AF_INET;
        memcpy(src.ip, pkt + 16, 4);
        memcpy(dst.ip, pkt + 12, 4);
        quote = len < 548 ? len : 548;
        body[0] = ICMP4_UNREACH;
        body[1] = 0; /* net unreachable: no peer's allowed IPs cover it (ENETUNREACH) */
    } else {
        if (len < 40)
            return;
        src.family = dst.family = AF_INET6;
        memcpy(src.ip, pkt + 24, 16);
        memcpy(dst.ip, pkt + 8, 16);
        quote = len < 1280 - 48 ? len : 1280 - 48;
        body[0] = ICMP6_UNREACH;
        body[1] = 0; /* no route to destination */
    }
    memset(body + 4, 0, 4);
    memcpy(body + 8, pkt, quote);
    size_t n = build_icmp(out, &src, &dst, body, 8 + quote);
    ns_stack_input(ns, out, n); /* inside lwIP: queued for the next loop turn */
}

/* ---- ping ---- */

static void on_ping_timer_closed(uv_handle_t *h)
{
    struct ns_ping *p = container_of((uv_timer_t *)h, struct ns_ping, timer);
    struct ns_stack *ns = p->ns;
    free(p);
    ns->ping_timers--;
    ns_stack_maybe_done(ns);
}

static void ping_release(struct ns_ping *p)
{
    base_list_remove(&p->link);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_ping_timer_closed);
}

static void ping_done(struct ns_ping *p, int status)
{
    uint64_t rtt = uv_now(p->ns->loop) - p->sent_ms;
    ns_ping_fn cb = p->cb;
    void *data = p->data;
    ping_release(p);
    cb(data, status, status == 0 ? rtt : 0);
}

static void ping_timeout(uv_timer_t *t)
{
    ping_done(container_of(t, struct ns_ping, timer), -ETIMEDOUT);
}

static struct ns_ping *ping_find(struct ns_stack *ns, const struct base_addr *peer, uint16_t id,
                                 uint16_t seq)
{
    struct base_list *pos;
    base_list_foreach (pos, &ns->pings) {
        struct ns_ping *p = container_of(pos, struct ns_ping, link);
        if (p->id == id && p->seq == seq && base_addr_equal(&p->dst, peer))
            return p;
    }
    return NULL;
}

static void ping_emit(struct ns_stack *ns, const struct base_addr *src, struct ns_ping *p,
                      size_t payload_len)
{
    uint8_t body[8 + 1400], out[48 + 8 + 1400];
    body[0] = p->dst.family == AF_INET ? ICMP4_ECHO : ICMP6_ECHO;
    body[1] = 0;
    put16(body + 4, p->id);
    put16(body + 6, p->seq);
    for (size_t i = 0; i < payload_len; i++)
        body[8 + i] = (uint8_t)i;
    size_t n = build_icmp(out, src, &p->dst, body, 8 + payload_len);
    ns_enter();
    ns_emit(ns, out, n);
    ns_leave();
}

int ns_ping_send(struct ns_stack *ns, const struct base_addr *dst, uint16_t seq, size_t payload_len,
                 uint64_t timeout_ms, ns_ping_fn cb, void *data, struct ns_ping **out)
{
    if (out)
        *out = NULL;
    if (ns->state != NS_STACK_OPEN)
        return BASE_ECLOSING;
    const struct base_addr *src = dst ? ns_stack_addr_for(ns, dst->family) : NULL;
    if (!src || !cb || payload_len > 1400)
        return -EINVAL;
    struct ns_ping *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->ns = ns;
    p->dst = *dst;
    p->id = ns->ping_id++;
    p->seq = seq;
    p->cb = cb;
    p->data = data;
    p->sent_ms = uv_now(ns->loop);
    uv_timer_init(ns->loop, &p->timer);
    ns->ping_timers++;
    uv_timer_start(&p->timer, ping_timeout, timeout_ms, 0);
    base_list_push_front(&ns->pings, &p->link);
    ping_emit(ns, src, p, payload_len);
    if (out)
        *out = p;
    return 0;
}

void ns_ping_cancel(struct ns_ping *p)
{
    ping_release(p);
}

/* Every ping still waiting hears BASE_ECLOSING and is released. */
void ns_ping_stack_closing(struct ns_stack *ns)
{
    struct base_list *first;
    while ((first = base_list_first(&ns->pings)))
        ping_done(container_of(first, struct ns_ping, link), BASE_ECLOSING);
}

/* ---- ICMP from the tunnel ---- */

/* The flow an ICMP error quotes: our packet from local to remote. 0 when it parses. */
static int quoted_flow(const uint8_t *q, size_t qlen, int *proto, struct base_endpoint *local,
                       struct base_endpoint *remote)
{
    size_t hl;
    memset(local, 0, sizeof(*local));
    memset(remote, 0, sizeof(*remote));
    if (qlen >= 20 && (q[0] >> 4) == 4) {
        hl = (size_t)(q[0] & 0x0f) * 4;
        if (hl < 20 || qlen < hl + 8)
            return -1;
        local->addr.family = remote->addr.family = AF_INET;
        memcpy(local->addr.ip, q + 12, 4);
        memcpy(remote->addr.ip, q + 16, 4);
        *proto = q[9];
    } else if (qlen >= 48 && (q[0] >> 4) == 6) {
        hl = 40;
        local->addr.family = remote->addr.family = AF_INET6;
        memcpy(local->addr.ip, q + 8, 16);
        memcpy(remote->addr.ip, q + 24, 16);
        *proto = q[6];
    } else {
        return -1;
    }
    local->port = get16(q + hl);
    remote->port = get16(q + hl + 2);
    if (*proto == 1 || *proto == 58) { /* echo: the id stands for our port, seq for theirs */
        local->port = get16(q + hl + 4);
        remote->port = get16(q + hl + 6);
    }
    if ((*proto == 1 && q[hl] != ICMP4_ECHO) || (*proto == 58 && q[hl] != ICMP6_ECHO))
        return -1;
    return 0;
}

/* The error an unreachable names: port unreachable (v4 code 3, v6 code 4) refuses, net
 * unreachable / no route (code 0) is a network without a route, the rest a host. */
static int unreach_err(bool v4, uint8_t code)
{
    if (code == (v4 ? 3 : 4))
        return -ECONNREFUSED;
    return code == 0 ? -ENETUNREACH : -EHOSTUNREACH;
}

static void icmp_error(struct ns_stack *ns, const uint8_t *q, size_t qlen, int err)
{
    int proto;
    struct base_endpoint local, remote;
    if (quoted_flow(q, qlen, &proto, &local, &remote) != 0 || !ns_stack_owns(ns, &local.addr))
        return;
    if (proto == 6) {
        ns_tcp_icmp_error(ns, &local, &remote, err);
    } else if (proto == 17) {
        ns_udp_icmp_error(ns, &local, &remote, err);
    } else {
        struct ns_ping *p = ping_find(ns, &remote.addr, local.port, remote.port);
        if (p)
            ping_done(p, err);
    }
}

/* 1 when the packet was ours to take (echo replies, errors); lwIP gets the rest. */
int ns_icmp_input(struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    bool v4 = (pkt[0] >> 4) == 4;
    size_t hl = v4 ? (size_t)(pkt[0] & 0x0f) * 4 : 40;
    const uint8_t *icmp = pkt + hl;
    size_t ilen = len - hl;
    struct base_addr from;
    if (v4)
        base_addr_v4(&from, pkt + 12);
    else
        base_addr_v6(&from, pkt + 8);
    uint8_t type = icmp[0], code = icmp[1];
    if (type == (v4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY)) {
        struct ns_ping *p = ping_find(ns, &from, get16(icmp + 4), get16(icmp + 6));
        if (p)
            ping_done(p, 0);
        return 1;
    }
    if (type == (v4 ? ICMP4_UNREACH : ICMP6_UNREACH)) {
        icmp_error(ns, icmp + 8, ilen - 8, unreach_err(v4, code));
        return 1;
    }
    /* lwIP answers echo requests; nothing else (ND, MLD, redirects) has a use in a tunnel. */
    return type != (v4 ? ICMP4_ECHO : ICMP6_ECHO);
}
