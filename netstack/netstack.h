/*
 * netstack: lwIP 2.1.3 on the libuv loop, terminating the TCP, UDP and ICMP flows a node's
 * peers send it and opening flows from the node's tunnel addresses.
 *
 * A stack is one node's view: a netif with the node's tunnel addresses and MTU. Packets come in
 * through ns_stack_input() (the caller keeps its buffer) and go out through the output callback
 * of the configuration (the netstack keeps its buffer; output must copy what it keeps).
 * Several stacks may live in one process (on ONE loop): lwIP is a single global instance, packets
 * leave by the netif that owns their source address, and a stack only accepts packets addressed
 * to its own addresses.
 *
 * Errors are base's one error space (base/base.h): 0, a negative errno value where errno has
 * the word (-ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET, -ENOMEM,
 * -EINVAL, -EPIPE, -EADDRINUSE), BASE_ELIMIT for a configured cap and BASE_ECLOSING for a stack
 * that is closing. base_strerror() names them.
 *
 * Memory: a stack owns its conns and flows until the user releases them; every ns_conn / ns_udp
 * / ns_ping handed to the user must be released exactly once (ns_conn_close/ns_conn_reset,
 * ns_udp_close, ns_ping_cancel or its completion). After release no callback fires for it.
 * Callbacks fire on the loop, never from inside a call the user made on the same object, except
 * where noted. Data pointers passed to callbacks are valid only during the call.
 * Packets a stack sends to itself or that arrive while lwIP is busy (a back-to-back stack in
 * the same process) are queued (bounded, 32 MiB) and handled on the next loop turn.
 *
 * Closing (ns_stack_close), the contract with whoever holds the stack or its objects:
 *   1. The stack stops at once: no new inbound conns or flows, ns_stack_input drops, and every
 *      call that would make something new (ns_conn_connect, ns_udp_open, ns_ping_send,
 *      ns_stack_handle_*, ns_stack_add_address, ns_stack_watch) fails with BASE_ECLOSING.
 *   2. Whoever keeps the ns_stack pointer itself, to open conns and flows later (a dialer, a
 *      DNS transport), registers a struct ns_stack_watch: its on_closing runs first, before any
 *      object hears anything. It forgets the pointer there, and may release what it holds
 *      (those objects then hear nothing more). Watches run in the order they were registered;
 *      each is unregistered just before it runs.
 *   3. Every object still held hears of it through its own callback, with BASE_ECLOSING: an
 *      outbound conn still connecting through on_connect, any other conn through on_error (its
 *      pcb is reset: the peer gets a RST), a flow through on_error, a ping through its callback
 *      (the ping is then released, as after any completion). A conn that already reported its
 *      death is not told again. For a conn or a flow BASE_ECLOSING is final: it is dead
 *      (writes and sends fail with BASE_ECLOSING) and must still be released (ns_conn_close /
 *      ns_conn_reset, ns_udp_close), in the callback or later. A holder that set no such
 *      callback hears nothing and keeps the stack from being freed until it releases.
 *   4. Once every object is released, the stack frees itself in its timer's close callback and
 *      calls on_closed (never from inside ns_stack_close). The ns_stack pointer stays valid
 *      (for calls that fail with BASE_ECLOSING) until on_closed; the output callback is not
 *      called after ns_stack_close returns.
 * So the owner of a stack needs no detach calls in a hand-made order: each part that holds
 * something cleans up after itself, reacting to its watch or to BASE_ECLOSING as to any fatal
 * error.
 * Not supported: ns_stack_close() from inside one of the stack's callbacks; stacks of one
 * process on different loops.
 */
#ifndef TUNLESS_NETSTACK_H
#define TUNLESS_NETSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base.h"

struct ns_stack;
struct ns_conn;
struct ns_udp;
struct ns_ping;

/* Return value of the output callback when no peer's allowed IPs cover the destination: the
 * stack counts it and answers the local side with ICMP unreachable (a TCP connect fails with
 * -ENETUNREACH, a ping reports -ENETUNREACH), unless the destination is one of the stack's own
 * addresses: then the packet comes back in (the node reaches its own services). Any other
 * non-zero return is a silent drop. */
#define NS_OUTPUT_NO_ROUTE (-ENETUNREACH)
typedef int (*ns_output_fn)(void *ctx, const uint8_t *pkt, size_t len);

struct ns_config {
    struct base_addr addr4; /* the node's tunnel IPv4 address (family 0: none) */
    struct base_addr addr6; /* the node's tunnel IPv6 address (family 0: none) */
    ns_output_fn output;    /* where packets for the tunnel go (required) */
    void *output_ctx;
    uint32_t mtu;         /* tunnel MTU; 0 = 1420. TCP MSS = mtu - 40 (v4) / - 60 (v6) */
    uint32_t tcp_rcv_wnd; /* per-connection receive window, 0 = NS_TCP_WND_MAX; >= 65535 */
    uint32_t tcp_snd_buf; /* per-connection send buffer, 0 = NS_TCP_SND_BUF_MAX */
    uint32_t max_tcp;     /* open TCP connections (incl. half-open inbound); 0 = 4096 */
    uint32_t max_udp;     /* open UDP flows; 0 = 4096 */
    uint32_t max_pending; /* half-open inbound TCP per stack (oldest dropped); 0 = 128 */
    /* TCP keepalive on every conn, so a peer that vanished takes its conns with it (they fail
     * with -ETIMEDOUT): probes after keepalive_idle_ms of silence, every keepalive_intvl_ms,
     * keepalive_cnt unanswered ones end the conn. 0 = NS_KEEPALIVE_* (keepalive_idle_ms
     * UINT32_MAX: off). */
    uint32_t keepalive_idle_ms, keepalive_intvl_ms, keepalive_cnt;
    /* The node's memory budget (NULL: none), shared with the proxy; it must outlive the stack.
     * TCP windows, held bytes and send queues are charged to it at their real cost; above half
     * of it windows and send buffers shrink (see ns_mem.c), so peers slow down instead. */
    struct base_budget *budget;
};
#define NS_KEEPALIVE_IDLE_MS 60000
#define NS_KEEPALIVE_INTVL_MS 15000
#define NS_KEEPALIVE_CNT 4
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
    /* Memory gauges: bytes charged to the budget (open windows, held bytes, send queues), and
     * of those the received bytes held for users at their real size. */
    uint64_t mem_used, mem_held;
    uint64_t wnd_held_back; /* window reopenings cut short by the budget */
    /* Receive-window autotuning: growths, and the largest window a conn reached (bytes). */
    uint64_t tcp_wnd_grown, tcp_wnd_largest;
};

/* Create a stack on loop into *out. Returns 0, -EINVAL on a bad configuration (no address, no
 * output, MTU < 1280 with IPv6, < 576 otherwise) or -ENOMEM. */
int ns_stack_new(uv_loop_t *loop, const struct ns_config *cfg, struct ns_stack **out);
/* Close the stack (see "Closing" above); on_closed(arg) follows once it is freed (NULL: no
 * call). A second call does nothing. */
void ns_stack_close(struct ns_stack *ns, void (*on_closed)(void *arg), void *arg);
/* See "Closing" above; the watcher finds its own struct with container_of. */
struct ns_stack_watch {
    struct base_list link; /* the stack's */
    void (*on_closing)(struct ns_stack_watch *w, struct ns_stack *ns);
};
/* Registers w (not registered yet) on an open stack; BASE_ECLOSING on a closing one. */
int ns_stack_watch(struct ns_stack *ns, struct ns_stack_watch *w);
/* Unregisters w; safe when it is not registered (anymore). */
void ns_stack_unwatch(struct ns_stack_watch *w);
/* A decrypted IP packet from the tunnel. Malformed or foreign packets are dropped and counted. */
void ns_stack_input(struct ns_stack *ns, const uint8_t *pkt, size_t len);
/* An extra local address (e.g. 100.100.100.100 for MagicDNS): accepted and answered to ping.
 * Returns 0, -EINVAL, BASE_ELIMIT (4 extra addresses), -ENOMEM or BASE_ECLOSING. */
int ns_stack_add_address(struct ns_stack *ns, const struct base_addr *addr);
const struct ns_counters *ns_stack_counters(const struct ns_stack *ns);
/* Bytes this stack has charged to the budget now (also in the counters: mem_used). */
size_t ns_stack_memory(const struct ns_stack *ns);
/* TCP connections the user already closed that are still delivering their last bytes and FIN
 * (a graceful shutdown waits for 0 before ns_stack_close, which would reset them). */
unsigned ns_stack_tcp_lingering(const struct ns_stack *ns);

/* ---- TCP ---- */
struct ns_conn_cbs {
    /* Outbound only: the handshake finished (status 0) or failed (then the conn is dead and
     * must still be released with ns_conn_close). */
    void (*on_connect)(struct ns_conn *c, int status);
    /* Bytes from the peer (len > 0) or the peer's FIN (data NULL, len 0). The receive window
     * reopens only as the user calls ns_conn_consumed(). */
    void (*on_read)(struct ns_conn *c, const uint8_t *data, size_t len);
    /* The send buffer drained after ns_conn_write() accepted less than it was offered. */
    void (*on_writable)(struct ns_conn *c);
    /* The conn died (-ECONNRESET, -ETIMEDOUT, -ENETUNREACH, BASE_ECLOSING, ...); release it
     * with ns_conn_close. */
    void (*on_error)(struct ns_conn *c, int err);
};

/* Handler for new inbound TCP: must call ns_conn_set_cbs() (and later release c) or release c
 * at once (ns_conn_reset refuses it). */
typedef void (*ns_tcp_accept_fn)(void *ctx, struct ns_conn *c);
/* Route new inbound TCP to (local, port) to fn. local NULL or family 0: any of the stack's
 * addresses; port 0: any port. The most specific registration wins; with none the SYN gets a
 * RST. Registering the same (local, port) again replaces it. Returns 0, -EINVAL (an address
 * the stack does not own), -ENOMEM or BASE_ECLOSING. */
int ns_stack_handle_tcp(struct ns_stack *ns, const struct base_addr *local, uint16_t port,
                        ns_tcp_accept_fn fn, void *ctx);
void ns_stack_unhandle_tcp(struct ns_stack *ns, const struct base_addr *local, uint16_t port);

/* Open a TCP connection from the stack's address of remote's family and a random port into
 * *out. Returns 0 (on_connect then reports the outcome) or an immediate failure: -EINVAL,
 * BASE_ELIMIT, -ENOMEM, -EADDRINUSE, -ENETUNREACH, BASE_ECLOSING. */
int ns_conn_connect(struct ns_stack *ns, const struct base_endpoint *remote,
                    const struct ns_conn_cbs *cbs, void *data, struct ns_conn **out);
void ns_conn_set_cbs(struct ns_conn *c, const struct ns_conn_cbs *cbs, void *data);
void *ns_conn_data(const struct ns_conn *c);
const struct base_endpoint *ns_conn_local(const struct ns_conn *c);
const struct base_endpoint *ns_conn_remote(const struct ns_conn *c);
/* Copy up to len bytes into the send buffer; returns the count taken (0 when full: wait for
 * on_writable; 0 before on_connect, which is the signal to start) or a negative error
 * (-EPIPE after the conn was closed, else the error that killed it). */
ssize_t ns_conn_write(struct ns_conn *c, const void *data, size_t len);
size_t ns_conn_write_space(const struct ns_conn *c);
/* Cap the bytes queued but not yet acknowledged on this conn (0 = the stack's tcp_snd_buf):
 * a service whose client may stop reading keeps its memory bounded per connection. */
void ns_conn_set_send_limit(struct ns_conn *c, size_t bytes);
/* The user is done with n bytes handed to on_read: reopen the window by n. */
void ns_conn_consumed(struct ns_conn *c, size_t n);
/* Pause (1) / resume (0) on_read; bytes arriving meanwhile are held, bounded by the window.
 * Resuming hands held bytes (and a held FIN) to on_read before it returns. */
void ns_conn_read_pause(struct ns_conn *c, int paused);
/* Send FIN after the queued bytes; reading goes on. 0 or a negative error (-EPIPE). */
int ns_conn_shutdown(struct ns_conn *c);
/* Release c: graceful close (FIN after queued bytes), or reset (RST). Safe inside callbacks. */
void ns_conn_close(struct ns_conn *c);
void ns_conn_reset(struct ns_conn *c);

/* ---- UDP ---- */
struct ns_udp_cbs {
    void (*on_recv)(struct ns_udp *u, const uint8_t *data, size_t len);
    /* An ICMP error about this flow (-ENETUNREACH, -EHOSTUNREACH, -ECONNREFUSED): the flow
     * stays usable. BASE_ECLOSING: the stack is closing, the flow is dead; release it. */
    void (*on_error)(struct ns_udp *u, int err);
};
typedef void (*ns_udp_accept_fn)(void *ctx, struct ns_udp *u);
/* Like ns_stack_handle_tcp for new UDP flows (one per remote endpoint); with no handler the
 * stack answers ICMP port unreachable. The datagram that opened the flow is delivered right
 * after fn returns, so fn must set the callbacks. */
int ns_stack_handle_udp(struct ns_stack *ns, const struct base_addr *local, uint16_t port,
                        ns_udp_accept_fn fn, void *ctx);
void ns_stack_unhandle_udp(struct ns_stack *ns, const struct base_addr *local, uint16_t port);
/* A flow from the stack's address of remote's family and a free port, into *out. Returns 0,
 * -EINVAL, BASE_ELIMIT, -ENOMEM, -EADDRINUSE or BASE_ECLOSING. */
int ns_udp_open(struct ns_stack *ns, const struct base_endpoint *remote,
                const struct ns_udp_cbs *cbs, void *data, struct ns_udp **out);
void ns_udp_set_cbs(struct ns_udp *u, const struct ns_udp_cbs *cbs, void *data);
void *ns_udp_data(const struct ns_udp *u);
const struct base_endpoint *ns_udp_local(const struct ns_udp *u);
const struct base_endpoint *ns_udp_remote(const struct ns_udp *u);
/* 0 or -EINVAL (too long), -ENOMEM, -ENETUNREACH, -EPIPE (released), BASE_ECLOSING. */
int ns_udp_send(struct ns_udp *u, const void *data, size_t len);
void ns_udp_close(struct ns_udp *u);

/* ---- ICMP echo ---- */
/* status 0 with the round trip in ms, -ETIMEDOUT, -ENETUNREACH / -EHOSTUNREACH, or
 * BASE_ECLOSING. The ping is released after the callback. */
typedef void (*ns_ping_fn)(void *data, int status, uint64_t rtt_ms);
/* Returns 0 (*out, if given, is the ping until its callback) or -EINVAL, -ENOMEM,
 * BASE_ECLOSING. */
int ns_ping_send(struct ns_stack *ns, const struct base_addr *dst, uint16_t seq, size_t payload_len,
                 uint64_t timeout_ms, ns_ping_fn cb, void *data, struct ns_ping **out);
void ns_ping_cancel(struct ns_ping *p); /* no callback afterwards */

#endif
