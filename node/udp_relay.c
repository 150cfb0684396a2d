#include "udp_relay.h"

#include <stdlib.h>
#include <string.h>

static void unlink_session(struct node_udp_relay *r, struct node_udp_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        r->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    r->n--;
}

static void push_front(struct node_udp_relay *r, struct node_udp_session *s)
{
    s->prev = NULL;
    s->next = r->sessions;
    if (s->next)
        s->next->prev = s;
    r->sessions = s;
    r->n++;
}

static void maybe_free(struct node_udp_session *s)
{
    if (!s->relay && !s->dg_open && !s->timer_open)
        free(s);
}

static bool same_sockaddr(const struct sockaddr *a, const struct sockaddr_storage *b);

static void on_dg_recv(void *ud, const struct sockaddr *from, const uint8_t *data, size_t len)
{
    struct node_udp_session *s = ud;
    if (!s->relay)
        return;
    /* Host sockets are unconnected: anyone may write to their port. */
    if (s->dst.name[0] || !same_sockaddr(from, &s->dst.addr))
        return;
    uv_timer_again(&s->idle);
    s->relay->reply(s->relay, s, data, len);
}

static void on_dg_close(void *ud)
{
    struct node_udp_session *s = ud;
    s->dg_open = false;
    maybe_free(s);
}

static const struct proxy_dgram_cbs dg_cbs = {.on_recv = on_dg_recv, .on_close = on_dg_close};

static void on_timer_closed(uv_handle_t *h)
{
    struct node_udp_session *s = h->data;
    s->timer_open = false;
    maybe_free(s);
}

static void on_idle(uv_timer_t *t)
{
    node_udp_session_end(t->data);
}

void node_udp_session_end(struct node_udp_session *s)
{
    struct node_udp_relay *r = s->relay;
    if (!r)
        return;
    unlink_session(r, s);
    if (r->release)
        r->release(r, s);
    s->relay = NULL;
    proxy_name_queue_clear(&s->names);
    s->dg->ops->close(s->dg);
    uv_close((uv_handle_t *)&s->idle, on_timer_closed);
}

static bool same_sockaddr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* The first answer fixes the session's address; datagrams queued behind it follow it. */
static void send_resolved(void *arg, const struct sockaddr *sa, const uint8_t *data, size_t len)
{
    struct node_udp_session *s = arg;
    if (s->dst.name[0])
        proxy_target_set_addr(&s->dst, sa, s->dst.port);
    s->dg->ops->send_to(s->dg, &s->dst, data, len);
}

struct node_udp_session *node_udp_session_find(struct node_udp_relay *r,
                                               const struct sockaddr *client)
{
    for (struct node_udp_session *s = r->sessions; s; s = s->next)
        if (same_sockaddr(client, &s->client))
            return s;
    return NULL;
}

struct node_udp_session *node_udp_session_new(struct node_udp_relay *r,
                                              const struct sockaddr *client, void *client_data)
{
    if (r->n >= NODE_UDP_SESSIONS_MAX) {
        struct node_udp_session *last = r->sessions;
        while (last->next)
            last = last->next;
        node_udp_session_end(last);
    }
    struct node_udp_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->dg = r->dialer.dgram_open ? r->dialer.dgram_open(r->dialer.ctx, &dg_cbs, s) : NULL;
    if (!s->dg) {
        free(s);
        return NULL;
    }
    s->dg_open = true;
    memcpy(&s->client, client,
           client->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    s->client_data = client_data;
    s->relay = r;
    s->dst = r->target;
    s->names = (struct proxy_name_queue){.resolver = r->resolver, .send = send_resolved, .arg = s};
    uv_timer_init(r->loop, &s->idle);
    s->idle.data = s;
    s->timer_open = true;
    uv_timer_start(&s->idle, on_idle, NODE_UDP_IDLE_MS, NODE_UDP_IDLE_MS);
    push_front(r, s);
    return s;
}

void node_udp_session_send(struct node_udp_session *s, const uint8_t *data, size_t len)
{
    struct node_udp_relay *r = s->relay;
    if (!r)
        return;
    uv_timer_again(&s->idle);
    if (r->sessions != s) {
        unlink_session(r, s);
        push_front(r, s);
    }
    /* A datagram that cannot go is dropped, as the network would. */
    if (s->dst.name[0])
        proxy_name_queue_send(&s->names, s->dst.name, s->dst.port, data, len);
    else
        s->dg->ops->send_to(s->dg, &s->dst, data, len);
}

void node_udp_relay_end_all(struct node_udp_relay *r)
{
    while (r->sessions)
        node_udp_session_end(r->sessions);
}
