/*
 * A stream to a name raced over its addresses (Happy Eyeballs, RFC 8305) on the plan of
 * happy.c. Each attempt is a stream of the per-address dialer, owned by the race until the
 * attempt's on_close; the winner carries the bytes (the race forwards its ops and callbacks),
 * every other attempt is closed the moment one wins.
 * Flow: proxy_race_dial -> resolve -> on_resolved -> step (start attempts, arm the timer) ->
 * att_connect: a failure steps again, the first success wins -> ops go to the winner; close ->
 * the attempts and the timer close -> their close callbacks -> maybe_free -> on_close.
 */
#include <stdlib.h>

#include "proxy.h"

enum race_state { RACE_DIALING, RACE_CONNECTED, RACE_FAILED, RACE_CLOSING };
enum att_state { ATT_NONE, ATT_DIALING, ATT_WON, ATT_CLOSING, ATT_GONE };

struct race;
struct attempt {
    struct race *r;
    struct proxy_stream *s;
    enum att_state state;
};

struct race {
    struct proxy_stream base;
    uv_loop_t *loop;
    struct proxy_race_config cfg;
    struct proxy_stream_cbs cbs;
    void *ud;
    enum race_state state;
    struct proxy_target target;
    struct proxy_resolve_req *rr;
    uint64_t deadline;
    struct proxy_he he;
    struct attempt att[PROXY_HE_MAX]; /* att[i] dials he.order[i] */
    struct attempt *winner;
    unsigned open;    /* attempts whose on_close has not come yet */
    bool timer_open;  /* until the timer's close callback */
    uv_timer_t timer; /* the next attempt, the deadline, and reports never made inside dial */
    int pending_err;  /* a failure to report from the timer */
    int last_err;     /* the last attempt's failure */
    struct proxy_route tried; /* where the last attempt closed while dialling led */
};

static void on_timer(uv_timer_t *t);

static void maybe_free(struct race *r)
{
    if (r->state != RACE_CLOSING || r->open || r->timer_open)
        return;
    if (r->cbs.on_close)
        r->cbs.on_close(r->ud);
    free(r);
}

static void close_attempt(struct attempt *a, bool rst)
{
    if (a->state != ATT_DIALING && a->state != ATT_WON)
        return;
    bool won = a->state == ATT_WON;
    if (!won && a->s->ops->route) { /* for route() after a lost race */
        a->r->tried = (struct proxy_route){0};
        a->s->ops->route(a->s, &a->r->tried);
    }
    a->state = ATT_CLOSING;
    if (won && rst)
        a->s->ops->reset(a->s);
    else
        a->s->ops->close(a->s);
}

static void close_losers(struct race *r)
{
    for (size_t i = 0; i < r->he.started; i++)
        if (r->att[i].state == ATT_DIALING)
            close_attempt(&r->att[i], false);
}

/* The race is lost: the user hears err and closes. */
static void lose(struct race *r, int err)
{
    r->state = RACE_FAILED;
    uv_timer_stop(&r->timer);
    close_losers(r);
    r->cbs.on_connect(r->ud, err, NULL);
}

static const struct proxy_stream_cbs att_cbs;

static void start(struct race *r, const struct base_endpoint *ep)
{
    struct attempt *a = &r->att[r->he.started - 1];
    struct proxy_target t = r->target;
    proxy_target_set_endpoint(&t, ep);
    a->r = r;
    a->s = r->cfg.per_addr.dial(r->cfg.per_addr.ctx, &t, &att_cbs, a);
    if (!a->s) {
        r->last_err = -ENOMEM;
        proxy_he_failed(&r->he, uv_now(r->loop));
        return;
    }
    a->state = ATT_DIALING;
    r->open++;
}

/* Does what the plan says now: start attempts, then wait for the timer or give up. */
static void step(struct race *r)
{
    for (;;) {
        uint64_t now = uv_now(r->loop), wake = 0;
        struct base_endpoint ep;
        switch (proxy_he_next(&r->he, now, &ep, &wake)) {
        case PROXY_HE_START:
            start(r, &ep);
            break;
        case PROXY_HE_WAIT:
            uv_timer_start(&r->timer, on_timer, wake - now, 0);
            return;
        case PROXY_HE_FAILED:
            lose(r, r->last_err ? r->last_err : -EHOSTUNREACH);
            return;
        case PROXY_HE_TIMEOUT:
            lose(r, -ETIMEDOUT);
            return;
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    struct race *r = t->data;
    if (r->state != RACE_DIALING)
        return;
    if (r->pending_err) {
        lose(r, r->pending_err);
    } else if (r->rr) { /* the deadline came while resolving */
        r->cfg.resolver.cancel(r->cfg.resolver.ctx, r->rr);
        r->rr = NULL;
        lose(r, -ETIMEDOUT);
    } else {
        step(r);
    }
}

static void on_resolved(void *arg, int err, const struct base_addr *addrs, size_t n)
{
    struct race *r = arg;
    r->rr = NULL;
    if (err) {
        lose(r, err);
        return;
    }
    uint64_t now = uv_now(r->loop);
    unsigned left = r->deadline > now ? (unsigned)(r->deadline - now) : 0;
    unsigned delay = r->cfg.delay_ms ? r->cfg.delay_ms : PROXY_HE_DELAY_MS;
    proxy_he_init(&r->he, addrs, n, r->target.ep.port, now, delay, left);
    step(r);
}

/* ---- the attempts' callbacks ---- */

static void att_connect(void *ud, int err, const struct base_endpoint *local)
{
    struct attempt *a = ud;
    struct race *r = a->r;
    if (err || r->state != RACE_DIALING) {
        close_attempt(a, false);
        if (r->state != RACE_DIALING)
            return;
        r->last_err = err;
        proxy_he_failed(&r->he, uv_now(r->loop));
        step(r);
        return;
    }
    a->state = ATT_WON;
    r->winner = a;
    r->state = RACE_CONNECTED;
    uv_timer_stop(&r->timer);
    close_losers(r);
    r->cbs.on_connect(r->ud, 0, local);
}

static struct race *winner_race(void *ud)
{
    struct attempt *a = ud;
    return a->r->winner == a && a->r->state == RACE_CONNECTED ? a->r : NULL;
}

static void att_read(void *ud, const uint8_t *data, size_t len)
{
    struct race *r = winner_race(ud);
    if (r)
        r->cbs.on_read(r->ud, data, len);
}

static void att_eof(void *ud)
{
    struct race *r = winner_race(ud);
    if (r)
        r->cbs.on_eof(r->ud);
}

static void att_error(void *ud, int err)
{
    struct race *r = winner_race(ud);
    if (r)
        r->cbs.on_error(r->ud, err);
}

static void att_close(void *ud)
{
    struct attempt *a = ud;
    a->state = ATT_GONE;
    a->r->open--;
    maybe_free(a->r);
}

static const struct proxy_stream_cbs att_cbs = {
    .on_connect = att_connect,
    .on_read = att_read,
    .on_eof = att_eof,
    .on_error = att_error,
    .on_close = att_close,
};

/* ---- proxy_stream ops: the winner's ---- */

static struct proxy_stream *won(struct proxy_stream *ps)
{
    struct race *r = container_of(ps, struct race, base);
    return r->state == RACE_CONNECTED ? r->winner->s : NULL;
}

static int race_write(struct proxy_stream *ps, const uint8_t *data, size_t len, proxy_write_cb cb,
                      void *arg)
{
    struct proxy_stream *w = won(ps);
    return w ? w->ops->write(w, data, len, cb, arg) : -ENOTCONN;
}

static ssize_t race_try_write(struct proxy_stream *ps, const uint8_t *data, size_t len)
{
    struct proxy_stream *w = won(ps);
    if (!w)
        return -ENOTCONN;
    return w->ops->try_write ? w->ops->try_write(w, data, len) : 0;
}

static void race_shutdown(struct proxy_stream *ps)
{
    struct proxy_stream *w = won(ps);
    if (w)
        w->ops->shutdown(w);
}

static void race_read_start(struct proxy_stream *ps)
{
    struct proxy_stream *w = won(ps);
    if (w)
        w->ops->read_start(w);
}

static void race_read_stop(struct proxy_stream *ps)
{
    struct proxy_stream *w = won(ps);
    if (w)
        w->ops->read_stop(w);
}

/* The winner's route; after a lost race, the last attempt's. */
static void race_route(struct proxy_stream *ps, struct proxy_route *out)
{
    struct race *r = container_of(ps, struct race, base);
    struct proxy_stream *w = won(ps);
    if (w && w->ops->route)
        w->ops->route(w, out);
    else if (!w)
        *out = r->tried;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct race *r = h->data;
    r->timer_open = false;
    maybe_free(r);
}

static void race_end(struct proxy_stream *ps, bool rst)
{
    struct race *r = container_of(ps, struct race, base);
    if (r->state == RACE_CLOSING)
        return;
    r->state = RACE_CLOSING;
    if (r->rr) {
        r->cfg.resolver.cancel(r->cfg.resolver.ctx, r->rr);
        r->rr = NULL;
    }
    for (size_t i = 0; i < r->he.started; i++)
        close_attempt(&r->att[i], rst);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static void race_reset(struct proxy_stream *ps)
{
    race_end(ps, true);
}

static void race_close(struct proxy_stream *ps)
{
    race_end(ps, false);
}

static const struct proxy_stream_ops race_ops = {
    .write = race_write,
    .try_write = race_try_write,
    .shutdown = race_shutdown,
    .read_start = race_read_start,
    .read_stop = race_read_stop,
    .reset = race_reset,
    .close = race_close,
    .route = race_route,
};

struct proxy_stream *proxy_race_dial(uv_loop_t *loop, const struct proxy_race_config *cfg,
                                     const struct proxy_target *t,
                                     const struct proxy_stream_cbs *cbs, void *ud)
{
    struct race *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->base.ops = &race_ops;
    r->loop = loop;
    r->cfg = *cfg;
    r->cbs = *cbs;
    r->ud = ud;
    r->target = *t;
    r->state = RACE_DIALING;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    unsigned timeout = cfg->timeout_ms ? cfg->timeout_ms : PROXY_CONNECT_TIMEOUT_MS;
    r->deadline = uv_now(loop) + timeout;
    uv_timer_start(&r->timer, on_timer, timeout, 0);
    r->rr = cfg->resolver.resolve(cfg->resolver.ctx, t->name, on_resolved, r);
    if (!r->rr) {
        r->pending_err = -ENOMEM;
        uv_timer_start(&r->timer, on_timer, 0, 0);
    }
    return &r->base;
}
