/*
 * The session core (see session.h). Flow: proxy_session_new (accept) -> start (head timer,
 * read) -> the pump's events, routed to the protocol's ops -> dial / relay / reply -> finish
 * (drained -> linger) or close -> the close callbacks -> unref -> free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static void unref(struct proxy_session *s)
{
    if (--s->open > 0)
        return;
    const struct proxy_session_env *env = s->env;
    base_list_remove(&s->link);
    if (s->ops->free)
        s->ops->free(s);
    free(s);
    env->released(env->arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void close_session(struct proxy_session *s, bool reset)
{
    if (s->state == PROXY_SESSION_CLOSING)
        return;
    s->state = PROXY_SESSION_CLOSING;
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    proxy_session_up_end(s);
    proxy_pump_close(&s->pump, PROXY_PUMP_B, reset);
    proxy_pump_close(&s->pump, PROXY_PUMP_A, reset);
    if (s->ops->close)
        s->ops->close(s);
}

void proxy_session_close(struct proxy_session *s)
{
    close_session(s, false);
}

/* Cut by the server (shutdown, eviction): a FIN would make a cut stream look complete. */
void proxy_session_abort(struct proxy_session *s)
{
    close_session(s, true);
}

bool proxy_session_in_head(const struct proxy_session *s)
{
    /* The head timer runs and nothing was dialed yet (an HTTP keep-alive client between two
     * requests is waiting too). */
    return s->state == PROXY_SESSION_OPEN && uv_is_active((const uv_handle_t *)&s->timer) &&
           s->pump.side[PROXY_PUMP_B].state == PROXY_PUMP_NONE;
}

void proxy_session_log(struct proxy_session *s, enum base_log_level level, const char *event,
                       const char *fmt, ...)
{
    const struct base_logger *l = &s->env->cfg->logger;
    if (!base_log_enabled(l, level))
        return;
    char fields[BASE_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fields, sizeof(fields), fmt, ap);
    va_end(ap);
    base_logf(l, level, "event=%s conn=%lu client=%s%s%s", event, s->id, s->client,
              fields[0] ? " " : "", fields);
}

/* ---- finishing ---- */

static void on_timer(uv_timer_t *t)
{
    struct proxy_session *s = t->data;
    if (s->state == PROXY_SESSION_OPEN && s->ops->timeout) {
        s->ops->timeout(s);
        return;
    }
    if (s->state == PROXY_SESSION_OPEN)
        proxy_session_log(s, BASE_LOG_INFO, "proxy_head_timeout", "proto=%s", s->ops->name);
    proxy_session_close(s);
}

/* The answer is out: FIN, and read (discarding) until the client goes or the linger ends. */
static void linger(struct proxy_session *s)
{
    proxy_pump_shutdown(&s->pump, PROXY_PUMP_A);
    proxy_pump_read(&s->pump, PROXY_PUMP_A, true);
    uv_timer_start(&s->timer, on_timer, PROXY_SESSION_LINGER_MS, 0);
    if (proxy_pump_eof(&s->pump, PROXY_PUMP_A))
        proxy_session_close(s);
}

void proxy_session_finish(struct proxy_session *s)
{
    if (s->state != PROXY_SESSION_OPEN)
        return;
    s->state = PROXY_SESSION_FINISHING;
    proxy_session_up_end(s);
    proxy_pump_close(&s->pump, PROXY_PUMP_B, false);
    if (proxy_pump_pending(&s->pump, PROXY_PUMP_A) == 0)
        linger(s); /* else drained() comes back here */
}

/* ---- the pump's events ---- */

static void pump_connected(void *owner, int err, const struct base_endpoint *local)
{
    struct proxy_session *s = owner;
    if (s->state != PROXY_SESSION_OPEN)
        return;
    proxy_session_up_connected(s, err); /* the error is on the proxy_close line */
    if (s->ops->connected)
        s->ops->connected(s, err, local);
}

static void pump_read(void *owner, int side, const uint8_t *data, size_t len)
{
    struct proxy_session *s = owner;
    if (s->state != PROXY_SESSION_OPEN)
        return; /* finishing: the client's input is discarded */
    if (side == PROXY_PUMP_A && s->ops->input)
        s->ops->input(s, data, len);
    else if (side == PROXY_PUMP_B && s->ops->up_read)
        s->ops->up_read(s, data, len);
}

static void pump_eof(void *owner, int side)
{
    struct proxy_session *s = owner;
    void (*op)(struct proxy_session *) = side == PROXY_PUMP_A ? s->ops->client_eof : s->ops->up_eof;
    if (s->state == PROXY_SESSION_OPEN && op)
        op(s);
    else
        proxy_session_close(s);
}

static void pump_error(void *owner, int side, int err)
{
    struct proxy_session *s = owner;
    if (s->state == PROXY_SESSION_CLOSING)
        return;
    proxy_session_log(s, BASE_LOG_DEBUG, "proxy_stream_error", "side=%s err=%s",
                      side == PROXY_PUMP_A ? "client" : "upstream", base_errname(err));
    proxy_session_up_error(s, side, err);
    if (side == PROXY_PUMP_B && s->state == PROXY_SESSION_OPEN && s->ops->up_error)
        s->ops->up_error(s, err);
    else
        proxy_session_close(s);
}

static void pump_drained(void *owner, int side)
{
    struct proxy_session *s = owner;
    if (side == PROXY_PUMP_A && s->state == PROXY_SESSION_FINISHING)
        linger(s);
}

static void pump_done(void *owner)
{
    proxy_session_close(owner);
}

static void pump_closed(void *owner, int side)
{
    (void)side;
    unref(owner);
}

static const struct proxy_pump_ops pump_ops = {
    .connected = pump_connected,
    .read = pump_read,
    .eof = pump_eof,
    .error = pump_error,
    .drained = pump_drained,
    .done = pump_done,
    .closed = pump_closed,
};

/* ---- what the protocols call ---- */

void proxy_session_reply(struct proxy_session *s, const void *data, size_t len)
{
    if (s->state != PROXY_SESSION_CLOSING && proxy_pump_write(&s->pump, PROXY_PUMP_A, data, len))
        proxy_session_close(s);
}

void proxy_session_up_write(struct proxy_session *s, const void *data, size_t len)
{
    if (s->state != PROXY_SESSION_CLOSING && proxy_pump_write(&s->pump, PROXY_PUMP_B, data, len))
        proxy_session_close(s);
}

void proxy_session_read_client(struct proxy_session *s, bool want)
{
    proxy_pump_read(&s->pump, PROXY_PUMP_A, want);
}

void proxy_session_read_up(struct proxy_session *s, bool want)
{
    proxy_pump_read(&s->pump, PROXY_PUMP_B, want);
}

int proxy_session_dial(struct proxy_session *s, const struct proxy_target *t)
{
    const struct proxy_dialer *d = &s->env->cfg->dialer;
    char buf[PROXY_TARGET_STRLEN];
    if (base_log_enabled(&s->env->cfg->logger, BASE_LOG_DEBUG))
        proxy_session_log(s, BASE_LOG_DEBUG, "proxy_dial", "proto=%s target=%s", s->ops->name,
                          proxy_target_format(t, buf, sizeof(buf)));
    struct proxy_stream *up =
        d->dial(d->ctx, t, &proxy_pump_cbs, proxy_pump_ud(&s->pump, PROXY_PUMP_B));
    if (!up)
        return -ENOMEM;
    proxy_session_up_dialled(s, t);
    s->open++;
    proxy_pump_attach(&s->pump, PROXY_PUMP_B, up, false);
    proxy_session_read_client(s, false);
    return 0;
}

void proxy_session_up_close(struct proxy_session *s)
{
    proxy_session_up_end(s);
    proxy_pump_close(&s->pump, PROXY_PUMP_B, false);
}

void proxy_session_relay(struct proxy_session *s)
{
    proxy_pump_relay(&s->pump);
}

void proxy_session_timer(struct proxy_session *s, unsigned ms)
{
    if (s->state == PROXY_SESSION_CLOSING)
        return;
    if (ms)
        uv_timer_start(&s->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&s->timer);
}

void proxy_session_hold(struct proxy_session *s)
{
    s->open++;
}

void proxy_session_release(struct proxy_session *s)
{
    unref(s);
}

void proxy_session_switch(struct proxy_session *s, const struct proxy_session_ops *ops, void *proto)
{
    if (s->ops->free)
        s->ops->free(s);
    s->ops = ops;
    s->proto = proto;
}

/* ---- birth ---- */

struct proxy_session *proxy_session_new(const struct proxy_session_env *env, uv_stream_t *listener,
                                        unsigned long id, const struct proxy_session_ops *ops)
{
    struct proxy_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->env = env;
    s->id = id;
    s->ops = ops;
    base_list_init(&s->link);
    proxy_pump_init(&s->pump, &pump_ops, s);
    proxy_pump_set_budget(&s->pump, env->cfg->budget, env->mem);
    struct proxy_stream *client = proxy_stream_accept(
        listener, &proxy_pump_cbs, proxy_pump_ud(&s->pump, PROXY_PUMP_A), &s->peer, &s->local);
    if (!client) {
        free(s);
        return NULL;
    }
    proxy_pump_attach(&s->pump, PROXY_PUMP_A, client, true);
    base_endpoint_format(&s->peer, s->client, sizeof(s->client));
    uv_timer_init(env->loop, &s->timer);
    s->timer.data = s;
    s->open = 2; /* the client stream and the timer */
    return s;
}

void proxy_session_start(struct proxy_session *s)
{
    proxy_session_timer(s, s->env->cfg->head_timeout_ms);
    proxy_session_read_client(s, true);
}
