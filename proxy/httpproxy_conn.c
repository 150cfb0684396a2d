/*
 * The HTTP proxy on a client connection: CONNECT tunnels, and absolute-URI requests forwarded
 * one upstream connection per request, with the client connection kept across requests.
 * Responses are forwarded as the upstream sent them; llhttp only finds where each one ends.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"

static void send_error(struct conn *c, int status)
{
    char buf[512];
    conn_log(c, PROXY_LOG_INFO, "http: answering %d", status);
    conn_client_write(c, buf, httpproxy_error_response(buf, sizeof(buf), status));
    conn_finish(c);
}

static void on_req_body(void *arg, const uint8_t *data, size_t len, int ref)
{
    struct conn *c = arg;
    if (ref && c->cur)
        conn_up_write_ref(c, c->cur, data, len);
    else
        conn_up_write_copy(c, data, len);
}

static int resp_headers_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    /* A response to HEAD has headers only, whatever Content-Length says. */
    return c->http->head_method ? 1 : 0;
}

static int resp_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200 && status != 101)
        return 0; /* interim (100 Continue): the final response follows */
    c->resp_done = 1;
    c->resp_keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static int ensure_http(struct conn *c)
{
    if (c->http)
        return 0;
    c->http = malloc(sizeof(*c->http));
    if (!c->http || httpproxy_init(c->http, &c->srv->auth, c->srv->cfg.max_header_bytes) != 0) {
        free(c->http);
        c->http = NULL;
        return -1;
    }
    c->http->on_body = on_req_body;
    c->http->arg = c;
    llhttp_settings_init(&c->resp_settings);
    c->resp_settings.on_headers_complete = resp_headers_complete;
    c->resp_settings.on_message_complete = resp_message_complete;
    return 0;
}

void httpproxy_conn_free(struct conn *c)
{
    if (!c->http)
        return;
    httpproxy_free(c->http);
    free(c->http);
    c->http = NULL;
}

static void next_request(struct conn *c);

/* Feed client bytes (from rb) through the request parser. */
void httpproxy_conn_data(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len)
{
    if (ensure_http(c) != 0) {
        conn_close(c);
        return;
    }
    struct rbuf *saved = c->cur;
    c->cur = rb;
    while (!c->closing) {
        size_t used;
        enum httpproxy_event ev = httpproxy_input(c->http, data, len, &used);
        data += used;
        len -= used;
        if (ev == HTTPPROXY_MORE)
            break;
        if (ev == HTTPPROXY_ERROR) {
            send_error(c, c->http->status);
            break;
        }
        if (ev == HTTPPROXY_HEAD) {
            conn_head_timer(c, 0);
            if (c->http->status) {
                send_error(c, c->http->status);
                break;
            }
            conn_hold(c, rb, data, len);
            c->req_done = c->resp_done = c->resp_started = 0;
            if (conn_dial(c, &c->http->target) != 0)
                send_error(c, 502);
            break;
        }
        /* HTTPPROXY_DONE: the request is all upstream; later bytes wait for the response. */
        c->req_done = 1;
        conn_hold(c, rb, data, len);
        if (c->resp_done) {
            next_request(c);
        } else {
            c->phase = PH_HTTP_WAIT;
            c->want_read = 0;
            conn_sync_read(c);
        }
        break;
    }
    c->cur = saved;
}

/* Process the held bytes as if they had just been read. */
static void replay_hold(struct conn *c)
{
    if (!c->hold) {
        httpproxy_conn_data(c, NULL, (const uint8_t *)"", 0);
        return;
    }
    struct rbuf *rb = c->hold;
    size_t off = c->hold_off, len = c->hold_len;
    c->hold = NULL;
    c->hold_len = 0;
    httpproxy_conn_data(c, rb, rb->data + off, len);
    /* conn_hold took its own reference if it kept any of it. */
    if (--rb->refs == 0)
        free(rb);
}

static void next_request(struct conn *c)
{
    c->phase = PH_HEAD;
    httpproxy_next(c->http);
    conn_head_timer(c, c->srv->cfg.head_timeout_ms);
    replay_hold(c);
    if (c->closing || c->phase != PH_HEAD)
        return;
    c->want_read = 1;
    conn_sync_read(c);
}

void httpproxy_conn_connected(struct conn *c, int err)
{
    if (err) {
        send_error(c, proxy_err_http(err));
        return;
    }
    if (c->http->connect) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        conn_client_write(c, ok, sizeof(ok) - 1);
        conn_relay_start(c); /* bytes after the CONNECT head go first */
        return;
    }
    llhttp_init(&c->resp, HTTP_RESPONSE, &c->resp_settings);
    c->resp.data = c;
    conn_up_write_copy(c, c->http->out, c->http->out_len);
    c->phase = PH_HTTP_BODY;
    c->up_want_read = 1;
    conn_up_sync_read(c);
    replay_hold(c);
    if (c->closing || c->phase != PH_HTTP_BODY)
        return;
    c->want_read = 1;
    conn_sync_read(c);
}

static void response_finished(struct conn *c)
{
    conn_up_close(c);
    int keep = c->resp_keep_alive && c->http->keep_alive && c->req_done && !c->client_eof;
    if (!keep) {
        conn_finish(c);
        return;
    }
    if (c->phase == PH_HTTP_WAIT)
        next_request(c);
    /* Still in PH_HTTP_BODY means the request is not done: req_done covers that above. */
}

void httpproxy_conn_up_read(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->resp_done || !c->http)
        return; /* bytes after the response: nothing may follow it on this connection */
    llhttp_errno_t err = llhttp_execute(&c->resp, (const char *)data, len);
    size_t n = len;
    if (err == HPE_PAUSED) {
        n = (size_t)((const uint8_t *)llhttp_get_error_pos(&c->resp) - data);
    } else if (err != HPE_OK) {
        conn_log(c, PROXY_LOG_INFO, "http: bad response from upstream: %s", llhttp_errno_name(err));
        if (!c->resp_started)
            send_error(c, 502);
        else
            conn_close(c);
        return;
    }
    c->resp_started = 1;
    conn_client_write(c, data, n);
    if (c->resp_done && !c->closing)
        response_finished(c);
}

void httpproxy_conn_up_eof(struct conn *c)
{
    if (!c->resp_done && c->http && c->resp_started) {
        /* A body delimited by the connection's end completes here. */
        if (llhttp_finish(&c->resp) != HPE_OK || !c->resp_done) {
            conn_close(c);
            return;
        }
    }
    if (!c->resp_done) {
        send_error(c, 502);
        return;
    }
    response_finished(c);
}

void httpproxy_conn_client_eof(struct conn *c)
{
    /* The request is complete and upstream; the response can still be delivered. */
    c->http->keep_alive = 0;
}

void httpproxy_conn_timeout(struct conn *c)
{
    if (c->http && c->http->len == 0) {
        conn_close(c); /* idle keep-alive connection: just close it */
        return;
    }
    send_error(c, 408);
}
