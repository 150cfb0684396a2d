/*
 * A session's counters, and the two lines each upstream connection logs at info level:
 * proxy_open once it is connected (what was asked, where it went), proxy_close when it ends,
 * failed dials included (the bytes each way, how long, the answer the client got, and the
 * error with its cause). Flow: up_dialled -> up_connected (proxy_open, or the dial's error) ->
 * up_error (the first error met) -> up_end (proxy_close; its bytes join the listener's).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "session.h"

static const int http_statuses[PROXY_STATS_HTTP_STATUSES] = {200, 400, 403, 407, 408,
                                                             431, 502, 503, 504};

void proxy_stats_init(struct proxy_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < PROXY_STATS_HTTP_STATUSES; i++)
        st->http_status[i].status = http_statuses[i];
}

void proxy_session_sent_socks5(struct proxy_session *s, uint8_t rep)
{
    if (rep < PROXY_STATS_SOCKS5_REPLIES)
        s->env->stats->socks5_reply[rep]++;
    s->up.answer_key = "reply";
    s->up.answer = rep;
}

void proxy_session_sent_http(struct proxy_session *s, int status, bool relayed)
{
    struct proxy_stats *st = s->env->stats;
    if (relayed)
        st->http_forwarded++;
    for (int i = 0; !relayed && i < PROXY_STATS_HTTP_STATUSES; i++)
        if (st->http_status[i].status == status)
            st->http_status[i].count++;
    s->up.answer_key = "status";
    s->up.answer = status;
}

void proxy_session_refused_auth(struct proxy_session *s)
{
    s->env->stats->refused_auth++;
}

static struct proxy_stream *upstream(const struct proxy_session *s)
{
    return s->pump.side[PROXY_PUMP_B].s;
}

void proxy_session_up_dialled(struct proxy_session *s, const struct proxy_target *t)
{
    proxy_session_up_end(s); /* a previous upstream not ended yet: never, but its line first */
    memset(&s->up, 0, sizeof(s->up));
    s->up.active = true;
    s->up.start = uv_now(s->env->loop);
    s->up.target = *t;
    s->up.answer = -1;
    s->env->stats->dials++;
}

/* `proto=... target=... [dest=... via=... [peer=... peer_key=...]]` */
static void describe(const struct proxy_session *s, char *out, size_t cap)
{
    const struct proxy_session_up *u = &s->up;
    char t[PROXY_TARGET_STRLEN], qt[2 * PROXY_TARGET_STRLEN + 3];
    proxy_target_format(&u->target, t, sizeof(t));
    int n =
        snprintf(out, cap, "proto=%s target=%s", s->ops->name, base_log_quote(qt, sizeof(qt), t));
    if (n < 0 || (size_t)n >= cap || u->route.dest.addr.family == 0)
        return;
    char dest[BASE_ENDPOINT_STRLEN];
    base_endpoint_format(&u->route.dest, dest, sizeof(dest));
    const char *via = u->route.via == PROXY_VIA_TUNNEL   ? "tunnel"
                      : u->route.via == PROXY_VIA_DIRECT ? "direct"
                                                         : "unknown";
    int m = snprintf(out + n, cap - (size_t)n, " dest=%s via=%s", dest, via);
    if (m < 0 || (size_t)(n + m) >= cap || u->route.via != PROXY_VIA_TUNNEL)
        return;
    char who[BASE_LOG_PEER_STRLEN];
    snprintf(out + n + m, cap - (size_t)(n + m), " %s",
             base_log_peer(who, sizeof(who), u->route.peer,
                           u->route.peer_key[0] ? u->route.peer_key : "-"));
}

void proxy_session_up_connected(struct proxy_session *s, int err)
{
    if (!s->up.active)
        return;
    struct proxy_stream *up = upstream(s);
    if (up && up->ops->route)
        up->ops->route(up, &s->up.route);
    if (err) {
        s->up.err = err;
        s->up.err_side = PROXY_PUMP_B;
        s->env->stats->dial_errors++;
        return;
    }
    s->up.connected = true;
    if (!base_log_enabled(&s->env->cfg->logger, BASE_LOG_INFO))
        return; /* formatting costs microseconds on the way to the client's reply */
    char what[BASE_LOG_LINE_MAX / 2];
    describe(s, what, sizeof(what));
    proxy_session_log(s, BASE_LOG_INFO, "proxy_open", "%s", what);
}

void proxy_session_up_error(struct proxy_session *s, int side, int err)
{
    if (!s->up.active || s->up.err)
        return;
    s->up.err = err;
    s->up.err_side = side;
}

/* ` err=... proxy_status=... [rcode=...] reason="..." side=...` or nothing. */
static void describe_error(const struct proxy_session_up *u, char *out, size_t cap)
{
    out[0] = '\0';
    if (!u->err)
        return;
    const char *rcode;
    const char *type = proxy_err_proxy_status(u->err, &rcode);
    char reason[160];
    snprintf(out, cap, " err=%s proxy_status=%s%s%s reason=%s side=%s", base_errname(u->err), type,
             rcode ? " rcode=" : "", rcode ? rcode : "",
             base_log_quote(reason, sizeof(reason), base_strerror(u->err)),
             u->err_side == PROXY_PUMP_A ? "client" : "upstream");
}

void proxy_session_up_end(struct proxy_session *s)
{
    struct proxy_session_up *u = &s->up;
    if (!u->active)
        return;
    u->active = false;
    const struct proxy_pump_side *b = &s->pump.side[PROXY_PUMP_B];
    s->env->stats->bytes_up += b->tx;
    s->env->stats->bytes_down += b->rx;
    if (!base_log_enabled(&s->env->cfg->logger, BASE_LOG_INFO))
        return;
    char what[BASE_LOG_LINE_MAX / 2], answer[32] = "", error[320];
    describe(s, what, sizeof(what));
    if (u->answer >= 0)
        snprintf(answer, sizeof(answer), " %s=%d", u->answer_key, u->answer);
    describe_error(u, error, sizeof(error));
    proxy_session_log(s, BASE_LOG_INFO, "proxy_close",
                      "%s bytes_up=%" PRIu64 " bytes_down=%" PRIu64 " duration_ms=%" PRIu64 "%s%s",
                      what, b->tx, b->rx, uv_now(s->env->loop) - u->start, answer, error);
}

void proxy_session_up_bytes(const struct proxy_session *s, struct proxy_stats *st)
{
    if (!s->up.active)
        return;
    st->bytes_up += s->pump.side[PROXY_PUMP_B].tx;
    st->bytes_down += s->pump.side[PROXY_PUMP_B].rx;
}
