/*
 * DNS over a byte stream (RFC 7766), shared by every stream transport: framing, pipelining,
 * the in-flight cap, output backpressure, EOF and the idle timeout. See dns.h.
 */
#include <stdlib.h>
#include <string.h>

#include "dns_internal.h"

#define DEFAULT_IDLE_MS 10000
/* Unprocessed input beyond this (frames waiting for a free slot) pauses reading. */
#define IN_MAX (2 + DNS_MSG_MAX)

/* One query waiting for the resolver. */
struct stream_query {
    struct stream_query *prev, *next;
    struct dns_stream *s;
    struct dns_request *req;
    int sync; /* 1 while inside dns_resolver_handle, 2 once answered there */
};

struct dns_stream {
    struct dns_resolver *r;
    const struct dns_stream_ops *ops;
    void *ctx;
    uv_timer_t timer; /* idle timeout, or a zero-delay kick after dns_stream_writable */
    unsigned idle_ms;
    struct stream_query *queries;
    unsigned inflight;
    uint8_t *in;
    size_t in_off, in_len, in_cap;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    int paused, eof, blocked, kick, closed, freed;
    int processing, again; /* inside process(); another pass wanted */
};

static size_t out_pending(const struct dns_stream *s)
{
    return s->out_len - s->out_off;
}

static void query_unlink(struct dns_stream *s, struct stream_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        s->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
}

static void cancel_queries(struct dns_stream *s)
{
    while (s->queries) {
        struct stream_query *q = s->queries;
        query_unlink(s, q);
        dns_request_cancel(q->req);
        free(q);
    }
    s->inflight = 0;
}

/* The session is done: nothing but dns_stream_free touches it after this. */
static void stream_close(struct dns_stream *s, int graceful)
{
    if (s->closed)
        return;
    s->closed = 1;
    cancel_queries(s);
    uv_timer_stop(&s->timer);
    s->ops->close(s->ctx, graceful);
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
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

static void flush_out(struct dns_stream *s)
{
    while (!s->closed && !s->blocked && out_pending(s)) {
        ssize_t n = s->ops->write(s->ctx, s->out + s->out_off, out_pending(s));
        if (n < 0) {
            stream_close(s, 0);
            return;
        }
        if (n == 0)
            s->blocked = 1;
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
        return -1;
    dns_put16(s->out + s->out_len, (uint16_t)len);
    memcpy(s->out + s->out_len + 2, msg, len);
    s->out_len += 2 + len;
    return 0;
}

/* Room for one more query: a free slot and a client that reads its replies. */
static int can_take(const struct dns_stream *s)
{
    return s->inflight < DNS_STREAM_MAX_INFLIGHT && out_pending(s) <= DNS_STREAM_OUT_MAX;
}

static void set_reading(struct dns_stream *s)
{
    int pause = s->eof || !can_take(s) || s->in_len - s->in_off >= IN_MAX;
    if (s->closed || pause == s->paused)
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
    if (s->closed)
        return;
    if (s->eof && !s->inflight && !out_pending(s)) {
        stream_close(s, 1);
        return;
    }
    set_reading(s);
}

static void on_reply(void *ctx, const uint8_t *reply, size_t len)
{
    struct stream_query *q = ctx;
    struct dns_stream *s = q->s;
    int sync = q->sync;
    if (sync) {
        q->sync = 2; /* process() frees it */
    } else {
        query_unlink(s, q);
        free(q);
    }
    s->inflight--;
    if (!reply || !len) {
        stream_close(s, 0); /* garbage on a stream: no way to resync */
        return;
    }
    if (queue_reply(s, reply, len) < 0) {
        stream_close(s, 0);
        return;
    }
    flush_out(s);
    if (!sync && !s->closed)
        progress(s);
}

/* Hands every complete frame to the resolver while there is room. */
static void process_frames(struct dns_stream *s)
{
    size_t start = s->in_off;
    while (!s->closed && can_take(s) && s->in_len - s->in_off >= 2) {
        size_t flen = dns_get16(s->in + s->in_off);
        if (s->in_len - s->in_off - 2 < flen)
            break;
        struct stream_query *q = calloc(1, sizeof(*q));
        if (!q) {
            stream_close(s, 0);
            return;
        }
        const uint8_t *msg = s->in + s->in_off + 2;
        s->in_off += 2 + flen;
        q->s = s;
        q->sync = 1;
        s->inflight++;
        struct dns_request *req = dns_resolver_handle(s->r, msg, flen, DNS_REPLY_TCP, on_reply, q);
        if (q->sync == 2) {
            free(q);
            continue;
        }
        if (s->closed) { /* closed by another reply meanwhile */
            dns_request_cancel(req);
            free(q);
            return;
        }
        q->sync = 0;
        q->req = req;
        q->next = s->queries;
        if (s->queries)
            s->queries->prev = q;
        s->queries = q;
    }
    if (s->closed)
        return;
    /* Only whole queries count as activity: a client trickling a byte now and then must
     * not hold its slot forever. */
    if (s->in_off > start && !s->kick)
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
    if (s->processing) {
        s->again = 1;
        return;
    }
    s->processing = 1;
    do {
        s->again = 0;
        process_frames(s);
    } while (s->again && !s->closed);
    s->processing = 0;
}

static void on_timer(uv_timer_t *t)
{
    struct dns_stream *s = t->data;
    if (s->kick) {
        s->kick = 0;
        uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
        progress(s);
        return;
    }
    if (s->inflight) { /* busy upstream: not idle */
        uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
        return;
    }
    /* Replies the client never read for a whole idle period are dropped: abort. */
    stream_close(s, !out_pending(s));
}

struct dns_stream *dns_stream_new(struct dns_resolver *r, unsigned idle_ms,
                                  const struct dns_stream_ops *ops, void *ctx)
{
    struct dns_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->r = r;
    s->ops = ops;
    s->ctx = ctx;
    s->idle_ms = idle_ms ? idle_ms : DEFAULT_IDLE_MS;
    uv_timer_init(r->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, s->idle_ms, 0);
    return s;
}

void dns_stream_feed(struct dns_stream *s, const uint8_t *data, size_t len)
{
    if (s->closed || s->eof || !len)
        return;
    if (reserve(&s->in, &s->in_cap, s->in_len + len) < 0) {
        stream_close(s, 0);
        return;
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    progress(s);
}

void dns_stream_eof(struct dns_stream *s)
{
    if (s->closed || s->eof)
        return;
    s->eof = 1;
    progress(s);
}

void dns_stream_writable(struct dns_stream *s)
{
    if (s->closed)
        return;
    s->blocked = 0;
    flush_out(s);
    if (s->closed || s->blocked)
        return;
    /* Resume from the loop, not from inside the transport's callback (a transport may not
     * hand held bytes over while it is in one). */
    s->kick = 1;
    uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void stream_freed(uv_handle_t *h)
{
    struct dns_stream *s = h->data;
    free(s->in);
    free(s->out);
    free(s);
}

void dns_stream_free(struct dns_stream *s)
{
    if (!s || s->freed)
        return;
    s->freed = 1;
    s->closed = 1;
    cancel_queries(s);
    uv_close((uv_handle_t *)&s->timer, stream_freed);
}
