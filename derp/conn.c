/*
 * One client connection's state machine. The flow through this file: accept -> HTTP request
 * (HTTP state; anything but an upgrade is answered and closed) -> upgrade: 101 unless fast
 * start, then ServerKey (LOGIN) -> ClientInfo opened, checked, registered, ServerInfo sent
 * (ACTIVE) -> frames until the link fails or the server closes it -> unregistered, freed.
 * Output: control frames go straight to the link; packets wait in a bounded ring that drops
 * its oldest when full, and move to the link each time the previous write completes.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Control output queued beyond this (a client that pings and never reads) drops the client. */
#define CONN_CTRL_CAP (4u << 20)

static int conn_on_data(struct derp_link *l, const uint8_t *p, size_t n);
static void conn_on_drained(struct derp_link *l);
static void conn_on_error(struct derp_link *l, int err);
static void conn_on_closed(struct derp_link *l);

static const struct derp_link_ops conn_ops = {
    .on_data = conn_on_data,
    .on_drained = conn_on_drained,
    .on_error = conn_on_error,
    .on_closed = conn_on_closed,
};

static void conn_set_preferred(struct derp_conn *c, bool v);

/* The next KeepAlive: the period plus up to a twelfth of it (5 s at derper's 60 s), so that
 * clients connected together do not wake together. */
static uint64_t next_keepalive(const struct derp_server *s, uint64_t now)
{
    uint32_t period = s->limits.keepalive_ms;
    return now + period + randombytes_uniform(period / 12 + 1);
}

static struct derp_conn *conn_of(struct derp_link *l)
{
    return container_of(l, struct derp_conn, link);
}

static struct derp_conn *conn_alloc(struct derp_server *s)
{
    struct derp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->http = malloc(sizeof(*c->http));
    if (!c->http) {
        free(c);
        return NULL;
    }
    derp_http_req_init(c->http);
    c->srv = s;
    c->state = DERP_CONN_HTTP;
    c->num = ++s->next_num;
    c->deadline = uv_now(s->loop) + s->limits.login_timeout_ms;
    derp_reader_init(&c->rd, s->limits.max_client_info);
    c->rd.strict = true; /* as derper: before the login, anything but ClientInfo closes */
    base_list_init(&c->watch_node);
    base_list_init(&c->flush_node);
    base_list_push_back(&s->conns, &c->node);
    s->handles++;
    snprintf(c->peer, sizeof(c->peer), "?");
    return c;
}

void derp_conn_accept(struct derp_server *s)
{
    struct derp_conn *c = conn_alloc(s);
    if (!c) {
        base_logf(&s->log, BASE_LOG_ERROR, "event=accept_failed err=ENOMEM");
        return;
    }
    s->ctr.accepts++;
    int rc = derp_link_accept(&c->link, (uv_stream_t *)&s->listener, s->tls, &conn_ops, &s->shared);
    if (rc != 0) {
        derp_conn_close(c, base_errname(rc));
        return;
    }
    derp_link_peer(&c->link, c->peer, sizeof(c->peer));
    base_logf(&s->log, BASE_LOG_DEBUG, "event=accept conn=%llu remote=%s",
              (unsigned long long)c->num, c->peer);
}

struct derp_conn *derp_conn_new_sink(struct derp_server *s)
{
    struct derp_conn *c = conn_alloc(s);
    if (c && derp_link_sink(&c->link, s->loop, &conn_ops, &s->shared) != 0)
        derp_conn_close(c, "sink");
    return c;
}

static void key_short(const uint8_t *key, char out[17])
{
    sodium_bin2hex(out, 17, key, 8);
}

static void conn_drop_queue(struct derp_conn *c)
{
    for (; c->q_len; c->q_len--, c->q_head = (c->q_head + 1) % c->srv->limits.queue_depth) {
        free(c->q[c->q_head]);
        c->srv->ctr.dropped_gone++;
    }
    free(c->q);
    c->q = NULL;
}

static void conn_close_how(struct derp_conn *c, const char *why, bool flush)
{
    struct derp_server *s = c->srv;
    if (c->state == DERP_CONN_CLOSING) {
        if (!flush)
            derp_link_close(&c->link);
        return;
    }
    enum derp_conn_state prev = c->state;
    conn_set_preferred(c, false);
    c->state = DERP_CONN_CLOSING;
    if (prev == DERP_CONN_ACTIVE)
        derp_registry_remove(s, c);
    base_list_remove(&c->watch_node);
    base_list_remove(&c->flush_node);
    conn_drop_queue(c);
    if (prev >= DERP_CONN_ACTIVE) {
        char k[17];
        key_short(c->key, k);
        base_logf(&s->log, BASE_LOG_INFO, "event=client_gone conn=%llu key=%s remote=%s reason=%s",
                  (unsigned long long)c->num, k, c->peer, why);
    } else {
        base_logf(&s->log, BASE_LOG_DEBUG, "event=conn_close conn=%llu remote=%s reason=%s",
                  (unsigned long long)c->num, c->peer, why);
    }
    if (flush)
        derp_link_close_after_flush(&c->link);
    else
        derp_link_close(&c->link);
}

void derp_conn_close(struct derp_conn *c, const char *why)
{
    conn_close_how(c, why, false);
}

void derp_conn_send_frame(struct derp_conn *c, const uint8_t *frame, size_t len)
{
    if (c->state == DERP_CONN_CLOSING)
        return;
    if (derp_link_queued(&c->link) + len > CONN_CTRL_CAP ||
        derp_link_append(&c->link, frame, len) != 0) {
        c->srv->ctr.send_overflow++;
        derp_conn_close(c, "send_overflow");
        return;
    }
    derp_link_flush(&c->link);
}

void derp_conn_send_health(struct derp_conn *c, const char *text)
{
    uint8_t f[DERP_HEADER_LEN + 256];
    size_t n = strlen(text) < 256 ? strlen(text) : 256;
    c->srv->ctr.health_frames++;
    derp_conn_send_frame(c, f, derp_build(f, DERP_FRAME_HEALTH, text, n));
}

/* Appends one RecvPacket frame to the link's pending output. */
static int conn_put_packet(struct derp_conn *c, const uint8_t *src, const uint8_t *pkt, size_t len)
{
    uint8_t *dst = derp_link_reserve(&c->link, DERP_HEADER_LEN + DERP_KEY_LEN + len);
    if (!dst)
        return -ENOMEM;
    size_t h = derp_build_packet_head(dst, DERP_FRAME_RECV_PACKET, src, len);
    memcpy(dst + h, pkt, len);
    derp_link_commit(&c->link, h + len);
    c->srv->ctr.packets_sent++;
    c->srv->ctr.bytes_sent += len;
    return 0;
}

void derp_conn_send_packet(struct derp_conn *c, const uint8_t src[DERP_KEY_LEN], const uint8_t *pkt,
                           size_t len)
{
    struct derp_server *s = c->srv;
    if (c->state != DERP_CONN_ACTIVE) {
        s->ctr.dropped_gone++;
        return;
    }
    /* The kernel takes what we write: into the link's buffer, written once the current read
     * is done (one write per destination per read, however many packets it carried). */
    if (!derp_link_busy(&c->link) && c->q_len == 0) {
        if (conn_put_packet(c, src, pkt, len) != 0)
            s->ctr.dropped_gone++;
        else if (!base_list_linked(&c->flush_node))
            base_list_push_back(&s->to_flush, &c->flush_node);
        return;
    }
    uint32_t depth = s->limits.queue_depth;
    if (c->q_len == depth) {
        free(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % depth;
        c->q_len--;
        s->ctr.dropped_queue_head++;
    }
    struct derp_pkt *p = malloc(sizeof(*p) + len);
    if (!p) {
        s->ctr.dropped_gone++;
        return;
    }
    memcpy(p->src, src, DERP_KEY_LEN);
    p->len = len;
    memcpy(p->data, pkt, len);
    c->q[(c->q_head + c->q_len) % depth] = p;
    c->q_len++;
}

static void conn_on_drained(struct derp_link *l)
{
    struct derp_conn *c = conn_of(l);
    uint32_t depth = c->srv->limits.queue_depth;
    while (c->q_len) {
        struct derp_pkt *p = c->q[c->q_head];
        c->q_head = (c->q_head + 1) % depth;
        c->q_len--;
        if (conn_put_packet(c, p->src, p->data, p->len) != 0)
            c->srv->ctr.dropped_gone++;
        free(p);
    }
}

static void conn_on_error(struct derp_link *l, int err)
{
    derp_conn_close(conn_of(l), err == UV_EOF ? "eof" : base_errname(err));
}

static void conn_on_closed(struct derp_link *l)
{
    struct derp_conn *c = conn_of(l);
    struct derp_server *s = c->srv;
    base_list_remove(&c->node);
    base_list_remove(&c->watch_node);
    base_list_remove(&c->flush_node);
    conn_drop_queue(c);
    derp_reader_free(&c->rd);
    free(c->http);
    free(c);
    derp_server_handle_closed(s);
}

/* ---- HTTP ---- */

static void conn_respond(struct derp_conn *c, int status, const char *ctype, const char *extra,
                         const char *body, size_t blen)
{
    char head[512];
    size_t n = derp_http_response(head, sizeof(head), status, ctype, extra, blen);
    c->srv->ctr.http_requests++;
    if (derp_link_append(&c->link, head, n) == 0 && blen)
        derp_link_append(&c->link, body, blen);
    conn_close_how(c, "http_done", true);
}

static void conn_upgrade(struct derp_conn *c, bool fast)
{
    struct derp_server *s = c->srv;
    s->ctr.upgrades++;
    if (!fast) {
        char head[512];
        size_t n = derp_http_upgrade_response(head, sizeof(head), s->pub_hex);
        derp_link_append(&c->link, head, n);
    }
    uint8_t f[DERP_HEADER_LEN + DERP_MAGIC_LEN + DERP_KEY_LEN];
    derp_link_append(&c->link, f, derp_build_server_key(f, s->pub));
    free(c->http);
    c->http = NULL;
    c->state = DERP_CONN_LOGIN;
    derp_link_flush(&c->link);
}

static void conn_metrics(struct derp_conn *c)
{
    size_t cap = 32 * 1024;
    char *body = malloc(cap);
    size_t n = body ? derp_server_metrics(c->srv, body, cap) : 0;
    conn_respond(c, 200, "text/plain; version=0.0.4", NULL, body, n);
    free(body);
}

static void conn_route_http(struct derp_conn *c)
{
    struct derp_http_req *r = c->http;
    char *q = strchr(r->path, '?');
    if (q)
        *q = '\0';
    if (strcmp(r->path, "/derp") == 0) {
        if (r->upgrade_derp && r->is_get)
            conn_upgrade(c, r->fast_start);
        else
            conn_respond(c, 426, "text/plain", NULL, "DERP requires connection upgrade\n", 33);
    } else if (strcmp(r->path, "/generate_204") == 0) {
        char extra[128] = "";
        if (r->challenge[0])
            snprintf(extra, sizeof(extra), "X-Tailscale-Response: response %s\r\n", r->challenge);
        conn_respond(c, 204, NULL, extra, NULL, 0);
    } else if (strcmp(r->path, "/metrics") == 0) {
        conn_metrics(c);
    } else if (strcmp(r->path, "/derp/probe") == 0 || strcmp(r->path, "/derp/latency-check") == 0) {
        /* Latency probes of clients without UDP (netcheck), as derper answers them. */
        conn_respond(c, 200, NULL, "Access-Control-Allow-Origin: *\r\n", NULL, 0);
    } else if (strcmp(r->path, "/healthz") == 0) {
        conn_respond(c, 200, "text/plain", NULL, "ok\n", 3);
    } else {
        conn_respond(c, 404, "text/plain", NULL, "not found\n", 10);
    }
}

/* Returns the bytes the request took; the rest are frames (fast start). */
static size_t conn_http(struct derp_conn *c, const uint8_t *p, size_t n)
{
    size_t used = n;
    switch (derp_http_req_feed(c->http, (const char *)p, n, &used)) {
    case DERP_HTTP_MORE:
        return n;
    case DERP_HTTP_DONE:
        conn_route_http(c);
        return used;
    case DERP_HTTP_TOO_BIG:
        c->srv->ctr.http_bad++;
        conn_respond(c, 431, "text/plain", NULL, "request too large\n", 18);
        return n;
    case DERP_HTTP_BAD:
    default:
        c->srv->ctr.http_bad++;
        conn_respond(c, 400, "text/plain", NULL, "bad request\n", 12);
        return n;
    }
}

/* ---- Login ---- */

static int conn_refuse(struct derp_conn *c, uint64_t *counter, const char *why, const char *text)
{
    (*counter)++;
    if (text)
        derp_conn_send_health(c, text);
    conn_close_how(c, why, text != NULL);
    return 1;
}

static bool mesh_key_ok(const struct derp_server *s, const char *given)
{
    size_t n = strlen(given);
    return s->mesh_key && n && n == strlen(s->mesh_key) &&
           sodium_memcmp(given, s->mesh_key, n) == 0;
}

static int conn_login(struct derp_conn *c, const struct derp_frame *f)
{
    struct derp_server *s = c->srv;
    struct derp_client_info info;
    if (f->type != DERP_FRAME_CLIENT_INFO)
        return conn_refuse(c, &s->ctr.login_bad_frame, "login_bad_frame", NULL);
    int rc = derp_client_info_open(f->payload, f->len, s->priv, c->key, &info);
    if (rc == BASE_EAUTH)
        return conn_refuse(c, &s->ctr.login_bad_box, "login_bad_box", NULL);
    if (rc == -EPROTO)
        return conn_refuse(c, &s->ctr.login_bad_version, "login_bad_version", NULL);
    if (rc != 0)
        return conn_refuse(c, &s->ctr.login_bad_json, "login_bad_json", NULL);
    if (!derp_registry_allowed(s, c->key))
        return conn_refuse(c, &s->ctr.login_refused_verify, "not_allowed",
                           "client key not allowed by this server");
    if (s->n_clients >= s->limits.max_clients && !derp_keymap_get(&s->clients, c->key))
        return conn_refuse(c, &s->ctr.clients_refused_cap, "server_full", "server full");
    c->q = calloc(s->limits.queue_depth, sizeof(*c->q));
    if (!c->q) {
        derp_conn_close(c, "ENOMEM");
        return 1;
    }
    c->can_mesh = mesh_key_ok(s, info.mesh_key);
    c->state = DERP_CONN_ACTIVE;
    if (derp_registry_add(s, c) != 0) {
        derp_conn_close(c, "ENOMEM");
        return 1;
    }
    struct derp_server_info si = {DERP_PROTOCOL_VERSION, s->limits.rate_bytes_per_sec,
                                  s->limits.rate_burst};
    uint8_t out[256];
    rc = derp_server_info_seal(&si, s->priv, c->key, out, sizeof(out));
    if (rc > 0)
        derp_conn_send_frame(c, out, (size_t)rc);
    c->rd.max_len = s->limits.max_frame;
    c->rd.strict = false;
    c->tokens = s->limits.rate_burst;
    c->next_keepalive = next_keepalive(s, uv_now(s->loop));
    s->ctr.logins++;
    char k[17];
    key_short(c->key, k);
    base_logf(&s->log, BASE_LOG_INFO, "event=client_login conn=%llu key=%s remote=%s mesh=%d",
              (unsigned long long)c->num, k, c->peer, c->can_mesh);
    return c->state == DERP_CONN_CLOSING;
}

/* ---- Steady state ---- */

static int conn_bad(struct derp_conn *c, uint64_t *counter, const char *why)
{
    (*counter)++;
    derp_conn_close(c, why);
    return 1;
}

static void conn_set_preferred(struct derp_conn *c, bool v)
{
    if (c->preferred == v)
        return;
    c->preferred = v;
    if (v)
        c->srv->n_home++;
    else
        c->srv->n_home--;
}

static int conn_mesh_frame(struct derp_conn *c, const struct derp_frame *f)
{
    struct derp_server *s = c->srv;
    const uint8_t *src, *dst, *pkt;
    size_t len;
    if (!c->can_mesh)
        return conn_bad(c, &s->ctr.mesh_denied, "mesh_denied");
    if (f->type == DERP_FRAME_WATCH_CONNS) {
        if (f->len != 0)
            return conn_bad(c, &s->ctr.bad_frames, "bad_watch_conns");
        derp_registry_watch(s, c);
    } else if (f->type == DERP_FRAME_CLOSE_PEER) {
        if (derp_parse_key(f, &dst, true) != 0)
            return conn_bad(c, &s->ctr.bad_frames, "bad_close_peer");
        union derp_keymap_val *v = derp_keymap_get(&s->clients, dst);
        if (v) {
            s->ctr.close_peer++;
            derp_conn_close(v->ptr, "close_peer");
        }
    } else {
        if (derp_parse_forward(f, &src, &dst, &pkt, &len) != 0)
            return conn_bad(c, &s->ctr.bad_frames, "bad_forward_packet");
        s->ctr.forwarded_in++;
        derp_route_forwarded(s, src, dst, pkt, len);
    }
    return c->state == DERP_CONN_CLOSING;
}

static int conn_frame_active(struct derp_conn *c, const struct derp_frame *f)
{
    struct derp_server *s = c->srv;
    const uint8_t *dst, *pkt;
    size_t len;
    uint8_t out[DERP_HEADER_LEN + 8];
    switch (f->type) {
    case DERP_FRAME_SEND_PACKET:
        if (derp_parse_packet(f, &dst, &pkt, &len) != 0)
            return conn_bad(c, &s->ctr.bad_frames, "bad_send_packet");
        s->ctr.packets_recv++;
        s->ctr.bytes_recv += len;
        derp_route_send(s, c, dst, pkt, len);
        break;
    case DERP_FRAME_NOTE_PREFERRED:
        if (f->len != 1)
            return conn_bad(c, &s->ctr.bad_frames, "bad_note_preferred");
        conn_set_preferred(c, f->payload[0] != 0);
        break;
    case DERP_FRAME_PING:
        if (f->len != 8)
            return conn_bad(c, &s->ctr.bad_frames, "bad_ping");
        s->ctr.pings++;
        derp_conn_send_frame(c, out, derp_build(out, DERP_FRAME_PONG, f->payload, 8));
        break;
    case DERP_FRAME_WATCH_CONNS:
    case DERP_FRAME_CLOSE_PEER:
    case DERP_FRAME_FORWARD_PACKET:
        return conn_mesh_frame(c, f);
    default:
        /* Frames a server never receives are skipped, as derper skips them. */
        s->ctr.unknown_frames++;
        break;
    }
    return c->state == DERP_CONN_CLOSING;
}

static int conn_frame(void *arg, const struct derp_frame *f)
{
    struct derp_conn *c = arg;
    switch (c->state) {
    case DERP_CONN_LOGIN:
        return conn_login(c, f);
    case DERP_CONN_ACTIVE:
        return conn_frame_active(c, f);
    case DERP_CONN_REPLACED:
        return conn_bad(c, &c->srv->ctr.replaced_closed, "replaced");
    default:
        return 1;
    }
}

static void conn_charge(struct derp_conn *c, size_t n)
{
    if (!c->srv->limits.rate_bytes_per_sec || c->state != DERP_CONN_ACTIVE)
        return;
    c->tokens -= (double)n;
    if (c->tokens < 0 && !c->link.paused) {
        c->srv->ctr.rate_limited++;
        derp_link_pause(&c->link);
    }
}

static int conn_on_data(struct derp_link *l, const uint8_t *p, size_t n)
{
    struct derp_conn *c = conn_of(l);
    if (c->state == DERP_CONN_HTTP) {
        size_t used = conn_http(c, p, n);
        if (c->state != DERP_CONN_LOGIN)
            return c->state == DERP_CONN_CLOSING;
        p += used;
        n -= used;
    }
    if (n == 0 || c->state == DERP_CONN_CLOSING)
        return c->state == DERP_CONN_CLOSING;
    uint64_t skipped = c->rd.skipped;
    bool login = c->state == DERP_CONN_LOGIN;
    int rc = derp_reader_feed(&c->rd, p, n, NULL, conn_frame, c);
    c->srv->ctr.unknown_frames += c->rd.skipped - skipped;
    if (rc == BASE_EPARSE) {
        conn_bad(c, login ? &c->srv->ctr.login_too_large : &c->srv->ctr.frames_too_large,
                 "frame_too_large");
    } else if (rc < 0) {
        derp_conn_close(c, base_errname(rc));
    } else if (c->state != DERP_CONN_CLOSING) {
        conn_charge(c, n);
    }
    derp_server_flush(c->srv);
    return c->state == DERP_CONN_CLOSING;
}

int derp_conn_feed(struct derp_conn *c, const uint8_t *p, size_t n)
{
    if (c->link.state != DERP_LINK_OPEN)
        return 1;
    return conn_on_data(&c->link, p, n);
}

/* ---- Time ---- */

static void conn_refill(struct derp_conn *c, double elapsed_s)
{
    const struct derp_limits *lim = &c->srv->limits;
    if (!lim->rate_bytes_per_sec)
        return;
    c->tokens += elapsed_s * lim->rate_bytes_per_sec;
    if (c->tokens > lim->rate_burst)
        c->tokens = lim->rate_burst;
    if (c->link.paused && c->tokens >= 0)
        derp_link_resume(&c->link);
}

void derp_conn_tick(struct derp_conn *c, uint64_t now, double elapsed_s)
{
    struct derp_server *s = c->srv;
    bool stuck = derp_link_write_age(&c->link, now) > s->limits.write_timeout_ms;
    derp_link_trim(&c->link);
    switch (c->state) {
    case DERP_CONN_HTTP:
    case DERP_CONN_LOGIN:
        if (now >= c->deadline)
            conn_bad(c, &s->ctr.login_timeouts, "login_timeout");
        break;
    case DERP_CONN_ACTIVE:
    case DERP_CONN_REPLACED:
        if (stuck) {
            conn_bad(c, &s->ctr.write_timeouts, "write_timeout");
            break;
        }
        if (now >= c->next_keepalive) {
            uint8_t f[DERP_HEADER_LEN];
            c->next_keepalive = next_keepalive(s, now);
            s->ctr.keepalives++;
            derp_conn_send_frame(c, f, derp_build(f, DERP_FRAME_KEEP_ALIVE, NULL, 0));
        }
        conn_refill(c, elapsed_s);
        break;
    case DERP_CONN_CLOSING:
        if (stuck)
            derp_link_close(&c->link);
        break;
    }
}

void derp_conn_restarting(struct derp_conn *c)
{
    struct derp_server *s = c->srv;
    if (c->state != DERP_CONN_ACTIVE && c->state != DERP_CONN_REPLACED) {
        derp_conn_close(c, "server_closing");
        return;
    }
    uint8_t f[DERP_HEADER_LEN + 8];
    s->ctr.restarting_frames++;
    derp_conn_send_frame(
        c, f,
        derp_build_restarting(f, s->limits.restart_reconnect_ms, s->limits.restart_try_for_ms));
    conn_close_how(c, "server_restarting", true);
}
