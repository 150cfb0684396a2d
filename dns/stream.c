/*
 * DNS over a byte stream (RFC 7766), shared by every stream transport (see dns.h). Bytes fed
 * in are framed (process_frames: each complete frame goes to dns_resolver_handle while there
 * is room), replies are queued with their length prefix and written out as the transport
 * takes them (flush_out); progress() then honours EOF and pauses or resumes reading. The one
 * timer closes an idle session, or, right after dns_stream_writable, resumes from the loop.
 *
 * The session's life:
 *   OPEN -> EOF       the client's FIN: what is in flight is still answered
 *   OPEN, EOF -> DONE ops->done called (finished, idle, or broken): no op is called again
 *   any -> CLOSED     dns_stream_close: the timer closes, its close callback frees
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

#define DEFAULT_IDLE_MS 10000
/* Unprocessed input beyond this (frames waiting for a free slot) pauses reading. */
#define IN_MAX (2 + DNS_MSG_MAX)

enum stream_state { STREAM_OPEN, STREAM_EOF, STREAM_DONE, STREAM_CLOSED };
/* What the timer is running for. */
enum stream_timer { TIMER_IDLE, TIMER_KICK };
/* process(): not running, running, running and asked for another pass by a reply that
 * arrived from inside it. */
enum stream_pass { PASS_NONE, PASS_RUNNING, PASS_AGAIN };

/* One query given to the resolver: ASKING inside dns_resolver_handle (an answer there frees
 * it at once), then WAITING in the session's list until its answer or cancelation. */
enum query_state { QUERY_ASKING, QUERY_WAITING };
struct stream_query {
    struct base_list link; /* dns_stream.queries while WAITING */
    struct dns_stream *s;
    struct dns_request *req;
    enum query_state state;
};

struct dns_stream {
    struct dns_resolver *r;
    const struct dns_stream_ops *ops;
    void *ctx;
    enum stream_state state;
    uv_timer_t timer;
    enum stream_timer timer_for;
    unsigned idle_ms;
    struct base_list queries; /* stream_query */
    unsigned inflight;
    uint8_t *in;
    size_t in_off, in_len, in_cap;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    bool paused;  /* as last told to ops->pause */
    bool blocked; /* ops->write took nothing: wait for dns_stream_writable */
    enum stream_pass pass;
    dns_closed_cb on_closed;
    void *closed_arg;
};

static bool ended(const struct dns_stream *s)
{
    return s->state == STREAM_DONE || s->state == STREAM_CLOSED;
}

static size_t out_pending(const struct dns_stream *s)
{
    return s->out_len - s->out_off;
}

static void cancel_queries(struct dns_stream *s)
{
    struct base_list *pos;
    while ((pos = base_list_first(&s->queries))) {
        struct stream_query *q = container_of(pos, struct stream_query, link);
        base_list_remove(pos);
        dns_request_cancel(q->req);
        free(q);
    }
    s->inflight = 0;
}

/* The session is done: nothing but dns_stream_close touches it after this. */
static void stream_done(struct dns_stream *s, bool graceful)
{
    if (ended(s))
        return;
    s->state = STREAM_DONE;
    cancel_queries(s);
    uv_timer_stop(&s->timer);
    s->ops->done(s->ctx, graceful);
}

/* Grows *buf to hold need bytes. */
static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 4096;
    while (n < need)
        n *= 2;
    uint8_t *b = realloc(*buf, n);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

/* ---- output ---- */

static void flush_out(struct dns_stream *s)
{
    while (!ended(s) && !s->blocked && out_pending(s)) {
        ssize_t n = s->ops->write(s->ctx, s->out + s->out_off, out_pending(s));
        if (n < 0) {
            stream_done(s, false);
            return;
        }
        if (n == 0)
            s->blocked = true;
        s->out_off += (size_t)n;
    }
    if (!out_pending(s))
        s->out_off = s->out_len = 0;
}

static int queue_reply(struct dns_stream *s, const uint8_t *msg, size_t len)
{
    if (s->out_off) {
        memmove(s->out, s->out + s->out_off, out_pending(s));
        s->out_len -= s->out_off;
        s->out_off = 0;
    }
    if (reserve(&s->out, &s->out_cap, s->out_len + 2 + len) < 0)
        return -ENOMEM;
    dns_put16(s->out + s->out_len, (uint16_t)len);
    memcpy(s->out + s->out_len + 2, msg, len);
    s->out_len += 2 + len;
    return 0;
}

/* Room for one more query: a free slot and a client that reads its replies. */
static bool can_take(const struct dns_stream *s)
{
    return s->inflight < DNS_STREAM_MAX_INFLIGHT && out_pending(s) <= DNS_STREAM_OUT_MAX;
}

static void set_reading(struct dns_stream *s)
{
    bool pause = s->state == STREAM_EOF || !can_take(s) || s->in_len - s->in_off >= IN_MAX;
    if (ended(s) || pause == s->paused)
        return;
    s->paused = pause;
    s->ops->pause(s->ctx, pause); /* resuming may feed us again */
}

static void process(struct dns_stream *s);
static void on_timer(uv_timer_t *t);

/* Frames answered, EOF honoured, reading adjusted: what follows any change of state. */
static void progress(struct dns_stream *s)
{
    process(s);
    if (ended(s))
        return;
    if (s->state == STREAM_EOF && !s->inflight && !out_pending(s)) {
        stream_done(s, true);
        return;
    }
    set_reading(s);
}

static void on_reply(void *ctx, const uint8_t *reply, size_t len)
{
    struct stream_query *q = ctx;
    struct dns_stream *s = q->s;
    bool asking = q->state == QUERY_ASKING;
    base_list_remove(&q->link);
    free(q);
    s->inflight--;
    if (!reply || !len || queue_reply(s, reply, len) < 0) {
        stream_done(s, false); /* garbage on a stream: no way to resync; or out of memory */
        return;
    }
    flush_out(s);
    if (!asking && !ended(s))
        progress(s); /* from inside process(), the running pass goes on instead */
}

/* ---- input ---- */

/* Hands one frame to the resolver; -1 when the session ended meanwhile. */
static int ask(struct dns_stream *s, const uint8_t *msg, size_t len)
{
    struct stream_query *q = calloc(1, sizeof(*q));
    if (!q) {
        stream_done(s, false);
        return -1;
    }
    *q = (struct stream_query){.s = s, .state = QUERY_ASKING};
    base_list_init(&q->link);
    s->inflight++;
    struct dns_request *req = dns_resolver_handle(s->r, msg, len, DNS_REPLY_TCP, on_reply, q);
    if (!req)
        return ended(s) ? -1 : 0; /* answered: q is gone */
    if (ended(s)) {               /* done by another reply meanwhile */
        dns_request_cancel(req);
        free(q);
        return -1;
    }
    q->state = QUERY_WAITING;
    q->req = req;
    base_list_push_back(&s->queries, &q->link);
    return 0;
}

/* Hands every complete frame to the resolver while there is room. */
static void process_frames(struct dns_stream *s)
{
    size_t start = s->in_off;
    while (!ended(s) && can_take(s) && s->in_len - s->in_off >= 2) {
        size_t flen = dns_get16(s->in + s->in_off);
        if (s->in_len - s->in_off - 2 < flen)
            break;
        const uint8_t *msg = s->in + s->in_off + 2;
        s->in_off += 2 + flen;
        if (ask(s, msg, flen) < 0)
            return;
    }
    if (ended(s))
        return;
    /* Only whole queries count as activity: a client trickling a byte now and then must
     * not hold its slot forever. */
    if (s->in_off > start && s->timer_for == TIMER_IDLE)
        uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
    if (s->in_off > start && s->ops->consumed)
        s->ops->consumed(s->ctx, s->in_off - start);
    if (s->in_off) {
        memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
        s->in_len -= s->in_off;
        s->in_off = 0;
    }
}

/* A reply delivered from inside dns_resolver_handle() must not run a nested pass over the
 * input buffer (it would move the bytes under the outer pass): it asks for another pass. */
static void process(struct dns_stream *s)
{
    if (s->pass != PASS_NONE) {
        s->pass = PASS_AGAIN;
        return;
    }
    do {
        s->pass = PASS_RUNNING;
        process_frames(s);
    } while (s->pass == PASS_AGAIN && !ended(s));
    s->pass = PASS_NONE;
}

static void on_timer(uv_timer_t *t)
{
    struct dns_stream *s = container_of(t, struct dns_stream, timer);
    if (s->timer_for == TIMER_KICK) {
        s->timer_for = TIMER_IDLE;
        uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
        progress(s);
        return;
    }
    if (s->inflight) { /* busy upstream: not idle */
        uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
        return;
    }
    /* Replies the client never read for a whole idle period are dropped: abort. */
    stream_done(s, !out_pending(s));
}

/* ---- the transport's calls ---- */

int dns_stream_new(struct dns_resolver *r, const struct dns_stream_config *cfg,
                   struct dns_stream **out)
{
    struct dns_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->r = r;
    s->ops = cfg->ops;
    s->ctx = cfg->ctx;
    s->idle_ms = cfg->idle_ms ? cfg->idle_ms : DEFAULT_IDLE_MS;
    base_list_init(&s->queries);
    uv_timer_init(r->loop, &s->timer);
    uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
    *out = s;
    return 0;
}

void dns_stream_feed(struct dns_stream *s, const uint8_t *data, size_t len)
{
    if (s->state != STREAM_OPEN || !len)
        return;
    if (reserve(&s->in, &s->in_cap, s->in_len + len) < 0) {
        stream_done(s, false);
        return;
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    progress(s);
}

void dns_stream_eof(struct dns_stream *s)
{
    if (s->state != STREAM_OPEN)
        return;
    s->state = STREAM_EOF;
    progress(s);
}

void dns_stream_writable(struct dns_stream *s)
{
    if (ended(s))
        return;
    s->blocked = false;
    flush_out(s);
    if (ended(s) || s->blocked)
        return;
    /* Resume from the loop, not from inside the transport's callback (a transport may not
     * hand held bytes over while it is in one). */
    s->timer_for = TIMER_KICK;
    uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_stream_closed(uv_handle_t *h)
{
    struct dns_stream *s = container_of((uv_timer_t *)h, struct dns_stream, timer);
    dns_closed_cb cb = s->on_closed;
    void *arg = s->closed_arg;
    free(s->in);
    free(s->out);
    free(s);
    if (cb)
        cb(arg);
}

void dns_stream_close(struct dns_stream *s, dns_closed_cb on_closed, void *arg)
{
    if (!s || s->state == STREAM_CLOSED)
        return;
    s->state = STREAM_CLOSED;
    s->on_closed = on_closed;
    s->closed_arg = arg;
    cancel_queries(s);
    uv_close((uv_handle_t *)&s->timer, on_stream_closed);
}
