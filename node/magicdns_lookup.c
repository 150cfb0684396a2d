/*
 * The proxies' resolver (struct proxy_resolver) over dns_resolver_lookup. The proxy wants its
 * callback never from inside resolve(), but MagicDNS answers local names at once: such an
 * answer is held and delivered on a zero timer. The timer's close callback frees the lookup,
 * whichever way it ended.
 *
 * A lookup's life:
 *   STARTING (inside resolve) -> HELD     answered at once: the zero timer delivers
 *                             -> WAITING  the dns request is in flight: its answer delivers
 *   HELD -> CANCELED                      canceled before the timer ran: the timer only frees
 *   delivered, canceled while WAITING     -> the timer is closed, its callback frees
 */
#include <stdlib.h>
#include <string.h>

#include "magicdns_internal.h"

enum lookup_state { LOOKUP_STARTING, LOOKUP_HELD, LOOKUP_WAITING, LOOKUP_CANCELED };

struct lookup {
    uv_timer_t timer;
    enum lookup_state state;
    proxy_resolve_cb cb;
    void *arg;
    struct dns_request *req; /* while WAITING */
    int err;
    struct base_addr addrs[DNS_LOOKUP_MAX_ADDRS];
    size_t n;
};

static void lookup_closed(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, struct lookup, timer));
}

static void lookup_end(struct lookup *l)
{
    uv_close((uv_handle_t *)&l->timer, lookup_closed);
}

/* The proxies' error for a lookup's: a name that is not there, or no answer at all. */
static int proxy_err(int err)
{
    if (err == 0)
        return 0;
    return err == BASE_ESERVFAIL || err == -ENOMEM ? PROXY_E_HOST_UNREACH : PROXY_E_NAME;
}

static void deliver(struct lookup *l)
{
    struct sockaddr_storage ss[DNS_LOOKUP_MAX_ADDRS];
    for (size_t i = 0; i < l->n; i++) {
        struct base_endpoint e = {.addr = l->addrs[i]};
        base_endpoint_to_sockaddr(&e, &ss[i]);
    }
    l->cb(l->arg, proxy_err(l->err), ss, l->n);
    lookup_end(l);
}

static void on_timer(uv_timer_t *t)
{
    struct lookup *l = container_of(t, struct lookup, timer);
    if (l->state == LOOKUP_CANCELED)
        lookup_end(l);
    else
        deliver(l);
}

static void on_lookup(void *ctx, int err, const struct base_addr *addrs, size_t n)
{
    struct lookup *l = ctx;
    l->req = NULL;
    l->err = err;
    l->n = err == 0 ? (n < DNS_LOOKUP_MAX_ADDRS ? n : DNS_LOOKUP_MAX_ADDRS) : 0;
    memcpy(l->addrs, addrs, l->n * sizeof(*addrs));
    if (l->state == LOOKUP_STARTING) {
        l->state = LOOKUP_HELD;
        uv_timer_start(&l->timer, on_timer, 0, 0);
        return;
    }
    deliver(l);
}

static struct proxy_resolve_req *resolve(void *ctx, const char *name, proxy_resolve_cb cb,
                                         void *arg)
{
    struct node_magicdns *m = ctx;
    struct lookup *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->cb = cb;
    l->arg = arg;
    uv_timer_init(m->loop, &l->timer);
    l->state = LOOKUP_STARTING;
    l->req = dns_resolver_lookup(m->resolver, name, DNS_FAMILY_ANY, on_lookup, l);
    if (l->state == LOOKUP_STARTING)
        l->state = LOOKUP_WAITING;
    return (struct proxy_resolve_req *)l;
}

static void cancel(void *ctx, struct proxy_resolve_req *r)
{
    struct lookup *l = (struct lookup *)r;
    (void)ctx;
    if (l->state == LOOKUP_WAITING) {
        dns_request_cancel(l->req);
        l->req = NULL;
        lookup_end(l);
        return;
    }
    l->state = LOOKUP_CANCELED; /* the zero timer is pending: it frees the lookup */
}

struct proxy_resolver node_magicdns_proxy_resolver(struct node_magicdns *m)
{
    return (struct proxy_resolver){.ctx = m, .resolve = resolve, .cancel = cancel};
}
