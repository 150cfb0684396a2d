/* The transport-agnostic core: local answers, cache, forwarding, error replies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

void dns_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void handle_closed(uv_handle_t *h)
{
    struct dns_resolver *r = h->data;
    if (--r->open_handles == 0)
        free(r);
}

/* ---- replies built here ---- */

/* Header + question (when there is one) of a reply to qi. */
static void reply_start(struct dns_builder *b, const struct dns_msg_info *qi)
{
    dns_b_bytes(b, "\0\0\0\0\0\0\0\0\0\0\0\0", DNS_HDR_LEN);
    if (qi->hdr.qdcount == 1)
        dns_b_question(b, qi->q.name, qi->q.type, qi->q.cls);
}

static size_t reply_finish(struct dns_builder *b, const struct dns_msg_info *qi, unsigned rcode,
                           unsigned extra_flags, unsigned an, int with_opt, uint32_t opt_ttl)
{
    struct dns_header h = {0};
    h.id = qi->hdr.id;
    h.flags = (uint16_t)(DNS_F_QR | (qi->hdr.flags & (DNS_F_OPCODE | DNS_F_RD | DNS_F_CD)) |
                         DNS_F_RA | extra_flags | (rcode & 15));
    h.qdcount = b->len > DNS_HDR_LEN ? 1 : 0;
    h.ancount = (uint16_t)an;
    if (with_opt && dns_b_opt(b, DNS_EDNS_OURS, opt_ttl) == 0)
        h.arcount = 1;
    dns_header_write(b->buf, &h);
    return b->len;
}

static size_t error_reply(struct dns_resolver *r, const struct dns_msg_info *qi, unsigned rcode,
                          size_t limit)
{
    struct dns_builder b;
    dns_b_init(&b, r->buf, limit < sizeof(r->buf) ? limit : sizeof(r->buf));
    reply_start(&b, qi);
    return reply_finish(&b, qi, rcode, 0, 0, qi->has_edns, qi->edns_ttl & 0xff008000u);
}

/* ---- local answers ---- */

static int add_answers(struct dns_builder *b, const struct dns_zone *z, const struct dns_zname *zn,
                       const uint8_t *owner, uint16_t type, unsigned *an, int depth)
{
    const struct dns_zrec *cname = NULL;
    int matched = 0;

    for (const struct dns_zrec *rec = zn->recs; rec; rec = rec->next) {
        if (rec->type == DNS_TYPE_CNAME)
            cname = rec;
        if (type != DNS_TYPE_ANY && rec->type != type)
            continue;
        matched = 1;
        if (dns_b_rr(b, owner, rec->type, DNS_CLASS_IN, rec->ttl, rec->rdata, rec->rdlen,
                     rec->rdata_is_name ? rec->rdata : NULL) < 0)
            return -1;
        (*an)++;
    }
    if (matched || !cname || depth >= 8)
        return 0;
    if (dns_b_rr(b, owner, DNS_TYPE_CNAME, DNS_CLASS_IN, cname->ttl, NULL, 0, cname->rdata) < 0)
        return -1;
    (*an)++;
    /* Chase the alias while it stays local; a stub expects the chain resolved. */
    const struct dns_zname *target = dns_zone_find(z, cname->rdata);
    return target ? add_answers(b, z, target, target->name, type, an, depth + 1) : 0;
}

static size_t answer_local(struct dns_resolver *r, const struct dns_msg_info *qi, size_t limit)
{
    const struct dns_zone *z = &r->zone;
    const struct dns_question *q = &qi->q;
    const struct dns_zname *zn = dns_zone_find(z, q->name);
    uint8_t fqdn[DNS_NAME_MAX];

    if (!zn && dns_name_labels(q->name) == 1 && dns_name_concat(q->name, z->suffix, fqdn) > 0)
        zn = dns_zone_find(z, fqdn);
    int apex = dns_name_equal(q->name, z->suffix);
    if (!zn && !apex && !dns_zone_is_local(z, q->name))
        return 0;

    size_t opt = qi->has_edns ? DNS_OPT_LEN : 0;
    struct dns_builder b;
    dns_b_init(&b, r->buf, limit - opt);
    reply_start(&b, qi);
    unsigned an = 0, tc = 0;
    if (zn && (q->cls == DNS_CLASS_IN || q->cls == DNS_CLASS_ANY) &&
        add_answers(&b, z, zn, q->name, q->type, &an, 0) < 0) {
        tc = DNS_F_TC;
        r->stats.truncated++;
    }
    b.cap = limit;
    unsigned rcode = (zn || apex) ? DNS_RCODE_NOERROR : DNS_RCODE_NXDOMAIN;
    return reply_finish(&b, qi, rcode, DNS_F_AA | tc, an, qi->has_edns, qi->edns_ttl & 0x8000);
}

/* ---- delivering upstream/cached replies ---- */

static void deliver(struct dns_resolver *r, uint8_t *msg, size_t len, size_t limit, dns_reply_cb cb,
                    void *ctx)
{
    struct dns_msg_info info;
    if (len > limit) {
        size_t n =
            dns_msg_parse(msg, len, &info) == 0 ? dns_msg_truncate(msg, len, &info, limit) : 0;
        if (!n) {
            cb(ctx, NULL, 0);
            return;
        }
        r->stats.truncated++;
        len = n;
    }
    cb(ctx, msg, len);
}

/* ---- requests ---- */

struct dns_request *dns_request_new(struct dns_resolver *r, int kind)
{
    struct dns_request *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->kind = kind;
    req->r = r;
    req->next = r->live;
    if (r->live)
        r->live->prev = req;
    r->live = req;
    return req;
}

static void tq_remove(struct dns_resolver *r, struct dns_request *req)
{
    if (!req->in_tqueue)
        return;
    if (req->tprev)
        req->tprev->tnext = req->tnext;
    else
        r->tq_head = req->tnext;
    if (req->tnext)
        req->tnext->tprev = req->tprev;
    else
        r->tq_tail = req->tprev;
    req->tprev = req->tnext = NULL;
    req->in_tqueue = 0;
}

void dns_request_release(struct dns_request *req)
{
    struct dns_resolver *r = req->r;
    if (req->in_ares || (!req->finished && !req->canceled))
        return;
    tq_remove(r, req);
    if (req->prev)
        req->prev->next = req->next;
    else
        r->live = req->next;
    if (req->next)
        req->next->prev = req->prev;
    if (req->kind == DNS_REQ_LOOKUP)
        dns_lookup_free(req);
    free(req);
}

/* SERVFAIL for a forwarded request, from the header and question it kept. */
static void forward_fail(struct dns_request *req)
{
    struct dns_resolver *r = req->r;
    struct dns_msg_info qi;
    if (dns_msg_parse(req->query, req->qlen, &qi) < 0)
        return;
    qi.has_edns = req->client_edns;
    qi.edns_ttl = req->client_edns_ttl;
    size_t n = error_reply(r, &qi, DNS_RCODE_SERVFAIL, req->limit);
    req->cb(req->ctx, r->buf, n);
}

static void forward_finish(struct dns_request *req, const uint8_t *reply, size_t len)
{
    struct dns_resolver *r = req->r;
    tq_remove(r, req);
    if (req->finished || req->canceled || r->closing)
        return;
    req->finished = 1;
    if (!reply) {
        r->stats.upstream_failures++;
        forward_fail(req);
        return;
    }
    memcpy(r->buf, reply, len);
    dns_put16(r->buf, req->id);
    deliver(r, r->buf, len, req->limit, req->cb, req->ctx);
}

void dns_forward_done(struct dns_request *req, int status, const uint8_t *reply, size_t len)
{
    struct dns_resolver *r = req->r;
    int ok = status == ARES_SUCCESS && reply && len >= DNS_HDR_LEN && len <= DNS_MSG_MAX;
    if (ok && !r->closing) {
        struct dns_msg_info info;
        ok = dns_msg_parse(reply, len, &info) == 0 && info.hdr.qdcount == 1;
        if (ok)
            dns_cache_put(&r->cache, reply, len, uv_now(r->loop));
    }
    forward_finish(req, ok ? reply : NULL, len);
    req->finished = 1;
    if (req->in_send) {
        req->sync_done = 1;
        return;
    }
    dns_request_release(req);
}

static void deadline_arm(struct dns_resolver *r)
{
    if (!r->tq_head) {
        uv_timer_stop(&r->deadline_timer);
        return;
    }
    uint64_t now = uv_now(r->loop), at = r->tq_head->deadline_ms;
    uv_timer_start(&r->deadline_timer, r->deadline_timer.timer_cb, at > now ? at - now : 0, 0);
}

static void on_deadline(uv_timer_t *t)
{
    struct dns_resolver *r = t->data;
    uint64_t now = uv_now(r->loop);
    /* Every forward has the same timeout, so the queue is in deadline order. */
    while (r->tq_head && r->tq_head->deadline_ms <= now) {
        struct dns_request *req = r->tq_head;
        forward_finish(req, NULL, 0);
        dns_request_release(req);
    }
    deadline_arm(r);
}

static struct dns_request *forward(struct dns_resolver *r, struct dns_upstream *up,
                                   const uint8_t *query, size_t len, const struct dns_msg_info *qi,
                                   size_t limit, dns_reply_cb cb, void *ctx)
{
    struct dns_request *req = dns_request_new(r, DNS_REQ_FORWARD);
    if (!req) {
        size_t n = error_reply(r, qi, DNS_RCODE_SERVFAIL, limit);
        cb(ctx, r->buf, n);
        return NULL;
    }
    req->cb = cb;
    req->ctx = ctx;
    req->limit = limit;
    req->id = qi->hdr.id;
    req->client_edns = qi->has_edns;
    req->client_edns_ttl = qi->edns_ttl;
    req->qlen = qi->q_end;
    memcpy(req->query, query, qi->q_end);
    memset(req->query + 6, 0, 6); /* only the question is kept */
    req->deadline_ms = uv_now(r->loop) + r->timeout_ms;
    req->in_tqueue = 1;
    req->tprev = r->tq_tail;
    if (r->tq_tail)
        r->tq_tail->tnext = req;
    else
        r->tq_head = req;
    r->tq_tail = req;
    if (!uv_is_active((uv_handle_t *)&r->deadline_timer))
        deadline_arm(r);
    r->stats.forwarded++;
    req->in_send = 1;
    dns_upstream_send(up, query, len, req);
    req->in_send = 0;
    if (req->sync_done) {
        dns_request_release(req);
        return NULL;
    }
    return req;
}

struct dns_request *dns_resolver_handle(struct dns_resolver *r, const uint8_t *query, size_t len,
                                        size_t max_reply, dns_reply_cb cb, void *ctx)
{
    struct dns_msg_info qi;

    r->stats.queries++;
    if (len < DNS_HDR_LEN || len > DNS_MSG_MAX || (query[2] & 0x80)) {
        r->stats.dropped++;
        cb(ctx, NULL, 0);
        return NULL;
    }
    size_t limit = DNS_MSG_MAX;
    if (dns_msg_parse(query, len, &qi) < 0 || qi.hdr.qdcount != 1) {
        r->stats.formerr++;
        dns_header_read(query, &qi.hdr);
        qi.hdr.qdcount = 0;
        qi.has_edns = 0;
        cb(ctx, r->buf, error_reply(r, &qi, DNS_RCODE_FORMERR, limit));
        return NULL;
    }
    if (max_reply < DNS_REPLY_TCP) {
        size_t client = qi.has_edns ? qi.edns_udp : DNS_UDP_DEFAULT;
        limit = max_reply < client ? max_reply : client;
        if (limit < DNS_HDR_LEN)
            limit = DNS_HDR_LEN;
    }
    if ((qi.hdr.flags & DNS_F_OPCODE) != 0) {
        cb(ctx, r->buf, error_reply(r, &qi, DNS_RCODE_NOTIMP, limit));
        return NULL;
    }
    if (qi.has_edns && qi.edns_version > 0) {
        qi.edns_ttl = 1u << 24; /* BADVERS (16): upper rcode bits 1, version 0 */
        cb(ctx, r->buf, error_reply(r, &qi, DNS_RCODE_NOERROR, limit));
        return NULL;
    }
    size_t n = answer_local(r, &qi, limit);
    if (n) {
        r->stats.local_answers++;
        cb(ctx, r->buf, n);
        return NULL;
    }
    n = dns_cache_get(&r->cache, &qi.q, qi.hdr.id, uv_now(r->loop), r->buf, sizeof(r->buf));
    if (n) {
        r->stats.cache_hits++;
        /* The question as the client spelled it (same length, case may differ). */
        memcpy(r->buf + DNS_HDR_LEN, qi.q.name, dns_name_len(qi.q.name));
        deliver(r, r->buf, n, limit, cb, ctx);
        return NULL;
    }
    struct dns_upstream *up = dns_upstream_route(r, qi.q.name);
    if (!up) {
        r->stats.no_route++;
        cb(ctx, r->buf, error_reply(r, &qi, DNS_RCODE_SERVFAIL, limit));
        return NULL;
    }
    return forward(r, up, query, len, &qi, limit, cb, ctx);
}

void dns_request_cancel(struct dns_request *req)
{
    if (!req || req->canceled || req->finished)
        return;
    req->canceled = 1;
    tq_remove(req->r, req);
    if (req->kind == DNS_REQ_LOOKUP)
        dns_lookup_cancel(req);
    dns_request_release(req);
}

/* ---- configuration ---- */

static int apply_config(struct dns_resolver *r, const struct dns_config *cfg, char *err,
                        size_t errlen)
{
    struct dns_zone zone;
    struct dns_upstream *ups = NULL;
    uint8_t(*search)[DNS_NAME_MAX] = NULL;

    if (dns_zone_build(&zone, cfg, err, errlen) < 0)
        return -1;
    if (cfg->n_search) {
        search = calloc(cfg->n_search, sizeof(*search));
        if (!search)
            goto fail;
        for (size_t i = 0; i < cfg->n_search; i++) {
            if (!cfg->search[i] || dns_name_from_text(cfg->search[i], search[i]) < 0) {
                dns_set_err(err, errlen, "bad search domain '%s'",
                            cfg->search[i] ? cfg->search[i] : "(null)");
                goto fail;
            }
        }
    }
    size_t centries = cfg->cache_entries ? cfg->cache_entries : DNS_DEFAULT_CACHE_ENTRIES;
    struct dns_cache cache;
    if (dns_cache_init(&cache, centries) < 0) {
        dns_set_err(err, errlen, "out of memory");
        goto fail;
    }
    unsigned timeout = cfg->timeout_ms ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    r->timeout_ms = timeout;
    if (dns_upstreams_build(r, cfg, &ups, err, errlen) < 0) {
        dns_cache_free(&cache);
        goto fail;
    }
    /* Commit. */
    dns_zone_free(&r->zone);
    r->zone = zone;
    dns_cache_free(&r->cache);
    r->cache = cache;
    free(r->search);
    r->search = search;
    r->n_search = cfg->n_search;
    while (r->routes) {
        struct dns_upstream *up = r->routes;
        r->routes = up->next;
        dns_upstream_retire(up);
    }
    r->routes = ups;
    return 0;
fail:
    dns_zone_free(&zone);
    free(search);
    return -1;
}

struct dns_resolver *dns_resolver_new(uv_loop_t *loop, const struct dns_config *cfg, char *err,
                                      size_t errlen)
{
    struct dns_resolver *r = calloc(1, sizeof(*r));
    if (!r) {
        dns_set_err(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    uv_timer_init(loop, &r->deadline_timer);
    r->deadline_timer.data = r;
    r->deadline_timer.timer_cb = on_deadline;
    uv_timer_init(loop, &r->reaper);
    r->reaper.data = r;
    r->open_handles = 2;
    if (apply_config(r, cfg, err, errlen) < 0) {
        r->closing = 1;
        uv_close((uv_handle_t *)&r->deadline_timer, handle_closed);
        uv_close((uv_handle_t *)&r->reaper, handle_closed);
        return NULL;
    }
    return r;
}

int dns_resolver_set_config(struct dns_resolver *r, const struct dns_config *cfg, char *err,
                            size_t errlen)
{
    unsigned old_timeout = r->timeout_ms;
    if (apply_config(r, cfg, err, errlen) < 0) {
        r->timeout_ms = old_timeout;
        return -1;
    }
    return 0;
}

void dns_resolver_set_mesh_transport(struct dns_resolver *r, const struct dns_transport *t)
{
    if (r->has_mesh)
        dns_upstream_drop_mesh(r, 0);
    r->has_mesh = t != NULL;
    if (t)
        r->mesh = *t;
}

void dns_resolver_routes_changed(struct dns_resolver *r)
{
    dns_upstream_drop_mesh(r, 1);
}

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
    *out = r->stats;
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (!r)
        return;
    r->closing = 1;
    for (struct dns_request *req = r->live; req; req = req->next) {
        req->canceled = 1;
        tq_remove(r, req);
    }
    while (r->routes) {
        struct dns_upstream *up = r->routes;
        r->routes = up->next;
        dns_upstream_retire(up);
    }
    dns_upstreams_reap(r, 1); /* c-ares calls back every query: released without callbacks */
    while (r->live) {
        struct dns_request *req = r->live;
        req->in_ares = 0;
        dns_request_release(req);
    }
    free(r->socks);
    r->socks = NULL;
    dns_zone_free(&r->zone);
    dns_cache_free(&r->cache);
    free(r->search);
    uv_close((uv_handle_t *)&r->deadline_timer, handle_closed);
    uv_close((uv_handle_t *)&r->reaper, handle_closed);
}
