/*
 * The TCP relay (--forward tcp:, --publish tcp:): each connection is a pump between the inbound
 * stream and one dialed to the target. Flow: add -> open (inbound) + dial -> connected ->
 * relay -> done (close both) or error (reset both) -> closed x2 -> conn freed; close/drain ->
 * the closer: once every conn is gone -> on_closed.
 */
#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <stdio.h>

#include "admit.h"
#include "closer.h"
#include "pump.h"

enum relay_state { RELAY_OPEN, RELAY_DRAINING, RELAY_CLOSING };

struct proxy_relay {
    struct proxy_relay_config cfg;
    uv_loop_t *loop;
    struct base_list conns;
    enum relay_state state;
    struct proxy_closer closer; /* holds one per conn, one for the sweep timer, one for admit */
    struct proxy_admit admit;   /* the listener's accept failures: counted and logged */
    uv_timer_t sweep;           /* the idle check, with cfg.idle_timeout_ms */
    bool sweeping;
    unsigned long long idle_closed; /* connections reset by the idle timeout */
    size_t mem;                     /* bytes the conns' pumps have charged to the budget */
};

struct relay_conn {
    struct base_list link; /* in the relay's conns */
    struct proxy_relay *r;
    struct proxy_pump pump; /* A: inbound, B: the target */
    unsigned open;          /* streams still to close */
    uint64_t seen;          /* bytes read either way at the last sweep */
    uint64_t active_at;     /* when they last grew */
};

static void end_conn(struct relay_conn *c, bool reset)
{
    proxy_pump_close(&c->pump, PROXY_PUMP_A, reset);
    proxy_pump_close(&c->pump, PROXY_PUMP_B, reset);
}

static void conn_connected(void *owner, int err, const struct base_endpoint *local)
{
    (void)local;
    struct relay_conn *c = owner;
    if (err)
        end_conn(c, true); /* the inbound side sees a reset: the service is not there */
    else
        proxy_pump_relay(&c->pump);
}

static void conn_error(void *owner, int side, int err)
{
    (void)side;
    (void)err;
    end_conn(owner, true);
}

static void conn_done(void *owner)
{
    end_conn(owner, false);
}

static void conn_closed(void *owner, int side)
{
    (void)side;
    struct relay_conn *c = owner;
    if (--c->open > 0)
        return;
    struct proxy_relay *r = c->r;
    base_list_remove(&c->link);
    free(c);
    proxy_closer_release(&r->closer);
}

static const struct proxy_pump_ops conn_ops = {
    .connected = conn_connected,
    .error = conn_error,
    .done = conn_done,
    .closed = conn_closed,
};

int proxy_relay_add(struct proxy_relay *r, proxy_relay_open_fn open, void *arg)
{
    if (r->state != RELAY_OPEN)
        return BASE_ECLOSING;
    struct relay_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->r = r;
    proxy_pump_init(&c->pump, &conn_ops, c);
    proxy_pump_set_budget(&c->pump, r->cfg.budget, &r->mem);
    struct proxy_stream *in = open(arg, &proxy_pump_cbs, proxy_pump_ud(&c->pump, PROXY_PUMP_A));
    if (!in) {
        free(c);
        return -ENOMEM;
    }
    proxy_pump_attach(&c->pump, PROXY_PUMP_A, in, true);
    c->open = 1;
    base_list_push_back(&r->conns, &c->link);
    proxy_closer_hold(&r->closer);
    struct base_list none;
    base_list_init(&none);
    if (r->admit.probe_fd >= 0 && !proxy_admit(&r->admit, &none, 0)) {
        end_conn(c, true); /* descriptors run short: counted and logged */
        return BASE_ELIMIT;
    }
    const struct proxy_dialer *d = &r->cfg.dialer;
    struct proxy_stream *out =
        d->dial(d->ctx, &r->cfg.target, &proxy_pump_cbs, proxy_pump_ud(&c->pump, PROXY_PUMP_B));
    if (!out) {
        end_conn(c, false);
        return -ENOMEM;
    }
    proxy_pump_attach(&c->pump, PROXY_PUMP_B, out, false);
    c->open++;
    return 0;
}

/* ---- the idle timeout ---- */

static void sweep(uv_timer_t *timer)
{
    struct proxy_relay *r = timer->data;
    uint64_t now = uv_now(r->loop);
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &r->conns) {
        struct relay_conn *c = container_of(pos, struct relay_conn, link);
        uint64_t moved = c->pump.side[PROXY_PUMP_A].rx + c->pump.side[PROXY_PUMP_B].rx;
        if (moved != c->seen || !c->active_at) {
            c->seen = moved;
            c->active_at = now;
        } else if (now - c->active_at >= r->cfg.idle_timeout_ms && c->open == 2) {
            char t[PROXY_TARGET_STRLEN];
            base_logf(&r->cfg.logger, BASE_LOG_INFO,
                      "event=relay_idle_timeout target=%s idle_ms=%llu",
                      proxy_target_format(&r->cfg.target, t, sizeof(t)),
                      (unsigned long long)(now - c->active_at));
            r->idle_closed++;
            end_conn(c, true);
        }
    }
}

static void on_sweep_closed(uv_handle_t *h)
{
    struct proxy_relay *r = h->data;
    proxy_closer_release(&r->closer);
}

static void start_sweep(struct proxy_relay *r)
{
    unsigned every = r->cfg.idle_timeout_ms / 4;
    every = every < 250 ? 250 : every > 60000 ? 60000 : every;
    uv_timer_init(r->loop, &r->sweep);
    r->sweep.data = r;
    r->sweeping = true;
    proxy_closer_hold(&r->closer);
    uv_timer_start(&r->sweep, sweep, every, every);
}

static void stop_sweep(struct proxy_relay *r)
{
    if (!r->sweeping)
        return;
    r->sweeping = false;
    uv_close((uv_handle_t *)&r->sweep, on_sweep_closed);
}

int proxy_relay_new(uv_loop_t *loop, const struct proxy_relay_config *cfg, struct proxy_relay **out)
{
    *out = NULL;
    if (!cfg->dialer.dial)
        return -EINVAL;
    struct proxy_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cfg = *cfg;
    r->loop = loop;
    base_list_init(&r->conns);
    proxy_closer_init(&r->closer, loop, free, r);
    proxy_admit_init(&r->admit, loop, &r->cfg.logger, UINT_MAX, -1);
    r->admit.who = "relay";
    char t[PROXY_TARGET_STRLEN];
    snprintf(r->admit.fields, sizeof(r->admit.fields), "target=%s",
             proxy_target_format(&cfg->target, t, sizeof(t)));
    proxy_closer_hold(&r->closer);
    if (cfg->idle_timeout_ms)
        start_sweep(r);
    *out = r;
    return 0;
}

static void on_admit_closed(void *arg)
{
    struct proxy_relay *r = arg;
    proxy_closer_release(&r->closer);
}

void proxy_relay_accept_failed(struct proxy_relay *r, int err)
{
    proxy_admit_failed(&r->admit, err);
}

void proxy_relay_watch_fds(struct proxy_relay *r, int listener_fd)
{
    r->admit.probe_fd = listener_fd;
}

void proxy_relay_drain(struct proxy_relay *r, void (*on_closed)(void *arg), void *arg)
{
    if (r->state != RELAY_OPEN)
        return;
    r->state = RELAY_DRAINING;
    stop_sweep(r);
    proxy_admit_close(&r->admit, on_admit_closed, r);
    proxy_closer_close(&r->closer, on_closed, arg);
}

void proxy_relay_close(struct proxy_relay *r, void (*on_closed)(void *arg), void *arg)
{
    if (r->state == RELAY_CLOSING)
        return;
    proxy_relay_drain(r, on_closed, arg);
    r->state = RELAY_CLOSING;
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &r->conns) {
        end_conn(container_of(pos, struct relay_conn, link), true);
    }
}

size_t proxy_relay_memory(const struct proxy_relay *r)
{
    return r->mem;
}
