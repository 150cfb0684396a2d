/* The resolver's insides, shared by resolver.c, forward.c, upstream.c, upstream_sock.c and
 * lookup.c. */
#ifndef TUNLESS_DNS_INTERNAL_H
#define TUNLESS_DNS_INTERNAL_H

#include <ares.h>

#include "dns.h"
#include "dns_cache.h"
#include "dns_wire.h"
#include "dns_zone.h"

/* One c-ares channel serving one route (suffix -> servers).
 * ACTIVE (in r->routes) -> RETIRED (in r->retired: a reload or close replaced it; it finishes
 * the queries it holds) -> destroyed by the reaper once it holds none (or at close). */
enum dns_upstream_state { DNS_UPSTREAM_ACTIVE, DNS_UPSTREAM_RETIRED };
struct dns_upstream {
    struct base_list link; /* in r->routes or r->retired */
    struct dns_resolver *r;
    ares_channel ch;
    uv_timer_t timer;             /* c-ares' own retransmission timeouts */
    uint8_t suffix[DNS_NAME_MAX]; /* root for the default route */
    unsigned pending;             /* queries c-ares holds */
    enum dns_upstream_state state;
};

/* A socket c-ares opened: NONE until c-ares connects it, then a HOST socket (watched by a
 * uv_poll) or a MESH socket (the transport's handle); DEAD once its transport went away or
 * it turned out misrouted (c-ares then reads ECONNRESET and drops it). */
enum dns_sock_kind { DNS_SOCK_NONE, DNS_SOCK_HOST, DNS_SOCK_MESH, DNS_SOCK_DEAD };
struct dns_transport_conn {
    struct dns_resolver *r;
    struct dns_upstream *up;
    int id; /* the number c-ares knows it by */
    int family, type;
    enum dns_sock_kind kind;
    int fd; /* host fd or transport handle */
    uv_poll_t *poll;
    struct base_endpoint peer;
    bool want_read, want_write;
};

/*
 * A request, public as struct dns_request, is either a forward (forward.c) or a lookup
 * (lookup.c) around this common part. Its life:
 *   STARTING  inside the call that made it (dns_resolver_handle / dns_resolver_lookup)
 *     -> EARLY     answered before that call returned: the call frees it and returns NULL
 *     -> WAITING   returned to the caller: its callback is due
 *   WAITING -> ANSWERED  callback called, canceled (no callback), or the resolver closing
 * It is freed once ANSWERED (or EARLY, by its starting call) and no c-ares channel still
 * holds it (a forward's up).
 */
enum dns_req_kind { DNS_REQ_FORWARD, DNS_REQ_LOOKUP };
enum dns_req_state { DNS_REQ_STARTING, DNS_REQ_EARLY, DNS_REQ_WAITING, DNS_REQ_ANSWERED };
struct dns_request {
    enum dns_req_kind kind;
    enum dns_req_state state;
    struct dns_resolver *r;
    struct base_list link; /* r->live */
};

struct dns_forward {
    struct dns_request req;
    struct base_list tlink; /* r->deadlines while its answer is due, in deadline order */
    uint64_t deadline_ms;
    struct dns_upstream *up; /* the channel holding the query (its callback due), or NULL */
    dns_reply_cb cb;
    void *ctx;
    size_t limit; /* reply size limit for the client */
    bool client_edns;
    uint32_t client_edns_ttl;
    uint16_t id;
    size_t qlen; /* header + question, kept for SERVFAIL */
    uint8_t query[DNS_HDR_LEN + DNS_NAME_MAX + 4];
};

/* RUNNING -> CLOSING (dns_resolver_close: no callback is called any more) -> freed once its
 * last handle is closed. */
enum dns_resolver_state { DNS_RESOLVER_RUNNING, DNS_RESOLVER_CLOSING };
struct dns_resolver {
    uv_loop_t *loop;
    enum dns_resolver_state state;
    struct base_logger log;
    struct dns_zone zone;
    struct dns_cache cache;
    struct base_list routes;  /* dns_upstream: active, one per route incl. default */
    struct base_list retired; /* dns_upstream: old config's channels finishing their queries */
    uint8_t (*search)[DNS_NAME_MAX];
    size_t n_search;
    unsigned timeout_ms;
    struct dns_transport mesh;
    bool has_mesh;
    struct dns_transport_conn **socks; /* index = c-ares' socket number */
    size_t nsocks;
    struct base_list live;      /* dns_request: every request not yet freed */
    struct base_list deadlines; /* dns_forward.tlink */
    uv_timer_t deadline_timer;
    uv_timer_t reaper; /* zero-delay work from the loop: see upstream.c */
    unsigned open_handles;
    dns_closed_cb on_closed;
    void *closed_arg;
    struct dns_stats stats;
    uint8_t buf[DNS_MSG_MAX];
};

static inline bool dns_resolver_closing(const struct dns_resolver *r)
{
    return r->state == DNS_RESOLVER_CLOSING;
}

/* resolver.c */
/* uv_close for every handle the resolver owns; the last one frees it. */
void dns_resolver_close_handle(struct dns_resolver *r, uv_handle_t *h);
void dns_resolver_handle_closed(struct dns_resolver *r);
size_t dns_error_reply(struct dns_resolver *r, const struct dns_msg_info *qi, unsigned rcode,
                       size_t limit);
void dns_deliver(struct dns_resolver *r, uint8_t *msg, size_t len, size_t limit, dns_reply_cb cb,
                 void *ctx);
struct dns_request *dns_request_start(struct dns_resolver *r, struct dns_request *req,
                                      enum dns_req_kind kind);
/* Frees req when nothing holds it any more (see the life above); else nothing. */
void dns_request_release(struct dns_request *req);
/* The end of the starting call: EARLY -> freed (returns NULL), STARTING -> WAITING. */
struct dns_request *dns_request_started(struct dns_request *req);

/* forward.c */
struct dns_request *dns_forward_start(struct dns_resolver *r, struct dns_upstream *up,
                                      const uint8_t *query, size_t len,
                                      const struct dns_msg_info *qi, size_t limit, dns_reply_cb cb,
                                      void *ctx);
/* c-ares is done with the forward (answer, error, or its channel destroyed). */
void dns_forward_done(struct dns_forward *f, int status, const uint8_t *reply, size_t len);
void dns_forward_cancel(struct dns_forward *f);
void dns_forwards_timer_init(struct dns_resolver *r);

/* upstream.c: channels */
int dns_upstreams_build(struct dns_resolver *r, const struct dns_config *cfg,
                        struct base_list *out);
/* Retires the active channels and makes fresh's (NULL: none) the active ones. */
void dns_upstreams_replace(struct dns_resolver *r, struct base_list *fresh);
/* Destroys retired channels holding no query (all: every retired one). */
void dns_upstreams_reap(struct dns_resolver *r, bool all);
struct dns_upstream *dns_upstream_route(struct dns_resolver *r, const uint8_t *name);
void dns_upstream_send(struct dns_upstream *up, const uint8_t *q, size_t len,
                       struct dns_forward *f);
void dns_upstream_reschedule(struct dns_upstream *up);
/* Runs the reaper on the next loop turn (retired channels, mesh sockets to retry). */
void dns_upstream_kick(struct dns_resolver *r);
void dns_reaper_init(struct dns_resolver *r);

/* upstream_sock.c: the sockets c-ares opens */
extern const struct ares_socket_functions dns_sock_funcs;
void dns_sock_state_cb(void *data, ares_socket_t s, int readable, int writable);
/* Closes the mesh transport's sockets (all, or with misrouted_only those it no longer
 * covers, and host sockets to servers it now covers); c-ares sees them fail. */
void dns_socks_drop_mesh(struct dns_resolver *r, bool misrouted_only);
/* Lets c-ares retry mesh sockets waiting to write and see dead ones fail. */
void dns_socks_retry(struct dns_resolver *r);

/* lookup.c */
void dns_lookup_cancel(struct dns_request *req);
void dns_lookup_free(struct dns_request *req);

/* listener.c: one reply handed to libuv for a TCP client, the request and the copy of its
 * bytes in one allocation. Replies libuv could not hand to the kernel at once wait in its queue;
 * beyond DNS_LISTENER_QUEUE_MAX of them, counted at their cost (bytes plus
 * DNS_LISTENER_WRITE_OVERHEAD each), the session waits for the client to read. */
struct dns_listener_write {
    uv_write_t req;
    bool queued; /* counted in the connection's queued writes */
    uint8_t data[];
};
#define DNS_LISTENER_WRITE_OVERHEAD (sizeof(struct dns_listener_write) + BASE_MALLOC_SLACK)
#define DNS_LISTENER_QUEUE_MAX (64 * 1024)

/* zone.c and upstream.c: a rejected config's reason, one line on the resolver's logger. */
#define dns_config_invalid(log, ...) \
    base_logf((log), BASE_LOG_ERROR, "event=dns_config_invalid " __VA_ARGS__)

#endif
