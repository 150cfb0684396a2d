/*
 * Packets from the tunnel: ns_stack_input serializes entry into lwIP (queueing while it is
 * busy), ns_process checks the headers lwIP would check (so drops are counted, and so lwIP's
 * parsers never see what they read past), prepares what lwIP needs for a new flow (a listener
 * for a SYN, a flow for a datagram), takes the ICMP that is ours, and feeds the rest to lwIP
 * through the netif that holds the destination, copied once into a recycled buffer
 * (ns_rxpool.c): lwIP may keep it after this call, the engine's buffer it came in may not.
 */
#include "ns_internal.h"

#include <string.h>

#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"

#define NS_MAX_PACKET 65000

void ns_stack_input(struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    if (ns->state != NS_STACK_OPEN)
        return;
    if (ns_lwip_busy()) {
        ns_queue_packet(ns, pkt, len);
        return;
    }
    ns_enter();
    ns_process(ns, pkt, len);
    ns_leave_drain();
}

struct ns_pkt_info {
    struct base_endpoint src, dst;
    int proto;
    const uint8_t *l4;
    size_t l4len;
    size_t iplen;
};

/* lwIP 2.1.3 reads an option's length byte even past the header's end. */
static int tcp_options_bad(const uint8_t *tcp, size_t hl)
{
    for (size_t i = 20; i < hl;) {
        if (tcp[i] == 0)
            return 0;
        if (tcp[i] == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hl || tcp[i + 1] < 2 || i + tcp[i + 1] > hl)
            return 1;
        i += tcp[i + 1];
    }
    return 0;
}

/* Checks the headers lwIP would check, so drops are counted; 0 when well formed. */
static int parse(const uint8_t *pkt, size_t len, struct ns_pkt_info *pi)
{
    memset(pi, 0, sizeof(*pi));
    if (len < 1)
        return -1;
    size_t hl;
    if ((pkt[0] >> 4) == 4) {
        if (len < 20)
            return -1;
        hl = (size_t)(pkt[0] & 0x0f) * 4;
        size_t tot = ((size_t)pkt[2] << 8) | pkt[3];
        if (hl < 20 || tot < hl || tot > len || tot > NS_MAX_PACKET)
            return -1;
        if (((pkt[6] << 8) | pkt[7]) & 0x3fff)
            return -1; /* fragments: the tunnel MTU makes them needless, lwIP is built without */
        pi->src.addr.family = pi->dst.addr.family = AF_INET;
        memcpy(pi->src.addr.ip, pkt + 12, 4);
        memcpy(pi->dst.addr.ip, pkt + 16, 4);
        pi->proto = pkt[9];
        pi->iplen = tot;
    } else if ((pkt[0] >> 4) == 6) {
        if (len < 40)
            return -1;
        hl = 40;
        size_t tot = 40 + (((size_t)pkt[4] << 8) | pkt[5]);
        if (tot > len || tot > NS_MAX_PACKET)
            return -1; /* lwIP's pbufs are 16-bit, with room for headers and slack */
        pi->src.addr.family = pi->dst.addr.family = AF_INET6;
        memcpy(pi->src.addr.ip, pkt + 8, 16);
        memcpy(pi->dst.addr.ip, pkt + 24, 16);
        pi->proto = pkt[6];
        pi->iplen = tot;
        /* Extension headers are never needed in a tunnel (no fragments, no options) and lwIP
     * 2.1.3's parser of them reads past short packets: only plain TCP, UDP, ICMPv6 pass. */
        if (pi->proto != IP_PROTO_TCP && pi->proto != IP_PROTO_UDP && pi->proto != IP6_NEXTH_ICMP6)
            return -1;
    } else {
        return -1;
    }
    pi->l4 = pkt + hl;
    pi->l4len = pi->iplen - hl;
    switch (pi->proto) {
    case IP_PROTO_TCP:
        if (pi->l4len < 20 || (size_t)(pi->l4[12] >> 4) * 4 < 20 ||
            (size_t)(pi->l4[12] >> 4) * 4 > pi->l4len)
            return -1;
        if (tcp_options_bad(pi->l4, (size_t)(pi->l4[12] >> 4) * 4))
            return -1;
        break;
    case IP_PROTO_UDP:
        if (pi->l4len < 8)
            return -1;
        size_t ul = ((size_t)pi->l4[4] << 8) | pi->l4[5];
        if (ul < 8 || ul > pi->l4len)
            return -1;
        break;
    case IP_PROTO_ICMP:
    case IP6_NEXTH_ICMP6:
        if (pi->l4len < 8)
            return -1;
        break;
    default:
        return 0;
    }
    pi->src.port = (uint16_t)((pi->l4[0] << 8) | pi->l4[1]);
    pi->dst.port = (uint16_t)((pi->l4[2] << 8) | pi->l4[3]);
    if (pi->proto == IP_PROTO_ICMP || pi->proto == IP6_NEXTH_ICMP6)
        pi->src.port = pi->dst.port = 0;
    return 0;
}

void ns_process(struct ns_stack *ns, const uint8_t *pkt, size_t len)
{
    struct ns_pkt_info pi;
    if (parse(pkt, len, &pi) != 0) {
        ns->ctr.drop_malformed++;
        return;
    }
    if (!ns_stack_owns(ns, &pi.dst.addr)) {
        ns->ctr.drop_not_ours++;
        return;
    }
    len = pi.iplen;
    ns->ctr.pkts_in++;
    ns->ctr.bytes_in += len;
    struct ns_stack *saved = ns_stack_current();
    ns_stack_set_current(ns);
    int consumed = 0;
    if (pi.proto == IP_PROTO_TCP) {
        uint8_t flags = pi.l4[13];
        if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
            consumed = ns_tcp_prepare_syn(ns, &pi.dst, &pi.src) != 0;
    } else if (pi.proto == IP_PROTO_UDP) {
        consumed = ns_udp_prepare(ns, &pi.dst, &pi.src) != 0;
    } else if (pi.proto == IP_PROTO_ICMP || pi.proto == IP6_NEXTH_ICMP6) {
        consumed = ns_icmp_input(ns, pkt, len);
    }
    if (!consumed) {
        struct pbuf *p = ns_rxpool_take(pkt, len);
        if (!p) {
            ns->ctr.drop_limit++;
        } else {
            /* In through the netif that holds the destination, where its pcbs are bound. */
            struct netif *in = ns_netif_of(&pi.dst.addr);
            if (!in)
                in = &ns->netif;
            if (in->input(p, in) != ERR_OK)
                pbuf_free(p);
        }
    }
    ns_stack_set_current(saved);
}
