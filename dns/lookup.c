/*
 * Host name lookups for the proxies: dns_resolver_lookup() answers IP literals at once, else
 * makes the candidate names (a single label: MagicDNS suffix first, then each search domain)
 * and asks for each in turn, A and AAAA as the family wants, through dns_resolver_handle().
 * The first candidate with addresses ends it; the error of a lookup without any says the
 * worst the candidates met (no answer, then an empty name, then no name at all).
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

struct lookup;
struct lookup_sub {
    struct lookup *l;
    struct dns_request *req; /* waiting for an upstream, or NULL */
};

struct lookup {
    struct dns_request req;
    enum dns_family family;
    dns_lookup_cb cb;
    void *ctx;
    size_t ncand, idx;
    uint8_t (*cand)[DNS_NAME_MAX];
    struct lookup_sub sub[2]; /* A, AAAA */
    /* Sub-queries not answered yet, plus one while they are being issued: the last answer
     * moves on, never one that arrives while its sibling is still being asked. */
    unsigned outstanding;
    bool saw_fail, saw_name; /* some candidate: got no answer / exists */
    struct base_addr v4[DNS_LOOKUP_MAX_ADDRS], v6[DNS_LOOKUP_MAX_ADDRS];
    size_t n4, n6;
};

static void add_addr(struct lookup *l, const uint8_t *msg, const struct dns_rr *rr)
{
    if (rr->type == DNS_TYPE_A && rr->rdlen == 4 && l->n4 < DNS_LOOKUP_MAX_ADDRS)
        base_addr_v4(&l->v4[l->n4++], msg + rr->rdata_off);
    else if (rr->type == DNS_TYPE_AAAA && rr->rdlen == 16 && l->n6 < DNS_LOOKUP_MAX_ADDRS)
        base_addr_v6(&l->v6[l->n6++], msg + rr->rdata_off);
}

static void collect(struct lookup *l, const uint8_t *msg, size_t len)
{
    struct dns_msg_info info;
    struct dns_rr rr;

    if (!msg || dns_msg_parse(msg, len, &info) < 0) {
        l->saw_fail = true;
        return;
    }
    unsigned rcode = info.hdr.flags & DNS_F_RCODE;
    if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN) {
        l->saw_fail = true;
        return;
    }
    l->saw_name |= rcode == DNS_RCODE_NOERROR;
    size_t off = info.q_end;
    for (unsigned i = 0; i < info.hdr.ancount; i++) {
        if (dns_rr_read(msg, len, &off, &rr) < 0)
            return;
        if (rr.cls == DNS_CLASS_IN)
            add_addr(l, msg, &rr);
    }
}

static void finish(struct lookup *l)
{
    struct base_addr all[DNS_LOOKUP_MAX_ADDRS];
    size_t n = 0;

    for (size_t i = 0; i < l->n4 && n < DNS_LOOKUP_MAX_ADDRS; i++)
        all[n++] = l->v4[i];
    for (size_t i = 0; i < l->n6 && n < DNS_LOOKUP_MAX_ADDRS; i++)
        all[n++] = l->v6[i];
    int err = n ? 0 : l->saw_fail ? BASE_ESERVFAIL : l->saw_name ? BASE_ENOANSWER : BASE_ENXDOMAIN;
    if (l->req.state == DNS_REQ_STARTING) {
        l->req.state = DNS_REQ_EARLY;
    } else if (l->req.state == DNS_REQ_WAITING) {
        l->req.state = DNS_REQ_ANSWERED;
    } else {
        return; /* canceled */
    }
    l->cb(l->ctx, err, all, n);
    dns_request_release(&l->req);
}

static void run(struct lookup *l);

/* One sub-query less to wait for: the last moves on to the end or the next candidate. */
static void sub_done(struct lookup *l)
{
    if (--l->outstanding)
        return;
    if (l->n4 + l->n6 || ++l->idx >= l->ncand)
        finish(l);
    else
        run(l);
}

static void on_sub(void *ctx, const uint8_t *reply, size_t len)
{
    struct lookup_sub *s = ctx;
    struct lookup *l = s->l;
    s->req = NULL;
    collect(l, reply, len);
    sub_done(l);
}

static void issue(struct lookup *l, int which)
{
    uint8_t q[DNS_HDR_LEN + DNS_NAME_MAX + 4];
    struct dns_builder b;
    struct dns_header h = {0};

    h.flags = DNS_F_RD;
    h.qdcount = 1;
    dns_b_init(&b, q, sizeof(q));
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", DNS_HDR_LEN);
    dns_b_question(&b, l->cand[l->idx], which ? DNS_TYPE_AAAA : DNS_TYPE_A, DNS_CLASS_IN);
    dns_header_write(q, &h);
    l->outstanding++;
    l->sub[which].l = l;
    l->sub[which].req =
        dns_resolver_handle(l->req.r, q, b.len, DNS_REPLY_TCP, on_sub, &l->sub[which]);
}

/* Asks for the current candidate; its last answer (maybe from inside this call) moves on. */
static void run(struct lookup *l)
{
    l->outstanding++;
    if (l->family != DNS_FAMILY_V6)
        issue(l, 0);
    if (l->family != DNS_FAMILY_V4)
        issue(l, 1);
    sub_done(l);
}

static int candidates(struct dns_resolver *r, struct lookup *l, const char *name)
{
    uint8_t wire[DNS_NAME_MAX];
    size_t n = strlen(name);

    if (dns_name_from_text(name, wire) < 0 || wire[0] == 0)
        return BASE_EPARSE;
    bool absolute = n && name[n - 1] == '.';
    bool single = dns_name_labels(wire) == 1 && !absolute;
    l->cand = calloc(single ? 1 + r->n_search : 1, sizeof(*l->cand));
    if (!l->cand)
        return -ENOMEM;
    if (!single) {
        memcpy(l->cand[0], wire, dns_name_len(wire));
        l->ncand = 1;
        return 0;
    }
    if (dns_name_concat(wire, r->zone.suffix, l->cand[l->ncand]) > 0)
        l->ncand++;
    for (size_t i = 0; i < r->n_search; i++)
        if (dns_name_concat(wire, r->search[i], l->cand[l->ncand]) > 0)
            l->ncand++;
    return l->ncand ? 0 : BASE_EPARSE;
}

/* An IP literal answers itself: 0 when it was one (and the callback ran). */
static int literal(const char *name, enum dns_family family, dns_lookup_cb cb, void *ctx)
{
    struct base_addr a;
    if (base_addr_parse(&a, name, strlen(name)) < 0)
        return -1;
    bool ok = family == DNS_FAMILY_ANY || (family == DNS_FAMILY_V4) == (a.family == AF_INET);
    cb(ctx, ok ? 0 : BASE_ENOANSWER, &a, ok ? 1 : 0);
    return 0;
}

struct dns_request *dns_resolver_lookup(struct dns_resolver *r, const char *name,
                                        enum dns_family family, dns_lookup_cb cb, void *ctx)
{
    struct base_addr none = {0};
    if (literal(name, family, cb, ctx) == 0)
        return NULL;
    struct lookup *l = calloc(1, sizeof(*l));
    if (!l) {
        cb(ctx, -ENOMEM, &none, 0);
        return NULL;
    }
    dns_request_start(r, &l->req, DNS_REQ_LOOKUP);
    l->family = family;
    l->cb = cb;
    l->ctx = ctx;
    int err = candidates(r, l, name);
    if (err < 0) {
        l->req.state = DNS_REQ_ANSWERED;
        dns_request_release(&l->req);
        cb(ctx, err, &none, 0);
        return NULL;
    }
    run(l);
    return dns_request_started(&l->req);
}

void dns_lookup_cancel(struct dns_request *req)
{
    struct lookup *l = container_of(req, struct lookup, req);
    for (int i = 0; i < 2; i++) {
        struct dns_request *sub = l->sub[i].req;
        l->sub[i].req = NULL;
        dns_request_cancel(sub);
    }
}

void dns_lookup_free(struct dns_request *req)
{
    struct lookup *l = container_of(req, struct lookup, req);
    free(l->cand);
    free(l);
}
