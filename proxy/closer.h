/*
 * How a proxy object that owns many children ends: close() marks it closing, each child that
 * goes releases its hold, and once none is left the owner is freed and on_closed runs, never
 * from inside close() (a timer that is never started is closed for that). The relays use it.
 * Internal to proxy/.
 */
#ifndef TUNLESS_PROXY_CLOSER_H
#define TUNLESS_PROXY_CLOSER_H

#include <stdbool.h>
#include <uv.h>

struct proxy_closer {
    uv_timer_t timer; /* never started: its close callback makes the end asynchronous */
    bool closing, timer_open;
    unsigned holds; /* children still alive */
    void (*free_owner)(void *owner);
    void *owner;
    void (*on_closed)(void *arg);
    void *arg;
};

void proxy_closer_init(struct proxy_closer *c, uv_loop_t *loop, void (*free_owner)(void *owner),
                       void *owner);
void proxy_closer_hold(struct proxy_closer *c);
/* A child is gone; the last one after close() ends the owner. */
void proxy_closer_release(struct proxy_closer *c);
/* Once; on_closed (may be NULL) runs after the owner is freed. */
void proxy_closer_close(struct proxy_closer *c, void (*on_closed)(void *arg), void *arg);

#endif
