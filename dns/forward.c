/*
 * Forwarded queries: dns_forward_start() keeps what a SERVFAIL needs, queues the forward on
 * the deadline list and hands the query to its channel (upstream.c). The answer comes back
 * through dns_forward_done() (cached, then delivered with the client's ID and size limit),
 * or the deadline timer answers SERVFAIL first; either way the callback runs once, and the
 * forward is freed when c-ares also let go of it (see the request life in dns_internal.h).
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

/* SERVFAIL from the header and question the forward kept. */
static void forward_fail(struct dns_forward *f)
{
    struct dns_resolver *r = f->req.r;
    struct dns_msg_info qi;
    if (dns_msg_parse(f->query, f->qlen, &qi) < 0)
        return;
    qi.has_edns = f->client_edns;
    qi.edns_ttl = f->client_edns_ttl;
    size_t n = dns_error_reply(r, &qi, DNS_RCODE_SERVFAIL, f->limit);
    f->cb(f->ctx, r->buf, n);
}

/* The callback, once: reply NULL answers SERVFAIL. */
static void forward_answer(struct dns_forward *f, const uint8_t *reply, size_t len)
{
    struct dns_resolver *r = f->req.r;
    base_list_remove(&f->tlink);
    if (f->req.state == DNS_REQ_STARTING)
        f->req.state = DNS_REQ_EARLY;
    else if (f->req.state == DNS_REQ_WAITING)
        f->req.state = DNS_REQ_ANSWERED;
    else
        return; /* answered, canceled, or the resolver closing */
    if (!reply) {
        r->stats.upstream_failures++;
        forward_fail(f);
        return;
    }
    memcpy(r->buf, reply, len);
    dns_put16(r->buf, f->id);
    dns_deliver(r, r->buf, len, f->limit, f->cb, f->ctx);
}

void dns_forward_done(struct dns_forward *f, int status, const uint8_t *reply, size_t len)
{
    struct dns_resolver *r = f->req.r;
    bool ok = status == ARES_SUCCESS && reply && len >= DNS_HDR_LEN && len <= DNS_MSG_MAX;
    if (ok && !dns_resolver_closing(r)) {
        struct dns_msg_info info;
        ok = dns_msg_parse(reply, len, &info) == 0 && info.hdr.qdcount == 1;
        if (ok)
            dns_cache_put(&r->cache, reply, len, uv_now(r->loop));
    }
    f->up = NULL;
    forward_answer(f, ok ? reply : NULL, len);
    dns_request_release(&f->req);
}

void dns_forward_cancel(struct dns_forward *f)
{
    base_list_remove(&f->tlink);
}

/* ---- the deadline ---- */

static struct dns_forward *first_due(struct dns_resolver *r)
{
    struct base_list *first = base_list_first(&r->deadlines);
    return first ? container_of(first, struct dns_forward, tlink) : NULL;
}

static void on_deadline(uv_timer_t *t);

static void deadline_arm(struct dns_resolver *r)
{
    struct dns_forward *f = first_due(r);
    if (!f) {
        uv_timer_stop(&r->deadline_timer);
        return;
    }
    uint64_t now = uv_now(r->loop);
    uv_timer_start(&r->deadline_timer, on_deadline, f->deadline_ms > now ? f->deadline_ms - now : 0,
                   0);
}

static void on_deadline(uv_timer_t *t)
{
    struct dns_resolver *r = container_of(t, struct dns_resolver, deadline_timer);
    uint64_t now = uv_now(r->loop);
    struct dns_forward *f;
    /* Every forward has the same timeout, so the list is in deadline order. */
    while ((f = first_due(r)) && f->deadline_ms <= now) {
        forward_answer(f, NULL, 0);
        dns_request_release(&f->req);
    }
    deadline_arm(r);
}

void dns_forwards_timer_init(struct dns_resolver *r)
{
    uv_timer_init(r->loop, &r->deadline_timer);
}

/* ---- start ---- */

struct dns_request *dns_forward_start(struct dns_resolver *r, struct dns_upstream *up,
                                      const uint8_t *query, size_t len,
                                      const struct dns_msg_info *qi, size_t limit, dns_reply_cb cb,
                                      void *ctx)
{
    struct dns_forward *f = calloc(1, sizeof(*f));
    if (!f) {
        cb(ctx, r->buf, dns_error_reply(r, qi, DNS_RCODE_SERVFAIL, limit));
        return NULL;
    }
    dns_request_start(r, &f->req, DNS_REQ_FORWARD);
    f->cb = cb;
    f->ctx = ctx;
    f->limit = limit;
    f->id = qi->hdr.id;
    f->client_edns = qi->has_edns;
    f->client_edns_ttl = qi->edns_ttl;
    f->qlen = qi->q_end;
    memcpy(f->query, query, qi->q_end);
    memset(f->query + 6, 0, 6); /* only the question is kept */
    f->deadline_ms = uv_now(r->loop) + r->timeout_ms;
    base_list_push_back(&r->deadlines, &f->tlink);
    if (!uv_is_active((uv_handle_t *)&r->deadline_timer))
        deadline_arm(r);
    r->stats.forwarded++;
    dns_upstream_send(up, query, len, f);
    return dns_request_started(&f->req);
}
