/*
 * Shutdown's drain: every listener the node owns stops taking connections at once, the
 * connections open on them (proxy sessions, --forward and --publish relays) get the grace
 * period to finish by themselves, and what is still open when it ends is reset: a stream the node
 * cuts ends with a RST (SO_LINGER 0 on host sockets, tcp_abort on the netstack's pcbs), never a
 * FIN that would make it look complete. Flow: node_drain_start -> add() per proxy, forward and
 * publish relay -> each item's on_closed -> all closed: on_drained; or on_timer first -> cut()
 * each open item -> their on_closed -> on_drained.
 */
#include "drain.h"

#include <stdlib.h>

#include "forward.h"

struct drain_item {
    struct node_drain *dr;
    void (*cut)(void *obj);
    void *obj;
    bool open;
};

struct node_drain {
    struct node_daemon *d;
    void (*on_drained)(struct node_daemon *d);
    struct drain_item *items;
    size_t n;
    unsigned open;
    bool finished;
};

static void check(struct node_drain *dr)
{
    if (dr->open > 0 || dr->finished)
        return;
    dr->finished = true;
    uv_timer_stop(&dr->d->stop_timer);
    dr->on_drained(dr->d); /* frees dr through node_drain_free */
}

static void on_item_closed(void *arg)
{
    struct drain_item *it = arg;
    it->open = false;
    it->dr->open--;
    check(it->dr);
}

static struct drain_item *add(struct node_drain *dr, void (*cut)(void *obj), void *obj)
{
    struct drain_item *it = &dr->items[dr->n++];
    *it = (struct drain_item){.dr = dr, .cut = cut, .obj = obj, .open = true};
    dr->open++;
    return it;
}

static void cut_proxy(void *obj)
{
    proxy_server_close(obj, NULL, NULL); /* the callback given to drain stays */
}

static void cut_forward(void *obj)
{
    node_forward_cut(obj);
}

static void cut_relay(void *obj)
{
    proxy_relay_close(obj, NULL, NULL);
}

static void add_all(struct node_drain *dr)
{
    struct node_daemon *d = dr->d;
    for (size_t i = 0; i < d->n_proxies; i++)
        proxy_server_drain(d->proxies[i], on_item_closed, add(dr, cut_proxy, d->proxies[i]));
    for (size_t i = 0; d->forwards && i < d->opts.n_forwards; i++)
        if (d->forwards[i])
            node_forward_drain(d->forwards[i], on_item_closed,
                               add(dr, cut_forward, d->forwards[i]));
    free(d->forwards);
    d->forwards = NULL;
    for (size_t i = 0; d->publish_ctx && i < d->opts.n_publishes; i++) {
        struct node_publish_ctx *pc = &d->publish_ctx[i];
        if (!pc->tcp)
            continue;
        /* The drain owns the relay now: publish.c refuses new peer connections. */
        struct proxy_relay *r = pc->tcp;
        pc->tcp = NULL;
        proxy_relay_drain(r, on_item_closed, add(dr, cut_relay, r));
    }
}

/* The grace period is over: reset what is still open. */
static void on_timer(uv_timer_t *t)
{
    struct node_daemon *d = t->data;
    struct node_drain *dr = d->drain;
    node_log(&d->log, BASE_LOG_INFO, "drain_timeout", "open=%u", dr->open);
    dr->open++; /* an item that closes at once must not free dr under the loop */
    for (size_t i = 0; i < dr->n; i++)
        if (dr->items[i].open)
            dr->items[i].cut(dr->items[i].obj);
    dr->open--;
    check(dr);
}

void node_drain_start(struct node_daemon *d, unsigned grace_ms,
                      void (*on_drained)(struct node_daemon *d))
{
    struct node_drain *dr = calloc(1, sizeof(*dr));
    size_t cap = d->n_proxies + d->opts.n_forwards + d->opts.n_publishes;
    if (dr)
        dr->items = calloc(cap + 1, sizeof(*dr->items));
    if (!dr || !dr->items) {
        free(dr);
        on_drained(d); /* out of memory: stop without the grace period */
        return;
    }
    *dr = (struct node_drain){.d = d, .on_drained = on_drained, .items = dr->items};
    d->drain = dr;
    dr->open = 1; /* held while the items are added: none may finish the drain early */
    add_all(dr);
    uv_timer_start(&d->stop_timer, on_timer, grace_ms, 0);
    dr->open--;
    check(dr);
}

void node_drain_free(struct node_daemon *d)
{
    if (!d->drain)
        return;
    free(d->drain->items);
    free(d->drain);
    d->drain = NULL;
}
