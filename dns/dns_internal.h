/* The resolver's insides, shared by resolver.c, upstream.c, lookup.c (and tests). */
#ifndef TUNLESS_DNS_INTERNAL_H
#define TUNLESS_DNS_INTERNAL_H

#include <ares.h>

#include "dns.h"
#include "dns_cache.h"
#include "dns_wire.h"
#include "dns_zone.h"

/* One c-ares channel serving one route (suffix -> servers). */
struct dns_upstream {
    struct dns_upstream *next;
    struct dns_resolver *r;
    ares_channel ch;
    uv_timer_t timer;             /* c-ares' own retransmission timeouts */
    uint8_t suffix[DNS_NAME_MAX]; /* root for the default route */
    unsigned pending;
    int retired;
};

/* A socket c-ares opened; connected lazily to a host socket or the mesh transport. */
struct dns_transport_conn {
    struct dns_resolver *r;
    struct dns_upstream *up;
    int id; /* the number c-ares knows it by */
    int family, type;
    int kind; /* DNS_SOCK_NONE, _HOST, _MESH, _DEAD (its transport went away) */
    int fd;   /* host fd or transport handle */
    uv_poll_t *poll;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    int want_read, want_write;
};
enum { DNS_SOCK_NONE, DNS_SOCK_HOST, DNS_SOCK_MESH, DNS_SOCK_DEAD };

enum { DNS_REQ_FORWARD, DNS_REQ_LOOKUP };

struct dns_lookup_state;
struct dns_request {
    int kind;
    struct dns_resolver *r;
    struct dns_request *prev, *next;   /* resolver's list of live requests */
    struct dns_request *tprev, *tnext; /* deadline queue (forwards) */
    int in_tqueue;
    uint64_t deadline_ms;
    int canceled, finished;
    int in_ares, in_send, sync_done;
    struct dns_upstream *up;
    dns_reply_cb cb;
    void *ctx;
    size_t limit; /* reply size limit for the client */
    int client_edns;
    uint32_t client_edns_ttl;
    uint16_t id;
    size_t qlen; /* header + question, kept for SERVFAIL */
    uint8_t query[DNS_HDR_LEN + DNS_NAME_MAX + 4];
    struct dns_lookup_state *lookup;
};

struct dns_resolver {
    uv_loop_t *loop;
    struct dns_zone zone;
    struct dns_cache cache;
    struct dns_upstream *routes;  /* active, one per route incl. default */
    struct dns_upstream *retired; /* old config's channels finishing their queries */
    uint8_t (*search)[DNS_NAME_MAX];
    size_t n_search;
    unsigned timeout_ms;
    struct dns_transport mesh;
    int has_mesh;
    struct dns_transport_conn **socks;
    size_t nsocks;
    struct dns_request *live;
    struct dns_request *tq_head, *tq_tail;
    uv_timer_t deadline_timer;
    uv_timer_t reaper;
    int open_handles;
    int closing;
    struct dns_stats stats;
    uint8_t buf[DNS_MSG_MAX];
};

/* upstream.c */
int dns_upstreams_build(struct dns_resolver *r, const struct dns_config *cfg,
                        struct dns_upstream **out, char *err, size_t errlen);
void dns_upstream_retire(struct dns_upstream *up);
void dns_upstreams_reap(struct dns_resolver *r, int all);
/* Closes the mesh transport's sockets (all, or with misrouted_only those it no longer
 * covers, and host sockets to servers it now covers); c-ares sees them fail. */
void dns_upstream_drop_mesh(struct dns_resolver *r, int misrouted_only);
struct dns_upstream *dns_upstream_route(struct dns_resolver *r, const uint8_t *name);
void dns_upstream_send(struct dns_upstream *up, const uint8_t *q, size_t len,
                       struct dns_request *req);

/* resolver.c, called by upstream.c when c-ares is done with a request */
void dns_forward_done(struct dns_request *req, int status, const uint8_t *reply, size_t len);
void dns_request_release(struct dns_request *req);
struct dns_request *dns_request_new(struct dns_resolver *r, int kind);
void dns_set_err(char *err, size_t errlen, const char *fmt, ...);

/* lookup.c */
void dns_lookup_cancel(struct dns_request *req);
void dns_lookup_free(struct dns_request *req);

#endif
