/* Datagrams to host names, held while the resolver works (see proxy.h). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

struct proxy_name_pending {
    struct proxy_name_pending *next;
    struct proxy_name_queue *q;
    struct proxy_resolve_req *rr;
    uint16_t port;
    size_t len;
    uint8_t data[];
};

static void unlink_pending(struct proxy_name_queue *q, struct proxy_name_pending *p)
{
    for (struct proxy_name_pending **pp = &q->head; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            q->n--;
            return;
        }
    }
}

static void on_resolved(void *arg, int err, const struct sockaddr_storage *addrs, size_t n)
{
    struct proxy_name_pending *p = arg;
    struct proxy_name_queue *q = p->q;
    unlink_pending(q, p);
    if (!err && n > 0) {
        struct sockaddr_storage sa = addrs[0];
        if (sa.ss_family == AF_INET)
            ((struct sockaddr_in *)&sa)->sin_port = htons(p->port);
        else
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons(p->port);
        q->send(q->arg, (struct sockaddr *)&sa, p->data, p->len);
    }
    free(p);
}

int proxy_name_queue_send(struct proxy_name_queue *q, const char *name, uint16_t port,
                          const uint8_t *data, size_t len)
{
    if (q->n >= PROXY_NAME_QUEUE_MAX)
        return PROXY_E_OTHER;
    struct proxy_name_pending *p = malloc(sizeof(*p) + len);
    if (!p)
        return PROXY_E_OTHER;
    p->q = q;
    p->port = port;
    p->len = len;
    memcpy(p->data, data, len);
    p->rr = q->resolver.resolve(q->resolver.ctx, name, on_resolved, p);
    if (!p->rr) {
        free(p);
        return PROXY_E_OTHER;
    }
    p->next = q->head;
    q->head = p;
    q->n++;
    return 0;
}

void proxy_name_queue_clear(struct proxy_name_queue *q)
{
    while (q->head) {
        struct proxy_name_pending *p = q->head;
        q->head = p->next;
        q->resolver.cancel(q->resolver.ctx, p->rr);
        free(p);
    }
    q->n = 0;
}
