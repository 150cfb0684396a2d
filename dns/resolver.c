/*
 * The transport-agnostic core. A message given to dns_resolver_handle() is checked, then
 * answered from the local zone (MagicDNS hosts and records), else from the cache, else
 * forwarded to the upstream the name routes to (forward.c); every failure has its error
 * reply here. Then the requests' common life (see dns_internal.h), the configuration, and
 * the resolver's own lifecycle: new, reload, close.
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

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

size_t dns_error_reply(struct dns_resolver *r, const struct dns_msg_info *qi, unsigned rcode,
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

void dns_deliver(struct dns_resolver *r, uint8_t *msg, size_t len, size_t limit, dns_reply_cb cb,
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

struct dns_request *dns_request_start(struct dns_resolver *r, struct dns_request *req,
                                      enum dns_req_kind kind)
{
    req->kind = kind;
    req->state = DNS_REQ_STARTING;
    req->r = r;
    base_list_push_back(&r->live, &req->link);
    return req;
}

static bool request_held(const struct dns_request *req)
{
    return req->kind == DNS_REQ_FORWARD &&
           container_of(req, const struct dns_forward, req)->up != NULL;
}

void dns_request_release(struct dns_request *req)
{
    if (req->state != DNS_REQ_ANSWERED || request_held(req))
        return;
    base_list_remove(&req->link);
    if (req->kind == DNS_REQ_LOOKUP)
        dns_lookup_free(req);
    else
        free(container_of(req, struct dns_forward, req));
}

struct dns_request *dns_request_started(struct dns_request *req)
{
    if (req->state == DNS_REQ_EARLY) {
        req->state = DNS_REQ_ANSWERED;
        dns_request_release(req);
        return NULL;
    }
    req->state = DNS_REQ_WAITING;
    return req;
}

void dns_request_cancel(struct dns_request *req)
{
    if (!req || req->state != DNS_REQ_WAITING)
        return;
    req->state = DNS_REQ_ANSWERED;
    if (req->kind == DNS_REQ_LOOKUP)
        dns_lookup_cancel(req);
    else
        dns_forward_cancel(container_of(req, struct dns_forward, req));
    dns_request_release(req);
}

/* ---- one message ---- */

/* The checks before any answer: a reply (or NULL, dropped) is delivered unless it returns 0
 * with *limit set for the answer. */
static int check_query(struct dns_resolver *r, const uint8_t *query, size_t len, size_t max_reply,
                       struct dns_msg_info *qi, size_t *limit, dns_reply_cb cb, void *ctx)
{
    if (len < DNS_HDR_LEN || len > DNS_MSG_MAX || (query[2] & 0x80)) {
        r->stats.dropped++;
        cb(ctx, NULL, 0);
        return -1;
    }
    *limit = DNS_MSG_MAX;
    if (dns_msg_parse(query, len, qi) < 0 || qi->hdr.qdcount != 1) {
        r->stats.formerr++;
        dns_header_read(query, &qi->hdr);
        qi->hdr.qdcount = 0;
        qi->has_edns = 0;
        cb(ctx, r->buf, dns_error_reply(r, qi, DNS_RCODE_FORMERR, *limit));
        return -1;
    }
    if (max_reply < DNS_REPLY_TCP) {
        size_t client = qi->has_edns ? qi->edns_udp : DNS_UDP_DEFAULT;
        *limit = max_reply < client ? max_reply : client;
        if (*limit < DNS_HDR_LEN)
            *limit = DNS_HDR_LEN;
    }
    if ((qi->hdr.flags & DNS_F_OPCODE) != 0) {
        cb(ctx, r->buf, dns_error_reply(r, qi, DNS_RCODE_NOTIMP, *limit));
        return -1;
    }
    if (qi->has_edns && qi->edns_version > 0) {
        qi->edns_ttl = 1u << 24; /* BADVERS (16): upper rcode bits 1, version 0 */
        cb(ctx, r->buf, dns_error_reply(r, qi, DNS_RCODE_NOERROR, *limit));
        return -1;
    }
    return 0;
}

struct dns_request *dns_resolver_handle(struct dns_resolver *r, const uint8_t *query, size_t len,
                                        size_t max_reply, dns_reply_cb cb, void *ctx)
{
    struct dns_msg_info qi;
    size_t limit;

    r->stats.queries++;
    if (check_query(r, query, len, max_reply, &qi, &limit, cb, ctx) < 0)
        return NULL;
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
        dns_deliver(r, r->buf, n, limit, cb, ctx);
        return NULL;
    }
    struct dns_upstream *up = dns_upstream_route(r, qi.q.name);
    if (!up) {
        r->stats.no_route++;
        cb(ctx, r->buf, dns_error_reply(r, &qi, DNS_RCODE_SERVFAIL, limit));
        return NULL;
    }
    return dns_forward_start(r, up, query, len, &qi, limit, cb, ctx);
}

/* ---- configuration ---- */

static int build_search(const struct dns_config *cfg, uint8_t (**out)[DNS_NAME_MAX])
{
    *out = NULL;
    if (!cfg->n_search)
        return 0;
    uint8_t(*search)[DNS_NAME_MAX] = calloc(cfg->n_search, sizeof(*search));
    if (!search)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_search; i++) {
        if (!cfg->search[i] || dns_name_from_text(cfg->search[i], search[i]) < 0) {
            char q[BASE_HOST_MAX + 8];
            dns_config_invalid(&cfg->log, "reason=\"bad search domain\" name=%s",
                               base_log_quote(q, sizeof(q), cfg->search[i] ? cfg->search[i] : ""));
            free(search);
            return BASE_ECONFIG;
        }
    }
    *out = search;
    return 0;
}

/* Builds everything new first; only a complete config replaces the old one. */
static int apply_config(struct dns_resolver *r, const struct dns_config *cfg)
{
    struct dns_zone zone;
    struct dns_cache cache;
    struct base_list ups;
    uint8_t(*search)[DNS_NAME_MAX];

    r->log = cfg->log;
    int rc = dns_zone_build(&zone, cfg, &r->log);
    if (rc < 0)
        return rc;
    if ((rc = build_search(cfg, &search)) < 0)
        goto fail_zone;
    rc = -ENOMEM;
    if (dns_cache_init(&cache,
                       cfg->cache_entries ? cfg->cache_entries : DNS_DEFAULT_CACHE_ENTRIES) < 0)
        goto fail_search;
    unsigned old_timeout = r->timeout_ms;
    r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    if ((rc = dns_upstreams_build(r, cfg, &ups)) < 0) {
        r->timeout_ms = old_timeout;
        dns_cache_free(&cache);
        goto fail_search;
    }
    dns_zone_free(&r->zone);
    r->zone = zone;
    dns_cache_free(&r->cache);
    r->cache = cache;
    base_list_init(&r->cache.lru); /* empty: only its head moved */
    free(r->search);
    r->search = search;
    r->n_search = cfg->n_search;
    dns_upstreams_replace(r, &ups);
    return 0;
fail_search:
    free(search);
fail_zone:
    dns_zone_free(&zone);
    return rc;
}

int dns_resolver_set_config(struct dns_resolver *r, const struct dns_config *cfg)
{
    return apply_config(r, cfg);
}

void dns_resolver_set_mesh_transport(struct dns_resolver *r, const struct dns_transport *t)
{
    if (r->has_mesh)
        dns_socks_drop_mesh(r, false);
    r->has_mesh = t != NULL;
    if (t)
        r->mesh = *t;
}

void dns_resolver_routes_changed(struct dns_resolver *r)
{
    dns_socks_drop_mesh(r, true);
}

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
    *out = r->stats;
}

/* ---- lifecycle ---- */

static void on_handle_closed(uv_handle_t *h)
{
    dns_resolver_handle_closed(h->data);
}

void dns_resolver_close_handle(struct dns_resolver *r, uv_handle_t *h)
{
    h->data = r;
    uv_close(h, on_handle_closed);
}

void dns_resolver_handle_closed(struct dns_resolver *r)
{
    if (--r->open_handles || !dns_resolver_closing(r))
        return;
    dns_closed_cb cb = r->on_closed;
    void *arg = r->closed_arg;
    free(r);
    if (cb)
        cb(arg);
}

int dns_resolver_new(uv_loop_t *loop, const struct dns_config *cfg, struct dns_resolver **out)
{
    struct dns_resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    base_list_init(&r->routes);
    base_list_init(&r->retired);
    base_list_init(&r->live);
    base_list_init(&r->deadlines);
    dns_forwards_timer_init(r);
    dns_reaper_init(r);
    r->open_handles = 2;
    int rc = apply_config(r, cfg);
    if (rc < 0) {
        dns_resolver_close(r, NULL, NULL);
        return rc;
    }
    *out = r;
    return 0;
}

void dns_resolver_close(struct dns_resolver *r, dns_closed_cb on_closed, void *arg)
{
    if (!r || dns_resolver_closing(r))
        return;
    r->state = DNS_RESOLVER_CLOSING;
    r->on_closed = on_closed;
    r->closed_arg = arg;
    struct base_list *pos, *tmp;
    base_list_foreach (pos, &r->live) {
        struct dns_request *req = container_of(pos, struct dns_request, link);
        req->state = DNS_REQ_ANSWERED; /* no callback from here on */
        if (req->kind == DNS_REQ_FORWARD)
            base_list_remove(&container_of(req, struct dns_forward, req)->tlink);
    }
    dns_upstreams_replace(r, NULL);
    dns_upstreams_reap(r, true); /* c-ares lets go of every query: each is released */
    base_list_foreach_safe (pos, tmp, &r->live)
        dns_request_release(container_of(pos, struct dns_request, link));
    free(r->socks);
    r->socks = NULL;
    dns_zone_free(&r->zone);
    dns_cache_free(&r->cache);
    free(r->search);
    dns_resolver_close_handle(r, (uv_handle_t *)&r->deadline_timer);
    dns_resolver_close_handle(r, (uv_handle_t *)&r->reaper);
}
