/*
 * The UDP relay (--forward udp:, --publish udp:): one session per client, each with its own
 * proxy_dgram to the fixed target, most recently active first. A name is resolved once, by
 * the first datagram, and the session keeps the address (every datagram to one place; replies
 * only from there). Flow: session_new -> send (-> name queue) / on_dg_recv -> reply; idle
 * timer or end -> the dgram and the timer close -> maybe_free; relay close -> every session
 * ends -> the closer: once the last session is freed -> on_closed.
 */
#include <stdlib.h>
#include <string.h>

#include "closer.h"
#include "proxy.h"

enum udp_session_state { US_OPEN, US_ENDED };

struct proxy_udp_session {
    struct base_list link; /* in the relay's sessions, most recently active first */
    struct proxy_udp_relay *relay;
    enum udp_session_state state;
    struct proxy_dgram *dg;
    uv_timer_t idle;
    bool dg_open, timer_open;
    struct base_endpoint client; /* where replies go */
    void *client_data;           /* the owner's (a netstack flow), or NULL */
    struct proxy_target dst;
    struct proxy_name_queue names;
};

enum udp_relay_state { UR_OPEN, UR_CLOSING };

struct proxy_udp_relay {
    uv_loop_t *loop;
    struct proxy_udp_relay_config cfg;
    struct base_list sessions;
    size_t n; /* sessions in the list */
    enum udp_relay_state state;
    struct proxy_closer closer; /* holds one per session not yet freed */
};

static void maybe_free(struct proxy_udp_session *s)
{
    if (s->state != US_ENDED || s->dg_open || s->timer_open)
        return;
    struct proxy_udp_relay *r = s->relay;
    free(s);
    proxy_closer_release(&r->closer);
}

static void on_dg_recv(void *ud, const struct base_endpoint *from, const uint8_t *data, size_t len)
{
    struct proxy_udp_session *s = ud;
    if (s->state != US_OPEN)
        return;
    /* Host sockets are unconnected: anyone may write to their port. */
    if (s->dst.name[0] || !base_endpoint_equal(from, &s->dst.ep))
        return;
    uv_timer_again(&s->idle);
    s->relay->cfg.reply(s->relay->cfg.ctx, s, data, len);
}

static void on_dg_close(void *ud)
{
    struct proxy_udp_session *s = ud;
    s->dg_open = false;
    maybe_free(s);
}

static const struct proxy_dgram_cbs dg_cbs = {.on_recv = on_dg_recv, .on_close = on_dg_close};

static void on_timer_closed(uv_handle_t *h)
{
    struct proxy_udp_session *s = h->data;
    s->timer_open = false;
    maybe_free(s);
}

static void on_idle(uv_timer_t *t)
{
    proxy_udp_session_end(t->data);
}

void proxy_udp_session_end(struct proxy_udp_session *s)
{
    if (s->state != US_OPEN)
        return;
    struct proxy_udp_relay *r = s->relay;
    s->state = US_ENDED;
    base_list_remove(&s->link);
    r->n--;
    if (r->cfg.release)
        r->cfg.release(r->cfg.ctx, s);
    proxy_name_queue_clear(&s->names);
    s->dg->ops->close(s->dg);
    uv_close((uv_handle_t *)&s->idle, on_timer_closed);
}

/* The first answer fixes the session's address; datagrams queued behind it follow it. */
static void send_resolved(void *arg, const struct base_endpoint *dst, const uint8_t *data,
                          size_t len)
{
    struct proxy_udp_session *s = arg;
    if (s->dst.name[0])
        proxy_target_set_endpoint(&s->dst, dst);
    s->dg->ops->send_to(s->dg, &s->dst, data, len);
}

struct proxy_udp_session *proxy_udp_session_find(struct proxy_udp_relay *r,
                                                 const struct base_endpoint *client)
{
    struct base_list *pos;
    base_list_foreach (pos, &r->sessions) {
        struct proxy_udp_session *s = container_of(pos, struct proxy_udp_session, link);
        if (base_endpoint_equal(client, &s->client))
            return s;
    }
    return NULL;
}

int proxy_udp_session_new(struct proxy_udp_relay *r, const struct base_endpoint *client,
                          void *client_data, struct proxy_udp_session **out)
{
    *out = NULL;
    if (r->state != UR_OPEN)
        return BASE_ECLOSING;
    if (r->n >= PROXY_UDP_SESSIONS_MAX) /* the least recently active gives way */
        proxy_udp_session_end(container_of(r->sessions.prev, struct proxy_udp_session, link));
    struct proxy_udp_session *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    const struct proxy_dialer *d = &r->cfg.dialer;
    s->dg = d->dgram_open ? d->dgram_open(d->ctx, &dg_cbs, s) : NULL;
    if (!s->dg) {
        free(s);
        return -ENOMEM;
    }
    s->dg_open = true;
    s->relay = r;
    s->client = *client;
    s->client_data = client_data;
    s->dst = r->cfg.target;
    proxy_name_queue_init(&s->names, r->cfg.resolver, send_resolved, s);
    uv_timer_init(r->loop, &s->idle);
    s->idle.data = s;
    s->timer_open = true;
    uv_timer_start(&s->idle, on_idle, PROXY_UDP_IDLE_MS, PROXY_UDP_IDLE_MS);
    base_list_push_front(&r->sessions, &s->link);
    r->n++;
    proxy_closer_hold(&r->closer);
    *out = s;
    return 0;
}

const struct base_endpoint *proxy_udp_session_client(const struct proxy_udp_session *s)
{
    return &s->client;
}

void *proxy_udp_session_data(const struct proxy_udp_session *s)
{
    return s->client_data;
}

void proxy_udp_session_send(struct proxy_udp_session *s, const uint8_t *data, size_t len)
{
    if (s->state != US_OPEN)
        return;
    uv_timer_again(&s->idle);
    base_list_remove(&s->link);
    base_list_push_front(&s->relay->sessions, &s->link);
    /* A datagram that cannot go is dropped, as the network would. */
    if (s->dst.name[0])
        proxy_name_queue_send(&s->names, s->dst.name, s->dst.ep.port, data, len);
    else
        s->dg->ops->send_to(s->dg, &s->dst, data, len);
}

int proxy_udp_relay_new(uv_loop_t *loop, const struct proxy_udp_relay_config *cfg,
                        struct proxy_udp_relay **out)
{
    *out = NULL;
    if (!cfg->reply)
        return -EINVAL;
    struct proxy_udp_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    base_list_init(&r->sessions);
    proxy_closer_init(&r->closer, loop, free, r);
    *out = r;
    return 0;
}

void proxy_udp_relay_close(struct proxy_udp_relay *r, void (*on_closed)(void *arg), void *arg)
{
    if (r->state != UR_OPEN)
        return;
    r->state = UR_CLOSING;
    while (!base_list_empty(&r->sessions))
        proxy_udp_session_end(container_of(r->sessions.next, struct proxy_udp_session, link));
    proxy_closer_close(&r->closer, on_closed, arg);
}
