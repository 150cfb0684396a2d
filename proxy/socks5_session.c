/*
 * SOCKS5 on a session: the handshake feeds the parser (socks5.c) until the request, then the
 * session becomes a CONNECT (dial, reply, relay: below) or a UDP association (socks5_udp.c).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sessions.h"
#include "socks5.h"

void proxy_socks5_fail(struct proxy_session *s, uint8_t rep)
{
    uint8_t out[PROXY_SOCKS5_REPLY_MAX];
    proxy_session_sent_socks5(s, rep);
    proxy_session_reply(s, out, proxy_socks5_reply(out, rep, NULL));
    proxy_session_finish(s);
}

/* ---- CONNECT: dial, answer, relay ---- */

struct connect {
    size_t len;
    uint8_t early[]; /* bytes the client sent after its request: upstream first */
};

static void connect_connected(struct proxy_session *s, int err, const struct base_endpoint *local)
{
    struct connect *c = s->proto;
    if (err) {
        proxy_socks5_fail(s, proxy_err_socks5(err));
        return;
    }
    uint8_t out[PROXY_SOCKS5_REPLY_MAX];
    proxy_session_sent_socks5(s, PROXY_SOCKS5_REP_OK);
    proxy_session_reply(s, out, proxy_socks5_reply(out, PROXY_SOCKS5_REP_OK, local));
    proxy_session_up_write(s, c->early, c->len);
    c->len = 0;
    if (s->state == PROXY_SESSION_OPEN)
        proxy_session_relay(s);
}

static void connect_free(struct proxy_session *s)
{
    free(s->proto);
}

static const struct proxy_session_ops connect_ops = {
    .name = "socks5",
    .connected = connect_connected,
    .free = connect_free,
};

static void connect_begin(struct proxy_session *s, const struct proxy_target *t,
                          const uint8_t *early, size_t len)
{
    struct connect *c = malloc(sizeof(*c) + len);
    if (!c) {
        proxy_session_close(s);
        return;
    }
    c->len = len;
    memcpy(c->early, early, len);
    proxy_session_switch(s, &connect_ops, c);
    if (proxy_session_dial(s, t) != 0)
        proxy_socks5_fail(s, PROXY_SOCKS5_REP_FAIL);
}

/* ---- the handshake ---- */

/* The handshake failed: counted and logged with why (SOCKS5 cannot tell the client). */
static void refused(struct proxy_session *s, const struct proxy_socks5_result *r)
{
    const char *reason = "not_socks5";
    if (r->reply_len > 2) { /* a reply to the request */
        proxy_session_sent_socks5(s, r->reply[1]);
        reason = r->reply[1] == PROXY_SOCKS5_REP_CMD    ? "command_not_supported"
                 : r->reply[1] == PROXY_SOCKS5_REP_ATYP ? "address_type_not_supported"
                                                        : "bad_request";
    } else if (r->reply_len == 2) {
        proxy_session_refused_auth(s);
        reason = r->reply[0] == 1 ? "bad_credentials" : "no_acceptable_auth_method";
    }
    proxy_session_log(s, BASE_LOG_INFO, "socks5_refused", "reply=%u reason=%s",
                      r->reply_len > 1 ? r->reply[1] : 0, reason);
}

static void handshake_input(struct proxy_session *s, const uint8_t *data, size_t len)
{
    while (len > 0 && s->state == PROXY_SESSION_OPEN) {
        struct proxy_socks5_result r;
        size_t used;
        enum proxy_socks5_event ev = proxy_socks5_input(s->proto, data, len, &used, &r);
        data += used;
        len -= used;
        switch (ev) {
        case PROXY_SOCKS5_MORE:
            break;
        case PROXY_SOCKS5_SEND:
            proxy_session_reply(s, r.reply, r.reply_len);
            break;
        case PROXY_SOCKS5_FAIL:
            refused(s, &r);
            proxy_session_reply(s, r.reply, r.reply_len);
            proxy_session_finish(s);
            return;
        case PROXY_SOCKS5_REQUEST:
            proxy_session_timer(s, 0);
            if (r.cmd == PROXY_SOCKS5_CMD_UDP)
                proxy_socks5_udp_begin(s, &r.target); /* later bytes are ignored */
            else
                connect_begin(s, &r.target, data, len);
            return;
        }
    }
}

static void handshake_free(struct proxy_session *s)
{
    sodium_memzero(s->proto, sizeof(struct proxy_socks5_parser)); /* it saw the password */
    free(s->proto);
}

static const struct proxy_session_ops handshake_ops = {
    .name = "socks5",
    .input = handshake_input,
    .free = handshake_free,
};

void proxy_socks5_begin(struct proxy_session *s)
{
    struct proxy_socks5_parser *p = malloc(sizeof(*p));
    if (!p) {
        proxy_session_close(s);
        return;
    }
    proxy_socks5_init(p, s->env->auth);
    proxy_session_switch(s, &handshake_ops, p);
}
