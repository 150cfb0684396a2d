/* Datagrams to host names, held while the resolver works (see proxy.h). */
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

struct pending {
    struct base_list link; /* in q->pending */
    struct proxy_name_queue *q;
    struct proxy_resolve_req *rr;
    uint16_t port;
    size_t len;
    uint8_t data[];
};

void proxy_name_queue_init(struct proxy_name_queue *q, struct proxy_resolver resolver,
                           void (*send)(void *arg, const struct base_endpoint *dst,
                                        const uint8_t *data, size_t len),
                           void *arg)
{
    *q = (struct proxy_name_queue){.resolver = resolver, .send = send, .arg = arg};
    base_list_init(&q->pending);
}

static void on_resolved(void *arg, int err, const struct base_addr *addrs, size_t n)
{
    struct pending *p = arg;
    struct proxy_name_queue *q = p->q;
    base_list_remove(&p->link);
    q->n--;
    if (!err && n > 0) {
        struct base_endpoint ep = {.addr = addrs[0], .port = p->port};
        q->send(q->arg, &ep, p->data, p->len);
    }
    free(p);
}

int proxy_name_queue_send(struct proxy_name_queue *q, const char *name, uint16_t port,
                          const uint8_t *data, size_t len)
{
    if (q->n >= PROXY_NAME_QUEUE_MAX)
        return BASE_ELIMIT;
    struct pending *p = malloc(sizeof(*p) + len);
    if (!p)
        return -ENOMEM;
    p->q = q;
    p->port = port;
    p->len = len;
    memcpy(p->data, data, len);
    p->rr = q->resolver.resolve(q->resolver.ctx, name, on_resolved, p);
    if (!p->rr) {
        free(p);
        return -ENOMEM;
    }
    base_list_push_front(&q->pending, &p->link);
    q->n++;
    return 0;
}

void proxy_name_queue_clear(struct proxy_name_queue *q)
{
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &q->pending) {
        struct pending *p = container_of(pos, struct pending, link);
        base_list_remove(&p->link);
        q->resolver.cancel(q->resolver.ctx, p->rr);
        free(p);
    }
    q->n = 0;
}
