/* The default resolver hook: the system's getaddrinfo on libuv's thread pool. */
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define GAI_MAX_ADDRS 16

struct proxy_resolve_req {
    uv_getaddrinfo_t req;
    proxy_resolve_cb cb;
    void *arg;
    bool canceled;
};

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct proxy_resolve_req *r = req->data;
    struct base_addr addrs[GAI_MAX_ADDRS];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < GAI_MAX_ADDRS; ai = ai->ai_next) {
        struct base_endpoint ep;
        if (base_endpoint_from_sockaddr(&ep, ai->ai_addr) == 0)
            addrs[n++] = ep.addr;
    }
    if (res)
        uv_freeaddrinfo(res);
    if (!r->canceled) {
        int err = status ? proxy_err_from_uv(status) : n ? 0 : BASE_ENXDOMAIN;
        r->cb(r->arg, err, addrs, err ? 0 : n);
    }
    free(r);
}

static struct proxy_resolve_req *gai_req_resolve(void *ctx, const char *name, proxy_resolve_cb cb,
                                                 void *arg)
{
    struct proxy_resolve_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cb = cb;
    r->arg = arg;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(ctx, &r->req, on_gai, name, NULL, &hints) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void gai_req_cancel(void *ctx, struct proxy_resolve_req *r)
{
    (void)ctx;
    /* If the lookup already runs, its result arrives later and is dropped in on_gai. */
    r->canceled = true;
    uv_cancel((uv_req_t *)&r->req);
}

struct proxy_resolver proxy_resolver_getaddrinfo(uv_loop_t *loop)
{
    struct proxy_resolver r = {.ctx = loop, .resolve = gai_req_resolve, .cancel = gai_req_cancel};
    return r;
}
