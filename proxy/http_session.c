/*
 * The HTTP proxy on a session: CONNECT tunnels, and absolute-URI requests forwarded one
 * upstream connection per request, with the client connection kept across requests. The
 * request side is httpproxy.c's parser; responses are forwarded as the upstream sent them,
 * llhttp only finds where each one ends.
 * Flow: input (head) -> dial -> connected -> the head and body upstream (BODY) -> request done
 * (WAIT) -> response done -> next request (HEAD) or finish; CONNECT: connected -> TUNNEL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpproxy.h"
#include "sessions.h"

enum http_phase {
    PHASE_HEAD,    /* waiting for a request head */
    PHASE_DIALING, /* the upstream connects; the client is not read */
    PHASE_BODY,    /* the request body flows upstream; the response may already flow back */
    PHASE_WAIT,    /* the request is all upstream; the response still flows back */
    PHASE_TUNNEL,  /* CONNECT: the pump relays */
};
enum http_response { RESP_NONE, RESP_STARTED, RESP_DONE };

struct http {
    struct proxy_http_req req;
    enum http_phase phase;
    enum http_response resp;
    bool resp_keep_alive;
    llhttp_t resp_parser;
    llhttp_settings_t resp_settings;
    uint8_t *hold; /* client bytes after the request head: the body, or the next request */
    size_t hold_len;
};

static void http_input(struct proxy_session *s, const uint8_t *data, size_t len);

/* An error answer; err (or, without one, type: a Proxy-Status error type) says why. */
static void send_error(struct proxy_session *s, int status, int err, const char *type)
{
    struct http *h = s->proto;
    char buf[1024], detail[PROXY_TARGET_STRLEN + 160], target[PROXY_TARGET_STRLEN];
    struct proxy_http_why why = {.type = type};
    if (err) {
        why.type = proxy_err_proxy_status(err, &why.rcode);
        snprintf(detail, sizeof(detail), "tunless could not reach %s: %s",
                 proxy_target_format(&h->req.target, target, sizeof(target)), base_strerror(err));
        why.detail = detail;
    }
    if (!s->up.active) /* else the upstream's proxy_close line tells it */
        proxy_session_log(s, BASE_LOG_INFO, "http_error", "status=%d proxy_status=%s", status,
                          why.type ? why.type : "none");
    if (status == 407)
        proxy_session_refused_auth(s);
    proxy_session_sent_http(s, status, false);
    proxy_session_reply(s, buf, proxy_http_error_response(buf, sizeof(buf), status, &why));
    proxy_session_finish(s);
}

static void hold(struct proxy_session *s, const uint8_t *data, size_t len)
{
    struct http *h = s->proto;
    uint8_t *copy = len ? malloc(len) : NULL;
    if (len && !copy) {
        proxy_session_close(s);
        return;
    }
    if (len)
        memcpy(copy, data, len); /* data may point into the old hold */
    free(h->hold);
    h->hold = copy;
    h->hold_len = len;
}

/* Process the held bytes as if they had just been read (none still lets a request without a
 * body complete). */
static void replay_hold(struct proxy_session *s)
{
    struct http *h = s->proto;
    uint8_t *buf = h->hold;
    size_t len = h->hold_len;
    h->hold = NULL;
    h->hold_len = 0;
    http_input(s, buf ? buf : (const uint8_t *)"", len);
    free(buf);
}

static void next_request(struct proxy_session *s)
{
    struct http *h = s->proto;
    h->phase = PHASE_HEAD;
    proxy_http_next(&h->req);
    proxy_session_timer(s, s->env->cfg->head_timeout_ms);
    replay_hold(s);
    if (s->state == PROXY_SESSION_OPEN && h->phase == PHASE_HEAD)
        proxy_session_read_client(s, true);
}

static void on_head(struct proxy_session *s, const uint8_t *rest, size_t len)
{
    struct http *h = s->proto;
    proxy_session_timer(s, 0);
    if (h->req.status) {
        send_error(s, h->req.status, 0, h->req.status == 407 ? NULL : "http_request_error");
        return;
    }
    hold(s, rest, len);
    h->resp = RESP_NONE;
    h->phase = PHASE_DIALING;
    if (s->state == PROXY_SESSION_OPEN && proxy_session_dial(s, &h->req.target) != 0)
        send_error(s, 502, -ENOMEM, NULL);
}

static void http_input(struct proxy_session *s, const uint8_t *data, size_t len)
{
    struct http *h = s->proto;
    if (s->state != PROXY_SESSION_OPEN)
        return;
    size_t used;
    enum proxy_http_event ev = proxy_http_input(&h->req, data, len, &used);
    data += used;
    len -= used;
    switch (ev) {
    case PROXY_HTTP_MORE:
        break;
    case PROXY_HTTP_ERROR:
        send_error(s, h->req.status, 0, h->req.status == 407 ? NULL : "http_request_error");
        break;
    case PROXY_HTTP_HEAD:
        on_head(s, data, len);
        break;
    case PROXY_HTTP_DONE:
        /* The request is all upstream; later bytes wait for the response. */
        hold(s, data, len);
        if (h->resp == RESP_DONE) {
            next_request(s);
        } else {
            h->phase = PHASE_WAIT;
            proxy_session_read_client(s, false);
        }
        break;
    }
}

static void on_req_body(void *arg, const uint8_t *data, size_t len, int ref)
{
    (void)ref; /* the pump copies either way */
    proxy_session_up_write(arg, data, len);
}

/* ---- the upstream ---- */

static void http_connected(struct proxy_session *s, int err, const struct base_endpoint *local)
{
    (void)local;
    struct http *h = s->proto;
    if (err) {
        send_error(s, proxy_err_http(err), err, NULL);
        return;
    }
    if (h->req.connect) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        proxy_session_sent_http(s, 200, false);
        proxy_session_reply(s, ok, sizeof(ok) - 1);
        h->phase = PHASE_TUNNEL;
        proxy_session_up_write(s, h->hold, h->hold_len); /* bytes after the head go first */
        hold(s, NULL, 0);
        if (s->state == PROXY_SESSION_OPEN)
            proxy_session_relay(s);
        return;
    }
    llhttp_init(&h->resp_parser, HTTP_RESPONSE, &h->resp_settings);
    h->resp_parser.data = s;
    proxy_session_up_write(s, h->req.out, h->req.out_len);
    h->phase = PHASE_BODY;
    proxy_session_read_up(s, true);
    replay_hold(s);
    if (s->state == PROXY_SESSION_OPEN && h->phase == PHASE_BODY)
        proxy_session_read_client(s, true);
}

static void response_finished(struct proxy_session *s)
{
    struct http *h = s->proto;
    proxy_session_up_close(s);
    bool keep = h->resp_keep_alive && h->req.keep_alive && h->phase == PHASE_WAIT &&
                !proxy_pump_eof(&s->pump, PROXY_PUMP_A);
    if (keep)
        next_request(s);
    else
        proxy_session_finish(s);
}

static void http_up_read(struct proxy_session *s, const uint8_t *data, size_t len)
{
    struct http *h = s->proto;
    if (h->resp == RESP_DONE)
        return; /* bytes after the response: nothing may follow it on this connection */
    llhttp_errno_t err = llhttp_execute(&h->resp_parser, (const char *)data, len);
    size_t n = len;
    if (err == HPE_PAUSED) {
        n = (size_t)((const uint8_t *)llhttp_get_error_pos(&h->resp_parser) - data);
    } else if (err != HPE_OK) {
        proxy_session_log(s, BASE_LOG_INFO, "http_bad_response", "error=%s",
                          llhttp_errno_name(err));
        if (h->resp == RESP_NONE)
            send_error(s, 502, 0, "http_protocol_error");
        else
            proxy_session_close(s);
        return;
    }
    if (h->resp == RESP_NONE)
        h->resp = RESP_STARTED;
    proxy_session_reply(s, data, n);
    if (h->resp == RESP_DONE && s->state == PROXY_SESSION_OPEN)
        response_finished(s);
}

static void http_up_eof(struct proxy_session *s)
{
    struct http *h = s->proto;
    /* A body delimited by the connection's end completes here. */
    if (h->resp == RESP_STARTED &&
        (llhttp_finish(&h->resp_parser) != HPE_OK || h->resp != RESP_DONE)) {
        proxy_session_close(s);
        return;
    }
    if (h->resp != RESP_DONE) {
        send_error(s, 502, 0, "http_response_incomplete");
        return;
    }
    response_finished(s);
}

static void http_up_error(struct proxy_session *s, int err)
{
    struct http *h = s->proto;
    if (h->phase != PHASE_TUNNEL && h->resp == RESP_NONE)
        send_error(s, 502, err, NULL);
    else
        proxy_session_close(s);
}

static int resp_headers_complete(llhttp_t *p)
{
    struct proxy_session *s = p->data;
    struct http *h = s->proto;
    /* A response to HEAD has headers only, whatever Content-Length says. */
    return h->req.head_method ? 1 : 0;
}

static int resp_message_complete(llhttp_t *p)
{
    struct proxy_session *s = p->data;
    struct http *h = s->proto;
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200 && status != 101)
        return 0; /* interim (100 Continue): the final response follows */
    h->resp = RESP_DONE;
    h->resp_keep_alive = llhttp_should_keep_alive(p);
    proxy_session_sent_http(s, status, true);
    return HPE_PAUSED;
}

/* ---- the client's end and the clock ---- */

static void http_client_eof(struct proxy_session *s)
{
    struct http *h = s->proto;
    if (h->phase != PHASE_WAIT) {
        proxy_session_close(s);
        return;
    }
    h->req.keep_alive = false; /* the request is upstream; its response can still be delivered */
}

static void http_timeout(struct proxy_session *s)
{
    struct http *h = s->proto;
    if (h->req.len == 0)
        proxy_session_close(s); /* an idle keep-alive connection: just close it */
    else
        send_error(s, 408, 0, NULL);
}

static void http_free(struct proxy_session *s)
{
    struct http *h = s->proto;
    proxy_http_free(&h->req);
    free(h->hold);
    free(h);
}

static const struct proxy_session_ops http_ops = {
    .name = "http",
    .input = http_input,
    .client_eof = http_client_eof,
    .connected = http_connected,
    .up_read = http_up_read,
    .up_eof = http_up_eof,
    .up_error = http_up_error,
    .timeout = http_timeout,
    .free = http_free,
};

void proxy_http_begin(struct proxy_session *s)
{
    struct http *h = calloc(1, sizeof(*h));
    if (!h || proxy_http_init(&h->req, s->env->auth, s->env->cfg->max_header_bytes) != 0) {
        free(h);
        proxy_session_close(s);
        return;
    }
    h->req.on_body = on_req_body;
    h->req.arg = s;
    llhttp_settings_init(&h->resp_settings);
    h->resp_settings.on_headers_complete = resp_headers_complete;
    h->resp_settings.on_message_complete = resp_message_complete;
    proxy_session_switch(s, &http_ops, h);
}
