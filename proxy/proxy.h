/*
 * Local SOCKS5 (RFC 1928/1929) and HTTP proxy (CONNECT and absolute-URI forwarding) on one
 * libuv loop. The proxy never opens upstream connections itself: it asks a DIALER the node
 * supplies (mesh destinations through the netstack, others through host sockets, or refused by
 * policy). proxy_direct_* below is a dialer over host sockets, usable alone and in tests.
 *
 * Memory: the caller owns every struct it passes in (configs are copied where noted); the
 * proxy owns its listener and connections and frees them after proxy_server_close's callback.
 * Streams and datagram sockets are owned by the dialer that made them; their user frees nothing
 * and must call close() exactly once, after which only on_close (and pending write completions,
 * before it) are delivered.
 */
#ifndef TUNLESS_PROXY_H
#define TUNLESS_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Why an upstream could not be reached or broke. Each maps to one SOCKS5 reply and one HTTP
 * status (proxy_err_socks5, proxy_err_http). */
enum proxy_err {
    PROXY_OK = 0,
    PROXY_E_REFUSED = -1,      /* RST to our SYN: SOCKS5 0x05, HTTP 502 */
    PROXY_E_NET_UNREACH = -2,  /* no route: 0x03, 502 */
    PROXY_E_HOST_UNREACH = -3, /* 0x04, 502 */
    PROXY_E_NAME = -4,         /* name not found: 0x04, 502 */
    PROXY_E_TIMEOUT = -5,      /* 0x06, 504 */
    PROXY_E_POLICY = -6,       /* not allowed: 0x02, 403 */
    PROXY_E_RESET = -7,        /* established connection reset */
    PROXY_E_CANCELED = -8,     /* write aborted because the stream was closed */
    PROXY_E_OTHER = -9,        /* anything else: 0x01, 502 */
};
const char *proxy_strerror(int err);
uint8_t proxy_err_socks5(int err);
int proxy_err_http(int err);
/* A libuv error code (UV_ECONNREFUSED, ...) as a proxy_err. */
int proxy_err_from_uv(int uverr);

enum proxy_proto { PROXY_TCP, PROXY_UDP };

#define PROXY_NAME_MAX 255
/* Where a client wants to go: a name (name[0] != 0) plus port, or an address (addr, port
 * inside it as well as in port). */
struct proxy_target {
    enum proxy_proto proto;
    uint16_t port; /* host byte order */
    char name[PROXY_NAME_MAX + 1];
    struct sockaddr_storage addr;
};
/* t becomes the address sa (IPv4 or IPv6) with port (host order; written into the sockaddr
 * too); the name is cleared, proto kept. */
void proxy_target_set_addr(struct proxy_target *t, const struct sockaddr *sa, uint16_t port);
/* "host:port" or "[v6]:port" into buf; returns buf. */
const char *proxy_target_str(const struct proxy_target *t, char *buf, size_t len);

/* ---- Upstream byte streams (what a dialer returns) ---- */
struct proxy_stream;
typedef void (*proxy_write_cb)(void *arg, int err);

struct proxy_stream_ops {
    /* Queue len bytes; data must stay valid until cb(arg, err), which is called exactly once,
     * never from inside write(), also after close() (err PROXY_E_CANCELED). Returns 0, or a
     * proxy_err without calling cb. */
    int (*write)(struct proxy_stream *s, const uint8_t *data, size_t len, proxy_write_cb cb,
                 void *arg);
    /* Half-close: FIN after the queued writes. Reading continues. */
    void (*shutdown)(struct proxy_stream *s);
    /* Reading is off after connect until read_start; read_stop is backpressure. */
    void (*read_start)(struct proxy_stream *s);
    void (*read_stop)(struct proxy_stream *s);
    /* Abort with RST (or the transport's equivalent), then behave as close(). */
    void (*reset)(struct proxy_stream *s);
    /* Also cancels a dial in progress (on_connect is then never called). */
    void (*close)(struct proxy_stream *s);
};
struct proxy_stream {
    const struct proxy_stream_ops *ops; /* a dialer embeds this as its first member */
};

struct proxy_stream_cbs {
    /* Exactly once (unless closed before), never from inside dial(). err != 0: the dial
     * failed; close the stream. local: the address the connection leaves from (SOCKS5
     * BND.ADDR), NULL if unknown. */
    void (*on_connect)(void *ud, int err, const struct sockaddr *local);
    /* data is valid only during the call. */
    void (*on_read)(void *ud, const uint8_t *data, size_t len);
    void (*on_eof)(void *ud);
    void (*on_error)(void *ud, int err); /* reading and writing are over; close it */
    void (*on_close)(void *ud);          /* last callback: the stream is gone */
};

/* ---- Upstream datagrams (UDP ASSOCIATE) ---- */
struct proxy_dgram;
struct proxy_dgram_ops {
    /* Send one datagram (copied or sent before returning). dst may be a name. Returns 0 or a
     * proxy_err; the datagram is dropped on error (UDP semantics). */
    int (*send_to)(struct proxy_dgram *d, const struct proxy_target *dst, const uint8_t *data,
                   size_t len);
    void (*close)(struct proxy_dgram *d);
};
struct proxy_dgram {
    const struct proxy_dgram_ops *ops;
};
struct proxy_dgram_cbs {
    void (*on_recv)(void *ud, const struct sockaddr *from, const uint8_t *data, size_t len);
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
/* err is 0 with n >= 1 addresses (port 0), or a proxy_err (PROXY_E_NAME, ...). addrs is
 * valid only during the call. */
typedef void (*proxy_resolve_cb)(void *arg, int err, const struct sockaddr_storage *addrs,
                                 size_t n);
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
struct proxy_name_pending;
struct proxy_name_queue {
    struct proxy_resolver resolver;
    void (*send)(void *arg, const struct sockaddr *dst, const uint8_t *data, size_t len);
    void *arg;
    struct proxy_name_pending *head; /* private */
    size_t n;                        /* private */
};
/* 0, or a proxy_err when the datagram is dropped at once (queue full, no memory). */
int proxy_name_queue_send(struct proxy_name_queue *q, const char *name, uint16_t port,
                          const uint8_t *data, size_t len);
/* Cancels every lookup and drops the datagrams (send is not called). */
void proxy_name_queue_clear(struct proxy_name_queue *q);

/* ---- Direct dialer: host sockets ---- */
struct proxy_direct {
    uv_loop_t *loop;
    unsigned connect_timeout_ms; /* 0 = 10000 */
    struct proxy_resolver resolver;
    /* Optional policy: return 0 to allow, or a proxy_err (PROXY_E_POLICY) to refuse. */
    int (*allow)(void *arg, const struct proxy_target *t);
    void *allow_arg;
};
/* Defaults: 10 s connect timeout, getaddrinfo, allow all. d must outlive its streams. */
void proxy_direct_init(struct proxy_direct *d, uv_loop_t *loop);
struct proxy_dialer proxy_direct_dialer(struct proxy_direct *d);
/* A connection accepted on server (a listening uv_tcp_t) as a stream: connected already (no
 * on_connect), reading off until read_start. NULL if accepting failed or memory ran out. */
struct proxy_stream *proxy_direct_accept(struct proxy_direct *d, uv_stream_t *server,
                                         const struct proxy_stream_cbs *cbs, void *ud);

/* ---- The listener ---- */
enum proxy_log_level { PROXY_LOG_DEBUG, PROXY_LOG_INFO, PROXY_LOG_WARN, PROXY_LOG_ERROR };
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
    unsigned max_connections; /* 0 = 1024 */
    struct proxy_dialer dialer;
    void (*log)(void *arg, enum proxy_log_level level, const char *msg);
    void *log_arg;
};

struct proxy_server;
/* Returns NULL with *err set (a negative libuv code, or UV_EINVAL for a bad config). */
struct proxy_server *proxy_server_new(uv_loop_t *loop, const struct proxy_config *cfg, int *err);
int proxy_server_port(const struct proxy_server *srv);
/* Closes the listener and every connection; cb runs once everything is freed. */
void proxy_server_close(struct proxy_server *srv, void (*cb)(void *arg), void *arg);
/* Closes the listener at once and lets open connections finish by themselves; cb runs once
 * the last is gone. proxy_server_close() afterwards cuts those still open (cb is the one given
 * first). */
void proxy_server_drain(struct proxy_server *srv, void (*cb)(void *arg), void *arg);

#endif
