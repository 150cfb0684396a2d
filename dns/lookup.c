/* Host name lookups for the proxies: A/AAAA queries through dns_resolver_handle(), search
 * domains for single-label names, MagicDNS first. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

struct lookup_sub {
    struct dns_lookup_state *ls;
    int which; /* 0 = A, 1 = AAAA */
};

struct dns_lookup_state {
    struct dns_request *req;
    enum dns_family family;
    dns_lookup_cb cb;
    void *ctx;
    size_t ncand, idx;
    uint8_t (*cand)[DNS_NAME_MAX];
    struct dns_request *sub[2];
    struct lookup_sub subctx[2];
    int outstanding, issuing, in_start, done, saw_fail;
    struct dns_addr v4[DNS_LOOKUP_MAX_ADDRS], v6[DNS_LOOKUP_MAX_ADDRS];
    size_t n4, n6;
};

static void collect(struct dns_lookup_state *ls, const uint8_t *msg, size_t len)
{
    struct dns_msg_info info;
    struct dns_rr rr;

    if (!msg || dns_msg_parse(msg, len, &info) < 0) {
        ls->saw_fail = 1;
        return;
    }
    unsigned rcode = info.hdr.flags & DNS_F_RCODE;
    if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN) {
        ls->saw_fail = 1;
        return;
    }
    size_t off = info.q_end;
    for (unsigned i = 0; i < info.hdr.ancount; i++) {
        if (dns_rr_read(msg, len, &off, &rr) < 0)
            return;
        if (rr.cls != DNS_CLASS_IN)
            continue;
        if (rr.type == DNS_TYPE_A && rr.rdlen == 4 && ls->n4 < DNS_LOOKUP_MAX_ADDRS) {
            ls->v4[ls->n4].family = AF_INET;
            memcpy(ls->v4[ls->n4++].ip, msg + rr.rdata_off, 4);
        } else if (rr.type == DNS_TYPE_AAAA && rr.rdlen == 16 && ls->n6 < DNS_LOOKUP_MAX_ADDRS) {
            ls->v6[ls->n6].family = AF_INET6;
            memcpy(ls->v6[ls->n6++].ip, msg + rr.rdata_off, 16);
        }
    }
}

static void finish(struct dns_lookup_state *ls)
{
    struct dns_addr all[2 * DNS_LOOKUP_MAX_ADDRS];
    size_t n = 0;
    enum dns_lookup_status st;

    for (size_t i = 0; i < ls->n4 && n < DNS_LOOKUP_MAX_ADDRS; i++)
        all[n++] = ls->v4[i];
    for (size_t i = 0; i < ls->n6 && n < DNS_LOOKUP_MAX_ADDRS; i++)
        all[n++] = ls->v6[i];
    st = n ? DNS_LOOKUP_OK : ls->saw_fail ? DNS_LOOKUP_FAIL : DNS_LOOKUP_NOTFOUND;
    ls->done = 1;
    ls->req->finished = 1;
    if (!ls->req->canceled)
        ls->cb(ls->ctx, st, all, st == DNS_LOOKUP_OK ? n : 0);
    if (!ls->in_start)
        dns_request_release(ls->req);
}

static void run(struct dns_lookup_state *ls);

static void on_sub(void *ctx, const uint8_t *reply, size_t len)
{
    struct lookup_sub *s = ctx;
    struct dns_lookup_state *ls = s->ls;
    ls->sub[s->which] = NULL;
    collect(ls, reply, len);
    if (--ls->outstanding || ls->issuing)
        return;
    if (ls->n4 + ls->n6 || ++ls->idx >= ls->ncand)
        finish(ls);
    else
        run(ls);
}

static void issue(struct dns_lookup_state *ls, int which)
{
    uint8_t q[DNS_HDR_LEN + DNS_NAME_MAX + 4];
    struct dns_builder b;
    struct dns_header h = {0};

    h.flags = DNS_F_RD;
    h.qdcount = 1;
    dns_b_init(&b, q, sizeof(q));
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", DNS_HDR_LEN);
    dns_b_question(&b, ls->cand[ls->idx], which ? DNS_TYPE_AAAA : DNS_TYPE_A, DNS_CLASS_IN);
    dns_header_write(q, &h);
    ls->outstanding++;
    ls->subctx[which].ls = ls;
    ls->subctx[which].which = which;
    ls->sub[which] =
        dns_resolver_handle(ls->req->r, q, b.len, DNS_REPLY_TCP, on_sub, &ls->subctx[which]);
}

/* Tries candidates until one is pending upstream, has addresses, or none are left. */
static void run(struct dns_lookup_state *ls)
{
    while (ls->idx < ls->ncand) {
        ls->issuing = 1;
        if (ls->family != DNS_FAMILY_V6)
            issue(ls, 0);
        if (ls->family != DNS_FAMILY_V4)
            issue(ls, 1);
        ls->issuing = 0;
        if (ls->outstanding)
            return;
        if (ls->n4 + ls->n6)
            break;
        ls->idx++;
    }
    finish(ls);
}

static int literal(const char *name, struct dns_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, name, a->ip) == 1) {
        a->family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, name, a->ip) == 1) {
        a->family = AF_INET6;
        return 1;
    }
    return 0;
}

static int candidates(struct dns_resolver *r, struct dns_lookup_state *ls, const char *name)
{
    uint8_t wire[DNS_NAME_MAX];
    size_t n = strlen(name);

    if (dns_name_from_text(name, wire) < 0 || wire[0] == 0)
        return -1;
    int absolute = n && name[n - 1] == '.';
    int single = dns_name_labels(wire) == 1 && !absolute;
    ls->cand = calloc(single ? 1 + r->n_search : 1, sizeof(*ls->cand));
    if (!ls->cand)
        return -1;
    if (!single) {
        memcpy(ls->cand[0], wire, dns_name_len(wire));
        ls->ncand = 1;
        return 0;
    }
    if (dns_name_concat(wire, r->zone.suffix, ls->cand[ls->ncand]) > 0)
        ls->ncand++;
    for (size_t i = 0; i < r->n_search; i++)
        if (dns_name_concat(wire, r->search[i], ls->cand[ls->ncand]) > 0)
            ls->ncand++;
    return ls->ncand ? 0 : -1;
}

struct dns_request *dns_resolver_lookup(struct dns_resolver *r, const char *name,
                                        enum dns_family family, dns_lookup_cb cb, void *ctx)
{
    struct dns_addr a;

    if (literal(name, &a)) {
        int ok = family == DNS_FAMILY_ANY || (family == DNS_FAMILY_V4) == (a.family == AF_INET);
        cb(ctx, ok ? DNS_LOOKUP_OK : DNS_LOOKUP_NOTFOUND, &a, ok ? 1 : 0);
        return NULL;
    }
    struct dns_request *req = dns_request_new(r, DNS_REQ_LOOKUP);
    struct dns_lookup_state *ls = req ? calloc(1, sizeof(*ls)) : NULL;
    if (!ls) {
        if (req) {
            req->finished = 1;
            dns_request_release(req);
        }
        cb(ctx, DNS_LOOKUP_FAIL, &a, 0);
        return NULL;
    }
    req->lookup = ls;
    ls->req = req;
    ls->family = family;
    ls->cb = cb;
    ls->ctx = ctx;
    if (candidates(r, ls, name) < 0) {
        req->finished = 1;
        dns_request_release(req);
        cb(ctx, DNS_LOOKUP_BADNAME, &a, 0);
        return NULL;
    }
    ls->in_start = 1;
    run(ls);
    ls->in_start = 0;
    if (ls->done) {
        dns_request_release(req);
        return NULL;
    }
    return req;
}

void dns_lookup_cancel(struct dns_request *req)
{
    struct dns_lookup_state *ls = req->lookup;
    for (int i = 0; i < 2; i++) {
        if (ls->sub[i]) {
            struct dns_request *sub = ls->sub[i];
            ls->sub[i] = NULL;
            dns_request_cancel(sub);
        }
    }
}

void dns_lookup_free(struct dns_request *req)
{
    struct dns_lookup_state *ls = req->lookup;
    if (!ls)
        return;
    free(ls->cand);
    free(ls);
    req->lookup = NULL;
}
