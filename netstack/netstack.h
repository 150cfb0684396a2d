/*
 * netstack: lwIP 2.1.3 on the libuv loop, terminating the TCP, UDP and ICMP flows a node's
 * peers send it and opening flows from the node's tunnel addresses.
 *
 * A stack is one node's view: a netif with the node's tunnel addresses and MTU. Packets come in
 * through ns_stack_input() (the caller keeps its buffer) and go out through the output callback
 * given at creation (the netstack keeps its buffer; output must copy what it keeps).
 * Several stacks may live in one process (on ONE loop): lwIP is a single global instance, packets
 * leave by the netif that owns their source address, and a stack only accepts packets addressed
 * to its own addresses.
 *
 * Memory: a stack owns its conns and flows until the user closes them; every ns_conn / ns_udp /
 * ns_ping handed to the user must be released exactly once (ns_conn_close/ns_conn_reset,
 * ns_udp_close, ns_ping_cancel or its completion). After release no callback fires for it.
 * Callbacks fire on the loop, never from inside a call the user made on the same object, except
 * where noted. Data pointers passed to callbacks are valid only during the call.
 * Packets a stack sends to itself or that arrive while lwIP is busy (a back-to-back stack in
 * the same process) are queued (bounded, 32 MiB) and handled on the next loop turn.
 * Not supported: ns_stack_free() from inside one of the stack's callbacks; stacks of one
 * process on different loops.
 */
#ifndef TUNLESS_NETSTACK_H
#define TUNLESS_NETSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct ns_stack ns_stack;
typedef struct ns_conn ns_conn;
typedef struct ns_udp ns_udp;
typedef struct ns_ping ns_ping;

/* Error codes (negative); ns_strerror() names them. */
enum {
    NS_OK = 0,
    NS_EREFUSED = -1,   /* TCP RST to our SYN, ICMP port unreachable */
    NS_EUNREACH = -2,   /* no route (no peer's allowed IPs cover it) or ICMP unreachable */
    NS_ETIMEDOUT = -3,  /* retransmissions / ping timed out */
    NS_ERESET = -4,     /* connection reset by the peer */
    NS_ENOMEM = -5,     /* out of memory */
    NS_EINVAL = -6,     /* bad argument (wrong family, no such address, ...) */
    NS_ECLOSED = -7,    /* the connection is closed (write after FIN or error) */
    NS_ELIMIT = -8,     /* a configured cap (connections, flows) is reached */
    NS_EADDRINUSE = -9, /* no free local port */
};
const char *ns_strerror(int err);

/* An IP address: family AF_INET (first 4 bytes of ip) or AF_INET6; family 0 = none/any. */
typedef struct ns_addr {
    int family;
    uint8_t ip[16];
} ns_addr;

typedef struct ns_endpoint {
    ns_addr addr;
    uint16_t port;
} ns_endpoint;

int ns_addr_parse(ns_addr *out, const char *text);                   /* 0 or NS_EINVAL */
const char *ns_addr_format(const ns_addr *a, char *buf, size_t len); /* len >= 46 */
int ns_addr_equal(const ns_addr *a, const ns_addr *b);               /* bytes of the family only */
int ns_endpoint_equal(const ns_endpoint *a, const ns_endpoint *b);

/* Return value of the output callback when no peer's allowed IPs cover the destination: the
 * stack counts it and answers the local side with ICMP unreachable (a TCP connect fails with
 * NS_EUNREACH, a ping reports NS_EUNREACH). Any other non-zero return is a silent drop. */
#define NS_OUTPUT_NO_ROUTE NS_EUNREACH
typedef int (*ns_output_fn)(void *ctx, const uint8_t *pkt, size_t len);

struct ns_config {
    ns_addr addr4;        /* the node's tunnel IPv4 address (family 0: none) */
    ns_addr addr6;        /* the node's tunnel IPv6 address (family 0: none) */
    uint32_t mtu;         /* tunnel MTU; 0 = 1420. TCP MSS = mtu - 40 (v4) / - 60 (v6) */
    uint32_t tcp_rcv_wnd; /* per-connection receive window, 0 = NS_TCP_WND_MAX; >= 65535 */
    uint32_t tcp_snd_buf; /* per-connection send buffer, 0 = NS_TCP_SND_BUF_MAX */
    uint32_t max_tcp;     /* open TCP connections (incl. half-open inbound); 0 = 4096 */
    uint32_t max_udp;     /* open UDP flows; 0 = 4096 */
    uint32_t max_pending; /* half-open inbound TCP per stack (oldest dropped); 0 = 128 */
};
#define NS_TCP_WND_MAX (4u * 1024 * 1024)
#define NS_TCP_SND_BUF_MAX (4u * 1024 * 1024)

/* Counters for status; the gauges (tcp_open, udp_open) go up and down, the rest only up. */
struct ns_counters {
    uint64_t pkts_in, bytes_in;   /* packets accepted from the tunnel */
    uint64_t pkts_out, bytes_out; /* packets handed to output */
    uint64_t drop_malformed;      /* bad IP/TCP/UDP/ICMP from the tunnel */
    uint64_t drop_not_ours;       /* addressed to an address this stack does not own */
    uint64_t drop_limit;          /* refused by a cap (max_tcp, max_udp, queue) */
    uint64_t drop_pending;        /* oldest half-open inbound TCP dropped for a new one */
    uint64_t no_route;            /* output said NS_OUTPUT_NO_ROUTE */
    uint64_t tcp_open, udp_open;  /* gauges: conns / flows held by users */
    uint64_t tcp_accepted, tcp_connected, tcp_unhandled, udp_accepted, udp_unhandled;
    uint64_t tcp_bytes_rx, tcp_bytes_tx, udp_bytes_rx, udp_bytes_tx;
};

/* Create a stack on loop. Returns NULL on bad config (no address, MTU < 1280 with IPv6,
 * < 576 otherwise) or lack of memory. */
ns_stack *ns_stack_new(uv_loop_t *loop, const struct ns_config *cfg, ns_output_fn output,
                       void *output_ctx);
/* Abort every conn, flow and ping still open (no callbacks; their handles become invalid)
 * and free the stack. Its timer handle is closed; the loop must run once more to release it. */
void ns_stack_free(ns_stack *ns);
/* A decrypted IP packet from the tunnel. Malformed or foreign packets are dropped and counted. */
void ns_stack_input(ns_stack *ns, const uint8_t *pkt, size_t len);
/* An extra local address (e.g. 100.100.100.100 for MagicDNS): accepted and answered to ping. */
int ns_stack_add_address(ns_stack *ns, const ns_addr *addr);
const struct ns_counters *ns_stack_counters(const ns_stack *ns);
/* TCP connections the user already closed that are still delivering their last bytes and FIN
 * (a graceful shutdown waits for 0 before ns_stack_free, which would reset them). */
unsigned ns_stack_tcp_lingering(const ns_stack *ns);

/* ---- TCP ---- */
struct ns_conn_cbs {
    /* Outbound only: the handshake finished (status NS_OK) or failed (then the conn is dead and
   * must still be released with ns_conn_close). */
    void (*on_connect)(ns_conn *c, int status);
    /* Bytes from the peer (len > 0) or the peer's FIN (data NULL, len 0). The receive window
   * reopens only as the user calls ns_conn_consumed(). */
    void (*on_read)(ns_conn *c, const uint8_t *data, size_t len);
    /* The send buffer drained after ns_conn_write() accepted less than it was offered. */
    void (*on_writable)(ns_conn *c);
    /* The conn died (NS_ERESET, NS_ETIMEDOUT, NS_EUNREACH, ...); release it with ns_conn_close. */
    void (*on_error)(ns_conn *c, int err);
};

/* Handler for new inbound TCP: must call ns_conn_set_cbs() (and later release c) or release c
 * at once (ns_conn_reset refuses it). */
typedef void (*ns_tcp_accept_fn)(void *ctx, ns_conn *c);
/* Route new inbound TCP to (local, port) to fn. local NULL or family 0: any of the stack's
 * addresses; port 0: any port. The most specific registration wins; with none the SYN gets a
 * RST. Registering the same (local, port) again replaces it. */
int ns_stack_handle_tcp(ns_stack *ns, const ns_addr *local, uint16_t port, ns_tcp_accept_fn fn,
                        void *ctx);
void ns_stack_unhandle_tcp(ns_stack *ns, const ns_addr *local, uint16_t port);

/* Open a TCP connection from the stack's address of remote's family and a random port.
 * Returns NULL and sets *err on immediate failure; otherwise on_connect reports the outcome. */
ns_conn *ns_conn_connect(ns_stack *ns, const ns_endpoint *remote, const struct ns_conn_cbs *cbs,
                         void *data, int *err);
void ns_conn_set_cbs(ns_conn *c, const struct ns_conn_cbs *cbs, void *data);
void *ns_conn_data(const ns_conn *c);
const ns_endpoint *ns_conn_local(const ns_conn *c);
const ns_endpoint *ns_conn_remote(const ns_conn *c);
/* Copy up to len bytes into the send buffer; returns the count taken (0 when full: wait for
 * on_writable; 0 before on_connect, which is the signal to start) or a negative error. */
ssize_t ns_conn_write(ns_conn *c, const void *data, size_t len);
size_t ns_conn_write_space(const ns_conn *c);
/* Cap the bytes queued but not yet acknowledged on this conn (0 = the stack's tcp_snd_buf):
 * a service whose client may stop reading keeps its memory bounded per connection. */
void ns_conn_set_send_limit(ns_conn *c, size_t bytes);
/* The user is done with n bytes handed to on_read: reopen the window by n. */
void ns_conn_consumed(ns_conn *c, size_t n);
/* Pause (1) / resume (0) on_read; bytes arriving meanwhile are held, bounded by the window.
 * Resuming hands held bytes (and a held FIN) to on_read before it returns. */
void ns_conn_read_pause(ns_conn *c, int paused);
/* Send FIN after the queued bytes; reading goes on. */
int ns_conn_shutdown(ns_conn *c);
/* Release c: graceful close (FIN after queued bytes), or reset (RST). Safe inside callbacks. */
void ns_conn_close(ns_conn *c);
void ns_conn_reset(ns_conn *c);

/* ---- UDP ---- */
struct ns_udp_cbs {
    void (*on_recv)(ns_udp *u, const uint8_t *data, size_t len);
    /* ICMP error about this flow (NS_EUNREACH, NS_EREFUSED); the flow stays usable. */
    void (*on_error)(ns_udp *u, int err);
};
typedef void (*ns_udp_accept_fn)(void *ctx, ns_udp *u);
/* Like ns_stack_handle_tcp for new UDP flows (one per remote endpoint); with no handler the
 * stack answers ICMP port unreachable. The datagram that opened the flow is delivered right
 * after fn returns, so fn must set the callbacks. */
int ns_stack_handle_udp(ns_stack *ns, const ns_addr *local, uint16_t port, ns_udp_accept_fn fn,
                        void *ctx);
void ns_stack_unhandle_udp(ns_stack *ns, const ns_addr *local, uint16_t port);
ns_udp *ns_udp_open(ns_stack *ns, const ns_endpoint *remote, const struct ns_udp_cbs *cbs,
                    void *data, int *err);
void ns_udp_set_cbs(ns_udp *u, const struct ns_udp_cbs *cbs, void *data);
void *ns_udp_data(const ns_udp *u);
const ns_endpoint *ns_udp_local(const ns_udp *u);
const ns_endpoint *ns_udp_remote(const ns_udp *u);
int ns_udp_send(ns_udp *u, const void *data, size_t len); /* NS_OK or error */
void ns_udp_close(ns_udp *u);

/* ---- ICMP echo ---- */
/* status NS_OK with the round trip in ms, NS_ETIMEDOUT or NS_EUNREACH. The ping is released
 * after the callback. */
typedef void (*ns_ping_fn)(void *data, int status, uint64_t rtt_ms);
ns_ping *ns_ping_send(ns_stack *ns, const ns_addr *dst, uint16_t seq, size_t payload_len,
                      uint64_t timeout_ms, ns_ping_fn cb, void *data, int *err);
void ns_ping_cancel(ns_ping *p); /* no callback afterwards */

#endif
