/*
 * The stream pump (see pump.h). Flow: attach -> (on_connect) -> reads: to the owner, or across
 * when relaying -> writes with their completions driving backpressure and the FIN that
 * follows an EOF -> done; close -> on_close -> closed.
 */
#include <stdlib.h>
#include <string.h>

#include "pump.h"

/* The high-water mark: lower as the budget fills, so a client that stops reading holds less. */
static size_t high_water(const struct proxy_pump *p)
{
    return base_budget_scale(p->budget, PROXY_PUMP_HIGH_WATER, PROXY_PUMP_HIGH_WATER_MIN);
}

/* What a queued write holds, counted against the water marks and charged to the budget: the
 * allocator's view, not the payload's (see PROXY_PUMP_WRITE_OVERHEAD). */
static size_t write_cost(size_t len)
{
    return len + PROXY_PUMP_WRITE_OVERHEAD;
}

static void charge(struct proxy_pump *p, size_t cost, bool add)
{
    if (add) {
        base_budget_charge(p->budget, cost);
        if (p->tally)
            *p->tally += cost;
    } else {
        base_budget_release(p->budget, cost);
        if (p->tally)
            *p->tally -= cost < *p->tally ? cost : *p->tally;
    }
}

static struct proxy_pump_side *other(struct proxy_pump_side *x)
{
    return &x->p->side[x == &x->p->side[0]];
}

static int index_of(const struct proxy_pump_side *x)
{
    return x == &x->p->side[1];
}

static void sync_read(struct proxy_pump_side *x)
{
    bool should = x->state == PROXY_PUMP_CONNECTED && x->want_read && !x->paused && !x->eof;
    if (should == x->reading)
        return;
    x->reading = should;
    if (should)
        x->s->ops->read_start(x->s);
    else if (x->state == PROXY_PUMP_CONNECTED)
        x->s->ops->read_stop(x->s);
}

static void shutdown_side(struct proxy_pump_side *x)
{
    if (x->state != PROXY_PUMP_CONNECTED || x->shut)
        return;
    x->shut = true;
    x->s->ops->shutdown(x->s);
}

static void check_done(struct proxy_pump *p)
{
    struct proxy_pump_side *a = &p->side[0], *b = &p->side[1];
    if (!p->relaying || !a->eof || !b->eof || a->pending || b->pending)
        return;
    p->relaying = false;
    if (p->ops->done)
        p->ops->done(p->owner);
}

static void report_error(struct proxy_pump_side *x, int err)
{
    if (x->p->ops->error)
        x->p->ops->error(x->p->owner, index_of(x), err);
}

static void on_written(void *arg, int err)
{
    struct proxy_pump_queued_write *w = arg;
    struct proxy_pump_side *x = w->to;
    bool current = w->gen == x->gen;
    size_t len = w->len;
    charge(x->p, write_cost(len), false);
    free(w);
    if (!current)
        return; /* the stream it went to is closed */
    x->pending -= len;
    x->queued -= write_cost(len);
    if (err) {
        report_error(x, err);
        return;
    }
    struct proxy_pump_side *y = other(x);
    if (y->paused && x->queued <= high_water(x->p) / 4) {
        y->paused = false;
        sync_read(y);
    }
    if (x->pending)
        return;
    if (x->p->relaying && y->eof)
        shutdown_side(x);
    if (x->p->ops->drained)
        x->p->ops->drained(x->p->owner, index_of(x));
    check_done(x->p);
}

int proxy_pump_write(struct proxy_pump *p, int side, const void *data, size_t len)
{
    struct proxy_pump_side *x = &p->side[side];
    if (x->state != PROXY_PUMP_CONNECTED)
        return -ENOTCONN;
    x->tx += len; /* counted as taken: a failure below ends the stream anyway */
    if (x->pending == 0 && x->s->ops->try_write && len > 0) {
        /* Most writes go at once: no copy, no completion to wait for. */
        ssize_t n = x->s->ops->try_write(x->s, data, len);
        if (n < 0)
            return (int)n;
        data = (const uint8_t *)data + n;
        len -= (size_t)n;
    }
    if (len == 0)
        return 0;
    struct proxy_pump_queued_write *w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    *w = (struct proxy_pump_queued_write){.to = x, .gen = x->gen, .len = len};
    memcpy(w->data, data, len);
    int err = x->s->ops->write(x->s, w->data, len, on_written, w);
    if (err) {
        free(w);
        return err;
    }
    charge(p, write_cost(len), true);
    x->pending += len;
    x->queued += write_cost(len);
    struct proxy_pump_side *y = other(x);
    if (x->queued > high_water(p) && !y->paused) {
        y->paused = true;
        sync_read(y);
    }
    return 0;
}

/* ---- stream callbacks ---- */

static void on_connect(void *ud, int err, const struct base_endpoint *local)
{
    struct proxy_pump_side *x = ud;
    x->state = err ? PROXY_PUMP_FAILED : PROXY_PUMP_CONNECTED;
    sync_read(x);
    if (x->p->ops->connected)
        x->p->ops->connected(x->p->owner, err, local);
}

static void on_read(void *ud, const uint8_t *data, size_t len)
{
    struct proxy_pump_side *x = ud;
    struct proxy_pump *p = x->p;
    x->rx += len;
    if (!p->relaying) {
        if (p->ops->read)
            p->ops->read(p->owner, index_of(x), data, len);
        return;
    }
    int err = proxy_pump_write(p, !index_of(x), data, len);
    if (err)
        report_error(other(x), err);
}

static void on_eof(void *ud)
{
    struct proxy_pump_side *x = ud;
    struct proxy_pump *p = x->p;
    x->eof = true;
    x->reading = false; /* the stream stops by itself */
    if (!p->relaying) {
        if (p->ops->eof)
            p->ops->eof(p->owner, index_of(x));
        return;
    }
    if (other(x)->pending == 0)
        shutdown_side(other(x));
    check_done(p);
}

static void on_error(void *ud, int err)
{
    report_error(ud, err);
}

static void on_close(void *ud)
{
    struct proxy_pump_side *x = ud;
    if (x->p->ops->closed)
        x->p->ops->closed(x->p->owner, index_of(x));
}

const struct proxy_stream_cbs proxy_pump_cbs = {
    .on_connect = on_connect,
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_close = on_close,
};

/* ---- the owner's calls ---- */

void proxy_pump_init(struct proxy_pump *p, const struct proxy_pump_ops *ops, void *owner)
{
    memset(p, 0, sizeof(*p));
    p->ops = ops;
    p->owner = owner;
    p->side[0].p = p->side[1].p = p;
}

void proxy_pump_set_budget(struct proxy_pump *p, struct base_budget *budget, size_t *tally)
{
    p->budget = budget;
    p->tally = tally;
}

void *proxy_pump_ud(struct proxy_pump *p, int side)
{
    return &p->side[side];
}

void proxy_pump_attach(struct proxy_pump *p, int side, struct proxy_stream *s, bool connected)
{
    struct proxy_pump_side *x = &p->side[side];
    x->s = s;
    x->state = connected ? PROXY_PUMP_CONNECTED : PROXY_PUMP_DIALING;
    x->pending = x->queued = 0;
    x->rx = x->tx = 0;
    x->want_read = x->reading = x->eof = x->shut = false;
    x->paused = other(x)->queued > high_water(p);
}

void proxy_pump_read(struct proxy_pump *p, int side, bool want)
{
    p->side[side].want_read = want;
    sync_read(&p->side[side]);
}

void proxy_pump_shutdown(struct proxy_pump *p, int side)
{
    shutdown_side(&p->side[side]);
}

void proxy_pump_relay(struct proxy_pump *p)
{
    p->relaying = true;
    for (int i = 0; i < 2; i++) {
        struct proxy_pump_side *x = &p->side[i];
        if (x->eof && other(x)->pending == 0)
            shutdown_side(other(x));
        x->want_read = true;
        sync_read(x);
    }
    check_done(p);
}

void proxy_pump_close(struct proxy_pump *p, int side, bool reset)
{
    struct proxy_pump_side *x = &p->side[side], *y = other(x);
    struct proxy_stream *s = x->s;
    if (!s)
        return;
    x->s = NULL;
    x->state = PROXY_PUMP_NONE;
    x->gen++;
    x->pending = x->queued = 0;
    x->want_read = x->reading = x->paused = x->shut = false;
    if (y->paused) { /* held back by what waited for x */
        y->paused = false;
        sync_read(y);
    }
    if (reset)
        s->ops->reset(s);
    else
        s->ops->close(s);
}

size_t proxy_pump_pending(const struct proxy_pump *p, int side)
{
    return p->side[side].pending;
}

size_t proxy_pump_queued(const struct proxy_pump *p, int side)
{
    return p->side[side].queued;
}

bool proxy_pump_eof(const struct proxy_pump *p, int side)
{
    return p->side[side].eof;
}

bool proxy_pump_open(const struct proxy_pump *p, int side)
{
    return p->side[side].state == PROXY_PUMP_CONNECTED;
}
