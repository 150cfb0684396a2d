/*
 * One client connection of the proxy and the machinery every protocol shares: reading the
 * client with backpressure, writing to it, the upstream stream, the byte relay, closing.
 * Internal to proxy/.
 */
#ifndef TUNLESS_PROXY_CONN_H
#define TUNLESS_PROXY_CONN_H

#include <llhttp.h>
#include <uv.h>

#include "auth.h"
#include "httpproxy.h"
#include "proxy.h"
#include "socks5.h"

/* Backpressure: stop reading a side once this much is queued towards the other side, and
 * resume below the low mark. Bounded by one read buffer beyond the high mark. */
#define CONN_READ_BUF 65536
#define CONN_HIGH_WATER (256 * 1024)
#define CONN_LOW_WATER (64 * 1024)
#define CONN_LINGER_MS 2000

struct proxy_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct proxy_config cfg;
    struct proxy_auth auth;
    struct conn *conns;
    unsigned nconns;
    unsigned long next_id;
    int port;
    int closing;
    int forced; /* proxy_server_close: connections are being cut, not drained */
    int listener_open;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* A client read buffer, shared by reference with the upstream writes carrying its bytes. */
struct rbuf {
    unsigned refs;
    size_t len;
    uint8_t data[];
};

enum conn_kind { CONN_SNIFF, CONN_SOCKS5, CONN_HTTP };
enum conn_phase {
    PH_HEAD,      /* waiting for a request head */
    PH_DIALING,   /* upstream connect in progress */
    PH_RELAY,     /* raw tunnel (SOCKS5 CONNECT, HTTP CONNECT) */
    PH_UDP,       /* SOCKS5 UDP association; the TCP side only watches for EOF */
    PH_HTTP_BODY, /* HTTP request body flowing upstream */
    PH_HTTP_WAIT, /* request sent; response still flowing back */
    PH_FINISHING, /* last reply flushed, waiting for the client to go */
};

struct conn {
    struct conn *prev, *next;
    struct proxy_server *srv;
    unsigned long id;
    char peer[64];
    enum conn_kind kind;
    enum conn_phase phase;
    int open; /* handles and streams whose close is still to come */
    int closing;

    uv_tcp_t client;
    uv_timer_t timer;
    uv_shutdown_t client_shut;
    int want_read, bp_paused, reading, client_eof, client_shut_sent;
    size_t cl_pending; /* bytes queued towards the client */
    struct rbuf *cur;  /* the buffer whose bytes are being processed */
    struct rbuf *hold; /* client bytes that arrived before we could use them */
    size_t hold_off, hold_len;

    struct proxy_stream *up;
    int up_connected, up_eof, up_want_read, up_bp_paused;
    size_t up_pending; /* bytes queued towards the upstream */

    struct socks5_parser s5;

    struct httpproxy_req *http;
    llhttp_t resp;
    llhttp_settings_t resp_settings;
    int req_done, resp_done, resp_keep_alive, resp_started;

    uv_udp_t udp;
    int udp_open;
    struct proxy_dgram *dg;
    struct sockaddr_storage udp_peer; /* where the client's datagrams come from */
    int udp_peer_known;
    uint16_t udp_expect_port;
};

void proxy_log(struct proxy_server *srv, enum proxy_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define conn_log(c, level, fmt, ...) \
    proxy_log((c)->srv, level, "conn %lu %s: " fmt, (c)->id, (c)->peer, ##__VA_ARGS__)

/* Frees a closing server once its listener and last connection are gone. */
void proxy_server_check_done(struct proxy_server *srv);
void conn_accept(struct proxy_server *srv);
void conn_close(struct conn *c);
/* One of the connection's handles or streams has closed; the last one frees it. */
void conn_unref(struct conn *c);
/* Answer nothing more; close once the queued bytes are out and the client went or lingered. */
void conn_finish(struct conn *c);
void conn_client_write(struct conn *c, const void *data, size_t len);
void conn_sync_read(struct conn *c);
void conn_up_sync_read(struct conn *c);
/* Keep data[0..len) of rb for later (it is the rest of the buffer being processed). */
void conn_hold(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len);
/* Bytes towards the upstream: by reference to rb, or copied. */
void conn_up_write_ref(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len);
void conn_up_write_copy(struct conn *c, const void *data, size_t len);
/* Start dialing t; the protocol hears back in its on_connect. */
int conn_dial(struct conn *c, const struct proxy_target *t);
void conn_up_close(struct conn *c);
/* Hand any held bytes upstream and tunnel both ways. */
void conn_relay_start(struct conn *c);
void conn_head_timer(struct conn *c, unsigned ms);

/* Protocol entry points. */
void socks5_conn_data(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len);
void socks5_conn_connected(struct conn *c, int err, const struct sockaddr *local);
void httpproxy_conn_data(struct conn *c, struct rbuf *rb, const uint8_t *data, size_t len);
void httpproxy_conn_connected(struct conn *c, int err);
void httpproxy_conn_up_read(struct conn *c, const uint8_t *data, size_t len);
void httpproxy_conn_up_eof(struct conn *c);
void httpproxy_conn_client_eof(struct conn *c);
void httpproxy_conn_timeout(struct conn *c);
void httpproxy_conn_free(struct conn *c);

#endif
