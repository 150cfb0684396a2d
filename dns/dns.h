/*
 * tunless DNS: MagicDNS answers for the mesh, forwarding of everything else to upstream
 * resolvers (c-ares, driven by the libuv loop), a TTL cache, and a local UDP/TCP listener.
 *
 * The core is transport-agnostic: whoever receives a DNS message (the local listener, the
 * netstack's 100.100.100.100:53, the proxies' name lookups) hands the bytes to
 * dns_resolver_handle() and gets the reply bytes in a callback.
 *
 * Threading: everything runs on the loop given to dns_resolver_new(); no call blocks.
 * Memory: the resolver copies everything it keeps from a struct dns_config; reply buffers
 * passed to callbacks belong to the resolver and are valid only during the callback, and only
 * until the callback calls into the resolver again (copy or send them first).
 * Callbacks may start new queries or cancel other requests.
 */
#ifndef TUNLESS_DNS_H
#define TUNLESS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <uv.h>

#include "base.h"

#define DNS_DEFAULT_SUFFIX "mesh.internal"
#define DNS_DEFAULT_TTL 600
#define DNS_DEFAULT_TIMEOUT_MS 2000
#define DNS_DEFAULT_CACHE_ENTRIES 4096
#define DNS_DEFAULT_PORT 53
/* max_reply value that means "stream transport (TCP): no truncation". */
#define DNS_REPLY_TCP 65535

/* A mesh host: answered as "<name>.<suffix>." and, for single-label queries, as "<name>.".
 * name may already end in the suffix. A and AAAA from addrs, PTR for every address. */
struct dns_host {
    const char *name;
    const struct base_addr *addrs;
    size_t n_addrs;
};

/* An extra record. type is DNS_TYPE_A/AAAA/CNAME/TXT/PTR (numeric RR type). A and AAAA take
 * addr (of the matching family); CNAME and PTR take a name in value, TXT its string in value
 * (<= 255 bytes). ttl 0 means the config's ttl. */
struct dns_record {
    const char *name;
    uint16_t type;
    const char *value;
    uint32_t ttl;
    struct base_addr addr;
};

/* Split DNS: names equal to or under suffix go to servers (longest suffix wins). A server's
 * port 0 means DNS_DEFAULT_PORT. */
struct dns_route {
    const char *suffix;
    const struct base_endpoint *servers;
    size_t n_servers;
};

/* What the node fills. Zero/NULL fields take the defaults above. The resolver copies it all. */
struct dns_config {
    const char *suffix;           /* MagicDNS suffix, NULL = "mesh.internal" */
    uint32_t ttl;                 /* local answers, 0 = 600 */
    const struct dns_host *hosts; /* every peer and the node itself */
    size_t n_hosts;
    const struct dns_record *records; /* extra records */
    size_t n_records;
    const struct base_endpoint *upstreams; /* default route (wg-quick DNS=), may be empty */
    size_t n_upstreams;
    const struct dns_route *routes; /* split-DNS routes */
    size_t n_routes;
    const char *const *search; /* search domains for dns_resolver_lookup() */
    size_t n_search;
    unsigned timeout_ms;  /* upstream answer deadline, 0 = 2000 */
    size_t cache_entries; /* 0 = 4096 */
    /* Where the resolver reports (event=dns_config_invalid: what a rejected config got
     * wrong). Replaced by every dns_resolver_set_config. */
    struct base_logger log;
};

/* RR types the config speaks of. */
enum {
    DNS_TYPE_A = 1,
    DNS_TYPE_CNAME = 5,
    DNS_TYPE_PTR = 12,
    DNS_TYPE_TXT = 16,
    DNS_TYPE_AAAA = 28,
};

/* Counters for metrics; monotonically increasing. */
struct dns_stats {
    uint64_t queries;       /* messages given to dns_resolver_handle */
    uint64_t local_answers; /* answered from MagicDNS / extra records (incl. NXDOMAIN) */
    uint64_t forwarded;     /* sent upstream */
    uint64_t cache_hits;
    uint64_t upstream_failures; /* timeouts and errors answered SERVFAIL */
    uint64_t no_route;          /* SERVFAIL because no upstream serves the name */
    uint64_t formerr;           /* malformed queries answered FORMERR */
    uint64_t dropped;           /* unanswerable garbage (no readable header, or a response) */
    uint64_t truncated;         /* UDP replies cut and sent with TC */
};

struct dns_resolver;
struct dns_request;

/* Called once something with handles (resolver, listener, stream session) is entirely gone. */
typedef void (*dns_closed_cb)(void *arg);

/*
 * Sockets for upstreams inside the mesh, supplied by the node from its netstack. Whether an
 * upstream is "inside" is the transport's call (covers(): some peer's allowed IPs cover the
 * address); every other upstream, and every upstream while no transport is set, uses host
 * sockets polled on the loop.
 * Socket calls behave like their BSD namesakes on a nonblocking socket, with errors returned
 * as negative errno values (-EAGAIN when nothing can be read/sent now). A handle is any
 * int >= 0 unique among the transport's open sockets. open() of a SOCK_STREAM only starts the
 * connection: send fails with -EAGAIN until it is up, and the transport then reports it
 * writable (or readable, with recv failing, when it could not be made).
 * Readiness: whenever a socket has data, EOF or an error to read, or becomes writable (TCP
 * connect done, send space), the transport calls dns_transport_ready(conn, ...) from the loop,
 * never from inside one of these functions. After close() it must not mention conn again.
 * Replacing or clearing the transport (dns_resolver_set_mesh_transport) closes every socket
 * opened through the old one (its close() is called from inside that call); the queries on
 * them fail over to the next server or end in SERVFAIL.
 */
struct dns_transport_conn;
struct dns_transport {
    void *ctx;
    /* true when server is reached through this transport. */
    bool (*covers)(void *ctx, const struct base_addr *server);
    /* type is SOCK_DGRAM or SOCK_STREAM. Returns the handle or a negative error. */
    int (*open)(void *ctx, int type, const struct base_endpoint *server,
                struct dns_transport_conn *conn);
    ssize_t (*send)(void *ctx, int handle, const struct iovec *iov, int iovcnt);
    /* One datagram per call for SOCK_DGRAM; 0 = EOF for SOCK_STREAM. */
    ssize_t (*recv)(void *ctx, int handle, void *buf, size_t len);
    void (*close)(void *ctx, int handle);
};
void dns_transport_ready(struct dns_transport_conn *conn, bool readable, bool writable);

/* Returns 0, -ENOMEM, BASE_ECONFIG (the reason logged as event=dns_config_invalid), or -EIO
 * (c-ares would not start: logged as event=dns_cares_failed). On error its timers are
 * closing: run the loop (as at any shutdown) for them to be freed. */
int dns_resolver_new(uv_loop_t *loop, const struct dns_config *cfg, struct dns_resolver **out);
/* Reload: replaces records, routes and settings; the cache is flushed; queries in flight
 * finish on the old upstreams. On error (as dns_resolver_new) the old config stays. */
int dns_resolver_set_config(struct dns_resolver *r, const struct dns_config *cfg);
/* The transport for in-mesh upstreams; NULL = none (every upstream then uses host sockets).
 * The struct is copied. Sockets open through the previous transport are closed at once (see
 * struct dns_transport); new sockets use the new one. */
void dns_resolver_set_mesh_transport(struct dns_resolver *r, const struct dns_transport *t);
/* What covers() answers has changed (peers' allowed IPs reloaded): sockets now on the wrong
 * side (a host socket to a server the mesh covers, a mesh socket to one it no longer does)
 * are closed like the transport's on replacement (c-ares learns it on the next loop turn);
 * the others stay. */
void dns_resolver_routes_changed(struct dns_resolver *r);
/* Cancels every request in flight (their callbacks are NOT called), closes its handles and
 * calls on_closed (may be NULL) once its memory is freed (keep running the loop). Not from
 * inside a resolver callback; every stream session and listener on it is closed first. */
void dns_resolver_close(struct dns_resolver *r, dns_closed_cb on_closed, void *arg);
void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out);

/*
 * Answers one DNS message. max_reply: DNS_REPLY_TCP for stream transports; for UDP the
 * largest datagram the caller can send (the reply is cut further to the client's EDNS0 size,
 * or 512 without EDNS0, with TC set). The query bytes are not kept after the call.
 * The callback is called exactly once unless the request is canceled: with the reply, or
 * with reply NULL / len 0 when the message must be dropped (garbage without a header).
 * Returns the request when the answer comes later, or NULL when the callback has already
 * been called (local answers, cache hits, errors).
 */
typedef void (*dns_reply_cb)(void *ctx, const uint8_t *reply, size_t len);
struct dns_request *dns_resolver_handle(struct dns_resolver *r, const uint8_t *query, size_t len,
                                        size_t max_reply, dns_reply_cb cb, void *ctx);

/* Name lookup for the proxies. */
enum dns_family {
    DNS_FAMILY_ANY = 0, /* A and AAAA; IPv4 addresses listed first */
    DNS_FAMILY_V4,
    DNS_FAMILY_V6,
};
#define DNS_LOOKUP_MAX_ADDRS 32
/* err: 0 (n >= 1 addresses), or for every candidate name: BASE_ENXDOMAIN (none exists),
 * BASE_ENOANSWER (one exists, without addresses of the family), BASE_ESERVFAIL (no answer:
 * SERVFAIL, timeout, no upstream for it); BASE_EPARSE for a name that is not a host name,
 * -ENOMEM. addrs (never NULL) valid only during the callback; n = 0 unless err is 0. */
typedef void (*dns_lookup_cb)(void *ctx, int err, const struct base_addr *addrs, size_t n);
/* IP literals answer at once. A single-label name is tried as <name>.<MagicDNS suffix> first,
 * then with each search domain; a name ending in '.' is tried as is only. Same return
 * convention as dns_resolver_handle(): NULL = callback already called. */
struct dns_request *dns_resolver_lookup(struct dns_resolver *r, const char *name,
                                        enum dns_family family, dns_lookup_cb cb, void *ctx);

/* The callback will not be called; the resolver frees the request. Only for requests whose
 * callback has not run yet. */
void dns_request_cancel(struct dns_request *req);

/*
 * DNS over a byte stream (RFC 7766), whatever carries the bytes: a 2-byte length prefix per
 * message, several queries per connection answered as they complete (not in order), at most
 * DNS_STREAM_MAX_INFLIGHT waiting for upstreams at once, idle connections closed.
 * The transport (a uv_tcp in the local listener, an ns_conn at 100.100.100.100:53) creates one
 * session per connection, feeds it what it reads and writes out what the session hands it
 * through struct dns_stream_ops.
 *
 * Ownership: the transport owns the session and closes it with dns_stream_close(), at the
 * latest right after the session said it is done. The session copies what it is fed; the
 * data given to ops->write() is valid only during the call. Its idle timer runs on the
 * resolver's loop, so the session must be closed before the resolver (dns_stream_close
 * cancels the queries in flight without replies; its memory goes in the timer's close
 * callback).
 * Re-entrancy: ops are called from inside dns_stream_* calls and from resolver callbacks on
 * the loop. ops->pause(ctx, false) may feed held bytes back (dns_stream_feed from inside it).
 * ops->done() may call dns_stream_close() from inside it; after done no op is called again.
 */
#define DNS_STREAM_MAX_INFLIGHT 32
#define DNS_STREAM_OUT_MAX 65536 /* replies queued beyond this stop new queries */
struct dns_stream;
struct dns_stream_ops {
    /* Send up to len bytes; returns how many were taken (0 = none now: call
     * dns_stream_writable() when there is room again) or a negative error (the connection
     * is broken). */
    ssize_t (*write)(void *ctx, const uint8_t *data, size_t len);
    /* Stop (true) or restart (false) calling dns_stream_feed. Bytes of a feed in progress
     * and what the transport had already read are still accepted. */
    void (*pause)(void *ctx, bool paused);
    /* The session is done with n bytes it was fed (a flow-controlled transport reopens its
     * window by n). NULL when the transport does not care. */
    void (*consumed)(void *ctx, size_t n);
    /* The session is done: graceful (true: EOF or idle, every reply handed to write) or
     * abort (false: garbage, broken write, out of memory, idle with replies the client never
     * read). The transport closes the connection and the session. */
    void (*done)(void *ctx, bool graceful);
};
struct dns_stream_config {
    const struct dns_stream_ops *ops;
    void *ctx;        /* the ops' first argument */
    unsigned idle_ms; /* close after that long without a query while none is in flight,
                         0 = 10000 */
};
/* Returns 0 or -ENOMEM. */
int dns_stream_new(struct dns_resolver *r, const struct dns_stream_config *cfg,
                   struct dns_stream **out);
/* Bytes read from the connection, any split. */
void dns_stream_feed(struct dns_stream *s, const uint8_t *data, size_t len);
/* The client's FIN: queries in flight are still answered, then the session is done. */
void dns_stream_eof(struct dns_stream *s);
/* The transport can take more output after write() took less than offered. */
void dns_stream_writable(struct dns_stream *s);
/* No op is called after this; on_closed (may be NULL) once the memory is freed. */
void dns_stream_close(struct dns_stream *s, dns_closed_cb on_closed, void *arg);

/* Local listener: UDP and TCP (2-byte length prefix, pipelined) on addr. */
struct dns_listener_config {
    struct dns_resolver *resolver; /* closed after the listener */
    struct base_endpoint addr;     /* port 0: any free for both UDP and TCP */
    unsigned tcp_idle_ms;          /* close idle TCP connections, 0 = 10000 */
    unsigned max_tcp_conns;        /* 0 = 64; more are accepted and closed at once */
    unsigned max_udp_inflight;     /* queries waiting for upstreams, 0 = 1024; more dropped */
};
struct dns_listener;
/* Binds UDP, then TCP on the same port. Returns 0, or a negative error (-EADDRINUSE, ...);
 * its handles are then closing (run the loop for them to be freed). */
int dns_listener_new(uv_loop_t *loop, const struct dns_listener_config *cfg,
                     struct dns_listener **out);
/* The port actually bound (for port 0); 0 if unknown. */
uint16_t dns_listener_port(const struct dns_listener *l);
/* Cancels its requests, closes everything; on_closed (may be NULL) once the memory is
 * freed. */
void dns_listener_close(struct dns_listener *l, dns_closed_cb on_closed, void *arg);

#endif
