/*
 * A proxy session: one client connection from accept to its last close callback, and what
 * every protocol shares: the client stream and the upstream in a pump, a timer (the request
 * head's deadline, then the linger after the last answer), the dial, finishing and closing.
 * What the session speaks is its ops, a small vtable: the sniffer picks the first, and a
 * protocol may hand over to the next (SOCKS5's handshake to CONNECT or UDP ASSOCIATE).
 * Internal to proxy/.
 *
 * Memory: the server allocates a session (proxy_session_new) and hears of its end through
 * env->released; a session frees itself (and its protocol state, through ops->free) once its
 * streams, timer and the handles its protocol holds (proxy_session_hold) are closed.
 */
#ifndef TUNLESS_PROXY_SESSION_H
#define TUNLESS_PROXY_SESSION_H

#include "auth.h"
#include "proxy.h"
#include "pump.h"

#define PROXY_SESSION_LINGER_MS 2000

struct proxy_session;

/* What the server lends its sessions; outlives them. */
struct proxy_session_env {
    uv_loop_t *loop;
    const struct proxy_config *cfg; /* head_timeout_ms, max_header_bytes, dialer, logger */
    const struct proxy_auth *auth;
    void (*released)(void *arg); /* a session was freed */
    void *arg;
    struct proxy_stats *stats; /* the listener's counters */
};

/* One protocol (or one phase of it). Every op may be NULL: the session then closes (client
 * EOF, upstream EOF or error, timeout) or ignores the event. */
struct proxy_session_ops {
    const char *name; /* for logs: "sniff", "socks5", "http", ... */
    void (*input)(struct proxy_session *s, const uint8_t *data, size_t len); /* client bytes */
    void (*client_eof)(struct proxy_session *s);
    void (*connected)(struct proxy_session *s, int err, const struct base_endpoint *local);
    void (*up_read)(struct proxy_session *s, const uint8_t *data, size_t len);
    void (*up_eof)(struct proxy_session *s);
    void (*up_error)(struct proxy_session *s, int err);
    void (*timeout)(struct proxy_session *s);
    void (*close)(struct proxy_session *s); /* closing: close the protocol's own handles */
    void (*free)(struct proxy_session *s);  /* last: free the protocol's state */
};

enum proxy_session_state {
    PROXY_SESSION_OPEN,      /* the protocol runs */
    PROXY_SESSION_FINISHING, /* the last answer is on its way; then FIN and linger */
    PROXY_SESSION_CLOSING,   /* handles are closing */
};

/* The current upstream connection, from its dial to its proxy_close line. */
struct proxy_session_up {
    bool active;            /* dialled, proxy_close not yet logged */
    bool connected;         /* proxy_open was logged */
    uint64_t start;         /* uv_now at the dial */
    int err;                /* the first error it met (0: none) */
    int err_side;           /* where: PROXY_PUMP_A (the client) or PROXY_PUMP_B */
    int answer;             /* the SOCKS5 reply or HTTP status the client got for it; -1 none yet */
    const char *answer_key; /* "reply" or "status" */
    struct proxy_route route;
    struct proxy_target target;
};

struct proxy_session {
    struct base_list link; /* the server's */
    const struct proxy_session_env *env;
    unsigned long id;
    struct base_endpoint peer, local; /* the client's end and ours */
    char client[BASE_ENDPOINT_STRLEN];
    enum proxy_session_state state;
    struct proxy_pump pump; /* A: the client, B: the upstream */
    uv_timer_t timer;
    unsigned open; /* streams, timer and protocol handles still to close */
    const struct proxy_session_ops *ops;
    void *proto; /* the protocol's state */
    struct proxy_session_up up;
};

/* Accepts the next connection of listener; NULL when accepting or memory failed. */
struct proxy_session *proxy_session_new(const struct proxy_session_env *env, uv_stream_t *listener,
                                        unsigned long id, const struct proxy_session_ops *ops);
/* Reads the client (once the caller has linked it where close can find it). */
void proxy_session_start(struct proxy_session *s);
/* Hands over to another protocol: the old one's state is freed, proto is the new one's. */
void proxy_session_switch(struct proxy_session *s, const struct proxy_session_ops *ops,
                          void *proto);
void proxy_session_close(struct proxy_session *s);
/* The same with a reset (RST) on both streams: the server cut the session. */
void proxy_session_abort(struct proxy_session *s);
/* Whether s still waits for its request head (the server may evict it when full). */
bool proxy_session_in_head(const struct proxy_session *s);
/* Answer nothing more: once the queued bytes are out, FIN, then close when the client goes or
 * after PROXY_SESSION_LINGER_MS (closing with unread input would reset the answer away). */
void proxy_session_finish(struct proxy_session *s);
/* Bytes to the client; a failure closes the session. */
void proxy_session_reply(struct proxy_session *s, const void *data, size_t len);
/* Bytes to the upstream; a failure closes the session. */
void proxy_session_up_write(struct proxy_session *s, const void *data, size_t len);
void proxy_session_read_client(struct proxy_session *s, bool want);
void proxy_session_read_up(struct proxy_session *s, bool want);
/* Starts dialing t (the client is not read meanwhile); 0 or -ENOMEM. */
int proxy_session_dial(struct proxy_session *s, const struct proxy_target *t);
void proxy_session_up_close(struct proxy_session *s);
/* Joins client and upstream. */
void proxy_session_relay(struct proxy_session *s);
/* The head timer: ms 0 stops it. */
void proxy_session_timer(struct proxy_session *s, unsigned ms);
/* A handle the protocol opened; proxy_session_release when its close callback runs. */
void proxy_session_hold(struct proxy_session *s);
void proxy_session_release(struct proxy_session *s);
void proxy_session_log(struct proxy_session *s, enum base_log_level level, const char *event,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- counters and the upstream connection's log lines (session_log.c) ---- */
/* The HTTP statuses counted, in proxy_stats order. */
void proxy_stats_init(struct proxy_stats *st);
/* A SOCKS5 reply to a request, or an HTTP status (the proxy's own, or relayed from the
 * upstream), sent to the client: counted, and put on the proxy_close line. */
void proxy_session_sent_socks5(struct proxy_session *s, uint8_t rep);
void proxy_session_sent_http(struct proxy_session *s, int status, bool relayed);
/* Credentials missing or wrong. */
void proxy_session_refused_auth(struct proxy_session *s);
/* The upstream's life for the logs: dialled, connected (or failed: err), an error met, gone. */
void proxy_session_up_dialled(struct proxy_session *s, const struct proxy_target *t);
void proxy_session_up_connected(struct proxy_session *s, int err);
void proxy_session_up_error(struct proxy_session *s, int side, int err);
void proxy_session_up_end(struct proxy_session *s);
/* The bytes of an upstream not yet ended, added to st (the getter's live part). */
void proxy_session_up_bytes(const struct proxy_session *s, struct proxy_stats *st);

#endif
