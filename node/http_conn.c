/*
 * One connection of the HTTP server (http_server.h): it reads one request under the read
 * timeout, answers faults itself (the route and the caller's right as soon as the head is in,
 * before any body or "100 Continue"), dispatches to the route's handler and writes the answer,
 * or carries a stream of chunks, then shuts its side down and closes. One timer bounds each
 * phase: the request, a deferred answer, a stream's stalled reader, the answer leaving. Flow:
 * node_http_conn_start -> on_read -> node_http_parser_feed -> on_parsed -> check_route ->
 * dispatch -> handler -> node_http_reply* / node_http_defer / node_http_stream_* -> conn_write
 * -> finish -> on_write -> on_shutdown -> conn_close -> on_closed (freed, the server told);
 * on_timeout for each phase. The helpers for handlers come last.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

static void conn_close(struct node_http_conn *c, int err);
static void on_timeout(uv_timer_t *t);

static void log_request(struct node_http_conn *c)
{
    const struct node_http_request *r = &c->req;
    if (!base_log_enabled(&c->s->cfg.log, BASE_LOG_DEBUG))
        return;
    char path[160];
    base_logf(&c->s->cfg.log, BASE_LOG_DEBUG,
              "event=http_request server=%s method=%s path=%s status=%d uid=%ld pid=%ld",
              c->s->name, r->method && r->method[0] ? r->method : "-",
              base_log_quote(path, sizeof(path), r->path ? r->path : "-"), c->status,
              r->peer.known ? (long)r->peer.uid : -1L, r->peer.known ? (long)r->peer.pid : -1L);
}

static void on_closed(uv_handle_t *h)
{
    struct node_http_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct node_http_server *s = c->s;
    bool admitted = c->admitted;
    if (c->parser_ready)
        node_http_parser_free(&c->parser);
    free(c);
    node_http_server_conn_freed(s, admitted);
}

/* Ends the connection; an owner still holding it hears on_gone(err) first. */
static void conn_close(struct node_http_conn *c, int err)
{
    if (c->state == NODE_HTTP_CONN_CLOSING)
        return;
    enum node_http_conn_state was = c->state;
    c->state = NODE_HTTP_CONN_CLOSING;
    if ((was == NODE_HTTP_CONN_DEFERRED || was == NODE_HTTP_CONN_STREAMING) && c->on_gone)
        c->on_gone(c->gone_arg, c, err);
    base_list_remove(&c->link);
    uv_close(&c->h.handle, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

void node_http_conn_abort(struct node_http_conn *c, int err)
{
    conn_close(c, err);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data, 0);
}

static void maybe_shutdown(struct node_http_conn *c)
{
    if (c->state != NODE_HTTP_CONN_ENDING || c->queued > 0)
        return;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, &c->h.stream, on_shutdown) != 0)
        conn_close(c, 0);
}

static void on_write(uv_write_t *req, int status)
{
    struct node_http_write *w = container_of(req, struct node_http_write, req);
    struct node_http_conn *c = w->c;
    c->queued -= w->len;
    c->unsent -= w->unsent;
    free(w);
    if (status < 0) {
        conn_close(c, status);
        return;
    }
    if (c->state == NODE_HTTP_CONN_STREAMING) { /* the reader took something */
        if (uv_stream_get_write_queue_size(&c->h.stream) == 0)
            uv_timer_stop(&c->timer);
        else
            uv_timer_start(&c->timer, on_timeout, c->s->cfg.stall_timeout_ms, 0);
    }
    maybe_shutdown(c);
}

/* Queues head (a format) and then body bytes as one write. */
static int conn_write(struct node_http_conn *c, const char *body, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int conn_write(struct node_http_conn *c, const char *body, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int hn = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    struct node_http_write *w = hn < 0 ? NULL : malloc(sizeof(*w) + (size_t)hn + 1 + len);
    if (!w) {
        conn_close(c, -ENOMEM);
        return -ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(w->data, (size_t)hn + 1, fmt, ap);
    va_end(ap);
    if (len)
        memcpy(w->data + hn, body, len);
    w->c = c;
    w->len = (size_t)hn + len;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
    size_t before = uv_stream_get_write_queue_size(&c->h.stream);
    int rc = uv_write(&w->req, &c->h.stream, &buf, 1, on_write);
    if (rc != 0) {
        free(w);
        conn_close(c, rc);
        return rc;
    }
    c->queued += w->len;
    /* The kernel took it at once, or (part of) it waits in libuv's queue, which then grew. */
    w->unsent = uv_stream_get_write_queue_size(&c->h.stream) > before;
    c->unsent += w->unsent;
    return 0;
}

/* The answer is queued: bound how long it may take to leave, then shut down. */
static void finish(struct node_http_conn *c)
{
    if (c->state == NODE_HTTP_CONN_CLOSING)
        return;
    c->state = NODE_HTTP_CONN_ENDING;
    uv_timer_start(&c->timer, on_timeout, c->s->cfg.read_timeout_ms, 0);
    maybe_shutdown(c);
}

static bool may_answer(const struct node_http_conn *c)
{
    return c->state == NODE_HTTP_CONN_READING || c->state == NODE_HTTP_CONN_HANDLING ||
           c->state == NODE_HTTP_CONN_DEFERRED;
}

static void reply_with(struct node_http_conn *c, int status, const char *content_type,
                       const char *extra, const char *body, size_t len)
{
    if (!may_answer(c))
        return;
    c->status = status;
    log_request(c);
    if (conn_write(c, body, len,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                   status, node_http_reason(status), content_type, len, extra) == 0)
        finish(c);
}

void node_http_reply(struct node_http_conn *c, int status, const char *content_type,
                     const char *body, size_t len)
{
    reply_with(c, status, content_type ? content_type : "text/plain; charset=utf-8", "", body, len);
}

static void reply_json_with(struct node_http_conn *c, int status, const char *extra, json_t *body)
{
    /* Reals are measurements (ping's rtt_ms to the microsecond): 12 digits print 1.043, not
     * 1.0429999999999999. */
    char *text = body ? json_dumps(body, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\": \"out of memory\"}\n";
        reply_with(c, 503, "application/json", "", oom, sizeof(oom) - 1);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* jansson's terminator becomes the final newline */
    reply_with(c, status, "application/json", extra, text, n + 1);
    free(text);
}

void node_http_reply_json(struct node_http_conn *c, int status, json_t *body)
{
    reply_json_with(c, status, "", body);
}

static void reply_error_v(struct node_http_conn *c, int status, const char *extra, const char *fmt,
                          va_list ap) __attribute__((format(printf, 4, 0)));
static void reply_error_v(struct node_http_conn *c, int status, const char *extra, const char *fmt,
                          va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    reply_json_with(c, status, extra, json_pack("{s:o}", "error", node_http_json_text(msg)));
}

void node_http_reply_error(struct node_http_conn *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(c, status, "", fmt, ap);
    va_end(ap);
}

static void reply_error_extra(struct node_http_conn *c, int status, const char *extra,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reply_error_extra(struct node_http_conn *c, int status, const char *extra,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(c, status, extra, fmt, ap);
    va_end(ap);
}

/* The head is complete: the route and the caller's right to it are checked now, before any
 * body is read or "100 Continue" invites it, so a refused caller sends no body at all.
 * Returns false when it answered. */
static bool check_route(struct node_http_conn *c)
{
    node_http_parser_request(&c->parser, &c->req);
    char allow[128], extra[160];
    int st =
        node_http_server_find(c->s, c->req.method, c->req.path, &c->route, allow, sizeof(allow));
    if (st == 404) {
        node_http_reply_error(c, 404, "no such endpoint: %s", c->req.path);
        return false;
    }
    if (st == 405) {
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
        reply_error_extra(c, 405, extra, "%s takes %s, not %s", c->req.path, allow, c->req.method);
        return false;
    }
    if (c->route->write && !c->req.may_write) {
        char who[48] = "";
        if (c->req.peer.known)
            snprintf(who, sizeof(who), "; you are uid %ld", (long)c->req.peer.uid);
        node_http_reply_error(c, 403,
                              "%s %s changes the node: only root or the node's own user "
                              "(uid %ld) may call it%s",
                              c->req.method, c->req.path, (long)c->s->euid, who);
        return false;
    }
    return true;
}

/* A whole request that passed check_route: its handler, which must answer or defer. */
static void dispatch(struct node_http_conn *c)
{
    node_http_parser_request(&c->parser, &c->req);
    const struct node_http_route_entry *r = c->route;
    c->state = NODE_HTTP_CONN_HANDLING;
    r->fn(r->arg, c, &c->req);
    if (c->state == NODE_HTTP_CONN_HANDLING)
        node_http_reply_error(c, 500, "%s %s gave no answer", c->req.method, c->req.path);
}

static void on_parsed(struct node_http_conn *c, enum node_http_parse_state st)
{
    if (st == NODE_HTTP_PARSE_ERROR) {
        node_http_parser_request(&c->parser, &c->req);
        node_http_reply_error(c, c->parser.status, "%s", c->parser.error);
        return;
    }
    if (st == NODE_HTTP_PARSE_HEAD || (!c->route && !check_route(c)))
        return;
    if (st == NODE_HTTP_PARSE_DONE) {
        uv_timer_stop(&c->timer);
        dispatch(c);
    } else if (c->parser.expect_continue) {
        c->parser.expect_continue = false;
        conn_write(c, NULL, 0, "HTTP/1.1 100 Continue\r\n\r\n");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct node_http_conn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct node_http_conn *c = st->data;
    if (n > 0 && c->state == NODE_HTTP_CONN_READING) {
        on_parsed(c, node_http_parser_feed(&c->parser, buf->base, (size_t)n));
        return;
    }
    if (n >= 0)
        return; /* bytes after the request are not read */
    uv_read_stop(st);
    bool silent = c->parser.state == NODE_HTTP_PARSE_HEAD && c->parser.head_bytes == 0;
    if (c->state == NODE_HTTP_CONN_READING && silent)
        conn_close(c, 0); /* connected and left without a word (a liveness probe) */
    else if (c->state == NODE_HTTP_CONN_READING && n == UV_EOF)
        on_parsed(c, node_http_parser_finish(&c->parser)); /* the client may still read */
    else if (c->state != NODE_HTTP_CONN_ENDING)
        conn_close(c, n == UV_EOF ? -ECONNRESET : (int)n);
    else if (n != UV_EOF)
        conn_close(c, (int)n);
}

/* The owner's operation never ended: it forgets c (on_gone), the client hears 504. */
static void defer_expired(struct node_http_conn *c)
{
    node_http_gone_fn on_gone = c->on_gone;
    c->on_gone = NULL;
    if (on_gone)
        on_gone(c->gone_arg, c, -ETIMEDOUT);
    base_logf(&c->s->cfg.log, BASE_LOG_WARN,
              "event=http_deferred_timeout server=%s path=%s timeout_ms=%u", c->s->name,
              c->req.path, c->deadline_ms);
    node_http_reply_error(c, 504, "%s %s gave no answer within %u ms", c->req.method, c->req.path,
                          c->deadline_ms);
}

static int drop(struct node_http_conn *c, const char *why);

/* A stream's reader took nothing for stall_timeout_ms while bytes waited. */
static void stream_stalled(struct node_http_conn *c)
{
    node_http_gone_fn on_gone = c->on_gone;
    c->on_gone = NULL;
    c->state = NODE_HTTP_CONN_ENDING; /* the owner hears it once, here */
    if (on_gone)
        on_gone(c->gone_arg, c, -ETIMEDOUT);
    char why[96];
    snprintf(why, sizeof(why), "the reader took nothing for %u ms", c->s->cfg.stall_timeout_ms);
    drop(c, why);
}

static void on_timeout(uv_timer_t *t)
{
    struct node_http_conn *c = t->data;
    if (c->state == NODE_HTTP_CONN_READING)
        node_http_reply_error(c, 408, "the request did not arrive within %u ms",
                              c->s->cfg.read_timeout_ms);
    else if (c->state == NODE_HTTP_CONN_DEFERRED)
        defer_expired(c);
    else if (c->state == NODE_HTTP_CONN_STREAMING)
        stream_stalled(c);
    else
        conn_close(c, -ETIMEDOUT); /* the answer did not leave in time */
}

int node_http_conn_start(struct node_http_server *s, struct node_http_conn *c,
                         const struct node_http_peer *peer, bool refuse)
{
    c->req.peer = *peer;
    c->req.may_write = node_http_may_write(s, peer);
    c->req.method = c->req.path = c->req.query = c->req.content_type = c->req.body = "";
    c->open_handles = 2;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timeout, s->cfg.read_timeout_ms, 0);
    if (refuse && (c->req.may_write || !s->cfg.writer_conns)) {
        node_http_reply_error(c, 503, "too many connections (at most %u)", s->cfg.max_conns);
        return 0;
    }
    if (refuse) {
        node_http_reply_error(c, 503,
                              "too many connections from readers (at most %u; %u more are kept "
                              "for root and the node's own user, uid %ld)",
                              s->cfg.max_conns - s->cfg.writer_conns, s->cfg.writer_conns,
                              (long)s->euid);
        return 0;
    }
    if (node_http_parser_init(&c->parser, s->cfg.max_head, s->cfg.max_body) != 0) {
        conn_close(c, -ENOMEM);
        return -ENOMEM;
    }
    c->parser_ready = true;
    uv_read_start(&c->h.stream, on_alloc, on_read);
    return 0;
}

void node_http_defer(struct node_http_conn *c, unsigned timeout_ms, node_http_gone_fn on_gone,
                     void *arg)
{
    if (c->state != NODE_HTTP_CONN_HANDLING)
        return;
    c->state = NODE_HTTP_CONN_DEFERRED;
    c->on_gone = on_gone;
    c->gone_arg = arg;
    c->deadline_ms = timeout_ms ? timeout_ms : c->s->cfg.defer_timeout_ms;
    uv_timer_start(&c->timer, on_timeout, c->deadline_ms, 0);
}

int node_http_stream_start(struct node_http_conn *c, const char *content_type,
                           node_http_gone_fn on_gone, void *arg)
{
    if (c->state != NODE_HTTP_CONN_HANDLING && c->state != NODE_HTTP_CONN_DEFERRED)
        return -EINVAL;
    c->on_gone = NULL; /* a failure below is told by the return value */
    c->gone_arg = arg;
    c->state = NODE_HTTP_CONN_STREAMING;
    c->status = 200;
    log_request(c);
    uv_timer_stop(&c->timer);
    int rc = conn_write(c, NULL, 0,
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                        content_type ? content_type : "application/x-ndjson");
    if (rc == 0)
        c->on_gone = on_gone;
    return rc;
}

/* The reader is dropped (why: fell behind, or stalled): one last line, the last chunk, the
 * end. The owner learns it from the caller (a return value, or on_gone). */
static int drop(struct node_http_conn *c, const char *why)
{
    char line[256], q[160];
    int n = snprintf(line, sizeof(line), "{\"error\": \"dropped: %s\"}\n", why);
    base_logf(&c->s->cfg.log, BASE_LOG_WARN,
              "event=http_stream_dropped server=%s path=%s reason=%s queued=%zu uid=%ld pid=%ld",
              c->s->name, c->req.path, base_log_quote(q, sizeof(q), why),
              uv_stream_get_write_queue_size(&c->h.stream),
              c->req.peer.known ? (long)c->req.peer.uid : -1L,
              c->req.peer.known ? (long)c->req.peer.pid : -1L);
    c->state = NODE_HTTP_CONN_ENDING;
    if (conn_write(c, line, (size_t)n, "%x\r\n", n) == 0 &&
        conn_write(c, NULL, 0, "\r\n0\r\n\r\n") == 0)
        finish(c);
    return BASE_ELIMIT;
}

int node_http_stream_write(struct node_http_conn *c, const char *data, size_t len)
{
    if (c->state != NODE_HTTP_CONN_STREAMING)
        return BASE_ECLOSING;
    if (len == 0)
        return 0; /* an empty chunk would end the stream */
    /* Behind is what the kernel has not taken yet (libuv's queue), not c->queued: that also
     * counts bytes written at once whose callbacks wait for the next turn of the loop, and a
     * burst of lines in one turn (a reload's events) would drop a reader that keeps up. Each
     * write waiting there counts at its cost: tiny lines to a reader that never reads would
     * otherwise hold some 80 times what a count of bytes sees (two writes of ~230 bytes of
     * heap for a 1-byte line's 6 bytes). */
    size_t behind =
        uv_stream_get_write_queue_size(&c->h.stream) + c->unsent * NODE_HTTP_WRITE_OVERHEAD;
    if (behind + len > c->s->cfg.stream_queue_bytes) {
        char why[96];
        snprintf(why, sizeof(why), "the reader fell %zu bytes behind (at most %zu)", behind,
                 c->s->cfg.stream_queue_bytes);
        return drop(c, why);
    }
    /* A failure here is told by the return value alone, never by on_gone inside this call. */
    node_http_gone_fn on_gone = c->on_gone;
    c->on_gone = NULL;
    int rc = conn_write(c, data, len, "%zx\r\n", len);
    if (rc == 0)
        rc = conn_write(c, NULL, 0, "\r\n");
    if (rc != 0)
        return rc;
    c->on_gone = on_gone;
    /* Bytes wait for the reader: it has stall_timeout_ms to take some (on_write restarts it). */
    if (uv_stream_get_write_queue_size(&c->h.stream) > 0 && !uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, on_timeout, c->s->cfg.stall_timeout_ms, 0);
    return 0;
}

int node_http_stream_write_json(struct node_http_conn *c, const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    size_t n = strlen(text);
    text[n] = '\n';
    int rc = node_http_stream_write(c, text, n + 1);
    free(text);
    return rc;
}

void node_http_stream_end(struct node_http_conn *c)
{
    if (c->state != NODE_HTTP_CONN_STREAMING)
        return;
    c->state = NODE_HTTP_CONN_ENDING;
    if (conn_write(c, NULL, 0, "0\r\n\r\n") == 0)
        finish(c);
}

json_t *node_http_json_text(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    /* Not UTF-8, as a JSON string must be: the bytes above ASCII become '?' rather than the
     * answer a 503 (or no answer). */
    char *t = strdup(s);
    for (char *p = t; p && *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = t ? json_string(t) : NULL;
    free(t);
    return v;
}

json_t *node_http_body_json(struct node_http_conn *c, const struct node_http_request *req)
{
    if (req->body_len == 0)
        return json_object();
    json_error_t err;
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!v) {
        node_http_reply_error(c, 400, "body: line %d column %d: %s", err.line, err.column,
                              err.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        node_http_reply_error(c, 400, "body: want a JSON object");
        return NULL;
    }
    return v;
}
