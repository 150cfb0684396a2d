/* The end of an object with children (see closer.h). */
#include "closer.h"

static void check(struct proxy_closer *c)
{
    if (!c->closing || c->timer_open || c->holds)
        return;
    void (*cb)(void *) = c->on_closed;
    void *arg = c->arg;
    c->free_owner(c->owner); /* c lives inside the owner: nothing of it after this */
    if (cb)
        cb(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct proxy_closer *c = h->data;
    c->timer_open = false;
    check(c);
}

void proxy_closer_init(struct proxy_closer *c, uv_loop_t *loop, void (*free_owner)(void *owner),
                       void *owner)
{
    *c = (struct proxy_closer){.free_owner = free_owner, .owner = owner, .timer_open = true};
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
}

void proxy_closer_hold(struct proxy_closer *c)
{
    c->holds++;
}

void proxy_closer_release(struct proxy_closer *c)
{
    c->holds--;
    check(c);
}

void proxy_closer_close(struct proxy_closer *c, void (*on_closed)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->closing = true;
    c->on_closed = on_closed;
    c->arg = arg;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
