/*
 * Local SOCKS5 (RFC 1928/1929) and HTTP proxy (CONNECT and absolute-URI forwarding) on one
 * libuv loop, and the relays --forward and --publish use. The proxy never opens upstream
 * connections itself: it asks a DIALER the node supplies (mesh destinations through the
 * netstack, others through host sockets, or refused by policy). proxy_direct_* below is a
 * dialer over host sockets, usable alone and in tests.
 *
 * Errors are base's (0, negative errno, BASE_E*): -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH,
 * -ETIMEDOUT, -ECONNRESET, -ECANCELED, BASE_ENXDOMAIN (a name that does not resolve),
 * BASE_EPOLICY (refused by the dialer's policy), BASE_ELIMIT (a cap). proxy_err_socks5 and
 * proxy_err_http derive the SOCKS5 reply and the HTTP status from one such error.
 *
 * Memory: the caller owns every struct it passes in (configs are copied where noted); the
 * proxy owns its listener and sessions and frees them before proxy_server_close's callback.
 * Streams and datagram sockets are owned by the dialer that made them; their user frees nothing
 * and must call close() exactly once, after which only on_close (and pending write completions,
 * before it) are delivered.
 */
#ifndef TUNLESS_PROXY_H
#define TUNLESS_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"

/* The SOCKS5 reply code and the HTTP status for an error (0: success). */
uint8_t proxy_err_socks5(int err);
int proxy_err_http(int err);
/* A libuv status as a base error: resolver failures become BASE_ENXDOMAIN, the rest is errno. */
int proxy_err_from_uv(int uverr);

enum proxy_proto { PROXY_TCP, PROXY_UDP };

#define PROXY_NAME_MAX 255 /* a SOCKS5 name is up to 255 bytes */
/* Where a client wants to go: a name (name[0] != 0) and ep.port, or the address ep. */
struct proxy_target {
    enum proxy_proto proto;
    struct base_endpoint ep;
    char name[PROXY_NAME_MAX + 1];
};
#define PROXY_TARGET_STRLEN (PROXY_NAME_MAX + 8)
/* t becomes the address ep (the name is cleared, proto kept). */
void proxy_target_set_endpoint(struct proxy_target *t, const struct base_endpoint *ep);
/* "name:port", or base_endpoint_format of the address. Returns buf. */
const char *proxy_target_format(const struct proxy_target *t, char *buf, size_t cap);

/* RFC 9209's Proxy-Status error type for an error (a token: "dns_error", "connection_refused",
 * "connection_timeout", "destination_unavailable", ...); for a DNS error *rcode (if given) gets
 * the DNS rcode ("NXDOMAIN"), else NULL. Static strings. */
const char *proxy_err_proxy_status(int err, const char **rcode);

/* ---- Upstream byte streams (what a dialer returns) ---- */
struct proxy_stream;

/* Where a stream leads, as its dialer knows it (for logs). */
enum proxy_via { PROXY_VIA_UNKNOWN, PROXY_VIA_DIRECT, PROXY_VIA_TUNNEL };
struct proxy_route {
    enum proxy_via via;
    struct base_endpoint dest;         /* the address dialled; addr.family 0 = none (yet) */
    char peer[BASE_LOG_PEER_NAME_MAX]; /* via tunnel: the peer's name, "" for none */
    char peer_key[12];                 /* via tunnel: its short key (base_log_peer's KEY8) */
};
typedef void (*proxy_write_cb)(void *arg, int err);

/* The most one outstanding write() may hold besides its bytes, so that its user can count
 * queued writes at what they cost: the direct stream's request (a uv_write_t with the
 * callback and its argument) is the largest; a stream's own must not be larger. */
#define PROXY_STREAM_WRITE_OVERHEAD (sizeof(uv_write_t) + 2 * sizeof(void *) + BASE_MALLOC_SLACK)

struct proxy_stream_ops {
    /* Queue len bytes; data must stay valid until cb(arg, err), which is called exactly once,
     * never from inside write(), also after close() (err -ECANCELED). Returns 0, or an error
     * without calling cb. */
    int (*write)(struct proxy_stream *s, const uint8_t *data, size_t len, proxy_write_cb cb,
                 void *arg);
    /* Optional (NULL: not offered): what the transport takes at once, copied, without a
     * callback; only while no write() is outstanding. Returns the count (0..len) or an error. */
    ssize_t (*try_write)(struct proxy_stream *s, const uint8_t *data, size_t len);
    /* Half-close: FIN after the queued writes. Reading continues. */
    void (*shutdown)(struct proxy_stream *s);
    /* Reading is off after connect until read_start; read_stop is backpressure. */
    void (*read_start)(struct proxy_stream *s);
    void (*read_stop)(struct proxy_stream *s);
    /* Abort with RST (or the transport's equivalent), then behave as close(). */
    void (*reset)(struct proxy_stream *s);
    /* Also cancels a dial in progress (on_connect is then never called). */
    void (*close)(struct proxy_stream *s);
    /* Optional (NULL: unknown): fills *out (zeroed by the caller) with where the stream leads;
     * once on_connect came, or for a failed dial what was tried last. Before close() only. */
    void (*route)(struct proxy_stream *s, struct proxy_route *out);
};
struct proxy_stream {
    const struct proxy_stream_ops *ops; /* a dialer embeds this as its first member */
};

struct proxy_stream_cbs {
    /* Exactly once (unless closed before), never from inside dial(). err != 0: the dial
     * failed; close the stream. local: the endpoint the connection leaves from (SOCKS5
     * BND.ADDR), NULL if unknown. */
    void (*on_connect)(void *ud, int err, const struct base_endpoint *local);
    /* data is valid only during the call. */
    void (*on_read)(void *ud, const uint8_t *data, size_t len);
    void (*on_eof)(void *ud);
    void (*on_error)(void *ud, int err); /* reading and writing are over; close it */
    void (*on_close)(void *ud);          /* last callback: the stream is gone */
};

/* ---- Upstream datagrams (UDP ASSOCIATE, --forward udp:, --publish udp:) ---- */
struct proxy_dgram;
struct proxy_dgram_ops {
    /* Send one datagram (copied or sent before returning). dst may be a name. Returns 0 or an
     * error; the datagram is dropped on error (UDP semantics). */
    int (*send_to)(struct proxy_dgram *d, const struct proxy_target *dst, const uint8_t *data,
                   size_t len);
    void (*close)(struct proxy_dgram *d);
};
struct proxy_dgram {
    const struct proxy_dgram_ops *ops;
};
struct proxy_dgram_cbs {
    void (*on_recv)(void *ud, const struct base_endpoint *from, const uint8_t *data, size_t len);
    void (*on_close)(void *ud);
};

/* ---- The dialer the node injects ---- */
struct proxy_dialer {
    void *ctx;
    /* A stream that will report on_connect; NULL only when out of memory. */
    struct proxy_stream *(*dial)(void *ctx, const struct proxy_target *t,
                                 const struct proxy_stream_cbs *cbs, void *ud);
    /* An unconnected datagram socket, or NULL (then UDP ASSOCIATE answers 0x01); may be NULL
     * itself (UDP ASSOCIATE answers 0x07). */
    struct proxy_dgram *(*dgram_open)(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud);
};

/* ---- Name resolution hook (the node replaces it with MagicDNS) ---- */
struct proxy_resolve_req;
/* err is 0 with n >= 1 addresses, or an error (BASE_ENXDOMAIN, ...). addrs is valid only
 * during the call. */
typedef void (*proxy_resolve_cb)(void *arg, int err, const struct base_addr *addrs, size_t n);
struct proxy_resolver {
    void *ctx;
    /* cb is called exactly once, never from inside resolve(), unless cancel()ed first.
     * Returns NULL (and never calls cb) when the lookup cannot start. */
    struct proxy_resolve_req *(*resolve)(void *ctx, const char *name, proxy_resolve_cb cb,
                                         void *arg);
    void (*cancel)(void *ctx, struct proxy_resolve_req *req);
};
/* uv_getaddrinfo on loop. */
struct proxy_resolver proxy_resolver_getaddrinfo(uv_loop_t *loop);

/* Datagrams addressed to a name wait (copied, at most PROXY_NAME_QUEUE_MAX) for the resolver,
 * then go to send() with the first address and the port filled in; a name that does not
 * resolve drops its datagram, as the network would. Shared by every proxy_dgram. */
#define PROXY_NAME_QUEUE_MAX 16
struct proxy_name_queue {
    struct proxy_resolver resolver;
    void (*send)(void *arg, const struct base_endpoint *dst, const uint8_t *data, size_t len);
    void *arg;
    struct base_list pending; /* private */
    size_t n;                 /* private */
};
void proxy_name_queue_init(struct proxy_name_queue *q, struct proxy_resolver resolver,
                           void (*send)(void *arg, const struct base_endpoint *dst,
                                        const uint8_t *data, size_t len),
                           void *arg);
/* 0, or an error when the datagram is dropped at once (BASE_ELIMIT, -ENOMEM). */
int proxy_name_queue_send(struct proxy_name_queue *q, const char *name, uint16_t port,
                          const uint8_t *data, size_t len);
/* Cancels every lookup and drops the datagrams (send is not called). */
void proxy_name_queue_clear(struct proxy_name_queue *q);

/* ---- Happy Eyeballs (RFC 8305): every address of a name, raced ----
 * The plan is pure (the clock is passed in): addresses ordered IPv6 first, then the families
 * alternating; a new attempt every delay_ms (PROXY_HE_DELAY_MS, the RFC's Connection Attempt
 * Delay) or at once when one fails; the first to connect wins; all lose at the deadline. */
#define PROXY_HE_MAX 16
#define PROXY_HE_DELAY_MS 250
#define PROXY_CONNECT_TIMEOUT_MS 10000 /* the default connect timeout of every dialer */
struct proxy_he {
    struct base_endpoint order[PROXY_HE_MAX]; /* in the order they are tried */
    size_t n, started, failed;
    uint64_t next_at, deadline; /* ms, the caller's clock */
    unsigned delay_ms;
};
enum proxy_he_step {
    PROXY_HE_START,   /* start an attempt to *ep now, then ask again */
    PROXY_HE_WAIT,    /* nothing to do until *wake (or an attempt's result) */
    PROXY_HE_FAILED,  /* every address was tried and failed */
    PROXY_HE_TIMEOUT, /* the deadline passed */
};
void proxy_he_init(struct proxy_he *he, const struct base_addr *addrs, size_t n, uint16_t port,
                   uint64_t now, unsigned delay_ms, unsigned timeout_ms);
enum proxy_he_step proxy_he_next(struct proxy_he *he, uint64_t now, struct base_endpoint *ep,
                                 uint64_t *wake);
/* One started attempt failed at now: the next one may start at once. */
void proxy_he_failed(struct proxy_he *he, uint64_t now);

/* A stream to a NAME by racing: resolve with resolver, then dial each address (an address
 * target: name cleared) with per_addr, as the plan says; the winner's stream is used through
 * this one and every other attempt is closed. timeout_ms counts from the call (0 = 10 s);
 * delay_ms 0 = PROXY_HE_DELAY_MS. NULL when out of memory. */
struct proxy_race_config {
    struct proxy_resolver resolver;
    struct proxy_dialer per_addr;
    unsigned timeout_ms, delay_ms;
};
struct proxy_stream *proxy_race_dial(uv_loop_t *loop, const struct proxy_race_config *cfg,
                                     const struct proxy_target *t,
                                     const struct proxy_stream_cbs *cbs, void *ud);

/* ---- Direct dialer: host sockets ---- */
/* ---- Direct dialer: host sockets ----
 * Every host TCP connection (dialed, or accepted from another host) has keepalive on: probes after
 * PROXY_KEEPALIVE_IDLE_S of silence, every PROXY_KEEPALIVE_INTVL_S, PROXY_KEEPALIVE_CNT unanswered
 * ones end it. */
#define PROXY_KEEPALIVE_IDLE_S 60
#define PROXY_KEEPALIVE_INTVL_S 15
#define PROXY_KEEPALIVE_CNT 4
struct proxy_direct {
    uv_loop_t *loop;
    unsigned connect_timeout_ms; /* 0 = PROXY_CONNECT_TIMEOUT_MS; names race (Happy Eyeballs) */
    struct proxy_resolver resolver;
    /* Optional policy: return 0 to allow, or an error (BASE_EPOLICY) to refuse. */
    int (*allow)(void *arg, const struct proxy_target *t);
    void *allow_arg;
};
/* Defaults: 10 s connect timeout, getaddrinfo, allow all. d must outlive its streams. */
void proxy_direct_init(struct proxy_direct *d, uv_loop_t *loop);
struct proxy_dialer proxy_direct_dialer(struct proxy_direct *d);
/* A connection accepted on server (a listening uv_tcp_t) as a stream: connected already (no
 * on_connect), reading off until read_start. peer and local (either may be NULL) receive its
 * two ends. NULL if accepting failed or memory ran out. */
struct proxy_stream *proxy_stream_accept(uv_stream_t *server, const struct proxy_stream_cbs *cbs,
                                         void *ud, struct base_endpoint *peer,
                                         struct base_endpoint *local);

/* ---- The listener ---- */
enum proxy_protocols {
    PROXY_SOCKS5 = 1,
    PROXY_HTTP = 2,
    PROXY_BOTH = 3, /* the first byte decides: 0x05 is SOCKS5 */
};

struct proxy_config {
    const char *bind_addr; /* NULL = "127.0.0.1" */
    uint16_t port;         /* 0 = any; see proxy_server_port */
    enum proxy_protocols protocols;
    /* Both set: SOCKS5 user/pass and HTTP Basic required. Copied (hashed) by
     * proxy_server_new; the caller may wipe them afterwards. */
    const char *username;
    const char *password;
    unsigned head_timeout_ms; /* request head must arrive within; 0 = 30000 */
    size_t max_header_bytes;  /* HTTP request head cap; 0 = 16384 */
    /* 0 = 1024. When full (or short of descriptors), a new client evicts the oldest one still
     * waiting for its request head (reset); with none, the new one is reset. Refusals and
     * evictions are counted and logged (event=proxy_refused / proxy_evicted reason=...
     * count=N total=N) at most once per PROXY_REFUSAL_LOG_MS each (proxy/admit.h). */
    unsigned max_connections;
    struct proxy_dialer dialer;
    struct base_logger logger;
    /* The node's memory budget (NULL: none; it must outlive the server): bytes queued for a
     * side that does not read are charged to it, and above half of it less is queued before
     * the other side stops being read. */
    struct base_budget *budget;
};

#define PROXY_REFUSAL_LOG_MS 5000

struct proxy_server;
/* Returns 0, or a negative error (-EINVAL for a bad config, the bind's error). The owner
 * announces the listener and warns when it is open beyond the loopback without credentials:
 * it knows which flag opened it (the node: node/plan.c, alike for `up --check` and the start,
 * once). */
int proxy_server_new(uv_loop_t *loop, const struct proxy_config *cfg, struct proxy_server **out);
int proxy_server_port(const struct proxy_server *srv);
/* ---- Counters, per listener ----
 * proxy_server_stats fills a struct the caller owns (it keeps no pointer to it); call it on the
 * server's loop. Everything counts from proxy_server_new and only grows, except `open`. */
#define PROXY_STATS_SOCKS5_REPLIES 9 /* SOCKS5 reply codes 0x00 (succeeded) .. 0x08 */
#define PROXY_STATS_HTTP_STATUSES 9  /* the statuses the proxy answers itself, below */
struct proxy_stats {
    uint64_t accepted;      /* connections accepted */
    uint64_t open;          /* sessions open now */
    uint64_t refused_limit; /* reset at once: max_connections were open, none in its head */
    uint64_t refused_fds;   /* reset at once, or never accepted: descriptors ran short */
    uint64_t evicted;       /* sessions still in their request head reset to make room */
    uint64_t refused_auth;  /* credentials missing or wrong (SOCKS5 method or login, HTTP 407) */
    uint64_t dials;         /* upstream connections asked of the dialer */
    uint64_t dial_errors;   /* of those, the ones that failed */
    /* SOCKS5 replies to requests, by code: [0] succeeded, [5] connection refused, ... */
    uint64_t socks5_reply[PROXY_STATS_SOCKS5_REPLIES];
    /* HTTP answers the proxy made itself (CONNECT's 200, errors), one entry per status in a
     * fixed order (200, 400, 403, 407, 408, 431, 502, 503, 504); status is filled in. */
    struct {
        int status;
        uint64_t count;
    } http_status[PROXY_STATS_HTTP_STATUSES];
    uint64_t http_forwarded; /* upstream responses relayed to HTTP clients */
    /* Upstream bytes, open connections included: client -> destination, destination -> client. */
    uint64_t bytes_up, bytes_down;
};
void proxy_server_stats(const struct proxy_server *srv, struct proxy_stats *out);

/* Closes the listener and resets every session (RST: a cut stream must not look complete);
 * on_closed runs once everything is freed. */
void proxy_server_close(struct proxy_server *srv, void (*on_closed)(void *arg), void *arg);
/* Closes the listener at once and lets open sessions finish by themselves; on_closed runs once
 * the last is gone. proxy_server_close() afterwards cuts those still open (on_closed is the one
 * given first). */
void proxy_server_drain(struct proxy_server *srv, void (*on_closed)(void *arg), void *arg);
/* Bytes the server's sessions hold queued now (charged to the config's budget). */
size_t proxy_server_memory(const struct proxy_server *srv);

/* ---- TCP relay: --forward tcp: and --publish tcp: ----
 * Each connection joins an inbound stream with one the relay dials to the target: bytes flow
 * both ways with the proxy's backpressure, a FIN crosses, an error or reset on one side resets
 * the other. */
struct proxy_relay_config {
    struct proxy_dialer dialer;
    struct proxy_target target;
    /* A connection with nothing read either way for this long is reset (logged
     * event=relay_idle_timeout); 0 = never. */
    unsigned idle_timeout_ms;
    struct base_logger logger;
    struct base_budget *budget; /* as in proxy_config */
};
/* Makes the inbound stream with the relay's cbs and ud (accept, or adopt a netstack conn). */
typedef struct proxy_stream *(*proxy_relay_open_fn)(void *arg, const struct proxy_stream_cbs *cbs,
                                                    void *ud);
struct proxy_relay;
int proxy_relay_new(uv_loop_t *loop, const struct proxy_relay_config *cfg,
                    struct proxy_relay **out);
/* One connection; 0, or -ENOMEM / the open's failure (nothing is left open). */
int proxy_relay_add(struct proxy_relay *r, proxy_relay_open_fn open, void *arg);
/* The owner's listener failed to accept a connection (err: EMFILE, ...): counted and logged
 * (event=relay_refused reason=accept_failed count=N total=N err=E target=T) at most once per
 * PROXY_REFUSAL_LOG_MS. */
void proxy_relay_accept_failed(struct proxy_relay *r, int err);
/* Refuse (reset) new connections while descriptors run short (fewer than PROXY_FD_RESERVE left),
 * logged event=relay_refused reason=fds the same way: libuv itself closes what it cannot accept
 * without a word. listener_fd is the owner's listener (probed for the lowest free descriptor). */
void proxy_relay_watch_fds(struct proxy_relay *r, int listener_fd);
/* Resets every connection; on_closed (may be NULL) runs once all are freed. */
void proxy_relay_close(struct proxy_relay *r, void (*on_closed)(void *arg), void *arg);
/* Takes no new connections and lets the open ones finish; on_closed once the last is gone. */
void proxy_relay_drain(struct proxy_relay *r, void (*on_closed)(void *arg), void *arg);
/* Bytes the relay's connections hold queued now (charged to the config's budget). */
size_t proxy_relay_memory(const struct proxy_relay *r);

/* ---- UDP relay: --forward udp: and --publish udp: ----
 * UDP conversations to one fixed target through a proxy_dgram. A session is one client (a
 * source endpoint, or a netstack flow); it ends after PROXY_UDP_IDLE_MS without a datagram
 * either way, or when the owner ends it. */
#define PROXY_UDP_IDLE_MS 60000
#define PROXY_UDP_SESSIONS_MAX 256 /* per relay; the least recently active gives way */
struct proxy_udp_session;
struct proxy_udp_relay_config {
    struct proxy_dialer dialer;
    struct proxy_resolver resolver; /* for a target given by name */
    struct proxy_target target;
    /* A datagram from the target, for the session's client. */
    void (*reply)(void *ctx, struct proxy_udp_session *s, const uint8_t *data, size_t len);
    /* The session ended: release its client side (NULL: nothing to release). */
    void (*release)(void *ctx, struct proxy_udp_session *s);
    void *ctx;
};
struct proxy_udp_relay;
int proxy_udp_relay_new(uv_loop_t *loop, const struct proxy_udp_relay_config *cfg,
                        struct proxy_udp_relay **out);
/* The session of client, or NULL. */
struct proxy_udp_session *proxy_udp_session_find(struct proxy_udp_relay *r,
                                                 const struct base_endpoint *client);
/* A new session; 0 or an error (the caller keeps client_data). */
int proxy_udp_session_new(struct proxy_udp_relay *r, const struct base_endpoint *client,
                          void *client_data, struct proxy_udp_session **out);
const struct base_endpoint *proxy_udp_session_client(const struct proxy_udp_session *s);
void *proxy_udp_session_data(const struct proxy_udp_session *s);
/* A datagram from the client, for the target. */
void proxy_udp_session_send(struct proxy_udp_session *s, const uint8_t *data, size_t len);
void proxy_udp_session_end(struct proxy_udp_session *s);
/* Ends every session; on_closed (may be NULL) runs once they and the relay are freed. */
void proxy_udp_relay_close(struct proxy_udp_relay *r, void (*on_closed)(void *arg), void *arg);

#endif
